//! The seeded cluster simulation (specs/simulation.md): the real machines keep every invariant over
//! the CI batch of seeds, every planted bug is found within it, and a seed replays exactly.

use arqon_model::sim::config::{Bug, Report, SimConfig};
use arqon_model::sim::world::{run, run_traced};

/// The CI batch: seeds 0.. of this many (`cargo xtask sim --seeds N` runs more).
const CI_SEEDS: u64 = 40;

fn batch(bug: Bug) -> Vec<Report> {
    let config = SimConfig {
        bug,
        ..SimConfig::default()
    };
    (0..CI_SEEDS).map(|seed| run(seed, &config)).collect()
}

// AC-SIM-1, AC-SIM-2
#[test]
fn ac_sim_1_the_real_machines_keep_every_invariant_under_faults() {
    let reports = batch(Bug::None);
    for report in &reports {
        assert!(
            report.violation.is_none(),
            "seed {} broke {:?}; replay: cargo xtask sim --seed {} --trace",
            report.seed,
            report.violation,
            report.seed
        );
    }
    // The batch did exercise what it claims: faults, failovers, deliveries, presence, audits.
    let total = |f: fn(&Report) -> u64| reports.iter().map(f).sum::<u64>();
    let crashes = total(|r| r.stats.crashes);
    let partitions = total(|r| r.stats.partitions);
    let stalls = total(|r| r.stats.stalls);
    let failovers = total(|r| r.stats.failovers);
    let lost = total(|r| r.stats.lost);
    let delivered = total(|r| r.stats.delivered);
    let shown = total(|r| r.stats.presence_events);
    let audited = total(|r| r.stats.audit_records);
    let reconnects = total(|r| r.stats.reconnects);
    println!(
        "{CI_SEEDS} seeds: {crashes} crashes, {partitions} partitions, {stalls} stalls, {failovers} failovers, {lost} lost, {delivered} delivered, {shown} presence changes shown, {audited} audit records, {reconnects} reconnects"
    );
    for (name, value) in [
        ("crashes", crashes),
        ("partitions", partitions),
        ("stalls", stalls),
        ("failovers", failovers),
        ("lost", lost),
        ("delivered", delivered),
        ("presence", shown),
        ("audited", audited),
        ("reconnects", reconnects),
    ] {
        assert!(value > 0, "the batch never saw {name}");
    }
}

// AC-SIM-3
#[test]
fn ac_sim_3_a_seed_replays_exactly() {
    let config = SimConfig::default();
    for seed in [3, 17] {
        let first = run(seed, &config);
        let again = run(seed, &config);
        let (traced, lines) = run_traced(seed, &config);
        assert_eq!(first, again);
        assert_eq!(first, traced);
        assert_eq!(lines.len() as u64, first.stats.steps);
    }
    assert_ne!(run(1, &config).digest, run(2, &config).digest);
}

/// How many seeds the planted-bug test may try, in order, before it calls the bug missed.
const BUG_SEEDS: u64 = 150;

// AC-SIM-4
#[test]
fn ac_sim_4_every_planted_bug_is_found_within_the_ci_batch_and_replays() {
    for bug in Bug::PLANTED {
        let config = SimConfig {
            bug,
            ..SimConfig::default()
        };
        let failing = (0..BUG_SEEDS)
            .map(|seed| run(seed, &config))
            .find(|r| r.violation.is_some())
            .unwrap_or_else(|| panic!("{} was not found in {BUG_SEEDS} seeds", bug.name()));
        let found = failing.violation.clone().unwrap();
        let expected = match bug {
            Bug::LeaseCountsFromAnswer => ["one-writer", "audit-chain-never-forks"].as_slice(),
            Bug::PresenceForgetsLeaves => ["presence-converges"].as_slice(),
            Bug::None => &[],
        };
        assert!(
            expected.contains(&found.invariant),
            "{}: seed {} broke {found:?}",
            bug.name(),
            failing.seed
        );
        // The failing seed replays to the same step and the same broken invariant.
        let (replayed, trace) = run_traced(failing.seed, &config);
        assert_eq!(replayed, failing);
        assert!(trace.last().unwrap().starts_with("BROKEN"));
        println!("{}: found by seed {}: {found:?}", bug.name(), failing.seed);
    }
}
