//! Verification keys from the text OPA accepts as `cert`: one PEM block (a certificate or a
//! PKIX public key), or JSON holding a JWK or a JWKS (`{"keys": [...]}`); and the PEM public
//! keys bundle signatures are checked with.

use base64::Engine as _;
use num_bigint::BigUint;

use super::der::{self, DerError, Spki};
use super::ecdsa::{Curve, EcKey};
use super::rsassa::RsaKey;
use super::JwsError;

/// A public key this module can verify with.
#[derive(Clone)]
pub enum PublicKey {
    Rsa(RsaKey),
    Ec(Box<EcKey>),
    Ed25519(Box<ed25519_dalek::VerifyingKey>),
    /// A key OPA can parse but this module cannot verify with (other curves, RSA outside the
    /// size bounds, an Ed25519 point off the curve): it never verifies a signature.
    Unusable(&'static str),
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PublicKey::Rsa(key) => write!(f, "RSA-{}", key.bits()),
            PublicKey::Ec(key) => f.write_str(key.curve.name()),
            PublicKey::Ed25519(_) => f.write_str("Ed25519"),
            PublicKey::Unusable(why) => write!(f, "unusable ({why})"),
        }
    }
}

/// Key material for one verification.
#[derive(Debug, Clone)]
pub enum Key {
    Public(PublicKey),
    /// An HMAC secret (a `secret` constraint or an `oct` JWK).
    Hmac(Vec<u8>),
}

/// A key with what a JWKS says about it.
#[derive(Debug, Clone)]
pub struct KeyEntry {
    pub key: Key,
    /// The JWK `alg`, when the key names one (always a supported algorithm name).
    pub alg: Option<String>,
    /// The JWK `kid`, or empty.
    pub kid: String,
}

impl KeyEntry {
    fn bare(key: PublicKey) -> Self {
        Self {
            key: Key::Public(key),
            alg: None,
            kid: String::new(),
        }
    }
}

/// The algorithm names OPA knows in a JWK `alg`: a key naming another is skipped.
const KNOWN_ALGS: &[&str] = &[
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "HS256",
    "HS384", "HS512", "EdDSA",
];

/// Reads `text` as OPA's `cert` constraint and `io.jwt.verify_*` key argument do: a PEM
/// block when there is one (nothing may follow it), else a JWK or JWKS.
pub fn keys_from_pem_or_jwk(text: &str) -> Result<Vec<KeyEntry>, JwsError> {
    if let Some(block) = pem_decode(text) {
        if !block.rest.is_empty() {
            return Err(JwsError::Key(
                "extra data after a PEM certificate block".into(),
            ));
        }
        return match block.label.as_str() {
            "CERTIFICATE" => {
                let key = der::certificate_spki(&block.der)
                    .map_err(|e| e.to_string())
                    .and_then(|spki| from_spki(&spki));
                Ok(vec![KeyEntry::bare(key.map_err(|e| {
                    JwsError::Key(format!("failed to parse a PEM certificate: {e}"))
                })?)])
            }
            "PUBLIC KEY" => Ok(vec![KeyEntry::bare(from_spki_der(&block.der).map_err(
                |e| JwsError::Key(format!("failed to parse a PEM public key: {e}")),
            )?)]),
            _ => Err(JwsError::Key(
                "failed to extract a Key from the PEM certificate".into(),
            )),
        };
    }
    let json: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| JwsError::Key(format!("failed to parse a JWK key (set): {e}")))?;
    let jwks: Vec<&serde_json::Value> = match json.get("keys") {
        Some(serde_json::Value::Array(keys)) => keys.iter().collect(),
        Some(_) => {
            return Err(JwsError::Key(
                "failed to parse a JWK key (set): keys must be an array".into(),
            ))
        }
        None => vec![&json],
    };
    let mut entries = Vec::with_capacity(jwks.len());
    for jwk in jwks {
        let entry = from_jwk(jwk)
            .map_err(|e| JwsError::Key(format!("failed to parse a JWK key (set): {e}")))?;
        if let Some(entry) = entry {
            entries.push(entry);
        }
    }
    Ok(entries)
}

/// One JWK, or `None` when it names an algorithm OPA does not know (OPA skips those).
fn from_jwk(jwk: &serde_json::Value) -> Result<Option<KeyEntry>, String> {
    let object = jwk.as_object().ok_or("a JWK must be an object")?;
    let text = |name: &str| -> Result<Option<&str>, String> {
        match object.get(name) {
            None => Ok(None),
            Some(serde_json::Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(format!("JWK {name} must be a string")),
        }
    };
    let bytes = |name: &str| -> Result<Vec<u8>, String> {
        let value = text(name)?.ok_or_else(|| format!("JWK is missing {name}"))?;
        jwk_base64(value).ok_or_else(|| format!("JWK {name} is not base64url"))
    };
    let alg = text("alg")?.map(str::to_string);
    if let Some(alg) = &alg {
        if !KNOWN_ALGS.contains(&alg.as_str()) {
            return Ok(None);
        }
    }
    let kid = text("kid")?.unwrap_or_default().to_string();
    let key = match text("kty")?.ok_or("JWK is missing kty")? {
        "RSA" => Key::Public(rsa_key(
            BigUint::from_bytes_be(&bytes("n")?),
            BigUint::from_bytes_be(&bytes("e")?),
        )),
        "EC" => {
            let crv = text("crv")?.ok_or("JWK is missing crv")?;
            let (x, y) = (bytes("x")?, bytes("y")?);
            let size = match crv {
                "P-256" => 32,
                "P-384" => 48,
                "P-521" => 66,
                _ => return Err(format!("unsupported EC curve {crv}")),
            };
            // SEC1 uncompressed point; coordinates shorter than the field are left-padded.
            let mut point = vec![0x04];
            for coordinate in [&x, &y] {
                if coordinate.len() > size {
                    return Err("JWK EC coordinate is too long".into());
                }
                point.resize(point.len() + size - coordinate.len(), 0);
                point.extend_from_slice(coordinate);
            }
            Key::Public(ec_key(crv, &point))
        }
        "oct" => Key::Hmac(bytes("k")?),
        "OKP" => match text("crv")?.ok_or("JWK is missing crv")? {
            "Ed25519" => Key::Public(ed25519_key(&bytes("x")?)),
            _ => Key::Public(PublicKey::Unusable("only Ed25519 OKP keys are supported")),
        },
        other => return Err(format!("unsupported JWK kty {other}")),
    };
    Ok(Some(KeyEntry { key, alg, kid }))
}

/// JWK members are base64url without padding; Go's decoder also takes padded and standard
/// base64, and so does this.
fn jwk_base64(text: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    [URL_SAFE_NO_PAD, URL_SAFE, STANDARD_NO_PAD, STANDARD]
        .iter()
        .find_map(|engine| engine.decode(text).ok())
}

fn rsa_key(n: BigUint, e: BigUint) -> PublicKey {
    RsaKey::new(n, e).map_or_else(PublicKey::Unusable, PublicKey::Rsa)
}

fn ec_key(curve: &str, sec1: &[u8]) -> PublicKey {
    let curve = match curve {
        "P-256" => Curve::P256,
        "P-384" => Curve::P384,
        "P-521" => Curve::P521,
        _ => return PublicKey::Unusable("unsupported EC curve"),
    };
    // Go parses a JWK point that is not on the curve and then fails to verify with it.
    EcKey::from_sec1(curve, sec1)
        .map_or(PublicKey::Unusable("EC point is not on the curve"), |key| {
            PublicKey::Ec(Box::new(key))
        })
}

/// An Ed25519 public key: 32 bytes, a point Go's `ed25519.Verify` can decode (it accepts
/// non-canonical encodings, as `ed25519-dalek` does).
fn ed25519_key(bytes: &[u8]) -> PublicKey {
    <[u8; 32]>::try_from(bytes)
        .ok()
        .and_then(|bytes| ed25519_dalek::VerifyingKey::from_bytes(&bytes).ok())
        .map_or(PublicKey::Unusable("not an Ed25519 public key"), |key| {
            PublicKey::Ed25519(Box::new(key))
        })
}

/// The key in a DER SubjectPublicKeyInfo (a `PUBLIC KEY` PEM block).
pub(crate) fn from_spki_der(der: &[u8]) -> Result<PublicKey, String> {
    from_spki(&der::spki(der).map_err(|e| e.to_string())?)
}

/// The key in a SubjectPublicKeyInfo: RSA, EC on a NIST curve, or Ed25519.
fn from_spki(spki: &Spki<'_>) -> Result<PublicKey, String> {
    match spki.algorithm {
        der::OID_RSA => {
            let (n, e) = der::rsa_public_key(spki.key).map_err(|e| e.to_string())?;
            Ok(rsa_key(
                BigUint::from_bytes_be(n),
                BigUint::from_bytes_be(e),
            ))
        }
        der::OID_EC => match spki.named_curve.ok_or("EC key without a named curve")? {
            der::OID_P256 => Ok(ec_key("P-256", spki.key)),
            der::OID_P384 => Ok(ec_key("P-384", spki.key)),
            der::OID_P521 => Ok(ec_key("P-521", spki.key)),
            other => Err(format!(
                "unsupported elliptic curve {}",
                der::oid_text(other)
            )),
        },
        der::OID_ED25519 => Ok(ed25519_key(spki.key)),
        other => Err(format!(
            "unknown public key algorithm {}",
            der::oid_text(other)
        )),
    }
}

/// The key in a PKCS#1 `RSAPublicKey` (an `RSA PUBLIC KEY` PEM block).
pub(crate) fn from_pkcs1_der(der: &[u8]) -> Result<PublicKey, DerError> {
    let (n, e) = der::rsa_public_key(der)?;
    Ok(rsa_key(
        BigUint::from_bytes_be(n),
        BigUint::from_bytes_be(e),
    ))
}

/// One PEM block, found as Go's `pem.Decode` finds it: text before it is skipped, the END line
/// must match, and what follows the END line's line break is returned as `rest`.
pub(crate) struct PemBlock {
    pub label: String,
    pub der: Vec<u8>,
    pub rest: String,
}

pub(crate) fn pem_decode(text: &str) -> Option<PemBlock> {
    const BEGIN: &str = "-----BEGIN ";
    let mut search = text;
    loop {
        let start = search.find(BEGIN)?;
        // Go only takes a BEGIN at the start of the input or of a line.
        let at_line_start = start == 0 || search[..start].ends_with('\n');
        let after = &search[start + BEGIN.len()..];
        let candidate = at_line_start.then(|| pem_block(after)).flatten();
        if let Some(block) = candidate {
            return Some(block);
        }
        search = after;
    }
}

fn pem_block(after_begin: &str) -> Option<PemBlock> {
    let (type_line, body) = after_begin.split_once('\n')?;
    let label = type_line.trim_end().strip_suffix("-----")?.to_string();
    let end = format!("-----END {label}-----");
    let end_at = body.find(&end)?;
    let (content, tail) = body.split_at(end_at);
    let tail = &tail[end.len()..];
    // The END line may only be followed by spaces up to its line break.
    let (end_rest, rest) = match tail.split_once('\n') {
        Some((line, rest)) => (line, rest),
        None => (tail, ""),
    };
    if !end_rest.trim_end_matches([' ', '\t', '\r']).is_empty() {
        return None;
    }
    // Headers (`Proc-Type: ...`) end at a blank line; Go skips them.
    let content = if content.lines().next().is_some_and(|l| l.contains(':')) {
        content.split_once("\n\n").map(|(_, b)| b).unwrap_or("")
    } else {
        content
    };
    let base64: String = content.chars().filter(|c| !c.is_whitespace()).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(base64)
        .ok()?;
    Some(PemBlock {
        label,
        der,
        rest: rest.to_string(),
    })
}

#[cfg(test)]
pub(super) fn pem_rest(text: &str) -> Option<String> {
    pem_decode(text).map(|b| b.rest)
}
