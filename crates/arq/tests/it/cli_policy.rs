//! `arq policy deploy` and `arq policy list` through the real binary, against a real in-process node.

use std::path::{Path, PathBuf};

use arqon_auth::{Claims, DevKeys, Role};
use arqon_proto::names::{TenantId, UserId};
use arqon_shield::Node;
use serde_json::Value;

use crate::run;

fn fixture(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(format!("../arqon-policy/fixtures/{name}.wat"))
        .to_str()
        .expect("utf8 path")
        .to_owned()
}

/// A node on an ephemeral port trusting the dev keys in `keys_dir`, with the admin API on.
fn start_node(runtime: &tokio::runtime::Runtime, keys_dir: &Path) -> (Node, DevKeys) {
    let (keys, _) = DevKeys::load_or_generate(keys_dir).expect("dev keys");
    let mut config = arqon_config::Config::dev_default();
    config.node.listen = "127.0.0.1:0".parse().expect("addr");
    config.auth.jwks = Some(keys.to_jwks_json());
    config.admin.enabled = true;
    // Room for a loaded test machine; the 2 ms default is for production.
    config.policy.time_budget = arqon_config::Duration::from_millis(250);
    let node = runtime.block_on(Node::start(config)).expect("node");
    (node, keys)
}

fn list_json(common: &[&str], cwd: &Path) -> Value {
    let mut args = vec!["policy", "list", "--json", "--tenant", "acme"];
    args.extend_from_slice(common);
    let (code, stdout, stderr) = run(&args, cwd);
    assert_eq!(code, 0, "{stderr}");
    serde_json::from_str(&stdout).expect("list --json prints JSON")
}

// AC-POLICY-24
#[test]
fn arq_policy_deploys_lists_and_reports_refusals_against_a_node() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys_dir = dir.path().join("keys");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (node, keys) = start_node(&runtime, &keys_dir);
    let url = format!("http://{}", node.local_addr());
    let keys_arg = keys_dir.to_str().expect("utf8 path");
    let common = ["--url", url.as_str(), "--keys", keys_arg];

    // Deploy with the default dev admin token minted from the keys.
    let bad_words = fixture("bad_words");
    let mut args = vec!["policy", "deploy", bad_words.as_str(), "--tenant", "acme"];
    args.extend_from_slice(&common);
    let (code, stdout, stderr) = run(&args, dir.path());
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.starts_with("deployed bad_words.wat to tenant/acme  sha256 "),
        "{stdout}"
    );
    let sha = stdout.trim().rsplit(' ').next().expect("sha").to_owned();
    assert_eq!(sha.len(), 64, "{stdout}");

    // The human table and the JSON both show it in force with its hash.
    let mut args = vec!["policy", "list", "--tenant", "acme"];
    args.extend_from_slice(&common);
    let (code, table, stderr) = run(&args, dir.path());
    assert_eq!(code, 0, "{stderr}");
    let row = table
        .lines()
        .find(|l| l.starts_with("tenant/acme"))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(
        row.contains("bad_words.wat") && row.contains(&sha) && row.ends_with("loaded"),
        "{table}"
    );
    let listed = list_json(&common, dir.path());
    let acme = listed["chains"]
        .as_array()
        .expect("chains")
        .iter()
        .find(|c| c["scope"] == "tenant/acme")
        .cloned()
        .expect("acme chain");
    assert_eq!(acme["modules"][0]["sha256"], sha.as_str());

    // A module with wrong exports is refused with its code (exit 2); the chain is unchanged.
    let wrong = fixture("wrong_type_evaluate");
    let mut args = vec!["policy", "deploy", wrong.as_str(), "--tenant", "acme"];
    args.extend_from_slice(&common);
    let (code, _, stderr) = run(&args, dir.path());
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("POLICY_ABI"), "{stderr}");
    assert_eq!(list_json(&common, dir.path()), listed);

    // A token without role admin is refused by the node.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let user = keys
        .mint(&Claims::dev(
            TenantId::parse("acme").expect("tenant"),
            UserId::parse("mallory").expect("user"),
            Role::User,
            now,
            60,
        ))
        .expect("token");
    let mut args = vec![
        "policy",
        "deploy",
        bad_words.as_str(),
        "--global",
        "--token",
        user.as_str(),
    ];
    args.extend_from_slice(&common);
    let (code, _, stderr) = run(&args, dir.path());
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("403"), "{stderr}");

    // --global is refused even with an admin token: the global chain comes from the node's config,
    // and no tenant's admin may replace what every tenant runs.
    let allow_all = fixture("allow_all");
    let mut args = vec!["policy", "deploy", allow_all.as_str(), "--global", "--json"];
    args.extend_from_slice(&common);
    let (code, _, stderr) = run(&args, dir.path());
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("403"), "{stderr}");
    runtime.block_on(node.shutdown());
}
