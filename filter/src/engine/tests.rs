use super::*;
use crate::bundle::Limits;
use crate::writer::build;

const AUTHZ: &str = r#"
package envoy.authz

import rego.v1

default allow := false

allow if {
    input.attributes.request.http.method == "GET"
    input.parsed_path[0] == "public"
}

allow if input.source_principal in data.admins

decision := {"allowed": allow, "headers": {"x-checked": "yes"}}
"#;

fn path(p: &str) -> DecisionPath {
    DecisionPath::parse(p).unwrap()
}

fn source_files(rego: &str) -> Vec<(String, Vec<u8>)> {
    vec![
        ("envoy/authz.rego".to_string(), rego.as_bytes().to_vec()),
        (
            "data.json".to_string(),
            br#"{"admins": ["spiffe://td/ns/a/sa/admin"]}"#.to_vec(),
        ),
    ]
}

fn bundle(files: Vec<(String, Vec<u8>)>, entrypoints: &[&str]) -> Bundle {
    let entrypoints: Vec<DecisionPath> = entrypoints.iter().map(|e| path(e)).collect();
    let built = build(files, Some("rev-1"), &entrypoints).unwrap();
    Bundle::from_targz(&built.targz, &Limits::default()).unwrap()
}

fn input(method: &str, parsed_path: &str, principal: &str) -> Value {
    Value::from_json_str(&format!(
        r#"{{"attributes":{{"request":{{"http":{{"method":"{method}"}}}}}},
            "parsed_path":["{parsed_path}"],"source_principal":"{principal}"}}"#
    ))
    .unwrap()
}

fn check_decisions(policy: &mut Policy) {
    // Same VM, different inputs: nothing leaks from one evaluation into the next.
    for _ in 0..2 {
        assert_eq!(
            policy.evaluate(input("GET", "public", "x")),
            Ok(Value::from(true))
        );
        assert_eq!(
            policy.evaluate(input("POST", "public", "x")),
            Ok(Value::from(false))
        );
        assert_eq!(
            policy.evaluate(input("POST", "x", "spiffe://td/ns/a/sa/admin")),
            Ok(Value::from(true))
        );
    }
}

#[test]
fn precompiled_program_runs_without_rego() {
    let mut bundle = bundle(
        source_files(AUTHZ),
        &["envoy/authz/allow", "envoy/authz/decision"],
    );
    assert!(bundle.program.is_some());
    bundle.modules.clear(); // proves the program alone is enough
    let mut policy = Policy::load(&bundle, &path("envoy/authz/allow")).unwrap();
    assert_eq!(policy.mode(), Mode::Precompiled);
    assert_eq!(policy.revision(), "rev-1");
    check_decisions(&mut policy);
    let mut decision = Policy::load(&bundle, &path("envoy/authz/decision")).unwrap();
    assert_eq!(
        decision.evaluate(input("GET", "public", "x")),
        Ok(Value::from_json_str(r#"{"allowed": true, "headers": {"x-checked": "yes"}}"#).unwrap())
    );
}

#[test]
fn plain_opa_bundle_is_compiled_at_load() {
    let plain = Bundle::from_files(source_files(AUTHZ)).unwrap();
    let mut policy = Policy::load(&plain, &path("envoy/authz/allow")).unwrap();
    assert_eq!(policy.mode(), Mode::CompiledAtLoad);
    check_decisions(&mut policy);
    // A precompiled bundle without the configured rule falls back to its Rego too.
    let other = bundle(source_files(AUTHZ), &["envoy/authz/decision"]);
    let policy = Policy::load(&other, &path("envoy/authz/allow")).unwrap();
    assert_eq!(policy.mode(), Mode::CompiledAtLoad);
}

#[test]
fn rego_the_rvm_cannot_compile_is_interpreted() {
    // The RVM compiler does not handle `with` yet.
    let rego = r#"
package envoy.authz
import rego.v1
default allow := false
allow if wants_read with input.want as input.asked
wants_read if input.want == "read"
"#;
    let plain = Bundle::from_files(vec![("p.rego".into(), rego.as_bytes().to_vec())]).unwrap();
    let mut policy = Policy::load(&plain, &path("envoy/authz/allow")).unwrap();
    assert_eq!(policy.mode(), Mode::Interpreted);
    assert_eq!(
        policy.evaluate(Value::from_json_str(r#"{"asked":"read"}"#).unwrap()),
        Ok(Value::from(true))
    );
    assert_eq!(
        policy.evaluate(Value::from_json_str(r#"{"asked":"write"}"#).unwrap()),
        Ok(Value::from(false))
    );
}

/// `some x in coll[k]` with `k` unbound: the index loop is hoisted, then the `some` loops
/// (patched regorus: 0.14.1 refused it, "SomeIn should have been hoisted").
#[test]
fn some_in_over_an_iterated_index_is_compiled() {
    let rego = r#"
package envoy.authz
import rego.v1
role_perms := {
    "guest": [{"method": "GET", "path": "/productpage"}],
    "admin": [{"method": "GET", "path": "/productpage"}, {"method": "POST", "path": "/admin"}],
}
required_roles contains r if {
    some perm in role_perms[r]
    perm.method == input.method
    perm.path == input.path
}
default allow := false
allow if {
    some r
    some perm in role_perms[r]
    perm.method == input.method
    every other in role_perms[r] { other.method in {"GET", "POST"} }
}
decision := {"roles": required_roles, "allow": allow}
"#;
    let plain = Bundle::from_files(vec![("p.rego".into(), rego.as_bytes().to_vec())]).unwrap();
    let mut policy = Policy::load(&plain, &path("envoy/authz/decision")).unwrap();
    assert_eq!(policy.mode(), Mode::CompiledAtLoad);
    let mut decide = |input: &str| {
        policy
            .evaluate(Value::from_json_str(input).unwrap())
            .unwrap()
            .to_json_str()
            .unwrap()
    };
    let expected = |json: &str| Value::from_json_str(json).unwrap().to_json_str().unwrap();
    assert_eq!(
        decide(r#"{"method":"GET","path":"/productpage"}"#),
        expected(r#"{"roles":["admin","guest"],"allow":true}"#)
    );
    assert_eq!(
        decide(r#"{"method":"POST","path":"/admin"}"#),
        expected(r#"{"roles":["admin"],"allow":true}"#)
    );
    assert_eq!(
        decide(r#"{"method":"DELETE","path":"/admin"}"#),
        expected(r#"{"roles":[],"allow":false}"#)
    );
}

#[test]
fn undefined_and_runtime_errors() {
    let rego = r#"
package e
import rego.v1
maybe if input.x == 1
# A runaway evaluation is stopped by the instruction limit.
expensive := count([1 | some i in numbers.range(1, 3000); some j in numbers.range(1, 3000)])
"#;
    let plain = Bundle::from_files(vec![("e.rego".into(), rego.as_bytes().to_vec())]).unwrap();
    let mut maybe = Policy::load(&plain, &path("e/maybe")).unwrap();
    assert_eq!(
        maybe.evaluate(Value::new_object()),
        Err(EvalError::Undefined)
    );
    let mut expensive = Policy::load(&plain, &path("e/expensive")).unwrap();
    // Not the clock: a debug build takes longer than the default for 5,000,000 instructions.
    expensive.set_budget(Budget {
        time: std::time::Duration::from_secs(60),
        ..Budget::default()
    });
    let result = expensive.evaluate(Value::new_object());
    assert!(
        matches!(
            &result,
            Err(EvalError::Budget {
                exceeded: Exceeded::Work,
                ..
            })
        ),
        "{result:?}"
    );
}

#[test]
fn bad_rego_is_reported_with_its_location() {
    let plain = Bundle::from_files(vec![(
        "bad/p.rego".into(),
        b"package p\n\nallow if {\n  input.x ==\n}\n".to_vec(),
    )])
    .unwrap();
    let err = Policy::load(&plain, &path("p/allow")).err().unwrap();
    assert_eq!(err.code(), "rego-error");
    assert_eq!(err.to_string(), "bad/p.rego:5:1: expecting expression");
}

/// A rule whose only condition is `not true` is refused: OPA v1.20.2 decides it as if the
/// condition held when the head has a reference or a call (`r := input if { not true }` is
/// `input`, `r := 1 if { not true }` is undefined), so no answer would match OPA's.
#[test]
fn a_rule_whose_only_condition_is_not_true_is_refused() {
    for rego in [
        "r := input if { not true }",
        "r := [input] if {\n\tnot (true)\n}",
        "r := 1 if { false } else := input if { not true }",
        "r contains input if { not true }",
        "f(x) := input if { not true }\nr := f(1)",
        "f(x) := count([x]) if { not true }\nr := f(1)",
        "f(x) := x if { not true }\nr := f(input)",
    ] {
        let source = format!("package t\n{rego}\n");
        let plain = Bundle::from_files(vec![("t.rego".into(), source.into_bytes())]).unwrap();
        for load in [Policy::load, Policy::load_interpreted] {
            let err = load(&plain, &path("t/r")).err().unwrap();
            assert_eq!(err.code(), "negated-true", "{rego}");
        }
    }
    let err = Policy::load(
        &Bundle::from_files(vec![(
            "t.rego".into(),
            b"package t\nr := input if {\n\tnot true\n}\n".to_vec(),
        )])
        .unwrap(),
        &path("t/r"),
    )
    .err()
    .unwrap();
    assert!(
        err.to_string().starts_with("t.rego:3:2: negated-true: "),
        "{err}"
    );
    // What OPA decides as written is not refused (answers from OPA v1.20.2).
    assert_decides("r := input if { not false }", "{}", Some("{}"));
    assert_decides("r := input if { not true; input }", "{}", None);
}

/// A comprehension OPA v1.20.2 indexes (evaluates once on its own, then looks up by the
/// enclosing variables it binds) whose body reads such a variable in a call or comparison
/// before binding it: OPA fails with `eval_internal_error` ("gt called with operand 2 that
/// requires evaluation: v"), where the engine would answer. Each one errs in OPA.
#[test]
fn a_comprehension_opa_indexes_and_cannot_evaluate_is_refused() {
    for rego in [
        "r := x if {\n\t1 = v\n\tx := [data.cfg.roles[v] | input > v]\n}",
        "r := x if {\n\tv := 1\n\tx := [data.cfg.roles[v] | input > v]\n}",
        "r := x if {\n\tsome v\n\tv = 1\n\tx := [data.cfg.roles[v] | input > v]\n}",
        "r := x if {\n\tv = 1\n\tx := count([data.cfg.roles[v] | input > v])\n}",
        "r := x if {\n\tv = 1\n\tx := [input.roles[v] | not input.x > v]\n}",
        "r := x if {\n\tv = 1\n\tx := [input.roles[v] | every y in input.roles { y < v }]\n}",
        "r := x if {\n\tv = 1\n\tx := [input.roles[v] | v in input.roles]\n}",
        "r := x if {\n\tv = 1\n\tx := [input.roles[v] | input.other[y]; y = v + 1]\n}",
        "r := x if {\n\tv = 1\n\tx := [input.roles[v] | input.x > v; input.roles[v]]\n}",
        "r := x if {\n\tv = 1\n\tx := [input.roles[v] | input.x != v]\n}",
        "r := x if {\n\tv = 1\n\tx := [input.roles[v] | is_number(v)]\n}",
        "r := x if {\n\tv = 1\n\tx := [input.roles[v] | count([v]) == 1]\n}",
        "r := x if {\n\tx := [input.roles[v] | input.x > v]\n\tv = 1\n}",
        "r := x if {\n\tv = 1\n\tx := {input.roles[v] | input.x > v}\n}",
        "r := x if {\n\tv = 1\n\tx := {v: input.roles[v] | input.x > v}\n}",
        "r := x if {\n\tv = 1\n\tx := [[input.roles[v] | input.x > v]]\n}",
        "r := x if {\n\tv = 1\n\tsome x in [input.roles[v] | input.x > v]\n}",
        "r := x if {\n\tv = 1\n\tx := 1\n\tnot count([input.roles[v] | input.x > v]) > 5\n}",
        "r := [input.roles[v] | input.x > v] if {\n\tv = 1\n}",
        "r := x if {\n\tinput.nope\n\tx := 1\n} else := [input.roles[v] | input.x > v] if {\n\tv = 1\n}",
        "f(v) := [input.roles[v] | input.x > v]\nr := f(1)",
        "f(v) := x if {\n\tx := [input.roles[v] | input.x > v]\n}\nr := f(1)",
        "r := ys if {\n\tx := input.x\n\tys := [y | some y in input.ys; y > x; input.m[x]]\n}",
        // `==` unifies: `x` is bound by the body, after `is_number(i)` reads `i`.
        "r := ys if {\n\tsome i, x in input.ys\n\tys := [j | is_number(i); input.ys[j] == x; input.ys[i]]\n}",
    ] {
        let source = format!("package t\n{rego}\n");
        let plain = Bundle::from_files(vec![("t.rego".into(), source.into_bytes())]).unwrap();
        for load in [Policy::load, Policy::load_interpreted] {
            let err = load(&plain, &path("t/r")).err().unwrap();
            assert_eq!(err.code(), "opa-comprehension-index", "{rego}: {err}");
        }
    }
    let err = Policy::load(
        &Bundle::from_files(vec![(
            "t.rego".into(),
            b"package t\nr := x if {\n  1 = v\n  x := [data.cfg.roles[v] | input > v]\n}\n"
                .to_vec(),
        )])
        .unwrap(),
        &path("t/r"),
    )
    .err()
    .unwrap();
    assert_eq!(
        err.to_string(),
        "t.rego:4:37: opa-comprehension-index: OPA v1.20 evaluates this comprehension on its \
         own (its comprehension index), before `v` is bound, and fails with an internal error \
         reading `v` here; bind `v` inside the comprehension before this expression (put \
         `data.cfg.roles[v]` before `input > v`)"
    );
    // What OPA evaluates (it does not index these, or their bodies bind first): answers from
    // OPA v1.20.2.
    let roles = r#"{"x": 5, "y": 1, "roles": [0, 1, 2], "other": [0, 1, 2, 3]}"#;
    for rego in [
        // Binds nothing the enclosing body has.
        "r := x if {\n\t1 = v\n\tx := [v | input.x > v]\n}",
        // A reference binds `v` before anything reads it.
        "r := x if {\n\tv = 1\n\tx := [input.roles[v] | input.roles[v]; input.x > v]\n}",
        "r := x if {\n\tv = 1\n\tx := [input.roles[v] | v = input.y; input.x > v]\n}",
        // `==` unifies.
        "r := x if {\n\tv = 1\n\tx := [input.roles[v] | not v == 2]\n}",
        "r := x if {\n\tv = 1\n\tx := [input.roles[v] | v == 1]\n}",
        "r := x if {\n\tv = 1\n\tx := [input.roles[v] | [v, 2] == [1, 2]]\n}",
        // The body alone cannot bind the value of `v + 1`, `v * 2`, `g(v)`.
        "r := x if {\n\tv = 1\n\tx := [input.roles[v] | y := v + 1]\n}",
        "r := x if {\n\tv = 1\n\tx := [input.roles[v] | y := v * 2; input.roles[y]]\n}",
        "r := x if {\n\tv = 1\n\tx := [input.roles[v] | y = v + 1; input.other[y]]\n}",
        "g(a) := a\nr := x if {\n\tv = 1\n\tx := [input.roles[v] | g(v) == 1]\n}",
        // A reference with `w`, which the body has not seen before it.
        "r := x if {\n\tv = 1\n\tw = 2\n\tx := [input.roles[v] | input.x > v; input.roles[w]]\n}",
        // A nested comprehension closes over `v`.
        "r := x if {\n\tv = 1\n\tx := [input.roles[v] | input.x > v; y := [z | z := v]]\n}",
        "f(u) := [p | some p in input.roles; p == u]\nr := f(1)",
    ] {
        assert_decides(rego, roles, Some("[1]"));
    }
    // `with` (which the interpreter runs).
    assert_eq!(
        decide_loaded(
            "r := x if {\n\tv = 1\n\tx := [input.roles[v] | input.x > v] with input.x as 3\n}",
            roles,
            true
        ),
        [Some("[\n  1\n]".to_string()), Some("[\n  1\n]".to_string())]
    );
    // Nothing in the body binds `x` or `u`.
    for rego in [
        "r := ys if {\n\tx := 0\n\tys := [y | some y in input.roles; y > x]\n}",
        "f(u) := [p | some p in input.roles; p > u]\nr := f(0)",
    ] {
        assert_decides(rego, roles, Some("[1, 2]"));
    }
}

#[test]
fn rego_opa_refuses_to_compile_is_refused_at_load() {
    // regorus would evaluate this (the unsafe `x` leaves `deny` undefined); OPA refuses it.
    let plain = Bundle::from_files(vec![(
        "p/p.rego".into(),
        b"package p\n\nallow if not deny\n\ndeny if {\n\tinput.user == x\n}\n".to_vec(),
    )])
    .unwrap();
    let err = Policy::load(&plain, &path("p/allow")).err().unwrap();
    assert_eq!(err.code(), "unsafe-var");
    assert_eq!(
        err.to_string(),
        "p/p.rego:6:16: unsafe-var: var x is unsafe"
    );
}

#[test]
fn a_local_variable_named_as_its_rule_is_not_recursion() {
    let plain = Bundle::from_files(vec![(
        "p/p.rego".into(),
        b"package p\n\nspiffe_id := x if {\n\t[_, spiffe_id] := split(input.a, \"/\")\n\tx := spiffe_id\n}\n\nallow if spiffe_id == \"b\"\n".to_vec(),
    )])
    .unwrap();
    let mut policy = Policy::load(&plain, &path("p/allow")).unwrap();
    let input = Value::from_json_str(r#"{"a": "a/b"}"#).unwrap();
    assert_eq!(policy.evaluate(input), Ok(Value::from(true)));
}

#[test]
fn missing_decision_rule_is_a_load_error() {
    let plain = Bundle::from_files(source_files(AUTHZ)).unwrap();
    let err = Policy::load(&plain, &path("envoy/authz/nope"))
        .err()
        .unwrap();
    assert_eq!(err.code(), "compile-error", "{err}");
}

/// A precompiled program from before a compiler fix keeps its old answers (`not
/// startswith(input.path, "/admin")` passed without a path before regorus patch 12): the
/// filter compiles the bundle's Rego again instead of running a program of another
/// `COMPILER_REVISION`.
#[test]
fn a_program_of_another_compiler_revision_is_compiled_again() {
    let mut bundle = bundle(source_files(AUTHZ), &["envoy/authz/allow"]);
    let policy = Policy::load(&bundle, &path("envoy/authz/allow")).unwrap();
    assert_eq!(policy.mode(), Mode::Precompiled);
    let info = bundle
        .manifest
        .metadata
        .as_mut()
        .unwrap()
        .zerohop
        .as_mut()
        .unwrap();
    info.compiler = 0;
    let policy = Policy::load(&bundle, &path("envoy/authz/allow")).unwrap();
    assert_eq!(policy.mode(), Mode::CompiledAtLoad);
    // What a bundler before revisions wrote: no `compiler` key.
    let manifest = serde_json::to_value(&bundle.manifest).unwrap();
    assert!(manifest["metadata"]["zerohop"].get("compiler").is_some());
    let mut old = manifest.clone();
    old["metadata"]["zerohop"]
        .as_object_mut()
        .unwrap()
        .remove("compiler");
    let old: crate::bundle::Manifest = serde_json::from_value(old).unwrap();
    assert_eq!(old.program().unwrap().compiler, 0);
}

#[test]
fn program_from_another_regorus_is_rejected() {
    let mut bundle = bundle(source_files(AUTHZ), &["envoy/authz/allow"]);
    let info = bundle
        .manifest
        .metadata
        .as_mut()
        .unwrap()
        .zerohop
        .as_mut()
        .unwrap();
    info.regorus = "0.13.0".into();
    let err = Policy::load(&bundle, &path("envoy/authz/allow"))
        .err()
        .unwrap();
    assert_eq!(
        err,
        LoadError::ProgramVersion {
            found: "0.13.0".into(),
            expected: REGORUS_VERSION
        }
    );

    let mut corrupt = self::bundle(source_files(AUTHZ), &["envoy/authz/allow"]);
    corrupt.program = Some(b"REGO garbage".to_vec());
    let err = Policy::load(&corrupt, &path("envoy/authz/allow"))
        .err()
        .unwrap();
    assert_eq!(err.code(), "bad-program", "{err}");
}

#[test]
fn rego_v0_bundles_follow_the_manifest() {
    let v0 = "package p\n\ndefault allow = false\n\nallow { input.ok }\n";
    let files = vec![
        (".manifest".to_string(), br#"{"rego_version": 0}"#.to_vec()),
        ("p.rego".to_string(), v0.as_bytes().to_vec()),
    ];
    let mut policy = Policy::load(&Bundle::from_files(files).unwrap(), &path("p/allow")).unwrap();
    assert_eq!(
        policy.evaluate(Value::from_json_str(r#"{"ok":true}"#).unwrap()),
        Ok(Value::from(true))
    );
}

/// A v1 policy that reads a v0 module's partial set: wrong if the v0 module were read as v1
/// (an object, whose values `in` looks at) or refused.
fn mixed_versions(manifest: &str) -> Vec<(String, Vec<u8>)> {
    let legacy = "package legacy\n\npublic[\"/public\"]\n\npublic[p] {\n\tp := \"/health\"\n}\n";
    let authz = "package envoy.authz\n\ndefault allow := false\n\nallow if input.path in data.legacy.public\n";
    vec![
        (".manifest".to_string(), manifest.as_bytes().to_vec()),
        ("legacy/paths.rego".to_string(), legacy.as_bytes().to_vec()),
        ("policy/authz.rego".to_string(), authz.as_bytes().to_vec()),
    ]
}

#[test]
fn file_rego_versions_load_v0_modules_next_to_v1_ones() {
    // Expected: OPA 1.20 on the v1 rendering of legacy/paths.rego (`public contains ...`).
    let files = mixed_versions(r#"{"file_rego_versions": {"/legacy/*.rego": 0}}"#);
    let source = Bundle::from_files(files.clone()).unwrap();
    let built = build(files, None, &[path("envoy/authz/allow")]).unwrap();
    // The built bundle names its entries `legacy/paths.rego`: the manifest says so exactly.
    assert_eq!(
        serde_json::to_value(&built.manifest.file_rego_versions).unwrap(),
        serde_json::json!({"legacy/paths.rego": 0})
    );
    let built = Bundle::from_targz(&built.targz, &Limits::default()).unwrap();
    for bundle in [source, built] {
        let mut policy = Policy::load(&bundle, &path("envoy/authz/allow")).unwrap();
        for (request, expected) in [("/health", true), ("/public", true), ("/admin", false)] {
            let input = Value::from_json_str(&format!(r#"{{"path":"{request}"}}"#)).unwrap();
            assert_eq!(
                policy.evaluate(input),
                Ok(Value::from(expected)),
                "{request}"
            );
        }
    }
}

#[test]
fn a_v0_module_the_manifest_leaves_v1_is_refused() {
    // OPA matches `legacy/*.rego` against the directory's `/legacy/paths.rego`: no match.
    let files = mixed_versions(r#"{"file_rego_versions": {"legacy/*.rego": 0}}"#);
    let err = Policy::load(
        &Bundle::from_files(files).unwrap(),
        &path("envoy/authz/allow"),
    )
    .err()
    .unwrap();
    assert_eq!(
        err.to_string(),
        "legacy/paths.rego:5:11: `if` keyword is required before rule body"
    );
}

/// OPA's deprecated builtins, which it accepts in Rego v0 modules only. Expected: OPA 1.20 on
/// their v1 equivalents (OPA's topdown registers `re_match` as `regex.match` and
/// `net.cidr_overlap` as `net.cidr_contains`; `any`/`all` compare elements with `true`,
/// `set_diff` is `-`, `cast_array` lists a set sorted): the engine refuses them in v1.
const DEPRECATED_V0: &str = r#"package p

result := {
	"any": [any([false, true]), any(set()), any([1])],
	"all": [all([]), all({true}), all([true, 1])],
	"re_match": re_match("^a+$", "aaa"),
	"cidr_overlap": net.cidr_overlap("10.0.0.0/8", "10.1.2.3"),
	"set_diff": set_diff({1, 2, 3}, {2}),
	"cast_array": cast_array({3, 1, 2}),
	"cast_set": cast_set([1, 1, 2]),
	"casts": [cast_string("s"), cast_boolean(false), cast_null(null), cast_object({"a": 1})],
	# The result as a last argument, as OPA's own tests call them.
	"output_arg": [x | net.cidr_overlap("192.168.1.0/24", "192.168.1.67", x)],
	# A builtin error is undefined, as in OPA-Envoy.
	"errors": [[x | x := any(input.s)], [x | x := cast_string(input.n)], [x | x := cast_array(input.o)]],
}
"#;

#[test]
fn deprecated_builtins_run_in_v0_modules() {
    let files = vec![
        (".manifest".to_string(), br#"{"rego_version": 0}"#.to_vec()),
        ("p.rego".to_string(), DEPRECATED_V0.as_bytes().to_vec()),
    ];
    let expected = Value::from_json_str(
        r#"{"all": [true, true, false], "any": [true, false, false], "cast_array": [1, 2, 3],
            "cast_set": [1, 2], "cidr_overlap": true, "re_match": true, "set_diff": [1, 3],
            "casts": ["s", false, null, {"a": 1}], "errors": [[], [], []],
            "output_arg": [true]}"#,
    )
    .unwrap();
    // Sets print as arrays in JSON: compare the JSON.
    let json = |v: Value| v.to_json_str().unwrap();
    let input = Value::from_json_str(r#"{"s": "x", "n": 1, "o": {"a": 1}}"#).unwrap();
    let precompiled = bundle(files.clone(), &["p/result"]);
    assert!(precompiled.program.is_some(), "compiled to the RVM");
    let mut vm = Policy::load(&precompiled, &path("p/result")).unwrap();
    assert_eq!(
        json(vm.evaluate(input.clone()).unwrap()),
        json(expected.clone())
    );
    let mut engine = parse(&Bundle::from_files(files).unwrap()).unwrap();
    engine.set_input(input);
    let interpreted = engine.eval_rule("data.p.result".into()).unwrap();
    assert_eq!(json(interpreted), json(expected));
}

#[test]
fn deprecated_builtins_are_refused_in_v1_modules() {
    // As OPA 1.20 refuses them: `rego_type_error: deprecated built-in function calls in
    // expression: any`.
    let rego = "package p\n\nx := any([true])\n";
    let plain = Bundle::from_files(vec![("p.rego".into(), rego.as_bytes().to_vec())]).unwrap();
    let err = Policy::load(&plain, &path("p/x")).err().unwrap();
    assert_eq!(
        err.to_string(),
        "p.rego:3:6: deprecated-builtin: deprecated built-in function calls in expression: any"
    );
}

#[test]
fn v0_modules_using_keywords_they_do_not_import_are_refused() {
    for (rego, at) in [
        (
            "deny contains msg {\n\tmsg := \"no\"\n}\n",
            "p.rego:3:6: v0-future-keyword: `contains`",
        ),
        (
            "allow {\n\tevery x in input.xs { x > 0 }\n}\n",
            "p.rego:4:2: v0-future-keyword: `every`",
        ),
    ] {
        let files = vec![
            (".manifest".to_string(), br#"{"rego_version": 0}"#.to_vec()),
            (
                "p.rego".to_string(),
                format!("package p\n\n{rego}").into_bytes(),
            ),
        ];
        let err = Policy::load(&Bundle::from_files(files).unwrap(), &path("p/allow"))
            .err()
            .unwrap();
        assert_eq!(err.code(), "v0-future-keyword");
        assert!(err.to_string().starts_with(at), "{err}");
    }
}

/// In a Rego v0 module that does not import it, `in` is a name (OPA's v0 parser): a statement
/// may begin with it on the line after an expression. It was taken for the membership
/// operator continuing that expression and refused as a keyword without its import (an
/// OPA-Envoy policy in opa-envoy-plugin's tests does this); on the same line it still is.
#[test]
fn in_is_a_name_in_rego_v0_without_its_import() {
    let rego = "package p\n\nallow {\n\tin := input.x\n\tin == 1\n}\n\nf(in) = x {\n\tx := in + 1\n}\n\ng = y {\n\ty := f(1)\n\tin := [2]\n\tin[0] == y\n}\n";
    let files = vec![
        (".manifest".to_string(), br#"{"rego_version": 0}"#.to_vec()),
        ("p.rego".to_string(), rego.as_bytes().to_vec()),
    ];
    let bundle = Bundle::from_files(files).unwrap();
    for (rule, input, expected) in [
        ("p/allow", r#"{"x": 1}"#, Some(Value::from(true))),
        ("p/allow", r#"{"x": 2}"#, None),
        ("p/g", "{}", Some(Value::from(2u64))),
    ] {
        let mut policy = Policy::load(&bundle, &path(rule)).unwrap();
        let decided = policy.evaluate(Value::from_json_str(input).unwrap()).ok();
        assert_eq!(decided, expected, "{rule} {input}");
    }
    let files = vec![
        (".manifest".to_string(), br#"{"rego_version": 0}"#.to_vec()),
        (
            "p.rego".to_string(),
            b"package p\n\nallow {\n\tx := input.x in [1]\n}\n".to_vec(),
        ),
    ];
    let err = Policy::load(&Bundle::from_files(files).unwrap(), &path("p/allow"))
        .err()
        .unwrap();
    assert_eq!(err.code(), "v0-future-keyword");
}

#[test]
fn functions_the_filter_lacks_are_refused_at_load() {
    let rego = "package p\nimport rego.v1\nallow if {\n\tcerts := crypto.x509.parse_certificates(input.cert)\n\tcerts[0].subject == \"alice\"\n}\n";
    let plain = Bundle::from_files(vec![("x509/p.rego".into(), rego.as_bytes().to_vec())]).unwrap();
    let err = Policy::load(&plain, &path("p/allow")).err().unwrap();
    assert_eq!(err.code(), "unsupported-function");
    assert_eq!(
        err.to_string(),
        "x509/p.rego:4:44: Unknown function: 'crypto.x509.parse_certificates' (not available in this filter)"
    );
}

/// The same when the RVM compiler gives up before the call (here on `with`) and the policy
/// would run on the interpreter: refused at load, at the call, if the decision reaches it
/// through other rules; a rule the decision never reaches may call it.
#[test]
fn functions_the_filter_lacks_are_refused_where_the_interpreter_would_run() {
    let rego = "package p\nimport rego.v1\nallow if {\n\tcheck with input as {}\n}\n\ncheck if yaml.is_valid(input.p)\n\nunused if yaml.is_valid(\"c\")\n";
    let plain = Bundle::from_files(vec![("p.rego".into(), rego.as_bytes().to_vec())]).unwrap();
    let err = Policy::load(&plain, &path("p/allow")).err().unwrap();
    assert_eq!(err.code(), "unsupported-function");
    assert_eq!(
        err.to_string(),
        "p.rego:7:10: Unknown function: 'yaml.is_valid' (not available in this filter)"
    );
    // Whatever the function (here one the signature table may not list either).
    let sha = rego.replace("yaml.is_valid(input.p)", "graphql.is_valid(input.p, \"x\")");
    let plain = Bundle::from_files(vec![("p.rego".into(), sha.into_bytes())]).unwrap();
    let err = Policy::load(&plain, &path("p/allow")).err().unwrap();
    assert_eq!(err.code(), "unsupported-function", "{err}");
    assert!(err.to_string().contains("'graphql.is_valid'"), "{err}");
    let unreached = rego.replace("check with input as {}", "input.x with input as {}");
    let plain = Bundle::from_files(vec![("p.rego".into(), unreached.into_bytes())]).unwrap();
    let policy = Policy::load(&plain, &path("p/allow")).unwrap();
    assert_eq!(policy.mode(), Mode::Interpreted);
}

/// `t.r` of `rego` (a module body) for `input` (JSON), as JSON (sets as arrays), `None` when
/// undefined: by the RVM (the compiler must accept `rego`) and by the interpreter (its
/// errors as `error: …`).
fn decide(rego: &str, input: &str) -> [Option<String>; 2] {
    decide_loaded(rego, input, false)
}

/// `decide`; with `interpreted_at_load`, the loaded policy may run on the interpreter (the
/// RVM compiler refuses what `rego` uses).
fn decide_loaded(rego: &str, input: &str, interpreted_at_load: bool) -> [Option<String>; 2] {
    let source = format!("package t\nimport rego.v1\n{rego}\n");
    let plain = Bundle::from_files(vec![("t.rego".into(), source.into_bytes())]).unwrap();
    let input = Value::from_json_str(input).unwrap();
    let json = |value: Value| match value {
        Value::Undefined => None,
        value => Some(value.to_json_str().unwrap()),
    };
    let mut policy = Policy::load(&plain, &path("t/r")).unwrap();
    if !interpreted_at_load {
        assert_eq!(policy.mode(), Mode::CompiledAtLoad, "{rego}");
    }
    let decided = match policy.evaluate(input.clone()) {
        Ok(value) => json(value),
        Err(EvalError::Undefined) => None,
        Err(e) => panic!("RVM: {rego}: {e}"),
    };
    let mut interpreter = parse(&plain).unwrap();
    interpreter.set_input(input);
    let interpreted = match interpreter.eval_rule("data.t.r".into()) {
        Ok(value) => json(value),
        Err(e) => Some(format!("error: {e}")),
    };
    [decided, interpreted]
}

fn expected_json(expected: Option<&str>) -> Option<String> {
    expected.map(|json| Value::from_json_str(json).unwrap().to_json_str().unwrap())
}

/// The RVM and the interpreter both decide `expected` (JSON; `None`: undefined), OPA's answer.
#[track_caller]
fn assert_decides(rego: &str, input: &str, expected: Option<&str>) {
    let [decided, interpreted] = decide(rego, input);
    let expected = expected_json(expected);
    assert_eq!(decided, expected, "RVM: {rego} for {input}");
    assert_eq!(interpreted, expected, "interpreter: {rego} for {input}");
}

/// The RVM decides `expected`, OPA's answer (the interpreter is not checked).
#[track_caller]
fn assert_rvm_decides(rego: &str, input: &str, expected: Option<&str>) {
    let [decided, _] = decide(rego, input);
    assert_eq!(decided, expected_json(expected), "RVM: {rego} for {input}");
}

/// Binding an undefined value fails the expression, whatever binds it (answers from OPA
/// v1.20.2). regorus 0.14.1's RVM let `:=` bind undefined and carry on: a rule body passed
/// without the value it read (fail open), comprehensions collected `undefined`.
#[test]
fn binding_an_undefined_value_fails_the_body() {
    for (rego, expected) in [
        ("r if { v := input.missing }", None),
        (
            "default r := false\nr if { v := input.missing }",
            Some("false"),
        ),
        ("r := 1 if { v := input.a.b.c }", None),
        ("r := 1 if { _ := input.missing }", None),
        ("r := 1 if { _ = input.missing }", None),
        ("r := 1 if { v := input.xs[5] }", None),
        ("r := 1 if { v := count(input.missing) }", None),
        ("r := 1 if { v := [input.missing] }", None),
        ("r := 1 if { v := {\"a\": input.missing} }", None),
        ("r := 1 if { v := input.missing + 1 }", None),
        ("q := 3 if false\nr := 1 if { v := q }", None),
        ("r if { v := input.missing; not v }", None),
        ("f(x) := 1\nr if { v := f(input.missing) }", None),
        (
            "f(x) := 1 if { v := x.missing }\nr := y if { y := f({}) }",
            None,
        ),
        ("r contains 1 if { v := input.missing }", Some("[]")),
        ("r := [1 | v := input.missing]", Some("[]")),
        ("r := {1 | v := input.missing}", Some("[]")),
        ("r := x if { x := [y | y := input.missing] }", Some("[]")),
        ("r := x if { x := {k: 1 | k := input.missing} }", Some("{}")),
        (
            "maybe if input.x == 1\nr := [m | m := data.t.maybe]",
            Some("[]"),
        ),
        (
            "default r := false\nr if { note := input.body\nnot contains(note, \"x\") }",
            Some("false"),
        ),
    ] {
        assert_decides(rego, r#"{"xs": [1], "a": {}}"#, expected);
    }
}

/// OPA evaluates the operands of a negated call (references, calls, the elements of
/// collection literals) before the negation, so an undefined operand fails the body instead
/// of making the negation succeed; the negated term itself, and the operands of `==` and `=`,
/// stay inside (answers from OPA v1.20.2). regorus 0.14.1's RVM let such bodies pass (fail
/// open): `not startswith(input.path, "/admin")` allowed a request without a path.
#[test]
fn negation_fails_on_an_undefined_operand() {
    let prelude = "h := {\"a\": true}\nq := 1 if false\nf(a) if a == 1\ndefault r := \"default\"\n";
    for (negated, undefined_operand, defined_operands) in [
        ("not startswith(input.p, \"/admin\")", "default", "pass"),
        ("not startswith(\"/admin\", input.p)", "default", "pass"),
        ("not is_string(input.p)", "default", "default"),
        ("not contains(lower(input.p), \"z\")", "default", "pass"),
        ("not lower(input.p) == \"a\"", "default", "pass"),
        ("not input.x != 1", "default", "pass"),
        ("not input.x < 1", "default", "pass"),
        ("not input.x + 1 == 3", "default", "pass"),
        ("not count(input.xs) > 1", "default", "pass"),
        ("not input.x in {2}", "default", "pass"),
        ("not 2 in input.xs", "default", "pass"),
        ("not [input.x] == [2]", "default", "pass"),
        ("not {\"a\": input.x} == {\"a\": 2}", "default", "pass"),
        ("not [input.x]", "default", "default"),
        ("not f(input.x)", "default", "default"),
        ("not f(q)", "default", "default"),
        ("not h[input.k]", "default", "pass"),
        ("not input.xs[input.i] == 2", "default", "pass"),
        ("not sprintf(\"%v\", [input.x]) == \"2\"", "default", "pass"),
        // Inside: undefined makes the negation succeed.
        ("not input.x", "pass", "default"),
        ("not input.x.y", "pass", "pass"),
        ("not input.x == 2", "pass", "pass"),
        ("not input.x = 2", "pass", "pass"),
        ("not input.p == input.q", "pass", "pass"),
        ("not q == 1", "pass", "pass"),
        ("not input.x == [y | y := input.z]", "pass", "pass"),
    ] {
        let rego = format!("{prelude}r := \"pass\" if {{ {negated} }}");
        let undefined = format!("\"{undefined_operand}\"");
        let defined = format!("\"{defined_operands}\"");
        assert_rvm_decides(&rego, "{}", Some(&undefined));
        let input = r#"{"p": "/x", "x": 1, "xs": [1], "k": "b", "i": 0, "q": "/y"}"#;
        assert_rvm_decides(&rego, input, Some(&defined));
    }
    // In an iteration, a function and `every`.
    let ps = r#"{"ps": [{"name": "b"}, {}]}"#;
    assert_rvm_decides(
        "r contains p if { some p in input.ps; not startswith(p.name, \"a\") }",
        ps,
        Some(r#"[{"name": "b"}]"#),
    );
    assert_rvm_decides(
        "ok(x) if not startswith(x.name, \"a\")\nr := [p | some p in input.ps; ok(p)]",
        ps,
        Some(r#"[{"name": "b"}]"#),
    );
    assert_rvm_decides(
        "default r := false\nr if { every p in input.ps { not startswith(p.name, \"a\") } }",
        ps,
        Some("false"),
    );
}

/// With `import future.keywords.not` (or all of `future.keywords`, common in policies
/// written for OPA 0.x) OPA moves nothing out of a negated expression in that module, so an
/// undefined operand makes the negation succeed (answers from OPA v1.20.2).
#[test]
fn negation_keeps_its_operands_under_future_keywords_not() {
    for (import, without_path) in [
        ("import future.keywords", Some("true")),
        ("import future.keywords.not", Some("true")),
        ("import future.keywords.in", None),
    ] {
        let source = format!("package t\n{import}\nr if {{ not startswith(input.p, \"/a\") }}\n");
        let bundle = Bundle::from_files(vec![("t.rego".into(), source.into_bytes())]).unwrap();
        let mut policy = Policy::load(&bundle, &path("t/r")).unwrap();
        assert_eq!(policy.mode(), Mode::CompiledAtLoad, "{import}");
        let decided = |policy: &mut Policy, input: &str| match policy
            .evaluate(Value::from_json_str(input).unwrap())
        {
            Ok(value) => Some(value.to_json_str().unwrap()),
            Err(EvalError::Undefined) => None,
            Err(e) => panic!("{import}: {e}"),
        };
        assert_eq!(
            decided(&mut policy, "{}").as_deref(),
            without_path,
            "{import}"
        );
        assert_eq!(
            decided(&mut policy, r#"{"p": "/b"}"#).as_deref(),
            Some("true")
        );
    }
}

/// A complete rule or function with two different values, and a partial object rule with
/// two values for one key, are OPA's `eval_conflict_error` (OPA-Envoy answers with
/// `status_on_error`); equal values are not (answers from OPA v1.20.2). regorus 0.14.1's RVM
/// kept the last value of an iteration and made rules with conflicting definitions
/// undefined, so a `default` applied.
#[test]
fn conflicting_outputs_are_evaluation_errors() {
    for (rego, input) in [
        ("r := x if { some x in input.xs }", r#"{"xs": [1, 2]}"#),
        ("r := x if { x := input.xs[_] }", r#"{"xs": [1, 2]}"#),
        (
            "r := {\"a\": x} if { some x in input.xs }",
            r#"{"xs": [1, 2]}"#,
        ),
        (
            "r := x if { some x in input.xs } else := 5",
            r#"{"xs": [1, 2]}"#,
        ),
        (
            "default r := 0\nr := 1 if input.a\nr := 2 if input.b",
            r#"{"a": true, "b": true}"#,
        ),
        (
            "f(x) := 1 if x > 0\nf(x) := 2 if x > 1\nr := f(input.n)",
            r#"{"n": 5}"#,
        ),
        (
            "f(x) := y if { some y in x }\nr := f(input.xs)",
            r#"{"xs": [1, 2]}"#,
        ),
        (
            "f(x) := y if { some y in x }\nr if f(input.xs)",
            r#"{"xs": [1, 2]}"#,
        ),
        (
            "q := x if { some x in input.xs }\ndefault r := false\nr if q == 5",
            r#"{"xs": [1, 2]}"#,
        ),
        (
            "r[k] := v if { some v in input.xs; k := \"a\" }",
            r#"{"xs": [1, 2]}"#,
        ),
    ] {
        let source = format!("package t\nimport rego.v1\n{rego}\n");
        let plain = Bundle::from_files(vec![("t.rego".into(), source.into_bytes())]).unwrap();
        let mut policy = Policy::load(&plain, &path("t/r")).unwrap();
        assert_eq!(policy.mode(), Mode::CompiledAtLoad, "{rego}");
        match policy.evaluate(Value::from_json_str(input).unwrap()) {
            Err(EvalError::Failed(message)) => {
                assert!(message.contains("eval_conflict_error"), "{rego}: {message}")
            }
            other => panic!("{rego}: {other:?}"),
        }
        // The VM decides the next request as a fresh one does.
        let next = Value::from_json_str(r#"{"xs": [3], "n": 1}"#).unwrap();
        let mut fresh = Policy::load(&plain, &path("t/r")).unwrap();
        assert_eq!(
            policy.evaluate(next.clone()),
            fresh.evaluate(next),
            "{rego}"
        );
    }
    for (rego, input, expected) in [
        (
            "r := x if { some x in input.xs }",
            r#"{"xs": [1, 1]}"#,
            Some("1"),
        ),
        (
            "r := 1 if input.a\nr := 1 if input.b",
            r#"{"a": true, "b": true}"#,
            Some("1"),
        ),
        (
            "r[k] := v if { some v in input.xs; k := \"a\" }",
            r#"{"xs": [1, 1]}"#,
            Some(r#"{"a": 1}"#),
        ),
        (
            "f(x) := 1 if x == 1 else := 2\nf(x) := 3 if x == 2\nr := f(input.n)",
            r#"{"n": 1}"#,
            Some("1"),
        ),
    ] {
        assert_decides(rego, input, expected);
    }
    // An iteration whose value is undefined is no output (the interpreter fails here: "not an
    // object").
    assert_rvm_decides(
        "r := input.m[x] if { some x in [\"b\", \"a\"] }",
        r#"{"m": {"a": 1}}"#,
        Some("1"),
    );
}

/// A body that produced no value fails, so its `else` is next: a body whose iteration
/// finds nothing, or whose head value is undefined (answers from OPA v1.20.2). regorus
/// 0.14.1's RVM took the body as successful and skipped the `else`, leaving the rule
/// undefined or at its `default`.
#[test]
fn else_follows_a_body_without_a_value() {
    for (rego, input, expected) in [
        (
            "default r := false\nr if { some x in input.xs; x == 3 } else := \"else\"",
            r#"{"xs": [1]}"#,
            Some(r#""else""#),
        ),
        ("r := 1 if { input.xs[_] == 3 } else := 2", r#"{"xs": [1]}"#, Some("2")),
        ("r := 1 if { input.xs[_] == 3 } else := 2", r#"{"xs": [1, 3]}"#, Some("1")),
        ("r := 1 if { some k, v in input.o; v == 3 } else := 2", r#"{"o": {"a": 1}}"#, Some("2")),
        (
            "r := 1 if { some x in input.xs; x == 3 } else := 2 if { some x in input.xs; x == 1 } else := 3",
            r#"{"xs": [2]}"#,
            Some("3"),
        ),
        ("f(y) := x if { some x in y; x == 3 } else := 0\nr := f(input.xs)", r#"{"xs": [1]}"#, Some("0")),
        ("r := input.missing if { true } else := 2", "{}", Some("2")),
        ("default r := 9\nr := input.missing if { true } else := 2", "{}", Some("2")),
        (
            "r := input.missing if { false } else := input.m2 if { true } else := 3",
            "{}",
            Some("3"),
        ),
        ("r := input.xs[0] if { true } else := \"none\"", r#"{"xs": []}"#, Some(r#""none""#)),
    ] {
        assert_decides(rego, input, expected);
    }
    // A function's undefined head value (the interpreter leaves these undefined).
    for (rego, input, expected) in [
        (
            "f(x) := input.missing if { true } else := 2\nr := f(1)",
            "{}",
            Some("2"),
        ),
        (
            "f(x) := x.a if { true } else := \"none\"\nr := f(input)",
            "{}",
            Some(r#""none""#),
        ),
    ] {
        assert_rvm_decides(rego, input, expected);
    }
}

/// An undefined key or value adds nothing to a partial object or set rule or to a
/// comprehension (answers from OPA v1.20.2). regorus 0.14.1's RVM added the undefined value,
/// which came out as the string `"<undefined>"` (`r[input.missing] := 1` was
/// `{"\"<undefined>\"": 1}`).
#[test]
fn undefined_keys_and_values_add_nothing() {
    let present = r#"{"k": "a", "v": 1, "o": {"a": 1}}"#;
    for (rego, input, expected) in [
        ("r[input.missing] := 1", "{}", "{}"),
        ("r[input.k] := input.missing", present, "{}"),
        ("r[input.k] := input.v", "{}", "{}"),
        ("r[input.k] := input.v", present, r#"{"a": 1}"#),
        (
            "r[input.k] := 1\nr[input.missing] := 2",
            present,
            r#"{"a": 1}"#,
        ),
        (
            "r[k] := 1 if { some x in [\"a\", \"b\"]; k := input.o[x] }",
            present,
            r#"{"1": 1}"#,
        ),
        ("r contains input.missing", present, "[]"),
        (
            "r := {k: input.o[k] | some k in [\"a\", \"b\"]}",
            present,
            r#"{"a": 1}"#,
        ),
        (
            "r := [input.o[k] | some k in [\"a\", \"b\"]]",
            present,
            "[1]",
        ),
        (
            "r := {input.o[k] | some k in [\"a\", \"b\"]}",
            present,
            "[1]",
        ),
    ] {
        assert_decides(rego, input, Some(expected));
    }
    // The interpreter gets these wrong (`{}`, `[]`).
    assert_rvm_decides(
        "r[k] := input.o[k] if { some k in [\"a\", \"b\"] }",
        present,
        Some(r#"{"a": 1}"#),
    );
    assert_rvm_decides(
        "r contains input.o[k] if { some k in [\"a\", \"b\"] }",
        present,
        Some("[1]"),
    );
}

/// An object comprehension that gives one key two values is OPA's `eval_conflict_error`
/// (answers from OPA v1.20.2); regorus 0.14.1's RVM kept the last value.
#[test]
fn object_comprehension_key_conflicts_are_errors() {
    let rego = "package t\nimport rego.v1\nr := {k: v | some v in input.xs; k := \"a\"}\n";
    let plain = Bundle::from_files(vec![("t.rego".into(), rego.as_bytes().to_vec())]).unwrap();
    let mut policy = Policy::load(&plain, &path("t/r")).unwrap();
    assert_eq!(policy.mode(), Mode::CompiledAtLoad);
    match policy.evaluate(Value::from_json_str(r#"{"xs": [1, 2]}"#).unwrap()) {
        Err(EvalError::Failed(message)) => assert!(message.contains("eval_conflict_error")),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        policy.evaluate(Value::from_json_str(r#"{"xs": [1, 1]}"#).unwrap()),
        Ok(Value::from_json_str(r#"{"a": 1}"#).unwrap())
    );
}

/// Rules whose head names a path below the rule go to the interpreter: regorus 0.14.1's RVM
/// compiler treated `p.s := 1` as `p := 1`, so `p` was `1` where OPA has `{"s": 1}`
/// (answers from OPA v1.20.2).
#[test]
fn rules_with_nested_heads_are_interpreted() {
    let input = r#"{"k": "a", "v": 1}"#;
    for (rego, expected) in [
        ("r := p\np.s := 1", r#"{"s": 1}"#),
        ("r := p\np.s := 1\np.u := 2", r#"{"s": 1, "u": 2}"#),
        ("r := p\np.s[input.k] := 1", r#"{"s": {"a": 1}}"#),
        ("r := p\np[\"s\"][input.k] := 1", r#"{"s": {"a": 1}}"#),
        ("r := p\np.s contains input.k", r#"{"s": ["a"]}"#),
        ("r := p\np[input.k] contains input.v", r#"{"a": [1]}"#),
        ("r := p.s\np.s[input.k] := 1", r#"{"a": 1}"#),
    ] {
        let source = format!("package t\nimport rego.v1\n{rego}\n");
        let plain = Bundle::from_files(vec![("t.rego".into(), source.into_bytes())]).unwrap();
        let mut policy = Policy::load(&plain, &path("t/r")).unwrap();
        assert_eq!(policy.mode(), Mode::Interpreted, "{rego}");
        let decided = policy
            .evaluate(Value::from_json_str(input).unwrap())
            .unwrap();
        assert_eq!(
            decided.to_json_str().unwrap(),
            Value::from_json_str(expected)
                .unwrap()
                .to_json_str()
                .unwrap(),
            "{rego}"
        );
    }
}

/// An object pattern matches only an object with exactly its keys, as an array pattern
/// matches only an array of its length (answers from OPA v1.20.2). regorus 0.14.1's RVM and
/// its interpreter matched any object that has the pattern's keys (the interpreter runs the
/// policies the RVM compiler refuses, e.g. those using `with`).
#[test]
fn object_patterns_match_exactly_their_keys() {
    let input =
        r#"{"u": {"name": "bob", "roles": ["admin"]}, "v": {"name": "bob"}, "w": [1, {"a": 1}]}"#;
    for (rego, expected) in [
        (
            "default r := false\nr if { {\"name\": n} := input.u }",
            Some("false"),
        ),
        ("r if { {\"name\": n} = input.u }", None),
        ("r if { {\"name\": \"bob\"} = input.u }", None),
        ("f({\"name\": n}) := n\nr := f(input.u)", None),
        ("r if { some {\"name\": n} in [input.u] }", None),
        ("r := n if { {\"name\": n} := input.v }", Some(r#""bob""#)),
        (
            "r := [n | some {\"name\": n} in [input.u, input.v]]",
            Some(r#"["bob"]"#),
        ),
        (
            "r := x if { {\"name\": n, \"roles\": [x]} := input.u }",
            Some(r#""admin""#),
        ),
        ("r := v if { [v, {}] = input.w }", None),
        ("r := v if { walk(input.v, [v, {}]) }", None),
    ] {
        assert_decides(rego, input, expected);
    }
}

/// `x in xs` with `x` or `xs` undefined is undefined, not `false` (answers from OPA
/// v1.20.2): regorus 0.14.1's RVM (and its interpreter) made it `false`, so
/// `is_admin := input.role in admins; not is_admin` passed without a role (fail open).
#[test]
fn membership_with_an_undefined_operand_is_undefined() {
    for (rego, expected) in [
        (
            "default r := \"d\"\nr := \"p\" if { x := input.missing in {1}; not x }",
            Some(r#""d""#),
        ),
        ("r := input.missing in {1}", None),
        ("r := 1 in input.missing", None),
        ("r := 1 in [input.missing]", None),
        (
            "r := [x | some x in [1, 2]; x in input.missing]",
            Some("[]"),
        ),
        ("r := 1 in [1]", Some("true")),
        ("r := 1 in \"abc\"", Some("false")),
    ] {
        assert_rvm_decides(rego, "{}", expected);
    }
}

/// `key, value in collection` goes to the interpreter: regorus 0.14.1's RVM compiler dropped
/// the key, so `"a", 1 in {"b": 1}` was true (OPA: false; answers from OPA v1.20.2).
#[test]
fn key_value_membership_is_interpreted() {
    let input = r#"{"o": {"b": 1}, "xs": [5, 6]}"#;
    for (rego, expected) in [
        ("r := \"a\", 1 in input.o", "false"),
        ("r := \"b\", 1 in input.o", "true"),
        ("r := 1, 5 in input.xs", "false"),
        ("r := 0, 5 in input.xs", "true"),
        (
            "r := [k | some k in [\"a\", \"b\"]; k, 1 in input.o]",
            r#"["b"]"#,
        ),
    ] {
        let source = format!("package t\nimport rego.v1\n{rego}\n");
        let plain = Bundle::from_files(vec![("t.rego".into(), source.into_bytes())]).unwrap();
        let mut policy = Policy::load(&plain, &path("t/r")).unwrap();
        assert_eq!(policy.mode(), Mode::Interpreted, "{rego}");
        assert_eq!(
            policy.evaluate(Value::from_json_str(input).unwrap()),
            Ok(Value::from_json_str(expected).unwrap()),
            "{rego}"
        );
    }
}

/// A policy over every way a host function is reached: a rule body, a function, `not`, a
/// comprehension, and a builtin error that leaves the call undefined so `default` applies.
/// (An undefined call inside an array comprehension hits the RVM difference above.)
const JWT_POLICY: &str = r#"
package envoy.authz
import rego.v1

default allow := false
allow if {
    [valid, _, payload] := io.jwt.decode_verify(input.token, {"secret": "secret"})
    valid
    payload.sub == "alice"
}

default checked := "undefined"
checked := "verified" if io.jwt.verify_hs256(input.token, "secret")
checked := "not verified" if not io.jwt.verify_hs256(input.token, "secret")

subject(t) := io.jwt.decode(t)[1].sub
subjects := [s | some t in input.tokens; s := subject(t)]
"#;

fn jwt_input(token: &str) -> Value {
    Value::from_json_str(&format!(
        r#"{{"token": {token:?}, "tokens": [{token:?}, {token:?}]}}"#
    ))
    .unwrap()
}

fn check_jwt_decisions(allow: &mut Policy, checked: &mut Policy, subjects: &mut Policy) {
    use crate::jws::testkeys::{token, token_with};
    let alice = token("HS256", r#"{"sub":"alice"}"#);
    let expired = token("HS256", r#"{"sub":"alice","exp":1}"#);
    let forged = token_with("HS256", "guess", r#"{"alg":"HS256"}"#, r#"{"sub":"alice"}"#);
    for _ in 0..2 {
        assert_eq!(allow.evaluate(jwt_input(&alice)), Ok(Value::from(true)));
        assert_eq!(allow.evaluate(jwt_input(&expired)), Ok(Value::from(false)));
        assert_eq!(allow.evaluate(jwt_input(&forged)), Ok(Value::from(false)));
        // A malformed token is a builtin error: undefined, so the default decides.
        assert_eq!(allow.evaluate(jwt_input("garbage")), Ok(Value::from(false)));
        assert_eq!(
            checked.evaluate(jwt_input(&alice)),
            Ok(Value::from("verified"))
        );
        assert_eq!(
            checked.evaluate(jwt_input(&forged)),
            Ok(Value::from("not verified"))
        );
        assert_eq!(
            checked.evaluate(jwt_input("garbage")),
            Ok(Value::from("not verified"))
        );
        assert_eq!(
            subjects.evaluate(jwt_input(&alice)),
            Ok(Value::from_json_str(r#"["alice", "alice"]"#).unwrap())
        );
    }
}

fn jwt_policies(bundle: &Bundle, mode: Mode) -> [Policy; 3] {
    [
        "envoy/authz/allow",
        "envoy/authz/checked",
        "envoy/authz/subjects",
    ]
    .map(|rule| {
        let policy = Policy::load(bundle, &path(rule)).unwrap();
        assert_eq!(policy.mode(), mode, "{rule}");
        policy
    })
}

#[test]
fn io_jwt_functions_run_in_precompiled_programs() {
    let rules = [
        "envoy/authz/allow",
        "envoy/authz/checked",
        "envoy/authz/subjects",
    ];
    let mut built = bundle(source_files(JWT_POLICY), &rules);
    built.modules.clear();
    let [mut a, mut c, mut s] = jwt_policies(&built, Mode::Precompiled);
    check_jwt_decisions(&mut a, &mut c, &mut s);
}

#[test]
fn io_jwt_functions_run_when_compiled_at_load() {
    let plain = Bundle::from_files(source_files(JWT_POLICY)).unwrap();
    let [mut a, mut c, mut s] = jwt_policies(&plain, Mode::CompiledAtLoad);
    check_jwt_decisions(&mut a, &mut c, &mut s);
}

#[test]
fn io_jwt_functions_run_in_the_interpreter() {
    // The RVM compiler does not support `with` yet: rules that use it go to the interpreter.
    let rego = format!(
        "{JWT_POLICY}
via_with_allow := x if {{ x := allow with input.extra as 1 }}
via_with_checked := x if {{ x := checked with input.extra as 1 }}
via_with_subjects := x if {{ x := subjects with input.extra as 1 }}
"
    );
    let plain = Bundle::from_files(source_files(&rego)).unwrap();
    let [mut a, mut c, mut s] = [
        "envoy/authz/via_with_allow",
        "envoy/authz/via_with_checked",
        "envoy/authz/via_with_subjects",
    ]
    .map(|rule| {
        let policy = Policy::load(&plain, &path(rule)).unwrap();
        assert_eq!(policy.mode(), Mode::Interpreted, "{rule}");
        policy
    });
    check_jwt_decisions(&mut a, &mut c, &mut s);
}

#[test]
fn time_now_ns_is_one_time_per_evaluation() {
    let rego =
        "package t\nimport rego.v1\nsame if time.now_ns() == time.now_ns()\nnow := time.now_ns()\n";
    let plain = Bundle::from_files(vec![("t.rego".into(), rego.as_bytes().to_vec())]).unwrap();
    let mut same = Policy::load(&plain, &path("t/same")).unwrap();
    assert_eq!(same.evaluate(Value::new_object()), Ok(Value::from(true)));
    let mut now = Policy::load(&plain, &path("t/now")).unwrap();
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64;
    let Ok(Value::Number(n)) = now.evaluate(Value::new_object()) else {
        panic!()
    };
    let first = n.as_i64().unwrap();
    assert!(first >= before);
    std::thread::sleep(std::time::Duration::from_millis(2));
    let Ok(Value::Number(n)) = now.evaluate(Value::new_object()) else {
        panic!()
    };
    assert!(
        n.as_i64().unwrap() > first,
        "each evaluation reads the clock again"
    );
}

#[test]
fn one_evaluation_has_one_time() {
    let clock = EvalContext::default();
    let first = clock.now_ns();
    std::thread::sleep(std::time::Duration::from_millis(2));
    assert_eq!(clock.now_ns(), first);
    clock.reset();
    assert!(clock.now_ns() > first);
}

/// Every way a policy is loaded caches its decisions: the second evaluation of an input is
/// answered from the cache, with the same answer, undefined included; bundles built before
/// the analysis and a zero budget do not cache.
#[test]
fn decisions_of_a_deterministic_policy_are_cached() {
    let undefined_too = format!("{AUTHZ}\nmaybe if input.parsed_path[0] == \"yes\"\n");
    let precompiled = bundle(source_files(&undefined_too), &["envoy/authz/maybe"]);
    let plain = Bundle::from_files(source_files(&undefined_too)).unwrap();
    for (bundle, mode) in [
        (precompiled, Mode::Precompiled),
        (plain, Mode::CompiledAtLoad),
    ] {
        let mut policy = Policy::load(&bundle, &path("envoy/authz/maybe")).unwrap();
        assert_eq!(
            (policy.mode(), policy.decision_cache()),
            (mode, "on".to_string())
        );
        for _ in 0..3 {
            assert_eq!(
                policy.evaluate(input("GET", "yes", "x")),
                Ok(Value::from(true))
            );
            assert_eq!(
                policy.evaluate(input("GET", "no", "x")),
                Err(EvalError::Undefined)
            );
        }
        assert_eq!(policy.cached_decisions(), 2);
        assert_eq!(
            policy.take_cache_counts(),
            CacheCounts { hits: 4, misses: 2 }
        );
        assert_eq!(policy.take_cache_counts(), CacheCounts::default());
        policy.set_decision_cache(0);
        assert_eq!(
            policy.evaluate(input("GET", "yes", "x")),
            Ok(Value::from(true))
        );
        assert_eq!(
            (policy.cached_decisions(), policy.decision_cache()),
            (0, "off".to_string())
        );
    }

    // A bundle built before the analysis: its manifest says nothing of it.
    let mut files = source_files(AUTHZ);
    let built = build(files.clone(), None, &[path("envoy/authz/allow")]).unwrap();
    let mut manifest = built.manifest.clone();
    let mut metadata = manifest.metadata.take().unwrap();
    let program = metadata.zerohop.as_mut().unwrap();
    (program.input, program.nondeterministic) = (None, None);
    manifest.metadata = Some(metadata);
    let program_bytes = Bundle::from_targz(&built.targz, &Limits::default())
        .unwrap()
        .program
        .unwrap();
    files.push((".manifest".into(), serde_json::to_vec(&manifest).unwrap()));
    files.push((crate::bundle::PROGRAM_FILE.into(), program_bytes));
    let old = Bundle::from_files(files).unwrap();
    let mut policy = Policy::load(&old, &path("envoy/authz/allow")).unwrap();
    assert_eq!(policy.mode(), Mode::Precompiled);
    assert_eq!(policy.input_reads(), &InputReads::everything());
    assert_eq!(
        policy.decision_cache(),
        "off (nondeterministic: unknown, the bundle predates the analysis)"
    );
    assert_eq!(
        policy.evaluate(input("GET", "public", "x")),
        Ok(Value::from(true))
    );
    assert_eq!(policy.cached_decisions(), 0);
}

/// A policy that reads the clock answers anew every time, cache budget or not.
#[test]
fn decisions_that_read_the_clock_are_never_cached() {
    let clock = "package envoy.authz\nimport rego.v1\nnow := time.now_ns()\n";
    for bundle in [
        bundle(source_files(clock), &["envoy/authz/now"]),
        Bundle::from_files(source_files(clock)).unwrap(),
    ] {
        let mut policy = Policy::load(&bundle, &path("envoy/authz/now")).unwrap();
        policy.set_decision_cache(1 << 20);
        assert_eq!(
            policy.decision_cache(),
            "off (nondeterministic: time.now_ns)"
        );
        let first = policy.evaluate(Value::new_object()).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let second = policy.evaluate(Value::new_object()).unwrap();
        assert!(second > first, "{first} then {second}");
        assert_eq!(policy.cached_decisions(), 0);
    }
}

/// regorus's `Debug` for a source span cut its text at byte 32, which panics inside a
/// multi-byte character: a `with` value such as `["2024-01-02T03:04:05Z", "ÄÖ ü"]` made the
/// bundle's load check panic (a trapped VM in Envoy). Found by the generated programs.
#[test]
fn spans_with_multibyte_text_load() {
    let source =
        "package t\nr if {\n  v := true with input as [\"2024-01-02T03:04:05Z\", \"ÄÖ ü\"]\n}\n";
    let bundle = Bundle::from_files(vec![("t.rego".into(), source.as_bytes().to_vec())]).unwrap();
    let mut policy = Policy::load(&bundle, &path("t/r")).unwrap();
    assert_eq!(policy.evaluate(Value::new_object()), Ok(Value::from(true)));
}

/// A function's `default` value (OPA v1.20.2: `[1, 5]`): regorus's RVM compiler dropped it,
/// so `f(-1)` was undefined; it now refuses such programs and the interpreter answers.
#[test]
fn functions_with_a_default_are_interpreted() {
    let source = "package t\ndefault f(_) := 1\nf(x) := x if x > 0\nr := [f(-1), f(5)]\n";
    let bundle = Bundle::from_files(vec![("t.rego".into(), source.as_bytes().to_vec())]).unwrap();
    let mut policy = Policy::load(&bundle, &path("t/r")).unwrap();
    assert_eq!(policy.mode(), Mode::Interpreted);
    assert_eq!(
        policy.evaluate(Value::new_object()),
        Ok(Value::from_json_str("[1, 5]").unwrap())
    );
}

/// A comprehension whose body finds nothing is an empty collection, also when it is evaluated
/// inside a rule body's iteration (a rule head's value, or a body statement after `some`).
/// Answers from OPA v1.20.2. The RVM sent the comprehension body's failure to the enclosing
/// loop: the iteration failed, and the rule lost the value (`{}` or undefined instead of `[]`).
#[test]
fn an_empty_comprehension_inside_an_iteration_is_an_empty_collection() {
    for (rego, input, expected) in [
        (
            "r contains [true | input.n] if { v7 = input[v6] }",
            r#"{"items": []}"#,
            "[[]]",
        ),
        (
            "r contains [true | input.n] if { true = input[v6] }",
            r#"{"flag": true}"#,
            "[[]]",
        ),
        (
            "r := [true | input.n] if { true = input[v6] }",
            r#"{"flag": true}"#,
            "[]",
        ),
        (
            "r := {true | input.n} if { true = input[v6] }",
            r#"{"flag": true}"#,
            "[]",
        ),
        (
            "r := {1: true | input.n} if { true = input[v6] }",
            r#"{"flag": true}"#,
            "{}",
        ),
        (
            "r[k] := [true | input.n] if { input[k] }",
            r#"{"flag": true}"#,
            r#"{"flag": []}"#,
        ),
        (
            "f(x) := [true | input.n] if { input[x] }\nr := f(\"flag\")",
            r#"{"flag": true}"#,
            "[]",
        ),
        (
            "r := 1 if { false } else := [true | input.n] if { input[_] }",
            r#"{"flag": true}"#,
            "[]",
        ),
        (
            "r contains [true | input.n] if { some x in input.xs }",
            r#"{"xs": [1, 2]}"#,
            "[[]]",
        ),
        (
            "r contains {\"a\": [true | input.n]} if { some x in input.xs }",
            r#"{"xs": [1, 2]}"#,
            r#"[{"a": []}]"#,
        ),
        (
            "r contains y if { some x in input.xs; y := [true | input.n] }",
            r#"{"xs": [1, 2]}"#,
            "[[]]",
        ),
        (
            "r contains y if { some x in input.xs; y := {z | some z in input.ys; input.n} }",
            r#"{"xs": [1, 2], "ys": [1]}"#,
            "[[]]",
        ),
        (
            "r contains x if { some x in input.xs; count([1 | input.n]) == 0 }",
            r#"{"xs": [1, 2]}"#,
            "[1, 2]",
        ),
    ] {
        assert_decides(rego, input, Some(expected));
    }
}

/// A finished comprehension leaves nothing behind for a later body (answers from OPA v1.20.2):
/// the RVM kept the context of a comprehension whose body failed, and a failure in the next
/// definition of the rule went back into the first one, adding a stray value (`[true, 1, []]`).
#[test]
fn a_failed_comprehension_body_does_not_take_a_later_definitions_failures() {
    for (rego, input, expected) in [
        (
            "r contains [true | input.n.x] if { v7 = input[v6] }\n\
             r contains true if { some v9 in input.cfg; [v11] := v9 }",
            r#"{"n": 7, "cfg": {"a": [1], "b": ["read", "write"]}}"#,
            Some("[true, []]"),
        ),
        (
            "r contains [true | input.n.x] if { v7 = input[v6] }\n\
             r contains x if { some x in input.xs; x > 1 }",
            r#"{"n": 7, "xs": [1, 2]}"#,
            Some("[2, []]"),
        ),
        (
            "r contains [1 | input.n] if { true }\nr contains 2 if { input.m }",
            "{}",
            Some("[[]]"),
        ),
        (
            "r contains 1 if { x := [1 | input.n]; x == [] }\n\
             r contains y if { some y in input.xs; y > 1 }",
            r#"{"xs": [1, 2]}"#,
            Some("[1, 2]"),
        ),
        (
            "r contains y if { y := {z | some z in input.ys; input.n} }\n\
             r contains [v] if { some x in input.xs; [v] := x }",
            r#"{"ys": [1], "xs": [[3], [4, 5]]}"#,
            Some("[[3], []]"),
        ),
        ("r if { x := [1 | input.n]; input.m }", "{}", None),
        (
            "r := x if { x := [1 | input.n]; input.m }\nr := 2 if { [v] := input.xs }",
            r#"{"xs": [1, 2]}"#,
            None,
        ),
        (
            "f(a) := [1 | input.n] if { a > 0 }\nf(a) := 3 if { a < 0; input.m }\n\
             r := [f(1), f(-1)]",
            "{}",
            None,
        ),
    ] {
        assert_decides(rego, input, expected);
    }
}

/// The loaded policy (the RVM, or the interpreter when the compiler refuses `rego`) and the
/// interpreter both decide `expected` (JSON; `None`: undefined), OPA's answer.
#[track_caller]
fn assert_loaded_decides(rego: &str, input: &str, expected: Option<&str>) {
    let [decided, interpreted] = decide_loaded(rego, input, true);
    let expected = expected_json(expected);
    assert_eq!(decided, expected, "loaded: {rego} for {input}");
    assert_eq!(interpreted, expected, "interpreter: {rego} for {input}");
}

/// `x in xs` and `k, x in xs` with an undefined operand are undefined, not false, also on the
/// interpreter, which runs `k, x in xs` and `with` (answers from OPA v1.20.2, where they are
/// calls of `internal.member_2/3`). The interpreter answered false: `r := 0, input.n in [1]`
/// was decided, and a `with input.a as (input.n in [1])` went ahead with false.
#[test]
fn interpreted_membership_with_an_undefined_operand_is_undefined() {
    for (rego, expected) in [
        ("r := (input.n in true)", None),
        ("r := (input.n in [1])", None),
        ("r := (1 in input.n)", None),
        ("r := (input.n, 1 in [1])", None),
        ("r := (0, input.n in [1])", None),
        ("r := 1 if { not input.n in [1] }", None),
        ("r := 1 if { not 1 in input.n }", None),
        ("r := [x | x := (input.n in [1])]", Some("[]")),
        (
            "r := 1 if { x := input with input.a as (input.n in [1]) }",
            None,
        ),
        ("r := (1 in true)", Some("false")),
        ("r := (0, 1 in {1})", Some("false")),
        ("r := (0, 1 in true)", Some("false")),
        ("r := 1 if { not 1 in true }", Some("1")),
        ("r := [x | x := (1 in true)]", Some("[false]")),
        ("r := [x | x := (1 in [1])]", Some("[true]")),
    ] {
        assert_loaded_decides(rego, "{}", expected);
    }
}

/// A `with` whose value is undefined (a missing reference, a failing builtin, an undefined
/// `in`) makes its expression undefined, whichever of several `with`s it is (answers from OPA
/// v1.20.2, which assigns the value to a local before the expression). The interpreter only
/// looked at the last `with` of an expression: an earlier undefined one let the expression
/// through (fail open).
#[test]
fn an_undefined_with_value_makes_the_expression_undefined() {
    for (rego, expected) in [
        ("r := \"t\" if { v4 := true with input as (input.n in true) }", None),
        (
            "r := \"t\" if { v4 := true with input as (input.n in true) } else := input",
            Some("{}"),
        ),
        ("r := \"t\" if { true with data.x as input.missing }", None),
        ("r := \"t\" if { true with input.a as input.missing }", None),
        ("r := \"t\" if { true with input.a as to_number(\"x\") }", None),
        ("r := \"t\" if { true with input.a as input.missing with input.b as 1 }", None),
        ("r := \"t\" if { true with input.b as 1 with input.a as input.missing }", None),
        ("r := \"t\" if { true with data.x as input.missing with input.b as 1 }", None),
        ("r := \"t\" if { true with data.x as 1 with input as input.missing }", None),
        ("r := \"t\" if { true with count as input.missing }", None),
        ("f(x) := 1 if { true with input as input.missing }\nr := f(1)", None),
        (
            "f(x) := 1 if { false } else := 2 if { true with input as input.missing with input.b as 1 }\nr := f(1)",
            None,
        ),
        (
            "r := 1 if { false } else := 2 if { true with input.a as input.missing with input.b as 1 }",
            None,
        ),
        ("r := 1 if { not input.q with input.a as input.missing with input.b as 1 }", None),
        ("r := 1 if { x := input with input.a as input.missing with data.y as 1 }", None),
        ("r := x if { x := input with input.a as input.b }", Some(r#"{"a": 2, "b": 2}"#)),
    ] {
        let input = if rego.contains("input.b }") { r#"{"b": 2}"# } else { "{}" };
        assert_loaded_decides(rego, input, expected);
    }
}

/// `input` and `data` read inside a region that may run zero times (an `every` over an empty
/// collection, a comprehension whose body fails) are read again after it (answers from OPA
/// v1.20.2). The RVM compiler loaded each root once per rule definition and reused the register
/// after such a region, where it was never written: the rest of the body failed.
#[test]
fn input_read_in_a_skipped_region_is_read_again_after_it() {
    for (rego, expected) in [
        (
            "r := \"cfg\" if {\n every v in [] { input; v }\n input\n}",
            Some("\"cfg\""),
        ),
        (
            "f(x) := 1 if {\n every v in [] { input; v }\n input\n x\n}\nr := f(1)",
            Some("1"),
        ),
        (
            "r := [x | x := 1; every v in [] { input; v }; input]",
            Some("[1]"),
        ),
        ("r := [1 | not [input | false][0]; input]", Some("[1]")),
        (
            "r := {k: 1 | k := \"a\"; count([input | false]) == 0; input}",
            Some(r#"{"a": 1}"#),
        ),
    ] {
        assert_decides(rego, "{}", expected);
    }
}

/// A `with` value is evaluated in the enclosing context, before any `with` of its expression
/// applies (answers from OPA v1.20.2, which binds it to a local first). The interpreter
/// evaluated it after setting the rule caches aside: a value naming a rule cached that rule
/// where the expression could not see it, so the rule was undefined under the `with`, and a
/// `default` or another definition answered instead.
#[test]
fn a_with_value_is_evaluated_before_the_with_applies() {
    for (rego, input, expected) in [
        (
            "r0 := input\nr := 1 if { v := r0 with input as r0 }",
            "{}",
            Some("1"),
        ),
        (
            "r0 := 5\nr := v if { v := r0 with input as r0 }",
            "{}",
            Some("5"),
        ),
        (
            "r0 := input.a\nr := v if { v := r0 with input.a as r0 }",
            r#"{"a": 2}"#,
            Some("2"),
        ),
        (
            "r0 := input.a\nr := v if { v := input.a with input as {} with input.a as r0 }",
            r#"{"a": 2}"#,
            Some("2"),
        ),
        (
            "r0 := input\ndefault r := true\nr := 1 if { v := r0 with input as r0 }",
            "{}",
            Some("1"),
        ),
    ] {
        assert_loaded_decides(rego, input, expected);
    }
}

/// A rule whose ref has several parts makes its ground prefixes exist even when it has no
/// value, as OPA's tree of rules does (answers from OPA v1.20.2); nothing is made under a key
/// that is not ground. The interpreter left the prefixes undefined (`r.a.b := 1 if false`
/// made `r` undefined, OPA `{"a": {}}`), and for `r[input]["k"]` made an entry under the
/// evaluated key before any body succeeded (`{{}: {}}`, OPA `{}`).
#[test]
fn ground_prefixes_of_a_rule_exist_without_a_value() {
    for (rego, expected) in [
        ("r0.a := 1 if { false }\nr := r0", Some("{}")),
        (
            "r0.a.b.c := 1 if { false }\nr := r0",
            Some(r#"{"a": {"b": {}}}"#),
        ),
        (
            "r0.a[x].c := 1 if { x := input.q }\nr := r0",
            Some(r#"{"a": {}}"#),
        ),
        ("r0.a.k := 1 if { false }\nr := 1 if { r0.a }", Some("1")),
        (
            "r0[input][\"k\"] := v if { v = input[_] }\nr := r0",
            Some("{}"),
        ),
        (
            "r0.a.b contains x if { x := input.q }\nr := r0",
            Some(r#"{"a": {"b": []}}"#),
        ),
        (
            "r0.a.b := 1 if { false }\nr0.a.c := 2\nr := r0",
            Some(r#"{"a": {"c": 2}}"#),
        ),
    ] {
        assert_loaded_decides(rego, "{}", expected);
    }
}

/// Values of different kinds order as OPA orders them: null, booleans, numbers, strings,
/// arrays, objects, sets (answers from OPA v1.20.2). regorus put sets before objects, so
/// `{} >= set()` held, `sort` and set iteration disagreed with OPA, and a rule testing
/// `not (input >= set())` went the other way.
#[test]
fn objects_order_before_sets() {
    for (rego, expected) in [
        ("r := {1} < {\"a\": 1}", "false"),
        ("r := {\"a\": 1} < {1}", "true"),
        ("r := input >= set()", "false"),
        (
            "r := sort([{1}, {\"a\": 1}, [1], \"x\", 1, null, true])",
            r#"[null, true, 1, "x", [1], {"a": 1}, [1]]"#,
        ),
        (
            "r := [x | some x in {{1}, {\"a\": 1}}]",
            r#"[{"a": 1}, [1]]"#,
        ),
        ("r := max({{1}, {\"a\": 1}})", "[1]"),
    ] {
        assert_decides(rego, "{}", Some(expected));
    }
}

/// An operator with an operand of the wrong type is a failing builtin in OPA (`plus`, `minus`,
/// `mul`, `div`, `rem`): without strict builtin errors, as in OPA-Envoy, only its expression is
/// undefined (answers from OPA v1.20.2 with the call made undefined). The RVM failed the whole
/// rule definition, so a comprehension holding such an expression was undefined instead of
/// `[]`, and its rule with it.
#[test]
fn an_operator_type_error_makes_only_its_expression_undefined() {
    for (rego, expected) in [
        ("r := [true | 1 = (input + 7)]", Some("[]")),
        ("r := [true | x := input - 7]", Some("[]")),
        ("r := [true | x := 7 * input]", Some("[]")),
        ("r := [true | x := input / 7]", Some("[]")),
        ("r := [true | x := input % 7]", Some("[]")),
        ("r := [x | some x in [1, 2.5]; 7 % x == 0]", Some("[1]")),
        (
            "r := {k: 1 | some k in [\"a\", \"b\"]; input + 1}",
            Some("{}"),
        ),
        ("default r := 9\nr := input * 2", Some("9")),
        ("r := 1 if { input + 7 } else := 2", Some("2")),
    ] {
        assert_decides(rego, "{}", expected);
    }
}

/// Decoded bytes that are not UTF-8 fail the evaluation (status_on_error), on both engines,
/// wherever the call is: undefined, as before, let a comprehension come out empty, a `not`
/// pass or an `else` answer where OPA, holding the bytes in a Go string, decides otherwise.
#[test]
fn decoded_bytes_that_are_not_utf8_fail_the_evaluation() {
    for rego in [
        "r := 1 if { count([1 | base64.decode(input.t)]) == 0 }",
        "r := 1 if { not base64.decode(input.t) == \"x\" }",
        "r := base64.decode(input.t) if { true } else := 2",
    ] {
        assert_evaluation_fails(rego, r#"{"t": "/w=="}"#, "not UTF-8");
    }
}

/// `data.t.r` of `rego` fails the evaluation with a message holding `needle`, on the RVM and
/// on the interpreter.
#[track_caller]
fn assert_evaluation_fails(rego: &str, input: &str, needle: &str) {
    let source = format!("package t\n{rego}\n");
    let bundle = Bundle::from_files(vec![("t.rego".into(), source.into_bytes())]).unwrap();
    let input = Value::from_json_str(input).unwrap();
    for mut policy in [
        Policy::load(&bundle, &path("t/r")).unwrap(),
        Policy::load_interpreted(&bundle, &path("t/r")).unwrap(),
    ] {
        match policy.evaluate(input.clone()) {
            Err(EvalError::Failed(message)) => {
                assert!(message.contains(needle), "{rego}: {message}")
            }
            other => panic!("{rego} ({:?}): {other:?}", policy.mode()),
        }
    }
}

/// `numbers.range_step` with a step beyond 63 bits steps as OPA's big integers do (answers from
/// OPA v1.20.2; regorus made it undefined), and `numbers.range`/`range_step` with an end beyond
/// 64 bits, which OPA enumerates, fail the evaluation instead of being undefined.
#[test]
fn ranges_step_beyond_63_bits_and_refuse_ends_beyond_64() {
    for (rego, expected) in [
        ("r := numbers.range_step(1, input.n, 12345678901234567890)", "[1]"),
        (
            "r := numbers.range_step(-9223372036854775808, 9223372036854775807, 9223372036854775808)",
            "[-9223372036854775808, 0]",
        ),
        (
            "r := numbers.range_step(9223372036854775807, -9223372036854775808, 10000000000000000000)",
            "[9223372036854775807, -776627963145224193]",
        ),
        ("r := numbers.range_step(input.n, 1, 1e30)", "[10]"),
    ] {
        assert_decides(rego, r#"{"n": 10}"#, Some(expected));
    }
    for rego in [
        "r := 1 if { not numbers.range(input.big, input.big) }",
        "r := numbers.range_step(1, input.big, 2) if { true } else := 2",
    ] {
        assert_evaluation_fails(rego, r#"{"big": 100000000000000000000}"#, "beyond 64 bits");
    }
}

/// `some x` after an iteration declares a fresh variable on every pass (answers from OPA
/// v1.20.2). The interpreter ran the declaration again on the second pass, found the first
/// pass's variable and failed the evaluation ("duplicated definition of local variable").
#[test]
fn some_declares_a_fresh_variable_on_every_pass() {
    for (rego, input, expected) in [
        (
            "r contains true if {\n true = {\"a\": true, \"b\": true}[k]\n some v\n true = input[v]\n}",
            "{}",
            Some("[]"),
        ),
        (
            "r contains [k, v] if {\n [\"a\", \"b\"][k]\n some v\n input[v] == k\n}",
            r#"{"x": 0, "y": 1}"#,
            Some(r#"[[0, "x"], [1, "y"]]"#),
        ),
    ] {
        assert_decides(rego, input, expected);
    }
}

/// In an `every` body, unifying with the quantifier's key or value compares with them (answers
/// from OPA v1.20.2). Both backends bound a fresh variable of the same name instead, so
/// `every k in [42] { k = 1 }` held (fail open), and `{"a": z} = x` was refused at compile time.
#[test]
fn every_body_unifies_with_the_quantified_variables() {
    for (rego, input, expected) in [
        (
            "r if { every k in input.xs { k = 1 } }",
            r#"{"xs": [42]}"#,
            None,
        ),
        (
            "r if { every k in input.xs { k = 1 } }",
            r#"{"xs": [1, 1]}"#,
            Some("true"),
        ),
        (
            "r if { every i, x in input.xs { i = 5; x } }",
            r#"{"xs": [42]}"#,
            None,
        ),
        (
            "r if { every i, x in input.xs { i = 0; x } }",
            r#"{"xs": [42]}"#,
            Some("true"),
        ),
        (
            "r if { every x in input.xs { {\"a\": 2} = x } }",
            r#"{"xs": [{"a": 1}]}"#,
            None,
        ),
        (
            "r if { every x in input.xs { {\"a\": z} = x; z == 2 } }",
            r#"{"xs": [{"a": 2}]}"#,
            Some("true"),
        ),
        (
            "r if { every x in input.xs { {\"a\": z} = x; z == 2 } }",
            r#"{"xs": [{"a": 1}]}"#,
            None,
        ),
    ] {
        assert_decides(rego, input, expected);
    }
}

/// Every package is a key of the data document, one holding only functions or no rule at all
/// too (patch 105), and so is the path of a function below its package (`h` of `h.g(x)`, patch
/// 107; answers from OPA v1.20.2). The RVM left them out of a document read (`{"x": 3}` for
/// `data.q`).
#[test]
fn packages_without_rule_values_are_keys_of_the_document() {
    for (read, expected) in [
        ("data.q", r#"{"foo": {}, "empty": {}, "h": {}, "x": 3}"#),
        ("data.q.foo", "{}"),
        ("data.q.empty", "{}"),
        ("data.q.h", "{}"),
        ("[k | data.q[k]]", r#"["empty", "foo", "h", "x"]"#),
        ("data.q.foo.f(2)", "2"),
    ] {
        let files = vec![
            (
                "t.rego".to_string(),
                format!("package t\nr := {read}\n").into_bytes(),
            ),
            (
                "q.rego".to_string(),
                b"package q\nx := 3\nh.g(x) := x + 1\n".to_vec(),
            ),
            ("f.rego".to_string(), b"package q.foo\nf(x) := x\n".to_vec()),
            (
                "e.rego".to_string(),
                b"package q.empty\nimport rego.v1\n".to_vec(),
            ),
        ];
        let plain = Bundle::from_files(files).unwrap();
        let mut policy = Policy::load(&plain, &path("t/r")).unwrap();
        assert_eq!(policy.mode(), Mode::CompiledAtLoad, "{read}");
        let expected = Value::from_json_str(expected).unwrap();
        assert_eq!(
            policy.evaluate(Value::new_object()),
            Ok(expected.clone()),
            "RVM: {read}"
        );
        let mut interpreter = parse(&plain).unwrap();
        assert_eq!(
            interpreter.eval_rule("data.t.r".into()).unwrap(),
            expected,
            "interpreter: {read}"
        );
    }
}

/// An object literal whose computed key equals another key (answers from OPA v1.20.2): a
/// computed key replaces a literal one, as OPA orders variables after scalars; two computed
/// keys with two values are ordered by OPA's generated variable names, so the evaluation stops
/// instead of picking one. The interpreter kept the last item written.
#[test]
fn computed_object_keys_that_collide_answer_as_opa_or_stop() {
    for (rego, expected) in [
        (r#"r := {x: 1, "a": 2} if x := "a""#, r#"{"a": 1}"#),
        (r#"r := {"a": 2, x: 1} if x := "a""#, r#"{"a": 1}"#),
        (
            r#"r := [{k: v, "z": 0} | some k, v in {"a": 1, "z": 2}]"#,
            r#"[{"a": 1, "z": 0}, {"z": 2}]"#,
        ),
        (
            r#"r := {x: 1, y: 1} if { x := "a"; y := "a" }"#,
            r#"{"a": 1}"#,
        ),
    ] {
        assert_decides(rego, "{}", Some(expected));
    }
    assert_evaluation_fails(
        r#"r := {x: 1, y: 2} if { x := "a"; y := "a" }"#,
        "{}",
        "two different values",
    );
}

/// A negated expression binds nothing: a variable in it is bound by the rest of the body first,
/// whatever the order it is written in (answers from OPA v1.20.2). regorus let the `=` inside
/// `not a = input.x` bind `a`, so the negation always failed and the rule was undefined.
#[test]
fn a_negated_unification_compares_with_a_variable_bound_later() {
    for (rego, input, expected) in [
        (
            "r := a if { not a = input.x; a = 3 }",
            r#"{"x": 4}"#,
            Some("3"),
        ),
        ("r := a if { not a = input.x; a = 3 }", r#"{"x": 3}"#, None),
        (
            "f(x) := x\nr := a if { not a = f(1); a = f(2) }",
            "{}",
            Some("2"),
        ),
        ("r := a if { not [a, 1] = [2, 1]; a = 3 }", "{}", Some("3")),
        (
            "r := i if { not input.x[i] == 1; i = 0 }",
            r#"{"x": [2]}"#,
            Some("0"),
        ),
        (
            "r := i if { not input.x[i] == 1; i = 0 }",
            r#"{"x": [1]}"#,
            None,
        ),
    ] {
        assert_decides(rego, input, expected);
    }
}

/// The head value of a rule with an `else` reads the variables its own body binds (answers
/// from OPA v1.20.2). The loop hoister analysed the head once more with the `else` body, where
/// `k` is unbound, and the head iterated over `k`: a key the input lacks gave another key's
/// value instead of the `else` (fail open on both backends).
#[test]
fn a_head_value_with_an_else_reads_its_own_bodys_bindings() {
    for (rego, input, expected) in [
        (
            "r := input.roles[k] if { k := \"cfg\" } else := 5",
            r#"{"roles": {"guest": []}}"#,
            Some("5"),
        ),
        (
            "r := input.roles[k] if { \"cfg\" = k } else := 5",
            r#"{"roles": {"guest": [], "cfg": 1}}"#,
            Some("1"),
        ),
        (
            "default r := false\nr := input.roles[k] if { k := input.k } else := false",
            r#"{"roles": {"admin": true}, "k": "nobody"}"#,
            Some("false"),
        ),
    ] {
        assert_decides(rego, input, expected);
    }
}

/// An object literal that writes a key again keeps only the last item: OPA's parser replaces
/// the earlier value, which is never evaluated (answers from OPA v1.20.2). Both backends
/// evaluated every item, so an undefined or failing earlier value made the object undefined.
#[test]
fn an_object_key_written_again_replaces_the_earlier_item() {
    for (rego, input, expected) in [
        (
            r#"r := {"a": input.missing, "a": 2}"#,
            "{}",
            Some(r#"{"a": 2}"#),
        ),
        (r#"r := {"a": 2, "a": input.missing}"#, "{}", None),
        (r#"r := {"a": 1 / 0, `a`: 2}"#, "{}", Some(r#"{"a": 2}"#)),
        (r#"r := {"a": y, "a": 2}"#, "{}", Some(r#"{"a": 2}"#)),
        (
            r#"r := {input.k: input.missing, input["k"]: 2}"#,
            r#"{"k": "x"}"#,
            Some(r#"{"x": 2}"#),
        ),
        (
            r#"r := {x: input.missing, x: 1} if { x := "q" }"#,
            "{}",
            Some(r#"{"q": 1}"#),
        ),
        // Keys equal only once evaluated are not written again: both items are evaluated.
        (
            r#"r := {input.a: input.missing, input.b: 2}"#,
            r#"{"a": "k", "b": "k"}"#,
            None,
        ),
    ] {
        assert_decides(rego, input, expected);
    }
}

/// A package read as a document leaves an undefined rule out, and keeps the ground prefixes
/// of its path (answers from OPA v1.20.2). The RVM put the undefined value in the object
/// (serialized as `"<undefined>"`), so `count(data.other) == 1` and every key test disagreed.
#[test]
fn a_package_read_as_a_document_leaves_undefined_rules_out() {
    for (other, expected) in [
        ("a := input.nope\nb := 1", r#"{"b": 1}"#),
        ("a := 1 / 0\nb := 1", r#"{"b": 1}"#),
        ("c.a := input.nope\nb := 1", r#"{"b": 1, "c": {}}"#),
        ("c.d.a := input.nope", r#"{"c": {"d": {}}}"#),
    ] {
        let files = vec![
            ("t.rego".into(), b"package t\nr := data.other\n".to_vec()),
            (
                "o.rego".into(),
                format!("package other\n{other}\n").into_bytes(),
            ),
        ];
        let bundle = Bundle::from_files(files).unwrap();
        // Rules with a path in their head (`c.a`) are interpreted (patch 17).
        let mut policy = Policy::load(&bundle, &path("t/r")).unwrap();
        let value = policy.evaluate(Value::new_object()).unwrap();
        assert_eq!(value, Value::from_json_str(expected).unwrap(), "{other}");
    }
}

/// A number key into a base document finds the key with that number's text, as OPA's data
/// lookup does (`data.ports[8080]` is `data.ports["8080"]`); a value read out of data first is
/// indexed as a plain object (answers from OPA v1.20.2). The RVM indexed data like any object,
/// so `not data.blocked[input.port]` passed for a blocked port (fail open).
#[test]
fn a_number_key_into_data_finds_its_text() {
    let data = r#"{"ports": {"8080": "web"}, "blocked": {"22": true}, "arr": ["a", "b"]}"#;
    for (rego, input, expected) in [
        (
            "r := data.ports[input.port]",
            r#"{"port": 8080}"#,
            Some("\"web\""),
        ),
        ("r := data.ports[8080]", "{}", Some("\"web\"")),
        (
            "r if { not data.blocked[input.port] }",
            r#"{"port": 22}"#,
            None,
        ),
        (
            "r if { not data.blocked[input.port] }",
            r#"{"port": 23}"#,
            Some("true"),
        ),
        ("r := data.arr[1]", "{}", Some("\"b\"")),
        ("r := x if { x := data.ports; x[8080] }", "{}", None),
    ] {
        let source = format!("package t\n{rego}\n");
        let files = vec![
            ("t.rego".into(), source.into_bytes()),
            ("data.json".into(), data.as_bytes().to_vec()),
        ];
        let bundle = Bundle::from_files(files).unwrap();
        let mut policy = Policy::load(&bundle, &path("t/r")).unwrap();
        assert_eq!(policy.mode(), Mode::CompiledAtLoad, "{rego}");
        let decided = match policy.evaluate(Value::from_json_str(input).unwrap()) {
            Ok(value) => Some(value),
            Err(EvalError::Undefined) => None,
            Err(e) => panic!("{rego}: {e}"),
        };
        let expected = expected.map(|json| Value::from_json_str(json).unwrap());
        assert_eq!(decided, expected, "{rego} with {input}");
    }
}

/// Arithmetic beyond integers is OPA's: operands read as binary floats of 64 significant bits
/// from their decimals, results rounded to 64 bits and kept as their shortest decimal; `sum`
/// adds at 64 bits, `product` multiplies at 53 bits (OPA starts it from a float64), `round`,
/// `ceil` and `floor` truncate at 64 bits (with OPA's sign quirk for a zero integer part);
/// numbers compare by their decimals (answers from OPA v1.20.2). regorus 0.14.1 computed in
/// f64: `-3.25 * 0.1` was -0.325, `sum([0.1, 0.2])` 0.30000000000000004, `1.5e300 * 1.5e300`
/// an overflow error.
#[test]
fn arithmetic_beyond_integers_is_opas_64_bit_float() {
    let all_true = format!("[{}]", ["true"; 17].join(", "));
    assert_decides(
        "r := [
            -3.25 * 0.1 == -0.32500000000000000002,
            -3.25 * 0.1 != -0.325,
            65536 / input.age == 2148.721311475409836,
            input.age * 3 == 91.5,
            12345678901234567890 + 1000.0 == 12345678901234568890,
            sum([0.1, 0.2]) == 0.3,
            product([0.1, 3]) == 0.30000000000000004,
            product([3, 0.1]) == 0.3,
            1 / 3 == 0.33333333333333333334,
            12345678901234567890124 / 3 == 4115226300411522630000,
            (1.5e300 * 1.5e300) / 1e300 == 22500000000000000001e281,
            ceil(-0.5) == 1,
            floor(-0.5) == 0,
            round(0.49999999999999999999) == 1,
            abs(-12345678901234567890123) == 12345678901234567890000,
            floor(12345678901234567890123) == 12345678901234567889920,
            0.1 < 0.1000000000000000000000000001,
        ]",
        r#"{"age": 30.5}"#,
        Some(&all_true),
    );
}

/// A number is written as OPA writes it: the shortest decimal of its 64-bit float, in Go's
/// `%g` form (`e` notation below 1e-4 and from 1e6); an integer result in full; a number
/// handed to `sprintf` alone is a float64 (answers from OPA v1.20.2).
#[test]
fn computed_numbers_are_written_as_opa_writes_them() {
    assert_decides(
        r#"r := sprintf("%v", [[-3.25 * 0.1, 65536 / input.age, 1 / 3, 0.00001 * 3,
            1234567.5 * 1, 0.1 + 0.2, 2.5 * 2.5, 12345678901234567890 + 1000.0]])"#,
        r#"{"age": 30.5}"#,
        Some(
            r#""[-0.32500000000000000002, 2148.721311475409836, 0.33333333333333333334, 2.9999999999999999999e-05, 1.2345675e+06, 0.3, 6.25, 12345678901234568890]""#,
        ),
    );
    // A number `sprintf` formats itself is a float64 there, as in Go.
    assert_decides(
        r#"r := [sprintf("%v", [1 / 3]), sprintf("%.2f", [-3.25 * 0.1]),
            sprintf("%v", [1234567.5]), sprintf("%v", [0.00001])]"#,
        "{}",
        Some(r#"["0.3333333333333333", "-0.33", "1.2345675e+06", "1e-05"]"#),
    );
}

/// A literal no f64 holds survives the precompiled program: its decimal is stored, not an f64
/// (OPA v1.20.2: both comparisons hold).
#[test]
fn a_precompiled_literal_keeps_its_decimal() {
    let rego = "package t\nimport rego.v1\n\
                r := [x == -0.32500000000000000002, x != -0.325] if { x := -3.25 * 0.1; \
                y := -0.32500000000000000002; x == y }";
    let mut built = bundle(vec![("t.rego".into(), rego.as_bytes().to_vec())], &["t/r"]);
    built.modules.clear();
    let mut policy = Policy::load(&built, &path("t/r")).unwrap();
    assert_eq!(policy.mode(), Mode::Precompiled);
    assert_eq!(
        policy.evaluate(Value::from_json_str("{}").unwrap()),
        Ok(Value::from_json_str("[true, true]").unwrap())
    );
}

/// OPA keeps the text a number literal or a JSON number was written with (`1.0`, `1e3`,
/// `-0.0`): `json.marshal` writes it, `sprintf` reads the Go type from it, and an array index
/// is an integer only as `Number.Int` reads the text (answers from OPA v1.20.2). regorus kept
/// the value only: `json.marshal(1000.0)` was `"1000"`, `[1,2,3][x]` with `x := 1e0` was 2.
#[test]
fn numbers_keep_the_text_they_were_written_with() {
    for (rego, input, expected) in [
        (
            "r := json.marshal([1000.0, 1e3, 2.50, 1E3, 0.10, -0.0, - 1.50, -0, 1.5e2, 7])",
            "{}",
            r#""[1000.0,1e3,2.50,1E3,0.10,-0.0,-1.50,-0,1.5e2,7]""#,
        ),
        // Through input, data-like rules, variables, collections and builtins that return
        // their argument; arithmetic and rounding give the value's own text.
        (
            "q := {\"b\": 1.0}\nr := [json.marshal(input), json.marshal(q), json.marshal([x | x := input.a[_]]),
                json.marshal([max([1.0, 0]), to_number(\"2.50\"), object.get({}, \"k\", 3.0)]),
                json.marshal([1.0 + 0, abs(1.0), round(2.0), -1.0 * 1]), json.marshal({1.0: 2})]",
            r#"{"a": [1.0, 2.50]}"#,
            r#"["{\"a\":[1.0,2.50]}", "{\"b\":1.0}", "[1.0,2.50]", "[1.0,2.50,3.0]", "[1,1,2,-1]", "{\"1.0\":2}"]"#,
        ),
        // An input's numbers as the JSON wrote them, exponents too (serde_json rewrites
        // `1E2` as `1e+2` and reads `-0` as 0).
        (
            "r := [json.marshal(input), json.marshal(json.unmarshal(\"[1E2, -0, 2.5e3]\"))]",
            r#"{"a": [1E2, -0, 1e2, 1e-2, 7, 1.50]}"#,
            r#"["{\"a\":[1E2,-0,1e2,1e-2,7,1.50]}", "[1E2,-0,2.5e3]"]"#,
        ),
        // A zero from OPA's `big.Float` keeps its sign: products of a non-integer, quotients.
        (
            "r := json.marshal([0 * -1.5, -0.0 * 1.5, 0 * -1, 0.0 * -1, 1e0 * -0.0, 0 / -2, -0 / 2, -0.0 / -2, 0 / 2])",
            "{}",
            r#""[-0,-0,0,0,0,-0,-0,0,0]""#,
        ),
        // Equal numbers are one set element or key: the first written stays.
        (
            "r := [json.marshal({x | some x in [1.0, 1]}), json.marshal({x | some x in [1, 1.0]}),
                json.marshal({1.0, 1}), json.marshal({1, 1.0}), 1.0 == 1]",
            "{}",
            r#"["[1.0]", "[1]", "[1.0]", "[1]", true]"#,
        ),
        // sprintf: an integer as `Number.Int` reads the text, a float with a `.`, else the
        // text, a string; inside a collection the text.
        (
            r#"r := [sprintf("%s|%s|%s|%s|%s", [1.0, 1e3, 2.50, 1.5e2, 100000000000000000000.0]),
                sprintf("%v|%v|%v|%d", [1.0, 10e-1, 1.5e2, 1.0]), sprintf("%v", [[1.0, 2.50]]),
                sprintf("x", [1e+20, 2.50, 1.0])]"#,
            "{}",
            r#"["%!s(int64=1)|1e3|%!s(float64=2.5)|%!s(float64=150)|%!s(float64=1e+20)", "1|10e-1|150|1", "[1.0, 2.50]",
                "x%!(EXTRA string=1e+20, float64=2.5, int64=1)"]"#,
        ),
        // An array index: `1.0` and `1.00` are 1; `1e0`, `10e-1` and more than 19
        // characters are no integer.
        (
            "r := [[1, 2, 3][x] | some x in [1.0, 1.00, 1e0, 10e-1, 1.0000000000000000000, input.i]]",
            r#"{"i": 2.0}"#,
            "[2, 2, 3]",
        ),
    ] {
        assert_decides(rego, input, Some(expected));
    }
}

/// A precompiled program keeps its literals' text, and two literals equal in value but
/// written differently stay two literals.
#[test]
fn a_precompiled_literal_keeps_its_text() {
    let rego = "package t\nimport rego.v1\nr := json.marshal([1, 1.0, 1e0, 1E0, -0.0])";
    let mut built = bundle(vec![("t.rego".into(), rego.as_bytes().to_vec())], &["t/r"]);
    built.modules.clear();
    let mut policy = Policy::load(&built, &path("t/r")).unwrap();
    assert_eq!(policy.mode(), Mode::Precompiled);
    assert_eq!(
        policy.evaluate(Value::from_json_str("{}").unwrap()),
        Ok(Value::from("[1,1.0,1e0,1E0,-0.0]"))
    );
}

/// `urlquery.encode` is Go's `url.QueryEscape` (answers from OPA v1.20.2): `*` escaped, `~`
/// kept, a space `+`. regorus's form encoding kept `*` and escaped `~`.
#[test]
fn urlquery_encodes_as_go_query_escape() {
    assert_decides(
        r#"r := [urlquery.encode("*.ex ample~.com/é?&="),
            urlquery.encode_object({"b": ["x*", "y~"], "a": "1 2", "c": {"q", "p"}})]"#,
        "{}",
        Some(r#"["%2A.ex+ample~.com%2F%C3%A9%3F%26%3D", "a=1+2&b=x%2A&b=y~&c=p&c=q"]"#),
    );
}

/// A JSON input number keeps its decimal value, as OPA's `json.Number` does: an integer of any
/// size, a decimal with more digits than an f64 holds, a value beyond f64's range (answers
/// from OPA v1.20.2); so does a Rego literal beyond f64's range. regorus read JSON numbers
/// through serde_json's f64: the big integer became 12345678901234567741440,
/// -0.32500000000000000002 became -0.325, 1e-400 zero, and `2.25e600` did not compile.
#[test]
fn input_numbers_keep_their_decimal_values() {
    assert_decides(
        "r := [
            input.c == 12345678901234567890123,
            input.c + 1 == 12345678901234567890124,
            input.e == -0.32500000000000000002,
            input.e != -0.325,
            input.f > 0,
            input.b == 1000000000000000000000,
            1.5e300 * 1.5e300 == 2.25e600,
            json.marshal([input.c, input.e, input.f]),
        ]",
        r#"{"b": 1e21, "c": 12345678901234567890123, "e": -0.32500000000000000002, "f": 1e-400}"#,
        Some(
            r#"[true, true, true, true, true, true, true, "[12345678901234567890123,-0.32500000000000000002,1e-400]"]"#,
        ),
    );
}

/// A JSON number is expanded only within the range numbers are computed in: an input whose
/// exponent or digits go beyond about 10^1200 is refused (serde_json's f64 refused it before
/// patch 73), not expanded into a huge integer at request time.
#[test]
fn huge_json_numbers_are_refused_not_expanded() {
    for json in [
        r#"{"a": 1e100000000}"#,
        r#"{"a": 1e-100000000}"#,
        r#"{"a": 1.5e1300}"#,
    ] {
        assert!(Value::from_json_str(json).is_err(), "{json}");
    }
    let digits = "7".repeat(5000);
    assert!(Value::from_json_str(&format!(r#"{{"a": {digits}}}"#)).is_err());
    assert!(Value::from_json_str(&format!(r#"{{"a": 0.{digits}}}"#)).is_err());
    assert_eq!(
        Value::from_json_str(r#"{"a": 0e100000000}"#).unwrap(),
        Value::from_json_str(r#"{"a": 0}"#).unwrap()
    );
    assert!(Value::from_json_str(r#"{"a": 1e1000}"#).is_ok());
}

/// `units.parse` multiplies exactly and rounds to 10 decimals (a `big.Rat`, milli being the
/// float64 0.001); `units.parse_bytes` multiplies at 64 bits and truncates; both know OPA's
/// units only (answers from OPA v1.20.2). regorus rounded `parse_bytes` to the nearest
/// integer (`7.5` was 8), took milli as exactly 1/1000 and accepted units up to Q, Y and Yi.
#[test]
fn units_are_parsed_as_opa_computes_them() {
    assert_decides(
        r#"r := [units.parse_bytes("7.5"), units.parse_bytes("-7.5"), units.parse_bytes("0.5"),
            units.parse_bytes("0.3KB"), units.parse_bytes("0.7MiB"), units.parse_bytes("1.5EiB"),
            units.parse_bytes("12345678901234567890123.7"), units.parse("1m") == 0.001,
            units.parse("1000000000000000000000m") == 1000000000000000020.8166817117,
            units.parse("-7.5m") == -0.0075, units.parse("0.00000000004"),
            units.parse("0.00000000005") == 1e-10, units.parse("1.5Ki"), units.parse("2MI"),
            units.parse("1mI"), units.parse("1e3k")]"#,
        "{}",
        Some(
            "[7, -7, 0, 300, 734003, 1729382256910270464, 12345678901234567889920, true, true, \
             true, 0, true, 1536, 2097152, 1048576, 1000000]",
        ),
    );
    for unknown in [
        r#"units.parse_bytes("1ZB")"#,
        r#"units.parse_bytes("1YiB")"#,
        r#"units.parse("1Q")"#,
        r#"units.parse("1Zi")"#,
    ] {
        assert_decides(&format!("r := {unknown}"), "{}", None);
    }
}

/// A unary minus negates (answers from OPA v1.20.2): the RVM compiler folded `- 5` in a
/// collection with a bitwise not (`[-6]`). And it goes only before a number, a variable, a
/// reference or a call, as OPA's parser has it: `-(1)`, `-[1][0]`, `-"a"`, `-true` are parse
/// errors OPA reports, which regorus accepted (and folded `{"a": -(1)}` to `-2`).
#[test]
fn unary_minus_negates_and_parses_as_opa() {
    assert_decides("r := [- 5, -5, - 2.5]", "{}", Some("[-5, -5, -2.5]"));
    assert_decides("r := {\"a\": - 5}", "{}", Some(r#"{"a": -5}"#));
    assert_decides("r := 3 - -2", "{}", Some("5"));
    assert_loaded_decides("x := [1]\nr := [-x[0], -abs(2)]", "{}", Some("[-1, -2]"));
    for (operand, unexpected) in [
        ("(1)", "( token"),
        ("[1][0]", "[ token"),
        ("{1}", "{ token"),
        ("\"a\"", "string token"),
        ("true", "true keyword"),
        ("null", "null keyword"),
    ] {
        let source = format!("package t\nr := [-{operand}]\n");
        let bundle = Bundle::from_files(vec![("t.rego".into(), source.into_bytes())]).unwrap();
        let err = Policy::load(&bundle, &path("t/r")).err().unwrap();
        assert!(
            err.to_string()
                .contains(&format!("unexpected {unexpected}: expected number")),
            "-{operand}: {err}"
        );
    }
}

/// A pass of a rule body whose value (or key) is undefined gives nothing, and the values
/// earlier passes gave stand (OPA evaluates each pass on its own; answers from OPA v1.20.2 with
/// builtin errors undefined, as OPA-Envoy). The interpreter dropped everything the rule had
/// collected when one pass's value was undefined: `r[k] := bits.lsh(1, v)` over `[65, "a"]`
/// was `{}` (OPA `{"x": 36893488147419103232}`).
#[test]
fn an_undefined_value_in_one_pass_keeps_the_others() {
    for (rego, expected) in [
        (
            "r[k] := bits.lsh(1, v) if { some v in [65, \"a\"]; k := \"x\" }",
            r#"{"x": 36893488147419103232}"#,
        ),
        (
            "r[k] := to_number(v) if { some v in [\"1\", \"a\", \"2\"]; k := v }",
            r#"{"1": 1, "2": 2}"#,
        ),
        ("r := to_number(v) if { some v in [\"1\", \"a\"] }", "1"),
        ("r := to_number(v) if { some v in [\"a\", \"1\"] }", "1"),
    ] {
        assert_loaded_decides(rego, "{}", Some(expected));
    }
}

/// A rule of a package read as a document (`config.key` through `import data.config`) that
/// calls another rule, a function or a comprehension, in a policy that calls a host function
/// (answers from OPA v1.20.2: true). The host call makes the VM suspendable, and there the
/// document lookup ran `aaa`'s body without the values of what it calls: `aaa`, and with it
/// `key`, came out undefined and the decision was `false`.
#[test]
fn a_package_read_as_a_document_evaluates_its_rules_in_a_suspendable_vm() {
    const TOKEN: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ4In0.c2ln";
    let authz = "package envoy.authz\nimport data.config\ndefault allow := false\nallow if {\n  [_, p, _] := io.jwt.decode(input.token)\n  config.key == \"k\"\n}\n";
    for aaa in [
        "aaa := key",
        "aaa := b\nb := key",
        "aaa := [x | some x in [key]]",
        "aaa := f(key)\nf(x) := x",
    ] {
        let files = vec![
            (
                "config.rego".to_string(),
                format!("package config\nkey := \"k\"\n{aaa}\n").into_bytes(),
            ),
            ("authz.rego".to_string(), authz.as_bytes().to_vec()),
        ];
        let precompiled = bundle(files.clone(), &["envoy/authz/allow"]);
        let plain = Bundle::from_files(files).unwrap();
        for (bundle, mode) in [
            (precompiled, Mode::Precompiled),
            (plain, Mode::CompiledAtLoad),
        ] {
            let mut policy = Policy::load(&bundle, &path("envoy/authz/allow")).unwrap();
            assert_eq!(policy.mode(), mode, "{aaa}");
            let input = Value::from_json_str(&format!(r#"{{"token": "{TOKEN}"}}"#)).unwrap();
            assert_eq!(
                policy.evaluate(input),
                Ok(Value::from(true)),
                "{mode:?}: {aaa}"
            );
        }
    }
}

/// `config.claims.sub` under `import data.config` is `data.config.claims.sub`, a call of
/// that rule (answer from OPA v1.20.2: true). The RVM compiler read the whole package as a
/// document and indexed it: every rule of the package ran, and one that calls a host function
/// cannot run there.
#[test]
fn an_imported_package_followed_by_a_path_calls_the_rule() {
    const TOKEN: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ4In0.c2ln";
    let files = vec![
        (
            "config.rego".to_string(),
            b"package config\nclaims := io.jwt.decode(input.token)[1]\n".to_vec(),
        ),
        (
            "authz.rego".to_string(),
            b"package envoy.authz\nimport data.config\nallow if config.claims.sub == \"x\"\n"
                .to_vec(),
        ),
    ];
    let precompiled = bundle(files.clone(), &["envoy/authz/allow"]);
    let plain = Bundle::from_files(files).unwrap();
    for (bundle, mode) in [
        (precompiled, Mode::Precompiled),
        (plain, Mode::CompiledAtLoad),
    ] {
        let mut policy = Policy::load(&bundle, &path("envoy/authz/allow")).unwrap();
        assert_eq!(policy.mode(), mode);
        let input = Value::from_json_str(&format!(r#"{{"token": "{TOKEN}"}}"#)).unwrap();
        assert_eq!(policy.evaluate(input), Ok(Value::from(true)), "{mode:?}");
    }
}

/// A computed key followed by more path (`data.config[input.k].sub`) finds the rule the key
/// names and reads into its value (answers from OPA v1.20.2). The RVM compiler looked only
/// for rules as long as the whole path: the rule was left out and the read was undefined.
/// Such a rule that calls a host function stops the evaluation with the reason (OPA: true):
/// a document lookup cannot suspend.
#[test]
fn a_computed_key_followed_by_a_path_finds_the_rule() {
    const TOKEN: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ4In0.c2ln";
    let input =
        |k: &str| Value::from_json_str(&format!(r#"{{"k": "{k}", "token": "{TOKEN}"}}"#)).unwrap();
    for authz in [
        "package envoy.authz\nallow if data.config[input.k].sub == \"x\"\n",
        "package envoy.authz\nimport data.config\nallow if config[input.k].sub == \"x\"\n",
    ] {
        let files = vec![
            (
                "config.rego".to_string(),
                b"package config\nclaims := {\"sub\": \"x\"}\njwt := io.jwt.decode(input.token)[1]\n"
                    .to_vec(),
            ),
            ("authz.rego".to_string(), authz.as_bytes().to_vec()),
        ];
        let precompiled = bundle(files.clone(), &["envoy/authz/allow"]);
        let plain = Bundle::from_files(files).unwrap();
        for (bundle, mode) in [
            (precompiled, Mode::Precompiled),
            (plain, Mode::CompiledAtLoad),
        ] {
            let mut policy = Policy::load(&bundle, &path("envoy/authz/allow")).unwrap();
            assert_eq!(policy.mode(), mode);
            assert_eq!(
                policy.evaluate(input("claims")),
                Ok(Value::from(true)),
                "{mode:?}: {authz}"
            );
            assert_eq!(policy.evaluate(input("nope")), Err(EvalError::Undefined));
            match policy.evaluate(input("jwt")) {
                Err(EvalError::Failed(reason)) => {
                    assert!(reason.contains("host function"), "{reason}")
                }
                other => panic!("{mode:?}: {authz}: {other:?}"),
            }
        }
    }
}

/// `some x in xs` and `some x` declare `x`: a rule named `x` is shadowed, not compared with
/// each element or called as the index (answers from OPA v1.20.2). regorus refused the first
/// kind at load (`var x used before definition below`), and the RVM compiled `xs[x]` after
/// `some x` as a call of rule `x` inside rule `x`: endless recursion, a stack overflow.
#[test]
fn a_declared_variable_shadows_a_rule_of_its_name() {
    let input = r#"{"s": "a/b"}"#;
    for (rego, expected) in [
        (
            "id := input.s\nr if { some id in [input.s]; id == \"a/b\" }",
            "true",
        ),
        (
            "id := x if { some id in [input.s]; x := id }\nr := id",
            r#""a/b""#,
        ),
        (
            "id := x if { x := [id | some id in [input.s]][0] }\nr := id",
            r#""a/b""#,
        ),
        (
            "id := x if { some i, id in [input.s]; x := id }\nr := id",
            r#""a/b""#,
        ),
        (
            "id := x if { some id; split(input.s, \"/\")[id] == \"b\"; x := id }\nr := id",
            "1",
        ),
        ("id := 7\nr := [id | some id in [1, 2]]", "[1, 2]"),
        ("id := 7\nr := [id | some [id, _] in [[1, 2]]]", "[1]"),
    ] {
        assert_decides(rego, input, Some(expected));
    }
}

/// Styra DAS decision paths have a segment with dots (`data.policy["com.styra.envoy.ingress"]
/// .rules.rules`); both path forms name the rule, precompiled and compiled at load (answer
/// from OPA v1.20.2).
#[test]
fn a_decision_path_with_a_quoted_segment_names_its_rule() {
    let files = vec![(
        "rules.rego".to_string(),
        b"package policy[\"com.styra.envoy.ingress\"].rules\n\nrules := {\"allowed\": input.ok}\n"
            .to_vec(),
    )];
    for path in [
        "data.policy[\"com.styra.envoy.ingress\"].rules.rules",
        "policy/com.styra.envoy.ingress/rules/rules",
    ] {
        let precompiled = bundle(files.clone(), &[path]);
        let plain = Bundle::from_files(files.clone()).unwrap();
        for (bundle, mode) in [
            (precompiled, Mode::Precompiled),
            (plain, Mode::CompiledAtLoad),
        ] {
            let mut policy = Policy::load(&bundle, &DecisionPath::parse(path).unwrap()).unwrap();
            assert_eq!(policy.mode(), mode, "{path}");
            assert_eq!(
                policy.evaluate(Value::from_json_str(r#"{"ok": true}"#).unwrap()),
                Ok(Value::from_json_str(r#"{"allowed": true}"#).unwrap()),
                "{mode:?}: {path}"
            );
        }
    }
}

/// OPA-Envoy's primer builds the decision key by key (`result["allowed"] := allow`,
/// `result.body := …`) and names the document with the path (`envoy/authz/result`); two
/// values for one key are a conflict, an evaluation error (answers from OPA v1.20.2). Such
/// rules run on the interpreter (the RVM compiler lacks rules with paths in their heads);
/// a path naming a package of plain rules is precompiled.
#[test]
fn a_decision_path_may_name_a_document_of_rules() {
    let primer = "package envoy.authz\n\ndefault allow := false\n\nallow if input.method == \"GET\"\n\nresult[\"allowed\"] := allow\n\nresult[\"headers\"] := {\"x\": \"y\"}\n\nresult.body := \"hello\"\n\nresult.body := \"other\" if input.method == \"POST\"\n";
    let files = vec![("authz.rego".to_string(), primer.as_bytes().to_vec())];
    let built = bundle(files.clone(), &["envoy/authz/result"]);
    assert!(built.program.is_none());
    for bundle in [built, Bundle::from_files(files).unwrap()] {
        let mut policy = Policy::load(&bundle, &path("envoy/authz/result")).unwrap();
        assert_eq!(policy.mode(), Mode::Interpreted);
        assert_eq!(policy.rule(), "data.envoy.authz.result");
        let decide = |policy: &mut Policy, method: &str| {
            policy.evaluate(Value::from_json_str(&format!(r#"{{"method": "{method}"}}"#)).unwrap())
        };
        assert_eq!(
            decide(&mut policy, "GET"),
            Ok(Value::from_json_str(
                r#"{"allowed": true, "body": "hello", "headers": {"x": "y"}}"#
            )
            .unwrap())
        );
        assert_eq!(
            decide(&mut policy, "PUT"),
            Ok(Value::from_json_str(
                r#"{"allowed": false, "body": "hello", "headers": {"x": "y"}}"#
            )
            .unwrap())
        );
        match decide(&mut policy, "POST") {
            Err(EvalError::Failed(reason)) => assert!(reason.contains("conflict"), "{reason}"),
            other => panic!("{other:?}"),
        }
    }

    let package =
        "package envoy.authz\n\nallowed := input.method == \"GET\"\n\nheaders := {\"x\": \"y\"}\n";
    let files = vec![("authz.rego".to_string(), package.as_bytes().to_vec())];
    let precompiled = bundle(files.clone(), &["envoy/authz"]);
    let plain = Bundle::from_files(files).unwrap();
    for (bundle, mode) in [
        (precompiled, Mode::Precompiled),
        (plain, Mode::CompiledAtLoad),
    ] {
        let mut policy = Policy::load(&bundle, &path("envoy/authz")).unwrap();
        assert_eq!(policy.mode(), mode);
        assert_eq!(
            policy.evaluate(Value::from_json_str(r#"{"method": "GET"}"#).unwrap()),
            Ok(Value::from_json_str(r#"{"allowed": true, "headers": {"x": "y"}}"#).unwrap()),
            "{mode:?}"
        );
    }
}

/// `print` runs on the RVM and on the interpreter, writes as OPA (space-separated,
/// `<undefined>` for an undefined argument, any number of arguments) and never fails the
/// body; the filter takes the messages after each evaluation (answers and messages from
/// OPA v1.20.2). The RVM compiler refused `print` (the decision ran interpreted), and the
/// interpreter failed the body on an undefined `input` argument.
#[test]
fn print_writes_as_opa_on_every_path() {
    let rego = "package t\nimport rego.v1\nf(x) := y if { print(\"f\", x); y := x + 1 }\nr if {\n  print(\"method\", input.method, input.nope, 1, {\"a\": [1]}, [input.nope], {\"s\"})\n  print(1, 2, 3, 4, 5, 6, 7, 8, 9, 10)\n  print()\n  f(1) == 2\n  count(data.u) == 1\n}\n";
    let expected = [
        "t.rego:5: method GET <undefined> 1 {\"a\": [1]} <undefined> {\"s\"}",
        "t.rego:6: 1 2 3 4 5 6 7 8 9 10",
        "t.rego:7: ",
        "t.rego:3: f 1",
        "u.rego:2: in a document",
    ];
    let files = vec![
        ("t.rego".to_string(), rego.as_bytes().to_vec()),
        (
            "u.rego".to_string(),
            b"package u\na := 1 if print(\"in a document\")\n".to_vec(),
        ),
    ];
    let precompiled = bundle(files.clone(), &["t/r"]);
    let plain = Bundle::from_files(files).unwrap();
    let policies = [
        Policy::load(&precompiled, &path("t/r")).unwrap(),
        Policy::load(&plain, &path("t/r")).unwrap(),
        Policy::load_interpreted(&plain, &path("t/r")).unwrap(),
    ];
    for (mut policy, mode) in
        policies
            .into_iter()
            .zip([Mode::Precompiled, Mode::CompiledAtLoad, Mode::Interpreted])
    {
        assert_eq!(policy.mode(), mode);
        assert!(!policy.caches(), "each evaluation prints");
        for _ in 0..2 {
            let input = Value::from_json_str(r#"{"method": "GET"}"#).unwrap();
            assert_eq!(policy.evaluate(input), Ok(Value::from(true)), "{mode:?}");
            assert_eq!(policy.take_prints(), expected, "{mode:?}");
        }
    }
}

/// An error in one definition of a function stops the evaluation even when another definition
/// answers (OPA v1.20.2 fails all of these). regorus's interpreter kept the other answer
/// without strict builtin errors, though a builtin's error is already undefined by then: a
/// conflict or an engine gap inside the second definition was answered away (fail open).
#[test]
fn an_error_in_one_function_definition_stops_the_evaluation() {
    for (rego, needle) in [
        (
            "r0 := x if { some x in [1, 2] }\nf(x) := 1\nf(x) := y if { y := r0 }\nr := f(1)",
            "multiple outputs",
        ),
        (
            "r0 := x if { some x in [1, 2] }\nf(x) := y if { y := r0 }\nf(x) := 1\nr := f(1)",
            "multiple outputs",
        ),
        (
            "r0 := x if { some x in [1, 2] }\nf(x) := 1\nf(x) := y if { y := r0 }\ndefault f(_) := true\nr := f(1)",
            "multiple outputs",
        ),
        (
            "f(x) := 1\nf(x) := hex.decode(\"abc123\")\ndefault f(_) := true\nr := f(1)",
            "not UTF-8",
        ),
    ] {
        assert_evaluation_fails(rego, "{}", needle);
    }
    // A builtin's error is undefined without strict errors: the other definition answers.
    assert_decides(
        "f(x) := 1\nf(x) := y if { y := 1 / 0 }\nr := f(1)",
        "{}",
        Some("1"),
    );
}

/// `f() := x if { … }` is a function of no arguments to OPA (called `f()`); `f() := 2` without
/// a body defines the rule `f` (answers from OPA v1.20.2). The compile checks took both for the
/// rule and refused the call as an undefined function (an Athenz Envoy policy does this).
#[test]
fn a_function_of_no_arguments_with_a_body_is_called() {
    for (rego, input, expected) in [
        (
            "f() := x if { x := input.a } else := 2\nr if { f() == 1 }",
            r#"{"a": 1}"#,
            "true",
        ),
        (
            "f() := x if { x := input.a } else := 2\nr := f()",
            r#"{"b": 1}"#,
            "2",
        ),
        ("f() := 2\nr := f", "{}", "2"),
    ] {
        assert_decides(rego, input, Some(expected));
    }
    let source = "package t\nf() := 2\nr := f()\n".to_string();
    let bundle = Bundle::from_files(vec![("t.rego".into(), source.into_bytes())]).unwrap();
    let refused = Policy::load(&bundle, &path("t/r"))
        .err()
        .unwrap()
        .to_string();
    assert!(refused.contains("undefined function data.t.f"), "{refused}");
}

/// A policy that calls `http.send` suspends at the call with the request to make, and
/// resumes with the callout's answer (also a second call, and a failed one); it never caches.
#[test]
fn http_send_suspends_and_resumes_with_the_callout_answer() {
    let rego = r#"package t
import rego.v1
user := http.send({"method": "GET", "url": sprintf("http://users.internal/u/%s", [input.user]),
                   "headers": {"x-trace": "1"}}).body
quota := http.send({"method": "GET", "url": "http://quota.internal/", "raise_error": false})
r := {"admin": user.admin, "quota": quota.status_code}"#;
    let bundle = Bundle::from_files(vec![("t.rego".into(), rego.as_bytes().to_vec())]).unwrap();
    let mut policy = Policy::load(&bundle, &path("t/r")).unwrap();
    assert_eq!(policy.mode(), Mode::CompiledAtLoad);
    assert!(!policy.caches());
    let input = Value::from_json_str(r#"{"user": "alice"}"#).unwrap();
    let Step::Send(first) = policy.start(input.clone()) else {
        panic!("no callout")
    };
    assert_eq!(
        (
            first.request.method.as_str(),
            first.request.origin.as_str(),
            first.request.path.as_str()
        ),
        ("GET", "http://users.internal", "/u/alice")
    );
    assert_eq!(
        first.request.headers,
        vec![("x-trace".to_string(), "1".to_string())]
    );
    let json = vec![
        (":status".to_string(), b"200".to_vec()),
        ("content-type".to_string(), b"application/json".to_vec()),
    ];
    let answer = (json, br#"{"admin": true}"#.to_vec());
    let Step::Send(second) = first.resume(Ok(&answer), &mut Vec::new()) else {
        panic!("no second callout")
    };
    assert_eq!(second.request.origin, "http://quota.internal");
    let Step::Done(result) = second.resume(Err("upstream reset"), &mut Vec::new()) else {
        panic!("a third callout")
    };
    assert_eq!(
        result,
        Ok(Value::from_json_str(r#"{"admin": true, "quota": 0}"#).unwrap())
    );
    // The policy evaluates other requests meanwhile, on a VM of its own.
    assert!(matches!(policy.start(input.clone()), Step::Send(_)));
    // `raise_error` (default): a failed callout is an error of the call, undefined.
    let mut step = policy.start(input);
    let result = loop {
        match step {
            Step::Send(pending) => step = pending.resume(Err("timeout"), &mut Vec::new()),
            Step::Done(result) => break result,
        }
    };
    assert_eq!(result, Err(EvalError::Undefined));
}

/// What a proxy cannot do for `http.send` is refused at load when the policy writes it, and
/// fails the evaluation with the reason when it is computed; OPA's own errors of the call are
/// undefined, as in OPA-Envoy.
#[test]
fn http_send_options_a_proxy_cannot_carry_out_are_refused() {
    for (call, line_column) in [
        (
            r#"{"method": "GET", "url": "https://a", "tls_client_cert_file": "/c"}"#,
            (3, 55),
        ),
        (
            r#"{"method": "GET", "url": "https://a", "tls_ca_cert_file": "/ca"}"#,
            (3, 55),
        ),
    ] {
        let rego = format!("package t\nimport rego.v1\nr := http.send({call})");
        let bundle = Bundle::from_files(vec![("t.rego".into(), rego.into_bytes())]).unwrap();
        match Policy::load(&bundle, &path("t/r")) {
            Err(LoadError::Refused(errors)) => {
                let e = &errors[0];
                assert_eq!(
                    (e.code, e.line, e.column),
                    ("http-send-option", line_column.0, line_column.1),
                    "{e}"
                );
            }
            Err(other) => panic!("{call}: {other}"),
            Ok(_) => panic!("{call}: loaded"),
        }
    }
    for (rego, expected) in [
        (
            r#"r := http.send(object.union({"method": "GET", "url": "https://a"}, {"tls_client_key_file": input.f}))"#,
            "tls_client_key_file",
        ),
        (r#"r := http.send({"url": "https://a"})"#, ""),
    ] {
        let source = format!("package t\nimport rego.v1\n{rego}");
        let bundle = Bundle::from_files(vec![("t.rego".into(), source.into_bytes())]).unwrap();
        let mut policy = Policy::load(&bundle, &path("t/r")).unwrap();
        match policy.start(Value::from_json_str(r#"{"f": "/k"}"#).unwrap()) {
            Step::Done(Err(EvalError::Failed(message))) if !expected.is_empty() => {
                assert!(message.contains(expected), "{rego}: {message}")
            }
            Step::Done(Err(EvalError::Undefined)) if expected.is_empty() => {}
            Step::Done(other) => panic!("{rego}: {other:?}"),
            Step::Send(_) => panic!("{rego}: sent"),
        }
    }
}

/// Only a compiled program can wait on a callout: a policy the RVM compiler refuses (here
/// for `with`) and that calls `http.send` is refused at load, at the call, with the reason.
#[test]
fn http_send_in_a_policy_the_interpreter_would_run_is_refused() {
    let rego = r#"package t
import rego.v1
r if wants with input.want as "x"
wants if http.send({"method": "GET", "url": "http://a/"}).status_code == 200
"#;
    let bundle = Bundle::from_files(vec![("t.rego".into(), rego.as_bytes().to_vec())]).unwrap();
    match Policy::load(&bundle, &path("t/r")) {
        Err(LoadError::Unsupported(e)) => {
            assert_eq!((e.file.as_str(), e.line), ("t.rego", 4), "{e:?}");
            assert!(
                e.message.contains("http.send needs the compiled program"),
                "{e:?}"
            );
        }
        Err(other) => panic!("{other}"),
        Ok(policy) => panic!("loaded ({:?})", policy.mode()),
    }
}

/// `opa.runtime()` without a plugin configuration (`policy-bundler eval`): the environment
/// and the version; OPA leaves `config` out when it has none.
#[test]
fn opa_runtime_without_a_configuration_has_env_and_version() {
    assert_decides(
        r#"r := [object.keys(opa.runtime()), is_object(opa.runtime().env)]"#,
        "{}",
        Some(r#"[["env", "version"], true]"#),
    );
}

/// What OPA moves out of a negated expression it evaluates in its order: references with
/// constant keys into `input` or base data first, then the rest (comprehensions, references
/// with variable keys, rule references) as they appear. A comprehension whose body fails (a
/// rule conflict) fails the evaluation when OPA reaches it, and only then (answers from OPA
/// v1.20.2). The comprehension stayed inside the negation, after a reference moved out, so
/// `not ([r0 | true] < data.d[input])` was undefined where OPA fails (fail open).
#[test]
fn a_negated_comprehension_is_evaluated_where_opa_evaluates_it() {
    let conflict = "r0 := v if { some _, v in input }\n";
    let input = r#"{"size": "5", "items": [], "k": "x"}"#;
    for body in [
        "not ([r0 | true] < data.d[input])",
        "k := \"x\"; not ([r0 | true] < input.h[k])",
        "not ([r0 | true] < zz)",
        "not ([r0 | true] < data.t.zz)",
    ] {
        let rego = format!("{conflict}zz := 1 if false\nr := 1 if {{ {body} }}");
        assert_evaluation_fails(&rego, input, "multiple outputs");
    }
    for body in [
        "not ([r0 | true] < input.missing)",
        "not ([r0 | true] < data.d.x)",
        "not (data.d[input] > [r0 | true])",
    ] {
        let rego = format!("{conflict}r := 1 if {{ {body} }}");
        assert_decides(&rego, input, None);
    }
}

/// An `http.send` with `cache` is answered from the answers the VM kept, without a callout,
/// as long as the response's `Cache-Control` says; without `cache` it is always sent.
#[test]
fn http_send_with_cache_is_answered_from_kept_answers() {
    let rego = r#"package t
import rego.v1
r := http.send({"method": "GET", "url": "http://users.internal/u", "cache": input.cache}).body"#;
    let bundle = Bundle::from_files(vec![("t.rego".into(), rego.as_bytes().to_vec())]).unwrap();
    let mut policy = Policy::load(&bundle, &path("t/r")).unwrap();
    let answer = (
        vec![
            (":status".to_string(), b"200".to_vec()),
            ("content-type".to_string(), b"application/json".to_vec()),
            ("cache-control".to_string(), b"max-age=60".to_vec()),
        ],
        br#"{"n": 1}"#.to_vec(),
    );
    let expected = Ok(Value::from_json_str(r#"{"n": 1}"#).unwrap());
    for cache in [true, false] {
        let input = Value::from_json_str(&format!(r#"{{"cache": {cache}}}"#)).unwrap();
        let Step::Send(pending) = policy.start(input.clone()) else {
            panic!("no callout (cache {cache})")
        };
        let Step::Done(result) = pending.resume(Ok(&answer), &mut Vec::new()) else {
            panic!("another callout")
        };
        assert_eq!(result, expected);
        match policy.start(input) {
            Step::Done(result) if cache => assert_eq!(result, expected),
            Step::Send(_) if !cache => {}
            Step::Done(_) => panic!("answered from the cache without `cache`"),
            Step::Send(_) => panic!("sent again with `cache`"),
        }
    }
}

/// `sprintf` writes the empty set as OPA's Rego text does, `set()` (`{}` is the empty object),
/// also nested and as an extra argument (answers from OPA v1.20.2).
#[test]
fn sprintf_writes_the_empty_set_as_rego_does() {
    assert_decides(
        r#"r := [sprintf("%v", [set()]), sprintf("%v", [[set(), {}, {1}]]), sprintf("x", [set()])]"#,
        "{}",
        Some(r#"["set()", "[set(), {}, {1}]", "x%!(EXTRA string=set())"]"#),
    );
}

/// OPA's operators called by their builtin names decide as the infix forms, a function of
/// the policy's own with such a name wins, and a wrong operand is a builtin error (undefined,
/// the default applies) (answers from OPA v1.20.2).
#[test]
fn operators_called_by_name_decide_as_the_infix_forms() {
    assert_decides(
        r#"r := [plus(1, 2), minus(3, 1), minus({1, 2}, {1}), mul(2, 3), div(6, 4), rem(7, 2),
            lt(1, 2), lte(2, 1), gt(1, "a"), gte(1, 1), equal(1, 1.0), neq(1, 2),
            and({1, 2}, {2}), or({1}, {2})]"#,
        "{}",
        Some(r#"[3, 2, [2], 6, 1.5, 1, true, false, false, true, true, true, [2], [1, 2]]"#),
    );
    assert_decides("r := x if { plus(1, 2, x) }", "{}", Some("3"));
    assert_decides("r if { lt(input.a, 2) }", r#"{"a": 3}"#, None);
    assert_decides(
        "lt(a, b) := \"mine\"\nr := lt(1, 2)",
        "{}",
        Some(r#""mine""#),
    );
    for (call, input) in [
        ("plus(input.a, 1)", r#"{"a": "x"}"#),
        ("div(input.a, 0)", r#"{"a": 1}"#),
        ("rem(input.a, 2)", r#"{"a": 1.5}"#),
        ("minus(input.a, 2)", r#"{"a": [1]}"#),
        ("and(input.a, {2})", r#"{"a": [1]}"#),
    ] {
        assert_decides(
            &format!("default r := \"d\"\nr := {call}"),
            input,
            Some(r#""d""#),
        );
    }
}

/// `json.marshal` writes a non-string key as its JSON text and orders the entries by those
/// texts, as OPA's Go map does; of keys with one text, the greatest in Rego's order wins
/// (answers from OPA v1.20.2).
#[test]
fn json_marshal_orders_non_string_keys_by_their_text() {
    assert_decides(
        r#"r := [json.marshal(object.get({}, "_", {null: 1, "": 2, "d": 3, 1: 4, "0": 5, true: 6, [1]: 7, "[": 8})),
            json.marshal(object.get({}, "_", {"1": 4, 1: 5})),
            json.marshal_with_options(object.get({}, "_", {null: 1, "": 2}), {"pretty": true})]"#,
        "{}",
        Some(
            r#"["{\"\":2,\"0\":5,\"1\":4,\"[\":8,\"[1]\":7,\"d\":3,\"null\":1,\"true\":6}",
                "{\"1\":4}", "{\n\t\"\": 2,\n\t\"null\": 1\n}"]"#,
        ),
    );
}

/// A policy decides each request afresh after an evaluation that failed inside a loop: a
/// `walk` over a collection with two values conflicts every time (OPA v1.20.2 fails each).
/// regorus's interpreter kept the loop's variables of the failed evaluation, so the next
/// request through the same policy was undefined (or `{}` for a partial object: fail open).
#[test]
fn a_failed_evaluation_leaves_no_loop_state_behind() {
    let rego = "package t\nr := v if { walk({1, 2}, [_, v]) }\n";
    let plain = Bundle::from_files(vec![("t.rego".into(), rego.as_bytes().to_vec())]).unwrap();
    let mut policy = Policy::load_interpreted(&plain, &path("t/r")).unwrap();
    for _ in 0..3 {
        let decided = policy.evaluate(Value::new_object());
        assert!(
            matches!(&decided, Err(EvalError::Failed(m)) if m.contains("multiple outputs")),
            "{decided:?}"
        );
    }
}

/// `graph.reachable_paths` gives OPA's paths: one ends at a vertex without edges (edges that
/// are not an array or a set are none), before a vertex already on it, or before a vertex
/// the graph lacks; `graph.reachable` and `walk` run as OPA's (answers from OPA v1.20.2).
#[test]
fn graph_builtins_and_walk_decide_as_opa() {
    assert_decides(
        r#"r := [graph.reachable_paths(object.get({}, "_", {"a": ["b", "x"], "b": [], "c": null, "d": true}), {"a", "c", "d", "zz"}),
            graph.reachable_paths({"a": ["b", "c"], "b": ["c"], "c": ["a"]}, ["a"]),
            graph.reachable(object.get({}, "_", {"a": "b", "b": ["c"], "c": {"d"}}), ["a", "b"]),
            [x | walk({"a": [1, {"b": 2}]}, x)],
            {p | walk(input, [p, 2])}]"#,
        r#"{"a": [1, {"b": 2}], "c": 2}"#,
        Some(
            r#"[[["a"], ["a", "b"], ["c"], ["d"]], [["a", "b", "c"], ["a", "c"]], ["a", "b", "c"],
                [[[], {"a": [1, {"b": 2}]}], [["a"], [1, {"b": 2}]], [["a", 0], 1], [["a", 1], {"b": 2}], [["a", 1, "b"], 2]],
                [["a", 1, "b"], ["c"]]]"#,
        ),
    );
}

/// An integer operand is read from the number's text, as OPA's `builtins.IntOperand` reads
/// it: `1.0` is one, `1e0` is a builtin error (undefined, the default applies), whether
/// written in the policy or in the request (answers from OPA v1.20.2).
#[test]
fn integer_operands_are_read_from_the_number_text() {
    for call in [
        "substring(\"abcd\", N, 1)",
        "array.slice([1, 2, 3], N, 2)",
        "regex.find_n(\"a\", \"aaa\", N)",
        "regex.find_all_string_submatch_n(\"a\", \"aaa\", N)",
        "time.add_date(0, N, 0, 0)",
        "strings.split_n(\"a,b\", \",\", N)",
    ] {
        for (n, input, integer) in [
            ("1e0", "{}", false),
            ("input.n", r#"{"n": 1E0}"#, false),
            ("1.0", "{}", true),
            ("input.n", r#"{"n": 1.00}"#, true),
        ] {
            let rego = format!("default r := \"d\"\nr := {}", call.replace('N', n));
            let [decided, interpreted] = decide(&rego, input);
            assert_eq!(decided, interpreted, "{rego} for {input}");
            assert_eq!(
                decided.as_deref() != Some("\"d\""),
                integer,
                "{rego} for {input}: {decided:?}"
            );
        }
    }
}

/// `strings.split_n` keeps the first `n` parts of Go's `strings.SplitN(s, d, n + 1)`, or for a
/// negative `n` the last `-n` parts; an empty delimiter splits characters (answers from OPA
/// v1.20.2).
#[test]
fn strings_split_n_keeps_opas_parts() {
    assert_decides(
        r#"r := [strings.split_n("a,b,c", ",", 0), strings.split_n("a,b,c", ",", -1),
            strings.split_n("a,b,c", ",", 1), strings.split_n("a,b,c", ",", 2),
            strings.split_n("a,b,c", ",", 5), strings.split_n("a,b,c", ",", -2),
            strings.split_n("a,b,c", ",", -9), strings.split_n("abc", "", 2),
            strings.split_n("", ",", 2), strings.split_n("", "", 2), strings.split_n("", "", -1),
            strings.split_n("", ",", -1), strings.split_n("ab€c", "", 3),
            strings.split_n("ab€c", "", -1), strings.split_n("x", "x", 3),
            strings.split_n(",,", ",", -2), strings.split_n("a", ",", 9223372036854775807)]"#,
        "{}",
        Some(
            r#"[[], ["c"], ["a"], ["a", "b"], ["a", "b", "c"], ["b", "c"], ["a", "b", "c"],
                ["a", "b"], [""], [], [], [""], ["a", "b", "€"], ["c"], ["", ""], ["", ""], ["a"]]"#,
        ),
    );
}

/// `array.flatten` replaces each item that is an array by its items, one level deep (answers
/// from OPA v1.20.2).
#[test]
fn array_flatten_flattens_one_level() {
    assert_decides(
        r#"r := [array.flatten([]), array.flatten([[], [[]], 1, "x", {"a": [1]}, {1}, [2, [3]]])]"#,
        "{}",
        Some(r#"[[], [[], 1, "x", {"a": [1]}, [1], 2, [3]]]"#),
    );
    assert_decides(
        "default r := \"d\"\nr := array.flatten(input.a)",
        r#"{"a": "x"}"#,
        Some(r#""d""#),
    );
}

/// `walk(x)` without an output argument iterates as the relation does, the call standing for
/// each `[path, value]` pair (`[path, value] := walk(x)`, OPA's issue 7656 case; answers from
/// OPA v1.20.2). regorus matched each pair against `x` and found none: `{}`, undefined.
#[test]
fn walk_without_an_output_stands_for_each_pair() {
    assert_decides(
        r#"x := {"a": [{"b": [{"c": [{"aa": "AA"}, {"bb": "BB"}, {"cc": "CC"}, {"dd": "DDD"}]}]}]}
r := [{path: value | [path, value] := walk(x); count(value) == 2},
    count([y | y := walk(input)]), [y | walk({"a": 1}) = y],
    [true | [_, "secret"] = walk(input)]]"#,
        r#"{"a": [1, {"b": "secret"}], "c": 2}"#,
        Some(
            r#"[{"[\"a\",0,\"b\",0,\"c\",0,\"aa\"]": "AA", "[\"a\",0,\"b\",0,\"c\",1,\"bb\"]": "BB",
                 "[\"a\",0,\"b\",0,\"c\",2,\"cc\"]": "CC"},
                6, [[[], {"a": 1}], [["a"], 1]], [true]]"#,
        ),
    );
}

/// `io.jwt.encode_sign` runs on both engines; with ES* or PS* and a private key of that kind,
/// which OPA signs and this filter does not, the evaluation fails (`status_on_error`) on both,
/// never undefined (a `default` would answer where OPA gives a token).
#[test]
fn encode_sign_decides_as_opa_or_stops() {
    assert_decides(
        r#"r := io.jwt.encode_sign({"alg": "HS256"}, {"a": 1}, {"kty": "oct", "k": "AyM1"})"#,
        "{}",
        Some(r#""eyJhbGciOiJIUzI1NiJ9.eyJhIjoxfQ.RpmgSucwPKnVqn-SD35k8YjsH4p2i1O8x-5KUHOJrUo""#),
    );
    let rego = r#"default r := "d"
r := io.jwt.encode_sign({"alg": "ES256"}, {"a": 1}, {"kty": "EC", "crv": "P-256", "d": "jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI"})"#;
    for error in decide_errors(rego) {
        assert!(
            error.contains("signing with ES256 is not available"),
            "{error}"
        );
    }
}

/// `not equal(a, b)` is `not a == b`: OPA rewrites both to a unification, so an operand that
/// is undefined does not fail the body (other calls, `lt`, `neq`, move their references out
/// first and fail it). A function of the policy's own named `equal` is refused (answers from
/// OPA v1.20.2).
#[test]
fn negated_equal_by_name_is_negated_equality() {
    for (rego, expected) in [
        ("r if { not equal(input.n, true) }", Some("true")),
        ("r if { not equal(input.n, input.m) }", Some("true")),
        ("r if { not input.n == true }", Some("true")),
        ("r if { not equal(count(input.n), 1) }", None),
        ("r if { not lt(input.n, 1) }", None),
        ("r if { not neq(input.n, true) }", None),
    ] {
        assert_decides(rego, "{}", expected);
    }
    let rego = "package t\nequal(a, b) := true\nr if { not equal(input.n, 1) }\n";
    let plain = Bundle::from_files(vec![("t.rego".into(), rego.as_bytes().to_vec())]).unwrap();
    let refused = Policy::load(&plain, &path("t/r")).err().unwrap();
    assert_eq!(refused.code(), "function-named-equal", "{refused}");
}

/// An array pattern matches only an array and an object pattern only an object, whatever
/// their lengths: the RVM compared lengths only, so `[]` matched `{}` and `""`, `{}` matched
/// `[]` (answers from OPA v1.20.2; the interpreter checked the kind).
#[test]
fn patterns_match_only_their_kind() {
    assert_decides(
        r#"r := [count([1 | [] = input.o]), count([1 | {} = input.a]), count([1 | {} = input.s]),
            count([1 | [] = input.s]), count([1 | [x, y] := input.a2]),
            count([1 | {"a": z} := input.oa]), count([1 | walk({}, [_, []])])]"#,
        r#"{"o": {}, "a": [], "s": "", "a2": [1, 2], "oa": {"a": 1}}"#,
        Some("[0, 0, 0, 0, 1, 1, 0]"),
    );
}

/// A number beyond what the engine computes (OPA's `big.Float` goes much further) stops the
/// evaluation on both engines: the interpreter took the overflow for a builtin error, so the
/// expression was undefined and an `else` or `default` answered where OPA gives a number.
#[test]
fn a_number_beyond_the_engine_stops_the_evaluation() {
    for rego in [
        "r := (1 / bits.lsh(12345678901234567890, 65536)) if { true } else := -3.25",
        "default r := \"d\"\nr := 0.5 * bits.lsh(1, 65536)",
    ] {
        let [decided, interpreted] = decide_errors(rego);
        assert!(
            decided.contains("numeric overflow"),
            "RVM: {rego}: {decided}"
        );
        assert!(
            interpreted.contains("numeric overflow"),
            "interpreter: {rego}: {interpreted}"
        );
    }
}

/// The RVM's and the interpreter's errors for `rego` (each must fail).
fn decide_errors(rego: &str) -> [String; 2] {
    let source = format!("package t\n{rego}\n");
    let plain = Bundle::from_files(vec![("t.rego".into(), source.into_bytes())]).unwrap();
    [Policy::load, Policy::load_interpreted].map(|load| {
        match load(&plain, &path("t/r"))
            .unwrap()
            .evaluate(Value::new_object())
        {
            Err(EvalError::Failed(message)) => message,
            other => panic!("{rego}: {other:?}"),
        }
    })
}

/// `json.remove` and `json.filter` read a string path as OPA's `parsePath`: leading `/`s
/// dropped (`"/user/password"`), `~1` and `~0` unescaped, and the empty path (`""` or `[]`)
/// is no path at all (answers from OPA v1.20.2). regorus kept a leading empty segment, and
/// took an empty path for the whole document (`json.remove(x, [[]])` was undefined).
#[test]
fn json_paths_are_read_as_opa_reads_them() {
    assert_decides(
        r#"r := [json.remove({"a": {"b": 1}, "": {"a": 3}}, ["/a"]),
            json.remove({"a": {"b": 1}, "": 2}, ["/"]),
            json.remove({"a": {"b": 1}, "": 2}, [[]]),
            json.remove({"a": {"b": 1}, "": 2}, [""]),
            json.remove({"a": {"b": 1}, "c": 2}, [[], ["c"]]),
            json.remove({"a~b": 1, "c/d": 2, "e": 3}, ["a~0b", "c~1d"]),
            json.filter({"a": {"b": 1}, "": {"a": 3}}, ["/a"]),
            json.filter({"a": {"b": 1}, "": 2}, [[]]),
            json.filter({"a": {"b": 1, "c": 2}}, ["a/b", ""])]"#,
        "{}",
        Some(
            r#"[{"": {"a": 3}}, {"a": {"b": 1}}, {"": 2, "a": {"b": 1}}, {"": 2, "a": {"b": 1}},
                {"a": {"b": 1}}, {"e": 3}, {"a": {"b": 1}}, {}, {"a": {"b": 1}}]"#,
        ),
    );
}

/// `replace` and `strings.replace_n` with an empty string to replace: OPA inserts around every
/// byte, so in a string with a multi-byte character its answer is not UTF-8, which no Rust
/// string holds; the evaluation stops there (fail closed), and in ASCII the answers agree
/// (OPA v1.20.2: `replace("ÄÖ", "", "-")` has bytes of `Ä` apart; regorus answered per
/// character, a different string).
#[test]
fn an_empty_replacement_key_in_non_ascii_text_stops_the_evaluation() {
    assert_decides(
        r#"r := [replace("ab", "", "-"), strings.replace_n({"": "-"}, "ab"),
            strings.replace_n({"": "-", "Ä": "A", "Ö": "O"}, "ÄÖ")]"#,
        "{}",
        Some(r#"["-a-b-", "-a-b-", "-A-O-"]"#),
    );
    for rego in [
        r#"r := replace("ÄÖ", "", "-")"#,
        r#"r := strings.replace_n({"": "-"}, "ÄÖ")"#,
        r#"r := strings.replace_n({"": "-", "Ä": "A"}, "ÄÖ")"#,
    ] {
        for error in decide_errors(rego) {
            assert!(error.contains("not UTF-8"), "{rego}: {error}");
        }
    }
}

/// Statements run in the order they are written unless one must wait for a variable a later
/// one binds, as OPA's `reorderBodyForSafety` orders them: an array comprehension over two
/// independent loops lists its items in OPA's order (answers from OPA v1.20.2). regorus's
/// scheduler took statements by the names of the variables they bind, so a `walk(x, out)`
/// ran after a later `some`.
#[test]
fn independent_loops_run_in_the_order_written() {
    assert_decides(
        r#"r := [[v, w] | walk({"a": 1}, [_, v]); some w in [1, 2]]"#,
        "{}",
        Some(r#"[[{"a": 1}, 1], [{"a": 1}, 2], [1, 1], [1, 2]]"#),
    );
    assert_decides(
        r#"r := [[zeta, alpha] | some zeta in ["z1", "z2"]; some alpha in ["a1", "a2"]]"#,
        "{}",
        Some(r#"[["z1", "a1"], ["z1", "a2"], ["z2", "a1"], ["z2", "a2"]]"#),
    );
    assert_decides(
        r#"r := [[x, y] | x := input.xs[_]; y := [x, 10][_]]"#,
        r#"{"xs": [1, 2]}"#,
        Some("[[1, 1], [1, 10], [2, 2], [2, 10]]"),
    );
}

/// `units.parse` and `units.parse_bytes` read an amount as OPA does: a dot right after the
/// digits belongs to it (`1.`, `1.k`), and an amount without a digit is no number (answers
/// from OPA v1.20.2: `units.parse(".")` fails, undefined in OPA-Envoy; regorus gave 0).
#[test]
fn unit_amounts_are_read_as_opa_reads_them() {
    assert_decides(
        r#"r := [units.parse("1."), units.parse("1.k"), units.parse_bytes("1.KB"), units.parse(".5"),
            units.parse("-.5"), units.parse("1e3k"), units.parse_bytes("0.")]"#,
        "{}",
        Some("[1, 1000, 1000, 0.5, -0.5, 1000000, 0]"),
    );
    for amount in [".", "-.", ".k", "1.5.5"] {
        assert_decides(
            &format!("default r := \"d\"\nr := units.parse({amount:?})"),
            "{}",
            Some(r#""d""#),
        );
    }
}
