//! Parsed keys and tokens whose signature already verified, per VM: a client sends the same
//! bearer token on request after request, and an RSA or ECDSA verification costs far more than
//! the rest of a decision (OPA has the same idea in its optional inter-query `io.jwt` cache).
//!
//! Only successes are kept, under the exact namespace (algorithm), key text and token: an
//! entry can only exist for a signature that verified, so a flood of forged tokens can evict
//! entries but never add one, and a hit gives the answer verification would have given. Claims
//! (`exp`, `nbf`, `iss`, `aud`) are not part of it: they are checked on every call.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use crate::jws::{self, JwsError, KeyEntry};

/// What the cache may hold, in bytes of key and token text; it starts over when full.
const MAX_BYTES: usize = 1 << 20;

#[derive(Default)]
struct Verified {
    /// Algorithm → key text → tokens verified with it. Keys repeat (one JWKS, one secret)
    /// where tokens don't, so each key's text is held once.
    by_key: HashMap<&'static str, HashMap<Box<str>, HashSet<Box<str>>>>,
    bytes: usize,
}

thread_local! {
    // One per VM: a proxy-wasm VM is single-threaded.
    static VERIFIED: RefCell<Verified> = RefCell::new(Verified::default());
}

/// Key texts whose parsed keys are kept, and the longest text kept.
const MAX_KEY_TEXTS: usize = 16;
const MAX_KEY_TEXT_BYTES: usize = 64 << 10;

thread_local! {
    static PARSED: RefCell<HashMap<Box<str>, Rc<Vec<KeyEntry>>>> = RefCell::new(HashMap::new());
}

/// The keys in a PEM, JWK or JWKS text, parsed once per VM: policies pass the same key text
/// (often `json.marshal(data.jwks)`) on every call. Errors are not kept.
pub fn keys(text: &str) -> Result<Rc<Vec<KeyEntry>>, JwsError> {
    let known = PARSED.with(|p| p.try_borrow().ok().and_then(|p| p.get(text).cloned()));
    if let Some(keys) = known {
        return Ok(keys);
    }
    let keys = Rc::new(jws::keys_from_pem_or_jwk(text)?);
    if text.len() <= MAX_KEY_TEXT_BYTES {
        PARSED.with(|p| {
            if let Ok(mut p) = p.try_borrow_mut() {
                if p.len() >= MAX_KEY_TEXTS {
                    p.clear();
                }
                p.insert(Box::from(text), Rc::clone(&keys));
            }
        });
    }
    Ok(keys)
}

/// Whether `token` verified before with `key` (its text) in `namespace` (the algorithm a
/// function forces, or how `decode_verify` was given the key).
pub fn seen(namespace: &'static str, key: &str, token: &str) -> bool {
    VERIFIED.with(|v| {
        v.try_borrow().is_ok_and(|v| {
            v.by_key
                .get(namespace)
                .and_then(|keys| keys.get(key))
                .is_some_and(|tokens| tokens.contains(token))
        })
    })
}

/// Remembers that `token`'s signature verified with `key` in `namespace`.
pub fn remember(namespace: &'static str, key: &str, token: &str) {
    VERIFIED.with(|v| {
        if let Ok(mut v) = v.try_borrow_mut() {
            v.remember(namespace, key, token);
        }
    });
}

impl Verified {
    fn remember(&mut self, algorithm: &'static str, key: &str, token: &str) {
        let known_key = self
            .by_key
            .get(algorithm)
            .is_some_and(|keys| keys.contains_key(key));
        let added = token.len() + if known_key { 0 } else { key.len() };
        if self.bytes + added > MAX_BYTES {
            self.by_key.clear();
            self.bytes = 0;
        }
        let keys = self.by_key.entry(algorithm).or_default();
        let tokens = match keys.get_mut(key) {
            Some(tokens) => tokens,
            None => {
                self.bytes += key.len();
                keys.entry(Box::from(key)).or_default()
            }
        };
        if tokens.insert(Box::from(token)) {
            self.bytes += token.len();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    /// What a caller does: verify unless seen, remember a success.
    fn verify_once(
        namespace: &'static str,
        key: &str,
        token: &str,
        verify: impl FnOnce() -> bool,
    ) -> bool {
        if seen(namespace, key, token) {
            return true;
        }
        let verified = verify();
        if verified {
            remember(namespace, key, token);
        }
        verified
    }

    fn counting(answer: bool, calls: &Cell<u32>) -> impl FnOnce() -> bool + '_ {
        move || {
            calls.set(calls.get() + 1);
            answer
        }
    }

    #[test]
    fn a_verified_token_is_verified_once_per_key_and_algorithm() {
        let calls = Cell::new(0);
        assert!(verify_once("RS256", "key-a", "t1", counting(true, &calls)));
        assert!(verify_once("RS256", "key-a", "t1", counting(false, &calls)));
        assert_eq!(calls.get(), 1);
        // Another key, another algorithm, another token: verified again.
        assert!(!verify_once(
            "RS256",
            "key-b",
            "t1",
            counting(false, &calls)
        ));
        assert!(!verify_once(
            "PS256",
            "key-a",
            "t1",
            counting(false, &calls)
        ));
        assert!(!verify_once(
            "RS256",
            "key-a",
            "t2",
            counting(false, &calls)
        ));
        assert_eq!(calls.get(), 4);
    }

    #[test]
    fn a_key_text_is_parsed_once_and_a_bad_one_every_time() {
        let jwk = r#"{"kty":"oct","k":"c2VjcmV0"}"#;
        let first = keys(jwk).unwrap();
        assert!(Rc::ptr_eq(&first, &keys(jwk).unwrap()));
        assert!(keys("not a key").is_err());
        assert!(keys("not a key").is_err());
    }

    #[test]
    fn failures_are_not_remembered() {
        let calls = Cell::new(0);
        assert!(!verify_once(
            "HS256",
            "secret",
            "forged",
            counting(false, &calls)
        ));
        assert!(!verify_once(
            "HS256",
            "secret",
            "forged",
            counting(false, &calls)
        ));
        assert_eq!(calls.get(), 2);
    }

    #[test]
    fn the_cache_starts_over_when_full() {
        let calls = Cell::new(0);
        let big = "k".repeat(MAX_BYTES / 2);
        assert!(verify_once("RS256", &big, "t", counting(true, &calls)));
        let other = "o".repeat(MAX_BYTES / 2);
        assert!(verify_once("RS256", &other, "t", counting(true, &calls)));
        // The second key did not fit beside the first: the first was dropped.
        assert!(!verify_once("RS256", &big, "t", counting(false, &calls)));
        assert_eq!(calls.get(), 3);
        VERIFIED.with(|v| assert!(v.borrow().bytes <= MAX_BYTES));
    }
}
