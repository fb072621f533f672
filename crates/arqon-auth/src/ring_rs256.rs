//! RS256 signature checks with ring, installed as jsonwebtoken's process-wide crypto provider.
//!
//! The Shield checks a signature on every connect, and ring's RSA verification is several times
//! faster than the pure-Rust `rsa` crate's (`BENCHMARKS.md`, the connect storm). Everything else
//! (minting dev tokens, the other algorithms, JWK utilities) stays with jsonwebtoken's
//! `rust_crypto` provider. ring is already in the build, under rustls.

use std::sync::Once;

use jsonwebtoken::crypto::{CryptoProvider, JwtVerifier, rust_crypto};
use jsonwebtoken::signature;
use jsonwebtoken::{Algorithm, DecodingKey, DecodingKeyKind};
use ring::signature::{RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents, UnparsedPublicKey};

/// An RS256 check against one public key (its modulus and exponent, or its DER).
struct Rs256(DecodingKey);

impl signature::Verifier<Vec<u8>> for Rs256 {
    fn verify(&self, message: &[u8], sig: &Vec<u8>) -> Result<(), signature::Error> {
        let checked = match self.0.kind() {
            DecodingKeyKind::SecretOrDer(der) => {
                UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, der).verify(message, sig)
            }
            DecodingKeyKind::RsaModulusExponent { n, e } => {
                RsaPublicKeyComponents { n, e }.verify(&RSA_PKCS1_2048_8192_SHA256, message, sig)
            }
        };
        checked.map_err(|_| signature::Error::new())
    }
}

impl JwtVerifier for Rs256 {
    fn algorithm(&self) -> Algorithm {
        Algorithm::RS256
    }
}

// The signature is jsonwebtoken's `verifier_factory` type, which takes the algorithm by reference.
#[allow(clippy::trivially_copy_pass_by_ref)]
fn new_verifier(
    algorithm: &Algorithm,
    key: &DecodingKey,
) -> jsonwebtoken::errors::Result<Box<dyn JwtVerifier>> {
    if *algorithm == Algorithm::RS256 {
        return Ok(Box::new(Rs256(key.clone())));
    }
    (rust_crypto::DEFAULT_PROVIDER.verifier_factory)(algorithm, key)
}

/// Makes [`new_verifier`] jsonwebtoken's provider for this process, once. Called before every use
/// of jsonwebtoken in this crate (the first use fixes the provider). If another crate installed a
/// provider first, that one stays (jsonwebtoken allows one per process) and tokens are still
/// checked, by it.
pub(crate) fn install() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let provider: &'static CryptoProvider = Box::leak(Box::new(CryptoProvider {
            verifier_factory: new_verifier,
            ..rust_crypto::DEFAULT_PROVIDER.clone()
        }));
        let _ = provider.install_default();
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rs256_goes_to_ring_and_other_algorithms_to_rust_crypto() {
        let key = DecodingKey::from_rsa_raw_components(&[0xc3; 256], &[1, 0, 1]);
        let rs256 = new_verifier(&Algorithm::RS256, &key).unwrap();
        assert_eq!(rs256.algorithm(), Algorithm::RS256);
        // A signature of the right length that the key did not make is refused.
        assert!(rs256.verify(b"header.payload", &vec![0x42; 256]).is_err());
        let rs384 = new_verifier(&Algorithm::RS384, &key).unwrap();
        assert_eq!(rs384.algorithm(), Algorithm::RS384);
    }
}
