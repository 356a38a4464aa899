//! `ocipack fix`: rewrite a layout another tool made into the shape every client accepts,
//! without changing a single digest.
//!
//! Contract: the layout is opened and verified by the plain rules ([`crate::verify::open`]);
//! any error other than a missing `oci-layout` refuses it (exit 2), because a layout that
//! is not valid cannot be repaired without changing what some digest names. Then a new
//! layout is staged beside it ([`crate::store::staging`]): `index.json` (and the `--file`
//! descriptor file) with their exact bytes, `oci-layout` as it was (or ocipack's when
//! missing), every blob an image references copied into `blobs/<algorithm>/<hex>` as a
//! regular file through the image's verifying reader (a blob whose bytes do not hash to its
//! name stops the fix), and readable names per [`NameStyle`]. The
//! new layout replaces the old one in one `renameat2(RENAME_EXCHANGE)`; any failure leaves
//! the old one exactly as it was. Nothing else is carried over: entries that are neither
//! documents, referenced blobs nor readable names are listed in the report.
//!
//! This turns busybox-style layouts (readable names as files, `blobs/sha256/…` as symlinks
//! to them), which crane ≥ 0.21.7 refuses, into layouts it accepts, with the same digests.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::image::Image;
use crate::image::build::{CONFIG_FILE_NAME, MANIFEST_FILE_NAME};
use crate::image::write::{LayoutWriter, NameStyle, Written};
use crate::media::Compression;
use crate::problems::Severity;
use crate::show;
use crate::spec::Descriptor;
use crate::store::root::EntryType;
use crate::store::staging::Target;
use crate::verify::{self, Options, Profile, Source};

/// What to fix, and how.
#[derive(Debug, Clone, Default)]
pub struct FixOptions {
    /// How readable names relate to blobs in the fixed layout.
    pub names: NameStyle,
    /// A single-descriptor file (bashbrew's `File:`) to keep and select the image with.
    pub file: Option<String>,
}

/// What `fix` did.
#[derive(Debug, Clone)]
pub struct FixReport {
    /// The layout.
    pub layout: PathBuf,
    /// The selected image's manifest digest (unchanged).
    pub manifest: Digest,
    /// Every blob written, and whether it was a symlink before.
    pub blobs: Vec<(Digest, bool)>,
    /// True if `oci-layout` was missing and was added.
    pub added_oci_layout: bool,
    /// Entries of the old layout that were not carried over (paths as bytes).
    pub dropped: Vec<Vec<u8>>,
    /// False if the layout already had the right shape and was left untouched.
    pub written: bool,
}

/// `--file`'s name without `.` and empty components (`./a//b.json` is `a/b.json`); a name
/// that ends in `/` or `/.` is a usage error.
fn normal_file_name(f: &str) -> Result<String> {
    let parts: Vec<&str> = f
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    let last = f.rsplit('/').next().unwrap_or("");
    if parts.is_empty() || last.is_empty() || last == "." {
        return Err(Error::usage(format!(
            "--file: \"{}\" names a directory, not the descriptor file",
            show::text(f)
        )));
    }
    Ok(parts.join("/"))
}

/// `ocipack fix DIR`: see the module documentation.
pub fn fix_layout(dir: &Path, opts: &FixOptions) -> Result<FixReport> {
    verify::check_file_is_inside("--file", opts.file.as_deref())?;
    // The descriptor file is written back under its name: `./d.json` is `d.json`, and a
    // name that ends in `/` is a directory's, not a file's.
    let file = opts.file.as_deref().map(normal_file_name).transpose()?;
    let vopts = Options {
        file,
        profile: Profile::Oci,
        ..Options::default()
    };
    let (report, checked) = verify::open(&Source::Layout(dir.into()), &vopts)?.into_parts();
    let missing_layout =
        |p: &verify::Problem| p.file == "oci-layout" && p.message == "does not exist";
    let errors: Vec<&verify::Problem> = report
        .problems
        .iter()
        .filter(|p| p.severity == Severity::Error && !missing_layout(p))
        .collect();
    let refuse = |why: String| Error::input(format!("layout {}", show::path(dir)), why);
    if let Some(first) = errors.first() {
        return Err(refuse(format!(
            "cannot be fixed without changing a digest ({} errors; the first: {first}); \
             `ocipack verify` lists them",
            errors.len()
        )));
    }
    let checked = checked.ok_or_else(|| refuse("holds no single image to fix".into()))?;
    let layout = &checked.layout;
    let added_oci_layout = report.problems.iter().any(missing_layout);

    // Every blob any image of the layout references, each once, with its image (whose
    // verified reader copies it). With no error, every image was read whole.
    let mut blobs: Vec<(Descriptor, Image)> = Vec::new();
    let mut seen = BTreeSet::new();
    for img in &layout.images {
        let image = img
            .image(&layout.blobs)
            .ok_or_else(|| refuse("holds an image that could not be read whole".into()))?;
        let ds = std::iter::once(&image.entry)
            .chain([&image.manifest.value.config])
            .chain(&image.manifest.value.layers);
        for d in ds {
            if seen.insert(d.digest.clone()) {
                blobs.push((d.clone(), image.clone()));
            }
        }
    }
    let root = layout
        .root()
        .ok_or_else(|| refuse("is not a layout".into()))?;
    let before = verify::survey(root);
    let was_symlink = |path: &str| {
        before
            .iter()
            .any(|f| f.path == path.as_bytes() && f.kind == EntryType::Symlink)
    };

    let target = Target::at_path(dir)?;
    let mut out = LayoutWriter::fixing(&target)?;
    match &layout.oci_layout {
        Some(doc) => out.write_file("oci-layout", &doc.bytes),
        None => out.write_oci_layout()?,
    }
    let index = layout
        .index
        .as_ref()
        .ok_or_else(|| refuse("has no index.json".into()))?;
    out.write_file("index.json", &index.bytes);
    if let Some((name, doc)) = &layout.descriptor_file {
        out.write_file(name, &doc.bytes);
    }
    let mut written = Vec::new();
    for (d, image) in &blobs {
        let path = d.digest.blob_path();
        let mut content = image.open_blob(d)?;
        // A blob that is a regular file at its place was read from there, verified: the
        // copy is the same bytes. A symlinked one becomes a file.
        out.copy_blob(&d.digest, &mut content, !was_symlink(&path))?;
        written.push((d.digest.clone(), was_symlink(&path)));
    }

    let image = &checked.image;
    let mut names: Vec<String> = Vec::new();
    if let [layer] = image.layers()
        && let Some(c) = Compression::from_media_type(&layer.media_type)
    {
        names.push(c.layer_file_name().to_string());
        out.name_blob(opts.names, c.layer_file_name(), &layer.digest)?;
    }
    let config = &image.manifest.value.config.digest;
    if !image.layers().iter().any(|l| l.digest == *config) {
        out.name_blob(opts.names, CONFIG_FILE_NAME, config)?;
        names.push(CONFIG_FILE_NAME.into());
    }
    out.name_blob(opts.names, MANIFEST_FILE_NAME, &image.entry.digest)?;
    names.push(MANIFEST_FILE_NAME.into());

    let mut kept: BTreeSet<String> = ["oci-layout", "index.json", "blobs"]
        .into_iter()
        .map(String::from)
        .collect();
    // The descriptor file, and the directories it is in.
    if let Some((n, _)) = &layout.descriptor_file {
        let mut at = n.as_str();
        kept.insert(at.to_string());
        while let Some((parent, _)) = at.rsplit_once('/') {
            kept.insert(parent.to_string());
            at = parent;
        }
    }
    kept.extend(blobs.iter().map(|(d, _)| d.digest.blob_path()));
    kept.extend(
        blobs
            .iter()
            .map(|(d, _)| format!("blobs/{}", d.digest.algorithm().name())),
    );
    if opts.names != NameStyle::None {
        kept.extend(names);
    }
    let dropped = before
        .iter()
        .filter(|f| !std::str::from_utf8(&f.path).is_ok_and(|p| kept.contains(p)))
        .map(|f| f.path.clone())
        .collect();

    let replaced = out.commit()? == Written::Replaced;
    Ok(FixReport {
        written: replaced,
        layout: dir.to_path_buf(),
        manifest: image.entry.digest.clone(),
        blobs: written,
        added_oci_layout,
        dropped,
    })
}
