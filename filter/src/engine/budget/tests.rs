//! Requests that make a policy build or do more than its budget allows get an evaluation
//! error with the budget's code, quickly and within bounded memory, and the same policy
//! answers the next requests as before.

use std::time::{Duration, Instant};

use super::*;
use crate::bundle::Bundle;
use crate::decision_path::DecisionPath;
use crate::engine::{EvalError, Mode, Policy};
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

const RANGE_FROM_QUERY: &str = r#"
package envoy.authz
import rego.v1
default allow := false
allow if {
    input.attributes.request.http.method == "GET"
    not big
}
big if count(numbers.range(1, to_number(input.parsed_query.n[0]))) > 100
"#;

fn query(n: &str) -> Value {
    json(&format!(
        r#"{{"attributes":{{"request":{{"http":{{"method":"GET"}}}}}},"parsed_query":{{"n":["{n}"]}}}}"#
    ))
}

#[test]
fn one_builtin_cannot_build_past_the_memory_budget() {
    let mut p = policy(
        "package envoy.authz\nimport rego.v1\nallow if {\n n := count(numbers.range(1, 200000000))\n n > 0\n}",
        "envoy/authz/allow",
    );
    let (_, peak) = assert_exceeds(&mut p, Value::new_object(), Exceeded::Memory);
    assert!(peak < DEFAULT_MEMORY_BYTES, "{peak}");
}

#[test]
fn growth_driven_by_the_request_is_an_error_never_another_answer() {
    let mut p = policy(RANGE_FROM_QUERY, "envoy/authz/allow");
    assert_eq!(p.evaluate(query("5")), Ok(Value::from(true)));
    assert_eq!(p.evaluate(query("500")), Ok(Value::from(false)));
    // `not big` must not become true because `big` could not be evaluated.
    let _ = assert_exceeds(&mut p, query("200000000"), Exceeded::Memory);
    // The same VM answers the next requests as before.
    assert_eq!(p.evaluate(query("5")), Ok(Value::from(true)));
    assert_eq!(p.evaluate(query("500")), Ok(Value::from(false)));
}

#[test]
fn string_builtins_check_their_output_size_before_building_it() {
    let rego = r#"
package t
import rego.v1
replaced := count(replace(input.a, "", input.b))
replaced_n := count(strings.replace_n({"a": input.b}, input.a))
joined := count(concat(input.b, split(input.a, "")))
"#;
    // Two 60 KB header values: each output below would be 3.6 GB.
    let a = "a".repeat(60_000);
    let input = json(&format!(r#"{{"a":"{a}","b":"{a}"}}"#));
    for (rule, small) in [("t/replaced", 5), ("t/replaced_n", 2), ("t/joined", 3)] {
        let mut p = policy(rego, rule);
        let (_, peak) = assert_exceeds(&mut p, input.clone(), Exceeded::Memory);
        assert!(peak < DEFAULT_MEMORY_BYTES, "{rule}: {peak}");
        assert_eq!(
            p.evaluate(json(r#"{"a":"ab","b":"x"}"#)),
            Ok(Value::from(small)),
            "{rule}"
        );
    }
}

#[test]
fn builtin_work_counts_against_the_instruction_budget() {
    // 3,000 calls that each copy 6,000 elements: few instructions, little memory at once,
    // 18 million elements copied.
    let mut p = policy(
        r#"
package t
import rego.v1
big := numbers.range(1, 3000)
total := sum([n | some i in numbers.range(1, 3000); n := count(array.concat(big, big))])
"#,
        "t/total",
    );
    // Only the work budget: a debug build is slow enough for the clock to stop it first.
    p.set_budget(Budget {
        time: Duration::from_secs(60),
        ..Budget::default()
    });
    let _ = assert_exceeds(&mut p, Value::new_object(), Exceeded::Work);
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

#[test]
fn the_interpreter_is_held_to_the_budgets_too() {
    // The RVM compiler does not handle `with`: these rules run on the interpreter.
    let mut p = policy(
        r#"
package envoy.authz
import rego.v1
default allow := false
allow if not big with input.m as 1
big if count(numbers.range(1, to_number(input.parsed_query.n[0]))) > 100
"#,
        "envoy/authz/allow",
    );
    assert_eq!(p.mode(), Mode::Interpreted);
    assert_eq!(p.evaluate(query("5")), Ok(Value::from(true)));
    assert_exceeds(&mut p, query("200000000"), Exceeded::Memory);
    assert_eq!(p.evaluate(query("5")), Ok(Value::from(true)));
    assert_eq!(p.evaluate(query("500")), Ok(Value::from(false)));
}

#[test]
fn freeing_what_was_held_before_the_evaluation_is_no_room_for_more() {
    use regorus::utils::limits::{
        begin_memory_budget, check_memory_limit_if_needed, end_memory_budget, record_allocation,
        record_deallocation,
    };
    const MIB: usize = 1 << 20;
    record_allocation(10 * MIB);
    begin_memory_budget(Some(MIB as u64));
    // The previous evaluation's state, dropped when this one starts.
    record_deallocation(10 * MIB);
    record_allocation(2 * MIB);
    let exceeded = check_memory_limit_if_needed();
    record_deallocation(2 * MIB);
    let peak = end_memory_budget();
    assert!(exceeded.is_err(), "{exceeded:?}");
    assert!((2 * MIB as u64..3 * MIB as u64).contains(&peak), "{peak}");
}

#[test]
fn repeated_indents_and_shifts_are_checked_before_building_them() {
    let rego = r#"
package t
import rego.v1
indented := count(json.marshal_with_options(input.value, {"indent": input.indent}))
shifted := bits.lsh(1, input.shift) > 0
"#;
    // A 60 KB indent on each of 20,000 lines (1.2 GB), a 512 MiB number.
    let value = format!("[{}]", vec!["[1]"; 10_000].join(","));
    let indent = "x".repeat(60_000);
    let input = json(&format!(
        r#"{{"value":{value},"indent":"{indent}","shift":4294967295}}"#
    ));
    for rule in ["t/indented", "t/shifted"] {
        let mut p = policy(rego, rule);
        let (_, peak) = assert_exceeds(&mut p, input.clone(), Exceeded::Memory);
        assert!(peak < DEFAULT_MEMORY_BYTES, "{rule}: {peak}");
    }
    let small = json(r#"{"value":[1],"indent":" ","shift":3}"#);
    assert_eq!(
        policy(rego, "t/indented").evaluate(small.clone()),
        Ok(Value::from(6))
    );
    assert_eq!(
        policy(rego, "t/shifted").evaluate(small),
        Ok(Value::from(true))
    );
}
