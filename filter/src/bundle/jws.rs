//! The JWS subset bundle signatures use: compact serialization, RS/PS/ES/HS 256/384/512, keys
//! as PEM (public keys to verify, private keys to sign) or HMAC secrets taken byte for byte, as
//! OPA does. Host-free; `policy-bundler` signs with it, the filter verifies.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use rsa::pkcs1::{DecodeRsaPrivateKey, DecodeRsaPublicKey};
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey};
use rsa::{Pkcs1v15Sign, Pss, RsaPrivateKey, RsaPublicKey};
use sha2::{Digest, Sha256, Sha384, Sha512};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// A JWS `alg`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    HS256,
    HS384,
    HS512,
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
    ES512,
}

const ALL: [Algorithm; 12] = [
    Algorithm::HS256,
    Algorithm::HS384,
    Algorithm::HS512,
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::ES512,
];

impl Algorithm {
    pub fn parse(name: &str) -> Result<Self, JwsError> {
        ALL.into_iter()
            .find(|a| a.name() == name)
            .ok_or_else(|| JwsError::UnknownAlgorithm(name.to_string()))
    }

    pub fn name(self) -> &'static str {
        match self {
            Algorithm::HS256 => "HS256",
            Algorithm::HS384 => "HS384",
            Algorithm::HS512 => "HS512",
            Algorithm::RS256 => "RS256",
            Algorithm::RS384 => "RS384",
            Algorithm::RS512 => "RS512",
            Algorithm::PS256 => "PS256",
            Algorithm::PS384 => "PS384",
            Algorithm::PS512 => "PS512",
            Algorithm::ES256 => "ES256",
            Algorithm::ES384 => "ES384",
            Algorithm::ES512 => "ES512",
        }
    }

    pub fn is_hmac(self) -> bool {
        matches!(self, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwsError {
    #[error("not a compact JWS: {0}")]
    Malformed(String),
    #[error("unknown signature algorithm {0:?} (RS, PS, ES or HS with 256, 384 or 512)")]
    UnknownAlgorithm(String),
    #[error("key for {alg}: {message}")]
    Key { alg: &'static str, message: String },
    #[error("the JWT is signed with {header:?}, the key is for {key}")]
    AlgorithmMismatch { header: String, key: &'static str },
    #[error("signature does not verify")]
    BadSignature,
}

/// A compact JWS taken apart; nothing is trusted until `verify` succeeds.
#[derive(Debug)]
pub struct Compact<'a> {
    signing_input: &'a str,
    signature: Vec<u8>,
    /// The decoded protected header.
    pub header: serde_json::Map<String, serde_json::Value>,
    /// The decoded payload bytes.
    pub payload: Vec<u8>,
}

impl<'a> Compact<'a> {
    pub fn parse(token: &'a str) -> Result<Self, JwsError> {
        let token = token.trim();
        let (signing_input, signature) = token
            .rsplit_once('.')
            .ok_or_else(|| JwsError::Malformed("expected three dot-separated parts".into()))?;
        let (header, payload) = signing_input
            .split_once('.')
            .filter(|(_, p)| !p.contains('.'))
            .ok_or_else(|| JwsError::Malformed("expected three dot-separated parts".into()))?;
        let decode = |part: &str, what: &str| {
            B64.decode(part)
                .map_err(|e| JwsError::Malformed(format!("{what} is not base64url: {e}")))
        };
        let header_bytes = decode(header, "header")?;
        let header = serde_json::from_slice(&header_bytes)
            .map_err(|e| JwsError::Malformed(format!("header is not a JSON object: {e}")))?;
        Ok(Self {
            signing_input,
            signature: decode(signature, "signature")?,
            header,
            payload: decode(payload, "payload")?,
        })
    }

    /// The header's `alg`.
    pub fn alg(&self) -> Option<&str> {
        self.header.get("alg").and_then(|v| v.as_str())
    }

    /// Checks the signature with `key`; the header's `alg` must be the key's algorithm.
    pub fn verify(&self, key: &VerifyingKey) -> Result<(), JwsError> {
        let alg = key.algorithm();
        if self.alg() != Some(alg.name()) {
            return Err(JwsError::AlgorithmMismatch {
                header: self.alg().unwrap_or_default().to_string(),
                key: alg.name(),
            });
        }
        key.verify(self.signing_input.as_bytes(), &self.signature)
    }
}

/// A key ready to verify one algorithm.
#[derive(Clone)]
pub struct VerifyingKey {
    alg: Algorithm,
    key: Public,
}

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VerifyingKey({})", self.alg.name())
    }
}

#[derive(Clone)]
enum Public {
    Hmac(Vec<u8>),
    Rsa(Box<RsaPublicKey>),
    P256(p256::ecdsa::VerifyingKey),
    P384(p384::ecdsa::VerifyingKey),
    P521(Box<p521::ecdsa::VerifyingKey>),
}

impl VerifyingKey {
    /// `key` is the HMAC secret (its bytes, as OPA uses them) or a PEM public key:
    /// `PUBLIC KEY` (SPKI) for RSA and EC, or `RSA PUBLIC KEY` (PKCS#1).
    pub fn parse(alg: Algorithm, key: &str) -> Result<Self, JwsError> {
        let err = |message: String| JwsError::Key {
            alg: alg.name(),
            message,
        };
        let key = match alg {
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => {
                if key.is_empty() {
                    return Err(err("the HMAC secret is empty".into()));
                }
                Public::Hmac(key.as_bytes().to_vec())
            }
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512 => {
                let key = key.trim();
                let parsed = if key.contains("BEGIN RSA PUBLIC KEY") {
                    RsaPublicKey::from_pkcs1_pem(key).map_err(|e| e.to_string())
                } else {
                    RsaPublicKey::from_public_key_pem(key).map_err(|e| e.to_string())
                };
                Public::Rsa(Box::new(
                    parsed.map_err(|e| err(format!("not a PEM RSA public key: {e}")))?,
                ))
            }
            Algorithm::ES256 => Public::P256(
                p256::ecdsa::VerifyingKey::from_public_key_pem(key.trim())
                    .map_err(|e| err(format!("not a PEM P-256 public key: {e}")))?,
            ),
            Algorithm::ES384 => Public::P384(
                p384::ecdsa::VerifyingKey::from_public_key_pem(key.trim())
                    .map_err(|e| err(format!("not a PEM P-384 public key: {e}")))?,
            ),
            Algorithm::ES512 => {
                let public = p521::PublicKey::from_public_key_pem(key.trim())
                    .map_err(|e| err(format!("not a PEM P-521 public key: {e}")))?;
                Public::P521(Box::new(
                    p521::ecdsa::VerifyingKey::from_affine(*public.as_affine())
                        .map_err(|e| err(e.to_string()))?,
                ))
            }
        };
        Ok(Self { alg, key })
    }

    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    fn verify(&self, input: &[u8], signature: &[u8]) -> Result<(), JwsError> {
        use p256::ecdsa::signature::Verifier;
        let ok = match (&self.key, self.alg) {
            (Public::Hmac(secret), alg) => constant_time_eq(&hmac(alg, secret, input)?, signature),
            (Public::Rsa(key), alg) => {
                let (digest, pkcs1, pss) = rsa_schemes(alg, input);
                let scheme =
                    if matches!(alg, Algorithm::PS256 | Algorithm::PS384 | Algorithm::PS512) {
                        key.verify(pss, &digest, signature)
                    } else {
                        key.verify(pkcs1, &digest, signature)
                    };
                scheme.is_ok()
            }
            (Public::P256(key), _) => p256::ecdsa::Signature::from_slice(signature)
                .is_ok_and(|s| key.verify(input, &s).is_ok()),
            (Public::P384(key), _) => p384::ecdsa::Signature::from_slice(signature)
                .is_ok_and(|s| key.verify(input, &s).is_ok()),
            (Public::P521(key), _) => p521::ecdsa::Signature::from_slice(signature)
                .is_ok_and(|s| key.verify(input, &s).is_ok()),
        };
        if ok {
            Ok(())
        } else {
            Err(JwsError::BadSignature)
        }
    }
}

/// The digest of `input` for an RSA algorithm and both padding schemes for it.
fn rsa_schemes(alg: Algorithm, input: &[u8]) -> (Vec<u8>, Pkcs1v15Sign, Pss) {
    match alg {
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
    }
}

fn hmac(alg: Algorithm, secret: &[u8], input: &[u8]) -> Result<Vec<u8>, JwsError> {
    let bad = |e: hmac::digest::InvalidLength| JwsError::Key {
        alg: alg.name(),
        message: e.to_string(),
    };
    Ok(match alg {
        Algorithm::HS384 => {
            let mut mac = Hmac::<Sha384>::new_from_slice(secret).map_err(bad)?;
            mac.update(input);
            mac.finalize().into_bytes().to_vec()
        }
        Algorithm::HS512 => {
            let mut mac = Hmac::<Sha512>::new_from_slice(secret).map_err(bad)?;
            mac.update(input);
            mac.finalize().into_bytes().to_vec()
        }
        _ => {
            let mut mac = Hmac::<Sha256>::new_from_slice(secret).map_err(bad)?;
            mac.update(input);
            mac.finalize().into_bytes().to_vec()
        }
    })
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Signs `payload` as a compact JWS with header `{"alg", "kid"?}`. `key` is the HMAC secret or
/// a PEM private key (`RSA PRIVATE KEY`, `EC PRIVATE KEY` or PKCS#8 `PRIVATE KEY`). PSS salts
/// come from `rng`.
pub fn sign<R: rsa::rand_core::CryptoRngCore>(
    alg: Algorithm,
    key: &str,
    kid: Option<&str>,
    payload: &[u8],
    rng: &mut R,
) -> Result<String, JwsError> {
    let mut header = serde_json::Map::new();
    header.insert("alg".into(), alg.name().into());
    if let Some(kid) = kid {
        header.insert("kid".into(), kid.into());
    }
    header.insert("typ".into(), "JWT".into());
    let header = serde_json::Value::Object(header).to_string();
    let signing_input = format!("{}.{}", B64.encode(header), B64.encode(payload));
    let input = signing_input.as_bytes();
    let err = |message: String| JwsError::Key {
        alg: alg.name(),
        message,
    };
    let signature = match alg {
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => hmac(alg, key.as_bytes(), input)?,
        Algorithm::ES256 | Algorithm::ES384 | Algorithm::ES512 => {
            use p256::ecdsa::signature::Signer;
            let key = key.trim();
            match alg {
                Algorithm::ES256 => {
                    let secret = p256::SecretKey::from_sec1_pem(key)
                        .or_else(|_| p256::SecretKey::from_pkcs8_pem(key))
                        .map_err(|e| err(format!("not a PEM P-256 private key: {e}")))?;
                    let signature: p256::ecdsa::Signature =
                        p256::ecdsa::SigningKey::from(secret).sign(input);
                    signature.to_bytes().to_vec()
                }
                Algorithm::ES384 => {
                    let secret = p384::SecretKey::from_sec1_pem(key)
                        .or_else(|_| p384::SecretKey::from_pkcs8_pem(key))
                        .map_err(|e| err(format!("not a PEM P-384 private key: {e}")))?;
                    let signature: p384::ecdsa::Signature =
                        p384::ecdsa::SigningKey::from(secret).sign(input);
                    signature.to_bytes().to_vec()
                }
                _ => {
                    let secret = p521::SecretKey::from_sec1_pem(key)
                        .or_else(|_| p521::SecretKey::from_pkcs8_pem(key))
                        .map_err(|e| err(format!("not a PEM P-521 private key: {e}")))?;
                    let signing = p521::ecdsa::SigningKey::from_bytes(&secret.to_bytes())
                        .map_err(|e| err(e.to_string()))?;
                    let signature: p521::ecdsa::Signature =
                        p521::ecdsa::signature::RandomizedSigner::sign_with_rng(
                            &signing, rng, input,
                        );
                    signature.to_bytes().to_vec()
                }
            }
        }
        _ => {
            let key = key.trim();
            let private = RsaPrivateKey::from_pkcs1_pem(key)
                .map_err(|e| e.to_string())
                .or_else(|_| RsaPrivateKey::from_pkcs8_pem(key).map_err(|e| e.to_string()))
                .map_err(|e| err(format!("not a PEM RSA private key: {e}")))?;
            let (digest, pkcs1, pss) = rsa_schemes(alg, input);
            let signed = if matches!(alg, Algorithm::PS256 | Algorithm::PS384 | Algorithm::PS512) {
                private.sign_with_rng(rng, pss, &digest)
            } else {
                private.sign(pkcs1, &digest)
            };
            signed.map_err(|e| err(e.to_string()))?
        }
    };
    Ok(format!("{signing_input}.{}", B64.encode(signature)))
}
