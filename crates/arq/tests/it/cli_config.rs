//! `arq config check` and `arq config schema`.

use std::path::Path;

use crate::run;

fn deploy(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy")
        .join(name)
        .display()
        .to_string()
}

// AC-CLI-4
#[test]
fn ac_cli_4_config_check_exit_codes_and_messages() {
    let dir = tempfile::tempdir().expect("tempdir");
    for name in ["arqon.example.toml", "arqon.dev.toml"] {
        let file = deploy(name);
        let (code, stdout, stderr) = run(&["config", "check", &file], dir.path());
        assert_eq!(code, 0, "{name}: {stderr}");
        assert_eq!(stdout.trim(), format!("{file}: ok"));
    }
    std::fs::write(
        dir.path().join("bad.toml"),
        "[node]\nid = \"n1\"\ndev = true\n\n[limits]\nmax_frame = \"64KiB\"\nmax_conections = 5\n",
    )
    .expect("write");
    let (code, stdout, stderr) = run(&["config", "check", "bad.toml"], dir.path());
    assert_eq!(code, 1);
    assert!(stdout.is_empty());
    assert!(
        stderr.starts_with("bad.toml:7:1: limits.max_conections: unknown field `max_conections`"),
        "{stderr}"
    );
    // Range and combination problems are all listed.
    std::fs::write(
        dir.path().join("range.toml"),
        "[node]\nid = \"n1\"\n[session]\nmax_protocol_errors = 0\n[spine]\nkind = \"nats\"\n",
    )
    .expect("write");
    let (code, _, stderr) = run(&["config", "check", "range.toml"], dir.path());
    assert_eq!(code, 1);
    for needle in [
        "range.toml:1:",
        "tls: ",
        "range.toml:4:1: session.max_protocol_errors: 0 is out of range",
        "spine.nats_urls",
        "range.toml:1:2: auth.issuer: required",
        "6 problems",
    ] {
        assert!(stderr.contains(needle), "{needle:?} missing:\n{stderr}");
    }
    let (code, _, stderr) = run(&["config", "check", "missing.toml"], dir.path());
    assert_eq!(code, 1);
    assert!(
        stderr.starts_with("error: missing.toml: cannot read"),
        "{stderr}"
    );
}

// AC-CLI-5
#[test]
fn ac_cli_5_config_schema_prints_the_json_schema() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (code, stdout, _) = run(&["config", "schema"], dir.path());
    assert_eq!(code, 0);
    let schema: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    assert_eq!(schema, arqon_config::Config::json_schema());
    assert_eq!(schema["title"], "Config");
}
