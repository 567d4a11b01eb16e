use std::path::Path;

use regorus::unstable::{Module, Ref};
use regorus::utils::get_path_string;
use zerohop_filter::bundle::{Bundle, Layout, RegoVersion};
use zerohop_filter::decision_path::DecisionPath;
use zerohop_filter::defaults::DEFAULT_PATH;
use zerohop_filter::engine::{self, Compiled, RegoError};

use crate::lint::{self, Finding};
use crate::{report, sources, Failed};

pub fn run(
    dir: &Path,
    entrypoints: &[String],
    strict: bool,
    default: RegoVersion,
) -> anyhow::Result<()> {
    let files = sources::read_dir(dir)?;
    let bundle =
        Bundle::assemble(files, &Layout::Directory, default).map_err(|e| Failed(e.to_string()))?;
    let mut findings = Vec::new();
    let mut engine = engine::parse(&bundle).map_err(|e| super::load_failure(dir, e))?;
    // Without `-e`, the default decision rule is compiled as `build` compiles it, if the
    // bundle defines one.
    let default_rule = DecisionPath::default();
    let entrypoints: Vec<String> =
        if entrypoints.is_empty() && defines(engine.get_modules(), default_rule.rule()) {
            vec![DEFAULT_PATH.to_string()]
        } else {
            entrypoints.to_vec()
        };
    let summary = if entrypoints.is_empty() {
        format!("{} module(s) parsed", bundle.modules.len())
    } else {
        let paths = super::entrypoints(&entrypoints)?;
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
                        engine::editor_column(&m.source, at.line, at.column)
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

/// Whether a module defines `rule` (`data.envoy.authz.allow`).
fn defines(modules: &[Ref<Module>], rule: &str) -> bool {
    modules.iter().any(|module| {
        let Ok(package) = get_path_string(&module.package.refr, Some("data")) else {
            return false;
        };
        module.policy.iter().any(|r| {
            let head = match r.as_ref() {
                regorus::unstable::Rule::Spec { head, .. } => match head {
                    regorus::unstable::RuleHead::Compr { refr, .. }
                    | regorus::unstable::RuleHead::Set { refr, .. }
                    | regorus::unstable::RuleHead::Func { refr, .. } => refr,
                },
                regorus::unstable::Rule::Default { refr, .. } => refr,
            };
            get_path_string(head, None).is_ok_and(|path| format!("{package}.{path}") == rule)
        })
    })
}
