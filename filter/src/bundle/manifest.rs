//! The bundle `.manifest`: OPA's fields (`revision`, `roots`, `rego_version`, `metadata`) and
//! zerohop's own entry in `metadata.zerohop` describing the precompiled program.

use serde::{Deserialize, Serialize};

use super::BundleError;
use crate::shape::{Analysis, InputReads};

/// OPA's bundle manifest. Unknown fields are kept out but tolerated: OPA adds fields over time.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    #[serde(default)]
    pub revision: String,
    /// Path prefixes of `data` the bundle owns; absent means all of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roots: Option<Vec<String>>,
    /// 0 for Rego v0 syntax, 1 (the default) for v1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rego_version: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
}

/// `metadata`: arbitrary for OPA; zerohop reads only its own key.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zerohop: Option<ProgramInfo>,
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

/// What `policy-bundler build` records about the precompiled program.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProgramInfo {
    /// The regorus version that compiled the program; the filter must run the same.
    pub regorus: String,
    /// regorus's binary program format version.
    pub format: u32,
    /// `COMPILER_REVISION` of the bundler that compiled it (0: before revisions existed).
    #[serde(default)]
    pub compiler: u32,
    /// Rules compiled into the program, e.g. `data.envoy.authz.allow`.
    pub entrypoints: Vec<String>,
    /// The paths under `input` the bundle's Rego can read (`shape`); absent in
    /// bundles built before the analysis, which then get the whole `input` and no decision
    /// cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<InputReads>,
    /// A builtin the Rego calls whose answer depends on more than its arguments (the clock…):
    /// its decisions are not cached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nondeterministic: Option<String>,
}

impl ProgramInfo {
    /// What `policy-bundler build` found analysing the Rego; for a bundle built before the
    /// analysis existed: all of `input`, and decisions that may depend on more than it.
    pub fn analysis(&self) -> Analysis {
        match &self.input {
            Some(input) => Analysis {
                input: input.clone(),
                nondeterministic: self.nondeterministic.clone(),
            },
            None => Analysis {
                input: InputReads::everything(),
                nondeterministic: Some("unknown, the bundle predates the analysis".into()),
            },
        }
    }
}

impl Manifest {
    pub fn parse(bytes: &[u8]) -> Result<Self, BundleError> {
        let manifest: Self =
            serde_json::from_slice(bytes).map_err(|e| BundleError::Manifest(e.to_string()))?;
        if let Some(version) = manifest.rego_version.filter(|v| *v > 1) {
            return Err(BundleError::Manifest(format!(
                "rego_version {version} is not 0 or 1"
            )));
        }
        Ok(manifest)
    }

    /// The precompiled program's description, if the bundle has one.
    pub fn program(&self) -> Option<&ProgramInfo> {
        self.metadata.as_ref().and_then(|m| m.zerohop.as_ref())
    }

    /// Whether the bundle uses Rego v0 syntax.
    pub fn rego_v0(&self) -> bool {
        self.rego_version == Some(0)
    }

    /// Checks that `data_path` (`a/b`, or `""` for the whole of `data`) is under a root.
    pub fn check_in_roots(&self, data_path: &str, file: &str) -> Result<(), BundleError> {
        let Some(roots) = &self.roots else {
            return Ok(());
        };
        let inside = roots.iter().any(|root| {
            let root = root.trim_matches('/');
            // A file placed above a root would write data the bundle does not own.
            root.is_empty()
                || data_path == root
                || data_path
                    .strip_prefix(root)
                    .is_some_and(|rest| rest.starts_with('/'))
        });
        if inside {
            Ok(())
        } else {
            Err(BundleError::OutsideRoots {
                path: file.to_string(),
                roots: roots.clone(),
            })
        }
    }
}
