//! Writing a bundle: the OPA layout plus the precompiled program. `policy-bundler build` is a
//! thin wrapper over this; tests use it to make bundles the way users will. (`bundle` reads
//! and verifies bundles; this writes them, with the engine's compiler.)

use crate::bundle::manifest::quote_glob;
use crate::bundle::manifest::Metadata;
use crate::bundle::{
    archive, Bundle, BundleError, Layout, Manifest, ProgramInfo, RegoVersion, PROGRAM_FILE,
};
use crate::engine::{self, Compiled, LoadError};
use crate::{COMPILER_REVISION, REGORUS_VERSION};

/// What `build` made.
pub struct Built {
    /// The bundle `.tar.gz`.
    pub targz: Vec<u8>,
    pub manifest: Manifest,
    /// Why the entrypoints were not precompiled (the filter then compiles or interprets the
    /// Rego when it loads the bundle), or `None` when they were.
    pub not_precompiled: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Bundle(#[from] BundleError),
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error("writing the bundle: {0}")]
    Io(#[from] std::io::Error),
    #[error("serializing the program: {0}")]
    Serialize(String),
}

/// Builds a bundle from the files of a directory (path inside the bundle, content), Rego v1
/// unless its manifest says otherwise. `entrypoints` are rules such as `envoy/authz/allow`,
/// already validated as decision paths.
pub fn build(
    files: Vec<(String, Vec<u8>)>,
    revision: Option<&str>,
    entrypoints: &[crate::decision_path::DecisionPath],
) -> Result<Built, BuildError> {
    build_as(files, revision, entrypoints, RegoVersion::V1)
}

/// `build`, with `default` the version of files the manifest gives none (`--v0-compatible`).
pub fn build_as(
    mut files: Vec<(String, Vec<u8>)>,
    revision: Option<&str>,
    entrypoints: &[crate::decision_path::DecisionPath],
    default: RegoVersion,
) -> Result<Built, BuildError> {
    files.retain(|(path, _)| path != PROGRAM_FILE);
    let source = Bundle::assemble(files.clone(), &Layout::Directory, default)?;
    let mut manifest = source.manifest.clone();
    record_rego_versions(&mut manifest, &source, default);
    if let Some(revision) = revision {
        manifest.revision = revision.to_string();
    }
    let rules: Vec<&str> = entrypoints.iter().map(|e| e.rule()).collect();
    let mut not_precompiled = None;
    let mut metadata = manifest.metadata.take().unwrap_or_default();
    metadata.zerohop = None;
    if rules.is_empty() {
        not_precompiled = Some("no entrypoint was given".to_string());
    } else {
        match engine::compile(&source, &rules)? {
            Compiled::Program { program, analysis } => {
                let bytes = program.serialize_binary().map_err(BuildError::Serialize)?;
                files.push((PROGRAM_FILE.to_string(), bytes));
                metadata.zerohop = Some(ProgramInfo {
                    regorus: REGORUS_VERSION.to_string(),
                    format: regorus::rvm::program::Program::SERIALIZATION_VERSION,
                    compiler: COMPILER_REVISION,
                    entrypoints: rules.iter().map(|r| r.to_string()).collect(),
                    input: Some(analysis.input),
                    nondeterministic: analysis.nondeterministic,
                });
            }
            Compiled::Interpreter { reason, .. } => not_precompiled = Some(reason),
        }
    }
    manifest.metadata = (metadata != Metadata::default()).then_some(metadata);
    let manifest_json =
        serde_json::to_vec(&manifest).map_err(|e| BuildError::Serialize(e.to_string()))?;
    files.retain(|(path, _)| path != ".manifest");
    files.insert(0, (".manifest".to_string(), manifest_json));
    Ok(Built {
        targz: archive::write_targz(&files)?,
        manifest,
        not_precompiled,
    })
}

/// Writes each module's version into `manifest` as `opa build` does, so that the built bundle
/// loads the same everywhere (its entry names differ from the directory's `/a/b.rego`): the
/// bundle's version, and an exact entry for each module of the other version.
fn record_rego_versions(manifest: &mut Manifest, source: &Bundle, default: RegoVersion) {
    let global = match manifest.rego_version {
        Some(0) => RegoVersion::V0,
        Some(_) => RegoVersion::V1,
        None => default,
    };
    if manifest.rego_version.is_some() || global == RegoVersion::V0 {
        manifest.rego_version = Some(global.number());
    }
    manifest.file_rego_versions = source
        .modules
        .iter()
        .filter(|m| m.rego_version != global)
        .map(|m| (quote_glob(&m.path), m.rego_version.number()))
        .collect();
}
