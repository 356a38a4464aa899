//! What the speed work (issue 18) must not break or undo: the entry list stays compact (a
//! tree's memory grows by a few hundred bytes per file, not by kilobytes), and the compact
//! list streams entries exactly in path-byte order, hard links to the first name, implicit
//! parents added — as GNU tar reads the layer back.

use crate::common;

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::{Command, Stdio};

use common::cli::{image, os};
use common::{assert_exit, require_tool};

/// Runs `c` to its end and returns its exit code and peak resident size in bytes (from
/// `wait4`, for this child alone: tests running beside it do not count).
fn peak_rss(mut c: Command) -> (i32, u64) {
    let child = c
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("ocipack starts");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: `wait4` fills the zeroed `rusage` and `status`; `pid` is our child, which
    // `Child` never waits for afterwards (it is only dropped).
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        let r = libc::wait4(pid, &mut status, 0, &mut usage);
        assert_eq!(r, pid, "wait4: {}", std::io::Error::last_os_error());
        usage
    };
    drop(child);
    assert!(libc::WIFEXITED(status), "ocipack did not exit normally");
    (libc::WEXITSTATUS(status), usage.ru_maxrss as u64 * 1024)
}

/// `files` empty files with names of 40 to 60 bytes, 100 to a directory.
fn many_files(root: &Path, files: usize) {
    for i in 0..files {
        let dir = root.join(format!("usr/share/doc/package-number-{:05}", i / 100));
        if i % 100 == 0 {
            fs::create_dir_all(&dir).unwrap();
        }
        fs::write(dir.join(format!("file-{i:07}-{}", "x".repeat(i % 21))), b"").unwrap();
    }
}

/// A tree's entries cost memory while they are sorted and streamed; the compact list keeps
/// that under 500 bytes per file: about 310 here (its growing arrays leave freed copies in
/// the allocator at this size), 145 at a million files (bench/run.sh). The list it
/// replaced took 850, so that a million files needed more than 800 MiB. Measured as the
/// difference of peak RSS between a tree of 50,000 files and one of 100, both
/// uncompressed (no encoder memory).
#[test]
fn the_entry_list_costs_a_few_hundred_bytes_per_file() {
    const FILES: usize = 50_000;
    let t = tempfile::tempdir().unwrap();
    let (small, big) = (t.path().join("small"), t.path().join("big"));
    many_files(&small, 100);
    many_files(&big, FILES);
    let rss = |tree: &Path, out: &str| {
        let c = image(
            &[os("--rootfs"), tree.as_os_str()],
            &t.path().join(out),
            &["--compression", "none", "-q"],
        );
        let (code, rss) = peak_rss(c);
        assert_eq!(code, 0, "ocipack image --rootfs {}", tree.display());
        rss
    };
    let base = rss(&small, "small.oci");
    let grown = rss(&big, "big.oci");
    let per_file = grown.saturating_sub(base) / FILES as u64;
    eprintln!("{per_file} bytes per file ({base} bytes for 100 files, {grown} for {FILES})");
    assert!(
        per_file < 500,
        "{per_file} bytes per file (peak RSS {base} bytes for 100 files, {grown} for {FILES})"
    );
}

/// The layer lists its entries in path-byte order (the directory `usr/lib` first; '-' and
/// '.' sort before '/', so its contents come after `usr/lib-x` and `usr/lib.d`), every
/// directory before what it holds,
/// implicit parents of a `--file` added, the same directory from two trees once, and every
/// name of a hard-linked file after the first a link to the first: read back by GNU tar.
#[test]
fn gnu_tar_reads_the_layer_in_path_byte_order() {
    if !require_tool("tar") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let (a, b) = (t.path().join("a"), t.path().join("b"));
    for d in ["usr/lib", "usr/lib-x", "usr/lib.d", "etc"] {
        fs::create_dir_all(a.join(d)).unwrap();
    }
    fs::create_dir_all(b.join("usr/lib")).unwrap();
    fs::write(a.join("usr/lib/libz.so.1.3"), b"z").unwrap();
    symlink("libz.so.1.3", a.join("usr/lib/libz.so.1")).unwrap();
    fs::write(a.join("usr/lib-x/one"), b"1").unwrap();
    fs::write(a.join("usr/lib.d/two"), b"2").unwrap();
    fs::write(a.join("etc/zz"), b"linked").unwrap();
    fs::hard_link(a.join("etc/zz"), a.join("usr/lib/aa")).unwrap();
    fs::write(b.join("usr/lib/from-b"), b"b").unwrap();
    let extra = t.path().join("extra");
    fs::write(&extra, b"e").unwrap();
    let file = format!("{}:/opt/new/dir/extra", extra.display());
    let out = t.path().join("out.oci");
    let o = image(
        &[
            os("--rootfs"),
            a.as_os_str(),
            os("--rootfs"),
            b.as_os_str(),
            os("--file"),
            os(&file),
        ],
        &out,
        &["--compression", "gzip", "--json"],
    )
    .output()
    .unwrap();
    assert_exit(&o, 0);
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let digest = json["layer"]["digest"].as_str().unwrap();
    let blob = out
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"));
    let list = Command::new("tar")
        .arg("-tvzf")
        .arg(&blob)
        .output()
        .unwrap();
    assert!(
        list.status.success(),
        "{}",
        String::from_utf8_lossy(&list.stderr)
    );
    let lines: Vec<String> = String::from_utf8(list.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            // "perms owner size date time name[ -> target | link to target]"
            l.split_whitespace().skip(5).collect::<Vec<_>>().join(" ")
        })
        .collect();
    let expected = [
        "etc/",
        "etc/zz",
        "opt/",
        "opt/new/",
        "opt/new/dir/",
        "opt/new/dir/extra",
        "usr/",
        "usr/lib/",
        "usr/lib-x/",
        "usr/lib-x/one",
        "usr/lib.d/",
        "usr/lib.d/two",
        "usr/lib/aa link to etc/zz",
        "usr/lib/from-b",
        "usr/lib/libz.so.1 -> libz.so.1.3",
        "usr/lib/libz.so.1.3",
    ];
    assert_eq!(lines, expected);
}
