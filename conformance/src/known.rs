//! Root causes of the failures that are wrong values (or hide one), written up in
//! `testdata/conformance/ROOT-CAUSES.md` with minimal Rego and OPA's answer: each failing case
//! that has one names it in the results file.

/// Root-cause id and a one-line description.
pub const ROOT_CAUSES: &[(&str, &str)] = &[
    (
        "rvm-conflict-not-raised",
        "RVM: a complete rule or function with two values, or a partial object with two values \
         for one key, gives a value or undefined where OPA raises eval_conflict_error",
    ),
    (
        "rvm-undefined-in-collection",
        "fixed (regorus patch 70): RVM: an undefined rule was kept in a package read as a \
         document (serialized as \"<undefined>\"). Left: a case that wants strict mode's \
         divide-by-zero error, where non-strict OPA (OPA-Envoy) answers the RVM's value",
    ),
    (
        "rvm-default-function",
        "fixed (regorus patch 44): RVM: `default f(x) := v` was ignored; a call no other \
         definition matched was undefined instead of v",
    ),
    (
        "rvm-data-integer-key",
        "fixed (regorus patch 71): RVM: `data.nested[2]` did not find the base-document key \
         \"2\"",
    ),
    (
        "rvm-dynamic-rule-ref",
        "RVM: a variable key into a tree of rules (`a[b]` with rules `a.b := ...`, `a.x := ...`) \
         is undefined",
    ),
    (
        "rvm-refhead-cache-scope",
        "RVM: ref-head partial set rules with repeated variables (`obj.sub[x][x] contains x`) \
         enumerate to nothing",
    ),
    (
        "strings-count-overlapping",
        "strings.count counts overlapping matches (\"11111\", \"11\" gives 4, OPA 2) and panics on \
         an empty substring (OPA: number of characters + 1)",
    ),
    (
        "range-step-bignum",
        "fixed (regorus patch 82): numbers.range_step with a step beyond 64 bits was undefined \
         (OPA: [start]); a step of 0 panics (divide by zero) in non-strict mode",
    ),
    (
        "units-exponent-too-large",
        "fixed (regorus patch 74): units.parse / units.parse_bytes accepted exponents OPA \
         rejects (\"10e10000000Ei\")",
    ),
    (
        "opa-newer-than-reference",
        "the case's expected value comes from an OPA newer than v1.20.2, the filter's reference \
         engine; v1.20.2 gives the filter's answer",
    ),
    (
        "walk-behind-graph-feature",
        "fixed (regorus feature `graph` on, patches 120, 121, 125): `walk` was left out, and \
         `[path, value] := walk(x)` matched nothing on the interpreter",
    ),
    (
        "opa-case-differs-from-reference",
        "the case's expected value is not what OPA v1.20.2, the filter's reference engine, \
         answers (asked of v1.20.2 itself); the filter answers as v1.20.2",
    ),
    (
        "replace-n-sequential",
        "fixed (regorus patch 11): strings.replace_n replaced key after key over the whole string",
    ),
    (
        "rvm-package-extent",
        "fixed (regorus patch 105): RVM: a package that holds only functions, read as part of \
         a document, was left out where OPA gives it as an empty object",
    ),
    (
        "jwt-eddsa",
        "fixed (Ed25519 in filter/src/jws): io.jwt.decode_verify of an EdDSA token answered \
         [false, {}, {}] where OPA verifies it",
    ),
    (
        "future-keyword-not-order",
        "fixed (regorus patch 104): a negated unification naming a variable that a later \
         expression binds (`not a = f(1); a = f(2)`) bound it inside the negation instead of \
         comparing after the binding, as OPA orders it",
    ),
    (
        "string-interpolation",
        "not a wrong value: template strings (`$\"…{x}…\"`) do not parse here, so a policy using \
         them is refused at load",
    ),
    (
        "time-zone-data",
        "not a wrong value, fails closed (regorus patch 92): a named time zone other than UTC \
         stops the evaluation; this build carries UTC only",
    ),
    (
        "json-is-valid-non-string",
        "fixed (regorus patch 12): json.is_valid of a non-string was a type error (undefined) \
         instead of false",
    ),
];

/// Case notes (OPA's) and the root cause of their failure, by backend (`None`: both).
const CASES: &[(&str, Option<&str>, &str)] = &[
    (
        "baseandvirtualdocs/base/virtual: missing input value",
        Some("rvm"),
        "rvm-undefined-in-collection",
    ),
    (
        "baseandvirtualdocs/enumerate virtual errors",
        Some("rvm"),
        "rvm-undefined-in-collection",
    ),
    (
        "functions/comprehensions",
        Some("rvm"),
        "rvm-default-function",
    ),
    ("functions/default", Some("rvm"), "rvm-default-function"),
    (
        "defaultkeyword/function with var arg, ref head query",
        Some("rvm"),
        "rvm-default-function",
    ),
    ("data/nested integer", Some("rvm"), "rvm-data-integer-key"),
    ("ir/call-dynamic with", Some("rvm"), "rvm-dynamic-rule-ref"),
    (
        "regression/virtual-cache key scope",
        Some("rvm"),
        "rvm-refhead-cache-scope",
    ),
    ("strings/count_", None, "strings-count-overlapping"),
    ("numbersrangestep/big int step", None, "range-step-bignum"),
    (
        "units_parse/exponent too large",
        None,
        "units-exponent-too-large",
    ),
    (
        "units_parse_bytes/exponent too large",
        None,
        "units-exponent-too-large",
    ),
    (
        "globmatch/empty pattern alternative",
        None,
        "opa-newer-than-reference",
    ),
    // v1.20.2 accepts leading zeros and empty pre-release or build sections.
    (
        "semverisvalid/leading zero",
        None,
        "opa-newer-than-reference",
    ),
    ("semverisvalid/empty ", None, "opa-newer-than-reference"),
    (
        "semvercompare/leading zero",
        None,
        "opa-newer-than-reference",
    ),
    (
        "semvercompare/empty pre-release",
        None,
        "opa-newer-than-reference",
    ),
    ("walkbuiltin/", None, "walk-behind-graph-feature"),
    // v1.20.2 keeps the first n parts of strings.SplitN(s, d, n + 1).
    ("strings/split_n: ", None, "opa-case-differs-from-reference"),
    (
        "functions/skip-functions",
        Some("rvm"),
        "rvm-package-extent",
    ),
    (
        "regression/function refs and package extent",
        Some("rvm"),
        "rvm-package-extent",
    ),
    ("jwtdecodeverify/EdDSA", None, "jwt-eddsa"),
    (
        "negation/not-body: negated and non-negated unification",
        None,
        "future-keyword-not-order",
    ),
    ("string-interpolation/", None, "string-interpolation"),
    ("time/clock with NY tz", None, "time-zone-data"),
    ("time/diff", None, "time-zone-data"),
    ("time/format", None, "time-zone-data"),
    ("replacen/semantics/", None, "replace-n-sequential"),
    (
        "jsonbuiltins/json is_valid not string",
        None,
        "json-is-valid-non-string",
    ),
];

/// The root cause of a case's failure on a backend, when it is known.
pub fn root_cause(case: &str, backend: &str, reason: &str) -> Option<&'static str> {
    // The filter has no strict mode: these are no wrong values (see ROOT-CAUSES.md).
    if reason.starts_with("strict builtin error not raised") {
        return None;
    }
    if reason.starts_with("conflict error not raised") && backend == "rvm" {
        return Some("rvm-conflict-not-raised");
    }
    CASES
        .iter()
        .find(|(note, only, _)| case.starts_with(note) && only.is_none_or(|b| b == backend))
        .map(|(_, _, cause)| *cause)
}

#[cfg(test)]
mod tests {
    use super::{root_cause, CASES, ROOT_CAUSES};

    #[test]
    fn every_case_names_a_described_root_cause() {
        for (note, _, cause) in CASES {
            assert!(
                ROOT_CAUSES.iter().any(|(id, _)| id == cause),
                "{note}: {cause} is not described"
            );
        }
        assert_eq!(
            root_cause("functions/default", "interpreter", "wrong value"),
            None
        );
        assert_eq!(
            root_cause("functions/default", "rvm", "wrong value"),
            Some("rvm-default-function")
        );
    }
}
