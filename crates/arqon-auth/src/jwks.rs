//! A JSON Web Key Set of RS256 verification keys, indexed by `kid` (several keys during a rotation).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::DecodingKey;
use serde_json::Value;

/// The smallest RSA modulus accepted, in bits.
pub const MIN_RSA_BITS: usize = 2048;

/// Why a JWKS was refused.
#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    /// The file could not be read.
    #[error("cannot read JWKS file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The text is not a JWKS object with a `keys` array.
    #[error("JWKS is not a JSON object with a \"keys\" array: {detail}")]
    NotAJwks {
        /// What was wrong.
        detail: String,
    },
    /// A usable RSA key has no `kid`.
    #[error("JWKS key #{index} has no kid")]
    MissingKid {
        /// Position of the key in `keys`.
        index: usize,
    },
    /// Two keys share a `kid`.
    #[error("JWKS has two keys with kid {kid:?}")]
    DuplicateKid {
        /// The repeated kid.
        kid: String,
    },
    /// A key's `n` or `e` is not valid base64url.
    #[error("JWKS key {kid:?} has an invalid {param}")]
    BadKeyMaterial {
        /// The key's kid.
        kid: String,
        /// `n` or `e`.
        param: &'static str,
    },
    /// A key is too short.
    #[error("JWKS key {kid:?} is {bits} bits, shorter than {MIN_RSA_BITS}")]
    WeakKey {
        /// The key's kid.
        kid: String,
        /// Its modulus length.
        bits: usize,
    },
    /// No key in the set can verify RS256.
    #[error("JWKS holds no RS256 signing key")]
    NoUsableKey,
}

/// RS256 verification keys by `kid`.
#[derive(Clone)]
pub struct Jwks {
    keys: BTreeMap<String, DecodingKey>,
}

impl fmt::Debug for Jwks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Jwks")
            .field("kids", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Jwks {
    /// Parses a JWKS. RSA keys whose `use` is absent or `sig` and whose `alg` is absent or `RS256`
    /// are kept; other keys (EC, symmetric, encryption keys) are skipped.
    pub fn from_json(text: &str) -> Result<Self, JwksError> {
        let value: Value = serde_json::from_str(text).map_err(|error| JwksError::NotAJwks {
            detail: error.to_string(),
        })?;
        let Some(entries) = value.get("keys").and_then(Value::as_array) else {
            return Err(JwksError::NotAJwks {
                detail: "no \"keys\" array".to_owned(),
            });
        };
        let mut keys = BTreeMap::new();
        for (index, entry) in entries.iter().enumerate() {
            let field = |name: &str| entry.get(name).and_then(Value::as_str);
            let usable = field("kty") == Some("RSA")
                && matches!(field("use"), None | Some("sig"))
                && matches!(field("alg"), None | Some("RS256"));
            if !usable {
                continue;
            }
            let kid = field("kid")
                .ok_or(JwksError::MissingKid { index })?
                .to_owned();
            let n = decode_param(&kid, "n", field("n"))?;
            let e = decode_param(&kid, "e", field("e"))?;
            let bits = modulus_bits(&n);
            if bits < MIN_RSA_BITS {
                return Err(JwksError::WeakKey { kid, bits });
            }
            if keys.contains_key(&kid) {
                return Err(JwksError::DuplicateKid { kid });
            }
            keys.insert(kid, DecodingKey::from_rsa_raw_components(&n, &e));
        }
        if keys.is_empty() {
            return Err(JwksError::NoUsableKey);
        }
        Ok(Self { keys })
    }

    /// Reads and parses a JWKS file.
    pub fn from_file(path: &Path) -> Result<Self, JwksError> {
        let text = std::fs::read_to_string(path).map_err(|source| JwksError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_json(&text)
    }

    /// The key for `kid`, if the set holds one.
    pub(crate) fn key(&self, kid: &str) -> Option<&DecodingKey> {
        self.keys.get(kid)
    }

    /// The key ids in the set, sorted.
    pub fn kids(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }
}

fn decode_param(kid: &str, param: &'static str, value: Option<&str>) -> Result<Vec<u8>, JwksError> {
    value
        .and_then(|text| URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')).ok())
        .filter(|bytes| !bytes.is_empty())
        .ok_or_else(|| JwksError::BadKeyMaterial {
            kid: kid.to_owned(),
            param,
        })
}

fn modulus_bits(n: &[u8]) -> usize {
    match n.iter().position(|&byte| byte != 0) {
        Some(first) => (n.len() - first) * 8 - n[first].leading_zeros() as usize,
        None => 0,
    }
}
