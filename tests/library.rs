//! `ocipack library`: the Official Images library file of the example, compared with an
//! expected file, in a temporary git repository holding a copy of the example.

mod common;
#[path = "common/git.rs"]
mod git;

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use common::{assert_exit, ocipack, repo};
use git::{commit_all, example_repo};

fn library(dir: &Path) -> Output {
    ocipack().arg("library").arg(dir).output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
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
             GitRepo: https://git.ocipack.invalid/ocipack.git\nGitCommit: {commit}\n\n"
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
    assert_exit(&o, 2);
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
