"""Hand-made cases for the oracle: OPA-Envoy's non-strict answers rebuilt from the strict
bridge. Run: python3 tests/regodiff/test_oracle.py (also collected by pytest)."""

import os
import sys
from decimal import Decimal

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), ".tools", "opa"))

import oracle  # noqa: E402
from gen import lit  # noqa: E402


def v(name):
    return ["var", name]


def inp(*path):
    return ["ref", v("input"), [lit(p) for p in path]]


def call(name, *args):
    return ["call", name, list(args)]


def rule(name, value, *lits, chain=()):
    return ["complete", name, value, ["body", *lits], ["else", *[["elsebr", t, b] for t, b in chain]]]


def answers(rules, queried, inputs, data=None):
    status, results = oracle.Oracle().evaluate(
        {"ast": ["prog", *rules], "rules": queried, "inputs": inputs, "data": data or {}})
    assert status == "ok", results
    return results


def test_failing_builtin_makes_its_expression_undefined():
    r = rule("r", v("x"), ["assign", v("x"), ["bin", "/", lit(1), inp("d")]])
    assert answers([r], ["r"], [{"d": 0}, {"d": 4}]) == {"r": [("undefined",), ("value", Decimal("0.25"))]}


def test_else_after_a_failing_builtin():
    r = rule("r", lit(1), ["expr", call("startswith", inp("a"), lit("x"))], chain=[(lit(2), ["body"])])
    assert answers([r], ["r"], [{"a": 5}, {"a": "xy"}]) == {"r": [("value", 2), ("value", 1)]}


def test_not_over_a_failing_builtin_is_true():
    r = rule("r", None, ["not", call("startswith", inp("a"), lit("x"))])
    assert answers([r], ["r"], [{"a": 5}, {"a": "xy"}, {"a": "ab"}]) == {
        "r": [("value", True), ("undefined",), ("value", True)]}


def test_wrong_type_through_input():
    r = rule("r", call("count", inp("a")))
    assert answers([r], ["r"], [{"a": 1}, {"a": [1, 2]}]) == {"r": [("undefined",), ("value", 2)]}


def test_set_results_are_marked():
    r = rule("r", call("object.keys", inp("o")))
    ps = ["pset", "s", v("x"), ["body", ["somein", None, v("x"), lit([2, 1])]]]
    assert answers([r, ps], ["r", "s"], [{"o": {"a": 1}}, {"o": 1}]) == {
        "r": [("value", {"__set__": ["a"]}), ("undefined",)],
        "s": [("value", {"__set__": [1, 2]}), ("value", {"__set__": [1, 2]})]}


def test_a_set_and_an_array_that_read_alike_inside_a_set():
    # `{[], set()}`: both elements read `[]` in JSON and have the same path.
    ps = ["pset", "s", ["set", []], ["body"]]
    pa = ["pset", "s", lit([]), ["body"]]
    assert answers([ps, pa], ["s"], [{}]) == {"s": [("value", {"__set__": [{"__set__": []}, []]})]}


def test_a_set_through_a_reference_reaches_a_builtin_that_takes_any_type():
    # `regex.is_valid(set())` does not type-check, but through `object.get` OPA runs it and
    # answers false; the other definition's type error makes the non-strict path run.
    r1 = rule("r", call("regex.is_valid", call("object.get", ["obj", []], lit("k"), ["set", []])))
    r2 = rule("r", ["bin", "-", v("input"), v("input")])
    assert answers([r1, r2], ["r"], [{}]) == {"r": [("value", False)]}


def test_sets_cross_the_non_strict_builtin():
    # `q` fails for the input, so the whole program runs the non-strict rendering; `r`
    # passes sets to `|` and gets a set back.
    r = rule("r", call("count", ["bin", "|", ["set", [lit(1), lit(2)]], ["set", [inp("a")]]]))
    q = rule("q", call("to_number", inp("q")))
    assert answers([r, q], ["r", "q"], [{"a": 3, "q": "z"}, {"a": 1, "q": "7"}]) == {
        "r": [("value", 3), ("value", 2)], "q": [("undefined",), ("value", 7)]}


def test_nested_sets_are_unknown():
    r = rule("r", ["bin", "|", ["set", [["set", [lit(1)]]]], ["set", [["set", [inp("a")]]]]])
    q = rule("q", call("to_number", inp("q")))
    got = answers([r, q], ["r", "q"], [{"a": 3, "q": "z"}])
    assert got["r"][0][0] == oracle.UNKNOWN


def test_conflict_is_an_error():
    rs = [rule("r", lit(1)), rule("r", lit(2), ["expr", inp("x")])]
    got = answers(rs, ["r"], [{}, {"x": True}])
    assert got["r"][0] == ("value", 1)
    assert got["r"][1][0] == oracle.ERROR and "conflict" in got["r"][1][1]


def test_big_numbers_stay_exact():
    r = rule("r", ["bin", "*", lit(12345678901234567890), inp("n")])
    q = rule("q", call("to_number", inp("q")))
    assert answers([r, q], ["r"], [{"n": 10, "q": "z"}])["r"] == [("value", 123456789012345678900)]


def test_compile_errors_refuse():
    status, _ = oracle.Oracle().evaluate(
        {"ast": ["prog", rule("r", call("count", lit(1)))], "rules": ["r"], "inputs": [{}], "data": {}})
    assert status == oracle.REFUSED


if __name__ == "__main__":
    tests = [f for n, f in sorted(globals().items()) if n.startswith("test_")]
    for t in tests:
        t()
    print(f"oracle: {len(tests)} hand-made cases pass")
