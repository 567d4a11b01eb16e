//! Black-box runs of the real `policy-bundler` binary in a temporary directory.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers: a failure should stop the test

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bundler(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_policy-bundler"))
        .args(args)
        .output()
        .expect("policy-bundler runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Asserts the exit code and a piece of the error output, showing all of it on failure.
fn assert_fails(out: &Output, code: i32, needle: &str) {
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{stderr}");
    assert!(stderr.contains(needle), "{stderr}");
}

/// Asserts exit code 1 and the first line of the error output: where the author must look.
fn assert_first_error_line(out: &Output, expected: &str) {
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(
        stderr.lines().next().unwrap_or_default(),
        expected,
        "{stderr}"
    );
}

struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("zerohop-cli-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn write(&self, path: &str, content: &str) -> &Self {
        let path = self.0.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
        self
    }

    fn path(&self, rel: &str) -> String {
        self.0.join(rel).to_string_lossy().into_owned()
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn demo_policy() -> &'static Path {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../testdata/policies/demo"
    ))
}

#[test]
fn check_reports_syntax_errors_at_file_line_column() {
    let dir = Dir::new("check");
    dir.write(
        "policy/authz/p.rego",
        "package authz\n\nimport rego.v1\n\nallow if {\n  input.x ==\n}\n",
    );
    let out = bundler(&["check", &dir.path("policy")]);
    assert_first_error_line(
        &out,
        &format!(
            "error: {}:7:1: expecting expression",
            dir.path("policy/authz/p.rego")
        ),
    );
}

#[test]
fn check_reports_a_missing_decision_rule() {
    let out = bundler(&[
        "check",
        demo_policy().to_str().unwrap(),
        "-e",
        "envoy/authz/nope",
    ]);
    assert_fails(&out, 1, "decision rule data.envoy.authz.nope");
}

#[test]
fn build_inspect_eval_round_trip() {
    let dir = Dir::new("round-trip");
    let bundle = dir.path("bundle.tar.gz");
    let out = bundler(&[
        "build",
        demo_policy().to_str().unwrap(),
        "-o",
        &bundle,
        "-r",
        "v7",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("precompiled: data.envoy.authz.allow"));

    let out = bundler(&["inspect", &bundle, "--format", "json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["revision"], "v7");
    assert_eq!(
        summary["program"]["entrypoints"],
        serde_json::json!(["data.envoy.authz.allow"])
    );
    assert_eq!(
        summary["program"]["regorus"],
        zerohop_filter::REGORUS_VERSION
    );
    assert_eq!(summary["runs_on_this_filter"], true);
    // What each request builds of `input`: the demo policy's reads, and nothing else.
    assert_eq!(
        summary["program"]["input"],
        serde_json::json!([
            ["attributes", "request", "http", "method"],
            ["parsed_path"],
            ["source_principal"]
        ])
    );
    let out = bundler(&["inspect", &bundle]);
    assert!(text(&out.stdout).contains(
        "reads:       input.attributes.request.http.method, input.parsed_path, input.source_principal\n"
    ));
    let files: Vec<&str> = summary["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        files,
        [
            ".manifest",
            "authz.rego",
            "data.json",
            ".zerohop/program.rvm"
        ]
    );

    dir.write(
        "operator.json",
        r#"{"parsed_path": ["admin"], "source_principal": "spiffe://cluster.local/ns/ops/sa/admin",
            "attributes": {"request": {"http": {"method": "DELETE"}}}}"#,
    );
    let out = bundler(&["eval", "-b", &bundle, "-i", &dir.path("operator.json")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let decision: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        decision,
        serde_json::json!({"allowed": true, "headers": {"x-zerohop-identity": "spiffe://cluster.local/ns/ops/sa/admin"}})
    );

    dir.write("anonymous.json", r#"{"parsed_path": ["products"]}"#);
    let out = bundler(&[
        "eval",
        "-b",
        &bundle,
        "-i",
        &dir.path("anonymous.json"),
        "-p",
        "envoy/authz/allow",
    ]);
    let decision: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(decision["allowed"], false);
    assert_eq!(decision["http_status"], 403);
}

/// `eval --request` runs an HTTP request through the filter's own request path: what it prints
/// is what the proxy does with the request, under the plugin configuration given.
#[test]
fn eval_of_a_request_answers_as_the_proxy() {
    let dir = Dir::new("request");
    let bundle = dir.path("bundle.tar.gz");
    let out = bundler(&["build", demo_policy().to_str().unwrap(), "-o", &bundle]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let eval = |request: &str, config: Option<&str>| {
        dir.write("request.json", request);
        let mut args = vec!["eval", "-b", &bundle, "--request"];
        let request = dir.path("request.json");
        args.push(&request);
        let config_path = dir.path("config.json");
        if let Some(config) = config {
            dir.write("config.json", config);
            args.extend(["--config", &config_path]);
        }
        let out = bundler(&args);
        assert!(out.status.success(), "{}", text(&out.stderr));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };

    let shop = r#"{"method": "GET", "path": "/products/7",
        "source": {"address": "10.0.0.7:51000", "principal": "spiffe://cluster.local/ns/shop/sa/web"}}"#;
    let forwarded = eval(shop, None);
    assert_eq!(forwarded["action"], "forward", "{forwarded}");
    let headers = forwarded["request_headers"].as_array().unwrap();
    assert!(
        headers.contains(&serde_json::json!([
            "x-zerohop-identity",
            "spiffe://cluster.local/ns/shop/sa/web"
        ])),
        "{forwarded}"
    );

    let anonymous = r#"{"method": "DELETE", "path": "/products/7", "headers": {"X-Trace": "1"}}"#;
    assert_eq!(
        eval(anonymous, None),
        serde_json::json!({
            "action": "reply",
            "status": 403,
            "headers": [["x-zerohop-denied-by", "envoy.authz"]],
            "body": "zerohop: access denied\n",
        })
    );
    // The plugin configuration applies: under dry-run the denied request goes through.
    assert_eq!(
        eval(anonymous, Some(r#"{"dry_run": true}"#))["action"],
        "forward"
    );

    // A request file with a key the filter would not see is refused, naming the key.
    dir.write("typo.json", r#"{"path": "/", "header": {}}"#);
    let out = bundler(&["eval", "-b", &bundle, "--request", &dir.path("typo.json")]);
    assert_fails(&out, 1, "unknown key `header`");
    // So is a configuration the filter refuses, with the filter's reason.
    dir.write("bad.json", r#"{"status_on_error": 99}"#);
    let out = bundler(&[
        "eval",
        "-b",
        &bundle,
        "--request",
        &dir.path("request.json"),
        "--config",
        &dir.path("bad.json"),
    ]);
    assert_fails(&out, 1, "status_on_error");
}

#[test]
fn eval_of_an_undefined_decision_fails() {
    let dir = Dir::new("undefined");
    dir.write(
        "p/p.rego",
        "package p\n\nimport rego.v1\n\nallow if input.ok\n",
    );
    dir.write("in.json", "{}");
    let bundle = dir.path("b.tar.gz");
    assert!(
        bundler(&["build", &dir.path("p"), "-o", &bundle, "-e", "p/allow"])
            .status
            .success()
    );
    let out = bundler(&[
        "eval",
        "-b",
        &bundle,
        "-i",
        &dir.path("in.json"),
        "-p",
        "p/allow",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr).trim(),
        "error: data.p.allow: undefined decision"
    );
}

#[test]
fn usage_and_io_errors_exit_2() {
    let out = bundler(&["build"]);
    assert_eq!(out.status.code(), Some(2));
    let out = bundler(&["inspect", "/nonexistent/bundle.tar.gz"]);
    assert_fails(&out, 2, "reading bundle /nonexistent/bundle.tar.gz");
}

#[test]
fn inspect_rejects_a_broken_bundle_with_exit_1() {
    let dir = Dir::new("broken");
    dir.write("b.tar.gz", "not gzip at all");
    let out = bundler(&["inspect", &dir.path("b.tar.gz")]);
    assert_fails(&out, 1, "bundle is not a gzip stream");
}

#[test]
fn check_refuses_functions_the_filter_lacks() {
    let dir = Dir::new("missing-builtin");
    dir.write(
        "p/p.rego",
        "package p\n\nimport rego.v1\n\nallow if {\n\tcerts := crypto.x509.parse_certificates(input.cert)\n\tcerts[0].subject == \"alice\"\n}\n",
    );
    let out = bundler(&["check", &dir.path("p"), "-e", "p/allow"]);
    assert_first_error_line(
        &out,
        &format!(
            "error: {}:6:44: Unknown function: 'crypto.x509.parse_certificates'",
            dir.path("p/p.rego")
        ),
    );
}

#[test]
fn check_warns_about_rego_that_runs_interpreted_and_strict_fails_on_it() {
    let dir = Dir::new("lint");
    dir.write(
        "p/p.rego",
        "package p\n\nimport rego.v1\n\ninner if input.x == 1\n\nallow if inner with input.x as 1\n",
    );
    let warned = bundler(&["check", &dir.path("p"), "-e", "p/allow"]);
    assert_eq!(warned.status.code(), Some(0), "{}", text(&warned.stderr));
    let expected = format!(
        "{}:7:16: warning[with-keyword]: `with` in a policy module: the RVM compiler lacks it, so decisions that reach it run on the regorus interpreter",
        dir.path("p/p.rego")
    );
    assert!(
        text(&warned.stderr).lines().any(|l| l == expected),
        "{}",
        text(&warned.stderr)
    );

    let strict = bundler(&["check", &dir.path("p"), "-e", "p/allow", "--strict"]);
    assert_eq!(strict.status.code(), Some(1));
    let expected = expected.replace("warning[", "error[");
    assert!(
        text(&strict.stderr).lines().any(|l| l == expected),
        "{}",
        text(&strict.stderr)
    );
}

/// Programs OPA's compiler refuses (each checked against OPA v1.20.2), the rule that follows
/// `package t`, and the first error line `check` gives: line:column, code, OPA's message.
const REFUSED: &[(&str, &str)] = &[
    ("p if { x }", "3:8: unsafe-var: var x is unsafe"),
    ("p := x if { input.a }", "3:6: unsafe-var: var x is unsafe"),
    ("p if { not input.a[_] }", "3:20: unsafe-var: var _ is unsafe"),
    ("p if { some x; input.a }", "3:13: unused-declared-var: declared var x unused"),
    ("p if { every x in input.a { true } }", "3:14: unused-declared-var: declared var x unused"),
    ("p if { x := 1; x := 2 }", "3:16: var-assigned-above: var x assigned above"),
    ("p if { some x; x := 1 }", "3:16: var-declared-above: var x declared above"),
    ("p if { input.a == x; x := 1 }", "3:22: var-referenced-above: var x referenced above"),
    ("f(x) := y if { x := 1; y := 2 }", "3:16: arg-redeclared: arg x redeclared"),
    ("p if { 1 := input.a }", "3:8: cannot-assign: cannot assign to number"),
    ("default p := input.a", "3:14: illegal-default: illegal default rule (value cannot contain ref)"),
    ("default p := [1, x]", "3:18: illegal-default: illegal default rule (value cannot contain var)"),
    (
        "p[x] := 1 if { x := input.a } else := 2",
        "3:31: illegal-else: else keyword cannot be used on rules with variables in head",
    ),
    (
        "p if startswith(1, \"a\")",
        "3:6: builtin-type: startswith: invalid argument(s): have (number, string), want (search: string, base: string)",
    ),
    (
        "p if upper(input.x, 2)",
        "3:6: builtin-type: upper: invalid argument(s): have (any, number), want (x: string)",
    ),
    (
        "p if { x := 1; lower(x) == \"a\" }",
        "3:16: builtin-type: lower: invalid argument(s): have (number), want (x: string)",
    ),
    (
        "p if \"a\" + 1 > 0",
        "3:7: builtin-type: plus: invalid argument(s): have (string, number), want (x: number, y: number)",
    ),
    (
        "p if count([1], 2, 3)",
        "3:6: builtin-arity: count: arity mismatch: have (array<number>, number, number), want (collection: any<string, array[any], object[any: any], set[any]>)",
    ),
    ("p if nofunc(1)", "3:6: undefined-function: undefined function nofunc"),
    ("p if { q(1) }\n\nq := 1", "3:8: undefined-function: undefined function data.t.q"),
    (
        "p if re_match(\"a\", \"b\")",
        "3:6: deprecated-builtin: deprecated built-in function calls in expression: re_match",
    ),
    (
        "p if q\n\nq if p",
        "3:6: recursion: rule data.t.p is recursive: data.t.p -> data.t.q -> data.t.p",
    ),
    (
        "default p := 1\n\ndefault p := 2",
        "3:1: multiple-defaults: multiple default rules data.t.p found at t.rego:3, t.rego:5",
    ),
    ("p := 1\n\np contains 1", "3:1: conflicting-rules: conflicting rules data.t.p found"),    ("f(x) := x\n\np := f(1, 2)", "5:6: function-arity: function data.t.f has arity 1, got 2 arguments"),
    ("f(\"a\") := 1\n\np := f(1)", "5:6: function-type: data.t.f: invalid argument(s): have (number), want (string, number)"),
    ("p if { [1] == \"x\" }", "3:8: match-error: match error: left: array<number>, right: string"),
    ("p if { x := {\"a\": 1}; x.b }", "3:23: undefined-ref: undefined ref: x.b: have: object<a: number>"),
    ("p if { x := \"a\"; some y in x; y }", "3:28: undefined-ref: undefined ref: x[_]: have: string"),
    ("p if sum([\"a\"])", "3:6: builtin-type: sum: invalid argument(s): have (array<string>), want (collection: any<array[number], set[number]>)"),
    ("p if abs(q)\n\nq := \"a\"", "3:6: builtin-type: abs: invalid argument(s): have (string), want (x: number)"),
    ("p := f(\"a\")\n\nf(x) := y if { y := upper(x); abs(x) }", "5:31: builtin-type: abs: invalid argument(s): argument x is string (by its first use) and number here, want (x: number)"),
    ("p if { some i; [\"a\"][i]; upper(i) }", "3:26: builtin-type: upper: invalid argument(s): have (number), want (x: string)"),
    ("p := f(\"a\")\n\nf(x) := y if { y := upper(x); x > 1; abs(x) }", "5:38: builtin-type: abs: invalid argument(s): argument x is string (by its first use) and number here, want (x: number)"),
];

#[test]
fn check_and_build_refuse_what_opa_refuses_to_compile() {
    for (index, (rule, expected)) in REFUSED.iter().enumerate() {
        let dir = Dir::new(&format!("refused-{index}"));
        dir.write("p/t.rego", &format!("package t\n\n{rule}\n"));
        let file = dir.path("p/t.rego");
        let check = bundler(&["check", &dir.path("p")]);
        assert_first_error_line(&check, &format!("error: {file}:{expected}"));
        let build = bundler(&[
            "build",
            &dir.path("p"),
            "-e",
            "t/p",
            "-o",
            &dir.path("b.tar.gz"),
        ]);
        assert_first_error_line(&build, &format!("error: {file}:{expected}"));
    }
}

/// OPA v1.20.2 compiles this but fails it with `eval_internal_error` (its comprehension
/// index evaluates the body before `v` is bound): refused by `check` and `build` alike.
#[test]
fn check_and_build_refuse_a_comprehension_opa_fails_to_evaluate() {
    let dir = Dir::new("comprehension-index");
    dir.write(
        "p/t.rego",
        "package t\n\np := x if {\n\t1 = v\n\tx := [data.cfg.roles[v] | input > v]\n}\n",
    );
    let expected = format!(
        "error: {}:5:36: opa-comprehension-index: OPA v1.20 evaluates this comprehension on \
         its own (its comprehension index), before `v` is bound, and fails with an internal \
         error reading `v` here; bind `v` inside the comprehension before this expression \
         (put `data.cfg.roles[v]` before `input > v`)",
        dir.path("p/t.rego")
    );
    let check = bundler(&["check", &dir.path("p")]);
    assert_first_error_line(&check, &expected);
    let build = bundler(&[
        "build",
        &dir.path("p"),
        "-e",
        "t/p",
        "-o",
        &dir.path("b.tar.gz"),
    ]);
    assert_first_error_line(&build, &expected);
}

#[test]
fn check_accepts_what_opa_compiles() {
    let dir = Dir::new("accepted");
    // A local variable named as its rule is not recursion; `some` variables used as keys,
    // output arguments, unification both ways and closures are bound.
    dir.write(
        "p/t.rego",
        "package t\n\nspiffe_id := x if {\n\t[_, spiffe_id] := split(input.a, \"/\")\n\tx := spiffe_id\n}\n\np if {\n\tsome i\n\tinput.xs[i] == 1\n\tcount(input.xs, n)\n\t[a, 1] = [2, b]\n\ty := [z | z := a + b + n]\n\tnot abs(-5, 3)\n\tnot input.ps[_] + 1 == 2\n\tnot count(input.qs[j]) == j\n\tevery k, v in input.o { k == v }\n\ty[0] > 1\n}\n\ndefault f(_) := 0\n\nf(x) := x + 1\n",
    );
    // A key that is a pattern binds; `k() := 1` is a rule, not a function; a closure sees a
    // variable bound later by `=`; `with` may replace a function by a builtin.
    dir.write(
        "p/u.rego",
        "package u\n\nmsgs contains {\"msg\": \"m\", \"field\": 1}\n\nout contains msg if msgs[{\"msg\": msg, \"field\": 1}]\n\nk() := 1\n\nkv := k\n\nlater if {\n\ty := [z | z := x]\n\tx = 1\n\tcount(y) == 1\n}\n\nf(x) := x\n\nmocked if f(1) with f as upper\n",
    );
    // Types as OPA's checker has them: a function called with its output; parameters joined
    // over definitions; `==` as a term; `{}` selected from; optional keys a builtin names;
    // an object comprehension whose keys are no strings; a variable in a literal argument,
    // which OPA widens to any; `every` bodies, which OPA does not type; an argument first
    // used where any value goes.
    dir.write(
        "p/v.rego",
        "package v\n\nf(x) := x\n\nout_argument if f(1, 2)\n\ng(\"a\") := 1\n\ng(x) := 2\n\nwider_parameter := g(1)\n\nequal_as_a_term if {\n\ty := ([1] == \"x\")\n\tnot y\n}\n\nempty_object if {\n\tx := {}\n\tnot x.a\n}\n\noptional_keys := json.marshal_with_options(1, {\"pretty\": true})\n\nnumber_keys := json.marshal_with_options(1, {k: 1 | k := 1})\n\nwidened if {\n\t[v8, v9] = [\"a\", input.x]\n\tnot ({v8, 1} in v8)\n\ttime.format(v8)\n}\n\nevery_body if {\n\tevery x in [1] {\n\t\ty := 1\n\t\tupper(y)\n\t\tx\n\t}\n}\n\nh(x) := abs(x) if x > 1\n\nany_first := h(\"a\")\n\nk(x) := y if {\n\tz := x\n\ty := upper(x)\n\tabs(x)\n}\n",
    );
    let out = bundler(&["check", &dir.path("p")]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

/// A variable declared by `some` shadows a rule of its name (OPA compiles these; regorus
/// refused the `some x in` forms and `--strict` made that an error).
#[test]
fn check_strict_accepts_declared_variables_named_as_rules() {
    let dir = Dir::new("shadowing");
    dir.write(
        "p/v.rego",
        "package v\n\nid := x if {\n\tsome id in split(input.s, \"/\")\n\tx := id\n}\n\nids := [id | some id in input.xs]\n\nfirst := x if {\n\tsome i, first in input.xs\n\ti == 0\n\tx := first\n}\n\nindex := x if {\n\tsome index\n\tinput.xs[index] == \"b\"\n\tx := index\n}\n\nallow if {\n\tid\n\tids\n\tfirst\n\tindex\n}\n",
    );
    let source = dir.path("p");
    let output = dir.path("b.tar.gz");
    let check = bundler(&["check", "--strict", "-e", "v/allow", &source]);
    assert_eq!(check.status.code(), Some(0), "{}", text(&check.stderr));
    let build = bundler(&["build", "-e", "v/allow", "-o", &output, &source]);
    assert_eq!(build.status.code(), Some(0), "{}", text(&build.stderr));
}

#[test]
fn check_without_entrypoint_compiles_the_default_decision_rule() {
    let dir = Dir::new("default-rule");
    dir.write(
        "p/authz.rego",
        "package envoy.authz\n\nallow if graphql.is_valid(\"a\", \"k\") == input.sig\n",
    );
    let out = bundler(&["check", &dir.path("p")]);
    assert_first_error_line(
        &out,
        &format!(
            "error: {}:3:26: Unknown function: 'graphql.is_valid'",
            dir.path("p/authz.rego")
        ),
    );
}

/// Styra DAS decision paths: a reference with a quoted segment, or the slash form with a
/// dotted segment, in `check -e`, `build -e` and `eval -e`; a malformed one is refused with
/// its column (answer from OPA v1.20.2: `{"allowed": true}`).
#[test]
fn quoted_decision_paths_name_their_rule() {
    let dir = Dir::new("quoted-path");
    dir.write(
        "p/rules.rego",
        "package policy[\"com.styra.envoy.ingress\"].rules\n\nrules := {\"allowed\": input.ok}\n",
    );
    dir.write("input.json", r#"{"ok": true}"#);
    let source = dir.path("p");
    let output = dir.path("b.tar.gz");
    let input = dir.path("input.json");
    let reference = r#"data.policy["com.styra.envoy.ingress"].rules.rules"#;
    let check = bundler(&["check", "--strict", "-e", reference, &source]);
    assert_eq!(check.status.code(), Some(0), "{}", text(&check.stderr));
    let build = bundler(&["build", "-e", reference, "-o", &output, &source]);
    assert_eq!(build.status.code(), Some(0), "{}", text(&build.stderr));
    assert!(
        text(&build.stdout).contains(&format!("precompiled: {reference}")),
        "{}",
        text(&build.stdout)
    );
    for path in [reference, "policy/com.styra.envoy.ingress/rules/rules"] {
        let eval = bundler(&["eval", "-b", &output, "-i", &input, "-e", path]);
        assert_eq!(eval.status.code(), Some(0), "{}", text(&eval.stderr));
        let decision: serde_json::Value = serde_json::from_slice(&eval.stdout).unwrap();
        assert_eq!(decision, serde_json::json!({"allowed": true}));
    }
    let malformed = bundler(&["check", "-e", "data.policy[com.styra].rules", &source]);
    assert_fails(
        &malformed,
        2,
        "column 12: a bracketed segment must be a double-quoted string",
    );
}

fn key(name: &str) -> String {
    format!("{}/../testdata/keys/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// `build --signing-key` then `verify --verification-key`: every algorithm OPA signs with.
#[test]
fn signed_bundles_verify_with_the_matching_key_only() {
    let dir = Dir::new("signed");
    for (alg, private, public) in [
        ("RS256", key("rsa.pem"), key("rsa.pub.pem")),
        ("PS384", key("rsa.pem"), key("rsa.pub.pem")),
        ("RS512", key("rsa.pem"), key("rsa.pub.pem")),
        ("ES256", key("ec256.pem"), key("ec256.pub.pem")),
        ("ES384", key("ec384.pem"), key("ec384.pub.pem")),
        ("ES512", key("ec521.pem"), key("ec521.pub.pem")),
        ("HS512", "s3cret".to_string(), "s3cret".to_string()),
    ] {
        let bundle = dir.path(&format!("{alg}.tar.gz"));
        let out = bundler(&[
            "build",
            demo_policy().to_str().unwrap(),
            "-o",
            &bundle,
            "-r",
            "signed-1",
            "--signing-key",
            &private,
            "--signing-alg",
            alg,
            "--verification-key-id",
            "ci",
            "--scope",
            "prod",
        ]);
        assert!(out.status.success(), "{alg}: {}", text(&out.stderr));
        assert!(text(&out.stdout).contains(&format!("signed {alg}")));

        let verify = |key: &str, scope: &str| {
            bundler(&[
                "verify",
                &bundle,
                "--verification-key",
                key,
                "--verification-key-id",
                "ci",
                "--signing-alg",
                alg,
                "--scope",
                scope,
            ])
        };
        let out = verify(&public, "prod");
        assert!(out.status.success(), "{alg}: {}", text(&out.stderr));
        assert!(
            text(&out.stdout).contains("revision \"signed-1\", 4 files"),
            "{}",
            text(&out.stdout)
        );
        assert_fails(&verify(&public, "dev"), 1, "[scope-mismatch]");
        if alg.starts_with('H') {
            assert_fails(&verify("other", "prod"), 1, "[bad-signature]");
        } else if alg.starts_with('R') || alg.starts_with('P') {
            assert_fails(
                &verify(&key("rsa-other.pub.pem"), "prod"),
                1,
                "[bad-signature]",
            );
        }
    }
}

#[test]
fn verify_refuses_unsigned_bundles_and_reports_json() {
    let dir = Dir::new("unsigned");
    let bundle = dir.path("b.tar.gz");
    let out = bundler(&["build", demo_policy().to_str().unwrap(), "-o", &bundle]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = bundler(&[
        "verify",
        &bundle,
        "--verification-key",
        &key("rsa.pub.pem"),
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["verified"], false);
    assert_eq!(report["code"], "missing-signature");
}

/// OPA's Envoy tutorial policy (io.jwt.decode_verify) checks, builds precompiled, and
/// evaluates its own tutorial tokens; a malformed token is undefined, so `default` decides.
#[test]
fn jwt_policy_checks_builds_and_evaluates() {
    let policy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/policies/envoy-tutorial");
    let policy = policy.to_str().unwrap();
    let out = bundler(&["check", policy]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let dir = Dir::new("jwt");
    let bundle = dir.path("bundle.tar.gz");
    let out = bundler(&["build", policy, "-o", &bundle]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("precompiled: data.envoy.authz.allow"));
    // Alice's token from the tutorial: a guest, valid until 2041.
    let alice = "eyJhbGciOiAiSFMyNTYiLCAidHlwIjogIkpXVCJ9.eyJleHAiOiAyMjQxMDgxNTM5LCAibmJmIjogMTUxNDg1MTEzOSwgInJvbGUiOiAiZ3Vlc3QiLCAic3ViIjogIllXeHBZMlU9In0.Uk5hgUqMuUfDLvBLnlXMD0-X53aM_Hlziqg3vhOsCc8";
    for (name, method, authorization, allowed) in [
        ("get", "GET", format!("Bearer {alice}"), true),
        ("post", "POST", format!("Bearer {alice}"), false),
        (
            "forged",
            "GET",
            format!("Bearer {}x", &alice[..alice.len() - 1]),
            false,
        ),
        ("malformed", "GET", "Bearer not-a-jwt".to_string(), false),
    ] {
        dir.write(
            &format!("{name}.json"),
            &format!(
                r#"{{"attributes": {{"request": {{"http": {{"method": "{method}", "path": "/people",
                    "headers": {{"authorization": "{authorization}"}}}}}}}}}}"#
            ),
        );
        let out = bundler(&[
            "eval",
            "-b",
            &bundle,
            "-i",
            &dir.path(&format!("{name}.json")),
        ]);
        assert!(out.status.success(), "{name}: {}", text(&out.stderr));
        let decision: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(decision, serde_json::json!(allowed), "{name}");
    }
}

/// A Rego v0 policy as most public OPA-Envoy policies are written.
const V0_POLICY: &str = "package envoy.authz\n\ndefault allow = false\n\nallow {\n\tinput.attributes.request.http.method == \"GET\"\n\tpublic[input.attributes.request.http.path]\n}\n\npublic[\"/public\"]\n\npublic[p] {\n\tp := \"/health\"\n}\n";

fn request(dir: &Dir, name: &str, method: &str, path: &str) -> String {
    dir.write(
        name,
        &format!(r#"{{"attributes": {{"request": {{"http": {{"method": "{method}", "path": "{path}"}}}}}}}}"#),
    );
    dir.path(name)
}

fn decision(out: &Output) -> serde_json::Value {
    assert!(out.status.success(), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn v0_policies_need_v0_compatible_or_a_manifest() {
    let dir = Dir::new("v0-flag");
    dir.write("policy/authz.rego", V0_POLICY);
    // As `opa check` (OPA 1.x) without the flag: a v1 parse error.
    let out = bundler(&["check", &dir.path("policy")]);
    assert_fails(&out, 1, "authz.rego:5:");
    assert_fails(&out, 1, "`if` keyword is required");
    let out = bundler(&["check", "--v0-compatible", &dir.path("policy")]);
    assert!(out.status.success(), "{}", text(&out.stderr));

    let bundle = dir.path("bundle.tar.gz");
    let out = bundler(&["build", &dir.path("policy"), "-o", &bundle]);
    assert_fails(&out, 1, "`if` keyword is required");
    let out = bundler(&[
        "build",
        "--v0-compatible",
        &dir.path("policy"),
        "-o",
        &bundle,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // The built bundle says it is v0: it loads without the flag, here and in OPA.
    let summary = decision(&bundler(&["inspect", &bundle, "--format", "json"]));
    assert_eq!(summary["rego_version"], 0);
    // Expected values: OPA 1.20 on the v1 rendering of V0_POLICY (`public contains ...`).
    let health = request(&dir, "health.json", "GET", "/health");
    let out = bundler(&["eval", "-b", &bundle, "-i", &health]);
    assert_eq!(decision(&out), serde_json::json!(true));
    let admin = request(&dir, "admin.json", "GET", "/admin");
    let out = bundler(&["eval", "-b", &bundle, "-i", &admin]);
    assert_eq!(decision(&out), serde_json::json!(false));
    // `public` is a set, as v0 means it.
    let out = bundler(&[
        "eval",
        "-b",
        &bundle,
        "-i",
        &admin,
        "-p",
        "envoy/authz/public",
    ]);
    assert_eq!(decision(&out), serde_json::json!(["/health", "/public"]));
}

#[test]
fn eval_v0_compatible_reads_a_bundle_without_rego_version_as_v0() {
    let dir = Dir::new("v0-eval");
    dir.write("policy/authz.rego", V0_POLICY);
    // A bundle made by hand, without .manifest: `./authz.rego`.
    let bundle = dir.path("bundle.tar.gz");
    let tar = Command::new("tar")
        .args(["-czf", &bundle, "-C", &dir.path("policy"), "."])
        .status()
        .unwrap();
    assert!(tar.success());
    let health = request(&dir, "health.json", "GET", "/health");
    let out = bundler(&["eval", "-b", &bundle, "-i", &health]);
    assert_fails(&out, 1, "`if` keyword is required");
    let out = bundler(&["eval", "--v0-compatible", "-b", &bundle, "-i", &health]);
    assert_eq!(decision(&out), serde_json::json!(true));
}

#[test]
fn file_rego_versions_mix_v0_and_v1_modules() {
    let dir = Dir::new("v0-mixed");
    dir.write(
        "policy/.manifest",
        r#"{"rego_version": 1, "file_rego_versions": {"/legacy/*.rego": 0}}"#,
    );
    dir.write("policy/legacy/authz.rego", V0_POLICY);
    dir.write(
        "policy/gate/gate.rego",
        "package gate\n\nallow if data.envoy.authz.allow\n",
    );
    let out = bundler(&["check", &dir.path("policy")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let bundle = dir.path("bundle.tar.gz");
    let out = bundler(&[
        "build",
        &dir.path("policy"),
        "-o",
        &bundle,
        "-e",
        "gate/allow",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let summary = decision(&bundler(&["inspect", &bundle, "--format", "json"]));
    assert_eq!(summary["rego_version"], 1);
    assert_eq!(
        summary["file_rego_versions"],
        serde_json::json!({"legacy/authz.rego": 0})
    );
    // Expected: OPA 1.20 on the v1 rendering of V0_POLICY.
    let health = request(&dir, "health.json", "GET", "/health");
    let out = bundler(&["eval", "-b", &bundle, "-i", &health, "-p", "gate/allow"]);
    assert_eq!(decision(&out), serde_json::json!(true));
    // Without the entry the v0 module is parsed as v1, and refused as OPA refuses it.
    dir.write("policy/.manifest", r#"{"rego_version": 1}"#);
    let out = bundler(&["check", &dir.path("policy")]);
    assert_fails(&out, 1, "legacy/authz.rego:5:");
}

#[test]
fn v0_modules_using_keywords_they_do_not_import_are_refused() {
    let dir = Dir::new("v0-keywords");
    // OPA v0 reads `if` here as a rule name: `allow := true` and a rule `if`. Refused instead.
    dir.write(
        "policy/authz.rego",
        "package envoy.authz\n\nallow := true if {\n\tinput.admin\n}\n",
    );
    let out = bundler(&["check", "--v0-compatible", &dir.path("policy")]);
    assert_first_error_line(
        &out,
        &format!(
            "error: {}:3:15: v0-future-keyword: `if` is a keyword only after `import future.keywords.if` or `import rego.v1` in a Rego v0 module",
            dir.path("policy/authz.rego")
        ),
    );
    let out = bundler(&[
        "build",
        "--v0-compatible",
        &dir.path("policy"),
        "-o",
        &dir.path("b.tar.gz"),
    ]);
    assert_fails(&out, 1, "authz.rego:3:15: v0-future-keyword:");
    dir.write(
        "policy/authz.rego",
        "package envoy.authz\n\nallow {\n\tinput.method in [\"GET\"]\n}\n",
    );
    let out = bundler(&["check", "--v0-compatible", &dir.path("policy")]);
    assert_fails(
        &out,
        1,
        "authz.rego:4:15: v0-future-keyword: `in` is a keyword only after",
    );
    // With the import, the keyword is the keyword.
    dir.write(
        "policy/authz.rego",
        "package envoy.authz\n\nimport future.keywords.in\n\nallow {\n\tinput.method in [\"GET\"]\n}\n",
    );
    let out = bundler(&["check", "--v0-compatible", &dir.path("policy")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn config_parses_a_plugin_configuration_as_the_filter_does() {
    let dir = Dir::new("config");
    dir.write(
        "good.json",
        r#"{"path": "zerohop/authz/allow", "dry_run": true,
            "bundle": {"service": {"cluster": "outbound|80||bundles.zerohop.svc.cluster.local",
                                   "path": "/bundles/zero-trust.tar.gz"}}}"#,
    );
    let out = bundler(&["config", &dir.path("good.json")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains(
            "valid; decision data.zerohop.authz.allow, bundle from service \
             outbound|80||bundles.zerohop.svc.cluster.local/bundles/zero-trust.tar.gz, dry run"
        ),
        "{}",
        text(&out.stdout)
    );
    dir.write(
        "bad.json",
        r#"{"bundle": {"service": {"cluster": "c", "path": "/b"}}, "dry_run": "yes"}"#,
    );
    let out = bundler(&["config", &dir.path("bad.json")]);
    assert_fails(
        &out,
        1,
        "at `dry_run`: invalid type: string \"yes\", expected a boolean",
    );
}

#[test]
fn push_refuses_a_reference_that_is_not_oci_and_a_file_that_is_not_a_bundle() {
    let dir = Dir::new("push");
    dir.write("not-a-bundle.tar.gz", "hello");
    let out = bundler(&[
        "push",
        &dir.path("not-a-bundle.tar.gz"),
        "registry.example/r:t",
    ]);
    assert_fails(
        &out,
        1,
        "\"registry.example/r:t\": expected oci://HOST[:PORT]/REPOSITORY:TAG",
    );
    let out = bundler(&[
        "push",
        &dir.path("not-a-bundle.tar.gz"),
        "oci://registry.example/r:t",
    ]);
    assert_fails(&out, 1, "not-a-bundle.tar.gz: ");
}

fn logged_event(id: &str, method: &str, path: &str, result: &str, masked: bool) -> String {
    let erased = if masked {
        r#","erased":["/input/attributes/request/http/headers/authorization"]"#
    } else {
        ""
    };
    format!(
        r#"{{"decision_id":"{id}","path":"envoy/authz/allow","input":{{"attributes":{{"request":{{"http":{{"method":"{method}","path":"{path}","headers":{{}}}}}}}}}},"result":{result}{erased}}}"#
    )
}

/// Issue 12: decision logs (Envoy's log lines, uploaded gzip arrays) against a candidate.
#[test]
fn replay_shows_the_decisions_a_candidate_would_change() {
    let dir = Dir::new("replay");
    dir.write(
        "candidate/authz.rego",
        "package envoy.authz\nimport rego.v1\ndefault allow := false\nallow if input.attributes.request.http.path == \"/public\"\n",
    );
    let out = bundler(&["build", &dir.path("candidate"), "-o", &dir.path("c.tar.gz")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let console = [
        format!(
            "[2026-12-07 15:00:00.000][12][warning][wasm] wasm log zerohop: zerohop-decision {}",
            logged_event("id-1", "GET", "/public", "true", false)
        ),
        "[2026-12-07 15:00:00.001][12][info][main] something else".to_string(),
        format!(
            "[2026-12-07 15:00:00.002][12][warning][wasm] wasm log zerohop: zerohop-decision {}",
            logged_event("id-2", "GET", "/private", "true", false)
        ),
    ];
    dir.write("envoy.log", &console.join("\n"));
    let uploaded = format!(
        "[{},{}]",
        logged_event("id-3", "GET", "/private", "true", true),
        logged_event("id-4", "DELETE", "/private", "false", false)
    );
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, uploaded.as_bytes()).unwrap();
    std::fs::write(dir.path("upload.json.gz"), gz.finish().unwrap()).unwrap();

    let args = [
        "replay",
        "--bundle",
        &dir.path("c.tar.gz"),
        "--logs",
        &dir.path("envoy.log"),
        "--logs",
        &dir.path("upload.json.gz"),
    ];
    let out = bundler(&args);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        stdout.starts_with(&format!(
            "4 events: 3 replayed with {}, 1 would change; 1 not replayable (masked input), 0 without input\n",
            dir.path("c.tar.gz")
        )),
        "{stdout}"
    );
    assert!(stdout.contains("  allowed -> denied: 1\n"), "{stdout}");
    assert!(stdout.contains("  envoy/authz/allow: 1\n"), "{stdout}");
    assert!(
        stdout.contains("  decision id-2 (envoy/authz/allow) GET /private: allowed -> denied\n    - result: true\n    + result: false"),
        "{stdout}"
    );
    let mut failing = args.to_vec();
    failing.push("--fail-on-change");
    assert_fails(&bundler(&failing), 1, "1 decisions would change");

    // Nothing changes against itself: exit 0 even with --fail-on-change.
    dir.write("same.log", &console[0]);
    let out = bundler(&[
        "replay",
        "-b",
        &dir.path("c.tar.gz"),
        "-l",
        &dir.path("same.log"),
        "--fail-on-change",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    dir.write("broken.log", "zerohop-decision {not json");
    assert_fails(
        &bundler(&[
            "replay",
            "-b",
            &dir.path("c.tar.gz"),
            "-l",
            &dir.path("broken.log"),
        ]),
        1,
        "broken.log:1:",
    );
}
