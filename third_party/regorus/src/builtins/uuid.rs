#![allow(clippy::missing_const_for_fn, clippy::as_conversions)]
// Copyright (c) Microsoft Corporation.
// Licensed under the MIT License.
use crate::ast::{Expr, Ref};
use crate::builtins;
use crate::builtins::utils::{ensure_args_count, ensure_string};
use crate::lexer::Span;
use crate::value::Value;
use crate::*;

use alloc::collections::BTreeMap;

use anyhow::Result;
use uuid::Uuid;

pub fn register(m: &mut builtins::BuiltinsMap<&'static str, builtins::BuiltinFcn>) {
    m.insert("uuid.parse", (parse, 1));
    m.insert("uuid.rfc4122", (rfc4122, 1));
}

fn parse(span: &Span, params: &[Ref<Expr>], args: &[Value], _strict: bool) -> Result<Value> {
    let name = "uuid.parse";
    ensure_args_count(span, name, params, args, 1)?;

    let val = ensure_string(name, &params[0], &args[0])?;
    let Some(uuid) = parse_as_go(val.as_bytes()) else {
        return Ok(Value::Undefined);
    };
    let version = uuid.get_version_num();

    let mut result = BTreeMap::new();
    result.insert(
        Value::String("version".into()),
        Value::Number(version.into()),
    );
    result.insert(
        Value::String("variant".into()),
        Value::String(go_variant(&uuid).into()),
    );

    // OPA decodes the time of versions 1 and 2 only.
    if version == 1 || version == 2 {
        result.insert(
            Value::String("time".into()),
            Value::Number(unix_nanos(&uuid).into()),
        );
    }

    if version == 1 || version == 2 {
        let (f1, _, _, f4) = uuid.as_fields();

        result.insert(
            Value::String("nodeid".into()),
            Value::String(
                f4[2..]
                    .iter()
                    .map(|f| format!("{f:02x}"))
                    .collect::<Vec<_>>()
                    .join("-")
                    .into(),
            ),
        );
        result.insert(
            Value::String("macvariables".into()),
            Value::String(mac_vars(f4[2]).into()),
        );

        let clock_seq = u16::from_be_bytes([f4[0], f4[1]]) & 0x3fff;
        result.insert(
            Value::String("clocksequence".into()),
            Value::Number((clock_seq as u64).into()),
        );

        if version == 2 {
            result.insert(
                Value::String("id".into()),
                Value::Number((f1 as u64).into()),
            );
            result.insert(
                Value::String("domain".into()),
                Value::String(domain(f4[1]).into()),
            );
        }
    }

    Ok(Value::from(result))
}

fn rfc4122(span: &Span, params: &[Ref<Expr>], args: &[Value], _strict: bool) -> Result<Value> {
    let name = "uuid.rfc4122";
    ensure_args_count(span, name, params, args, 1)?;
    ensure_string(name, &params[0], &args[0])?;

    let uuid = Uuid::new_v4();
    Ok(Value::String(uuid.to_string().into()))
}

fn mac_vars(b: u8) -> &'static str {
    if b & 0b11 == 0b11 {
        return "local:multicast";
    } else if b & 0b01 == 0b01 {
        return "global:multicast";
    } else if b & 0b10 == 0b10 {
        return "local:unicast";
    }
    "global:unicast"
}

fn domain(b: u8) -> String {
    match b {
        0 => "Person".to_string(),
        1 => "Group".to_string(),
        2 => "Org".to_string(),
        n => format!("Domain{n}"),
    }
}

/// What Go's `uuid.Parse` (which OPA calls) accepts: 36 characters with dashes, 38 whose
/// first and last characters are dropped unread (`{…}`, but also `(…)`), 45 after a
/// `urn:uuid:` prefix in any case, or 32 hexadecimal digits.
fn parse_as_go(text: &[u8]) -> Option<Uuid> {
    let hyphenated = match text.len() {
        32 => return Uuid::try_parse_ascii(text).ok(),
        36 => text,
        38 => text.get(1..37)?,
        45 if text.get(..9)?.eq_ignore_ascii_case(b"urn:uuid:") => text.get(9..)?,
        _ => return None,
    };
    // Only the hyphenated form is left: `try_parse_ascii` takes it as Go does.
    Uuid::try_parse_ascii(hyphenated).ok()
}

/// Go's `UUID.Variant().String()`: an NCS variant is "Reserved".
fn go_variant(uuid: &Uuid) -> &'static str {
    let byte = uuid.as_bytes()[8];
    if byte & 0xc0 == 0x80 {
        "RFC4122"
    } else if byte & 0xe0 == 0xc0 {
        "Microsoft"
    } else if byte & 0xe0 == 0xe0 {
        "Future"
    } else {
        "Reserved"
    }
}

/// OPA's time of a version 1 or 2 UUID: nanoseconds since the Unix epoch, negative before
/// it, in Go's wrapping 64-bit arithmetic.
fn unix_nanos(uuid: &Uuid) -> i64 {
    // 100-nanosecond intervals between 1582-10-15 and 1970-01-01.
    const GREGORIAN_TO_UNIX: i64 = 122_192_928_000_000_000;
    let bytes = uuid.as_bytes();
    let ticks = i64::from(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
        | (i64::from(u16::from_be_bytes([bytes[4], bytes[5]])) << 32)
        | (i64::from(u16::from_be_bytes([bytes[6], bytes[7]]) & 0xfff) << 48);
    let since_epoch = ticks - GREGORIAN_TO_UNIX;
    (since_epoch / 10_000_000)
        .wrapping_mul(1_000_000_000)
        .wrapping_add((since_epoch % 10_000_000) * 100)
}
