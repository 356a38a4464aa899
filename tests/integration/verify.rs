//! `ocipack verify`: good layouts pass, and a corpus of broken and hostile layouts, written
//! here one rule at a time, each fail with exit 1 and a message naming the problem, within
//! seconds (a watchdog kills a verify that blocks), without panicking.

use crate::common;
#[path = "../../fuzz/fuzz_targets/invariants.rs"]
mod invariants;
use crate::common::layouts;

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use common::oci::sha256;
use common::tar::{Header, set_checksum, tar_file, tar_of};
use common::{ocipack, repo};
use layouts::{CREATED, CREATED_UNIX, Layout, run_guarded, verify};

// ---------------------------------------------------------------- good layouts

#[test]
fn built_layouts_are_valid_for_every_compression_and_name_style() {
    for (extra, wants) in [
        (vec!["--compression", "gzip"], vec!["valid (linux/amd64)"]),
        (vec!["--compression", "zstd"], vec!["valid (linux/amd64)"]),
        (vec!["--compression", "none"], vec!["valid (linux/amd64)"]),
        (vec!["--names", "symlinks"], vec!["valid (linux/amd64)"]),
        (
            vec!["--names", "files"],
            vec![
                "warning: blobs/sha256/",
                "go-containerregistry ≥ 0.21.7 (crane) refuses symlinked blobs",
                "→ ../../rootfs.tar.gz",
                "valid (linux/amd64, 3 warnings)",
            ],
        ),
    ] {
        let l = Layout::build(&extra);
        l.verify(&[]).assert(0, &wants);
        l.verify(&["--arch", "amd64"])
            .assert(0, &["checked against linux/amd64 from --arch amd64"]);
    }
}

#[test]
fn descriptor_file_is_used_with_file_option() {
    let l = Layout::build(&["--descriptor-file", "image.json"]);
    l.verify(&["--file", "image.json"]).assert(0, &["valid"]);
    l.verify(&["--file", "missing.json"])
        .assert(1, &["error: missing.json: does not exist"]);
    // A name that leaves the layout is a usage error, not a finding about the layout.
    for outside in ["../../etc/passwd", "/etc/passwd"] {
        l.verify(&["--file", outside]).assert(
            2,
            &[&format!(
                "error: --file: \"{outside}\" must be a relative path without '..'"
            )],
        );
    }
    // A descriptor file pointing at a config blob instead of a manifest.
    let mut d = l.json("image.json");
    d["mediaType"] = json!("application/vnd.oci.image.config.v1+json");
    fs::write(l.path("image.json"), serde_json::to_vec(&d).unwrap()).unwrap();
    l.verify(&["--file", "image.json"])
        .assert(1, &["image.json: mediaType", "needs an image manifest"]);
}

#[test]
fn json_report_is_one_document() {
    let l = Layout::build(&[]);
    let mut c = l.index();
    c["manifests"][0]["platform"]["architecture"] = json!("arm64");
    l.set_index(&c);
    let out = l.verify(&["--json"]);
    assert_eq!(out.code, 1);
    let v: Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(v["valid"], json!(false));
    let p = &v["layouts"][0]["problems"][0];
    assert_eq!(p["severity"], json!("error"));
    assert_eq!(p["file"], json!("index.json"));
    assert_eq!(p["field"], json!("manifests[0].platform.architecture"));
    assert_eq!(v["layouts"][0]["platform"], json!("linux/amd64"));
}

#[test]
fn several_layouts_one_bad_gives_exit_1() {
    let good = Layout::build(&[]);
    let bad = Layout::build(&[]);
    fs::remove_file(bad.path("oci-layout")).unwrap();
    let mut c = ocipack();
    c.arg("verify").arg(&good.dir).arg(&bad.dir);
    let out = run_guarded(c);
    out.assert(
        1,
        &[
            "valid (linux/amd64)",
            "oci-layout: does not exist",
            "INVALID: 1 error",
        ],
    );
}

// ---------------------------------------------------------------- usage errors

#[test]
fn usage_errors_exit_2() {
    let t = tempfile::tempdir().unwrap();
    verify(&[], &t.path().join("nope")).assert(2, &["does not exist"]);
    let f = t.path().join("file");
    fs::write(&f, b"x").unwrap();
    verify(&[], &f).assert(2, &["is not a directory"]);
    verify(&["--arch", "x86"], t.path()).assert(2, &["not a bashbrew architecture"]);
    // A command-line error is one line, clap's tip included (not an escaped "\n").
    let o = ocipack()
        .args(["export", "--format", "oci-archiv", "a", "b"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("[possible values: oci-archive, docker-archive]; tip: a similar value")
            && !err.contains("\\n"),
        "{err}"
    );
}

// ---------------------------------------------------------------- layout files

#[test]
fn missing_or_wrong_oci_layout() {
    let l = Layout::build(&[]);
    fs::write(l.path("oci-layout"), br#"{"imageLayoutVersion":"2.0.0"}"#).unwrap();
    l.verify(&[])
        .assert(1, &["oci-layout: imageLayoutVersion", "\"2.0.0\""]);
    fs::remove_file(l.path("oci-layout")).unwrap();
    l.verify(&[]).assert(1, &["oci-layout: does not exist"]);
}

#[test]
fn index_unknown_field_and_schema_version() {
    let l = Layout::build(&[]);
    let mut i = l.index();
    i["foo"] = json!(1);
    l.set_index(&i);
    // The image spec: readers MUST ignore unknown properties. A warning naming it; under
    // the oci-import profile an error, as bashbrew's strict decoder refuses it.
    l.verify(&[]).assert(
        0,
        &[
            "valid (linux/amd64, 1 warning)",
            "warning: index.json: foo: a property ocipack does not know: ignored, as the \
             image spec requires of readers",
        ],
    );
    l.verify(&["--profile", "oci-import"]).assert(
        1,
        &["error: index.json: foo: [bashbrew]: a property bashbrew does not know"],
    );
    let mut i = l.index();
    i.as_object_mut().unwrap().remove("foo");
    i["schemaVersion"] = json!(3);
    l.set_index(&i);
    l.verify(&[]).assert(
        1,
        &["index.json: schemaVersion: schemaVersion 3; it must be 2"],
    );
}

#[test]
fn two_manifests_or_none() {
    let l = Layout::build(&[]);
    let mut i = l.index();
    let m = i["manifests"][0].clone();
    i["manifests"] = json!([m.clone(), m]);
    l.set_index(&i);
    l.verify(&[]).assert(
        1,
        &["index.json: manifests: lists 2 manifests; the oci-import builder needs exactly one"],
    );
    i["manifests"] = json!([]);
    l.set_index(&i);
    l.verify(&[])
        .assert(1, &["index.json: manifests: no manifest"]);
}

#[test]
fn bad_digests_and_sizes_are_named_by_path() {
    let l = Layout::build(&[]);
    let good = l.index();
    let d = l.manifest_digest();
    for (digest, want) in [
        (
            d.to_uppercase().replace("SHA256", "sha256"),
            "lowercase hexadecimal",
        ),
        (d.replace("sha256:", "md5:"), "unknown algorithm \"md5\""),
        (d[..40].to_string(), "hex digits, sha256 expects 64"),
        ("sha256:../../../etc/passwd".to_string(), "invalid digest"),
    ] {
        let mut i = good.clone();
        i["manifests"][0]["digest"] = json!(digest);
        l.set_index(&i);
        l.verify(&[])
            .assert(1, &["index.json: manifests[0]: invalid digest", want]);
    }
    let mut i = good.clone();
    i["manifests"][0]["size"] = json!(-5);
    l.set_index(&i);
    l.verify(&[])
        .assert(1, &["index.json: manifests[0].size: negative size -5"]);
}

#[test]
fn huge_size_claims_allocate_nothing() {
    let l = Layout::build(&[]);
    let mut m = l.manifest();
    m["layers"][0]["size"] = json!(1_000_000_000_000_000u64);
    l.set_manifest(&m);
    l.verify(&[])
        .assert(1, &["but blobs/sha256/", "declares size 1000000000000000"]);

    let l = Layout::build(&[]);
    let mut i = l.index();
    i["manifests"][0]["size"] = json!(1_000_000_000_000_000u64);
    l.set_index(&i);
    l.verify(&[]).assert(
        1,
        &["index.json: manifests[0].size: the manifest claims 1000000000000000 bytes, more than the 4194304"],
    );
}

#[test]
fn oversized_and_deeply_nested_json() {
    let l = Layout::build(&[]);
    let deep = "[".repeat(200_000) + &"]".repeat(200_000);
    fs::write(l.path("index.json"), &deep).unwrap();
    l.verify(&[])
        .assert(1, &["index.json: not valid JSON: recursion limit exceeded"]);

    let l = Layout::build(&[]);
    l.set_config_bytes(format!("{{\"a\":{}}}", "{\"a\":".repeat(200_000)).as_bytes());
    l.verify(&[])
        .assert(1, &["not valid JSON: recursion limit exceeded"]);

    let l = Layout::build(&[]);
    let mut big = l.index().to_string().into_bytes();
    big.extend(std::iter::repeat_n(b' ', 5 * 1024 * 1024));
    fs::write(l.path("index.json"), big).unwrap();
    l.verify(&[])
        .assert(1, &["index.json: ", "more than the 4194304 verify reads"]);
}

// ---------------------------------------------------------------- blob integrity

#[test]
fn tampered_bytes_same_size() {
    for what in ["layer", "config", "manifest"] {
        let l = Layout::build(&[]);
        let p = match what {
            "layer" => l.layer_path(),
            "config" => l.config_path(),
            _ => Layout::blob_path(&l.manifest_digest()),
        };
        let mut b = fs::read(l.path(&p)).unwrap();
        let mid = b.len() / 2;
        b[mid] ^= if what == "layer" { 0x01 } else { 0x20 };
        fs::write(l.path(&p), b).unwrap();
        l.verify(&[]).assert(
            1,
            &[
                &format!("{p}: the content hashes to sha256:"),
                "(tampered or corrupt)",
            ],
        );
    }
}

#[test]
fn missing_blob_and_truncated_blob() {
    let l = Layout::build(&[]);
    let p = l.config_path();
    fs::remove_file(l.path(&p)).unwrap();
    l.verify(&[]).assert(
        1,
        &[&format!("{p}: the config referenced by"), "is missing"],
    );

    let l = Layout::build(&[]);
    let p = l.layer_path();
    let b = fs::read(l.path(&p)).unwrap();
    fs::write(l.path(&p), &b[..b.len() - 10]).unwrap();
    l.verify(&[]).assert(1, &[&p, "declares size"]);
}

#[test]
fn wrong_diff_id_and_diff_id_count() {
    let l = Layout::build(&[]);
    let mut c = l.config();
    c["rootfs"]["diff_ids"][0] = json!(sha256(b"something else"));
    l.set_config(&c);
    l.verify(&[]).assert(
        1,
        &[
            "rootfs.diff_ids[0]",
            "but layer 0 (blobs/sha256/",
            "decompresses to sha256:",
        ],
    );

    let mut c = l.config();
    c["rootfs"]["diff_ids"] = json!([sha256(b"a"), sha256(b"b")]);
    l.set_config(&c);
    l.verify(&[])
        .assert(1, &["rootfs.diff_ids: 2 diff_ids for 1 layers"]);
}

#[test]
fn foreign_and_docker_layer_media_types() {
    // Docker's layer types, foreign or not, do not belong in an OCI manifest.
    for mt in [
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
        "application/vnd.docker.image.rootfs.diff.tar.gzip",
    ] {
        let l = Layout::build(&[]);
        let mut m = l.manifest();
        m["layers"][0]["mediaType"] = json!(mt);
        l.set_manifest(&m);
        l.verify(&[]).assert(
            1,
            &[
                "layers[0].mediaType",
                mt,
                "is not a layer type the oci-import builder accepts",
            ],
        );
    }
    // OCI's non-distributable type: a layer like any other where the layout holds it
    // (checked whole); bashbrew's oci-import builder refuses it.
    let nondistributable = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
    let l = Layout::build(&[]);
    let mut m = l.manifest();
    m["layers"][0]["mediaType"] = json!(nondistributable);
    m["layers"][0]["urls"] = json!(["https://user:secret@foreign.invalid/layer"]);
    l.set_manifest(&m);
    let o = l.verify(&[]);
    o.assert(0, &["valid (linux/amd64"]);
    assert!(!o.stdout.contains("warning"), "{}", o.stdout);
    l.verify(&["--profile", "oci-import"]).assert(
        1,
        &[
            "layers[0].mediaType: [bashbrew]:",
            "a foreign (non-distributable) layer",
        ],
    );
    // Where the layout does not hold it (as skopeo copy leaves one): valid, with a warning
    // naming the host of its urls (never the user and password), and the layer unchecked.
    fs::remove_file(l.path(&l.layer_path())).unwrap();
    let o = l.verify(&[]);
    o.assert(
        0,
        &[
            "valid (linux/amd64, 1 warning)",
            "layers[0]: a foreign layer",
            "whose content is at foreign.invalid (its urls): the layout does not hold it, so",
            "so its digest, diff_id and entries are not checked",
        ],
    );
    assert!(!o.stdout.contains("secret"), "{}", o.stdout);
    // Anywhere else, urls are an error: every blob must be in the layout.
    let l = Layout::build(&[]);
    let mut m = l.manifest();
    m["layers"][0]["urls"] = json!(["https://example.invalid/layer"]);
    l.set_manifest(&m);
    l.verify(&[])
        .assert(1, &["layers[0].urls: external blob locations"]);
}

#[test]
fn wrong_config_and_manifest_media_types() {
    let l = Layout::build(&[]);
    let mut m = l.manifest();
    m["config"]["mediaType"] = json!("application/vnd.docker.container.image.v1+json");
    l.set_manifest(&m);
    l.verify(&[])
        .assert(1, &["config.mediaType", "an image config is"]);

    // An entry that claims an image index is read as one (a multi-platform layout): an
    // image manifest behind it does not decode as an index.
    let l = Layout::build(&[]);
    let mut i = l.index();
    i["manifests"][0]["mediaType"] = json!("application/vnd.oci.image.index.v1+json");
    l.set_index(&i);
    l.verify(&[])
        .assert(1, &[&l.manifest_digest()[7..], "missing field `manifests`"]);
}

#[test]
fn unknown_fields_in_manifest_and_config() {
    let l = Layout::build(&[]);
    let mut c = l.config();
    c["config"]["Healthcheck"] = json!({});
    c["docker_version"] = json!("20.10.7");
    l.set_config(&c);
    let o = l.verify(&[]);
    o.assert(
        0,
        &[
            "valid (linux/amd64, 2 warnings)",
            ": config.Healthcheck: a property ocipack does not know",
            ": docker_version: a property ocipack does not know",
        ],
    );
    // Under the oci-import profile each is bashbrew's error, and not also a warning.
    let o = l.verify(&["--profile", "oci-import"]);
    o.assert(
        1,
        &[
            ": config.Healthcheck: [bashbrew]: a property bashbrew does not know",
            ": docker_version: [bashbrew]: a property bashbrew does not know",
        ],
    );
    assert!(!o.stdout.contains("ocipack does not know"), "{}", o.stdout);

    let l = Layout::build(&[]);
    let mut m = l.manifest();
    m["layers"][0]["extra"] = json!(true);
    l.set_manifest(&m);
    l.verify(&[])
        .assert(0, &[": layers[0].extra: a property ocipack does not know"]);
    l.verify(&["--profile", "oci-import"])
        .assert(1, &[": layers[0].extra: [bashbrew]: a property bashbrew"]);
    // A wrong type next to an unknown property is still an error, named where it is.
    let mut m = l.manifest();
    m["layers"][0]["size"] = json!("big");
    l.set_manifest(&m);
    l.verify(&[]).assert(
        1,
        &[": layers[0]: invalid type: string \"big\", expected i64"],
    );
}

#[test]
fn unknown_properties_bashbrew_does_not_read_stay_warnings_under_oci_import() {
    // With a descriptor file (bashbrew's File:), bashbrew reads that file, not index.json:
    // a property index.json has and ocipack does not know stays a warning.
    let l = Layout::build(&[]);
    let entry = l.index()["manifests"][0].clone();
    fs::write(l.path("desc.json"), serde_json::to_vec(&entry).unwrap()).unwrap();
    let mut i = l.index();
    i["x-tool"] = json!("made by another tool");
    l.set_index(&i);
    let o = l.verify(&["--profile", "oci-import", "--file", "desc.json"]);
    o.assert(
        0,
        &["warning: index.json: [\"x-tool\"]: a property ocipack does not know"],
    );
    assert!(!o.stdout.contains("[bashbrew]: a property"), "{}", o.stdout);
}

// ---------------------------------------------------------------- layer streams

#[test]
fn truncated_and_corrupt_streams() {
    for (compression, want) in [
        ("gzip", "cannot be decompressed or read after"),
        ("zstd", "cannot be decompressed or read after"),
        ("none", "truncated: the stream ends inside"),
    ] {
        let l = Layout::build(&["--compression", compression]);
        let p = l.layer_path();
        let b = fs::read(l.path(&p)).unwrap();
        let mt = l.manifest()["layers"][0]["mediaType"]
            .as_str()
            .unwrap()
            .to_string();
        let cut = b[..b.len() / 2].to_vec();
        let (d, n) = l.write_blob(&cut);
        fs::remove_file(l.path(&p)).unwrap();
        let mut m = l.manifest();
        m["layers"][0] = json!({"mediaType": mt, "digest": d, "size": n});
        l.set_manifest(&m);
        l.verify(&[]).assert(1, &[want]);
    }
}

#[test]
fn media_type_that_lies_about_compression() {
    let l = Layout::build(&["--compression", "zstd"]);
    let mut m = l.manifest();
    m["layers"][0]["mediaType"] = json!("application/vnd.oci.image.layer.v1.tar+gzip");
    l.set_manifest(&m);
    l.verify(&[]).assert(1, &["the bytes are zstd but the media type application/vnd.oci.image.layer.v1.tar+gzip says gzip"]);
}

#[test]
fn unsafe_tar_entries() {
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "absolute",
            tar_of(&[tar_file(b"/etc/passwd", b"x")]),
            "the entry name is absolute",
        ),
        (
            "dotdot",
            tar_of(&[tar_file(b"a/../../etc/x", b"x")]),
            "the entry name contains a '..' component",
        ),
        (
            "duplicate",
            tar_of(&[
                tar_file(b"a", b"1"),
                tar_file(b"b", b"2"),
                tar_file(b"./a", b"3"),
            ]),
            "the same path appears again",
        ),
        (
            "hardlink to later",
            tar_of(&[
                Header::new(b"a", b'1').link(b"b").block(),
                tar_file(b"b", b"x"),
            ]),
            "hard link to \"b\", which is not an earlier entry",
        ),
        (
            "hardlink outside",
            tar_of(&[Header::new(b"a", b'1').link(b"../etc/shadow").block()]),
            "hard link target \"../etc/shadow\" contains a '..' component",
        ),
        (
            "directory with data",
            tar_of(&[Header::new(b"d/", b'5').size(512).block(), vec![0x41; 512]]),
            "readers disagree on whether data follows",
        ),
        (
            "sparse",
            tar_of(&[Header::new(b"s", b'S').block()]),
            "entry type 'S' is not one of the types an OCI layer may contain",
        ),
        (
            "hidden data after the end marker",
            {
                let mut t = tar_of(&[tar_file(b"a", b"x")]);
                t.extend(tar_of(&[tar_file(b"hidden", b"evil")]));
                t
            },
            "data after the end-of-archive marker",
        ),
        (
            "not a tar",
            vec![0x42; 4096],
            "tar header checksum mismatch",
        ),
    ];
    for (name, tar, want) in cases {
        let l = Layout::build(&[]);
        l.set_tar_layer(&tar);
        let out = l.verify(&[]);
        assert_eq!(out.code, 1, "{name}: {}", out.stdout);
        assert!(
            out.stdout.contains(want),
            "{name}: {want:?} not in\n{}",
            out.stdout
        );
    }
}

#[test]
fn reproducibility_smells_are_warnings() {
    let mut owned = Header::new(b"b", b'0').uid(1000).block();
    // A user name.
    owned[265..270].copy_from_slice(b"alice");
    set_checksum(&mut owned);
    let tar = tar_of(&[
        tar_file(b"c", b""),
        owned,
        Header::new(b"d", b'0').mtime(CREATED_UNIX + 3600).block(),
    ]);
    let l = Layout::build(&[]);
    l.set_tar_layer(&tar);
    let out = l.verify(&[]);
    out.assert(
        0,
        &[
            "warning: ",
            "tar entry \"b\": user/group names \"alice\":\"\"",
            "tar entry \"b\": comes after \"c\"",
            "tar entry \"d\": mtime 1737505952 is after the image's created (1737502352)",
            "valid (linux/amd64, 3 warnings)",
        ],
    );
    // A numeric owner is the image's, not a smell: a root filesystem holds them on purpose.
    assert!(!out.stdout.contains("1000"), "{}", out.stdout);
}

// ---------------------------------------------------------------- platform

#[test]
fn platform_mismatches() {
    let l = Layout::build(&[]);
    let mut c = l.config();
    c["architecture"] = json!("arm64");
    c["variant"] = json!("v8");
    l.set_config(&c);
    l.verify(&[]).assert(
        1,
        &[
            "index.json: manifests[0].platform.architecture: \"amd64\" here, but the config",
            "says \"arm64\"",
            "manifests[0].platform.variant: (absent) here",
        ],
    );
    l.verify(&["--arch", "amd64"]).assert(
        1,
        &["the image is linux/arm64/v8, but --arch amd64 means linux/amd64"],
    );

    let l = Layout::build(&[]);
    l.verify(&["--arch", "arm64v8"]).assert(
        1,
        &[
            "architecture: the image is linux/amd64, but --arch arm64v8 means linux/arm64/v8",
            "index.json: manifests[0].platform: linux/amd64, but --arch arm64v8 means linux/arm64/v8",
        ],
    );
}

#[test]
fn arch_is_taken_from_the_layout_path() {
    let l = Layout::build_in("hello-world/arm64v8", &[]);
    l.verify(&[]).assert(
        1,
        &["the image is linux/amd64, but the path component \"arm64v8\" means linux/arm64/v8"],
    );
    // --arch wins over the path.
    l.verify(&["--arch", "amd64"]).assert(0, &["valid"]);
    let l = Layout::build_in("hello-world/amd64", &[]);
    l.verify(&[]).assert(
        0,
        &["checked against linux/amd64 from the path component \"amd64\""],
    );
}

// ---------------------------------------------------------------- filesystem safety

/// Replaces the layer blob with `make(path)`, keeping everything else as built.
fn replace_layer(l: &Layout, make: impl FnOnce(&Path)) -> String {
    let p = l.layer_path();
    fs::remove_file(l.path(&p)).unwrap();
    make(&l.path(&p));
    p
}

#[test]
fn symlink_escapes_are_refused_even_to_the_right_bytes() {
    // The link points at a copy of the real blob outside the layout: following it would
    // pass, so only refusing to leave the layout gives the error.
    let l = Layout::build(&[]);
    let p = l.layer_path();
    let outside = l.t.path().join("outside-copy");
    fs::copy(l.path(&p), &outside).unwrap();
    replace_layer(&l, |at| symlink("../../../../outside-copy", at).unwrap());
    l.verify(&[]).assert(
        1,
        &[
            &p,
            "climbs out of the directory; ocipack never leaves the directory it was given",
        ],
    );

    let l = Layout::build(&[]);
    let p = l.layer_path();
    let outside = l.t.path().join("outside-copy");
    fs::copy(l.path(&p), &outside).unwrap();
    replace_layer(&l, |at| symlink(&outside, at).unwrap());
    l.verify(&[]).assert(1, &[&p, "has the absolute target"]);

    // blobs/ itself a symlink out of the layout.
    let l = Layout::build(&[]);
    let moved = l.t.path().join("blobs-elsewhere");
    fs::rename(l.path("blobs"), &moved).unwrap();
    symlink(&moved, l.path("blobs")).unwrap();
    l.verify(&[])
        .assert(1, &["symlink blobs has the absolute target"]);
}

#[test]
fn symlink_loops_fail_fast() {
    let l = Layout::build(&[]);
    let p = replace_layer(&l, |at| {
        let name = at.file_name().unwrap().to_str().unwrap().to_string();
        symlink(format!("{name}.b"), at).unwrap();
        symlink(&name, at.with_file_name(format!("{name}.b"))).unwrap();
    });
    l.verify(&[]).assert(1, &[&p, "symlink loop"]);

    let l = Layout::build(&[]);
    let p = replace_layer(&l, |at| symlink(".", at).unwrap());
    l.verify(&[])
        .assert(1, &[&p, "is a directory, not a regular file"]);
}

#[test]
fn symlinks_inside_the_layout_are_followed_with_a_note() {
    let l = Layout::build(&[]);
    let p = l.layer_path();
    fs::rename(l.path(&p), l.path("layer.bin")).unwrap();
    symlink("../../layer.bin", l.path(&p)).unwrap();
    l.verify(&[]).assert(
        0,
        &[
            "the blob is a symlink (→ ../../layer.bin)",
            "crane",
            "valid",
        ],
    );
}

#[test]
fn fifo_device_and_directory_blobs_never_block() {
    let l = Layout::build(&[]);
    let p = replace_layer(&l, |at| {
        let st = Command::new("mkfifo").arg(at).status().unwrap();
        assert!(st.success());
    });
    l.verify(&[])
        .assert(1, &[&p, "is a FIFO, not a regular file"]);

    let l = Layout::build(&[]);
    let p = replace_layer(&l, |at| fs::create_dir(at).unwrap());
    l.verify(&[])
        .assert(1, &[&p, "is a directory, not a regular file"]);

    // A FIFO as index.json, and a FIFO reached through a symlink.
    let l = Layout::build(&[]);
    fs::remove_file(l.path("index.json")).unwrap();
    assert!(
        Command::new("mkfifo")
            .arg(l.path("index.json"))
            .status()
            .unwrap()
            .success()
    );
    l.verify(&[]).assert(1, &["index.json: is a FIFO"]);

    // A character device (needs root to create; CI runs as root).
    let l = Layout::build(&[]);
    let p = l.layer_path();
    fs::remove_file(l.path(&p)).unwrap();
    let made = Command::new("mknod")
        .arg(l.path(&p))
        .args(["c", "1", "3"])
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success();
    if made {
        l.verify(&[])
            .assert(1, &[&p, "is a character device, not a regular file"]);
    } else {
        common::skip("mknod is not allowed here (the device case needs root)");
    }
}

#[test]
fn unreferenced_blob_files_are_reported() {
    let l = Layout::build(&[]);
    fs::write(l.path("blobs/sha256/stray"), b"x").unwrap();
    fs::create_dir(l.path("blobs/sha512")).unwrap();
    symlink("../../index.json", l.path("blobs/sha512/link")).unwrap();
    // Names that are not UTF-8 are shown escaped, each as it is: two that differ only in an
    // invalid byte never print alike.
    use std::os::unix::ffi::OsStrExt;
    let raw = |b: &[u8]| l.path("blobs/sha256").join(std::ffi::OsStr::from_bytes(b));
    fs::write(raw(b"a\xff"), b"x").unwrap();
    fs::write(raw(b"a\xfe"), b"x").unwrap();
    let odd = l.path("blobs").join(std::ffi::OsStr::from_bytes(b"\xc0\n"));
    fs::create_dir(&odd).unwrap();
    fs::write(odd.join("x"), b"x").unwrap();
    l.verify(&[]).assert(
        0,
        &[
            "warning: blobs/sha256/stray: unreferenced file",
            "warning: blobs/sha512/link: unreferenced symlink to \"../../index.json\"",
            "warning: blobs/sha256/a\\xff: unreferenced file",
            "warning: blobs/sha256/a\\xfe: unreferenced file",
            "warning: blobs/\\xc0\\n/x: unreferenced file",
        ],
    );
}

// ---------------------------------------------------------------- builds and their output

/// The builder checks its documents in memory with verify's rules; what it writes passes
/// `verify` from disk, and the same layout with one flipped byte does not.
#[test]
fn a_built_layout_verifies_from_disk_and_a_flipped_byte_is_found() {
    use ocipack::image::build::{ImageSpec, Input, InputSource, build_image};
    let t = tempfile::tempdir().unwrap();
    let spec = ImageSpec {
        inputs: vec![Input {
            source: InputSource::Bytes {
                dest: "/hello".into(),
                bytes: b"hello".to_vec(),
                mode: 0o755,
            },
            origin: "a test".into(),
        }],
        tree: ocipack::input::TreeOptions {
            created: CREATED.parse().unwrap(),
            mtime: ocipack::input::MtimeMode::Clamp,
            owners: Default::default(),
            xattrs: false,
            devices: false,
        },
        platform: "linux/amd64".parse().unwrap(),
        config: Default::default(),
        created_by: None,
        encode: ocipack::layer::EncodeOptions {
            compression: ocipack::media::Compression::Gzip,
            level: None,
            jobs: 1,
        },
        ref_name: None,
        annotations: Default::default(),
        names: ocipack::image::write::NameStyle::None,
        descriptor_file: None,
        profile: Default::default(),
    };
    let staged = t.path().join("oci");
    let built = build_image(&spec, &staged, None).unwrap();
    let opts = ocipack::verify::Options::default();
    let source = ocipack::verify::Source::Layout(staged.clone());
    let report = ocipack::verify::open(&source, &opts).unwrap().into_report();
    assert!(report.is_ok(), "{:?}", report.problems);
    let blob = staged.join(built.layer.digest.blob_path());
    let mut b = fs::read(&blob).unwrap();
    b[20] ^= 1;
    fs::write(&blob, b).unwrap();
    let report = ocipack::verify::open(&source, &opts).unwrap().into_report();
    assert!(!report.is_ok());
    let text: Vec<String> = report.problems.iter().map(|p| p.to_string()).collect();
    assert!(
        text.iter().any(|p| p.contains("tampered or corrupt")),
        "{text:?}"
    );
}

// ---------------------------------------------------------------- fuzz seeds and regressions

/// The fuzz targets' invariants over every committed seed and regression input
/// (fuzz/seeds/*; fuzz/Cargo.toml says how to run the fuzzer to find more).
#[test]
fn fuzz_seeds_and_regressions_hold_the_invariants() {
    use ocipack::image::rules::docs::{Document, check_document};
    let seeds = repo().join("fuzz/seeds");
    type Check = fn(&[u8]);
    let targets: [(&str, Check); 2] = [("json", invariants::json), ("layer", invariants::layer)];
    for (target, check) in targets {
        let mut n = 0;
        for e in fs::read_dir(seeds.join(target)).unwrap() {
            let bytes = fs::read(e.unwrap().path()).unwrap();
            check(&bytes);
            n += 1;
        }
        assert!(n >= 3, "{target}: only {n} seeds");
    }
    // The seeds themselves are valid documents and layers, so the round trips and the
    // entry invariants above really ran on accepted input.
    for (kind, file) in [
        (Document::OciLayout, "oci-layout.json"),
        (Document::Index, "index.json"),
        (Document::Descriptor, "descriptor.json"),
        (Document::Manifest, "manifest.json"),
        (Document::Config, "config.json"),
    ] {
        let bytes = fs::read(seeds.join("json").join(file)).unwrap();
        assert_eq!(check_document(kind, &bytes), [], "{file}");
    }
    for c in ["none", "gzip", "zstd"] {
        let bytes = fs::read(seeds.join("layer").join(format!("layer-{c}"))).unwrap();
        let scans = ocipack::verify::scan_layer_bytes(&bytes);
        assert!(scans.iter().any(|s| s.is_ok() && s.count == 5), "layer-{c}");
    }
}

// ---------------------------------------------------------------- review fixes

/// A blob listed twice, the second time with another size, is compared with each size:
/// what was learnt from the first descriptor (cached by digest) never vouches for the
/// second. A manifest listing layer L twice, the second with size + 7, and an index.json
/// entry whose size differs from the `--file` descriptor's, are errors.
#[test]
fn every_descriptor_size_is_checked_even_for_a_blob_read_before() {
    let l = Layout::build(&[]);
    let mut c = l.config();
    let diff_id = c["rootfs"]["diff_ids"][0].clone();
    c["rootfs"]["diff_ids"] = json!([diff_id, diff_id]);
    l.set_config(&c);
    let mut m = l.manifest();
    let layer = m["layers"][0].clone();
    let size = layer["size"].as_u64().unwrap();
    let mut bigger = layer.clone();
    bigger["size"] = json!(size + 7);
    m["layers"] = json!([layer, bigger]);
    l.set_manifest(&m);
    let want = format!(
        "{size} bytes, but {} layers[1] declares size {}",
        Layout::blob_path(&l.manifest_digest()),
        size + 7
    );
    l.verify(&[]).assert(1, &[&want]);

    let l = Layout::build(&["--descriptor-file", "image.json"]);
    l.verify(&["--file", "image.json"]).assert(0, &["valid"]);
    let mut i = l.index();
    let size = i["manifests"][0]["size"].as_u64().unwrap();
    i["manifests"][0]["size"] = json!(size + 7);
    l.set_index(&i);
    let want = format!(
        "{size} bytes, but index.json manifests[0] declares size {}",
        size + 7
    );
    l.verify(&["--file", "image.json"]).assert(1, &[&want]);
}

/// `--file index.json` means the index itself, as bashbrew reads `File: index.json`, under
/// the plain profile as under `--profile oci-import` (the stricter profile never accepts
/// what the plain one refuses); `./index.json` is a descriptor file, refused by both.
#[test]
fn file_index_json_is_the_index_under_every_profile() {
    let l = Layout::build(&[]);
    for profile in ["oci", "oci-import"] {
        let plain = l.verify(&["--profile", profile]);
        let file = l.verify(&["--profile", profile, "--file", "index.json"]);
        assert_eq!(
            (plain.code, &plain.stdout),
            (file.code, &file.stdout),
            "--profile {profile}: {}{}",
            file.stdout,
            file.stderr
        );
    }
    l.verify(&["--file", "index.json"]).assert(0, &["valid"]);
    l.verify(&["--file", "./index.json"])
        .assert(1, &["index.json"]);
    l.verify(&["--profile", "oci-import", "--file", "./index.json"])
        .assert(1, &["index.json"]);
}
