//! `http.send` as a callout: the request object OPA takes, read into what a host sends, and
//! the host's answer made into the response object OPA gives the policy. The evaluation
//! suspends at the call (`Policy::start`), the host makes the callout, and the evaluation
//! resumes with `response` (`Pending::resume`).

use std::collections::BTreeMap;

use regorus::unstable::{Expr, Module, Ref};
use regorus::utils::get_path_string;
use regorus::Value;

use super::compile_checks::{place, CompileError};
use super::walk::{self, Visitor};

/// Options of OPA's request object this filter carries out.
const SUPPORTED: [&str; 12] = [
    "method",
    "url",
    "headers",
    "body",
    "raw_body",
    "timeout",
    "raise_error",
    "force_json_decode",
    "enable_redirect",
    "cache",
    "force_cache",
    "force_cache_duration_seconds",
];

/// Options that only change how OPA keeps cached answers or retries: accepted, without
/// effect here (an answer kept as a value, or sent once, is one OPA may also give).
const WITHOUT_EFFECT: [&str; 3] = [
    "caching_mode",
    "max_retry_attempts",
    "cache_ignored_headers",
];

/// Options OPA has that cannot be carried out inside a proxy: certificates and keys from
/// files or the environment, a Unix socket, the system's certificate pool, OPA's own
/// TLS settings. A request that uses one fails the evaluation (`status_on_error`).
const REFUSED: [&str; 11] = [
    "tls_use_system_certs",
    "tls_ca_cert",
    "tls_ca_cert_file",
    "tls_ca_cert_env_variable",
    "tls_client_cert",
    "tls_client_cert_file",
    "tls_client_key",
    "tls_client_key_file",
    "tls_insecure_skip_verify",
    "tls_server_name",
    "force_yaml_decode",
];

/// The `http.send` calls whose request object names, in the policy's text, an option a proxy
/// cannot carry out: refused at `check`, `build` and load, at the option.
pub fn refusals(modules: &[Ref<Module>]) -> Vec<CompileError> {
    struct Calls(Vec<CompileError>);
    impl Visitor for Calls {
        fn expr(&mut self, expr: &Expr) -> bool {
            let Expr::Call { fcn, params, .. } = expr else {
                return true;
            };
            if get_path_string(fcn, None).ok().as_deref() != Some("http.send") {
                return true;
            }
            let Some(Expr::Object { fields, .. }) = params.first().map(|p| p.as_ref()) else {
                return true;
            };
            for (_, key, _) in fields {
                let Expr::String {
                    span, value: key, ..
                } = key.as_ref()
                else {
                    continue;
                };
                let Ok(key) = key.as_string() else {
                    continue;
                };
                let key = key.as_ref();
                if REFUSED.contains(&key) {
                    let (file, line, column) = place(span);
                    self.0.push(CompileError {
                        file,
                        line,
                        column,
                        code: crate::codes::HTTP_SEND_OPTION.name,
                        message: format!(
                            "http.send: `{key}` cannot be carried out inside the proxy: the \
                             callout goes through an Envoy cluster, which holds the TLS \
                             settings"
                        ),
                    });
                }
            }
            true
        }
    }
    let mut calls = Calls(Vec::new());
    for module in modules {
        for rule in &module.policy {
            walk::rule(rule, &mut calls);
        }
    }
    calls.0
}

/// A request as a host sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendRequest {
    pub method: String,
    /// The URL's scheme and authority (`https://users.internal:8443`), which the plugin
    /// maps to a cluster.
    pub origin: String,
    /// The authority alone, sent as `:authority`.
    pub authority: String,
    /// Path and query, sent as `:path`.
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// `None`: the plugin's default.
    pub timeout_ms: Option<u64>,
    /// OPA's `raise_error` (default true): a network error is an error of the call (undefined
    /// in OPA-Envoy), else a response with `status_code` 0 and the error.
    pub raise_error: bool,
    pub force_json_decode: bool,
    /// OPA's `enable_redirect`: follow 3xx answers (at most `MAX_REDIRECTS`, as Go's client).
    pub follow_redirects: bool,
    /// OPA's `cache`: keep the answer as long as its `Cache-Control: max-age` or `Expires`
    /// says.
    pub cache: bool,
    /// OPA's `force_cache` with `force_cache_duration_seconds`: keep any answer that long.
    pub force_cache_seconds: Option<u64>,
}

/// Why a request object cannot be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestError {
    /// OPA refuses it too (its wording): an error of the call, undefined in OPA-Envoy.
    Opa(String),
    /// OPA would send it; a proxy cannot (client certificates from files, redirects): the
    /// evaluation fails, never answers otherwise than OPA.
    Proxy(String),
}

impl From<String> for RequestError {
    fn from(message: String) -> Self {
        RequestError::Opa(message)
    }
}

impl From<&str> for RequestError {
    fn from(message: &str) -> Self {
        RequestError::Opa(message.to_string())
    }
}

/// Reads OPA's request object.
pub fn request(argument: &Value) -> Result<SendRequest, RequestError> {
    let Value::Object(fields) = argument else {
        return Err("http.send: operand 1 must be object".into());
    };
    let mut unknown = Vec::new();
    for key in fields.keys() {
        let Value::String(key) = key else {
            return Err("http.send: operand 1 must be object[string: any]".into());
        };
        let key = key.as_ref();
        if REFUSED.contains(&key) {
            return Err(RequestError::Proxy(format!(
                "http.send: `{key}` is not available inside the proxy (the callout goes \
                 through an Envoy cluster: configure TLS on the cluster)"
            )));
        }
        if !SUPPORTED.contains(&key) && !WITHOUT_EFFECT.contains(&key) {
            unknown.push(key.to_string());
        }
    }
    if !unknown.is_empty() {
        return Err(format!(
            "http.send: invalid request parameters(s): {{{}}}",
            unknown.join(", ")
        )
        .into());
    }
    let string = |name: &str| match &argument[name] {
        Value::String(s) => Ok(Some(s.to_string())),
        Value::Undefined => Ok(None),
        _ => Err(format!("http.send: {name} must be a string")),
    };
    let boolean = |name: &str| match &argument[name] {
        Value::Bool(b) => Ok(*b),
        Value::Undefined => Ok(false),
        _ => Err(format!("http.send: {name} must be a boolean")),
    };
    let method = string("method")?
        .ok_or("http.send: missing required request parameters(s): {method}")?
        .to_ascii_uppercase();
    let url = string("url")?.ok_or("http.send: missing required request parameters(s): {url}")?;
    let (origin, authority, path) = split_url(&url)?;
    let mut headers = Vec::new();
    match &argument["headers"] {
        Value::Undefined | Value::Null => {}
        Value::Object(h) => {
            for (name, value) in h.iter() {
                let (Value::String(name), Value::String(value)) = (name, value) else {
                    return Err("http.send: headers must be an object of strings".into());
                };
                headers.push((name.to_ascii_lowercase(), value.to_string()));
            }
        }
        _ => return Err("http.send: headers must be an object".into()),
    }
    let body = match (&argument["raw_body"], &argument["body"]) {
        (Value::String(raw), _) => raw.as_bytes().to_vec(),
        (Value::Undefined, Value::Undefined | Value::Null) => Vec::new(),
        (Value::Undefined, body) => {
            if !headers.iter().any(|(n, _)| n == "content-type") {
                headers.push(("content-type".into(), "application/json".into()));
            }
            serde_json::to_vec(body).map_err(|e| format!("http.send: body: {e}"))?
        }
        _ => return Err("http.send: raw_body must be a string".into()),
    };
    let timeout_ms = match &argument["timeout"] {
        Value::Undefined => None,
        Value::Number(n) => {
            Some(n.as_u64().ok_or("http.send: timeout must be positive")? / 1_000_000)
        }
        Value::String(s) => Some(duration_ms(s)?),
        _ => return Err("http.send: timeout must be a number or a duration".into()),
    };
    let raise_error = match &argument["raise_error"] {
        Value::Undefined => true,
        _ => boolean("raise_error")?,
    };
    Ok(SendRequest {
        method,
        origin,
        authority,
        path,
        headers,
        body,
        timeout_ms,
        raise_error,
        force_json_decode: boolean("force_json_decode")?,
        follow_redirects: boolean("enable_redirect")?,
        cache: boolean("cache")?,
        force_cache_seconds: match (boolean("force_cache")?, &argument["force_cache_duration_seconds"]) {
            (false, _) => None,
            (true, Value::Number(n)) => Some(
                n.as_u64()
                    .ok_or("http.send: force_cache_duration_seconds must be a positive integer")?,
            ),
            (true, _) => {
                return Err("http.send: 'force_cache' set but 'force_cache_duration_seconds' parameter is missing".into())
            }
        },
    })
}

/// Redirects followed for one call before it fails, as Go's HTTP client (OPA's).
pub const MAX_REDIRECTS: usize = 10;

/// The request a 3xx answer sends `request` on to, when it follows redirects (as Go's client:
/// 301, 302 and 303 turn into a `GET` without a body, unless `HEAD`; 307 and 308 keep both);
/// `None` when the answer is the response. An unreadable `Location` is an error of the call.
pub fn redirect(
    request: &SendRequest,
    headers: &[(String, Vec<u8>)],
) -> Option<Result<SendRequest, String>> {
    if !request.follow_redirects {
        return None;
    }
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    };
    let status: u16 = header(":status")?.parse().ok()?;
    if !matches!(status, 301 | 302 | 303 | 307 | 308) {
        return None;
    }
    let location = header("location")?;
    let url = if location.starts_with('/') {
        format!("{}{location}", request.origin)
    } else {
        location
    };
    let (origin, authority, path) = match split_url(&url) {
        Ok(parts) => parts,
        Err(e) => return Some(Err(e)),
    };
    let mut next = SendRequest {
        origin,
        authority,
        path,
        ..request.clone()
    };
    if (301..=303).contains(&status) && request.method != "HEAD" {
        next.method = "GET".into();
        next.body.clear();
        next.headers.retain(|(name, _)| name != "content-type");
    }
    Some(Ok(next))
}

/// Answers kept for `cache` and `force_cache` requests, per VM: at most `capacity`, the one
/// closest to expiring dropped first when full.
#[derive(Default)]
pub struct ResponseCache {
    entries: BTreeMap<String, (Value, u64)>,
    capacity: usize,
}

impl ResponseCache {
    pub fn new(capacity: usize) -> Self {
        ResponseCache {
            entries: BTreeMap::new(),
            capacity,
        }
    }

    /// The answer kept for `request`, if still fresh at `now_ns`.
    pub fn get(&mut self, request: &SendRequest, now_ns: u64) -> Option<Value> {
        if !request.cache && request.force_cache_seconds.is_none() {
            return None;
        }
        let key = cache_key(request);
        match self.entries.get(&key) {
            Some((value, expires)) if *expires > now_ns => Some(value.clone()),
            Some(_) => {
                self.entries.remove(&key);
                None
            }
            None => None,
        }
    }

    /// Keeps `response` (OPA's object, from `headers`) for `request` when it may be kept.
    pub fn put(
        &mut self,
        request: &SendRequest,
        headers: &[(String, Vec<u8>)],
        response: &Value,
        now_ns: u64,
    ) {
        let seconds = match request.force_cache_seconds {
            Some(seconds) => Some(seconds),
            None if request.cache => fresh_for(headers),
            None => None,
        };
        let Some(seconds) = seconds.filter(|s| *s > 0) else {
            return;
        };
        if self.capacity == 0 {
            return;
        }
        if self.entries.len() >= self.capacity {
            self.entries.retain(|_, (_, expires)| *expires > now_ns);
        }
        if self.entries.len() >= self.capacity {
            let soonest = self
                .entries
                .iter()
                .min_by_key(|(_, (_, expires))| *expires)
                .map(|(key, _)| key.clone());
            if let Some(key) = soonest {
                self.entries.remove(&key);
            }
        }
        let expires = now_ns.saturating_add(seconds.saturating_mul(1_000_000_000));
        self.entries
            .insert(cache_key(request), (response.clone(), expires));
    }
}

/// What tells two requests apart for the cache: method, URL, headers, body.
fn cache_key(request: &SendRequest) -> String {
    let mut headers = request.headers.clone();
    headers.sort();
    format!(
        "{} {}{}\n{headers:?}\n{}",
        request.method,
        request.origin,
        request.path,
        String::from_utf8_lossy(&request.body)
    )
}

/// How long a response may be kept by its headers (`cache`): `Cache-Control: max-age`,
/// nothing with `no-store` or `no-cache`, else `Expires` against `Date`. `None`: not at all.
fn fresh_for(headers: &[(String, Vec<u8>)]) -> Option<u64> {
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    };
    let status: u16 = header(":status")?.parse().ok()?;
    // RFC 7231's heuristically cacheable statuses, as OPA's cache checks them.
    if ![200, 203, 204, 206, 300, 301, 404, 405, 410, 414, 501].contains(&status) {
        return None;
    }
    if let Some(control) = header("cache-control") {
        let directives: Vec<String> = control
            .split(',')
            .map(|d| d.trim().to_ascii_lowercase())
            .collect();
        if directives
            .iter()
            .any(|d| d == "no-store" || d == "no-cache")
        {
            return None;
        }
        if let Some(age) = directives.iter().find_map(|d| d.strip_prefix("max-age=")) {
            return age.parse().ok();
        }
    }
    let expires = httpdate::parse_http_date(&header("expires")?).ok()?;
    let date = header("date")
        .and_then(|d| httpdate::parse_http_date(&d).ok())
        .unwrap_or_else(std::time::SystemTime::now);
    expires.duration_since(date).ok().map(|d| d.as_secs())
}

/// `scheme://authority/path?query` into origin, authority and path.
fn split_url(url: &str) -> Result<(String, String, String), String> {
    let bad = || format!("http.send: invalid url: {url}");
    let (scheme, rest) = url.split_once("://").ok_or_else(bad)?;
    if !matches!(scheme, "http" | "https") {
        return Err(format!(
            "http.send: unsupported protocol scheme \"{scheme}\""
        ));
    }
    let (authority, path) = match rest.find(['/', '?']) {
        Some(at) => (&rest[..at], &rest[at..]),
        None => (rest, "/"),
    };
    if authority.is_empty() || authority.contains('@') {
        return Err(bad());
    }
    let path = if path.starts_with('?') {
        format!("/{path}")
    } else {
        path.to_string()
    };
    Ok((
        format!("{scheme}://{authority}"),
        authority.to_string(),
        path,
    ))
}

/// A Go duration (`5s`, `250ms`, `1m30s`) in milliseconds.
fn duration_ms(text: &str) -> Result<u64, String> {
    let bad = || format!("http.send: timeout: invalid duration {text:?}");
    let mut total = 0f64;
    let mut rest = text;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .ok_or_else(bad)?;
        let value: f64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "ns" => 1e-6,
            "us" | "µs" => 1e-3,
            "ms" => 1.0,
            "s" => 1e3,
            "m" => 60e3,
            "h" => 3600e3,
            _ => return Err(bad()),
        };
        total += value * scale;
        rest = &rest[unit_end..];
    }
    Ok(total as u64)
}

/// OPA's response object for a callout's answer: `status`, `status_code`, `headers` (each
/// lowercase name with its values), `raw_body`, and `body`, the JSON when the response says
/// it is JSON (or `force_json_decode`), else null.
pub fn response(
    request: &SendRequest,
    headers: &[(String, Vec<u8>)],
    body: &[u8],
) -> Result<Value, String> {
    let mut status_code = 0u16;
    let mut by_name: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let mut json = request.force_json_decode;
    for (name, value) in headers {
        let value = String::from_utf8_lossy(value).into_owned();
        if name == ":status" {
            status_code = value.parse().unwrap_or(0);
            continue;
        }
        if name.starts_with(':') {
            continue;
        }
        let name = name.to_ascii_lowercase();
        if name == "content-type" {
            let media = value.split(';').next().unwrap_or("").trim();
            json |= media.eq_ignore_ascii_case("application/json") || media.ends_with("+json");
        }
        by_name.entry(name).or_default().push(Value::from(value));
    }
    let raw_body = String::from_utf8_lossy(body).into_owned();
    let decoded = if json && !body.is_empty() {
        Value::from_json_str(&raw_body).map_err(|e| format!("http.send: {e}"))?
    } else {
        Value::Null
    };
    let mut object = BTreeMap::new();
    object.insert(Value::from("status"), Value::from(status_line(status_code)));
    object.insert(
        Value::from("status_code"),
        Value::from(u64::from(status_code)),
    );
    object.insert(
        Value::from("headers"),
        Value::from(
            by_name
                .into_iter()
                .map(|(name, values)| (Value::from(name), Value::from(values)))
                .collect::<BTreeMap<_, _>>(),
        ),
    );
    object.insert(Value::from("body"), decoded);
    object.insert(Value::from("raw_body"), Value::from(raw_body));
    Ok(Value::from(object))
}

/// What the call gives when the callout failed (reset, timeout, no cluster): with
/// `raise_error` false OPA's object with `status_code` 0 and the error; else `None`, an error
/// of the call (undefined in OPA-Envoy).
pub fn network_error(request: &SendRequest, message: &str) -> Option<Value> {
    if request.raise_error {
        return None;
    }
    let mut error = BTreeMap::new();
    error.insert(
        Value::from("code"),
        Value::from("eval_http_send_network_error"),
    );
    error.insert(Value::from("message"), Value::from(message));
    let mut object = BTreeMap::new();
    object.insert(Value::from("status_code"), Value::from(0u64));
    object.insert(Value::from("error"), Value::from(error));
    Some(Value::from(object))
}

/// Go's `resp.Status`: the code and its reason phrase.
fn status_line(code: u16) -> String {
    let reason = match code {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "",
    };
    if reason.is_empty() {
        code.to_string()
    } else {
        format!("{code} {reason}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(json: &str) -> Value {
        Value::from_json_str(json).unwrap()
    }

    #[test]
    fn a_request_object_is_read_as_opa_reads_it() {
        let sent = request(&value(
            r#"{"method": "post", "url": "https://users.internal:8443/v1/check?x=1",
                "headers": {"X-Token": "t"}, "body": {"user": "alice"}, "timeout": "2.5s",
                "raise_error": false, "cache": true}"#,
        ))
        .unwrap();
        assert_eq!(sent.method, "POST");
        assert_eq!(sent.origin, "https://users.internal:8443");
        assert_eq!(sent.authority, "users.internal:8443");
        assert_eq!(sent.path, "/v1/check?x=1");
        assert_eq!(
            sent.headers,
            vec![
                ("x-token".to_string(), "t".to_string()),
                ("content-type".to_string(), "application/json".to_string())
            ]
        );
        assert_eq!(sent.body, br#"{"user":"alice"}"#);
        assert_eq!(sent.timeout_ms, Some(2500));
        assert!(!sent.raise_error);
        let bare = request(&value(r#"{"method": "GET", "url": "http://a"}"#)).unwrap();
        assert_eq!((bare.path.as_str(), bare.raise_error), ("/", true));
    }

    #[test]
    fn what_a_proxy_cannot_do_is_an_error_with_the_reason() {
        for (json, needle) in [
            (
                r#"{"method": "GET", "url": "https://a", "tls_client_cert_file": "/c"}"#,
                "tls_client_cert_file",
            ),
            (
                r#"{"method": "GET", "url": "https://a", "bogus": 1}"#,
                "invalid request parameters(s): {bogus}",
            ),
            (r#"{"url": "https://a"}"#, "{method}"),
            (
                r#"{"method": "GET", "url": "ftp://a"}"#,
                "unsupported protocol scheme",
            ),
        ] {
            let (RequestError::Opa(error) | RequestError::Proxy(error)) =
                request(&value(json)).unwrap_err();
            assert!(error.contains(needle), "{json}: {error}");
        }
    }

    #[test]
    fn answers_are_kept_as_long_as_their_headers_or_force_cache_say() {
        let headers = |status: &str, extra: &[(&str, &str)]| {
            let mut all = vec![(":status".to_string(), status.as_bytes().to_vec())];
            all.extend(
                extra
                    .iter()
                    .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec())),
            );
            all
        };
        assert_eq!(
            fresh_for(&headers("200", &[("cache-control", "public, max-age=60")])),
            Some(60)
        );
        assert_eq!(
            fresh_for(&headers(
                "200",
                &[("cache-control", "max-age=60, no-store")]
            )),
            None
        );
        assert_eq!(
            fresh_for(&headers("500", &[("cache-control", "max-age=60")])),
            None
        );
        assert_eq!(
            fresh_for(&headers(
                "200",
                &[
                    ("date", "Mon, 07 Dec 2026 10:00:00 GMT"),
                    ("expires", "Mon, 07 Dec 2026 10:02:00 GMT"),
                ]
            )),
            Some(120)
        );
        assert_eq!(fresh_for(&headers("200", &[])), None);

        let cached = request(&value(
            r#"{"method": "GET", "url": "http://a/x", "cache": true}"#,
        ))
        .unwrap();
        let forced = request(&value(
            r#"{"method": "GET", "url": "http://a/y", "force_cache": true, "force_cache_duration_seconds": 5}"#,
        ))
        .unwrap();
        let plain = request(&value(r#"{"method": "GET", "url": "http://a/x"}"#)).unwrap();
        let second = 1_000_000_000;
        let mut cache = ResponseCache::new(2);
        let answer = Value::from("answer");
        cache.put(
            &cached,
            &headers("200", &[("cache-control", "max-age=10")]),
            &answer,
            0,
        );
        cache.put(&forced, &headers("500", &[]), &answer, 0);
        cache.put(
            &plain,
            &headers("200", &[("cache-control", "max-age=10")]),
            &answer,
            0,
        );
        assert_eq!(cache.get(&cached, 9 * second), Some(answer.clone()));
        assert_eq!(cache.get(&plain, second), None, "asked without cache");
        assert_eq!(cache.get(&forced, 4 * second), Some(answer.clone()));
        assert_eq!(cache.get(&forced, 5 * second), None, "expired");
        assert_eq!(cache.get(&cached, 10 * second), None);
        // Full: the answer closest to expiring goes.
        let other = request(&value(
            r#"{"method": "GET", "url": "http://a/z", "cache": true}"#,
        ))
        .unwrap();
        cache.put(
            &cached,
            &headers("200", &[("cache-control", "max-age=100")]),
            &answer,
            0,
        );
        cache.put(&forced, &headers("200", &[]), &answer, 0);
        cache.put(
            &other,
            &headers("200", &[("cache-control", "max-age=50")]),
            &answer,
            0,
        );
        assert_eq!(cache.get(&forced, 0), None);
        assert_eq!(cache.get(&cached, 0), Some(answer.clone()));
        assert_eq!(cache.get(&other, 0), Some(answer));
    }

    #[test]
    fn redirects_are_followed_as_go_follows_them() {
        let answer = |status: &str, location: &str| {
            vec![
                (":status".to_string(), status.as_bytes().to_vec()),
                ("location".to_string(), location.as_bytes().to_vec()),
            ]
        };
        let post = request(&value(
            r#"{"method": "POST", "url": "http://a:8080/x", "body": {"k": 1}, "enable_redirect": true}"#,
        ))
        .unwrap();
        let next = redirect(&post, &answer("302", "/y?z=1")).unwrap().unwrap();
        assert_eq!(
            (
                next.method.as_str(),
                next.origin.as_str(),
                next.path.as_str(),
                next.body.len()
            ),
            ("GET", "http://a:8080", "/y?z=1", 0)
        );
        let kept = redirect(&post, &answer("307", "https://b/w"))
            .unwrap()
            .unwrap();
        assert_eq!(
            (
                kept.method.as_str(),
                kept.origin.as_str(),
                kept.path.as_str()
            ),
            ("POST", "https://b", "/w")
        );
        assert_eq!(kept.body, post.body);
        assert_eq!(redirect(&post, &answer("200", "/y")), None);
        let off = request(&value(r#"{"method": "GET", "url": "http://a/x"}"#)).unwrap();
        assert_eq!(
            redirect(&off, &answer("302", "/y")),
            None,
            "without enable_redirect"
        );
    }

    #[test]
    fn a_response_is_opa_s_object() {
        let sent = request(&value(r#"{"method": "GET", "url": "http://a/"}"#)).unwrap();
        let headers = vec![
            (":status".to_string(), b"200".to_vec()),
            (
                "content-type".to_string(),
                b"application/json; charset=utf-8".to_vec(),
            ),
            ("set-cookie".to_string(), b"a=1".to_vec()),
            ("set-cookie".to_string(), b"b=2".to_vec()),
        ];
        let got = response(&sent, &headers, br#"{"allowed": true}"#).unwrap();
        assert_eq!(
            got,
            value(
                r#"{"status": "200 OK", "status_code": 200, "body": {"allowed": true},
                    "raw_body": "{\"allowed\": true}",
                    "headers": {"content-type": ["application/json; charset=utf-8"],
                                "set-cookie": ["a=1", "b=2"]}}"#
            )
        );
        let text = response(&sent, &[(":status".into(), b"503".to_vec())], b"busy").unwrap();
        assert_eq!(text["body"], Value::Null);
        assert_eq!(text["status"], Value::from("503 Service Unavailable"));
        assert_eq!(network_error(&sent, "reset"), None);
        let lenient = request(&value(
            r#"{"method": "GET", "url": "http://a/", "raise_error": false}"#,
        ))
        .unwrap();
        assert_eq!(
            network_error(&lenient, "reset"),
            Some(value(
                r#"{"status_code": 0, "error": {"code": "eval_http_send_network_error", "message": "reset"}}"#
            ))
        );
    }
}
