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
//! The layout holding it (`image::build::prepare_index_layout`, above the writer) is the
//! nested form that `skopeo copy --all`, `podman run`/`podman load` and `crane push` read
//! without flags: `index.json` holds ONE descriptor, of the image index stored as a blob
//! ([`layout_entry`], with the `ref.name` annotation when the project sets `ref-name`). A
//! flat `index.json` listing several manifests is refused by skopeo and podman ("more than
//! one image").

use std::collections::BTreeMap;

use crate::error::Result;
use crate::media;
use crate::platform::{BASHBREW_ARCHES, Platform};
use crate::problems::Problems;
use crate::spec::{ANNOTATION_CONTAINERD_NAME, ANNOTATION_REF_NAME, Descriptor, Index};

use super::rules::check_platform_index;
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
    check_platform_index(&mut p, "the image index", &doc.value);
    p.fail_on_errors("the image index breaks the rules, so nothing was written or pushed")?;
    Ok(doc)
}

/// `index.json`'s descriptor of the image index `index`, named `ref_name` if given.
pub fn layout_entry(index: &Doc<Index>, ref_name: Option<&str>) -> Descriptor {
    let mut entry = index.descriptor(media::INDEX);
    entry.annotations = ref_name.map(ref_name_annotations);
    entry
}

/// The annotations naming an `index.json` entry `name`: `org.opencontainers.image.ref.name`,
/// and `io.containerd.image.name` when `name` is a full image reference.
pub fn ref_name_annotations(name: &str) -> BTreeMap<String, String> {
    let mut annotations = BTreeMap::from([(ANNOTATION_REF_NAME.to_string(), name.to_string())]);
    // containerd (and `ctr import`) expects a full image reference here; a bare tag
    // such as `latest` is only meaningful as the OCI ref name.
    if name.contains(['/', ':']) {
        annotations.insert(ANNOTATION_CONTAINERD_NAME.to_string(), name.to_string());
    }
    annotations
}
