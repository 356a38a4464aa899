//! Images as registries serve them, Docker Hub's shapes, written byte for byte: an image of
//! Docker's classic builder (its config with `container_config`, `docker_version`,
//! `container`, `config.Hostname`, …), one of BuildKit (history with `empty_layer`,
//! `moby.buildkit.buildinfo.v1`, and an OCI index with an attestation manifest beside the
//! image), and a Windows image whose base layer is foreign (its content at `urls` on a host
//! no registry serves, the shape Microsoft's images had), listed with the classic Linux
//! image in a Docker manifest list as hello-world's `latest` lists Windows beside Linux.
//!
//! [`Served`] is what a registry holds for them: tags, the manifests below them, and the
//! blobs, never a foreign layer's. [`Served::on_hub`] puts it on the fake Docker Hub
//! ([`super::fake::Hub`]); [`Served::push`] pushes it to a real registry with skopeo, from
//! layouts written here (`--preserve-digests`: the registry serves these very bytes).

use std::path::Path;

use serde_json::{Value, json};

use super::fake::Hub;
use super::oci::{INDEX, MANIFEST, put_blob, sha256};
use super::tar::{tar_file, tar_of};

/// Docker's v2 manifest list.
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker's v2 manifest.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker's image config.
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// Docker's gzip layer.
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// Docker's foreign layer.
pub const FOREIGN_LAYER: &str = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
/// The OCI config type BuildKit gives attestation manifests, and their in-toto layers.
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const IN_TOTO: &str = "application/vnd.in-toto+json";

/// The Windows version of the fixtures (`os.version` of the config and of the list entry).
pub const WINDOWS_VERSION: &str = "10.0.17763.5122";

/// A gzip layer holding `files` (each a regular file), and its diff_id.
pub fn layer(files: &[(&str, &[u8])]) -> (Vec<u8>, String) {
    use std::io::Write as _;
    let members: Vec<Vec<u8>> = files
        .iter()
        .map(|(n, d)| tar_file(n.as_bytes(), d))
        .collect();
    let tar = tar_of(&members);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&tar).unwrap();
    (gz.finish().unwrap(), sha256(&tar))
}

/// A descriptor of `bytes`.
fn descriptor(media_type: &str, bytes: &[u8]) -> Value {
    json!({"mediaType": media_type, "digest": sha256(bytes), "size": bytes.len()})
}

/// JSON as a registry holds it (serde_json's compact form; not ocipack's canonical one).
fn bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap()
}

/// One image: its manifest (and media type), its platform as an index lists it, the blobs
/// a registry holds for it (config and layers), and its foreign layers' digests.
#[derive(Clone)]
pub struct Image {
    /// The manifest's media type.
    pub media_type: &'static str,
    /// The manifest's bytes.
    pub manifest: Vec<u8>,
    /// The platform an index lists it with.
    pub platform: Value,
    /// The config's bytes.
    pub config: Vec<u8>,
    /// The layers a registry holds.
    pub layers: Vec<Vec<u8>>,
    /// The digests of its foreign layers (no blob of them anywhere).
    pub foreign: Vec<String>,
}

impl Image {
    /// Its manifest's digest.
    pub fn digest(&self) -> String {
        sha256(&self.manifest)
    }

    /// An index's descriptor of it.
    fn entry(&self) -> Value {
        let mut d = descriptor(self.media_type, &self.manifest);
        d["platform"] = self.platform.clone();
        d
    }
}

/// An image Docker's classic builder made (`docker build`, Docker 20.10): a Docker v2
/// manifest and a config with Docker's own properties, `nop` history entries that create
/// no layer.
pub fn docker_classic() -> Image {
    let (gz, diff_id) = layer(&[("bin/busybox", b"classic busybox\n")]);
    let container = "e3b1c2a4a5f4b6d7c8e9f0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1";
    let run = |cmd: Value| {
        json!({
            "Hostname": "e3b1c2a4a5f4", "Domainname": "", "User": "",
            "AttachStdin": false, "AttachStdout": false, "AttachStderr": false,
            "Tty": false, "OpenStdin": false, "StdinOnce": false,
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": cmd,
            "Image": "sha256:4b1e4b1e4b1e4b1e4b1e4b1e4b1e4b1e4b1e4b1e4b1e4b1e4b1e4b1e4b1e4b1e",
            "Volumes": null, "WorkingDir": "", "Entrypoint": null, "OnBuild": null,
            "Labels": {}
        })
    };
    let config = bytes(&json!({
        "architecture": "amd64",
        "config": run(json!(["sh"])),
        "container": container,
        "container_config": run(json!(["/bin/sh", "-c", "#(nop) ", "CMD [\"sh\"]"])),
        "created": "2023-07-18T23:19:33.655005962Z",
        "docker_version": "20.10.23",
        "history": [
            {"created": "2023-07-18T23:19:33.538571854Z",
             "created_by": "/bin/sh -c #(nop) ADD file:7e9002edaafd4e4579b65c8f0aaabde1aeb7fd3f8d95579f7fd3443cef785fd1 in / "},
            {"created": "2023-07-18T23:19:33.655005962Z",
             "created_by": "/bin/sh -c #(nop)  CMD [\"sh\"]", "empty_layer": true}
        ],
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [diff_id]}
    }));
    let manifest = bytes(&json!({
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": descriptor(DOCKER_CONFIG, &config),
        "layers": [descriptor(DOCKER_LAYER, &gz)]
    }));
    Image {
        media_type: DOCKER_MANIFEST,
        manifest,
        platform: json!({"architecture": "amd64", "os": "linux"}),
        config,
        layers: vec![gz],
        foreign: Vec::new(),
    }
}

/// An image BuildKit made (`docker buildx build`): an OCI manifest, a config whose history
/// marks the steps that create no layer and carries `moby.buildkit.buildinfo.v1`.
pub fn buildkit() -> Image {
    let (gz, diff_id) = layer(&[("hello", b"built by buildkit\n")]);
    let config = bytes(&json!({
        "architecture": "arm64",
        "variant": "v8",
        "config": {"Cmd": ["/hello"], "WorkingDir": "/", "ArgsEscaped": true,
                   "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
        "created": "2023-05-02T16:49:27Z",
        "history": [
            {"created": "2023-05-02T16:49:27Z", "created_by": "COPY hello / # buildkit",
             "comment": "buildkit.dockerfile.v0"},
            {"created": "2023-05-02T16:49:27Z", "created_by": "CMD [\"/hello\"]",
             "comment": "buildkit.dockerfile.v0", "empty_layer": true}
        ],
        "moby.buildkit.buildinfo.v1": "eyJmcm9udGVuZCI6ImRvY2tlcmZpbGUudjAiLCJzb3VyY2VzIjpbXX0=",
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [diff_id]}
    }));
    let manifest = bytes(&json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": descriptor(OCI_CONFIG, &config),
        "layers": [descriptor(OCI_LAYER, &gz)]
    }));
    Image {
        media_type: MANIFEST,
        manifest,
        platform: json!({"architecture": "arm64", "os": "linux", "variant": "v8"}),
        config,
        layers: vec![gz],
        foreign: Vec::new(),
    }
}

/// BuildKit's attestation manifest about `image` (provenance, in-toto), and its blobs.
fn attestation(image: &Image) -> (Value, Vec<u8>, Vec<Vec<u8>>) {
    let statement = bytes(&json!({
        "_type": "https://in-toto.io/Statement/v0.1",
        "predicateType": "https://slsa.dev/provenance/v0.2",
        "subject": [{"name": "pkg:docker/hello", "digest": {"sha256": &image.digest()[7..]}}],
        "predicate": {"builder": {"id": ""}, "buildType": "https://mobyproject.org/buildkit@v1"}
    }));
    let config = bytes(&json!({
        "architecture": "unknown", "os": "unknown", "config": {},
        "rootfs": {"type": "layers", "diff_ids": [sha256(&statement)]}
    }));
    let mut layer = descriptor(IN_TOTO, &statement);
    layer["annotations"] = json!({"in-toto.io/predicate-type": "https://slsa.dev/provenance/v0.2"});
    let manifest = bytes(&json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": descriptor(OCI_CONFIG, &config),
        "layers": [layer]
    }));
    let mut entry = descriptor(MANIFEST, &manifest);
    entry["annotations"] = json!({
        "vnd.docker.reference.digest": image.digest(),
        "vnd.docker.reference.type": "attestation-manifest"
    });
    entry["platform"] = json!({"architecture": "unknown", "os": "unknown"});
    (entry, manifest, vec![config, statement])
}

/// A Windows image (`windows/amd64`, [`WINDOWS_VERSION`]): a Docker manifest whose base
/// layer is foreign, its content at `urls` on `foreign_host` (and on a host that cannot
/// resolve), followed by a layer of its own. `seed` changes the foreign layer (another
/// base image).
pub fn windows(foreign_host: &str, seed: &str) -> Image {
    let (base, base_diff_id) = layer(&[(
        "Files/Windows/System32/ntdll.dll",
        format!("the base layer {seed}").as_bytes(),
    )]);
    let (own, own_diff_id) = layer(&[("Files/hello.txt", b"hello from windows\n")]);
    let config = bytes(&json!({
        "architecture": "amd64",
        "os": "windows",
        "os.version": WINDOWS_VERSION,
        "config": {"Cmd": ["cmd", "/S", "/C", "type C:\\hello.txt"], "Env": [],
                   "WorkingDir": "", "Hostname": "", "Image": ""},
        "container_config": {"Hostname": "", "Cmd": ["cmd", "/S", "/C", "#(nop) COPY hello.txt C:\\ "]},
        "created": "2023-11-14T22:13:20Z",
        "docker_version": "20.10.24",
        "history": [
            {"created": "2023-11-01T00:00:00Z", "created_by": format!("Apply image {WINDOWS_VERSION}")},
            {"created": "2023-11-14T22:13:20Z", "created_by": "cmd /S /C #(nop) COPY file:0a1b in C:\\ "}
        ],
        "rootfs": {"type": "layers", "diff_ids": [base_diff_id, own_diff_id]}
    }));
    let mut foreign = descriptor(FOREIGN_LAYER, &base);
    foreign["urls"] = json!([
        format!(
            "http://{foreign_host}/v2/windows/servercore/blobs/{}",
            sha256(&base)
        ),
        format!(
            "https://mcr.microsoft.invalid/v2/windows/servercore/blobs/{}",
            sha256(&base)
        ),
    ]);
    let manifest = bytes(&json!({
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": descriptor(DOCKER_CONFIG, &config),
        "layers": [foreign, descriptor(DOCKER_LAYER, &own)]
    }));
    Image {
        media_type: DOCKER_MANIFEST,
        manifest,
        platform: json!({"architecture": "amd64", "os": "windows", "os.version": WINDOWS_VERSION}),
        config,
        layers: vec![own],
        foreign: vec![sha256(&base)],
    }
}

/// What a registry holds: tags, every manifest below them, blobs (never a foreign layer's).
#[derive(Default)]
pub struct Served {
    /// Each tag: (tag, media type, bytes of its manifest or index).
    pub tags: Vec<(String, &'static str, Vec<u8>)>,
    /// Each manifest an index lists: (media type, bytes).
    pub manifests: Vec<(&'static str, Vec<u8>)>,
    /// Every blob held.
    pub blobs: Vec<Vec<u8>>,
}

impl Served {
    /// Serves `image` under `tag`.
    pub fn image(&mut self, tag: &str, image: &Image) {
        self.tags
            .push((tag.into(), image.media_type, image.manifest.clone()));
        self.hold(image);
    }

    fn hold(&mut self, image: &Image) {
        self.blobs.push(image.config.clone());
        self.blobs.extend(image.layers.iter().cloned());
    }

    /// Serves a Docker manifest list of `images` under `tag`; returns its bytes.
    pub fn list(&mut self, tag: &str, images: &[&Image]) -> Vec<u8> {
        let list = bytes(&json!({
            "schemaVersion": 2,
            "mediaType": DOCKER_LIST,
            "manifests": images.iter().map(|i| i.entry()).collect::<Vec<_>>()
        }));
        for i in images {
            self.manifests.push((i.media_type, i.manifest.clone()));
            self.hold(i);
        }
        self.tags.push((tag.into(), DOCKER_LIST, list.clone()));
        list
    }

    /// Serves an OCI index of `image` and BuildKit's attestation manifest about it under
    /// `tag`, as `docker buildx build --push` does; returns the index's bytes.
    pub fn with_attestation(&mut self, tag: &str, image: &Image) -> Vec<u8> {
        let (entry, manifest, blobs) = attestation(image);
        let index = bytes(&json!({
            "schemaVersion": 2,
            "mediaType": INDEX,
            "manifests": [image.entry(), entry]
        }));
        self.manifests
            .push((image.media_type, image.manifest.clone()));
        self.manifests.push((MANIFEST, manifest));
        self.blobs.extend(blobs);
        self.hold(image);
        self.tags.push((tag.into(), INDEX, index.clone()));
        index
    }

    /// Puts it all on the fake Docker Hub.
    pub fn on_hub(&self, hub: &Hub) {
        for (mt, m) in &self.manifests {
            let d = sha256(m);
            hub.put_manifest(&d, mt, m);
        }
        for (tag, mt, m) in &self.tags {
            hub.put_manifest(tag, mt, m);
        }
        for b in &self.blobs {
            hub.put_blob(b);
        }
    }

    /// Pushes it all to the registry `host` (plain HTTP) as `repository:TAG`, with skopeo
    /// from a layout per tag written in `scratch` (skopeo skips foreign layers, as the
    /// registry holds none; `--preserve-digests`: the registry serves these bytes).
    pub fn push(&self, host: &str, repository: &str, scratch: &Path) {
        for (tag, mt, top) in &self.tags {
            let dir = scratch.join(format!("push-{tag}"));
            for b in self
                .blobs
                .iter()
                .chain(self.manifests.iter().map(|(_, m)| m))
            {
                put_blob(&dir, b);
            }
            put_blob(&dir, top);
            std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
            let index = json!({"schemaVersion": 2, "manifests": [descriptor(mt, top)]});
            std::fs::write(dir.join("index.json"), bytes(&index)).unwrap();
            let (src, dst) = (
                format!("oci:{}", dir.display()),
                format!("docker://{host}/{repository}:{tag}"),
            );
            let mut args = vec![
                "copy",
                "-q",
                "--preserve-digests",
                "--dest-tls-verify=false",
            ];
            if *mt == DOCKER_LIST || *mt == INDEX {
                args.push("--all");
            }
            args.extend([src.as_str(), dst.as_str()]);
            super::skopeo(&args);
        }
    }
}
