//! The distributed rollout model: an operator and two Brain replicas, each running
//! [`arqon_core::rollout::Rollout`], over a lossy, duplicating and reordering network.
//!
//! The operator sends one governance script (proposal, approval, ramp steps, emergency stop) to
//! every replica. Messages may be lost, delivered twice or out of order; each replica applies
//! what arrives through the machine and ignores what it refuses. Rollout safety must hold on
//! every replica whatever the network does.

use std::borrow::Cow;

use arqon_core::machine::Machine;
use arqon_core::rollout::explore::{RAMP, proposal};
use arqon_core::rollout::{Digest, MINUTE_US, Rollout, RolloutEvent, RolloutPhase, RolloutState};
use stateright::Expectation;
use stateright::actor::{Actor, ActorModel, ActorModelState, Id, LossyNetwork, Network, Out};

/// An actor of the model.
#[derive(Clone, Debug)]
pub enum GovActor {
    /// Sends the script to the replicas at start.
    Operator {
        /// The replicas' ids.
        replicas: Vec<Id>,
    },
    /// A Brain replica with its rollout state.
    Replica,
}

/// An actor's state.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum GovState {
    /// The operator keeps nothing.
    Operator,
    /// A replica: its rollout and whether an emergency stop has reached it.
    Replica {
        /// The rollout state.
        rollout: RolloutState,
        /// Whether it has received an emergency stop.
        stop_seen: bool,
    },
}

/// The operator's script, in sending order.
pub fn script() -> Vec<RolloutEvent> {
    vec![
        RolloutEvent::Propose {
            proposal: proposal(),
        },
        RolloutEvent::Approve {
            proposal_id: "p1".to_owned(),
            digest: Digest("d1".to_owned()),
            config: RAMP,
        },
        RolloutEvent::Step { now_us: 0 },
        RolloutEvent::Step {
            now_us: 2 * MINUTE_US,
        },
        RolloutEvent::EmergencyStop,
    ]
}

impl Actor for GovActor {
    type Msg = RolloutEvent;
    type Timer = ();
    type State = GovState;
    type Storage = ();
    type Random = ();

    fn on_start(&self, _id: Id, _storage: &Option<()>, o: &mut Out<Self>) -> GovState {
        match self {
            Self::Operator { replicas } => {
                for event in script() {
                    o.broadcast(replicas, &event);
                }
                GovState::Operator
            }
            Self::Replica => GovState::Replica {
                rollout: RolloutState::default(),
                stop_seen: false,
            },
        }
    }

    fn on_msg(
        &self,
        _id: Id,
        state: &mut Cow<GovState>,
        _src: Id,
        event: RolloutEvent,
        _o: &mut Out<Self>,
    ) {
        if let GovState::Replica { rollout, .. } = state.as_ref()
            && let Ok(step) = Rollout.step(rollout, &event)
        {
            let stopped = event == RolloutEvent::EmergencyStop;
            if let GovState::Replica { rollout, stop_seen } = state.to_mut() {
                *rollout = step.state;
                *stop_seen |= stopped;
            }
        }
    }
}

/// The model type.
pub type Replicas = ActorModel<GovActor>;
/// A state of the model.
pub type ReplicasState = ActorModelState<GovActor>;

/// Property names.
pub mod property {
    /// No replica exceeds the cap, and a replica the stop reached is at the baseline.
    pub const ROLLOUT_SAFETY: &str = "rollout safety";
    /// One replica is ramping above the initial share while the other is already stopped.
    pub const ROLLOUT_SAFETY_REACHED: &str =
        "rollout safety (reachable): one replica ramped, the other stopped";
}

fn replicas(state: &ReplicasState) -> impl Iterator<Item = (&RolloutState, bool)> {
    state.actor_states.iter().filter_map(|s| match s.as_ref() {
        GovState::Replica { rollout, stop_seen } => Some((rollout, *stop_seen)),
        GovState::Operator => None,
    })
}

fn safe(_: &Replicas, state: &ReplicasState) -> bool {
    replicas(state).all(|(rollout, stop_seen)| {
        rollout.percent_bp() <= RAMP.max_bp && (!stop_seen || rollout.percent_bp() == 0)
    })
}

fn ramped_while_other_stopped(_: &Replicas, state: &ReplicasState) -> bool {
    let ramped = replicas(state).any(|(rollout, _)| {
        matches!(rollout.phase, RolloutPhase::Ramping { .. })
            && rollout.percent_bp() > RAMP.initial_bp
    });
    ramped
        && replicas(state)
            .any(|(rollout, _)| matches!(rollout.phase, RolloutPhase::EmergencyStopped))
}

/// The operator (id 0) and two replicas (ids 1, 2) over a lossy, duplicating, reordering network.
pub fn replicas_model() -> Replicas {
    ActorModel::new((), ())
        .actor(GovActor::Operator {
            replicas: vec![Id::from(1), Id::from(2)],
        })
        .actors([GovActor::Replica, GovActor::Replica])
        .init_network(Network::new_unordered_duplicating([]))
        .lossy_network(LossyNetwork::Yes)
        .property(Expectation::Always, property::ROLLOUT_SAFETY, safe)
        .property(
            Expectation::Sometimes,
            property::ROLLOUT_SAFETY_REACHED,
            ramped_while_other_stopped,
        )
}

/// Describes a state for a trace: each replica's phase and share.
pub fn describe(state: &ReplicasState) -> String {
    replicas(state)
        .map(|(rollout, stop_seen)| {
            format!(
                "{} {} bp{}",
                Rollout::state_kind(rollout),
                rollout.percent_bp(),
                if stop_seen { " (stop seen)" } else { "" }
            )
        })
        .collect::<Vec<_>>()
        .join(" | ")
}
