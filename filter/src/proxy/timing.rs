//! `timing_stats`: each decision's phases as Envoy histograms, in nanoseconds, so the time a
//! filter adds can be split where it is spent (`/stats?filter=zerohop.time`):
//! `wasmcustom.zerohop.time.{request,input,evaluate,apply}_ns`. Off by default: the clock
//! reads and histogram records cost hostcalls of their own (outside the phases they measure,
//! but added to the request).

use proxy_wasm::types::MetricType;

use super::host;

#[derive(Clone, Copy)]
pub enum Phase {
    /// Reading the request from Envoy: headers, properties, metadata (hostcalls).
    Request,
    /// Building the `input` document.
    Input,
    /// Evaluating the decision rule.
    Evaluate,
    /// The decision applied: decision id published, headers set, or the local reply sent.
    Apply,
}

const NAMES: [&str; 4] = [
    "zerohop.time.request_ns",
    "zerohop.time.input_ns",
    "zerohop.time.evaluate_ns",
    "zerohop.time.apply_ns",
];

/// The histograms, defined once per VM when the configuration asks for them.
#[derive(Clone, Copy)]
pub struct Timing {
    ids: [Option<u32>; 4],
}

impl Timing {
    pub fn new() -> Self {
        Self {
            ids: NAMES.map(|name| host::define_metric(MetricType::Histogram, name)),
        }
    }

    /// Records the time since `started_ns` (a host clock reading) under `phase`; returns a
    /// clock reading taken after the record, so that no phase pays for the previous one's.
    pub fn record(&self, phase: Phase, started_ns: u64) -> u64 {
        let now = host::now_ns();
        if let Some(Some(id)) = self.ids.get(phase as usize) {
            host::record_metric(*id, now.saturating_sub(started_ns));
        }
        host::now_ns()
    }
}
