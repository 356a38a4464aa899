//! CLI-level tests of `--tar` input through ocipack's one tar reader: GNU sparse files in
//! every format GNU tar writes are stored as the files they stand for, and names a runtime
//! cannot use (`.`, empty, over-long, 100,000 components deep) are refused, each by the rule
//! it breaks.

use crate::common;

use std::fs;
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::cli::{self, os};
use common::oci::json_file;
use common::tar::{pad, pax_member, tar_file, tar_member, tar_of};
use common::{assert_exit, require_tool, run_bounded, staging_beside};

/// `ocipack image --tar TAR --arch amd64 --created @1700000000 -o OUT --compression none`.
fn image(tar: &Path, out: &Path) -> Output {
    let mut c = cli::image(
        &[os("--tar"), tar.as_os_str()],
        out,
        &["--compression", "none"],
    );
    run_bounded(&mut c, Duration::from_secs(120))
}

fn blob(layout: &Path, digest: &str) -> PathBuf {
    layout
        .join("blobs/sha256")
        .join(digest.strip_prefix("sha256:").unwrap())
}

/// The digest of the layout's only layer, read through index.json and the manifest.
fn layer_digest(layout: &Path) -> String {
    let index = json_file(&layout.join("index.json"));
    let manifest = json_file(&blob(
        layout,
        index["manifests"][0]["digest"].as_str().unwrap(),
    ));
    manifest["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Every regular file below `dir`, relative name → bytes.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        assert!(p.is_file(), "{} is not a regular file", p.display());
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        out.push((name, fs::read(&p).unwrap()));
    }
    out.sort();
    out
}

/// Writes a file of `len` bytes holding `writes` and holes elsewhere.
fn sparse_file(path: &Path, len: u64, writes: &[(u64, &[u8])]) {
    let mut f = fs::File::create(path).unwrap();
    for (offset, data) in writes {
        f.seek(SeekFrom::Start(*offset)).unwrap();
        f.write_all(data).unwrap();
    }
    f.set_len(len).unwrap();
}

#[test]
fn sparse_files_in_every_gnu_format_are_stored_as_the_files_they_stand_for() {
    if !require_tool("tar") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    fs::create_dir(&src).unwrap();
    let mib = 1 << 20;
    // Data at the start, in the middle and at the end; data then a hole; only a hole.
    sparse_file(
        &src.join("mid"),
        3 * mib,
        &[(0, b"START"), (1_500_000, b"MIDDLE"), (3 * mib - 3, b"END")],
    );
    sparse_file(
        &src.join("endhole"),
        2 * mib + 100,
        &[(0, b"data, then a hole")],
    );
    sparse_file(&src.join("allhole"), 5 * mib, &[]);
    let holes = fs::metadata(src.join("allhole")).unwrap().blocks() == 0;
    if !holes {
        // The rest runs, but GNU tar writes dense files: no sparse entry is read.
        common::skip("this file system stores no holes, so GNU tar writes no sparse entries");
    }
    let original = files(&src);

    let tar = |flags: &[&str], name: &str| -> PathBuf {
        let archive = t.path().join(name);
        let o = Command::new("tar")
            .args(flags)
            .arg("-cf")
            .arg(&archive)
            .arg("-C")
            .arg(&src)
            .args(["mid", "endhole", "allhole"])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        archive
    };
    // The same files, not sparse: the layer every sparse form must give.
    let dense = tar(&["--format=posix"], "dense.tar");
    let out = t.path().join("dense-out");
    assert_exit(&image(&dense, &out), 0);
    let want = layer_digest(&out);

    for (flags, marker) in [
        (
            &["--sparse", "--format=posix", "--sparse-version=0.0"][..],
            &b"GNU.sparse.offset="[..],
        ),
        (
            &["--sparse", "--format=posix", "--sparse-version=0.1"],
            b"GNU.sparse.map=",
        ),
        (
            &["--sparse", "--format=posix", "--sparse-version=1.0"],
            b"GNU.sparse.major=1",
        ),
        (&["--sparse", "--format=gnu"], b"ustar  \0"),
    ] {
        let what = flags.join(" ");
        let archive = tar(flags, "sparse.tar");
        let bytes = fs::read(&archive).unwrap();
        if holes {
            assert!(
                bytes.windows(marker.len()).any(|w| w == marker),
                "{what}: GNU tar wrote no sparse entry"
            );
        }
        let out = t.path().join(format!("out-{}", flags.len()));
        let _ = fs::remove_dir_all(&out);
        let o = image(&archive, &out);
        assert_exit(&o, 0);
        let digest = layer_digest(&out);
        assert_eq!(
            digest, want,
            "{what}: the layer differs from the dense tar's"
        );

        // GNU tar extracts the layer to exactly the original files.
        let x = t.path().join("extracted");
        let _ = fs::remove_dir_all(&x);
        fs::create_dir(&x).unwrap();
        let o = Command::new("tar")
            .arg("-xf")
            .arg(blob(&out, &digest))
            .arg("-C")
            .arg(&x)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let got = files(&x);
        let names = |v: &[(String, Vec<u8>)]| v.iter().map(|f| f.0.clone()).collect::<Vec<_>>();
        assert_eq!(names(&got), names(&original), "{what}");
        for ((name, g), (_, o)) in got.iter().zip(&original) {
            assert_eq!(g.len(), o.len(), "{what}: size of {name}");
            assert!(g == o, "{what}: bytes of {name}");
        }
    }
}

#[test]
fn unusable_names_are_refused_by_their_rule_and_leave_nothing_behind() {
    let deep = b"d/".repeat(100_000);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "dot",
            tar_of(&[tar_file(b"a", b"1"), tar_file(b".", b"vanishes?")]),
            "entry \".\" stands for the archive's root, which only a directory entry may name (this is a file)",
        ),
        (
            "dot-slash",
            tar_of(&[tar_file(b"./", b"vanishes?")]),
            "entry \"./\" stands for the archive's root",
        ),
        (
            "empty",
            tar_of(&[tar_file(b"", b"vanishes?")]),
            "entry \"\" is empty",
        ),
        (
            "long",
            tar_of(&[pax_member(&[("path", &[b'n'; 5000])]), tar_file(b"x", b"1")]),
            "is 5000 bytes long, more than the 4096 allowed",
        ),
        (
            "components",
            tar_of(&[
                pax_member(&[("path", &b"c/".repeat(1025))]),
                tar_file(b"x", b"1"),
            ]),
            "has 1025 components, more than the 1024 allowed",
        ),
        (
            "deep",
            tar_of(&[pax_member(&[("path", &deep)]), tar_file(b"x", b"1")]),
            "(200000 bytes)\" is 200000 bytes long, more than the 4096 allowed",
        ),
        (
            "deep directory",
            tar_of(&[
                pax_member(&[("path", &deep)]),
                tar_member(b"x/", b'5', b"", b""),
            ]),
            "is 200000 bytes long",
        ),
        (
            "long symlink target",
            tar_of(&[
                pax_member(&[("linkpath", &b"t/".repeat(3000))]),
                tar_member(b"s", b'2', b"", b""),
            ]),
            "entry \"s\": link target is 6000 bytes long",
        ),
    ];
    for (name, bytes, want) in cases {
        let t = tempfile::tempdir().unwrap();
        let input = t.path().join("in.tar");
        fs::write(&input, bytes).unwrap();
        let out = t.path().join("out");
        // The message names the rule that refused the entry: the 200,000-byte names by
        // their length, a check on the raw bytes before anything splits them (no timing:
        // `image` only bounds the run, so that a hang fails).
        let o = image(&input, &out);
        assert_exit(&o, 2);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(
            stderr.contains(&format!("--tar \"{}\": ", input.display())) && stderr.contains(want),
            "{name}: {want:?} not in\n{stderr}"
        );
        assert_eq!(stderr.lines().count(), 1, "{name}: one line\n{stderr}");
        assert!(stderr.len() < 2000, "{name}: a short line\n{stderr}");
        assert!(!out.exists(), "{name}: nothing written");
        assert_eq!(staging_beside(&out), Vec::<String>::new(), "{name}");
    }
}

#[test]
fn the_root_directory_entry_is_accepted_and_skipped() {
    let t = tempfile::tempdir().unwrap();
    let input = t.path().join("in.tar");
    // As GNU tar writes `tar -C dir .`, and busybox's build: "./" first.
    fs::write(
        &input,
        tar_of(&[
            tar_member(b"./", b'5', b"", b""),
            tar_member(b".", b'5', b"", b""),
            tar_file(b"./hello", b"hi\n"),
        ]),
    )
    .unwrap();
    let out = t.path().join("out");
    assert_exit(&image(&input, &out), 0);
    let layer = fs::read(blob(&out, &layer_digest(&out))).unwrap();
    let mut names = Vec::new();
    let mut a = tar::Archive::new(&layer[..]);
    for e in a.entries().unwrap() {
        names.push(e.unwrap().path_bytes().into_owned());
    }
    assert_eq!(names, [b"hello".to_vec()]);
}

#[test]
fn sparse_placeholder_names_never_reach_the_layer() {
    // A 1.0 sparse entry without GNU.sparse.name: GNU tar's placeholder is all there is.
    let t = tempfile::tempdir().unwrap();
    let x = pax_member(&[
        ("GNU.sparse.major", b"1"),
        ("GNU.sparse.minor", b"0"),
        ("GNU.sparse.realsize", b"10"),
    ]);
    // The member's data is the sparse map, padded to a block (and no data: 0 bytes at 10).
    let mut map = b"1\n10\n0\n".to_vec();
    pad(&mut map);
    let e = tar_member(b"GNUSparseFile.123/f", b'0', b"", &map);
    let input = t.path().join("in.tar");
    fs::write(&input, tar_of(&[x, e])).unwrap();
    let out = t.path().join("out");
    let o = image(&input, &out);
    assert_exit(&o, 2);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("the sparse file GNUSparseFile.123/f has no real name (GNU.sparse.name)"),
        "{stderr}"
    );
    assert!(!out.exists());
}
