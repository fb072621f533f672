//! Transition coverage: breadth-first over each machine's alphabet, every row of its table fires.

use arqon_core::lease::Lease;
use arqon_core::machine::Machine;
use arqon_core::presence::Presence;
use arqon_core::rollout::Rollout;
use arqon_model::coverage::{Coverage, explore};
use arqon_model::suite::session_machine;

fn assert_full<M: Machine>(coverage: &Coverage<M>) {
    println!(
        "{}: {}/{} transitions, {} states",
        M::NAME,
        coverage.fired(),
        M::transitions().len(),
        coverage.states
    );
    assert!(coverage.violation.is_none(), "{:?}", coverage.violation);
    let missing = coverage.missing();
    assert!(
        missing.is_empty(),
        "{} rows never fired: {missing:#?}",
        M::NAME
    );
}

// AC-MACHINES-2
#[test]
fn every_rollout_transition_fires() {
    assert_full(&explore(&Rollout, 10));
}

// AC-MACHINES-2
#[test]
fn every_presence_transition_fires() {
    assert_full(&explore(&Presence::default(), 5));
}

// AC-MACHINES-2
#[test]
fn every_session_transition_fires() {
    assert_full(&explore(&session_machine(), 7));
}

// AC-LEASE-6, AC-MACHINES-2
#[test]
fn every_lease_transition_fires() {
    assert_full(&explore(&Lease::default(), 8));
}
