//! ocipack's deterministic gzip stream, compressed in parallel.
//!
//! The format (fixed for a major version of ocipack, whatever the thread count or the
//! sizes of the writes that feed it):
//! - header: `1f 8b 08`, flags 0 (no name, no comment, no extra), mtime 0, XFL 0, OS 255;
//! - body: one raw DEFLATE stream made of independent pieces. The input is cut into blocks
//!   of exactly [`BLOCK_SIZE`] bytes (the last one shorter, possibly empty). Each block is
//!   compressed by a fresh zlib-rs deflate state at the chosen level, primed with the last
//!   32 KiB of the input before the block as its dictionary, and ended with a sync flush
//!   (the last block with a final flush). A fresh state per block matters: a reused one
//!   (reset + set_dictionary) was measured to give different bytes from run to run;
//! - trailer: CRC-32 and length modulo 2^32 of the uncompressed data, little endian.
//!
//! This is the scheme pigz uses, so any gzip reader decompresses it; the compressed bytes
//! are a function of (input, level, zlib-rs version) only. Blocks are compressed on up to
//! `jobs` threads and written in order, with a bounded number in flight (memory stays
//! constant whatever the input size).

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::mpsc;
use std::thread;

use flate2::{Compress, Compression as Level, FlushCompress, Status};

/// Uncompressed bytes per independently compressed block (128 KiB, as pigz).
pub const BLOCK_SIZE: usize = 128 * 1024;
/// Bytes of preceding input used as each block's dictionary (the DEFLATE window).
pub const DICT_SIZE: usize = 32 * 1024;

const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];

/// Compresses `block` into `out` (emptied first): a pure function of the other arguments.
/// (The room `out` already has does not matter: the stream never depends on how much
/// output space deflate is given, only on the input and the flushes.)
fn deflate_block(
    dict: &[u8],
    block: &[u8],
    level: u32,
    last: bool,
    out: &mut Vec<u8>,
) -> io::Result<()> {
    let mut c = Compress::new(Level::new(level), false);
    if !dict.is_empty() {
        c.set_dictionary(dict)
            .map_err(|e| io::Error::other(format!("deflate dictionary: {e}")))?;
    }
    let flush = if last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    out.clear();
    // Room for the worst case (stored blocks) so that one call normally does it all.
    out.reserve(block.len() + block.len() / 8 + 1024);
    loop {
        let consumed = c.total_in() as usize;
        let status = c
            .compress_vec(&block[consumed..], out, flush)
            .map_err(|e| io::Error::other(format!("deflate: {e}")))?;
        let done_input = c.total_in() as usize == block.len();
        let room_left = out.len() < out.capacity();
        match status {
            Status::StreamEnd => return Ok(()),
            _ if !last && done_input && room_left => return Ok(()),
            _ => out.reserve(64 * 1024),
        }
    }
}

/// One block to compress: `buf` holds the dictionary (`dict_len` bytes) then the block.
/// The buffers travel to a worker and back, and are reused for later blocks.
struct Job {
    seq: u64,
    buf: Vec<u8>,
    dict_len: usize,
    last: bool,
    out: Vec<u8>,
}

impl Job {
    fn run(&mut self, level: u32) -> io::Result<()> {
        let (dict, block) = self.buf.split_at(self.dict_len);
        deflate_block(dict, block, level, self.last, &mut self.out)
    }
}

/// A `Write` that gzips everything written to it into `W`, in ocipack's block format.
pub struct GzipEncoder<W: Write> {
    out: W,
    level: u32,
    crc: crc32fast::Hasher,
    len: u64,
    /// The block being filled, after its dictionary.
    cur: Vec<u8>,
    dict_len: usize,
    seq: u64,
    next_out: u64,
    /// Buffers given back by finished jobs: (input, output) pairs.
    spare: Vec<(Vec<u8>, Vec<u8>)>,
    pool: Option<Pool>,
    header_written: bool,
}

struct Pool {
    jobs: Option<mpsc::SyncSender<Job>>,
    results: mpsc::Receiver<(Job, io::Result<()>)>,
    workers: Vec<thread::JoinHandle<()>>,
    pending: BTreeMap<u64, Job>,
    in_flight: usize,
    max_in_flight: usize,
}

impl<W: Write> GzipEncoder<W> {
    /// An encoder at `level` (1..=9) compressing on `jobs` threads (1 = in the caller's thread).
    pub fn new(out: W, level: u32, jobs: usize) -> Self {
        let pool = (jobs > 1).then(|| {
            let (job_tx, job_rx) = mpsc::sync_channel::<Job>(jobs);
            let job_rx = std::sync::Arc::new(std::sync::Mutex::new(job_rx));
            let (res_tx, res_rx) = mpsc::channel();
            let workers = (0..jobs)
                .map(|_| {
                    let rx = job_rx.clone();
                    let tx = res_tx.clone();
                    thread::spawn(move || {
                        loop {
                            let job = match rx.lock() {
                                Ok(guard) => guard.recv(),
                                Err(_) => return,
                            };
                            let Ok(mut job) = job else { return };
                            let r = job.run(level);
                            if tx.send((job, r)).is_err() {
                                return;
                            }
                        }
                    })
                })
                .collect();
            Pool {
                jobs: Some(job_tx),
                results: res_rx,
                workers,
                pending: BTreeMap::new(),
                in_flight: 0,
                max_in_flight: 2 * jobs,
            }
        });
        GzipEncoder {
            out,
            level,
            crc: crc32fast::Hasher::new(),
            len: 0,
            cur: Vec::with_capacity(DICT_SIZE + BLOCK_SIZE),
            dict_len: 0,
            seq: 0,
            next_out: 0,
            spare: Vec::new(),
            pool,
            header_written: false,
        }
    }

    fn submit(&mut self, last: bool) -> io::Result<()> {
        if !self.header_written {
            self.out.write_all(&HEADER)?;
            self.header_written = true;
        }
        let (mut next, out) = self
            .spare
            .pop()
            .unwrap_or_else(|| (Vec::with_capacity(DICT_SIZE + BLOCK_SIZE), Vec::new()));
        // The next block's dictionary: the last 32 KiB of this one (every block but the
        // last is full, so the dictionary never reaches further back).
        next.clear();
        next.extend_from_slice(
            &self.cur[self.cur.len().saturating_sub(DICT_SIZE).max(self.dict_len)..],
        );
        let mut job = Job {
            seq: self.seq,
            buf: std::mem::replace(&mut self.cur, next),
            dict_len: self.dict_len,
            last,
            out,
        };
        self.dict_len = self.cur.len();
        self.seq += 1;
        match &mut self.pool {
            None => {
                job.run(self.level)?;
                self.out.write_all(&job.out)?;
                self.next_out += 1;
                self.spare.push((job.buf, job.out));
            }
            Some(pool) => {
                while pool.in_flight >= pool.max_in_flight {
                    Self::collect_one(pool, &mut self.out, &mut self.next_out, &mut self.spare)?;
                }
                let tx = pool
                    .jobs
                    .as_ref()
                    .ok_or_else(|| io::Error::other("gzip pool closed"))?;
                tx.send(job)
                    .map_err(|_| io::Error::other("gzip worker stopped"))?;
                pool.in_flight += 1;
            }
        }
        Ok(())
    }

    fn collect_one(
        pool: &mut Pool,
        out: &mut W,
        next_out: &mut u64,
        spare: &mut Vec<(Vec<u8>, Vec<u8>)>,
    ) -> io::Result<()> {
        let (job, res) = pool
            .results
            .recv()
            .map_err(|_| io::Error::other("gzip worker stopped"))?;
        res?;
        pool.pending.insert(job.seq, job);
        while let Some(job) = pool.pending.remove(next_out) {
            out.write_all(&job.out)?;
            *next_out += 1;
            pool.in_flight -= 1;
            spare.push((job.buf, job.out));
        }
        Ok(())
    }

    /// Compresses what is left, writes the trailer and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.submit(true)?;
        if let Some(mut pool) = self.pool.take() {
            while pool.in_flight > 0 {
                Self::collect_one(
                    &mut pool,
                    &mut self.out,
                    &mut self.next_out,
                    &mut self.spare,
                )?;
            }
        }
        let crc = self.crc.clone().finalize();
        self.out.write_all(&crc.to_le_bytes())?;
        self.out.write_all(&(self.len as u32).to_le_bytes())?;
        Ok(self.out)
    }
}

impl<W: Write> Write for GzipEncoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().min(BLOCK_SIZE - (self.cur.len() - self.dict_len));
        self.cur.extend_from_slice(&buf[..n]);
        self.crc.update(&buf[..n]);
        self.len += n as u64;
        if self.cur.len() - self.dict_len == BLOCK_SIZE {
            self.submit(false)?;
        }
        Ok(n)
    }

    /// Does not end a block early: the bytes must not depend on when callers flush.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for Pool {
    /// Closes the job queue and waits for the workers, also when encoding was abandoned.
    fn drop(&mut self) {
        drop(self.jobs.take());
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn sample(n: usize) -> Vec<u8> {
        // Mixed: text-like runs and pseudo-random bytes.
        let mut x: u32 = 12345;
        (0..n)
            .map(|i| {
                if (i / 7000) % 2 == 0 {
                    b"the quick brown fox "[i % 20]
                } else {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    x as u8
                }
            })
            .collect()
    }

    fn gz(data: &[u8], jobs: usize, chunk: usize) -> Vec<u8> {
        let mut e = GzipEncoder::new(Vec::new(), 6, jobs);
        for c in data.chunks(chunk.max(1)) {
            e.write_all(c).unwrap();
            e.flush().unwrap();
        }
        e.finish().unwrap()
    }

    #[test]
    fn same_bytes_for_any_threads_and_write_sizes() {
        let data = sample(3 * BLOCK_SIZE + 4321);
        let reference = gz(&data, 1, data.len());
        for (jobs, chunk) in [(1, 1), (1, 4097), (2, 65536), (4, 1000), (16, 777_777)] {
            assert_eq!(
                gz(&data, jobs, chunk),
                reference,
                "jobs {jobs} chunk {chunk}"
            );
        }
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&reference[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, data);
        assert_eq!(&reference[..10], &HEADER);
    }

    #[test]
    fn empty_and_exact_block_inputs_decode() {
        for n in [0, 1, BLOCK_SIZE, 2 * BLOCK_SIZE] {
            let data = sample(n);
            let z = gz(&data, 2, 5000);
            let mut back = Vec::new();
            flate2::read::GzDecoder::new(&z[..])
                .read_to_end(&mut back)
                .unwrap();
            assert_eq!(back, data, "n={n}");
        }
    }
}
