//! The committed hello-world example end to end: the golden layouts match a fresh build,
//! every layout is read by skopeo and unpacked by umoci, its /hello is the committed binary
//! (mode 0755, owner 0:0), and every image prints its architecture — amd64 and i386 run in
//! podman, the others under qemu-user from the unpacked root filesystem.

use crate::common;
use crate::common::git;

use std::fs;
use std::io::BufReader;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{assert_exit, ocipack, repo, require_tool};
use git::{commit_all, example_repo, git};

const ARCHES: [&str; 10] = [
    "amd64", "arm32v5", "arm32v6", "arm32v7", "arm64v8", "i386", "mips64le", "ppc64le", "riscv64",
    "s390x",
];

fn example() -> PathBuf {
    repo().join("examples/hello-world")
}

/// What the binary of `arch` prints: greeting.txt with its placeholder filled in.
fn expected_output(arch: &str) -> String {
    fs::read_to_string(example().join("greeting.txt"))
        .unwrap()
        .replace("{arch}", arch)
}

/// The fixed `created` time the example's project file declares.
fn project_created() -> String {
    let text = fs::read_to_string(example().join("ocipack.toml")).unwrap();
    let table: toml::Table = text.parse().unwrap();
    table["created"].to_string()
}

fn layout(arch: &str) -> PathBuf {
    example().join(arch).join("oci")
}

fn ok(o: &Output, what: &str) {
    assert!(
        o.status.success(),
        "{what}: {}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn build_check_passes_on_the_committed_example() {
    let o = ocipack()
        .args(["build", "--check"])
        .arg(example())
        .output()
        .unwrap();
    assert_exit(&o, 0);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        out.lines().filter(|l| l.starts_with("same ")).count(),
        12,
        "{out}"
    );
}

#[test]
fn the_main_command_leaves_a_fresh_checkout_clean() {
    let t = tempfile::tempdir().unwrap();
    let ex = example_repo(t.path());
    commit_all(t.path(), "@1800000000 +0000");
    // A checkout's times and the builder's umask must not matter.
    for arch in ARCHES {
        let f = fs::File::options()
            .write(true)
            .open(ex.join(arch).join("hello"))
            .unwrap();
        f.set_modified(std::time::UNIX_EPOCH).unwrap();
    }
    let o = Command::new("sh")
        .args(["-c", "umask 077 && exec \"$0\" build examples/hello-world"])
        .arg(env!("CARGO_BIN_EXE_ocipack"))
        .current_dir(t.path())
        .env("SOURCE_DATE_EPOCH", "1")
        .output()
        .unwrap();
    assert_exit(&o, 0);
    assert_eq!(String::from_utf8_lossy(&o.stdout).lines().count(), 12);
    assert_eq!(git(t.path(), &["status", "--porcelain"], None), "");
}

/// The layer's entries: (path, mode, uid, gid, bytes).
fn layer_entries(layout: &Path) -> Vec<(String, u32, u64, u64, Vec<u8>)> {
    let f = fs::File::open(layout.join("rootfs.tar.gz")).unwrap();
    let r = ocipack::input::decompress::decompressing_reader(BufReader::new(f)).unwrap();
    let mut a = tar::Archive::new(r);
    let mut out = Vec::new();
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let h = e.header().clone();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut bytes).unwrap();
        out.push((
            String::from_utf8_lossy(&e.path_bytes()).into_owned(),
            h.mode().unwrap(),
            h.uid().unwrap(),
            h.gid().unwrap(),
            bytes,
        ));
    }
    out
}

#[test]
fn every_layout_is_read_by_skopeo_and_unpacked_by_umoci() {
    if !require_tool("skopeo") || !require_tool("umoci") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    for arch in ARCHES {
        let dir = layout(arch);
        let binary = fs::read(example().join(arch).join("hello")).unwrap();
        let image = format!("oci:{}:latest", dir.display());

        // The layer holds exactly /hello: the binary, 0755, owner 0:0.
        assert_eq!(
            layer_entries(&dir),
            [("hello".to_string(), 0o755, 0, 0, binary.clone())],
            "{arch}"
        );

        let o = Command::new("skopeo")
            .args(["inspect", "--raw", &image])
            .output()
            .unwrap();
        ok(&o, &format!("skopeo inspect --raw {arch}"));
        assert_eq!(o.stdout, fs::read(dir.join("image-manifest.json")).unwrap());
        let o = Command::new("skopeo")
            .args(["inspect", &image])
            .output()
            .unwrap();
        ok(&o, &format!("skopeo inspect {arch}"));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let p = ocipack::platform::Platform::from_bashbrew_arch(arch).unwrap();
        assert_eq!(v["Os"], p.os, "{arch}");
        assert_eq!(v["Architecture"], p.architecture, "{arch}");
        assert_eq!(
            v["Created"].as_str(),
            Some(project_created().as_str()),
            "{arch}"
        );
        // This skopeo's summary has no variant: read it from the config skopeo returns.
        let o = Command::new("skopeo")
            .args(["inspect", "--config", "--raw", &image])
            .output()
            .unwrap();
        ok(&o, &format!("skopeo inspect --config {arch}"));
        assert_eq!(o.stdout, fs::read(dir.join("image-config.json")).unwrap());
        let c: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(c["variant"].as_str(), p.variant.as_deref(), "{arch}");

        let bundle = t.path().join(arch);
        let o = Command::new("umoci")
            .args(["unpack", "--rootless", "--image"])
            .arg(format!("{}:latest", dir.display()))
            .arg(&bundle)
            .output()
            .unwrap();
        ok(&o, &format!("umoci unpack {arch}"));
        let hello = bundle.join("rootfs/hello");
        assert_eq!(fs::read(&hello).unwrap(), binary, "{arch}");
        let mode = fs::metadata(&hello).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o755, "{arch}");
        let names: Vec<_> = fs::read_dir(bundle.join("rootfs"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["hello"], "{arch}");
    }
}

/// How each non-x86 architecture runs here: qemu-user, with the CPU the Makefile uses.
fn qemu(arch: &str) -> &'static [&'static str] {
    match arch {
        "arm32v5" => &["qemu-arm", "-cpu", "arm926"],
        "arm32v6" => &["qemu-arm", "-cpu", "arm1176"],
        "arm32v7" => &["qemu-arm", "-cpu", "cortex-a7"],
        "arm64v8" => &["qemu-aarch64"],
        "mips64le" => &["qemu-mips64el"],
        "ppc64le" => &["qemu-ppc64le"],
        "riscv64" => &["qemu-riscv64"],
        "s390x" => &["qemu-s390x"],
        _ => &[],
    }
}

#[test]
fn non_x86_images_print_their_architecture_under_qemu() {
    if !require_tool("umoci") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    for arch in ARCHES {
        let runner = qemu(arch);
        if runner.is_empty() || !require_tool(runner[0]) {
            continue;
        }
        let bundle = t.path().join(arch);
        let o = Command::new("umoci")
            .args(["unpack", "--rootless", "--image"])
            .arg(format!("{}:latest", layout(arch).display()))
            .arg(&bundle)
            .output()
            .unwrap();
        ok(&o, &format!("umoci unpack {arch}"));
        let o = Command::new(runner[0])
            .args(&runner[1..])
            .arg(bundle.join("rootfs/hello"))
            .output()
            .unwrap();
        ok(&o, &format!("{} {arch}", runner[0]));
        let out = String::from_utf8(o.stdout).unwrap();
        assert_eq!(out, expected_output(arch), "{arch}");
        assert!(out.contains(&format!("({arch})")));
    }
}

/// `podman run --rm oci:LAYOUT:latest` with the recipe that works on these machines:
/// runc, cgroupfs, vfs storage in a temporary root, no default ulimits.
fn podman_run(layout: &Path) -> Output {
    let t = tempfile::tempdir().unwrap();
    let conf = t.path().join("containers.conf");
    fs::write(&conf, "[containers]\ndefault_ulimits = []\n").unwrap();
    Command::new("podman")
        .env("CONTAINERS_CONF", &conf)
        .arg("--root")
        .arg(t.path().join("storage"))
        .arg("--runroot")
        .arg(t.path().join("run"))
        .args(["--runtime", "runc", "--storage-driver", "vfs"])
        .args(["--cgroup-manager", "cgroupfs"])
        .args(["run", "--rm", "--network", "none"])
        .arg(format!("oci:{}:latest", layout.display()))
        .output()
        .unwrap()
}

#[test]
fn amd64_and_i386_images_run_in_podman() {
    if !require_tool("podman") || !require_tool("runc") {
        return;
    }
    for arch in ["amd64", "i386"] {
        let o = podman_run(&layout(arch));
        ok(&o, &format!("podman run {arch}"));
        let out = String::from_utf8(o.stdout).unwrap();
        assert_eq!(out, expected_output(arch), "{arch}");
        assert!(out.contains(&format!("({arch})")));
    }
}

/// The committed binaries are what their source builds: CI rebuilds them with the Debian
/// cross compilers and fails on any differing byte.
#[test]
fn committed_binaries_rebuild_from_source_byte_for_byte() {
    let compilers = [
        "x86_64-linux-gnu-gcc",
        "i686-linux-gnu-gcc",
        "arm-linux-gnueabi-gcc",
        "arm-linux-gnueabihf-gcc",
        "aarch64-linux-gnu-gcc",
        "mips64el-linux-gnuabi64-gcc",
        "powerpc64le-linux-gnu-gcc",
        "riscv64-linux-gnu-gcc",
        "s390x-linux-gnu-gcc",
        "make",
    ];
    if !compilers.iter().all(|c| require_tool(c)) {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let o = Command::new("make")
        .arg("-C")
        .arg(example())
        .arg("verify-committed")
        .arg(format!("BUILD={}", t.path().join("build").display()))
        .output()
        .unwrap();
    ok(&o, "make verify-committed");
    let out = String::from_utf8_lossy(&o.stdout);
    for arch in ARCHES {
        let checked = out
            .lines()
            .any(|l| l.starts_with("same") && l.trim_end().ends_with(&format!(" {arch}/hello")));
        assert!(checked, "{arch}/hello not compared: {out}");
    }
}
