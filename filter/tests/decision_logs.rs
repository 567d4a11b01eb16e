//! Decision logs on the in-memory host: one OPA `EventV1` per decision, written to the log
//! and uploaded with OPA's protocol; masked by default and by the bundle's rules.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)] // a test: fail loudly at the step

use std::io::Read as _;

use base64::Engine as _;
use serde_json::{json, Value};
use zerohop_filter::decision_path::DecisionPath;
use zerohop_filter::host::memory::MemoryHost;
use zerohop_filter::host::{Level, Shared};
use zerohop_filter::request::input::HttpRequest;
use zerohop_filter::root::Root;
use zerohop_filter::stream::DECISION_ID_KEY;
use zerohop_filter::writer::build;

const POLICY: &str = r#"package t

import rego.v1

default allow := false

allow if input.attributes.request.http.method == "GET"

allow := {"allowed": false, "http_status": 401} if input.attributes.request.http.method == "DELETE"
"#;

const MASK: &str = r#"package system.log

import rego.v1

mask contains "/input/attributes/request/http/headers/x-api-key"

mask contains {"op": "upsert", "path": "/input/parsed_body/password", "value": "**REDACTED**"} if {
	input.input.parsed_body.password
}

drop if input.input.attributes.request.http.path == "/health"
"#;

fn configured(files: &[(&str, &str)], logs: Value, extra: Value) -> (MemoryHost, Root) {
    let path = DecisionPath::parse("t/allow").unwrap();
    let files = files
        .iter()
        .map(|(n, s)| (n.to_string(), s.as_bytes().to_vec()))
        .collect();
    let targz = build(files, Some("r7"), &[path]).unwrap().targz;
    let mut config = json!({
        "path": "t/allow",
        "bundle": {"inline": base64::engine::general_purpose::STANDARD.encode(targz)},
        "decision_logs": logs,
    });
    for (key, value) in extra.as_object().unwrap() {
        config[key] = value.clone();
    }
    let host = MemoryHost::default();
    host.set_now_ms(1_700_000_000_000);
    host.accept_cluster("logs");
    let mut root = Root::default();
    let ok = root.configure(&host, "t".into(), Ok(config.to_string().into_bytes()));
    assert!(ok, "{:?}", host.take_log());
    (host, root)
}

fn send(
    host: &MemoryHost,
    root: &Root,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> String {
    let mut all = vec![
        (":method".to_string(), method.to_string()),
        (":path".to_string(), path.to_string()),
        (":authority".to_string(), "example.test".to_string()),
    ];
    all.extend(headers.iter().map(|(n, v)| (n.to_string(), v.to_string())));
    if !body.is_empty() {
        all.push(("content-type".into(), "application/json".into()));
        all.push(("content-length".into(), body.len().to_string()));
    }
    host.set_request(
        HttpRequest {
            headers: all,
            ..HttpRequest::default()
        },
        body.as_bytes().to_vec(),
    );
    let mut stream = root.stream(1).unwrap();
    if body.is_empty() {
        stream.on_request_headers(host, true);
    } else {
        stream.on_request_headers(host, false);
        stream.on_request_body(host, body.len(), true);
    }
    host.filter_state(DECISION_ID_KEY).unwrap_or_default()
}

/// The events written to the log (and every other log line).
fn console(host: &MemoryHost) -> (Vec<Value>, Vec<(Level, String)>) {
    let log = host.take_log();
    let events = log
        .iter()
        .filter_map(|(level, line)| {
            let event = line.strip_prefix("zerohop-decision ")?;
            assert_eq!(
                *level,
                Level::Warn,
                "shown at Istio's default proxy log level"
            );
            Some(serde_json::from_str(event).unwrap())
        })
        .collect();
    (events, log)
}

#[test]
fn each_decision_is_one_opa_event_in_the_log() {
    let (host, root) = configured(
        &[("t.rego", POLICY)],
        json!({"console": true, "labels": {"app": "shop"}}),
        json!({}),
    );
    host.take_log();
    let id = send(
        &host,
        &root,
        "GET",
        "/a?x=1",
        &[("authorization", "Bearer s3cret"), ("x-a", "b")],
        "",
    );
    let (events, _) = console(&host);
    assert_eq!(events.len(), 1);
    let event = &events[0];
    assert_eq!(event["decision_id"], json!(id));
    assert_eq!(event["labels"]["app"], json!("shop"));
    assert_eq!(event["labels"]["version"], json!(env!("CARGO_PKG_VERSION")));
    assert_eq!(event["labels"]["id"].as_str().unwrap().len(), 36);
    assert_eq!(event["bundles"], json!({"t": {"revision": "r7"}}));
    assert_eq!(event["path"], json!("t/allow"));
    assert_eq!(event["result"], json!(true));
    assert_eq!(event["timestamp"], json!("2023-11-14T22:13:20Z"));
    assert!(event["metrics"]["timer_rego_query_eval_ns"].is_u64());
    // The whole input OPA-Envoy builds, though the policy reads only the method.
    let http = &event["input"]["attributes"]["request"]["http"];
    assert_eq!(http["headers"]["x-a"], json!("b"));
    assert_eq!(event["input"]["parsed_query"], json!({"x": ["1"]}));
    assert_eq!(
        http["headers"].get("authorization"),
        None,
        "erased by default"
    );
    assert_eq!(
        event["erased"],
        json!(["/input/attributes/request/http/headers/authorization"])
    );
    assert_eq!(
        event["zerohop"],
        json!({"outcome": "allowed", "action": "forward", "dry_run": false})
    );
    assert_eq!(host.metric("zerohop.decision_logs.written"), Some(1));

    // The proxy's id, in shared data for its other workers.
    let shared = host.shared.get("t.zerohop.proxy_id").unwrap().0.unwrap();
    assert_eq!(
        event["labels"]["id"],
        json!(String::from_utf8(shared).unwrap())
    );

    send(&host, &root, "DELETE", "/a", &[], "");
    let (events, _) = console(&host);
    assert_eq!(
        events[0]["result"],
        json!({"allowed": false, "http_status": 401})
    );
    assert_eq!(
        events[0]["zerohop"],
        json!({"outcome": "denied", "action": "reply", "status": 401, "dry_run": false})
    );
}

#[test]
fn dry_run_says_what_enforcement_would_have_done() {
    let (host, root) = configured(
        &[("t.rego", POLICY)],
        json!({"console": true}),
        json!({"dry_run": true}),
    );
    host.take_log();
    send(&host, &root, "DELETE", "/a", &[], "");
    assert_eq!(host.reply(), None, "let through");
    let (events, _) = console(&host);
    assert_eq!(
        events[0]["zerohop"],
        json!({"outcome": "dry_run_denied", "action": "forward", "would_be_status": 401, "dry_run": true})
    );
}

#[test]
fn max_decisions_per_second_logs_at_most_that_many_and_counts_the_rest() {
    let (host, root) = configured(
        &[("t.rego", POLICY)],
        json!({"console": true, "reporting": {"max_decisions_per_second": 2}}),
        json!({}),
    );
    host.take_log();
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(send(&host, &root, "GET", "/a", &[], ""));
    }
    let (events, _) = console(&host);
    let logged: Vec<_> = events.iter().map(|e| e["decision_id"].clone()).collect();
    assert_eq!(
        logged,
        [json!(ids[0]), json!(ids[1])],
        "a burst of the rate"
    );
    assert_eq!(
        host.metric("zerohop.decision_logs.dropped.rate_limit"),
        Some(3)
    );
    assert_eq!(
        host.metric("zerohop.decisions.allowed"),
        Some(5),
        "every decision is still made and counted"
    );
    host.advance_ms(500);
    for _ in 0..3 {
        send(&host, &root, "GET", "/a", &[], "");
    }
    assert_eq!(console(&host).0.len(), 1, "half a second refills one");
    assert_eq!(
        host.metric("zerohop.decision_logs.dropped.rate_limit"),
        Some(5)
    );
}

#[test]
fn failures_are_events_with_an_error() {
    let (host, root) = configured(
        &[(
            "t.rego",
            "package t\nimport rego.v1\nallow if input.attributes.request.http.method == \"GET\"\n",
        )],
        json!({"console": true}),
        json!({}),
    );
    host.take_log();
    send(&host, &root, "POST", "/a", &[], "");
    send(&host, &root, "GET", "/a%zz", &[], "");
    let (events, _) = console(&host);
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["error"]["code"], json!("undefined-decision"));
    assert_eq!(events[0].get("result"), None);
    assert_eq!(events[0]["zerohop"]["status"], json!(403));
    assert_eq!(events[1]["error"]["code"], json!("request-parse-error"));
    assert_eq!(
        events[1]["zerohop"]["outcome"],
        json!("error.request-parse-error")
    );
}

#[test]
fn the_bundles_mask_and_drop_rules_apply_and_a_failing_rule_keeps_the_defaults() {
    let bodies = json!({"with_request_body": {"max_request_bytes": 1000}});
    let (host, root) = configured(
        &[("t.rego", POLICY), ("log.rego", MASK)],
        json!({"console": true}),
        bodies.clone(),
    );
    host.take_log();
    send(
        &host,
        &root,
        "GET",
        "/a",
        &[("x-api-key", "k3y"), ("cookie", "c00kie")],
        r#"{"password":"pa55"}"#,
    );
    send(&host, &root, "GET", "/health", &[], "");
    let (events, log) = console(&host);
    assert_eq!(events.len(), 1, "/health dropped by the rule");
    assert_eq!(
        host.metric("zerohop.decision_logs.dropped.drop_rule"),
        Some(1)
    );
    let event = &events[0];
    assert_eq!(
        event["input"]["parsed_body"],
        json!({"password": "**REDACTED**"})
    );
    assert_eq!(event["masked"], json!(["/input/parsed_body/password"]));
    let erased = event["erased"].as_array().unwrap();
    assert!(erased.contains(&json!("/input/attributes/request/http/headers/x-api-key")));
    assert!(erased.contains(&json!("/input/attributes/request/http/headers/cookie")));
    assert!(erased.contains(&json!("/input/attributes/request/http/body")));
    for secret in ["k3y", "c00kie", "pa55"] {
        assert!(
            !log.iter().any(|(_, line)| line.contains(secret)),
            "{secret} in {log:?}"
        );
    }

    // A mask rule that fails: the defaults still apply, the error is counted.
    let failing = "package system.log\nimport rego.v1\nmask := x if { x := 1 / 0 }\nmask := 7 if input.input.attributes.request.http.method == \"GET\"\n";
    let (host, root) = configured(
        &[("t.rego", POLICY), ("log.rego", failing)],
        json!({"console": true}),
        json!({}),
    );
    host.take_log();
    send(
        &host,
        &root,
        "GET",
        "/a",
        &[("authorization", "Bearer s3cret")],
        "",
    );
    let (events, log) = console(&host);
    assert_eq!(events.len(), 1);
    assert_eq!(
        events[0]["input"]["attributes"]["request"]["http"]["headers"].get("authorization"),
        None
    );
    assert_eq!(host.metric("zerohop.decision_logs.mask_errors"), Some(1));
    assert!(
        !log.iter().any(|(_, line)| line.contains("s3cret")),
        "{log:?}"
    );
}

fn gunzip(bytes: &[u8]) -> Vec<Value> {
    let mut text = String::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_string(&mut text)
        .unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn events_are_uploaded_with_opas_protocol_and_retried() {
    let logs = json!({"service": {"cluster": "logs", "authority": "logs.test", "headers": {"x-team": "a"}},
        "reporting": {"min_delay_seconds": 1, "max_delay_seconds": 2}});
    let (host, mut root) = configured(&[("t.rego", POLICY)], logs, json!({}));
    let ids: Vec<String> = (0..5)
        .map(|i| send(&host, &root, "GET", &format!("/{i}"), &[], ""))
        .collect();
    assert!(
        !host
            .take_log()
            .iter()
            .any(|(_, l)| l.starts_with("zerohop-decision")),
        "no console"
    );
    assert_eq!(host.tick_period(), std::time::Duration::from_secs(1));
    root.tick(&host);
    assert!(host.callouts().is_empty(), "not before min_delay");
    host.advance_ms(2000);
    root.tick(&host);
    let callouts = host.callouts();
    assert_eq!(callouts.len(), 1);
    let call = &callouts[0];
    let header = |name: &str| {
        call.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(header(":method"), Some("POST"));
    assert_eq!(header(":path"), Some("/logs"));
    assert_eq!(header(":authority"), Some("logs.test"));
    assert_eq!(header("content-encoding"), Some("gzip"));
    assert_eq!(header("content-type"), Some("application/json"));
    assert_eq!(header("x-team"), Some("a"));
    let sent: Vec<String> = gunzip(&call.body)
        .iter()
        .map(|e| e["decision_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(sent, ids);

    // 500: the chunk is kept and sent again after a backoff.
    host.set_response(500, &[], Vec::new());
    root.on_callout_response(&host, call.token, 1, 0);
    assert_eq!(
        host.metric("zerohop.decision_logs.upload_failures"),
        Some(1)
    );
    host.advance_ms(300);
    root.tick(&host);
    let callouts = host.callouts();
    assert_eq!(callouts.len(), 2);
    assert_eq!(gunzip(&callouts[1].body).len(), 5);
    host.set_response(200, &[], Vec::new());
    root.on_callout_response(&host, callouts[1].token, 1, 0);
    assert_eq!(host.metric("zerohop.decision_logs.uploaded"), Some(5));
    assert_eq!(
        host.metric("zerohop.decision_logs.dropped.buffer_full"),
        Some(0)
    );
}
