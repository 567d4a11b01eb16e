//! `make conformance OPA_CASES=<dir>`: runs OPA's own conformance cases over the builtins the
//! filter ships, on both of its backends (interpreter and RVM), and writes what passed, failed
//! and was skipped (with the reason) to a results file. A developer tool: OPA's cases are not
//! part of this repository, and CI has no copy of them.

mod cases;
mod known;
mod run;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Parser;
use serde_json::json;

use run::Outcome;

#[derive(Parser)]
#[command(about = "Run OPA's conformance cases the way the zerohop filter evaluates")]
struct Args {
    /// OPA's `v1/test/cases/testdata` (holding `v0/` and `v1/`); an `OPA_COMMIT` file there
    /// names the OPA commit it came from.
    cases: PathBuf,
    /// Where to write the results (JSON).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Print every failing case with its detail.
    #[arg(long, short)]
    verbose: bool,
    /// Only these folders (`regexmatch`, or `v1/regexmatch`).
    folders: Vec<String>,
}

/// One backend's outcomes over a set of cases: how many passed, and why the others failed or
/// were skipped.
#[derive(Default, Clone)]
struct Counts {
    passed: u32,
    failed: BTreeMap<String, u32>,
    skipped: BTreeMap<String, u32>,
}

impl Counts {
    fn add(&mut self, outcome: &Outcome) {
        match outcome {
            Outcome::Passed => self.passed += 1,
            Outcome::Failed { reason, .. } => *self.failed.entry(reason.clone()).or_default() += 1,
            Outcome::Skipped { reason } => *self.skipped.entry(reason.clone()).or_default() += 1,
        }
    }

    fn merge(&mut self, other: &Counts) {
        self.passed += other.passed;
        for (reason, n) in &other.failed {
            *self.failed.entry(reason.clone()).or_default() += n;
        }
        for (reason, n) in &other.skipped {
            *self.skipped.entry(reason.clone()).or_default() += n;
        }
    }

    fn failed(&self) -> u32 {
        self.failed.values().sum()
    }

    fn skipped(&self) -> u32 {
        self.skipped.values().sum()
    }

    fn json(&self) -> serde_json::Value {
        json!({
            "passed": self.passed,
            "failed": self.failed(),
            "skipped": self.skipped(),
            "failed_by_reason": self.failed,
            "skipped_by_reason": self.skipped,
        })
    }
}

impl std::fmt::Display for Counts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:>4} passed {:>3} failed {:>3} skipped",
            self.passed,
            self.failed(),
            self.skipped()
        )
    }
}

/// Case files, cases, and the interpreter's and RVM's counts of a folder or family.
#[derive(Default, Clone)]
struct Pair {
    files: u32,
    cases: u32,
    interpreter: Counts,
    rvm: Counts,
}

impl Pair {
    fn merge(&mut self, other: &Pair) {
        self.files += other.files;
        self.cases += other.cases;
        self.interpreter.merge(&other.interpreter);
        self.rvm.merge(&other.rvm);
    }

    fn json(&self) -> serde_json::Value {
        json!({
            "files": self.files,
            "cases": self.cases,
            "interpreter": self.interpreter.json(),
            "rvm": self.rvm.json(),
        })
    }
}

/// A case that did not pass on a backend.
struct Note {
    folder: String,
    case: String,
    backend: &'static str,
    outcome: Outcome,
}

#[derive(Default)]
struct Results {
    folders: BTreeMap<String, Pair>,
    notes: Vec<Note>,
}

impl Results {
    fn file(&mut self, folder: &str) {
        self.folders.entry(folder.to_string()).or_default().files += 1;
    }

    fn record(&mut self, folder: &str, case: &str, backend: &'static str, outcome: Outcome) {
        let pair = self.folders.entry(folder.to_string()).or_default();
        match backend {
            "interpreter" => {
                pair.cases += 1;
                pair.interpreter.add(&outcome);
            }
            _ => pair.rvm.add(&outcome),
        }
        if outcome != Outcome::Passed {
            self.notes.push(Note {
                folder: folder.to_string(),
                case: case.to_string(),
                backend,
                outcome,
            });
        }
    }

    fn families(&self) -> BTreeMap<&'static str, Pair> {
        let mut families = BTreeMap::<&str, Pair>::new();
        for (folder, pair) in &self.folders {
            families
                .entry(cases::family(folder))
                .or_default()
                .merge(pair);
        }
        families
    }

    fn total(&self) -> Pair {
        let mut total = Pair::default();
        for pair in self.folders.values() {
            total.merge(pair);
        }
        total
    }
}

fn run(dir: &Path, folders: &[String]) -> Result<Results> {
    let mut results = Results::default();
    for found in cases::discover(dir, folders)? {
        results.file(&found.folder);
        let file = match cases::read(&found.path) {
            Ok(file) => file,
            Err(e) => {
                let outcome = Outcome::Failed {
                    reason: "case file not understood".into(),
                    detail: format!("{e:#}"),
                };
                let name = found.path.display().to_string();
                results.record(&found.folder, &name, "interpreter", outcome.clone());
                results.record(&found.folder, &name, "rvm", outcome);
                continue;
            }
        };
        for case in &file.cases {
            let (interpreter, rvm) = match run::left_out(case) {
                Some(skipped) => (skipped.clone(), skipped),
                None => {
                    let rvm = run::run_rvm(case, found.rego_v0);
                    (run::run_interpreter(case, found.rego_v0, &rvm), rvm)
                }
            };
            results.record(&found.folder, &case.note, "interpreter", interpreter);
            results.record(&found.folder, &case.note, "rvm", rvm);
        }
    }
    Ok(results)
}

fn print(results: &Results, verbose: bool) {
    println!(
        "{:<44} {:>5} {:>5}  {:<34} rvm",
        "folder", "files", "cases", "interpreter"
    );
    for (folder, pair) in &results.folders {
        println!(
            "{folder:<44} {:>5} {:>5}  {}   {}",
            pair.files, pair.cases, pair.interpreter, pair.rvm
        );
    }
    println!(
        "\n{:<44} {:>5} {:>5}  {:<34} rvm",
        "family", "files", "cases", "interpreter"
    );
    for (family, pair) in results.families() {
        println!(
            "{family:<44} {:>5} {:>5}  {}   {}",
            pair.files, pair.cases, pair.interpreter, pair.rvm
        );
    }
    println!("\nfailures:");
    for note in &results.notes {
        if let Outcome::Failed { reason, detail } = &note.outcome {
            println!(
                "  [{}] {} :: {} — {reason}",
                note.backend, note.folder, note.case
            );
            if verbose {
                println!("      {detail}");
            }
        }
    }
    let total = results.total();
    for (backend, counts) in [("interpreter", &total.interpreter), ("rvm", &total.rvm)] {
        println!("\n[{backend}] failed by reason:");
        for (reason, n) in &counts.failed {
            println!("  {n:>4} × {reason}");
        }
        println!("[{backend}] skipped by reason:");
        for (reason, n) in &counts.skipped {
            println!("  {n:>4} × {reason}");
        }
    }
    println!("\n{} files, {} cases", total.files, total.cases);
    println!("interpreter: {}", total.interpreter);
    println!("rvm:         {}", total.rvm);
}

fn write(results: &Results, dir: &Path, out: &Path) -> Result<()> {
    let commit = std::fs::read_to_string(dir.join("OPA_COMMIT"))
        .map(|c| c.trim().to_string())
        .unwrap_or_else(|_| "unknown (no OPA_COMMIT file in the cases directory)".into());
    let failures: Vec<_> = results
        .notes
        .iter()
        .filter_map(|n| match &n.outcome {
            Outcome::Failed { reason, detail } => {
                let mut entry = json!({
                    "folder": n.folder, "case": n.case, "backend": n.backend,
                    "reason": reason, "detail": truncate(run::error_line(detail), 300),
                });
                if let (Some(cause), Ok(entry)) = (
                    known::root_cause(&n.case, n.backend, reason),
                    entry.as_object_mut().ok_or(()),
                ) {
                    entry.insert("root_cause".into(), json!(cause));
                }
                Some(entry)
            }
            Outcome::Skipped { .. } | Outcome::Passed => None,
        })
        .collect();
    let document = json!({
        "opa_commit": commit,
        "regorus": zerohop_filter::REGORUS_VERSION,
        "command": "make conformance OPA_CASES=<opa>/v1/test/cases/testdata",
        "root_causes": known::ROOT_CAUSES.iter().map(|(id, text)| (id.to_string(), json!(text))).collect::<serde_json::Map<_, _>>(),
        "total": results.total().json(),
        "families": results.families().into_iter().map(|(f, p)| (f.to_string(), p.json())).collect::<serde_json::Map<_, _>>(),
        "folders": results.folders.iter().map(|(f, p)| (f.clone(), p.json())).collect::<serde_json::Map<_, _>>(),
        "failures": failures,
    });
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(out, serde_json::to_string_pretty(&document)? + "\n")
        .with_context(|| format!("writing {}", out.display()))
}

fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", text.get(..at).unwrap_or(text)),
        None => text.to_string(),
    }
}

fn main() -> Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        args.cases.is_dir(),
        "{} is not a directory: point it at OPA's v1/test/cases/testdata (see docs/conformance.md)",
        args.cases.display()
    );
    // regorus panics are caught per case and counted; their messages would bury the summary.
    std::panic::set_hook(Box::new(|_| {}));
    let results = run(&args.cases, &args.folders)?;
    print(&results, args.verbose);
    if let Some(out) = &args.out {
        write(&results, &args.cases, out)?;
        println!("results: {}", out.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::Path;

    use super::{run, Outcome};

    /// Each selftest case (ours, in OPA's format) ends as declared here on each backend.
    #[test]
    fn selftest_cases_pass_fail_and_skip_as_declared() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("selftest");
        let results = run(&dir, &[]).unwrap();
        let got: BTreeMap<(String, &str), String> = results
            .notes
            .iter()
            .map(|n| {
                let what = match &n.outcome {
                    Outcome::Failed { reason, .. } => format!("failed: {reason}"),
                    Outcome::Skipped { reason } => format!("skipped: {reason}"),
                    Outcome::Passed => "passed".into(),
                };
                ((n.case.clone(), n.backend), what)
            })
            .collect();
        let expected: BTreeMap<(String, &str), String> = [
            (
                "harness/wrong expectation fails",
                "interpreter",
                "failed: wrong value",
            ),
            (
                "harness/wrong expectation fails",
                "rvm",
                "failed: wrong value",
            ),
            // regorus's RVM ignores strict mode for to_number (undefined, no error). The
            // filter evaluates non-strict, where both backends agree.
            (
                "harness/strict builtin error",
                "rvm",
                "failed: strict builtin error not raised (undefined instead)",
            ),
            (
                "harness/missing builtin",
                "interpreter",
                "failed: missing builtin graphql.is_valid",
            ),
            (
                "harness/missing builtin",
                "rvm",
                "skipped: query is not `data.<rule> = x`: the filter only evaluates rules",
            ),
            (
                "harness/missing builtin where OPA wants an error",
                "interpreter",
                "failed: missing builtin graphql.is_valid",
            ),
            (
                "harness/missing builtin where OPA wants an error",
                "rvm",
                "failed: missing builtin graphql.is_valid",
            ),
            (
                "harness/query that is not a rule",
                "rvm",
                "skipped: query is not `data.<rule> = x`: the filter only evaluates rules",
            ),
            (
                "harness/builtin left out on purpose",
                "interpreter",
                "skipped: left out on purpose: http.send: no outbound calls from a decision",
            ),
            (
                "harness/builtin left out on purpose",
                "rvm",
                "skipped: left out on purpose: http.send: no outbound calls from a decision",
            ),
        ]
        .into_iter()
        .map(|(case, backend, what)| ((case.to_string(), backend), what.to_string()))
        .collect();
        assert_eq!(got, expected);

        let total = results.total();
        assert_eq!(
            (
                total.interpreter.passed,
                total.interpreter.failed(),
                total.interpreter.skipped()
            ),
            (6, 3, 1)
        );
        assert_eq!(
            (total.rvm.passed, total.rvm.failed(), total.rvm.skipped()),
            (4, 3, 3)
        );
    }
}
