//! `ocipack build --commit-branch 'dist-{arch}'`: each layout committed on its own branch,
//! reproducibly (two clones get the same commit ids), without touching the work tree or
//! the index; `ocipack library` names the branch tips; a fetched dist commit yields a
//! layout that passes `verify --profile oci-import`; hostile settings are refused.

use crate::common;
use crate::common::git;

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use common::cli::text;
use common::{assert_exit, ocipack};
use git::{commit_all, example_repo, git};

const ARCHES: [&str; 10] = [
    "amd64", "arm32v5", "arm32v6", "arm32v7", "arm64v8", "i386", "mips64le", "ppc64le", "riscv64",
    "s390x",
];

fn build(ex: &Path, extra: &[&str]) -> Output {
    ocipack()
        .arg("build")
        .args(extra)
        .arg(ex)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .unwrap()
}

fn tip(repo: &Path, branch: &str) -> String {
    git(repo, &["rev-parse", &format!("refs/heads/{branch}")], None)
        .trim()
        .to_string()
}

/// `git status --porcelain`, the staged diff and the index's entries: what a dist build
/// must leave exactly as it was. (Not the index file's bytes: `git status` itself
/// refreshes their stat data.)
fn state(repo: &Path) -> (String, String, String) {
    (
        git(repo, &["status", "--porcelain", "--ignored"], None),
        git(repo, &["diff", "--cached"], None),
        git(repo, &["ls-files", "--stage"], None),
    )
}

#[test]
fn two_clones_make_identical_dist_commits_and_a_fetched_one_passes_the_profile() {
    let t = tempfile::tempdir().unwrap();
    let origin = t.path().join("origin");
    example_repo(&origin);
    commit_all(&origin, "@1800000000 +0000");

    let mut tips = Vec::new();
    for (n, name) in ["a", "b"].iter().enumerate() {
        let clone = t.path().join(name);
        git(
            t.path(),
            &["clone", "-q", origin.to_str().unwrap(), name],
            None,
        );
        let ex = clone.join("examples/hello-world");
        // A dirty index and work tree, which the build must leave alone.
        fs::write(clone.join("staged"), b"staged\n").unwrap();
        git(&clone, &["add", "staged"], None);
        fs::write(clone.join("untracked"), b"x\n").unwrap();
        let before = state(&clone);
        let mut cmd = ocipack();
        cmd.args(["build", "--commit-branch", "dist-{arch}"])
            .arg(&ex);
        if n == 1 {
            // The second machine: another time zone, umask and user configuration.
            let home = t.path().join("home");
            fs::create_dir_all(&home).unwrap();
            fs::write(
                home.join(".gitconfig"),
                "[user]\n\tname = Someone Else\n\temail = else@example.invalid\n\
                 [i18n]\n\tcommitEncoding = ISO-8859-1\n[commit]\n\tgpgSign = true\n",
            )
            .unwrap();
            cmd.env("HOME", &home)
                .env_remove("GIT_CONFIG_GLOBAL")
                .env("TZ", "America/Los_Angeles")
                .env("LC_ALL", "C");
        }
        let o = cmd.output().unwrap();
        assert_exit(&o, 0);
        assert_eq!(state(&clone), before, "work tree and index untouched");
        common::git::assert_no_staging(&clone.join(".git"));
        let out = text(&o.stdout);
        assert!(out.contains("refs/heads/dist-amd64 "), "{out}");
        let these: Vec<String> = ARCHES
            .iter()
            .map(|a| tip(&clone, &format!("dist-{a}")))
            .collect();
        tips.push((clone, these));
    }
    assert_eq!(tips[0].1, tips[1].1, "the same commit ids in both clones");
    let (a, a_tips) = &tips[0];

    // The commit: fixed identity and date, no parent, only the layout, modes 100644/120000.
    let show = git(
        a,
        &[
            "log",
            "-1",
            "--format=%an <%ae>|%cn <%ce>|%at|%ct|%P|%e",
            "dist-amd64",
        ],
        None,
    );
    assert_eq!(
        show.trim(),
        "ocipack <ocipack@ocipack.invalid>|ocipack <ocipack@ocipack.invalid>|1795722495|1795722495||"
    );
    let tree = git(a, &["ls-tree", "-r", "dist-amd64"], None);
    // The whole layout, so that the checks of each entry below cannot pass on an empty tree:
    // the index, oci-layout, the named links and three blobs (manifest, config, layer).
    let mut names: Vec<&str> = tree
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(_, p)| {
            p.strip_prefix("examples/hello-world/amd64/oci/")
                .unwrap_or(p)
        })
        .map(|p| {
            if p.starts_with("blobs/sha256/") {
                "blobs/sha256/…"
            } else {
                p
            }
        })
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "blobs/sha256/…",
            "blobs/sha256/…",
            "blobs/sha256/…",
            "image-config.json",
            "image-manifest.json",
            "index.json",
            "oci-layout",
            "rootfs.tar.gz"
        ],
        "{tree}"
    );
    for line in tree.lines() {
        let (mode, rest) = line.split_once(' ').unwrap();
        let path = rest.split_once('\t').unwrap().1;
        assert!(
            path.starts_with("examples/hello-world/amd64/oci/"),
            "{line}"
        );
        let want = if path.ends_with(".json")
            && !path.contains("blobs/")
            && path != "examples/hello-world/amd64/oci/index.json"
            || path.ends_with("rootfs.tar.gz")
        {
            "120000"
        } else {
            "100644"
        };
        assert_eq!(mode, want, "{line}");
    }

    // Rebuilding changes nothing; a new created makes a child of the previous tip.
    let o = build(
        &a.join("examples/hello-world"),
        &["--commit-branch", "dist-{arch}"],
    );
    assert_exit(&o, 0);
    assert!(
        text(&o.stdout).contains(" unchanged "),
        "{}",
        text(&o.stdout)
    );
    let now: Vec<String> = ARCHES
        .iter()
        .map(|x| tip(a, &format!("dist-{x}")))
        .collect();
    assert_eq!(&now, a_tips);
    let o = build(
        &a.join("examples/hello-world"),
        &["--check", "--commit-branch", "dist-{arch}"],
    );
    assert_exit(&o, 0);

    // The library file names each branch and its tip.
    let o = ocipack()
        .args(["library", "--commit-branch", "dist-{arch}"])
        .arg(a.join("examples/hello-world"))
        .output()
        .unwrap();
    assert_exit(&o, 0);
    let lib = text(&o.stdout);
    for (arch, c) in ARCHES.iter().zip(a_tips) {
        assert!(
            lib.contains(&format!(
                "{arch}-GitFetch: refs/heads/dist-{arch}\n{arch}-GitCommit: {c}\n{arch}-Directory: examples/hello-world/{arch}/oci\n"
            )),
            "{lib}"
        );
    }

    // A shallow clone (the usual CI checkout) of a project whose every output is on a dist
    // branch (no Windows directories in the work tree): the header names HEAD, which a
    // shallow clone has; no history is needed.
    let ex = a.join("examples/hello-world");
    let toml = fs::read_to_string(ex.join("ocipack.toml")).unwrap();
    let linux_only = toml
        .replace(
            "[windows]\nvariants = [\"nanoserver-ltsc2025\", \"nanoserver-ltsc2022\"]\n\
             text = \"greeting.txt\"\noutput = \"amd64/{variant}\"\n",
            "",
        )
        .replace("windows-shared-tags = [\"nanoserver\", \"latest\"]\n", "");
    assert_ne!(linux_only, toml);
    fs::write(ex.join("ocipack.toml"), linux_only).unwrap();
    for v in ["nanoserver-ltsc2025", "nanoserver-ltsc2022"] {
        fs::remove_dir_all(ex.join("amd64").join(v)).unwrap();
    }
    commit_all(a, "@1800000100 +0000");
    let o = ocipack()
        .args(["library", "--commit-branch", "dist-{arch}"])
        .arg(&ex)
        .output()
        .unwrap();
    assert_exit(&o, 0);
    let lib = text(&o.stdout);
    let shallow = t.path().join("shallow");
    git(
        t.path(),
        &[
            "clone",
            "-q",
            "--depth",
            "1",
            "--no-single-branch",
            &format!("file://{}", a.display()),
            "shallow",
        ],
        None,
    );
    for arch in ARCHES {
        let b = format!("dist-{arch}");
        git(&shallow, &["branch", &b, &format!("origin/{b}")], None);
    }
    let o = ocipack()
        .args(["library", "--commit-branch", "dist-{arch}"])
        .arg(shallow.join("examples/hello-world"))
        .output()
        .unwrap();
    assert_exit(&o, 0);
    let head = git(&shallow, &["rev-parse", "HEAD"], None);
    assert!(
        text(&o.stdout).contains(&format!("GitCommit: {}\n", head.trim())),
        "{}",
        text(&o.stdout)
    );
    assert_eq!(
        text(&o.stdout),
        lib,
        "the same library file as the full clone's"
    );

    // A fresh repository fetches the dist commit; git archive yields a layout that
    // passes the oci-import profile.
    let fresh = t.path().join("fresh");
    fs::create_dir_all(&fresh).unwrap();
    git(&fresh, &["init", "-q"], None);
    git(
        &fresh,
        &["fetch", "-q", a.to_str().unwrap(), "refs/heads/dist-amd64"],
        None,
    );
    let fetched = git(&fresh, &["rev-parse", "FETCH_HEAD"], None);
    assert_eq!(fetched.trim(), a_tips[0]);
    let out = t.path().join("extracted");
    fs::create_dir_all(&out).unwrap();
    fs::create_dir_all(out.join("amd64")).unwrap();
    let st = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "git -C '{}' archive --format=tar FETCH_HEAD:examples/hello-world/amd64/oci/ | tar -x -C '{}'",
            fresh.display(),
            out.join("amd64").display()
        ))
        .status();
    assert!(st.unwrap().success());
    let o = ocipack()
        .args(["verify", "--profile", "oci-import"])
        .arg(out.join("amd64"))
        .output()
        .unwrap();
    assert_exit(&o, 0);
    assert!(text(&o.stdout).contains("valid (linux/amd64, checked against"));
}

#[test]
fn a_new_created_commits_on_top_of_the_previous_tip() {
    let t = tempfile::tempdir().unwrap();
    let ex = example_repo(t.path());
    commit_all(t.path(), "@1800000000 +0000");
    assert_exit(
        &build(&ex, &["--commit-branch", "d/{arch}", "--arch", "i386"]),
        0,
    );
    let first = tip(t.path(), "d/i386");
    let toml = fs::read_to_string(ex.join("ocipack.toml")).unwrap();
    fs::write(
        ex.join("ocipack.toml"),
        toml.replace(
            "created = 2026-11-26T19:48:15Z",
            "created = \"@1800000000\"",
        ),
    )
    .unwrap();
    let o = build(
        &ex,
        &["--commit-branch", "d/{arch}", "--arch", "i386", "--json"],
    );
    assert_exit(&o, 0);
    let second = tip(t.path(), "d/i386");
    assert_ne!(first, second);
    let parent = git(t.path(), &["rev-parse", "d/i386^"], None);
    assert_eq!(parent.trim(), first);
    let ct = git(t.path(), &["log", "-1", "--format=%ct", "d/i386"], None);
    assert_eq!(ct.trim(), "1800000000");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["branches"][0]["parent"], serde_json::json!(first));
    // The in-tree layouts were not rewritten (git status clean, nothing but the toml).
    let st = git(t.path(), &["status", "--porcelain"], None);
    assert_eq!(st.trim(), "M examples/hello-world/ocipack.toml");
}

#[test]
fn the_setting_in_ocipack_toml_and_hostile_patterns() {
    let t = tempfile::tempdir().unwrap();
    let ex = example_repo(t.path());
    commit_all(t.path(), "@1800000000 +0000");
    let toml = fs::read_to_string(ex.join("ocipack.toml")).unwrap();
    let set = |pattern: &str| {
        fs::write(
            ex.join("ocipack.toml"),
            toml.replace(
                "tags = [\"linux\"]",
                &format!("tags = [\"linux\"]\ncommit-branch = \"{pattern}\""),
            ),
        )
        .unwrap();
    };
    for (pattern, want) in [
        ("dist", "must contain {arch}"),
        ("dist {arch}", "not a valid branch name"),
        (
            "dist-{variant}",
            "unknown placeholder {variant} (known: {arch})",
        ),
        ("dist..{arch}", "not a valid branch name"),
        ("refs/heads/{arch}", "without refs/heads/"),
        ("-{arch}", "starts with '-'"),
    ] {
        set(pattern);
        let o = build(&ex, &["--arch", "amd64"]);
        assert_exit(&o, 2);
        let e = text(&o.stderr);
        assert!(
            e.contains("library.commit-branch") && e.contains(want),
            "{pattern}: {e}"
        );
        // The same pattern on the command line.
        fs::write(ex.join("ocipack.toml"), &toml).unwrap();
        let o = build(
            &ex,
            &["--arch", "amd64", &format!("--commit-branch={pattern}")],
        );
        assert_exit(&o, 2);
        assert!(
            text(&o.stderr).contains(want),
            "{pattern}: {}",
            text(&o.stderr)
        );
    }
    assert!(git(t.path(), &["branch", "--list"], None).lines().count() == 1);

    // The setting itself: build commits, library reads it.
    set("dist-{arch}");
    let o = build(&ex, &["--arch", "arm64v8"]);
    assert_exit(&o, 0);
    let c = tip(t.path(), "dist-arm64v8");
    git(
        t.path(),
        &["commit", "-qam", "setting"],
        Some("@1800000100 +0000"),
    );
    let o = ocipack().arg("library").arg(&ex).output().unwrap();
    assert_exit(&o, 0);
    let lib = text(&o.stdout);
    assert!(lib.contains("Architectures: arm64v8\n"), "{lib}");
    assert!(lib.contains(&format!("arm64v8-GitCommit: {c}\n")), "{lib}");
}

#[test]
fn branches_that_must_not_move_are_refused_and_nothing_moves() {
    let t = tempfile::tempdir().unwrap();
    let ex = example_repo(t.path());
    let head = commit_all(t.path(), "@1800000000 +0000");
    // dist-amd64 points at a tree, not a commit.
    let tree = git(t.path(), &["rev-parse", "HEAD^{tree}"], None);
    // (git update-ref refuses to do this; a hand-edited or hostile repository can.)
    fs::write(
        t.path().join(".git/refs/heads/dist-amd64"),
        format!("{}\n", tree.trim()),
    )
    .unwrap();
    let o = build(
        &ex,
        &[
            "--commit-branch",
            "dist-{arch}",
            "--arch",
            "amd64",
            "--arch",
            "i386",
        ],
    );
    assert_exit(&o, 2);
    assert!(
        text(&o.stderr).contains("refs/heads/dist-amd64: points to a tree"),
        "{}",
        text(&o.stderr)
    );
    assert_eq!(tip(t.path(), "dist-amd64"), tree.trim());
    assert!(git(t.path(), &["branch", "--list", "dist-i386"], None).is_empty());
    common::git::assert_no_staging(&t.path().join(".git"));
    fs::remove_file(t.path().join(".git/refs/heads/dist-amd64")).unwrap();

    // The branch checked out in the work tree.
    git(t.path(), &["checkout", "-q", "-b", "dist-amd64"], None);
    let o = build(&ex, &["--commit-branch", "dist-{arch}", "--arch", "amd64"]);
    assert_exit(&o, 2);
    assert!(
        text(&o.stderr).contains("is checked out"),
        "{}",
        text(&o.stderr)
    );
    assert_eq!(tip(t.path(), "dist-amd64"), head);

    // A detached HEAD builds dist branches (nothing depends on it), but the library file
    // needs git-fetch to name the entry's branch.
    git(t.path(), &["checkout", "-q", "--detach", "main"], None);
    let o = build(&ex, &["--commit-branch", "x-{arch}", "--arch", "amd64"]);
    assert_exit(&o, 0);
    let o = ocipack()
        .args(["library", "--commit-branch", "x-{arch}"])
        .arg(&ex)
        .output()
        .unwrap();
    assert_exit(&o, 2);
    assert!(
        text(&o.stderr).contains("HEAD is detached"),
        "{}",
        text(&o.stderr)
    );
}

/// Architectures whose dist branch does not exist yet are left out of the library file
/// with a warning naming them, never silently (the Windows entries alone would otherwise
/// look like a complete file).
#[test]
fn architectures_without_a_dist_branch_are_named() {
    let t = tempfile::tempdir().unwrap();
    let ex = example_repo(t.path());
    commit_all(t.path(), "@1800000000 +0000");
    let library = || {
        ocipack()
            .args(["library", "--commit-branch", "dist-{arch}"])
            .arg(&ex)
            .output()
            .unwrap()
    };
    // No branch yet: only the Windows entries can be listed.
    let o = library();
    assert_exit(&o, 0);
    let err = text(&o.stderr);
    assert!(
        err.contains(&format!(
            "warning: no branch dist-{{arch}} holds a layout for {}, so the library file \
             leaves them out",
            ARCHES.join(", ")
        )),
        "{err}"
    );
    assert!(!text(&o.stdout).contains("Architectures: amd64"));

    // One branch: the other nine are named.
    assert_exit(
        &build(&ex, &["--commit-branch", "dist-{arch}", "--arch", "amd64"]),
        0,
    );
    let o = library();
    assert_exit(&o, 0);
    let err = text(&o.stderr);
    assert!(
        err.contains(&format!("for {}, so", ARCHES[1..].join(", "))),
        "{err}"
    );
    assert!(text(&o.stdout).contains("amd64-GitFetch: refs/heads/dist-amd64\n"));
}
