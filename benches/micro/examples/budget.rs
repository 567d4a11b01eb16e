//! What the reference policies need of the evaluation budgets (`engine::budget`), to choose
//! the defaults: the most memory one evaluation holds, and the smallest instruction budget
//! (instructions plus builtin work) that still decides.
//!     cargo run --release -p zerohop-benches --example budget
#![allow(clippy::panic)] // measuring harness: fail loudly

use zerohop_benches::reference_cases;
use zerohop_filter::engine::budget::{Budget, CountingAllocator};
use zerohop_filter::request::decision::Action;

#[global_allocator]
static ALLOCATOR: CountingAllocator<std::alloc::System> = CountingAllocator(std::alloc::System);

fn main() {
    println!("| policy | peak bytes per evaluation | smallest instruction budget |");
    println!("|---|---|---|");
    for (name, _, _, mut case) in reference_cases() {
        case.policy.set_decision_cache(0);
        let mut peak = 0;
        for _ in 0..100 {
            let (outcome, _) = case.decide();
            assert!(
                matches!(outcome.action, Action::Forward(_)),
                "{name}: {outcome:?}"
            );
            peak = peak.max(case.policy.last_peak_bytes());
        }
        // The smallest budget that still allows, by bisection.
        let (mut low, mut high) = (1usize, Budget::default().instructions);
        while low < high {
            let mid = low + (high - low) / 2;
            case.policy.set_budget(Budget {
                instructions: mid,
                ..Budget::default()
            });
            if matches!(case.decide().0.action, Action::Forward(_)) {
                high = mid;
            } else {
                low = mid + 1;
            }
        }
        case.policy.set_budget(Budget::default());
        println!("| {name} | {peak} | {low} |");
    }
}
