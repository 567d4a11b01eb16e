//! One module per subcommand.

pub mod build;
pub mod check;
pub mod config;
pub mod eval;
pub mod inspect;
pub mod push;
pub mod replay;
pub mod request;
pub mod verify;

use zerohop_filter::decision_path::DecisionPath;
use zerohop_filter::defaults::DEFAULT_PATH;

/// Parses `--entrypoint` values; none means OPA-Envoy's default decision path.
pub fn entrypoints(given: &[String]) -> anyhow::Result<Vec<DecisionPath>> {
    let given: Vec<&str> = if given.is_empty() {
        vec![DEFAULT_PATH]
    } else {
        given.iter().map(String::as_str).collect()
    };
    given
        .iter()
        .map(|e| DecisionPath::parse(e).map_err(|m| anyhow::anyhow!("--entrypoint {e:?}: {m}")))
        .collect()
}

/// A load error as the author wants to see it: for Rego, `DIR/file:line:column: message`
/// followed by the source excerpt.
pub fn load_failure(
    dir: &std::path::Path,
    error: zerohop_filter::engine::LoadError,
) -> crate::Failed {
    match error {
        zerohop_filter::engine::LoadError::Rego(e)
        | zerohop_filter::engine::LoadError::Unsupported(e) => crate::Failed(format!(
            "{}:{}:{}: {}\n{}",
            dir.join(&e.file).display(),
            e.line,
            e.column,
            e.message,
            e.snippet
        )),
        // As OPA lists them (`file:line: code: message`), with the column and our code.
        zerohop_filter::engine::LoadError::Refused(errors) => crate::Failed(
            errors
                .iter()
                .map(|e| {
                    format!(
                        "{}:{}:{}: {}: {}",
                        dir.join(&e.file).display(),
                        e.line,
                        e.column,
                        e.code,
                        e.message
                    )
                })
                .collect::<Vec<_>>()
                .join("\n"),
        ),
        other => crate::Failed(other.to_string()),
    }
}
