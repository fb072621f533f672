//! Lease: whether this node may write a tenant's governance chain, decided from the answers of a
//! compare-and-set store whose keys expire (JetStream KV) and from the node's own clock readings.
//!
//! One writer per tenant (`specs/governance-lease.md`). A node asks the store to create the
//! tenant's lease key; the store grants it to one node only and forgets it `ttl` after the last
//! write. The holder renews it (an update that names the revision it holds) every
//! `renew_every`. A node believes it holds the lease until `sent + ttl − margin`, where `sent` is
//! when it sent the request the store granted: the store's expiry is later than that, so two nodes
//! never both believe. A refused renewal (another node's revision) or a belief that ran out stops
//! the writing at once. The JetStream audit stream's compare-and-set on its last sequence is the
//! second fence: even a writer that overstayed could not fork the chain.
//!
//! Time arrives in events (`now_us`), never read here.

use crate::machine::{InvariantViolation, Machine, Step, Transition, row};

/// The lease's timings, in µs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LeaseConfig {
    /// How long the store keeps the key after its last write (the KV bucket's `max_age`).
    pub ttl_us: u64,
    /// How often the holder renews.
    pub renew_every_us: u64,
    /// How long a follower waits before asking again.
    pub retry_every_us: u64,
    /// How much earlier than the store the holder gives up (clock-rate differences).
    pub margin_us: u64,
}

impl Default for LeaseConfig {
    fn default() -> Self {
        Self {
            ttl_us: 10_000_000,
            renew_every_us: 3_000_000,
            retry_every_us: 1_000_000,
            margin_us: 1_000_000,
        }
    }
}

impl LeaseConfig {
    /// Whether a holder renews at least once before its belief runs out:
    /// `renew_every + margin < ttl`, and every timing is non-zero.
    pub fn is_valid(&self) -> bool {
        self.renew_every_us > 0
            && self.retry_every_us > 0
            && self
                .renew_every_us
                .checked_add(self.margin_us)
                .is_some_and(|sum| sum < self.ttl_us)
    }

    fn valid_until(&self, sent_us: u64) -> u64 {
        sent_us
            .saturating_add(self.ttl_us)
            .saturating_sub(self.margin_us)
    }
}

/// Where a node stands with one tenant's lease.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum LeaseState {
    /// Not the writer; asks again at `retry_at_us`.
    Follower {
        /// When to ask next.
        retry_at_us: u64,
    },
    /// Asked to create the key at `sent_us`; waiting for the answer.
    Acquiring {
        /// When the request was sent.
        sent_us: u64,
    },
    /// The writer, until `valid_until_us`; renews at `renew_at_us`.
    Leader {
        /// The store's revision of the key, which this node wrote.
        revision: u64,
        /// When the belief runs out (`sent + ttl − margin` of the granted request).
        valid_until_us: u64,
        /// When to renew.
        renew_at_us: u64,
    },
    /// The writer, renewing: asked at `sent_us` to update `revision`.
    Renewing {
        /// The revision named in the update.
        revision: u64,
        /// When the update was sent.
        sent_us: u64,
        /// When the current belief runs out.
        valid_until_us: u64,
    },
}

impl LeaseState {
    /// A follower that asks at once.
    pub fn initial() -> Self {
        Self::Follower { retry_at_us: 0 }
    }

    /// Whether this node may write the chain at `now_us`: it holds the lease and its belief has
    /// not run out. The shell asks before every append.
    pub fn may_write(&self, now_us: u64) -> bool {
        self.valid_until_us().is_some_and(|until| now_us < until)
    }

    /// When the current belief runs out, while the lease is held.
    pub fn valid_until_us(&self) -> Option<u64> {
        match self {
            Self::Leader { valid_until_us, .. } | Self::Renewing { valid_until_us, .. } => {
                Some(*valid_until_us)
            }
            Self::Follower { .. } | Self::Acquiring { .. } => None,
        }
    }
}

/// An input: a clock reading, or the store's answer to the request in flight.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum LeaseEvent {
    /// A timer fired.
    Tick {
        /// When.
        now_us: u64,
    },
    /// The store took the create or update; the key is at `revision`.
    Granted {
        /// The key's new revision.
        revision: u64,
        /// When the answer arrived.
        now_us: u64,
    },
    /// The store refused: the key is another node's (it exists, or the revision is not ours).
    Taken {
        /// When the answer arrived.
        now_us: u64,
    },
    /// The store did not answer (a time-out, a lost connection).
    Unreachable {
        /// When the shell gave up on the request.
        now_us: u64,
    },
}

/// An instruction to the shell.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum LeaseEffect {
    /// Create the key (only if absent) with this node as holder; answer with an event.
    Acquire,
    /// Update the key if it is still at `revision`; answer with an event by `answer_by_us` (the
    /// end of the current belief), or report `Unreachable` then.
    Renew {
        /// The revision this node holds.
        revision: u64,
        /// When the shell must give up waiting.
        answer_by_us: u64,
    },
    /// Become the writer: open the chain at its last committed record and serve.
    StartWriting,
    /// Stop writing now.
    StopWriting,
    /// Step a `Tick` at this time.
    ScheduleTick {
        /// µs since the epoch.
        at_us: u64,
    },
}

/// Why an event was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LeaseRejection {
    /// A store answer arrived while no request was in flight (a late or duplicated answer).
    #[error("{event} while no request is in flight ({state})")]
    NoRequest {
        /// The state kind.
        state: &'static str,
        /// The event kind.
        event: &'static str,
    },
}

/// The lease machine; one value serves every tenant of a node.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Lease {
    /// The timings.
    pub config: LeaseConfig,
}

type LeaseStep = Step<LeaseState, LeaseEffect>;

mod invariant {
    pub(super) const BELIEF_BOUNDED: &str = "belief-bounded";
    pub(super) const WRITES_UNDER_LEASE: &str = "writes-under-lease";
    pub(super) const STOPS_WHEN_LOST: &str = "stops-when-lost";
}

const FOLLOWER: &str = "follower";
const ACQUIRING: &str = "acquiring";
const LEADER: &str = "leader";
const RENEWING: &str = "renewing";

const TRANSITIONS: &[Transition] = &[
    row(FOLLOWER, "tick", ACQUIRING, "now >= retry_at", &["acquire"]),
    row(
        FOLLOWER,
        "tick",
        FOLLOWER,
        "now < retry_at",
        &["schedule_tick"],
    ),
    row(ACQUIRING, "tick", ACQUIRING, "", &[]),
    row(
        ACQUIRING,
        "granted",
        LEADER,
        "valid until sent + ttl - margin",
        &["start_writing", "schedule_tick"],
    ),
    row(ACQUIRING, "taken", FOLLOWER, "", &["schedule_tick"]),
    row(ACQUIRING, "unreachable", FOLLOWER, "", &["schedule_tick"]),
    row(LEADER, "tick", LEADER, "now < renew_at", &["schedule_tick"]),
    row(
        LEADER,
        "tick",
        RENEWING,
        "renew_at <= now < valid_until",
        &["renew"],
    ),
    row(
        LEADER,
        "tick",
        FOLLOWER,
        "now >= valid_until",
        &["stop_writing", "schedule_tick"],
    ),
    row(RENEWING, "tick", RENEWING, "now < valid_until", &[]),
    row(
        RENEWING,
        "tick",
        FOLLOWER,
        "now >= valid_until",
        &["stop_writing", "schedule_tick"],
    ),
    row(
        RENEWING,
        "granted",
        LEADER,
        "valid until sent + ttl - margin",
        &["schedule_tick"],
    ),
    row(
        RENEWING,
        "taken",
        FOLLOWER,
        "another node holds the key",
        &["stop_writing", "schedule_tick"],
    ),
    row(
        RENEWING,
        "unreachable",
        LEADER,
        "now < valid_until: retry the renewal",
        &["schedule_tick"],
    ),
    row(
        RENEWING,
        "unreachable",
        FOLLOWER,
        "now >= valid_until",
        &["stop_writing", "schedule_tick"],
    ),
];

fn step(state: LeaseState, effects: Vec<LeaseEffect>) -> LeaseStep {
    Step { state, effects }
}

impl Lease {
    fn follow(&self, now_us: u64, stop: bool) -> LeaseStep {
        let retry_at_us = now_us.saturating_add(self.config.retry_every_us);
        let mut effects = Vec::new();
        if stop {
            effects.push(LeaseEffect::StopWriting);
        }
        effects.push(LeaseEffect::ScheduleTick { at_us: retry_at_us });
        step(LeaseState::Follower { retry_at_us }, effects)
    }

    fn leader_tick(
        &self,
        revision: u64,
        valid_until_us: u64,
        renew_at_us: u64,
        now_us: u64,
    ) -> LeaseStep {
        if now_us >= valid_until_us {
            self.follow(now_us, true)
        } else if now_us >= renew_at_us {
            step(
                LeaseState::Renewing {
                    revision,
                    sent_us: now_us,
                    valid_until_us,
                },
                vec![LeaseEffect::Renew {
                    revision,
                    answer_by_us: valid_until_us,
                }],
            )
        } else {
            step(
                LeaseState::Leader {
                    revision,
                    valid_until_us,
                    renew_at_us,
                },
                vec![LeaseEffect::ScheduleTick { at_us: renew_at_us }],
            )
        }
    }

    fn lead(&self, revision: u64, sent_us: u64, start: bool) -> LeaseStep {
        let valid_until_us = self.config.valid_until(sent_us);
        let renew_at_us = sent_us.saturating_add(self.config.renew_every_us);
        let mut effects = Vec::new();
        if start {
            effects.push(LeaseEffect::StartWriting);
        }
        effects.push(LeaseEffect::ScheduleTick { at_us: renew_at_us });
        step(
            LeaseState::Leader {
                revision,
                valid_until_us,
                renew_at_us,
            },
            effects,
        )
    }
}

impl Machine for Lease {
    const NAME: &'static str = "lease";
    type State = LeaseState;
    type Event = LeaseEvent;
    type Effect = LeaseEffect;
    type Rejection = LeaseRejection;

    fn step(&self, state: &LeaseState, event: &LeaseEvent) -> Result<LeaseStep, LeaseRejection> {
        let no_request = || LeaseRejection::NoRequest {
            state: Self::state_kind(state),
            event: Self::event_kind(event),
        };
        Ok(match (state, event) {
            (LeaseState::Follower { retry_at_us }, LeaseEvent::Tick { now_us }) => {
                if now_us >= retry_at_us {
                    step(
                        LeaseState::Acquiring { sent_us: *now_us },
                        vec![LeaseEffect::Acquire],
                    )
                } else {
                    step(
                        state.clone(),
                        vec![LeaseEffect::ScheduleTick {
                            at_us: *retry_at_us,
                        }],
                    )
                }
            }
            (LeaseState::Acquiring { .. }, LeaseEvent::Tick { .. }) => {
                step(state.clone(), Vec::new())
            }
            (LeaseState::Acquiring { sent_us }, LeaseEvent::Granted { revision, .. }) => {
                self.lead(*revision, *sent_us, true)
            }
            (
                LeaseState::Acquiring { .. },
                LeaseEvent::Taken { now_us } | LeaseEvent::Unreachable { now_us },
            ) => self.follow(*now_us, false),
            (
                LeaseState::Leader {
                    revision,
                    valid_until_us,
                    renew_at_us,
                },
                LeaseEvent::Tick { now_us },
            ) => self.leader_tick(*revision, *valid_until_us, *renew_at_us, *now_us),
            (LeaseState::Renewing { valid_until_us, .. }, LeaseEvent::Tick { now_us }) => {
                if now_us >= valid_until_us {
                    self.follow(*now_us, true)
                } else {
                    step(state.clone(), Vec::new())
                }
            }
            (LeaseState::Renewing { sent_us, .. }, LeaseEvent::Granted { revision, .. }) => {
                self.lead(*revision, *sent_us, false)
            }
            (LeaseState::Renewing { .. }, LeaseEvent::Taken { now_us }) => {
                self.follow(*now_us, true)
            }
            (
                LeaseState::Renewing {
                    revision,
                    valid_until_us,
                    ..
                },
                LeaseEvent::Unreachable { now_us },
            ) => {
                if now_us >= valid_until_us {
                    self.follow(*now_us, true)
                } else {
                    let renew_at_us = now_us
                        .saturating_add(self.config.retry_every_us)
                        .min(*valid_until_us);
                    step(
                        LeaseState::Leader {
                            revision: *revision,
                            valid_until_us: *valid_until_us,
                            renew_at_us,
                        },
                        vec![LeaseEffect::ScheduleTick { at_us: renew_at_us }],
                    )
                }
            }
            (
                LeaseState::Follower { .. } | LeaseState::Leader { .. },
                LeaseEvent::Granted { .. }
                | LeaseEvent::Taken { .. }
                | LeaseEvent::Unreachable { .. },
            ) => return Err(no_request()),
        })
    }

    fn state_kind(state: &LeaseState) -> &'static str {
        match state {
            LeaseState::Follower { .. } => FOLLOWER,
            LeaseState::Acquiring { .. } => ACQUIRING,
            LeaseState::Leader { .. } => LEADER,
            LeaseState::Renewing { .. } => RENEWING,
        }
    }

    fn event_kind(event: &LeaseEvent) -> &'static str {
        match event {
            LeaseEvent::Tick { .. } => "tick",
            LeaseEvent::Granted { .. } => "granted",
            LeaseEvent::Taken { .. } => "taken",
            LeaseEvent::Unreachable { .. } => "unreachable",
        }
    }

    fn effect_kind(effect: &LeaseEffect) -> &'static str {
        match effect {
            LeaseEffect::Acquire => "acquire",
            LeaseEffect::Renew { .. } => "renew",
            LeaseEffect::StartWriting => "start_writing",
            LeaseEffect::StopWriting => "stop_writing",
            LeaseEffect::ScheduleTick { .. } => "schedule_tick",
        }
    }

    fn state_kinds() -> &'static [&'static str] {
        &[FOLLOWER, ACQUIRING, LEADER, RENEWING]
    }

    fn event_kinds() -> &'static [&'static str] {
        &["tick", "granted", "taken", "unreachable"]
    }

    fn transitions() -> &'static [Transition] {
        TRANSITIONS
    }

    fn invariants() -> &'static [(&'static str, &'static str)] {
        &[
            (
                invariant::BELIEF_BOUNDED,
                "a holder renews before its belief runs out, and believes no longer than ttl - margin past the request the store granted",
            ),
            (
                invariant::WRITES_UNDER_LEASE,
                "writing starts only on a granted create, and a node that stops holding the lease stops writing in the same step",
            ),
            (
                invariant::STOPS_WHEN_LOST,
                "a refused renewal or a belief that ran out leaves the node a follower that does not write",
            ),
        ]
    }

    fn check_invariants(&self, state: &LeaseState) -> Result<(), InvariantViolation> {
        if let LeaseState::Leader {
            valid_until_us,
            renew_at_us,
            ..
        } = state
            && renew_at_us > valid_until_us
        {
            return Err(InvariantViolation {
                name: invariant::BELIEF_BOUNDED,
                detail: format!(
                    "renews at {renew_at_us}, after its belief ends at {valid_until_us}"
                ),
            });
        }
        Ok(())
    }

    fn check_step(
        &self,
        before: &LeaseState,
        event: &LeaseEvent,
        after: &LeaseStep,
    ) -> Result<(), InvariantViolation> {
        let emitted = |wanted: &LeaseEffect| after.effects.contains(wanted);
        let held = before.valid_until_us().is_some();
        let holds = after.state.valid_until_us().is_some();
        if holds
            && !held
            && !(emitted(&LeaseEffect::StartWriting) && matches!(event, LeaseEvent::Granted { .. }))
        {
            return Err(InvariantViolation {
                name: invariant::WRITES_UNDER_LEASE,
                detail: format!("became the holder on {event:?} without a granted create"),
            });
        }
        if held && !holds && !emitted(&LeaseEffect::StopWriting) {
            return Err(InvariantViolation {
                name: invariant::WRITES_UNDER_LEASE,
                detail: format!("left the lease on {event:?} without stopping the writing"),
            });
        }
        let granted_sent = match (before, event) {
            (
                LeaseState::Acquiring { sent_us } | LeaseState::Renewing { sent_us, .. },
                LeaseEvent::Granted { .. },
            ) => Some(*sent_us),
            _ => None,
        };
        if let (Some(sent_us), Some(until)) = (granted_sent, after.state.valid_until_us())
            && until > self.config.valid_until(sent_us)
        {
            return Err(InvariantViolation {
                name: invariant::BELIEF_BOUNDED,
                detail: format!("believes until {until}, past sent {sent_us} + ttl - margin"),
            });
        }
        let lost = matches!(event, LeaseEvent::Taken { .. })
            || matches!(event, LeaseEvent::Tick { now_us } | LeaseEvent::Unreachable { now_us }
                if before.valid_until_us().is_some_and(|until| *now_us >= until));
        if held && lost && after.state.may_write(0) {
            return Err(InvariantViolation {
                name: invariant::STOPS_WHEN_LOST,
                detail: format!("still holds the lease after {event:?}"),
            });
        }
        Ok(())
    }
}

/// The exploration alphabet: a small universe of times (µs) around the default timings.
pub mod explore {
    use super::{Lease, LeaseEvent, LeaseState};
    use crate::machine::Explore;

    /// One second, in µs.
    pub const SEC: u64 = 1_000_000;

    /// Events worth trying in `state`, at times relative to its own deadlines.
    pub fn events(state: &LeaseState) -> Vec<LeaseEvent> {
        let base = match state {
            LeaseState::Follower { retry_at_us } => *retry_at_us,
            LeaseState::Acquiring { sent_us } | LeaseState::Renewing { sent_us, .. } => *sent_us,
            LeaseState::Leader { renew_at_us, .. } => *renew_at_us,
        };
        let until = state.valid_until_us().unwrap_or(base);
        let mut times = vec![base.saturating_sub(SEC / 2), base, until];
        times.dedup();
        let mut events = Vec::new();
        for &now_us in &times {
            events.push(LeaseEvent::Tick { now_us });
            events.push(LeaseEvent::Taken { now_us });
            events.push(LeaseEvent::Unreachable { now_us });
        }
        events.push(LeaseEvent::Granted {
            revision: 1,
            now_us: base,
        });
        events.push(LeaseEvent::Granted {
            revision: 7,
            now_us: base.saturating_add(SEC / 10),
        });
        events
    }

    impl Explore for Lease {
        fn initial(&self) -> LeaseState {
            LeaseState::initial()
        }

        fn alphabet(&self, state: &LeaseState) -> Vec<LeaseEvent> {
            events(state)
        }
    }
}

#[cfg(test)]
mod tests;
