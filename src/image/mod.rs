//! The image model: one OCI image, as the builder makes it and as a layout reader finds it.
//!
//! An [`Image`] is the descriptor that selects it (an `index.json` entry or a single-descriptor
//! file), its manifest and config as decoded structs *and* their exact bytes ([`Doc`]), and
//! verified access to its blobs ([`blob`]). [`build`] returns one from inputs; `verify` opens
//! one from a layout on disk, trusting nothing. Every command works on this one type: the
//! [`rules`] judge it, `diff` compares two, `push` and `export` stream its blobs, `build
//! --check` compares a fresh one with the disk. No command keeps a reader of its own.
//!
//! The submodules are layered, each using only those before it: this model and [`blob`],
//! then the pure [`rules`], then [`index`] (the image index of several images), [`mod@write`]
//! (the layout writer) and [`build`] (the builder). Nothing here reads a layout for checking:
//! that is `verify`'s job, above.

pub mod blob;
pub mod build;
pub mod index;
pub mod rules;
pub mod write;

use std::sync::Arc;

use serde::Serialize;

use crate::cjson;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::media::Compression;
use crate::platform::Platform;
use crate::show;
use crate::spec::{Descriptor, ImageConfig, Manifest};
use crate::store::root::Root;
use crate::timestamp::Timestamp;

use blob::{BlobReader, Blobs, Verified};

/// A JSON document: its decoded value and the exact bytes it was decoded from (or written
/// as). Both are shared, not copied, when a document is cloned: a config that a hundred
/// manifests share is held once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Doc<T> {
    /// The decoded document.
    pub value: Arc<T>,
    /// Its bytes, exactly.
    pub bytes: Arc<[u8]>,
}

impl<T> Doc<T> {
    /// The SHA-256 digest of the bytes.
    pub fn digest(&self) -> Digest {
        Digest::sha256_of(&self.bytes)
    }

    /// A descriptor of the bytes with `media_type`.
    pub fn descriptor(&self, media_type: &str) -> Descriptor {
        Descriptor::new(media_type, self.digest(), self.bytes.len() as u64)
    }

    /// The bytes as a generic JSON value (for field-by-field comparison).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.bytes).unwrap_or(serde_json::Value::Null)
    }
}

impl<T: Serialize> Doc<T> {
    /// `value` in ocipack's canonical JSON form ([`crate::cjson`]).
    pub fn canonical(value: T) -> Result<Doc<T>> {
        let bytes = cjson::to_vec(&value)?;
        Ok(Doc {
            value: Arc::new(value),
            bytes: bytes.into(),
        })
    }
}

/// One image: its selecting descriptor, manifest, config and blobs.
#[derive(Debug, Clone)]
pub struct Image {
    /// The descriptor that selects the image (with its platform and annotations).
    pub entry: Descriptor,
    /// The manifest.
    pub manifest: Doc<Manifest>,
    /// The config.
    pub config: Doc<ImageConfig>,
    /// Where the blobs are: the layout directory holding them (`blobs/<algorithm>/<hex>`)
    /// or the registry, when the image was read from one (a freshly built image's blobs are
    /// wherever its layout was written).
    blobs: Option<Blobs>,
}

impl Image {
    /// An image whose blobs are in the layout directory `blobs`, if any.
    pub fn new(
        entry: Descriptor,
        manifest: Doc<Manifest>,
        config: Doc<ImageConfig>,
        blobs: Option<Root>,
    ) -> Image {
        Image::with_blobs(entry, manifest, config, blobs.map(Blobs::Layout))
    }

    /// An image whose blobs are wherever `blobs` says, if anywhere.
    pub fn with_blobs(
        entry: Descriptor,
        manifest: Doc<Manifest>,
        config: Doc<ImageConfig>,
        blobs: Option<Blobs>,
    ) -> Image {
        Image {
            entry,
            manifest,
            config,
            blobs,
        }
    }

    /// The layout directory the blobs are in, when the image was read from one.
    pub fn layout(&self) -> Option<&Root> {
        self.blobs.as_ref().and_then(Blobs::layout)
    }

    /// Where the blobs are, when the image was read from somewhere.
    pub fn blob_source(&self) -> Option<&Blobs> {
        self.blobs.as_ref()
    }

    /// The layer descriptors, base first.
    pub fn layers(&self) -> &[Descriptor] {
        &self.manifest.value.layers
    }

    /// The diff_ids of the layers, base first.
    pub fn diff_ids(&self) -> &[Digest] {
        &self.config.value.rootfs.diff_ids
    }

    /// The platform the config declares ([`crate::spec::ImageConfig::platform`]).
    pub fn platform(&self) -> Platform {
        self.config.value.platform()
    }

    /// The config's `created`, when it is a valid timestamp.
    pub fn created(&self) -> Option<Timestamp> {
        self.config.value.created.as_deref()?.parse().ok()
    }

    /// The blobs the manifest references, each once: the layers (base first), then the config.
    pub fn blobs(&self) -> Vec<&Descriptor> {
        let mut out: Vec<&Descriptor> = Vec::new();
        for d in self.layers().iter().chain([&self.manifest.value.config]) {
            if !out.iter().any(|o| o.digest == d.digest) {
                out.push(d);
            }
        }
        out
    }

    /// The compression a layer's media type declares (a foreign layer's too: its content,
    /// where a layout holds it, is a tar like any other).
    pub fn layer_compression(&self, d: &Descriptor) -> Result<Compression> {
        let c = Compression::from_media_type(&d.media_type);
        c.or_else(|| crate::media::foreign_layer(&d.media_type))
            .ok_or_else(|| {
                self.bad(
                    &format!("layer {}", d.digest),
                    format!(
                        "mediaType {} is not an OCI tar layer (tar, tar+gzip, tar+zstd)",
                        show::text(&d.media_type)
                    ),
                )
            })
    }

    /// Opens the blob of `d` for streaming: a regular file beneath the layout of exactly
    /// the declared size, or the registry's stream, whose content is verified as it is
    /// read (size and digest). This is the only way to an image's blob content; no caller
    /// needs to know where the blob is.
    pub fn open_blob(&self, d: &Descriptor) -> Result<Verified<BlobReader>> {
        let blobs = self
            .blobs
            .as_ref()
            .ok_or_else(|| Error::internal("this image was not read from a layout"))?;
        match blobs {
            Blobs::Layout(root) => {
                let what = root.shown(&d.digest.blob_path());
                blob::open_blob(root, d)
                    .map(|b| b.verified(d, what.clone()))
                    .map_err(|e| Error::input(what, e.to_string()))
            }
            Blobs::Remote(remote) => {
                let what = format!("{} blob {}", remote.name(), d.digest);
                let size = u64::try_from(d.size)
                    .map_err(|_| Error::input(what.clone(), format!("negative size {}", d.size)))?;
                let stream = remote.open(d)?;
                Ok(Verified::new(
                    BlobReader::new(stream),
                    d.digest.clone(),
                    size,
                    what,
                ))
            }
        }
    }

    /// An input error about `what` in this image's layout (or registry).
    pub fn bad(&self, what: &str, why: impl Into<String>) -> Error {
        match &self.blobs {
            Some(b) => Error::input(format!("{}: {what}", b.shown()), why.into()),
            None => Error::input(what, why.into()),
        }
    }
}
