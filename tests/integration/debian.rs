//! The debian example (`examples/debian`), run on the minbase root filesystem that
//! `owners::a_debian_rootfs_from_mmdebstrap_keeps_its_owners_and_runs` bootstraps (one
//! bootstrap per CI run; that test calls [`check_example`]): the full rootfs and its
//! `debuerreotype-slimify` variant, made into a tar by `debuerreotype-tar` as debuerreotype
//! does, become two images, committed to `dist-amd64` at `bookworm/oci` and
//! `bookworm/slim/oci`; the library file names them with `Directory:`; the layouts on the
//! branch verify under the oci-import profile; the slim one has no manual pages and keeps
//! the copyright files; podman runs it; a second build changes nothing.

use crate::common;

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::cli::{show, text};
use common::git::{commit_all, git};
use common::{Podman, assert_exit, ocipack, repo, run_bounded};

const LIMIT: Duration = Duration::from_secs(900);

/// Runs `cmd`, which must succeed.
fn ok(cmd: &mut Command) -> String {
    let o = run_bounded(cmd, LIMIT);
    assert!(o.status.success(), "{cmd:?}: {}", show(&o));
    text(&o.stdout)
}

/// The examples/debian project on `tar` (an uncompressed minbase rootfs tar whose mtimes
/// are all at most `epoch`), in `work` (see the module documentation).
pub fn check_example(tar: &Path, epoch: u64, work: &Path, podman: &Podman) {
    let p = work.join("debian-example");
    fs::create_dir_all(&p).unwrap();
    for f in ["ocipack.toml", "README.md", ".gitignore"] {
        fs::copy(repo().join("examples/debian").join(f), p.join(f)).unwrap();
    }
    git(&p, &["init", "-q"], None);
    commit_all(&p, "@1700000000 +0000");

    // The full root filesystem as it is, and its slim variant: unpacked (as root, owners
    // kept), slimified, and tarred again by debuerreotype.
    let full = p.join("rootfs/amd64/bookworm");
    let slim = full.join("slim");
    fs::create_dir_all(&slim).unwrap();
    ok(Command::new("sh").arg("-c").arg(format!(
        "xz -0 -T0 -c '{}' > '{}'",
        tar.display(),
        full.join("rootfs.tar.xz").display()
    )));
    let root = work.join("slim-root");
    fs::create_dir_all(&root).unwrap();
    ok(Command::new("tar")
        .args(["--numeric-owner", "--same-owner", "-xpf"])
        .arg(tar)
        .arg("-C")
        .arg(&root));
    fs::write(root.join("debuerreotype-epoch"), format!("{epoch}\n")).unwrap();
    ok(Command::new("debuerreotype-slimify").arg(&root));
    let slim_tar = work.join("slim.tar");
    ok(Command::new("debuerreotype-tar").arg(&root).arg(&slim_tar));
    ok(Command::new("sh").arg("-c").arg(format!(
        "xz -0 -T0 -c '{}' > '{}'",
        slim_tar.display(),
        slim.join("rootfs.tar.xz").display()
    )));
    assert_eq!(
        git(&p, &["status", "--porcelain"], None),
        "",
        "rootfs/ is ignored"
    );

    // Both images committed to dist-amd64, at the same paths as on debian's branches.
    let epoch_s = epoch.to_string();
    let run = |args: &[&str]| {
        run_bounded(
            ocipack()
                .args(args)
                .arg(&p)
                .env("SOURCE_DATE_EPOCH", &epoch_s),
            LIMIT,
        )
    };
    let o = run(&["build"]);
    assert_exit(&o, 0);
    eprintln!("{}", text(&o.stdout));
    let files = git(&p, &["ls-tree", "-r", "--name-only", "dist-amd64"], None);
    assert!(files.contains("bookworm/oci/index.json\n"), "{files}");
    assert!(files.contains("bookworm/slim/oci/index.json\n"), "{files}");
    assert!(
        files
            .lines()
            .all(|l| l.starts_with("bookworm/oci/") || l.starts_with("bookworm/slim/oci/")),
        "{files}"
    );
    assert_eq!(git(&p, &["status", "--porcelain"], None), "");

    let o = run(&["library"]);
    assert_exit(&o, 0);
    let lib = text(&o.stdout);
    let tip = git(&p, &["rev-parse", "dist-amd64"], None);
    for want in [
        format!("amd64-GitFetch: refs/heads/dist-amd64\namd64-GitCommit: {tip}"),
        "Tags: bookworm, 12, latest\nArchitectures: amd64\n".to_string(),
        "Directory: bookworm/oci\n".to_string(),
        "Tags: bookworm-slim, 12-slim\nArchitectures: amd64\n".to_string(),
        "Directory: bookworm/slim/oci\n".to_string(),
    ] {
        assert!(lib.contains(&want), "{want:?} not in\n{lib}");
    }

    // The layouts as a checkout of the branch holds them: valid for the Official Images.
    let out = work.join("dist");
    fs::create_dir_all(&out).unwrap();
    ok(Command::new("sh").arg("-c").arg(format!(
        "git -C '{}' archive dist-amd64 | tar -x -C '{}'",
        p.display(),
        out.display()
    )));
    let full_oci = out.join("bookworm/oci");
    let slim_oci = out.join("bookworm/slim/oci");
    let o = ocipack()
        .args(["verify", "--profile", "oci-import"])
        .arg(&full_oci)
        .arg(&slim_oci)
        .output()
        .unwrap();
    assert_exit(&o, 0);

    // Slim: smaller, no manual pages, the copyright files and dpkg's exclusions kept.
    let layer = |oci: &Path| -> Vec<String> {
        ok(Command::new("tar")
            .args(["--numeric-owner", "-tvzf"])
            .arg(oci.join("rootfs.tar.gz")))
        .lines()
        .map(String::from)
        .collect()
    };
    let (f, s) = (layer(&full_oci), layer(&slim_oci));
    let files_under = |l: &[String], prefix: &str| {
        l.iter()
            .filter(|e| e.starts_with('-') && e.contains(&format!(" {prefix}")))
            .count()
    };
    assert!(
        files_under(&f, "usr/share/man/") > 0,
        "the full image has manual pages"
    );
    assert_eq!(files_under(&s, "usr/share/man/"), 0, "slim has none");
    assert!(files_under(&s, "usr/share/doc/") > 0);
    assert!(
        s.iter().all(|e| !e.contains(" usr/share/doc/")
            || !e.starts_with('-')
            || e.ends_with("/copyright")),
        "slim keeps only the copyright files of usr/share/doc"
    );
    assert!(s.iter().any(|e| e.ends_with(" etc/dpkg/dpkg.cfg.d/docker")));
    let size = |oci: &Path| fs::metadata(oci.join("rootfs.tar.gz")).unwrap().len();
    assert!(size(&slim_oci) < size(&full_oci));
    let said = podman.run_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        &format!("oci:{}", slim_oci.display()),
        "sh",
        "-c",
        "apt-get --version | head -n 1; ls /usr/share/man | wc -l",
    ]);
    assert!(said.starts_with("apt "), "{said}");

    // Nothing changed: nothing is built again, no branch moves.
    let o = run(&["build"]);
    assert_exit(&o, 0);
    assert_eq!(git(&p, &["rev-parse", "dist-amd64"], None), tip);
    assert!(text(&o.stdout).contains("unchanged"), "{}", text(&o.stdout));
}
