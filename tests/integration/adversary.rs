//! Adversarial regression tests: attacks on the redesign of issue 9 (one guarded I/O layer,
//! one image model, one settings path) that broke one of ocipack's promises.
//!
//! Each test drives the CLI only, says in its doc comment what the attack is and what must
//! happen instead, and fails on the code it was written against. The conventions are those
//! of [`crate::seams`]: exit 2 for usage and input errors, 1 for failed checks; every error
//! is one line starting `ocipack: error: `; no raw control byte but the line end in any
//! output; nothing outside the declared outputs written or deleted; memory bounded whatever
//! the input claims. Every child runs under a time limit, and the runs whose failure mode is
//! unbounded memory run under an address-space cap, so that a break is a clear failure.

use crate::common;
use crate::common::git;

use std::fs;
use std::io::Write;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::cli::{
    CREATED, assert_error, control_bytes_and_del, hello_project, image, ocipack_capped, os, show,
    sq, text,
};
use common::oci::{
    Listing, TAR, bomb_layout, config_json, descriptor, finish_layout, gzip_bomb, put_blob,
    put_manifest,
};
use common::tar::{tar_file, tar_of};
use common::{build_hello, ocipack, run_bounded, snapshot, wait_bounded};
use serde_json::{Value, json};

/// The test hook's environment variable (debug builds): a shell command run once per image
/// after the inputs were walked and before any content is read.
const HOOK: &str = "OCIPACK_TEST_HOOK_AFTER_WALK";
/// The debug builds' work log: a file to which each layer decompression of `verify` and
/// `diff` appends one line (the digest its descriptor names).
const DECOMPRESSIONS: &str = "OCIPACK_TEST_LOG_DECOMPRESSIONS";
/// The watchdog of runs that should end at once: one still running after this long is
/// stuck, and the test fails. A bound against hangs, not a speed claim: generous, so that a
/// loaded machine does not look stuck.
const QUICK: Duration = Duration::from_secs(60);
/// Longer operations.
const LIMIT: Duration = Duration::from_secs(120);
/// Address-space cap (KiB) for runs whose failure mode is unbounded memory: 1 GiB.
const MEM_LIMIT_KIB: u64 = 1024 * 1024;
/// A name that forges a line and drives the terminal when printed raw.
const EVIL: &str = "evil\n\u{1b}[31mred";

// ---------------------------------------------------------------------------------------
// Helpers

/// Asserts that `o`'s stdout holds no control byte (DEL included) but line ends.
fn assert_no_control_bytes_on_stdout(o: &Output) {
    let ctl = control_bytes_and_del(&o.stdout);
    assert!(
        ctl.is_empty(),
        "raw control bytes {ctl:02x?} on stdout\n{}",
        show(o)
    );
}

/// Every name below `dir` (relative, sorted), following nothing.
fn tree_names(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            out.push(p.strip_prefix(dir).unwrap().to_string_lossy().into_owned());
            if fs::symlink_metadata(&p).unwrap().is_dir() {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

/// A layout with one image whose only layer is the uncompressed tar `layer`.
fn layout_with_tar_layer(dir: &Path, layer: &[u8], os_: &str, arch: &str) {
    let l = put_blob(dir, layer);
    let config = config_json(os_, arch, std::slice::from_ref(&l.0), None);
    let entry = put_manifest(dir, &config, vec![descriptor(TAR, &l)], None);
    finish_layout(dir, vec![entry]);
}

/// A small project in `dir`: one amd64 image from the directory `tree` (relative).
fn tree_project(dir: &Path, output: &str, rootfs: &str) {
    fs::create_dir_all(dir).unwrap();
    fs::write(
        dir.join("ocipack.toml"),
        format!(
            "name = \"adv\"\ncreated = \"{CREATED}\"\narchitectures = [\"amd64\"]\n\
             output = \"{output}\"\n\n[[input]]\nrootfs = \"{rootfs}\"\n"
        ),
    )
    .unwrap();
}

// ---------------------------------------------------------------------------------------
// Names in output: escaping and injection.

/// `ocipack diff` prints layer entry names raw: a file named `evil\n\e[31mred` puts a raw
/// ESC sequence and a forged line on stdout (`layer 0: evil` / `\e[31mred: content …`).
/// Every name in a message is escaped: stdout holds no control byte but line ends.
#[test]
fn diff_escapes_layer_entry_names() {
    let t = tempfile::tempdir().unwrap();
    let mut layouts = Vec::new();
    for (side, content) in [("a", "one\n"), ("b", "two\n")] {
        let tree = t.path().join(format!("tree-{side}"));
        fs::create_dir_all(&tree).unwrap();
        fs::write(tree.join(EVIL), content).unwrap();
        let out = t.path().join(side);
        let o = run_bounded(
            &mut image(&[os("--rootfs"), tree.as_os_str()], &out, &[]),
            QUICK,
        );
        assert_eq!(o.status.code(), Some(0), "{}", show(&o));
        layouts.push(out);
    }
    let o = run_bounded(
        ocipack().arg("diff").arg(&layouts[0]).arg(&layouts[1]),
        QUICK,
    );
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    assert_no_control_bytes_on_stdout(&o);
    // Escaped, the name stays inside its own line: no line begins with what followed the
    // newline in the name.
    assert!(
        !text(&o.stdout)
            .lines()
            .any(|l| l.starts_with("\u{1b}[31mred") || l.starts_with("[31mred")),
        "an entry name forged its own output line\n{}",
        show(&o)
    );
    assert!(
        text(&o.stdout).contains("evil\\n\\u{1b}[31mred: content"),
        "the name is not shown escaped\n{}",
        show(&o)
    );
}

/// `ocipack build --check` explains a differing layout with `diff`'s lines, and prints the
/// entry names in them raw: a committed input file named `evil\n\e[31mred` drives the
/// terminal of whoever runs the check. Its output must hold no control byte but line ends.
#[test]
fn build_check_escapes_entry_names_in_its_explanation() {
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("p");
    tree_project(&p, "{arch}/oci", "tree");
    fs::create_dir_all(p.join("tree")).unwrap();
    fs::write(p.join("tree").join(EVIL), "one\n").unwrap();
    let o = run_bounded(ocipack().arg("build").arg(&p), QUICK);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    fs::write(p.join("tree").join(EVIL), "two\n").unwrap();
    let o = run_bounded(ocipack().arg("build").arg("--check").arg(&p), QUICK);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    assert_no_control_bytes_on_stdout(&o);
}

/// `ocipack verify` prints the config's platform in its summary line raw
/// (`INVALID: 3 errors (lin` / `ux/amd\e[2J64/v\a)`): a hostile layout's `os`,
/// `architecture` or `variant` forges lines and drives the terminal, although each problem
/// line escapes the same values. Every stdout line must be one of the layout's lines and
/// hold no control byte.
#[test]
fn verify_summary_escapes_the_config_platform() {
    let t = tempfile::tempdir().unwrap();
    let layout = t.path().join("layout");
    let layer = tar_of(&[tar_file(b"ok", b"ok\n")]);
    layout_with_tar_layer(&layout, &layer, "lin\nux", "amd\u{1b}[2J64");
    let o = run_bounded(ocipack().arg("verify").arg(&layout), QUICK);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    assert_no_control_bytes_on_stdout(&o);
    let prefix = format!("{}: ", layout.display());
    let stdout = text(&o.stdout);
    // The summary names the platform, escaped (so the line checks below have lines to check).
    assert!(
        stdout.contains(r"INVALID: 2 errors (lin\nux/amd\u{1b}[2J64)"),
        "the summary does not name the platform escaped\n{}",
        show(&o)
    );
    for line in stdout.lines() {
        assert!(
            line.starts_with(&prefix),
            "forged stdout line {line:?}\n{}",
            show(&o)
        );
    }
}

/// `ocipack library` writes project values into the RFC 2822-style file bashbrew parses
/// without checking or escaping them: `descriptor-file = "d.json\nGitCommit: 000…"` adds a
/// second `GitCommit:` line (bashbrew would build another commit than the real one) and
/// `name = "hello\e[2Jworld"` puts a raw ESC sequence on stdout. Such values are refused
/// (by `build` or `library`) or escaped: no control byte but line ends, no forged field.
#[test]
fn library_output_cannot_be_forged_by_project_values() {
    let t = tempfile::tempdir().unwrap();
    let ex = git::example_repo(t.path());
    let toml = ex.join("ocipack.toml");
    let text0 = fs::read_to_string(&toml).unwrap();
    let forged = "GitCommit: 0000000000000000000000000000000000000000";
    let edited = text0
        .replace(
            "ref-name = \"latest\"",
            &format!("ref-name = \"latest\"\ndescriptor-file = \"d.json\\n{forged}\""),
        )
        .replace("name = \"hello-world\"", "name = \"hello\\u001b[2Jworld\"");
    assert_ne!(edited, text0);
    fs::write(&toml, edited).unwrap();
    // Whether build accepts the values or not: library is what is checked.
    let _ = run_bounded(ocipack().arg("build").arg(&ex), LIMIT);
    git::commit_all(t.path(), "@1800000000 +0000");
    let o = run_bounded(ocipack().arg("library").arg(&ex), QUICK);
    assert_no_control_bytes_on_stdout(&o);
    assert!(
        !text(&o.stdout).lines().any(|l| l == forged),
        "a project value forged a library field\n{}",
        show(&o)
    );
}

/// The generated Windows `Dockerfile` names the `[windows] text` file in its first comment
/// line, raw: a text file named `greeting.txt\nRUN echo pwned\n#` (any name without `/`
/// works) injects a `RUN` instruction that the Windows build would execute. Such a name is
/// refused (exit 2) or kept inside the comment: the Dockerfile holds only ocipack's own
/// instructions.
#[test]
fn windows_dockerfile_cannot_be_injected_through_the_text_file_name() {
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("p");
    let name = "greeting.txt\nRUN echo pwned\n#";
    hello_project(
        &p,
        &["amd64"],
        &[(
            "text = \"greeting.txt\"",
            "text = \"greeting.txt\\nRUN echo pwned\\n#\"",
        )],
    );
    fs::rename(p.join("greeting.txt"), p.join(name)).unwrap();
    let o = run_bounded(ocipack().arg("build").arg(&p), LIMIT);
    if o.status.code() == Some(2) {
        assert_error(&o, 2);
        return;
    }
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let dockerfile = fs::read_to_string(p.join("amd64/nanoserver-ltsc2025/Dockerfile")).unwrap();
    let instructions: Vec<&str> = dockerfile
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.split_whitespace().next().unwrap_or_default())
        .collect();
    assert_eq!(
        instructions,
        ["FROM", "COPY", "CMD"],
        "instructions injected into the Dockerfile:\n{dockerfile}"
    );
}

/// A usage error found while parsing the command line (an unknown flag, a bad value) is
/// printed by the argument parser as several lines (`error: …`, `Usage: …`, `For more
/// information …`), none of them `ocipack: error: `, and a newline in the offending
/// argument forges a line of its own (`ocipack: error: forged`). Every error is one line
/// starting `ocipack: error: `, exit 2.
#[test]
fn command_line_errors_are_one_ocipack_error_line() {
    let o = run_bounded(
        ocipack().args(["image", "--no-such-flag\nocipack: error: forged"]),
        QUICK,
    );
    let e = assert_error(&o, 2);
    assert!(!e.contains("\nocipack: error: forged"), "forged line\n{e}");
    let o = run_bounded(
        ocipack().args(["export", "x", "--format", "tar", "-o", "y"]),
        QUICK,
    );
    assert_error(&o, 2);
}

// ---------------------------------------------------------------------------------------
// Memory and time bounded whatever the layout claims.

/// `verify` (and every command through the one layout reader) reads and keeps the config
/// once per image descriptor: an index listing 200 small manifests that share one 4 MB
/// config (a valid JSON document) makes it read that config 200 times and hold 200 copies
/// (8 MB each, decoded and raw): 1.6 GB from a 4 MB layout, and a crash under a 1 GiB cap.
/// Each distinct blob is read once and memory stays bounded: exit 1 (the index lists more
/// than one manifest), one error line per problem.
#[test]
fn verify_of_many_manifests_sharing_one_config_stays_in_bounded_memory() {
    let t = tempfile::tempdir().unwrap();
    let layout = t.path().join("layout");
    let layer = put_blob(&layout, &tar_of(&[]));
    let config = config_json(
        "linux",
        "amd64",
        std::slice::from_ref(&layer.0),
        Some(json!({ "pad": "x".repeat(4_000_000) })),
    );
    let entries: Vec<Value> = (0..200)
        .map(|i| {
            put_manifest(
                &layout,
                &config,
                vec![descriptor(TAR, &layer)],
                Some(json!({ "n": i.to_string() })),
            )
        })
        .collect();
    finish_layout(&layout, entries);
    let o = run_bounded(
        ocipack_capped(MEM_LIMIT_KIB).arg("verify").arg(&layout),
        LIMIT,
    );
    assert_eq!(
        o.status.code(),
        Some(1),
        "verify of a 4 MB layout did not finish within a 1 GiB address space\n{}",
        show(&o)
    );
    assert!(
        text(&o.stdout).contains("lists 200 manifests"),
        "{}",
        show(&o)
    );
}

/// `diff` keeps each layer's entries for every time the manifest lists the layer: a 1 MB
/// layer of 2,000 files listed 2,000 times (a 300 KB manifest) costs 2,000 copies of its
/// entry list, gigabytes, and aborts under a 1 GiB cap ("memory allocation failed"). The
/// same layout compared with itself must be identical (exit 0) in bounded memory.
#[test]
fn diff_of_a_layer_listed_many_times_stays_in_bounded_memory() {
    let t = tempfile::tempdir().unwrap();
    let layout = t.path().join("layout");
    let members: Vec<Vec<u8>> = (0..2000)
        .map(|i| tar_file(format!("f{i:06}").as_bytes(), b""))
        .collect();
    let layer = put_blob(&layout, &tar_of(&members));
    let copies = 2000;
    let config = config_json("linux", "amd64", &vec![layer.0.clone(); copies], None);
    let entry = put_manifest(
        &layout,
        &config,
        vec![descriptor(TAR, &layer); copies],
        None,
    );
    finish_layout(&layout, vec![entry]);
    let o = run_bounded(ocipack().arg("verify").arg(&layout), LIMIT);
    assert_eq!(
        o.status.code(),
        Some(0),
        "the layout is valid\n{}",
        show(&o)
    );
    let o = run_bounded(
        ocipack_capped(MEM_LIMIT_KIB)
            .arg("diff")
            .arg(&layout)
            .arg(&layout),
        LIMIT,
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "diff of a layout with itself did not finish within a 1 GiB address space\n{}",
        show(&o)
    );
}

/// Issue 9's failure 10 (a gzip bomb listed ten times was decompressed ten times) is fixed
/// by checking each distinct *digest* once, so naming the same bomb file under ten made-up
/// digests (nine blob files that are symlinks to it; each fails its digest check, which
/// only the end of the read reveals) brings the cost back: ten decompressions of one bomb.
/// A blob whose bytes are not its digest needs no decompression, and the same file is the
/// same blob: the debug build's log of layer decompressions ([`DECOMPRESSIONS`]) holds one
/// line for the ten names, and the nine made-up digests are still reported.
#[test]
fn verify_decompresses_one_bomb_once_whatever_digests_name_it() {
    let t = tempfile::tempdir().unwrap();
    // 64 MiB of zeros (a tar that is all end marker), about 64 KB compressed.
    let (bomb, diff_id) = gzip_bomb(&[], 64);
    let ten = t.path().join("ten");
    bomb_layout(&ten, &bomb, &diff_id, 10, Listing::MadeUpDigests);
    let log = t.path().join("decompressions");
    let o = run_bounded(
        ocipack().env(DECOMPRESSIONS, &log).arg("verify").arg(&ten),
        LIMIT,
    );
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let made_up = text(&o.stdout)
        .lines()
        .filter(|l| l.contains("not to its digest"))
        .count();
    assert_eq!(made_up, 9, "each made-up digest is reported\n{}", show(&o));
    let lines = fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(
        lines.lines().count(),
        1,
        "ten names of one bomb file decompressed it once per name:\n{lines}\n{}",
        show(&o)
    );
}

// ---------------------------------------------------------------------------------------
// Outputs: only the declared outputs, swapped in all together or not at all.

/// The next build on a target sweeps every entry beside it whose name starts with
/// `.<target>.ocipack-` and that no process holds locked, whatever the rest of the name: a
/// user's `.out.ocipack-notes/` directory and `.out.ocipack-todo.txt` file next to `out`
/// are deleted by `ocipack image -o out`. Only names ocipack's staging can have
/// (`.<target>.ocipack-<pid>-<n>[.tmp]`) are swept; nothing else beside OUT is touched.
#[test]
fn staging_sweep_never_deletes_files_it_did_not_create() {
    let t = tempfile::tempdir().unwrap();
    let tree = t.path().join("tree");
    fs::create_dir_all(&tree).unwrap();
    fs::write(tree.join("a"), "a\n").unwrap();
    let dir = t.path().join("dir");
    fs::create_dir_all(dir.join(".out.ocipack-notes")).unwrap();
    fs::write(dir.join(".out.ocipack-notes/keep"), "precious\n").unwrap();
    fs::write(dir.join(".out.ocipack-todo.txt"), "precious\n").unwrap();
    let o = run_bounded(
        &mut image(&[os("--rootfs"), tree.as_os_str()], &dir.join("out"), &[]),
        QUICK,
    );
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let names = tree_names(&dir);
    for keep in [".out.ocipack-notes/keep", ".out.ocipack-todo.txt"] {
        assert!(
            names.iter().any(|n| n == keep),
            "the build deleted {keep}, which it did not create; left: {names:?}"
        );
    }
}

/// `ocipack build` creates the missing parent directories of its outputs before it reads a
/// single input, and leaves them when the build then fails: a project with
/// `output = "new/deeper/{arch}/oci"` and a missing input exits 2 but leaves
/// `new/deeper/amd64/` behind. Exit 2 means nothing is written: the project is as before.
#[test]
fn a_failed_project_build_creates_no_directories() {
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("p");
    tree_project(&p, "new/deeper/{arch}/oci", "missing-{arch}");
    let before = tree_names(&p);
    let o = run_bounded(ocipack().arg("build").arg(&p), QUICK);
    assert_error(&o, 2);
    assert_eq!(tree_names(&p), before, "a failed build changed the project");
}

/// `ocipack build` swaps its outputs into place one after the other, checking each target
/// only when its turn comes: when the second architecture's target can no longer be
/// replaced at commit time (here its `oci-layout` disappears while the build runs; the test
/// hook does it deterministically), the build fails with exit 2 but the first
/// architecture's layout has already been replaced. A failure in one output changes nothing
/// on disk: every output stays as it was.
#[test]
fn a_failed_commit_of_one_output_leaves_every_output_as_it_was() {
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("p");
    hello_project(&p, &["amd64", "arm64v8"], &[]);
    let o = run_bounded(ocipack().args(["build", "-j", "1"]).arg(&p), LIMIT);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    // A new amd64 input, so that a rebuilt amd64 layout differs from the one on disk.
    let mut hello = fs::OpenOptions::new()
        .append(true)
        .open(p.join("amd64/hello"))
        .unwrap();
    hello.write_all(b"changed").unwrap();
    drop(hello);
    let before = snapshot(&p.join("amd64/oci"));
    // The hook runs once per image (amd64, then arm64v8 with -j 1): the second time, after
    // arm64v8's target was checked, its oci-layout goes.
    let count = t.path().join("hook-count");
    let hook = format!(
        "echo x >> {c}; [ \"$(wc -l < {c})\" -eq 2 ] && rm -f {f}; true",
        c = sq(&count),
        f = sq(&p.join("arm64v8/oci/oci-layout"))
    );
    // --no-cache: arm64v8's inputs are unchanged, and its layout would be reused, not
    // built again.
    let o = run_bounded(
        ocipack()
            .args(["build", "-j", "1", "--no-cache"])
            .arg(&p)
            .env(HOOK, &hook),
        LIMIT,
    );
    assert!(
        fs::read_to_string(&count).is_ok_and(|c| c.lines().count() == 2),
        "the hook did not run twice\n{}",
        show(&o)
    );
    assert_error(&o, 2);
    assert!(
        snapshot(&p.join("amd64/oci")) == before,
        "the build failed, yet amd64/oci was replaced"
    );
}

/// `ocipack image`/`build` accept trees up to 1,024 directory levels (the layer's name
/// limit), but `build` walks and reads a tree recursively on a worker thread's small stack:
/// a tree 1,000 levels deep (a 2,000-byte path) aborts the whole process with a stack
/// overflow (SIGABRT, exit 134), leaving its staging behind. Within the name limits, it is
/// built (exit 0): a valid layout whose layer holds the file 1,001 levels down.
#[test]
fn build_of_a_deep_but_allowed_tree_does_not_crash() {
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("p");
    tree_project(&p, "{arch}/oci", "tree");
    let deep = p.join("tree").join("d/".repeat(1000));
    fs::create_dir_all(&deep).unwrap();
    fs::write(deep.join("f"), "deep\n").unwrap();
    let o = run_bounded(ocipack().arg("build").arg(&p), LIMIT);
    assert_eq!(
        o.status.code(),
        Some(0),
        "build of a 1000-level tree failed or crashed\n{}",
        show(&o)
    );
    let layout = p.join("amd64/oci");
    let v = run_bounded(ocipack().arg("verify").arg(&layout), LIMIT);
    assert_eq!(v.status.code(), Some(0), "{}", show(&v));
    let layer = flate2::read::GzDecoder::new(fs::File::open(layout.join("rootfs.tar.gz")).unwrap());
    let name = format!("{}f", "d/".repeat(1000));
    let mut found = None;
    for e in tar::Archive::new(layer).entries().unwrap() {
        let mut e = e.unwrap();
        if e.path_bytes().as_ref() == name.as_bytes() {
            let mut content = String::new();
            std::io::Read::read_to_string(&mut e, &mut content).unwrap();
            found = Some(content);
        }
    }
    assert_eq!(
        found.as_deref(),
        Some("deep\n"),
        "the deep file is not in the layer"
    );
}

// ---------------------------------------------------------------------------------------
// export: its output, and its input.

/// `ocipack export -o FILE` stages the archive beside FILE and renames it over whatever
/// FILE is, so `-o` naming a device node or a FIFO replaces the node with a regular file
/// (as root, `-o /dev/null` would replace the system's /dev/null, and `-o /dev/stdout`
/// its symlink). A special file at the target is written to or refused, never replaced.
#[test]
fn export_never_replaces_a_device_node_or_a_fifo() {
    let t = tempfile::tempdir().unwrap();
    let layout = t.path().join("layout");
    build_hello(&layout, &[]);
    // A FIFO, with a reader so that writing to it could not block.
    let fifo = t.path().join("fifo");
    let st = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(st.success());
    let mut reader = Command::new("cat")
        .arg(&fifo)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let o = run_bounded(
        ocipack()
            .arg("export")
            .arg(&layout)
            .args(["--format", "oci-archive", "-o"])
            .arg(&fifo),
        QUICK,
    );
    // The reader may still wait for a writer (or on a FIFO no longer there): stop it.
    let _ = reader.kill();
    let _ = reader.wait();
    let kind = fs::symlink_metadata(&fifo).unwrap().file_type();
    assert!(
        kind.is_fifo(),
        "export -o FIFO replaced the FIFO with {kind:?}\n{}",
        show(&o)
    );
    // A character device (the null device's numbers), where mknod is allowed.
    let dev = t.path().join("null");
    let made = Command::new("mknod")
        .arg(&dev)
        .args(["c", "1", "3"])
        .output()
        .is_ok_and(|m| m.status.success());
    if !made {
        return common::skip("mknod is not allowed here (the device case needs root)");
    }
    let o = run_bounded(
        ocipack()
            .arg("export")
            .arg(&layout)
            .args(["--format", "oci-archive", "-o"])
            .arg(&dev),
        QUICK,
    );
    let kind = fs::symlink_metadata(&dev).unwrap().file_type();
    assert!(
        kind.is_char_device(),
        "export -o DEVICE replaced the device node with {kind:?}\n{}",
        show(&o)
    );
}

/// `ocipack export LAYOUT -o LAYOUT/index.json` reads the layout, then renames the archive
/// over the layout's own `index.json` (exit 0): the input is destroyed and no longer
/// verifies. An output inside the layout being exported is refused (exit 2), the layout
/// left as it was (the build commands refuse an output inside an input the same way).
#[test]
fn export_into_its_own_layout_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let layout = t.path().join("layout");
    build_hello(&layout, &[]);
    let before = snapshot(&layout);
    let o = run_bounded(
        ocipack()
            .arg("export")
            .arg(&layout)
            .args(["--format", "oci-archive", "-o"])
            .arg(layout.join("index.json")),
        QUICK,
    );
    let after = snapshot(&layout);
    assert!(
        after == before,
        "export wrote into the layout it exported\n{}",
        show(&o)
    );
    assert_error(&o, 2);
}

// ---------------------------------------------------------------------------------------
// push and export refuse what verify rejects.

/// A layout whose only layer holds `../../etc/cron.d/evil` (every digest, size and
/// document right): `ocipack verify` rejects it (exit 1, "contains a '..' component").
fn layout_with_escaping_entry(dir: &Path) -> PathBuf {
    let layer = tar_of(&[tar_file(b"../../etc/cron.d/evil", b"* * * * * root id\n")]);
    layout_with_tar_layer(dir, &layer, "linux", "amd64");
    let o = run_bounded(ocipack().arg("verify").arg(dir), QUICK);
    assert_eq!(
        o.status.code(),
        Some(1),
        "verify accepts the layout: this test tests nothing\n{}",
        show(&o)
    );
    dir.to_path_buf()
}

/// `push` checks only the layout's documents before it talks to the registry, never the
/// layers' entries: a layout that `verify` rejects (a layer entry `../../etc/cron.d/evil`)
/// is uploaded and tagged (exit 0). push refuses an invalid layout before any network I/O:
/// exit 2, and the registry receives nothing.
#[test]
fn push_refuses_a_layout_that_verify_rejects() {
    if !common::require_tool("docker-registry") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let layout = layout_with_escaping_entry(&t.path().join("layout"));
    let registry = common::Registry::start();
    let o = run_bounded(
        ocipack()
            .env("DOCKER_CONFIG", t.path())
            .arg("push")
            .arg(&layout)
            .arg(format!("{}/adversary:v1", registry.host())),
        QUICK,
    );
    let sent =
        registry.requests("PUT", "/v2/adversary/") + registry.requests("POST", "/v2/adversary/");
    assert_eq!(
        sent,
        0,
        "push sent an invalid layout to the registry\n{}",
        show(&o)
    );
    assert_error(&o, 2);
}

/// `export` checks only the layout's documents, never the layers' entries: a layout that
/// `verify` rejects (a layer entry `../../etc/cron.d/evil`) is exported as a
/// docker-archive for `docker load` (exit 0). It is refused (exit 2), nothing written.
#[test]
fn export_refuses_a_layout_that_verify_rejects() {
    let t = tempfile::tempdir().unwrap();
    let layout = layout_with_escaping_entry(&t.path().join("layout"));
    let out = t.path().join("image.tar");
    let o = run_bounded(
        ocipack()
            .arg("export")
            .arg(&layout)
            .args(["--format", "docker-archive", "-o"])
            .arg(&out),
        QUICK,
    );
    assert!(
        !out.exists(),
        "an invalid layout was exported\n{}",
        show(&o)
    );
    assert_error(&o, 2);
}

/// `diff` lists a layout's top-level files by lossy UTF-8 names and then opens them by
/// those names: a layout that `verify` calls valid, holding one extra file whose name is
/// not UTF-8 (`x\xff`), makes `diff` fail with exit 2 and the false error "layout …: does
/// not exist". The layouts differ by that file: exit 1, the name escaped (`x\xff`).
#[test]
fn diff_of_a_layout_holding_a_non_utf8_file_name_reports_the_file() {
    use std::os::unix::ffi::OsStrExt;
    let t = tempfile::tempdir().unwrap();
    let (a, b) = (t.path().join("a"), t.path().join("b"));
    build_hello(&a, &[]);
    build_hello(&b, &[]);
    fs::write(b.join(std::ffi::OsStr::from_bytes(b"x\xff")), "extra\n").unwrap();
    let o = run_bounded(ocipack().arg("verify").arg(&b), QUICK);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let o = run_bounded(ocipack().arg("diff").arg(&a).arg(&b), QUICK);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    assert!(
        text(&o.stdout).contains("x\\xff"),
        "the extra file is not named (escaped)\n{}",
        show(&o)
    );
}

/// Output into a pipe whose reader has gone (`ocipack verify LAYOUT | head -1` on a layout
/// with several problems) makes `println!` panic: exit 101, "thread 'main' panicked …
/// failed printing to stdout: Broken pipe" and a backtrace on stderr. A closed standard
/// output ends ocipack quietly, or with one `ocipack: error: ` line; never a panic.
#[test]
fn output_into_a_closed_pipe_is_no_panic() {
    let t = tempfile::tempdir().unwrap();
    let layout = t.path().join("layout");
    build_hello(&layout, &[]);
    fs::write(layout.join("blobs/sha256/extra"), "unreferenced\n").unwrap();
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    // run_bounded pipes stdout itself: the same bound, by hand, with stderr in a file.
    let err = t.path().join("stderr");
    let mut child = ocipack()
        .arg("verify")
        .arg(&layout)
        .stdin(std::process::Stdio::null())
        .stdout(writer)
        .stderr(fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let Some(status) = wait_bounded(&mut child, QUICK) else {
        panic!("verify into a closed pipe did not finish within {QUICK:?}");
    };
    let e = fs::read_to_string(&err).unwrap();
    assert!(
        !e.contains("panicked") && status.code() != Some(101),
        "ocipack panicked writing to a closed pipe\n{e}"
    );
    for line in e.lines() {
        assert!(line.starts_with("ocipack: "), "stderr line {line:?}\n{e}");
    }
}
