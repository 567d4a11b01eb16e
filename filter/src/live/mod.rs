//! Live bundles for one root context, driven by the host's tick and callout responses. On
//! every tick a worker (1) activates the revision the proxy has published in shared data if
//! it is newer than its own, and (2) if it holds the proxy's lease (`lease`), runs the bundle
//! API client (`poll`): one callout at a time, the answer verified and loaded in full
//! (`activation`), then published for the other workers. The active policy is replaced only
//! on a tick or a callout response, never during a request, and only by a policy that loaded.

pub mod activation;
pub mod lease;
pub mod oci;
pub mod poll;

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::rc::Rc;

use activation::{ActivationError, Trust};
use lease::{Keys, Published};
use oci::{Answer, Next, OciFetch};
use poll::{FetchError, Fetched, Poller, Response};

use crate::codes;
use crate::config::Config;
use crate::engine::Policy;
use crate::host::{Host, Level, MetricKind};
use crate::plugin::Plugin;

/// How often each worker looks for a new revision (and the lease holder for a due fetch).
pub const TICK_MS: u64 = 200;
/// A lease its holder stopped renewing (its VM is gone) is taken over after this.
pub const LEASE_TTL_MS: u64 = 5_000;

pub struct Bundles {
    name: Rc<str>,
    config: Rc<Config>,
    keys: Keys,
    /// This root context's identity in the lease.
    owner: u64,
    /// The publication this worker last activated (or failed to).
    generation: u64,
    /// The bundle API client, while this worker holds the lease.
    client: Option<Client>,
    metrics: Metrics,
}

struct Client {
    poller: Poller,
    /// The outstanding callout.
    pending: Option<u32>,
    /// For an OCI registry service: the chain of callouts of the current fetch.
    oci: Option<OciFetch>,
}

impl Bundles {
    pub fn new<H: Host>(host: &H, name: Rc<str>, config: Rc<Config>) -> Self {
        let owner = std::collections::hash_map::RandomState::new().hash_one(host.now_ms());
        Self {
            keys: Keys::new(&name),
            name,
            config,
            owner,
            generation: 0,
            client: None,
            metrics: Metrics::default(),
        }
    }

    /// Whether a bundle service is configured (and so ticks are needed).
    pub fn live(&self) -> bool {
        self.config.bundle.service.is_some()
    }

    /// Whether this worker holds the lease and runs the bundle API client.
    pub fn polling(&self) -> bool {
        self.client.is_some()
    }

    pub fn tick<H: Host>(&mut self, host: &H, plugin: &Plugin) {
        self.adopt_published(host, plugin);
        if !self.live() {
            return;
        }
        let now = host.now_ms();
        match lease::hold(host, &self.keys, self.owner, now, LEASE_TTL_MS) {
            Ok(true) => self.poll(host, now),
            Ok(false) => self.client = None,
            Err(e) => {
                host.log(Level::Warn, &format!("{}: bundle lease: {e}", self.name));
                self.client = None;
            }
        }
    }

    /// Gives the lease up when the root context is reconfigured or goes away.
    pub fn release<H: Host>(&self, host: &H) {
        if !self.live() {
            return;
        }
        if let Err(e) = lease::release(host, &self.keys, self.owner) {
            // Not fatal: another worker takes the lease over once it expires.
            host.log(
                Level::Warn,
                &format!("{}: bundle lease release: {e}", self.name),
            );
        }
    }

    /// Activates the proxy's newest publication if this worker does not run it yet.
    pub fn adopt_published<H: Host>(&mut self, host: &H, plugin: &Plugin) {
        let published = match lease::published(host, &self.keys) {
            Ok(Some(p)) if p.generation != self.generation => p,
            Ok(_) => return,
            Err(e) => {
                host.log(Level::Warn, &format!("{}: bundle revision: {e}", self.name));
                return;
            }
        };
        let bytes = match lease::bundle_bytes(host, &self.keys, published.generation) {
            Ok(Some(bytes)) => bytes,
            // Replaced between the two reads: the next tick sees the newer record.
            Ok(None) => return,
            Err(e) => {
                host.log(Level::Warn, &format!("{}: bundle bytes: {e}", self.name));
                return;
            }
        };
        self.generation = published.generation;
        let started = host.now_ms();
        match self.load(&bytes) {
            Ok(policy) => self.activate(host, plugin, policy, &published, started, "shared"),
            Err(e) => self.reject(host, plugin, e.code(), &e.to_string()),
        }
    }

    fn load(&self, bytes: &[u8]) -> Result<Policy, ActivationError> {
        activation::load(
            bytes,
            &self.config.path,
            &self.config.bundle.limits,
            Trust::Verify(self.config.bundle.signing.as_ref()),
            self.config.decision_logs.as_ref(),
        )
    }

    fn activate<H: Host>(
        &mut self,
        host: &H,
        plugin: &Plugin,
        mut policy: Policy,
        published: &Published,
        started_ms: u64,
        source: &str,
    ) {
        policy.configure(&self.config);
        let active = format!(
            "{}: bundle revision {:?} active (generation {}, {source}), decision {} ({}), loaded in {} ms; reads {}; decision cache {}",
            self.name,
            policy.revision(),
            published.generation,
            policy.rule(),
            policy.mode().as_str(),
            host.now_ms().saturating_sub(started_ms),
            policy.input_reads(),
            policy.decision_cache(),
        );
        if plugin.replace_policy(host, policy).is_err() {
            // Logged and counted; the publication is still in shared data: the next tick
            // loads it again.
            self.generation = 0;
            return;
        }
        host.log(Level::Info, &active);
        self.metrics.activated(host, published.generation);
    }

    fn reject<H: Host>(&mut self, host: &H, plugin: &Plugin, code: &'static str, message: &str) {
        let keeping = plugin.keeping(host).unwrap_or_else(|| {
            "no bundle is active: requests get the no-bundle outcome".to_string()
        });
        host.log(
            Level::Error,
            &format!(
                "{}: bundle rejected [{code}]: {message}; {keeping}",
                self.name
            ),
        );
        self.metrics.failed(host, code);
    }

    /// The lease holder's client: start a due fetch, or give up a callout the host lost.
    fn poll<H: Host>(&mut self, host: &H, now: u64) {
        let Some(service) = self.config.bundle.service.as_ref() else {
            return;
        };
        let client = self.client.get_or_insert_with(|| {
            // Taking over: the proxy's active ETag, so an unchanged server answers 304.
            let etag = lease::published(host, &self.keys)
                .ok()
                .flatten()
                .map(|p| p.etag)
                .unwrap_or_default();
            Client {
                poller: Poller::new(
                    self.config.bundle.polling,
                    service.timeout_ms,
                    self.config.bundle.limits.max_uncompressed_bytes,
                    etag,
                    self.owner,
                    now,
                ),
                pending: None,
                oci: service.oci.clone().map(|oci| {
                    OciFetch::new(
                        oci,
                        service.authority.clone(),
                        self.config.bundle.limits.max_uncompressed_bytes,
                    )
                }),
            }
        });
        if client.poller.lost(now) {
            client.pending = None;
            client.poller.failed(now);
            self.fetch_failed(host, &FetchError::Lost(service.timeout_ms));
            return;
        }
        if !client.poller.due(now) {
            return;
        }
        let request = client.poller.start(now);
        let call = match client.oci.as_mut() {
            Some(oci) => oci.start(client.poller.etag()),
            None => oci::Call {
                token_service: false,
                authority: service.authority.clone(),
                path: service.path.clone(),
                headers: service
                    .headers
                    .iter()
                    .cloned()
                    .chain(request.headers)
                    .collect(),
            },
        };
        if self.send(host, &call, request.timeout_ms) {
            self.metrics.fetched(host);
        } else if let Some(client) = self.client.as_mut() {
            client.poller.not_sent(now);
        }
    }

    /// Sends one callout of a fetch; false (logged and counted) if the host refused it.
    fn send<H: Host>(&mut self, host: &H, call: &oci::Call, timeout_ms: u64) -> bool {
        let (Some(service), Some(client)) =
            (self.config.bundle.service.as_ref(), self.client.as_mut())
        else {
            return false;
        };
        let cluster = match (&service.oci, call.token_service) {
            (Some(oci), true) => oci.token_cluster.as_deref().unwrap_or(&service.cluster),
            _ => &service.cluster,
        };
        let mut headers: Vec<(&str, &str)> = vec![
            (":method", "GET"),
            (":path", &call.path),
            (":authority", &call.authority),
            (":scheme", "http"),
            ("user-agent", "zerohop"),
        ];
        headers.extend(call.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())));
        match host.http_call(cluster, &headers, &[], timeout_ms) {
            Ok(token) => {
                client.pending = Some(token);
                true
            }
            Err(e) => {
                let code = codes::FETCH_FAILED.name;
                host.log(
                    Level::Warn,
                    &format!(
                        "{}: bundle fetch failed [{code}]: cannot call cluster {cluster:?}: {e}",
                        self.name
                    ),
                );
                self.metrics.failed(host, code);
                false
            }
        }
    }

    /// A callout's answer: ignored unless it is the one this worker waits for.
    pub fn on_response<H: Host>(
        &mut self,
        host: &H,
        plugin: &Plugin,
        token: u32,
        num_headers: usize,
        body_size: usize,
    ) {
        let Some(client) = self.client.as_mut().filter(|c| c.pending == Some(token)) else {
            return;
        };
        client.pending = None;
        let now = host.now_ms();
        let limit = self.config.bundle.limits.max_uncompressed_bytes;
        let max_body = usize::try_from(limit.saturating_add(1)).unwrap_or(usize::MAX);
        // Unreadable is answered as no response: the poller counts it as a failed fetch.
        let (headers, body) = host
            .http_call_response(num_headers, body_size, max_body)
            .unwrap_or_else(|e| {
                host.log(
                    Level::Warn,
                    &format!("{}: cannot read the bundle response: {e}", self.name),
                );
                Default::default()
            });
        if let Some(fetch) = client.oci.as_mut() {
            let answer = Answer {
                status: headers
                    .iter()
                    .find(|(n, _)| n == ":status")
                    .and_then(|(_, v)| std::str::from_utf8(v).ok()?.parse().ok()),
                headers: headers
                    .iter()
                    .map(|(n, v)| {
                        (
                            n.to_ascii_lowercase(),
                            String::from_utf8_lossy(v).into_owned(),
                        )
                    })
                    .collect(),
                body,
            };
            match fetch.answer(answer) {
                Ok(Next::Call(call)) => {
                    client.poller.still_in_flight(now);
                    let timeout_ms = self
                        .config
                        .bundle
                        .service
                        .as_ref()
                        .map_or(1, |s| s.timeout_ms);
                    if !self.send(host, &call, timeout_ms) {
                        if let Some(client) = self.client.as_mut() {
                            client.poller.not_sent(now);
                        }
                    }
                }
                Ok(Next::Unchanged) => {
                    let unchanged = Response {
                        status: Some(304),
                        etag: None,
                        content_type: None,
                        body: Vec::new(),
                    };
                    if let Err(error) = client.poller.finish(now, unchanged) {
                        self.fetch_failed(host, &error);
                    }
                }
                Ok(Next::Bundle { bytes, digest }) => {
                    self.fetched(host, plugin, now, bytes, digest)
                }
                Err(error) => {
                    client.poller.failed(now);
                    self.fetch_failed_because(host, error.code(), &error.to_string());
                }
            }
            return;
        }
        let header = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
        };
        let response = Response {
            status: header(":status").and_then(|s| s.parse().ok()),
            etag: header("etag"),
            content_type: header("content-type"),
            body,
        };
        match client.poller.finish(now, response) {
            Ok(Fetched::Unchanged) => {}
            Ok(Fetched::Bundle { bytes, etag }) => self.fetched(host, plugin, now, bytes, etag),
            Err(error) => self.fetch_failed(host, &error),
        }
    }

    fn fetch_failed<H: Host>(&mut self, host: &H, error: &FetchError) {
        self.fetch_failed_because(host, error.code(), &error.to_string());
    }

    fn fetch_failed_because<H: Host>(&mut self, host: &H, code: &'static str, message: &str) {
        host.log(
            Level::Warn,
            &format!("{}: bundle fetch failed [{code}]: {message}", self.name),
        );
        self.metrics.failed(host, code);
    }

    /// A downloaded bundle: loaded in full here, then published for the other workers.
    fn fetched<H: Host>(
        &mut self,
        host: &H,
        plugin: &Plugin,
        now: u64,
        bytes: Vec<u8>,
        etag: String,
    ) {
        let started = host.now_ms();
        let policy = match self.load(&bytes) {
            Ok(policy) => policy,
            Err(e) => {
                if let Some(client) = self.client.as_mut() {
                    client.poller.failed(now);
                }
                self.reject(host, plugin, e.code(), &e.to_string());
                return;
            }
        };
        if let Some(client) = self.client.as_mut() {
            client.poller.activated(now, etag.clone());
        }
        let published = match lease::publish(host, &self.keys, &bytes, &etag, policy.revision()) {
            Ok(published) => published,
            Err(e) => {
                host.log(
                    Level::Warn,
                    &format!(
                        "{}: cannot share the bundle with other workers: {e}",
                        self.name
                    ),
                );
                Published {
                    generation: self.generation,
                    etag,
                    revision: policy.revision().to_string(),
                }
            }
        };
        self.generation = published.generation;
        self.activate(host, plugin, policy, &published, started, "fetched");
    }
}

/// `wasmcustom.zerohop.bundle.*`: activations and fetches (counters), failures by reason
/// (a counter per code), and the active generation (gauge).
#[derive(Default)]
struct Metrics {
    ids: HashMap<String, Option<u32>>,
}

impl Metrics {
    fn id<H: Host>(&mut self, host: &H, kind: MetricKind, name: &str) -> Option<u32> {
        *self
            .ids
            .entry(name.to_string())
            .or_insert_with(|| host.define_metric(kind, name))
    }

    fn activated<H: Host>(&mut self, host: &H, generation: u64) {
        if let Some(id) = self.id(host, MetricKind::Counter, "zerohop.bundle.activations") {
            host.increment_metric(id, 1);
        }
        if let Some(id) = self.id(host, MetricKind::Gauge, "zerohop.bundle.active_generation") {
            host.record_metric(id, generation);
        }
    }

    fn fetched<H: Host>(&mut self, host: &H) {
        if let Some(id) = self.id(host, MetricKind::Counter, "zerohop.bundle.fetches") {
            host.increment_metric(id, 1);
        }
    }

    fn failed<H: Host>(&mut self, host: &H, code: &str) {
        let name = format!("zerohop.bundle.failures.{code}");
        if let Some(id) = self.id(host, MetricKind::Counter, &name) {
            host.increment_metric(id, 1);
        }
    }
}
