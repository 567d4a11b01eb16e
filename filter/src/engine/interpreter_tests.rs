//! The regorus interpreter, as the filter configures it (`parse`: builtin errors non-strict,
//! as in OPA-Envoy), against answers checked with OPA v1.20.2. Each test covers one fix in
//! `third_party/regorus/PATCHES.md`.

use super::*;

/// Evaluates `data.t.r` of `package t` + `rules` with `input` (JSON) on the interpreter.
fn eval(rules: &str, input: &str) -> Result<Value, String> {
    let rego = format!("package t\n{rules}\n");
    let bundle = Bundle::from_files(vec![("t.rego".into(), rego.into_bytes())])
        .map_err(|e| e.to_string())?;
    let mut engine = parse(&bundle).map_err(|e| e.to_string())?;
    engine.set_input(Value::from_json_str(input).unwrap());
    engine
        .eval_rule("data.t.r".into())
        .map_err(|e| format!("{e:#}"))
}

/// Asserts that `data.t.r` is `expected` (JSON, or `undefined`).
#[track_caller]
fn check(rules: &str, input: &str, expected: &str) {
    let want = match expected {
        "undefined" => Value::Undefined,
        json => Value::from_json_str(json).unwrap(),
    };
    assert_eq!(eval(rules, input), Ok(want), "{rules} with input {input}");
}

#[test]
fn object_subset_of_an_empty_array() {
    check("r := object.subset([], [])", "{}", "true");
    check("r := object.subset([1, 2], [])", "{}", "true");
    check(r#"r := object.subset({"a": [1]}, {"a": []})"#, "{}", "true");
    check("r := object.subset([], [1])", "{}", "false");
    check("r := object.subset([1, 2, 3], [2, 3])", "{}", "true");
    check("r := object.subset([1, 2, 3], [1, 3])", "{}", "false");
}

#[test]
fn strings_count_counts_like_go() {
    check(r#"r := strings.count("abc", "")"#, "{}", "4");
    check(r#"r := strings.count("", "")"#, "{}", "1");
    check(r#"r := strings.count("é€", "")"#, "{}", "3");
    check(r#"r := strings.count("aaaa", "aa")"#, "{}", "2");
    check(r#"r := strings.count("a.b.c", ".")"#, "{}", "2");
}

#[test]
fn numbers_range_at_the_ends_of_i64_and_bad_steps() {
    let max = i64::MAX;
    let min = i64::MIN;
    check(
        &format!("r := numbers.range({max}, {})", max - 1),
        "{}",
        &format!("[{max}, {}]", max - 1),
    );
    check(
        &format!("r := numbers.range({}, {max})", max - 1),
        "{}",
        &format!("[{}, {max}]", max - 1),
    );
    check(
        &format!("r := numbers.range({min}, {})", min + 1),
        "{}",
        &format!("[{min}, {}]", min + 1),
    );
    check(
        &format!("r := numbers.range({max}, {max})"),
        "{}",
        &format!("[{max}]"),
    );
    check(
        &format!("r := numbers.range_step({}, {max}, 5)", max - 1),
        "{}",
        &format!("[{}]", max - 1),
    );
    check(
        &format!("r := numbers.range_step({min}, {}, {max})", min + 1),
        "{}",
        &format!("[{min}]"),
    );
    check(
        &format!("r := numbers.range_step({max}, {}, 1)", max - 1),
        "{}",
        &format!("[{max}, {}]", max - 1),
    );
    check("r := numbers.range_step(5, 0, 2)", "{}", "[5, 3, 1]");
    check("r := numbers.range(2, -1)", "{}", "[2, 1, 0, -1]");
    // A step that is not a positive integer is a builtin error: undefined, `default` applies.
    for step in ["0", "-1", "1.5"] {
        check(
            &format!("default r := 7\nr := numbers.range_step(0, 5, {step})"),
            "{}",
            "7",
        );
    }
}

#[test]
fn time_layouts_with_multibyte_characters() {
    // Parsing with such a layout still fails where OPA parses (undefined, not OPA's value);
    // it no longer panics.
    check(
        r#"r := time.format([0, "UTC", "é2006"])"#,
        "{}",
        r#""é1970""#,
    );
    check(
        "default r := 7\nr := time.parse_ns(\"é€\", \"a\")",
        "{}",
        "7",
    );
}
