//! One case on both of the filter's backends, set up as the filter sets up a bundle:
//! `engine::parse` (Rego v0/v1 from the manifest, non-strict builtin errors, data) and
//! `engine::compile` (the case's query rule to an RVM program, or the reason it stays on the
//! interpreter).

use std::panic::{catch_unwind, AssertUnwindSafe};

use anyhow::{anyhow, Result};
use regorus::rvm::RegoVM;
use regorus::Value;
use zerohop_filter::bundle::{Bundle, Manifest, Module};
use zerohop_filter::engine::{self, Compiled, LoadError};

use crate::cases::Case;

/// What one backend made of one case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Passed,
    Failed { reason: String, detail: String },
    Skipped { reason: String },
}

/// Builtins regorus has but the filter's build leaves out (regorus features turned off in the
/// workspace Cargo.toml), and those nobody can offer inside Envoy's sandbox.
const LEFT_OUT: &[(&str, &str)] = &[
    ("http.send(", "http.send: no outbound calls from a decision"),
    (
        "net.lookup_ip_addr(",
        "net.lookup_ip_addr: no DNS from the sandbox",
    ),
    (
        "opa.runtime(",
        "opa.runtime: regorus feature `opa-runtime` off",
    ),
    ("uuid.", "uuid.*: regorus feature `uuid` off"),
    ("yaml.", "yaml.*: regorus feature `yaml` off"),
    (
        "json.verify_schema(",
        "json.*_schema: regorus feature `jsonschema` off",
    ),
    (
        "json.match_schema(",
        "json.*_schema: regorus feature `jsonschema` off",
    ),
    (
        "graph.reachable",
        "graph.reachable*: regorus feature `graph` off",
    ),
];

/// Why the filter does not run this case at all, if it does not.
pub fn left_out(case: &Case) -> Option<Outcome> {
    if case.skip {
        return Some(Outcome::Skipped {
            reason: "marked skip by OPA".into(),
        });
    }
    let text = case.text();
    LEFT_OUT
        .iter()
        .find(|(call, _)| text.contains(call))
        .map(|(_, why)| Outcome::Skipped {
            reason: format!("left out on purpose: {why}"),
        })
}

fn bundle(case: &Case, rego_v0: bool) -> Bundle {
    Bundle {
        manifest: Manifest {
            rego_version: Some(if rego_v0 { 0 } else { 1 }),
            ..Manifest::default()
        },
        modules: case
            .modules
            .iter()
            .enumerate()
            .map(|(i, source)| Module {
                path: format!("case{i}.rego"),
                source: source.clone(),
            })
            .collect(),
        data: case.data.clone().unwrap_or_else(Value::new_object),
        program: None,
        files: Vec::new(),
    }
}

/// The filter's interpreter, set up by `engine::parse`, with the case's strictness.
fn interpreter(case: &Case, rego_v0: bool) -> Result<(regorus::Engine, Value)> {
    let mut engine = engine::parse(&bundle(case, rego_v0)).map_err(load_error)?;
    engine.set_strict_builtin_errors(case.strict_error);
    let mut input = case.input.clone().unwrap_or(Value::Undefined);
    if let Some(term) = &case.input_term {
        input = engine
            .eval_query(term.clone(), false)?
            .result
            .last()
            .and_then(|r| r.expressions.last())
            .map(|e| e.value.clone())
            .ok_or_else(|| anyhow!("input_term {term} is undefined"))?;
    }
    engine.set_input(input.clone());
    Ok((engine, input))
}

fn load_error(e: LoadError) -> anyhow::Error {
    match e {
        LoadError::Rego(e) | LoadError::Unsupported(e) => anyhow!("{}", e.message),
        e => anyhow!("{e}"),
    }
}

/// Runs `f`, turning a regorus panic into an error (the filter would lose its VM).
fn guarded<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        let message = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_string()))
            .unwrap_or_default();
        Err(anyhow!("regorus panicked: {message}"))
    })
}

/// The query's results as OPA's test runner lists them: bindings per result, or the value
/// when the query binds nothing; sets become arrays, as in the YAML.
fn interpreter_results(case: &Case, rego_v0: bool) -> Result<Value> {
    let (mut engine, _) = interpreter(case, rego_v0)?;
    let results = engine.eval_query(case.query.clone(), false)?;
    let mut values = Vec::new();
    for result in results.result {
        let bindings = result.bindings.as_object().is_ok_and(|b| !b.is_empty());
        let mut value = if bindings {
            result.bindings
        } else {
            result
                .expressions
                .last()
                .map_or(Value::Undefined, |e| e.value.clone())
        };
        if case.sort_bindings {
            if let Ok(bindings) = value.as_object_mut() {
                for (_, v) in bindings.iter_mut() {
                    if let Ok(items) = v.as_array_mut() {
                        items.sort();
                    }
                }
            }
        }
        values.push(value);
    }
    as_json(&Value::from(values))
}

fn as_json(value: &Value) -> Result<Value> {
    Value::from_json_str(&value.to_string())
}

/// Compares what a backend produced with what OPA wants.
fn judge(case: &Case, got: Result<Value>) -> Outcome {
    let want = match &case.want_result {
        Some(want) => as_json(want),
        None => Ok(Value::new_array()),
    };
    match (got, want) {
        (_, Err(e)) => Outcome::Failed {
            reason: "want_result not understood".into(),
            detail: format!("{e:#}"),
        },
        (Err(e), Ok(_)) => {
            let message = format!("{e:#}").trim().to_string();
            let reason = classify_error(&message);
            // OPA's error comes from the builtin; a missing builtin is no match for it.
            if case.wants_error() && !reason.starts_with(MISSING_BUILTIN) {
                return Outcome::Passed;
            }
            Outcome::Failed {
                reason,
                detail: message,
            }
        }
        (Ok(got), Ok(want)) if got != want && named_time_zone(case) => Outcome::Failed {
            reason: "named time zone: this build knows UTC only".into(),
            detail: format!("want {want}, got {got}"),
        },
        (Ok(got), Ok(_)) if case.wants_error() => Outcome::Failed {
            reason: if case.strict_error && got == Value::new_array() {
                // What the filter sees: it evaluates non-strict, where OPA is undefined too.
                "strict builtin error not raised (undefined instead)".into()
            } else {
                "no error where OPA raises one".into()
            },
            detail: format!("OPA: {}; got {got}", case.wanted_error()),
        },
        (Ok(got), Ok(want)) if got == want => Outcome::Passed,
        (Ok(got), Ok(want)) => Outcome::Failed {
            reason: "different result".into(),
            detail: format!("want {want}, got {got}"),
        },
    }
}

const MISSING_BUILTIN: &str = "missing builtin ";

/// Whether a case names an IANA time zone other than UTC (`"America/New_York"`).
fn named_time_zone(case: &Case) -> bool {
    const AREAS: &[&str] = &[
        "Africa/",
        "America/",
        "Antarctica/",
        "Asia/",
        "Atlantic/",
        "Australia/",
        "Europe/",
        "Indian/",
        "Pacific/",
    ];
    let text = case.text();
    text.contains("time.") && AREAS.iter().any(|area| text.contains(&format!("\"{area}")))
}

/// A short, stable reason for an error, for grouping.
fn classify_error(message: &str) -> String {
    const MISSING: &[&str] = &[
        "could not find function ",
        "Unknown function: '",
        "Unknown builtin function: ",
        "Not a builtin function: ",
        "unknown function",
    ];
    for needle in MISSING {
        if let Some(at) = message.find(needle) {
            let name: String = message
                .get(at + needle.len()..)
                .unwrap_or("")
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '.' || *c == '_')
                .collect();
            return format!("{MISSING_BUILTIN}{name}");
        }
    }
    if message.contains("exceeds maximum column width") {
        return "regorus parser: a line longer than 1024 columns".into();
    }
    if message.contains("regorus panicked") {
        return "regorus panicked".into();
    }
    "error where OPA has a result".into()
}

/// The case on the interpreter. An unknown function can show there as an unsafe output
/// variable; the RVM compiler names it, so its reason is taken when it has one.
pub fn run_interpreter(case: &Case, rego_v0: bool, rvm: &Outcome) -> Outcome {
    let outcome = judge(case, guarded(|| interpreter_results(case, rego_v0)));
    match rvm {
        // Both backends share regorus's builtins: missing for one, missing for the other,
        // even where the interpreter's error happened to satisfy a case that wants one.
        Outcome::Failed { reason, detail } if reason.starts_with(MISSING_BUILTIN) => {
            Outcome::Failed {
                reason: reason.clone(),
                detail: match outcome {
                    Outcome::Failed { detail, .. } => detail,
                    Outcome::Passed | Outcome::Skipped { .. } => detail.clone(),
                },
            }
        }
        _ => outcome,
    }
}

/// `data.a.b = x` or `x = data.a.b`: the rule and the variable, when the query is one the
/// filter could evaluate as a decision rule.
fn rule_query(query: &str) -> Option<(String, String)> {
    let (left, right) = query.split_once('=')?;
    let (left, right) = (left.trim(), right.trim());
    let is_rule = |s: &str| {
        s.starts_with("data.")
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_')
    };
    let is_var = |s: &str| {
        !s.is_empty()
            && !s.starts_with(|c: char| c.is_ascii_digit())
            && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    if is_rule(left) && is_var(right) {
        Some((left.to_string(), right.to_string()))
    } else if is_var(left) && is_rule(right) {
        Some((right.to_string(), left.to_string()))
    } else {
        None
    }
}

/// The case on the RVM, compiled as `engine::compile` compiles a bundle's decision rule and
/// run as the filter runs it (instruction limit, data, input), with the case's strictness.
pub fn run_rvm(case: &Case, rego_v0: bool) -> Outcome {
    let Some((rule, var)) = rule_query(&case.query) else {
        return Outcome::Skipped {
            reason: "query is not `data.<rule> = x`: the filter only evaluates rules".into(),
        };
    };
    let program = guarded(
        || match engine::compile(&bundle(case, rego_v0), &[rule.as_str()]) {
            Ok(Compiled::Program { program, .. }) => Ok(Ok(program)),
            Ok(Compiled::Interpreter { reason, .. }) => Ok(Err(Outcome::Skipped {
                reason: format!(
                    "RVM compiler refused, the filter interprets: {}",
                    first_line(&reason)
                ),
            })),
            Err(LoadError::Compile { message, .. })
                if message.contains("not a valid rule path") =>
            {
                Ok(Err(Outcome::Skipped {
                    reason: "query path is not a rule".into(),
                }))
            }
            Err(e) => Err(load_error(e)),
        },
    );
    let program = match program {
        Ok(Ok(program)) => program,
        Ok(Err(skipped)) => return skipped,
        Err(e) => return judge(case, Err(e)),
    };
    let got = guarded(|| {
        let (_, input) = interpreter(case, rego_v0)?;
        let mut vm = RegoVM::new();
        vm.load_program(program);
        vm.set_max_instructions(engine::MAX_INSTRUCTIONS);
        vm.set_data(case.data.clone().unwrap_or_else(Value::new_object))?;
        vm.set_strict_builtin_errors(case.strict_error);
        vm.set_input(input);
        let value = vm.execute_entry_point_by_name(&rule)?;
        if value == Value::Undefined {
            return Ok(Value::new_array());
        }
        let mut binding = Value::new_object();
        binding
            .as_object_mut()?
            .insert(Value::from(var.as_str()), value);
        as_json(&Value::from(vec![binding]))
    });
    judge(case, got)
}

fn first_line(text: &str) -> &str {
    text.lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or(text)
        .trim()
}

#[cfg(test)]
mod tests {
    use super::rule_query;

    #[test]
    fn only_rule_queries_go_to_the_rvm() {
        assert_eq!(
            rule_query("data.test.p = x"),
            Some(("data.test.p".into(), "x".into()))
        );
        assert_eq!(
            rule_query("x = data.generated.p"),
            Some(("data.generated.p".into(), "x".into()))
        );
        assert_eq!(rule_query("x := concat(\",\", [\"a\"])"), None);
        assert_eq!(rule_query("data.test.p[x] = y"), None);
    }
}
