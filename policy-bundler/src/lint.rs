//! Rego that zerohop runs, but not as OPA-Envoy does: what `check` warns about (errors with
//! `--strict`), each at its file:line:column.
//! - `with-keyword`: `with` in a policy module; the RVM compiler lacks it, so the decision runs
//!   on the regorus interpreter (slower; see docs/bundles.md).
//!
//! What OPA refuses to compile (recursion, unsafe variables, ...) is not here: the filter's
//! `engine::compile_checks` refuses such a bundle, so `check` and `build` report it as errors.

use regorus::unstable::{Parser, Source, Span, WithModifier};
use zerohop_filter::bundle::{Bundle, RegoVersion};
use zerohop_filter::engine::compile_checks::place;
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
    let mut findings = Vec::new();
    for module in &bundle.modules {
        let Ok(source) = Source::from_contents(module.path.clone(), module.source.clone()) else {
            continue;
        };
        let Ok(mut parser) = Parser::new(&source) else {
            continue;
        };
        if module.rego_version == RegoVersion::V1 && parser.enable_rego_v1().is_err() {
            continue;
        }
        let Ok(parsed) = parser.parse() else {
            continue;
        };
        for rule in &parsed.policy {
            let mut visit = Withs::default();
            walk::rule(rule, &mut visit);
            for span in &visit.0 {
                findings.push(finding(
                    span,
                    zerohop_filter::codes::WITH_KEYWORD.name,
                    "`with` in a policy module: the RVM compiler lacks it, so decisions that \
                     reach it run on the regorus interpreter"
                        .into(),
                ));
            }
        }
    }
    findings.sort();
    findings.dedup();
    findings
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

/// Collects `with` modifiers.
#[derive(Default)]
struct Withs(Vec<Span>);

impl Visitor for Withs {
    fn expr(&mut self, _expr: &regorus::unstable::Expr) -> bool {
        true
    }

    fn with(&mut self, with: &WithModifier) -> bool {
        self.0.push(with.span.clone());
        true
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
