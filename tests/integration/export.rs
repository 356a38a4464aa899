//! `ocipack export`: the archives' contents, their reproducibility, and refusals.
//! (Readers from other projects — skopeo, podman — are exercised in [`crate::interop`].)

use crate::common;

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Output};

use common::oci::sha256;
use common::{assert_exit, build_hello, ocipack};

fn export(layout: &Path, format: &str, out: &Path, extra: &[&str]) -> Output {
    ocipack()
        .arg("export")
        .arg(layout)
        .args(["--format", format, "-o"])
        .arg(out)
        .args(extra)
        .output()
        .unwrap()
}

/// One archive member as the `tar` crate reads it.
#[derive(Debug, PartialEq, Eq)]
struct Member {
    kind: tar::EntryType,
    mode: u32,
    owner: (u64, u64),
    mtime: u64,
    data: Vec<u8>,
}

/// The members of an archive, in archive order.
fn members(archive: &[u8]) -> Vec<(String, Member)> {
    let mut a = tar::Archive::new(archive);
    a.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let h = e.header().clone();
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            (
                e.path().unwrap().to_string_lossy().into_owned(),
                Member {
                    kind: h.entry_type(),
                    mode: h.mode().unwrap(),
                    owner: (h.uid().unwrap(), h.gid().unwrap()),
                    mtime: h.mtime().unwrap(),
                    data,
                },
            )
        })
        .collect()
}

fn json(bytes: &[u8]) -> serde_json::Value {
    serde_json::from_slice(bytes).unwrap()
}

#[test]
fn oci_archive_holds_exactly_the_image_and_is_reproducible() {
    let t = tempfile::tempdir().unwrap();
    let mut archives = Vec::new();
    let mut digest = String::new();
    for names in ["symlinks", "files", "none"] {
        let layout = t.path().join(names);
        digest = build_hello(&layout, &["--names", names, "--ref-name", "latest"]);
        let out = t.path().join(format!("{names}.tar"));
        let o = export(&layout, "oci-archive", &out, &[]);
        assert_exit(&o, 0);
        archives.push(fs::read(&out).unwrap());
    }
    // Readable names (symlinks or files) are not part of the archive.
    assert!(archives.iter().all(|a| *a == archives[0]));

    let layout = t.path().join("symlinks");
    let list = members(&archives[0]);
    let names: Vec<&str> = list.iter().map(|(n, _)| n.as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "entries sorted by name");
    assert_eq!(names.len(), 7, "{names:?}");
    assert_eq!(&names[..2], ["blobs/", "blobs/sha256/"]);
    assert_eq!(&names[5..], ["index.json", "oci-layout"]);
    for (name, m) in &list {
        assert_eq!(m.owner, (0, 0), "{name}");
        assert_eq!(m.mtime, 1_700_000_000, "{name}: the image's created time");
        if name.ends_with('/') {
            assert_eq!((m.kind, m.mode), (tar::EntryType::Directory, 0o755));
        } else {
            assert_eq!((m.kind, m.mode), (tar::EntryType::Regular, 0o644), "{name}");
            // Byte for byte what the layout holds (blobs through their digest path).
            assert_eq!(m.data, fs::read(layout.join(name)).unwrap(), "{name}");
        }
        if let Some(hex) = name.strip_prefix("blobs/sha256/").filter(|h| !h.is_empty()) {
            assert_eq!(sha256(&m.data), format!("sha256:{hex}"));
        }
    }
    assert!(names.contains(&format!("blobs/sha256/{}", &digest[7..]).as_str()));

    // `-o -` writes the same bytes to stdout; GNU tar reads the archive.
    let o = ocipack()
        .arg("export")
        .arg(&layout)
        .args(["--format", "oci-archive", "-o", "-"])
        .output()
        .unwrap();
    assert_exit(&o, 0);
    assert!(o.stdout == archives[0]);
    let o = Command::new("tar")
        .arg("-tvf")
        .arg(t.path().join("symlinks.tar"))
        .output()
        .unwrap();
    assert!(o.status.success());
    assert!(!String::from_utf8_lossy(&o.stdout).contains("->"));
}

#[test]
fn docker_archive_has_config_uncompressed_layers_and_manifest() {
    let t = tempfile::tempdir().unwrap();
    let layout = t.path().join("hello");
    build_hello(
        &layout,
        &["--ref-name", "docker.io/library/hello-world:linux"],
    );
    let out = t.path().join("d.tar");
    let o = export(&layout, "docker-archive", &out, &["--json"]);
    assert_exit(&o, 0);
    let bytes = fs::read(&out).unwrap();
    let report = json(&o.stdout);
    assert_eq!(report["format"], "docker-archive");
    assert_eq!(report["digest"], sha256(&bytes));
    assert_eq!(report["size"], bytes.len());

    let list: BTreeMap<String, Member> = members(&bytes).into_iter().collect();
    let manifest = json(&fs::read(layout.join("image-manifest.json")).unwrap());
    let config_bytes = fs::read(layout.join("image-config.json")).unwrap();
    let config = json(&config_bytes);
    let config_hex = &manifest["config"]["digest"].as_str().unwrap()[7..];
    let diff_id = config["rootfs"]["diff_ids"][0].as_str().unwrap();

    let mj = json(&list["manifest.json"].data);
    assert_eq!(
        mj,
        serde_json::json!([{
            "Config": format!("{config_hex}.json"),
            "RepoTags": ["docker.io/library/hello-world:linux"],
            "Layers": [format!("{}.tar", &diff_id[7..])],
        }])
    );
    assert_eq!(list.len(), 3);
    assert_eq!(list[&format!("{config_hex}.json")].data, config_bytes);
    // The layer is the uncompressed tar whose sha256 is the diff_id.
    let layer = &list[&format!("{}.tar", &diff_id[7..])].data;
    assert_eq!(sha256(layer), diff_id);
    let mut gunzipped = Vec::new();
    ocipack::input::decompress::decompressing_reader(
        &fs::read(layout.join("rootfs.tar.gz")).unwrap()[..],
    )
    .unwrap()
    .read_to_end(&mut gunzipped)
    .unwrap();
    assert!(*layer == gunzipped);
    let inner = members(layer);
    assert_eq!(inner.len(), 1);
    assert_eq!(inner[0].0, "hello");
}

fn repo_tags(layout: &Path, extra: &[&str]) -> serde_json::Value {
    let out = layout.with_extension("tar");
    let o = export(layout, "docker-archive", &out, extra);
    assert_exit(&o, 0);
    let list: BTreeMap<String, Member> = members(&fs::read(&out).unwrap()).into_iter().collect();
    json(&list["manifest.json"].data)[0]["RepoTags"].clone()
}

#[test]
fn docker_archive_repo_tags() {
    let t = tempfile::tempdir().unwrap();
    let plain = t.path().join("plain");
    build_hello(&plain, &[]);
    // No name anywhere: the image loads untagged.
    assert_eq!(repo_tags(&plain, &[]), serde_json::json!([]));
    // --tag, normalised to full names, duplicates dropped.
    assert_eq!(
        repo_tags(
            &plain,
            &[
                "--tag",
                "hello:1",
                "--tag",
                "localhost:5000/x",
                "--tag",
                "docker.io/library/hello:1"
            ]
        ),
        serde_json::json!(["docker.io/library/hello:1", "localhost:5000/x:latest"])
    );
    // A bare ref name is an OCI tag, not an image name.
    let bare = t.path().join("bare");
    build_hello(&bare, &["--ref-name", "latest"]);
    assert_eq!(repo_tags(&bare, &[]), serde_json::json!([]));
    let named = t.path().join("named");
    build_hello(&named, &["--ref-name", "example.org/team/hello:2"]);
    assert_eq!(
        repo_tags(&named, &[]),
        serde_json::json!(["example.org/team/hello:2"])
    );
    assert_eq!(
        repo_tags(&named, &["--tag", "other:3"]),
        serde_json::json!(["docker.io/library/other:3"])
    );
}

#[test]
fn docker_archive_is_the_same_for_every_layer_compression() {
    let t = tempfile::tempdir().unwrap();
    let mut archives = Vec::new();
    for c in ["none", "gzip", "zstd"] {
        let layout = t.path().join(c);
        build_hello(&layout, &["--compression", c]);
        let out = t.path().join(format!("{c}.tar"));
        assert_exit(&export(&layout, "docker-archive", &out, &[]), 0);
        archives.push(fs::read(&out).unwrap());
        // And twice in a row: the same bytes.
        assert_exit(&export(&layout, "docker-archive", &out, &[]), 0);
        assert!(fs::read(&out).unwrap() == *archives.last().unwrap());
    }
    assert!(archives[0] == archives[1] && archives[1] == archives[2]);
}

#[test]
fn corrupt_layouts_and_bad_arguments_are_refused() {
    let t = tempfile::tempdir().unwrap();
    let layout = t.path().join("hello");
    build_hello(&layout, &["--compression", "none"]);
    let out_dir = t.path().join("out");
    fs::create_dir(&out_dir).unwrap();

    assert_exit(
        &export(
            &layout,
            "oci-archive",
            &out_dir.join("x.tar"),
            &["--tag", "a:b"],
        ),
        2,
    );
    assert_exit(&export(&layout, "tarball", &out_dir.join("x.tar"), &[]), 2);
    assert_exit(
        &export(
            &layout,
            "docker-archive",
            &out_dir.join("x.tar"),
            &["--tag", "Bad"],
        ),
        2,
    );

    // One flipped byte in the layer: both formats fail, naming the blob, leaving no file.
    let layer = fs::canonicalize(layout.join("rootfs.tar")).unwrap();
    let mut bytes = fs::read(&layer).unwrap();
    bytes[600] ^= 0x20;
    fs::write(&layer, &bytes).unwrap();
    for format in ["oci-archive", "docker-archive"] {
        let o = export(&layout, format, &out_dir.join("x.tar"), &[]);
        assert_exit(&o, 2);
        let e = String::from_utf8_lossy(&o.stderr);
        assert!(
            e.contains(layer.file_name().unwrap().to_str().unwrap()),
            "{e}"
        );
        assert_eq!(
            fs::read_dir(&out_dir).unwrap().count(),
            0,
            "{format}: output left behind"
        );
    }
    // A blob that is missing.
    fs::remove_file(&layer).unwrap();
    let o = export(&layout, "oci-archive", &out_dir.join("x.tar"), &[]);
    assert_exit(&o, 2);
    assert_eq!(fs::read_dir(&out_dir).unwrap().count(), 0);
}
