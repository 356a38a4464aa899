//! `ocipack library`: the Official Images library file of the example, compared with an
//! expected file, in a temporary git repository holding a copy of the example.

use crate::common;
use crate::common::git;

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use common::cli::{stderr, stdout};
use common::{assert_exit, ocipack, repo};
use git::{commit_all, example_repo};

fn library(dir: &Path) -> Output {
    ocipack().arg("library").arg(dir).output().unwrap()
}

#[test]
fn the_example_library_file_matches_the_expected_file() {
    let t = tempfile::tempdir().unwrap();
    let ex = example_repo(t.path());
    let outputs_commit = commit_all(t.path(), "@1800000000 +0000");
    // A later commit that touches no output does not move GitCommit.
    fs::write(t.path().join("README"), "unrelated\n").unwrap();
    let head = commit_all(t.path(), "@1800000100 +0000");
    assert_ne!(head, outputs_commit);

    let o = library(&ex);
    assert_exit(&o, 0);
    let expected = fs::read_to_string(repo().join("tests/data/hello-world.library"))
        .unwrap()
        .replace(
            "GitCommit: {commit}",
            &format!("GitCommit: {outputs_commit}"),
        );
    assert_eq!(stdout(&o), expected);

    // From the repository root, and from inside the example: the same text.
    let o = ocipack().arg("library").current_dir(&ex).output().unwrap();
    assert_exit(&o, 0);
    assert_eq!(stdout(&o), expected);
}

#[test]
fn only_built_outputs_are_listed() {
    let t = tempfile::tempdir().unwrap();
    let ex = example_repo(t.path());
    fs::remove_dir_all(ex.join("s390x/oci")).unwrap();
    fs::remove_dir_all(ex.join("amd64/nanoserver-ltsc2022")).unwrap();
    let toml = fs::read_to_string(ex.join("ocipack.toml")).unwrap();
    fs::write(
        ex.join("ocipack.toml"),
        toml.replace(
            "maintainers = [\"ocipack developers <dev@ocipack.invalid> (@ocipack)\"]",
            "maintainers = [\"A <a@example.invalid> (@a)\", \"B <b@example.invalid> (@b)\"]",
        ),
    )
    .unwrap();
    let commit = commit_all(t.path(), "@1800000000 +0000");
    let o = library(&ex);
    assert_exit(&o, 0);
    let text = stdout(&o);
    assert!(
        text.contains(&format!(
            "\nMaintainers: A <a@example.invalid> (@a),\n             B <b@example.invalid> (@b)\n\
             GitRepo: https://git.ocipack.invalid/ocipack.git\nGitFetch: refs/heads/main\n\
             GitCommit: {commit}\n\n"
        )),
        "{text}"
    );
    assert!(
        text.contains(
            "\nArchitectures: amd64, arm32v5, arm32v6, arm32v7, arm64v8, i386, mips64le, ppc64le, riscv64\n"
        ),
        "{text}"
    );
    assert!(
        !text.contains("s390x") && !text.contains("ltsc2022"),
        "{text}"
    );
    assert!(
        text.contains("\nConstraints: nanoserver-ltsc2025\n"),
        "{text}"
    );
    // Entries are separated by exactly one blank line: header, Linux, one Windows variant.
    assert_eq!(text.split("\n\n").count(), 4, "{text}");
}

#[test]
fn refuses_uncommitted_outputs_non_repositories_and_missing_library_table() {
    let t = tempfile::tempdir().unwrap();
    let ex = example_repo(t.path());
    commit_all(t.path(), "@1800000000 +0000");
    fs::write(ex.join("arm64v8/oci/stray"), b"").unwrap();
    let o = library(&ex);
    assert_exit(&o, 1);
    assert!(
        stderr(&o).contains("uncommitted changes") && stderr(&o).contains("arm64v8/oci/stray"),
        "{}",
        stderr(&o)
    );
    fs::remove_file(ex.join("arm64v8/oci/stray")).unwrap();

    let toml = fs::read_to_string(ex.join("ocipack.toml")).unwrap();
    let cut = toml.find("[library]").unwrap();
    fs::write(ex.join("ocipack.toml"), &toml[..cut]).unwrap();
    let o = library(&ex);
    assert_exit(&o, 2);
    assert!(stderr(&o).contains("[library]"), "{}", stderr(&o));

    let plain = tempfile::tempdir().unwrap();
    let copy = plain.path().join("hello-world");
    let st = Command::new("cp")
        .arg("-a")
        .arg(repo().join("examples/hello-world"))
        .arg(&copy)
        .status()
        .unwrap();
    assert!(st.success());
    let o = library(&copy);
    assert_exit(&o, 2);
    assert!(
        stderr(&o).contains("not inside a git work tree"),
        "{}",
        stderr(&o)
    );
}

fn set_branch(root: &Path, branch: &str) {
    git::git(
        root,
        &["symbolic-ref", "HEAD", &format!("refs/heads/{branch}")],
        None,
    );
}

#[test]
fn git_fetch_is_the_current_branch_on_main_and_on_master() {
    for branch in ["main", "master"] {
        let t = tempfile::tempdir().unwrap();
        let ex = example_repo(t.path());
        set_branch(t.path(), branch);
        let c = commit_all(t.path(), "@1800000000 +0000");
        let o = library(&ex);
        assert_exit(&o, 0);
        let text = stdout(&o);
        assert!(
            text.contains(&format!("GitFetch: refs/heads/{branch}\nGitCommit: {c}\n")),
            "{text}"
        );
        // All outputs in one commit: no per-architecture line.
        assert!(!text.contains("-GitCommit:"), "{text}");
    }
}

#[test]
fn git_fetch_setting_and_detached_head() {
    let t = tempfile::tempdir().unwrap();
    let ex = example_repo(t.path());
    let c = commit_all(t.path(), "@1800000000 +0000");
    git::git(t.path(), &["checkout", "-q", "--detach"], None);
    let o = library(&ex);
    assert_exit(&o, 2);
    assert!(
        stderr(&o).contains("HEAD is detached") && stderr(&o).contains("git-fetch"),
        "{}",
        stderr(&o)
    );
    let toml = fs::read_to_string(ex.join("ocipack.toml")).unwrap();
    let with = toml.replace(
        "tags = [\"linux\"]",
        "tags = [\"linux\"]\ngit-fetch = \"refs/tags/v1\"",
    );
    fs::write(ex.join("ocipack.toml"), &with).unwrap();
    let o = library(&ex);
    assert_exit(&o, 0);
    assert!(
        stdout(&o).contains(&format!("GitFetch: refs/tags/v1\nGitCommit: {c}\n")),
        "{}",
        stdout(&o)
    );
    for bad in [
        "main",
        "refs/heads/a:b",
        "refs/remotes/origin/main",
        "refs/heads/",
        // Revision expressions: git resolves them, bashbrew cannot fetch them.
        "refs/heads/main~0",
        "refs/heads/main^0",
        "refs/heads/main@{1}",
        "refs/tags/v1..v2",
        "refs/heads/x.lock",
    ] {
        fs::write(
            ex.join("ocipack.toml"),
            toml.replace(
                "tags = [\"linux\"]",
                &format!("tags = [\"linux\"]\ngit-fetch = \"{bad}\""),
            ),
        )
        .unwrap();
        let o = library(&ex);
        assert_exit(&o, 2);
        assert!(
            stderr(&o).contains("library.git-fetch") && stderr(&o).contains("refs/heads/<branch>"),
            "{bad}: {}",
            stderr(&o)
        );
    }
}

#[test]
fn per_architecture_git_commit_is_the_newest_commit_touching_its_output() {
    let t = tempfile::tempdir().unwrap();
    let ex = example_repo(t.path());
    set_branch(t.path(), "master");
    let c1 = commit_all(t.path(), "@1800000000 +0000");
    // Only the Windows outputs change: the Linux entry still agrees, on c1.
    fs::write(ex.join("amd64/nanoserver-ltsc2025/NOTE"), "x\n").unwrap();
    let c2 = commit_all(t.path(), "@1800000100 +0000");
    let text = stdout(&library(&ex));
    assert!(
        text.contains(&format!("GitCommit: {c2}\n\nTags: linux\n")),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "Architectures: amd64, arm32v5, arm32v6, arm32v7, arm64v8, i386, mips64le, ppc64le, riscv64, s390x\nGitCommit: {c1}\nBuilder: oci-import\n"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "Tags: nanoserver-ltsc2022\nSharedTags: nanoserver, latest\nArchitectures: windows-amd64\nGitCommit: {c1}\n"
        )),
        "{text}"
    );
    assert!(!text.contains("-GitCommit:"), "{text}");

    // One architecture changes: every architecture names its own commit.
    fs::write(ex.join("s390x/oci/NOTE"), "x\n").unwrap();
    let c3 = commit_all(t.path(), "@1800000200 +0000");
    let text = stdout(&library(&ex));
    assert!(text.contains(&format!("GitFetch: refs/heads/master\nGitCommit: {c3}\n")));
    assert!(
        text.contains(&format!(
            "amd64-GitCommit: {c1}\namd64-Directory: examples/hello-world/amd64/oci\n"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "s390x-GitCommit: {c3}\ns390x-Directory: examples/hello-world/s390x/oci\n"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "Architectures: windows-amd64\nGitCommit: {c2}\nwindows-amd64-Directory: examples/hello-world/amd64/nanoserver-ltsc2025\n"
        )),
        "{text}"
    );
}

#[test]
fn dirty_outputs_are_refused_naming_the_paths_unless_allowed() {
    let t = tempfile::tempdir().unwrap();
    let ex = example_repo(t.path());
    let c = commit_all(t.path(), "@1800000000 +0000");
    // A staged change (the index differs from HEAD, the work tree from nothing).
    fs::write(ex.join("i386/oci/index.json"), b"{}").unwrap();
    git::git(
        t.path(),
        &["add", "examples/hello-world/i386/oci/index.json"],
        None,
    );
    // A modified file, and an ignored one.
    fs::write(ex.join("amd64/oci/oci-layout"), b"{}").unwrap();
    fs::write(t.path().join(".git/info/exclude"), "*.ignored\n").unwrap();
    fs::write(ex.join("riscv64/oci/x.ignored"), b"").unwrap();
    let o = library(&ex);
    assert_exit(&o, 1);
    let e = stderr(&o);
    for want in [
        "M  examples/hello-world/i386/oci/index.json",
        " M examples/hello-world/amd64/oci/oci-layout",
        "!! examples/hello-world/riscv64/oci/x.ignored",
        "--allow-dirty",
    ] {
        assert!(e.contains(want), "{want:?} not in {e}");
    }
    assert!(stdout(&o).is_empty());
    let o = ocipack()
        .args(["library", "--allow-dirty"])
        .arg(&ex)
        .output()
        .unwrap();
    assert_exit(&o, 0);
    assert!(stdout(&o).contains(&format!("GitCommit: {c}\n")));
    assert!(
        stderr(&o).contains("warning: --allow-dirty"),
        "{}",
        stderr(&o)
    );
}

/// With `[library] git-fetch` set, the commits the library file names come from the work
/// tree's history, which need not be on that ref: bashbrew fetches GitFetch and would not
/// find them. Each one this repository cannot reach from the ref is a warning naming it; a
/// ref the repository does not have is a warning that nothing could be checked.
#[test]
fn commits_not_reachable_from_the_configured_git_fetch_are_warned_about() {
    let t = tempfile::tempdir().unwrap();
    let ex = example_repo(t.path());
    set_branch(t.path(), "feature");
    let toml = fs::read_to_string(ex.join("ocipack.toml")).unwrap();
    let with = toml.replace(
        "tags = [\"linux\"]",
        "tags = [\"linux\"]\ngit-fetch = \"refs/heads/main\"",
    );
    fs::write(ex.join("ocipack.toml"), with).unwrap();
    let c = commit_all(t.path(), "@1800000000 +0000");

    // No main here at all.
    let o = library(&ex);
    assert_exit(&o, 0);
    assert!(
        stderr(&o).contains("warning: GitFetch refs/heads/main is not a ref of this repository")
            && stderr(&o).contains(&c),
        "{}",
        stderr(&o)
    );
    assert!(stdout(&o).contains(&format!("GitFetch: refs/heads/main\nGitCommit: {c}\n")));

    // main is behind the commit that holds the outputs.
    git::git(t.path(), &["branch", "main", &c], None);
    fs::copy(ex.join("i386/hello"), ex.join("amd64/hello")).unwrap();
    assert_exit(
        &ocipack()
            .args(["build", "--arch", "amd64"])
            .arg(&ex)
            .output()
            .unwrap(),
        0,
    );
    let outputs = commit_all(t.path(), "@1800000200 +0000");
    let o = library(&ex);
    assert_exit(&o, 0);
    let err = stderr(&o);
    assert!(
        err.contains(&format!(
            "warning: GitCommit {outputs} is not reachable from refs/heads/main here"
        )),
        "{err}"
    );
    // i386's output is in c, which main has: no word about it.
    assert!(!err.contains(&format!("{c} is not reachable")), "{err}");

    // Once main has the commit, nothing to say.
    git::git(t.path(), &["branch", "-f", "main", "feature"], None);
    let o = library(&ex);
    assert_exit(&o, 0);
    assert!(!stderr(&o).contains("warning"), "{}", stderr(&o));
}
