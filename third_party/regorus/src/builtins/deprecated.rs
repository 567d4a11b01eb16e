// Copyright (c) Microsoft Corporation.
// Licensed under the MIT License.

//! The builtins OPA deprecated and still accepts in Rego v0 modules only (OPA's
//! `ast.DeprecatedBuiltins`), with OPA's topdown semantics. A Rego v1 module calling one is
//! refused, as OPA refuses it: `builtins::lookup` offers them to v0 modules only.

use crate::ast::{Expr, Ref};
use crate::builtins;
use crate::builtins::utils::{ensure_args_count, ensure_set};
use crate::lexer::Span;
use crate::value::Value;
use crate::*;

use anyhow::Result;

pub fn register(m: &mut builtins::BuiltinsMap<&'static str, builtins::BuiltinFcn>) {
    m.insert("all", (all, 1));
    m.insert("any", (any, 1));
    m.insert("cast_array", (cast_array, 1));
    m.insert("cast_boolean", (cast_boolean, 1));
    m.insert("cast_null", (cast_null, 1));
    m.insert("cast_object", (cast_object, 1));
    m.insert("cast_set", (cast_set, 1));
    m.insert("cast_string", (cast_string, 1));
    #[cfg(feature = "net")]
    m.insert("net.cidr_overlap", (builtins::net::cidr_contains, 2));
    #[cfg(feature = "regex")]
    m.insert("re_match", (builtins::regex::regex_match, 2));
    m.insert("set_diff", (set_diff, 2));
}

/// OPA's operand type error: `operand 1 must be one of {array, set} but got object`.
fn operand_error(name: &str, param: &Expr, wanted: &str, got: &Value) -> anyhow::Error {
    let kind = match got {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Set(_) => "set",
        Value::Object(_) => "object",
        Value::Undefined => "undefined",
    };
    anyhow::anyhow!(param
        .span()
        .error(&format!("{name}: operand 1 must be {wanted} but got {kind}")))
}

/// Whether the array or set holds `true` (any) or only `true` (all).
fn truth(name: &str, params: &[Ref<Expr>], arg: &Value, every: bool) -> Result<Value> {
    let is_true = |v: &Value| matches!(v, Value::Bool(true));
    let result = match arg {
        Value::Array(a) if every => a.iter().all(is_true),
        Value::Array(a) => a.iter().any(is_true),
        Value::Set(s) if every => s.iter().all(is_true),
        Value::Set(s) => s.contains(&Value::Bool(true)),
        other => {
            return Err(operand_error(
                name,
                &params[0],
                "one of {array, set}",
                other,
            ))
        }
    };
    Ok(Value::Bool(result))
}

fn all(span: &Span, params: &[Ref<Expr>], args: &[Value], _strict: bool) -> Result<Value> {
    ensure_args_count(span, "all", params, args, 1)?;
    truth("all", params, &args[0], true)
}

fn any(span: &Span, params: &[Ref<Expr>], args: &[Value], _strict: bool) -> Result<Value> {
    ensure_args_count(span, "any", params, args, 1)?;
    truth("any", params, &args[0], false)
}

fn cast_array(span: &Span, params: &[Ref<Expr>], args: &[Value], _strict: bool) -> Result<Value> {
    ensure_args_count(span, "cast_array", params, args, 1)?;
    match &args[0] {
        Value::Array(_) => Ok(args[0].clone()),
        // OPA lists a set's elements in its sorted order.
        Value::Set(s) => Ok(Value::from(s.iter_sorted().cloned().collect::<Vec<_>>())),
        other => Err(operand_error(
            "cast_array",
            &params[0],
            "one of {array, set}",
            other,
        )),
    }
}

fn cast_set(span: &Span, params: &[Ref<Expr>], args: &[Value], _strict: bool) -> Result<Value> {
    ensure_args_count(span, "cast_set", params, args, 1)?;
    match &args[0] {
        Value::Set(_) => Ok(args[0].clone()),
        Value::Array(a) => Ok(Value::from(
            a.iter().cloned().collect::<alloc::collections::BTreeSet<_>>(),
        )),
        other => Err(operand_error(
            "cast_set",
            &params[0],
            "one of {array, set}",
            other,
        )),
    }
}

/// `cast_string`, `cast_boolean`, `cast_null`, `cast_object`: the value if it has the kind,
/// else an operand error.
fn cast_kind(
    span: &Span,
    params: &[Ref<Expr>],
    args: &[Value],
    name: &'static str,
    wanted: &str,
    has_kind: fn(&Value) -> bool,
) -> Result<Value> {
    ensure_args_count(span, name, params, args, 1)?;
    if has_kind(&args[0]) {
        Ok(args[0].clone())
    } else {
        Err(operand_error(name, &params[0], wanted, &args[0]))
    }
}

fn cast_string(span: &Span, params: &[Ref<Expr>], args: &[Value], _strict: bool) -> Result<Value> {
    cast_kind(span, params, args, "cast_string", "string", |v| {
        matches!(v, Value::String(_))
    })
}

fn cast_boolean(span: &Span, params: &[Ref<Expr>], args: &[Value], _strict: bool) -> Result<Value> {
    cast_kind(span, params, args, "cast_boolean", "boolean", |v| {
        matches!(v, Value::Bool(_))
    })
}

fn cast_null(span: &Span, params: &[Ref<Expr>], args: &[Value], _strict: bool) -> Result<Value> {
    cast_kind(span, params, args, "cast_null", "null", |v| {
        matches!(v, Value::Null)
    })
}

fn cast_object(span: &Span, params: &[Ref<Expr>], args: &[Value], _strict: bool) -> Result<Value> {
    cast_kind(span, params, args, "cast_object", "object", |v| {
        matches!(v, Value::Object(_))
    })
}

fn set_diff(span: &Span, params: &[Ref<Expr>], args: &[Value], _strict: bool) -> Result<Value> {
    ensure_args_count(span, "set_diff", params, args, 2)?;
    let a = ensure_set("set_diff", &params[0], args[0].clone())?;
    let b = ensure_set("set_diff", &params[1], args[1].clone())?;
    Ok(Value::from(a.difference(&b)))
}
