//! Proving what a registry serves: `ocipack pull`, `verify`/`diff`/`export` of a
//! `docker://` reference, and `build --check --against`.
//!
//! Against Debian's real `docker-registry` on 127.0.0.1 (anonymous and with htpasswd), with
//! skopeo as the oracle: a pull must give the same blobs, byte for byte, and the same
//! manifest and index digests as `skopeo copy --preserve-digests` (`--all` for an index).
//! skopeo 1.9.3 cannot write a Docker manifest list into an `oci:` layout with its digest
//! preserved, so a pulled list is compared with the registry's own bytes (`skopeo inspect
//! --raw`). Images other tools made (umoci; Docker v2 media types written by hand and pushed
//! by skopeo) verify and diff where the registry serves them. The fakes of
//! `common::fake` stand in for Docker Hub's flow (a token service on one port, blobs
//! redirected to a CDN on another, which must never see a credential) and for registries
//! that lie, trickle or redirect credentials' way; every test asserts what was fetched
//! where that is the point (only the documents, or only the layer that differs).

use crate::common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use base64::Engine as _;
use common::cli::{assert_error, stderr, stdout};
use common::fake::{Exchange, HUB_TOKEN, Hub, Server};
use common::oci::{json_file, put_blob, sha256};
use common::{
    Registry, assert_exit, build_hello, copy_hello_world, ocipack, require_tools, run_bounded,
    snapshot,
};
use serde_json::{Value, json};

const LIMIT: Duration = Duration::from_secs(300);

const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// `ocipack ARGS` with an empty Docker configuration directory (no credential of whoever
/// runs the tests), or with `docker_config` as `config.json`.
fn run_with(args: &[&str], docker_config: Option<&Value>) -> Output {
    let config = tempfile::tempdir().unwrap();
    if let Some(c) = docker_config {
        std::fs::write(config.path().join("config.json"), c.to_string()).unwrap();
    }
    let mut c = ocipack();
    c.env("DOCKER_CONFIG", config.path()).args(args);
    run_bounded(&mut c, LIMIT)
}

fn run(args: &[&str]) -> Output {
    run_with(args, None)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `skopeo copy --preserve-digests [--all] docker://REFERENCE oci:OUT` from a plain-HTTP
/// loopback registry.
fn skopeo_pull(reference: &str, out: &Path, all: bool, creds: Option<&str>) {
    let dest = format!("oci:{}", out.display());
    let src = format!("docker://{reference}");
    let mut args = vec!["copy", "-q", "--preserve-digests", "--src-tls-verify=false"];
    if all {
        args.push("--all");
    } else {
        args.extend(["--override-os", "linux", "--override-arch", "amd64"]);
    }
    if let Some(c) = creds {
        args.extend(["--src-creds", c]);
    }
    args.extend([src.as_str(), dest.as_str()]);
    common::skopeo(&args);
}

/// The only descriptor of a layout's index.json.
fn top_entry(layout: &Path) -> Value {
    let index = json_file(&layout.join("index.json"));
    let m = index["manifests"].as_array().unwrap();
    assert_eq!(m.len(), 1, "{index}");
    m[0].clone()
}

/// Asserts that ocipack's layout `ours` holds the same blobs, byte for byte, and lists the
/// same digest as skopeo's `theirs`.
fn assert_same_as_skopeo(ours: &Path, theirs: &Path) {
    let (a, b) = (
        snapshot(&ours.join("blobs")),
        snapshot(&theirs.join("blobs")),
    );
    assert!(!a.is_empty());
    assert_eq!(
        a.keys().collect::<Vec<_>>(),
        b.keys().collect::<Vec<_>>(),
        "the blob sets differ"
    );
    assert!(a == b, "a blob's bytes differ");
    assert!(a.values().all(|(link, _)| !link), "a blob is a symlink");
    assert_eq!(top_entry(ours)["digest"], top_entry(theirs)["digest"]);
    assert_eq!(top_entry(ours)["mediaType"], top_entry(theirs)["mediaType"]);
}

fn tools() -> bool {
    require_tools(&["docker-registry", "skopeo"])
}

// ---------------------------------------------------------------------------------------
// pull against the real registry, skopeo as the oracle.

#[test]
fn pull_equals_skopeo_copy_preserve_digests_for_an_image_and_an_index() {
    if !tools() {
        return;
    }
    let reg = Registry::start();
    let host = reg.host();
    let t = tempfile::tempdir().unwrap();
    let hello = t.path().join("hello");
    build_hello(&hello, &[]);
    let project = copy_hello_world(&t.path().join("hello-world"));
    assert_exit(&run(&["push", s(&hello), &format!("{host}/hello:one")]), 0);
    let o = run(&["push", s(&project), &format!("{host}/hello:all")]);
    assert_exit(&o, 0);
    let index_digest = stdout(&o).trim().to_string();

    // One manifest: a single-image layout, the blobs skopeo writes.
    let ours = t.path().join("ours-one");
    let o = run(&["pull", &format!("docker://{host}/hello:one"), s(&ours)]);
    assert_exit(&o, 0);
    let theirs = t.path().join("skopeo-one");
    skopeo_pull(&format!("{host}/hello:one"), &theirs, false, None);
    assert_same_as_skopeo(&ours, &theirs);
    assert_eq!(stdout(&o).trim(), top_entry(&ours)["digest"]);
    assert_eq!(
        top_entry(&ours)["platform"],
        json!({"architecture": "amd64", "os": "linux"})
    );
    // Readable names, as `ocipack image` writes them, and the same layout as `image` made.
    for name in ["rootfs.tar.gz", "image-config.json", "image-manifest.json"] {
        assert!(ours.join(name).is_symlink(), "{name}");
    }
    assert_exit(&run(&["diff", s(&hello), s(&ours)]), 0);
    assert!(stdout(&run(&["verify", s(&ours)])).contains("valid (linux/amd64)"));

    // An index: the nested layout build --index writes, the blobs skopeo --all writes.
    let ours = t.path().join("ours-all");
    let o = run(&["pull", &format!("{host}/hello:all"), s(&ours)]);
    assert_exit(&o, 0);
    assert_eq!(stdout(&o).trim(), index_digest);
    let theirs = t.path().join("skopeo-all");
    skopeo_pull(&format!("{host}/hello:all"), &theirs, true, None);
    assert_same_as_skopeo(&ours, &theirs);
    assert_eq!(top_entry(&ours)["digest"], index_digest.as_str());
    for arch in ["amd64", "arm64v8", "s390x"] {
        assert!(ours.join(arch).join("rootfs.tar.gz").is_symlink(), "{arch}");
    }
    assert!(ours.join("image-index.json").is_symlink());
    let v = stdout(&run(&["verify", s(&ours)]));
    assert!(
        v.contains("valid (image index: linux/amd64, linux/arm/v5"),
        "{v}"
    );
    // The same index build --index writes from the same project.
    let built = t.path().join("built-index");
    assert_exit(&run(&["build", "--index", s(&built), s(&project)]), 0);
    assert_eq!(top_entry(&built)["digest"], index_digest.as_str());

    // Pulled again: nothing changes on disk, and no blob is downloaded again.
    let before = snapshot(&ours);
    let blob_gets = reg.requests("GET", "/v2/hello/blobs/");
    let o = run(&["pull", &format!("{host}/hello:all"), s(&ours)]);
    assert_exit(&o, 0);
    assert!(stderr(&o).contains("unchanged"), "{}", stderr(&o));
    assert!(snapshot(&ours) == before);
    assert_eq!(reg.requests("GET", "/v2/hello/blobs/"), blob_gets);

    // One platform of the index: what skopeo copies without --all for linux/amd64.
    let ours = t.path().join("ours-amd64");
    let o = run(&[
        "pull",
        "--arch",
        "amd64",
        &format!("{host}/hello:all"),
        s(&ours),
    ]);
    assert_exit(&o, 0);
    let theirs = t.path().join("skopeo-amd64");
    skopeo_pull(&format!("{host}/hello:all"), &theirs, false, None);
    assert_same_as_skopeo(&ours, &theirs);
    let ours = t.path().join("ours-arm");
    let o = run(&[
        "pull",
        "--platform",
        "linux/arm/v7",
        &format!("{host}/hello:all"),
        s(&ours),
    ]);
    assert_exit(&o, 0);
    // The committed layout's manifest (its index.json also names it: ours does not).
    let committed = top_entry(&project.join("arm32v7/oci"));
    assert_eq!(top_entry(&ours)["digest"], committed["digest"]);
    assert_eq!(top_entry(&ours)["platform"], committed["platform"]); // A platform the index does not list, and a platform for a single image: input errors.
    let o = run(&[
        "pull",
        "--platform",
        "linux/sparc64",
        &format!("{host}/hello:all"),
        s(&t.path().join("x")),
    ]);
    let e = assert_error(&o, 2);
    assert!(e.contains("lists no image for linux/sparc64"), "{e}");
    let o = run(&[
        "pull",
        "--arch",
        "amd64",
        &format!("{host}/hello:one"),
        s(&t.path().join("x")),
    ]);
    assert!(assert_error(&o, 2).contains("is a single image"));
    assert!(!t.path().join("x").exists());
}

#[test]
fn pull_with_credentials_from_the_docker_config() {
    if !require_tools(&["docker-registry", "skopeo", "htpasswd"]) {
        return;
    }
    let reg = Registry::start_with_htpasswd("alice", "s3cret-pull");
    let host = reg.host();
    let t = tempfile::tempdir().unwrap();
    let hello = t.path().join("hello");
    build_hello(&hello, &[]);
    let mut push = ocipack();
    push.args(["push", s(&hello), &format!("{host}/private/hello:1")])
        .args(["--username", "alice", "--password-stdin"])
        .env("DOCKER_CONFIG", t.path());
    let o = {
        use std::io::Write as _;
        let mut child = push
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"s3cret-pull\n")
            .unwrap();
        child.wait_with_output().unwrap()
    };
    assert_exit(&o, 0);

    // Without credentials: refused, and the message says so.
    let out = t.path().join("pulled");
    let o = run(&["pull", &format!("{host}/private/hello:1"), s(&out)]);
    let e = assert_error(&o, 1);
    assert!(e.contains("401") || e.contains("credentials"), "{e}");
    assert!(!out.exists());

    // With the Docker config file's: the same as skopeo with the same credentials.
    let auth = base64::engine::general_purpose::STANDARD.encode("alice:s3cret-pull");
    let config = json!({"auths": {host.clone(): {"auth": auth}}});
    let o = run_with(
        &["pull", &format!("{host}/private/hello:1"), s(&out)],
        Some(&config),
    );
    assert_exit(&o, 0);
    assert!(!stderr(&o).contains("s3cret") && !stderr(&o).contains(&auth));
    let theirs = t.path().join("skopeo");
    skopeo_pull(
        &format!("{host}/private/hello:1"),
        &theirs,
        false,
        Some("alice:s3cret-pull"),
    );
    assert_same_as_skopeo(&out, &theirs);
    let o = run_with(
        &["verify", &format!("docker://{host}/private/hello:1")],
        Some(&config),
    );
    assert_exit(&o, 0);
}

// ---------------------------------------------------------------------------------------
// Docker v2 media types, and an image another tool made.

/// An image's bytes: (config, layer, manifest, manifest list of it).
type ImageBytes = (Vec<u8>, Vec<u8>, Vec<u8>, Vec<u8>);

/// The hello-world amd64 image rewritten with Docker v2 media types: (config, layer,
/// Docker manifest, Docker manifest list of it).
fn docker_image(t: &Path) -> ImageBytes {
    let hello = t.join("docker-src");
    build_hello(&hello, &[]);
    let m = json_file(&hello.join("image-manifest.json"));
    let blob = |d: &Value| {
        let digest = d["digest"].as_str().unwrap();
        std::fs::read(hello.join("blobs/sha256").join(&digest[7..])).unwrap()
    };
    let (config, layer) = (blob(&m["config"]), blob(&m["layers"][0]));
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": {"mediaType": DOCKER_CONFIG, "size": config.len(), "digest": sha256(&config)},
        "layers": [{"mediaType": DOCKER_LAYER, "size": layer.len(), "digest": sha256(&layer)}],
    })
    .to_string()
    .into_bytes();
    let list = json!({
        "schemaVersion": 2,
        "mediaType": DOCKER_LIST,
        "manifests": [{"mediaType": DOCKER_MANIFEST, "size": manifest.len(),
            "digest": sha256(&manifest),
            "platform": {"architecture": "amd64", "os": "linux"}}],
    })
    .to_string()
    .into_bytes();
    (config, layer, manifest, list)
}

/// A layout another tool might have written, holding the Docker image of [`docker_image`];
/// index.json lists the list (`list`) or the manifest.
fn docker_layout(dir: &Path, image: &ImageBytes, list: bool) {
    let (config, layer, manifest, l) = image;
    for b in [config, layer, manifest, l] {
        put_blob(dir, b);
    }
    let (mt, top) = if list {
        (DOCKER_LIST, l)
    } else {
        (DOCKER_MANIFEST, manifest)
    };
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let index = json!({"schemaVersion": 2, "manifests": [
        {"mediaType": mt, "digest": sha256(top), "size": top.len()}]});
    std::fs::write(dir.join("index.json"), index.to_string()).unwrap();
}

#[test]
fn docker_v2_images_are_pulled_as_they_are_and_verified_naming_their_types() {
    if !tools() {
        return;
    }
    let reg = Registry::start();
    let host = reg.host();
    let t = tempfile::tempdir().unwrap();
    let image = docker_image(t.path());
    let (single, list) = (t.path().join("single"), t.path().join("list"));
    docker_layout(&single, &image, false);
    docker_layout(&list, &image, true);
    // Layouts with Docker types verify under the plain profile, naming the types; the
    // oci-import profile refuses the Docker manifest, as bashbrew does.
    let o = run(&["verify", s(&single)]);
    assert_exit(&o, 0);
    let v = stdout(&o);
    for mt in [DOCKER_MANIFEST, DOCKER_CONFIG, DOCKER_LAYER] {
        assert!(v.contains(mt), "{v}");
    }
    let o = run(&["verify", "--profile", "oci-import", s(&single)]);
    assert_exit(&o, 1);
    assert!(
        stdout(&o).contains("[bashbrew]: a Docker v2 manifest"),
        "{}",
        stdout(&o)
    );
    assert!(stdout(&run(&["verify", s(&list)])).contains(DOCKER_LIST));

    // skopeo pushes them as they are (it reads Docker types from an oci: layout without a tag).
    for (layout, tag, all) in [(&single, "single", false), (&list, "list", true)] {
        let mut args = vec![
            "copy",
            "-q",
            "--preserve-digests",
            "--dest-tls-verify=false",
        ];
        if all {
            args.push("--all");
        }
        let (src, dst) = (
            format!("oci:{}", layout.display()),
            format!("docker://{host}/docker:{tag}"),
        );
        args.extend([src.as_str(), dst.as_str()]);
        common::skopeo(&args);
    }

    // A Docker manifest: pulled as it is, the same as skopeo's --preserve-digests copy.
    let ours = t.path().join("ours-single");
    assert_exit(
        &run(&["pull", &format!("{host}/docker:single"), s(&ours)]),
        0,
    );
    let theirs = t.path().join("skopeo-single");
    skopeo_pull(&format!("{host}/docker:single"), &theirs, false, None);
    assert_same_as_skopeo(&ours, &theirs);
    assert_eq!(top_entry(&ours)["mediaType"], DOCKER_MANIFEST);
    assert_eq!(top_entry(&ours)["digest"], sha256(&image.2).as_str());

    // A Docker manifest list: skopeo 1.9.3 cannot write one into a layout with its digest,
    // so the registry's own bytes are the oracle.
    let ours = t.path().join("ours-list");
    let o = run(&["pull", &format!("docker://{host}/docker:list"), s(&ours)]);
    assert_exit(&o, 0);
    let raw = common::skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{host}/docker:list"),
    ])
    .stdout;
    assert_eq!(raw, image.3);
    assert_eq!(std::fs::read(ours.join("image-index.json")).unwrap(), raw);
    assert_eq!(top_entry(&ours)["mediaType"], DOCKER_LIST);
    assert_eq!(top_entry(&ours)["digest"], sha256(&raw).as_str());
    assert_eq!(stdout(&o).trim(), sha256(&raw));
    let o = run(&["verify", s(&ours)]);
    assert_exit(&o, 0);
    assert!(stdout(&o).contains(DOCKER_LIST), "{}", stdout(&o));

    // Where the registry serves them: the same rules, the same names.
    for tag in ["single", "list"] {
        let o = run(&["verify", &format!("docker://{host}/docker:{tag}")]);
        assert_exit(&o, 0);
        assert!(stdout(&o).contains(DOCKER_MANIFEST), "{}", stdout(&o));
    }
}

#[test]
fn an_image_umoci_made_and_skopeo_pushed_verifies_and_diffs_where_the_registry_serves_it() {
    if !require_tools(&["docker-registry", "skopeo", "umoci"]) {
        return;
    }
    let reg = Registry::start();
    let host = reg.host();
    let t = tempfile::tempdir().unwrap();
    let layout = t.path().join("umoci");
    let bundle = t.path().join("bundle");
    let umoci = |args: &[&str]| {
        let o = Command::new("umoci").args(args).output().unwrap();
        assert!(o.status.success(), "umoci {args:?}: {}", stderr(&o));
    };
    let image = format!("{}:t", layout.display());
    umoci(&["init", "--layout", s(&layout)]);
    umoci(&["new", "--image", &image]);
    umoci(&["unpack", "--rootless", "--image", &image, s(&bundle)]);
    std::fs::write(bundle.join("rootfs/hello.txt"), "made by umoci\n").unwrap();
    umoci(&["repack", "--image", &image, s(&bundle)]);
    umoci(&["gc", "--layout", s(&layout)]);
    common::skopeo(&[
        "copy",
        "-q",
        "--preserve-digests",
        "--dest-tls-verify=false",
        &format!("oci:{image}"),
        &format!("docker://{host}/umoci:t"),
    ]);
    let remote = format!("docker://{host}/umoci:t");
    let o = run(&["verify", &remote]);
    assert_exit(&o, 0);
    assert!(stdout(&o).contains("valid (linux/amd64"), "{}", stdout(&o));
    // The layout and what the registry serves: identical (index.json is the layout's own;
    // a registry has none to compare).
    let o = run(&["diff", s(&layout), &remote]);
    assert_exit(&o, 0);
    assert_eq!(stdout(&o), "");
    // Another image: the differences, file by file.
    let hello = t.path().join("hello");
    build_hello(&hello, &[]);
    let o = run(&["diff", s(&hello), &remote]);
    assert_exit(&o, 1);
    let d = stdout(&o);
    assert!(d.contains("+ hello.txt") && d.contains("- hello"), "{d}");
}

// ---------------------------------------------------------------------------------------
// build --check --against, with the real registry.

#[test]
fn build_check_against_a_registry_after_push_and_after_one_architecture_changed() {
    if !tools() {
        return;
    }
    let reg = Registry::start();
    let host = reg.host();
    let t = tempfile::tempdir().unwrap();
    let project = copy_hello_world(&t.path().join("hello-world"));
    let against = |reference: &str, extra: &[&str]| {
        let mut args = vec!["build", "--check", "--against", reference];
        args.extend(extra);
        args.push(s(&project));
        run(&args)
    };

    // Nothing pushed yet: the tag is missing, an error about the registry.
    let o = against(&format!("{host}/hello:latest"), &[]);
    assert!(assert_error(&o, 1).contains("404"));

    assert_exit(
        &run(&["push", s(&project), &format!("{host}/hello:latest")]),
        0,
    );
    let o = against(&format!("docker://{host}/hello:latest"), &[]);
    assert_exit(&o, 0);
    let lines: Vec<String> = stdout(&o).lines().map(str::to_string).collect();
    assert_eq!(lines.len(), 10, "{lines:?}");
    for (line, (arch, _)) in lines.iter().zip(common::HELLO_ARCHES) {
        assert!(
            line.starts_with(arch) && line.ends_with("identical"),
            "{line}"
        );
    }
    // Nothing but manifests was asked for: an identical manifest digest is the proof.
    assert_eq!(reg.requests("GET", "/v2/hello/blobs/"), 0);

    // One architecture re-pushed from a modified layout (its binary one byte longer).
    let modified = copy_hello_world(&t.path().join("modified"));
    let mut bin = std::fs::read(modified.join("arm64v8/hello")).unwrap();
    bin.push(0);
    std::fs::write(modified.join("arm64v8/hello"), &bin).unwrap();
    assert_exit(&run(&["build", "--arch", "arm64v8", s(&modified)]), 0);
    assert_exit(
        &run(&["push", s(&modified), &format!("{host}/hello:latest")]),
        0,
    );
    let o = against(&format!("{host}/hello:latest"), &[]);
    let e = assert_error(&o, 1);
    assert!(e.contains("1 platform of"), "{e}");
    let out = stdout(&o);
    let differing: Vec<&str> = out.lines().filter(|l| !l.ends_with("identical")).collect();
    assert_eq!(differing.len(), 1, "{out}");
    assert!(
        differing[0].starts_with("arm64v8 ")
            && differing[0].contains("different: layer 0: other files (diff_id"),
        "{out}"
    );
    // The first difference came from the documents: no layer was fetched.
    let layer = json_file(&modified.join("arm64v8/oci/image-manifest.json"))["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let layer_gets = |r: &Registry| r.requests("GET", &format!("/v2/hello/blobs/{layer}"));
    assert_eq!(layer_gets(&reg), 0);

    // --explain fetches the layer that differs and names the file.
    let o = against(
        &format!("{host}/hello:latest"),
        &["--explain", "--arch", "arm64v8"],
    );
    assert_exit(&o, 1);
    let out = stdout(&o);
    assert!(out.contains("layer 0: hello: size 857 → 856"), "{out}");
    assert_eq!(layer_gets(&reg), 1);
    assert!(
        out.contains("linux/amd64") && out.contains("not built here"),
        "{out}"
    );
    // Nothing was left in the project.
    let left: Vec<_> = std::fs::read_dir(&project)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".ocipack-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");

    // As JSON.
    let o = against(&format!("{host}/hello:latest"), &["--json"]);
    assert_exit(&o, 1);
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["identical"], false);
    let arm = v["platforms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["label"] == "arm64v8")
        .unwrap();
    assert_eq!(arm["verdict"], "different");
    assert_eq!(arm["platform"], "linux/arm64/v8");
}

/// The busybox-shaped project's entries and their first tags.
const BUSYBOX_TAGS: [(&str, &str); 4] = [
    ("glibc", "1.38.0-glibc"),
    ("uclibc", "1.38.0-uclibc"),
    ("musl", "1.38.0-musl"),
    ("latest", "1.38.0"),
];

/// Pushes the image `name` of the project `dir` to `repository:tag` as the one index
/// `build --index --image NAME` writes (not `ocipack push DIR`).
fn push_entry(dir: &Path, name: &str, repository: &str, tag: &str, scratch: &Path) {
    let index = scratch.join(format!("index-{name}-{tag}"));
    let o = run(&["build", "--index", s(&index), "--image", name, s(dir)]);
    assert_exit(&o, 0);
    let o = run(&["push", s(&index), &format!("{repository}:{tag}")]);
    assert_exit(&o, 0);
}

#[test]
fn build_check_against_a_repository_checks_each_image_under_its_first_tag() {
    if !tools() {
        return;
    }
    use crate::images::{ALL, GLIBC, MUSL, UCLIBC, busybox_project};
    let reg = Registry::start();
    let repository = format!("{}/busybox", reg.host());
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("busybox");
    busybox_project(&dir);
    for (name, tag) in BUSYBOX_TAGS {
        push_entry(&dir, name, &repository, tag, t.path());
    }
    let against = |extra: &[&str]| {
        let mut args = vec!["build", "--check", "--against", &repository];
        args.extend(extra);
        args.push(s(&dir));
        run(&args)
    };

    // One line per (entry, architecture), naming both and the tag; the from entry's
    // lines are the layouts it resolves to.
    let o = against(&[]);
    assert_exit(&o, 0);
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines.len(),
        GLIBC.len() + UCLIBC.len() + MUSL.len() + ALL.len(),
        "{out}"
    );
    for (name, arches) in [
        ("glibc", &GLIBC[..]),
        ("uclibc", &UCLIBC),
        ("musl", &MUSL),
        ("latest", &ALL),
    ] {
        let tag = BUSYBOX_TAGS.iter().find(|(n, _)| *n == name).unwrap().1;
        for a in arches {
            let label = format!("{name} {a}");
            assert!(
                lines.iter().any(|l| {
                    l.starts_with(&format!("{label} "))
                        && l.split_whitespace().nth(2) == Some(tag)
                        && l.ends_with("identical")
                }),
                "{label} {tag}: {out}"
            );
        }
    }
    // --image selects entries; JSON names each image's reference and digest.
    let o = against(&["--image", "musl", "--json"]);
    assert_exit(&o, 0);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["identical"], true);
    assert_eq!(v["reference"], format!("docker://{repository}"));
    assert_eq!(v["images"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(
        v["images"][0]["reference"],
        format!("docker://{repository}:1.38.0-musl")
    );
    assert!(
        v["platforms"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["image"] == "musl" && p["tag"] == "1.38.0-musl"),
        "{v}"
    );
    // A tag or a digest is refused: each image has its own.
    let o = against_ref(&dir, &format!("{repository}:1.38.0"));
    assert!(assert_error(&o, 2).contains("names a tag or a digest"));

    // One architecture of one image re-pushed from another build: exactly that line.
    let changed = t.path().join("changed");
    copy_dir(&dir, &changed);
    std::fs::write(
        changed.join("rootfs/uclibc/arm64v8/etc/variant"),
        "uclibc arm64v8, rebuilt\n",
    )
    .unwrap();
    push_entry(&changed, "uclibc", &repository, "1.38.0-uclibc", t.path());
    let o = against(&[]);
    assert_exit(&o, 1);
    let out = stdout(&o);
    let different: Vec<&str> = out.lines().filter(|l| !l.ends_with("identical")).collect();
    assert_eq!(different.len(), 1, "{out}");
    assert!(
        different[0].starts_with("uclibc arm64v8 ")
            && different[0].contains("1.38.0-uclibc")
            && different[0].contains("different: layer 0: other files"),
        "{out}"
    );
    let e = stderr(&o);
    assert!(
        e.contains("1 platform of the images' tags in docker://"),
        "{e}"
    );
    // Nothing is written anywhere in the project, also when --explain stages a build to
    // compare its layers.
    let before = snapshot(&dir);
    let o = against(&["--explain"]);
    assert_exit(&o, 1);
    assert!(
        stdout(&o).contains("etc/variant"),
        "the explanation names the file: {}",
        stdout(&o)
    );
    assert!(snapshot(&dir) == before, "build --check --against wrote");

    // A repository holding only one image's tag: the others are missing there.
    let other = format!("{}/other", reg.host());
    push_entry(&dir, "glibc", &other, "1.38.0-glibc", t.path());
    let o = against_ref(&dir, &other);
    assert_exit(&o, 1);
    let out = stdout(&o);
    for l in out.lines() {
        if l.starts_with("glibc ") {
            assert!(l.ends_with("identical"), "{out}");
        } else {
            assert!(l.ends_with("missing in the registry"), "{out}");
        }
    }
}

/// `build --check --against REFERENCE DIR`.
fn against_ref(dir: &Path, reference: &str) -> Output {
    run(&["build", "--check", "--against", reference, s(dir)])
}

/// `cp -R from to`.
fn copy_dir(from: &Path, to: &Path) {
    let st = Command::new("cp")
        .arg("-R")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(st.success());
}

#[test]
fn export_of_a_registry_image_is_the_export_of_its_layout() {
    if !tools() {
        return;
    }
    let reg = Registry::start();
    let host = reg.host();
    let t = tempfile::tempdir().unwrap();
    let hello = t.path().join("hello");
    build_hello(&hello, &[]);
    let project = copy_hello_world(&t.path().join("hello-world"));
    assert_exit(&run(&["push", s(&hello), &format!("{host}/hello:one")]), 0);
    assert_exit(
        &run(&["push", s(&project), &format!("{host}/hello:all")]),
        0,
    );
    let export = |src: &str, out: &Path, extra: &[&str]| {
        let mut args = vec!["export", src, "--format", "docker-archive", "-o", s(out)];
        args.extend(extra);
        assert_exit(&run(&args), 0);
        std::fs::read(out).unwrap()
    };
    let local = export(s(&hello), &t.path().join("a.tar"), &["--tag", "x/y:1"]);
    let remote = export(
        &format!("docker://{host}/hello:one"),
        &t.path().join("b.tar"),
        &["--tag", "x/y:1"],
    );
    assert!(local == remote, "the archives differ");
    // One image of an index, named after the reference by default.
    let arm = export(
        &format!("docker://{host}/hello:all"),
        &t.path().join("c.tar"),
        &["--arch", "arm32v7"],
    );
    let local = export(
        s(&project.join("arm32v7/oci")),
        &t.path().join("d.tar"),
        &["--tag", &format!("{host}/hello:all")],
    );
    assert!(arm == local, "the archives differ");
    // An oci-archive of a registry image: ocipack's index.json, skopeo reads it.
    let oci = t.path().join("e.tar");
    assert_exit(
        &run(&[
            "export",
            &format!("docker://{host}/hello:one"),
            "--format",
            "oci-archive",
            "-o",
            s(&oci),
        ]),
        0,
    );
    let raw = common::skopeo(&[
        "inspect",
        "--raw",
        &format!("oci-archive:{}", oci.display()),
    ]);
    assert_eq!(
        sha256(&raw.stdout),
        common::index_digest(&hello),
        "skopeo reads another manifest"
    );
}

#[test]
fn only_docker_prefixed_arguments_are_registry_references() {
    // A path that looks like a reference stays a path.
    let o = run(&["verify", "127.0.0.1:5000/hello:latest"]);
    let e = assert_error(&o, 2);
    assert!(
        e.contains("layout 127.0.0.1:5000/hello:latest: does not exist"),
        "{e}"
    );
    // A bad reference after the prefix is an input error naming it.
    let o = run(&["verify", "docker://UPPER/x:-bad"]);
    assert!(assert_error(&o, 2).contains("image reference"));
    // Rules that need a layout, refused for a registry before anything is sent.
    let o = run(&[
        "verify",
        "--profile",
        "oci-import",
        "docker://127.0.0.1:9/x",
    ]);
    assert!(assert_error(&o, 2).contains("a registry holds no layout"));
    let o = run(&["verify", "--file", "d.json", "docker://127.0.0.1:9/x"]);
    assert!(assert_error(&o, 2).contains("--file"));
    let o = run(&["build", "--against", "127.0.0.1:9/x"]);
    assert_exit(&o, 2);
}

// ---------------------------------------------------------------------------------------
// Docker Hub's flow and faulty registries, with the fakes.

/// A Hub serving the hello-world amd64 image with Docker v2 types (the list under
/// `latest`); returns it with (config, layer, manifest, list).
fn docker_hub(t: &Path) -> (Hub, ImageBytes) {
    let hub = Hub::start();
    let image = docker_image(t);
    hub.put_manifest("latest", DOCKER_LIST, &image.3);
    hub.put_manifest("amd64", DOCKER_MANIFEST, &image.2);
    hub.put_blob(&image.0);
    hub.put_blob(&image.1);
    (hub, image)
}

#[test]
fn pull_and_verify_through_docker_hubs_flow_send_no_credential_to_the_cdn() {
    let t = tempfile::tempdir().unwrap();
    let (hub, image) = docker_hub(t.path());
    let out = t.path().join("hub");
    let o = run(&[
        "pull",
        &format!("docker://{}:latest", hub.repository()),
        s(&out),
    ]);
    assert_exit(&o, 0);
    assert_eq!(
        std::fs::read(out.join("image-index.json")).unwrap(),
        image.3
    );
    assert_exit(&run(&["verify", s(&out)]), 0);
    let o = run(&["verify", &format!("docker://{}", hub.repository())]);
    assert_exit(&o, 0);
    // Both blobs came from the CDN (twice: pull, then verify), never with a credential;
    // the token was asked for anonymously, for pull only.
    let cdn = hub.cdn.requests();
    assert_eq!(cdn.len(), 4, "{cdn:?}");
    assert!(
        cdn.iter().all(|r| r.header("authorization").is_none()),
        "{cdn:?}"
    );
    let bearer = format!("Bearer {HUB_TOKEN}");
    assert!(
        hub.registry
            .requests()
            .iter()
            .any(|r| r.header("authorization") == Some(bearer.as_str()))
    );
    for r in hub.auth.requests() {
        assert!(
            r.header("authorization").is_none() && !r.path.contains("push"),
            "{r:?}"
        );
    }
}

#[test]
fn against_fetches_only_what_a_difference_needs_and_judges_every_entry() {
    let t = tempfile::tempdir().unwrap();
    let project = copy_hello_world(&t.path().join("hello-world"));
    let hub = Hub::start();
    // The deploy step's kind of index: the ten manifests of the committed layouts, an
    // attestation manifest, a Windows image, with arm64v8's entry pointing at the amd64
    // manifest (a wrong push) and a second linux/amd64 entry.
    let entry = |arch: &str| top_entry(&project.join(arch).join("oci"));
    let mut manifests: Vec<Value> = common::HELLO_ARCHES
        .iter()
        .map(|(arch, _)| entry(arch))
        .collect();
    let amd64 = entry("amd64");
    manifests[4]["digest"] = amd64["digest"].clone();
    manifests[4]["size"] = amd64["size"].clone();
    manifests.push(
        json!({"mediaType": common::oci::MANIFEST, "digest": sha256(b"attestation"),
        "size": 11, "platform": {"architecture": "unknown", "os": "unknown"},
        "annotations": {"vnd.docker.reference.type": "attestation-manifest",
                        "vnd.docker.reference.digest": amd64["digest"]}}),
    );
    manifests.push(
        json!({"mediaType": common::oci::MANIFEST, "digest": sha256(b"windows"),
        "size": 7, "platform": {"architecture": "amd64", "os": "windows",
                                "os.version": "10.0.20348.3932"}}),
    );
    manifests.push(amd64.clone());
    let index = json!({"schemaVersion": 2, "mediaType": common::oci::INDEX,
        "manifests": manifests, "annotations": {"org.opencontainers.image.source": "x"}})
    .to_string()
    .into_bytes();
    hub.put_manifest("latest", common::oci::INDEX, &index);
    // The amd64 manifest and config are served (what the arm64v8 difference needs); no layer.
    let amd = project.join("amd64/oci");
    let mbytes = std::fs::read(amd.join("image-manifest.json")).unwrap();
    hub.put_manifest("unused", common::oci::MANIFEST, &mbytes);
    let config = std::fs::read(amd.join("image-config.json")).unwrap();
    hub.put_blob(&config);

    let o = run(&[
        "build",
        "--check",
        "--against",
        &format!("{}:latest", hub.repository()),
        "--json",
        s(&project),
    ]);
    assert_exit(&o, 1);
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let verdicts: Vec<(String, String)> = v["platforms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["label"].as_str().unwrap().to_string(),
                p["verdict"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let want: Vec<(&str, &str)> = vec![
        ("amd64", "identical"),
        ("arm32v5", "identical"),
        ("arm32v6", "identical"),
        ("arm32v7", "identical"),
        ("arm64v8", "different"),
        ("i386", "identical"),
        ("mips64le", "identical"),
        ("ppc64le", "identical"),
        ("riscv64", "identical"),
        ("s390x", "identical"),
        ("unknown/unknown", "notBuiltHere"),
        ("windows/amd64", "notBuiltHere"),
        ("linux/amd64", "extraInTheRegistry"),
    ];
    let got: Vec<(&str, &str)> = verdicts
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    assert_eq!(got, want);
    let arm = &v["platforms"][4];
    assert_eq!(arm["first"], "config architecture: \"amd64\" → \"arm64\"");
    // Fetched: the index, the amd64 manifest and its config; never a layer, never the
    // attestation or the Windows manifest.
    let cdn: Vec<String> = hub.cdn.requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(cdn.len(), 1, "{cdn:?}");
    assert!(cdn[0].contains(&sha256(&config)), "{cdn:?}");
    let manifests_read: Vec<String> = hub
        .registry
        .requests()
        .iter()
        .filter(|r| r.path.contains("/manifests/") && r.header("authorization").is_some())
        .map(|r| r.path.clone())
        .collect();
    assert_eq!(manifests_read.len(), 2, "{manifests_read:?}");

    // The text form: one line per architecture, then the index's other entries.
    let o = run(&[
        "build",
        "--check",
        "--against",
        &format!("{}:latest", hub.repository()),
        "--arch",
        "amd64",
        s(&project),
    ]);
    let e = assert_error(&o, 1);
    assert!(e.contains("check failed: 1 platform of"), "{e}");
    let out = stdout(&o);
    assert!(out.lines().next().unwrap().starts_with("amd64 "), "{out}");
    assert!(
        out.contains("not built here (an architecture of the project, not selected)"),
        "{out}"
    );
    assert!(
        out.contains("not built here (an attestation manifest)"),
        "{out}"
    );
    assert!(
        out.contains("not built here (windows is not built as a layout)"),
        "{out}"
    );
    assert!(
        out.lines()
            .last()
            .unwrap()
            .ends_with("extra in the registry"),
        "{out}"
    );
}

#[test]
fn diff_fetches_a_registry_layer_only_when_the_documents_show_it_differs() {
    let t = tempfile::tempdir().unwrap();
    let hello = t.path().join("hello");
    build_hello(&hello, &[]);
    let hub = Hub::start();
    let blob = |d: &Value| {
        let digest = d["digest"].as_str().unwrap();
        std::fs::read(hello.join("blobs/sha256").join(&digest[7..])).unwrap()
    };
    let m = json_file(&hello.join("image-manifest.json"));
    hub.put_manifest(
        "latest",
        common::oci::MANIFEST,
        &std::fs::read(hello.join("image-manifest.json")).unwrap(),
    );
    hub.put_blob(&blob(&m["config"]));
    hub.put_blob(&blob(&m["layers"][0]));
    let remote = format!("docker://{}", hub.repository());

    assert_exit(&run(&["diff", s(&hello), &remote]), 0);
    let cdn = hub.cdn.requests();
    assert_eq!(cdn.len(), 1, "only the config: {cdn:?}");

    // Another file in the layer: now the registry's layer is fetched and compared.
    let other = t.path().join("other");
    one_file_image(t.path(), "x", &other);
    let o = run(&["diff", s(&other), &remote]);
    assert_exit(&o, 1);
    assert!(stdout(&o).contains("layer 0: + hello"), "{}", stdout(&o));
    let layer = m["layers"][0]["digest"].as_str().unwrap().to_string();
    let cdn = hub.cdn.requests();
    assert!(cdn.iter().any(|r| r.path.contains(&layer)), "{cdn:?}");
}

#[test]
fn a_manifest_or_config_listed_many_times_is_fetched_once() {
    // An index listing one manifest 50 times, and a second manifest sharing its config:
    // each document is fetched once, not once per listing (a 4 MB index could list one
    // manifest some 25,000 times).
    let t = tempfile::tempdir().unwrap();
    let (hub, image) = docker_hub(t.path());
    let mut other: Value = serde_json::from_slice(&image.2).unwrap();
    other["annotations"] = json!({"org.example.twin": "yes"});
    let other = other.to_string().into_bytes();
    hub.put_manifest("other", DOCKER_MANIFEST, &other);
    let listed = |m: &[u8], arch: &str| {
        json!({"mediaType": DOCKER_MANIFEST, "size": m.len(), "digest": sha256(m),
               "platform": {"architecture": arch, "os": "linux"}})
    };
    let mut manifests = vec![listed(&image.2, "amd64"); 50];
    manifests.push(listed(&other, "arm64"));
    let list = json!({"schemaVersion": 2, "mediaType": DOCKER_LIST, "manifests": manifests})
        .to_string()
        .into_bytes();
    hub.put_manifest("many", DOCKER_LIST, &list);
    let out = t.path().join("out");
    let o = run(&["pull", &format!("{}:many", hub.repository()), s(&out)]);
    assert_exit(&o, 0);
    assert_eq!(std::fs::read(out.join("image-index.json")).unwrap(), list);
    let registry = hub.registry.requests();
    for m in [&image.2, &other] {
        let path = format!("/manifests/{}", sha256(m));
        let asked = registry
            .iter()
            .filter(|r| r.path.ends_with(&path) && r.header("authorization").is_some())
            .count();
        assert_eq!(asked, 1, "{path} asked {asked} times");
    }
    let cdn = hub.cdn.requests();
    for b in [&image.0, &image.1] {
        let asked = cdn.iter().filter(|r| r.path.contains(&sha256(b))).count();
        assert_eq!(asked, 1, "{} asked {asked} times", sha256(b));
    }
}

#[test]
fn verify_reads_an_index_nested_in_an_index_where_registries_serve_it() {
    // A nested index is served at manifests/, as every manifest is: verify must not ask
    // for it as a blob and then report the registry's 404 as a missing blob.
    let t = tempfile::tempdir().unwrap();
    let (hub, image) = docker_hub(t.path());
    let inner = json!({"schemaVersion": 2, "mediaType": common::oci::INDEX, "manifests": [
        {"mediaType": DOCKER_MANIFEST, "size": image.2.len(), "digest": sha256(&image.2),
         "platform": {"architecture": "amd64", "os": "linux"}}]})
    .to_string()
    .into_bytes();
    hub.put_manifest("inner", common::oci::INDEX, &inner);
    let outer = json!({"schemaVersion": 2, "mediaType": common::oci::INDEX, "manifests": [
        {"mediaType": common::oci::INDEX, "size": inner.len(), "digest": sha256(&inner)}]})
    .to_string()
    .into_bytes();
    hub.put_manifest("nested", common::oci::INDEX, &outer);
    let o = run(&["verify", &format!("docker://{}:nested", hub.repository())]);
    let out = stdout(&o);
    assert!(
        !out.contains("404") && !out.contains("reading blob"),
        "{out}"
    );
    let inner_digest = sha256(&inner);
    assert!(
        hub.cdn
            .requests()
            .iter()
            .all(|r| !r.path.contains(&inner_digest)),
        "the nested index was asked for as a blob"
    );
    assert!(
        hub.registry
            .requests()
            .iter()
            .any(|r| r.path.ends_with(&format!("/manifests/{inner_digest}")))
    );
    // Its bytes were checked: a registry that serves other bytes for it is caught.
    let mut wrong = inner.clone();
    wrong.push(b' ');
    hub.content
        .lock()
        .unwrap()
        .manifests
        .insert(inner_digest.clone(), (common::oci::INDEX.into(), wrong));
    let o = run(&["verify", &format!("docker://{}:nested", hub.repository())]);
    assert_exit(&o, 1);
    assert!(stdout(&o).contains("descriptor says"), "{}", stdout(&o));
}

#[test]
fn a_registry_that_lies_is_caught_and_nothing_is_written() {
    let t = tempfile::tempdir().unwrap();
    let (hub, image) = docker_hub(t.path());
    // The layer's bytes with one changed, same size.
    let mut bad = image.1.clone();
    bad[100] ^= 0x55;
    hub.content
        .lock()
        .unwrap()
        .blobs
        .insert(sha256(&image.1), bad);
    let out = t.path().join("out");
    let o = run(&["pull", &format!("{}:latest", hub.repository()), s(&out)]);
    let e = assert_error(&o, 1);
    assert!(e.contains("content hashes to"), "{e}");
    assert!(!out.exists());
    assert!(common::staging_beside(&out).is_empty());
    let o = run(&["verify", &format!("docker://{}:latest", hub.repository())]);
    assert_exit(&o, 1);
    assert!(stdout(&o).contains("not to its digest"), "{}", stdout(&o));

    // A media type that is not what the document says.
    hub.put_manifest("mislabelled", common::oci::INDEX, &image.2);
    let o = run(&[
        "pull",
        &format!("{}:mislabelled", hub.repository()),
        s(&out),
    ]);
    let e = assert_error(&o, 1);
    assert!(
        e.contains(
            "Content-Type application/vnd.oci.image.index.v1+json for a manifest whose mediaType is"
        ),
        "{e}"
    );
    assert!(!out.exists());
}

#[test]
fn export_fetches_each_layer_once_and_a_registry_that_lies_writes_nothing() {
    let t = tempfile::tempdir().unwrap();
    let (hub, image) = docker_hub(t.path());
    let layer = sha256(&image.1);
    let reference = format!("docker://{}:amd64", hub.repository());
    let fetched = |hub: &Hub| {
        let cdn = hub.cdn.requests();
        cdn.iter().filter(|r| r.path.contains(&layer[7..])).count()
    };
    // Each format, to a file and to standard output: the layer is fetched once (verified
    // as it streams), and the archive is the one its pulled layout exports.
    let pulled = t.path().join("pulled");
    assert_exit(&run(&["pull", &reference, s(&pulled)]), 0);
    let before = fetched(&hub);
    for format in ["docker-archive", "oci-archive"] {
        let out = t.path().join(format!("{format}.tar"));
        let o = run(&["export", &reference, "--format", format, "-o", s(&out)]);
        assert_exit(&o, 0);
        let o = run(&["export", &reference, "--format", format, "-o", "-"]);
        assert_exit(&o, 0);
        assert!(
            std::fs::read(&out).unwrap() == o.stdout,
            "{format}: -o and stdout differ"
        );
        if format == "docker-archive" {
            let tag = format!("{}:amd64", hub.repository());
            let local = t.path().join("local.tar");
            let o = run(&[
                "export",
                s(&pulled),
                "--format",
                format,
                "--tag",
                &tag,
                "-o",
                s(&local),
            ]);
            assert_exit(&o, 0);
            assert!(
                std::fs::read(&local).unwrap() == std::fs::read(&out).unwrap(),
                "the registry's archive is not its layout's"
            );
        }
    }
    assert_eq!(
        fetched(&hub) - before,
        4,
        "one fetch of the layer per export"
    );

    // The layer's bytes with one changed, same size: the registry's failure (exit 1), and
    // nothing written, to a file or to standard output.
    let mut bad = image.1.clone();
    bad[100] ^= 0x55;
    hub.content.lock().unwrap().blobs.insert(layer.clone(), bad);
    let out = t.path().join("lied.tar");
    for format in ["docker-archive", "oci-archive"] {
        let o = run(&["export", &reference, "--format", format, "-o", s(&out)]);
        let e = assert_error(&o, 1);
        assert!(e.contains("content hashes to"), "{e}");
        assert!(e.contains(&hub.repository()), "{e}");
        assert!(!out.exists());
        assert!(common::staging_beside(&out).is_empty());
        let o = run(&["export", &reference, "--format", format, "-o", "-"]);
        assert_exit(&o, 1);
        assert!(
            o.stdout.is_empty(),
            "{format}: bytes reached standard output"
        );
    }
}

#[test]
fn what_a_registry_names_is_escaped_before_it_is_printed() {
    let t = tempfile::tempdir().unwrap();
    let project = copy_hello_world(&t.path().join("hello-world"));
    let hub = Hub::start();
    let mut amd64 = top_entry(&project.join("amd64/oci"));
    amd64["platform"] = json!({"architecture": "amd64\u{1b}[2J", "os": "li\u{7}nux"});
    let index = json!({"schemaVersion": 2, "mediaType": common::oci::INDEX,
        "manifests": [amd64]})
    .to_string()
    .into_bytes();
    hub.put_manifest("latest", common::oci::INDEX, &index);
    let o = run(&[
        "build",
        "--check",
        "--against",
        &format!("{}:latest", hub.repository()),
        "--arch",
        "amd64",
        s(&project),
    ]);
    assert_exit(&o, 1);
    let out = stdout(&o);
    assert!(
        !out.contains('\u{1b}') && !out.contains('\u{7}'),
        "a control character reached the terminal: {out:?}"
    );
    assert!(
        out.contains("li\\u{7}nux/amd64\\u{1b}[2J") && out.contains("not built here"),
        "{out}"
    );
}

#[test]
fn a_trickling_registry_ends_at_the_deadline() {
    let srv = Server::start(Duration::from_secs(10), |ex: &mut Exchange| {
        let head = "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\nContent-Length: 1000\r\n\r\n";
        use std::io::Write as _;
        let _ = ex.conn.write_all(head.as_bytes());
        ex.trickle(b"{");
    });
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("out");
    let start = std::time::Instant::now();
    let o = run(&[
        "pull",
        "--timeout",
        "2",
        &format!("{}/slow:1", srv.host()),
        s(&out),
    ]);
    let e = assert_error(&o, 1);
    assert!(e.contains("timed out"), "{e}");
    assert!(start.elapsed() < Duration::from_secs(60));
    assert!(!out.exists());
}

#[test]
fn a_registry_that_wants_credentials_is_told_of_the_way_read_commands_take_them() {
    // The read commands have no --username: the 401's advice must not name it.
    let srv = Server::start(Duration::from_secs(10), |ex: &mut Exchange| {
        ex.respond(
            401,
            &[("WWW-Authenticate", r#"Basic realm="private""#.into())],
            b"",
        );
    });
    let t = tempfile::tempdir().unwrap();
    let reference = format!("docker://{}/private:latest", srv.host());
    for args in [
        vec!["pull", &reference, s(&t.path().join("out"))],
        vec!["verify", &reference],
    ] {
        let o = run(&args);
        let e = assert_error(&o, 1);
        assert!(
            e.contains("401 Unauthorized") && e.contains("Docker config file"),
            "{e}"
        );
        assert!(!e.contains("--username"), "{e}");
        // (They refuse --username indeed.)
        let o = run(&[args[0], "--username", "alice", &reference]);
        assert_exit(&o, 2);
    }
}

#[test]
fn credentials_never_follow_a_redirect_to_another_port() {
    let t = tempfile::tempdir().unwrap();
    let hello = t.path().join("hello");
    build_hello(&hello, &[]);
    let files: Vec<(String, Vec<u8>)> = std::fs::read_dir(hello.join("blobs/sha256"))
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                format!("sha256:{}", e.file_name().to_string_lossy()),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    let manifest = std::fs::read(hello.join("image-manifest.json")).unwrap();
    let store = files.clone();
    // Blobs from another port of the same host.
    let cdn = Server::start(Duration::from_secs(10), move |ex: &mut Exchange| {
        let d = ex.req.path.trim_start_matches('/').to_string();
        match store.iter().find(|(k, _)| *k == d) {
            Some((_, b)) => {
                let b = b.clone();
                ex.respond(200, &[], &b)
            }
            None => ex.respond(404, &[], b""),
        }
    });
    let cdn_port = cdn.port;
    let auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("alice:pw-0123456789")
    );
    let want = auth.clone();
    let reg = Server::start(Duration::from_secs(10), move |ex: &mut Exchange| {
        if ex.req.header("authorization") != Some(want.as_str()) {
            ex.respond(
                401,
                &[("WWW-Authenticate", r#"Basic realm="r""#.into())],
                b"",
            );
        } else if ex.req.path.contains("/manifests/") {
            ex.respond(
                200,
                &[("Content-Type", common::oci::MANIFEST.into())],
                &manifest,
            );
        } else if let Some(d) = ex.req.path.split("/blobs/").nth(1) {
            let to = format!("http://127.0.0.1:{cdn_port}/{d}");
            ex.respond(307, &[("Location", to)], b"");
        }
    });
    let config = json!({"auths": {reg.host(): {"auth": &auth[6..]}}});
    let out = t.path().join("out");
    let o = run_with(
        &["pull", &format!("{}/private:1", reg.host()), s(&out)],
        Some(&config),
    );
    assert_exit(&o, 0);
    assert_exit(&run(&["diff", s(&hello), s(&out)]), 0);
    let got = cdn.requests();
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(
        got.iter().all(|r| r.header("authorization").is_none()),
        "{got:?}"
    );
}

#[test]
fn a_signal_during_a_pull_leaves_the_output_as_it_was() {
    use std::os::unix::process::ExitStatusExt as _;
    let t = tempfile::tempdir().unwrap();
    let hello = t.path().join("hello");
    build_hello(&hello, &[]);
    let m = json_file(&hello.join("image-manifest.json"));
    let manifest = std::fs::read(hello.join("image-manifest.json")).unwrap();
    let config = std::fs::read(hello.join("image-config.json")).unwrap();
    let config_digest = m["config"]["digest"].as_str().unwrap().to_string();
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
        m["layers"][0]["size"]
    );
    let srv = Server::start(Duration::from_secs(10), move |ex: &mut Exchange| {
        if ex.req.path.contains("/manifests/") {
            ex.respond(
                200,
                &[("Content-Type", common::oci::MANIFEST.into())],
                &manifest,
            );
        } else if ex.req.path.ends_with(&config_digest) {
            ex.respond(200, &[], &config);
        } else {
            // The layer, one byte a second.
            use std::io::Write as _;
            let _ = ex.conn.write_all(head.as_bytes());
            ex.trickle(b"\x1f");
        }
    });
    // OUT holds another layout already.
    let out = t.path().join("out");
    one_file_image(t.path(), "old", &out);
    let before = snapshot(&out);
    let config_dir = tempfile::tempdir().unwrap();
    let mut child = ocipack()
        .env("DOCKER_CONFIG", config_dir.path())
        .args(["pull", &format!("{}/slow:1", srv.host()), s(&out)])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let layer = m["layers"][0]["digest"].as_str().unwrap().to_string();
    let asked = std::time::Instant::now();
    while !srv.requests().iter().any(|r| r.path.contains(&layer)) {
        assert!(
            asked.elapsed() < Duration::from_secs(60),
            "the layer was never asked for"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let st = Command::new("kill")
        .args(["-s", "TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let status = child.wait().unwrap();
    assert!(
        status.signal() == Some(15) || status.code() == Some(128 + 15),
        "{status}"
    );
    assert!(common::staging_beside(&out).is_empty());
    assert!(before == snapshot(&out), "the signal changed OUT");
}

/// Builds at `out` an image of one file `/f` holding `content` (written to `dir/f` first).
fn one_file_image(dir: &Path, content: &str, out: &Path) {
    let file = dir.join("f");
    std::fs::write(&file, content).unwrap();
    let o = common::cli::image(
        &[
            common::cli::os("--file"),
            common::cli::os(&format!("{}:/f:0644", file.display())),
        ],
        out,
        &[],
    )
    .output()
    .unwrap();
    assert_exit(&o, 0);
}
