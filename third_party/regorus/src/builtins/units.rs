// Copyright (c) Microsoft Corporation.
// Licensed under the MIT License.
#![allow(clippy::unused_trait_names)]
use alloc::borrow::Cow;
use core::str::FromStr;

use crate::ast::{Expr, Ref};
use crate::builtins;
use crate::builtins::utils::{ensure_args_count, ensure_string};
use crate::lexer::Span;
use crate::number::Number;
use crate::value::Value;
use crate::*;

use anyhow::{bail, Result};

pub fn register(m: &mut builtins::BuiltinsMap<&'static str, builtins::BuiltinFcn>) {
    m.insert("units.parse", (parse, 1));
    m.insert("units.parse_bytes", (parse_bytes, 1));
}

/// OPA's `units.parse` units (`v1/topdown/parse_units.go`) as `(mantissa, shift)`, the unit
/// being `mantissa / 2^shift`; after the first letter case does not matter. Milli is the
/// float64 0.001, exactly, as OPA's `big.Rat.SetFloat64` takes it.
fn units_factor(suffix: &str) -> Option<(u64, u32)> {
    let mut chars = suffix.chars();
    let unit = match chars.next() {
        Some(first) => format!("{first}{}", chars.as_str().to_ascii_lowercase()),
        None => String::new(),
    };
    let milli = || {
        let bits = 0.001f64.to_bits();
        let mantissa = (bits & ((1 << 52) - 1)) | (1 << 52);
        let exponent = ((bits >> 52) & 0x7ff) as u32;
        (mantissa, 1075 - exponent)
    };
    Some(match unit.as_str() {
        "m" => milli(),
        "" => (1, 0),
        "k" | "K" => (1_000, 0),
        "ki" | "Ki" => (1 << 10, 0),
        "M" => (1_000_000, 0),
        "mi" | "Mi" => (1 << 20, 0),
        "g" | "G" => (1_000_000_000, 0),
        "gi" | "Gi" => (1 << 30, 0),
        "t" | "T" => (1_000_000_000_000, 0),
        "ti" | "Ti" => (1 << 40, 0),
        "p" | "P" => (1_000_000_000_000_000, 0),
        "pi" | "Pi" => (1 << 50, 0),
        "e" | "E" => (1_000_000_000_000_000_000, 0),
        "ei" | "Ei" => (1 << 60, 0),
        _ => return None,
    })
}

/// OPA's `units.parse_bytes` units (`v1/topdown/parse_bytes.go`), case-insensitive.
fn bytes_factor(suffix: &str) -> Option<u64> {
    Some(match suffix.to_ascii_lowercase().as_str() {
        "" => 1,
        "k" | "kb" => 1_000,
        "ki" | "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mi" | "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gi" | "gib" => 1 << 30,
        "t" | "tb" => 1_000_000_000_000,
        "ti" | "tib" => 1 << 40,
        "p" | "pb" => 1_000_000_000_000_000,
        "pi" | "pib" => 1 << 50,
        "e" | "eb" => 1_000_000_000_000_000_000,
        "ei" | "eib" => 1 << 60,
        _ => return None,
    })
}

fn parse(span: &Span, params: &[Ref<Expr>], args: &[Value], _strict: bool) -> Result<Value> {
    let name = "units.parse";
    ensure_args_count(span, name, params, args, 1)?;
    let string = ensure_string(name, &params[0], &args[0])?;
    let string = string.as_ref();

    // Remove quotes.
    let string = if string.starts_with('"') && string.ends_with('"') && string.len() >= 2 {
        &string[1..string.len() - 1]
    } else {
        string
    };

    // Disallow whitespace.
    if string.chars().any(char::is_whitespace) {
        bail!(span.error("spaces not allowed in resource strings"));
    }

    let (number_part, suffix) = split_amount(string);
    let Some(canonical_part) = canonicalize_number_part(number_part) else {
        return Ok(Value::Undefined);
    };

    let Some((mantissa, shift)) = units_factor(suffix) else {
        return Ok(Value::Undefined);
    };
    let number = Number::opa_units_product(canonical_part.as_ref(), mantissa, shift)
        .ok_or_else(|| params[0].span().error("could not parse number"))?;
    Ok(Value::from(number))
}

fn parse_bytes(span: &Span, params: &[Ref<Expr>], args: &[Value], strict: bool) -> Result<Value> {
    let name = "units.parse_bytes";
    ensure_args_count(span, name, params, args, 1)?;
    let string = ensure_string(name, &params[0], &args[0])?;
    let string = string.as_ref();

    // Remove quotes.
    let string = if string.starts_with('"') && string.ends_with('"') && string.len() >= 2 {
        &string[1..string.len() - 1]
    } else {
        string
    };

    // Disallow whitespace.
    if string.chars().any(char::is_whitespace) {
        bail!(span.error("spaces not allowed in resource strings"));
    }

    let (number_part, suffix) = split_amount(string);
    let Some(canonical_part) = canonicalize_number_part(number_part) else {
        return Ok(Value::Undefined);
    };

    let Some(factor) = bytes_factor(suffix) else {
        return Ok(Value::Undefined);
    };
    let number = match Number::from_str(canonical_part.as_ref()) {
        Ok(n) => n,
        Err(_) if strict => bail!(span.error("could not parse number")),
        Err(_) => return Ok(Value::Undefined),
    };
    Ok(Value::from(number.opa_bytes_product(factor)?))
}

/// The amount and the unit: the amount runs to the last digit, and a dot right after it
/// belongs to the amount (`1.k` is `1.` kilo, as OPA reads it).
fn split_amount(string: &str) -> (&str, &str) {
    let end = match string.rfind(|c: char| c.is_ascii_digit()) {
        Some(p) => p + 1,
        None => string.len(),
    };
    let (amount, unit) = string.split_at(end);
    match unit.strip_prefix('.') {
        Some(rest) if !amount.contains(['.', 'e', 'E']) => (&string[..end + 1], rest),
        _ => (amount, unit),
    }
}

// Normalizes numbers that start or end with a decimal point, as Go's parser reads them:
// ".5", "-.1" and "1." become "0.5", "-0.1" and "1.0", which Number::from_str accepts. An
// amount without a digit (".", "-.") is no number (`None`), as in OPA.
fn canonicalize_number_part(number_part: &str) -> Option<Cow<'_, str>> {
    if !number_part.contains(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let number_part: Cow<'_, str> = match number_part.strip_suffix('.') {
        Some(whole) => Cow::Owned(format!("{whole}.0")),
        None => Cow::Borrowed(number_part),
    };
    Some(if let Some(rest) = number_part.strip_prefix("-.") {
        Cow::Owned(format!("-0.{rest}"))
    } else if let Some(rest) = number_part.strip_prefix("+.") {
        Cow::Owned(format!("+0.{rest}"))
    } else if let Some(rest) = number_part.strip_prefix('.') {
        Cow::Owned(format!("0.{rest}"))
    } else {
        number_part
    })
}
