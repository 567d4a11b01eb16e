//! The native decision path for each reference policy (benches/micro/README.md): input build,
//! evaluation, decision handling, and all three together as the filter runs them per request
//! (with a decision already cached, and without);
//! then bundle activation, precompiled and compiled at load.
#![allow(clippy::unwrap_used, clippy::expect_used)] // benchmark setup: fail loudly

use criterion::{criterion_group, criterion_main, Criterion};
use zerohop_benches::{bundle_targz, reference_cases};
use zerohop_filter::bundle::{Bundle, Limits};
use zerohop_filter::decision_path::DecisionPath;
use zerohop_filter::engine::{Mode, Policy};
use zerohop_filter::request::body::BodySettings;
use zerohop_filter::request::decision::{decide, Action, Reason};
use zerohop_filter::request::input;

fn decision_path(c: &mut Criterion) {
    for (name, _, _, mut case) in reference_cases() {
        let (outcome, _) = case.decide();
        assert_eq!(outcome.reason, Reason::Allowed, "{name}: {outcome:?}");
        assert!(matches!(outcome.action, Action::Forward(_)));
        let built = input::build(
            &case.request,
            &BodySettings::default(),
            case.policy.input_shape(),
        )
        .unwrap();
        let decision = case.policy.evaluate(built.clone()).unwrap();
        let mut group = c.benchmark_group(name);
        group.bench_function("input", |b| {
            b.iter(|| {
                input::build(
                    &case.request,
                    &BodySettings::default(),
                    case.policy.input_shape(),
                )
                .unwrap()
            })
        });
        group.bench_function("decide", |b| {
            b.iter(|| decide(case.enforcement, Ok(decision.clone())))
        });
        // The filter's path for a request whose input was decided before (decision cache),
        // unless the policy reads the clock; then the engine alone, and the path without the
        // cache, as for an input never seen.
        group.bench_function("request", |b| b.iter(|| case.decide()));
        case.policy.set_decision_cache(0);
        group.bench_function("evaluate", |b| {
            b.iter(|| case.policy.evaluate(built.clone()).unwrap())
        });
        group.bench_function("request-uncached", |b| b.iter(|| case.decide()));
        group.finish();
    }
}

/// What a new bundle costs before its first decision: unpacking and loading it, with the
/// RVM program shipped in the bundle (`policy-bundler build`) or compiled from its Rego (a
/// plain OPA bundle).
fn activation(c: &mut Criterion) {
    let mut group = c.benchmark_group("activate");
    group.sample_size(10);
    for (name, policy, entrypoint, _) in reference_cases() {
        let path = DecisionPath::parse(entrypoint).unwrap();
        for (kind, targz) in [
            (
                "precompiled",
                bundle_targz(policy, Some(entrypoint)).unwrap(),
            ),
            ("compiled-at-load", bundle_targz(policy, None).unwrap()),
        ] {
            let load = || {
                let bundle = Bundle::from_targz(&targz, &Limits::default()).unwrap();
                Policy::load(&bundle, &path).unwrap()
            };
            let mode = load().mode();
            // A policy the RVM compiler refuses is interpreted both ways: say so in the name.
            let label = match mode {
                Mode::Interpreted => format!("{name}/{kind}/interpreted"),
                _ => format!("{name}/{kind}"),
            };
            group.bench_function(label, |b| b.iter(load));
        }
    }
    group.finish();
}

criterion_group!(benches, decision_path, activation);
criterion_main!(benches);
