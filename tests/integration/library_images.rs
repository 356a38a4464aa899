//! `ocipack library` for projects of many images, compared with the real library files of
//! busybox, debian and ubuntu (`tests/data/official-images/`, copied from official-images):
//! a project of each shape is built onto dist branches in two clones (the same commit ids
//! in both), and its library file must have the real file's structure.
//!
//! "The same structure" is decided by a small reader of bashbrew's RFC 2822 dialect
//! ([`parse`]: comment lines dropped, continuation lines joined) and a normalisation of the
//! values that must differ ([`normalise`]): Maintainers, GitRepo and commit ids (other
//! repositories, other commits), the header's `GitFetch` when it is bashbrew's default
//! `refs/heads/master`, the project's directory in its repository (a prefix of every
//! `Directory`), and ubuntu's dist tags (`refs/tags/dist-jammy-amd64-20260810-de4064a9`, a
//! serial and a commit in the name) against ocipack's branches (`refs/heads/dist-jammy-amd64`).
//! `Architectures` lists and the per-architecture lines of a paragraph are compared in
//! bashbrew's order: bashbrew sorts every `Architectures` list when it parses a file (and
//! keys per-architecture values by name), and busybox's generator prints its unsuffixed
//! entries' lists unsorted (`…, s390x, arm32v6`), while ocipack prints bashbrew's order.

use crate::common;
use crate::common::git;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::cli::text;
use common::{assert_exit, ocipack, repo};
use git::{commit_all, git};

/// bashbrew's architectures, in its order (`sort.Strings` of the names).
const BASHBREW: [&str; 11] = [
    "amd64",
    "arm32v5",
    "arm32v6",
    "arm32v7",
    "arm64v8",
    "i386",
    "mips64le",
    "ppc64le",
    "riscv64",
    "s390x",
    "windows-amd64",
];

/// One paragraph of a library file: its fields in order.
type Para = Vec<(String, String)>;

/// Reads a library file as bashbrew does: comment lines (first non-blank character `#`) are
/// dropped without ending a paragraph, a line starting with white space continues the
/// previous value, blank lines separate paragraphs.
fn parse(file: &str) -> Vec<Para> {
    let mut paras: Vec<Para> = Vec::new();
    let mut cur: Para = Vec::new();
    for line in file.lines() {
        if line.trim_start().starts_with('#') {
            continue;
        }
        if line.trim().is_empty() {
            if !cur.is_empty() {
                paras.push(std::mem::take(&mut cur));
            }
            continue;
        }
        if line.starts_with([' ', '\t']) {
            let last = cur.last_mut().expect("a continuation follows a field");
            last.1 = format!("{} {}", last.1, line.trim());
            continue;
        }
        let (k, v) = line.split_once(':').expect("a field is Key: value");
        cur.push((k.to_string(), v.trim().to_string()));
    }
    if !cur.is_empty() {
        paras.push(cur);
    }
    paras
}

/// `(architecture, field)` for a per-architecture key (`arm32v6-Directory`).
fn per_arch(key: &str) -> Option<(&'static str, &str)> {
    BASHBREW.iter().rev().find_map(|a| {
        let field = key.strip_prefix(a)?.strip_prefix('-')?;
        [
            "GitRepo",
            "GitFetch",
            "GitCommit",
            "Directory",
            "File",
            "Builder",
        ]
        .contains(&field)
        .then_some((*a, field))
    })
}

fn rank(arch: &str) -> usize {
    BASHBREW
        .iter()
        .position(|a| *a == arch)
        .expect("a bashbrew arch")
}

/// The values that must differ replaced (see the module documentation); `prefix` is the
/// project's directory in its repository.
fn normalise(paras: Vec<Para>, prefix: &str) -> Vec<Para> {
    let mut out = Vec::new();
    for (i, para) in paras.into_iter().enumerate() {
        let mut fields: Para = Vec::new();
        for (k, mut v) in para {
            let field = per_arch(&k).map(|(_, f)| f).unwrap_or(k.as_str());
            match field {
                "Maintainers" | "GitRepo" if i == 0 => continue,
                "GitCommit" if i == 0 && k == "GitCommit" => continue,
                "GitFetch" if i == 0 && k == "GitFetch" && v == "refs/heads/master" => continue,
                "GitCommit" => {
                    assert!(
                        v.len() == 40 && v.bytes().all(|b| b.is_ascii_hexdigit()),
                        "{k}: {v}"
                    );
                    v = "<commit>".into();
                }
                "GitFetch" => {
                    if let Some(tag) = v.strip_prefix("refs/tags/") {
                        // dist-<suite>-<arch>-<serial>-<commit8>: drop the last two parts.
                        let mut parts: Vec<&str> = tag.split('-').collect();
                        parts.truncate(parts.len() - 2);
                        v = format!("refs/heads/{}", parts.join("-"));
                    }
                }
                "Directory" => {
                    v = v
                        .strip_prefix(prefix)
                        .unwrap_or_else(|| panic!("{k}: {v} is not under {prefix}"))
                        .to_string();
                }
                "Architectures" => {
                    let mut list: Vec<&str> = v.split(", ").collect();
                    list.sort_by_key(|a| rank(a));
                    v = list.join(", ");
                }
                _ => {}
            }
            fields.push((k, v));
        }
        // Per-architecture lines in bashbrew's order, each architecture's in the order
        // written; the other fields keep their places before them.
        fields.sort_by_key(|(k, _)| per_arch(k).map(|(a, _)| rank(a) + 1).unwrap_or(0));
        out.push(fields);
    }
    out
}

/// Each entry with what it inherits from the header (bashbrew decodes every entry onto a
/// copy of the header), as a map.
fn effective(paras: &[Para]) -> Vec<BTreeMap<String, String>> {
    let header: BTreeMap<String, String> = paras[0].iter().cloned().collect();
    paras[1..]
        .iter()
        .map(|p| {
            let mut m = header.clone();
            m.extend(p.iter().cloned());
            m
        })
        .collect()
}

fn upstream(name: &str) -> String {
    fs::read_to_string(repo().join("tests/data/official-images").join(name)).unwrap()
}

fn quoted(list: &[&str]) -> String {
    list.iter()
        .map(|s| format!("\"{s}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// [`common::shapes::project_repo`] at `root`'s subdirectory `sub` (empty: the root).
fn project_repo(root: &Path, sub: &str, toml: &str, layouts: &[(String, String)]) -> PathBuf {
    common::shapes::project_repo(root, Path::new(sub), toml, layouts)
}

fn ocipack_in(dir: &Path, args: &[&str]) -> Output {
    ocipack()
        .args(args)
        .arg(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .unwrap()
}

/// Clones `origin` twice, builds the project at `sub` onto its dist branches in each (the
/// second with another user configuration, time zone and umask), asserts both made the same
/// commits, and returns the first clone's project directory and its `(branch, tip)` list.
fn build_in_two_clones(origin: &Path, sub: &str) -> (PathBuf, Vec<(String, String)>) {
    let parent = origin.parent().unwrap();
    let mut all = Vec::new();
    for name in ["clone-a", "clone-b"] {
        git(
            parent,
            &["clone", "-q", origin.to_str().unwrap(), name],
            None,
        );
        let clone = parent.join(name);
        let dir = clone.join(sub);
        let mut cmd = ocipack();
        cmd.arg("build").arg(&dir);
        if name == "clone-b" {
            let home = parent.join("home");
            fs::create_dir_all(&home).unwrap();
            fs::write(
                home.join(".gitconfig"),
                "[user]\n\tname = Someone Else\n\temail = else@example.invalid\n\
                 [commit]\n\tgpgSign = true\n",
            )
            .unwrap();
            cmd.env("HOME", &home)
                .env_remove("GIT_CONFIG_GLOBAL")
                .env("TZ", "Asia/Kathmandu")
                .args(["--jobs", "1"]);
        } else {
            cmd.env("GIT_CONFIG_GLOBAL", "/dev/null");
        }
        let o = cmd.output().unwrap();
        assert_exit(&o, 0);
        let refs = git(
            &clone,
            &[
                "for-each-ref",
                "--format=%(refname:short) %(objectname)",
                "refs/heads/dist-*",
            ],
            None,
        );
        let tips: Vec<(String, String)> = refs
            .lines()
            .map(|l| {
                let (b, c) = l.split_once(' ').unwrap();
                (b.to_string(), c.to_string())
            })
            .collect();
        assert!(!tips.is_empty());
        all.push((dir, tips));
    }
    assert_eq!(all[0].1, all[1].1, "the same dist commits in both clones");
    all.swap_remove(0)
}

fn library_of(dir: &Path) -> String {
    let o = ocipack_in(dir, &["library"]);
    assert_exit(&o, 0);
    assert!(o.stderr.is_empty(), "{}", text(&o.stderr));
    text(&o.stdout)
}

/// The copies are the files they claim to be: git's blob ids as recorded in the README.
#[test]
fn the_upstream_copies_have_their_recorded_blob_ids() {
    let readme = upstream("README.md");
    for name in ["hello-world", "busybox", "debian", "ubuntu"] {
        let id = git(
            &repo(),
            &["hash-object", &format!("tests/data/official-images/{name}")],
            None,
        );
        assert!(
            readme.contains(&format!(
                "| `{name}` | `library/{name}` | `{}` |",
                id.trim()
            )),
            "{name}: {id}"
        );
    }
}

/// busybox's shape: three variants per version with their own architecture subsets, an
/// unsuffixed entry per version taking each architecture from the first variant that has
/// it, every layout of an architecture on one `dist-<arch>` branch, the refs in the header
/// and `<arch>-Directory:` lines in the entries; the project sits in a subdirectory.
#[test]
fn a_busybox_shaped_project_has_busybox_structure() {
    let real = parse(&upstream("busybox"));
    // The variants as the real file has them: (image, version directory, tags, arches).
    let mut layouts = Vec::new();
    let mut toml = String::from(
        "name = \"busybox\"\ncreated = 2026-07-31T00:00:00Z\n\
         architectures = [\"amd64\", \"arm32v5\", \"arm32v6\", \"arm32v7\", \"arm64v8\", \"i386\", \
         \"ppc64le\", \"riscv64\", \"s390x\"]\n\n[image]\ncmd = [\"sh\"]\n\n\
         [[input]]\nrootfs = \"rootfs/{image}/{arch}\"\n\n\
         [library]\nmaintainers = [\"A <a@example.invalid> (@a)\"]\n\
         git-repo = \"https://example.invalid/busybox.git\"\n\
         commit-branch = \"dist-{arch}\"\n",
    );
    for (version, dir, tags) in [
        (
            "1.38",
            "latest",
            ["1.38.0", "1.38", "1", "unstable"].as_slice(),
        ),
        ("1.37", "latest-1", ["1.37.0", "1.37"].as_slice()),
    ] {
        let mut variants = Vec::new();
        for (variant, arches) in [
            (
                "glibc",
                [
                    "amd64", "arm32v5", "arm32v7", "arm64v8", "i386", "ppc64le", "riscv64", "s390x",
                ]
                .as_slice(),
            ),
            (
                "uclibc",
                ["amd64", "arm32v5", "arm32v7", "arm64v8", "i386", "riscv64"].as_slice(),
            ),
            (
                "musl",
                [
                    "amd64", "arm32v6", "arm32v7", "arm64v8", "i386", "ppc64le", "riscv64", "s390x",
                ]
                .as_slice(),
            ),
        ] {
            // A generic tag belongs to the first entry that has it (the 1.38 ones).
            let mut t: Vec<String> = tags.iter().map(|t| format!("{t}-{variant}")).collect();
            if version == "1.38" {
                t.push(variant.to_string());
            }
            let name = format!("{variant}-{version}");
            let t: Vec<&str> = t.iter().map(String::as_str).collect();
            toml.push_str(&format!(
                "\n[[images]]\nname = \"{name}\"\ntags = [{}]\narchitectures = [{}]\n\
                 output = \"{dir}/{variant}/{{arch}}\"\n",
                quoted(&t),
                quoted(arches)
            ));
            layouts.extend(arches.iter().map(|a| (name.clone(), a.to_string())));
            variants.push(name);
        }
        let mut t: Vec<&str> = tags.to_vec();
        if version == "1.38" {
            t.push("latest");
        }
        let v: Vec<&str> = variants.iter().map(String::as_str).collect();
        toml.push_str(&format!(
            "\n[[images]]\nname = \"{version}\"\ntags = [{}]\nfrom = [{}]\n",
            quoted(&t),
            quoted(&v)
        ));
    }
    // The entries in the real file's order: 1.38's variants, its unsuffixed entry, then
    // 1.37's: the order the tables are written in above.
    let t = tempfile::tempdir().unwrap();
    let origin = t.path().join("origin");
    project_repo(&origin, "library/busybox", &toml, &layouts);
    let (dir, tips) = build_in_two_clones(&origin, "library/busybox");
    let arches: Vec<&str> = tips.iter().map(|(b, _)| &b["dist-".len()..]).collect();
    assert_eq!(
        arches,
        [
            "amd64", "arm32v5", "arm32v6", "arm32v7", "arm64v8", "i386", "ppc64le", "riscv64",
            "s390x"
        ]
    );

    let ours = parse(&library_of(&dir));
    assert_eq!(
        normalise(ours.clone(), "library/busybox/"),
        normalise(real, ""),
        "the same paragraphs and fields, in the same order"
    );
    // The refs are the branch tips, in the header.
    for (b, c) in &tips {
        let arch = &b["dist-".len()..];
        assert!(ours[0].contains(&(format!("{arch}-GitCommit"), c.clone())));
        assert!(ours[0].contains(&(format!("{arch}-GitFetch"), format!("refs/heads/{b}"))));
    }

    // Each branch holds every variant's layout of its architecture, and the right one:
    // dist-arm32v6's musl layout is an arm/v6 image of musl's tree; no glibc there.
    let clone = dir.parent().unwrap().parent().unwrap();
    let listing = git(
        clone,
        &[
            "ls-tree",
            "-d",
            "--name-only",
            "dist-arm32v6:library/busybox/latest",
        ],
        None,
    );
    assert_eq!(listing, "musl\n");
    let listing = git(
        clone,
        &[
            "ls-tree",
            "-d",
            "--name-only",
            "dist-amd64:library/busybox/latest-1",
        ],
        None,
    );
    assert_eq!(listing, "glibc\nmusl\nuclibc\n");
    let out = t.path().join("extracted");
    fs::create_dir_all(&out).unwrap();
    let archive = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "git -C '{}' archive --format=tar dist-arm32v6:library/busybox/latest/musl/arm32v6/ | tar -x -C '{}'",
            clone.display(),
            out.display()
        ))
        .status()
        .unwrap();
    assert!(archive.success());
    let o = ocipack()
        .args(["verify", "--profile", "oci-import"])
        .arg(&out)
        .output()
        .unwrap();
    assert_exit(&o, 0);
    assert!(
        text(&o.stdout).contains("valid (linux/arm/v6"),
        "{}",
        text(&o.stdout)
    );
    // Its layer holds musl's arm32v6 tree.
    let json = |p: PathBuf| -> serde_json::Value {
        serde_json::from_slice(&fs::read(p).unwrap()).unwrap()
    };
    let blob = |d: &serde_json::Value| {
        let digest = d["digest"].as_str().unwrap();
        out.join("blobs/sha256").join(&digest["sha256:".len()..])
    };
    let manifest = json(blob(&json(out.join("index.json"))["manifests"][0]));
    let layer = blob(&manifest["layers"][0]);
    let o = std::process::Command::new("tar")
        .args(["-xzO", "--wildcards", "-f"])
        .arg(&layer)
        .arg("*etc/id")
        .output()
        .unwrap();
    assert_exit(&o, 0);
    assert_eq!(text(&o.stdout), "musl-1.38 arm32v6\n");
}

/// debian's shape, the project made from the real file's oci-import entries (a suite and
/// its slim variant as two images, `Directory: bookworm/oci` and `bookworm/slim/oci`: the
/// same path on every architecture's branch): each entry, with what it inherits from the
/// header, equals the real one. debian's eight Dockerfile entries (backports, experimental,
/// rc-buggy) are not ocipack's to print; its Builder/Directory/File per entry and ocipack's
/// Builder/File in the header (every entry is oci-import) mean the same to bashbrew.
#[test]
fn a_debian_shaped_project_has_debians_entries() {
    let real = parse(&upstream("debian"));
    let real_oci: Vec<BTreeMap<String, String>> = effective(&normalise(real, ""))
        .into_iter()
        .filter(|e| e.get("Builder").map(String::as_str) == Some("oci-import"))
        .collect();
    assert_eq!(real_oci.len(), 20);
    let mut toml = String::from(
        "name = \"debian\"\ncreated = 2026-08-03T00:00:00Z\n\
         architectures = [\"amd64\", \"arm32v5\", \"arm32v7\", \"arm64v8\", \"i386\", \"ppc64le\", \
         \"riscv64\", \"s390x\"]\n\n\
         [[input]]\nrootfs = \"rootfs/{image}/{arch}\"\n\n\
         [library]\nmaintainers = [\"A <a@example.invalid> (@a)\"]\n\
         git-repo = \"https://example.invalid/debian.git\"\n\
         commit-branch = \"dist-{arch}\"\n",
    );
    let mut layouts = Vec::new();
    for e in &real_oci {
        let directory = &e["Directory"];
        let name = directory.trim_end_matches("/oci").replace('/', "-");
        let tags: Vec<&str> = e["Tags"].split(", ").collect();
        let arches: Vec<&str> = e["Architectures"].split(", ").collect();
        toml.push_str(&format!(
            "\n[[images]]\nname = \"{name}\"\ntags = [{}]\narchitectures = [{}]\n\
             output = \"{directory}\"\n",
            quoted(&tags),
            quoted(&arches)
        ));
        layouts.extend(arches.iter().map(|a| (name.clone(), a.to_string())));
    }
    let t = tempfile::tempdir().unwrap();
    let origin = t.path().join("origin");
    project_repo(&origin, "", &toml, &layouts);
    let (dir, _) = build_in_two_clones(&origin, "");
    let text = library_of(&dir);
    let ours = parse(&text);
    assert_eq!(effective(&normalise(ours.clone(), "")), real_oci);
    // The forms: refs and Builder/File in the header, one Directory: per entry.
    assert!(
        ours[0].iter().any(|(k, _)| k == "riscv64-GitFetch"),
        "{text}"
    );
    assert!(
        ours[0].contains(&("Builder".into(), "oci-import".into())),
        "{text}"
    );
    for e in &ours[1..] {
        assert!(
            e.iter().any(|(k, _)| k == "Directory")
                && !e
                    .iter()
                    .any(|(k, _)| k.ends_with("-Directory") || k == "Builder"),
            "{e:?}"
        );
    }
}

/// ubuntu's shape: one branch per image and architecture (`dist-{image}-{arch}`), so the
/// refs sit in each entry, with one `Directory: oci` (the same path on every branch).
/// `created = "git"`: each layout dated by the newest commit touching its inputs.
#[test]
fn an_ubuntu_shaped_project_has_ubuntus_structure() {
    let real = parse(&upstream("ubuntu"));
    let arches = ["amd64", "arm32v7", "arm64v8", "ppc64le", "riscv64", "s390x"];
    let mut toml = format!(
        "name = \"ubuntu\"\ncreated = \"git\"\narchitectures = [{}]\noutput = \"oci\"\n\n\
         [[input]]\nrootfs = \"rootfs/{{image}}/{{arch}}\"\n\n\
         [library]\nmaintainers = [\"A <a@example.invalid> (@a)\"]\n\
         git-repo = \"https://example.invalid/ubuntu-base\"\n\
         commit-branch = \"dist-{{image}}-{{arch}}\"\n",
        quoted(&arches)
    );
    let mut layouts = Vec::new();
    for (name, tags) in [
        ("jammy", ["22.04", "jammy-20260810", "jammy"].as_slice()),
        ("noble", ["24.04", "noble-20260810", "noble"].as_slice()),
        (
            "resolute",
            [
                "26.04",
                "resolute-20260811.1",
                "resolute",
                "latest",
                "rolling",
            ]
            .as_slice(),
        ),
        (
            "stonking",
            ["26.10", "stonking-20260705", "stonking", "devel"].as_slice(),
        ),
    ] {
        toml.push_str(&format!(
            "\n[[images]]\nname = \"{name}\"\ntags = [{}]\n",
            quoted(tags)
        ));
        layouts.extend(arches.iter().map(|a| (name.to_string(), a.to_string())));
    }
    let t = tempfile::tempdir().unwrap();
    let origin = t.path().join("origin");
    project_repo(&origin, "", &toml, &layouts);
    let (dir, tips) = build_in_two_clones(&origin, "");
    assert_eq!(tips.len(), 24);
    let text = library_of(&dir);
    let ours = parse(&text);
    assert_eq!(normalise(ours.clone(), ""), normalise(real, ""), "{text}");
    // Each entry names its own branches' tips.
    for (b, c) in &tips {
        assert!(
            text.contains(&format!("-GitFetch: refs/heads/{b}\n")),
            "{text}"
        );
        assert!(text.contains(&format!("-GitCommit: {c}\n")), "{text}");
    }
    assert!(
        !ours[0].iter().any(|(k, _)| per_arch(k).is_some()),
        "{text}"
    );
}

/// With Windows entries beside `[[images]]`, Builder and File stay in each oci-import entry
/// (a Windows entry must never inherit them); in the work tree, each entry whose outputs
/// agree on a commit other than the header's names it once.
#[test]
fn images_beside_windows_entries_keep_builder_in_each_entry() {
    let t = tempfile::tempdir().unwrap();
    let toml = "name = \"hello-world\"\ncreated = 2026-07-31T00:00:00Z\n\
                architectures = [\"amd64\", \"arm64v8\"]\n\n\
                [[input]]\nrootfs = \"rootfs/{image}/{arch}\"\n\n\
                [windows]\nvariants = [\"nanoserver-ltsc2025\"]\n\n\
                [library]\nmaintainers = [\"A <a@example.invalid> (@a)\"]\n\
                git-repo = \"https://example.invalid/hello-world.git\"\n\
                windows-shared-tags = [\"latest\"]\n\n\
                [[images]]\nname = \"linux\"\ntags = [\"linux\"]\nshared-tags = [\"latest\"]\n\
                output = \"{image}/{arch}\"\n\n\
                [[images]]\nname = \"other\"\ntags = [\"other\"]\narchitectures = [\"amd64\"]\n\
                output = \"{image}/{arch}\"\n";
    let layouts: Vec<(String, String)> =
        [("linux", "amd64"), ("linux", "arm64v8"), ("other", "amd64")]
            .iter()
            .map(|(i, a)| (i.to_string(), a.to_string()))
            .collect();
    let root = t.path();
    let win = root.join("amd64/nanoserver-ltsc2025");
    fs::create_dir_all(&win).unwrap();
    fs::write(
        win.join("Dockerfile"),
        "FROM mcr.microsoft.com/windows/nanoserver:ltsc2025\nCMD [\"cmd\"]\n",
    )
    .unwrap();
    let dir = project_repo(root, "", toml, &layouts);
    // The Windows directory is the project's own, committed with the inputs.
    let c0 = git(root, &["rev-parse", "HEAD"], None).trim().to_string();
    assert_exit(&ocipack_in(&dir, &["build"]), 0);
    let c1 = commit_all(root, "@1785000100 +0000");
    fs::write(root.join("rootfs/other/amd64/etc/id"), "other, later\n").unwrap();
    assert_exit(&ocipack_in(&dir, &["build", "--image", "other"]), 0);
    let c2 = commit_all(root, "@1785000200 +0000");
    let expected = format!(
        "# hello-world: written by `ocipack library` from ocipack.toml\n\n\
         Maintainers: A <a@example.invalid> (@a)\n\
         GitRepo: https://example.invalid/hello-world.git\n\
         GitFetch: refs/heads/master\nGitCommit: {c2}\n\n\
         Tags: linux\nSharedTags: latest\nArchitectures: amd64, arm64v8\nGitCommit: {c1}\n\
         Builder: oci-import\nFile: index.json\n\
         amd64-Directory: linux/amd64\narm64v8-Directory: linux/arm64v8\n\n\
         Tags: other\nArchitectures: amd64\nBuilder: oci-import\nFile: index.json\n\
         amd64-Directory: other/amd64\n\n\
         Tags: nanoserver-ltsc2025\nSharedTags: latest\nArchitectures: windows-amd64\n\
         GitCommit: {c0}\nwindows-amd64-Directory: amd64/nanoserver-ltsc2025\n\
         Constraints: nanoserver-ltsc2025\n"
    );
    assert_eq!(library_of(&dir), expected);

    // A variant whose Dockerfile is gone is left out, with a warning naming it.
    fs::remove_file(win.join("Dockerfile")).unwrap();
    let o = ocipack_in(&dir, &["library", "--allow-dirty"]);
    assert_exit(&o, 0);
    let out = text(&o.stdout);
    assert!(!out.contains("nanoserver"), "{out}");
    let e = text(&o.stderr);
    assert!(
        e.contains(
            "Windows variant nanoserver-ltsc2025: amd64/nanoserver-ltsc2025 holds no \
             Dockerfile, so the library file leaves it out"
        ),
        "{e}"
    );
}
