//! From inputs to a finished single-image layout: the one function `ocipack image` calls.
//!
//! Order of work: check the target, stage a directory beside it, gather the inputs into a
//! sorted tree, encode the layer in one pass, write config → manifest → index (each blob
//! in the canonical JSON form), add readable names, verify the staged layout from disk,
//! and swap it into place.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::image::write::{self as layout, NameStyle, Staging};
use crate::input::{Tree, TreeOptions};
use crate::layer::{self, EncodeOptions, LayerInfo};
use crate::media;
use crate::platform::Platform;
use crate::progress::Progress;
use crate::spec::{
    ANNOTATION_CONTAINERD_NAME, ANNOTATION_REF_NAME, ContainerConfig, Descriptor, History,
    ImageConfig, Index, Manifest, RootFs,
};
use crate::timestamp::Timestamp;

/// The `PATH` that `docker build` gives an image built `FROM scratch` on Linux.
pub const DEFAULT_LINUX_PATH: &str =
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The readable name of the image config in a layout.
pub const CONFIG_FILE_NAME: &str = "image-config.json";
/// The readable name of the image manifest in a layout.
pub const MANIFEST_FILE_NAME: &str = "image-manifest.json";

/// One input of the layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
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
    /// An existing tar (plain, gzip or zstd), re-packed entry by entry.
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
}

impl ImageSpec {
    /// The `created` timestamp.
    pub fn created(&self) -> Timestamp {
        self.tree.created
    }
}

/// The environment a scratch image starts with on `platform` (Linux: the default PATH).
pub fn default_env(platform: &Platform) -> Vec<String> {
    if platform.os == "linux" {
        vec![DEFAULT_LINUX_PATH.to_string()]
    } else {
        Vec::new()
    }
}

/// What was built.
#[derive(Debug, Clone)]
pub struct BuiltImage {
    /// The index entry (manifest descriptor with platform and annotations).
    pub manifest: Descriptor,
    /// The config blob's descriptor.
    pub config: Descriptor,
    /// The layer.
    pub layer: LayerInfo,
    /// Warnings from reading the inputs.
    pub warnings: Vec<String>,
}

/// Builds the layout into a staging directory beside `out` without touching `out`, and
/// verifies it from disk ([`verify_staged`]); the caller commits it ([`Staging::commit`])
/// or compares it.
pub fn stage_image(
    spec: &ImageSpec,
    out: &Path,
    progress: Option<&Progress>,
) -> Result<(Staging, BuiltImage)> {
    check_level(spec.encode)?;
    check_not_inside_inputs(spec, out)?;
    layout::check_target(out)?;
    if let Some(name) = &spec.descriptor_file {
        check_descriptor_file_name(name)?;
    }
    let staging = Staging::new(out)?;

    let mut tree = Tree::new(spec.tree.clone());
    for input in &spec.inputs {
        match input {
            Input::Rootfs(dir) => tree.add_rootfs(dir)?,
            Input::File { src, dest, mode } => tree.add_file(src, dest, *mode)?,
            Input::Tar(path) => tree.add_tar(path, staging.path())?,
            Input::Bytes { dest, bytes, mode } => tree.add_bytes(dest, bytes.clone(), *mode)?,
        }
    }
    let entries = tree.finish()?;
    let layer = layer::write_layer(&entries, spec.encode, &staging.blob_dir(), progress)?;
    staging.fix_blob_mode(&layer.digest)?;

    let created = spec.created().to_string();
    let config = ImageConfig {
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
    };
    let config_desc = staging.write_json_blob(media::CONFIG, &config)?;
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(media::MANIFEST.into()),
        artifact_type: None,
        config: config_desc.clone(),
        layers: vec![layer.descriptor()],
        subject: None,
        annotations: (!spec.annotations.is_empty()).then(|| spec.annotations.clone()),
    };
    let mut manifest_desc = staging.write_json_blob(media::MANIFEST, &manifest)?;
    manifest_desc.platform = Some(spec.platform.clone());
    if let Some(name) = &spec.ref_name {
        let mut annotations = BTreeMap::from([(ANNOTATION_REF_NAME.to_string(), name.clone())]);
        // containerd (and `ctr import`) expects a full image reference here; a bare tag
        // such as `latest` is only meaningful as the OCI ref name.
        if name.contains(['/', ':']) {
            annotations.insert(ANNOTATION_CONTAINERD_NAME.to_string(), name.clone());
        }
        manifest_desc.annotations = Some(annotations);
    }
    let index = Index {
        schema_version: 2,
        media_type: Some(media::INDEX.into()),
        artifact_type: None,
        manifests: vec![manifest_desc.clone()],
        subject: None,
        annotations: None,
    };
    staging.write_oci_layout()?;
    staging.write_json("index.json", &index)?;
    if let Some(name) = &spec.descriptor_file {
        staging.write_json(name, &manifest_desc)?;
    }
    staging.name_blob(
        spec.names,
        spec.encode.compression.layer_file_name(),
        &layer.digest,
    )?;
    staging.name_blob(spec.names, CONFIG_FILE_NAME, &config_desc.digest)?;
    staging.name_blob(spec.names, MANIFEST_FILE_NAME, &manifest_desc.digest)?;
    verify_staged(&staging, spec)?;

    let built = BuiltImage {
        manifest: manifest_desc,
        config: config_desc,
        layer,
        warnings: entries.warnings().to_vec(),
    };
    Ok((staging, built))
}

/// Builds the layout and swaps it into place at `out`. On any error `out` is untouched.
pub fn build_image(
    spec: &ImageSpec,
    out: &Path,
    progress: Option<&Progress>,
) -> Result<BuiltImage> {
    let (staging, built) = stage_image(spec, out, progress)?;
    staging.commit(out)?;
    Ok(built)
}

/// Verifies a staged layout from disk, as `ocipack verify` would (and against the spec's
/// platform), so that a layout which fails verification is never renamed into place.
pub fn verify_staged(staging: &Staging, spec: &ImageSpec) -> Result<()> {
    let opts = crate::verify::VerifyOptions {
        file: spec.descriptor_file.clone(),
        expect: Some((spec.platform.clone(), "the build's platform".into())),
        arch_from_path: false,
    };
    let report = crate::verify::verify_layout(staging.path(), &opts)?;
    if report.is_ok() {
        return Ok(());
    }
    let errors: Vec<String> = report
        .problems
        .iter()
        .filter(|p| p.severity == crate::verify::Severity::Error)
        .map(ToString::to_string)
        .collect();
    Err(Error::CheckFailed(format!(
        "the built layout fails verification, so it was not written: {}",
        errors.join("; ")
    )))
}

fn check_level(e: EncodeOptions) -> Result<()> {
    match (e.level, e.compression.level_range()) {
        (None, _) => Ok(()),
        (Some(l), Some((lo, hi))) if (lo..=hi).contains(&l) => Ok(()),
        (Some(l), Some((lo, hi))) => Err(Error::usage(format!(
            "compression level {l}: {} levels are {lo} to {hi}",
            e.compression
        ))),
        (Some(_), None) => Err(Error::usage(
            "a compression level applies to gzip and zstd only",
        )),
    }
}

fn check_descriptor_file_name(name: &str) -> Result<()> {
    let reserved = [
        "index.json",
        "oci-layout",
        "blobs",
        CONFIG_FILE_NAME,
        MANIFEST_FILE_NAME,
    ];
    if name.is_empty()
        || name.contains('/')
        || name.starts_with('.')
        || reserved.contains(&name)
        || name.starts_with("rootfs.tar")
    {
        return Err(Error::input(
            format!("--descriptor-file {name:?}"),
            "must be a plain file name that no layout file uses",
        ));
    }
    Ok(())
}

/// Refuses an output inside a `--rootfs` input (the build would read its own output) or an
/// input inside the output (a rebuild would delete its own input).
fn check_not_inside_inputs(spec: &ImageSpec, out: &Path) -> Result<()> {
    let abs_out = absolute(out)?;
    for input in &spec.inputs {
        let (opt, path) = match input {
            Input::Rootfs(p) => ("--rootfs", p),
            Input::File { src, .. } => ("--file", src),
            Input::Tar(p) => ("--tar", p),
            Input::Bytes { .. } => continue,
        };
        let abs_in = absolute(path)?;
        if opt == "--rootfs" && abs_out.starts_with(&abs_in) {
            return Err(Error::input(
                format!("output {}", out.display()),
                format!("is inside the input tree {opt} {}", path.display()),
            ));
        }
        if abs_in.starts_with(&abs_out) {
            return Err(Error::input(
                format!("{opt} {}", path.display()),
                format!(
                    "is inside the output {}, which a build replaces",
                    out.display()
                ),
            ));
        }
    }
    Ok(())
}

/// An absolute, symlink-resolved form of `p` (resolving the longest existing prefix).
fn absolute(p: &Path) -> Result<PathBuf> {
    let cwd =
        std::env::current_dir().map_err(|e| Error::io("reading current directory", ".", e))?;
    let joined = cwd.join(p);
    let mut existing = joined.as_path();
    let mut rest = Vec::new();
    loop {
        if let Ok(c) = std::fs::canonicalize(existing) {
            let mut out = c;
            for r in rest.iter().rev() {
                out.push(r);
            }
            return Ok(out);
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                existing = parent;
            }
            _ => return Ok(joined),
        }
    }
}
