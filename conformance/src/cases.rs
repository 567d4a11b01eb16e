//! OPA's conformance case files (`v1/test/cases/testdata/{v0,v1}/<folder>/*.yaml`) and where
//! each folder's builtins belong.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use regorus::Value;
use serde::Deserialize;

#[derive(Deserialize)]
pub struct CaseFile {
    pub cases: Vec<Case>,
}

/// One case. Fields OPA uses for other runners (traces, planner, ...) are ignored.
#[derive(Deserialize)]
pub struct Case {
    pub note: String,
    pub query: String,
    #[serde(default)]
    pub modules: Vec<String>,
    pub data: Option<Value>,
    pub input: Option<Value>,
    /// Rego whose value becomes `input`.
    pub input_term: Option<String>,
    pub want_result: Option<Value>,
    pub want_error: Option<String>,
    pub want_error_code: Option<String>,
    /// Evaluate with strict builtin errors (OPA's default, and the filter's, is non-strict).
    #[serde(default)]
    pub strict_error: bool,
    #[serde(default)]
    pub sort_bindings: bool,
    #[serde(default)]
    pub skip: bool,
}

impl Case {
    pub fn wants_error(&self) -> bool {
        self.want_error.is_some() || self.want_error_code.is_some()
    }

    /// The expected error as OPA states it, for reports.
    pub fn wanted_error(&self) -> String {
        match (&self.want_error_code, &self.want_error) {
            (Some(code), Some(message)) => format!("{code}: {message}"),
            (Some(code), None) => code.clone(),
            (None, Some(message)) => message.clone(),
            (None, None) => String::new(),
        }
    }

    /// The Rego text of the case, to look for builtin calls in.
    pub fn text(&self) -> String {
        let mut text = self.query.clone();
        for module in &self.modules {
            text.push('\n');
            text.push_str(module);
        }
        if let Some(term) = &self.input_term {
            text.push('\n');
            text.push_str(term);
        }
        text
    }
}

/// A case file found under the cases directory.
pub struct Found {
    /// `v0/regexmatch`, `v1/time`, ...
    pub folder: String,
    pub rego_v0: bool,
    pub path: PathBuf,
}

/// Every `*.yaml` under `<dir>/v0` and `<dir>/v1`, sorted, keeping folders in `only` (all if
/// empty; `regexmatch` selects both versions, `v1/regexmatch` one).
pub fn discover(dir: &Path, only: &[String]) -> Result<Vec<Found>> {
    let mut found = Vec::new();
    for version in ["v0", "v1"] {
        let root = dir.join(version);
        if !root.is_dir() {
            continue;
        }
        let mut files = Vec::new();
        walk(&root, &mut files)?;
        for path in files {
            let Some(folder) = path
                .parent()
                .and_then(|p| p.strip_prefix(&root).ok())
                .map(|p| p.to_string_lossy().replace('\\', "/"))
            else {
                continue;
            };
            let folder = format!("{version}/{folder}");
            let selected = only.is_empty()
                || only.iter().any(|o| {
                    *o == folder
                        || folder
                            .strip_prefix(version)
                            .and_then(|f| f.strip_prefix('/'))
                            == Some(o.as_str())
                });
            if selected {
                found.push(Found {
                    folder,
                    rego_v0: version == "v0",
                    path,
                });
            }
        }
    }
    found.sort_by(|a, b| a.path.cmp(&b.path));
    anyhow::ensure!(
        !found.is_empty(),
        "no case files (*.yaml) under {}/v0 or {}/v1{}",
        dir.display(),
        dir.display(),
        if only.is_empty() {
            String::new()
        } else {
            format!(" in folders {only:?}")
        }
    );
    Ok(found)
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            walk(&path, files)?;
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            files.push(path);
        }
    }
    Ok(())
}

pub fn read(path: &Path) -> Result<CaseFile> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    yaml_serde::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// The builtin family a folder tests (folders are named after builtins, e.g. `regexmatch`,
/// `netcidrcontains`); `language` for folders about Rego itself (rules, `with`, ...).
pub fn family(folder: &str) -> &'static str {
    let name = folder.rsplit('/').next().unwrap_or(folder);
    const FAMILIES: &[(&str, &[&str])] = &[
        ("crypto/jwt", &["jwt", "crypto"]),
        ("regex", &["regex"]),
        ("glob", &["glob"]),
        ("net", &["net", "cidr"]),
        ("time", &["time", "date"]),
        (
            "encoding",
            &["base64", "hex", "urlbuiltins", "urlquery", "yaml"],
        ),
        ("json", &["json"]),
        ("object", &["object"]),
        ("array", &["array", "toarray"]),
        (
            "sets",
            &["sets", "sortedsets", "intersection", "union", "setdiff"],
        ),
        ("aggregates", &["aggregates", "numbersrange", "count"]),
        (
            "numbers",
            &["arithmetic", "bits", "casts", "rand", "numbers"],
        ),
        ("units", &["units"]),
        ("semver", &["semver"]),
        ("uuid", &["uuid"]),
        (
            "strings",
            &[
                "strings",
                "concat",
                "endswith",
                "startswith",
                "format",
                "indexof",
                "lower",
                "upper",
                "replace",
                "split",
                "sprintf",
                "substring",
                "trim",
                "reverse",
                "interpolat",
                "contains",
                "template",
                "rendertemplate",
            ],
        ),
        ("types", &["type", "typename", "isnumber", "isstring"]),
        ("graph", &["walk", "reachable", "graph"]),
        (
            "other builtins",
            &["http", "providers", "rego", "opa", "trace", "print"],
        ),
    ];
    FAMILIES
        .iter()
        .find(|(_, prefixes)| {
            prefixes.iter().any(|p| {
                name.starts_with(p)
                    // `containskeyword` and friends are about the language.
                    && !name.ends_with("keyword")
            })
        })
        .map_or("language", |(family, _)| family)
}

#[cfg(test)]
mod tests {
    use super::family;

    #[test]
    fn folders_fall_into_their_builtin_family() {
        assert_eq!(family("v1/regexmatch"), "regex");
        assert_eq!(family("v0/netcidrcontainsmatches"), "net");
        assert_eq!(family("v1/jwtdecodeverify"), "crypto/jwt");
        assert_eq!(family("v1/containskeyword"), "language");
        assert_eq!(family("v1/withkeyword"), "language");
        assert_eq!(family("v1/trimprefix"), "strings");
        assert_eq!(family("v1/comprehensions"), "language");
    }
}
