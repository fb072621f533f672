//! `Verifier::verify`: header, key, RS256 signature, then claims judged against `now`.

use arqon_proto::names::{TenantId, UserId};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde_json::{Map, Value};

use crate::{AuthError, Claims, Jwks, RefreshError, Role};

/// The largest token accepted, in bytes: the wire contract's limit on a token (one definition,
/// in `arqon-proto`, for the upgrade and for `Refresh`).
pub use arqon_proto::decode::MAX_TOKEN_BYTES;

/// What a valid token must say, besides being signed by a key in the JWKS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifierSettings {
    /// The required `iss`.
    pub issuer: String,
    /// The audience `aud` must contain.
    pub audience: String,
    /// Clock skew allowed on `exp` and `nbf`, in seconds.
    pub leeway_secs: u64,
}

/// Verifies RS256 tokens against a JWKS. Pure: `now` is an argument.
#[derive(Clone, Debug)]
pub struct Verifier {
    jwks: Jwks,
    settings: VerifierSettings,
    validation: Validation,
}

/// JOSE algorithm names we can name in an error; anything else is reported as `other`.
const KNOWN_ALGS: [&str; 14] = [
    "none", "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
    "ES256", "ES384", "ES512", "EdDSA",
];

impl Verifier {
    /// A verifier for `jwks` and `settings`.
    pub fn new(jwks: Jwks, settings: VerifierSettings) -> Self {
        crate::ring_rs256::install();
        let mut validation = Validation::new(Algorithm::RS256);
        // Time, issuer and audience are judged below, against `now` and `settings`.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        validation.leeway = 0;
        Self {
            jwks,
            settings,
            validation,
        }
    }

    /// The settings this verifier judges claims against.
    pub fn settings(&self) -> &VerifierSettings {
        &self.settings
    }

    /// Verifies `token` at `now_unix_secs`.
    pub fn verify(&self, token: &str, now_unix_secs: u64) -> Result<Claims, AuthError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(AuthError::TooLarge {
                len: token.len(),
                max: MAX_TOKEN_BYTES,
            });
        }
        let kid = check_header(token)?;
        let key = self.jwks.key(&kid).ok_or(AuthError::UnknownKid)?;
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, key, &self.validation)
            .map_err(|error| match error.kind() {
                ErrorKind::InvalidSignature | ErrorKind::InvalidRsaKey(_) => {
                    AuthError::BadSignature
                }
                ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
                    AuthError::AlgorithmRefused { alg: "other" }
                }
                _ => AuthError::Malformed {
                    what: "token payload is not a JSON object",
                },
            })?;
        self.judge(&data.claims, now_unix_secs)
    }

    /// Verifies a token offered in-band to extend a session whose claims are `current`: it must be
    /// valid on its own and name the same `sub` and `tenant`.
    pub fn verify_refresh(
        &self,
        current: &Claims,
        token: &str,
        now_unix_secs: u64,
    ) -> Result<Claims, RefreshError> {
        let next = self.verify(token, now_unix_secs)?;
        if next.tenant != current.tenant {
            return Err(RefreshError::TenantChanged);
        }
        if next.sub != current.sub {
            return Err(RefreshError::SubjectChanged);
        }
        Ok(next)
    }

    fn judge(&self, claims: &Map<String, Value>, now: u64) -> Result<Claims, AuthError> {
        let leeway = self.settings.leeway_secs;
        let exp = number(claims, "exp")?.ok_or(AuthError::MissingClaim { claim: "exp" })?;
        if now >= exp.saturating_add(leeway) {
            return Err(AuthError::Expired { exp, now });
        }
        let nbf = number(claims, "nbf")?;
        if let Some(nbf) = nbf
            && now.saturating_add(leeway) < nbf
        {
            return Err(AuthError::NotYetValid { nbf, now });
        }
        let iss = string(claims, "iss")?;
        if iss != self.settings.issuer {
            return Err(AuthError::WrongIssuer);
        }
        let aud = audience(claims)?;
        if !aud.contains(&self.settings.audience) {
            return Err(AuthError::WrongAudience);
        }
        let tenant = TenantId::parse(string(claims, "tenant")?)
            .map_err(|_| AuthError::InvalidClaim { claim: "tenant" })?;
        let sub = UserId::parse(string(claims, "sub")?)
            .map_err(|_| AuthError::InvalidClaim { claim: "sub" })?;
        let role = Role::parse(string(claims, "role")?)
            .ok_or(AuthError::InvalidClaim { claim: "role" })?;
        Ok(Claims {
            sub,
            tenant,
            role,
            exp,
            nbf,
            iss: iss.to_owned(),
            aud,
        })
    }
}

/// Reads the header ourselves so that `none`, HS* and friends are refused by name before any key is
/// chosen, and returns the `kid`.
fn check_header(token: &str) -> Result<String, AuthError> {
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(AuthError::Malformed {
            what: "token is not three dot-separated parts",
        });
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| AuthError::Malformed {
            what: "header is not base64url",
        })?;
    let header: Map<String, Value> =
        serde_json::from_slice(&bytes).map_err(|_| AuthError::Malformed {
            what: "header is not a JSON object",
        })?;
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .ok_or(AuthError::Malformed {
            what: "header has no alg",
        })?;
    if alg != "RS256" {
        let alg = KNOWN_ALGS
            .into_iter()
            .find(|known| known.eq_ignore_ascii_case(alg))
            .unwrap_or("other");
        return Err(AuthError::AlgorithmRefused { alg });
    }
    if header.contains_key("crit") {
        return Err(AuthError::Malformed {
            what: "header has unsupported crit parameters",
        });
    }
    match header.get("kid") {
        None => Err(AuthError::MissingKid),
        Some(Value::String(kid)) => Ok(kid.clone()),
        Some(_) => Err(AuthError::Malformed {
            what: "header kid is not a string",
        }),
    }
}

fn number(claims: &Map<String, Value>, claim: &'static str) -> Result<Option<u64>, AuthError> {
    match claims.get(claim) {
        None => Ok(None),
        Some(value) => value
            .as_u64()
            .map(Some)
            .ok_or(AuthError::InvalidClaim { claim }),
    }
}

fn string<'a>(claims: &'a Map<String, Value>, claim: &'static str) -> Result<&'a str, AuthError> {
    match claims.get(claim) {
        None => Err(AuthError::MissingClaim { claim }),
        Some(value) => value.as_str().ok_or(AuthError::InvalidClaim { claim }),
    }
}

fn audience(claims: &Map<String, Value>) -> Result<Vec<String>, AuthError> {
    let invalid = AuthError::InvalidClaim { claim: "aud" };
    match claims.get("aud") {
        None => Err(AuthError::MissingClaim { claim: "aud" }),
        Some(Value::String(one)) => Ok(vec![one.clone()]),
        Some(Value::Array(many)) => many
            .iter()
            .map(|one| one.as_str().map(str::to_owned).ok_or(invalid.clone()))
            .collect(),
        Some(_) => Err(invalid),
    }
}
