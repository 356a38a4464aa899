//! Multi-platform images: the OCI image index listing one manifest per platform, and the
//! layout holding it.
//!
//! One function makes the index ([`platform_index`]): `ocipack push DIR` sends it to a
//! registry after every architecture's image, and `ocipack build --index` stores it in a
//! layout, so the same project gives the same index digest both ways. It lists, for each
//! image in bashbrew's architecture order ([`crate::platform::BASHBREW_ARCHES`]), the
//! manifest's media type, digest, size and platform, and nothing else: no annotations (the
//! Official Images deploy step adds `com.docker.official-images.bashbrew.arch` and its build
//! annotations for its own bookkeeping, recomputing them from its own data; an `index.json`
//! entry's `org.opencontainers.image.ref.name` names an image inside one layout and means
//! nothing in a registry's index). Canonical JSON ([`crate::cjson`]), no index annotations.
//!
//! The layout ([`prepare_index_layout`]) is the nested form that `skopeo copy --all`,
//! `podman run`/`podman load` and `crane push` read without flags: `index.json` holds ONE
//! descriptor, of the image index stored as a blob (with the `ref.name` annotation when the
//! project sets `ref-name`). A flat `index.json` listing several manifests is refused by
//! skopeo and podman ("more than one image").

use std::collections::BTreeSet;

use crate::error::{Error, Result};
use crate::media;
use crate::platform::{BASHBREW_ARCHES, Platform};
use crate::problems::Problems;
use crate::spec::{Descriptor, Index};

use super::build::{BuiltImage, CONFIG_FILE_NAME, MANIFEST_FILE_NAME, ref_name_annotations};
use super::write::{LayoutWriter, NameStyle};
use super::{Doc, Image};

/// The readable name of the image index in a multi-platform layout.
pub const INDEX_FILE_NAME: &str = "image-index.json";

/// The platform an image is listed under: its descriptor's, else its config's.
pub fn platform_of(image: &Image) -> Platform {
    image
        .entry
        .platform
        .clone()
        .unwrap_or_else(|| image.platform())
}

/// The descriptor of `image` in an image index: media type, digest, size and platform.
pub fn child_descriptor(image: &Image) -> Descriptor {
    let mut d = Descriptor::new(
        &image.entry.media_type,
        image.entry.digest.clone(),
        u64::try_from(image.entry.size).unwrap_or_default(),
    );
    d.platform = Some(platform_of(image));
    d
}

/// Where a platform sorts: its place in bashbrew's architecture list (others after, in the
/// order given).
fn bashbrew_rank(p: &Platform) -> usize {
    p.bashbrew_arch()
        .and_then(|name| BASHBREW_ARCHES.iter().position(|(n, ..)| *n == name))
        .unwrap_or(BASHBREW_ARCHES.len())
}

/// The image index listing `images` (see the module documentation), checked with
/// `verify`'s rules for an image index: no platform twice, at least one manifest.
pub fn platform_index(images: &[&Image]) -> Result<Doc<Index>> {
    let mut manifests: Vec<Descriptor> = images.iter().map(|i| child_descriptor(i)).collect();
    manifests.sort_by_key(|d| d.platform.as_ref().map(bashbrew_rank));
    let doc = Doc::canonical(Index {
        schema_version: 2,
        media_type: Some(media::INDEX.into()),
        artifact_type: None,
        manifests,
        subject: None,
        annotations: None,
    })?;
    let mut p = Problems::default();
    super::rules::check_platform_index(&mut p, "the image index", &doc.value);
    p.fail_on_errors("the image index breaks the rules, so nothing was written or pushed")?;
    Ok(doc)
}

/// `index.json`'s descriptor of the image index `index`, named `ref_name` if given.
pub fn layout_entry(index: &Doc<Index>, ref_name: Option<&str>) -> Descriptor {
    let mut entry = index.descriptor(media::INDEX);
    entry.annotations = ref_name.map(ref_name_annotations);
    entry
}

/// One platform's image for a multi-platform layout: its bashbrew architecture name (the
/// directory of its readable names), its blobs held by `writer`, and what was built.
pub struct Part {
    /// The bashbrew architecture.
    pub arch: String,
    /// The image's blobs (layer, config, manifest), held for the layout's target.
    pub writer: LayoutWriter,
    /// The image.
    pub built: BuiltImage,
}

/// What [`prepare_index_layout`] made.
#[derive(Debug, Clone)]
pub struct IndexLayout {
    /// `index.json`'s only entry: the image index's descriptor.
    pub entry: Descriptor,
    /// The image index.
    pub index: Doc<Index>,
}

/// Assembles a multi-platform layout for the target every part's writer holds blobs for:
/// every blob once, the image index as a blob, `index.json` in the nested form, `oci-layout`
/// and, unless `names` is [`NameStyle::None`], readable names that are symlinks to regular
/// blobs (`image-index.json`, `ARCH/image-manifest.json`, `ARCH/image-config.json`,
/// `ARCH/rootfs.tar.gz`; `crane push` refuses symlinked blobs, so `files` gives symlinks
/// here too). Nothing is written: the caller commits the writer.
pub fn prepare_index_layout(
    mut out: LayoutWriter,
    parts: Vec<Part>,
    names: NameStyle,
    ref_name: Option<&str>,
) -> Result<(LayoutWriter, IndexLayout)> {
    let mut arches = BTreeSet::new();
    for p in &parts {
        if !arches.insert(p.arch.clone()) {
            return Err(Error::internal(format!(
                "{} twice in one image index",
                p.arch
            )));
        }
    }
    let images: Vec<&Image> = parts.iter().map(|p| &p.built.image).collect();
    let index = platform_index(&images)?;
    let entry = layout_entry(&index, ref_name);
    let style = match names {
        NameStyle::None => NameStyle::None,
        NameStyle::Symlinks | NameStyle::Files => NameStyle::Symlinks,
    };
    let mut named = Vec::new();
    for p in parts {
        let image = &p.built.image;
        let layer = p.built.layer.compression.layer_file_name();
        named.push((format!("{}/{layer}", p.arch), p.built.layer.digest.clone()));
        named.push((
            format!("{}/{CONFIG_FILE_NAME}", p.arch),
            image.config.digest(),
        ));
        named.push((
            format!("{}/{MANIFEST_FILE_NAME}", p.arch),
            image.entry.digest.clone(),
        ));
        out.absorb(p.writer)?;
    }
    out.write_doc(&index);
    out.write_oci_layout()?;
    let top = Doc::canonical(Index {
        schema_version: 2,
        media_type: Some(media::INDEX.into()),
        artifact_type: None,
        manifests: vec![entry.clone()],
        subject: None,
        annotations: None,
    })?;
    out.write_file("index.json", &top.bytes);
    out.name_blob(style, INDEX_FILE_NAME, &index.digest())?;
    for (name, digest) in &named {
        out.name_blob(style, name, digest)?;
    }
    Ok((out, IndexLayout { entry, index }))
}
