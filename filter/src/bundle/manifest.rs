//! The bundle `.manifest`: OPA's fields (`revision`, `roots`, `rego_version`,
//! `file_rego_versions`, `metadata`) and zerohop's own entry in `metadata.zerohop` describing
//! the precompiled program.

use std::collections::BTreeMap;

use globset::{GlobBuilder, GlobMatcher};
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
    /// 0 for Rego v0 syntax, 1 for v1; absent: the loader's default (v1, or v0 with
    /// `--v0-compatible`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rego_version: Option<u8>,
    /// Per-file versions overriding `rego_version`: globs over the file names OPA's loader
    /// gives (`/a/b.rego` in a directory, the entry name as written in a `.tar.gz`) to 0 or 1.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub file_rego_versions: BTreeMap<String, u8>,
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
        for (pattern, version) in &manifest.file_rego_versions {
            if *version > 1 {
                return Err(BundleError::Manifest(format!(
                    "file_rego_versions {pattern:?}: {version} is not 0 or 1"
                )));
            }
            file_glob(pattern)?;
        }
        Ok(manifest)
    }

    /// The Rego version of the file OPA's loader names `name`, as OPA's
    /// `Bundle.RegoVersionForFile` decides: a `file_rego_versions` glob matching the name (`*`
    /// also matches `/`), else `rego_version`, else `default`. OPA takes the first match in
    /// Go's random map order, so a file that globs of both versions match is refused.
    pub fn rego_version_for(
        &self,
        name: &str,
        default: RegoVersion,
    ) -> Result<RegoVersion, BundleError> {
        let mut found: Option<(&str, u8)> = None;
        for (pattern, version) in &self.file_rego_versions {
            if !file_glob(pattern)?.is_match(name) {
                continue;
            }
            match found {
                Some((other, v)) if v != *version => {
                    return Err(BundleError::Manifest(format!(
                        "file_rego_versions {other:?} and {pattern:?} both match {name} \
                         with different versions"
                    )))
                }
                _ => found = Some((pattern, *version)),
            }
        }
        Ok(match found.map(|(_, v)| v).or(self.rego_version) {
            Some(0) => RegoVersion::V0,
            Some(_) => RegoVersion::V1,
            None => default,
        })
    }

    /// The precompiled program's description, if the bundle has one.
    pub fn program(&self) -> Option<&ProgramInfo> {
        self.metadata.as_ref().and_then(|m| m.zerohop.as_ref())
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

/// A Rego language version.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RegoVersion {
    /// Rego v0: no `if` / `contains` unless imported; `p[x] { ... }` is a partial set.
    V0,
    /// Rego v1, OPA 1.x's default.
    #[default]
    V1,
}

impl RegoVersion {
    pub fn number(self) -> u8 {
        match self {
            RegoVersion::V0 => 0,
            RegoVersion::V1 => 1,
        }
    }
}

/// Compiles a `file_rego_versions` glob as OPA's (gobwas/glob without separators): `*` and
/// `**` match any text, `/` included; a backslash escapes. Syntax the two glob dialects read
/// differently (`[^`) is refused rather than guessed.
fn file_glob(pattern: &str) -> Result<GlobMatcher, BundleError> {
    let invalid = |reason: &str| {
        BundleError::Manifest(format!("file_rego_versions glob {pattern:?}: {reason}"))
    };
    if pattern.contains("[^") {
        return Err(invalid("`[^` is ambiguous, write `[!` for a negated class"));
    }
    // Without separators `**` is `*`; globset accepts `**` only as a whole path segment.
    let mut collapsed = String::with_capacity(pattern.len());
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        collapsed.push(c);
        if c == '\\' {
            if let Some(escaped) = chars.next() {
                collapsed.push(escaped);
            }
        } else if c == '*' {
            while chars.peek() == Some(&'*') {
                chars.next();
            }
        }
    }
    GlobBuilder::new(&collapsed)
        .literal_separator(false)
        .backslash_escape(true)
        .build()
        .map(|glob| glob.compile_matcher())
        .map_err(|e| invalid(&e.kind().to_string()))
}

/// `path` as a glob matching only itself (gobwas/glob's `QuoteMeta`).
pub fn quote_glob(path: &str) -> String {
    let mut quoted = String::with_capacity(path.len());
    for c in path.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '{' | '}' | '\\') {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    quoted
}
