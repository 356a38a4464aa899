//! `ocipack build`: project files, created sources (fixed, SOURCE_DATE_EPOCH, git), parallel
//! and partial builds, atomicity, --check, --compare-compression, Windows directories.

use crate::common;
use crate::common::git;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::cli::{stderr, stdout};
use common::{assert_exit, index_digest, ocipack, snapshot};
use git::{commit_all, git};

/// A project with two architectures whose "binaries" are small files.
const PROJECT: &str = r#"
name = "demo"
created = "@1000000000"
architectures = ["amd64", "arm64v8"]

[image]
cmd = ["/hello"]
ref-name = "latest"

[[input]]
source = "{arch}/hello"
dest = "/hello"
mode = "0755"
"#;

fn write_project(dir: &Path, toml: &str) {
    fs::create_dir_all(dir).unwrap();
    fs::write(dir.join("ocipack.toml"), toml).unwrap();
    for arch in ["amd64", "arm64v8", "i386"] {
        fs::create_dir_all(dir.join(arch)).unwrap();
        fs::write(dir.join(arch).join("hello"), format!("hello {arch}\n")).unwrap();
    }
    fs::write(dir.join("greeting.txt"), "Hi from ({arch})\n").unwrap();
}

/// [`PROJECT`] with one Windows variant (nanoserver-ltsc2025) and its text file, at `dir`.
fn write_windows_project(dir: &Path) {
    write_project(
        dir,
        &format!(
            "{PROJECT}\n[windows]\nvariants = [\"nanoserver-ltsc2025\"]\ntext = \"greeting.txt\"\n"
        ),
    );
}

fn build(dir: &Path, extra: &[&str]) -> Output {
    ocipack()
        .arg("build")
        .arg(dir)
        .args(extra)
        .output()
        .unwrap()
}

/// The `created` of the image config in the layout at `out`.
fn created_of(out: &Path) -> String {
    let config: serde_json::Value =
        serde_json::from_slice(&fs::read(out.join("image-config.json")).unwrap()).unwrap();
    config["created"].as_str().unwrap().to_string()
}

fn git_project(dir: &Path) {
    write_project(dir, &PROJECT.replace("\"@1000000000\"", "\"git\""));
    git(dir, &["init", "-q"], None);
    // amd64's input and the project file first, arm64v8's input a day later.
    fs::rename(dir.join("arm64v8"), dir.with_extension("parked")).unwrap();
    commit_all(dir, "@1700000000 +0000");
    fs::rename(dir.with_extension("parked"), dir.join("arm64v8")).unwrap();
    commit_all(dir, "@1700086400 +0000");
}

#[test]
fn builds_every_architecture_with_a_summary_line_each() {
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("p");
    write_project(&p, PROJECT);
    let o = build(&p, &[]);
    assert_exit(&o, 0);
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    for (line, arch) in lines.iter().zip(["amd64", "arm64v8"]) {
        let index: serde_json::Value =
            serde_json::from_slice(&fs::read(p.join(arch).join("oci/index.json")).unwrap())
                .unwrap();
        let digest = index["manifests"][0]["digest"].as_str().unwrap();
        assert!(line.starts_with(arch) && line.contains(digest), "{line}");
        assert!(
            line.contains("layer ") && line.contains("2001-09-09T01:46:40Z"),
            "{line}"
        );
        assert_eq!(
            created_of(&p.join(arch).join("oci")),
            "2001-09-09T01:46:40Z"
        );
        assert_eq!(
            index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"],
            "latest"
        );
    }
    let config: serde_json::Value =
        serde_json::from_slice(&fs::read(p.join("arm64v8/oci/image-config.json")).unwrap())
            .unwrap();
    assert_eq!(config["architecture"], "arm64");
    assert_eq!(config["variant"], "v8");
    assert_eq!(config["config"]["Cmd"][0], "/hello");
}

#[test]
fn bytes_do_not_depend_on_jobs_mtimes_or_umask() {
    let t = tempfile::tempdir().unwrap();
    let (a, b) = (t.path().join("a"), t.path().join("b"));
    write_project(&a, PROJECT);
    write_project(&b, PROJECT);
    assert_exit(&build(&a, &["--jobs", "1"]), 0);
    // Different mtimes (before and after created) and modes on disk change nothing.
    for arch in ["amd64", "arm64v8"] {
        let f = fs::File::options()
            .write(true)
            .open(b.join(arch).join("hello"))
            .unwrap();
        f.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(86400))
            .unwrap();
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(
            b.join(arch).join("hello"),
            fs::Permissions::from_mode(0o600),
        )
        .unwrap();
    }
    assert_exit(&build(&b, &["--jobs", "4"]), 0);
    for arch in ["amd64", "arm64v8"] {
        assert_eq!(
            snapshot(&a.join(arch).join("oci")),
            snapshot(&b.join(arch).join("oci")),
            "{arch}"
        );
    }
}

#[test]
fn arch_selects_a_subset_and_unknown_arches_are_refused() {
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("p");
    write_project(&p, PROJECT);
    let o = build(&p, &["--arch", "arm64v8"]);
    assert_exit(&o, 0);
    assert_eq!(stdout(&o).lines().count(), 1);
    assert!(p.join("arm64v8/oci/index.json").is_file());
    assert!(!p.join("amd64/oci").exists());

    let o = build(&p, &["--arch", "i386"]);
    assert_exit(&o, 2);
    assert!(
        stderr(&o).contains("i386") && stderr(&o).contains("amd64, arm64v8"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_failing_architecture_changes_nothing_on_disk() {
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("p");
    write_project(&p, PROJECT);
    assert_exit(&build(&p, &[]), 0);
    let before = snapshot(&p);
    // amd64's input changes (its layout would change), arm64v8's input disappears.
    fs::write(p.join("amd64/hello"), "changed\n").unwrap();
    fs::remove_file(p.join("arm64v8/hello")).unwrap();
    let o = build(&p, &[]);
    assert_exit(&o, 2);
    assert!(stderr(&o).contains("arm64v8/hello"), "{}", stderr(&o));
    let mut after = snapshot(&p);
    after.insert("amd64/hello".into(), before["amd64/hello"].clone());
    after.insert("arm64v8/hello".into(), before["arm64v8/hello"].clone());
    assert_eq!(
        before, after,
        "layouts untouched, no staging directory left"
    );
}

#[test]
fn unknown_keys_and_bad_values_name_the_line() {
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("p");
    write_project(
        &p,
        &PROJECT.replace("ref-name", "compresion = \"zstd\"\nref-name"),
    );
    let o = build(&p, &[]);
    assert_exit(&o, 2);
    let e = stderr(&o);
    assert!(
        e.contains("ocipack.toml:8:") && e.contains("unknown key `compresion`"),
        "{e}"
    );
    write_project(&p, &PROJECT.replace("mode = \"0755\"", "mode = \"0955\""));
    let o = build(&p, &[]);
    assert_exit(&o, 2);
    assert!(
        stderr(&o).contains("ocipack.toml:13: input.mode"),
        "{}",
        stderr(&o)
    );
    fs::remove_file(p.join("ocipack.toml")).unwrap();
    let o = build(&p, &[]);
    assert_exit(&o, 2);
    assert!(stderr(&o).contains("ocipack.toml"), "{}", stderr(&o));
}

#[test]
fn created_from_source_date_epoch() {
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("p");
    write_project(
        &p,
        &PROJECT.replace("\"@1000000000\"", "\"SOURCE_DATE_EPOCH\""),
    );
    let o = build(&p, &[]);
    assert_exit(&o, 2);
    assert!(
        stderr(&o).contains("SOURCE_DATE_EPOCH is not set"),
        "{}",
        stderr(&o)
    );
    let o = ocipack()
        .arg("build")
        .arg(&p)
        .env("SOURCE_DATE_EPOCH", "86400")
        .output()
        .unwrap();
    assert_exit(&o, 0);
    assert_eq!(created_of(&p.join("amd64/oci")), "1970-01-02T00:00:00Z");
}

#[test]
fn created_from_git_is_per_architecture() {
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("repo");
    git_project(&p);
    assert_exit(&build(&p, &[]), 0);
    assert_eq!(created_of(&p.join("amd64/oci")), "2023-11-14T22:13:20Z");
    assert_eq!(created_of(&p.join("arm64v8/oci")), "2023-11-15T22:13:20Z");
    // Committing the layouts does not change any input's date.
    commit_all(&p, "@1800000000 +0000");
    let amd64_before = snapshot(&p.join("amd64/oci"));

    // A new arm64v8 binary: only arm64v8's layout changes, dated by its commit.
    fs::write(p.join("arm64v8/hello"), "hello arm64v8, again\n").unwrap();
    git(&p, &["add", "arm64v8/hello"], None);
    git(
        &p,
        &["commit", "-q", "-m", "new arm64v8"],
        Some("@1900000000 +0000"),
    );
    assert_exit(&build(&p, &[]), 0);
    assert_eq!(created_of(&p.join("arm64v8/oci")), "2030-03-17T17:46:40Z");
    assert_eq!(snapshot(&p.join("amd64/oci")), amd64_before);
    assert!(git(&p, &["status", "--porcelain", "amd64"], None).is_empty());
}

#[test]
fn created_from_git_refuses_uncommitted_inputs() {
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("repo");
    git_project(&p);
    fs::write(p.join("amd64/hello"), "edited\n").unwrap();
    let o = build(&p, &[]);
    assert_exit(&o, 2);
    let e = stderr(&o);
    assert!(
        e.contains("amd64/hello") && e.contains("uncommitted changes"),
        "{e}"
    );
    assert!(!p.join("amd64/oci").exists() && !p.join("arm64v8/oci").exists());

    // An input that was never committed (untracked) is refused too.
    git(&p, &["checkout", "-q", "--", "amd64/hello"], None);
    let toml = fs::read_to_string(p.join("ocipack.toml")).unwrap();
    fs::write(
        p.join("ocipack.toml"),
        toml.replace(
            "[\"amd64\", \"arm64v8\"]",
            "[\"amd64\", \"arm64v8\", \"i386\"]",
        ),
    )
    .unwrap();
    git(&p, &["rm", "-q", "--cached", "i386/hello"], None);
    git(&p, &["add", "ocipack.toml"], None);
    git(
        &p,
        &["commit", "-q", "-m", "i386"],
        Some("@1700200000 +0000"),
    );
    let o = build(&p, &["--arch", "i386"]);
    assert_exit(&o, 2);
    assert!(
        stderr(&o).contains("i386/hello") && stderr(&o).contains("uncommitted"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn created_from_git_refuses_a_shallow_clone_and_a_non_repository() {
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("repo");
    git_project(&p);
    let shallow = t.path().join("shallow");
    git(
        t.path(),
        &[
            "clone",
            "-q",
            "--depth",
            "1",
            &format!("file://{}", p.display()),
            shallow.to_str().unwrap(),
        ],
        None,
    );
    let o = build(&shallow, &[]);
    assert_exit(&o, 2);
    assert!(stderr(&o).contains("shallow clone"), "{}", stderr(&o));
    assert!(!shallow.join("amd64/oci").exists());

    let plain = t.path().join("plain");
    write_project(&plain, &PROJECT.replace("\"@1000000000\"", "\"git\""));
    let o = build(&plain, &[]);
    assert_exit(&o, 2);
    assert!(
        stderr(&o).contains("not inside a git work tree"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn check_passes_on_identical_outputs_and_lists_each_difference() {
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("p");
    write_windows_project(&p);
    // The output's parent exists, the output does not.
    fs::create_dir_all(p.join("amd64")).unwrap();
    let o = build(&p, &["--check"]);
    assert_exit(&o, 1);
    assert!(
        stdout(&o).contains("(the output directory): missing"),
        "{}",
        stdout(&o)
    );
    // Nothing on disk to compare with: no explanation that could only say so.
    assert!(!stdout(&o).contains("cannot compare"), "{}", stdout(&o));
    assert!(!p.join("amd64/oci").exists(), "--check writes nothing");

    assert_exit(&build(&p, &[]), 0);
    let o = build(&p, &["--check"]);
    assert_exit(&o, 0);
    assert_eq!(
        stdout(&o)
            .lines()
            .filter(|l| l.starts_with("same "))
            .count(),
        3
    );

    let oci = p.join("arm64v8/oci");
    fs::write(oci.join("index.json"), b"{}").unwrap();
    fs::write(oci.join("stray"), b"").unwrap();
    fs::remove_file(oci.join("oci-layout")).unwrap();
    fs::write(
        oci.join("oci-layout"),
        b"{\"imageLayoutVersion\":\"1.0.0\"}",
    )
    .unwrap();
    let cfg_target = fs::read_link(oci.join("image-config.json")).unwrap();
    fs::remove_file(oci.join("image-config.json")).unwrap();
    std::os::unix::fs::symlink("blobs/sha256/nowhere", oci.join("image-config.json")).unwrap();
    fs::remove_file(oci.join("rootfs.tar.gz")).unwrap();
    fs::write(p.join("amd64/nanoserver-ltsc2025/hello.txt"), b"other\n").unwrap();
    fs::write(p.join("amd64/nanoserver-ltsc2025/notes.md"), b"").unwrap();
    let before = snapshot(&p);

    let o = build(&p, &["--check"]);
    assert_exit(&o, 1);
    let out = stdout(&o);
    assert!(out.contains("same     amd64"), "{out}");
    assert!(out.contains("DIFFERS  arm64v8"), "{out}");
    assert!(out.contains("index.json: different bytes"), "{out}");
    assert!(!out.contains("oci-layout"), "identical bytes: {out}");
    assert!(out.contains("stray: extra"), "{out}");
    assert!(out.contains("rootfs.tar.gz: missing"), "{out}");
    assert!(
        out.contains(&format!(
            "image-config.json: different link target (blobs/sha256/nowhere, a fresh build has {})",
            cfg_target.display()
        )),
        "{out}"
    );
    assert!(
        out.contains("DIFFERS  windows-amd64 nanoserver-ltsc2025"),
        "{out}"
    );
    assert!(out.contains("hello.txt: different bytes"), "{out}");
    assert!(out.contains("notes.md: extra"), "{out}");
    assert!(
        stderr(&o).contains("2 of 3 outputs differ"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        snapshot(&p),
        before,
        "--check changes nothing and leaves no staging"
    );

    let o = build(&p, &["--check", "--json"]);
    assert_exit(&o, 1);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v[0]["identical"], true);
    assert_eq!(v[1]["identical"], false);

    // A rebuild repairs everything (once the foreign file is gone: it is not ours to delete).
    assert_exit(&build(&p, &[]), 2);
    fs::remove_file(p.join("amd64/nanoserver-ltsc2025/notes.md")).unwrap();
    assert_exit(&build(&p, &[]), 0);
    assert_exit(&build(&p, &["--check"]), 0);
}

#[test]
fn compare_compression_reports_the_sizes_of_real_builds() {
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("p");
    write_project(&p, PROJECT);
    let o = build(&p, &["--compare-compression", "--json"]);
    assert_exit(&o, 0);
    assert!(!p.join("amd64/oci").exists(), "nothing written");
    assert_eq!(
        fs::read_dir(p.join("amd64")).unwrap().count(),
        1,
        "no staging left"
    );
    let rows: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 2);

    // The numbers are those of real gzip and zstd builds.
    let o = build(&p, &["--json"]);
    assert_exit(&o, 0);
    let gz: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let zp = t.path().join("z");
    write_project(
        &zp,
        &PROJECT.replace("[image]", "[image]\ncompression = \"zstd\""),
    );
    let o = build(&zp, &["--json"]);
    assert_exit(&o, 0);
    let zs: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    for i in 0..2 {
        let row = &rows[i];
        assert_eq!(row["arch"], gz["images"][i]["arch"]);
        assert_eq!(
            row["uncompressed"],
            gz["images"][i]["layer"]["uncompressedSize"]
        );
        assert_eq!(row["gzip"]["size"], gz["images"][i]["layer"]["size"]);
        assert_eq!(row["gzip"]["level"], 5);
        assert_eq!(row["zstd"]["size"], zs["images"][i]["layer"]["size"]);
        assert_eq!(row["zstd"]["level"], 3);
        assert_eq!(
            zs["images"][i]["layer"]["mediaType"],
            "application/vnd.oci.image.layer.v1.tar+zstd"
        );
    }
    let o = build(&p, &["--compare-compression"]);
    assert_exit(&o, 0);
    let text = stdout(&o);
    assert!(
        text.starts_with("arch") && text.lines().count() == 3,
        "{text}"
    );
}

#[test]
fn windows_variants_get_a_dockerfile_and_the_derived_text() {
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("p");
    write_project(
        &p,
        &format!(
            "{PROJECT}\n[windows]\nvariants = [\"nanoserver-ltsc2025\", \"servercore-ltsc2022\"]\n\
             text = \"greeting.txt\"\noutput = \"win/{{variant}}\"\n"
        ),
    );
    let o = build(&p, &["--arch", "windows-amd64"]);
    assert_exit(&o, 0);
    assert!(!p.join("amd64/oci").exists(), "only Windows selected");
    assert_eq!(stdout(&o).lines().count(), 2);
    let df = fs::read_to_string(p.join("win/servercore-ltsc2022/Dockerfile")).unwrap();
    let lines: Vec<&str> = df.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(
        lines,
        [
            "FROM mcr.microsoft.com/windows/servercore:ltsc2022",
            "COPY hello.txt C:/",
            "CMD [\"cmd\", \"/C\", \"type C:\\\\hello.txt\"]"
        ]
    );
    assert_eq!(
        fs::read(p.join("win/nanoserver-ltsc2025/hello.txt")).unwrap(),
        b"Hi from (windows-amd64)\n"
    );
    // A directory holding anything else is not ours to replace.
    fs::write(p.join("win/nanoserver-ltsc2025/notes.md"), b"mine").unwrap();
    let o = build(&p, &[]);
    assert_exit(&o, 2);
    assert!(stderr(&o).contains("notes.md"), "{}", stderr(&o));
    assert!(!p.join("amd64/oci").exists(), "nothing committed");
}

#[test]
fn build_defaults_to_the_current_directory() {
    let t = tempfile::tempdir().unwrap();
    let p: PathBuf = t.path().join("p");
    write_project(&p, PROJECT);
    let o = ocipack().arg("build").current_dir(&p).output().unwrap();
    assert_exit(&o, 0);
    assert!(p.join("amd64/oci/oci-layout").is_file());
}

/// Every path below `dir` (and `dir` itself) with its mtime and ctime, in nanoseconds.
fn times(dir: &Path) -> Vec<(PathBuf, i128, i128)> {
    use std::os::unix::fs::MetadataExt;
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(p) = stack.pop() {
        let m = fs::symlink_metadata(&p).unwrap();
        out.push((
            p.clone(),
            i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
            i128::from(m.ctime()) * 1_000_000_000 + i128::from(m.ctime_nsec()),
        ));
        if m.is_dir() {
            for e in fs::read_dir(&p).unwrap() {
                stack.push(e.unwrap().path());
            }
        }
    }
    out.sort();
    out
}

/// Issue 10: a build whose outputs already hold the right bytes writes nothing, flushes
/// nothing and touches nothing — every mtime and ctime in the project stays as it was, the
/// project directory's included (no staging directory was created and removed) — and says
/// so; `--check` touches nothing either. A changed input rewrites only its own output.
#[test]
fn an_unchanged_build_touches_nothing_and_a_change_rewrites_only_its_output() {
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("p");
    write_windows_project(&p);
    assert_exit(&build(&p, &[]), 0);
    let before = times(&p);
    // Coarse filesystem timestamps must not hide a rewrite.
    std::thread::sleep(std::time::Duration::from_millis(20));

    let o = build(&p, &[]);
    assert_exit(&o, 0);
    let out = stdout(&o);
    assert_eq!(out.matches("unchanged").count(), 3, "{out}");
    assert!(!out.contains("written"), "{out}");
    assert_eq!(times(&p), before, "an unchanged build touched something");
    assert_exit(&build(&p, &["--check"]), 0);
    assert_eq!(times(&p), before, "--check touched something");

    fs::write(p.join("arm64v8/hello"), "hello again\n").unwrap();
    let amd64 = snapshot(&p.join("amd64/oci"));
    let amd64_times: Vec<_> = times(&p.join("amd64/oci"));
    let o = build(&p, &[]);
    assert_exit(&o, 0);
    let out = stdout(&o);
    let line = |arch: &str| {
        out.lines()
            .find(|l| l.starts_with(arch))
            .unwrap_or_default()
            .to_string()
    };
    assert!(line("arm64v8").contains(" written "), "{out}");
    assert!(line("amd64").contains(" unchanged "), "{out}");
    assert_eq!(snapshot(&p.join("amd64/oci")), amd64);
    assert_eq!(times(&p.join("amd64/oci")), amd64_times);
    let o = build(&p, &["--check"]);
    assert_exit(&o, 0);
}

/// Issue 10: a layout on disk whose layer blob was corrupted (same size, same name) is not
/// "unchanged": the build compares bytes, not names, and rewrites it; `--check` reports it.
#[test]
fn a_corrupted_blob_with_the_right_name_is_found_and_rewritten() {
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("p");
    write_project(&p, PROJECT);
    assert_exit(&build(&p, &[]), 0);
    let blobs = p.join("amd64/oci/blobs/sha256");
    let layer = fs::read_dir(&blobs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .max_by_key(|p| fs::metadata(p).unwrap().len())
        .unwrap();
    let good = fs::read(&layer).unwrap();
    let mut bad = good.clone();
    let n = bad.len();
    bad[n - 20] ^= 0x40;
    fs::write(&layer, &bad).unwrap();

    let o = build(&p, &["--check"]);
    assert_exit(&o, 1);
    let name = layer.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        stdout(&o).contains(&format!("{name}: different bytes")),
        "{}",
        stdout(&o)
    );
    assert_exit(&build(&p, &[]), 0);
    assert_eq!(fs::read(&layer).unwrap(), good);
}

/// A SIGINT between two outputs' swaps waits until every output is swapped: a project is
/// committed whole or not at all, never half (before, the handler removed the outputs not
/// yet swapped as soon as the first was in place). The debug-build hook
/// `OCIPACK_TEST_HOOK_BETWEEN_SWAPS` runs after every swap but the last.
#[test]
fn a_signal_between_two_swaps_commits_every_output_or_none() {
    use std::os::unix::process::ExitStatusExt;
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("p");
    write_project(&p, PROJECT);
    assert_exit(&build(&p, &[]), 0);
    let outs = [p.join("amd64/oci"), p.join("arm64v8/oci")];
    let old: Vec<String> = outs.iter().map(|o| index_digest(o)).collect();
    for arch in ["amd64", "arm64v8"] {
        fs::write(p.join(arch).join("hello"), format!("hello again {arch}\n")).unwrap();
    }
    let o = common::run_bounded(
        ocipack().arg("build").arg(&p).env(
            "OCIPACK_TEST_HOOK_BETWEEN_SWAPS",
            "kill -INT $PPID; sleep 1",
        ),
        std::time::Duration::from_secs(60),
    );
    assert!(
        o.status.signal() == Some(2) || o.status.code() == Some(130),
        "want death by SIGINT: {:?}\n{}",
        o.status,
        stderr(&o)
    );
    let new: Vec<String> = outs.iter().map(|o| index_digest(o)).collect();
    assert!(
        new[0] != old[0] && new[1] != old[1],
        "half committed: amd64 {}, arm64v8 {}",
        if new[0] == old[0] { "old" } else { "new" },
        if new[1] == old[1] { "old" } else { "new" },
    );
    for arch in ["amd64", "arm64v8"] {
        let left: Vec<_> = fs::read_dir(p.join(arch))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".ocipack-"))
            .collect();
        assert!(left.is_empty(), "{arch}: left beside the output: {left:?}");
    }
    // The next build finds everything in place.
    let o = build(&p, &["--check"]);
    assert_exit(&o, 0);
}
