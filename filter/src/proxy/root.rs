//! The root context: parses the plugin configuration once, activates the bundle, and hands
//! each HTTP context the shared state. A bundle that fails to load is logged and never
//! replaces a policy that works; without any policy, requests get the no-bundle outcome.

use std::cell::RefCell;
use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{ContextType, LogLevel};

use super::host::{self, log};
use super::http::Http;
use crate::bundle::{Bundle, Limits};
use crate::config::{BundleSource, Config};
use crate::engine::{LoadError, Policy};
use crate::request::decision::{DecisionIds, Enforcement};

/// What every HTTP context of this plugin shares.
pub struct State {
    pub enforcement: Enforcement,
    pub policy: Option<Policy>,
    /// `plugin_name`, to tell plugins apart in the log.
    pub name: Rc<str>,
    pub connections: host::Connections,
    pub decision_ids: DecisionIds,
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
        let decision_ids = DecisionIds::from_system().unwrap_or_else(|| {
            log(
                LogLevel::Error,
                &format!("{name}: the host gives no randomness: decision ids are predictable"),
            );
            DecisionIds::from_seed(host::now_ns())
        });
        self.state = Some(Rc::new(RefCell::new(State {
            enforcement: config.enforcement,
            policy,
            name: name.into(),
            connections: host::Connections::default(),
            decision_ids,
        })));
        true
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        // `None` makes the SDK panic; with no state (configure failed) Envoy never gets here.
        let state = self.state.clone()?;
        Some(Box::new(Http::new(state)))
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
