//! Reading the one image of a layout back, for pushing and exporting, trusting nothing.
//!
//! A layout may come from anyone (a git checkout, an archive), so every byte is checked
//! while it is read: `oci-layout` must say 1.0.0; `index.json`, the manifest and the config
//! are decoded strictly; a blob is only opened through its digest, must stay inside the
//! layout once symlinks are resolved, must be a regular file of the declared size, and is
//! streamed through [`Verified`], which refuses to hand over the last bytes of content that
//! does not hash to the expected digest. A consumer (an HTTP upload, a tar archive) therefore
//! never completes with bytes that differ from what the descriptors promise.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::digest::{Digest, Hasher};
use crate::error::{Error, Result};
use crate::image::write::LAYOUT_VERSION;
use crate::media::{self, Compression};
use crate::spec::{Descriptor, ImageConfig, Index, Manifest, OciLayout};

/// The largest manifest or config ocipack reads into memory (the size registries accept
/// for manifests, per the OCI distribution specification).
pub const MAX_JSON_BLOB: u64 = 4 * 1024 * 1024;

/// The single image of a layout: its index entry, manifest and config, all verified.
#[derive(Debug, Clone)]
pub struct LayoutImage {
    store: BlobStore,
    /// `oci-layout`, byte for byte.
    pub oci_layout_bytes: Vec<u8>,
    /// `index.json`, byte for byte.
    pub index_bytes: Vec<u8>,
    /// The `index.json` entry of the image.
    pub entry: Descriptor,
    /// The manifest blob, byte for byte.
    pub manifest_bytes: Vec<u8>,
    /// The decoded manifest.
    pub manifest: Manifest,
    /// The config blob, byte for byte.
    pub config_bytes: Vec<u8>,
    /// The decoded config.
    pub config: ImageConfig,
}

impl LayoutImage {
    /// Opens the layout at `dir`: `index.json` must list exactly one image manifest.
    pub fn open(dir: &Path) -> Result<LayoutImage> {
        let shown = dir.display().to_string();
        let root = fs::canonicalize(dir).map_err(|e| Error::input_io("opening layout", dir, e))?;
        if !root.is_dir() {
            return Err(Error::input(
                format!("layout {shown}"),
                "is not a directory",
            ));
        }
        let bad = |file: &str, why: String| Error::input(format!("{shown}/{file}"), why);

        let oci_layout_bytes = read_small(&root, "oci-layout")?;
        let oci_layout: OciLayout = decode(&oci_layout_bytes).map_err(|e| bad("oci-layout", e))?;
        if oci_layout.image_layout_version != LAYOUT_VERSION {
            return Err(bad(
                "oci-layout",
                format!(
                    "imageLayoutVersion {:?}, expected {LAYOUT_VERSION:?}",
                    oci_layout.image_layout_version
                ),
            ));
        }
        let index_bytes = read_small(&root, "index.json")?;
        let index: Index = decode(&index_bytes).map_err(|e| bad("index.json", e))?;
        if index.schema_version != 2 {
            return Err(bad(
                "index.json",
                format!("schemaVersion {}, expected 2", index.schema_version),
            ));
        }
        let entry = match index.manifests.as_slice() {
            [one] => one.clone(),
            many => {
                return Err(bad(
                    "index.json",
                    format!(
                        "lists {} manifests; ocipack pushes and exports layouts holding exactly one image",
                        many.len()
                    ),
                ));
            }
        };
        if entry.media_type != media::MANIFEST {
            return Err(bad(
                "index.json",
                format!(
                    "manifests[0].mediaType {:?}: only {} is supported",
                    entry.media_type,
                    media::MANIFEST
                ),
            ));
        }
        let store = BlobStore { root, shown };
        let manifest_name = format!("manifest {}", entry.digest);
        let manifest_bytes = store.read_json_blob(&entry)?;
        let manifest: Manifest =
            decode(&manifest_bytes).map_err(|e| store.bad(&manifest_name, e))?;
        if manifest.schema_version != 2 {
            return Err(store.bad(
                &manifest_name,
                format!("schemaVersion {}, expected 2", manifest.schema_version),
            ));
        }
        if let Some(t) = manifest
            .media_type
            .as_deref()
            .filter(|t| *t != media::MANIFEST)
        {
            return Err(store.bad(
                &manifest_name,
                format!(
                    "mediaType {t:?} differs from the index entry's {}",
                    media::MANIFEST
                ),
            ));
        }
        if manifest.config.media_type != media::CONFIG {
            return Err(store.bad(
                &manifest_name,
                format!(
                    "config.mediaType {:?}, expected {}",
                    manifest.config.media_type,
                    media::CONFIG
                ),
            ));
        }
        let config_bytes = store.read_json_blob(&manifest.config)?;
        let config = decode(&config_bytes)
            .map_err(|e| store.bad(&format!("config {}", manifest.config.digest), e))?;
        Ok(LayoutImage {
            store,
            oci_layout_bytes,
            index_bytes,
            entry,
            manifest_bytes,
            manifest,
            config_bytes,
            config,
        })
    }

    /// The layout directory as the user named it (for messages).
    pub fn shown(&self) -> &str {
        &self.store.shown
    }

    /// The blobs the manifest references: the layers (base first), then the config.
    /// A digest listed twice is returned once.
    pub fn blobs(&self) -> Vec<&Descriptor> {
        let mut out: Vec<&Descriptor> = Vec::new();
        for d in self.manifest.layers.iter().chain([&self.manifest.config]) {
            if !out.iter().any(|o| o.digest == d.digest) {
                out.push(d);
            }
        }
        out
    }

    /// The declared size of `d`, refusing negative sizes.
    pub fn size_of(&self, d: &Descriptor) -> Result<u64> {
        self.store.size_of(d)
    }

    /// The compression of a layer, from its media type.
    pub fn layer_compression(&self, d: &Descriptor) -> Result<Compression> {
        Compression::from_media_type(&d.media_type).ok_or_else(|| {
            self.store.bad(
                &format!("layer {}", d.digest),
                format!(
                    "mediaType {:?} is not an OCI tar layer (tar, tar+gzip, tar+zstd)",
                    d.media_type
                ),
            )
        })
    }

    /// Opens the blob of `d` for streaming: the file must be a regular file inside the
    /// layout of exactly the declared size; its content is verified as it is read.
    pub fn open_blob(&self, d: &Descriptor) -> Result<Verified<File>> {
        self.store.open_blob(d)
    }

    /// An error about `what` in this layout.
    pub fn bad(&self, what: &str, why: impl Into<String>) -> Error {
        self.store.bad(what, why)
    }
}

/// Where a layout's blobs are, and how to name them in messages.
#[derive(Debug, Clone)]
struct BlobStore {
    /// The layout directory, symlinks resolved.
    root: PathBuf,
    /// The layout directory as the user named it.
    shown: String,
}

impl BlobStore {
    fn size_of(&self, d: &Descriptor) -> Result<u64> {
        u64::try_from(d.size).map_err(|_| {
            self.bad(
                &format!("descriptor {}", d.digest),
                format!("negative size {}", d.size),
            )
        })
    }

    fn open_blob(&self, d: &Descriptor) -> Result<Verified<File>> {
        let size = self.size_of(d)?;
        let rel = d.digest.blob_path();
        let what = format!("{}/{rel}", self.shown);
        let real = fs::canonicalize(self.root.join(&rel))
            .map_err(|e| Error::input_io("opening blob", &what, e))?;
        if !real.starts_with(&self.root) {
            return Err(Error::input(
                what,
                "resolves to a file outside the layout; refusing to read it",
            ));
        }
        let file = File::open(&real).map_err(|e| Error::input_io("opening blob", &what, e))?;
        let meta = file
            .metadata()
            .map_err(|e| Error::input_io("inspecting blob", &what, e))?;
        if !meta.is_file() {
            return Err(Error::input(what, "is not a regular file"));
        }
        if meta.len() != size {
            return Err(Error::input(
                what,
                format!("is {} bytes, its descriptor says {size}", meta.len()),
            ));
        }
        Ok(Verified::new(file, d.digest.clone(), size, what))
    }

    /// Reads a small JSON blob whole, verified.
    fn read_json_blob(&self, d: &Descriptor) -> Result<Vec<u8>> {
        let size = self.size_of(d)?;
        if size > MAX_JSON_BLOB {
            return Err(self.bad(
                &format!("descriptor {}", d.digest),
                format!("size {size} exceeds the {MAX_JSON_BLOB}-byte limit for JSON documents"),
            ));
        }
        let mut r = self.open_blob(d)?;
        let mut buf = Vec::with_capacity(size as usize);
        r.read_to_end(&mut buf)
            .map_err(|e| Error::input(r.what().to_string(), e.to_string()))?;
        Ok(buf)
    }

    fn bad(&self, what: &str, why: impl Into<String>) -> Error {
        Error::input(format!("{}: {what}", self.shown), why)
    }
}

fn read_small(root: &Path, name: &str) -> Result<Vec<u8>> {
    let path = root.join(name);
    let f = File::open(&path).map_err(|e| Error::input_io("reading", &path, e))?;
    let mut buf = Vec::new();
    f.take(MAX_JSON_BLOB + 1)
        .read_to_end(&mut buf)
        .map_err(|e| Error::input_io("reading", &path, e))?;
    if buf.len() as u64 > MAX_JSON_BLOB {
        return Err(Error::input(
            path.display().to_string(),
            format!("larger than {MAX_JSON_BLOB} bytes"),
        ));
    }
    Ok(buf)
}

fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> std::result::Result<T, String> {
    serde_json::from_slice(bytes).map_err(|e| format!("invalid: {e}"))
}

/// A reader that yields exactly `size` bytes of `inner` and checks they hash to `expected`.
///
/// The check happens before the last bytes are returned: content that is shorter, longer
/// or different makes the final `read` fail instead, so whatever consumes the stream never
/// finishes with wrong bytes.
pub struct Verified<R> {
    inner: R,
    expected: Digest,
    size: u64,
    hasher: Hasher,
    what: String,
    checked: bool,
}

impl<R: Read> Verified<R> {
    /// Wraps `inner`, which must yield `size` bytes hashing to `expected`; `what` names the
    /// content in errors.
    pub fn new(inner: R, expected: Digest, size: u64, what: String) -> Self {
        let hasher = Hasher::new(expected.algorithm());
        Verified {
            inner,
            expected,
            size,
            hasher,
            what,
            checked: false,
        }
    }

    /// Bytes handed out so far.
    pub fn position(&self) -> u64 {
        self.hasher.len()
    }

    /// The expected size.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The content's name, for messages.
    pub fn what(&self) -> &str {
        &self.what
    }

    fn fail(&self, kind: io::ErrorKind, why: String) -> io::Error {
        io::Error::new(kind, format!("{}: {why}", self.what))
    }
}

impl<R: Read> Read for Verified<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.size - self.hasher.len();
        if left == 0 {
            self.check()?;
            return Ok(0);
        }
        if buf.is_empty() {
            return Ok(0);
        }
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(self.fail(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "ends after {} bytes, expected {}",
                    self.hasher.len(),
                    self.size
                ),
            ));
        }
        self.hasher.update(&buf[..n]);
        if self.hasher.len() == self.size {
            self.check()?;
        }
        Ok(n)
    }
}

impl<R: Read> Verified<R> {
    /// Checks, once all `size` bytes were read, that nothing follows and that the digest
    /// matches; an error if fewer bytes were read. Reading to the end does it implicitly.
    pub fn check(&mut self) -> io::Result<()> {
        if self.checked {
            return Ok(());
        }
        if self.hasher.len() != self.size {
            return Err(self.fail(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "only {} of {} bytes were read",
                    self.hasher.len(),
                    self.size
                ),
            ));
        }
        let mut probe = [0u8; 1];
        if self.inner.read(&mut probe)? != 0 {
            return Err(self.fail(
                io::ErrorKind::InvalidData,
                format!("is longer than the expected {} bytes", self.size),
            ));
        }
        let got = self.hasher.clone().finish();
        if got != self.expected {
            return Err(self.fail(
                io::ErrorKind::InvalidData,
                format!("content hashes to {got}, expected {}", self.expected),
            ));
        }
        self.checked = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(mut r: impl Read) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut buf = [0u8; 3];
        loop {
            match r.read(&mut buf)? {
                0 => return Ok(out),
                n => out.extend_from_slice(&buf[..n]),
            }
        }
    }

    #[test]
    fn verified_passes_exact_content() {
        let data = b"hello, world";
        let v = Verified::new(&data[..], Digest::sha256_of(data), 12, "x".into());
        assert_eq!(drain(v).unwrap(), data);
    }

    #[test]
    fn verified_withholds_the_end_of_wrong_content() {
        let good = Digest::sha256_of(b"hello, world");
        let mut v = Verified::new(&b"hello, WORLD"[..], good.clone(), 12, "blob".into());
        let mut buf = [0u8; 8];
        assert_eq!(v.read(&mut buf).unwrap(), 8);
        let e = v.read(&mut buf).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(e.to_string().contains("blob: content hashes to"), "{e}");

        let e = drain(Verified::new(&b"hello"[..], good.clone(), 12, "b".into())).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        let e = drain(Verified::new(&b"hello, world!"[..], good, 12, "b".into())).unwrap_err();
        assert!(e.to_string().contains("longer"), "{e}");
        // An empty blob is checked too.
        let e = drain(Verified::new(
            &b""[..],
            Digest::sha256_of(b"x"),
            0,
            "b".into(),
        ))
        .unwrap_err();
        assert!(e.to_string().contains("hashes to"), "{e}");
        let mut v = Verified::new(&b""[..], Digest::sha256_of(b""), 0, "b".into());
        v.check().unwrap();
    }
}
