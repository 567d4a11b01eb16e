// Copyright (c) Microsoft Corporation.
// Licensed under the MIT License.
#![allow(clippy::unused_trait_names, clippy::pattern_type_mismatch)]

use crate::ast::{Expr, Ref};
use crate::builtins;
#[cfg(feature = "urlquery")]
use crate::builtins::utils::{enforce_limit, reserve_output};
#[allow(unused)]
use crate::builtins::utils::{
    ensure_args_count, ensure_object, ensure_string, ensure_string_collection,
};
use crate::lexer::Span;
use crate::value::Value;
use crate::*;

#[allow(unused)]
use anyhow::{anyhow, bail, Context, Result};

pub fn register(m: &mut builtins::BuiltinsMap<&'static str, builtins::BuiltinFcn>) {
    #[cfg(feature = "base64")]
    {
        m.insert("base64.decode", (base64_decode, 1));
        m.insert("base64.encode", (base64_encode, 1));
        m.insert("base64.is_valid", (base64_is_valid, 1));
    }
    #[cfg(feature = "base64url")]
    {
        m.insert("base64url.decode", (base64url_decode, 1));
        m.insert("base64url.encode", (base64url_encode, 1));
        m.insert("base64url.encode_no_pad", (base64url_encode_no_pad, 1));
    }
    #[cfg(feature = "hex")]
    {
        m.insert("hex.decode", (hex_decode, 1));
        m.insert("hex.encode", (hex_encode, 1));
    }
    #[cfg(feature = "urlquery")]
    {
        m.insert("urlquery.decode", (urlquery_decode, 1));
        m.insert("urlquery.decode_object", (urlquery_decode_object, 1));
        m.insert("urlquery.encode", (urlquery_encode, 1));
        m.insert("urlquery.encode_object", (urlquery_encode_object, 1));
    }
    m.insert("json.is_valid", (json_is_valid, 1));
    m.insert("json.marshal", (json_marshal, 1));
    m.insert("json.marshal_with_options", (json_marshal_with_options, 2));
    m.insert("json.unmarshal", (json_unmarshal, 1));

    #[cfg(feature = "yaml")]
    {
        m.insert("yaml.is_valid", (yaml_is_valid, 1));
        m.insert("yaml.marshal", (yaml_marshal, 1));
        m.insert("yaml.unmarshal", (yaml_unmarshal, 1));
    }
}

/// Decodes as Go's `encoding/base64` in OPA (`StdEncoding`, `URLEncoding`): padded, `\r` and
/// `\n` skipped, non-zero bits after the last byte ignored (Go checks them only in `Strict`
/// mode: `"YR=="` is `"a"`), and nothing but padding after the first `=` (`data_encoding`
/// alone decodes concatenated padded inputs, `"YQ==YQ=="`, which Go refuses).
#[cfg(any(feature = "base64", feature = "base64url"))]
fn go_base64_decode(symbols: String, encoded: &str) -> Result<Vec<u8>> {
    if let Some((_, after_padding)) = encoded.split_once('=') {
        if after_padding.contains(|c| !matches!(c, '=' | '\r' | '\n')) {
            bail!("data after the padding");
        }
    }
    let mut spec = data_encoding::Specification::new();
    spec.symbols = symbols;
    spec.padding = Some('=');
    spec.ignore.push_str("\r\n");
    spec.check_trailing_bits = false;
    let encoding = spec.encoding().map_err(|e| anyhow!("{e}"))?;
    encoding
        .decode(encoded.as_bytes())
        .map_err(|e| anyhow!("{e}"))
}

/// Decoded bytes as a Rego string; bytes that are not UTF-8 stop the evaluation
/// ([`builtins::EngineGapError`]).
#[cfg(any(
    feature = "base64",
    feature = "base64url",
    feature = "hex",
    feature = "urlquery"
))]
fn decoded_string(name: &'static str, bytes: Vec<u8>) -> Result<Value> {
    match String::from_utf8(bytes) {
        Ok(text) => Ok(Value::String(text.into())),
        Err(_) => Err(anyhow::Error::new(builtins::EngineGapError::not_utf8(name))),
    }
}

#[cfg(feature = "base64")]
fn base64_decode(
    span: &Span,
    params: &[Ref<Expr>],
    args: &[Value],
    _strict: bool,
) -> Result<Value> {
    let name = "base64.decode";
    ensure_args_count(span, name, params, args, 1)?;

    let encoded_str = ensure_string(name, &params[0], &args[0])?;
    let decoded_bytes =
        go_base64_decode(data_encoding::BASE64.specification().symbols, &encoded_str).map_err(
            |e| {
                params[0]
                    .span()
                    .error(&format!("decode failed\nCaused by\n{e}"))
            },
        )?;
    decoded_string(name, decoded_bytes)
}

#[cfg(feature = "base64")]
fn base64_encode(
    span: &Span,
    params: &[Ref<Expr>],
    args: &[Value],
    _strict: bool,
) -> Result<Value> {
    let name = "base64.encode";
    ensure_args_count(span, name, params, args, 1)?;

    let string = ensure_string(name, &params[0], &args[0])?;
    Ok(Value::String(
        data_encoding::BASE64.encode(string.as_bytes()).into(),
    ))
}

#[cfg(feature = "base64")]
fn base64_is_valid(
    span: &Span,
    params: &[Ref<Expr>],
    args: &[Value],
    _strict: bool,
) -> Result<Value> {
    let name = "base64.is_valid";
    ensure_args_count(span, name, params, args, 1)?;

    // As OPA: anything but a string is not valid base64 (false, not an error).
    let Value::String(encoded_str) = &args[0] else {
        return Ok(Value::Bool(false));
    };
    Ok(Value::Bool(
        go_base64_decode(data_encoding::BASE64.specification().symbols, encoded_str).is_ok(),
    ))
}

#[cfg(feature = "base64url")]
fn base64url_decode(
    span: &Span,
    params: &[Ref<Expr>],
    args: &[Value],
    _strict: bool,
) -> Result<Value> {
    let name = "base64url.decode";
    ensure_args_count(span, name, params, args, 1)?;

    let encoded_str = ensure_string(name, &params[0], &args[0])?;
    // OPA pads an unpadded input (RFC 7515, appendix C) and decodes it as Go's padded
    // URL encoding.
    let mut padded = encoded_str.as_ref().to_owned();
    if !padded.ends_with('=') {
        match padded.len() % 4 {
            0 => (),
            2 => padded.push_str("=="),
            3 => padded.push('='),
            _ => bail!(params[0].span().error("not a valid url")),
        }
    }
    let decoded_bytes = go_base64_decode(data_encoding::BASE64URL.specification().symbols, &padded)
        .map_err(|_| anyhow!(params[0].span().error("not a valid url")))?;
    decoded_string(name, decoded_bytes)
}

#[cfg(feature = "base64url")]
fn base64url_encode(
    span: &Span,
    params: &[Ref<Expr>],
    args: &[Value],
    _strict: bool,
) -> Result<Value> {
    let name = "base64url.encode";
    ensure_args_count(span, name, params, args, 1)?;

    let string = ensure_string(name, &params[0], &args[0])?;
    Ok(Value::String(
        data_encoding::BASE64URL.encode(string.as_bytes()).into(),
    ))
}

#[cfg(feature = "base64url")]
fn base64url_encode_no_pad(
    span: &Span,
    params: &[Ref<Expr>],
    args: &[Value],
    _strict: bool,
) -> Result<Value> {
    let name = "base64url.encode_no_pad";
    ensure_args_count(span, name, params, args, 1)?;

    let string = ensure_string(name, &params[0], &args[0])?;
    Ok(Value::String(
        data_encoding::BASE64URL_NOPAD
            .encode(string.as_bytes())
            .into(),
    ))
}

#[cfg(feature = "hex")]
fn hex_decode(span: &Span, params: &[Ref<Expr>], args: &[Value], _strict: bool) -> Result<Value> {
    let name = "hex.decode";
    ensure_args_count(span, name, params, args, 1)?;

    let encoded_str = ensure_string(name, &params[0], &args[0])?;
    let decoded_bytes = data_encoding::HEXLOWER_PERMISSIVE
        .decode(encoded_str.as_bytes())
        .map_err(|e| {
            params[0]
                .span()
                .error(&format!("decode failure\nCaused by\n{e}"))
        })?;
    decoded_string(name, decoded_bytes)
}

#[cfg(feature = "hex")]
fn hex_encode(span: &Span, params: &[Ref<Expr>], args: &[Value], _strict: bool) -> Result<Value> {
    let name = "hex.encode";
    ensure_args_count(span, name, params, args, 1)?;

    let string = ensure_string(name, &params[0], &args[0])?;
    Ok(Value::String(
        data_encoding::HEXLOWER_PERMISSIVE
            .encode(string.as_bytes())
            .into(),
    ))
}

#[cfg(feature = "urlquery")]
fn urlquery_decode(
    span: &Span,
    params: &[Ref<Expr>],
    args: &[Value],
    _strict: bool,
) -> Result<Value> {
    let name = "urlquery.decode";
    ensure_args_count(span, name, params, args, 1)?;

    let string = ensure_string(name, &params[0], &args[0])?;
    match query_unescape(&string) {
        Some(bytes) => decoded_string(name, bytes),
        None => bail!(params[0].span().error("invalid URL escape")),
    }
}

/// Go's `url.QueryUnescape`, as OPA: `+` is a space, `%XX` a byte, every other byte kept
/// (`&`, `=`, `#` too); `None` for an incomplete or non-hexadecimal escape.
#[cfg(feature = "urlquery")]
fn query_unescape(text: &str) -> Option<Vec<u8>> {
    let mut bytes = Vec::with_capacity(text.len());
    let mut rest = text.bytes();
    while let Some(byte) = rest.next() {
        match byte {
            b'+' => bytes.push(b' '),
            b'%' => {
                let high = char::from(rest.next()?).to_digit(16)?;
                let low = char::from(rest.next()?).to_digit(16)?;
                bytes.push(u8::try_from(high * 16 + low).ok()?);
            }
            byte => bytes.push(byte),
        }
    }
    Some(bytes)
}

#[cfg(feature = "urlquery")]
fn urlquery_decode_object(
    span: &Span,
    params: &[Ref<Expr>],
    args: &[Value],
    _strict: bool,
) -> Result<Value> {
    let name = "urlquery.decode_object";
    ensure_args_count(span, name, params, args, 1)?;

    let string = ensure_string(name, &params[0], &args[0])?;
    // Go's `url.ParseQuery`, as OPA: pairs separated by `&` (a `;` is an error), empty ones
    // skipped, key and value split at the first `=` and each unescaped.
    let mut map = alloc::collections::BTreeMap::new();
    for pair in string.split('&').filter(|pair| !pair.is_empty()) {
        if pair.contains(';') {
            bail!(params[0]
                .span()
                .error("invalid semicolon separator in query"));
        }
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let unescape = |text: &str| match query_unescape(text) {
            Some(bytes) => decoded_string(name, bytes),
            None => bail!(params[0].span().error("invalid URL escape")),
        };
        let key = unescape(k)?;
        let value = unescape(v)?;
        if let Ok(a) = map.entry(key).or_insert(Value::new_array()).as_array_mut() {
            a.push(value);
            // Guard decoded parameter accumulation while grouping duplicate keys.
            enforce_limit()?;
        }
    }
    Ok(Value::from_map(map))
}

#[cfg(feature = "urlquery")]
fn urlquery_encode(
    span: &Span,
    params: &[Ref<Expr>],
    args: &[Value],
    _strict: bool,
) -> Result<Value> {
    let name = "urlquery.encode";
    ensure_args_count(span, name, params, args, 1)?;

    let s = ensure_string(name, &params[0], &args[0])?;
    Ok(Value::from(query_escape(&s)))
}

/// Go's `url.QueryEscape`, which OPA's `urlquery.encode` calls: letters, digits and `-_.~`
/// stay, a space is `+`, every other byte `%XX`. (The form encoding of the `url` crate keeps
/// `*` and escapes `~`.)
#[cfg(feature = "urlquery")]
fn query_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(byte))
            }
            b' ' => out.push('+'),
            _ => {
                out.push('%');
                out.push(char::from(b"0123456789ABCDEF"[usize::from(byte >> 4)]));
                out.push(char::from(b"0123456789ABCDEF"[usize::from(byte & 0x0f)]));
            }
        }
    }
    out
}

#[cfg(feature = "urlquery")]
fn urlquery_encode_object(
    span: &Span,
    params: &[Ref<Expr>],
    args: &[Value],
    _strict: bool,
) -> Result<Value> {
    let name = "urlquery.encode_object";
    ensure_args_count(span, name, params, args, 1)?;

    let obj = ensure_object(name, &params[0], args[0].clone())?;
    // Go's `url.Values.Encode`: `key=value` pairs by key, each side `url.QueryEscape`d.
    let mut query = String::new();
    {
        let mut append_pair = |key: &str, value: &str| {
            if !query.is_empty() {
                query.push('&');
            }
            query.push_str(&query_escape(key));
            query.push('=');
            query.push_str(&query_escape(value));
        };
        for (key, value) in obj.iter_sorted() {
            let key = ensure_string(name, &params[0], key)?;
            match value {
                Value::String(v) => {
                    append_pair(key.as_ref(), v.as_ref());
                    // Guard encoded parameter growth when serializing string fields.
                    enforce_limit()?;
                }
                _ => {
                    let values = ensure_string_collection(name, &params[0], value)?;
                    for v in values {
                        append_pair(key.as_ref(), v);
                        // Guard encoded parameter growth when serializing multi-valued fields.
                        enforce_limit()?;
                    }
                }
            }
        }
    }

    Ok(Value::from(query))
}

#[cfg(feature = "yaml")]
fn yaml_is_valid(
    span: &Span,
    params: &[Ref<Expr>],
    args: &[Value],
    _strict: bool,
) -> Result<Value> {
    let name = "yaml.is_valid";
    ensure_args_count(span, name, params, args, 1)?;

    let yaml_str = ensure_string(name, &params[0], &args[0])?;
    Ok(Value::Bool(Value::from_yaml_str(&yaml_str).is_ok()))
}

#[cfg(feature = "yaml")]
fn yaml_marshal(span: &Span, params: &[Ref<Expr>], args: &[Value], _strict: bool) -> Result<Value> {
    let name = "yaml.marshal";
    ensure_args_count(span, name, params, args, 1)?;

    let serialized = yaml_serde::to_string(&args[0])
        .map_err(|err| span.error(&format!("could not serialize to yaml: {err}")))?;

    Ok(Value::String(serialized.into()))
}

#[cfg(feature = "yaml")]
fn yaml_unmarshal(
    span: &Span,
    params: &[Ref<Expr>],
    args: &[Value],
    _strict: bool,
) -> Result<Value> {
    let name = "yaml.unmarshal";
    ensure_args_count(span, name, params, args, 1)?;
    let yaml_str = ensure_string(name, &params[0], &args[0])?;
    Value::from_yaml_str(&yaml_str).with_context(|| span.error("could not deserialize yaml."))
}

fn json_is_valid(
    span: &Span,
    params: &[Ref<Expr>],
    args: &[Value],
    _strict: bool,
) -> Result<Value> {
    let name = "json.is_valid";
    ensure_args_count(span, name, params, args, 1)?;

    // OPA: anything but a string is not valid JSON text (false, not a type error).
    let Value::String(json_str) = &args[0] else {
        return Ok(Value::Bool(false));
    };
    Ok(Value::Bool(Value::from_json_str(json_str).is_ok()))
}

/// JSON text as Go's `json.Marshal` writes it: `<`, `>`, `&`, U+2028 and U+2029 escaped as
/// `\u003c`, `\u003e`, `\u0026`, `\u2028`, `\u2029`. They can only stand inside strings.
fn go_json_escapes(text: String) -> String {
    // A byte scan (0xE2 leads U+2028 and U+2029 in UTF-8): marshalled documents are long and
    // rarely hold any of these.
    if !text
        .bytes()
        .any(|b| matches!(b, b'<' | b'>' | b'&' | 0xE2))
    {
        return text;
    }
    let mut out = String::with_capacity(text.len() + 16);
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
    out
}

fn json_marshal(span: &Span, params: &[Ref<Expr>], args: &[Value], _strict: bool) -> Result<Value> {
    let name = "json.marshal";
    ensure_args_count(span, name, params, args, 1)?;
    Ok(Value::from(go_json_escapes(serde_json::to_string(&args[0]).map_err(
        |e| span.error(&format!("could not serialize to json\nCaused by\n{e}")),
    )?)))
}

fn json_marshal_with_options(
    span: &Span,
    params: &[Ref<Expr>],
    args: &[Value],
    _strict: bool,
) -> Result<Value> {
    let name = "json.marshal_with_options";
    ensure_args_count(span, name, params, args, 2)?;

    let options = ensure_object(name, &params[1], args[1].clone())?;
    let (mut pretty, mut indent, mut prefix) = (true, Some("\t".to_owned()), None);
    for (option, option_value) in options.iter() {
        match option {
            Value::String(s) if s.as_ref() == "pretty" && option_value.as_bool().is_ok() => {
                pretty = option_value == &Value::Bool(true);
            }
            Value::String(s) if s.as_ref() == "pretty" => bail!(params[1]
                .span()
                .error("marshaling option `pretty` must be true or false")),
            Value::String(s) if s.as_ref() == "prefix" && option_value.as_string().is_ok() => {
                prefix = Some(option_value.as_string()?.as_ref().to_string());
            }
            Value::String(s) if s.as_ref() == "prefix" => bail!(params[1]
                .span()
                .error("marshaling option `pretty` must be string")),
            Value::String(s) if s.as_ref() == "indent" && option_value.as_string().is_ok() => {
                indent = Some(option_value.as_string()?.as_ref().to_string());
            }
            Value::String(s) if s.as_ref() == "indent" => bail!(params[1]
                .span()
                .error("marshaling option `pretty` must be string")),
            _ => bail!(params[1]
                .span()
                .error("marshaling option must be one of `indent`, `prefix` or `pretty`")),
        }
    }

    if !pretty || options.is_empty() {
        return Ok(Value::from(go_json_escapes(serde_json::to_string(&args[0]).map_err(
            |e| span.error(&format!("could not serialize to json\nCaused by\n{e}")),
        )?)));
    }

    // Escaped before indenting: Go writes `indent` and `prefix` as given.
    let pretty = go_json_escapes(
        serde_json::to_string_pretty(&args[0])
            .map_err(|e| span.error(&format!("could not serialize to json\nCaused by\n{e}")))?,
    );
    // Indent and prefix are repeated on every line: check the output fits before building it.
    let indent_len = indent.as_ref().map_or(0, String::len);
    let prefix_len = prefix.as_ref().map_or(0, String::len);
    let output_len = pretty.split('\n').fold(0usize, |total, line| {
        let trimmed = line.trim_start();
        let level = line.len().saturating_sub(trimmed.len()) / 2;
        total
            .saturating_add(trimmed.len())
            .saturating_add(level.saturating_mul(indent_len))
            .saturating_add(prefix_len)
            .saturating_add(1)
    });
    reserve_output(output_len)?;
    let lines: Vec<String> = pretty
        .split('\n')
        .map(|line| {
            let mut line = line.to_string();

            if let Some(indent) = &indent {
                let start_trimmed = line.trim_start();
                let leading_spaces = line.len() - start_trimmed.len();
                let indentation_level = leading_spaces / 2;
                line = indent.repeat(indentation_level) + start_trimmed;
            }

            if let Some(prefix) = &prefix {
                line = prefix.to_owned() + &line;
            }
            line
        })
        .collect();

    Ok(Value::from(lines.join("\n")))
}

fn json_unmarshal(
    span: &Span,
    params: &[Ref<Expr>],
    args: &[Value],
    _strict: bool,
) -> Result<Value> {
    let name = "json.unmarshal";
    ensure_args_count(span, name, params, args, 1)?;
    let json_str = ensure_string(name, &params[0], &args[0])?;
    Value::from_json_str(&json_str).with_context(|| span.error("could not deserialize json."))
}
