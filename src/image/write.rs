//! Writing an OCI image layout: staged beside its target, swapped into place atomically.
//!
//! Contract: a layout is held as an [`Output`] (small files in memory, the layer blob in an
//! anonymous file) and compared with what the target holds; only if it differs is it written
//! into a [`Staging`] directory next to the target (same filesystem, every file created
//! exclusively with mode 0644 whatever the umask), made durable, and swapped into place in
//! one `renameat2(RENAME_EXCHANGE)` (or one `rename` when the target does not exist yet). A
//! build that changes nothing touches nothing; a build that fails or is interrupted leaves
//! an existing target exactly as it was; no stray file from an earlier build survives a
//! rebuild. Only a missing path, an empty directory or an OCI layout is ever replaced.

use std::fs::File;

use rustix::fs::OFlags;

use serde::de::DeserializeOwned;

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::layer::{BlobSink, LayerInfo, WrittenBlob};
use crate::media;
use crate::platform::Platform;
use crate::problems::Problems;
use crate::spec::{Descriptor, ImageConfig, Index, Manifest, OciLayout};
use crate::store::output::{Difference, Output};
use crate::store::root::{EntryType, Follow, Root};
use crate::store::staging::{Existing, Staging, Target};

use super::Doc;
use super::blob::{self, MAX_JSON};
use super::rules::docs;

/// The `oci-layout` file's version.
pub const LAYOUT_VERSION: &str = "1.0.0";

/// How human-readable names (`rootfs.tar.gz`, `image-config.json`, `image-manifest.json`)
/// relate to the blobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NameStyle {
    /// Blobs are regular files; readable names are relative symlinks to them. Every OCI
    /// reader, including go-containerregistry ≥ 0.21.7 (crane), accepts this. The default.
    #[default]
    Symlinks,
    /// Readable names are the regular files; `blobs/sha256/…` are symlinks to them, as
    /// docker-library/busybox does. crane ≥ 0.21.7 refuses such layouts.
    Files,
    /// Only `blobs/`, `index.json` and `oci-layout`.
    None,
}

impl NameStyle {
    /// The name used on the command line and in project files.
    pub fn name(self) -> &'static str {
        match self {
            NameStyle::Symlinks => "symlinks",
            NameStyle::Files => "files",
            NameStyle::None => "none",
        }
    }
}

impl std::str::FromStr for NameStyle {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "symlinks" => Ok(NameStyle::Symlinks),
            "files" => Ok(NameStyle::Files),
            "none" => Ok(NameStyle::None),
            _ => Err(format!(
                "unknown name style {s:?} (expected symlinks, files or none)"
            )),
        }
    }
}

/// Refuses targets that must not be replaced: anything but a missing path, an empty
/// directory or an existing OCI layout (a directory holding `oci-layout`).
pub fn check_target(target: &Target) -> Result<()> {
    match target.existing()? {
        Existing::Missing => Ok(()),
        Existing::Dir(root) => {
            let empty = root
                .list_dir_bytes("")
                .map_err(|e| Error::input(format!("output {}", target.shown()), e.to_string()))?
                .is_none_or(|l| l.is_empty());
            let layout = matches!(root.entry_type("oci-layout"), Ok(Some(EntryType::File)));
            if empty || layout {
                Ok(())
            } else {
                Err(Error::input(
                    format!("output {}", target.shown()),
                    "exists and is not an OCI layout (no oci-layout file); refusing to replace it",
                ))
            }
        }
        Existing::Other(kind) => Err(Error::input(
            format!("output {}", target.shown()),
            format!("exists and is a {kind}, not a directory"),
        )),
    }
}

/// Like [`check_target`], for `ocipack fix`: a directory holding `index.json` is a layout
/// too (another tool may have left out `oci-layout`, which fix adds).
pub fn check_fix_target(target: &Target) -> Result<()> {
    if let Existing::Dir(root) = target.existing()?
        && matches!(root.entry_type("index.json"), Ok(Some(EntryType::File)))
    {
        return Ok(());
    }
    check_target(target)
}

/// The name the layer blob is created under, until its digest is known.
const PARTIAL: &str = "blobs/sha256/.layer.partial";

/// A layout being assembled for its target, written only if it differs from what the
/// target holds (see [`Output`]).
#[derive(Debug)]
pub struct LayoutWriter {
    out: Output,
    /// The layer blob of the layout the target holds now (when it holds a layout with one
    /// layer): the new layer is compared with it while it is written.
    baseline: Option<(Digest, File)>,
    /// The check a target must pass, at the start and again at the swap.
    check: fn(&Target) -> Result<()>,
}

/// What writing the layout to its target did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// The target already held these exact bytes: nothing was written or touched.
    Unchanged,
    /// The target was replaced.
    Replaced,
}

/// The `oci-layout` document every layout ocipack writes holds.
pub fn oci_layout() -> Result<Doc<OciLayout>> {
    Doc::canonical(OciLayout {
        image_layout_version: LAYOUT_VERSION.into(),
    })
}

/// The `index.json` of a layout that holds one image or one image index: `entry` is its
/// only descriptor (the builder's, pull's and export's layouts alike).
pub fn top_index(entry: Descriptor) -> Result<Doc<Index>> {
    Doc::canonical(Index {
        schema_version: 2,
        media_type: Some(media::INDEX.into()),
        artifact_type: None,
        manifests: vec![entry],
        subject: None,
        annotations: None,
    })
}

impl LayoutWriter {
    /// Checks the target ([`check_target`]) and starts an empty layout for it; nothing is
    /// written yet.
    pub fn new(target: &Target) -> Result<LayoutWriter> {
        LayoutWriter::with_check(target, check_target)
    }

    /// A writer that replaces a layout another tool made ([`check_fix_target`]).
    pub fn fixing(target: &Target) -> Result<LayoutWriter> {
        LayoutWriter::with_check(target, check_fix_target)
    }

    /// Like [`LayoutWriter::new`], for one platform's image: when the target holds a
    /// multi-platform layout, that platform's layer is the one a new layer is compared with.
    pub fn for_platform(target: &Target, platform: &Platform) -> Result<LayoutWriter> {
        LayoutWriter::with_baseline(target, check_target, Some(platform))
    }

    fn with_check(target: &Target, check: fn(&Target) -> Result<()>) -> Result<LayoutWriter> {
        LayoutWriter::with_baseline(target, check, None)
    }

    fn with_baseline(
        target: &Target,
        check: fn(&Target) -> Result<()>,
        platform: Option<&Platform>,
    ) -> Result<LayoutWriter> {
        check(target)?;
        let baseline = match target.existing()? {
            Existing::Dir(root) => previous_layer(root, platform),
            _ => None,
        };
        Ok(LayoutWriter {
            out: Output::new(target),
            baseline,
            check,
        })
    }

    /// The directory temporary files go to (same filesystem as the layout).
    pub fn temp_dir(&self) -> &Root {
        self.out.temp_dir()
    }

    /// Where the layer pipeline writes the blob: an anonymous file (direct I/O where the
    /// filesystem allows it), compared as it is written with the previous layout's layer.
    pub fn layer_sink(&mut self) -> Result<BlobSink> {
        let (file, direct) = self.out.create_file(PARTIAL, OFlags::DIRECT)?;
        let baseline = match &self.baseline {
            Some((digest, f)) => Some(f.try_clone().map_err(|e| {
                let target = self.out.target();
                let blob = target.parent().path().join(target.name());
                Error::io("reading", blob.join(digest.blob_path()), e)
            })?),
            None => None,
        };
        Ok(BlobSink::File {
            file,
            direct,
            baseline,
        })
    }

    /// Takes the finished layer blob, named by its digest.
    pub fn finish_layer(&mut self, layer: &LayerInfo, written: WrittenBlob) -> Result<()> {
        let same = written.same_as_baseline
            && self
                .baseline
                .as_ref()
                .is_some_and(|(d, _)| *d == layer.digest);
        let file = written
            .file
            .ok_or_else(|| Error::internal("the layer was not written to a file"))?;
        self.out.put_file(
            PARTIAL,
            &layer.digest.blob_path(),
            file,
            same,
            &layer.digest,
        )
    }

    /// Holds `bytes` as a blob; returns its digest.
    pub fn write_blob(&mut self, bytes: &[u8]) -> Digest {
        let digest = Digest::sha256_of(bytes);
        let name = digest.blob_path();
        if !self.out.contains(&name) {
            self.out.put_bytes(&name, bytes.to_vec());
        }
        digest
    }

    /// Holds a document as a blob.
    pub fn write_doc<T>(&mut self, doc: &Doc<T>) -> Digest {
        self.write_blob(&doc.bytes)
    }

    /// Copies a blob from `content` (a [`crate::image::blob::Verified`] reader, which fails
    /// rather than finish with bytes that do not hash to `digest`) into an anonymous file
    /// for its place; `same` if the target already holds these bytes there.
    pub fn copy_blob(
        &mut self,
        digest: &Digest,
        content: &mut dyn std::io::Read,
        same: bool,
    ) -> Result<()> {
        let name = digest.blob_path();
        if self.out.contains(&name) {
            return Ok(());
        }
        let partial = format!("{name}.partial");
        let (mut f, _) = self.out.create_file(&partial, OFlags::empty())?;
        // A read that fails is the input's fault (exit 2: a blob that changed or does not
        // hash to its name); a write that fails is the environment's (exit 1: a full disk).
        let mut reader = ReadSide {
            inner: content,
            failed: false,
        };
        std::io::copy(&mut reader, &mut f).map_err(|e| {
            if reader.failed {
                Error::input(format!("blob {digest}"), e.to_string())
            } else {
                let target = self.out.target();
                Error::io(
                    "writing",
                    target.parent().path().join(target.name()).join(&name),
                    e,
                )
            }
        })?;
        self.out.put_file(&partial, &name, f, same, digest)
    }

    /// True if the layout holds the blob `digest` already.
    pub fn holds(&self, digest: &Digest) -> bool {
        self.out.contains(&digest.blob_path())
    }

    /// Holds a file at `name` (relative to the layout).
    pub fn write_file(&mut self, name: &str, bytes: &[u8]) {
        self.out.put_bytes(name, bytes.to_vec());
    }

    /// Holds `oci-layout`.
    pub fn write_oci_layout(&mut self) -> Result<()> {
        self.write_file("oci-layout", &oci_layout()?.bytes);
        Ok(())
    }

    /// Holds `index.json` listing `entry` alone ([`top_index`]).
    pub fn write_top_index(&mut self, entry: Descriptor) -> Result<()> {
        self.write_file("index.json", &top_index(entry)?.bytes);
        Ok(())
    }

    /// Takes over the files `other` holds for the same target (blobs of another image of
    /// a multi-platform layout); a blob both hold is kept once.
    pub fn absorb(&mut self, other: LayoutWriter) -> Result<()> {
        self.out.absorb(other.out)
    }

    /// Gives a blob a readable `name` (which may be in a subdirectory: `amd64/rootfs.tar.gz`)
    /// according to `style`.
    pub fn name_blob(&mut self, style: NameStyle, name: &str, digest: &Digest) -> Result<()> {
        let blob = digest.blob_path();
        match style {
            NameStyle::None => {}
            NameStyle::Symlinks => {
                let up = "../".repeat(name.matches('/').count());
                self.out.put_link(name, &format!("{up}{blob}"))
            }
            NameStyle::Files => {
                self.out.rename(&blob, name)?;
                self.out.put_link(&blob, &format!("../../{name}"));
            }
        }
        Ok(())
    }

    /// What the layout will hold, path by path, with each file's digest: nothing is read
    /// back ([`Output::listing`]).
    pub fn listing(&self) -> crate::store::listing::Listing {
        self.out.listing()
    }

    /// How the target differs from this layout (empty: identical); nothing is written.
    pub fn differences(&self) -> Result<Vec<Difference>> {
        self.out.differences()
    }

    /// True if the target must be written: it differs, or a file or directory of it lacks
    /// the mode ocipack gives what it writes ([`Output::needs_write`]).
    pub fn needs_write(&self) -> Result<bool> {
        self.out.needs_write()
    }

    /// Writes the layout into a staging directory beside the target (not yet durable).
    pub fn stage(self) -> Result<Staging> {
        self.out.stage()
    }

    /// Writes the layout to its target if it differs from what the target holds: staged,
    /// made durable and swapped into place; the previous layout is removed afterwards.
    pub fn commit(self) -> Result<Written> {
        if !self.needs_write()? {
            return Ok(Written::Unchanged);
        }
        let target = self.out.target().clone();
        (self.check)(&target)?;
        let staged = self.stage()?;
        staged.commit(&target)?.remove();
        Ok(Written::Replaced)
    }
}

/// A reader that remembers whether one of its reads failed (to tell a copy's read errors
/// from its write errors).
struct ReadSide<'a> {
    inner: &'a mut dyn std::io::Read,
    failed: bool,
}

impl std::io::Read for ReadSide<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let r = self.inner.read(buf);
        if matches!(&r, Err(e) if e.kind() != std::io::ErrorKind::Interrupted) {
            self.failed = true;
        }
        r
    }
}

/// The single layer blob of the layout in `root`, if it holds a valid-looking layout with
/// one image of one layer (or, given `platform`, a multi-platform layout whose image for
/// that platform has one layer): opened relative to the target's descriptor `root` (never
/// by its path, never outside it) to compare a new layer with. Only a hint: whatever it
/// finds is compared byte for byte, so a wrong guess costs a rewrite, never a wrong layout.
fn previous_layer(root: Root, platform: Option<&Platform>) -> Option<(Digest, File)> {
    let root = root.with_follow(Follow::Inside);
    let bytes = root.read("index.json", MAX_JSON).ok()?;
    let index: Index = decode(&bytes)?;
    let [entry] = index.manifests.as_slice() else {
        return None;
    };
    let manifest: Manifest = match entry.media_type.as_str() {
        media::MANIFEST => read_doc(&root, entry)?,
        media::INDEX => {
            let platform = platform?;
            let nested: Index = read_doc(&root, entry)?;
            nested.manifests.iter().find_map(|d| {
                let m: Manifest = read_doc(&root, d)?;
                let config: ImageConfig = read_doc(&root, &m.config)?;
                (config.platform() == *platform).then_some(m)
            })?
        }
        _ => return None,
    };
    let [layer] = manifest.layers.as_slice() else {
        return None;
    };
    let blob = blob::open_blob(&root, layer).ok()?;
    Some((layer.digest.clone(), blob.opened.file))
}

/// The JSON blob `d` points to beneath `root`, decoded as the rules decode a document, if it
/// is exactly what `d` says (size at most [`MAX_JSON`], digest).
fn read_doc<T: DeserializeOwned>(root: &Root, d: &Descriptor) -> Option<T> {
    if u64::try_from(d.size).ok()? > MAX_JSON {
        return None;
    }
    decode(&blob::open_blob(root, d).ok()?.read_whole(d).ok()?)
}

/// `bytes` decoded as the rules decode a document; `None` if that fails.
fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Option<T> {
    docs::decode::<T>(&mut Problems::default(), "", bytes, &[]).map(|(value, _)| value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media;
    use serde_json::json;
    use std::fs;
    use std::os::unix::fs::MetadataExt;
    use std::path::Path;

    /// A layout of one image with one (plain tar) layer holding `layer`, written by hand.
    fn layout(dir: &Path, layer: &[u8]) -> Digest {
        fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
        let blob = |bytes: &[u8]| {
            let d = Digest::sha256_of(bytes);
            fs::write(dir.join(d.blob_path()), bytes).unwrap();
            json!({"digest": d.to_string(), "size": bytes.len()})
        };
        let mut l = blob(layer);
        l["mediaType"] = json!(media::LAYER_TAR);
        let config = json!({
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [l["digest"]]},
        });
        let mut c = blob(&serde_json::to_vec(&config).unwrap());
        c["mediaType"] = json!(media::CONFIG);
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": media::MANIFEST,
            "config": c,
            "layers": [l],
        });
        let mut m = blob(&serde_json::to_vec(&manifest).unwrap());
        m["mediaType"] = json!(media::MANIFEST);
        let index = json!({"schemaVersion": 2, "mediaType": media::INDEX, "manifests": [m]});
        fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
        fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        Digest::sha256_of(layer)
    }

    /// The layer a new one is compared with comes from the target held open, never from
    /// whatever its path names by then: a directory renamed under the build, and another
    /// layout put at its old path, must not become the baseline (a blob that is wrong in
    /// the real target would then be taken as unchanged and never repaired).
    #[test]
    fn the_baseline_layer_is_read_through_the_target_held_open() {
        let t = tempfile::tempdir().unwrap();
        let out = t.path().join("outs/out");
        let digest = layout(&out, b"layer bytes");
        let target = Target::at_path(&out).unwrap();
        fs::rename(t.path().join("outs"), t.path().join("moved")).unwrap();
        layout(&out, b"layer bytes");

        let writer = LayoutWriter::new(&target).unwrap();
        let (d, file) = writer.baseline.as_ref().expect("a baseline layer");
        assert_eq!(*d, digest);
        let real = fs::metadata(t.path().join("moved/out").join(digest.blob_path())).unwrap();
        let opened = file.metadata().unwrap();
        assert_eq!(
            (opened.dev(), opened.ino()),
            (real.dev(), real.ino()),
            "the baseline is not the held target's blob"
        );
    }
}
