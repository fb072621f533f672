//! `JwtIssuer`: seeded keys, a JWKS file a verifier accepts, and typed refusals of bad names.

use std::time::Duration;

use arqon_auth::{Jwks, Role, Verifier};
use arqon_testkit::{JwtIssuer, TestkitError, unix_now};

#[test]
fn tokens_verify_against_the_written_jwks() {
    let issuer = JwtIssuer::new().unwrap();
    let token = issuer
        .token("acme", "alice", Role::Admin, Duration::from_mins(1))
        .unwrap();
    let jwks = Jwks::from_file(&issuer.jwks_path()).unwrap();
    let claims = Verifier::new(jwks, issuer.settings())
        .verify(&token, unix_now())
        .unwrap();
    assert_eq!(claims.tenant.as_str(), "acme");
    assert_eq!(claims.sub.as_str(), "alice");
    assert_eq!(claims.role, Role::Admin);
}

#[test]
fn same_seed_same_key_other_seed_other_key() {
    let a = JwtIssuer::with_seed(1).unwrap();
    let b = JwtIssuer::with_seed(1).unwrap();
    let c = JwtIssuer::with_seed(2).unwrap();
    assert_eq!(a.kid(), b.kid());
    assert_ne!(a.kid(), c.kid());
    let token = c
        .token("acme", "alice", Role::User, Duration::from_mins(1))
        .unwrap();
    assert!(a.verifier().unwrap().verify(&token, unix_now()).is_err());
}

#[test]
fn bad_names_are_refused() {
    let issuer = JwtIssuer::new().unwrap();
    assert!(matches!(
        issuer.token("Bad.Tenant", "alice", Role::User, Duration::from_secs(1)),
        Err(TestkitError::Token(_))
    ));
}
