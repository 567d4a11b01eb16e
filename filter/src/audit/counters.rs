//! `wasmcustom.zerohop.decisions.*`: every decision counted by its outcome where it is made
//! (`stream`), one host call per decision. Dry run counts what enforcement would have done: a
//! denial it let through is `dry_run_denied`, the failures keep their own labels.

use crate::host::{Host, MetricKind};
use crate::request::decision::{Outcome, Reason};

/// The label of one decision, as counted and as written in its decision-log event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Label {
    Allowed,
    Denied,
    DryRunDenied,
    Undefined,
    NoBundle,
    /// `error.<code>`: the request could not be parsed, the evaluation failed, or the decision
    /// is not in OPA-Envoy's format.
    Error(Reason),
}

/// The reasons counted under `error.<code>`.
const ERRORS: [Reason; 3] = [
    Reason::RequestParseError,
    Reason::EvaluationError,
    Reason::InvalidDecision,
];

impl Label {
    pub fn of(outcome: &Outcome, dry_run: bool) -> Self {
        match outcome.reason {
            Reason::Allowed => Label::Allowed,
            Reason::Denied if dry_run && outcome.overridden => Label::DryRunDenied,
            Reason::Denied => Label::Denied,
            Reason::UndefinedDecision => Label::Undefined,
            Reason::NoBundle => Label::NoBundle,
            reason @ (Reason::RequestParseError
            | Reason::EvaluationError
            | Reason::InvalidDecision) => Label::Error(reason),
        }
    }

    /// The stat's name below `zerohop.decisions.`, and the event's outcome.
    pub fn as_str(self) -> &'static str {
        match self {
            Label::Allowed => "allowed",
            Label::Denied => "denied",
            Label::DryRunDenied => "dry_run_denied",
            Label::Undefined => "undefined",
            Label::NoBundle => "no_bundle",
            Label::Error(Reason::RequestParseError) => "error.request-parse-error",
            Label::Error(Reason::InvalidDecision) => "error.invalid-decision",
            Label::Error(_) => "error.evaluation-error",
        }
    }

    fn slot(self) -> usize {
        match self {
            Label::Allowed => 0,
            Label::Denied => 1,
            Label::DryRunDenied => 2,
            Label::Undefined => 3,
            Label::NoBundle => 4,
            Label::Error(Reason::RequestParseError) => 5,
            Label::Error(Reason::InvalidDecision) => 6,
            Label::Error(_) => 7,
        }
    }

    const ALL: [Label; 8] = [
        Label::Allowed,
        Label::Denied,
        Label::DryRunDenied,
        Label::Undefined,
        Label::NoBundle,
        Label::Error(ERRORS[0]),
        Label::Error(ERRORS[2]),
        Label::Error(ERRORS[1]),
    ];
}

/// The counters, defined once per configuration so each decision costs one increment.
pub struct DecisionCounters {
    ids: [Option<u32>; 8],
}

impl DecisionCounters {
    pub fn new<H: Host>(host: &H) -> Self {
        Self {
            ids: Label::ALL.map(|label| {
                host.define_metric(
                    MetricKind::Counter,
                    &format!("zerohop.decisions.{}", label.as_str()),
                )
            }),
        }
    }

    pub fn count<H: Host>(&self, host: &H, label: Label) {
        if let Some(Some(id)) = self.ids.get(label.slot()) {
            host.increment_metric(*id, 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_label_has_its_own_slot_and_name() {
        for (slot, label) in Label::ALL.iter().enumerate() {
            assert_eq!(label.slot(), slot, "{label:?}");
        }
        let mut names: Vec<_> = Label::ALL.iter().map(|l| l.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Label::ALL.len());
    }
}
