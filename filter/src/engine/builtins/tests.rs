//! Every expected value below is OPA v1.20.2's answer (`.tools/opa/opa_bindings/engine.py`);
//! where OPA raises a builtin error, OPA-Envoy (non-strict) is undefined: `None`.

use regorus::Value;

use crate::bundle::Bundle;
use crate::decision_path::DecisionPath;
use crate::engine::{parse, EvalError, Mode, Policy};

/// `r := <expr>` for `input` (JSON), as JSON (sets as sorted arrays), by the compiled program
/// and by the interpreter; `None` when undefined.
fn decide(expr: &str, input: &str) -> [Option<String>; 2] {
    let source = format!("package t\nimport rego.v1\nr := {expr}\n");
    let bundle = Bundle::from_files(vec![("t.rego".into(), source.into_bytes())]).unwrap();
    let input = Value::from_json_str(input).unwrap();
    let json = |value: Value| match value {
        Value::Undefined => None,
        value => Some(value.to_json_str().unwrap()),
    };
    let mut policy = Policy::load(&bundle, &DecisionPath::parse("t/r").unwrap()).unwrap();
    assert_eq!(policy.mode(), Mode::CompiledAtLoad, "{expr}");
    let compiled = match policy.evaluate(input.clone()) {
        Ok(value) => json(value),
        Err(EvalError::Undefined) => None,
        Err(e) => panic!("RVM: {expr}: {e}"),
    };
    let mut interpreter = parse(&bundle).unwrap();
    interpreter.set_input(input);
    let interpreted = match interpreter.eval_rule("data.t.r".into()) {
        Ok(value) => json(value),
        Err(e) => Some(format!("error: {e}")),
    };
    [compiled, interpreted]
}

/// Both backends give `expected` (JSON, `None`: undefined) for each `(expr, input)`.
#[track_caller]
fn assert_answers(cases: &[(&str, &str, Option<&str>)]) {
    for (expr, input, expected) in cases {
        let expected =
            expected.map(|json| Value::from_json_str(json).unwrap().to_json_str().unwrap());
        let [compiled, interpreted] = decide(expr, input);
        assert_eq!(compiled, expected, "RVM: {expr} for {input}");
        assert_eq!(interpreted, expected, "interpreter: {expr} for {input}");
    }
}

#[test]
fn crypto_digests_and_hmacs_are_opas() {
    let long_key = r#"concat("", ["k" | some _ in numbers.range(1, 200)])"#;
    let long_key_hmac = format!(r#"crypto.hmac.sha256("m", {long_key})"#);
    assert_answers(&[
        (
            r#"crypto.md5("")"#,
            "{}",
            Some(r#""d41d8cd98f00b204e9800998ecf8427e""#),
        ),
        (
            r#"crypto.sha1("héllo")"#,
            "{}",
            Some(r#""35b5ea45c5e41f78b46a937cc74d41dfea920890""#),
        ),
        (
            "crypto.sha256(input.s)",
            r#"{"s": "abc"}"#,
            Some(r#""ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad""#),
        ),
        (
            r#"crypto.hmac.md5("msg", "key")"#,
            "{}",
            Some(r#""18e3548c59ad40dd03907b7aeee71d67""#),
        ),
        (
            r#"crypto.hmac.sha1("msg", "key")"#,
            "{}",
            Some(r#""102900b72b7bf1031eec76b4804b66052376896b""#),
        ),
        (
            r#"crypto.hmac.sha256("msg", "key")"#,
            "{}",
            Some(r#""2d93cbc1be167bcb1637a4a23cbff01a7878f0c50ee833954ea5221bb1b8c628""#),
        ),
        (
            r#"crypto.hmac.sha512("msg", "")"#,
            "{}",
            Some(concat!(
                r#""2c267b1c9ad3d29d6d8d068e78954abd983e95642ce0ca6409a9e6c01979b082"#,
                r#"b294d36705b71cd10d3b82d8babbfd62f971f0f3b7f999f586154a3c32c0cce2""#
            )),
        ),
        (
            &long_key_hmac,
            "{}",
            Some(r#""386081d3a1ad30125daa8d66db6df4ea73d39212c64794e2d02abe994806017c""#),
        ),
        (r#"crypto.hmac.equal("abc", "abc")"#, "{}", Some("true")),
        (r#"crypto.hmac.equal("abc", "abd")"#, "{}", Some("false")),
        (r#"crypto.hmac.equal("abc", "ab")"#, "{}", Some("false")),
        // OPA: eval_type_error, operand 1 (2) must be string.
        ("crypto.md5(input.n)", r#"{"n": 1}"#, None),
        (r#"crypto.hmac.equal(input.n, "a")"#, r#"{"n": 1}"#, None),
        (r#"crypto.hmac.sha256("a", input.n)"#, r#"{"n": [1]}"#, None),
    ]);
}
