//! `policy-bundler`: the CLI policy authors run. It is glue over `zerohop-filter`'s core, so
//! what `eval` answers is what the proxy enforces.
//!
//! Exit codes: 0 success, 1 the policy or bundle failed a check, 2 usage or I/O error.

mod cmd;
mod lint;
mod report;
mod sources;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "policy-bundler",
    version,
    about = "Check, build, inspect and evaluate zerohop policy bundles (OPA bundle format)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Parse and compile the Rego and data in DIR; errors as file:line:column.
    Check {
        dir: PathBuf,
        /// Decision rules to compile, e.g. envoy/authz/allow (repeatable).
        #[arg(short, long = "entrypoint")]
        entrypoints: Vec<String>,
        /// Treat findings (recursion, `with`, Rego that runs interpreted) as errors.
        #[arg(long)]
        strict: bool,
    },
    /// Build an OPA-compatible bundle with the precompiled program.
    Build {
        dir: PathBuf,
        #[arg(short, long)]
        output: PathBuf,
        /// Decision rules to precompile (repeatable) [default: envoy/authz/allow].
        #[arg(short, long = "entrypoint")]
        entrypoints: Vec<String>,
        /// The bundle revision written to .manifest.
        #[arg(short, long)]
        revision: Option<String>,
    },
    /// Show a bundle's manifest, files, entrypoints and program.
    Inspect {
        bundle: PathBuf,
        #[arg(long, value_enum, default_value_t = report::Format::Human)]
        format: report::Format,
    },
    /// Evaluate a decision for an input document, exactly as the filter does.
    Eval {
        #[arg(short, long)]
        bundle: PathBuf,
        /// The OPA-Envoy input document (JSON).
        #[arg(short, long)]
        input: PathBuf,
        /// The decision path [default: envoy/authz/allow].
        #[arg(short, long)]
        path: Option<String>,
    },
}

/// A failure of the artifact under test (exit 1), as opposed to any other error (exit 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Failed(String);

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check {
            dir,
            entrypoints,
            strict,
        } => cmd::check::run(&dir, &entrypoints, strict),
        Command::Build {
            dir,
            output,
            entrypoints,
            revision,
        } => cmd::build::run(&dir, &output, &entrypoints, revision.as_deref()),
        Command::Inspect { bundle, format } => cmd::inspect::run(&bundle, format),
        Command::Eval {
            bundle,
            input,
            path,
        } => cmd::eval::run(&bundle, &input, path.as_deref()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            report::error(&format!("{e:#}"));
            if e.downcast_ref::<Failed>().is_some() {
                ExitCode::from(1)
            } else {
                ExitCode::from(2)
            }
        }
    }
}
