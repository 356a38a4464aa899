//! `--tar` and `[[input]] tar` in every compression ocipack reads (plain, gzip, zstd, xz,
//! bzip2), made by the real `gzip`, `zstd`, `xz` and `bzip2` commands and sniffed from the
//! bytes: the same tar gives the same layout byte for byte, concatenated streams are read
//! whole, and truncated, corrupt or too-hungry inputs are input errors (exit 2, one line,
//! nothing written). Layers stay tar, gzip or zstd: `verify` refuses an xz layer.

use crate::common;
use crate::common::layouts;

use std::fs;
use std::io::Write;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::cli::{self, os};
use common::{assert_exit, ocipack, require_tool, require_tools, run_bounded, snapshot};

/// Every tool the tests compress with; false (a skip) if one is missing.
fn tools() -> bool {
    require_tools(&["tar", "gzip", "zstd", "xz", "bzip2"])
}

/// A tree with directories, an executable, a symlink, a 1777 directory and 3 MB of
/// incompressible bytes (so that compressors make several blocks), as GNU tar packs it.
fn sample_tar(dir: &Path) -> Vec<u8> {
    let root = dir.join("root");
    fs::create_dir_all(root.join("bin")).unwrap();
    fs::create_dir_all(root.join("etc")).unwrap();
    fs::create_dir_all(root.join("tmp")).unwrap();
    fs::set_permissions(root.join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
    fs::write(root.join("bin/tool"), b"#!/bin/sh\necho hi\n").unwrap();
    fs::set_permissions(root.join("bin/tool"), fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(root.join("etc/motd"), "welcome\n".repeat(4000)).unwrap();
    symlink("tool", root.join("bin/alias")).unwrap();
    let mut x: u64 = 7;
    let noise: Vec<u8> = (0..3_000_000)
        .map(|_| {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
            (x >> 56) as u8
        })
        .collect();
    fs::write(root.join("etc/noise"), noise).unwrap();
    let o = Command::new("tar")
        .args(["--sort=name", "--format=gnu", "-cf", "-", "-C"])
        .arg(&root)
        .arg(".")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    o.stdout
}

/// `input` piped through `cmd args`.
fn pipe(cmd: &str, args: &[&str], input: &[u8]) -> Vec<u8> {
    let mut c = Command::new(cmd)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = c.stdin.take().unwrap();
    let data = input.to_vec();
    let feeder = std::thread::spawn(move || stdin.write_all(&data));
    let o = c.wait_with_output().unwrap();
    feeder.join().unwrap().unwrap();
    assert!(
        o.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o.stdout
}

/// `ocipack image --tar TAR ... -o OUT`: the same options for every input.
fn image(tar: &Path, out: &Path) -> Output {
    let mut c = cli::image(
        &[os("--tar"), tar.as_os_str()],
        out,
        &["--cmd", "/bin/tool", "-q"],
    );
    run_bounded(&mut c, Duration::from_secs(120))
}

/// Entries of `dir` other than `keep`: a failed build must leave nothing, staging included.
fn leftovers(dir: &Path, keep: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !keep.contains(&n.as_str()))
        .collect();
    v.sort();
    v
}

/// Writes `bytes` to `dir/name` and returns the path.
fn put(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn the_same_tar_in_every_compression_gives_the_same_layout() {
    if !tools() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let tar = sample_tar(t.path());
    let (a, b) = tar.split_at(tar.len() / 3);
    let xz2 = [pipe("xz", &["-c"], a), pipe("xz", &["-c"], b)].concat();
    let inputs: Vec<(&str, Vec<u8>)> = vec![
        ("gzip", pipe("gzip", &["-n", "-c"], &tar)),
        (
            "gzip -1 members",
            [pipe("gzip", &["-c"], a), pipe("gzip", &["-1", "-c"], b)].concat(),
        ),
        ("zstd", pipe("zstd", &["-q", "-c"], &tar)),
        (
            "zstd frames",
            [
                pipe("zstd", &["-q", "-c"], a),
                pipe("zstd", &["-q", "-c"], b),
            ]
            .concat(),
        ),
        ("xz", pipe("xz", &["-c"], &tar)),
        ("xz -9e", pipe("xz", &["-9e", "-c"], &tar)),
        (
            "xz --check=sha256",
            pipe("xz", &["--check=sha256", "-c"], &tar),
        ),
        (
            "xz blocks",
            pipe("xz", &["-T2", "--block-size=256KiB", "-c"], &tar),
        ),
        // Two `xz` outputs concatenated: a single-stream decoder would stop at the first.
        ("xz streams", xz2.clone()),
        ("xz streams + padding", [xz2, vec![0; 8]].concat()),
        ("bzip2", pipe("bzip2", &["-c"], &tar)),
        ("bzip2 -1", pipe("bzip2", &["-1", "-c"], &tar)),
        (
            "bzip2 streams",
            [pipe("bzip2", &["-c"], a), pipe("bzip2", &["-c"], b)].concat(),
        ),
    ];
    // The plain tar's layout is the reference. Every input file is named `input.tar`:
    // the format comes from the bytes, never the name.
    let reference_dir = t.path().join("plain");
    fs::create_dir(&reference_dir).unwrap();
    let plain = put(&reference_dir, "input.tar", &tar);
    let o = image(&plain, &reference_dir.join("oci"));
    assert_exit(&o, 0);
    let reference = snapshot(&reference_dir.join("oci"));
    for (i, (what, bytes)) in inputs.iter().enumerate() {
        let dir = t.path().join(format!("case{i}"));
        fs::create_dir(&dir).unwrap();
        let input = put(&dir, "input.tar", bytes);
        let out = dir.join("oci");
        let o = image(&input, &out);
        assert!(
            o.status.success(),
            "{what}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(snapshot(&out) == reference, "{what}: the layout differs");
    }
}

#[test]
fn a_project_tar_input_may_be_xz_or_bzip2() {
    if !tools() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let tar = sample_tar(t.path());
    let project = |name: &str, file: &str, bytes: &[u8]| -> PathBuf {
        let p = t.path().join(name);
        fs::create_dir(&p).unwrap();
        fs::write(p.join(file), bytes).unwrap();
        fs::write(
            p.join("ocipack.toml"),
            format!(
                "name = \"x\"\ncreated = \"@1700000000\"\narchitectures = [\"amd64\"]\n\
                 [image]\ncmd = [\"/bin/tool\"]\n[[input]]\ntar = \"{file}\"\n"
            ),
        )
        .unwrap();
        let o = run_bounded(ocipack().arg("build").arg(&p), Duration::from_secs(120));
        assert_exit(&o, 0);
        p.join("amd64/oci")
    };
    let plain = snapshot(&project("plain", "rootfs.tar", &tar));
    let xz = project("xz", "rootfs.tar.xz", &pipe("xz", &["-c"], &tar));
    let bz2 = project("bz2", "rootfs.tar.bz2", &pipe("bzip2", &["-c"], &tar));
    assert!(snapshot(&xz) == plain, "xz input: the layout differs");
    assert!(snapshot(&bz2) == plain, "bzip2 input: the layout differs");
}

#[test]
fn truncated_corrupt_and_too_hungry_inputs_are_input_errors_that_write_nothing() {
    if !tools() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let tar = sample_tar(t.path());
    let xz = pipe("xz", &["-c"], &tar);
    let bz2 = pipe("bzip2", &["-c"], &tar);
    let gz = pipe("gzip", &["-n", "-c"], &tar);
    let flip = |v: &[u8], at: usize| {
        let mut v = v.to_vec();
        for b in &mut v[at..at + 16] {
            *b ^= 0x5a;
        }
        v
    };
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "xz cut in the middle",
            xz[..xz.len() / 2].to_vec(),
            "the xz data is truncated",
        ),
        (
            "xz without its index and footer",
            xz[..xz.len() - 40].to_vec(),
            "the xz data is truncated",
        ),
        (
            "xz corrupt in the middle",
            flip(&xz, xz.len() / 2),
            "the xz data is corrupt",
        ),
        (
            "xz followed by garbage",
            [xz.clone(), b"garbage\n".to_vec()].concat(),
            "the xz data is corrupt (invalid data after stream)",
        ),
        (
            "xz with a 192 MiB dictionary",
            pipe("xz", &["--lzma2=dict=192MiB", "-c"], &tar),
            "the xz data needs more than the 128 MiB of memory ocipack allows",
        ),
        (
            "bzip2 cut in the middle",
            bz2[..bz2.len() / 2].to_vec(),
            "the bzip2 data is truncated",
        ),
        (
            "bzip2 without its last bytes",
            bz2[..bz2.len() - 4].to_vec(),
            "the bzip2 data is truncated",
        ),
        (
            "bzip2 followed by garbage",
            [bz2.clone(), b"garbage\n".to_vec()].concat(),
            "the bzip2 data is corrupt",
        ),
        (
            "gzip cut in the middle",
            gz[..gz.len() / 2].to_vec(),
            "the gzip data is truncated",
        ),
    ];
    for (i, (what, bytes, want)) in cases.iter().enumerate() {
        let dir = t.path().join(format!("case{i}"));
        fs::create_dir(&dir).unwrap();
        let input = put(&dir, "input.tar", bytes);
        let o = image(&input, &dir.join("oci"));
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{what}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{what}: one line: {stderr}");
        assert!(
            stderr.starts_with(&format!("ocipack: error: --tar \"{}\": ", input.display())),
            "{what}: the message names the input: {stderr}"
        );
        assert!(stderr.contains(want), "{what}: {want:?} not in {stderr}");
        assert_eq!(
            leftovers(&dir, &["input.tar"]),
            Vec::<String>::new(),
            "{what}: nothing may be written"
        );
    }
}

#[test]
fn verify_refuses_xz_layers() {
    if !require_tool("xz") {
        return;
    }
    let l = layouts::Layout::build(&["--compression", "none"]);
    let tar = fs::read(l.path(&l.layer_path())).unwrap();
    let xz = pipe("xz", &["-c"], &tar);
    // Under a media type for xz, which is no OCI layer type.
    l.set_layer(&xz, "application/vnd.oci.image.layer.v1.tar+xz", &tar);
    let out = l.verify(&[]);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .contains("application/vnd.oci.image.layer.v1.tar+xz"),
        "{}",
        out.stdout
    );
    // Under the gzip media type: the bytes are not gzip.
    let l = layouts::Layout::build(&["--compression", "none"]);
    l.set_layer(&xz, "application/vnd.oci.image.layer.v1.tar+gzip", &tar);
    l.verify(&[]).assert(
        1,
        &["the bytes are not gzip or zstd (a plain tar?) but the media type"],
    );
}
