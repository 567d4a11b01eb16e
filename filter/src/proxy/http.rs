//! One HTTP stream: build the input at the request headers (or, with `with_request_body`, once
//! the body is buffered), evaluate, publish the decision id and the decision's
//! `dynamic_metadata` in the filter state, then forward with the decision's changes or answer
//! locally.

use std::cell::RefCell;
use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, LogLevel, MapType};

use super::host::{self, log};
use super::root::State;
use super::timing::{Phase, Timing};
use crate::engine::EvalError;
use crate::request::body::{Body, Collect, StallWatch, WithRequestBody};
use crate::request::decision::{
    decide, metadata_json, Action as Decided, Allow, DecisionId, Enforcement, Failure, Reason,
};
use crate::request::input;
use crate::request::path::rewrite_query;

/// Filter state keys (`wasm.<key>` in Envoy) where each decision is published.
const DECISION_ID_KEY: &str = "zerohop.decision_id";
const DYNAMIC_METADATA_KEY: &str = "zerohop.dynamic_metadata";

pub struct Http {
    state: Rc<RefCell<State>>,
    /// This stream's context id.
    id: u32,
    response_headers: Vec<(String, String)>,
    /// Set from the request headers until the decision, while Envoy buffers the body.
    awaiting_body: Option<WithRequestBody>,
    /// The body size Envoy reported last (bodies arriving in several chunks).
    buffered: usize,
    /// This request's decision, for the decision log.
    decision_id: Option<DecisionId>,
    /// `timing_stats`.
    timing: Option<Timing>,
}

/// What `evaluate` hands on: the enforcement settings, the result, the plugin name and the
/// decision id.
type Evaluated = (
    Enforcement,
    Result<regorus::Value, Failure>,
    Rc<str>,
    Option<DecisionId>,
);

/// Envoy's own reply when ext_authz's body buffer overflows.
const PAYLOAD_TOO_LARGE: (u16, &str) = (413, "Payload Too Large");

impl Http {
    pub fn new(state: Rc<RefCell<State>>, id: u32) -> Self {
        let timing = state.try_borrow().ok().and_then(|s| s.timing);
        Self {
            timing,
            state,
            id,
            response_headers: Vec::new(),
            awaiting_body: None,
            buffered: 0,
            decision_id: None,
        }
    }

    /// Whether to buffer the body before deciding: bodies are configured, a policy is active,
    /// and a body follows. Upgrades and CONNECT carry a stream, not a body (ext_authz checks
    /// them at the headers too).
    fn waits_for_body(&self, end_of_stream: bool) -> Option<WithRequestBody> {
        if end_of_stream {
            return None;
        }
        let state = self.state.try_borrow().ok()?;
        let with = state.body.with_request_body?;
        state.policy.as_ref()?;
        let streaming = host::request_header(":method").as_deref() == Some("CONNECT")
            || host::request_header(":protocol").is_some()
            || host::request_header("upgrade").is_some()
                && host::request_header("connection")
                    .is_some_and(|c| c.to_ascii_lowercase().contains("upgrade"));
        (!streaming).then_some(with)
    }

    /// Builds the input and evaluates it; the enforcement settings, plugin name and decision id
    /// come along for the rest of the request.
    fn evaluate(&self, body: Option<Body>) -> Evaluated {
        let Ok(mut state) = self.state.try_borrow_mut() else {
            // Only reachable by re-entrance, which a single-threaded VM does not do.
            let closed = Enforcement {
                dry_run: false,
                fail_open: false,
                status_on_error: 503,
            };
            return (closed, Err(Failure::NoBundle), "zerohop".into(), None);
        };
        let State {
            enforcement,
            policy,
            name,
            connections,
            body: bodies,
            stalls: _,
            decision_ids,
            timing: _,
            cache_counts: _,
            budget_metrics,
        } = &mut *state;
        let decision_id = decision_ids.next_id();
        let mut clock = self.clock();
        let result = match policy.as_mut() {
            None => Err(Failure::NoBundle),
            Some(policy) => {
                let request = host::http_request(connections, policy.input_shape());
                self.lap(Phase::Request, &mut clock);
                request
                    .map_err(|status| {
                        let e = format!("cannot read the request headers: {status:?}");
                        EvalError::Failed(e).into()
                    })
                    .and_then(|mut request| {
                        request.body = body;
                        let input = input::build(&request, bodies, policy.input_shape());
                        self.lap(Phase::Input, &mut clock);
                        Ok(input?)
                    })
                    .and_then(|input| {
                        let decision = policy.evaluate(input);
                        if let Err(EvalError::Budget { exceeded, .. }) = &decision {
                            budget_metrics.count(*exceeded);
                        }
                        self.lap(Phase::Evaluate, &mut clock);
                        Ok(decision?)
                    })
            }
        };
        (*enforcement, result, name.clone(), Some(decision_id))
    }

    /// Publishes the decision where a later filter and the access log read it: the id alone,
    /// and, when the policy returned `dynamic_metadata`, that object with the id in it (what
    /// OPA-Envoy hands Envoy as the ext_authz dynamic metadata).
    fn publish(
        name: &str,
        decision_id: DecisionId,
        id_text: &str,
        dynamic_metadata: Option<&regorus::Value>,
    ) {
        let metadata = dynamic_metadata.map(|m| metadata_json(m, decision_id));
        let entries = [
            (DECISION_ID_KEY, Some(id_text)),
            (DYNAMIC_METADATA_KEY, metadata.as_deref()),
        ];
        for (key, value) in entries {
            let Some(value) = value else { continue };
            if let Err(status) = host::set_filter_state(key, value.as_bytes()) {
                log(
                    LogLevel::Warn,
                    &format!("{name}: cannot set filter state {key}: status {status}"),
                );
            }
        }
    }

    fn forward(&mut self, name: &str, allow: Allow) {
        for (header, value) in &allow.headers {
            if let Err(status) = host::set_request_header(header, value) {
                log(
                    LogLevel::Warn,
                    &format!("{name}: cannot set request header {header}: {status:?}"),
                );
            }
        }
        for header in &allow.request_headers_to_remove {
            // Envoy's ext_authz ignores removal of pseudo-headers and Host; so do we.
            if header.starts_with(':') || header == "host" {
                continue;
            }
            if let Err(status) = host::remove_request_header(header) {
                log(
                    LogLevel::Warn,
                    &format!("{name}: cannot remove request header {header}: {status:?}"),
                );
            }
        }
        if !allow.query_parameters_to_set.is_empty() || !allow.query_parameters_to_remove.is_empty()
        {
            if let Some(path) = host::property_text(&["request", "path"]) {
                let rewritten = rewrite_query(
                    &path,
                    &allow.query_parameters_to_set,
                    &allow.query_parameters_to_remove,
                );
                if let Err(status) = host::set_request_header(":path", &rewritten) {
                    log(
                        LogLevel::Warn,
                        &format!("{name}: cannot rewrite the query: {status:?}"),
                    );
                }
            }
        }
        self.response_headers = allow.response_headers_to_add;
    }

    /// Evaluates and applies the outcome: forward with the decision's changes, or reply.
    fn decide(&mut self, body: Option<Body>) -> Action {
        let (enforcement, result, name, decision_id) = self.evaluate(body);
        let mut clock = self.clock();
        let action = self.apply(enforcement, result, &name, decision_id);
        self.lap(Phase::Apply, &mut clock);
        action
    }

    /// A host clock reading when `timing_stats` is on.
    fn clock(&self) -> Option<u64> {
        self.timing.map(|_| host::now_ns())
    }

    /// Records the time since `clock` under `phase` and restarts `clock`.
    fn lap(&self, phase: Phase, clock: &mut Option<u64>) {
        if let (Some(timing), Some(started)) = (&self.timing, clock.as_mut()) {
            *started = timing.record(phase, *started);
        }
    }

    fn apply(
        &mut self,
        enforcement: Enforcement,
        result: Result<regorus::Value, Failure>,
        name: &str,
        decision_id: Option<DecisionId>,
    ) -> Action {
        let outcome = decide(enforcement, result);
        // The id also ties a log line to the access log entry of the same request.
        let id = decision_id.map(|d| d.to_string()).unwrap_or_default();
        if let Some(decision_id) = decision_id {
            Self::publish(name, decision_id, &id, outcome.dynamic_metadata.as_ref());
        }
        self.decision_id = decision_id;
        match outcome.reason {
            Reason::EvaluationError | Reason::InvalidDecision | Reason::UndefinedDecision => {
                let detail = outcome.detail.as_deref().unwrap_or_default();
                log(
                    LogLevel::Warn,
                    &format!(
                        "{name}: {} (decision_id {id}): {detail}",
                        outcome.reason.code()
                    ),
                );
            }
            _ if outcome.overridden => {
                log(
                    LogLevel::Debug,
                    &format!(
                        "{name}: {} let through (dry_run or fail_open, decision_id {id})",
                        outcome.reason.code()
                    ),
                );
            }
            _ => {}
        }
        match outcome.action {
            Decided::Forward(allow) => {
                self.forward(name, allow);
                Action::Continue
            }
            Decided::Reply(deny) => {
                if let Err(status) = host::send_reply(deny.status, &deny.headers, &deny.body) {
                    log(
                        LogLevel::Error,
                        &format!("{name}: cannot send the local reply: {status:?}"),
                    );
                }
                // Envoy requires StopIteration after a local reply.
                Action::Pause
            }
        }
    }

    /// Reads the first `take` buffered bytes and decides. A body Envoy cannot hand over is an
    /// evaluation error (`status_on_error`), never a request let through.
    fn decide_with_body(&mut self, take: usize) -> Action {
        self.awaiting_body = None;
        match host::request_body(take) {
            Ok(bytes) => {
                let body = Body {
                    partial: self.buffered > bytes.len(),
                    received: u64::try_from(self.buffered).unwrap_or(u64::MAX),
                    bytes,
                };
                self.decide(Some(body))
            }
            Err(status) => {
                let settings = self.state.try_borrow_mut().map(|mut state| {
                    let id = state.decision_ids.next_id();
                    (state.enforcement, state.name.clone(), id)
                });
                let Ok((enforcement, name, decision_id)) = settings else {
                    return self.reply(503, "", &[]);
                };
                let failure =
                    EvalError::Failed(format!("cannot read the request body: {status:?}"));
                self.apply(enforcement, Err(failure.into()), &name, Some(decision_id))
            }
        }
    }

    fn watch_stalls(&self, change: impl FnOnce(&mut StallWatch, u32)) {
        if let Ok(mut state) = self.state.try_borrow_mut() {
            change(&mut state.stalls, self.id);
        }
    }

    fn reply_too_large(&mut self) -> Action {
        self.awaiting_body = None;
        log(
            LogLevel::Debug,
            "zerohop: request body over with_request_body.max_request_bytes: 413",
        );
        let (status, body) = PAYLOAD_TOO_LARGE;
        self.reply(status, body, &[])
    }

    fn reply(&mut self, status: u16, body: &str, headers: &[(String, String)]) -> Action {
        if let Err(e) = host::send_reply(status, headers, body) {
            log(
                LogLevel::Error,
                &format!("zerohop: cannot send the local reply: {e:?}"),
            );
        }
        // Envoy requires StopIteration after a local reply.
        Action::Pause
    }
}

impl Context for Http {
    fn on_done(&mut self) -> bool {
        if self.awaiting_body.is_some() {
            self.watch_stalls(|stalls, id| stalls.release(id));
        }
        true
    }
}

impl HttpContext for Http {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        let Some(with) = self.waits_for_body(end_of_stream) else {
            return self.decide(None);
        };
        let declared = host::request_header("content-length").and_then(|l| l.parse().ok());
        if with.refuses_length(declared) {
            return self.reply_too_large();
        }
        // Envoy buffers the body for us from here (`Pause` from the body callbacks). Without
        // `allow_on_headers_stop_iteration` it would hold the body back instead: see README.
        self.awaiting_body = Some(with);
        self.watch_stalls(|stalls, id| stalls.hold(id, host::now_ms()));
        Action::Pause
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let Some(with) = self.awaiting_body else {
            return Action::Continue;
        };
        self.watch_stalls(|stalls, _| stalls.body_delivered());
        self.buffered = body_size;
        match with.collect(body_size, end_of_stream) {
            Collect::Wait => Action::Pause,
            Collect::TooLarge => self.reply_too_large(),
            Collect::Decide { take } => self.decide_with_body(take),
        }
    }

    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        // The body ended without end_of_stream on its last chunk: decide on what is buffered.
        let Some(with) = self.awaiting_body else {
            return Action::Continue;
        };
        self.watch_stalls(|stalls, _| stalls.body_delivered());
        match with.collect(self.buffered, true) {
            Collect::Wait => Action::Continue,
            Collect::TooLarge => self.reply_too_large(),
            Collect::Decide { take } => self.decide_with_body(take),
        }
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        for (name, value) in std::mem::take(&mut self.response_headers) {
            if let Err(status) = host::add_header(MapType::HttpResponseHeaders, &name, &value) {
                log(
                    LogLevel::Warn,
                    &format!("zerohop: cannot add response header {name}: {status:?}"),
                );
            }
        }
        Action::Continue
    }
}
