//! Regression tests for the holes issue 9 found at the seams between ocipack's commands:
//! project outputs through symlinks, inputs that change under the build, FIFOs and devices
//! where a regular file belongs, pathological tar names and sparse files, signals, control
//! characters in names, credentials in registry messages, trickling registries, and a gzip
//! bomb listed many times.
//!
//! Each test names what it protects and cites the issue's numbered failure. They drive the
//! CLI only and assert behaviour through the interface decided for the fix:
//! - exit 2 for a usage or input error (a bad input, an input that changed during the build,
//!   an unsafe path), exit 1 for a failed check, verification or registry operation;
//! - every error is one line starting `ocipack: error: `, warnings start `ocipack: warning: `;
//! - every path or entry name in a message is escaped like `str::escape_debug` (no raw
//!   control byte but the newline ending each line);
//! - in debug builds, `OCIPACK_TEST_HOOK_AFTER_WALK` is a shell command run (`sh -c`) once
//!   per image after the inputs were walked and before any file content is read;
//! - in debug builds, `OCIPACK_TEST_LOG_DECOMPRESSIONS` names a file to which `verify`
//!   appends one line per layer it decompresses.
//!
//! Every child runs under a time limit, so a hang is a clear failure, never a stuck test.

use crate::common;

use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileExt, symlink};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::cli::{
    CREATED, assert_error, control_bytes, hello_project, image, image_on, ocipack_capped, os, show,
    sq, text,
};
use common::fake::{Exchange, Req, Server, reason};
use common::oci::{Listing, bomb_layout, gzip_bomb, sha256};
use common::tar::{tar_member, tar_of};
use common::{assert_exit, bounded, build_hello, ocipack, run_bounded, snapshot, staging_beside};

/// The test hook's environment variable.
const HOOK: &str = "OCIPACK_TEST_HOOK_AFTER_WALK";
/// The debug builds' work log: a file to which each layer decompression of `verify` and
/// `diff` appends one line (the digest its descriptor names).
const DECOMPRESSIONS: &str = "OCIPACK_TEST_LOG_DECOMPRESSIONS";
/// The watchdog of runs that should end at once: one still running after this long is
/// blocked (on a FIFO, say, which blocks forever), and the test fails. A bound against
/// hangs, not a speed claim: generous, so that a loaded machine does not look blocked.
const QUICK: Duration = Duration::from_secs(60);
/// The watchdog of longer operations (a gzip bomb, a push with a timeout).
const LIMIT: Duration = Duration::from_secs(120);
/// Address-space cap (KiB) for runs whose failure mode is unbounded memory: 2 GiB.
const MEM_LIMIT_KIB: u64 = 2 * 1024 * 1024;

// ---------------------------------------------------------------------------------------
// Helpers

/// The names in `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn mkfifo(p: &Path) {
    let st = Command::new("mkfifo").arg(p).status().unwrap();
    assert!(st.success(), "mkfifo {}", p.display());
}

/// True if GNU tar is the `tar` on PATH (skips, or fails under CI=true, otherwise).
fn gnu_tar() -> bool {
    if !common::require_tool("tar") {
        return false;
    }
    let v = Command::new("tar").arg("--version").output().unwrap();
    let gnu = text(&v.stdout).contains("GNU tar");
    if !gnu {
        common::skip("tar is not GNU tar");
    }
    gnu
}

/// Every regular file below `dir` (following nothing), concatenated: to search for bytes.
fn all_bytes(dir: &Path) -> Vec<u8> {
    snapshot(dir)
        .into_values()
        .filter(|(link, _)| !link)
        .flat_map(|(_, b)| b)
        .collect()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Kills the hook's `sleep` (whose pid the hook wrote to `pidfile`) when dropped, if it
/// is still that `sleep`.
struct HookSleep(PathBuf);

impl HookSleep {
    fn kill(&self) {
        let Ok(pid) = fs::read_to_string(&self.0) else {
            return;
        };
        let pid = pid.trim();
        let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if cmdline.starts_with(b"sleep\0") {
            let _ = Command::new("kill").args(["-KILL", pid]).status();
        }
    }
}

impl Drop for HookSleep {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A child whose stdout and stderr go to files (a hook's `sleep` may inherit them, so
/// pipes could stay open long after ocipack exits); killed on drop.
struct Logged {
    child: Child,
    out: PathBuf,
    err: PathBuf,
}

impl Logged {
    fn spawn(cmd: &mut Command, dir: &Path, tag: &str) -> Logged {
        let out = dir.join(format!("{tag}.stdout"));
        let err = dir.join(format!("{tag}.stderr"));
        let child = cmd
            .stdin(Stdio::null())
            .stdout(fs::File::create(&out).unwrap())
            .stderr(fs::File::create(&err).unwrap())
            .spawn()
            .unwrap();
        Logged { child, out, err }
    }

    /// Waits until `cond` holds (Ok(None)), the child exits (Ok(Some(status))), or `limit`
    /// passes (Err).
    fn wait_for(
        &mut self,
        limit: Duration,
        cond: impl Fn() -> bool,
    ) -> Result<Option<ExitStatus>, ()> {
        let start = Instant::now();
        loop {
            if cond() {
                return Ok(None);
            }
            if let Some(s) = self.child.try_wait().unwrap() {
                return Ok(Some(s));
            }
            if start.elapsed() > limit {
                return Err(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn output(&self) -> String {
        format!(
            "stdout:\n{}\nstderr:\n{}",
            fs::read_to_string(&self.out).unwrap_or_default(),
            fs::read_to_string(&self.err).unwrap_or_default()
        )
    }
}

impl Drop for Logged {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

// ---------------------------------------------------------------------------------------
// A registry of the test's own: common::fake::Server answering each request with a reply.

enum Reply {
    /// A whole answer.
    Full(u16, Vec<(&'static str, String)>, Vec<u8>),
    /// A status line claiming a large body, then the body at one byte per second.
    Trickle(u16),
}

/// A server that reads each request whole, then sends `handler`'s reply.
fn fake(handler: impl Fn(&Req) -> Reply + Send + Sync + 'static) -> Server {
    Server::start(Duration::from_secs(10), move |ex: &mut Exchange| {
        ex.body();
        match handler(&ex.req) {
            Reply::Full(status, headers, body) => ex.respond(status, &headers, &body),
            Reply::Trickle(status) => {
                let head = format!(
                    "HTTP/1.1 {status} {}\r\nConnection: close\r\nContent-Type: application/json\r\n\
                     Content-Length: 10000000\r\n\r\n",
                    reason(status)
                );
                if ex.conn.write_all(head.as_bytes()).is_err() {
                    return;
                }
                let body = br#"{"errors":[{"code":"UNKNOWN","message":""#;
                // For three minutes at the most.
                ex.trickle_iter(
                    body.iter()
                        .copied()
                        .chain(std::iter::repeat(b'x'))
                        .take(180),
                );
            }
        }
    })
}

/// `ocipack push LAYOUT 127.0.0.1:PORT/hello:v1 EXTRA…` with an empty Docker config
/// (unless `docker_config` names one) and `stdin` as standard input, bounded by `limit`.
fn push_to(
    port: u16,
    layout: &Path,
    extra: &[&str],
    stdin: &str,
    docker_config: Option<&Path>,
    limit: Duration,
) -> Output {
    let empty = tempfile::tempdir().unwrap();
    let mut c = ocipack();
    c.env("DOCKER_CONFIG", docker_config.unwrap_or(empty.path()))
        .arg("push")
        .arg(layout)
        .arg(format!("127.0.0.1:{port}/hello:v1"))
        .args(extra);
    if stdin.is_empty() {
        return run_bounded(&mut c, limit);
    }
    // run_bounded gives the child no stdin: feed it through a file.
    let f = empty.path().join("stdin");
    fs::write(&f, stdin).unwrap();
    let mut sh = Command::new("sh");
    sh.env("DOCKER_CONFIG", docker_config.unwrap_or(empty.path()))
        .env_remove("SOURCE_DATE_EPOCH")
        .arg("-c")
        .arg("f=$1; shift; exec \"$@\" < \"$f\"")
        .arg("sh")
        .arg(&f)
        .arg(c.get_program())
        .args(c.get_args());
    run_bounded(&mut sh, limit)
}

// ---------------------------------------------------------------------------------------
// 1. Project outputs through a symlinked directory.

/// Builds the outside directory of tests #1: a layout from `ocipack image` with a note
/// inside it, and an unrelated file beside it.
fn outside_with_layout(outside: &Path) {
    fs::create_dir_all(outside).unwrap();
    build_hello(&outside.join("amd64"), &[]);
    fs::write(outside.join("amd64/NOTES.txt"), "keep me\n").unwrap();
    fs::write(outside.join("unrelated.txt"), "not ocipack's\n").unwrap();
}

/// Issue 9, failure 1: a project `output` through a symlink to a directory outside the
/// project replaced a layout there and deleted a file. Outputs are resolved beneath the
/// project one component at a time, never through a symlink: exit 2, the outside untouched.
#[test]
fn project_output_through_a_symlink_never_writes_outside_the_project() {
    let t = tempfile::tempdir().unwrap();
    let outside = t.path().join("outside");
    outside_with_layout(&outside);
    let project = t.path().join("project");
    hello_project(
        &project,
        &["amd64"],
        &[("output = \"{arch}/oci\"", "output = \"link/{arch}\"")],
    );
    symlink(&outside, project.join("link")).unwrap();
    let before = snapshot(&outside);

    let o = run_bounded(ocipack().arg("build").arg(&project), LIMIT);
    let after = snapshot(&outside);
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>(),
        "files outside the project appeared or vanished\n{}",
        show(&o)
    );
    assert!(
        before == after,
        "files outside the project changed\n{}",
        show(&o)
    );
    assert_eq!(
        listing(&outside),
        ["amd64", "unrelated.txt"],
        "{}",
        show(&o)
    );
    assert_error(&o, 2);
    // Named as written: the project file's line of `output`, the output, and the
    // component at fault, once.
    let err = String::from_utf8_lossy(&o.stderr);
    let line = fs::read_to_string(project.join("ocipack.toml"))
        .unwrap()
        .lines()
        .position(|l| l.starts_with("output = \"link/"))
        .unwrap()
        + 1;
    assert!(
        err.contains(&format!(
            "ocipack.toml:{line}: output link/amd64: link is a symlink; ocipack follows no symlink"
        )),
        "{err}"
    );
}

/// Issue 9, failure 1 (Windows): `[windows] output` through a symlink to a directory
/// outside the project replaced the variant directories there. Exit 2, nothing touched.
#[test]
fn windows_output_through_a_symlink_never_writes_outside_the_project() {
    let t = tempfile::tempdir().unwrap();
    let outside = t.path().join("outside");
    for v in ["nanoserver-ltsc2025", "nanoserver-ltsc2022"] {
        fs::create_dir_all(outside.join(v)).unwrap();
        fs::write(outside.join(v).join("Dockerfile"), "FROM old\n").unwrap();
        fs::write(outside.join(v).join("hello.txt"), "old text\n").unwrap();
    }
    fs::write(outside.join("unrelated.txt"), "not ocipack's\n").unwrap();
    let project = t.path().join("project");
    hello_project(
        &project,
        &["amd64"],
        &[(
            "output = \"amd64/{variant}\"",
            "output = \"link/{variant}\"",
        )],
    );
    symlink(&outside, project.join("link")).unwrap();
    let before = snapshot(&outside);

    let o = run_bounded(ocipack().arg("build").arg(&project), LIMIT);
    assert!(
        before == snapshot(&outside),
        "files outside the project changed\n{}",
        show(&o)
    );
    assert_error(&o, 2);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(": windows.output link/nanoserver-ltsc2025: link is a symlink;"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------
// 2. A walked directory swapped for a symlink before the read.

/// Issue 9, failure 2: `--rootfs` opened only the last component with O_NOFOLLOW, so a
/// directory replaced by a symlink between the walk and the read put a file from outside
/// the tree into the layer. The hook swaps the directory deterministically; the outside
/// bytes must never reach the layer, and the build fails (exit 2) naming the file.
#[test]
fn rootfs_directory_swapped_for_a_symlink_never_leaks_an_outside_file() {
    let t = tempfile::tempdir().unwrap();
    let tree = t.path().join("tree");
    let dir = tree.join("walked-dir");
    fs::create_dir_all(&dir).unwrap();
    let inside = b"inside content, harmless....\n";
    let secret = b"OUTSIDE-SECRET-4f1c9a7b2e-x\n\n";
    assert_eq!(inside.len(), secret.len());
    fs::write(dir.join("secret.txt"), inside).unwrap();
    let outside = t.path().join("outside");
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("secret.txt"), secret).unwrap();
    let marker = t.path().join("hook-ran");
    let hook = format!(
        "mv {d} {moved} && ln -s {o} {d} && touch {m}",
        d = sq(&dir),
        moved = sq(&tree.join("walked-dir.moved")),
        o = sq(&outside),
        m = sq(&marker)
    );
    let out = t.path().join("out");
    let o = run_bounded(
        image(
            &[os("--rootfs"), tree.as_os_str()],
            &out,
            &["--compression", "none"],
        )
        .env(HOOK, &hook),
        QUICK,
    );
    if out.exists() {
        assert!(
            !contains(&all_bytes(&out), b"OUTSIDE-SECRET"),
            "a file from outside the --rootfs tree is in the layer\n{}",
            show(&o)
        );
    }
    assert!(
        marker.exists(),
        "hook did not run: {HOOK} must run after the walk\n{}",
        show(&o)
    );
    let e = assert_error(&o, 2);
    assert!(
        e.contains("secret.txt"),
        "the error does not name the file\n{e}"
    );
    assert!(!out.exists(), "a layout was written after an input error");
}

// ---------------------------------------------------------------------------------------
// 3. FIFOs in a layout read by export and push.

/// A hello layout in its own directory with `which` (`index.json`, `oci-layout`, or the
/// `manifest`, `config` or `layer` blob) replaced by a FIFO.
fn layout_with_fifo(which: &str) -> (tempfile::TempDir, PathBuf) {
    let t = tempfile::tempdir().unwrap();
    let layout = t.path().join("layout");
    let digest = build_hello(&layout, &[]);
    let blob = |d: &str| {
        layout
            .join("blobs/sha256")
            .join(d.strip_prefix("sha256:").unwrap())
    };
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(blob(&digest)).unwrap()).unwrap();
    let victim = match which {
        "manifest" => blob(&digest),
        "config" => blob(manifest["config"]["digest"].as_str().unwrap()),
        "layer" => blob(manifest["layers"][0]["digest"].as_str().unwrap()),
        f => layout.join(f),
    };
    fs::remove_file(&victim).unwrap();
    mkfifo(&victim);
    (t, layout)
}

/// Issue 9, failure 3 (export): a layout whose `index.json`, `oci-layout` or a blob (the
/// manifest, the config, the layer) is a FIFO made `ocipack export` block forever, and
/// leave its temporary file (a layer blob is opened once the archive is being written).
/// It must end (within [`QUICK`]) with exit 2 and leave the output directory as it was.
#[test]
fn export_of_a_layout_with_a_fifo_fails_fast_and_leaves_no_temporary_file() {
    let mut failures = Vec::new();
    for which in ["index.json", "oci-layout", "manifest", "config", "layer"] {
        let (t, layout) = layout_with_fifo(which);
        let exports = t.path().join("exports");
        fs::create_dir(&exports).unwrap();
        fs::write(exports.join("existing.txt"), "was here\n").unwrap();
        let before = listing(&exports);
        let mut c = ocipack();
        c.arg("export")
            .arg(&layout)
            .args(["--format", "oci-archive", "-o"])
            .arg(exports.join("image.tar"));
        match bounded(&mut c, QUICK) {
            Err(e) => failures.push(format!("{which} is a FIFO: {e}")),
            Ok(o) => {
                if o.status.code() != Some(2) {
                    failures.push(format!("{which} is a FIFO: want exit 2\n{}", show(&o)));
                }
            }
        }
        let after = listing(&exports);
        if after != before {
            failures.push(format!(
                "{which} is a FIFO: the output directory changed: {before:?} -> {after:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Issue 9, failure 3 (push, same reader): a layout whose `index.json`, `oci-layout`,
/// manifest or config is a FIFO blocked `ocipack push`. Those are read before any network
/// I/O, so even with an unreachable registry the push ends (within [`QUICK`]) with exit 2.
#[test]
fn push_of_a_layout_with_a_fifo_fails_fast() {
    let mut failures = Vec::new();
    for which in ["index.json", "oci-layout", "manifest", "config"] {
        let (t, layout) = layout_with_fifo(which);
        let mut c = ocipack();
        c.env("DOCKER_CONFIG", t.path())
            .arg("push")
            .arg(&layout)
            .arg("127.0.0.1:1/hello:v1");
        match bounded(&mut c, QUICK) {
            Err(e) => failures.push(format!("{which} is a FIFO: {e}")),
            Ok(o) => {
                if o.status.code() != Some(2) {
                    failures.push(format!("{which} is a FIFO: want exit 2\n{}", show(&o)));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

// ---------------------------------------------------------------------------------------
// 4. ocipack.toml that is not a small regular file.

/// A minimal project in `dir` (no ocipack.toml yet): one amd64 input.
fn small_project(dir: &Path) -> String {
    fs::create_dir_all(dir.join("amd64")).unwrap();
    fs::write(dir.join("amd64/hello"), "hello\n").unwrap();
    "name = \"demo\"\ncreated = \"@1000000000\"\narchitectures = [\"amd64\"]\n\
     [image]\ncmd = [\"/hello\"]\n[[input]]\nsource = \"{arch}/hello\"\ndest = \"/hello\"\n\
     mode = \"0755\"\n"
        .to_string()
}

/// Issue 9, failure 4: an `ocipack.toml` that is a symlink to /dev/zero grew memory without
/// bound. It is refused as not a regular file: exit 2 within [`QUICK`], within a 2 GiB cap.
#[test]
fn project_file_symlinked_to_dev_zero_is_refused_in_bounded_memory() {
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("p");
    small_project(&p);
    symlink("/dev/zero", p.join("ocipack.toml")).unwrap();
    let o = run_bounded(ocipack_capped(MEM_LIMIT_KIB).arg("build").arg(&p), QUICK);
    let e = assert_error(&o, 2);
    assert!(e.contains("ocipack.toml"), "{e}");
    assert!(e.contains("not a regular file"), "{e}");
}

/// Issue 9, failure 4: a FIFO `ocipack.toml` blocked forever. Exit 2 within [`QUICK`].
#[test]
fn project_file_that_is_a_fifo_is_refused_without_blocking() {
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("p");
    small_project(&p);
    mkfifo(&p.join("ocipack.toml"));
    let o = run_bounded(ocipack().arg("build").arg(&p), QUICK);
    let e = assert_error(&o, 2);
    assert!(e.contains("ocipack.toml"), "{e}");
}

/// Issue 9, failure 4 (the size cap, 1 MiB): a 20 MB `ocipack.toml` — a valid project
/// followed by comments — is refused as too large, with exit 2, and nothing is built.
#[test]
fn oversized_project_file_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("p");
    let mut toml = small_project(&p);
    let comment = format!("# {}\n", "x".repeat(97));
    toml.push_str(&comment.repeat(20 * 1024 * 1024 / comment.len()));
    fs::write(p.join("ocipack.toml"), &toml).unwrap();
    let o = run_bounded(ocipack_capped(MEM_LIMIT_KIB).arg("build").arg(&p), QUICK);
    let e = assert_error(&o, 2);
    assert!(e.contains("ocipack.toml"), "{e}");
    let l = e.to_lowercase();
    assert!(
        l.contains("large") || l.contains("size") || l.contains("1 mib") || l.contains("1048576"),
        "the error does not say the file is too large\n{e}"
    );
    assert!(!p.join("amd64/oci").exists(), "a layout was built");
}

// ---------------------------------------------------------------------------------------
// 5. --tar input: names that vanish, POSIX sparse files, pathological names.

/// `ocipack image --tar TAR -o OUT --compression none`, bounded, optionally memory-capped.
fn image_from_tar(tar: &Path, out: &Path, capped: bool) -> Output {
    let base = if capped {
        ocipack_capped(MEM_LIMIT_KIB)
    } else {
        ocipack()
    };
    let mut c = image_on(
        base,
        &[os("--tar"), tar.as_os_str()],
        out,
        &["--compression", "none"],
    );
    run_bounded(&mut c, QUICK)
}

/// A tar with the root directory `./`, a normal file, and a regular file named `bad`.
fn tar_with_bad_file_name(bad: &[u8]) -> Vec<u8> {
    tar_of(&[
        tar_member(b"./", b'5', b"", b""),
        tar_member(b"ok.txt", b'0', b"", b"fine\n"),
        tar_member(bad, b'0', b"", b"this content must not vanish\n"),
    ])
}

/// Issue 9, failure 5: a regular-file tar entry named `.` vanished silently (exit 0, the
/// content dropped). It is refused: exit 2, naming the tar, nothing written.
#[test]
fn tar_regular_file_named_dot_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let tar = t.path().join("dot-entry.tar");
    fs::write(&tar, tar_with_bad_file_name(b".")).unwrap();
    let out = t.path().join("out");
    let o = image_from_tar(&tar, &out, false);
    let e = assert_error(&o, 2);
    assert!(e.contains("dot-entry.tar"), "{e}");
    assert!(!out.exists(), "a layout was written");
}

/// Issue 9, failure 5: a regular-file tar entry with an empty name vanished silently. It is
/// refused: exit 2, naming the tar, nothing written.
#[test]
fn tar_regular_file_with_an_empty_name_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let tar = t.path().join("empty-name.tar");
    fs::write(&tar, tar_with_bad_file_name(b"")).unwrap();
    let out = t.path().join("out");
    let o = image_from_tar(&tar, &out, false);
    let e = assert_error(&o, 2);
    assert!(e.contains("empty-name.tar"), "{e}");
    assert!(!out.exists(), "a layout was written");
}

/// Writes a sparse file of `size` bytes with data at the start, the middle and (unless
/// `hole_at_end`) the end; returns its bytes.
fn make_sparse(path: &Path, size: u64, hole_at_end: bool) -> Vec<u8> {
    let f = fs::File::create(path).unwrap();
    f.set_len(size).unwrap();
    let chunk = |tag: &str, len: usize| -> Vec<u8> { tag.bytes().cycle().take(len).collect() };
    f.write_at(&chunk("START-", 5000), 0).unwrap();
    f.write_at(&chunk("middle+", 7000), size / 2 + 123).unwrap();
    if !hole_at_end {
        f.write_at(&chunk("the-end.", 3001), size - 3001).unwrap();
    }
    drop(f);
    let bytes = fs::read(path).unwrap();
    assert_eq!(bytes.len() as u64, size);
    bytes
}

/// Packs `sparse.bin` with GNU tar in POSIX format with `--sparse-version=version`,
/// re-packs it with ocipack, extracts the layer with GNU tar, and returns problems found.
fn sparse_round_trip(version: &str, hole_at_end: bool) -> Vec<String> {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    fs::create_dir(&src).unwrap();
    let size = 3 * 1024 * 1024 + 1000;
    let want = make_sparse(&src.join("sparse.bin"), size, hole_at_end);
    let tar = t.path().join("in.tar");
    let st = Command::new("tar")
        .args([
            "--sparse",
            "--format=posix",
            &format!("--sparse-version={version}"),
            "--hole-detection=raw",
            "-cf",
        ])
        .arg(&tar)
        .arg("-C")
        .arg(&src)
        .arg("sparse.bin")
        .status()
        .unwrap();
    assert!(
        st.success(),
        "GNU tar could not write sparse version {version}"
    );
    assert!(
        contains(&fs::read(&tar).unwrap(), b"GNU.sparse"),
        "GNU tar wrote no sparse map for version {version}: the test is not testing anything"
    );
    let out = t.path().join("out");
    let o = image_from_tar(&tar, &out, false);
    let case = format!(
        "sparse version {version}{}",
        if hole_at_end {
            ", ending in a hole"
        } else {
            ""
        }
    );
    if o.status.code() != Some(0) {
        return vec![format!("{case}: want exit 0\n{}", show(&o))];
    }
    let x = t.path().join("x");
    fs::create_dir(&x).unwrap();
    let st = Command::new("tar")
        .arg("-xf")
        .arg(out.join("rootfs.tar"))
        .arg("-C")
        .arg(&x)
        .status()
        .unwrap();
    assert!(st.success(), "GNU tar cannot extract the layer");
    let mut problems = Vec::new();
    let names = listing(&x);
    if names != ["sparse.bin"] {
        problems.push(format!(
            "{case}: the layer holds {names:?}, want [\"sparse.bin\"]"
        ));
    }
    match fs::read(x.join("sparse.bin")) {
        Ok(got) if got == want => {}
        Ok(got) => problems.push(format!(
            "{case}: sparse.bin differs: {} bytes, want {}",
            got.len(),
            want.len()
        )),
        Err(e) => problems.push(format!("{case}: sparse.bin: {e}")),
    }
    problems
}

/// Issue 9, failure 5: a POSIX sparse file (format 0.0) became `GNUSparseFile.N/name`
/// holding the sparse map. It is stored dense under its own name, with identical bytes.
#[test]
fn tar_pax_sparse_0_0_is_expanded_under_its_name() {
    if !gnu_tar() {
        return;
    }
    let p = sparse_round_trip("0.0", false);
    assert!(p.is_empty(), "{}", p.join("\n"));
}

/// Issue 9, failure 5: POSIX sparse format 0.1, as for 0.0.
#[test]
fn tar_pax_sparse_0_1_is_expanded_under_its_name() {
    if !gnu_tar() {
        return;
    }
    let p = sparse_round_trip("0.1", false);
    assert!(p.is_empty(), "{}", p.join("\n"));
}

/// Issue 9, failure 5: POSIX sparse format 1.0 (the map in the data area), as for 0.0.
#[test]
fn tar_pax_sparse_1_0_is_expanded_under_its_name() {
    if !gnu_tar() {
        return;
    }
    let p = sparse_round_trip("1.0", false);
    assert!(p.is_empty(), "{}", p.join("\n"));
}

/// Issue 9, failure 5: a POSIX sparse file that ends in a hole keeps its full size, in
/// every sparse format.
#[test]
fn tar_pax_sparse_file_ending_in_a_hole_keeps_its_size() {
    if !gnu_tar() {
        return;
    }
    let p: Vec<String> = ["0.0", "0.1", "1.0"]
        .iter()
        .flat_map(|v| sparse_round_trip(v, true))
        .collect();
    assert!(p.is_empty(), "{}", p.join("\n"));
}

/// `a/a/…/a` with `n` components.
fn deep_name(n: usize) -> Vec<u8> {
    let mut v = b"a/".repeat(n - 1);
    v.push(b'a');
    v
}

/// Issue 9, failure 5: one tar entry 100,000 components deep exhausted memory and aborted,
/// leaving the staging directory. It is refused by the name-length limit, which looks at
/// the name's bytes before anything splits it into components (exit 2, the error saying
/// so, under a 2 GiB cap), and nothing is left beside OUT.
#[test]
fn tar_name_100000_components_deep_is_refused_by_its_length_without_leftovers() {
    let t = tempfile::tempdir().unwrap();
    let tar = t.path().join("deep.tar");
    fs::write(
        &tar,
        tar_of(&[tar_member(&deep_name(100_000), b'0', b"", b"deep\n")]),
    )
    .unwrap();
    let outs = t.path().join("outs");
    fs::create_dir(&outs).unwrap();
    let out = outs.join("out");
    let o = image_from_tar(&tar, &out, true);
    let left = staging_beside(&out);
    assert!(left.is_empty(), "left beside OUT: {left:?}\n{}", show(&o));
    let e = assert_error(&o, 2);
    assert!(
        e.contains("(199999 bytes)\" is 199999 bytes long, more than the 4096 allowed"),
        "not refused by the length limit\n{}",
        show(&o)
    );
    assert!(!out.exists(), "a layout was written");
}

/// Issue 9, failure 5 (the limits): tar entry names of more than 4096 bytes or more than
/// 1024 components are refused with exit 2; names exactly at the limits are accepted.
#[test]
fn tar_names_over_4096_bytes_or_1024_components_are_refused() {
    // 17 components of 240 bytes and 16 slashes: 4096 bytes; one more byte: 4097.
    let long = |extra: usize| -> Vec<u8> {
        let mut parts: Vec<Vec<u8>> = (0..17).map(|i| vec![b'b' + i as u8; 240]).collect();
        parts[16].extend(std::iter::repeat_n(b'z', extra));
        parts.join(&b'/')
    };
    assert_eq!(long(0).len(), 4096);
    let cases: [(&str, Vec<u8>, i32); 4] = [
        ("4097 bytes", long(1), 2),
        ("1025 components", deep_name(1025), 2),
        ("4096 bytes", long(0), 0),
        ("1024 components", deep_name(1024), 0),
    ];
    let mut failures = Vec::new();
    for (what, name, code) in cases {
        let t = tempfile::tempdir().unwrap();
        let tar = t.path().join("names.tar");
        fs::write(&tar, tar_of(&[tar_member(&name, b'0', b"", b"x\n")])).unwrap();
        let out = t.path().join("out");
        let o = image_from_tar(&tar, &out, true);
        if o.status.code() != Some(code) {
            failures.push(format!("a name of {what}: want exit {code}\n{}", show(&o)));
        } else if code == 2 && !text(&o.stderr).starts_with("ocipack: error: ") {
            failures.push(format!("a name of {what}: no error line\n{}", show(&o)));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

// ---------------------------------------------------------------------------------------
// 6. Signals during a build.

/// A small tree for the signal tests, with content `tag`.
fn signal_tree(dir: &Path, tag: &str) {
    fs::create_dir_all(dir.join("etc")).unwrap();
    fs::write(dir.join("etc/motd"), format!("built {tag}\n")).unwrap();
}

/// `ocipack image --rootfs tree -o out` with the hook `touch MARKER; sleep 600` (the hook's
/// The test hook run once the staging directory is complete and durable, just before it is
/// swapped into place: the moment a build holds the most on disk that it must clean up.
/// (ocipack creates staging only once it knows the output changed; until then its files are
/// anonymous and vanish with the process whatever kills it.)
const PAUSE_HOOK: &str = "OCIPACK_TEST_HOOK_BEFORE_SWAP";

/// pid in PIDFILE), started; returns it once the marker exists.
fn start_paused_build(t: &Path, tree: &Path, out: &Path) -> (Logged, HookSleep) {
    let marker = t.join("hook-ran");
    let pidfile = t.join("hook.pid");
    let hook = format!(
        "echo $$ > {p}; touch {m}; exec sleep 600",
        p = sq(&pidfile),
        m = sq(&marker)
    );
    let mut child = Logged::spawn(
        image(&[os("--rootfs"), tree.as_os_str()], out, &[]).env(PAUSE_HOOK, &hook),
        t,
        "paused",
    );
    let sleeper = HookSleep(pidfile);
    match child.wait_for(QUICK, || marker.exists()) {
        Ok(None) => {}
        Ok(Some(st)) => panic!(
            "hook did not run: ocipack exited ({st}) without running {PAUSE_HOOK}\n{}",
            child.output()
        ),
        Err(()) => panic!(
            "hook did not run within {QUICK:?}; ocipack still running\n{}",
            child.output()
        ),
    }
    (child, sleeper)
}

/// Sends `signal` (number `signo`) to a build paused in the hook; asserts it exits without
/// waiting for the hook, leaves no staging beside OUT, and leaves an existing OUT
/// byte-identical. The 60 s bound is the feature, not a speed claim: the hook sleeps for
/// 600 s, so a build that waited for it would take ten times as long; 60 s leaves room for
/// a loaded machine.
fn interrupt_build(signal: &str, signo: i32) {
    let t = tempfile::tempdir().unwrap();
    let (old, new) = (t.path().join("old-tree"), t.path().join("new-tree"));
    signal_tree(&old, "old");
    signal_tree(&new, "new");
    let outs = t.path().join("outs");
    fs::create_dir(&outs).unwrap();
    let out = outs.join("out");
    assert_exit(
        &run_bounded(
            &mut image(&[os("--rootfs"), old.as_os_str()], &out, &[]),
            QUICK,
        ),
        0,
    );
    let before = snapshot(&out);

    let (mut child, sleeper) = start_paused_build(t.path(), &new, &out);
    let pid = child.child.id().to_string();
    let st = Command::new("kill")
        .args(["-s", signal, &pid])
        .status()
        .unwrap();
    assert!(st.success());
    let status = match child.wait_for(Duration::from_secs(60), || false) {
        Ok(Some(s)) => s,
        _ => panic!(
            "ocipack did not exit within 60 s of SIG{signal}\n{}",
            child.output()
        ),
    };
    sleeper.kill();
    assert!(
        status.signal() == Some(signo) || status.code() == Some(128 + signo),
        "SIG{signal}: exit status {status}, want death by the signal or {}\n{}",
        128 + signo,
        child.output()
    );
    let left = staging_beside(&out);
    assert!(
        left.is_empty(),
        "SIG{signal} left staging beside OUT: {left:?}\n{}",
        child.output()
    );
    assert!(before == snapshot(&out), "SIG{signal} changed OUT");
}

/// Issue 9, failure 6: SIGINT during a build left the hidden staging directory beside OUT.
/// It is removed; OUT stays as it was.
#[test]
fn sigint_during_a_build_removes_its_staging_and_keeps_out() {
    interrupt_build("INT", 2);
}

/// Issue 9, failure 6: SIGTERM during a build, as for SIGINT.
#[test]
fn sigterm_during_a_build_removes_its_staging_and_keeps_out() {
    interrupt_build("TERM", 15);
}

/// Issue 9, failure 6: SIGHUP during a build, as for SIGINT.
#[test]
fn sighup_during_a_build_removes_its_staging_and_keeps_out() {
    interrupt_build("HUP", 1);
}

/// A signal the build inherited as ignored (`nohup`, `trap '' HUP`, the SIGINT of a shell's
/// background job) stays ignored: it neither ends the build nor removes its staging (before,
/// ocipack caught it anyway and died of it). Sent just before the swap, when the most is
/// staged.
#[test]
fn a_signal_inherited_as_ignored_does_not_end_the_build() {
    for sig in ["HUP", "INT", "TERM"] {
        let t = tempfile::tempdir().unwrap();
        let tree = t.path().join("tree");
        signal_tree(&tree, sig);
        let out = t.path().join("out");
        let o = run_bounded(
            Command::new("sh")
                .args([
                    "-c",
                    &format!(
                        "trap '' {sig}; exec \"$0\" image --rootfs \"$1\" --arch amd64 \
                         --created {CREATED} -o \"$2\""
                    ),
                ])
                .arg(env!("CARGO_BIN_EXE_ocipack"))
                .arg(&tree)
                .arg(&out)
                .env(PAUSE_HOOK, format!("kill -{sig} $PPID")),
            QUICK,
        );
        assert_exit(&o, 0);
        assert!(
            out.join("index.json").exists(),
            "SIG{sig}: no layout\n{}",
            show(&o)
        );
        assert!(staging_beside(&out).is_empty(), "SIG{sig}: staging left");
    }
}

/// Issue 9, failure 6: staging left by a killed build (SIGKILL cannot be handled) was never
/// cleaned up. The next build of the same OUT sweeps staging of dead processes.
#[test]
fn stale_staging_of_a_killed_build_is_swept_by_the_next_build() {
    let t = tempfile::tempdir().unwrap();
    let tree = t.path().join("tree");
    signal_tree(&tree, "one");
    let outs = t.path().join("outs");
    fs::create_dir(&outs).unwrap();
    let out = outs.join("out");

    let (mut child, sleeper) = start_paused_build(t.path(), &tree, &out);
    child.child.kill().unwrap();
    child.child.wait().unwrap();
    sleeper.kill();
    let left = staging_beside(&out);
    assert!(
        !left.is_empty(),
        "no staging directory beside OUT while the build was paused in the hook: \
         the sweep cannot be tested\n{}",
        child.output()
    );

    let o = run_bounded(
        &mut image(&[os("--rootfs"), tree.as_os_str()], &out, &[]),
        QUICK,
    );
    assert_exit(&o, 0);
    let left = staging_beside(&out);
    assert!(left.is_empty(), "stale staging not swept: {left:?}");
}

// ---------------------------------------------------------------------------------------
// 7. Control characters in names.

const EVIL: &str = "evil\n\u{1b}[31mred";

/// Problems with `bytes` (one output stream) under the escaping rules: raw control bytes,
/// and (for stderr) lines not starting `ocipack: `.
fn escaping_problems(what: &str, bytes: &[u8], is_stderr: bool) -> Vec<String> {
    let mut p = Vec::new();
    let ctl = control_bytes(bytes);
    if !ctl.is_empty() {
        p.push(format!(
            "{what}: raw control bytes {ctl:02x?} in {:?}",
            text(bytes)
        ));
    }
    if is_stderr {
        for line in text(bytes).lines() {
            if !line.starts_with("ocipack: ") {
                p.push(format!(
                    "{what}: stderr line {line:?} does not start `ocipack: `"
                ));
            }
        }
    }
    p
}

/// Issue 9, failure 7: the warning about a skipped socket printed its name raw, so a name
/// holding a newline and ESC forged lines and drove the terminal. The name is escaped.
#[test]
fn warning_about_a_skipped_socket_escapes_its_name() {
    let t = tempfile::tempdir().unwrap();
    let tree = t.path().join("tree");
    fs::create_dir(&tree).unwrap();
    fs::write(tree.join("ok.txt"), "ok\n").unwrap();
    let _socket = std::os::unix::net::UnixListener::bind(tree.join(EVIL)).unwrap();
    let out = t.path().join("out");
    let o = run_bounded(
        &mut image(&[os("--rootfs"), tree.as_os_str()], &out, &[]),
        QUICK,
    );
    assert_exit(&o, 0);
    let mut p = escaping_problems("stderr", &o.stderr, true);
    p.extend(escaping_problems("stdout", &o.stdout, false));
    let escaped = EVIL.escape_debug().to_string();
    if !text(&o.stderr).contains(&escaped) {
        p.push(format!(
            "the warning does not show {escaped:?}\n{}",
            show(&o)
        ));
    }
    assert!(p.is_empty(), "{}", p.join("\n"));
}

/// Issue 9, failure 7: errors and warnings about `--tar` entries (and the tar's own name)
/// printed names raw. Each case: an entry name with ESC and `..` in a tar whose name has a
/// newline and ESC; a hard link whose name has ESC and whose target climbs with `..`; the
/// same entry in a plainly named tar; a skipped device entry whose name has ESC (warning).
#[test]
fn tar_entry_errors_and_warnings_escape_names() {
    let t = tempfile::tempdir().unwrap();
    let cases: [(&str, &str, Vec<u8>, i32); 4] = [
        (
            "entry with ESC and .. in a tar named with a newline and ESC",
            "in\n\u{1b}[1m.tar",
            tar_of(&[tar_member(
                "x\u{1b}[31m/../../etc/passwd".as_bytes(),
                b'0',
                b"",
                b"x\n",
            )]),
            2,
        ),
        (
            "hard link named with ESC whose target has ..",
            "links.tar",
            tar_of(&[
                tar_member(b"target", b'0', b"", b"x\n"),
                tar_member("link\u{1b}[31m".as_bytes(), b'1', b"../target", b""),
            ]),
            2,
        ),
        (
            "entry with ESC and .. in a plain tar",
            "plain.tar",
            tar_of(&[tar_member(
                "x\u{1b}[31m/../../etc/passwd".as_bytes(),
                b'0',
                b"",
                b"x\n",
            )]),
            2,
        ),
        (
            "skipped device named with ESC",
            "devices.tar",
            tar_of(&[
                tar_member(b"ok.txt", b'0', b"", b"x\n"),
                tar_member("null\u{1b}[31m".as_bytes(), b'3', b"", b""),
            ]),
            0,
        ),
    ];
    let mut p = Vec::new();
    for (i, (what, tar_name, bytes, code)) in cases.into_iter().enumerate() {
        let tar = t.path().join(tar_name);
        fs::write(&tar, bytes).unwrap();
        let o = image_from_tar(&tar, &t.path().join(format!("out{i}")), false);
        if o.status.code() != Some(code) {
            p.push(format!("{what}: want exit {code}\n{}", show(&o)));
        }
        p.extend(escaping_problems(what, &o.stderr, true));
        p.extend(escaping_problems(what, &o.stdout, false));
        if !text(&o.stderr).contains(r"\u{1b}") {
            p.push(format!(
                "{what}: stderr does not show ESC as \\u{{1b}}\n{}",
                show(&o)
            ));
        }
        if code == 2 {
            let errors = text(&o.stderr)
                .lines()
                .filter(|l| l.starts_with("ocipack: error: "))
                .count();
            if errors != 1 {
                p.push(format!("{what}: want one error line\n{}", show(&o)));
            }
        }
    }
    assert!(p.is_empty(), "{}", p.join("\n\n"));
}

/// Issue 9, failure 7: `ocipack verify` printed a layout path holding a newline and ESC raw
/// in its report and its errors. Every message shows it escaped.
#[test]
fn verify_escapes_a_layout_path_with_control_characters() {
    let t = tempfile::tempdir().unwrap();
    let plain = t.path().join("plain");
    build_hello(&plain, &[]);
    let layout = t.path().join(format!("lay{EVIL}out"));
    fs::rename(&plain, &layout).unwrap();
    // A second copy with a problem (its config blob missing), so that problems name it too.
    let broken = t.path().join(format!("broken{EVIL}"));
    let st = Command::new("cp")
        .arg("-a")
        .arg(&layout)
        .arg(&broken)
        .status()
        .unwrap();
    assert!(st.success());
    let config = fs::read_link(broken.join("image-config.json")).unwrap();
    fs::remove_file(broken.join(&config)).unwrap();
    let missing = t.path().join(format!("missing{EVIL}"));

    let mut p = Vec::new();
    for (what, path, code) in [
        ("a valid layout", &layout, 0),
        ("a layout with a missing blob", &broken, 1),
        ("a missing layout", &missing, 2),
    ] {
        let o = run_bounded(ocipack().arg("verify").arg(path), QUICK);
        if o.status.code() != Some(code) {
            p.push(format!("{what}: want exit {code}\n{}", show(&o)));
        }
        p.extend(escaping_problems(what, &o.stderr, true));
        p.extend(escaping_problems(what, &o.stdout, false));
        let escaped = path.to_str().unwrap().escape_debug().to_string();
        let all = format!("{}{}", text(&o.stdout), text(&o.stderr));
        if !all.contains(&escaped) {
            p.push(format!(
                "{what}: the output does not show {escaped:?}\n{}",
                show(&o)
            ));
        }
    }
    assert!(p.is_empty(), "{}", p.join("\n\n"));
}

// ---------------------------------------------------------------------------------------
// 8. Credentials in messages.

/// Problems if `out` shows `secrets` or any 12-byte piece of `base64`.
fn leaks(what: &str, out: &Output, secrets: &[&str], base64: &str) -> Vec<String> {
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    let mut p = Vec::new();
    for s in secrets {
        if all.contains(s) {
            p.push(format!("{what}: output shows {s:?}\n{}", show(out)));
        }
    }
    let b = base64.as_bytes();
    if let Some(w) = b
        .windows(12)
        .find(|w| all.contains(std::str::from_utf8(w).unwrap()))
    {
        p.push(format!(
            "{what}: output shows {:?}, part of the base64 credential\n{}",
            text(w),
            show(out)
        ));
    }
    p
}

/// Issue 9, failure 8: a registry whose error body echoes what it received (the whole
/// Authorization header, its base64, or the password) put the credential on stderr. The
/// push fails with exit 1 and no message shows the password or any part of its base64.
#[test]
fn registry_error_bodies_echoing_credentials_are_redacted() {
    let t = tempfile::tempdir().unwrap();
    let layout = t.path().join("hello");
    build_hello(&layout, &[]);
    let basic = base64::engine::general_purpose::STANDARD.encode("alice:hunter2");
    let mut p = Vec::new();
    for echo in ["header", "base64", "password"] {
        let fake = fake(move |r: &Req| {
            let Some(auth) = r.header("authorization") else {
                return Reply::Full(
                    401,
                    vec![("WWW-Authenticate", "Basic realm=\"x\"".into())],
                    Vec::new(),
                );
            };
            if r.method == "HEAD" {
                return Reply::Full(404, Vec::new(), Vec::new());
            }
            let b64 = auth.strip_prefix("Basic ").unwrap_or(auth);
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map(|d| text(&d))
                .unwrap_or_default();
            let pw = decoded.split_once(':').map(|(_, p)| p).unwrap_or_default();
            let message = match echo {
                "header" => format!("you sent Authorization: {auth}"),
                "base64" => format!("bad credential {b64}"),
                _ => format!("wrong password {pw}"),
            };
            Reply::Full(
                400,
                vec![("Content-Type", "application/json".into())],
                format!(r#"{{"errors":[{{"code":"DENIED","message":"{message}"}}]}}"#).into_bytes(),
            )
        });
        let o = push_to(
            fake.port,
            &layout,
            &["--username", "alice", "--password-stdin"],
            "hunter2\n",
            None,
            LIMIT,
        );
        let what = format!("registry echoing the {echo}");
        if !fake.requests().iter().any(|r| {
            r.header("authorization") == Some(&format!("Basic {basic}")) && r.method != "HEAD"
        }) {
            p.push(format!(
                "{what}: ocipack never sent the credentials to be echoed\n{}",
                show(&o)
            ));
        }
        if o.status.code() != Some(1) {
            p.push(format!("{what}: want exit 1\n{}", show(&o)));
        }
        p.extend(leaks(&what, &o, &["hunter2", &basic], &basic));
    }
    assert!(p.is_empty(), "{}", p.join("\n\n"));
}

/// Issue 9, failure 8: a Docker config whose `auths` entry for another registry is
/// malformed put that registry's base64 credential into the error message. Whatever the
/// push does, the other registry's credential never appears.
#[test]
fn malformed_docker_config_entry_never_shows_another_registrys_credential() {
    let t = tempfile::tempdir().unwrap();
    let layout = t.path().join("hello");
    build_hello(&layout, &[]);
    let secret = "c2VjcmV0dXNlcjpzZWNyZXRwYXNz";
    assert_eq!(
        base64::engine::general_purpose::STANDARD.encode("secretuser:secretpass"),
        secret
    );
    // An anonymous registry that has every blob and takes any manifest.
    let fake = fake(|r: &Req| match r.method.as_str() {
        "HEAD" if r.path.contains("/blobs/") => Reply::Full(200, Vec::new(), Vec::new()),
        "PUT" if r.path.contains("/manifests/") => Reply::Full(201, Vec::new(), Vec::new()),
        _ => Reply::Full(404, Vec::new(), br#"{"errors":[]}"#.to_vec()),
    });
    let mut p = Vec::new();
    for (what, entry) in [
        ("a string where an object belongs", format!("\"{secret}\"")),
        (
            "a number where the username belongs",
            format!(r#"{{"auth":"{secret}","username":5}}"#),
        ),
    ] {
        let dc = tempfile::tempdir().unwrap();
        fs::write(
            dc.path().join("config.json"),
            format!(r#"{{"auths":{{"other.example:5000":{entry}}}}}"#),
        )
        .unwrap();
        let o = push_to(fake.port, &layout, &[], "", Some(dc.path()), LIMIT);
        p.extend(leaks(
            what,
            &o,
            &[secret, "secretpass", "secretuser"],
            secret,
        ));
    }
    assert!(p.is_empty(), "{}", p.join("\n\n"));
}

// ---------------------------------------------------------------------------------------
// 9. A registry trickling its answer.

/// Issue 9, failure 9: a registry that sends an error body at one byte per second kept
/// `push --timeout 5` running forever (each byte reset the idle timeout). The push gives
/// up with exit 1 at the deadline. The bound is the feature, not a speed claim: the body
/// trickles for 180 s, and the push must end long before, within 60 s (12 × the timeout,
/// room for a loaded machine).
#[test]
fn push_gives_up_on_a_registry_trickling_an_error_body() {
    let t = tempfile::tempdir().unwrap();
    let layout = t.path().join("hello");
    build_hello(&layout, &[]);
    let fake = fake(|r: &Req| {
        if r.method == "HEAD" {
            Reply::Full(404, Vec::new(), Vec::new())
        } else {
            Reply::Trickle(500)
        }
    });
    let start = Instant::now();
    let o = push_to(fake.port, &layout, &["--timeout", "5"], "", None, LIMIT);
    let took = start.elapsed();
    assert!(
        fake.requests().iter().any(|r| r.method != "HEAD"),
        "ocipack never reached the trickling answer\n{}",
        show(&o)
    );
    assert_error(&o, 1);
    assert!(
        took < Duration::from_secs(60),
        "took {took:?}\n{}",
        show(&o)
    );
}

// ---------------------------------------------------------------------------------------
// 10. One gzip bomb listed many times.

/// Issue 9, failure 10: `verify` decompressed a blob again for each listing: a 1 MB gzip
/// bomb listed ten times took ten times as long, and each of its problems was reported ten
/// times. Each distinct blob is checked once: its problems are named once, and the debug
/// build's log of layer decompressions ([`DECOMPRESSIONS`]) holds one line for the ten
/// listings, as for one.
#[test]
fn verify_checks_a_blob_listed_ten_times_once() {
    let t = tempfile::tempdir().unwrap();
    // About 64 KB: a tar member named `../escape` (a problem verify reports against the
    // blob) followed by zeros, 64 MiB in all. (The size does not matter to the count; it
    // is small so that even ten decompressions end well within the limit, and a test of
    // the old behaviour fails on the count, not on the watchdog.)
    let (bomb, diff_id) = gzip_bomb(&tar_member(b"../escape", b'0', b"", b"evil\n"), 64);
    let (one, ten) = (t.path().join("one"), t.path().join("ten"));
    bomb_layout(&one, &bomb, &diff_id, 1, Listing::SameDigest);
    bomb_layout(&ten, &bomb, &diff_id, 10, Listing::SameDigest);
    let blob = sha256(&bomb);
    let mentions = |o: &Output| -> Vec<String> {
        format!("{}{}", text(&o.stdout), text(&o.stderr))
            .lines()
            .filter(|l| l.contains(&blob["sha256:".len()..]))
            .map(str::to_string)
            .collect()
    };
    // Verifies `layout`, returning its output and the lines of the decompression log.
    let verify = |layout: &Path, log: &str| -> (Output, Vec<String>) {
        let log = t.path().join(log);
        let o = run_bounded(
            ocipack()
                .env(DECOMPRESSIONS, &log)
                .arg("verify")
                .arg(layout),
            LIMIT,
        );
        let lines = fs::read_to_string(&log).unwrap_or_default();
        (o, lines.lines().map(str::to_string).collect())
    };

    let (o1, log1) = verify(&one, "one.log");
    let m1 = mentions(&o1);
    assert!(
        o1.status.code() == Some(1) && !m1.is_empty(),
        "the bomb's `../escape` entry is not reported: this test tests nothing\n{}",
        show(&o1)
    );
    assert_eq!(
        log1,
        std::slice::from_ref(&blob),
        "one listing\n{}",
        show(&o1)
    );
    let (o10, log10) = verify(&ten, "ten.log");
    assert_eq!(o10.status.code(), Some(1), "{}", show(&o10));
    let m10 = mentions(&o10);
    assert!(
        m10.len() <= m1.len(),
        "the blob is named on {} lines for ten listings, {} for one\nten:\n{}\none:\n{}",
        m10.len(),
        m1.len(),
        show(&o10),
        show(&o1)
    );
    assert_eq!(
        log10,
        [blob],
        "ten listings of one blob: decompressed once per listing\n{}",
        show(&o10)
    );
}

// ---------------------------------------------------------------------------------------
// 11. A file rewritten in place during the build.

/// Issue 9, failure 11: a file rewritten in place (same size) while the build read it gave
/// a torn layer without a word. The build fails with exit 2 naming the file and saying it
/// changed; the hook rewrites it after the walk, deterministically.
#[test]
fn a_file_rewritten_in_place_during_the_build_is_an_error() {
    let t = tempfile::tempdir().unwrap();
    let tree = t.path().join("tree");
    fs::create_dir_all(tree.join("data")).unwrap();
    let file = tree.join("data/payload.bin");
    fs::write(&file, "A".repeat(65536)).unwrap();
    // Past the file system's timestamp granularity, so that the rewrite changes its ctime.
    std::thread::sleep(Duration::from_millis(100));
    let marker = t.path().join("hook-ran");
    let hook = format!(
        "printf 'CHANGED-IN-PLACE' 1<> {f} && touch {m}",
        f = sq(&file),
        m = sq(&marker)
    );
    let out = t.path().join("out");
    let o = run_bounded(
        image(&[os("--rootfs"), tree.as_os_str()], &out, &[]).env(HOOK, &hook),
        QUICK,
    );
    assert!(
        marker.exists(),
        "hook did not run: {HOOK} must run after the walk\n{}",
        show(&o)
    );
    assert_eq!(
        fs::metadata(&file).unwrap().len(),
        65536,
        "the rewrite changed the size"
    );
    let e = assert_error(&o, 2);
    assert!(
        e.contains("payload.bin"),
        "the error does not name the file\n{e}"
    );
    assert!(
        e.contains("changed"),
        "the error does not say the file changed\n{e}"
    );
    assert!(!out.exists(), "a layout was written after an input error");
}
