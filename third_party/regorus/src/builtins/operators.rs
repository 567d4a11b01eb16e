// Copyright (c) Microsoft Corporation.
// Licensed under the MIT License.

//! OPA's operators called by their builtin names (`plus(1, 2)` is `1 + 2`, `lt(a, b)` is
//! `a < b`, `and(s, t)` is `s & t`): the same evaluation as the infix forms.

#![allow(clippy::pattern_type_mismatch)]

use crate::ast::{ArithOp, BoolOp, Expr, Ref};
use crate::builtins;
use crate::builtins::comparison::compare;
use crate::builtins::numbers::arithmetic_operation;
use crate::builtins::sets;
use crate::builtins::utils::ensure_args_count;
use crate::lexer::Span;
use crate::value::Value;

use anyhow::Result;

pub fn register(m: &mut builtins::BuiltinsMap<&'static str, builtins::BuiltinFcn>) {
    m.insert("plus", (plus, 2));
    m.insert("minus", (minus, 2));
    m.insert("mul", (mul, 2));
    m.insert("div", (div, 2));
    m.insert("rem", (rem, 2));
    m.insert("equal", (equal, 2));
    m.insert("neq", (neq, 2));
    m.insert("lt", (lt, 2));
    m.insert("lte", (lte, 2));
    m.insert("gt", (gt, 2));
    m.insert("gte", (gte, 2));
    m.insert("and", (and, 2));
    m.insert("or", (or, 2));
}

fn arithmetic(
    name: &'static str,
    op: ArithOp,
    span: &Span,
    params: &[Ref<Expr>],
    args: &[Value],
    strict: bool,
) -> Result<Value> {
    ensure_args_count(span, name, params, args, 2)?;
    arithmetic_operation(
        span,
        &op,
        &params[0],
        &params[1],
        args[0].clone(),
        args[1].clone(),
        strict,
    )
}

fn plus(span: &Span, params: &[Ref<Expr>], args: &[Value], strict: bool) -> Result<Value> {
    arithmetic("plus", ArithOp::Add, span, params, args, strict)
}

/// `minus` is a set difference when either operand is a set, as `-` is.
fn minus(span: &Span, params: &[Ref<Expr>], args: &[Value], strict: bool) -> Result<Value> {
    ensure_args_count(span, "minus", params, args, 2)?;
    match (&args[0], &args[1]) {
        (Value::Set(_), _) | (_, Value::Set(_)) => {
            sets::difference(&params[0], &params[1], args[0].clone(), args[1].clone())
        }
        _ => arithmetic("minus", ArithOp::Sub, span, params, args, strict),
    }
}

fn mul(span: &Span, params: &[Ref<Expr>], args: &[Value], strict: bool) -> Result<Value> {
    arithmetic("mul", ArithOp::Mul, span, params, args, strict)
}

fn div(span: &Span, params: &[Ref<Expr>], args: &[Value], strict: bool) -> Result<Value> {
    arithmetic("div", ArithOp::Div, span, params, args, strict)
}

fn rem(span: &Span, params: &[Ref<Expr>], args: &[Value], strict: bool) -> Result<Value> {
    arithmetic("rem", ArithOp::Mod, span, params, args, strict)
}

fn comparison(
    name: &'static str,
    op: BoolOp,
    span: &Span,
    params: &[Ref<Expr>],
    args: &[Value],
) -> Result<Value> {
    ensure_args_count(span, name, params, args, 2)?;
    compare(&op, &args[0], &args[1])
}

fn equal(span: &Span, params: &[Ref<Expr>], args: &[Value], _strict: bool) -> Result<Value> {
    comparison("equal", BoolOp::Eq, span, params, args)
}

fn neq(span: &Span, params: &[Ref<Expr>], args: &[Value], _strict: bool) -> Result<Value> {
    comparison("neq", BoolOp::Ne, span, params, args)
}

fn lt(span: &Span, params: &[Ref<Expr>], args: &[Value], _strict: bool) -> Result<Value> {
    comparison("lt", BoolOp::Lt, span, params, args)
}

fn lte(span: &Span, params: &[Ref<Expr>], args: &[Value], _strict: bool) -> Result<Value> {
    comparison("lte", BoolOp::Le, span, params, args)
}

fn gt(span: &Span, params: &[Ref<Expr>], args: &[Value], _strict: bool) -> Result<Value> {
    comparison("gt", BoolOp::Gt, span, params, args)
}

fn gte(span: &Span, params: &[Ref<Expr>], args: &[Value], _strict: bool) -> Result<Value> {
    comparison("gte", BoolOp::Ge, span, params, args)
}

fn and(span: &Span, params: &[Ref<Expr>], args: &[Value], _strict: bool) -> Result<Value> {
    ensure_args_count(span, "and", params, args, 2)?;
    sets::intersection(&params[0], &params[1], args[0].clone(), args[1].clone())
}

fn or(span: &Span, params: &[Ref<Expr>], args: &[Value], _strict: bool) -> Result<Value> {
    ensure_args_count(span, "or", params, args, 2)?;
    sets::union(&params[0], &params[1], args[0].clone(), args[1].clone())
}
