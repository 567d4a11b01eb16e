//! Where bundles come from, as configured under `bundle` in the plugin configuration: an inline
//! bootstrap bundle, a bundle `service` polled over an Envoy cluster (OPA's bundle API), its
//! `polling` delays, `signing` keys and the size limit. Raw structs mirror the JSON (unknown
//! keys rejected); `RawBundle::validate` names the key at fault.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::Deserialize;

use super::signature::{Key, Verification};
use super::token::{self, VerifyingKey};
use super::Limits;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBundle {
    inline: Option<String>,
    service: Option<RawService>,
    polling: Option<RawPolling>,
    signing: Option<RawSigning>,
    size_limit_bytes: Option<u64>,
}

/// An HTTP service reached through an Envoy cluster: `bundle.service`, and
/// `decision_logs.service` in the same shape.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawService {
    cluster: String,
    authority: Option<String>,
    path: Option<String>,
    oci: Option<RawOci>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    credentials: Option<RawCredentials>,
    timeout: Option<String>,
}

/// OPA's `type: oci` service: the bundle is the layer of an image in a registry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOci {
    repository: String,
    #[serde(default)]
    tag: Option<String>,
    #[serde(default)]
    digest: Option<String>,
    token_cluster: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCredentials {
    bearer: RawBearer,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBearer {
    token: String,
    scheme: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolling {
    min_delay_seconds: Option<u64>,
    max_delay_seconds: Option<u64>,
    long_polling_timeout_seconds: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSigning {
    keys: BTreeMap<String, RawKey>,
    #[serde(default)]
    keyid: String,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    exclude_files: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKey {
    key: String,
    algorithm: Option<String>,
    #[serde(default)]
    scope: String,
}

use crate::defaults::{DEFAULT_MAX_DELAY_SECONDS, DEFAULT_MIN_DELAY_SECONDS, DEFAULT_TIMEOUT_MS};

/// The validated `bundle` section.
#[derive(Debug, Clone)]
pub struct BundleConfig {
    /// A bundle `.tar.gz` carried in the configuration: active at start-up, replaced by the
    /// first good bundle from the service.
    pub inline: Option<Vec<u8>>,
    pub service: Option<Service>,
    pub polling: Polling,
    /// Bundles from the service must carry a signature these keys verify.
    pub signing: Option<Verification>,
    pub limits: Limits,
}

/// A bundle server reached through an Envoy cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// The Envoy cluster, e.g. Istio's `outbound|80||bundles.zerohop.svc.cluster.local`.
    pub cluster: String,
    pub authority: String,
    /// The bundle's path on an HTTP bundle server; empty for an OCI registry.
    pub path: String,
    /// The bundle is an image in an OCI registry (OPA's `type: oci`) instead.
    pub oci: Option<Oci>,
    /// Extra request headers, the bearer token's `authorization` included.
    pub headers: Vec<(String, String)>,
    pub timeout_ms: u64,
}

/// An image in an OCI registry whose bundle layer is the bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Oci {
    pub repository: String,
    /// A tag or a `sha256:` digest.
    pub reference: String,
    /// The cluster that reaches the registry's token service (the `realm` of its bearer
    /// challenge); default: the registry's own cluster.
    pub token_cluster: Option<String>,
}

/// OPA's `polling`, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Polling {
    pub min_delay_ms: u64,
    pub max_delay_ms: u64,
    pub long_polling_timeout_seconds: Option<u64>,
}

impl Default for Polling {
    fn default() -> Self {
        Self {
            min_delay_ms: DEFAULT_MIN_DELAY_SECONDS * 1000,
            max_delay_ms: DEFAULT_MAX_DELAY_SECONDS * 1000,
            long_polling_timeout_seconds: None,
        }
    }
}

/// A key at fault and why.
pub type Invalid = (&'static str, String);

impl RawBundle {
    pub fn validate(self) -> Result<BundleConfig, Invalid> {
        let inline = self
            .inline
            .map(|encoded| {
                base64::engine::general_purpose::STANDARD
                    .decode(encoded.trim())
                    .map_err(|e| ("bundle.inline", format!("not base64: {e}")))
            })
            .transpose()?;
        if inline.is_none() && self.service.is_none() {
            return Err((
                "bundle",
                "needs `inline` (the base64 of a bundle .tar.gz), `service` (a bundle server), or both"
                    .to_string(),
            ));
        }
        let service = self
            .service
            .map(|s| s.validate(&BUNDLE_SERVICE))
            .transpose()?;
        let polling = match self.polling {
            None => Polling::default(),
            Some(raw) => raw.validate()?,
        };
        if service.is_none() && (self.signing.is_some() || polling != Polling::default()) {
            return Err((
                "bundle.service",
                "`polling` and `signing` apply to a bundle service; none is configured".to_string(),
            ));
        }
        let signing = self.signing.map(RawSigning::validate).transpose()?;
        let mut limits = Limits::default();
        if let Some(limit) = self.size_limit_bytes {
            if limit == 0 {
                return Err(("bundle.size_limit_bytes", "must be above 0".to_string()));
            }
            limits.max_uncompressed_bytes = limit;
        }
        Ok(BundleConfig {
            inline,
            service,
            polling,
            signing,
            limits,
        })
    }
}

/// The keys of one section holding a `RawService`, for its error messages.
pub struct ServiceKeys {
    pub cluster: &'static str,
    pub authority: &'static str,
    pub path: &'static str,
    pub timeout: &'static str,
    pub headers: &'static str,
    /// The path when none is configured; `None`: required.
    pub default_path: Option<&'static str>,
    /// Headers the client sets itself.
    pub reserved_headers: &'static [&'static str],
    /// Whether the service may be an OCI registry (`oci`): bundles only.
    pub oci_allowed: bool,
}

const BUNDLE_SERVICE: ServiceKeys = ServiceKeys {
    cluster: "bundle.service.cluster",
    authority: "bundle.service.authority",
    path: "bundle.service.path",
    timeout: "bundle.service.timeout",
    headers: "bundle.service.headers",
    default_path: None,
    reserved_headers: &["if-none-match", "prefer"],
    oci_allowed: true,
};

impl RawService {
    pub fn validate(self, keys: &ServiceKeys) -> Result<Service, Invalid> {
        if self.cluster.is_empty() {
            return Err((keys.cluster, "must name an Envoy cluster".into()));
        }
        let (path, oci) = match (self.path, self.oci) {
            (Some(_), Some(_)) if keys.oci_allowed => {
                return Err((
                    "bundle.service.oci",
                    "an OCI registry service has no `path`: the repository names the bundle".into(),
                ))
            }
            (None, Some(oci)) if keys.oci_allowed => (String::new(), Some(oci.validate()?)),
            (_, Some(_)) => {
                return Err((keys.path, "`oci` is for bundle services only".into()));
            }
            (path, None) => {
                let path = match (path, keys.default_path) {
                    (Some(path), _) => path,
                    (None, Some(default)) => default.to_string(),
                    (None, None) if keys.oci_allowed => {
                        return Err((
                            keys.path,
                            "required (the bundle on an HTTP server), or `oci` (an image in a registry)"
                                .into(),
                        ))
                    }
                    (None, None) => return Err((keys.path, "is required".into())),
                };
                if !path.starts_with('/') {
                    return Err((keys.path, format!("{path:?} must start with `/`")));
                }
                (path, None)
            }
        };
        let authority = match self.authority {
            Some(a) if !a.is_empty() => a,
            Some(_) => return Err((keys.authority, "must not be empty".into())),
            // Istio's cluster names end with the service's host name.
            None => match self.cluster.rsplit_once("||") {
                Some((prefix, host)) if prefix.starts_with("outbound|") && !host.is_empty() => {
                    host.to_string()
                }
                _ => {
                    return Err((
                        keys.authority,
                        "required unless the cluster is an Istio `outbound|port||host` name".into(),
                    ))
                }
            },
        };
        let timeout_ms = match self.timeout {
            None => DEFAULT_TIMEOUT_MS,
            Some(text) => parse_duration_ms(&text).filter(|ms| *ms > 0).ok_or((
                keys.timeout,
                format!("{text:?} is not a duration above 0 such as \"10s\" or \"500ms\""),
            ))?,
        };
        let mut headers = Vec::new();
        for (name, value) in self.headers {
            let lower = name.to_ascii_lowercase();
            if lower.starts_with(':') || keys.reserved_headers.contains(&lower.as_str()) {
                return Err((keys.headers, format!("{name} is set by the client itself")));
            }
            headers.push((lower, value));
        }
        if let Some(credentials) = self.credentials {
            let scheme = credentials.bearer.scheme.unwrap_or_else(|| "Bearer".into());
            headers.retain(|(n, _)| n != "authorization");
            headers.push((
                "authorization".into(),
                format!("{scheme} {}", credentials.bearer.token),
            ));
        }
        if oci.is_some() && !headers.is_empty() {
            return Err((
                "bundle.service.oci",
                "an OCI registry service takes no `headers` or `credentials` (anonymous or the registry's token flow)"
                    .into(),
            ));
        }
        Ok(Service {
            cluster: self.cluster,
            authority,
            path,
            oci,
            headers,
            timeout_ms,
        })
    }
}

impl RawOci {
    fn validate(self) -> Result<Oci, Invalid> {
        // The distribution spec's repository name grammar, without regular expressions.
        let component_ok = |c: &str| {
            !c.is_empty()
                && c.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
                && c.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
                && c.bytes().last().is_some_and(|b| b.is_ascii_alphanumeric())
        };
        if !self.repository.split('/').all(component_ok) {
            return Err((
                "bundle.service.oci.repository",
                format!(
                    "{:?} is not a repository name such as `team/authz`",
                    self.repository
                ),
            ));
        }
        let reference = match (self.tag, self.digest) {
            (Some(tag), None)
                if !tag.is_empty()
                    && tag.len() <= 128
                    && tag
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)) =>
            {
                tag
            }
            (Some(tag), None) => {
                return Err(("bundle.service.oci.tag", format!("{tag:?} is not a tag")))
            }
            (None, Some(digest))
                if digest.strip_prefix("sha256:").is_some_and(|hex| {
                    hex.len() == 64
                        && hex
                            .bytes()
                            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
                }) =>
            {
                digest
            }
            (None, Some(digest)) => {
                return Err((
                    "bundle.service.oci.digest",
                    format!("{digest:?} is not `sha256:` and 64 lowercase hex digits"),
                ))
            }
            _ => {
                return Err((
                    "bundle.service.oci",
                    "needs exactly one of `tag` and `digest`".into(),
                ))
            }
        };
        if self.token_cluster.as_deref() == Some("") {
            return Err((
                "bundle.service.oci.token_cluster",
                "must name an Envoy cluster".into(),
            ));
        }
        Ok(Oci {
            repository: self.repository,
            reference,
            token_cluster: self.token_cluster,
        })
    }
}

impl RawPolling {
    fn validate(self) -> Result<Polling, Invalid> {
        let min = self.min_delay_seconds.unwrap_or(DEFAULT_MIN_DELAY_SECONDS);
        let max = self
            .max_delay_seconds
            .unwrap_or(DEFAULT_MAX_DELAY_SECONDS.max(min));
        if min == 0 || min > max {
            return Err((
                "bundle.polling",
                format!("min_delay_seconds ({min}) must be at least 1 and at most max_delay_seconds ({max})"),
            ));
        }
        if self.long_polling_timeout_seconds == Some(0) {
            return Err((
                "bundle.polling.long_polling_timeout_seconds",
                "must be above 0".into(),
            ));
        }
        Ok(Polling {
            min_delay_ms: min * 1000,
            max_delay_ms: max * 1000,
            long_polling_timeout_seconds: self.long_polling_timeout_seconds,
        })
    }
}

impl RawSigning {
    fn validate(self) -> Result<Verification, Invalid> {
        if self.keys.is_empty() {
            return Err(("bundle.signing.keys", "needs at least one key".into()));
        }
        if !self.keyid.is_empty() && !self.keys.contains_key(&self.keyid) {
            return Err((
                "bundle.signing.keyid",
                format!("{:?} is not one of signing.keys", self.keyid),
            ));
        }
        let mut keys = BTreeMap::new();
        for (id, raw) in self.keys {
            // OPA's default algorithm.
            let alg = raw.algorithm.as_deref().unwrap_or("RS256");
            let algorithm =
                token::algorithm(alg).map_err(|e| ("bundle.signing.keys", format!("{id}: {e}")))?;
            let key = VerifyingKey::parse(algorithm, &raw.key)
                .map_err(|e| ("bundle.signing.keys", format!("{id}: {e}")))?;
            keys.insert(
                id,
                Key {
                    key,
                    scope: raw.scope,
                },
            );
        }
        Ok(Verification {
            keys,
            keyid: self.keyid,
            scope: self.scope,
            exclude_files: self.exclude_files,
        })
    }
}

/// `"10s"`, `"1.5s"`, `"500ms"` → milliseconds.
fn parse_duration_ms(text: &str) -> Option<u64> {
    let text = text.trim();
    if let Some(ms) = text.strip_suffix("ms") {
        return ms.parse().ok();
    }
    let seconds: f64 = text.strip_suffix('s')?.parse().ok()?;
    (0.0..1e9)
        .contains(&seconds)
        .then(|| (seconds * 1000.0).round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<BundleConfig, Invalid> {
        serde_json::from_str::<RawBundle>(json).unwrap().validate()
    }

    #[test]
    fn service_with_opa_defaults() {
        let config = parse(
            r#"{"service":{"cluster":"outbound|80||bundles.zerohop.svc.cluster.local","path":"/b.tar.gz",
                "headers":{"X-Team":"a"},"credentials":{"bearer":{"token":"t0k"}}}}"#,
        )
        .unwrap();
        let service = config.service.unwrap();
        assert_eq!(service.authority, "bundles.zerohop.svc.cluster.local");
        assert_eq!(service.timeout_ms, 10_000);
        assert_eq!(
            service.headers,
            vec![
                ("x-team".to_string(), "a".to_string()),
                ("authorization".to_string(), "Bearer t0k".to_string())
            ]
        );
        assert_eq!(config.polling, Polling::default());
        assert!(config.inline.is_none());
    }

    #[test]
    fn oci_service() {
        let config = parse(
            r#"{"service":{"cluster":"outbound|5000||registry.example","oci":{"repository":"mesh/authz","tag":"v1"}}}"#,
        )
        .unwrap();
        let service = config.service.unwrap();
        assert_eq!(service.authority, "registry.example");
        assert_eq!(
            service.oci,
            Some(Oci {
                repository: "mesh/authz".into(),
                reference: "v1".into(),
                token_cluster: None
            })
        );
    }

    #[test]
    fn bad_values_name_their_key() {
        let cases = [
            (r#"{}"#, "bundle"),
            (
                r#"{"service":{"cluster":"c","path":"/x"}}"#,
                "bundle.service.authority",
            ),
            (
                r#"{"service":{"cluster":"c","authority":"a"}}"#,
                "bundle.service.path",
            ),
            (
                r#"{"service":{"cluster":"c","authority":"a","path":"/x","oci":{"repository":"r","tag":"t"}}}"#,
                "bundle.service.oci",
            ),
            (
                r#"{"service":{"cluster":"c","authority":"a","oci":{"repository":"Team/x","tag":"t"}}}"#,
                "bundle.service.oci.repository",
            ),
            (
                r#"{"service":{"cluster":"c","authority":"a","oci":{"repository":"r"}}}"#,
                "bundle.service.oci",
            ),
            (
                r#"{"service":{"cluster":"c","authority":"a","oci":{"repository":"r","tag":"a b"}}}"#,
                "bundle.service.oci.tag",
            ),
            (
                r#"{"service":{"cluster":"c","authority":"a","oci":{"repository":"r","digest":"sha256:ab"}}}"#,
                "bundle.service.oci.digest",
            ),
            (
                r#"{"service":{"cluster":"c","authority":"a","path":"x"}}"#,
                "bundle.service.path",
            ),
            (
                r#"{"service":{"cluster":"c","authority":"a","path":"/x","timeout":"0s"}}"#,
                "bundle.service.timeout",
            ),
            (
                r#"{"service":{"cluster":"c","authority":"a","path":"/x","timeout":"10"}}"#,
                "bundle.service.timeout",
            ),
            (
                r#"{"service":{"cluster":"c","authority":"a","path":"/x","headers":{"If-None-Match":"x"}}}"#,
                "bundle.service.headers",
            ),
            (
                r#"{"service":{"cluster":"c","authority":"a","path":"/x"},"polling":{"min_delay_seconds":5,"max_delay_seconds":2}}"#,
                "bundle.polling",
            ),
            (
                r#"{"service":{"cluster":"c","authority":"a","path":"/x"},"polling":{"min_delay_seconds":0}}"#,
                "bundle.polling",
            ),
            (
                r#"{"service":{"cluster":"c","authority":"a","path":"/x"},"signing":{"keys":{"k":{"key":"s","algorithm":"HS999"}}}}"#,
                "bundle.signing.keys",
            ),
            (
                r#"{"service":{"cluster":"c","authority":"a","path":"/x"},"signing":{"keys":{"k":{"key":"not pem"}}}}"#,
                "bundle.signing.keys",
            ),
            (
                r#"{"service":{"cluster":"c","authority":"a","path":"/x"},"signing":{"keys":{"k":{"key":"s","algorithm":"HS256"}},"keyid":"j"}}"#,
                "bundle.signing.keyid",
            ),
            (
                r#"{"inline":"","signing":{"keys":{"k":{"key":"s","algorithm":"HS256"}}}}"#,
                "bundle.service",
            ),
            (
                r#"{"inline":"","size_limit_bytes":0}"#,
                "bundle.size_limit_bytes",
            ),
        ];
        for (json, key) in cases {
            let err = parse(json).unwrap_err();
            assert_eq!(err.0, key, "{json}: {}", err.1);
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("10s"), Some(10_000));
        assert_eq!(parse_duration_ms("1.5s"), Some(1_500));
        assert_eq!(parse_duration_ms("250ms"), Some(250));
        assert_eq!(parse_duration_ms("10"), None);
    }
}
