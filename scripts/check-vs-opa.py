#!/usr/bin/env python3
"""Does `policy-bundler check` refuse what OPA refuses to compile, and only that?

Generates Rego programs from templates (random names and literals, seeded), compiles each with
the real OPA engine and runs `policy-bundler check` on it, then prints the share of
OPA-refused programs that check refuses and the number of OPA-accepted programs it refuses
(false positives: those break real policies). Also runs every .rego file under testdata/ and
tests/e2e/ through both. Exits 1 when a target is missed (< 99% refused, or any false positive).

With --cases DIR, also every test case (YAML with `modules:`, as OPA's and regorus's
conformance cases are written) under DIR: those are more programs OPA accepts, written by others.

usage: PYTHONPATH=.tools/opa .venv/bin/python scripts/check-vs-opa.py [--seed N] [--count N]
       [--bundler target/debug/policy-bundler] [--cases DIR] [-v]"""
import argparse
import pathlib
import random
import subprocess
import sys
import tempfile

from opa_bindings.engine import OpaEngine, OpaError

ROOT = pathlib.Path(__file__).resolve().parent.parent

# OPA refuses each of these to compile. {v}, {w}: fresh variable names; {n}: a number; {s}: a
# string literal; {f}: a field name; {r}: a rule name.
INVALID = [
    # unsafe variables
    "p if { {v} }",
    "p if { {v}.{f} == {n} }",
    "p if { input.{f} == {v} }",
    "p if { count({v}) > {n} }",
    "p if { {v} = {w} }",
    "p := {v}",
    "p := {v} if { input.{f} }",
    "p contains {v} if { input.{f}[_] }",
    "f(x) := {v} if { x > {n} }",
    "p[{v}] := {n} if { input.{f} }",
    "p if { not input.{f}[{v}] }",
    "p if { not input.{f}[_] }",
    "p if {{ not count(input.{f}[_]) }}",
    "p if {{ not input.{f}[_] == {n} }}",
    "p if {{ not startswith(input.{f}[_], {s}) }}",
    "import future.keywords.not\np if {{ not input.{f}[_] + 1 == {n} }}",
    "import future.keywords\np if {{ not count(input.{f}[x]) == x }}",
    "p if { not {v} }",
    "p := [{v} | {v} == {n}]",
    "p := count([x | x := {w}])",
    "p if { every x in input.{f} { x == {w} } }",
    "p if { some {v}; {v} }",
    "p if { {v} := {w} + 1 }",
    "p := {n} if { true } else := {v}",
    "p if { input.{f} with input.{f} as {v} }",
    "p if {{ y := [z | z := x]; x := {n} }}",  # a closure does not see a later `:=`
    "p if {{ every z in input.{f} {{ z == x }}; x := {n} }}",
    "q(x) := x\np if {{ z := q; z }}",  # a function used as a value
    # unused declared variables
    "p if { some {v}; input.{f} }",
    "p if { some {v}, {w}; input.{f}[{v}] }",
    "p if { every {v} in input.{f} { true } }",
    "p if { every {v}, {w} in input.{f} { {w} } }",
    # default values that are not ground
    "default p := {v}",
    "default p := input.{f}",
    "default p := [{n}, {v}]",
    "default p := {{\"{f}\": {v}}}",
    # builtins: argument types and counts
    "p if count({n})",
    "p if startswith({n}, {s})",
    "p if endswith({s}, [{n}])",
    "p if upper({n}) == {s}",
    "p if upper(input.{f}, {n})",
    "p if {{ {v} := {n}; lower({v}) == {s} }}",
    "p if sprintf({s}, {n}) == {s}",
    "p if count([{n}], {n}, {n})",
    "p if upper()",
    "p if startswith({s})",
    "p if contains({s}, {s}, {s}, {s})",
    "p if abs({s}) > {n}",
    "p if concat({s}, {s}) == {s}",
    "p if split({n}, {s})",
    "p if {{ x := {s}; count(x, {s}) }}",
    # types OPA infers: builtin results, rules' and functions' values, bound variables
    "p if sum(split(input.{f}, {s}))",
    "p if {{ [a, b] := split(input.{f}, {s}); abs(a) > {n} }}",
    "p if abs({r})\n{r} := {s}",
    "p if {{ some x in {r}; upper(x) }}\n{r} := [{n}]",
    "p if {{ some i; [{s}][i]; upper(i) }}",
    "p if upper(count(input.{f}))",
    "p if {{ x := [y | y := {s}]; sum(x) > {n} }}",
    "p if {{ x := {{\"a\": {n}}}; upper(x.a) }}",
    "f(x) := x\np := f({n}, {n})",
    "f({s}) := {n}\np := f({n})",
    "p := f({s})\nf(x) := y if {{ y := upper(x); abs(x) }}",
    "p if {{ [{n}] == {s} }}",
    "p if {{ {v} := {n}; {v} = {s} }}",
    "p if {{ x := {{\"a\": {n}}}; x.b }}",
    "p if {{ x := {s}; some y in x; y }}",
    "p if {{ x := {n}; x[_] }}",
    # recursion
    "p if {r}\n{r} if p",
    "f(x) := f(x)",
    "p if data.t.p",
    "p := count([x | x := q[_]])\nq contains y if {{ y := p }}",
    # := to something declared or used
    "p if {{ {v} := {n}; {v} := {n} }}",
    "p if {{ some {v}; {v} := {n} }}",
    "p if {{ {v} := {v} + {n} }}",
    "p if {{ input.{f} == {v}; {v} := {n} }}",
    "f({v}) := y if {{ {v} := {n}; y := {n} }}",
    # undefined functions, rule conflicts
    "p if {fn}({n})",
    "p if {{ {r}({n}) }}\n{r} := {n}",
    "p if data.nowhere.{fn}({n})",
    "default p := {n}\ndefault p := {n}",
    "p := {n}\np contains {n}",
    "f(x) := {n}\nf(x, y) := {n}",
    "p[x] := {n} if {{ x := input.{f} }}\np := {n}",
]

# OPA compiles each of these.
VALID = [
    "{r} := x if {{ [_, {r}] := split(input.{f}, \"/\"); x := {r} }}",
    "{r} := {r} if {{ {r} := input.{f} }}",
    "p if {{ some x in input.{f}; x == {n} }}",
    "p if {{ input.{f}[i] == {n} }}",
    "p if {{ input.{f}[_] == {n} }}",
    "p if {{ not input.{f}[0] == {n} }}",
    # calls nested under `not` run before it and bind outside it
    "p if {{ not input.{f}[_] + 1 == {n} }}",
    "p if {{ not [count(input.{f}[_])] == [{n}] }}",
    "p if {{ not input.m[count(input.{f}[_])] }}",
    "p if {{ not count(input.{f}[x]) == x }}",
    "p if {{ x := input.{f}; y := [z | some z in x]; count(y) > {n} }}",
    "f(x) := y if {{ y := x + {n} }}",
    "p if {{ [a, b] := split(input.{f}, \"/\"); a == b }}",
    "p if {{ {{\"k\": v}} := input.{f}; v }}",
    "p if {{ count(input.{f}, n); n > {n} }}",
    "p if {{ x = input.{f}; y = x; y }}",
    "p if {{ [x, 1] = [2, y]; x == y }}",
    "p contains k if {{ some k, _ in input.{f} }}",
    "p[k] := v if {{ some k, v in input.{f} }}",
    "p if {{ every k, v in input.{f} {{ k == v }} }}",
    "p if {{ every _, v in input.{f} {{ v }} }}",
    "p if {{ {r}[x]; x > {n} }}\n{r} contains {n}",
    "default p := {{\"a\": [{n}, true, {s}]}}",
    "p if {{ x := {n}; y := [x | x := 2] }}",
    "p if {{ not {r} }}\n{r} if input.{f}",
    "p if sprintf(\"%v\", [input.{f}]) == {s}",
    "p if {{ split(input.{f}, \"/\", parts); parts[1] == {s} }}",
    "p if {{ x := upper(input.{f}); startswith(x, {s}) }}",
    "p := y if {{ y := [v | v := input.{f}[_]] }}",
    "p if {{ input.{f}[x].b[y] == {n}; x == y }}",
    "p if {{ y := [z | z := x]; x = {n} }}",
    "p if {{ some {v}; input.{f}[{v}] }}",
    "p if {{ {v} := {n}; {v} > 0 }}",
    "p if {{ count([1, 2]) == {n} }}",
    "p if {{ input.{f} == {s} }}\np if {{ input.{f} == {n} }}",
    "default p := false\np if {{ input.{f} }}",
    "default f(_) := {n}\nf(x) := x",
    "f(x) := {n}\nf(x) := {n} if x",
    "p := {n}\np := {n}",
    "p.q := {n}\np.r := {s}",
    "p if {{ f({n}, y); y }}\nf(x) := x > 0",
    "p if {{ time.now_ns() > {n} }}",
    "p if {{ io.jwt.decode(input.{f}, [h, b, s]); b.sub == {s} }}",
    "p if {{ x := {{k: v | some k, v in input.{f}}}; x.a }}",
    "p if {{ x := input.{f} with input.{f} as {n} }}",
    "p if {{ {v} := input.{f}; {w} := {v}; {w} }}",
    "p if {{ q with input as {{\"{f}\": {n}}} }}\nq if input.{f}",
    "p if {{ some i, {v} in input.{f}; {v} > i }}",
    "p if {{ input.{f} in {{\"a\", \"b\"}} }}",
    "p if {{ x := {n}; x in input.{f} }}",
    "p if {{ abs(-{n}) > 0 }}",
    "p if {{ x := input.{f} - {n}; x > 0 }}",
    "p if {{ {r} }}\n{r} := x if {{ x := input.{f}; x > {n} }}",
    "p if concat(\",\", input.{f}) == {s}",
    "p if {{ x := {{1, 2}} | {{3}}; count(x) == 3 }}",
    # types: what OPA's checker lets through
    "p if sum([to_number(x) | some x in split(input.{f}, {s})]) > {n}",
    "p if {{ [a, b] := split(input.{f}, {s}); upper(a) == b }}",
    "p if upper({r})\n{r} := {s}",
    "p if {{ some i; [{s}][i]; i > {n} }}",
    "f(x) := x\np if f({n}, {n})",
    "f({s}) := {n}\nf(x) := {n}\np := f({n})",
    "p if {{ y := ([{n}] == {s}); not y }}",
    "p if {{ x := {{}}; not x.a }}",
    "p := json.marshal_with_options({n}, {{\"pretty\": true}})",
    "p := json.marshal_with_options({n}, {{k: {n} | k := {n}}})",
    "p if {{ [a, b] = [{s}, input.{f}]; not ({{a, 1}} in a); time.format(a) }}",
    "p if {{ every x in [{n}] {{ y := {n}; upper(y); x }} }}",
    "f(x) := abs(x) if x > {n}\np := f({s})",
    "f(x) := y if {{ y := upper(x); lower(x) == y }}",
    "p if {{ x := []; not x[2] }}",
]

NAMES = ["a", "b", "c", "x1", "y2", "foo", "bar", "uid", "tok", "path", "user", "role"]
FIELDS = ["a", "b", "path", "user", "method", "headers", "items"]
RULES = ["q", "r", "allowed", "deny", "is_admin", "spiffe_id"]
FUNCTIONS = ["nofunc", "frobnicate", "lookup_thing", "missing_fn", "xyz"]


def render(template, rng):
    v, w = rng.sample(NAMES, 2)
    values = {
        "v": v,
        "w": w,
        "n": str(rng.randint(0, 99)),
        "s": '"' + rng.choice(["a", "/x", "GET", "", "b c"]) + '"',
        "f": rng.choice(FIELDS),
        "r": rng.choice(RULES),
        "fn": rng.choice(FUNCTIONS),
    }
    # Templates with `{{` are format strings; the others use single braces only as holes.
    if "{{" in template:
        return template.format(**values)
    out = template
    for key, value in values.items():
        out = out.replace("{" + key + "}", value)
    return out


def opa_refuses(source):
    return opa_refuses_files({"t.rego": source})


def opa_refuses_files(files):
    engine = OpaEngine()
    try:
        for name, source in files.items():
            engine.add_policy(name, source)
        engine.eval_query("true")
        return None
    except OpaError as e:
        return str(e)
    finally:
        engine.close()


def check_refuses(bundler, files, rego_v0=False):
    with tempfile.TemporaryDirectory() as tmp:
        root = pathlib.Path(tmp) / "policy"
        for name, source in files.items():
            path = root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(source)
        if rego_v0:
            (root / ".manifest").write_text('{"rego_version": 0}')
        run = subprocess.run([bundler, "check", str(root)], capture_output=True, text=True)
        if run.returncode not in (0, 1):
            raise RuntimeError(f"check failed to run: {run.stderr}")
        return run.stderr.strip() if run.returncode == 1 else None


def corpus():
    """Every .rego file of the repository's policies, as (path, source, rego v0?)."""
    for base in ("testdata", "tests/e2e"):
        for path in sorted((ROOT / base).rglob("*.rego")):
            v0 = any(
                (p / ".manifest").exists() and '"rego_version": 0' in (p / ".manifest").read_text()
                for p in path.parents
            )
            yield path.relative_to(ROOT), path.read_text(errors="replace"), v0


def test_cases(directory):
    """The modules of each YAML test case under `directory`, as {file name: source}."""
    import yaml

    for path in sorted(pathlib.Path(directory).rglob("*.yaml")):
        try:
            doc = yaml.safe_load(path.read_text())
        except yaml.YAMLError:
            continue
        for case in (doc or {}).get("cases", []) if isinstance(doc, dict) else []:
            modules = case.get("modules") if isinstance(case, dict) else None
            if modules and all(isinstance(m, str) for m in modules):
                yield {f"m{i}.rego": m for i, m in enumerate(modules)}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--count", type=int, default=4, help="programs per template")
    parser.add_argument("--bundler", default=str(ROOT / "target/debug/policy-bundler"))
    parser.add_argument("--cases", help="a directory of YAML test cases with `modules:`")
    parser.add_argument(
        "--rego-dir",
        help="a directory of .rego files: all of them as one bundle, then each file alone",
    )
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args()
    rng = random.Random(args.seed)

    refused_by_opa = refused_by_both = accepted_by_opa = false_positives = 0
    misses, wrongs = [], []
    programs = []
    for template in INVALID + VALID:
        for _ in range(args.count):
            programs.append("package t\n\n" + render(template, rng) + "\n")
    for source in dict.fromkeys(programs):
        opa = opa_refuses(source)
        ours = check_refuses(args.bundler, {"t.rego": source})
        if opa:
            refused_by_opa += 1
            if ours:
                refused_by_both += 1
            else:
                misses.append((source, opa))
        else:
            accepted_by_opa += 1
            if ours:
                false_positives += 1
                wrongs.append((source, ours))
    corpus_files = corpus_fp = 0
    for path, source, v0 in corpus():
        if v0:
            continue  # the bridge compiles v1 only
        corpus_files += 1
        if opa_refuses(source) is None and (ours := check_refuses(args.bundler, {path.name: source})):
            corpus_fp += 1
            wrongs.append((f"# {path}\n{source}", ours))

    cases = cases_refused_by_opa = cases_refused_by_both = cases_fp = 0
    for files in test_cases(args.cases) if args.cases else []:
        opa = opa_refuses_files(files)
        ours = check_refuses(args.bundler, files)
        if opa:
            cases_refused_by_opa += 1
            cases_refused_by_both += bool(ours)
            if not ours and args.verbose:
                misses.append(("\n".join(files.values()), opa))
        else:
            cases += 1
            if ours:
                cases_fp += 1
                wrongs.append(("\n".join(files.values()), ours))

    rego_accepted = rego_fp = 0
    if args.rego_dir:
        paths = [
            p
            for p in sorted(pathlib.Path(args.rego_dir).rglob("*.rego"))
            if not p.name.endswith("_test.rego")  # check leaves test modules out, as opa build
        ]
        sets = [{str(p.relative_to(args.rego_dir)): p.read_text(errors="replace") for p in paths}]
        sets += [{p.name: p.read_text(errors="replace")} for p in paths]
        for files in sets:
            if opa_refuses_files(files) is None:
                rego_accepted += 1
                if ours := check_refuses(args.bundler, files):
                    rego_fp += 1
                    wrongs.append((f"# {', '.join(files)[:200]}\n", ours))

    share = 100.0 * refused_by_both / max(refused_by_opa, 1)
    print(f"generated: {refused_by_opa} programs OPA refuses, check refuses {refused_by_both} ({share:.1f}%)")
    print(f"generated: {accepted_by_opa} programs OPA accepts, check refuses {false_positives}")
    print(f"corpus: {corpus_files} files OPA accepts, check refuses {corpus_fp}")
    if args.cases:
        print(f"cases: {cases} OPA accepts, check refuses {cases_fp}; "
              f"{cases_refused_by_opa} OPA refuses, check refuses {cases_refused_by_both}")
    if args.rego_dir:
        print(f"{args.rego_dir}: {rego_accepted} bundles or files OPA accepts, check refuses {rego_fp}")
    if args.verbose or wrongs:
        for source, ours in wrongs:
            print(f"--- FALSE POSITIVE\n{source}>>> {ours}")
    if args.verbose:
        for source, opa in misses:
            print(f"--- MISSED\n{source}>>> {opa}")
    return 0 if share >= 99.0 and not wrongs else 1


sys.exit(main())
