//! Montgomery multiplication on 64-bit limbs for an odd modulus: the hot loop of RSA's s^e mod n
//! and of ECDSA's field and scalar arithmetic. `num-bigint` sets it up (R² mod m) and reads
//! the results back; it would do the loop itself on 32-bit digits, four times the work.

use num_bigint::BigUint;

/// `a + b·c + carry` as (low, high) limbs; it cannot overflow 128 bits.
fn mac(a: u64, b: u64, c: u64, carry: u64) -> (u64, u64) {
    let wide = u128::from(a) + u128::from(b) * u128::from(c) + u128::from(carry);
    (wide as u64, (wide >> 64) as u64)
}

/// The limbs of `value`, little-endian, `len` of them (`value` must fit).
pub fn to_limbs(value: &BigUint, len: usize) -> Vec<u64> {
    let mut limbs: Vec<u64> = value.iter_u64_digits().collect();
    limbs.resize(len, 0);
    limbs
}

pub fn from_limbs(limbs: &[u64]) -> BigUint {
    let bytes: Vec<u8> = limbs.iter().flat_map(|l| l.to_le_bytes()).collect();
    BigUint::from_bytes_le(&bytes)
}

/// An odd modulus m of `len` limbs, R = 2^(64·len).
pub struct Montgomery {
    m: Vec<u64>,
    /// -m⁻¹ mod 2^64.
    m_inv: u64,
    /// R² mod m, to enter Montgomery form.
    r2: Vec<u64>,
    /// R mod m: 1 in Montgomery form.
    one: Vec<u64>,
}

impl Montgomery {
    /// `None` unless m is odd (and so not zero).
    pub fn new(m: &BigUint) -> Option<Self> {
        if !m.bit(0) {
            return None;
        }
        let len = m.bits().div_ceil(64) as usize;
        let r = BigUint::from(1u8) << (64 * len);
        let m0 = m.iter_u64_digits().next()?;
        // Newton's iteration doubles the correct low bits of m⁻¹ mod 2^64 at each step.
        let mut inverse: u64 = 1;
        for _ in 0..6 {
            inverse = inverse.wrapping_mul(2u64.wrapping_sub(m0.wrapping_mul(inverse)));
        }
        Some(Self {
            m: to_limbs(m, len),
            m_inv: inverse.wrapping_neg(),
            r2: to_limbs(&(&r * &r % m), len),
            one: to_limbs(&(r % m), len),
        })
    }

    /// Limbs of the modulus (and of every residue).
    pub fn len(&self) -> usize {
        self.m.len()
    }

    pub fn modulus(&self) -> &[u64] {
        &self.m
    }

    pub fn one(&self) -> &[u64] {
        &self.one
    }

    /// `out` = a·b·R⁻¹ mod m, for a, b < m: CIOS (Koç et al., 1996), accumulating in the
    /// first `len` limbs of `out` plus two.
    pub fn mul(&self, out: &mut [u64], a: &[u64], b: &[u64]) {
        let n = self.m.len();
        let Some(t) = out.get_mut(..n) else {
            return;
        };
        t.fill(0);
        let mut t_n = 0u64;
        for &bi in b.iter().take(n) {
            let mut carry = 0;
            for (tj, &aj) in t.iter_mut().zip(a) {
                (*tj, carry) = mac(*tj, aj, bi, carry);
            }
            let (sum, overflow) = t_n.overflowing_add(carry);
            t_n = sum;
            let t_n1 = u64::from(overflow);
            // Add the multiple of m that clears the low limb, and drop that limb.
            let q = t.first().copied().unwrap_or(0).wrapping_mul(self.m_inv);
            let mut limbs = t.iter_mut().zip(&self.m);
            let Some((t0, &m0)) = limbs.next() else {
                return;
            };
            let (_, mut carry) = mac(*t0, q, m0, 0);
            let mut previous = t0;
            for (tj, &mj) in limbs {
                let (low, high) = mac(*tj, q, mj, carry);
                *previous = low;
                carry = high;
                previous = tj;
            }
            let (sum, overflow) = t_n.overflowing_add(carry);
            *previous = sum;
            t_n = t_n1 + u64::from(overflow);
        }
        // t + t_n·R is below 2m: subtract m, and add it back if that went below zero.
        let mut borrow = false;
        for (tj, &mj) in t.iter_mut().zip(&self.m) {
            let (d1, b1) = tj.overflowing_sub(mj);
            let (d2, b2) = d1.overflowing_sub(u64::from(borrow));
            *tj = d2;
            borrow = b1 || b2;
        }
        if borrow && t_n == 0 {
            let mut carry = false;
            for (tj, &mj) in t.iter_mut().zip(&self.m) {
                let (s1, c1) = tj.overflowing_add(mj);
                let (s2, c2) = s1.overflowing_add(u64::from(carry));
                *tj = s2;
                carry = c1 || c2;
            }
        }
    }

    /// `value` (below m) in Montgomery form.
    pub fn encode(&self, value: &BigUint) -> Vec<u64> {
        let mut out = vec![0; self.len()];
        self.mul(&mut out, &to_limbs(value, self.len()), &self.r2);
        out
    }

    pub fn decode(&self, value: &[u64]) -> BigUint {
        let mut one = vec![0; self.len()];
        if let Some(first) = one.first_mut() {
            *first = 1;
        }
        let mut out = vec![0; self.len()];
        self.mul(&mut out, value, &one);
        from_limbs(&out)
    }

    /// base^exponent, in and out in Montgomery form (left to right, square and multiply).
    pub fn pow(&self, base: &[u64], exponent: &BigUint) -> Vec<u64> {
        let mut acc = self.one.clone();
        let mut product = vec![0; self.len()];
        for i in (0..exponent.bits()).rev() {
            self.mul(&mut product, &acc, &acc);
            std::mem::swap(&mut acc, &mut product);
            if exponent.bit(i) {
                self.mul(&mut product, &acc, base);
                std::mem::swap(&mut acc, &mut product);
            }
        }
        acc
    }

    /// base^exponent mod m, for base < m.
    pub fn modpow(&self, base: &BigUint, exponent: &BigUint) -> BigUint {
        self.decode(&self.pow(&self.encode(base), exponent))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn products_and_powers_match_big_integers() {
        let moduli = [
            BigUint::from(0xffff_ffff_ffff_ffc5u64),
            (BigUint::from(1u8) << 521) - 1u8,
            (BigUint::from(1u8) << 2048) - 159u8,
            (BigUint::from(3u8) << 1000) + 1u8,
        ];
        for m in moduli {
            let mont = Montgomery::new(&m).unwrap();
            let a = &m - 12345u32;
            let b = (&m >> 3) + 7u8;
            let (am, bm) = (mont.encode(&a), mont.encode(&b));
            let mut out = vec![0; mont.len()];
            mont.mul(&mut out, &am, &bm);
            assert_eq!(mont.decode(&out), &a * &b % &m);
            let e = BigUint::from(65537u32);
            assert_eq!(mont.modpow(&a, &e), a.modpow(&e, &m));
            assert_eq!(mont.modpow(&b, &(&m - 2u8)), b.modpow(&(&m - 2u8), &m));
        }
        assert!(Montgomery::new(&BigUint::from(10u8)).is_none());
        assert!(Montgomery::new(&BigUint::default()).is_none());
    }
}
