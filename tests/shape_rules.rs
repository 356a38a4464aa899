//! Regression tests for the rules and checks reshaped by issue 16 (part P2), at the command
//! line: each test crafts a layout and runs `ocipack verify` (or `diff`) on it, and checks
//! what the real tools make of the same layout where the rule is about them.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::cli::{self, os};
use common::ocipack;

/// A layout of one image built from a small tree, `--names none` unless `extra` says
/// otherwise, at `<t>/oci`.
fn layout(t: &Path, extra: &[&str]) -> PathBuf {
    let tree = t.join("tree");
    fs::create_dir_all(tree.join("etc")).unwrap();
    fs::write(tree.join("hello"), "hello\n").unwrap();
    fs::write(tree.join("etc/motd"), "welcome\n").unwrap();
    let out = t.join("oci");
    let mut extra = extra.to_vec();
    if !extra.contains(&"--names") {
        extra.extend(["--names", "none"]);
    }
    let o = cli::image(&[os("--rootfs"), tree.as_os_str()], &out, &extra)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", cli::show(&o));
    out
}

fn run(args: &[&std::ffi::OsStr]) -> Output {
    ocipack().args(args).output().unwrap()
}

/// `diff --file F` (and `--file-a`, `--file-b`) names a file inside each layout, as
/// `verify --file` does: a name that leaves the layout is a usage error naming the option
/// as written (it was read as a path in the layout, and refused as an invalid layout).
#[test]
fn diff_file_options_are_checked_like_verify_file() {
    let t = tempfile::tempdir().unwrap();
    let l = layout(t.path(), &["--descriptor-file", "d.json"]);
    let l = l.as_os_str();
    for (option, name) in [
        ("--file", "../d.json"),
        ("--file-a", "/etc/passwd"),
        ("--file-b", "a/../../d.json"),
    ] {
        let o = run(&[os("diff"), l, l, os(option), os(name)]);
        let e = cli::assert_error(&o, 2);
        assert!(
            e.contains(&format!(
                "error: {option}: \"{name}\" must be a relative path without '..'"
            )),
            "{e}"
        );
        // Checked before any layout is read: a missing one is not what is reported.
        let o = run(&[os("diff"), os("/nonexistent"), l, os(option), os(name)]);
        let e = cli::assert_error(&o, 2);
        assert!(e.contains(&format!("error: {option}: ")), "{e}");
    }
    let o = run(&[os("diff"), l, l, os("--file"), os("d.json")]);
    assert_eq!(o.status.code(), Some(0), "{}", cli::show(&o));
}
