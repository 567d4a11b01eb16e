//! The request path on the in-memory host, driven as Envoy drives a stream: when the body is
//! waited for, which headers a decision may change, what a reply carries, what is published.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)] // a test: fail loudly at the step

use base64::Engine as _;
use zerohop_filter::decision_path::DecisionPath;
use zerohop_filter::host::memory::{MemoryHost, Reply};
use zerohop_filter::host::Level;
use zerohop_filter::request::input::HttpRequest;
use zerohop_filter::root::Root;
use zerohop_filter::stream::{Flow, DECISION_ID_KEY, DYNAMIC_METADATA_KEY};
use zerohop_filter::writer::build;

const POLICY: &str = r#"package t

import rego.v1

default allow := false

allow := {
	"allowed": true,
	"headers": {"x-set": "1"},
	"request_headers_to_remove": ["host", "x-drop"],
	"response_headers_to_add": {"x-added": "2"},
	"query_parameters_to_set": {"q": "new"},
	"dynamic_metadata": {"who": "me"},
} if input.attributes.request.http.method == "GET"

allow := {
	"allowed": false,
	"http_status": 401,
	"body": "go away",
	"headers": {"x-denied": "yes"},
} if input.attributes.request.http.method == "DELETE"

allow := {"allowed": input.parsed_body.ok} if input.attributes.request.http.method == "POST"

allow := "not a decision" if input.attributes.request.http.method == "PUT"
"#;

fn configured(settings: serde_json::Value) -> (MemoryHost, Root) {
    configured_with(POLICY, settings)
}

fn configured_with(policy: &str, settings: serde_json::Value) -> (MemoryHost, Root) {
    let path = DecisionPath::parse("t/allow").unwrap();
    let targz = build(vec![("t.rego".into(), policy.into())], Some("r1"), &[path])
        .unwrap()
        .targz;
    let mut config = serde_json::json!({
        "path": "t/allow",
        "bundle": {"inline": base64::engine::general_purpose::STANDARD.encode(targz)},
    });
    for (key, value) in settings.as_object().unwrap() {
        config[key] = value.clone();
    }
    let host = MemoryHost::default();
    host.set_now_ms(1_700_000_000_000);
    let mut root = Root::default();
    let configured = root.configure(&host, "t".into(), Ok(config.to_string().into_bytes()));
    assert!(configured, "{:?}", host.take_log());
    (host, root)
}

fn request(host: &MemoryHost, method: &str, path: &str, extra: &[(&str, &str)], body: &[u8]) {
    let mut headers = vec![
        (":method".to_string(), method.to_string()),
        (":path".to_string(), path.to_string()),
        (":authority".to_string(), "example.test".to_string()),
        ("host".to_string(), "example.test".to_string()),
        ("x-drop".to_string(), "gone".to_string()),
    ];
    headers.extend(extra.iter().map(|(n, v)| (n.to_string(), v.to_string())));
    host.set_request(
        HttpRequest {
            headers,
            ..HttpRequest::default()
        },
        body.to_vec(),
    );
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

#[test]
fn an_allowed_request_gets_the_decisions_changes_but_keeps_host() {
    let (host, root) = configured(serde_json::json!({}));
    let mut stream = root.stream(1).unwrap();
    request(&host, "GET", "/a?q=old&k=v", &[], b"");
    assert_eq!(
        stream.on_request_headers(&host, true),
        Flow::Continue,
        "{:?} {:?}",
        host.reply(),
        host.take_log()
    );
    let headers = host.request_headers();
    assert_eq!(header(&headers, "x-set"), Some("1"));
    assert_eq!(header(&headers, "x-drop"), None, "removed");
    assert_eq!(
        header(&headers, "host"),
        Some("example.test"),
        "host is kept"
    );
    assert_eq!(
        header(&headers, ":path"),
        Some("/a?k=v&q=new"),
        "query rewritten as Go encodes it"
    );
    assert!(
        host.response_headers().is_empty(),
        "not before the response"
    );
    assert_eq!(stream.on_response_headers(&host), Flow::Continue);
    assert_eq!(
        host.response_headers(),
        vec![("x-added".into(), "2".into())]
    );
    let id = host.filter_state(DECISION_ID_KEY).unwrap();
    assert_eq!(id.len(), 36, "a UUID: {id}");
    let metadata: serde_json::Value =
        serde_json::from_str(&host.filter_state(DYNAMIC_METADATA_KEY).unwrap()).unwrap();
    assert_eq!(
        metadata,
        serde_json::json!({"who": "me", "decision_id": id})
    );
}

#[test]
fn a_denied_request_gets_the_decisions_reply() {
    let (host, root) = configured(serde_json::json!({}));
    let mut stream = root.stream(1).unwrap();
    request(&host, "DELETE", "/a", &[], b"");
    assert_eq!(stream.on_request_headers(&host, true), Flow::Pause);
    assert_eq!(
        host.reply(),
        Some(Reply {
            status: 401,
            headers: vec![("x-denied".into(), "yes".into())],
            body: "go away".into(),
        })
    );
    assert_eq!(header(&host.request_headers(), "x-drop"), Some("gone"));
    assert!(host.filter_state(DECISION_ID_KEY).is_some());
    assert_eq!(host.filter_state(DYNAMIC_METADATA_KEY), None);
}

#[test]
fn an_invalid_decision_gets_status_on_error_or_goes_through_fail_open() {
    let (host, root) = configured(serde_json::json!({"status_on_error": 500}));
    request(&host, "PUT", "/a", &[], b"");
    assert_eq!(
        root.stream(1).unwrap().on_request_headers(&host, true),
        Flow::Pause
    );
    assert_eq!(host.reply().unwrap().status, 500);
    let (host, root) = configured(serde_json::json!({"fail_open": true}));
    request(&host, "PUT", "/a", &[], b"");
    assert_eq!(
        root.stream(1).unwrap().on_request_headers(&host, true),
        Flow::Continue
    );
    assert_eq!(host.reply(), None);
}

#[test]
fn without_a_bundle_requests_get_503() {
    let host = MemoryHost::default();
    let mut root = Root::default();
    let config = serde_json::json!({"bundle": {"service": {"cluster": "c", "authority": "b.test", "path": "/b"}}});
    let configured = root.configure(&host, "t".into(), Ok(config.to_string().into_bytes()));
    assert!(configured, "{:?}", host.take_log());
    request(&host, "GET", "/a", &[], b"");
    assert_eq!(
        root.stream(1).unwrap().on_request_headers(&host, true),
        Flow::Pause
    );
    assert_eq!(host.reply().unwrap().status, 503);
}

#[test]
fn the_body_is_waited_for_and_decided_on() {
    let body = serde_json::json!({"with_request_body": {"max_request_bytes": 64}});
    let (host, root) = configured(body.clone());
    let mut stream = root.stream(1).unwrap();
    request(
        &host,
        "POST",
        "/a",
        &[("content-type", "application/json")],
        br#"{"ok": true}"#,
    );
    assert_eq!(
        stream.on_request_headers(&host, false),
        Flow::Pause,
        "waits"
    );
    assert_eq!(
        stream.on_request_body(&host, 6, false),
        Flow::Pause,
        "a first chunk"
    );
    assert_eq!(
        stream.on_request_body(&host, 12, true),
        Flow::Continue,
        "decided on the body"
    );
    // A body whose `ok` is false: denied with the default 403.
    let (host, root) = configured(body);
    let mut stream = root.stream(2).unwrap();
    request(
        &host,
        "POST",
        "/a",
        &[("content-type", "application/json")],
        br#"{"ok": false}"#,
    );
    assert_eq!(stream.on_request_headers(&host, false), Flow::Pause);
    assert_eq!(stream.on_request_body(&host, 13, true), Flow::Pause);
    assert_eq!(host.reply().unwrap().status, 403);
}

#[test]
fn upgrades_connect_and_bodiless_requests_are_decided_at_the_headers() {
    let body = serde_json::json!({"with_request_body": {"max_request_bytes": 64}});
    let (host, root) = configured(body);
    for extra in [
        &[("upgrade", "websocket"), ("connection", "Upgrade")][..],
        &[(":protocol", "websocket")][..],
    ] {
        request(&host, "GET", "/a", extra, b"");
        let flow = root.stream(1).unwrap().on_request_headers(&host, false);
        assert_eq!(flow, Flow::Continue, "{extra:?}");
    }
    request(&host, "CONNECT", "/a", &[], b"");
    let flow = root.stream(1).unwrap().on_request_headers(&host, false);
    assert_eq!(
        flow,
        Flow::Pause,
        "decided (undefined for CONNECT): not waiting"
    );
    assert_eq!(host.reply().unwrap().status, 403);
    request(&host, "GET", "/a", &[], b"");
    assert_eq!(
        root.stream(1).unwrap().on_request_headers(&host, true),
        Flow::Continue
    );
}

#[test]
fn a_declared_or_buffered_body_over_the_limit_gets_413() {
    let body = serde_json::json!({"with_request_body": {"max_request_bytes": 4}});
    let (host, root) = configured(body);
    request(&host, "POST", "/a", &[("content-length", "5")], b"12345");
    assert_eq!(
        root.stream(1).unwrap().on_request_headers(&host, false),
        Flow::Pause
    );
    assert_eq!(host.reply().unwrap().status, 413);
    request(&host, "POST", "/a", &[], b"12345");
    let mut stream = root.stream(2).unwrap();
    assert_eq!(stream.on_request_headers(&host, false), Flow::Pause);
    assert_eq!(host.reply(), None);
    assert_eq!(stream.on_request_body(&host, 5, false), Flow::Pause);
    assert_eq!(
        host.reply().unwrap(),
        Reply {
            status: 413,
            headers: vec![],
            body: "Payload Too Large".into()
        }
    );
}

#[test]
fn a_body_the_host_never_delivers_ends_the_stream_from_the_tick() {
    let body = serde_json::json!({"with_request_body": {"max_request_bytes": 64}});
    let (host, mut root) = configured(body);
    let mut stream = root.stream(9).unwrap();
    request(&host, "POST", "/a", &[], b"{}");
    assert_eq!(stream.on_request_headers(&host, false), Flow::Pause);
    root.tick(&host);
    assert!(host.ended().is_empty());
    host.advance_ms(5_000);
    root.tick(&host);
    let reply = Reply {
        status: 503,
        headers: vec![],
        body: "request body not delivered to the filter".into(),
    };
    assert_eq!(host.ended(), vec![(9, Some(reply))]);
    assert!(host
        .take_log()
        .iter()
        .any(|(_, line)| line.contains("no request body reached the filter in 5s")));
}

#[test]
fn a_body_never_delivered_is_let_through_when_failing_open() {
    let settings = serde_json::json!({
        "with_request_body": {"max_request_bytes": 64},
        "fail_open": true,
    });
    let (host, mut root) = configured(settings);
    request(&host, "POST", "/a", &[], b"{}");
    assert_eq!(
        root.stream(4).unwrap().on_request_headers(&host, false),
        Flow::Pause
    );
    host.advance_ms(5_000);
    root.tick(&host);
    assert_eq!(host.ended(), vec![(4, None)]);
}

/// `print` on the decision path (precompiled) goes to the host log at debug level, as
/// OPA-Envoy prints to its log, and never fails the body (OPA v1.20.2 prints
/// `method GET <undefined>` and allows).
#[test]
fn print_goes_to_the_host_log_at_debug_level() {
    let policy = "package t\n\nallow if {\n\tprint(\"method\", input.attributes.request.http.method, input.nope)\n\tinput.attributes.request.http.method == \"GET\"\n}\n";
    let (host, root) = configured_with(policy, serde_json::json!({}));
    host.take_log();
    let mut stream = root.stream(1).unwrap();
    request(&host, "GET", "/a", &[], b"");
    assert_eq!(stream.on_request_headers(&host, true), Flow::Continue);
    let prints: Vec<(Level, String)> = host
        .take_log()
        .into_iter()
        .filter(|(_, message)| message.starts_with("print: "))
        .collect();
    assert_eq!(
        prints,
        vec![(
            Level::Debug,
            "print: t.rego:4: method GET <undefined>".to_string()
        )]
    );
}

/// Each decision is counted once, under what enforcement did or (dry run) would have done.
#[test]
fn decisions_are_counted_by_outcome() {
    let count = |host: &MemoryHost, label: &str| {
        host.metric(&format!("zerohop.decisions.{label}"))
            .unwrap_or_else(|| panic!("{label} is defined"))
    };
    let (host, root) = configured(serde_json::json!({}));
    for (method, path) in [
        ("GET", "/a"),
        ("GET", "/b"),
        ("DELETE", "/a"),
        ("PUT", "/a"),
        ("GET", "/a%zz"),
    ] {
        request(&host, method, path, &[], b"");
        root.stream(1).unwrap().on_request_headers(&host, true);
    }
    assert_eq!(count(&host, "allowed"), 2);
    assert_eq!(count(&host, "denied"), 1);
    assert_eq!(count(&host, "error.invalid-decision"), 1);
    assert_eq!(count(&host, "error.request-parse-error"), 1);
    assert_eq!(count(&host, "dry_run_denied"), 0);

    let (host, root) = configured(serde_json::json!({"dry_run": true}));
    request(&host, "DELETE", "/a", &[], b"");
    assert_eq!(
        root.stream(1).unwrap().on_request_headers(&host, true),
        Flow::Continue
    );
    assert_eq!(count(&host, "dry_run_denied"), 1);
    assert_eq!(count(&host, "denied"), 0);

    let undefined_unless_get =
        "package t\nimport rego.v1\nallow if input.attributes.request.http.method == \"GET\"\n";
    let (host, root) = configured_with(undefined_unless_get, serde_json::json!({}));
    request(&host, "POST", "/a", &[], b"");
    root.stream(1).unwrap().on_request_headers(&host, true);
    assert_eq!(count(&host, "undefined"), 1);
    assert_eq!(count(&host, "error.evaluation-error"), 0);
    let (host, root) = configured_with(
        undefined_unless_get,
        serde_json::json!({"max_eval_instructions": 1, "decision_cache_bytes": 0}),
    );
    request(&host, "GET", "/a", &[], b"");
    root.stream(1).unwrap().on_request_headers(&host, true);
    assert_eq!(
        count(&host, "error.evaluation-error"),
        1,
        "{:?}",
        host.take_log()
    );

    let host = MemoryHost::default();
    let mut root = Root::default();
    let config = serde_json::json!({"bundle": {"service": {"cluster": "c", "authority": "b.test", "path": "/b"}}});
    assert!(root.configure(&host, "t".into(), Ok(config.to_string().into_bytes())));
    request(&host, "GET", "/a", &[], b"");
    root.stream(1).unwrap().on_request_headers(&host, true);
    assert_eq!(count(&host, "no_bundle"), 1);
    assert_eq!(count(&host, "allowed"), 0);
}

const HTTP_SEND_POLICY: &str = r#"package t

import rego.v1

default allow := false

user := http.send({
	"method": "GET",
	"url": sprintf("https://users.internal/u/%s", [input.attributes.request.http.headers["x-user"]]),
	"headers": {"accept": "application/json"},
	"timeout": "250ms",
})

allow if user.body.admin
"#;

/// A policy's `http.send` holds the request, calls the cluster configured for the URL's
/// origin, and decides when the answer comes; without one, the evaluation fails.
#[test]
fn http_send_holds_the_request_until_the_callout_answers() {
    let settings = serde_json::json!({
        "http_send": {"clusters": {"https://users.internal:443": "users"}},
        "status_on_error": 500,
    });
    let (host, root) = configured_with(HTTP_SEND_POLICY, settings);
    host.accept_cluster("users");
    for (answer, admitted) in [(r#"{"admin": true}"#, true), (r#"{"admin": false}"#, false)] {
        let mut stream = root.stream(1).unwrap();
        request(&host, "GET", "/a", &[("x-user", "alice")], b"");
        let callouts = host.callouts().len();
        assert_eq!(stream.on_request_headers(&host, true), Flow::Pause);
        let callout = host.callouts().pop().unwrap();
        assert_eq!(host.callouts().len(), callouts + 1);
        assert_eq!(callout.cluster, "users");
        assert_eq!(callout.timeout_ms, 250);
        assert_eq!(
            callout.headers,
            [
                (":method", "GET"),
                (":path", "/u/alice"),
                (":authority", "users.internal"),
                ("accept", "application/json"),
            ]
            .map(|(n, v)| (n.to_string(), v.to_string()))
        );
        assert_eq!(host.reply(), None, "held, not answered");
        let resumed = host.resumed();
        host.set_response(200, &[("content-type", "application/json")], answer.into());
        stream.on_http_call_response(&host, callout.token, 2, answer.len());
        if admitted {
            assert_eq!(host.resumed(), resumed + 1, "{:?}", host.take_log());
            assert_eq!(host.reply(), None);
        } else {
            assert_eq!(host.resumed(), resumed);
            assert_eq!(host.reply().map(|r| r.status), Some(403));
        }
    }
    // A reset callout: the call is undefined (`raise_error`), so `allow` is its default.
    let mut stream = root.stream(1).unwrap();
    request(&host, "GET", "/a", &[("x-user", "bob")], b"");
    assert_eq!(stream.on_request_headers(&host, true), Flow::Pause);
    let callout = host.callouts().pop().unwrap();
    stream.on_http_call_response(&host, callout.token, 0, 0);
    assert_eq!(host.reply().map(|r| r.status), Some(403));
}

#[test]
fn http_send_to_an_origin_without_a_cluster_fails_the_evaluation() {
    let (host, root) = configured_with(
        HTTP_SEND_POLICY,
        serde_json::json!({"status_on_error": 500}),
    );
    let mut stream = root.stream(1).unwrap();
    request(&host, "GET", "/a", &[("x-user", "alice")], b"");
    assert_eq!(stream.on_request_headers(&host, true), Flow::Pause);
    assert!(host.callouts().is_empty());
    assert_eq!(host.reply().map(|r| r.status), Some(500));
    let log = host.take_log();
    assert!(
        log.iter()
            .any(|(_, line)| line.contains("https://users.internal is not in http_send.clusters")),
        "{log:?}"
    );
}

/// `opa.runtime()` answers the plugin configuration without its secrets, the environment and
/// the version, as OPA answers its own configuration.
#[test]
fn opa_runtime_answers_the_configuration_without_secrets() {
    let policy = "package t\n\nimport rego.v1\n\nallow := {\"allowed\": false, \"body\": json.marshal(opa.runtime())}\n";
    let settings = serde_json::json!({
        "status_on_error": 500,
        "decision_logs": {"service": {"cluster": "logs", "authority": "logs.test", "credentials": {"bearer": {"token": "s3cret"}},
                                       "headers": {"x-api-key": "s3cret"}}},
    });
    let (host, root) = configured_with(policy, settings);
    request(&host, "GET", "/a", &[], b"");
    root.stream(1).unwrap().on_request_headers(&host, true);
    let reply = host.reply().unwrap();
    assert!(!reply.body.contains("s3cret"), "{}", reply.body);
    let runtime: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(runtime["config"]["path"], "t/allow");
    assert_eq!(runtime["config"]["status_on_error"], 500);
    assert_eq!(
        runtime["config"]["decision_logs"]["service"]["cluster"],
        "logs"
    );
    assert_eq!(
        runtime["config"]["bundle"],
        serde_json::json!({}),
        "the inline bundle is left out"
    );
    assert_eq!(runtime["version"], env!("CARGO_PKG_VERSION"));
    assert!(runtime["env"].is_object());
}
