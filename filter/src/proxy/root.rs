//! The root context: parses the plugin configuration once, activates the bundle, and hands
//! each HTTP context the shared state. A bundle that fails to load is logged and never
//! replaces a policy that works; without any policy, requests get the no-bundle outcome.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{ContextType, LogLevel};

use super::host::{self, log};
use super::http::Http;
use crate::bundle::{Bundle, Limits};
use crate::config::{BundleSource, Config};
use crate::engine::{LoadError, Policy};
use crate::request::body::{BodySettings, StallWatch};
use crate::request::decision::Enforcement;

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
}

#[derive(Default)]
pub struct Root {
    state: Option<Rc<RefCell<State>>>,
}

impl Context for Root {}

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
        if config.body.with_request_body.is_some() {
            // Watch for bodies held back by the host (see `StallWatch`).
            if let Err(status) = host::set_tick_period(Duration::from_secs(1)) {
                log(
                    LogLevel::Warn,
                    &format!("{name}: cannot watch for stalled request bodies: {status:?}"),
                );
            }
        }
        // Keep a working policy across reconfiguration if the new bundle does not load.
        let previous = self.state.take().and_then(|s| s.borrow_mut().policy.take());
        let policy = match activate(&config) {
            Ok(policy) => {
                log(
                    LogLevel::Info,
                    &format!(
                        "{name}: bundle revision {:?} active, decision {} ({})",
                        policy.revision(),
                        policy.rule(),
                        policy.mode().as_str()
                    ),
                );
                Some(policy)
            }
            Err(e) => {
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
        self.state = Some(Rc::new(RefCell::new(State {
            enforcement: config.enforcement,
            policy,
            name: name.into(),
            connections: host::Connections::default(),
            body: config.body,
            stalls: StallWatch::default(),
        })));
        true
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        // `None` makes the SDK panic; with no state (configure failed) Envoy never gets here.
        let state = self.state.clone()?;
        Some(Box::new(Http::new(state, context_id)))
    }

    fn on_tick(&mut self) {
        let Some(Ok(mut state)) = self.state.as_ref().map(|s| s.try_borrow_mut()) else {
            return;
        };
        let stalled = state.stalls.stalled(host::now_ms());
        if !state.stalls.watching() {
            // Bodies arrive: the host has the setting, nothing left to watch.
            let _ = host::set_tick_period(Duration::ZERO);
        }
        for stream in stalled {
            let let_through = state.enforcement.fail_open;
            log(
                LogLevel::Error,
                &format!(
                    "{}: no request body reached the filter in {}s: the Wasm PluginConfig needs \
                     allow_on_headers_stop_iteration: true (Envoy >= 1.35); {}",
                    state.name,
                    crate::request::body::BODY_STALL_MS / 1000,
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

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// Why a bundle could not be activated.
#[derive(Debug, thiserror::Error)]
enum ActivationError {
    #[error(transparent)]
    Bundle(#[from] crate::bundle::BundleError),
    #[error(transparent)]
    Load(#[from] LoadError),
}

impl ActivationError {
    fn code(&self) -> &'static str {
        match self {
            ActivationError::Bundle(e) => e.code(),
            ActivationError::Load(e) => e.code(),
        }
    }
}

fn activate(config: &Config) -> Result<Policy, ActivationError> {
    let BundleSource::Inline(bytes) = &config.bundle;
    let bundle = Bundle::from_targz(bytes, &Limits::default())?;
    Ok(Policy::load(&bundle, &config.path)?)
}
