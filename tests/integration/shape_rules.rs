//! Regression tests for the rules and checks reshaped by issue 16 (part P2), at the command
//! line: each test crafts a layout and runs `ocipack verify` (or `diff`) on it, and checks
//! what the real tools make of the same layout where the rule is about them.

use crate::common;

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Output;

use base64::Engine as _;
use serde_json::{Value, json};

use common::cli::{self, all, os};
use common::oci::{self, json_file, put_blob};
use common::{ocipack, require_tool};

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

fn set_index(l: &Path, v: &Value) {
    fs::write(l.join("index.json"), serde_json::to_vec(v).unwrap()).unwrap();
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

/// Replaces the manifest with `m` (a new blob; the old one removed, index.json updated).
fn set_manifest(l: &Path, m: &Value) {
    let old = blob_path(l, &manifest_digest(l));
    let (d, n) = put_blob(l, &serde_json::to_vec(m).unwrap());
    if blob_path(l, &d) != old {
        fs::remove_file(old).unwrap();
    }
    let mut i = index(l);
    i["manifests"][0]["digest"] = json!(d);
    i["manifests"][0]["size"] = json!(n);
    set_index(l, &i);
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

/// A descriptor's `data` must be RFC 4648 base64 of exactly the blob (a MUST of the image
/// spec), under the plain profile too: skopeo refuses a layout whose `data` is not base64
/// at all, and `data` that decodes to other bytes embeds content the digest does not name.
#[test]
fn descriptor_data_must_be_the_blob_in_base64() {
    let t = tempfile::tempdir().unwrap();
    let l = layout(t.path(), &["--ref-name", "latest"]);
    let bytes = fs::read(blob_path(&l, &manifest_digest(&l))).unwrap();
    let good = base64::engine::general_purpose::STANDARD.encode(&bytes);
    let with_data = |data: &str| {
        let mut i = index(&l);
        i["manifests"][0]["data"] = json!(data);
        set_index(&l, &i);
    };
    let skopeo = require_tool("skopeo");
    let inspect = || {
        common::run_bounded(
            std::process::Command::new("skopeo")
                .args(["inspect", "--raw"])
                .arg(format!("oci:{}", l.display())),
            std::time::Duration::from_secs(60),
        )
    };

    // The blob, in base64: valid, and skopeo reads it.
    with_data(&good);
    let o = verify(&l, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", all(&o));
    if skopeo {
        let s = inspect();
        assert!(s.status.success(), "{}", cli::show(&s));
        assert_eq!(s.stdout, bytes);
    }

    // One character that is not base64: an error (said once, although index.json's
    // entry is checked both as an index entry and as the image's descriptor), and skopeo
    // refuses the layout.
    let bad = format!("{}!{}", &good[..10], &good[11..]);
    with_data(&bad);
    let o = verify(&l, &[]);
    let out = all(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains(
            "error: index.json: manifests[0].data: not valid base64: Invalid symbol 33, offset 10"
        ),
        "{out}"
    );
    assert_eq!(count(&out, "manifests[0].data"), 1, "{out}");
    assert!(out.contains("INVALID: 1 error"), "{out}");
    if skopeo {
        let s = inspect();
        assert!(!s.status.success(), "{}", cli::show(&s));
        assert!(
            cli::stderr(&s).contains("illegal base64 data at input byte 10"),
            "{}",
            cli::show(&s)
        );
    }

    // Valid base64 of other bytes of the same size, and of the wrong length.
    let mut other = bytes.clone();
    other[0] ^= 1;
    with_data(&base64::engine::general_purpose::STANDARD.encode(&other));
    let o = verify(&l, &[]);
    let out = all(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains(&format!(
            "manifests[0].data: decodes to {} bytes hashing to {}, not to the descriptor's",
            bytes.len(),
            oci::sha256(&other)
        )),
        "{out}"
    );
    with_data(&good[..good.len() - 4]);
    let o = verify(&l, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", all(&o));
    assert!(
        all(&o).contains("base64 characters, but a size of"),
        "{}",
        all(&o)
    );

    // On a descriptor inside the manifest as well.
    with_data(&good);
    let mut m = manifest(&l);
    let config = fs::read(blob_path(&l, m["config"]["digest"].as_str().unwrap())).unwrap();
    let mut wrong = config.clone();
    wrong[1] ^= 1;
    m["config"]["data"] = json!(base64::engine::general_purpose::STANDARD.encode(&wrong));
    set_manifest(&l, &m);
    with_data(
        &base64::engine::general_purpose::STANDARD
            .encode(fs::read(blob_path(&l, &manifest_digest(&l))).unwrap()),
    );
    let o = verify(&l, &[]);
    let out = all(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains(": config.data: decodes to"), "{out}");
    assert!(out.contains("INVALID: 1 error"), "{out}");
}

/// A tar of `members` (name, content; a name ending in `/` is a directory).
fn tar(members: &[(&str, &[u8])]) -> Vec<u8> {
    let list: Vec<Vec<u8>> = members
        .iter()
        .map(|(name, data)| match name.strip_suffix('/') {
            Some(_) => common::tar::tar_member(name.as_bytes(), b'5', b"", b""),
            None => common::tar::tar_file(name.as_bytes(), data),
        })
        .collect();
    common::tar::tar_of(&list)
}

/// Whiteouts (`.wh.NAME`, `.wh..wh..opq`) in an image's only layer hide nothing: there is
/// no layer below. umoci drops them on unpack; `verify` says so in one warning naming the
/// first, and so does the build that writes such a layer (it wrote it without a word, and
/// the input's `.wh.` files silently went missing from the image). In the top layer of a
/// two-layer image they are what they are meant to be.
#[test]
fn whiteouts_in_the_only_layer_are_a_warning() {
    let t = tempfile::tempdir().unwrap();
    let input = t.path().join("wh.tar");
    let top = tar(&[
        (".wh.gone", b""),
        ("dir/", b""),
        ("dir/.wh..wh..opq", b""),
        ("dir/keep", b"kept\n"),
        ("hello", b"hello\n"),
    ]);
    fs::write(&input, &top).unwrap();
    let l = t.path().join("oci");
    let o = cli::image(
        &[os("--tar"), input.as_os_str()],
        &l,
        &["--ref-name", "latest"],
    )
    .output()
    .unwrap();
    assert!(o.status.success(), "{}", cli::show(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        "ocipack: warning: /.wh.gone: named like a whiteout (2 such entries; this is the \
         first): the image's only layer has nothing below it to hide, and unpackers (umoci, \
         containerd) drop whiteouts, so the image will not hold them\n"
    );
    let o = verify(&l, &[]);
    let out = all(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(
        out.contains(
            ": tar entry \".wh.gone\": 2 whiteouts (the first is this one) in the image's only \
             layer, which has no layer below it to hide anything in: unpackers (umoci) drop them"
        ),
        "{out}"
    );
    assert!(out.contains("valid (linux/amd64, 1 warning)"), "{out}");

    // What the warning says umoci does.
    if require_tool("umoci") {
        let bundle = t.path().join("bundle");
        let o = std::process::Command::new("umoci")
            .args(["unpack", "--rootless", "--image"])
            .arg(format!("{}:latest", l.display()))
            .arg(&bundle)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", cli::show(&o));
        let rootfs = bundle.join("rootfs");
        assert!(rootfs.join("hello").is_file());
        assert!(rootfs.join("dir/keep").is_file());
        assert!(!rootfs.join(".wh.gone").exists());
        assert!(!rootfs.join("dir/.wh..wh..opq").exists());
    }

    // Below it, a base layer holding what the whiteouts hide: no warning.
    let base = tar(&[("dir/", b""), ("dir/old", b"old\n"), ("gone", b"gone\n")]);
    let (base_digest, base_size) = put_blob(&l, &base);
    let mut m = manifest(&l);
    let config_digest = m["config"]["digest"].as_str().unwrap().to_string();
    let mut c = json_file(&blob_path(&l, &config_digest));
    let top_diff_id = c["rootfs"]["diff_ids"][0].clone();
    c["rootfs"]["diff_ids"] = json!([oci::sha256(&base), top_diff_id]);
    fs::remove_file(blob_path(&l, &config_digest)).unwrap();
    let (cd, cn) = put_blob(&l, &serde_json::to_vec(&c).unwrap());
    m["config"]["digest"] = json!(cd);
    m["config"]["size"] = json!(cn);
    let top_layer = m["layers"][0].clone();
    m["layers"] = json!([
        {"mediaType": oci::TAR, "digest": base_digest, "size": base_size},
        top_layer
    ]);
    set_manifest(&l, &m);
    let o = verify(&l, &[]);
    let out = all(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(!out.contains("whiteout"), "{out}");
    assert!(out.contains("valid (linux/amd64)"), "{out}");
}

/// A manifest's `subject` names the manifest it refers to; one the layout lacks is a
/// warning under the plain profile too (the oci-import profile's own note, that the
/// pipeline does not import a subject, stays beside it).
#[test]
fn a_subject_the_layout_lacks_is_a_warning() {
    let t = tempfile::tempdir().unwrap();
    let l = layout(t.path(), &[]);
    let absent = b"{\"not\":\"here\"}";
    let mut m = manifest(&l);
    m["subject"] = json!({
        "mediaType": oci::MANIFEST,
        "digest": oci::sha256(absent),
        "size": absent.len(),
    });
    set_manifest(&l, &m);
    let o = verify(&l, &[]);
    let out = all(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    let want = format!(
        ": subject: names sha256:{hex}, which the layout does not hold (blobs/sha256/{hex}: \
         missing): whoever reads the layout cannot see what this image refers to",
        hex = &oci::sha256(absent)["sha256:".len()..]
    );
    assert!(out.contains(&want), "{out}");
    assert!(out.contains("valid (linux/amd64, 1 warning)"), "{out}");
    let o = verify(&l, &["--profile", "oci-import"]);
    let out = all(&o);
    assert!(out.contains(&want), "{out}");
    assert!(
        out.contains("subject: [bashbrew, meta-scripts]: the subject's target is not imported"),
        "{out}"
    );

    // Once the layout holds it, nothing to say (and the blob is referenced).
    put_blob(&l, absent);
    let o = verify(&l, &[]);
    let out = all(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.contains("valid (linux/amd64)"), "{out}");
    assert!(!out.contains("warning"), "{out}");
}

/// Attack: a `subject` whose own fields break a descriptor's rules — `data` that is not
/// base64, a negative size, `urls`. Only `manifests`, `config` and `layers` were checked:
/// verify called such a layout valid (with a warning that the subject is missing), while
/// skopeo refuses it ("illegal base64 data"). A subject is checked as every descriptor is,
/// in a manifest and in an index.
#[test]
fn a_subject_is_checked_as_every_descriptor_is() {
    let t = tempfile::tempdir().unwrap();
    let l = layout(t.path(), &["--ref-name", "x"]);
    let absent = b"{\"not\":\"here\"}";
    let subject = json!({
        "mediaType": oci::MANIFEST,
        "digest": oci::sha256(absent),
        "size": absent.len(),
        "data": "!!!!",
    });
    let mut m = manifest(&l);
    m["subject"] = subject.clone();
    set_manifest(&l, &m);
    let o = verify(&l, &[]);
    let out = all(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains(": subject.data: 4 base64 characters, but a size of 14 needs 20"),
        "{out}"
    );
    if require_tool("skopeo") {
        let o = std::process::Command::new("skopeo")
            .args(["inspect"])
            .arg(format!("oci:{}:x", l.display()))
            .output()
            .unwrap();
        assert!(!o.status.success(), "{}", cli::show(&o));
        assert!(all(&o).contains("illegal base64 data"), "{}", cli::show(&o));
    }
    // In the index: a negative size and urls.
    let mut m = manifest(&l);
    m.as_object_mut().unwrap().remove("subject");
    set_manifest(&l, &m);
    let mut i = index(&l);
    i["subject"] = json!({
        "mediaType": oci::MANIFEST,
        "digest": oci::sha256(absent),
        "size": -1,
        "urls": ["https://example.com/x"],
    });
    set_index(&l, &i);
    let o = verify(&l, &[]);
    let out = all(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains("index.json: subject.size: negative size -1")
            && out.contains("index.json: subject.urls: external blob locations"),
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
