//! Unit tests of the rollout machine and tracker, one per acceptance criterion of `specs/rollout.md`.

use super::explore::{RAMP, proposal};
use super::{
    Digest, FULL_BP, MINUTE_US, Rollout, RolloutConfig, RolloutEffect, RolloutEvent,
    RolloutRejection, RolloutState, RolloutTracker,
};
use crate::machine::{Machine, checked_step};

/// Applies every event with all invariants checked; panics on a refusal or a violation.
fn run(events: &[RolloutEvent]) -> (RolloutState, Vec<RolloutEffect>) {
    let mut state = RolloutState::default();
    let mut effects = Vec::new();
    for event in events {
        let step = checked_step(&Rollout, &state, event).unwrap().unwrap();
        state = step.state;
        effects.extend(step.effects);
    }
    (state, effects)
}

fn approve(digest: &str) -> RolloutEvent {
    RolloutEvent::Approve {
        proposal_id: "p1".to_owned(),
        digest: Digest(digest.to_owned()),
        config: RAMP,
    }
}

fn propose() -> RolloutEvent {
    RolloutEvent::Propose {
        proposal: proposal(),
    }
}

fn at(minutes: u64) -> RolloutEvent {
    RolloutEvent::Step {
        now_us: minutes * MINUTE_US,
    }
}

// AC-ROLLOUT-1
#[test]
fn an_approval_with_another_digest_is_refused() {
    let (proposed, _) = run(&[propose()]);
    assert_eq!(
        Rollout.step(&proposed, &approve("tampered")),
        Err(RolloutRejection::DigestMismatch {
            expected: Digest("d1".to_owned()),
            got: Digest("tampered".to_owned()),
        })
    );
    let (approved, effects) = run(&[propose(), approve("d1")]);
    assert_eq!(Rollout::state_kind(&approved), "approved");
    assert!(matches!(effects[0], RolloutEffect::SendApproval { .. }));
}

// AC-ROLLOUT-2
#[test]
fn the_ramp_follows_the_config_and_completes_at_its_cap() {
    let mut events = vec![propose(), approve("d1")];
    let mut shares = Vec::new();
    let mut state = run(&events).0;
    for minute in 0..7 {
        events.push(at(minute));
        state = run(&events).0;
        shares.push(state.percent_bp());
        if Rollout::state_kind(&state) == "complete" {
            break;
        }
    }
    assert_eq!(shares, [500, 1_500, 2_500, 3_500, 4_500, 5_000]);
    assert_eq!(Rollout::state_kind(&state), "complete");
}

// AC-ROLLOUT-3
#[test]
fn a_pause_holds_the_share_and_resume_ramps_on_from_it() {
    let (state, _) = run(&[propose(), approve("d1"), at(0), at(1), RolloutEvent::Pause]);
    assert_eq!(state.percent_bp(), 1_500);
    assert!(
        Rollout.step(&state, &at(30)).is_err(),
        "no step while paused"
    );
    let (state, _) = run(&[
        propose(),
        approve("d1"),
        at(0),
        at(1),
        RolloutEvent::Pause,
        RolloutEvent::Resume {
            now_us: 30 * MINUTE_US,
        },
        at(31),
    ]);
    assert_eq!(state.percent_bp(), 2_500);
}

// AC-ROLLOUT-4
#[test]
fn an_emergency_stop_returns_to_the_baseline_from_anywhere() {
    let prefixes: Vec<Vec<RolloutEvent>> = vec![
        vec![],
        vec![propose()],
        vec![propose(), approve("d1")],
        vec![propose(), approve("d1"), at(0), at(2)],
        vec![propose(), approve("d1"), at(0), RolloutEvent::Pause],
        vec![propose(), approve("d1"), at(0), at(10)],
    ];
    for prefix in prefixes {
        let mut events = prefix.clone();
        events.push(RolloutEvent::EmergencyStop);
        let (state, effects) = run(&events);
        assert_eq!(
            Rollout::state_kind(&state),
            "emergency_stopped",
            "{prefix:?}"
        );
        assert_eq!(state.percent_bp(), 0);
        assert!(effects.contains(&RolloutEffect::RevertToBaseline));
        assert_eq!(
            Rollout.step(&state, &propose()),
            Err(RolloutRejection::Stopped)
        );
    }
    let (state, _) = run(&[
        RolloutEvent::EmergencyStop,
        RolloutEvent::Resume { now_us: 0 },
        propose(),
    ]);
    assert_eq!(Rollout::state_kind(&state), "proposed");
}

// AC-ROLLOUT-5
#[test]
fn catalog_versions_only_go_forward() {
    let (state, _) = run(&[RolloutEvent::CatalogUpdate { version: 3 }]);
    for stale in [3, 2] {
        assert_eq!(
            Rollout.step(&state, &RolloutEvent::CatalogUpdate { version: stale }),
            Err(RolloutRejection::StaleCatalog {
                current: 3,
                got: stale
            })
        );
    }
    let step = Rollout
        .step(&state, &RolloutEvent::CatalogUpdate { version: 4 })
        .unwrap();
    assert_eq!(step.state.catalog_version, 4);
    assert_eq!(step.effects, [RolloutEffect::LoadCatalog { version: 4 }]);
}

// AC-ROLLOUT-6
#[test]
fn should_apply_hits_the_current_share_and_replays_by_seed() {
    let config = RolloutConfig {
        initial_bp: 2_500,
        increment_bp_per_minute: 0,
        max_bp: 5_000,
    };
    let mut tracker = RolloutTracker::new(proposal(), config, 0, 7).unwrap();
    assert_eq!(tracker.percent_bp(), 2_500);
    let draws = 100_000;
    let flips: Vec<bool> = (0..draws).map(|_| tracker.should_apply()).collect();
    let hits = u32::try_from(flips.iter().filter(|&&hit| hit).count()).unwrap();
    let share = f64::from(hits) / f64::from(draws);
    assert!((share - 0.25).abs() < 0.01, "share {share}");
    let mut again = RolloutTracker::new(proposal(), config, 0, 7).unwrap();
    let replay: Vec<bool> = (0..draws).map(|_| again.should_apply()).collect();
    assert_eq!(flips, replay);
}

#[test]
fn the_tracker_ramps_per_minute_and_stops_at_the_baseline() {
    let mut tracker = RolloutTracker::new(proposal(), RAMP, 0, 1).unwrap();
    assert_eq!(tracker.percent_bp(), 500);
    tracker.step();
    assert_eq!(tracker.percent_bp(), 1_500);
    tracker.pause();
    tracker.step();
    assert_eq!(tracker.percent_bp(), 1_500);
    tracker.resume();
    tracker.step();
    assert_eq!(tracker.percent_bp(), 2_500);
    tracker.emergency_stop();
    assert_eq!(tracker.percent_bp(), 0);
    assert!((0..1_000).all(|_| !tracker.should_apply()));
    let full = RolloutConfig {
        initial_bp: FULL_BP,
        increment_bp_per_minute: 0,
        max_bp: FULL_BP,
    };
    let mut always = RolloutTracker::new(proposal(), full, 0, 1).unwrap();
    assert!((0..1_000).all(|_| always.should_apply()));
}

// AC-ROLLOUT-8
#[test]
fn seed_percentages_convert_to_basis_points() {
    assert_eq!(RolloutConfig::from_percent(5.0, 10.0, 50.0), Ok(RAMP));
    assert_eq!(
        RolloutConfig::from_percent(0.125, 0.0, 100.0).map(|c| c.initial_bp),
        Ok(13)
    );
    for bad in [f64::NAN, -1.0, 100.5, f64::INFINITY] {
        assert_eq!(
            RolloutConfig::from_percent(bad, 1.0, 50.0),
            Err(RolloutRejection::InvalidPercent),
            "{bad}"
        );
    }
    assert!(matches!(
        RolloutConfig::from_percent(60.0, 1.0, 50.0),
        Err(RolloutRejection::InvalidConfig(_))
    ));
}

#[test]
fn the_invariant_check_catches_a_share_above_its_cap() {
    let (mut state, _) = run(&[propose(), approve("d1"), at(0)]);
    if let super::RolloutPhase::Ramping { percent_bp, .. } = &mut state.phase {
        *percent_bp = RAMP.max_bp + 1;
    }
    assert_eq!(
        Rollout.check_invariants(&state).unwrap_err().name,
        super::invariant::WITHIN_MAX
    );
}
