//! Runs one reference policy's decision path in a loop, for `perf record` or
//! `valgrind --tool=callgrind` (instruction counts are repeatable where timings are not).
//! The decision cache is off, so every iteration evaluates (`cached` as a third argument
//! turns it on):
//!     cargo build --profile profiling -p zerohop-benches --example profile
//!     valgrind --tool=callgrind target/profiling/examples/profile path-rules 5000
#![allow(clippy::panic)] // profiling harness: fail loudly

use zerohop_benches::reference_cases;
use zerohop_filter::request::decision::Action;

fn main() {
    let mut args = std::env::args().skip(1);
    let name = args.next().unwrap_or_else(|| "demo".into());
    let iterations: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(10_000);
    let Some((_, _, _, mut case)) = reference_cases().into_iter().find(|c| c.0 == name) else {
        let names: Vec<_> = reference_cases().iter().map(|c| c.0).collect();
        panic!("unknown case {name}: one of {names:?}");
    };
    if args.next().as_deref() != Some("cached") {
        case.policy.set_decision_cache(0);
    }
    let started = std::time::Instant::now();
    let allowed = (0..iterations)
        .filter(|_| matches!(case.decide().0.action, Action::Forward(_)))
        .count();
    let per_request = started.elapsed() / u32::try_from(iterations.max(1)).unwrap_or(u32::MAX);
    println!("{name}: {allowed} of {iterations} allowed, {per_request:?} per request");
}
