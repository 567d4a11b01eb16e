//! `io.jwt.*` against OPA's semantics (`v1/topdown/tokens.go`, `tokens_test.go`): `false` or
//! `[false, {}, {}]` for tokens that fail a check, `Err` (undefined in OPA-Envoy) for what
//! OPA reports as a builtin error.

use super::*;
use crate::jws::testkeys::*;

/// 2023-11-14T22:13:20Z, the evaluation time of these tests.
const NOW_S: i64 = 1_700_000_000;
const NOW_NS: i64 = NOW_S * 1_000_000_000;

fn json(text: &str) -> Value {
    Value::from_json_str(text).unwrap()
}

fn s(text: &str) -> Value {
    Value::from(text)
}

fn decode_verify(token: &str, constraints: &str) -> Result<Value, String> {
    call(
        "io.jwt.decode_verify",
        &[s(token), json(constraints)],
        NOW_NS,
    )
}

fn verified(result: Result<Value, String>) -> bool {
    match result.unwrap() {
        Value::Array(a) => {
            if a[0] == Value::Bool(false) {
                assert_eq!(a[1], Value::new_object());
                assert_eq!(a[2], Value::new_object());
            }
            a[0] == Value::Bool(true)
        }
        other => panic!("not an array: {other}"),
    }
}

fn constraint_string(text: &str) -> String {
    serde_json::to_string(text).unwrap()
}

/// The constraint that holds the verification key of `alg`'s default key.
fn key_constraint(alg: &str) -> String {
    if alg.starts_with("HS") {
        r#""secret": "secret""#.to_string()
    } else {
        format!(r#""cert": {}"#, constraint_string(default_keys(alg).1))
    }
}

const ALGS: &[&str] = &[
    "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256",
    "ES384", "ES512",
];

#[test]
fn decode_verify_accepts_each_algorithm_with_its_key_and_returns_header_and_payload() {
    for alg in ALGS {
        let token = token(alg, r#"{"sub":"alice","exp":1800000000}"#);
        let result = decode_verify(&token, &format!("{{{}}}", key_constraint(alg))).unwrap();
        assert_eq!(
            result,
            json(&format!(
                r#"[true, {{"alg":"{alg}","typ":"JWT"}}, {{"sub":"alice","exp":1800000000}}]"#
            )),
            "{alg}"
        );
    }
}

#[test]
fn decode_verify_gives_false_for_a_token_that_fails_a_check() {
    let hs = |payload: &str| token("HS256", payload);
    let secret = r#"{"secret": "secret"}"#;
    let cases: Vec<(&str, String, String)> = vec![
        ("wrong secret", hs("{}"), r#"{"secret": "other"}"#.into()),
        (
            "wrong public key",
            token("RS256", "{}"),
            format!(r#"{{"cert": {}}}"#, constraint_string(RSA_OTHER_PUB)),
        ),
        ("RS token, HMAC secret", token("RS256", "{}"), secret.into()),
        (
            // The public key's PEM as the HMAC secret: the key is not an HMAC key.
            "HS token signed with the public key text",
            token_with("HS256", RSA_PUB, r#"{"alg":"HS256"}"#, "{}"),
            format!(r#"{{"cert": {}}}"#, constraint_string(RSA_PUB)),
        ),
        (
            "alg none",
            format!("{}.{}.", b64(br#"{"alg":"none"}"#), b64(b"{}")),
            secret.into(),
        ),
        (
            "no alg",
            token_with("HS256", "secret", r#"{"typ":"JWT"}"#, "{}"),
            secret.into(),
        ),
        (
            "unknown alg",
            token_with("HS256", "secret", r#"{"alg":"HS257"}"#, "{}"),
            secret.into(),
        ),
        (
            "alg constraint",
            hs("{}"),
            r#"{"secret": "secret", "alg": "HS512"}"#.into(),
        ),
        (
            "critical header not understood",
            token_with(
                "HS256",
                "secret",
                r#"{"alg":"HS256","crit":["exp"],"exp":1}"#,
                "{}",
            ),
            secret.into(),
        ),
        (
            "expired",
            hs(&format!(r#"{{"exp":{}}}"#, NOW_S - 1)),
            secret.into(),
        ),
        (
            "expires now",
            hs(&format!(r#"{{"exp":{NOW_S}}}"#)),
            secret.into(),
        ),
        (
            "not yet valid",
            hs(&format!(r#"{{"nbf":{}}}"#, NOW_S + 1)),
            secret.into(),
        ),
        (
            "expired at the time constraint",
            hs(&format!(r#"{{"exp":{}}}"#, NOW_S + 10)),
            format!(
                r#"{{"secret": "secret", "time": {}}}"#,
                (NOW_S + 10) * 1_000_000_000
            ),
        ),
        (
            "iss missing",
            hs("{}"),
            r#"{"secret": "secret", "iss": "a"}"#.into(),
        ),
        (
            "iss differs",
            hs(r#"{"iss":"b"}"#),
            r#"{"secret": "secret", "iss": "a"}"#.into(),
        ),
        (
            "aud missing",
            hs("{}"),
            r#"{"secret": "secret", "aud": "a"}"#.into(),
        ),
        (
            "aud differs",
            hs(r#"{"aud":"b"}"#),
            r#"{"secret": "secret", "aud": "a"}"#.into(),
        ),
        (
            "aud not in list",
            hs(r#"{"aud":["b","c"]}"#),
            r#"{"secret": "secret", "aud": "a"}"#.into(),
        ),
        // A token with an audience needs an aud constraint that names it.
        (
            "aud without constraint",
            hs(r#"{"aud":"a"}"#),
            secret.into(),
        ),
        (
            "aud not a string",
            hs(r#"{"aud":7}"#),
            r#"{"secret": "secret", "aud": "7"}"#.into(),
        ),
        (
            "signature of another payload",
            {
                let t = hs(r#"{"sub":"alice"}"#);
                let parts: Vec<&str> = t.split('.').collect();
                format!("{}.{}.{}", parts[0], b64(br#"{"sub":"admin"}"#), parts[2])
            },
            secret.into(),
        ),
    ];
    for (name, token, constraints) in cases {
        assert!(!verified(decode_verify(&token, &constraints)), "{name}");
    }
}

#[test]
fn decode_verify_accepts_what_the_claims_allow() {
    let hs = |payload: &str| token("HS256", payload);
    for (name, payload, constraints) in [
        ("exp ahead", format!(r#"{{"exp":{}}}"#, NOW_S + 1), "{}"),
        ("exp as a float", format!(r#"{{"exp":{}.5}}"#, NOW_S), "{}"),
        ("nbf now", format!(r#"{{"nbf":{NOW_S}}}"#), "{}"),
        (
            "exp past but the time constraint is earlier",
            format!(r#"{{"exp":{}}}"#, NOW_S - 10),
            r#", "time": 1000"#,
        ),
        ("iss", r#"{"iss":"a"}"#.into(), r#", "iss": "a""#),
        ("aud string", r#"{"aud":"a"}"#.into(), r#", "aud": "a""#),
        (
            "aud in list",
            r#"{"aud":["b", 1, "a"]}"#.into(),
            r#", "aud": "a""#,
        ),
    ] {
        let constraints = if constraints == "{}" {
            r#"{"secret": "secret"}"#.to_string()
        } else {
            format!(r#"{{"secret": "secret"{constraints}}}"#)
        };
        assert!(
            verified(decode_verify(&hs(&payload), &constraints)),
            "{name}"
        );
    }
}

#[test]
fn decode_verify_errors_where_opa_errors() {
    let good = token("HS256", "{}");
    let hs = |payload: &str| token("HS256", payload);
    let cases: Vec<(&str, Value, Value)> = vec![
        (
            "token not a string",
            json("1"),
            json(r#"{"secret":"secret"}"#),
        ),
        ("constraints not an object", s(&good), json(r#""secret""#)),
        ("no key", s(&good), json("{}")),
        ("empty secret", s(&good), json(r#"{"secret":""}"#)),
        (
            "two keys",
            s(&good),
            json(&format!(
                r#"{{"secret":"s", "cert":{}}}"#,
                constraint_string(RSA_PUB)
            )),
        ),
        (
            "unknown constraint",
            s(&good),
            json(r#"{"secret":"s","sub":"x"}"#),
        ),
        ("bad cert", s(&good), json(r#"{"cert":"nope"}"#)),
        ("cert not a string", s(&good), json(r#"{"cert":{}}"#)),
        (
            "negative time",
            s(&good),
            json(r#"{"secret":"s","time":-1}"#),
        ),
        (
            "time not a number",
            s(&good),
            json(r#"{"secret":"s","time":"now"}"#),
        ),
        (
            "iss not a string",
            s(&good),
            json(r#"{"secret":"s","iss":1}"#),
        ),
        ("two parts", s("a.b"), json(r#"{"secret":"s"}"#)),
        ("no periods", s("garbage"), json(r#"{"secret":"s"}"#)),
        ("header not base64", s("#.e30.x"), json(r#"{"secret":"s"}"#)),
        (
            "header not JSON",
            s(&format!("{}.e30.", b64(b"{"))),
            json(r#"{"secret":"s"}"#),
        ),
        (
            "header alg not a string",
            s(&format!("{}.e30.", b64(br#"{"alg":1}"#))),
            json(r#"{"secret":"s"}"#),
        ),
        (
            "JWE",
            s(&format!(
                "{}.e30.",
                b64(br#"{"alg":"dir","enc":"A128GCM"}"#)
            )),
            json(r#"{"secret":"s"}"#),
        ),
        (
            "signature not base64",
            s(&format!("{}.e30.$", b64(br#"{"alg":"HS256"}"#))),
            json(r#"{"secret":"s"}"#),
        ),
        // Signed correctly, but the payload is not an object: an error after verification.
        (
            "payload not an object",
            s(&hs("[1]")),
            json(r#"{"secret":"secret"}"#),
        ),
        (
            "exp not a number",
            s(&hs(r#"{"exp":"soon"}"#)),
            json(r#"{"secret":"secret"}"#),
        ),
        (
            "nbf not a number",
            s(&hs(r#"{"nbf":"soon"}"#)),
            json(r#"{"secret":"secret"}"#),
        ),
        // OPA panics inside the builtin here; any error is undefined.
        (
            "iss claim not a string",
            s(&hs(r#"{"iss":1}"#)),
            json(r#"{"secret":"secret","iss":"1"}"#),
        ),
    ];
    for (name, token, constraints) in cases {
        let result = call("io.jwt.decode_verify", &[token, constraints], NOW_NS);
        assert!(result.is_err(), "{name}: {result:?}");
    }
}

#[test]
fn decode_verify_picks_jwks_keys_by_kid_then_by_alg() {
    let header = |kid: &str| format!(r#"{{"alg":"RS256","kid":"{kid}"}}"#);
    let signed = |kid: &str| token_with("RS256", RSA_KEY, &header(kid), "{}");
    let jwks = format!(
        r#"{{"keys":[{},{},{}]}}"#,
        jwk(RSA_OTHER_PUB, Some("RS256"), Some("other")),
        jwk(RSA_PUB, Some("RS256"), Some("right")),
        jwk(RSA_PUB, Some("PS256"), Some("wrong-alg")),
    );
    let constraints = format!(r#"{{"cert": {}}}"#, constraint_string(&jwks));
    assert!(verified(decode_verify(&signed("right"), &constraints)));
    // A kid no key has: every key with a matching alg is tried.
    assert!(verified(decode_verify(&signed("unknown"), &constraints)));
    // A kid naming another key: only that key is tried.
    assert!(!verified(decode_verify(&signed("other"), &constraints)));
    // The kid's key is used with the header's alg, whatever alg the key names.
    assert!(verified(decode_verify(&signed("wrong-alg"), &constraints)));
    // Keys whose alg differs from the header's are skipped when no kid matches.
    let only_ps = format!(
        r#"{{"cert": {}}}"#,
        constraint_string(&format!(
            r#"{{"keys":[{}]}}"#,
            jwk(RSA_PUB, Some("PS256"), None)
        ))
    );
    assert!(!verified(decode_verify(&signed("x"), &only_ps)));
    // A key without alg is tried with the header's algorithm.
    let no_alg = format!(
        r#"{{"cert": {}}}"#,
        constraint_string(&format!(r#"{{"keys":[{}]}}"#, jwk(RSA_PUB, None, None)))
    );
    assert!(verified(decode_verify(&signed("x"), &no_alg)));
    // An empty key set verifies nothing.
    assert!(!verified(decode_verify(
        &signed("x"),
        r#"{"cert": "{\"keys\":[]}"}"#
    )));
}

#[test]
fn decode_verify_verifies_nested_tokens_with_the_same_key() {
    let inner = token("HS256", r#"{"sub":"inner"}"#);
    let outer = token_with("HS256", "secret", r#"{"alg":"HS256","cty":"jwt"}"#, &inner);
    let result = decode_verify(&outer, r#"{"secret":"secret"}"#).unwrap();
    assert_eq!(
        result,
        json(r#"[true, {"alg":"HS256","typ":"JWT"}, {"sub":"inner"}]"#)
    );
    let forged_inner = token_with("HS256", "other", r#"{"alg":"HS256"}"#, "{}");
    let outer = token_with(
        "HS256",
        "secret",
        r#"{"alg":"HS256","cty":"JWT"}"#,
        &forged_inner,
    );
    assert!(!verified(decode_verify(&outer, r#"{"secret":"secret"}"#)));
}

#[test]
fn decode_verify_survives_huge_tokens() {
    let claims = format!(r#"{{"pad":"{}"}}"#, "x".repeat(1 << 20));
    let big = token("HS256", &claims);
    assert!(verified(decode_verify(&big, r#"{"secret":"secret"}"#)));
    let garbage = "a.".repeat(1 << 19);
    assert!(decode_verify(&garbage, r#"{"secret":"secret"}"#).is_err());
    let huge_signature = format!("{}.e30.{}", b64(br#"{"alg":"RS256"}"#), "A".repeat(1 << 20));
    let constraints = format!(r#"{{"cert": {}}}"#, constraint_string(RSA_PUB));
    assert!(!verified(decode_verify(&huge_signature, &constraints)));
}

#[test]
fn decode_returns_header_payload_and_hex_signature_without_verifying() {
    let token = token_with("HS256", "anything", r#"{"alg":"HS256"}"#, r#"{"sub":"a"}"#);
    let signature = token.rsplit('.').next().unwrap();
    let hex: String = crate::jws::base64url_decode(signature)
        .unwrap()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        call("io.jwt.decode", &[s(&token)], NOW_NS).unwrap(),
        json(&format!(r#"[{{"alg":"HS256"}}, {{"sub":"a"}}, "{hex}"]"#))
    );
    // A nested token, quoted as jwt.io does: the inner one is decoded.
    let inner = token_with("HS256", "k", r#"{"alg":"HS256"}"#, r#"{"sub":"inner"}"#);
    let outer = token_with(
        "HS256",
        "k",
        r#"{"alg":"HS256","cty":"JWT"}"#,
        &format!("\"{inner}\""),
    );
    let decoded = call("io.jwt.decode", &[s(&outer)], NOW_NS).unwrap();
    assert_eq!(decoded[1], json(r#"{"sub":"inner"}"#));
    // alg none decodes: decode does not verify.
    let none = format!("{}.{}.", b64(br#"{"alg":"none"}"#), b64(br#"{"a":1}"#));
    assert_eq!(
        call("io.jwt.decode", &[s(&none)], NOW_NS).unwrap(),
        json(r#"[{"alg":"none"}, {"a":1}, ""]"#)
    );
    for bad in [
        "x",
        "a.b",
        "e30.e30.e30.e30",
        "e30.W10.",
        "e30.e30.$$",
        "W10.e30.",
    ] {
        assert!(call("io.jwt.decode", &[s(bad)], NOW_NS).is_err(), "{bad}");
    }
}

#[test]
fn verify_functions_check_their_own_algorithm_against_pem_jwk_and_jwks() {
    for alg in ALGS {
        let name = format!("io.jwt.verify_{}", alg.to_lowercase());
        let token = token(alg, r#"{"sub":"a"}"#);
        let public = default_keys(alg).1;
        let verify = |key: &str| call(&name, &[s(&token), s(key)], NOW_NS);
        assert_eq!(verify(public), Ok(Value::Bool(true)), "{alg}");
        if alg.starts_with("HS") {
            assert_eq!(verify("other"), Ok(Value::Bool(false)), "{alg}");
            continue;
        }
        let jwk = jwk(public, None, None);
        assert_eq!(verify(&jwk), Ok(Value::Bool(true)), "{alg} JWK");
        let jwks = format!(r#"{{"keys":[{}]}}"#, jwk);
        assert_eq!(verify(&jwks), Ok(Value::Bool(true)), "{alg} JWKS");
        let other = if alg.starts_with("ES") {
            EC256_CRT
        } else {
            RSA_OTHER_PUB
        };
        if *alg != "ES256" {
            assert_eq!(verify(other), Ok(Value::Bool(false)), "{alg} other key");
        }
        assert!(verify("not a key").is_err(), "{alg} bad key");
    }
    // The function decides the algorithm: an RS256 token does not pass verify_rs384, nor
    // an HS256 token verify_rs256.
    let rs = token("RS256", "{}");
    assert_eq!(
        call("io.jwt.verify_rs384", &[s(&rs), s(RSA_PUB)], NOW_NS),
        Ok(Value::Bool(false))
    );
    assert_eq!(
        call(
            "io.jwt.verify_rs256",
            &[s(&token("HS256", "{}")), s(RSA_PUB)],
            NOW_NS
        ),
        Ok(Value::Bool(false))
    );
    // verify_hs* never reads the header.
    let no_header = {
        let input = format!(".{}", b64(b"{}"));
        format!(
            "{input}.{}",
            b64(&sign("HS256", "secret", input.as_bytes()))
        )
    };
    assert_eq!(
        call("io.jwt.verify_hs256", &[s(&no_header), s("secret")], NOW_NS),
        Ok(Value::Bool(true))
    );
    for (name, args) in [
        ("io.jwt.verify_hs256", vec![s("a.b"), s("secret")]),
        ("io.jwt.verify_hs256", vec![json("1"), s("secret")]),
        ("io.jwt.verify_hs256", vec![s(&rs), json("1")]),
        ("io.jwt.verify_rs256", vec![s("a.b.c"), s(RSA_PUB)]),
        ("io.jwt.verify_rs256", vec![s(&rs), json("{}")]),
    ] {
        assert!(call(name, &args, NOW_NS).is_err(), "{name} {args:?}");
    }
}

#[test]
fn verify_functions_use_the_jwk_whose_kid_the_header_names() {
    let signed = token_with("ES256", EC256_KEY, r#"{"alg":"ES256","kid":"b"}"#, "{}");
    let jwks = |kid_a: &str, kid_b: &str| {
        format!(
            r#"{{"keys":[{},{}]}}"#,
            jwk(EC384_PUB, Some("ES256"), Some(kid_a)),
            jwk(EC256_PUB, Some("ES256"), Some(kid_b))
        )
    };
    let verify = |set: String| call("io.jwt.verify_es256", &[s(&signed), s(&set)], NOW_NS);
    assert_eq!(verify(jwks("a", "b")), Ok(Value::Bool(true)));
    assert_eq!(verify(jwks("b", "a")), Ok(Value::Bool(false)));
}

/// A signature verified once is not verified again (the cache in `engine::verified`), and
/// nothing else is remembered: claims are checked on every call, other keys and other
/// functions verify afresh.
#[test]
fn a_remembered_signature_changes_no_answer() {
    for alg in ["RS256", "ES256", "HS256"] {
        let token = token(alg, r#"{"sub":"alice","exp":1800000000}"#);
        let key = key_constraint(alg);
        for _ in 0..2 {
            assert!(
                verified(decode_verify(&token, &format!("{{{key}}}"))),
                "{alg}"
            );
            // Expired at the given time, although its signature is remembered.
            assert!(!verified(decode_verify(
                &token,
                &format!(r#"{{{key}, "time": 1900000000000000000}}"#)
            )));
        }
        let other = if alg.starts_with("HS") {
            r#""secret": "other""#.to_string()
        } else if alg.starts_with("ES") {
            format!(r#""cert": {}"#, constraint_string(EC256_CRT))
        } else {
            format!(r#""cert": {}"#, constraint_string(RSA_OTHER_PUB))
        };
        if alg != "ES256" {
            assert!(
                !verified(decode_verify(&token, &format!("{{{other}}}"))),
                "{alg} other key"
            );
        }
    }
    let rs = token("RS256", "{}");
    for _ in 0..2 {
        assert_eq!(
            call("io.jwt.verify_rs256", &[s(&rs), s(RSA_PUB)], NOW_NS),
            Ok(Value::Bool(true))
        );
        assert_eq!(
            call("io.jwt.verify_ps256", &[s(&rs), s(RSA_PUB)], NOW_NS),
            Ok(Value::Bool(false))
        );
        assert_eq!(
            call("io.jwt.verify_rs256", &[s(&rs), s(RSA_OTHER_PUB)], NOW_NS),
            Ok(Value::Bool(false))
        );
        // A tampered copy of a remembered token is verified, and fails.
        let tampered = format!("{}x", &rs[..rs.len() - 1]);
        assert_eq!(
            call("io.jwt.verify_rs256", &[s(&tampered), s(RSA_PUB)], NOW_NS),
            Ok(Value::Bool(false))
        );
    }
}

/// EdDSA (Ed25519) tokens verify as in OPA v1.20.2 (the token and key of OPA's conformance
/// cases `jwtverifyeddsa/success-cert` and `jwtdecodeverify/EdDSA`; answers from OPA), with the
/// key as PEM or as an OKP JWK; a changed signature or another algorithm's function does not.
#[test]
fn eddsa_tokens_verify_with_pem_and_jwk_keys() {
    const TOKEN: &str = "eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiYWRtaW4iOnRydWUsImlhdCI6MTUxNjIzOTAyMn0.JkKWCY39IdWEQttmdqR7VdsvT-_QxheW_eb0S5wr_j83ltux_JDUIXs7a3Dtn3xuqzuhetiuJrWIvy5TzimeCg";
    const PEM: &str = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAwmK6SSAu2E9V7uynkCKEaj5nZJyTvNG4x0KohsRzLpg=\n-----END PUBLIC KEY-----";
    const JWK: &str =
        r#"{"kty": "OKP", "crv": "Ed25519", "x": "wmK6SSAu2E9V7uynkCKEaj5nZJyTvNG4x0KohsRzLpg"}"#;
    let forged = TOKEN.replace("TzimeCg", "TAAAACg");
    let verify = |name: &str, token: &str, key: &str| call(name, &[s(token), s(key)], NOW_NS);
    for key in [PEM, JWK] {
        assert_eq!(
            verify("io.jwt.verify_eddsa", TOKEN, key),
            Ok(Value::Bool(true))
        );
        assert_eq!(
            verify("io.jwt.verify_eddsa", &forged, key),
            Ok(Value::Bool(false))
        );
        assert_eq!(
            verify("io.jwt.verify_es256", TOKEN, key),
            Ok(Value::Bool(false))
        );
        let constraints = format!(r#"{{"cert": {}}}"#, constraint_string(key));
        assert_eq!(
            decode_verify(TOKEN, &constraints),
            Ok(json(
                r#"[true, {"alg": "EdDSA", "typ": "JWT"},
                    {"admin": true, "iat": 1516239022, "name": "John Doe", "sub": "1234567890"}]"#
            ))
        );
        assert!(!verified(decode_verify(&forged, &constraints)));
        let es256 = format!(r#"{{"cert": {}, "alg": "ES256"}}"#, constraint_string(key));
        assert!(!verified(decode_verify(TOKEN, &es256)));
    }
}

/// `io.jwt.encode_sign` and `encode_sign_raw` give OPA v1.20.2's tokens byte for byte for
/// HS*, RS* and EdDSA (deterministic signatures): the header and payload as Go's
/// `json.Marshal` writes them (sorted keys, `<`, `>`, `&` escaped, a number's text kept, a
/// set as an array), a JWKS's first key, and a payload that need not be JSON when `typ` is
/// neither empty nor `JWT`. What OPA fails is a builtin error.
#[test]
fn encode_sign_gives_opas_tokens() {
    let hs_key = r#"{"kty": "oct", "k": "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow"}"#;
    let ed_key = r#"{"kty": "OKP", "crv": "Ed25519", "d": "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#;
    let sign = |header: &str, payload: &str, key: &str| {
        call(
            "io.jwt.encode_sign",
            &[json(header), json(payload), json(key)],
            NOW_NS,
        )
    };
    let sign_raw = |header: &str, payload: &str, key: &str| {
        call(
            "io.jwt.encode_sign_raw",
            &[s(header), s(payload), s(key)],
            NOW_NS,
        )
    };
    assert_eq!(
        sign(
            r#"{"alg": "HS256", "typ": "JWT"}"#,
            r#"{"iss": "joe", "note": "<a&b>", "n": 1.50}"#,
            hs_key
        ),
        Ok(s("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJqb2UiLCJuIjoxLjUwLCJub3RlIjoiXHUwMDNjYVx1MDAyNmJcdTAwM2UifQ.SBAiyubjOUxnNSYBpEHlL9YZzCArODHHl2TUe-xGpx0"))
    );
    let roles = Value::from_json_str(r#"{"roles": ["dev", "admin"]}"#).unwrap();
    let roles = match roles {
        Value::Object(o) => {
            let set: std::collections::BTreeSet<Value> =
                [s("admin"), s("dev")].into_iter().collect();
            let mut o = (*o).clone();
            o.insert(s("roles"), Value::from(set));
            Value::from(o)
        }
        _ => unreachable!(),
    };
    assert_eq!(
        call(
            "io.jwt.encode_sign",
            &[
                json(r#"{"alg": "HS512"}"#),
                roles,
                json(r#"{"keys": [{"kty": "oct", "k": "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ"}]}"#)
            ],
            NOW_NS
        ),
        Ok(s("eyJhbGciOiJIUzUxMiJ9.eyJyb2xlcyI6WyJhZG1pbiIsImRldiJdfQ.Oq6KF85I-GAJV7yKSjfSy2hOV09CMi5bLga3uFHCaz3gOaunhEaDHmcx-7leB-UbUJ5m-YLHvY0sKAEzn0-G-w"))
    );
    assert_eq!(
        sign(r#"{"alg": "EdDSA"}"#, r#"{"sub": "alice"}"#, ed_key),
        Ok(s("eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJhbGljZSJ9.eFTpuxd5oo38-eZyGVq9scoNkxAqvbc-sDJt27w46VWKPwLPHyUnUvvw3A2jBpmW3-qynlegeDc8tXCZrv_YAw"))
    );
    assert_eq!(
        sign_raw(r#"{"alg":"HS256","typ":"text"}"#, "plain text", r#"{"kty":"oct","k":"AyM1"}"#),
        Ok(s("eyJhbGciOiJIUzI1NiIsInR5cCI6InRleHQifQ.cGxhaW4gdGV4dA.jKJ1-UeU9Z0zoueVJhFuP4vkUk9EQ0k2ZwabEnmOsEQ"))
    );
    // OPA: "type is JWT but payload is not JSON", "unknown JWS algorithm", "invalid key type".
    assert!(sign_raw(
        r#"{"alg":"HS256"}"#,
        "plain text",
        r#"{"kty":"oct","k":"AyM1"}"#
    )
    .is_err());
    assert!(sign(r#"{"alg": "HS257"}"#, "{}", r#"{"kty":"oct","k":"AyM1"}"#).is_err());
    assert!(sign(r#"{"alg": "RS256"}"#, "{}", r#"{"kty":"oct","k":"AyM1"}"#).is_err());
}

/// RS256 with RFC 7515 appendix A.2's key gives the RFC's (and OPA's) signature.
#[test]
fn encode_sign_rs256_gives_the_rfc_signature() {
    let token = call(
        "io.jwt.encode_sign_raw",
        &[
            s(r#"{"alg":"RS256"}"#),
            s("{\"iss\":\"joe\",\r\n \"exp\":1300819380,\r\n \"http://example.com/is_root\":true}"),
            s(RFC7515_A2_KEY),
        ],
        NOW_NS,
    )
    .unwrap();
    assert_eq!(
        token,
        s("eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L07Qe7K0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh6IeYI2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_IoypGlUPQGe77Rw")
    );
}

/// PS* and ES* with a private key of their kind are signed by OPA and not here: the call
/// stops the evaluation (`gap`) instead of being undefined, which would answer differently.
#[test]
fn encode_sign_with_ps_or_es_is_a_gap() {
    let ec = json(
        r#"{"kty": "EC", "crv": "P-256", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0", "d": "jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI"}"#,
    );
    let gap_for = |alg: &str, key: &Value| {
        gap(
            "io.jwt.encode_sign",
            &[
                json(&format!(r#"{{"alg": "{alg}"}}"#)),
                json("{}"),
                key.clone(),
            ],
        )
    };
    assert!(gap_for("ES256", &ec).is_some());
    assert!(gap_for("PS256", &json(RFC7515_A2_KEY)).is_some());
    assert!(gap(
        "io.jwt.encode_sign_raw",
        &[
            s(r#"{"alg":"ES384"}"#),
            s("{}"),
            s(&ec.to_json_str().unwrap())
        ]
    )
    .is_some());
    // A key OPA cannot sign with either: OPA's builtin error, undefined here too.
    assert!(gap_for("ES256", &json(r#"{"kty": "oct", "k": "AyM1"}"#)).is_none());
    assert!(gap_for(
        "PS256",
        &json(r#"{"kty": "RSA", "n": "AQAB", "e": "AQAB"}"#)
    )
    .is_none());
    assert!(gap_for("HS256", &json(r#"{"kty": "oct", "k": "AyM1"}"#)).is_none());
}

/// RFC 7515 appendix A.2's RSA key (the private exponent is all RS* signing needs).
const RFC7515_A2_KEY: &str = concat!(
    r#"{"kty": "RSA", "e": "AQAB", "n": ""#,
    "ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0B",
    "m4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5",
    "z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7",
    "aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ",
    r#"", "d": ""#,
    "Eq5xpGnNCivDflJsRQBXHx1hdR1k6Ulwe2JZD50LpXyWPEAeP88vLNO97IjlA7_GQ5sLKMgvfTeXZx9SE-7YwVol2N",
    "XOoAJe46sui395IW_GO-pWJ1O0BkTGoVEn2bKVRUCgu-GjBVaYLU6f3l9kJfFNS3E0QbVdxzubSu3Mkqzjkn439X0M",
    "_V51gfpRLI9JYanrC4D4qAdGcopV_0ZHHzQlBjudU2QvXt4ehNYTCBr6XCLQUShb1juUO1ZdiYoFaFQT5Tw8bGUl_x",
    "_jTj3ccPDVZFD9pIuhLhBOneufuBiB4cS98l2SR_RQyGWSeWjnczT0QU91p1DhOVRuOopznQ",
    r#""}"#
);
