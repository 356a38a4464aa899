//! Regression tests for the rules and checks reshaped by issue 16 (part P2), at the command
//! line: each test crafts a layout and runs `ocipack verify` (or `diff`) on it, and checks
//! what the real tools make of the same layout where the rule is about them.

mod common;

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

use common::cli::{self, all, os};
use common::oci::json_file;
use common::ocipack;

/// A layout of one image built from a small tree, `--names none` unless `extra` says
/// otherwise, at `<t>/oci`.
fn layout(t: &Path, extra: &[&str]) -> PathBuf {
    let tree = t.join("tree");
    fs::create_dir_all(tree.join("etc")).unwrap();
    fs::write(tree.join("hello"), "hello\n").unwrap();
    fs::write(tree.join("etc/motd"), "welcome\n").unwrap();
    let out = t.join("oci");
    let mut extra = extra.to_vec();
    if !extra.contains(&"--names") {
        extra.extend(["--names", "none"]);
    }
    let o = cli::image(&[os("--rootfs"), tree.as_os_str()], &out, &extra)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", cli::show(&o));
    out
}

fn run(args: &[&std::ffi::OsStr]) -> Output {
    ocipack().args(args).output().unwrap()
}

fn verify(l: &Path, extra: &[&str]) -> Output {
    let mut c = ocipack();
    c.arg("verify").args(extra).arg(l);
    c.output().unwrap()
}

fn blob_path(l: &Path, digest: &str) -> PathBuf {
    l.join("blobs/sha256")
        .join(digest.strip_prefix("sha256:").unwrap())
}

fn index(l: &Path) -> Value {
    json_file(&l.join("index.json"))
}

/// The manifest's digest, as `index.json` lists it.
fn manifest_digest(l: &Path) -> String {
    index(l)["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string()
}

fn manifest(l: &Path) -> Value {
    json_file(&blob_path(l, &manifest_digest(l)))
}

fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

/// debian's published layouts keep readable names inside `blobs/` as the files
/// (`blobs/image-config.json`) and link `blobs/sha256/<hex>` to them. Such a file is
/// referenced, through the link: no "unreferenced file" warning (there was one for each),
/// while a file no descriptor reaches is still noted.
#[test]
fn a_file_a_blob_symlink_leads_to_is_referenced() {
    let t = tempfile::tempdir().unwrap();
    let l = layout(t.path(), &[]);
    let m = manifest(&l);
    let named = [
        (manifest_digest(&l), "image-manifest.json"),
        (
            m["config"]["digest"].as_str().unwrap().to_string(),
            "image-config.json",
        ),
        (
            m["layers"][0]["digest"].as_str().unwrap().to_string(),
            "rootfs.tar.gz",
        ),
    ];
    for (digest, name) in &named {
        let blob = blob_path(&l, digest);
        fs::rename(&blob, l.join("blobs").join(name)).unwrap();
        symlink(format!("../{name}"), &blob).unwrap();
    }
    let o = verify(&l, &[]);
    let out = all(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert_eq!(count(&out, "the blob is a symlink (→ ../"), 3, "{out}");
    assert!(!out.contains("unreferenced"), "{out}");

    // Through a symlinked directory too, and a stray file is still noted.
    fs::rename(l.join("blobs/sha256"), l.join("blobs/by-digest")).unwrap();
    symlink("by-digest", l.join("blobs/sha256")).unwrap();
    fs::write(l.join("blobs/stray.json"), "{}").unwrap();
    let o = verify(&l, &[]);
    let out = all(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert_eq!(count(&out, "unreferenced"), 1, "{out}");
    assert!(
        out.contains("warning: blobs/stray.json: unreferenced file: no descriptor points to it"),
        "{out}"
    );
}

/// `diff --file F` (and `--file-a`, `--file-b`) names a file inside each layout, as
/// `verify --file` does: a name that leaves the layout is a usage error naming the option
/// as written (it was read as a path in the layout, and refused as an invalid layout).
#[test]
fn diff_file_options_are_checked_like_verify_file() {
    let t = tempfile::tempdir().unwrap();
    let l = layout(t.path(), &["--descriptor-file", "d.json"]);
    let l = l.as_os_str();
    for (option, name) in [
        ("--file", "../d.json"),
        ("--file-a", "/etc/passwd"),
        ("--file-b", "a/../../d.json"),
    ] {
        let o = run(&[os("diff"), l, l, os(option), os(name)]);
        let e = cli::assert_error(&o, 2);
        assert!(
            e.contains(&format!(
                "error: {option}: \"{name}\" must be a relative path without '..'"
            )),
            "{e}"
        );
        // Checked before any layout is read: a missing one is not what is reported.
        let o = run(&[os("diff"), os("/nonexistent"), l, os(option), os(name)]);
        let e = cli::assert_error(&o, 2);
        assert!(e.contains(&format!("error: {option}: ")), "{e}");
    }
    let o = run(&[os("diff"), l, l, os("--file"), os("d.json")]);
    assert_eq!(o.status.code(), Some(0), "{}", cli::show(&o));
}
