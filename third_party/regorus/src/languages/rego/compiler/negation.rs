// Copyright (c) Microsoft Corporation.
// Licensed under the MIT License.
#![allow(clippy::pattern_type_mismatch)]

//! Which parts of a negated expression OPA evaluates before the negation.
//!
//! OPA's compiler moves references and calls that are operands of a call, and the elements
//! of collection literals, out of an expression into assignments before it (`not
//! startswith(input.path, "/admin")` runs as `__local0__ = input.path; not
//! startswith(__local0__, "/admin")`), and it does so for negated expressions too. So when
//! such an operand is undefined the body fails; the negation does not succeed. The negated
//! term itself stays inside (`not input.admin` succeeds when `input.admin` is undefined), as
//! do the operands of `==` and `=` (unification: `not input.x == 1` succeeds) apart from the
//! dynamic parts of their references.
//!
//! The order matters when one of them fails the evaluation (a rule conflict inside a
//! comprehension): OPA moves references with constant keys into `input` or base data first,
//! then the rest (comprehensions, references with variable keys, rule references, calls) in
//! the order they appear. So `not ([r | …] < input.missing)` is undefined, but
//! `not ([r | …] < data.d[k])` fails when `r` conflicts, and `not (data.d[k] > [r | …])` is
//! undefined (answers from OPA v1.20.2).

use super::Compiler;
use crate::ast::{AssignOp, BoolOp, Expr, ExprRef};
use crate::Value;
use alloc::vec::Vec;

impl Compiler<'_> {
    /// With `import future.keywords.not` (or all of `future.keywords`) OPA moves nothing out
    /// of a negated expression in that module: `not startswith(input.path, "/admin")`
    /// succeeds when the path is undefined.
    pub(super) fn negation_keeps_operands(&self) -> bool {
        self.policy
            .get_modules()
            .get(self.current_module_index as usize)
            .is_some_and(|module| {
                module.imports.iter().any(|import| {
                    matches!(
                        import.refr.span().text(),
                        "future.keywords" | "future.keywords.not"
                    )
                })
            })
    }
}

/// The operands of the negated expression `expr` that OPA evaluates before the negation, in
/// OPA's order; `is_rule_path` tells whether a rule is defined at, above or below a path of
/// `data` (`data.a.b`).
pub(super) fn negation_operands(
    expr: &ExprRef,
    is_rule_path: impl Fn(&str) -> bool,
) -> Vec<ExprRef> {
    let mut operands = Vec::new();
    negated(expr, &mut operands);
    in_opa_order(operands, is_rule_path)
}

/// `operands` (moved out of a negated expression, in the order they appear) in the order OPA
/// evaluates them: references with constant keys into `input` or base data, then the rest,
/// each group in its own order.
pub(crate) fn in_opa_order(
    operands: Vec<ExprRef>,
    is_rule_path: impl Fn(&str) -> bool,
) -> Vec<ExprRef> {
    let (base, rest): (Vec<_>, Vec<_>) = operands.into_iter().partition(|e| {
        constant_path(e).is_some_and(|path| {
            path == "input" || path.starts_with("input.") || !is_rule_path(&path)
        })
    });
    base.into_iter().chain(rest).collect()
}

/// `input.a.b` or `data.a["b"]` as `input.a.b` / `data.a.b`, when every key is a constant
/// string.
fn constant_path(expr: &ExprRef) -> Option<alloc::string::String> {
    match expr.as_ref() {
        Expr::Var {
            value: Value::String(root),
            ..
        } if matches!(root.as_ref(), "input" | "data") => {
            Some(alloc::string::String::from(root.as_ref()))
        }
        Expr::RefDot { refr, field, .. } => {
            let Value::String(key) = &field.1 else {
                return None;
            };
            Some(alloc::format!("{}.{key}", constant_path(refr)?))
        }
        Expr::RefBrack { refr, index, .. } => match index.as_ref() {
            Expr::String {
                value: Value::String(key),
                ..
            } => Some(alloc::format!("{}.{key}", constant_path(refr)?)),
            _ => None,
        },
        _ => None,
    }
}

/// The negated expression itself.
fn negated(expr: &ExprRef, out: &mut Vec<ExprRef>) {
    match expr.as_ref() {
        Expr::BoolExpr {
            op: BoolOp::Eq,
            lhs,
            rhs,
            ..
        }
        | Expr::AssignExpr {
            op: AssignOp::Eq,
            lhs,
            rhs,
            ..
        } => {
            unified(lhs, out);
            unified(rhs, out);
        }
        Expr::BoolExpr { lhs, rhs, .. }
        | Expr::ArithExpr { lhs, rhs, .. }
        | Expr::BinExpr { lhs, rhs, .. } => {
            operand(lhs, out);
            operand(rhs, out);
        }
        #[cfg(feature = "rego-extensions")]
        Expr::OrExpr { lhs, rhs, .. } => {
            operand(lhs, out);
            operand(rhs, out);
        }
        Expr::UnaryExpr { expr, .. } => operand(expr, out),
        // `equal(a, b)` is `a == b` (OPA rewrites both to a unification).
        Expr::Call { fcn, params, .. } if crate::ast::is_equal_call(fcn, params) => {
            params.iter().for_each(|p| unified(p, out))
        }
        Expr::Call { params, .. } => params.iter().for_each(|p| operand(p, out)),
        Expr::Membership {
            key,
            value,
            collection,
            ..
        } => {
            key.iter().for_each(|k| operand(k, out));
            operand(value, out);
            operand(collection, out);
        }
        _ => term(expr, out),
    }
}

/// An operand of `==` or `=`: a reference, variable or comprehension stays, anything else is
/// an operand.
fn unified(expr: &ExprRef, out: &mut Vec<ExprRef>) {
    match expr.as_ref() {
        Expr::RefDot { .. } | Expr::RefBrack { .. } => reference_parts(expr, out),
        Expr::Var { .. }
        | Expr::ArrayCompr { .. }
        | Expr::SetCompr { .. }
        | Expr::ObjectCompr { .. } => {}
        _ => operand(expr, out),
    }
}

/// A term that is not evaluated outside: only what it contains may be.
fn term(expr: &ExprRef, out: &mut Vec<ExprRef>) {
    match expr.as_ref() {
        Expr::RefDot { .. } | Expr::RefBrack { .. } => reference_parts(expr, out),
        Expr::Array { items, .. } | Expr::Set { items, .. } => {
            items.iter().for_each(|item| operand(item, out))
        }
        Expr::Object { fields, .. } => fields.iter().for_each(|(_, key, value)| {
            operand(key, out);
            operand(value, out);
        }),
        _ => {}
    }
}

/// The dynamic keys of a reference and a subject that is not a variable.
fn reference_parts(expr: &ExprRef, out: &mut Vec<ExprRef>) {
    match expr.as_ref() {
        Expr::RefDot { refr, .. } => reference_parts(refr, out),
        Expr::RefBrack { refr, index, .. } => {
            operand(index, out);
            reference_parts(refr, out);
        }
        Expr::Var { .. } => {}
        _ => operand(expr, out),
    }
}

/// An operand: evaluated before the negation, except literals and collection literals
/// (their elements are operands). A comprehension is always defined, but evaluating it may
/// fail the evaluation, in OPA's order (`in_opa_order`).
fn operand(expr: &ExprRef, out: &mut Vec<ExprRef>) {
    match expr.as_ref() {
        Expr::String { .. }
        | Expr::RawString { .. }
        | Expr::Number { .. }
        | Expr::Bool { .. }
        | Expr::Null { .. } => {}
        Expr::Array { .. } | Expr::Set { .. } | Expr::Object { .. } => term(expr, out),
        Expr::Var { value, .. } if matches!(value, Value::String(name) if name.as_ref() == "_") => {
        }
        _ => out.push(expr.clone()),
    }
}

/// Whether one of `rules` (full paths, `data.t.p`) is defined at, above or below `path`.
pub(crate) fn is_rule_path<'a>(
    rules: impl Iterator<Item = &'a alloc::string::String>,
    path: &str,
) -> bool {
    rules.into_iter().any(|rule| {
        rule == path
            || rule
                .strip_prefix(path)
                .is_some_and(|rest| rest.starts_with('.'))
            || path
                .strip_prefix(rule.as_str())
                .is_some_and(|rest| rest.starts_with('.'))
    })
}
