//! `ocipack verify`: trust nothing in an image source, report every problem; and the one
//! way every other command reads an image to act on ([`open`]).
//!
//! A layout committed to git is input from strangers. Verification reads it the way the
//! Docker Official Images `oci-import` builder does, only stricter, and collects every
//! problem instead of stopping at the first:
//!
//! - `oci-layout` (version 1.0.0) and `index.json` (or a `--file` single descriptor),
//!   decoded strictly ([`crate::image::rules::docs`]); exactly one image manifest, or (a
//!   multi-platform layout, the nested form `build --index` writes) exactly one image index,
//!   a blob listing at least one manifest and no platform twice, each image it lists checked
//!   like a single one.
//! - Every descriptor's blob hashes to its digest and has its size, read with a bound of
//!   the declared size (a size claim allocates nothing); JSON blobs are read only up to
//!   [`MAX_JSON`]. A descriptor's `data` is exactly its blob, base64.
//! - Manifest and config decoded strictly; config and layer media types; each distinct layer
//!   blob is decompressed once as a stream and hashed against its `diff_id`, and its tar
//!   entries are checked ([`crate::tar::read`]).
//! - The platform of the index entry, of the config, and of `--arch` (or of a bashbrew
//!   architecture name in the layout's path) agree.
//! - Every file is opened through [`crate::store::root::Root`]: nothing outside the layout is
//!   ever read, and nothing blocks.
//! - Compatibility notes: symlinked blobs (go-containerregistry ≥ 0.21.7 refuses them) and
//!   unreferenced files in `blobs/`.
//!
//! The parts: `read.rs` reads the documents (the one layout reader), the pure rules of
//! [`crate::image::rules`] judge them (the same functions the builder runs on what it made),
//! `stream.rs` streams every blob, and `survey.rs` gathers the file facts of
//! `--profile oci-import` ([`survey`]).
//!
//! One entry point: [`open`] reads and checks a [`Source`] whole and returns what it found,
//! [`Opened`]. `verify` prints its [`Report`]; `diff`, `export`, `fix` and `push` take its
//! image ([`Opened::single`]) or images ([`Opened::valid`]), which a source with any error
//! never yields, and read blobs only through the model's verified reader
//! ([`Image::open_blob`]). A source is a layout directory today; a registry reference
//! becomes another [`Source`] without changing any caller.

mod read;
mod remote;
pub mod scan;
mod stream;
mod survey;

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::image::Image;
use crate::image::rules::{self, oci_import};
use crate::image::rules::{LayoutRead, PlatformImages, check_documents};
use crate::platform::Platform;
use crate::registry::fetch::FetchOptions;
use crate::registry::reference::{DOCKER_TRANSPORT, Reference};
use crate::show;
use crate::store::root::Root;

use read::Reader;
use stream::{Store, Verifier};

pub use crate::image::blob::MAX_JSON;
pub use crate::problems::{Problem, Problems, Severity};
pub use oci_import::Profile;
pub use stream::{LayerContent, scan_layer_bytes};
pub use survey::{MAX_SURVEY, survey};

/// Where an image to check comes from.
#[derive(Debug, Clone)]
pub enum Source {
    /// A registry reference (`docker://[HOST/]REPO[:TAG|@DIGEST]`), read with these
    /// options (trust, credentials, the deadline).
    Registry(Reference, FetchOptions),
    /// A layout directory, as the user named it (the path itself may lead through
    /// symlinks: the user named it; beneath it, symlinks are followed only while they stay
    /// inside).
    Layout(PathBuf),
    /// A layout directory the caller has already opened (a project's output, reached
    /// without following any symlink); named by its path in messages.
    LayoutAt(Root),
}

/// True when `arg`'s first component is `USER:SECRET@HOST` and more follows: a reference
/// with credentials typed without `docker://`, which must not be echoed as a path.
fn credentials_like(arg: &str) -> bool {
    let Some((first, rest)) = arg.split_once('/') else {
        return false;
    };
    !rest.is_empty()
        && first
            .split_once('@')
            .is_some_and(|(user, host)| user.contains(':') && !host.is_empty())
}

impl Source {
    /// The source a command-line argument names: a registry reference when it starts with
    /// `docker://` (skopeo's spelling; read with `fetch`), else a layout directory (a path
    /// that looks like `host/repo:tag` stays a path).
    pub fn from_arg(arg: impl Into<PathBuf>, fetch: &FetchOptions) -> Result<Source> {
        let arg: PathBuf = arg.into();
        match arg.to_str() {
            Some(s) if s.starts_with(DOCKER_TRANSPORT) => {
                Ok(Source::Registry(s.parse()?, fetch.clone()))
            }
            Some(s) if credentials_like(s) => {
                let (_, rest) = s.split_once('@').unwrap_or_default();
                Err(Error::usage(format!(
                    "<redacted>@{}: looks like a registry reference holding credentials, which \
                     no reference may hold (they were not printed): a reference starts with \
                     {DOCKER_TRANSPORT} and credentials come from the Docker config file \
                     (docker login); a directory of that name is ./ followed by it",
                    show::text(rest)
                )))
            }
            _ => Ok(Source::Layout(arg)),
        }
    }

    /// The layout directory, for a layout source.
    pub fn layout_path(&self) -> Option<&Path> {
        match self {
            Source::Layout(dir) => Some(dir),
            Source::LayoutAt(root) => Some(root.path()),
            Source::Registry(..) => None,
        }
    }

    /// True for a registry reference.
    pub fn is_remote(&self) -> bool {
        matches!(self, Source::Registry(..))
    }

    /// The source as named, escaped for a message.
    pub fn shown(&self) -> String {
        match self {
            Source::Layout(dir) => show::path(dir),
            Source::LayoutAt(root) => show::path(root.path()),
            Source::Registry(r, _) => show::text(&r.with_transport()),
        }
    }
}

/// What to check a source against, and what to keep.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// A file in the layout holding the single image descriptor to use (bashbrew's
    /// `File:`), instead of the single entry of `index.json`. It must be a relative path
    /// that stays inside the layout ([`check_file_is_inside`]).
    pub file: Option<String>,
    /// The platform the image must have, and where that expectation comes from
    /// (`--arch arm64v8`).
    pub expect: Option<(Platform, String)>,
    /// Without `expect`: if a component of the layout's path is a bashbrew architecture
    /// name (`hello-world/arm64v8/oci`), expect its platform.
    pub arch_from_path: bool,
    /// Which rules apply: the OCI spec's, or also the oci-import pipeline's
    /// ([`oci_import`]).
    pub profile: Profile,
    /// Keep every layer's tar entries and hash the files' contents ([`LayerContent`], for
    /// `diff`).
    pub keep_entries: bool,
    /// With `expect`, select the image of a multi-platform source (a layout's image index,
    /// a registry's index) for that platform, as the single image to act on (`diff`,
    /// `export`); without it, such a source holds no single image.
    pub select_platform: bool,
    /// Check the documents only: no blob is streamed, and [`Checked::layers`] is empty (the
    /// caller streams the layers it needs through the verified reader, [`scan_layer`]). A
    /// layout's manifests and configs, and a registry's, are still read whole and checked
    /// against their digests.
    pub documents_only: bool,
}

/// The result of verifying one layout.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The layout as named by the caller.
    pub layout: String,
    /// True if no error was found (warnings allowed).
    pub valid: bool,
    /// The image's platform, once read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// The platform expectation checked, and its origin.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
    /// Docker v2 media types the image's documents use (not OCI's, but accepted), sorted.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub docker_media_types: Vec<String>,
    /// Every problem found, in the order found.
    pub problems: Vec<Problem>,
}

impl Report {
    /// True if no error was found (warnings allowed).
    pub fn is_ok(&self) -> bool {
        self.errors() == 0
    }

    /// Number of errors.
    pub fn errors(&self) -> usize {
        self.count(Severity::Error)
    }

    /// Number of warnings.
    pub fn warnings(&self) -> usize {
        self.count(Severity::Warning)
    }

    fn count(&self, s: Severity) -> usize {
        self.problems.iter().filter(|p| p.severity == s).count()
    }

    /// A one-line summary: `valid (linux/amd64, 2 warnings)` or `3 errors, 1 warning`.
    pub fn summary(&self) -> String {
        let plural = |n: usize, w: &str| format!("{n} {w}{}", if n == 1 { "" } else { "s" });
        let mut parts = Vec::new();
        if let Some(p) = &self.platform {
            parts.push(p.clone());
        }
        if let Some(e) = &self.expected {
            parts.push(format!("checked against {e}"));
        }
        if !self.docker_media_types.is_empty() {
            parts.push(format!(
                "Docker v2 media types: {}",
                self.docker_media_types.join(", ")
            ));
        }
        if self.warnings() > 0 {
            parts.push(plural(self.warnings(), "warning"));
        }
        let detail = if parts.is_empty() {
            String::new()
        } else {
            format!(" ({})", parts.join(", "))
        };
        if self.is_ok() {
            format!("valid{detail}")
        } else {
            format!("INVALID: {}{detail}", plural(self.errors(), "error"))
        }
    }
}

/// A layout read and verified: its documents, the selected image and its layers.
#[derive(Debug, Clone)]
pub struct Checked {
    /// What was read.
    pub layout: LayoutRead,
    /// The selected image.
    pub image: Image,
    /// Its layers, base first, with their entries when asked for; `None` for a foreign
    /// layer the source does not hold (a registry's never is: ocipack does not fetch one).
    /// Empty when only the documents were checked ([`Options::documents_only`]).
    pub layers: Vec<Option<LayerContent>>,
}

/// What a source that passes verification holds.
#[derive(Debug, Clone)]
pub enum Valid {
    /// One image.
    Image(Box<Checked>),
    /// A multi-platform layout: its image index and every image it lists.
    Index(Box<PlatformImages>),
}

/// The reports of several sources.
#[derive(Debug, Clone, Serialize)]
pub struct Reports {
    /// True if every source is valid.
    pub valid: bool,
    /// One report per source, in the order given.
    pub layouts: Vec<Report>,
}

impl Reports {
    /// The reports `layouts`, valid if each is.
    pub fn new(layouts: Vec<Report>) -> Reports {
        Reports {
            valid: layouts.iter().all(Report::is_ok),
            layouts,
        }
    }
}

/// Reads and checks `source` whole: its documents, every blob's digest and size, every
/// layer's entries, with `opts`' profile, platform and descriptor file. Problems in the
/// source are in the [`Opened::report`]; an error here is about the request: a `--file` that
/// leaves the layout (a usage error, exit 2) or a source that cannot be opened at all (an
/// input error, exit 2).
pub fn open(source: &Source, opts: &Options) -> Result<Opened> {
    check_file_is_inside("--file", opts.file.as_deref())?;
    Ok(match source {
        Source::Layout(dir) => check(Reader::open(dir)?, dir, opts),
        Source::LayoutAt(root) => check(Reader::at(root.clone()), root.path(), opts),
        Source::Registry(reference, fetch) => {
            if opts.file.is_some() {
                return Err(Error::usage(
                    "--file names a file in a layout; a registry reference has none",
                ));
            }
            if opts.profile == Profile::OciImport {
                return Err(Error::usage(
                    "--profile oci-import checks a layout as the Official Images import it; \
                     a registry holds no layout (pull it first: ocipack pull)",
                ));
            }
            let mut remote = remote::Remote::connect(reference, fetch)?;
            let layout = remote.read(reference)?;
            let shown = remote.shown.clone();
            finish(
                remote,
                layout,
                shown,
                opts.expect.clone(),
                opts,
                None,
                |_| {},
            )
        }
    })
}

/// The entries of the layer `d` of `image` (hashing file contents, as `diff` needs them),
/// streamed through the image's verified reader: from wherever its blobs are. An error if
/// the blob is not what `d` says (from a registry: the registry's failure, exit 1), does
/// not decompress to the config's diff_id `diff_id`, or holds entries verify refuses.
pub fn scan_layer(
    image: &Image,
    d: &crate::spec::Descriptor,
    diff_id: &crate::digest::Digest,
) -> Result<LayerContent> {
    stream::scan_image_layer(image, d, diff_id, None)
}

/// [`scan_layer`], writing the blob's bytes to `copy` as they stream (each blob of a
/// registry's image read once: `export` keeps the copy, verified, to write its archive
/// from). A failure writing the copy is an output error naming the layer.
pub fn scan_layer_into(
    image: &Image,
    d: &crate::spec::Descriptor,
    diff_id: &crate::digest::Digest,
    copy: &mut (dyn std::io::Write + Send),
) -> Result<LayerContent> {
    stream::scan_image_layer(image, d, diff_id, Some(copy))
}

/// A source as [`open`] found it: the report, and what it holds.
#[derive(Debug, Clone)]
pub struct Opened {
    report: Report,
    layout: LayoutRead,
    checked: Option<Checked>,
}

impl Opened {
    /// Every problem found, and a summary.
    pub fn report(&self) -> &Report {
        &self.report
    }

    /// The report alone (what `ocipack verify` prints).
    pub fn into_report(self) -> Report {
        self.report
    }

    /// What the source holds, for the commands that act on it: refused (an input error,
    /// exit 2, naming the first problem) if verification found any error, so that nothing is
    /// written or sent from a source that fails.
    pub fn valid(self) -> Result<Valid> {
        let invalid = |why: String| Error::input(format!("layout {}", self.report.layout), why);
        let first_error = self
            .report
            .problems
            .iter()
            .find(|p| p.severity == Severity::Error);
        match (self.checked, first_error) {
            (Some(c), None) => Ok(Valid::Image(Box::new(c))),
            (None, None) => match self.layout.platform_images() {
                Some(p) => Ok(Valid::Index(Box::new(p))),
                None => Err(invalid("holds no single image to use".into())),
            },
            (_, first) => Err(invalid(format!(
                "is not a valid layout ({} errors; the first: {}); `ocipack verify` explains",
                self.report.errors(),
                first.map(ToString::to_string).unwrap_or_default()
            ))),
        }
    }

    /// The single image of a source that passes verification (what `diff`, `export` and
    /// `push` of a layout act on): as [`Opened::valid`], and a multi-platform layout is
    /// refused too.
    pub fn single(self) -> Result<Checked> {
        let shown = self.report.layout.clone();
        match self.valid()? {
            Valid::Image(c) => Ok(*c),
            Valid::Index(p) => Err(Error::input(
                format!("layout {shown}"),
                format!(
                    "is a multi-platform layout (an image index of {} manifests); this command \
                     needs a layout holding a single image",
                    p.images.len()
                ),
            )),
        }
    }

    /// The report, and the selected image whenever it could be read completely, whatever
    /// the report says: for a caller that judges the problems itself (`fix` tolerates a
    /// missing `oci-layout`, and nothing else).
    pub fn into_parts(self) -> (Report, Option<Checked>) {
        (self.report, self.checked)
    }
}

/// `--file F` (`option` names it) names a file in the layout: a relative path that stays
/// inside it, or it is a usage error (exit 2), not a finding about the layout.
pub fn check_file_is_inside(option: &str, file: Option<&str>) -> Result<()> {
    match file {
        Some(f) => crate::store::paths::check_relative(f, false)
            .map_err(|p| Error::usage(format!("{option}: {p}"))),
        None => Ok(()),
    }
}

/// Checks the layout `reader` reads (named `dir`): the report, the selected image when it
/// could be read completely, and what was read.
fn check(mut reader: Reader, dir: &Path, opts: &Options) -> Opened {
    let expect = match &opts.expect {
        Some(e) => Some(e.clone()),
        None if opts.arch_from_path => arch_from_path(dir),
        None => None,
    };
    // bashbrew reads `File: index.json` as the index and any other name as a descriptor;
    // so do both profiles (the stricter one must never accept what the plain one refuses).
    let file = opts.file.as_deref().filter(|f| *f != "index.json");
    let layout = reader.read(file);
    let files = (opts.profile == Profile::OciImport).then(|| survey(&reader.root));
    finish(
        reader,
        layout,
        show::path(dir),
        expect,
        opts,
        files.as_deref(),
        Verifier::check_blob_dir,
    )
}

/// The checks every source gets once its documents are read into `layout`: the document
/// rules (and the profile's, given the layout's `files`), every blob streamed from `store`
/// (unless `opts` asks for the documents only), then `last` (the unreferenced files of a
/// layout). `shown` names the source.
fn finish<S: Store>(
    store: S,
    mut layout: LayoutRead,
    shown: String,
    expect: Option<(Platform, String)>,
    opts: &Options,
    files: Option<&[oci_import::FileFact]>,
    last: impl FnOnce(&mut Verifier<S>),
) -> Opened {
    let mut v = Verifier::new(store, opts.keep_entries);
    if let (true, Some(_), None, Some((want, _))) = (
        opts.select_platform,
        &layout.nested,
        layout.selected,
        &expect,
    ) {
        // A multi-platform source and a platform: that image is the one acted on.
        layout.selected = layout.images.iter().position(|i| {
            !rules::is_attestation(&i.found.descriptor)
                && i.config
                    .as_ref()
                    .is_some_and(|c| same_platform(&c.value.platform(), want))
        });
    }
    check_documents(v.store.problems(), &layout, expect.as_ref());
    if let Some(files) = files {
        oci_import::check_layout(
            v.store.problems(),
            &layout,
            files,
            opts.file.as_deref(),
            expect.as_ref(),
        );
    }
    let mut selected_layers = None;
    if opts.documents_only {
        selected_layers = Some(Vec::new());
    } else {
        for (n, img) in layout.images.iter().enumerate() {
            let layers = v.check_blobs(img);
            if Some(n) == layout.selected {
                selected_layers = layers;
            }
        }
        last(&mut v);
    }
    if files.is_some() {
        v.store.problems().drop_restated_warnings();
    }
    let checked = match (layout.image(), selected_layers) {
        (Some(image), Some(layers)) => Some(Checked {
            layout: layout.clone(),
            image,
            layers,
        }),
        _ => None,
    };
    let platform = match &layout.nested {
        Some(_) => {
            let all: Vec<String> = layout
                .images
                .iter()
                .filter(|i| !rules::is_attestation(&i.found.descriptor))
                .filter_map(|i| i.config.as_ref())
                .map(|c| show::text(&c.value.platform().to_string()))
                .collect();
            (!all.is_empty()).then(|| format!("image index: {}", all.join(", ")))
        }
        None => layout
            .selected
            .and_then(|n| layout.images[n].config.as_ref())
            .map(|c| show::text(&c.value.platform().to_string())),
    };
    let problems = std::mem::take(v.store.problems()).into_vec();
    let report = Report {
        layout: shown,
        valid: !problems.iter().any(|p| p.severity == Severity::Error),
        platform,
        expected: expect.map(|(p, from)| show::text(&format!("{p} from {from}"))),
        docker_media_types: docker_media_types(&layout),
        problems,
    };
    Opened {
        report,
        layout,
        checked,
    }
}

/// Decodes one document `file` of either reader (a layout's, a registry's): findings go to
/// `problems`, the properties the rules do not declare to `unknown` as (file, JSON path), and
/// the exact bytes stay beside the value.
fn decode_doc<T: serde::de::DeserializeOwned>(
    problems: &mut crate::problems::Problems,
    unknown: &mut Vec<(String, String)>,
    file: &str,
    bytes: Vec<u8>,
    descriptors: &[&str],
) -> Option<crate::image::Doc<T>> {
    let (value, found) = rules::docs::decode::<T>(problems, file, &bytes, descriptors)?;
    unknown.extend(found.into_iter().map(|path| (file.to_string(), path)));
    Some(crate::image::Doc {
        value: std::sync::Arc::new(value),
        bytes: bytes.into(),
    })
}

/// The same OS, architecture and variant.
fn same_platform(x: &Platform, want: &Platform) -> bool {
    x.os == want.os && x.architecture == want.architecture && x.variant == want.variant
}

/// The Docker v2 media types of the descriptors the documents hold (the index's, each
/// image's, their configs' and layers'), each once, sorted: what `verify` names when it
/// accepts them.
fn docker_media_types(layout: &LayoutRead) -> Vec<String> {
    let mut types = std::collections::BTreeSet::new();
    let mut note = |t: &str| {
        if crate::media::is_docker(t) {
            types.insert(show::text(t));
        }
    };
    if let Some(n) = &layout.nested {
        note(&n.found.descriptor.media_type);
    }
    for img in &layout.images {
        note(&img.found.descriptor.media_type);
        if let Some(m) = &img.manifest {
            note(&m.value.config.media_type);
            for l in &m.value.layers {
                note(&l.media_type);
            }
        }
    }
    types.into_iter().collect()
}

/// The platform a bashbrew architecture name in `dir`'s path stands for (the component
/// nearest to the layout wins).
pub fn arch_from_path(dir: &Path) -> Option<(Platform, String)> {
    let abs: PathBuf = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    abs.components().rev().find_map(|c| {
        let name = c.as_os_str().to_str()?;
        Platform::from_bashbrew_arch(name)
            .ok()
            .map(|p| (p, format!("the path component {name:?}")))
    })
}
