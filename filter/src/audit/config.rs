//! `decision_logs` in the plugin configuration, shaped like OPA's section of that name so an
//! OPA-Envoy configuration carries over: `console`, `service` (the shape of `bundle.service`),
//! `reporting`, `mask_decision`, `drop_decision`, `labels`; plus what zerohop adds: which
//! `input` is logged and the default erasures.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::bundle::source::{Invalid, RawService, Service, ServiceKeys};
use crate::decision_path::DecisionPath;
use crate::defaults::{
    DEFAULT_BUFFER_SIZE_LIMIT_BYTES, DEFAULT_DROP_DECISION, DEFAULT_LOGS_MAX_DELAY_SECONDS,
    DEFAULT_LOGS_MIN_DELAY_SECONDS, DEFAULT_LOGS_PATH, DEFAULT_MASK_DECISION,
    DEFAULT_UPLOAD_SIZE_LIMIT_BYTES,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDecisionLogs {
    #[serde(default)]
    console: bool,
    service: Option<RawService>,
    reporting: Option<RawReporting>,
    mask_decision: Option<String>,
    drop_decision: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    input: Option<LoggedInput>,
    default_masks: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReporting {
    min_delay_seconds: Option<u64>,
    max_delay_seconds: Option<u64>,
    upload_size_limit_bytes: Option<u64>,
    buffer_size_limit_bytes: Option<u64>,
    max_decisions_per_second: Option<f64>,
}

/// Which `input` an event carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoggedInput {
    /// The whole input OPA-Envoy builds (and logs), whatever the policy reads: what `replay`
    /// needs to evaluate a candidate that reads more.
    Full,
    /// Only the parts of the input the policy reads (what it was evaluated with): cheaper.
    Read,
}

/// The validated `decision_logs` section.
#[derive(Debug, Clone, PartialEq)]
pub struct DecisionLogs {
    /// One `zerohop-decision {…}` line per event in Envoy's log.
    pub console: bool,
    /// Where events are uploaded with OPA's decision-log API.
    pub service: Option<Service>,
    pub reporting: Reporting,
    /// `data.system.log.mask` by default.
    pub mask_decision: DecisionPath,
    /// `data.system.log.drop` by default.
    pub drop_decision: DecisionPath,
    /// Added to every event's `labels` (next to `id` and `version`).
    pub labels: Vec<(String, String)>,
    pub input: LoggedInput,
    /// Erase credentials headers and the body's raw text from every event (default on).
    pub default_masks: bool,
}

/// `decision_logs.reporting`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reporting {
    pub min_delay_ms: u64,
    pub max_delay_ms: u64,
    /// The largest upload, gzip-compressed (as OPA).
    pub upload_size_limit_bytes: u64,
    /// Events kept for upload, in bytes of their JSON, per VM; the oldest go first.
    pub buffer_size_limit_bytes: u64,
    /// Events per second kept beyond which events are dropped (and counted).
    pub max_decisions_per_second: Option<f64>,
}

const SERVICE_KEYS: ServiceKeys = ServiceKeys {
    cluster: "decision_logs.service.cluster",
    authority: "decision_logs.service.authority",
    path: "decision_logs.service.path",
    timeout: "decision_logs.service.timeout",
    headers: "decision_logs.service.headers",
    default_path: Some(DEFAULT_LOGS_PATH),
    reserved_headers: &["content-type", "content-encoding", "content-length"],
    oci_allowed: false,
};

impl RawDecisionLogs {
    pub fn validate(self) -> Result<DecisionLogs, Invalid> {
        let service = self
            .service
            .map(|s| s.validate(&SERVICE_KEYS))
            .transpose()?;
        if !self.console && service.is_none() {
            return Err((
                "decision_logs",
                "needs `console: true`, a `service`, or both".into(),
            ));
        }
        let rule = |key: &'static str, text: Option<String>, default: &str| {
            DecisionPath::parse(text.as_deref().unwrap_or(default)).map_err(|m| (key, m))
        };
        let mask_decision = rule(
            "decision_logs.mask_decision",
            self.mask_decision,
            DEFAULT_MASK_DECISION,
        )?;
        let drop_decision = rule(
            "decision_logs.drop_decision",
            self.drop_decision,
            DEFAULT_DROP_DECISION,
        )?;
        if let Some(reserved) = ["id", "version"]
            .into_iter()
            .find(|k| self.labels.contains_key(*k))
        {
            return Err((
                "decision_logs.labels",
                format!("`{reserved}` is set by zerohop (as OPA sets it)"),
            ));
        }
        let reporting = match self.reporting {
            None => RawReporting::default().validate()?,
            Some(raw) => raw.validate()?,
        };
        Ok(DecisionLogs {
            console: self.console,
            service,
            reporting,
            mask_decision,
            drop_decision,
            labels: self.labels.into_iter().collect(),
            input: self.input.unwrap_or(LoggedInput::Full),
            default_masks: self.default_masks.unwrap_or(true),
        })
    }
}

impl RawReporting {
    fn validate(self) -> Result<Reporting, Invalid> {
        let min = self
            .min_delay_seconds
            .unwrap_or(DEFAULT_LOGS_MIN_DELAY_SECONDS);
        let max = self
            .max_delay_seconds
            .unwrap_or(DEFAULT_LOGS_MAX_DELAY_SECONDS.max(min));
        if min == 0 || min > max {
            return Err((
                "decision_logs.reporting",
                format!("min_delay_seconds ({min}) must be at least 1 and at most max_delay_seconds ({max})"),
            ));
        }
        let positive = |key: &'static str, value: Option<u64>, default: u64| match value {
            Some(0) => Err((key, "must be above 0".to_string())),
            value => Ok(value.unwrap_or(default)),
        };
        let upload_size_limit_bytes = positive(
            "decision_logs.reporting.upload_size_limit_bytes",
            self.upload_size_limit_bytes,
            DEFAULT_UPLOAD_SIZE_LIMIT_BYTES,
        )?;
        let buffer_size_limit_bytes = positive(
            "decision_logs.reporting.buffer_size_limit_bytes",
            self.buffer_size_limit_bytes,
            DEFAULT_BUFFER_SIZE_LIMIT_BYTES,
        )?;
        if let Some(rate) = self.max_decisions_per_second {
            if !(rate.is_finite() && rate > 0.0) {
                return Err((
                    "decision_logs.reporting.max_decisions_per_second",
                    format!("{rate} is not a rate above 0"),
                ));
            }
        }
        Ok(Reporting {
            min_delay_ms: min * 1000,
            max_delay_ms: max * 1000,
            upload_size_limit_bytes,
            buffer_size_limit_bytes,
            max_decisions_per_second: self.max_decisions_per_second,
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, ConfigError};

    fn parse(logs: &str) -> Result<Config, ConfigError> {
        Config::parse(format!(r#"{{"bundle":{{"inline":""}},"decision_logs":{logs}}}"#).as_bytes())
    }

    fn invalid_key(logs: &str) -> String {
        match parse(logs).unwrap_err() {
            ConfigError::Invalid { key, .. } => key.to_string(),
            ConfigError::Syntax { key, .. } => key,
        }
    }

    #[test]
    fn an_opa_envoy_section_carries_over_with_opas_defaults() {
        let config = parse(
            r#"{"console": true, "service": {"cluster": "outbound|80||logs.ns.svc.cluster.local",
                "credentials": {"bearer": {"token": "t"}}, "timeout": "2s"},
                "reporting": {"min_delay_seconds": 1, "max_delay_seconds": 3,
                  "upload_size_limit_bytes": 1000, "buffer_size_limit_bytes": 5000,
                  "max_decisions_per_second": 100},
                "labels": {"app": "shop"}}"#,
        )
        .unwrap();
        let logs = config.decision_logs.unwrap();
        assert!(logs.console);
        let service = logs.service.unwrap();
        assert_eq!(service.path, "/logs");
        assert_eq!(service.authority, "logs.ns.svc.cluster.local");
        assert_eq!(service.timeout_ms, 2000);
        assert_eq!(
            service.headers,
            vec![("authorization".to_string(), "Bearer t".to_string())]
        );
        assert_eq!(logs.reporting.min_delay_ms, 1000);
        assert_eq!(logs.reporting.max_delay_ms, 3000);
        assert_eq!(logs.reporting.upload_size_limit_bytes, 1000);
        assert_eq!(logs.reporting.buffer_size_limit_bytes, 5000);
        assert_eq!(logs.reporting.max_decisions_per_second, Some(100.0));
        assert_eq!(logs.mask_decision.rule(), "data.system.log.mask");
        assert_eq!(logs.drop_decision.rule(), "data.system.log.drop");
        assert_eq!(logs.labels, vec![("app".to_string(), "shop".to_string())]);
        assert_eq!(logs.input, super::LoggedInput::Full);
        assert!(logs.default_masks);

        let config = parse(r#"{"console": true, "input": "read", "default_masks": false, "mask_decision": "/x/mask"}"#).unwrap();
        let logs = config.decision_logs.unwrap();
        assert_eq!(logs.input, super::LoggedInput::Read);
        assert!(!logs.default_masks);
        assert_eq!(logs.mask_decision.rule(), "data.x.mask");
        assert!(logs.service.is_none());
        assert!(Config::parse(br#"{"bundle":{"inline":""}}"#)
            .unwrap()
            .decision_logs
            .is_none());
    }

    #[test]
    fn mistakes_name_their_key() {
        assert_eq!(invalid_key("{}"), "decision_logs");
        assert_eq!(
            invalid_key(r#"{"console": "yes"}"#),
            "decision_logs.console"
        );
        assert_eq!(invalid_key(r#"{"consol": true}"#), "decision_logs.consol");
        assert_eq!(
            invalid_key(r#"{"service": {"cluster": "c"}}"#),
            "decision_logs.service.authority"
        );
        assert_eq!(
            invalid_key(r#"{"service": {"cluster": "c", "authority": "a", "path": "logs"}}"#),
            "decision_logs.service.path"
        );
        assert_eq!(
            invalid_key(
                r#"{"service": {"cluster": "c", "authority": "a", "headers": {"Content-Encoding": "br"}}}"#
            ),
            "decision_logs.service.headers"
        );
        assert_eq!(
            invalid_key(
                r#"{"console": true, "reporting": {"min_delay_seconds": 5, "max_delay_seconds": 2}}"#
            ),
            "decision_logs.reporting"
        );
        assert_eq!(
            invalid_key(r#"{"console": true, "reporting": {"upload_size_limit_bytes": 0}}"#),
            "decision_logs.reporting.upload_size_limit_bytes"
        );
        assert_eq!(
            invalid_key(r#"{"console": true, "reporting": {"max_decisions_per_second": 0}}"#),
            "decision_logs.reporting.max_decisions_per_second"
        );
        assert_eq!(
            invalid_key(r#"{"console": true, "reporting": {"buffer_type": "size"}}"#),
            "decision_logs.reporting.buffer_type"
        );
        assert_eq!(
            invalid_key(r#"{"console": true, "labels": {"id": "x"}}"#),
            "decision_logs.labels"
        );
        assert_eq!(
            invalid_key(r#"{"console": true, "input": "some"}"#),
            "decision_logs.input"
        );
        assert_eq!(
            invalid_key(r#"{"console": true, "mask_decision": ""}"#),
            "decision_logs.mask_decision"
        );
    }
}
