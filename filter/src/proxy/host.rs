//! Host reads and writes, each returning a `Result` or a logged fallback; nothing here unwraps.
//! (The SDK's `Context` helpers unwrap host errors, which would kill the worker's VM.)

use proxy_wasm::hostcalls;
use proxy_wasm::types::{BufferType, LogLevel, MapType, Status};

use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};

use crate::request::input::{Connection, HttpRequest, Peer, SocketAddress};
use crate::request::metadata;
use crate::request::shape::InputShape;

pub fn log(level: LogLevel, message: &str) {
    // Logging is best effort: there is nowhere else to report a failure to log.
    let _ = hostcalls::log(level, message);
}

/// The plugin configuration bytes (`WasmPlugin.pluginConfig` as JSON).
pub fn plugin_configuration(size: usize) -> Result<Vec<u8>, Status> {
    Ok(hostcalls::get_buffer(BufferType::PluginConfiguration, 0, size)?.unwrap_or_default())
}

/// A property as UTF-8 text, `None` when the host does not have it (e.g. no TLS).
pub fn property_text(path: &[&str]) -> Option<String> {
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
pub fn now_ns() -> u64 {
    hostcalls::get_current_time()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .and_then(|d| u64::try_from(d.as_nanos()).ok())
        .unwrap_or(0)
}

/// Everything the `input` document needs from the request headers phase.
pub fn http_request(
    connections: &mut Connections,
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
        connection: shape.needs_connection().then(|| connections.current()),
        body: None,
    })
}

/// One request header, `None` when absent or unreadable.
pub fn request_header(name: &str) -> Option<String> {
    hostcalls::get_map_value(MapType::HttpRequestHeaders, name)
        .ok()
        .flatten()
}

/// The first `len` bytes of the request body Envoy buffered.
pub fn request_body(len: usize) -> Result<Vec<u8>, Status> {
    Ok(hostcalls::get_buffer(BufferType::HttpRequestBody, 0, len)?.unwrap_or_default())
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
pub struct Connections {
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
pub fn set_filter_state(key: &str, value: &[u8]) -> Result<(), u32> {
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

pub fn set_request_header(name: &str, value: &str) -> Result<(), Status> {
    hostcalls::set_map_value(MapType::HttpRequestHeaders, name, Some(value))
}

pub fn add_header(map: MapType, name: &str, value: &str) -> Result<(), Status> {
    hostcalls::add_map_value(map, name, value)
}

pub fn remove_request_header(name: &str) -> Result<(), Status> {
    hostcalls::remove_map_value(MapType::HttpRequestHeaders, name)
}

pub fn send_reply(status: u16, headers: &[(String, String)], body: &str) -> Result<(), Status> {
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let body = (!body.is_empty()).then_some(body.as_bytes());
    hostcalls::send_http_response(u32::from(status), headers, body)
}

/// Milliseconds since the epoch by the host clock (0 if the host has none).
pub fn now_ms() -> u64 {
    hostcalls::get_current_time()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .and_then(|d| u64::try_from(d.as_millis()).ok())
        .unwrap_or_default()
}

/// Ends a stream that waits for a body the host holds back, from the root context: 503, or
/// let through when the plugin fails open.
pub fn end_stalled_request(stream: u32, let_through: bool) -> Result<(), Status> {
    hostcalls::set_effective_context(stream)?;
    if let_through {
        hostcalls::resume_http_request()
    } else {
        hostcalls::send_http_response(
            503,
            vec![],
            Some(b"request body not delivered to the filter"),
        )
    }
}

/// Envoy's shared data (one store per VM id, all workers of the proxy); the SDK maps every
/// status it does not panic on to `Err`, and Envoy returns only those.
pub struct SharedData;

impl crate::bundle::lease::Shared for SharedData {
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

/// Starts an HTTP callout; `BadArgument` means e.g. an unknown cluster.
pub fn http_call(cluster: &str, headers: &[(&str, &str)], timeout_ms: u64) -> Result<u32, Status> {
    hostcalls::dispatch_http_call(
        cluster,
        headers.to_vec(),
        None,
        Vec::new(),
        std::time::Duration::from_millis(timeout_ms),
    )
}

/// A callout's response headers and body.
pub type CallResponse = (Vec<(String, Vec<u8>)>, Vec<u8>);

/// A callout's answer. Headers and body are read only when the host says there are some (the
/// SDK panics on other statuses); at most `max_body` bytes of the body are copied into the VM.
pub fn http_call_response(
    num_headers: usize,
    body_size: usize,
    max_body: usize,
) -> Result<CallResponse, Status> {
    if num_headers == 0 {
        return Ok((Vec::new(), Vec::new()));
    }
    let headers = hostcalls::get_map_bytes(MapType::HttpCallResponseHeaders)?;
    let body = if body_size == 0 {
        Vec::new()
    } else {
        hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, body_size.min(max_body))?
            .unwrap_or_default()
    };
    Ok((headers, body))
}

pub fn set_tick_period(period: Duration) {
    // The SDK panics on any status but Ok, and Envoy answers Ok.
    let _ = hostcalls::set_tick_period(period);
}

/// A stat under `wasmcustom.` (the namespace Envoy gives wasm metrics).
pub fn define_metric(kind: proxy_wasm::types::MetricType, name: &str) -> Option<u32> {
    hostcalls::define_metric(kind, name).ok()
}

pub fn increment_metric(id: u32, by: u64) {
    if let Err(status) = hostcalls::increment_metric(id, i64::try_from(by).unwrap_or(i64::MAX)) {
        log(
            LogLevel::Debug,
            &format!("zerohop: metric {id}: {status:?}"),
        );
    }
}

pub fn record_metric(id: u32, value: u64) {
    if let Err(status) = hostcalls::record_metric(id, value) {
        log(
            LogLevel::Debug,
            &format!("zerohop: metric {id}: {status:?}"),
        );
    }
}
