//! `crypto.md5`, `crypto.sha1`, `crypto.sha256`, `crypto.hmac.{md5,sha1,sha256,sha512}` and
//! `crypto.hmac.equal` (OPA `v1/topdown/crypto.go`): digests of a string's UTF-8 bytes, as
//! lowercase hex.

use hmac::{Hmac, Mac};
use md5::Md5;
use regorus::Value;
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};

use super::string_operand;

pub const FUNCTIONS: &[(&str, usize)] = &[
    ("crypto.md5", 1),
    ("crypto.sha1", 1),
    ("crypto.sha256", 1),
    ("crypto.hmac.md5", 2),
    ("crypto.hmac.sha1", 2),
    ("crypto.hmac.sha256", 2),
    ("crypto.hmac.sha512", 2),
    ("crypto.hmac.equal", 2),
];

pub fn call(name: &str, args: &[Value]) -> Option<Result<Value, String>> {
    let result = match name {
        "crypto.md5" => digest::<Md5>(args),
        "crypto.sha1" => digest::<Sha1>(args),
        "crypto.sha256" => digest::<Sha256>(args),
        "crypto.hmac.md5" => hmac::<Hmac<Md5>>(args),
        "crypto.hmac.sha1" => hmac::<Hmac<Sha1>>(args),
        "crypto.hmac.sha256" => hmac::<Hmac<Sha256>>(args),
        "crypto.hmac.sha512" => hmac::<Hmac<Sha512>>(args),
        "crypto.hmac.equal" => equal(args),
        _ => return None,
    };
    Some(result)
}

fn digest<D: Digest>(args: &[Value]) -> Result<Value, String> {
    let text = string_operand(args, 1)?;
    Ok(Value::from(to_hex(&D::digest(text.as_bytes()))))
}

fn hmac<M: Mac + hmac::digest::KeyInit>(args: &[Value]) -> Result<Value, String> {
    let message = string_operand(args, 1)?;
    let key = string_operand(args, 2)?;
    // HMAC takes a key of any length (a long one is hashed first).
    let mut mac =
        <M as hmac::digest::KeyInit>::new_from_slice(key.as_bytes()).map_err(|e| e.to_string())?;
    mac.update(message.as_bytes());
    Ok(Value::from(to_hex(&mac.finalize().into_bytes())))
}

/// Go's `hmac.Equal`: the bytes compared in time independent of where they differ.
fn equal(args: &[Value]) -> Result<Value, String> {
    let a = string_operand(args, 1)?.as_bytes();
    let b = string_operand(args, 2)?.as_bytes();
    let same = a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0;
    Ok(Value::from(same))
}

fn to_hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut text, byte| {
            use std::fmt::Write as _;
            let _ = write!(text, "{byte:02x}");
            text
        })
}
