//! The root context: parses the plugin configuration once, activates the inline bundle, runs
//! live bundles on its tick (`bundles`), and hands each HTTP context the shared state. A
//! bundle that fails to load is logged and never replaces a policy that works; without any
//! policy, requests get the no-bundle outcome.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{ContextType, LogLevel, MetricType};

use super::bundles::{Bundles, TICK_MS};
use super::host::{self, log};
use super::http::Http;
use super::timing::Timing;
use crate::bundle::activation::{self, Trust};
use crate::config::Config;
use crate::engine::{CacheCounts, Exceeded, Policy};
use crate::request::body::{BodySettings, StallWatch, BODY_STALL_MS};
use crate::request::decision::{DecisionIds, Enforcement};

/// What every HTTP context of this plugin shares.
pub struct State {
    pub enforcement: Enforcement,
    pub policy: Option<Policy>,
    /// `plugin_name`, to tell plugins apart in the log.
    pub name: Rc<str>,
    pub connections: host::Connections,
    /// `with_request_body` and `skip_request_body_parse`.
    pub body: BodySettings,
    /// Streams waiting for a body the host may never deliver.
    pub stalls: StallWatch,
    /// Source of decision ids (UUID v4), one per decision.
    pub decision_ids: DecisionIds,
    /// `timing_stats`: the phase histograms.
    pub timing: Option<Timing>,
    /// Decision cache hits and misses of policies replaced since the last tick.
    pub cache_counts: CacheCounts,
    /// Counters of evaluations stopped by their budget.
    pub budget_metrics: BudgetMetrics,
}

/// `zerohop.budget_exceeded.{memory,work,time}`: evaluations stopped by a budget
/// (`engine::budget`), each an evaluation error answered with `status_on_error`.
pub struct BudgetMetrics {
    ids: [Option<u32>; 3],
}

impl BudgetMetrics {
    fn new() -> Self {
        Self {
            ids: Exceeded::ALL.map(|exceeded| {
                let name = match exceeded {
                    Exceeded::Memory => "zerohop.budget_exceeded.memory",
                    Exceeded::Work => "zerohop.budget_exceeded.work",
                    Exceeded::Time => "zerohop.budget_exceeded.time",
                };
                host::define_metric(MetricType::Counter, name)
            }),
        }
    }

    pub fn count(&self, exceeded: Exceeded) {
        let id = Exceeded::ALL
            .iter()
            .zip(self.ids)
            .find_map(|(e, id)| (*e == exceeded).then_some(id).flatten());
        if let Some(id) = id {
            host::increment_metric(id, 1);
        }
    }
}

impl State {
    /// Makes `policy` the active one, keeping the cache counts of the one it replaces.
    pub fn replace_policy(&mut self, policy: Policy) {
        if let Some(mut replaced) = self.policy.replace(policy) {
            self.cache_counts.add(replaced.take_cache_counts());
        }
    }

    fn take_cache_counts(&mut self) -> CacheCounts {
        let mut counts = std::mem::take(&mut self.cache_counts);
        if let Some(policy) = self.policy.as_mut() {
            counts.add(policy.take_cache_counts());
        }
        counts
    }
}

/// `wasmcustom.zerohop.decision_cache.{hits,misses}`, added on the tick: a few hostcalls a
/// second instead of one per request.
struct CacheMetrics {
    hits: Option<u32>,
    misses: Option<u32>,
}

impl CacheMetrics {
    fn new() -> Self {
        Self {
            hits: host::define_metric(MetricType::Counter, "zerohop.decision_cache.hits"),
            misses: host::define_metric(MetricType::Counter, "zerohop.decision_cache.misses"),
        }
    }

    fn add(&self, counts: CacheCounts) {
        for (id, count) in [(self.hits, counts.hits), (self.misses, counts.misses)] {
            if let (Some(id), 1..) = (id, count) {
                host::increment_metric(id, count);
            }
        }
    }
}

#[derive(Default)]
pub struct Root {
    state: Option<Rc<RefCell<State>>>,
    bundles: Option<Bundles>,
    /// The tick period last asked of the host (`None` before the first request).
    tick: Option<Duration>,
    /// Defined when a configuration turns the decision cache on.
    cache_metrics: Option<CacheMetrics>,
}

impl Context for Root {
    fn on_http_call_response(
        &mut self,
        token_id: u32,
        num_headers: usize,
        body_size: usize,
        _num_trailers: usize,
    ) {
        if let (Some(bundles), Some(state)) = (self.bundles.as_mut(), self.state.as_ref()) {
            bundles.on_response(state, token_id, num_headers, body_size);
        }
    }

    fn on_done(&mut self) -> bool {
        if let Some(bundles) = &self.bundles {
            bundles.release();
        }
        true
    }
}

impl RootContext for Root {
    fn on_configure(&mut self, plugin_configuration_size: usize) -> bool {
        let name = host::property_text(&["plugin_name"]).unwrap_or_else(|| "zerohop".to_string());
        let bytes = match host::plugin_configuration(plugin_configuration_size) {
            Ok(bytes) => bytes,
            Err(status) => {
                log(
                    LogLevel::Error,
                    &format!("{name}: cannot read the plugin configuration: {status:?}"),
                );
                return false;
            }
        };
        let config = match Config::parse(&bytes) {
            Ok(config) => config,
            Err(e) => {
                log(
                    LogLevel::Error,
                    &format!("{name}: invalid configuration: {e}"),
                );
                return false;
            }
        };
        self.flush_cache_counts();
        // Keep a working policy across reconfiguration if the new bundle does not load.
        let mut previous = self.state.take().and_then(|s| s.borrow_mut().policy.take());
        if let Some(bundles) = self.bundles.take() {
            bundles.release();
        }
        // A kept policy takes this configuration's cache budget too (and starts it empty).
        if let Some(previous) = previous.as_mut() {
            previous.set_decision_cache(config.decision_cache_bytes);
            previous.set_budget(config.budget);
        }
        let policy = match activate_inline(&config) {
            None => previous,
            Some(Ok(mut policy)) => {
                policy.set_decision_cache(config.decision_cache_bytes);
                policy.set_budget(config.budget);
                log(
                    LogLevel::Info,
                    &format!(
                        "{name}: bundle revision {:?} active, decision {} ({}); reads {}; decision cache {}",
                        policy.revision(),
                        policy.rule(),
                        policy.mode().as_str(),
                        policy.input_reads(),
                        policy.decision_cache(),
                    ),
                );
                Some(policy)
            }
            Some(Err(e)) => {
                let outcome = if previous.is_some() {
                    "keeping the previous bundle"
                } else {
                    "no bundle is active: requests get 503"
                };
                log(
                    LogLevel::Error,
                    &format!("{name}: bundle rejected [{}]: {e}; {outcome}", e.code()),
                );
                previous
            }
        };
        if config.decision_cache_bytes > 0 && self.cache_metrics.is_none() {
            self.cache_metrics = Some(CacheMetrics::new());
        }
        let decision_ids = DecisionIds::from_system().unwrap_or_else(|| {
            log(
                LogLevel::Error,
                &format!("{name}: the host gives no randomness: decision ids are predictable"),
            );
            DecisionIds::from_seed(host::now_ns())
        });
        let name: Rc<str> = name.into();
        let state = Rc::new(RefCell::new(State {
            enforcement: config.enforcement,
            policy,
            name: name.clone(),
            connections: host::Connections::default(),
            decision_ids,
            body: config.body,
            stalls: StallWatch::default(),
            timing: config.timing_stats.then(Timing::new),
            cache_counts: CacheCounts::default(),
            budget_metrics: BudgetMetrics::new(),
        }));
        let mut bundles = Bundles::new(name, Rc::new(config));
        if bundles.live() {
            // A worker that starts after the proxy fetched a bundle runs it from its first request.
            bundles.adopt_published(&state);
        }
        self.bundles = Some(bundles);
        self.state = Some(state);
        self.set_tick_period();
        true
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        // `None` makes the SDK panic; with no state (configure failed) Envoy never gets here.
        let state = self.state.clone()?;
        Some(Box::new(Http::new(state, context_id)))
    }

    fn on_tick(&mut self) {
        if let (Some(bundles), Some(state)) = (self.bundles.as_mut(), self.state.as_ref()) {
            bundles.tick(state);
        }
        self.end_stalled_requests();
        self.flush_cache_counts();
        self.set_tick_period();
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

impl Root {
    fn flush_cache_counts(&self) {
        let (Some(metrics), Some(state)) = (&self.cache_metrics, &self.state) else {
            return;
        };
        if let Ok(mut state) = state.try_borrow_mut() {
            metrics.add(state.take_cache_counts());
        }
    }

    /// Ticks drive live bundles, the decision cache counters and, while bodies are configured
    /// but none has reached the filter yet, the watch for bodies the host holds back (see
    /// `StallWatch`). Asks the host for a new period only when it changes, not on every tick.
    fn set_tick_period(&mut self) {
        let live = self.bundles.as_ref().is_some_and(Bundles::live);
        let caching = self.cache_metrics.is_some()
            && self.state.as_ref().is_some_and(|s| {
                s.try_borrow()
                    .is_ok_and(|s| s.policy.as_ref().is_some_and(Policy::caches))
            });
        let watching = self.state.as_ref().is_some_and(|s| {
            s.try_borrow()
                .is_ok_and(|s| s.body.with_request_body.is_some() && s.stalls.watching())
        });
        let period = if live {
            Duration::from_millis(TICK_MS)
        } else if watching || caching {
            Duration::from_secs(1)
        } else {
            Duration::ZERO
        };
        if self.tick != Some(period) {
            host::set_tick_period(period);
            self.tick = Some(period);
        }
    }

    fn end_stalled_requests(&self) {
        let Some(Ok(mut state)) = self.state.as_ref().map(|s| s.try_borrow_mut()) else {
            return;
        };
        for stream in state.stalls.stalled(host::now_ms()) {
            let let_through = state.enforcement.fail_open;
            log(
                LogLevel::Error,
                &format!(
                    "{}: no request body reached the filter in {}s: the Wasm PluginConfig needs \
                     allow_on_headers_stop_iteration: true (Envoy >= 1.35); {}",
                    state.name,
                    BODY_STALL_MS / 1000,
                    if let_through {
                        "letting the request through (fail_open)"
                    } else {
                        "answering 503"
                    }
                ),
            );
            if let Err(status) = host::end_stalled_request(stream, let_through) {
                log(
                    LogLevel::Debug,
                    &format!("{}: stalled stream already gone: {status:?}", state.name),
                );
            }
        }
    }
}

/// The inline bundle, if configured, loaded in full (it comes with the configuration, so its
/// signature is not checked).
fn activate_inline(config: &Config) -> Option<Result<Policy, activation::ActivationError>> {
    let bytes = config.bundle.inline.as_ref()?;
    Some(activation::load(
        bytes,
        &config.path,
        &config.bundle.limits,
        Trust::Configured,
    ))
}
