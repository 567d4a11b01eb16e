//! What the core asks of the program that runs it: request facts, header changes, local
//! replies, shared data with compare-and-swap, callouts, the clock, randomness, metrics and the
//! log. Envoy's proxy-wasm ABI is one host (`proxy`); `memory::MemoryHost` is another, for
//! tests. Host errors arrive as the host's own wording, which the core only logs.

use std::time::Duration;

use crate::request::decision::DecisionIds;
use crate::request::input::HttpRequest;
use crate::shape::InputShape;

pub mod memory;

/// Log levels the core writes at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

/// The kinds of stats the core defines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    Counter,
    Gauge,
    Histogram,
}

/// A compare-and-swap store: Envoy's shared data, or `memory::MemShared` in tests.
pub trait Shared {
    /// The value and its CAS token, `(None, None)` when absent.
    fn get(&self, key: &str) -> Result<(Option<Vec<u8>>, Option<u32>), String>;
    /// Writes `value` if the key's CAS token is still `cas` (`None`: unconditionally).
    /// `Ok(false)` when another writer came first.
    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<bool, String>;
}

/// A callout's response headers and body.
pub type CallResponse = (Vec<(String, Vec<u8>)>, Vec<u8>);

/// What came back from a callout: the upstream's response, or why there is none (a reset,
/// a timeout, an unreachable upstream), which the host may report as a reply of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallAnswer {
    Upstream(CallResponse),
    Failed(String),
}

/// One host, seen from one context: during a stream's callbacks the request methods act on
/// that stream; during the root's callbacks, on none.
pub trait Host: Shared {
    /// Everything the `input` document needs from the request headers phase; what `shape`
    /// says the policy never reads is not asked of the host.
    fn http_request(&self, shape: &InputShape) -> Result<HttpRequest, String>;
    /// One request header, `None` when absent or unreadable.
    fn request_header(&self, name: &str) -> Option<String>;
    /// The request's path with its query, as the host has it now.
    fn request_path(&self) -> Option<String>;
    /// The first `len` bytes of the request body the host buffered.
    fn request_body(&self, len: usize) -> Result<Vec<u8>, String>;

    fn set_request_header(&self, name: &str, value: &str) -> Result<(), String>;
    fn remove_request_header(&self, name: &str) -> Result<(), String>;
    fn add_response_header(&self, name: &str, value: &str) -> Result<(), String>;
    /// Stores `value` where later filters and the access log read it (`wasm.<key>` in Envoy).
    fn set_filter_state(&self, key: &str, value: &[u8]) -> Result<(), String>;
    /// Answers the current stream locally.
    fn send_reply(
        &self,
        status: u16,
        headers: &[(String, String)],
        body: &str,
    ) -> Result<(), String>;
    /// Lets the current stream, held at its headers, go on.
    fn resume_request(&self) -> Result<(), String>;
    /// Ends another stream, held at its headers, from the root: lets it through (`None`) or
    /// answers it with `(status, body)`.
    fn end_stream(&self, stream: u32, reply: Option<(u16, &str)>) -> Result<(), String>;

    /// Starts an HTTP callout with `body` (none when empty); returns its token.
    fn http_call(
        &self,
        cluster: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        timeout_ms: u64,
    ) -> Result<u32, String>;
    /// The answer of the callout being reported, at most `max_body` bytes of its body.
    fn http_call_response(
        &self,
        num_headers: usize,
        body_size: usize,
        max_body: usize,
    ) -> Result<CallResponse, String>;
    /// `http_call_response`, told apart: the upstream's response, or the callout's failure.
    /// A host that reports failures with a reply of its own overrides this.
    fn http_call_answer(
        &self,
        num_headers: usize,
        body_size: usize,
        max_body: usize,
    ) -> Result<CallAnswer, String> {
        let (headers, body) = self.http_call_response(num_headers, body_size, max_body)?;
        Ok(if headers.is_empty() {
            CallAnswer::Failed("no response".into())
        } else {
            CallAnswer::Upstream((headers, body))
        })
    }
    /// How often the root is ticked; `Duration::ZERO` stops the ticks.
    fn set_tick_period(&self, period: Duration);

    /// The wall clock in nanoseconds since the Unix epoch (0 if the host has none).
    fn now_ns(&self) -> u64;
    /// The wall clock in milliseconds since the Unix epoch (0 if the host has none).
    fn now_ms(&self) -> u64 {
        self.now_ns() / 1_000_000
    }
    /// A decision id source seeded from the host's randomness, `None` if it has none.
    fn decision_ids(&self) -> Option<DecisionIds>;

    fn define_metric(&self, kind: MetricKind, name: &str) -> Option<u32>;
    fn increment_metric(&self, id: u32, by: u64);
    fn record_metric(&self, id: u32, value: u64);
    fn log(&self, level: Level, message: &str);
}
