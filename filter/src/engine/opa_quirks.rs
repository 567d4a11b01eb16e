//! Rego that OPA v1.20 accepts but evaluates against its own rules, refused here with a code
//! instead of answered differently.
//!
//! - `negated-true`: a rule or function whose only condition is `not true`. OPA decides it as
//!   if the condition held when its head has a reference or a call (`r := input if { not true }`
//!   is `input`, `s contains input if { not true }` holds it, `f(x) := input if { not true }`
//!   answers `input`), and as if it failed otherwise (`r := 1 if { not true }` is undefined).
//!   The condition never holds; no policy means it.

use regorus::unstable::{Expr, Literal, Module, Ref, Rule};
use regorus::Value;

use super::compile_checks::{place, CompileError};

/// The rules of `modules` OPA evaluates against its own rules, by place.
pub fn check(modules: &[Ref<Module>]) -> Vec<CompileError> {
    let mut errors = Vec::new();
    for module in modules {
        for rule in &module.policy {
            let Rule::Spec { bodies, .. } = rule.as_ref() else {
                continue;
            };
            for body in bodies {
                let [statement] = body.query.stmts.as_slice() else {
                    continue;
                };
                let Literal::NotExpr { span, expr } = &statement.literal else {
                    continue;
                };
                if !matches!(
                    expr.as_ref(),
                    Expr::Bool {
                        value: Value::Bool(true),
                        ..
                    }
                ) {
                    continue;
                }
                let (file, line, column) = place(span);
                errors.push(CompileError {
                    file,
                    line,
                    column,
                    code: crate::codes::NEGATED_TRUE.name,
                    message: "a rule or function whose only condition is `not true`: OPA \
                              v1.20 decides it as if the condition held when the head has a \
                              reference or a call; remove it"
                        .to_string(),
                });
            }
        }
    }
    errors
}
