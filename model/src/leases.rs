//! The distributed lease model: two nodes, each running [`arqon_core::lease::Lease`], against a
//! compare-and-set store whose key expires (JetStream KV), on one clock.
//!
//! Requests wait in the store's queue; answers wait to be delivered, or are lost (the shell then
//! reports `Unreachable`); a node may crash, losing what it had in flight, and restart as a
//! follower. Ticks come at any time. The property: at no moment do two nodes both believe they
//! may write — the safety of one governance writer per tenant.

use arqon_core::lease::{Lease, LeaseConfig, LeaseEffect, LeaseEvent, LeaseState};
use arqon_core::machine::Machine;
use stateright::{Model, Property};

/// One second of the model's clock.
const SEC: u64 = 1_000_000;
/// How far the clock runs.
const HORIZON_US: u64 = 16 * SEC;
const NODES: usize = 2;

/// Short timings, so a failover fits in the bound: the store forgets the key 4 s after its last
/// write; the holder renews every second and gives up 1 s before the store would.
pub fn config() -> LeaseConfig {
    LeaseConfig {
        ttl_us: 4 * SEC,
        renew_every_us: SEC,
        retry_every_us: SEC,
        margin_us: SEC,
    }
}

/// A request to the store.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Request {
    /// Create the key if absent.
    Acquire,
    /// Update the key if still at this revision.
    Renew(u64),
}

/// The store's key: who wrote it last, at which revision, and when it expires.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Key {
    /// The node that wrote it.
    pub holder: usize,
    /// Its revision.
    pub revision: u64,
    /// When the store forgets it.
    pub expires_us: u64,
}

/// A state of the model.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LeasesState {
    /// The clock.
    pub now_us: u64,
    /// Each node's lease.
    pub nodes: Vec<LeaseState>,
    /// The store's key, if any.
    pub key: Option<Key>,
    /// The last revision handed out.
    pub revision: u64,
    /// Requests the store has not processed: (node, request).
    pub requests: Vec<(usize, Request)>,
    /// Answers not delivered yet: (node, granted revision or `None` for refused).
    pub answers: Vec<(usize, Option<u64>)>,
    /// Whether some node wrote after another had written (a failover happened).
    pub failed_over: bool,
    /// The last node that could write.
    pub last_writer: Option<usize>,
}

/// An action of the model.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum LeasesAction {
    /// The clock moves one second.
    Advance,
    /// A node's timer fires.
    Tick(usize),
    /// The store processes the request at this index.
    Process(usize),
    /// The answer at this index reaches its node.
    Deliver(usize),
    /// The answer at this index is lost; its node gives up on the request.
    Lose(usize),
    /// A node crashes and restarts as a follower; its requests and answers are gone.
    Crash(usize),
}

/// The model.
#[derive(Clone, Debug)]
pub struct Leases {
    /// The lease machine of every node.
    pub lease: Lease,
    /// A planted bug: the node counts its belief from when the answer arrived, not from when it
    /// sent the request (the machine is handed the answer's time as the request's).
    pub counts_from_answer: bool,
}

/// Property names.
pub mod property {
    /// At most one node may write at any moment.
    pub const ONE_WRITER: &str = "one writer";
    /// A second node took over after the first wrote.
    pub const FAILOVER_REACHED: &str = "one writer (reachable): a failover to the other node";
}

impl Leases {
    fn apply(&self, state: &mut LeasesState, node: usize, event: &LeaseEvent) {
        if let (true, LeaseEvent::Granted { now_us, .. }) = (self.counts_from_answer, event) {
            match &mut state.nodes[node] {
                LeaseState::Acquiring { sent_us } | LeaseState::Renewing { sent_us, .. } => {
                    *sent_us = *now_us;
                }
                LeaseState::Follower { .. } | LeaseState::Leader { .. } => {}
            }
        }
        let Ok(step) = self.lease.step(&state.nodes[node], event) else {
            return;
        };
        state.nodes[node] = step.state;
        for effect in step.effects {
            match effect {
                LeaseEffect::Acquire => state.requests.push((node, Request::Acquire)),
                LeaseEffect::Renew { revision, .. } => {
                    state.requests.push((node, Request::Renew(revision)));
                }
                LeaseEffect::StartWriting
                | LeaseEffect::StopWriting
                | LeaseEffect::ScheduleTick { .. } => {}
            }
        }
        let writers: Vec<usize> = writers(state).collect();
        if let [writer] = writers[..] {
            if state.last_writer.is_some_and(|last| last != writer) {
                state.failed_over = true;
            }
            state.last_writer = Some(writer);
        }
    }

    fn process(&self, state: &mut LeasesState, index: usize) {
        let (node, request) = state.requests.remove(index);
        if state
            .key
            .as_ref()
            .is_some_and(|key| key.expires_us <= state.now_us)
        {
            state.key = None;
        }
        let granted = match (&request, &state.key) {
            (Request::Acquire, None) => true,
            (Request::Renew(revision), Some(key)) => {
                key.holder == node && key.revision == *revision
            }
            _ => false,
        };
        let answer = granted.then(|| {
            state.revision += 1;
            state.key = Some(Key {
                holder: node,
                revision: state.revision,
                expires_us: state.now_us + self.lease.config.ttl_us,
            });
            state.revision
        });
        state.answers.push((node, answer));
    }
}

fn writers(state: &LeasesState) -> impl Iterator<Item = usize> + '_ {
    state
        .nodes
        .iter()
        .enumerate()
        .filter(|(_, lease)| lease.may_write(state.now_us))
        .map(|(i, _)| i)
}

impl Model for Leases {
    type State = LeasesState;
    type Action = LeasesAction;

    fn init_states(&self) -> Vec<LeasesState> {
        vec![LeasesState {
            now_us: 0,
            nodes: vec![LeaseState::initial(); NODES],
            key: None,
            revision: 0,
            requests: Vec::new(),
            answers: Vec::new(),
            failed_over: false,
            last_writer: None,
        }]
    }

    fn actions(&self, state: &LeasesState, actions: &mut Vec<LeasesAction>) {
        if state.now_us < HORIZON_US {
            actions.push(LeasesAction::Advance);
        }
        for node in 0..NODES {
            actions.push(LeasesAction::Tick(node));
        }
        actions.extend((0..state.requests.len()).map(LeasesAction::Process));
        for i in 0..state.answers.len() {
            actions.push(LeasesAction::Deliver(i));
            actions.push(LeasesAction::Lose(i));
        }
        // One crash, of the node that wrote first, is enough to reach a failover.
        if state.last_writer == Some(0) && !state.failed_over {
            actions.push(LeasesAction::Crash(0));
        }
    }

    fn next_state(&self, last: &LeasesState, action: LeasesAction) -> Option<LeasesState> {
        let mut state = last.clone();
        match action {
            LeasesAction::Advance => state.now_us += SEC,
            LeasesAction::Tick(node) => {
                let now_us = state.now_us;
                self.apply(&mut state, node, &LeaseEvent::Tick { now_us });
            }
            LeasesAction::Process(index) => self.process(&mut state, index),
            LeasesAction::Deliver(index) => {
                let (node, answer) = state.answers.remove(index);
                let now_us = state.now_us;
                let event = match answer {
                    Some(revision) => LeaseEvent::Granted { revision, now_us },
                    None => LeaseEvent::Taken { now_us },
                };
                self.apply(&mut state, node, &event);
            }
            LeasesAction::Lose(index) => {
                let (node, _) = state.answers.remove(index);
                let now_us = state.now_us;
                self.apply(&mut state, node, &LeaseEvent::Unreachable { now_us });
            }
            LeasesAction::Crash(node) => {
                state.nodes[node] = LeaseState::Follower {
                    retry_at_us: state.now_us,
                };
                state.requests.retain(|(n, _)| *n != node);
                state.answers.retain(|(n, _)| *n != node);
            }
        }
        Some(state)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![
            Property::<Self>::always(property::ONE_WRITER, |_, state| writers(state).count() <= 1),
            Property::<Self>::sometimes(property::FAILOVER_REACHED, |_, state| state.failed_over),
        ]
    }
}

/// The model with the real lease machine.
pub fn leases_model() -> Leases {
    Leases {
        lease: Lease { config: config() },
        counts_from_answer: false,
    }
}

/// The same model with the planted bug: the checker must find two writers.
pub fn counts_from_answer_model() -> Leases {
    Leases {
        counts_from_answer: true,
        ..leases_model()
    }
}

/// Describes a state for a trace: the clock, each node's lease and the store's key.
pub fn describe(state: &LeasesState) -> String {
    let nodes: Vec<String> = state
        .nodes
        .iter()
        .map(|lease| {
            format!(
                "{}{}",
                Lease::state_kind(lease),
                if lease.may_write(state.now_us) {
                    " (writes)"
                } else {
                    ""
                }
            )
        })
        .collect();
    let key = state.key.as_ref().map_or("none".to_owned(), |key| {
        format!(
            "node {} rev {} until {} s",
            key.holder,
            key.revision,
            key.expires_us / SEC
        )
    });
    format!(
        "t={} s | {} | key {key}",
        state.now_us / SEC,
        nodes.join(" | ")
    )
}
