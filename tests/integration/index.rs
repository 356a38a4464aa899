//! `ocipack build --index OUT DIR`: one multi-platform layout (the nested form), its bytes,
//! `verify`'s rules over multi-platform layouts (and hostile ones), and the real clients
//! that must read it: `skopeo copy --all`, `podman run --platform`, `podman load`. (crane
//! is not packaged for Debian and is not run; docs/reference/build.md says what its source
//! does.)

use crate::common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::cli::{all, s, text};
use common::oci::{json_file, sha256};
use common::{
    HELLO_ARCHES, LowercaseDir, Podman, Registry, assert_exit, copy_hello_world,
    hello_index_entries, index_digest, ocipack, platform_string, require_tools, run, run_bounded,
    skopeo, snapshot,
};
use serde_json::{Value, json};

const LIMIT: Duration = Duration::from_secs(300);

/// `ocipack build --index OUT DIR EXTRA`, asserting success.
fn build_index(dir: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["build", "--index", s(out), s(dir)];
    args.extend(extra);
    let o = run(&args);
    assert_exit(&o, 0);
    o
}

/// The image index a multi-platform layout's index.json points to, and its digest.
fn image_index(out: &Path) -> (Value, String) {
    let top = json_file(&out.join("index.json"));
    let d = top["manifests"][0]["digest"].as_str().unwrap().to_string();
    let blob = out.join("blobs/sha256").join(&d[7..]);
    (json_file(&blob), d)
}

#[test]
fn the_layout_is_the_nested_form_with_every_architecture_in_bashbrew_order() {
    let t = tempfile::tempdir().unwrap();
    let p = copy_hello_world(&t.path().join("hw"));
    let out = t.path().join("index");
    let o = build_index(&p, &out, &[]);
    let stdout = text(&o.stdout);
    assert!(stdout.contains("index     written"), "{stdout}");

    // index.json: one descriptor, of an image index, named by [image] ref-name.
    let top = json_file(&out.join("index.json"));
    assert_eq!(top["schemaVersion"], 2);
    assert_eq!(top["mediaType"], "application/vnd.oci.image.index.v1+json");
    let entries = top["manifests"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{top}");
    assert_eq!(
        entries[0]["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    assert_eq!(
        entries[0]["annotations"],
        json!({"org.opencontainers.image.ref.name": "latest"})
    );
    assert!(stdout.contains(entries[0]["digest"].as_str().unwrap()));

    // The image index: canonical JSON, one entry per architecture in bashbrew's order, each
    // the manifest of the committed per-architecture layout, no annotations.
    let (index, digest) = image_index(&out);
    let bytes = fs::read(out.join("blobs/sha256").join(&digest[7..])).unwrap();
    assert_eq!(sha256(&bytes), digest);
    assert_eq!(entries[0]["size"], bytes.len());
    assert_eq!(
        bytes,
        serde_json::to_vec(&index).unwrap(),
        "compact, sorted keys"
    );
    for (arch, m) in hello_index_entries(&index) {
        assert_eq!(
            m["digest"].as_str().unwrap(),
            index_digest(&p.join(arch).join("oci")),
            "{arch}: the same pipeline makes the same manifest"
        );
        let keys: Vec<&String> = m.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["digest", "mediaType", "platform", "size"], "{arch}");
    }

    // Every blob once, regular files; readable names are relative symlinks to them.
    let blobs: Vec<_> = fs::read_dir(out.join("blobs/sha256")).unwrap().collect();
    assert_eq!(
        blobs.len(),
        31,
        "10 layers, configs, manifests and the index"
    );
    for b in blobs {
        assert!(b.unwrap().file_type().unwrap().is_file());
    }
    assert_eq!(
        fs::read_link(out.join("image-index.json")).unwrap(),
        PathBuf::from(format!("blobs/sha256/{}", &digest[7..]))
    );
    for (arch, _) in HELLO_ARCHES {
        for name in ["image-manifest.json", "image-config.json", "rootfs.tar.gz"] {
            let link = fs::read_link(out.join(arch).join(name)).unwrap();
            assert!(
                link.starts_with("../blobs/sha256/"),
                "{arch}/{name}: {link:?}"
            );
            assert!(out.join(arch).join(name).is_file());
        }
        assert_eq!(
            fs::read(out.join(arch).join("image-manifest.json")).unwrap(),
            fs::read(p.join(arch).join("oci/image-manifest.json")).unwrap()
        );
    }

    // verify accepts it and names every platform; the oci-import profile keeps its rule.
    let o = run(&["verify", s(&out)]);
    assert_exit(&o, 0);
    assert!(
        all(&o).contains("valid (image index: linux/amd64, linux/arm/v5"),
        "{}",
        all(&o)
    );
    let o = run(&["verify", "--arch", "i386", s(&out)]);
    assert_exit(&o, 0);
    let o = run(&["verify", "--arch", "windows-amd64", s(&out)]);
    assert_exit(&o, 1);
    assert!(
        all(&o).contains("no manifest for windows/amd64"),
        "{}",
        all(&o)
    );
    let o = run(&["verify", "--profile", "oci-import", s(&out)]);
    assert_exit(&o, 1);
    assert!(
        all(&o).contains("[bashbrew]: an image index (a multi-platform layout)"),
        "{}",
        all(&o)
    );
    // Commands that need a single image say why they refuse it.
    for args in [
        vec!["export", s(&out), "--format", "oci-archive", "-o", "-"],
        vec!["diff", s(&out), s(&out)],
    ] {
        let o = run(&args);
        assert!(!o.status.success());
        assert!(
            all(&o).contains("multi-platform") || all(&o).contains("no single image"),
            "{args:?}: {}",
            all(&o)
        );
    }
}

#[test]
fn same_bytes_for_every_build_and_thread_count_and_nothing_rewritten() {
    let t = tempfile::tempdir().unwrap();
    let p = copy_hello_world(&t.path().join("hw"));
    let a = t.path().join("a");
    let b = t.path().join("b");
    build_index(&p, &a, &["-j1"]);
    build_index(&p, &b, &["-j4"]);
    assert_eq!(snapshot(&a), snapshot(&b));
    // On a filesystem without O_TMPFILE each architecture's layer is written into a staging
    // directory of its own at once, and moved into the layout's: the same bytes.
    let c = t.path().join("c");
    let o = run_bounded(
        ocipack()
            .env("OCIPACK_TEST_NO_TMPFILE", "1")
            .args(["build", "--index", s(&c), s(&p)]),
        LIMIT,
    );
    assert_exit(&o, 0);
    assert_eq!(snapshot(&a), snapshot(&c));
    let stray: Vec<_> = fs::read_dir(t.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(stray.is_empty(), "staging left behind: {stray:?}");

    // A rebuild changes nothing, not even an mtime; --check agrees.
    let mtime = |f: &str| fs::symlink_metadata(a.join(f)).unwrap().modified().unwrap();
    let before = (mtime("index.json"), mtime("blobs/sha256"));
    let o = build_index(&p, &a, &["-j2"]);
    assert!(
        text(&o.stdout).contains("index     unchanged"),
        "{}",
        all(&o)
    );
    assert_eq!(before, (mtime("index.json"), mtime("blobs/sha256")));
    let o = run(&["build", "--check", "--index", s(&a), s(&p)]);
    assert_exit(&o, 0);
    assert!(text(&o.stdout).contains("index     same"), "{}", all(&o));

    // A changed input: --check says what differs and changes nothing; a build rewrites.
    fs::copy(p.join("i386/hello"), p.join("amd64/hello")).unwrap();
    let snap = snapshot(&a);
    let o = run(&["build", "--check", "--index", s(&a), s(&p), "--json"]);
    assert_exit(&o, 1);
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["identical"], false);
    assert!(
        report["differences"].as_array().unwrap().iter().any(|d| d
            .as_str()
            .unwrap()
            .starts_with("index.json: different bytes")),
        "{report}"
    );
    assert_eq!(snapshot(&a), snap);
    let o = build_index(&p, &a, &[]);
    assert!(text(&o.stdout).contains("index     written"), "{}", all(&o));
    // amd64 and i386 now have the same layer: one blob, two names.
    let (index, _) = image_index(&a);
    assert_eq!(index["manifests"].as_array().unwrap().len(), 10);
    assert_eq!(fs::read_dir(a.join("blobs/sha256")).unwrap().count(), 30);
    assert_eq!(
        fs::read_link(a.join("amd64/rootfs.tar.gz")).unwrap(),
        fs::read_link(a.join("i386/rootfs.tar.gz")).unwrap()
    );
    assert_exit(&run(&["verify", s(&a)]), 0);
}

#[test]
fn architecture_subsets_names_and_refused_outputs() {
    let t = tempfile::tempdir().unwrap();
    let p = copy_hello_world(&t.path().join("hw"));

    let out = t.path().join("two");
    let o = build_index(&p, &out, &["--arch", "i386", "--arch", "amd64", "--json"]);
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["written"], true);
    let arches: Vec<&str> = report["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["arch"].as_str().unwrap())
        .collect();
    assert_eq!(
        arches,
        ["amd64", "i386"],
        "bashbrew order, whatever the flags'"
    );
    let (index, digest) = image_index(&out);
    assert_eq!(report["index"]["digest"], digest.as_str());
    let platforms: Vec<String> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| platform_string(&m["platform"]))
        .collect();
    assert_eq!(platforms, ["linux/amd64", "linux/386"]);
    assert!(out.join("i386").is_dir() && !out.join("s390x").exists());

    // names = "none": no readable names; names = "files": symlinks all the same, because
    // crane push refuses symlinked blobs.
    let toml = fs::read_to_string(p.join("ocipack.toml")).unwrap();
    for (names, readable) in [("none", false), ("files", true)] {
        fs::write(
            p.join("ocipack.toml"),
            toml.replace("names = \"symlinks\"", &format!("names = \"{names}\""))
                .replace("[library]", "[unused]")
                .split("[unused]")
                .next()
                .unwrap(),
        )
        .unwrap();
        let out = t.path().join(format!("names-{names}"));
        build_index(&p, &out, &["--arch", "amd64"]);
        assert_eq!(out.join("image-index.json").exists(), readable, "{names}");
        assert_eq!(out.join("amd64").exists(), readable, "{names}");
        let blobs: Vec<_> = fs::read_dir(out.join("blobs/sha256"))
            .unwrap()
            .map(|b| b.unwrap())
            .collect();
        // The index, the manifest, the config and the layer: all regular files.
        assert_eq!(blobs.len(), 4, "{names}");
        for b in &blobs {
            assert!(b.file_type().unwrap().is_file(), "{names}");
        }
        if readable {
            assert!(
                fs::symlink_metadata(out.join("amd64/rootfs.tar.gz"))
                    .unwrap()
                    .file_type()
                    .is_symlink()
            );
        }
    }
    fs::write(p.join("ocipack.toml"), &toml).unwrap();

    // OUT may not be, hold, or sit inside one of the project's outputs; nothing is written.
    let snap = snapshot(&p);
    for bad in [
        p.join("amd64/oci"),
        p.join("amd64"),
        p.join("amd64/oci/sub"),
        p.join("amd64/nanoserver-ltsc2025"),
    ] {
        let o = run(&["build", "--index", s(&bad), s(&p)]);
        assert_exit(&o, 2);
        assert!(
            all(&o).contains("overlaps the project's output"),
            "{}",
            all(&o)
        );
    }
    // Only Windows selected: there is no layout to make.
    let o = run(&[
        "build",
        "--index",
        s(&t.path().join("w")),
        s(&p),
        "--arch",
        "windows-amd64",
    ]);
    assert_exit(&o, 2);
    assert!(all(&o).contains("no Linux architecture"), "{}", all(&o));
    // --index is its own output: not with --commit-branch or --compare-compression.
    for extra in [
        ["--commit-branch", "dist-{arch}"],
        ["--compare-compression", "--json"],
    ] {
        let mut args = vec!["build", "--index", "x", s(&p)];
        args.extend(extra);
        assert_exit(&run(&args), 2);
    }
    // An OUT that is neither empty nor a layout is never replaced.
    let junk = t.path().join("junk");
    fs::create_dir(&junk).unwrap();
    fs::write(junk.join("precious"), "keep").unwrap();
    let o = run(&["build", "--index", s(&junk), s(&p)]);
    assert_exit(&o, 2);
    assert_eq!(fs::read(junk.join("precious")).unwrap(), b"keep");
    assert_eq!(snapshot(&p), snap);
}

// ---------------------------------------------------------------------------------------
// Hostile multi-platform layouts: each breaks one rule of verify (and so of push).

/// Rewrites the image index blob of the layout at `out` with `f`, updating index.json.
fn rewrite_index(out: &Path, f: impl FnOnce(&mut Value)) {
    let (mut index, _) = image_index(out);
    f(&mut index);
    let bytes = serde_json::to_vec(&index).unwrap();
    let d = sha256(&bytes);
    fs::write(out.join("blobs/sha256").join(&d[7..]), &bytes).unwrap();
    let mut top = json_file(&out.join("index.json"));
    top["manifests"][0]["digest"] = json!(d);
    top["manifests"][0]["size"] = json!(bytes.len());
    fs::write(out.join("index.json"), serde_json::to_vec(&top).unwrap()).unwrap();
}

fn hostile(t: &Path, name: &str, f: impl FnOnce(&mut Value)) -> PathBuf {
    let out = t.join(name);
    let st = Command::new("cp")
        .arg("-a")
        .arg(t.join("good"))
        .arg(&out)
        .status()
        .unwrap();
    assert!(st.success());
    rewrite_index(&out, f);
    out
}

#[test]
fn hostile_multi_platform_layouts_are_refused_by_verify_and_push() {
    let t = tempfile::tempdir().unwrap();
    let p = copy_hello_world(&t.path().join("hw"));
    build_index(
        &p,
        &t.path().join("good"),
        &["--arch", "amd64", "--arch", "i386"],
    );
    let cases: Vec<(&str, PathBuf, &str)> = vec![
        (
            "the same manifest listed twice",
            hostile(t.path(), "dup", |i| {
                let first = i["manifests"][0].clone();
                i["manifests"].as_array_mut().unwrap().push(first);
            }),
            "linux/amd64 is listed twice (also manifests[0])",
        ),
        (
            "two manifests claiming one platform",
            hostile(t.path(), "claim", |i| {
                i["manifests"][1]["platform"] = json!({"architecture": "amd64", "os": "linux"});
            }),
            "is listed twice",
        ),
        (
            "an index inside the index",
            hostile(t.path(), "deeper", |i| {
                i["manifests"][1]["mediaType"] = json!("application/vnd.oci.image.index.v1+json");
            }),
            "(a nested index)",
        ),
        (
            "an empty index",
            hostile(t.path(), "empty", |i| i["manifests"] = json!([])),
            "lists no manifest",
        ),
        (
            "a platform unlike the config's",
            hostile(t.path(), "liar", |i| {
                i["manifests"][1]["platform"] =
                    json!({"architecture": "arm64", "os": "linux", "variant": "v8"});
            }),
            "\"arm64\" here, but the config",
        ),
        (
            "a field of the wrong type",
            hostile(t.path(), "field", |i| i["schemaVersion"] = json!("2")),
            "invalid type: string \"2\", expected u32",
        ),
    ];
    for (what, out, want) in &cases {
        let o = run(&["verify", s(out)]);
        assert_exit(&o, 1);
        assert!(all(&o).contains(want), "{what}: {}", all(&o));
        // push reads with the same rules and sends nothing (port 1 is closed: a request
        // would fail with a connection error, not with exit 2).
        let o = run(&["push", s(out), "127.0.0.1:1/x:y"]);
        assert_exit(&o, 2);
        assert!(
            all(&o).contains("is not a valid layout"),
            "{what}: {}",
            all(&o)
        );
    }

    // A property ocipack does not know is no reason to refuse: the image spec tells readers
    // to ignore it (a warning names it).
    let extra = hostile(t.path(), "extra", |i| i["extra"] = json!(1));
    let o = run(&["verify", s(&extra)]);
    assert_exit(&o, 0);
    assert!(
        all(&o).contains(": extra: a property ocipack does not know"),
        "{}",
        all(&o)
    );

    // The image index blob is missing, or is not what index.json says.
    let out = t.path().join("gone");
    Command::new("cp")
        .arg("-a")
        .arg(t.path().join("good"))
        .arg(&out)
        .status()
        .unwrap();
    let (_, d) = image_index(&out);
    fs::remove_file(out.join("blobs/sha256").join(&d[7..])).unwrap();
    let o = run(&["verify", s(&out)]);
    assert_exit(&o, 1);
    assert!(
        all(&o).contains("the image index referenced by index.json manifests[0] is missing"),
        "{}",
        all(&o)
    );
    fs::write(out.join("blobs/sha256").join(&d[7..]), b"{}").unwrap();
    let o = run(&["verify", s(&out)]);
    assert_exit(&o, 1);
}

// ---------------------------------------------------------------------------------------
// The real clients.

#[test]
fn skopeo_copy_all_and_podman_accept_the_layout() {
    if !require_tools(&["docker-registry", "skopeo", "podman", "runc"]) {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let p = copy_hello_world(&t.path().join("hw"));
    let lower = LowercaseDir::new();
    let out = lower.0.join("index");
    build_index(&p, &out, &[]);
    let (index, digest) = image_index(&out);
    let reg = Registry::start();

    // skopeo copy --all: the registry holds the index and every child, digests preserved.
    let reference = format!("{}/hello/copied:latest", reg.host());
    skopeo(&[
        "copy",
        "--all",
        "--preserve-digests",
        "--dest-tls-verify=false",
        &format!("oci:{}", out.display()),
        &format!("docker://{reference}"),
    ]);
    let raw = skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{reference}"),
    ]);
    assert_eq!(sha256(&raw.stdout), digest);
    let child = index["manifests"][5]["digest"].as_str().unwrap();
    let raw = skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{}/hello/copied@{child}", reg.host()),
    ]);
    assert_eq!(sha256(&raw.stdout), child);
    assert_eq!(
        raw.stdout,
        fs::read(out.join("i386/image-manifest.json")).unwrap()
    );

    // ocipack pushes the layout's stored index byte for byte: the same digest.
    let o = run(&[
        "push",
        s(&out),
        &format!("{}/hello/pushed:latest", reg.host()),
    ]);
    assert_exit(&o, 0);
    assert_eq!(text(&o.stdout).trim(), digest);

    // podman runs each platform from the layout, and loads it (the host's platform).
    let podman = Podman::new();
    podman.assert_hello_runs_per_platform(&format!("oci:{}:latest", out.display()), &[]);
    let podman = Podman::new();
    let loaded = podman.run_ok(&["load", "-i", s(&out)]);
    let name = loaded
        .lines()
        .find_map(|l| l.strip_prefix("Loaded image: "))
        .unwrap_or_else(|| panic!("podman load: {loaded}"))
        .trim()
        .to_string();
    let said = podman.run_ok(&["run", "--rm", "--network", "none", &name]);
    assert!(said.contains("built for the (amd64) platform"), "{said}");
}
