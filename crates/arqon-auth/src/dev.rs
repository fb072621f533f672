//! Dev keys: an RSA 2048 key pair kept as a PEM and a JWKS in a directory, and token minting.

use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rand::rngs::OsRng;
use rsa::RsaPrivateKey;
use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPrivateKey};
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};

use crate::{Claims, Jwks, JwksError};

/// Where dev keys live by default, relative to the working directory.
pub const DEFAULT_DEV_KEYS_DIR: &str = ".arqon/dev-keys";
/// The private key's file name inside a keys directory (PKCS#8 PEM).
pub const PRIVATE_KEY_FILE: &str = "private.pem";
/// The public JWKS's file name inside a keys directory.
pub const JWKS_FILE: &str = "jwks.json";

const RSA_BITS: usize = 2048;

/// Why dev keys could not be made, read, written or used.
#[derive(Debug, thiserror::Error)]
pub enum DevKeyError {
    /// RSA key generation failed.
    #[error("RSA key generation failed: {0}")]
    Generate(String),
    /// The PEM is not an RSA private key (PKCS#8 or PKCS#1).
    #[error("not an RSA private key PEM")]
    BadPem,
    /// Encoding the key or signing failed.
    #[error("cannot encode or sign with the dev key: {0}")]
    Crypto(String),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The JWKS written next to the key does not hold it.
    #[error(transparent)]
    Jwks(#[from] JwksError),
}

/// A dev signing key. `kid` is the key's RFC 7638 SHA-256 thumbprint. `Debug` shows only the kid.
#[derive(Clone)]
pub struct DevKeys {
    kid: String,
    private: RsaPrivateKey,
    encoding: EncodingKey,
    public: Jwk,
    jwks_json: String,
}

impl fmt::Debug for DevKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DevKeys")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

fn crypto(error: impl fmt::Display) -> DevKeyError {
    DevKeyError::Crypto(error.to_string())
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DevKeyError + '_ {
    move |source| DevKeyError::Io {
        path: path.to_owned(),
        source,
    }
}

impl DevKeys {
    /// Generates a fresh RSA 2048 key from the OS random source.
    pub fn generate() -> Result<Self, DevKeyError> {
        Self::generate_with(&mut OsRng)
    }

    /// Generates a key from `rng` (tests pass a seeded generator).
    pub fn generate_with<R: rand::CryptoRng + rand::RngCore>(
        rng: &mut R,
    ) -> Result<Self, DevKeyError> {
        let private = RsaPrivateKey::new(rng, RSA_BITS)
            .map_err(|error| DevKeyError::Generate(error.to_string()))?;
        Self::from_private(private)
    }

    /// Reads a private key PEM (PKCS#8 `PRIVATE KEY` or PKCS#1 `RSA PRIVATE KEY`).
    pub fn from_pem(pem: &str) -> Result<Self, DevKeyError> {
        let private = RsaPrivateKey::from_pkcs8_pem(pem)
            .or_else(|_| RsaPrivateKey::from_pkcs1_pem(pem))
            .map_err(|_| DevKeyError::BadPem)?;
        Self::from_private(private)
    }

    fn from_private(private: RsaPrivateKey) -> Result<Self, DevKeyError> {
        crate::ring_rs256::install();
        let der = private.to_pkcs1_der().map_err(crypto)?;
        let encoding = EncodingKey::from_rsa_der(der.as_bytes());
        let mut public = Jwk::from_encoding_key(&encoding, Algorithm::RS256).map_err(crypto)?;
        let kid = public.thumbprint(ThumbprintHash::SHA256).map_err(crypto)?;
        public.common.key_id = Some(kid.clone());
        public.common.public_key_use = Some(PublicKeyUse::Signature);
        let set = JwkSet {
            keys: vec![public.clone()],
        };
        let jwks_json = serde_json::to_string_pretty(&set).map_err(crypto)?;
        Ok(Self {
            kid,
            private,
            encoding,
            public,
            jwks_json,
        })
    }

    /// The key id tokens are minted with.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The private key as a PKCS#8 PEM.
    pub fn to_private_pem(&self) -> Result<String, DevKeyError> {
        Ok(self
            .private
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(crypto)?
            .to_string())
    }

    /// The public key as a JWK (`kty`, `use`, `alg`, `kid`, `n`, `e`).
    pub fn public_jwk(&self) -> &Jwk {
        &self.public
    }

    /// A JWKS holding the public key, as pretty JSON.
    pub fn to_jwks_json(&self) -> String {
        self.jwks_json.clone()
    }

    /// The public key as a verification [`Jwks`].
    pub fn to_jwks(&self) -> Result<Jwks, DevKeyError> {
        Ok(Jwks::from_json(&self.to_jwks_json())?)
    }

    /// Mints an RS256 token for `claims`, with this key's kid.
    pub fn mint(&self, claims: &Claims) -> Result<String, DevKeyError> {
        self.mint_json(&claims.to_json())
    }

    /// Mints an RS256 token for an arbitrary claims object (tests use it for bad claims).
    pub fn mint_json(&self, claims: &serde_json::Value) -> Result<String, DevKeyError> {
        self.mint_with_kid(claims, &self.kid)
    }

    /// Mints an RS256 token signed by this key but labelled with another `kid` (rotation tests).
    pub fn mint_with_kid(
        &self,
        claims: &serde_json::Value,
        kid: &str,
    ) -> Result<String, DevKeyError> {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(kid.to_owned());
        crate::ring_rs256::install();
        jsonwebtoken::encode(&header, claims, &self.encoding).map_err(crypto)
    }

    /// Writes `private.pem` (mode 0600 on Unix) and `jwks.json` into `dir`, creating it.
    pub fn save(&self, dir: &Path) -> Result<(), DevKeyError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let key_path = dir.join(PRIVATE_KEY_FILE);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&key_path).map_err(io(&key_path))?;
        file.write_all(self.to_private_pem()?.as_bytes())
            .map_err(io(&key_path))?;
        let jwks_path = dir.join(JWKS_FILE);
        std::fs::write(&jwks_path, self.to_jwks_json() + "\n").map_err(io(&jwks_path))
    }

    /// Reads the key from `dir/private.pem`.
    pub fn load(dir: &Path) -> Result<Self, DevKeyError> {
        let key_path = dir.join(PRIVATE_KEY_FILE);
        let pem = std::fs::read_to_string(&key_path).map_err(io(&key_path))?;
        Self::from_pem(&pem)
    }

    /// Reads the key from `dir`, or generates and saves one when `dir` holds none.
    /// Returns the keys and whether they were generated now.
    pub fn load_or_generate(dir: &Path) -> Result<(Self, bool), DevKeyError> {
        if dir.join(PRIVATE_KEY_FILE).exists() {
            return Ok((Self::load(dir)?, false));
        }
        let keys = Self::generate()?;
        keys.save(dir)?;
        Ok((keys, true))
    }
}
