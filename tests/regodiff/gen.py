"""Random Rego v1 programs, inputs and data, deterministic per seed.

A program is a tree of lists, `[kind, ...]`, so the minimiser can cut and replace any node
without knowing the grammar (`render` turns it into Rego). The grammar is weighted toward
authorization policies: roles and permissions from `data`, request fields from `input` (often
missing or of the wrong type), string and network checks, `default` decisions.
"""

import json
import random

# --- builtins -------------------------------------------------------------------------------
# name: (argument types, result type). Types: n number, s string, b bool, a array, o object,
# S set, c collection (array/set/object), x anything. Wrong-typed arguments are generated on
# purpose (`Gen.arg`), so these only steer the generator toward meaningful calls.
BUILTINS = {
    # strings
    "concat": ("sT", "s"), "contains": ("ss", "b"), "endswith": ("ss", "b"),
    "startswith": ("ss", "b"), "format_int": ("nn", "s"), "indexof": ("ss", "n"),
    "indexof_n": ("ss", "a"), "lower": ("s", "s"), "upper": ("s", "s"),
    "replace": ("sss", "s"), "split": ("ss", "a"), "sprintf": ("sa", "s"),
    "strings.any_prefix_match": ("ss", "b"), "strings.any_suffix_match": ("sT", "b"),
    "strings.count": ("ss", "n"), "strings.replace_n": ("Ms", "s"), "strings.reverse": ("s", "s"),
    "substring": ("snn", "s"), "trim": ("ss", "s"), "trim_left": ("ss", "s"),
    "trim_prefix": ("ss", "s"), "trim_right": ("ss", "s"), "trim_space": ("s", "s"),
    "trim_suffix": ("ss", "s"), "to_number": ("s", "n"),
    # regex and glob
    "regex.match": ("ss", "b"), "regex.is_valid": ("s", "b"), "regex.split": ("ss", "a"),
    "regex.find_n": ("ssn", "a"), "regex.replace": ("sss", "s"),
    "regex.globs_match": ("ss", "b"), "regex.template_match": ("ssss", "b"),
    "regex.find_all_string_submatch_n": ("ssn", "a"),
    "glob.match": ("sLs", "b"), "glob.quote_meta": ("s", "s"),
    # arrays, objects, sets
    "array.concat": ("aa", "a"), "array.reverse": ("a", "a"), "array.slice": ("ann", "a"),
    "array.flatten": ("a", "a"), "strings.split_n": ("ssn", "a"),
    "object.get": ("oxx", "x"), "object.keys": ("o", "S"), "object.remove": ("oc", "o"),
    "object.filter": ("oc", "o"), "object.union": ("oo", "o"), "object.union_n": ("O", "o"),
    "object.subset": ("oo", "b"), "json.filter": ("oc", "o"), "json.remove": ("oc", "o"),
    "json.patch": ("oP", "x"), "intersection": ("Q", "S"), "union": ("Q", "S"),
    # numbers and aggregates
    "abs": ("n", "n"), "ceil": ("n", "n"), "floor": ("n", "n"), "round": ("n", "n"),
    "numbers.range": ("ii", "a"), "numbers.range_step": ("iii", "a"),
    "count": ("c", "n"), "sum": ("A", "n"), "product": ("A", "n"), "max": ("A", "x"),
    "min": ("A", "x"), "sort": ("A", "a"),
    "bits.and": ("nn", "n"), "bits.or": ("nn", "n"), "bits.xor": ("nn", "n"),
    "bits.negate": ("n", "n"), "bits.lsh": ("nn", "n"), "bits.rsh": ("nn", "n"),
    "graph.reachable": ("oc", "S"), "graph.reachable_paths": ("oc", "S"),
    # operators by their builtin names
    "plus": ("nn", "n"), "minus": ("nn", "n"), "mul": ("nn", "n"), "div": ("nn", "n"),
    "rem": ("nn", "n"), "and": ("SS", "S"), "or": ("SS", "S"), "equal": ("xx", "b"),
    "neq": ("xx", "b"), "lt": ("xx", "b"), "lte": ("xx", "b"), "gt": ("xx", "b"),
    "gte": ("xx", "b"),
    # types
    "is_array": ("x", "b"), "is_boolean": ("x", "b"), "is_null": ("x", "b"),
    "is_number": ("x", "b"), "is_object": ("x", "b"), "is_set": ("x", "b"),
    "is_string": ("x", "b"), "type_name": ("x", "s"),
    # encoding
    "base64.encode": ("s", "s"), "base64.decode": ("s", "s"), "base64.is_valid": ("s", "b"),
    "base64url.encode": ("s", "s"), "base64url.decode": ("s", "s"),
    "base64url.encode_no_pad": ("s", "s"), "hex.encode": ("s", "s"), "hex.decode": ("s", "s"),
    "urlquery.encode": ("s", "s"), "urlquery.decode": ("s", "s"),
    "urlquery.encode_object": ("M", "s"), "urlquery.decode_object": ("s", "o"),
    "json.marshal": ("x", "s"), "json.unmarshal": ("s", "x"), "json.is_valid": ("s", "b"),
    "json.marshal_with_options": ("xo", "s"),
    # net
    "net.cidr_contains": ("ss", "b"), "net.cidr_intersects": ("ss", "b"),
    "net.cidr_is_valid": ("s", "b"), "net.cidr_expand": ("C", "S"), "net.cidr_merge": ("T", "S"),
    "net.cidr_contains_matches": ("ss", "S"),
    # time (deterministic ones only)
    "time.parse_rfc3339_ns": ("s", "n"), "time.parse_ns": ("ss", "n"),
    "time.parse_duration_ns": ("s", "n"), "time.date": ("n", "a"), "time.clock": ("n", "a"),
    "time.weekday": ("n", "s"), "time.add_date": ("nnnn", "n"), "time.diff": ("nn", "a"),
    "time.format": ("n", "s"),
    # units, semver, misc
    "units.parse": ("s", "n"), "units.parse_bytes": ("s", "n"), "semver.is_valid": ("s", "b"),
    "semver.compare": ("ss", "n"), "crypto.sha256": ("s", "s"), "crypto.md5": ("s", "s"),
    "crypto.hmac.sha256": ("ss", "s"), "crypto.hmac.equal": ("ss", "b"), "crypto.sha1": ("s", "s"),
    "crypto.hmac.md5": ("ss", "s"), "crypto.hmac.sha1": ("ss", "s"), "crypto.hmac.sha512": ("ss", "s"),
    "uuid.parse": ("s", "o"),
}

# OPA builtins regorus does not have: a bundle calling them must be refused at load. Drawn
# rarely, so most programs exercise evaluation.
MISSING = set()

# Comparison operators by name: they never fail, so the oracle leaves them unwrapped.
COMPARISONS = {"equal", "neq", "lt", "lte", "gt", "gte"}

# Infix operators the oracle wraps like builtins (they fail on wrong types: builtin errors).
ARITH = {"+": "plus", "-": "minus", "*": "mul", "/": "div", "%": "rem", "&": "and", "|": "or"}
COMPARE = ["==", "!=", "<", "<=", ">", ">="]

ROLES = ["admin", "dev", "viewer", "guest", "Admin", ""]
METHODS = ["GET", "POST", "PUT", "DELETE", "get"]
STRINGS = ["alice", "bob", "", "admin", "read", "write", "/api/v1/users", "a.b.c", "10.0.0.1",
           "10.0.0.0/8", "192.168.1.0/24", "1.2.3", "1.10.0-rc.1", "2024-01-02T03:04:05Z",
           "10MB", "1.5Gi", "3h2m", "abc123", "x-token", "Bearer abc", "%s-%v", "*.example.com",
           "api.example.com", "^[a-z]+$", "[", "a,b,c", "ÄÖ ü", " pad ", "true", "42", "-7.5",
           "2001:db8::/32", "6ba7b810-9dad-11d1-80b4-00c04fd430c8",
           "1e3", "{\"a\":1}", "[1,2]", "aGVsbG8=", "68656c6c6f", "a%20b", "q=1&r=2"]
NUMBERS = [0, 1, 2, 3, -1, 7, 10, 42, 100, 0.5, 2.5, -3.25, 1e3, 1.0, 12345678901234567890,
           9007199254740993, 1e20, 0.1, 3.0e-2, 255, 65536, -0.0]


def lit(v):
    return ["lit", v]


class Gen:
    def __init__(self, seed):
        self.r = random.Random(seed)
        self.nvar = 0
        self.rules = []  # (name, kind, type, arity)
        self.depth_limit = 3

    # -- helpers -------------------------------------------------------------------------
    def chance(self, p):
        return self.r.random() < p

    def pick(self, xs):
        return self.r.choice(xs)

    def fresh(self):
        self.nvar += 1
        return f"v{self.nvar}"

    # -- inputs and data -------------------------------------------------------------------
    def wrong(self):
        return self.pick([None, True, 3, "x", [1, "a"], {"k": 1}, 2.5, [], {}])

    def input_doc(self):
        r = self.r
        user = {
            "name": self.pick(["alice", "bob", "carol", "", "Alice"]),
            "roles": r.sample(ROLES, r.randint(0, 3)),
            "age": self.pick([17, 30, 65, 30.5, -1]),
            "groups": {"eng": self.pick([True, False]), "ops": self.pick([True, False])},
            "email": self.pick(["alice@example.com", "bob@corp.io", "no-at"]),
        }
        doc = {
            "user": user,
            "method": self.pick(METHODS),
            "path": self.pick(["/api/v1/users/alice", "/admin", "/", "/api/v1/orders/7"]),
            "parsed_path": self.pick([["api", "v1", "users", "alice"], ["admin"], []]),
            "headers": {"x-token": self.pick(["abc123", "Bearer abc", ""]),
                        "content-type": self.pick(["application/json", "text/plain"])},
            "ip": self.pick(["10.0.0.5", "192.168.1.7", "8.8.8.8", "::1", "not-an-ip"]),
            "amount": self.pick([0, 12.5, 100, 1000000, -3, 99.99]),
            "tags": r.sample(["a", "b", "c", "x"], r.randint(0, 3)),
            "n": self.pick([0, 1, 2, 3, 7, -2]),
            "flag": self.pick([True, False]),
            "version": self.pick(["1.2.3", "2.0.0-beta", "v1", "1.10.0"]),
            "time": self.pick(["2024-01-02T03:04:05Z", "2023-12-31T23:59:59+01:00", "yesterday"]),
            "size": self.pick(["10MB", "1Gi", "5", "big"]),
            "items": [{"id": i, "price": self.pick([1, 2.5, 10]), "owner": self.pick(["alice", "bob"])}
                      for i in range(r.randint(0, 3))],
        }
        # Missing and wrongly typed fields, at any depth.
        for _ in range(r.randint(0, 4)):
            target = doc
            if self.chance(0.3):
                target = user
            key = self.pick(sorted(target))
            if self.chance(0.5):
                del target[key]
            else:
                target[key] = self.wrong()
        return doc

    def data_doc(self):
        r = self.r
        perms = {"admin": ["read", "write", "delete"], "dev": ["read", "write"], "viewer": ["read"]}
        if self.chance(0.3):
            perms["guest"] = self.pick([[], "read", None])
        return {"cfg": {
            "roles": perms,
            "users": {"alice": {"role": "admin", "level": 3}, "bob": {"role": self.pick(["dev", 7])}},
            "limits": {"max": self.pick([100, 10.5, "100"]), "min": 0},
            "allowed_methods": r.sample(METHODS, 2),
            "cidrs": ["10.0.0.0/8", self.pick(["192.168.0.0/16", "bad"])],
            "owners": {"7": "alice"},
            "enabled": self.pick([True, False, "yes"]),
        }}

    # -- terms -------------------------------------------------------------------------------
    def input_ref(self, t):
        paths = {
            "s": [["user", "name"], ["method"], ["path"], ["ip"], ["version"], ["time"], ["size"],
                  ["user", "email"], ["headers", "x-token"], ["user", "roles", 0], ["parsed_path", 1]],
            "n": [["amount"], ["n"], ["user", "age"], ["items", 0, "price"]],
            "b": [["flag"], ["user", "groups", "eng"]],
            "a": [["user", "roles"], ["parsed_path"], ["tags"], ["items"]],
            "o": [["user"], ["headers"], ["user", "groups"], ["items", 0]],
            "x": [["missing"], ["user", "missing", "deep"], ["items", 5, "id"], [], ["n", "x"]],
        }
        choices = paths.get(t, [])
        if not choices or self.chance(0.15):
            choices = [p for ps in paths.values() for p in ps]
        path = self.pick(choices)
        return ["ref", ["var", "input"], [lit(k) for k in path]]

    def data_ref(self, t, scope):
        paths = {
            "o": [["roles"], ["users"], ["limits"], ["owners"], ["users", "alice"]],
            "a": [["allowed_methods"], ["cidrs"], ["roles", "admin"]],
            "n": [["limits", "max"], ["limits", "min"], ["users", "alice", "level"]],
            "s": [["users", "bob", "role"], ["owners", "7"], ["cidrs", 0]],
            "b": [["enabled"]],
        }
        choices = paths.get(t) or [p for ps in paths.values() for p in ps]
        path = [lit(k) for k in self.pick(choices)]
        if t in ("a", "x") and self.chance(0.3):
            path = [lit("roles"), self.term("s", scope, 2)]
        return ["ref", ["var", "data"], [lit("cfg")] + path]

    def literal(self, t):
        r = self.r
        if t == "x":
            t = self.pick("nsbaoSz")
        if t == "n":
            return lit(self.pick(NUMBERS))
        if t == "s":
            return lit(self.pick(STRINGS))
        if t == "b":
            return lit(self.pick([True, False]))
        if t == "z":
            return lit(None)
        if t in ("a", "c"):
            return ["arr", [self.literal(self.pick("nsss")) for _ in range(r.randint(0, 3))]]
        if t == "S":
            return ["set", [self.literal(self.pick("nss")) for _ in range(r.randint(0, 3))]]
        if t == "o":
            keys = r.sample(["a", "b", "role", "name", "x"], r.randint(0, 3))
            return ["obj", [[lit(k), self.literal(self.pick("nsb"))] for k in keys]]
        return lit(None)

    def vars_of(self, scope, t):
        return [v for v, vt in scope.items() if vt == t or t == "x" or vt == "x"]

    def term(self, t, scope, depth):
        """A term that is probably of type `t`."""
        r = self.r
        if depth <= 0:
            options = ["lit", "lit", "var", "input"]
        else:
            options = ["lit", "var", "var", "input", "input", "data", "call", "call", "call",
                       "rule", "arith", "cmp", "comp", "func", "compound"]
        while True:
            kind = self.pick(options)
            if kind == "lit":
                return self.literal(t)
            if kind == "var":
                vs = self.vars_of(scope, t)
                if vs:
                    return ["var", self.pick(sorted(vs))]
            elif kind == "input":
                return self.input_ref(t)
            elif kind == "data":
                return self.data_ref(t, scope)
            elif kind == "call":
                names = [n for n, (_, rt) in BUILTINS.items() if rt == t or t == "x" or rt == "x"
                         or (t == "c" and rt in "aSo")]
                if not self.chance(0.1):
                    names = [n for n in names if n not in MISSING]
                if names:
                    name = self.pick(sorted(names))
                    args = [self.arg(a, scope, depth - 1) for a in BUILTINS[name][0]]
                    if self.chance(0.002):  # wrong arity: OPA refuses to compile
                        args = args[:-1] if args else [lit(1)]
                    return ["call", name, args]
            elif kind == "arith" and t in ("n", "x", "S"):
                op = self.pick(["+", "-", "*", "/", "%"] if t != "S" else ["&", "|", "-"])
                at = "n" if t != "S" else "S"
                return ["bin", op, self.arg(at, scope, depth - 1), self.arg(at, scope, depth - 1)]
            elif kind == "cmp" and t in ("b", "x"):
                if self.chance(0.2):
                    return ["in", self.term("x", scope, depth - 1), self.term("c", scope, depth - 1)]
                ct = self.pick("nsxx")
                return ["cmp", self.pick(COMPARE), self.term(ct, scope, depth - 1),
                        self.term(ct, scope, depth - 1)]
            elif kind == "rule":
                rs = [x for x in self.rules if x[1] != "func" and (x[2] == t or t == "x")]
                if rs:
                    name = self.pick(rs)[0]
                    base = ["var", name] if self.chance(0.6) else \
                        ["ref", ["var", "data"], [lit("t"), lit(name)]]
                    rt = [x for x in self.rules if x[0] == name][0][1]
                    if rt in ("pobj",) and self.chance(0.5):
                        return ["ref", base, [self.term("s", scope, depth - 1)]]
                    return base
            elif kind == "func":
                fs = [x for x in self.rules if x[1] == "func"]
                if fs:
                    name, _, _, arity = self.pick(fs)
                    if self.chance(0.002):
                        arity += 1  # OPA refuses: wrong arity
                    return ["call", name, [self.term("x", scope, depth - 1) for _ in range(arity)]]
            elif kind == "comp" and t in ("a", "S", "o", "c", "x"):
                return self.comprehension(t, scope, depth - 1)
            elif kind == "compound" and t in ("a", "S", "o", "c", "x"):
                ct = t if t in "aSo" else self.pick("aSo")
                n = r.randint(0, 3)
                if ct == "a":
                    return ["arr", [self.term("x", scope, depth - 1) for _ in range(n)]]
                if ct == "S":
                    return ["set", [self.term("x", scope, depth - 1) for _ in range(n)]]
                return ["obj", [[self.term("s", scope, 0), self.term("x", scope, depth - 1)]
                                for _ in range(n)]]
            if kind == "lit":
                return self.literal(t)

    def arg(self, t, scope, depth):
        if self.chance(0.03):
            return self.term("x", scope, depth)
        if t == "c":
            t = self.pick("aaSos")
        if t == "A":
            t = self.pick("aaS")
        if t == "Q":  # a set of sets
            return ["set", [self.term("S", scope, depth) for _ in range(self.r.randint(0, 2))]]
        if t == "T":  # an array of strings
            return self.pick([["arr", [self.literal("s") for _ in range(self.r.randint(0, 3))]],
                              self.input_ref("a"), ["call", "split", [self.term("s", scope, depth), lit(",")]]])
        if t == "O":
            return ["arr", [self.literal("o") for _ in range(self.r.randint(0, 2))]]
        if t == "P":
            return lit([{"op": self.pick(["add", "remove", "replace", "bad"]),
                         "path": self.pick(["/a", "/role", "/x/y", ""]), "value": 1}])
        if t == "i":  # small integers: ranges stay small
            return self.pick([lit(self.r.randint(-3, 12)), self.input_ref("n") if self.chance(0.3) else lit(2)])
        if t == "C":  # small networks: net.cidr_expand lists every address
            return self.pick([lit(self.pick(["10.0.0.0/30", "192.168.1.0/29", "::1/126", "1.2.3.4/32", "bad"])),
                              self.input_ref("s")])
        if t == "L":
            return self.pick([lit(None), lit(["."]), lit([]), lit(["/", "."])])
        if t == "M":
            return self.pick([lit({"a": "b", "%": "x"}), lit({}), self.input_ref("o")])
        return self.term(t, scope, depth)

    def comprehension(self, t, scope, depth):
        inner = dict(scope)
        body = self.body(inner, self.r.randint(1, 3), depth, need_bind=True)
        new = [v for v in inner if v not in scope]
        head_scope = inner
        if t in ("c", "x"):
            t = self.pick("aSo")
        if t == "o":
            key = ["var", self.pick(new)] if new and self.chance(0.7) else self.term("s", head_scope, 0)
            return ["ocomp", key, self.term("x", head_scope, 1), body]
        head = ["var", self.pick(new)] if new and self.chance(0.7) else self.term("x", head_scope, 1)
        return ["acomp" if t == "a" else "scomp", head, body]

    # -- body literals ---------------------------------------------------------------------
    def condition(self, scope, depth):
        r = self.r
        kind = self.pick(["cmp", "cmp", "call", "ref", "in", "rule", "func"])
        if kind == "cmp":
            ct = self.pick("nssxb")
            return ["cmp", self.pick(COMPARE), self.term(ct, scope, depth), self.term(ct, scope, depth)]
        if kind == "call":
            names = sorted(n for n, (_, rt) in BUILTINS.items() if rt == "b"
                           and (n not in MISSING or self.chance(0.1)))
            name = self.pick(names)
            return ["call", name, [self.arg(a, scope, depth - 1) for a in BUILTINS[name][0]]]
        if kind == "ref":
            return self.pick([self.input_ref("b"), self.data_ref("b", scope), self.input_ref("x")])
        if kind == "in":
            return ["in", self.term("x", scope, depth), self.term("c", scope, depth)]
        if kind == "rule":
            return self.term("b", scope, depth) if self.rules else self.input_ref("b")
        return self.term("b", scope, depth)

    def body(self, scope, n, depth, need_bind=False):
        """`n` literals; new variables are added to `scope`."""
        lits = []
        if need_bind:
            lits.append(self.binding(scope, depth))
        while len(lits) < n:
            kind = self.pick(["bind", "bind", "cond", "cond", "cond", "every", "with", "some"])
            if kind == "bind":
                lits.append(self.binding(scope, depth))
            elif kind == "cond":
                lits.append([self.pick(["expr", "expr", "not"]), self.condition(scope, depth)])
            elif kind == "every" and depth > 0:
                v = self.fresh()
                coll = self.term("c", scope, depth - 1)
                inner = dict(scope)
                k = None
                if self.chance(0.3):
                    k = self.fresh()
                    inner[k] = "x"
                inner[v] = "x"
                lits.append(["every", k, v, coll, self.body(inner, self.r.randint(1, 2), depth - 1)])
            elif kind == "with" and self.rules:
                rs = [x for x in self.rules if x[1] != "func"]
                if not rs:
                    continue
                name = self.pick(rs)[0]
                if self.chance(0.7):
                    target = ["ref", ["var", "input"], [lit(self.pick(["user", "method", "n", "flag"]))]]
                    if self.chance(0.3):
                        target = ["var", "input"]
                else:
                    target = ["ref", ["var", "data"], [lit("cfg"), lit(self.pick(["roles", "enabled", "limits"]))]]
                value = self.term("x", scope, 1)
                v = self.fresh()
                scope[v] = "x"
                lits.append(["with", ["assign", ["var", v], ["var", name]], [[target, value]]])
            elif kind == "some":
                coll = self.pick([self.input_ref("a"), self.data_ref("a", scope), self.term("c", scope, depth - 1)])
                i = self.fresh()
                scope[i] = "x"
                v = self.fresh()
                scope[v] = "x"
                lits.append(["somedecl", [i]])
                lits.append(["unify", ["var", v], ["ref", coll, [["var", i]]]])
        return use_declared(["body"] + lits)

    def binding(self, scope, depth):
        r = self.r
        kind = self.pick(["assign", "assign", "somein", "somein", "somekv", "unify", "destructure",
                          "walk"])
        if kind == "assign" or depth <= 0:
            t = self.pick("nsbaoSx")
            v = self.fresh()
            term = self.term(t, scope, depth)
            scope[v] = t
            return ["assign", ["var", v], term]
        if kind == "somein":
            v = self.fresh()
            coll = self.pick([self.input_ref("a"), self.data_ref("a", scope), self.term("c", scope, depth - 1)])
            scope[v] = "s"
            return ["somein", None, ["var", v], coll]
        if kind == "somekv":
            k, v = self.fresh(), self.fresh()
            coll = self.pick([self.input_ref("o"), self.data_ref("o", scope), self.term("c", scope, depth - 1)])
            scope[k] = "x"
            scope[v] = "x"
            return ["somein", ["var", k], ["var", v], coll]
        if kind == "walk":
            coll = self.pick([self.input_ref("x"), self.data_ref("o", scope), self.term("c", scope, depth - 1)])
            p, v = self.fresh(), self.fresh()
            scope[p] = "a"
            if self.chance(0.3):
                pattern = ["arr", [["var", p], self.term("x", scope, 0)]]
                form = self.pick(["relation", "unify"])
            else:
                scope[v] = "x"
                pattern = ["arr", [["var", p], ["var", v]]]
                form = self.pick(["relation", "relation", "assign", "unify"])
            # `walk(x, out)`, or the call standing for each pair: `out := walk(x)`, `out = walk(x)`.
            return ["walk", coll, pattern, form]
        if kind == "unify":
            v = self.fresh()
            term = self.term(self.pick("nsx"), scope, depth)
            scope[v] = "x"
            if self.chance(0.5):
                return ["unify", ["var", v], term]
            return ["unify", term, ["var", v]]
        a, b = self.fresh(), self.fresh()
        scope[a] = "x"
        scope[b] = "x"
        if self.chance(0.3):
            # An object pattern matches only an object with exactly its keys.
            keys = self.r.sample(["role", "level", "name", "eng", "ops", "a"], self.r.randint(1, 2))
            pattern = ["obj", [[lit(k), ["var", v]] for k, v in zip(keys, (a, b))]]
            if len(keys) == 1:
                scope.pop(b)
            src = self.pick([self.input_ref("o"), self.data_ref("o", scope), self.term("o", scope, 1)])
            return [self.pick(["assign", "unify"]), pattern, src]
        src = self.pick([["arr", [self.term("x", scope, 0), self.term("x", scope, 0)]],
                         ["call", "split", [self.term("s", scope, 1), lit(self.pick([",", ".", "/"]))]],
                         self.input_ref("a")])
        pattern = ["arr", [["var", a], ["var", b]]]
        return [self.pick(["assign", "unify"]), pattern, src]

    # -- rules -------------------------------------------------------------------------------
    def rule(self, i):
        r = self.r
        kind = self.pick(["complete", "complete", "complete", "pset", "pobj", "func", "default",
                          "multi"])
        name = f"r{i}"
        scope = {}
        if kind in ("complete", "default", "multi"):
            t = self.pick("bbbnsaoS")
            rules = []
            if kind == "default":
                default = self.literal(t)
                rules.append(["default", name, default])
            n = 1 if kind != "multi" else r.randint(2, 3)
            for _ in range(n):
                s = {}
                body = self.body(s, r.randint(0, 4), 2)
                value = None if t == "b" and self.chance(0.5) else self.term(t, s, 2)
                chain = []
                if self.chance(0.25):
                    for _ in range(r.randint(1, 2)):
                        s2 = {}
                        b2 = self.body(s2, r.randint(0, 2), 2)
                        chain.append([self.term(t, s2, 1), b2])
                    if self.chance(0.5):
                        chain.append([self.literal(t), ["body"]])
                rules.append(["complete", name, value, body, ["else"] + [["elsebr"] + c for c in chain]])
            self.rules.append((name, "complete", t, 0))
            return rules
        if kind == "pset":
            rules = []
            for _ in range(r.randint(1, 2)):
                s = {}
                body = self.body(s, r.randint(1, 4), 2, need_bind=True)
                rules.append(["pset", name, self.term("x", s, 1), body])
            self.rules.append((name, "pset", "S", 0))
            return rules
        if kind == "pobj":
            s = {}
            body = self.body(s, r.randint(1, 4), 2, need_bind=True)
            keys = [self.term("s", s, 1) for _ in range(self.pick([1, 1, 2]))]
            rules = [["pobj", name, keys, self.term("x", s, 1), body]]
            if self.chance(0.2):
                s2 = {}
                rules.append(["pobj", name, [self.literal("s")], self.term("x", s2, 1),
                              self.body(s2, r.randint(0, 2), 1)])
            self.rules.append((name, "pobj", "o", 0))
            return rules
        # function
        arity = self.pick([1, 1, 2])
        name = f"f{i}"
        rules = []
        for _ in range(self.pick([1, 1, 2])):
            s = {}
            params = []
            for _ in range(arity):
                if self.chance(0.2):
                    params.append(self.literal(self.pick("sn")))
                else:
                    v = self.fresh()
                    s[v] = "x"
                    params.append(["var", v])
            t = self.pick("bnsx")
            body = self.body(s, r.randint(0, 3), 2)
            chain = []
            if self.chance(0.25):
                s2 = dict((p[1], "x") for p in params if p[0] == "var")
                chain.append([self.term(t, s2, 1), self.body(s2, r.randint(0, 2), 1)])
            rules.append(["func", name, params, self.term(t, s, 2), body, ["else"] + [["elsebr"] + c for c in chain]])
        if arity == 1 and self.chance(0.1):
            rules.append(["default", name + "(_)", self.literal("b")])
        self.rules.append((name, "func", "x", arity))
        return rules

    def program(self):
        rules = []
        for i in range(self.r.randint(2, 6)):
            rules.extend(self.rule(i))
        queried = [x[0] for x in self.rules if x[1] != "func"]
        if not queried:
            rules.extend(self.rule(99))
            while self.rules[-1][1] == "func":
                rules.extend(self.rule(len(self.rules) + 100))
            queried = [x[0] for x in self.rules if x[1] != "func"]
        queries = self.r.sample(queried, min(len(queried), self.r.randint(1, 3)))
        return {
            "ast": ["prog"] + rules,
            "rules": queries,
            "inputs": [self.input_doc() for _ in range(self.r.randint(2, 4))],
            "data": self.data_doc(),
        }


def mentioned(node, out):
    """Variable names a node mentions."""
    if isinstance(node, list):
        if node and node[0] == "var":
            out.add(node[1])
        elif node and node[0] == "somedecl":
            pass
        else:
            for x in node:
                mentioned(x, out)
    return out


def use_declared(body):
    """OPA refuses a body whose `some`/`every` variables are never used afterwards; mention
    each such variable once (`_ = v`), which changes nothing else."""
    lits = body[1:]
    extra = []
    for i, l in enumerate(lits):
        declared = []
        if l[0] == "somedecl":
            declared = l[1]
        elif l[0] == "somein":
            declared = [x[1] for x in (l[1], l[2]) if x is not None]
        elif l[0] == "every":
            inner = set()
            mentioned(l[4], inner)
            for v in [x for x in (l[1], l[2]) if x]:
                if v not in inner:
                    l[4].append(["unify", ["var", "_"], ["var", v]])
            continue
        later = set()
        for x in lits[i + 1:]:
            mentioned(x, later)
        extra += [["unify", ["var", "_"], ["var", v]] for v in declared if v not in later]
    return body + extra


# --- deliberately invalid programs (OPA must refuse; does `policy-bundler check`?) -------
INVALID = [
    ("unsafe-var", "r if { x > 1 }"),
    ("unsafe-head", "r := x if { input.a }"),
    ("unused-some", "r if {\n  some z\n  input.a == 1\n}"),
    ("non-ground-default", "default r := input.x"),
    ("default-var", "default r := [x]"),
    ("arity-builtin", "r := count([1], 2)"),
    ("arity-builtin-short", "r if startswith(\"a\")"),
    ("type-count", "r := count(1)"),
    ("type-startswith", "r if startswith(1, \"a\")"),
    ("type-plus", "r := \"a\" + 1"),
    ("type-concat", "r := concat(1, [\"a\"])"),
    ("recursion", "r if s\ns if r"),
    ("recursion-self", "r contains x if { some x in r }"),
    ("recursion-func", "f(x) := g(x)\ng(x) := f(x)\nr := f(1)"),
    ("unknown-func", "r := foo.bar(1)"),
    ("undefined-func", "r := f9(1)"),
    ("func-arity", "f(x) := x\nr := f(1, 2)"),
    ("rule-kind-conflict", "r := 1\nr contains 2"),
    ("func-rule-conflict", "r := 1\nr(x) := x"),
    ("double-default", "default r := 1\ndefault r := 2"),
    ("redeclared", "r if {\n  x := 1\n  x := 2\n}"),
    ("assign-input", "r if { input := 1 }"),
    ("with-bad-target", "r := s with foo as 1\ns := 1"),
    ("some-in-unsafe", "r if { some x in y; x }"),
    ("every-unsafe", "r if { every x in y { x } }"),
    ("compare-types", "r if { \"a\" > {1} ; [1] == \"x\" }"),
    ("type-object-get", "r := object.get(1, \"a\", 2)"),
    ("type-regex", "r if regex.match(1, 2)"),
    ("type-array-concat", "r := array.concat(\"a\", [1])"),
    ("bad-ref-head", "r[x] := 1 if { y := 1 }"),
    ("else-partial", "r contains 1 if { false } else := 2"),
    ("multi-value-default", "default r contains 1"),
    ("assign-twice-head", "r := 1 if { true }\nr = 2 if { true }\nr := 3"),
    ("shadow-builtin-arg", "r if { count := 1; count == 1 }"),
    ("var-in-import", "import data.foo.bar\nimport data.baz.bar\nr := bar"),
    ("unsafe-not", "r if { not x }"),
    ("unsafe-comprehension", "r := [x | y > 1]"),
    ("wildcard-head", "r := _"),
    ("non-bool-else-func", "f(x) := 1 if { x } else := 2 if { y }\nr := f(1)"),
    ("type-set-minus", "r := {1} - [1]"),
]


def invalid_program(seed):
    """A valid random program with one deliberate error spliced in (rules named `r`)."""
    r = random.Random(seed)
    name, snippet = r.choice(INVALID)
    g = Gen(seed)
    prog = g.program()
    source = render(prog["ast"]) + "\n" + snippet + "\n"
    return name, source


# --- rendering ------------------------------------------------------------------------------
def rego_json(v):
    if isinstance(v, float):
        if v == int(v) and abs(v) < 1e16 and not (v == 0 and str(v).startswith("-")):
            return f"{v:.1f}" if abs(v) < 1e15 else repr(v)
        return repr(v)
    return json.dumps(v, ensure_ascii=False)


def render_term(t, wrap=None):
    """Rego text of a term. `wrap(name, [arg texts])` replaces builtin calls and arithmetic
    (the oracle's non-strict rendering)."""
    k = t[0]
    rt = lambda x: render_term(x, wrap)  # noqa: E731
    if k == "lit":
        return rego_json(t[1])
    if k == "var":
        return t[1]
    if k == "ref":
        base = rt(t[1])
        if t[1][0] not in ("var", "ref"):
            base = f"({base})" if t[1][0] in ("bin", "cmp", "in") else base
        out = base
        for p in t[2]:
            if p[0] == "lit" and isinstance(p[1], str) and p[1].isidentifier() and p[1] not in KEYWORDS:
                out += "." + p[1]
            else:
                out += f"[{rt(p)}]"
        return out
    if k == "arr":
        return "[" + ", ".join(rt(x) for x in t[1]) + "]"
    if k == "set":
        return "{" + ", ".join(rt(x) for x in t[1]) + "}" if t[1] else "set()"
    if k == "obj":
        return "{" + ", ".join(f"{rt(a)}: {rt(b)}" for a, b in t[1]) + "}"
    if k == "call":
        args = [rt(x) for x in t[2]]
        # Comparisons never fail, and wrapping `equal` would change its meaning under `not`
        # (OPA reads `equal(a, b)` as `a == b`, a unification, not as a call).
        if wrap and t[1] in BUILTINS and t[1] not in COMPARISONS:
            return wrap(t[1], args)
        return f"{t[1]}({', '.join(args)})"
    if k == "bin":
        a, b = rt(t[2]), rt(t[3])
        if wrap:
            return wrap(ARITH[t[1]], [a, b])
        return f"({a} {t[1]} {b})"
    if k == "cmp":
        return f"({rt(t[2])} {t[1]} {rt(t[3])})"
    if k == "in":
        return f"({rt(t[1])} in {rt(t[2])})"
    if k == "acomp":
        return f"[{rt(t[1])} | {render_body_inline(t[2], wrap)}]"
    if k == "scomp":
        return f"{{{rt(t[1])} | {render_body_inline(t[2], wrap)}}}"
    if k == "ocomp":
        return f"{{{rt(t[1])}: {rt(t[2])} | {render_body_inline(t[3], wrap)}}}"
    raise ValueError(f"not a term: {t!r}")


KEYWORDS = {"as", "default", "else", "false", "import", "package", "not", "null", "true", "with",
            "some", "in", "every", "contains", "if", "set"}
TERMS = {"lit", "var", "ref", "arr", "set", "obj", "call", "bin", "cmp", "in", "acomp", "scomp", "ocomp"}


def render_lit(l, wrap):
    rt = lambda x: render_term(x, wrap)  # noqa: E731
    k = l[0]
    if k == "expr":
        return rt(l[1])
    if k == "not":
        return "not " + rt(l[1])
    if k == "assign":
        return f"{rt(l[1])} := {rt(l[2])}"
    if k == "unify":
        return f"{rt(l[1])} = {rt(l[2])}"
    if k == "somein":
        if l[1] is None:
            return f"some {rt(l[2])} in {rt(l[3])}"
        return f"some {rt(l[1])}, {rt(l[2])} in {rt(l[3])}"
    if k == "somedecl":
        return "some " + ", ".join(l[1])
    if k == "walk":
        if l[3] == "relation":
            return f"walk({rt(l[1])}, {rt(l[2])})"
        return f"{rt(l[2])} {':=' if l[3] == 'assign' else '='} walk({rt(l[1])})"
    if k == "every":
        head = f"{l[1]}, {l[2]}" if l[1] else l[2]
        inner = "; ".join(render_lit(x, wrap) for x in l[4][1:]) or "true"
        return f"every {head} in {rt(l[3])} {{ {inner} }}"
    if k == "with":
        mods = " ".join(f"with {rt(a)} as {rt(b)}" for a, b in l[2])
        return f"{render_lit(l[1], wrap)} {mods}"
    if k in TERMS:
        return rt(l)
    raise ValueError(f"not a literal: {l!r}")


def render_body_inline(body, wrap):
    return "; ".join(render_lit(x, wrap) for x in body[1:]) or "true"


def render_body(body, wrap, v0=False):
    """A rule body: ` if { ... }`, or ` { ... }` in Rego v0."""
    if len(body) == 1:
        return ""
    inner = "\n".join("  " + render_lit(x, wrap) for x in body[1:])
    return f"{'' if v0 else ' if'} {{\n{inner}\n}}"


def true_body(v0):
    return f"{'' if v0 else ' if'} {{\n  true\n}}"


def render_else(chain, wrap, v0=False):
    out = ""
    for i, br in enumerate(chain[1:], start=2):
        body = render_body(br[2], wrap, v0)
        if not body and i < len(chain):
            body = true_body(v0)  # only the last branch may go without a body
        out += f" else := {render_term(br[1], wrap)}{body}"
    return out


def render_rule(rule, wrap=None, v0=False):
    rt = lambda x: render_term(x, wrap)  # noqa: E731
    k = rule[0]
    if k == "default":
        return f"default {rule[1]} := {rt(rule[2])}"
    if k == "complete":
        value = "" if rule[2] is None else f" := {rt(rule[2])}"
        body = render_body(rule[3], wrap, v0)
        if len(rule[4]) > 1 and not body:
            body = true_body(v0)  # `else` needs a body before it
        if rule[2] is None and not body:
            body = " := true"
        return f"{rule[1]}{value}{body}{render_else(rule[4], wrap, v0)}"
    if k == "pset":
        if v0:  # `p[x] { ... }` is a partial set in Rego v0 (an object in v1)
            return f"{rule[1]}[{rt(rule[2])}]{render_body(rule[3], wrap, v0)}"
        return f"{rule[1]} contains {rt(rule[2])}{render_body(rule[3], wrap)}"
    if k == "pobj":
        keys = "".join(f"[{rt(x)}]" for x in rule[2])
        return f"{rule[1]}{keys} := {rt(rule[3])}{render_body(rule[4], wrap, v0)}"
    if k == "func":
        params = ", ".join(rt(p) for p in rule[2])
        body = render_body(rule[4], wrap, v0)
        if len(rule[5]) > 1 and not body:
            body = true_body(v0)
        return f"{rule[1]}({params}) := {rt(rule[3])}{body}{render_else(rule[5], wrap, v0)}"
    raise ValueError(f"not a rule: {rule!r}")


def render(prog, wrap=None):
    return "package t\n\n" + "\n\n".join(render_rule(x, wrap) for x in prog[1:]) + "\n"


# The keywords a v0 rendering imports, only where it uses them, as v0 policies do.
V0_IMPORTS = {"in": "import future.keywords.in", "every": "import future.keywords.every"}


def render_v0(prog):
    """The same program in Rego v0: bodies without `if`, partial sets as `p[x] { ... }`, and
    `import future.keywords.in` / `.every` where `in` / `every` are used."""
    rules = "\n\n".join(render_rule(x, v0=True) for x in prog[1:])
    used = set()
    uses_keywords(prog, used)
    imports = "".join(V0_IMPORTS[k] + "\n" for k in sorted(used))
    return f"package t\n\n{imports}\n{rules}\n" if imports else f"package t\n\n{rules}\n"


def uses_keywords(node, out):
    """Which of `in`, `every` the rendering of a node uses."""
    if isinstance(node, list) and node:
        if node[0] in ("in", "somein"):
            out.add("in")
        elif node[0] == "every":
            out.update(("in", "every"))
        for x in node:
            uses_keywords(x, out)
    return out


def is_v0(seed):
    """Whether the zerohop side evaluates a seed's program in its Rego v0 rendering: a quarter
    of the seeds, the same ones every run."""
    return random.Random(f"v0-{seed}").random() < 0.25


def generate(seed):
    return Gen(seed).program()
