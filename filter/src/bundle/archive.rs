//! Reading a bundle `.tar.gz` with limits: regular files only, paths that stay inside the
//! bundle, a cap on uncompressed bytes and on the number of files, and a gzip stream that must
//! end where it says (a truncated download is an error, not a smaller bundle).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

use flate2::read::GzDecoder;

use super::BundleError;

/// At most this many files in a bundle.
pub const MAX_FILES: usize = 10_000;

/// Size limits applied while reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Uncompressed bytes, tar headers included.
    pub max_uncompressed_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_uncompressed_bytes: 64 * 1024 * 1024,
        }
    }
}

/// Returns every regular file as (path inside the bundle, content), in archive order.
pub fn read_targz(bytes: &[u8], limits: &Limits) -> Result<Vec<(String, Vec<u8>)>, BundleError> {
    Ok(read_targz_named(bytes, limits)?.0)
}

/// `read_targz`, and each entry's name as written in the archive (what OPA's loader calls it)
/// by path inside the bundle.
pub fn read_targz_named(bytes: &[u8], limits: &Limits) -> Result<Named, BundleError> {
    let tar_bytes = gunzip(bytes, limits)?;
    let mut archive = tar::Archive::new(tar_bytes.as_slice());
    let mut files = Vec::new();
    let mut names = BTreeMap::new();
    let mut seen = BTreeSet::new();
    let not_tar = |e: std::io::Error| BundleError::NotTar(e.to_string());
    for entry in archive.entries().map_err(not_tar)? {
        let mut entry = entry.map_err(not_tar)?;
        let raw_path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            continue;
        }
        if !kind.is_file() {
            return Err(BundleError::BadEntry {
                path: raw_path,
                reason: "only regular files are allowed",
            });
        }
        let path = bundle_path(&raw_path)?;
        if !seen.insert(path.clone()) {
            return Err(BundleError::Duplicate { path });
        }
        if files.len() >= MAX_FILES {
            return Err(BundleError::TooManyFiles { limit: MAX_FILES });
        }
        let mut content = Vec::new();
        entry.read_to_end(&mut content).map_err(not_tar)?;
        names.insert(path.clone(), raw_path);
        files.push((path, content));
    }
    Ok((files, names))
}

/// Files (path inside the bundle, content) and their names as written in the archive.
pub type Named = (Vec<(String, Vec<u8>)>, BTreeMap<String, String>);

/// Decompresses the whole stream first, so a truncated or corrupted download (checked by the
/// gzip trailer) is told apart from a broken archive inside a good stream.
fn gunzip(bytes: &[u8], limits: &Limits) -> Result<Vec<u8>, BundleError> {
    let mut gz = GzDecoder::new(bytes);
    if gz.header().is_none() {
        return Err(BundleError::NotGzip("no gzip header".to_string()));
    }
    let mut out = Vec::new();
    gz.by_ref()
        .take(limits.max_uncompressed_bytes.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|e| BundleError::NotGzip(e.to_string()))?;
    if out.len() as u64 > limits.max_uncompressed_bytes {
        return Err(BundleError::TooLarge {
            limit: limits.max_uncompressed_bytes,
        });
    }
    Ok(out)
}

/// Normalizes a tar entry name to a path inside the bundle. OPA writes entries as `/a/b.rego`:
/// one leading `/` (or `./`) means the bundle root. Anything that could name a place outside
/// the bundle, or two names for one file, is rejected.
fn bundle_path(raw: &str) -> Result<String, BundleError> {
    let bad = |reason| BundleError::BadEntry {
        path: raw.to_string(),
        reason,
    };
    if raw.contains('\\') || raw.contains('\0') {
        return Err(bad("backslashes and NUL are not allowed in paths"));
    }
    let path = raw
        .strip_prefix("./")
        .or_else(|| raw.strip_prefix('/'))
        .unwrap_or(raw);
    if path.is_empty() {
        return Err(bad("empty path"));
    }
    if path.starts_with('/') || path.get(1..2) == Some(":") {
        return Err(bad("absolute paths are not allowed"));
    }
    for segment in path.split('/') {
        match segment {
            ".." => return Err(bad("`..` would leave the bundle")),
            "." | "" => return Err(bad("empty or `.` path segments are not allowed")),
            _ => {}
        }
    }
    Ok(path.to_string())
}

/// Writes files as a bundle `.tar.gz` (relative entry names, which OPA reads as it reads its
/// own `/path` ones), with fixed timestamps so the same input always gives the same bytes.
pub fn write_targz(files: &[(String, Vec<u8>)]) -> std::io::Result<Vec<u8>> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let mut builder = tar::Builder::new(gz);
    for (path, content) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::Regular);
        builder.append_data(&mut header, path, content.as_slice())?;
    }
    builder.into_inner()?.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_inside_the_bundle() {
        assert_eq!(bundle_path("/data.json").unwrap(), "data.json");
        assert_eq!(bundle_path("./a/b.rego").unwrap(), "a/b.rego");
        assert_eq!(bundle_path(".manifest").unwrap(), ".manifest");
        for bad in [
            "../x.rego",
            "a/../../x",
            "//etc/passwd",
            "a//b",
            "a/./b",
            "C:/x",
            "a\\b",
            "/",
            "",
        ] {
            assert!(
                matches!(bundle_path(bad), Err(BundleError::BadEntry { .. })),
                "{bad}"
            );
        }
    }
}
