//! What the fuzz targets share: the allocator the filter runs with (so evaluation budgets hold
//! as in Envoy), the invariants every outcome must keep, and the request text format of the
//! `input` target's seeds.
#![allow(clippy::panic)] // a broken invariant is a finding: libFuzzer records the input

use zerohop_filter::request::input::HttpRequest;

/// A header value the filter may hand to Envoy: no CR, LF or NUL (header injection).
pub fn assert_clean_header(origin: &str, name: &str, value: &str) {
    for (what, text) in [("name", name), ("value", value)] {
        if text.contains(['\r', '\n', '\0']) {
            panic!("{origin}: header {what} with CR/LF/NUL emitted: {name:?}: {value:?}");
        }
    }
}

/// Whether a decision value lets a request through, by OPA-Envoy's rules read independently
/// of the filter: exactly `true`, or an object whose `allowed` is exactly `true`.
pub fn decision_allows(decision: &serde_json::Value) -> bool {
    match decision {
        serde_json::Value::Bool(b) => *b,
        serde_json::Value::Object(object) => {
            object.get("allowed") == Some(&serde_json::Value::Bool(true))
        }
        _ => false,
    }
}

/// A request as text: a first line `METHOD TARGET`, then `name: value` lines, an empty line
/// and the body; lines end with `\n` (a CR before it is kept in the value, as fuzzed bytes
/// may hold anything a header map could). Seeds are readable and the fuzzer mutates any part.
pub fn parse_request_text(data: &[u8]) -> (HttpRequest, Vec<u8>) {
    let (head, body) = match data.windows(2).position(|w| w == b"\n\n") {
        Some(at) => (&data[..at], data.get(at + 2..).unwrap_or_default()),
        None => (data, &[][..]),
    };
    let head = String::from_utf8_lossy(head);
    let mut lines = head.split('\n');
    let first = lines.next().unwrap_or_default();
    let (method, target) = first.split_once(' ').unwrap_or((first, "/"));
    let mut headers = vec![
        (":method".to_string(), method.to_string()),
        (":path".to_string(), target.to_string()),
        (":authority".to_string(), "fuzz.test".to_string()),
    ];
    for line in lines {
        let (name, value) = line.split_once(':').unwrap_or((line, ""));
        headers.push((name.to_ascii_lowercase(), value.trim_start().to_string()));
    }
    (
        HttpRequest {
            headers,
            ..HttpRequest::default()
        },
        body.to_vec(),
    )
}
