// Copyright (c) Microsoft Corporation.
// Licensed under the MIT License.

//! Numbers as OPA computes them outside integers.
//!
//! OPA keeps a number as its decimal text. Arithmetic that is not on integers reads each
//! operand into a binary float with a 64-bit mantissa (Go's `big.Float` at its default
//! precision, rounding half to even), computes the correctly rounded result at that
//! precision and writes it back as the shortest decimal that reads back to the same float.
//! [`WideFloat`] is that float and [`Decimal`] the text's value.
#![allow(
    clippy::arithmetic_side_effects,
    clippy::as_conversions,
    clippy::indexing_slicing
)]

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::cmp::Ordering;

use num_bigint::{BigInt, BigUint, Sign};
use num_traits::{One, ToPrimitive, Zero};

/// Decimal exponents (of the leading digit) and significant digits handled exactly. The
/// decimal expansion of a float costs time linear in its exponent and parsing digits is
/// quadratic, so values beyond ±10^1200 or with more digits are refused (an overflow) rather
/// than expanded.
pub const MAX_DECIMAL_EXPONENT: i64 = 1200;

/// A finite binary float: `(-1)^neg * mant * 2^exp` with `mant` normalized to 64 bits (its top
/// bit set), or zero (`mant == 0`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WideFloat {
    neg: bool,
    mant: u64,
    exp: i64,
}

/// A finite decimal `(-1)^neg * 0.DIGITS * 10^point`, `digits` ASCII without leading or
/// trailing zeros, empty for zero (never negative).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decimal {
    neg: bool,
    digits: Vec<u8>,
    point: i64,
}

const ZERO: WideFloat = WideFloat {
    neg: false,
    mant: 0,
    exp: 0,
};

fn to_signed(neg: bool, magnitude: BigUint) -> BigInt {
    BigInt::from_biguint(if neg { Sign::Minus } else { Sign::Plus }, magnitude)
}

/// The float nearest to `(-1)^neg * mag * 2^exp` with `prec` significant bits (at most 64),
/// ties to even; `sticky` says the exact value is a little above `mag` (bits were dropped
/// below it).
fn round_to(prec: u64, neg: bool, mag: BigUint, exp: i64, sticky: bool) -> WideFloat {
    let bits = mag.bits();
    if bits == 0 {
        return ZERO;
    }
    let (top, exp) = if bits <= prec && !sticky {
        (u128::from(mag.to_u64().unwrap_or(0)), exp)
    } else {
        // At least two bits below the mantissa, so that the comparison with one half sees
        // the dropped bits and the sticky bit.
        let (mag, exp) = if bits < prec + 2 {
            let lift = prec + 2 - bits;
            (mag << (lift as usize), exp - lift as i64)
        } else {
            (mag, exp)
        };
        let shift = mag.bits() - prec;
        let top = &mag >> (shift as usize);
        let rest = &mag - (&top << (shift as usize));
        let half = BigUint::one() << ((shift - 1) as usize);
        let top = u128::from(top.to_u64().unwrap_or(0));
        let up = match rest.cmp(&half) {
            Ordering::Greater => true,
            Ordering::Less => false,
            Ordering::Equal => sticky || top & 1 == 1,
        };
        (if up { top + 1 } else { top }, exp + shift as i64)
    };
    // Normalize to the top bit of a u64; a carry may have made `top` 2^prec, exact either way.
    let top_bits = 128 - i64::from(top.leading_zeros());
    let (mant, exp) = if top_bits > 64 {
        (top >> (top_bits - 64), exp + (top_bits - 64))
    } else {
        (top << (64 - top_bits), exp - (64 - top_bits))
    };
    WideFloat {
        neg,
        mant: u64::try_from(mant).unwrap_or(0),
        exp,
    }
}

/// [`round_to`] at 64 bits for a magnitude that fits 128 bits, without big integers (the
/// common case of a product or a quotient).
fn round_u128(neg: bool, mag: u128, exp: i64, sticky: bool) -> WideFloat {
    let bits = 128 - i64::from(mag.leading_zeros());
    if bits == 0 {
        return ZERO;
    }
    let (mag, exp, bits) = if bits < 66 {
        let lift = 66 - bits;
        (mag << lift, exp - lift, 66)
    } else {
        (mag, exp, bits)
    };
    let shift = bits - 64;
    let top = mag >> shift;
    let rest = mag & ((1u128 << shift) - 1);
    let half = 1u128 << (shift - 1);
    let up = match rest.cmp(&half) {
        Ordering::Greater => true,
        Ordering::Less => false,
        Ordering::Equal => sticky || top & 1 == 1,
    };
    let top = if up { top + 1 } else { top };
    let exp = exp + shift;
    // A carry may have made `top` 2^64, exact either way.
    let (mant, exp) = if top >> 64 == 0 {
        (top, exp)
    } else {
        (top >> 1, exp + 1)
    };
    WideFloat {
        neg,
        mant: u64::try_from(mant).unwrap_or(0),
        exp,
    }
}

fn round(neg: bool, mag: BigUint, exp: i64, sticky: bool) -> WideFloat {
    round_to(64, neg, mag, exp, sticky)
}

fn pow10(exp: u64) -> BigUint {
    num_traits::pow(BigUint::from(10u8), exp as usize)
}

fn pow5(exp: u64) -> BigUint {
    num_traits::pow(BigUint::from(5u8), exp as usize)
}

impl WideFloat {
    /// The integer, rounded to 64 significant bits.
    pub fn from_int(value: &BigInt) -> WideFloat {
        round(
            value.sign() == Sign::Minus,
            value.magnitude().clone(),
            0,
            false,
        )
    }

    /// The decimal, correctly rounded to 64 significant bits (Go's `big.Float.SetString`).
    /// `None` beyond [`MAX_DECIMAL_EXPONENT`].
    pub fn from_decimal(value: &Decimal) -> Option<WideFloat> {
        if value.digits.is_empty() {
            return Some(ZERO);
        }
        // Also bounds the digits: parsing them is quadratic.
        if value.point.abs() > MAX_DECIMAL_EXPONENT
            || value.digits.len() as i64 > MAX_DECIMAL_EXPONENT
        {
            return None;
        }
        let digits = BigUint::parse_bytes(&value.digits, 10)?;
        // value = digits * 10^scale
        let scale = value.point - value.digits.len() as i64;
        if scale >= 0 {
            return Some(round(value.neg, digits * pow10(scale as u64), 0, false));
        }
        let divisor = pow10(scale.unsigned_abs());
        let extra = (66 + divisor.bits() as i64 - digits.bits() as i64).max(0) + 2;
        let scaled = digits << (extra as usize);
        let (quotient, remainder) = (&scaled / &divisor, &scaled % &divisor);
        Some(round(value.neg, quotient, -extra, !remainder.is_zero()))
    }

    pub const fn is_zero(&self) -> bool {
        self.mant == 0
    }

    /// Whether the value fits the exponent range this module expands exactly.
    pub const fn in_range(&self) -> bool {
        // |value| < 2^3964 < 10^1194 and |value| >= 2^-3900 > 10^-1175.
        self.mant == 0 || (-3900 <= self.exp && self.exp <= 3900)
    }

    pub const fn neg(&self) -> WideFloat {
        WideFloat {
            neg: !self.neg && self.mant != 0,
            mant: self.mant,
            exp: self.exp,
        }
    }

    pub const fn abs(&self) -> WideFloat {
        WideFloat {
            neg: false,
            mant: self.mant,
            exp: self.exp,
        }
    }

    pub fn add(&self, rhs: &WideFloat) -> WideFloat {
        if self.is_zero() {
            return *rhs;
        }
        if rhs.is_zero() {
            return *self;
        }
        let (high, low) = if self.exp >= rhs.exp {
            (self, rhs)
        } else {
            (rhs, self)
        };
        // Far below the larger operand's last bit the smaller one only decides the rounding
        // as a sticky bit: any value that small rounds alike, so stand in 1 * 2^(high.exp - 200).
        let distance = high.exp.saturating_sub(low.exp);
        let (low_mag, shift) = if distance > 200 {
            (BigUint::one(), 200)
        } else {
            (BigUint::from(low.mant), distance)
        };
        let sum = to_signed(high.neg, BigUint::from(high.mant) << (shift as usize))
            + to_signed(low.neg, low_mag);
        let neg = sum.sign() == Sign::Minus;
        round(neg, sum.magnitude().clone(), high.exp - shift, false)
    }

    pub fn sub(&self, rhs: &WideFloat) -> WideFloat {
        self.add(&rhs.neg())
    }

    pub fn mul(&self, rhs: &WideFloat) -> WideFloat {
        round_u128(
            self.neg != rhs.neg,
            u128::from(self.mant) * u128::from(rhs.mant),
            self.exp.saturating_add(rhs.exp),
            false,
        )
    }

    /// The product rounded to `prec` significant bits (at most 64).
    pub fn mul_at(&self, prec: u64, rhs: &WideFloat) -> WideFloat {
        let product = u128::from(self.mant) * u128::from(rhs.mant);
        round_to(
            prec,
            self.neg != rhs.neg,
            BigUint::from(product),
            self.exp.saturating_add(rhs.exp),
            false,
        )
    }

    /// `None` for a zero divisor.
    pub fn quo(&self, rhs: &WideFloat) -> Option<WideFloat> {
        if rhs.is_zero() {
            return None;
        }
        if self.is_zero() {
            return Some(ZERO);
        }
        // Both mantissas have their top bit set: (a * 2^64) / b has 64 or 65 bits; two more
        // quotient bits and the remainder (the sticky bit) make the rounding exact.
        let divisor = u128::from(rhs.mant);
        let dividend = u128::from(self.mant) << 64;
        let (quotient, remainder) = (dividend / divisor, dividend % divisor);
        let (low, remainder) = ((remainder << 2) / divisor, (remainder << 2) % divisor);
        Some(round_u128(
            self.neg != rhs.neg,
            (quotient << 2) | low,
            self.exp.saturating_sub(rhs.exp).saturating_sub(66),
            remainder != 0,
        ))
    }

    /// The integer part (toward zero), exactly.
    pub fn trunc(&self) -> BigInt {
        let mag = if self.exp >= 0 {
            BigUint::from(self.mant) << (self.exp as usize)
        } else if self.exp <= -64 {
            BigUint::zero()
        } else {
            BigUint::from(self.mant >> self.exp.unsigned_abs())
        };
        to_signed(self.neg, mag)
    }

    pub const fn is_integer(&self) -> bool {
        self.exp >= 0
            || self.mant == 0
            || (self.exp > -64 && self.mant & ((1u64 << self.exp.unsigned_abs()) - 1) == 0)
    }

    pub const fn is_negative(&self) -> bool {
        self.neg
    }

    /// Whether the float is below 2^63 in magnitude, where a non-integer has a fraction.
    pub const fn in_fraction_range(&self) -> bool {
        self.exp < 0
    }

    /// The shortest decimal that reads back to this float at 64 bits: the digits Go's
    /// `big.Float.Text` writes for precision -1. The interval of decimals rounding back to
    /// the float is half an ulp each side, its ends included when the mantissa is even;
    /// digits are compared position by position with the ends' expansions.
    pub fn shortest(&self) -> Decimal {
        self.shortest_at(64)
    }

    /// [`WideFloat::shortest`] for a float of `prec` significant bits (at most 64).
    pub fn shortest_at(&self, prec: u64) -> Decimal {
        if self.is_zero() {
            return Decimal::zero();
        }
        let exact = Decimal::of_binary(self.neg, BigUint::from(self.mant), self.exp);
        let unused = 64 - prec.min(64);
        let mant = self.mant >> unused;
        let exp = self.exp + unused as i64;
        let doubled = BigUint::from(mant) << 1usize;
        let lower = Decimal::of_binary(false, &doubled - 1u8, exp - 1);
        let upper = Decimal::of_binary(false, &doubled + 1u8, exp - 1);
        let inclusive = mant & 1 == 0;
        let mut decimal = exact;
        for i in 0..decimal.digits.len() {
            let digit = decimal.digits[i];
            let low = lower.at(i);
            let high = upper.at(i);
            let can_round_down = low != digit || (inclusive && i + 1 == lower.digits.len());
            let can_round_up =
                digit != high && (inclusive || digit + 1 < high || i + 1 < upper.digits.len());
            match (can_round_down, can_round_up) {
                (true, true) => {
                    decimal.round_half_even(i + 1);
                    return decimal;
                }
                (true, false) => {
                    decimal.round_down(i + 1);
                    return decimal;
                }
                (false, true) => {
                    decimal.round_up(i + 1);
                    return decimal;
                }
                (false, false) => {}
            }
        }
        decimal
    }
}

impl Decimal {
    pub const fn zero() -> Decimal {
        Decimal {
            neg: false,
            digits: Vec::new(),
            point: 0,
        }
    }

    fn trim(mut self) -> Decimal {
        while self.digits.last() == Some(&b'0') {
            self.digits.pop();
        }
        if self.digits.is_empty() {
            return Decimal::zero();
        }
        self
    }

    /// `(-1)^neg * mant * 2^exp`, exactly.
    fn of_binary(neg: bool, mant: BigUint, exp: i64) -> Decimal {
        let (digits, fraction) = if exp >= 0 {
            ((mant << (exp as usize)).to_str_radix(10), 0)
        } else {
            // m / 2^k = m * 5^k / 10^k
            let k = exp.unsigned_abs();
            ((mant * pow5(k)).to_str_radix(10), k as i64)
        };
        let point = digits.len() as i64 - fraction;
        Decimal {
            neg,
            digits: digits.into_bytes(),
            point,
        }
        .trim()
    }

    pub fn from_int(value: &BigInt) -> Decimal {
        let digits = value.magnitude().to_str_radix(10);
        Decimal {
            neg: value.sign() == Sign::Minus,
            point: digits.len() as i64,
            digits: digits.into_bytes(),
        }
        .trim()
    }

    /// The shortest decimal that reads back to `value` as an f64 (what a JSON encoder writes).
    pub fn from_f64(value: f64) -> Option<Decimal> {
        if !value.is_finite() {
            return None;
        }
        Decimal::parse(&format!("{value:e}"))
    }

    /// A JSON or Rego number: `-?digits(.digits)?([eE][+-]?digits)?`, also with a leading
    /// `+` or `.`. `None` for anything else or an exponent out of i64 range.
    pub fn parse(text: &str) -> Option<Decimal> {
        let bytes = text.as_bytes();
        let (neg, rest) = match bytes.first() {
            Some(b'-') => (true, &bytes[1..]),
            Some(b'+') => (false, &bytes[1..]),
            _ => (false, bytes),
        };
        let mantissa_end = rest
            .iter()
            .position(|b| *b == b'e' || *b == b'E')
            .unwrap_or(rest.len());
        let (mantissa, exponent) = rest.split_at(mantissa_end);
        let exponent: i64 = if exponent.is_empty() {
            0
        } else {
            let text = core::str::from_utf8(&exponent[1..]).ok()?;
            let text = text.strip_prefix('+').unwrap_or(text);
            if text.is_empty() || text.starts_with('-') && text.len() == 1 {
                return None;
            }
            text.parse().ok()?
        };
        let (whole, fraction) = match mantissa.iter().position(|b| *b == b'.') {
            Some(dot) => (&mantissa[..dot], &mantissa[dot + 1..]),
            None => (mantissa, &mantissa[mantissa.len()..]),
        };
        if whole.is_empty() && fraction.is_empty()
            || !whole.iter().chain(fraction).all(u8::is_ascii_digit)
        {
            return None;
        }
        let mut digits: Vec<u8> = whole.iter().chain(fraction).copied().collect();
        let leading = digits.iter().take_while(|d| **d == b'0').count();
        digits.drain(..leading);
        let point = (whole.len() as i64 - leading as i64).checked_add(exponent)?;
        Some(Decimal { neg, digits, point }.trim())
    }

    fn at(&self, i: usize) -> u8 {
        self.digits.get(i).copied().unwrap_or(b'0')
    }

    fn round_half_even(&mut self, n: usize) {
        if n >= self.digits.len() {
            return;
        }
        let up = if self.digits[n] == b'5' && n + 1 == self.digits.len() {
            n > 0 && (self.digits[n - 1] - b'0') & 1 == 1
        } else {
            self.digits[n] >= b'5'
        };
        if up {
            self.round_up(n);
        } else {
            self.round_down(n);
        }
    }

    fn round_up(&mut self, n: usize) {
        if n >= self.digits.len() {
            return;
        }
        let mut n = n;
        while n > 0 && self.digits[n - 1] >= b'9' {
            n -= 1;
        }
        if n == 0 {
            self.digits.truncate(1);
            self.digits[0] = b'1';
            self.point += 1;
            return;
        }
        self.digits[n - 1] += 1;
        self.digits.truncate(n);
    }

    fn round_down(&mut self, n: usize) {
        if n >= self.digits.len() {
            return;
        }
        self.digits.truncate(n);
        *self = core::mem::replace(self, Decimal::zero()).trim();
    }

    pub fn is_integer(&self) -> bool {
        self.point >= self.digits.len() as i64
    }

    /// `(numerator, denominator)` of the value, exactly; `None` beyond
    /// [`MAX_DECIMAL_EXPONENT`].
    pub fn to_ratio(&self) -> Option<(BigInt, BigUint)> {
        if self.digits.is_empty() {
            return Some((BigInt::zero(), BigUint::one()));
        }
        if self.point.abs() > MAX_DECIMAL_EXPONENT
            || self.digits.len() as i64 > MAX_DECIMAL_EXPONENT
        {
            return None;
        }
        let digits = BigUint::parse_bytes(&self.digits, 10)?;
        let scale = self.point - self.digits.len() as i64;
        Some(if scale >= 0 {
            (
                to_signed(self.neg, digits * pow10(scale as u64)),
                BigUint::one(),
            )
        } else {
            (to_signed(self.neg, digits), pow10(scale.unsigned_abs()))
        })
    }

    /// The integer, when the decimal is one no longer than [`MAX_DECIMAL_EXPONENT`] digits.
    pub fn to_int(&self) -> Option<BigInt> {
        if !self.is_integer() || self.point > MAX_DECIMAL_EXPONENT {
            return None;
        }
        if self.digits.is_empty() {
            return Some(BigInt::zero());
        }
        let digits = BigUint::parse_bytes(&self.digits, 10)?;
        let zeros = self.point as u64 - self.digits.len() as u64;
        Some(to_signed(self.neg, digits * pow10(zeros)))
    }

    /// The nearest f64 (infinite beyond its range).
    pub fn to_f64(&self) -> f64 {
        if self.digits.is_empty() {
            return 0.0;
        }
        let text = format!(
            "{}0.{}e{}",
            if self.neg { "-" } else { "" },
            String::from_utf8_lossy(&self.digits),
            self.point
        );
        text.parse().unwrap_or(f64::NAN)
    }

    /// The f64 whose shortest decimal is this one, if there is one.
    pub fn exact_f64(&self) -> Option<f64> {
        let value = self.to_f64();
        (Decimal::from_f64(value).as_ref() == Some(self)).then_some(value)
    }

    pub fn cmp_value(&self, other: &Decimal) -> Ordering {
        let magnitude = || match (self.digits.is_empty(), other.digits.is_empty()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Less,
            (false, true) => Ordering::Greater,
            (false, false) => self
                .point
                .cmp(&other.point)
                .then_with(|| self.digits.cmp(&other.digits)),
        };
        match (self.neg, other.neg) {
            (false, false) => magnitude(),
            (true, true) => magnitude().reverse(),
            (false, true) => Ordering::Greater,
            (true, false) => Ordering::Less,
        }
    }

    /// Go's `%g` with the shortest precision (`big.Float.Text('g', -1)`): `%e` when the
    /// decimal exponent is below -4 or at least 6, else `%f`.
    pub fn format_g(&self) -> String {
        if self.digits.is_empty() {
            return String::from("0");
        }
        let mut out = String::new();
        if self.neg {
            out.push('-');
        }
        let digits = String::from_utf8_lossy(&self.digits);
        let exponent = self.point - 1;
        if !(-4..6).contains(&exponent) {
            out.push_str(&digits[..1]);
            if digits.len() > 1 {
                out.push('.');
                out.push_str(&digits[1..]);
            }
            let sign = if exponent < 0 { '-' } else { '+' };
            out.push_str(&format!("e{sign}{:02}", exponent.unsigned_abs()));
            return out;
        }
        if self.point > 0 {
            for i in 0..self.point as usize {
                out.push(self.at(i) as char);
            }
        } else {
            out.push('0');
        }
        let fraction = self.digits.len() as i64 - self.point;
        if fraction > 0 {
            out.push('.');
            for i in self.point..self.digits.len() as i64 {
                if i < 0 {
                    out.push('0');
                } else {
                    out.push(self.at(i as usize) as char);
                }
            }
        }
        out
    }

    /// A text `Decimal::parse` reads back to the same value.
    pub fn format_scientific(&self) -> String {
        if self.digits.is_empty() {
            return String::from("0");
        }
        format!(
            "{}0.{}e{}",
            if self.neg { "-" } else { "" },
            String::from_utf8_lossy(&self.digits),
            self.point
        )
    }
}

/// A number outside integers: a result of OPA's float arithmetic, or a literal no f64 holds.
/// A result's decimal (its shortest) is only worked out when it is needed: printing, or a
/// comparison with anything but an integer.
#[derive(Clone, Debug)]
pub struct WideNumber {
    float: WideFloat,
    /// The text of a literal; `None` for a result.
    written: Option<Decimal>,
}

impl WideNumber {
    /// A result of float arithmetic; not an integer.
    pub const fn computed(float: WideFloat) -> WideNumber {
        WideNumber {
            float,
            written: None,
        }
    }

    /// A decimal text and its value at 64 bits.
    pub fn written(float: WideFloat, decimal: Decimal) -> WideNumber {
        WideNumber {
            float,
            written: Some(decimal),
        }
    }

    pub const fn float(&self) -> &WideFloat {
        &self.float
    }

    pub fn decimal(&self) -> alloc::borrow::Cow<'_, Decimal> {
        match &self.written {
            Some(decimal) => alloc::borrow::Cow::Borrowed(decimal),
            None => alloc::borrow::Cow::Owned(self.float.shortest()),
        }
    }

    /// The order against an integer without working out the decimal: a computed number is
    /// not an integer and no integer lies between it and its shortest decimal (both are in
    /// its rounding interval, narrower than one), so its binary value orders alike.
    pub fn cmp_int(&self, int: &BigInt) -> Ordering {
        if self.written.is_some() || !self.float.in_fraction_range() {
            return self.decimal().cmp_value(&Decimal::from_int(int));
        }
        let whole = self.float.trunc();
        match (self.float.is_negative(), whole.cmp(int)) {
            // value = whole + a fraction in (0, 1)
            (false, Ordering::Less) => Ordering::Less,
            (false, _) => Ordering::Greater,
            // value = whole - a fraction in (0, 1)
            (true, Ordering::Greater) => Ordering::Greater,
            (true, _) => Ordering::Less,
        }
    }
}
