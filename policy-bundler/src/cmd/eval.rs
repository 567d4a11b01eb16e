use std::path::Path;

use anyhow::Context as _;
use zerohop_filter::bundle::{Bundle, Limits, RegoVersion};
use zerohop_filter::decision_path::DecisionPath;
use zerohop_filter::engine::{Budget, EvalError, Policy};

use crate::{report, Failed};

pub fn run(
    bundle_path: &Path,
    input_path: &Path,
    path: Option<&str>,
    budget: Budget,
    default: RegoVersion,
) -> anyhow::Result<()> {
    let bytes = std::fs::read(bundle_path)
        .with_context(|| format!("reading bundle {}", bundle_path.display()))?;
    let input = std::fs::read_to_string(input_path)
        .with_context(|| format!("reading input {}", input_path.display()))?;
    let input = regorus::Value::from_json_str(&input)
        .map_err(|e| Failed(format!("{}: {e}", input_path.display())))?;
    let path = match path {
        Some(p) => DecisionPath::parse(p).map_err(|m| anyhow::anyhow!("--path {p:?}: {m}"))?,
        None => DecisionPath::default(),
    };
    let bundle = Bundle::from_targz_as(&bytes, &Limits::default(), default)
        .map_err(|e| Failed(e.to_string()))?;
    let mut policy = Policy::load(&bundle, &path).map_err(|e| Failed(e.to_string()))?;
    policy.set_budget(budget);
    let decision = policy.evaluate(input);
    // As `opa eval`: what `print` wrote goes to stderr.
    for message in policy.take_prints() {
        eprintln!("{message}");
    }
    let decision = decision.map_err(|e| match e {
        // Already names the rule.
        EvalError::Budget { .. } => Failed(e.to_string()),
        e => Failed(format!("{}: {e}", path.rule())),
    })?;
    report::line(&decision.to_json_str().map_err(|e| Failed(e.to_string()))?);
    Ok(())
}
