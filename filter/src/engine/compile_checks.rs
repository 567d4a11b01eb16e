//! What OPA's compiler refuses and regorus accepts, found over regorus's AST so that
//! `policy-bundler check`, `build` and bundle activation refuse the same programs OPA does,
//! each error at file:line:column with OPA's wording and a stable code:
//! - `unsafe-var` (`rego_unsafe_var_error`): a variable that no positive expression binds;
//! - `unused-declared-var`, `var-assigned-above`, `var-declared-above`, `var-referenced-above`,
//!   `arg-redeclared`, `cannot-assign` (`rego_compile_error`): `some`/`every` variables never
//!   used, `:=` to a variable that is already declared or used, to a function argument, or to
//!   something that is no variable;
//! - `illegal-default`, `illegal-else` (`rego_parse_error`): default values that are not
//!   constants, `else` on rules with variables in the head;
//! - `recursion` (`rego_recursion_error`): rules that depend on themselves;
//! - `builtin-arity`, `builtin-type`, `function-arity`, `function-type`, `match-error`,
//!   `undefined-ref`, `undefined-function`, `deprecated-builtin` (`rego_type_error`): calls,
//!   operators, unifications and references that OPA's type checker refuses from the types
//!   it infers before evaluation (`types`: literals, builtin results, rules' and functions'
//!   values, variables bound from them), calls to functions nobody defines, builtins Rego v1
//!   dropped;
//! - `multiple-defaults`, `conflicting-rules`, `function-not-called` (`rego_type_error`).
//!
//! Every check errs on the side of accepting: a program OPA accepts must never be refused
//! here, so whatever cannot be decided exactly is let through.

use std::collections::{BTreeMap, BTreeSet};

use regorus::unstable::{
    lookup, ArithOp, AssignOp, BinOp, BoolOp, Expr, Literal, LiteralStmt, Module, Query, Ref, Rule,
    RuleAssign, RuleBody, RuleHead, Span, DEPRECATED,
};
use regorus::utils::get_path_string;

use super::signatures::SIGNATURES;
use super::types::{self, Key, Ty, ARRAY, OBJECT, SET};

/// One program OPA refuses to compile, at the place OPA reports.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct CompileError {
    pub file: String,
    pub line: u32,
    /// In characters, as editors and OPA count.
    pub column: u32,
    pub code: &'static str,
    pub message: String,
}

impl std::fmt::Display for CompileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}: {}",
            self.file, self.line, self.column, self.code, self.message
        )
    }
}

/// OPA's compile errors in `modules`, sorted by place. `host_functions` are the functions the
/// filter adds to regorus's builtins (name, argument count).
pub fn check(modules: &[Ref<Module>], host_functions: &[(&str, usize)]) -> Vec<CompileError> {
    let (program, mut errors, _) = analyse(modules, host_functions);
    errors.extend(program.rule_conflicts());
    errors.extend(program.cycles());
    // OPA's compiler stops after the first stage that finds errors: report that stage's.
    let first_stage = errors.iter().map(|e| stage(e.code)).min();
    errors.retain(|e| Some(stage(e.code)) == first_stage);
    errors.sort();
    errors.dedup();
    errors
}

/// Each rule's path below `data` up to its first variable key (`["t", "p", "q"]` for
/// `package t` and `p.q[x] := …`), for telling a rule from a document of rules.
pub fn rule_paths(modules: &[Ref<Module>]) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    for module in modules {
        let mut package = Vec::new();
        if !static_parts(&module.package.refr, &mut package) {
            continue;
        }
        if package.first().is_some_and(|first| first == "data") {
            package.remove(0);
        }
        for rule in &module.policy {
            if let Some(head) = rule_head(rule) {
                let mut path = package.clone();
                static_parts(head, &mut path);
                paths.push(path);
            }
        }
    }
    paths
}

/// Names used in a rule (other rules, builtins), each where it is.
type Uses = Vec<(String, Span)>;

/// Calls of builtins this filter lacks (`unsupported-function`) in the `entrypoints` (full
/// paths, `data.envoy.authz.allow`) and the rules they reach, by place. The RVM compiler
/// refuses them as it meets them; a policy the interpreter runs must be refused the same way,
/// at load, not on each request that reaches the call.
pub fn unsupported_calls(
    modules: &[Ref<Module>],
    host_functions: &[(&str, usize)],
    entrypoints: &[&str],
) -> Vec<CompileError> {
    let (program, _, unsupported) = analyse(modules, host_functions);
    let mut reached: BTreeSet<&str> = BTreeSet::new();
    let mut pending: Vec<&str> = entrypoints.to_vec();
    while let Some(rule) = pending.pop() {
        if reached.insert(rule) {
            pending.extend(program.edges(rule).into_iter().map(|(next, _)| next));
        }
    }
    let mut errors: Vec<CompileError> = reached
        .iter()
        .filter_map(|rule| unsupported.get(*rule))
        .flatten()
        .map(|(name, span)| {
            error(
                span,
                "unsupported-function",
                format!("Unknown function: '{name}'"),
            )
        })
        .collect();
    errors.sort();
    errors.dedup();
    errors
}

/// The program's rules and their references; OPA's errors rule by rule (unsorted, before
/// the program-wide checks); the calls of builtins this filter lacks, by rule path.
fn analyse(
    modules: &[Ref<Module>],
    host_functions: &[(&str, usize)],
) -> (Program, Vec<CompileError>, BTreeMap<String, Uses>) {
    let mut program = Program::new(modules, host_functions);
    let mut errors = Vec::new();
    let mut references = Vec::new();
    let mut unsupported: BTreeMap<String, Uses> = BTreeMap::new();
    // Each pass infers the rules' types from the last pass's; the last one's errors count.
    for pass in 0..TYPE_PASSES {
        errors.clear();
        references.clear();
        unsupported.clear();
        let mut found_types = RuleTypes::default();
        for module in modules {
            let Some(package) = package_path(module) else {
                continue;
            };
            let scope = ModuleScope::new(&program, module, &package);
            for rule in &module.policy {
                let (found, lacking) = scope.rule(rule, &mut errors, &mut found_types);
                if let Some(head) = rule_head(rule) {
                    let path = format!("{package}.{}", static_path(head));
                    unsupported.entry(path.clone()).or_default().extend(lacking);
                    references.push((path, found));
                }
            }
        }
        if found_types == program.types || pass + 1 == TYPE_PASSES {
            break;
        }
        program.types = found_types;
    }
    for (rule, found) in references {
        program.graph.entry(rule).or_default().extend(found);
    }
    (program, errors, unsupported)
}

/// The order of OPA's compiler stages that find each error.
fn stage(code: &str) -> u8 {
    use crate::codes::*;
    const STAGES: [(&[Code], u8); 5] = [
        (&[ILLEGAL_DEFAULT], 0), // the parser
        (
            &[
                UNUSED_DECLARED_VAR,
                VAR_ASSIGNED_ABOVE,
                VAR_DECLARED_ABOVE,
                VAR_REFERENCED_ABOVE,
                ARG_REDECLARED,
            ],
            1,
        ),
        (&[CONFLICTING_RULES, MULTIPLE_DEFAULTS], 2),
        (&[UNSAFE_VAR], 3),
        (&[RECURSION], 4),
    ];
    STAGES
        .iter()
        .find(|(codes, _)| codes.iter().any(|c| c.name == code))
        // the type checker
        .map_or(5, |(_, stage)| *stage)
}

fn package_path(module: &Module) -> Option<String> {
    get_path_string(&module.package.refr, Some("data")).ok()
}

/// `file:line:column` of `span`, the column in characters as OPA and editors count (regorus
/// counts a tab as four columns).
pub fn place(span: &Span) -> (String, u32, u32) {
    let contents = span.source.contents();
    let start = usize::try_from(span.start).unwrap_or(usize::MAX);
    let column = contents
        .get(..start)
        .map(|before| before.rsplit('\n').next().unwrap_or(before).chars().count() + 1)
        .and_then(|c| u32::try_from(c).ok())
        .unwrap_or(span.col);
    (span.source.file().clone(), span.line, column)
}

/// An error at `span`.
pub(super) fn error(span: &Span, code: &'static str, message: String) -> CompileError {
    let (file, line, column) = place(span);
    CompileError {
        file,
        line,
        column,
        code,
        message,
    }
}

const WILDCARD: &str = "_";

/// How many times the rules' types are inferred, each pass from the last one's: enough for
/// chains of rules that deep; deeper ones keep wider types (`any`), which only accepts more.
const TYPE_PASSES: usize = 4;

/// A builtin's parameter types and result type, from OPA's texts in `signatures`.
fn builtin_type(name: &str) -> Option<(Vec<Ty>, Ty)> {
    let (_, _, _, want, result) = SIGNATURES.iter().find(|(n, ..)| *n == name)?;
    Some((types::parse_params(want)?, types::parse(result)?))
}

// ---------------------------------------------------------------------------------------------
// The whole program: rules by path, for name resolution, recursion and conflicts.

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum RuleKind {
    /// `p := v`, `p if …`, `default p := v`.
    Single,
    /// `p contains k`.
    Multi,
    /// `p[k] := v`: a key that is not a constant.
    Keyed,
    /// `f(a, b) := v`, with its argument count.
    Function(usize),
}

struct RuleEntry {
    kind: RuleKind,
    is_default: bool,
    span: Span,
    /// The rule's full path without its variable key (`data.t.p` for `p[x]`).
    path: String,
    /// Whether it may be compared with other rules of its path: not so `p[x].q`, whose
    /// variable key is not the last.
    comparable: bool,
}

/// What is known of the rules' types, by full path.
#[derive(Default, PartialEq)]
struct RuleTypes {
    /// Rules that are no functions: the type of their value.
    values: BTreeMap<String, Ty>,
    /// Functions: their parameters' and their result's types.
    functions: BTreeMap<String, (Vec<Ty>, Ty)>,
}

impl RuleTypes {
    fn add_value(&mut self, path: String, ty: Ty) {
        let joined = match self.values.remove(&path) {
            Some(known) => Ty::or(known, ty),
            None => ty,
        };
        self.values.insert(path, joined);
    }

    fn add_function(&mut self, path: String, params: Vec<Ty>, result: Ty) {
        let joined = match self.functions.remove(&path) {
            Some((known, known_result)) if known.len() == params.len() => (
                known
                    .into_iter()
                    .zip(params)
                    .map(|(a, b)| Ty::or(a, b))
                    .collect(),
                Ty::or(known_result, result),
            ),
            Some(_) => (vec![Ty::ANY; params.len()], Ty::ANY),
            None => (params, result),
        };
        self.functions.insert(path, joined);
    }
}

struct Program {
    /// Every rule, by its full path up to its first variable key.
    rules: Vec<RuleEntry>,
    /// The rules' types, as the last pass inferred them (none before the first).
    types: RuleTypes,
    /// Rules by their path up to the first variable key (`data.t.p.q` for `p.q[x].r`), with
    /// the references each makes to other rules.
    graph: BTreeMap<String, Vec<(String, Span)>>,
    /// First components of rule paths (`data.t.p` for `p.q.r`): the names rules make global.
    rule_names: BTreeSet<String>,
    host_functions: BTreeMap<String, usize>,
}

impl Program {
    fn new(modules: &[Ref<Module>], host_functions: &[(&str, usize)]) -> Self {
        let mut program = Program {
            rules: Vec::new(),
            types: RuleTypes::default(),
            graph: BTreeMap::new(),
            rule_names: BTreeSet::new(),
            host_functions: host_functions
                .iter()
                .map(|(name, count)| ((*name).to_string(), *count))
                .collect(),
        };
        for module in modules {
            let Some(package) = package_path(module) else {
                continue;
            };
            for rule in &module.policy {
                let (refr, kind, is_default) = match rule.as_ref() {
                    Rule::Spec { head, bodies, .. } => match head {
                        RuleHead::Compr { refr, .. } => {
                            let kind = if has_var_key(refr) {
                                RuleKind::Keyed
                            } else {
                                RuleKind::Single
                            };
                            (refr, kind, false)
                        }
                        RuleHead::Set { refr, key, .. } => {
                            let kind = if key.is_some() {
                                RuleKind::Multi
                            } else if has_var_key(refr) {
                                // v0's `p[x] { … }` is a set.
                                RuleKind::Multi
                            } else {
                                RuleKind::Single
                            };
                            (refr, kind, false)
                        }
                        // `f() := 1` is no function to OPA: it defines `f`; with a body
                        // (`f() := x if { … }`) it is a function of no arguments.
                        RuleHead::Func { refr, args, .. }
                            if args.is_empty() && bodies.is_empty() =>
                        {
                            (refr, RuleKind::Single, false)
                        }
                        RuleHead::Func { refr, args, .. } => {
                            (refr, RuleKind::Function(args.len()), false)
                        }
                    },
                    Rule::Default { refr, args, .. } => {
                        let kind = if args.is_empty() {
                            RuleKind::Single
                        } else {
                            RuleKind::Function(args.len())
                        };
                        (refr, kind, true)
                    }
                };
                let Ok(path) = get_path_string(refr, None) else {
                    continue;
                };
                let path = format!("{package}.{path}");
                let comparable = match refr.as_ref() {
                    Expr::RefBrack { refr, .. } | Expr::RefDot { refr, .. } => !has_var_key(refr),
                    _ => true,
                };
                program.rules.push(RuleEntry {
                    kind,
                    is_default,
                    span: rule.span().clone(),
                    path,
                    comparable,
                });
                if let Some(name) = first_component(refr) {
                    program.rule_names.insert(format!("{package}.{name}"));
                }
                program
                    .graph
                    .entry(format!("{package}.{}", static_path(refr)))
                    .or_default();
            }
        }
        program
    }

    fn function_arity(&self, path: &str) -> Option<usize> {
        self.rules.iter().find_map(|r| match r.kind {
            RuleKind::Function(n) if r.path == path => Some(n),
            _ => None,
        })
    }

    fn defines(&self, path: &str) -> bool {
        self.rules.iter().any(|r| r.path == path)
    }

    /// `multiple-defaults` and `conflicting-rules`.
    fn rule_conflicts(&self) -> Vec<CompileError> {
        let mut by_path: BTreeMap<&str, Vec<&RuleEntry>> = BTreeMap::new();
        for rule in self.rules.iter().filter(|r| r.comparable) {
            by_path.entry(&rule.path).or_default().push(rule);
        }
        let mut errors = Vec::new();
        for (path, rules) in by_path {
            let defaults: Vec<&&RuleEntry> = rules.iter().filter(|r| r.is_default).collect();
            if let (Some(first), true) = (defaults.first(), defaults.len() > 1) {
                let places: Vec<String> = defaults
                    .iter()
                    .map(|r| format!("{}:{}", r.span.source.file(), r.span.line))
                    .collect();
                errors.push(error(
                    &first.span,
                    crate::codes::MULTIPLE_DEFAULTS.name,
                    format!(
                        "multiple default rules {path} found at {}",
                        places.join(", ")
                    ),
                ));
            }
            // A default function may stand beside functions of any argument count.
            let kinds: BTreeSet<RuleKind> = rules
                .iter()
                .filter(|r| !(r.is_default && matches!(r.kind, RuleKind::Function(_))))
                .map(|r| r.kind)
                .collect();
            if kinds.len() > 1 {
                if let Some(first) = rules.first() {
                    errors.push(error(
                        &first.span,
                        crate::codes::CONFLICTING_RULES.name,
                        format!("conflicting rules {path} found"),
                    ));
                }
            }
        }
        errors
    }

    /// The rule a reference depends on: the longest rule name that prefixes it.
    fn target(&self, reference: &str) -> Option<&str> {
        let mut candidate = reference;
        loop {
            if let Some((name, _)) = self.graph.get_key_value(candidate) {
                return Some(name);
            }
            candidate = candidate.rsplit_once('.')?.0;
        }
    }

    fn edges(&self, rule: &str) -> Vec<(&str, &Span)> {
        self.graph
            .get(rule)
            .map(|calls| {
                calls
                    .iter()
                    .flat_map(|(reference, span)| {
                        // A reference to a prefix of rules (`data.t`) depends on all of them.
                        let targets: Vec<&str> = match self.target(reference) {
                            Some(target) => vec![target],
                            None => {
                                let prefix = format!("{reference}.");
                                self.graph
                                    .keys()
                                    .filter(|k| k.starts_with(&prefix))
                                    .map(String::as_str)
                                    .collect()
                            }
                        };
                        targets.into_iter().map(move |t| (t, span))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// `recursion`: one error per rule on a cycle, at the reference that leads into it.
    fn cycles(&self) -> Vec<CompileError> {
        let mut errors = Vec::new();
        for start in self.graph.keys() {
            let mut stack: Vec<(&str, Vec<&str>, Option<&Span>)> = vec![(start, vec![], None)];
            let mut seen = BTreeSet::new();
            'search: while let Some((rule, path, first_call)) = stack.pop() {
                for (next, span) in self.edges(rule) {
                    let first_call = first_call.or(Some(span));
                    if next == start {
                        let mut chain: Vec<&str> = vec![start];
                        chain.extend(path.iter().copied());
                        chain.push(start);
                        if let Some(span) = first_call {
                            errors.push(error(
                                span,
                                crate::codes::RECURSION.name,
                                format!("rule {start} is recursive: {}", chain.join(" -> ")),
                            ));
                        }
                        break 'search;
                    }
                    if seen.insert(next) {
                        let mut path = path.clone();
                        path.push(next);
                        stack.push((next, path, first_call));
                    }
                }
            }
        }
        errors
    }
}

/// The keys of a head reference that is a name and variable keys only (`p[x][y]`).
fn var_keys(refr: &Expr) -> Option<Vec<&Expr>> {
    match refr {
        Expr::Var { .. } => Some(Vec::new()),
        Expr::RefBrack { refr, index, .. }
            if !matches!(index.as_ref(), Expr::String { .. } | Expr::Number { .. }) =>
        {
            let mut keys = var_keys(refr)?;
            keys.push(index);
            Some(keys)
        }
        _ => None,
    }
}

fn has_var_key(refr: &Expr) -> bool {
    match refr {
        Expr::RefBrack { refr, index, .. } => {
            !matches!(index.as_ref(), Expr::String { .. } | Expr::Number { .. })
                || has_var_key(refr)
        }
        Expr::RefDot { refr, .. } => has_var_key(refr),
        _ => false,
    }
}

/// A head reference's path up to its first variable key: `p.q` for `p.q[x].r`.
fn static_path(refr: &Expr) -> String {
    let mut out = Vec::new();
    static_parts(refr, &mut out);
    out.join(".")
}

/// The names of `refr` (a variable, fields, string keys) up to its first other key; false
/// when it stopped there.
fn static_parts(refr: &Expr, out: &mut Vec<String>) -> bool {
    match refr {
        Expr::Var { span, .. } => {
            out.push(span.text().to_string());
            true
        }
        Expr::RefDot { refr, field, .. } => {
            static_parts(refr, out) && {
                out.push(field.0.text().to_string());
                true
            }
        }
        Expr::RefBrack { refr, index, .. } => {
            if !static_parts(refr, out) {
                return false;
            }
            match index.as_ref() {
                Expr::String { value, .. } => match value.as_string() {
                    Ok(key) => {
                        out.push(key.as_ref().to_string());
                        true
                    }
                    Err(_) => false,
                },
                _ => false,
            }
        }
        _ => false,
    }
}

fn first_component(refr: &Expr) -> Option<&str> {
    match refr {
        Expr::Var { span, .. } => Some(span.text()),
        Expr::RefDot { refr, .. } | Expr::RefBrack { refr, .. } => first_component(refr),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// One module: which names are global (rules of the package, imports, `input`, `data`).

struct ModuleScope<'a> {
    program: &'a Program,
    package: &'a str,
    /// Import aliases and the paths they stand for.
    imports: BTreeMap<String, String>,
    /// First components of this package's rules.
    rule_names: BTreeSet<String>,
    rego_v1: bool,
    /// `import future.keywords.not` (or `future.keywords`): OPA moves nothing out of a
    /// negated expression.
    negation_keeps_operands: bool,
}

impl<'a> ModuleScope<'a> {
    fn new(program: &'a Program, module: &Module, package: &'a str) -> Self {
        let mut imports = BTreeMap::new();
        let mut negation_keeps_operands = false;
        for import in &module.imports {
            let Ok(path) = get_path_string(&import.refr, None) else {
                continue;
            };
            negation_keeps_operands |= path == "future.keywords" || path == "future.keywords.not";
            if !(path == "input"
                || path == "data"
                || path.starts_with("input.")
                || path.starts_with("data."))
            {
                continue; // future.keywords, rego.v1
            }
            let alias = match &import.r#as {
                Some(alias) => Some(alias.text().to_string()),
                None => path.rsplit('.').next().map(str::to_string),
            };
            if let Some(alias) = alias {
                imports.insert(alias, path);
            }
        }
        let prefix = format!("{package}.");
        let rule_names = program
            .rule_names
            .iter()
            .filter_map(|name| name.strip_prefix(&prefix))
            .filter(|rest| !rest.contains('.'))
            .map(str::to_string)
            .collect();
        Self {
            program,
            package,
            imports,
            rule_names,
            rego_v1: module.rego_v1,
            negation_keeps_operands,
        }
    }

    fn is_global(&self, name: &str) -> bool {
        name == "input"
            || name == "data"
            || self.imports.contains_key(name)
            || self.rule_names.contains(name)
    }

    /// A reference's full path (`data.…` or `input.…`).
    fn resolve(&self, reference: &str) -> String {
        let (first, rest) = reference.split_once('.').unwrap_or((reference, ""));
        let base = if first == "data" || first == "input" {
            first.to_string()
        } else if let Some(path) = self.imports.get(first) {
            path.clone()
        } else {
            format!("{}.{first}", self.package)
        };
        if rest.is_empty() {
            base
        } else {
            format!("{base}.{rest}")
        }
    }

    /// Checks `rule`; returns its references to other rules (full paths), for recursion, and
    /// its calls of builtins this filter lacks.
    fn rule(
        &self,
        rule: &Rule,
        errors: &mut Vec<CompileError>,
        types: &mut RuleTypes,
    ) -> (Uses, Uses) {
        let mut safety = Safety {
            scope: self,
            errors: Vec::new(),
            references: Vec::new(),
            unsupported: Vec::new(),
            lifted: Vec::new(),
            values: Vec::new(),
            closures: BTreeMap::new(),
            in_every: 0,
            params: Vec::new(),
        };
        match rule {
            Rule::Spec { head, bodies, .. } => safety.spec(head, bodies),
            Rule::Default { value, .. } => safety.default(value),
        }
        errors.append(&mut safety.errors);
        let narrowed = std::mem::take(&mut safety.params);
        self.record_type(rule, std::mem::take(&mut safety.values), &narrowed, types);
        let references = safety
            .references
            .into_iter()
            .map(|(reference, span)| (self.resolve(&reference), span))
            .collect();
        (references, safety.unsupported)
    }
}

impl ModuleScope<'_> {
    /// Adds what `rule` contributes to its document's type: `values`, one per body.
    fn record_type(
        &self,
        rule: &Rule,
        values: Vec<Ty>,
        narrowed: &[Vec<Ty>],
        types: &mut RuleTypes,
    ) {
        let Some(head) = rule_head(rule) else {
            return;
        };
        let name = static_path(head);
        let path = format!("{}.{name}", self.package);
        let value = values.into_iter().reduce(Ty::or).unwrap_or(Ty::ANY);
        let args = match rule {
            Rule::Spec {
                head: RuleHead::Func { args, .. },
                ..
            }
            | Rule::Default { args, .. } => args.as_slice(),
            _ => &[],
        };
        if !args.is_empty() {
            // A parameter's type is a constant's; OPA narrows a variable's by its first use,
            // which `any` only widens.
            let params = args
                .iter()
                .enumerate()
                .map(|(i, arg)| match arg.as_ref() {
                    Expr::String { .. } | Expr::RawString { .. } => Ty::String,
                    Expr::Number { .. } => Ty::Number,
                    Expr::Bool { .. } => Ty::Boolean,
                    Expr::Null { .. } => Ty::Null,
                    // Its uses' type, joined over the bodies.
                    _ => narrowed
                        .iter()
                        .filter_map(|body| body.get(i).cloned())
                        .reduce(Ty::or)
                        .unwrap_or(Ty::ANY),
                })
                .collect();
            types.add_function(path, params, value);
        } else if name.contains('.') || name.is_empty() {
            // `p.q := 1`: a document of nested objects, left as `any` (at its first name).
            let first = name.split('.').next().unwrap_or_default();
            types.add_value(format!("{}.{first}", self.package), Ty::ANY);
        } else {
            types.add_value(path, value);
        }
    }
}

/// The safety analysis's view of single statements, for the checks of how OPA evaluates a
/// body (`opa_quirks`): what a statement needs bound and what it binds, as `check` decides.
pub(super) struct Binder<'s, 'a> {
    safety: Safety<'s, 'a>,
}

/// What a statement or value needs bound before it runs, and what it binds.
pub(super) struct Binding {
    /// Local variables not bound where they are used, with where.
    pub unbound: Vec<(String, Span)>,
    pub binds: BTreeSet<String>,
}

impl Binder<'_, '_> {
    fn frame(declared: &BTreeSet<String>, bound: &BTreeSet<String>) -> Frame {
        Frame {
            declared: declared.clone(),
            bound: bound.clone(),
            ..Frame::default()
        }
    }

    /// Drops what the analysis collects for `check`: only bindings are asked for here.
    fn forget(&mut self) {
        self.safety.errors.clear();
        self.safety.references.clear();
        self.safety.unsupported.clear();
        self.safety.closures.clear();
    }

    /// `stmt` run with the local variables `bound` bound, `declared` declared in its scope, as
    /// OPA's compiler orders a body.
    pub fn statement(
        &mut self,
        stmt: &LiteralStmt,
        declared: &BTreeSet<String>,
        bound: &BTreeSet<String>,
    ) -> Binding {
        let needs = self.safety.statement(stmt, &Self::frame(declared, bound));
        self.forget();
        Binding {
            unbound: needs.unbound,
            binds: needs.binds,
        }
    }

    /// `stmt` evaluated as OPA does once its compiler has ordered the body and rewritten a
    /// statement `a == b` into the unification `a = b`.
    pub fn evaluated(
        &mut self,
        stmt: &LiteralStmt,
        declared: &BTreeSet<String>,
        bound: &BTreeSet<String>,
    ) -> Binding {
        let frame = Self::frame(declared, bound);
        let needs = match &stmt.literal {
            Literal::Expr { expr, .. } if stmt.with_mods.is_empty() => match expr.as_ref() {
                Expr::BoolExpr {
                    op: BoolOp::Eq,
                    lhs,
                    rhs,
                    ..
                } => {
                    let mut needs = Needs::default();
                    self.safety.unify(lhs, rhs, &frame, &mut needs);
                    needs
                }
                _ => self.safety.statement(stmt, &frame),
            },
            _ => self.safety.statement(stmt, &frame),
        };
        self.forget();
        Binding {
            unbound: needs.unbound,
            binds: needs.binds,
        }
    }

    /// `value` evaluated (its references bind their variable keys).
    pub fn value(
        &mut self,
        value: &Expr,
        declared: &BTreeSet<String>,
        bound: &BTreeSet<String>,
    ) -> Binding {
        let mut needs = Needs::default();
        self.safety
            .eval(value, &Self::frame(declared, bound), true, &mut needs);
        self.forget();
        Binding {
            unbound: needs.unbound,
            binds: needs.binds,
        }
    }

    /// Whether `fcn` names a function of the policy (or one that cannot be told), not a builtin.
    pub fn is_policy_function(&self, fcn: &Expr) -> bool {
        let Ok(name) = get_path_string(fcn, None) else {
            return true;
        };
        let scope = self.safety.scope;
        scope
            .program
            .function_arity(&scope.resolve(&name))
            .is_some()
            || scope
                .program
                .function_arity(&format!("{}.{name}", scope.package))
                .is_some()
    }

    /// Whether `name` is a variable (not a rule, import, `input` or `data`).
    pub fn is_local(&self, name: &str, declared: &BTreeSet<String>) -> bool {
        declared.contains(name) || !self.safety.scope.is_global(name)
    }
}

/// Calls `visit` with each module and a `Binder` for its scope.
pub(super) fn with_binders(
    modules: &[Ref<Module>],
    host_functions: &[(&str, usize)],
    mut visit: impl FnMut(&Module, &mut Binder<'_, '_>),
) {
    let program = Program::new(modules, host_functions);
    for module in modules {
        let Some(package) = package_path(module) else {
            continue;
        };
        let scope = ModuleScope::new(&program, module, &package);
        let mut binder = Binder {
            safety: Safety {
                scope: &scope,
                errors: Vec::new(),
                references: Vec::new(),
                unsupported: Vec::new(),
                lifted: Vec::new(),
                values: Vec::new(),
                closures: BTreeMap::new(),
                in_every: 0,
                params: Vec::new(),
            },
        };
        visit(module, &mut binder);
    }
}

fn rule_head(rule: &Rule) -> Option<&Expr> {
    match rule {
        Rule::Spec { head, .. } => match head {
            RuleHead::Compr { refr, .. }
            | RuleHead::Set { refr, .. }
            | RuleHead::Func { refr, .. } => Some(refr),
        },
        Rule::Default { refr, .. } => Some(refr),
    }
}

// ---------------------------------------------------------------------------------------------
// Safety: every variable bound by a positive expression, as OPA's compiler orders a body.

/// What an expression needs bound before it can run, and what it binds.
#[derive(Default)]
struct Needs {
    /// Local variables that must be bound first, where they are used.
    unbound: Vec<(String, Span)>,
    /// Local variables it binds (keys of references, outputs of calls and unification).
    binds: BTreeSet<String>,
    /// Types known for the variables it binds.
    types: BTreeMap<String, Ty>,
}

impl Needs {
    fn ready(&self) -> bool {
        self.unbound.is_empty()
    }

    fn absorb(&mut self, other: Needs) {
        self.unbound.extend(other.unbound);
        self.binds.extend(other.binds);
        self.types.extend(other.types);
    }
}

struct Safety<'s, 'a> {
    scope: &'s ModuleScope<'a>,
    errors: Vec<CompileError>,
    /// References to global names (for recursion), with where they are.
    references: Vec<(String, Span)>,
    /// Calls of OPA builtins this filter lacks, with where they are.
    unsupported: Vec<(String, Span)>,
    /// Calls of the negated expression under way that were checked as evaluated before it.
    lifted: Vec<*const Expr>,
    /// The types of the rule's values, one per body (and `else`), as its document has them.
    values: Vec<Ty>,
    /// The types of comprehensions' terms, as their bodies bind them.
    closures: BTreeMap<*const Expr, Ty>,
    /// Inside `every` bodies, whose type errors OPA does not report.
    in_every: usize,
    /// A function's argument types, one list per body, as its uses narrow them.
    params: Vec<Vec<Ty>>,
}

/// A query's variables: those of enclosing queries and those it declares itself.
#[derive(Clone, Default)]
struct Frame {
    /// Declared with `:=`, `some`, `every` or as a function argument, here or outside.
    declared: BTreeSet<String>,
    /// Bound before the query runs.
    bound: BTreeSet<String>,
    /// What is known of bound variables' types (`x := "a"`).
    types: BTreeMap<String, Ty>,
    /// Names the statement under way declares or that are declared after it: closures in it
    /// cannot be bound from outside with them.
    hidden: BTreeSet<String>,
}

impl<'s, 'a> Safety<'s, 'a> {
    fn is_local(&self, name: &str, frame: &Frame) -> bool {
        frame.declared.contains(name) || !self.scope.is_global(name)
    }

    fn spec(&mut self, head: &RuleHead, bodies: &[RuleBody]) {
        if let Some(body) = bodies.iter().find(|b| b.is_else) {
            let refused = match head {
                RuleHead::Set { key: Some(_), .. } => Some("multi-value rules"),
                RuleHead::Compr { refr, .. } | RuleHead::Set { refr, .. } if has_var_key(refr) => {
                    Some("rules with variables in head")
                }
                _ => None,
            };
            if let Some(what) = refused {
                self.errors.push(error(
                    &body.span,
                    crate::codes::ILLEGAL_ELSE.name,
                    format!("else keyword cannot be used on {what}"),
                ));
            }
        }
        let mut frame = Frame::default();
        let mut arg_names = BTreeSet::new();
        let (refr, head_assign, key) = match head {
            RuleHead::Compr { refr, assign, .. } => (refr, assign.as_ref(), None),
            RuleHead::Set { refr, key, .. } => (refr, None, key.as_ref()),
            RuleHead::Func {
                refr, args, assign, ..
            } => {
                for arg in args {
                    pattern_vars(arg, &mut arg_names);
                }
                (refr, assign.as_ref(), None)
            }
        };
        arg_names.remove(WILDCARD);
        frame.declared.extend(arg_names.iter().cloned());
        frame.bound.extend(arg_names.iter().cloned());
        let body_frames: Vec<(Frame, Option<&RuleAssign>, bool)> = if bodies.is_empty() {
            vec![(frame.clone(), head_assign, false)]
        } else {
            bodies
                .iter()
                .map(|body| {
                    self.declarations(&body.query, &arg_names);
                    let after = self.query(&body.query, &frame);
                    self.report(after.1);
                    (after.0, body.assign.as_ref().or(head_assign), body.is_else)
                })
                .collect()
        };
        if let RuleHead::Func { args, .. } = head {
            let pairs: Vec<(Option<&Query>, Option<&RuleAssign>)> = if bodies.is_empty() {
                vec![(None, head_assign)]
            } else {
                bodies
                    .iter()
                    .map(|b| (Some(b.query.as_ref()), b.assign.as_ref().or(head_assign)))
                    .collect()
            };
            for (query, value) in pairs {
                let params = args
                    .iter()
                    .map(|arg| match arg.as_ref() {
                        Expr::Var { span, .. } if span.text() != WILDCARD => self.narrowed(
                            span.text(),
                            &arg_names,
                            query,
                            value.map(|v| v.value.as_ref()),
                        ),
                        _ => Ty::ANY,
                    })
                    .collect();
                self.params.push(params);
            }
        }
        for (after, value, is_else) in body_frames {
            let mut needs = Needs::default();
            if let Some(value) = value {
                self.eval(&value.value, &after, true, &mut needs);
            }
            if !is_else {
                if let Some(key) = key {
                    self.eval(key, &after, true, &mut needs);
                }
                self.head_keys(refr, &after, &mut needs);
            }
            self.report(needs.unbound);
            let value = value.map_or(Ty::Boolean, |v| self.ty(&v.value, &after));
            let document = match (head, refr.as_ref()) {
                (RuleHead::Set { key: Some(key), .. }, _) => {
                    Ty::Set(Box::new(self.ty(key, &after)))
                }
                (
                    _,
                    Expr::RefBrack {
                        refr: base, index, ..
                    },
                ) if has_var_key(refr) && matches!(base.as_ref(), Expr::Var { .. }) => {
                    let key = self.ty(index, &after);
                    match head {
                        RuleHead::Set { .. } => Ty::Set(Box::new(key)),
                        _ => Ty::object_of(key, value),
                    }
                }
                // `p[x][y] := v`: objects of objects.
                (RuleHead::Compr { .. }, _) if has_var_key(refr) => match var_keys(refr) {
                    Some(keys) => keys.iter().rev().fold(value, |inner, key| {
                        Ty::object_of(self.ty(key, &after), inner)
                    }),
                    None => Ty::ANY,
                },
                _ if has_var_key(refr) => Ty::ANY,
                _ => value,
            };
            self.values.push(document);
        }
    }

    /// The type OPA gives function argument `name` in one body (`query`, then the `value`):
    /// that of its first use, which later uses must unify with (OPA's `invalid argument(s)`
    /// at the first that does not). Followed only where every use is an argument of a builtin
    /// or operator, and every statement with a use runs where it is written (it needs no
    /// variable bound elsewhere), so that OPA checks the uses in the order they are found here.
    fn narrowed(
        &mut self,
        name: &str,
        args: &BTreeSet<String>,
        query: Option<&Query>,
        value: Option<&Expr>,
    ) -> Ty {
        let mut uses = Vec::new();
        let mut other = false;
        for stmt in query.map(|q| q.stmts.as_slice()).unwrap_or_default() {
            if !statement_mentions(stmt, name) {
                continue;
            }
            match &stmt.literal {
                Literal::Expr { expr, .. } | Literal::NotExpr { expr, .. } => {
                    arg_uses(expr, name, true, &mut uses, &mut other);
                    let mut vars = BTreeSet::new();
                    collect_vars(expr, &mut vars);
                    let mut assigned = BTreeSet::new();
                    declared_by(&stmt.literal, &mut assigned);
                    other |= vars.iter().any(|v| {
                        v != WILDCARD
                            && !args.contains(v)
                            && !assigned.contains(v)
                            && !self.scope.is_global(v)
                    });
                }
                _ => other = true,
            }
            other |= !stmt.with_mods.is_empty();
        }
        if let Some(value) = value {
            arg_uses(value, name, false, &mut uses, &mut other);
        }
        if other {
            return Ty::ANY;
        }
        let Some((first, ..)) = uses.first().cloned() else {
            return Ty::ANY;
        };
        let conflict = uses
            .into_iter()
            .find(|(ty, ..)| !types::unifies(&first, ty));
        if let Some((have, Some(builtin), span)) = conflict {
            if let Some((.., want, _)) = SIGNATURES.iter().find(|(n, ..)| *n == builtin) {
                self.errors.push(error(
                    &span,
                    crate::codes::BUILTIN_TYPE.name,
                    format!(
                        "{builtin}: invalid argument(s): argument {name} is {first} (by its \
                         first use) and {have} here, want ({want})"
                    ),
                ));
            }
        }
        first
    }

    /// OPA's parser wants a default value without variables or references.
    fn default(&mut self, value: &Expr) {
        struct Find(Option<(&'static str, Span)>);
        impl super::walk::Visitor for Find {
            fn expr(&mut self, expr: &Expr) -> bool {
                match expr {
                    Expr::RefDot { span, .. } | Expr::RefBrack { span, .. } => {
                        self.0.get_or_insert(("ref", span.clone()));
                        false
                    }
                    Expr::Var { span, .. } => {
                        self.0.get_or_insert(("var", span.clone()));
                        false
                    }
                    // Operators are calls to OPA.
                    Expr::Call { span, .. }
                    | Expr::BinExpr { span, .. }
                    | Expr::BoolExpr { span, .. }
                    | Expr::ArithExpr { span, .. }
                    | Expr::Membership { span, .. } => {
                        self.0.get_or_insert(("call", span.clone()));
                        false
                    }
                    // Comprehensions are closures: their variables are their own.
                    Expr::ArrayCompr { .. } | Expr::SetCompr { .. } | Expr::ObjectCompr { .. } => {
                        false
                    }
                    _ => true,
                }
            }
        }
        let mut find = Find(None);
        super::walk::expr(value, &mut find);
        if let Some((what, span)) = find.0 {
            self.errors.push(error(
                &span,
                crate::codes::ILLEGAL_DEFAULT.name,
                format!("illegal default rule (value cannot contain {what})"),
            ));
        }
        // Comprehensions in the value are checked as any.
        let mut needs = Needs::default();
        self.eval(value, &Frame::default(), true, &mut needs);
        self.report(needs.unbound);
        self.values.push(self.ty(value, &Frame::default()));
    }

    /// The variable keys of a head reference (`x` in `p[x].q`).
    fn head_keys(&mut self, refr: &Expr, frame: &Frame, needs: &mut Needs) {
        match refr {
            Expr::RefBrack { refr, index, .. } => {
                self.head_keys(refr, frame, needs);
                self.eval(index, frame, true, needs);
            }
            Expr::RefDot { refr, .. } => self.head_keys(refr, frame, needs),
            _ => {}
        }
    }

    fn report(&mut self, unbound: Vec<(String, Span)>) {
        for (name, span) in unbound {
            self.errors.push(error(
                &span,
                crate::codes::UNSAFE_VAR.name,
                format!("var {name} is unsafe"),
            ));
        }
    }

    /// The variables `query` declares, in order, with OPA's errors for declaring one twice,
    /// after using it, or over a function argument, and for `some` variables never used.
    fn declarations(&mut self, query: &Query, args: &BTreeSet<String>) {
        let mut declared: BTreeMap<String, bool> = BTreeMap::new(); // name -> by `some`
        let mut seen: BTreeSet<String> = BTreeSet::new();
        for stmt in &query.stmts {
            match &stmt.literal {
                Literal::SomeVars { vars, .. } => {
                    for var in vars {
                        let name = var.text();
                        if name == WILDCARD {
                            continue;
                        }
                        if let Some(by_some) = declared.get(name) {
                            let what = if *by_some { "declared" } else { "assigned" };
                            self.errors.push(error(
                                var,
                                if *by_some {
                                    crate::codes::VAR_DECLARED_ABOVE.name
                                } else {
                                    crate::codes::VAR_ASSIGNED_ABOVE.name
                                },
                                format!("var {name} {what} above"),
                            ));
                        }
                        declared.insert(name.to_string(), true);
                        if !used_elsewhere(query, name, stmt.sidx) {
                            self.errors.push(error(
                                var,
                                crate::codes::UNUSED_DECLARED_VAR.name,
                                format!("declared var {name} unused"),
                            ));
                        }
                    }
                }
                Literal::Expr { expr, .. } => {
                    if let Expr::AssignExpr {
                        op: AssignOp::ColEq,
                        lhs,
                        rhs,
                        ..
                    } = expr.as_ref()
                    {
                        collect_scope_vars(rhs, &mut seen);
                        for (what, span) in unassignable(lhs) {
                            self.errors.push(error(
                                span,
                                crate::codes::CANNOT_ASSIGN.name,
                                format!("cannot assign to {what}"),
                            ));
                        }
                        let mut names = BTreeSet::new();
                        let mut spans = Vec::new();
                        assigned_vars(lhs, &mut names, &mut spans);
                        for (name, span) in spans {
                            if args.contains(&name) && !declared.contains_key(&name) {
                                self.errors.push(error(
                                    &span,
                                    crate::codes::ARG_REDECLARED.name,
                                    format!("arg {name} redeclared"),
                                ));
                            } else {
                                self.redeclared(&name, &span, &declared, &seen);
                            }
                            declared.insert(name, false);
                        }
                        // Keys of object patterns are read.
                        collect_scope_vars(lhs, &mut seen);
                    } else {
                        collect_scope_vars(expr, &mut seen);
                    }
                }
                Literal::NotExpr { expr, .. } => collect_scope_vars(expr, &mut seen),
                Literal::SomeIn {
                    key,
                    value,
                    collection,
                    ..
                } => {
                    collect_scope_vars(collection, &mut seen);
                    let mut names = BTreeSet::new();
                    let mut spans = Vec::new();
                    if let Some(key) = key {
                        assigned_vars(key, &mut names, &mut spans);
                    }
                    assigned_vars(value, &mut names, &mut spans);
                    for (name, span) in spans {
                        self.redeclared(&name, &span, &declared, &seen);
                        declared.entry(name).or_insert(true);
                    }
                }
                Literal::Every {
                    key,
                    value,
                    domain,
                    query: body,
                    ..
                } => {
                    collect_scope_vars(domain, &mut seen);
                    for var in key.iter().chain(std::iter::once(value)) {
                        let name = var.text();
                        if name != WILDCARD && !mentions(body, name) {
                            self.errors.push(error(
                                var,
                                crate::codes::UNUSED_DECLARED_VAR.name,
                                format!("declared var {name} unused"),
                            ));
                        }
                    }
                }
            }
            for with in &stmt.with_mods {
                collect_scope_vars(&with.r#as, &mut seen);
            }
        }
    }

    /// `var x assigned above` and friends, for a variable about to be declared.
    fn redeclared(
        &mut self,
        name: &str,
        span: &Span,
        declared: &BTreeMap<String, bool>,
        seen: &BTreeSet<String>,
    ) {
        if name == WILDCARD {
            return;
        }
        let (code, what) = match declared.get(name) {
            Some(true) => (crate::codes::VAR_DECLARED_ABOVE.name, "declared"),
            Some(false) => (crate::codes::VAR_ASSIGNED_ABOVE.name, "assigned"),
            None if seen.contains(name) => (crate::codes::VAR_REFERENCED_ABOVE.name, "referenced"),
            None => return,
        };
        self.errors
            .push(error(span, code, format!("var {name} {what} above")));
    }

    /// Orders `query`'s statements as OPA does (each once what it needs is bound): the frame
    /// after it, and the variables that nothing binds.
    fn query(&mut self, query: &Query, outer: &Frame) -> (Frame, Vec<(String, Span)>) {
        let mut frame = outer.clone();
        frame.hidden.clear();
        let mut declared_here = BTreeSet::new();
        // For each statement, the names this query declares there or later: closures in the
        // statement do not see them (OPA scopes a declaration from where it is on).
        let mut later: Vec<BTreeSet<String>> = Vec::new();
        for stmt in query.stmts.iter().rev() {
            declared_by(&stmt.literal, &mut declared_here);
            later.push(declared_here.difference(&outer.declared).cloned().collect());
        }
        later.reverse();
        // Declared here, a name is a new variable, whatever it was outside.
        for name in &declared_here {
            frame.bound.remove(name);
            frame.types.remove(name);
        }
        let widened = widened_vars(query);
        frame.types.retain(|name, _| !widened.contains(name));
        frame.declared.extend(declared_here);
        let mut pending: Vec<(&LiteralStmt, BTreeSet<String>)> =
            query.stmts.iter().zip(later).collect();
        loop {
            let mut progress = false;
            let mut still = Vec::new();
            for (stmt, hidden) in pending {
                frame.hidden = hidden;
                let needs = self.statement(stmt, &frame);
                let hidden = std::mem::take(&mut frame.hidden);
                if needs.ready() {
                    frame.bound.extend(needs.binds);
                    frame.types.extend(
                        needs
                            .types
                            .into_iter()
                            .filter(|(name, _)| !widened.contains(name)),
                    );
                    progress = true;
                } else {
                    still.push((stmt, hidden));
                }
            }
            pending = still;
            if pending.is_empty() || !progress {
                break;
            }
        }
        let mut unbound = Vec::new();
        for (stmt, hidden) in pending {
            frame.hidden = hidden;
            unbound.extend(self.statement(stmt, &frame).unbound);
        }
        frame.hidden.clear();
        (frame, unbound)
    }

    fn statement(&mut self, stmt: &LiteralStmt, frame: &Frame) -> Needs {
        let mut needs = Needs::default();
        match &stmt.literal {
            Literal::SomeVars { .. } => {}
            Literal::SomeIn {
                key,
                value,
                collection,
                ..
            } => {
                self.eval(collection, frame, true, &mut needs);
                if let Some(key) = key {
                    self.pattern(key, frame, true, &mut needs);
                }
                self.pattern(value, frame, true, &mut needs);
                let domain = self.ty(collection, frame);
                if !matches!(
                    collection.as_ref(),
                    Expr::Array { .. } | Expr::Set { .. } | Expr::Object { .. }
                ) && is_scalar(&domain)
                    && self.in_every == 0
                {
                    // OPA iterates `some x in xs` as the reference `xs[_]`.
                    self.errors.push(error(
                        collection.span(),
                        crate::codes::UNDEFINED_REF.name,
                        format!(
                            "undefined ref: {}[_]: have: {domain}",
                            collection.span().text()
                        ),
                    ));
                }
                if let Some(key) = key {
                    bind_types(key, domain.keys(), None, &mut needs.types);
                }
                bind_types(value, domain.values(), None, &mut needs.types);
            }
            Literal::Expr { expr, .. } => self.top(expr, frame, &mut needs),
            Literal::NotExpr { expr, .. } => {
                // OPA's compiler moves calls nested in a negated expression before it
                // (`not count(input.xs[_]) == 1` is `__local0__ = count(input.xs[_]);
                // not __local0__ == 1`), so they bind their variables outside the negation.
                let lifted = if self.scope.negation_keeps_operands {
                    Vec::new()
                } else {
                    nested_calls(expr)
                };
                for call in &lifted {
                    self.eval(call, frame, true, &mut needs);
                }
                let enclosing = std::mem::replace(
                    &mut self.lifted,
                    lifted.iter().map(|call| *call as *const Expr).collect(),
                );
                match expr.as_ref() {
                    // A call of its own under `not` may name its output too.
                    Expr::Call { fcn, params, .. } => {
                        for param in params {
                            self.eval(param, frame, false, &mut needs);
                        }
                        self.call(fcn, params, frame, true);
                    }
                    Expr::BoolExpr {
                        op: BoolOp::Eq,
                        lhs,
                        rhs,
                        ..
                    } => {
                        self.eval(expr, frame, false, &mut needs);
                        self.check_match(lhs, rhs, expr.span(), frame);
                    }
                    expr => self.eval(expr, frame, false, &mut needs),
                }
                self.lifted = enclosing;
            }
            Literal::Every {
                key,
                value,
                domain,
                query,
                ..
            } => {
                self.eval(domain, frame, true, &mut needs);
                let mut inner = frame.clone();
                inner.bound.extend(needs.binds.iter().cloned());
                inner.bound.retain(|name| !frame.hidden.contains(name));
                for var in key.iter().chain(std::iter::once(value)) {
                    inner.declared.insert(var.text().to_string());
                    inner.bound.insert(var.text().to_string());
                    inner.types.remove(var.text());
                }
                self.declarations(query, &BTreeSet::new());
                self.in_every += 1;
                let (_, unbound) = self.query(query, &inner);
                self.in_every -= 1;
                needs.unbound.extend(unbound);
            }
        }
        for with in &stmt.with_mods {
            // `with f as upper` replaces a function with a builtin, which is no variable.
            let function = get_path_string(&with.r#as, None).is_ok_and(|name| {
                SIGNATURES.iter().any(|(n, ..)| *n == name)
                    || self
                        .scope
                        .program
                        .function_arity(&self.scope.resolve(&name))
                        .is_some()
            });
            if !function {
                self.eval(&with.r#as, frame, false, &mut needs);
            }
        }
        needs
    }

    /// A statement's expression: unification and calls with an output argument bind.
    fn top(&mut self, expr: &Expr, frame: &Frame, needs: &mut Needs) {
        match expr {
            Expr::AssignExpr {
                op: AssignOp::ColEq,
                lhs,
                rhs,
                ..
            } => {
                let mut right = Needs::default();
                self.eval(rhs, frame, true, &mut right);
                self.check_match(lhs, rhs, expr.span(), frame);
                if right.ready() {
                    let mut names = BTreeSet::new();
                    let mut spans = Vec::new();
                    assigned_vars(lhs, &mut names, &mut spans);
                    right.binds.extend(names);
                    bind_types(lhs, self.ty(rhs, frame), None, &mut right.types);
                }
                needs.absorb(right);
            }
            Expr::AssignExpr {
                op: AssignOp::Eq,
                lhs,
                rhs,
                ..
            } => {
                self.unify(lhs, rhs, frame, needs);
                self.check_match(lhs, rhs, expr.span(), frame);
            }
            Expr::Call { fcn, params, .. } => {
                let arity = self.arity(fcn, frame);
                match (arity, params.split_last()) {
                    (Some(arity), Some((output, inputs))) if params.len() == arity + 1 => {
                        for input in inputs {
                            self.eval(input, frame, true, needs);
                        }
                        self.call(fcn, params, frame, true);
                        if needs.ready() {
                            let bound = needs.binds.clone();
                            self.pattern(output, frame, false, needs);
                            let result = self.call_result(fcn, inputs.len(), frame);
                            let new: BTreeSet<String> =
                                needs.binds.difference(&bound).cloned().collect();
                            bind_types(output, result, Some(&new), &mut needs.types);
                        } else {
                            self.eval(output, frame, true, needs);
                        }
                    }
                    _ => self.eval(expr, frame, true, needs),
                }
            }
            Expr::BoolExpr {
                op: BoolOp::Eq,
                lhs,
                rhs,
                ..
            } => {
                self.eval(expr, frame, true, needs);
                self.check_match(lhs, rhs, expr.span(), frame);
            }
            _ => self.eval(expr, frame, true, needs),
        }
    }

    /// `a = b`: either side binds its variables when the other can be evaluated; arrays of
    /// equal length unify item by item.
    fn unify(&mut self, lhs: &Expr, rhs: &Expr, frame: &Frame, needs: &mut Needs) {
        // Values that cannot match bind nothing.
        let mismatched = match (lhs, rhs) {
            (Expr::Array { items: left, .. }, Expr::Array { items: right, .. }) => {
                left.len() != right.len()
            }
            (Expr::Object { fields: left, .. }, Expr::Object { fields: right, .. }) => {
                match (object_keys(left), object_keys(right)) {
                    (Some(left), Some(right)) => left != right,
                    _ => false,
                }
            }
            _ => self.ty(lhs, frame).kinds() & self.ty(rhs, frame).kinds() == 0,
        };
        if mismatched {
            self.eval(lhs, frame, true, needs);
            self.eval(rhs, frame, true, needs);
            return;
        }
        if let (Expr::Object { fields: left, .. }, Expr::Object { fields: right, .. }) = (lhs, rhs)
        {
            if let Some(pairs) = pair_fields(left, right) {
                self.unify_all(pairs, frame, needs);
                return;
            }
        }
        if let (Expr::Array { items: left, .. }, Expr::Array { items: right, .. }) = (lhs, rhs) {
            let pairs = left
                .iter()
                .zip(right.iter())
                .map(|(l, r)| (l.as_ref(), r.as_ref()))
                .collect();
            self.unify_all(pairs, frame, needs);
            return;
        }
        for (pattern, value) in [(lhs, rhs), (rhs, lhs)] {
            let mut evaluated = Needs::default();
            self.eval(value, frame, true, &mut evaluated);
            if !evaluated.ready() {
                continue;
            }
            let mut matched = Needs::default();
            self.pattern(pattern, frame, false, &mut matched);
            if matched.ready() {
                let bound = matched.binds.clone();
                bind_types(
                    pattern,
                    self.ty(value, frame),
                    Some(&bound),
                    &mut matched.types,
                );
                needs.absorb(evaluated);
                needs.absorb(matched);
                return;
            }
        }
        self.eval(lhs, frame, true, needs);
        self.eval(rhs, frame, true, needs);
    }

    /// Pairs of items unified together: they bind in any order, so repeat while one binds
    /// what another needs.
    fn unify_all(&mut self, pairs: Vec<(&Expr, &Expr)>, frame: &Frame, needs: &mut Needs) {
        let mut frame = frame.clone();
        let mut pending = pairs;
        let mut binds = BTreeSet::new();
        loop {
            let mut progress = false;
            let mut still = Vec::new();
            for (l, r) in pending {
                let mut item = Needs::default();
                self.unify(l, r, &frame, &mut item);
                if item.ready() {
                    frame.bound.extend(item.binds.iter().cloned());
                    frame.types.extend(item.types.clone());
                    needs.types.extend(item.types);
                    binds.extend(item.binds);
                    progress = true;
                } else {
                    still.push((l, r));
                }
            }
            pending = still;
            if pending.is_empty() || !progress {
                break;
            }
        }
        for (l, r) in pending {
            self.unify(l, r, &frame, needs);
        }
        needs.binds.extend(binds);
    }

    /// A pattern that a value is matched against: its unbound variables are bound. With
    /// `declares`, its variables are new (`some x in`), bound or not.
    fn pattern(&mut self, expr: &Expr, frame: &Frame, declares: bool, needs: &mut Needs) {
        match expr {
            Expr::Var { span, .. } => {
                let name = span.text();
                if declares || (self.is_local(name, frame) && !frame.bound.contains(name)) {
                    if name != WILDCARD {
                        needs.binds.insert(name.to_string());
                    }
                } else {
                    self.eval(expr, frame, true, needs);
                }
            }
            Expr::Array { items, .. } => {
                for item in items {
                    self.pattern(item, frame, declares, needs);
                }
            }
            Expr::Object { fields, .. } => {
                for (_, key, value) in fields {
                    self.eval(key, frame, true, needs);
                    self.pattern(value, frame, declares, needs);
                }
            }
            _ => self.eval(expr, frame, true, needs),
        }
    }

    /// The argument count of the function `fcn` names, when known.
    fn arity(&self, fcn: &Expr, frame: &Frame) -> Option<usize> {
        let name = get_path_string(fcn, None).ok()?;
        let root = name.split('.').next()?;
        if frame.declared.contains(root) {
            return None;
        }
        if self.scope.is_global(root) {
            return self
                .scope
                .program
                .function_arity(&self.scope.resolve(&name));
        }
        let local = format!("{}.{name}", self.scope.package);
        if let Some(arity) = self.scope.program.function_arity(&local) {
            return Some(arity);
        }
        if let Some(arity) = self.scope.program.host_functions.get(&name) {
            return Some(*arity);
        }
        SIGNATURES
            .iter()
            .find(|(n, ..)| *n == name)
            .map(|(_, args, ..)| args.len())
    }

    /// An expression evaluated for its value: its local variables must be bound, except the
    /// variable keys of references, which it binds when `binds` (not under `not`).
    fn eval(&mut self, expr: &Expr, frame: &Frame, binds: bool, needs: &mut Needs) {
        if self.lifted.iter().any(|call| std::ptr::eq(*call, expr)) {
            return;
        }
        match expr {
            Expr::Var { span, .. } => {
                let name = span.text();
                if self.is_local(name, frame) {
                    if !frame.bound.contains(name) && !needs.binds.contains(name) {
                        needs.unbound.push((name.to_string(), span.clone()));
                    }
                } else {
                    self.global(name, span);
                }
            }
            Expr::RefDot { .. } | Expr::RefBrack { .. } => {
                if let (_, Some(have)) = self.walk_reference(expr, frame) {
                    if self.in_every == 0 {
                        self.errors.push(error(
                            expr.span(),
                            crate::codes::UNDEFINED_REF.name,
                            format!("undefined ref: {}: have: {have}", expr.span().text()),
                        ));
                    }
                }
                if let Ok(path) = get_path_string(expr, None) {
                    if let Some(root) = path.split('.').next() {
                        if !self.is_local(root, frame) {
                            self.global(&path, expr.span());
                        }
                    }
                }
                self.reference(expr, frame, binds, needs);
            }
            Expr::Call { fcn, params, .. } => {
                for param in params {
                    self.eval(param, frame, binds, needs);
                }
                self.call(fcn, params, frame, false);
            }
            Expr::ArrayCompr { term, query, .. } | Expr::SetCompr { term, query, .. } => {
                self.closure(expr, &[term], query, frame, needs);
            }
            Expr::ObjectCompr {
                key, value, query, ..
            } => self.closure(expr, &[key, value], query, frame, needs),
            Expr::Array { items, .. } | Expr::Set { items, .. } => {
                for item in items {
                    self.eval(item, frame, binds, needs);
                }
            }
            Expr::Object { fields, .. } => {
                for (_, key, value) in fields {
                    self.eval(key, frame, binds, needs);
                    self.eval(value, frame, binds, needs);
                }
            }
            Expr::UnaryExpr { expr, .. } => self.eval(expr, frame, binds, needs),
            Expr::ArithExpr {
                op, lhs, rhs, span, ..
            } => {
                self.eval(lhs, frame, binds, needs);
                self.eval(rhs, frame, binds, needs);
                self.operator(arith_name(op), lhs, rhs, span, frame);
            }
            Expr::BinExpr {
                op, lhs, rhs, span, ..
            } => {
                self.eval(lhs, frame, binds, needs);
                self.eval(rhs, frame, binds, needs);
                self.operator(set_name(op), lhs, rhs, span, frame);
            }
            Expr::BoolExpr { lhs, rhs, .. } | Expr::AssignExpr { lhs, rhs, .. } => {
                self.eval(lhs, frame, binds, needs);
                self.eval(rhs, frame, binds, needs);
            }
            Expr::Membership {
                key,
                value,
                collection,
                ..
            } => {
                if let Some(key) = key {
                    self.eval(key, frame, binds, needs);
                }
                self.eval(value, frame, binds, needs);
                self.eval(collection, frame, binds, needs);
            }
            Expr::String { .. }
            | Expr::RawString { .. }
            | Expr::Number { .. }
            | Expr::Bool { .. }
            | Expr::Null { .. } => {}
        }
    }

    /// A reference to a global name, outside a call: a dependency, and not a function.
    fn global(&mut self, path: &str, span: &Span) {
        self.references.push((path.to_string(), span.clone()));
        let resolved = self.scope.resolve(path);
        if self.scope.program.function_arity(&resolved).is_some() {
            self.errors.push(error(
                span,
                crate::codes::FUNCTION_NOT_CALLED.name,
                format!("function {resolved} used as reference, not called"),
            ));
        }
    }

    fn reference(&mut self, expr: &Expr, frame: &Frame, binds: bool, needs: &mut Needs) {
        match expr {
            Expr::RefDot { refr, .. } => self.reference(refr, frame, binds, needs),
            Expr::RefBrack { refr, index, .. } => {
                self.reference(refr, frame, binds, needs);
                match index.as_ref() {
                    Expr::Var { span, .. }
                        if binds
                            && self.is_local(span.text(), frame)
                            && !frame.bound.contains(span.text()) =>
                    {
                        let name = span.text();
                        if name != WILDCARD {
                            needs.binds.insert(name.to_string());
                            // OPA types a key variable by the keys of what it selects from.
                            let keys = self.ty(refr, frame).keys();
                            if !keys.is_any() && !needs.types.contains_key(name) {
                                needs.types.insert(name.to_string(), keys);
                            }
                        }
                    }
                    // A key that is a pattern (`q[{"msg": msg}]`) binds its variables.
                    index @ (Expr::Array { .. } | Expr::Object { .. }) if binds => {
                        self.pattern(index, frame, false, needs);
                    }
                    index => self.eval(index, frame, binds, needs),
                }
            }
            Expr::Var { span, .. } => {
                let name = span.text();
                if self.is_local(name, frame)
                    && !frame.bound.contains(name)
                    && !needs.binds.contains(name)
                {
                    needs.unbound.push((name.to_string(), span.clone()));
                }
            }
            other => self.eval(other, frame, binds, needs),
        }
    }

    /// A comprehension: its body runs with the enclosing bindings; its own variables stay in.
    fn closure(
        &mut self,
        comprehension: &Expr,
        terms: &[&Ref<Expr>],
        query: &Query,
        frame: &Frame,
        needs: &mut Needs,
    ) {
        let mut inner = frame.clone();
        inner.bound.extend(needs.binds.iter().cloned());
        inner.bound.retain(|name| !frame.hidden.contains(name));
        self.declarations(query, &BTreeSet::new());
        let (after, unbound) = self.query(query, &inner);
        needs.unbound.extend(unbound);
        let mut term_needs = Needs::default();
        for term in terms {
            self.eval(term, &after, true, &mut term_needs);
        }
        needs.unbound.extend(term_needs.unbound);
        let types: Vec<Ty> = terms.iter().map(|t| self.ty(t, &after)).collect();
        let ty = match (comprehension, types.as_slice()) {
            (Expr::ArrayCompr { .. }, [item]) => Ty::array_of(item.clone()),
            (Expr::SetCompr { .. }, [item]) => Ty::Set(Box::new(item.clone())),
            (Expr::ObjectCompr { .. }, [key, value]) => Ty::object_of(key.clone(), value.clone()),
            _ => Ty::ANY,
        };
        self.closures.insert(comprehension as *const Expr, ty);
    }

    /// A call's function: undefined functions, argument counts and known argument types.
    /// `statement`: the call is a statement of its own, where one more argument than the
    /// function takes is its output.
    fn call(&mut self, fcn: &Expr, params: &[Ref<Expr>], frame: &Frame, statement: bool) {
        let Ok(name) = get_path_string(fcn, None) else {
            return;
        };
        let Some(root) = name.split('.').next() else {
            return;
        };
        if frame.declared.contains(root) {
            return;
        }
        let span = fcn.span();
        if self.scope.is_global(root) {
            let path = self.scope.resolve(&name);
            self.references.push((name.clone(), span.clone()));
            // Functions are rules: nothing else (data, input) defines one.
            // Rego v0 policies call rules `f() = x { … }` as `f()` (Gatekeeper's library does):
            // let those through.
            let v0_constant =
                !self.scope.rego_v1 && params.is_empty() && self.scope.program.defines(&path);
            if path.starts_with("data.")
                && self.scope.program.function_arity(&path).is_none()
                && !v0_constant
            {
                self.errors.push(error(
                    span,
                    crate::codes::UNDEFINED_FUNCTION.name,
                    format!("undefined function {path}"),
                ));
            }
            if let Some(arity) = self.scope.program.function_arity(&path) {
                let (types, result) = match self.scope.program.types.functions.get(&path) {
                    Some((types, result)) if types.len() == arity => {
                        (types.clone(), result.clone())
                    }
                    _ => (vec![Ty::ANY; arity], Ty::ANY),
                };
                let want = types
                    .iter()
                    .chain(std::iter::once(&result))
                    .map(Ty::to_string)
                    .collect::<Vec<_>>()
                    .join(", ");
                let params: Vec<&Expr> = params.iter().map(|p| p.as_ref()).collect();
                self.check_arguments(
                    &path, &params, &types, &result, &want, span, frame, statement, true,
                );
            }
            return;
        }
        let signature = SIGNATURES.iter().find(|(n, ..)| *n == name);
        if name != "print"
            && lookup(name.as_str(), self.scope.rego_v1).is_none()
            && !self.scope.program.host_functions.contains_key(&name)
        {
            self.unsupported.push((name.clone(), span.clone()));
        }
        let Some((.., want, _)) = signature else {
            if !name.contains('.')
                && name != "print"
                && !self.scope.program.host_functions.contains_key(&name)
            {
                self.errors.push(error(
                    span,
                    crate::codes::UNDEFINED_FUNCTION.name,
                    format!("undefined function {name}"),
                ));
            }
            return;
        };
        // OPA's deprecated builtins, which regorus offers to v0 modules only.
        if self.scope.rego_v1 && DEPRECATED.contains_key(name.as_str()) {
            self.errors.push(error(
                span,
                crate::codes::DEPRECATED_BUILTIN.name,
                format!("deprecated built-in function calls in expression: {name}"),
            ));
        }
        let Some((types, result)) = builtin_type(&name) else {
            return;
        };
        let params: Vec<&Expr> = params.iter().map(|p| p.as_ref()).collect();
        self.check_arguments(
            &name, &params, &types, &result, want, span, frame, statement, false,
        );
    }

    /// Argument counts and known argument types of a call to `name` (a builtin, or a function
    /// of the policy's, `user`), whose parameters and result have types `params`, `result`.
    #[allow(clippy::too_many_arguments)]
    fn check_arguments(
        &mut self,
        name: &str,
        args: &[&Expr],
        params: &[Ty],
        result: &Ty,
        want: &str,
        span: &Span,
        frame: &Frame,
        statement: bool,
        user: bool,
    ) {
        let have: Vec<Ty> = args.iter().map(|p| self.ty(p, frame)).collect();
        let have_text = have
            .iter()
            .map(Ty::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        if have.len() != params.len() && !(statement && have.len() == params.len() + 1) {
            if user {
                self.errors.push(error(
                    span,
                    crate::codes::FUNCTION_ARITY.name,
                    format!(
                        "function {name} has arity {}, got {} arguments",
                        params.len(),
                        have.len()
                    ),
                ));
            } else {
                self.errors.push(error(
                    span,
                    crate::codes::BUILTIN_ARITY.name,
                    format!("{name}: arity mismatch: have ({have_text}), want ({want})"),
                ));
            }
            return;
        }
        if self.in_every > 0 {
            return;
        }
        let admitted = params.iter().chain(std::iter::once(result));
        if args
            .iter()
            .zip(admitted)
            .any(|(arg, want)| !self.unify_term(arg, want, frame))
        {
            let code = if user {
                crate::codes::FUNCTION_TYPE.name
            } else {
                crate::codes::BUILTIN_TYPE.name
            };
            self.errors.push(error(
                span,
                code,
                format!("{name}: invalid argument(s): have ({have_text}), want ({want})"),
            ));
        }
    }

    /// An infix operator, which OPA checks as the builtin `name`.
    fn operator(&mut self, name: &str, lhs: &Expr, rhs: &Expr, span: &Span, frame: &Frame) {
        if let (Some((params, result)), Some((.., want, _))) = (
            builtin_type(name),
            SIGNATURES.iter().find(|(n, ..)| *n == name),
        ) {
            self.check_arguments(
                name,
                &[lhs, rhs],
                &params,
                &result,
                want,
                span,
                frame,
                false,
                false,
            );
        }
    }

    /// The result type of a call of `fcn` with `count` arguments (`any` if unknown).
    fn call_result(&self, fcn: &Expr, count: usize, frame: &Frame) -> Ty {
        let Ok(name) = get_path_string(fcn, None) else {
            return Ty::ANY;
        };
        let Some(root) = name.split('.').next() else {
            return Ty::ANY;
        };
        if frame.declared.contains(root) {
            return Ty::ANY;
        }
        if self.scope.is_global(root) {
            let path = self.scope.resolve(&name);
            return match self.scope.program.types.functions.get(&path) {
                Some((args, result)) if args.len() == count => result.clone(),
                _ => Ty::ANY,
            };
        }
        match builtin_type(&name) {
            Some((args, result)) if args.len() == count => result,
            _ => Ty::ANY,
        }
    }

    /// Whether the term `expr` may be a value of type `want`, as OPA's `unify1` decides: the
    /// items of a literal array, object or set each against the type of their place (so an
    /// object literal need not have the optional keys of `want`), other terms by their type.
    fn unify_term(&self, expr: &Expr, want: &Ty, frame: &Frame) -> bool {
        if let Ty::Any(of) = want {
            if matches!(
                expr,
                Expr::Array { .. } | Expr::Object { .. } | Expr::Set { .. }
            ) {
                return of.is_empty() || of.iter().any(|t| self.unify_term(expr, t, frame));
            }
        }
        match (expr, want) {
            (Expr::Array { items, .. }, Ty::Array { items: fixed, rest }) => {
                (items.len() == fixed.len() || rest.is_some())
                    && items.iter().enumerate().all(|(i, item)| {
                        fixed
                            .get(i)
                            .or(rest.as_deref())
                            .is_some_and(|t| self.unify_term(item, t, frame))
                    })
            }
            (
                Expr::Object { fields, .. },
                Ty::Object {
                    fields: fixed,
                    rest,
                },
            ) => {
                (fields.len() == fixed.len() || rest.is_some())
                    && fields.iter().all(|(_, key, value)| {
                        match key.as_ref() {
                            Expr::String { .. } | Expr::RawString { .. } => key_text(key)
                                .and_then(|k| want.select_key(&k).cloned())
                                .is_some_and(|t| self.unify_term(value, &t, frame)),
                            // Keys that are no strings: not followed.
                            _ => true,
                        }
                    })
            }
            (Expr::Set { items, .. }, Ty::Set(of)) => {
                items.iter().all(|item| self.unify_term(item, of, frame))
            }
            (Expr::Array { .. } | Expr::Object { .. } | Expr::Set { .. }, _) => false,
            _ => types::unifies(&self.ty(expr, frame), want),
        }
    }

    /// `a = b` and `a == b` as statements: OPA refuses values whose types cannot unify.
    fn check_match(&mut self, lhs: &Expr, rhs: &Expr, span: &Span, frame: &Frame) {
        if self.in_every > 0 {
            return;
        }
        let (left, right) = (self.ty(lhs, frame), self.ty(rhs, frame));
        if !types::unifies(&left, &right) {
            self.errors.push(error(
                span,
                crate::codes::MATCH_ERROR.name,
                format!("match error: left: {left}, right: {right}"),
            ));
        }
    }

    /// The type `expr` has, as far as is known before evaluation (`any` when not known).
    fn ty(&self, expr: &Expr, frame: &Frame) -> Ty {
        match expr {
            Expr::String { .. } | Expr::RawString { .. } => Ty::String,
            Expr::Number { .. } => Ty::Number,
            Expr::Bool { .. } | Expr::BoolExpr { .. } | Expr::Membership { .. } => Ty::Boolean,
            Expr::Null { .. } => Ty::Null,
            // OPA types `[]` and `{}` as any array and any object.
            Expr::Array { items, .. } if items.is_empty() => Ty::array_of(Ty::ANY),
            Expr::Object { fields, .. } if fields.is_empty() => Ty::object_of(Ty::ANY, Ty::ANY),
            Expr::Array { items, .. } => Ty::Array {
                items: items.iter().map(|i| self.ty(i, frame)).collect(),
                rest: None,
            },
            Expr::Set { items, .. } => Ty::Set(Box::new(
                items
                    .iter()
                    .map(|i| self.ty(i, frame))
                    .reduce(Ty::or)
                    .unwrap_or(Ty::ANY),
            )),
            Expr::Object { fields, .. } => {
                let values = fields.iter().map(|(_, _, v)| self.ty(v, frame));
                match object_keys(fields) {
                    Some(keys) if keys.len() == fields.len() => {
                        let mut typed: Vec<(String, Ty)> = fields
                            .iter()
                            .filter_map(|(_, k, _)| key_text(k))
                            .zip(values)
                            .collect();
                        typed.sort_by(|a, b| a.0.cmp(&b.0));
                        Ty::Object {
                            fields: typed,
                            rest: None,
                        }
                    }
                    // Keys that are no string constants: what OPA makes of them is not
                    // followed.
                    _ => Ty::object_of(Ty::ANY, Ty::ANY),
                }
            }
            Expr::ArrayCompr { .. } | Expr::SetCompr { .. } | Expr::ObjectCompr { .. } => self
                .closures
                .get(&(expr as *const Expr))
                .cloned()
                .unwrap_or(Ty::ANY),
            Expr::ArithExpr { op, .. } => builtin_type(arith_name(op)).map_or(Ty::ANY, |t| t.1),
            Expr::BinExpr { op, .. } => builtin_type(set_name(op)).map_or(Ty::ANY, |t| t.1),
            Expr::Var { .. } | Expr::RefDot { .. } | Expr::RefBrack { .. } => {
                self.reference_ty(expr, frame)
            }
            Expr::Call { fcn, params, .. } => self.call_result(fcn, params.len(), frame),
            _ => Ty::ANY,
        }
    }

    /// The type of a variable or reference: a local's as bound, a rule's as inferred, then
    /// each key selected.
    fn reference_ty(&self, expr: &Expr, frame: &Frame) -> Ty {
        self.walk_reference(expr, frame).0
    }

    /// A reference's type, and the type of the value it cannot select from, if any: a
    /// value without keys, or an object or array known to lack the key.
    fn walk_reference(&self, expr: &Expr, frame: &Frame) -> (Ty, Option<Ty>) {
        let mut steps = Vec::new();
        let mut base = expr;
        loop {
            match base {
                Expr::RefDot { refr, field, .. } => {
                    steps.push(Key::Field(field.0.text().to_string()));
                    base = refr;
                }
                Expr::RefBrack { refr, index, .. } => {
                    steps.push(match index.as_ref() {
                        Expr::String { .. } | Expr::RawString { .. } => {
                            key_text(index).map_or(Key::Other, Key::Field)
                        }
                        Expr::Number { value, .. } => value
                            .as_u64()
                            .ok()
                            .and_then(|n| usize::try_from(n).ok())
                            .map_or(Key::Other, Key::Index),
                        _ => Key::Other,
                    });
                    base = refr;
                }
                _ => break,
            }
        }
        steps.reverse();
        let mut steps = steps.into_iter();
        let mut ty = match base {
            Expr::Var { span, .. } if self.is_local(span.text(), frame) => {
                frame.types.get(span.text()).cloned().unwrap_or(Ty::ANY)
            }
            Expr::Var { span, .. } => {
                // A global: follow constant keys until they name a rule.
                let mut path = self.scope.resolve(span.text());
                loop {
                    if let Some(ty) = self.scope.program.types.values.get(&path) {
                        break ty.clone();
                    }
                    match steps.next() {
                        Some(Key::Field(key)) => path = format!("{path}.{key}"),
                        _ => return (Ty::ANY, None),
                    }
                }
            }
            other => self.ty(other, frame),
        };
        for step in steps {
            let lacks = match (&ty, &step) {
                // OPA lets `{}` and `[]` be selected from.
                (Ty::Object { fields, rest: None }, Key::Field(key)) => {
                    !fields.is_empty() && !fields.iter().any(|(k, _)| k == key)
                }
                (Ty::Array { items, rest: None }, Key::Index(i)) => {
                    !items.is_empty() && *i >= items.len()
                }
                (ty, _) => is_scalar(ty),
            };
            if lacks {
                return (Ty::ANY, Some(ty));
            }
            ty = match step {
                Key::Other => ty.values(),
                key => ty.select(&key),
            };
        }
        (ty, None)
    }
}

/// The variables whose type OPA widens to `any` in `query`: those inside an array, set or
/// object written as an argument of a call or operator (OPA unifies such an argument item by
/// item with each type the parameter admits, joining the types of its variables).
fn widened_vars(query: &Query) -> BTreeSet<String> {
    fn walk(expr: &Expr, argument: bool, out: &mut BTreeSet<String>) {
        match expr {
            Expr::Array { .. } | Expr::Set { .. } | Expr::Object { .. } if argument => {
                collect_scope_vars(expr, out);
            }
            Expr::Array { items, .. } | Expr::Set { items, .. } => {
                for item in items {
                    walk(item, false, out);
                }
            }
            Expr::Object { fields, .. } => {
                for (_, key, value) in fields {
                    walk(key, false, out);
                    walk(value, false, out);
                }
            }
            Expr::Call { params, .. } => {
                for param in params {
                    walk(param, true, out);
                }
            }
            Expr::ArithExpr { lhs, rhs, .. }
            | Expr::BinExpr { lhs, rhs, .. }
            | Expr::BoolExpr { lhs, rhs, .. } => {
                walk(lhs, true, out);
                walk(rhs, true, out);
            }
            Expr::AssignExpr { lhs, rhs, .. } => {
                walk(lhs, false, out);
                walk(rhs, false, out);
            }
            Expr::Membership {
                key,
                value,
                collection,
                ..
            } => {
                for operand in key.iter().chain([value, collection]) {
                    walk(operand, true, out);
                }
            }
            Expr::UnaryExpr { expr, .. } => walk(expr, true, out),
            Expr::RefDot { refr, .. } => walk(refr, false, out),
            Expr::RefBrack { refr, index, .. } => {
                walk(refr, false, out);
                walk(index, false, out);
            }
            _ => {}
        }
    }
    let mut out = BTreeSet::new();
    for stmt in &query.stmts {
        match &stmt.literal {
            Literal::Expr { expr, .. } | Literal::NotExpr { expr, .. } => match expr.as_ref() {
                // A statement's `==` is unification to OPA.
                Expr::BoolExpr {
                    op: BoolOp::Eq,
                    lhs,
                    rhs,
                    ..
                } => {
                    walk(lhs, false, &mut out);
                    walk(rhs, false, &mut out);
                }
                expr => walk(expr, false, &mut out),
            },
            Literal::SomeIn { collection, .. } => walk(collection, false, &mut out),
            Literal::Every { domain, .. } => walk(domain, false, &mut out),
            Literal::SomeVars { .. } => {}
        }
        for with in &stmt.with_mods {
            walk(&with.r#as, false, &mut out);
        }
    }
    out
}

/// The uses of variable `name` in `expr`, in the order OPA's type checker meets them (the
/// calls nested in an argument before the call): the type each use asks of it, the builtin
/// and where. `other` is set by a use whose type is not followed. `statement`: `expr` is a
/// statement's own (where `==` is unification).
fn arg_uses(
    expr: &Expr,
    name: &str,
    statement: bool,
    uses: &mut Vec<(Ty, Option<String>, Span)>,
    other: &mut bool,
) {
    let is_name = |e: &Expr| matches!(e, Expr::Var { span, .. } if span.text() == name);
    let mut vars = BTreeSet::new();
    collect_vars(expr, &mut vars);
    if !vars.contains(name) {
        return;
    }
    // A call of `builtin` (`None`: of any function taking any values) with `operands`.
    let call = |builtin: Option<&str>,
                operands: &[&Expr],
                span: &Span,
                uses: &mut Vec<_>,
                other: &mut bool| {
        for operand in operands.iter().filter(|o| !is_name(o)) {
            arg_uses(operand, name, false, uses, other);
        }
        let params = match builtin {
            Some(builtin) => match builtin_type(builtin) {
                Some((params, _)) if params.len() == operands.len() => Some(params),
                _ => None,
            },
            None => Some(vec![Ty::ANY; operands.len()]),
        };
        for (i, operand) in operands.iter().enumerate() {
            if is_name(operand) {
                match params.as_ref().and_then(|p| p.get(i)) {
                    Some(ty) => uses.push((ty.clone(), builtin.map(str::to_string), span.clone())),
                    None => *other = true,
                }
            }
        }
    };
    match expr {
        Expr::Call {
            fcn, params, span, ..
        } => {
            let operands: Vec<&Expr> = params.iter().map(|p| p.as_ref()).collect();
            match get_path_string(fcn, None) {
                Ok(fcn) if SIGNATURES.iter().any(|(n, ..)| *n == fcn) => {
                    call(Some(&fcn), &operands, span, uses, other);
                }
                _ => *other = true,
            }
        }
        Expr::ArithExpr {
            op, lhs, rhs, span, ..
        } => {
            call(Some(arith_name(op)), &[lhs, rhs], span, uses, other);
        }
        Expr::BinExpr {
            op, lhs, rhs, span, ..
        } => {
            call(Some(set_name(op)), &[lhs, rhs], span, uses, other);
        }
        // A statement's `==` is unification: not followed.
        Expr::BoolExpr { op: BoolOp::Eq, .. } if statement => *other = true,
        // Comparisons and membership take any values.
        Expr::BoolExpr { lhs, rhs, span, .. } => call(None, &[lhs, rhs], span, uses, other),
        Expr::Membership {
            key,
            value,
            collection,
            span,
            ..
        } => {
            let operands: Vec<&Expr> = key
                .iter()
                .map(|k| k.as_ref())
                .chain([value.as_ref(), collection.as_ref()])
                .collect();
            call(None, &operands, span, uses, other);
        }
        // `y := x`: `x` is any unless typed before (then unchanged).
        Expr::AssignExpr {
            op: AssignOp::ColEq,
            lhs,
            rhs,
            span,
            ..
        } if !is_name(lhs) => {
            if is_name(rhs) {
                uses.push((Ty::ANY, None, span.clone()));
            } else {
                arg_uses(rhs, name, false, uses, other);
            }
            let mut left = BTreeSet::new();
            collect_vars(lhs, &mut left);
            *other |= left.contains(name);
        }
        Expr::Array { items, .. } | Expr::Set { items, .. } => {
            for item in items {
                arg_uses(item, name, false, uses, other);
            }
        }
        Expr::Object { fields, .. } => {
            for (_, key, value) in fields {
                arg_uses(key, name, false, uses, other);
                arg_uses(value, name, false, uses, other);
            }
        }
        // The variable itself, references, unification, comprehensions: not followed.
        _ => *other = true,
    }
}

/// Records the types of the variables `pattern` binds (only `names`, if given) when matched
/// against a value of type `ty`.
fn bind_types(
    pattern: &Expr,
    ty: Ty,
    names: Option<&BTreeSet<String>>,
    types: &mut BTreeMap<String, Ty>,
) {
    match pattern {
        Expr::Var { span, .. } => {
            let name = span.text();
            if name != WILDCARD && !ty.is_any() && names.is_none_or(|n| n.contains(name)) {
                types.insert(name.to_string(), ty);
            }
        }
        Expr::Array { items, .. } => {
            for (i, item) in items.iter().enumerate() {
                bind_types(item, ty.select(&Key::Index(i)), names, types);
            }
        }
        _ => {}
    }
}

/// A type with values of no kind that has keys (null, boolean, number, string).
fn is_scalar(ty: &Ty) -> bool {
    ty.kinds() & (ARRAY | SET | OBJECT) == 0
}

fn arith_name(op: &ArithOp) -> &'static str {
    match op {
        ArithOp::Add => "plus",
        ArithOp::Sub => "minus",
        ArithOp::Mul => "mul",
        ArithOp::Div => "div",
        ArithOp::Mod => "rem",
    }
}

fn set_name(op: &BinOp) -> &'static str {
    match op {
        BinOp::Union => "or",
        BinOp::Intersection => "and",
    }
}

/// An expression's direct sub-expressions (a call's arguments, not its function; not the
/// bodies of closures).
pub(super) fn children(expr: &Expr) -> Vec<&Expr> {
    match expr {
        Expr::Array { items, .. } | Expr::Set { items, .. } => {
            items.iter().map(|i| i.as_ref()).collect()
        }
        Expr::Object { fields, .. } => fields
            .iter()
            .flat_map(|(_, k, v)| [k.as_ref(), v.as_ref()])
            .collect(),
        Expr::Call { params, .. } => params.iter().map(|p| p.as_ref()).collect(),
        Expr::UnaryExpr { expr, .. } => vec![expr.as_ref()],
        Expr::RefDot { refr, .. } => vec![refr.as_ref()],
        Expr::RefBrack { refr, index, .. } => vec![refr.as_ref(), index.as_ref()],
        Expr::ArithExpr { lhs, rhs, .. }
        | Expr::BinExpr { lhs, rhs, .. }
        | Expr::BoolExpr { lhs, rhs, .. }
        | Expr::AssignExpr { lhs, rhs, .. } => vec![lhs.as_ref(), rhs.as_ref()],
        Expr::Membership {
            key,
            value,
            collection,
            ..
        } => key
            .iter()
            .map(|k| k.as_ref())
            .chain([value.as_ref(), collection.as_ref()])
            .collect(),
        _ => Vec::new(),
    }
}

/// Calls and operators (`==` too, where it is not a statement's unification).
pub(super) fn is_call(expr: &Expr) -> bool {
    matches!(
        expr,
        Expr::Call { .. }
            | Expr::UnaryExpr { .. }
            | Expr::ArithExpr { .. }
            | Expr::BinExpr { .. }
            | Expr::BoolExpr { .. }
            | Expr::Membership { .. }
    )
}

/// The outermost calls and operators nested in `expr` (not `expr` itself), outside closures.
fn nested_calls(expr: &Expr) -> Vec<&Expr> {
    fn collect<'e>(expr: &'e Expr, calls: &mut Vec<&'e Expr>) {
        for child in children(expr) {
            if is_call(child) {
                calls.push(child);
            } else {
                collect(child, calls);
            }
        }
    }
    // Left to right, as OPA evaluates them.
    let mut calls = Vec::new();
    collect(expr, &mut calls);
    calls
}

/// Whether `name` occurs in `query` outside statement `sidx`.
fn used_elsewhere(query: &Query, name: &str, sidx: u32) -> bool {
    query
        .stmts
        .iter()
        .filter(|stmt| stmt.sidx != sidx)
        .any(|stmt| statement_mentions(stmt, name))
}

fn mentions(query: &Query, name: &str) -> bool {
    query
        .stmts
        .iter()
        .any(|stmt| statement_mentions(stmt, name))
}

fn statement_mentions(stmt: &LiteralStmt, name: &str) -> bool {
    let mut vars = BTreeSet::new();
    match &stmt.literal {
        Literal::SomeVars { vars: declared, .. } => {
            return declared.iter().any(|v| v.text() == name);
        }
        Literal::SomeIn {
            key,
            value,
            collection,
            ..
        } => {
            if let Some(key) = key {
                collect_vars(key, &mut vars);
            }
            collect_vars(value, &mut vars);
            collect_vars(collection, &mut vars);
        }
        Literal::Expr { expr, .. } | Literal::NotExpr { expr, .. } => {
            collect_vars(expr, &mut vars);
        }
        Literal::Every {
            key,
            value,
            domain,
            query,
            ..
        } => {
            if key
                .iter()
                .chain(std::iter::once(value))
                .any(|v| v.text() == name)
                || mentions(query, name)
            {
                return true;
            }
            collect_vars(domain, &mut vars);
        }
    }
    for with in &stmt.with_mods {
        collect_vars(&with.r#as, &mut vars);
        collect_vars(&with.refr, &mut vars);
    }
    vars.contains(name)
}

/// The variables a statement declares for its whole query (`:=`, `some`, `some … in`).
pub(super) fn declared_by(literal: &Literal, declared: &mut BTreeSet<String>) {
    match literal {
        Literal::SomeVars { vars, .. } => {
            declared.extend(vars.iter().map(|v| v.text().to_string()));
        }
        Literal::SomeIn { key, value, .. } => {
            if let Some(key) = key {
                pattern_vars(key, declared);
            }
            pattern_vars(value, declared);
        }
        Literal::Expr { expr, .. } => {
            if let Expr::AssignExpr {
                op: AssignOp::ColEq,
                lhs,
                ..
            } = expr.as_ref()
            {
                let mut spans = Vec::new();
                assigned_vars(lhs, declared, &mut spans);
            }
        }
        Literal::NotExpr { .. } | Literal::Every { .. } => {}
    }
    declared.remove(WILDCARD);
}

/// An object's keys, when all are string literals, else `None`.
fn object_keys(fields: &[(Span, Ref<Expr>, Ref<Expr>)]) -> Option<BTreeSet<String>> {
    fields.iter().map(|(_, key, _)| key_text(key)).collect()
}

/// A string key's value.
fn key_text(key: &Expr) -> Option<String> {
    match key {
        Expr::String { value, .. } | Expr::RawString { value, .. } => {
            value.as_string().ok().map(|s| s.as_ref().to_string())
        }
        _ => None,
    }
}

/// The values of two objects with the same constant keys, paired by key.
fn pair_fields<'e>(
    left: &'e [(Span, Ref<Expr>, Ref<Expr>)],
    right: &'e [(Span, Ref<Expr>, Ref<Expr>)],
) -> Option<Vec<(&'e Expr, &'e Expr)>> {
    object_keys(left)?;
    left.iter()
        .map(|(_, key, value)| {
            let (_, _, other) = right
                .iter()
                .find(|(_, k, _)| key_text(k) == key_text(key))?;
            Some((value.as_ref(), other.as_ref()))
        })
        .collect()
}

/// The parts of a `:=` target that cannot be assigned to, in OPA's words: anything but
/// variables, arrays of targets and objects with targets as values.
fn unassignable(lhs: &Expr) -> Vec<(&'static str, &Span)> {
    let what = match lhs {
        Expr::Var { .. } => return Vec::new(),
        Expr::Array { items, .. } => return items.iter().flat_map(|i| unassignable(i)).collect(),
        Expr::Object { fields, .. } => {
            return fields
                .iter()
                .flat_map(|(_, _, v)| unassignable(v))
                .collect()
        }
        Expr::Number { .. } => "number",
        Expr::String { .. } | Expr::RawString { .. } => "string",
        Expr::Bool { .. } => "boolean",
        Expr::Null { .. } => "null",
        Expr::Set { .. } => "set",
        Expr::RefDot { .. } | Expr::RefBrack { .. } => "ref",
        _ => return Vec::new(),
    };
    vec![(what, lhs.span())]
}

/// The variables of a pattern (variables, arrays and object values).
pub(super) fn pattern_vars(expr: &Expr, names: &mut BTreeSet<String>) {
    let mut spans = Vec::new();
    assigned_vars(expr, names, &mut spans);
}

/// The variables `:=` assigns on its left: variables, array items and object values (and set
/// items, which OPA lets a function's arguments name).
fn assigned_vars(expr: &Expr, names: &mut BTreeSet<String>, spans: &mut Vec<(String, Span)>) {
    match expr {
        Expr::Var { span, .. } => {
            names.insert(span.text().to_string());
            spans.push((span.text().to_string(), span.clone()));
        }
        Expr::Array { items, .. } | Expr::Set { items, .. } => {
            for item in items {
                assigned_vars(item, names, spans);
            }
        }
        Expr::Object { fields, .. } => {
            for (_, _, value) in fields {
                assigned_vars(value, names, spans);
            }
        }
        _ => {}
    }
}

/// The variable names `expr` uses in its own scope: not those of comprehensions, which are
/// scopes of their own.
pub(super) fn collect_scope_vars(expr: &Expr, names: &mut BTreeSet<String>) {
    collect_names(expr, names, false);
}

/// Every variable name in `expr`, comprehensions included.
pub(super) fn collect_vars(expr: &Expr, names: &mut BTreeSet<String>) {
    collect_names(expr, names, true);
}

fn collect_names(expr: &Expr, names: &mut BTreeSet<String>, comprehensions: bool) {
    struct Collect<'n> {
        names: &'n mut BTreeSet<String>,
        comprehensions: bool,
    }
    impl super::walk::Visitor for Collect<'_> {
        fn expr(&mut self, expr: &Expr) -> bool {
            match expr {
                Expr::Var { span, .. } => {
                    self.names.insert(span.text().to_string());
                    true
                }
                // A function's name is not a variable.
                Expr::Call { params, .. } => {
                    for param in params {
                        super::walk::expr(param, self);
                    }
                    false
                }
                Expr::ArrayCompr { .. } | Expr::SetCompr { .. } | Expr::ObjectCompr { .. } => {
                    self.comprehensions
                }
                _ => true,
            }
        }
    }
    super::walk::expr(
        expr,
        &mut Collect {
            names,
            comprehensions,
        },
    );
}
