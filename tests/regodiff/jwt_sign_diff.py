#!/usr/bin/env python3
"""`io.jwt.encode_sign` and `io.jwt.encode_sign_raw` against the real OPA engine: random
headers and payloads (HTML characters, number texts, sets, non-JSON payloads with and without
`typ`) signed with HS*, RS* and EdDSA, whose signatures are deterministic, so zerohop's token
must be OPA's byte for byte, on the RVM and the interpreter. Keys are the RFCs' test vectors
(RFC 7515 A.1 and A.2, RFC 8037 A). Exits non-zero on any difference.

usage: python3 tests/regodiff/jwt_sign_diff.py [SEED] [N]"""
import json
import os
import random
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, ".tools", "opa"))
import oracle  # noqa: E402
from opa_bindings.engine import OpaEngine, OpaError  # noqa: E402

RUNNER = os.path.join(ROOT, "target", "regodiff", "regodiff-runner")

HS_KEY = {"kty": "oct", "k": "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow"}
ED_KEY = {"kty": "OKP", "crv": "Ed25519", "d": "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A",
          "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}
RSA_KEY = {
    "kty": "RSA",
    "n": ("ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJ"
           "PMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0"
           "LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uD"
           "Zlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2"
           "PAcDTW9gb54h4FRWyuXpoQ"
           ),
    "e": "AQAB",
    "d": ("Eq5xpGnNCivDflJsRQBXHx1hdR1k6Ulwe2JZD50LpXyWPEAeP88vLNO97IjlA7_GQ5sLKMgvfTeXZx9S"
           "E-7YwVol2NXOoAJe46sui395IW_GO-pWJ1O0BkTGoVEn2bKVRUCgu-GjBVaYLU6f3l9kJfFNS3E0QbVd"
           "xzubSu3Mkqzjkn439X0M_V51gfpRLI9JYanrC4D4qAdGcopV_0ZHHzQlBjudU2QvXt4ehNYTCBr6XCLQ"
           "UShb1juUO1ZdiYoFaFQT5Tw8bGUl_x_jTj3ccPDVZFD9pIuhLhBOneufuBiB4cS98l2SR_RQyGWSeWjn"
           "czT0QU91p1DhOVRuOopznQ"
           ),
    "p": ("4BzEEOtIpmVdVEZNCqS7baC4crd0pqnRH_5IB3jw3bcxGn6QLvnEtfdUdiYrqBdss1l58BQ3KhooKeQT"
           "a9AB0Hw_Py5PJdTJNPY8cQn7ouZ2KKDcmnPGBY5t7yLc1QlQ5xHdwW1VhvKn-nXqhJTBgIPgtldC-KDV"
           "5z-y2XDwGUc"
           ),
    "q": ("uQPEfgmVtjL0Uyyx88GZFF1fOunH3-7cepKmtH4pxhtCoHqpWmT8YAmZxaewHgHAjLYsp1ZSe7zFYHj7"
           "C6ul7TjeLQeZD_YwD66t62wDmpe_HlB-TnBA-njbglfIsRLtXlnDzQkv5dTltRJ11BKBBypeeF6689rj"
           "cJIDEz9RWdc"
           ),
    "dp": ("BwKfV3Akq5_MFZDFZCnW-wzl-CCo83WoZvnLQwCTeDv8uzluRSnm71I3QCLdhrqE2e9YkxvuxdBfpT_P"
           "I7Yz-FOKnu1R6HsJeDCjn12Sk3vmAktV2zb34MCdy7cpdTh_YVr7tss2u6vneTwrA86rZtu5Mbr1C1Xs"
           "mvkxHQAdYo0"
           ),
    "dq": ("h_96-mK1R_7glhsum81dZxjTnYynPbZpHziZjeeHcXYsXaaMwkOlODsWa7I9xXDoRwbKgB719rrmI2oK"
           "r6N3Do9U0ajaHF-NKJnwgjMd2w9cjz3_-kyNlxAr2v4IKhGNpmM5iIgOS1VZnOZ68m6_pbLBSp3nssTd"
           "lqvd0tIiTHU"
           ),
    "qi": ("IYd7DHOhrWvxkwPQsRM2tOgrjbcrfvtQJipd-DlcxyVuuM9sQLdgjVk2oy26F0EmpScGLq2MowX7fhd_"
           "QJQ3ydy5cY7YIBi87w93IKLEdfnbJtoOPLUW0ITrJReOgo1cq9SbsxYawBgfp_gh6A5603k2-ZQwVK0J"
           "KSHuLFkuQ3U"
           ),
}
KEYS = {"HS256": HS_KEY, "HS384": HS_KEY, "HS512": HS_KEY, "RS256": RSA_KEY, "RS384": RSA_KEY,
        "RS512": RSA_KEY, "EdDSA": ED_KEY}
VALUES = ['"<a&b>"', '"ü\\u2028x"', '1e3', '1.50', '-0', '[1, "x"]', '{"z": 1, "a": [true, null]}',
          '123456789012345678901234567890', '"\\"q\\""', '{1, 2}']


def rego_object(d):
    """One field a line: regorus refuses lines over 1024 columns."""
    return "{\n" + ",\n".join(f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in d.items()) + "\n}"


def programs(seed, n):
    rnd = random.Random(seed)
    for _ in range(n):
        alg = rnd.choice(sorted(KEYS))
        payload = "{" + ", ".join(f'"k{j}": {rnd.choice(VALUES)}' for j in range(rnd.randint(0, 3))) + "}"
        header = '{"alg": "%s"%s}' % (alg, rnd.choice(['', ', "typ": "JWT"', ', "kid": "<k>"', ', "x": 2.0',
                                                      ', "typ": "text"']))
        key = rego_object(KEYS[alg])
        yield f"k := {key}\nr := io.jwt.encode_sign({header}, {payload}, k)"
        raw_payload = rnd.choice([payload, "not json"])
        yield f"k := json.marshal({key})\nr := io.jwt.encode_sign_raw(`{header}`, `{raw_payload}`, k)"


def main():
    seed = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    runner = subprocess.Popen([RUNNER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    cases = differences = 0
    for i, rego in enumerate(programs(seed, n)):
        source = "package t\n" + rego + "\n"
        engine = OpaEngine()
        engine.add_policy("t.rego", source)
        try:
            opa = ("value", engine.eval_document("t.r", {}))
        except OpaError as e:
            # OPA-Envoy's non-strict builtin errors: the call is undefined.
            opa = ("undefined",) if oracle.is_builtin_error(str(e)) or e.code == "undefined" else ("error", str(e))
        engine.close()
        job = {"id": i, "modules": {"t.rego": source}, "rules": ["r"], "inputs": [{}],
               "modes": ["precompiled", "interpreted"]}
        runner.stdin.write(json.dumps(job) + "\n")
        runner.stdin.flush()
        for mode, rules in json.loads(runner.stdout.readline())["results"].items():
            cases += 1
            out = rules["r"].get("outputs", [rules["r"]])[0]
            zerohop = ("value", out["value"]) if "value" in out else ("undefined",) if "undefined" in out else ("error", str(out))
            if zerohop != opa:
                differences += 1
                print(f"--- {mode}\n{source}opa: {opa}\nzerohop: {zerohop}")
    runner.stdin.close()
    print(f"jwt_sign_diff: {cases} signings (seed {seed}), {differences} differ from OPA")
    sys.exit(1 if differences else 0)


if __name__ == "__main__":
    main()
