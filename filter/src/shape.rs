//! Which parts of `input` a policy can read, and so which parts each request must build.
//!
//! Building the whole OPA-Envoy `input` costs host calls (the connection, the dynamic metadata)
//! and allocations (every header, the parsed query) that most policies never look at. The
//! bundle's modules are analysed once (`engine::reads`) into `InputReads`, the paths under
//! `input` any rule can reach; `InputShape` turns them into what the builder asks per request.
//! A part no path reaches is left out: the policy cannot tell, because reading it is the only
//! way to notice it.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

/// What analysing a bundle's modules found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Analysis {
    /// What the modules can read of `input`.
    pub input: InputReads,
    /// A builtin the modules call whose answer depends on more than its arguments (the first
    /// found), so that equal inputs may get different decisions.
    pub nondeterministic: Option<String>,
}

/// Paths under `input` a policy reads, each the keys from the root (`["attributes", "request",
/// "http", "method"]`); a path stands for everything below it, and `[]` for all of `input`.
/// No path in the set is below another.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "Vec<Vec<String>>", into = "Vec<Vec<String>>")]
pub struct InputReads(BTreeSet<Vec<String>>);

impl InputReads {
    /// All of `input`: what a policy gets when it is not analysed.
    pub fn everything() -> Self {
        Self(BTreeSet::from([Vec::new()]))
    }

    /// Adds `path`, unless a path above it is in already; drops the paths below it.
    pub fn insert(&mut self, path: Vec<String>) {
        if self.covers(&path) {
            return;
        }
        self.0.retain(|read| !read.starts_with(&path));
        self.0.insert(path);
    }

    /// Whether everything under `path` is read.
    pub fn covers<S: AsRef<str>>(&self, path: &[S]) -> bool {
        self.0.iter().any(|read| is_prefix(read, path))
    }

    /// Whether anything under `path` is read (or `path` lies under a path that is read).
    pub fn touches<S: AsRef<str>>(&self, path: &[S]) -> bool {
        self.0
            .iter()
            .any(|read| is_prefix(read, path) || is_prefix(path, read))
    }

    /// The keys directly under `path` that reads go on to.
    pub fn keys_below<'a, S: AsRef<str>>(&'a self, path: &'a [S]) -> impl Iterator<Item = &'a str> {
        self.0.iter().filter_map(move |read| {
            let next = read.get(path.len())?;
            is_prefix(path, read).then_some(next.as_str())
        })
    }

    pub fn paths(&self) -> impl Iterator<Item = &Vec<String>> {
        self.0.iter()
    }
}

/// As Rego references: `input.parsed_path, input.attributes.request.http.headers["x-user"]`;
/// `nothing of input`.
impl std::fmt::Display for InputReads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.is_empty() {
            return f.write_str("nothing of input");
        }
        for (i, path) in self.0.iter().enumerate() {
            f.write_str(if i == 0 { "input" } else { ", input" })?;
            for key in path {
                let identifier = key.chars().next().is_some_and(|c| !c.is_ascii_digit())
                    && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                if identifier {
                    write!(f, ".{key}")?;
                } else {
                    write!(f, "[{}]", serde_json::Value::from(key.as_str()))?;
                }
            }
        }
        Ok(())
    }
}

fn is_prefix<A: AsRef<str>, B: AsRef<str>>(prefix: &[A], path: &[B]) -> bool {
    prefix.len() <= path.len()
        && prefix
            .iter()
            .zip(path)
            .all(|(a, b)| a.as_ref() == b.as_ref())
}

impl From<Vec<Vec<String>>> for InputReads {
    fn from(paths: Vec<Vec<String>>) -> Self {
        let mut reads = Self::default();
        for path in paths {
            reads.insert(path);
        }
        reads
    }
}

impl From<InputReads> for Vec<Vec<String>> {
    fn from(reads: InputReads) -> Self {
        reads.0.into_iter().collect()
    }
}

/// The headers a request's `input` carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Headers {
    All,
    /// Only these (lower-case) names; none when empty.
    Named(BTreeSet<String>),
}

impl Headers {
    pub fn includes(&self, name: &str) -> bool {
        match self {
            Headers::All => true,
            Headers::Named(names) => names.contains(name),
        }
    }
}

/// What the builder puts in each request's `input`: one flag per part it knows how to leave
/// out, decided once per policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputShape {
    pub source: bool,
    pub destination: bool,
    pub metadata_context: bool,
    pub route_metadata_context: bool,
    pub request_time: bool,
    pub http: HttpShape,
    pub parsed_path: bool,
    pub parsed_query: bool,
    pub parsed_body: bool,
    pub truncated_body: bool,
    pub version: bool,
    pub source_principal: bool,
}

/// `attributes.request.http`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpShape {
    /// Whether `http` itself is present.
    pub present: bool,
    pub id: bool,
    pub method: bool,
    pub path: bool,
    pub host: bool,
    pub scheme: bool,
    pub protocol: bool,
    pub body: bool,
    pub size: bool,
    pub headers: Option<Headers>,
}

const ATTRIBUTES: &str = "attributes";
const HTTP: [&str; 3] = [ATTRIBUTES, "request", "http"];

impl InputShape {
    /// Every part, for a policy that is not analysed.
    pub fn everything() -> Self {
        Self::from(&InputReads::everything())
    }

    /// Whether the request's connection (its peers, principal and protocol) is read.
    pub fn needs_connection(&self) -> bool {
        self.source || self.destination || self.source_principal || self.http.protocol
    }

    /// Whether `attributes` is present.
    pub fn attributes(&self) -> bool {
        self.source
            || self.destination
            || self.metadata_context
            || self.route_metadata_context
            || self.request_time
            || self.http.present
    }

    /// Whether `attributes.request` is present.
    pub fn request(&self) -> bool {
        self.request_time || self.http.present
    }
}

impl From<&InputReads> for InputShape {
    fn from(reads: &InputReads) -> Self {
        let top = |key: &str| reads.touches(&[key]);
        let attribute = |key: &str| reads.touches(&[ATTRIBUTES, key]);
        let http = |key: &str| {
            let [a, r, h] = HTTP;
            reads.touches(&[a, r, h, key])
        };
        let headers_path = {
            let [a, r, h] = HTTP;
            [a, r, h, "headers"]
        };
        let headers = if reads.covers(&headers_path) {
            Some(Headers::All)
        } else if reads.touches(&headers_path) {
            Some(Headers::Named(
                reads
                    .keys_below(&headers_path)
                    .map(str::to_string)
                    .collect(),
            ))
        } else {
            None
        };
        Self {
            source: attribute("source"),
            destination: attribute("destination"),
            metadata_context: attribute("metadataContext"),
            route_metadata_context: attribute("routeMetadataContext"),
            request_time: reads.touches(&[ATTRIBUTES, "request", "time"]),
            http: HttpShape {
                present: reads.touches(&HTTP),
                id: http("id"),
                method: http("method"),
                path: http("path"),
                host: http("host"),
                scheme: http("scheme"),
                protocol: http("protocol"),
                body: http("body") || http("rawBody"),
                size: http("size"),
                headers,
            },
            parsed_path: top("parsed_path"),
            parsed_query: top("parsed_query"),
            parsed_body: top("parsed_body"),
            truncated_body: top("truncated_body"),
            version: top("version"),
            source_principal: top("source_principal"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reads(paths: &[&[&str]]) -> InputReads {
        paths
            .iter()
            .map(|p| p.iter().map(|k| k.to_string()).collect())
            .collect::<Vec<Vec<String>>>()
            .into()
    }

    #[test]
    fn a_path_stands_for_everything_below_it() {
        let r = reads(&[
            &["attributes", "request", "http", "headers", "x-user"],
            &["attributes", "request"],
        ]);
        assert_eq!(r, reads(&[&["attributes", "request"]]));
        assert!(r.covers(&["attributes", "request", "http", "method"]));
        assert!(!r.covers(&["attributes"]));
        assert!(r.touches(&["attributes"]));
        assert!(!r.touches(&["attributes", "source"]));
    }

    #[test]
    fn reads_serialize_as_lists_of_keys() {
        let r = reads(&[
            &["parsed_path"],
            &["attributes", "request", "http", "method"],
        ]);
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(
            json,
            r#"[["attributes","request","http","method"],["parsed_path"]]"#
        );
        assert_eq!(serde_json::from_str::<InputReads>(&json).unwrap(), r);
        assert_eq!(
            r.to_string(),
            "input.attributes.request.http.method, input.parsed_path"
        );
        assert_eq!(InputReads::everything().to_string(), "input");
        assert_eq!(InputReads::default().to_string(), "nothing of input");
    }

    #[test]
    fn everything_keeps_every_part() {
        let shape = InputShape::everything();
        assert_eq!(shape.http.headers, Some(Headers::All));
        assert!(shape.needs_connection() && shape.metadata_context && shape.version);
        assert!(shape.parsed_body && shape.truncated_body && shape.http.body && shape.http.size);
    }

    #[test]
    fn named_headers_and_fields_leave_the_rest_out() {
        let shape = InputShape::from(&reads(&[
            &["attributes", "request", "http", "headers", "authorization"],
            &["attributes", "request", "http", "method"],
            &["parsed_path"],
        ]));
        assert_eq!(
            shape.http.headers,
            Some(Headers::Named(BTreeSet::from(
                ["authorization".to_string()]
            )))
        );
        assert!(shape.http.present && shape.http.method && !shape.http.path && !shape.http.id);
        assert!(shape.parsed_path && !shape.parsed_query && !shape.version);
        assert!(!shape.needs_connection() && !shape.metadata_context && !shape.request_time);
        assert!(shape.attributes() && shape.request());
    }

    #[test]
    fn a_principal_needs_the_connection() {
        let shape = InputShape::from(&reads(&[&["source_principal"]]));
        assert!(shape.needs_connection() && !shape.attributes());
        let shape = InputShape::from(&reads(&[&["attributes", "request", "http", "protocol"]]));
        assert!(shape.needs_connection() && shape.http.present && shape.http.headers.is_none());
    }
}
