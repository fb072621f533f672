//! Every refusal names the file, the key path, the line and the reason.

use arqon_config::{Config, ConfigError};

/// A valid dev base to which each case appends or edits lines.
const DEV: &str = "[node]\nid = \"n1\"\ndev = true\n";

/// Parses `text` and returns the problems as `(key, line, reason)`.
fn problems(text: &str) -> Vec<(String, Option<usize>, String)> {
    match Config::from_toml_str(text, "t.toml") {
        Ok(_) => Vec::new(),
        Err(error) => error
            .problems()
            .iter()
            .map(|p| (p.key.clone(), p.line, p.reason.clone()))
            .collect(),
    }
}

/// Asserts exactly one problem, at `key` on `line`, whose reason contains `reason`.
fn check(text: &str, key: &str, line: usize, reason: &str) {
    let found = problems(text);
    assert_eq!(found.len(), 1, "{text}\n{found:?}");
    let (got_key, got_line, got_reason) = &found[0];
    assert_eq!(got_key, key, "{found:?}");
    assert_eq!(*got_line, Some(line), "{found:?}");
    assert!(
        got_reason.contains(reason),
        "{got_reason:?} lacks {reason:?}"
    );
}

#[test]
fn dev_base_is_valid() {
    assert_eq!(problems(DEV), Vec::new());
}

// AC-CONFIG-1
#[test]
fn ac_config_1_unknown_key_is_rejected_with_key_and_line() {
    check(
        &format!("{DEV}bogus = 1\n"),
        "node.bogus",
        4,
        "unknown field `bogus`",
    );
    check(
        &format!("{DEV}[limits]\nmax_conections = 5\n"),
        "limits.max_conections",
        5,
        "unknown field",
    );
    check(&format!("{DEV}[nodes]\n"), "nodes", 4, "unknown field");
    check(
        &format!("{DEV}[limits.tenants.acme]\nmax_roms = 3\n"),
        "limits.tenants.acme.max_roms",
        5,
        "unknown field",
    );
}

// AC-CONFIG-2
#[test]
fn ac_config_2_bad_duration_and_size_name_key_and_line() {
    check(
        &format!("{DEV}[session]\nidle_timeout = \"45\"\n"),
        "session.idle_timeout",
        5,
        "invalid duration",
    );
    check(
        &format!("{DEV}[session]\nidle_timeout = 45\n"),
        "session.idle_timeout",
        5,
        "expected a duration",
    );
    check(
        &format!("{DEV}[limits]\nmax_frame = \"1MB\"\n"),
        "limits.max_frame",
        5,
        "invalid size",
    );
    check(
        &format!("{DEV}[auth]\nleeway = \"1.5s\"\n"),
        "auth.leeway",
        5,
        "invalid duration",
    );
}

// AC-CONFIG-3
#[test]
fn ac_config_3_out_of_range_value_names_key_and_line() {
    check(
        &format!("{DEV}\n[limits]\nmax_connections = 0\n"),
        "limits.max_connections",
        6,
        "0 is out of range 1..=1000000",
    );
    check(
        &format!(
            "{DEV}[limits.tenant_defaults]\nmax_connections = 10\nmax_connections_per_user = 11\n"
        ),
        "limits.tenant_defaults.max_connections_per_user",
        6,
        "11 is out of range 1..=10",
    );
    check(
        &format!("{DEV}[limits.tenants.acme]\nmax_rooms = 100000\n"),
        "limits.tenants.acme.max_rooms",
        5,
        "out of range",
    );
    check(
        &format!("{DEV}[governance]\nmin_confidence = 1.5\n"),
        "governance.min_confidence",
        5,
        "out of range 0..=1",
    );
    check(
        &format!("{DEV}[spine]\nkind = \"nats\"\nnats_urls = [\"nats://a:4222\", \"http://b\"]\n"),
        "spine.nats_urls[1]",
        6,
        "not a nats://",
    );
}

// AC-CONFIG-4
#[test]
fn ac_config_4_missing_tls_outside_dev_is_rejected() {
    let text =
        "[node]\nid = \"n1\"\n[auth]\njwks_file = \"j.json\"\nissuer = \"i\"\naudience = \"a\"\n";
    check(text, "tls", 1, "required unless node.dev = true");
    let with_tls = format!("{text}[tls]\ncert = \"c.pem\"\nkey = \"k.pem\"\n");
    assert_eq!(problems(&with_tls), Vec::new());
    // A [tls] table without its key is a schema error on the table.
    let half = format!("{text}[tls]\ncert = \"c.pem\"\n");
    let found = problems(&half);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].0.starts_with("tls"), "{found:?}");
    assert!(found[0].2.contains("missing field `key`"), "{found:?}");
}

// AC-CONFIG-5
#[test]
fn ac_config_5_combination_checks() {
    // Outside dev: JWKS, issuer and audience are required (three problems, in order), located at
    // [node] because neither [auth] nor node.dev is present.
    let text = "[node]\nid = \"n1\"\n[tls]\ncert = \"c\"\nkey = \"k\"\n";
    let found = problems(text);
    let keys: Vec<&str> = found.iter().map(|p| p.0.as_str()).collect();
    assert_eq!(keys, ["auth.jwks_file", "auth.issuer", "auth.audience"]);
    assert!(found.iter().all(|p| p.1 == Some(1)), "{found:?}");
    check(
        &format!("{DEV}[auth]\njwks_file = \"a\"\njwks = '{{\"keys\":[]}}'\n"),
        "auth.jwks",
        6,
        "not both",
    );
    check(
        &format!("{DEV}[auth]\njwks = '{{\"keys\":[]}}'\n"),
        "auth.jwks",
        5,
        "invalid JWKS",
    );
    // An absent key is located at its nearest present parent.
    check(
        &format!("{DEV}[spine]\nkind = \"nats\"\n"),
        "spine.nats_urls",
        4,
        "at least one URL",
    );
    check(
        &format!("{DEV}[session]\nheartbeat_interval = \"30s\"\nidle_timeout = \"30s\"\n"),
        "session.idle_timeout",
        6,
        "longer than session.heartbeat_interval",
    );
    check(
        &format!("{DEV}[governance]\naudit_kind = \"jetstream\"\n"),
        "governance.audit_kind",
        5,
        "requires spine.kind = \"nats\"",
    );
    check(
        &format!("{DEV}[limits]\nmax_frame = \"16KiB\"\n"),
        "limits.tenant_defaults.max_payload",
        4,
        "limits.max_frame (16KiB)",
    );
    check(
        &format!("{DEV}[limits.tenants.\"Bad.Tenant\"]\nmax_rooms = 2\n"),
        "limits.tenants.\"Bad.Tenant\"",
        4,
        "not a valid tenant id",
    );
    check(
        &format!("{DEV}[policy]\nglobal = [\"a.so\"]\n"),
        "policy.global[0]",
        5,
        "not a .wasm or .wat",
    );
}

// AC-CONFIG-6
#[test]
fn ac_config_6_errors_render_file_line_key_reason() {
    let error =
        Config::from_toml_str(&format!("{DEV}bogus = 1\n"), "deploy/x.toml").expect_err("bad");
    let text = error.to_string();
    assert!(
        text.starts_with("deploy/x.toml:4:1: node.bogus: unknown field `bogus`"),
        "{text}"
    );
    let syntax = Config::from_toml_str("[node\n", "y.toml").expect_err("syntax");
    assert!(syntax.to_string().starts_with("y.toml:1:"), "{syntax}");
    let missing = Config::load(std::path::Path::new("/nonexistent/arqon.toml")).expect_err("read");
    assert!(matches!(missing, ConfigError::Read { .. }));
    assert!(missing.to_string().contains("/nonexistent/arqon.toml"));
}
