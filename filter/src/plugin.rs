//! One configured plugin: what every stream of a configuration shares. The settings are an
//! immutable value made once per configuration; what changes (the active policy, the decision
//! id source, the streams waiting for a body, cache counts) sits in small cells, each borrowed
//! for one statement. A cell found in use (re-entrance, which a single-threaded host does not
//! do) is logged and counted under `zerohop.state_busy`, and the caller takes the plain
//! fail-closed path with the real settings: nothing is invented.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use crate::audit::counters::{DecisionCounters, Label};
use crate::audit::log::{DecisionLog, Dropped};
use crate::audit::upload::{Losses, Uploader};
use crate::config::Config;
use crate::engine::{CacheCounts, Exceeded, Policy};
use crate::host::{Host, Level, MetricKind};
use crate::request::body::StallWatch;
use crate::request::decision::{DecisionId, DecisionIds};
use crate::request::pipeline::Phase;
use std::hash::BuildHasher;

/// Shared by the root and every stream of one configuration.
pub struct Plugin {
    /// `plugin_name`, to tell plugins apart in the log.
    pub name: Rc<str>,
    pub config: Rc<Config>,
    /// `timing_stats`: the phase histograms.
    pub timing: Option<Timing>,
    /// `decision_logs`: events, their masks and sinks.
    pub decision_log: Option<DecisionLog>,
    budget_metrics: BudgetMetrics,
    /// `zerohop.decisions.<outcome>`.
    decisions: DecisionCounters,
    busy_metric: Option<u32>,
    policy: RefCell<Option<Policy>>,
    decision_ids: RefCell<DecisionIds>,
    /// Streams waiting for a body the host may never deliver.
    stalls: RefCell<StallWatch>,
    /// Decision cache hits and misses of policies replaced since the last tick.
    cache_counts: Cell<CacheCounts>,
    /// Events waiting for the decision-log service, and the upload in flight.
    uploads: RefCell<Option<Uploads>>,
}

/// The decision-log service's client of one worker.
pub struct Uploads {
    uploader: Uploader,
    /// The outstanding callout.
    pending: Option<u32>,
}

/// A cell of `Plugin` was in use; already logged and counted.
#[derive(Debug)]
pub struct Busy;

/// The cells of `Plugin`, named in the busy log line.
#[derive(Debug, Clone, Copy)]
pub enum CellName {
    Policy,
    DecisionIds,
    Stalls,
    Uploads,
}

impl CellName {
    fn as_str(self) -> &'static str {
        match self {
            CellName::Policy => "policy",
            CellName::DecisionIds => "decision ids",
            CellName::Stalls => "body stall watch",
            CellName::Uploads => "decision-log uploads",
        }
    }
}

impl Plugin {
    pub fn new<H: Host>(
        host: &H,
        name: Rc<str>,
        config: Rc<Config>,
        policy: Option<Policy>,
    ) -> Self {
        let decision_ids = host.decision_ids().unwrap_or_else(|| {
            host.log(
                Level::Error,
                &format!("{name}: the host gives no randomness: decision ids are predictable"),
            );
            DecisionIds::from_seed(host.now_ns())
        });
        Self {
            timing: config.timing_stats.then(|| Timing::new(host)),
            decision_log: config
                .decision_logs
                .clone()
                .map(|logs| DecisionLog::new(host, &name, config.path.as_path(), logs)),
            budget_metrics: BudgetMetrics::new(host),
            decisions: DecisionCounters::new(host),
            busy_metric: host.define_metric(MetricKind::Counter, BUSY_METRIC),
            policy: RefCell::new(policy),
            decision_ids: RefCell::new(decision_ids),
            stalls: RefCell::new(StallWatch::default()),
            cache_counts: Cell::new(CacheCounts::default()),
            uploads: RefCell::new(
                config
                    .decision_logs
                    .as_ref()
                    .filter(|logs| logs.service.is_some())
                    .map(|logs| Uploads {
                        uploader: Uploader::new(
                            logs.reporting,
                            std::collections::hash_map::RandomState::new().hash_one(host.now_ns()),
                            host.now_ms(),
                        ),
                        pending: None,
                    }),
            ),
            name,
            config,
        }
    }

    /// Logs and counts a cell found in use.
    pub fn busy<H: Host>(&self, host: &H, cell: CellName) {
        host.log(
            Level::Error,
            &format!(
                "{}: plugin state in use ({}); counted in {BUSY_METRIC}",
                self.name,
                cell.as_str()
            ),
        );
        if let Some(id) = self.busy_metric {
            host.increment_metric(id, 1);
        }
    }

    /// Runs `f` on the active policy (`None`: no bundle).
    pub fn with_policy<H: Host, T>(
        &self,
        host: &H,
        f: impl FnOnce(Option<&mut Policy>) -> T,
    ) -> Result<T, Busy> {
        match self.policy.try_borrow_mut() {
            Ok(mut policy) => Ok(f(policy.as_mut())),
            Err(_) => {
                self.busy(host, CellName::Policy);
                Err(Busy)
            }
        }
    }

    /// Whether a policy is active (false when the cell is in use: logged and counted).
    pub fn has_policy<H: Host>(&self, host: &H) -> bool {
        self.with_policy(host, |p| p.is_some()).unwrap_or(false)
    }

    /// Takes the active policy out (reconfiguration keeps it).
    pub fn take_policy<H: Host>(&self, host: &H) -> Option<Policy> {
        match self.policy.try_borrow_mut() {
            Ok(mut policy) => policy.take(),
            Err(_) => {
                self.busy(host, CellName::Policy);
                None
            }
        }
    }

    /// Makes `policy` the active one, keeping the cache counts of the one it replaces.
    pub fn replace_policy<H: Host>(&self, host: &H, policy: Policy) -> Result<(), Busy> {
        let Ok(mut slot) = self.policy.try_borrow_mut() else {
            self.busy(host, CellName::Policy);
            return Err(Busy);
        };
        if let Some(mut replaced) = slot.replace(policy) {
            self.add_cache_counts(replaced.take_cache_counts());
        }
        Ok(())
    }

    /// `keeping revision "..."`, or what requests get without a policy: for rejection logs.
    pub fn keeping<H: Host>(&self, host: &H) -> Option<String> {
        self.with_policy(host, |p| {
            p.map(|p| format!("keeping revision {:?}", p.revision()))
        })
        .ok()
        .flatten()
    }

    /// The next decision id; `None` when the cell is in use (logged and counted).
    pub fn next_decision_id<H: Host>(&self, host: &H) -> Option<DecisionId> {
        match self.decision_ids.try_borrow_mut() {
            Ok(mut ids) => Some(ids.next_id()),
            Err(_) => {
                self.busy(host, CellName::DecisionIds);
                None
            }
        }
    }

    /// Changes the body stall watch (logged and counted when the cell is in use).
    pub fn watch_stalls<H: Host, T>(
        &self,
        host: &H,
        f: impl FnOnce(&mut StallWatch) -> T,
    ) -> Option<T> {
        match self.stalls.try_borrow_mut() {
            Ok(mut stalls) => Some(f(&mut stalls)),
            Err(_) => {
                self.busy(host, CellName::Stalls);
                None
            }
        }
    }

    /// Counts one decision under `zerohop.decisions.<label>`.
    pub fn count_decision<H: Host>(&self, host: &H, label: Label) {
        self.decisions.count(host, label);
    }

    /// Keeps an event's JSON for the decision-log service, if one is configured.
    pub fn buffer_event<H: Host>(&self, host: &H, line: String) {
        let Some(log) = &self.decision_log else {
            return;
        };
        match self.uploads.try_borrow_mut() {
            Ok(mut uploads) => {
                if let Some(uploads) = uploads.as_mut() {
                    let dropped = uploads.uploader.push(line);
                    log.count_dropped(host, Dropped::BufferFull, dropped);
                }
            }
            Err(_) => {
                self.busy(host, CellName::Uploads);
                log.count_dropped(host, Dropped::BufferFull, 1);
            }
        }
    }

    /// Sends the next chunk of events when one is due (from the root: the tick, or the answer
    /// to the previous chunk).
    pub fn send_events<H: Host>(&self, host: &H) {
        let (Some(log), Some(service)) = (
            &self.decision_log,
            self.decision_log
                .as_ref()
                .and_then(|l| l.settings.service.as_ref()),
        ) else {
            return;
        };
        let Ok(mut slot) = self.uploads.try_borrow_mut() else {
            self.busy(host, CellName::Uploads);
            return;
        };
        let Some(uploads) = slot.as_mut() else {
            return;
        };
        let now = host.now_ms();
        if uploads.uploader.lost(now, service.timeout_ms) {
            uploads.pending = None;
            let dropped = uploads.uploader.failed(now);
            self.upload_failed(
                host,
                log,
                dropped,
                &format!("no answer within {} ms", service.timeout_ms),
            );
        }
        if !uploads.uploader.due(now) {
            return;
        }
        let mut losses = Losses::default();
        let chunk = uploads.uploader.start(now, &mut losses);
        if losses.too_large > 0 {
            log.count_dropped(host, Dropped::TooLarge, losses.too_large);
            host.log(
                Level::Warn,
                &format!(
                    "{}: dropped {} decision-log event(s) larger than upload_size_limit_bytes ({}) compressed",
                    self.name, losses.too_large, log.settings.reporting.upload_size_limit_bytes
                ),
            );
        }
        let Some(chunk) = chunk else {
            return;
        };
        let mut headers: Vec<(&str, &str)> = vec![
            (":method", "POST"),
            (":path", &service.path),
            (":authority", &service.authority),
            (":scheme", "http"),
            ("content-type", "application/json"),
            ("content-encoding", "gzip"),
            ("user-agent", "zerohop"),
        ];
        headers.extend(
            service
                .headers
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str())),
        );
        match host.http_call(&service.cluster, &headers, &chunk.gzip, service.timeout_ms) {
            Ok(token) => uploads.pending = Some(token),
            Err(e) => {
                let dropped = uploads.uploader.failed(now);
                self.upload_failed(
                    host,
                    log,
                    dropped,
                    &format!("cannot call cluster {:?}: {e}", service.cluster),
                );
            }
        }
    }

    /// A callout's answer, if it is the upload this worker waits for (`false` otherwise).
    pub fn on_upload_response<H: Host>(
        &self,
        host: &H,
        token: u32,
        num_headers: usize,
        body_size: usize,
    ) -> bool {
        let Some(log) = &self.decision_log else {
            return false;
        };
        let Ok(mut slot) = self.uploads.try_borrow_mut() else {
            return false;
        };
        let Some(uploads) = slot.as_mut().filter(|u| u.pending == Some(token)) else {
            return false;
        };
        uploads.pending = None;
        let now = host.now_ms();
        let status = host
            .http_call_response(num_headers, body_size, 0)
            .ok()
            .and_then(|(headers, _)| {
                headers
                    .into_iter()
                    .find(|(n, _)| n == ":status")
                    .and_then(|(_, v)| String::from_utf8(v).ok())
                    .and_then(|v| v.parse::<u16>().ok())
            });
        match status {
            Some(200..=299) => {
                let events = uploads.uploader.succeeded(now);
                log.count_uploaded(host, events);
                drop(slot);
                // The rest of the buffer follows at once.
                self.send_events(host);
            }
            other => {
                let dropped = uploads.uploader.failed(now);
                let why = match other {
                    Some(status) => format!("the service answered HTTP {status}"),
                    None => "the service could not be reached".to_string(),
                };
                self.upload_failed(host, log, dropped, &why);
            }
        }
        true
    }

    fn upload_failed<H: Host>(&self, host: &H, log: &DecisionLog, dropped: u64, why: &str) {
        log.count_upload_failure(host);
        log.count_dropped(host, Dropped::BufferFull, dropped);
        host.log(
            Level::Warn,
            &format!(
                "{}: decision-log upload failed, retrying with backoff: {why}",
                self.name
            ),
        );
    }

    /// Whether events wait for the decision-log service (the root's tick sends them).
    pub fn uploads_events(&self) -> bool {
        self.uploads.try_borrow().is_ok_and(|u| u.is_some())
    }

    pub fn count_budget<H: Host>(&self, host: &H, exceeded: Exceeded) {
        self.budget_metrics.count(host, exceeded);
    }

    fn add_cache_counts(&self, counts: CacheCounts) {
        let mut total = self.cache_counts.get();
        total.add(counts);
        self.cache_counts.set(total);
    }

    /// The decision cache counts since the last call, of the active policy and those it
    /// replaced.
    pub fn take_cache_counts<H: Host>(&self, host: &H) -> CacheCounts {
        let mut counts = self.cache_counts.take();
        if let Ok(Some(active)) = self.with_policy(host, |p| p.map(Policy::take_cache_counts)) {
            counts.add(active);
        }
        counts
    }

    /// Whether the active policy caches decisions.
    pub fn caches<H: Host>(&self, host: &H) -> bool {
        self.with_policy(host, |p| p.is_some_and(|p| p.caches()))
            .unwrap_or(false)
    }
}

/// `wasmcustom.zerohop.state_busy`: plugin state found in use where it is read or changed.
pub const BUSY_METRIC: &str = "zerohop.state_busy";

/// `zerohop.budget_exceeded.{memory,work,time}`: evaluations stopped by a budget
/// (`engine::budget`), each an evaluation error answered with `status_on_error`.
struct BudgetMetrics {
    ids: [Option<u32>; 3],
}

impl BudgetMetrics {
    fn new<H: Host>(host: &H) -> Self {
        Self {
            ids: Exceeded::ALL.map(|exceeded| {
                let name = match exceeded {
                    Exceeded::Memory => "zerohop.budget_exceeded.memory",
                    Exceeded::Work => "zerohop.budget_exceeded.work",
                    Exceeded::Time => "zerohop.budget_exceeded.time",
                };
                host.define_metric(MetricKind::Counter, name)
            }),
        }
    }

    fn count<H: Host>(&self, host: &H, exceeded: Exceeded) {
        let id = Exceeded::ALL
            .iter()
            .zip(self.ids)
            .find_map(|(e, id)| (*e == exceeded).then_some(id).flatten());
        if let Some(id) = id {
            host.increment_metric(id, 1);
        }
    }
}

/// `wasmcustom.zerohop.decision_cache.{hits,misses}`, added on the tick: a few host calls a
/// second instead of one per request.
pub struct CacheMetrics {
    hits: Option<u32>,
    misses: Option<u32>,
}

impl CacheMetrics {
    pub fn new<H: Host>(host: &H) -> Self {
        Self {
            hits: host.define_metric(MetricKind::Counter, "zerohop.decision_cache.hits"),
            misses: host.define_metric(MetricKind::Counter, "zerohop.decision_cache.misses"),
        }
    }

    pub fn add<H: Host>(&self, host: &H, counts: CacheCounts) {
        for (id, count) in [(self.hits, counts.hits), (self.misses, counts.misses)] {
            if let (Some(id), 1..) = (id, count) {
                host.increment_metric(id, count);
            }
        }
    }
}

/// `timing_stats`: each decision's phases as histograms, in nanoseconds, so the time a filter
/// adds can be split where it is spent (`/stats?filter=zerohop.time`):
/// `wasmcustom.zerohop.time.{request,input,evaluate,apply}_ns`. Off by default: the clock
/// reads and histogram records cost host calls of their own (outside the phases they
/// measure, but added to the request).
#[derive(Clone, Copy)]
pub struct Timing {
    ids: [Option<u32>; 4],
}

const TIMING_NAMES: [&str; 4] = [
    "zerohop.time.request_ns",
    "zerohop.time.input_ns",
    "zerohop.time.evaluate_ns",
    "zerohop.time.apply_ns",
];

impl Timing {
    fn new<H: Host>(host: &H) -> Self {
        Self {
            ids: TIMING_NAMES.map(|name| host.define_metric(MetricKind::Histogram, name)),
        }
    }

    /// Records `ns` under `phase`.
    pub fn record<H: Host>(&self, host: &H, phase: Phase, ns: u64) {
        if let Some(Some(id)) = self.ids.get(phase as usize) {
            host.record_metric(*id, ns);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::memory::MemoryHost;
    use crate::stream::{Flow, Stream};

    /// Only re-entrance finds a cell in use; here a stream runs while the policy is borrowed.
    #[test]
    fn a_cell_in_use_is_logged_counted_and_answered_with_the_real_settings() {
        let host = MemoryHost::default();
        let config = br#"{"status_on_error": 500,
            "bundle": {"service": {"cluster": "c", "authority": "a", "path": "/b"}}}"#;
        let config = Rc::new(Config::parse(config).unwrap());
        let plugin = Rc::new(Plugin::new(&host, "p".into(), config, None));
        let mut stream = Stream::new(Rc::clone(&plugin), 1);
        let flow = plugin
            .with_policy(&host, |_| stream.on_request_headers(&host, true))
            .unwrap();
        assert_eq!(flow, Flow::Pause);
        assert_eq!(
            host.reply().unwrap().status,
            500,
            "status_on_error, not a made-up 503"
        );
        assert_eq!(host.metric(BUSY_METRIC), Some(1));
        let log = host.take_log();
        assert!(log.contains(&(
            Level::Error,
            "p: plugin state in use (policy); counted in zerohop.state_busy".to_string()
        )));
        assert!(log
            .iter()
            .any(|(_, line)| line.starts_with("p: evaluation-error (decision_id ")));
    }
}
