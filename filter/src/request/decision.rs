//! From the policy's value to what happens to the request, with OPA-Envoy's rules: a boolean,
//! or an object with `allowed` and the keys that apply to an allow (headers, removals, response
//! headers, query rewrites) or to a deny (`http_status`, `body`, headers), plus
//! `dynamic_metadata` for both. Every failure — unparsable request, no bundle, evaluation
//! error, undefined or malformed decision — is mapped to a status here and only here.
//!
//! What the keys do is what Envoy 1.40's ext_authz filter does with the `CheckResponse`
//! OPA-Envoy (`envoyauth/response.go`) builds from them: every header value is a
//! `HeaderValueOption` without `append`, so on an allow each one overwrites the request header
//! (the last value of a name wins), while on a deny and in `response_headers_to_add` each one is
//! added; `query_parameters_to_set` replaces a parameter with its last value.

use regorus::Value;

use super::input::InputError;
use crate::engine::EvalError;

/// What the policy decided, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub verdict: Verdict,
    /// The object decision's `dynamic_metadata`, on an allow or a deny.
    pub dynamic_metadata: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Allow(Allow),
    Deny(Deny),
}

/// Changes an allow makes on the way through, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Allow {
    /// Set on the upstream request, replacing what the client sent: one value per name, the
    /// last one the decision gave.
    pub headers: Vec<(String, String)>,
    pub request_headers_to_remove: Vec<String>,
    /// Added to the response the client gets; a name given several values is added several times.
    pub response_headers_to_add: Vec<(String, String)>,
    /// One value per parameter, the last one the decision gave.
    pub query_parameters_to_set: Vec<(String, String)>,
    pub query_parameters_to_remove: Vec<String>,
}

/// A local reply sent instead of forwarding the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deny {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// A decision value that does not follow OPA-Envoy's format; treated as an evaluation error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecisionError {
    #[error("decision must be a boolean or an object, got {0}")]
    WrongType(&'static str),
    #[error("decision object has no boolean `allowed` key")]
    NoAllowed,
    #[error("decision key `{key}` must be {expected}")]
    KeyType {
        key: &'static str,
        expected: &'static str,
    },
    #[error("decision `http_status` {0} is not an HTTP status Envoy can send")]
    BadStatus(String),
    #[error("decision header name {0:?} is not a valid HTTP header name")]
    BadHeaderName(String),
    #[error("decision header {name:?} has a value with CR, LF or NUL")]
    BadHeaderValue { name: String },
    #[error("decision key `{key}` names {name:?}, which frames the message or the connection: a policy may not set or remove it")]
    ReservedHeader { key: &'static str, name: String },
}

/// Headers a decision may not set, add or remove. Measured in Envoy 1.40 (tests/e2e/
/// test_security.py): a `content-length` or `transfer-encoding` set on an allowed request
/// reaches the upstream next to the real body framing (a smuggled request), one added to the
/// response gives the client two lengths, and `host` replaces the authority the request is
/// routed and sent with. The hop-by-hop ones (RFC 9110 §7.6.1) are the connection's, not
/// the policy's. Envoy's ext_authz ignores `host` and pseudo-headers; zerohop refuses the
/// decision (`invalid-decision`), so the policy's author sees it. Removing `host` stays a
/// no-op, as in ext_authz.
pub const RESERVED_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
];

/// Envoy's `envoy.type.v3.StatusCode` values, which is what OPA-Envoy accepts for
/// `http_status`, less the 1xx codes, which cannot end a request.
const REPLY_STATUSES: &[u16] = &[
    200, 201, 202, 203, 204, 205, 206, 207, 208, 226, 300, 301, 302, 303, 304, 305, 307, 308, 400,
    401, 402, 403, 404, 405, 406, 407, 408, 409, 410, 411, 412, 413, 414, 415, 416, 417, 421, 422,
    423, 424, 426, 428, 429, 431, 500, 501, 502, 503, 504, 505, 506, 507, 508, 510, 511,
];

/// Whether `status` can end a request as a local reply.
pub fn is_valid_reply_status(status: u16) -> bool {
    REPLY_STATUSES.contains(&status)
}

/// Reads a decision value the way OPA-Envoy does.
pub fn interpret(decision: &Value) -> Result<Decision, DecisionError> {
    let object = match decision {
        Value::Bool(allowed) => {
            return Ok(Decision {
                verdict: if *allowed {
                    Verdict::Allow(Allow::default())
                } else {
                    Verdict::Deny(Deny::forbidden())
                },
                dynamic_metadata: None,
            })
        }
        Value::Object(object) => object,
        other => return Err(DecisionError::WrongType(type_name(other))),
    };
    let get = |key: &str| object.get(&Value::from(key));
    let allowed = match get("allowed") {
        Some(Value::Bool(allowed)) => *allowed,
        _ => return Err(DecisionError::NoAllowed),
    };
    let dynamic_metadata = match get("dynamic_metadata") {
        Some(value @ Value::Object(_)) => Some(value.clone()),
        Some(_) => {
            return Err(DecisionError::KeyType {
                key: "dynamic_metadata",
                expected: "an object",
            })
        }
        None => None,
    };
    let verdict = verdict(allowed, &get)?;
    Ok(Decision {
        verdict,
        dynamic_metadata,
    })
}

fn verdict<'a>(
    allowed: bool,
    get: &impl Fn(&str) -> Option<&'a Value>,
) -> Result<Verdict, DecisionError> {
    let headers = match get("headers") {
        Some(value) => header_list("headers", value)?,
        None => Vec::new(),
    };
    if !allowed {
        let status = match get("http_status") {
            Some(value) => status(value)?,
            None => 403,
        };
        let body = match get("body") {
            Some(Value::String(body)) => body.to_string(),
            Some(_) => {
                return Err(DecisionError::KeyType {
                    key: "body",
                    expected: "a string",
                })
            }
            None => String::new(),
        };
        return Ok(Verdict::Deny(Deny {
            status,
            headers,
            body,
        }));
    }
    Ok(Verdict::Allow(Allow {
        headers: last_values(headers),
        request_headers_to_remove: match get("request_headers_to_remove") {
            Some(value) => names("request_headers_to_remove", value)?,
            None => Vec::new(),
        },
        response_headers_to_add: match get("response_headers_to_add") {
            Some(value) => header_list("response_headers_to_add", value)?,
            None => Vec::new(),
        },
        query_parameters_to_set: match get("query_parameters_to_set") {
            Some(value) => last_values(query_parameters(value)?),
            None => Vec::new(),
        },
        query_parameters_to_remove: match get("query_parameters_to_remove") {
            Some(value) => strings("query_parameters_to_remove", value)?,
            None => Vec::new(),
        },
    }))
}

impl Deny {
    fn forbidden() -> Self {
        Self {
            status: 403,
            headers: Vec::new(),
            body: String::new(),
        }
    }
}

/// How a message names the type of a value ("an array").
pub(crate) fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Set(_) => "a set",
        Value::Object(_) => "an object",
        Value::Undefined => "undefined",
    }
}

fn status(value: &Value) -> Result<u16, DecisionError> {
    let Value::Number(number) = value else {
        return Err(DecisionError::KeyType {
            key: "http_status",
            expected: "a number",
        });
    };
    let status = number
        .as_u64()
        .filter(|s| number.as_f64() == Some(*s as f64))
        .and_then(|s| u16::try_from(s).ok())
        .filter(|s| is_valid_reply_status(*s));
    status.ok_or_else(|| DecisionError::BadStatus(value.to_json_str().unwrap_or_default()))
}

/// `{name: value | [value]}` or an array of such objects, as OPA-Envoy accepts for headers.
fn header_list(key: &'static str, value: &Value) -> Result<Vec<(String, String)>, DecisionError> {
    let expected = "an object of header values, or an array of such objects";
    let objects: Vec<&Value> = match value {
        Value::Object(_) => vec![value],
        Value::Array(items) => items.iter().collect(),
        _ => return Err(DecisionError::KeyType { key, expected }),
    };
    let mut headers = Vec::new();
    for object in objects {
        let Value::Object(entries) = object else {
            return Err(DecisionError::KeyType { key, expected });
        };
        for (name, values) in entries.iter_sorted() {
            let Value::String(name) = name else {
                return Err(DecisionError::KeyType { key, expected });
            };
            let name = header_name(name)?;
            if RESERVED_HEADERS.contains(&name.as_str()) {
                return Err(DecisionError::ReservedHeader { key, name });
            }
            for value in string_or_strings(key, values)? {
                if value.contains(['\r', '\n', '\0']) {
                    return Err(DecisionError::BadHeaderValue { name });
                }
                headers.push((name.clone(), value));
            }
        }
    }
    Ok(headers)
}

fn header_name(name: &str) -> Result<String, DecisionError> {
    // RFC 9110 token characters.
    let valid = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if valid {
        Ok(name.to_ascii_lowercase())
    } else {
        Err(DecisionError::BadHeaderName(name.to_string()))
    }
}

fn names(key: &'static str, value: &Value) -> Result<Vec<String>, DecisionError> {
    strings(key, value)?
        .iter()
        .map(|n| {
            let name = header_name(n)?;
            if name != "host" && RESERVED_HEADERS.contains(&name.as_str()) {
                return Err(DecisionError::ReservedHeader { key, name });
            }
            Ok(name)
        })
        .collect()
}

fn strings(key: &'static str, value: &Value) -> Result<Vec<String>, DecisionError> {
    let err = DecisionError::KeyType {
        key,
        expected: "an array of strings",
    };
    let items: Vec<&Value> = match value {
        Value::Array(items) => items.iter().collect(),
        Value::Set(items) => items.iter().collect(),
        _ => return Err(err),
    };
    items
        .into_iter()
        .map(|item| match item {
            Value::String(s) => Ok(s.to_string()),
            _ => Err(err.clone()),
        })
        .collect()
}

fn string_or_strings(key: &'static str, value: &Value) -> Result<Vec<String>, DecisionError> {
    match value {
        Value::String(s) => Ok(vec![s.to_string()]),
        Value::Array(_) => strings(key, value),
        _ => Err(DecisionError::KeyType {
            key,
            expected: "a string or an array of strings",
        }),
    }
}

fn query_parameters(value: &Value) -> Result<Vec<(String, String)>, DecisionError> {
    let key = "query_parameters_to_set";
    let Value::Object(entries) = value else {
        return Err(DecisionError::KeyType {
            key,
            expected: "an object",
        });
    };
    let mut parameters = Vec::new();
    for (name, values) in entries.iter_sorted() {
        let Value::String(name) = name else {
            return Err(DecisionError::KeyType {
                key,
                expected: "an object with string keys",
            });
        };
        for value in string_or_strings(key, values)? {
            parameters.push((name.to_string(), value));
        }
    }
    Ok(parameters)
}

/// Envoy applies each `(name, value)` as a set, so the last value of a name is what remains;
/// names keep the order of their first appearance.
fn last_values(pairs: Vec<(String, String)>) -> Vec<(String, String)> {
    let mut kept: Vec<(String, String)> = Vec::with_capacity(pairs.len());
    for (name, value) in pairs {
        match kept.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = value,
            None => kept.push((name, value)),
        }
    }
    kept
}

/// How the filter treats requests it cannot decide on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Enforcement {
    /// Evaluate and log, but never block a request.
    pub dry_run: bool,
    /// Let requests through when no decision can be made (evaluation error, no bundle).
    pub fail_open: bool,
    /// The status sent when the decision is undefined, malformed or evaluation fails.
    pub status_on_error: u16,
}

/// Why no decision value could be used.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error(transparent)]
    Input(#[from] InputError),
    #[error("no policy bundle is active")]
    NoBundle,
    #[error(transparent)]
    Evaluation(#[from] EvalError),
    #[error(transparent)]
    Decision(#[from] DecisionError),
}

/// The stable reason of an outcome: the label of logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Allowed,
    Denied,
    RequestParseError,
    NoBundle,
    UndefinedDecision,
    EvaluationError,
    InvalidDecision,
}

impl Reason {
    pub fn code(self) -> &'static str {
        match self {
            Reason::Allowed => crate::codes::ALLOWED.name,
            Reason::Denied => crate::codes::DENIED.name,
            Reason::RequestParseError => crate::codes::REQUEST_PARSE_ERROR.name,
            Reason::NoBundle => crate::codes::NO_BUNDLE.name,
            Reason::UndefinedDecision => crate::codes::UNDEFINED_DECISION.name,
            Reason::EvaluationError => crate::codes::EVALUATION_ERROR.name,
            Reason::InvalidDecision => crate::codes::INVALID_DECISION.name,
        }
    }
}

/// What to do with the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Forward, applying these changes.
    Forward(Allow),
    /// Answer locally.
    Reply(Deny),
}

/// The outcome for one request: the action and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub action: Action,
    pub reason: Reason,
    /// Dry-run or fail-open let through a request that would otherwise have been answered.
    pub overridden: bool,
    /// The status the local reply would have had, when the request was let through instead.
    pub would_be_status: Option<u16>,
    /// What went wrong, when no usable decision was made.
    pub detail: Option<String>,
    /// The decision's `dynamic_metadata`; kept under dry-run, as OPA-Envoy keeps it.
    pub dynamic_metadata: Option<Value>,
}

/// Maps a decision (or the failure to get one) to what happens to the request.
pub fn decide(enforcement: Enforcement, decision: Result<Value, Failure>) -> Outcome {
    let decision = decision.and_then(|value| interpret(&value).map_err(Failure::from));
    let detail = decision.as_ref().err().map(ToString::to_string);
    let (verdict, dynamic_metadata) = match decision {
        Ok(Decision {
            verdict,
            dynamic_metadata,
        }) => (Ok(verdict), dynamic_metadata),
        Err(failure) => (Err(failure), None),
    };
    let (action, reason) = match verdict {
        Ok(Verdict::Allow(allow)) => (Action::Forward(allow), Reason::Allowed),
        Ok(Verdict::Deny(deny)) => (Action::Reply(deny), Reason::Denied),
        Err(Failure::Input(e)) if e.is_bad_request() => (
            Action::Reply(Deny {
                status: 400,
                headers: Vec::new(),
                body: e.to_string(),
            }),
            Reason::RequestParseError,
        ),
        Err(failure) => {
            let reason = match failure {
                Failure::NoBundle => Reason::NoBundle,
                Failure::Evaluation(EvalError::Undefined) => Reason::UndefinedDecision,
                Failure::Decision(_) => Reason::InvalidDecision,
                _ => Reason::EvaluationError,
            };
            let status = if reason == Reason::NoBundle {
                503
            } else {
                enforcement.status_on_error
            };
            if enforcement.fail_open {
                return Outcome {
                    action: Action::Forward(Allow::default()),
                    reason,
                    overridden: true,
                    would_be_status: Some(status),
                    detail,
                    dynamic_metadata,
                };
            }
            (
                Action::Reply(Deny {
                    status,
                    headers: Vec::new(),
                    body: String::new(),
                }),
                reason,
            )
        }
    };
    match action {
        Action::Reply(deny) if enforcement.dry_run => Outcome {
            action: Action::Forward(Allow::default()),
            reason,
            overridden: true,
            would_be_status: Some(deny.status),
            detail,
            dynamic_metadata,
        },
        action => Outcome {
            action,
            reason,
            overridden: false,
            would_be_status: None,
            detail,
            dynamic_metadata,
        },
    }
}

/// The id of one decision: a random (version 4) UUID, as OPA-Envoy gives every decision. It
/// ties the request, the access log and the decision log together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecisionId([u8; 16]);

impl DecisionId {
    /// A version 4 UUID from 16 random bytes.
    pub fn from_random(mut bytes: [u8; 16]) -> Self {
        if let Some(version) = bytes.get_mut(6) {
            *version = (*version & 0x0f) | 0x40;
        }
        if let Some(variant) = bytes.get_mut(8) {
            *variant = (*variant & 0x3f) | 0x80;
        }
        Self(bytes)
    }
}

impl std::fmt::Display for DecisionId {
    /// The canonical form, as Go's `uuid.NewString()`: `xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx`.
    /// Written by hand: `write!` per byte costs ~5,000 instructions, a fifth of a decision.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut text = [0u8; 36];
        let mut at = 0;
        for (i, byte) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                if let Some(slot) = text.get_mut(at) {
                    *slot = b'-';
                }
                at += 1;
            }
            for nibble in [byte >> 4, byte & 0x0f] {
                if let (Some(slot), Some(digit)) = (text.get_mut(at), HEX.get(usize::from(nibble)))
                {
                    *slot = *digit;
                }
                at += 1;
            }
        }
        // Only ASCII went in.
        f.write_str(std::str::from_utf8(&text).unwrap_or_default())
    }
}

/// Makes decision ids: a ChaCha12 generator seeded once from the host's randomness (in Envoy,
/// WASI `random_get`), so an id costs no call out of the VM.
pub struct DecisionIds(rand::rngs::StdRng);

impl DecisionIds {
    /// Seeded from the operating system (Envoy's `random_get`); `None` if it has no randomness.
    pub fn from_system() -> Option<Self> {
        use rand::SeedableRng;
        rand::rngs::StdRng::try_from_rng(&mut rand::rngs::SysRng)
            .ok()
            .map(Self)
    }

    /// Seeded from a number: ids still differ from one another, but are predictable. Only for
    /// a host without randomness, and for benchmarks.
    pub fn from_seed(seed: u64) -> Self {
        use rand::SeedableRng;
        Self(rand::rngs::StdRng::seed_from_u64(seed))
    }

    pub fn next_id(&mut self) -> DecisionId {
        let mut bytes = [0; 16];
        rand::Rng::fill_bytes(&mut self.0, &mut bytes);
        DecisionId::from_random(bytes)
    }
}

/// What OPA-Envoy hands Envoy as the response's dynamic metadata, as one compact JSON object: the
/// decision's `dynamic_metadata` with `decision_id` set (OPA-Envoy overwrites a policy's own
/// `decision_id`).
pub fn metadata_json(dynamic_metadata: &Value, decision_id: DecisionId) -> String {
    let mut metadata = dynamic_metadata.clone();
    if let Ok(fields) = metadata.as_object_mut() {
        fields.insert(
            Value::from("decision_id"),
            Value::from(decision_id.to_string()),
        );
    }
    serde_json::to_string(&metadata).unwrap_or_else(|_| "{}".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(json: &str) -> Value {
        Value::from_json_str(json).unwrap()
    }

    fn verdict(json: &str) -> Result<Verdict, DecisionError> {
        interpret(&value(json)).map(|d| d.verdict)
    }

    #[test]
    fn booleans() {
        assert_eq!(verdict("true"), Ok(Verdict::Allow(Allow::default())));
        assert_eq!(verdict("false"), Ok(Verdict::Deny(Deny::forbidden())));
    }

    #[test]
    fn allow_object_keeps_allow_only_keys() {
        let v = verdict(
            r#"{"allowed": true, "http_status": 401, "body": "ignored",
                "headers": {"X-User": "alice", "x-multi": ["a", "b"]},
                "request_headers_to_remove": ["authorization"],
                "response_headers_to_add": [{"x-a": "1"}, {"x-a": "2"}],
                "query_parameters_to_set": {"q": "1", "m": ["a", "b"]},
                "query_parameters_to_remove": ["secret"]}"#,
        );
        let pairs = |v: &[(&str, &str)]| {
            v.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            v,
            Ok(Verdict::Allow(Allow {
                // Each value overwrites the one before: the last one wins.
                headers: pairs(&[("x-user", "alice"), ("x-multi", "b")]),
                request_headers_to_remove: vec!["authorization".into()],
                response_headers_to_add: pairs(&[("x-a", "1"), ("x-a", "2")]),
                query_parameters_to_set: pairs(&[("m", "b"), ("q", "1")]),
                query_parameters_to_remove: vec!["secret".into()],
            }))
        );
    }

    #[test]
    fn headers_given_as_an_array_of_objects_apply_in_order() {
        let v =
            verdict(r#"{"allowed": true, "headers": [{"x-a": "1"}, {"x-b": "2", "x-a": "3"}]}"#);
        let Ok(Verdict::Allow(allow)) = v else {
            panic!("{v:?}")
        };
        assert_eq!(
            allow.headers,
            vec![("x-a".into(), "3".into()), ("x-b".into(), "2".into())]
        );
        let v = verdict(r#"{"allowed": false, "headers": [{"x-a": "1"}, {"x-a": ["2", "3"]}]}"#);
        let Ok(Verdict::Deny(deny)) = v else {
            panic!("{v:?}")
        };
        // A deny adds every value to the local reply.
        assert_eq!(
            deny.headers,
            vec![
                ("x-a".into(), "1".into()),
                ("x-a".into(), "2".into()),
                ("x-a".into(), "3".into())
            ]
        );
    }

    #[test]
    fn dynamic_metadata_comes_with_allows_and_denies() {
        for allowed in ["true", "false"] {
            let d = interpret(&value(&format!(
                r#"{{"allowed": {allowed}, "dynamic_metadata": {{"user": "alice", "n": 1}}}}"#
            )))
            .unwrap();
            assert_eq!(
                d.dynamic_metadata,
                Some(value(r#"{"user": "alice", "n": 1}"#))
            );
        }
        assert_eq!(interpret(&value("true")).unwrap().dynamic_metadata, None);
        assert_eq!(
            interpret(&value(r#"{"allowed": true, "dynamic_metadata": ["x"]}"#)),
            Err(DecisionError::KeyType {
                key: "dynamic_metadata",
                expected: "an object"
            })
        );
    }

    #[test]
    fn dry_run_keeps_the_dynamic_metadata_of_a_deny() {
        let dry = Enforcement {
            dry_run: true,
            ..STRICT
        };
        let o = decide(
            dry,
            Ok(value(
                r#"{"allowed": false, "dynamic_metadata": {"why": "no"}}"#,
            )),
        );
        assert_eq!(
            (reply_status(&o), o.dynamic_metadata),
            (None, Some(value(r#"{"why": "no"}"#)))
        );
    }

    #[test]
    fn decision_ids_are_version_4_uuids() {
        let id = DecisionId::from_random([0xff; 16]).to_string();
        assert_eq!(id, "ffffffff-ffff-4fff-bfff-ffffffffffff");
        let id = DecisionId::from_random([0; 16]).to_string();
        assert_eq!(id, "00000000-0000-4000-8000-000000000000");
    }

    #[test]
    fn generated_ids_differ() {
        let mut ids = DecisionIds::from_system().unwrap();
        let (a, b) = (ids.next_id(), ids.next_id());
        assert_ne!(a, b);
        assert_eq!(a.to_string().as_bytes()[14], b'4');
    }

    #[test]
    fn metadata_carries_the_decision_id_over_the_policys_own() {
        let id = DecisionId::from_random([0; 16]);
        let json = metadata_json(&value(r#"{"decision_id": "mine", "user": "alice"}"#), id);
        assert_eq!(
            value(&json),
            value(r#"{"decision_id": "00000000-0000-4000-8000-000000000000", "user": "alice"}"#)
        );
    }

    #[test]
    fn deny_object_keeps_deny_keys() {
        let v = verdict(
            r#"{"allowed": false, "http_status": 401, "body": "who are you?",
                "headers": {"www-authenticate": "Basic"},
                "request_headers_to_remove": "ignored on deny"}"#,
        );
        assert_eq!(
            v,
            Ok(Verdict::Deny(Deny {
                status: 401,
                headers: vec![("www-authenticate".into(), "Basic".into())],
                body: "who are you?".into()
            }))
        );
        assert_eq!(
            verdict(r#"{"allowed": false}"#),
            Ok(Verdict::Deny(Deny::forbidden()))
        );
    }

    #[test]
    fn malformed_decisions_are_errors() {
        assert_eq!(
            verdict(r#""yes""#),
            Err(DecisionError::WrongType("a string"))
        );
        assert_eq!(verdict("{}"), Err(DecisionError::NoAllowed));
        assert_eq!(
            verdict(r#"{"allowed": "true"}"#),
            Err(DecisionError::NoAllowed)
        );
        for status in ["999", "418", "99", "100", "403.5", "-1", "\"403\""] {
            let err =
                verdict(&format!(r#"{{"allowed": false, "http_status": {status}}}"#)).unwrap_err();
            assert!(
                matches!(
                    err,
                    DecisionError::BadStatus(_)
                        | DecisionError::KeyType {
                            key: "http_status",
                            ..
                        }
                ),
                "{status}: {err}"
            );
        }
        assert_eq!(
            verdict(r#"{"allowed": true, "headers": {"x-a": "1\r\nx-b: 2"}}"#),
            Err(DecisionError::BadHeaderValue { name: "x-a".into() })
        );
        assert_eq!(
            verdict(r#"{"allowed": true, "headers": {"x-a": "nul\u0000"}}"#),
            Err(DecisionError::BadHeaderValue { name: "x-a".into() })
        );
        assert_eq!(
            verdict(r#"{"allowed": false, "headers": {"bad name": "1"}}"#),
            Err(DecisionError::BadHeaderName("bad name".into()))
        );
        assert_eq!(
            verdict(r#"{"allowed": true, "headers": {":path": "/admin"}}"#),
            Err(DecisionError::BadHeaderName(":path".into()))
        );
        for (key, allowed) in [
            ("headers", true),
            ("response_headers_to_add", true),
            ("headers", false),
        ] {
            for name in RESERVED_HEADERS {
                let decision = format!(r#"{{"allowed": {allowed}, "{key}": {{"{name}": "0"}}}}"#);
                assert!(
                    matches!(
                        verdict(&decision),
                        Err(DecisionError::ReservedHeader { .. })
                    ),
                    "{decision}"
                );
                let upper = decision.replace(name, &name.to_ascii_uppercase());
                assert!(
                    matches!(verdict(&upper), Err(DecisionError::ReservedHeader { .. })),
                    "{upper}"
                );
            }
        }
        for name in [
            "content-length",
            "transfer-encoding",
            "connection",
            "te",
            "upgrade",
        ] {
            let decision =
                format!(r#"{{"allowed": true, "request_headers_to_remove": ["{name}"]}}"#);
            assert!(
                matches!(
                    verdict(&decision),
                    Err(DecisionError::ReservedHeader { .. })
                ),
                "{decision}"
            );
        }
        assert!(
            verdict(r#"{"allowed": true, "request_headers_to_remove": ["host"]}"#).is_ok(),
            "removing host is ignored, as ext_authz does"
        );
        assert!(matches!(
            verdict(r#"{"allowed": true, "headers": {"x": 1}}"#),
            Err(DecisionError::KeyType { key: "headers", .. })
        ));
        assert!(matches!(
            verdict(r#"{"allowed": false, "body": 1}"#),
            Err(DecisionError::KeyType { key: "body", .. })
        ));
    }

    const STRICT: Enforcement = Enforcement {
        dry_run: false,
        fail_open: false,
        status_on_error: 403,
    };

    fn reply_status(outcome: &Outcome) -> Option<u16> {
        match &outcome.action {
            Action::Reply(deny) => Some(deny.status),
            Action::Forward(_) => None,
        }
    }

    #[test]
    fn failures_map_to_documented_statuses() {
        let input_error = InputError::Path(crate::request::path::PathError::Semicolon);
        let o = decide(STRICT, Err(Failure::Input(input_error)));
        assert_eq!(
            (reply_status(&o), o.reason),
            (Some(400), Reason::RequestParseError)
        );
        let o = decide(STRICT, Err(Failure::NoBundle));
        assert_eq!((reply_status(&o), o.reason), (Some(503), Reason::NoBundle));
        let custom = Enforcement {
            status_on_error: 500,
            ..STRICT
        };
        let o = decide(custom, Err(EvalError::Undefined.into()));
        assert_eq!(
            (reply_status(&o), o.reason),
            (Some(500), Reason::UndefinedDecision)
        );
        let o = decide(custom, Ok(value(r#""allow""#)));
        assert_eq!(
            (reply_status(&o), o.reason),
            (Some(500), Reason::InvalidDecision)
        );
        let o = decide(STRICT, Ok(Value::from(false)));
        assert_eq!(
            (reply_status(&o), o.reason, o.overridden),
            (Some(403), Reason::Denied, false)
        );
    }

    #[test]
    fn fail_open_forwards_only_what_could_not_be_decided() {
        let open = Enforcement {
            fail_open: true,
            ..STRICT
        };
        let o = decide(open, Err(EvalError::Undefined.into()));
        assert_eq!((reply_status(&o), o.overridden), (None, true));
        let o = decide(open, Err(Failure::NoBundle));
        assert_eq!((reply_status(&o), o.overridden), (None, true));
        let o = decide(open, Ok(Value::from(false)));
        assert_eq!(reply_status(&o), Some(403));
        let input_error = InputError::Path(crate::request::path::PathError::Semicolon);
        let o = decide(open, Err(Failure::Input(input_error)));
        assert_eq!(reply_status(&o), Some(400));
    }

    #[test]
    fn dry_run_forwards_everything_but_keeps_the_reason() {
        let dry = Enforcement {
            dry_run: true,
            ..STRICT
        };
        let o = decide(dry, Ok(Value::from(false)));
        assert_eq!(
            (reply_status(&o), o.reason, o.overridden),
            (None, Reason::Denied, true)
        );
        let o = decide(dry, Ok(Value::from(true)));
        assert_eq!(
            (reply_status(&o), o.reason, o.overridden),
            (None, Reason::Allowed, false)
        );
        let o = decide(dry, Err(Failure::NoBundle));
        assert_eq!((reply_status(&o), o.reason), (None, Reason::NoBundle));
    }
}
