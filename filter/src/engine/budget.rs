//! What one evaluation may use: memory, work and time. A request can make a policy build
//! values from its data (`numbers.range(1, to_number(input.parsed_query.n[0]))`); without
//! limits one request could exhaust the wasm VM's memory, which traps it and leaves the
//! worker answering 503 until reconfiguration.
//!
//! - Memory: the bytes the evaluation holds beyond what was held when it started, counted
//!   by the global allocator (`CountingAllocator`, installed by the wasm module, the
//!   bundler and the tests) into regorus's per-thread accounting (`regorus::utils::limits`),
//!   which the VM checks on every instruction, the interpreter on every expression, and
//!   builtins before building an output whose size follows from their arguments.
//! - Work: RVM instructions, plus what builtins do (the elements they return, the string
//!   bytes they read and return), in one count.
//! - Time: wall-clock, checked by the VM and the interpreter every `TIME_CHECK_INTERVAL`
//!   units of work (WASI's monotonic clock inside Envoy).
//!
//! Exceeding any of them is an evaluation error with its own code, never a trap.

use std::alloc::{GlobalAlloc, Layout};
use std::num::NonZeroU32;
use std::time::Duration;

use regorus::utils::limits::{self, ExecutionTimerConfig};

use crate::defaults::{DEFAULT_INSTRUCTIONS, DEFAULT_MEMORY_BYTES, DEFAULT_TIME_MS};

/// Units of work (instructions, builtin work) between two clock readings.
const TIME_CHECK_INTERVAL: NonZeroU32 = NonZeroU32::MIN.saturating_add(4095);

/// The limits of one evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub memory_bytes: u64,
    pub instructions: usize,
    pub time: Duration,
}

impl Default for Budget {
    fn default() -> Self {
        Self {
            memory_bytes: DEFAULT_MEMORY_BYTES,
            instructions: DEFAULT_INSTRUCTIONS,
            time: Duration::from_millis(u64::from(DEFAULT_TIME_MS)),
        }
    }
}

impl Budget {
    pub(super) fn timer(&self) -> ExecutionTimerConfig {
        ExecutionTimerConfig {
            limit: self.time,
            check_interval: TIME_CHECK_INTERVAL,
        }
    }
}

/// Which budget an evaluation exceeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exceeded {
    Memory,
    Work,
    Time,
}

impl Exceeded {
    pub const ALL: [Exceeded; 3] = [Exceeded::Memory, Exceeded::Work, Exceeded::Time];

    /// A stable kebab-case code for logs and metrics.
    pub fn code(self) -> &'static str {
        match self {
            Exceeded::Memory => crate::codes::MEMORY_BUDGET_EXCEEDED.name,
            Exceeded::Work => crate::codes::WORK_BUDGET_EXCEEDED.name,
            Exceeded::Time => crate::codes::TIME_BUDGET_EXCEEDED.name,
        }
    }
}

impl std::fmt::Display for Exceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

/// Starts counting the evaluation's memory against `budget`.
pub(super) fn begin(budget: &Budget) {
    limits::begin_memory_budget(Some(budget.memory_bytes));
}

/// Stops counting: the most bytes the evaluation held at once, and whether that was more
/// than `budget` (even if no check saw it then: an answer computed past it is not trusted).
pub(super) fn end(budget: &Budget) -> (u64, Option<Exceeded>) {
    let peak = limits::end_memory_budget();
    (
        peak,
        (peak > budget.memory_bytes).then_some(Exceeded::Memory),
    )
}

/// A global allocator that reports every allocation to regorus's accounting, so that
/// evaluations can be held to a memory budget. Wraps the real allocator.
pub struct CountingAllocator<A>(pub A);

// SAFETY: every method forwards to the wrapped allocator with the caller's arguments and
// only adds bookkeeping, which never allocates.
#[allow(unsafe_code)]
unsafe impl<A: GlobalAlloc> GlobalAlloc for CountingAllocator<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as received.
        let ptr = unsafe { self.0.alloc(layout) };
        if !ptr.is_null() {
            limits::record_allocation(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as received.
        let ptr = unsafe { self.0.alloc_zeroed(layout) };
        if !ptr.is_null() {
            limits::record_allocation(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as received.
        unsafe { self.0.dealloc(ptr, layout) };
        limits::record_deallocation(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded as received.
        let new = unsafe { self.0.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            // The change only: a buffer allocated before the evaluation and grown during it
            // is charged what it grew by.
            match new_size.checked_sub(layout.size()) {
                Some(grown) => limits::record_allocation(grown),
                None => limits::record_deallocation(layout.size().saturating_sub(new_size)),
            }
        }
        new
    }
}

#[cfg(test)]
mod tests;
