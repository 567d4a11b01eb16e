use std::path::Path;

use anyhow::Context as _;
use serde_json::json;
use zerohop_filter::bundle::signature::{self, Key, Verification};
use zerohop_filter::bundle::token::{self, VerifyingKey};
use zerohop_filter::bundle::{archive, Limits, Manifest};

use crate::report::{self, Format};
use crate::Failed;

/// What `verify` checks with, as `opa build`'s verification flags name it.
pub struct Options<'a> {
    pub key: &'a str,
    pub key_id: &'a str,
    pub algorithm: &'a str,
    pub scope: Option<&'a str>,
    pub exclude_files: &'a [String],
}

pub fn run(path: &Path, options: &Options<'_>, format: Format) -> anyhow::Result<()> {
    let bytes =
        std::fs::read(path).with_context(|| format!("reading bundle {}", path.display()))?;
    let algorithm =
        token::algorithm(options.algorithm).map_err(|e| anyhow::anyhow!("--signing-alg: {e}"))?;
    let key = VerifyingKey::parse(algorithm, &super::build::key_text(options.key)?)
        .map_err(|e| anyhow::anyhow!("--verification-key: {e}"))?;
    let verification = Verification {
        keys: [(
            options.key_id.to_string(),
            Key {
                key,
                scope: String::new(),
            },
        )]
        .into_iter()
        .collect(),
        keyid: options.key_id.to_string(),
        scope: options.scope.unwrap_or_default().to_string(),
        exclude_files: options.exclude_files.to_vec(),
    };
    let result = archive::read_targz(&bytes, &Limits::default())
        .map_err(|e| (e.code(), e.to_string()))
        .and_then(|files| {
            signature::verify(&files, Some(&verification))
                .map_err(|e| (e.code(), e.to_string()))?;
            Ok(files)
        });
    match result {
        Ok(files) => {
            let revision = files
                .iter()
                .find(|(p, _)| p == ".manifest")
                .and_then(|(_, m)| Manifest::parse(m).ok())
                .map(|m| m.revision)
                .unwrap_or_default();
            let signed = files.len().saturating_sub(1);
            match format {
                Format::Json => report::json(&json!({
                    "verified": true, "revision": revision, "files": signed,
                    "key_id": options.key_id, "algorithm": algorithm.name(),
                })),
                Format::Human => report::line(&format!(
                    "verified {} (revision {revision:?}, {signed} files, key {:?}, {})",
                    path.display(),
                    options.key_id,
                    algorithm.name()
                )),
            }
            Ok(())
        }
        Err((code, message)) => {
            if let Format::Json = format {
                report::json(&json!({"verified": false, "code": code, "message": message}));
            }
            Err(Failed(format!("{}: [{code}] {message}", path.display())).into())
        }
    }
}
