use std::path::Path;

use zerohop_filter::bundle::Bundle;
use zerohop_filter::engine::{self, Compiled, RegoError};

use crate::lint::{self, Finding};
use crate::{report, sources, Failed};

pub fn run(dir: &Path, entrypoints: &[String], strict: bool) -> anyhow::Result<()> {
    let files = sources::read_dir(dir)?;
    let bundle = Bundle::from_files(files).map_err(|e| Failed(e.to_string()))?;
    let mut findings = Vec::new();
    let summary = if entrypoints.is_empty() {
        engine::parse(&bundle).map_err(|e| super::load_failure(dir, e))?;
        format!("{} module(s) parsed", bundle.modules.len())
    } else {
        let paths = super::entrypoints(entrypoints)?;
        let rules: Vec<&str> = paths.iter().map(|p| p.rule()).collect();
        match engine::compile(&bundle, &rules).map_err(|e| super::load_failure(dir, e))? {
            Compiled::Program { .. } => format!(
                "{} module(s), {} precompiled",
                bundle.modules.len(),
                rules.join(", ")
            ),
            Compiled::Interpreter { reason, .. } => {
                let at = RegoError::from_regorus("", &reason);
                let source = bundle.modules.iter().find(|m| m.path == at.file);
                findings.push(Finding {
                    column: source.map_or(at.column, |m| {
                        lint::editor_column(&m.source, at.line, at.column)
                    }),
                    file: at.file,
                    line: at.line,
                    code: "interpreted",
                    message: format!(
                        "{} cannot be precompiled ({}); the filter will interpret it",
                        rules.join(", "),
                        at.message
                    ),
                });
                format!("{} module(s)", bundle.modules.len())
            }
        }
    };
    findings.extend(lint::lint(&bundle));
    findings.sort();
    for f in &findings {
        let severity = if strict { "error" } else { "warning" };
        report::line_stderr(&format!(
            "{}:{}:{}: {severity}[{}]: {}",
            dir.join(&f.file).display(),
            f.line,
            f.column,
            f.code,
            f.message
        ));
    }
    if strict && !findings.is_empty() {
        return Err(Failed(format!("{} finding(s) with --strict", findings.len())).into());
    }
    report::line(&format!("ok: {summary}"));
    Ok(())
}
