//! The JWT attack suite: every way a token must be refused, and the ways it must be accepted.

use arqon_auth::{AuthError, MAX_TOKEN_BYTES, RefreshError, Role, forge};
use arqon_proto::names::{TenantId, UserId};
use serde_json::json;

use crate::{AUD, KEY_A, KEY_B, LEEWAY, NOW, claims, verifier};

fn refused(token: &str) -> AuthError {
    verifier(&[&KEY_A])
        .verify(token, NOW)
        .expect_err("token must be refused")
}

fn with(field: &str, value: serde_json::Value) -> serde_json::Value {
    let mut claims = claims().to_json();
    claims[field] = value;
    claims
}

// AC-AUTH-1
#[test]
fn ac_auth_1_valid_token_gives_typed_claims() {
    let token = KEY_A.mint(&claims()).expect("mint");
    let got = verifier(&[&KEY_A]).verify(&token, NOW).expect("valid");
    assert_eq!(got, claims());
    assert_eq!(got.tenant.as_str(), "acme");
    assert_eq!(got.sub.as_str(), "alice");
    assert_eq!(got.role, Role::User);
}

// AC-AUTH-2
#[test]
fn ac_auth_2_alg_none_is_refused() {
    let token = forge::alg_none(&claims().to_json(), KEY_A.kid());
    assert_eq!(refused(&token), AuthError::AlgorithmRefused { alg: "none" });
    assert_eq!(refused(&token).reason(), "alg_refused");
    // Same with a non-empty bogus signature and with odd casing.
    let token = format!("{token}AAAA");
    assert_eq!(refused(&token), AuthError::AlgorithmRefused { alg: "none" });
}

// AC-AUTH-3
#[test]
fn ac_auth_3_hs256_signed_with_public_key_is_refused() {
    let claims = claims().to_json();
    for secret in [
        KEY_A.to_jwks_json().into_bytes(),
        serde_json::to_vec(KEY_A.public_jwk()).expect("jwk"),
    ] {
        let token = forge::hs256(&claims, &secret, KEY_A.kid()).expect("hs256");
        assert_eq!(
            refused(&token),
            AuthError::AlgorithmRefused { alg: "HS256" }
        );
    }
}

// AC-AUTH-4
#[test]
fn ac_auth_4_expired_token_is_refused_after_leeway() {
    let v = verifier(&[&KEY_A]);
    let exp = NOW - LEEWAY;
    let token = KEY_A.mint_json(&with("exp", json!(exp))).expect("mint");
    assert_eq!(
        v.verify(&token, NOW),
        Err(AuthError::Expired { exp, now: NOW })
    );
    // One second later expiry is still inside the leeway.
    let token = KEY_A.mint_json(&with("exp", json!(exp + 1))).expect("mint");
    assert!(v.verify(&token, NOW).is_ok());
    // A token without exp is refused.
    let mut no_exp = claims().to_json();
    no_exp.as_object_mut().expect("object").remove("exp");
    let token = KEY_A.mint_json(&no_exp).expect("mint");
    assert_eq!(
        v.verify(&token, NOW),
        Err(AuthError::MissingClaim { claim: "exp" })
    );
}

// AC-AUTH-5
#[test]
fn ac_auth_5_token_not_yet_valid_is_refused() {
    let v = verifier(&[&KEY_A]);
    let nbf = NOW + LEEWAY + 1;
    let token = KEY_A.mint_json(&with("nbf", json!(nbf))).expect("mint");
    let error = v.verify(&token, NOW).expect_err("not yet valid");
    assert_eq!(error, AuthError::NotYetValid { nbf, now: NOW });
    assert_eq!(error.reason(), "not_yet_valid");
    let token = KEY_A.mint_json(&with("nbf", json!(nbf - 1))).expect("mint");
    assert!(v.verify(&token, NOW).is_ok(), "nbf inside the leeway");
}

// AC-AUTH-6
#[test]
fn ac_auth_6_wrong_issuer_is_refused() {
    let token = KEY_A
        .mint_json(&with("iss", json!("https://evil.test")))
        .expect("mint");
    assert_eq!(refused(&token), AuthError::WrongIssuer);
}

// AC-AUTH-7
#[test]
fn ac_auth_7_wrong_audience_is_refused() {
    let token = KEY_A.mint_json(&with("aud", json!("other"))).expect("mint");
    assert_eq!(refused(&token), AuthError::WrongAudience);
    let token = KEY_A
        .mint_json(&with("aud", json!(["other", "more"])))
        .expect("mint");
    assert_eq!(refused(&token), AuthError::WrongAudience);
    // An array that contains the audience is fine.
    let token = KEY_A
        .mint_json(&with("aud", json!(["other", AUD])))
        .expect("mint");
    let got = verifier(&[&KEY_A]).verify(&token, NOW).expect("valid");
    assert_eq!(got.aud, vec!["other".to_owned(), AUD.to_owned()]);
}

// AC-AUTH-8
#[test]
fn ac_auth_8_unknown_or_missing_kid_is_refused() {
    let token = KEY_B.mint(&claims()).expect("mint");
    assert_eq!(refused(&token), AuthError::UnknownKid);
    // Hand-built RS256 header without a kid.
    let header = base64_url(r#"{"alg":"RS256","typ":"JWT"}"#);
    let real = KEY_A.mint(&claims()).expect("mint");
    let rest = real.split_once('.').expect("dot").1;
    assert_eq!(refused(&format!("{header}.{rest}")), AuthError::MissingKid);
}

// AC-AUTH-9
#[test]
fn ac_auth_9_garbage_truncated_oversized_and_tampered_are_refused() {
    let real = KEY_A.mint(&claims()).expect("mint");
    for garbage in [
        "",
        "abc",
        "a.b",
        "a.b.c.d",
        "!!!.???.***",
        "e30.e30.",
        "....",
    ] {
        assert_eq!(refused(garbage).reason(), "malformed", "{garbage:?}");
    }
    // Truncated at every length never panics and is never accepted.
    for len in 0..real.len() {
        assert!(verifier(&[&KEY_A]).verify(&real[..len], NOW).is_err());
    }
    let huge = "a".repeat(MAX_TOKEN_BYTES + 1);
    assert_eq!(refused(&huge).reason(), "too_large");
    // Claims swapped under the original signature (tenant escalation).
    let tampered = forge::swap_claims(&real, &with("tenant", json!("victim")));
    assert_eq!(refused(&tampered), AuthError::BadSignature);
    // A flipped signature character.
    let mut bytes = real.clone().into_bytes();
    let last = bytes.len() - 2;
    bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(bytes).expect("utf8");
    assert_eq!(refused(&flipped), AuthError::BadSignature);
}

// AC-AUTH-10
#[test]
fn ac_auth_10_rotation_accepts_both_kids_and_binds_kid_to_key() {
    let v = verifier(&[&KEY_A, &KEY_B]);
    for key in [&*KEY_A, &*KEY_B] {
        let token = key.mint(&claims()).expect("mint");
        assert!(v.verify(&token, NOW).is_ok(), "kid {}", key.kid());
    }
    let mislabelled = KEY_A
        .mint_with_kid(&claims().to_json(), KEY_B.kid())
        .expect("mint");
    assert_eq!(v.verify(&mislabelled, NOW), Err(AuthError::BadSignature));
}

// AC-AUTH-11
#[test]
fn ac_auth_11_refresh_must_keep_sub_and_tenant() {
    let v = verifier(&[&KEY_A]);
    let current = claims();
    let mut later = claims();
    later.exp = NOW + 7200;
    let token = KEY_A.mint(&later).expect("mint");
    assert_eq!(v.verify_refresh(&current, &token, NOW), Ok(later.clone()));

    let mut other_user = later.clone();
    other_user.sub = UserId::parse("mallory").expect("sub");
    let token = KEY_A.mint(&other_user).expect("mint");
    let error = v.verify_refresh(&current, &token, NOW).expect_err("sub");
    assert_eq!(error, RefreshError::SubjectChanged);
    assert_eq!(error.reason(), "subject_changed");

    let mut other_tenant = later;
    other_tenant.tenant = TenantId::parse("victim").expect("tenant");
    let token = KEY_A.mint(&other_tenant).expect("mint");
    let error = v.verify_refresh(&current, &token, NOW).expect_err("tenant");
    assert_eq!(error, RefreshError::TenantChanged);
    assert_eq!(error.reason(), "tenant_changed");

    // An expired refresh token is refused as expired, even with the same identity.
    let mut expired = claims();
    expired.exp = NOW - LEEWAY - 1;
    let token = KEY_A.mint(&expired).expect("mint");
    let error = v
        .verify_refresh(&current, &token, NOW)
        .expect_err("expired");
    assert_eq!(error.reason(), "expired");
}

// AC-AUTH-12
#[test]
fn ac_auth_12_claims_outside_grammar_are_refused() {
    for (field, value, claim) in [
        ("tenant", json!("acme.other"), "tenant"),
        ("tenant", json!("*"), "tenant"),
        ("tenant", json!(""), "tenant"),
        ("tenant", json!(42), "tenant"),
        ("sub", json!("al ice"), "sub"),
        ("role", json!("root"), "role"),
        ("exp", json!("soon"), "exp"),
        ("aud", json!(7), "aud"),
    ] {
        let token = KEY_A.mint_json(&with(field, value)).expect("mint");
        assert_eq!(
            refused(&token),
            AuthError::InvalidClaim { claim },
            "{field}"
        );
    }
    for role in Role::ALL {
        let token = KEY_A
            .mint_json(&with("role", json!(role.as_str())))
            .expect("mint");
        assert_eq!(
            verifier(&[&KEY_A]).verify(&token, NOW).map(|c| c.role),
            Ok(role)
        );
    }
}

// AC-AUTH-14
#[test]
fn ac_auth_14_errors_never_contain_token_text() {
    let real = KEY_A.mint(&claims()).expect("mint");
    let tokens = [
        forge::alg_none(&claims().to_json(), KEY_A.kid()),
        forge::hs256(&claims().to_json(), b"secret", KEY_A.kid()).expect("hs"),
        KEY_B.mint(&claims()).expect("mint"),
        KEY_A.mint_json(&with("iss", json!("x"))).expect("mint"),
        forge::swap_claims(&real, &with("tenant", json!("victim"))),
        format!("{real}x"),
    ];
    for token in tokens {
        let error = refused(&token);
        let rendered = format!("{error} {error:?}");
        for part in token.split('.').filter(|part| part.len() >= 8) {
            assert!(!rendered.contains(part), "{rendered}");
        }
    }
}

fn base64_url(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
}
