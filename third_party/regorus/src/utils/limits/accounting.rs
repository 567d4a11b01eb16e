// Copyright (c) Microsoft Corporation.
// Licensed under the MIT License.

//! Memory limits for embedders that bring their own global allocator (e.g. a wasm module
//! with `talc` or `dlmalloc`), where the `allocator-memory-limits` feature's mimalloc cannot
//! be used.
//!
//! The embedder's allocator reports every allocation and deallocation with
//! [`record_allocation`] / [`record_deallocation`]; [`begin_memory_budget`] starts an
//! evaluation with a limit on the bytes it may hold beyond what the thread held when it
//! started. Every existing cooperative check (`check_memory_limit_if_needed`: the VM's
//! per-instruction check, the interpreter's, builtin loops, value deserialization) then
//! fails with [`LimitError::MemoryLimitExceeded`] once the evaluation holds more, and
//! builtins that know their output size before building it call [`reserve_memory`] so that
//! one call cannot allocate far past the limit (or past the address space, which traps
//! in wasm) before the next check.
//!
//! The counters are per thread: allocations of other threads never count against an
//! evaluation. They are plain `Cell`s with `const` initializers, so the allocator can touch
//! them without allocating or registering destructors.

use super::error::LimitError;
use core::cell::Cell;
use std::thread_local;

thread_local! {
    // Bytes allocated minus bytes freed by this thread since it started.
    static LIVE_BYTES: Cell<i64> = const { Cell::new(0) };
    // The lowest `LIVE_BYTES` since the current evaluation began: memory it frees that was
    // allocated before (the previous evaluation's state, say) is not room for more.
    static BASELINE: Cell<i64> = const { Cell::new(0) };
    // The most the current evaluation held at once (`LIVE_BYTES` - `BASELINE`).
    static PEAK: Cell<i64> = const { Cell::new(0) };
    // Bytes the current evaluation may hold; `u64::MAX` when no budget is active.
    static LIMIT: Cell<u64> = const { Cell::new(u64::MAX) };
}

/// Records an allocation of `bytes` by this thread. Meant to be called from the global
/// allocator: it never allocates.
#[inline]
pub fn record_allocation(bytes: usize) {
    let _ = LIVE_BYTES.try_with(|live| {
        let now = live
            .get()
            .saturating_add(i64::try_from(bytes).unwrap_or(i64::MAX));
        live.set(now);
        let usage = now.saturating_sub(BASELINE.try_with(Cell::get).unwrap_or(now));
        let _ = PEAK.try_with(|peak| {
            if usage > peak.get() {
                peak.set(usage);
            }
        });
    });
}

/// Records that this thread freed `bytes`. Meant to be called from the global allocator.
#[inline]
pub fn record_deallocation(bytes: usize) {
    let _ = LIVE_BYTES.try_with(|live| {
        let now = live
            .get()
            .saturating_sub(i64::try_from(bytes).unwrap_or(i64::MAX));
        live.set(now);
        let _ = BASELINE.try_with(|baseline| {
            if now < baseline.get() {
                baseline.set(now);
            }
        });
    });
}

/// Starts an evaluation on this thread that may hold at most `limit` bytes more than the
/// thread held at its lowest since now (`None`: no limit, only the peak is measured).
pub fn begin_memory_budget(limit: Option<u64>) {
    let live = LIVE_BYTES.with(Cell::get);
    BASELINE.with(|baseline| baseline.set(live));
    PEAK.with(|peak| peak.set(0));
    LIMIT.with(|l| l.set(limit.unwrap_or(u64::MAX)));
}

/// Ends the evaluation's budget; returns the most bytes it held at once.
pub fn end_memory_budget() -> u64 {
    LIMIT.with(|l| l.set(u64::MAX));
    peak_usage()
}

fn usage() -> u64 {
    let live = LIVE_BYTES.with(Cell::get);
    let baseline = BASELINE.with(Cell::get);
    u64::try_from(live.saturating_sub(baseline)).unwrap_or(0)
}

fn peak_usage() -> u64 {
    u64::try_from(PEAK.with(Cell::get)).unwrap_or(0)
}

/// Fails when the evaluation under way holds more than its budget.
#[inline]
pub fn check_memory_budget() -> Result<(), LimitError> {
    let limit = LIMIT.with(Cell::get);
    if limit == u64::MAX {
        return Ok(());
    }
    let usage = usage();
    if usage > limit {
        return Err(LimitError::MemoryLimitExceeded { usage, limit });
    }
    Ok(())
}

/// Fails when allocating `bytes` more would take the evaluation under way past its budget.
/// For builtins that know the size of their output before building it.
#[inline]
pub fn reserve_memory(bytes: usize) -> Result<(), LimitError> {
    let limit = LIMIT.with(Cell::get);
    if limit == u64::MAX {
        return Ok(());
    }
    let usage = usage().saturating_add(u64::try_from(bytes).unwrap_or(u64::MAX));
    if usage > limit {
        return Err(LimitError::MemoryLimitExceeded { usage, limit });
    }
    Ok(())
}
