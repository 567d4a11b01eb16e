//! Masking and dropping events as OPA does (`v1/plugins/logs/mask.go`): the bundle's
//! `data.system.log.mask` is evaluated with the event as `input` and answers JSON pointers to
//! erase, or `{"op": "remove" | "upsert", "path", "value"}` objects; pointers must start with
//! `/input` or `/result`, and a pointer to nothing is ignored. `data.system.log.drop` true
//! drops the event. Before the mask rule sees the event, zerohop erases the credentials
//! headers and the body's raw text (`default_masks`), so no rule can forget them; a mask rule
//! that fails or answers something else leaves those default erasures, never less.

use std::sync::LazyLock;

use regorus::Value;
use serde_json::{Map, Value as Json};

use crate::bundle::Bundle;
use crate::decision_path::DecisionPath;
use crate::engine::{self, compile_checks, LoadError};
use crate::request::decision::type_name;

/// Erased from every event unless `default_masks` is off: credentials, and the request body's
/// raw text (`parsed_body` stays, for mask rules to pick from).
pub const DEFAULT_ERASED: [&str; 6] = [
    "/input/attributes/request/http/headers/authorization",
    "/input/attributes/request/http/headers/proxy-authorization",
    "/input/attributes/request/http/headers/cookie",
    "/input/attributes/request/http/headers/set-cookie",
    "/input/attributes/request/http/body",
    "/input/attributes/request/http/rawBody",
];

/// The bundle's mask and drop rules, on an interpreter of their own (they are not the decision
/// rule, so a precompiled program does not hold them).
pub struct LogRules {
    engine: regorus::Engine,
    mask: Option<String>,
    drop: Option<String>,
}

impl LogRules {
    /// `None` when the bundle defines neither rule.
    pub fn load(
        bundle: &Bundle,
        mask: &DecisionPath,
        drop: &DecisionPath,
    ) -> Result<Option<Self>, LoadError> {
        // Parsing the bundle a second time is paid only by a bundle that may hold the rules.
        let mentioned = |path: &DecisionPath| {
            path.segments().first().is_some_and(|first| {
                bundle
                    .modules
                    .iter()
                    .any(|m| m.source.contains(first.as_str()))
            })
        };
        if !mentioned(mask) && !mentioned(drop) {
            return Ok(None);
        }
        let mut engine = engine::parse(bundle)?;
        let paths = compile_checks::rule_paths(engine.get_modules());
        let present = |path: &DecisionPath| {
            paths
                .iter()
                .any(|p| p.starts_with(path.segments()))
                .then(|| path.rule().to_string())
        };
        let (mask, drop) = (present(mask), present(drop));
        if mask.is_none() && drop.is_none() {
            return Ok(None);
        }
        Ok(Some(Self { engine, mask, drop }))
    }

    fn eval(&mut self, rule: &str, event: &Value) -> Result<Value, String> {
        self.engine.set_input(event.clone());
        self.engine
            .eval_rule(rule.to_string())
            .map_err(|e| format!("{e:#}"))
    }

    /// Whether `data.system.log.drop` is true for `event`.
    pub fn drops(&mut self, event: &Value) -> Result<bool, String> {
        let Some(rule) = self.drop.clone() else {
            return Ok(false);
        };
        Ok(self.eval(&rule, event)? == Value::Bool(true))
    }

    /// The mask rule's answer for `event`, checked: `Ok(vec![])` when there is no rule or it is
    /// undefined.
    pub fn masks(&mut self, event: &Value) -> Result<Vec<Op>, String> {
        let Some(rule) = self.mask.clone() else {
            return Ok(Vec::new());
        };
        match self.eval(&rule, event)? {
            Value::Undefined => Ok(Vec::new()),
            answer => ops(&answer),
        }
    }
}

/// One masking operation.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    Remove(String),
    Upsert(String, Json),
}

/// Reads the mask rule's answer: a set (or array) of pointers or operation objects.
pub fn ops(answer: &Value) -> Result<Vec<Op>, String> {
    let items: Vec<&Value> = match answer {
        Value::Set(items) => items.iter().collect(),
        Value::Array(items) => items.iter().collect(),
        other => {
            return Err(format!(
                "the mask rule answered {}, not a set",
                type_name(other)
            ))
        }
    };
    items.into_iter().map(op).collect()
}

fn op(item: &Value) -> Result<Op, String> {
    let op = match item {
        Value::String(path) => Op::Remove(checked(path)?),
        Value::Object(fields) => {
            let get = |key: &str| fields.get(&Value::from(key));
            let path = match get("path") {
                Some(Value::String(path)) => checked(path)?,
                _ => return Err("a mask object needs a string `path`".into()),
            };
            match get("op") {
                Some(Value::String(op)) if op.as_ref() == "remove" => Op::Remove(path),
                Some(Value::String(op)) if op.as_ref() == "upsert" => {
                    let value = get("value").ok_or("an upsert needs a `value`")?;
                    let value = serde_json::to_value(value).map_err(|e| e.to_string())?;
                    Op::Upsert(path, value)
                }
                _ => return Err("a mask object's `op` must be \"remove\" or \"upsert\"".into()),
            }
        }
        other => {
            return Err(format!(
                "a mask entry must be a pointer or an object, not {}",
                type_name(other)
            ))
        }
    };
    Ok(op)
}

/// OPA accepts pointers under `/input` and `/result` (and `/nd_builtin_cache`, which zerohop
/// does not log).
fn checked(path: &str) -> Result<String, String> {
    let under = |root: &str| path == root || path.starts_with(&format!("{root}/"));
    if under("/input") || under("/result") {
        Ok(path.to_string())
    } else {
        Err(format!(
            "mask pointer {path:?} must start with /input or /result"
        ))
    }
}

/// Applies `ops` to `event`, recording what was done in `erased` and `masked` (pointers that
/// reach nothing are ignored, as in OPA).
pub fn apply(event: &mut Map<String, Json>, ops: &[Op]) {
    let mut erased = Vec::new();
    let mut masked = Vec::new();
    for op in ops {
        match op {
            Op::Remove(path) => {
                if remove(event, path) {
                    erased.push(Json::from(path.as_str()));
                }
            }
            Op::Upsert(path, value) => {
                if upsert(event, path, value.clone()) {
                    masked.push(Json::from(path.as_str()));
                }
            }
        }
    }
    for (key, mut list) in [("erased", erased), ("masked", masked)] {
        if list.is_empty() {
            continue;
        }
        match event.get_mut(key) {
            Some(Json::Array(existing)) => existing.append(&mut list),
            _ => {
                event.insert(key.into(), Json::Array(list));
            }
        }
    }
}

/// A pointer's parent and last segment, unescaped (`~1` is `/`, `~0` is `~`).
fn split(path: &str) -> Option<(Vec<String>, String)> {
    let mut segments: Vec<String> = path
        .strip_prefix('/')?
        .split('/')
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect();
    let last = segments.pop()?;
    Some((segments, last))
}

fn parent<'a>(event: &'a mut Map<String, Json>, segments: &[String]) -> Option<&'a mut Json> {
    let (first, rest) = segments.split_first()?;
    let mut node = event.get_mut(first)?;
    for segment in rest {
        node = match node {
            Json::Object(fields) => fields.get_mut(segment)?,
            Json::Array(items) => items.get_mut(segment.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(node)
}

fn remove(event: &mut Map<String, Json>, path: &str) -> bool {
    let Some((segments, last)) = split(path) else {
        return false;
    };
    if segments.is_empty() {
        return event.remove(&last).is_some();
    }
    match parent(event, &segments) {
        Some(Json::Object(fields)) => fields.remove(&last).is_some(),
        Some(Json::Array(items)) => match last.parse::<usize>() {
            Ok(i) if i < items.len() => {
                items.remove(i);
                true
            }
            _ => false,
        },
        _ => false,
    }
}

fn upsert(event: &mut Map<String, Json>, path: &str, value: Json) -> bool {
    let Some((segments, last)) = split(path) else {
        return false;
    };
    if segments.is_empty() {
        event.insert(last, value);
        return true;
    }
    match parent(event, &segments) {
        Some(Json::Object(fields)) => {
            fields.insert(last, value);
            true
        }
        Some(Json::Array(items)) => match last.parse::<usize>().ok().and_then(|i| items.get_mut(i))
        {
            Some(slot) => {
                *slot = value;
                true
            }
            None => false,
        },
        _ => false,
    }
}

/// `DEFAULT_ERASED` as engine values: the path to `http`, then (key, pointer) below
/// `http.headers` and below `http`.
struct ErasedKeys {
    http: [Value; 3],
    headers: Value,
    in_headers: Vec<(Value, &'static str)>,
    in_http: Vec<(Value, &'static str)>,
}

static ERASED_KEYS: LazyLock<ErasedKeys> = LazyLock::new(|| {
    const HTTP: &str = "/input/attributes/request/http/";
    let (mut in_headers, mut in_http) = (Vec::new(), Vec::new());
    for pointer in DEFAULT_ERASED {
        let below = pointer.strip_prefix(HTTP).unwrap_or(pointer);
        match below.strip_prefix("headers/") {
            Some(header) => in_headers.push((Value::from(header), pointer)),
            None => in_http.push((Value::from(below), pointer)),
        }
    }
    ErasedKeys {
        http: ["attributes", "request", "http"].map(Value::from),
        headers: Value::from("headers"),
        in_headers,
        in_http,
    }
});

/// Erases `DEFAULT_ERASED` from the input an event will carry, before it is written; returns
/// the pointers that reached something, for the event's `erased`. Nothing is copied unless
/// something is erased (the input's objects may be shared).
pub fn erase_defaults(input: &mut Value) -> Vec<&'static str> {
    let keys = &*ERASED_KEYS;
    let found = |node: &Value, wanted: &[(Value, &'static str)]| -> Vec<(Value, &'static str)> {
        let Ok(fields) = node.as_object() else {
            return Vec::new();
        };
        wanted
            .iter()
            .filter(|(key, _)| fields.contains_key(key))
            .cloned()
            .collect()
    };
    let Some(http) = keys
        .http
        .iter()
        .try_fold(&*input, |node, key| node.as_object().ok()?.get(key))
    else {
        return Vec::new();
    };
    let headers = http
        .as_object()
        .ok()
        .and_then(|fields| fields.get(&keys.headers));
    let in_headers = headers
        .map(|h| found(h, &keys.in_headers))
        .unwrap_or_default();
    let in_http = found(http, &keys.in_http);
    if in_headers.is_empty() && in_http.is_empty() {
        return Vec::new();
    }
    let Some(http) = keys
        .http
        .iter()
        .try_fold(input, |node, key| node.as_object_mut().ok()?.get_mut(key))
    else {
        return Vec::new();
    };
    let Ok(http) = http.as_object_mut() else {
        return Vec::new();
    };
    for (key, _) in &in_http {
        http.remove(key);
    }
    if let Some(Ok(headers)) = http.get_mut(&keys.headers).map(Value::as_object_mut) {
        for (key, _) in &in_headers {
            headers.remove(key);
        }
    }
    in_headers
        .into_iter()
        .chain(in_http)
        .map(|(_, pointer)| pointer)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(value: Json) -> Map<String, Json> {
        match value {
            Json::Object(map) => map,
            _ => unreachable!(),
        }
    }

    #[test]
    fn pointers_remove_and_upsert_and_ignore_what_is_not_there() {
        let mut e = event(json!({
            "input": {"a": {"b~c/d": 1, "keep": 2}, "list": [1, 2, 3]},
            "result": {"allowed": true}
        }));
        let answer = Value::from_json_str(
            r#"["/input/a/b~0c~1d", "/input/nothing/here", "/input/list/1",
                {"op": "upsert", "path": "/input/a/keep", "value": "x"},
                {"op": "upsert", "path": "/result/new", "value": [1]},
                {"op": "remove", "path": "/result/allowed"}]"#,
        )
        .unwrap();
        apply(&mut e, &ops(&answer).unwrap());
        assert_eq!(
            Json::Object(e),
            json!({
                "input": {"a": {"keep": "x"}, "list": [1, 3]},
                "result": {"new": [1]},
                "erased": ["/input/a/b~0c~1d", "/input/list/1", "/result/allowed"],
                "masked": ["/input/a/keep", "/result/new"]
            })
        );
    }

    #[test]
    fn answers_that_are_not_masks_are_refused() {
        for answer in [
            r#""/input""#,
            r#"["/labels/id"]"#,
            r#"["/inputs"]"#,
            r#"[{"op": "replace", "path": "/input/a"}]"#,
            r#"[{"op": "upsert", "path": "/input/a"}]"#,
            r#"[7]"#,
        ] {
            let value = Value::from_json_str(answer).unwrap();
            assert!(ops(&value).is_err(), "{answer}");
        }
    }

    #[test]
    fn credentials_and_raw_bodies_are_erased_by_default() {
        let mut input = Value::from_json_str(
            r#"{"attributes": {"request": {"http": {
                "headers": {"authorization": "Bearer s3cret", "cookie": "c", "x": "y"},
                "body": "password=1"}}}, "parsed_body": {"password": 1}}"#,
        )
        .unwrap();
        let shared = input.clone();
        let erased = erase_defaults(&mut input);
        assert_eq!(
            input,
            Value::from_json_str(
                r#"{"attributes": {"request": {"http": {"headers": {"x": "y"}}}},
                    "parsed_body": {"password": 1}}"#
            )
            .unwrap()
        );
        assert_eq!(
            erased,
            [
                "/input/attributes/request/http/headers/authorization",
                "/input/attributes/request/http/headers/cookie",
                "/input/attributes/request/http/body",
            ]
        );
        assert!(
            shared.to_json_str().unwrap().contains("s3cret"),
            "a copy is not touched"
        );
        let mut nothing = Value::from_json_str(r#"{"attributes": {"source": {}}}"#).unwrap();
        assert!(erase_defaults(&mut nothing).is_empty());
    }
}
