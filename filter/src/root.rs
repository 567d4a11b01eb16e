//! The root of one plugin, driven by the host: configuration (parse, activate the inline
//! bundle, keep a working policy when the new one does not load), the tick (live bundles,
//! streams whose body never comes, decision cache counters) and callout responses. A bundle
//! that fails to load is logged and never replaces a policy that works; without any policy,
//! requests get the no-bundle outcome.

use std::rc::Rc;
use std::time::Duration;

use crate::config::Config;
use crate::engine::Policy;
use crate::host::{Host, Level};
use crate::live::activation::{self, Trust};
use crate::live::{Bundles, TICK_MS};
use crate::plugin::{CacheMetrics, Plugin};
use crate::request::body::BODY_STALL_MS;
use crate::stream::Stream;

/// What a stream whose body never reached the filter gets, unless the plugin fails open.
const STALLED_REPLY: (u16, &str) = (503, "request body not delivered to the filter");

#[derive(Default)]
pub struct Root {
    plugin: Option<Rc<Plugin>>,
    bundles: Option<Bundles>,
    /// The tick period last asked of the host (`None` before the first configuration).
    tick: Option<Duration>,
    /// Defined when a configuration turns the decision cache on.
    cache_metrics: Option<CacheMetrics>,
}

impl Root {
    /// Applies a configuration (`bytes`, or the host's reason it could not read them);
    /// `false` when it is refused (the previous configuration, if any, stays).
    pub fn configure<H: Host>(
        &mut self,
        host: &H,
        name: String,
        bytes: Result<Vec<u8>, String>,
    ) -> bool {
        let bytes = match bytes {
            Ok(bytes) => bytes,
            Err(e) => {
                host.log(
                    Level::Error,
                    &format!("{name}: cannot read the plugin configuration: {e}"),
                );
                return false;
            }
        };
        let config = match Config::parse(&bytes) {
            Ok(config) => config,
            Err(e) => {
                host.log(Level::Error, &format!("{name}: invalid configuration: {e}"));
                return false;
            }
        };
        self.flush_cache_counts(host);
        // Keep a working policy across reconfiguration if the new bundle does not load.
        let mut previous = self.plugin.take().and_then(|p| p.take_policy(host));
        if let Some(bundles) = self.bundles.take() {
            bundles.release(host);
        }
        // A kept policy takes this configuration's settings too (its decision cache starts empty).
        if let Some(previous) = previous.as_mut() {
            previous.configure(&config);
        }
        let policy = match activate_inline(&config) {
            None => previous,
            Some(Ok(mut policy)) => {
                policy.configure(&config);
                host.log(
                    Level::Info,
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
                host.log(
                    Level::Error,
                    &format!("{name}: bundle rejected [{}]: {e}; {outcome}", e.code()),
                );
                previous
            }
        };
        if config.decision_cache_bytes > 0 && self.cache_metrics.is_none() {
            self.cache_metrics = Some(CacheMetrics::new(host));
        }
        let name: Rc<str> = name.into();
        let config = Rc::new(config);
        let plugin = Rc::new(Plugin::new(host, name.clone(), config.clone(), policy));
        let mut bundles = Bundles::new(host, name, config);
        if bundles.live() {
            // A worker that starts after the proxy fetched a bundle runs it from its first request.
            bundles.adopt_published(host, &plugin);
        }
        self.bundles = Some(bundles);
        self.plugin = Some(plugin);
        self.set_tick_period(host);
        true
    }

    /// A new stream of the current configuration; `None` before one was accepted.
    pub fn stream(&self, id: u32) -> Option<Stream> {
        Some(Stream::new(self.plugin.clone()?, id))
    }

    pub fn tick<H: Host>(&mut self, host: &H) {
        if let (Some(bundles), Some(plugin)) = (self.bundles.as_mut(), self.plugin.as_ref()) {
            bundles.tick(host, plugin);
        }
        self.end_stalled_requests(host);
        self.flush_cache_counts(host);
        if let Some(plugin) = self.plugin.as_ref() {
            plugin.send_events(host);
        }
        self.set_tick_period(host);
    }

    pub fn on_callout_response<H: Host>(
        &mut self,
        host: &H,
        token: u32,
        num_headers: usize,
        body_size: usize,
    ) {
        if let Some(plugin) = self.plugin.as_ref() {
            if plugin.on_upload_response(host, token, num_headers, body_size) {
                return;
            }
        }
        if let (Some(bundles), Some(plugin)) = (self.bundles.as_mut(), self.plugin.as_ref()) {
            bundles.on_response(host, plugin, token, num_headers, body_size);
        }
    }

    /// The root goes away: the lease is given up.
    pub fn done<H: Host>(&self, host: &H) {
        if let Some(bundles) = &self.bundles {
            bundles.release(host);
        }
    }

    fn flush_cache_counts<H: Host>(&self, host: &H) {
        if let (Some(metrics), Some(plugin)) = (&self.cache_metrics, &self.plugin) {
            metrics.add(host, plugin.take_cache_counts(host));
        }
    }

    /// Ticks drive live bundles, the decision cache counters and, while bodies are configured
    /// but none has reached the filter yet, the watch for bodies the host holds back (see
    /// `StallWatch`). Asks the host for a new period only when it changes, not on every tick.
    fn set_tick_period<H: Host>(&mut self, host: &H) {
        let live = self.bundles.as_ref().is_some_and(Bundles::live);
        let caching =
            self.cache_metrics.is_some() && self.plugin.as_ref().is_some_and(|p| p.caches(host));
        let watching = self.plugin.as_ref().is_some_and(|p| {
            p.config.body.with_request_body.is_some()
                && p.watch_stalls(host, |stalls| stalls.watching())
                    .unwrap_or(true)
        });
        let uploading = self.plugin.as_ref().is_some_and(|p| p.uploads_events());
        let period = if live {
            Duration::from_millis(TICK_MS)
        } else if watching || caching || uploading {
            Duration::from_secs(1)
        } else {
            Duration::ZERO
        };
        if self.tick != Some(period) {
            host.set_tick_period(period);
            self.tick = Some(period);
        }
    }

    fn end_stalled_requests<H: Host>(&self, host: &H) {
        let Some(plugin) = self.plugin.as_ref() else {
            return;
        };
        let now = host.now_ms();
        let stalled = plugin
            .watch_stalls(host, |stalls| stalls.stalled(now))
            .unwrap_or_default();
        let let_through = plugin.config.enforcement.fail_open;
        for stream in stalled {
            host.log(
                Level::Error,
                &format!(
                    "{}: no request body reached the filter in {}s: the Wasm PluginConfig needs \
                     allow_on_headers_stop_iteration: true (Envoy >= 1.35); {}",
                    plugin.name,
                    BODY_STALL_MS / 1000,
                    if let_through {
                        "letting the request through (fail_open)"
                    } else {
                        "answering 503"
                    }
                ),
            );
            let reply = (!let_through).then_some(STALLED_REPLY);
            if let Err(e) = host.end_stream(stream, reply) {
                host.log(
                    Level::Debug,
                    &format!("{}: stalled stream already gone: {e}", plugin.name),
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
        config.decision_logs.as_ref(),
    ))
}
