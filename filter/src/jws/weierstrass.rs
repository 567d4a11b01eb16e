//! ECDSA verification on P-384 and P-521 with plain big-integer arithmetic (Jacobian
//! coordinates, a = -3). The RustCrypto curve crates cost the filter ~170 KB for these two
//! rarely used curves; this costs a few KB on top of the big integers RSA already needs, at
//! the price of speed (milliseconds per verification), which only policies that trust a
//! P-384 or P-521 key pay. Public data only, so nothing here needs to be constant-time.

use rsa::BigUint;

/// A NIST prime curve y² = x³ - 3x + b over GF(p), with a base point of prime order n.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Curve {
    P384,
    P521,
}

struct Params {
    p: BigUint,
    n: BigUint,
    b: BigUint,
    g: (BigUint, BigUint),
}

fn hex(text: &str) -> BigUint {
    BigUint::parse_bytes(text.as_bytes(), 16).unwrap_or_default()
}

impl Curve {
    /// Bytes of a field element (and of each half of a JWS signature).
    pub fn size(self) -> usize {
        match self {
            Curve::P384 => 48,
            Curve::P521 => 66,
        }
    }

    fn params(self) -> Params {
        match self {
            Curve::P384 => Params {
                p: hex("fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffeffffffff0000000000000000ffffffff"),
                n: hex("ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973"),
                b: hex("b3312fa7e23ee7e4988e056be3f82d19181d9c6efe8141120314088f5013875ac656398d8a2ed19d2a85c8edd3ec2aef"),
                g: (
                    hex("aa87ca22be8b05378eb1c71ef320ad746e1d3b628ba79b9859f741e082542a385502f25dbf55296c3a545e3872760ab7"),
                    hex("3617de4a96262c6f5d9e98bf9292dc29f8f41dbd289a147ce9da3113b5f0b8c00a60b1ce1d7e819d7a431d7c90ea0e5f"),
                ),
            },
            Curve::P521 => Params {
                p: hex("01ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"),
                n: hex("01fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffa51868783bf2f966b7fcc0148f709a5d03bb5c9b8899c47aebb6fb71e91386409"),
                b: hex("0051953eb9618e1c9a1f929a21a0b68540eea2da725b99b315f3b8b489918ef109e156193951ec7e937b1652c0bd3bb1bf073573df883d2c34f1ef451fd46b503f00"),
                g: (
                    hex("00c6858e06b70404e9cd9e3ecb662395b4429c648139053fb521f828af606b4d3dbaa14b5e77efe75928fe1dc127a2ffa8de3348b3c1856a429bf97e7e31c2e5bd66"),
                    hex("011839296a789a3bc0045c8a5fb42c7d1bd998f54449579b446817afbd17273e662c97ee72995ef42640c550b9013fad0761353c7086a272c24088be94769fd16650"),
                ),
            },
        }
    }
}

/// A public key: a point of the curve (checked when made).
#[derive(Clone)]
pub struct EcKey {
    pub curve: Curve,
    x: BigUint,
    y: BigUint,
}

impl EcKey {
    /// The key from affine coordinates (big-endian bytes), if the point is on the curve.
    pub fn new(curve: Curve, x: &[u8], y: &[u8]) -> Option<Self> {
        let params = curve.params();
        let (x, y) = (BigUint::from_bytes_be(x), BigUint::from_bytes_be(y));
        if x >= params.p || y >= params.p {
            return None;
        }
        let p = &params.p;
        let three = BigUint::from(3u8);
        let rhs = (&x * &x % p * &x + (p - &three) * &x + &params.b) % p;
        (&y * &y % p == rhs).then_some(Self { curve, x, y })
    }

    /// The key from a SEC1 uncompressed point (`04 || x || y`).
    pub fn from_sec1(curve: Curve, point: &[u8]) -> Option<Self> {
        let size = curve.size();
        match point.split_first() {
            Some((0x04, xy)) if xy.len() == 2 * size => {
                let (x, y) = xy.split_at(size);
                Self::new(curve, x, y)
            }
            _ => None,
        }
    }

    /// Verifies the signature `(r, s)` of `digest` (FIPS 186-4 §6.4.2; the digest is cut to
    /// the bit length of n, as Go does).
    pub fn verify(&self, digest: &[u8], r: &[u8], s: &[u8]) -> bool {
        let params = self.curve.params();
        let n = &params.n;
        let (r, s) = (BigUint::from_bytes_be(r), BigUint::from_bytes_be(s));
        let zero = BigUint::default();
        if r == zero || s == zero || &r >= n || &s >= n {
            return false;
        }
        let mut e = BigUint::from_bytes_be(digest);
        let digest_bits = digest.len() * 8;
        if digest_bits > n.bits() {
            e >>= digest_bits - n.bits();
        }
        let two = BigUint::from(2u8);
        let w = s.modpow(&(n - &two), n);
        let u1 = e * &w % n;
        let u2 = &r * &w % n;
        let field = Field { p: &params.p };
        let g = Point::affine(&params.g.0, &params.g.1);
        let q = Point::affine(&self.x, &self.y);
        let gq = field.add(&g, &q);
        let mut acc: Option<Point> = None;
        let bits = u1.bits().max(u2.bits());
        let (u1_bytes, u2_bytes) = (u1.to_bytes_le(), u2.to_bytes_le());
        for i in (0..bits).rev() {
            acc = acc.and_then(|a| field.double(&a));
            let addend = match (bit(&u1_bytes, i), bit(&u2_bytes, i)) {
                (true, true) => gq.as_ref(),
                (true, false) => Some(&g),
                (false, true) => Some(&q),
                (false, false) => None,
            };
            if let Some(addend) = addend {
                acc = match &acc {
                    Some(a) => field.add(a, addend),
                    None => Some(addend.clone()),
                };
            }
        }
        match acc.and_then(|point| field.affine_x(&point)) {
            Some(x) => x % n == r,
            None => false,
        }
    }
}

/// Bit `index` (0 = least significant) of a little-endian number.
fn bit(le_bytes: &[u8], index: usize) -> bool {
    le_bytes
        .get(index / 8)
        .is_some_and(|byte| byte >> (index % 8) & 1 == 1)
}

/// A point in Jacobian coordinates; the point at infinity is `None` where one is expected.
#[derive(Clone)]
struct Point {
    x: BigUint,
    y: BigUint,
    z: BigUint,
}

impl Point {
    fn affine(x: &BigUint, y: &BigUint) -> Self {
        Self {
            x: x.clone(),
            y: y.clone(),
            z: BigUint::from(1u8),
        }
    }
}

struct Field<'a> {
    p: &'a BigUint,
}

impl Field<'_> {
    fn mul(&self, a: &BigUint, b: &BigUint) -> BigUint {
        a * b % self.p
    }

    fn sub(&self, a: &BigUint, b: &BigUint) -> BigUint {
        (a + self.p - b) % self.p
    }

    fn add_mod(&self, a: &BigUint, b: &BigUint) -> BigUint {
        (a + b) % self.p
    }

    fn small(&self, k: u8, a: &BigUint) -> BigUint {
        a * BigUint::from(k) % self.p
    }

    /// 2P ("dbl-2001-b", a = -3).
    fn double(&self, pt: &Point) -> Option<Point> {
        if pt.y == BigUint::default() {
            return None;
        }
        let delta = self.mul(&pt.z, &pt.z);
        let gamma = self.mul(&pt.y, &pt.y);
        let beta = self.mul(&pt.x, &gamma);
        let alpha = self.small(
            3,
            &self.mul(&self.sub(&pt.x, &delta), &self.add_mod(&pt.x, &delta)),
        );
        let x3 = self.sub(&self.mul(&alpha, &alpha), &self.small(8, &beta));
        let y_plus_z = self.add_mod(&pt.y, &pt.z);
        let z3 = self.sub(&self.sub(&self.mul(&y_plus_z, &y_plus_z), &gamma), &delta);
        let y3 = self.sub(
            &self.mul(&alpha, &self.sub(&self.small(4, &beta), &x3)),
            &self.small(8, &self.mul(&gamma, &gamma)),
        );
        Some(Point {
            x: x3,
            y: y3,
            z: z3,
        })
    }

    /// P1 + P2 ("add-2007-bl").
    fn add(&self, p1: &Point, p2: &Point) -> Option<Point> {
        let z1z1 = self.mul(&p1.z, &p1.z);
        let z2z2 = self.mul(&p2.z, &p2.z);
        let u1 = self.mul(&p1.x, &z2z2);
        let u2 = self.mul(&p2.x, &z1z1);
        let s1 = self.mul(&self.mul(&p1.y, &p2.z), &z2z2);
        let s2 = self.mul(&self.mul(&p2.y, &p1.z), &z1z1);
        if u1 == u2 {
            return if s1 == s2 { self.double(p1) } else { None };
        }
        let h = self.sub(&u2, &u1);
        let two_h = self.small(2, &h);
        let i = self.mul(&two_h, &two_h);
        let j = self.mul(&h, &i);
        let r = self.small(2, &self.sub(&s2, &s1));
        let v = self.mul(&u1, &i);
        let x3 = self.sub(&self.sub(&self.mul(&r, &r), &j), &self.small(2, &v));
        let y3 = self.sub(
            &self.mul(&r, &self.sub(&v, &x3)),
            &self.small(2, &self.mul(&s1, &j)),
        );
        let z_sum = self.add_mod(&p1.z, &p2.z);
        let z3 = self.mul(
            &self.sub(&self.sub(&self.mul(&z_sum, &z_sum), &z1z1), &z2z2),
            &h,
        );
        Some(Point {
            x: x3,
            y: y3,
            z: z3,
        })
    }

    /// The affine x of a point (none for the point at infinity).
    fn affine_x(&self, pt: &Point) -> Option<BigUint> {
        if pt.z == BigUint::default() {
            return None;
        }
        let two = BigUint::from(2u8);
        let z_inv = pt.z.modpow(&(self.p - &two), self.p);
        Some(self.mul(&pt.x, &self.mul(&z_inv, &z_inv)))
    }
}
