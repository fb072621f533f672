//! Transition coverage: breadth-first over each machine's alphabet, every row of its table fires.

use arqon_model::coverage::every_machine;

// AC-MACHINES-2, AC-LEASE-6: rollout, presence, session and lease each fire every row of their table;
// `cargo xtask transitions` reports the same list to ACES.
#[test]
fn every_transition_of_every_machine_fires() {
    let summaries = every_machine();
    let names: Vec<&str> = summaries.iter().map(|s| s.machine).collect();
    assert_eq!(names, ["rollout", "presence", "session", "lease"]);
    for summary in summaries {
        println!(
            "{}: {}/{} transitions, {} states",
            summary.machine, summary.fired, summary.total, summary.states
        );
        assert!(summary.violation.is_none(), "{:?}", summary.violation);
        assert!(
            summary.missing.is_empty(),
            "{} rows never fired: {:#?}",
            summary.machine,
            summary.missing
        );
        assert_eq!(summary.fired, summary.total);
    }
}
