//! One HTTP stream: each proxy-wasm callback handed to the core's `Stream`, its `Flow`
//! handed back as the SDK's `Action`.

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;

use super::host::Envoy;
use crate::stream::{Flow, Stream};

pub struct Http {
    host: Envoy,
    stream: Stream,
}

impl Http {
    pub fn new(host: Envoy, stream: Stream) -> Self {
        Self { host, stream }
    }
}

fn action(flow: Flow) -> Action {
    match flow {
        Flow::Continue => Action::Continue,
        Flow::Pause => Action::Pause,
    }
}

/// Test builds only (`--features test-trap`, `make dist/zerohop-trap.wasm`): a request with
/// `x-zerohop-test-trap` panics, which traps the VM (panic = abort), so tests can show what
/// Envoy's `failure_policy` does after a trap (tests/e2e/test_trap.py).
#[cfg(feature = "test-trap")]
#[allow(clippy::panic)]
fn trap_on_request(host: &Envoy) {
    use crate::host::Host as _;
    if host.request_header("x-zerohop-test-trap").is_some() {
        panic!("x-zerohop-test-trap: a deliberate trap (test build)");
    }
}

impl Context for Http {
    fn on_http_call_response(
        &mut self,
        token_id: u32,
        num_headers: usize,
        body_size: usize,
        _num_trailers: usize,
    ) {
        self.stream
            .on_http_call_response(&self.host, token_id, num_headers, body_size);
    }

    fn on_done(&mut self) -> bool {
        self.stream.on_done(&self.host);
        true
    }
}

impl HttpContext for Http {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        #[cfg(feature = "test-trap")]
        trap_on_request(&self.host);
        action(self.stream.on_request_headers(&self.host, end_of_stream))
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        action(
            self.stream
                .on_request_body(&self.host, body_size, end_of_stream),
        )
    }

    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        action(self.stream.on_request_trailers(&self.host))
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        action(self.stream.on_response_headers(&self.host))
    }
}
