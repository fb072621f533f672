//! Every model, at the CI bound: every `always` property holds and every `sometimes` is reached.

use arqon_model::run::Outcome;
use arqon_model::suite::{self, Depth};

fn check(name: &str) {
    let outcomes: Vec<Outcome> = suite::check(name, Depth::Default).unwrap();
    for o in &outcomes {
        println!(
            "{} / {}: {:?} states={} depth={} {}ms",
            o.model, o.property, o.verdict, o.unique_states, o.depth, o.elapsed_ms
        );
    }
    let failed: Vec<String> = outcomes
        .iter()
        .filter(|o| !o.verdict.passed())
        .map(|o| {
            format!(
                "{} {:?}\n{}",
                o.property,
                o.verdict,
                o.trace.clone().unwrap_or_default()
            )
        })
        .collect();
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

// AC-ROLLOUT-7
#[test]
fn rollout_model_holds() {
    check("rollout");
}

// AC-PRESENCE-8
#[test]
fn presence_model_holds() {
    check("presence");
}

#[test]
fn session_model_holds() {
    check("session");
}

// AC-PRESENCE-9
#[test]
fn cluster_model_holds() {
    check("cluster");
}

// AC-ROLLOUT-7
#[test]
fn replicas_model_holds() {
    check("replicas");
}

// AC-LEASE-6
#[test]
fn lease_model_holds() {
    check("lease");
}

// AC-LEASE-7: two nodes, a store whose key expires, lost answers and a crash: never two writers,
// and a failover is reached.
#[test]
fn leases_model_holds() {
    check("leases");
}

// AC-HISTORY-14: the recovery seam: every message after `since` exactly once, in order, with a
// live loss filled from history; the witness of a held duplicate dropped is reached.
#[test]
fn recovery_model_holds() {
    check("recovery");
}

// AC-PRESENCE-9
#[test]
fn three_node_cluster_keeps_its_safety_properties_at_a_small_bound() {
    use arqon_model::cluster::{self, ClusterConfig};
    use arqon_model::run::{self, Bound};
    let outcomes = run::check(
        "cluster-3",
        cluster::cluster(ClusterConfig::deep(), cluster::real_presence()),
        Bound {
            depth: 8,
            timeout: std::time::Duration::from_mins(1),
            max_states: 300_000,
        },
        cluster::describe,
    );
    let violated: Vec<&str> = outcomes
        .iter()
        .filter(|o| o.expectation == "always" && !o.verdict.passed())
        .map(|o| o.property.as_str())
        .collect();
    assert!(violated.is_empty(), "{violated:?}");
}
