//! Rego that zerohop runs, but not as OPA-Envoy does: what `check` warns about (errors with
//! `--strict`), each at its file:line:column.
//! - `recursion`: OPA refuses recursive rules (`rego_recursion_error`); regorus evaluates them.
//! - `with-keyword`: `with` in a policy module; the RVM compiler lacks it, so the decision runs
//!   on the regorus interpreter (slower; see the README).
//!
//! Calls to functions the filter lacks are not here: the filter refuses such a bundle, so
//! `check` reports them as errors.

use std::collections::{BTreeMap, BTreeSet};

use regorus::unstable::{Expr, Parser, Rule, RuleHead, Source, Span, WithModifier};
use regorus::utils::get_path_string;
use zerohop_filter::bundle::Bundle;
use zerohop_filter::engine::walk::{self, Visitor};

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Finding {
    pub file: String,
    pub line: u32,
    pub column: u32,
    pub code: &'static str,
    pub message: String,
}

/// Findings over the bundle's modules, sorted by place. Modules that do not parse are left to
/// the compiler, which reports them as errors.
pub fn lint(bundle: &Bundle) -> Vec<Finding> {
    let mut rules = RuleGraph::default();
    let mut findings = Vec::new();
    for module in &bundle.modules {
        let Ok(source) = Source::from_contents(module.path.clone(), module.source.clone()) else {
            continue;
        };
        let Ok(mut parser) = Parser::new(&source) else {
            continue;
        };
        if !bundle.manifest.rego_v0() && parser.enable_rego_v1().is_err() {
            continue;
        }
        let Ok(parsed) = parser.parse() else {
            continue;
        };
        let Ok(package) = get_path_string(&parsed.package.refr, Some("data")) else {
            continue;
        };
        let mut imports = BTreeMap::new();
        for import in &parsed.imports {
            if let Ok(path) = get_path_string(&import.refr, None) {
                if path.starts_with("data.") {
                    let alias = import.r#as.as_ref().map(|s| s.text().to_string());
                    let alias = alias.or_else(|| path.rsplit('.').next().map(str::to_string));
                    if let Some(alias) = alias {
                        imports.insert(alias, path);
                    }
                }
            }
        }
        let scope = Scope {
            package: &package,
            imports: &imports,
        };
        for rule in &parsed.policy {
            let mut visit = Visit::default();
            walk::rule(rule, &mut visit);
            let name = match rule.as_ref() {
                Rule::Spec { head, .. } => match head {
                    RuleHead::Compr { refr, .. }
                    | RuleHead::Set { refr, .. }
                    | RuleHead::Func { refr, .. } => scope.rule_name(refr),
                },
                Rule::Default { refr, .. } => scope.rule_name(refr),
            };
            for span in &visit.withs {
                findings.push(finding(
                    span,
                    "with-keyword",
                    "`with` in a policy module: the RVM compiler lacks it, so decisions that \
                     reach it run on the regorus interpreter"
                        .into(),
                ));
            }
            if let Some(name) = name {
                let entry = rules.rules.entry(name).or_default();
                entry.places.push(place(rule_span(rule)));
                for (reference, span) in visit.references {
                    entry.calls.push((scope.resolve(&reference), place(&span)));
                }
            }
        }
    }
    findings.extend(rules.cycles());
    findings.sort();
    findings.dedup();
    findings
}

type Place = (String, u32, u32);

/// `file:line:column` with the column in characters, as editors and OPA count (regorus counts a
/// tab as four columns).
fn place(span: &Span) -> Place {
    let contents = span.source.contents();
    let start = usize::try_from(span.start).unwrap_or(usize::MAX);
    let column = contents
        .get(..start)
        .map(|before| before.rsplit('\n').next().unwrap_or(before).chars().count() + 1)
        .and_then(|c| u32::try_from(c).ok())
        .unwrap_or(span.col);
    (span.source.file().clone(), span.line, column)
}

/// Converts a regorus column (a tab counts four) on `line` of `source` to characters.
pub fn editor_column(source: &str, line: u32, regorus_column: u32) -> u32 {
    let Some(text) = source.lines().nth(line.saturating_sub(1) as usize) else {
        return regorus_column;
    };
    let mut width = 1;
    for (index, c) in text.chars().enumerate() {
        if width >= regorus_column {
            return u32::try_from(index + 1).unwrap_or(regorus_column);
        }
        width += if c == '\t' { 4 } else { 1 };
    }
    regorus_column
}

fn finding(span: &Span, code: &'static str, message: String) -> Finding {
    let (file, line, column) = place(span);
    Finding {
        file,
        line,
        column,
        code,
        message,
    }
}

fn rule_span(rule: &Rule) -> &Span {
    match rule {
        Rule::Spec { span, .. } | Rule::Default { span, .. } => span,
    }
}

/// Name resolution within one module: local rule names, `data.` paths and `import` aliases.
struct Scope<'a> {
    package: &'a str,
    imports: &'a BTreeMap<String, String>,
}

impl Scope<'_> {
    /// The rule a head defines, named by its first component (`p` for `p.q[x] := 1`).
    fn rule_name(&self, refr: &Expr) -> Option<String> {
        let path = get_path_string(refr, None).ok()?;
        let first = path.split('.').next()?;
        Some(format!("{}.{first}", self.package))
    }

    /// A reference's full `data.` path.
    fn resolve(&self, reference: &str) -> String {
        let (first, rest) = reference.split_once('.').unwrap_or((reference, ""));
        let base = if first == "data" {
            return reference.to_string();
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
}

/// Walks rule bodies, collecting references that may name rules and `with` modifiers.
#[derive(Default)]
struct Visit {
    references: Vec<(String, Span)>,
    withs: Vec<Span>,
}

impl Visitor for Visit {
    fn expr(&mut self, expr: &Expr) -> bool {
        match expr {
            Expr::Var { span, .. } | Expr::RefDot { span, .. } | Expr::RefBrack { span, .. } => {
                if let Ok(path) = get_path_string(expr, None) {
                    self.references.push((path, span.clone()));
                }
                true
            }
            Expr::Call { fcn, params, .. } => {
                if let Ok(path) = get_path_string(fcn, None) {
                    self.references.push((path, fcn.span().clone()));
                }
                params.iter().for_each(|param| walk::expr(param, self));
                false
            }
            _ => true,
        }
    }

    fn with(&mut self, with: &WithModifier) -> bool {
        self.withs.push(with.span.clone());
        walk::expr(&with.r#as, self);
        false
    }
}

#[derive(Default)]
struct RuleNode {
    places: Vec<Place>,
    /// References from this rule's bodies (full `data.` paths) and where they are.
    calls: Vec<(String, Place)>,
}

#[derive(Default)]
struct RuleGraph {
    rules: BTreeMap<String, RuleNode>,
}

impl RuleGraph {
    /// The rule a reference depends on: the longest rule name that prefixes it.
    fn target(&self, reference: &str) -> Option<&str> {
        let mut candidate = reference;
        loop {
            if let Some((name, _)) = self.rules.get_key_value(candidate) {
                return Some(name);
            }
            candidate = candidate.rsplit_once('.')?.0;
        }
    }

    fn edges(&self, rule: &str) -> Vec<(&str, &Place)> {
        self.rules
            .get(rule)
            .map(|node| {
                node.calls
                    .iter()
                    .filter_map(|(reference, place)| Some((self.target(reference)?, place)))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// One finding per rule on a cycle, at the reference that leads back into the cycle.
    fn cycles(&self) -> Vec<Finding> {
        let mut findings = Vec::new();
        for start in self.rules.keys() {
            // Depth-first search for a path from `start` back to itself.
            let mut stack: Vec<(&str, Vec<&str>, Option<&Place>)> = vec![(start, vec![], None)];
            let mut seen = BTreeSet::new();
            while let Some((rule, path, first_call)) = stack.pop() {
                for (next, place) in self.edges(rule) {
                    let first_call = first_call.or(Some(place));
                    if next == start {
                        let mut chain: Vec<&str> = vec![start];
                        chain.extend(path.iter().copied());
                        chain.push(start);
                        let names: Vec<&str> = chain
                            .iter()
                            .map(|r| r.rsplit('.').next().unwrap_or(r))
                            .collect();
                        if let Some((file, line, column)) = first_call.cloned() {
                            findings.push(Finding {
                                file,
                                line,
                                column,
                                code: "recursion",
                                message: format!(
                                    "{start} is recursive ({}): OPA refuses this policy \
                                     (rego_recursion_error), zerohop would evaluate it",
                                    names.join(" -> ")
                                ),
                            });
                        }
                        stack.clear();
                        break;
                    }
                    if seen.insert(next) {
                        let mut path = path.clone();
                        path.push(next);
                        stack.push((next, path, first_call));
                    }
                }
            }
        }
        findings
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lint_sources(sources: &[(&str, &str)]) -> Vec<(String, u32, &'static str)> {
        let files = sources
            .iter()
            .map(|(path, text)| ((*path).to_string(), text.as_bytes().to_vec()))
            .collect();
        let bundle = Bundle::from_files(files).unwrap();
        lint(&bundle)
            .into_iter()
            .map(|f| (f.file, f.line, f.code))
            .collect()
    }

    #[test]
    fn recursion_through_functions_and_rules_is_found() {
        let found = lint_sources(&[(
            "p.rego",
            "package p\n\nf(x) := y if {\n\tx > 0\n\ty := f(x - 1)\n}\n\na if b\n\nb if data.p.a\n\nok if f(1)\n",
        )]);
        assert_eq!(
            found,
            vec![
                ("p.rego".into(), 5, "recursion"),
                ("p.rego".into(), 8, "recursion"),
                ("p.rego".into(), 10, "recursion"),
            ]
        );
    }

    #[test]
    fn recursion_across_packages_and_imports_is_found() {
        let found = lint_sources(&[
            (
                "a.rego",
                "package a\n\nimport data.b.q as other\n\np if other\n",
            ),
            ("b.rego", "package b\n\nq if data.a.p\n"),
        ]);
        assert_eq!(
            found,
            vec![
                ("a.rego".into(), 5, "recursion"),
                ("b.rego".into(), 3, "recursion"),
            ]
        );
    }

    #[test]
    fn with_in_a_policy_module_is_found() {
        let found = lint_sources(&[(
            "p.rego",
            "package p\n\ninner if input.x == 1\n\nallow if inner with input.x as 1\n",
        )]);
        assert_eq!(found, vec![("p.rego".into(), 5, "with-keyword")]);
    }

    #[test]
    fn ordinary_policies_have_no_findings() {
        let found = lint_sources(&[(
            "p.rego",
            "package p\n\nimport data.roles\n\ndefault allow := false\n\nallow if {\n\tsome r in roles[input.user]\n\tr == \"admin\"\n\tcount([x | some x in input.items; x > 1]) > 0\n}\n\nallow if f(input.x)\n\nf(x) := x + 1\n",
        )]);
        assert!(found.is_empty(), "{found:?}");
    }
}
