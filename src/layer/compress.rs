//! Layer encoders behind one interface (their decoders are [`crate::input::decompress`]'s).
//!
//! zstd runs in libzstd's multithreaded mode with at least one worker, always: its output
//! is identical for 1, 2, 4, ... workers, but differs from the single-threaded mode
//! (workers = 0), so that mode is never used. The encoder is never flushed mid-stream
//! (a flush changes the bytes), a content checksum is included (as the `zstd` command
//! does), and input reaches it in fixed-size chunks whatever the writes that feed us.

use std::io::{self, Write};

use crate::layer::gzip::GzipEncoder;
use crate::media::Compression;

/// The version of the `libdeflate-sys` crate whose bundled libdeflate source the gzip
/// encoder is compiled from, pinned exactly in Cargo.toml (a test checks it against
/// Cargo.lock): libdeflate has no version function to ask.
pub const LIBDEFLATE_SYS_VERSION: &str = "1.26.1";

/// The encoders that decide a layer's bytes besides the settings, with their versions:
/// libdeflate (by its crate, [`LIBDEFLATE_SYS_VERSION`]) and libzstd (as linked, asked at
/// run time). A record of a build (`project::cache`) holds them: another encoder version
/// may give other bytes.
pub fn encoder_versions() -> [(&'static str, String); 2] {
    [
        ("libdeflate-sys", LIBDEFLATE_SYS_VERSION.to_string()),
        ("libzstd", zstd::zstd_safe::version_string().to_string()),
    ]
}

/// Size of the fixed chunks handed to the zstd encoder.
const ZSTD_CHUNK: usize = 1024 * 1024;
/// The size of one zstd job (the input one worker compresses at a time) from level
/// [`ZSTD_FIXED_JOB_FROM`] up. libzstd's default is four windows: 8 MiB at levels 3–8, the
/// same as this (so their bytes are unchanged), but 16 MiB at 9–16 and 32 MiB at 17–19,
/// and it buffers (workers + 3) jobs of input besides one of output per worker: at level 19
/// one worker alone took 258 MiB. Fixed, the job size keeps the bytes independent of the
/// number of workers, as before.
pub const ZSTD_JOB: usize = 8 << 20;
/// The first level whose job size is [`ZSTD_JOB`] (levels 1 and 2 keep their smaller default
/// jobs, 2 and 4 MiB).
pub const ZSTD_FIXED_JOB_FROM: i32 = 3;
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

/// The peak memory the encoders of one run, with their layer pipelines, may take together:
/// with the process's own ~16 MiB, a run stays under 256 MiB at any level, size and `-j`.
/// [`workers_within`] fits an encoder into its share; `ocipack build` divides this among
/// the architectures it builds at once.
pub const ENCODER_BUDGET: usize = 224 << 20;

/// What one layer's pipeline holds besides its encoder (tar and blob buffers), at most.
pub const PIPELINE_MEMORY: usize = 8 << 20;

/// The peak memory of one layer's encoder at `level` (the compression's default when
/// `None`) with `workers` workers, as measured here with `/usr/bin/time` (maximum resident
/// size of `ocipack image`, one and more workers, on a 46 MB and a 670 MB tree, plus
/// about 15 %): a part that does not depend on the workers (zstd's input ring of three
/// jobs, the downstream check's decoder) and a part per worker (its job's input and
/// output, 16 MiB for zstd's 8 MiB jobs, and its compression tables, which grow with the
/// level: 88 MiB at zstd 19).
pub fn encoder_memory(compression: Compression, level: Option<i32>, workers: usize) -> usize {
    const MIB: usize = 1 << 20;
    let level = level.or(compression.default_level()).unwrap_or(0);
    let (fixed, per_worker) = match compression {
        Compression::None => (0, 0),
        // Two 1 MiB blocks in flight, their output, the check's buffers, the compressor
        // (levels 10 to 12 parse near-optimally, with larger tables).
        Compression::Gzip => (4, if level >= 10 { 18 } else { 10 }),
        // Levels 1 and 2 keep libzstd's smaller jobs (2 and 4 MiB).
        Compression::Zstd => match level {
            ..=1 => (12, 8),
            2 => (20, 12),
            3 => (40, 18),
            4..=8 => (40, 22),
            9 => (40, 26),
            10 | 11 => (40, 38),
            12 => (40, 60),
            13 | 16 => (40, 50),
            14 | 17 | 18 => (40, 66),
            15 => (40, 82),
            _ => (40, 104),
        },
    };
    (fixed + per_worker * workers.max(1)) * MIB
}

/// The most workers, at least one and at most `jobs` and the compression's maximum, with
/// which an encoder at `level` fits in `budget` bytes ([`encoder_memory`]). The bytes it
/// writes never depend on the number.
pub fn workers_within(
    compression: Compression,
    level: Option<i32>,
    jobs: usize,
    budget: usize,
) -> usize {
    let most = match compression {
        Compression::None => 1,
        Compression::Gzip => GZIP_MAX_WORKERS,
        Compression::Zstd => ZSTD_MAX_WORKERS,
    };
    let mut w = jobs.clamp(1, most);
    while w > 1 && encoder_memory(compression, level, w) > budget {
        w -= 1;
    }
    w
}

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
    /// threads (at most [`GZIP_MAX_WORKERS`] or [`ZSTD_MAX_WORKERS`], and no more than fit
    /// in [`ENCODER_BUDGET`]).
    pub fn new(
        out: W,
        compression: Compression,
        level: Option<i32>,
        jobs: usize,
    ) -> io::Result<Self> {
        // At most the compression's maximum, and no more than fit in memory.
        let jobs = workers_within(compression, level, jobs, ENCODER_BUDGET - PIPELINE_MEMORY);
        let level = level.or(compression.default_level()).unwrap_or(0);
        Ok(match compression {
            Compression::None => LayerEncoder::None(out),
            Compression::Gzip => LayerEncoder::Gzip(GzipEncoder::new(out, level as u32, jobs)?),
            Compression::Zstd => {
                let mut e = zstd::stream::write::Encoder::new(out, level)?;
                e.multithread(jobs as u32)?;
                if level >= ZSTD_FIXED_JOB_FROM {
                    e.set_parameter(zstd::stream::raw::CParameter::JobSize(ZSTD_JOB as u32))?;
                }
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
            // A whole chunk with nothing pending (what the layer pipeline's buffers are)
            // goes straight in: the same chunks, one copy fewer.
            LayerEncoder::Zstd(z, pending) if pending.is_empty() && buf.len() >= ZSTD_CHUNK => {
                z.write_all(&buf[..ZSTD_CHUNK])?;
                Ok(ZSTD_CHUNK)
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::decompress::{decompressing_reader, sniff};
    use std::io::Read;

    /// The libdeflate version a build record names is the one Cargo.lock compiles.
    #[test]
    fn the_libdeflate_version_is_the_locked_one() {
        let lock =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.lock")).unwrap();
        let want = format!("name = \"libdeflate-sys\"\nversion = \"{LIBDEFLATE_SYS_VERSION}\"\n");
        assert!(lock.contains(&want), "Cargo.lock does not lock {want}");
        let [_, (name, zstd)] = encoder_versions();
        assert_eq!(name, "libzstd");
        assert!(zstd.starts_with("1."), "{zstd}");
    }

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

    /// The memory model's promise: one encoder worker with its pipeline fits the budget at
    /// every level, and no more workers are given than fit (the model's figures are the
    /// measurements in `encoder_memory`'s documentation).
    #[test]
    fn encoders_fit_their_budget_at_every_level_and_job_count() {
        for c in Compression::ALL {
            let levels: Vec<Option<i32>> = match c.level_range() {
                Some((lo, hi)) => (lo..=hi).map(Some).chain([None]).collect(),
                None => vec![None],
            };
            for l in levels {
                assert!(
                    PIPELINE_MEMORY + encoder_memory(c, l, 1) <= ENCODER_BUDGET,
                    "{c} level {l:?}: one worker does not fit"
                );
                for jobs in [0, 1, 2, 3, 8, 64, 1000] {
                    for budget in [16 << 20, 64 << 20, ENCODER_BUDGET - PIPELINE_MEMORY] {
                        let w = workers_within(c, l, jobs, budget);
                        assert!((1..=jobs.max(1)).contains(&w), "{c} {l:?} -j{jobs}: {w}");
                        assert!(
                            w == 1 || encoder_memory(c, l, w) <= budget,
                            "{c} {l:?} -j{jobs}: {w} workers exceed {budget}"
                        );
                    }
                }
            }
        }
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
