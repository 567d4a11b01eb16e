//! One HTTP stream: build the input at the request headers, evaluate, publish the decision id
//! and the decision's `dynamic_metadata` in the filter state, then forward with the decision's
//! changes or answer locally.

use std::cell::RefCell;
use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, LogLevel, MapType};

use super::host::{self, log};
use super::root::State;
use crate::engine::EvalError;
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
    response_headers: Vec<(String, String)>,
    /// This request's decision, for the decision log.
    decision_id: Option<DecisionId>,
}

impl Http {
    pub fn new(state: Rc<RefCell<State>>) -> Self {
        Self {
            state,
            response_headers: Vec::new(),
            decision_id: None,
        }
    }

    /// Builds the input and evaluates it; the enforcement settings, plugin name and decision id
    /// come along for the rest of the request.
    fn evaluate(
        &self,
    ) -> (
        Enforcement,
        Result<regorus::Value, Failure>,
        Rc<str>,
        Option<DecisionId>,
    ) {
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
            decision_ids,
        } = &mut *state;
        let decision_id = decision_ids.next_id();
        let result = match policy.as_mut() {
            None => Err(Failure::NoBundle),
            Some(policy) => host::http_request(connections)
                .map_err(|status| {
                    EvalError::Failed(format!("cannot read the request headers: {status:?}")).into()
                })
                .and_then(|request| Ok(input::build(&request)?))
                .and_then(|input| Ok(policy.evaluate(input)?)),
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
}

impl Context for Http {}

impl HttpContext for Http {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let (enforcement, result, name, decision_id) = self.evaluate();
        let outcome = decide(enforcement, result);
        // The id also ties a log line to the access log entry of the same request.
        let id = decision_id.map(|d| d.to_string()).unwrap_or_default();
        if let Some(decision_id) = decision_id {
            Self::publish(&name, decision_id, &id, outcome.dynamic_metadata.as_ref());
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
                self.forward(&name, allow);
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
