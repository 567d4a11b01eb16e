//! The JWS subset bundle signatures use: compact serialization, RS/PS/ES/HS 256/384/512,
//! public keys as PEM (`PUBLIC KEY`, `RSA PUBLIC KEY`), HMAC secrets taken byte for byte, as
//! OPA does. The signature checks are `crate::jws`'s (the `io.jwt.*` builtins' too); this
//! module adds the bundle's stricter token syntax, its errors, and what `policy-bundler`
//! needs to build a token (it signs with RustCrypto and assembles the token with `compact`).

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::{Sha256, Sha384, Sha512};

pub use crate::jws::Alg as Algorithm;
use crate::jws::{self, PssSalt, PublicKey};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The algorithm a JWS `alg` (or a key's configured algorithm) names.
/// A bundle signing algorithm: OPA signs and verifies bundles with RS/PS/ES/HS only.
pub fn algorithm(name: &str) -> Result<Algorithm, JwsError> {
    Algorithm::from_name(name)
        .filter(|alg| *alg != Algorithm::EdDSA)
        .ok_or_else(|| JwsError::UnknownAlgorithm(name.to_string()))
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
    #[error("the JWT header lists critical extensions ({0}), which bundle verification does not implement")]
    Critical(String),
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
        // RFC 7515 §4.1.11: extensions listed in `crit` must be understood, and none are.
        if let Some(critical) = self.header.get("crit") {
            return Err(JwsError::Critical(critical.to_string()));
        }
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
    key: Key,
}

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VerifyingKey({})", self.alg.name())
    }
}

#[derive(Clone)]
enum Key {
    Hmac(Vec<u8>),
    Public(PublicKey),
}

impl VerifyingKey {
    /// `key` is the HMAC secret (its bytes, as OPA uses them) or a PEM public key:
    /// `PUBLIC KEY` (SPKI) for RSA and EC, or `RSA PUBLIC KEY` (PKCS#1).
    pub fn parse(alg: Algorithm, key: &str) -> Result<Self, JwsError> {
        let err = |message: String| JwsError::Key {
            alg: alg.name(),
            message,
        };
        if alg.is_hmac() {
            if key.is_empty() {
                return Err(err("the HMAC secret is empty".into()));
            }
            return Ok(Self {
                alg,
                key: Key::Hmac(key.as_bytes().to_vec()),
            });
        }
        let block = jws::pem_decode(key).ok_or_else(|| err("not a PEM public key".into()))?;
        let public = match block.label.as_str() {
            "RSA PUBLIC KEY" => jws::from_pkcs1_der(&block.der)
                .map_err(|e| err(format!("not a DER RSA public key: {e}")))?,
            "PUBLIC KEY" => jws::from_spki_der(&block.der).map_err(err)?,
            other => return Err(err(format!("a {other:?} PEM block is not a public key"))),
        };
        let fits = match (&public, alg) {
            (PublicKey::Unusable(why), _) => return Err(err((*why).to_string())),
            (PublicKey::Ed25519(_), _) => false,
            (PublicKey::Rsa(_), _) => alg.name().starts_with("RS") || alg.name().starts_with("PS"),
            (PublicKey::Ec(ec), _) => match alg {
                Algorithm::ES256 => ec.curve.name() == "P-256",
                Algorithm::ES384 => ec.curve.name() == "P-384",
                Algorithm::ES512 => ec.curve.name() == "P-521",
                _ => false,
            },
        };
        if !fits {
            return Err(err("the key is of another type".into()));
        }
        Ok(Self {
            alg,
            key: Key::Public(public),
        })
    }

    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// RS/PS/ES as `crate::jws` verifies them, with the PSS salt length detected (Go's
    /// `rsa.VerifyPSS` with `PSSSaltLengthAuto`, as OPA); HS compared in constant time.
    fn verify(&self, input: &[u8], signature: &[u8]) -> Result<(), JwsError> {
        let ok = match &self.key {
            Key::Hmac(secret) => jws::hmac_matches(self.alg.hash(), secret, input, signature),
            Key::Public(public) => {
                jws::verify_with_public_key(self.alg, public, input, signature, PssSalt::Auto)
            }
        };
        if ok {
            Ok(())
        } else {
            Err(JwsError::BadSignature)
        }
    }
}

/// An HMAC signature (HS*), for signers that hold the secret.
pub fn hmac_sign(alg: Algorithm, secret: &[u8], input: &[u8]) -> Result<Vec<u8>, JwsError> {
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

/// A compact JWS with header `{"alg", "kid"?, "typ": "JWT"}` over `payload`; `sign` turns the
/// signing input into the signature bytes.
pub fn compact(
    alg: Algorithm,
    kid: Option<&str>,
    payload: &[u8],
    sign: impl FnOnce(&[u8]) -> Result<Vec<u8>, JwsError>,
) -> Result<String, JwsError> {
    let mut header = serde_json::Map::new();
    header.insert("alg".into(), alg.name().into());
    if let Some(kid) = kid {
        header.insert("kid".into(), kid.into());
    }
    header.insert("typ".into(), "JWT".into());
    let header = serde_json::Value::Object(header).to_string();
    let signing_input = format!("{}.{}", B64.encode(header), B64.encode(payload));
    let signature = sign(signing_input.as_bytes())?;
    Ok(format!("{signing_input}.{}", B64.encode(signature)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEYS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/keys");

    fn key_file(name: &str) -> String {
        std::fs::read_to_string(format!("{KEYS}/{name}")).unwrap()
    }

    /// Tokens signed by RustCrypto's rsa/p256/p384/p521 (testdata/keys/jws-fixtures.json).
    #[test]
    fn rustcrypto_signatures_verify_and_tampering_fails() {
        let fixtures: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&key_file("jws-fixtures.json")).unwrap();
        assert_eq!(fixtures.len(), 9);
        for (alg, token) in fixtures {
            let alg = algorithm(&alg).unwrap();
            let public = match alg.name().get(..2) {
                Some("ES") => key_file(match alg {
                    Algorithm::ES256 => "ec256.pub.pem",
                    Algorithm::ES384 => "ec384.pub.pem",
                    _ => "ec521.pub.pem",
                }),
                _ => key_file("rsa.pub.pem"),
            };
            let key = VerifyingKey::parse(alg, &public).unwrap();
            let token = token.as_str().unwrap();
            Compact::parse(token).unwrap().verify(&key).unwrap();
            if public.contains("RSA") || alg.name().starts_with('R') {
                // The same key as PKCS#1 `RSA PUBLIC KEY`.
                let pkcs1 = VerifyingKey::parse(alg, &key_file("rsa.pkcs1.pub.pem")).unwrap();
                Compact::parse(token).unwrap().verify(&pkcs1).unwrap();
            }
            // Another payload under the same signature.
            let (head, rest) = token.split_once('.').unwrap();
            let (_, signature) = rest.split_once('.').unwrap();
            let forged = format!("{head}.{}.{signature}", B64.encode(r#"{"files":[]}"#));
            assert_eq!(
                Compact::parse(&forged).unwrap().verify(&key),
                Err(JwsError::BadSignature),
                "{alg:?}"
            );
            if alg.name().starts_with('R') || alg.name().starts_with('P') {
                let other = VerifyingKey::parse(alg, &key_file("rsa-other.pub.pem")).unwrap();
                assert_eq!(
                    Compact::parse(token).unwrap().verify(&other),
                    Err(JwsError::BadSignature)
                );
            }
        }
    }

    #[test]
    fn keys_must_fit_the_algorithm() {
        assert!(VerifyingKey::parse(Algorithm::ES256, &key_file("rsa.pub.pem")).is_err());
        assert!(VerifyingKey::parse(Algorithm::ES384, &key_file("ec256.pub.pem")).is_err());
        assert!(VerifyingKey::parse(Algorithm::RS256, &key_file("ec256.pub.pem")).is_err());
        assert!(VerifyingKey::parse(Algorithm::RS256, "not a key").is_err());
        assert!(VerifyingKey::parse(Algorithm::RS256, &key_file("rsa.pem")).is_err());
        assert!(VerifyingKey::parse(Algorithm::HS256, "").is_err());
    }
}
