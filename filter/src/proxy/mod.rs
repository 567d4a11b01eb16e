//! The only module that talks to Envoy: the core's `Host` over `proxy_wasm::hostcalls`
//! (`host`), and the proxy-wasm contexts handing their callbacks to the core's `Root` and
//! `Stream` (`root`, `http`). Nothing here decides; plugin state lives in the root context,
//! never in statics: Istio runs every WasmPlugin with the same module in one VM.

use crate::engine::budget::CountingAllocator;

mod host;
mod http;
mod root;

proxy_wasm::main! {{
    // Also installs the SDK's panic hook, which logs the panic at critical level before the
    // VM traps, so a bug shows up in the Envoy log instead of as a silent 5xx.
    proxy_wasm::set_log_level(proxy_wasm::types::LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn proxy_wasm::traits::RootContext> {
        Box::new(root::Root::default())
    });
}}

/// Talc instead of wasi-libc's dlmalloc: regorus allocates for every value it builds, and
/// Talc is faster at that (measured in Envoy when it replaced dlmalloc: +3–10% requests/s). The VM is
/// single-threaded (no `atomics` target feature).
/// Counting what it hands out holds evaluations to their memory budget (`engine::budget`).
#[global_allocator]
static ALLOCATOR: CountingAllocator<talc::wasm::WasmDynamicTalc> =
    CountingAllocator(talc::wasm::new_wasm_dynamic_allocator());
