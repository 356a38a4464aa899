//! CLI-level tests of `ocipack image` and `ocipack platform`: golden digests, determinism
//! under perturbation, round trips through independent tar readers, bad input.
#![allow(clippy::type_complexity)]

use crate::common;

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::layouts::{CREATED, image_command};
use common::{assert_exit, index_digest, ocipack, run, run_bounded, snapshot};

/// A small tree exercising every entry kind ocipack stores, with explicit modes so that
/// the umask of whoever runs the test cannot matter.
fn make_tree(root: &Path, reverse: bool) {
    let mut steps: Vec<Box<dyn Fn(&Path)>> = vec![
        Box::new(|r| {
            fs::create_dir_all(r.join("bin")).unwrap();
            fs::write(r.join("bin/hello"), b"#!/bin/sh\necho hello\n").unwrap();
            fs::set_permissions(r.join("bin/hello"), fs::Permissions::from_mode(0o4755)).unwrap();
        }),
        Box::new(|r| {
            fs::create_dir_all(r.join("etc")).unwrap();
            fs::write(r.join("etc/motd"), "x".repeat(3000)).unwrap();
            fs::set_permissions(r.join("etc/motd"), fs::Permissions::from_mode(0o600)).unwrap();
            fs::hard_link(r.join("etc/motd"), r.join("etc/motd.link")).unwrap();
        }),
        Box::new(|r| {
            fs::create_dir_all(r.join("tmp")).unwrap();
            fs::set_permissions(r.join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
            symlink("../bin/hello", r.join("tmp/hello-link")).unwrap();
            let long = format!("deep/{}/{}", "d".repeat(90), "f".repeat(60));
            fs::create_dir_all(r.join(&long).parent().unwrap()).unwrap();
            fs::write(r.join(&long), b"long name").unwrap();
            fs::set_permissions(r.join(&long), fs::Permissions::from_mode(0o644)).unwrap();
        }),
        Box::new(|r| {
            let st = Command::new("mkfifo")
                .arg(r.join("tmp/fifo"))
                .status()
                .unwrap();
            assert!(st.success());
            fs::set_permissions(r.join("tmp/fifo"), fs::Permissions::from_mode(0o644)).unwrap();
        }),
    ];
    if reverse {
        steps.reverse();
        // The fifo step needs tmp/ to exist first.
        fs::create_dir_all(root.join("tmp")).unwrap();
    }
    for s in steps {
        s(root);
    }
    for d in ["bin", "etc", "deep"] {
        fs::set_permissions(root.join(d), fs::Permissions::from_mode(0o755)).unwrap();
    }
    let long_dir = root.join("deep").join("d".repeat(90));
    fs::set_permissions(long_dir, fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(root.join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
}

/// [`image_command`]: `ocipack image --rootfs TREE … --created CREATED EXTRA -o OUT`.
fn build(tree: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    run_bounded(
        &mut image_command(tree, out, extra),
        std::time::Duration::from_secs(300),
    )
}

/// Golden digests: a dependency upgrade (libdeflate, libzstd, serde_json) or any change to
/// the tar format that alters a single byte fails here, loudly. Changing these values is a
/// format change: announce it (docs/reference/formats.md, "Compatibility promise") and regenerate the example.
/// (The gzip value changed deliberately when the encoder moved from zlib-rs to libdeflate.)
#[test]
fn golden_digests_for_each_compression() {
    let t = tempfile::tempdir().unwrap();
    let tree = t.path().join("tree");
    make_tree(&tree, false);
    // 9 MiB of mixed text and noise: ten gzip pieces spliced into one stream, and more than
    // one libzstd multithreading job.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let big: Vec<u8> = (0..9 * 1024 * 1024)
        .map(|i: usize| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if (i >> 12).is_multiple_of(3) {
                x as u8
            } else {
                b"reproducible layers "[i % 20]
            }
        })
        .collect();
    fs::write(tree.join("etc/big"), &big).unwrap();
    fs::set_permissions(tree.join("etc/big"), fs::Permissions::from_mode(0o644)).unwrap();
    // zstd at level 19 too: its 8 MiB jobs (libzstd's default there is 32 MiB) are part of
    // the format since they were fixed to bound memory.
    let golden = [
        (
            "none",
            "",
            "sha256:efd19a7d08e5391ebcde6fbfa73489604ab90156609178c38848bde30d8e7954",
        ),
        (
            "gzip",
            "",
            "sha256:06496d818b680d0dba28f31e60292653c4e092a161fc2eb11d3cc28a6c429468",
        ),
        (
            "zstd",
            "",
            "sha256:2830c1619b2d91128a6ef18b4079bc64d39c4fdfc42ef0c103e2c990f5f658a1",
        ),
        (
            "zstd",
            "19",
            "sha256:8ff26a42276b3018465dfe56c46f36beb70dfe2870cf624e10d0a235b6ef7d20",
        ),
    ];
    let mut got = Vec::new();
    for (compression, level, _) in golden {
        for jobs in ["1", "4"] {
            let out = t.path().join(format!("{compression}{level}-{jobs}"));
            let mut args = vec!["--compression", compression, "-j", jobs];
            if !level.is_empty() {
                args.extend(["--level", level]);
            }
            assert_exit(&build(&tree, &out, &args), 0);
            got.push((compression, index_digest(&out)));
        }
    }
    let got: Vec<_> = got
        .chunks(2)
        .map(|p| {
            assert_eq!(p[0], p[1], "-j 1 and -j 4 differ");
            p[0].clone()
        })
        .collect();
    for ((c, _, want), (_, have)) in golden.iter().zip(&got) {
        assert_eq!(
            have, want,
            "{c}: golden manifest digest changed (all: {got:?})"
        );
    }
}

/// The golden digest of a `--tar` input whose owners are not root's, as a Debian root
/// filesystem holds them (`/etc/shadow` group 42, setgid-shadow `unix_chkpwd`, setgid-mail
/// `/var/mail`, `65534:65534`, user and group names): a tar's numeric owners are kept by
/// default (names are not). Pinned when tars stopped being made 0:0, which changed the
/// bytes of such builds deliberately (README, "This release keeps a tar's owners").
#[test]
fn golden_digest_of_a_tar_with_owners() {
    let t = tempfile::tempdir().unwrap();
    let mut b = tar::Builder::new(Vec::new());
    for (name, kind, mode, uid, gid) in [
        ("etc/", tar::EntryType::Directory, 0o755, 0, 0),
        ("etc/shadow", tar::EntryType::Regular, 0o640, 0, 42),
        (
            "home/nobody/",
            tar::EntryType::Directory,
            0o755,
            65534,
            65534,
        ),
        (
            "home/nobody/.profile",
            tar::EntryType::Regular,
            0o644,
            65534,
            65534,
        ),
        ("usr/bin/passwd", tar::EntryType::Regular, 0o4755, 0, 0),
        (
            "usr/sbin/unix_chkpwd",
            tar::EntryType::Regular,
            0o2755,
            0,
            42,
        ),
        ("var/mail/", tar::EntryType::Directory, 0o2775, 0, 8),
    ] {
        let mut h = tar::Header::new_ustar();
        h.set_path(name).unwrap();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(uid);
        h.set_gid(gid);
        h.set_username("user").unwrap();
        h.set_groupname("group").unwrap();
        h.set_mtime(1_600_000_000);
        let data = if kind == tar::EntryType::Regular {
            name.as_bytes()
        } else {
            b""
        };
        h.set_size(data.len() as u64);
        h.set_cksum();
        b.append(&h, data).unwrap();
    }
    let input = t.path().join("rootfs.tar");
    fs::write(&input, b.into_inner().unwrap()).unwrap();
    let mut got = Vec::new();
    for jobs in ["1", "4"] {
        let out = t.path().join(jobs);
        let o = run(&[
            "image",
            "--tar",
            input.to_str().unwrap(),
            "--arch",
            "amd64",
            "--cmd",
            "/bin/sh",
            "--created",
            CREATED,
            "-j",
            jobs,
            "-o",
            out.to_str().unwrap(),
        ]);
        assert_exit(&o, 0);
        got.push(index_digest(&out));
        // What the digest stands for, read by GNU tar: every owner and bit of the input.
        let l = gnu_tar_listing(&out.join("rootfs.tar.gz"));
        let owners: Vec<String> = l
            .iter()
            .map(|e| {
                let f: Vec<&str> = e.split(' ').collect();
                format!("{} {} {}", f[0], f[1], f[5])
            })
            .collect();
        assert_eq!(
            owners,
            [
                "drwxr-xr-x 0/0 etc/",
                "-rw-r----- 0/42 etc/shadow",
                "drwxr-xr-x 0/0 home/",
                "drwxr-xr-x 65534/65534 home/nobody/",
                "-rw-r--r-- 65534/65534 home/nobody/.profile",
                "drwxr-xr-x 0/0 usr/",
                "drwxr-xr-x 0/0 usr/bin/",
                "-rwsr-xr-x 0/0 usr/bin/passwd",
                "drwxr-xr-x 0/0 usr/sbin/",
                "-rwxr-sr-x 0/42 usr/sbin/unix_chkpwd",
                "drwxr-xr-x 0/0 var/",
                "drwxrwsr-x 0/8 var/mail/",
            ]
        );
    }
    assert_eq!(got[0], got[1], "-j 1 and -j 4 differ");
    assert_eq!(
        got[0], "sha256:374b58c112419b9b234e5d8b8f990d3066d69453343f0ae14d88266363f5474e",
        "golden manifest digest of a tar with owners changed"
    );
}

#[test]
fn same_bytes_whatever_umask_tz_locale_order_path_mtimes_and_jobs() {
    let t = tempfile::tempdir().unwrap();
    let tree_a = t.path().join("a/tree");
    make_tree(&tree_a, false);
    let ref_out = t.path().join("ref");
    assert_exit(&build(&tree_a, &ref_out, &["-j", "1"]), 0);
    let reference = snapshot(&ref_out);

    // Another path, created in another order, with mtimes touched after `created`.
    let tree_b = t.path().join("elsewhere/deeper/tree");
    make_tree(&tree_b, true);
    let st = Command::new("touch")
        .arg("-d")
        .arg("2030-01-01")
        .arg(tree_b.join("etc/motd"))
        .status()
        .unwrap();
    assert!(st.success());

    let bin = env!("CARGO_BIN_EXE_ocipack");
    let cases: [(&str, &Path, &[(&str, &str)], &str); 4] = [
        (
            "umask 077",
            &tree_a,
            &[("TZ", "Asia/Kathmandu")],
            "umask 077",
        ),
        (
            "umask 000, other tree",
            &tree_b,
            &[("LC_ALL", "tr_TR.UTF-8"), ("LANG", "tr_TR.UTF-8")],
            "umask 000",
        ),
        (
            "jobs 8",
            &tree_b,
            &[("TZ", "America/St_Johns")],
            "umask 022",
        ),
        ("jobs 3", &tree_a, &[], "umask 027"),
    ];
    for (i, (what, tree, env, umask)) in cases.iter().enumerate() {
        let out = t.path().join(format!("out{i}"));
        let jobs = if what.starts_with("jobs") {
            &what[5..]
        } else {
            "2"
        };
        let script = format!(
            "{umask}; exec \"$0\" image --rootfs \"$1\" --arch amd64 --cmd /bin/hello --created {CREATED} -j {jobs} -o \"$2\""
        );
        let mut c = Command::new("sh");
        c.args([
            "-c",
            &script,
            bin,
            tree.to_str().unwrap(),
            out.to_str().unwrap(),
        ]);
        c.env_remove("SOURCE_DATE_EPOCH");
        for (k, v) in env.iter() {
            c.env(k, v);
        }
        let o = c.output().unwrap();
        assert_exit(&o, 0);
        assert_eq!(snapshot(&out), reference, "{what}: layout differs");
    }
}

#[test]
fn same_bytes_for_another_user() {
    if !common::require_tool("setpriv") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    fs::set_permissions(t.path(), fs::Permissions::from_mode(0o777)).unwrap();
    let tree = t.path().join("tree");
    make_tree(&tree, false);
    // Let the other user read the tree (setuid and 0600 bits are what we store, so make
    // the 0600 file world-readable in a copy for this test only).
    fs::set_permissions(tree.join("etc/motd"), fs::Permissions::from_mode(0o644)).unwrap();
    let ref_out = t.path().join("ref");
    assert_exit(&build(&tree, &ref_out, &[]), 0);
    let out = t.path().join("nobody");
    let o = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            env!("CARGO_BIN_EXE_ocipack"),
        ])
        .args([
            "image",
            "--rootfs",
            tree.to_str().unwrap(),
            "--arch",
            "amd64",
            "--cmd",
            "/bin/hello",
        ])
        .args(["--created", CREATED, "-o", out.to_str().unwrap()])
        .env_remove("SOURCE_DATE_EPOCH")
        .output()
        .unwrap();
    assert_exit(&o, 0);
    assert_eq!(snapshot(&out), snapshot(&ref_out));
}

/// Lists a layer with GNU tar: `mode uid/gid size mtime name [-> target | link to target]`.
fn gnu_tar_listing(layer: &Path) -> Vec<String> {
    let o = Command::new("tar")
        .args(["--numeric-owner", "--full-time", "-tvf"])
        .arg(layer)
        .env("TZ", "UTC")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

#[test]
fn layer_round_trips_through_gnu_tar_and_the_tar_crate() {
    let t = tempfile::tempdir().unwrap();
    let tree = t.path().join("tree");
    make_tree(&tree, false);
    let out = t.path().join("out");
    assert_exit(&build(&tree, &out, &["--compression", "none"]), 0);
    let layer = out.join("rootfs.tar");

    let long = format!("deep/{}/{}", "d".repeat(90), "f".repeat(60));
    let listing = gnu_tar_listing(&layer);
    let expect = vec![
        "drwxr-xr-x 0/0 0 2025-01-21 23:32:32 bin/".to_string(),
        "-rwsr-xr-x 0/0 21 2025-01-21 23:32:32 bin/hello".to_string(),
        "drwxr-xr-x 0/0 0 2025-01-21 23:32:32 deep/".to_string(),
        format!(
            "drwxr-xr-x 0/0 0 2025-01-21 23:32:32 deep/{}/",
            "d".repeat(90)
        ),
        format!("-rw-r--r-- 0/0 9 2025-01-21 23:32:32 {long}"),
        "drwxr-xr-x 0/0 0 2025-01-21 23:32:32 etc/".to_string(),
        "-rw------- 0/0 3000 2025-01-21 23:32:32 etc/motd".to_string(),
        "hrw------- 0/0 0 2025-01-21 23:32:32 etc/motd.link link to etc/motd".to_string(),
        "drwxrwxrwt 0/0 0 2025-01-21 23:32:32 tmp/".to_string(),
        "prw-r--r-- 0/0 0 2025-01-21 23:32:32 tmp/fifo".to_string(),
        "lrwxrwxrwx 0/0 0 2025-01-21 23:32:32 tmp/hello-link -> ../bin/hello".to_string(),
    ];
    assert_eq!(listing, expect);

    // Extract with GNU tar and compare with the source tree.
    let x = t.path().join("x");
    fs::create_dir(&x).unwrap();
    let st = Command::new("tar")
        .args(["-xpf"])
        .arg(&layer)
        .arg("-C")
        .arg(&x)
        .status()
        .unwrap();
    assert!(st.success());
    for rel in ["bin/hello", "etc/motd", long.as_str()] {
        assert_eq!(
            fs::read(x.join(rel)).unwrap(),
            fs::read(tree.join(rel)).unwrap(),
            "{rel}"
        );
        let (a, b) = (
            fs::metadata(x.join(rel)).unwrap(),
            fs::metadata(tree.join(rel)).unwrap(),
        );
        assert_eq!(
            a.permissions().mode() & 0o7777,
            b.permissions().mode() & 0o7777,
            "{rel}"
        );
    }
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        fs::metadata(x.join("etc/motd")).unwrap().ino(),
        fs::metadata(x.join("etc/motd.link")).unwrap().ino(),
        "hard link lost"
    );
    assert_eq!(
        fs::read_link(x.join("tmp/hello-link")).unwrap(),
        PathBuf::from("../bin/hello")
    );

    // The tar crate agrees on names and order, and sees no user/group names.
    let bytes = fs::read(&layer).unwrap();
    let mut ar = tar::Archive::new(&bytes[..]);
    let mut names = Vec::new();
    for e in ar.entries().unwrap() {
        let e = e.unwrap();
        let h = e.header();
        assert_eq!(h.username_bytes().unwrap_or_default(), b"");
        assert_eq!(h.groupname_bytes().unwrap_or_default(), b"");
        names.push(e.path_bytes().into_owned());
    }
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "entries are sorted by path bytes");
}

#[test]
fn gzip_and_zstd_layers_decompress_to_the_diff_id() {
    let t = tempfile::tempdir().unwrap();
    let tree = t.path().join("tree");
    make_tree(&tree, false);
    let plain = t.path().join("none");
    assert_exit(&build(&tree, &plain, &["--compression", "none"]), 0);
    let tar_bytes = fs::read(plain.join("rootfs.tar")).unwrap();
    for (c, file, tool) in [
        ("gzip", "rootfs.tar.gz", "gzip"),
        ("zstd", "rootfs.tar.zst", "zstd"),
    ] {
        let out = t.path().join(c);
        assert_exit(&build(&tree, &out, &["--compression", c]), 0);
        // Through stdin: the readable name is a symlink, which the zstd tool refuses to follow.
        let o = Command::new(tool)
            .arg("-dc")
            .stdin(fs::File::open(out.join(file)).unwrap())
            .output()
            .unwrap();
        assert!(o.status.success(), "{tool} -d failed");
        assert_eq!(
            o.stdout, tar_bytes,
            "{c} layer decompresses to the same tar"
        );
        let cfg: serde_json::Value =
            serde_json::from_slice(&fs::read(out.join("image-config.json")).unwrap()).unwrap();
        let diff_id = cfg["rootfs"]["diff_ids"][0].as_str().unwrap();
        assert_eq!(diff_id, common::oci::sha256(&tar_bytes));
        // gzip header: no name, mtime 0, OS 255.
        if c == "gzip" {
            let gz = fs::read(out.join(file)).unwrap();
            assert_eq!(&gz[..10], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255]);
        }
    }
}

#[test]
fn clamp_and_fixed_mtimes() {
    let t = tempfile::tempdir().unwrap();
    let tree = t.path().join("tree");
    fs::create_dir(&tree).unwrap();
    fs::write(tree.join("old"), b"o").unwrap();
    fs::write(tree.join("new"), b"n").unwrap();
    assert!(
        Command::new("touch")
            .args(["-d", "2001-02-03T04:05:06Z"])
            .arg(tree.join("old"))
            .status()
            .unwrap()
            .success()
    );
    for (mode, old_time) in [
        ("clamp", "2001-02-03 04:05:06"),
        ("fixed", "2025-01-21 23:32:32"),
    ] {
        let out = t.path().join(mode);
        assert_exit(
            &build(&tree, &out, &["--compression", "none", "--mtime", mode]),
            0,
        );
        let l = gnu_tar_listing(&out.join("rootfs.tar"));
        assert!(
            l.iter().any(|e| e.ends_with(&format!("{old_time} old"))),
            "{mode}: {l:?}"
        );
        assert!(
            l.iter().any(|e| e.ends_with("2025-01-21 23:32:32 new")),
            "{mode}: {l:?}"
        );
    }
}

#[test]
fn owners_dropped_unless_preserved() {
    let t = tempfile::tempdir().unwrap();
    let tree = t.path().join("tree");
    fs::create_dir(&tree).unwrap();
    fs::write(tree.join("f"), b"x").unwrap();
    rustix::fs::chown(
        tree.join("f"),
        Some(rustix::fs::Uid::from_raw(1234)),
        Some(rustix::fs::Gid::from_raw(5678)),
    )
    .unwrap();
    for (extra, owner) in [(&[][..], "0/0"), (&["--preserve-owners"][..], "1234/5678")] {
        let out = t.path().join(owner.replace('/', "-"));
        let mut args = vec!["--compression", "none"];
        args.extend_from_slice(extra);
        assert_exit(&build(&tree, &out, &args), 0);
        let l = gnu_tar_listing(&out.join("rootfs.tar"));
        assert!(l[0].starts_with(&format!("-rw-r--r-- {owner} ")), "{l:?}");
    }
}

#[test]
fn socket_skipped_with_warning_and_device_needs_flag() {
    let t = tempfile::tempdir().unwrap();
    let tree = t.path().join("tree");
    fs::create_dir(&tree).unwrap();
    fs::write(tree.join("keep"), b"k").unwrap();
    let _sock = std::os::unix::net::UnixListener::bind(tree.join("sock")).unwrap();
    let null_ok = Command::new("mknod")
        .arg(tree.join("null"))
        .args(["c", "1", "3"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if null_ok {
        fs::set_permissions(tree.join("null"), fs::Permissions::from_mode(0o666)).unwrap();
    }
    let out = t.path().join("out");
    let o = build(&tree, &out, &["--compression", "none"]);
    assert_exit(&o, 0);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("sock") && stderr.contains("socket"),
        "{stderr}"
    );
    let l = gnu_tar_listing(&out.join("rootfs.tar"));
    assert!(!l.iter().any(|e| e.ends_with(" sock")), "{l:?}");
    if null_ok {
        assert!(stderr.contains("--devices"), "{stderr}");
        assert!(!l.iter().any(|e| e.ends_with(" null")), "{l:?}");
        let out2 = t.path().join("out2");
        assert_exit(
            &build(&tree, &out2, &["--compression", "none", "--devices"]),
            0,
        );
        let l = gnu_tar_listing(&out2.join("rootfs.tar"));
        assert!(
            l.iter()
                .any(|e| e.starts_with("crw-rw-rw- 0/0 1,3 ") && e.ends_with(" null")),
            "{l:?}"
        );
    }
}

#[test]
fn tar_input_is_normalised_and_compressed_inputs_are_read() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    fs::create_dir_all(src.join("usr/bin")).unwrap();
    fs::write(src.join("usr/bin/tool"), b"tool").unwrap();
    fs::write(src.join("a"), b"a").unwrap();
    // An unsorted tar with user names, owners and "./" prefixes, as a careless script makes.
    let plain = t.path().join("in.tar");
    let st = Command::new("tar")
        .args(["--owner=alice:1000", "--group=staff:50", "-cf"])
        .arg(&plain)
        .arg("-C")
        .arg(&src)
        .args(["./usr/bin/tool", "./a", "./usr"])
        .status()
        .unwrap();
    assert!(!st.success() || plain.exists());
    // "./usr" after "./usr/bin/tool" duplicates the file: that is refused as ambiguous.
    let out = t.path().join("out");
    let o = run(&[
        "image",
        "--tar",
        plain.to_str().unwrap(),
        "--arch",
        "amd64",
        "--created",
        CREATED,
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_exit(&o, 2);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("given twice"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!out.exists(), "nothing written on error");

    let st = Command::new("tar")
        .args(["--owner=alice:1000", "--group=staff:50", "-cf"])
        .arg(&plain)
        .arg("-C")
        .arg(&src)
        .args(["./usr/bin/tool", "./a"])
        .status()
        .unwrap();
    assert!(st.success());
    let mut layouts = Vec::new();
    for (name, cmd) in [
        ("in.tar", None),
        ("in.tar.gz", Some("gzip")),
        ("in.tar.zst", Some("zstd")),
    ] {
        let input = t.path().join(name);
        if let Some(tool) = cmd {
            let o = Command::new(tool).arg("-c").arg(&plain).output().unwrap();
            assert!(o.status.success());
            fs::write(&input, o.stdout).unwrap();
        }
        let out = t.path().join(format!("out-{name}"));
        let o = run(&[
            "image",
            "--tar",
            input.to_str().unwrap(),
            "--arch",
            "amd64",
            "--created",
            CREATED,
            "--compression",
            "none",
            "-o",
            out.to_str().unwrap(),
        ]);
        assert_exit(&o, 0);
        layouts.push(snapshot(&out));
        let l = gnu_tar_listing(&out.join("rootfs.tar"));
        let names: Vec<&str> = l.iter().map(|e| e.rsplit(' ').next().unwrap()).collect();
        assert_eq!(names, ["a", "usr/", "usr/bin/", "usr/bin/tool"]);
        // A tar's numeric owners are kept (its user and group names are not); the implicit
        // parents are 0:0.
        let owners: Vec<&str> = l.iter().map(|e| e.split(' ').nth(1).unwrap()).collect();
        assert_eq!(owners, ["1000/50", "0/0", "0/0", "1000/50"], "{l:?}");
    }
    assert!(
        layouts.windows(2).all(|w| w[0] == w[1]),
        "compressed inputs give the same layout"
    );
}

#[test]
fn hostile_tar_entries_are_refused() {
    let t = tempfile::tempdir().unwrap();
    for (name, entry_name) in [("abs", "/etc/passwd"), ("dotdot", "a/../../etc/passwd")] {
        // Write the tar by hand: GNU tar would strip these names itself.
        let mut h = tar::Header::new_ustar();
        h.as_old_mut().name[..entry_name.len()].copy_from_slice(entry_name.as_bytes());
        h.set_size(1);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        let mut bytes = h.as_bytes().to_vec();
        bytes.extend_from_slice(b"x");
        bytes.resize(512 * 4, 0);
        let input = t.path().join(format!("{name}.tar"));
        fs::write(&input, bytes).unwrap();
        let out = t.path().join(name);
        let o = run(&[
            "image",
            "--tar",
            input.to_str().unwrap(),
            "--arch",
            "amd64",
            "--created",
            CREATED,
            "-o",
            out.to_str().unwrap(),
        ]);
        assert_exit(&o, 2);
        let e = String::from_utf8_lossy(&o.stderr);
        assert!(
            e.contains(entry_name) && (e.contains("absolute") || e.contains("'..'")),
            "{e}"
        );
        assert!(!out.exists());
    }
}

#[test]
fn file_inputs_modes_and_parents() {
    let t = tempfile::tempdir().unwrap();
    let f = t.path().join("prog");
    fs::write(&f, b"\x7fELF").unwrap();
    fs::set_permissions(&f, fs::Permissions::from_mode(0o700)).unwrap();
    let g = t.path().join("data");
    fs::write(&g, b"data").unwrap();
    fs::set_permissions(&g, fs::Permissions::from_mode(0o664)).unwrap();
    let out = t.path().join("out");
    let o = run(&[
        "image",
        "--file",
        &format!("{}:/usr/local/bin/prog", f.display()),
        "--file",
        &format!("{}:/etc/data", g.display()),
        "--file",
        &format!("{}:/sbin/x:4711", g.display()),
        "--arch",
        "arm64v8",
        "--created",
        "@1700000000",
        "--compression",
        "none",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_exit(&o, 0);
    let l = gnu_tar_listing(&out.join("rootfs.tar"));
    let modes: Vec<(String, String)> = l
        .iter()
        .map(|e| {
            (
                e.split(' ').next().unwrap().to_string(),
                e.rsplit(' ').next().unwrap().to_string(),
            )
        })
        .collect();
    let want = [
        ("drwxr-xr-x", "etc/"),
        ("-rw-r--r--", "etc/data"),
        ("drwxr-xr-x", "sbin/"),
        ("-rws--x--x", "sbin/x"),
        ("drwxr-xr-x", "usr/"),
        ("drwxr-xr-x", "usr/local/"),
        ("drwxr-xr-x", "usr/local/bin/"),
        ("-rwxr-xr-x", "usr/local/bin/prog"),
    ];
    assert_eq!(modes, want.map(|(a, b)| (a.to_string(), b.to_string())));
    let cfg: serde_json::Value =
        serde_json::from_slice(&fs::read(out.join("image-config.json")).unwrap()).unwrap();
    assert_eq!(cfg["architecture"], "arm64");
    assert_eq!(cfg["variant"], "v8");
    assert_eq!(cfg["created"], "2023-11-14T22:13:20Z");
}

#[test]
fn config_fields_and_index_annotations() {
    let t = tempfile::tempdir().unwrap();
    let f = t.path().join("prog");
    fs::write(&f, b"x").unwrap();
    let out = t.path().join("out");
    let o = run(&[
        "image",
        "--file",
        &format!("{}:/prog:0755", f.display()),
        "--platform",
        "linux/riscv64",
        "--entrypoint",
        "/prog",
        "--entrypoint",
        "--flag",
        "--cmd",
        "a b",
        "--cmd",
        "",
        "--env",
        "FOO=bar=baz",
        "--workdir",
        "/srv",
        "--user",
        "1000:1000",
        "--label",
        "z=1",
        "--label",
        "a=2",
        "--expose",
        "8080",
        "--expose",
        "53/udp",
        "--volume",
        "/data",
        "--stop-signal",
        "SIGINT",
        "--created-by",
        "ocipack test",
        "--ref-name",
        "example:1",
        "--annotation",
        "k=v",
        "--created",
        CREATED,
        "--descriptor-file",
        "descriptor.json",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_exit(&o, 0);
    let cfg: serde_json::Value =
        serde_json::from_slice(&fs::read(out.join("image-config.json")).unwrap()).unwrap();
    let c = &cfg["config"];
    assert_eq!(c["Entrypoint"], serde_json::json!(["/prog", "--flag"]));
    assert_eq!(c["Cmd"], serde_json::json!(["a b", ""]));
    assert_eq!(
        c["Env"],
        serde_json::json!([
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "FOO=bar=baz"
        ])
    );
    assert_eq!(c["WorkingDir"], "/srv");
    assert_eq!(c["User"], "1000:1000");
    assert_eq!(c["Labels"], serde_json::json!({"a": "2", "z": "1"}));
    assert_eq!(
        c["ExposedPorts"],
        serde_json::json!({"53/udp": {}, "8080/tcp": {}})
    );
    assert_eq!(c["Volumes"], serde_json::json!({"/data": {}}));
    assert_eq!(c["StopSignal"], "SIGINT");
    assert_eq!(
        cfg["history"],
        serde_json::json!([{"created": CREATED, "created_by": "ocipack test"}])
    );
    assert_eq!(cfg["os"], "linux");
    assert_eq!(cfg["architecture"], "riscv64");
    assert!(cfg.get("variant").is_none());

    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(out.join("index.json")).unwrap()).unwrap();
    let entry = &index["manifests"][0];
    assert_eq!(
        entry["annotations"],
        serde_json::json!({"io.containerd.image.name": "example:1", "org.opencontainers.image.ref.name": "example:1"})
    );
    assert_eq!(index["manifests"].as_array().unwrap().len(), 1);
    let desc: serde_json::Value =
        serde_json::from_slice(&fs::read(out.join("descriptor.json")).unwrap()).unwrap();
    assert_eq!(&desc, entry);
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(out.join("image-manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["annotations"], serde_json::json!({"k": "v"}));
}

#[test]
fn no_annotations_by_default_and_canonical_json() {
    let t = tempfile::tempdir().unwrap();
    let f = t.path().join("prog");
    fs::write(&f, b"x").unwrap();
    let out = t.path().join("out");
    assert_exit(
        &run(&[
            "image",
            "--file",
            &format!("{}:/prog", f.display()),
            "--arch",
            "s390x",
            "--created",
            CREATED,
            "-o",
            out.to_str().unwrap(),
        ]),
        0,
    );
    for name in [
        "index.json",
        "image-config.json",
        "image-manifest.json",
        "oci-layout",
    ] {
        let bytes = fs::read(out.join(name)).unwrap();
        assert!(
            !String::from_utf8_lossy(&bytes).contains("annotations"),
            "{name}"
        );
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(
            serde_json::to_vec(&v).unwrap(),
            bytes,
            "{name} is compact with sorted keys"
        );
        assert_ne!(bytes.last(), Some(&b'\n'));
    }
    assert_eq!(
        fs::read(out.join("oci-layout")).unwrap(),
        br#"{"imageLayoutVersion":"1.0.0"}"#
    );
}

#[test]
fn name_styles_and_stray_files_removed() {
    let t = tempfile::tempdir().unwrap();
    let f = t.path().join("prog");
    fs::write(&f, b"x").unwrap();
    let out = t.path().join("out");
    let b = |names: &str| {
        run(&[
            "image",
            "--file",
            &format!("{}:/prog", f.display()),
            "--arch",
            "amd64",
            "--created",
            CREATED,
            "--names",
            names,
            "-o",
            out.to_str().unwrap(),
        ])
    };
    assert_exit(&b("symlinks"), 0);
    let digest = index_digest(&out);
    let blob = format!("blobs/sha256/{}", &digest[7..]);
    assert!(fs::symlink_metadata(out.join(&blob)).unwrap().is_file());
    assert_eq!(
        fs::read_link(out.join("image-manifest.json")).unwrap(),
        PathBuf::from(&blob)
    );
    fs::write(out.join("stray"), b"left over").unwrap();
    fs::write(out.join("blobs/sha256/stray"), b"left over").unwrap();

    assert_exit(&b("files"), 0);
    assert!(!out.join("stray").exists() && !out.join("blobs/sha256/stray").exists());
    assert!(
        fs::symlink_metadata(out.join("image-manifest.json"))
            .unwrap()
            .is_file()
    );
    assert_eq!(
        fs::read_link(out.join(&blob)).unwrap(),
        PathBuf::from("../../image-manifest.json")
    );
    assert_eq!(
        index_digest(&out),
        digest,
        "name style does not change the image"
    );

    assert_exit(&b("none"), 0);
    let mut names: Vec<String> = fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["blobs", "index.json", "oci-layout"]);
    assert_eq!(fs::read_dir(out.join("blobs/sha256")).unwrap().count(), 3);
}

#[test]
fn bad_input_is_exit_2_names_the_problem_and_leaves_output_untouched() {
    let t = tempfile::tempdir().unwrap();
    let f = t.path().join("prog");
    fs::write(&f, b"x").unwrap();
    let out = t.path().join("out");
    let fs_ = format!("{}:/prog", f.display());
    assert_exit(
        &run(&[
            "image",
            "--file",
            &fs_,
            "--arch",
            "amd64",
            "--created",
            CREATED,
            "-o",
            out.to_str().unwrap(),
        ]),
        0,
    );
    let before = snapshot(&out);
    let tree = t.path().join("tree");
    fs::create_dir(&tree).unwrap();
    let inside = tree.join("out");
    let missing = format!("{}/missing:/x", t.path().display());
    let rel = format!("{}:relative/x", f.display());
    let dotdot = format!("{}:/a/../x", f.display());
    let o = out.to_str().unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![
                "--file",
                &fs_,
                "--arch",
                "x86_64",
                "--created",
                CREATED,
                "-o",
                o,
            ],
            "i386",
        ),
        (
            vec!["--file", &fs_, "--created", CREATED, "-o", o],
            "no platform",
        ),
        (
            vec!["--file", &fs_, "--arch", "amd64", "-o", o],
            "SOURCE_DATE_EPOCH",
        ),
        (
            vec![
                "--file",
                &fs_,
                "--arch",
                "amd64",
                "--created",
                "yesterday",
                "-o",
                o,
            ],
            "RFC 3339",
        ),
        (
            vec![
                "--file",
                &missing,
                "--arch",
                "amd64",
                "--created",
                CREATED,
                "-o",
                o,
            ],
            "missing",
        ),
        (
            vec![
                "--file",
                &rel,
                "--arch",
                "amd64",
                "--created",
                CREATED,
                "-o",
                o,
            ],
            "absolute",
        ),
        (
            vec![
                "--file",
                &dotdot,
                "--arch",
                "amd64",
                "--created",
                CREATED,
                "-o",
                o,
            ],
            "..",
        ),
        (
            vec![
                "--rootfs",
                tree.to_str().unwrap(),
                "--arch",
                "amd64",
                "--created",
                CREATED,
                "-o",
                inside.to_str().unwrap(),
            ],
            "inside the input tree",
        ),
        (
            vec![
                "--file",
                &fs_,
                "--arch",
                "amd64",
                "--created",
                CREATED,
                "--compression",
                "zstd",
                "--level",
                "42",
                "-o",
                o,
            ],
            "levels are 1 to 19",
        ),
        (
            vec![
                "--file",
                &fs_,
                "--arch",
                "amd64",
                "--created",
                CREATED,
                "--platform",
                "linux/amd64",
                "-o",
                o,
            ],
            "cannot be used with",
        ),
    ];
    for (args, needle) in cases {
        let mut full = vec!["image"];
        full.extend(args.iter());
        let r = run(&full);
        assert_exit(&r, 2);
        let e = String::from_utf8_lossy(&r.stderr);
        assert!(e.contains(needle), "{args:?}: expected {needle:?} in {e}");
        assert_eq!(
            e.trim_end().lines().count(),
            if needle == "cannot be used with" {
                e.trim_end().lines().count()
            } else {
                1
            },
            "one line: {e}"
        );
        assert_eq!(
            snapshot(&out),
            before,
            "{args:?} touched the existing output"
        );
    }
    // No staging directory is left behind.
    let leftovers: Vec<_> = fs::read_dir(t.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().contains("ocipack"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn refuses_to_replace_a_directory_that_is_not_a_layout() {
    let t = tempfile::tempdir().unwrap();
    let f = t.path().join("prog");
    fs::write(&f, b"x").unwrap();
    let home = t.path().join("precious");
    fs::create_dir(&home).unwrap();
    fs::write(home.join("thesis.tex"), b"years of work").unwrap();
    let r = run(&[
        "image",
        "--file",
        &format!("{}:/prog", f.display()),
        "--arch",
        "amd64",
        "--created",
        CREATED,
        "-o",
        home.to_str().unwrap(),
    ]);
    assert_exit(&r, 2);
    assert!(String::from_utf8_lossy(&r.stderr).contains("not an OCI layout"));
    assert_eq!(fs::read(home.join("thesis.tex")).unwrap(), b"years of work");
}

#[test]
fn source_date_epoch_is_used_when_created_is_absent() {
    let t = tempfile::tempdir().unwrap();
    let f = t.path().join("prog");
    fs::write(&f, b"x").unwrap();
    let out = t.path().join("out");
    let o = ocipack()
        .args([
            "image",
            "--file",
            &format!("{}:/prog", f.display()),
            "--arch",
            "amd64",
            "-o",
            out.to_str().unwrap(),
        ])
        .env("SOURCE_DATE_EPOCH", "1737502352")
        .output()
        .unwrap();
    assert_exit(&o, 0);
    let cfg: serde_json::Value =
        serde_json::from_slice(&fs::read(out.join("image-config.json")).unwrap()).unwrap();
    assert_eq!(cfg["created"], CREATED);

    // A bad --created is named as the user wrote it (a project's `created = "git"` is no
    // command-line value), with exit 2 and nothing written.
    let bad = t.path().join("bad");
    let o = run(&[
        "image",
        "--file",
        &format!("{}:/prog", f.display()),
        "--arch",
        "amd64",
        "--created",
        "git",
        "-o",
        bad.to_str().unwrap(),
    ]);
    assert_exit(&o, 2);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("error: --created: timestamp \"git\""),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!bad.exists());
}

#[test]
fn platform_command_prints_bashbrew_mapping() {
    let o = run(&["platform", "arm64v8"]);
    assert_exit(&o, 0);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "{\"architecture\":\"arm64\",\"os\":\"linux\",\"variant\":\"v8\"}\n"
    );
    let o = run(&["platform", "i386", "--short"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "linux/386\n");
    let o = run(&["platform", "armhf"]);
    assert_exit(&o, 2);
    assert!(String::from_utf8_lossy(&o.stderr).contains("arm32v7"));
}

#[test]
fn skopeo_and_umoci_accept_the_output() {
    if !common::require_tool("skopeo") || !common::require_tool("umoci") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let tree = t.path().join("tree");
    make_tree(&tree, false);
    let out = t.path().join("out");
    assert_exit(&build(&tree, &out, &["--ref-name", "latest"]), 0);
    let o = Command::new("skopeo")
        .args(["inspect", "--raw"])
        .arg(format!("oci:{}:latest", out.display()))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(o.stdout, fs::read(out.join("image-manifest.json")).unwrap());

    let bundle = t.path().join("bundle");
    let o = Command::new("umoci")
        .args(["unpack", "--rootless", "--image"])
        .arg(format!("{}:latest", out.display()))
        .arg(&bundle)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let rootfs = bundle.join("rootfs");
    assert_eq!(
        fs::read(rootfs.join("bin/hello")).unwrap(),
        fs::read(tree.join("bin/hello")).unwrap()
    );
    assert_eq!(
        fs::read_link(rootfs.join("tmp/hello-link")).unwrap(),
        PathBuf::from("../bin/hello")
    );
    assert_eq!(
        fs::read(rootfs.join("etc/motd")).unwrap(),
        fs::read(tree.join("etc/motd")).unwrap()
    );
}

#[test]
fn hard_links_in_an_input_tar_point_to_the_first_name_in_stream_order() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("z-original"), b"shared").unwrap();
    fs::hard_link(src.join("z-original"), src.join("a-link")).unwrap();
    let input = t.path().join("in.tar");
    // GNU tar stores z-original first and a-link as a link to it; sorted, a-link comes first.
    let st = Command::new("tar")
        .arg("-cf")
        .arg(&input)
        .arg("-C")
        .arg(&src)
        .args(["z-original", "a-link"])
        .status()
        .unwrap();
    assert!(st.success());
    let out = t.path().join("out");
    assert_exit(
        &run(&[
            "image",
            "--tar",
            input.to_str().unwrap(),
            "--arch",
            "amd64",
            "--created",
            CREATED,
            "--compression",
            "none",
            "-o",
            out.to_str().unwrap(),
        ]),
        0,
    );
    let l = gnu_tar_listing(&out.join("rootfs.tar"));
    assert!(
        l[0].starts_with("-rw") && l[0].ends_with(" 6 2025-01-21 23:32:32 a-link"),
        "{l:?}"
    );
    assert!(
        l[1].starts_with("hrw") && l[1].ends_with("z-original link to a-link"),
        "{l:?}"
    );
}

#[test]
fn xattrs_only_when_asked_for() {
    // A filesystem with user xattrs: the target directory (tmpfs may lack them).
    let t = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let tree = t.path().join("tree");
    fs::create_dir(&tree).unwrap();
    let f = tree.join("f");
    fs::write(&f, b"x").unwrap();
    if let Err(e) =
        rustix::fs::lsetxattr(&f, "user.ocipack", b"yes", rustix::fs::XattrFlags::empty())
    {
        return common::skip(&format!("this filesystem refuses user xattrs ({e})"));
    }
    let has_xattr = |layer: &Path| {
        let bytes = fs::read(layer).unwrap();
        let mut ar = tar::Archive::new(&bytes[..]);
        let mut found = false;
        for e in ar.entries().unwrap() {
            let mut e = e.unwrap();
            if let Some(exts) = e.pax_extensions().unwrap() {
                found |= exts.flatten().any(|x| {
                    x.key() == Ok("SCHILY.xattr.user.ocipack") && x.value_bytes() == b"yes"
                });
            }
        }
        found
    };
    let plain = t.path().join("plain");
    assert_exit(&build(&tree, &plain, &["--compression", "none"]), 0);
    assert!(!has_xattr(&plain.join("rootfs.tar")));
    let with = t.path().join("with");
    assert_exit(
        &build(&tree, &with, &["--compression", "none", "--xattrs"]),
        0,
    );
    assert!(has_xattr(&with.join("rootfs.tar")));
}

#[test]
fn git_archive_tarballs_are_accepted() {
    if !common::require_tool("git") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let repo = t.path().join("repo");
    fs::create_dir(&repo).unwrap();
    let git = |args: &[&str]| {
        let o = Command::new("git")
            .arg("-C")
            .arg(&repo)
            .args(args)
            .env("GIT_AUTHOR_DATE", "@1700000000 +0000")
            .env("GIT_COMMITTER_DATE", "@1700000000 +0000")
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        o.stdout
    };
    git(&["init", "-q"]);
    fs::write(repo.join("hello"), b"hi\n").unwrap();
    git(&["add", "hello"]);
    git(&[
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@t",
        "commit",
        "-qm",
        "x",
    ]);
    let archive = t.path().join("src.tar");
    fs::write(&archive, git(&["archive", "--format=tar", "HEAD"])).unwrap();
    let out = t.path().join("out");
    assert_exit(
        &run(&[
            "image",
            "--tar",
            archive.to_str().unwrap(),
            "--arch",
            "amd64",
            "--created",
            CREATED,
            "--compression",
            "none",
            "-o",
            out.to_str().unwrap(),
        ]),
        0,
    );
    let l = gnu_tar_listing(&out.join("rootfs.tar"));
    assert_eq!(l.len(), 1, "{l:?}");
    assert!(l[0].ends_with(" hello"), "{l:?}");
}

/// Issue 10: the encoder is checked while it runs — its output is decoded in the pipeline and
/// compared with the tar stream's digest — so an encoder bug fails the build instead of
/// publishing a layer that decodes to something else. The debug-build hook
/// `OCIPACK_TEST_FLIP_ENCODED_BYTE=N` flips byte N of the encoder's output, as a bug would.
#[test]
fn a_flipped_byte_in_the_encoders_output_fails_the_build_and_writes_nothing() {
    let t = tempfile::tempdir().unwrap();
    let tree = t.path().join("tree");
    fs::create_dir_all(&tree).unwrap();
    // Half text, half noise: the compressed stream is long enough to flip a byte in.
    let mut x = 7u32;
    let text: Vec<u8> = (0..600_000u32)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            if (i / 4096) % 2 == 0 {
                b"layer "[(i % 6) as usize]
            } else {
                x as u8
            }
        })
        .collect();
    fs::write(tree.join("data"), &text).unwrap();
    for (compression, at) in [("gzip", "5000"), ("zstd", "3000"), ("gzip", "20")] {
        let out = t.path().join(format!("out-{compression}-{at}"));
        let o = ocipack()
            .args(["image", "--rootfs"])
            .arg(&tree)
            .args([
                "--arch",
                "amd64",
                "--created",
                CREATED,
                "--compression",
                compression,
                "-o",
            ])
            .arg(&out)
            .env("OCIPACK_TEST_FLIP_ENCODED_BYTE", at)
            .output()
            .unwrap();
        assert_exit(&o, 1);
        let e = String::from_utf8_lossy(&o.stderr);
        assert!(
            e.contains(&format!("the {compression} encoder's output was checked")),
            "{compression} {at}: {e}"
        );
        assert!(!out.exists(), "{compression}: a layout was written");
        assert_eq!(
            fs::read_dir(t.path()).unwrap().count(),
            1,
            "{compression}: something was left beside OUT"
        );
    }
}

/// An output whose name is not UTF-8 (`lay\xff`) is checked by its own name, never by a
/// lossy one (`lay\u{FFFD}`): the directory of user data at `lay\xff` is refused even when
/// `lay\u{FFFD}` beside it is a layout, and a layout at `lay\xff` is rebuilt in place.
#[test]
fn an_output_named_in_bytes_that_are_not_utf8_is_checked_by_that_name() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let t = tempfile::tempdir().unwrap();
    let tree = t.path().join("tree");
    make_tree(&tree, false);
    let image = |out: &Path| {
        ocipack()
            .args(["image", "--rootfs"])
            .arg(&tree)
            .args(["--arch", "amd64", "--created", CREATED, "-o"])
            .arg(out)
            .output()
            .unwrap()
    };
    let lossy = t.path().join("lay\u{FFFD}");
    let raw = t.path().join(OsStr::from_bytes(b"lay\xff"));
    assert_exit(&image(&lossy), 0);
    fs::create_dir(&raw).unwrap();
    fs::write(raw.join("thesis.tex"), b"years of work").unwrap();

    let o = image(&raw);
    assert_exit(&o, 2);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("not an OCI layout"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(fs::read(raw.join("thesis.tex")).unwrap(), b"years of work");

    fs::remove_dir_all(&raw).unwrap();
    assert_exit(&image(&raw), 0);
    assert_eq!(snapshot(&raw), snapshot(&lossy));
    let before = fs::metadata(raw.join("index.json"))
        .unwrap()
        .modified()
        .unwrap();
    assert_exit(&image(&raw), 0);
    assert_eq!(
        fs::metadata(raw.join("index.json"))
            .unwrap()
            .modified()
            .unwrap(),
        before,
        "an unchanged rebuild of lay\\xff rewrote it"
    );
    assert_eq!(snapshot(&raw), snapshot(&lossy));
}

/// Modes of everything written, relative path → mode (the layout itself is "").
fn modes(dir: &Path) -> std::collections::BTreeMap<String, u32> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let m = fs::symlink_metadata(&d).unwrap();
        let rel = d.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
        out.insert(rel, m.permissions().mode() & 0o7777);
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let m = fs::symlink_metadata(&p).unwrap();
            if m.is_dir() {
                stack.push(p);
            } else if m.is_file() {
                let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
                out.insert(rel, m.permissions().mode() & 0o7777);
            }
        }
    }
    out
}

/// Under `umask 077` every file of the layout is 0644 and every directory 0755, the layer
/// blob (an `O_TMPFILE` file, whose creation mode the umask filters) included; on
/// filesystems without `O_TMPFILE` too. A blob left with another mode (by an older build)
/// is repaired by a rebuild; a layout that is right is not touched.
#[test]
fn under_umask_077_every_file_is_0644_and_a_rebuild_repairs_a_wrong_mode() {
    let t = tempfile::tempdir().unwrap();
    let tree = t.path().join("tree");
    make_tree(&tree, false);
    let image = |out: &Path, no_tmpfile: bool| {
        let mut c = Command::new("sh");
        c.args([
            "-c",
            "umask 077; exec \"$0\" image --rootfs \"$1\" --arch amd64 --created \"$2\" -o \"$3\"",
        ])
        .arg(env!("CARGO_BIN_EXE_ocipack"))
        .arg(&tree)
        .arg(CREATED)
        .arg(out)
        .env_remove("SOURCE_DATE_EPOCH");
        if no_tmpfile {
            c.env("OCIPACK_TEST_NO_TMPFILE", "1");
        }
        c.output().unwrap()
    };
    for no_tmpfile in [false, true] {
        let out = t.path().join(format!("out-{no_tmpfile}"));
        assert_exit(&image(&out, no_tmpfile), 0);
        let wrong: Vec<_> = modes(&out)
            .into_iter()
            .filter(|(p, m)| {
                let dir = fs::symlink_metadata(out.join(p)).unwrap().is_dir();
                *m != if dir { 0o755 } else { 0o644 }
            })
            .collect();
        assert!(wrong.is_empty(), "no O_TMPFILE: {no_tmpfile}: {wrong:?}");
    }

    let out = t.path().join("out-false");
    let layer = fs::canonicalize(out.join("rootfs.tar.gz")).unwrap();
    let good = modes(&out);
    // A correct layout is left as it is.
    let mtime = |p: &Path| fs::symlink_metadata(p).unwrap().modified().unwrap();
    let before = (mtime(&out), mtime(&layer));
    assert_exit(&image(&out, false), 0);
    assert_eq!(
        (mtime(&out), mtime(&layer)),
        before,
        "an unchanged build touched it"
    );
    // A wrong mode is repaired.
    fs::set_permissions(&layer, fs::Permissions::from_mode(0o600)).unwrap();
    fs::set_permissions(out.join("blobs"), fs::Permissions::from_mode(0o700)).unwrap();
    let bytes = snapshot(&out);
    assert_exit(&image(&out, false), 0);
    assert_eq!(modes(&out), good);
    assert_eq!(snapshot(&out), bytes);
}

/// A worker of the gzip encoder that panics fails the build with an internal error, exit
/// code 1, and writes nothing, whatever the thread count; before, the other workers kept
/// the results channel open and the build waited forever for the lost piece. The
/// debug-build hook `OCIPACK_TEST_FLIP_ENCODED_BYTE=panic` makes the first piece panic.
#[test]
fn a_panicking_gzip_worker_fails_the_build_instead_of_hanging() {
    let t = tempfile::tempdir().unwrap();
    let tree = t.path().join("tree");
    fs::create_dir_all(&tree).unwrap();
    let noise: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    fs::write(tree.join("data"), &noise).unwrap();
    for jobs in ["1", "2", "4"] {
        let out = t.path().join(format!("out-{jobs}"));
        let o = common::run_bounded(
            ocipack()
                .args(["image", "--rootfs"])
                .arg(&tree)
                .args(["--arch", "amd64", "--created", CREATED, "-j", jobs, "-o"])
                .arg(&out)
                .env("OCIPACK_TEST_FLIP_ENCODED_BYTE", "panic"),
            std::time::Duration::from_secs(60),
        );
        assert_exit(&o, 1);
        let e = String::from_utf8_lossy(&o.stderr);
        assert!(
            e.contains("internal error") && e.contains("the gzip encoder panicked"),
            "-j {jobs}: {e}"
        );
        assert!(!out.exists(), "-j {jobs}: a layout was written");
    }
    assert_eq!(
        fs::read_dir(t.path()).unwrap().count(),
        1,
        "left beside OUT"
    );
}

/// `Root::tempfile`'s fallback on filesystems without `O_TMPFILE` (a `--tar` input's
/// spool) is `.ocipack-tmp-<pid>-<n>`, unlinked at once; one left by a process killed in
/// between is swept by the next build beside it, like stale staging. A user's file of a
/// similar name stays.
#[test]
fn a_stale_tempfile_of_a_killed_build_is_swept() {
    let t = tempfile::tempdir().unwrap();
    let tree = t.path().join("tree");
    make_tree(&tree, false);
    let stale = t.path().join(".ocipack-tmp-4194304-0");
    let mine = t.path().join(".ocipack-tmp-notes");
    fs::write(&stale, b"spooled").unwrap();
    fs::write(&mine, b"mine").unwrap();
    assert_exit(&build(&tree, &t.path().join("out"), &[]), 0);
    assert!(!stale.exists(), "the stale tempfile was not swept");
    assert_eq!(fs::read(&mine).unwrap(), b"mine");
}

/// An xattr name that is not UTF-8 cannot be recorded as it is in a pax header: refused
/// (exit 2, naming the file), never silently changed.
#[test]
fn an_xattr_name_that_is_not_utf8_is_refused() {
    let t = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let tree = t.path().join("tree");
    fs::create_dir(&tree).unwrap();
    let f = tree.join("f");
    fs::write(&f, b"x").unwrap();
    if let Err(e) =
        rustix::fs::lsetxattr(&f, &b"user.\xff"[..], b"v", rustix::fs::XattrFlags::empty())
    {
        return common::skip(&format!("this filesystem refuses user xattrs ({e})"));
    }
    let out = t.path().join("out");
    let o = build(&tree, &out, &["--xattrs"]);
    assert_exit(&o, 2);
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("not UTF-8") && e.contains(r"user.\xff"), "{e}");
    assert!(!out.exists());
    assert_exit(&build(&tree, &out, &[]), 0);
}
