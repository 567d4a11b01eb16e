//! `.signatures.json`, verified as OPA verifies it (`v1/bundle/verify.go`, `bundle.go`
//! `Reader.Read`) and written as `opa build --signing-key` writes it (`sign.go`): one JWT whose
//! payload lists every file with its digest; the key id comes from the configuration, else the
//! JWT header's `kid`, else the payload's deprecated `keyid`; the `scope` claim must equal the
//! configured scope (else the key's); the bundle's files must be exactly the signed ones, less
//! `exclude_files`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::hash;
use super::token::{self, Algorithm, Compact, JwsError, VerifyingKey};

/// Where the signatures live in a bundle.
pub const SIGNATURES_FILE: &str = ".signatures.json";

/// A verification key from the configuration (OPA's `keys.<id>`).
#[derive(Debug, Clone)]
pub struct Key {
    pub key: VerifyingKey,
    /// The key's own `scope`, used when the bundle's `signing.scope` is not set.
    pub scope: String,
}

/// A bundle's `signing` settings with their keys.
#[derive(Debug, Clone, Default)]
pub struct Verification {
    pub keys: BTreeMap<String, Key>,
    /// `signing.keyid`: wins over the JWT's `kid`.
    pub keyid: String,
    pub scope: String,
    /// `signing.exclude_files`: glob patterns (Go's `filepath.Match`) of files not checked.
    pub exclude_files: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("bundle is not signed (no .signatures.json) but signing is configured")]
    Missing,
    #[error("bundle is signed but no signing key is configured (bundle.signing)")]
    NotConfigured,
    #[error(".signatures.json: {0}")]
    BadFile(String),
    #[error("no key id: neither signing.keyid, the JWT kid nor its keyid claim names one")]
    NoKeyId,
    #[error("verification key {0:?} is not configured in signing.keys")]
    UnknownKey(String),
    #[error("signature: {0}")]
    Jws(#[from] JwsError),
    #[error(
        "scope mismatch: the bundle is signed for {got:?}, the configuration expects {want:?}"
    )]
    Scope { want: String, got: String },
    #[error("file {0} is not included in the bundle signature")]
    Unsigned(String),
    #[error(
        "file {path}: hash algorithm {algorithm:?} is not one of {:?}",
        hash::ALGORITHMS
    )]
    HashAlgorithm { path: String, algorithm: String },
    #[error("file {path}: {message}")]
    Document { path: String, message: String },
    #[error("file {path}: digest mismatch")]
    Digest { path: String },
    #[error("file(s) {0:?} specified in the bundle signature but not found in the bundle")]
    NotInBundle(Vec<String>),
}

impl SignatureError {
    /// A stable kebab-case code for logs, metrics and `policy-bundler verify`.
    pub fn code(&self) -> &'static str {
        match self {
            SignatureError::Missing => crate::codes::MISSING_SIGNATURE.name,
            SignatureError::NotConfigured => crate::codes::NO_VERIFICATION_KEY.name,
            SignatureError::BadFile(_) => crate::codes::BAD_SIGNATURES_FILE.name,
            SignatureError::NoKeyId | SignatureError::UnknownKey(_) => {
                crate::codes::UNKNOWN_KEY.name
            }
            SignatureError::Jws(_) => crate::codes::BAD_SIGNATURE.name,
            SignatureError::Scope { .. } => crate::codes::SCOPE_MISMATCH.name,
            SignatureError::Unsigned(_) => crate::codes::UNSIGNED_FILE.name,
            SignatureError::HashAlgorithm { .. } | SignatureError::Document { .. } => {
                crate::codes::BAD_FILE_HASH.name
            }
            SignatureError::Digest { .. } => crate::codes::HASH_MISMATCH.name,
            SignatureError::NotInBundle(_) => crate::codes::MISSING_FILE.name,
        }
    }
}

#[derive(Debug, Deserialize, Serialize)]
struct SignaturesFile {
    #[serde(default)]
    signatures: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    plugin: String,
}

/// One entry of the payload's `files`.
#[derive(Debug, Clone, Deserialize, Serialize)]
struct FileInfo {
    #[serde(default)]
    name: String,
    #[serde(default)]
    hash: String,
    /// Empty is refused when the file is checked, as in OPA.
    #[serde(default)]
    algorithm: String,
}

#[derive(Debug, Deserialize)]
struct Payload {
    #[serde(default)]
    files: Vec<FileInfo>,
    #[serde(default)]
    keyid: String,
    #[serde(default)]
    scope: String,
}

/// Verifies a bundle's files (path inside the bundle, content). With `verification` `None`, an
/// unsigned bundle passes and a signed one is refused, as in OPA.
pub fn verify(
    files: &[(String, Vec<u8>)],
    verification: Option<&Verification>,
) -> Result<(), SignatureError> {
    let signatures = files
        .iter()
        .find(|(path, _)| path == SIGNATURES_FILE)
        .map(|(_, content)| content);
    let (signatures, verification) = match (signatures, verification) {
        (None, None) => return Ok(()),
        (None, Some(_)) => return Err(SignatureError::Missing),
        (Some(_), None) => return Err(SignatureError::NotConfigured),
        (Some(s), Some(v)) => (s, v),
    };
    let parsed: SignaturesFile =
        serde_json::from_slice(signatures).map_err(|e| SignatureError::BadFile(e.to_string()))?;
    let [token] = parsed.signatures.as_slice() else {
        return Err(SignatureError::BadFile(format!(
            "{} JWTs (expected exactly one)",
            parsed.signatures.len()
        )));
    };
    let jwt = Compact::parse(token)?;
    let payload: Payload = serde_json::from_slice(&jwt.payload)
        .map_err(|e| SignatureError::BadFile(format!("JWT payload: {e}")))?;
    let keyid = [
        verification.keyid.as_str(),
        jwt.header
            .get("kid")
            .and_then(|k| k.as_str())
            .unwrap_or_default(),
        payload.keyid.as_str(),
    ]
    .into_iter()
    .find(|id| !id.is_empty())
    .ok_or(SignatureError::NoKeyId)?;
    let key = verification
        .keys
        .get(keyid)
        .ok_or_else(|| SignatureError::UnknownKey(keyid.to_string()))?;
    jwt.verify(&key.key)?;
    let want = if verification.scope.is_empty() {
        &key.scope
    } else {
        &verification.scope
    };
    if &payload.scope != want {
        return Err(SignatureError::Scope {
            want: want.clone(),
            got: payload.scope,
        });
    }
    let mut signed: BTreeMap<String, FileInfo> = payload
        .files
        .into_iter()
        .map(|f| (f.name.clone(), f))
        .collect();
    for (path, content) in files {
        if path == SIGNATURES_FILE {
            continue;
        }
        if verification
            .exclude_files
            .iter()
            .any(|pattern| glob_match(pattern, path))
        {
            signed.remove(path);
            continue;
        }
        let info = signed
            .remove(path)
            .ok_or_else(|| SignatureError::Unsigned(path.clone()))?;
        let digest = hash::file_digest(&info.algorithm, path, content)
            .ok_or_else(|| SignatureError::HashAlgorithm {
                path: path.clone(),
                algorithm: info.algorithm.clone(),
            })?
            .map_err(|message| SignatureError::Document {
                path: path.clone(),
                message,
            })?;
        if !hex_eq(&info.hash, &digest) {
            return Err(SignatureError::Digest { path: path.clone() });
        }
    }
    if !signed.is_empty() {
        return Err(SignatureError::NotInBundle(signed.into_keys().collect()));
    }
    Ok(())
}

fn hex_eq(text: &str, bytes: &[u8]) -> bool {
    let text = text.to_ascii_lowercase();
    text.len() == bytes.len() * 2 && text == to_hex(bytes)
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Signs a JWS signing input (with a private key or HMAC secret the caller holds).
pub type SignFn<'a> = &'a dyn Fn(&[u8]) -> Result<Vec<u8>, JwsError>;

/// How `policy-bundler build` signs.
pub struct Signer<'a> {
    pub algorithm: Algorithm,
    /// Written as the JWT `kid` and, as `opa build` does, the deprecated `keyid` claim.
    pub keyid: Option<&'a str>,
    pub scope: Option<&'a str>,
    /// Signs the JWS signing input with the private key (or HMAC secret) for `algorithm`.
    pub sign: SignFn<'a>,
}

/// The `.signatures.json` for `files` (every file but the signatures themselves, SHA-256),
/// formatted as `opa build` writes it.
pub fn sign(files: &[(String, Vec<u8>)], signer: &Signer<'_>) -> Result<Vec<u8>, SignatureError> {
    let mut infos = Vec::new();
    for (path, content) in files {
        if path == SIGNATURES_FILE {
            continue;
        }
        let digest = hash::file_digest(hash::DEFAULT_ALGORITHM, path, content)
            .unwrap_or_else(|| Ok(Vec::new()))
            .map_err(|message| SignatureError::Document {
                path: path.clone(),
                message,
            })?;
        infos.push(FileInfo {
            name: path.clone(),
            hash: to_hex(&digest),
            algorithm: hash::DEFAULT_ALGORITHM.to_string(),
        });
    }
    let mut payload = serde_json::Map::new();
    payload.insert(
        "files".into(),
        serde_json::to_value(infos).map_err(|e| SignatureError::BadFile(e.to_string()))?,
    );
    if let Some(keyid) = signer.keyid {
        payload.insert("keyid".into(), keyid.into());
    }
    if let Some(scope) = signer.scope {
        payload.insert("scope".into(), scope.into());
    }
    let payload = serde_json::Value::Object(payload).to_string();
    let token = token::compact(
        signer.algorithm,
        signer.keyid,
        payload.as_bytes(),
        signer.sign,
    )?;
    let file = SignaturesFile {
        signatures: vec![token],
        plugin: String::new(),
    };
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b" ");
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
    file.serialize(&mut serializer)
        .map_err(|e| SignatureError::BadFile(e.to_string()))?;
    Ok(out)
}

/// Signs a bundle `.tar.gz`: the same files plus `.signatures.json` (a previous one replaced).
pub fn sign_targz(targz: &[u8], signer: &Signer<'_>) -> Result<Vec<u8>, SignError> {
    let mut files = super::archive::read_targz(targz, &super::Limits::default())?;
    files.retain(|(path, _)| path != SIGNATURES_FILE);
    let signatures = sign(&files, signer)?;
    files.push((SIGNATURES_FILE.to_string(), signatures));
    Ok(super::archive::write_targz(&files)?)
}

#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error(transparent)]
    Bundle(#[from] super::BundleError),
    #[error(transparent)]
    Signature(#[from] SignatureError),
    #[error("writing the bundle: {0}")]
    Io(#[from] std::io::Error),
}

/// Go's `filepath.Match` on `/`-separated paths: `*` and `?` never match `/`, `[a-z]` and
/// `[^a-z]` classes, `\` escapes. A malformed pattern matches nothing, as Go's error does.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let name: Vec<char> = name.chars().collect();
    match_from(&pattern, &name)
}

fn match_from(pattern: &[char], name: &[char]) -> bool {
    match pattern.split_first() {
        None => name.is_empty(),
        Some(('*', rest)) => {
            // Try every split of name's leading non-separator run.
            let mut i = 0;
            loop {
                if match_from(rest, name.get(i..).unwrap_or_default()) {
                    return true;
                }
                match name.get(i) {
                    Some(c) if *c != '/' => i += 1,
                    _ => return false,
                }
            }
        }
        Some(('?', rest)) => match name.split_first() {
            Some((c, tail)) if *c != '/' => match_from(rest, tail),
            _ => false,
        },
        Some(('[', rest)) => {
            let Some((c, tail)) = name.split_first() else {
                return false;
            };
            let (negated, mut body) = match rest.split_first() {
                Some(('^', b)) => (true, b),
                _ => (false, rest),
            };
            let mut matched = false;
            let mut first = true;
            loop {
                match body.split_first() {
                    None => return false,
                    Some((']', after)) if !first => {
                        body = after;
                        break;
                    }
                    Some((lo, after)) => {
                        let (lo, after) = match (lo, after.split_first()) {
                            ('\\', Some((escaped, a))) => (*escaped, a),
                            _ => (*lo, after),
                        };
                        let (hi, after) = match after {
                            ['-', hi, tail @ ..] if *hi != ']' => (*hi, tail),
                            _ => (lo, after),
                        };
                        matched |= lo <= *c && *c <= hi;
                        body = after;
                    }
                }
                first = false;
            }
            matched != negated && *c != '/' && match_from(body, tail)
        }
        Some(('\\', rest)) => match (rest.split_first(), name.split_first()) {
            (Some((p, prest)), Some((c, tail))) if p == c => match_from(prest, tail),
            _ => false,
        },
        Some((p, rest)) => match name.split_first() {
            Some((c, tail)) if c == p => match_from(rest, tail),
            _ => false,
        },
    }
}

#[cfg(test)]
mod tests;
