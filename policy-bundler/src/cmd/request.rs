//! `eval --request`: one HTTP request through the filter's own request path (`Root`, `Stream`)
//! on the in-memory host, with the plugin configuration the proxy would have. What it prints
//! is what Envoy would do with the request: forward it (with the headers the decision set) or
//! answer it locally.

use std::path::Path;
use std::rc::Rc;

use anyhow::Context as _;
use base64::Engine as _;
use serde_json::{json, Map, Value as Json};
use zerohop_filter::host::memory::MemoryHost;
use zerohop_filter::host::Level;
use zerohop_filter::request::input::{Connection, HttpRequest, Peer, SocketAddress};
use zerohop_filter::root::Root;

use crate::{report, Failed};

/// What a request file may hold; everything but `path` has a default.
const REQUEST_KEYS: [&str; 9] = [
    "method",
    "path",
    "authority",
    "scheme",
    "headers",
    "body",
    "protocol",
    "source",
    "destination",
];

pub fn run(
    bundle_path: &Path,
    request_path: &Path,
    config_path: Option<&Path>,
    decision_path: Option<&str>,
) -> anyhow::Result<()> {
    let bundle = std::fs::read(bundle_path)
        .with_context(|| format!("reading bundle {}", bundle_path.display()))?;
    let request = read_json(request_path)?;
    let mut config = match config_path {
        Some(path) => read_json(path)?,
        None => json!({}),
    };
    let Some(settings) = config.as_object_mut() else {
        return Err(Failed(format!(
            "{}: the plugin configuration must be a JSON object",
            config_path.map_or_else(String::new, |p| p.display().to_string())
        ))
        .into());
    };
    // The bundle under test replaces wherever the configuration would fetch one from.
    settings.insert(
        "bundle".into(),
        json!({"inline": base64::engine::general_purpose::STANDARD.encode(&bundle)}),
    );
    if let Some(path) = decision_path {
        settings.insert("path".into(), Json::from(path));
    }
    let (http, body) =
        http_request(&request).map_err(|e| Failed(format!("{}: {e}", request_path.display())))?;

    let host = MemoryHost::default();
    let mut root = Root::default();
    if !root.configure(&host, "eval".into(), Ok(config.to_string().into_bytes())) {
        return Err(Failed(errors(&host)).into());
    }
    let length = body.as_ref().map(Vec::len);
    host.set_request(http, body.unwrap_or_default());
    let mut stream = root.stream(1).ok_or_else(|| Failed(errors(&host)))?;
    let flow = stream.on_request_headers(&host, length.is_none());
    if let Some(length) = length {
        if host.reply().is_none() && flow == zerohop_filter::stream::Flow::Pause {
            stream.on_request_body(&host, length, true);
        }
    }
    let outcome = match host.reply() {
        Some(reply) => json!({
            "action": "reply",
            "status": reply.status,
            "headers": reply.headers,
            "body": reply.body,
        }),
        None => json!({
            "action": "forward",
            "request_headers": host.request_headers(),
            "response_headers_to_add": host.response_headers(),
        }),
    };
    for (level, line) in host.take_log() {
        if level >= Level::Warn {
            report::line_stderr(&line);
        }
    }
    report::line(&outcome.to_string());
    Ok(())
}

fn read_json(path: &Path) -> anyhow::Result<Json> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| Failed(format!("{}: {e}", path.display())).into())
}

/// The error lines the host logged, for a configuration or bundle the filter refused.
fn errors(host: &MemoryHost) -> String {
    host.take_log()
        .into_iter()
        .filter(|(level, _)| *level >= Level::Warn)
        .map(|(_, line)| line)
        .collect::<Vec<_>>()
        .join("\n")
}

/// The request as Envoy would hand it to the filter.
fn http_request(request: &Json) -> Result<(HttpRequest, Option<Vec<u8>>), String> {
    let fields = request.as_object().ok_or("a request is a JSON object")?;
    if let Some(key) = fields.keys().find(|k| !REQUEST_KEYS.contains(&k.as_str())) {
        return Err(format!(
            "unknown key `{key}` (known: {})",
            REQUEST_KEYS.join(", ")
        ));
    }
    let text = |key: &str, default: Option<&str>| -> Result<String, String> {
        match (fields.get(key), default) {
            (Some(Json::String(s)), _) => Ok(s.clone()),
            (None, Some(d)) => Ok(d.to_string()),
            (None, None) => Err(format!("`{key}` is required")),
            (Some(_), _) => Err(format!("`{key}` must be a string")),
        }
    };
    let mut headers = vec![
        (
            ":authority".to_string(),
            text("authority", Some("localhost"))?,
        ),
        (":path".to_string(), text("path", None)?),
        (":method".to_string(), text("method", Some("GET"))?),
        (":scheme".to_string(), text("scheme", Some("http"))?),
    ];
    match fields.get("headers") {
        None => {}
        Some(Json::Object(map)) => {
            for (name, value) in map {
                headers.push((name.to_ascii_lowercase(), header_value(name, value)?));
            }
        }
        Some(_) => return Err("`headers` must be an object of strings".into()),
    }
    let body = match fields.get("body") {
        None => None,
        Some(Json::String(s)) => Some(s.clone().into_bytes()),
        Some(_) => return Err("`body` must be a string".into()),
    };
    let connection = Connection::new(
        text("protocol", Some("HTTP/1.1"))?,
        peer(fields, "source")?,
        peer(fields, "destination")?,
    );
    let request = HttpRequest {
        headers,
        time_ns: None,
        metadata_context: None,
        connection: Some(Rc::new(connection)),
        body: None,
    };
    Ok((request, body))
}

fn header_value(name: &str, value: &Json) -> Result<String, String> {
    value
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("header `{name}` must be a string"))
}

/// `{"address": "ip:port", "principal": "spiffe://…"}`, both optional.
fn peer(fields: &Map<String, Json>, key: &str) -> Result<Peer, String> {
    let Some(value) = fields.get(key) else {
        return Ok(Peer::default());
    };
    let object = value
        .as_object()
        .ok_or_else(|| format!("`{key}` must be an object"))?;
    let mut peer = Peer::default();
    for (field, value) in object {
        let text = value
            .as_str()
            .ok_or_else(|| format!("`{key}.{field}` must be a string"))?;
        match field.as_str() {
            "address" => {
                peer.address = Some(SocketAddress::parse(text).ok_or_else(|| {
                    format!("`{key}.address`: {text:?} is not `ip:port` or `[ipv6]:port`")
                })?);
            }
            "principal" => peer.principal = Some(text.to_string()),
            _ => {
                return Err(format!(
                    "`{key}`: unknown key `{field}` (address, principal)"
                ))
            }
        }
    }
    Ok(peer)
}
