//! Runs the demo decision path in a loop, for `valgrind --tool=callgrind` (instruction
//! counts are repeatable where wall-clock timings are not):
//!     cargo build --release -p zerohop-benches --example profile
//!     valgrind --tool=callgrind target/release/examples/profile 20000
#![allow(clippy::unwrap_used, clippy::expect_used)] // profiling harness: fail loudly

use zerohop_benches::{mesh_request, precompiled};
use zerohop_filter::config::DecisionPath;
use zerohop_filter::engine::Policy;
use zerohop_filter::request::decision::{decide, Enforcement};
use zerohop_filter::request::input;

fn main() {
    let iterations: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000);
    let bundle = precompiled("demo", "envoy/authz/allow").expect("demo bundle builds");
    let mut policy = Policy::load(&bundle, &DecisionPath::default()).unwrap();
    let request = mesh_request("GET", "/products/42?fields=name");
    let enforcement = Enforcement {
        dry_run: false,
        fail_open: false,
        status_on_error: 403,
    };
    let mut allowed = 0;
    for _ in 0..iterations {
        let value = input::build(&request)
            .map_err(Into::into)
            .and_then(|i| policy.evaluate(i).map_err(Into::into));
        if matches!(
            decide(enforcement, value).action,
            zerohop_filter::request::decision::Action::Forward(_)
        ) {
            allowed += 1;
        }
    }
    println!("{allowed} of {iterations} allowed");
}
