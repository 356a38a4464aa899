//! From inputs to a finished layout: the builder (one image, or several platforms' images
//! under one image index).
//!
//! Order of work, one way: check the target, gather the inputs into a sorted tree, encode
//! the layer in one pass (tar stream → diff_id → compressor → digest → blob, the blob an
//! anonymous file compared as it is written with the target's layer), make config →
//! manifest → index entry in the canonical JSON form, check them in memory with the same
//! rules `ocipack verify` applies to a layout on disk, and hold them with the readable names
//! in a [`LayoutWriter`]. Only if that differs from what the target holds is a directory
//! staged beside it, made durable and swapped into place; otherwise nothing is written.
//! Nothing written is read back: the model the builder returns ([`Image`]) is what it wrote.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::image::index::{INDEX_FILE_NAME, layout_entry, platform_index, ref_name_annotations};
use crate::image::rules::check_image;
use crate::image::rules::oci_import::{self, Profile};
use crate::image::write::{LayoutWriter, NameStyle, Written};
use crate::image::{Doc, Image};
use crate::input::EntryList;
use crate::input::{Tree, TreeOptions};
use crate::layer::BlobSink;
use crate::layer::{self, EncodeOptions, LayerInfo};
use crate::media;
use crate::platform::Platform;
use crate::problems::Problems;
use crate::progress::Progress;
use crate::show;
use crate::spec::{ContainerConfig, Descriptor, History, ImageConfig, Index, Manifest, RootFs};
use crate::store::hook::{self, test_hook};
use crate::store::paths::{Overlap, overlaps};
use crate::store::root::Root;
use crate::store::staging::Target;
use crate::timestamp::Timestamp;

/// The `PATH` that `docker build` gives an image built `FROM scratch` on Linux.
pub const DEFAULT_LINUX_PATH: &str =
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The readable name of the image config in a layout.
pub const CONFIG_FILE_NAME: &str = "image-config.json";
/// The readable name of the image manifest in a layout.
pub const MANIFEST_FILE_NAME: &str = "image-manifest.json";

/// Where one input of the layer comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputSource {
    /// Everything below a directory.
    Rootfs(PathBuf),
    /// One file placed at an absolute path in the image, with an optional mode.
    File {
        /// The file on disk.
        src: PathBuf,
        /// Where it goes in the image (`/hello`).
        dest: String,
        /// Permission bits (default: 0755 if executable by its owner, else 0644).
        mode: Option<u32>,
    },
    /// An existing tar (plain, gzip, zstd, xz or bzip2), re-packed entry by entry.
    Tar(PathBuf),
    /// Generated content placed at an absolute path.
    Bytes {
        /// Where it goes in the image.
        dest: String,
        /// The content.
        bytes: Vec<u8>,
        /// Permission bits.
        mode: u32,
    },
}

/// One input of the layer, and how the user wrote it (for messages:
/// `--rootfs "x"`, `p/ocipack.toml:12: input.rootfs "x"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    /// Where its entries come from.
    pub source: InputSource,
    /// The setting and value as written.
    pub origin: String,
}

/// Everything that decides an image's bytes. Two equal specs give identical layouts.
#[derive(Debug, Clone)]
pub struct ImageSpec {
    /// The layer's inputs, in the order given (the order does not change the bytes).
    pub inputs: Vec<Input>,
    /// How inputs become tar entries (includes `created`).
    pub tree: TreeOptions,
    /// The image's platform.
    pub platform: Platform,
    /// Execution parameters (Env, Cmd, ...).
    pub config: ContainerConfig,
    /// Text of the single history entry, if any.
    pub created_by: Option<String>,
    /// Layer encoding.
    pub encode: EncodeOptions,
    /// `org.opencontainers.image.ref.name` (and `io.containerd.image.name`) on the index entry.
    pub ref_name: Option<String>,
    /// Annotations on the manifest (none by default).
    pub annotations: BTreeMap<String, String>,
    /// How readable names relate to blobs.
    pub names: NameStyle,
    /// Also write the index entry as a single-descriptor JSON file of this name.
    pub descriptor_file: Option<String>,
    /// The rules the built image must pass, in memory, before anything is written: always
    /// the layout rules, and with [`Profile::OciImport`] (a project with a `[library]`
    /// table) those of the Official Images' oci-import path. Never changes the bytes.
    pub profile: Profile,
}

impl ImageSpec {
    /// The `created` timestamp.
    pub fn created(&self) -> Timestamp {
        self.tree.created
    }
}

/// What was built.
#[derive(Debug, Clone)]
pub struct BuiltImage {
    /// The image: its index entry (with platform and annotations), manifest and config,
    /// blobs in the staged (later committed) layout.
    pub image: Image,
    /// The layer.
    pub layer: LayerInfo,
    /// Warnings from reading the inputs.
    pub warnings: Vec<String>,
    /// Whether the layout was written, once it was ([`LayoutWriter::commit`]).
    pub written: Option<Written>,
}

/// Gathers the inputs of `spec` into a sorted tree of entries, ready to be streamed (see
/// [`crate::input`]). Temporary files (a `--tar` input's spool) go to `temp_dir`.
pub fn collect_inputs(spec: &ImageSpec, temp_dir: &Root) -> Result<EntryList> {
    let mut tree = Tree::new(spec.tree.clone());
    for input in &spec.inputs {
        let origin = &input.origin;
        match &input.source {
            InputSource::Rootfs(dir) => tree.add_rootfs(dir, origin)?,
            InputSource::File { src, dest, mode } => tree.add_file(src, dest, *mode, origin)?,
            InputSource::Tar(path) => tree.add_tar(path, origin, temp_dir)?,
            InputSource::Bytes { dest, bytes, mode } => {
                tree.add_bytes(dest, bytes.clone(), *mode)?
            }
        }
    }
    let entries = tree.finish()?;
    // Tests change an input at exactly this moment: after the walk, before any read.
    test_hook("OCIPACK_TEST_HOOK_AFTER_WALK");
    Ok(entries)
}

/// Builds the layout for `target` without writing anything: the layer goes to an anonymous
/// file, the documents stay in memory. The caller writes it ([`LayoutWriter::commit`], or
/// [`LayoutWriter::stage`] for several outputs at once) or compares it with the target.
pub fn prepare_image(
    spec: &ImageSpec,
    target: &Target,
    progress: Option<&Progress>,
) -> Result<(LayoutWriter, BuiltImage)> {
    let (mut out, built) = prepare_blobs(spec, target, progress)?;
    let image = &built.image;
    out.write_oci_layout()?;
    out.write_top_index(image.entry.clone())?;
    if let Some(name) = &spec.descriptor_file {
        out.write_file(name, &Doc::canonical(image.entry.clone())?.bytes);
    }
    out.name_blob(
        spec.names,
        spec.encode.compression.layer_file_name(),
        &built.layer.digest,
    )?;
    out.name_blob(spec.names, CONFIG_FILE_NAME, &image.config.digest())?;
    out.name_blob(spec.names, MANIFEST_FILE_NAME, &image.entry.digest)?;
    Ok((out, built))
}

/// Builds the image's blobs for `target` without writing anything: the layer (in an
/// anonymous file), config and manifest, checked in memory with the layout rules (and the
/// spec's profile). Nothing else of a layout: [`prepare_image`] adds `index.json`,
/// `oci-layout` and readable names for a single-image layout, [`prepare_index_layout`] the
/// image index of a multi-platform one.
pub fn prepare_blobs(
    spec: &ImageSpec,
    target: &Target,
    progress: Option<&Progress>,
) -> Result<(LayoutWriter, BuiltImage)> {
    check_not_inside_inputs(spec, target)?;
    let mut out = LayoutWriter::for_platform(target, &spec.platform)?;
    let entries = collect_inputs(spec, out.temp_dir())?;
    // Tests record every layer encoded (an incremental build encodes only what changed).
    hook::test_log(hook::ENCODINGS, || target.shown());
    let sink = out.layer_sink()?;
    let (layer, written) = layer::write_layer(&entries, spec.encode, sink, progress)?;
    out.finish_layer(&layer, written)?;

    let image = describe(spec, &layer)?;
    let mut problems = Problems::default();
    let expect = (spec.platform.clone(), "the build's platform".to_string());
    check_image(&mut problems, &image, "index.json", Some(&expect));
    if spec.profile == Profile::OciImport {
        let files_names = spec.names == NameStyle::Files;
        oci_import::check_built(&mut problems, &image, files_names, Some(&expect));
    }
    problems.fail_on_errors("the built image breaks the layout rules, so nothing was written")?;
    out.write_doc(&image.config);
    out.write_doc(&image.manifest);

    let mut warnings = entries.warnings().to_vec();
    warnings.extend(
        problems
            .as_slice()
            .iter()
            .filter(|p| p.severity == crate::problems::Severity::Warning)
            .map(|p| p.to_string().trim_start_matches("warning: ").to_string()),
    );
    let built = BuiltImage {
        image,
        layer,
        warnings,
        written: None,
    };
    Ok((out, built))
}

/// The image `spec` makes, built in memory: its layer encoded into nothing but hashes and
/// counters (the same bytes as a build's, never stored), its config and manifest checked
/// with the rules a build runs before it writes. Nothing is written (a `--tar` input's
/// spool goes to an anonymous file in `temp_dir`). What `build --check --against` compares
/// with a registry.
pub fn image_in_memory(spec: &ImageSpec, temp_dir: &Root) -> Result<(Image, LayerInfo)> {
    let entries = collect_inputs(spec, temp_dir)?;
    let layer = measure_layer(&entries, spec)?;
    let image = describe(spec, &layer)?;
    let mut problems = Problems::default();
    let expect = (spec.platform.clone(), "the build's platform".to_string());
    check_image(&mut problems, &image, "index.json", Some(&expect));
    if spec.profile == Profile::OciImport {
        let files_names = spec.names == NameStyle::Files;
        oci_import::check_built(&mut problems, &image, files_names, Some(&expect));
    }
    problems.fail_on_errors("the built image breaks the layout rules")?;
    Ok((image, layer))
}

/// The sizes and digests of the layer `spec` makes, encoded into nothing (no file).
pub fn measure_layer(entries: &EntryList, spec: &ImageSpec) -> Result<LayerInfo> {
    layer::write_layer(entries, spec.encode, BlobSink::Count, None).map(|(info, _)| info)
}

/// The image's config, manifest and index entry for `layer`, in the canonical JSON form.
fn describe(spec: &ImageSpec, layer: &LayerInfo) -> Result<Image> {
    let created = spec.created().to_string();
    let config = Doc::canonical(ImageConfig {
        created: Some(created.clone()),
        author: None,
        architecture: spec.platform.architecture.clone(),
        os: spec.platform.os.clone(),
        os_version: spec.platform.os_version.clone(),
        os_features: spec.platform.os_features.clone(),
        variant: spec.platform.variant.clone(),
        config: Some(spec.config.clone()),
        rootfs: RootFs {
            kind: "layers".into(),
            diff_ids: vec![layer.diff_id.clone()],
        },
        history: spec.created_by.as_ref().map(|by| {
            vec![History {
                created: Some(created.clone()),
                created_by: Some(by.clone()),
                ..History::default()
            }]
        }),
    })?;
    let manifest = Doc::canonical(Manifest {
        schema_version: 2,
        media_type: Some(media::MANIFEST.into()),
        artifact_type: None,
        config: config.descriptor(media::CONFIG),
        layers: vec![layer.descriptor()],
        subject: None,
        annotations: (!spec.annotations.is_empty()).then(|| spec.annotations.clone()),
    })?;
    let mut entry = manifest.descriptor(media::MANIFEST);
    entry.platform = Some(spec.platform.clone());
    entry.annotations = spec.ref_name.as_deref().map(ref_name_annotations);
    Ok(Image::new(entry, manifest, config, None))
}

/// Builds the layout and writes it to `out` if it differs from what `out` holds (staged,
/// made durable, swapped into place). On any error `out` is untouched.
pub fn build_image(
    spec: &ImageSpec,
    out: &Path,
    progress: Option<&Progress>,
) -> Result<BuiltImage> {
    let target = Target::at_path(out)?;
    let (writer, mut built) = prepare_image(spec, &target, progress)?;
    built.written = Some(writer.commit()?);
    Ok(built)
}

/// Refuses an output inside a `--rootfs` input (the build would read its own output) or an
/// input inside the output (a rebuild would delete its own input), as the filesystem sees
/// them ([`overlaps`]: a bind mount or a symlink is no way around it).
fn check_not_inside_inputs(spec: &ImageSpec, target: &Target) -> Result<()> {
    let out = &target.parent().path().join(target.name());
    for input in &spec.inputs {
        let (tree, path) = match &input.source {
            InputSource::Rootfs(p) => (true, p),
            InputSource::File { src, .. } => (false, src),
            InputSource::Tar(p) => (false, p),
            InputSource::Bytes { .. } => continue,
        };
        let overlap = overlaps(out, path)?;
        if tree && matches!(overlap, Some(Overlap::Same | Overlap::Inside)) {
            return Err(Error::input(
                format!("output {}", show::path(out)),
                format!("is inside the input tree {}", input.origin),
            ));
        }
        if matches!(overlap, Some(Overlap::Same | Overlap::Around)) {
            return Err(Error::input(
                input.origin.clone(),
                format!(
                    "is inside the output {}, which a build replaces",
                    show::path(out)
                ),
            ));
        }
    }
    Ok(())
}

// ------------------------------------------------------------------ multi-platform layouts

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
    out.write_top_index(entry.clone())?;
    out.name_blob(style, INDEX_FILE_NAME, &index.digest())?;
    for (name, digest) in &named {
        out.name_blob(style, name, digest)?;
    }
    Ok((out, IndexLayout { entry, index }))
}
