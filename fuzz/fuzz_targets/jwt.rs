//! JWS/JWT parsing and every `io.jwt.*` builtin, with key confusion as the invariant: a token
//! verified by `io.jwt.decode_verify` against a public key (`cert`) is never an HMAC or `none`
//! token, and one verified against a `secret` is always HMAC.
//!
//! Input: the token, a newline, then the key text (PEM, JWK, JWKS or HMAC secret).
#![no_main]

use libfuzzer_sys::fuzz_target;
use regorus::Value;
use zerohop_filter::engine::jwt;
use zerohop_filter::jws::Compact;

#[global_allocator]
static ALLOCATOR: zerohop_filter::engine::budget::CountingAllocator<std::alloc::System> =
    zerohop_filter::engine::budget::CountingAllocator(std::alloc::System);

// 2026-01-01T00:00:00Z: tokens in the seeds are valid then.
const NOW_NS: i64 = 1_767_225_600_000_000_000;

fn header_alg(token: &str) -> Option<String> {
    let compact = Compact::split(token).ok()?;
    let header = compact.header_json().ok()?;
    header.get("alg")?.as_str().map(str::to_string)
}

fn verified(result: &Result<Value, String>) -> bool {
    match result {
        Ok(Value::Array(items)) => items.first() == Some(&Value::Bool(true)),
        _ => false,
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (token, key) = text.split_once('\n').unwrap_or((&text, ""));
    let token_value = Value::from(token);
    let key_value = Value::from(key);
    let _ = jwt::call("io.jwt.decode", std::slice::from_ref(&token_value), NOW_NS);
    for (name, _) in jwt::FUNCTIONS
        .iter()
        .filter(|(name, arity)| *arity == 2 && name.starts_with("io.jwt.verify_"))
    {
        let _ = jwt::call(name, &[token_value.clone(), key_value.clone()], NOW_NS);
    }
    let alg = header_alg(token);
    for (constraint, must_be_hmac) in [("cert", false), ("secret", true)] {
        let mut constraints = serde_json::Map::new();
        constraints.insert(constraint.into(), key.into());
        let Ok(constraints) =
            Value::from_json_str(&serde_json::Value::Object(constraints).to_string())
        else {
            continue;
        };
        let result = jwt::call(
            "io.jwt.decode_verify",
            &[token_value.clone(), constraints],
            NOW_NS,
        );
        if verified(&result) {
            let alg = alg.as_deref().unwrap_or("<none>");
            assert_ne!(alg, "none", "an unsigned token verified with {constraint}");
            assert_eq!(
                alg.starts_with("HS"),
                must_be_hmac,
                "a token with alg {alg} verified with a {constraint}"
            );
        }
    }
});
