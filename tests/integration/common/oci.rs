//! OCI layouts written by hand, blob by blob: media types, digests, blob files.

use std::fs;
use std::path::Path;

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
