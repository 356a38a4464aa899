//! `ocipack fix`: layouts in docker-library/busybox's shape (readable names as files,
//! blobs/sha256/… symlinks to them, JSON written by `jq --tab`, a GNU tar layer whose first
//! member is `./`) are rewritten with every digest unchanged, and then pass the crane rule
//! of `verify --profile oci-import`; layouts that cannot be fixed without changing a digest
//! are refused with the old layout untouched.

use crate::common;
use crate::common::layouts;

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use common::oci::sha256;
use common::{require_tools, snapshot};
use layouts::{CREATED_UNIX, Out, image, run_guarded, sample_tree};

fn fix(args: &[&str], layout: &Path) -> Out {
    let mut c = common::ocipack();
    c.arg("fix").args(args).arg(layout);
    run_guarded(c)
}

fn verify_import(layout: &Path) -> Out {
    let mut c = common::ocipack();
    c.args(["verify", "--profile", "oci-import", "--arch", "amd64"])
        .arg(layout);
    run_guarded(c)
}

/// `jq --tab .` of `v`, as busybox's build.sh writes its JSON (tabs, one trailing newline).
fn jq_tab(v: &Value) -> Vec<u8> {
    let mut c = Command::new("jq")
        .args(["--tab", "."])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    c.stdin
        .take()
        .unwrap()
        .write_all(&serde_json::to_vec(v).unwrap())
        .unwrap();
    let o = c.wait_with_output().unwrap();
    assert!(o.status.success());
    assert!(
        o.stdout.starts_with(b"{\n\t\""),
        "jq --tab indents with tabs"
    );
    o.stdout
}

/// The digests of every descriptor: index entry, config, layers.
fn digests(layout: &Path) -> Vec<String> {
    let read = |p: &Path| -> Value { serde_json::from_slice(&fs::read(p).unwrap()).unwrap() };
    let index = read(&layout.join("index.json"));
    let m = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let manifest = read(&layout.join(format!("blobs/sha256/{}", &m[7..])));
    let mut out = vec![
        m,
        manifest["config"]["digest"].as_str().unwrap().to_string(),
    ];
    for l in manifest["layers"].as_array().unwrap() {
        out.push(l["digest"].as_str().unwrap().to_string());
    }
    out
}

/// A layout in busybox's shape, made from an `ocipack image --names files` layout: the
/// layer re-made by GNU tar with busybox's flags (so its first member is `./`), gzip'd, and
/// every JSON document re-written by `jq --tab` (new digests, a consistent layout).
fn busybox_layout(t: &Path) -> std::path::PathBuf {
    let tree = t.join("rootfs");
    sample_tree(&tree);
    let out = t.join("amd64");
    image(&tree, &out, &["--names", "files"]).assert(0, &[]);

    let mtime = t.join("SOURCE_DATE_EPOCH");
    fs::write(&mtime, b"").unwrap();
    let st = Command::new("touch")
        .arg("-d")
        .arg(format!("@{CREATED_UNIX}"))
        .arg(&mtime)
        .status()
        .unwrap();
    assert!(st.success());
    let tar = Command::new("tar")
        .arg("--create")
        .arg("--directory")
        .arg(&tree)
        .args([
            "--numeric-owner",
            "--transform",
            "s,^./,,",
            "--sort",
            "name",
            "--mtime",
        ])
        .arg(&mtime)
        .args(["--clamp-mtime", "."])
        .output()
        .unwrap();
    assert!(
        tar.status.success(),
        "{}",
        String::from_utf8_lossy(&tar.stderr)
    );
    let tar = tar.stdout;
    assert_eq!(&tar[..2], b"./", "GNU tar's first member is ./");
    let mut gz = Command::new("gzip")
        .args(["-n", "-c"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        gz.stdin.take().unwrap().write_all(&tar).unwrap();
    }
    let gz = gz.wait_with_output().unwrap().stdout;

    // Start over in busybox's shape: readable files, blob symlinks to them.
    fs::remove_dir_all(out.join("blobs")).unwrap();
    for n in ["rootfs.tar.gz", "image-config.json", "image-manifest.json"] {
        let _ = fs::remove_file(out.join(n));
    }
    let read =
        |p: &str| -> Value { serde_json::from_slice(&fs::read(out.join(p)).unwrap()).unwrap() };
    let index = read("index.json");
    fs::create_dir_all(out.join("blobs/sha256")).unwrap();
    let blob = |name: &str, bytes: &[u8]| -> (String, usize) {
        fs::write(out.join(name), bytes).unwrap();
        let d = sha256(bytes);
        symlink(
            format!("../../{name}"),
            out.join(format!("blobs/sha256/{}", &d[7..])),
        )
        .unwrap();
        (d, bytes.len())
    };
    let (ld, ln) = blob("rootfs.tar.gz", &gz);
    let config = json!({
        "config": {"Cmd": ["/bin/hello"], "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
        "created": "2025-01-21T23:32:32Z",
        "history": [{"created": "2025-01-21T23:32:32Z", "created_by": "test"}],
        "rootfs": {"type": "layers", "diff_ids": [sha256(&tar)]},
        "architecture": "amd64",
        "os": "linux"
    });
    let (cd, cn) = blob("image-config.json", &jq_tab(&config));
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cn},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": ld, "size": ln}],
        "annotations": {"org.opencontainers.image.version": "1.0-test"}
    });
    let (md, mn) = blob("image-manifest.json", &jq_tab(&manifest));
    let mut entry = index["manifests"][0].clone();
    entry["digest"] = json!(md);
    entry["size"] = json!(mn);
    let index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [entry]
    });
    fs::write(out.join("index.json"), jq_tab(&index)).unwrap();
    fs::write(
        out.join("oci-layout"),
        b"{\"imageLayoutVersion\":\"1.0.0\"}\n",
    )
    .unwrap();
    out
}

fn tools() -> bool {
    require_tools(&["jq", "tar", "gzip", "touch"])
}

#[test]
fn a_busybox_shaped_layout_keeps_every_digest_and_then_passes_crane() {
    if !tools() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let l = busybox_layout(t.path());
    let before = digests(&l);
    // Valid OCI, but crane refuses the symlinked blobs.
    let mut c = common::ocipack();
    c.args(["verify"]).arg(&l);
    run_guarded(c).assert(0, &["valid (linux/amd64"]);
    verify_import(&l).assert(
        1,
        &[
            "[crane]: layout blob sha256:",
            "is a symlink",
            "`ocipack fix`",
        ],
    );
    let index_bytes = fs::read(l.join("index.json")).unwrap();

    fix(&[], &l).assert(
        0,
        &[
            "fixed, manifest",
            "unchanged; 3 blobs as regular files (3 were symlinks); names symlinks",
        ],
    );
    assert_eq!(digests(&l), before);
    assert_eq!(fs::read(l.join("index.json")).unwrap(), index_bytes);
    let snap = snapshot(&l);
    for d in &before {
        let (is_link, bytes) = &snap[&format!("blobs/sha256/{}", &d[7..])];
        assert!(!is_link, "{d} is a regular file now");
        assert_eq!(&sha256(bytes), d);
    }
    assert_eq!(
        snap["rootfs.tar.gz"],
        (
            true,
            format!("blobs/sha256/{}", &before[2][7..]).into_bytes()
        )
    );
    verify_import(&l).assert(0, &["valid (linux/amd64"]);
    // The tab-indented documents kept their bytes: still tabs.
    assert!(
        snap[&format!("blobs/sha256/{}", &before[0][7..])]
            .1
            .starts_with(b"{\n\t")
    );

    // Again: nothing changes; and --names none / files are honoured.
    let again = snapshot(&l);
    fix(&[], &l).assert(0, &["(0 were symlinks)"]);
    assert_eq!(snapshot(&l), again);
    fix(&["--names", "none"], &l).assert(0, &["names none"]);
    assert!(!l.join("rootfs.tar.gz").exists());
    fix(&["--names", "files"], &l).assert(0, &["names files"]);
    assert_eq!(digests(&l), before);
    verify_import(&l).assert(1, &["is a symlink"]);
}

#[test]
fn a_missing_oci_layout_is_added_and_other_entries_are_listed() {
    let t = tempfile::tempdir().unwrap();
    let tree = t.path().join("rootfs");
    sample_tree(&tree);
    let l = t.path().join("oci");
    image(&tree, &l, &["--names", "files"]).assert(0, &[]);
    let before = digests(&l);
    fs::remove_file(l.join("oci-layout")).unwrap();
    fs::write(l.join("manifest.json"), b"[]").unwrap();
    fix(&[], &l).assert(
        0,
        &["oci-layout added", "manifest.json was not carried over"],
    );
    assert_eq!(
        fs::read(l.join("oci-layout")).unwrap(),
        b"{\"imageLayoutVersion\":\"1.0.0\"}"
    );
    assert!(!l.join("manifest.json").exists());
    assert_eq!(digests(&l), before);
    verify_import(&l).assert(0, &["valid"]);
}

#[test]
fn layouts_that_would_change_a_digest_are_refused_untouched() {
    let t = tempfile::tempdir().unwrap();
    let tree = t.path().join("rootfs");
    sample_tree(&tree);
    let base = t.path().join("base");
    image(&tree, &base, &["--names", "files"]).assert(0, &[]);
    let copy = |name: &str| {
        let dst = t.path().join(name);
        let st = Command::new("cp")
            .arg("-a")
            .arg(&base)
            .arg(&dst)
            .status()
            .unwrap();
        assert!(st.success());
        dst
    };

    // A layer whose bytes do not hash to its name (same size).
    let l = copy("tampered");
    let layer = l.join("rootfs.tar.gz");
    let mut b = fs::read(&layer).unwrap();
    let mid = b.len() / 2;
    b[mid] ^= 1;
    fs::write(&layer, b).unwrap();
    let snap = snapshot(&l);
    fix(&[], &l).assert(
        2,
        &["cannot be fixed without changing a digest", "hashes to"],
    );
    assert_eq!(snapshot(&l), snap);

    // A document that is not valid.
    let l = copy("invalid");
    fs::write(
        l.join("index.json"),
        b"{\"schemaVersion\":\"2\",\"manifests\":[],\"x\":1}",
    )
    .unwrap();
    let snap = snapshot(&l);
    fix(&[], &l).assert(
        2,
        &[
            "cannot be fixed",
            "invalid type: string \"2\", expected u32",
        ],
    );
    assert_eq!(snapshot(&l), snap);

    // A blob symlink that leads out of the layout, and one with an absolute target.
    for (name, target) in [("escape", "../../../outside"), ("absolute", "/etc/passwd")] {
        let l = copy(name);
        fs::write(t.path().join("outside"), b"secret").unwrap();
        let d = &digests(&l)[1];
        let p = l.join(format!("blobs/sha256/{}", &d[7..]));
        fs::remove_file(&p).unwrap();
        symlink(target, &p).unwrap();
        let snap = snapshot(&l);
        fix(&[], &l).assert(2, &["cannot be fixed"]);
        assert_eq!(snapshot(&l), snap);
    }

    // The layout path itself a symlink: fix would replace the link, not the layout.
    let l = copy("real");
    let link = t.path().join("link");
    symlink(&l, &link).unwrap();
    fix(&[], &link).assert(2, &["is a symlink, not a directory"]);
    assert!(
        fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );

    // Not a layout at all.
    let empty = t.path().join("empty");
    fs::create_dir(&empty).unwrap();
    fix(&[], &empty).assert(2, &["index.json"]);
    fix(&["--names", "links"], &l).assert(2, &["--names"]);
}

#[test]
fn symlinked_directories_inside_the_layout_become_real_ones() {
    let t = tempfile::tempdir().unwrap();
    let tree = t.path().join("rootfs");
    sample_tree(&tree);
    let l = t.path().join("oci");
    image(&tree, &l, &["--names", "none"]).assert(0, &[]);
    let before = digests(&l);
    // blobs/sha256 moved to store/, and blobs/sha256 a symlink to it (inside the layout).
    fs::rename(l.join("blobs/sha256"), l.join("store")).unwrap();
    symlink("../store", l.join("blobs/sha256")).unwrap();
    // index.json a symlink too.
    fs::rename(l.join("index.json"), l.join("store/index")).unwrap();
    symlink("store/index", l.join("index.json")).unwrap();
    fix(&[], &l).assert(0, &["fixed", "store/index was not carried over"]);
    assert_eq!(digests(&l), before);
    assert!(
        fs::symlink_metadata(l.join("blobs/sha256"))
            .unwrap()
            .is_dir()
    );
    assert!(
        fs::symlink_metadata(l.join("index.json"))
            .unwrap()
            .is_file()
    );
    assert!(!l.join("store").exists());
    verify_import(&l).assert(0, &["valid"]);
}

/// A file the fix leaves behind is named in a note with its control characters escaped: a
/// name cannot forge an output line or drive the terminal.
#[test]
fn entries_left_behind_are_named_escaped() {
    let t = tempfile::tempdir().unwrap();
    let tree = t.path().join("rootfs");
    sample_tree(&tree);
    let l = t.path().join("oci");
    image(&tree, &l, &[]).assert(0, &[]);
    fs::write(l.join("x\u{1b}[31mRED\nocipack: fake line"), b"").unwrap();
    let o = fix(&[], &l);
    o.assert(
        0,
        &["x\\u{1b}[31mRED\\nocipack: fake line was not carried over"],
    );
    assert!(!o.stderr.contains('\u{1b}'), "{}", o.stderr);
    assert!(
        !o.stderr
            .lines()
            .any(|l| l.starts_with("ocipack: fake line")),
        "{}",
        o.stderr
    );
}

/// A copy that fails on the write side (a full disk; here the file size limit, with
/// SIGXFSZ ignored so that the write fails with EFBIG) is an operation failure, exit 1,
/// never blamed on the input layout (exit 2, which means the layout cannot be fixed); the
/// layout is left as it was.
#[test]
fn a_failed_write_while_copying_a_blob_is_exit_1_not_an_input_error() {
    let t = tempfile::tempdir().unwrap();
    let tree = t.path().join("rootfs");
    fs::create_dir_all(&tree).unwrap();
    let mut x = 1u32;
    let noise: Vec<u8> = (0..256 * 1024)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect();
    fs::write(tree.join("noise"), noise).unwrap();
    let l = t.path().join("oci");
    image(&tree, &l, &["--names", "files"]).assert(0, &[]);
    let before = snapshot(&l);
    let mut c = Command::new("sh");
    c.args(["-c", "trap '' XFSZ; ulimit -f 64; exec \"$0\" fix \"$1\""])
        .arg(env!("CARGO_BIN_EXE_ocipack"))
        .arg(&l);
    run_guarded(c).assert(1, &["File too large"]);
    assert!(snapshot(&l) == before, "the layout changed");
    fix(&[], &l).assert(0, &["fixed"]);
}

/// `--file` names the descriptor file as the user wrote it: `./desc.json` is `desc.json`
/// (kept, with no note that it was dropped), a file in a subdirectory keeps its directory,
/// and a name ending in `/` is a usage error (it once reached the writer as a path to
/// create, exit 1 naming the staging directory).
#[test]
fn descriptor_file_names_are_normalised_or_refused() {
    let t = tempfile::tempdir().unwrap();
    let tree = t.path().join("rootfs");
    sample_tree(&tree);
    let l = t.path().join("oci");
    image(&tree, &l, &["--descriptor-file", "desc.json"]).assert(0, &[]);
    let before = digests(&l);
    for bad in ["desc.json/", "desc.json/.", "./", "."] {
        let o = fix(&["--file", bad], &l);
        o.assert(2, &["names a directory, not the descriptor file"]);
        assert!(!o.stderr.contains(".ocipack-"), "{}", o.stderr);
    }
    let o = fix(&["--file", "./desc.json"], &l);
    o.assert(0, &[]);
    assert!(!o.stderr.contains("not carried over"), "{}", o.stderr);
    assert!(l.join("desc.json").is_file());

    // A descriptor file in a subdirectory: the directory is part of what is kept.
    fs::create_dir(l.join("d")).unwrap();
    fs::rename(l.join("desc.json"), l.join("d/sub.json")).unwrap();
    let o = fix(&["--file", "d/sub.json"], &l);
    o.assert(0, &[]);
    assert!(!o.stderr.contains("not carried over"), "{}", o.stderr);
    assert!(l.join("d/sub.json").is_file());
    assert_eq!(digests(&l), before);
}
