//! Git helpers for tests that need a repository of their own.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs git in `dir` with a fixed identity and no user or system configuration; `date`
/// (e.g. `@1700000000 +0000`) sets the author and committer time. Returns stdout.
pub fn git(dir: &Path, args: &[&str], date: Option<&str>) -> String {
    let mut c = Command::new("git");
    c.arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=Test",
            "-c",
            "user.email=test@example.invalid",
        ])
        .args([
            "-c",
            "init.defaultBranch=main",
            "-c",
            "protocol.file.allow=always",
        ])
        .args(args)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1");
    if let Some(d) = date {
        c.env("GIT_COMMITTER_DATE", d).env("GIT_AUTHOR_DATE", d);
    }
    let o = c.output().expect("git runs");
    assert!(
        o.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).expect("git prints UTF-8")
}

/// Commits everything in the work tree at `date`; returns the new commit's id.
pub fn commit_all(dir: &Path, date: &str) -> String {
    git(dir, &["add", "-A"], None);
    git(dir, &["commit", "-q", "-m", "test commit"], Some(date));
    git(dir, &["rev-parse", "HEAD"], None).trim().to_string()
}

/// A new git repository at `root` holding a copy of this checkout's
/// `examples/hello-world` (without the Makefile's `build/`); returns the example's path.
pub fn example_repo(root: &Path) -> PathBuf {
    fs::create_dir_all(root.join("examples")).unwrap();
    let st = Command::new("cp")
        .arg("-a")
        .arg(crate::common::repo().join("examples/hello-world"))
        .arg(root.join("examples"))
        .status()
        .unwrap();
    assert!(st.success());
    let ex = root.join("examples/hello-world");
    let _ = fs::remove_dir_all(ex.join("build"));
    git(root, &["init", "-q"], None);
    ex
}

/// Asserts that `git_dir` holds no staging of ocipack's: `ocipack/` is absent or holds only
/// the build records (`ocipack/cache`, see `project::cache`).
pub fn assert_no_staging(git_dir: &Path) {
    let left: Vec<String> = fs::read_dir(git_dir.join("ocipack"))
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        left.iter().all(|n| n == "cache"),
        "staging left in {}: {left:?}",
        git_dir.display()
    );
}
