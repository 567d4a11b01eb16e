//! Request bodies as OPA-Envoy sees them: what Envoy's ext_authz puts in the check request
//! under `with_request_body` (the body, cut at `max_request_bytes`, and whether it was cut) and
//! what OPA-Envoy's `getParsedBody` (`envoyauth/request.go`) makes of it: `parsed_body` and
//! `truncated_body` for JSON, form and multipart bodies, with Go's parsing rules
//! (`encoding/json`, `url.ParseQuery`, `mime.ParseMediaType`, `mime/multipart`). Nothing here
//! talks to a host: `stream` has the body buffered and asks `WithRequestBody` when to stop.

use std::borrow::Cow;
use std::collections::BTreeMap;

use regorus::Value;

use super::input::JoinedHeaders;
use super::path::percent_decode;

/// Envoy ext_authz's `with_request_body`, whose names Istio's `includeRequestBodyInCheck`
/// also uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WithRequestBody {
    /// The most body bytes the policy sees.
    pub max_request_bytes: u32,
    /// Decide on the first `max_request_bytes` of a larger body instead of answering 413.
    pub allow_partial_message: bool,
    /// Hand the body over as bytes (`rawBody`, base64 in the input) instead of a UTF-8
    /// string (`body`).
    pub pack_as_bytes: bool,
}

/// How request bodies reach the input.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BodySettings {
    /// `None`: bodies are not buffered, the decision is made at the request headers.
    pub with_request_body: Option<WithRequestBody>,
    /// OPA-Envoy's `skip-request-body-parse`: no `parsed_body` and no `truncated_body`.
    pub skip_request_body_parse: bool,
}

/// The body buffered for the decision.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Body {
    /// At most `max_request_bytes` bytes.
    pub bytes: Vec<u8>,
    /// More was received than `bytes` holds (`x-envoy-auth-partial-body: true`).
    pub partial: bool,
    /// Body bytes received when the decision is made (`attributes.request.http.size`).
    pub received: u64,
}

/// What to do after a chunk of the body arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Collect {
    /// Keep buffering.
    Wait,
    /// Decide with the first `take` buffered bytes.
    Decide { take: usize },
    /// The body is larger than allowed: answer 413, as Envoy does when ext_authz's buffer
    /// limit is exceeded.
    TooLarge,
}

impl WithRequestBody {
    /// At the request headers: a declared length over the limit is refused before buffering.
    pub fn refuses_length(&self, content_length: Option<u64>) -> bool {
        !self.allow_partial_message
            && content_length.is_some_and(|len| len > u64::from(self.max_request_bytes))
    }

    /// After a chunk: `buffered` bytes so far, and whether the request body is complete.
    pub fn collect(&self, buffered: usize, end_of_stream: bool) -> Collect {
        let max = usize::try_from(self.max_request_bytes).unwrap_or(usize::MAX);
        if buffered > max && !self.allow_partial_message {
            Collect::TooLarge
        } else if end_of_stream || self.allow_partial_message && buffered >= max {
            Collect::Decide {
                take: buffered.min(max),
            }
        } else {
            Collect::Wait
        }
    }
}

/// How long a stream may wait at its headers for the first body callback before the host is
/// taken to hold bodies back (no `allow_on_headers_stop_iteration`).
pub const BODY_STALL_MS: u64 = 5_000;

/// Streams held at their headers for a body. Envoy only delivers the body to a filter that
/// holds the headers when the Wasm `PluginConfig` sets `allow_on_headers_stop_iteration`;
/// nothing tells the filter whether it does, and without it such streams stall forever. So
/// until a first body callback proves the setting, a stream that waited `BODY_STALL_MS` is
/// reported stalled (and ended by the adapter) instead.
#[derive(Debug, Default)]
pub struct StallWatch {
    delivered: bool,
    /// (stream, when it was held, ms since the epoch).
    held: Vec<(u32, u64)>,
}

impl StallWatch {
    /// A stream now waits for its body.
    pub fn hold(&mut self, stream: u32, now_ms: u64) {
        if !self.delivered {
            self.held.push((stream, now_ms));
        }
    }

    /// A body callback came: the host delivers bodies, nothing needs watching any more.
    pub fn body_delivered(&mut self) {
        self.delivered = true;
        self.held.clear();
    }

    /// The stream ended or was decided.
    pub fn release(&mut self, stream: u32) {
        self.held.retain(|(s, _)| *s != stream);
    }

    /// Whether stalls are still possible (no body delivered yet).
    pub fn watching(&self) -> bool {
        !self.delivered
    }

    /// The streams held for `BODY_STALL_MS` or longer, no longer watched.
    pub fn stalled(&mut self, now_ms: u64) -> Vec<u32> {
        let (stalled, held) = self
            .held
            .iter()
            .partition(|(_, since)| now_ms.saturating_sub(*since) >= BODY_STALL_MS);
        self.held = held;
        stalled.into_iter().map(|(stream, _)| stream).collect()
    }
}

/// A body OPA-Envoy cannot parse; it answers such a request with 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("strconv.ParseInt: parsing {0:?}: invalid syntax")]
    ContentLength(String),
    #[error("invalid JSON body: {0}")]
    Json(String),
    #[error("invalid form body: {0}")]
    Form(String),
    #[error("{0}")]
    MediaType(&'static str),
    #[error("multipart: {0}")]
    Multipart(String),
}

/// Envoy's header saying whether the body in the check was cut at `max_request_bytes`.
pub const PARTIAL_BODY_HEADER: &str = "x-envoy-auth-partial-body";

/// `parsed_body` and `truncated_body` as OPA-Envoy's `getParsedBody` computes them from the
/// check request's headers (partial-body header included) and body.
pub fn parse(headers: &JoinedHeaders<'_>, payload: &[u8]) -> Result<(Value, bool), BodyError> {
    let header = |name: &str| headers.get(name);
    if header(PARTIAL_BODY_HEADER) == Some("true") {
        return Ok((Value::Null, true));
    }
    let Some(content_type) = header("content-type") else {
        return Ok((Value::Null, false));
    };
    // OPA-Envoy matches substrings, case-sensitively, in this order.
    let kind = [
        "application/json",
        "application/grpc",
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    ]
    .into_iter()
    .find(|kind| content_type.contains(kind));
    let Some(kind) = kind else {
        return Ok((Value::Null, false));
    };
    // gRPC payloads need OPA-Envoy's `proto-descriptor`, which zerohop does not take: OPA-Envoy
    // without one reports no parsed body either.
    if kind == "application/grpc" || payload.is_empty() {
        return Ok((Value::Null, false));
    }
    if let Some(length) = header("content-length") {
        let declared: i64 = length
            .parse()
            .map_err(|_| BodyError::ContentLength(length.to_string()))?;
        if declared != -1 && u64::try_from(declared).is_ok_and(|d| d > payload.len() as u64) {
            return Ok((Value::Null, true));
        }
    }
    let parsed = match kind {
        "application/json" => json(payload)?,
        "application/x-www-form-urlencoded" => form(payload)?,
        _ => {
            let (_, params) = parse_media_type(content_type)?;
            match params.get("boundary") {
                Some(boundary) => multipart(payload, boundary)?,
                None => Value::Null,
            }
        }
    };
    Ok((parsed, false))
}

/// Go's `encoding/json` into OPA values; invalid UTF-8 inside strings becomes U+FFFD as Go
/// decodes it.
fn json(payload: &[u8]) -> Result<Value, BodyError> {
    Value::from_json_str(&go_string(payload)).map_err(|e| BodyError::Json(e.to_string()))
}

/// Go's `url.ParseQuery`, which OPA-Envoy fails on (400) at the first bad pair.
fn form(payload: &[u8]) -> Result<Value, BodyError> {
    let mut fields: BTreeMap<Value, Vec<Value>> = BTreeMap::new();
    let mut first_error = None;
    for pair in payload.split(|b| *b == b'&') {
        if pair.contains(&b';') {
            first_error.get_or_insert_with(|| "invalid semicolon separator in query".to_string());
            continue;
        }
        if pair.is_empty() {
            continue;
        }
        let (key, value) = match pair.iter().position(|b| *b == b'=') {
            Some(i) => (
                pair.get(..i).unwrap_or_default(),
                pair.get(i + 1..).unwrap_or_default(),
            ),
            None => (pair, &[][..]),
        };
        match (percent_decode(key, true), percent_decode(value, true)) {
            (Ok(key), Ok(value)) => fields
                .entry(Value::from(go_string(&key).as_ref()))
                .or_default()
                .push(Value::from(go_string(&value).as_ref())),
            (Err(e), _) | (_, Err(e)) => {
                first_error.get_or_insert_with(|| e.to_string());
            }
        }
    }
    match first_error {
        Some(message) => Err(BodyError::Form(message)),
        None => Ok(Value::from(
            fields
                .into_iter()
                .map(|(k, vs)| (k, Value::from(vs)))
                .collect::<BTreeMap<_, _>>(),
        )),
    }
}

/// Bytes as Go turns them into JSON text: each byte that is not part of valid UTF-8 becomes
/// one U+FFFD (Rust's lossy conversion would merge some of them).
pub fn go_string(bytes: &[u8]) -> Cow<'_, str> {
    let Err(mut error) = std::str::from_utf8(bytes) else {
        return Cow::Borrowed(std::str::from_utf8(bytes).unwrap_or_default());
    };
    let mut out = String::with_capacity(bytes.len() + 2);
    let mut rest = bytes;
    loop {
        let (valid, after) = rest.split_at(error.valid_up_to());
        out.push_str(std::str::from_utf8(valid).unwrap_or_default());
        out.push(char::REPLACEMENT_CHARACTER);
        rest = after.get(1..).unwrap_or_default();
        match std::str::from_utf8(rest) {
            Ok(tail) => {
                out.push_str(tail);
                return Cow::Owned(out);
            }
            Err(next) => error = next,
        }
    }
}

fn is_token_char(b: u8) -> bool {
    b > 0x20 && b < 0x7f && !b"()<>@,;:\\\"/[]?=".contains(&b)
}

fn token(s: &str) -> (&str, &str) {
    let end = s.bytes().position(|b| !is_token_char(b)).unwrap_or(s.len());
    s.split_at(end)
}

fn trim_start_space(s: &str) -> &str {
    s.trim_start_matches(char::is_whitespace)
}

/// Go's `mime.ParseMediaType`: the lower-cased media type and its parameters (names
/// lower-cased, RFC 2231 continuations joined).
pub fn parse_media_type(v: &str) -> Result<(String, BTreeMap<String, String>), BodyError> {
    let (head, mut rest) = v.split_at(v.find(';').unwrap_or(v.len()));
    // Go lower-cases Unicode; only ASCII can make a token, so the outcome is the same.
    let media_type = head.to_ascii_lowercase().trim().to_string();
    let (typ, after) = token(&media_type);
    if typ.is_empty() {
        return Err(BodyError::MediaType("mime: no media type"));
    }
    if !after.is_empty() {
        let Some(after) = after.strip_prefix('/') else {
            return Err(BodyError::MediaType(
                "mime: expected slash after first token",
            ));
        };
        let (subtype, after) = token(after);
        if subtype.is_empty() {
            return Err(BodyError::MediaType("mime: expected token after slash"));
        }
        if !after.is_empty() {
            return Err(BodyError::MediaType(
                "mime: unexpected content after media subtype",
            ));
        }
    }
    let mut params = BTreeMap::new();
    let mut continuations: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    loop {
        rest = trim_start_space(rest);
        if rest.is_empty() {
            break;
        }
        let Some((key, value, after)) = media_param(rest) else {
            if rest.trim() == ";" {
                break;
            }
            return Err(BodyError::MediaType("mime: invalid media parameter"));
        };
        let map = match key.find('*') {
            Some(star) => continuations
                .entry(key.get(..star).unwrap_or_default().to_string())
                .or_default(),
            None => &mut params,
        };
        if map.insert(key, value).is_some() {
            return Err(BodyError::MediaType("mime: duplicate parameter name"));
        }
        rest = after;
    }
    for (key, pieces) in continuations {
        if let Some(value) = pieces.get(&format!("{key}*")) {
            if let Some(decoded) = decode_rfc2231(value) {
                params.insert(key, decoded);
            }
            continue;
        }
        let mut joined = String::new();
        let mut valid = false;
        for n in 0.. {
            if let Some(value) = pieces.get(&format!("{key}*{n}")) {
                valid = true;
                joined.push_str(value);
                continue;
            }
            let Some(value) = pieces.get(&format!("{key}*{n}*")) else {
                break;
            };
            valid = true;
            if n == 0 {
                joined.push_str(&decode_rfc2231(value).unwrap_or_default());
            } else {
                joined.push_str(&percent_hex_unescape(value).unwrap_or_default());
            }
        }
        if valid {
            params.insert(key, joined);
        }
    }
    Ok((media_type, params))
}

/// One `; key=value` (value a token or a quoted string): (lower-cased key, value, rest).
fn media_param(v: &str) -> Option<(String, String, &str)> {
    let rest = trim_start_space(v).strip_prefix(';')?;
    let (key, rest) = token(trim_start_space(rest));
    if key.is_empty() {
        return None;
    }
    let rest = trim_start_space(trim_start_space(rest).strip_prefix('=')?);
    let (value, rest) = media_value(rest)?;
    Some((key.to_ascii_lowercase(), value, rest))
}

fn media_value(v: &str) -> Option<(String, &str)> {
    let Some(quoted) = v.strip_prefix('"') else {
        let (value, rest) = token(v);
        return (!value.is_empty()).then(|| (value.to_string(), rest));
    };
    let bytes = quoted.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'"' => {
                return Some((
                    String::from_utf8_lossy(&out).into_owned(),
                    quoted.get(i + 1..).unwrap_or_default(),
                ))
            }
            // Go keeps a backslash before a token character (MSIE's unescaped paths).
            b'\\' if bytes.get(i + 1).is_some_and(|n| !is_token_char(*n)) => {
                out.extend(bytes.get(i + 1));
                i += 2;
                continue;
            }
            b'\r' | b'\n' => return None,
            _ => out.push(b),
        }
        i += 1;
    }
    None
}

fn decode_rfc2231(v: &str) -> Option<String> {
    let mut parts = v.splitn(3, '\'');
    let charset = parts.next()?.to_ascii_lowercase();
    let _language = parts.next()?;
    let encoded = parts.next()?;
    if charset != "us-ascii" && charset != "utf-8" {
        return None;
    }
    percent_hex_unescape(encoded)
}

fn percent_hex_unescape(s: &str) -> Option<String> {
    let decoded = percent_decode(s.as_bytes(), false).ok()?;
    Some(go_string(&decoded).into_owned())
}

/// `multipart/form-data` as OPA-Envoy reads it with Go's `multipart.Reader.NextPart`: parts
/// named by `Content-Disposition: form-data; name=…` (others skipped), values in order,
/// `application/json` parts parsed, others as strings.
fn multipart(payload: &[u8], boundary: &str) -> Result<Value, BodyError> {
    let mut fields: BTreeMap<Value, Vec<Value>> = BTreeMap::new();
    let mut reader = MultipartReader::new(payload, boundary);
    while let Some(part) = reader.next_part()? {
        let Some(name) = part.form_name() else {
            continue;
        };
        let content = part.decoded_body()?;
        let value = if part
            .header("content-type")
            .is_some_and(|t| t.contains("application/json"))
        {
            json(&content)?
        } else {
            Value::from(go_string(&content).as_ref())
        };
        fields.entry(Value::from(name)).or_default().push(value);
    }
    Ok(Value::from(
        fields
            .into_iter()
            .map(|(k, vs)| (k, Value::from(vs)))
            .collect::<BTreeMap<_, _>>(),
    ))
}

struct MultipartReader<'a> {
    input: &'a [u8],
    pos: usize,
    parts_read: usize,
    /// `\r\n`, or `\n` when the first boundary line ends in a bare LF (as Go allows).
    nl: &'static [u8],
    dash_boundary: Vec<u8>,
}

struct Part<'a> {
    /// Lower-cased names, values trimmed, in order.
    headers: Vec<(String, String)>,
    body: &'a [u8],
}

impl<'a> MultipartReader<'a> {
    fn new(input: &'a [u8], boundary: &str) -> Self {
        Self {
            input,
            pos: 0,
            parts_read: 0,
            nl: b"\r\n",
            dash_boundary: [b"--", boundary.as_bytes()].concat(),
        }
    }

    /// The next line, `\n` included; `None` for a last line without `\n`.
    fn read_line(&mut self) -> (&'a [u8], bool) {
        let rest = self.input.get(self.pos..).unwrap_or_default();
        match rest.iter().position(|b| *b == b'\n') {
            Some(i) => {
                self.pos += i + 1;
                (rest.get(..=i).unwrap_or_default(), true)
            }
            None => {
                self.pos = self.input.len();
                (rest, false)
            }
        }
    }

    fn is_final_boundary(&self, line: &[u8]) -> bool {
        let Some(rest) = line
            .strip_prefix(self.dash_boundary.as_slice())
            .and_then(|r| r.strip_prefix(b"--"))
        else {
            return false;
        };
        let rest = skip_lwsp(rest);
        rest.is_empty() || rest == self.nl
    }

    fn is_boundary_delimiter_line(&mut self, line: &[u8]) -> bool {
        let Some(rest) = line.strip_prefix(self.dash_boundary.as_slice()) else {
            return false;
        };
        let rest = skip_lwsp(rest);
        if self.parts_read == 0 && rest == b"\n" {
            self.nl = b"\n";
        }
        rest == self.nl
    }

    fn next_part(&mut self) -> Result<Option<Part<'a>>, BodyError> {
        if self.dash_boundary == b"--" {
            return Err(BodyError::Multipart("boundary is empty".into()));
        }
        let mut expect_new_part = false;
        loop {
            let (line, complete) = self.read_line();
            if !complete {
                return if self.is_final_boundary(line) {
                    Ok(None)
                } else {
                    Err(BodyError::Multipart("NextPart: EOF".into()))
                };
            }
            if self.is_boundary_delimiter_line(line) {
                self.parts_read += 1;
                let headers = self.read_headers()?;
                let body = self.read_body()?;
                return Ok(Some(Part { headers, body }));
            }
            if self.is_final_boundary(line) {
                return Ok(None);
            }
            if expect_new_part {
                return Err(BodyError::Multipart(format!(
                    "expecting a new Part; got line {:?}",
                    go_string(line)
                )));
            }
            if self.parts_read == 0 {
                continue; // preamble
            }
            if line == self.nl {
                expect_new_part = true;
                continue;
            }
            return Err(BodyError::Multipart(format!(
                "unexpected line in Next(): {:?}",
                go_string(line)
            )));
        }
    }

    /// Go's `textproto.Reader.ReadMIMEHeader`.
    fn read_headers(&mut self) -> Result<Vec<(String, String)>, BodyError> {
        let malformed = |line: &[u8]| {
            BodyError::Multipart(format!("malformed MIME header line: {}", go_string(line)))
        };
        let mut headers: Vec<(String, String)> = Vec::new();
        let mut first = true;
        loop {
            let (line, complete) = self.read_line();
            if !complete {
                return Err(BodyError::Multipart("unexpected EOF".into()));
            }
            let line = trim_newline(line);
            if line.is_empty() {
                return Ok(headers);
            }
            if first && matches!(line.first(), Some(b' ' | b'\t')) {
                return Err(BodyError::Multipart(format!(
                    "malformed MIME header initial line: {}",
                    go_string(line)
                )));
            }
            first = false;
            // Continuation lines (obsolete folding) join the value with one space.
            let mut full = line.to_vec();
            while matches!(self.input.get(self.pos), Some(b' ' | b'\t')) {
                let (next, _) = self.read_line();
                full.push(b' ');
                full.extend_from_slice(trim_lwsp(trim_newline(next)));
            }
            let colon = full
                .iter()
                .position(|b| *b == b':')
                .ok_or_else(|| malformed(&full))?;
            let (key, value) = full.split_at(colon);
            let value = value.get(1..).unwrap_or_default();
            if key.is_empty() || !key.iter().all(|b| is_token_char(*b)) {
                return Err(malformed(&full));
            }
            if value.iter().any(|&c| c < 0x20 && c != b'\t' || c == 0x7f) {
                return Err(malformed(&full));
            }
            headers.push((
                String::from_utf8_lossy(key).to_ascii_lowercase(),
                go_string(trim_lwsp(value)).into_owned(),
            ));
        }
    }

    /// The part's bytes up to the next `\r\n--boundary` that Go accepts as a boundary: one
    /// followed by `--`, space, tab, CR, LF or the end of the body.
    fn read_body(&mut self) -> Result<&'a [u8], BodyError> {
        let start = self.pos;
        let rest = self.input.get(start..).unwrap_or_default();
        // An empty part without the newline before the next boundary.
        if rest.starts_with(&self.dash_boundary) && boundary_ends(rest, self.dash_boundary.len()) {
            return Ok(&[]);
        }
        let nl_dash_boundary = [self.nl, self.dash_boundary.as_slice()].concat();
        let mut from = 0;
        while let Some(i) = find(rest.get(from..).unwrap_or_default(), &nl_dash_boundary) {
            let at = from + i;
            if boundary_ends(rest.get(at..).unwrap_or_default(), nl_dash_boundary.len()) {
                self.pos = start + at;
                return Ok(rest.get(..at).unwrap_or_default());
            }
            from = at + nl_dash_boundary.len();
        }
        Err(BodyError::Multipart("unexpected EOF".into()))
    }
}

impl Part<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Go's `Part.FormName`: the `name` of a `form-data` disposition, else none.
    fn form_name(&self) -> Option<String> {
        let (disposition, params) = parse_media_type(self.header("content-disposition")?).ok()?;
        if disposition != "form-data" {
            return None;
        }
        params.get("name").filter(|n| !n.is_empty()).cloned()
    }

    /// The body, quoted-printable decoded when the part says so (as `NextPart` does).
    fn decoded_body(&self) -> Result<Cow<'_, [u8]>, BodyError> {
        match self.header("content-transfer-encoding") {
            Some(cte) if cte.eq_ignore_ascii_case("quoted-printable") => {
                quoted_printable(self.body).map(Cow::Owned)
            }
            _ => Ok(Cow::Borrowed(self.body)),
        }
    }
}

/// Go's `quotedprintable.Reader`: trailing blanks of each line dropped, `=` at the end of a
/// line joins it to the next, `=XX` (either case) decoded, a bad escape kept as a literal `=`,
/// an unescaped control byte an error.
fn quoted_printable(body: &[u8]) -> Result<Vec<u8>, BodyError> {
    let mut out = Vec::with_capacity(body.len());
    let mut lines = body.split_inclusive(|b| *b == b'\n').peekable();
    while let Some(whole) = lines.next() {
        let end = whole
            .iter()
            .rposition(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
            .map_or(0, |e| e + 1);
        let (mut line, stripped) = whole.split_at(end);
        let mut ending: &[u8] = &[];
        if let Some(without) = line.strip_suffix(b"=") {
            line = without;
            let at_end = stripped.is_empty() && !line.is_empty() && lines.peek().is_none();
            if !stripped.starts_with(b"\n") && !stripped.starts_with(b"\r\n") && !at_end {
                return Err(BodyError::Multipart(format!(
                    "quotedprintable: invalid bytes after =: {:?}",
                    go_string(stripped)
                )));
            }
        } else if whole.ends_with(b"\r\n") {
            ending = b"\r\n";
        } else if whole.ends_with(b"\n") {
            ending = b"\n";
        }
        let mut i = 0;
        while let Some(&b) = line.get(i) {
            let hex = |j: usize| line.get(j).and_then(|c| (*c as char).to_digit(16));
            match b {
                b'=' => {
                    if let (Some(hi), Some(lo)) = (hex(i + 1), hex(i + 2)) {
                        out.extend(u8::try_from(hi << 4 | lo).ok());
                        i += 3;
                        continue;
                    }
                }
                b'\t' | b'\r' | b'\n' => {}
                0x80.. => {}
                _ if !(b' '..=b'~').contains(&b) => {
                    return Err(BodyError::Multipart(format!(
                        "quotedprintable: invalid unescaped byte {b:#04x} in body"
                    )))
                }
                _ => {}
            }
            out.push(b);
            i += 1;
        }
        out.extend_from_slice(ending);
    }
    Ok(out)
}

/// Go's `matchAfterPrefix` on a complete body: what follows a boundary at `prefix` bytes.
fn boundary_ends(buf: &[u8], prefix: usize) -> bool {
    match buf.get(prefix) {
        None => true,
        Some(b' ' | b'\t' | b'\r' | b'\n') => true,
        Some(b'-') => buf.get(prefix + 1) == Some(&b'-'),
        Some(_) => false,
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn skip_lwsp(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|c| *c != b' ' && *c != b'\t')
        .unwrap_or(b.len());
    b.get(start..).unwrap_or_default()
}

fn trim_lwsp(b: &[u8]) -> &[u8] {
    let b = skip_lwsp(b);
    let end = b
        .iter()
        .rposition(|c| *c != b' ' && *c != b'\t')
        .map_or(0, |e| e + 1);
    b.get(..end).unwrap_or_default()
}

fn trim_newline(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

#[cfg(test)]
mod tests;
