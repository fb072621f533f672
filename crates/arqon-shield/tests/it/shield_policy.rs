//! Seed 003 US3 through the Shield: the Wasm policy chain runs on every publish and fails closed.

use std::path::PathBuf;

use arqon_config::PolicyChain;
use arqon_proto::v1::{self, envelope::Body};

use crate::support::{self, connect, token};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../arqon-policy/fixtures/{name}.wat"))
}

// AC-SHIELD-17
#[tokio::test]
async fn policy_blocks_malware_routes_clean_messages_and_fails_closed_per_tenant() {
    let mut config = support::config();
    // Room for a loaded test machine (the 2 ms default would time out under CPU contention).
    config.policy.time_budget = arqon_config::Duration::from_millis(250);
    config.policy.global = vec![fixture("bad_words")];
    config.policy.tenants.insert(
        "loopy".to_owned(),
        PolicyChain {
            chain: vec![fixture("infinite_loop")],
        },
    );
    config.policy.tenants.insert(
        "broken".to_owned(),
        PolicyChain {
            chain: vec![fixture("does_not_exist")],
        },
    );
    let node = support::start(config).await;
    let (mut a, _) = connect(&node, &token("acme", "alice", 60)).await;
    let (mut b, _) = connect(&node, &token("acme", "bob", 60)).await;
    a.join("lobby").await;
    b.join("lobby").await;

    // US3-1: blocked with an error, not routed.
    let id = a.publish("lobby", b"this is malware").await;
    match a.expect_reply(&id).await {
        Body::Error(e) => assert_eq!(e.code(), v1::ErrorCode::PolicyBlocked),
        other => panic!("{other:?}"),
    }
    // US3-2: a clean message is routed, and it is the first thing B sees.
    let id = a.publish("lobby", b"hello").await;
    a.expect_ack(&id).await;
    let first = b.next_message().await;
    assert_eq!(&first[..], b"hello");

    // US3-3: a policy that never finishes, or one that cannot load, blocks (fail closed).
    for (tenant, code) in [
        ("loopy", v1::ErrorCode::PolicyTimeout),
        ("broken", v1::ErrorCode::PolicyLoad),
    ] {
        let (mut c, _) = connect(&node, &token(tenant, "carol", 60)).await;
        c.join("lobby").await;
        let id = c.publish("lobby", b"!trigger").await;
        match c.expect_reply(&id).await {
            Body::Error(e) => assert_eq!(e.code(), code, "{tenant}"),
            other => panic!("{tenant}: {other:?}"),
        }
    }
    assert!(
        node.metrics()
            .policy_blocked
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 3
    );
    drop((a, b));
    node.shutdown().await;
}
