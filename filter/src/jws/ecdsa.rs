//! ECDSA verification (FIPS 186-5 §6.4.2) on the NIST curves P-256, P-384 and P-521, written
//! out so the filter needs no curve crates: Montgomery arithmetic on fixed 64-bit limbs (one
//! copy of the code for the three curves), Jacobian coordinates with a = -3, and Shamir's
//! trick for u1·G + u2·Q. Verification sees only public data (key, message, signature), so
//! nothing here needs to be constant-time.

use num_bigint::BigUint;

use super::montgomery::Montgomery;

/// A NIST prime curve y² = x³ - 3x + b over GF(p), with a base point G of prime order n.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Curve {
    P256,
    P384,
    P521,
}

/// Curve constants (NIST SP 800-186 §3.2.1), hexadecimal.
struct Constants {
    p: &'static str,
    n: &'static str,
    b: &'static str,
    gx: &'static str,
    gy: &'static str,
}

fn hex(text: &str) -> BigUint {
    BigUint::parse_bytes(text.as_bytes(), 16).unwrap_or_default()
}

impl Curve {
    /// Bytes of a field element and of each half (R, S) of a JWS signature.
    pub fn size(self) -> usize {
        match self {
            Curve::P256 => 32,
            Curve::P384 => 48,
            Curve::P521 => 66,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Curve::P256 => "P-256",
            Curve::P384 => "P-384",
            Curve::P521 => "P-521",
        }
    }

    fn constants(self) -> Constants {
        match self {
            Curve::P256 => Constants {
                p: "ffffffff00000001000000000000000000000000ffffffffffffffffffffffff",
                n: "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551",
                b: "5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604b",
                gx: "6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296",
                gy: "4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5",
            },
            Curve::P384 => Constants {
                p: "fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffeffffffff0000000000000000ffffffff",
                n: "ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973",
                b: "b3312fa7e23ee7e4988e056be3f82d19181d9c6efe8141120314088f5013875ac656398d8a2ed19d2a85c8edd3ec2aef",
                gx: "aa87ca22be8b05378eb1c71ef320ad746e1d3b628ba79b9859f741e082542a385502f25dbf55296c3a545e3872760ab7",
                gy: "3617de4a96262c6f5d9e98bf9292dc29f8f41dbd289a147ce9da3113b5f0b8c00a60b1ce1d7e819d7a431d7c90ea0e5f",
            },
            Curve::P521 => Constants {
                p: "01ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
                n: "01fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffa51868783bf2f966b7fcc0148f709a5d03bb5c9b8899c47aebb6fb71e91386409",
                b: "0051953eb9618e1c9a1f929a21a0b68540eea2da725b99b315f3b8b489918ef109e156193951ec7e937b1652c0bd3bb1bf073573df883d2c34f1ef451fd46b503f00",
                gx: "00c6858e06b70404e9cd9e3ecb662395b4429c648139053fb521f828af606b4d3dbaa14b5e77efe75928fe1dc127a2ffa8de3348b3c1856a429bf97e7e31c2e5bd66",
                gy: "011839296a789a3bc0045c8a5fb42c7d1bd998f54449579b446817afbd17273e662c97ee72995ef42640c550b9013fad0761353c7086a272c24088be94769fd16650",
            },
        }
    }
}

/// A public key: a point of the curve other than infinity (checked when made).
#[derive(Clone)]
pub struct EcKey {
    pub curve: Curve,
    x: BigUint,
    y: BigUint,
}

impl EcKey {
    /// The key from affine coordinates (big-endian bytes), if the point is on the curve.
    pub fn new(curve: Curve, x: &[u8], y: &[u8]) -> Option<Self> {
        let c = curve.constants();
        let (p, b) = (hex(c.p), hex(c.b));
        let (x, y) = (BigUint::from_bytes_be(x), BigUint::from_bytes_be(y));
        if x >= p || y >= p {
            return None;
        }
        // x³ - 3x + b, with -3x as (p - 3)·x.
        let rhs = (&x * &x % &p * &x + (&p - 3u8) * &x + b) % &p;
        (&y * &y % &p == rhs).then_some(Self { curve, x, y })
    }

    /// The key from a SEC1 uncompressed point (`04 || x || y`).
    pub fn from_sec1(curve: Curve, point: &[u8]) -> Option<Self> {
        match point.split_first() {
            Some((0x04, xy)) if xy.len() == 2 * curve.size() => {
                let (x, y) = xy.split_at(curve.size());
                Self::new(curve, x, y)
            }
            _ => None,
        }
    }

    /// Verifies the signature `(r, s)` (big-endian) of `digest`. The digest is cut to the bit
    /// length of n, as Go and RustCrypto do; a shorter one is used whole.
    pub fn verify(&self, digest: &[u8], r: &[u8], s: &[u8]) -> bool {
        let c = self.curve.constants();
        let n = hex(c.n);
        let (r, s) = (BigUint::from_bytes_be(r), BigUint::from_bytes_be(s));
        let zero = BigUint::default();
        if r == zero || s == zero || r >= n || s >= n {
            return false;
        }
        let mut e = BigUint::from_bytes_be(digest);
        let digest_bits = 8 * digest.len() as u64;
        if digest_bits > n.bits() {
            e >>= digest_bits - n.bits();
        }
        // w = s⁻¹ (n is prime: s^(n-2)), u1 = e·w, u2 = r·w, all mod n.
        let (Some(scalars), Some(field)) = (Field::new(&n), Field::new(&hex(c.p))) else {
            return false;
        };
        let w = scalars.pow(&scalars.encode(&s), &(&n - 2u8));
        let u1 = scalars.decode(&scalars.mul(&scalars.encode(&(e % &n)), &w));
        let u2 = scalars.decode(&scalars.mul(&scalars.encode(&r), &w));

        let g = Point::affine(&field, &hex(c.gx), &hex(c.gy));
        let q = Point::affine(&field, &self.x, &self.y);
        let sum = field.shamir(&u1, &g, &u2, &q);
        if sum.is_infinity() {
            return false;
        }
        // The affine x = X / Z², reduced mod n, must be r.
        let z_inverse = field.pow(&sum.z, &(hex(c.p) - 2u8));
        let x = field.decode(&field.mul(&sum.x, &field.mul(&z_inverse, &z_inverse)));
        x % &n == r
    }
}

/// 576 bits: room for P-521's 521.
const LIMBS: usize = 9;

/// A residue in Montgomery form, little-endian 64-bit limbs, always fully reduced; the limbs
/// past the modulus's are zero.
type Limbs = [u64; LIMBS];

fn array(limbs: &[u64]) -> Limbs {
    let mut out = [0u64; LIMBS];
    for (o, l) in out.iter_mut().zip(limbs) {
        *o = *l;
    }
    out
}

/// `a - b` over the first `n` limbs, and whether it borrowed (a < b).
fn sub_limbs(a: &Limbs, b: &Limbs, n: usize) -> (Limbs, bool) {
    let mut out = [0u64; LIMBS];
    let mut borrow = false;
    for ((o, x), y) in out.iter_mut().zip(a).zip(b).take(n) {
        let (d1, b1) = x.overflowing_sub(*y);
        let (d2, b2) = d1.overflowing_sub(u64::from(borrow));
        *o = d2;
        borrow = b1 || b2;
    }
    (out, borrow)
}

/// `a + b` over the first `n` limbs, and whether it carried out of them.
fn add_limbs(a: &Limbs, b: &Limbs, n: usize) -> (Limbs, bool) {
    let mut out = [0u64; LIMBS];
    let mut carry = false;
    for ((o, x), y) in out.iter_mut().zip(a).zip(b).take(n) {
        let (s1, c1) = x.overflowing_add(*y);
        let (s2, c2) = s1.overflowing_add(u64::from(carry));
        *o = s2;
        carry = c1 || c2;
    }
    (out, carry)
}

/// Arithmetic modulo p or n of a curve, on fixed-size limbs (no allocation per operation).
struct Field {
    mont: Montgomery,
    m: Limbs,
    one: Limbs,
}

impl Field {
    /// `None` for an even modulus (never one of the curves').
    fn new(m: &BigUint) -> Option<Self> {
        let mont = Montgomery::new(m)?;
        Some(Self {
            m: array(mont.modulus()),
            one: array(mont.one()),
            mont,
        })
    }

    fn mul(&self, a: &Limbs, b: &Limbs) -> Limbs {
        let mut out = [0u64; LIMBS];
        self.mont.mul(&mut out, a, b);
        out
    }

    fn encode(&self, value: &BigUint) -> Limbs {
        array(&self.mont.encode(value))
    }

    fn decode(&self, value: &Limbs) -> BigUint {
        self.mont
            .decode(value.get(..self.mont.len()).unwrap_or(value))
    }

    fn pow(&self, base: &Limbs, exponent: &BigUint) -> Limbs {
        let base = base.get(..self.mont.len()).unwrap_or(base);
        array(&self.mont.pow(base, exponent))
    }

    /// a + b mod m.
    fn add(&self, a: &Limbs, b: &Limbs) -> Limbs {
        let n = self.mont.len();
        let (sum, carry) = add_limbs(a, b, n);
        match sub_limbs(&sum, &self.m, n) {
            (reduced, borrow) if carry || !borrow => reduced,
            _ => sum,
        }
    }

    /// a - b mod m.
    fn sub(&self, a: &Limbs, b: &Limbs) -> Limbs {
        let n = self.mont.len();
        match sub_limbs(a, b, n) {
            (difference, true) => add_limbs(&difference, &self.m, n).0,
            (difference, false) => difference,
        }
    }

    /// u1·G + u2·Q, one doubling per bit (Shamir's trick).
    fn shamir(&self, u1: &BigUint, g: &Point, u2: &BigUint, q: &Point) -> Point {
        let both = self.add_points(g, q);
        let mut acc = Point::infinity();
        for i in (0..u1.bits().max(u2.bits())).rev() {
            acc = self.double(&acc);
            let addend = match (u1.bit(i), u2.bit(i)) {
                (true, true) => &both,
                (true, false) => g,
                (false, true) => q,
                (false, false) => continue,
            };
            acc = self.add_points(&acc, addend);
        }
        acc
    }

    /// 2P: "dbl-2001-b" for a = -3.
    fn double(&self, pt: &Point) -> Point {
        if pt.is_infinity() || pt.y == [0; LIMBS] {
            return Point::infinity();
        }
        let delta = self.mul(&pt.z, &pt.z);
        let gamma = self.mul(&pt.y, &pt.y);
        let beta = self.mul(&pt.x, &gamma);
        let t = self.mul(&self.sub(&pt.x, &delta), &self.add(&pt.x, &delta));
        let alpha = self.add(&self.add(&t, &t), &t);
        let beta2 = self.add(&beta, &beta);
        let beta4 = self.add(&beta2, &beta2);
        let beta8 = self.add(&beta4, &beta4);
        let x3 = self.sub(&self.mul(&alpha, &alpha), &beta8);
        let yz = self.add(&pt.y, &pt.z);
        let z3 = self.sub(&self.sub(&self.mul(&yz, &yz), &gamma), &delta);
        let gamma2 = self.mul(&gamma, &gamma);
        let gamma2_2 = self.add(&gamma2, &gamma2);
        let gamma2_4 = self.add(&gamma2_2, &gamma2_2);
        let gamma2_8 = self.add(&gamma2_4, &gamma2_4);
        let y3 = self.sub(&self.mul(&alpha, &self.sub(&beta4, &x3)), &gamma2_8);
        Point {
            x: x3,
            y: y3,
            z: z3,
        }
    }

    /// P1 + P2: "add-2007-bl", falling back to doubling for equal points.
    fn add_points(&self, p1: &Point, p2: &Point) -> Point {
        if p1.is_infinity() {
            return p2.clone();
        }
        if p2.is_infinity() {
            return p1.clone();
        }
        let z1z1 = self.mul(&p1.z, &p1.z);
        let z2z2 = self.mul(&p2.z, &p2.z);
        let u1 = self.mul(&p1.x, &z2z2);
        let u2 = self.mul(&p2.x, &z1z1);
        let s1 = self.mul(&self.mul(&p1.y, &p2.z), &z2z2);
        let s2 = self.mul(&self.mul(&p2.y, &p1.z), &z1z1);
        let h = self.sub(&u2, &u1);
        let s_diff = self.sub(&s2, &s1);
        if h == [0; LIMBS] {
            return if s_diff == [0; LIMBS] {
                self.double(p1)
            } else {
                Point::infinity()
            };
        }
        let h2 = self.add(&h, &h);
        let i = self.mul(&h2, &h2);
        let j = self.mul(&h, &i);
        let r = self.add(&s_diff, &s_diff);
        let v = self.mul(&u1, &i);
        let x3 = self.sub(&self.sub(&self.mul(&r, &r), &j), &self.add(&v, &v));
        let s1j = self.mul(&s1, &j);
        let y3 = self.sub(&self.mul(&r, &self.sub(&v, &x3)), &self.add(&s1j, &s1j));
        let zz = self.add(&p1.z, &p2.z);
        let z3 = self.mul(&self.sub(&self.sub(&self.mul(&zz, &zz), &z1z1), &z2z2), &h);
        Point {
            x: x3,
            y: y3,
            z: z3,
        }
    }
}

/// A point in Jacobian coordinates (Montgomery form); Z = 0 is the point at infinity.
#[derive(Clone)]
struct Point {
    x: Limbs,
    y: Limbs,
    z: Limbs,
}

impl Point {
    fn affine(field: &Field, x: &BigUint, y: &BigUint) -> Self {
        Self {
            x: field.encode(x),
            y: field.encode(y),
            z: field.one,
        }
    }

    fn infinity() -> Self {
        Self {
            x: [0; LIMBS],
            y: [0; LIMBS],
            z: [0; LIMBS],
        }
    }

    fn is_infinity(&self) -> bool {
        self.z == [0; LIMBS]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn montgomery_products_match_big_integers() {
        for curve in [Curve::P256, Curve::P384, Curve::P521] {
            let c = curve.constants();
            for modulus in [hex(c.p), hex(c.n)] {
                let field = Field::new(&modulus).unwrap();
                let a = &modulus - 12345u32;
                let b = hex(c.gx) % &modulus;
                let product = field.decode(&field.mul(&field.encode(&a), &field.encode(&b)));
                assert_eq!(product, &a * &b % &modulus, "{curve:?}");
                let sum = field.decode(&field.add(&field.encode(&a), &field.encode(&b)));
                assert_eq!(sum, (&a + &b) % &modulus);
                let difference = field.decode(&field.sub(&field.encode(&b), &field.encode(&a)));
                assert_eq!(difference, (&b + &modulus - &a) % &modulus);
                let inverse = field.pow(&field.encode(&a), &(&modulus - 2u8));
                assert_eq!(
                    field.decode(&field.mul(&inverse, &field.encode(&a))),
                    BigUint::from(1u8)
                );
            }
        }
    }

    #[test]
    fn base_points_are_on_their_curves_and_others_are_not() {
        for curve in [Curve::P256, Curve::P384, Curve::P521] {
            let c = curve.constants();
            let (gx, gy) = (hex(c.gx).to_bytes_be(), hex(c.gy).to_bytes_be());
            assert!(EcKey::new(curve, &gx, &gy).is_some(), "{curve:?}");
            let mut off = gy.clone();
            if let Some(last) = off.last_mut() {
                *last ^= 1;
            }
            assert!(EcKey::new(curve, &gx, &off).is_none(), "{curve:?}");
            // Coordinates must be below p.
            let p = hex(c.p).to_bytes_be();
            assert!(EcKey::new(curve, &p, &gy).is_none(), "{curve:?}");
        }
    }
}
