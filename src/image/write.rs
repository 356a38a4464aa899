//! Writing an OCI image layout: staged beside its target, swapped into place atomically.
//!
//! Contract: a layout is assembled in a [`Staging`] directory next to the target (same
//! filesystem, every file created exclusively with mode 0644 whatever the umask), made
//! durable, and only then replaces the target in one `renameat2(RENAME_EXCHANGE)` (or one
//! `rename` when the target does not exist yet). A build that fails or is interrupted leaves
//! an existing target exactly as it was, and no stray file from an earlier build survives a
//! rebuild. Only a missing path, an empty directory or an OCI layout is ever replaced.

use std::fs::File;

use rustix::fs::OFlags;

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::spec::OciLayout;
use crate::store::root::{EntryType, Root};
use crate::store::staging::{Existing, Replaced, Staging, Target};

use super::Doc;

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
                .list_dir("")
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

/// The temporary name of the layer blob while it is written.
const PARTIAL: &str = "blobs/sha256/.layer.partial";

/// A layout being assembled in a staging directory beside its target.
/// Dropped without [`LayoutWriter::commit`], it removes itself.
#[derive(Debug)]
pub struct LayoutWriter {
    staging: Staging,
    /// The check a target must pass, at the start and again at the swap.
    check: fn(&Target) -> Result<()>,
}

impl LayoutWriter {
    /// Checks the target ([`check_target`]) and starts a staging directory beside it, with
    /// `blobs/sha256`.
    pub fn new(target: &Target) -> Result<LayoutWriter> {
        LayoutWriter::with_check(target, check_target)
    }

    /// A writer that replaces a layout another tool made ([`check_fix_target`]).
    pub fn fixing(target: &Target) -> Result<LayoutWriter> {
        LayoutWriter::with_check(target, check_fix_target)
    }

    fn with_check(target: &Target, check: fn(&Target) -> Result<()>) -> Result<LayoutWriter> {
        check(target)?;
        let staging = Staging::dir(target)?;
        staging.create_dir("blobs/sha256")?;
        Ok(LayoutWriter { staging, check })
    }

    /// Copies a blob from `content` (a [`crate::image::blob::Verified`] reader, which fails
    /// rather than finish with bytes that do not hash to `digest`) to its place.
    pub fn copy_blob(&mut self, digest: &Digest, content: &mut dyn std::io::Read) -> Result<()> {
        let name = digest.blob_path();
        if self.staging.exists(&name) {
            return Ok(());
        }
        let mut f = self.staging.create_file(&name)?;
        std::io::copy(content, &mut f)
            .map(|_| ())
            .map_err(|e| Error::input(format!("blob {digest}"), e.to_string()))
    }

    /// The staged layout directory.
    pub fn root(&self) -> &Root {
        self.staging.root()
    }

    /// Creates the file the layer blob is written to (direct I/O when the filesystem allows
    /// it; see [`crate::layer`]); returns it and whether direct I/O is on.
    pub fn create_layer_file(&mut self) -> Result<(File, bool)> {
        match self.staging.open_new(PARTIAL, OFlags::DIRECT) {
            Ok(f) => Ok((f, true)),
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::INVAL.raw_os_error()) => self
                .staging
                .open_new(PARTIAL, OFlags::empty())
                .map(|f| (f, false))
                .map_err(|e| Error::io("creating", self.root().path().join(PARTIAL), e)),
            Err(e) => Err(Error::io("creating", self.root().path().join(PARTIAL), e)),
        }
    }

    /// Names the finished layer blob by its digest.
    pub fn finish_layer_file(&mut self, digest: &Digest) -> Result<()> {
        self.staging.rename(PARTIAL, &digest.blob_path())
    }

    /// Writes `bytes` as a blob (once: a blob already there is the same bytes); returns its
    /// digest.
    pub fn write_blob(&mut self, bytes: &[u8]) -> Result<Digest> {
        let digest = Digest::sha256_of(bytes);
        let name = digest.blob_path();
        if !self.staging.exists(&name) {
            self.staging.write_file(&name, bytes)?;
        }
        Ok(digest)
    }

    /// Writes a document as a blob.
    pub fn write_doc<T>(&mut self, doc: &Doc<T>) -> Result<Digest> {
        self.write_blob(&doc.bytes)
    }

    /// Writes a file at `name` (relative to the layout).
    pub fn write_file(&mut self, name: &str, bytes: &[u8]) -> Result<()> {
        self.staging.write_file(name, bytes)
    }

    /// Writes `oci-layout`.
    pub fn write_oci_layout(&mut self) -> Result<()> {
        let doc = Doc::canonical(OciLayout {
            image_layout_version: LAYOUT_VERSION.into(),
        })?;
        self.write_file("oci-layout", &doc.bytes)
    }

    /// Gives a blob a readable `name` according to `style`.
    pub fn name_blob(&mut self, style: NameStyle, name: &str, digest: &Digest) -> Result<()> {
        let blob = digest.blob_path();
        match style {
            NameStyle::None => Ok(()),
            NameStyle::Symlinks => self.staging.symlink(&blob, name),
            NameStyle::Files => {
                self.staging.rename(&blob, name)?;
                self.staging.symlink(&format!("../../{name}"), &blob)
            }
        }
    }

    /// Makes the layout durable and swaps it into place at `target`; returns the previous
    /// layout, for the caller to remove.
    pub fn commit(self, target: &Target) -> Result<Replaced> {
        (self.check)(target)?;
        self.staging.commit(target)
    }
}
