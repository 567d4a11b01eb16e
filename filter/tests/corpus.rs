//! The differential corpus (`tests/e2e/corpus`) on the in-memory host, no Envoy: every request
//! through the core request path, against the real OPA engine's answer recorded in
//! `testdata/corpus/native.json`. As in `tests/e2e/test_differential.py`, each policy runs
//! twice: with a wrapper that answers with the whole `input` and the decision (the input must
//! be the one OPA evaluated, the decision OPA's), and with a wrapper that answers with the
//! decision alone, so the input holds only what the policy reads (the same decision).
//!
//! `make corpus-native` writes the file again: the requests from the Python corpus, the input
//! the core builds for each (`ZEROHOP_CORPUS_RECORD=1`), then OPA's decision on that input.
//! Not here: the `jwt` cases, whose input comes from Envoy's `jwt_authn` filter.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // a test

use std::path::{Path, PathBuf};
use std::rc::Rc;

use base64::Engine as _;
use serde_json::{json, Value as Json};
use zerohop_filter::decision_path::DecisionPath;
use zerohop_filter::host::memory::MemoryHost;
use zerohop_filter::request::input::{Connection, HttpRequest, Peer, SocketAddress};
use zerohop_filter::root::Root;
use zerohop_filter::stream::Flow;
use zerohop_filter::writer::build;

const WRAPPER_RULE: &str = "zerohop/differential/response";

/// The same wrappers as `test_differential.py`: the answer with the whole input, or (pruned)
/// without it, so the input holds only what the policy reads.
fn wrapper(rule: &str, with_input: bool) -> String {
    format!(
        "package zerohop.differential\n\nimport rego.v1\n\ndefault result := []\n\n\
         result := [data.{}]\n\nresponse := {{\n\t\"allowed\": false,\n\t\"http_status\": 200,\n\t\
         \"body\": json.marshal({{{}\"result\": result}}),\n}}\n",
        rule.replace('/', "."),
        if with_input { "\"input\": input, " } else { "" }
    )
}

fn root_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn policy_files(policy: &str) -> Vec<(String, Vec<u8>)> {
    let dir = root_dir().join("testdata/policies").join(policy);
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let wanted =
                name.ends_with(".rego") && !name.ends_with("_test.rego") || name == "data.json";
            wanted.then(|| (name, std::fs::read(e.path()).unwrap()))
        })
        .collect();
    files.sort();
    files
}

/// A root configured with `files` built for `rule` and the case's settings.
fn configured(
    host: &MemoryHost,
    files: Vec<(String, Vec<u8>)>,
    rule: &str,
    settings: &Json,
) -> Root {
    let targz = build(files, Some("test"), &[DecisionPath::parse(rule).unwrap()])
        .unwrap()
        .targz;
    let mut config = json!({
        "path": rule,
        "bundle": {"inline": base64::engine::general_purpose::STANDARD.encode(targz)},
    });
    for (key, value) in settings.as_object().unwrap() {
        config[key] = value.clone();
    }
    let mut root = Root::default();
    let ok = root.configure(host, "corpus".into(), Ok(config.to_string().into_bytes()));
    assert!(ok, "{:?}", host.take_log());
    root
}

/// The request as this host presents it: fixed addresses and pseudo-headers, the client's
/// SPIFFE id as the source principal.
fn http_request(request: &Json) -> (HttpRequest, Option<Vec<u8>>) {
    let text = |key: &str| request[key].as_str().unwrap().to_string();
    let body = match (&request["body_base64"], &request["body_fill"]) {
        (Json::String(b), _) => Some(base64::engine::general_purpose::STANDARD.decode(b).unwrap()),
        (_, Json::Object(fill)) => Some(vec![
            u8::try_from(fill["byte"].as_u64().unwrap()).unwrap();
            usize::try_from(fill["length"].as_u64().unwrap())
                .unwrap()
        ]),
        _ => None,
    };
    let mut headers = vec![
        (":authority".to_string(), "corpus.test".to_string()),
        (":path".to_string(), text("path")),
        (":method".to_string(), text("method")),
        (":scheme".to_string(), "https".to_string()),
        (
            "x-request-id".to_string(),
            "5f0c2a4e-4d1b-4c6e-9a51-3d2f7b8e1c90".to_string(),
        ),
    ];
    for pair in request["headers"].as_array().unwrap() {
        headers.push((
            pair[0].as_str().unwrap().to_string(),
            pair[1].as_str().unwrap().to_string(),
        ));
    }
    // What a client sends unless the request says otherwise.
    let length = body.as_ref().map(|b| b.len().to_string());
    for (name, value) in [
        ("user-agent", Some("corpus".to_string())),
        ("content-length", length),
    ] {
        if let Some(value) = value.filter(|_| !headers.iter().any(|(n, _)| n == name)) {
            headers.push((name.to_string(), value));
        }
    }
    let address = |port| {
        Some(SocketAddress {
            address: "127.0.0.1".into(),
            port,
        })
    };
    let connection = Connection::new(
        "HTTP/1.1".into(),
        Peer {
            address: address(40000),
            principal: request["identity"].as_str().map(str::to_string),
        },
        Peer {
            address: address(8443),
            principal: Some("spiffe://cluster.local/ns/corpus/sa/server".into()),
        },
    );
    let request = HttpRequest {
        headers,
        time_ns: None,
        metadata_context: None,
        connection: Some(Rc::new(connection)),
        body: None,
    };
    (request, body)
}

/// Runs one request through a stream as Envoy would call it; the flow at the decision.
fn run(host: &MemoryHost, root: &Root, request: &Json) -> Flow {
    let (http, body) = http_request(request);
    let length = body.as_ref().map(Vec::len);
    host.set_request(http, body.unwrap_or_default());
    let mut stream = root.stream(1).unwrap();
    let flow = stream.on_request_headers(host, length.is_none());
    match length {
        Some(length) if flow == Flow::Pause && host.reply().is_none() => {
            stream.on_request_body(host, length, true)
        }
        _ => flow,
    }
}

/// The wrapper's answer: the input and `[decision]` (`[]`: undefined); `None` when the request
/// was refused before evaluation (its status).
fn wrapped(host: &MemoryHost, root: &Root, request: &Json) -> Result<(Json, Json), u16> {
    run(host, root, request);
    let reply = host.reply().expect("the wrapper always replies");
    if reply.status != 200 {
        return Err(reply.status);
    }
    let mut answer: Json = serde_json::from_str(&reply.body).unwrap();
    Ok((answer["input"].take(), answer["result"].take()))
}

/// `value` with each number as the f64 it stands for: the recorded inputs pass through
/// Python, which writes a number its own way (`1e1` as `10.0`); the input keeps its text.
fn same_values(value: &Json) -> Json {
    match value {
        Json::Number(n) => json!(n.as_f64()),
        Json::Array(items) => Json::Array(items.iter().map(same_values).collect()),
        Json::Object(fields) => Json::Object(
            fields
                .iter()
                .map(|(k, v)| (k.clone(), same_values(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn native_json() -> PathBuf {
    root_dir().join("testdata/corpus/native.json")
}

#[test]
fn the_corpus_decides_like_opa_without_envoy() {
    let text = std::fs::read_to_string(native_json()).expect("make corpus-native");
    let mut entries: Vec<Json> = serde_json::from_str(&text).unwrap();
    let record = std::env::var_os("ZEROHOP_CORPUS_RECORD").is_some();
    let mut failures = Vec::new();
    let mut checked = 0;
    let mut previous_case = String::new();
    let host = MemoryHost::default();
    host.set_now_ms(1_767_225_600_000);
    let mut roots = None;
    for entry in &mut entries {
        let case = entry["case"].as_str().unwrap().to_string();
        let rule = entry["rule"].as_str().unwrap().to_string();
        if case != previous_case {
            let wrapped = |with_input| {
                let mut files = policy_files(entry["policy"].as_str().unwrap());
                let wrapper = wrapper(&rule, with_input);
                files.push(("zz_differential.rego".into(), wrapper.into_bytes()));
                configured(&host, files, WRAPPER_RULE, &entry["settings"])
            };
            roots = Some((wrapped(true), wrapped(false)));
            previous_case.clone_from(&case);
        }
        let (full, pruned) = roots.as_ref().unwrap();
        let label = format!(
            "{case}:{}: {} {}",
            entry["index"], entry["request"]["method"], entry["request"]["path"]
        );
        let answer = wrapped(&host, full, &entry["request"]);
        if record {
            entry["input"] = answer.map(|(input, _)| input).unwrap_or(Json::Null);
            continue;
        }
        let expected_status = entry["opa_envoy_status"].as_u64().unwrap();
        match answer {
            Err(status) => {
                if u64::from(status) != expected_status {
                    failures.push(format!(
                        "{label}: refused with {status}, OPA-Envoy answers {expected_status}"
                    ));
                }
                continue;
            }
            Ok(_) if expected_status != 200 => {
                failures.push(format!(
                    "{label}: evaluated, OPA-Envoy refuses it with {expected_status}"
                ));
                continue;
            }
            Ok((input, result)) => {
                if same_values(&input) != same_values(&entry["input"]) {
                    failures.push(format!(
                        "{label}: the input changed since OPA evaluated it (make corpus-native): {input}"
                    ));
                }
                if result != entry["expected"] {
                    failures.push(format!(
                        "{label}: decided {result}, OPA {}",
                        entry["expected"]
                    ));
                }
            }
        }
        // The same policy on the input pruned to what it reads: the same decision.
        let pruned_result = wrapped(&host, pruned, &entry["request"]).map(|(_, result)| result);
        if pruned_result.as_ref() != Ok(&entry["expected"]) {
            failures.push(format!(
                "{label}: pruned input: {pruned_result:?}, OPA {}",
                entry["expected"]
            ));
        }
        checked += 1;
    }
    if record {
        let text = serde_json::to_string_pretty(&entries).unwrap();
        std::fs::write(native_json(), text + "\n").unwrap();
        return;
    }
    assert!(
        failures.is_empty(),
        "{} of {} differ:\n{}",
        failures.len(),
        entries.len(),
        failures.join("\n")
    );
    assert!(checked >= 250, "only {checked} requests evaluated");
}
