//! OPA's `io.jwt.*` builtins (decode, decode_verify, verify_rs/ps/es/hs 256/384/512,
//! verify_eddsa) on top of
//! `crate::jws`, with OPA's results: a token that fails a check gives `false` or
//! `[false, {}, {}]`, and what OPA reports as a builtin error is `Err` here, which the engine
//! turns into undefined, as OPA-Envoy (non-strict builtin errors) does.
//! Mirrors `v1/topdown/tokens.go` of OPA v1; the few differences are in docs/jwt.md.

use std::collections::BTreeSet;

use regorus::Value;

use std::rc::Rc;

use super::verified;
use crate::jws::{self, Alg, Compact, Hash, Key, KeyEntry, PssSalt};

/// The functions this module provides, with their argument counts.
pub const FUNCTIONS: &[(&str, usize)] = &[
    ("io.jwt.decode", 1),
    ("io.jwt.decode_verify", 2),
    ("io.jwt.verify_rs256", 2),
    ("io.jwt.verify_rs384", 2),
    ("io.jwt.verify_rs512", 2),
    ("io.jwt.verify_ps256", 2),
    ("io.jwt.verify_ps384", 2),
    ("io.jwt.verify_ps512", 2),
    ("io.jwt.verify_es256", 2),
    ("io.jwt.verify_es384", 2),
    ("io.jwt.verify_es512", 2),
    ("io.jwt.verify_eddsa", 2),
    ("io.jwt.verify_hs256", 2),
    ("io.jwt.verify_hs384", 2),
    ("io.jwt.verify_hs512", 2),
    ("io.jwt.encode_sign", 3),
    ("io.jwt.encode_sign_raw", 3),
];

/// Calls the builtin `name` with `args`. `now_ns` is the evaluation's time, the default of
/// `decode_verify`'s `time` constraint. `Err` is a builtin error (the call is undefined).
pub fn call(name: &str, args: &[Value], now_ns: i64) -> Result<Value, String> {
    let arg = |i: usize| {
        args.get(i)
            .ok_or_else(|| format!("{name}: missing operand"))
    };
    let verify = |alg: Alg| -> Result<Value, String> {
        verify_public(alg, arg(0)?, arg(1)?).map(Value::Bool)
    };
    match name {
        "io.jwt.decode" => decode(arg(0)?),
        "io.jwt.decode_verify" => decode_verify(arg(0)?, arg(1)?, now_ns as f64),
        "io.jwt.verify_rs256" => verify(Alg::RS256),
        "io.jwt.verify_rs384" => verify(Alg::RS384),
        "io.jwt.verify_rs512" => verify(Alg::RS512),
        "io.jwt.verify_ps256" => verify(Alg::PS256),
        "io.jwt.verify_ps384" => verify(Alg::PS384),
        "io.jwt.verify_ps512" => verify(Alg::PS512),
        "io.jwt.verify_es256" => verify(Alg::ES256),
        "io.jwt.verify_es384" => verify(Alg::ES384),
        "io.jwt.verify_es512" => verify(Alg::ES512),
        "io.jwt.verify_eddsa" => verify(Alg::EdDSA),
        "io.jwt.verify_hs256" => verify_hmac(Hash::Sha256, arg(0)?, arg(1)?).map(Value::Bool),
        "io.jwt.verify_hs384" => verify_hmac(Hash::Sha384, arg(0)?, arg(1)?).map(Value::Bool),
        "io.jwt.verify_hs512" => verify_hmac(Hash::Sha512, arg(0)?, arg(1)?).map(Value::Bool),
        "io.jwt.encode_sign" => {
            encode_sign(&go_json(arg(0)?)?, &go_json(arg(1)?)?, &go_json(arg(2)?)?)
        }
        "io.jwt.encode_sign_raw" => encode_sign(
            string_operand(arg(0)?, 1)?,
            string_operand(arg(1)?, 2)?,
            string_operand(arg(2)?, 3)?,
        ),
        _ => Err(format!("unknown function {name}")),
    }
    .map_err(|e| format!("{name}: {e}"))
}

/// A value as Go's `json.Marshal` writes OPA's JSON of it: keys sorted, and `<`, `>`, `&`,
/// U+2028, U+2029 escaped (they can only stand inside strings).
fn go_json(value: &Value) -> Result<String, String> {
    let text = serde_json::to_string(value).map_err(|e| e.to_string())?;
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    Ok(out)
}

/// OPA's `commonBuiltinJWTEncodeSign`: the header's `alg` signs `payload` (which must be JSON
/// unless the header's `typ` is neither empty nor `JWT`) with the first key of the JWK text.
fn encode_sign(header: &str, payload: &str, jwk: &str) -> Result<Value, String> {
    let key = jws::signing_key(jwk)?;
    let fields = jws::json_object(header.as_bytes(), "header").map_err(|e| e.to_string())?;
    let text_field = |name: &str| match fields.get(name) {
        None => Ok(""),
        Some(serde_json::Value::String(s)) => Ok(s.as_str()),
        Some(_) => Err(format!("{name} must be a string")),
    };
    let alg_name = text_field("alg")?;
    let alg = Alg::from_name(alg_name).ok_or("unknown signature algorithm")?;
    let typ = text_field("typ")?;
    if (typ.is_empty() || typ == "JWT")
        && serde_json::from_str::<serde_json::Value>(payload).is_err()
    {
        return Err("type is JWT but payload is not JSON".into());
    }
    jws::sign_compact(alg, &key, header.as_bytes(), payload.as_bytes()).map(Value::from)
}

/// Why a call cannot be answered as OPA answers it: `encode_sign` with PS* and an RSA private
/// key or ES* and an EC private key, which this filter does not sign (OPA returns a token; undefined would
/// be a different answer). With another key OPA fails too, and so does the call here.
pub fn gap(name: &str, args: &[Value]) -> Option<String> {
    let parsed = |value: &Value| -> Option<Value> {
        match (name, value) {
            ("io.jwt.encode_sign", value) => Some(value.clone()),
            ("io.jwt.encode_sign_raw", Value::String(text)) => Value::from_json_str(text).ok(),
            _ => None,
        }
    };
    let header = parsed(args.first()?)?;
    let key = parsed(args.get(2)?)?;
    let key = match get(&key, "keys") {
        Some(Value::Array(keys)) => keys.first()?.clone(),
        _ => key,
    };
    let text = |object: &Value, field: &str| match get(object, field) {
        Some(Value::String(s)) => Some(s.to_string()),
        _ => None,
    };
    let alg = text(&header, "alg")?;
    let kty = text(&key, "kty")?;
    // A public key (no `d`) cannot sign: OPA fails the call too.
    get(&key, "d")?;
    let unsigned = match Alg::from_name(&alg)? {
        Alg::PS256 | Alg::PS384 | Alg::PS512 => kty == "RSA",
        Alg::ES256 | Alg::ES384 | Alg::ES512 => kty == "EC",
        _ => false,
    };
    unsigned.then(|| {
        format!("{name}: signing with {alg} is not available in this filter (OPA signs it)")
    })
}

fn string_operand(value: &Value, position: usize) -> Result<&str, String> {
    match value {
        Value::String(s) => Ok(s),
        _ => Err(format!("operand {position} must be string")),
    }
}

fn split(token: &str) -> Result<Compact<'_>, String> {
    Compact::split(token).map_err(|e| e.to_string())
}

/// JSON text (from a token part) as a Rego object.
fn json_object(bytes: &[u8], part: &'static str) -> Result<Value, String> {
    let text = String::from_utf8_lossy(bytes);
    match Value::from_json_str(&text) {
        Ok(value @ Value::Object(_)) => Ok(value),
        Ok(_) => Err(format!(
            "bad JWT {part}: decoded JSON type was not an Object"
        )),
        Err(e) => Err(format!("bad JWT {part}: invalid JSON: {e}")),
    }
}

fn get<'a>(object: &'a Value, key: &str) -> Option<&'a Value> {
    match object {
        Value::Object(o) => o.get(&Value::from(key)),
        _ => None,
    }
}

/// The JOSE header as a Rego object; a JWE (`enc`) is refused.
fn decode_header(token: &Compact<'_>) -> Result<Value, String> {
    let bytes = token
        .header_bytes()
        .map_err(|e| format!("JWT header had invalid encoding: {e}"))?;
    let header = json_object(&bytes, "header")?;
    if get(&header, "enc").is_some() {
        return Err(jws::JwsError::Jwe.to_string());
    }
    Ok(header)
}

/// The header parameters OPA interprets (RFC 7515 §4.1).
#[derive(Default)]
struct TokenHeader {
    alg: String,
    kid: String,
    cty: String,
    crit: BTreeSet<String>,
    unknown: Vec<String>,
}

impl TokenHeader {
    fn parse(header: &Value) -> Result<Self, String> {
        let mut parsed = TokenHeader::default();
        let Value::Object(object) = header else {
            return Err("JWT header is not an object".into());
        };
        for (key, value) in object.iter() {
            let Value::String(key) = key else {
                continue;
            };
            let text = |name: &str| match value {
                Value::String(s) => Ok(s.to_string()),
                _ => Err(format!("{name}: must be a string")),
            };
            match key.as_ref() {
                "alg" => parsed.alg = text("alg")?,
                "kid" => parsed.kid = text("kid")?,
                "typ" => {
                    text("typ")?;
                }
                "cty" => parsed.cty = text("cty")?,
                "crit" => {
                    let Value::Array(items) = value else {
                        return Err("crit: must be a list".into());
                    };
                    // OPA stops at the first element that is not a string.
                    parsed.crit = items
                        .iter()
                        .map_while(|item| match item {
                            Value::String(s) => Some(s.to_string()),
                            _ => None,
                        })
                        .collect();
                    if parsed.crit.is_empty() {
                        return Err("crit: must be a nonempty list".into());
                    }
                }
                other => parsed.unknown.push(other.to_string()),
            }
        }
        Ok(parsed)
    }

    /// RFC 7515: `alg` must be present and every critical parameter understood.
    fn valid(&self) -> bool {
        !self.alg.is_empty() && !self.unknown.iter().any(|u| self.crit.contains(u))
    }
}

/// `io.jwt.decode(token)`: `[header, payload, signature_hex]`, no verification.
fn decode(token: &Value) -> Result<Value, String> {
    let compact = split(string_operand(token, 1)?)?;
    let header = decode_header(&compact)?;
    let payload = compact
        .payload_bytes()
        .map_err(|e| format!("JWT payload had invalid encoding: {e}"))?;
    if let Some(cty) = get(&header, "cty") {
        let cty = match cty {
            Value::String(s) => s,
            _ => return Err("cty: must be a string".into()),
        };
        // A nested token, possibly quoted (jwt.io does): decode the inner one.
        if cty.as_ref() == "JWT" {
            let inner = String::from_utf8_lossy(&payload);
            let inner = inner.trim_matches(|c| c == '"' || c == '\'');
            return decode(&Value::from(inner));
        }
    }
    let payload = json_object(&payload, "payload")?;
    let signature = compact
        .signature_bytes()
        .map_err(|e| format!("JWT signature had invalid encoding: {e}"))?;
    Ok(Value::from(vec![
        header,
        payload,
        Value::from(hex(&signature)),
    ]))
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        for nibble in [b >> 4, b & 0x0f] {
            out.push(char::from(
                DIGITS.get(usize::from(nibble)).copied().unwrap_or(b'0'),
            ));
        }
    }
    out
}

/// `io.jwt.verify_{rs,ps,es}*(token, certificate)`: the function's algorithm, whatever the
/// header says; the key (a PEM, JWK or JWKS) chosen by `kid` or tried in turn.
fn verify_public(alg: Alg, token: &Value, key: &Value) -> Result<bool, String> {
    let (token, key_text) = (string_operand(token, 1)?, string_operand(key, 2)?);
    if verified::seen(alg.name(), key_text, token) {
        return Ok(true);
    }
    let compact = split(token)?;
    let keys = verified::keys(key_text).map_err(|e| e.to_string())?;
    let signature = compact
        .signature_bytes()
        .map_err(|e| format!("JWT signature had invalid encoding: {e}"))?;
    let header = TokenHeader::parse(&decode_header(&compact)?)?;
    let input = compact.signing_input();
    let verifies = |entry: &KeyEntry| match &entry.key {
        Key::Public(public) => match alg {
            Alg::ES256 | Alg::ES384 | Alg::ES512 => {
                jws::verify_ecdsa_halves(alg.hash(), public, &input, &signature)
            }
            _ => jws::verify_with_public_key(alg, public, &input, &signature, PssSalt::Auto),
        },
        Key::Hmac(_) => false,
    };
    let by_kid = (!header.kid.is_empty())
        .then(|| keys.iter().find(|k| k.kid == header.kid))
        .flatten();
    let valid = match by_kid {
        Some(entry) => verifies(entry),
        None => keys.iter().any(|entry| match &entry.alg {
            None => verifies(entry),
            Some(key_alg) => *key_alg == header.alg && verifies(entry),
        }),
    };
    if valid {
        verified::remember(alg.name(), key_text, token);
    }
    Ok(valid)
}

/// `io.jwt.verify_hs*(token, secret)`: the header is not read.
fn verify_hmac(hash: Hash, token: &Value, secret: &Value) -> Result<bool, String> {
    let token = string_operand(token, 1)?;
    let secret = string_operand(secret, 2)?;
    let compact = split(token)?;
    let signature = compact
        .signature_bytes()
        .map_err(|e| format!("JWT signature had invalid encoding: {e}"))?;
    Ok(jws::hmac_matches(
        hash,
        secret.as_bytes(),
        &compact.signing_input(),
        &signature,
    ))
}

/// `decode_verify`'s constraints object.
struct Constraints {
    keys: Option<Rc<Vec<KeyEntry>>>,
    /// The `cert` or `secret` text, under which verified tokens are remembered.
    key_text: String,
    secret: String,
    alg: String,
    iss: String,
    aud: String,
    /// Nanoseconds since the epoch.
    time: f64,
}

impl Constraints {
    fn parse(constraints: &Value, now_ns: f64) -> Result<Self, String> {
        let Value::Object(object) = constraints else {
            return Err("operand 2 must be object".into());
        };
        let mut parsed = Constraints {
            keys: None,
            key_text: String::new(),
            secret: String::new(),
            alg: String::new(),
            iss: String::new(),
            aud: String::new(),
            time: now_ns,
        };
        for (name, value) in object.iter() {
            let Value::String(name) = name else {
                return Err("constraint names must be strings".into());
            };
            let text = |what: &str| match value {
                Value::String(s) => Ok(s.to_string()),
                _ => Err(format!("{what} constraint: must be a string")),
            };
            match name.as_ref() {
                "cert" => {
                    let cert = text("cert")?;
                    parsed.keys = Some(verified::keys(&cert).map_err(|e| e.to_string())?);
                    parsed.key_text = cert;
                }
                "secret" => {
                    parsed.secret = text("secret")?;
                    parsed.key_text.clone_from(&parsed.secret);
                }
                "alg" => parsed.alg = text("alg")?,
                "iss" => parsed.iss = text("iss")?,
                "aud" => parsed.aud = text("aud")?,
                "time" => {
                    let time = match value {
                        Value::Number(_) => {
                            number_f64(value).ok_or("token time constraint: unvalid float64")?
                        }
                        _ => return Err("token time constraint: must be a number".into()),
                    };
                    if time < 0.0 {
                        return Err("token time constraint: must not be negative".into());
                    }
                    parsed.time = time;
                }
                other => return Err(format!("unknown token validation constraint: {other}")),
            }
        }
        match (parsed.keys.is_some(), !parsed.secret.is_empty()) {
            (true, true) => Err("duplicate key constraints".into()),
            (false, false) => Err("no key constraint".into()),
            _ => Ok(parsed),
        }
    }

    /// Whether `token`'s signature verifies under the constraint's keys, with the header's
    /// `alg`.
    fn verify(&self, token: &str, kid: &str, alg: &str, input: &[u8], signature: &[u8]) -> bool {
        let namespace = if self.keys.is_some() {
            "cert"
        } else {
            "secret"
        };
        if verified::seen(namespace, &self.key_text, token) {
            return true;
        }
        let valid = self.verify_signature(kid, alg, input, signature);
        if valid {
            verified::remember(namespace, &self.key_text, token);
        }
        valid
    }

    fn verify_signature(&self, kid: &str, alg: &str, input: &[u8], signature: &[u8]) -> bool {
        let Some(alg_kind) = Alg::from_name(alg) else {
            return false;
        };
        let verifies = |key: &Key| jws::verify(alg_kind, key, input, signature);
        match &self.keys {
            Some(keys) => {
                if !kid.is_empty() {
                    if let Some(entry) = keys.iter().find(|k| k.kid == kid) {
                        return verifies(&entry.key);
                    }
                }
                keys.iter().any(|entry| match &entry.alg {
                    None => verifies(&entry.key),
                    Some(key_alg) => key_alg == alg && verifies(&entry.key),
                })
            }
            None => verifies(&Key::Hmac(self.secret.as_bytes().to_vec())),
        }
    }

    fn valid_audience(&self, aud: &Value) -> bool {
        match aud {
            Value::String(s) => s.as_ref() == self.aud,
            Value::Array(items) => items
                .iter()
                .any(|item| matches!(item, Value::String(s) if s.as_ref() == self.aud)),
            _ => false,
        }
    }
}

/// A number as the nearest `f64`, as Go's `Float64()` gives it (regorus's `as_f64` only
/// answers when exact).
fn number_f64(value: &Value) -> Option<f64> {
    let Value::Number(n) = value else {
        return None;
    };
    n.as_f64()
        .or_else(|| n.as_i128().map(|i| i as f64))
        .or_else(|| value.to_string().parse().ok())
        .filter(|f: &f64| f.is_finite())
}

/// `io.jwt.decode_verify(token, constraints)`: `[true, header, payload]` when the signature
/// verifies and every constraint holds, else `[false, {}, {}]`.
fn decode_verify(token: &Value, constraints: &Value, now_ns: f64) -> Result<Value, String> {
    let unverified = || {
        Value::from(vec![
            Value::Bool(false),
            Value::new_object(),
            Value::new_object(),
        ])
    };
    let constraints = Constraints::parse(constraints, now_ns)?;
    let mut token = string_operand(token, 1)?.to_string();
    let (header, payload) = loop {
        let compact = split(&token)?;
        let header = decode_header(&compact)?;
        let parsed = TokenHeader::parse(&header)?;
        if !parsed.valid() {
            return Ok(unverified());
        }
        if !constraints.alg.is_empty() && constraints.alg != parsed.alg {
            return Ok(unverified());
        }
        let signature = compact
            .signature_bytes()
            .map_err(|e| format!("JWT signature had invalid encoding: {e}"))?;
        if !constraints.verify(
            &token,
            &parsed.kid,
            &parsed.alg,
            &compact.signing_input(),
            &signature,
        ) {
            return Ok(unverified());
        }
        let payload = compact
            .payload_bytes()
            .map_err(|e| format!("JWT payload had invalid encoding: {e}"))?;
        if parsed.cty.eq_ignore_ascii_case("JWT") {
            // A nested token: verify the inner one with the same constraints.
            token = String::from_utf8_lossy(&payload).into_owned();
            continue;
        }
        break (header, json_object(&payload, "payload")?);
    };
    if !constraints.iss.is_empty() {
        match get(&payload, "iss") {
            Some(Value::String(iss)) if iss.as_ref() == constraints.iss => {}
            Some(Value::String(_)) | None => return Ok(unverified()),
            Some(_) => return Err("iss value must be a string".into()),
        }
    }
    match get(&payload, "aud") {
        Some(aud) if !constraints.valid_audience(aud) => return Ok(unverified()),
        None if !constraints.aud.is_empty() => return Ok(unverified()),
        _ => {}
    }
    let now_seconds = constraints.time / 1_000_000_000.0;
    match get(&payload, "exp") {
        Some(exp @ Value::Number(_)) if number_f64(exp).is_none_or(|exp| now_seconds >= exp) => {
            return Ok(unverified());
        }
        Some(Value::Number(_)) => {}
        Some(_) => return Err("exp value must be a number".into()),
        None => {}
    }
    match get(&payload, "nbf") {
        Some(nbf @ Value::Number(_)) if number_f64(nbf).is_none_or(|nbf| now_seconds < nbf) => {
            return Ok(unverified());
        }
        Some(Value::Number(_)) => {}
        Some(_) => return Err("nbf value must be a number".into()),
        None => {}
    }
    Ok(Value::from(vec![Value::Bool(true), header, payload]))
}

#[cfg(test)]
mod tests;
