use super::archive::write_targz;
use super::*;

fn files(list: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
    list.iter()
        .map(|(p, c)| (p.to_string(), c.as_bytes().to_vec()))
        .collect()
}

fn read(list: &[(&str, &str)]) -> Result<Bundle, BundleError> {
    Bundle::from_targz(&write_targz(&files(list)).unwrap(), &Limits::default())
}

#[test]
fn reads_an_opa_bundle() {
    let bundle = read(&[
        (
            ".manifest",
            r#"{"revision":"r1","roots":["envoy","users"]}"#,
        ),
        ("envoy/authz.rego", "package envoy.authz\nallow := true\n"),
        ("users/data.json", r#"{"alice":{"role":"admin"}}"#),
        ("users/extra/data.yaml", "bob:\n  role: guest\n"),
        ("README.md", "ignored"),
    ])
    .unwrap();
    assert_eq!(bundle.manifest.revision, "r1");
    assert_eq!(bundle.modules.len(), 1);
    assert_eq!(bundle.modules[0].path, "envoy/authz.rego");
    assert_eq!(
        bundle.data,
        Value::from_json_str(
            r#"{"users":{"alice":{"role":"admin"},"extra":{"bob":{"role":"guest"}}}}"#
        )
        .unwrap()
    );
    assert_eq!(bundle.files.len(), 5);
    assert!(bundle.program.is_none());
}

#[test]
fn root_data_and_nested_data_merge() {
    let bundle = read(&[
        ("data.json", r#"{"a":{"x":1}}"#),
        ("a/data.json", r#"{"y":2}"#),
    ])
    .unwrap();
    assert_eq!(
        bundle.data,
        Value::from_json_str(r#"{"a":{"x":1,"y":2}}"#).unwrap()
    );
    let err = read(&[("data.json", r#"{"a":1}"#), ("a/data.json", r#"{"y":2}"#)]).unwrap_err();
    assert!(matches!(err, BundleError::Data { .. }), "{err}");
}

#[test]
fn data_outside_roots_is_rejected() {
    let err = read(&[
        (".manifest", r#"{"roots":["envoy"]}"#),
        ("users/data.json", "{}"),
    ])
    .unwrap_err();
    assert_eq!(err.code(), "outside-roots");
    assert!(err.to_string().contains("users/data.json"), "{err}");
}

#[test]
fn not_gzip_not_tar_truncated() {
    let limits = Limits::default();
    let err = Bundle::from_targz(b"definitely not gzip", &limits).unwrap_err();
    assert_eq!(err.code(), "not-gzip", "{err}");

    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &[7u8; 1000]).unwrap();
    let err = Bundle::from_targz(&gz.finish().unwrap(), &limits).unwrap_err();
    assert_eq!(err.code(), "not-tar", "{err}");

    let padding = "package p\n# padding\n".repeat(500);
    let good = write_targz(&files(&[("data.json", "{\"k\": 1}"), ("p.rego", &padding)])).unwrap();
    for cut in [good.len() / 2, good.len() - 4] {
        let err = Bundle::from_targz(&good[..cut], &limits).unwrap_err();
        assert_eq!(err.code(), "not-gzip", "cut at {cut}: {err}");
    }
}

#[test]
fn escaping_entries_are_rejected() {
    for name in ["../evil.rego", "a/../../evil.rego", "//etc/passwd"] {
        // The tar crate refuses to write such names, so build the header by hand.
        let mut header = tar::Header::new_old();
        header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        header.set_size(1);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        let mut raw = header.as_bytes().to_vec();
        raw.extend_from_slice(&[b'x'; 512]);
        raw.extend_from_slice(&[0; 1024]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut gz, &raw).unwrap();
        let err = Bundle::from_targz(&gz.finish().unwrap(), &Limits::default()).unwrap_err();
        assert_eq!(err.code(), "bad-entry", "{name}: {err}");
        assert!(err.to_string().contains(name), "{err}");
    }
}

#[test]
fn symlinks_and_duplicates_are_rejected() {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Symlink);
    header.set_size(0);
    builder
        .append_link(&mut header, "data.json", "/etc/passwd")
        .unwrap();
    let raw = builder.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &raw).unwrap();
    let err = Bundle::from_targz(&gz.finish().unwrap(), &Limits::default()).unwrap_err();
    assert_eq!(err.code(), "bad-entry", "{err}");

    let err = read(&[("a.rego", "package a"), ("./a.rego", "package a")]).unwrap_err();
    assert_eq!(err.code(), "duplicate-entry", "{err}");
}

#[test]
fn size_limit_is_enforced_while_decompressing() {
    let big = write_targz(&files(&[(
        "data.json",
        &format!("{{\"k\":\"{}\"}}", "x".repeat(100_000)),
    )]))
    .unwrap();
    let err = Bundle::from_targz(
        &big,
        &Limits {
            max_uncompressed_bytes: 50_000,
        },
    )
    .unwrap_err();
    assert_eq!(err, BundleError::TooLarge { limit: 50_000 });
    assert!(Bundle::from_targz(
        &big,
        &Limits {
            max_uncompressed_bytes: 200_000
        }
    )
    .is_ok());
}

#[test]
fn bad_manifest_and_data_are_named() {
    let err = read(&[(".manifest", "{")]).unwrap_err();
    assert_eq!(err.code(), "bad-manifest");
    let err = read(&[(".manifest", r#"{"rego_version": 3}"#)]).unwrap_err();
    assert_eq!(err.code(), "bad-manifest");
    let err = read(&[("x/data.json", "{nope")]).unwrap_err();
    assert_eq!(err.code(), "bad-data");
    assert!(err.to_string().contains("x/data.json"), "{err}");
}

/// A `.tar.gz` whose entries are named exactly as given (`/a.rego`, `./a.rego`), as OPA and
/// `tar` write them.
fn targz_named(list: &[(&str, &str)]) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut builder = tar::Builder::new(gz);
    for (name, content) in list {
        let mut header = tar::Header::new_old();
        header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        builder.append(&header, content.as_bytes()).unwrap();
    }
    builder.into_inner().unwrap().finish().unwrap()
}

fn versions(bundle: &Bundle) -> Vec<(&str, u8)> {
    bundle
        .modules
        .iter()
        .map(|m| (m.path.as_str(), m.rego_version.number()))
        .collect()
}

const V1: &str = "package a\nx := 1\n";

#[test]
fn file_rego_versions_match_the_names_opa_reads() {
    let manifest = r#"{"file_rego_versions": {"/legacy/*.rego": 0}}"#;
    // OPA writes `/legacy/a.rego`: the glob matches, `*` across `/` too.
    let opa = targz_named(&[
        ("/.manifest", manifest),
        ("/legacy/a.rego", V1),
        ("/legacy/deep/b.rego", V1),
        ("/main.rego", V1),
    ]);
    let bundle = Bundle::from_targz(&opa, &Limits::default()).unwrap();
    assert_eq!(
        versions(&bundle),
        [
            ("legacy/a.rego", 0),
            ("legacy/deep/b.rego", 0),
            ("main.rego", 1)
        ]
    );
    // `tar -C dir .` writes `./legacy/a.rego`: OPA matches that name, which the glob does not.
    let dotted = targz_named(&[("./.manifest", manifest), ("./legacy/a.rego", V1)]);
    let bundle = Bundle::from_targz(&dotted, &Limits::default()).unwrap();
    assert_eq!(versions(&bundle), [("legacy/a.rego", 1)]);
    // A directory: `/legacy/a.rego`, whatever the archive would say.
    let bundle =
        Bundle::from_files(files(&[(".manifest", manifest), ("legacy/a.rego", V1)])).unwrap();
    assert_eq!(versions(&bundle), [("legacy/a.rego", 0)]);
}

#[test]
fn a_file_takes_its_glob_else_the_bundle_else_the_default_version() {
    let manifest = r#"{"rego_version": 0, "file_rego_versions": {"new/*": 1, "x\\*.rego": 1}}"#;
    let list = [
        (".manifest", manifest),
        ("new/a.rego", V1),
        ("old/b.rego", V1),
        ("x*.rego", V1),
        ("xy.rego", V1),
    ];
    let bundle = read(&list).unwrap();
    assert_eq!(
        versions(&bundle),
        [
            ("new/a.rego", 1),
            ("old/b.rego", 0),
            ("x*.rego", 1),
            ("xy.rego", 0)
        ]
    );
    let bare = write_targz(&files(&[("a.rego", V1)])).unwrap();
    for default in [RegoVersion::V0, RegoVersion::V1] {
        let bundle = Bundle::from_targz_as(&bare, &Limits::default(), default).unwrap();
        assert_eq!(bundle.modules[0].rego_version, default);
    }
    // The manifest's version wins over `--v0-compatible`, as in OPA.
    let v1 = write_targz(&files(&[
        (".manifest", r#"{"rego_version": 1}"#),
        ("a.rego", V1),
    ]))
    .unwrap();
    let bundle = Bundle::from_targz_as(&v1, &Limits::default(), RegoVersion::V0).unwrap();
    assert_eq!(bundle.modules[0].rego_version, RegoVersion::V1);
}

#[test]
fn file_rego_versions_that_opa_would_read_ambiguously_are_refused() {
    for (manifest, needle) in [
        (
            r#"{"file_rego_versions": {"a*": 0, "*.rego": 1}}"#,
            "both match a.rego",
        ),
        (
            r#"{"file_rego_versions": {"*.rego": 2}}"#,
            "2 is not 0 or 1",
        ),
        (
            r#"{"file_rego_versions": {"[^a].rego": 0}}"#,
            "`[^` is ambiguous",
        ),
        (
            r#"{"file_rego_versions": {"{a.rego": 0}}"#,
            "glob \"{a.rego\"",
        ),
    ] {
        let err = read(&[(".manifest", manifest), ("a.rego", V1)]).unwrap_err();
        assert_eq!(err.code(), "bad-manifest", "{err}");
        assert!(err.to_string().contains(needle), "{err}");
    }
}
