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
//! dynamic parts of their references, and comprehensions (their bodies stand alone).

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

/// The operands of the negated expression `expr` that OPA evaluates before the negation.
pub(super) fn negation_operands(expr: &ExprRef) -> Vec<ExprRef> {
    let mut operands = Vec::new();
    negated(expr, &mut operands);
    operands
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

/// An operand of `==` or `=`: a reference or variable stays, anything else is an operand.
fn unified(expr: &ExprRef, out: &mut Vec<ExprRef>) {
    match expr.as_ref() {
        Expr::RefDot { .. } | Expr::RefBrack { .. } => reference_parts(expr, out),
        Expr::Var { .. } => {}
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

/// An operand: evaluated before the negation, except literals, comprehensions (always
/// defined) and collection literals (their elements are operands).
fn operand(expr: &ExprRef, out: &mut Vec<ExprRef>) {
    match expr.as_ref() {
        Expr::String { .. }
        | Expr::RawString { .. }
        | Expr::Number { .. }
        | Expr::Bool { .. }
        | Expr::Null { .. }
        | Expr::ArrayCompr { .. }
        | Expr::SetCompr { .. }
        | Expr::ObjectCompr { .. } => {}
        Expr::Array { .. } | Expr::Set { .. } | Expr::Object { .. } => term(expr, out),
        Expr::Var { value, .. } if matches!(value, Value::String(name) if name.as_ref() == "_") => {
        }
        _ => out.push(expr.clone()),
    }
}
