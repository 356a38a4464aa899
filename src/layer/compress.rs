//! Layer encoders behind one interface, and transparent decompression for reading.
//!
//! zstd runs in libzstd's multithreaded mode with at least one worker, always: its output
//! is identical for 1, 2, 4, ... workers, but differs from the single-threaded mode
//! (workers = 0), so that mode is never used. The encoder is never flushed mid-stream
//! (a flush changes the bytes), a content checksum is included (as the `zstd` command
//! does), and input reaches it in fixed-size chunks whatever the writes that feed us.

use std::io::{self, BufRead, Read, Write};

use crate::layer::gzip::GzipEncoder;
use crate::media::Compression;

/// Size of the fixed chunks handed to the zstd encoder.
const ZSTD_CHUNK: usize = 1024 * 1024;
/// Most zstd workers used, whatever `jobs` says: each costs about 15 MiB (at level 3, an
/// 8 MiB job, its output and a context), and peak memory must stay under 256 MiB.
/// 8 workers compress about as fast as one thread computes the diff_id's SHA-256, which
/// bounds the pipeline anyway. The output does not depend on the number of workers.
pub const ZSTD_MAX_WORKERS: usize = 8;
/// Most gzip workers used: each costs about 7 MiB of peak memory (two 1 MiB blocks in
/// flight with their output, the check's buffers, libdeflate's compressor), and 16 of them
/// (about 110 MB/s each, measured at level 6; the default level, 5, is faster) already
/// outrun the SHA-256 of the tar stream.
pub const GZIP_MAX_WORKERS: usize = 16;

/// A compressor for one layer, writing into `W`.
pub enum LayerEncoder<W: Write> {
    /// No compression: bytes pass through.
    None(W),
    /// ocipack's block gzip.
    Gzip(GzipEncoder<W>),
    /// Multithreaded zstd, fed in fixed chunks.
    Zstd(Box<zstd::stream::write::Encoder<'static, W>>, Vec<u8>),
}

impl<W: Write> LayerEncoder<W> {
    /// An encoder for `compression` at `level` (the default when `None`), using `jobs`
    /// threads (at most [`GZIP_MAX_WORKERS`] or [`ZSTD_MAX_WORKERS`]).
    pub fn new(
        out: W,
        compression: Compression,
        level: Option<i32>,
        jobs: usize,
    ) -> io::Result<Self> {
        let jobs = jobs.max(1);
        let level = level.or(compression.default_level()).unwrap_or(0);
        Ok(match compression {
            Compression::None => LayerEncoder::None(out),
            Compression::Gzip => LayerEncoder::Gzip(GzipEncoder::new(
                out,
                level as u32,
                jobs.min(GZIP_MAX_WORKERS),
            )?),
            Compression::Zstd => {
                let mut e = zstd::stream::write::Encoder::new(out, level)?;
                e.multithread(jobs.min(ZSTD_MAX_WORKERS) as u32)?;
                e.include_checksum(true)?;
                LayerEncoder::Zstd(Box::new(e), Vec::with_capacity(ZSTD_CHUNK))
            }
        })
    }

    /// Ends the stream and returns the inner writer.
    pub fn finish(self) -> io::Result<W> {
        match self {
            LayerEncoder::None(w) => Ok(w),
            LayerEncoder::Gzip(g) => g.finish(),
            LayerEncoder::Zstd(mut z, pending) => {
                if !pending.is_empty() {
                    z.write_all(&pending)?;
                }
                z.finish()
            }
        }
    }
}

impl<W: Write> Write for LayerEncoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            LayerEncoder::None(w) => w.write(buf),
            LayerEncoder::Gzip(g) => g.write(buf),
            LayerEncoder::Zstd(z, pending) => {
                let n = buf.len().min(ZSTD_CHUNK - pending.len());
                pending.extend_from_slice(&buf[..n]);
                if pending.len() == ZSTD_CHUNK {
                    z.write_all(pending)?;
                    pending.clear();
                }
                Ok(n)
            }
        }
    }

    /// Never flushes an encoder mid-stream: that would change the bytes.
    fn flush(&mut self) -> io::Result<()> {
        match self {
            LayerEncoder::None(w) => w.flush(),
            _ => Ok(()),
        }
    }
}

/// Which compression a stream uses, judged from its first bytes.
pub fn sniff(head: &[u8]) -> Compression {
    if head.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else {
        Compression::None
    }
}

/// Wraps `r` in the decoder its first bytes call for (gzip, zstd or none).
pub fn decompressing_reader<'a, R: BufRead + 'a>(mut r: R) -> io::Result<Box<dyn Read + 'a>> {
    let kind = sniff(r.fill_buf()?);
    decoder(r, kind)
}

/// Wraps `r` in the decoder for `compression`. gzip members are read to the end of the
/// stream (concatenated members, as `gzip -d` does).
pub fn decoder<'a, R: BufRead + 'a>(
    r: R,
    compression: Compression,
) -> io::Result<Box<dyn Read + 'a>> {
    Ok(match compression {
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(r)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(r)?),
        Compression::None => Box::new(r),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(n: usize) -> Vec<u8> {
        let mut x: u64 = 99;
        (0..n)
            .map(|i| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                if i % 3 == 0 {
                    (x >> 33) as u8
                } else {
                    b'a' + (i % 13) as u8
                }
            })
            .collect()
    }

    fn encode(c: Compression, data: &[u8], jobs: usize, chunk: usize) -> Vec<u8> {
        let mut e = LayerEncoder::new(Vec::new(), c, None, jobs).unwrap();
        for part in data.chunks(chunk) {
            e.write_all(part).unwrap();
            e.flush().unwrap();
        }
        e.finish().unwrap()
    }

    #[test]
    fn every_compression_is_independent_of_threads_and_writes() {
        let data = sample(5 * 1024 * 1024 + 17);
        for c in Compression::ALL {
            let reference = encode(c, &data, 1, data.len());
            for (jobs, chunk) in [(1, 999), (2, 1 << 20), (3, 4096), (16, 123_457)] {
                assert!(
                    encode(c, &data, jobs, chunk) == reference,
                    "{c} jobs {jobs} chunk {chunk}"
                );
            }
            let mut back = Vec::new();
            decompressing_reader(&reference[..])
                .unwrap()
                .read_to_end(&mut back)
                .unwrap();
            assert!(back == data, "{c} round trip");
            assert_eq!(sniff(&reference), c);
        }
    }
}
