//! One case on both of the filter's backends, set up as the filter sets up a bundle:
//! `engine::parse` (Rego v0/v1 from the manifest, non-strict builtin errors, data) and
//! `engine::compile` (the case's query rule to an RVM program, or the reason it stays on the
//! interpreter).

use std::panic::{catch_unwind, AssertUnwindSafe};

use anyhow::{anyhow, Result};
use regorus::Value;
use zerohop_filter::bundle::{Bundle, Manifest, Module, RegoVersion};
use zerohop_filter::decision_path::DecisionPath;
use zerohop_filter::engine::{self, Compiled, EvalError, LoadError, Policy};

use crate::cases::Case;

/// Where a backend gave up on a case: at load (the filter refuses the bundle, with the
/// place and a stable code) or while evaluating it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Load,
    Eval,
}

#[derive(Debug)]
struct Failure {
    stage: Stage,
    message: String,
}

impl Failure {
    fn load(e: impl std::fmt::Display) -> Self {
        Failure {
            stage: Stage::Load,
            message: format!("{e:#}"),
        }
    }

    fn eval(e: impl std::fmt::Display) -> Self {
        Failure {
            stage: Stage::Eval,
            message: format!("{e:#}"),
        }
    }
}

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
    ("yaml.", "yaml.*: regorus feature `yaml` off"),
    (
        "json.verify_schema(",
        "json.*_schema: regorus feature `jsonschema` off",
    ),
    (
        "json.match_schema(",
        "json.*_schema: regorus feature `jsonschema` off",
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
                rego_version: if rego_v0 {
                    RegoVersion::V0
                } else {
                    RegoVersion::V1
                },
            })
            .collect(),
        data: case.data.clone().unwrap_or_else(Value::new_object),
        program: None,
        files: Vec::new(),
    }
}

/// The filter's interpreter, set up by `engine::parse`, with the case's strictness.
fn interpreter(case: &Case, rego_v0: bool) -> Result<(regorus::Engine, Value), Failure> {
    let mut engine =
        engine::parse(&bundle(case, rego_v0)).map_err(|e| Failure::load(load_error(e)))?;
    engine.set_strict_builtin_errors(case.strict_error);
    let mut input = case.input.clone().unwrap_or(Value::Undefined);
    if let Some(term) = &case.input_term {
        input = engine
            .eval_query(term.clone(), false)
            .map_err(Failure::eval)?
            .result
            .last()
            .and_then(|r| r.expressions.last())
            .map(|e| e.value.clone())
            .ok_or_else(|| Failure::eval(format!("input_term {term} is undefined")))?;
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
fn guarded<T>(f: impl FnOnce() -> Result<T, Failure>) -> Result<T, Failure> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        let message = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_string()))
            .unwrap_or_default();
        Err(Failure::eval(format!("regorus panicked: {message}")))
    })
}

/// The query's results as OPA's test runner lists them: bindings per result, or the value
/// when the query binds nothing; sets become arrays, as in the YAML.
fn interpreter_results(case: &Case, rego_v0: bool) -> Result<Value, Failure> {
    let (mut engine, _) = interpreter(case, rego_v0)?;
    // The filter loads a bundle by compiling its decision rule (`engine::compile`): what that
    // rejects, the filter refuses at load, on either backend.
    if let Some((rule, _)) = rule_query(&case.query) {
        // A query of a package (`data.test = x`) is no rule: the filter cannot load it as
        // its decision, and that case only says something about the evaluation below.
        if let Err(e) = engine.compile_with_entrypoint(&rule.as_str().into()) {
            if !e.to_string().contains("not a valid rule path") {
                return Err(Failure::load(e));
            }
        }
    }
    let results = engine
        .eval_query(case.query.clone(), false)
        .map_err(Failure::eval)?;
    let mut values = Vec::new();
    for result in results.result {
        let bindings = result.bindings.as_object().is_ok_and(|b| !b.is_empty());
        let value = if bindings {
            result.bindings
        } else {
            result
                .expressions
                .last()
                .map_or(Value::Undefined, |e| e.value.clone())
        };
        values.push(sorted_bindings(case, value).map_err(Failure::eval)?);
    }
    as_json(&Value::from(values)).map_err(Failure::eval)
}

/// With `sort_bindings`, each binding's array sorted as OPA's harness sorts it: as JSON, where
/// a set is an array.
fn sorted_bindings(case: &Case, value: Value) -> Result<Value> {
    if !case.sort_bindings {
        return Ok(value);
    }
    let mut value = as_json(&value)?;
    if let Ok(bindings) = value.as_object_mut() {
        for (_, v) in bindings.iter_mut() {
            if let Ok(items) = v.as_array_mut() {
                items.sort();
            }
        }
    }
    Ok(value)
}

fn as_json(value: &Value) -> Result<Value> {
    Value::from_json_str(&value.to_string())
}

/// Compares what a backend produced with what OPA wants.
fn judge(case: &Case, got: Result<Value, Failure>) -> Outcome {
    let want = match &case.want_result {
        Some(want) => as_json(want),
        None => Ok(Value::new_array()),
    };
    let want = match want {
        Ok(want) => want,
        Err(e) => {
            return Outcome::Failed {
                reason: "want_result not understood".into(),
                detail: format!("{e:#}"),
            }
        }
    };
    let got = match got {
        Ok(got) => got,
        Err(failure) => {
            let message = error_line(failure.message.trim()).to_string();
            let reason = refine(case, &message, classify_error(&message, failure.stage));
            // OPA's error comes from the builtin; a missing builtin is no match for it.
            if case.wants_error() && !reason.starts_with(MISSING_BUILTIN) {
                return Outcome::Passed;
            }
            return Outcome::Failed {
                reason,
                detail: message,
            };
        }
    };
    if got != want && named_time_zone(case) {
        return Outcome::Failed {
            reason: "named time zone: this build knows UTC only".into(),
            detail: format!("want {want}, got {got}"),
        };
    }
    if case.wants_error() {
        let reason = if wants_conflict(case) {
            "conflict error not raised (wrong value)"
        } else if case.strict_error && got == Value::new_array() {
            // What the filter sees: it evaluates non-strict, where OPA is undefined too.
            "strict builtin error not raised (undefined instead)"
        } else if case.strict_error {
            "builtin error not raised: a value where OPA errors (wrong value)"
        } else {
            "no error where OPA raises one"
        };
        return Outcome::Failed {
            reason: reason.into(),
            detail: format!("OPA: {}; got {got}", case.wanted_error()),
        };
    }
    if got == want {
        Outcome::Passed
    } else {
        Outcome::Failed {
            reason: "wrong value".into(),
            detail: format!("want {want}, got {got}"),
        }
    }
}

/// Whether OPA's error is a conflict (a rule or function with two values), which OPA raises
/// in every mode, strict or not.
fn wants_conflict(case: &Case) -> bool {
    case.want_error_code.as_deref() == Some("eval_conflict_error")
        || case
            .want_error
            .as_deref()
            .is_some_and(|e| e.contains("conflicting values") || e.contains("must not produce"))
}

/// regorus's message without the source excerpt it quotes (`--> file:line:col`, the line,
/// `error: message`): the `error:` line, or the first line when there is none.
pub fn error_line(detail: &str) -> &str {
    detail
        .lines()
        .rev()
        .find_map(|l| l.trim_start().strip_prefix("error: "))
        .or_else(|| detail.lines().find(|l| !l.trim().is_empty()))
        .unwrap_or(detail)
        .trim()
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

const WALK_MISSING: &str = "missing builtin walk (regorus feature `graph` off)";

/// A reason made precise with what the case's text tells: `walk` lives in regorus's `graph`
/// feature, which the filter leaves off (the call form `walk(x, out)` then errors at
/// evaluation as an unsafe output variable instead of at load); a function with only a
/// `default` definition is unknown to regorus's RVM compiler.
fn refine(case: &Case, message: &str, reason: String) -> String {
    let text = case.text();
    let walk_call = message.contains("is unsafe") && text.contains("walk(");
    if reason == format!("{MISSING_BUILTIN}walk") || walk_call {
        return WALK_MISSING.into();
    }
    if let Some(name) = reason.strip_prefix(MISSING_BUILTIN) {
        if text.contains(&format!("default {name}(")) {
            return "function with only a `default` definition: unknown to the RVM compiler (refused at load)"
                .into();
        }
    }
    reason
}

/// A short, stable reason for an error, for grouping.
fn classify_error(message: &str, stage: Stage) -> String {
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
    match stage {
        Stage::Load => "refused at load (acceptable)".into(),
        Stage::Eval => "evaluation error where OPA has a result".into(),
    }
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
/// run as the filter runs it (`Policy`: instruction limit, data, input, host functions).
pub fn run_rvm(case: &Case, rego_v0: bool) -> Outcome {
    let Some((rule, var)) = rule_query(&case.query) else {
        return Outcome::Skipped {
            reason: "query is not `data.<rule> = x`: the filter only evaluates rules".into(),
        };
    };
    let compiled = guarded(
        || match engine::compile(&bundle(case, rego_v0), &[rule.as_str()]) {
            Ok(Compiled::Program { .. }) => Ok(None),
            Ok(Compiled::Interpreter { reason, .. }) => Ok(Some(Outcome::Skipped {
                reason: format!(
                    "RVM compiler refused, the filter interprets: {}",
                    error_line(&reason)
                ),
            })),
            Err(LoadError::Compile { message, .. })
                if message.contains("not a valid rule path") =>
            {
                Ok(Some(Outcome::Skipped {
                    reason: "query path is not a rule".into(),
                }))
            }
            Err(e) => Err(Failure::load(load_error(e))),
        },
    );
    match compiled {
        Ok(None) => {}
        Ok(Some(skipped)) => return skipped,
        Err(e) => return judge(case, Err(e)),
    }
    // Evaluated as the filter evaluates a request: `Policy` (its instruction limit, host
    // functions such as `time.now_ns`, non-strict builtin errors; the filter has no strict
    // mode).
    let got = guarded(|| {
        let (_, input) = interpreter(case, rego_v0)?;
        let path = DecisionPath::parse(&rule.trim_start_matches("data.").replace('.', "/"))
            .map_err(Failure::load)?;
        let mut policy = Policy::load(&bundle(case, rego_v0), &path)
            .map_err(|e| Failure::load(load_error(e)))?;
        let value = match policy.evaluate(input) {
            Ok(value) => value,
            Err(EvalError::Undefined) => return Ok(Value::new_array()),
            Err(EvalError::Failed(message)) => return Err(Failure::eval(message)),
            Err(budget) => return Err(Failure::eval(budget.to_string())),
        };
        let mut binding = Value::new_object();
        binding
            .as_object_mut()
            .map_err(Failure::eval)?
            .insert(Value::from(var.as_str()), value);
        let binding = sorted_bindings(case, binding).map_err(Failure::eval)?;
        as_json(&Value::from(vec![binding])).map_err(Failure::eval)
    });
    judge(case, got)
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
