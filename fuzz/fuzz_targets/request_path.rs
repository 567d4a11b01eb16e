//! The core request path, structure-aware: random requests (method, target, headers, body,
//! whether a body follows) and a random decision, through a configured `Root` and its
//! `Stream` on the in-memory host, as Envoy drives a stream. The policy returns the decision
//! the request carries (base64url JSON in `x-decision`), unless the parsed body or query says
//! `deny`. Invariants:
//! - no panic, whatever the request and the decision;
//! - a request goes through only when the decision is exactly `true` or `{"allowed": true, …}`;
//! - no header the filter emits (request headers after the decision, response headers, a
//!   local reply's headers) holds CR, LF or NUL; a local reply's status is in 200–599.
#![no_main]

use std::sync::LazyLock;

use arbitrary::Arbitrary;
use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Map, Value};
use zerohop_filter::decision_path::DecisionPath;
use zerohop_filter::host::memory::MemoryHost;
use zerohop_filter::request::input::HttpRequest;
use zerohop_filter::root::Root;
use zerohop_filter::stream::Flow;
use zerohop_fuzz::{assert_clean_header, decision_allows};

#[global_allocator]
static ALLOCATOR: zerohop_filter::engine::budget::CountingAllocator<std::alloc::System> =
    zerohop_filter::engine::budget::CountingAllocator(std::alloc::System);

const POLICY: &str = r#"package fuzz

import rego.v1

default decision := false

decision := d if {
	d := json.unmarshal(base64url.decode(input.attributes.request.http.headers["x-decision"]))
	not input.parsed_body.deny
	not input.parsed_query.deny
}
"#;

static BUNDLE: LazyLock<String> = LazyLock::new(|| {
    let path = DecisionPath::parse("fuzz/decision").expect("decision path");
    let built = zerohop_filter::writer::build(
        vec![("fuzz.rego".into(), POLICY.into())],
        Some("fuzz"),
        &[path],
    )
    .expect("the fuzz policy builds");
    base64::engine::general_purpose::STANDARD.encode(built.targz)
});

#[derive(Debug, Arbitrary)]
enum Method {
    Get,
    Post,
    Put,
    Delete,
    Connect,
    Other(String),
}

#[derive(Debug, Arbitrary)]
enum ContentType {
    None,
    Json,
    Form,
    Multipart(String),
    Other(String),
}

#[derive(Debug, Arbitrary)]
enum Text {
    Word(u8),
    Injection(u8),
    Any(String),
}

impl Text {
    fn render(&self) -> String {
        match self {
            Text::Word(n) => format!("v{n}"),
            Text::Injection(n) => ["a\r\nx-injected: 1", "a\nb", "a\0b", "\r", ":path", "a b"]
                [*n as usize % 6]
                .to_string(),
            Text::Any(s) => s.clone(),
        }
    }
}

#[derive(Debug, Arbitrary)]
enum HeaderName {
    Plain(u8),
    Special(u8),
    Any(String),
}

impl HeaderName {
    fn render(&self) -> String {
        match self {
            HeaderName::Plain(n) => format!("x-h{}", n % 8),
            HeaderName::Special(n) => [
                ":path",
                ":method",
                ":authority",
                "host",
                "content-length",
                "transfer-encoding",
                "connection",
                "upgrade",
                "te",
                "x-envoy-auth-partial-body",
                "content-type",
                "Cookie",
            ][*n as usize % 12]
                .to_string(),
            HeaderName::Any(s) => s.clone(),
        }
    }
}

#[derive(Debug, Arbitrary)]
enum Scalar {
    True,
    False,
    Null,
    Number(i64),
    Float(f64),
    Text(Text),
}

impl Scalar {
    fn json(&self) -> Value {
        match self {
            Scalar::True => json!(true),
            Scalar::False => json!(false),
            Scalar::Null => Value::Null,
            Scalar::Number(n) => json!(n),
            Scalar::Float(f) => json!(f),
            Scalar::Text(t) => json!(t.render()),
        }
    }
}

#[derive(Debug, Arbitrary)]
enum Headers {
    Object(Vec<(HeaderName, Vec<Text>)>),
    Array(Vec<Vec<(HeaderName, Text)>>),
    Other(Scalar),
}

impl Headers {
    fn json(&self) -> Value {
        match self {
            Headers::Object(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(n, values)| {
                        let value = match values.as_slice() {
                            [one] => json!(one.render()),
                            many => json!(many.iter().map(Text::render).collect::<Vec<_>>()),
                        };
                        (n.render(), value)
                    })
                    .collect(),
            ),
            Headers::Array(objects) => Value::Array(
                objects
                    .iter()
                    .map(|o| {
                        Value::Object(
                            o.iter()
                                .map(|(n, v)| (n.render(), json!(v.render())))
                                .collect(),
                        )
                    })
                    .collect(),
            ),
            Headers::Other(s) => s.json(),
        }
    }
}

#[derive(Debug, Arbitrary)]
enum Decision {
    Scalar(Scalar),
    Object {
        allowed: Option<Scalar>,
        headers: Option<Headers>,
        response_headers_to_add: Option<Headers>,
        request_headers_to_remove: Option<Vec<HeaderName>>,
        query_parameters_to_set: Option<Vec<(Text, Text)>>,
        query_parameters_to_remove: Option<Vec<Text>>,
        http_status: Option<Scalar>,
        body: Option<Scalar>,
        dynamic_metadata: Option<Vec<(Text, Scalar)>>,
    },
    Raw(String),
}

impl Decision {
    /// The JSON the policy returns, or `None` for raw text that is not JSON.
    fn json(&self) -> Option<Value> {
        let Decision::Object {
            allowed,
            headers,
            response_headers_to_add,
            request_headers_to_remove,
            query_parameters_to_set,
            query_parameters_to_remove,
            http_status,
            body,
            dynamic_metadata,
        } = self
        else {
            return match self {
                Decision::Scalar(s) => Some(s.json()),
                Decision::Raw(text) => serde_json::from_str(text).ok(),
                Decision::Object { .. } => None,
            };
        };
        let mut object = Map::new();
        let mut put = |key: &str, value: Option<Value>| {
            if let Some(value) = value {
                object.insert(key.into(), value);
            }
        };
        put("allowed", allowed.as_ref().map(Scalar::json));
        put("headers", headers.as_ref().map(Headers::json));
        put(
            "response_headers_to_add",
            response_headers_to_add.as_ref().map(Headers::json),
        );
        put(
            "request_headers_to_remove",
            request_headers_to_remove
                .as_ref()
                .map(|names| json!(names.iter().map(HeaderName::render).collect::<Vec<_>>())),
        );
        put(
            "query_parameters_to_set",
            query_parameters_to_set.as_ref().map(|pairs| {
                Value::Object(
                    pairs
                        .iter()
                        .map(|(k, v)| (k.render(), json!(v.render())))
                        .collect(),
                )
            }),
        );
        put(
            "query_parameters_to_remove",
            query_parameters_to_remove
                .as_ref()
                .map(|names| json!(names.iter().map(Text::render).collect::<Vec<_>>())),
        );
        put("http_status", http_status.as_ref().map(Scalar::json));
        put("body", body.as_ref().map(Scalar::json));
        put(
            "dynamic_metadata",
            dynamic_metadata.as_ref().map(|pairs| {
                Value::Object(pairs.iter().map(|(k, v)| (k.render(), v.json())).collect())
            }),
        );
        Some(Value::Object(object))
    }
}

#[derive(Debug, Arbitrary)]
struct Request {
    method: Method,
    path: Text,
    query: Vec<(Text, Text)>,
    headers: Vec<(HeaderName, Text)>,
    content_type: ContentType,
    body: Vec<u8>,
    /// A body follows the headers (end_of_stream false at the headers).
    with_body: bool,
    /// The body arrives in two parts, the first without end_of_stream.
    split_body: Option<u16>,
    /// Ends with trailers instead of end_of_stream on the last chunk.
    trailers: bool,
    decision: Decision,
    /// Which configuration: 0 headers only, 1 bodies, 2 bodies with partial messages, 3 fail_open.
    config: u8,
}

fn config(kind: u8) -> String {
    let mut config = json!({"path": "fuzz/decision", "bundle": {"inline": &*BUNDLE}});
    match kind % 4 {
        1 => config["with_request_body"] = json!({"max_request_bytes": 256}),
        2 => {
            config["with_request_body"] = json!({"max_request_bytes": 64, "allow_partial_message": true, "pack_as_bytes": true})
        }
        3 => config["fail_open"] = json!(true),
        _ => {}
    }
    config.to_string()
}

thread_local! {
    static ROOTS: Vec<(MemoryHost, Root)> = (0..4).map(|kind| {
        let host = MemoryHost::default();
        host.set_now_ms(1_767_225_600_000);
        let mut root = Root::default();
        assert!(root.configure(&host, "fuzz".into(), Ok(config(kind).into_bytes())), "{:?}", host.take_log());
        (host, root)
    }).collect();
}

fuzz_target!(|request: Request| {
    let Some(decision) = request.decision.json() else {
        return;
    };
    let method = match &request.method {
        Method::Get => "GET".to_string(),
        Method::Post => "POST".to_string(),
        Method::Put => "PUT".to_string(),
        Method::Delete => "DELETE".to_string(),
        Method::Connect => "CONNECT".to_string(),
        Method::Other(m) => m.clone(),
    };
    let mut target = request.path.render();
    for (i, (k, v)) in request.query.iter().enumerate() {
        target.push(if i == 0 { '?' } else { '&' });
        target.push_str(&format!("{}={}", k.render(), v.render()));
    }
    let mut headers = vec![
        (":method".to_string(), method),
        (":path".to_string(), target),
        (":authority".to_string(), "fuzz.test".to_string()),
    ];
    match &request.content_type {
        ContentType::None => {}
        ContentType::Json => headers.push(("content-type".into(), "application/json".into())),
        ContentType::Form => headers.push((
            "content-type".into(),
            "application/x-www-form-urlencoded".into(),
        )),
        ContentType::Multipart(b) => headers.push((
            "content-type".into(),
            format!("multipart/form-data; boundary={b}"),
        )),
        ContentType::Other(t) => headers.push(("content-type".into(), t.clone())),
    }
    for (name, value) in &request.headers {
        let (name, value) = (name.render().to_ascii_lowercase(), value.render());
        // Envoy hands the filter no CR, LF or NUL in a header, and the decision header is ours.
        if name == "x-decision"
            || name.contains(['\r', '\n', '\0'])
            || value.contains(['\r', '\n', '\0'])
        {
            continue;
        }
        headers.push((name, value));
    }
    let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(decision.to_string());
    headers.push(("x-decision".into(), encoded));
    ROOTS.with(|roots| {
        let Some((host, root)) = roots.get(request.config as usize % roots.len()) else {
            return;
        };
        let fail_open = request.config % 4 == 3;
        host.set_request(
            HttpRequest {
                headers,
                ..HttpRequest::default()
            },
            request.body.clone(),
        );
        let mut stream = root.stream(1).expect("a configured root makes streams");
        let mut flow = stream.on_request_headers(host, !request.with_body);
        if flow == Flow::Pause && host.reply().is_none() {
            let total = request.body.len();
            if let Some(first) = request.split_body.map(|n| n as usize % (total + 1)) {
                flow = stream.on_request_body(host, first, false);
            }
            if flow == Flow::Pause && host.reply().is_none() {
                flow = if request.trailers {
                    let _ = stream.on_request_body(host, total, false);
                    stream.on_request_trailers(host)
                } else {
                    stream.on_request_body(host, total, true)
                };
            }
        }
        let reply = host.reply();
        if let Some(reply) = &reply {
            assert!(
                (200..=599).contains(&reply.status),
                "reply status {}",
                reply.status
            );
            for (name, value) in &reply.headers {
                assert_clean_header("reply", name, value);
            }
        }
        let forwarded = flow == Flow::Continue && reply.is_none();
        if forwarded {
            assert!(
                decision_allows(&decision) || fail_open,
                "forwarded with the decision {decision} ({:?})",
                host.take_log()
            );
            for (name, value) in host.request_headers() {
                assert_clean_header("request", &name, &value);
            }
            let _ = stream.on_response_headers(host);
            for (name, value) in host.response_headers() {
                assert_clean_header("response", &name, &value);
            }
        }
        stream.on_done(host);
        host.take_log();
    });
});
