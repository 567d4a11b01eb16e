//! The zerohop side of the Rego differential tester (`tests/regodiff`): reads one job per
//! line on stdin, `{"id", "modules": {path: source}, "data", "rules": ["r", ...], "inputs":
//! [...], "modes": [...], "rego_version": 0 or 1 (default 1)}`, loads each rule of package
//! `t` the way the filter does in each mode and writes one line per job: `{"id", "results": {mode: {rule: outcome}}}` where an outcome
//! is `{"refused": {"code", "message"}}` or `{"outputs": [...]}`, one per input, each
//! `{"value": v}`, `{"undefined": true}` or `{"error": message}`. Values keep what JSON loses:
//! sets are `{"__set__": [...]}`, objects with a non-string key `{"__obj__": [[k, v], ...]}`,
//! numbers are printed exactly.
//!
//! Modes: `precompiled` (`policy-bundler build`, then the filter loads the `.tar.gz`),
//! `compiled-at-load` (a bundle without a program) and `interpreted` (the interpreter forced).

use std::io::{BufRead, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};

use anyhow::{anyhow, Context, Result};
use regorus::Value;
use serde_json::json;
use zerohop_filter::bundle::{Bundle, Limits};
use zerohop_filter::decision_path::DecisionPath;
use zerohop_filter::engine::{EvalError, Policy};
use zerohop_filter::writer::build;

#[derive(serde::Deserialize)]
struct Job {
    id: serde_json::Value,
    modules: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    data: Option<serde_json::Value>,
    rules: Vec<String>,
    inputs: Vec<serde_json::Value>,
    modes: Vec<String>,
    /// The modules' Rego version, written to the bundle's `.manifest` (1 when absent).
    #[serde(default = "rego_v1")]
    rego_version: u8,
}

fn rego_v1() -> u8 {
    1
}

fn main() -> Result<()> {
    let stdin = std::io::stdin();
    let mut out = std::io::stdout().lock();
    // A panic is an outcome here, not the end of the run; keep stderr quiet about it.
    std::panic::set_hook(Box::new(|_| {}));
    for line in stdin.lock().lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let job: Job = serde_json::from_str(&line).context("reading a job")?;
        let response = run_job(&job);
        writeln!(out, "{response}")?;
        out.flush()?;
    }
    Ok(())
}

fn run_job(job: &Job) -> String {
    let mut results = Vec::new();
    for mode in &job.modes {
        let mut rules = Vec::new();
        for rule in &job.rules {
            let outcome = guarded(|| run_rule(job, mode, rule))
                .unwrap_or_else(|e| format!("{{\"error\":{}}}", json!(format!("{e:#}"))));
            rules.push(format!("{}:{outcome}", json!(rule)));
        }
        results.push(format!("{}:{{{}}}", json!(mode), rules.join(",")));
    }
    format!(
        "{{\"id\":{},\"results\":{{{}}}}}",
        job.id,
        results.join(",")
    )
}

fn files(job: &Job) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = job
        .modules
        .iter()
        .map(|(path, source)| {
            (
                path.clone(),
                source.as_str().unwrap_or_default().as_bytes().to_vec(),
            )
        })
        .collect();
    files.push((
        ".manifest".into(),
        json!({"rego_version": job.rego_version})
            .to_string()
            .into_bytes(),
    ));
    if let Some(data) = &job.data {
        files.push(("data.json".into(), data.to_string().into_bytes()));
    }
    files
}

fn refused(code: &str, message: &str) -> String {
    json!({"refused": {"code": code, "message": message}}).to_string()
}

fn run_rule(job: &Job, mode: &str, rule: &str) -> Result<String> {
    let path = DecisionPath::parse(&format!("t/{rule}")).map_err(|e| anyhow!(e))?;
    let policy = match mode {
        "precompiled" => {
            let built = match build(files(job), None, std::slice::from_ref(&path)) {
                Ok(built) => built,
                Err(e) => return Ok(refused("build", &e.to_string())),
            };
            let bundle = Bundle::from_targz(&built.targz, &Limits::default())?;
            Policy::load(&bundle, &path)
        }
        "compiled-at-load" => {
            let bundle = Bundle::from_files(files(job))?;
            Policy::load(&bundle, &path)
        }
        "interpreted" => {
            let bundle = Bundle::from_files(files(job))?;
            Policy::load_interpreted(&bundle, &path)
        }
        other => return Err(anyhow!("unknown mode {other}")),
    };
    let mut policy = match policy {
        Ok(policy) => policy,
        Err(e) => return Ok(refused(e.code(), &e.to_string())),
    };
    let mut outputs = Vec::new();
    for input in &job.inputs {
        let input = Value::from_json_str(&input.to_string())?;
        let output = match guarded(|| Ok(policy.evaluate(input))) {
            Ok(Ok(value)) => format!("{{\"value\":{}}}", encode(&value)),
            Ok(Err(EvalError::Undefined)) => "{\"undefined\":true}".to_string(),
            Ok(Err(EvalError::Failed(message))) => json!({"error": message}).to_string(),
            // A budget stop is an evaluation error for the filter (`status_on_error`).
            Ok(Err(budget @ EvalError::Budget { .. })) => {
                json!({"error": budget.to_string()}).to_string()
            }
            Err(e) => json!({"error": format!("{e:#}")}).to_string(),
        };
        outputs.push(output);
    }
    Ok(format!("{{\"outputs\":[{}]}}", outputs.join(",")))
}

/// JSON text for a value, keeping sets, non-string keys and exact numbers.
fn encode(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.format_decimal(),
        Value::String(s) => json!(s.as_ref()).to_string(),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(encode).collect::<Vec<_>>().join(",")
        ),
        Value::Set(items) => format!(
            "{{\"__set__\":[{}]}}",
            items.iter().map(encode).collect::<Vec<_>>().join(",")
        ),
        Value::Object(fields) => {
            if fields.keys().all(|k| matches!(k, Value::String(_))) {
                let parts: Vec<String> = fields
                    .iter()
                    .map(|(k, v)| format!("{}:{}", encode(k), encode(v)))
                    .collect();
                format!("{{{}}}", parts.join(","))
            } else {
                let parts: Vec<String> = fields
                    .iter()
                    .map(|(k, v)| format!("[{},{}]", encode(k), encode(v)))
                    .collect();
                format!("{{\"__obj__\":[{}]}}", parts.join(","))
            }
        }
        Value::Undefined => "{\"__undefined__\":true}".into(),
    }
}

/// Runs `f`, turning a panic into an error: a panic in the filter is a failed evaluation.
fn guarded<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        let message = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_string()))
            .unwrap_or_default();
        Err(anyhow!("panic: {message}"))
    })
}
