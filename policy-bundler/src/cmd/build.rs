use std::path::Path;

use anyhow::Context as _;
use zerohop_filter::bundle::signature::{sign_targz, SignError, Signer};
use zerohop_filter::bundle::token;
use zerohop_filter::bundle::RegoVersion;
use zerohop_filter::writer::{build_as, BuildError};

use crate::{report, sources, Failed};

/// `--signing-key` and friends, named as `opa build` names them.
pub struct Signing<'a> {
    pub key: &'a str,
    pub algorithm: &'a str,
    pub key_id: &'a str,
    pub scope: Option<&'a str>,
}

pub fn run(
    dir: &Path,
    output: &Path,
    entrypoints: &[String],
    revision: Option<&str>,
    signing: Option<&Signing<'_>>,
    default: RegoVersion,
) -> anyhow::Result<()> {
    let files = sources::read_dir(dir)?;
    let paths = super::entrypoints(entrypoints)?;
    let built = build_as(files, revision, &paths, default).map_err(|e| match e {
        BuildError::Io(e) => anyhow::Error::from(e),
        BuildError::Load(e) => super::load_failure(dir, e).into(),
        e => Failed(e.to_string()).into(),
    })?;
    if let Some(reason) = &built.not_precompiled {
        report::warning(&format!(
            "not precompiled ({reason}); the filter will compile or interpret the Rego at load"
        ));
    }
    let mut targz = built.targz;
    if let Some(signing) = signing {
        let algorithm = token::algorithm(signing.algorithm)
            .map_err(|e| anyhow::anyhow!("--signing-alg: {e}"))?;
        let key = key_text(signing.key)?;
        let sign = |input: &[u8]| crate::sign::signature(algorithm, &key, input);
        let signer = Signer {
            algorithm,
            keyid: Some(signing.key_id),
            scope: signing.scope,
            sign: &sign,
        };
        targz = sign_targz(&targz, &signer).map_err(|e| match e {
            SignError::Io(e) => anyhow::Error::from(e),
            e => anyhow::anyhow!("--signing-key: {e}"),
        })?;
    }
    std::fs::write(output, &targz).with_context(|| format!("writing {}", output.display()))?;
    let entry = built
        .manifest
        .program()
        .map(|p| p.entrypoints.join(", "))
        .unwrap_or_else(|| "none".into());
    let signed = signing.map_or(String::new(), |s| format!(", signed {}", s.algorithm));
    report::line(&format!(
        "wrote {} ({} bytes, revision {:?}, precompiled: {entry}{signed})",
        output.display(),
        targz.len(),
        built.manifest.revision
    ));
    Ok(())
}

/// As in `opa build`: the value is a PEM file's path, or else the key (an HMAC secret) itself.
pub fn key_text(value: &str) -> anyhow::Result<String> {
    let path = Path::new(value);
    if path.is_file() {
        std::fs::read_to_string(path).with_context(|| format!("reading key {value}"))
    } else if value.contains("-----BEGIN") || !value.contains(['/', '.']) {
        Ok(value.to_string())
    } else {
        anyhow::bail!("key file {value} does not exist")
    }
}
