//! The only module that prints: results to stdout, diagnostics to stderr.

use std::io::Write;

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Format {
    Human,
    Json,
}

/// A line of output. A closed pipe (`| head`) is not an error worth a panic.
pub fn line(text: &str) {
    let _ = writeln!(std::io::stdout(), "{text}");
}

pub fn json(value: &serde_json::Value) {
    line(&serde_json::to_string_pretty(value).unwrap_or_default());
}

pub fn warning(text: &str) {
    let _ = writeln!(std::io::stderr(), "warning: {text}");
}

/// A diagnostic that carries its own `file:line:column: severity[code]:` prefix.
pub fn line_stderr(text: &str) {
    let _ = writeln!(std::io::stderr(), "{text}");
}

pub fn error(text: &str) {
    let _ = writeln!(std::io::stderr(), "error: {text}");
}
