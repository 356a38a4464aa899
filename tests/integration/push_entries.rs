//! `ocipack push DIR REPOSITORY` for a project of many images: each entry as one image
//! index under each of its tags, each shared tag as the union of the entries listing it,
//! children first and tags last; `--image` subsets; `REPOSITORY:TAG` for one entry. Against
//! Debian's real `docker-registry`, read back with skopeo, and against the in-test fake
//! registry for the order of requests.

use crate::common;

use std::path::Path;
use std::time::Duration;

use common::cli::{all, s, text};
use common::fake::{Behaviour, Fake};
use common::oci::sha256;
use common::shapes::{busybox, busybox_arches, busybox_source, busybox_tags};
use common::{
    Registry, assert_exit, index_digest, ocipack, platform_string, push, require_tools, run_bounded,
};
use serde_json::Value;

const LIMIT: Duration = Duration::from_secs(300);

/// A busybox-shaped project whose uclibc and musl entries share the tag `libc`, built.
fn built_busybox(t: &Path) -> std::path::PathBuf {
    let p = busybox(&t.join("busybox"), "");
    let toml = p.join("ocipack.toml");
    let text = std::fs::read_to_string(&toml).unwrap();
    let text = text
        .replace(
            "name = \"uclibc\"\n",
            "name = \"uclibc\"\nshared-tags = [\"libc\"]\n",
        )
        .replace(
            "name = \"musl\"\n",
            "name = \"musl\"\nshared-tags = [\"libc\"]\n",
        );
    std::fs::write(&toml, text).unwrap();
    let o = run_bounded(ocipack().args(["build", s(&p)]), LIMIT);
    assert_exit(&o, 0);
    p
}

/// The index an entry's tags must resolve to: per architecture (bashbrew's order), the
/// manifest digest of the layout it uses, and its platform.
fn expected(p: &Path, variant: Option<&str>) -> Vec<(String, String)> {
    busybox_arches(variant)
        .into_iter()
        .map(|a| {
            let source = variant.unwrap_or_else(|| busybox_source(a));
            let digest = index_digest(&p.join("latest").join(source).join(a));
            (digest, a.to_string())
        })
        .collect()
}

/// The union of uclibc and musl for `libc`: every architecture, uclibc's layout where it
/// has it (it comes first in the file), musl's for arm32v6, ppc64le and s390x.
fn expected_libc(p: &Path) -> Vec<(String, String)> {
    common::shapes::BUSYBOX_ARCHES
        .iter()
        .map(|a| {
            let source = if busybox_arches(Some("uclibc")).contains(a) {
                "uclibc"
            } else {
                "musl"
            };
            (
                index_digest(&p.join("latest").join(source).join(a)),
                a.to_string(),
            )
        })
        .collect()
}

/// `(digest, bashbrew arch)` of each manifest an image index lists, in its order.
type Listed = Vec<(String, String)>;

/// `(digest, bashbrew arch)` of each manifest an image index lists, in its order.
fn listed(index: &Value) -> Vec<(String, String)> {
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let platform = platform_string(&m["platform"]);
            let arch = match platform.as_str() {
                "linux/amd64" => "amd64",
                "linux/arm/v5" => "arm32v5",
                "linux/arm/v6" => "arm32v6",
                "linux/arm/v7" => "arm32v7",
                "linux/arm64/v8" => "arm64v8",
                "linux/386" => "i386",
                "linux/ppc64le" => "ppc64le",
                "linux/riscv64" => "riscv64",
                "linux/s390x" => "s390x",
                other => panic!("unexpected platform {other}"),
            };
            (m["digest"].as_str().unwrap().to_string(), arch.to_string())
        })
        .collect()
}

/// The raw manifest `reference` resolves to, through skopeo; `None` if it does not.
fn raw(reference: &str) -> Option<Vec<u8>> {
    let o = std::process::Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{reference}"))
        .output()
        .unwrap();
    o.status.success().then_some(o.stdout)
}

#[test]
fn every_tag_and_shared_tag_resolves_to_its_entrys_index() {
    if !require_tools(&["docker-registry", "skopeo"]) {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let p = built_busybox(t.path());
    let reg = Registry::start();
    let repo = format!("{}/library/busybox", reg.host());

    let o = push(&[s(&p), &repo]);
    assert_exit(&o, 0);
    // One line per index: its digest, then its tags.
    let printed: Vec<(String, Vec<String>)> = text(&o.stdout)
        .lines()
        .map(|l| {
            let mut f = l.split(' ');
            let d = f.next().unwrap().to_string();
            (d, f.map(String::from).collect())
        })
        .collect();
    assert_eq!(printed.len(), 5, "{}", all(&o));
    let mut cases: Vec<(Option<&str>, Vec<String>, Listed)> = Vec::new();
    for v in [Some("glibc"), Some("uclibc"), Some("musl"), None] {
        cases.push((v, busybox_tags(v), expected(&p, v)));
    }
    cases.push((None, vec!["libc".to_string()], expected_libc(&p)));
    for (i, (v, tags, want)) in cases.iter().enumerate() {
        assert_eq!(printed[i].1, *tags, "{v:?}: {}", all(&o));
        for tag in tags {
            let bytes = raw(&format!("{repo}:{tag}")).unwrap_or_else(|| panic!("{tag} missing"));
            assert_eq!(sha256(&bytes), printed[i].0, "{tag}: the printed digest");
            let index: Value = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(
                index["mediaType"], "application/vnd.oci.image.index.v1+json",
                "{tag}"
            );
            assert_eq!(listed(&index), *want, "{tag}");
        }
    }
    // Each layout once: 8 glibc + 6 uclibc + 8 musl manifests, put by digest; the
    // unsuffixed entry and the shared tag reuse them.
    assert_eq!(
        reg.requests("PUT", "/v2/library/busybox/manifests/sha256:"),
        22,
        "{}",
        reg.log()
    );
    assert_eq!(
        reg.requests("PUT", "/v2/library/busybox/manifests/"),
        22 + 4 * 4 + 1
    );

    // --image musl into another repository: musl's tags only; the shared tag, also listed
    // by uclibc, is not pushed with part of its images, and the output says so.
    let repo2 = format!("{}/subset/busybox", reg.host());
    let o = push(&[s(&p), &repo2, "--image", "musl", "--json"]);
    assert_exit(&o, 0);
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["repository"], repo2);
    assert_eq!(report["indexes"].as_array().unwrap().len(), 1);
    assert_eq!(report["indexes"][0]["images"], serde_json::json!(["musl"]));
    assert_eq!(
        report["indexes"][0]["tags"],
        serde_json::json!(busybox_tags(Some("musl")))
    );
    assert_eq!(report["manifests"].as_array().unwrap().len(), 8);
    assert_eq!(report["skipped"][0]["tag"], "libc");
    assert!(
        report["skipped"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("uclibc"),
        "{report}"
    );
    for tag in busybox_tags(Some("musl")) {
        let index: Value =
            serde_json::from_slice(&raw(&format!("{repo2}:{tag}")).unwrap()).unwrap();
        assert_eq!(listed(&index), expected(&p, Some("musl")), "{tag}");
    }
    for tag in ["glibc", "latest", "libc", "uclibc"] {
        assert!(raw(&format!("{repo2}:{tag}")).is_none(), "{tag} was pushed");
    }

    // --image default (a from entry) with --arch: its tags list the layouts it resolves to,
    // of the selected architectures only.
    let repo3 = format!("{}/arches/busybox", reg.host());
    let o = push(&[
        s(&p),
        &repo3,
        "--image",
        "default",
        "--arch",
        "arm32v6",
        "--arch",
        "amd64",
    ]);
    assert_exit(&o, 0);
    let index: Value = serde_json::from_slice(&raw(&format!("{repo3}:latest")).unwrap()).unwrap();
    assert_eq!(
        listed(&index),
        vec![
            (index_digest(&p.join("latest/glibc/amd64")), "amd64".into()),
            (
                index_digest(&p.join("latest/musl/arm32v6")),
                "arm32v6".into()
            ),
        ]
    );
}

#[test]
fn children_first_tags_last_and_one_entry_under_a_tag_of_ones_own() {
    let t = tempfile::tempdir().unwrap();
    let p = built_busybox(t.path());
    let fake = Fake::start(Behaviour::default());
    let repo = format!("127.0.0.1:{}/hello", fake.port);
    let o = push(&[s(&p), &repo]);
    assert_exit(&o, 0);
    let puts: Vec<String> = fake
        .requests()
        .iter()
        .filter(|r| r.method == "PUT" && r.path.starts_with("/v2/hello/manifests/"))
        .map(|r| r.path["/v2/hello/manifests/".len()..].to_string())
        .collect();
    let children = puts.iter().filter(|x| x.starts_with("sha256:")).count();
    assert_eq!(children, 22);
    assert!(
        puts[..children].iter().all(|x| x.starts_with("sha256:")),
        "a tag before a child: {puts:?}"
    );
    let mut tags: Vec<String> = Vec::new();
    for v in [Some("glibc"), Some("uclibc"), Some("musl"), None] {
        tags.extend(busybox_tags(v));
    }
    tags.push("libc".into());
    assert_eq!(puts[children..], tags[..]);
    // REPOSITORY:TAG needs one image; --also-tag needs REPOSITORY:TAG.
    let o = push(&[s(&p), &format!("{repo}:x")]);
    assert_exit(&o, 2);
    assert!(
        all(&o).contains("name the one to push")
            && all(&o).contains("glibc, uclibc, musl, default"),
        "{}",
        all(&o)
    );
    let o = push(&[s(&p), &repo, "--also-tag", "x"]);
    assert_exit(&o, 2);
    assert!(all(&o).contains("--also-tag adds tags"), "{}", all(&o));
    let o = push(&[s(&p), &repo, "--image", "nope"]);
    assert_exit(&o, 2);
    assert!(all(&o).contains("--image nope"), "{}", all(&o));
    let o = push(&[s(&p), &repo, "--image", "uclibc", "--arch", "s390x"]);
    assert_exit(&o, 2);
    assert!(
        all(&o).contains("none of these architectures"),
        "{}",
        all(&o)
    );

    // One image under a tag of one's own: uclibc's six layouts as `x` and `y`.
    let fake = Fake::start(Behaviour::default());
    let o = push(&[
        s(&p),
        &format!("127.0.0.1:{}/hello:x", fake.port),
        "--image",
        "uclibc",
        "--also-tag",
        "y",
    ]);
    assert_exit(&o, 0);
    let st = fake.state.lock().unwrap();
    let index: Value = serde_json::from_slice(&st.manifests["x"]).unwrap();
    assert_eq!(listed(&index), expected(&p, Some("uclibc")));
    assert_eq!(st.manifests["x"], st.manifests["y"]);
    assert_eq!(sha256(&st.manifests["x"]), text(&o.stdout).trim());
    assert_eq!(st.manifests.len(), 6 + 2);
    drop(st);

    // A missing layout: every missing one named, nothing sent.
    std::fs::remove_dir_all(p.join("latest/musl/arm32v6")).unwrap();
    let fake = Fake::start(Behaviour::default());
    let o = push(&[s(&p), &format!("127.0.0.1:{}/hello", fake.port)]);
    assert_exit(&o, 2);
    assert!(
        all(&o).contains("musl arm32v6 (latest/musl/arm32v6)"),
        "{}",
        all(&o)
    );
    assert!(fake.requests().is_empty());
}
