//! `ocipack verify --profile oci-import`: one hostile layout per rule of bashbrew's
//! oci-import builder, meta-scripts' import and crane's push, each finding naming its
//! origin; and `ocipack build` applying the profile to projects with a `[library]` table.

use crate::common;
use crate::common::layouts;

use std::fs;
use std::os::unix::fs::symlink;

use serde_json::json;

use layouts::{Layout, Out};

fn import(l: &Layout, extra: &[&str]) -> Out {
    let mut args = vec!["--profile", "oci-import"];
    args.extend(extra);
    l.verify(&args)
}

/// A clean layout in `<tmp>/amd64/oci` (so the bashbrew architecture is known).
fn amd64(extra: &[&str]) -> Layout {
    Layout::build_in("amd64", extra)
}

#[test]
fn ocipack_layouts_pass_and_the_default_profile_is_unchanged() {
    for names in ["symlinks", "none"] {
        let l = amd64(&["--names", names]);
        import(&l, &[]).assert(0, &["valid (linux/amd64, checked against linux/amd64"]);
    }
    let l = amd64(&["--compression", "none"]);
    import(&l, &[]).assert(0, &["valid"]);
    // The plain profile does not apply the pipeline's rules.
    let l = amd64(&["--compression", "zstd"]);
    l.verify(&[]).assert(0, &["valid"]);
    l.verify(&["--profile", "oci"]).assert(0, &["valid"]);
    l.verify(&["--profile", "docker"]).assert(2, &["--profile"]);
}

#[test]
fn zstd_layers_are_an_error_that_explains_the_pipeline() {
    let l = amd64(&["--compression", "zstd"]);
    import(&l, &[]).assert(
        1,
        &[
            "layers[0].mediaType: [meta-scripts]: application/vnd.oci.image.layer.v1.tar+zstd",
            "meta-scripts' oci.jq",
            "accepts only tar and tar+gzip layers",
            "bashbrew itself accepts tar+zstd",
        ],
    );
}

#[test]
fn symlinked_blobs_are_a_crane_error() {
    let l = amd64(&["--names", "files"]);
    let o = import(&l, &[]);
    o.assert(
        1,
        &[
            "error: blobs/sha256/",
            "[crane]: layout blob sha256:",
            "is a symlink",
            "INVALID: 3 errors",
        ],
    );
    // Said once, by the rule that names crane: the plain profile's warning about the same
    // blobs is not repeated beside it.
    let all = format!("{}{}", o.stdout, o.stderr);
    assert!(!all.contains("warning"), "{all}");
    l.verify(&[])
        .assert(0, &["the blob is a symlink", "3 warnings"]);
}

#[test]
fn symlinks_that_leave_the_layout() {
    let l = amd64(&[]);
    symlink("/etc/passwd", l.path("absolute")).unwrap();
    symlink("../../outside", l.path("escapes")).unwrap();
    symlink("nothing-here", l.path("dangling")).unwrap();
    import(&l, &[]).assert(
        1,
        &[
            "absolute: [bashbrew]: symlink to the absolute path \"/etc/passwd\"",
            "escapes: [meta-scripts]: symlink to \"../../outside\" leads out of the layout",
            "warning: ",
            "dangling: [meta-scripts]: symlink to \"nothing-here\" leads to nothing",
        ],
    );
}

/// The survey walks names as bytes: a symlink out of the layout inside a directory whose
/// name is not UTF-8 is found (a lossy name could not be opened, so the directory went
/// unvisited), and both are named escaped.
#[test]
fn symlinks_under_names_that_are_not_utf8() {
    use std::os::unix::ffi::OsStrExt;
    let l = amd64(&[]);
    let odd = l
        .path("docs")
        .join(std::ffi::OsStr::from_bytes(b"\xff\x1b"));
    fs::create_dir_all(&odd).unwrap();
    symlink("../../../../outside", odd.join("up")).unwrap();
    import(&l, &[]).assert(
        1,
        &["docs/\\xff\\u{1b}/up: [meta-scripts]: symlink to \"../../../../outside\" leads out"],
    );
}

#[test]
fn data_on_the_index_entry_is_dropped_and_must_be_valid() {
    let l = amd64(&[]);
    let manifest = fs::read(l.path(&Layout::blob_path(&l.manifest_digest()))).unwrap();
    let mut i = l.index();
    use base64::Engine as _;
    i["manifests"][0]["data"] = json!(base64::engine::general_purpose::STANDARD.encode(&manifest));
    l.set_index(&i);
    import(&l, &[]).assert(
        0,
        &["manifests[0].data: [meta-scripts]: dropped: meta-scripts deletes data"],
    );
    i["manifests"][0]["data"] = json!("YWJj");
    l.set_index(&i);
    import(&l, &[]).assert(
        1,
        &["manifests[0].data: [meta-scripts]: 4 base64 characters, but a size of"],
    );
}

#[test]
fn index_entry_annotations_and_platform_are_replaced() {
    // The names local tools address the image by are lost harmlessly: no warning.
    let l = amd64(&["--ref-name", "latest"]);
    let o = import(&l, &[]);
    o.assert(0, &[]);
    assert!(
        !format!("{}{}", o.stdout, o.stderr).contains("warning"),
        "{}{}",
        o.stdout,
        o.stderr
    );
    // Any other annotation on the entry is information the pipeline throws away.
    let mut i = l.index();
    i["manifests"][0]["annotations"]["org.example.note"] = json!("kept?");
    l.set_index(&i);
    import(&l, &[]).assert(
        0,
        &[
            "manifests[0].annotations: [bashbrew, meta-scripts]: dropped",
            "1 warning",
        ],
    );
    let l = amd64(&[]);
    let mut i = l.index();
    i["manifests"][0]["platform"] = json!({"architecture": "arm64", "os": "linux"});
    l.set_index(&i);
    import(&l, &[]).assert(
        1,
        &["manifests[0].platform: [meta-scripts]: linux/arm64/v8, but the bashbrew architecture (the path component \"amd64\") is linux/amd64: meta-scripts replaces the platform"],
    );
    i["manifests"][0]["platform"] = json!({"architecture": "", "os": "linux"});
    l.set_index(&i);
    import(&l, &[]).assert(
        1,
        &["manifests[0].platform.architecture: [meta-scripts]: empty"],
    );
}

#[test]
fn index_fields_bashbrew_does_not_know() {
    let l = amd64(&[]);
    let good = l.index();
    let mut i = good.clone();
    i["artifactType"] = json!("application/x-test");
    l.set_index(&i);
    import(&l, &[]).assert(1, &["index.json: artifactType: [bashbrew, meta-scripts]"]);
    let mut i = good.clone();
    i["subject"] = good["manifests"][0].clone();
    l.set_index(&i);
    import(&l, &[]).assert(1, &["index.json: subject: [bashbrew]"]);
    let mut i = good.clone();
    i["annotations"] = json!({"a": "b"});
    l.set_index(&i);
    import(&l, &[]).assert(
        0,
        &["index.json: annotations: [meta-scripts]: index annotations are pushed unchanged"],
    );
    let mut i = good.clone();
    i.as_object_mut().unwrap().remove("mediaType");
    l.set_index(&i);
    import(&l, &[]).assert(
        0,
        &["index.json: mediaType: [meta-scripts]: absent: meta-scripts fills in"],
    );
}

#[test]
fn artifact_types_on_descriptors_and_manifest() {
    let l = amd64(&[]);
    let mut i = l.index();
    i["manifests"][0]["artifactType"] = json!("application/x-test");
    l.set_index(&i);
    import(&l, &[]).assert(1, &["manifests[0].artifactType: [meta-scripts]"]);

    let l = amd64(&[]);
    let mut m = l.manifest();
    m["artifactType"] = json!("application/x-test");
    l.set_manifest(&m);
    import(&l, &[]).assert(1, &[": artifactType: [bashbrew, meta-scripts]"]);

    let l = amd64(&[]);
    let mut m = l.manifest();
    m["layers"][0]["artifactType"] = json!("application/x-test");
    m["config"]["artifactType"] = json!("application/x-test");
    l.set_manifest(&m);
    import(&l, &[]).assert(
        1,
        &[
            ": config.artifactType: [meta-scripts]",
            ": layers[0].artifactType: [meta-scripts]",
        ],
    );
}

#[test]
fn manifest_media_type_and_subject() {
    let l = amd64(&[]);
    let mut m = l.manifest();
    m.as_object_mut().unwrap().remove("mediaType");
    l.set_manifest(&m);
    import(&l, &[]).assert(
        1,
        &[": mediaType: [meta-scripts]: absent: meta-scripts requires the manifest's mediaType"],
    );
    let l = amd64(&[]);
    let mut m = l.manifest();
    m["subject"] = m["config"].clone();
    l.set_manifest(&m);
    import(&l, &[]).assert(
        0,
        &[": subject: [bashbrew, meta-scripts]: the subject's target is not imported"],
    );
}

#[test]
fn sha512_digests_are_refused_by_crane() {
    use ocipack::digest::{Algorithm, Hasher};
    let l = amd64(&["--compression", "none"]);
    let old = l.layer_path();
    let bytes = fs::read(l.path(&old)).unwrap();
    let mut h = Hasher::new(Algorithm::Sha512);
    h.update(&bytes);
    let d = h.finish();
    fs::create_dir_all(l.path("blobs/sha512")).unwrap();
    fs::write(l.path(&d.blob_path()), &bytes).unwrap();
    fs::remove_file(l.path(&old)).unwrap();
    let mut m = l.manifest();
    m["layers"][0]["digest"] = json!(d.to_string());
    l.set_manifest(&m);
    l.verify(&[]).assert(0, &["valid"]);
    import(&l, &[]).assert(
        1,
        &[
            "layers[0].digest: [crane]: sha512:",
            "crane accepts only sha256 digests",
        ],
    );
}

#[test]
fn file_must_be_exactly_index_json() {
    let l = amd64(&[]);
    import(&l, &["--file", "index.json"]).assert(0, &["valid"]);
    import(&l, &["--file", "./index.json"]).assert(
        1,
        &["./index.json: [bashbrew, meta-scripts]: File: must be exactly \"index.json\""],
    );
    let l = amd64(&["--descriptor-file", "image.json"]);
    import(&l, &["--file", "image.json"]).assert(0, &["valid"]);
}

// ---------------------------------------------------------------- ocipack build

fn project(dir: &std::path::Path, image: &str, library: bool) {
    fs::create_dir_all(dir.join("amd64")).unwrap();
    fs::write(dir.join("amd64/hello"), b"#!/bin/sh\n").unwrap();
    let mut toml = format!(
        "name = \"t\"\ncreated = \"@1700000000\"\narchitectures = [\"amd64\"]\n\n[image]\ncmd = [\"/hello\"]\n{image}\n\n[[input]]\nsource = \"{{arch}}/hello\"\ndest = \"/hello\"\nmode = \"0755\"\n"
    );
    if library {
        toml.push_str(
            "\n[library]\nmaintainers = [\"A <a@example.invalid> (@a)\"]\ngit-repo = \"https://example.invalid/x.git\"\ntags = [\"latest\"]\n",
        );
    }
    fs::write(dir.join("ocipack.toml"), toml).unwrap();
}

/// `ocipack build DIR`.
fn build(dir: &std::path::Path) -> std::process::Output {
    common::ocipack().arg("build").arg(dir).output().unwrap()
}

#[test]
fn build_with_a_library_table_refuses_zstd_and_files_before_writing() {
    for (setting, line, wants) in [
        (
            "compression = \"zstd\"",
            7,
            &[
                "image.compression \"zstd\"",
                "accepts only tar and tar+gzip layers",
            ][..],
        ),
        (
            "names = \"files\"",
            7,
            &[
                "image.names \"files\"",
                "crane",
                "refuses the symlinked blobs",
            ][..],
        ),
    ] {
        let t = tempfile::tempdir().unwrap();
        project(t.path(), setting, true);
        let o = build(t.path());
        common::assert_exit(&o, 2);
        let e = String::from_utf8_lossy(&o.stderr);
        assert!(e.contains(&format!("ocipack.toml:{line}: ")), "{e}");
        for w in wants {
            assert!(e.contains(w), "{w:?} not in {e}");
        }
        assert!(!t.path().join("amd64/oci").exists(), "nothing written");
        let names: Vec<_> = fs::read_dir(t.path().join("amd64")).unwrap().collect();
        assert_eq!(names.len(), 1, "no staging left behind");

        // Without [library], the same settings build.
        let t = tempfile::tempdir().unwrap();
        project(t.path(), setting, false);
        let o = build(t.path());
        common::assert_exit(&o, 0);
    }
}

#[test]
fn build_with_a_library_table_and_a_ref_name_is_clean_under_the_profile() {
    let t = tempfile::tempdir().unwrap();
    project(t.path(), "ref-name = \"latest\"", true);
    let o = build(t.path());
    common::assert_exit(&o, 0);
    // The profile runs in the build; the names local tools use are no loss to the
    // pipeline, so it has nothing to warn about.
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(!e.contains("warning"), "{e}");
    let l = t.path().join("amd64/oci");
    let o = common::ocipack()
        .args(["verify", "--profile", "oci-import"])
        .arg(&l)
        .output()
        .unwrap();
    common::assert_exit(&o, 0);
}
