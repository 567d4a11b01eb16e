//! The decision log of one configuration: events masked, dropped or written to the sinks
//! (Envoy's log, `zerohop-decision {…}` at warning level so Istio's default proxy log level
//! shows it; the upload buffer), and their counters under `zerohop.decision_logs.*`.

use std::cell::Cell;

use serde_json::{Map, Value as Json};

use super::config::{DecisionLogs, LoggedInput};
use super::event::Fixed;
use super::mask::{self, LogRules};
use crate::host::{Host, Level, MetricKind};
use crate::shape::InputShape;

/// What prefixes each event in Envoy's log, for log pipelines to filter on.
pub const CONSOLE_PREFIX: &str = "zerohop-decision ";

/// Why an event was not written or not uploaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dropped {
    /// `data.system.log.drop` was true.
    DropRule,
    /// Over `max_decisions_per_second`.
    RateLimit,
    /// The upload buffer was full: the oldest events went.
    BufferFull,
    /// Larger than `upload_size_limit_bytes` on its own, compressed.
    TooLarge,
}

impl Dropped {
    const ALL: [Dropped; 4] = [
        Dropped::DropRule,
        Dropped::RateLimit,
        Dropped::BufferFull,
        Dropped::TooLarge,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Dropped::DropRule => "drop_rule",
            Dropped::RateLimit => "rate_limit",
            Dropped::BufferFull => "buffer_full",
            Dropped::TooLarge => "too_large",
        }
    }
}

/// `zerohop.decision_logs.*`.
struct Metrics {
    written: Option<u32>,
    mask_errors: Option<u32>,
    uploaded: Option<u32>,
    upload_failures: Option<u32>,
    dropped: [Option<u32>; 4],
}

impl Metrics {
    fn new<H: Host>(host: &H) -> Self {
        let counter = |name: &str| {
            host.define_metric(
                MetricKind::Counter,
                &format!("zerohop.decision_logs.{name}"),
            )
        };
        Self {
            written: counter("written"),
            mask_errors: counter("mask_errors"),
            uploaded: counter("uploaded"),
            upload_failures: counter("upload_failures"),
            dropped: Dropped::ALL.map(|d| counter(&format!("dropped.{}", d.as_str()))),
        }
    }
}

fn add<H: Host>(host: &H, id: Option<u32>, by: u64) {
    if let (Some(id), 1..) = (id, by) {
        host.increment_metric(id, by);
    }
}

pub struct DecisionLog {
    pub settings: DecisionLogs,
    pub fixed: Fixed,
    /// The whole input, for `input: full`.
    pub everything: InputShape,
    metrics: Metrics,
    /// `max_decisions_per_second`: (tokens, the clock when last refilled, in ns).
    bucket: Cell<(f64, u64)>,
}

impl DecisionLog {
    pub fn new<H: Host>(host: &H, name: &str, path: &str, settings: DecisionLogs) -> Self {
        let mut labels = Map::new();
        labels.insert("id".into(), proxy_id(host, name).into());
        labels.insert("version".into(), env!("CARGO_PKG_VERSION").into());
        for (key, value) in &settings.labels {
            labels.insert(key.clone(), value.as_str().into());
        }
        let burst = settings.reporting.max_decisions_per_second.unwrap_or(0.0);
        Self {
            fixed: Fixed {
                labels: Json::Object(labels),
                bundle_name: name.to_string(),
                path: path.to_string(),
            },
            everything: InputShape::everything(),
            metrics: Metrics::new(host),
            bucket: Cell::new((burst, host.now_ns())),
            settings,
        }
    }

    /// Whether events carry the whole input rather than the parts the policy reads.
    pub fn full_input(&self) -> bool {
        self.settings.input == LoggedInput::Full
    }

    pub fn count_dropped<H: Host>(&self, host: &H, why: Dropped, events: u64) {
        let slot = Dropped::ALL.iter().position(|d| *d == why);
        add(
            host,
            slot.and_then(|i| self.metrics.dropped.get(i).copied().flatten()),
            events,
        );
    }

    pub fn count_uploaded<H: Host>(&self, host: &H, events: u64) {
        add(host, self.metrics.uploaded, events);
    }

    pub fn count_upload_failure<H: Host>(&self, host: &H) {
        add(host, self.metrics.upload_failures, 1);
    }

    /// Whether this decision is logged: one more event fits `max_decisions_per_second` (a
    /// token bucket of one second, as OPA's limiter). A decision over the rate is counted and
    /// costs nothing more.
    pub fn admit<H: Host>(&self, host: &H) -> bool {
        let Some(rate) = self.settings.reporting.max_decisions_per_second else {
            return true;
        };
        let now = host.now_ns();
        let (tokens, since) = self.bucket.get();
        let refilled = (tokens + now.saturating_sub(since) as f64 * rate / 1e9).min(rate.max(1.0));
        let admitted = refilled >= 1.0;
        self.bucket
            .set((if admitted { refilled - 1.0 } else { refilled }, now));
        if !admitted {
            self.count_dropped(host, Dropped::RateLimit, 1);
        }
        admitted
    }

    /// Applies the bundle's drop and mask rules to `event` (already carrying the default
    /// masks) and returns the JSON line to hand to the sinks, written to the console if
    /// configured. `None`: dropped by the drop rule (counted).
    pub fn finish<H: Host>(
        &self,
        host: &H,
        name: &str,
        event: String,
        rules: Option<&mut LogRules>,
    ) -> Option<String> {
        let line = match rules {
            Some(rules) => self.apply_rules(host, name, event, rules)?,
            None => event,
        };
        add(host, self.metrics.written, 1);
        if self.settings.console {
            host.log(Level::Warn, &format!("{CONSOLE_PREFIX}{line}"));
        }
        Some(line)
    }

    /// `None`: the drop rule dropped the event. A rule that fails leaves the event as it is.
    fn apply_rules<H: Host>(
        &self,
        host: &H,
        name: &str,
        event: String,
        rules: &mut LogRules,
    ) -> Option<String> {
        let input = match regorus::Value::from_json_str(&event) {
            Ok(input) => input,
            Err(e) => {
                self.mask_error(host, name, "mask", &format!("{e:#}"));
                return Some(event);
            }
        };
        match rules.drops(&input) {
            Ok(true) => {
                self.count_dropped(host, Dropped::DropRule, 1);
                return None;
            }
            Ok(false) => {}
            Err(e) => self.mask_error(host, name, "drop", &e),
        }
        match rules.masks(&input) {
            Ok(ops) if ops.is_empty() => Some(event),
            Ok(ops) => match serde_json::from_str::<Json>(&event) {
                Ok(Json::Object(mut fields)) => {
                    mask::apply(&mut fields, &ops);
                    Some(Json::Object(fields).to_string())
                }
                _ => Some(event),
            },
            Err(e) => {
                self.mask_error(host, name, "mask", &e);
                Some(event)
            }
        }
    }

    /// The rule's error is logged without the event (it may hold what the rule was to mask).
    fn mask_error<H: Host>(&self, host: &H, name: &str, rule: &str, error: &str) {
        add(host, self.metrics.mask_errors, 1);
        let rule = match rule {
            "drop" => self.settings.drop_decision.rule(),
            _ => self.settings.mask_decision.rule(),
        };
        let first_line = error.lines().next().unwrap_or_default();
        let short: String = first_line.chars().take(160).collect();
        host.log(
            Level::Warn,
            &format!("{name}: decision log rule {rule} failed, the event keeps the default masks only: {short}"),
        );
    }
}

/// The proxy's id (`labels.id`): one random UUID per proxy, shared by its workers through
/// shared data (the first worker to configure writes it).
fn proxy_id<H: Host>(host: &H, name: &str) -> String {
    let key = format!("{name}.zerohop.proxy_id");
    let read = |host: &H| {
        host.get(&key)
            .ok()
            .and_then(|(value, _)| value)
            .and_then(|v| String::from_utf8(v).ok())
    };
    if let Some(id) = read(host) {
        return id;
    }
    let fresh = host
        .decision_ids()
        .map(|mut ids| ids.next_id().to_string())
        .unwrap_or_default();
    if let Err(e) = host.set(&key, fresh.as_bytes(), None) {
        host.log(
            Level::Warn,
            &format!("{name}: cannot share the proxy id: {e}"),
        );
    }
    read(host).unwrap_or(fresh)
}
