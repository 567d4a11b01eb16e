//! OPA-Envoy's `path` option: the rule whose value is the decision. A leaf: the configuration,
//! the engine and the bundle writer all name rules with it.

/// OPA-Envoy's `path` (`envoy/authz/allow`) and the rule it names (`data.envoy.authz.allow`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionPath {
    path: String,
    rule: String,
}

impl DecisionPath {
    /// Parses a path as OPA-Envoy does: surrounding slashes ignored, `/` separates segments.
    /// Each segment must be a Rego identifier, so the path names one rule.
    pub fn parse(path: &str) -> Result<Self, String> {
        let trimmed = path.trim_matches('/');
        if trimmed.is_empty() {
            return Err("must name a rule, e.g. \"envoy/authz/allow\"".to_string());
        }
        for segment in trimmed.split('/') {
            if !is_rego_identifier(segment) {
                return Err(format!(
                    "segment {segment:?} of {path:?} is not a Rego identifier (letters, digits, _)"
                ));
            }
        }
        Ok(Self::from_valid(trimmed))
    }

    /// A path already known to be valid, without surrounding slashes.
    pub(crate) fn from_valid(path: &str) -> Self {
        Self {
            path: path.to_string(),
            rule: format!("data.{}", path.replace('/', ".")),
        }
    }

    /// The path as configured, e.g. `envoy/authz/allow`.
    pub fn as_path(&self) -> &str {
        &self.path
    }

    /// The rule reference, e.g. `data.envoy.authz.allow`.
    pub fn rule(&self) -> &str {
        &self.rule
    }
}

fn is_rego_identifier(segment: &str) -> bool {
    let mut chars = segment.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}
