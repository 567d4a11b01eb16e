//! The bundle path: an OPA bundle (`.tar.gz` with `.manifest`, `*.rego`, `data.json` /
//! `data.yaml`) read within limits (`archive`), its manifest (`manifest`) and the optional
//! precompiled regorus program that `policy-bundler build` adds. A bundle that fails any
//! check is an error with a stable code; nothing here evaluates policy.

pub mod archive;
pub mod hash;
pub mod manifest;
pub mod signature;
pub mod source;
pub mod token;

use std::collections::BTreeMap;

use regorus::Value;

pub use archive::{Limits, MAX_FILES};
pub use manifest::{Manifest, ProgramInfo, RegoVersion};

/// Where `policy-bundler build` puts the precompiled program inside the bundle.
pub const PROGRAM_FILE: &str = ".zerohop/program.rvm";

/// One Rego module of the bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Module {
    /// Path inside the bundle, e.g. `envoy/authz.rego`.
    pub path: String,
    pub source: String,
    /// The version it is parsed as (`Manifest::rego_version_for`).
    pub rego_version: RegoVersion,
}

/// Where a bundle's files come from, which decides the names OPA's loader gives them: the
/// names `file_rego_versions` globs are matched against.
#[derive(Debug, Clone, Default)]
pub enum Layout {
    /// A directory (`opa build -b DIR`): `/a/b.rego`.
    #[default]
    Directory,
    /// A `.tar.gz`: each entry's name as written (`/a/b.rego`, `a/b.rego`, `./a/b.rego`), by
    /// path inside the bundle.
    Archive(BTreeMap<String, String>),
}

impl Layout {
    fn opa_name(&self, path: &str) -> String {
        match self {
            Layout::Directory => format!("/{path}"),
            Layout::Archive(names) => names.get(path).cloned().unwrap_or_else(|| path.to_string()),
        }
    }
}

/// A bundle read and checked: everything evaluation needs.
#[derive(Debug, Clone)]
pub struct Bundle {
    pub manifest: Manifest,
    pub modules: Vec<Module>,
    /// All data files merged at their directory paths.
    pub data: Value,
    /// The precompiled program, if the bundle carries one.
    pub program: Option<Vec<u8>>,
    /// Every file in the bundle and its size, in archive order.
    pub files: Vec<(String, usize)>,
}

/// Why a bundle was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    #[error("bundle is not a gzip stream: {0}")]
    NotGzip(String),
    #[error("bundle is not a valid tar archive: {0}")]
    NotTar(String),
    #[error("bundle entry {path:?} is not allowed: {reason}")]
    BadEntry { path: String, reason: &'static str },
    #[error("bundle holds {path:?} twice")]
    Duplicate { path: String },
    #[error("bundle is larger than the limit: more than {limit} bytes uncompressed")]
    TooLarge { limit: u64 },
    #[error("bundle holds more than {limit} files")]
    TooManyFiles { limit: usize },
    #[error("bundle .manifest is invalid: {0}")]
    Manifest(String),
    #[error("bundle data file {path}: {message}")]
    Data { path: String, message: String },
    #[error("bundle file {path} is outside the manifest roots {roots:?}")]
    OutsideRoots { path: String, roots: Vec<String> },
    #[error("bundle file {path} is not UTF-8")]
    NotUtf8 { path: String },
}

impl BundleError {
    /// A stable kebab-case code for logs and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            BundleError::NotGzip(_) => crate::codes::NOT_GZIP.name,
            BundleError::NotTar(_) => crate::codes::NOT_TAR.name,
            BundleError::BadEntry { .. } => crate::codes::BAD_ENTRY.name,
            BundleError::Duplicate { .. } => crate::codes::DUPLICATE_ENTRY.name,
            BundleError::TooLarge { .. } => crate::codes::TOO_LARGE.name,
            BundleError::TooManyFiles { .. } => crate::codes::TOO_MANY_FILES.name,
            BundleError::Manifest(_) => crate::codes::BAD_MANIFEST.name,
            BundleError::Data { .. } => crate::codes::BAD_DATA.name,
            BundleError::OutsideRoots { .. } => crate::codes::OUTSIDE_ROOTS.name,
            BundleError::NotUtf8 { .. } => crate::codes::NOT_UTF8.name,
        }
    }
}

impl Bundle {
    /// Reads a bundle `.tar.gz`, its Rego v1 unless the manifest says otherwise.
    pub fn from_targz(bytes: &[u8], limits: &Limits) -> Result<Self, BundleError> {
        Self::from_targz_as(bytes, limits, RegoVersion::V1)
    }

    /// Reads a bundle `.tar.gz`; `default` is the version of files the manifest gives none
    /// (OPA's `--v0-compatible`).
    pub fn from_targz_as(
        bytes: &[u8],
        limits: &Limits,
        default: RegoVersion,
    ) -> Result<Self, BundleError> {
        let (files, names) = archive::read_targz_named(bytes, limits)?;
        Self::assemble(files, &Layout::Archive(names), default)
    }

    /// Assembles a bundle from the files of a directory (path inside the bundle, content),
    /// its Rego v1 unless the manifest says otherwise.
    pub fn from_files(files: Vec<(String, Vec<u8>)>) -> Result<Self, BundleError> {
        Self::assemble(files, &Layout::Directory, RegoVersion::V1)
    }

    /// Assembles a bundle from its files; each module's Rego version is the manifest's for its
    /// name in `layout`, else `default`.
    pub fn assemble(
        files: Vec<(String, Vec<u8>)>,
        layout: &Layout,
        default: RegoVersion,
    ) -> Result<Self, BundleError> {
        let mut manifest = Manifest::default();
        let mut modules = Vec::new();
        let mut data_files = Vec::new();
        let mut program = None;
        let listing = files.iter().map(|(p, b)| (p.clone(), b.len())).collect();
        for (path, bytes) in files {
            let name = path.rsplit('/').next().unwrap_or(&path);
            if path == ".manifest" {
                manifest = Manifest::parse(&bytes)?;
            } else if path == PROGRAM_FILE {
                program = Some(bytes);
            } else if name.ends_with(".rego") {
                let source = String::from_utf8(bytes)
                    .map_err(|_| BundleError::NotUtf8 { path: path.clone() })?;
                modules.push(Module {
                    path,
                    source,
                    rego_version: default,
                });
            } else if matches!(name, "data.json" | "data.yaml" | "data.yml") {
                data_files.push((path, bytes));
            }
            // OPA ignores every other file; so do we.
        }
        // The manifest may come after the modules in an archive.
        for module in &mut modules {
            module.rego_version =
                manifest.rego_version_for(&layout.opa_name(&module.path), default)?;
        }
        let mut data = Value::new_object();
        for (path, bytes) in data_files {
            let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
            manifest.check_in_roots(dir, &path)?;
            merge_data(&mut data, dir, parse_data(&path, &bytes)?, &path)?;
        }
        Ok(Self {
            manifest,
            modules,
            data,
            program,
            files: listing,
        })
    }
}

fn parse_data(path: &str, bytes: &[u8]) -> Result<Value, BundleError> {
    let data_error = |message: String| BundleError::Data {
        path: path.to_string(),
        message,
    };
    let text = std::str::from_utf8(bytes).map_err(|_| BundleError::NotUtf8 {
        path: path.to_string(),
    })?;
    if path.ends_with(".json") {
        Value::from_json_str(text).map_err(|e| data_error(e.to_string()))
    } else {
        yaml_serde::from_str::<serde_json::Value>(text)
            .map(Value::from)
            .map_err(|e| data_error(e.to_string()))
    }
}

/// Places `value` at `dir` (`a/b` → `data.a.b`), merging objects; anything else that meets an
/// existing value is a conflict, as in OPA.
fn merge_data(root: &mut Value, dir: &str, value: Value, path: &str) -> Result<(), BundleError> {
    let conflict = || BundleError::Data {
        path: path.to_string(),
        message: "conflicts with data from another file".to_string(),
    };
    let mut target = root;
    for segment in dir.split('/').filter(|s| !s.is_empty()) {
        let object = target.as_object_mut().map_err(|_| conflict())?;
        target = object.get_or_insert_with(Value::from(segment), Value::new_object);
    }
    merge_value(target, value).map_err(|()| conflict())
}

fn merge_value(target: &mut Value, value: Value) -> Result<(), ()> {
    match value {
        Value::Object(incoming) => {
            let object = target.as_object_mut().map_err(|_| ())?;
            for (key, value) in incoming.iter() {
                match object.get_mut(key) {
                    Some(existing) => merge_value(existing, value.clone())?,
                    None => {
                        object.insert(key.clone(), value.clone());
                    }
                }
            }
            Ok(())
        }
        other if *target == Value::new_object() => {
            *target = other;
            Ok(())
        }
        _ => Err(()),
    }
}

#[cfg(test)]
mod tests;
