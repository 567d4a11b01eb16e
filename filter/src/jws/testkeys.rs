//! Test keys (`testdata/jwt/`, made with the openssl commands in its README) and a signer
//! that makes compact tokens with them.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use p256::ecdsa::signature::hazmat::PrehashSigner as _;
use p256::pkcs8::DecodePrivateKey as _;
use rsa::signature::{RandomizedSigner as _, SignatureEncoding as _, Signer as _};

pub const RSA_KEY: &str = include_str!("../../../testdata/jwt/rsa.key");
pub const RSA_PUB: &str = include_str!("../../../testdata/jwt/rsa.pub");
pub const RSA_CRT: &str = include_str!("../../../testdata/jwt/rsa.crt");
pub const RSA_OTHER_PUB: &str = include_str!("../../../testdata/jwt/rsa-other.pub");
pub const EC256_KEY: &str = include_str!("../../../testdata/jwt/ec256.key");
pub const EC256_PUB: &str = include_str!("../../../testdata/jwt/ec256.pub");
pub const EC256_CRT: &str = include_str!("../../../testdata/jwt/ec256.crt");
pub const EC384_KEY: &str = include_str!("../../../testdata/jwt/ec384.key");
pub const EC384_PUB: &str = include_str!("../../../testdata/jwt/ec384.pub");
pub const EC521_KEY: &str = include_str!("../../../testdata/jwt/ec521.key");
pub const EC521_PUB: &str = include_str!("../../../testdata/jwt/ec521.pub");

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The private key that signs `alg` by default, and the public key (PEM) that verifies it.
pub fn default_keys(alg: &str) -> (&'static str, &'static str) {
    match &alg[..2] {
        "RS" | "PS" => (RSA_KEY, RSA_PUB),
        _ => match alg {
            "ES256" => (EC256_KEY, EC256_PUB),
            "ES384" => (EC384_KEY, EC384_PUB),
            "ES512" => (EC521_KEY, EC521_PUB),
            _ => ("secret", "secret"),
        },
    }
}

/// Signs `input` with `alg` and `key` (a PEM private key, or the HMAC secret).
pub fn sign(alg: &str, key: &str, input: &[u8]) -> Vec<u8> {
    use sha2::{Sha256, Sha384, Sha512};
    let rsa = || rsa::RsaPrivateKey::from_pkcs8_pem(key).unwrap();
    let mut rng = rand_core::OsRng;
    match alg {
        "HS256" | "HS384" | "HS512" => {
            use hmac::Mac as _;
            match alg {
                "HS256" => {
                    let mut m = hmac::Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
                    m.update(input);
                    m.finalize().into_bytes().to_vec()
                }
                "HS384" => {
                    let mut m = hmac::Hmac::<Sha384>::new_from_slice(key.as_bytes()).unwrap();
                    m.update(input);
                    m.finalize().into_bytes().to_vec()
                }
                _ => {
                    let mut m = hmac::Hmac::<Sha512>::new_from_slice(key.as_bytes()).unwrap();
                    m.update(input);
                    m.finalize().into_bytes().to_vec()
                }
            }
        }
        "RS256" => rsa::pkcs1v15::SigningKey::<Sha256>::new(rsa())
            .sign(input)
            .to_vec(),
        "RS384" => rsa::pkcs1v15::SigningKey::<Sha384>::new(rsa())
            .sign(input)
            .to_vec(),
        "RS512" => rsa::pkcs1v15::SigningKey::<Sha512>::new(rsa())
            .sign(input)
            .to_vec(),
        "PS256" => rsa::pss::BlindedSigningKey::<Sha256>::new(rsa())
            .sign_with_rng(&mut rng, input)
            .to_vec(),
        "PS384" => rsa::pss::BlindedSigningKey::<Sha384>::new(rsa())
            .sign_with_rng(&mut rng, input)
            .to_vec(),
        "PS512" => rsa::pss::BlindedSigningKey::<Sha512>::new(rsa())
            .sign_with_rng(&mut rng, input)
            .to_vec(),
        "ES256" | "ES384" | "ES512" => {
            let digest = super::Alg::from_name(alg).unwrap().hash().digest(input);
            ecdsa_sign(key, &digest)
        }
        other => panic!("no signer for {other}"),
    }
}

/// An ECDSA `R || S` signature of `digest`, on the private key's curve.
pub fn ecdsa_sign(key: &str, digest: &[u8]) -> Vec<u8> {
    if let Ok(k) = p256::ecdsa::SigningKey::from_pkcs8_pem(key) {
        let s: p256::ecdsa::Signature = k.sign_prehash(digest).unwrap();
        return s.to_vec();
    }
    if let Ok(k) = p384::ecdsa::SigningKey::from_pkcs8_pem(key) {
        let s: p384::ecdsa::Signature = k.sign_prehash(digest).unwrap();
        return s.to_vec();
    }
    let secret = p521::SecretKey::from_pkcs8_pem(key).unwrap();
    let k = p521::ecdsa::SigningKey::from_bytes(&secret.to_bytes()).unwrap();
    let s: p521::ecdsa::Signature = k.sign_prehash(digest).unwrap();
    s.to_vec()
}

/// A compact token: `header` and `payload` are JSON text, signed with `alg` under `key`.
pub fn token_with(alg: &str, key: &str, header: &str, payload: &str) -> String {
    let input = format!("{}.{}", b64(header.as_bytes()), b64(payload.as_bytes()));
    let signature = sign(alg, key, input.as_bytes());
    format!("{input}.{}", b64(&signature))
}

/// A token signed with `alg` by its default key, header `{"alg": alg, "typ": "JWT"}`.
pub fn token(alg: &str, payload: &str) -> String {
    let header = format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#);
    token_with(alg, default_keys(alg).0, &header, payload)
}

/// The JWK (JSON text) of a PEM public key, with `alg` and `kid` when given.
pub fn jwk(public_pem: &str, alg: Option<&str>, kid: Option<&str>) -> String {
    use p256::elliptic_curve::sec1::ToEncodedPoint as _;
    use p256::pkcs8::DecodePublicKey as _;
    use rsa::traits::PublicKeyParts as _;
    let mut fields = if let Ok(k) = rsa::RsaPublicKey::from_public_key_pem(public_pem) {
        format!(
            r#""kty":"RSA","n":"{}","e":"{}""#,
            b64(&k.n().to_bytes_be()),
            b64(&k.e().to_bytes_be())
        )
    } else {
        let (crv, point) = if let Ok(k) = p256::PublicKey::from_public_key_pem(public_pem) {
            ("P-256", k.to_encoded_point(false).as_bytes().to_vec())
        } else if let Ok(k) = p384::PublicKey::from_public_key_pem(public_pem) {
            ("P-384", k.to_encoded_point(false).as_bytes().to_vec())
        } else {
            let k = p521::PublicKey::from_public_key_pem(public_pem).unwrap();
            ("P-521", k.to_encoded_point(false).as_bytes().to_vec())
        };
        let size = (point.len() - 1) / 2;
        format!(
            r#""kty":"EC","crv":"{crv}","x":"{}","y":"{}""#,
            b64(&point[1..=size]),
            b64(&point[size + 1..])
        )
    };
    if let Some(alg) = alg {
        fields.push_str(&format!(r#","alg":"{alg}""#));
    }
    if let Some(kid) = kid {
        fields.push_str(&format!(r#","kid":"{kid}""#));
    }
    format!("{{{fields}}}")
}
