// Copyright (c) Microsoft Corporation.
// Licensed under the MIT License.
#![allow(clippy::as_conversions, clippy::pattern_type_mismatch)]

use crate::ast::{Expr, Ref};
use crate::builtins;
use crate::builtins::utils::{ensure_args_count, ensure_string};
use crate::lexer::Span;
use crate::value::Value;

use core::cmp::Ordering;

use anyhow::Result;

pub fn register(m: &mut builtins::BuiltinsMap<&'static str, builtins::BuiltinFcn>) {
    m.insert("semver.compare", (compare, 2));
    m.insert("semver.is_valid", (is_valid, 1));
}

/// A version as OPA's semver package (from coreos/go-semver) reads it: an optional `v`,
/// `major.minor.patch` as 64-bit integers (leading zeros allowed), then an optional
/// `-pre-release` and `+metadata` of `[0-9A-Za-z-]` identifiers separated by dots (an empty
/// pre-release or metadata is allowed). Stricter parsers (the `semver` crate) refuse
/// `v1.0.0` and `01.0.0`, which OPA accepts.
struct GoVersion<'a> {
    core: [i64; 3],
    pre_release: &'a str,
}

fn parse_go_version(text: &str) -> Option<GoVersion<'_>> {
    let text = text.strip_prefix('v').unwrap_or(text);
    let (text, metadata) = text.split_once('+').unwrap_or((text, ""));
    let (text, pre_release) = text.split_once('-').unwrap_or((text, ""));
    let valid = |identifiers: &str| {
        identifiers.is_empty()
            || identifiers.split('.').all(|id| {
                !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            })
    };
    if !valid(pre_release) || !valid(metadata) {
        return None;
    }
    let mut parts = text.splitn(3, '.').map(|part| {
        // Go's `strconv.ParseInt` in base 10: digits, 64 bits.
        if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        part.parse::<i64>().ok()
    });
    let core = [parts.next()??, parts.next()??, parts.next()??];
    Some(GoVersion { core, pre_release })
}

/// OPA's precedence: the core numbers, then a version without pre-release above one with,
/// then pre-release identifiers one by one: numeric ones (Go's `Atoi`) below the others and
/// compared as numbers, then as strings; more identifiers above fewer.
fn go_version_order(a: &GoVersion<'_>, b: &GoVersion<'_>) -> Ordering {
    a.core.cmp(&b.core).then_with(|| {
        match (a.pre_release.is_empty(), b.pre_release.is_empty()) {
            (true, true) => return Ordering::Equal,
            (true, false) => return Ordering::Greater,
            (false, true) => return Ordering::Less,
            (false, false) => (),
        }
        let mut a_ids = a.pre_release.split('.');
        let mut b_ids = b.pre_release.split('.');
        loop {
            let (a_id, b_id) = match (a_ids.next(), b_ids.next()) {
                (None, None) => return Ordering::Equal,
                (None, Some(_)) => return Ordering::Less,
                (Some(_), None) => return Ordering::Greater,
                (Some(a_id), Some(b_id)) => (a_id, b_id),
            };
            let order = match (a_id.parse::<i64>(), b_id.parse::<i64>()) {
                (Ok(_), Err(_)) => Ordering::Less,
                (Err(_), Ok(_)) => Ordering::Greater,
                (Ok(a_n), Ok(b_n)) => a_n.cmp(&b_n).then_with(|| a_id.cmp(b_id)),
                (Err(_), Err(_)) => a_id.cmp(b_id),
            };
            if order != Ordering::Equal {
                return order;
            }
        }
    })
}

fn compare(span: &Span, params: &[Ref<Expr>], args: &[Value], _strict: bool) -> Result<Value> {
    let name = "semver.compare";
    ensure_args_count(span, name, params, args, 2)?;

    let v1 = ensure_string(name, &params[0], &args[0])?;
    let v2 = ensure_string(name, &params[1], &args[1])?;
    let version1 = parse_go_version(&v1).ok_or_else(|| params[0].span().error("invalid semver"))?;
    let version2 = parse_go_version(&v2).ok_or_else(|| params[1].span().error("invalid semver"))?;
    let result = match go_version_order(&version1, &version2) {
        Ordering::Less => -1,
        Ordering::Equal => 0,
        Ordering::Greater => 1,
    };
    Ok(Value::from(result as i64))
}

fn is_valid(span: &Span, params: &[Ref<Expr>], args: &[Value], strict: bool) -> Result<Value> {
    let name = "semver.is_valid";
    ensure_args_count(span, name, params, args, 1)?;
    let text = if strict {
        ensure_string(name, &params[0], &args[0])?
    } else {
        match &args[0] {
            Value::String(s) => s.clone(),
            _ => return Ok(Value::Bool(false)),
        }
    };
    Ok(Value::Bool(parse_go_version(&text).is_some()))
}
