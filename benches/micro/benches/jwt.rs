//! `io.jwt.decode_verify` as a policy calls it per request (key parsing, signature check,
//! claims), for each signature algorithm, on the test tokens in `testdata/keys`; and the bare
//! signature check with an already parsed key.
#![allow(clippy::unwrap_used, clippy::expect_used)] // benchmark setup: fail loudly

use criterion::{criterion_group, criterion_main, Criterion};
use regorus::Value;
use zerohop_filter::bundle::token::{compact, hmac_sign, Algorithm};
use zerohop_filter::engine::jwt;
use zerohop_filter::jws::{self, Alg, Compact};

const KEYS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/keys");
const SECRET: &str = "bench-secret";

fn key_file(name: &str) -> String {
    std::fs::read_to_string(format!("{KEYS}/{name}")).unwrap()
}

/// (alg, token, `decode_verify` constraints, key text for `jws::keys_from_pem_or_jwk`).
fn tokens() -> Vec<(String, String, Value, String)> {
    let fixtures: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&key_file("jws-fixtures.json")).unwrap();
    let hs256 = compact(Algorithm::HS256, None, br#"{"sub":"alice"}"#, |input| {
        hmac_sign(Algorithm::HS256, SECRET.as_bytes(), input)
    })
    .unwrap();
    let secret =
        Value::from_json_str(&serde_json::json!({ "secret": SECRET }).to_string()).unwrap();
    let mut cases = vec![("HS256".to_string(), hs256, secret, String::new())];
    for alg in ["RS256", "PS256", "ES256", "ES384", "ES512"] {
        let pem = key_file(match alg {
            "ES256" => "ec256.pub.pem",
            "ES384" => "ec384.pub.pem",
            "ES512" => "ec521.pub.pem",
            _ => "rsa.pub.pem",
        });
        let token = fixtures
            .get(alg)
            .and_then(|t| t.as_str())
            .unwrap()
            .to_string();
        let cert = Value::from_json_str(&serde_json::json!({ "cert": pem }).to_string()).unwrap();
        cases.push((alg.to_string(), token, cert, pem));
    }
    cases
}

fn decode_verify(c: &mut Criterion) {
    let mut group = c.benchmark_group("jwt");
    for (alg, token, constraints, pem) in tokens() {
        let args = [Value::from(token.clone()), constraints];
        let verified = jwt::call("io.jwt.decode_verify", &args, 0).unwrap();
        assert_eq!(verified[0], Value::Bool(true), "{alg}");
        group.bench_function(format!("decode_verify/{alg}"), |b| {
            b.iter(|| jwt::call("io.jwt.decode_verify", &args, 0).unwrap())
        });
        if pem.is_empty() {
            continue;
        }
        let key = jws::keys_from_pem_or_jwk(&pem).unwrap().remove(0).key;
        let parts = Compact::split(&token).unwrap();
        let (input, signature) = (parts.signing_input(), parts.signature_bytes().unwrap());
        let alg = Alg::from_name(&alg).unwrap();
        assert!(jws::verify(alg, &key, &input, &signature));
        group.bench_function(format!("signature/{alg:?}"), |b| {
            b.iter(|| jws::verify(alg, &key, &input, &signature))
        });
    }
    group.finish();
}

criterion_group!(benches, decode_verify);
criterion_main!(benches);
