//! Signature checks. Every function answers `true` or `false`: a key of the wrong type for the
//! algorithm, a signature of the wrong length or an out-of-range value is just "not verified".

use p256::ecdsa::signature::hazmat::PrehashVerifier as _;
use rsa::traits::PublicKeyParts as _;
use rsa::BigUint;

use super::{Alg, Hash, Key, PublicKey};

/// How RSASSA-PSS finds the salt: JWS (RFC 7518) fixes it to the hash length; OPA's
/// `io.jwt.verify_ps*` lets Go detect it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PssSalt {
    EqualsHash,
    Auto,
}

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

/// Verifies an RS, PS or ES signature with a public key; HS algorithms never verify here.
pub fn verify_with_public_key(
    alg: Alg,
    key: &PublicKey,
    signing_input: &[u8],
    signature: &[u8],
    salt: PssSalt,
) -> bool {
    let hash = alg.hash();
    let digest = hash.digest(signing_input);
    match (alg, key) {
        (Alg::RS256 | Alg::RS384 | Alg::RS512, PublicKey::Rsa(rsa)) => {
            pkcs1v15_verify(rsa, hash, &digest, signature)
        }
        (Alg::PS256 | Alg::PS384 | Alg::PS512, PublicKey::Rsa(rsa)) => {
            pss_verify(rsa, hash, &digest, signature, salt)
        }
        (Alg::ES256 | Alg::ES384 | Alg::ES512, ec) => match field_size(ec) {
            Some(size) if signature.len() == 2 * size => {
                let (r, s) = signature.split_at(size);
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

fn pkcs1v15_verify(key: &rsa::RsaPublicKey, hash: Hash, digest: &[u8], signature: &[u8]) -> bool {
    let scheme = match hash {
        Hash::Sha256 => rsa::Pkcs1v15Sign::new::<sha2::Sha256>(),
        Hash::Sha384 => rsa::Pkcs1v15Sign::new::<sha2::Sha384>(),
        Hash::Sha512 => rsa::Pkcs1v15Sign::new::<sha2::Sha512>(),
    };
    key.verify(scheme, digest, signature).is_ok()
}

/// RSASSA-PSS verification (RFC 8017 §9.1.2) with MGF1 over the same hash, written out
/// because the `rsa` crate only verifies a known salt length.
fn pss_verify(
    key: &rsa::RsaPublicKey,
    hash: Hash,
    digest: &[u8],
    signature: &[u8],
    salt: PssSalt,
) -> bool {
    if signature.len() != key.size() {
        return false;
    }
    let s = BigUint::from_bytes_be(signature);
    if &s >= key.n() {
        return false;
    }
    let m = s.modpow(key.e(), key.n()).to_bytes_be();
    let em_bits = key.n().bits().saturating_sub(1);
    let em_len = em_bits.div_ceil(8);
    let h_len = hash.output_len();
    if m.len() > em_len || em_len < h_len + 2 {
        return false;
    }
    let mut em = vec![0u8; em_len - m.len()];
    em.extend_from_slice(&m);
    if em.last() != Some(&0xbc) {
        return false;
    }
    let (masked_db, rest) = em.split_at(em_len - h_len - 1);
    let Some(h) = rest.get(..h_len) else {
        return false;
    };
    let top_mask = 0xffu8 >> (8 * em_len - em_bits);
    if masked_db.first().is_some_and(|b| b & !top_mask != 0) {
        return false;
    }
    let mask = mgf1(hash, h, masked_db.len());
    let mut db: Vec<u8> = masked_db.iter().zip(&mask).map(|(a, b)| a ^ b).collect();
    if let Some(first) = db.first_mut() {
        *first &= top_mask;
    }
    let ps_len = match salt {
        PssSalt::Auto => match db.iter().position(|b| *b != 0) {
            Some(i) => i,
            None => return false,
        },
        PssSalt::EqualsHash => match db.len().checked_sub(h_len + 1) {
            Some(len) => len,
            None => return false,
        },
    };
    let (padding, tail) = db.split_at(ps_len);
    if padding.iter().any(|b| *b != 0) || tail.first() != Some(&0x01) {
        return false;
    }
    let salt = tail.get(1..).unwrap_or_default();
    let mut m_prime = vec![0u8; 8];
    m_prime.extend_from_slice(digest);
    m_prime.extend_from_slice(salt);
    hash.digest(&m_prime) == h
}

fn mgf1(hash: Hash, seed: &[u8], len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + hash.output_len());
    let mut counter: u32 = 0;
    while out.len() < len {
        let mut block = seed.to_vec();
        block.extend_from_slice(&counter.to_be_bytes());
        out.extend_from_slice(&hash.digest(&block));
        counter = counter.wrapping_add(1);
    }
    out.truncate(len);
    out
}

fn field_size(key: &PublicKey) -> Option<usize> {
    match key {
        PublicKey::P256(_) => Some(32),
        PublicKey::Ec(key) => Some(key.curve.size()),
        PublicKey::Rsa(_) | PublicKey::Unusable(_) => None,
    }
}

/// `r` and `s` are big-endian integers of any length; they must fit the curve's field.
fn ecdsa_verify(key: &PublicKey, digest: &[u8], r: &[u8], s: &[u8]) -> bool {
    let Some(size) = field_size(key) else {
        return false;
    };
    let (Some(r), Some(s)) = (fixed_width(r, size), fixed_width(s, size)) else {
        return false;
    };
    let mut rs = r.clone();
    rs.extend_from_slice(&s);
    match key {
        PublicKey::P256(k) => p256::ecdsa::Signature::from_slice(&rs)
            .is_ok_and(|sig| k.verify_prehash(digest, &sig).is_ok()),
        PublicKey::Ec(k) => k.verify(digest, &r, &s),
        PublicKey::Rsa(_) | PublicKey::Unusable(_) => false,
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
