//! Streaming an image source's blobs: every descriptor's blob checked against its digest
//! and size, each distinct layer decompressed once and its tar entries scanned.
//!
//! Where the blobs come from is the [`Store`]'s business: a layout's files (the layout
//! reader) or a registry's streams (`remote.rs`); the checks are the same.
//!
//! The [`Verifier`] follows what the reader found: for each image, the bytes of a blob that
//! is not a layer, and each layer streamed by two threads (one reads and hashes the
//! compressed bytes, the other decompresses, hashes the tar stream against the config's
//! `diff_id` and scans its entries), bounded by the declared size (a size claim allocates
//! nothing). A blob listed several times, or several names of one file (symlinks), is
//! streamed once; every descriptor's size is still compared with the file. Last, every file
//! in `blobs/` that no descriptor reaches, by name or through a symlink, is noted.

use std::collections::{BTreeSet, HashMap};
use std::io::{self, BufRead, Read, Write};
use std::sync::mpsc;

use super::scan::{self as tarscan, Entry, ScanOptions};
use crate::digest::{Digest, Hasher};
use crate::image::rules::{self, Found, ImageRead, identity};
use crate::input::decompress;
use crate::media::Compression;
use crate::problems::Problems;
use crate::spec::Descriptor;
use crate::store::hook;
use crate::store::root::{EntryType, OpenError};

use super::read::Reader;

/// Bytes per chunk handed from the blob-reading thread to the decompressing one.
const CHUNK: usize = 1024 * 1024;
/// Chunks in flight between the two threads.
const CHUNKS_IN_FLIGHT: usize = 4;

/// One layer as read: its descriptor, what it decompressed to, its entries if kept.
#[derive(Debug, Clone)]
pub struct LayerContent {
    /// The manifest's descriptor.
    pub descriptor: Descriptor,
    /// The compression of its media type.
    pub compression: Compression,
    /// sha256 of the decompressed stream.
    pub diff_id: Digest,
    /// The decompressed stream's length (a tar header's size in a docker-archive).
    pub uncompressed_size: u64,
    /// The tar entries, in stream order (only when asked for); shared, not copied, by every
    /// listing of the same layer.
    pub entries: std::sync::Arc<[Entry]>,
}

/// A blob opened for streaming by a [`Store`].
pub(super) struct Stream {
    /// The blob's name in problems (`blobs/sha256/…`, or the digest for a registry).
    pub path: String,
    /// Its content, unchecked (the verifier bounds and hashes it).
    pub reader: Box<dyn Read + Send>,
    /// For a file: its device and inode (blobs that are one file are streamed once).
    pub file: Option<(u64, u64)>,
}

/// Where a [`Verifier`]'s blobs come from, and where its problems go.
pub(super) trait Store {
    /// Every problem found so far.
    fn problems(&mut self) -> &mut Problems;
    /// Opens the blob of the descriptor `at` (`what` it is: `layer`, `config`, …) for
    /// streaming, or records why it cannot.
    fn open(&mut self, at: &Found, what: &str) -> Option<Stream>;
    /// Why the source does not hold `d` (a manifest's subject), if it does not.
    fn lacks(&mut self, d: &Descriptor) -> Option<String>;
    /// Why the foreign layer `d` is not checked, if it is not: a layout that does not hold
    /// it, or a registry (which does not serve it; ocipack never asks it, nor its `urls`).
    fn foreign_unchecked(&mut self, d: &Descriptor) -> Option<String>;
    /// The problem of a blob that gave `n` bytes where its descriptor declares `declared`.
    fn wrong_size(&self, n: u64, declared: i64) -> String;
}

impl Store for Reader {
    fn problems(&mut self) -> &mut Problems {
        &mut self.problems
    }

    fn open(&mut self, at: &Found, what: &str) -> Option<Stream> {
        let blob = self.open_blob(at, what)?;
        let file = rustix::fs::fstat(&blob.opened.file)
            .ok()
            .map(|st| (st.st_dev, st.st_ino));
        Some(Stream {
            path: blob.path,
            reader: Box::new(blob.opened.file),
            file,
        })
    }

    fn lacks(&mut self, d: &Descriptor) -> Option<String> {
        match self.root.open_file(d.digest.blob_path()) {
            Ok(_) => None,
            Err(OpenError::NotFound) => Some("missing".to_string()),
            Err(e) => Some(e.to_string()),
        }
    }

    fn foreign_unchecked(&mut self, d: &Descriptor) -> Option<String> {
        self.lacks(d).map(|why| match why.as_str() {
            "missing" => "the layout does not hold it".to_string(),
            _ => format!("the layout's blob of it cannot be opened ({why})"),
        })
    }

    fn wrong_size(&self, _: u64, _: i64) -> String {
        // The file had the declared size when it was opened.
        "changed size while being read".to_string()
    }
}

/// Checks the blobs of a source's images, each distinct blob once.
pub(super) struct Verifier<S: Store> {
    /// Where the blobs are, and the problems found: the reader that read the layout's
    /// documents (its referenced blobs too), or the registry's.
    pub(super) store: S,
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
    /// Layer blobs whose whiteouts were noted (a layer that is the only one of several
    /// images is noted once).
    whiteouts_noted: BTreeSet<String>,
}

/// A layer file already streamed: the path it was first streamed as, its content's digest
/// and size, and the outcome.
type StreamedFile = (String, Digest, u64, LayerOutcome);

#[derive(Clone)]
struct LayerOutcome {
    path: String,
    diff_id: Option<Digest>,
    content: Option<LayerContent>,
    /// The whiteout entries the scan saw: how many, and the first one's name.
    whiteouts: (u64, Option<String>),
}

impl<S: Store> Verifier<S> {
    /// A verifier of the blobs of the source `store` read; with `keep_entries`, layers'
    /// entries are kept and file contents hashed (for `diff`).
    pub(super) fn new(store: S, keep_entries: bool) -> Verifier<S> {
        Verifier {
            store,
            keep_entries,
            checked: BTreeSet::new(),
            layers: HashMap::new(),
            files: HashMap::new(),
            whiteouts_noted: BTreeSet::new(),
        }
    }

    /// Checks the blobs an image descriptor reaches: a non-manifest blob's bytes, or each
    /// layer's content against the config's diff_ids, whiteouts in an only layer, and
    /// whether the layout holds the manifest's subject. Returns the layers when all are
    /// valid, base first: `None` for a foreign layer the source does not hold (a warning:
    /// nothing can check it).
    pub(super) fn check_blobs(&mut self, img: &ImageRead) -> Option<Vec<Option<LayerContent>>> {
        let Some(manifest) = &img.manifest else {
            if !crate::media::is_manifest(&img.found.descriptor.media_type) {
                self.check_blob_bytes(&img.found, "blob");
            }
            return None;
        };
        if rules::is_attestation(&img.found.descriptor) {
            // A manifest about an image (provenance, SBOM): its blobs are checked as bytes.
            let blobs = std::iter::once(("config", &manifest.value.config))
                .chain(manifest.value.layers.iter().map(|l| ("layer", l)));
            for (i, (what, d)) in blobs.enumerate() {
                let at = Found {
                    file: img.manifest_path.clone(),
                    field: if i == 0 {
                        "config".into()
                    } else {
                        format!("layers[{}]", i - 1)
                    },
                    descriptor: d.clone(),
                };
                self.check_blob_bytes(&at, what);
            }
            return None;
        }
        if let Some(subject) = &manifest.value.subject
            && let Some(why) = self.store.lacks(subject)
        {
            rules::check_subject_held(self.store.problems(), &img.manifest_path, subject, &why);
        }
        let only_layer = manifest.value.layers.len() == 1;
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
            let foreign = crate::media::foreign_layer(&l.media_type);
            if foreign.is_some()
                && let Some(why) = self.store.foreign_unchecked(l)
            {
                self.store.problems().warn(
                    &img.manifest_path,
                    Some(at.field.clone()),
                    format!(
                        "a foreign layer ({}), whose content is at {} (its urls): {why}, \
                         so its digest, diff_id and entries are not checked",
                        crate::show::text(&l.media_type),
                        url_hosts(l)
                    ),
                );
                layers.push(None);
                continue;
            }
            let Some(compression) = Compression::from_media_type(&l.media_type).or(foreign) else {
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
            if let (true, (count @ 1.., Some(first))) = (only_layer, &outcome.whiteouts)
                && self.whiteouts_noted.insert(outcome.path.clone())
            {
                rules::check_only_layer_whiteouts(
                    self.store.problems(),
                    &outcome.path,
                    *count,
                    first,
                );
            }
            let want = img
                .config
                .as_ref()
                .and_then(|c| c.value.rootfs.diff_ids.get(i));
            if let (Some(want), Some(got)) = (want, &outcome.diff_id)
                && want != got
            {
                self.store.problems().error(
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
                layers.push(Some(LayerContent {
                    descriptor: l.clone(),
                    ..c
                }));
            }
        }
        (layers.len() == manifest.value.layers.len()).then_some(layers)
    }

    /// Checks only that a blob has the descriptor's size and digest, streaming it (once).
    fn check_blob_bytes(&mut self, at: &Found, what: &str) {
        if !self.checked.insert(identity(&at.descriptor)) {
            return;
        }
        let Some(blob) = self.store.open(at, what) else {
            return;
        };
        match read_blob(blob.reader, &at.descriptor, None, None) {
            Ok((digest, n, _)) => self.check_digest(&blob.path, at, &digest, n),
            Err(e) => self
                .store
                .problems()
                .error(&blob.path, None, format!("cannot be read: {e}")),
        }
    }

    fn check_digest(&mut self, path: &str, at: &Found, actual: &Digest, n: u64) {
        if n != at.descriptor.size as u64 {
            let why = self.store.wrong_size(n, at.descriptor.size);
            self.store.problems().error(path, None, why);
        } else if *actual != at.descriptor.digest {
            self.store.problems().error(
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
        let Some(blob) = self.store.open(at, "layer") else {
            return LayerOutcome {
                path: at.descriptor.digest.blob_path(),
                diff_id: None,
                content: None,
                whiteouts: (0, None),
            };
        };
        let path = blob.path.clone();
        let key = blob.file.map(|(dev, ino)| (dev, ino, compression));
        if let Some((first, digest, bytes, outcome)) = key.and_then(|k| self.files.get(&k)) {
            let p = self.store.problems();
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
        let out = stream_layer(blob.reader, &at.descriptor, compression, &opts, None);
        let wrong_size = self.store.wrong_size(out.bytes, at.descriptor.size);
        let p = self.store.problems();
        if out.bytes != at.descriptor.size as u64 {
            p.error(&path, None, wrong_size);
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
                uncompressed_size: out.uncompressed,
                entries: out.scan.entries.into(),
            }),
            _ => None,
        };
        let outcome = LayerOutcome {
            path: path.clone(),
            diff_id: out.diff_id,
            content,
            whiteouts: out.scan.whiteouts,
        };
        if let Some(k) = key {
            self.files
                .insert(k, (path, out.digest, out.bytes, outcome.clone()));
        }
        outcome
    }
}

impl Verifier<Reader> {
    /// Unreferenced files in `blobs/`. Names are listed as bytes: one that is not UTF-8
    /// cannot be a digest, and is shown escaped, never converted lossily (which could make
    /// two names print alike).
    pub(super) fn check_blob_dir(&mut self) {
        let root = self.store.root.clone();
        let top = match root.list_dir_bytes("blobs") {
            Ok(Some(t)) => t,
            Ok(None) => return, // every blob is reported missing already
            Err(e) => {
                self.store.problems.error("blobs", None, e.to_string());
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
        if std::str::from_utf8(rel).is_ok_and(|r| self.store.referenced.contains(r)) {
            return;
        }
        let what = match kind {
            EntryType::File => "file".to_string(),
            EntryType::Dir => "directory".to_string(),
            EntryType::Symlink => match self.store.root.read_link(rel) {
                Ok(t) => format!("symlink to \"{}\"", crate::show::bytes(&t)),
                Err(_) => "symlink".to_string(),
            },
            EntryType::Other(k) => k.to_string(),
        };
        self.store.problems.warn(
            rel,
            None,
            format!("unreferenced {what}: no descriptor points to it"),
        );
    }
}

/// The hosts a foreign layer's `urls` name ([`crate::registry::url::shown_hosts`]), or
/// `no host` when it has none.
fn url_hosts(d: &Descriptor) -> String {
    let hosts = crate::registry::url::shown_hosts(d.urls.as_deref().unwrap_or_default());
    if hosts.is_empty() {
        "no host".into()
    } else {
        hosts.join(", ")
    }
}

/// What streaming a layer blob found.
struct Streamed {
    digest: Digest,
    bytes: u64,
    read_error: Option<io::Error>,
    /// Writing the copy of the blob failed.
    copy_error: Option<io::Error>,
    format_error: Option<String>,
    diff_id: Option<Digest>,
    /// The decompressed stream's length, when it was read whole.
    uncompressed: u64,
    scan: tarscan::Scan,
}

/// Where a copy of a blob's bytes goes as they are read (the caller's temporary file).
pub(super) type Copy<'a> = Option<&'a mut (dyn Write + Send)>;

/// Reads up to the declared size + 1 bytes of `file`, hashing them with the digest's
/// algorithm, writing them to `copy` and handing chunks to `tx` while someone listens.
/// Returns the digest, the number of bytes, and the error writing the copy, if any (the
/// copy stops there; the blob is still read to its end).
fn read_blob(
    file: impl Read,
    d: &Descriptor,
    tx: Option<mpsc::SyncSender<Vec<u8>>>,
    mut copy: Copy,
) -> io::Result<(Digest, u64, Option<io::Error>)> {
    let mut h = Hasher::new(d.digest.algorithm());
    let mut r = file.take(u64::try_from(d.size).unwrap_or(0) + 1);
    let mut tx = tx;
    let mut copy_error = None;
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
        if let Some(c) = copy.as_mut()
            && let Err(e) = c.write_all(&chunk)
        {
            copy_error = Some(e);
            copy = None;
        }
        if let Some(t) = &tx
            && t.send(chunk).is_err()
        {
            // The consumer stopped early; keep hashing to check the digest.
            tx = None;
        }
    }
    let n = h.len();
    Ok((h.finish(), n, copy_error))
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
    file: impl Read + Send,
    d: &Descriptor,
    compression: Compression,
    opts: &ScanOptions,
    copy: Copy,
) -> Streamed {
    let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(CHUNKS_IN_FLIGHT);
    std::thread::scope(|s| {
        let reader = s.spawn(move || read_blob(file, d, Some(tx), copy));
        let mut chunks = ChunkReader {
            rx,
            chunk: Vec::new(),
            pos: 0,
        };
        let mut format_error = None;
        let mut diff_id = None;
        let mut uncompressed = 0;
        let mut scan = tarscan::Scan::default();
        let head = chunks.fill_buf().map(decompress::sniff).ok();
        match head {
            Some(looks) if looks != compression && !chunks.chunk.is_empty() => {
                format_error = Some(format!(
                    "the bytes are {} but the media type {} says {}",
                    describe(looks),
                    d.media_type,
                    describe(compression)
                ));
            }
            _ => match decompress::decoder(&mut chunks, compression) {
                Err(e) => format_error = Some(format!("cannot decompress: {e}")),
                Ok(dec) => {
                    hook::test_log(hook::DECOMPRESSIONS, || d.digest.to_string());
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
                        (None, Ok(_)) => {
                            uncompressed = hr.hasher.len();
                            diff_id = Some(hr.hasher.finish());
                        }
                    }
                }
            },
        }
        // Stop listening; the reader finishes hashing the blob on its own.
        drop(chunks);
        let (digest, bytes, read_error, copy_error) = match reader.join() {
            Ok(Ok((digest, n, copy_error))) => (digest, n, None, copy_error),
            Ok(Err(e)) => (d.digest.clone(), d.size as u64, Some(e), None),
            Err(_) => (
                d.digest.clone(),
                d.size as u64,
                Some(io::Error::other("the reading thread panicked")),
                None,
            ),
        };
        Streamed {
            digest,
            bytes,
            read_error,
            copy_error,
            format_error,
            diff_id,
            uncompressed,
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
            let dec = decompress::decoder(bytes, c).ok()?;
            Some(tarscan::scan(dec, &opts))
        })
        .collect()
}

/// The entries of the layer `d` of `image`, streamed through the image's verified reader
/// and written to `copy` as they are read (see [`super::scan_layer`]). Content that is not
/// what `d` says (or that cannot be read) from a registry is the registry's failure
/// ([`Error::Remote`], exit 1, as every other); from a layout, or a layer that breaks a rule
/// (its diff_id, its entries), the input's.
pub(super) fn scan_image_layer(
    image: &crate::image::Image,
    d: &Descriptor,
    diff_id: &Digest,
    copy: Copy,
) -> crate::Result<LayerContent> {
    use crate::error::Error;
    use crate::image::blob::Blobs;
    let what = format!("layer {}", d.digest);
    let bad = |why: String| image.bad(&what, why);
    let lie = |why: String| match image.blob_source() {
        Some(Blobs::Remote(r)) => {
            Error::Remote(format!("reading from {}: {what}: {why}", r.name()))
        }
        _ => bad(why),
    };
    let compression = image.layer_compression(d)?;
    let reader = image.open_blob(d)?;
    let opts = ScanOptions {
        created: image.created().map(|t| t.unix()),
        keep_entries: true,
        hash_contents: true,
    };
    let out = stream_layer(reader, d, compression, &opts, copy);
    if let Some(e) = out.copy_error {
        return Err(Error::io_on("writing", format!("a copy of {what}"), e));
    }
    if let Some(e) = out.read_error {
        // The verified reader's words name the source and the blob already.
        return Err(match image.blob_source() {
            Some(Blobs::Remote(_)) => Error::Remote(e.to_string()),
            _ => bad(format!("cannot be read: {e}")),
        });
    }
    if out.bytes != d.size as u64 || out.digest != d.digest {
        return Err(lie(format!(
            "{} bytes hashing to {}, not what its descriptor says",
            out.bytes, out.digest
        )));
    }
    if let Some(m) = out.format_error {
        return Err(bad(m));
    }
    if let Some(f) = out.scan.findings.iter().find(|f| f.error) {
        let entry = f
            .entry
            .as_ref()
            .map(|e| format!("tar entry \"{}\": ", crate::show::text(e)))
            .unwrap_or_default();
        return Err(bad(format!("{entry}{}", f.message)));
    }
    match out.diff_id {
        Some(got) if got == *diff_id => Ok(LayerContent {
            descriptor: d.clone(),
            compression,
            diff_id: got,
            uncompressed_size: out.uncompressed,
            entries: out.scan.entries.into(),
        }),
        Some(got) => Err(bad(format!(
            "decompresses to {got}, but its config diff_id is {diff_id}"
        ))),
        None => Err(bad("cannot be decompressed".into())),
    }
}
