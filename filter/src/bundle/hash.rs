//! File digests exactly as OPA computes them for `.signatures.json` (`v1/bundle/hash.go`):
//! `data.json`, `data.yaml`, `.manifest` and `.signatures.json` are parsed and hashed as
//! canonical JSON (object keys sorted bytewise, no whitespace, numbers as written, strings
//! escaped as Go's `encoding/json` does without HTML escaping); every other file is hashed
//! over its raw bytes.

use md5::Md5;
use sha1::Sha1;
use sha2::{Digest, Sha224, Sha256, Sha384, Sha512, Sha512_224, Sha512_256};

/// The hash OPA writes when signing (`defaultHashingAlg`).
pub const DEFAULT_ALGORITHM: &str = "SHA-256";

/// OPA's names for the hash algorithms it accepts.
pub const ALGORITHMS: [&str; 8] = [
    "MD5",
    "SHA-1",
    "SHA-224",
    "SHA-256",
    "SHA-384",
    "SHA-512",
    "SHA-512-224",
    "SHA-512-256",
];

/// Whether OPA hashes this bundle path as a structured document (`IsStructuredDoc`).
pub fn is_structured(path: &str) -> bool {
    let base = path.rsplit('/').next().unwrap_or(path);
    matches!(
        base,
        "data.json" | "data.yaml" | "signatures.json" | ".manifest"
    )
}

/// The digest of one bundle file with OPA's algorithm `algorithm`; `None` for an algorithm
/// OPA does not know. A structured file that does not parse is an `Err`.
pub fn file_digest(algorithm: &str, path: &str, content: &[u8]) -> Option<Result<Vec<u8>, String>> {
    let canonical;
    let bytes = if is_structured(path) {
        canonical = match canonical_json(content) {
            Ok(c) => c,
            Err(e) => return Some(Err(e)),
        };
        canonical.as_slice()
    } else {
        content
    };
    let digest = match algorithm {
        "MD5" => Md5::digest(bytes).to_vec(),
        "SHA-1" => Sha1::digest(bytes).to_vec(),
        "SHA-224" => Sha224::digest(bytes).to_vec(),
        "SHA-256" => Sha256::digest(bytes).to_vec(),
        "SHA-384" => Sha384::digest(bytes).to_vec(),
        "SHA-512" => Sha512::digest(bytes).to_vec(),
        "SHA-512-224" => Sha512_224::digest(bytes).to_vec(),
        "SHA-512-256" => Sha512_256::digest(bytes).to_vec(),
        _ => return None,
    };
    Some(Ok(digest))
}

/// A JSON document whose numbers keep their text (Go decodes with `UseNumber`).
enum Json {
    Null,
    Bool(bool),
    Number(String),
    String(String),
    Array(Vec<Json>),
    /// Sorted by key, the last of duplicate keys kept (a Go map).
    Object(std::collections::BTreeMap<String, Json>),
}

/// The bytes OPA hashes for a structured file: JSON when it is valid JSON, else YAML read as
/// JSON (`util.Unmarshal`), then written canonically.
pub fn canonical_json(content: &[u8]) -> Result<Vec<u8>, String> {
    let content = content.strip_prefix(b"\xef\xbb\xbf").unwrap_or(content);
    let text = std::str::from_utf8(content).map_err(|_| "not UTF-8".to_string())?;
    let value = match Parser::new(text).document() {
        Some(value) => value,
        None => {
            let yaml: serde_json::Value =
                yaml_serde::from_str(text).map_err(|e| format!("neither JSON nor YAML: {e}"))?;
            from_serde(yaml)
        }
    };
    let mut out = Vec::with_capacity(content.len());
    write(&value, &mut out);
    Ok(out)
}

fn from_serde(value: serde_json::Value) -> Json {
    match value {
        serde_json::Value::Null => Json::Null,
        serde_json::Value::Bool(b) => Json::Bool(b),
        serde_json::Value::Number(n) => Json::Number(n.to_string()),
        serde_json::Value::String(s) => Json::String(s),
        serde_json::Value::Array(a) => Json::Array(a.into_iter().map(from_serde).collect()),
        serde_json::Value::Object(o) => {
            Json::Object(o.into_iter().map(|(k, v)| (k, from_serde(v))).collect())
        }
    }
}

fn write(value: &Json, out: &mut Vec<u8>) {
    match value {
        Json::Null => out.extend_from_slice(b"null"),
        Json::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Json::Number(n) => out.extend_from_slice(n.as_bytes()),
        Json::String(s) => write_string(s, out),
        Json::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write(item, out);
            }
            out.push(b']');
        }
        Json::Object(entries) => {
            out.push(b'{');
            for (i, (key, item)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(key, out);
                out.push(b':');
                write(item, out);
            }
            out.push(b'}');
        }
    }
}

/// Go's `encoding/json` string encoding with `SetEscapeHTML(false)` (Go ≥ 1.22).
fn write_string(s: &str, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            '\u{8}' => out.extend_from_slice(b"\\b"),
            '\u{c}' => out.extend_from_slice(b"\\f"),
            '\u{2028}' => out.extend_from_slice(b"\\u2028"),
            '\u{2029}' => out.extend_from_slice(b"\\u2029"),
            c if (c as u32) < 0x20 => {
                let b = c as u32 as usize;
                out.extend_from_slice(b"\\u00");
                out.push(HEX.get(b >> 4).copied().unwrap_or(b'0'));
                out.push(HEX.get(b & 0xf).copied().unwrap_or(b'0'));
            }
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out.push(b'"');
}

/// A strict JSON reader (RFC 8259) that keeps number text; `None` for anything invalid.
struct Parser<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str) -> Self {
        Self { text, pos: 0 }
    }

    fn document(mut self) -> Option<Json> {
        let value = self.value(0)?;
        self.skip_ws();
        (self.pos == self.text.len()).then_some(value)
    }

    fn rest(&self) -> &'a [u8] {
        self.text.as_bytes().get(self.pos..).unwrap_or_default()
    }

    fn peek(&self) -> Option<u8> {
        self.rest().first().copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn eat(&mut self, literal: &str) -> bool {
        if self.rest().starts_with(literal.as_bytes()) {
            self.pos += literal.len();
            true
        } else {
            false
        }
    }

    fn value(&mut self, depth: usize) -> Option<Json> {
        // Deeper than any real bundle; keeps the recursion bounded.
        if depth > 512 {
            return None;
        }
        self.skip_ws();
        match self.peek()? {
            b'n' => self.eat("null").then_some(Json::Null),
            b't' => self.eat("true").then_some(Json::Bool(true)),
            b'f' => self.eat("false").then_some(Json::Bool(false)),
            b'"' => self.string().map(Json::String),
            b'[' => {
                self.pos += 1;
                let mut items = Vec::new();
                self.skip_ws();
                if self.eat("]") {
                    return Some(Json::Array(items));
                }
                loop {
                    items.push(self.value(depth + 1)?);
                    self.skip_ws();
                    if self.eat("]") {
                        return Some(Json::Array(items));
                    }
                    if !self.eat(",") {
                        return None;
                    }
                }
            }
            b'{' => {
                self.pos += 1;
                let mut entries = std::collections::BTreeMap::new();
                self.skip_ws();
                if self.eat("}") {
                    return Some(Json::Object(entries));
                }
                loop {
                    self.skip_ws();
                    let key = self.string()?;
                    self.skip_ws();
                    if !self.eat(":") {
                        return None;
                    }
                    entries.insert(key, self.value(depth + 1)?);
                    self.skip_ws();
                    if self.eat("}") {
                        return Some(Json::Object(entries));
                    }
                    if !self.eat(",") {
                        return None;
                    }
                }
            }
            _ => self.number().map(Json::Number),
        }
    }

    fn number(&mut self) -> Option<String> {
        let start = self.pos;
        self.eat("-");
        let digits = |p: &mut Self| {
            let from = p.pos;
            while matches!(p.peek(), Some(b'0'..=b'9')) {
                p.pos += 1;
            }
            p.pos > from
        };
        if self.eat("0") {
            if matches!(self.peek(), Some(b'0'..=b'9')) {
                return None;
            }
        } else if !digits(self) {
            return None;
        }
        if self.eat(".") && !digits(self) {
            return None;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if !self.eat("+") {
                self.eat("-");
            }
            if !digits(self) {
                return None;
            }
        }
        self.text.get(start..self.pos).map(str::to_string)
    }

    fn string(&mut self) -> Option<String> {
        if !self.eat("\"") {
            return None;
        }
        let mut out = String::new();
        loop {
            let rest = self.text.get(self.pos..)?;
            let mut chars = rest.chars();
            let c = chars.next()?;
            self.pos += c.len_utf8();
            match c {
                '"' => return Some(out),
                '\\' => {
                    let escape = self.peek()?;
                    self.pos += 1;
                    match escape {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let first = self.hex4()?;
                            let c = if (0xd800..0xdc00).contains(&first) {
                                // A surrogate pair; a lone half becomes U+FFFD, as in Go.
                                let saved = self.pos;
                                match (self.eat("\\u"), self.hex4()) {
                                    (true, Some(second)) if (0xdc00..0xe000).contains(&second) => {
                                        char::from_u32(
                                            0x10000 + ((first - 0xd800) << 10) + (second - 0xdc00),
                                        )
                                    }
                                    _ => {
                                        self.pos = saved;
                                        None
                                    }
                                }
                            } else {
                                char::from_u32(first)
                            };
                            out.push(c.unwrap_or('\u{fffd}'));
                        }
                        _ => return None,
                    }
                }
                c if (c as u32) < 0x20 => return None,
                c => out.push(c),
            }
        }
    }

    fn hex4(&mut self) -> Option<u32> {
        let digits = self.text.get(self.pos..self.pos + 4)?;
        let value = u32::from_str_radix(digits, 16).ok()?;
        if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        self.pos += 4;
        Some(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canonical(text: &str) -> String {
        String::from_utf8(canonical_json(text.as_bytes()).unwrap()).unwrap()
    }

    #[test]
    fn keys_sorted_whitespace_dropped_numbers_as_written() {
        assert_eq!(
            canonical(r#"{ "b": [1, 2.50, -0, 1e3], "a": {"z": null, "y": true} }"#),
            r#"{"a":{"y":true,"z":null},"b":[1,2.50,-0,1e3]}"#
        );
        assert_eq!(canonical(r#"{"a":1,"a":2}"#), r#"{"a":2}"#);
    }

    #[test]
    fn strings_escaped_as_go_does() {
        assert_eq!(
            canonical(r#"["<&>", "\u0001\b\f\n\"\\/", "\u2028é\ud83d\ude00", "\ud800"]"#),
            "[\"<&>\",\"\\u0001\\b\\f\\n\\\"\\\\/\",\"\\u2028é😀\",\"\u{fffd}\"]"
        );
    }

    #[test]
    fn yaml_is_read_when_not_json() {
        assert_eq!(canonical("b: 1\na: [x, y]\n"), r#"{"a":["x","y"],"b":1}"#);
        assert!(canonical_json(b"{").is_err());
    }

    #[test]
    fn raw_files_hash_their_bytes_structured_files_their_canonical_form() {
        // Expected digests from Python's hashlib over the bytes OPA hashes.
        let raw = file_digest("SHA-256", "a/x.rego", b"package x\n")
            .unwrap()
            .unwrap();
        assert_eq!(
            hex(&raw),
            "3ea66a23367f14bd3e79ebd5c296779a4c3c40ef3a2035e23863b56ab5894bc5"
        );
        let data = file_digest("SHA-256", "a/data.json", b"{ \"a\" : [1, 2.50] }\n")
            .unwrap()
            .unwrap();
        assert_eq!(
            hex(&data),
            "c540486cb5d27239c0aefeb6372614732e30fd0b80e40d3d889e5864990596f8"
        );
        assert!(file_digest("SHA-3", "x", b"").is_none());
        for alg in ALGORITHMS {
            assert!(
                file_digest(alg, "data.json", b"{}").unwrap().is_ok(),
                "{alg}"
            );
        }
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}
