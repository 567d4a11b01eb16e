//! What a bundle's Rego can read of `input` (`shape`) and whether its answers depend on
//! anything but `input` and `data` (`cache`), found by walking the parsed modules once per
//! bundle.
//!
//! The analysis over-approximates and never under-approximates: every occurrence of `input`
//! (or of an import alias of a path under it) counts. A reference with constant keys
//! (`input.attributes.request.http.headers["x-user"]`) reads that path; a key that is not a
//! constant string (`headers[name]`, `parsed_path[0]`) reads everything at the last constant
//! key; `input` used as a value (`object.get(input, …)`, `x := input`, `json.marshal(input)`)
//! reads all of it. A `with input… as` target counts as a read too, which is harmless.

use regorus::unstable::{Expr, Module, Ref};
use regorus::Value;

use super::walk::{self, Visitor};
use crate::shape::{Analysis, InputReads};

const INPUT: &str = "input";

/// Builtins whose answer depends on more than their arguments: the clock (`io.jwt.decode_verify`
/// checks `exp`/`nbf` against it), randomness, the network, the environment; and `print`,
/// which writes to the log on every evaluation (a cached decision would not).
const NONDETERMINISTIC: [&str; 10] = [
    "print",
    "time.now_ns",
    "io.jwt.decode_verify",
    "rand.intn",
    "uuid.rfc4122",
    "http.send",
    "net.lookup_ip_addr",
    "opa.runtime",
    "crypto.x509.parse_and_verify_certificates",
    "crypto.x509.parse_and_verify_certificates_with_options",
];

pub fn analyse(modules: &[Ref<Module>]) -> Analysis {
    let mut reads = InputReads::default();
    let mut nondeterministic = None;
    for module in modules {
        let mut walk = Walk {
            aliases: aliases(module),
            reads: &mut reads,
            nondeterministic: &mut nondeterministic,
        };
        for rule in &module.policy {
            walk::rule(rule, &mut walk);
        }
    }
    Analysis {
        input: reads,
        nondeterministic,
    }
}

/// Import names that stand for a path under `input`: `import input.a.b` is `b`,
/// `import input.a.b as c` is `c`.
fn aliases(module: &Module) -> Vec<(String, Vec<String>)> {
    module
        .imports
        .iter()
        .filter_map(|import| {
            let (root, path, rest) = reference(&import.refr)?;
            // An import path is all constant keys; anything else reads from the last one on.
            if root != INPUT || rest {
                return None;
            }
            let name = match &import.r#as {
                Some(alias) => alias.text().to_string(),
                None => path.last().cloned().unwrap_or_else(|| INPUT.to_string()),
            };
            Some((name, path))
        })
        .collect()
}

/// A reference `root.k1["k2"]…` split into its root variable and its leading constant keys;
/// `true` when more (a key that is not a constant string) follows them. `None` when `expr` is
/// not a reference rooted at a variable.
fn reference(expr: &Expr) -> Option<(&str, Vec<String>, bool)> {
    let mut keys = Vec::new();
    let mut rest = false;
    let mut at = expr;
    loop {
        match at {
            Expr::Var { value, .. } => {
                let Value::String(root) = value else {
                    return None;
                };
                keys.reverse();
                return Some((root.as_ref(), keys, rest));
            }
            Expr::RefDot { refr, field, .. } => {
                match &field.1 {
                    Value::String(key) => keys.push(key.to_string()),
                    _ => {
                        keys.clear();
                        rest = true;
                    }
                }
                at = refr;
            }
            Expr::RefBrack { refr, index, .. } => {
                match constant_key(index) {
                    Some(key) => keys.push(key),
                    // Everything after a non-constant key is unknown: keep only what precedes it.
                    None => {
                        keys.clear();
                        rest = true;
                    }
                }
                at = refr;
            }
            _ => return None,
        }
    }
}

fn constant_key(index: &Expr) -> Option<String> {
    match index {
        Expr::String {
            value: Value::String(key),
            ..
        }
        | Expr::RawString {
            value: Value::String(key),
            ..
        } => Some(key.to_string()),
        _ => None,
    }
}

struct Walk<'a> {
    aliases: Vec<(String, Vec<String>)>,
    reads: &'a mut InputReads,
    nondeterministic: &'a mut Option<String>,
}

impl Walk<'_> {
    /// The path under `input` a reference rooted at `input` or at an alias reads.
    fn input_path(&self, root: &str, keys: Vec<String>) -> Option<Vec<String>> {
        if root == INPUT {
            return Some(keys);
        }
        let (_, prefix) = self.aliases.iter().find(|(name, _)| name == root)?;
        Some(prefix.iter().cloned().chain(keys).collect())
    }

    /// A call of a builtin whose answer depends on more than its arguments.
    fn note_nondeterministic(&mut self, fcn: &Expr) {
        if self.nondeterministic.is_some() {
            return;
        }
        if let Some((root, keys, false)) = reference(fcn) {
            let name = std::iter::once(root)
                .chain(keys.iter().map(String::as_str))
                .collect::<Vec<_>>()
                .join(".");
            if NONDETERMINISTIC.contains(&name.as_str()) {
                *self.nondeterministic = Some(name);
            }
        }
    }

    /// `object.get(input…, key, default)` with a constant key, or a path of constant keys (a
    /// common way to give an absent field a default), reads only what the key names.
    fn object_get(&self, fcn: &Expr, params: &[Ref<Expr>]) -> Option<Vec<String>> {
        let ("object", keys, false) = reference(fcn)? else {
            return None;
        };
        let [object, key, _default] = params else {
            return None;
        };
        if keys != ["get"] {
            return None;
        }
        let (root, keys, false) = reference(object)? else {
            return None;
        };
        let mut path = self.input_path(root, keys)?;
        match key.as_ref() {
            Expr::Array { items, .. } => {
                path.extend(items.iter().map_while(|item| constant_key(item)));
            }
            other => path.extend(constant_key(other)),
        }
        Some(path)
    }

    /// Walks the bracket keys of a reference chain (not its root or constant keys).
    fn reference_keys(&mut self, mut expr: &Expr) {
        loop {
            match expr {
                Expr::RefDot { refr, .. } => expr = refr,
                Expr::RefBrack { refr, index, .. } => {
                    walk::expr(index, self);
                    expr = refr;
                }
                _ => return,
            }
        }
    }
}

impl Visitor for Walk<'_> {
    fn expr(&mut self, expr: &Expr) -> bool {
        if let Some((root, keys, _)) = reference(expr) {
            if let Some(path) = self.input_path(root, keys) {
                self.reads.insert(path);
            }
            // The keys of the reference may be expressions that read input too.
            self.reference_keys(expr);
            return false;
        }
        if let Expr::Call { fcn, params, .. } = expr {
            self.note_nondeterministic(fcn);
            if let Some(path) = self.object_get(fcn, params) {
                self.reads.insert(path);
                params.iter().skip(1).for_each(|p| walk::expr(p, self));
                return false;
            }
        }
        true
    }

    /// A head key may read input (`p[input.x] := 1`).
    fn head(&mut self, refr: &Expr) {
        walk::expr(refr, self);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reads of `rules` in a module with `imports`, as `a.b.c` paths (`input` for all).
    fn reads_of(imports: &str, rules: &str) -> Vec<String> {
        let mut engine = regorus::Engine::new();
        let source = format!("package t\nimport rego.v1\n{imports}\n{rules}\n");
        engine
            .add_policy("t.rego".into(), source)
            .unwrap_or_else(|e| panic!("{e:#}"));
        analyse(engine.get_modules())
            .input
            .paths()
            .map(|p| {
                if p.is_empty() {
                    INPUT.to_string()
                } else {
                    p.join(".")
                }
            })
            .collect()
    }

    #[test]
    fn constant_references_read_their_path() {
        let reads = reads_of(
            "",
            r#"allow if {
                input.attributes.request.http.method == "GET"
                input.attributes.request.http.headers["x-user"] == "alice"
                input.parsed_path == ["healthz"]
            }"#,
        );
        assert_eq!(
            reads,
            [
                "attributes.request.http.headers.x-user",
                "attributes.request.http.method",
                "parsed_path"
            ]
        );
    }

    #[test]
    fn a_key_that_is_not_a_constant_string_reads_everything_from_there() {
        let reads = reads_of(
            "",
            r#"allow if {
                some name
                input.attributes.request.http.headers[name] == "x"
                input.parsed_path[0] == "api"
                input.parsed_query[input.attributes.source.principal][0] == "1"
            }"#,
        );
        assert_eq!(
            reads,
            [
                "attributes.request.http.headers",
                "attributes.source.principal",
                "parsed_path",
                "parsed_query"
            ]
        );
    }

    #[test]
    fn input_as_a_value_reads_all_of_it() {
        for rule in [
            "allow if { some k in [\"a\"]; object.get(input, k, []) == [] }",
            "allow if { x := input; x.parsed_path == [] }",
            "allow if json.marshal(input) != \"\"",
            "allow if { some k, _ in input; k == \"a\" }",
            "allow if { every k, _ in input { k != \"a\" } }",
        ] {
            assert_eq!(reads_of("", rule), ["input"], "{rule}");
        }
    }

    #[test]
    fn import_aliases_stand_for_their_path() {
        let reads = reads_of(
            "import input.attributes.request.http as http_request\nimport input.parsed_path",
            r#"allow if {
                parsed_path[0] == "health"
                http_request.headers.authorization != ""
            }
            method := http_request.method"#,
        );
        assert_eq!(
            reads,
            [
                "attributes.request.http.headers.authorization",
                "attributes.request.http.method",
                "parsed_path"
            ]
        );
        assert_eq!(
            reads_of("import input.attributes as a", "x := a"),
            ["attributes"]
        );
    }

    #[test]
    fn reads_anywhere_count() {
        let reads = reads_of(
            "",
            r#"
            v := input.version.encoding == "x"
            deny contains input.attributes.source.principal if true
            f(x) := y if { y := [v | some v in input.parsed_query.a; v != x] }
            g := {k: v | some k, v in input.attributes.metadataContext}
            h if { not input.truncated_body }
            i if { count(input.attributes.request.http.body) > 0 with input.parsed_body as {} }
            j := {"k": input.source_principal}
            k if { some y in {input.attributes.destination.address}; y }
            "#,
        );
        assert_eq!(
            reads,
            [
                "attributes.destination.address",
                "attributes.metadataContext",
                "attributes.request.http.body",
                "attributes.source.principal",
                "parsed_body",
                "parsed_query.a",
                "source_principal",
                "truncated_body",
                "version.encoding"
            ]
        );
    }

    #[test]
    fn object_get_with_constant_keys_reads_what_they_name() {
        let reads = reads_of(
            "import input.attributes.request.http as http",
            r#"a := object.get(input, "source_principal", "anonymous")
            b := object.get(input.attributes, ["request", "http", "method"], "GET")
            c := object.get(http.headers, "x-user", "")
            d := object.get(input, ["parsed_query", input.version.x, "y"], [])
            e := object.get({}, "k", input.truncated_body)"#,
        );
        assert_eq!(
            reads,
            [
                "attributes.request.http.headers.x-user",
                "attributes.request.http.method",
                "parsed_query",
                "source_principal",
                "truncated_body",
                "version.x"
            ]
        );
    }

    #[test]
    fn builtins_that_read_the_clock_or_chance_make_a_policy_nondeterministic() {
        let nondeterministic = |rules: &str| {
            let mut engine = regorus::Engine::new();
            engine
                .add_extension(
                    "io.jwt.decode_verify".into(),
                    2,
                    Box::new(|_| Ok(Value::Null)),
                )
                .unwrap();
            engine
                .add_policy(
                    "t.rego".into(),
                    format!("package t\nimport rego.v1\n{rules}\n"),
                )
                .unwrap_or_else(|e| panic!("{e:#}"));
            analyse(engine.get_modules()).nondeterministic
        };
        assert_eq!(nondeterministic("allow if input.x == 1"), None);
        assert_eq!(
            nondeterministic("d := time.date(0)\nallow if regex.match(`a`, `a`)"),
            None
        );
        assert_eq!(
            nondeterministic("f(x) := x if time.now_ns() > 0\nallow if f(1)"),
            Some("time.now_ns".to_string())
        );
        assert_eq!(
            nondeterministic(r#"allow if { [ok, _, _] := io.jwt.decode_verify(input.t, {}); ok }"#),
            Some("io.jwt.decode_verify".to_string())
        );
    }

    #[test]
    fn a_policy_without_input_reads_nothing() {
        assert!(reads_of("import data.lib as input_lib", "allow := data.x.y").is_empty());
    }
}
