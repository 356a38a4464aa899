//! The guarded filesystem layer and the git runner, seen from the command line.
//!
//! Outputs that overlap an input or another output are refused as the filesystem sees them,
//! not as their paths are spelled: a directory reached through a bind mount is the same
//! directory. Each case runs ocipack in a mount namespace of its own (`unshare -m`), where a
//! bind mount gives an output, an input or a layout a second name; nothing may be written
//! and the exit code is 2. Bind mounts need root: without it those tests are skipped,
//! unless `CI=true`, which makes that a failure.
//!
//! git that cannot be run is a failed operation (exit 1) naming the command, not an input
//! error and not a message with a program name where a path belongs.

use crate::common;

use std::fs;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use common::cli::{CREATED, sq};
use common::{assert_exit, build_hello, copy_hello_world, require_tool, run_bounded, snapshot};

const LIMIT: Duration = Duration::from_secs(120);

/// True if bind mounts can be made here (root, `unshare` and `mount` installed); under
/// `CI=true` anything missing fails the test.
fn can_bind_mount() -> bool {
    if !require_tool("unshare") || !require_tool("mount") {
        return false;
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        common::skip("bind mounts need root");
    }
    root
}

/// Runs `ocipack ARGS` in a new mount namespace in which `source` is bind-mounted on
/// `mount_point` (both exist, both directories or both files); the mount ends with the
/// namespace.
fn ocipack_with_bind(source: &Path, mount_point: &Path, args: &[&str]) -> Output {
    let mut c = Command::new("unshare");
    c.args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(format!(
            "mount --bind {} {} && exec \"$0\" \"$@\"",
            sq(source),
            sq(mount_point)
        ))
        .arg(env!("CARGO_BIN_EXE_ocipack"))
        .args(args)
        .env_remove("SOURCE_DATE_EPOCH");
    common::default_signals(&mut c);
    run_bounded(&mut c, LIMIT)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The case: `mnt` is a bind mount of the directory holding a project output, so
/// `--index mnt/oci` is that output under another name. It was replaced by the index
/// layout (exit 0); it is refused, and the project is left as it was.
#[test]
fn build_index_into_a_project_output_through_a_bind_mount_is_refused() {
    if !can_bind_mount() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let p = copy_hello_world(&t.path().join("hw"));
    let mnt = t.path().join("mnt");
    fs::create_dir(&mnt).unwrap();
    let before = snapshot(&p);
    let out = mnt.join("oci");
    let o = ocipack_with_bind(
        &p.join("amd64"),
        &mnt,
        &["build", "--index", s(&out), s(&p), "--arch", "amd64"],
    );
    assert_exit(&o, 2);
    assert!(
        stderr(&o).contains("overlaps the project's output amd64/oci"),
        "{}",
        stderr(&o)
    );
    assert_eq!(snapshot(&p), before, "the project output was written");
    // The same with the output's parent reached through the mount and a name that does
    // not exist yet inside the output, and with the mount point itself around the output.
    for out in [mnt.join("oci/new"), mnt.clone()] {
        let o = ocipack_with_bind(
            &p.join("amd64"),
            &mnt,
            &["build", "--index", s(&out), s(&p), "--arch", "amd64"],
        );
        assert_exit(&o, 2);
        assert!(stderr(&o).contains("overlaps the project's output"));
    }
    assert_eq!(snapshot(&p), before);
}

/// A bind mount of a directory *inside* an output: climbing `..` from the mount leads out
/// of the mount, never through the output, so the output's filesystem is asked (its mount
/// table) which directory holds the mounted one.
#[test]
fn a_bind_mount_of_a_directory_inside_an_output_is_inside_it() {
    if !can_bind_mount() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let p = copy_hello_world(&t.path().join("hw"));
    let mnt = t.path().join("mnt");
    fs::create_dir(&mnt).unwrap();
    let before = snapshot(&p);
    let o = ocipack_with_bind(
        &p.join("amd64/oci/blobs"),
        &mnt,
        &[
            "build",
            "--index",
            s(&mnt.join("index")),
            s(&p),
            "--arch",
            "amd64",
        ],
    );
    assert_exit(&o, 2);
    assert!(
        stderr(&o).contains("overlaps the project's output amd64/oci"),
        "{}",
        stderr(&o)
    );
    assert_eq!(snapshot(&p), before);
}

/// `ocipack image`: an output inside its own `--rootfs` tree through a bind mount (the
/// build would read its own output), and an input inside the output through a bind mount
/// (a rebuild would delete its own input).
#[test]
fn image_outputs_and_inputs_overlapping_through_a_bind_mount_are_refused() {
    if !can_bind_mount() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let tree = t.path().join("tree");
    fs::create_dir_all(tree.join("sub")).unwrap();
    fs::write(tree.join("sub/file"), b"x").unwrap();
    let mnt = t.path().join("mnt");
    fs::create_dir(&mnt).unwrap();
    let before = snapshot(&tree);
    let o = ocipack_with_bind(
        &tree.join("sub"),
        &mnt,
        &[
            "image",
            "--rootfs",
            s(&tree),
            "--arch",
            "amd64",
            "--created",
            CREATED,
            "-o",
            s(&mnt.join("out")),
        ],
    );
    assert_exit(&o, 2);
    assert!(
        stderr(&o).contains("is inside the input tree"),
        "{}",
        stderr(&o)
    );
    assert_eq!(snapshot(&tree), before, "the input tree was written");

    let out = t.path().join("out");
    build_hello(&out, &[]);
    let layout = snapshot(&out);
    let o = ocipack_with_bind(
        &out,
        &mnt,
        &[
            "image",
            "--file",
            &format!("{}:/hello", s(&mnt.join("oci-layout"))),
            "--arch",
            "amd64",
            "--created",
            CREATED,
            "-o",
            s(&out),
        ],
    );
    assert_exit(&o, 2);
    assert!(
        stderr(&o).contains("is inside the output"),
        "{}",
        stderr(&o)
    );
    assert_eq!(snapshot(&out), layout, "the output was replaced");

    // A file of the output bind-mounted on a file outside it is still the output's file.
    let outside = t.path().join("outside-file");
    fs::write(&outside, b"").unwrap();
    let o = ocipack_with_bind(
        &out.join("oci-layout"),
        &outside,
        &[
            "image",
            "--file",
            &format!("{}:/hello", s(&outside)),
            "--arch",
            "amd64",
            "--created",
            CREATED,
            "-o",
            s(&out),
        ],
    );
    assert_exit(&o, 2);
    assert!(
        stderr(&o).contains("is inside the output"),
        "{}",
        stderr(&o)
    );
    assert_eq!(snapshot(&out), layout, "the output was replaced");
}

/// Attack: an input in no directory, `--tar /dev/stdin` fed by a pipe (or `--tar <(…)`).
/// The overlap check looked for the directory holding the pipe and failed: "inspecting the
/// directories above /dev/stdin: No such file or directory", a failed operation (exit 1)
/// about a path the user never named. A file no directory holds is inside nothing, and the
/// input is refused for what it is: not a regular file (exit 2).
#[test]
fn a_piped_input_is_refused_as_a_fifo_not_as_an_overlap() {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("out");
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg("echo not a tar | exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_ocipack"))
        .args(["image", "--tar", "/dev/stdin", "--arch", "amd64"])
        .args(["--created", CREATED, "-o", s(&out)])
        .env_remove("SOURCE_DATE_EPOCH");
    common::default_signals(&mut c);
    let o = run_bounded(&mut c, LIMIT);
    assert_exit(&o, 2);
    assert_eq!(
        stderr(&o),
        "ocipack: error: --tar \"/dev/stdin\": is a FIFO, not a regular file\n"
    );
    assert!(!out.exists());
}

/// `ocipack export -o` into the layout being exported, reached through a bind mount.
#[test]
fn export_into_its_layout_through_a_bind_mount_is_refused() {
    if !can_bind_mount() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let layout = t.path().join("layout");
    build_hello(&layout, &[]);
    let before = snapshot(&layout);
    let mnt = t.path().join("mnt");
    fs::create_dir(&mnt).unwrap();
    for (source, out) in [
        (layout.clone(), mnt.join("index.json")),
        (layout.join("blobs"), mnt.join("archive.tar")),
    ] {
        let o = ocipack_with_bind(
            &source,
            &mnt,
            &[
                "export",
                s(&layout),
                "--format",
                "oci-archive",
                "-o",
                s(&out),
            ],
        );
        assert_exit(&o, 2);
        assert!(
            stderr(&o).contains("is inside the layout being exported"),
            "{}",
            stderr(&o)
        );
        assert_eq!(snapshot(&layout), before, "the layout was written");
    }
}

/// `ocipack library` with no git on `PATH`: exit 1, and the message names the command and
/// the directory it was run in. (A directory git refuses as a repository is exit 2: see the
/// library tests.)
#[test]
fn git_that_cannot_be_run_is_a_failed_operation() {
    let t = tempfile::tempdir().unwrap();
    let p = copy_hello_world(&t.path().join("hw"));
    let o = run_bounded(
        common::ocipack()
            .arg("library")
            .arg(&p)
            .env("PATH", t.path().join("no-such-dir")),
        LIMIT,
    );
    assert_exit(&o, 1);
    let e = stderr(&o);
    assert!(
        e.contains(&format!(
            "git rev-parse --show-prefix (in {}): cannot be run: ",
            p.display()
        )),
        "{e}"
    );
}
