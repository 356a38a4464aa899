//! Dist branches of a project of many images: a build of a subset (`--image`, `--arch`)
//! carries the other images' layouts over from each branch's tip; `build --check
//! --commit-branch` compares with the branches and writes no object; refs are never moved
//! by accident (a dist ref that is a symbolic ref, a branch checked out in a linked work
//! tree); a project path that is not UTF-8 is refused, never printed as U+FFFD; a single
//! image's output need not contain `{arch}` on dist branches.

use crate::common;
use crate::common::git;

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::Output;

use common::cli::text;
use common::{assert_exit, ocipack};
use git::{commit_all, git};

use common::shapes::{SMALL_BUSYBOX as TOML, SMALL_BUSYBOX_LAYOUTS as LAYOUTS};

/// A repository at `root` whose directory `sub` holds the project, committed.
fn project(root: &Path, sub: &[u8], toml: &str) -> std::path::PathBuf {
    common::shapes::project_repo(
        root,
        Path::new(std::ffi::OsStr::from_bytes(sub)),
        toml,
        &LAYOUTS,
    )
}

fn run(dir: &Path, args: &[&str]) -> Output {
    ocipack()
        .args(args)
        .arg(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .unwrap()
}

fn refs(repo: &Path) -> String {
    git(
        repo,
        &[
            "for-each-ref",
            "--format=%(refname) %(objectname) %(symref)",
        ],
        None,
    )
}

/// Everything a command could have written into the repository's object store: git's
/// count, and every file under `.git/objects` with its size.
fn objects(repo: &Path) -> (String, Vec<(String, u64)>) {
    let mut files = Vec::new();
    let mut stack = vec![repo.join(".git/objects")];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let m = e.metadata().unwrap();
            if m.is_dir() {
                stack.push(e.path());
            } else {
                files.push((e.path().display().to_string(), m.len()));
            }
        }
    }
    files.sort();
    (git(repo, &["count-objects", "-v"], None), files)
}

/// The work tree, the index and the staged diff: what no dist build may change.
fn state(repo: &Path) -> (String, String, String) {
    (
        git(repo, &["status", "--porcelain", "--ignored"], None),
        git(repo, &["diff", "--cached"], None),
        git(repo, &["ls-files", "--stage"], None),
    )
}

fn tree_at(repo: &Path, rev: &str) -> String {
    git(repo, &["rev-parse", rev], None).trim().to_string()
}

#[test]
fn a_subset_build_carries_the_other_layouts_over_and_check_writes_nothing() {
    let t = tempfile::tempdir().unwrap();
    let repo = t.path();
    let dir = project(repo, b"busybox", TOML);
    assert_exit(&run(&dir, &["build"]), 0);
    let glibc_amd64 = tree_at(repo, "dist-amd64:busybox/latest/glibc/amd64");
    let musl_amd64 = tree_at(repo, "dist-amd64:busybox/latest/musl/amd64");
    let amd64 = tree_at(repo, "dist-amd64");

    // One image's one architecture changes: only that branch moves, the other image's
    // layout is carried over from the tip, byte for byte.
    fs::write(dir.join("rootfs/musl/amd64/etc/id"), "musl amd64, new\n").unwrap();
    commit_all(repo, "@1785000100 +0000");
    let first = refs(repo);
    let o = run(&dir, &["build", "--image", "musl", "--arch", "amd64"]);
    assert_exit(&o, 0);
    assert!(
        text(&o.stdout).starts_with("musl amd64 committed "),
        "{}",
        text(&o.stdout)
    );
    assert_eq!(
        tree_at(repo, "dist-amd64^"),
        amd64,
        "the parent is the old tip"
    );
    assert_eq!(
        tree_at(repo, "dist-amd64:busybox/latest/glibc/amd64"),
        glibc_amd64
    );
    assert_ne!(
        tree_at(repo, "dist-amd64:busybox/latest/musl/amd64"),
        musl_amd64
    );
    let listing = git(repo, &["ls-tree", "-r", "--name-only", "dist-amd64"], None);
    assert!(
        listing
            .lines()
            .all(|l| l.starts_with("busybox/latest/glibc/amd64/")
                || l.starts_with("busybox/latest/musl/amd64/"))
    );
    let message = git(repo, &["log", "-1", "--format=%B", "dist-amd64"], None);
    assert!(
        message.contains("carried over from the parent: glibc amd64\n"),
        "{message}"
    );
    let moved: Vec<&str> = first
        .lines()
        .zip(refs(repo).lines())
        .filter(|(a, b)| a != b)
        .map(|(a, _)| a.split(' ').next().unwrap())
        .collect();
    assert_eq!(moved, ["refs/heads/dist-amd64"]);

    // A `from` image selects the layouts it uses; nothing changed, nothing moves.
    let before = refs(repo);
    let o = run(&dir, &["build", "--image", "latest"]);
    assert_exit(&o, 0);
    assert_eq!(
        text(&o.stdout).matches(" unchanged ").count(),
        4,
        "{}",
        text(&o.stdout)
    );
    assert_eq!(refs(repo), before);

    // --check compares with the branches and writes nothing into the repository.
    let objs = objects(repo);
    let o = run(&dir, &["build", "--check"]);
    assert_exit(&o, 0);
    assert_eq!(
        text(&o.stdout).matches("same ").count(),
        6,
        "{}",
        text(&o.stdout)
    );
    fs::write(dir.join("rootfs/glibc/s390x/etc/id"), "changed\n").unwrap();
    let o = run(&dir, &["build", "--check"]);
    assert_exit(&o, 1);
    let out = text(&o.stdout);
    assert!(
        out.contains("DIFFERS  glibc s390x refs/heads/dist-s390x\n"),
        "{out}"
    );
    assert!(
        out.contains("same     musl s390x refs/heads/dist-s390x\n"),
        "{out}"
    );
    assert_eq!(objects(repo), objs, "no object written by --check");
    assert_eq!(refs(repo), before);
    common::git::assert_no_staging(&repo.join(".git"));

    // A path on a branch that is none of the project's layouts: --check names the branch,
    // and a build's commit holds exactly the project's layouts again.
    let stray = std::process::Command::new("sh")
        .arg("-c")
        .arg(
            "set -e; tip=$(git rev-parse dist-s390x); blob=$(echo stray | git hash-object -w --stdin); \
             tree=$( (git ls-tree dist-s390x; printf '100644 blob %s\tstray\n' $blob) | git mktree); \
             c=$(git -c user.name=t -c user.email=t@example.invalid commit-tree -p $tip -m stray $tree); \
             git update-ref refs/heads/dist-s390x $c $tip",
        )
        .current_dir(repo)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .status()
        .unwrap();
    assert!(stray.success());
    fs::write(dir.join("rootfs/glibc/s390x/etc/id"), "glibc s390x\n").unwrap();
    let o = run(&dir, &["build", "--check", "--arch", "s390x"]);
    assert_exit(&o, 1);
    let out = text(&o.stdout);
    assert!(
        out.contains("same     glibc s390x refs/heads/dist-s390x\n"),
        "{out}"
    );
    assert!(
        out.contains("DIFFERS  dist-s390x refs/heads/dist-s390x\n"),
        "{out}"
    );
    assert!(out.contains("(the output directory): extra"), "{out}");
    let o = run(&dir, &["build", "--arch", "s390x"]);
    assert_exit(&o, 0);
    let listing = git(repo, &["ls-tree", "--name-only", "dist-s390x"], None);
    assert_eq!(listing, "busybox\n");
    assert_exit(&run(&dir, &["build", "--check"]), 0);

    // A subset on new branches: what the run did not build and no tip holds is absent,
    // and named.
    let o = run(
        &dir,
        &[
            "build",
            "--commit-branch",
            "other-{arch}",
            "--image",
            "musl",
        ],
    );
    assert_exit(&o, 0);
    let err = text(&o.stderr);
    assert!(
        err.contains(
            "refs/heads/other-amd64 has no layout for glibc amd64 at busybox/latest/glibc/amd64"
        ),
        "{err}"
    );
    let listing = git(
        repo,
        &["ls-tree", "--name-only", "other-amd64:busybox/latest"],
        None,
    );
    assert_eq!(listing, "musl\n");
    let o = run(&dir, &["library", "--commit-branch", "other-{arch}"]);
    assert_exit(&o, 0);
    let lib = text(&o.stdout);
    assert!(!lib.contains("glibc"), "{lib}");
    // latest's amd64, arm32v5 and s390x are glibc's (the first it names that has them), which
    // these branches lack: never silently musl's instead.
    assert!(
        lib.contains("Tags: 1, latest\nArchitectures: arm32v6\n"),
        "{lib}"
    );
    assert!(
        text(&o.stderr).contains(
            "image latest: no branch other-{arch} holds a layout for amd64, arm32v5, s390x"
        ),
        "{}",
        text(&o.stderr)
    );
    assert!(
        text(&o.stderr).contains(
            "image glibc: no branch other-{arch} holds a layout for amd64, arm32v5, s390x"
        ),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn dist_refs_are_never_moved_by_accident() {
    let t = tempfile::tempdir().unwrap();
    let repo = t.path().join("repo");
    let dir = project(&repo, b"busybox", TOML);
    // A dirty index and work tree, which must stay as they are.
    fs::write(repo.join("staged"), "staged\n").unwrap();
    git(&repo, &["add", "staged"], None);
    let before = (state(&repo), refs(&repo), objects(&repo));

    // dist-amd64 is a symbolic ref to the branch checked out: writing through it would
    // move master onto the dist commit and leave the index staged against it.
    git(
        &repo,
        &["symbolic-ref", "refs/heads/dist-amd64", "refs/heads/master"],
        None,
    );
    let with_symref = refs(&repo);
    for args in [&["build"][..], &["build", "--check"][..]] {
        let o = run(&dir, args);
        assert_exit(&o, 2);
        assert!(
            text(&o.stderr).contains(
                "commit branch dist-amd64: is a symbolic ref to refs/heads/master; ocipack \
                 never writes through a symbolic ref"
            ),
            "{}",
            text(&o.stderr)
        );
        assert_eq!(refs(&repo), with_symref);
        assert_eq!(state(&repo), before.0);
        assert_eq!(
            objects(&repo),
            before.2,
            "refused before anything is written"
        );
    }
    git(
        &repo,
        &["symbolic-ref", "-d", "refs/heads/dist-amd64"],
        None,
    );

    // A dist branch checked out in a linked work tree.
    assert_exit(&run(&dir, &["build", "--arch", "arm32v6"]), 0);
    let linked = t.path().join("linked");
    git(
        &repo,
        &[
            "worktree",
            "add",
            "-q",
            linked.to_str().unwrap(),
            "dist-arm32v6",
        ],
        None,
    );
    let tips = refs(&repo);
    fs::write(dir.join("rootfs/musl/arm32v6/etc/id"), "new\n").unwrap();
    let o = run(&dir, &["build"]);
    assert_exit(&o, 2);
    assert!(
        text(&o.stderr).contains("commit branch dist-arm32v6: is checked out in a work tree"),
        "{}",
        text(&o.stderr)
    );
    assert_eq!(refs(&repo), tips, "no branch moved, not even the others");
    assert_eq!(state(&linked).0, "");
}

#[test]
fn a_project_path_that_is_not_utf8_is_refused_never_mangled() {
    let t = tempfile::tempdir().unwrap();
    let repo = t.path();
    let in_tree = TOML.replace("commit-branch = \"dist-{arch}\"\n", "");
    let dir = project(repo, b"caf\xe9", &in_tree);
    let objs = objects(repo);
    let o = run(&dir, &["build", "--commit-branch", "dist-{arch}"]);
    assert_exit(&o, 2);
    let err = text(&o.stderr);
    assert!(
        err.contains("caf\\xe9: its path in the repository, \"caf\\xe9/\", is not UTF-8"),
        "{err}"
    );
    assert!(!err.contains('\u{fffd}'), "{err}");
    assert_eq!(objects(repo), objs, "nothing written");
    assert!(git(repo, &["branch", "--list", "dist-*"], None).is_empty());

    // In the work tree the build works (no name of it is written anywhere), and the
    // library file, which would have to name it, is refused.
    assert_exit(&run(&dir, &["build"]), 0);
    commit_all(repo, "@1785000100 +0000");
    let o = run(&dir, &["library"]);
    assert_exit(&o, 2);
    assert!(
        text(&o.stderr).contains("is not UTF-8"),
        "{}",
        text(&o.stderr)
    );
    assert!(o.stdout.is_empty());
}

/// debian's `bookworm/oci` for a project of one image: on dist branches every
/// architecture's layout is at the same path, so `{arch}` is not needed and the entry has
/// one `Directory:`; in the work tree it still is.
#[test]
fn on_dist_branches_a_single_images_output_needs_no_arch() {
    let t = tempfile::tempdir().unwrap();
    let repo = t.path();
    let toml = "name = \"debian\"\ncreated = 2026-08-03T00:00:00Z\n\
                architectures = [\"amd64\", \"s390x\"]\noutput = \"bookworm/oci\"\n\n\
                [[input]]\nrootfs = \"rootfs/glibc/{arch}\"\n\n\
                [library]\nmaintainers = [\"A <a@example.invalid> (@a)\"]\n\
                git-repo = \"https://example.invalid/debian.git\"\ntags = [\"bookworm\"]\n\
                commit-branch = \"dist-{arch}\"\n";
    let dir = project(repo, b"debian", toml);
    assert_exit(&run(&dir, &["build"]), 0);
    let o = run(&dir, &["library"]);
    assert_exit(&o, 0);
    let lib = text(&o.stdout);
    let amd64 = tree_at(repo, "dist-amd64");
    let s390x = tree_at(repo, "dist-s390x");
    assert!(
        lib.contains(&format!(
            "Tags: bookworm\nArchitectures: amd64, s390x\nBuilder: oci-import\nFile: index.json\n\
             Directory: debian/bookworm/oci\namd64-GitFetch: refs/heads/dist-amd64\n\
             amd64-GitCommit: {}\ns390x-GitFetch: refs/heads/dist-s390x\ns390x-GitCommit: {}\n",
            git(repo, &["rev-parse", "dist-amd64"], None).trim(),
            git(repo, &["rev-parse", "dist-s390x"], None).trim(),
        )),
        "{lib}"
    );
    assert_ne!(amd64, s390x);

    // Without dist branches the two layouts would share one directory.
    fs::write(
        dir.join("ocipack.toml"),
        toml.replace("commit-branch = \"dist-{arch}\"\n", ""),
    )
    .unwrap();
    let o = run(&dir, &["build"]);
    assert_exit(&o, 2);
    assert!(
        text(&o.stderr).contains("must contain {arch}"),
        "{}",
        text(&o.stderr)
    );
}

/// The user's environment and the repository's configuration never redirect a dist build
/// or run anything: variables pointing git at other object stores, index files or
/// directories are ignored (GIT_OBJECT_DIRECTORY had the commits written elsewhere and the
/// branches here pointed at commits the repository lacked), configuration given through
/// the environment is not read, and no hook runs (update-ref ran the repository's
/// reference-transaction hook) and nothing is signed. The commits are those of a clean
/// environment.
#[test]
fn the_users_git_environment_and_hooks_change_nothing() {
    let t = tempfile::tempdir().unwrap();
    let clean = t.path().join("clean");
    let dir = project(&clean, b"busybox", TOML);
    assert_exit(&run(&dir, &["build"]), 0);

    let repo = t.path().join("repo");
    let dir = project(&repo, b"busybox", TOML);
    // Hooks that leave a mark, where core.hooksPath and .git/hooks put them, and a
    // signing program that does too (and fails).
    let mark = t.path().join("ran");
    let hooks = t.path().join("hooks");
    fs::create_dir_all(&hooks).unwrap();
    let script = format!("#!/bin/sh\necho \"$0\" >> '{}'\nexit 1\n", mark.display());
    for name in [
        "reference-transaction",
        "post-commit",
        "pre-commit",
        "post-rewrite",
    ] {
        for d in [hooks.clone(), repo.join(".git/hooks")] {
            let f = d.join(name);
            fs::write(&f, &script).unwrap();
            std::process::Command::new("chmod")
                .arg("+x")
                .arg(&f)
                .status()
                .unwrap();
        }
    }
    fs::write(t.path().join("gpg"), &script).unwrap();
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(t.path().join("gpg"))
        .status()
        .unwrap();
    git(&repo, &["config", "commit.gpgSign", "true"], None);
    git(
        &repo,
        &[
            "config",
            "gpg.program",
            t.path().join("gpg").to_str().unwrap(),
        ],
        None,
    );
    let elsewhere = t.path().join("elsewhere");
    fs::create_dir_all(&elsewhere).unwrap();
    git(&elsewhere, &["init", "-q"], None);
    let e = |p: &str| elsewhere.join(p).to_str().unwrap().to_string();
    let o = ocipack()
        .arg("build")
        .arg(&dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_OBJECT_DIRECTORY", e(".git/objects"))
        .env("GIT_ALTERNATE_OBJECT_DIRECTORIES", e(".git/objects"))
        .env("GIT_DIR", e(".git"))
        .env("GIT_WORK_TREE", e(""))
        .env("GIT_INDEX_FILE", e(".git/index"))
        .env("GIT_COMMON_DIR", e(".git"))
        .env("GIT_CONFIG_COUNT", "1")
        .env("GIT_CONFIG_KEY_0", "core.hooksPath")
        .env("GIT_CONFIG_VALUE_0", hooks.to_str().unwrap())
        .output()
        .unwrap();
    assert_exit(&o, 0);
    assert!(
        !mark.exists(),
        "ran: {}",
        fs::read_to_string(&mark).unwrap()
    );
    let fsck = std::process::Command::new("git")
        .args(["fsck", "--strict", "--no-dangling"])
        .current_dir(&repo)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .unwrap();
    assert!(fsck.status.success(), "{}", text(&fsck.stderr));
    let dist = |r: &Path| {
        git(
            r,
            &[
                "for-each-ref",
                "--format=%(refname) %(objectname)",
                "refs/heads/dist-*",
            ],
            None,
        )
    };
    assert_eq!(
        dist(&repo),
        dist(&clean),
        "the commits of a clean environment"
    );
    assert_eq!(dist(&repo).lines().count(), 4);
    assert!(git(&elsewhere, &["count-objects", "-v"], None).contains("count: 0\n"));
    for b in dist(&repo).lines() {
        let id = b.split(' ').nth(1).unwrap();
        let c = git(&repo, &["cat-file", "commit", id], None);
        assert!(!c.contains("gpgsig"), "{c}");
    }
}
