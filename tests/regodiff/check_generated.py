#!/usr/bin/env python3
"""`policy-bundler check` over the generator's programs (untuned, as regodiff draws them):
of those OPA accepts, how many check refuses (false positives: each breaks a real policy), and
of those OPA refuses, how many check refuses too.

An acceptance by OPA that check contradicts is asked again in a fresh process: the OPA bridge,
long-lived, now and then accepts a program it refuses when asked fresh.

usage: python3 tests/regodiff/check_generated.py [--start SEED] [--count N] [--bundler PATH]
Exits 1 on any false positive (each is printed)."""
import argparse
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, ".tools", "opa"))

import gen  # noqa: E402
from opa_bindings.engine import OpaEngine, OpaError  # noqa: E402

FRESH = """import sys
sys.path.insert(0, sys.argv[1])
from opa_bindings.engine import OpaEngine, OpaError
e = OpaEngine()
try:
    e.add_policy("t.rego", sys.stdin.read()); e.eval_query("x := 1"); print("accepted")
except OpaError:
    print("refused")
finally:
    e.close()
"""


def opa_refuses(source):
    engine = OpaEngine()
    try:
        engine.add_policy("t.rego", source)
        engine.eval_query("x := 1")
        return False
    except OpaError:
        return True
    finally:
        engine.close()


def opa_refuses_fresh(source):
    run = subprocess.run([sys.executable, "-c", FRESH, os.path.join(ROOT, ".tools", "opa")],
                         input=source, capture_output=True, text=True)
    return run.stdout.strip() != "accepted"


def check_refuses(bundler, source):
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "t.rego"), "w") as f:
            f.write(source)
        with open(os.path.join(tmp, ".manifest"), "w") as f:
            f.write('{"rego_version": 1}')
        run = subprocess.run([bundler, "check", tmp], capture_output=True, text=True)
        return run.stderr.strip() if run.returncode != 0 else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--start", type=int, default=1)
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--bundler", default=os.path.join(ROOT, "target", "debug", "policy-bundler"))
    args = ap.parse_args()
    accepted = refused = both = 0
    false_positives = []
    for seed in range(args.start, args.start + args.count):
        source = gen.render(gen.generate(seed)["ast"])
        ours = check_refuses(args.bundler, source)
        opa = opa_refuses(source)
        if not opa and ours and opa_refuses_fresh(source):
            opa = True
        if opa:
            refused += 1
            both += bool(ours)
        else:
            accepted += 1
            if ours:
                false_positives.append((seed, source, ours))
    for seed, source, ours in false_positives:
        print(f"--- FALSE POSITIVE (seed {seed})\n{source}>>> {ours}\n")
    print(f"seeds {args.start}..{args.start + args.count - 1}: OPA accepts {accepted}, check refuses "
          f"{len(false_positives)} of them; OPA refuses {refused}, check refuses {both} "
          f"({both / max(refused, 1):.1%})")
    sys.exit(1 if false_positives else 0)


if __name__ == "__main__":
    main()
