//! The request path every host shares: a request as the host presents it, the active policy
//! and the plugin's settings in, the decision's outcome out. The filter (`stream`), the
//! benchmarks and the ext_authz baseline all run these, so none decides on its own.

use regorus::Value;

use super::body::BodySettings;
use super::decision::{decide, Enforcement, Failure, Outcome};
use super::input::{self, HttpRequest};
use crate::engine::{Policy, Step};

/// The phases of one decision, as `timing_stats` splits them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Reading the request from the host: headers, properties, metadata.
    Request,
    /// Building the `input` document.
    Input,
    /// Evaluating the decision rule.
    Evaluate,
    /// The decision applied: decision id published, headers set, or the local reply sent.
    Apply,
}

/// Builds the `input` document of `request` (only what the policy reads) and evaluates it;
/// `lap` is called after each phase. For hosts that make no callouts: a policy's `http.send`
/// fails the evaluation.
pub fn evaluate_request(
    policy: &mut Policy,
    request: &HttpRequest,
    bodies: &BodySettings,
    mut lap: impl FnMut(Phase),
) -> Result<Value, Failure> {
    let input = input::build(request, bodies, policy.input_shape());
    lap(Phase::Input);
    let decision = policy.evaluate(input?);
    lap(Phase::Evaluate);
    Ok(decision?)
}

/// `evaluate_request` for a host that makes `http.send` callouts: the evaluation may wait on
/// one (`Step::Send`).
pub fn start_request(
    policy: &mut Policy,
    request: &HttpRequest,
    bodies: &BodySettings,
    mut lap: impl FnMut(Phase),
) -> Result<Step, Failure> {
    let input = input::build(request, bodies, policy.input_shape());
    lap(Phase::Input);
    let step = policy.start(input?);
    lap(Phase::Evaluate);
    Ok(step)
}

/// What happens to `request`: evaluation (no policy: the no-bundle outcome), then the
/// enforcement settings. For hosts that hand the whole request over at once.
pub fn decide_request(
    policy: Option<&mut Policy>,
    request: &HttpRequest,
    bodies: &BodySettings,
    enforcement: Enforcement,
) -> Outcome {
    let value = match policy {
        Some(policy) => evaluate_request(policy, request, bodies, |_| {}),
        None => Err(Failure::NoBundle),
    };
    decide(enforcement, value)
}
