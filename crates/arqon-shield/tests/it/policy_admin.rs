//! Seed 003 US3 end to end over real WebSocket connections, with policies deployed through the admin API
//! (`POST /admin/v1/policies/{scope}`, `GET /admin/v1/policies`): blocking, routing, fail closed,
//! refused deploys, admin-only access, and a hot reload in the middle of a stream of publishes.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arqon_auth::{Claims, Role};
use arqon_config::{Config, Rate};
use arqon_proto::names::{TenantId, UserId};
use arqon_proto::v1::{self, envelope::Body};
use arqon_shield::Node;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{self, WAIT, connect, keys, now_secs, token};

pub(crate) fn fixture(name: &str) -> Vec<u8> {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(format!("../arqon-policy/fixtures/{name}.wat"));
    std::fs::read(path).unwrap()
}

pub(crate) fn role_token(tenant: &str, role: Role) -> String {
    let claims = Claims::dev(
        TenantId::parse(tenant).unwrap(),
        UserId::parse("root").unwrap(),
        role,
        now_secs(),
        300,
    );
    keys().mint(&claims).unwrap()
}

/// A dev config with publish limits high enough for a stream, and a policy time budget with room
/// for a loaded test machine (the 2 ms default is for production; a runaway module is still stopped).
pub(crate) fn config() -> Config {
    let mut config = support::config();
    config.policy.time_budget = arqon_config::Duration::from_millis(250);
    let fast = Rate {
        per_sec: 100_000,
        burst: 100_000,
    };
    config.limits.tenant_defaults.connection_publish = fast;
    config.limits.tenant_defaults.tenant_publish = fast;
    config
}

/// One HTTP/1.1 request to the node; returns the status and the JSON body (`Null` if not JSON).
pub(crate) async fn http(
    node: &Node,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &[u8],
) -> (u16, Value) {
    let mut stream = TcpStream::connect(node.local_addr()).await.unwrap();
    let auth = token.map_or_else(String::new, |t| format!("Authorization: Bearer {t}\r\n"));
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: test\r\n{auth}Connection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut response))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// Deploys fixture `name` as `scope`'s chain with an admin token of `tenant`.
async fn deploy(node: &Node, tenant: &str, scope: &str, name: &str) -> (u16, Value) {
    let admin = role_token(tenant, Role::Admin);
    let path = format!("/admin/v1/policies/{scope}?name={name}");
    http(node, "POST", &path, Some(&admin), &fixture(name)).await
}

fn error_of(body: Body) -> v1::Error {
    match body {
        Body::Error(e) => e,
        other => panic!("expected an Error, got {other:?}"),
    }
}

// AC-POLICY-19 (US3 scenarios 1 and 2)
#[tokio::test]
async fn deployed_bad_words_policy_blocks_malware_for_nobody_and_routes_clean_messages() {
    let node = support::start(config()).await;
    let (status, body) = deploy(&node, "acme", "tenant/acme", "bad_words").await;
    assert_eq!(status, 200, "{body}");
    let sha = arqon_policy::sha256_hex(&fixture("bad_words"));
    assert_eq!(body["modules"][0]["sha256"], sha.as_str(), "{body}");

    let (mut a, _) = connect(&node, &token("acme", "alice", 60)).await;
    let (mut b, _) = connect(&node, &token("acme", "bob", 60)).await;
    a.join("lobby").await;
    b.join("lobby").await;
    for forbidden in [&b"this is malware"[..], b"a virus!"] {
        let id = a.publish("lobby", forbidden).await;
        let error = error_of(a.expect_reply(&id).await);
        assert_eq!(error.code(), v1::ErrorCode::PolicyBlocked);
        assert_eq!(error.message, "Message blocked by policy");
    }
    // The clean marker is the first message bob sees: neither forbidden one was routed.
    let id = a.publish("lobby", b"clean marker").await;
    a.expect_ack(&id).await;
    assert_eq!(&b.next_message().await[..], b"clean marker");
    // Another tenant is not judged by acme's chain.
    let (mut c, _) = connect(&node, &token("other", "carol", 60)).await;
    c.join("lobby").await;
    let id = c.publish("lobby", b"malware talk").await;
    c.expect_ack(&id).await;

    let admin = role_token("acme", Role::Admin);
    let (status, list) = http(&node, "GET", "/admin/v1/policies", Some(&admin), b"").await;
    assert_eq!(status, 200, "{list}");
    let chains = list["chains"].as_array().unwrap();
    let acme = chains
        .iter()
        .find(|c| c["scope"] == "tenant/acme")
        .unwrap_or_else(|| panic!("{list}"));
    assert_eq!(acme["modules"][0]["name"], "bad_words");
    assert_eq!(acme["modules"][0]["sha256"], sha.as_str());
    drop((a, b, c));
    node.shutdown().await;
}

// AC-POLICY-20 (US3 scenario 3)
#[tokio::test]
async fn deployed_policies_that_trap_time_out_or_blow_memory_block_and_the_node_keeps_serving() {
    let node = support::start(config()).await;
    for (tenant, fixture_name, code) in [
        ("trapper", "trap", v1::ErrorCode::PolicyTrap),
        ("loopy", "infinite_loop", v1::ErrorCode::PolicyTimeout),
        ("bomber", "memory_bomb", v1::ErrorCode::PolicyMemory),
    ] {
        let scope = format!("tenant/{tenant}");
        let (status, body) = deploy(&node, tenant, &scope, fixture_name).await;
        assert_eq!(status, 200, "{tenant}: {body}");
        let (mut a, _) = connect(&node, &token(tenant, "alice", 60)).await;
        let (mut b, _) = connect(&node, &token(tenant, "bob", 60)).await;
        a.join("lobby").await;
        b.join("lobby").await;
        let id = a.publish("lobby", b"!trigger").await;
        let error = error_of(a.expect_reply(&id).await);
        assert_eq!(error.code(), code, "{tenant}");
        assert_eq!(error.message, "Message blocked by policy");
        // Fail closed: the triggering message reached nobody; the node still routes.
        let id = a.publish("lobby", b"after the failure").await;
        a.expect_ack(&id).await;
        assert_eq!(
            &b.next_message().await[..],
            b"after the failure",
            "{tenant}"
        );
    }
    node.shutdown().await;
}

// AC-POLICY-21
#[tokio::test]
async fn a_refused_deploy_names_its_code_and_leaves_the_old_chain_in_force() {
    let node = support::start(config()).await;
    let (status, body) = deploy(&node, "acme", "tenant/acme", "bad_words").await;
    assert_eq!(status, 200, "{body}");
    let admin = role_token("acme", Role::Admin);
    let before = http(&node, "GET", "/admin/v1/policies", Some(&admin), b"").await;
    for (fixture_name, code) in [
        ("missing_evaluate", "POLICY_ABI"),
        ("wrong_type_evaluate", "POLICY_ABI"),
        ("imports_host", "POLICY_ABI"),
        ("not_wasm", "POLICY_LOAD"),
        ("selftest_fails", "POLICY_LOAD"),
    ] {
        let (status, body) = deploy(&node, "acme", "tenant/acme", fixture_name).await;
        assert_eq!(status, 422, "{fixture_name}: {body}");
        assert_eq!(body["code"], code, "{fixture_name}: {body}");
        assert_eq!(body["module"], fixture_name);
    }
    let after = http(&node, "GET", "/admin/v1/policies", Some(&admin), b"").await;
    assert_eq!(before, after);
    // The old chain still judges.
    let (mut a, _) = connect(&node, &token("acme", "alice", 60)).await;
    a.join("lobby").await;
    let id = a.publish("lobby", b"malware").await;
    assert_eq!(
        error_of(a.expect_reply(&id).await).code(),
        v1::ErrorCode::PolicyBlocked
    );
    let (_, metrics) = support::http_get(&node, "/metrics").await;
    assert!(
        metrics.contains("arqonbus_policy_deploys{outcome=\"ok\"} 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("arqonbus_policy_deploys{outcome=\"abi\"} 3\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("arqonbus_policy_deploys{outcome=\"load\"} 2\n"),
        "{metrics}"
    );
    node.shutdown().await;
}

// AC-POLICY-22
#[tokio::test]
async fn only_an_admin_token_of_the_tenant_may_deploy_or_list() {
    let node = support::start(config()).await;
    let module = fixture("allow_all");
    let path = "/admin/v1/policies/tenant/acme";
    let (status, _) = http(&node, "POST", path, None, &module).await;
    assert_eq!(status, 401);
    let (status, _) = http(&node, "POST", path, Some("not.a.token"), &module).await;
    assert_eq!(status, 401);
    let (status, _) = http(&node, "GET", "/admin/v1/policies", None, b"").await;
    assert_eq!(status, 401);
    for role in [Role::User, Role::Service, Role::Operator, Role::Tier1] {
        let token = role_token("acme", role);
        let (status, body) = http(&node, "POST", path, Some(&token), &module).await;
        assert_eq!(status, 403, "{role:?}: {body}");
        let (status, _) = http(&node, "GET", "/admin/v1/policies", Some(&token), b"").await;
        assert_eq!(status, 403, "{role:?}");
    }
    let other_admin = role_token("other", Role::Admin);
    let (status, _) = http(&node, "POST", path, Some(&other_admin), &module).await;
    assert_eq!(status, 403);
    let admin = role_token("acme", Role::Admin);
    let (status, body) = http(&node, "POST", path, Some(&admin), &module).await;
    assert_eq!(status, 200, "{body}");
    // The other tenant's admin does not see acme's chain.
    let (_, list) = http(&node, "GET", "/admin/v1/policies", Some(&other_admin), b"").await;
    assert!(
        list["chains"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["scope"] != "tenant/acme"),
        "{list}"
    );
    node.shutdown().await;
}

/// What happened to one published message of the stream.
struct Sent {
    payload: String,
    forbidden: bool,
    after_swap: bool,
    routed: bool,
}

// AC-POLICY-23
#[tokio::test]
async fn hot_reload_mid_stream_loses_nothing_and_lets_nothing_forbidden_through() {
    const BEFORE: usize = 60;
    const AFTER: usize = 60;
    let node = Arc::new(support::start(config()).await);
    let (status, body) = deploy(&node, "stream", "tenant/stream", "allow_all").await;
    assert_eq!(status, 200, "{body}");
    let (mut publisher, _) = connect(&node, &token("stream", "pub", 60)).await;
    let (mut subscriber, _) = connect(&node, &token("stream", "sub", 60)).await;
    publisher.join("feed").await;
    subscriber.join("feed").await;

    let swapped = Arc::new(AtomicBool::new(false));
    let (progress_tx, mut progress) = tokio::sync::watch::channel(0_usize);
    let deployer = {
        let node = Arc::clone(&node);
        let swapped = Arc::clone(&swapped);
        tokio::spawn(async move {
            // Swap once the stream is well under way; the publisher keeps going meanwhile.
            progress.wait_for(|n| *n >= BEFORE).await.unwrap();
            let (status, body) = deploy(&node, "stream", "tenant/stream", "bad_words").await;
            assert_eq!(status, 200, "{body}");
            swapped.store(true, Ordering::SeqCst);
        })
    };
    let reader = tokio::spawn(async move {
        let mut seen = Vec::new();
        loop {
            let payload = subscriber.next_message().await;
            if &payload[..] == b"end" {
                return seen;
            }
            seen.push(String::from_utf8(payload.to_vec()).unwrap());
        }
    });

    let mut sent: Vec<Sent> = Vec::new();
    let mut after = 0;
    let mut i = 0_usize;
    while after < AFTER {
        assert!(i < 100_000, "the swap never happened");
        let after_swap = swapped.load(Ordering::SeqCst);
        let forbidden = i.is_multiple_of(3);
        let payload = if forbidden {
            format!("{i} malware")
        } else {
            format!("{i} clean")
        };
        let id = publisher.publish("feed", payload.as_bytes()).await;
        let routed = match publisher.expect_reply(&id).await {
            Body::Ack(_) => true,
            Body::Error(e) => {
                assert_eq!(e.code(), v1::ErrorCode::PolicyBlocked, "{payload}");
                false
            }
            other => panic!("{other:?}"),
        };
        sent.push(Sent {
            payload,
            forbidden,
            after_swap,
            routed,
        });
        if after_swap {
            after += 1;
        }
        i += 1;
        progress_tx.send_replace(i);
    }
    deployer.await.unwrap();
    let id = publisher.publish("feed", b"end").await;
    publisher.expect_ack(&id).await;
    let seen = tokio::time::timeout(WAIT, reader).await.unwrap().unwrap();

    // Nothing lost, in order: the subscriber saw exactly the routed messages.
    let routed: Vec<&str> = sent
        .iter()
        .filter(|s| s.routed)
        .map(|s| s.payload.as_str())
        .collect();
    assert_eq!(seen, routed);
    assert!(sent.iter().filter(|s| !s.forbidden).all(|s| s.routed));
    // Nothing unfiltered: every forbidden message sent after the swap was acknowledged was blocked.
    assert!(
        sent.iter()
            .filter(|s| s.forbidden && s.after_swap)
            .all(|s| !s.routed)
    );
    // The swap really happened mid-stream: forbidden messages passed before it and none after.
    assert!(
        sent.iter()
            .any(|s| s.forbidden && s.routed && !s.after_swap)
    );
    assert!(sent.iter().filter(|s| s.after_swap).count() >= AFTER);
    drop(publisher);
    Arc::into_inner(node).unwrap().shutdown().await;
}
