//! `ocipack diff A B`: why two images differ, most specific first.
//!
//! Both sources are opened and verified by [`crate::verify::open`] (one that fails
//! verification is refused: explaining it is `verify`'s job; a `--file` that leaves the
//! layout is a usage error, as for `verify`), then compared. A source may be a registry
//! reference: its documents are fetched and checked, and a layer only when the documents
//! show that it differs (it is then streamed through the verified reader and scanned, as
//! verify would); a registry has no `index.json` and no layout files to compare.
//! [`diff_documents`] compares documents alone, fetching nothing (`build --check
//! --against`). The comparison:
//!
//! 1. the JSON documents (`index.json`, a `--file` descriptor, manifest, config) field by
//!    field, with JSON paths and both values;
//! 2. each layer's tar entries: added, removed, changed (type, link target, size, content,
//!    mode, owner, names, mtime, device, xattrs), or in a different order; same entries
//!    with different tar bytes;
//! 3. compression-only differences: same diff_id, different blob;
//! 4. other layout files (readable names, their kind and target), when both are layouts;
//! 5. last, the digests, sizes and diff_ids that changed only because of the above.
//!
//! `ocipack build --check` uses [`diff_layouts`] to explain a mismatch.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::fmt;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use serde::Serialize;
use serde_json::Value;

use crate::digest::{Digest, Hasher};
use crate::error::{Error, Result};
use crate::image::Image;
use crate::image::rules::docs::join_key;
use crate::platform::Platform;
use crate::store::root::{EntryType, Root};
use crate::timestamp::Timestamp;
use crate::verify::scan::Entry;
use crate::verify::{self, Checked, Options, Source};

/// One difference between layout A and layout B.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Difference {
    /// A JSON field differs, or exists on one side only (`a`/`b` are JSON text).
    #[serde(rename_all = "camelCase")]
    Field {
        /// `index.json`, the descriptor file's name, `manifest` or `config`.
        document: String,
        /// The JSON path (`config.Env[0]`).
        path: String,
        /// The value in A, if present.
        a: Option<String>,
        /// The value in B, if present.
        b: Option<String>,
        /// True for digests, sizes and diff_ids, which change when what they describe does.
        derived: bool,
    },
    /// An entry only in B.
    #[serde(rename_all = "camelCase")]
    EntryAdded {
        /// Layer index.
        layer: usize,
        /// Entry path.
        path: String,
        /// What it is (`file, 12 bytes`).
        what: String,
    },
    /// An entry only in A.
    #[serde(rename_all = "camelCase")]
    EntryRemoved {
        /// Layer index.
        layer: usize,
        /// Entry path.
        path: String,
        /// What it was.
        what: String,
    },
    /// A property of an entry present in both differs.
    #[serde(rename_all = "camelCase")]
    EntryChanged {
        /// Layer index.
        layer: usize,
        /// Entry path.
        path: String,
        /// The property (`mode`, `content`, `mtime`, ...).
        property: String,
        /// Its value in A.
        a: String,
        /// Its value in B.
        b: String,
    },
    /// The entries both layers have come in a different order.
    #[serde(rename_all = "camelCase")]
    EntryOrder {
        /// Layer index.
        layer: usize,
        /// The first position (among common entries) where the order differs.
        position: usize,
        /// The entry A has there.
        a: String,
        /// The entry B has there.
        b: String,
    },
    /// Same entries, different tar bytes (header encoding, padding, end marker).
    #[serde(rename_all = "camelCase")]
    TarEncoding {
        /// Layer index.
        layer: usize,
        /// diff_id in A.
        a: Digest,
        /// diff_id in B.
        b: Digest,
    },
    /// Same uncompressed tar, different blob: only the compressor's output differs.
    #[serde(rename_all = "camelCase")]
    Compression {
        /// Layer index.
        layer: usize,
        /// The common diff_id.
        diff_id: Digest,
        /// The blob in A (`gzip, 123 bytes, sha256:…`).
        a: String,
        /// The blob in B.
        b: String,
    },
    /// The layers differ (their diff_ids do), and their content was not compared: the
    /// documents alone were ([`diff_documents`]).
    #[serde(rename_all = "camelCase")]
    LayerContent {
        /// Layer index.
        layer: usize,
        /// diff_id in A.
        a: Digest,
        /// diff_id in B.
        b: Digest,
    },
    /// The layers differ (their diff_ids do), and one is a foreign layer, whose content is
    /// never fetched: the diff_ids are all there is to compare.
    #[serde(rename_all = "camelCase")]
    ForeignLayer {
        /// Layer index.
        layer: usize,
        /// diff_id in A.
        a: Digest,
        /// diff_id in B.
        b: Digest,
    },
    /// A layout file outside the documents differs (readable names, blob symlinks).
    #[serde(rename_all = "camelCase")]
    LayoutFile {
        /// Path relative to the layout.
        path: String,
        /// What it is in A.
        a: String,
        /// What it is in B.
        b: String,
        /// True when it only points to (or holds) a blob that differs anyway.
        derived: bool,
    },
}

impl Difference {
    /// True for differences that merely follow from others (digests, sizes, diff_ids,
    /// readable names of changed blobs).
    pub fn is_derived(&self) -> bool {
        matches!(
            self,
            Difference::Field { derived: true, .. } | Difference::LayoutFile { derived: true, .. }
        )
    }

    /// The layer entry concerned, if any.
    pub fn entry_path(&self) -> Option<&str> {
        match self {
            Difference::EntryAdded { path, .. }
            | Difference::EntryRemoved { path, .. }
            | Difference::EntryChanged { path, .. } => Some(path),
            _ => None,
        }
    }

    fn rank(&self) -> u8 {
        match self {
            _ if self.is_derived() => 6,
            Difference::Field { .. } => 0,
            Difference::EntryAdded { .. }
            | Difference::EntryRemoved { .. }
            | Difference::EntryChanged { .. }
            | Difference::LayerContent { .. }
            | Difference::ForeignLayer { .. } => 1,
            Difference::EntryOrder { .. } => 2,
            Difference::TarEncoding { .. } => 3,
            Difference::Compression { .. } => 4,
            Difference::LayoutFile { .. } => 5,
        }
    }
}

fn absent(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("(absent)")
}

impl fmt::Display for Difference {
    /// One line; the names in it (entry paths, link targets, layout files) come from layouts
    /// and are escaped ([`crate::show::line`]: no raw control character reaches a terminal).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::show::line(&self.raw_line()))
    }
}

impl Difference {
    fn raw_line(&self) -> String {
        let mut out = String::new();
        let _ = self.write_raw(&mut out);
        out
    }

    fn write_raw(&self, f: &mut String) -> fmt::Result {
        use std::fmt::Write as _;
        let follows = if self.is_derived() {
            " (follows from the differences above)"
        } else {
            ""
        };
        match self {
            Difference::Field {
                document,
                path,
                a,
                b,
                ..
            } => write!(
                f,
                "{document} {path}: {} → {}{follows}",
                absent(a),
                absent(b)
            ),
            Difference::EntryAdded { layer, path, what } => {
                write!(f, "layer {layer}: + {path} ({what}) only in B")
            }
            Difference::EntryRemoved { layer, path, what } => {
                write!(f, "layer {layer}: - {path} ({what}) only in A")
            }
            Difference::EntryChanged {
                layer,
                path,
                property,
                a,
                b,
            } => write!(f, "layer {layer}: {path}: {property} {a} → {b}"),
            Difference::EntryOrder {
                layer,
                position,
                a,
                b,
            } => write!(
                f,
                "layer {layer}: entry order differs from position {position}: A has {a}, B has {b}"
            ),
            Difference::TarEncoding { layer, a, b } => write!(
                f,
                "layer {layer}: same entries, different tar bytes (header encoding, padding or end marker): diff_id {a} → {b}"
            ),
            Difference::Compression {
                layer,
                diff_id,
                a,
                b,
            } => write!(
                f,
                "layer {layer}: same files, different compressor output (diff_id {diff_id}): {a} → {b}"
            ),
            Difference::LayerContent { layer, a, b } => write!(
                f,
                "layer {layer}: other files (diff_id {a} → {b}; the layers were not fetched to \
                 compare their entries: --explain does)"
            ),
            Difference::ForeignLayer { layer, a, b } => write!(
                f,
                "layer {layer}: other files (diff_id {a} → {b}; a foreign layer, whose content \
                 is not in the registry or the layout, is never fetched to compare entries)"
            ),
            Difference::LayoutFile { path, a, b, .. } => {
                write!(f, "layout file {path}: {a} → {b}{follows}")
            }
        }
    }
}

/// Which image of each source to compare.
#[derive(Debug, Clone, Default)]
pub struct DiffOptions {
    /// Descriptor file to use in A (bashbrew's `File:`) instead of index.json's only entry.
    pub file_a: Option<String>,
    /// Descriptor file to use in B.
    pub file_b: Option<String>,
    /// The platform to compare, and how it was named (`--arch amd64`): the image of a
    /// multi-platform source (a layout's image index, a registry's index), and the
    /// platform a single image must have.
    pub platform: Option<(Platform, String)>,
}

/// Compares the layouts `a` and `b` (each with its single image); empty when identical.
pub fn diff_layouts(a: &Path, b: &Path) -> Result<Vec<Difference>> {
    let (a, b) = (Source::Layout(a.into()), Source::Layout(b.into()));
    diff_sources(&a, &b, &DiffOptions::default())
}

/// Compares the images of `a` and `b`, choosing them as `opts` says.
pub fn diff_sources(a: &Source, b: &Source, opts: &DiffOptions) -> Result<Vec<Difference>> {
    let mut ia = open(a, opts.file_a.clone(), &opts.platform)?;
    let mut ib = open(b, opts.file_b.clone(), &opts.platform)?;
    let mut out = diff_images(&mut ia, &mut ib, true)?;
    out.extend(diff_layout_files(&ia, &ib)?);
    out.sort_by_key(Difference::rank);
    Ok(out)
}

/// Compares the documents of two images (the index entry, manifest and config; layers by
/// their descriptors and diff_ids), reading no blob: what `build --check --against` says
/// about an image it built in memory and one a registry serves. Sorted, most specific
/// first.
pub fn diff_documents(a: &Image, b: &Image) -> Vec<Difference> {
    let (mut sa, mut sb) = (Side::documents(a), Side::documents(b));
    let mut out = diff_images(&mut sa, &mut sb, false).unwrap_or_default();
    out.sort_by_key(Difference::rank);
    out
}

fn open(
    source: &Source,
    file: Option<String>,
    platform: &Option<(Platform, String)>,
) -> Result<Side> {
    // A layout is verified whole, layers included (it is at hand); a registry's documents
    // are, and its layers are fetched only if they differ.
    let remote = source.is_remote();
    let opts = Options {
        file,
        expect: platform.clone(),
        select_platform: true,
        keep_entries: !remote,
        documents_only: remote,
        ..Options::default()
    };
    verify::open(source, &opts)?.single().map(Side::from)
}

/// One side of a comparison: a verified image with its documents as JSON values.
pub struct Side {
    /// The image (its blobs read through it when a layer must be compared).
    image: Image,
    /// The layout the image is in, when it was read from one.
    layout: Option<Root>,
    /// `index.json`, when the image was read from a layout.
    index: Option<Value>,
    descriptor_file: Option<(String, Value)>,
    descriptor: crate::spec::Descriptor,
    manifest: crate::spec::Manifest,
    manifest_value: Value,
    config_value: Value,
    /// Each layer's entries, once read (a layout's, or a registry's that differs).
    layers: Vec<Option<verify::LayerContent>>,
}

impl From<Checked> for Side {
    fn from(c: Checked) -> Side {
        let mut side = Side::documents(&c.image);
        side.index = c.layout.index.as_ref().map(|i| i.json());
        side.descriptor_file = c
            .layout
            .descriptor_file
            .as_ref()
            .map(|(n, d)| (n.clone(), d.json()));
        for (slot, l) in side.layers.iter_mut().zip(c.layers) {
            *slot = l;
        }
        side
    }
}

impl Side {
    /// An image's documents, no layer read yet.
    fn documents(image: &Image) -> Side {
        Side {
            image: image.clone(),
            layout: image.layout().cloned(),
            index: None,
            descriptor_file: None,
            descriptor: image.entry.clone(),
            manifest: (*image.manifest.value).clone(),
            manifest_value: image.manifest.json(),
            config_value: image.config.json(),
            layers: vec![None; image.layers().len()],
        }
    }

    /// The entries of layer `i`, read now if they were not (through the verified reader).
    fn layer(&mut self, i: usize) -> Result<&verify::LayerContent> {
        if self.layers[i].is_none() {
            let d = self.manifest.layers[i].clone();
            let diff_id = self.image.diff_ids().get(i).cloned().ok_or_else(|| {
                self.image.bad(
                    &format!("layer {}", d.digest),
                    "has no diff_id in the config",
                )
            })?;
            self.layers[i] = Some(verify::scan_layer(&self.image, &d, &diff_id)?);
        }
        Ok(self.layers[i].as_ref().expect("read above"))
    }

    /// Layer `i`'s diff_id (its entries' when read, else the config's).
    fn diff_id(&self, i: usize) -> Option<Digest> {
        match &self.layers[i] {
            Some(l) => Some(l.diff_id.clone()),
            None => self.image.diff_ids().get(i).cloned(),
        }
    }
}

/// Compares two images opened by [`verify::open`]; with `fetch`, the entries of layers that
/// differ are read (from a registry, only now), else such layers are named only.
fn diff_images(a: &mut Side, b: &mut Side, fetch: bool) -> Result<Vec<Difference>> {
    let mut out = Vec::new();
    if let (Some(ia), Some(ib)) = (&a.index, &b.index) {
        diff_values("index.json", String::new(), Some(ia), Some(ib), &mut out);
    }
    match (&a.descriptor_file, &b.descriptor_file) {
        (Some((na, va)), Some((_, vb))) => {
            diff_values(na, String::new(), Some(va), Some(vb), &mut out)
        }
        (None, None) => {}
        (fa, fb) => out.push(Difference::Field {
            document: "descriptor file".into(),
            path: String::new(),
            a: fa.as_ref().map(|f| f.0.clone()),
            b: fb.as_ref().map(|f| f.0.clone()),
            derived: false,
        }),
    }
    if a.descriptor.digest == b.descriptor.digest {
        return Ok(out);
    }
    diff_values(
        "manifest",
        String::new(),
        Some(&a.manifest_value),
        Some(&b.manifest_value),
        &mut out,
    );
    if a.manifest.config.digest != b.manifest.config.digest {
        diff_values(
            "config",
            String::new(),
            Some(&a.config_value),
            Some(&b.config_value),
            &mut out,
        );
    }
    let shared = a.manifest.layers.len().min(b.manifest.layers.len());
    for i in 0..shared {
        let (da, db) = (&a.manifest.layers[i], &b.manifest.layers[i]);
        if da.digest == db.digest {
            continue;
        }
        let (ida, idb) = (a.diff_id(i), b.diff_id(i));
        if let (Some(x), Some(y)) = (&ida, &idb)
            && x == y
        {
            let show = |d: &crate::spec::Descriptor| {
                let c = crate::media::Compression::from_media_type(&d.media_type)
                    .map_or_else(|| crate::show::text(&d.media_type), |c| c.to_string());
                format!("{c}, {} bytes, {}", d.size, d.digest)
            };
            out.push(Difference::Compression {
                layer: i,
                diff_id: x.clone(),
                a: show(da),
                b: show(db),
            });
            continue;
        }
        // A foreign layer neither side holds is never fetched (its content is not the
        // registry's to serve): its diff_id is all there is to compare.
        let unheld = |s: &Side, d: &crate::spec::Descriptor| -> bool {
            crate::media::foreign_layer(&d.media_type).is_some() && s.layers[i].is_none()
        };
        let foreign = unheld(a, da) || unheld(b, db);
        if !fetch || foreign {
            if let (Some(x), Some(y)) = (ida, idb) {
                out.push(if foreign {
                    Difference::ForeignLayer {
                        layer: i,
                        a: x,
                        b: y,
                    }
                } else {
                    Difference::LayerContent {
                        layer: i,
                        a: x,
                        b: y,
                    }
                });
            }
            continue;
        }
        let la = a.layer(i)?.clone();
        let lb = b.layer(i)?;
        let before = out.len();
        diff_entries(i, &la.entries, &lb.entries, &mut out);
        if out.len() == before {
            out.push(Difference::TarEncoding {
                layer: i,
                a: la.diff_id.clone(),
                b: lb.diff_id.clone(),
            });
        }
    }
    Ok(out)
}

fn is_derived_path(document: &str, path: &str) -> bool {
    path.ends_with(".digest")
        || path.ends_with(".size")
        || path == "digest"
        || path == "size"
        || (document == "config" && path.starts_with("rootfs.diff_ids"))
}

fn diff_values(
    document: &str,
    path: String,
    a: Option<&Value>,
    b: Option<&Value>,
    out: &mut Vec<Difference>,
) {
    match (a, b) {
        (Some(Value::Object(ma)), Some(Value::Object(mb))) => {
            let keys: BTreeSet<&String> = ma.keys().chain(mb.keys()).collect();
            for k in keys {
                diff_values(document, join_key(&path, k), ma.get(k), mb.get(k), out);
            }
        }
        (Some(Value::Array(va)), Some(Value::Array(vb))) => {
            for i in 0..va.len().max(vb.len()) {
                diff_values(document, format!("{path}[{i}]"), va.get(i), vb.get(i), out);
            }
        }
        (x, y) if x != y => out.push(Difference::Field {
            document: document.to_string(),
            derived: is_derived_path(document, &path),
            path,
            a: x.map(Value::to_string),
            b: y.map(Value::to_string),
        }),
        _ => {}
    }
}

/// A name from a layer (entry path, link target, owner name, xattr value) as printable,
/// unambiguous text: control characters and backslashes escaped, bytes that are not UTF-8
/// as `\xNN` ([`crate::show::bytes`]), so that two different names never print alike.
fn show_path(p: &[u8]) -> String {
    crate::show::bytes(p)
}

fn what(e: &Entry) -> String {
    match e.kind {
        crate::tar::EntryKind::File => format!("file, {} bytes", e.size),
        k => match &e.link {
            Some(l) => format!("{k} to {}", show_path(l)),
            None => k.to_string(),
        },
    }
}

fn show_mtime(t: i64) -> String {
    match Timestamp::from_unix(t) {
        Some(ts) => format!("{t} ({ts})"),
        None => t.to_string(),
    }
}

fn entry_properties(e: &Entry) -> Vec<(&'static str, String)> {
    let opt = |v: Option<String>| v.unwrap_or_else(|| "(none)".into());
    vec![
        ("type", e.kind.to_string()),
        ("link target", opt(e.link.as_deref().map(show_path))),
        ("size", e.size.to_string()),
        ("content", opt(e.content.as_ref().map(ToString::to_string))),
        ("mode", format!("{:04o}", e.mode)),
        ("uid", e.uid.to_string()),
        ("gid", e.gid.to_string()),
        ("user name", format!("\"{}\"", show_path(&e.uname))),
        ("group name", format!("\"{}\"", show_path(&e.gname))),
        ("mtime", show_mtime(e.mtime)),
        ("device", opt(e.device.map(|(ma, mi)| format!("{ma},{mi}")))),
        (
            "xattrs",
            format!(
                "{{{}}}",
                e.xattrs
                    .iter()
                    .map(|(k, v)| format!("{}=\"{}\"", crate::show::text(k), show_path(v)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
    ]
}

fn diff_entries(layer: usize, a: &[Entry], b: &[Entry], out: &mut Vec<Difference>) {
    let ma: BTreeMap<&[u8], &Entry> = a.iter().map(|e| (e.path.as_slice(), e)).collect();
    let mb: BTreeMap<&[u8], &Entry> = b.iter().map(|e| (e.path.as_slice(), e)).collect();
    let paths: BTreeSet<&[u8]> = ma.keys().chain(mb.keys()).copied().collect();
    for p in paths {
        let path = show_path(p);
        match (ma.get(p), mb.get(p)) {
            (Some(ea), None) => out.push(Difference::EntryRemoved {
                layer,
                path,
                what: what(ea),
            }),
            (None, Some(eb)) => out.push(Difference::EntryAdded {
                layer,
                path,
                what: what(eb),
            }),
            (Some(ea), Some(eb)) => {
                for ((property, va), (_, vb)) in
                    entry_properties(ea).into_iter().zip(entry_properties(eb))
                {
                    if va != vb {
                        out.push(Difference::EntryChanged {
                            layer,
                            path: path.clone(),
                            property: property.to_string(),
                            a: va,
                            b: vb,
                        });
                    }
                }
            }
            (None, None) => {}
        }
    }
    let order_a: Vec<&[u8]> = a
        .iter()
        .map(|e| e.path.as_slice())
        .filter(|p| mb.contains_key(p))
        .collect();
    let order_b: Vec<&[u8]> = b
        .iter()
        .map(|e| e.path.as_slice())
        .filter(|p| ma.contains_key(p))
        .collect();
    if let Some(position) = order_a.iter().zip(&order_b).position(|(x, y)| x != y) {
        out.push(Difference::EntryOrder {
            layer,
            position,
            a: show_path(order_a[position]),
            b: show_path(order_b[position]),
        });
    }
}

/// What a layout file is, for comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
enum FileDesc {
    File(Option<Digest>),
    Symlink(String),
    Dir,
    Other(&'static str),
}

impl fmt::Display for FileDesc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileDesc::File(Some(d)) => write!(f, "file {}", d.short()),
            FileDesc::File(None) => f.write_str("file"),
            FileDesc::Symlink(t) => write!(f, "symlink to {t}"),
            FileDesc::Dir => f.write_str("directory"),
            FileDesc::Other(k) => f.write_str(k),
        }
    }
}

/// The layout's own files: top-level entries (regular files hashed) and the kinds of the
/// blobs both layouts have. Documents compared field by field are left out, unless their
/// bytes differ while their values do not (formatting).
fn layout_files(root: &Root, dirs: &[&str]) -> Result<BTreeMap<String, FileDesc>> {
    let io = |e: crate::store::root::OpenError| {
        Error::input(
            format!("layout {}", crate::show::path(root.path())),
            e.to_string(),
        )
    };
    let mut out = BTreeMap::new();
    for dir in dirs {
        let Some(list) = root.list_dir_bytes(dir).map_err(io)? else {
            continue;
        };
        for (name, kind) in list {
            // Names are bytes (a file name need not be UTF-8); they are keyed and shown
            // escaped.
            let mut rel = dir.as_bytes().to_vec();
            if !rel.is_empty() {
                rel.push(b'/');
            }
            rel.extend_from_slice(&name);
            let shown = crate::show::bytes(&rel);
            let desc = match kind {
                EntryType::Dir => FileDesc::Dir,
                EntryType::Other(k) => FileDesc::Other(k),
                EntryType::Symlink => {
                    FileDesc::Symlink(crate::show::bytes(&root.read_link(&rel).map_err(io)?))
                }
                // Blob files are named by their content: no need to hash them again.
                EntryType::File if rel.starts_with(b"blobs/") => FileDesc::File(None),
                EntryType::File => {
                    let opened = root.open_file(&rel).map_err(io)?;
                    let mut h = Hasher::sha256();
                    let mut buf = vec![0u8; 256 * 1024];
                    let mut r = opened.file.take(opened.size);
                    loop {
                        let n = r.read(&mut buf).map_err(|e| {
                            Error::input_io("reading", root.path().join(OsStr::from_bytes(&rel)), e)
                        })?;
                        if n == 0 {
                            break;
                        }
                        h.update(&buf[..n]);
                    }
                    FileDesc::File(Some(h.finish()))
                }
            };
            out.insert(shown, desc);
        }
    }
    Ok(out)
}

fn blob_digests(i: &Side) -> BTreeSet<String> {
    [&i.descriptor, &i.manifest.config]
        .into_iter()
        .chain(&i.manifest.layers)
        .map(|d| d.digest.to_string())
        .collect()
}

/// The differences of the layouts' own files, when both images were read from layouts
/// (through the directories opened for them, never by their paths again).
fn diff_layout_files(ia: &Side, ib: &Side) -> Result<Vec<Difference>> {
    let (Some(ra), Some(rb)) = (&ia.layout, &ib.layout) else {
        return Ok(Vec::new());
    };
    let dirs = ["", "blobs", "blobs/sha256", "blobs/sha512"];
    let (fa, fb) = (layout_files(ra, &dirs)?, layout_files(rb, &dirs)?);
    let (da, db) = (blob_digests(ia), blob_digests(ib));
    let blob_of = |d: &FileDesc, digests: &BTreeSet<String>| match d {
        FileDesc::File(Some(h)) => digests.contains(&h.to_string()),
        FileDesc::Symlink(t) => t.starts_with("blobs/"),
        _ => false,
    };
    let docs: Vec<&str> = ["index.json"]
        .into_iter()
        .chain(ia.descriptor_file.as_ref().map(|f| f.0.as_str()))
        .collect();
    let mut out = Vec::new();
    let names: BTreeSet<&String> = fa.keys().chain(fb.keys()).collect();
    for name in names {
        let in_blobs = name.starts_with("blobs/");
        let (x, y) = (fa.get(name), fb.get(name));
        if x == y || (in_blobs && (x.is_none() || y.is_none())) {
            // Blobs present on one side follow from the descriptors compared above.
            continue;
        }
        let show = |d: Option<&FileDesc>| d.map_or("(absent)".to_string(), ToString::to_string);
        if docs.contains(&name.as_str()) {
            // Compared field by field; report only a difference of bytes alone.
            let same_value = match name.as_str() {
                "index.json" => ia.index == ib.index,
                _ => {
                    ia.descriptor_file.as_ref().map(|f| &f.1)
                        == ib.descriptor_file.as_ref().map(|f| &f.1)
                }
            };
            if same_value {
                out.push(Difference::LayoutFile {
                    path: name.clone(),
                    a: show(x),
                    b: format!(
                        "{} (the same JSON value in other bytes: key order or whitespace)",
                        show(y)
                    ),
                    derived: false,
                });
            }
            continue;
        }
        let derived = match (x, y) {
            (Some(x), Some(y)) => {
                std::mem::discriminant(x) == std::mem::discriminant(y)
                    && blob_of(x, &da)
                    && blob_of(y, &db)
            }
            _ => false,
        };
        out.push(Difference::LayoutFile {
            path: name.clone(),
            a: show(x),
            b: show(y),
            derived,
        });
    }
    Ok(out)
}
