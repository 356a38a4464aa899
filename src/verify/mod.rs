//! `ocipack verify`: trust nothing in a layout, report every problem.
//!
//! A layout committed to git is input from strangers. Verification reads it the way the
//! Docker Official Images `oci-import` builder does, only stricter, and collects every
//! problem instead of stopping at the first:
//!
//! - `oci-layout` (version 1.0.0) and `index.json` (or a `--file` single descriptor),
//!   decoded strictly ([`docs`]); exactly one image manifest.
//! - Every descriptor's blob hashes to its digest and has its size, read with a bound of
//!   the declared size (a size claim allocates nothing); JSON blobs are read only up to
//!   [`MAX_JSON`].
//! - Manifest and config decoded strictly; config and layer media types; each layer is
//!   decompressed as a stream and hashed against its `diff_id`, and its tar entries are
//!   checked ([`tarscan`]).
//! - The platform of the index entry, of the config, and of `--arch` (or of a bashbrew
//!   architecture name in the layout's path) agree.
//! - Every file is opened through [`safe::Root`]: nothing outside the layout is ever read,
//!   and nothing blocks.
//! - Compatibility notes: symlinked blobs (go-containerregistry ≥ 0.21.7 refuses them) and
//!   unreferenced files in `blobs/`.

pub mod docs;

use std::collections::BTreeSet;
use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, Read};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use serde::Serialize;
use serde_json::Value;

use crate::digest::{Digest, Hasher};
use crate::error::{Error, Result};
use crate::layer::compress;
use crate::media::Compression;
use crate::platform::Platform;
use crate::spec::{Descriptor, ImageConfig, Index, Manifest, OciLayout};

use crate::store::root::{EntryType, OpenError, Root};
use crate::tar::read::{self as tarscan, Entry, ScanOptions};
use docs::join_key;

/// The largest JSON document verify reads (`index.json`, descriptors, manifests, configs).
pub const MAX_JSON: u64 = 4 * 1024 * 1024;

/// Bytes per chunk handed from the blob-reading thread to the decompressing one.
const CHUNK: usize = 1024 * 1024;
/// Chunks in flight between the two threads.
const CHUNKS_IN_FLIGHT: usize = 4;

/// How serious a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The layout is not valid.
    Error,
    /// Valid, but a reproducibility smell or a compatibility note.
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// One problem: the file (relative to the layout), the field or entry, what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// Error or warning.
    pub severity: Severity,
    /// The file, relative to the layout (`index.json`, `blobs/sha256/…`).
    pub file: String,
    /// The JSON path (`manifests[0].platform.architecture`) or tar entry, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.severity, self.file)?;
        if let Some(field) = &self.field {
            write!(f, ": {field}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// A collector of problems.
#[derive(Debug, Default)]
pub(crate) struct Problems(Vec<Problem>);

impl Problems {
    fn push(&mut self, severity: Severity, file: &str, field: Option<String>, message: String) {
        self.0.push(Problem {
            severity,
            file: file.to_string(),
            field: field.filter(|f| !f.is_empty()),
            message,
        });
    }

    /// Records an error.
    pub(crate) fn error(&mut self, file: &str, field: Option<String>, message: impl Into<String>) {
        self.push(Severity::Error, file, field, message.into());
    }

    /// Records a warning.
    pub(crate) fn warn(&mut self, file: &str, field: Option<String>, message: impl Into<String>) {
        self.push(Severity::Warning, file, field, message.into());
    }

    pub(crate) fn into_vec(self) -> Vec<Problem> {
        self.0
    }
}

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
    /// The tar entries, in stream order (only when asked for).
    pub entries: Vec<Entry>,
}

/// One image read from a layout and verified: its documents (as decoded structs and as
/// JSON values, for field-by-field comparison) and its layers.
#[derive(Debug, Clone)]
pub struct Image {
    /// `index.json` as a JSON value.
    pub index: Value,
    /// The `--file` descriptor file, by name and value, when one was used.
    pub descriptor_file: Option<(String, Value)>,
    /// The selected image's descriptor.
    pub descriptor: Descriptor,
    /// The manifest.
    pub manifest: Manifest,
    /// The manifest as a JSON value.
    pub manifest_value: Value,
    /// The config.
    pub config: ImageConfig,
    /// The config as a JSON value.
    pub config_value: Value,
    /// The layers, base first.
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
    let layouts = dirs
        .iter()
        .map(|d| verify_layout(d, opts))
        .collect::<Result<Vec<_>>>()?;
    Ok(Reports {
        valid: layouts.iter().all(Report::is_ok),
        layouts,
    })
}

/// Verifies the layout at `dir`. A `dir` that is not a directory is an input error
/// (exit 2); problems in the layout are in the report (exit 1 when there are errors).
pub fn verify_layout(dir: &Path, opts: &VerifyOptions) -> Result<Report> {
    read_image(dir, opts, false).map(|(r, _)| r)
}

/// Verifies the layout at `dir` and returns its single image when it could be read
/// completely; with `keep_entries`, every layer's entries are kept and file contents hashed
/// (for [`crate::diff`]).
pub fn read_image(
    dir: &Path,
    opts: &VerifyOptions,
    keep_entries: bool,
) -> Result<(Report, Option<Image>)> {
    let root = Root::open(dir).map_err(|e| {
        Error::input(
            format!("layout {}", dir.display()),
            match e.kind() {
                io::ErrorKind::NotFound => "does not exist".to_string(),
                _ if e.raw_os_error() == Some(20) => "is not a directory".to_string(),
                _ => format!("cannot be opened: {e}"),
            },
        )
    })?;
    let expect = match &opts.expect {
        Some(e) => Some(e.clone()),
        None if opts.arch_from_path => arch_from_path(dir),
        None => None,
    };
    let mut v = Verifier {
        root,
        p: Problems::default(),
        referenced: BTreeSet::new(),
        keep_entries,
    };
    let image = v.run(opts.file.as_deref(), expect.as_ref());
    let platform = image
        .as_ref()
        .map(|i| config_platform(&i.config).to_string());
    let problems = v.p.into_vec();
    let report = Report {
        layout: dir.display().to_string(),
        valid: !problems.iter().any(|p| p.severity == Severity::Error),
        platform,
        expected: expect.map(|(p, from)| format!("{p} from {from}")),
        problems,
    };
    Ok((report, image))
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

fn config_platform(c: &ImageConfig) -> Platform {
    let mut p = c.platform();
    p.os_version = c.os_version.clone();
    p.os_features = c.os_features.clone();
    p
}

struct Verifier {
    root: Root,
    p: Problems,
    /// Blob paths some descriptor points to.
    referenced: BTreeSet<String>,
    keep_entries: bool,
}

/// A descriptor and where it was found.
struct Found {
    file: String,
    field: String,
    descriptor: Descriptor,
}

impl Found {
    /// `index.json manifests[0]`, or the file alone for a whole-file descriptor.
    fn place(&self) -> String {
        if self.field.is_empty() {
            self.file.clone()
        } else {
            format!("{} {}", self.file, self.field)
        }
    }
}

impl Verifier {
    fn run(&mut self, file: Option<&str>, expect: Option<&(Platform, String)>) -> Option<Image> {
        if let Some(bytes) = self.read_json_file("oci-layout")
            && let Some((l, _)) = docs::decode::<OciLayout>(&mut self.p, "oci-layout", &bytes, &[])
        {
            docs::check_oci_layout(&mut self.p, "oci-layout", &l);
        }
        let index = self.read_index();
        let index_value = index.as_ref().map(|(v, _)| v.clone());
        let entries: Vec<Found> = index.map(|(_, f)| f).unwrap_or_default();

        let mut selected: Option<(Found, Option<(String, Value)>)> = None;
        if let Some(name) = file {
            if let Some(bytes) = self.read_json_file(name)
                && let Some((d, value)) = docs::decode::<Descriptor>(&mut self.p, name, &bytes, &[])
            {
                if index_value.is_some() && !entries.iter().any(|e| e.descriptor.digest == d.digest)
                {
                    self.p.warn(
                        name,
                        None,
                        format!(
                            "{} is not listed in index.json: readers of index.json will not find it",
                            d.digest
                        ),
                    );
                }
                selected = Some((
                    Found {
                        file: name.to_string(),
                        field: String::new(),
                        descriptor: d,
                    },
                    Some((name.to_string(), value)),
                ));
            }
        } else if index_value.is_some() {
            match entries.len() {
                1 => {}
                0 => self.p.error(
                    "index.json",
                    Some("manifests".into()),
                    "no manifest; the oci-import builder needs exactly one",
                ),
                n => self.p.error(
                    "index.json",
                    Some("manifests".into()),
                    format!(
                        "{n} manifests; the oci-import builder needs exactly one (or --file naming a file with a single descriptor)"
                    ),
                ),
            }
        }

        let mut image = None;
        let single = file.is_none() && entries.len() == 1;
        let mut checked: BTreeSet<Digest> = BTreeSet::new();
        if let Some((found, dfile)) = selected {
            checked.insert(found.descriptor.digest.clone());
            image = self.check_image(&found, expect).map(|mut i| {
                i.descriptor_file = dfile;
                i
            });
        }
        for found in &entries {
            if !checked.insert(found.descriptor.digest.clone()) {
                continue;
            }
            let img = self.check_image(found, if single { expect } else { None });
            if single {
                image = img;
            }
        }
        self.check_blob_dir();
        let (image, index_value) = (image?, index_value?);
        Some(Image {
            index: index_value,
            ..image
        })
    }

    fn read_index(&mut self) -> Option<(Value, Vec<Found>)> {
        let bytes = self.read_json_file("index.json")?;
        let (index, value) =
            docs::decode::<Index>(&mut self.p, "index.json", &bytes, &["manifests", "subject"])?;
        docs::check_index(&mut self.p, "index.json", &index);
        if let Some(s) = &index.subject {
            self.referenced.insert(s.digest.blob_path());
        }
        let found = index
            .manifests
            .into_iter()
            .enumerate()
            .map(|(i, descriptor)| Found {
                file: "index.json".into(),
                field: format!("manifests[{i}]"),
                descriptor,
            })
            .collect();
        Some((value, found))
    }

    /// Reads a JSON file that is not a blob, bounded by [`MAX_JSON`].
    fn read_json_file(&mut self, name: &str) -> Option<Vec<u8>> {
        let opened = match self.root.open_file(name) {
            Ok(o) => o,
            Err(e) => {
                self.p.error(name, None, e.to_string());
                return None;
            }
        };
        if opened.size > MAX_JSON {
            self.p.error(
                name,
                None,
                format!(
                    "{} bytes, more than the {MAX_JSON} verify reads of a JSON document",
                    opened.size
                ),
            );
            return None;
        }
        let mut bytes = Vec::new();
        if let Err(e) = opened.file.take(MAX_JSON + 1).read_to_end(&mut bytes) {
            self.p.error(name, None, format!("cannot be read: {e}"));
            return None;
        }
        if bytes.len() as u64 > MAX_JSON {
            self.p.error(
                name,
                None,
                "grew beyond the JSON size limit while being read",
            );
            return None;
        }
        Some(bytes)
    }

    /// Opens the blob a descriptor points to and checks its size from `fstat`.
    fn open_blob(&mut self, at: &Found, what: &str) -> Option<(String, File)> {
        let d = &at.descriptor;
        let path = d.digest.blob_path();
        self.referenced.insert(path.clone());
        let by = format!("the {what} referenced by {}", at.place());
        let Ok(declared) = u64::try_from(d.size) else {
            return None; // reported by check_descriptor
        };
        let opened = match self.root.open_file(&path) {
            Ok(o) => o,
            Err(e) => {
                let msg = match e {
                    OpenError::NotFound => format!("{by} is missing"),
                    e => format!("{by}: {e}"),
                };
                self.p.error(&path, None, msg);
                return None;
            }
        };
        if !opened.symlinks.is_empty() {
            let chain: Vec<String> = opened
                .symlinks
                .iter()
                .map(|(link, target)| {
                    if *link == path {
                        format!("→ {target}")
                    } else {
                        format!("{link} → {target}")
                    }
                })
                .collect();
            self.p.warn(
                &path,
                None,
                format!(
                    "the blob is a symlink ({}): go-containerregistry ≥ 0.21.7 (crane) refuses symlinked blobs",
                    chain.join(", ")
                ),
            );
        }
        if opened.size != declared {
            self.p.error(
                &path,
                None,
                format!(
                    "{} bytes, but {} declares size {declared}",
                    opened.size,
                    at.place()
                ),
            );
            return None;
        }
        Some((path, opened.file))
    }

    /// Reads a JSON blob, checking its size and digest; `None` (with problems recorded)
    /// unless it is exactly what the descriptor says.
    fn read_json_blob(&mut self, at: &Found, what: &str) -> Option<(String, Vec<u8>)> {
        let d = &at.descriptor;
        if d.size > MAX_JSON as i64 {
            self.referenced.insert(d.digest.blob_path());
            self.p.error(
                &at.file,
                Some(join_key(&at.field, "size")),
                format!(
                    "the {what} claims {} bytes, more than the {MAX_JSON} verify reads of a JSON document",
                    d.size
                ),
            );
            return None;
        }
        let (path, file) = self.open_blob(at, what)?;
        let mut bytes = Vec::new();
        if let Err(e) = file.take(d.size as u64 + 1).read_to_end(&mut bytes) {
            self.p.error(&path, None, format!("cannot be read: {e}"));
            return None;
        }
        if bytes.len() as u64 != d.size as u64 {
            self.p.error(&path, None, "changed size while being read");
            return None;
        }
        let mut h = Hasher::new(d.digest.algorithm());
        h.update(&bytes);
        let actual = h.finish();
        if actual != d.digest {
            self.p.error(
                &path,
                None,
                format!(
                    "the content hashes to {actual}, not to its digest {} (tampered or corrupt)",
                    d.digest
                ),
            );
            return None;
        }
        Some((path, bytes))
    }

    fn check_image(&mut self, at: &Found, expect: Option<&(Platform, String)>) -> Option<Image> {
        if !docs::check_manifest_descriptor(&mut self.p, &at.file, &at.field, &at.descriptor) {
            // Still check that the blob is what the descriptor says.
            self.check_blob_bytes(at, "blob");
            return None;
        }
        let (mpath, bytes) = self.read_json_blob(at, "manifest")?;
        let (manifest, manifest_value) = docs::decode::<Manifest>(
            &mut self.p,
            &mpath,
            &bytes,
            &["config", "layers", "subject"],
        )?;
        docs::check_manifest(&mut self.p, &mpath, &manifest);
        if let Some(s) = &manifest.subject {
            self.referenced.insert(s.digest.blob_path());
        }
        let config_at = Found {
            file: mpath.clone(),
            field: "config".into(),
            descriptor: manifest.config.clone(),
        };
        let config = self
            .read_json_blob(&config_at, "config")
            .and_then(|(cpath, bytes)| {
                let (config, value) =
                    docs::decode::<ImageConfig>(&mut self.p, &cpath, &bytes, &[])?;
                let created =
                    docs::check_config(&mut self.p, &cpath, &config, Some(manifest.layers.len()));
                self.check_platform(at, &cpath, &config, expect);
                Some((cpath, config, value, created))
            });
        let created = config.as_ref().and_then(|c| c.3);
        let mut layers = Vec::new();
        for (i, l) in manifest.layers.iter().enumerate() {
            let layer_at = Found {
                file: mpath.clone(),
                field: format!("layers[{i}]"),
                descriptor: l.clone(),
            };
            let Some(compression) = Compression::from_media_type(&l.media_type) else {
                self.check_blob_bytes(&layer_at, "layer");
                continue;
            };
            let want = config.as_ref().and_then(|c| {
                c.1.rootfs
                    .diff_ids
                    .get(i)
                    .cloned()
                    .map(|d| (c.0.clone(), d))
            });
            if let Some(layer) = self.check_layer(&layer_at, i, compression, want, created) {
                layers.push(layer);
            }
        }
        let (_, config, config_value, _) = config?;
        (layers.len() == manifest.layers.len()).then(|| Image {
            index: Value::Null,
            descriptor_file: None,
            descriptor: at.descriptor.clone(),
            manifest,
            manifest_value,
            config,
            config_value,
            layers,
        })
    }

    /// Checks only that a blob has the descriptor's size and digest, streaming it.
    fn check_blob_bytes(&mut self, at: &Found, what: &str) {
        let Some((path, file)) = self.open_blob(at, what) else {
            return;
        };
        match read_blob(file, &at.descriptor, None) {
            Ok((digest, n)) => self.check_digest(&path, at, &digest, n),
            Err(e) => self.p.error(&path, None, format!("cannot be read: {e}")),
        }
    }

    fn check_digest(&mut self, path: &str, at: &Found, actual: &Digest, n: u64) {
        if n != at.descriptor.size as u64 {
            self.p.error(path, None, "changed size while being read");
        } else if *actual != at.descriptor.digest {
            self.p.error(
                path,
                None,
                format!(
                    "the content hashes to {actual}, not to its digest {} (tampered or corrupt)",
                    at.descriptor.digest
                ),
            );
        }
    }

    fn check_platform(
        &mut self,
        at: &Found,
        cpath: &str,
        config: &ImageConfig,
        expect: Option<&(Platform, String)>,
    ) {
        let cp = config_platform(config);
        match &at.descriptor.platform {
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
                        self.p.error(
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
            None => self.p.warn(
                &at.file,
                Some(at.field.clone()),
                format!("no platform on the image's descriptor (the config says {cp})"),
            ),
        }
        if let Some((want, from)) = expect {
            let same = |p: &Platform| {
                p.os == want.os && p.architecture == want.architecture && p.variant == want.variant
            };
            if !same(&cp) {
                self.p.error(
                    cpath,
                    Some("architecture".into()),
                    format!("the image is {cp}, but {from} means {want}"),
                );
            }
            if let Some(ip) = &at.descriptor.platform
                && !same(ip)
            {
                self.p.error(
                    &at.file,
                    Some(join_key(&at.field, "platform")),
                    format!("{ip}, but {from} means {want}"),
                );
            }
        }
    }

    fn check_layer(
        &mut self,
        at: &Found,
        index: usize,
        compression: Compression,
        want: Option<(String, Digest)>,
        created: Option<i64>,
    ) -> Option<LayerContent> {
        let (path, file) = self.open_blob(at, "layer")?;
        let opts = ScanOptions {
            created,
            keep_entries: self.keep_entries,
            hash_contents: self.keep_entries,
        };
        let out = stream_layer(file, &at.descriptor, compression, &opts);
        self.check_digest(&path, at, &out.digest, out.bytes);
        if let Some(e) = &out.read_error {
            self.p.error(&path, None, format!("cannot be read: {e}"));
        }
        if let Some(m) = &out.format_error {
            self.p.error(&path, None, m.clone());
        }
        for f in &out.scan.findings {
            let field = f.entry.as_ref().map(|e| format!("tar entry {e:?}"));
            if f.error {
                self.p.error(&path, field, f.message.clone());
            } else {
                self.p.warn(&path, field, f.message.clone());
            }
        }
        let diff_id = out.diff_id?;
        match want {
            Some((cpath, want)) if want != diff_id => self.p.error(
                &cpath,
                Some(format!("rootfs.diff_ids[{index}]")),
                format!("{want}, but layer {index} ({path}) decompresses to {diff_id}"),
            ),
            _ => {}
        }
        out.scan.is_ok().then(|| LayerContent {
            descriptor: at.descriptor.clone(),
            compression,
            diff_id,
            entries: out.scan.entries,
        })
    }

    /// Unreferenced files in `blobs/`.
    fn check_blob_dir(&mut self) {
        let top = match self.root.list_dir("blobs") {
            Ok(Some(t)) => t,
            Ok(None) => return, // every blob is reported missing already
            Err(e) => {
                self.p.error("blobs", None, e.to_string());
                return;
            }
        };
        for (name, kind) in top {
            let rel = format!("blobs/{name}");
            // Algorithm directories (possibly reached through a symlink that stays inside).
            let listed = match kind {
                EntryType::Dir | EntryType::Symlink => self.root.list_dir(&rel).ok().flatten(),
                _ => None,
            };
            match listed {
                Some(files) => {
                    for (f, kind) in files {
                        self.note_unreferenced(&format!("{rel}/{f}"), kind);
                    }
                }
                None => self.note_unreferenced(&rel, kind),
            }
        }
    }

    fn note_unreferenced(&mut self, rel: &str, kind: EntryType) {
        if self.referenced.contains(rel) {
            return;
        }
        let what = match kind {
            EntryType::File => "file".to_string(),
            EntryType::Dir => "directory".to_string(),
            EntryType::Symlink => match self.root.read_link(rel) {
                Ok(t) => format!("symlink to {:?}", String::from_utf8_lossy(&t)),
                Err(_) => "symlink".to_string(),
            },
            EntryType::Other(k) => k.to_string(),
        };
        self.p.warn(
            rel,
            None,
            format!("unreferenced {what}: no descriptor points to it"),
        );
    }
}

fn show_opt(v: &Option<String>) -> String {
    match v {
        Some(s) => format!("{s:?}"),
        None => "(absent)".into(),
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
