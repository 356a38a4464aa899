//! Helpers shared by the CLI-level tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `ocipack` binary under test, with an environment that cannot leak into outputs.
pub fn ocipack() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ocipack"));
    c.env_remove("SOURCE_DATE_EPOCH");
    c
}

/// Runs `ocipack` with `args`, returning its output.
pub fn run(args: &[&str]) -> Output {
    ocipack().args(args).output().expect("ocipack runs")
}

/// Asserts the command exited with `code`, showing its output otherwise.
pub fn assert_exit(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// True if `tool` is on PATH. Under `CI=true` a missing tool fails the test: CI installs
/// every tool, so a missing one is a broken CI, never a silent skip.
pub fn require_tool(tool: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !found {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{tool} is not installed, and CI=true: .ci/run must install it");
        }
        eprintln!("SKIPPED: {tool} is not installed (set CI=true to make this a failure)");
    }
    found
}

/// Every regular file and symlink below `dir`, relative path → (is_symlink, bytes or link target).
pub fn snapshot(dir: &Path) -> std::collections::BTreeMap<String, (bool, Vec<u8>)> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
            let m = std::fs::symlink_metadata(&p).unwrap();
            if m.file_type().is_symlink() {
                let t = std::fs::read_link(&p).unwrap();
                out.insert(rel, (true, t.to_string_lossy().into_owned().into_bytes()));
            } else if m.is_dir() {
                stack.push(p);
            } else {
                out.insert(rel, (false, std::fs::read(&p).unwrap()));
            }
        }
    }
    out
}
