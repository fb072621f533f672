//! The checker has teeth: test-only broken variants are caught, with a readable counterexample.

use std::time::Duration;

use arqon_core::machine::{Explore, InvariantViolation, Machine, Step, Transition};
use arqon_core::presence::{Presence, PresenceConfig};
use arqon_core::rollout::{Rollout, RolloutEvent, RolloutPhase, RolloutState};
use arqon_model::cluster::{self, ClusterConfig, NODE_TTL_US, PresenceMachine, property};
use arqon_model::machine_model::{self, MachineModel};
use arqon_model::run::{self, Bound, Outcome, Verdict};

/// A rollout whose ramp forgets its cap: every step adds one more increment, past `max_percent`.
#[derive(Clone, Copy, Debug, Default)]
struct Overshoot;

impl Machine for Overshoot {
    const NAME: &'static str = "overshoot";
    type State = RolloutState;
    type Event = RolloutEvent;
    type Effect = <Rollout as Machine>::Effect;
    type Rejection = <Rollout as Machine>::Rejection;

    fn step(
        &self,
        state: &RolloutState,
        event: &RolloutEvent,
    ) -> Result<Step<RolloutState, Self::Effect>, Self::Rejection> {
        let mut step = Rollout.step(state, event)?;
        if let (
            RolloutEvent::Step { .. },
            RolloutPhase::Ramping {
                percent_bp, config, ..
            },
        ) = (event, &mut step.state.phase)
        {
            *percent_bp += config.increment_bp_per_minute;
        }
        Ok(step)
    }
    fn state_kind(state: &RolloutState) -> &'static str {
        Rollout::state_kind(state)
    }
    fn event_kind(event: &RolloutEvent) -> &'static str {
        Rollout::event_kind(event)
    }
    fn effect_kind(effect: &Self::Effect) -> &'static str {
        Rollout::effect_kind(effect)
    }
    fn state_kinds() -> &'static [&'static str] {
        Rollout::state_kinds()
    }
    fn event_kinds() -> &'static [&'static str] {
        Rollout::event_kinds()
    }
    fn transitions() -> &'static [Transition] {
        Rollout::transitions()
    }
    fn invariants() -> &'static [(&'static str, &'static str)] {
        Rollout::invariants()
    }
    fn check_invariants(&self, state: &RolloutState) -> Result<(), InvariantViolation> {
        Rollout.check_invariants(state)
    }
}

impl Explore for Overshoot {
    fn initial(&self) -> RolloutState {
        Rollout.initial()
    }
    fn alphabet(&self, state: &RolloutState) -> Vec<RolloutEvent> {
        Rollout.alphabet(state)
    }
}

fn bound(depth: usize) -> Bound {
    Bound {
        depth,
        timeout: Duration::from_mins(1),
        max_states: 2_000_000,
    }
}

fn find<'a>(outcomes: &'a [Outcome], property: &str) -> &'a Outcome {
    outcomes.iter().find(|o| o.property == property).unwrap()
}

// AC-ROLLOUT-7, AC-MACHINES-3
#[test]
fn a_rollout_that_exceeds_max_percent_is_caught_with_a_readable_trace() {
    let outcomes = run::check(
        "overshoot",
        MachineModel::new(Overshoot),
        bound(10),
        machine_model::describe::<Overshoot>,
    );
    let broken = find(&outcomes, "percent-within-max");
    assert_eq!(broken.verdict, Verdict::Violated);
    let trace = broken.trace.as_deref().unwrap();
    println!("counterexample:\n{trace}");
    assert!(trace.contains("   0. start: idle"), "{trace}");
    assert!(trace.contains("propose: Propose"), "{trace}");
    assert!(trace.contains("approve: Approve"), "{trace}");
    assert!(trace.contains("VIOLATED percent-within-max"), "{trace}");
    // The real rollout holds under the same bound.
    let real = run::check(
        "rollout",
        MachineModel::new(Rollout),
        bound(8),
        machine_model::describe::<Rollout>,
    );
    assert_eq!(find(&real, "percent-within-max").verdict, Verdict::Holds);
}

// AC-PRESENCE-9, AC-MACHINES-3
#[test]
fn a_presence_that_forgets_a_leave_breaks_convergence_in_the_cluster() {
    let mut config = ClusterConfig::small();
    config.crashes = 0;
    config.lossy = false;
    let machine = PresenceMachine::ForgetsLeaves(Presence::new(PresenceConfig {
        node_ttl_us: NODE_TTL_US,
    }));
    let outcomes = run::check(
        "cluster-forgets-leaves",
        cluster::cluster(config, machine),
        bound(10),
        cluster::describe,
    );
    let broken = find(&outcomes, property::CONVERGENCE);
    assert_eq!(broken.verdict, Verdict::Violated);
    let trace = broken.trace.as_deref().unwrap();
    println!("counterexample:\n{trace}");
    assert!(trace.contains("a1@n0"), "the ghost is named: {trace}");
}

// AC-LEASE-7, AC-MACHINES-3
#[test]
fn a_lease_that_counts_its_belief_from_the_answer_allows_two_writers() {
    use arqon_model::leases;
    let outcomes = run::check(
        "leases-counts-from-answer",
        leases::counts_from_answer_model(),
        bound(14),
        leases::describe,
    );
    let broken = find(&outcomes, leases::property::ONE_WRITER);
    assert_eq!(broken.verdict, Verdict::Violated);
    let trace = broken.trace.as_deref().unwrap();
    println!("counterexample:\n{trace}");
    assert!(
        trace.contains("(writes) | leader (writes)")
            || trace.contains("(writes) | renewing (writes)"),
        "{trace}"
    );
}

// AC-HISTORY-14, AC-MACHINES-3: a gate that opens without the floor delivers a recovered message
// a second time when its live copy arrives late; without gap repair a live loss stays a gap.
#[test]
fn a_recovery_without_its_floor_or_its_repair_is_caught() {
    use arqon_model::recovery;
    let outcomes = run::check(
        "recovery-no-floor",
        recovery::no_floor_model(),
        bound(16),
        recovery::describe,
    );
    let broken = find(&outcomes, recovery::property::SEAM);
    assert_eq!(broken.verdict, Verdict::Violated);
    println!("counterexample:\n{}", broken.trace.as_deref().unwrap());
    let outcomes = run::check(
        "recovery-no-repair",
        recovery::no_repair_model(),
        bound(16),
        recovery::describe,
    );
    let broken = find(&outcomes, recovery::property::COMPLETE);
    assert_eq!(broken.verdict, Verdict::Violated);
    println!("counterexample:\n{}", broken.trace.as_deref().unwrap());
}
