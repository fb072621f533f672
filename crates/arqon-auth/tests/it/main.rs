//! Integration tests for arqon-auth: the JWT attack suite, carriers and dev keys.

// Shared fixtures below are test code outside `#[test]` functions.
#![allow(clippy::expect_used)]

mod auth_attacks;
mod auth_carriers;
mod auth_dev_keys;
mod auth_fuzz;

use std::sync::LazyLock;

use arqon_auth::{Claims, DevKeys, Jwks, Role, Verifier, VerifierSettings};
use arqon_proto::names::{TenantId, UserId};
use rand::SeedableRng as _;
use rand::rngs::StdRng;

/// Fixed "now" for every test, unix seconds.
pub(crate) const NOW: u64 = 1_800_000_000;
pub(crate) const LEEWAY: u64 = 30;
pub(crate) const ISS: &str = "https://issuer.test";
pub(crate) const AUD: &str = "arqon-test";

/// Two keys from fixed seeds (key generation is the slow part; do it once).
pub(crate) static KEY_A: LazyLock<DevKeys> = LazyLock::new(|| seeded_key(1));
pub(crate) static KEY_B: LazyLock<DevKeys> = LazyLock::new(|| seeded_key(2));

fn seeded_key(seed: u64) -> DevKeys {
    DevKeys::generate_with(&mut StdRng::seed_from_u64(seed)).expect("key generation")
}

pub(crate) fn settings() -> VerifierSettings {
    VerifierSettings {
        issuer: ISS.to_owned(),
        audience: AUD.to_owned(),
        leeway_secs: LEEWAY,
    }
}

/// A verifier trusting the given keys.
pub(crate) fn verifier(keys: &[&DevKeys]) -> Verifier {
    let jwks: Vec<serde_json::Value> = keys
        .iter()
        .map(|key| serde_json::to_value(key.public_jwk()).expect("jwk json"))
        .collect();
    let text = serde_json::json!({ "keys": jwks }).to_string();
    Verifier::new(Jwks::from_json(&text).expect("jwks"), settings())
}

/// Valid claims for tenant `acme`, user `alice`, valid from NOW-10 for an hour.
pub(crate) fn claims() -> Claims {
    Claims {
        sub: UserId::parse("alice").expect("sub"),
        tenant: TenantId::parse("acme").expect("tenant"),
        role: Role::User,
        exp: NOW + 3600,
        nbf: Some(NOW - 10),
        iss: ISS.to_owned(),
        aud: vec![AUD.to_owned()],
    }
}
