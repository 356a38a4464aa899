//! Encoding a layer: tar stream → diff_id hash → compressor → digest hash → blob file,
//! in one pass over the inputs.
//!
//! The tar is produced on its own thread and handed over in fixed-size chunks; the calling
//! thread hashes the uncompressed stream (the diff_id) and feeds the compressor, whose
//! output is hashed (the digest) and written to a temporary file that is renamed to its
//! digest. Nothing is buffered whole and nothing is decompressed to learn a diff_id.
//! For an uncompressed layer the digest *is* the diff_id, so the stream is hashed once.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;

use crate::compress::LayerEncoder;
use crate::digest::{Digest, Hasher, HashingWriter};
use crate::error::{Error, Result};
use crate::media::Compression;
use crate::spec::Descriptor;
use crate::tree::Layer;

/// Bytes per chunk handed from the tar thread to the hashing/compressing thread.
const CHUNK: usize = 1024 * 1024;
/// Chunks allowed in flight between the two threads (bounds memory).
const CHUNKS_IN_FLIGHT: usize = 8;

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

struct ChunkSender {
    tx: mpsc::SyncSender<Vec<u8>>,
    buf: Vec<u8>,
}

impl Write for ChunkSender {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == CHUNK {
            self.flush()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            let full = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
            self.tx
                .send(full)
                .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "layer encoder stopped"))?;
        }
        Ok(())
    }
}

/// Streams `layer` as a tar, encodes it and stores it as a blob in `blob_dir`
/// (`blobs/sha256` of a layout). `progress`, if given, counts uncompressed bytes.
pub fn write_layer(
    layer: &Layer,
    opts: EncodeOptions,
    blob_dir: &Path,
    progress: Option<&AtomicU64>,
) -> Result<LayerInfo> {
    let tmp = blob_dir.join(".layer.partial");
    let file = File::create(&tmp).map_err(|e| Error::io("creating", &tmp, e))?;
    let io_err = |e: io::Error| Error::io("writing layer blob", &tmp, e);
    let sink = HashingWriter::new(BufWriter::with_capacity(1024 * 1024, file));
    let mut encoder =
        LayerEncoder::new(sink, opts.compression, opts.level, opts.jobs).map_err(io_err)?;
    let mut diff = Hasher::sha256();
    let hash_uncompressed = opts.compression != Compression::None;

    let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(CHUNKS_IN_FLIGHT);
    let produced = std::thread::scope(|s| -> Result<()> {
        let producer = s.spawn(move || -> Result<()> {
            let mut w = ChunkSender {
                tx,
                buf: Vec::with_capacity(CHUNK),
            };
            let w = layer.write_tar(&mut w)?;
            w.flush()
                .map_err(|e| Error::io("writing layer", "tar stream", e))
        });
        let mut consume = || -> io::Result<()> {
            for chunk in &rx {
                if hash_uncompressed {
                    diff.update(&chunk);
                }
                encoder.write_all(&chunk)?;
                if let Some(p) = progress {
                    p.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                }
            }
            Ok(())
        };
        let consumed = consume();
        // Dropping the receiver unblocks a producer that is still sending.
        drop(rx);
        let produced = producer
            .join()
            .map_err(|_| Error::usage("internal: the tar thread panicked"))?;
        produced?;
        consumed.map_err(io_err)
    });
    produced?;

    let sink = encoder.finish().map_err(io_err)?;
    let (buf, digest, size) = sink.finish();
    let file = buf.into_inner().map_err(|e| io_err(e.into_error()))?;
    file.sync_all().map_err(io_err)?;
    drop(file);
    let (diff_id, uncompressed_size) = if hash_uncompressed {
        let n = diff.len();
        (diff.finish(), n)
    } else {
        (digest.clone(), size)
    };
    let dest = blob_dir.join(digest.hex());
    fs::rename(&tmp, &dest).map_err(|e| Error::io("renaming", &dest, e))?;
    Ok(LayerInfo {
        compression: opts.compression,
        digest,
        size,
        diff_id,
        uncompressed_size,
    })
}
