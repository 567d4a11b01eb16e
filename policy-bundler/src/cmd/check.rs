use std::path::Path;

use zerohop_filter::bundle::Bundle;
use zerohop_filter::engine::{self, Compiled};

use crate::{report, sources, Failed};

pub fn run(dir: &Path, entrypoints: &[String]) -> anyhow::Result<()> {
    let files = sources::read_dir(dir)?;
    let bundle = Bundle::from_files(files).map_err(|e| Failed(e.to_string()))?;
    if entrypoints.is_empty() {
        engine::parse(&bundle).map_err(|e| super::load_failure(dir, e))?;
        report::line(&format!("ok: {} module(s) parsed", bundle.modules.len()));
        return Ok(());
    }
    let paths = super::entrypoints(entrypoints)?;
    let rules: Vec<&str> = paths.iter().map(|p| p.rule()).collect();
    match engine::compile(&bundle, &rules).map_err(|e| super::load_failure(dir, e))? {
        Compiled::Program(_) => report::line(&format!(
            "ok: {} module(s), {} precompiled",
            bundle.modules.len(),
            rules.join(", ")
        )),
        Compiled::Interpreter { reason, .. } => {
            report::warning(&format!(
                "{} cannot be precompiled ({reason}); the filter will interpret it",
                rules.join(", ")
            ));
            report::line(&format!("ok: {} module(s)", bundle.modules.len()));
        }
    }
    Ok(())
}
