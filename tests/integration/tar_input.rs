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

// ---------------------------------------------------------------------------------------
// Plain tars read in place (issue 18): the contents of a plain tar's files are read from
// the tar itself when the layer is written, not copied to a spool file first.

/// The debug builds' work log of spool files: one line per build that creates one.
const SPOOLS: &str = "OCIPACK_TEST_LOG_SPOOLS";
/// The test hook run once the inputs are listed, before any content is read.
const AFTER_WALK: &str = "OCIPACK_TEST_HOOK_AFTER_WALK";

/// `ocipack image` of the `--tar` inputs `tars` into `out` (uncompressed layer), logging
/// spool files to `log`, with `env` set.
fn image_of(tars: &[&Path], out: &Path, log: &Path, env: &[(&str, &str)]) -> Output {
    let mut inputs = Vec::new();
    for t in tars {
        inputs.push(os("--tar"));
        inputs.push(t.as_os_str());
    }
    let mut c = cli::image(&inputs, out, &["--compression", "none"]);
    c.env(SPOOLS, log);
    for (k, v) in env {
        c.env(k, v);
    }
    run_bounded(&mut c, Duration::from_secs(120))
}

/// The lines of a spool log (none if it was never written).
fn spool_lines(log: &Path) -> Vec<String> {
    fs::read_to_string(log)
        .map(|s| s.lines().map(str::to_string).collect())
        .unwrap_or_default()
}

/// `data` compressed by the real `gzip -n`.
fn gzip(data: &[u8]) -> Vec<u8> {
    let mut c = Command::new("gzip")
        .args(["-n", "-c"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = c.stdin.take().unwrap();
    let data = data.to_vec();
    let feeder = std::thread::spawn(move || stdin.write_all(&data));
    let o = c.wait_with_output().unwrap();
    feeder.join().unwrap().unwrap();
    assert!(o.status.success());
    o.stdout
}

/// The layer of `layout` extracted by GNU tar into `dir`.
fn extract(layout: &Path, dir: &Path) {
    fs::create_dir_all(dir).unwrap();
    let o = Command::new("tar")
        .arg("-xf")
        .arg(blob(layout, &layer_digest(layout)))
        .arg("-C")
        .arg(dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// `len` bytes that differ with `seed` and do not repeat within a block.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed;
    (0..len)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 56) as u8
        })
        .collect()
}

/// A plain tar made by GNU tar (regular files large and empty, an executable, a symlink, a
/// hard link) is read in place: no spool file is created, and its layer is the one the same
/// tar gzipped gives, which is spooled. GNU tar extracts the layer to the files, the hard
/// link one file. With a sparse file in it, the plain tar spools that file alone, and the
/// layer is still the dense tar's.
#[test]
fn a_plain_tar_is_read_in_place_and_gives_the_layer_its_gzipped_copy_gives() {
    if !common::require_tools(&["tar", "gzip"]) {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    fs::create_dir_all(src.join("bin")).unwrap();
    fs::create_dir_all(src.join("etc")).unwrap();
    fs::write(src.join("bin/tool"), b"#!/bin/sh\necho hi\n").unwrap();
    fs::set_permissions(
        src.join("bin/tool"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    fs::write(src.join("etc/big"), noise(3_000_001, 7)).unwrap();
    fs::write(src.join("etc/empty"), b"").unwrap();
    fs::write(src.join("etc/small"), b"x").unwrap();
    fs::hard_link(src.join("etc/big"), src.join("bin/big-link")).unwrap();
    std::os::unix::fs::symlink("tool", src.join("bin/alias")).unwrap();
    let gnu_tar = |flags: &[&str], name: &str| -> PathBuf {
        let archive = t.path().join(name);
        let o = Command::new("tar")
            .args(["--sort=name", "--format=gnu"])
            .args(flags)
            .arg("-cf")
            .arg(&archive)
            .arg("-C")
            .arg(&src)
            .arg(".")
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        archive
    };
    let plain = gnu_tar(&[], "plain.tar");
    let gz = t.path().join("plain.tar.gz");
    fs::write(&gz, gzip(&fs::read(&plain).unwrap())).unwrap();

    let (out_plain, log_plain) = (t.path().join("out-plain"), t.path().join("log-plain"));
    assert_exit(&image_of(&[&plain], &out_plain, &log_plain, &[]), 0);
    assert_eq!(
        spool_lines(&log_plain),
        Vec::<String>::new(),
        "a plain tar without sparse files was spooled"
    );
    let (out_gz, log_gz) = (t.path().join("out-gz"), t.path().join("log-gz"));
    assert_exit(&image_of(&[&gz], &out_gz, &log_gz, &[]), 0);
    assert_eq!(
        spool_lines(&log_gz).len(),
        1,
        "a gzipped tar was not spooled"
    );
    let want = layer_digest(&out_gz);
    assert_eq!(layer_digest(&out_plain), want);

    let x = t.path().join("x");
    extract(&out_plain, &x);
    for f in [
        "bin/tool",
        "bin/big-link",
        "etc/big",
        "etc/empty",
        "etc/small",
    ] {
        assert!(
            fs::read(x.join(f)).unwrap() == fs::read(src.join(f)).unwrap(),
            "{f} differs"
        );
    }
    assert_eq!(
        fs::metadata(x.join("bin/big-link")).unwrap().ino(),
        fs::metadata(x.join("etc/big")).unwrap().ino(),
        "the hard link is not one file with its target"
    );
    assert_eq!(
        fs::read_link(x.join("bin/alias")).unwrap(),
        Path::new("tool")
    );

    // A sparse file among them: that one file is spooled, the layer is the dense tar's.
    sparse_file(&src.join("etc/sparse"), 2 << 20, &[(1 << 20, b"MIDDLE")]);
    if fs::metadata(src.join("etc/sparse")).unwrap().blocks() > 8 {
        common::skip("this file system stores no holes, so GNU tar writes no sparse entries");
        return;
    }
    let dense = gnu_tar(&[], "dense.tar");
    let sparse = gnu_tar(&["--sparse"], "sparse.tar");
    let (out_dense, log_dense) = (t.path().join("out-dense"), t.path().join("log-dense"));
    assert_exit(&image_of(&[&dense], &out_dense, &log_dense, &[]), 0);
    assert_eq!(spool_lines(&log_dense), Vec::<String>::new());
    let (out_sparse, log_sparse) = (t.path().join("out-sparse"), t.path().join("log-sparse"));
    assert_exit(&image_of(&[&sparse], &out_sparse, &log_sparse, &[]), 0);
    assert_eq!(
        spool_lines(&log_sparse).len(),
        1,
        "the sparse file was not spooled"
    );
    assert_eq!(layer_digest(&out_sparse), layer_digest(&out_dense));
    let x = t.path().join("x-sparse");
    extract(&out_sparse, &x);
    assert!(fs::read(x.join("etc/sparse")).unwrap() == fs::read(src.join("etc/sparse")).unwrap());
    assert!(fs::read(x.join("etc/big")).unwrap() == fs::read(src.join("etc/big")).unwrap());
}

/// A plain tar is read twice: its headers when the inputs are listed, its contents when
/// the layer is written. Changed in between (the test hook runs after the listing) it would
/// give a layer of old headers and new contents, so the build fails as for a tree file
/// that changed: an input error (exit 2) naming the tar, nothing written. Every way of
/// changing it counts: bytes overwritten with the mtime put back (its ctime still moves),
/// the tar cut short, the tar grown, and the tar replaced by a rename (the build would
/// still read the file it opened, but its link count, so its ctime, changed: the check is
/// the one tree files get, and it does not tell the two apart). Unchanged, the same tar
/// builds again, spooling nothing.
#[test]
fn a_plain_tar_changed_after_the_listing_fails_the_build_and_writes_nothing() {
    let t = tempfile::tempdir().unwrap();
    let members = [
        tar_file(b"a", &noise(100_000, 1)),
        tar_file(b"b", &noise(70_000, 2)),
        tar_file(b"c", b"see"),
    ];
    let bytes = tar_of(&members);
    let tar = t.path().join("in.tar");
    let (out, log) = (t.path().join("out"), t.path().join("log"));
    fs::write(&tar, &bytes).unwrap();
    assert_exit(&image_of(&[&tar], &out, &log, &[]), 0);
    let want = layer_digest(&out);
    fs::remove_dir_all(&out).unwrap();

    let q = cli::sq(&tar);
    let keep = cli::sq(&t.path().join("times"));
    // Each at the offset of b's content (past a), in place.
    let at = members[0].len() + 512 + 10;
    let changes = [
        (
            "overwritten, mtime restored",
            format!(
                "touch -r {q} {keep} && printf XYZ | dd of={q} bs=1 seek={at} conv=notrunc \
                 status=none && touch -r {keep} {q}"
            ),
        ),
        ("cut short", format!("truncate -s {at} {q}")),
        ("grown", format!("printf more >> {q}")),
        (
            "replaced by a rename",
            format!("cp {q} {keep} && mv {keep} {q}"),
        ),
    ];
    for (what, hook) in &changes {
        fs::write(&tar, &bytes).unwrap();
        let o = image_of(&[&tar], &out, &log, &[(AFTER_WALK, hook)]);
        let e = cli::assert_error(&o, 2);
        assert!(
            e.contains(&format!("--tar \"{}\": ", cli::s(&tar))),
            "{what}: the error does not name the tar\n{e}"
        );
        assert!(
            e.contains("changed while ocipack was building"),
            "{what}: the error does not say the tar changed\n{e}"
        );
        assert!(!out.exists(), "{what}: a layout was written");
        assert_eq!(staging_beside(&out), Vec::<String>::new(), "{what}");
    }

    fs::write(&tar, &bytes).unwrap();
    let o = image_of(&[&tar], &out, &log, &[(AFTER_WALK, "true")]);
    assert_exit(&o, 0);
    assert_eq!(layer_digest(&out), want);
    assert_eq!(spool_lines(&log), Vec::<String>::new());
}

/// Two plain tars whose files interleave in the layer are read in place, each from its
/// own file: the layer is that of one tar holding all their members, and that of the
/// first given gzipped. The first ends without an end-of-archive marker, on an empty file
/// (whose content is at the very end of that tar). A tar given twice is refused, as any
/// file given twice is.
#[test]
fn two_plain_tars_are_read_in_place_each_from_its_own_file() {
    if !require_tool("gzip") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let first = [
        tar_file(b"x1", &noise(5000, 1)),
        tar_file(b"x3", &noise(700, 3)),
        tar_member(b"x3-link", b'1', b"x3", b""),
        tar_file(b"zz", b""),
    ];
    let second = [
        tar_file(b"x2", &noise(3000, 2)),
        tar_file(b"x4", &noise(100_000, 4)),
    ];
    let a = t.path().join("a.tar");
    fs::write(&a, first.concat()).unwrap();
    let b = t.path().join("b.tar");
    fs::write(&b, tar_of(&second)).unwrap();
    let a_gz = t.path().join("a.tar.gz");
    fs::write(&a_gz, gzip(&first.concat())).unwrap();
    let all = t.path().join("all.tar");
    fs::write(&all, tar_of(&[&first[..], &second[..]].concat())).unwrap();
    let log = t.path().join("log");

    let out = t.path().join("out");
    assert_exit(&image_of(&[&a, &b], &out, &log, &[]), 0);
    assert_eq!(spool_lines(&log), Vec::<String>::new());
    let x = t.path().join("x");
    extract(&out, &x);
    for (name, data) in [
        ("x1", noise(5000, 1)),
        ("x2", noise(3000, 2)),
        ("x3", noise(700, 3)),
        ("x3-link", noise(700, 3)),
        ("x4", noise(100_000, 4)),
        ("zz", Vec::new()),
    ] {
        assert!(fs::read(x.join(name)).unwrap() == data, "{name} differs");
    }
    let want = layer_digest(&out);
    for (what, tars) in [("one tar", vec![&all]), ("gzipped first", vec![&a_gz, &b])] {
        let out = t.path().join(format!("out-{}", tars.len()));
        let tars: Vec<&Path> = tars.iter().map(|p| p.as_path()).collect();
        assert_exit(&image_of(&tars, &out, &log, &[]), 0);
        assert_eq!(layer_digest(&out), want, "{what}");
    }

    let twice = t.path().join("twice");
    let o = image_of(&[&b, &b], &twice, &log, &[]);
    let e = cli::assert_error(&o, 2);
    assert!(e.contains("given twice"), "{e}");
    assert!(!twice.exists());
}
