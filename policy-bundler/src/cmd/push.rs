//! `push`: a bundle as an image in an OCI registry, in the layout OPA's `type: oci` bundle
//! service reads (and zerohop's `bundle.service.oci`): one layer of media type
//! `application/vnd.oci.image.layer.v1.tar+gzip` that is the bundle `.tar.gz` as it is, and an
//! empty `application/vnd.oci.image.config.v1+json` config. The image is written as an OCI
//! image layout, then copied to the registry by `skopeo` (which handles the registry's
//! authentication and TLS); the manifest digest it prints is what `oci.digest` pins.

use std::path::Path;
use std::process::Command;

use anyhow::Context as _;
use serde_json::json;
use sha2::{Digest, Sha256};
use zerohop_filter::bundle::{Bundle, Limits};

use crate::{report, Failed};

const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

pub fn run(
    bundle_path: &Path,
    reference: &str,
    layout: Option<&Path>,
    plain_http: bool,
) -> anyhow::Result<()> {
    let target = reference.strip_prefix("oci://").ok_or_else(|| {
        Failed(format!(
            "{reference:?}: expected oci://HOST[:PORT]/REPOSITORY:TAG"
        ))
    })?;
    let tag = match target.rsplit_once(':') {
        Some((name, tag)) if name.contains('/') && !tag.contains('/') && !tag.is_empty() => tag,
        _ => {
            return Err(Failed(format!(
                "{reference:?}: expected oci://HOST[:PORT]/REPOSITORY:TAG"
            ))
            .into())
        }
    };
    let bytes = std::fs::read(bundle_path)
        .with_context(|| format!("reading bundle {}", bundle_path.display()))?;
    // Only bundles the filter can read are published.
    Bundle::from_targz(&bytes, &Limits::default())
        .map_err(|e| Failed(format!("{}: {e}", bundle_path.display())))?;

    let keep = layout.is_some();
    let layout = layout.map_or_else(
        || std::env::temp_dir().join(format!("policy-bundler-push-{}", std::process::id())),
        Path::to_path_buf,
    );
    let blobs = layout.join("blobs").join("sha256");
    std::fs::create_dir_all(&blobs).with_context(|| format!("creating {}", blobs.display()))?;
    let write_blob = |data: &[u8]| -> anyhow::Result<String> {
        let hex: String = Sha256::digest(data)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        std::fs::write(blobs.join(&hex), data)
            .with_context(|| format!("writing into {}", blobs.display()))?;
        Ok(format!("sha256:{hex}"))
    };
    let config = b"{}";
    let title = bundle_path
        .file_name()
        .map_or_else(|| "bundle.tar.gz".into(), |n| n.to_string_lossy());
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": {"mediaType": CONFIG, "digest": write_blob(config)?, "size": config.len()},
        "layers": [{
            "mediaType": LAYER,
            "digest": write_blob(&bytes)?,
            "size": bytes.len(),
            "annotations": {"org.opencontainers.image.title": title},
        }],
    }))?;
    let digest = write_blob(&manifest)?;
    let index = json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": MANIFEST, "digest": digest, "size": manifest.len(),
            "annotations": {"org.opencontainers.image.ref.name": tag},
        }],
    });
    std::fs::write(layout.join("index.json"), serde_json::to_vec(&index)?)?;
    std::fs::write(
        layout.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )?;

    let mut skopeo = Command::new("skopeo");
    skopeo.args(["copy", "--quiet", "--preserve-digests"]);
    if plain_http {
        skopeo.arg("--dest-tls-verify=false");
    }
    skopeo.arg(format!("oci:{}:{tag}", layout.display()));
    skopeo.arg(format!("docker://{target}"));
    let status = skopeo.status();
    if !keep {
        // Nothing to keep: the image is in the registry (or the error says why not).
        let _ = std::fs::remove_dir_all(&layout);
    }
    let status = status.context("running skopeo (Debian: apt-get install skopeo)")?;
    if !status.success() {
        return Err(Failed(format!("skopeo could not push to {target} ({status})")).into());
    }
    report::line(&format!("pushed {} to {reference}", bundle_path.display()));
    report::line(&format!("digest: {digest}"));
    Ok(())
}
