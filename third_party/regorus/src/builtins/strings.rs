// Copyright (c) Microsoft Corporation.
// Licensed under the MIT License.

#![allow(
    clippy::unseparated_literal_suffix,
    clippy::as_conversions,
    clippy::pattern_type_mismatch
)]

use crate::ast::{Expr, Ref};
use crate::builtins;
use crate::builtins::utils::{
    enforce_limit, ensure_args_count, ensure_array, ensure_int_operand, ensure_numeric,
    ensure_object, ensure_string, ensure_string_collection, reserve_output,
};
use crate::lexer::Span;
use crate::number::Number;
use crate::value::Value;
use crate::*;

use alloc::borrow::Cow;
use anyhow::{bail, Result};

mod go_is_print;

pub fn register(m: &mut builtins::BuiltinsMap<&'static str, builtins::BuiltinFcn>) {
    m.insert("concat", (concat, 2));
    m.insert("contains", (contains, 2));
    m.insert("endswith", (endswith, 2));
    m.insert("format_int", (format_int, 2));
    m.insert("indexof", (indexof, 2));
    m.insert("indexof_n", (indexof_n, 2));
    m.insert("lower", (lower, 1));
    m.insert("replace", (replace, 3));
    m.insert("split", (split, 2));
    m.insert("strings.split_n", (split_n, 3));
    m.insert("sprintf", (sprintf, 2));
    m.insert("startswith", (startswith, 2));
    m.insert("strings.any_prefix_match", (any_prefix_match, 2));
    m.insert("strings.any_suffix_match", (any_suffix_match, 2));
    m.insert("strings.count", (strings_count, 2));
    m.insert("strings.replace_n", (replace_n, 2));
    m.insert("strings.reverse", (reverse, 1));
    m.insert("substring", (substring, 3));
    m.insert("trim", (trim, 2));
    m.insert("trim_left", (trim_left, 2));
    m.insert("trim_prefix", (trim_prefix, 2));
    m.insert("trim_right", (trim_right, 2));
    m.insert("trim_space", (trim_space, 1));
    m.insert("trim_suffix", (trim_suffix, 2));
    m.insert("upper", (upper, 1));
}

fn concat(span: &Span, params: &[Ref<Expr>], args: &[Value], _strict: bool) -> Result<Value> {
    let name = "concat";
    ensure_args_count(span, name, params, args, 2)?;
    let delimiter = ensure_string(name, &params[0], &args[0])?;
    let collection = ensure_string_collection(name, &params[1], &args[1])?;
    let joined_len = collection
        .iter()
        .fold(0usize, |total, s| total.saturating_add(s.len()))
        .saturating_add(
            collection
                .len()
                .saturating_sub(1)
                .saturating_mul(delimiter.len()),
        );
    reserve_output(joined_len)?;
    Ok(Value::String(collection.join(&delimiter).into()))
}

fn contains(span: &Span, params: &[Ref<Expr>], args: &[Value], _strict: bool) -> Result<Value> {
    let name = "contains";
    ensure_args_count(span, name, params, args, 2)?;
    let s1 = ensure_string(name, &params[0], &args[0])?;
    let s2 = ensure_string(name, &params[1], &args[1])?;
    Ok(Value::Bool(s1.contains(s2.as_ref())))
}

fn endswith(span: &Span, params: &[Ref<Expr>], args: &[Value], _strict: bool) -> Result<Value> {
    let name = "endswith";
    ensure_args_count(span, name, params, args, 2)?;
    let s1 = ensure_string(name, &params[0], &args[0])?;
    let s2 = ensure_string(name, &params[1], &args[1])?;
    Ok(Value::Bool(s1.ends_with(s2.as_ref())))
}

fn format_int(span: &Span, params: &[Ref<Expr>], args: &[Value], strict: bool) -> Result<Value> {
    let name = "format_int";
    ensure_args_count(span, name, params, args, 2)?;
    let mut n = ensure_numeric(name, &params[0], &args[0])?;
    let mut sign = "";
    if n < Number::from(0u64) {
        n = n.abs();
        sign = "-";
    }
    let n = n.floor();

    let base = ensure_numeric(name, &params[1], &args[1])?;

    let num = match base.as_u64() {
        Some(2) => n.format_bin(),
        Some(8) => n.format_octal(),
        Some(10) => n.format_decimal(),
        Some(16) => n.format_hex(),
        _ => {
            if strict {
                let span = params[1].span();
                bail!(span.error(&format!("`{name}` expects base to be one of 2, 8, 10, 16")));
            }

            return Ok(Value::Undefined);
        }
    };

    Ok(Value::String((sign.to_owned() + &num).into()))
}

fn indexof(span: &Span, params: &[Ref<Expr>], args: &[Value], _strict: bool) -> Result<Value> {
    let name = "indexof";
    ensure_args_count(span, name, params, args, 2)?;
    let s1 = ensure_string(name, &params[0], &args[0])?;
    let s2 = ensure_string(name, &params[1], &args[1])?;
    // A builtin error in OPA, not a match at every position.
    if s2.is_empty() {
        bail!(params[1].span().error("empty search character"));
    }
    for (pos, (idx, _)) in s1.char_indices().enumerate() {
        if s1[idx..].starts_with(s2.as_ref()) {
            return Ok(Value::from(Number::from(pos)));
        }
    }
    Ok(Value::from(Number::from(-1i64)))
}

fn indexof_n(span: &Span, params: &[Ref<Expr>], args: &[Value], _strict: bool) -> Result<Value> {
    let name = "indexof_n";
    ensure_args_count(span, name, params, args, 2)?;
    let s1 = ensure_string(name, &params[0], &args[0])?;
    let s2 = ensure_string(name, &params[1], &args[1])?;
    // A builtin error in OPA, not a match at every position.
    if s2.is_empty() {
        bail!(params[1].span().error("empty search character"));
    }

    let mut positions = vec![];
    for (pos, (idx, _)) in s1.char_indices().enumerate() {
        if s1[idx..].starts_with(s2.as_ref()) {
            positions.push(Value::from(Number::from(pos)));
            // Guard position vector growth while tracking matches.
            enforce_limit()?;
        }
    }
    Ok(Value::from_array(positions))
}

fn lower(span: &Span, params: &[Ref<Expr>], args: &[Value], _strict: bool) -> Result<Value> {
    let name = "lower";
    ensure_args_count(span, name, params, args, 1)?;
    let s = ensure_string(name, &params[0], &args[0])?;
    Ok(Value::String(
        s.chars().map(go_lower).collect::<String>().into(),
    ))
}

fn replace(span: &Span, params: &[Ref<Expr>], args: &[Value], _strict: bool) -> Result<Value> {
    let name = "replace";
    ensure_args_count(span, name, params, args, 3)?;
    let s = ensure_string(name, &params[0], &args[0])?;
    let old = ensure_string(name, &params[1], &args[1])?;
    let new = ensure_string(name, &params[2], &args[2])?;
    ensure_whole_characters(name, &s, &old)?;
    reserve_output(replaced_len(&s, &old, &new))?;
    Ok(Value::String(s.replace(old.as_ref(), new.as_ref()).into()))
}

/// OPA's `replace` inserts at every byte when `old` is empty: in a string with a character of
/// more than one byte that splits the character, and the answer is not UTF-8, which this
/// engine cannot hold in a string (an engine gap; in ASCII, bytes are characters).
fn ensure_whole_characters(name: &str, s: &str, old: &str) -> Result<()> {
    if old.is_empty() && !s.is_ascii() {
        return Err(anyhow::Error::new(builtins::EngineGapError::splits_characters(name)));
    }
    Ok(())
}

/// At most the length of `s` with `old` replaced by `new`: an empty `old` matches around
/// every character.
fn replaced_len(s: &str, old: &str, new: &str) -> usize {
    let matches = if old.is_empty() {
        s.chars().count().saturating_add(1)
    } else {
        s.matches(old).count()
    };
    s.len().saturating_add(matches.saturating_mul(new.len()))
}

/// Go's `strings.SplitN(s, sep, limit)`, all parts without a limit: at most `limit` parts,
/// the last holding the rest; an empty `sep` splits after each character.
fn go_split_n<'a>(s: &'a str, sep: &str, limit: Option<usize>) -> Vec<&'a str> {
    if !sep.is_empty() {
        return match limit {
            Some(limit) => s.splitn(limit, sep).collect(),
            None => s.split(sep).collect(),
        };
    }
    let mut parts = Vec::new();
    for (i, c) in s.char_indices() {
        if limit == Some(parts.len() + 1) {
            parts.push(&s[i..]);
            break;
        }
        parts.push(&s[i..i + c.len_utf8()]);
    }
    parts
}

/// `strings.split_n(s, delimiter, n)` as OPA: the first `n` parts of Go's
/// `strings.SplitN(s, delimiter, n + 1)`, or for a negative `n` the last `-n` parts of
/// `strings.Split(s, delimiter)`.
fn split_n(span: &Span, params: &[Ref<Expr>], args: &[Value], _strict: bool) -> Result<Value> {
    let name = "strings.split_n";
    ensure_args_count(span, name, params, args, 3)?;
    let s = ensure_string(name, &params[0], &args[0])?;
    let delimiter = ensure_string(name, &params[1], &args[1])?;
    let n = ensure_int_operand(name, &params[2], &args[2])?;
    let kept: Vec<&str> = match usize::try_from(n) {
        Ok(n) => {
            let parts = go_split_n(&s, &delimiter, n.checked_add(1));
            parts.into_iter().take(n).collect()
        }
        Err(_) => {
            let parts = go_split_n(&s, &delimiter, None);
            let from_end = usize::try_from(n.unsigned_abs()).unwrap_or(usize::MAX);
            let start = parts.len().saturating_sub(from_end);
            parts.into_iter().skip(start).collect()
        }
    };
    let mut out = Vec::with_capacity(kept.len());
    for part in kept {
        out.push(Value::String(part.into()));
        // Guard part accumulation as in `split`.
        enforce_limit()?;
    }
    Ok(Value::from(out))
}

fn split(span: &Span, params: &[Ref<Expr>], args: &[Value], _strict: bool) -> Result<Value> {
    let name = "replace";
    ensure_args_count(span, name, params, args, 2)?;
    let s = ensure_string(name, &params[0], &args[0])?;
    let delimiter = ensure_string(name, &params[1], &args[1])?;

    // Handle https://github.com/microsoft/regorus/issues/291
    let parts: Vec<Value> = if delimiter.as_ref() == "" {
        // If delimiter is "", str::split returns a leading and trailing "" whereas Golang's split doesn't.
        // Therefore avoid str::split and instead return each char as a Value::String.
        s.chars()
            .map(|c| {
                let value = Value::from(c.to_string());
                // Guard part accumulation when splitting into characters.
                enforce_limit()?;
                Ok(value)
            })
            .collect::<Result<Vec<Value>>>()?
    } else {
        s.split(delimiter.as_ref())
            .map(|s| {
                let value = Value::String(s.into());
                // Guard part accumulation when splitting by delimiter.
                enforce_limit()?;
                Ok(value)
            })
            .collect::<Result<Vec<Value>>>()?
    };

    Ok(Value::from(parts))
}

fn to_string(v: &Value, unescape: bool) -> String {
    match v {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::String(s) if unescape => {
            serde_json::to_string(s.as_ref()).unwrap_or(s.as_ref().to_string())
        }
        Value::String(s) => s.as_ref().to_string(),
        Value::Number(n) => n.text().into_owned(),
        Value::Array(a) => {
            "[".to_owned()
                + &a.iter()
                    .map(|e| to_string(e, true))
                    .collect::<Vec<String>>()
                    .join(", ")
                + "]"
        }
        // OPA's text of the empty set (`{}` is the empty object).
        Value::Set(s) if s.is_empty() => "set()".to_owned(),
        Value::Set(s) => {
            "{".to_owned()
                + &s.iter()
                    .map(|e| to_string(e, true))
                    .collect::<Vec<String>>()
                    .join(", ")
                + "}"
        }
        Value::Object(o) => {
            "{".to_owned()
                + &o.iter_sorted()
                    .map(|(k, v)| to_string(k, true) + ": " + &to_string(v, true))
                    .collect::<Vec<String>>()
                    .join(", ")
                + "}"
        }
        Value::Undefined => "#undefined".to_string(),
    }
}

#[derive(Clone, Copy)]
enum Width {
    None,
    LeadingZeros(usize),
    Cell(usize),
    Decimals(usize),
}

/// `text` padded on the left to `width` characters, as Go's fmt pads: with zeros after the
/// sign of a number, or with spaces.
fn pad_runes(text: &str, width: usize, zeros: bool) -> String {
    let missing = width.saturating_sub(text.chars().count());
    if missing == 0 {
        return text.to_string();
    }
    match text.strip_prefix('-') {
        Some(digits) if zeros && digits.starts_with(|c: char| c.is_ascii_digit()) => {
            format!("-{}{digits}", "0".repeat(missing))
        }
        _ => format!("{}{text}", if zeros { "0" } else { " " }.repeat(missing)),
    }
}

fn apply_width(w: Width, s: String) -> String {
    match w {
        Width::LeadingZeros(n) if n > s.len() => "0".repeat(n - s.len()) + &s,
        Width::Cell(n) if n > s.len() => " ".repeat(n - s.len()) + &s,
        _ => s,
    }
}

const LOWER_HEX: &[u8; 16] = b"0123456789abcdef";

// Append a string quoted like Go's `strconv.Quote` (and therefore OPA's `%q`).
// Precision truncates the input by Unicode scalar values before quoting, while
// width pads the quoted result by Unicode scalar values.
fn append_go_quoted(out: &mut String, input: &str, width: Width) -> Result<()> {
    let input = match width {
        Width::Decimals(precision) => truncate_chars(input, precision),
        _ => input,
    };

    let (padding, padding_char) = match width {
        Width::Cell(width) => (width.saturating_sub(go_quoted_len(input)), ' '),
        Width::LeadingZeros(width) => (width.saturating_sub(go_quoted_len(input)), '0'),
        Width::None | Width::Decimals(_) => (0, ' '),
    };
    for _ in 0..padding {
        out.push(padding_char);
        enforce_limit()?;
    }

    out.push('"');
    for c in input.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{0007}' => out.push_str("\\a"),
            '\u{0008}' => out.push_str("\\b"),
            '\u{000C}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{000B}' => out.push_str("\\v"),
            c if go_is_print::is_print(c) => out.push(c),
            c if (c as u32) <= 0x7f => append_hex_escape(out, 'x', c as u32, 2),
            c if (c as u32) <= 0xffff => append_hex_escape(out, 'u', c as u32, 4),
            c => append_hex_escape(out, 'U', c as u32, 8),
        }
        enforce_limit()?;
    }
    out.push('"');
    enforce_limit()
}

fn truncate_chars(s: &str, count: usize) -> &str {
    s.char_indices()
        .nth(count)
        .map_or(s, |(byte_index, _)| &s[..byte_index])
}

fn go_quoted_len(s: &str) -> usize {
    s.chars().fold(2usize, |len, c| {
        let escaped_len = match c {
            '"' | '\\' | '\u{0007}' | '\u{0008}' | '\u{000C}' | '\n' | '\r' | '\t' | '\u{000B}' => {
                2
            }
            c if go_is_print::is_print(c) => 1,
            c if (c as u32) <= 0x7f => 4,
            c if (c as u32) <= 0xffff => 6,
            _ => 10,
        };
        len.saturating_add(escaped_len)
    })
}

fn append_hex_escape(out: &mut String, prefix: char, value: u32, digits: usize) {
    out.push('\\');
    out.push(prefix);
    for digit in (0..digits).rev() {
        let nibble = ((value >> (digit * 4)) & 0x0f) as usize;
        out.push(LOWER_HEX[nibble] as char);
    }
}

/// What OPA hands Go's `fmt` for a number with its own text (`Number::Written`), read from
/// the text: an integer when `Number.Int` reads one (`1.0`), a float when it has a `.`
/// (`2.50`), else the text itself, a string (`1e3`).
fn go_operand(v: &Value) -> Cow<'_, Value> {
    if let Value::Number(n) = v {
        if let Some(text) = n.written_text() {
            if n.opa_int().is_none() && !text.contains('.') {
                return Cow::Owned(Value::from(text));
            }
        }
    }
    Cow::Borrowed(v)
}

/// The Go type and `%v` text of a `sprintf` argument as OPA hands it to Go's `fmt`: an integer
/// is an `int64` (or a `*big.Int`), another number a `float64`, a string a `string`, and any
/// other value its Rego text, a `string` too.
fn go_argument(v: &Value) -> (&'static str, String) {
    match v {
        // Written with a `.` and not an integer as `Number.Int` reads it (`1.5e2`): a float.
        Value::Number(n)
            if n.opa_int().is_none() && n.written_text().is_some_and(|t| t.contains('.')) =>
        {
            ("float64", go_float(n.to_f64_lossy()))
        }
        Value::Number(n) if n.is_integer() => match n.as_i64() {
            Some(i) => ("int64", i.to_string()),
            None => ("*big.Int", n.format_decimal()),
        },
        Value::Number(n) => match n.as_f64() {
            Some(f) => ("float64", go_float(f)),
            None => ("float64", n.format_decimal()),
        },
        Value::String(s) => ("string", s.as_ref().to_string()),
        v => ("string", to_string(v, false)),
    }
}

/// Go's `%v` of a float64 (strconv's shortest `%g`): plain from 1e-4 up to 1e6, else with an
/// exponent of at least two digits (`1.2345675e+06`).
fn go_float(f: f64) -> String {
    let scientific = format!("{f:e}");
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    if (-4..6).contains(&exponent) || !f.is_finite() {
        format!("{f}")
    } else {
        let sign = if exponent < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exponent.unsigned_abs())
    }
}

/// Go's `%.{precision}e`: `1.500000e+00`, the exponent signed and of at least two digits.
fn go_exponent_format(f: f64, precision: usize) -> String {
    let text = format!("{f:.precision$e}");
    match text.split_once('e') {
        Some((mantissa, exponent)) => {
            let exponent: i32 = exponent.parse().unwrap_or(0);
            let sign = if exponent < 0 { '-' } else { '+' };
            format!("{mantissa}e{sign}{:02}", exponent.unsigned_abs())
        }
        None => text,
    }
}

/// Whether Go's fmt formats a value of `go_type` with `verb` (else it writes `%!verb(…)`).
fn go_verb_fits(verb: char, go_type: &str) -> bool {
    match go_type {
        "int64" => matches!(
            verb,
            'v' | 'd' | 'b' | 'c' | 'o' | 'O' | 'q' | 'x' | 'X' | 'U'
        ),
        // `big.Int`'s own Format: decimal for `%s` too.
        "*big.Int" => matches!(verb, 'v' | 'd' | 's' | 'b' | 'o' | 'O' | 'x' | 'X'),
        "float64" => matches!(
            verb,
            'v' | 'b' | 'e' | 'E' | 'f' | 'F' | 'g' | 'G' | 'x' | 'X'
        ),
        _ => matches!(verb, 'v' | 's' | 'q' | 'x' | 'X'),
    }
}

fn sprintf(span: &Span, params: &[Ref<Expr>], args: &[Value], _strict: bool) -> Result<Value> {
    let name = "sprintf";
    ensure_args_count(span, name, params, args, 2)?;
    let fmt = ensure_string(name, &params[0], &args[0])?;
    let args = ensure_array(name, &params[1], args[1].clone())?;

    let mut s = String::default();
    let mut args_idx = 0usize;
    let mut chars = fmt.chars().peekable();
    let args_span = params[1].span();
    loop {
        let (verb, width) = match chars.next() {
            Some('%') => match chars.next() {
                Some('%') => {
                    s.push('%');
                    continue;
                }
                // Go's flags (`%+d`, `%-5s`, `% d`, `%#x`) are not implemented: the evaluation
                // stops rather than leaving the call undefined where OPA writes text.
                Some(flag @ ('+' | '-' | ' ' | '#')) => {
                    return Err(anyhow::Error::new(builtins::EngineGapError::sprintf(
                        &format!("the format flag `{flag}`"),
                    )));
                }
                Some(c) if c == '.' || c.is_ascii_digit() => {
                    let first_char = c;
                    let mut w: u32 = c.to_digit(10).unwrap_or(0);
                    while let Some(digit) = chars.peek().and_then(|c| c.to_digit(10)) {
                        chars.next();
                        // Go's fmt gives up on a width or precision above 10^6.
                        w = match w.checked_mul(10).and_then(|w| w.checked_add(digit)) {
                            Some(w) if w <= 10_000_000 => w,
                            _ => bail!(params[0].span().error("width or precision too large")),
                        };
                    }
                    // Padding to the width is allocated at once.
                    reserve_output(w as usize)?;
                    let width = match first_char {
                        '0' => Width::LeadingZeros(w as usize),
                        '.' => Width::Decimals(w as usize),
                        _ => Width::Cell(w as usize),
                    };
                    match chars.next() {
                        Some(c) => (c, width),
                        None => {
                            s.push_str("%!(NOVERB)");
                            break;
                        }
                    }
                }
                Some(c) => (c, Width::None),
                // Go's fmt writes a `%` that ends the format as `%!(NOVERB)`.
                None => {
                    s.push_str("%!(NOVERB)");
                    break;
                }
            },
            Some(c) => {
                s.push(c);
                continue;
            }
            None => break,
        };

        // Go's fmt (OPA's sprintf) writes what it cannot format into the result.
        let Some(arg) = args.get(args_idx) else {
            s.push_str("%!");
            s.push(verb);
            s.push_str("(MISSING)");
            continue;
        };
        args_idx += 1;
        let operand = go_operand(arg);
        let arg: &Value = &operand;
        let (go_type, go_value) = go_argument(arg);
        if !go_verb_fits(verb, go_type) {
            // Go writes the argument as `%v` with the width given (`%2F` of 3: `%!F(int64= 3)`).
            let value = match width {
                _ if go_type == "*big.Int" => None,
                Width::None => Some(go_value),
                Width::Cell(n) => Some(pad_runes(&go_value, n, false)),
                Width::LeadingZeros(n) => Some(pad_runes(&go_value, n, true)),
                Width::Decimals(_) => None,
            };
            let Some(value) = value else {
                return Err(anyhow::Error::new(builtins::EngineGapError::sprintf(
                    &format!("the verb `{verb}` with a precision or on a big integer"),
                )));
            };
            s.push_str("%!");
            s.push(verb);
            s.push('(');
            s.push_str(go_type);
            s.push('=');
            s.push_str(&value);
            s.push(')');
            continue;
        }

        // Handle Golang flags.
        let emit_sign = false;
        let leave_space_for_elided_sign = false;
        // Note: Golang flags come BEFORE the format verb, not after.
        // This code was incorrectly consuming characters after the verb.
        // Removing the incorrect flag handling to fix sprintf spacing.

        let get_sign_value = |f: &Number| match (emit_sign, f) {
            (_, v) if v < &Number::from(0.0) => ("-", v.clone()),
            (true, v) => ("+", v.clone()),
            (false, v) if leave_space_for_elided_sign => (" ", v.clone()),
            (false, v) => ("", v.clone()),
        };

        // Handle Golang printing verbs.
        // https://pkg.go.dev/fmt
        match (verb, arg) {
            ('s', Value::String(sv)) => s += apply_width(width, sv.as_ref().to_string()).as_str(),
            ('s', v) => s += apply_width(width, to_string(v, false)).as_str(),

            // A number alone is Go's int64, *big.Int or float64 (`1.2345675e+06`).
            ('v', Value::Number(_)) => s += &go_argument(arg).1,
            ('v', _) => s += &to_string(arg, false),
            ('b', Value::Number(f)) if f.is_integer() => {
                let (sign, v) = get_sign_value(f);
                s += sign;
                s += v.format_bin().as_str()
            }
            ('c', Value::Number(f)) if f.is_integer() => {
                // TODO: range error
                let ch_opt = f.as_u64().map(|ival| char::from_u32(ival as u32));
                match ch_opt {
                    Some(Some(c)) => s.push(c),
                    _ => {
                        bail!(args_span.error(
                            format!("invalid value {} for format verb c.", f.format_decimal())
                                .as_str()
                        ))
                    }
                }
            }
            ('d', Value::Number(f)) if f.is_integer() => {
                let (sign, v) = get_sign_value(f);
                s += sign;
                s += apply_width(width, v.format_decimal()).as_str()
            }
            ('o', Value::Number(f)) if f.is_integer() => {
                let (sign, v) = get_sign_value(f);
                s += sign;
                s += apply_width(width, "0O".to_owned() + &v.format_octal()).as_str()
            }
            ('O', Value::Number(f)) if f.is_integer() => {
                let (sign, v) = get_sign_value(f);
                s += sign;
                s += apply_width(width, "0o".to_owned() + &v.format_octal()).as_str()
            }
            ('x', Value::Number(f)) if f.is_integer() => {
                let (sign, v) = get_sign_value(f);
                s += sign;
                s += apply_width(width, v.format_hex()).as_str()
            }
            ('X', Value::Number(f)) if f.is_integer() => {
                let (sign, v) = get_sign_value(f);
                s += sign;
                s += apply_width(width, v.format_big_hex()).as_str()
            }
            ('e' | 'E', Value::Number(f)) => {
                let Some(f) = f.as_f64() else {
                    bail!(args_span.error("cannot print large number using e format"))
                };
                let precision = match width {
                    Width::Decimals(d) => d,
                    Width::None => 6,
                    _ => bail!(args_span.error("unsupported width for format verb e")),
                };
                let text = go_exponent_format(f, precision);
                s += &if verb == 'E' {
                    text.to_uppercase()
                } else {
                    text
                };
            }
            ('x', Value::String(sv)) => {
                s += &sv.bytes().map(|b| format!("{b:02x}")).collect::<String>()
            }
            ('X', Value::String(sv)) => {
                s += &sv.bytes().map(|b| format!("{b:02X}")).collect::<String>()
            }
            // Go: 6 decimals unless a precision is given, rounded half to even like Rust.
            ('f' | 'F', Value::Number(f)) => match f.as_f64() {
                Some(f) => {
                    s += &match width {
                        Width::Decimals(d) => format!("{f:.d$}"),
                        width => apply_width(width, format!("{f:.6}")),
                    }
                }
                None => bail!(args_span.error("cannot print large number using f format")),
            },
            ('g', Value::Number(f)) => {
                let (sign, v) = get_sign_value(f);
                let v = match v.as_f64() {
                    Some(v) => v,
                    _ => bail!(span.error("cannot print large float using g format specified")),
                };
                s += sign;
                let bits = v.to_bits();
                let exponent = (bits >> 52) & 0x7ff;
                // TODO: what is large exponent?
                if exponent > 32 {
                    s += format!("{v:e}").as_str()
                } else {
                    s += format!("{v}").as_str()
                }
            }
            ('G', Value::Number(f)) => {
                let (sign, v) = get_sign_value(f);
                let v = match v.as_f64() {
                    Some(v) => v,
                    _ => bail!("cannot print large float using g format specified"),
                };
                s += sign;
                let bits = v.to_bits();
                let exponent = (bits >> 52) & 0x7ff;
                // TODO: what is large exponent?
                if exponent > 32 {
                    s += format!("{v:E}").as_str()
                } else {
                    s += format!("{v}").as_str()
                }
            }
            (_, Value::Number(_)) => {
                bail!(args_span.error(&format!("number specified for format verb {verb}.")));
            }

            ('q', Value::String(sv)) => append_go_quoted(&mut s, sv.as_ref(), width)?,

            ('+', _) if chars.next() == Some('v') => {
                bail!(args_span.error("Go-syntax fields names format verm %#v is not supported."));
            }
            ('T', _) | ('#', _) | ('q', _) | ('p', _) => {
                bail!(
                    args_span.error("Go-syntax format verbs %#v. %q, %p and %T are not supported.")
                );
            }
            _ => {}
        }
    }

    let extra: Vec<String> = args
        .iter()
        .skip(args_idx)
        .map(|arg| {
            let (go_type, go_value) = go_argument(&go_operand(arg));
            format!("{go_type}={go_value}")
        })
        .collect();
    if !extra.is_empty() {
        s.push_str("%!(EXTRA ");
        s.push_str(&extra.join(", "));
        s.push(')');
    }
    Ok(Value::String(s.into()))
}

fn any_prefix_match(
    span: &Span,
    params: &[Ref<Expr>],
    args: &[Value],
    strict: bool,
) -> Result<Value> {
    let name = "strings.any_prefix_match";
    ensure_args_count(span, name, params, args, 2)?;

    let search = match &args[0] {
        Value::String(s) => vec![s.as_ref()],
        Value::Array(_) | Value::Set(_) => {
            match ensure_string_collection(name, &params[0], &args[0]) {
                Ok(c) => c,
                Err(e) if strict => return Err(e),
                _ => return Ok(Value::Undefined),
            }
        }
        _ if strict => {
            let span = params[0].span();
            bail!(span.error(
                format!("`{name}` expects string/array[string]/set[string] argument.").as_str()
            ));
        }
        _ => return Ok(Value::Undefined),
    };

    let base = match &args[1] {
        Value::String(s) => vec![s.as_ref()],
        Value::Array(_) | Value::Set(_) => {
            match ensure_string_collection(name, &params[1], &args[1]) {
                Ok(c) => c,
                Err(e) if strict => return Err(e),
                _ => return Ok(Value::Undefined),
            }
        }
        _ if strict => {
            let span = params[0].span();
            bail!(span.error(
                format!("`{name}` expects string/array[string]/set[string] argument.").as_str()
            ));
        }
        _ => return Ok(Value::Undefined),
    };

    Ok(Value::Bool(
        search.iter().any(|s| base.iter().any(|b| s.starts_with(b))),
    ))
}

fn any_suffix_match(
    span: &Span,
    params: &[Ref<Expr>],
    args: &[Value],
    strict: bool,
) -> Result<Value> {
    let name = "strings.any_suffix_match";
    ensure_args_count(span, name, params, args, 2)?;

    let search = match &args[0] {
        Value::String(s) => vec![s.as_ref()],
        Value::Array(_) | Value::Set(_) => {
            match ensure_string_collection(name, &params[0], &args[0]) {
                Ok(c) => c,
                Err(e) if strict => return Err(e),
                _ => return Ok(Value::Undefined),
            }
        }
        _ if strict => {
            let span = params[0].span();
            bail!(span.error(
                format!("`{name}` expects string/array[string]/set[string] argument.").as_str()
            ));
        }
        _ => return Ok(Value::Undefined),
    };

    let base = match &args[1] {
        Value::String(s) => vec![s.as_ref()],
        Value::Array(_) | Value::Set(_) => {
            match ensure_string_collection(name, &params[1], &args[1]) {
                Ok(c) => c,
                Err(e) if strict => return Err(e),
                _ => return Ok(Value::Undefined),
            }
        }
        _ if strict => {
            let span = params[0].span();
            bail!(span.error(
                format!("`{name}` expects string/array[string]/set[string] argument.").as_str()
            ));
        }
        _ => return Ok(Value::Undefined),
    };

    Ok(Value::Bool(
        search.iter().any(|s| base.iter().any(|b| s.ends_with(b))),
    ))
}

fn strings_count(
    span: &Span,
    params: &[Ref<Expr>],
    args: &[Value],
    _strict: bool,
) -> Result<Value> {
    let name = "strings.count";
    ensure_args_count(span, name, params, args, 2)?;

    let search = ensure_string(name, &params[0], &args[0])?;
    let substring = ensure_string(name, &params[0], &args[1])?;

    // Non-overlapping matches, as Go's `strings.Count`; an empty substring matches at every
    // character boundary (the number of characters + 1).
    Ok(Value::from(search.matches(substring.as_ref()).count()))
}

fn startswith(span: &Span, params: &[Ref<Expr>], args: &[Value], _strict: bool) -> Result<Value> {
    let name = "startswith";
    ensure_args_count(span, name, params, args, 2)?;
    let s1 = ensure_string(name, &params[0], &args[0])?;
    let s2 = ensure_string(name, &params[1], &args[1])?;
    Ok(Value::Bool(s1.starts_with(s2.as_ref())))
}

fn replace_n(span: &Span, params: &[Ref<Expr>], args: &[Value], _strict: bool) -> Result<Value> {
    let name = "strings.replace_n";
    ensure_args_count(span, name, params, args, 2)?;
    let obj = ensure_object(name, &params[0], args[0].clone())?;
    let s = ensure_string(name, &params[1], &args[1])?;

    let span = params[0].span();
    let mut pairs = Vec::new();
    let mut output_bound = s.len();
    for item in obj.as_ref().iter_sorted() {
        match item {
            (Value::String(k), Value::String(v)) => {
                // What each key's replacements can add, at most: checked before building.
                output_bound =
                    output_bound.saturating_add(replaced_len(&s, k, v).saturating_sub(s.len()));
                pairs.push((k.clone(), v.clone()))
            }
            _ => {
                bail!(span.error(
                    format!("`{name}` expects string keys and values in pattern object.").as_str()
                ))
            }
        }
    }

    reserve_output(output_bound)?;
    match replace_in_one_pass(&s, &pairs) {
        Some(replaced) => Ok(Value::String(replaced.into())),
        None => Err(anyhow::Error::new(
            builtins::EngineGapError::splits_characters(name),
        )),
    }
}

/// Go's `strings.NewReplacer`, which OPA's `strings.replace_n` builds from the pattern's keys
/// in sorted order: one pass from left to right; at each position the first key in that order
/// that matches there is replaced; replaced text is not scanned again; an empty key matches
/// at every position (the end included), before the text there. Go then copies one byte:
/// `None` when that byte starts a character of more than one byte, where the empty key's
/// next match splits the character and the answer is not UTF-8.
fn replace_in_one_pass(s: &str, pairs: &[(Rc<str>, Rc<str>)]) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut at = 0;
    // After an empty key matched at `at`, the other keys still get their turn there.
    let mut after_empty_match = false;
    loop {
        let rest = s.get(at..).unwrap_or_default();
        let found = pairs.iter().find(|(key, _)| {
            !(after_empty_match && key.is_empty()) && rest.starts_with(key.as_ref())
        });
        match found {
            Some((key, replacement)) => {
                out.push_str(replacement);
                after_empty_match = key.is_empty();
                at += key.len();
            }
            None => {
                let Some(c) = rest.chars().next() else {
                    break;
                };
                if after_empty_match && c.len_utf8() > 1 {
                    return None;
                }
                out.push(c);
                at += c.len_utf8();
                after_empty_match = false;
            }
        }
    }
    Some(out)
}

fn reverse(span: &Span, params: &[Ref<Expr>], args: &[Value], _strict: bool) -> Result<Value> {
    let name = "reverse";
    ensure_args_count(span, name, params, args, 1)?;
    let s = ensure_string(name, &params[0], &args[0])?;
    Ok(Value::String(s.chars().rev().collect::<String>().into()))
}

fn substring(span: &Span, params: &[Ref<Expr>], args: &[Value], strict: bool) -> Result<Value> {
    let name = "substring";
    ensure_args_count(span, name, params, args, 3)?;
    let s = ensure_string(name, &params[0], &args[0])?;
    let offset = ensure_int_operand(name, &params[1], &args[1])?;
    let length = ensure_int_operand(name, &params[2], &args[2])?;

    if offset < 0 {
        if strict {
            bail!(params[1].span().error("negative offset"));
        }
        return Ok(Value::Undefined);
    }
    // Past usize (on wasm32) an offset or length is past the end of any string.
    let start = s
        .chars()
        .skip(usize::try_from(offset).unwrap_or(usize::MAX));
    let length = if length < 0 {
        s.len()
    } else {
        usize::try_from(length).unwrap_or(usize::MAX)
    };
    Ok(Value::String(start.take(length).collect::<String>().into()))
}

fn trim(span: &Span, params: &[Ref<Expr>], args: &[Value], _strict: bool) -> Result<Value> {
    let name = "trim";
    ensure_args_count(span, name, params, args, 2)?;
    let s1 = ensure_string(name, &params[0], &args[0])?;
    let s2 = ensure_string(name, &params[1], &args[1])?;
    Ok(Value::String(s1.trim_matches(|c| s2.contains(c)).into()))
}

fn trim_left(span: &Span, params: &[Ref<Expr>], args: &[Value], _strict: bool) -> Result<Value> {
    let name = "trim_left";
    ensure_args_count(span, name, params, args, 2)?;
    let s1 = ensure_string(name, &params[0], &args[0])?;
    let s2 = ensure_string(name, &params[1], &args[1])?;
    Ok(Value::String(
        s1.trim_start_matches(|c| s2.contains(c)).into(),
    ))
}

fn trim_prefix(span: &Span, params: &[Ref<Expr>], args: &[Value], _strict: bool) -> Result<Value> {
    let name = "trim_prefix";
    ensure_args_count(span, name, params, args, 2)?;
    let s1 = ensure_string(name, &params[0], &args[0])?;
    let s2 = ensure_string(name, &params[1], &args[1])?;
    Ok(Value::String(match s1.strip_prefix(s2.as_ref()) {
        Some(s) => s.into(),
        _ => s1,
    }))
}

fn trim_right(span: &Span, params: &[Ref<Expr>], args: &[Value], _strict: bool) -> Result<Value> {
    let name = "trim_right";
    ensure_args_count(span, name, params, args, 2)?;
    let s1 = ensure_string(name, &params[0], &args[0])?;
    let s2 = ensure_string(name, &params[1], &args[1])?;
    Ok(Value::String(
        s1.trim_end_matches(|c| s2.contains(c)).into(),
    ))
}

fn trim_space(span: &Span, params: &[Ref<Expr>], args: &[Value], _strict: bool) -> Result<Value> {
    let name = "trim_space";
    ensure_args_count(span, name, params, args, 1)?;
    let s = ensure_string(name, &params[0], &args[0])?;
    Ok(Value::String(s.trim().into()))
}

fn trim_suffix(span: &Span, params: &[Ref<Expr>], args: &[Value], _strict: bool) -> Result<Value> {
    let name = "trim_suffix";
    ensure_args_count(span, name, params, args, 2)?;
    let s1 = ensure_string(name, &params[0], &args[0])?;
    let s2 = ensure_string(name, &params[1], &args[1])?;
    Ok(Value::String(match s1.strip_suffix(s2.as_ref()) {
        Some(s) => s.into(),
        _ => s1,
    }))
}

/// A character in upper case as Go's `unicode.ToUpper` (OPA's `upper`): Unicode's simple case
/// mapping, one character to one. Rust's `str::to_uppercase` uses the full mapping (`ß` to
/// `SS`), where Go leaves such characters unchanged.
fn go_upper(c: char) -> char {
    let mut full = c.to_uppercase();
    match (full.next(), full.next()) {
        (Some(upper), None) => upper,
        // Of the characters with a longer full mapping, only Greek letters with ypogegrammeni
        // have a simple one: their titlecase form.
        _ => match u32::from(c) {
            n @ (0x1F80..=0x1F87 | 0x1F90..=0x1F97 | 0x1FA0..=0x1FA7) => {
                char::from_u32(n + 8).unwrap_or(c)
            }
            0x1FB3 => '\u{1FBC}',
            0x1FC3 => '\u{1FCC}',
            0x1FF3 => '\u{1FFC}',
            _ => c,
        },
    }
}

/// A character in lower case as Go's `unicode.ToLower` (OPA's `lower`): the simple case
/// mapping, so `İ` is `i` (Rust's full mapping adds a combining dot) and `Σ` is always `σ`
/// (Rust's `str::to_lowercase` makes a final one `ς`).
fn go_lower(c: char) -> char {
    let mut full = c.to_lowercase();
    match (full.next(), full.next()) {
        (Some(lower), None) => lower,
        _ if c == '\u{130}' => 'i',
        _ => c,
    }
}

fn upper(span: &Span, params: &[Ref<Expr>], args: &[Value], _strict: bool) -> Result<Value> {
    let name = "upper";
    ensure_args_count(span, name, params, args, 1)?;
    let s = ensure_string(name, &params[0], &args[0])?;
    Ok(Value::String(
        s.chars().map(go_upper).collect::<String>().into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn go_quote_string(s: &str) -> String {
        let mut out = String::new();
        append_go_quoted(&mut out, s, Width::None).expect("quoting must succeed");
        out
    }

    // Reference values below were captured from `sprintf("%q", [...])`
    // evaluated with OPA (github.com/open-policy-agent/opa), which in turn
    // delegates to Go's `strconv.Quote`.
    #[test]
    fn quote_string_matches_go_strconv_quote() {
        assert_eq!(go_quote_string("foo"), "\"foo\"");
        assert_eq!(go_quote_string(""), "\"\"");
        assert_eq!(go_quote_string("a\"b"), "\"a\\\"b\"");
        assert_eq!(go_quote_string("back\\slash"), "\"back\\\\slash\"");
        assert_eq!(go_quote_string("tab\there"), "\"tab\\there\"");
        assert_eq!(go_quote_string("nl\nhere"), "\"nl\\nhere\"");
        assert_eq!(go_quote_string("cr\rhere"), "\"cr\\rhere\"");
        assert_eq!(go_quote_string("emoji\u{1F642}"), "\"emoji\u{1F642}\"");
        assert_eq!(
            go_quote_string("\u{044E}\u{043D}\u{0456}\u{043A}\u{043E}\u{0434}"),
            "\"\u{044E}\u{043D}\u{0456}\u{043A}\u{043E}\u{0434}\""
        );
        // %q does NOT HTML-escape < > & (unlike json.marshal).
        assert_eq!(go_quote_string("a<b>&c"), "\"a<b>&c\"");

        // Short escapes for the other named control characters.
        assert_eq!(go_quote_string("\u{0007}"), "\"\\a\"");
        assert_eq!(go_quote_string("\u{0008}"), "\"\\b\"");
        assert_eq!(go_quote_string("\u{000C}"), "\"\\f\"");
        assert_eq!(go_quote_string("\u{000B}"), "\"\\v\"");

        // Other C0 control characters fall back to \xNN.
        assert_eq!(go_quote_string("x\u{001F}y"), "\"x\\x1fy\"");
        // DEL (0x7f) is also escaped as \x7f.
        assert_eq!(go_quote_string("x\u{007F}y"), "\"x\\x7fy\"");
        // Non-breaking space is a non-ASCII-space separator: not printable,
        // and within the BMP so it uses \uNNNN.
        assert_eq!(go_quote_string("x\u{00A0}y"), "\"x\\u00a0y\"");
        // Format, private-use, noncharacter, and unassigned scalars are not
        // printable under Go's Unicode category definition.
        assert_eq!(go_quote_string("x\u{00AD}y"), "\"x\\u00ady\"");
        assert_eq!(go_quote_string("x\u{200B}y"), "\"x\\u200by\"");
        assert_eq!(go_quote_string("x\u{E000}y"), "\"x\\ue000y\"");
        assert_eq!(go_quote_string("x\u{FDD0}y"), "\"x\\ufdd0y\"");
        assert_eq!(go_quote_string("x\u{0378}y"), "\"x\\u0378y\"");
        // Astral-plane printable characters are left as-is.
        assert_eq!(go_quote_string("x\u{1F600}y"), "\"x\u{1F600}y\"");
    }

    #[test]
    fn quote_string_applies_supported_width_and_precision() {
        let quote = |input, width| {
            let mut out = String::new();
            append_go_quoted(&mut out, input, width).expect("quoting must succeed");
            out
        };

        assert_eq!(quote("foo", Width::Cell(10)), "     \"foo\"");
        assert_eq!(quote("a", Width::LeadingZeros(5)), "00\"a\"");
        assert_eq!(quote("abcdef", Width::Decimals(3)), "\"abc\"");
        assert_eq!(quote("abc", Width::Decimals(0)), "\"\"");
        assert_eq!(quote("\u{1F642}", Width::Cell(6)), "   \"\u{1F642}\"");
        assert_eq!(quote("\u{1F642}x", Width::Decimals(1)), "\"\u{1F642}\"");
    }
}
