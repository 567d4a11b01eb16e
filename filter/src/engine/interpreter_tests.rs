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

/// OPA evaluates the refs and calls in the operands of a negated call or comparison before
/// the negation: when one is undefined the body fails, it does not make `not` true.
#[test]
fn not_over_an_undefined_operand_fails_the_body() {
    let path_rule = "default r := false\nr if { not startswith(input.attributes.request.http.path, \"/admin\") }";
    check(path_rule, "{}", "false");
    let public = r#"{"attributes": {"request": {"http": {"path": "/x"}}}}"#;
    check(path_rule, public, "true");
    for (body, input, expected) in [
        ("not count(input.xs) > 0", "{}", "undefined"),
        ("not count(input.xs) > 0", r#"{"xs": []}"#, "true"),
        ("not count(input.xs)", "{}", "undefined"),
        ("not input.x + 1 == 2", "{}", "undefined"),
        ("not input.x != 1", "{}", "undefined"),
        ("not input.x < 1", "{}", "undefined"),
        ("not input.x in [1]", "{}", "undefined"),
        ("not 1 in input.xs", "{}", "undefined"),
        ("not [input.x] == [1]", "{}", "undefined"),
        (r#"not {"a": input.x}"#, "{}", "undefined"),
        ("not input.p[input.i]", r#"{"p": [true]}"#, "undefined"),
        (
            "not input.a.b[input.i].c",
            r#"{"i": 0, "a": {"b": [{"c": false}]}}"#,
            "true",
        ),
        ("not startswith(input.p, input.q)", "{}", "undefined"),
        (
            r#"not startswith(input.p, "a") with input.z as 1"#,
            "{}",
            "undefined",
        ),
        // A ref that is the whole expression or a whole operand of `==` stays inside.
        ("not input.x", "{}", "true"),
        ("not input.x == 1", "{}", "true"),
        ("not 1 = input.x", "{}", "true"),
        ("not input.x == input.y", "{}", "true"),
        ("not input.x.y.z", "{}", "true"),
        // Iterations in the operands run outside the negation.
        ("not input.ps[_] + 1 == 2", r#"{"ps": [1, 2]}"#, "true"),
        ("not input.ps[_] + 1 == 2", r#"{"ps": [1, 1]}"#, "undefined"),
    ] {
        check(&format!("r if {{ {body} }}"), input, expected);
    }
    // A rule used as an argument is evaluated first too, a rule as the whole term is not.
    check(
        "r if { not f(q) }\nq := input.x\nf(x) if x == 1",
        "{}",
        "undefined",
    );
    check(
        "r if { not f(q) }\nq := input.x\nf(x) if x == 1",
        r#"{"x": 2}"#,
        "true",
    );
    check("r if { not q }\nq := input.x", "{}", "true");
    check("r if { not f(1) }\nf(x) := input.x", "{}", "true");
    check("r if { not f(1) == 2 }\nf(x) := input.x", "{}", "undefined");
    // Functions, comprehensions and `every` bodies alike.
    check(
        "r if g(1)\ng(y) if { not startswith(input.p, \"a\") }",
        "{}",
        "undefined",
    );
    check("r := [1 | not startswith(input.p, \"a\")]", "{}", "[]");
    check(
        "r := [1 | not startswith(input.p, \"a\")]",
        r#"{"p": "b"}"#,
        "[1]",
    );
    let every = "r if { every x in input.xs { not startswith(input.p, \"a\"); x } }";
    check(every, r#"{"xs": [1]}"#, "undefined");
    check(every, r#"{"xs": [1], "p": "b"}"#, "true");
}

/// Operators are builtins in OPA: operands of the wrong type, a division by zero or `%` on
/// floats are builtin errors, so the expression is undefined and `default` applies.
#[test]
fn operator_errors_are_undefined_when_builtin_errors_are_not_strict() {
    for (expr, input) in [
        ("input.a + input.b", r#"{"a": "a", "b": 1}"#),
        ("input.a - input.b", r#"{"a": [1], "b": 1}"#),
        ("input.a * input.b", r#"{"a": null, "b": 1}"#),
        ("input.a / input.b", r#"{"a": 1, "b": {"a": 1}}"#),
        ("input.a / input.b", r#"{"a": 1, "b": 0}"#),
        ("input.a % input.b", r#"{"a": 1, "b": 0}"#),
        ("input.a % input.b", r#"{"a": 1.5, "b": 1}"#),
        ("input.a | input.b", r#"{"a": [1], "b": 1}"#),
        ("input.a & input.b", r#"{"a": "a", "b": "b"}"#),
        ("input.a - {1}", r#"{"a": "a"}"#),
        ("{1} | input.a", r#"{"a": 1}"#),
        ("-input.a", r#"{"a": "a"}"#),
        ("-input.a", r#"{"a": [1]}"#),
    ] {
        check(&format!("default r := 7\nr := {expr}"), input, "7");
    }
    // Unary minus applies to any number, not only to literals.
    check("r := -input.a", r#"{"a": 1.5}"#, "-1.5");
    check("r := 3 - -input.a", r#"{"a": 2}"#, "5");
    check("r := -count([1, 2])", "{}", "-2");
}

/// `some x in c` over a string, number, boolean or null iterates nothing (OPA), not an error.
#[test]
fn some_in_a_scalar_iterates_nothing() {
    for value in [r#""a""#, "1", "true", "null"] {
        let input = format!(r#"{{"a": {value}}}"#);
        check("default r := 7\nr := [x | some x in input.a]", &input, "[]");
        check(
            "default r := 7\nr := [x | some k, x in input.a]",
            &input,
            "[]",
        );
        check("default r := 7\nr if { some x in input.a }", &input, "7");
    }
}

/// A `(` at the start of a line begins a new expression, as in OPA; it is not a call of the
/// ref or variable that ends the line before.
#[test]
fn a_parenthesis_after_a_newline_starts_an_expression() {
    check(
        "r if {\n  3 in input.ns\n  (1 + 2) > 0\n}",
        r#"{"ns": [3]}"#,
        "true",
    );
    check(
        "r if {\n  some x in input.ns\n  (x + 2) > 0\n}",
        r#"{"ns": [3]}"#,
        "true",
    );
    check("r := y if {\n  y := f\n  (1)\n}\nf := 2", "{}", "2");
    check(
        "r := [y |\n  y := input.x\n  (1 > 0)\n]",
        r#"{"x": 1}"#,
        "[1]",
    );
    // Within a call's parentheses, arguments may still span lines.
    check(
        "r := f(\n  input.x, 2)\nf(a, b) := a + b",
        r#"{"x": 1}"#,
        "3",
    );
}

/// A function body whose output is undefined has not succeeded: its `else` is tried, and a
/// definition without output does not hide a conflict between the others.
#[test]
fn a_function_body_with_an_undefined_output_falls_to_else() {
    check(
        "r := f(1)\nf(x) := input.missing if { true } else := 2 if { true } else := 3",
        "{}",
        "2",
    );
    check(
        "r := f(1)\nf(x) := input.missing if { true } else := input.m2 if { true } else := 3",
        "{}",
        "3",
    );
    check("r := f(1)\nf(x) := input.missing", "{}", "undefined");
    check(
        "r := f(1)\ndefault f(_) := 9\nf(x) := input.missing",
        "{}",
        "9",
    );
    let looped = "r := f(1)\nf(x) := input.m[format_int(y, 10)] if { some y in input.xs }";
    check(looped, r#"{"xs": [1, 2], "m": {"2": "b"}}"#, r#""b""#);
    let conflicting = "r := f(1)\nf(x) := input.missing if { true } else := 3\nf(x) := 2";
    assert!(eval(conflicting, "{}")
        .unwrap_err()
        .contains("functions must not produce multiple outputs"));
}

/// OPA's rule index skips a rule whose body needs an undefined `input` ref (or compares one
/// with another scalar) before evaluating any of it: an expression that would fail with a
/// conflict earlier in that body is never reached.
#[test]
fn a_rule_whose_input_condition_fails_is_not_evaluated() {
    let conflicting = "f(x) := 1\nf(x) := 2";
    for (rule, input, expected) in [
        ("r if { x := input.missing + f(1) }", "{}", "undefined"),
        ("r if { x := f(1) + input.missing }", "{}", "undefined"),
        (
            "r if { startswith(input.missing, sprintf(\"%v\", [f(1)])) }",
            "{}",
            "undefined",
        ),
        ("r if { x := f(1); input.missing }", "{}", "undefined"),
        ("r if { x := f(1); y := input.missing }", "{}", "undefined"),
        (
            "r if { x := f(1); input.v == 1 }",
            r#"{"v": 2}"#,
            "undefined",
        ),
        (
            "r if { x := f(1); count(input.missing) > 0 }",
            "{}",
            "undefined",
        ),
        (
            "r if { x := f(1); not startswith(input.missing, \"a\") }",
            "{}",
            "undefined",
        ),
        (
            "r if { x := f(1); every y in input.missing { y } }",
            "{}",
            "undefined",
        ),
        ("r := input.missing if { x := f(1) }", "{}", "undefined"),
        (
            "r := count(s)\ns contains input.missing if { x := f(1) }",
            "{}",
            "0",
        ),
        (
            "r := g(1)\ng(y) := 1 if { x := f(1); input.missing == 1 }",
            "{}",
            "undefined",
        ),
    ] {
        check(&format!("{rule}\n{conflicting}"), input, expected);
    }
    // Conditions OPA does not index: the conflict is reached, as in OPA.
    for (rule, input) in [
        ("r if { x := f(1); not input.missing }", "{}"),
        ("r if { x := f(1); input.x }", r#"{"x": false}"#),
        ("r if { x := f(1); input.missing == input.other }", "{}"),
        (
            "r if { x := f(1); input.missing == 1 with input.z as 1 }",
            "{}",
        ),
        ("r if { x := f(1); some y in input.missing }", "{}"),
    ] {
        let err = eval(&format!("{rule}\n{conflicting}"), input).unwrap_err();
        assert!(
            err.contains("functions must not produce multiple outputs"),
            "{rule}: {err}"
        );
    }
}

#[test]
fn regex_template_match_with_a_short_or_multibyte_value() {
    check(
        r#"r := regex.template_match("a{b}c", "", "{", "}")"#,
        "{}",
        "false",
    );
    check(
        r#"r := regex.template_match("a{b}c", "é", "{", "}")"#,
        "{}",
        "false",
    );
    check(
        r#"r := regex.template_match("é{b}c", "ébc", "{", "}")"#,
        "{}",
        "true",
    );
    check(
        r#"r := regex.template_match("a{b}c", "abc", "{", "}")"#,
        "{}",
        "true",
    );
    check(
        r#"default r := 7
r := regex.template_match("ab", "ab", "ab", "b")"#,
        "{}",
        "7",
    );
}

#[test]
fn sprintf_widths_that_are_not_ascii_digits_or_too_large() {
    check(r#"r := sprintf("%5d|", [1])"#, "{}", r#""    1|""#);
    check(r#"r := sprintf("%05d", [42])"#, "{}", r#""00042""#);
    check(r#"r := sprintf("%.2f", [1.5])"#, "{}", r#""1.50""#);
    // OPA answers Go's "%!(NOVERB)…" for these; undefined here, not a panic.
    check(
        "default r := 7\nr := sprintf(\"%9999999999d\", [1])",
        "{}",
        "7",
    );
    check(
        "default r := 7\nr := sprintf(\"%.9999999999f\", [1])",
        "{}",
        "7",
    );
    let superscript = eval("r := sprintf(\"%²d\", [1])", "{}");
    assert!(superscript.is_ok(), "{superscript:?}");
}

/// With `import future.keywords.not` (or `future.keywords`), OPA keeps the whole negated
/// expression inside the negation in that module: an undefined operand makes `not` true, and
/// the rule index does not use it.
#[test]
fn not_keeps_its_operands_with_the_future_not_keyword() {
    for import in ["import future.keywords.not", "import future.keywords"] {
        for body in [
            "not startswith(input.p, \"a\")",
            "not input.x + input.y == input.z",
            "not input.x != 1",
            "not input.p[input.i]",
        ] {
            check(&format!("{import}\nr if {{ {body} }}"), "{}", "true");
        }
        check(
            &format!("{import}\nr := [1 | not startswith(input.p, \"a\")]"),
            "{}",
            "[1]",
        );
        let conflict = format!(
            "{import}\nr if {{ x := f(1); not startswith(input.missing, \"a\") }}\nf(x) := 1\nf(x) := 2"
        );
        assert!(eval(&conflict, "{}")
            .unwrap_err()
            .contains("functions must not produce multiple outputs"));
    }
    // Only in the module that imports it.
    check(
        "import rego.v1\nr if { not startswith(input.p, \"a\") }",
        "{}",
        "undefined",
    );
}

/// `sprintf` writes what Go's fmt writes (OPA hands it int64, float64 and string arguments):
/// a verb that does not fit its argument, a missing argument and extra arguments are text in
/// the result, not an error, and a number under `%s` is not its digits.
#[test]
fn sprintf_formats_like_go() {
    for (call, expected) in [
        (
            r#"sprintf("%s:%s", ["host", 8080])"#,
            "host:%!s(int64=8080)",
        ),
        (r#"sprintf("%v:%d", ["host", 8080])"#, "host:8080"),
        (r#"sprintf("%d", [1.5])"#, "%!d(float64=1.5)"),
        (
            r#"sprintf("%d", [1234567.5])"#,
            "%!d(float64=1.2345675e+06)",
        ),
        (r#"sprintf("%d", [true])"#, "%!d(string=true)"),
        (r#"sprintf("%t", [1.5])"#, "%!t(float64=1.5)"),
        (r#"sprintf("%f", ["y"])"#, "%!f(string=y)"),
        (r#"sprintf("%z", [1])"#, "%!z(int64=1)"),
        (r#"sprintf("%s %s", [1])"#, "%!s(int64=1) %!s(MISSING)"),
        (r#"sprintf("", [1])"#, "%!(EXTRA int64=1)"),
        (
            r#"sprintf("%s", ["a", 2.5, true, [1], null])"#,
            "a%!(EXTRA float64=2.5, string=true, string=[1], string=null)",
        ),
        (r#"sprintf("%s", [{"a": [1, "x"]}])"#, r#"{"a": [1, "x"]}"#),
        (r#"sprintf("%5s|", ["ab"])"#, "   ab|"),
        (r#"sprintf("%x %X", ["hi", "hé"])"#, "6869 68C3A9"),
        (r#"sprintf("%e", [1.5])"#, "1.500000e+00"),
        (r#"sprintf("%.2e", [0.000123])"#, "1.23e-04"),
        (r#"sprintf("%f", [2.5])"#, "2.500000"),
        (r#"sprintf("%.1f", [2.25])"#, "2.2"),
        (r#"sprintf("%.2f", [3.14159])"#, "3.14"),
        // Integers beyond int64 are Go big.Ints, which print their digits for `%s`.
        (
            r#"sprintf("%s", [123456789123456789123])"#,
            "123456789123456789123",
        ),
    ] {
        check(&format!("r := {call}"), "{}", &format!("{:?}", expected));
    }
    // Flags are not implemented: the evaluation stops (patch 84), neither another text nor
    // undefined (which would let the default answer).
    for call in [r#"sprintf("%-5s|", ["ab"])"#, r#"sprintf("%+d", [42])"#] {
        let rules = format!("default r := 7\nr := {call}");
        let error = eval(&rules, "{}").unwrap_err();
        assert!(
            error.contains("does not format as Go's fmt"),
            "{rules}: {error}"
        );
    }
}

#[test]
fn object_subset_matches_types_as_opa() {
    // Operands of different kinds are a builtin error: undefined, not `false`.
    check(
        "r := object.subset(input.a, input.b)",
        r#"{"a": {}, "b": "alice"}"#,
        "undefined",
    );
    check("r := object.subset({}, [])", "{}", "undefined");
    check(
        "r := object.subset(input, input.groups)",
        r#"{"groups": null}"#,
        "undefined",
    );
    // One level down, an array does not hold a set.
    check(
        r#"r := object.subset({"a": [1, 2]}, {"a": {1}})"#,
        "{}",
        "false",
    );
    check(
        r#"r := object.subset({"a": {1, 2}}, {"a": {1}})"#,
        "{}",
        "true",
    );
    check(
        r#"r := object.subset({"a": {"b": [1, 2, 3]}}, {"a": {"b": [2]}})"#,
        "{}",
        "true",
    );
    // An array holds a set as OPA counts: duplicates count, an empty array holds nothing.
    check("r := object.subset([1, 1], {1, 2})", "{}", "true");
    check("r := object.subset([], set())", "{}", "false");
    check("r := object.subset([1], set())", "{}", "true");
    check("r := object.subset([[1, 2]], {[1]})", "{}", "false");
}

#[test]
fn regex_template_match_compiles_the_template_as_opa() {
    let case = |template: &str, value: &str, delims: (&str, &str), expected: &str| {
        let (start, end) = delims;
        check(
            &format!(r#"r := regex.template_match({template:?}, {value:?}, {start:?}, {end:?})"#),
            "{}",
            expected,
        );
    };
    let braces = ("{", "}");
    // Delimiters are one byte each.
    case("user", "user", ("path", "cfg"), "undefined");
    case("urn:foo:{.*}", "urn:foo:bar:baz", braces, "true");
    // Literal text is literal (`.` matches only `.`).
    case(
        "urn:foo.bar.com:{.*}",
        "urn:fooxbar.com:bar:baz",
        braces,
        "false",
    );
    case("x.y", "xzy", braces, "false");
    // One expression for the whole template, so patterns backtrack across spans.
    case("a{b+}{b*c}", "abbbc", braces, "true");
    case("{a|b}c", "bc", braces, "true");
    // Nested delimiters belong to the pattern; unbalanced ones are an error.
    case("a{x{2}}", "axx", braces, "true");
    case("a{x", "ax", braces, "undefined");
    case("a}x", "ax", braces, "undefined");
    case("/a/", "/a/", ("/", "/"), "undefined");
    case("a", "a", ("/", "/"), "true");
    case("a<[0-9]+>b", "a12b", ("<", ">"), "true");
    case("a<(>b", "a(b", ("<", ">"), "undefined");
    case(r"a<\d+>", "a١", ("<", ">"), "false");
}

#[test]
fn a_brace_that_starts_no_repetition_is_a_literal_as_in_go() {
    check(
        r#"r := regex.replace("write", "{\"a\":1}", "method")"#,
        "{}",
        r#""write""#,
    );
    check(r#"r := regex.match("^a{,2}$", "a{,2}")"#, "{}", "true");
    check(r#"r := regex.match("^a{x}$", "a{x}")"#, "{}", "true");
    check(r#"r := regex.match("^{}$", "{}")"#, "{}", "true");
    check(r#"r := regex.split("{", "a{b")"#, "{}", r#"["a", "b"]"#);
    // Repetitions stay repetitions.
    check(r#"r := regex.match("^a{2}$", "aa")"#, "{}", "true");
    check(r#"r := regex.match("^a{2,}$", "aaa")"#, "{}", "true");
    check(r#"r := regex.match("^a{1,2}$", "aaa")"#, "{}", "false");
}

#[test]
fn validity_checks_answer_false_for_anything_but_a_string() {
    for builtin in ["net.cidr_is_valid", "base64.is_valid"] {
        check(&format!("r := {builtin}(input)"), "{}", "false");
        check(&format!("r := {builtin}(input.n)"), r#"{"n": 1}"#, "false");
    }
    check(r#"r := net.cidr_is_valid("10.0.0.0/8")"#, "{}", "true");
    check(r#"r := base64.is_valid("YQ==")"#, "{}", "true");
}
