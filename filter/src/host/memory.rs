//! A host in memory, for tests: a request set by the test, a clock it moves, shared data with
//! the host's compare-and-swap rules (one `MemShared` can back several workers), callouts it
//! answers or never answers, and a record of everything the core did (replies, headers,
//! filter state, metrics, log lines).

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use super::{CallResponse, Host, Level, MetricKind, Shared};
use crate::request::decision::DecisionIds;
use crate::request::input::HttpRequest;
use crate::shape::InputShape;

/// A local reply the core sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// A callout the core started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Callout {
    pub token: u32,
    pub cluster: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub timeout_ms: u64,
}

/// An in-memory `Shared` with the host's CAS rules, for tests.
#[derive(Debug, Default)]
pub struct MemShared {
    entries: RefCell<BTreeMap<String, (Vec<u8>, u32)>>,
    counter: Cell<u32>,
}

impl Shared for MemShared {
    fn get(&self, key: &str) -> Result<(Option<Vec<u8>>, Option<u32>), String> {
        Ok(match self.entries.borrow().get(key) {
            Some((value, cas)) => (Some(value.clone()), Some(*cas)),
            None => (None, None),
        })
    }

    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<bool, String> {
        let mut entries = self.entries.borrow_mut();
        let current = entries.get(key).map(|(_, c)| *c);
        // The host's rules: no token (0) writes unconditionally, and so does any token when
        // the key is missing; otherwise the token must match.
        if let (Some(cas), Some(current)) = (cas.filter(|c| *c != 0), current) {
            if current != cas {
                return Ok(false);
            }
        }
        self.counter.set(self.counter.get() + 1);
        entries.insert(key.to_string(), (value.to_vec(), self.counter.get()));
        Ok(true)
    }
}

#[derive(Default)]
pub struct MemoryHost {
    /// The shared data store, shared by the workers of one simulated proxy.
    pub shared: Rc<MemShared>,
    now_ns: Cell<u64>,
    seed: Cell<u64>,
    /// The current request: what `http_request` returns (headers, connection, metadata).
    request: RefCell<HttpRequest>,
    body: RefCell<Vec<u8>>,
    /// Unset: the callout response the core reads is unreadable.
    response: RefCell<Option<CallResponse>>,
    reply: RefCell<Option<Reply>>,
    filter_state: RefCell<BTreeMap<String, Vec<u8>>>,
    response_headers: RefCell<Vec<(String, String)>>,
    callouts: RefCell<Vec<Callout>>,
    /// The cluster names `http_call` accepts; others fail as an unknown cluster does.
    clusters: RefCell<Vec<String>>,
    ended: RefCell<Vec<(u32, Option<Reply>)>>,
    /// How often the current stream was let go on after being held (`resume_request`).
    resumed: Cell<u32>,
    tick_period: Cell<Duration>,
    metrics: RefCell<Vec<(MetricKind, String, u64)>>,
    log: RefCell<Vec<(Level, String)>>,
}

impl MemoryHost {
    /// A host whose shared data is `shared` (another worker of the same proxy).
    pub fn with_shared(shared: Rc<MemShared>) -> Self {
        Self {
            shared,
            ..Self::default()
        }
    }

    pub fn set_now_ms(&self, ms: u64) {
        self.now_ns.set(ms.saturating_mul(1_000_000));
    }

    pub fn advance_ms(&self, ms: u64) {
        self.set_now_ms(self.now_ms() + ms);
    }

    /// Starts a new stream: `request` is what the host knows, `body` what it buffered; the
    /// previous stream's record is cleared.
    pub fn set_request(&self, request: HttpRequest, body: Vec<u8>) {
        *self.request.borrow_mut() = request;
        *self.body.borrow_mut() = body;
        self.reply.take();
        self.filter_state.borrow_mut().clear();
        self.response_headers.borrow_mut().clear();
    }

    /// The request headers as the core left them.
    pub fn request_headers(&self) -> Vec<(String, String)> {
        self.request.borrow().headers.clone()
    }

    pub fn reply(&self) -> Option<Reply> {
        self.reply.borrow().clone()
    }

    pub fn filter_state(&self, key: &str) -> Option<String> {
        let state = self.filter_state.borrow();
        state
            .get(key)
            .map(|v| String::from_utf8_lossy(v).into_owned())
    }

    pub fn response_headers(&self) -> Vec<(String, String)> {
        self.response_headers.borrow().clone()
    }

    pub fn accept_cluster(&self, cluster: &str) {
        self.clusters.borrow_mut().push(cluster.to_string());
    }

    pub fn callouts(&self) -> Vec<Callout> {
        self.callouts.borrow().clone()
    }

    /// What `http_call_response` answers next (`status`, headers, body).
    pub fn set_response(&self, status: u16, headers: &[(&str, &str)], body: Vec<u8>) {
        let mut all = vec![(":status".to_string(), status.to_string().into_bytes())];
        all.extend(
            headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec())),
        );
        *self.response.borrow_mut() = Some((all, body));
    }

    /// How often a held stream was let go on (`resume_request`).
    pub fn resumed(&self) -> u32 {
        self.resumed.get()
    }

    /// Streams ended from the root (stalled bodies): (stream, the reply; `None`: let through).
    pub fn ended(&self) -> Vec<(u32, Option<Reply>)> {
        self.ended.borrow().clone()
    }

    pub fn tick_period(&self) -> Duration {
        self.tick_period.get()
    }

    /// The value of a stat, by name (`None` if never defined).
    pub fn metric(&self, name: &str) -> Option<u64> {
        let metrics = self.metrics.borrow();
        metrics
            .iter()
            .find(|(_, n, _)| n == name)
            .map(|(_, _, v)| *v)
    }

    /// The log lines so far, emptied.
    pub fn take_log(&self) -> Vec<(Level, String)> {
        self.log.take()
    }
}

impl Shared for MemoryHost {
    fn get(&self, key: &str) -> Result<(Option<Vec<u8>>, Option<u32>), String> {
        self.shared.get(key)
    }

    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<bool, String> {
        self.shared.set(key, value, cas)
    }
}

impl Host for MemoryHost {
    fn http_request(&self, shape: &InputShape) -> Result<HttpRequest, String> {
        let mut request = self.request.borrow().clone();
        if !shape.needs_connection() {
            request.connection = None;
        }
        if !shape.metadata_context {
            request.metadata_context = None;
        }
        if shape.request_time && request.time_ns.is_none() {
            request.time_ns = i64::try_from(self.now_ns()).ok().filter(|t| *t != 0);
        }
        Ok(request)
    }

    fn request_header(&self, name: &str) -> Option<String> {
        let request = self.request.borrow();
        request
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    }

    fn request_path(&self) -> Option<String> {
        self.request_header(":path")
    }

    fn request_body(&self, len: usize) -> Result<Vec<u8>, String> {
        let body = self.body.borrow();
        Ok(body.get(..len.min(body.len())).unwrap_or_default().to_vec())
    }

    fn set_request_header(&self, name: &str, value: &str) -> Result<(), String> {
        let mut request = self.request.borrow_mut();
        request
            .headers
            .retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        request.headers.push((name.to_string(), value.to_string()));
        Ok(())
    }

    fn remove_request_header(&self, name: &str) -> Result<(), String> {
        let mut request = self.request.borrow_mut();
        request
            .headers
            .retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        Ok(())
    }

    fn add_response_header(&self, name: &str, value: &str) -> Result<(), String> {
        let mut headers = self.response_headers.borrow_mut();
        headers.push((name.to_string(), value.to_string()));
        Ok(())
    }

    fn set_filter_state(&self, key: &str, value: &[u8]) -> Result<(), String> {
        let mut state = self.filter_state.borrow_mut();
        state.insert(key.to_string(), value.to_vec());
        Ok(())
    }

    fn send_reply(
        &self,
        status: u16,
        headers: &[(String, String)],
        body: &str,
    ) -> Result<(), String> {
        *self.reply.borrow_mut() = Some(Reply {
            status,
            headers: headers.to_vec(),
            body: body.to_string(),
        });
        Ok(())
    }

    fn resume_request(&self) -> Result<(), String> {
        self.resumed.set(self.resumed.get() + 1);
        Ok(())
    }

    fn end_stream(&self, stream: u32, reply: Option<(u16, &str)>) -> Result<(), String> {
        let reply = reply.map(|(status, body)| Reply {
            status,
            headers: Vec::new(),
            body: body.to_string(),
        });
        self.ended.borrow_mut().push((stream, reply));
        Ok(())
    }

    fn http_call(
        &self,
        cluster: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        timeout_ms: u64,
    ) -> Result<u32, String> {
        if !self.clusters.borrow().iter().any(|c| c == cluster) {
            return Err("BadArgument".to_string());
        }
        let mut callouts = self.callouts.borrow_mut();
        let token = u32::try_from(callouts.len())
            .unwrap_or(u32::MAX)
            .saturating_add(1);
        callouts.push(Callout {
            token,
            cluster: cluster.to_string(),
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            body: body.to_vec(),
            timeout_ms,
        });
        Ok(token)
    }

    fn http_call_response(
        &self,
        _num_headers: usize,
        _body_size: usize,
        max_body: usize,
    ) -> Result<CallResponse, String> {
        let (headers, mut body) = self.response.take().ok_or("NotFound")?;
        body.truncate(max_body);
        Ok((headers, body))
    }

    fn set_tick_period(&self, period: Duration) {
        self.tick_period.set(period);
    }

    fn now_ns(&self) -> u64 {
        self.now_ns.get()
    }

    /// Predictable: each source gets the next seed.
    fn decision_ids(&self) -> Option<DecisionIds> {
        let seed = self.seed.get();
        self.seed.set(seed + 1);
        Some(DecisionIds::from_seed(seed))
    }

    fn define_metric(&self, kind: MetricKind, name: &str) -> Option<u32> {
        let mut metrics = self.metrics.borrow_mut();
        if let Some(at) = metrics.iter().position(|(_, n, _)| n == name) {
            return u32::try_from(at).ok();
        }
        metrics.push((kind, name.to_string(), 0));
        u32::try_from(metrics.len() - 1).ok()
    }

    fn increment_metric(&self, id: u32, by: u64) {
        let mut metrics = self.metrics.borrow_mut();
        if let Some((_, _, value)) = usize::try_from(id).ok().and_then(|i| metrics.get_mut(i)) {
            *value += by;
        }
    }

    /// Gauges keep the last value, histograms the count of records.
    fn record_metric(&self, id: u32, value: u64) {
        let mut metrics = self.metrics.borrow_mut();
        if let Some((kind, _, current)) = usize::try_from(id).ok().and_then(|i| metrics.get_mut(i))
        {
            *current = match kind {
                MetricKind::Histogram => *current + 1,
                _ => value,
            };
        }
    }

    fn log(&self, level: Level, message: &str) {
        self.log.borrow_mut().push((level, message.to_string()));
    }
}
