//! Incremental builds (`project::cache`): a build reuses every output whose inputs, settings
//! and versions are unchanged and whose files still hold what was recorded, touching
//! nothing of it (inodes and mtimes stay) and never running the encoder for it (the debug
//! build's `OCIPACK_TEST_LOG_ENCODINGS` records every layer encoded); a changed input or
//! setting rebuilds exactly what it changes; `--check` never uses a record; a damaged or
//! foreign record, a tampered blob, `index.json`, mode or an extra file only cost a build,
//! never a wrong layout; `--no-cache` reads and writes nothing.

use crate::common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::cli::{all, s, text};
use common::git::{commit_all, git};
use common::shapes::{BUSYBOX_VARIANTS, busybox};
use common::{assert_exit, ocipack, run_bounded, xdg_cache};

const LIMIT: Duration = Duration::from_secs(300);
const DATE: &str = "@1700000000 +0000";

/// Every layout of the busybox shape, as `variant/arch`.
fn all_layouts() -> Vec<String> {
    let mut out = Vec::new();
    for (v, arches) in BUSYBOX_VARIANTS {
        for a in arches {
            out.push(format!("{v}/{a}"));
        }
    }
    out.sort();
    out
}

/// Runs `ocipack build ARGS… p` recording each layer encoded; returns the output and the
/// layouts encoded (`variant/arch`, sorted).
fn build(p: &Path, args: &[&str]) -> (std::process::Output, Vec<String>) {
    let log = p.parent().unwrap().join("encoded.log");
    let _ = fs::remove_file(&log);
    let mut c = ocipack();
    c.env("OCIPACK_TEST_LOG_ENCODINGS", &log)
        .arg("build")
        .args(args)
        .arg(p);
    let o = run_bounded(&mut c, LIMIT);
    let mut encoded: Vec<String> = fs::read_to_string(&log)
        .unwrap_or_default()
        .lines()
        .map(|l| {
            // A layout in the work tree (`…/latest/musl/amd64`), or one staged for a dist
            // branch (`…/.git/ocipack/musl.amd64`).
            if let Some(i) = l.rfind("latest/") {
                l[i + "latest/".len()..].to_string()
            } else {
                let i = l.rfind("ocipack/").unwrap_or_else(|| panic!("encoded {l}"));
                l[i + "ocipack/".len()..].replacen('.', "/", 1)
            }
        })
        .collect();
    encoded.sort();
    (o, encoded)
}

/// Per path below `p/latest` (itself included): inode, mtime (ns) and mode.
fn stamps(p: &Path) -> BTreeMap<PathBuf, (u64, i64, u32)> {
    fn walk(dir: &Path, out: &mut BTreeMap<PathBuf, (u64, i64, u32)>) {
        let m = fs::symlink_metadata(dir).unwrap();
        out.insert(
            dir.to_path_buf(),
            (
                m.ino(),
                m.mtime() * 1_000_000_000 + m.mtime_nsec(),
                m.mode(),
            ),
        );
        if m.is_dir() {
            for e in fs::read_dir(dir).unwrap() {
                walk(&e.unwrap().path(), out);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(&p.join("latest"), &mut out);
    out
}

/// The paths whose stamps differ between `a` and `b` (or that only one has), relative to
/// `p/latest`.
fn changed(
    p: &Path,
    a: &BTreeMap<PathBuf, (u64, i64, u32)>,
    b: &BTreeMap<PathBuf, (u64, i64, u32)>,
) -> Vec<String> {
    let base = p.join("latest");
    let mut keys: Vec<&PathBuf> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| {
            k.strip_prefix(&base)
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect()
}

/// A busybox-shaped project in a new git repository, committed.
fn repo_project(t: &Path) -> PathBuf {
    let p = busybox(&t.join("busybox"), "");
    git(&p, &["init", "-q"], None);
    commit_all(&p, DATE);
    p
}

/// The record files of a project in a git repository.
fn records(p: &Path) -> Vec<PathBuf> {
    let dir = p.join(".git/ocipack/cache");
    let mut v: Vec<PathBuf> = fs::read_dir(&dir)
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// The record of the layout built from `rootfs/<variant>/<arch>/busybox`.
fn record_of(p: &Path, layout: &str) -> PathBuf {
    let needle = format!("\"rootfs/{layout}/busybox\"");
    let found: Vec<PathBuf> = records(p)
        .into_iter()
        .filter(|r| fs::read_to_string(r).unwrap().contains(&needle))
        .collect();
    assert_eq!(found.len(), 1, "one record of {layout}");
    found[0].clone()
}

#[test]
fn an_unchanged_build_reuses_everything_and_one_changed_input_rebuilds_its_layout() {
    let t = tempfile::tempdir().unwrap();
    let p = repo_project(t.path());

    let (o, encoded) = build(&p, &[]);
    assert_exit(&o, 0);
    assert_eq!(encoded, all_layouts());
    // One record per layout, in the git directory: git sees nothing of them.
    assert_eq!(records(&p).len(), 22);
    assert_eq!(git(&p, &["status", "--porcelain"], None), "?? latest/\n");
    commit_all(&p, DATE);
    let before = stamps(&p);

    // Nothing changed: nothing is encoded, nothing on disk is touched.
    let (o, encoded) = build(&p, &[]);
    assert_exit(&o, 0);
    assert_eq!(encoded, Vec::<String>::new(), "{}", all(&o));
    assert_eq!(text(&o.stdout).lines().count(), 22);
    assert!(
        text(&o.stdout)
            .lines()
            .all(|l| l.split_whitespace().nth(2) == Some("unchanged")),
        "{}",
        all(&o)
    );
    assert_eq!(changed(&p, &before, &stamps(&p)), Vec::<String>::new());
    assert_eq!(git(&p, &["status", "--porcelain"], None), "");

    // --json says which layouts were reused.
    let o = run_bounded(ocipack().args(["build", "--json", s(&p)]), LIMIT);
    assert_exit(&o, 0);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let layouts = v["images"].as_array().unwrap();
    assert_eq!(layouts.len(), 22);
    assert!(layouts.iter().all(|l| l["reused"] == true), "{v}");

    // An input touched but not changed: its bytes decide, not its time.
    let input = p.join("rootfs/musl/amd64/busybox");
    let f = fs::File::options().append(true).open(&input).unwrap();
    f.set_modified(std::time::SystemTime::now()).unwrap();
    drop(f);
    let (o, encoded) = build(&p, &[]);
    assert_exit(&o, 0);
    assert_eq!(encoded, Vec::<String>::new());

    // One input changed: its layout, and only it, is encoded and replaced.
    fs::write(&input, "busybox musl amd64, patched\n").unwrap();
    let (o, encoded) = build(&p, &[]);
    assert_exit(&o, 0);
    assert_eq!(encoded, ["musl/amd64"]);
    let after = stamps(&p);
    let diff = changed(&p, &before, &after);
    assert!(!diff.is_empty());
    // (The parent directory `musl` changes too: the new layout was swapped into it.)
    assert!(
        diff.iter()
            .all(|d| d == "musl" || d.starts_with("musl/amd64")),
        "outside musl/amd64: {diff:?}"
    );
    // ... and the next build reuses it again.
    let (o, encoded) = build(&p, &[]);
    assert_exit(&o, 0);
    assert_eq!(encoded, Vec::<String>::new());
    assert_eq!(changed(&p, &after, &stamps(&p)), Vec::<String>::new());

    // --check never uses a record: it builds every layout and compares.
    let (o, encoded) = build(&p, &["--check"]);
    assert_exit(&o, 0);
    assert_eq!(encoded, all_layouts());

    // A selection builds (or reuses) only what it selects, and records stay for the rest.
    fs::write(&input, "busybox musl amd64, patched twice\n").unwrap();
    let (o, encoded) = build(&p, &["--image", "glibc"]);
    assert_exit(&o, 0);
    assert_eq!(encoded, Vec::<String>::new());
    let (o, encoded) = build(&p, &["--arch", "amd64"]);
    assert_exit(&o, 0);
    assert_eq!(encoded, ["musl/amd64"]);
}

#[test]
fn a_setting_change_rebuilds_the_layouts_it_applies_to() {
    let t = tempfile::tempdir().unwrap();
    let p = repo_project(t.path());
    let (o, _) = build(&p, &[]);
    assert_exit(&o, 0);
    let toml = p.join("ocipack.toml");
    let original = fs::read_to_string(&toml).unwrap();

    // Only the level: every layout is encoded again.
    fs::write(&toml, original.replace("[image]\n", "[image]\nlevel = 9\n")).unwrap();
    let (o, encoded) = build(&p, &[]);
    assert_exit(&o, 0);
    assert_eq!(encoded, all_layouts());
    let (o, encoded) = build(&p, &[]);
    assert_exit(&o, 0);
    assert_eq!(encoded, Vec::<String>::new());

    // A config setting of one entry (the level kept): its six layouts, nothing else.
    let leveled = original.replace("[image]\n", "[image]\nlevel = 9\n");
    let uclibc = "architectures = [\"amd64\", \"arm32v5\", \"arm32v7\", \"arm64v8\", \"i386\", \"riscv64\"]\n";
    assert!(leveled.contains(uclibc));
    fs::write(
        &toml,
        leveled.replace(
            uclibc,
            &format!("{uclibc}\n[images.image]\ncmd = [\"/bin/sh\"]\n"),
        ),
    )
    .unwrap();
    let before = stamps(&p);
    let (o, encoded) = build(&p, &[]);
    assert_exit(&o, 0);
    let uclibc_layouts: Vec<String> = all_layouts()
        .into_iter()
        .filter(|l| l.starts_with("uclibc/"))
        .collect();
    assert_eq!(encoded, uclibc_layouts);
    let diff = changed(&p, &before, &stamps(&p));
    assert!(
        !diff.is_empty() && diff.iter().all(|d| d.starts_with("uclibc")),
        "{diff:?}"
    );
}

#[test]
fn no_tampered_layout_or_record_is_trusted() {
    let t = tempfile::tempdir().unwrap();
    let p = repo_project(t.path());
    let (o, _) = build(&p, &[]);
    assert_exit(&o, 0);
    let check_same = |p: &Path| {
        let o = run_bounded(ocipack().args(["build", "--check", s(p)]), LIMIT);
        assert_exit(&o, 0);
    };

    // A blob changed in place, same size: found by its digest, rebuilt and repaired.
    let layout = p.join("latest/glibc/i386");
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    let manifest_digest = index["manifests"][0]["digest"].as_str().unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(
        &fs::read(layout.join("blobs/sha256").join(&manifest_digest[7..])).unwrap(),
    )
    .unwrap();
    let layer = layout
        .join("blobs/sha256")
        .join(&manifest["layers"][0]["digest"].as_str().unwrap()[7..]);
    let mut bytes = fs::read(&layer).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0x40;
    fs::write(&layer, &bytes).unwrap();
    let (o, encoded) = build(&p, &[]);
    assert_exit(&o, 0);
    assert_eq!(encoded, ["glibc/i386"]);
    check_same(&p);

    // index.json with one byte more; a blob's mode; an extra file: each rebuilt.
    let musl = p.join("latest/musl/s390x/index.json");
    let mut b = fs::read(&musl).unwrap();
    b.push(b'\n');
    fs::write(&musl, b).unwrap();
    let blob = fs::read_dir(p.join("latest/uclibc/i386/blobs/sha256"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    fs::set_permissions(&blob, fs::Permissions::from_mode(0o600)).unwrap();
    fs::write(p.join("latest/glibc/s390x/extra"), "").unwrap();
    let (o, encoded) = build(&p, &[]);
    assert_exit(&o, 0);
    assert_eq!(encoded, ["glibc/s390x", "musl/s390x", "uclibc/i386"]);
    assert!(!p.join("latest/glibc/s390x/extra").exists());
    check_same(&p);
    let (_, encoded) = build(&p, &[]);
    assert_eq!(encoded, Vec::<String>::new());

    // Records: garbage, a byte changed without its check, another layout's record, the
    // record of the same layout under another key: each only costs a build.
    fs::write(record_of(&p, "musl/amd64"), "{}").unwrap();
    let r = record_of(&p, "glibc/amd64");
    let text_of = fs::read_to_string(&r).unwrap();
    let edited = text_of.replacen("\"uncompressedSize\":", "\"uncompressedSize\":1", 1);
    assert_ne!(edited, text_of);
    fs::write(&r, edited).unwrap();
    let riscv = record_of(&p, "musl/riscv64");
    fs::copy(record_of(&p, "glibc/riscv64"), &riscv).unwrap();
    let (o, encoded) = build(&p, &[]);
    assert_exit(&o, 0);
    assert_eq!(
        encoded,
        ["glibc/amd64", "musl/amd64", "musl/riscv64"],
        "{}",
        all(&o)
    );
    check_same(&p);

    // A layout replaced by another layout's files (both valid, both recorded): its record
    // names other files, so it is rebuilt.
    let arm = p.join("latest/musl/arm64v8");
    fs::remove_dir_all(&arm).unwrap();
    let st = std::process::Command::new("cp")
        .arg("-a")
        .arg(p.join("latest/glibc/arm64v8"))
        .arg(&arm)
        .status()
        .unwrap();
    assert!(st.success());
    let (o, encoded) = build(&p, &[]);
    assert_exit(&o, 0);
    assert_eq!(encoded, ["musl/arm64v8"]);
    check_same(&p);

    // --check compares with a fresh build even where a record matches: a changed blob is
    // a difference.
    let mut bytes = fs::read(&layer).unwrap();
    bytes[0] ^= 1;
    fs::write(&layer, &bytes).unwrap();
    let (o, encoded) = build(&p, &["--check"]);
    assert_exit(&o, 1);
    assert_eq!(encoded, all_layouts());
    assert!(all(&o).contains("latest/glibc/i386"), "{}", all(&o));

    // --no-cache: everything is encoded, and no record is read or written.
    let cache = p.join(".git/ocipack/cache");
    fs::remove_dir_all(&cache).unwrap();
    let (o, encoded) = build(&p, &["--no-cache"]);
    assert_exit(&o, 0);
    assert_eq!(encoded, all_layouts());
    assert!(!cache.exists());
    check_same(&p);
}

#[test]
fn outside_a_git_repository_records_go_to_the_xdg_cache_and_nowhere_else() {
    let t = tempfile::tempdir().unwrap();
    let p = busybox(&t.path().join("busybox"), "");
    let xdg = t.path().join("xdg");
    let listing = |dir: &Path| -> Vec<String> {
        let o = std::process::Command::new("find")
            .arg(dir)
            .arg("-printf")
            .arg("%P\n")
            .output()
            .unwrap();
        let mut v: Vec<String> = text(&o.stdout)
            .lines()
            .filter(|l| !l.starts_with("latest"))
            .map(String::from)
            .collect();
        v.sort();
        v
    };
    let before = listing(&p);
    for round in 0..2 {
        let log = t.path().join("enc.log");
        let _ = fs::remove_file(&log);
        let o = run_bounded(
            ocipack()
                .env("XDG_CACHE_HOME", &xdg)
                .env("OCIPACK_TEST_LOG_ENCODINGS", &log)
                .args(["build", s(&p)]),
            LIMIT,
        );
        assert_exit(&o, 0);
        let encoded = fs::read_to_string(&log).unwrap_or_default().lines().count();
        assert_eq!(encoded, if round == 0 { 22 } else { 0 }, "round {round}");
    }
    assert_eq!(
        listing(&p),
        before,
        "nothing but the outputs in the project"
    );
    assert_eq!(fs::read_dir(xdg.join("ocipack")).unwrap().count(), 22);
    // The tests' own default cache holds none of this project's records.
    let _ = xdg_cache();
}

#[test]
fn on_dist_branches_unchanged_layouts_are_reused_and_commits_stay_the_same() {
    let t = tempfile::tempdir().unwrap();
    let p = repo_project(t.path());
    let branch = ["build", "--commit-branch", "dist-{arch}"];
    let tips = |p: &Path| -> Vec<String> {
        common::shapes::BUSYBOX_ARCHES
            .iter()
            .map(|a| {
                git(p, &["rev-parse", &format!("dist-{a}")], None)
                    .trim()
                    .to_string()
            })
            .collect()
    };
    let (o, encoded) = build(&p, &branch[1..]);
    assert_exit(&o, 0);
    assert_eq!(encoded, all_layouts());
    let first = tips(&p);
    assert_eq!(git(&p, &["status", "--porcelain"], None), "");

    // Nothing changed: nothing built, no branch moves.
    let (o, encoded) = build(&p, &branch[1..]);
    assert_exit(&o, 0);
    assert_eq!(encoded, Vec::<String>::new(), "{}", all(&o));
    assert_eq!(tips(&p), first);

    // One input: its layout is built, and only its branch moves.
    fs::write(
        p.join("rootfs/musl/amd64/busybox"),
        "busybox musl amd64, patched\n",
    )
    .unwrap();
    let mut json = branch[1..].to_vec();
    json.push("--json");
    let (o, encoded) = build(&p, &json);
    assert_exit(&o, 0);
    assert_eq!(encoded, ["musl/amd64"]);
    // --json says, per layout committed, whether it was reused: all but the one built.
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let rows = v["branches"].as_array().unwrap();
    assert_eq!(rows.len(), all_layouts().len(), "{v}");
    for r in rows {
        let built = r["image"] == "musl" && r["arch"] == "amd64";
        assert_eq!(r["reused"], !built, "{r}");
    }
    let second = tips(&p);
    assert_ne!(second[0], first[0], "dist-amd64 moved");
    assert_eq!(second[1..], first[1..], "no other branch moved");

    // The same commit without any record: the ids do not depend on the records.
    git(
        &p,
        &["update-ref", "refs/heads/dist-amd64", &first[0]],
        None,
    );
    let (o, encoded) = build(&p, &["--commit-branch", "dist-{arch}", "--no-cache"]);
    assert_exit(&o, 0);
    assert_eq!(encoded.len(), 22);
    assert_eq!(
        tips(&p),
        second,
        "the same commits as the incremental build"
    );

    // A branch moved under the record (its layout changed by hand): rebuilt and repaired.
    let tip = second[0].clone();
    let script = format!(
        "set -e; b=$(printf x | git hash-object -w --stdin); \
         git read-tree --index-output=.git/tmp-index {tip}; \
         GIT_INDEX_FILE=.git/tmp-index git update-index --cacheinfo 100644,$b,latest/glibc/amd64/index.json; \
         t=$(GIT_INDEX_FILE=.git/tmp-index git write-tree); rm .git/tmp-index; \
         c=$(git -c user.name=t -c user.email=t@example.invalid commit-tree -p {tip} -m hand $t); \
         git update-ref refs/heads/dist-amd64 $c"
    );
    let st = std::process::Command::new("sh")
        .arg("-c")
        .arg(&script)
        .current_dir(&p)
        .status()
        .unwrap();
    assert!(st.success());
    let (o, encoded) = build(&p, &branch[1..]);
    assert_exit(&o, 0);
    assert_eq!(encoded, ["glibc/amd64"]);
    let repaired = git(&p, &["rev-parse", "dist-amd64:latest/glibc/amd64"], None);
    let good = git(
        &p,
        &["rev-parse", &format!("{}:latest/glibc/amd64", second[0])],
        None,
    );
    assert_eq!(repaired, good);

    // --check never trusts a record either.
    let (o, encoded) = build(&p, &["--check", "--commit-branch", "dist-{arch}"]);
    assert_exit(&o, 0);
    assert_eq!(encoded.len(), 22);
}

#[test]
fn a_symlinked_record_directory_is_never_written_through() {
    let t = tempfile::tempdir().unwrap();
    let p = repo_project(t.path());
    let elsewhere = t.path().join("elsewhere");
    fs::create_dir(&elsewhere).unwrap();
    fs::create_dir_all(p.join(".git/ocipack")).unwrap();
    std::os::unix::fs::symlink(&elsewhere, p.join(".git/ocipack/cache")).unwrap();
    for _ in 0..2 {
        let (o, encoded) = build(&p, &[]);
        assert_exit(&o, 0);
        // No record: each build builds everything, and nothing lands elsewhere.
        assert_eq!(encoded, all_layouts());
        assert_eq!(fs::read_dir(&elsewhere).unwrap().count(), 0);
    }
    // A record directory that is a file: no record, no error.
    fs::remove_file(p.join(".git/ocipack/cache")).unwrap();
    fs::write(p.join(".git/ocipack/cache"), "").unwrap();
    let (o, encoded) = build(&p, &[]);
    assert_exit(&o, 0);
    assert_eq!(encoded, all_layouts());
}
