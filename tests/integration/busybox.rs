//! The busybox example, end to end from real Debian packages, in the shape of the Official
//! Images' busybox: `examples/busybox/fetch.sh` downloads busybox-static for amd64 and arm64,
//! and busybox with libc6 for amd64, with apt and assembles a root filesystem per variant and
//! architecture; `ocipack build` makes the three layouts (twice: `--check` proves the same
//! bytes); all verify, also under the oci-import profile; GNU tar reads the layers
//! (symlinks, modes, 1777 /tmp, owners 0:0, the glibc loader and libraries); podman runs both
//! amd64 images, and qemu-user runs the arm64 busybox taken out of its layer, whose applet
//! list matches the symlinks. Then, in a repository of the example's own, dist branches (one
//! per architecture, every image's layout for it) and the library file, whose unsuffixed
//! entry takes amd64 from glibc and arm64v8 from static. Needs network access to Debian's
//! mirror and `dpkg --add-architecture arm64` (as .ci/run does).

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
fn busybox_from_debian_packages_builds_verifies_runs_and_goes_to_dist_branches() {
    for tool in [
        "apt-get",
        "dpkg-deb",
        "readelf",
        "tar",
        "git",
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
    for f in ["ocipack.toml", "fetch.sh", ".gitignore"] {
        fs::copy(repo().join("examples/busybox").join(f), p.join(f)).unwrap();
    }

    // Download and assemble: the Debian packages' versions and hashes are reported.
    let fetched = ok_text(Command::new("sh").arg(p.join("fetch.sh")));
    eprintln!("{fetched}");
    let epoch = fs::read_to_string(p.join("build/SOURCE_DATE_EPOCH")).unwrap();
    let epoch = epoch.trim();
    assert!(epoch.parse::<u64>().unwrap() > 1_600_000_000, "{epoch}");
    let packages = fs::read_to_string(p.join("build/packages.txt")).unwrap();
    for want in [
        "static amd64 busybox-static ",
        "static arm64v8 busybox-static ",
        "glibc amd64 busybox ",
        "glibc amd64 libc6 ",
    ] {
        assert!(packages.contains(want), "{want}: {packages}");
    }

    // Build, then prove a second build gives the same bytes.
    let run = |args: &[&str]| -> Output {
        run_bounded(
            ocipack().args(args).arg(&p).env("SOURCE_DATE_EPOCH", epoch),
            Duration::from_secs(300),
        )
    };
    let o = run(&["build"]);
    assert_exit(&o, 0);
    eprintln!("{}", text(&o.stdout));
    assert_exit(&run(&["build", "--check"]), 0);
    let glibc = p.join("build/glibc/amd64/oci");
    let amd64 = p.join("build/static/amd64/oci");
    let arm64 = p.join("build/static/arm64v8/oci");
    assert!(
        !p.join("build/glibc/arm64v8").exists(),
        "glibc has no arm64v8"
    );
    for profile in ["oci", "oci-import"] {
        let o = ocipack()
            .args(["verify", "--profile", profile])
            .arg(&glibc)
            .arg(&amd64)
            .arg(&arm64)
            .output()
            .unwrap();
        assert_exit(&o, 0);
        assert!(text(&o.stdout).contains("valid (linux/arm64/v8"));
    }

    // GNU tar reads every layer: owners 0:0, the modes fetch.sh set, relative symlinks; the
    // glibc one also its loader and libraries where Debian puts them.
    let common_entries = [
        "-rwxr-xr-x 0/0 bin/busybox",
        "lrwxrwxrwx 0/0 bin/sh -> busybox",
        "lrwxrwxrwx 0/0 usr/bin/awk -> ../../bin/busybox",
        "drwxrwxrwt 0/0 tmp/",
        "drwx------ 0/0 root/",
        "-rw-r--r-- 0/0 etc/passwd",
        "-rw-r--r-- 0/0 etc/group",
    ];
    let static_entries = [
        "lrwxrwxrwx 0/0 sbin/init -> ../bin/busybox",
        "-rw-r--r-- 0/0 usr/share/doc/busybox-static/copyright",
    ];
    let glibc_entries = [
        "-rw-r--r-- 0/0 usr/share/doc/busybox/copyright",
        "-rw-r--r-- 0/0 usr/share/doc/libc6/copyright",
        "-rwxr-xr-x 0/0 lib/x86_64-linux-gnu/libc.so.6",
        "-rwxr-xr-x 0/0 lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
        "-rw-r--r-- 0/0 lib/x86_64-linux-gnu/libresolv.so.2",
        "lrwxrwxrwx 0/0 lib64/ld-linux-x86-64.so.2 -> /lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
    ];
    let mut applets = BTreeSet::new();
    let mut glibc_applets = BTreeSet::new();
    for (layout, machine, own) in [
        (&amd64, 62, &static_entries[..]),
        (&arm64, 183, &static_entries[..]),
        (&glibc, 62, &glibc_entries[..]),
    ] {
        let layer = layout.join("rootfs.tar.gz");
        let l = listing(&layer);
        for want in common_entries.iter().chain(own) {
            assert!(
                l.contains(*want),
                "{}: no {want:?} in\n{l:#?}",
                layer.display()
            );
        }
        assert!(l.iter().all(|e| e.split(' ').nth(1) == Some("0/0")));
        let links: BTreeSet<String> = l
            .iter()
            .filter(|e| e.starts_with('l') && e.contains("busybox"))
            .map(|e| e.split(' ').nth(2).unwrap().to_string())
            .collect();
        assert!(links.len() > 200, "{} applet links", links.len());
        if layout == &glibc {
            glibc_applets = links;
        } else if applets.is_empty() {
            applets = links;
        } else {
            assert_eq!(links, applets, "the same applets on both architectures");
        }
        // The binary in the layer is the architecture's own.
        let x = t.path().join(format!(
            "x-{}",
            layout.parent().unwrap().to_string_lossy().replace('/', "-")
        ));
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
    assert_ne!(
        glibc_applets, applets,
        "two configurations, two applet lists"
    );

    // The arm64 busybox, taken out of its layer, runs under qemu-user; its own applet list
    // is exactly the symlinks fetch.sh made from the amd64 list.
    let x = t.path().join(format!(
        "x-{}",
        arm64.parent().unwrap().to_string_lossy().replace('/', "-")
    ));
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

    // podman runs both amd64 images: busybox itself, then its shell through the /bin/sh
    // link; the glibc one through its dynamic loader and libc.
    let podman = Podman::new();
    for (layout, links) in [(&amd64, &applets), (&glibc, &glibc_applets)] {
        let image = format!("oci:{}:latest", layout.display());
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
                links.iter().filter(|a| a.starts_with("usr/bin/")).count()
            )
        );
    }

    // Dist branches, in a repository of the example's own: one commit per architecture
    // holding every image's layout for it, and the library file in busybox's shape — the
    // unsuffixed entry takes amd64 from glibc and arm64v8 from static.
    common::git::git(&p, &["init", "-q"], None);
    common::git::commit_all(&p, "@1700000000 +0000");
    let branch = ["--commit-branch", "dist-{arch}"];
    let o = run(&["build", branch[0], branch[1]]);
    assert_exit(&o, 0);
    let tree = |b: &str| common::git::git(&p, &["ls-tree", "-r", "--name-only", b], None);
    let amd64_files = tree("dist-amd64");
    assert!(amd64_files.contains("build/glibc/amd64/oci/index.json\n"));
    assert!(amd64_files.contains("build/static/amd64/oci/index.json\n"));
    assert!(
        amd64_files.lines().all(|l| l.contains("/amd64/oci/")),
        "{amd64_files}"
    );
    let arm64_files = tree("dist-arm64v8");
    assert!(arm64_files.contains("build/static/arm64v8/oci/index.json\n"));
    assert!(
        arm64_files
            .lines()
            .all(|l| l.starts_with("build/static/arm64v8/oci/"))
    );
    assert_exit(&run(&["build", "--check", branch[0], branch[1]]), 0);
    let o = run(&["library", branch[0], branch[1]]);
    assert_exit(&o, 0);
    let lib = text(&o.stdout);
    let tip = |b: &str| {
        common::git::git(&p, &["rev-parse", b], None)
            .trim()
            .to_string()
    };
    let entries = format!(
        "amd64-GitFetch: refs/heads/dist-amd64\namd64-GitCommit: {}\n\
         arm64v8-GitFetch: refs/heads/dist-arm64v8\narm64v8-GitCommit: {}\n\
         \n\
         Tags: 1.35.0-glibc, 1.35-glibc, 1-glibc, glibc\n\
         Architectures: amd64\n\
         amd64-Directory: build/glibc/amd64/oci\n\
         \n\
         Tags: 1.35.0-static, 1.35-static, 1-static, static\n\
         Architectures: amd64, arm64v8\n\
         amd64-Directory: build/static/amd64/oci\n\
         arm64v8-Directory: build/static/arm64v8/oci\n\
         \n\
         Tags: 1.35.0, 1.35, 1, latest\n\
         Architectures: amd64, arm64v8\n\
         amd64-Directory: build/glibc/amd64/oci\n\
         arm64v8-Directory: build/static/arm64v8/oci\n",
        tip("dist-amd64"),
        tip("dist-arm64v8")
    );
    assert!(lib.ends_with(&entries), "{lib}");
    assert!(
        lib.contains("\nBuilder: oci-import\nFile: index.json\n"),
        "{lib}"
    );
}
