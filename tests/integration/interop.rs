//! ocipack's output read by other projects' tools, really started: umoci unpacks layouts
//! back into the input tree; skopeo reads layouts and oci-archives; podman runs the amd64
//! hello-world image from a layout and from `podman load` of both archive formats.
//! (Registry round trips with skopeo are in [`crate::push`].)

use crate::common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::Path;
use std::process::Command;

use common::{LowercaseDir, Podman, assert_exit, build_hello, index_digest, ocipack, ok};

/// A tree with the entry kinds a FROM-scratch image has: nested directories of several
/// modes, files of several modes (one empty, one large, one with a long path), a hard link
/// and relative and absolute symlinks.
fn make_tree(root: &Path) {
    let file = |rel: &str, content: &[u8], mode: u32| {
        let p = root.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, content).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
    };
    file("bin/tool", b"#!/bin/sh\necho tool\n", 0o755);
    file("etc/config", b"key=value\n", 0o644);
    file("etc/secret", b"only root\n", 0o600);
    file("etc/empty", b"", 0o644);
    let big: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    file("usr/share/data.bin", &big, 0o444);
    let long = format!("deep/{}/{}", "d".repeat(80), "f".repeat(90));
    file(&long, b"long path\n", 0o644);
    fs::hard_link(root.join("etc/config"), root.join("etc/config.hard")).unwrap();
    symlink("../bin/tool", root.join("etc/tool-link")).unwrap();
    symlink("/etc/config", root.join("config-abs")).unwrap();
    fs::create_dir_all(root.join("var/empty")).unwrap();
    fs::create_dir_all(root.join("private")).unwrap();
    for (d, m) in [
        ("bin", 0o755),
        ("etc", 0o755),
        ("usr", 0o755),
        ("usr/share", 0o755),
        ("deep", 0o755),
        ("var", 0o755),
        ("var/empty", 0o555),
        ("private", 0o700),
    ] {
        fs::set_permissions(root.join(d), fs::Permissions::from_mode(m)).unwrap();
    }
    let long_dir = root.join("deep").join("d".repeat(80));
    fs::set_permissions(long_dir, fs::Permissions::from_mode(0o755)).unwrap();
}

/// Every entry below `root`: relative path → (kind, permission bits, content or link target).
fn tree(root: &Path) -> BTreeMap<String, (char, u32, Vec<u8>)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            let m = fs::symlink_metadata(&p).unwrap();
            let perm = m.mode() & 0o7777;
            let entry = if m.file_type().is_symlink() {
                let t = fs::read_link(&p).unwrap();
                ('l', 0, t.to_string_lossy().into_owned().into_bytes())
            } else if m.is_dir() {
                stack.push(p.clone());
                ('d', perm, Vec::new())
            } else {
                ('f', perm, fs::read(&p).unwrap())
            };
            out.insert(rel, entry);
        }
    }
    out
}

#[test]
fn umoci_unpack_reproduces_the_input_tree() {
    if !common::require_tool("umoci") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let input = t.path().join("input");
    make_tree(&input);
    let want = tree(&input);
    for compression in ["gzip", "none"] {
        let layout = t.path().join(format!("layout-{compression}"));
        let o = ocipack()
            .args(["image", "--rootfs"])
            .arg(&input)
            .args([
                "--arch",
                "amd64",
                "--created",
                "@1700000000",
                "--mtime",
                "fixed",
            ])
            .args(["--compression", compression, "--ref-name", "latest", "-o"])
            .arg(&layout)
            .output()
            .unwrap();
        assert_exit(&o, 0);
        let bundle = t.path().join(format!("bundle-{compression}"));
        ok(Command::new("umoci")
            .args(["unpack", "--rootless", "--image"])
            .arg(format!("{}:latest", layout.display()))
            .arg(&bundle));
        let rootfs = bundle.join("rootfs");
        let got = tree(&rootfs);
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            want.keys().collect::<Vec<_>>(),
            "{compression}: entry names"
        );
        for (path, w) in &want {
            assert_eq!(&got[path], w, "{compression}: {path}");
        }
        // Hard links stay hard links; mtimes are the image's created time.
        let a = fs::metadata(rootfs.join("etc/config")).unwrap();
        let b = fs::metadata(rootfs.join("etc/config.hard")).unwrap();
        assert_eq!(a.ino(), b.ino(), "{compression}: hard link");
        assert_eq!(a.mtime(), 1_700_000_000);
    }
}

#[test]
fn skopeo_reads_layouts_and_oci_archives() {
    if !common::require_tool("skopeo") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let layout = t.path().join("hello");
    let digest = build_hello(&layout, &["--ref-name", "latest"]);
    let archive = t.path().join("hello.tar");
    let o = ocipack()
        .arg("export")
        .arg(&layout)
        .args(["--format", "oci-archive", "-o"])
        .arg(&archive)
        .output()
        .unwrap();
    assert_exit(&o, 0);

    for source in [
        format!("oci:{}", layout.display()),
        format!("oci-archive:{}", archive.display()),
    ] {
        let o = ok(Command::new("skopeo").args(["inspect", &source]));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["Digest"], digest.as_str(), "{source}");
        assert_eq!(v["Architecture"], "amd64");
        assert_eq!(v["Os"], "linux");
        let raw = ok(Command::new("skopeo").args(["inspect", "--raw", &source]));
        assert_eq!(
            raw.stdout,
            fs::read(layout.join("image-manifest.json")).unwrap()
        );
    }
    // Copied out of the archive without re-compression: the very same blobs.
    let copy = t.path().join("copy");
    ok(Command::new("skopeo").args([
        "copy",
        "--preserve-digests",
        &format!("oci-archive:{}", archive.display()),
        &format!("oci:{}:latest", copy.display()),
    ]));
    assert_eq!(index_digest(&copy), digest);
    let blobs = |l: &Path| {
        fs::read_dir(l.join("blobs/sha256"))
            .unwrap()
            .map(|e| {
                let p = e.unwrap().path();
                (p.file_name().unwrap().to_owned(), fs::read(&p).unwrap())
            })
            .collect::<BTreeMap<_, _>>()
    };
    assert_eq!(blobs(&copy), blobs(&layout));
}

#[test]
fn podman_runs_the_amd64_hello_image_from_a_layout_and_from_loaded_archives() {
    if !common::require_tool("podman") || !common::require_tool("runc") {
        return;
    }
    let name = "docker.io/library/hello-world:linux";
    let t = tempfile::tempdir().unwrap();
    // podman 4 names an image run from `oci:PATH` after PATH, which must then be lowercase.
    let lower = LowercaseDir::new();
    let layout = lower.0.join("hello");
    build_hello(&layout, &["--ref-name", name]);
    let config: serde_json::Value =
        serde_json::from_slice(&fs::read(layout.join("image-manifest.json")).unwrap()).unwrap();
    let image_id = config["config"]["digest"].as_str().unwrap()[7..].to_string();

    // Straight from the layout.
    let podman = Podman::new();
    let out = podman.run_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        &format!("oci:{}", layout.display()),
    ]);
    assert!(out.contains("(amd64)"), "{out}");

    // podman load of each archive format, then run by name.
    for format in ["docker-archive", "oci-archive"] {
        let archive = t.path().join(format!("{format}.tar"));
        let o = ocipack()
            .arg("export")
            .arg(&layout)
            .args(["--format", format, "-o"])
            .arg(&archive)
            .output()
            .unwrap();
        assert_exit(&o, 0);
        let podman = Podman::new();
        let loaded = podman.run_ok(&["load", "-i", archive.to_str().unwrap()]);
        assert!(loaded.contains(name), "{format}: {loaded}");
        let id = podman.run_ok(&["image", "inspect", "--format", "{{.Id}}", name]);
        assert_eq!(
            id.trim(),
            image_id,
            "{format}: the image ID is the config digest"
        );
        let out = podman.run_ok(&["run", "--rm", "--network", "none", "--pull", "never", name]);
        assert!(out.contains("(amd64)"), "{format}: {out}");
    }
}
