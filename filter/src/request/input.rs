//! The OPA-Envoy v3 `input` document, built straight into regorus values (no JSON round trip).
//!
//! The shape is what opa-envoy-plugin builds from Envoy's `CheckRequest` (protojson names,
//! lowerCamelCase, only populated fields) plus its own keys: `parsed_path`, `parsed_query`,
//! `parsed_body`, `truncated_body`, `version` and `source_principal`.

use std::borrow::Cow;
use std::rc::Rc;
use std::sync::LazyLock;

use regorus::Value;

use base64::Engine as _;

use super::body::{self, Body, BodyError, BodySettings, PARTIAL_BODY_HEADER};
use super::path::{parse_target, PathError};
use crate::shape::{HttpShape, InputShape};

/// What Envoy tells the filter about one request when its headers arrive.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HttpRequest {
    /// Header entries in arrival order, pseudo-headers (`:path`, `:method`…) included. The
    /// request id (`attributes.request.http.id`) is the `x-request-id` header.
    pub headers: Vec<(String, String)>,
    /// When the request started, in nanoseconds since the Unix epoch.
    pub time_ns: Option<i64>,
    /// `attributes.metadataContext` when the request has dynamic metadata the policy sees
    /// (`metadata::filter_metadata`); `{}` otherwise.
    pub metadata_context: Option<Value>,
    /// The downstream connection the request came on; `None` when the policy reads nothing of
    /// it (`InputShape::needs_connection`).
    pub connection: Option<Rc<Connection>>,
    /// The body buffered for the decision (`with_request_body`), when the request has one.
    pub body: Option<Body>,
}

/// What is the same for every request on one downstream connection. The adapter keeps one per
/// connection, and the input reuses its prebuilt peer values instead of asking Envoy and
/// allocating them again for each request.
#[derive(Debug, Clone, PartialEq)]
pub struct Connection {
    /// `HTTP/1.0`, `HTTP/1.1`, `HTTP/2` or `HTTP/3`.
    pub protocol: String,
    /// The downstream peer.
    pub source: Peer,
    /// This proxy's side of the connection.
    pub destination: Peer,
    source_value: Value,
    destination_value: Value,
}

impl Connection {
    pub fn new(protocol: String, source: Peer, destination: Peer) -> Self {
        Self {
            source_value: peer(&source),
            destination_value: peer(&destination),
            protocol,
            source,
            destination,
        }
    }
}

/// One end of the downstream connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Peer {
    pub address: Option<SocketAddress>,
    /// The certificate's URI SAN (under Istio mTLS, the SPIFFE id), else DNS SAN, else subject.
    pub principal: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketAddress {
    pub address: String,
    pub port: u32,
}

impl SocketAddress {
    /// Parses Envoy's `ip:port` / `[ipv6]:port` rendering of an address.
    pub fn parse(text: &str) -> Option<Self> {
        let (host, port) = text.rsplit_once(':')?;
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        Some(Self {
            address: host.to_string(),
            port: port.parse().ok()?,
        })
    }
}

/// A request whose `input` cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    /// OPA-Envoy answers 400.
    #[error("request_parse_error: error parsing path and query: {0}")]
    Path(#[from] PathError),
    /// OPA-Envoy answers 400.
    #[error("request_parse_error: {0}")]
    Body(#[from] BodyError),
    /// Envoy would put these bytes in the check request's `body` string, which OPA-Envoy's
    /// gRPC server cannot decode: the check fails, so the request gets `status_on_error`.
    #[error("request body is not UTF-8: set with_request_body.pack_as_bytes to hand binary bodies to the policy")]
    BodyNotUtf8,
}

impl InputError {
    /// Whether OPA-Envoy answers this request with 400 (`request_parse_error`); otherwise the
    /// check itself fails.
    pub fn is_bad_request(&self) -> bool {
        !matches!(self, InputError::BodyNotUtf8)
    }
}

/// Envoy's ext_authz takes `attributes.source.service` from this header (set by another Envoy
/// for its internal requests, removed from external ones).
const SERVICE_CLUSTER_HEADER: &str = "x-envoy-downstream-service-cluster";

/// Object keys and constant parts of the input, allocated once per VM rather than per request
/// (regorus values are reference-counted, so a clone is a counter increment).
struct Constants {
    /// `attributes.request.http` fields that repeat a header: (field, header name).
    mirrored_headers: [(Value, &'static str); 5],
    attributes: Value,
    source: Value,
    destination: Value,
    request: Value,
    http: Value,
    headers: Value,
    protocol: Value,
    time: Value,
    body: Value,
    raw_body: Value,
    size: Value,
    metadata_context: Value,
    route_metadata_context: Value,
    service: Value,
    parsed_path: Value,
    parsed_query: Value,
    parsed_body: Value,
    truncated_body: Value,
    version: Value,
    source_principal: Value,
    version_value: Value,
    empty_object: Value,
}

static CONSTANTS: LazyLock<Constants> = LazyLock::new(|| Constants {
    mirrored_headers: [
        ("id", "x-request-id"),
        ("method", ":method"),
        ("path", ":path"),
        ("host", ":authority"),
        ("scheme", ":scheme"),
    ]
    .map(|(field, header)| (Value::from(field), header)),
    attributes: Value::from("attributes"),
    source: Value::from("source"),
    destination: Value::from("destination"),
    request: Value::from("request"),
    http: Value::from("http"),
    headers: Value::from("headers"),
    protocol: Value::from("protocol"),
    time: Value::from("time"),
    body: Value::from("body"),
    raw_body: Value::from("rawBody"),
    size: Value::from("size"),
    metadata_context: Value::from("metadataContext"),
    route_metadata_context: Value::from("routeMetadataContext"),
    service: Value::from("service"),
    parsed_path: Value::from("parsed_path"),
    parsed_query: Value::from("parsed_query"),
    parsed_body: Value::from("parsed_body"),
    truncated_body: Value::from("truncated_body"),
    version: Value::from("version"),
    source_principal: Value::from("source_principal"),
    version_value: Object::with("ext_authz", Value::from("v3"))
        .and("encoding", Value::from("protojson"))
        .into_value(),
    empty_object: Value::new_object(),
});

/// Builds the `input` document for a request (at the request headers, or once its body is
/// buffered), with the parts of it `shape` names. The path and the body are parsed whatever
/// the shape: OPA-Envoy answers 400 to a request it cannot parse, before any policy runs.
pub fn build(
    request: &HttpRequest,
    bodies: &BodySettings,
    shape: &InputShape,
) -> Result<Value, InputError> {
    let c = &*CONSTANTS;
    let mut joined = JoinedHeaders::join(
        request
            .headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str())),
    );
    if let Some(body) = &request.body {
        // Envoy's ext_authz adds this header whenever the check carries a body.
        let partial = if body.partial { "true" } else { "false" };
        joined.set(PARTIAL_BODY_HEADER, partial);
    }
    let target = parse_target(joined.get(":path").unwrap_or_default())?;
    // A body Envoy cannot put in the check fails it before OPA-Envoy parses anything.
    let body = match &request.body {
        Some(body) => body_fields(body, bodies, &shape.http)?,
        None => Vec::new(),
    };
    let parsed_body = if bodies.skip_request_body_parse {
        None
    } else {
        // Without a body in the check this is `null`, `false`.
        let payload = request
            .body
            .as_ref()
            .map_or(&[][..], |b| b.bytes.as_slice());
        Some(body::parse(&joined, payload)?)
    };
    let connection = request.connection.as_deref();

    let mut input = Vec::with_capacity(7);
    if shape.attributes() {
        let mut attributes = Vec::with_capacity(5);
        if shape.source {
            let mut source =
                connection.map_or_else(|| c.empty_object.clone(), |c| c.source_value.clone());
            if let Some(service) = joined.get(SERVICE_CLUSTER_HEADER).filter(|s| !s.is_empty()) {
                // Copy-on-write: the connection's cached value stays as it was.
                if let Ok(fields) = source.as_object_mut() {
                    fields.insert(c.service.clone(), Value::from(service));
                }
            }
            attributes.push((c.source.clone(), source));
        }
        if shape.destination {
            let destination =
                connection.map_or_else(|| c.empty_object.clone(), |c| c.destination_value.clone());
            attributes.push((c.destination.clone(), destination));
        }
        if shape.request() {
            let mut attributes_request = Vec::with_capacity(2);
            if shape.http.present {
                let http = http(&joined, body, connection, &shape.http);
                attributes_request.push((c.http.clone(), http));
            }
            if let Some(nanos) = request.time_ns.filter(|_| shape.request_time) {
                attributes_request.push((c.time.clone(), timestamp(nanos)));
            }
            attributes.push((c.request.clone(), object(attributes_request)));
        }
        // Envoy always sets both (possibly empty) metadata messages.
        if shape.metadata_context {
            let context = request
                .metadata_context
                .clone()
                .unwrap_or_else(|| c.empty_object.clone());
            attributes.push((c.metadata_context.clone(), context));
        }
        if shape.route_metadata_context {
            attributes.push((c.route_metadata_context.clone(), c.empty_object.clone()));
        }
        input.push((c.attributes.clone(), object(attributes)));
    }
    if shape.parsed_path {
        let segments = target
            .segments
            .iter()
            .map(|s| Value::from(s.as_ref()))
            .collect::<Vec<_>>();
        input.push((c.parsed_path.clone(), Value::from(segments)));
    }
    if shape.parsed_query {
        let query = target
            .query
            .iter()
            .map(|(k, vs)| {
                let values = vs
                    .iter()
                    .map(|v| Value::from(v.as_ref()))
                    .collect::<Vec<_>>();
                (Value::from(k.as_ref()), Value::from(values))
            })
            .collect::<Vec<_>>();
        input.push((c.parsed_query.clone(), object(query)));
    }
    if shape.version {
        input.push((c.version.clone(), c.version_value.clone()));
    }
    if let Some((parsed, truncated)) = parsed_body {
        if shape.parsed_body {
            input.push((c.parsed_body.clone(), parsed));
        }
        if shape.truncated_body {
            input.push((c.truncated_body.clone(), Value::from(truncated)));
        }
    }
    if let Some(principal) = connection
        .and_then(|c| c.source.principal.as_deref())
        .filter(|p| !p.is_empty() && shape.source_principal)
    {
        input.push((c.source_principal.clone(), Value::from(principal)));
    }
    Ok(object(input))
}

/// `attributes.request.http`: the fields that repeat a header, the headers, the body and the
/// protocol, as `shape` asks.
fn http(
    joined: &JoinedHeaders<'_>,
    body: Vec<(Value, Value)>,
    connection: Option<&Connection>,
    shape: &HttpShape,
) -> Value {
    let c = &*CONSTANTS;
    let mut http = Vec::with_capacity(c.mirrored_headers.len() + 4);
    let mirrored = [shape.id, shape.method, shape.path, shape.host, shape.scheme];
    for ((field, header), wanted) in c.mirrored_headers.iter().zip(mirrored) {
        // protojson leaves out empty strings.
        let value = joined.get(header).filter(|v| !v.is_empty());
        if let Some(value) = value.filter(|_| wanted) {
            http.push((field.clone(), Value::from(value)));
        }
    }
    if let Some(wanted) = &shape.headers {
        let headers = joined
            .iter()
            .filter(|(name, _)| wanted.includes(name))
            .map(|(k, v)| (Value::from(k), Value::from(v)))
            .collect();
        http.push((c.headers.clone(), object(headers)));
    }
    http.extend(body);
    let protocol = connection.map_or("", |c| c.protocol.as_str());
    if shape.protocol && !protocol.is_empty() {
        http.push((c.protocol.clone(), Value::from(protocol)));
    }
    object(http)
}

/// `body` or `rawBody`, and `size`, as `shape` asks. A body that is not UTF-8 fails without
/// `pack_as_bytes` whether or not the policy reads it: OPA-Envoy cannot decode the check.
fn body_fields(
    body: &Body,
    bodies: &BodySettings,
    shape: &HttpShape,
) -> Result<Vec<(Value, Value)>, InputError> {
    let wanted = shape.body;
    let c = &*CONSTANTS;
    let packed = bodies.with_request_body.is_some_and(|w| w.pack_as_bytes);
    let mut fields = Vec::with_capacity(2);
    // protojson leaves out an empty body and a zero size.
    if !body.bytes.is_empty() {
        if packed {
            if wanted {
                // protomap keeps `bytes` as Go bytes, which OPA's JSON round trip makes base64.
                let encoded = base64::engine::general_purpose::STANDARD.encode(&body.bytes);
                fields.push((c.raw_body.clone(), Value::from(encoded)));
            }
        } else {
            let text = std::str::from_utf8(&body.bytes).map_err(|_| InputError::BodyNotUtf8)?;
            if wanted {
                fields.push((c.body.clone(), Value::from(text)));
            }
        }
    }
    if body.received > 0 && shape.size {
        fields.push((c.size.clone(), Value::from(body.received)));
    }
    Ok(fields)
}

/// An object from entries in any order (a repeated key: the last entry wins), built without
/// an intermediate map.
fn object(entries: Vec<(Value, Value)>) -> Value {
    Value::from(regorus::value::Object::from(entries))
}

/// Request headers as Envoy's ext_authz hands them to OPA-Envoy: names lower-cased, repeated
/// headers joined with `,` in arrival order. Sorted by name in a vector, which for the dozen
/// headers of a request costs fewer allocations and comparisons than a map.
#[derive(Debug, Default)]
pub struct JoinedHeaders<'a>(Vec<(Cow<'a, str>, Cow<'a, str>)>);

impl<'a> JoinedHeaders<'a> {
    /// Envoy hands over names already lower-cased, so the common path copies no string. A
    /// client's own partial-body header is dropped (Envoy's is added with the body).
    pub fn join(entries: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let entries = entries.into_iter();
        let mut headers = Vec::with_capacity(entries.size_hint().0 + 1);
        for (name, value) in entries {
            let name = if name.bytes().any(|b| b.is_ascii_uppercase()) {
                Cow::Owned(name.to_ascii_lowercase())
            } else {
                Cow::Borrowed(name)
            };
            if name != PARTIAL_BODY_HEADER {
                headers.push((name, Cow::Borrowed(value)));
            }
        }
        // A stable sort: repeated headers stay in arrival order.
        headers.sort_by(|(a, _), (b, _)| a.cmp(b));
        headers.dedup_by(|(name, value), (kept_name, kept)| {
            if name != kept_name {
                return false;
            }
            let joined = kept.to_mut();
            joined.push(',');
            joined.push_str(value);
            true
        });
        Self(headers)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        let found = self
            .0
            .binary_search_by(|(n, _)| n.as_ref().cmp(name))
            .ok()?;
        self.0.get(found).map(|(_, value)| value.as_ref())
    }

    /// Sets `name` (lower-case) to `value`, replacing what was there.
    pub fn set(&mut self, name: &'a str, value: &'a str) {
        match self.0.binary_search_by(|(n, _)| n.as_ref().cmp(name)) {
            Ok(found) => {
                if let Some(entry) = self.0.get_mut(found) {
                    entry.1 = Cow::Borrowed(value);
                }
            }
            Err(at) => self
                .0
                .insert(at, (Cow::Borrowed(name), Cow::Borrowed(value))),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_ref(), v.as_ref()))
    }
}

/// A protobuf `Timestamp` the way OPA-Envoy's protomap renders it: `{"seconds", "nanos"}`,
/// zero fields left out.
fn timestamp(nanos_since_epoch: i64) -> Value {
    let seconds = nanos_since_epoch.div_euclid(1_000_000_000);
    let nanos = nanos_since_epoch.rem_euclid(1_000_000_000);
    let mut object = Object::default();
    if seconds != 0 {
        object.insert("seconds", Value::from(seconds));
    }
    if nanos != 0 {
        object.insert("nanos", Value::from(nanos));
    }
    object.into_value()
}

fn peer(peer: &Peer) -> Value {
    let mut object = Object::default();
    if let Some(address) = &peer.address {
        let mut socket = Object::default();
        socket.string("address", &address.address);
        if address.port != 0 {
            socket.insert("portValue", Value::from(u64::from(address.port)));
        }
        object.insert(
            "address",
            Object::with("socketAddress", socket.into_value()).into_value(),
        );
    }
    if let Some(principal) = &peer.principal {
        object.string("principal", principal);
    }
    object.into_value()
}

/// A small builder over regorus objects that, like protojson, leaves out empty strings.
#[derive(Default)]
struct Object(Vec<(Value, Value)>);

impl Object {
    fn with(key: &str, value: Value) -> Self {
        let mut object = Self::default();
        object.insert(key, value);
        object
    }

    fn and(mut self, key: &str, value: Value) -> Self {
        self.insert(key, value);
        self
    }

    fn insert(&mut self, key: &str, value: Value) {
        self.0.push((Value::from(key), value));
    }

    fn string(&mut self, key: &str, value: &str) {
        if !value.is_empty() {
            self.insert(key, Value::from(value));
        }
    }

    fn into_value(self) -> Value {
        object(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// regorus patch 4 (`Object::from(Vec)`): any order in, sorted object out, the last of
    /// repeated keys kept, equal to the same object built by inserts.
    #[test]
    fn objects_from_entries_sort_and_keep_the_last_repeat() {
        let entries = vec![
            (Value::from("b"), Value::from(1)),
            (Value::from("a"), Value::from(2)),
            (Value::from("b"), Value::from(3)),
            (Value::from("c"), Value::from(4)),
            (Value::from("b"), Value::from(5)),
        ];
        let built = object(entries.clone());
        let mut inserted = Value::new_object();
        for (k, v) in entries {
            inserted.as_object_mut().unwrap().insert(k, v);
        }
        assert_eq!(built, inserted);
        assert_eq!(
            built.to_json_str().unwrap(),
            Value::from_json_str(r#"{"a":2,"b":5,"c":4}"#)
                .unwrap()
                .to_json_str()
                .unwrap()
        );
        assert_eq!(object(Vec::new()), Value::new_object());
    }

    fn full(request: &HttpRequest, bodies: &BodySettings) -> Result<Value, InputError> {
        build(request, bodies, &InputShape::everything())
    }

    fn request(path: &str) -> HttpRequest {
        HttpRequest {
            headers: vec![
                (":authority".into(), "example.com".into()),
                (":path".into(), path.into()),
                (":method".into(), "GET".into()),
                (":scheme".into(), "http".into()),
                ("X-Multi".into(), "a".into()),
                ("x-multi".into(), "b".into()),
                ("x-envoy-auth-partial-body".into(), "true".into()),
                ("x-request-id".into(), "42".into()),
            ],
            time_ns: Some(1_605_865_667_722_473_000),
            metadata_context: None,
            connection: Some(Rc::new(connection(Some(
                "spiffe://cluster.local/ns/shop/sa/web",
            )))),
            body: None,
        }
    }

    fn connection(principal: Option<&str>) -> Connection {
        Connection::new(
            "HTTP/1.1".into(),
            Peer {
                address: SocketAddress::parse("10.0.0.1:5555"),
                principal: principal.map(String::from),
            },
            Peer {
                address: SocketAddress::parse("[::1]:8080"),
                principal: None,
            },
        )
    }

    #[test]
    fn builds_the_opa_envoy_document() {
        let input = full(
            &request("/people/a%20b?lang=en&id=1&id=2"),
            &BodySettings::default(),
        )
        .unwrap();
        let expected = serde_json::json!({
            "attributes": {
                "source": {
                    "address": {"socketAddress": {"address": "10.0.0.1", "portValue": 5555}},
                    "principal": "spiffe://cluster.local/ns/shop/sa/web"
                },
                "destination": {
                    "address": {"socketAddress": {"address": "::1", "portValue": 8080}}
                },
                "request": {"http": {
                    "id": "42",
                    "method": "GET",
                    "headers": {
                        ":authority": "example.com",
                        ":path": "/people/a%20b?lang=en&id=1&id=2",
                        ":method": "GET",
                        ":scheme": "http",
                        "x-multi": "a,b",
                        "x-request-id": "42"
                    },
                    "path": "/people/a%20b?lang=en&id=1&id=2",
                    "host": "example.com",
                    "scheme": "http",
                    "protocol": "HTTP/1.1"
                },
                "time": {"seconds": 1_605_865_667_i64, "nanos": 722_473_000}},
                "metadataContext": {},
                "routeMetadataContext": {}
            },
            "parsed_path": ["people", "a b"],
            "parsed_query": {"lang": ["en"], "id": ["1", "2"]},
            "parsed_body": null,
            "truncated_body": false,
            "version": {"ext_authz": "v3", "encoding": "protojson"},
            "source_principal": "spiffe://cluster.local/ns/shop/sa/web"
        });
        assert_eq!(input, Value::from(expected));
    }

    #[test]
    fn no_principal_no_source_principal() {
        let mut req = request("/");
        req.connection = Some(Rc::new(connection(None)));
        let input = full(&req, &BodySettings::default()).unwrap();
        assert_eq!(input["source_principal"], Value::Undefined);
        assert_eq!(input["parsed_path"], Value::from(vec![Value::from("")]));
    }

    #[test]
    fn grpc_paths_split_into_service_and_method() {
        let input = full(&request("/pkg.Service/Method"), &BodySettings::default()).unwrap();
        assert_eq!(
            input["parsed_path"],
            Value::from(vec![Value::from("pkg.Service"), Value::from("Method")])
        );
    }

    #[test]
    fn dynamic_metadata_and_service_cluster() {
        let mut req = request("/");
        let context = Value::from(serde_json::json!({"filterMetadata": {
            "envoy.filters.http.jwt_authn": {"payload": {"sub": "alice"}}}}));
        req.metadata_context = Some(context.clone());
        req.headers.push((
            "x-envoy-downstream-service-cluster".into(),
            "frontend".into(),
        ));
        let input = full(&req, &BodySettings::default()).unwrap();
        assert_eq!(input["attributes"]["metadataContext"], context);
        assert_eq!(
            input["attributes"]["source"]["service"],
            Value::from("frontend")
        );
        // The connection's cached peer is left as it was for the next request.
        let input = full(&request("/"), &BodySettings::default()).unwrap();
        assert_eq!(input["attributes"]["source"]["service"], Value::Undefined);
    }

    #[test]
    fn bad_escape_is_a_parse_error() {
        let err = full(&request("/a%zz"), &BodySettings::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "request_parse_error: error parsing path and query: invalid URL escape \"%zz\""
        );
    }

    fn with_body(content_type: &str, bytes: &[u8], partial: bool) -> HttpRequest {
        let mut req = request("/upload");
        req.headers
            .retain(|(name, _)| name != "x-envoy-auth-partial-body");
        req.headers
            .push(("content-type".into(), content_type.into()));
        req.body = Some(Body {
            bytes: bytes.to_vec(),
            partial,
            received: 41,
        });
        req
    }

    fn settings(pack_as_bytes: bool, skip_request_body_parse: bool) -> BodySettings {
        BodySettings {
            with_request_body: Some(super::body::WithRequestBody {
                max_request_bytes: 1024,
                allow_partial_message: true,
                pack_as_bytes,
            }),
            skip_request_body_parse,
        }
    }

    #[test]
    fn body_as_envoy_sends_it_and_opa_envoy_parses_it() {
        let req = with_body("application/json", br#"{"firstname":"Charlie"}"#, false);
        let input = full(&req, &settings(false, false)).unwrap();
        let http = &input["attributes"]["request"]["http"];
        assert_eq!(http["body"], Value::from(r#"{"firstname":"Charlie"}"#));
        assert_eq!(http["rawBody"], Value::Undefined);
        assert_eq!(http["size"], Value::from(41_u64));
        assert_eq!(
            http["headers"]["x-envoy-auth-partial-body"],
            Value::from("false")
        );
        assert_eq!(input["parsed_body"]["firstname"], Value::from("Charlie"));
        assert_eq!(input["truncated_body"], Value::from(false));

        let packed = full(&req, &settings(true, false)).unwrap();
        let http = &packed["attributes"]["request"]["http"];
        assert_eq!(http["body"], Value::Undefined);
        assert_eq!(
            http["rawBody"],
            Value::from("eyJmaXJzdG5hbWUiOiJDaGFybGllIn0=")
        );
        assert_eq!(packed["parsed_body"], input["parsed_body"]);
    }

    #[test]
    fn partial_body_is_truncated_and_unparsed() {
        let req = with_body("application/json", br#"{"firstna"#, true);
        let input = full(&req, &settings(false, false)).unwrap();
        assert_eq!(
            input["attributes"]["request"]["http"]["headers"]["x-envoy-auth-partial-body"],
            Value::from("true")
        );
        assert_eq!(
            input["attributes"]["request"]["http"]["body"],
            Value::from(r#"{"firstna"#)
        );
        assert_eq!(input["parsed_body"], Value::Null);
        assert_eq!(input["truncated_body"], Value::from(true));
    }

    #[test]
    fn skip_parse_leaves_both_keys_out() {
        let req = with_body("application/json", b"not json", false);
        let input = full(&req, &settings(false, true)).unwrap();
        assert_eq!(input["parsed_body"], Value::Undefined);
        assert_eq!(input["truncated_body"], Value::Undefined);
        assert_eq!(
            input["attributes"]["request"]["http"]["body"],
            Value::from("not json")
        );
        let input = full(&request("/"), &settings(false, true)).unwrap();
        assert_eq!(input["parsed_body"], Value::Undefined);
    }

    #[test]
    fn bad_bodies() {
        let err = full(
            &with_body("application/json", b"{", false),
            &settings(false, false),
        )
        .unwrap_err();
        assert!(
            matches!(err, InputError::Body(_)) && err.is_bad_request(),
            "{err}"
        );
        assert!(
            err.to_string().starts_with("request_parse_error: "),
            "{err}"
        );
        let binary = with_body("application/octet-stream", b"\x89PNG\xff", false);
        let err = full(&binary, &settings(false, false)).unwrap_err();
        assert_eq!(err, InputError::BodyNotUtf8);
        assert!(!err.is_bad_request());
        let input = full(&binary, &settings(true, false)).unwrap();
        assert_eq!(
            input["attributes"]["request"]["http"]["rawBody"],
            Value::from("iVBOR/8=")
        );
        assert_eq!(input["parsed_body"], Value::Null);
    }

    #[test]
    fn empty_final_chunk_still_says_not_partial() {
        let mut req = request("/");
        req.body = Some(Body::default());
        let input = full(&req, &settings(false, false)).unwrap();
        let http = &input["attributes"]["request"]["http"];
        assert_eq!(
            http["headers"]["x-envoy-auth-partial-body"],
            Value::from("false")
        );
        assert_eq!(
            (http["body"].clone(), http["size"].clone()),
            (Value::Undefined, Value::Undefined)
        );
    }

    fn shaped(paths: &[&[&str]]) -> InputShape {
        let reads: Vec<Vec<String>> = paths
            .iter()
            .map(|p| p.iter().map(|k| k.to_string()).collect())
            .collect();
        InputShape::from(&crate::shape::InputReads::from(reads))
    }

    #[test]
    fn only_the_parts_a_policy_reads_are_built() {
        let shape = shaped(&[
            &["attributes", "request", "http", "method"],
            &["attributes", "request", "http", "headers", "x-multi"],
            &["attributes", "request", "http", "headers", "absent"],
            &["parsed_path"],
        ]);
        let mut req = request("/people/a%20b?lang=en");
        // A part left out is never asked of Envoy.
        req.connection = None;
        let input = build(&req, &BodySettings::default(), &shape).unwrap();
        let expected = serde_json::json!({
            "attributes": {"request": {"http": {
                "method": "GET",
                "headers": {"x-multi": "a,b"}
            }}},
            "parsed_path": ["people", "a b"]
        });
        assert_eq!(input, Value::from(expected));
    }

    #[test]
    fn every_part_the_shape_keeps_equals_the_full_document() {
        let req = with_body("application/json", br#"{"firstname":"Charlie"}"#, false);
        let bodies = settings(false, false);
        let everything = full(&req, &bodies).unwrap();
        let paths: &[&[&str]] = &[
            &["attributes", "source"],
            &["attributes", "destination"],
            &["attributes", "request", "time"],
            &["attributes", "request", "http", "id"],
            &["attributes", "request", "http", "method"],
            &["attributes", "request", "http", "path"],
            &["attributes", "request", "http", "host"],
            &["attributes", "request", "http", "scheme"],
            &["attributes", "request", "http", "protocol"],
            &["attributes", "request", "http", "body"],
            &["attributes", "request", "http", "size"],
            &["attributes", "request", "http", "headers"],
            &["attributes", "metadataContext"],
            &["attributes", "routeMetadataContext"],
            &["parsed_path"],
            &["parsed_query"],
            &["parsed_body"],
            &["truncated_body"],
            &["version"],
            &["source_principal"],
        ];
        for path in paths {
            let input = build(&req, &bodies, &shaped(&[path])).unwrap();
            let (mut got, mut want) = (&input, &everything);
            for key in *path {
                got = &got[*key];
                want = &want[*key];
            }
            assert_ne!(want, &Value::Undefined, "{path:?}");
            assert_eq!(got, want, "{path:?}");
        }
    }

    #[test]
    fn requests_opa_envoy_refuses_are_refused_whatever_the_policy_reads() {
        let nothing = shaped(&[]);
        let err = build(&request("/a%zz"), &BodySettings::default(), &nothing).unwrap_err();
        assert!(matches!(err, InputError::Path(_)), "{err}");
        let err = build(
            &with_body("application/json", b"{", false),
            &settings(false, false),
            &nothing,
        )
        .unwrap_err();
        assert!(matches!(err, InputError::Body(_)), "{err}");
        let binary = with_body("application/octet-stream", b"\x89PNG\xff", false);
        let err = build(&binary, &settings(false, false), &nothing).unwrap_err();
        assert_eq!(err, InputError::BodyNotUtf8);
        // Not UTF-8 and not JSON either: the check fails before anything is parsed.
        let broken = with_body("application/json", b"{\xff", false);
        let err = build(&broken, &settings(false, false), &nothing).unwrap_err();
        assert_eq!(err, InputError::BodyNotUtf8);
        let input = build(&request("/"), &BodySettings::default(), &nothing).unwrap();
        assert_eq!(input, Value::new_object());
    }

    #[test]
    fn socket_addresses() {
        assert_eq!(
            SocketAddress::parse("[2001:db8::1]:443"),
            Some(SocketAddress {
                address: "2001:db8::1".into(),
                port: 443
            })
        );
        assert_eq!(SocketAddress::parse("1.2.3.4"), None);
        assert_eq!(SocketAddress::parse("1.2.3.4:x"), None);
    }
}
