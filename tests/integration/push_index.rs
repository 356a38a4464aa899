//! `ocipack push DIR REFERENCE` for a project: every architecture's image, then one image
//! index. Against Debian's real `docker-registry`, read back with skopeo and run with podman
//! per platform; against the in-test fake registry for order, failures in the middle and a
//! registry that stores the index under another digest; and hostile projects (missing,
//! stale, invalid, corrupt or multi-platform layouts), refused before anything is sent.

use crate::common;

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::cli::{all, s, text};
use common::fake::{Behaviour, Fake};
use common::oci::{json_file, sha256};
use common::{
    HELLO_ARCHES, Podman, Registry, assert_exit, copy_hello_world, hello_index_entries,
    index_digest, ocipack, platform_string, push, require_tools, run_bounded, skopeo,
};
use serde_json::Value;

const LIMIT: Duration = Duration::from_secs(300);

/// The manifest digest of the committed layout of `arch` in the project at `p`.
fn manifest_of(p: &Path, arch: &str) -> String {
    index_digest(&p.join(arch).join("oci"))
}

#[test]
fn a_project_becomes_one_index_that_skopeo_reads_and_podman_runs_per_platform() {
    if !require_tools(&["docker-registry", "skopeo", "podman", "runc"]) {
        return;
    }
    let reg = Registry::start();
    let t = tempfile::tempdir().unwrap();
    let p = copy_hello_world(&t.path().join("hw"));
    let reference = format!("{}/hello/multi:latest", reg.host());

    let o = push(&[s(&p), &reference, "--also-tag", "v1"]);
    assert_exit(&o, 0);
    let digest = text(&o.stdout).trim().to_string();
    assert!(
        text(&o.stderr).contains("(10 platforms)")
            && text(&o.stderr).contains("10 manifests put, 0 already present"),
        "{}",
        all(&o)
    );

    // The index, as the registry serves it: the printed digest, canonical JSON, ten
    // platforms in bashbrew's order, each the committed layout's manifest.
    for tag in ["latest", "v1"] {
        let raw = skopeo(&[
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{}/hello/multi:{tag}", reg.host()),
        ]);
        assert_eq!(sha256(&raw.stdout), digest, "{tag}");
    }
    let raw = skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{reference}"),
    ])
    .stdout;
    let index: Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(raw, serde_json::to_vec(&index).unwrap(), "canonical JSON");
    assert_eq!(index["schemaVersion"], 2);
    assert_eq!(
        index["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    for (arch, m) in hello_index_entries(&index) {
        assert_eq!(
            m["digest"].as_str().unwrap(),
            manifest_of(&p, arch),
            "{arch}"
        );
        assert_eq!(
            m["mediaType"], "application/vnd.oci.image.manifest.v1+json",
            "{arch}"
        );
        assert!(m.get("annotations").is_none(), "{arch}");
    }
    // One child, byte for byte the layout's manifest blob.
    let i386 = manifest_of(&p, "i386");
    let raw = skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{}/hello/multi@{i386}", reg.host()),
    ]);
    assert_eq!(
        raw.stdout,
        fs::read(p.join("i386/oci/image-manifest.json")).unwrap()
    );
    // The same index as `build --index` stores.
    let out = t.path().join("index");
    let o = run_bounded(ocipack().args(["build", "--index", s(&out), s(&p)]), LIMIT);
    assert_exit(&o, 0);
    assert_eq!(
        json_file(&out.join("index.json"))["manifests"][0]["digest"],
        digest.as_str()
    );

    // podman pulls the platform it is asked for.
    let podman = Podman::new();
    podman.assert_hello_runs_per_platform(&reference, &["--tls-verify=false"]);

    // Again: every blob and every manifest is found, nothing is uploaded; only the index
    // is put again under its tag.
    let posts = reg.requests("POST", "/v2/hello/multi/blobs/uploads");
    let children = reg.requests("PUT", "/v2/hello/multi/manifests/sha256:");
    assert_eq!(posts, 20, "one upload per blob\n{}", reg.log());
    assert_eq!(children, 10, "one put per manifest\n{}", reg.log());
    let o = push(&[s(&p), &reference, "--json"]);
    assert_exit(&o, 0);
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["digest"], digest.as_str());
    assert_eq!(report["tags"], serde_json::json!(["latest"]));
    let listed = report["manifests"].as_array().unwrap();
    let arches: Vec<&str> = listed.iter().map(|m| m["arch"].as_str().unwrap()).collect();
    assert_eq!(arches, HELLO_ARCHES.map(|(a, _)| a));
    for m in listed {
        assert_eq!(m["uploaded"], false, "{m}");
        assert_eq!(
            m["digest"].as_str().unwrap(),
            manifest_of(&p, m["arch"].as_str().unwrap())
        );
        assert_eq!(m["blobs"].as_array().unwrap().len(), 2);
        assert!(
            m["blobs"]
                .as_array()
                .unwrap()
                .iter()
                .all(|b| b["uploaded"] == false)
        );
    }
    assert_eq!(reg.requests("POST", "/v2/hello/multi/blobs/uploads"), posts);
    assert_eq!(reg.requests("PATCH", "/v2/hello/multi/blobs/uploads"), 0);
    assert_eq!(
        reg.requests("PUT", "/v2/hello/multi/manifests/sha256:"),
        children
    );
    assert_eq!(
        reg.requests("HEAD", "/v2/hello/multi/manifests/sha256:"),
        20
    );
}

/// A project copy and the fake registry's reference for it.
fn fake_project() -> (tempfile::TempDir, std::path::PathBuf) {
    let t = tempfile::tempdir().unwrap();
    let p = copy_hello_world(&t.path().join("hw"));
    (t, p)
}

fn fake_ref(fake: &Fake) -> String {
    format!("127.0.0.1:{}/hello:v1", fake.port)
}

#[test]
fn children_by_digest_first_the_index_last_and_a_failure_leaves_no_tag() {
    let (_t, p) = fake_project();

    // Success: each image's blobs, then its manifest by digest; the index under the tags
    // only after every child, as the very last requests.
    let fake = Fake::start(Behaviour::default());
    let o = push(&[s(&p), &fake_ref(&fake), "--also-tag", "latest"]);
    assert_exit(&o, 0);
    let reqs = fake.requests();
    let puts: Vec<&str> = reqs
        .iter()
        .filter(|r| r.method == "PUT" && r.path.starts_with("/v2/hello/manifests/"))
        .map(|r| &r.path["/v2/hello/manifests/".len()..])
        .collect();
    let mut want: Vec<String> = HELLO_ARCHES
        .iter()
        .map(|(a, _)| manifest_of(&p, a))
        .collect();
    want.push("v1".into());
    want.push("latest".into());
    assert_eq!(puts, want);
    let last: Vec<&str> = reqs[reqs.len() - 2..]
        .iter()
        .map(|r| r.path.as_str())
        .collect();
    assert_eq!(
        last,
        ["/v2/hello/manifests/v1", "/v2/hello/manifests/latest"]
    );
    for (arch, _) in HELLO_ARCHES {
        let m = manifest_of(&p, arch);
        let put = reqs.iter().position(|r| r.path.ends_with(&m)).unwrap();
        let layout = json_file(&p.join(arch).join("oci/image-manifest.json"));
        for d in [&layout["config"]["digest"], &layout["layers"][0]["digest"]] {
            let d = d.as_str().unwrap();
            let blob = reqs
                .iter()
                .position(|r| r.path.contains(&d.replace(':', "%3A")) || r.path.contains(d))
                .unwrap_or_else(|| panic!("{arch}: {d} never sent"));
            assert!(blob < put, "{arch}: blob {d} after its manifest");
        }
    }
    let st = fake.state.lock().unwrap();
    assert_eq!(
        sha256(&st.manifests["v1"]),
        text(&o.stdout).trim(),
        "the printed digest is the index's"
    );
    drop(st);

    // The registry refuses one child (i386, the sixth): nothing is tagged, the children
    // after it are not sent, and the error names the step.
    let i386 = manifest_of(&p, "i386");
    let path = Box::leak(format!("manifests/{i386}").into_boxed_str());
    let fake = Fake::start(Behaviour {
        fail: Some(("PUT", path, 500)),
        ..Behaviour::default()
    });
    let o = push(&[s(&p), &fake_ref(&fake), "--also-tag", "latest"]);
    assert_exit(&o, 1);
    assert!(
        all(&o).contains(&format!("pushing manifest {i386}")),
        "{}",
        all(&o)
    );
    let st = fake.state.lock().unwrap();
    let names: Vec<&String> = st.manifests.keys().collect();
    assert_eq!(names.len(), 5, "amd64 … arm64v8 only: {names:?}");
    assert!(names.iter().all(|n| n.starts_with("sha256:")), "{names:?}");
    drop(st);

    // A blob that is corrupt on disk: the project is verified whole before anything is
    // sent, so nothing is.
    let layer = json_file(&p.join("s390x/oci/image-manifest.json"))["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let blob = p.join("s390x/oci/blobs/sha256").join(&layer[7..]);
    let mut bytes = fs::read(&blob).unwrap();
    let n = bytes.len();
    bytes[n - 1] ^= 1;
    fs::write(&blob, bytes).unwrap();
    let fake = Fake::start(Behaviour::default());
    let o = push(&[s(&p), &fake_ref(&fake)]);
    assert_exit(&o, 2);
    assert!(
        all(&o).contains("s390x/oci: is not a valid layout") && all(&o).contains(&layer[7..]),
        "{}",
        all(&o)
    );
    assert!(fake.requests().is_empty());
}

#[test]
fn an_index_stored_under_another_digest_is_an_error() {
    let (_t, p) = fake_project();
    let fake = Fake::start(Behaviour {
        rewrite_index: true,
        ..Behaviour::default()
    });
    let o = push(&[s(&p), &fake_ref(&fake)]);
    assert_exit(&o, 1);
    let rewritten = sha256(b"rewritten");
    assert!(
        all(&o).contains(&format!(
            "the registry stored the manifest as {rewritten}, not as sha256:"
        )),
        "{}",
        all(&o)
    );
    // The children were stored as they are (their digests were not rewritten).
    let st = fake.state.lock().unwrap();
    assert_eq!(st.manifests.len(), 11);
}

#[test]
fn architecture_subsets_and_the_json_report() {
    let (_t, p) = fake_project();
    let fake = Fake::start(Behaviour::default());
    // Given out of order and twice: the index lists each once, in bashbrew's order.
    let o = push(&[
        s(&p),
        &fake_ref(&fake),
        "--arch",
        "i386",
        "--arch",
        "amd64",
        "--arch",
        "i386",
        "--json",
    ]);
    assert_exit(&o, 0);
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        report["repository"],
        format!("127.0.0.1:{}/hello", fake.port)
    );
    assert_eq!(
        report["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    let listed = report["manifests"].as_array().unwrap();
    let got: Vec<(&str, String)> = listed
        .iter()
        .map(|m| (m["arch"].as_str().unwrap(), platform_string(&m["platform"])))
        .collect();
    assert_eq!(
        got,
        [
            ("amd64", "linux/amd64".into()),
            ("i386", "linux/386".into())
        ]
    );
    assert!(listed.iter().all(|m| m["uploaded"] == true));
    let st = fake.state.lock().unwrap();
    let index: Value = serde_json::from_slice(&st.manifests["v1"]).unwrap();
    assert_eq!(index["manifests"].as_array().unwrap().len(), 2);
    assert_eq!(report["size"], st.manifests["v1"].len());
}

#[test]
fn missing_stale_invalid_and_multi_platform_layouts_are_refused_before_anything_is_sent() {
    let fake = Fake::start(Behaviour::default());
    let reference = fake_ref(&fake);
    let t = tempfile::tempdir().unwrap();
    let fresh = |name: &str| copy_hello_world(&t.path().join(name));
    let refused = |p: &Path, extra: &[&str], want: &str| {
        let mut args = vec![s(p), reference.as_str()];
        args.extend(extra);
        let o = push(&args);
        assert_exit(&o, 2);
        assert!(all(&o).contains(want), "{want:?} not in:\n{}", all(&o));
    };

    // Missing layouts: every one listed, with what to do.
    let p = fresh("missing");
    fs::remove_dir_all(p.join("i386/oci")).unwrap();
    fs::remove_dir_all(p.join("s390x/oci")).unwrap();
    refused(
        &p,
        &[],
        "no layout for 2 of the project's architectures: i386 (i386/oci), s390x (s390x/oci); \
         `ocipack build` writes them, or push only those that exist with --arch",
    );
    // ... unless only existing ones are selected.
    let o = push(&[s(&p), &reference, "--arch", "amd64"]);
    assert_exit(&o, 0);
    let before = fake.requests().len();

    // Stale: another architecture's layout in i386's place.
    let p = fresh("stale");
    fs::remove_dir_all(p.join("i386/oci")).unwrap();
    Command::new("cp")
        .arg("-a")
        .arg(p.join("amd64/oci"))
        .arg(p.join("i386/oci"))
        .status()
        .unwrap();
    refused(
        &p,
        &[],
        "the image is linux/amd64, but the architecture i386 of",
    );

    // Invalid: a config blob that does not hash to its name.
    let p = fresh("invalid");
    let config = json_file(&p.join("arm32v7/oci/image-manifest.json"))["config"]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    fs::write(
        p.join("arm32v7/oci/blobs/sha256").join(&config[7..]),
        b"{\"architecture\":\"arm\"}",
    )
    .unwrap();
    refused(&p, &[], "layout");
    refused(&p, &[], "is not a valid layout");

    // An architecture's layout that is itself a multi-platform layout.
    let p = fresh("multi");
    let o = run_bounded(
        ocipack().args([
            "build",
            "--index",
            s(&t.path().join("idx")),
            s(&p),
            "--arch",
            "ppc64le",
        ]),
        LIMIT,
    );
    assert_exit(&o, 0);
    fs::remove_dir_all(p.join("ppc64le/oci")).unwrap();
    fs::rename(t.path().join("idx"), p.join("ppc64le/oci")).unwrap();
    refused(
        &p,
        &[],
        "is a multi-platform layout (an image index of 1 manifests), not the single image of ppc64le",
    );

    // ... or lists two manifests in its index.json (skopeo and podman refuse that form).
    let p = fresh("flat");
    let index = p.join("arm32v5/oci/index.json");
    let mut v = json_file(&index);
    let other = json_file(&p.join("arm32v6/oci/index.json"))["manifests"][0].clone();
    v["manifests"].as_array_mut().unwrap().push(other);
    fs::write(&index, serde_json::to_vec(&v).unwrap()).unwrap();
    for b in fs::read_dir(p.join("arm32v6/oci/blobs/sha256")).unwrap() {
        let b = b.unwrap().path();
        fs::copy(
            &b,
            p.join("arm32v5/oci/blobs/sha256")
                .join(b.file_name().unwrap()),
        )
        .unwrap();
    }
    refused(&p, &[], "lists 2 manifests");

    // An output reached through a symlink is never read.
    let p = fresh("symlinked");
    fs::rename(p.join("riscv64/oci"), p.join("riscv64/real")).unwrap();
    std::os::unix::fs::symlink("real", p.join("riscv64/oci")).unwrap();
    refused(&p, &[], "is a symlink");

    // Windows has no layout; unknown architectures; --arch without a project.
    let p = fresh("flags");
    refused(
        &p,
        &["--arch", "windows-amd64"],
        "Windows images are Dockerfile builds",
    );
    refused(&p, &["--arch", "sparc"], "--arch sparc:");
    refused(
        &p.join("amd64/oci"),
        &["--arch", "amd64"],
        "holds no ocipack.toml",
    );
    // A reference naming another digest than the index's.
    let wrong = format!("127.0.0.1:{}/hello@{}", fake.port, sha256(b"x"));
    let o = push(&[s(&p), &wrong]);
    assert_exit(&o, 2);
    assert!(all(&o).contains("but the image index is"), "{}", all(&o));

    assert_eq!(
        fake.requests().len(),
        before,
        "nothing sent for a refused project"
    );
}

#[test]
fn layouts_are_pushed_as_they_are_on_disk_and_platforms_come_from_configs_when_entries_lack_them() {
    let (_t, p) = fake_project();
    // A stale layout: the input changed after the build. push reads no input and rebuilds
    // nothing: it pushes the layout on disk; `build --check` is what proves layouts current.
    fs::copy(p.join("i386/hello"), p.join("amd64/hello")).unwrap();
    let o = run_bounded(
        ocipack().args(["build", "--check", s(&p), "--arch", "amd64"]),
        LIMIT,
    );
    assert_exit(&o, 1);
    // An index entry without a platform (another tool's layout): the config's is used.
    let index = p.join("mips64le/oci/index.json");
    let mut v = json_file(&index);
    v["manifests"][0]
        .as_object_mut()
        .unwrap()
        .remove("platform");
    fs::write(&index, serde_json::to_vec(&v).unwrap()).unwrap();

    let fake = Fake::start(Behaviour::default());
    let o = push(&[s(&p), &fake_ref(&fake), "--json"]);
    assert_exit(&o, 0);
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    let amd64 = &report["manifests"][0];
    assert_eq!(amd64["arch"], "amd64");
    assert_eq!(amd64["digest"].as_str().unwrap(), manifest_of(&p, "amd64"));
    let st = fake.state.lock().unwrap();
    let pushed: Value = serde_json::from_slice(&st.manifests["v1"]).unwrap();
    let mips = &pushed["manifests"][6];
    assert_eq!(
        mips["digest"].as_str().unwrap(),
        manifest_of(&p, "mips64le")
    );
    assert_eq!(platform_string(&mips["platform"]), "linux/mips64le");
}
