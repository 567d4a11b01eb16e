//! Signing bundles as `opa build --signing-key` does, with RustCrypto: the private key (PEM) or
//! HMAC secret signs the JWS; the payload and `.signatures.json` come from the filter's core,
//! which verifies them the same way.

use p256::ecdsa::signature::{RandomizedSigner, Signer as _};
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::{Pkcs1v15Sign, Pss, RsaPrivateKey};
use sha2::{Digest, Sha256, Sha384, Sha512};
use zerohop_filter::bundle::token::{self, Algorithm, JwsError};

/// The signature of `input` under `key` for `alg`. `key` is the HMAC secret, or a PEM private
/// key: `RSA PRIVATE KEY`, `EC PRIVATE KEY` or PKCS#8 `PRIVATE KEY`.
pub fn signature(alg: Algorithm, key: &str, input: &[u8]) -> Result<Vec<u8>, JwsError> {
    let err = |message: String| JwsError::Key {
        alg: alg.name(),
        message,
    };
    let pem = key.trim();
    Ok(match alg {
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => {
            token::hmac_sign(alg, key.as_bytes(), input)?
        }
        Algorithm::ES256 => {
            let secret = p256::SecretKey::from_sec1_pem(pem)
                .or_else(|_| p256::SecretKey::from_pkcs8_pem(pem))
                .map_err(|e| err(format!("not a PEM P-256 private key: {e}")))?;
            let signature: p256::ecdsa::Signature =
                p256::ecdsa::SigningKey::from(secret).sign(input);
            signature.to_bytes().to_vec()
        }
        Algorithm::ES384 => {
            let secret = p384::SecretKey::from_sec1_pem(pem)
                .or_else(|_| p384::SecretKey::from_pkcs8_pem(pem))
                .map_err(|e| err(format!("not a PEM P-384 private key: {e}")))?;
            let signature: p384::ecdsa::Signature =
                p384::ecdsa::SigningKey::from(secret).sign(input);
            signature.to_bytes().to_vec()
        }
        Algorithm::ES512 => {
            let secret = p521::SecretKey::from_sec1_pem(pem)
                .or_else(|_| p521::SecretKey::from_pkcs8_pem(pem))
                .map_err(|e| err(format!("not a PEM P-521 private key: {e}")))?;
            let signing = p521::ecdsa::SigningKey::from_bytes(&secret.to_bytes())
                .map_err(|e| err(e.to_string()))?;
            let signature: p521::ecdsa::Signature =
                signing.sign_with_rng(&mut rand_core::OsRng, input);
            signature.to_bytes().to_vec()
        }
        _ => {
            let private = RsaPrivateKey::from_pkcs1_pem(pem)
                .map_err(|e| e.to_string())
                .or_else(|_| RsaPrivateKey::from_pkcs8_pem(pem).map_err(|e| e.to_string()))
                .map_err(|e| err(format!("not a PEM RSA private key: {e}")))?;
            let (digest, pkcs1, pss) = match alg {
                Algorithm::RS384 | Algorithm::PS384 => (
                    Sha384::digest(input).to_vec(),
                    Pkcs1v15Sign::new::<Sha384>(),
                    Pss::new::<Sha384>(),
                ),
                Algorithm::RS512 | Algorithm::PS512 => (
                    Sha512::digest(input).to_vec(),
                    Pkcs1v15Sign::new::<Sha512>(),
                    Pss::new::<Sha512>(),
                ),
                _ => (
                    Sha256::digest(input).to_vec(),
                    Pkcs1v15Sign::new::<Sha256>(),
                    Pss::new::<Sha256>(),
                ),
            };
            let signed = if matches!(alg, Algorithm::PS256 | Algorithm::PS384 | Algorithm::PS512) {
                private.sign_with_rng(&mut rand_core::OsRng, pss, &digest)
            } else {
                private.sign(pkcs1, &digest)
            };
            signed.map_err(|e| err(e.to_string()))?
        }
    })
}
