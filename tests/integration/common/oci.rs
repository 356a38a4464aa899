//! OCI layouts written by hand, blob by blob: media types, digests, blob files, documents.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

use serde_json::{Value, json};

/// The OCI image manifest media type.
pub const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// The OCI image config media type.
pub const CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// The OCI image index media type.
pub const INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// The media type of an uncompressed tar layer.
pub const TAR: &str = "application/vnd.oci.image.layer.v1.tar";
/// The media type of a gzip-compressed tar layer.
pub const TAR_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// `sha256:` and the lowercase hex SHA-256 of `bytes`: the digest a descriptor of them
/// names. Computed with the sha2 crate, not with ocipack's `Digest`, so that a digest a test
/// expects does not come from the code under test.
pub fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    digest_string(&sha2::Sha256::digest(bytes))
}

/// `sha256:` and `hash` in lowercase hex.
fn digest_string(hash: &[u8]) -> String {
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// Writes `bytes` as a blob of the layout `dir` (creating `blobs/sha256` if need be);
/// returns its descriptor fields (digest, size).
pub fn put_blob(dir: &Path, bytes: &[u8]) -> (String, usize) {
    let blobs = dir.join("blobs/sha256");
    fs::create_dir_all(&blobs).unwrap();
    let digest = sha256(bytes);
    fs::write(blobs.join(&digest["sha256:".len()..]), bytes).unwrap();
    (digest, bytes.len())
}

/// The JSON document in the file `p`.
pub fn json_file(p: &Path) -> serde_json::Value {
    serde_json::from_slice(&fs::read(p).unwrap()).unwrap()
}

/// A gzip bomb: `head` followed by zeros, `mib` MiB in all (`head` within the first),
/// compressed at the best level; and the diff_id of what it decompresses to.
pub fn gzip_bomb(head: &[u8], mib: usize) -> (Vec<u8>, String) {
    use sha2::Digest as _;
    use std::io::Write as _;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let mut sha = sha2::Sha256::new();
    gz.write_all(head).unwrap();
    sha.update(head);
    let zeros = vec![0u8; 1 << 20];
    gz.write_all(&zeros[head.len()..]).unwrap();
    sha.update(&zeros[head.len()..]);
    for _ in 1..mib {
        gz.write_all(&zeros).unwrap();
        sha.update(&zeros);
    }
    (gz.finish().unwrap(), digest_string(&sha.finalize()))
}

/// A descriptor of `media_type` for a blob [`put_blob`] wrote.
pub fn descriptor(media_type: &str, (digest, size): &(String, usize)) -> Value {
    json!({"mediaType": media_type, "digest": digest, "size": size})
}

/// A config of `os`/`architecture` with these diff_ids.
pub fn config_json(os: &str, arch: &str, diff_ids: &[String], labels: Option<Value>) -> Value {
    let mut c = json!({
        "architecture": arch,
        "os": os,
        "created": "2023-11-14T22:13:20Z",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    if let Some(l) = labels {
        c["config"] = json!({ "Labels": l });
    }
    c
}

/// Writes a manifest of `config` and `layers` (descriptors) as a blob; returns the index
/// entry for it (platform linux/amd64).
pub fn put_manifest(
    dir: &Path,
    config: &Value,
    layers: Vec<Value>,
    annotations: Option<Value>,
) -> Value {
    let c = put_blob(dir, &serde_json::to_vec(config).unwrap());
    let mut m = json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": descriptor(CONFIG, &c),
        "layers": layers,
    });
    if let Some(a) = annotations {
        m["annotations"] = a;
    }
    let d = put_blob(dir, &serde_json::to_vec(&m).unwrap());
    let mut entry = descriptor(MANIFEST, &d);
    entry["platform"] = json!({"architecture": "amd64", "os": "linux"});
    entry
}

/// Writes `oci-layout` and an `index.json` listing `manifests`.
pub fn finish_layout(dir: &Path, manifests: Vec<Value>) {
    fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let index = json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": manifests});
    fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
}

/// How [`bomb_layout`] lists its one layer blob again and again.
pub enum Listing {
    /// Under the blob's own digest each time.
    SameDigest,
    /// Under the blob's own digest first, then under made-up digests whose blob files are
    /// symlinks to the blob's file (each fails its digest check, which only the end of the
    /// read reveals).
    MadeUpDigests,
}

/// A linux/amd64 layout at `dir` whose manifest lists the gzip `bomb` (of `diff_id`)
/// `copies` times as its layers, the config as many diff_ids.
pub fn bomb_layout(dir: &Path, bomb: &[u8], diff_id: &str, copies: usize, listing: Listing) {
    let real = put_blob(dir, bomb);
    let layers = (0..copies)
        .map(|i| match listing {
            Listing::MadeUpDigests if i > 0 => {
                let fake = sha256(format!("fake {i}").as_bytes());
                symlink(
                    &real.0["sha256:".len()..],
                    dir.join("blobs/sha256").join(&fake["sha256:".len()..]),
                )
                .unwrap();
                descriptor(TAR_GZIP, &(fake, real.1))
            }
            _ => descriptor(TAR_GZIP, &real),
        })
        .collect();
    let config = config_json("linux", "amd64", &vec![diff_id.to_string(); copies], None);
    let entry = put_manifest(dir, &config, layers, None);
    finish_layout(dir, vec![entry]);
}
