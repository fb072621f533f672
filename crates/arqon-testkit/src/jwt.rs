//! A JWT issuer for tests, on `arqon_auth::DevKeys`: seeded RS256 keys, a JWKS file, and tokens for (tenant, sub, role, ttl).
//!
//! Keys come from a fixed seed, so a failing test replays with the same key; each seed's key is
//! generated once per test process (RSA generation is the slow part).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arqon_auth::{Claims, DevKeys, Jwks, Role, Verifier, VerifierSettings};
use arqon_proto::names::{TenantId, UserId};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;

use crate::error::TestkitError;

/// The seed of [`JwtIssuer::new`].
pub const DEFAULT_SEED: u64 = 0xA4C0_0001;

/// One key per seed per process.
fn key_for(seed: u64) -> Result<DevKeys, TestkitError> {
    static KEYS: OnceLock<Mutex<HashMap<u64, DevKeys>>> = OnceLock::new();
    let cache = KEYS.get_or_init(Mutex::default);
    let mut cache = cache.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(keys) = cache.get(&seed) {
        return Ok(keys.clone());
    }
    let keys = DevKeys::generate_with(&mut ChaCha20Rng::seed_from_u64(seed))?;
    cache.insert(seed, keys.clone());
    Ok(keys)
}

/// The current unix time in seconds; tests mint against the wall clock the server reads.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Mints tokens with a seeded key and publishes its JWKS as a file.
#[derive(Debug)]
pub struct JwtIssuer {
    keys: DevKeys,
    dir: tempfile::TempDir,
}

impl JwtIssuer {
    /// An issuer with the key of [`DEFAULT_SEED`].
    pub fn new() -> Result<Self, TestkitError> {
        Self::with_seed(DEFAULT_SEED)
    }

    /// An issuer whose key is generated from `seed` (another seed: another key, for rotation and
    /// wrong-key tests). Writes `jwks.json` into a temporary directory.
    pub fn with_seed(seed: u64) -> Result<Self, TestkitError> {
        let issuer = Self {
            keys: key_for(seed)?,
            dir: tempfile::tempdir()?,
        };
        issuer.write_jwks(&issuer.jwks_path())?;
        Ok(issuer)
    }

    /// The signing key.
    pub fn keys(&self) -> &DevKeys {
        &self.keys
    }

    /// The key id tokens carry.
    pub fn kid(&self) -> &str {
        self.keys.kid()
    }

    /// The JWKS (public key only), as JSON text.
    pub fn jwks_json(&self) -> String {
        self.keys.to_jwks_json()
    }

    /// The JWKS for a verifier.
    pub fn jwks(&self) -> Result<Jwks, TestkitError> {
        Ok(self.keys.to_jwks()?)
    }

    /// Where [`JwtIssuer::with_seed`] wrote the JWKS; it lives as long as the issuer.
    pub fn jwks_path(&self) -> PathBuf {
        self.dir.path().join(arqon_auth::JWKS_FILE)
    }

    /// Writes the JWKS to `path`.
    pub fn write_jwks(&self, path: &Path) -> Result<(), TestkitError> {
        std::fs::write(path, self.jwks_json())?;
        Ok(())
    }

    /// Settings that accept this issuer's tokens: the dev issuer and audience, no leeway.
    pub fn settings(&self) -> VerifierSettings {
        VerifierSettings {
            issuer: arqon_auth::DEV_ISSUER.to_owned(),
            audience: arqon_auth::DEV_AUDIENCE.to_owned(),
            leeway_secs: 0,
        }
    }

    /// A verifier that accepts this issuer's tokens.
    pub fn verifier(&self) -> Result<Verifier, TestkitError> {
        Ok(Verifier::new(self.jwks()?, self.settings()))
    }

    /// Claims for `tenant`/`sub` with `role`, valid from now for `ttl`.
    pub fn claims(
        &self,
        tenant: &str,
        sub: &str,
        role: Role,
        ttl: Duration,
    ) -> Result<Claims, TestkitError> {
        let tenant = TenantId::parse(tenant).map_err(|e| TestkitError::Token(e.to_string()))?;
        let sub = UserId::parse(sub).map_err(|e| TestkitError::Token(e.to_string()))?;
        Ok(Claims::dev(tenant, sub, role, unix_now(), ttl.as_secs()))
    }

    /// A signed token for `tenant`/`sub` with `role`, valid from now for `ttl`.
    pub fn token(
        &self,
        tenant: &str,
        sub: &str,
        role: Role,
        ttl: Duration,
    ) -> Result<String, TestkitError> {
        self.mint(&self.claims(tenant, sub, role, ttl)?)
    }

    /// A signed token for `claims` (edit them for expired, not-yet-valid or foreign tokens).
    pub fn mint(&self, claims: &Claims) -> Result<String, TestkitError> {
        Ok(self.keys.mint(claims)?)
    }
}
