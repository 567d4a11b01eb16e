//! Writing a bundle: the OPA layout plus the precompiled program. `policy-bundler build` is a
//! thin wrapper over this; tests use it to make bundles the way users will. (`bundle` reads
//! and verifies bundles; this writes them, with the engine's compiler.)

use crate::bundle::manifest::Metadata;
use crate::bundle::{archive, Bundle, BundleError, Manifest, ProgramInfo, PROGRAM_FILE};
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

/// Builds a bundle from its source files (path inside the bundle, content). `entrypoints` are
/// rules such as `envoy/authz/allow`, already validated as decision paths.
pub fn build(
    mut files: Vec<(String, Vec<u8>)>,
    revision: Option<&str>,
    entrypoints: &[crate::decision_path::DecisionPath],
) -> Result<Built, BuildError> {
    files.retain(|(path, _)| path != PROGRAM_FILE);
    let source = Bundle::from_files(files.clone())?;
    let mut manifest = source.manifest.clone();
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
