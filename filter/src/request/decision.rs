//! From the policy's value to what happens to the request, with OPA-Envoy's rules: a boolean,
//! or an object with `allowed` and the keys that apply to an allow (headers, removals, response
//! headers, query rewrites) or to a deny (`http_status`, `body`, headers). Every failure —
//! unparsable request, no bundle, evaluation error, undefined or malformed decision — is
//! mapped to a status here and only here.

use regorus::Value;

use super::input::InputError;
use crate::engine::EvalError;

/// What the policy decided, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Allow(Allow),
    Deny(Deny),
}

/// Changes an allow makes on the way through. Header lists are in order; a name that appears
/// several times carries several values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Allow {
    /// Set on the upstream request: the first value of a name replaces, later ones are added.
    pub headers: Vec<(String, String)>,
    pub request_headers_to_remove: Vec<String>,
    /// Added to the response the client gets.
    pub response_headers_to_add: Vec<(String, String)>,
    pub query_parameters_to_set: Vec<(String, Vec<String>)>,
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
}

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
pub fn interpret(decision: &Value) -> Result<Verdict, DecisionError> {
    let object = match decision {
        Value::Bool(true) => return Ok(Verdict::Allow(Allow::default())),
        Value::Bool(false) => return Ok(Verdict::Deny(Deny::forbidden())),
        Value::Object(object) => object,
        other => return Err(DecisionError::WrongType(type_name(other))),
    };
    let get = |key: &str| object.get(&Value::from(key));
    let allowed = match get("allowed") {
        Some(Value::Bool(allowed)) => *allowed,
        _ => return Err(DecisionError::NoAllowed),
    };
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
        headers,
        request_headers_to_remove: match get("request_headers_to_remove") {
            Some(value) => names("request_headers_to_remove", value)?,
            None => Vec::new(),
        },
        response_headers_to_add: match get("response_headers_to_add") {
            Some(value) => header_list("response_headers_to_add", value)?,
            None => Vec::new(),
        },
        query_parameters_to_set: match get("query_parameters_to_set") {
            Some(value) => query_parameters(value)?,
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

fn type_name(value: &Value) -> &'static str {
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
        .map(|n| header_name(n))
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

fn query_parameters(value: &Value) -> Result<Vec<(String, Vec<String>)>, DecisionError> {
    let key = "query_parameters_to_set";
    let Value::Object(entries) = value else {
        return Err(DecisionError::KeyType {
            key,
            expected: "an object",
        });
    };
    entries
        .iter_sorted()
        .map(|(name, values)| match name {
            Value::String(name) => Ok((name.to_string(), string_or_strings(key, values)?)),
            _ => Err(DecisionError::KeyType {
                key,
                expected: "an object with string keys",
            }),
        })
        .collect()
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
            Reason::Allowed => "allowed",
            Reason::Denied => "denied",
            Reason::RequestParseError => "request-parse-error",
            Reason::NoBundle => "no-bundle",
            Reason::UndefinedDecision => "undefined-decision",
            Reason::EvaluationError => "evaluation-error",
            Reason::InvalidDecision => "invalid-decision",
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub action: Action,
    pub reason: Reason,
    /// Dry-run or fail-open let through a request that would otherwise have been answered.
    pub overridden: bool,
    /// What went wrong, when no usable decision was made.
    pub detail: Option<String>,
}

/// Maps a decision (or the failure to get one) to what happens to the request.
pub fn decide(enforcement: Enforcement, decision: Result<Value, Failure>) -> Outcome {
    let verdict = decision.and_then(|value| interpret(&value).map_err(Failure::from));
    let detail = verdict.as_ref().err().map(ToString::to_string);
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
                    detail,
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
        Action::Reply(_) if enforcement.dry_run => Outcome {
            action: Action::Forward(Allow::default()),
            reason,
            overridden: true,
            detail,
        },
        action => Outcome {
            action,
            reason,
            overridden: false,
            detail,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(json: &str) -> Value {
        Value::from_json_str(json).unwrap()
    }

    fn verdict(json: &str) -> Result<Verdict, DecisionError> {
        interpret(&value(json))
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
                "query_parameters_to_remove": ["secret"],
                "dynamic_metadata": {"k": "v"}}"#,
        );
        let pairs = |v: &[(&str, &str)]| {
            v.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            v,
            Ok(Verdict::Allow(Allow {
                headers: pairs(&[("x-user", "alice"), ("x-multi", "a"), ("x-multi", "b")]),
                request_headers_to_remove: vec!["authorization".into()],
                response_headers_to_add: pairs(&[("x-a", "1"), ("x-a", "2")]),
                query_parameters_to_set: vec![
                    ("m".into(), vec!["a".into(), "b".into()]),
                    ("q".into(), vec!["1".into()])
                ],
                query_parameters_to_remove: vec!["secret".into()],
            }))
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
        let input_error = InputError::Path(crate::request::path::PathError::ControlCharacter);
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
        let input_error = InputError::Path(crate::request::path::PathError::ControlCharacter);
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
