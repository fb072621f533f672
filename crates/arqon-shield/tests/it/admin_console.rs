//! The admin console's page and read-only admin endpoints over real sockets (`specs/console.md`): the
//! strict CSP on every console response, the token and tenant checks, and what a tenant's admin sees
//! of connections, rooms, policy chains (block counts, deploy history) and the audit chain.

use arqon_auth::Role;
use serde_json::Value;

use crate::gov_e2e::admin;
use crate::policy_admin::{config, fixture, http, role_token};
use crate::support::{self, connect, http_get_head, token};

async fn get(node: &arqon_shield::Node, path: &str, token: &str) -> (u16, Value) {
    http(node, "GET", path, Some(token), b"").await
}

// AC-CONSOLE-1
#[tokio::test]
async fn every_console_response_carries_the_strict_csp() {
    let node = support::start(config()).await;
    let csp = format!("content-security-policy: {}", arqon_console::CSP);
    for (path, status, kind) in [
        ("/admin/", 200, "text/html"),
        ("/admin/console.js", 200, "text/javascript"),
        ("/admin/console.css", 200, "text/css"),
        ("/admin/favicon.svg", 200, "image/svg+xml"),
        ("/admin", 308, ""),
    ] {
        let (got, head, body) = http_get_head(&node, path).await;
        let head = head.to_ascii_lowercase();
        assert_eq!(got, status, "{path}: {head}");
        assert!(head.contains(&csp), "{path}: {head}");
        assert!(head.contains("x-content-type-options: nosniff"), "{path}");
        if !kind.is_empty() {
            assert!(
                head.contains(&format!("content-type: {kind}")),
                "{path}: {head}"
            );
        }
        if path == "/admin/" {
            assert!(body.contains(r#"<script src="/admin/console.js" defer></script>"#));
        }
    }
    node.shutdown().await;
}

// AC-CONSOLE-2
#[tokio::test]
async fn console_endpoints_need_an_admin_token_of_the_tenant() {
    let node = support::start(config()).await;
    let admin = role_token("acme", Role::Admin);
    let operator = role_token("acme", Role::Operator);
    let user = role_token("acme", Role::User);
    let other = role_token("globex", Role::Admin);
    let tenant_paths = ["connections", "rooms", "audit", "policies"]
        .map(|p| format!("/admin/v1/tenants/acme/{p}"));
    let node_paths = ["/admin/v1/whoami".to_owned(), "/admin/v1/node".to_owned()];
    for path in tenant_paths.iter().chain(&node_paths) {
        assert_eq!(http(&node, "GET", path, None, b"").await.0, 401, "{path}");
        assert_eq!(get(&node, path, "not.a.token").await.0, 401, "{path}");
        assert_eq!(get(&node, path, &user).await.0, 403, "{path}");
        assert_eq!(get(&node, path, &admin).await.0, 200, "{path}");
    }
    for path in &tenant_paths {
        // An admin of another tenant is refused, whatever the route.
        assert_eq!(get(&node, path, &other).await.0, 403, "{path}");
    }
    // Operators read connections, rooms and the audit chain; policy chains are for role admin.
    for path in &tenant_paths[..3] {
        assert_eq!(get(&node, path, &operator).await.0, 200, "{path}");
    }
    assert_eq!(get(&node, &tenant_paths[3], &operator).await.0, 403);
    let (_, who) = get(&node, "/admin/v1/whoami", &admin).await;
    assert_eq!(
        (&who["tenant"], &who["role"], &who["may_deploy"]),
        (&"acme".into(), &"admin".into(), &true.into())
    );
    node.shutdown().await;
}

// AC-CONSOLE-3
#[tokio::test]
async fn a_tenant_admin_sees_only_its_own_connections_and_rooms() {
    let node = support::start(config()).await;
    let (mut alice, _) = connect(&node, &token("acme", "alice", 60)).await;
    let (mut alice2, _) = connect(&node, &token("acme", "alice", 60)).await;
    let (mut carol, _) = connect(&node, &token("globex", "carol", 60)).await;
    alice.join("lobby").await;
    alice2.join("lobby").await;
    carol.join("secret").await;

    let acme = role_token("acme", Role::Admin);
    let (status, connections) = get(&node, "/admin/v1/tenants/acme/connections", &acme).await;
    assert_eq!(status, 200, "{connections}");
    assert_eq!(connections["open"], 2, "{connections}");
    assert_eq!(
        connections["users"],
        serde_json::json!([{ "user": "alice", "connections": 2 }])
    );
    let (_, rooms) = get(&node, "/admin/v1/tenants/acme/rooms", &acme).await;
    let listed = rooms["rooms"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{rooms}");
    assert_eq!(listed[0]["room"], "lobby");
    assert_eq!(listed[0]["local_members"], 2);
    let members: Vec<&str> = listed[0]["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["user"].as_str().unwrap())
        .collect();
    assert_eq!(members, ["alice", "alice"], "{rooms}");
    for text in [connections.to_string(), rooms.to_string()] {
        assert!(
            !text.contains("carol") && !text.contains("secret"),
            "{text}"
        );
    }

    let globex = role_token("globex", Role::Admin);
    let (_, theirs) = get(&node, "/admin/v1/tenants/globex/connections", &globex).await;
    assert_eq!(theirs["open"], 1, "{theirs}");
    let (_, their_rooms) = get(&node, "/admin/v1/tenants/globex/rooms", &globex).await;
    assert_eq!(their_rooms["rooms"][0]["room"], "secret", "{their_rooms}");
    assert!(!their_rooms.to_string().contains("alice"));
    drop((alice, alice2, carol));
    node.shutdown().await;
}

// AC-CONSOLE-4
#[tokio::test]
async fn the_policy_view_counts_blocks_and_keeps_the_deploy_history() {
    let node = support::start(config()).await;
    let acme = role_token("acme", Role::Admin);
    let deploy = |name: &'static str| {
        let acme = acme.clone();
        let node = &node;
        async move {
            let path = format!("/admin/v1/policies/tenant/acme?name={name}");
            http(node, "POST", &path, Some(&acme), &fixture(name))
                .await
                .0
        }
    };
    assert_eq!(deploy("bad_words").await, 200);
    assert_eq!(deploy("not_wasm").await, 422);
    let (mut alice, _) = connect(&node, &token("acme", "alice", 60)).await;
    alice.join("lobby").await;
    for forbidden in [&b"malware inside"[..], b"virus", b"more malware"] {
        let id = alice.publish("lobby", forbidden).await;
        assert!(matches!(
            alice.expect_reply(&id).await,
            arqon_proto::v1::envelope::Body::Error(_)
        ));
    }
    let id = alice.publish("lobby", b"clean").await;
    alice.expect_ack(&id).await;

    let (status, view) = get(&node, "/admin/v1/tenants/acme/policies", &acme).await;
    assert_eq!(status, 200, "{view}");
    let chains = view["chains"].as_array().unwrap();
    let chain = |scope: &str| chains.iter().find(|c| c["scope"] == scope).unwrap();
    assert_eq!(chain("tenant/acme")["blocked"], 3, "{view}");
    assert_eq!(chain("tenant/acme")["modules"][0]["name"], "bad_words");
    // The global chain judges every tenant: its count is not a tenant's to see.
    assert_eq!(chain("global")["blocked"], Value::Null, "{view}");
    let outcomes: Vec<(&str, &str)> = view["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["module"].as_str().unwrap(),
                d["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(outcomes, [("bad_words", "ok"), ("not_wasm", "POLICY_LOAD")]);
    assert_eq!(view["history"][0]["by"], "root");
    assert_eq!(
        view["history"][0]["sha256"],
        arqon_policy::sha256_hex(&fixture("bad_words")).as_str()
    );

    // Another tenant's admin sees neither acme's chain nor its history.
    let globex = role_token("globex", Role::Admin);
    let (_, theirs) = get(&node, "/admin/v1/tenants/globex/policies", &globex).await;
    assert_eq!(theirs["history"], serde_json::json!([]), "{theirs}");
    assert!(!theirs.to_string().contains("acme"), "{theirs}");
    drop(alice);
    node.shutdown().await;
}

// AC-CONSOLE-5
#[tokio::test]
async fn the_audit_view_lists_a_tampered_chain_and_names_its_first_bad_record() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config();
    config.governance.audit_path = dir.path().to_path_buf();
    let node = support::start(config).await;
    let operator = role_token("acme", Role::Operator);
    let (_, empty) = get(&node, "/admin/v1/tenants/acme/audit", &operator).await;
    assert_eq!(
        empty["verification"],
        serde_json::json!({ "ok": true, "records": 0 })
    );
    for action in ["pause", "resume"] {
        let body = serde_json::json!({ "action": action });
        let path = "/admin/v1/tenants/acme/governance/enforce";
        let (status, answer) = admin(&node, &operator, "POST", path, Some(&body)).await;
        assert_eq!(status, 200, "{answer}");
    }
    let (status, view) = get(&node, "/admin/v1/tenants/acme/audit", &operator).await;
    assert_eq!(status, 200, "{view}");
    let stored = view["records"].as_array().unwrap().len();
    assert!(stored >= 2, "{view}");
    assert_eq!(view["verification"]["ok"], true, "{view}");
    assert_eq!(view["verification"]["records"], stored);

    let file = dir.path().join("acme.audit.jsonl");
    let text = std::fs::read_to_string(&file).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let mut second: Value = serde_json::from_str(&lines[1]).unwrap();
    second["record"]["actor"] = "someone-else".into();
    lines[1] = second.to_string();
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();

    let (status, view) = get(&node, "/admin/v1/tenants/acme/audit", &operator).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["verification"]["ok"], false, "{view}");
    assert_eq!(view["verification"]["first_bad_seq"], 2, "{view}");
    assert!(!view["verification"]["reason"].as_str().unwrap().is_empty());
    // The broken chain is still listed, with the altered record as stored.
    assert_eq!(view["records"].as_array().unwrap().len(), stored);
    assert_eq!(view["records"][1]["record"]["actor"], "someone-else");
    node.shutdown().await;
}
