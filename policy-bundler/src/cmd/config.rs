//! `config`: a plugin configuration (`pluginConfig` as JSON) parsed by the filter's own
//! `Config::parse`, so a manifest is checked before a proxy NACKs it.

use std::path::Path;

use anyhow::Context as _;
use zerohop_filter::config::Config;

use crate::{report, Failed};

pub fn run(path: &Path) -> anyhow::Result<()> {
    let json = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let config = Config::parse(&json).map_err(|e| Failed(format!("{}: {e}", path.display())))?;
    let mut sources = Vec::new();
    if config.bundle.inline.is_some() {
        sources.push("inline".to_string());
    }
    if let Some(service) = &config.bundle.service {
        sources.push(format!("service {}{}", service.cluster, service.path));
    }
    report::line(&format!(
        "{}: valid; decision {}, bundle from {}{}",
        path.display(),
        config.path.rule(),
        sources.join(" and "),
        if config.enforcement.dry_run {
            ", dry run"
        } else {
            ""
        }
    ));
    Ok(())
}
