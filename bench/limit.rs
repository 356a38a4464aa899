//! The compressor's own limit on this machine, for `bench/run.sh`: how fast the pinned
//! encoders ocipack links can compress a tar stream when they do nothing else. The file is
//! read into memory once; then it is compressed memory to memory, with `THREADS` threads,
//! exactly as ocipack's encoders cut it (gzip: libdeflate at the level on independent
//! 1 MiB blocks; zstd: libzstd's multithreaded mode with `THREADS` workers and 8 MiB jobs,
//! with a content checksum), and the output is counted, not kept. No hashing, no check, no
//! splicing, no file I/O: it is the ceiling that ocipack's `image` is compared with.
//!
//! `sha256` instead hashes the file once, on one thread (a stream's SHA-256 cannot be
//! split): the diff_id every layer needs, the CPU ceiling of an uncompressed layer.
//!
//! Usage: `cargo run --release --example bench-limit -- gzip|zstd|sha256 FILE [THREADS]
//! [LEVEL]` (default: every CPU, the compression's default level). Prints one line:
//! `SECONDS CPU_SECONDS OUTPUT_BYTES` (wall time and CPU time of the work alone).

use std::io::{self, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use libdeflate_sys::{
    libdeflate_alloc_compressor, libdeflate_deflate_compress, libdeflate_deflate_compress_bound,
    libdeflate_free_compressor,
};

/// ocipack's gzip block size (`ocipack::layer::gzip::BLOCK_SIZE`).
const GZIP_BLOCK: usize = ocipack::layer::gzip::BLOCK_SIZE;

/// CPU seconds this process has used so far (all threads).
fn cpu_seconds() -> f64 {
    // SAFETY: `getrusage` fills the zeroed struct it is given.
    let u = unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut u);
        u
    };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(u.ru_utime) + t(u.ru_stime)
}

/// libdeflate at `level` on each [`GZIP_BLOCK`] of `data`, `threads` at a time (blocks are
/// handed out in order from a shared counter). Returns the compressed bytes.
fn gzip(data: &[u8], threads: usize, level: i32) -> u64 {
    let blocks: Vec<&[u8]> = data.chunks(GZIP_BLOCK).collect();
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    // SAFETY: a plain allocation, checked, freed below.
                    let c = unsafe { libdeflate_alloc_compressor(level) };
                    assert!(!c.is_null(), "libdeflate: no compressor at level {level}");
                    let mut out: Vec<u8> = Vec::new();
                    let mut total = 0u64;
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(block) = blocks.get(i) else { break };
                        // SAFETY: `c` is live; `block` is readable and `out` has `bound`
                        // bytes of spare capacity, which libdeflate guarantees is enough.
                        let n = unsafe {
                            let bound = libdeflate_deflate_compress_bound(c, block.len());
                            out.clear();
                            out.reserve(bound);
                            libdeflate_deflate_compress(
                                c,
                                block.as_ptr().cast(),
                                block.len(),
                                out.as_mut_ptr().cast(),
                                bound,
                            )
                        };
                        assert!(n > 0, "libdeflate: output larger than its bound");
                        total += n as u64;
                    }
                    // SAFETY: allocated above, freed once.
                    unsafe { libdeflate_free_compressor(c) };
                    total
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).sum()
    })
}

/// Counts what is written to it.
struct Count(u64);

impl Write for Count {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.0 += b.len() as u64;
        Ok(b.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// libzstd's multithreaded mode at `level` with `threads` workers, as ocipack configures it
/// (`ocipack::layer::compress::LayerEncoder`), fed the whole input. Returns the compressed
/// bytes.
fn zstd(data: &[u8], threads: usize, level: i32) -> u64 {
    use ocipack::layer::compress::{ZSTD_FIXED_JOB_FROM, ZSTD_JOB};
    let mut e = zstd::stream::write::Encoder::new(Count(0), level).unwrap();
    e.multithread(threads as u32).unwrap();
    if level >= ZSTD_FIXED_JOB_FROM {
        e.set_parameter(zstd::stream::raw::CParameter::JobSize(ZSTD_JOB as u32))
            .unwrap();
    }
    e.include_checksum(true).unwrap();
    e.write_all(data).unwrap();
    e.finish().unwrap().0
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = || -> ! {
        eprintln!("usage: bench-limit gzip|zstd|sha256 FILE [THREADS] [LEVEL]");
        std::process::exit(2)
    };
    let (mode, file) = match (args.first(), args.get(1)) {
        (Some(m), Some(f)) => (m.as_str(), f),
        _ => usage(),
    };
    let threads = args.get(2).map_or_else(
        || std::thread::available_parallelism().map_or(1, |n| n.get()),
        |t| t.parse().unwrap_or_else(|_| usage()),
    );
    let level = args.get(3).map(|l| l.parse().unwrap_or_else(|_| usage()));
    let data = std::fs::read(file).unwrap_or_else(|e| {
        eprintln!("bench-limit: {file}: {e}");
        std::process::exit(1)
    });
    let (cpu, start) = (cpu_seconds(), Instant::now());
    let size = match mode {
        "gzip" => gzip(&data, threads, level.unwrap_or(5)),
        "zstd" => zstd(&data, threads, level.unwrap_or(3)),
        "sha256" => {
            let d = ocipack::digest::Digest::sha256_of(&data);
            std::hint::black_box(d);
            32
        }
        _ => usage(),
    };
    let wall = start.elapsed().as_secs_f64();
    println!("{wall:.3} {:.3} {size}", cpu_seconds() - cpu);
}
