//! Rego that OPA v1.20 accepts but evaluates against its own rules, refused here with a code
//! instead of answered differently.
//!
//! - `negated-true`: a rule or function whose only condition is `not true`. OPA decides it as
//!   if the condition held when its head has a reference or a call (`r := input if { not true }`
//!   is `input`, `s contains input if { not true }` holds it, `f(x) := input if { not true }`
//!   answers `input`), and as if it failed otherwise (`r := 1 if { not true }` is undefined).
//!   The condition never holds; no policy means it.
//! - `function-named-equal`: a function of the policy named `equal`, OPA's name of `==`. The
//!   engine evaluates `not equal(a, b)` as `not a == b` (OPA rewrites both to a unification,
//!   so an undefined operand does not fail the body); a function of that name would make the
//!   bare call the policy's own.
//! - `opa-comprehension-index`: a comprehension that OPA's compiler indexes (it evaluates the
//!   body once, on its own, and looks its results up by the enclosing body's variables the body
//!   binds) whose body reads one of those variables in a call or comparison before binding it:
//!   OPA fails such a body with `eval_internal_error` (`v = 1; x := [data.r[v] | input > v]`:
//!   "gt called with operand 2 that requires evaluation: v").
use std::collections::BTreeSet;

use regorus::unstable::{BoolOp, Expr, Literal, LiteralStmt, Module, Query, Ref, Rule, RuleHead};
use regorus::utils::get_path_string;
use regorus::Value;

use super::compile_checks::{
    children, collect_scope_vars, collect_vars, declared_by, error, is_call, pattern_vars,
    with_binders, Binder, CompileError,
};
use super::walk::{self, Visitor};

/// What OPA evaluates against its own rules in `modules`, by place. `host_functions` are the
/// functions the filter adds to regorus's builtins (name, argument count).
pub fn check(modules: &[Ref<Module>], host_functions: &[(&str, usize)]) -> Vec<CompileError> {
    let mut errors = negated_true(modules);
    errors.extend(functions_named_equal(modules));
    errors.extend(comprehension_index(modules, host_functions));
    errors.sort();
    errors.dedup();
    errors
}

/// Functions of the policy named `equal`.
fn functions_named_equal(modules: &[Ref<Module>]) -> Vec<CompileError> {
    let mut errors = Vec::new();
    for module in modules {
        for rule in &module.policy {
            let Rule::Spec {
                head: RuleHead::Func { refr, span, .. },
                ..
            } = rule.as_ref()
            else {
                continue;
            };
            if get_path_string(refr, None).ok().as_deref() != Some("equal") {
                continue;
            }
            errors.push(error(
                span,
                crate::codes::FUNCTION_NAMED_EQUAL.name,
                "a function named `equal` shadows OPA's name of `==`, which this filter reads \
                 as the builtin; rename the function"
                    .to_string(),
            ));
        }
    }
    errors
}

/// Rules and functions whose only condition is `not true`.
fn negated_true(modules: &[Ref<Module>]) -> Vec<CompileError> {
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
                errors.push(error(
                    span,
                    crate::codes::NEGATED_TRUE.name,
                    "a rule or function whose only condition is `not true`: OPA v1.20 decides \
                     it as if the condition held when the head has a reference or a call; \
                     remove it"
                        .to_string(),
                ));
            }
        }
    }
    errors
}

const WILDCARD: &str = "_";

/// Comprehensions OPA indexes and then fails to evaluate, by place of the failing read.
///
/// OPA (`buildComprehensionIndices`, `getComprehensionIndex` in its compiler) walks each
/// rule's bodies, in the order its compiler leaves them, then the bodies nested in them, with
/// one growing set of candidate keys: the function's arguments and the variables of every
/// expression walked so far. Its compiler first moves each comprehension out of the expression
/// holding it into `__local = <comprehension>` (head values included), which it indexes unless
/// the expression has a `with`, when the comprehension's body alone (its term appended) binds
/// all its variables in one pass, no reference in it has a candidate key it has not seen yet
/// among its variables, no comprehension nested in it mentions a candidate, and it binds some
/// candidate. It then evaluates that body with nothing of the enclosing body bound: a call or
/// comparison (not `==`, which is unification) reading an enclosing variable before the body
/// binds it fails. Where this model is unsure it lets the policy through.
fn comprehension_index(
    modules: &[Ref<Module>],
    host_functions: &[(&str, usize)],
) -> Vec<CompileError> {
    let mut errors = Vec::new();
    with_binders(modules, host_functions, |module, binder| {
        for rule in &module.policy {
            let Rule::Spec { head, bodies, .. } = rule.as_ref() else {
                continue;
            };
            let mut args = BTreeSet::new();
            let head_value = match head {
                RuleHead::Compr { assign, .. } => assign.as_ref(),
                RuleHead::Func {
                    args: params,
                    assign,
                    ..
                } => {
                    for param in params {
                        pattern_vars(param, &mut args);
                    }
                    assign.as_ref()
                }
                RuleHead::Set { .. } => None,
            };
            args.remove(WILDCARD);
            let mut index = Index {
                binder: &mut *binder,
                errors: &mut errors,
                candidates: BTreeSet::new(),
            };
            if bodies.is_empty() {
                index.candidates.clone_from(&args);
                let values: Vec<&Expr> = head_value.iter().map(|a| a.value.as_ref()).collect();
                index.body(&[], &values, &args, &args);
            }
            for body in bodies {
                // Each body (`else` included) is a rule of its own to OPA.
                index.candidates.clone_from(&args);
                let values: Vec<&Expr> = body
                    .assign
                    .as_ref()
                    .or(head_value)
                    .map(|a| a.value.as_ref())
                    .into_iter()
                    .collect();
                index.body(&body.query.stmts, &values, &args, &args);
            }
        }
    });
    errors
}

struct Index<'w, 's, 'a> {
    binder: &'w mut Binder<'s, 'a>,
    errors: &'w mut Vec<CompileError>,
    /// OPA's candidate keys so far.
    candidates: BTreeSet<String>,
}

/// A statement in the order OPA's compiler runs a body, with the variables bound before it.
type Ordered<'q> = (&'q LiteralStmt, BTreeSet<String>);

impl Index<'_, '_, '_> {
    /// The statements of a body in the order OPA runs them (each once what it reads is bound,
    /// as `compile_checks` orders them) and what is bound after them; `None` if some statement
    /// never can run.
    fn order<'q>(
        &mut self,
        stmts: &'q [LiteralStmt],
        declared: &BTreeSet<String>,
        bound: &BTreeSet<String>,
    ) -> Option<(Vec<Ordered<'q>>, BTreeSet<String>)> {
        let mut bound = bound.clone();
        let mut order = Vec::new();
        let mut pending: Vec<&LiteralStmt> = stmts.iter().collect();
        while !pending.is_empty() {
            let mut still = Vec::new();
            for stmt in &pending {
                let binding = self.binder.statement(stmt, declared, &bound);
                if binding.unbound.is_empty() {
                    order.push((*stmt, bound.clone()));
                    bound.extend(binding.binds);
                } else {
                    still.push(*stmt);
                }
            }
            if still.len() == pending.len() {
                return None;
            }
            pending = still;
        }
        Some((order, bound))
    }

    /// One body (`stmts`, then the `values` OPA appends to it: a rule's head value, a
    /// comprehension's term), its comprehensions, then the bodies nested in it.
    fn body(
        &mut self,
        stmts: &[LiteralStmt],
        values: &[&Expr],
        declared: &BTreeSet<String>,
        bound: &BTreeSet<String>,
    ) {
        let mut own = BTreeSet::new();
        for stmt in stmts {
            declared_by(&stmt.literal, &mut own);
        }
        let mut declared = declared.clone();
        declared.extend(own.iter().cloned());
        let bound: BTreeSet<String> = bound.difference(&own).cloned().collect();
        let Some((order, after)) = self.order(stmts, &declared, &bound) else {
            return;
        };
        for (stmt, before) in &order {
            if stmt.with_mods.is_empty() {
                for comprehension in statement_comprehensions(stmt) {
                    self.comprehension(comprehension, &declared, before);
                }
            }
            statement_vars(stmt, &mut self.candidates);
        }
        for value in values {
            for comprehension in comprehensions(value) {
                self.comprehension(comprehension, &declared, &after);
            }
        }
        // OPA walks the nested bodies after the whole body, with the candidates grown.
        for (stmt, before) in &order {
            let mut bound = before.clone();
            bound.extend(self.binder.statement(stmt, &declared, before).binds);
            for comprehension in statement_comprehensions(stmt) {
                if let Some((query, terms)) = parts(comprehension) {
                    self.body(&query.stmts, &terms, &declared, &bound);
                }
            }
            if let Literal::Every {
                key, value, query, ..
            } = &stmt.literal
            {
                let mut declared = declared.clone();
                for var in key.iter().chain(std::iter::once(value)) {
                    declared.insert(var.text().to_string());
                    bound.insert(var.text().to_string());
                }
                self.body(&query.stmts, &[], &declared, &bound);
            }
        }
        for value in values {
            for comprehension in comprehensions(value) {
                if let Some((query, terms)) = parts(comprehension) {
                    self.body(&query.stmts, &terms, &declared, &after);
                }
            }
        }
    }

    /// A comprehension of the body, where `bound` is bound: refused when OPA indexes it and
    /// its body reads an enclosing variable before binding it.
    fn comprehension(
        &mut self,
        comprehension: &Expr,
        declared: &BTreeSet<String>,
        bound: &BTreeSet<String>,
    ) {
        let Some((query, terms)) = parts(comprehension) else {
            return;
        };
        let mut own = BTreeSet::new();
        for stmt in &query.stmts {
            declared_by(&stmt.literal, &mut own);
        }
        let mut declared = declared.clone();
        declared.extend(own.iter().cloned());
        let candidates: BTreeSet<String> = self
            .candidates
            .iter()
            .filter(|c| *c != WILDCARD && !own.contains(*c) && self.binder.is_local(c, &declared))
            .cloned()
            .collect();
        if candidates.is_empty() {
            return;
        }
        let outer: BTreeSet<String> = bound.difference(&own).cloned().collect();
        let Some((order, _)) = self.order(&query.stmts, &declared, &outer) else {
            return;
        };
        // OPA appends the term as an expression when it needs evaluating.
        let terms: Vec<&Expr> = terms.into_iter().filter(|t| evaluates(t)).collect();
        // The body alone binds all its variables, in one pass.
        let mut outputs = BTreeSet::new();
        let mut vars = BTreeSet::new();
        for (stmt, _) in &order {
            let binding = self.binder.evaluated(stmt, &declared, &outputs);
            let binder = &*self.binder;
            let is_bound = |name: &str| outputs.contains(name) || !binder.is_local(name, &declared);
            let used = used_call_reads(stmt, &is_bound);
            if binding
                .unbound
                .iter()
                .any(|(_, span)| used.contains(&(span.line, span.col)))
            {
                return;
            }
            outputs.extend(binding.binds);
            statement_vars(stmt, &mut vars);
        }
        for term in &terms {
            let binding = self.binder.value(term, &declared, &outputs);
            if !binding.unbound.is_empty() {
                return;
            }
            outputs.extend(binding.binds);
            collect_scope_vars(term, &mut vars);
        }
        vars.retain(|v| v != WILDCARD && self.binder.is_local(v, &declared));
        if !vars.is_subset(&outputs) || candidates.is_disjoint(&outputs) {
            return;
        }
        // No reference has a candidate key not seen before it (counted by statement, which
        // sees less than OPA and so indexes less); no `walk`; no nested comprehension
        // mentions a candidate.
        let mut seen = BTreeSet::new();
        let stmts = order.iter().map(|(stmt, _)| Some(*stmt));
        for (stmt, term) in stmts
            .map(|s| (s, None))
            .chain(terms.iter().map(|t| (None, Some(*t))))
        {
            let mut found = Found::new(self.binder);
            match (stmt, term) {
                (Some(stmt), _) => statement_walk(stmt, &mut found),
                (None, Some(term)) => walk::expr(term, &mut found),
                _ => {}
            }
            if found.walk
                || found.nested.iter().any(|v| candidates.contains(v))
                || found
                    .ref_keys
                    .iter()
                    .any(|v| candidates.contains(v) && !seen.contains(v))
            {
                return;
            }
            seen.extend(found.vars);
        }
        // Evaluated alone: the first expression that cannot run.
        let mut alone = BTreeSet::new();
        for (stmt, _) in &order {
            let binding = self.binder.evaluated(stmt, &declared, &alone);
            if binding.unbound.is_empty() {
                alone.extend(binding.binds);
                continue;
            }
            let mut found = Found::new(self.binder);
            statement_walk(stmt, &mut found);
            let read = binding.unbound.iter().find(|(name, span)| {
                outer.contains(name)
                    && !binding.binds.contains(name)
                    && found.operands.contains(&(span.line, span.col))
            });
            if let Some((name, span)) = read {
                // What binds it when nothing else is bound: the expression to move first.
                let mut binder = None;
                for (other, _) in &order {
                    let binds = self
                        .binder
                        .evaluated(other, &declared, &BTreeSet::new())
                        .binds;
                    if binds.contains(name) {
                        binder = Some(other.span.text().to_string());
                        break;
                    }
                }
                for term in &terms {
                    if binder.is_none()
                        && self
                            .binder
                            .value(term, &declared, &BTreeSet::new())
                            .binds
                            .contains(name)
                    {
                        binder = Some(term.span().text().to_string());
                    }
                }
                let hint = match binder {
                    Some(text) => format!(" (put `{text}` before `{}`)", stmt.span.text()),
                    None => String::new(),
                };
                self.errors.push(error(
                    span,
                    crate::codes::OPA_COMPREHENSION_INDEX.name,
                    format!(
                        "OPA v1.20 evaluates this comprehension on its own (its comprehension \
                         index), before `{name}` is bound, and fails with an internal error \
                         reading `{name}` here; bind `{name}` inside the comprehension before \
                         this expression{hint}"
                    ),
                ));
            }
            return;
        }
    }
}

/// A comprehension's body and its terms.
fn parts(comprehension: &Expr) -> Option<(&Query, Vec<&Expr>)> {
    match comprehension {
        Expr::ArrayCompr { term, query, .. } | Expr::SetCompr { term, query, .. } => {
            Some((query.as_ref(), vec![term.as_ref()]))
        }
        Expr::ObjectCompr {
            key, value, query, ..
        } => Some((query.as_ref(), vec![key.as_ref(), value.as_ref()])),
        _ => None,
    }
}

/// Whether OPA appends a comprehension's term to its body: it has a reference, a call or a
/// comprehension.
fn evaluates(term: &Expr) -> bool {
    struct Dynamic(bool);
    impl Visitor for Dynamic {
        fn expr(&mut self, expr: &Expr) -> bool {
            match expr {
                Expr::Var { .. }
                | Expr::String { .. }
                | Expr::RawString { .. }
                | Expr::Number { .. }
                | Expr::Bool { .. }
                | Expr::Null { .. }
                | Expr::Array { .. }
                | Expr::Set { .. }
                | Expr::Object { .. } => true,
                _ => {
                    self.0 = true;
                    false
                }
            }
        }
    }
    let mut dynamic = Dynamic(false);
    walk::expr(term, &mut dynamic);
    dynamic.0
}

/// The comprehensions in `expr`, not those nested in them.
fn comprehensions(expr: &Expr) -> Vec<&Expr> {
    let mut found = Vec::new();
    collect_comprehensions(expr, &mut found);
    found
}

fn collect_comprehensions<'e>(expr: &'e Expr, found: &mut Vec<&'e Expr>) {
    if parts(expr).is_some() {
        found.push(expr);
        return;
    }
    for child in children(expr) {
        collect_comprehensions(child, found);
    }
}

/// Where a statement reads variables into calls whose value it uses. OPA's compiler gives each
/// such call an output variable, which a body binds only when the call's arguments are bound,
/// or when the call is one side of `=` (or `==`) whose other side is (`is_bound`).
fn used_call_reads(stmt: &LiteralStmt, is_bound: &dyn Fn(&str) -> bool) -> BTreeSet<(u32, u32)> {
    let mut reads = BTreeSet::new();
    match &stmt.literal {
        Literal::Expr { expr, .. } | Literal::NotExpr { expr, .. } => match expr.as_ref() {
            Expr::AssignExpr { lhs, rhs, .. }
            | Expr::BoolExpr {
                op: BoolOp::Eq,
                lhs,
                rhs,
                ..
            } => {
                for (side, other) in [(lhs, rhs), (rhs, lhs)] {
                    let mut vars = BTreeSet::new();
                    collect_scope_vars(other, &mut vars);
                    let alone = is_call(side) && vars.iter().all(|v| is_bound(v));
                    call_reads(side, alone, false, &mut reads);
                }
            }
            expr => call_reads(expr, is_call(expr), false, &mut reads),
        },
        Literal::SomeIn {
            key,
            value,
            collection,
            ..
        } => {
            for expr in key.iter().chain([value, collection]) {
                call_reads(expr, false, false, &mut reads);
            }
        }
        Literal::Every { domain, .. } => call_reads(domain, false, false, &mut reads),
        Literal::SomeVars { .. } => {}
    }
    reads
}

/// The variables in `expr` read by calls whose value is used (`inside` one), by place; `top`:
/// `expr` is a call whose value is not used.
fn call_reads(expr: &Expr, top: bool, inside: bool, reads: &mut BTreeSet<(u32, u32)>) {
    match expr {
        Expr::Var { span, .. } => {
            if inside {
                reads.insert((span.line, span.col));
            }
        }
        _ if parts(expr).is_some() => {}
        _ => {
            let inside = inside || (is_call(expr) && !top);
            for child in children(expr) {
                call_reads(child, false, inside, reads);
            }
        }
    }
}

/// A statement's expressions: not its `with` modifiers, not an `every` body (a body of its own).
fn statement_exprs(stmt: &LiteralStmt) -> Vec<&Expr> {
    match &stmt.literal {
        Literal::SomeVars { .. } => Vec::new(),
        Literal::SomeIn {
            key,
            value,
            collection,
            ..
        } => key
            .iter()
            .chain([value, collection])
            .map(|e| e.as_ref())
            .collect(),
        Literal::Expr { expr, .. } | Literal::NotExpr { expr, .. } => vec![expr.as_ref()],
        Literal::Every { domain, .. } => vec![domain.as_ref()],
    }
}

/// The comprehensions of a statement, outside `every` bodies.
fn statement_comprehensions(stmt: &LiteralStmt) -> Vec<&Expr> {
    let mut found = Vec::new();
    for expr in statement_exprs(stmt) {
        collect_comprehensions(expr, &mut found);
    }
    found
}

/// A statement's variables as OPA collects an expression's: not those of comprehensions or
/// `every` bodies, not functions' names.
fn statement_vars(stmt: &LiteralStmt, vars: &mut BTreeSet<String>) {
    for expr in statement_exprs(stmt) {
        collect_scope_vars(expr, vars);
    }
}

/// What a walk over a comprehension's body finds, outside nested comprehensions.
struct Found<'b, 's, 'a> {
    binder: &'b Binder<'s, 'a>,
    /// Variables among references' keys (which OPA's regression check reads as outputs).
    ref_keys: BTreeSet<String>,
    /// A call of `walk`, whose output OPA's regression check reads too.
    walk: bool,
    /// Variables mentioned in nested comprehensions.
    nested: BTreeSet<String>,
    /// Variables mentioned outside them (`every` bodies included, as OPA's check sees them).
    vars: BTreeSet<String>,
    /// Where variables are read as operands of builtin calls and operators (`==` unifies; a
    /// function of the policy may bind an argument it is given unbound).
    operands: BTreeSet<(u32, u32)>,
}

impl<'b, 's, 'a> Found<'b, 's, 'a> {
    fn new(binder: &'b Binder<'s, 'a>) -> Self {
        Self {
            binder,
            ref_keys: BTreeSet::new(),
            walk: false,
            nested: BTreeSet::new(),
            vars: BTreeSet::new(),
            operands: BTreeSet::new(),
        }
    }

    fn operand(&mut self, expr: &Expr) {
        match expr {
            Expr::Var { span, .. } => {
                self.operands.insert((span.line, span.col));
            }
            Expr::Array { items, .. } | Expr::Set { items, .. } => {
                items.iter().for_each(|item| self.operand(item));
            }
            Expr::Object { fields, .. } => {
                for (_, key, value) in fields {
                    self.operand(key);
                    self.operand(value);
                }
            }
            _ => {}
        }
    }
}

impl Visitor for Found<'_, '_, '_> {
    fn expr(&mut self, expr: &Expr) -> bool {
        match expr {
            Expr::ArrayCompr { .. } | Expr::SetCompr { .. } | Expr::ObjectCompr { .. } => {
                collect_vars(expr, &mut self.nested);
                return false;
            }
            Expr::Var { span, .. } => {
                self.vars.insert(span.text().to_string());
            }
            Expr::RefBrack { index, .. } => collect_vars(index, &mut self.ref_keys),
            Expr::Call { fcn, params, .. } => {
                self.walk |= get_path_string(fcn, None).is_ok_and(|name| name == "walk");
                if !self.binder.is_policy_function(fcn) {
                    params.iter().for_each(|param| self.operand(param));
                }
            }
            Expr::BoolExpr { op: BoolOp::Eq, .. } => {}
            Expr::BoolExpr { lhs, rhs, .. }
            | Expr::ArithExpr { lhs, rhs, .. }
            | Expr::BinExpr { lhs, rhs, .. } => {
                self.operand(lhs);
                self.operand(rhs);
            }
            Expr::Membership {
                key,
                value,
                collection,
                ..
            } => {
                key.iter().for_each(|key| self.operand(key));
                self.operand(value);
                self.operand(collection);
            }
            _ => {}
        }
        true
    }
}

/// Walks a statement with `found`, `every` bodies included.
fn statement_walk(stmt: &LiteralStmt, found: &mut Found<'_, '_, '_>) {
    match &stmt.literal {
        Literal::SomeVars { .. } => {}
        Literal::SomeIn {
            key,
            value,
            collection,
            ..
        } => {
            // `some k, v in c` is `c[k] = v` to OPA: `k` is a reference's key.
            if let Some(key) = key {
                collect_vars(key, &mut found.ref_keys);
                walk::expr(key, found);
            }
            walk::expr(value, found);
            walk::expr(collection, found);
        }
        Literal::Expr { expr, .. } | Literal::NotExpr { expr, .. } => walk::expr(expr, found),
        Literal::Every {
            key,
            value,
            domain,
            query,
            ..
        } => {
            walk::expr(domain, found);
            for var in key.iter().chain(std::iter::once(value)) {
                found.vars.insert(var.text().to_string());
            }
            walk::query(query, found);
        }
    }
    for with in &stmt.with_mods {
        walk::expr(&with.r#as, found);
    }
}
