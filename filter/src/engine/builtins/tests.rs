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

/// OPA's answers, including the Go forms it keeps: an IPv4 address without a prefix has
/// its class's mask and stays unmasked, `::ffff:` networks are IPv4 ones, a prefix may have
/// leading zeros; where OPA's merge panics (`::1:0/128` with `::1:1/128`) or errs, undefined.
#[test]
fn net_cidr_intersects_merge_and_contains_matches_are_opas() {
    assert_answers(&[
        (
            r#"net.cidr_intersects("192.168.0.0/16", "192.168.1.0/24")"#,
            "{}",
            Some(r#"true"#),
        ),
        (
            r#"net.cidr_intersects("10.0.0.0/8", "11.0.0.0/8")"#,
            "{}",
            Some(r#"false"#),
        ),
        (
            r#"net.cidr_intersects("::ffff:0:0/96", "1.2.3.4/32")"#,
            "{}",
            Some(r#"true"#),
        ),
        (
            r#"net.cidr_intersects("2001:db8::/32", "2001:db8:1::/48")"#,
            "{}",
            Some(r#"true"#),
        ),
        (
            r#"net.cidr_intersects("10.0.0.0/8", "10.0.0.1")"#,
            "{}",
            None,
        ),
        (
            r#"net.cidr_merge(["10.1.2.3", "192.168.1.5", "172.16.0.1"])"#,
            "{}",
            Some(r#"["10.1.2.3/8", "172.16.0.1/16", "192.168.1.5/24"]"#),
        ),
        (
            r#"net.cidr_merge(["10.0.0.1/32", "10.0.0.2/32", "10.0.0.3/32"])"#,
            "{}",
            Some(r#"["10.0.0.1/32", "10.0.0.2/31"]"#),
        ),
        (
            r#"net.cidr_merge(["192.168.1.0/25", "192.168.1.128/25", "10.0.0.0/8", "10.1.0.0/16"])"#,
            "{}",
            Some(r#"["10.0.0.0/8", "192.168.1.0/24"]"#),
        ),
        (
            r#"net.cidr_merge({"2001:db8::/33", "2001:db8:8000::/33", "2001:db9::1/128"})"#,
            "{}",
            Some(r#"["2001:db8::/32", "2001:db9::1/128"]"#),
        ),
        (
            r#"net.cidr_merge(["::ffff:1.2.3.4/120", "1.2.3.0/24"])"#,
            "{}",
            Some(r#"["1.2.3.0/24"]"#),
        ),
        (r#"net.cidr_merge(["2001:db8::1"])"#, "{}", None),
        (r#"net.cidr_merge(["::1:0/128", "::1:1/128"])"#, "{}", None),
        (r#"net.cidr_merge(["1.2.3.4/33"])"#, "{}", None),
        (r#"net.cidr_merge(["01.2.3.4/8"])"#, "{}", None),
        (
            r#"net.cidr_merge(["1.2.3.4/024"])"#,
            "{}",
            Some(r#"["1.2.3.0/24"]"#),
        ),
        (
            r#"net.cidr_contains_matches({"a": ["10.0.0.0/8", 1], "b": "1.2.3.4/32"}, ["10.1.2.3", ["1.2.3.4"]])"#,
            "{}",
            Some(r#"[["a", 0], ["b", 1]]"#),
        ),
        (
            r#"net.cidr_contains_matches({"10.0.0.0/8", "192.168.0.0/16"}, "10.2.0.0/16")"#,
            "{}",
            Some(r#"[["10.0.0.0/8", "10.2.0.0/16"]]"#),
        ),
        (
            r#"net.cidr_contains_matches("10.0.0.0/8", {"x": "10.0.0.1", "y": "11.0.0.1"})"#,
            "{}",
            Some(r#"[["10.0.0.0/8", "x"]]"#),
        ),
        (
            r#"net.cidr_contains_matches([], "not a cidr")"#,
            "{}",
            Some(r#"[]"#),
        ),
        (
            r#"net.cidr_contains_matches(["10.0.0.0/8"], "not a cidr")"#,
            "{}",
            None,
        ),
        (
            r#"net.cidr_contains_matches(["10.0.0.0/8"], [[]])"#,
            "{}",
            None,
        ),
    ]);
}

/// `net.cidr_overlap`, deprecated, is refused in Rego v1 and is `net.cidr_contains` in Rego v0
/// (OPA registers one function under both names; answers of OPA's `net.cidr_contains`; regorus
/// patch 90 registers it for v0 modules).
#[test]
fn net_cidr_overlap_is_cidr_contains_in_rego_v0() {
    let overlaps = |rego_version: u8, args: &str| {
        let source = format!("package t\nr := net.cidr_overlap({args})\n");
        let manifest = format!(r#"{{"rego_version": {rego_version}}}"#);
        let bundle = Bundle::from_files(vec![
            (".manifest".into(), manifest.into_bytes()),
            ("t.rego".into(), source.into_bytes()),
        ])
        .unwrap();
        let path = DecisionPath::parse("t/r").unwrap();
        let mut policy = Policy::load(&bundle, &path).map_err(|e| e.to_string())?;
        Ok::<_, String>(policy.evaluate(Value::from_json_str("{}").unwrap()))
    };
    let v1 = overlaps(1, r#""10.0.0.0/8", "10.1.1.1""#).unwrap_err();
    assert!(v1.contains("deprecated built-in function"), "{v1}");
    assert_eq!(
        overlaps(0, r#""10.0.0.0/8", "10.1.1.1""#),
        Ok(Ok(Value::from(true)))
    );
    assert_eq!(
        overlaps(0, r#""10.0.0.0/8", "10.1.0.0/16""#),
        Ok(Ok(Value::from(true)))
    );
    assert_eq!(
        overlaps(0, r#""10.0.0.0/8", "11.1.0.0/16""#),
        Ok(Ok(Value::from(false)))
    );
    assert_eq!(
        overlaps(0, r#""10.0.0.0/8", "x""#),
        Ok(Err(EvalError::Undefined))
    );
}

/// `uuid.rfc4122` (regorus, feature `uuid`) gives one value per key in an evaluation, as OPA
/// does, a new one in the next: a policy calling it never has its decisions cached.
#[test]
fn uuid_rfc4122_is_one_value_per_key_per_evaluation_and_never_cached() {
    let source = "package t\nimport rego.v1\nr := [uuid.rfc4122(\"a\"), uuid.rfc4122(\"a\"), uuid.rfc4122(\"b\")]\n";
    let bundle = Bundle::from_files(vec![("t.rego".into(), source.into())]).unwrap();
    let mut policy = Policy::load(&bundle, &DecisionPath::parse("t/r").unwrap()).unwrap();
    policy.set_decision_cache(1 << 20);
    assert_eq!(
        policy.decision_cache(),
        "off (nondeterministic: uuid.rfc4122)"
    );
    let uuids = |policy: &mut Policy| -> Vec<String> {
        let Ok(Value::Array(items)) = policy.evaluate(Value::new_object()) else {
            panic!("not an array");
        };
        items
            .iter()
            .map(|v| v.as_string().unwrap().to_string())
            .collect()
    };
    let first = uuids(&mut policy);
    assert_eq!(first[0], first[1]);
    assert_ne!(first[0], first[2]);
    // Version 4, RFC 4122 variant, as Go's `uuid.NewRandom`.
    assert_eq!(first[0].len(), 36);
    assert_eq!(&first[0][14..15], "4");
    assert!("89ab".contains(&first[0][19..20]), "{}", first[0]);
    assert_ne!(uuids(&mut policy)[0], first[0]);
}

/// A host function called with its result as a last argument binds it, on both backends
/// (regorus patch 101 for the interpreter); OPA: `[[true, "0cc1…2661"]]`.
#[test]
fn host_functions_bind_an_output_argument() {
    let source = "package t\nimport rego.v1\nr contains [x, h] if {\n\tnet.cidr_intersects(\"10.0.0.0/8\", \"10.1.0.0/16\", x)\n\tcrypto.md5(\"a\", h)\n}\n";
    let bundle = Bundle::from_files(vec![("t.rego".into(), source.into())]).unwrap();
    // OPA's set, written as JSON.
    let opa = Value::from_json_str(r#"[[true, "0cc175b9c0f1b6a831c399e269772661"]]"#)
        .unwrap()
        .to_json_str()
        .unwrap();
    let json = |decision: Result<Value, EvalError>| decision.unwrap().to_json_str().unwrap();
    let path = DecisionPath::parse("t/r").unwrap();
    let mut policy = Policy::load(&bundle, &path).unwrap();
    assert_eq!(json(policy.evaluate(Value::new_object())), opa);
    let mut interpreted = Policy::load_interpreted(&bundle, &path).unwrap();
    assert_eq!(json(interpreted.evaluate(Value::new_object())), opa);
}

/// `regex.globs_match` answers as OPA's glob-intersection v0.2.0 (the first case is OPA's
/// conformance case); an invalid pattern (a flag after a flag, a range out of order) is
/// OPA's builtin error.
#[test]
fn regex_globs_match_is_opas() {
    assert_answers(&[
        (
            r#"regex.globs_match("a.a.[0-9]+z", ".b.b2359825792*594823z")"#,
            "{}",
            Some(r#"true"#),
        ),
        (
            r#"regex.globs_match("[a-z]+", "[0-9]*")"#,
            "{}",
            Some(r#"false"#),
        ),
        (
            r#"regex.globs_match("a+b", "[ab]*")"#,
            "{}",
            Some(r#"true"#),
        ),
        (
            r#"regex.globs_match("[ab]+c", "[bc]+")"#,
            "{}",
            Some(r#"true"#),
        ),
        (r#"regex.globs_match("a*", "b+")"#, "{}", Some(r#"false"#)),
        (r#"regex.globs_match("", "")"#, "{}", Some(r#"true"#)),
        (r#"regex.globs_match("a+*", "a")"#, "{}", None),
        (r#"regex.globs_match("[c-a]", "a")"#, "{}", None),
        (r#"regex.globs_match("\\.+", "[.]")"#, "{}", Some(r#"true"#)),
    ]);
}
