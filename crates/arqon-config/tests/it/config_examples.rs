//! The shipped example configs parse, and dev defaults are valid.

use std::path::Path;

use arqon_config::{Config, JwksSource, SpineKind};

fn deploy(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy")
        .join(name)
}

// AC-CONFIG-7
#[test]
fn ac_config_7_example_configs_parse() {
    let example = Config::load(&deploy("arqon.example.toml")).expect("example");
    assert!(!example.node.dev);
    assert!(example.tls.is_some());
    assert_eq!(example.spine.kind, SpineKind::Nats);
    assert_eq!(example.spine.nats_urls.len(), 3);
    let acme = example.limits.for_tenant("acme");
    assert_eq!(acme.max_connections, 500);
    assert_eq!(acme.max_rooms, example.limits.tenant_defaults.max_rooms);
    assert_eq!(example.limits.admission().tenants.len(), 1);
    assert_eq!(example.policy.tenants["acme"].chain.len(), 1);
    assert_eq!(
        example.jwks_source(),
        JwksSource::File("/etc/arqon/jwks.json".into())
    );

    let dev = Config::load(&deploy("arqon.dev.toml")).expect("dev");
    assert!(dev.node.dev);
    assert_eq!(dev.spine.kind, SpineKind::Embedded);
}

// AC-CONFIG-8
#[test]
fn ac_config_8_dev_default_is_valid_and_round_trips() {
    let dev = Config::dev_default();
    dev.check().expect("dev default is valid");
    assert!(matches!(dev.jwks_source(), JwksSource::DevKeys(_)));
    let settings = dev.verifier_settings();
    assert_eq!(settings.issuer, arqon_auth::DEV_ISSUER);
    assert_eq!(settings.audience, arqon_auth::DEV_AUDIENCE);
    let again =
        Config::from_toml_str(&dev.to_toml().expect("toml"), "round-trip").expect("round trip");
    assert_eq!(again, dev);
    // The default (non-dev) config is refused: no TLS, no JWKS.
    assert!(Config::default().check().is_err());
}
