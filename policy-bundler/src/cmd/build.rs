use std::path::Path;

use anyhow::Context as _;
use zerohop_filter::bundle::build::{build, BuildError};

use crate::{report, sources, Failed};

pub fn run(
    dir: &Path,
    output: &Path,
    entrypoints: &[String],
    revision: Option<&str>,
) -> anyhow::Result<()> {
    let files = sources::read_dir(dir)?;
    let paths = super::entrypoints(entrypoints)?;
    let built = build(files, revision, &paths).map_err(|e| match e {
        BuildError::Io(e) => anyhow::Error::from(e),
        BuildError::Load(e) => super::load_failure(dir, e).into(),
        e => Failed(e.to_string()).into(),
    })?;
    if let Some(reason) = &built.not_precompiled {
        report::warning(&format!(
            "not precompiled ({reason}); the filter will compile or interpret the Rego at load"
        ));
    }
    std::fs::write(output, &built.targz)
        .with_context(|| format!("writing {}", output.display()))?;
    let entry = built
        .manifest
        .program()
        .map(|p| p.entrypoints.join(", "))
        .unwrap_or_else(|| "none".into());
    report::line(&format!(
        "wrote {} ({} bytes, revision {:?}, precompiled: {entry})",
        output.display(),
        built.targz.len(),
        built.manifest.revision
    ));
    Ok(())
}
