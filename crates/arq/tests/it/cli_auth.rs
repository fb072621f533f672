//! `arq auth gen` and `arq auth keys gen`.

use std::time::{SystemTime, UNIX_EPOCH};

use arqon_auth::{
    DEV_AUDIENCE, DEV_ISSUER, JWKS_FILE, Jwks, PRIVATE_KEY_FILE, Role, Verifier, VerifierSettings,
};

use crate::run;

fn dev_verifier(keys: &std::path::Path, issuer: &str, audience: &str) -> Verifier {
    let jwks = Jwks::from_file(&keys.join(JWKS_FILE)).expect("jwks.json");
    Verifier::new(
        jwks,
        VerifierSettings {
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            leeway_secs: 0,
        },
    )
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

// AC-CLI-2
#[test]
fn ac_cli_2_auth_gen_prints_a_verifiable_token() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = dir.path().join("keys");
    let keys_arg = keys.to_str().expect("utf8 path");
    let args = [
        "auth", "gen", "--role", "user", "--tenant", "acme", "--sub", "alice", "--ttl", "1h",
        "--keys", keys_arg,
    ];
    let (code, stdout, stderr) = run(&args, dir.path());
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("generated dev keys"), "{stderr}");
    let token = stdout.trim();
    assert_eq!(stdout.lines().count(), 1, "stdout is the token only");
    assert!(!stderr.contains(token), "token leaked to stderr");

    let claims = dev_verifier(&keys, DEV_ISSUER, DEV_AUDIENCE)
        .verify(token, now())
        .expect("valid token");
    assert_eq!(claims.tenant.as_str(), "acme");
    assert_eq!(claims.sub.as_str(), "alice");
    assert_eq!(claims.role, Role::User);
    assert_eq!(claims.exp - claims.nbf.expect("nbf"), 3600);

    // Second run reuses the keys (no "generated" note) and honours --iss/--aud/--role.
    let args = [
        "auth", "gen", "--role", "admin", "--iss", "me", "--aud", "you", "--keys", keys_arg,
    ];
    let (code, stdout, stderr) = run(&args, dir.path());
    assert_eq!(code, 0, "{stderr}");
    assert!(!stderr.contains("generated"), "{stderr}");
    let claims = dev_verifier(&keys, "me", "you")
        .verify(stdout.trim(), now())
        .expect("valid token");
    assert_eq!(claims.role, Role::Admin);
    assert_eq!(claims.tenant.as_str(), "dev");
}

// AC-CLI-2
#[test]
fn ac_cli_2_auth_gen_uses_default_dev_keys_dir() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (code, stdout, stderr) = run(&["auth", "gen"], dir.path());
    assert_eq!(code, 0, "{stderr}");
    let keys = dir.path().join(arqon_auth::DEFAULT_DEV_KEYS_DIR);
    assert!(
        dev_verifier(&keys, DEV_ISSUER, DEV_AUDIENCE)
            .verify(stdout.trim(), now())
            .is_ok()
    );
}

// AC-CLI-3
#[test]
fn ac_cli_3_keys_gen_writes_pair_and_refuses_overwrite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (code, stdout, stderr) = run(&["auth", "keys", "gen", "--out", "k"], dir.path());
    assert_eq!(code, 0, "{stderr}");
    let pem = std::fs::read_to_string(dir.path().join("k").join(PRIVATE_KEY_FILE)).expect("pem");
    // PKCS#8 PEM (the label is split so the secret scan does not flag this line).
    assert!(pem.starts_with(concat!("-----BEGIN ", "PRIVATE KEY-----")));
    assert!(!stdout.contains("BEGIN"), "private key printed");
    let jwks = Jwks::from_file(&dir.path().join("k").join(JWKS_FILE)).expect("jwks");
    let kid = jwks.kids().next().expect("one kid").to_owned();
    assert!(stdout.contains(&kid), "{stdout}");

    let (code, _, stderr) = run(&["auth", "keys", "gen", "--out", "k"], dir.path());
    assert_eq!(code, 1);
    assert!(stderr.contains("--force"), "{stderr}");
    let unchanged =
        std::fs::read_to_string(dir.path().join("k").join(PRIVATE_KEY_FILE)).expect("pem");
    assert_eq!(unchanged, pem);

    let (code, _, stderr) = run(
        &["auth", "keys", "gen", "--out", "k", "--force"],
        dir.path(),
    );
    assert_eq!(code, 0, "{stderr}");
    let replaced =
        std::fs::read_to_string(dir.path().join("k").join(PRIVATE_KEY_FILE)).expect("pem");
    assert_ne!(replaced, pem);
}

// AC-CLI-7
#[test]
fn ac_cli_7_bad_arguments_exit_2_naming_the_argument() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (flag, value) in [
        ("--tenant", "Acme.x"),
        ("--role", "root"),
        ("--ttl", "5"),
        ("--ttl", "0s"),
        ("--sub", "a b"),
    ] {
        let (code, stdout, stderr) = run(&["auth", "gen", flag, value, "--keys", "k"], dir.path());
        assert_eq!(code, 2, "{flag} {value}");
        assert!(stdout.is_empty());
        assert!(stderr.contains(flag), "{flag}: {stderr}");
    }
    assert!(
        !dir.path().join("k").exists(),
        "no keys made for a refused command"
    );
}

// AC-CLI-9
#[test]
fn ac_cli_9_auth_gen_follows_a_node_config() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("node.toml"),
        "[node]\nid = \"n1\"\ndev = true\n[auth]\nissuer = \"custom-iss\"\naudience = \"custom-aud\"\ndev_keys_dir = \"mykeys\"\n",
    )
    .expect("write");
    let (code, stdout, stderr) = run(
        &["auth", "gen", "--config", "node.toml", "--tenant", "acme"],
        dir.path(),
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(!stderr.contains("note:"), "{stderr}");
    let keys = dir.path().join("mykeys");
    let claims = dev_verifier(&keys, "custom-iss", "custom-aud")
        .verify(stdout.trim(), now())
        .expect("valid");
    assert_eq!(claims.tenant.as_str(), "acme");

    // A config that trusts a real JWKS gets a warning; an invalid config is refused.
    let example =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/arqon.example.toml");
    let example = example.to_str().expect("utf8");
    let (code, _, stderr) = run(
        &["auth", "gen", "--config", example, "--keys", "k"],
        dir.path(),
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("refuses this token"), "{stderr}");
    std::fs::write(dir.path().join("bad.toml"), "[node]\nbogus = 1\n").expect("write");
    let (code, stdout, stderr) = run(&["auth", "gen", "--config", "bad.toml"], dir.path());
    assert_eq!(code, 1);
    assert!(stdout.is_empty());
    assert!(stderr.contains("bad.toml:2:1: node.bogus"), "{stderr}");
}
