//! Reading a policy directory the way `opa build -b DIR` does: `.rego` modules, `data.json` /
//! `data.yaml` documents and an optional `.manifest`. Test modules (`*_test.rego`) stay out of
//! bundles; other files are ignored, as OPA ignores them.

use std::path::Path;

use anyhow::Context as _;

pub fn read_dir(dir: &Path) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let mut files = Vec::new();
    walk(dir, dir, &mut files)?;
    files.sort();
    if !files.iter().any(|(p, _)| p.ends_with(".rego")) {
        anyhow::bail!("{} holds no .rego files", dir.display());
    }
    Ok(files)
}

fn walk(root: &Path, dir: &Path, files: &mut Vec<(String, Vec<u8>)>) -> anyhow::Result<()> {
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("reading directory {}", dir.display()))?;
    for entry in entries {
        let path = entry?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        if path.is_dir() {
            if !name.starts_with('.') {
                walk(root, &path, files)?;
            }
            continue;
        }
        let wanted = name == ".manifest"
            || (name.ends_with(".rego") && !name.ends_with("_test.rego"))
            || matches!(name.as_str(), "data.json" | "data.yaml" | "data.yml");
        if !wanted {
            continue;
        }
        let relative = path
            .strip_prefix(root)
            .with_context(|| format!("{} is outside {}", path.display(), root.display()))?;
        let relative = relative.to_string_lossy().replace('\\', "/");
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        files.push((relative, bytes));
    }
    Ok(())
}
