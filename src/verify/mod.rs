//! `ocipack verify`: trust nothing in a layout, report every problem.
//!
//! A layout committed to git is input from strangers. Verification reads it the way the
//! Docker Official Images `oci-import` builder does, only stricter, and collects every
//! problem instead of stopping at the first. Reading is [`read`]'s job (the one layout
//! reader of every command); this module applies the rules to what it read:
//!
//! - `oci-layout` (version 1.0.0) and `index.json` (or a `--file` single descriptor),
//!   decoded strictly ([`crate::image::rules::docs`]); exactly one image manifest, or (a multi-platform layout,
//!   the nested form `build --index` writes) exactly one image index, a blob listing at least
//!   one manifest and no platform twice, each image it lists checked like a single one.
//! - Every descriptor's blob hashes to its digest and has its size, read with a bound of
//!   the declared size (a size claim allocates nothing); JSON blobs are read only up to
//!   [`MAX_JSON`].
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
//! The document rules ([`crate::image::rules`]) are pure functions over the model: the
//! builder runs them on the image it made, in memory, before writing anything.

mod read;
mod survey;

pub use survey::survey;

use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::io::{self, BufRead, Read};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use serde::Serialize;

use crate::digest::{Digest, Hasher};
use crate::error::Result;
use crate::image::Image;
use crate::image::rules::oci_import;
use crate::image::rules::{
    Found, ImageRead, LayoutRead, PlatformImages, check_documents, identity,
};
use crate::layer::compress;
use crate::media::Compression;
use crate::platform::Platform;
use crate::spec::Descriptor;
use crate::store::root::EntryType;
use crate::tar::read::{self as tarscan, Entry, ScanOptions};

pub use crate::image::blob::MAX_JSON;
pub use crate::problems::{Problem, Problems, Severity};
pub use oci_import::Profile;
pub use read::Reader;

/// Bytes per chunk handed from the blob-reading thread to the decompressing one.
const CHUNK: usize = 1024 * 1024;
/// Chunks in flight between the two threads.
const CHUNKS_IN_FLIGHT: usize = 4;

/// What to verify against.
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// A file in the layout holding the single image descriptor to use (bashbrew's
    /// `File:`), instead of the single entry of `index.json`.
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

/// One layer as read: its descriptor, what it decompressed to, its entries if kept.
#[derive(Debug, Clone)]
pub struct LayerContent {
    /// The manifest's descriptor.
    pub descriptor: Descriptor,
    /// The compression of its media type.
    pub compression: Compression,
    /// sha256 of the decompressed stream.
    pub diff_id: Digest,
    /// The tar entries, in stream order (only when asked for); shared, not copied, by every
    /// listing of the same layer.
    pub entries: std::sync::Arc<[Entry]>,
}

/// A layout read and verified: its documents, the selected image and its layers.
#[derive(Debug, Clone)]
pub struct Checked {
    /// What was read.
    pub layout: LayoutRead,
    /// The selected image.
    pub image: Image,
    /// Its layers, base first, with their entries when asked for.
    pub layers: Vec<LayerContent>,
}

/// The reports of several layouts.
#[derive(Debug, Clone, Serialize)]
pub struct Reports {
    /// True if every layout is valid.
    pub valid: bool,
    /// One report per layout, in the order given.
    pub layouts: Vec<Report>,
}

/// Verifies each layout in `dirs` (what `ocipack verify` does).
pub fn verify_layouts(dirs: &[PathBuf], opts: &VerifyOptions) -> Result<Reports> {
    check_file_option(opts.file.as_deref())?;
    let layouts = dirs
        .iter()
        .map(|d| verify_layout(d, opts))
        .collect::<Result<Vec<_>>>()?;
    Ok(Reports {
        valid: layouts.iter().all(Report::is_ok),
        layouts,
    })
}

/// The selected image of a layout that passes verification, for the commands that consume
/// one (`diff`, `push`, `export`): the whole layout is verified first — documents, every
/// blob's digest, every layer's entries — and one that fails is refused (exit 2) naming the
/// first problem, before anything is written or sent. With `keep_entries`, the layers'
/// entries are kept (for `diff`).
pub fn read_valid(dir: &Path, file: Option<String>, keep_entries: bool) -> Result<Checked> {
    let opts = VerifyOptions {
        file,
        expect: None,
        arch_from_path: false,
        profile: Profile::default(),
    };
    match read_valid_with(Reader::open(dir)?, dir, &opts, keep_entries)? {
        Valid::Image(c) => Ok(*c),
        Valid::Index(p) => Err(crate::error::Error::input(
            format!("layout {}", crate::show::path(dir)),
            format!(
                "is a multi-platform layout (an image index of {} manifests); this command \
                 needs a layout holding a single image",
                p.images.len()
            ),
        )),
    }
}

/// What a layout that passes verification holds.
#[derive(Debug, Clone)]
pub enum Valid {
    /// One image.
    Image(Box<Checked>),
    /// A multi-platform layout: its image index and every image it lists.
    Index(Box<PlatformImages>),
}

/// Like [`read_valid`], for the commands that also take a multi-platform layout (`push`):
/// the layout `reader` reads (named `dir` in messages), verified whole (every image's
/// documents and blobs), the single image's platform (or one of the index's) against
/// `expect`.
pub fn read_valid_contents(
    reader: Reader,
    dir: &Path,
    expect: Option<(Platform, String)>,
) -> Result<Valid> {
    let opts = VerifyOptions {
        file: None,
        expect,
        arch_from_path: false,
        profile: Profile::default(),
    };
    read_valid_with(reader, dir, &opts, false)
}

fn read_valid_with(
    reader: Reader,
    dir: &Path,
    opts: &VerifyOptions,
    keep_entries: bool,
) -> Result<Valid> {
    let (report, checked, layout) = verify_with(reader, dir, opts, keep_entries)?;
    let first_error = report
        .problems
        .iter()
        .find(|p| p.severity == Severity::Error);
    let invalid =
        |why: String| crate::error::Error::input(format!("layout {}", crate::show::path(dir)), why);
    match (checked, first_error) {
        (Some(c), None) => Ok(Valid::Image(Box::new(c))),
        (None, None) => match layout.platform_images() {
            Some(p) => Ok(Valid::Index(Box::new(p))),
            None => Err(invalid("holds no single image to use".into())),
        },
        (_, first) => Err(invalid(format!(
            "is not a valid layout ({} errors; the first: {}); `ocipack verify` explains",
            report.errors(),
            first.map(ToString::to_string).unwrap_or_default()
        ))),
    }
}

/// Verifies the layout at `dir`. A `dir` that is not a directory is an input error
/// (exit 2); problems in the layout are in the report (exit 1 when there are errors).
pub fn verify_layout(dir: &Path, opts: &VerifyOptions) -> Result<Report> {
    read_image(dir, opts, false).map(|(r, _)| r)
}

/// Verifies the layout at `dir` and returns its selected image when it could be read
/// completely; with `keep_entries`, every layer's entries are kept and file contents hashed
/// (for [`crate::diff`]).
pub fn read_image(
    dir: &Path,
    opts: &VerifyOptions,
    keep_entries: bool,
) -> Result<(Report, Option<Checked>)> {
    verify_with(Reader::open(dir)?, dir, opts, keep_entries).map(|(r, c, _)| (r, c))
}

/// `--file F` names a file in the layout: a relative path that stays inside it, or it is a
/// usage error (exit 2), not a finding about the layout.
pub fn check_file_option(file: Option<&str>) -> Result<()> {
    match file {
        Some(f) => crate::settings::check_relative(f, false)
            .map_err(|p| crate::Error::usage(format!("--file: {p}"))),
        None => Ok(()),
    }
}

/// Verifies the layout `reader` reads (named `dir`): the report, the selected image when
/// it could be read completely, and what was read.
fn verify_with(
    mut reader: Reader,
    dir: &Path,
    opts: &VerifyOptions,
    keep_entries: bool,
) -> Result<(Report, Option<Checked>, LayoutRead)> {
    let expect = match &opts.expect {
        Some(e) => Some(e.clone()),
        None if opts.arch_from_path => arch_from_path(dir),
        None => None,
    };
    // bashbrew reads `File: index.json` as the index and any other name as a descriptor;
    // so do both profiles (the stricter one must never accept what the plain one refuses).
    let file = opts.file.as_deref().filter(|f| *f != "index.json");
    let layout = reader.read(file);
    check_documents(&mut reader.problems, &layout, expect.as_ref());
    if opts.profile == Profile::OciImport {
        let files = survey::survey(&reader.root);
        oci_import::check_layout(
            &mut reader.problems,
            &layout,
            &files,
            opts.file.as_deref(),
            expect.as_ref(),
        );
    }
    let mut v = Verifier {
        reader,
        keep_entries,
        checked: BTreeSet::new(),
        layers: HashMap::new(),
        files: HashMap::new(),
    };
    let mut selected_layers = None;
    for (n, img) in layout.images.iter().enumerate() {
        let layers = v.check_blobs(img);
        if Some(n) == layout.selected {
            selected_layers = layers;
        }
    }
    v.check_blob_dir();
    if opts.profile == Profile::OciImport {
        v.reader.problems.drop_restated_warnings();
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
                .filter_map(|i| i.config.as_ref())
                .map(|c| crate::show::text(&c.value.platform().to_string()))
                .collect();
            (!all.is_empty()).then(|| format!("image index: {}", all.join(", ")))
        }
        None => layout
            .selected
            .and_then(|n| layout.images[n].config.as_ref())
            .map(|c| crate::show::text(&c.value.platform().to_string())),
    };
    let problems = v.reader.problems.into_vec();
    let report = Report {
        layout: crate::show::path(dir),
        valid: !problems.iter().any(|p| p.severity == Severity::Error),
        platform,
        expected: expect.map(|(p, from)| crate::show::text(&format!("{p} from {from}"))),
        problems,
    };
    Ok((report, checked, layout))
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

/// Checks the blobs of a layout's images, each distinct blob once.
struct Verifier {
    reader: Reader,
    keep_entries: bool,
    /// Blobs whose bytes were checked (non-layer blobs), by digest and declared size.
    checked: BTreeSet<(Digest, i64)>,
    /// Each distinct layer blob's outcome, by digest, declared size and media type: its
    /// path, its diff_id (when it could be decompressed) and its content (when its entries
    /// are valid). A descriptor declaring another size is checked against the file again.
    layers: HashMap<((Digest, i64), String), LayerOutcome>,
    /// Each layer file streamed, by (device, inode, compression): blobs that are the same
    /// file under several names (symlinks) are decompressed once. The path first streamed,
    /// the content's digest and size, and the outcome.
    files: HashMap<(u64, u64, Compression), StreamedFile>,
}

/// A layer file already streamed: the path it was first streamed as, its content's digest
/// and size, and the outcome.
type StreamedFile = (String, Digest, u64, LayerOutcome);

#[derive(Clone)]
struct LayerOutcome {
    path: String,
    diff_id: Option<Digest>,
    content: Option<LayerContent>,
}

impl Verifier {
    /// Checks the blobs an image descriptor reaches: a non-manifest blob's bytes, or each
    /// layer's content against the config's diff_ids. Returns the layers when all are valid.
    fn check_blobs(&mut self, img: &ImageRead) -> Option<Vec<LayerContent>> {
        let Some(manifest) = &img.manifest else {
            if img.found.descriptor.media_type != crate::media::MANIFEST {
                self.check_blob_bytes(&img.found, "blob");
            }
            return None;
        };
        let created = img
            .config
            .as_ref()
            .and_then(|c| c.value.created.as_deref())
            .and_then(|c| {
                time::OffsetDateTime::parse(c, &time::format_description::well_known::Rfc3339).ok()
            })
            .map(|t| t.unix_timestamp());
        let mut layers = Vec::new();
        for (i, l) in manifest.value.layers.iter().enumerate() {
            let at = Found {
                file: img.manifest_path.clone(),
                field: format!("layers[{i}]"),
                descriptor: l.clone(),
            };
            let Some(compression) = Compression::from_media_type(&l.media_type) else {
                self.check_blob_bytes(&at, "layer");
                continue;
            };
            let key = (identity(l), l.media_type.clone());
            let outcome = match self.layers.get(&key) {
                Some(o) => o.clone(),
                None => {
                    let o = self.check_layer(&at, compression, created);
                    self.layers.insert(key, o.clone());
                    o
                }
            };
            let want = img
                .config
                .as_ref()
                .and_then(|c| c.value.rootfs.diff_ids.get(i));
            if let (Some(want), Some(got)) = (want, &outcome.diff_id)
                && want != got
            {
                self.reader.problems.error(
                    &img.config_path,
                    Some(format!("rootfs.diff_ids[{i}]")),
                    format!(
                        "{want}, but layer {i} ({}) decompresses to {got}",
                        outcome.path
                    ),
                );
                continue;
            }
            if let Some(c) = outcome.content {
                layers.push(LayerContent {
                    descriptor: l.clone(),
                    ..c
                });
            }
        }
        (layers.len() == manifest.value.layers.len()).then_some(layers)
    }

    /// Checks only that a blob has the descriptor's size and digest, streaming it (once).
    fn check_blob_bytes(&mut self, at: &Found, what: &str) {
        if !self.checked.insert(identity(&at.descriptor)) {
            return;
        }
        let Some(blob) = self.reader.open_blob(at, what) else {
            return;
        };
        match read_blob(blob.opened.file, &at.descriptor, None) {
            Ok((digest, n)) => self.check_digest(&blob.path, at, &digest, n),
            Err(e) => self
                .reader
                .problems
                .error(&blob.path, None, format!("cannot be read: {e}")),
        }
    }

    fn check_digest(&mut self, path: &str, at: &Found, actual: &Digest, n: u64) {
        if n != at.descriptor.size as u64 {
            self.reader
                .problems
                .error(path, None, "changed size while being read");
        } else if *actual != at.descriptor.digest {
            self.reader.problems.error(
                path,
                None,
                format!(
                    "the content hashes to {actual}, not to its digest {} (tampered or corrupt)",
                    at.descriptor.digest
                ),
            );
        }
    }

    /// Streams one layer blob: digest, decompression, diff_id, tar entries.
    fn check_layer(
        &mut self,
        at: &Found,
        compression: Compression,
        created: Option<i64>,
    ) -> LayerOutcome {
        let path = at.descriptor.digest.blob_path();
        let Some(blob) = self.reader.open_blob(at, "layer") else {
            return LayerOutcome {
                path,
                diff_id: None,
                content: None,
            };
        };
        let key = rustix::fs::fstat(&blob.opened.file)
            .ok()
            .map(|st| (st.st_dev, st.st_ino, compression));
        if let Some((first, digest, bytes, outcome)) = key.and_then(|k| self.files.get(&k)) {
            let p = &mut self.reader.problems;
            if *bytes == at.descriptor.size as u64 && *digest != at.descriptor.digest {
                p.error(
                    &path,
                    None,
                    format!(
                        "the content hashes to {digest}, not to its digest {} (tampered or corrupt; the same file as {first}, whose other problems are listed there)",
                        at.descriptor.digest
                    ),
                );
            }
            return LayerOutcome {
                path,
                ..outcome.clone()
            };
        }
        let opts = ScanOptions {
            created,
            keep_entries: self.keep_entries,
            hash_contents: self.keep_entries,
        };
        let p = &mut self.reader.problems;
        let out = stream_layer(blob.opened.file, &at.descriptor, compression, &opts);
        if out.bytes != at.descriptor.size as u64 {
            p.error(&path, None, "changed size while being read");
        } else if out.digest != at.descriptor.digest {
            p.error(
                &path,
                None,
                format!(
                    "the content hashes to {}, not to its digest {} (tampered or corrupt)",
                    out.digest, at.descriptor.digest
                ),
            );
        }
        if let Some(e) = &out.read_error {
            p.error(&path, None, format!("cannot be read: {e}"));
        }
        if let Some(m) = &out.format_error {
            p.error(&path, None, m.clone());
        }
        for f in &out.scan.findings {
            let field = f
                .entry
                .as_ref()
                .map(|e| format!("tar entry \"{}\"", crate::show::text(e)));
            if f.error {
                p.error(&path, field, f.message.clone());
            } else {
                p.warn(&path, field, f.message.clone());
            }
        }
        let content = match (&out.diff_id, out.scan.is_ok()) {
            (Some(d), true) => Some(LayerContent {
                descriptor: at.descriptor.clone(),
                compression,
                diff_id: d.clone(),
                entries: out.scan.entries.into(),
            }),
            _ => None,
        };
        let outcome = LayerOutcome {
            path: path.clone(),
            diff_id: out.diff_id,
            content,
        };
        if let Some(k) = key {
            self.files
                .insert(k, (path, out.digest, out.bytes, outcome.clone()));
        }
        outcome
    }

    /// Unreferenced files in `blobs/`. Names are listed as bytes: one that is not UTF-8
    /// cannot be a digest, and is shown escaped, never converted lossily (which could make
    /// two names print alike).
    fn check_blob_dir(&mut self) {
        let root = self.reader.root.clone();
        let top = match root.list_dir_bytes("blobs") {
            Ok(Some(t)) => t,
            Ok(None) => return, // every blob is reported missing already
            Err(e) => {
                self.reader.problems.error("blobs", None, e.to_string());
                return;
            }
        };
        for (name, kind) in top {
            let rel = [b"blobs/".as_slice(), &name].concat();
            // Algorithm directories (possibly reached through a symlink that stays inside).
            let listed = match kind {
                EntryType::Dir | EntryType::Symlink => root.list_dir_bytes(&rel).ok().flatten(),
                _ => None,
            };
            match listed {
                Some(files) => {
                    for (f, kind) in files {
                        self.note_unreferenced(&[rel.as_slice(), b"/", &f].concat(), kind);
                    }
                }
                None => self.note_unreferenced(&rel, kind),
            }
        }
    }

    fn note_unreferenced(&mut self, rel: &[u8], kind: EntryType) {
        if std::str::from_utf8(rel).is_ok_and(|r| self.reader.referenced.contains(r)) {
            return;
        }
        let what = match kind {
            EntryType::File => "file".to_string(),
            EntryType::Dir => "directory".to_string(),
            EntryType::Symlink => match self.reader.root.read_link(rel) {
                Ok(t) => format!("symlink to \"{}\"", crate::show::bytes(&t)),
                Err(_) => "symlink".to_string(),
            },
            EntryType::Other(k) => k.to_string(),
        };
        self.reader.problems.warn(
            rel,
            None,
            format!("unreferenced {what}: no descriptor points to it"),
        );
    }
}

/// What streaming a layer blob found.
struct Streamed {
    digest: Digest,
    bytes: u64,
    read_error: Option<io::Error>,
    format_error: Option<String>,
    diff_id: Option<Digest>,
    scan: tarscan::Scan,
}

/// Reads up to the declared size + 1 bytes of `file`, hashing them with the digest's
/// algorithm and handing chunks to `tx` while someone listens.
fn read_blob(
    file: File,
    d: &Descriptor,
    tx: Option<mpsc::SyncSender<Vec<u8>>>,
) -> io::Result<(Digest, u64)> {
    let mut h = Hasher::new(d.digest.algorithm());
    let mut r = file.take(u64::try_from(d.size).unwrap_or(0) + 1);
    let mut tx = tx;
    loop {
        let mut chunk = vec![0u8; CHUNK];
        let mut n = 0;
        while n < CHUNK {
            match r.read(&mut chunk[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if n == 0 {
            break;
        }
        chunk.truncate(n);
        h.update(&chunk);
        if let Some(t) = &tx
            && t.send(chunk).is_err()
        {
            // The consumer stopped early; keep hashing to check the digest.
            tx = None;
        }
    }
    let n = h.len();
    Ok((h.finish(), n))
}

/// A `BufRead` over chunks received from the reading thread.
struct ChunkReader {
    rx: mpsc::Receiver<Vec<u8>>,
    chunk: Vec<u8>,
    pos: usize,
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let avail = self.fill_buf()?;
        let n = avail.len().min(buf.len());
        buf[..n].copy_from_slice(&avail[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for ChunkReader {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.pos == self.chunk.len() {
            match self.rx.recv() {
                Ok(c) => {
                    self.chunk = c;
                    self.pos = 0;
                }
                Err(_) => return Ok(&[]),
            }
        }
        Ok(&self.chunk[self.pos..])
    }

    fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.chunk.len());
    }
}

/// A reader that hashes everything read through it and remembers the first error.
struct HashingReader<R> {
    inner: R,
    hasher: Hasher,
    error: Option<String>,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                self.hasher.update(&buf[..n]);
                Ok(n)
            }
            Err(e) => {
                if self.error.is_none() {
                    self.error = Some(e.to_string());
                }
                Err(e)
            }
        }
    }
}

/// Streams a layer blob: one thread reads and hashes the compressed bytes, the calling
/// thread decompresses, hashes the tar stream (the diff_id) and scans its entries.
fn stream_layer(
    file: File,
    d: &Descriptor,
    compression: Compression,
    opts: &ScanOptions,
) -> Streamed {
    let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(CHUNKS_IN_FLIGHT);
    std::thread::scope(|s| {
        let reader = s.spawn(move || read_blob(file, d, Some(tx)));
        let mut chunks = ChunkReader {
            rx,
            chunk: Vec::new(),
            pos: 0,
        };
        let mut format_error = None;
        let mut diff_id = None;
        let mut scan = tarscan::Scan::default();
        let head = chunks.fill_buf().map(compress::sniff).ok();
        match head {
            Some(looks) if looks != compression && !chunks.chunk.is_empty() => {
                format_error = Some(format!(
                    "the bytes are {} but the media type {} says {}",
                    describe(looks),
                    d.media_type,
                    describe(compression)
                ));
            }
            _ => match compress::decoder(&mut chunks, compression) {
                Err(e) => format_error = Some(format!("cannot decompress: {e}")),
                Ok(dec) => {
                    let mut hr = HashingReader {
                        inner: dec,
                        hasher: Hasher::sha256(),
                        error: None,
                    };
                    // Few large reads from the decoder, whatever the sizes the scan asks for.
                    let mut buffered = io::BufReader::with_capacity(256 * 1024, &mut hr);
                    scan = tarscan::scan(&mut buffered, opts);
                    // Whatever the scan saw, the diff_id covers every byte of the stream.
                    let drained = io::copy(&mut buffered, &mut io::sink());
                    drop(buffered);
                    let scan_saw_error = scan
                        .findings
                        .iter()
                        .any(|f| f.message.starts_with(tarscan::READ_ERROR));
                    match (&hr.error, drained) {
                        (Some(e), _) => {
                            // The scan reports a read error it met itself.
                            if !scan_saw_error {
                                format_error = Some(format!(
                                    "the {compression} stream is corrupt or truncated: {e}"
                                ));
                            }
                        }
                        (None, Err(e)) => format_error = Some(format!("cannot decompress: {e}")),
                        (None, Ok(_)) => diff_id = Some(hr.hasher.finish()),
                    }
                }
            },
        }
        // Stop listening; the reader finishes hashing the blob on its own.
        drop(chunks);
        let (digest, bytes, read_error) = match reader.join() {
            Ok(Ok((digest, n))) => (digest, n, None),
            Ok(Err(e)) => (d.digest.clone(), d.size as u64, Some(e)),
            Err(_) => (
                d.digest.clone(),
                d.size as u64,
                Some(io::Error::other("the reading thread panicked")),
            ),
        };
        Streamed {
            digest,
            bytes,
            read_error,
            format_error,
            diff_id,
            scan,
        }
    })
}

fn describe(c: Compression) -> &'static str {
    match c {
        Compression::None => "not gzip or zstd (a plain tar?)",
        Compression::Gzip => "gzip",
        Compression::Zstd => "zstd",
    }
}

/// Scans arbitrary bytes as a layer of each compression, as verify would. Public for
/// fuzzing: it must never panic nor allocate from a size claim, whatever the bytes.
pub fn scan_layer_bytes(bytes: &[u8]) -> Vec<tarscan::Scan> {
    let opts = ScanOptions {
        created: Some(0),
        keep_entries: true,
        hash_contents: true,
    };
    Compression::ALL
        .into_iter()
        .filter_map(|c| {
            let dec = compress::decoder(bytes, c).ok()?;
            Some(tarscan::scan(dec, &opts))
        })
        .collect()
}
