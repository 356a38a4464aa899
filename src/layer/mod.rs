//! Encoding a layer: tar stream → diff_id hash → compressor → digest hash → blob file,
//! in one pass over the inputs, pipelined across threads.
//!
//! Three stages run at once, linked by bounded channels:
//! - the *tar thread* streams the layer's entries into fixed-size buffers;
//! - the *calling thread* hashes the uncompressed stream (the diff_id) and feeds the
//!   compressor, whose own workers compress in parallel;
//! - the *writer thread* hashes the compressed stream (the digest) and writes it to the
//!   [`BlobSink`]: for a build, an anonymous (`O_TMPFILE`) file the layout writer made,
//!   compared byte for byte as it is written with the layer the target holds now. The layout
//!   writer gives the file its name (its digest, linked into a staging directory) only if
//!   the layout changed, and the commit makes it durable together with everything else.
//!
//! For an uncompressed layer the digest *is* the diff_id: the calling thread hashes each
//! buffer once and hands that same buffer to the writer, so hashing and writing overlap.
//! Buffers come from fixed pools and go back to them after use: nothing is buffered whole,
//! memory stays constant whatever the layer size, and nothing is decompressed to learn a
//! diff_id. Scheduling never changes the bytes: encoders see the same stream in the same
//! fixed-size pieces whatever the timing.
//!
//! The blob is written with direct I/O (`O_DIRECT`) where the filesystem allows it: it is
//! written once and not read back by this process, and copying it through the page cache
//! was measured to cost more CPU than hashing it. Buffers and file offsets are aligned for
//! that; whenever the kernel refuses a direct write, writing goes on through the page cache.

pub mod compress;
mod deflate;
pub mod gzip;
mod hooks;

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::sync::mpsc::{self, Receiver, SyncSender};

use rustix::fs::OFlags;

use crate::digest::{Digest, Hasher};
use crate::error::{Error, Result};
use crate::input::EntryList;
use crate::layer::compress::LayerEncoder;
use crate::layer::hooks::flip_hook;
use crate::media::Compression;
use crate::progress::Progress;
use crate::spec::Descriptor;

/// Bytes per buffer passed between the stages (a multiple of [`ALIGN`]).
const CHUNK: usize = 1024 * 1024;
/// Alignment of buffer addresses and file offsets, as direct I/O requires.
const ALIGN: usize = 4096;
/// Buffers carrying the uncompressed stream (memory: `INPUT_BUFFERS × CHUNK`).
const INPUT_BUFFERS: usize = 8;
/// Buffers carrying the compressed stream to the writer.
const OUTPUT_BUFFERS: usize = 4;

/// What writing a layer produced: the getters of a layer, nothing else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerInfo {
    /// How the blob is compressed.
    pub compression: Compression,
    /// Digest of the blob (the compressed bytes).
    pub digest: Digest,
    /// Size of the blob.
    pub size: u64,
    /// Digest of the uncompressed tar.
    pub diff_id: Digest,
    /// Size of the uncompressed tar.
    pub uncompressed_size: u64,
}

impl LayerInfo {
    /// The layer as every command's `--json` output reports it.
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "digest": self.digest,
            "size": self.size,
            "diffID": self.diff_id,
            "uncompressedSize": self.uncompressed_size,
            "mediaType": self.compression.media_type(),
        })
    }

    /// The layer's descriptor for a manifest.
    pub fn descriptor(&self) -> Descriptor {
        Descriptor::new(
            self.compression.media_type(),
            self.digest.clone(),
            self.size,
        )
    }
}

/// How to encode a layer.
#[derive(Debug, Clone, Copy)]
pub struct EncodeOptions {
    /// The compression.
    pub compression: Compression,
    /// The level (`None`: the compression's default).
    pub level: Option<i32>,
    /// Worker threads for compression (the bytes never depend on it).
    pub jobs: usize,
}

/// A buffer of up to [`CHUNK`] bytes whose data starts at an [`ALIGN`]ed address.
///
/// Its memory is reserved, never zeroed: only what is written is touched, so a layer of a
/// few kilobytes costs a few pages, not the pool's megabytes (zeroing them was most of
/// the hello-world example's time).
struct Buf {
    mem: Vec<u8>,
    start: usize,
    len: usize,
}

impl Buf {
    fn new() -> Buf {
        let mut mem: Vec<u8> = Vec::with_capacity(CHUNK + ALIGN);
        // `align_offset` may in principle decline (usize::MAX): such a buffer is simply
        // not aligned, and the writer falls back to the page cache when it meets it.
        let start = match mem.as_ptr().align_offset(ALIGN) {
            o if o < ALIGN => o,
            _ => 0,
        };
        mem.resize(start, 0);
        Buf { mem, start, len: 0 }
    }

    fn data(&self) -> &[u8] {
        &self.mem[self.start..self.start + self.len]
    }

    /// Empties the buffer for reuse.
    fn clear(&mut self) {
        self.mem.truncate(self.start);
        self.len = 0;
    }

    /// Appends what fits of `data`; returns how much that was.
    fn push(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(CHUNK - self.len);
        // Within the reserved capacity: the memory never moves, so it stays aligned.
        self.mem.extend_from_slice(&data[..n]);
        self.len += n;
        n
    }
}

/// A fixed set of `n` buffers: take one by receiving, give it back by sending.
fn pool(n: usize) -> (SyncSender<Buf>, Receiver<Buf>) {
    let (tx, rx) = mpsc::sync_channel(n);
    for _ in 0..n {
        // Cannot fail: the receiver is alive and the channel holds `n`.
        let _ = tx.send(Buf::new());
    }
    (tx, rx)
}

fn stopped() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "layer pipeline stopped")
}

/// A `Write` that fills buffers from a pool and sends each full one on; only the last
/// buffer ([`BufSender::finish`]) may be partial, so every other one is exactly [`CHUNK`]
/// bytes at a [`CHUNK`]-aligned stream offset.
struct BufSender {
    free: Receiver<Buf>,
    next: SyncSender<Buf>,
    cur: Option<Buf>,
}

impl BufSender {
    fn new(free: Receiver<Buf>, next: SyncSender<Buf>) -> Self {
        BufSender {
            free,
            next,
            cur: None,
        }
    }

    /// Sends the last, partial buffer.
    fn finish(mut self) -> io::Result<()> {
        match self.cur.take() {
            Some(buf) if buf.len > 0 => self.next.send(buf).map_err(|_| stopped()),
            _ => Ok(()),
        }
    }
}

impl Write for BufSender {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let buf = match &mut self.cur {
            Some(b) => b,
            None => {
                let mut b = self.free.recv().map_err(|_| stopped())?;
                b.clear();
                self.cur.insert(b)
            }
        };
        let n = buf.push(data);
        if buf.len == CHUNK
            && let Some(full) = self.cur.take()
        {
            self.next.send(full).map_err(|_| stopped())?;
        }
        Ok(n)
    }

    /// Does nothing: a partial buffer is sent only by `finish`.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// [`flip_hook`] between an encoder whose output is checked downstream (zstd) and the blob.
struct Flip<W> {
    inner: W,
    at: Option<u64>,
    pos: u64,
}

impl<W: Write> Flip<W> {
    fn new(inner: W, at: Option<u64>) -> Flip<W> {
        Flip { inner, at, pos: 0 }
    }
}

impl<W: Write> Write for Flip<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let end = self.pos + data.len() as u64;
        let n = match self.at {
            Some(at) if (self.pos..end).contains(&at) => {
                let mut copy = data.to_vec();
                copy[(at - self.pos) as usize] ^= 0x01;
                self.inner.write(&copy)?
            }
            _ => self.inner.write(data)?,
        };
        self.pos += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl Flip<BufSender> {
    fn finish(self) -> io::Result<()> {
        self.inner.finish()
    }
}

/// Turns direct I/O off for the rest of the file.
fn stop_direct(file: &File, direct: &mut bool) -> io::Result<()> {
    if *direct {
        let flags = rustix::fs::fcntl_getfl(file)?;
        rustix::fs::fcntl_setfl(file, flags - OFlags::DIRECT)?;
        *direct = false;
    }
    Ok(())
}

/// Writes all of `data`, giving up direct I/O when the kernel refuses it or when what is
/// left is no longer aligned (the last, partial buffer; a short write).
fn write_all(mut file: &File, mut data: &[u8], direct: &mut bool) -> io::Result<()> {
    let aligned =
        |d: &[u8]| d.len().is_multiple_of(ALIGN) && (d.as_ptr() as usize).is_multiple_of(ALIGN);
    while !data.is_empty() {
        if !aligned(data) {
            stop_direct(file, direct)?;
        }
        match file.write(data) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e)
                if *direct && e.raw_os_error() == Some(rustix::io::Errno::INVAL.raw_os_error()) =>
            {
                stop_direct(file, direct)?
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Where the encoded blob goes.
#[derive(Debug)]
pub enum BlobSink {
    /// A file (created by the layout writer), written with direct I/O while `direct`; and,
    /// if given, an earlier blob compared with the output byte for byte as it is written,
    /// so that an unchanged layer is known without reading anything back.
    File {
        /// The file written.
        file: File,
        /// Whether it was opened with `O_DIRECT`.
        direct: bool,
        /// The blob this one may equal.
        baseline: Option<File>,
    },
    /// Nowhere: only the sizes and digests are wanted (`--compare-compression`).
    Count,
}

/// The blob as the sink holds it once the layer is written.
#[derive(Debug)]
pub struct WrittenBlob {
    /// The blob's file (none for [`BlobSink::Count`]).
    pub file: Option<File>,
    /// True if a baseline was given and the blob equals it byte for byte.
    pub same_as_baseline: bool,
}

/// Compares a stream with a file, piece by piece, as the stream is written.
struct Baseline {
    file: File,
    pos: u64,
    same: bool,
    buf: Vec<u8>,
}

impl Baseline {
    fn compare(&mut self, data: &[u8]) {
        if !self.same {
            return;
        }
        self.buf.resize(data.len(), 0);
        let mut got = 0;
        while got < data.len() {
            match self
                .file
                .read_at(&mut self.buf[got..], self.pos + got as u64)
            {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        self.same = got == data.len() && self.buf[..got] == *data;
        self.pos += data.len() as u64;
    }

    /// True if the whole file was seen and was equal.
    fn finish(self) -> bool {
        if !self.same {
            return false;
        }
        let mut probe = [0u8; 1];
        matches!(self.file.read_at(&mut probe, self.pos), Ok(0))
    }
}

/// The writer thread: hashes (if asked) and writes every buffer (comparing it with the
/// baseline, if any), and hands it to `next` (the checking stage, or back to its pool).
/// Returns the size and what the sink holds. Durability is the layout writer's business
/// (one flush for all outputs).
fn write_blob(
    sink: BlobSink,
    bufs: Receiver<Buf>,
    mut next: impl FnMut(Buf),
    hasher: &mut Option<Hasher>,
) -> io::Result<(u64, WrittenBlob)> {
    let mut size = 0u64;
    let (file, mut direct, mut baseline) = match sink {
        BlobSink::File {
            file,
            direct,
            baseline,
        } => (
            Some(file),
            direct,
            baseline.map(|file| Baseline {
                file,
                pos: 0,
                same: true,
                buf: Vec::new(),
            }),
        ),
        BlobSink::Count => (None, false, None),
    };
    for buf in bufs {
        if let Some(h) = hasher.as_mut() {
            h.update(buf.data());
        }
        if let Some(f) = &file {
            write_all(f, buf.data(), &mut direct)?;
        }
        if let Some(b) = &mut baseline {
            b.compare(buf.data());
        }
        size += buf.len as u64;
        next(buf);
    }
    let same_as_baseline = baseline.is_some_and(Baseline::finish);
    Ok((
        size,
        WrittenBlob {
            file,
            same_as_baseline,
        },
    ))
}

/// A `BufRead` over the encoder's output as the writer hands it on; each buffer goes back
/// to its pool once the decoder has consumed it.
struct Received {
    rx: Receiver<Buf>,
    back: SyncSender<Buf>,
    cur: Option<Buf>,
    pos: usize,
}

impl io::Read for Received {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let avail = io::BufRead::fill_buf(self)?;
        let n = avail.len().min(out.len());
        out[..n].copy_from_slice(&avail[..n]);
        io::BufRead::consume(self, n);
        Ok(n)
    }
}

impl io::BufRead for Received {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.cur.as_ref().is_none_or(|b| self.pos == b.len) {
            if let Some(done) = self.cur.take() {
                let _ = self.back.send(done);
            }
            match self.rx.recv() {
                Ok(b) => {
                    self.cur = Some(b);
                    self.pos = 0;
                }
                Err(_) => return Ok(&[]),
            }
        }
        let b = self.cur.as_ref().expect("just filled");
        Ok(&b.data()[self.pos..])
    }

    fn consume(&mut self, n: usize) {
        self.pos += n;
    }
}

/// The checking stage: decodes the encoder's output as it is written and fingerprints what
/// comes out. The build compares that with the tar stream's fingerprint, so that an encoder
/// that produced wrong bytes fails the build instead of publishing a layer that decodes to
/// something else. Returns the fingerprint and size of the decoded stream, or why it could
/// not be decoded; the whole stream is always drained.
fn check_encoded(
    compression: Compression,
    mut input: Received,
) -> std::result::Result<(u128, u64), String> {
    let mut fingerprint = Fingerprint::default();
    // Decoded in pieces of up to CHUNK bytes (io::copy's 8 KiB meant a decoder call, and a
    // hash update, per 8 KiB).
    let decoded = crate::input::decompress::decoder(&mut input, compression).and_then(|mut d| {
        let mut out = vec![0u8; CHUNK];
        loop {
            match d.read(&mut out) {
                Ok(0) => return Ok(()),
                Ok(n) => fingerprint.update(&out[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    });
    // Whatever follows the compressed stream is not part of the layer's content.
    let mut trailing = 0u64;
    loop {
        let n = match io::BufRead::fill_buf(&mut input) {
            Ok(b) => b.len(),
            Err(_) => 0,
        };
        if n == 0 {
            break;
        }
        trailing += n as u64;
        io::BufRead::consume(&mut input, n);
    }
    decoded.map_err(|e| format!("it does not decode: {e}"))?;
    if trailing > 0 {
        return Err(format!(
            "{trailing} bytes follow the end of the compressed stream"
        ));
    }
    Ok(fingerprint.finish())
}

/// What the encoder check compares: the XXH3-128 hash and the length of a stream. The
/// check is against encoder bugs, not an adversary (the layer's identity is its SHA-256
/// digests, computed separately), and a 128-bit hash misses an accidental difference with
/// probability 2^-128, as SHA-256 would; it costs a tenth of a second per GB where a
/// second SHA-256 of the decoded stream cost 7 % of a zstd build's CPU.
#[derive(Default)]
struct Fingerprint {
    hash: xxhash_rust::xxh3::Xxh3Default,
    len: u64,
}

impl Fingerprint {
    fn update(&mut self, data: &[u8]) {
        self.hash.update(data);
        self.len += data.len() as u64;
    }

    fn finish(&self) -> (u128, u64) {
        (self.hash.digest128(), self.len)
    }
}

fn joined<T>(r: std::thread::Result<T>, what: &str) -> Result<T> {
    r.map_err(|_| Error::internal(format!("the {what} thread panicked")))
}

/// Streams `entries` as a tar, encodes it and writes the blob into `sink`. `progress`, if
/// given, gets the estimated total and counts the uncompressed bytes as they pass.
pub fn write_layer(
    entries: &EntryList,
    opts: EncodeOptions,
    sink: BlobSink,
    progress: Option<&Progress>,
) -> Result<(LayerInfo, WrittenBlob)> {
    if let Some(p) = progress {
        p.set_total(entries.content_bytes());
    }
    let io_err = |e: io::Error| Error::io_on("writing", "the layer blob", e);
    let compressed = opts.compression != Compression::None;

    let (in_free_tx, in_free_rx) = pool(INPUT_BUFFERS);
    let (out_free_tx, out_free_rx) = pool(if compressed { OUTPUT_BUFFERS } else { 0 });
    let (tar_tx, tar_rx) = mpsc::sync_channel::<Buf>(INPUT_BUFFERS);
    let (blob_tx, blob_rx) = mpsc::sync_channel::<Buf>(INPUT_BUFFERS);

    let (diff, written, produced, checked) = std::thread::scope(|s| {
        let producer = s.spawn(move || -> Result<()> {
            let w = entries.write_tar(BufSender::new(in_free_rx, tar_tx))?;
            w.finish()
                .map_err(|e| Error::io_on("writing", "the layer's tar stream", e))
        });
        // Uncompressed buffers go to the writer and back to the tar thread's pool;
        // compressed ones circulate between the encoder's output and the writer.
        let back = if compressed {
            out_free_tx
        } else {
            in_free_tx.clone()
        };
        let hasher = compressed.then(Hasher::sha256);
        // Compressed output goes on from the writer to the checking stage, which returns
        // each buffer to the pool once it has decoded it.
        let (check_tx, check_rx) = mpsc::sync_channel::<Buf>(OUTPUT_BUFFERS);
        // zstd output is decoded downstream; gzip's pieces are checked where they are made.
        let downstream = opts.compression == Compression::Zstd;
        let checker = downstream.then(|| {
            let input = Received {
                rx: check_rx,
                back: back.clone(),
                cur: None,
                pos: 0,
            };
            let compression = opts.compression;
            s.spawn(move || check_encoded(compression, input))
        });
        let writer = s.spawn(move || {
            let mut hasher = hasher;
            let r = if downstream {
                write_blob(
                    sink,
                    blob_rx,
                    |buf| {
                        let _ = check_tx.send(buf);
                    },
                    &mut hasher,
                )
            } else {
                write_blob(
                    sink,
                    blob_rx,
                    |buf| {
                        let _ = back.send(buf);
                    },
                    &mut hasher,
                )
            };
            r.map(|(size, w)| (hasher.map(Hasher::finish), size, w))
        });

        let consume = || -> io::Result<(Hasher, Option<Fingerprint>)> {
            let mut diff = Hasher::sha256();
            // What the downstream check's result must equal.
            let mut fingerprint = downstream.then(Fingerprint::default);
            let mut encoder = if compressed {
                // gzip checks each piece as it makes it; zstd is checked downstream.
                let flip = (opts.compression == Compression::Zstd)
                    .then(flip_hook)
                    .flatten();
                let sink = Flip::new(BufSender::new(out_free_rx, blob_tx.clone()), flip);
                Some(LayerEncoder::new(
                    sink,
                    opts.compression,
                    opts.level,
                    opts.jobs,
                )?)
            } else {
                None
            };
            for buf in &tar_rx {
                diff.update(buf.data());
                if let Some(f) = &mut fingerprint {
                    f.update(buf.data());
                }
                if let Some(p) = progress {
                    p.add(buf.len as u64);
                }
                match &mut encoder {
                    Some(e) => {
                        e.write_all(buf.data())?;
                        let _ = in_free_tx.send(buf);
                    }
                    None => blob_tx.send(buf).map_err(|_| stopped())?,
                }
            }
            if let Some(e) = encoder {
                e.finish()?.finish()?;
            }
            Ok((diff, fingerprint))
        };
        let diff = consume();
        // Closing our ends lets the other threads finish, or stop if we failed.
        drop((tar_rx, blob_tx, in_free_tx));
        let written = joined(writer.join(), "blob writer");
        let produced = joined(producer.join(), "tar");
        let checked = checker.map(|c| joined(c.join(), "checking"));
        (diff, written, produced, checked)
    });
    // Report the cause, not its echoes: a failed writer stops the calling thread, which
    // stops the tar thread; a tar thread that fails on its own stops nobody else.
    let (digest, size, written) = written?.map_err(io_err)?;
    let diff = diff.map_err(|e| {
        let msg = e.to_string();
        if msg.starts_with(gzip::CHECK_FAILED) {
            Error::CheckFailed(format!(
                "{msg}; this is a bug in the encoder, and nothing was written"
            ))
        } else if msg.starts_with(gzip::PANICKED) {
            Error::internal(format!("{msg}; nothing was written"))
        } else {
            io_err(e)
        }
    })?;
    let (diff, fingerprint) = diff;
    produced??;
    let uncompressed_size = diff.len();
    let diff_id = diff.finish();
    let digest = digest.unwrap_or_else(|| diff_id.clone());
    if let Some(checked) = checked {
        let problem = match checked? {
            Ok(got) if fingerprint.as_ref().map(Fingerprint::finish) == Some(got) => None,
            Ok((h, n)) => Some(format!(
                "it decodes to {n} bytes with XXH3-128 {h:032x}, not to the tar stream \
                 ({uncompressed_size} bytes, {:032x})",
                fingerprint.as_ref().map_or(0, |f| f.finish().0)
            )),
            Err(why) => Some(why),
        };
        if let Some(why) = problem {
            return Err(Error::CheckFailed(format!(
                "the {} encoder's output was checked as it was written and is wrong: {why}; \
                 this is a bug in the encoder, and nothing was written",
                opts.compression
            )));
        }
    }
    Ok((
        LayerInfo {
            compression: opts.compression,
            digest,
            size,
            diff_id,
            uncompressed_size,
        },
        written,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::{MtimeMode, Tree, TreeOptions};
    use crate::timestamp::Timestamp;
    use std::fs;
    use std::io::Read;

    /// Opens `path` for writing, with direct I/O if the filesystem accepts it.
    fn create_blob_file(path: &std::path::Path) -> io::Result<(File, bool)> {
        use std::os::unix::fs::OpenOptionsExt;
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        match opts
            .clone()
            .custom_flags(OFlags::DIRECT.bits() as i32)
            .open(path)
        {
            Ok(f) => Ok((f, true)),
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::INVAL.raw_os_error()) => {
                Ok((opts.open(path)?, false))
            }
            Err(e) => Err(e),
        }
    }

    fn data(n: usize, seed: u64) -> Vec<u8> {
        let mut x = seed;
        (0..n)
            .map(|i| {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                if (i / 5000) % 2 == 0 {
                    b"layer text "[i % 11]
                } else {
                    (x >> 56) as u8
                }
            })
            .collect()
    }

    /// Sends `bytes` through a `BufSender` in writes of `piece` bytes to the writer thread,
    /// comparing with `baseline`; returns the file's bytes, digest, size and sameness.
    fn through_writer(
        bytes: &[u8],
        piece: usize,
        baseline: Option<&[u8]>,
    ) -> (Vec<u8>, Digest, u64, bool) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blob");
        let (file, direct) = create_blob_file(&path).unwrap();
        let baseline = baseline.map(|b| {
            let p = dir.path().join("baseline");
            fs::write(&p, b).unwrap();
            File::open(&p).unwrap()
        });
        let (free_tx, free_rx) = pool(3);
        let (tx, rx) = mpsc::sync_channel(3);
        let sink = BlobSink::File {
            file,
            direct,
            baseline,
        };
        let writer = std::thread::spawn(move || {
            let mut hasher = Some(Hasher::sha256());
            let (size, written) = write_blob(
                sink,
                rx,
                |b| {
                    let _ = free_tx.send(b);
                },
                &mut hasher,
            )?;
            io::Result::Ok((hasher.map(Hasher::finish), size, written))
        });
        let mut sender = BufSender::new(free_rx, tx);
        for p in bytes.chunks(piece) {
            sender.write_all(p).unwrap();
            sender.flush().unwrap();
        }
        sender.finish().unwrap();
        let (digest, size, written) = writer.join().unwrap().unwrap();
        (
            fs::read(&path).unwrap(),
            digest.unwrap(),
            size,
            written.same_as_baseline,
        )
    }

    #[test]
    fn the_writer_knows_whether_it_wrote_the_baseline() {
        let bytes = data(CHUNK + 5000, 3);
        assert!(through_writer(&bytes, 4096, Some(&bytes)).3);
        let mut other = bytes.clone();
        other[CHUNK + 10] ^= 1;
        assert!(!through_writer(&bytes, 4096, Some(&other)).3);
        assert!(!through_writer(&bytes, 4096, Some(&bytes[..CHUNK])).3);
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(!through_writer(&bytes, 4096, Some(&longer)).3);
        assert!(!through_writer(&bytes, 4096, None).3);
    }

    #[test]
    fn writer_stores_any_length_and_write_pattern_exactly() {
        for n in [0, 1, ALIGN - 1, ALIGN, CHUNK, CHUNK + 1, 3 * CHUNK - 5] {
            let bytes = data(n, n as u64);
            for piece in [1000, 4096, CHUNK + 7] {
                let (stored, digest, size, _) = through_writer(&bytes, piece, None);
                assert!(stored == bytes, "n {n} piece {piece}");
                assert_eq!(digest, Digest::sha256_of(&bytes));
                assert_eq!(size, n as u64);
            }
        }
    }

    #[test]
    fn misaligned_data_falls_back_to_the_page_cache() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blob");
        let (file, mut direct) = create_blob_file(&path).unwrap();
        let bytes = data(3 * ALIGN + 1, 7);
        write_all(&file, &bytes[1..], &mut direct).unwrap();
        assert!(!direct);
        assert_eq!(fs::read(&path).unwrap(), &bytes[1..]);
    }

    fn layer(sizes: &[usize]) -> EntryList {
        let mut t = Tree::new(TreeOptions {
            created: "@1700000000".parse::<Timestamp>().unwrap(),
            mtime: MtimeMode::Clamp,
            owners: Default::default(),
            xattrs: false,
            devices: false,
        });
        for (i, &n) in sizes.iter().enumerate() {
            t.add_bytes(&format!("/d/f{i}"), data(n, i as u64), 0o644)
                .unwrap();
        }
        t.finish().unwrap()
    }

    #[test]
    fn blob_is_named_by_its_digest_and_decodes_to_the_diff_id() {
        // Two headers, the content and the end marker: exactly one buffer.
        let exact = layer(&[CHUNK - 2 * 512 - 1024]);
        let bigger = layer(&[10, 3 * CHUNK + 100, 700_000, 0]);
        for l in [&exact, &bigger] {
            let tar = l.write_tar(Vec::new()).unwrap();
            for c in Compression::ALL {
                let dir = tempfile::tempdir().unwrap();
                let path = dir.path().join("blob");
                let (file, direct) = create_blob_file(&path).unwrap();
                let sink = BlobSink::File {
                    file,
                    direct,
                    baseline: None,
                };
                let progress = Progress::new();
                let opts = EncodeOptions {
                    compression: c,
                    level: None,
                    jobs: 2,
                };
                let (info, _) = write_layer(l, opts, sink, Some(&progress)).unwrap();
                let blob = fs::read(&path).unwrap();
                assert_eq!(Digest::sha256_of(&blob), info.digest, "{c}");
                assert_eq!(blob.len() as u64, info.size);
                let mut back = Vec::new();
                crate::input::decompress::decompressing_reader(&blob[..])
                    .unwrap()
                    .read_to_end(&mut back)
                    .unwrap();
                assert!(back == tar, "{c}: the blob does not decode to the tar");
                assert_eq!(info.diff_id, Digest::sha256_of(&tar));
                assert_eq!(info.uncompressed_size, tar.len() as u64);
                assert_eq!(progress.done(), tar.len() as u64);
                assert_eq!(progress.total(), l.content_bytes());
                let (counted, _) = write_layer(l, opts, BlobSink::Count, None).unwrap();
                assert_eq!(counted, info, "{c}: counting differs from writing");
            }
        }
        assert_eq!(exact.write_tar(Vec::new()).unwrap().len(), CHUNK);
    }
}
