//! The plugin configuration (the JSON Istio passes as `pluginConfig`): any bytes end in a
//! configuration or an error naming the key, and an accepted one is applied by a root on the
//! in-memory host without a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zerohop_filter::config::Config;
use zerohop_filter::host::memory::MemoryHost;
use zerohop_filter::root::Root;

#[global_allocator]
static ALLOCATOR: zerohop_filter::engine::budget::CountingAllocator<std::alloc::System> =
    zerohop_filter::engine::budget::CountingAllocator(std::alloc::System);

fuzz_target!(|data: &[u8]| {
    if Config::parse(data).is_ok() {
        let host = MemoryHost::default();
        let mut root = Root::default();
        root.configure(&host, "fuzz".into(), Ok(data.to_vec()));
        root.tick(&host);
    }
});
