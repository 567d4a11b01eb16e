"""OPA's answer as OPA-Envoy gives it (non-strict builtin errors), from the strict bridge.

1. The original program is compiled: OPA's parse, compile and type errors are "refused".
2. Each rule is evaluated strictly per input. No error: that is the answer. A non-builtin error
   (conflicts, ...): the answer is "error".
3. A builtin error anywhere: the program is rendered again with every builtin call and infix
   operator `op(args)` replaced by `__call("op", [args])`, a Rego function over `__ns`, a Python
   builtin that evaluates `op` on a second engine and answers `{"ok": value}`, or `{}` when it
   fails, so the call is undefined exactly where non-strict OPA makes it undefined. Sets do not
   cross JSON: `__call` passes the paths of the sets inside the arguments (`walk`), `__ns`
   rebuilds them as Rego literals and reports whether the result is a set; a set nested in a
   result, an object with a non-string key, or a non-finite number make the answer "unknown".

Values come back with sets as `{"__set__": [...]}` (found with `walk`), numbers as `Decimal`.
"""

import json
import math
import re
import sys
from collections import Counter
from decimal import Decimal

import opa_bindings.engine as opa_engine
from opa_bindings.engine import OpaEngine, OpaError, OpaUndefinedError

import gen

# OPA computes with big integers (bits.lsh(1, 1000000) has 301,030 digits); Python limits
# their text to 4,300 digits unless told otherwise. The runner's answers are read in this
# process too.
sys.set_int_max_str_digits(0)


class _ExactJson:
    """The bridge's JSON, with numbers kept exact (Decimal) both ways."""

    @staticmethod
    def loads(s, **kw):
        return json.loads(s, parse_float=Decimal, **kw)

    @staticmethod
    def dumps(v, **kw):
        return exact_dumps(v, **kw)


# A Decimal goes out as its own text (OPA keeps a number's text, and a value a builtin
# returned in the non-strict path must come back as OPA computed it, not through a float):
# json writes it as a marked string, and the mark is then replaced by the bare text.
_NUMBER_MARK = "\x00number:"
_MARKED_NUMBER = re.compile(r'"\\u0000number:([^"]*)"')


def _marked_number(v):
    if isinstance(v, Decimal) and v.is_finite():
        return _NUMBER_MARK + str(v)
    raise TypeError(f"not JSON: {v!r}")


def exact_dumps(v, **kw):
    return _MARKED_NUMBER.sub(r"\1", json.dumps(v, default=_marked_number, **kw))


opa_engine.json = _ExactJson

REFUSED, ERROR, UNDEFINED, UNKNOWN = "refused", "error", "undefined", "unknown"

HELPERS = """
__sp(args) := [p | walk(args, [p, v]); is_set(v)]

__nk(args) := count([1 | walk(args, [_, v]); is_object(v); some k, _ in v; not is_string(k)])

__call(name, args) := __val(__ns(name, args, __sp(args), __nk(args)))

__val(r) := r.ok if not r.set

__val(r) := {x | some x in r.ok} if r.set
"""

SET_PATHS = "sp := [p | walk(x, [p, v]); is_set(v)]; nk := count([1 | walk(x, [_, v]); is_object(v); some k, _ in v; not is_string(k)])"


def canon(v):
    """A canonical text of a decoded value (sets sorted, numbers exact)."""
    if isinstance(v, bool) or v is None:
        return json.dumps(v)
    if isinstance(v, (int, Decimal, float)):
        d = Decimal(v) if not isinstance(v, float) else Decimal(repr(v))
        if d == d.to_integral_value():
            return str(int(d))
        return str(d.normalize())
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list):
        return "[" + ",".join(canon(x) for x in v) + "]"
    if isinstance(v, dict):
        if set(v) == {"__set__"}:
            return "{set:" + ",".join(sorted(canon(x) for x in v["__set__"])) + "}"
        if set(v) == {"__obj__"}:
            return "{obj:" + ",".join(sorted(canon(k) + ":" + canon(x) for k, x in v["__obj__"])) + "}"
        return "{" + ",".join(f"{json.dumps(k, ensure_ascii=False)}:{canon(v[k])}" for k in sorted(v)) + "}"
    raise TypeError(repr(v))


def take_set_path(set_paths, path):
    """Whether the list at `path` is a set: `set_paths` counts the sets at each path (a
    Counter of `canon` keys). An element's path is the element itself, so a set's elements
    `[]` and `set()` share a path key; counting gives each set path to one of them (they
    read alike, so which one does not change the value)."""
    key = canon(list(path))
    if set_paths[key] > 0:
        set_paths[key] -= 1
        return True
    return False


def mark_sets(v, set_paths, path=()):
    """OPA's JSON value with the sets at `set_paths` (from `walk`) as `{"__set__": [...]}`."""
    if isinstance(v, list) and take_set_path(set_paths, path):
        return {"__set__": [mark_sets(x, set_paths, path + (x,)) for x in v]}
    if isinstance(v, list):
        return [mark_sets(x, set_paths, path + (i,)) for i, x in enumerate(v)]
    if isinstance(v, dict):
        return {k: mark_sets(x, set_paths, path + (k,)) for k, x in v.items()}
    return v


def rego_literal(v, set_paths, path=()):
    if isinstance(v, list) and take_set_path(set_paths, path):
        items = [rego_literal(x, set_paths, path + (x,)) for x in v]
        return "{" + ", ".join(items) + "}" if items else "set()"
    if isinstance(v, list):
        return "[" + ", ".join(rego_literal(x, set_paths, path + (i,)) for i, x in enumerate(v)) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{json.dumps(k)}: {rego_literal(x, set_paths, path + (k,))}"
                               for k, x in v.items()) + "}"
    if isinstance(v, Decimal):
        if not v.is_finite():
            raise ValueError("non-finite number")
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ValueError("non-finite number")
        return repr(v)
    return json.dumps(v, ensure_ascii=False)


def is_builtin_error(message):
    return "eval_builtin_error" in message or "eval_type_error" in message


class Oracle:
    def __init__(self):
        self.unknown = False
        self.calls = {}

    def _ns(self, name, args, set_paths, non_string_keys):
        """`__ns`: one builtin call on a plain engine; `{}` when it fails."""
        try:
            if non_string_keys:
                raise ValueError("object with a non-string key")
            paths = Counter(canon(p) for p in set_paths)
            arg_text = [rego_literal(a, paths, (i,)) for i, a in enumerate(args)]
        except ValueError:
            self.unknown = True
            return {}
        key = name + "(" + ", ".join(arg_text) + ")"
        if key in self.calls:
            result = self.calls[key]
        else:
            result = self._call(name, arg_text)
            self.calls[key] = result
        if result is None:
            self.unknown = True
            return {}
        return result

    def _call(self, name, arg_text):
        """One call of `name` with the arguments written as Rego literals."""
        if name in ("and", "or") or name in gen.ARITH.values():
            op = {v: k for k, v in gen.ARITH.items()}[name]
            expr = f"({arg_text[0]}) {op} ({arg_text[1]})"
        else:
            expr = f"{name}({', '.join(arg_text)})"
        engine = self.plain
        try:
            rows = engine.eval_query(f"x := {expr}; {SET_PATHS}")
        except OpaError as e:
            if is_builtin_error(str(e)):
                return {}
            if "rego_type_error" not in str(e):
                return None  # the rendering failed (e.g. a parse error): cannot tell
            # The type checker saw the literal arguments' types. In the program the arguments
            # come from references, whose types OPA does not know, and some builtins answer
            # for any type at run time (`regex.is_valid(true)` is false): ask again untyped,
            # each argument through `object.get`, whose result type is `any` (sets too).
            if name in ("and", "or") or name in gen.ARITH.values():
                return {}
            untyped = ", ".join(f'object.get({{}}, "_", {text})' for text in arg_text)
            try:
                rows = engine.eval_query(f"x := {name}({untyped}); {SET_PATHS}")
            except OpaError as e2:
                if is_builtin_error(str(e2)) or "rego_type_error" in str(e2):
                    return {}
                return None
        if not rows:
            return {}
        row = rows[0]
        if row["nk"]:
            return None
        sp = [canon(p) for p in row["sp"]]
        if not sp:
            return {"ok": row["x"], "set": False}
        if sp == ["[]"]:
            return {"ok": row["x"], "set": True}
        return None  # sets nested in a result

    def evaluate(self, program):
        """{rule: [outcome per input]} or REFUSED (with OPA's message). An outcome is
        ("value", decoded value) | (UNDEFINED,) | (ERROR, message) | (UNKNOWN, why)."""
        source = gen.render(program["ast"])
        engine = OpaEngine()
        try:
            try:
                engine.add_policy("t.rego", source)
                engine.add_data(program.get("data") or {})
                engine.eval_query("x := 1")  # compiles every module
            except OpaError as e:
                return REFUSED, str(e)
            results = {}
            needs_ns = False
            for rule in program["rules"]:
                outs = []
                for inp in program["inputs"]:
                    out = self._eval(engine, rule, inp)
                    if out[0] == ERROR and is_builtin_error(out[1]):
                        needs_ns = True
                    outs.append(out)
                results[rule] = outs
            if needs_ns:
                results = self._non_strict(program)
            return "ok", results
        finally:
            engine.close()

    def _eval(self, engine, rule, inp):
        try:
            rows = engine.eval_query(f"x := data.t.{rule}; {SET_PATHS}", inp)
        except OpaError as e:
            if "panic:" in str(e):
                # The Go engine crashed (e.g. json.patch removing "", bits.lsh by 2^64): what
                # OPA-Envoy answers then is not something the bridge shows.
                return (UNKNOWN, str(e)[:200])
            return (ERROR, str(e))
        if not rows:
            return (UNDEFINED,)
        row = rows[0]
        if row["nk"]:
            return (UNKNOWN, "object with a non-string key")
        return ("value", mark_sets(row["x"], Counter(canon(p) for p in row["sp"])))

    def _non_strict(self, program):
        def wrap(name, args):
            return f"__call({json.dumps(name)}, [{', '.join(args)}])"

        source = gen.render(program["ast"], wrap) + HELPERS
        engine = OpaEngine()
        self.plain = OpaEngine()
        self.calls = {}
        try:
            engine.register_function("__ns", self._ns, arity=4)
            engine.add_policy("t.rego", source)
            engine.add_data(program.get("data") or {})
            results = {}
            for rule in program["rules"]:
                outs = []
                for inp in program["inputs"]:
                    self.unknown = False
                    out = self._eval(engine, rule, inp)
                    if self.unknown:
                        out = (UNKNOWN, "sets or non-string keys through __ns")
                    elif out[0] == ERROR and (is_builtin_error(out[1]) or "prepare_error" in out[1]):
                        out = (UNKNOWN, "non-strict rendering: " + out[1][:200])
                    outs.append(out)
                results[rule] = outs
            return results
        finally:
            engine.close()
            self.plain.close()
