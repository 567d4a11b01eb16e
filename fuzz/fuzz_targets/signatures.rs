//! `.signatures.json` parsing and verification against a bundle's files: JSON shape, JWS
//! compact form, header `alg`/`kid`/`crit`, the payload's file list and hashes, scope, with
//! RSA, EC and HMAC keys configured. Verification passes only when the files and the
//! signature agree (each seed is a good signature over `FILES`).
#![no_main]

use std::collections::BTreeMap;
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use zerohop_filter::bundle::signature::{self, Key, Verification, SIGNATURES_FILE};
use zerohop_filter::bundle::token::{algorithm, VerifyingKey};

#[global_allocator]
static ALLOCATOR: zerohop_filter::engine::budget::CountingAllocator<std::alloc::System> =
    zerohop_filter::engine::budget::CountingAllocator(std::alloc::System);

/// The files every seed signature covers (`testdata/fuzz/README.md` says how the seeds were made).
pub const FILES: &[(&str, &[u8])] = &[
    (".manifest", br#"{"revision":"fuzz","roots":[""]}"#),
    ("fuzz/policy.rego", b"package fuzz\n\nallow := true\n"),
    ("fuzz/data.json", br#"{"users":["alice"]}"#),
];

pub const HMAC_SECRET: &str = "zerohop fuzz secret";

static VERIFICATIONS: LazyLock<Vec<Verification>> = LazyLock::new(|| {
    let key = |alg: &str, text: &str| Key {
        key: VerifyingKey::parse(algorithm(alg).expect("known algorithm"), text).expect("test key"),
        scope: "fuzz".into(),
    };
    let keys = BTreeMap::from([
        (
            "rs".to_string(),
            key("RS256", include_str!("../../testdata/keys/rsa.pub.pem")),
        ),
        (
            "es".to_string(),
            key("ES256", include_str!("../../testdata/keys/ec256.pub.pem")),
        ),
        ("hs".to_string(), key("HS256", HMAC_SECRET)),
    ]);
    vec![
        // The token's `kid` picks the key.
        Verification {
            keys: keys.clone(),
            ..Verification::default()
        },
        // `signing.keyid` wins over the token's `kid`, with a scope and an excluded file.
        Verification {
            keys,
            keyid: "rs".into(),
            scope: "fuzz".into(),
            exclude_files: vec!["fuzz/*.json".into()],
        },
    ]
});

fuzz_target!(|data: &[u8]| {
    let mut files: Vec<(String, Vec<u8>)> = FILES
        .iter()
        .map(|(p, c)| (p.to_string(), c.to_vec()))
        .collect();
    files.push((SIGNATURES_FILE.to_string(), data.to_vec()));
    for verification in VERIFICATIONS.iter() {
        let _ = signature::verify(&files, Some(verification));
    }
    // A changed file never passes, whatever the signature says.
    if let Some((_, content)) = files.get_mut(1) {
        content.push(b'\n');
    }
    if let Some(verification) = VERIFICATIONS.first() {
        assert!(
            signature::verify(&files, Some(verification)).is_err(),
            "a changed policy file passed"
        );
    }
});
