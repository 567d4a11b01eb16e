//! Signature checks. Every function answers `true` or `false`: a key of the wrong type for the
//! algorithm, a signature of the wrong length or an out-of-range value is just "not verified".

use super::ecdsa::EcKey;
use super::rsassa::{pkcs1v15_verify, pss_verify, PssSalt};
use super::{Alg, Hash, Key, PublicKey};

/// Verifies a JWS signature over `signing_input` with `key` as RFC 7518 defines `alg`
/// (what OPA's `io.jwt.decode_verify` does): HS needs a non-empty secret, RS/PS an RSA key,
/// ES an EC key and an `R || S` signature exactly twice the key's field size.
pub fn verify(alg: Alg, key: &Key, signing_input: &[u8], signature: &[u8]) -> bool {
    match (alg, key) {
        (Alg::HS256 | Alg::HS384 | Alg::HS512, Key::Hmac(secret)) => {
            !secret.is_empty() && hmac_matches(alg.hash(), secret, signing_input, signature)
        }
        (_, Key::Public(public)) => {
            verify_with_public_key(alg, public, signing_input, signature, PssSalt::EqualsHash)
        }
        _ => false,
    }
}

/// Verifies an RS, PS, ES or EdDSA signature with a public key; HS algorithms never verify
/// here.
pub fn verify_with_public_key(
    alg: Alg,
    key: &PublicKey,
    signing_input: &[u8],
    signature: &[u8],
    salt: PssSalt,
) -> bool {
    if alg == Alg::EdDSA {
        return match key {
            PublicKey::Ed25519(key) => ed25519_verify(key, signing_input, signature),
            _ => false,
        };
    }
    let hash = alg.hash();
    let digest = hash.digest(signing_input);
    match (alg, key) {
        (Alg::RS256 | Alg::RS384 | Alg::RS512, PublicKey::Rsa(rsa)) => {
            pkcs1v15_verify(rsa, hash, &digest, signature)
        }
        (Alg::PS256 | Alg::PS384 | Alg::PS512, PublicKey::Rsa(rsa)) => {
            pss_verify(rsa, hash, &digest, signature, salt)
        }
        (Alg::ES256 | Alg::ES384 | Alg::ES512, ec) => match ec_key(ec) {
            Some(key) if signature.len() == 2 * key.curve.size() => {
                let (r, s) = signature.split_at(key.curve.size());
                ecdsa_verify(ec, &digest, r, s)
            }
            _ => false,
        },
        _ => false,
    }
}

/// Verifies an ECDSA signature as OPA's `io.jwt.verify_es*` does: the signature is cut in
/// two halves, `R` and `S`, whatever its length; the curve is the key's.
pub fn verify_ecdsa_halves(
    hash: Hash,
    key: &PublicKey,
    signing_input: &[u8],
    signature: &[u8],
) -> bool {
    let (r, s) = signature.split_at(signature.len() / 2);
    ecdsa_verify(key, &hash.digest(signing_input), r, s)
}

/// HMAC of `signing_input` under `secret` equals `signature` (in constant time).
pub fn hmac_matches(hash: Hash, secret: &[u8], signing_input: &[u8], signature: &[u8]) -> bool {
    fn check<M: hmac::Mac + hmac::digest::KeyInit>(
        secret: &[u8],
        input: &[u8],
        signature: &[u8],
    ) -> bool {
        match <M as hmac::digest::KeyInit>::new_from_slice(secret) {
            Ok(mut mac) => {
                mac.update(input);
                mac.verify_slice(signature).is_ok()
            }
            Err(_) => false,
        }
    }
    match hash {
        Hash::Sha256 => check::<hmac::Hmac<sha2::Sha256>>(secret, signing_input, signature),
        Hash::Sha384 => check::<hmac::Hmac<sha2::Sha384>>(secret, signing_input, signature),
        Hash::Sha512 => check::<hmac::Hmac<sha2::Sha512>>(secret, signing_input, signature),
    }
}

/// Go's `ed25519.Verify`: a 64-byte signature whose `S` is canonical, checked without the
/// cofactor (`verify`, not `verify_strict`, which refuses small-order keys Go accepts).
fn ed25519_verify(key: &ed25519_dalek::VerifyingKey, message: &[u8], signature: &[u8]) -> bool {
    use ed25519_dalek::Verifier as _;
    ed25519_dalek::Signature::from_slice(signature)
        .is_ok_and(|signature| key.verify(message, &signature).is_ok())
}

fn ec_key(key: &PublicKey) -> Option<&EcKey> {
    match key {
        PublicKey::Ec(key) => Some(key),
        PublicKey::Rsa(_) | PublicKey::Ed25519(_) | PublicKey::Unusable(_) => None,
    }
}

/// `r` and `s` are big-endian integers of any length; they must fit the curve's field.
fn ecdsa_verify(key: &PublicKey, digest: &[u8], r: &[u8], s: &[u8]) -> bool {
    let Some(key) = ec_key(key) else {
        return false;
    };
    let size = key.curve.size();
    match (fixed_width(r, size), fixed_width(s, size)) {
        (Some(r), Some(s)) => key.verify(digest, &r, &s),
        _ => false,
    }
}

/// A big-endian integer left-padded to `width` bytes, if it fits.
fn fixed_width(bytes: &[u8], width: usize) -> Option<Vec<u8>> {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    let significant = bytes.get(start..)?;
    if significant.len() > width {
        return None;
    }
    let mut out = vec![0u8; width - significant.len()];
    out.extend_from_slice(significant);
    Some(out)
}
