//! The root context: each proxy-wasm callback handed to the core's `Root` (configuration,
//! tick, callout responses), and each new HTTP context given a `Stream` of it. Plugin state
//! lives here, never in statics.

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::ContextType;

use super::host::{self, Envoy};
use super::http::Http;
use crate::root;

#[derive(Default)]
pub struct Root {
    host: Envoy,
    root: root::Root,
}

impl Context for Root {
    fn on_http_call_response(
        &mut self,
        token_id: u32,
        num_headers: usize,
        body_size: usize,
        _num_trailers: usize,
    ) {
        self.root
            .on_callout_response(&self.host, token_id, num_headers, body_size);
    }

    fn on_done(&mut self) -> bool {
        self.root.done(&self.host);
        true
    }
}

impl RootContext for Root {
    fn on_configure(&mut self, plugin_configuration_size: usize) -> bool {
        let name = host::plugin_name();
        let bytes = host::plugin_configuration(plugin_configuration_size);
        self.root.configure(&self.host, name, bytes)
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        // `None` makes the SDK panic; with no configuration Envoy never gets here.
        let stream = self.root.stream(context_id)?;
        Some(Box::new(Http::new(self.host.clone(), stream)))
    }

    fn on_tick(&mut self) {
        self.root.tick(&self.host);
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
