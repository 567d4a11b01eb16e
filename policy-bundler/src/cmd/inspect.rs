use std::path::Path;

use anyhow::Context as _;
use serde_json::json;
use zerohop_filter::bundle::{Bundle, Limits};
use zerohop_filter::REGORUS_VERSION;

use crate::report::{self, Format};
use crate::Failed;

pub fn run(path: &Path, format: Format) -> anyhow::Result<()> {
    let bytes =
        std::fs::read(path).with_context(|| format!("reading bundle {}", path.display()))?;
    let bundle = Bundle::from_targz(&bytes, &Limits::default())
        .map_err(|e| Failed(format!("{}: {e}", path.display())))?;
    let program = bundle.manifest.program();
    let runnable = program.is_none_or(|p| p.regorus == REGORUS_VERSION);
    let summary = json!({
        "revision": bundle.manifest.revision,
        "roots": bundle.manifest.roots,
        "rego_version": bundle.manifest.rego_version.unwrap_or(1),
        "file_rego_versions": bundle.manifest.file_rego_versions,
        "files": bundle.files.iter().map(|(p, size)| json!({"path": p, "size": size})).collect::<Vec<_>>(),
        "program": program.map(|p| json!({
            "entrypoints": p.entrypoints,
            "regorus": p.regorus,
            "format": p.format,
            "size": bundle.program.as_ref().map_or(0, Vec::len),
            "input": p.input,
            "nondeterministic": p.nondeterministic,
        })),
        "runs_on_this_filter": runnable,
        "filter_regorus": REGORUS_VERSION,
    });
    match format {
        Format::Json => report::json(&summary),
        Format::Human => {
            report::line(&format!("revision:    {:?}", bundle.manifest.revision));
            report::line(&format!(
                "roots:       {}",
                bundle
                    .manifest
                    .roots
                    .as_ref()
                    .map_or("(all of data)".to_string(), |r| format!("{r:?}"))
            ));
            report::line(&format!(
                "rego:        v{}",
                bundle.manifest.rego_version.unwrap_or(1)
            ));
            for (glob, version) in &bundle.manifest.file_rego_versions {
                report::line(&format!("  v{version}:        {glob}"));
            }
            match program {
                Some(p) => {
                    report::line(&format!("entrypoints: {}", p.entrypoints.join(", ")));
                    report::line(&format!(
                        "program:     regorus {} format {} ({} bytes){}",
                        p.regorus,
                        p.format,
                        bundle.program.as_ref().map_or(0, Vec::len),
                        if runnable {
                            ""
                        } else {
                            " - NOT runnable by this filter's regorus"
                        }
                    ));
                    // What each request builds of `input` (shape), and whether its
                    // decisions can be remembered (engine::cache).
                    let analysis = p.analysis();
                    report::line(&format!("reads:       {}", analysis.input));
                    report::line(&format!(
                        "cacheable:   {}",
                        analysis
                            .nondeterministic
                            .map_or("yes".to_string(), |b| format!("no (nondeterministic: {b})"))
                    ));
                }
                None => report::line("program:     none (the filter compiles the Rego at load)"),
            }
            report::line("files:");
            for (file, size) in &bundle.files {
                report::line(&format!("  {size:>9}  {file}"));
            }
        }
    }
    Ok(())
}
