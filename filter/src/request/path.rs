//! `parsed_path` and `parsed_query` exactly as OPA-Envoy's `getParsedPathAndQuery` computes
//! them (since its February 2026 change, no longer through `url.Parse`): the `:path` is cut at
//! the first `?`, the path is `url.PathUnescape`d and split on `/` after its leading slashes,
//! the query is `url.ParseQuery`d, and any error is a 400. Plus the query rewrite that
//! `query_parameters_to_set` / `_to_remove` ask for.

use std::borrow::Cow;
use std::collections::BTreeMap;

/// Why a request path cannot be parsed; OPA-Envoy answers such a request with 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("invalid URL escape {0:?}")]
    BadEscape(String),
    #[error("invalid semicolon separator in query")]
    Semicolon,
}

/// A request target split the way OPA-Envoy splits a `:path`; parts without escapes borrow
/// from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedTarget<'a> {
    /// Path segments after percent-decoding, leading slashes trimmed: `/` gives `[""]`.
    pub segments: Vec<Cow<'a, str>>,
    /// Query parameters, values always arrays, in order of appearance.
    pub query: BTreeMap<Cow<'a, str>, Vec<Cow<'a, str>>>,
}

/// Parses `:path` like OPA-Envoy's `getParsedPathAndQuery`.
pub fn parse_target(raw: &str) -> Result<ParsedTarget<'_>, PathError> {
    let (path, raw_query) = raw.split_once('?').unwrap_or((raw, ""));
    let segments = match unescape(path, false)? {
        Cow::Borrowed(path) => path
            .trim_start_matches('/')
            .split('/')
            .map(Cow::Borrowed)
            .collect(),
        Cow::Owned(path) => path
            .trim_start_matches('/')
            .split('/')
            .map(|segment| Cow::Owned(segment.to_string()))
            .collect(),
    };
    Ok(ParsedTarget {
        segments,
        query: parse_query(raw_query)?,
    })
}

/// Go's `url.ParseQuery`: pairs split on `&`, `+` is a space, and a pair with `;` or a bad
/// escape is an error (OPA-Envoy then answers 400).
fn parse_query(raw: &str) -> Result<BTreeMap<Cow<'_, str>, Vec<Cow<'_, str>>>, PathError> {
    let mut query: BTreeMap<Cow<'_, str>, Vec<Cow<'_, str>>> = BTreeMap::new();
    for pair in raw.split('&') {
        if pair.contains(';') {
            return Err(PathError::Semicolon);
        }
        if pair.is_empty() {
            continue;
        }
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        query
            .entry(unescape(key, true)?)
            .or_default()
            .push(unescape(value, true)?);
    }
    Ok(query)
}

/// Percent-decoding as Go's `unescape`: `%` must be followed by two hex digits; `+` means a
/// space only in query components. Bytes that are not UTF-8 become U+FFFD, as they would when
/// OPA serializes the input.
fn unescape(s: &str, query_component: bool) -> Result<Cow<'_, str>, PathError> {
    if !s.contains(['%', '+']) {
        return Ok(Cow::Borrowed(s));
    }
    let out = percent_decode(s.as_bytes(), query_component)?;
    Ok(Cow::Owned(String::from_utf8_lossy(&out).into_owned()))
}

/// Go's `unescape` on raw bytes, for request bodies that need not be UTF-8.
pub(crate) fn percent_decode(bytes: &[u8], query_component: bool) -> Result<Vec<u8>, PathError> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'%' => {
                let hi = bytes.get(i + 1).copied().and_then(hex_value);
                let lo = bytes.get(i + 2).copied().and_then(hex_value);
                match (hi, lo) {
                    (Some(hi), Some(lo)) => out.push(hi << 4 | lo),
                    _ => {
                        let end = (i + 3).min(bytes.len());
                        return Err(PathError::BadEscape(
                            String::from_utf8_lossy(bytes.get(i..end).unwrap_or_default())
                                .into_owned(),
                        ));
                    }
                }
                i += 3;
            }
            b'+' if query_component => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    Ok(out)
}

fn hex_value(b: u8) -> Option<u8> {
    (b as char).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

/// Applies `query_parameters_to_set` and `query_parameters_to_remove` to a `:path` the way
/// Envoy's ext_authz does: the query is read into parameters ordered by name (a parameter sent
/// several times keeps its values in order), a set parameter gets its one new value, a removed
/// one goes, and the query is written back sorted by name, each pair as `name=value`.
///
/// Two deliberate differences: parameters are matched by their decoded name (Envoy compares
/// the raw text, so `dr%6Fp=1` survives a removal of `drop`), and characters that cannot stand
/// in a query, or that would split the pair (`&`, `#`, `=` in a name), are percent-encoded in
/// set names and values (Envoy writes them raw, which breaks the request line).
pub fn rewrite_query(path: &str, set: &[(String, String)], remove: &[String]) -> String {
    let (base, raw_query) = path.split_once('?').unwrap_or((path, ""));
    let mut parameters: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for pair in raw_query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let decoded = unescape(name, true).map_or_else(|_| name.to_string(), Cow::into_owned);
        if remove.contains(&decoded) || set.iter().any(|(n, _)| *n == decoded) {
            continue;
        }
        parameters
            .entry(name.to_string())
            .or_default()
            .push(value.to_string());
    }
    for (name, value) in set {
        parameters.insert(escape_query(name, true), vec![escape_query(value, false)]);
    }
    let pairs: Vec<String> = parameters
        .iter()
        .flat_map(|(name, values)| values.iter().map(move |value| format!("{name}={value}")))
        .collect();
    if pairs.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", pairs.join("&"))
    }
}

/// Keeps what is valid in a query component (RFC 3986 `pchar`, `/`, `?`, and `%` starting an
/// escape) and percent-encodes the rest, plus `&` and `#`, and `=` in a name.
fn escape_query(s: &str, name: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    for (i, &b) in bytes.iter().enumerate() {
        let escape_start = b == b'%'
            && bytes.get(i + 1).copied().and_then(hex_value).is_some()
            && bytes.get(i + 2).copied().and_then(hex_value).is_some();
        let keep = b.is_ascii_alphanumeric()
            || b"-._~!$'()*+,;:@/?".contains(&b)
            || (b == b'=' && !name)
            || escape_start;
        if keep {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segments(raw: &str) -> Vec<String> {
        let segments = parse_target(raw).unwrap().segments;
        segments.into_iter().map(Cow::into_owned).collect()
    }

    #[test]
    fn path_segments_follow_go() {
        assert_eq!(segments("/"), vec![""]);
        assert_eq!(segments("/people"), vec!["people"]);
        assert_eq!(
            segments("/api/v1/products?x=1"),
            vec!["api", "v1", "products"]
        );
        assert_eq!(segments("/a/b/"), vec!["a", "b", ""]);
        assert_eq!(segments("/a%2Fb/c%20d"), vec!["a", "b", "c d"]);
        assert_eq!(segments("/a+b"), vec!["a+b"]);
        assert_eq!(segments("///a"), vec!["a"]);
        // No authority any more: `//admin/people` is the path `admin/people`.
        assert_eq!(segments("//admin/people"), vec!["admin", "people"]);
        assert_eq!(segments("/a#b?c"), vec!["a#b"]);
        assert_eq!(segments("/a\x7fb"), vec!["a\x7fb"]);
        assert_eq!(segments("*"), vec!["*"]);
        assert_eq!(
            segments("/pkg.Service/Method"),
            vec!["pkg.Service", "Method"]
        );
        assert_eq!(segments("/caf%C3%A9"), vec!["café"]);
        assert_eq!(segments("/%ff"), vec!["\u{fffd}"]);
    }

    #[test]
    fn bad_escapes_and_semicolons_are_errors() {
        assert_eq!(
            parse_target("/a%zz"),
            Err(PathError::BadEscape("%zz".into()))
        );
        assert_eq!(parse_target("/a%4"), Err(PathError::BadEscape("%4".into())));
        assert_eq!(parse_target("/a%"), Err(PathError::BadEscape("%".into())));
        assert_eq!(
            parse_target("/a?b=%zz"),
            Err(PathError::BadEscape("%zz".into()))
        );
        assert_eq!(parse_target("/a?x;y=1"), Err(PathError::Semicolon));
    }

    #[test]
    fn query_values_are_arrays() {
        let q = parse_target("/p?lang=en&id=1&id=2&flag&e=&a+b=c%20d&&=v#f").unwrap();
        let expected: BTreeMap<Cow<str>, Vec<Cow<str>>> = [
            ("lang", vec!["en"]),
            ("id", vec!["1", "2"]),
            ("flag", vec![""]),
            ("e", vec![""]),
            ("a b", vec!["c d"]),
            ("", vec!["v#f"]),
        ]
        .into_iter()
        .map(|(k, v)| (Cow::Borrowed(k), v.into_iter().map(Cow::Borrowed).collect()))
        .collect();
        assert_eq!(q.query, expected);
        assert!(parse_target("/p?").unwrap().query.is_empty());
        assert!(parse_target("/p").unwrap().query.is_empty());
    }

    #[test]
    fn query_rewrite_sorts_like_envoy() {
        // What Envoy 1.40's ext_authz sent upstream for the same CheckResponse.
        let set = vec![("set".to_string(), "2".to_string())];
        assert_eq!(
            rewrite_query("/p?z=1&set=0&a=2&set=9&b&c=%41+x", &set, &[]),
            "/p?a=2&b=&c=%41+x&set=2&z=1"
        );
        assert_eq!(
            rewrite_query("/p?q=a%20b&q=c", &set, &[]),
            "/p?q=a%20b&q=c&set=2"
        );
        let remove = vec!["drop".to_string()];
        assert_eq!(rewrite_query("/x?drop=1", &[], &remove), "/x");
        assert_eq!(rewrite_query("/x?dr%6Fp=1&keep", &[], &remove), "/x?keep=");
    }

    #[test]
    fn query_rewrite_escapes_only_what_cannot_stand_in_a_query() {
        let set = vec![
            ("k y".to_string(), "a b&c/\u{e9}=?".to_string()),
            ("u".to_string(), "https://h/p?x=%41".to_string()),
            ("a=b".to_string(), "100%".to_string()),
        ];
        assert_eq!(
            rewrite_query("/x", &set, &[]),
            "/x?a%3Db=100%25&k%20y=a%20b%26c/%C3%A9=?&u=https://h/p?x=%41"
        );
    }
}
