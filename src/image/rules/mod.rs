//! The pure rules: what a valid layout is, as functions over documents in memory.
//!
//! Every rule here takes decoded documents (and, for the profile's file rules, facts someone
//! else gathered) and records what is wrong into [`Problems`]; none touches the disk. The
//! builder runs them on the image it made, before writing anything ([`check_image`],
//! [`oci_import::check_built`]); `ocipack verify` runs the same functions on what its layout
//! reader found ([`check_documents`], [`oci_import::check_layout`]), so the two can never
//! disagree about a document.
//!
//! The types below are that reader's findings, kept here because they are what the rules
//! judge: [`LayoutRead`] is a layout's documents as found (any of them may be missing, with
//! the reason recorded as a problem), [`ImageRead`] one image descriptor and what could be
//! read of its image, [`Found`] a descriptor and where it was found. [`docs`] decodes a
//! document strictly and holds the rules over one document alone; [`oci_import`] holds the
//! rules of the Docker Official Images' oci-import path.

pub mod docs;
pub mod oci_import;

use crate::digest::Digest;
use crate::platform::Platform;
use crate::problems::Problems;
use crate::spec::{Descriptor, ImageConfig, Index, Manifest, OciLayout};
use crate::store::root::Root;

use super::blob::Blobs;
use super::{Doc, Image};

use docs::join_key;

/// A descriptor and where it was found.
#[derive(Debug, Clone)]
pub struct Found {
    /// The file holding it, relative to the layout.
    pub file: String,
    /// Its JSON path in that file (empty: the whole file).
    pub field: String,
    /// The descriptor.
    pub descriptor: Descriptor,
}

impl Found {
    /// `index.json manifests[0]`, or the file alone for a whole-file descriptor.
    pub fn place(&self) -> String {
        if self.field.is_empty() {
            self.file.clone()
        } else {
            format!("{} {}", self.file, self.field)
        }
    }
}

/// One manifest descriptor of the layout and what could be read of its image.
#[derive(Debug, Clone)]
pub struct ImageRead {
    /// The descriptor and where it was found.
    pub found: Found,
    /// The manifest blob's path, relative to the layout.
    pub manifest_path: String,
    /// The manifest, if it could be read, verified and decoded.
    pub manifest: Option<Doc<Manifest>>,
    /// The config blob's path.
    pub config_path: String,
    /// The config, if it could be read, verified and decoded.
    pub config: Option<Doc<ImageConfig>>,
}

impl ImageRead {
    /// The image, when both documents were read.
    pub fn image(&self, blobs: &Blobs) -> Option<Image> {
        Some(Image::with_blobs(
            self.found.descriptor.clone(),
            self.manifest.clone()?,
            self.config.clone()?,
            Some(blobs.clone()),
        ))
    }
}

/// The image index a multi-platform layout's `index.json` points to (the nested form that
/// `skopeo copy --all`, `podman` and `crane push` accept: `index.json` holds one descriptor of
/// an image index, stored as a blob, which lists one manifest per platform).
#[derive(Debug, Clone)]
pub struct NestedRead {
    /// `index.json`'s descriptor of the image index.
    pub found: Found,
    /// The image index blob's path, relative to the layout.
    pub path: String,
    /// The image index, if it could be read, verified and decoded.
    pub index: Option<Doc<Index>>,
    /// Its manifest descriptors, in order.
    pub entries: Vec<Found>,
}

/// What reading a layout's documents found (or a registry's: see [`LayoutRead::reference`]).
#[derive(Debug, Clone)]
pub struct LayoutRead {
    /// Where the blobs are: the layout directory, or the registry.
    pub blobs: Blobs,
    /// For documents read from a registry: the reference, as messages name it. There is no
    /// `oci-layout` nor `index.json` then; the registry's manifest or index is the only
    /// entry, found under this name.
    pub reference: Option<String>,
    /// `oci-layout`.
    pub oci_layout: Option<Doc<OciLayout>>,
    /// `index.json`.
    pub index: Option<Doc<Index>>,
    /// The single-descriptor file used instead of `index.json`'s entry, by name.
    pub descriptor_file: Option<(String, Doc<Descriptor>)>,
    /// `index.json`'s manifest descriptors.
    pub entries: Vec<Found>,
    /// The image index `index.json`'s only entry points to, when it is one (a multi-platform
    /// layout); its manifests are then the `images`.
    pub nested: Option<NestedRead>,
    /// Every distinct descriptor of an image (the selected one first), and its documents; in
    /// a multi-platform layout, the image index's manifests in its order.
    pub images: Vec<ImageRead>,
    /// Which of `images` is selected: the descriptor file's, else `index.json`'s only entry
    /// (none in a multi-platform layout).
    pub selected: Option<usize>,
    /// Every property of the documents read that ocipack does not know, as (file, JSON
    /// path): each a warning already ([`docs::UNKNOWN_PROPERTY`]); the oci-import profile
    /// makes those of the documents bashbrew reads errors.
    pub unknown: Vec<(String, String)>,
}

impl LayoutRead {
    /// The layout directory, for documents read from one.
    pub fn root(&self) -> Option<&Root> {
        self.blobs.layout()
    }

    /// The selected image, when its documents were read.
    pub fn image(&self) -> Option<Image> {
        self.images[self.selected?].image(&self.blobs)
    }

    /// A multi-platform layout's image index and every image it lists (in its order), when
    /// all their documents were read.
    pub fn platform_images(&self) -> Option<PlatformImages> {
        let nested = self.nested.as_ref()?;
        let index = nested.index.clone()?;
        let images = nested
            .entries
            .iter()
            .map(|e| {
                self.images
                    .iter()
                    .find(|i| i.found.descriptor.digest == e.descriptor.digest)?
                    .image(&self.blobs)
                    .map(|mut image| {
                        // The same manifest listed twice keeps each listing's descriptor.
                        image.entry = e.descriptor.clone();
                        image
                    })
            })
            .collect::<Option<Vec<_>>>()?;
        Some(PlatformImages {
            entry: nested.found.descriptor.clone(),
            index,
            images,
        })
    }
}

/// The annotation BuildKit puts on an index's descriptor of an attestation manifest.
pub const ANNOTATION_REFERENCE_TYPE: &str = "vnd.docker.reference.type";

/// True for an image index's descriptor of an attestation manifest (BuildKit's provenance
/// and SBOM, `vnd.docker.reference.type: attestation-manifest`, platform `unknown/unknown`):
/// a manifest about an image, not an image. Its blobs are checked as bytes, not as an
/// image's, and its platform is no platform (an index lists one per image).
pub fn is_attestation(d: &Descriptor) -> bool {
    d.annotations
        .as_ref()
        .and_then(|a| a.get(ANNOTATION_REFERENCE_TYPE))
        .is_some_and(|t| t == "attestation-manifest")
}

/// What makes two descriptors describe the same blob the same way: digest and declared
/// size. Whatever is read or checked once is remembered by this, never by the digest alone,
/// so that every descriptor's size is compared with its blob's.
pub fn identity(d: &Descriptor) -> (Digest, i64) {
    (d.digest.clone(), d.size)
}

/// A multi-platform layout's image index and images.
#[derive(Debug, Clone)]
pub struct PlatformImages {
    /// `index.json`'s descriptor of the image index.
    pub entry: Descriptor,
    /// The image index, its exact bytes.
    pub index: Doc<Index>,
    /// The images it lists, in its order.
    pub images: Vec<Image>,
}

/// The document rules over a layout as read: `oci-layout`, `index.json` (exactly one
/// manifest unless a descriptor file selects the image), every image descriptor, manifest
/// and config, and the selected image's platform against `expect`.
pub fn check_documents(p: &mut Problems, layout: &LayoutRead, expect: Option<&(Platform, String)>) {
    if let Some(l) = &layout.oci_layout {
        docs::check_oci_layout(p, "oci-layout", &l.value);
    }
    if let Some(index) = &layout.index {
        docs::check_index(p, "index.json", &index.value);
    }
    match &layout.descriptor_file {
        Some((name, d))
            if layout.index.is_some()
                && !layout
                    .entries
                    .iter()
                    .any(|e| e.descriptor.digest == d.value.digest) =>
        {
            p.warn(
                name,
                None,
                format!(
                    "{} is not listed in index.json: readers of index.json will not find it",
                    d.value.digest
                ),
            );
        }
        Some(_) => {}
        None if layout.index.is_some() => match layout.entries.len() {
            1 => {}
            0 => p.error(
                "index.json",
                Some("manifests".into()),
                "no manifest; the oci-import builder needs exactly one",
            ),
            n => p.error(
                "index.json",
                Some("manifests".into()),
                format!(
                    "lists {n} manifests; the oci-import builder needs exactly one (or --file naming a file with a single descriptor), and skopeo and podman refuse a layout listing several (\"more than one image\"): a multi-platform layout lists one image index, stored as a blob, that lists the manifests (`ocipack build --index` writes one)"
                ),
            ),
        },
        None => {}
    }
    if layout.descriptor_file.is_none()
        && let Some(nested) = &layout.nested
    {
        check_nested(p, layout, nested, expect);
    }
    for (n, img) in layout.images.iter().enumerate() {
        let expect = if Some(n) == layout.selected {
            expect
        } else {
            None
        };
        // A registry's manifest, asked for by reference, has no descriptor of its own to
        // carry a platform.
        let bare = img.found.field.is_empty()
            && layout.reference.as_deref() == Some(img.found.file.as_str());
        check_image_read(p, img, expect, bare);
    }
}

/// The rules over a multi-platform layout: `index.json`'s only entry is an image index
/// (a blob) listing at least one manifest, no platform twice; with `expect`, one of them is
/// for that platform.
fn check_nested(
    p: &mut Problems,
    layout: &LayoutRead,
    nested: &NestedRead,
    expect: Option<&(Platform, String)>,
) {
    let at = &nested.found;
    docs::check_descriptor(p, &at.file, &at.field, &at.descriptor);
    let Some(index) = &nested.index else {
        return;
    };
    check_platform_index(p, &nested.path, &index.value);
    if let Some((want, from)) = expect {
        let listed = layout.images.iter().any(|img| {
            img.config
                .as_ref()
                .is_some_and(|c| same_platform(&c.value.platform(), want))
        });
        if !listed {
            p.error(
                &nested.path,
                Some("manifests".into()),
                format!("no manifest for {want}, which {from} means"),
            );
        }
    }
}

/// The rules over an image index listing one manifest per platform (the blob a
/// multi-platform layout's `index.json` points to, or the index `push` makes): the index's
/// own fields, at least one manifest, and no platform listed twice (clients would pick the
/// first and never see the other). Each manifest is checked as an image by the caller.
pub fn check_platform_index(p: &mut Problems, file: &str, index: &Index) {
    docs::check_index(p, file, index);
    if index.manifests.is_empty() {
        p.error(file, Some("manifests".into()), "lists no manifest");
    }
    let mut seen: Vec<(&Platform, usize)> = Vec::new();
    for (i, d) in index.manifests.iter().enumerate() {
        let Some(pl) = d.platform.as_ref().filter(|_| !is_attestation(d)) else {
            continue;
        };
        match seen.iter().find(|(q, _)| *q == pl) {
            Some((_, first)) => p.error(
                file,
                Some(format!("manifests[{i}].platform")),
                format!(
                    "{pl} is listed twice (also manifests[{first}]): clients pick the first and never see the other"
                ),
            ),
            None => seen.push((pl, i)),
        }
    }
}

/// The same OS, architecture and variant (what `--arch` and a path's architecture name
/// decide; not the OS version or features).
fn same_platform(x: &Platform, want: &Platform) -> bool {
    x.os == want.os && x.architecture == want.architecture && x.variant == want.variant
}

/// The document rules over one image descriptor and what could be read of its image
/// (`bare`: a descriptor made for a registry's manifest, which has no platform to check).
fn check_image_read(
    p: &mut Problems,
    img: &ImageRead,
    expect: Option<&(Platform, String)>,
    bare: bool,
) {
    let at = &img.found;
    if !docs::check_manifest_descriptor(p, &at.file, &at.field, &at.descriptor)
        || is_attestation(&at.descriptor)
    {
        return;
    }
    let Some(manifest) = &img.manifest else {
        return;
    };
    docs::check_manifest(
        p,
        &img.manifest_path,
        &manifest.value,
        &at.descriptor.media_type,
    );
    if let Some(config) = &img.config {
        docs::check_config(
            p,
            &img.config_path,
            &config.value,
            Some(manifest.value.layers.len()),
        );
        check_platform(p, at, &img.config_path, &config.value, expect, bare);
    }
}

/// The document rules over an image in memory (what the builder runs on what it made):
/// `entry` as found in `file`/`field`, its manifest, config and platform.
pub fn check_image(
    p: &mut Problems,
    image: &Image,
    file: &str,
    expect: Option<&(Platform, String)>,
) {
    let img = ImageRead {
        found: Found {
            file: file.to_string(),
            field: "manifests[0]".into(),
            descriptor: image.entry.clone(),
        },
        manifest_path: image.entry.digest.blob_path(),
        manifest: Some(image.manifest.clone()),
        config_path: image.manifest.value.config.digest.blob_path(),
        config: Some(image.config.clone()),
    };
    if image.manifest.digest() != image.entry.digest
        || image.manifest.bytes.len() as i64 != image.entry.size
    {
        p.error(
            file,
            Some("manifests[0]".into()),
            "the descriptor does not describe the manifest's bytes",
        );
    }
    if image.config.digest() != image.manifest.value.config.digest
        || image.config.bytes.len() as i64 != image.manifest.value.config.size
    {
        p.error(
            &img.manifest_path,
            Some("config".into()),
            "the descriptor does not describe the config's bytes",
        );
    }
    check_image_read(p, &img, expect, false);
}

/// The platforms of the image descriptor, of the config and of the expectation agree.
fn check_platform(
    p: &mut Problems,
    at: &Found,
    cpath: &str,
    config: &ImageConfig,
    expect: Option<&(Platform, String)>,
    bare: bool,
) {
    let cp = config.platform();
    match &at.descriptor.platform {
        None if bare => {}
        Some(ip) => {
            let pairs: [(&str, Option<String>, Option<String>); 5] = [
                ("os", Some(ip.os.clone()), Some(cp.os.clone())),
                (
                    "architecture",
                    Some(ip.architecture.clone()),
                    Some(cp.architecture.clone()),
                ),
                ("variant", ip.variant.clone(), cp.variant.clone()),
                ("os.version", ip.os_version.clone(), cp.os_version.clone()),
                (
                    "os.features",
                    ip.os_features.as_ref().map(|f| f.join(",")),
                    cp.os_features.as_ref().map(|f| f.join(",")),
                ),
            ];
            for (name, a, b) in pairs {
                if a != b {
                    p.error(
                        &at.file,
                        Some(join_key(&join_key(&at.field, "platform"), name)),
                        format!(
                            "{} here, but the config {cpath} says {}",
                            show_opt(&a),
                            show_opt(&b)
                        ),
                    );
                }
            }
        }
        None => p.warn(
            &at.file,
            Some(at.field.clone()),
            format!("no platform on the image's descriptor (the config says {cp})"),
        ),
    }
    if let Some((want, from)) = expect {
        if !same_platform(&cp, want) {
            p.error(
                cpath,
                Some("architecture".into()),
                format!("the image is {cp}, but {from} means {want}"),
            );
        }
        if let Some(ip) = &at.descriptor.platform
            && !same_platform(ip, want)
        {
            p.error(
                &at.file,
                Some(join_key(&at.field, "platform")),
                format!("{ip}, but {from} means {want}"),
            );
        }
    }
}

/// A value for a message: quoted, or `(absent)`.
fn show_opt(v: &Option<String>) -> String {
    match v {
        Some(s) => format!("{s:?}"),
        None => "(absent)".into(),
    }
}

/// A manifest's `subject` names the manifest it refers to (the image a signature or an SBOM
/// is about). One the layout does not hold (`why`: missing, or why it cannot be opened) is
/// a warning at the manifest `file`: whoever reads the layout cannot see what the image
/// refers to.
pub fn check_subject_held(p: &mut Problems, file: &str, subject: &Descriptor, why: &str) {
    p.warn(
        file,
        Some("subject".into()),
        format!(
            "names {}, which the layout does not hold ({}: {why}): whoever reads the layout \
             cannot see what this image refers to",
            subject.digest,
            subject.digest.blob_path()
        ),
    );
}

/// Whiteout entries (`.wh.NAME`, `.wh..wh..opq`) in an image's only layer, the blob `file`:
/// a whiteout hides a path of a layer below it, and the only layer has none below, so it
/// hides nothing; unpackers drop it (umoci does), leaving no trace of it in the root
/// filesystem. A warning naming the first of `count`.
pub fn check_only_layer_whiteouts(p: &mut Problems, file: &str, count: u64, first: &str) {
    let (what, them) = if count == 1 {
        ("a whiteout".to_string(), "it")
    } else {
        (format!("{count} whiteouts (the first is this one)"), "them")
    };
    p.warn(
        file,
        Some(format!("tar entry \"{}\"", crate::show::text(first))),
        format!(
            "{what} in the image's only layer, which has no layer below it to hide anything \
             in: unpackers (umoci) drop {them}"
        ),
    );
}
