//! RSA signature verification (RFC 8017 §8.1.2 RSASSA-PSS, §8.2.2 RSASSA-PKCS1-v1_5) on
//! `num-bigint`, which the filter links anyway. Public-key operations on public data only.

use num_bigint::BigUint;

use super::montgomery::Montgomery;
use super::Hash;

/// RSA moduli outside this range are refused: Go (and so OPA) refuses keys under 1024 bits,
/// and a huge modulus would let a caller make each verification arbitrarily slow.
pub const RSA_MIN_BITS: u64 = 1024;
pub const RSA_MAX_BITS: u64 = 8192;

/// An RSA public key with a modulus in bounds and a usable exponent.
#[derive(Clone)]
pub struct RsaKey {
    n: BigUint,
    e: BigUint,
}

impl RsaKey {
    /// The key (n, e) if it is one to verify with: 1024 to 8192 bits, n odd, e odd, in
    /// [3, 2^33 - 1] and below n (the checks RustCrypto's `rsa` made before).
    pub fn new(n: BigUint, e: BigUint) -> Result<Self, &'static str> {
        if !(RSA_MIN_BITS..=RSA_MAX_BITS).contains(&n.bits()) {
            return Err("RSA modulus size out of bounds");
        }
        let exponent_ok = e.bits() <= 33 && e.bit(0) && e > BigUint::from(1u8) && e < n;
        if !n.bit(0) || !exponent_ok {
            return Err("invalid RSA public key");
        }
        Ok(Self { n, e })
    }

    pub fn bits(&self) -> u64 {
        self.n.bits()
    }

    /// Bytes of the modulus: the length of every signature.
    fn size(&self) -> usize {
        self.n.bits().div_ceil(8) as usize
    }

    /// s^e mod n, left-padded to the modulus size; `None` unless the signature is exactly the
    /// modulus size and below n.
    fn open(&self, signature: &[u8]) -> Option<Vec<u8>> {
        let k = self.size();
        if signature.len() != k {
            return None;
        }
        let s = BigUint::from_bytes_be(signature);
        if s >= self.n {
            return None;
        }
        let m = Montgomery::new(&self.n)?.modpow(&s, &self.e).to_bytes_be();
        let mut em = vec![0u8; k.checked_sub(m.len())?];
        em.extend_from_slice(&m);
        Some(em)
    }
}

/// DER `DigestInfo` prefixes for SHA-256/384/512 (RFC 8017 §9.2, note 1).
fn digest_info_prefix(hash: Hash) -> &'static [u8] {
    match hash {
        Hash::Sha256 => &[
            0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x01, 0x05, 0x00, 0x04, 0x20,
        ],
        Hash::Sha384 => &[
            0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x02, 0x05, 0x00, 0x04, 0x30,
        ],
        Hash::Sha512 => &[
            0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x03, 0x05, 0x00, 0x04, 0x40,
        ],
    }
}

/// EMSA-PKCS1-v1_5 of a `digest` for a key of `k` bytes: `00 01 FF.. 00 DigestInfo`
/// (RFC 8017 §9.2); `None` when the key is too small.
pub fn emsa_pkcs1v15(hash: Hash, digest: &[u8], k: usize) -> Option<Vec<u8>> {
    let prefix = digest_info_prefix(hash);
    let t_len = prefix.len() + digest.len();
    if digest.len() != hash.output_len() || k < t_len + 11 {
        return None;
    }
    let mut em = vec![0x00, 0x01];
    em.resize(k - t_len - 1, 0xff);
    em.push(0x00);
    em.extend_from_slice(prefix);
    em.extend_from_slice(digest);
    Some(em)
}

/// RSASSA-PKCS1-v1_5: the opened signature must be exactly the encoding of the digest.
pub fn pkcs1v15_verify(key: &RsaKey, hash: Hash, digest: &[u8], signature: &[u8]) -> bool {
    let Some(expected) = emsa_pkcs1v15(hash, digest, key.size()) else {
        return false;
    };
    key.open(signature).is_some_and(|em| em == expected)
}

/// How RSASSA-PSS finds the salt: JWS (RFC 7518) fixes it to the hash length; OPA's
/// `io.jwt.verify_ps*` and bundle signatures let Go detect it (`PSSSaltLengthAuto`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PssSalt {
    EqualsHash,
    Auto,
}

/// RSASSA-PSS with MGF1 over the same hash (EMSA-PSS-VERIFY, RFC 8017 §9.1.2).
pub fn pss_verify(
    key: &RsaKey,
    hash: Hash,
    digest: &[u8],
    signature: &[u8],
    salt: PssSalt,
) -> bool {
    let Some(opened) = key.open(signature) else {
        return false;
    };
    let em_bits = key.bits().saturating_sub(1) as usize;
    let em_len = em_bits.div_ceil(8);
    let h_len = hash.output_len();
    if digest.len() != h_len || em_len < h_len + 2 {
        return false;
    }
    // With a modulus of 8k+1 bits the encoded message is one byte shorter than the modulus.
    let Some((leading, em)) = opened.split_at_checked(opened.len().saturating_sub(em_len)) else {
        return false;
    };
    if leading.iter().any(|b| *b != 0) || em.last() != Some(&0xbc) {
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
    let padding_len = match salt {
        PssSalt::Auto => match db.iter().position(|b| *b != 0) {
            Some(i) => i,
            None => return false,
        },
        PssSalt::EqualsHash => match db.len().checked_sub(h_len + 1) {
            Some(len) => len,
            None => return false,
        },
    };
    let (padding, tail) = db.split_at(padding_len);
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
