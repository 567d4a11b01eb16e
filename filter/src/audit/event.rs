//! One decision-log event in OPA's `EventV1` shape (`v1/plugins/logs/plugin.go`): the field
//! names OPA's pipelines ingest, plus a `zerohop` object with what the filter did (the
//! outcome, the status sent or, under dry run, the status enforcement would have sent).

use serde::Serialize;
use serde_json::Value as Json;

use super::counters::Label;
use crate::request::decision::{Action, Outcome};
use crate::request::pipeline::Phase;

/// Nanoseconds spent in each phase of one decision (`Phase` order).
pub type Phases = [u64; 4];

/// What one decision contributes to its event.
pub struct Decision<'a> {
    pub decision_id: &'a str,
    /// The active bundle's revision (`None`: no bundle).
    pub revision: Option<&'a str>,
    pub input: Option<regorus::Value>,
    /// The pointers already erased from `input` (the default masks).
    pub erased: Vec<&'static str>,
    /// The decision value; `None` when there is none (the outcome's detail says why).
    pub result: Option<regorus::Value>,
    pub outcome: &'a Outcome,
    pub label: Label,
    pub dry_run: bool,
    /// The downstream peer's address (`ip:port`).
    pub requested_by: Option<String>,
    pub timestamp_ns: u64,
    pub phases: Phases,
}

/// What every event of one configuration shares.
pub struct Fixed {
    /// `labels`: `id` (the proxy's), `version`, and the configured ones.
    pub labels: Json,
    /// The key of `bundles`: the plugin's name.
    pub bundle_name: String,
    /// `path`: the decision rule as configured (`envoy/authz/allow`).
    pub path: String,
}

/// The event as written: fields in the order of their names, as a JSON object of them would
/// print; the input and the result are written straight from the engine's values.
#[derive(Serialize)]
struct EventV1<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    bundles: Option<Bundles<'a>>,
    decision_id: &'a str,
    #[serde(skip_serializing_if = "no_pointers")]
    erased: &'a [&'static str],
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<Error<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    input: Option<&'a regorus::Value>,
    labels: &'a Json,
    metrics: Metrics,
    path: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    requested_by: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<&'a regorus::Value>,
    timestamp: String,
    zerohop: Zerohop,
}

fn no_pointers(pointers: &&[&str]) -> bool {
    pointers.is_empty()
}

/// `bundles`: {name: {revision}}, one bundle.
struct Bundles<'a> {
    name: &'a str,
    revision: &'a str,
}

impl Serialize for Bundles<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        #[derive(Serialize)]
        struct Revision<'a> {
            revision: &'a str,
        }
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry(
            self.name,
            &Revision {
                revision: self.revision,
            },
        )?;
        map.end()
    }
}

#[derive(Serialize)]
struct Error<'a> {
    code: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
}

#[derive(Serialize)]
struct Metrics {
    timer_rego_query_eval_ns: u64,
    timer_zerohop_apply_ns: u64,
    timer_zerohop_input_ns: u64,
    timer_zerohop_request_ns: u64,
}

#[derive(Serialize)]
struct Zerohop {
    action: &'static str,
    dry_run: bool,
    outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    would_be_status: Option<u16>,
}

/// The event's JSON, before the bundle's mask rule (the default masks are already applied to
/// `decision.input`); `None` if a value cannot be written as JSON.
pub fn event(fixed: &Fixed, decision: &Decision<'_>) -> Option<String> {
    let outcome = decision.outcome;
    let (action, status) = match &outcome.action {
        Action::Forward(_) => ("forward", outcome.would_be_status),
        Action::Reply(deny) => ("reply", Some(deny.status)),
    };
    let [request, input, evaluate, apply] = decision.phases;
    let event = EventV1 {
        bundles: decision.revision.map(|revision| Bundles {
            name: &fixed.bundle_name,
            revision,
        }),
        decision_id: decision.decision_id,
        erased: &decision.erased,
        error: decision.result.is_none().then(|| Error {
            code: outcome.reason.code(),
            message: outcome.detail.as_deref(),
        }),
        input: decision.input.as_ref(),
        labels: &fixed.labels,
        metrics: Metrics {
            timer_rego_query_eval_ns: evaluate,
            timer_zerohop_apply_ns: apply,
            timer_zerohop_input_ns: input,
            timer_zerohop_request_ns: request,
        },
        path: &fixed.path,
        requested_by: decision.requested_by.as_deref(),
        result: decision.result.as_ref(),
        timestamp: rfc3339_nano(decision.timestamp_ns),
        zerohop: Zerohop {
            action,
            dry_run: decision.dry_run,
            outcome: decision.label.as_str(),
            status: status.filter(|_| !outcome.overridden),
            would_be_status: status.filter(|_| outcome.overridden),
        },
    };
    serde_json::to_string(&event).ok()
}

/// The slot of `phase` in `Phases`.
pub fn slot(phase: Phase) -> usize {
    match phase {
        Phase::Request => 0,
        Phase::Input => 1,
        Phase::Evaluate => 2,
        Phase::Apply => 3,
    }
}

/// Go's `time.RFC3339Nano` in UTC, as OPA writes `timestamp`: trailing zeros of the fraction
/// dropped (`2026-12-07T15:04:05.1234Z`).
pub fn rfc3339_nano(ns: u64) -> String {
    let seconds = ns / 1_000_000_000;
    let nanos = ns % 1_000_000_000;
    let (days, in_day) = (seconds / 86_400, seconds % 86_400);
    let (year, month, day) = civil_from_days(days);
    let mut text = format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        in_day / 3600,
        in_day / 60 % 60,
        in_day % 60
    );
    if nanos != 0 {
        let fraction = format!("{nanos:09}");
        text.push('.');
        text.push_str(fraction.trim_end_matches('0'));
    }
    text.push('Z');
    text
}

/// Howard Hinnant's `civil_from_days` for days since 1970-01-01 (no dates before it).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_gos_rfc3339_nano() {
        assert_eq!(rfc3339_nano(0), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339_nano(1_700_000_000_123_400_000),
            "2023-11-14T22:13:20.1234Z"
        );
        assert_eq!(
            rfc3339_nano(951_782_400_000_000_001),
            "2000-02-29T00:00:00.000000001Z"
        );
        assert_eq!(
            rfc3339_nano(4_102_444_799_999_999_999),
            "2099-12-31T23:59:59.999999999Z"
        );
    }
}
