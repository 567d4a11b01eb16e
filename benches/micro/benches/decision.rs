//! The native decision path for the demo policy: input build, evaluation, decision handling,
//! and all three together as the filter runs them per request.
#![allow(clippy::unwrap_used, clippy::expect_used)] // benchmark setup: fail loudly

use criterion::{criterion_group, criterion_main, Criterion};
use zerohop_benches::{mesh_request, precompiled};
use zerohop_filter::config::DecisionPath;
use zerohop_filter::engine::Policy;
use zerohop_filter::request::decision::{decide, Enforcement};
use zerohop_filter::request::input;

fn demo(c: &mut Criterion) {
    let bundle = precompiled("demo", "envoy/authz/allow").expect("demo bundle builds");
    let mut policy = Policy::load(&bundle, &DecisionPath::default()).unwrap();
    let request = mesh_request("GET", "/products/42?fields=name");
    let enforcement = Enforcement {
        dry_run: false,
        fail_open: false,
        status_on_error: 403,
    };
    let built = input::build(&request).unwrap();

    let mut group = c.benchmark_group("demo");
    group.bench_function("input", |b| b.iter(|| input::build(&request).unwrap()));
    group.bench_function("evaluate", |b| {
        b.iter(|| policy.evaluate(built.clone()).unwrap())
    });
    let decision = policy.evaluate(built.clone()).unwrap();
    group.bench_function("decide", |b| {
        b.iter(|| decide(enforcement, Ok(decision.clone())))
    });
    group.bench_function("request", |b| {
        b.iter(|| {
            let value = input::build(&request)
                .map_err(Into::into)
                .and_then(|i| policy.evaluate(i).map_err(Into::into));
            decide(enforcement, value)
        })
    });
    group.finish();
}

criterion_group!(benches, demo);
criterion_main!(benches);
