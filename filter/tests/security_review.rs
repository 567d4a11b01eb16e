//! The security review's points that live in the core (docs/security.md), each with a test:
//! bundles (decompression bombs, YAML alias bombs, JSON nesting, duplicate keys in the
//! manifest, in data and in `.signatures.json`) and bundle-signature key confusion (`alg:
//! none`, HS256 with an RSA public key as the secret, a `kid` that selects another key,
//! `crit` headers). Header injection, pseudo- and hop-by-hop headers, statuses and bodies
//! from a decision are in `request_path.rs` and, where Envoy decides, tests/e2e/test_security.py.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::collections::BTreeMap;
use std::io::Write as _;

use base64::Engine as _;
use zerohop_filter::bundle::archive::write_targz;
use zerohop_filter::bundle::signature::{self, Key, Signer, Verification, SIGNATURES_FILE};
use zerohop_filter::bundle::token::{self, Algorithm, VerifyingKey};
use zerohop_filter::bundle::{Bundle, Limits};
use zerohop_filter::request::body::{Body, BodySettings, WithRequestBody};
use zerohop_filter::request::input::{self, HttpRequest};
use zerohop_filter::shape::InputShape;

const KEYS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/keys");

fn key_file(name: &str) -> String {
    std::fs::read_to_string(format!("{KEYS}/{name}")).unwrap()
}

fn files(list: &[(&str, &[u8])]) -> Vec<(String, Vec<u8>)> {
    list.iter()
        .map(|(p, c)| (p.to_string(), c.to_vec()))
        .collect()
}

/// A gzip stream of `tar` bytes: one entry `data.json` of `size` zero bytes, compressed as it
/// is written (a bomb: 100 MiB in about 100 KB).
fn zeros_bomb(size: u64) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut header = tar::Header::new_gnu();
    header.set_path("data.json").unwrap();
    header.set_size(size);
    header.set_mode(0o644);
    header.set_cksum();
    gz.write_all(header.as_bytes()).unwrap();
    let block = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        let n = left.min(block.len() as u64) as usize;
        gz.write_all(&block[..n]).unwrap();
        left -= n as u64;
    }
    gz.finish().unwrap()
}

#[test]
fn a_decompression_bomb_stops_at_the_size_limit() {
    let bomb = zeros_bomb(100 << 20);
    assert!(bomb.len() < 1 << 20, "{} bytes", bomb.len());
    let limits = Limits {
        max_uncompressed_bytes: 8 << 20,
    };
    let err = Bundle::from_targz(&bomb, &limits).unwrap_err();
    assert_eq!(err.code(), "too-large", "{err}");
}

#[test]
fn a_yaml_alias_bomb_in_data_is_refused_or_bounded() {
    // Nine levels of nine aliases: 387 million strings if expanded.
    let mut yaml = String::from("a0: &a0 [\"lol\"]\n");
    for level in 1..10 {
        let refs = vec![format!("*a{}", level - 1); 9].join(", ");
        yaml.push_str(&format!("a{level}: &a{level} [{refs}]\n"));
    }
    let bundle = Bundle::from_files(files(&[("data.yaml", yaml.as_bytes())]));
    let err = bundle.expect_err("an alias bomb must not load");
    assert_eq!(err.code(), "bad-data", "{err}");
}

#[test]
fn deeply_nested_json_is_an_error_not_a_crash() {
    let deep = |depth: usize| format!("{}{}", "[".repeat(depth), "]".repeat(depth)).into_bytes();
    for depth in [1_000, 100_000] {
        let json = deep(depth);
        let err = Bundle::from_files(files(&[("data.json", &json)])).expect_err("refused");
        assert_eq!(err.code(), "bad-data", "{err}");
        let mut manifest = br#"{"revision": "#.to_vec();
        manifest.extend_from_slice(&json);
        manifest.push(b'}');
        let err = Bundle::from_files(files(&[(".manifest", &manifest)])).expect_err("refused");
        assert_eq!(err.code(), "bad-manifest", "{err}");
        // A request body: 400 (a request error), as OPA-Envoy answers a body it cannot parse.
        let request = HttpRequest {
            headers: vec![
                (":method".into(), "POST".into()),
                (":path".into(), "/".into()),
                ("content-type".into(), "application/json".into()),
            ],
            body: Some(Body {
                bytes: json.clone(),
                partial: false,
                received: json.len() as u64,
            }),
            ..HttpRequest::default()
        };
        let settings = BodySettings {
            with_request_body: Some(WithRequestBody {
                max_request_bytes: 1 << 20,
                allow_partial_message: false,
                pack_as_bytes: false,
            }),
            skip_request_body_parse: false,
        };
        let err = input::build(&request, &settings, &InputShape::everything()).unwrap_err();
        assert!(err.is_bad_request(), "{err}");
    }
}

#[test]
fn duplicate_keys_in_a_manifest_are_refused() {
    let manifest = br#"{"revision": "a", "roots": ["x"], "roots": [""]}"#;
    let err = Bundle::from_files(files(&[(".manifest", manifest)])).expect_err("refused");
    assert_eq!(err.code(), "bad-manifest", "{err}");
    assert!(err.to_string().contains("duplicate field"), "{err}");
}

fn hs256_key(secret: &str) -> Key {
    Key {
        key: VerifyingKey::parse(Algorithm::HS256, secret).unwrap(),
        scope: String::new(),
    }
}

fn rs256_key() -> Key {
    Key {
        key: VerifyingKey::parse(Algorithm::RS256, &key_file("rsa.pub.pem")).unwrap(),
        scope: String::new(),
    }
}

/// Both keys configured, the token's `kid` picks one (as OPA does without `signing.keyid`).
fn two_keys() -> Verification {
    Verification {
        keys: BTreeMap::from([
            ("rs".to_string(), rs256_key()),
            ("hs".to_string(), hs256_key("hs secret")),
        ]),
        ..Verification::default()
    }
}

fn signed_with(
    bundle: &[(String, Vec<u8>)],
    alg: Algorithm,
    kid: &str,
    secret: &[u8],
) -> Vec<(String, Vec<u8>)> {
    let sign = |input: &[u8]| token::hmac_sign(alg, secret, input);
    let signer = Signer {
        algorithm: alg,
        keyid: Some(kid),
        scope: None,
        sign: &sign,
    };
    let mut out = bundle.to_vec();
    out.push((
        SIGNATURES_FILE.into(),
        signature::sign(bundle, &signer).unwrap(),
    ));
    out
}

type SignWith<'a> = &'a dyn Fn(&[u8]) -> Vec<u8>;

/// A `.signatures.json` whose one token has `header` (JSON) and the payload a correct
/// signature of `bundle` would carry, signed by `sign` (or with no signature).
fn with_header(
    bundle: &[(String, Vec<u8>)],
    header: &str,
    sign: Option<SignWith<'_>>,
) -> Vec<(String, Vec<u8>)> {
    let good = signed_with(bundle, Algorithm::HS256, "hs", b"hs secret");
    let file: serde_json::Value = serde_json::from_slice(&good.last().unwrap().1).unwrap();
    let token = file["signatures"][0].as_str().unwrap();
    let payload = token.split('.').nth(1).unwrap();
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let signing_input = format!("{}.{payload}", b64.encode(header));
    let signature = sign
        .map(|s| b64.encode(s(signing_input.as_bytes())))
        .unwrap_or_default();
    let mut out = bundle.to_vec();
    let file = serde_json::json!({"signatures": [format!("{signing_input}.{signature}")]});
    out.push((SIGNATURES_FILE.into(), file.to_string().into_bytes()));
    out
}

fn bundle_files() -> Vec<(String, Vec<u8>)> {
    files(&[
        (".manifest", br#"{"revision":"r1","roots":["x"]}"#),
        ("x/policy.rego", b"package x\n\nallow := true\n"),
        ("x/data.json", br#"{"admins":["alice"]}"#),
    ])
}

#[test]
fn the_right_key_verifies_so_the_refusals_below_are_about_the_keys() {
    signature::verify(
        &signed_with(&bundle_files(), Algorithm::HS256, "hs", b"hs secret"),
        Some(&two_keys()),
    )
    .unwrap();
}

#[test]
fn an_unsigned_token_alg_none_is_refused() {
    for kid in ["rs", "hs"] {
        let files = with_header(
            &bundle_files(),
            &format!(r#"{{"alg":"none","kid":"{kid}"}}"#),
            None,
        );
        let err = signature::verify(&files, Some(&two_keys())).unwrap_err();
        assert_eq!(err.code(), "bad-signature", "kid {kid}: {err}");
    }
}

#[test]
fn hs256_with_the_rsa_public_key_as_secret_is_refused() {
    let pem = key_file("rsa.pub.pem");
    let files = signed_with(&bundle_files(), Algorithm::HS256, "rs", pem.as_bytes());
    let err = signature::verify(&files, Some(&two_keys())).unwrap_err();
    assert_eq!(err.code(), "bad-signature", "{err}");
    assert!(
        err.to_string().contains("HS256") && err.to_string().contains("RS256"),
        "{err}"
    );
}

#[test]
fn a_kid_that_selects_another_key_does_not_verify() {
    // Signed with the HMAC secret but naming the RSA key, and the other way round with a
    // secret only the attacker knows naming the HMAC key.
    let files = signed_with(&bundle_files(), Algorithm::HS256, "rs", b"hs secret");
    assert_eq!(
        signature::verify(&files, Some(&two_keys()))
            .unwrap_err()
            .code(),
        "bad-signature"
    );
    let files = signed_with(
        &bundle_files(),
        Algorithm::HS256,
        "hs",
        b"attacker's secret",
    );
    assert_eq!(
        signature::verify(&files, Some(&two_keys()))
            .unwrap_err()
            .code(),
        "bad-signature"
    );
    // `signing.keyid` pins the key whatever the token names.
    let pinned = Verification {
        keyid: "rs".into(),
        ..two_keys()
    };
    let files = signed_with(&bundle_files(), Algorithm::HS256, "hs", b"hs secret");
    assert_eq!(
        signature::verify(&files, Some(&pinned)).unwrap_err().code(),
        "bad-signature"
    );
    // A kid naming no configured key.
    let files = signed_with(&bundle_files(), Algorithm::HS256, "nobody", b"hs secret");
    assert_eq!(
        signature::verify(&files, Some(&two_keys()))
            .unwrap_err()
            .code(),
        "unknown-key"
    );
}

#[test]
fn a_critical_header_the_verifier_does_not_understand_is_refused() {
    // RFC 7515 §4.1.11: a recipient that does not understand a `crit` extension must reject
    // the JWS. The signature itself is right.
    let sign = |input: &[u8]| token::hmac_sign(Algorithm::HS256, b"hs secret", input).unwrap();
    let files = with_header(
        &bundle_files(),
        r#"{"alg":"HS256","kid":"hs","crit":["exp"],"exp":1}"#,
        Some(&sign),
    );
    let err = signature::verify(&files, Some(&two_keys())).unwrap_err();
    assert_eq!(err.code(), "bad-signature", "{err}");
    assert!(err.to_string().contains("crit"), "{err}");
    // Without the `crit` header the same token verifies.
    let files = with_header(
        &bundle_files(),
        r#"{"alg":"HS256","kid":"hs"}"#,
        Some(&sign),
    );
    signature::verify(&files, Some(&two_keys())).unwrap();
}

#[test]
fn duplicate_keys_in_signatures_json_are_refused() {
    let good = signed_with(&bundle_files(), Algorithm::HS256, "hs", b"hs secret");
    let token = serde_json::from_slice::<serde_json::Value>(&good.last().unwrap().1).unwrap()
        ["signatures"][0]
        .as_str()
        .unwrap()
        .to_string();
    let mut files = bundle_files();
    let doubled = format!(r#"{{"signatures": ["x.y.z"], "signatures": ["{token}"]}}"#);
    files.push((SIGNATURES_FILE.into(), doubled.into_bytes()));
    let err = signature::verify(&files, Some(&two_keys())).unwrap_err();
    assert!(err.to_string().contains("duplicate field"), "{err}");
}

#[test]
fn data_with_duplicate_keys_loads_as_it_was_hashed() {
    // The signature covers data files by their JSON value, with the last of duplicate keys
    // kept (OPA's Go map). The loaded data must be that same value: otherwise a signed
    // `{"admins": ["alice"]}` could be re-sent as `{"admins": ["mallory"], "admins": ["alice"]}`
    // (same hash) and load as mallory.
    let signed = signed_with(&bundle_files(), Algorithm::HS256, "hs", b"hs secret");
    let mut tampered = signed.clone();
    tampered[2].1 = br#"{"admins": ["mallory"], "admins": ["alice"]}"#.to_vec();
    signature::verify(&tampered, Some(&two_keys())).unwrap();
    let bundle = Bundle::from_targz(&write_targz(&tampered).unwrap(), &Limits::default()).unwrap();
    let data = bundle.data.to_json_str().unwrap();
    assert!(
        data.contains("alice") && !data.contains("mallory"),
        "{data}"
    );
}
