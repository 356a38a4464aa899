//! Images as Docker Hub serves them (`common::served`), where a registry serves them: the
//! fake Docker Hub (its token service and CDN) and Debian's real `docker-registry` (pushed
//! there by skopeo, with skopeo as the oracle of a pull).
//!
//! A config Docker's classic builder wrote or BuildKit wrote has properties ocipack does not
//! know: `verify` names each (a warning: the image spec tells readers to ignore them) and
//! calls the image valid. A Windows image's foreign layer is checked as far as it can be
//! (its descriptor and diff_id) and never fetched: a server standing for the host its
//! `urls` name records every request, and must see none; `pull` leaves it unfetched as
//! skopeo does, `diff` compares its diff_id alone, `export` refuses it.

use crate::common;

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use common::cli::{assert_error, stderr, stdout};
use common::fake::{Exchange, Hub, Server};
use common::oci::{json_file, sha256};
use common::served::{self, DOCKER_LIST, Image, Served, WINDOWS_VERSION};
use common::{Registry, assert_exit, ocipack, require_tools, run_bounded, snapshot};

const LIMIT: Duration = Duration::from_secs(300);

/// `ocipack ARGS` with an empty Docker configuration (no credential of whoever runs it).
fn run(args: &[&str]) -> Output {
    let config = tempfile::tempdir().unwrap();
    let mut c = ocipack();
    c.env("DOCKER_CONFIG", config.path()).args(args);
    run_bounded(&mut c, LIMIT)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A server standing for the host foreign layers' `urls` name: it records each request
/// and answers none usefully.
fn foreign_host() -> Server {
    Server::start(Duration::from_secs(10), |ex: &mut Exchange| {
        ex.respond(500, &[], b"a foreign layer was asked for")
    })
}

/// The fixtures: `classic` (Docker's builder), `buildkit` (an index with an attestation),
/// `windows` and `windows-other` (foreign base layers that differ), and `latest` (a Docker
/// list of the classic Linux image and the Windows one, as hello-world's `latest` is).
fn fixtures(foreign: &str) -> (Served, Image, Image, Image) {
    let (classic, buildkit) = (served::docker_classic(), served::buildkit());
    let windows = served::windows(foreign, "ltsc2019");
    let mut served = Served::default();
    served.image("classic", &classic);
    served.with_attestation("buildkit", &buildkit);
    served.image("windows", &windows);
    served.image("windows-other", &served::windows(foreign, "ltsc2022"));
    served.list("latest", &[&classic, &windows]);
    (served, classic, buildkit, windows)
}

#[test]
fn images_as_docker_hub_serves_them_verify_and_foreign_layers_are_never_fetched() {
    let foreign = foreign_host();
    let hub = Hub::start();
    let (served, classic, _, windows) = fixtures(&foreign.host());
    served.on_hub(&hub);
    let at = |tag: &str| format!("docker://{}:{tag}", hub.repository());

    // Docker's classic builder: valid, each property ocipack does not know named.
    let o = run(&["verify", &at("classic")]);
    assert_exit(&o, 0);
    let v = stdout(&o);
    for path in [
        "container_config",
        "docker_version",
        "container",
        "config.Hostname",
        "config.Image",
        "config.OnBuild",
    ] {
        assert!(
            v.contains(&format!(": {path}: a property ocipack does not know")),
            "{path}: {v}"
        );
    }
    assert!(
        v.contains("valid (linux/amd64, Docker v2 media types: "),
        "{v}"
    );
    // BuildKit: valid, the attestation manifest checked as bytes, not as an image.
    let o = run(&["verify", &at("buildkit")]);
    assert_exit(&o, 0);
    let v = stdout(&o);
    assert!(
        v.contains("[\"moby.buildkit.buildinfo.v1\"]: a property ocipack does not know"),
        "{v}"
    );
    assert!(v.contains("valid (image index: linux/arm64/v8, "), "{v}");

    // A Windows image beside a Linux one: valid, its foreign layer named as not fetched,
    // with the hosts its urls name.
    let o = run(&["verify", &at("latest")]);
    assert_exit(&o, 0);
    let v = stdout(&o);
    assert!(
        v.contains("valid (image index: linux/amd64, windows/amd64, Docker v2 media types:"),
        "{v}"
    );
    assert!(
        v.contains(&format!(
            "{}: layers[0]: a foreign layer (application/vnd.docker.image.rootfs.foreign.diff.tar.gzip), whose content is at {}, mcr.microsoft.invalid (its urls): registries do not serve foreign layers, and ocipack never fetches one",
            windows.digest(),
            foreign.host()
        )),
        "{v}"
    );
    // pull leaves it where it is, as skopeo does, and says so.
    let t = tempfile::tempdir().unwrap();
    let pulled = t.path().join("pulled");
    let o = run(&["pull", &at("latest"), s(&pulled)]);
    assert_exit(&o, 0);
    assert!(
        stderr(&o).contains(&format!(
            "foreign layer {} not fetched (its content is at {}, mcr.microsoft.invalid",
            windows.foreign[0],
            foreign.host()
        )),
        "{}",
        stderr(&o)
    );
    assert!(
        !pulled
            .join("blobs/sha256")
            .join(&windows.foreign[0][7..])
            .exists()
    );
    assert!(
        pulled
            .join("blobs/sha256")
            .join(&windows.digest()[7..])
            .exists()
    );
    let o = run(&["verify", s(&pulled)]);
    assert_exit(&o, 0);
    assert!(
        stdout(&o).contains(
            "the layout does not hold it, so its digest, diff_id and entries are not checked"
        ),
        "{}",
        stdout(&o)
    );
    // diff: the same image in the layout and in the registry; two Windows images whose
    // foreign layers differ: their diff_ids, compared without fetching either.
    let windows_amd64 = ["--platform", "windows/amd64"];
    let o = run(&[&["diff"][..], &windows_amd64, &[s(&pulled), &at("latest")]].concat());
    assert_exit(&o, 0);
    assert_eq!(stdout(&o), "");
    let o = run(&["diff", &at("windows"), &at("windows-other")]);
    assert_exit(&o, 1);
    let d = stdout(&o);
    assert!(
        d.contains("layer 0: other files (diff_id sha256:")
            && d.contains("a foreign layer, whose content is not in the registry or the layout, is never fetched"),
        "{d}"
    );
    // export needs every layer's content.
    let o = run(&[
        &["export"][..],
        &windows_amd64,
        &[
            &at("latest"),
            "--format",
            "docker-archive",
            "-o",
            s(&t.path().join("w.tar")),
        ],
    ]
    .concat());
    let e = assert_error(&o, 2);
    assert!(
        e.contains("layer 0") && e.contains("is a foreign layer"),
        "{e}"
    );
    assert!(!t.path().join("w.tar").exists());

    // Never a request outside the registry: the foreign host saw none, and no one asked the
    // registry or its CDN for a foreign layer either.
    assert!(foreign.requests().is_empty(), "{:?}", foreign.requests());
    let asked: Vec<String> = hub
        .registry
        .requests()
        .into_iter()
        .chain(hub.cdn.requests())
        .map(|r| r.path)
        .collect();
    for f in &windows.foreign {
        assert!(!asked.iter().any(|p| p.contains(&f[7..])), "{asked:?}");
    }

    // The classic image pulled: a Docker layout, valid; the oci-import profile refuses it,
    // its Docker manifest and each property bashbrew's strict decoder does not know.
    let layout = t.path().join("classic");
    assert_exit(&run(&["pull", &at("classic"), s(&layout)]), 0);
    let o = run(&["verify", "--profile", "oci-import", s(&layout)]);
    assert_exit(&o, 1);
    let v = stdout(&o);
    assert!(v.contains("[bashbrew]: a Docker v2 manifest"), "{v}");
    assert!(
        v.contains(": container_config: [bashbrew]: a property bashbrew does not know"),
        "{v}"
    );
    assert_eq!(
        std::fs::read(layout.join("image-config.json")).unwrap(),
        classic.config,
        "the config is not kept byte for byte"
    );
    assert_exit(&run(&["diff", s(&layout), &at("classic")]), 0);
}

/// `skopeo copy --preserve-digests [--all] docker://REF oci:OUT` from a plain-HTTP registry.
fn skopeo_copy(reference: &str, out: &Path, all: bool) {
    let (src, dst) = (
        format!("docker://{reference}"),
        format!("oci:{}", out.display()),
    );
    let mut args = vec!["copy", "-q", "--preserve-digests", "--src-tls-verify=false"];
    if all {
        args.push("--all");
    }
    args.extend([src.as_str(), dst.as_str()]);
    common::skopeo(&args);
}

/// The only descriptor of a layout's index.json.
fn top(layout: &Path) -> serde_json::Value {
    let index = json_file(&layout.join("index.json"));
    let m = index["manifests"].as_array().unwrap();
    assert_eq!(m.len(), 1, "{index}");
    m[0].clone()
}

#[test]
fn images_as_docker_hub_serves_them_from_a_real_registry_pull_as_skopeo_copies_them() {
    if !require_tools(&["docker-registry", "skopeo"]) {
        return;
    }
    let foreign = foreign_host();
    let reg = Registry::start_allowing_foreign_layers();
    let host = reg.host();
    let t = tempfile::tempdir().unwrap();
    let (served, _, buildkit, windows) = fixtures(&foreign.host());
    served.push(&host, "served", t.path());
    let reference = |tag: &str| format!("{host}/served:{tag}");

    for tag in ["classic", "buildkit", "windows", "latest"] {
        let o = run(&["verify", &format!("docker://{}", reference(tag))]);
        assert_exit(&o, 0);
        assert!(stdout(&o).contains(": valid ("), "{tag}: {}", stdout(&o));
    }
    // Single manifests and an OCI index: the same blobs and digests as skopeo's copy, the
    // foreign layer in neither.
    for (tag, all) in [("classic", false), ("windows", false), ("buildkit", true)] {
        let ours = t.path().join(format!("ours-{tag}"));
        let o = run(&["pull", &reference(tag), s(&ours)]);
        assert_exit(&o, 0);
        let theirs = t.path().join(format!("skopeo-{tag}"));
        skopeo_copy(&reference(tag), &theirs, all);
        let (a, b) = (
            snapshot(&ours.join("blobs")),
            snapshot(&theirs.join("blobs")),
        );
        assert_eq!(
            a.keys().collect::<Vec<_>>(),
            b.keys().collect::<Vec<_>>(),
            "{tag}: the blob sets differ"
        );
        assert!(a == b, "{tag}: a blob's bytes differ");
        assert_eq!(top(&ours)["digest"], top(&theirs)["digest"], "{tag}");
        assert_eq!(top(&ours)["mediaType"], top(&theirs)["mediaType"], "{tag}");
        assert_exit(&run(&["verify", s(&ours)]), 0);
    }
    assert_eq!(
        top(&t.path().join("ours-windows"))["digest"],
        windows.digest().as_str()
    );
    assert!(
        !t.path()
            .join("ours-windows/blobs/sha256")
            .join(&windows.foreign[0][7..])
            .exists()
    );
    assert!(
        snapshot(&t.path().join("ours-buildkit/blobs"))
            .keys()
            .any(|k| k.contains(&buildkit.digest()[7..])),
        "the image of the index was not pulled"
    );
    // A Docker list with a Windows image: skopeo 1.9.3 cannot write a Docker list into a
    // layout with its digest, so the registry's own bytes are the oracle.
    let ours = t.path().join("ours-latest");
    assert_exit(&run(&["pull", &reference("latest"), s(&ours)]), 0);
    let raw = common::skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{}", reference("latest")),
    ])
    .stdout;
    assert_eq!(std::fs::read(ours.join("image-index.json")).unwrap(), raw);
    assert_eq!(top(&ours)["mediaType"], DOCKER_LIST);
    let o = run(&["verify", s(&ours)]);
    assert_exit(&o, 0);
    assert!(
        stdout(&o).contains("image index: linux/amd64, windows/amd64"),
        "{}",
        stdout(&o)
    );
    // The Windows image keeps its version in the layout's index, as the registry lists it.
    let list: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(
        list["manifests"][1]["platform"]["os.version"],
        WINDOWS_VERSION
    );

    // Nothing asked for a foreign layer: not its host, not the registry.
    assert!(foreign.requests().is_empty(), "{:?}", foreign.requests());
    assert_eq!(
        reg.requests("GET", &format!("/v2/served/blobs/{}", windows.foreign[0])),
        0
    );
    assert_eq!(sha256(&raw), top(&ours)["digest"].as_str().unwrap());
}
