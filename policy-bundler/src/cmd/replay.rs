//! `replay`: decision logs (console lines `… zerohop-decision {…}`, uploaded JSON arrays, or
//! one event per line; gzip or not) evaluated again with a candidate bundle through the
//! filter's own decision path (`Policy::evaluate`, then `decide`, the code the proxy runs on
//! the input it built), to show which decisions the candidate would change before it rolls
//! out. An event whose input was masked is reported as not replayable, never guessed.

use std::collections::{BTreeMap, HashMap};
use std::io::Read as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde_json::Value as Json;
use zerohop_filter::audit::counters::Label;
use zerohop_filter::bundle::{Bundle, Limits};
use zerohop_filter::decision_path::DecisionPath;
use zerohop_filter::engine::Policy;
use zerohop_filter::request::decision::{decide, Enforcement, Failure};

use crate::{report, Failed};

/// What the proxy does with a decision, without `dry_run` or `fail_open`: what enforcement
/// would do, which is what a rollout changes.
const ENFORCING: Enforcement = Enforcement {
    dry_run: false,
    fail_open: false,
    status_on_error: zerohop_filter::defaults::DEFAULT_STATUS_ON_ERROR,
};

pub fn run(
    bundle_path: &Path,
    logs: &[PathBuf],
    show: usize,
    fail_on_change: bool,
) -> anyhow::Result<()> {
    let bytes = std::fs::read(bundle_path)
        .with_context(|| format!("reading bundle {}", bundle_path.display()))?;
    let bundle =
        Bundle::from_targz(&bytes, &Limits::default()).map_err(|e| Failed(e.to_string()))?;
    let mut events = Vec::new();
    for path in logs {
        events.extend(read_events(path)?);
    }
    let mut policies: HashMap<String, Policy> = HashMap::new();
    let mut summary = Summary::default();
    for event in &events {
        summary.total += 1;
        let Some(input) = event.get("input") else {
            summary.no_input += 1;
            continue;
        };
        if masked_input(event) {
            summary.not_replayable += 1;
            continue;
        }
        let rule = event
            .get("path")
            .and_then(Json::as_str)
            .unwrap_or(zerohop_filter::defaults::DEFAULT_PATH);
        if !policies.contains_key(rule) {
            let path = DecisionPath::parse(rule)
                .map_err(|m| Failed(format!("event path {rule:?}: {m}")))?;
            let policy = Policy::load(&bundle, &path).map_err(|e| {
                Failed(format!(
                    "{}: cannot load {rule}: {e}",
                    bundle_path.display()
                ))
            })?;
            policies.insert(rule.to_string(), policy);
        }
        let Some(policy) = policies.get_mut(rule) else {
            continue;
        };
        let input = regorus::Value::from_json_str(&input.to_string())
            .map_err(|e| Failed(format!("an event's input: {e}")))?;
        let evaluated = policy.evaluate(input);
        let new_result = evaluated
            .as_ref()
            .ok()
            .and_then(|v| serde_json::to_value(v).ok());
        let new_outcome = decide(ENFORCING, evaluated.map_err(Failure::from));
        let new = Label::of(&new_outcome, false).as_str().to_string();
        let old = old_label(event);
        let old_result = event.get("result").cloned();
        summary.replayed += 1;
        if old == new && old_result == new_result {
            continue;
        }
        *summary
            .by_outcome
            .entry(format!("{old} -> {new}"))
            .or_default() += 1;
        *summary.by_rule.entry(rule.to_string()).or_default() += 1;
        if summary.shown.len() < show {
            summary.shown.push(diff(
                event,
                rule,
                &old,
                &new,
                old_result.as_ref(),
                new_result.as_ref(),
                new_outcome.detail.as_deref(),
            ));
        }
    }
    let changed: u64 = summary.by_outcome.values().sum();
    report::line(&format!(
        "{} events: {} replayed with {}, {changed} would change; {} not replayable (masked input), {} without input",
        summary.total,
        summary.replayed,
        bundle_path.display(),
        summary.not_replayable,
        summary.no_input
    ));
    if changed > 0 {
        report::line("by outcome (old -> new):");
        for (key, count) in &summary.by_outcome {
            report::line(&format!("  {key}: {count}"));
        }
        report::line("by decision rule:");
        for (key, count) in &summary.by_rule {
            report::line(&format!("  {key}: {count}"));
        }
        report::line(&format!("first {} changes:", summary.shown.len()));
        for text in &summary.shown {
            report::line(text);
        }
    }
    if fail_on_change && changed > 0 {
        return Err(Failed(format!("{changed} decisions would change")).into());
    }
    Ok(())
}

#[derive(Default)]
struct Summary {
    total: u64,
    replayed: u64,
    not_replayable: u64,
    no_input: u64,
    by_outcome: BTreeMap<String, u64>,
    by_rule: BTreeMap<String, u64>,
    shown: Vec<String>,
}

/// Whether a mask touched the input (OPA's `erased` and `masked` pointers).
fn masked_input(event: &Json) -> bool {
    ["erased", "masked"].iter().any(|key| {
        event
            .get(key)
            .and_then(Json::as_array)
            .is_some_and(|pointers| {
                pointers.iter().any(|p| {
                    p.as_str()
                        .is_some_and(|p| p == "/input" || p.starts_with("/input/"))
                })
            })
    })
}

/// The logged decision's outcome under enforcement (a dry-run denial is a denial).
fn old_label(event: &Json) -> String {
    if let Some(result) = event.get("result") {
        let value =
            regorus::Value::from_json_str(&result.to_string()).unwrap_or(regorus::Value::Undefined);
        return Label::of(&decide(ENFORCING, Ok(value)), false)
            .as_str()
            .to_string();
    }
    match event.pointer("/error/code").and_then(Json::as_str) {
        None | Some("undefined-decision") => "undefined".to_string(),
        Some("no-bundle") => "no_bundle".to_string(),
        Some(code) => format!("error.{code}"),
    }
}

fn diff(
    event: &Json,
    rule: &str,
    old: &str,
    new: &str,
    old_result: Option<&Json>,
    new_result: Option<&Json>,
    detail: Option<&str>,
) -> String {
    let id = event
        .get("decision_id")
        .and_then(Json::as_str)
        .unwrap_or("?");
    let http = event.pointer("/input/attributes/request/http");
    let field = |name: &str| {
        http.and_then(|h| h.get(name))
            .and_then(Json::as_str)
            .unwrap_or("?")
    };
    let show = |value: Option<&Json>| value.map_or_else(|| "(none)".to_string(), Json::to_string);
    let mut text = format!(
        "  decision {id} ({rule}) {} {}: {old} -> {new}\n    - result: {}\n    + result: {}",
        field("method"),
        field("path"),
        show(old_result),
        show(new_result)
    );
    if let Some(detail) = detail.filter(|_| new_result.is_none()) {
        text.push_str(&format!("\n    + error: {detail}"));
    }
    text
}

/// Every event in a decision-log file, in order.
fn read_events(path: &Path) -> anyhow::Result<Vec<Json>> {
    let mut bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut text = Vec::new();
        flate2::read::MultiGzDecoder::new(bytes.as_slice())
            .read_to_end(&mut text)
            .map_err(|e| Failed(format!("{}: not gzip: {e}", path.display())))?;
        bytes = text;
    }
    let text =
        String::from_utf8(bytes).map_err(|_| Failed(format!("{}: not UTF-8", path.display())))?;
    let bad = |line: usize, e: serde_json::Error| Failed(format!("{}:{line}: {e}", path.display()));
    if text.trim_start().starts_with('[') && serde_json::from_str::<Json>(&text).is_ok() {
        return match serde_json::from_str(&text).map_err(|e| bad(1, e))? {
            Json::Array(events) => Ok(events),
            _ => Ok(Vec::new()),
        };
    }
    let mut events = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let json = match line.split_once("zerohop-decision ") {
            Some((_, event)) => event,
            None if line.trim_start().starts_with('{') => line,
            // An uploaded array on a line of its own; other `[` lines are Envoy's own log.
            None if line.trim_start().starts_with('[')
                && serde_json::from_str::<Json>(line).is_ok() =>
            {
                line
            }
            None => continue,
        };
        match serde_json::from_str(json.trim()).map_err(|e| bad(n + 1, e))? {
            Json::Array(chunk) => events.extend(chunk),
            event => events.push(event),
        }
    }
    Ok(events)
}
