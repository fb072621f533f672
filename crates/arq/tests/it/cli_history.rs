//! `arq history` through the real binary against a real node (dev keys, embedded spine): the newest
//! messages of a room, oldest first; another tenant's token is refused (`specs/history.md`).

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use arqon_auth::{Claims, DevKeys, Role};
use arqon_client::BusClient;
use arqon_proto::names::{TenantId, UserId};
use arqon_shield::Node;

fn mint(keys: &Path, tenant: &str, role: Role) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = Claims::dev(
        TenantId::parse(tenant).unwrap(),
        UserId::parse("alice").unwrap(),
        role,
        now,
        600,
    );
    DevKeys::load(keys).unwrap().mint(&claims).unwrap()
}

/// Runs `arq history <args>` against `node`.
async fn history(node: &Node, cwd: PathBuf, args: &[&str]) -> (i32, String, String) {
    let mut all: Vec<String> = vec!["history".into()];
    all.extend(args.iter().map(|a| (*a).to_owned()));
    all.extend(["--url".into(), format!("http://{}", node.local_addr())]);
    tokio::task::spawn_blocking(move || {
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        crate::run(&refs, &cwd)
    })
    .await
    .unwrap()
}

// AC-HISTORY-15
#[tokio::test]
async fn ac_history_15_arq_history_prints_the_newest_messages_of_a_room() {
    let cwd = tempfile::tempdir().unwrap();
    let keys = cwd.path().join("keys");
    DevKeys::generate().unwrap().save(&keys).unwrap();
    let mut config = arqon_config::Config::dev_default();
    config.node.listen = "127.0.0.1:0".parse().unwrap();
    config.auth.dev_keys_dir.clone_from(&keys);
    let node = Node::start(config).await.unwrap();
    let client = BusClient::connect(&node.socket_url(), &mint(&keys, "acme", Role::User))
        .await
        .unwrap();
    client.join("lobby").await.unwrap();
    for i in 0..30 {
        client
            .publish("lobby", format!("hello {i}").into_bytes(), "text/plain")
            .await
            .unwrap();
    }
    let keys_arg = keys.display().to_string();
    let (code, out, err) = history(
        &node,
        cwd.path().to_path_buf(),
        &[
            "lobby", "--tenant", "acme", "--last", "20", "--keys", &keys_arg,
        ],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("20 messages of acme/lobby"), "{out}");
    assert!(
        lines[1].ends_with("hello 10") && lines[1].contains("alice"),
        "{out}"
    );
    assert!(lines[20].ends_with("hello 29"), "{out}");

    let (code, out, _) = history(
        &node,
        cwd.path().to_path_buf(),
        &[
            "lobby", "--tenant", "acme", "--last", "2", "--json", "--keys", &keys_arg,
        ],
    )
    .await;
    assert_eq!(code, 0);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["messages"][1]["text"], "hello 29");

    // A token of another tenant cannot read acme's rooms.
    let beta = mint(&keys, "beta", Role::Operator);
    let (code, _, err) = history(
        &node,
        cwd.path().to_path_buf(),
        &["lobby", "--tenant", "acme", "--token", &beta],
    )
    .await;
    assert_eq!(code, 1);
    assert!(err.contains("HTTP 403"), "{err}");
    node.shutdown().await;
}
