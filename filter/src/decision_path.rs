//! OPA-Envoy's `path` option: the rule (or document of rules) whose value is the decision. A
//! leaf: the configuration, the engine and the bundle writer all name decisions with it.

/// A decision path: its segments below `data`, written in the slash form (`envoy/authz/allow`)
/// and as a Rego reference (`data.envoy.authz.allow`,
/// `data.policy["com.styra.envoy.ingress"].rules.rules`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionPath {
    segments: Vec<String>,
    path: String,
    rule: String,
}

impl DecisionPath {
    /// Parses a decision path in either of OPA's two forms:
    /// - a reference: `data`, then `.name` or `["text"]` segments (JSON string syntax), as
    ///   `opa build -e` and Styra DAS write them;
    /// - OPA-Envoy's slash form: `/` separates segments, surrounding and repeated slashes are
    ///   ignored, each segment is any text (percent escapes decoded), so
    ///   `policy/com.styra.envoy.ingress/rules/rules` has a dotted segment.
    pub fn parse(path: &str) -> Result<Self, String> {
        let segments = if path == "data" || path.starts_with("data.") || path.starts_with("data[") {
            parse_reference(path)?
        } else {
            parse_slashes(path)?
        };
        if segments.is_empty() {
            return Err("must name a rule, e.g. \"envoy/authz/allow\"".to_string());
        }
        Ok(Self::from_segments(segments))
    }

    /// A path already known to be valid, in the slash form with identifier segments.
    pub(crate) fn from_valid(path: &str) -> Self {
        Self::from_segments(path.split('/').map(str::to_string).collect())
    }

    fn from_segments(segments: Vec<String>) -> Self {
        let path = segments
            .iter()
            .map(|s| escape_segment(s))
            .collect::<Vec<_>>()
            .join("/");
        let mut rule = String::from("data");
        for segment in &segments {
            if is_rego_identifier(segment) {
                rule.push('.');
                rule.push_str(segment);
            } else {
                rule.push('[');
                rule.push_str(&serde_json::Value::from(segment.as_str()).to_string());
                rule.push(']');
            }
        }
        Self {
            segments,
            path,
            rule,
        }
    }

    /// The path in the slash form, e.g. `envoy/authz/allow` (`%2F` and `%25` for a `/` or a
    /// `%` inside a segment).
    pub fn as_path(&self) -> &str {
        &self.path
    }

    /// The reference, e.g. `data.envoy.authz.allow`.
    pub fn rule(&self) -> &str {
        &self.rule
    }

    /// The segments below `data`.
    pub fn segments(&self) -> &[String] {
        &self.segments
    }
}

fn parse_slashes(path: &str) -> Result<Vec<String>, String> {
    path.split('/')
        .filter(|segment| !segment.is_empty())
        .map(|segment| {
            percent_decode(segment).map_err(|at| {
                format!("segment {segment:?} of {path:?} has a bad percent escape at byte {at}")
            })
        })
        .collect()
}

/// `%XX` escapes decoded, as OPA-Envoy's `url.PathUnescape`; `Err` holds the escape's offset.
fn percent_decode(segment: &str) -> Result<String, usize> {
    let mut out = Vec::with_capacity(segment.len());
    let mut bytes = segment.bytes().enumerate();
    while let Some((i, byte)) = bytes.next() {
        if byte == b'%' {
            let hex = segment
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or(i)?;
            out.push(hex);
            bytes.nth(1);
        } else {
            out.push(byte);
        }
    }
    String::from_utf8(out).map_err(|e| e.utf8_error().valid_up_to())
}

fn escape_segment(segment: &str) -> String {
    segment.replace('%', "%25").replace('/', "%2F")
}

/// Reads `data.a["b.c"].d` into `["a", "b.c", "d"]`; an error names the column (from 1).
fn parse_reference(path: &str) -> Result<Vec<String>, String> {
    let at = |offset: usize, what: &str| format!("{path:?}, column {}: {what}", offset + 1);
    let mut segments = Vec::new();
    let mut rest = &path["data".len()..];
    while !rest.is_empty() {
        let offset = path.len() - rest.len();
        if let Some(after) = rest.strip_prefix('.') {
            let end = after.find(['.', '[']).unwrap_or(after.len());
            let name = &after[..end];
            if !is_rego_identifier(name) {
                return Err(at(
                    offset + 1,
                    &format!(
                        "{name:?} is not a Rego identifier (letters, digits, _); write a \
                         segment of any other text as [\"{name}\"]"
                    ),
                ));
            }
            segments.push(name.to_string());
            rest = &after[end..];
        } else if let Some(after) = rest.strip_prefix('[') {
            if !after.starts_with('"') {
                return Err(at(
                    offset,
                    "a bracketed segment must be a double-quoted string, e.g. [\"a.b\"]",
                ));
            }
            let close =
                closing_quote(after).ok_or_else(|| at(offset, "the string is not closed"))?;
            let text: String = serde_json::from_str(&after[..=close])
                .map_err(|e| at(offset, &format!("not a valid string: {e}")))?;
            let after = &after[close + 1..];
            let Some(after) = after.strip_prefix(']') else {
                return Err(at(path.len() - after.len(), "expected ] after the string"));
            };
            segments.push(text);
            rest = after;
        } else {
            return Err(at(offset, "expected . or [ between segments"));
        }
    }
    Ok(segments)
}

/// The offset of the quote that closes the JSON string starting at `s[0]`.
fn closing_quote(s: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in s.char_indices().skip(1) {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => return Some(i),
            _ => {}
        }
    }
    None
}

/// A name that may follow a `.` in a reference: an identifier, not a keyword.
fn is_rego_identifier(segment: &str) -> bool {
    const KEYWORDS: &[&str] = &[
        "as", "contains", "default", "else", "every", "false", "if", "import", "in", "not", "null",
        "package", "some", "true", "with",
    ];
    let mut chars = segment.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !KEYWORDS.contains(&segment)
}

#[cfg(test)]
mod tests {
    use super::DecisionPath;

    fn parsed(path: &str) -> (String, String) {
        let p = DecisionPath::parse(path).unwrap();
        (p.as_path().to_string(), p.rule().to_string())
    }

    #[test]
    fn slash_and_reference_forms_name_the_same_rule() {
        for path in [
            "envoy/authz/allow",
            "/envoy/authz/allow/",
            "envoy//authz/allow",
            "data.envoy.authz.allow",
            "data[\"envoy\"].authz[\"allow\"]",
        ] {
            assert_eq!(
                parsed(path),
                (
                    "envoy/authz/allow".to_string(),
                    "data.envoy.authz.allow".to_string()
                ),
                "{path}"
            );
        }
    }

    #[test]
    fn quoted_segments_keep_their_text() {
        let expected = (
            "policy/com.styra.envoy.ingress/rules/rules".to_string(),
            "data.policy[\"com.styra.envoy.ingress\"].rules.rules".to_string(),
        );
        assert_eq!(
            parsed("data.policy[\"com.styra.envoy.ingress\"].rules.rules"),
            expected
        );
        assert_eq!(
            parsed("policy/com.styra.envoy.ingress/rules/rules"),
            expected
        );
        assert_eq!(
            parsed("data[\"a/b\"][\"q\\\"\"][\"if\"]"),
            (
                "a%2Fb/q\"/if".to_string(),
                "data[\"a/b\"][\"q\\\"\"][\"if\"]".to_string()
            )
        );
        assert_eq!(
            parsed("a%2Fb/c"),
            ("a%2Fb/c".to_string(), "data[\"a/b\"].c".to_string())
        );
        let segments = DecisionPath::parse("data.policy[\"x.y\"].r").unwrap();
        assert_eq!(segments.segments(), ["policy", "x.y", "r"]);
    }

    #[test]
    fn malformed_paths_are_refused_with_the_place() {
        for (path, message) in [
            ("", "must name a rule, e.g. \"envoy/authz/allow\""),
            ("///", "must name a rule, e.g. \"envoy/authz/allow\""),
            ("data", "must name a rule, e.g. \"envoy/authz/allow\""),
            (
                "data.policy[com].r",
                "\"data.policy[com].r\", column 12: a bracketed segment must be a double-quoted string, e.g. [\"a.b\"]",
            ),
            (
                "data.policy[\"com.r",
                "\"data.policy[\\\"com.r\", column 12: the string is not closed",
            ),
            (
                "data.policy[\"com\"",
                "\"data.policy[\\\"com\\\"\", column 18: expected ] after the string",
            ),
            (
                "data.policy.",
                "\"data.policy.\", column 13: \"\" is not a Rego identifier (letters, digits, _); write a segment of any other text as [\"\"]",
            ),
            (
                "data.a-b.c",
                "\"data.a-b.c\", column 6: \"a-b\" is not a Rego identifier (letters, digits, _); write a segment of any other text as [\"a-b\"]",
            ),
            (
                "data.policy[\"a\"]x",
                "\"data.policy[\\\"a\\\"]x\", column 17: expected . or [ between segments",
            ),
            (
                "envoy/a%zz/allow",
                "segment \"a%zz\" of \"envoy/a%zz/allow\" has a bad percent escape at byte 1",
            ),
        ] {
            assert_eq!(DecisionPath::parse(path), Err(message.to_string()), "{path}");
        }
    }
}
