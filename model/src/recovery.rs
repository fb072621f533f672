//! The recovery seam model (`specs/history.md`): a client that saw a room up to `since` rejoins
//! while messages keep being published; the real Session machine decides the recovery, and the
//! model plays the shell and the store exactly as `arqon-shield`'s hub does.
//!
//! The store numbers every message (other rooms' messages take offsets too). A room subscription
//! gets the messages stored after it was made, in order, and may lose some (a NATS reconnect);
//! the forwarder fills a loss from the store when the next message's predecessor shows it. The
//! history read happens at any moment after the join. The property: the client receives every room
//! message after `since` exactly once, in offset order (`seam`), and once everything is published
//! and delivered it has them all (`complete`). The witness: a live message held during the read
//! was dropped as already recovered.

use arqon_core::history::HistoryRead;
use arqon_core::limits::{Rate, Verdict};
use arqon_core::machine::Machine;
use arqon_core::session::{
    Identity, SessionEffect, SessionEvent, SessionLimits, SessionMachine, SessionState,
};
use arqon_proto::Position;
use arqon_proto::names::{RoomName, TenantId, UserId};
use stateright::{Model, Property};

/// Property names.
pub mod property {
    /// Every room message after `since`, at most once, in offset order.
    pub const SEAM: &str = "seam: no duplicate, in order";
    /// Once quiet, the client has every room message after `since`.
    pub const COMPLETE: &str = "complete: no gap";
    /// A live message held during the read was dropped as a duplicate.
    pub const DUPLICATE_DROPPED: &str = "a held duplicate was dropped";
}

/// Room messages the client saw before it dropped.
const SEEN_BEFORE: u64 = 2;
/// Room messages published after it dropped.
const ROOM_MESSAGES: u64 = 3;
/// Other rooms' messages (they take offsets).
const OTHER_MESSAGES: u64 = 1;
const EPOCH: &str = "e";

/// A state of the model.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RecoveryState {
    /// The session.
    pub session: SessionState,
    /// The store's last offset.
    pub seq: u64,
    /// The room's stored offsets.
    pub store: Vec<u64>,
    /// Room messages published after the drop, and other rooms' messages.
    pub published: (u64, u64),
    /// Whether the room subscription exists.
    pub subscribed: bool,
    /// Live messages on their way to the forwarder, in order: (offset, room predecessor).
    pub in_flight: Vec<(u64, u64)>,
    /// The forwarder's last offset.
    pub last: Option<u64>,
    /// Messages held for the gated member; `None` once the gate is open.
    pub held: Option<Vec<u64>>,
    /// The member's floor after the gate opened.
    pub floor: Option<u64>,
    /// A history read the machine asked for: read after this offset.
    pub fetch: Option<u64>,
    /// What the client received, in order.
    pub received: Vec<u64>,
    /// The witness flag.
    pub dropped_duplicate: bool,
    /// Live messages lost so far.
    pub lost: u8,
}

/// An action of the model.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RecoveryAction {
    /// The client rejoins with `since`.
    Join,
    /// A room message is stored.
    Publish,
    /// Another room's message is stored.
    PublishOther,
    /// The first live message reaches the forwarder.
    Deliver,
    /// The first live message is lost on the way.
    Lose,
    /// The history read completes.
    Read,
}

/// The model; `floor` off plants the bug the floor exists for.
#[derive(Clone, Debug)]
pub struct Recovery {
    machine: SessionMachine,
    /// Keep the member's floor after the gate opens (the real hub does).
    pub floor: bool,
    /// Fill live gaps from history (the real hub does).
    pub repair: bool,
}

fn name<T, E>(parsed: Result<T, E>) -> Option<T> {
    parsed.ok()
}

fn room() -> Option<RoomName> {
    name(RoomName::parse("lobby"))
}

fn active(machine: &SessionMachine) -> Option<SessionState> {
    let identity = Identity {
        tenant: name(TenantId::parse("acme"))?,
        user: name(UserId::parse("bob"))?,
        session: 1,
    };
    let limits = SessionLimits {
        max_rooms: 4,
        max_payload_bytes: 1024,
        publish: Rate {
            per_sec: 100,
            burst: 100,
        },
    };
    let upgraded = machine
        .step(
            &SessionState::Connecting,
            &SessionEvent::Upgrade { now_us: 0 },
        )
        .ok()?;
    let token = SessionEvent::TokenValid {
        identity,
        expires_us: 3_600_000_000,
        limits,
        admission: Verdict::Admit,
        now_us: 0,
    };
    Some(machine.step(&upgraded.state, &token).ok()?.state)
}

impl Recovery {
    /// Steps the machine and plays its effects as the shell does.
    fn step(&self, state: &mut RecoveryState, event: &SessionEvent) {
        let Ok(step) = self.machine.step(&state.session, event) else {
            return;
        };
        state.session = step.state;
        for effect in step.effects {
            match effect {
                SessionEffect::Subscribe { gated, .. } => {
                    state.subscribed = true;
                    state.held = gated.then(Vec::new);
                }
                SessionEffect::FetchHistory { after, .. } => state.fetch = Some(after),
                SessionEffect::SendRecovery { recovery, .. } => {
                    let after = state.fetch.take().unwrap_or(0);
                    let read: Vec<u64> =
                        state.store.iter().copied().filter(|o| *o > after).collect();
                    let count = usize::try_from(recovery.count).unwrap_or(0);
                    state.received.extend(read.iter().rev().take(count).rev());
                }
                SessionEffect::OpenGate { after, .. } => {
                    for offset in state.held.take().unwrap_or_default() {
                        if offset > after {
                            state.received.push(offset);
                        } else {
                            state.dropped_duplicate = true;
                        }
                    }
                    if self.floor {
                        state.floor = Some(after);
                    }
                    if state.last.is_none() {
                        state.last = Some(after);
                    }
                }
                _ => {}
            }
        }
    }

    /// The forwarder hands one message to the member.
    fn offer(state: &mut RecoveryState, offset: u64) {
        if let Some(held) = &mut state.held {
            held.push(offset);
        } else if state.floor.is_none_or(|floor| offset > floor) {
            state.received.push(offset);
        }
    }

    fn store(state: &mut RecoveryState, room: bool) {
        state.seq += 1;
        if room {
            let previous = state.store.last().copied().unwrap_or(0);
            state.store.push(state.seq);
            if state.subscribed {
                state.in_flight.push((state.seq, previous));
            }
        }
    }

    fn read(state: &RecoveryState, after: u64) -> HistoryRead {
        let offsets: Vec<u64> = state.store.iter().copied().filter(|o| *o > after).collect();
        HistoryRead {
            epoch: EPOCH.to_owned(),
            first_offset: 1,
            last_offset: state.seq,
            room_cap: 100,
            retained_after: offsets.len() as u64,
            retained_total: state.store.len() as u64,
            offsets,
        }
    }
}

fn quiet(state: &RecoveryState) -> bool {
    state.published == (ROOM_MESSAGES, OTHER_MESSAGES)
        && state.in_flight.is_empty()
        && state.fetch.is_none()
        && state.held.is_none()
        && state.subscribed
}

impl Model for Recovery {
    type State = RecoveryState;
    type Action = RecoveryAction;

    fn init_states(&self) -> Vec<RecoveryState> {
        let Some(session) = active(&self.machine) else {
            return Vec::new();
        };
        vec![RecoveryState {
            session,
            seq: SEEN_BEFORE,
            store: (1..=SEEN_BEFORE).collect(),
            published: (0, 0),
            subscribed: false,
            in_flight: Vec::new(),
            last: None,
            held: None,
            floor: None,
            fetch: None,
            received: Vec::new(),
            dropped_duplicate: false,
            lost: 0,
        }]
    }

    fn actions(&self, state: &RecoveryState, actions: &mut Vec<RecoveryAction>) {
        if !state.subscribed {
            actions.push(RecoveryAction::Join);
        }
        if state.published.0 < ROOM_MESSAGES {
            actions.push(RecoveryAction::Publish);
        }
        if state.published.1 < OTHER_MESSAGES {
            actions.push(RecoveryAction::PublishOther);
        }
        if !state.in_flight.is_empty() {
            actions.push(RecoveryAction::Deliver);
            // One loss is enough to need the repair; the last message is never lost (a loss
            // after the last message is only found by the next one, which never comes here).
            if state.lost == 0 && state.in_flight.len() > 1 {
                actions.push(RecoveryAction::Lose);
            }
        }
        if state.fetch.is_some() {
            actions.push(RecoveryAction::Read);
        }
    }

    fn next_state(&self, last: &RecoveryState, action: RecoveryAction) -> Option<RecoveryState> {
        let mut state = last.clone();
        match action {
            RecoveryAction::Join => {
                let event = SessionEvent::Join {
                    room: room()?,
                    request: 1,
                    since: Some(Position {
                        offset: SEEN_BEFORE,
                        epoch: EPOCH.to_owned(),
                    }),
                    now_us: 0,
                };
                self.step(&mut state, &event);
            }
            RecoveryAction::Publish => {
                state.published.0 += 1;
                Self::store(&mut state, true);
            }
            RecoveryAction::PublishOther => {
                state.published.1 += 1;
                Self::store(&mut state, false);
            }
            RecoveryAction::Deliver => {
                let (offset, previous) = state.in_flight.remove(0);
                if self.repair
                    && let Some(from) = arqon_core::history::gap(state.last, previous)
                {
                    let missed: Vec<u64> = state
                        .store
                        .iter()
                        .copied()
                        .filter(|o| *o >= from && *o < offset)
                        .collect();
                    for missed in missed {
                        Self::offer(&mut state, missed);
                    }
                }
                state.last = Some(offset);
                Self::offer(&mut state, offset);
            }
            RecoveryAction::Lose => {
                state.in_flight.remove(0);
                state.lost += 1;
            }
            RecoveryAction::Read => {
                let after = state.fetch?;
                let read = Self::read(&state, after);
                let event = SessionEvent::HistoryRead {
                    room: room()?,
                    request: 1,
                    read: Some(read),
                };
                self.step(&mut state, &event);
            }
        }
        Some(state)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![
            Property::<Self>::always(property::SEAM, |_, state| {
                state.received.windows(2).all(|w| w[0] < w[1])
                    && state.received.iter().all(|o| *o > SEEN_BEFORE)
            }),
            Property::<Self>::always(property::COMPLETE, |_, state| {
                !quiet(state)
                    || state.received
                        == state
                            .store
                            .iter()
                            .copied()
                            .filter(|o| *o > SEEN_BEFORE)
                            .collect::<Vec<_>>()
            }),
            Property::<Self>::sometimes(property::DUPLICATE_DROPPED, |_, state| {
                state.dropped_duplicate
            }),
        ]
    }
}

/// The model with the real machine and the hub's floor and gap repair.
pub fn recovery_model() -> Recovery {
    Recovery {
        machine: SessionMachine::default(),
        floor: true,
        repair: true,
    }
}

/// The planted bug: the gate opens without the floor, so a message read from history that was
/// still on its way live reaches the client twice. The checker must find it.
pub fn no_floor_model() -> Recovery {
    Recovery {
        floor: false,
        ..recovery_model()
    }
}

/// The planted bug: a live loss is not filled from history. The checker must find the gap.
pub fn no_repair_model() -> Recovery {
    Recovery {
        repair: false,
        ..recovery_model()
    }
}

/// Describes a state for a trace.
pub fn describe(state: &RecoveryState) -> String {
    format!(
        "{} | store {:?} | in flight {:?} | held {:?} | floor {:?} | received {:?}",
        SessionMachine::state_kind(&state.session),
        state.store,
        state.in_flight,
        state.held,
        state.floor,
        state.received
    )
}
