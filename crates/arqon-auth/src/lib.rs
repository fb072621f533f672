//! RS256 JWT verification against a JWKS, with time as an input; and dev token minting.
//!
//! - [`Verifier::verify`] checks a token against a [`Jwks`] and [`VerifierSettings`] at a given
//!   `now` (unix seconds). Only RS256 is accepted; every refusal is an [`AuthError`] with a stable
//!   [`AuthError::reason`] for metrics. No error ever carries token text.
//! - [`extract_token`] finds the token in `Authorization: Bearer …` or in the browser carrier
//!   `Sec-WebSocket-Protocol: arqon.v1, bearer.<token>` (echo [`SUBPROTOCOL`] back).
//! - [`DevKeys`] generates an RSA 2048 key, writes its PEM and JWKS, and mints tokens for dev mode,
//!   `arq auth gen` and tests. [`forge`] builds deliberately invalid tokens for attack tests.
//!
//! The crate reads no clock and runs no async code. See `specs/auth.md`.

mod carrier;
mod claims;
mod dev;
mod error;
pub mod forge;
mod jwks;
mod ring_rs256;
mod verify;

pub use carrier::{
    Carrier, PresentedToken, SUBPROTOCOL, SUBPROTOCOL_BATCH, SUBPROTOCOL_TOKEN_PREFIX,
    extract_token,
};
pub use claims::{Claims, DEV_AUDIENCE, DEV_ISSUER, Role};
pub use dev::{DEFAULT_DEV_KEYS_DIR, DevKeyError, DevKeys, JWKS_FILE, PRIVATE_KEY_FILE};
pub use error::{AuthError, RefreshError};
pub use jwks::{Jwks, JwksError, MIN_RSA_BITS};
pub use verify::{MAX_TOKEN_BYTES, Verifier, VerifierSettings};
