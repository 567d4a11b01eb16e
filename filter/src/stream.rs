//! One HTTP stream, driven by the host's callbacks: whether to wait for the body, then the
//! input, the evaluation and the outcome (`request::pipeline`), published (decision id, the
//! decision's `dynamic_metadata`) and applied (headers changed, or a local reply). The host
//! adapter maps each callback here and `Flow` back; it decides nothing.

use std::rc::Rc;

use crate::audit::counters::Label;
use crate::audit::event::{self, Phases};
use crate::audit::mask;
use crate::engine::{http_send, EvalError, Pending, Step};
use crate::host::{CallAnswer, Host, Level};
use crate::plugin::Plugin;
use crate::request::body::{Body, Collect, WithRequestBody};
use crate::request::decision::{
    decide, metadata_json, Action, Allow, DecisionId, Failure, Outcome, Reason,
};
use crate::request::input;
use crate::request::path::rewrite_query;
use crate::request::pipeline::{start_request, Phase};

/// Filter state keys (`wasm.<key>` in Envoy) where each decision is published.
pub const DECISION_ID_KEY: &str = "zerohop.decision_id";
pub const DYNAMIC_METADATA_KEY: &str = "zerohop.dynamic_metadata";

/// Envoy's own reply when ext_authz's body buffer overflows.
const PAYLOAD_TOO_LARGE: (u16, &str) = (413, "Payload Too Large");

/// What the host does with the stream after a callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Go on to the next filter.
    Continue,
    /// Hold the stream: buffering a body, or after a local reply (which Envoy requires).
    Pause,
}

pub struct Stream {
    plugin: Rc<Plugin>,
    /// The host's id of this stream.
    id: u32,
    /// Added to the response at its headers (the decision's `response_headers_to_add`).
    response_headers: Vec<(String, String)>,
    /// Set from the request headers until the decision, while the host buffers the body.
    awaiting_body: Option<WithRequestBody>,
    /// The body size the host reported last (bodies arriving in several chunks).
    buffered: usize,
    /// The decision under way while an `http.send` callout is out.
    waiting: Option<Waiting>,
}

/// A decision waiting for the answer of the `http.send` callout `token`.
struct Waiting {
    token: u32,
    pending: Box<Pending>,
    /// Redirects followed so far (`enable_redirect`).
    redirects: usize,
    decision_id: Option<DecisionId>,
    laps: Laps,
    logged: Option<Logged>,
}

impl Stream {
    pub fn new(plugin: Rc<Plugin>, id: u32) -> Self {
        Self {
            plugin,
            id,
            response_headers: Vec::new(),
            awaiting_body: None,
            buffered: 0,
            waiting: None,
        }
    }

    pub fn on_request_headers<H: Host>(&mut self, host: &H, end_of_stream: bool) -> Flow {
        let Some(with) = self.waits_for_body(host, end_of_stream) else {
            return self.decide(host, None);
        };
        let declared = host
            .request_header("content-length")
            .and_then(|l| l.parse().ok());
        if with.refuses_length(declared) {
            return self.reply_too_large(host);
        }
        // The host buffers the body for us from here (`Pause` from the body callbacks). Envoy
        // without `allow_on_headers_stop_iteration` holds the body back instead: see docs/request-bodies.md.
        self.awaiting_body = Some(with);
        let (id, now) = (self.id, host.now_ms());
        self.plugin
            .watch_stalls(host, |stalls| stalls.hold(id, now));
        Flow::Pause
    }

    pub fn on_request_body<H: Host>(
        &mut self,
        host: &H,
        body_size: usize,
        end_of_stream: bool,
    ) -> Flow {
        let Some(with) = self.awaiting_body else {
            return Flow::Continue;
        };
        self.plugin
            .watch_stalls(host, |stalls| stalls.body_delivered());
        self.buffered = body_size;
        match with.collect(body_size, end_of_stream) {
            Collect::Wait => Flow::Pause,
            Collect::TooLarge => self.reply_too_large(host),
            Collect::Decide { take } => self.decide_with_body(host, take),
        }
    }

    pub fn on_request_trailers<H: Host>(&mut self, host: &H) -> Flow {
        // The body ended without end_of_stream on its last chunk: decide on what is buffered.
        let Some(with) = self.awaiting_body else {
            return Flow::Continue;
        };
        self.plugin
            .watch_stalls(host, |stalls| stalls.body_delivered());
        match with.collect(self.buffered, true) {
            Collect::Wait => Flow::Continue,
            Collect::TooLarge => self.reply_too_large(host),
            Collect::Decide { take } => self.decide_with_body(host, take),
        }
    }

    pub fn on_response_headers<H: Host>(&mut self, host: &H) -> Flow {
        for (name, value) in std::mem::take(&mut self.response_headers) {
            if let Err(e) = host.add_response_header(&name, &value) {
                host.log(
                    Level::Warn,
                    &format!("zerohop: cannot add response header {name}: {e}"),
                );
            }
        }
        Flow::Continue
    }

    pub fn on_done<H: Host>(&mut self, host: &H) {
        if self.awaiting_body.is_some() {
            let id = self.id;
            self.plugin.watch_stalls(host, |stalls| stalls.release(id));
        }
    }

    /// Whether to buffer the body before deciding: bodies are configured, a policy is active,
    /// and a body follows. Upgrades and CONNECT carry a stream, not a body (ext_authz checks
    /// them at the headers too).
    fn waits_for_body<H: Host>(&self, host: &H, end_of_stream: bool) -> Option<WithRequestBody> {
        if end_of_stream {
            return None;
        }
        let with = self.plugin.config.body.with_request_body?;
        if !self.plugin.has_policy(host) {
            return None;
        }
        let streaming = host.request_header(":method").as_deref() == Some("CONNECT")
            || host.request_header(":protocol").is_some()
            || host.request_header("upgrade").is_some()
                && host
                    .request_header("connection")
                    .is_some_and(|c| c.to_ascii_lowercase().contains("upgrade"));
        (!streaming).then_some(with)
    }

    /// The answer of an `http.send` callout: the evaluation goes on with it, and when it is
    /// done the outcome is applied and the request let go on or answered.
    pub fn on_http_call_response<H: Host>(
        &mut self,
        host: &H,
        token: u32,
        num_headers: usize,
        body_size: usize,
    ) {
        if self.waiting.as_ref().is_none_or(|w| w.token != token) {
            return;
        }
        let Some(mut waiting) = self.waiting.take() else {
            return;
        };
        let max_body = self.plugin.config.http_send.max_response_bytes;
        let answer = host.http_call_answer(num_headers, body_size, max_body);
        let mut failed = None;
        if let Ok(CallAnswer::Upstream((headers, _))) = &answer {
            match http_send::redirect(&waiting.pending.request, headers) {
                Some(Ok(_)) if waiting.redirects == http_send::MAX_REDIRECTS => {
                    failed = Some(format!(
                        "stopped after {} redirects",
                        http_send::MAX_REDIRECTS
                    ));
                }
                Some(Ok(next)) => {
                    waiting.pending.request = next;
                    waiting.redirects += 1;
                    match self.send(host, &waiting.pending) {
                        Ok(token) => {
                            waiting.token = token;
                            self.waiting = Some(waiting);
                        }
                        Err(failure) => {
                            let flow = self.go_on(
                                host,
                                Err(failure),
                                waiting.decision_id,
                                waiting.laps,
                                waiting.logged,
                            );
                            self.resume_if(host, flow);
                        }
                    }
                    return;
                }
                Some(Err(e)) => failed = Some(e),
                None => {}
            }
        }
        let mut prints = Vec::new();
        let step = match (answer, failed) {
            (_, Some(reason)) => waiting.pending.resume(Err(&reason), &mut prints),
            (Ok(CallAnswer::Upstream(response)), None) => {
                waiting.pending.resume(Ok(&response), &mut prints)
            }
            (Ok(CallAnswer::Failed(reason)), None) => {
                waiting.pending.resume(Err(&reason), &mut prints)
            }
            (Err(e), None) => waiting
                .pending
                .resume(Err(&format!("cannot read the response: {e}")), &mut prints),
        };
        for message in prints {
            host.log(Level::Debug, &format!("print: {message}"));
        }
        let flow = self.go_on(
            host,
            Ok(step),
            waiting.decision_id,
            waiting.laps,
            waiting.logged,
        );
        self.resume_if(host, flow);
    }

    /// Lets the held request go on when the decision forwards it.
    fn resume_if<H: Host>(&self, host: &H, flow: Flow) {
        if flow == Flow::Continue {
            if let Err(e) = host.resume_request() {
                host.log(
                    Level::Error,
                    &format!("{}: cannot resume the request: {e}", self.plugin.name),
                );
            }
        }
    }

    /// Evaluates and applies the outcome: forward with the decision's changes, or reply;
    /// then, when decision logs are on, writes the decision's event.
    fn decide<H: Host>(&mut self, host: &H, body: Option<Body>) -> Flow {
        let decision_id = self.plugin.next_decision_id(host);
        let mut laps = Laps::start(host, &self.plugin);
        let (step, logged) = self.evaluate(host, body, &mut laps);
        self.go_on(host, step, decision_id, laps, logged)
    }

    /// Makes the callout the evaluation waits on (and holds the request), or applies its
    /// result.
    fn go_on<H: Host>(
        &mut self,
        host: &H,
        step: Result<Step, Failure>,
        decision_id: Option<DecisionId>,
        mut laps: Laps,
        logged: Option<Logged>,
    ) -> Flow {
        let result = match step {
            Ok(Step::Send(pending)) => match self.send(host, &pending) {
                Ok(token) => {
                    self.waiting = Some(Waiting {
                        token,
                        pending,
                        redirects: 0,
                        decision_id,
                        laps,
                        logged,
                    });
                    return Flow::Pause;
                }
                Err(failure) => Err(failure),
            },
            Ok(Step::Done(result)) => result.map_err(Failure::from),
            Err(failure) => Err(failure),
        };
        if let Err(Failure::Evaluation(EvalError::Budget { exceeded, .. })) = &result {
            self.plugin.count_budget(host, *exceeded);
        }
        let logged = logged.map(|mut logged| {
            logged.result = result.as_ref().ok().cloned();
            logged
        });
        let outcome = decide(self.plugin.config.enforcement, result);
        let logged_outcome = logged.as_ref().map(|_| outcome.clone());
        let flow = self.apply(host, outcome, decision_id);
        laps.lap(host, &self.plugin, Phase::Apply);
        if let (Some(logged), Some(outcome)) = (logged, logged_outcome) {
            self.log_decision(host, decision_id, logged, &outcome, &laps);
        }
        flow
    }

    /// Starts the callout `pending` waits on, to the cluster configured for its URL's origin.
    /// An origin without one, or a cluster Envoy does not know, fails the evaluation.
    fn send<H: Host>(&self, host: &H, pending: &Pending) -> Result<u32, Failure> {
        let request = &pending.request;
        let settings = &self.plugin.config.http_send;
        let cluster = settings.cluster(&request.origin).ok_or_else(|| {
            EvalError::Failed(format!(
                "http.send: {} is not in http_send.clusters",
                request.origin
            ))
        })?;
        let mut headers = vec![
            (":method", request.method.as_str()),
            (":path", request.path.as_str()),
            (":authority", request.authority.as_str()),
        ];
        headers.extend(
            request
                .headers
                .iter()
                .map(|(name, value)| (name.as_str(), value.as_str())),
        );
        let timeout_ms = request.timeout_ms.unwrap_or(settings.timeout_ms);
        host.http_call(cluster, &headers, &request.body, timeout_ms)
            .map_err(|e| {
                EvalError::Failed(format!(
                    "http.send to {}: cluster {cluster}: {e}",
                    request.origin
                ))
                .into()
            })
    }

    /// Reads the request from the host and evaluates it with the active policy; with decision
    /// logs on, also what the event needs (the input to log is built on its own, so the policy
    /// sees exactly what it sees without logs).
    fn evaluate<H: Host>(
        &self,
        host: &H,
        body: Option<Body>,
        laps: &mut Laps,
    ) -> (Result<Step, Failure>, Option<Logged>) {
        let plugin = &self.plugin;
        let log = plugin.decision_log.as_ref().filter(|log| log.admit(host));
        let mut logged = log.map(|_| Logged::default());
        let result = plugin
            .with_policy(host, |policy| {
                let shape = match (&policy, log) {
                    (_, Some(log)) if log.full_input() => &log.everything,
                    (Some(policy), _) => policy.input_shape(),
                    (None, Some(log)) => &log.everything,
                    (None, None) => return Err(Failure::NoBundle),
                };
                let mut request = host.http_request(shape).map_err(|e| {
                    EvalError::Failed(format!("cannot read the request headers: {e}"))
                })?;
                laps.lap(host, plugin, Phase::Request);
                request.body = body;
                if let (Some(log), Some(logged)) = (log, logged.as_mut()) {
                    logged.requested_by = request
                        .connection
                        .as_ref()
                        .and_then(|c| c.source.address.as_ref())
                        .map(|a| format!("{}:{}", a.address, a.port));
                    let shape = match &policy {
                        _ if log.full_input() => Some(&log.everything),
                        Some(policy) => Some(policy.input_shape()),
                        None => None,
                    };
                    logged.input = shape
                        .and_then(|shape| input::build(&request, &plugin.config.body, shape).ok());
                    if let (true, Some(input)) = (log.settings.default_masks, &mut logged.input) {
                        logged.erased = mask::erase_defaults(input);
                    }
                }
                let Some(policy) = policy else {
                    return Err(Failure::NoBundle);
                };
                if let Some(logged) = logged.as_mut() {
                    logged.revision = Some(policy.revision().to_string());
                }
                let result = start_request(policy, &request, &plugin.config.body, |phase| {
                    laps.lap(host, plugin, phase);
                });
                for message in policy.take_prints() {
                    host.log(Level::Debug, &format!("print: {message}"));
                }
                result
            })
            .unwrap_or_else(|_busy| Err(EvalError::Failed("plugin state in use".into()).into()));
        (result, logged)
    }

    /// Builds the decision's event and hands it to the decision log.
    fn log_decision<H: Host>(
        &self,
        host: &H,
        decision_id: Option<DecisionId>,
        logged: Logged,
        outcome: &Outcome,
        laps: &Laps,
    ) {
        let plugin = &self.plugin;
        let Some(log) = plugin.decision_log.as_ref() else {
            return;
        };
        let id = decision_id.map(|d| d.to_string()).unwrap_or_default();
        let dry_run = plugin.config.enforcement.dry_run;
        let event = event::event(
            &log.fixed,
            &event::Decision {
                decision_id: &id,
                revision: logged.revision.as_deref(),
                input: logged.input,
                erased: logged.erased,
                result: logged.result.filter(|v| *v != regorus::Value::Undefined),
                outcome,
                label: Label::of(outcome, dry_run),
                dry_run,
                requested_by: logged.requested_by,
                timestamp_ns: laps.started_ns,
                phases: laps.phases,
            },
        );
        let Some(event) = event else {
            host.log(
                Level::Warn,
                &format!(
                    "{}: a decision's event cannot be written as JSON",
                    plugin.name
                ),
            );
            return;
        };
        let line = plugin
            .with_policy(host, |policy| {
                log.finish(
                    host,
                    &plugin.name,
                    event,
                    policy.and_then(|p| p.log_rules()),
                )
            })
            .ok()
            .flatten();
        if let Some(line) = line {
            plugin.buffer_event(host, line);
        }
    }

    /// Reads the first `take` buffered bytes and decides. A body the host cannot hand over is
    /// an evaluation error (`status_on_error`), never a request let through.
    fn decide_with_body<H: Host>(&mut self, host: &H, take: usize) -> Flow {
        self.awaiting_body = None;
        match host.request_body(take) {
            Ok(bytes) => {
                let body = Body {
                    partial: self.buffered > bytes.len(),
                    received: u64::try_from(self.buffered).unwrap_or(u64::MAX),
                    bytes,
                };
                self.decide(host, Some(body))
            }
            Err(e) => {
                let decision_id = self.plugin.next_decision_id(host);
                let failure = EvalError::Failed(format!("cannot read the request body: {e}"));
                let outcome = decide(self.plugin.config.enforcement, Err(failure.into()));
                self.apply(host, outcome, decision_id)
            }
        }
    }

    /// Publishes the outcome, logs what needs a look, and forwards or replies.
    fn apply<H: Host>(
        &mut self,
        host: &H,
        outcome: Outcome,
        decision_id: Option<DecisionId>,
    ) -> Flow {
        let label = Label::of(&outcome, self.plugin.config.enforcement.dry_run);
        self.plugin.count_decision(host, label);
        let name = &*self.plugin.name;
        // The id also ties a log line to the access log entry of the same request.
        let id = decision_id.map(|d| d.to_string()).unwrap_or_default();
        if let Some(decision_id) = decision_id {
            publish(
                host,
                name,
                decision_id,
                &id,
                outcome.dynamic_metadata.as_ref(),
            );
        }
        match outcome.reason {
            Reason::EvaluationError | Reason::InvalidDecision | Reason::UndefinedDecision => {
                let detail = outcome.detail.as_deref().unwrap_or_default();
                host.log(
                    Level::Warn,
                    &format!(
                        "{name}: {} (decision_id {id}): {detail}",
                        outcome.reason.code()
                    ),
                );
            }
            _ if outcome.overridden => {
                host.log(
                    Level::Debug,
                    &format!(
                        "{name}: {} let through (dry_run or fail_open, decision_id {id})",
                        outcome.reason.code()
                    ),
                );
            }
            _ => {}
        }
        match outcome.action {
            Action::Forward(allow) => {
                self.response_headers = forward(host, name, allow);
                Flow::Continue
            }
            Action::Reply(deny) => {
                if let Err(e) = host.send_reply(deny.status, &deny.headers, &deny.body) {
                    host.log(
                        Level::Error,
                        &format!("{name}: cannot send the local reply: {e}"),
                    );
                }
                // Envoy requires StopIteration after a local reply.
                Flow::Pause
            }
        }
    }

    fn reply_too_large<H: Host>(&mut self, host: &H) -> Flow {
        self.awaiting_body = None;
        host.log(
            Level::Debug,
            "zerohop: request body over with_request_body.max_request_bytes: 413",
        );
        let (status, body) = PAYLOAD_TOO_LARGE;
        if let Err(e) = host.send_reply(status, &[], body) {
            host.log(
                Level::Error,
                &format!("zerohop: cannot send the local reply: {e}"),
            );
        }
        Flow::Pause
    }
}

/// Publishes the decision where a later filter and the access log read it: the id alone,
/// and, when the policy returned `dynamic_metadata`, that object with the id in it (what
/// OPA-Envoy hands Envoy as the ext_authz dynamic metadata).
fn publish<H: Host>(
    host: &H,
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
        if let Err(e) = host.set_filter_state(key, value.as_bytes()) {
            host.log(
                Level::Warn,
                &format!("{name}: cannot set filter state {key}: status {e}"),
            );
        }
    }
}

/// Applies an allowing decision's request changes; returns the response headers to add.
fn forward<H: Host>(host: &H, name: &str, allow: Allow) -> Vec<(String, String)> {
    for (header, value) in &allow.headers {
        if let Err(e) = host.set_request_header(header, value) {
            host.log(
                Level::Warn,
                &format!("{name}: cannot set request header {header}: {e}"),
            );
        }
    }
    for header in &allow.request_headers_to_remove {
        // Envoy's ext_authz ignores removal of pseudo-headers and Host; so do we.
        if header.starts_with(':') || header == "host" {
            continue;
        }
        if let Err(e) = host.remove_request_header(header) {
            host.log(
                Level::Warn,
                &format!("{name}: cannot remove request header {header}: {e}"),
            );
        }
    }
    if !allow.query_parameters_to_set.is_empty() || !allow.query_parameters_to_remove.is_empty() {
        if let Some(path) = host.request_path() {
            let rewritten = rewrite_query(
                &path,
                &allow.query_parameters_to_set,
                &allow.query_parameters_to_remove,
            );
            if let Err(e) = host.set_request_header(":path", &rewritten) {
                host.log(
                    Level::Warn,
                    &format!("{name}: cannot rewrite the query: {e}"),
                );
            }
        }
    }
    allow.response_headers_to_add
}

/// What a decision's event needs beyond the outcome, gathered while deciding.
#[derive(Default)]
struct Logged {
    input: Option<regorus::Value>,
    /// The default masks' pointers that erased something from `input`.
    erased: Vec<&'static str>,
    result: Option<regorus::Value>,
    revision: Option<String>,
    requested_by: Option<String>,
}

/// The clock of one decision, read only when `timing_stats` or decision logs need it: each
/// phase's time goes to its histogram and to the event's `metrics`.
struct Laps {
    /// The clock when the decision started (0 when not read).
    started_ns: u64,
    /// The clock at the end of the last phase.
    last_ns: Option<u64>,
    phases: Phases,
}

impl Laps {
    fn start<H: Host>(host: &H, plugin: &Plugin) -> Self {
        let read = plugin.timing.is_some() || plugin.decision_log.is_some();
        let now = if read { host.now_ns() } else { 0 };
        Self {
            started_ns: now,
            last_ns: read.then_some(now),
            phases: Phases::default(),
        }
    }

    /// Records the time since the last phase under `phase`.
    fn lap<H: Host>(&mut self, host: &H, plugin: &Plugin, phase: Phase) {
        let Some(last) = self.last_ns else {
            return;
        };
        let now = host.now_ns();
        let ns = now.saturating_sub(last);
        if let Some(slot) = self.phases.get_mut(event::slot(phase)) {
            *slot = ns;
        }
        self.last_ns = Some(match &plugin.timing {
            Some(timing) => {
                timing.record(host, phase, ns);
                // So that no phase pays for the previous one's record.
                host.now_ns()
            }
            None => now,
        });
    }
}
