//! The JWS subset bundle signatures use: compact serialization, RS/PS/ES/HS 256/384/512,
//! public keys as PEM (`PUBLIC KEY`, `RSA PUBLIC KEY`), HMAC secrets taken byte for byte, as
//! OPA does. Verification only, on `num-bigint` (which the engine links anyway) so the filter
//! stays small: this is public-key arithmetic on public data, with no secret to leak through
//! timing; the HMAC comparison is constant-time. `policy-bundler` signs with RustCrypto and
//! builds the token with `compact`.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use num_bigint::BigUint;
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
    Rsa {
        n: BigUint,
        e: BigUint,
    },
    Ec {
        curve: Curve,
        x: BigUint,
        y: BigUint,
    },
}

const OID_RSA: &str = "1.2.840.113549.1.1.1";
const OID_EC: &str = "1.2.840.10045.2.1";

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
                key: Public::Hmac(key.as_bytes().to_vec()),
            });
        }
        let (label, der) = pem(key).ok_or_else(|| err("not a PEM public key".to_string()))?;
        let public = match label.as_str() {
            "RSA PUBLIC KEY" => rsa_public(&der).map_err(err)?,
            "PUBLIC KEY" => {
                let (algorithm, parameters, bits) =
                    spki(&der).ok_or_else(|| err("not a DER SubjectPublicKeyInfo".into()))?;
                match algorithm.as_str() {
                    OID_RSA => rsa_public(bits).map_err(err)?,
                    OID_EC => {
                        let curve_oid =
                            parameters.ok_or_else(|| err("EC key without a named curve".into()))?;
                        let curve = Curve::by_oid(&curve_oid)
                            .ok_or_else(|| err(format!("unsupported curve {curve_oid}")))?;
                        let (x, y) = curve.point(bits).map_err(err)?;
                        Public::Ec { curve, x, y }
                    }
                    other => return Err(err(format!("unsupported key type {other}"))),
                }
            }
            other => return Err(err(format!("a {other:?} PEM block is not a public key"))),
        };
        let fits = match (&public, alg) {
            (Public::Rsa { .. }, Algorithm::RS256 | Algorithm::RS384 | Algorithm::RS512)
            | (Public::Rsa { .. }, Algorithm::PS256 | Algorithm::PS384 | Algorithm::PS512) => true,
            (Public::Ec { curve, .. }, Algorithm::ES256) => curve.name == "P-256",
            (Public::Ec { curve, .. }, Algorithm::ES384) => curve.name == "P-384",
            (Public::Ec { curve, .. }, Algorithm::ES512) => curve.name == "P-521",
            _ => false,
        };
        if !fits {
            return Err(err("the key is of another type".into()));
        }
        Ok(Self { alg, key: public })
    }

    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    fn verify(&self, input: &[u8], signature: &[u8]) -> Result<(), JwsError> {
        let ok = match &self.key {
            Public::Hmac(secret) => constant_time_eq(&hmac(self.alg, secret, input)?, signature),
            Public::Rsa { n, e } => rsa_verify(self.alg, n, e, input, signature),
            Public::Ec { curve, x, y } => curve.verify(x, y, &digest(self.alg, input), signature),
        };
        if ok {
            Ok(())
        } else {
            Err(JwsError::BadSignature)
        }
    }
}

/// PKCS#1 `RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }`.
fn rsa_public(der: &[u8]) -> Result<Public, String> {
    let parse = || {
        let (0x30, body, _) = tlv(der)? else {
            return None;
        };
        let (0x02, n, rest) = tlv(body)? else {
            return None;
        };
        let (0x02, e, _) = tlv(rest)? else {
            return None;
        };
        Some((BigUint::from_bytes_be(n), BigUint::from_bytes_be(e)))
    };
    let (n, e) = parse().ok_or("not a DER RSA public key")?;
    if n.bits() < 1024 || e < BigUint::from(3u8) {
        return Err("the RSA key is too small".into());
    }
    Ok(Public::Rsa { n, e })
}

/// The label and DER bytes of the first PEM block.
fn pem(text: &str) -> Option<(String, Vec<u8>)> {
    let start = text.find("-----BEGIN ")?;
    let rest = text.get(start + 11..)?;
    let (label, rest) = rest.split_once("-----")?;
    let end = rest.find(&format!("-----END {label}-----"))?;
    let body: String = rest
        .get(..end)?
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .ok()?;
    Some((label.to_string(), der))
}

/// `SubjectPublicKeyInfo ::= SEQUENCE { SEQUENCE { algorithm OID, parameters ANY }, BIT STRING }`:
/// the algorithm, the parameters when they are an OID (a named curve), the key bits.
fn spki(der: &[u8]) -> Option<(String, Option<String>, &[u8])> {
    let (0x30, body, _) = tlv(der)? else {
        return None;
    };
    let (0x30, algorithm, rest) = tlv(body)? else {
        return None;
    };
    let (0x06, oid, parameters) = tlv(algorithm)? else {
        return None;
    };
    let parameters = match tlv(parameters) {
        Some((0x06, curve, _)) => Some(oid_text(curve)?),
        _ => None,
    };
    let (0x03, bits, _) = tlv(rest)? else {
        return None;
    };
    // The leading byte counts unused bits; keys use whole bytes.
    let (0, bits) = bits.split_first()? else {
        return None;
    };
    Some((oid_text(oid)?, parameters, bits))
}

/// One DER tag-length-value: (tag, content, what follows).
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 {
            return None;
        }
        let (bytes, rest) = rest.split_at_checked(count)?;
        (
            bytes
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b)),
            rest,
        )
    };
    let (content, rest) = rest.split_at_checked(len)?;
    Some((tag, content, rest))
}

/// An OBJECT IDENTIFIER's dotted text.
fn oid_text(content: &[u8]) -> Option<String> {
    let (first, rest) = content.split_first()?;
    let mut arcs = vec![u64::from(first / 40), u64::from(first % 40)];
    let mut value: u64 = 0;
    for byte in rest {
        value = value.checked_mul(128)? | u64::from(byte & 0x7f);
        if byte & 0x80 == 0 {
            arcs.push(value);
            value = 0;
        }
    }
    Some(
        arcs.iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join("."),
    )
}

/// The SHA-2 digest an algorithm signs.
fn digest(alg: Algorithm, input: &[u8]) -> Vec<u8> {
    match alg {
        Algorithm::HS384 | Algorithm::RS384 | Algorithm::PS384 | Algorithm::ES384 => {
            Sha384::digest(input).to_vec()
        }
        Algorithm::HS512 | Algorithm::RS512 | Algorithm::PS512 | Algorithm::ES512 => {
            Sha512::digest(input).to_vec()
        }
        _ => Sha256::digest(input).to_vec(),
    }
}

/// RSASSA-PKCS1-v1_5 (RS*) or RSASSA-PSS with MGF1 and any salt length (PS*, as Go's
/// `rsa.VerifyPSS` with `PSSSaltLengthAuto`), RFC 8017 §8.
fn rsa_verify(alg: Algorithm, n: &BigUint, e: &BigUint, input: &[u8], signature: &[u8]) -> bool {
    let k = n.bits().div_ceil(8) as usize;
    if signature.len() != k {
        return false;
    }
    let s = BigUint::from_bytes_be(signature);
    if &s >= n {
        return false;
    }
    let m = s.modpow(e, n).to_bytes_be();
    let mut em = vec![0u8; k.saturating_sub(m.len())];
    em.extend_from_slice(&m);
    let hash = digest(alg, input);
    if matches!(alg, Algorithm::PS256 | Algorithm::PS384 | Algorithm::PS512) {
        return pss_verify(alg, &em, n.bits() as usize - 1, &hash);
    }
    // DER DigestInfo prefixes for SHA-256/384/512 (RFC 8017 §9.2, note 1).
    let prefix: &[u8] = match alg {
        Algorithm::RS384 => &[
            0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x02, 0x05, 0x00, 0x04, 0x30,
        ],
        Algorithm::RS512 => &[
            0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x03, 0x05, 0x00, 0x04, 0x40,
        ],
        _ => &[
            0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x01, 0x05, 0x00, 0x04, 0x20,
        ],
    };
    let t_len = prefix.len() + hash.len();
    if k < t_len + 11 {
        return false;
    }
    let mut expected = vec![0x00, 0x01];
    expected.resize(k - t_len - 1, 0xff);
    expected.push(0x00);
    expected.extend_from_slice(prefix);
    expected.extend_from_slice(&hash);
    expected == em
}

fn pss_verify(alg: Algorithm, em_full: &[u8], em_bits: usize, m_hash: &[u8]) -> bool {
    let h_len = m_hash.len();
    let em_len = em_bits.div_ceil(8);
    // With a modulus of 8k+1 bits the encoded message is one byte shorter than the modulus.
    let Some((leading, em)) = em_full.split_at_checked(em_full.len().saturating_sub(em_len)) else {
        return false;
    };
    if leading.iter().any(|b| *b != 0) || em_len < h_len + 2 || em.last() != Some(&0xbc) {
        return false;
    }
    let Some((masked_db, rest)) = em.split_at_checked(em_len - h_len - 1) else {
        return false;
    };
    let Some(h) = rest.get(..h_len) else {
        return false;
    };
    let unused_bits = 8 * em_len - em_bits;
    let top_mask = 0xffu8.checked_shr(unused_bits as u32).unwrap_or(0);
    if masked_db.first().is_some_and(|b| b & !top_mask != 0) {
        return false;
    }
    let mask = mgf1(alg, h, masked_db.len());
    let mut db: Vec<u8> = masked_db.iter().zip(&mask).map(|(a, b)| a ^ b).collect();
    if let Some(first) = db.first_mut() {
        *first &= top_mask;
    }
    let Some(one) = db.iter().position(|b| *b != 0) else {
        return false;
    };
    if db.get(one) != Some(&0x01) {
        return false;
    }
    let salt = db.get(one + 1..).unwrap_or_default();
    let mut m_prime = vec![0u8; 8];
    m_prime.extend_from_slice(m_hash);
    m_prime.extend_from_slice(salt);
    digest(alg, &m_prime) == h
}

fn mgf1(alg: Algorithm, seed: &[u8], len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 64);
    let mut counter: u32 = 0;
    while out.len() < len {
        let mut block = seed.to_vec();
        block.extend_from_slice(&counter.to_be_bytes());
        out.extend_from_slice(&digest(alg, &block));
        counter = counter.wrapping_add(1);
    }
    out.truncate(len);
    out
}

/// A NIST prime curve y² = x³ − 3x + b over GF(p), with base point G of order n.
#[derive(Clone)]
struct Curve {
    name: &'static str,
    p: BigUint,
    b: BigUint,
    n: BigUint,
    g: (BigUint, BigUint),
}

fn hex(text: &str) -> BigUint {
    BigUint::parse_bytes(text.as_bytes(), 16).unwrap_or_default()
}

fn pow2(bits: u32) -> BigUint {
    BigUint::from(1u8) << bits
}

impl Curve {
    // Parameters from NIST SP 800-186 §3.2.1 (as in RustCrypto's p256/p384/p521).
    fn by_oid(oid: &str) -> Option<Self> {
        Some(match oid {
            "1.2.840.10045.3.1.7" => Curve {
                name: "P-256",
                p: pow2(256) - pow2(224) + pow2(192) + pow2(96) - 1u8,
                b: hex("5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604b"),
                n: hex("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551"),
                g: (
                    hex("6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296"),
                    hex("4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5"),
                ),
            },
            "1.3.132.0.34" => Curve {
                name: "P-384",
                p: pow2(384) - pow2(128) - pow2(96) + pow2(32) - 1u8,
                b: hex("b3312fa7e23ee7e4988e056be3f82d19181d9c6efe8141120314088f5013875ac656398d8a2ed19d2a85c8edd3ec2aef"),
                n: hex("ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973"),
                g: (
                    hex("aa87ca22be8b05378eb1c71ef320ad746e1d3b628ba79b9859f741e082542a385502f25dbf55296c3a545e3872760ab7"),
                    hex("3617de4a96262c6f5d9e98bf9292dc29f8f41dbd289a147ce9da3113b5f0b8c00a60b1ce1d7e819d7a431d7c90ea0e5f"),
                ),
            },
            "1.3.132.0.35" => Curve {
                name: "P-521",
                p: pow2(521) - 1u8,
                b: hex("0051953eb9618e1c9a1f929a21a0b68540eea2da725b99b315f3b8b489918ef109e156193951ec7e937b1652c0bd3bb1bf073573df883d2c34f1ef451fd46b503f00"),
                n: hex("01fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffa51868783bf2f966b7fcc0148f709a5d03bb5c9b8899c47aebb6fb71e91386409"),
                g: (
                    hex("00c6858e06b70404e9cd9e3ecb662395b4429c648139053fb521f828af606b4d3dbaa14b5e77efe75928fe1dc127a2ffa8de3348b3c1856a429bf97e7e31c2e5bd66"),
                    hex("011839296a789a3bc0045c8a5fb42c7d1bd998f54449579b446817afbd17273e662c97ee72995ef42640c550b9013fad0761353c7086a272c24088be94769fd16650"),
                ),
            },
            _ => return None,
        })
    }

    fn field_bytes(&self) -> usize {
        self.p.bits().div_ceil(8) as usize
    }

    /// An uncompressed SEC1 point (`04 || x || y`) that lies on the curve.
    fn point(&self, sec1: &[u8]) -> Result<(BigUint, BigUint), String> {
        let size = self.field_bytes();
        let coordinates = match sec1.split_first() {
            Some((0x04, rest)) if rest.len() == 2 * size => rest,
            _ => return Err("only uncompressed EC points are supported".into()),
        };
        let (x, y) = coordinates.split_at(size);
        let (x, y) = (BigUint::from_bytes_be(x), BigUint::from_bytes_be(y));
        let p = &self.p;
        let rhs = (&x * &x % p * &x + p * 3u8 - &x * 3u8 % p + &self.b) % p;
        if x >= *p || y >= *p || &y * &y % p != rhs {
            return Err("the point is not on the curve".into());
        }
        Ok((x, y))
    }

    /// ECDSA verification (SEC 1 §4.1.4) of a JWS signature `r || s`.
    fn verify(&self, qx: &BigUint, qy: &BigUint, hash: &[u8], signature: &[u8]) -> bool {
        let size = self.n.bits().div_ceil(8) as usize;
        if signature.len() != 2 * size {
            return false;
        }
        let (r, s) = signature.split_at(size);
        let (r, s) = (BigUint::from_bytes_be(r), BigUint::from_bytes_be(s));
        let zero = BigUint::default();
        if r == zero || s == zero || r >= self.n || s >= self.n {
            return false;
        }
        // The hash's leftmost bits, as many as n has.
        let mut e = BigUint::from_bytes_be(hash);
        let hash_bits = 8 * hash.len() as u64;
        if hash_bits > self.n.bits() {
            e >>= hash_bits - self.n.bits();
        }
        let w = s.modpow(&(&self.n - 2u8), &self.n);
        let u1 = e * &w % &self.n;
        let u2 = &r * &w % &self.n;
        let g = Jacobian::affine(&self.g.0, &self.g.1);
        let q = Jacobian::affine(qx, qy);
        let point = self.shamir(&u1, &g, &u2, &q);
        match self.to_affine(&point) {
            Some(x) => x % &self.n == r,
            None => false,
        }
    }

    /// u1·G + u2·Q, one doubling per bit.
    fn shamir(&self, u1: &BigUint, g: &Jacobian, u2: &BigUint, q: &Jacobian) -> Jacobian {
        let both = self.add(g, q);
        let mut acc = Jacobian::infinity();
        let bits = u1.bits().max(u2.bits());
        for i in (0..bits).rev() {
            acc = self.double(&acc);
            match (u1.bit(i), u2.bit(i)) {
                (true, true) => acc = self.add(&acc, &both),
                (true, false) => acc = self.add(&acc, g),
                (false, true) => acc = self.add(&acc, q),
                (false, false) => {}
            }
        }
        acc
    }

    fn sub(&self, a: &BigUint, b: &BigUint) -> BigUint {
        (a + &self.p - b % &self.p) % &self.p
    }

    /// `dbl-2001-b` for a = −3.
    fn double(&self, pt: &Jacobian) -> Jacobian {
        let p = &self.p;
        if pt.is_infinity() || pt.y == BigUint::default() {
            return Jacobian::infinity();
        }
        let delta = &pt.z * &pt.z % p;
        let gamma = &pt.y * &pt.y % p;
        let beta = &pt.x * &gamma % p;
        let alpha = self.sub(&pt.x, &delta) * ((&pt.x + &delta) % p) % p * 3u8 % p;
        let x3 = self.sub(&(&alpha * &alpha % p), &(&beta * 8u8 % p));
        let yz = (&pt.y + &pt.z) % p;
        let z3 = self.sub(&self.sub(&(&yz * &yz % p), &gamma), &delta);
        let y3 = self.sub(
            &(&alpha * self.sub(&(&beta * 4u8 % p), &x3) % p),
            &(&gamma * &gamma % p * 8u8 % p),
        );
        Jacobian {
            x: x3,
            y: y3,
            z: z3,
        }
    }

    /// `add-2007-bl`.
    fn add(&self, a: &Jacobian, b: &Jacobian) -> Jacobian {
        let p = &self.p;
        if a.is_infinity() {
            return b.clone();
        }
        if b.is_infinity() {
            return a.clone();
        }
        let z1z1 = &a.z * &a.z % p;
        let z2z2 = &b.z * &b.z % p;
        let u1 = &a.x * &z2z2 % p;
        let u2 = &b.x * &z1z1 % p;
        let s1 = &a.y * &b.z % p * &z2z2 % p;
        let s2 = &b.y * &a.z % p * &z1z1 % p;
        let h = self.sub(&u2, &u1);
        let r = self.sub(&s2, &s1) * 2u8 % p;
        if h == BigUint::default() {
            return if r == BigUint::default() {
                self.double(a)
            } else {
                Jacobian::infinity()
            };
        }
        let i = &h * 2u8 % p;
        let i = &i * &i % p;
        let j = &h * &i % p;
        let v = &u1 * &i % p;
        let x3 = self.sub(&self.sub(&(&r * &r % p), &j), &(&v * 2u8 % p));
        let y3 = self.sub(&(&r * self.sub(&v, &x3) % p), &(&s1 * &j % p * 2u8 % p));
        let zz = (&a.z + &b.z) % p;
        let z3 = self.sub(&self.sub(&(&zz * &zz % p), &z1z1), &z2z2) * &h % p;
        Jacobian {
            x: x3,
            y: y3,
            z: z3,
        }
    }

    /// The affine x of a point, `None` at infinity.
    fn to_affine(&self, pt: &Jacobian) -> Option<BigUint> {
        if pt.is_infinity() {
            return None;
        }
        let z_inv = pt.z.modpow(&(&self.p - 2u8), &self.p);
        Some(&pt.x * (&z_inv * &z_inv % &self.p) % &self.p)
    }
}

#[derive(Clone)]
struct Jacobian {
    x: BigUint,
    y: BigUint,
    z: BigUint,
}

impl Jacobian {
    fn affine(x: &BigUint, y: &BigUint) -> Self {
        Self {
            x: x.clone(),
            y: y.clone(),
            z: BigUint::from(1u8),
        }
    }

    fn infinity() -> Self {
        Self {
            x: BigUint::from(1u8),
            y: BigUint::from(1u8),
            z: BigUint::default(),
        }
    }

    fn is_infinity(&self) -> bool {
        self.z == BigUint::default()
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

/// An HMAC signature (HS*), for signers that hold the secret.
pub fn hmac_sign(alg: Algorithm, secret: &[u8], input: &[u8]) -> Result<Vec<u8>, JwsError> {
    hmac(alg, secret, input)
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
            let alg = Algorithm::parse(&alg).unwrap();
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
