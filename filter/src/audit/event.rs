//! One decision-log event in OPA's `EventV1` shape (`v1/plugins/logs/plugin.go`): the field
//! names OPA's pipelines ingest, plus a `zerohop` object with what the filter did (the
//! outcome, the status sent or, under dry run, the status enforcement would have sent).

use serde_json::{Map, Value as Json};

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
    pub input: Option<Json>,
    /// The decision value; `None` when there is none (the outcome's detail says why).
    pub result: Option<Json>,
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

/// The event, before masking.
pub fn event(fixed: &Fixed, decision: Decision<'_>) -> Map<String, Json> {
    let mut event = Map::new();
    event.insert("labels".into(), fixed.labels.clone());
    event.insert("decision_id".into(), decision.decision_id.into());
    if let Some(revision) = decision.revision {
        let mut bundle = Map::new();
        bundle.insert("revision".into(), revision.into());
        let mut bundles = Map::new();
        bundles.insert(fixed.bundle_name.clone(), Json::Object(bundle));
        event.insert("bundles".into(), Json::Object(bundles));
    }
    event.insert("path".into(), fixed.path.as_str().into());
    if let Some(input) = decision.input {
        event.insert("input".into(), input);
    }
    match decision.result {
        Some(result) => {
            event.insert("result".into(), result);
        }
        None => {
            let mut error = Map::new();
            error.insert("code".into(), decision.outcome.reason.code().into());
            if let Some(detail) = &decision.outcome.detail {
                error.insert("message".into(), detail.as_str().into());
            }
            event.insert("error".into(), Json::Object(error));
        }
    }
    if let Some(peer) = decision.requested_by {
        event.insert("requested_by".into(), peer.into());
    }
    event.insert(
        "timestamp".into(),
        rfc3339_nano(decision.timestamp_ns).into(),
    );
    let [request, input, evaluate, apply] = decision.phases;
    let mut metrics = Map::new();
    metrics.insert("timer_rego_query_eval_ns".into(), evaluate.into());
    metrics.insert("timer_zerohop_request_ns".into(), request.into());
    metrics.insert("timer_zerohop_input_ns".into(), input.into());
    metrics.insert("timer_zerohop_apply_ns".into(), apply.into());
    event.insert("metrics".into(), Json::Object(metrics));
    let mut zerohop = Map::new();
    zerohop.insert("outcome".into(), decision.label.as_str().into());
    let (action, status) = match &decision.outcome.action {
        Action::Forward(_) => ("forward", decision.outcome.would_be_status),
        Action::Reply(deny) => ("reply", Some(deny.status)),
    };
    zerohop.insert("action".into(), action.into());
    if let Some(status) = status {
        let key = if decision.outcome.overridden {
            "would_be_status"
        } else {
            "status"
        };
        zerohop.insert(key.into(), status.into());
    }
    zerohop.insert("dry_run".into(), decision.dry_run.into());
    event.insert("zerohop".into(), Json::Object(zerohop));
    event
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
