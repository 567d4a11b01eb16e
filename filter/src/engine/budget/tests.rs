//! Requests that make a policy build or do more than its budget allows get an evaluation
//! error with the budget's code, quickly and within bounded memory, and the same policy
//! answers the next requests as before.

use std::time::{Duration, Instant};

use super::*;
use crate::bundle::Bundle;
use crate::config::DecisionPath;
use crate::engine::{EvalError, Policy};
use regorus::Value;

fn policy(rego: &str, rule: &str) -> Policy {
    let bundle = Bundle::from_files(vec![("p.rego".into(), rego.as_bytes().to_vec())]).unwrap();
    Policy::load(&bundle, &DecisionPath::parse(rule).unwrap()).unwrap()
}

fn json(text: &str) -> Value {
    Value::from_json_str(text).unwrap()
}

/// Evaluates, asserts the budget it exceeds, and reports time and peak memory.
fn assert_exceeds(policy: &mut Policy, input: Value, expected: Exceeded) -> (Duration, u64) {
    let started = Instant::now();
    let result = policy.evaluate(input);
    let elapsed = started.elapsed();
    let peak = policy.last_peak_bytes();
    match &result {
        Err(EvalError::Budget { exceeded, detail }) => {
            assert_eq!(*exceeded, expected, "{detail}");
            assert!(detail.starts_with(policy.rule()), "{detail}");
        }
        other => panic!("expected {expected}, got {other:?}"),
    }
    println!("{expected}: {elapsed:?}, peak {peak} bytes");
    (elapsed, peak)
}

#[test]
fn growing_comprehensions_are_stopped() {
    let mut p = policy(
        r#"
package t
import rego.v1
strings_made := count({x | some i in numbers.range(1, input.n); x := sprintf("item-%d", [i])})
"#,
        "t/strings_made",
    );
    p.set_budget(Budget {
        memory_bytes: 4 << 20,
        ..Budget::default()
    });
    assert_eq!(p.evaluate(json(r#"{"n":100}"#)), Ok(Value::from(100)));
    let (_, peak) = assert_exceeds(&mut p, json(r#"{"n":150000}"#), Exceeded::Memory);
    // Stopped when it crossed the budget, not after building the whole set.
    assert!(peak < 8 << 20, "{peak}");
    assert_eq!(p.evaluate(json(r#"{"n":100}"#)), Ok(Value::from(100)));
}

#[test]
fn the_clock_stops_what_the_counts_allow() {
    let mut p = policy(
        r#"
package t
import rego.v1
pairs := count([1 | some i in numbers.range(1, 3000); some j in numbers.range(1, 3000)])
"#,
        "t/pairs",
    );
    p.set_budget(Budget {
        instructions: usize::MAX,
        time: Duration::from_millis(20),
        ..Budget::default()
    });
    let (elapsed, _) = assert_exceeds(&mut p, Value::new_object(), Exceeded::Time);
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
}
