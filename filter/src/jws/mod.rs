//! JSON Web Signatures (RFC 7515) in compact form: split a token, decode its parts, verify its
//! signature with RS/PS/ES/HS 256/384/512 or EdDSA (Ed25519) and key material (PEM certificate, PEM public key,
//! JWK, JWKS, HMAC secret). Verification only: HMAC and SHA-2 from RustCrypto, Ed25519 from
//! `ed25519-dalek`, RSA and ECDSA written out on `num-bigint` (which the engine links anyway) to
//! keep the filter small.
//! Nothing here knows Rego, so the `io.jwt.*` builtins and bundle signature checks share it.
//!
//! Decoding follows OPA (Go): base64url with or without padding, JSON objects parsed as Go
//! would (last duplicate key wins, invalid UTF-8 replaced).

mod der;
mod ecdsa;
mod key;
mod montgomery;
mod rsassa;
mod sign;
mod verify;

#[cfg(test)]
pub(crate) mod testkeys;

pub(crate) use key::{from_pkcs1_der, from_spki_der, pem_decode};
pub use key::{keys_from_pem_or_jwk, Key, KeyEntry, PublicKey};
pub use rsassa::PssSalt;
pub use sign::{sign_compact, signing_key, SigningKey};
pub use verify::{hmac_matches, verify, verify_ecdsa_halves, verify_with_public_key};

use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;

/// Why a token or a key could not be used. The `io.jwt.*` builtins turn these into a
/// builtin error, as OPA does.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwsError {
    #[error("encoded JWT had no period separators")]
    NoSeparators,
    #[error("encoded JWT must have 3 sections, found {0}")]
    Sections(usize),
    #[error("illegal base64url data in JWT {part}")]
    Base64 { part: &'static str },
    #[error("bad JWT {part}: {message}")]
    Json { part: &'static str, message: String },
    #[error("JWT is a JWE object, which is not supported")]
    Jwe,
    #[error("{0}")]
    Key(String),
}

/// The signature algorithms this module verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
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
    EdDSA,
}

/// The digest an algorithm signs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hash {
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        use sha2::Digest as _;
        match self {
            Hash::Sha256 => sha2::Sha256::digest(data).to_vec(),
            Hash::Sha384 => sha2::Sha384::digest(data).to_vec(),
            Hash::Sha512 => sha2::Sha512::digest(data).to_vec(),
        }
    }

    pub fn output_len(self) -> usize {
        match self {
            Hash::Sha256 => 32,
            Hash::Sha384 => 48,
            Hash::Sha512 => 64,
        }
    }
}

impl Alg {
    pub const ALL: [Alg; 13] = [
        Alg::HS256,
        Alg::HS384,
        Alg::HS512,
        Alg::RS256,
        Alg::RS384,
        Alg::RS512,
        Alg::PS256,
        Alg::PS384,
        Alg::PS512,
        Alg::ES256,
        Alg::ES384,
        Alg::ES512,
        Alg::EdDSA,
    ];

    /// The algorithm named by a JWS `alg`, if this module verifies it.
    pub fn from_name(name: &str) -> Option<Alg> {
        Alg::ALL.into_iter().find(|alg| alg.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            Alg::HS256 => "HS256",
            Alg::HS384 => "HS384",
            Alg::HS512 => "HS512",
            Alg::RS256 => "RS256",
            Alg::RS384 => "RS384",
            Alg::RS512 => "RS512",
            Alg::PS256 => "PS256",
            Alg::PS384 => "PS384",
            Alg::PS512 => "PS512",
            Alg::ES256 => "ES256",
            Alg::ES384 => "ES384",
            Alg::ES512 => "ES512",
            Alg::EdDSA => "EdDSA",
        }
    }

    pub fn is_hmac(self) -> bool {
        matches!(self, Alg::HS256 | Alg::HS384 | Alg::HS512)
    }

    /// The digest the algorithm signs. Ed25519 signs the message itself (it hashes with
    /// SHA-512 inside the scheme); nothing digests for it.
    pub fn hash(self) -> Hash {
        match self {
            Alg::HS256 | Alg::RS256 | Alg::PS256 | Alg::ES256 => Hash::Sha256,
            Alg::HS384 | Alg::RS384 | Alg::PS384 | Alg::ES384 => Hash::Sha384,
            Alg::HS512 | Alg::RS512 | Alg::PS512 | Alg::ES512 | Alg::EdDSA => Hash::Sha512,
        }
    }
}

/// A compact JWS split into its three base64url parts, not yet decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compact<'a> {
    pub header: &'a str,
    pub payload: &'a str,
    pub signature: &'a str,
}

impl<'a> Compact<'a> {
    /// Splits `token` at its periods: exactly three parts, any of them possibly empty.
    pub fn split(token: &'a str) -> Result<Self, JwsError> {
        if !token.contains('.') {
            return Err(JwsError::NoSeparators);
        }
        let mut parts = token.split('.');
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(header), Some(payload), Some(signature), None) => Ok(Self {
                header,
                payload,
                signature,
            }),
            _ => Err(JwsError::Sections(token.split('.').count())),
        }
    }

    /// What the signature covers: `header.payload`, as transmitted.
    pub fn signing_input(&self) -> Vec<u8> {
        let mut input = Vec::with_capacity(self.header.len() + 1 + self.payload.len());
        input.extend_from_slice(self.header.as_bytes());
        input.push(b'.');
        input.extend_from_slice(self.payload.as_bytes());
        input
    }

    pub fn header_bytes(&self) -> Result<Vec<u8>, JwsError> {
        base64url_decode(self.header).ok_or(JwsError::Base64 { part: "header" })
    }

    pub fn payload_bytes(&self) -> Result<Vec<u8>, JwsError> {
        base64url_decode(self.payload).ok_or(JwsError::Base64 { part: "payload" })
    }

    pub fn signature_bytes(&self) -> Result<Vec<u8>, JwsError> {
        base64url_decode(self.signature).ok_or(JwsError::Base64 { part: "signature" })
    }

    /// The decoded JOSE header as JSON text; a JWE (`enc` present) is refused.
    pub fn header_json(&self) -> Result<serde_json::Map<String, serde_json::Value>, JwsError> {
        let header = json_object(&self.header_bytes()?, "header")?;
        if header.contains_key("enc") {
            return Err(JwsError::Jwe);
        }
        Ok(header)
    }
}

/// Decodes base64url as OPA's `base64url.decode` does: padding may be left out (RFC 7515
/// appendix C), line breaks are ignored, non-zero trailing bits are accepted.
pub fn base64url_decode(text: &str) -> Option<Vec<u8>> {
    const ENGINE: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::URL_SAFE,
        GeneralPurposeConfig::new()
            .with_decode_padding_mode(DecodePaddingMode::RequireCanonical)
            .with_decode_allow_trailing_bits(true),
    );
    let mut padded: String = text.chars().filter(|c| *c != '\r' && *c != '\n').collect();
    if !text.ends_with('=') {
        match text.len() % 4 {
            0 => {}
            2 => padded.push_str("=="),
            3 => padded.push('='),
            _ => return None,
        }
    }
    ENGINE.decode(padded).ok()
}

/// Parses JSON that must be an object, as Go's `encoding/json` would: invalid UTF-8 is
/// replaced rather than refused, and the last of duplicate keys wins.
pub fn json_object(
    bytes: &[u8],
    part: &'static str,
) -> Result<serde_json::Map<String, serde_json::Value>, JwsError> {
    let text = String::from_utf8_lossy(bytes);
    match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(serde_json::Value::Object(object)) => Ok(object),
        Ok(_) => Err(JwsError::Json {
            part,
            message: "decoded JSON type was not an Object".into(),
        }),
        Err(e) => Err(JwsError::Json {
            part,
            message: format!("invalid JSON: {e}"),
        }),
    }
}

#[cfg(test)]
mod tests;
