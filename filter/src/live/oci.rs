//! OPA's `type: oci` bundle service as a state machine with no I/O: the bundle is the one
//! `application/vnd.oci.image.layer.v1.tar+gzip` layer of an image in an OCI registry
//! (distribution API v2). One fetch is a chain of callouts: the manifest (`If-None-Match` with
//! the active manifest digest: unchanged is a 304, or the same digest), then the layer, whose
//! bytes must hash to the manifest's digest for it. A 401 with a `Bearer` challenge is answered
//! with the registry token flow (`GET <realm>?service=…&scope=…` → `{"token": …}` → the call
//! again with `Authorization: Bearer …`); the token is kept for the next fetches and renewed
//! on the next 401. Anonymous registries never challenge.

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::bundle::source::Oci;

pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// The media type of the layer that holds the bundle (what `opa build`/`oras push` write).
pub const BUNDLE_LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// One callout to make.
#[derive(Debug, PartialEq, Eq)]
pub struct Call {
    /// To the token service (the challenge's realm) rather than the registry.
    pub token_service: bool,
    pub authority: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
}

/// A callout's answer; header names lowercase.
#[derive(Debug, Default)]
pub struct Answer {
    pub status: Option<u16>,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What to do after an answer.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    Call(Call),
    /// The active bundle is still the image's.
    Unchanged,
    /// A new bundle, identified by its image's manifest digest.
    Bundle {
        bytes: Vec<u8>,
        digest: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OciError {
    #[error("the registry could not be reached (connection failed or reset, or no answer)")]
    NoResponse,
    #[error("the registry answered HTTP {status} for the {what}")]
    Status { what: &'static str, status: u16 },
    #[error("the registry answered 401 without a usable bearer challenge (WWW-Authenticate: {0})")]
    NoChallenge(String),
    #[error("the token service {0}")]
    TokenService(String),
    #[error("the registry refused the token it asked for (401 again)")]
    TokenRefused,
    #[error("the manifest {0}")]
    Manifest(String),
    #[error("the bundle layer hashes to {actual}, not to the manifest's {expected}")]
    DigestMismatch { expected: String, actual: String },
    #[error("the bundle layer is larger than the limit of {limit} bytes")]
    TooLarge { limit: u64 },
}

impl OciError {
    pub fn code(&self) -> &'static str {
        use crate::codes;
        match self {
            OciError::NoResponse => codes::FETCH_FAILED.name,
            OciError::Status { .. } => codes::HTTP_STATUS.name,
            OciError::NoChallenge(_) | OciError::TokenService(_) | OciError::TokenRefused => {
                codes::REGISTRY_AUTH.name
            }
            OciError::Manifest(_) => codes::REGISTRY_MANIFEST.name,
            OciError::DigestMismatch { .. } => codes::LAYER_DIGEST_MISMATCH.name,
            OciError::TooLarge { .. } => codes::DOWNLOAD_TOO_LARGE.name,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Stage {
    Manifest,
    Layer {
        layer_digest: String,
        manifest_digest: String,
    },
}

#[derive(Debug)]
pub struct OciFetch {
    oci: Oci,
    authority: String,
    max_bytes: u64,
    token: Option<String>,
    stage: Stage,
    /// The last call was to the token service.
    awaiting_token: bool,
    /// This stage already asked for a token once.
    challenged: bool,
    /// The active bundle's manifest digest, sent as `If-None-Match`.
    known_digest: String,
}

impl OciFetch {
    pub fn new(oci: Oci, authority: String, max_bytes: u64) -> Self {
        Self {
            oci,
            authority,
            max_bytes,
            token: None,
            stage: Stage::Manifest,
            awaiting_token: false,
            challenged: false,
            known_digest: String::new(),
        }
    }

    /// Starts a fetch: the manifest request. `known_digest` is the active bundle's manifest
    /// digest (empty when none is active, or after a failure).
    pub fn start(&mut self, known_digest: &str) -> Call {
        self.stage = Stage::Manifest;
        self.awaiting_token = false;
        self.challenged = false;
        self.known_digest = known_digest.to_string();
        self.stage_call()
    }

    fn stage_call(&self) -> Call {
        let mut headers = Vec::new();
        let path = match &self.stage {
            Stage::Manifest => {
                headers.push(("accept".to_string(), MANIFEST_MEDIA_TYPE.to_string()));
                if !self.known_digest.is_empty() {
                    headers.push((
                        "if-none-match".to_string(),
                        format!("\"{}\"", self.known_digest),
                    ));
                }
                format!(
                    "/v2/{}/manifests/{}",
                    self.oci.repository, self.oci.reference
                )
            }
            Stage::Layer { layer_digest, .. } => {
                format!("/v2/{}/blobs/{layer_digest}", self.oci.repository)
            }
        };
        if let Some(token) = &self.token {
            headers.push(("authorization".to_string(), format!("Bearer {token}")));
        }
        Call {
            token_service: false,
            authority: self.authority.clone(),
            path,
            headers,
        }
    }

    /// Reads the answer to the last call.
    pub fn answer(&mut self, answer: Answer) -> Result<Next, OciError> {
        let status = answer.status.ok_or(OciError::NoResponse)?;
        if self.awaiting_token {
            self.awaiting_token = false;
            self.token = Some(read_token(status, &answer.body)?);
            return Ok(Next::Call(self.stage_call()));
        }
        if status == 401 {
            if self.challenged {
                return Err(OciError::TokenRefused);
            }
            let challenge = answer.header("www-authenticate").unwrap_or("(none)");
            let call = self
                .token_call(challenge)
                .ok_or_else(|| OciError::NoChallenge(challenge.to_string()))?;
            self.challenged = true;
            self.awaiting_token = true;
            self.token = None;
            return Ok(Next::Call(call));
        }
        match self.stage.clone() {
            Stage::Manifest => self.manifest(status, &answer),
            Stage::Layer {
                layer_digest,
                manifest_digest,
            } => {
                if status != 200 {
                    return Err(OciError::Status {
                        what: "bundle layer",
                        status,
                    });
                }
                if answer.body.len() as u64 > self.max_bytes {
                    return Err(OciError::TooLarge {
                        limit: self.max_bytes,
                    });
                }
                let actual = sha256(&answer.body);
                if actual != layer_digest {
                    return Err(OciError::DigestMismatch {
                        expected: layer_digest,
                        actual,
                    });
                }
                Ok(Next::Bundle {
                    bytes: answer.body,
                    digest: manifest_digest,
                })
            }
        }
    }

    fn manifest(&mut self, status: u16, answer: &Answer) -> Result<Next, OciError> {
        match status {
            304 => return Ok(Next::Unchanged),
            200 => {}
            status => {
                return Err(OciError::Status {
                    what: "manifest",
                    status,
                })
            }
        }
        let digest = sha256(&answer.body);
        if self.oci.reference.starts_with("sha256:") && digest != self.oci.reference {
            return Err(OciError::Manifest(format!(
                "hashes to {digest}, not to the configured digest {}",
                self.oci.reference
            )));
        }
        if digest == self.known_digest {
            return Ok(Next::Unchanged);
        }
        let manifest: Manifest = serde_json::from_slice(&answer.body)
            .map_err(|e| OciError::Manifest(format!("is not an OCI image manifest: {e}")))?;
        let media_type = manifest
            .media_type
            .as_deref()
            .or(answer.header("content-type"))
            .unwrap_or("");
        if media_type != MANIFEST_MEDIA_TYPE {
            return Err(OciError::Manifest(format!(
                "has media type {media_type:?}, not {MANIFEST_MEDIA_TYPE}"
            )));
        }
        let bundles: Vec<&Descriptor> = manifest
            .layers
            .iter()
            .filter(|l| l.media_type == BUNDLE_LAYER_MEDIA_TYPE)
            .collect();
        let [layer] = bundles.as_slice() else {
            return Err(OciError::Manifest(format!(
                "has {} layers of media type {BUNDLE_LAYER_MEDIA_TYPE} (the bundle), not one",
                bundles.len()
            )));
        };
        if layer.size > self.max_bytes {
            return Err(OciError::TooLarge {
                limit: self.max_bytes,
            });
        }
        self.stage = Stage::Layer {
            layer_digest: layer.digest.clone(),
            manifest_digest: digest,
        };
        self.challenged = false;
        Ok(Next::Call(self.stage_call()))
    }

    /// The token request a `Bearer` challenge asks for, or `None` if it is not usable.
    fn token_call(&self, challenge: &str) -> Option<Call> {
        let params = bearer_challenge(challenge)?;
        let get = |key: &str| {
            params
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v.as_str())
        };
        let realm = get("realm")?;
        let rest = realm
            .strip_prefix("https://")
            .or_else(|| realm.strip_prefix("http://"))?;
        let (authority, path) = match rest.find('/') {
            Some(at) => rest.split_at(at),
            None => (rest, "/"),
        };
        if authority.is_empty() || path.contains('?') {
            return None;
        }
        let scope = get("scope")
            .map(str::to_string)
            .unwrap_or_else(|| format!("repository:{}:pull", self.oci.repository));
        let mut query = format!("scope={}", percent_encode(&scope));
        if let Some(service) = get("service") {
            query = format!("service={}&{query}", percent_encode(service));
        }
        Some(Call {
            token_service: true,
            authority: authority.to_string(),
            path: format!("{path}?{query}"),
            headers: vec![("accept".to_string(), "application/json".to_string())],
        })
    }
}

#[derive(Deserialize)]
struct Manifest {
    #[serde(rename = "mediaType")]
    media_type: Option<String>,
    #[serde(default)]
    layers: Vec<Descriptor>,
}

#[derive(Deserialize)]
struct Descriptor {
    #[serde(rename = "mediaType")]
    media_type: String,
    digest: String,
    size: u64,
}

#[derive(Deserialize)]
struct TokenAnswer {
    token: Option<String>,
    access_token: Option<String>,
}

fn read_token(status: u16, body: &[u8]) -> Result<String, OciError> {
    if status != 200 {
        return Err(OciError::TokenService(format!("answered HTTP {status}")));
    }
    let answer: TokenAnswer = serde_json::from_slice(body).map_err(|e| {
        OciError::TokenService(format!("answered something else than a token: {e}"))
    })?;
    answer
        .token
        .or(answer.access_token)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| OciError::TokenService("answered no `token`".to_string()))
}

fn sha256(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut hex = String::with_capacity(71);
    hex.push_str("sha256:");
    for byte in digest {
        hex.push_str(&format!("{byte:02x}"));
    }
    hex
}

/// `Bearer realm="…",service="…",scope="…"` → its parameters; `None` for another scheme or
/// a malformed header.
fn bearer_challenge(header: &str) -> Option<Vec<(String, String)>> {
    let header = header.trim();
    let (scheme, mut rest) = header.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let mut params = Vec::new();
    loop {
        rest = rest.trim_start_matches([' ', ',']);
        if rest.is_empty() {
            return Some(params);
        }
        let (key, after) = rest.split_once('=')?;
        let (value, remaining) = if let Some(quoted) = after.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let end = loop {
                match chars.next()? {
                    (_, '\\') => value.push(chars.next()?.1),
                    (at, '"') => break at,
                    (_, c) => value.push(c),
                }
            };
            (value, &quoted[end + 1..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_string(), &after[end..])
        };
        params.push((key.trim().to_string(), value));
        rest = remaining;
    }
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAYER: &[u8] = b"the bundle bytes";

    fn fetch() -> OciFetch {
        OciFetch::new(
            Oci {
                repository: "mesh/authz".into(),
                reference: "v1".into(),
                token_cluster: None,
            },
            "registry.example".into(),
            1 << 20,
        )
    }

    fn manifest(layers: &[(&str, &[u8])]) -> Vec<u8> {
        let layers: Vec<_> = layers
            .iter()
            .map(|(media_type, bytes)| {
                serde_json::json!({"mediaType": media_type, "digest": sha256(bytes), "size": bytes.len()})
            })
            .collect();
        serde_json::json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST_MEDIA_TYPE,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha256(b"{}"), "size": 2},
            "layers": layers,
        })
        .to_string()
        .into_bytes()
    }

    fn ok(body: Vec<u8>) -> Answer {
        Answer {
            status: Some(200),
            headers: vec![],
            body,
        }
    }

    fn status(status: u16, headers: &[(&str, &str)]) -> Answer {
        Answer {
            status: Some(status),
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            body: vec![],
        }
    }

    fn call(next: Result<Next, OciError>) -> Call {
        match next {
            Ok(Next::Call(call)) => call,
            other => panic!("expected a call, got {other:?}"),
        }
    }

    #[test]
    fn anonymous_manifest_then_layer() {
        let mut f = fetch();
        let first = f.start("");
        assert_eq!(first.path, "/v2/mesh/authz/manifests/v1");
        assert!(!first.headers.iter().any(|(n, _)| n == "if-none-match"));
        let body = manifest(&[(BUNDLE_LAYER_MEDIA_TYPE, LAYER)]);
        let digest = sha256(&body);
        let layer = call(f.answer(ok(body)));
        assert_eq!(
            layer.path,
            format!("/v2/mesh/authz/blobs/{}", sha256(LAYER))
        );
        assert_eq!(
            f.answer(ok(LAYER.to_vec())),
            Ok(Next::Bundle {
                bytes: LAYER.to_vec(),
                digest: digest.clone()
            })
        );
        // The next fetch asks with the active digest; 304 and the same digest are unchanged.
        let again = f.start(&digest);
        assert!(again
            .headers
            .contains(&("if-none-match".to_string(), format!("\"{digest}\""))));
        assert_eq!(f.answer(status(304, &[])), Ok(Next::Unchanged));
        f.start(&digest);
        assert_eq!(
            f.answer(ok(manifest(&[(BUNDLE_LAYER_MEDIA_TYPE, LAYER)]))),
            Ok(Next::Unchanged)
        );
    }

    #[test]
    fn bearer_token_flow() {
        let mut f = fetch();
        f.start("");
        let token = call(f.answer(status(
            401,
            &[(
                "www-authenticate",
                r#"Bearer realm="http://auth.example:5001/token",service="registry.example",scope="repository:mesh/authz:pull""#,
            )],
        )));
        assert!(token.token_service);
        assert_eq!(token.authority, "auth.example:5001");
        assert_eq!(
            token.path,
            "/token?service=registry.example&scope=repository%3Amesh%2Fauthz%3Apull"
        );
        let retry = call(f.answer(ok(br#"{"token":"t0k"}"#.to_vec())));
        assert_eq!(retry.path, "/v2/mesh/authz/manifests/v1");
        assert!(retry
            .headers
            .contains(&("authorization".to_string(), "Bearer t0k".to_string())));
        let layer = call(f.answer(ok(manifest(&[(BUNDLE_LAYER_MEDIA_TYPE, LAYER)]))));
        assert!(layer
            .headers
            .contains(&("authorization".to_string(), "Bearer t0k".to_string())));
        assert!(matches!(
            f.answer(ok(LAYER.to_vec())),
            Ok(Next::Bundle { .. })
        ));
    }

    #[test]
    fn a_token_refused_again_is_an_error() {
        let mut f = fetch();
        f.start("");
        let challenge = [(
            "www-authenticate",
            r#"Bearer realm="https://auth.example/token""#,
        )];
        call(f.answer(status(401, &challenge)));
        call(f.answer(ok(br#"{"access_token":"t"}"#.to_vec())));
        let error = f.answer(status(401, &challenge)).unwrap_err();
        assert_eq!(error, OciError::TokenRefused);
        assert_eq!(error.code(), "registry-auth");
    }

    #[test]
    fn a_401_without_a_usable_challenge_is_an_error() {
        for header in [
            None,
            Some(r#"Basic realm="registry""#),
            Some(r#"Bearer service="registry""#),
            Some(r#"Bearer realm="ftp://auth/token""#),
            Some(r#"Bearer realm="http://auth/token"#),
        ] {
            let mut f = fetch();
            f.start("");
            let headers: Vec<_> = header
                .map(|h| ("www-authenticate", h))
                .into_iter()
                .collect();
            let error = f.answer(status(401, &headers)).unwrap_err();
            assert_eq!(
                error.to_string(),
                format!(
                    "the registry answered 401 without a usable bearer challenge (WWW-Authenticate: {})",
                    header.unwrap_or("(none)")
                )
            );
            assert_eq!(error.code(), "registry-auth");
        }
    }

    #[test]
    fn a_layer_that_does_not_match_its_digest_is_an_error() {
        let mut f = fetch();
        f.start("");
        call(f.answer(ok(manifest(&[(BUNDLE_LAYER_MEDIA_TYPE, LAYER)]))));
        let error = f.answer(ok(b"other bytes".to_vec())).unwrap_err();
        assert_eq!(
            error,
            OciError::DigestMismatch {
                expected: sha256(LAYER),
                actual: sha256(b"other bytes")
            }
        );
        assert_eq!(error.code(), "layer-digest-mismatch");
    }

    #[test]
    fn a_manifest_without_exactly_one_bundle_layer_is_an_error() {
        for layers in [
            vec![],
            vec![("application/vnd.oci.image.layer.v1.tar", LAYER)],
            vec![
                (BUNDLE_LAYER_MEDIA_TYPE, LAYER),
                (BUNDLE_LAYER_MEDIA_TYPE, b"x".as_slice()),
            ],
        ] {
            let mut f = fetch();
            f.start("");
            let error = f.answer(ok(manifest(&layers))).unwrap_err();
            assert_eq!(error.code(), "registry-manifest", "{error}");
        }
        let mut f = fetch();
        f.start("");
        assert_eq!(
            f.answer(ok(b"<html>".to_vec())).unwrap_err().code(),
            "registry-manifest"
        );
    }

    #[test]
    fn other_statuses_name_what_was_asked() {
        let mut f = fetch();
        f.start("");
        assert_eq!(
            f.answer(status(404, &[])).unwrap_err().to_string(),
            "the registry answered HTTP 404 for the manifest"
        );
        f.start("");
        assert_eq!(f.answer(Answer::default()), Err(OciError::NoResponse));
    }

    #[test]
    fn challenges_parse() {
        assert_eq!(
            bearer_challenge(r#"Bearer realm="a\"b",service=svc, scope="x,y""#),
            Some(vec![
                ("realm".to_string(), "a\"b".to_string()),
                ("service".to_string(), "svc".to_string()),
                ("scope".to_string(), "x,y".to_string()),
            ])
        );
    }
}
