//! One walk over parsed Rego rules (regorus's AST), for the analyses that read a bundle's
//! modules: what a policy reads of `input` (`reads`) and `policy-bundler check`'s lints. A
//! `Visitor` sees every expression and decides whether its sub-expressions are walked, so each
//! analysis states only what it does differently.

use regorus::unstable::{Expr, Literal, Query, Rule, RuleAssign, RuleHead, WithModifier};

pub trait Visitor {
    /// An expression, before its sub-expressions; `false` skips them (the visitor may walk the
    /// ones it wants itself, with `expr`).
    fn expr(&mut self, expr: &Expr) -> bool;

    /// A `with` modifier; `false` skips its target and value.
    fn with(&mut self, _with: &WithModifier) -> bool {
        true
    }

    /// The reference a rule head defines (`p`, `p[k]`, `f`), which names the rule: not walked
    /// unless the visitor does it here.
    fn head(&mut self, _refr: &Expr) {}
}

/// A rule's head values (keys, values, function arguments) and bodies.
pub fn rule(rule: &Rule, visitor: &mut impl Visitor) {
    match rule {
        Rule::Spec { head, bodies, .. } => {
            match head {
                RuleHead::Compr { refr, assign, .. } => {
                    visitor.head(refr);
                    self::assign(assign.as_ref(), visitor);
                }
                RuleHead::Set { refr, key, .. } => {
                    visitor.head(refr);
                    if let Some(key) = key {
                        expr(key, visitor);
                    }
                }
                RuleHead::Func {
                    refr, args, assign, ..
                } => {
                    visitor.head(refr);
                    args.iter().for_each(|arg| expr(arg, visitor));
                    self::assign(assign.as_ref(), visitor);
                }
            }
            for body in bodies {
                self::assign(body.assign.as_ref(), visitor);
                query(&body.query, visitor);
            }
        }
        Rule::Default {
            refr, args, value, ..
        } => {
            visitor.head(refr);
            args.iter().for_each(|arg| expr(arg, visitor));
            expr(value, visitor);
        }
    }
}

fn assign(assign: Option<&RuleAssign>, visitor: &mut impl Visitor) {
    if let Some(assign) = assign {
        expr(&assign.value, visitor);
    }
}

pub fn query(q: &Query, visitor: &mut impl Visitor) {
    for stmt in &q.stmts {
        match &stmt.literal {
            Literal::SomeVars { .. } => {}
            Literal::SomeIn {
                key,
                value,
                collection,
                ..
            } => membership(key.as_deref(), value, collection, visitor),
            Literal::Expr { expr: e, .. } | Literal::NotExpr { expr: e, .. } => expr(e, visitor),
            Literal::Every {
                domain, query: q, ..
            } => {
                expr(domain, visitor);
                query(q, visitor);
            }
        }
        for with in &stmt.with_mods {
            if visitor.with(with) {
                expr(&with.refr, visitor);
                expr(&with.r#as, visitor);
            }
        }
    }
}

/// `some k, v in c` and `k, v in c`.
fn membership(key: Option<&Expr>, value: &Expr, collection: &Expr, visitor: &mut impl Visitor) {
    if let Some(key) = key {
        expr(key, visitor);
    }
    expr(value, visitor);
    expr(collection, visitor);
}

pub fn expr(e: &Expr, visitor: &mut impl Visitor) {
    if !visitor.expr(e) {
        return;
    }
    match e {
        Expr::String { .. }
        | Expr::RawString { .. }
        | Expr::Number { .. }
        | Expr::Bool { .. }
        | Expr::Null { .. }
        | Expr::Var { .. } => {}
        Expr::Array { items, .. } | Expr::Set { items, .. } => {
            items.iter().for_each(|item| expr(item, visitor));
        }
        Expr::Object { fields, .. } => {
            for (_, key, value) in fields {
                expr(key, visitor);
                expr(value, visitor);
            }
        }
        Expr::ArrayCompr { term, query: q, .. } | Expr::SetCompr { term, query: q, .. } => {
            expr(term, visitor);
            query(q, visitor);
        }
        Expr::ObjectCompr {
            key,
            value,
            query: q,
            ..
        } => {
            expr(key, visitor);
            expr(value, visitor);
            query(q, visitor);
        }
        Expr::Call { fcn, params, .. } => {
            expr(fcn, visitor);
            params.iter().for_each(|param| expr(param, visitor));
        }
        Expr::UnaryExpr { expr: inner, .. } => expr(inner, visitor),
        Expr::RefDot { refr, .. } => expr(refr, visitor),
        Expr::RefBrack { refr, index, .. } => {
            expr(refr, visitor);
            expr(index, visitor);
        }
        Expr::BinExpr { lhs, rhs, .. }
        | Expr::BoolExpr { lhs, rhs, .. }
        | Expr::ArithExpr { lhs, rhs, .. }
        | Expr::AssignExpr { lhs, rhs, .. } => {
            expr(lhs, visitor);
            expr(rhs, visitor);
        }
        Expr::Membership {
            key,
            value,
            collection,
            ..
        } => membership(key.as_deref(), value, collection, visitor),
    }
}
