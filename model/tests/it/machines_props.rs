//! Property tests: arbitrary event sequences (fixed seed) keep every invariant of every machine.

use arqon_core::lease::Lease;
use arqon_core::machine::{Explore, drive};
use arqon_core::presence::Presence;
use arqon_core::rollout::Rollout;
use arqon_model::suite::session_machine;
use proptest::collection::vec;
use proptest::prelude::any;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

fn holds<M: Explore>(machine: &M, seed: u8) {
    let config = Config {
        cases: 256,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new_with_rng(
        config,
        TestRng::from_seed(RngAlgorithm::ChaCha, &[seed; 32]),
    );
    let result = runner.run(&vec(any::<u8>(), 0..48), |picks| {
        drive(machine, &picks).map_err(|(at, v)| {
            proptest::test_runner::TestCaseError::fail(format!("step {at}: {v}"))
        })?;
        Ok(())
    });
    assert!(result.is_ok(), "{result:?}");
}

// AC-PRESENCE-8, AC-MACHINES-5
#[test]
fn presence_invariants_hold_for_arbitrary_sequences() {
    holds(&Presence::default(), 1);
}

// AC-ROLLOUT-7, AC-MACHINES-5
#[test]
fn rollout_invariants_hold_for_arbitrary_sequences() {
    holds(&Rollout, 2);
}

// AC-MACHINES-5
#[test]
fn session_invariants_hold_for_arbitrary_sequences() {
    holds(&session_machine(), 3);
}

// AC-LEASE-6, AC-MACHINES-5
#[test]
fn lease_invariants_hold_for_arbitrary_sequences() {
    holds(&Lease::default(), 5);
}

// AC-PRESENCE-8
#[test]
fn presence_apply_in_place_decides_exactly_as_step() {
    use arqon_core::machine::Machine;
    let machine = Presence::default();
    let mut runner = TestRunner::new_with_rng(
        Config {
            cases: 256,
            failure_persistence: None,
            ..Config::default()
        },
        TestRng::from_seed(RngAlgorithm::ChaCha, &[4; 32]),
    );
    let result = runner.run(&vec(any::<u8>(), 0..48), |picks| {
        let mut in_place = machine.initial();
        let mut stepped = machine.initial();
        for pick in picks {
            let alphabet = machine.alphabet(&stepped);
            let event = &alphabet[usize::from(pick) % alphabet.len()];
            let applied = machine.apply(&mut in_place, event);
            match machine.step(&stepped, event) {
                Ok(step) => {
                    proptest::prop_assert_eq!(applied, Ok(step.effects));
                    stepped = step.state;
                }
                Err(rejection) => proptest::prop_assert_eq!(applied, Err(rejection)),
            }
            proptest::prop_assert_eq!(&in_place, &stepped);
        }
        Ok(())
    });
    assert!(result.is_ok(), "{result:?}");
}
