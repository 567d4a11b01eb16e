//! Runs the demo decision path in a loop, for `valgrind --tool=callgrind` (instruction
//! counts are repeatable where wall-clock timings are not):
//!     cargo build --profile profiling -p zerohop-benches --example profile
//!     valgrind --tool=callgrind target/profiling/examples/profile 5000
#![allow(clippy::unwrap_used, clippy::expect_used)] // profiling harness: fail loudly

use zerohop_benches::Case;
use zerohop_filter::request::decision::Action;

fn main() {
    let iterations: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000);
    let mut case = Case::demo().expect("demo bundle builds");
    let allowed = (0..iterations)
        .filter(|_| matches!(case.decide().0.action, Action::Forward(_)))
        .count();
    println!("{allowed} of {iterations} allowed");
}
