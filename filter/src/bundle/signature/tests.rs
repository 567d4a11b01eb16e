use super::*;
use crate::bundle::token::Algorithm;

const KEYS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/keys");

fn key_file(name: &str) -> String {
    std::fs::read_to_string(format!("{KEYS}/{name}")).unwrap()
}

fn verification(alg: Algorithm, public: &str) -> Verification {
    let mut keys = BTreeMap::new();
    keys.insert(
        "k".to_string(),
        Key {
            key: VerifyingKey::parse(alg, public).unwrap(),
            scope: String::new(),
        },
    );
    Verification {
        keys,
        keyid: "k".into(),
        ..Verification::default()
    }
}

fn bundle_files() -> Vec<(String, Vec<u8>)> {
    vec![
        (
            ".manifest".into(),
            br#"{"revision":"r1","roots":["x"]}"#.to_vec(),
        ),
        (
            "x/policy.rego".into(),
            b"package x\nallow := true\n".to_vec(),
        ),
        (
            "x/data.json".into(),
            br#"{"b": 1, "a": [1.50, "<&>"]}"#.to_vec(),
        ),
    ]
}

fn sign_files(files: &[(String, Vec<u8>)], signer: &Signer<'_>) -> Vec<u8> {
    super::sign(files, signer).unwrap()
}

fn hs_signed(files: &[(String, Vec<u8>)], scope: Option<&str>) -> Vec<(String, Vec<u8>)> {
    let mut out = files.to_vec();
    let sign = |input: &[u8]| token::hmac_sign(Algorithm::HS256, b"secret", input);
    let signer = Signer {
        algorithm: Algorithm::HS256,
        keyid: Some("k"),
        scope,
        sign: &sign,
    };
    out.push((SIGNATURES_FILE.into(), sign_files(files, &signer)));
    out
}

#[test]
fn hmac_signatures_verify_with_the_secret_only() {
    for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
        let sign = |input: &[u8]| token::hmac_sign(alg, b"secret", input);
        let signer = Signer {
            algorithm: alg,
            keyid: Some("k"),
            scope: None,
            sign: &sign,
        };
        let mut files = bundle_files();
        files.push((SIGNATURES_FILE.into(), sign_files(&bundle_files(), &signer)));
        verify(&files, Some(&verification(alg, "secret"))).unwrap();
        let err = verify(&files, Some(&verification(alg, "other"))).unwrap_err();
        assert_eq!(err.code(), "bad-signature");
        if alg != Algorithm::HS256 {
            // A key configured for another algorithm refuses the token.
            let err = verify(&files, Some(&verification(Algorithm::HS256, "secret"))).unwrap_err();
            assert_eq!(err.code(), "bad-signature");
        }
    }
}

#[test]
fn file_list_must_match_exactly() {
    let good = hs_signed(&bundle_files(), None);
    let config = verification(Algorithm::HS256, "secret");

    let mut extra = good.clone();
    extra.push(("x/more.rego".into(), b"package x\n".to_vec()));
    let err = verify(&extra, Some(&config)).unwrap_err();
    assert_eq!(err, SignatureError::Unsigned("x/more.rego".into()));

    let missing: Vec<_> = good
        .iter()
        .filter(|(p, _)| p != "x/policy.rego")
        .cloned()
        .collect();
    let err = verify(&missing, Some(&config)).unwrap_err();
    assert_eq!(
        err,
        SignatureError::NotInBundle(vec!["x/policy.rego".into()])
    );

    let mut changed = good.clone();
    changed[1].1 = b"package x\nallow := false\n".to_vec();
    let err = verify(&changed, Some(&config)).unwrap_err();
    assert_eq!(err.code(), "hash-mismatch");

    // Structured files are hashed by content, not bytes: reformatting keeps the signature.
    let mut reformatted = good.clone();
    reformatted[2].1 = b"{\n  \"a\": [1.50, \"<&>\"],\n  \"b\": 1\n}\n".to_vec();
    verify(&reformatted, Some(&config)).unwrap();

    let mut excluded = extra.clone();
    let config_excluding = Verification {
        exclude_files: vec!["x/m*.rego".into()],
        ..config.clone()
    };
    verify(&excluded, Some(&config_excluding)).unwrap();
    excluded.retain(|(p, _)| p != "x/more.rego");
    verify(&excluded, Some(&config_excluding)).unwrap();
}

#[test]
fn signing_config_and_signature_go_together() {
    let config = verification(Algorithm::HS256, "secret");
    assert_eq!(
        verify(&bundle_files(), Some(&config)).unwrap_err(),
        SignatureError::Missing
    );
    let signed = hs_signed(&bundle_files(), None);
    assert_eq!(
        verify(&signed, None).unwrap_err(),
        SignatureError::NotConfigured
    );
    verify(&bundle_files(), None).unwrap();
}

#[test]
fn scope_must_match() {
    let config = verification(Algorithm::HS256, "secret");
    let scoped = hs_signed(&bundle_files(), Some("write"));
    assert_eq!(
        verify(&scoped, Some(&config)).unwrap_err().code(),
        "scope-mismatch"
    );
    let want_write = Verification {
        scope: "write".into(),
        ..config.clone()
    };
    verify(&scoped, Some(&want_write)).unwrap();
    // Without signing.scope, the key's own scope applies.
    let mut key_scoped = config.clone();
    key_scoped.keys.get_mut("k").unwrap().scope = "write".into();
    verify(&scoped, Some(&key_scoped)).unwrap();
    let unscoped = hs_signed(&bundle_files(), None);
    assert_eq!(
        verify(&unscoped, Some(&want_write)).unwrap_err().code(),
        "scope-mismatch"
    );
}

// Tokens and key from OPA's own tests (`v1/bundle/verify_test.go`, `TestVerifyJWTSignature`):
// they were signed by OPA's tooling; here they go through `verify` inside a bundle whose
// only signed files are the two the payload names (content chosen to match their hashes is
// not possible, so each is excluded and the JWT checks alone are exercised).
const OPA_RS256: &str = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6ImZvbyJ9.eyJmaWxlcyI6W3sibmFtZSI6ImRiL3VhbTIvZW50aXRsZW1lbnRzL2RhdGEuanNvbiIsImhhc2giOiJjMjEzMTU0NGM3MTZhMjVhNWUzMWY1MDQzMDBmNTI0MGU4MjM1Y2FkYjlhNTdmMGJkMWI2ZjRiZDc0YjI2NjEyIiwiYWxnb3JpdGhtIjoic2hhMjU2In0seyJuYW1lIjoiZGIvdWFtMi9wb2xpY3kvb3BhLXBvbGljeS5yZWdvIiwiaGFzaCI6IjQyY2ZlNjc2OGI1N2JiNWY3NTAzYzE2NWMyOGRkMDdhYzViODEzNTU0ZWJjODUwZjJjYzM1ODQzZTcxMzdiMWQifV0sImlhdCI6MTU5MjI1MTQwNiwiaXNzIjoiSldUU2VydmljZSIsInNjb3BlIjoid3JpdGUifQ.UZcX_Qj29o213nwZ5mysiyNcgAp1AOqCkDLkj1KGZ7Cw3l17TbkF8t3FJd654sf762NGcABA0WQ2zxq-labXl_d5TKQmq23lurO3qLHI1cKQPyoxPbddGo78sJpMwWsiMyEYcyyKC9FpNUpa8cT81GPo4q9Zui8TAD0wtHh2YxBL7E8QYLJxcLMJTJxVBgrQGLXFT7vYRc6hJz9Vu-i0SWuLBGxOCmYoHr4DWFfy0IhAbhiUFyLRpukfBPjCJNYY5LgaZdN6LaYivtIEUms5jUuXubBimLJm7KOT5-bgJMXTcUsbrbl2Ma7PwG5IOKjjgyEvH8KVfGFZSzNrpuxKmA";
const OPA_RSA_PUBLIC: &str = "-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA9KaakMv1XKKDaSch3PFR
3a27oaHp1GNTTNqvb1ZaHZXp+wuhYDwc/MTE67x9GCifvQBWzEGorgTq7aisiOyl
vKifwz6/wQ+62WHKG/sqKn2Xikp3P63aBIPlZcHbkyyRmL62yeyuzYoGvLEYel+m
z5SiKGBwviSY0Th2L4e5sGJuk2HOut6emxDi+E2Fuuj5zokFJvIT6Urlq8f3h6+l
GeR6HUOXqoYVf7ff126GP7dticTVBgibxkkuJFmpvQSW6xmxruT4k6iwjzbZHY7P
ypZ/TdlnuGC1cOpAVyU7k32IJ9CRbt3nwEf5U54LRXLLQjFixWZHwKdDiMTF4ws0
+wIDAQAB
-----END PUBLIC KEY-----";
/// HS256 with secret "secret", no `kid` header, the deprecated `keyid` claim "foo".
const OPA_HS256_KEYID_CLAIM: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJmaWxlcyI6W3sibmFtZSI6ImRiL3VhbTIvZW50aXRsZW1lbnRzL2RhdGEuanNvbiIsImhhc2giOiJjMjEzMTU0NGM3MTZhMjVhNWUzMWY1MDQzMDBmNTI0MGU4MjM1Y2FkYjlhNTdmMGJkMWI2ZjRiZDc0YjI2NjEyIiwiYWxnb3JpdGhtIjoic2hhMjU2In0seyJuYW1lIjoiZGIvdWFtMi9wb2xpY3kvb3BhLXBvbGljeS5yZWdvIiwiaGFzaCI6IjQyY2ZlNjc2OGI1N2JiNWY3NTAzYzE2NWMyOGRkMDdhYzViODEzNTU0ZWJjODUwZjJjYzM1ODQzZTcxMzdiMWQifV0sImlhdCI6MTU5MjI0ODAyNywiaXNzIjoiSldUU2VydmljZSIsImtleWlkIjoiZm9vIiwic2NvcGUiOiJ3cml0ZSJ9.4nrInalqppAc9EjsNUD9Y35amVpDGoRk4bkxzdY8fhs";
/// HS256 with secret "secret", `kid` "bar".
const OPA_HS256_KID_BAR: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6ImJhciJ9.eyJmaWxlcyI6W3sibmFtZSI6ImRiL3VhbTIvZW50aXRsZW1lbnRzL2RhdGEuanNvbiIsImhhc2giOiJjMjEzMTU0NGM3MTZhMjVhNWUzMWY1MDQzMDBmNTI0MGU4MjM1Y2FkYjlhNTdmMGJkMWI2ZjRiZDc0YjI2NjEyIiwiYWxnb3JpdGhtIjoic2hhMjU2In0seyJuYW1lIjoiZGIvdWFtMi9wb2xpY3kvb3BhLXBvbGljeS5yZWdvIiwiaGFzaCI6IjQyY2ZlNjc2OGI1N2JiNWY3NTAzYzE2NWMyOGRkMDdhYzViODEzNTU0ZWJjODUwZjJjYzM1ODQzZTcxMzdiMWQifV0sImlhdCI6MTU5MjI0ODAyNywiaXNzIjoiSldUU2VydmljZSIsInNjb3BlIjoid3JpdGUifQ.xW04tph2-dSy47uZ-CgiObvFWFLUsMym8N7ermgPZ0s";

fn opa_bundle(token: &str) -> Vec<(String, Vec<u8>)> {
    vec![(
        SIGNATURES_FILE.into(),
        format!(r#"{{"signatures":["{token}"]}}"#).into_bytes(),
    )]
}

fn opa_config(keys: &[(&str, Algorithm, &str)], keyid: &str) -> Verification {
    Verification {
        keys: keys
            .iter()
            .map(|(id, alg, key)| {
                (
                    id.to_string(),
                    Key {
                        key: VerifyingKey::parse(*alg, key).unwrap(),
                        scope: String::new(),
                    },
                )
            })
            .collect(),
        keyid: keyid.into(),
        scope: "write".into(),
        // The payload's two files are not in these bundles.
        exclude_files: vec![],
    }
}

fn missing_files(result: Result<(), SignatureError>) -> Vec<String> {
    match result {
        Err(SignatureError::NotInBundle(files)) => files,
        other => panic!("expected the JWT to verify and its files to be missing: {other:?}"),
    }
}

#[test]
fn opa_signed_tokens_verify() {
    let both = vec![
        "db/uam2/entitlements/data.json".to_string(),
        "db/uam2/policy/opa-policy.rego".to_string(),
    ];
    // RS256, kid "foo" from the header.
    let config = opa_config(&[("foo", Algorithm::RS256, OPA_RSA_PUBLIC)], "");
    assert_eq!(
        missing_files(verify(&opa_bundle(OPA_RS256), Some(&config))),
        both
    );
    let wrong = opa_config(
        &[("foo", Algorithm::RS256, &key_file("rsa-other.pub.pem"))],
        "",
    );
    assert_eq!(
        verify(&opa_bundle(OPA_RS256), Some(&wrong))
            .unwrap_err()
            .code(),
        "bad-signature"
    );
    // The deprecated keyid claim names the key when the header has no kid.
    let config = opa_config(&[("foo", Algorithm::HS256, "secret")], "");
    assert_eq!(
        missing_files(verify(&opa_bundle(OPA_HS256_KEYID_CLAIM), Some(&config))),
        both
    );
    // signing.keyid wins over the header's kid "bar".
    let config = opa_config(&[("foo", Algorithm::HS256, "secret")], "foo");
    assert_eq!(
        missing_files(verify(&opa_bundle(OPA_HS256_KID_BAR), Some(&config))),
        both
    );
    let config = opa_config(&[("foo", Algorithm::HS256, "secret")], "");
    assert_eq!(
        verify(&opa_bundle(OPA_HS256_KID_BAR), Some(&config)).unwrap_err(),
        SignatureError::UnknownKey("bar".into())
    );
}

#[test]
fn signatures_file_is_written_as_opa_writes_it() {
    let files = hs_signed(&bundle_files(), None);
    let text = String::from_utf8(files.last().unwrap().1.clone()).unwrap();
    assert!(text.starts_with("{\n \"signatures\": [\n  \"eyJ"), "{text}");
    let token = text.split('"').nth(3).unwrap();
    let jwt = Compact::parse(token).unwrap();
    let payload: serde_json::Value = serde_json::from_slice(&jwt.payload).unwrap();
    assert_eq!(payload["keyid"], "k");
    assert_eq!(payload["files"][0]["name"], ".manifest");
    assert_eq!(payload["files"][0]["algorithm"], "SHA-256");
    assert_eq!(jwt.header["kid"], "k");
}

#[test]
fn go_filepath_match() {
    for (pattern, name, want) in [
        ("*.rego", "a.rego", true),
        ("*.rego", "x/a.rego", false),
        ("x/*", "x/a.rego", true),
        ("x/?.rego", "x/a.rego", true),
        ("[a-c].json", "b.json", true),
        ("[^a-c].json", "b.json", false),
        ("data.json", "data.json", true),
        ("\\*", "*", true),
        ("[", "a", false),
    ] {
        assert_eq!(glob_match(pattern, name), want, "{pattern} {name}");
    }
}
