//! Deliberately invalid tokens for attack tests (alg `none`, HS256 key confusion, tampering).
//!
//! Nothing here produces a token that [`crate::Verifier`] accepts; the Shield's and test kit's
//! attack suites use these to prove it.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::DevKeyError;

fn part(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

/// An unsigned token: header `{"alg":"none","typ":"JWT","kid":kid}`, the claims, an empty signature.
pub fn alg_none(claims: &Value, kid: &str) -> String {
    let header = json!({"alg": "none", "typ": "JWT", "kid": kid});
    format!("{}.{}.", part(&header), part(claims))
}

/// A token signed with HMAC-SHA256 using `secret` (for the key-confusion attack, pass the RSA public
/// key bytes, e.g. the JWKS text or the public PEM).
pub fn hs256(claims: &Value, secret: &[u8], kid: &str) -> Result<String, DevKeyError> {
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(kid.to_owned());
    crate::ring_rs256::install();
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(secret))
        .map_err(|error| DevKeyError::Crypto(error.to_string()))
}

/// `token` with its claims replaced by `claims` and the original signature kept.
pub fn swap_claims(token: &str, claims: &Value) -> String {
    let mut parts = token.splitn(3, '.');
    let header = parts.next().unwrap_or_default();
    let _ = parts.next();
    let signature = parts.next().unwrap_or_default();
    format!("{header}.{}.{signature}", part(claims))
}
