//! `ocipack push DIR REPOSITORY` for projects whose layouts live on dist branches
//! (`[library] commit-branch`, or `push --commit-branch`): each layout is read from the tip
//! of its branch, never from the work tree; busybox's shape (a path per image and
//! architecture) and debian's (the same path on every architecture's branch) are pushed
//! whole to Debian's real `docker-registry`, each tag's index the very bytes `build --index`
//! stores, read back with skopeo. A missing branch, a tip without a layout, a corrupt or
//! hostile tree (a symlink out of the layout, a submodule) are refused before anything is
//! sent; the git directory is left exactly as it was (no staging) after a success, a
//! failure and SIGTERM mid-push, and nothing in the work tree changes. Malformed trees
//! (a name twice, a name holding '/', a path too long) and a tag named as a missing
//! branch are refused as input errors naming the branch.

use crate::common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::cli::{all, s, text};
use common::fake::{Behaviour, Fake};
use common::git::git;
use common::oci::sha256;
use common::{Registry, assert_exit, index_digest, ocipack, push, require_tools, run_bounded};
use serde_json::Value;

const LIMIT: Duration = Duration::from_secs(300);

use common::shapes::{SMALL_BUSYBOX, SMALL_BUSYBOX_LAYOUTS as BUSYBOX_LAYOUTS};

/// debian's shape: every image at one path on each architecture's branch.
const DEBIAN: &str = r#"name = "debian"
created = 2026-08-03T00:00:00Z
architectures = ["amd64", "arm64v8", "i386"]

[[input]]
rootfs = "rootfs/{image}/{arch}"

[library]
maintainers = ["A <a@example.invalid> (@a)"]
git-repo = "https://example.invalid/debian.git"
commit-branch = "dist-{arch}"

[[images]]
name = "bookworm"
tags = ["bookworm", "12"]
output = "bookworm/oci"

[[images]]
name = "bookworm-slim"
tags = ["bookworm-slim", "12-slim"]
output = "bookworm/slim/oci"

[[images]]
name = "trixie"
tags = ["trixie", "13", "latest"]
architectures = ["amd64", "arm64v8"]
output = "trixie/oci"
"#;

const DEBIAN_LAYOUTS: [(&str, &str); 8] = [
    ("bookworm", "amd64"),
    ("bookworm", "arm64v8"),
    ("bookworm", "i386"),
    ("bookworm-slim", "amd64"),
    ("bookworm-slim", "arm64v8"),
    ("bookworm-slim", "i386"),
    ("trixie", "amd64"),
    ("trixie", "arm64v8"),
];

/// A repository at `root` whose directory `sub` holds the project (`toml`, one tree per
/// layout), committed, and built onto its dist branches.
fn built(root: &Path, sub: &str, toml: &str, layouts: &[(&str, &str)]) -> PathBuf {
    let dir = common::shapes::project_repo(root, Path::new(sub), toml, layouts);
    let o = run_bounded(ocipack().args(["build", s(&dir)]), LIMIT);
    assert_exit(&o, 0);
    dir
}

/// Every entry under `dir` (directories too, so that an empty staging directory left
/// behind shows): its type and content (a symlink's target).
fn listing(dir: &Path) -> BTreeMap<String, (char, Vec<u8>)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
            let m = fs::symlink_metadata(&p).unwrap();
            if m.file_type().is_symlink() {
                let t = fs::read_link(&p).unwrap();
                out.insert(rel, ('l', t.to_string_lossy().into_owned().into_bytes()));
            } else if m.is_dir() {
                out.insert(rel, ('d', Vec::new()));
                stack.push(p);
            } else {
                out.insert(rel, ('f', fs::read(&p).unwrap()));
            }
        }
    }
    out
}

/// Asserts that the repository (work tree and git directory) is exactly as `before`, and
/// names any staging left in the git directory.
fn assert_unchanged(repo: &Path, before: &BTreeMap<String, (char, Vec<u8>)>, when: &str) {
    let now = listing(repo);
    let staged: Vec<&String> = now.keys().filter(|k| k.contains("ocipack-push")).collect();
    assert!(staged.is_empty(), "{when}: staging left: {staged:?}");
    let changed: Vec<&String> = now
        .iter()
        .filter(|(k, v)| before.get(*k) != Some(*v))
        .map(|(k, _)| k)
        .chain(before.keys().filter(|k| !now.contains_key(*k)))
        .collect();
    assert!(changed.is_empty(), "{when}: changed: {changed:?}");
}

/// Runs a shell script in `repo` on a scratch index holding `branch`'s tip (outside the
/// repository), then commits that index onto `branch`. The script may call `put MODE TEXT
/// PATH` (a blob of TEXT at PATH) and git with the scratch index.
fn rewrite(repo: &Path, branch: &str, ops: &str) {
    let scratch = repo.parent().unwrap().join("scratch-index");
    let script = format!(
        "set -e\n\
         put() {{ b=$(printf %s \"$2\" | git hash-object -w --stdin); \
         git update-index --add --cacheinfo \"$1,$b,$3\"; }}\n\
         git read-tree {branch}\n{ops}\n\
         t=$(git write-tree)\n\
         c=$(git -c user.name=t -c user.email=t@example.invalid commit-tree -p {branch} -m edit $t)\n\
         git update-ref refs/heads/{branch} $c\nrm -f \"$GIT_INDEX_FILE\"\n"
    );
    let o = Command::new("sh")
        .arg("-c")
        .arg(&script)
        .current_dir(repo)
        .env("GIT_INDEX_FILE", &scratch)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .unwrap();
    assert!(o.status.success(), "{script}: {}", all(&o));
}

/// Runs git in `repo` with `input` on its standard input; its standard output, trimmed.
fn git_with_input(repo: &Path, args: &[&str], input: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut c = Command::new("git")
        .args(args)
        .current_dir(repo)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(input).unwrap();
    let o = c.wait_with_output().unwrap();
    assert!(o.status.success(), "git {args:?}");
    o.stdout.trim_ascii().to_vec()
}

/// Adds `extra` (each a mode, a name and an object id) to the tree `branch`'s tip holds at
/// `dir`, as raw tree entries: a tree git itself would refuse (a name twice, a name with
/// '/' in it), which only `hash-object --literally` writes; the trees above it are
/// rewritten to match, and the result committed onto `branch`.
fn graft(repo: &Path, branch: &str, dir: &str, extra: &[(&str, &str, &str)]) {
    let raw_oid = |hex: &str| -> Vec<u8> {
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect()
    };
    let tip = git(repo, &["rev-parse", branch], None).trim().to_string();
    let write = |bytes: &[u8]| -> String {
        let oid = git_with_input(
            repo,
            &["hash-object", "-t", "tree", "-w", "--literally", "--stdin"],
            bytes,
        );
        String::from_utf8(oid).unwrap()
    };
    let tree_bytes = |spec: &str| -> Vec<u8> {
        let oid = git(repo, &["rev-parse", spec], None).trim().to_string();
        git_with_input(repo, &["cat-file", "tree", &oid], b"")
    };
    let mut bytes = tree_bytes(&format!("{tip}:{dir}"));
    for (mode, name, oid) in extra {
        bytes.extend_from_slice(format!("{mode} {name}\0").as_bytes());
        bytes.extend_from_slice(&raw_oid(oid));
    }
    let mut oid = write(&bytes);
    let mut parts: Vec<&str> = dir.split('/').collect();
    while let Some(name) = parts.pop() {
        let parent = parts.join("/");
        let mut bytes = tree_bytes(&format!("{tip}:{parent}"));
        // The entry `40000 NAME\0` is followed by its 20-byte id, which is replaced.
        let key = format!("40000 {name}\0");
        let at = bytes
            .windows(key.len())
            .position(|w| w == key.as_bytes())
            .unwrap()
            + key.len();
        bytes.splice(at..at + 20, raw_oid(&oid));
        oid = write(&bytes);
    }
    let commit = git(
        repo,
        &["commit-tree", "-p", &tip, "-m", "graft", &oid],
        Some("@1785000000 +0000"),
    );
    git(
        repo,
        &["update-ref", &format!("refs/heads/{branch}"), commit.trim()],
        None,
    );
}

/// The raw manifest `reference` resolves to, through skopeo; `None` if it does not.
fn raw(reference: &str) -> Option<Vec<u8>> {
    let o = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{reference}"))
        .output()
        .unwrap();
    o.status.success().then_some(o.stdout)
}

/// The image index `build --index` stores for `image` (its bytes, from the layout it
/// writes at `out`).
fn built_index(p: &Path, image: &str, out: &Path) -> Vec<u8> {
    let o = run_bounded(
        ocipack()
            .args(["build", "--index"])
            .arg(out)
            .args(["--image", image, s(p)]),
        LIMIT,
    );
    assert_exit(&o, 0);
    let digest = index_digest(out);
    let hex = digest.strip_prefix("sha256:").unwrap();
    fs::read(out.join("blobs/sha256").join(hex)).unwrap()
}

/// `(digest, tags)` per line a project push printed.
fn printed(o: &Output) -> Vec<(String, Vec<String>)> {
    text(&o.stdout)
        .lines()
        .map(|l| {
            let mut f = l.split(' ');
            let d = f.next().unwrap().to_string();
            (d, f.map(String::from).collect())
        })
        .collect()
}

/// Pushes `p` to a fresh repository of `reg` and checks that each image's tags serve the
/// index `build --index` stores for it, byte for byte.
fn assert_pushed_as_built(
    reg: &Registry,
    repo_name: &str,
    p: &Path,
    images: &[(&str, &[&str])],
    extra: &[&str],
    scratch: &Path,
) {
    let repo = format!("{}/{repo_name}", reg.host());
    let mut args = vec![s(p), repo.as_str()];
    args.extend(extra);
    let o = push(&args);
    assert_exit(&o, 0);
    let lines = printed(&o);
    assert_eq!(lines.len(), images.len(), "{}", all(&o));
    for ((image, tags), (digest, printed_tags)) in images.iter().zip(&lines) {
        assert_eq!(printed_tags, tags, "{image}: {}", all(&o));
        let want = built_index(
            p,
            image,
            &scratch.join(format!("{}-{image}", repo_name.replace('/', "-"))),
        );
        assert_eq!(sha256(&want), *digest, "{image}: the printed digest");
        for tag in *tags {
            let got = raw(&format!("{repo}:{tag}")).unwrap_or_else(|| panic!("{tag} missing"));
            assert_eq!(got, want, "{image} {tag}: the index build --index stores");
        }
    }
}

#[test]
fn a_busybox_shaped_project_is_pushed_from_its_dist_branches() {
    if !require_tools(&["docker-registry", "skopeo"]) {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let repo = t.path().join("repo");
    let p = built(&repo, "busybox", SMALL_BUSYBOX, &BUSYBOX_LAYOUTS);
    // A layout in the work tree is not what is published: push never reads it.
    fs::create_dir_all(p.join("latest/glibc/amd64")).unwrap();
    fs::write(p.join("latest/glibc/amd64/index.json"), "not a layout").unwrap();
    let before = listing(&repo);

    let reg = Registry::start();
    let images: [(&str, &[&str]); 3] = [
        ("glibc", &["1-glibc", "glibc"]),
        ("musl", &["1-musl", "musl"]),
        ("latest", &["1", "latest"]),
    ];
    let scratch = t.path().join("indexes");
    fs::create_dir(&scratch).unwrap();
    assert_pushed_as_built(&reg, "library/busybox", &p, &images, &[], &scratch);
    assert_unchanged(&repo, &before, "after a push");
    // Each layout once: 6 manifests by digest, then 6 tags.
    assert_eq!(
        reg.requests("PUT", "/v2/library/busybox/manifests/sha256:"),
        6,
        "{}",
        reg.log()
    );
    // `latest` lists musl's arm32v6 beside glibc's layouts, in bashbrew's order.
    let index: Value =
        serde_json::from_slice(&raw(&format!("{}/library/busybox:latest", reg.host())).unwrap())
            .unwrap();
    let platforms: Vec<String> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| common::platform_string(&m["platform"]))
        .collect();
    assert_eq!(
        platforms,
        ["linux/amd64", "linux/arm/v5", "linux/arm/v6", "linux/s390x"]
    );

    // --commit-branch gives the pattern on the command line, as build's does.
    let o = push(&[
        s(&p),
        &format!("{}/flag/busybox", reg.host()),
        "--commit-branch",
        "dist-{arch}",
        "--image",
        "musl",
    ]);
    assert_exit(&o, 0);
    let o = push(&[
        s(&p),
        &format!("{}/other/busybox", reg.host()),
        "--commit-branch",
        "other-{arch}",
        "--image",
        "glibc",
        "--arch",
        "amd64",
    ]);
    assert_exit(&o, 2);
    assert!(
        all(&o).contains(
            "glibc amd64 (busybox/latest/glibc/amd64 on branch other-amd64, which does not exist)"
        ),
        "{}",
        all(&o)
    );
    assert!(!all(&o).contains("checkout"), "{}", all(&o));

    // REPOSITORY:TAG: one image's layouts from the branches.
    let o = push(&[
        s(&p),
        &format!("{}/one/busybox:x", reg.host()),
        "--image",
        "latest",
    ]);
    assert_exit(&o, 0);
    let want = built_index(&p, "latest", &scratch.join("one"));
    assert_eq!(raw(&format!("{}/one/busybox:x", reg.host())).unwrap(), want);
    assert_unchanged(&repo, &before, "after every push");
}

#[test]
fn a_debian_shaped_project_pushes_one_index_of_every_architecture_per_tag() {
    if !require_tools(&["docker-registry", "skopeo"]) {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let repo = t.path().join("repo");
    let p = built(&repo, "debian", DEBIAN, &DEBIAN_LAYOUTS);
    // No single checkout holds these layouts: each branch has bookworm/oci.
    assert!(!p.join("bookworm").exists());
    let before = listing(&repo);
    let reg = Registry::start();
    let images: [(&str, &[&str]); 3] = [
        ("bookworm", &["bookworm", "12"]),
        ("bookworm-slim", &["bookworm-slim", "12-slim"]),
        ("trixie", &["trixie", "13", "latest"]),
    ];
    let scratch = t.path().join("indexes");
    fs::create_dir(&scratch).unwrap();
    assert_pushed_as_built(&reg, "library/debian", &p, &images, &[], &scratch);
    for (tag, arches) in [
        ("bookworm", &["amd64", "arm64", "386"][..]),
        ("12-slim", &["amd64", "arm64", "386"][..]),
        ("latest", &["amd64", "arm64"][..]),
    ] {
        let index: Value =
            serde_json::from_slice(&raw(&format!("{}/library/debian:{tag}", reg.host())).unwrap())
                .unwrap();
        let got: Vec<&str> = index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["platform"]["architecture"].as_str().unwrap())
            .collect();
        assert_eq!(got, arches, "{tag}");
    }
    // skopeo reads each architecture's image of the index.
    for arch in ["amd64", "arm64", "386"] {
        let o = common::skopeo(&[
            "inspect",
            "--tls-verify=false",
            "--override-os",
            "linux",
            "--override-arch",
            arch,
            &format!("docker://{}/library/debian:bookworm-slim", reg.host()),
        ]);
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["Architecture"], arch);
    }
    assert_unchanged(&repo, &before, "after a push");
}

#[test]
fn missing_and_hostile_branch_layouts_are_refused_before_anything_is_sent() {
    let t = tempfile::tempdir().unwrap();
    let repo = t.path().join("repo");
    let p = built(&repo, "busybox", SMALL_BUSYBOX, &BUSYBOX_LAYOUTS);
    let tips: Vec<(String, String)> = ["amd64", "arm32v5", "arm32v6", "s390x"]
        .iter()
        .map(|a| {
            let b = format!("dist-{a}");
            let tip = git(&repo, &["rev-parse", &b], None).trim().to_string();
            (b, tip)
        })
        .collect();
    let restore = || {
        git(
            &repo,
            &["update-ref", "-d", "refs/tags/refs/heads/dist-s390x"],
            None,
        );
        for (b, tip) in &tips {
            git(
                &repo,
                &["update-ref", &format!("refs/heads/{b}"), tip],
                None,
            );
        }
    };
    // Each case: what to do to the branches, and what the error must say.
    type Case<'a> = (&'a str, Box<dyn Fn() + 'a>, i32, String);
    let at = |spec: &str| git(&repo, &["rev-parse", spec], None).trim().to_string();
    let musl = "busybox/latest/musl/amd64";
    let blobs_tree = at(&format!("dist-amd64:{musl}/blobs"));
    let layout_blob = at(&format!("dist-amd64:{musl}/oci-layout"));
    let long_path = vec!["d".repeat(200); 22].join("/");
    let cases: Vec<Case> = vec![
        (
            // `git rev-parse refs/heads/dist-s390x` would take this tag for the branch.
            "a missing branch, and a tag named as it",
            Box::new(|| {
                git(&repo, &["update-ref", "-d", "refs/heads/dist-s390x"], None);
                git(&repo, &["tag", "refs/heads/dist-s390x", &tips[3].1], None);
            }),
            2,
            "glibc s390x (busybox/latest/glibc/s390x on branch dist-s390x, which does not \
             exist)"
                .into(),
        ),
        (
            "a file and a directory of the same name",
            Box::new(|| {
                graft(
                    &repo,
                    "dist-amd64",
                    musl,
                    &[("40000", "oci-layout", &blobs_tree)],
                )
            }),
            2,
            "dist-amd64:busybox/latest/musl/amd64/oci-layout: is listed twice in its tree".into(),
        ),
        (
            "a file listed twice",
            Box::new(|| {
                graft(
                    &repo,
                    "dist-amd64",
                    musl,
                    &[("100644", "index.json", &layout_blob)],
                )
            }),
            2,
            "dist-amd64:busybox/latest/musl/amd64/index.json: is listed twice in its tree".into(),
        ),
        (
            "a name holding '/'",
            Box::new(|| {
                graft(
                    &repo,
                    "dist-amd64",
                    musl,
                    &[("100644", "x/y", &layout_blob)],
                )
            }),
            2,
            "dist-amd64:busybox/latest/musl/amd64/x/y: is not a plain path".into(),
        ),
        (
            "a path longer than any layout's",
            Box::new(|| {
                rewrite(
                    &repo,
                    "dist-amd64",
                    &format!("put 100644 x {musl}/{long_path}/f"),
                )
            }),
            2,
            "dist-amd64:busybox/latest/musl/amd64: holds a path longer than 4096 bytes".into(),
        ),
        (
            "a missing branch",
            Box::new(|| {
                git(&repo, &["update-ref", "-d", "refs/heads/dist-s390x"], None).truncate(0)
            }),
            2,
            "glibc s390x (busybox/latest/glibc/s390x on branch dist-s390x, which does not \
             exist), musl s390x (busybox/latest/musl/s390x on branch dist-s390x, which does \
             not exist); `ocipack build` commits them to their branches"
                .into(),
        ),
        (
            "a tip without one layout",
            Box::new(|| {
                rewrite(
                    &repo,
                    "dist-amd64",
                    "git rm -r -q --cached busybox/latest/musl/amd64",
                )
            }),
            2,
            "no layout for 1 of the project's layouts: musl amd64 (busybox/latest/musl/amd64 \
             on branch dist-amd64, whose tip "
                .into(),
        ),
        (
            "a corrupt layout, read after five others were copied",
            Box::new(|| {
                rewrite(
                    &repo,
                    "dist-s390x",
                    "put 100644 '{}' busybox/latest/musl/s390x/index.json",
                )
            }),
            2,
            "layout dist-s390x:busybox/latest/musl/s390x: is not a valid layout".into(),
        ),
        (
            "a symlink out of the layout",
            Box::new(|| {
                rewrite(
                    &repo,
                    "dist-arm32v6",
                    "put 120000 ../../../../ocipack.toml busybox/latest/musl/arm32v6/escape",
                )
            }),
            2,
            "dist-arm32v6:busybox/latest/musl/arm32v6/escape: is a symlink to \
             \"../../../../ocipack.toml\", which leads out of the layout"
                .into(),
        ),
        (
            "an absolute symlink",
            Box::new(|| {
                rewrite(
                    &repo,
                    "dist-arm32v6",
                    "put 120000 /etc/passwd busybox/latest/musl/arm32v6/blobs/abs",
                )
            }),
            2,
            "which leaves the layout".into(),
        ),
        (
            "a submodule",
            Box::new(|| {
                rewrite(
                    &repo,
                    "dist-arm32v5",
                    "git update-index --add --cacheinfo \"160000,$(git rev-parse master),busybox/latest/glibc/arm32v5/sub\"",
                )
            }),
            2,
            "dist-arm32v5:busybox/latest/glibc/arm32v5/sub: is a submodule (a commit), which \
             a layout cannot hold"
                .into(),
        ),
    ];
    for (what, break_it, code, want) in &cases {
        restore();
        break_it();
        let before = listing(&repo);
        let fake = Fake::start(Behaviour::default());
        let o = push(&[s(&p), &format!("127.0.0.1:{}/busybox", fake.port)]);
        assert_exit(&o, *code);
        assert!(all(&o).contains(want.as_str()), "{what}: {}", all(&o));
        assert!(fake.requests().is_empty(), "{what}: something was sent");
        assert_unchanged(&repo, &before, what);
    }
}

#[test]
fn sigterm_mid_push_leaves_no_staging_in_the_git_directory() {
    let t = tempfile::tempdir().unwrap();
    let repo = t.path().join("repo");
    let p = built(&repo, "busybox", SMALL_BUSYBOX, &BUSYBOX_LAYOUTS);
    let before = listing(&repo);
    let fake = Fake::start(Behaviour::default());
    // Every layout copied and verified, the push about to send: SIGTERM.
    let seen = t.path().join("staged");
    let hook = format!(
        "ls -a '{}' > '{}'; kill -TERM $PPID",
        repo.join(".git").display(),
        seen.display()
    );
    let mut c = ocipack();
    common::default_signals(&mut c);
    c.env("OCIPACK_TEST_HOOK_AFTER_VERIFY", &hook)
        .env("DOCKER_CONFIG", t.path())
        .args(["push", s(&p), &format!("127.0.0.1:{}/busybox", fake.port)]);
    let o = run_bounded(&mut c, LIMIT);
    assert_eq!(o.status.signal(), Some(libc::SIGTERM), "{}", all(&o));
    // The staging existed at that moment, and is gone.
    let at_hook = fs::read_to_string(&seen).unwrap();
    assert!(
        at_hook
            .lines()
            .any(|l| l.starts_with(".ocipack-push.ocipack-")),
        "{at_hook}"
    );
    assert_unchanged(&repo, &before, "after SIGTERM");
}
