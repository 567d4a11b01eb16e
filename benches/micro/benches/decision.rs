//! The native decision path for the demo policy: input build, evaluation, decision handling,
//! and all three together as the filter runs them per request.
#![allow(clippy::unwrap_used, clippy::expect_used)] // benchmark setup: fail loudly

use criterion::{criterion_group, criterion_main, Criterion};
use zerohop_benches::DemoCase;
use zerohop_filter::request::body::BodySettings;
use zerohop_filter::request::decision::decide;
use zerohop_filter::request::input;

fn demo(c: &mut Criterion) {
    let mut case = DemoCase::new().expect("demo bundle builds");
    let built = input::build(&case.request, &BodySettings::default()).unwrap();
    let decision = case.policy.evaluate(built.clone()).unwrap();

    let mut group = c.benchmark_group("demo");
    group.bench_function("input", |b| {
        b.iter(|| input::build(&case.request, &BodySettings::default()).unwrap())
    });
    group.bench_function("evaluate", |b| {
        b.iter(|| case.policy.evaluate(built.clone()).unwrap())
    });
    group.bench_function("decide", |b| {
        b.iter(|| decide(case.enforcement, Ok(decision.clone())))
    });
    group.bench_function("decision_id", |b| {
        b.iter(|| case.decision_ids.next_id().to_string())
    });
    group.bench_function("request", |b| b.iter(|| case.decide()));
    group.finish();
}

criterion_group!(benches, demo);
criterion_main!(benches);
