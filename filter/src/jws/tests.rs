use super::testkeys::*;
use super::*;

const ALGS: &[&str] = &[
    "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256",
    "ES384", "ES512",
];

fn key_for(alg: &str, public: &str) -> Key {
    if alg.starts_with("HS") {
        Key::Hmac(public.as_bytes().to_vec())
    } else {
        keys_from_pem_or_jwk(public).unwrap().remove(0).key
    }
}

/// Signs with each algorithm's default key and verifies with the matching public key.
fn verifies(alg: &str, token: &str, public: &str) -> bool {
    let compact = Compact::split(token).unwrap();
    verify(
        Alg::from_name(alg).unwrap(),
        &key_for(alg, public),
        &compact.signing_input(),
        &compact.signature_bytes().unwrap(),
    )
}

#[test]
fn every_algorithm_verifies_its_own_signature_and_nothing_else() {
    for alg in ALGS {
        let token = token(alg, r#"{"sub":"alice"}"#);
        let public = default_keys(alg).1;
        assert!(verifies(alg, &token, public), "{alg} should verify");

        // Another payload under the same signature.
        let (head, rest) = token.split_once('.').unwrap();
        let (_, signature) = rest.split_once('.').unwrap();
        let forged = format!("{head}.{}.{signature}", b64(br#"{"sub":"mallory"}"#));
        assert!(!verifies(alg, &forged, public), "{alg} forged payload");

        // The wrong key of the same kind.
        let other = match &alg[..2] {
            "HS" => "not the secret",
            "RS" | "PS" => RSA_OTHER_PUB,
            _ if *alg == "ES256" => EC384_PUB,
            _ => EC256_PUB,
        };
        assert!(!verifies(alg, &token, other), "{alg} with the wrong key");
    }
}

#[test]
fn a_key_of_the_wrong_kind_or_algorithm_never_verifies() {
    let rs = token("RS256", "{}");
    let compact = Compact::split(&rs).unwrap();
    let (input, signature) = (compact.signing_input(), compact.signature_bytes().unwrap());
    let rsa = key_for("RS256", RSA_PUB);
    // Same key, other algorithms: another hash, PSS padding, ECDSA, HMAC.
    for alg in [Alg::RS384, Alg::PS256, Alg::ES256, Alg::HS256] {
        assert!(!verify(alg, &rsa, &input, &signature), "{alg:?}");
    }
    // The public key's PEM text as an HMAC secret (the classic RS/HS confusion).
    let confused = token_with("HS256", RSA_PUB, r#"{"alg":"HS256"}"#, "{}");
    let compact = Compact::split(&confused).unwrap();
    assert!(!verify(
        Alg::HS256,
        &rsa,
        &compact.signing_input(),
        &compact.signature_bytes().unwrap()
    ));
    // An empty HMAC secret is no key.
    let empty = token_with("HS256", "", r#"{"alg":"HS256"}"#, "{}");
    let compact = Compact::split(&empty).unwrap();
    assert!(!verify(
        Alg::HS256,
        &Key::Hmac(Vec::new()),
        &compact.signing_input(),
        &compact.signature_bytes().unwrap()
    ));
}

#[test]
fn keys_come_from_certificates_public_keys_jwks_and_jwk_sets() {
    for (alg, public) in [("RS256", RSA_CRT), ("ES256", EC256_CRT)] {
        assert!(
            verifies(alg, &token(alg, "{}"), public),
            "{alg} certificate"
        );
    }
    for alg in ["RS256", "PS512", "ES256", "ES384", "ES512"] {
        let jwk = jwk(default_keys(alg).1, Some(alg), Some("k1"));
        assert!(verifies(alg, &token(alg, "{}"), &jwk), "{alg} JWK");
    }
    let set = format!(
        r#"{{"keys":[{},{}]}}"#,
        jwk(RSA_OTHER_PUB, Some("RS256"), Some("a")),
        jwk(EC256_PUB, None, Some("b"))
    );
    let keys = keys_from_pem_or_jwk(&set).unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0].alg.as_deref(), Some("RS256"));
    assert_eq!(keys[0].kid, "a");
    assert_eq!(keys[1].alg, None);
    // A key naming an algorithm OPA does not know is skipped; an oct key is an HMAC secret.
    let set = r#"{"keys":[{"kty":"oct","k":"c2VjcmV0","alg":"XX1"},{"kty":"oct","k":"c2VjcmV0"}]}"#;
    let keys = keys_from_pem_or_jwk(set).unwrap();
    assert_eq!(keys.len(), 1);
    assert!(matches!(&keys[0].key, Key::Hmac(k) if k == b"secret"));
}

#[test]
fn unusable_key_text_is_an_error() {
    for (text, want) in [
        ("", "failed to parse a JWK key (set)"),
        ("not a key", "failed to parse a JWK key (set)"),
        (r#"{"kty":"RSA"}"#, "JWK is missing n"),
        (r#"{"kty":"XYZ"}"#, "unsupported JWK kty XYZ"),
        (r#"{"keys":{}}"#, "keys must be an array"),
        (
            "-----BEGIN RSA PUBLIC KEY-----\nAAAA\n-----END RSA PUBLIC KEY-----\n",
            "failed to extract a Key from the PEM certificate",
        ),
        (
            "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
            "failed to parse a PEM public key",
        ),
        (
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            "failed to parse a PEM certificate",
        ),
    ] {
        let err = keys_from_pem_or_jwk(text).unwrap_err().to_string();
        assert!(err.contains(want), "{text:?}: {err}");
    }
    // Anything after the PEM block, as in Go's pem.Decode + OPA's check.
    let trailing = format!("{RSA_PUB}\n");
    assert_eq!(
        keys_from_pem_or_jwk(&trailing).unwrap_err().to_string(),
        "extra data after a PEM certificate block"
    );
    assert_eq!(pem_rest_of(RSA_PUB), "");
}

fn pem_rest_of(text: &str) -> String {
    super::key::pem_rest(text).unwrap()
}

#[test]
fn rsa_keys_outside_the_size_bounds_never_verify() {
    // A 512-bit modulus: Go refuses keys under 1024 bits.
    let small = r#"{"kty":"RSA","e":"AQAB","n":"w7Zdfmece8iaB0kiTY8pCtiBtzbptJmP28nSWwtdjRu0f2GFpajvWE4VhfJAjEsOcwYzay7XGN0b-X84BfC8hw"}"#;
    let keys = keys_from_pem_or_jwk(small).unwrap();
    assert!(matches!(keys[0].key, Key::Public(PublicKey::Unusable(_))));
}

#[test]
fn pss_salt_is_the_hash_length_in_jws_and_detected_for_verify_ps() {
    // Sign PS256 with a 20-byte salt (not the 32 RFC 7518 requires).
    use rsa::pkcs8::DecodePrivateKey as _;
    use rsa::signature::RandomizedSigner as _;
    use rsa::signature::SignatureEncoding as _;
    let key = rsa::RsaPrivateKey::from_pkcs8_pem(RSA_KEY).unwrap();
    let signer = rsa::pss::BlindedSigningKey::<sha2::Sha256>::new_with_salt_len(key, 20);
    let input = b"header.payload";
    let signature = signer.sign_with_rng(&mut rand_core::OsRng, input).to_vec();
    let Key::Public(public) = key_for("PS256", RSA_PUB) else {
        panic!()
    };
    assert!(verify_with_public_key(
        Alg::PS256,
        &public,
        input,
        &signature,
        PssSalt::Auto
    ));
    assert!(!verify_with_public_key(
        Alg::PS256,
        &public,
        input,
        &signature,
        PssSalt::EqualsHash
    ));
}

#[test]
fn ecdsa_signatures_must_fit_the_curve() {
    let token = token("ES256", "{}");
    let compact = Compact::split(&token).unwrap();
    let (input, signature) = (compact.signing_input(), compact.signature_bytes().unwrap());
    let Key::Public(public) = key_for("ES256", EC256_PUB) else {
        panic!()
    };
    // JWS: exactly R || S of 32 bytes each.
    let mut longer = vec![0u8];
    longer.extend_from_slice(&signature[..32]);
    longer.push(0);
    longer.extend_from_slice(&signature[32..]);
    assert!(!verify_with_public_key(
        Alg::ES256,
        &public,
        &input,
        &longer,
        PssSalt::EqualsHash
    ));
    // io.jwt.verify_es256 cuts the signature in halves, so leading zeros are accepted.
    assert!(verify_ecdsa_halves(Hash::Sha256, &public, &input, &longer));
    assert!(!verify_ecdsa_halves(
        Hash::Sha256,
        &public,
        &input,
        &signature[..63]
    ));
    assert!(!verify_ecdsa_halves(Hash::Sha256, &public, &input, &[]));
}

#[test]
fn base64url_accepts_what_opa_accepts() {
    for (text, want) in [
        ("", Some(&b""[..])),
        ("YQ", Some(b"a")),
        ("YQ==", Some(b"a")),
        ("YWI", Some(b"ab")),
        ("YWI=", Some(b"ab")),
        ("YWJj", Some(b"abc")),
        ("-_8", Some(&[0xfb, 0xff][..])),
        ("YR", Some(b"a")), // non-zero trailing bits, as Go's non-strict decoder
        ("Y\nQ", None),     // the length check counts the line break, as OPA does
        ("YWJ\njZA", None), // nor the padding it then lacks
        ("YW\nJjZA==", Some(b"abcd")),
        ("Y", None),
        ("YQ=", None),
        ("+/8", None),
        ("YQ==YQ", None),
    ] {
        assert_eq!(base64url_decode(text).as_deref(), want, "{text:?}");
    }
}

#[test]
fn compact_tokens_have_exactly_three_parts() {
    assert_eq!(Compact::split("abc"), Err(JwsError::NoSeparators));
    assert_eq!(Compact::split("a.b"), Err(JwsError::Sections(2)));
    assert_eq!(Compact::split("a.b.c.d"), Err(JwsError::Sections(4)));
    let c = Compact::split("..").unwrap();
    assert_eq!((c.header, c.payload, c.signature), ("", "", ""));
    assert_eq!(c.signing_input(), b".");
}

#[test]
fn a_jwe_header_is_refused() {
    let token = format!(
        "{}.{}.",
        b64(br#"{"alg":"RSA-OAEP","enc":"A256GCM"}"#),
        b64(b"x")
    );
    assert_eq!(
        Compact::split(&token).unwrap().header_json(),
        Err(JwsError::Jwe)
    );
}

#[test]
fn ec_points_off_the_curve_never_verify() {
    for (alg, public) in [
        ("ES256", EC256_PUB),
        ("ES384", EC384_PUB),
        ("ES512", EC521_PUB),
    ] {
        let mut jwk: serde_json::Value = serde_json::from_str(&jwk(public, None, None)).unwrap();
        let mut y = base64url_decode(jwk["y"].as_str().unwrap()).unwrap();
        *y.last_mut().unwrap() ^= 1;
        jwk["y"] = b64(&y).into();
        let keys = keys_from_pem_or_jwk(&jwk.to_string()).unwrap();
        assert!(
            matches!(keys[0].key, Key::Public(PublicKey::Unusable(_))),
            "{alg}: {:?}",
            keys[0].key
        );
        assert!(!verifies(alg, &token(alg, "{}"), &jwk.to_string()), "{alg}");
    }
}

#[test]
fn ecdsa_uses_the_key_curve_and_the_algorithm_hash() {
    // ES256's SHA-256 on a P-384 key (Go truncates nothing: the digest is shorter than n).
    let input = b"header.payload";
    let signature = ecdsa_sign(EC384_KEY, &Hash::Sha256.digest(input));
    let Key::Public(public) = key_for("ES384", EC384_PUB) else {
        panic!()
    };
    assert!(verify_ecdsa_halves(
        Hash::Sha256,
        &public,
        input,
        &signature
    ));
    assert!(!verify_ecdsa_halves(
        Hash::Sha384,
        &public,
        input,
        &signature
    ));
}

/// The RS256 token's signing input and signature, and the RSA public key's modulus.
fn rs256_parts() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    use rsa::pkcs8::DecodePublicKey as _;
    use rsa::traits::PublicKeyParts as _;
    let token = token("RS256", "{}");
    let compact = Compact::split(&token).unwrap();
    let n = rsa::RsaPublicKey::from_public_key_pem(RSA_PUB)
        .unwrap()
        .n()
        .to_bytes_be();
    (
        compact.signing_input(),
        compact.signature_bytes().unwrap(),
        n,
    )
}

#[test]
fn rsa_signatures_are_exactly_the_modulus_length_and_below_the_modulus() {
    let (input, signature, n) = rs256_parts();
    let key = key_for("RS256", RSA_PUB);
    assert!(verify(Alg::RS256, &key, &input, &signature));
    assert_eq!(signature.len(), n.len());
    let mut padded = vec![0u8];
    padded.extend_from_slice(&signature);
    let mut n_plus_signature = n.clone();
    // n + s: the same residue, but not below n (and still the modulus length here).
    let mut carry = 0u16;
    for (out, s) in n_plus_signature
        .iter_mut()
        .rev()
        .zip(signature.iter().rev())
    {
        let sum = u16::from(*out) + u16::from(*s) + carry;
        *out = sum as u8;
        carry = sum >> 8;
    }
    for bad in [
        &signature[1..],
        &signature[..signature.len() - 1],
        &padded,
        &n,
        &vec![0u8; n.len()],
        &[],
    ] {
        assert!(
            !verify(Alg::RS256, &key, &input, bad),
            "{} bytes",
            bad.len()
        );
    }
    if carry == 0 {
        assert!(!verify(Alg::RS256, &key, &input, &n_plus_signature));
    }
}

#[test]
fn pkcs1v15_digest_info_must_match_exactly() {
    use rsa::pkcs8::DecodePrivateKey as _;
    use sha2::Digest as _;
    let key = rsa::RsaPrivateKey::from_pkcs8_pem(RSA_KEY).unwrap();
    let public = key_for("RS256", RSA_PUB);
    let input = b"header.payload";
    let digest = sha2::Sha256::digest(input).to_vec();
    let sha256_prefix: &[u8] = &[
        0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
        0x05, 0x00, 0x04, 0x20,
    ];
    // Signs `00 01 FF.. 00 || t` for a DigestInfo `t` of our making.
    let sign_raw = |t: &[u8]| key.sign(rsa::Pkcs1v15Sign::new_unprefixed(), t).unwrap();
    let exact = [sha256_prefix, &digest].concat();
    assert!(verify(Alg::RS256, &public, input, &sign_raw(&exact)));
    // The SHA-384 OID around a SHA-256 digest; parameters left out (no NULL); trailing data;
    // the bare digest.
    let mut other_oid = exact.clone();
    other_oid[14] = 0x02;
    let no_null = [
        &[
            0x30, 0x2f, 0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x01, 0x04, 0x20,
        ][..],
        &digest,
    ]
    .concat();
    let trailing = [&exact[..], &[0u8]].concat();
    for t in [other_oid, no_null, trailing, digest.clone()] {
        assert!(
            !verify(Alg::RS256, &public, input, &sign_raw(&t)),
            "{t:02x?}"
        );
    }
}

#[test]
fn ecdsa_r_and_s_must_be_in_one_to_n_minus_one() {
    // P-256's group order.
    let n = base64url_decode("_____wAAAAD__________7zm-q2nF56E87nKwvxjJVE").unwrap();
    let token = token("ES256", "{}");
    let compact = Compact::split(&token).unwrap();
    let (input, signature) = (compact.signing_input(), compact.signature_bytes().unwrap());
    let key = key_for("ES256", EC256_PUB);
    assert!(verify(Alg::ES256, &key, &input, &signature));
    let (r, s) = signature.split_at(32);
    let zero = [0u8; 32];
    for (r, s) in [(&zero[..], s), (r, &zero[..]), (&n[..], s), (r, &n[..])] {
        assert!(!verify(Alg::ES256, &key, &input, &[r, s].concat()));
    }
}

#[test]
fn ecdsa_agrees_with_rustcrypto_on_many_digests() {
    for (alg, private, public) in [
        ("ES256", EC256_KEY, EC256_PUB),
        ("ES384", EC384_KEY, EC384_PUB),
        ("ES512", EC521_KEY, EC521_PUB),
    ] {
        let Key::Public(key) = key_for(alg, public) else {
            panic!()
        };
        let hash = Alg::from_name(alg).unwrap().hash();
        for i in 0..16u8 {
            let input = [b'm', i];
            let signature = ecdsa_sign(private, &hash.digest(&input));
            assert!(
                verify_ecdsa_halves(hash, &key, &input, &signature),
                "{alg} {i}"
            );
            assert!(
                !verify_ecdsa_halves(hash, &key, &[b'n', i], &signature),
                "{alg} {i}"
            );
        }
    }
}
