//! The core's `Host` over `proxy_wasm::hostcalls`: each call returns a `Result` or a logged
//! fallback; nothing here unwraps. (The SDK's `Context` helpers unwrap host errors, which
//! would kill the worker's VM.) Host errors reach the core as their `Status` name.

use proxy_wasm::hostcalls;
use proxy_wasm::types::{BufferType, LogLevel, MapType, MetricType, Status};

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};

use crate::host::Shared;
use crate::host::{CallAnswer, CallResponse, Host, Level, MetricKind};

/// The header Envoy's router adds to a response that came from the upstream.
const UPSTREAM_MARKER: &str = "x-envoy-upstream-service-time";
use crate::request::decision::DecisionIds;
use crate::request::input::{Connection, HttpRequest, Peer, SocketAddress};
use crate::request::metadata;
use crate::shape::InputShape;

/// Envoy, through the proxy-wasm ABI. One per root context, shared with its streams: it
/// remembers the downstream connections it has described.
#[derive(Clone, Default)]
pub struct Envoy {
    connections: Rc<RefCell<Connections>>,
}

fn status(status: Status) -> String {
    format!("{status:?}")
}

impl Host for Envoy {
    fn http_request(&self, shape: &InputShape) -> Result<HttpRequest, String> {
        http_request(&self.connections, shape).map_err(status)
    }

    fn request_header(&self, name: &str) -> Option<String> {
        hostcalls::get_map_value(MapType::HttpRequestHeaders, name)
            .ok()
            .flatten()
    }

    fn request_path(&self) -> Option<String> {
        property_text(&["request", "path"])
    }

    fn request_body(&self, len: usize) -> Result<Vec<u8>, String> {
        Ok(hostcalls::get_buffer(BufferType::HttpRequestBody, 0, len)
            .map_err(status)?
            .unwrap_or_default())
    }

    fn set_request_header(&self, name: &str, value: &str) -> Result<(), String> {
        hostcalls::set_map_value(MapType::HttpRequestHeaders, name, Some(value)).map_err(status)
    }

    fn remove_request_header(&self, name: &str) -> Result<(), String> {
        hostcalls::remove_map_value(MapType::HttpRequestHeaders, name).map_err(status)
    }

    fn add_response_header(&self, name: &str, value: &str) -> Result<(), String> {
        hostcalls::add_map_value(MapType::HttpResponseHeaders, name, value).map_err(status)
    }

    fn set_filter_state(&self, key: &str, value: &[u8]) -> Result<(), String> {
        set_filter_state(key, value).map_err(|code| code.to_string())
    }

    fn send_reply(
        &self,
        code: u16,
        headers: &[(String, String)],
        body: &str,
    ) -> Result<(), String> {
        let headers: Vec<(&str, &str)> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let body = (!body.is_empty()).then_some(body.as_bytes());
        hostcalls::send_http_response(u32::from(code), headers, body).map_err(status)
    }

    fn resume_request(&self) -> Result<(), String> {
        hostcalls::resume_http_request().map_err(status)
    }

    fn end_stream(&self, stream: u32, reply: Option<(u16, &str)>) -> Result<(), String> {
        hostcalls::set_effective_context(stream).map_err(status)?;
        match reply {
            None => hostcalls::resume_http_request().map_err(status),
            Some((code, body)) => {
                hostcalls::send_http_response(u32::from(code), vec![], Some(body.as_bytes()))
                    .map_err(status)
            }
        }
    }

    fn http_call(
        &self,
        cluster: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        timeout_ms: u64,
    ) -> Result<u32, String> {
        hostcalls::dispatch_http_call(
            cluster,
            headers.to_vec(),
            (!body.is_empty()).then_some(body),
            Vec::new(),
            Duration::from_millis(timeout_ms),
        )
        .map_err(status)
    }

    /// Envoy answers a callout that got no response (a reset, a timeout, no healthy host)
    /// with a reply of its own (`504 upstream request timeout`); its router marks a response
    /// that came from the upstream with `x-envoy-upstream-service-time`, which is how the two
    /// are told apart. The marker is Envoy's, so the policy does not see it.
    fn http_call_answer(
        &self,
        num_headers: usize,
        body_size: usize,
        max_body: usize,
    ) -> Result<CallAnswer, String> {
        let (mut headers, body) = self.http_call_response(num_headers, body_size, max_body)?;
        let from_upstream = headers.iter().any(|(name, _)| name == UPSTREAM_MARKER);
        if !from_upstream {
            let reason = String::from_utf8_lossy(&body).into_owned();
            return Ok(CallAnswer::Failed(if reason.is_empty() {
                "no response".into()
            } else {
                reason
            }));
        }
        headers.retain(|(name, _)| name != UPSTREAM_MARKER);
        Ok(CallAnswer::Upstream((headers, body)))
    }

    /// Headers and body are read only when the host says there are some (the SDK panics on
    /// other statuses).
    fn http_call_response(
        &self,
        num_headers: usize,
        body_size: usize,
        max_body: usize,
    ) -> Result<CallResponse, String> {
        if num_headers == 0 {
            return Ok((Vec::new(), Vec::new()));
        }
        let headers = hostcalls::get_map_bytes(MapType::HttpCallResponseHeaders).map_err(status)?;
        let body = if body_size == 0 {
            Vec::new()
        } else {
            hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, body_size.min(max_body))
                .map_err(status)?
                .unwrap_or_default()
        };
        Ok((headers, body))
    }

    fn set_tick_period(&self, period: Duration) {
        if let Err(code) = hostcalls::set_tick_period(period) {
            log(
                LogLevel::Warn,
                &format!("zerohop: could not set the tick period to {period:?}: {code:?}"),
            );
        }
    }

    fn now_ns(&self) -> u64 {
        now_ns()
    }

    fn now_ms(&self) -> u64 {
        hostcalls::get_current_time()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .and_then(|d| u64::try_from(d.as_millis()).ok())
            .unwrap_or_default()
    }

    /// WASI `random_get`.
    fn decision_ids(&self) -> Option<DecisionIds> {
        DecisionIds::from_system()
    }

    /// A stat under `wasmcustom.` (the namespace Envoy gives wasm metrics).
    fn define_metric(&self, kind: MetricKind, name: &str) -> Option<u32> {
        let kind = match kind {
            MetricKind::Counter => MetricType::Counter,
            MetricKind::Gauge => MetricType::Gauge,
            MetricKind::Histogram => MetricType::Histogram,
        };
        hostcalls::define_metric(kind, name).ok()
    }

    fn increment_metric(&self, id: u32, by: u64) {
        if let Err(status) = hostcalls::increment_metric(id, i64::try_from(by).unwrap_or(i64::MAX))
        {
            log(
                LogLevel::Debug,
                &format!("zerohop: metric {id}: {status:?}"),
            );
        }
    }

    fn record_metric(&self, id: u32, value: u64) {
        if let Err(status) = hostcalls::record_metric(id, value) {
            log(
                LogLevel::Debug,
                &format!("zerohop: metric {id}: {status:?}"),
            );
        }
    }

    fn log(&self, level: Level, message: &str) {
        let level = match level {
            Level::Debug => LogLevel::Debug,
            Level::Info => LogLevel::Info,
            Level::Warn => LogLevel::Warn,
            Level::Error => LogLevel::Error,
        };
        log(level, message);
    }
}

/// Envoy's shared data (one store per VM id, all workers of the proxy); the SDK maps every
/// status it does not panic on to `Err`, and Envoy returns only those.
impl Shared for Envoy {
    fn get(&self, key: &str) -> Result<(Option<Vec<u8>>, Option<u32>), String> {
        hostcalls::get_shared_data(key).map_err(|s| format!("shared data {key}: {s:?}"))
    }

    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<bool, String> {
        match hostcalls::set_shared_data(key, Some(value), cas) {
            Ok(()) => Ok(true),
            Err(Status::CasMismatch) => Ok(false),
            Err(s) => Err(format!("shared data {key}: {s:?}")),
        }
    }
}

fn log(level: LogLevel, message: &str) {
    // Logging is best effort: there is nowhere else to report a failure to log.
    let _ = hostcalls::log(level, message);
}

/// `plugin_name`, to tell plugins apart in the log.
pub fn plugin_name() -> String {
    property_text(&["plugin_name"]).unwrap_or_else(|| "zerohop".to_string())
}

/// The plugin configuration bytes (`WasmPlugin.pluginConfig` as JSON).
pub fn plugin_configuration(size: usize) -> Result<Vec<u8>, String> {
    Ok(
        hostcalls::get_buffer(BufferType::PluginConfiguration, 0, size)
            .map_err(status)?
            .unwrap_or_default(),
    )
}

/// A property as UTF-8 text, `None` when the host does not have it (e.g. no TLS).
fn property_text(path: &[&str]) -> Option<String> {
    match hostcalls::get_property(path.to_vec()) {
        Ok(Some(bytes)) if !bytes.is_empty() => Some(String::from_utf8_lossy(&bytes).into_owned()),
        Ok(_) => None,
        Err(status) => {
            log(
                LogLevel::Debug,
                &format!(
                    "zerohop: property {} unavailable: {status:?}",
                    path.join(".")
                ),
            );
            None
        }
    }
}

/// The host's wall clock in nanoseconds since the Unix epoch (0 if it has none).
fn now_ns() -> u64 {
    hostcalls::get_current_time()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .and_then(|d| u64::try_from(d.as_nanos()).ok())
        .unwrap_or(0)
}

/// Everything the `input` document needs from the request headers phase.
fn http_request(
    connections: &RefCell<Connections>,
    shape: &InputShape,
) -> Result<HttpRequest, Status> {
    let headers: Vec<(String, String)> = hostcalls::get_map_bytes(MapType::HttpRequestHeaders)?
        .into_iter()
        .map(|(name, value)| {
            // Valid UTF-8 (nearly always) keeps its buffer; anything else gets U+FFFD.
            let value = String::from_utf8(value)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
            (name, value)
        })
        .collect();
    // The host clock, not the `request.time` property: at the request headers they differ by
    // microseconds, and the clock costs no property lookup.
    let time_ns = shape
        .request_time
        .then(|| i64::try_from(now_ns()).ok().filter(|t| *t != 0))
        .flatten();
    // What the policy never reads is not asked of Envoy.
    Ok(HttpRequest {
        headers,
        time_ns,
        metadata_context: shape.metadata_context.then(metadata_context).flatten(),
        connection: shape
            .needs_connection()
            .then(|| match connections.try_borrow_mut() {
                Ok(mut connections) => connections.current(),
                // Only by re-entrance: describe the connection without remembering it.
                Err(_) => Rc::new(connection()),
            }),
        body: None,
    })
}

/// The request's dynamic metadata the policy sees (e.g. the `jwt_authn` payload). One lookup of
/// the whole `Metadata` message: asking for a namespace would get the Struct flattened into
/// proxy-wasm pairs, which lose the value types.
fn metadata_context() -> Option<regorus::Value> {
    let bytes = match hostcalls::get_property(vec!["metadata"]) {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return None,
        Err(status) => {
            log(
                LogLevel::Debug,
                &format!("zerohop: property metadata unavailable: {status:?}"),
            );
            return None;
        }
    };
    metadata::filter_metadata(&bytes).unwrap_or_else(|e| {
        log(LogLevel::Warn, &format!("zerohop: {e}"));
        None
    })
}

/// The downstream connections this VM has seen, so each is described to the policy once, not
/// once per request. Envoy's connection ids are never reused; entries of closed connections
/// are dropped wholesale when the table is full.
#[derive(Default)]
struct Connections {
    known: HashMap<u64, Rc<Connection>>,
}

const MAX_CONNECTIONS: usize = 1024;

impl Connections {
    fn current(&mut self) -> Rc<Connection> {
        let Some(id) = property_i64(&["connection", "id"]).and_then(|id| u64::try_from(id).ok())
        else {
            return Rc::new(connection());
        };
        if let Some(known) = self.known.get(&id) {
            return Rc::clone(known);
        }
        if self.known.len() >= MAX_CONNECTIONS {
            self.known.clear();
        }
        let fresh = Rc::new(connection());
        self.known.insert(id, Rc::clone(&fresh));
        fresh
    }
}

fn connection() -> Connection {
    // Certificates exist only on TLS connections; asking first saves six lookups otherwise.
    let tls = property_text(&["connection", "tls_version"]).is_some();
    let mtls = tls && property_bool(&["connection", "mtls"]);
    Connection::new(
        property_text(&["request", "protocol"]).unwrap_or_default(),
        Peer {
            address: address("source"),
            principal: if mtls { principal("peer") } else { None },
        },
        Peer {
            address: address("destination"),
            principal: if tls { principal("local") } else { None },
        },
    )
}

fn address(side: &str) -> Option<SocketAddress> {
    property_text(&[side, "address"]).and_then(|a| SocketAddress::parse(&a))
}

/// A certificate's identity, chosen as Envoy's ext_authz does: URI SAN, else DNS SAN, else
/// subject.
fn principal(certificate: &str) -> Option<String> {
    ["uri_san", "dns_san", "subject"].iter().find_map(|kind| {
        property_text(&["connection", &format!("{kind}_{certificate}_certificate")])
    })
}

/// An integer property (8 bytes, little-endian).
fn property_i64(path: &[&str]) -> Option<i64> {
    match hostcalls::get_property(path.to_vec()) {
        Ok(Some(bytes)) => bytes.try_into().ok().map(i64::from_le_bytes),
        _ => None,
    }
}

/// A boolean property (one byte on the wire); absent means false.
fn property_bool(path: &[&str]) -> bool {
    matches!(hostcalls::get_property(path.to_vec()), Ok(Some(bytes)) if bytes.first() == Some(&1))
}

#[link(wasm_import_module = "env")]
extern "C" {
    // The SDK's `hostcalls::set_property` panics on any status but `Ok`, and Envoy answers
    // `NotFound` when the stream has no stream info: the filter calls the import itself.
    fn proxy_set_property(
        path_data: *const u8,
        path_size: usize,
        value_data: *const u8,
        value_size: usize,
    ) -> u32;
}

/// Stores `value` in the request's filter state under `wasm.<key>` (Envoy's `setProperty`),
/// where later filters (a wasm filter's `get_property([key])`) and access logs
/// (`%FILTER_STATE(wasm.<key>:PLAIN)%`) read it. Returns the host's status code on failure.
fn set_filter_state(key: &str, value: &[u8]) -> Result<(), u32> {
    // SAFETY: both pointers come from live slices whose lengths are passed with them; the host
    // copies the bytes before returning and keeps no pointer.
    #[allow(unsafe_code)] // the one raw hostcall: the SDK's wrapper would panic and kill the VM
    let status =
        unsafe { proxy_set_property(key.as_ptr(), key.len(), value.as_ptr(), value.len()) };
    match status {
        0 => Ok(()),
        other => Err(other),
    }
}
