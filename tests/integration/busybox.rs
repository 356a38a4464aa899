//! The rootfs-scale example, end to end from real Debian packages: `examples/busybox/fetch.sh`
//! downloads busybox-static for amd64 and arm64 with apt and assembles a root filesystem per
//! architecture; `ocipack build` makes the layouts (twice: `--check` proves the same bytes);
//! both verify, also under the oci-import profile; GNU tar reads the layers (symlinks,
//! modes, 1777 /tmp, owners 0:0); podman runs the amd64 image, and qemu-user runs the arm64
//! busybox taken out of its layer, whose applet list matches the symlinks. Needs network
//! access to Debian's mirror and `dpkg --add-architecture arm64` (as .ci/run does).

use crate::common;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::cli::text;
use common::{Podman, assert_exit, ocipack, ok, repo, require_tool, run_bounded};

/// Runs `cmd` with [`ok`], returning its standard output as text.
fn ok_text(cmd: &mut Command) -> String {
    text(&ok(cmd).stdout)
}

/// True if apt can download arm64 packages here; under CI=true a failure if not.
fn arm64_enabled() -> bool {
    let native = Command::new("dpkg")
        .arg("--print-architecture")
        .output()
        .unwrap();
    let foreign = Command::new("dpkg")
        .arg("--print-foreign-architectures")
        .output()
        .unwrap();
    if text(&native.stdout).trim() != "amd64" {
        common::skip("the busybox example test runs the amd64 image natively, on amd64 only");
        return false;
    }
    if text(&foreign.stdout).lines().any(|l| l == "arm64") {
        return true;
    }
    common::skip(
        "dpkg has no arm64 architecture (run 'dpkg --add-architecture arm64 && apt-get update')",
    );
    false
}

/// The ELF machine of a binary (62 x86-64, 183 AArch64).
fn elf_machine(path: &Path) -> u16 {
    let b = fs::read(path).unwrap();
    assert_eq!(&b[..4], b"\x7fELF", "{} is not ELF", path.display());
    u16::from_le_bytes([b[18], b[19]])
}

/// `tar -tv --numeric-owner` of a gzip layer, one line per entry without the date columns:
/// "MODE UID/GID NAME[ -> TARGET]".
fn listing(layer: &Path) -> BTreeSet<String> {
    ok_text(
        Command::new("tar")
            .args(["--numeric-owner", "-tvzf"])
            .arg(layer),
    )
    .lines()
    .map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        format!("{} {} {}", f[0], f[1], f[5..].join(" "))
    })
    .collect()
}

/// A temporary directory whose path has no uppercase letter (podman 4 names an image run
/// from `oci:PATH` after PATH, which must then be lowercase), removed on drop.
struct LowercaseDir(PathBuf);

impl LowercaseDir {
    fn new() -> LowercaseDir {
        let base = std::env::temp_dir().to_string_lossy().to_lowercase();
        let dir = Path::new(&base).join(format!("ocipack-busybox-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        LowercaseDir(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for LowercaseDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[test]
fn busybox_from_debian_packages_builds_verifies_and_runs_on_both_architectures() {
    for tool in [
        "apt-get",
        "dpkg-deb",
        "tar",
        "podman",
        "runc",
        "qemu-aarch64",
    ] {
        if !require_tool(tool) {
            return;
        }
    }
    if !arm64_enabled() {
        return;
    }
    let t = LowercaseDir::new();
    let p = t.path().join("busybox");
    fs::create_dir(&p).unwrap();
    for f in ["ocipack.toml", "fetch.sh"] {
        fs::copy(repo().join("examples/busybox").join(f), p.join(f)).unwrap();
    }

    // Download and assemble: the Debian packages' versions and hashes are reported.
    let fetched = ok_text(Command::new("sh").arg(p.join("fetch.sh")));
    eprintln!("{fetched}");
    let epoch = fs::read_to_string(p.join("build/SOURCE_DATE_EPOCH")).unwrap();
    let epoch = epoch.trim();
    assert!(epoch.parse::<u64>().unwrap() > 1_600_000_000, "{epoch}");
    let packages = fs::read_to_string(p.join("build/packages.txt")).unwrap();
    assert!(packages.starts_with("amd64 busybox-static "), "{packages}");
    assert!(packages.contains("\narm64v8 busybox-static "), "{packages}");

    // Build, then prove a second build gives the same bytes.
    let build = |extra: &[&str]| -> Output {
        run_bounded(
            ocipack()
                .arg("build")
                .args(extra)
                .arg(&p)
                .env("SOURCE_DATE_EPOCH", epoch),
            Duration::from_secs(300),
        )
    };
    let o = build(&[]);
    assert_exit(&o, 0);
    eprintln!("{}", text(&o.stdout));
    assert_exit(&build(&["--check"]), 0);
    let amd64 = p.join("build/amd64/oci");
    let arm64 = p.join("build/arm64v8/oci");
    for profile in ["oci", "oci-import"] {
        let o = ocipack()
            .args(["verify", "--profile", profile])
            .arg(&amd64)
            .arg(&arm64)
            .output()
            .unwrap();
        assert_exit(&o, 0);
        assert!(text(&o.stdout).contains("valid (linux/arm64/v8"));
    }

    // GNU tar reads both layers: owners 0:0, the modes fetch.sh set, relative symlinks.
    let mut applets = BTreeSet::new();
    for (layout, machine) in [(&amd64, 62), (&arm64, 183)] {
        let layer = layout.join("rootfs.tar.gz");
        let l = listing(&layer);
        for want in [
            "-rwxr-xr-x 0/0 bin/busybox",
            "lrwxrwxrwx 0/0 bin/sh -> busybox",
            "lrwxrwxrwx 0/0 usr/bin/awk -> ../../bin/busybox",
            "lrwxrwxrwx 0/0 sbin/init -> ../bin/busybox",
            "drwxrwxrwt 0/0 tmp/",
            "drwx------ 0/0 root/",
            "-rw-r--r-- 0/0 etc/passwd",
            "-rw-r--r-- 0/0 etc/group",
            "-rw-r--r-- 0/0 usr/share/doc/busybox-static/copyright",
        ] {
            assert!(
                l.contains(want),
                "{}: no {want:?} in\n{l:#?}",
                layer.display()
            );
        }
        assert!(l.iter().all(|e| e.split(' ').nth(1) == Some("0/0")));
        let links: BTreeSet<String> = l
            .iter()
            .filter(|e| e.starts_with('l'))
            .map(|e| e.split(' ').nth(2).unwrap().to_string())
            .collect();
        assert!(links.len() > 250, "{} applet links", links.len());
        if applets.is_empty() {
            applets = links;
        } else {
            assert_eq!(links, applets, "the same applets on both architectures");
        }
        // The binary in the layer is the architecture's own.
        let x = t.path().join(format!("x{machine}"));
        fs::create_dir(&x).unwrap();
        ok_text(
            Command::new("tar")
                .arg("-xzf")
                .arg(&layer)
                .arg("-C")
                .arg(&x),
        );
        assert_eq!(elf_machine(&x.join("bin/busybox")), machine);
    }

    // The arm64 busybox, taken out of its layer, runs under qemu-user; its own applet list
    // is exactly the symlinks fetch.sh made from the amd64 list.
    let x = t.path().join("x183");
    let q = |args: &[&str]| ok_text(Command::new("qemu-aarch64").args(args).current_dir(&x));
    assert_eq!(q(&["bin/busybox", "echo", "hello"]), "hello\n");
    assert_eq!(
        q(&["bin/sh", "-c", "echo $((6*7)) $(uname -m)"]),
        "42 aarch64\n"
    );
    let own: BTreeSet<String> = q(&["bin/busybox", "--list-full"])
        .lines()
        .filter(|l| *l != "bin/busybox")
        .map(str::to_string)
        .collect();
    assert_eq!(own, applets);

    // podman runs the amd64 image: busybox itself, then its shell through the /bin/sh link.
    let podman = Podman::new();
    let image = format!("oci:{}:latest", amd64.display());
    let run = |args: &[&str]| {
        let mut all = vec!["run", "--rm", "--network", "none", image.as_str()];
        all.extend(args);
        podman.run_ok(&all)
    };
    assert_eq!(run(&["/bin/busybox", "echo", "hello"]), "hello\n");
    assert_eq!(
        run(&[
            "sh",
            "-c",
            "echo $((6*7)); stat -c '%a %U' /tmp /root; id -un; ls /usr/bin | wc -l"
        ]),
        format!(
            "42\n1777 root\n700 root\nroot\n{}\n",
            applets.iter().filter(|a| a.starts_with("usr/bin/")).count()
        )
    );
}
