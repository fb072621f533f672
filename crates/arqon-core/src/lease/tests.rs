//! Unit tests of the lease machine, one per acceptance criterion of `specs/governance-lease.md`.

use super::explore::SEC;
use super::{Lease, LeaseConfig, LeaseEffect, LeaseEvent, LeaseRejection, LeaseState};
use crate::machine::{Machine, checked_step};

fn lease() -> Lease {
    Lease {
        config: LeaseConfig {
            ttl_us: 10 * SEC,
            renew_every_us: 3 * SEC,
            retry_every_us: SEC,
            margin_us: SEC,
        },
    }
}

/// Applies every event with all invariants checked; panics on a refusal or a violation.
fn run(state: &LeaseState, events: &[LeaseEvent]) -> (LeaseState, Vec<LeaseEffect>) {
    let mut state = state.clone();
    let mut effects = Vec::new();
    for event in events {
        let step = checked_step(&lease(), &state, event)
            .unwrap()
            .unwrap_or_else(|| panic!("{event:?} refused in {state:?}"));
        state = step.state;
        effects.extend(step.effects);
    }
    (state, effects)
}

fn tick(at: u64) -> LeaseEvent {
    LeaseEvent::Tick { now_us: at }
}

fn granted(revision: u64, at: u64) -> LeaseEvent {
    LeaseEvent::Granted {
        revision,
        now_us: at,
    }
}

/// The writer since a create sent at 0 s and granted at revision 1.
fn leader() -> LeaseState {
    run(&LeaseState::initial(), &[tick(0), granted(1, SEC / 10)]).0
}

// AC-LEASE-1
#[test]
fn ac_lease_1_a_granted_create_starts_writing_until_sent_plus_ttl_minus_margin() {
    let (state, effects) = run(&LeaseState::initial(), &[tick(0)]);
    assert_eq!(effects, vec![LeaseEffect::Acquire]);
    assert_eq!(state, LeaseState::Acquiring { sent_us: 0 });
    let (state, effects) = run(&state, &[granted(1, SEC / 2)]);
    assert_eq!(
        effects,
        vec![
            LeaseEffect::StartWriting,
            LeaseEffect::ScheduleTick { at_us: 3 * SEC }
        ]
    );
    // The belief counts from when the request was sent, not from when the answer came.
    assert_eq!(state.valid_until_us(), Some(9 * SEC));
    assert!(state.may_write(9 * SEC - 1));
    assert!(!state.may_write(9 * SEC));
}

// AC-LEASE-2
#[test]
fn ac_lease_2_a_follower_whose_create_is_refused_retries_and_never_writes() {
    let (state, effects) = run(
        &LeaseState::initial(),
        &[tick(0), LeaseEvent::Taken { now_us: SEC / 10 }],
    );
    assert_eq!(
        effects,
        vec![
            LeaseEffect::Acquire,
            LeaseEffect::ScheduleTick {
                at_us: SEC + SEC / 10
            }
        ]
    );
    assert!(!state.may_write(SEC));
    // Too early: it waits; then it asks again.
    let (_, effects) = run(&state, &[tick(SEC)]);
    assert_eq!(
        effects,
        vec![LeaseEffect::ScheduleTick {
            at_us: SEC + SEC / 10
        }]
    );
    let (state, effects) = run(&state, &[tick(2 * SEC)]);
    assert_eq!(effects, vec![LeaseEffect::Acquire]);
    assert_eq!(state, LeaseState::Acquiring { sent_us: 2 * SEC });
    let (state, _) = run(&state, &[LeaseEvent::Unreachable { now_us: 3 * SEC }]);
    assert!(matches!(state, LeaseState::Follower { .. }));
}

// AC-LEASE-3
#[test]
fn ac_lease_3_the_holder_renews_and_each_grant_extends_the_belief() {
    let (state, effects) = run(&leader(), &[tick(3 * SEC)]);
    assert_eq!(
        effects,
        vec![LeaseEffect::Renew {
            revision: 1,
            answer_by_us: 9 * SEC
        }]
    );
    let (state, effects) = run(&state, &[granted(2, 3 * SEC + SEC / 10)]);
    assert_eq!(effects, vec![LeaseEffect::ScheduleTick { at_us: 6 * SEC }]);
    assert_eq!(state.valid_until_us(), Some(12 * SEC));
    // An unanswered renewal keeps the belief it had and retries; it never extends it.
    let (state, _) = run(&state, &[tick(6 * SEC)]);
    let (state, effects) = run(&state, &[LeaseEvent::Unreachable { now_us: 7 * SEC }]);
    assert_eq!(effects, vec![LeaseEffect::ScheduleTick { at_us: 8 * SEC }]);
    assert_eq!(state.valid_until_us(), Some(12 * SEC));
}

// AC-LEASE-4
#[test]
fn ac_lease_4_a_refused_renewal_or_a_belief_that_ran_out_stops_writing_at_once() {
    let (renewing, _) = run(&leader(), &[tick(3 * SEC)]);
    let (state, effects) = run(&renewing, &[LeaseEvent::Taken { now_us: 3 * SEC }]);
    assert_eq!(effects.first(), Some(&LeaseEffect::StopWriting));
    assert!(matches!(state, LeaseState::Follower { .. }));
    // The store never answers: at the end of the belief the node stops, whatever comes later.
    let (state, effects) = run(&renewing, &[tick(9 * SEC)]);
    assert_eq!(effects.first(), Some(&LeaseEffect::StopWriting));
    assert!(!state.may_write(9 * SEC));
    let late = lease().step(&state, &granted(2, 9 * SEC));
    assert_eq!(
        late,
        Err(LeaseRejection::NoRequest {
            state: "follower",
            event: "granted"
        })
    );
    // A holder that slept past its renewal time and its belief stops on the first tick.
    let (_, effects) = run(&leader(), &[tick(20 * SEC)]);
    assert_eq!(effects.first(), Some(&LeaseEffect::StopWriting));
}

// AC-LEASE-5
#[test]
fn ac_lease_5_answers_without_a_request_in_flight_are_refused() {
    for state in [LeaseState::initial(), leader()] {
        for event in [
            granted(3, 0),
            LeaseEvent::Taken { now_us: 0 },
            LeaseEvent::Unreachable { now_us: 0 },
        ] {
            assert!(matches!(
                lease().step(&state, &event),
                Err(LeaseRejection::NoRequest { .. })
            ));
        }
    }
}

#[test]
fn the_default_timings_renew_before_the_belief_ends() {
    assert!(LeaseConfig::default().is_valid());
    assert!(lease().config.is_valid());
    let bad = LeaseConfig {
        renew_every_us: 9 * SEC,
        ..lease().config
    };
    assert!(!bad.is_valid());
}
