//! Signing, for OPA's `io.jwt.encode_sign` and `io.jwt.encode_sign_raw`: a compact JWS from a
//! header and a payload (their bytes as given) and a private JWK. HS256/384/512, RS256/384/512
//! and EdDSA sign deterministically, so the token is OPA's byte for byte. PS* and ES* are
//! randomized in OPA as in any signer; this module does not sign them (an error, which the
//! builtin turns into OPA's builtin error).
//!
//! RSA signing is `m^d mod n` with the verifier's Montgomery arithmetic, not constant time: a policy that signs with
//! an RSA key in a proxy that answers attackers should prefer HS* or EdDSA.

use base64::Engine as _;
use num_bigint::BigUint;

use super::montgomery::Montgomery;
use super::rsassa::emsa_pkcs1v15;
use super::{base64url_decode, Alg, Hash};

/// A private key from a JWK.
pub enum SigningKey {
    /// `kty: oct`.
    Hmac(Vec<u8>),
    /// `kty: RSA` with the private exponent.
    Rsa { n: BigUint, d: BigUint },
    /// `kty: OKP`, `crv: Ed25519`, with the private seed.
    Ed25519(Box<ed25519_dalek::SigningKey>),
}

/// The first key of a JWK or JWKS (`{"keys": [...]}`), as OPA's `jwk.ParseString` reads it.
pub fn signing_key(jwk_text: &str) -> Result<SigningKey, String> {
    let value: serde_json::Value =
        serde_json::from_str(jwk_text).map_err(|e| format!("failed to parse JWK: {e}"))?;
    let jwk = match value.get("keys") {
        Some(serde_json::Value::Array(keys)) => keys.first().ok_or("empty JWK set")?,
        Some(_) => return Err("JWK set keys must be an array".into()),
        None => &value,
    };
    let jwk = jwk.as_object().ok_or("a JWK must be an object")?;
    let field = |name: &str| -> Result<Vec<u8>, String> {
        let text = jwk
            .get(name)
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| format!("JWK field {name} is missing"))?;
        base64url_decode(text).ok_or_else(|| format!("JWK field {name} is not base64url"))
    };
    match jwk.get("kty").and_then(serde_json::Value::as_str) {
        Some("oct") => Ok(SigningKey::Hmac(field("k")?)),
        Some("RSA") => {
            let n = BigUint::from_bytes_be(&field("n")?);
            let d = BigUint::from_bytes_be(&field("d")?);
            if n.bits() < 512 || d == BigUint::ZERO {
                return Err("not an RSA private key".into());
            }
            Ok(SigningKey::Rsa { n, d })
        }
        Some("OKP") if jwk.get("crv").and_then(serde_json::Value::as_str) == Some("Ed25519") => {
            let seed: [u8; 32] = field("d")?
                .try_into()
                .map_err(|_| "an Ed25519 private key has 32 bytes")?;
            Ok(SigningKey::Ed25519(Box::new(
                ed25519_dalek::SigningKey::from_bytes(&seed),
            )))
        }
        Some(kty) => Err(format!(
            "signing with a {kty} JWK is not available in this filter"
        )),
        None => Err("JWK has no kty".into()),
    }
}

/// The compact JWS of `header` and `payload` (their bytes, base64url without padding) signed
/// with `alg` and `key`, as OPA's `jws.SignLiteral`.
pub fn sign_compact(
    alg: Alg,
    key: &SigningKey,
    header: &[u8],
    payload: &[u8],
) -> Result<String, String> {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let signing_input = format!("{}.{}", b64.encode(header), b64.encode(payload));
    let signature = sign(alg, key, signing_input.as_bytes())?;
    Ok(format!("{signing_input}.{}", b64.encode(signature)))
}

fn sign(alg: Alg, key: &SigningKey, input: &[u8]) -> Result<Vec<u8>, String> {
    match (alg, key) {
        (Alg::HS256 | Alg::HS384 | Alg::HS512, SigningKey::Hmac(secret)) => {
            hmac(alg.hash(), secret, input)
        }
        (Alg::RS256 | Alg::RS384 | Alg::RS512, SigningKey::Rsa { n, d }) => {
            let size = usize::try_from(n.bits().div_ceil(8)).map_err(|e| e.to_string())?;
            let em = emsa_pkcs1v15(alg.hash(), &alg.hash().digest(input), size)
                .ok_or("the RSA key is too small for the digest")?;
            let signature = Montgomery::new(n)
                .ok_or("the RSA modulus is even")?
                .modpow(&BigUint::from_bytes_be(&em), d)
                .to_bytes_be();
            let mut out = vec![0; size.saturating_sub(signature.len())];
            out.extend_from_slice(&signature);
            Ok(out)
        }
        (Alg::EdDSA, SigningKey::Ed25519(key)) => {
            use ed25519_dalek::Signer as _;
            Ok(key.sign(input).to_bytes().to_vec())
        }
        (Alg::PS256 | Alg::PS384 | Alg::PS512 | Alg::ES256 | Alg::ES384 | Alg::ES512, _) => {
            Err(format!(
                "signing with {} is not available in this filter",
                alg.name()
            ))
        }
        _ => Err(format!("the key cannot sign {}", alg.name())),
    }
}

fn hmac(hash: Hash, secret: &[u8], input: &[u8]) -> Result<Vec<u8>, String> {
    fn mac<M: hmac::Mac + hmac::digest::KeyInit>(
        secret: &[u8],
        input: &[u8],
    ) -> Result<Vec<u8>, String> {
        let mut mac =
            <M as hmac::digest::KeyInit>::new_from_slice(secret).map_err(|e| e.to_string())?;
        mac.update(input);
        Ok(mac.finalize().into_bytes().to_vec())
    }
    match hash {
        Hash::Sha256 => mac::<hmac::Hmac<sha2::Sha256>>(secret, input),
        Hash::Sha384 => mac::<hmac::Hmac<sha2::Sha384>>(secret, input),
        Hash::Sha512 => mac::<hmac::Hmac<sha2::Sha512>>(secret, input),
    }
}
