//! The ceiling for any wasm filter: the per-request work every filter does (one hostcall that
//! copies all request headers into the VM) and nothing else. Built for wasm32-wasip1 only; the
//! same release profile (size-optimized, LTO) and the same V8 runtime as zerohop.

#[cfg(target_arch = "wasm32")]
mod filter {
    use proxy_wasm::hostcalls;
    use proxy_wasm::traits::{Context, HttpContext, RootContext};
    use proxy_wasm::types::{Action, ContextType, MapType};

    proxy_wasm::main! {{
        proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root) });
    }}

    struct Root;

    impl Context for Root {}

    impl RootContext for Root {
        fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
            Some(Box::new(ReadHeaders))
        }

        fn get_type(&self) -> Option<ContextType> {
            Some(ContextType::HttpContext)
        }
    }

    struct ReadHeaders;

    impl Context for ReadHeaders {}

    impl HttpContext for ReadHeaders {
        fn on_http_request_headers(&mut self, _count: usize, _end_of_stream: bool) -> Action {
            // Read and dropped: a failed read changes nothing for a filter that always continues.
            let headers = hostcalls::get_map(MapType::HttpRequestHeaders);
            std::hint::black_box(headers).ok();
            Action::Continue
        }
    }
}
