//! Many images per project (`[[images]]`), through the CLI: a busybox-shaped project — three
//! variants with busybox's real architecture subsets (docker-library/busybox's
//! `generate-stackbrew-library.sh` output at official-images 37079fb3: glibc has arm32v5 and
//! no arm32v6, musl the reverse, uclibc six architectures) and an unsuffixed entry that
//! takes its layouts `from` them — built whole, in subsets, checked, measured, as one
//! image's index, and reproducibly in two clones; every cross-entry mistake an exit-2 error
//! naming what the user wrote; Windows variant directories without `[windows] text`
//! checked and never written.

use crate::common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::cli::{assert_error, s, stdout, text};
use common::{assert_exit, ok, run, snapshot};

pub(crate) const ALL: [&str; 9] = [
    "amd64", "arm32v5", "arm32v6", "arm32v7", "arm64v8", "i386", "ppc64le", "riscv64", "s390x",
];
pub(crate) const GLIBC: [&str; 8] = [
    "amd64", "arm32v5", "arm32v7", "arm64v8", "i386", "ppc64le", "riscv64", "s390x",
];
pub(crate) const UCLIBC: [&str; 6] = ["amd64", "arm32v5", "arm32v7", "arm64v8", "i386", "riscv64"];
pub(crate) const MUSL: [&str; 8] = [
    "amd64", "arm32v6", "arm32v7", "arm64v8", "i386", "ppc64le", "riscv64", "s390x",
];

fn list(arches: &[&str]) -> String {
    let quoted: Vec<String> = arches.iter().map(|a| format!("\"{a}\"")).collect();
    format!("[{}]", quoted.join(", "))
}

/// The busybox-shaped project file.
fn busybox_toml() -> String {
    format!(
        r#"name = "busybox"
created = "@1700000000"
architectures = {all}
output = "latest/{{image}}/{{arch}}"

[image]
cmd = ["sh"]

[[input]]
rootfs = "rootfs/{{image}}/{{arch}}"

[[images]]
name = "glibc"
tags = ["1.38.0-glibc", "1.38-glibc", "1-glibc", "unstable-glibc", "glibc"]
architectures = {glibc}

[[images]]
name = "uclibc"
tags = ["1.38.0-uclibc", "1.38-uclibc", "1-uclibc", "unstable-uclibc", "uclibc"]
architectures = {uclibc}

[[images]]
name = "musl"
tags = ["1.38.0-musl", "1.38-musl", "1-musl", "unstable-musl", "musl"]
architectures = {musl}

[images.image]
cmd = ["/bin/sh"]

[[images]]
name = "latest"
tags = ["1.38.0", "1.38", "1", "unstable", "latest"]
from = ["glibc", "uclibc", "musl"]
"#,
        all = list(&ALL),
        glibc = list(&GLIBC),
        uclibc = list(&UCLIBC),
        musl = list(&MUSL),
    )
}

/// A busybox-shaped project in `dir`: the project file and, per variant and architecture
/// it builds, a tiny root filesystem naming both (also the project `pull.rs` pushes to a
/// registry and checks with `build --check --against`).
pub(crate) fn busybox_project(dir: &Path) {
    fs::create_dir_all(dir).unwrap();
    fs::write(dir.join("ocipack.toml"), busybox_toml()).unwrap();
    for (variant, arches) in [("glibc", &GLIBC[..]), ("uclibc", &UCLIBC), ("musl", &MUSL)] {
        for a in arches {
            let etc = dir.join(format!("rootfs/{variant}/{a}/etc"));
            fs::create_dir_all(&etc).unwrap();
            fs::write(etc.join("variant"), format!("{variant} {a}\n")).unwrap();
        }
    }
}

/// Replaces `from` (which must occur) with `to` in `dir`'s project file.
fn edit(dir: &Path, from: &str, to: &str) {
    let path = dir.join("ocipack.toml");
    let t = fs::read_to_string(&path).unwrap();
    assert!(t.contains(from), "{from:?} not in the project file");
    fs::write(&path, t.replacen(from, to, 1)).unwrap();
}

/// The line of `needle` in `dir`'s project file.
fn line_of(dir: &Path, needle: &str) -> usize {
    let t = fs::read_to_string(dir.join("ocipack.toml")).unwrap();
    let off = t.find(needle).unwrap_or_else(|| panic!("{needle:?}"));
    t[..off].matches('\n').count() + 1
}

fn build(dir: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["build"];
    args.extend_from_slice(extra);
    args.push(s(dir));
    run(&args)
}

/// The layout directories under `dir/latest`, as `variant/arch`.
fn layouts(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(variants) = fs::read_dir(dir.join("latest")) else {
        return out;
    };
    for v in variants {
        let v = v.unwrap().path();
        for a in fs::read_dir(&v).unwrap() {
            let a = a.unwrap().path();
            if a.join("oci-layout").exists() {
                out.push(format!(
                    "{}/{}",
                    v.file_name().unwrap().to_string_lossy(),
                    a.file_name().unwrap().to_string_lossy()
                ));
            }
        }
    }
    out.sort();
    out
}

fn json(o: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(o)))
}

#[test]
fn the_busybox_shape_builds_every_pair() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("busybox");
    busybox_project(&dir);
    let o = build(&dir, &[]);
    assert_exit(&o, 0);
    let out = stdout(&o);
    // One line per (image, arch) that is built, naming the image; the from entry builds
    // nothing of its own.
    assert_eq!(out.lines().count(), 8 + 6 + 8, "{out}");
    assert!(out.lines().all(|l| l.contains(" written ")), "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("musl arm32v6 ") && l.ends_with("/latest/musl/arm32v6")),
        "{out}"
    );
    let mut want: Vec<String> = Vec::new();
    for (v, arches) in [("glibc", &GLIBC[..]), ("uclibc", &UCLIBC), ("musl", &MUSL)] {
        want.extend(arches.iter().map(|a| format!("{v}/{a}")));
    }
    want.sort();
    assert_eq!(layouts(&dir), want);
    assert!(!dir.join("latest/latest").exists());

    // Each layout is valid, of its architecture, and holds its own variant's tree (GNU tar
    // reads the layer); musl's [images.image] cmd is merged over [image]'s.
    for (v, a) in [
        ("glibc", "s390x"),
        ("uclibc", "riscv64"),
        ("musl", "arm32v6"),
    ] {
        let layout = dir.join(format!("latest/{v}/{a}"));
        let o = run(&["verify", s(&layout)]);
        assert_exit(&o, 0);
        let layer = fs::read_link(layout.join("rootfs.tar.gz"))
            .map(|_| layout.join("rootfs.tar.gz"))
            .unwrap();
        let o = ok(Command::new("tar")
            .arg("-xzOf")
            .arg(&layer)
            .arg("etc/variant"));
        assert_eq!(text(&o.stdout), format!("{v} {a}\n"));
        let config: serde_json::Value =
            serde_json::from_slice(&fs::read(layout.join("image-config.json")).unwrap()).unwrap();
        let cmd = if v == "musl" { "/bin/sh" } else { "sh" };
        assert_eq!(config["config"]["Cmd"], serde_json::json!([cmd]), "{v}");
        let want_platform = ocipack::platform::Platform::from_bashbrew_arch(a).unwrap();
        assert_eq!(
            config["architecture"].as_str(),
            Some(want_platform.architecture.as_str())
        );
    }

    // Built again: nothing changes, every line says so.
    let o = build(&dir, &[]);
    assert_exit(&o, 0);
    assert!(
        stdout(&o).lines().all(|l| l.contains(" unchanged ")),
        "{}",
        stdout(&o)
    );
    let o = build(&dir, &["--check"]);
    assert_exit(&o, 0);
    assert_eq!(stdout(&o).lines().count(), 22);
}

#[test]
fn image_and_arch_select_layouts() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("busybox");
    busybox_project(&dir);
    // The from entry selects the layouts it uses: glibc's, musl's where glibc has none.
    let o = build(
        &dir,
        &["--image", "latest", "--arch", "arm32v6", "--arch", "s390x"],
    );
    assert_exit(&o, 0);
    assert_eq!(layouts(&dir), ["glibc/s390x", "musl/arm32v6"]);
    let labels: Vec<String> = stdout(&o)
        .lines()
        .map(|l| l.split_whitespace().take(2).collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(labels, ["glibc s390x", "musl arm32v6"]);
    // Several --image; a layout two selected images use is built once.
    let o = build(
        &dir,
        &[
            "--image", "uclibc", "--image", "latest", "--image", "uclibc", "--arch", "arm32v5",
        ],
    );
    assert_exit(&o, 0);
    assert_eq!(stdout(&o).lines().count(), 2, "{}", stdout(&o));
    assert_eq!(
        layouts(&dir),
        [
            "glibc/arm32v5",
            "glibc/s390x",
            "musl/arm32v6",
            "uclibc/arm32v5"
        ]
    );
    let o = build(&dir, &["--image", "musl"]);
    assert_exit(&o, 0);
    assert_eq!(
        layouts(&dir)
            .iter()
            .filter(|l| l.starts_with("musl/"))
            .count(),
        8
    );

    // Selections that name nothing the project has.
    let o = build(&dir, &["--image", "busybox"]);
    let e = assert_error(&o, 2);
    assert!(
        e.contains("--image busybox:") && e.contains("glibc, uclibc, musl, latest"),
        "{e}"
    );
    let o = build(&dir, &["--image", "uclibc", "--arch", "s390x"]);
    let e = assert_error(&o, 2);
    assert!(
        e.contains("image uclibc has none of these architectures"),
        "{e}"
    );
    let o = build(&dir, &["--arch", "mips64le"]);
    let e = assert_error(&o, 2);
    assert!(e.contains("--arch mips64le"), "{e}");
}

#[test]
fn check_json_compression_and_index_cover_the_images() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("busybox");
    busybox_project(&dir);
    let o = build(&dir, &["--json"]);
    assert_exit(&o, 0);
    let v = json(&o);
    let rows = v["images"].as_array().unwrap();
    assert_eq!(rows.len(), 22);
    let musl_v6 = rows
        .iter()
        .find(|r| r["image"] == "musl" && r["arch"] == "arm32v6")
        .expect("musl arm32v6 in the JSON");
    assert_eq!(musl_v6["written"], true);

    // --check names the image of a layout that differs.
    let layout = dir.join("latest/musl/amd64");
    fs::remove_file(layout.join("image-config.json")).unwrap();
    let o = build(&dir, &["--check", "--image", "musl", "--arch", "amd64"]);
    assert_exit(&o, 1);
    assert!(
        stdout(&o).starts_with("DIFFERS  musl amd64 "),
        "{}",
        stdout(&o)
    );
    let o = build(&dir, &["--check", "--json", "--image", "glibc"]);
    assert_exit(&o, 0);
    let checks = json(&o);
    assert!(
        checks
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["identical"] == true && c["label"].as_str().unwrap().starts_with("glibc ")),
        "{checks}"
    );
    ok(common::ocipack().args(["build", "--image", "musl", "--arch", "amd64", s(&dir)]));

    // --compare-compression names the image too.
    let o = build(
        &dir,
        &[
            "--compare-compression",
            "--image",
            "uclibc",
            "--arch",
            "i386",
        ],
    );
    assert_exit(&o, 0);
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("layout "), "{lines:?}");
    assert!(lines[1].starts_with("uclibc i386 "), "{lines:?}");
    assert_eq!(lines.len(), 2);

    // --index: one image's architectures; several images need --image.
    let index = t.path().join("index");
    let o = build(&dir, &["--index", s(&index)]);
    let e = assert_error(&o, 2);
    assert!(e.contains("--image NAME") && e.contains("4 images"), "{e}");
    assert!(!index.exists());
    let o = build(&dir, &["--index", s(&index), "--image", "latest", "--json"]);
    assert_exit(&o, 0);
    let v = json(&o);
    let images = v["images"].as_array().unwrap();
    let arches: Vec<&str> = images.iter().map(|i| i["arch"].as_str().unwrap()).collect();
    assert_eq!(arches, ALL);
    // Each manifest is byte for byte the one of the layout the from entry resolves to.
    for i in images {
        let a = i["arch"].as_str().unwrap();
        let variant = if GLIBC.contains(&a) { "glibc" } else { "musl" };
        let own: serde_json::Value = serde_json::from_slice(
            &fs::read(dir.join(format!("latest/{variant}/{a}/index.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(
            i["manifest"]["digest"], own["manifests"][0]["digest"],
            "{a}"
        );
    }
    let o = run(&["verify", s(&index)]);
    assert_exit(&o, 0);
}

#[test]
fn builds_are_reproducible_across_clones() {
    let t = tempfile::tempdir().unwrap();
    let source = t.path().join("source");
    busybox_project(&source);
    let mut snaps = Vec::new();
    for (name, jobs) in [("one", "1"), ("two", "3")] {
        let clone = t.path().join(name);
        let st = Command::new("cp")
            .arg("-a")
            .arg(&source)
            .arg(&clone)
            .status()
            .unwrap();
        assert!(st.success());
        let o = build(&clone, &["-j", jobs]);
        assert_exit(&o, 0);
        snaps.push(snapshot(&clone.join("latest")));
    }
    assert_eq!(snaps[0].len(), snaps[1].len());
    assert!(snaps[0].len() > 22 * 5, "{}", snaps[0].len());
    for (path, a) in &snaps[0] {
        assert_eq!(Some(a), snaps[1].get(path), "{path}");
    }
}

#[test]
fn one_failing_layout_writes_nothing() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("busybox");
    busybox_project(&dir);
    fs::remove_dir_all(dir.join("rootfs/uclibc/riscv64")).unwrap();
    let o = build(&dir, &[]);
    let e = assert_error(&o, 2);
    assert!(e.contains("rootfs/uclibc/riscv64"), "{e}");
    assert!(!dir.join("latest").exists(), "{:?}", layouts(&dir));
}

#[test]
fn mistakes_across_entries_are_errors_naming_what_was_written() {
    let t = tempfile::tempdir().unwrap();
    let base = t.path().join("busybox");
    busybox_project(&base);
    let glibc_arches = format!("architectures = {}", list(&GLIBC));
    // (what is changed, into what, the line the error names (of the changed text), key,
    // what the message must say).
    let cases: Vec<(&str, String, &str, &str, Vec<&str>)> = vec![
        (
            "\"unstable-musl\", \"musl\"",
            "\"unstable-musl\", \"glibc\"".into(),
            "\"unstable-musl\", \"glibc\"",
            "images.tags",
            vec!["glibc is a tag of image musl and of image glibc (line 14)", "bashbrew"],
        ),
        (
            "tags = [\"1.38.0\", \"1.38\", \"1\", \"unstable\", \"latest\"]",
            "tags = [\"1.38.0\", \"1.38\", \"1\", \"unstable\", \"latest\"]\nshared-tags = [\"uclibc\"]"
                .into(),
            "shared-tags = [\"uclibc\"]",
            "images.shared-tags",
            vec!["uclibc is a shared tag of image latest but a tag of image uclibc"],
        ),
        (
            "from = [\"glibc\", \"uclibc\", \"musl\"]",
            "from = [\"glibc\", \"uclibc\", \"musI\"]".into(),
            "from = [",
            "images.from",
            vec!["image latest takes its layouts from \"musI\", which no [[images]] entry"],
        ),
        (
            "name = \"glibc\"",
            "name = \"glibc\"\nfrom = [\"latest\"]".into(),
            "from = [\"latest\"]",
            "images.from",
            vec!["cycle: glibc → latest → glibc"],
        ),
        (
            "from = [\"glibc\", \"uclibc\", \"musl\"]",
            "from = [\"glibc\", \"uclibc\", \"musl\"]\n[[images.input]]\nrootfs = \"r\"".into(),
            "[[images.input]]",
            "images.input",
            vec!["image latest takes its layouts from glibc, uclibc, musl", "builds nothing"],
        ),
        (
            "from = [\"glibc\", \"uclibc\", \"musl\"]",
            "from = [\"glibc\", \"uclibc\"]\narchitectures = [\"amd64\", \"arm32v6\"]".into(),
            "architectures = [\"amd64\", \"arm32v6\"]",
            "images.architectures",
            vec!["image latest lists arm32v6, but none of the images it takes its layouts from (glibc, uclibc) has it"],
        ),
        (
            &glibc_arches,
            glibc_arches.replace("\"s390x\"", "\"mips64le\""),
            "\"mips64le\"",
            "images.architectures",
            vec!["\"mips64le\" is not one of the project's architectures"],
        ),
        (
            "[[images]]\nname = \"glibc\"",
            "[library]\nmaintainers = [\"A <a@b.invalid> (@a)\"]\ngit-repo = \"https://x.invalid/b.git\"\ntags = [\"latest\"]\n\n[[images]]\nname = \"glibc\"".into(),
            "tags = [\"latest\"]",
            "library.tags",
            vec!["this project has [[images]]", "each entry has its own tags"],
        ),
        (
            "name = \"uclibc\"",
            "name = \"uclibc\"\noutput = \"latest/glibc/{arch}\"".into(),
            "output = \"latest/glibc/{arch}\"",
            "images.output",
            vec!["gives latest/glibc/amd64 for both image glibc (line 12) amd64 and image uclibc (line 17) amd64", "use {image}"],
        ),
        (
            "output = \"latest/{image}/{arch}\"",
            "output = \"latest/{arch}\"".into(),
            "output = \"latest/{arch}\"",
            "output",
            vec!["gives latest/amd64 for both image glibc (line 12) amd64 and image uclibc (line 17) amd64"],
        ),
        (
            "name = \"musl\"",
            "name = \"glibc\"".into(),
            "name = \"glibc\"\ntags = [\"1.38.0-musl\"",
            "images.name",
            vec!["glibc is already the name of the [[images]] entry on line 12"],
        ),
    ];
    for (from, to, at, key, needles) in cases {
        let dir = t.path().join("case");
        let _ = fs::remove_dir_all(&dir);
        let st = Command::new("cp")
            .arg("-a")
            .arg(&base)
            .arg(&dir)
            .status()
            .unwrap();
        assert!(st.success());
        edit(&dir, from, &to);
        let line = line_of(&dir, at);
        let o = build(&dir, &[]);
        let e = assert_error(&o, 2);
        let head = format!(
            "ocipack: error: {}:{line}: {key}: ",
            dir.join("ocipack.toml").display()
        );
        assert!(e.starts_with(&head), "{to}: want {head:?}\n{e}");
        for n in needles {
            assert!(e.contains(n), "{to}: want {n:?}\n{e}");
        }
        assert!(
            !dir.join("latest").exists(),
            "{to}: a refused project wrote something"
        );
    }
}

/// Dist branches of several images: the work tree gets nothing, each architecture's
/// branch every image's layout of it (`tests/integration/dist_images.rs` tests them in
/// depth).
#[test]
fn dist_branches_of_several_images_hold_every_layout() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("busybox");
    busybox_project(&dir);
    common::git::git(&dir, &["init", "-q"], None);
    let o = build(&dir, &["--commit-branch", "dist-{arch}"]);
    assert_exit(&o, 0);
    assert!(!dir.join("latest").exists());
    let refs = common::git::git(&dir, &["for-each-ref", "--format=%(refname)"], None);
    assert!(refs.contains("refs/heads/dist-amd64\n"), "{refs}");
}

/// examples/hello-world without `[windows] text`: the variant directories are the
/// project's own.
fn listed_windows(dir: &Path) -> PathBuf {
    common::cli::hello_project(dir, &["amd64"], &[("text = \"greeting.txt\"\n", "")]);
    dir.join("amd64/nanoserver-ltsc2022/Dockerfile")
}

#[test]
fn windows_directories_without_text_are_checked_never_written() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("hello");
    let dockerfile = listed_windows(&dir);
    // The upstream repository's own files (docker-library/hello-world at a1942f27).
    let upstream = "FROM mcr.microsoft.com/windows/nanoserver:ltsc2022\nCOPY hello.txt C:\nCMD [\"cmd\", \"/C\", \"type C:\\\\hello.txt\"]\n";
    fs::write(&dockerfile, upstream).unwrap();
    fs::write(dir.join("amd64/nanoserver-ltsc2022/notes.txt"), "mine\n").unwrap();
    fs::write(
        dir.join("amd64/nanoserver-ltsc2025/Dockerfile"),
        upstream.replace("ltsc2022", "ltsc2025"),
    )
    .unwrap();
    let before = snapshot(&dir.join("amd64"));
    let o = build(&dir, &["--arch", "windows-amd64"]);
    assert_exit(&o, 0);
    let out = stdout(&o);
    assert!(
        out.contains("windows-amd64 checked   nanoserver-ltsc2022  Dockerfile"),
        "{out}"
    );
    assert_eq!(snapshot(&dir.join("amd64")), before, "nothing written");
    let o = build(&dir, &["--check", "--arch", "windows-amd64"]);
    assert_exit(&o, 0);

    // A FROM naming another variant's base image: an error naming the file and both.
    fs::write(&dockerfile, upstream.replace("ltsc2022", "ltsc2025")).unwrap();
    let before = snapshot(&dir);
    for extra in [&[][..], &["--check"][..]] {
        let mut args = extra.to_vec();
        args.extend(["--arch", "windows-amd64"]);
        let o = build(&dir, &args);
        let e = assert_error(&o, 2);
        assert!(
            e.contains("amd64/nanoserver-ltsc2022/Dockerfile (the Windows variant nanoserver-ltsc2022): says FROM mcr.microsoft.com/windows/nanoserver:ltsc2025, but the variant nanoserver-ltsc2022 is built FROM mcr.microsoft.com/windows/nanoserver:ltsc2022"),
            "{e}"
        );
    }
    // A whole build fails before anything is written, layouts included.
    let o = build(&dir, &[]);
    assert_error(&o, 2);
    assert_eq!(snapshot(&dir), before);

    // A symlinked Dockerfile is not followed, and no Dockerfile is an error too.
    fs::remove_file(&dockerfile).unwrap();
    std::os::unix::fs::symlink("../nanoserver-ltsc2025/Dockerfile", &dockerfile).unwrap();
    let e = assert_error(&build(&dir, &["--arch", "windows-amd64"]), 2);
    assert!(e.contains("nanoserver-ltsc2022/Dockerfile"), "{e}");
    fs::remove_file(&dockerfile).unwrap();
    let e = assert_error(&build(&dir, &["--arch", "windows-amd64"]), 2);
    assert!(e.contains("nanoserver-ltsc2022/Dockerfile"), "{e}");
}

#[test]
fn created_from_git_is_per_image() {
    // created = "git": each layout is dated by the newest commit touching its own inputs,
    // {image} expanded.
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    fs::write(
        dir.join("ocipack.toml"),
        "name = \"p\"\ncreated = \"git\"\narchitectures = [\"amd64\"]\noutput = \"{image}/{arch}\"\n\
         [[input]]\nrootfs = \"rootfs/{image}\"\n\
         [[images]]\nname = \"a\"\ntags = [\"a\"]\n[[images]]\nname = \"b\"\ntags = [\"b\"]\n",
    )
    .unwrap();
    common::git::git(dir, &["init", "-q"], None);
    for (image, date) in [("a", "@1700000000 +0000"), ("b", "@1700001000 +0000")] {
        fs::create_dir_all(dir.join(format!("rootfs/{image}"))).unwrap();
        fs::write(dir.join(format!("rootfs/{image}/f")), image).unwrap();
        common::git::commit_all(dir, date);
    }
    let o = build(dir, &["--json"]);
    assert_exit(&o, 0);
    let v = json(&o);
    let created: Vec<(&str, &str)> = v["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["image"].as_str().unwrap(), i["created"].as_str().unwrap()))
        .collect();
    assert_eq!(
        created,
        [("a", "2023-11-14T22:13:20Z"), ("b", "2023-11-14T22:30:00Z")]
    );
}
