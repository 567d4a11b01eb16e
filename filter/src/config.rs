//! Plugin configuration: the JSON string Istio passes from `WasmPlugin.pluginConfig`.
//!
//! Parsed in two steps: `RawConfig` mirrors the JSON exactly (unknown keys rejected), then
//! `Config::parse` validates it. Every error names the key at fault. Every default is in
//! `defaults`.

use serde::Deserialize;

use crate::audit::config::{DecisionLogs, RawDecisionLogs};
use crate::bundle::source::{BundleConfig, RawBundle};
use crate::decision_path::DecisionPath;
use crate::engine::budget::Budget;
use crate::request::body::{BodySettings, WithRequestBody};
use crate::request::decision::{is_valid_reply_status, Enforcement};

use crate::defaults::{self, DEFAULT_PATH, DEFAULT_STATUS_ON_ERROR};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    path: Option<String>,
    bundle: RawBundle,
    #[serde(default)]
    dry_run: bool,
    status_on_error: Option<u16>,
    #[serde(default)]
    fail_open: bool,
    with_request_body: Option<RawWithRequestBody>,
    #[serde(default)]
    skip_request_body_parse: bool,
    #[serde(default)]
    timing_stats: bool,
    decision_cache_bytes: Option<u32>,
    max_eval_memory_bytes: Option<u64>,
    max_eval_instructions: Option<u64>,
    max_eval_time_ms: Option<u32>,
    decision_logs: Option<RawDecisionLogs>,
    http_send: Option<RawHttpSend>,
}

/// Where `http.send` may go: each URL origin a policy may call, and the Envoy cluster that
/// reaches it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttpSend {
    clusters: std::collections::BTreeMap<String, String>,
    timeout_ms: Option<u64>,
    max_response_bytes: Option<u32>,
    cached_responses: Option<u32>,
}

/// `http_send`: the callouts policies may make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpSend {
    /// URL origin (`https://users.internal:8443`, default ports left out) → cluster.
    pub clusters: std::collections::BTreeMap<String, String>,
    /// When the request object gives no `timeout`.
    pub timeout_ms: u64,
    pub max_response_bytes: usize,
    /// How many answers of `cache`/`force_cache` requests each VM keeps (0: none).
    pub cached_responses: usize,
}

impl Default for HttpSend {
    fn default() -> Self {
        HttpSend {
            clusters: std::collections::BTreeMap::new(),
            timeout_ms: defaults::DEFAULT_HTTP_SEND_TIMEOUT_MS,
            max_response_bytes: defaults::DEFAULT_HTTP_SEND_MAX_RESPONSE_BYTES as usize,
            cached_responses: defaults::DEFAULT_HTTP_SEND_CACHED_RESPONSES,
        }
    }
}

impl HttpSend {
    /// The cluster for a request's origin (`scheme://authority`).
    pub fn cluster(&self, origin: &str) -> Option<&str> {
        self.clusters
            .get(&normalize_origin(origin))
            .map(String::as_str)
    }
}

/// An origin as the clusters map keys it: lowercase, without the scheme's default port.
fn normalize_origin(origin: &str) -> String {
    let origin = origin.trim_end_matches('/').to_ascii_lowercase();
    for (scheme, port) in [("http://", ":80"), ("https://", ":443")] {
        if origin.starts_with(scheme) {
            if let Some(bare) = origin.strip_suffix(port) {
                return bare.to_string();
            }
        }
    }
    origin
}

/// Envoy ext_authz's `with_request_body` (Istio's `includeRequestBodyInCheck`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWithRequestBody {
    max_request_bytes: u32,
    #[serde(default)]
    allow_partial_message: bool,
    #[serde(default)]
    pack_as_bytes: bool,
}

/// A validated plugin configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The rule whose value is the decision.
    pub path: DecisionPath,
    /// Where policy bundles come from (`bundle.inline`, `bundle.service`, ...).
    pub bundle: BundleConfig,
    /// `dry_run`, `fail_open` and `status_on_error`: how undecidable requests are treated.
    pub enforcement: Enforcement,
    /// `with_request_body` and `skip_request_body_parse`: whether and how bodies reach the input.
    pub body: BodySettings,
    /// `timing_stats`: record each decision's phases as Envoy histograms.
    pub timing_stats: bool,
    /// `decision_cache_bytes`: the memory each VM may give to remembered decisions; 0 turns
    /// the cache off (`engine::cache`).
    pub decision_cache_bytes: usize,
    /// `max_eval_memory_bytes`, `max_eval_instructions`, `max_eval_time_ms`: what one
    /// evaluation may use (`engine::budget`).
    pub budget: Budget,
    /// `decision_logs`: events in OPA's format, to the log and/or a service (`audit`).
    pub decision_logs: Option<DecisionLogs>,
    /// `http_send`: where `http.send` may go; none, a policy's `http.send` fails its
    /// evaluation.
    pub http_send: HttpSend,
    /// What `opa.runtime()` answers: this configuration without its secrets, the VM's
    /// environment, the version (`engine::runtime_info`).
    pub runtime: regorus::Value,
}

impl Default for DecisionPath {
    fn default() -> Self {
        Self::from_valid(DEFAULT_PATH)
    }
}

/// A configuration that cannot be used. The message always names the key at fault.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("plugin configuration is not valid JSON for zerohop: at `{key}`: {message}")]
    Syntax { key: String, message: String },
    #[error("plugin configuration key `{key}`: {message}")]
    Invalid { key: &'static str, message: String },
}

impl Config {
    /// Parses and validates the plugin configuration.
    pub fn parse(json: &[u8]) -> Result<Self, ConfigError> {
        let mut deserializer = serde_json::Deserializer::from_slice(json);
        let raw: RawConfig = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
            let key = e.path().to_string();
            ConfigError::Syntax {
                key: if key == "." {
                    "(top level)".to_string()
                } else {
                    key
                },
                message: e.into_inner().to_string(),
            }
        })?;
        let mut config = Self::validate(raw)?;
        let json: Option<serde_json::Value> = serde_json::from_slice(json).ok();
        config.runtime = crate::engine::runtime_info(json.as_ref());
        Ok(config)
    }

    fn validate(raw: RawConfig) -> Result<Self, ConfigError> {
        let path = match raw.path {
            None => DecisionPath::default(),
            Some(p) => DecisionPath::parse(&p).map_err(|message| ConfigError::Invalid {
                key: "path",
                message,
            })?,
        };
        let status_on_error = raw.status_on_error.unwrap_or(DEFAULT_STATUS_ON_ERROR);
        if !is_valid_reply_status(status_on_error) {
            return Err(ConfigError::Invalid {
                key: "status_on_error",
                message: format!("{status_on_error} is not an HTTP status Envoy can send"),
            });
        }
        let bundle = raw
            .bundle
            .validate()
            .map_err(|(key, message)| ConfigError::Invalid { key, message })?;
        let with_request_body = match raw.with_request_body {
            None => None,
            Some(raw) if raw.max_request_bytes == 0 => {
                return Err(ConfigError::Invalid {
                    key: "with_request_body.max_request_bytes",
                    message: "must be greater than 0".to_string(),
                })
            }
            Some(raw) => Some(WithRequestBody {
                max_request_bytes: raw.max_request_bytes,
                allow_partial_message: raw.allow_partial_message,
                pack_as_bytes: raw.pack_as_bytes,
            }),
        };
        let budget = Budget {
            memory_bytes: positive("max_eval_memory_bytes", raw.max_eval_memory_bytes)?
                .unwrap_or(defaults::DEFAULT_MEMORY_BYTES),
            instructions: positive("max_eval_instructions", raw.max_eval_instructions)?
                .map_or(defaults::DEFAULT_INSTRUCTIONS, |n| {
                    usize::try_from(n).unwrap_or(usize::MAX)
                }),
            time: std::time::Duration::from_millis(u64::from(
                positive("max_eval_time_ms", raw.max_eval_time_ms)?
                    .unwrap_or(defaults::DEFAULT_TIME_MS),
            )),
        };
        let http_send = match raw.http_send {
            None => HttpSend::default(),
            Some(raw) => {
                let mut clusters = std::collections::BTreeMap::new();
                for (origin, cluster) in raw.clusters {
                    let bare = origin.trim_end_matches('/');
                    let authority = bare
                        .strip_prefix("https://")
                        .or_else(|| bare.strip_prefix("http://"));
                    let valid = authority
                        .is_some_and(|a| !a.is_empty() && !a.contains(['/', '?', '#', '@']));
                    if !valid || cluster.is_empty() {
                        return Err(ConfigError::Invalid {
                            key: "http_send.clusters",
                            message: format!(
                                "`{origin}`: keys are URL origins (`https://host[:port]`), \
                                 values Envoy cluster names"
                            ),
                        });
                    }
                    clusters.insert(normalize_origin(&origin), cluster);
                }
                HttpSend {
                    clusters,
                    timeout_ms: positive("http_send.timeout_ms", raw.timeout_ms)?
                        .unwrap_or(defaults::DEFAULT_HTTP_SEND_TIMEOUT_MS),
                    max_response_bytes: positive(
                        "http_send.max_response_bytes",
                        raw.max_response_bytes,
                    )?
                    .unwrap_or(defaults::DEFAULT_HTTP_SEND_MAX_RESPONSE_BYTES)
                        as usize,
                    cached_responses: raw
                        .cached_responses
                        .map_or(defaults::DEFAULT_HTTP_SEND_CACHED_RESPONSES, |n| n as usize),
                }
            }
        };
        Ok(Self {
            runtime: regorus::Value::Undefined,
            http_send,
            path,
            bundle,
            body: BodySettings {
                with_request_body,
                skip_request_body_parse: raw.skip_request_body_parse,
            },
            enforcement: Enforcement {
                dry_run: raw.dry_run,
                fail_open: raw.fail_open,
                status_on_error,
            },
            timing_stats: raw.timing_stats,
            decision_cache_bytes: raw
                .decision_cache_bytes
                .map_or(defaults::DEFAULT_DECISION_CACHE_BYTES, |bytes| {
                    usize::try_from(bytes).unwrap_or(usize::MAX)
                }),
            budget,
            decision_logs: raw
                .decision_logs
                .map(RawDecisionLogs::validate)
                .transpose()
                .map_err(|(key, message)| ConfigError::Invalid { key, message })?,
        })
    }
}

/// A limit that must be greater than 0 when given.
fn positive<N: Default + PartialEq>(
    key: &'static str,
    value: Option<N>,
) -> Result<Option<N>, ConfigError> {
    match value {
        Some(n) if n == N::default() => Err(ConfigError::Invalid {
            key,
            message: "must be greater than 0".to_string(),
        }),
        value => Ok(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Config, ConfigError> {
        Config::parse(json.as_bytes())
    }

    #[test]
    fn defaults_match_opa_envoy() {
        let config = parse(r#"{"bundle":{"inline":"aGk="}}"#).unwrap();
        assert_eq!(config.path.rule(), "data.envoy.authz.allow");
        assert_eq!(config.bundle.inline.as_deref(), Some(&b"hi"[..]));
        assert!(config.bundle.service.is_none());
        assert_eq!(
            config.enforcement,
            Enforcement {
                dry_run: false,
                fail_open: false,
                status_on_error: 403
            }
        );
        assert_eq!(config.body, BodySettings::default());
        assert!(!config.timing_stats);
        assert!(
            parse(r#"{"bundle":{"inline":""},"timing_stats":true}"#)
                .unwrap()
                .timing_stats
        );
        assert_eq!(config.decision_cache_bytes, 1 << 20);
        let off = parse(r#"{"bundle":{"inline":""},"decision_cache_bytes":0}"#).unwrap();
        assert_eq!(off.decision_cache_bytes, 0);
        assert_eq!(
            config.budget,
            Budget {
                memory_bytes: 64 << 20,
                instructions: 5_000_000,
                time: std::time::Duration::from_millis(1000),
            }
        );
    }

    #[test]
    fn evaluation_budgets_are_configurable_and_positive() {
        let config = parse(
            r#"{"bundle":{"inline":""},"max_eval_memory_bytes":1048576,"max_eval_instructions":1000,"max_eval_time_ms":20}"#,
        )
        .unwrap();
        assert_eq!(
            config.budget,
            Budget {
                memory_bytes: 1 << 20,
                instructions: 1000,
                time: std::time::Duration::from_millis(20),
            }
        );
        for key in [
            "max_eval_memory_bytes",
            "max_eval_instructions",
            "max_eval_time_ms",
        ] {
            let err = parse(&format!(r#"{{"bundle":{{"inline":""}},"{key}":0}}"#)).unwrap_err();
            assert_eq!(
                err,
                ConfigError::Invalid {
                    key,
                    message: "must be greater than 0".into()
                }
            );
            let err = parse(&format!(r#"{{"bundle":{{"inline":""}},"{key}":-1}}"#)).unwrap_err();
            assert!(err.to_string().contains(key), "{err}");
        }
    }

    #[test]
    fn request_bodies_are_opt_in_with_envoys_names() {
        let config = parse(
            r#"{"bundle":{"inline":""},"with_request_body":{"max_request_bytes":8192},"skip_request_body_parse":true}"#,
        )
        .unwrap();
        assert_eq!(
            config.body,
            BodySettings {
                with_request_body: Some(WithRequestBody {
                    max_request_bytes: 8192,
                    allow_partial_message: false,
                    pack_as_bytes: false
                }),
                skip_request_body_parse: true
            }
        );
        let config = parse(
            r#"{"bundle":{"inline":""},"with_request_body":{"max_request_bytes":1,"allow_partial_message":true,"pack_as_bytes":true}}"#,
        )
        .unwrap();
        assert_eq!(
            config.body.with_request_body,
            Some(WithRequestBody {
                max_request_bytes: 1,
                allow_partial_message: true,
                pack_as_bytes: true
            })
        );
        let err = parse(r#"{"bundle":{"inline":""},"with_request_body":{}}"#).unwrap_err();
        assert!(
            err.to_string().contains("`with_request_body`")
                && err.to_string().contains("max_request_bytes"),
            "{err}"
        );
        let err = parse(r#"{"bundle":{"inline":""},"with_request_body":{"max_request_bytes":0}}"#)
            .unwrap_err();
        assert!(
            matches!(
                err,
                ConfigError::Invalid {
                    key: "with_request_body.max_request_bytes",
                    ..
                }
            ),
            "{err}"
        );
        let err = parse(r#"{"bundle":{"inline":""},"with_request_body":{"max_request_bytes":-1}}"#)
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("`with_request_body.max_request_bytes`"),
            "{err}"
        );
        let err = parse(r#"{"bundle":{"inline":""},"with_request_body":{"max_request_bytes":9,"packAsBytes":true}}"#).unwrap_err();
        assert!(err.to_string().contains("packAsBytes"), "{err}");
        let err = parse(r#"{"bundle":{"inline":""},"skip_request_body_parse":"no"}"#).unwrap_err();
        assert!(
            err.to_string().contains("`skip_request_body_parse`"),
            "{err}"
        );
    }

    #[test]
    fn path_is_a_rule_reference() {
        let config = parse(r#"{"path":"/istio/authz/allow/","bundle":{"inline":""}}"#).unwrap();
        assert_eq!(config.path.as_path(), "istio/authz/allow");
        assert_eq!(config.path.rule(), "data.istio.authz.allow");
        // Styra DAS: a reference with a quoted segment, or the slash form with any text.
        for path in [
            r#""data.policy[\"com.styra.envoy.ingress\"].rules.rules""#,
            r#""policy/com.styra.envoy.ingress/rules/rules""#,
        ] {
            let config = parse(&format!(r#"{{"path":{path},"bundle":{{"inline":""}}}}"#)).unwrap();
            assert_eq!(
                config.path.rule(),
                r#"data.policy["com.styra.envoy.ingress"].rules.rules"#
            );
        }
        let config = parse(r#"{"path":"istio/authz-x","bundle":{"inline":""}}"#).unwrap();
        assert_eq!(config.path.rule(), r#"data.istio["authz-x"]"#);
        for (path, message) in [
            ("", "must name a rule"),
            (
                r#"data.policy[com].rules"#,
                "column 12: a bracketed segment",
            ),
            (r#"data.a-b"#, r#"column 6: "a-b" is not a Rego identifier"#),
        ] {
            let err =
                parse(&format!(r#"{{"path":"{path}","bundle":{{"inline":""}}}}"#)).unwrap_err();
            match &err {
                ConfigError::Invalid {
                    key: "path",
                    message: m,
                } => {
                    assert!(m.contains(message), "{m}")
                }
                other => panic!("{path}: {other}"),
            }
        }
    }

    #[test]
    fn unknown_keys_are_named() {
        let err = parse(r#"{"bundle":{"inline":""},"dryrun":true}"#).unwrap_err();
        assert!(err.to_string().contains("dryrun"), "{err}");
        let err = parse(r#"{"bundle":{"inlined":""}}"#).unwrap_err();
        assert!(err.to_string().contains("inlined"), "{err}");
    }

    #[test]
    fn wrong_types_name_the_key() {
        let err = parse(r#"{"bundle":{"inline":""},"dry_run":"yes"}"#).unwrap_err();
        assert_eq!(
            err,
            ConfigError::Syntax {
                key: "dry_run".into(),
                message: err_message(&err)
            }
        );
        let err = parse(r#"{"bundle":{"inline":7}}"#).unwrap_err();
        assert!(err.to_string().contains("`bundle.inline`"), "{err}");
        let err = parse(r#"{"bundle":{"inline":""},"status_on_error":"503"}"#).unwrap_err();
        assert!(err.to_string().contains("`status_on_error`"), "{err}");
    }

    fn err_message(err: &ConfigError) -> String {
        match err {
            ConfigError::Syntax { message, .. } | ConfigError::Invalid { message, .. } => {
                message.clone()
            }
        }
    }

    #[test]
    fn invalid_values_are_rejected() {
        let err = parse(r#"{"bundle":{"inline":""},"status_on_error":99}"#).unwrap_err();
        assert!(matches!(
            err,
            ConfigError::Invalid {
                key: "status_on_error",
                ..
            }
        ));
        let err = parse(r#"{"bundle":{"inline":"***"}}"#).unwrap_err();
        assert!(matches!(
            err,
            ConfigError::Invalid {
                key: "bundle.inline",
                ..
            }
        ));
        let err = parse(r#"{"bundle":{}}"#).unwrap_err();
        assert!(matches!(err, ConfigError::Invalid { key: "bundle", .. }));
        let err = parse(r#"{"path":"x"}"#).unwrap_err();
        assert!(err.to_string().contains("bundle"), "{err}");
        let err = parse("not json").unwrap_err();
        assert!(matches!(err, ConfigError::Syntax { .. }));
    }

    #[test]
    fn http_send_maps_url_origins_to_clusters() {
        let config = parse(
            r#"{"bundle": {"inline": "aGk="}, "http_send": {"clusters": {
                "https://Users.Internal:443": "users", "http://quota.internal:8080/": "quota"},
                "timeout_ms": 2000}}"#,
        )
        .unwrap();
        let send = &config.http_send;
        assert_eq!(send.cluster("https://users.internal"), Some("users"));
        assert_eq!(send.cluster("https://users.internal:443"), Some("users"));
        assert_eq!(send.cluster("http://quota.internal:8080"), Some("quota"));
        assert_eq!(send.cluster("http://quota.internal"), None);
        assert_eq!(
            send.cluster("http://users.internal"),
            None,
            "another scheme"
        );
        assert_eq!(send.timeout_ms, 2000);
        assert_eq!(
            parse(r#"{"bundle": {"inline": "aGk="}}"#)
                .unwrap()
                .http_send
                .cluster("http://a"),
            None
        );
        for bad in [
            r#"{"clusters": {"users.internal": "users"}}"#,
            r#"{"clusters": {"https://a/path": "users"}}"#,
            r#"{"clusters": {"https://a": ""}}"#,
            r#"{"clusters": {}, "timeout_ms": 0}"#,
        ] {
            let json = format!(r#"{{"bundle": {{"inline": "aGk="}}, "http_send": {bad}}}"#);
            let error = parse(&json).unwrap_err().to_string();
            assert!(error.contains("http_send."), "{bad}: {error}");
        }
    }
}
