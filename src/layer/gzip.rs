//! ocipack's deterministic gzip stream, compressed in parallel and checked as it is made.
//!
//! The format (fixed for a version of ocipack, whatever the thread count or the sizes of the
//! writes that feed it):
//! - one gzip member (readers that stop after the first member, like flate2's `GzDecoder`,
//!   read all of it);
//! - header: `1f 8b 08`, flags 0 (no name, no comment, no extra), mtime 0, XFL 0, OS 255;
//! - body: one raw DEFLATE stream made of independent pieces. The input is cut into blocks of
//!   exactly [`BLOCK_SIZE`] bytes (the last one shorter, possibly empty); each is compressed
//!   by libdeflate at the chosen level with no dictionary, and every piece but the last is
//!   made continuable (see `layer/deflate.rs`);
//! - trailer: CRC-32 (the blocks' CRCs combined in order) and length modulo 2^32, little
//!   endian.
//!
//! The bytes are a function of (input, level, libdeflate version) only: the block size is
//! part of the format. 1 MiB blocks were measured to keep the output at or under `pigz -6`'s
//! size on both benchmark trees, where 128 KiB blocks without a shared dictionary did not.
//! Blocks are compressed and checked on up to `jobs` threads and written in order, with a
//! bounded number in flight (memory stays constant whatever the input size).

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;

use super::deflate::PieceMaker;
use super::hooks::{flip_hook, panic_hook};

/// Uncompressed bytes per independently compressed block (part of the format).
pub const BLOCK_SIZE: usize = 1024 * 1024;

const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];

/// One block to compress; its buffers travel to a worker and back, and are reused.
struct Job {
    seq: u64,
    input: Vec<u8>,
    last: bool,
    out: Vec<u8>,
    crc: u32,
}

impl Job {
    /// [`Job::run`], with a panic turned into an error starting [`PANICKED`]: a worker
    /// that panics reports it like any failure, so the build fails instead of waiting
    /// forever for its piece. The maker may be left inconsistent: the caller stops using it.
    fn run_caught(&mut self, maker: &mut PieceMaker, hooks: Hooks) -> io::Result<()> {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.run(maker, hooks)))
            .unwrap_or_else(|panic| {
                let why = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "no message".into());
                Err(io::Error::other(format!(
                    "{PANICKED} (block {}): {why}",
                    self.seq
                )))
            })
    }

    /// Compresses the block and checks that the piece decodes back to it.
    fn run(&mut self, maker: &mut PieceMaker, hooks: Hooks) -> io::Result<()> {
        let Hooks { flip, panic } = hooks;
        if panic && self.seq == 0 {
            panic!("OCIPACK_TEST_FLIP_ENCODED_BYTE=panic: the encoder panics");
        }
        self.crc = crc32fast::hash(&self.input);
        maker.compress(&self.input, self.last, &mut self.out)?;
        if self.seq == 0
            && let Some(at) = flip.and_then(|f| usize::try_from(f).ok())
            && let Some(b) = at
                .checked_sub(HEADER.len())
                .and_then(|i| self.out.get_mut(i))
        {
            *b ^= 0x01;
        }
        maker
            .check(&mut self.out, self.last, &self.input)
            .map_err(|why| io::Error::other(format!("{CHECK_FAILED}: {why}")))
    }
}

/// How the error of a piece that failed its check begins.
pub const CHECK_FAILED: &str =
    "the gzip encoder's output was checked as it was written and is wrong";

/// How the error of a piece whose making panicked begins.
pub const PANICKED: &str = "the gzip encoder panicked";

/// Test hooks (debug builds, see [`flip_hook`]): flip a byte of the first
/// piece, or panic while making it.
#[derive(Debug, Clone, Copy, Default)]
struct Hooks {
    flip: Option<u64>,
    panic: bool,
}

struct Pool {
    jobs: Option<mpsc::SyncSender<Job>>,
    results: mpsc::Receiver<(Job, io::Result<()>)>,
    workers: Vec<thread::JoinHandle<()>>,
    /// Finished jobs waiting for the ones before them.
    done: BTreeMap<u64, Job>,
    in_flight: usize,
    max_in_flight: usize,
}

enum Engine {
    Inline(Box<PieceMaker>),
    Pool(Pool),
}

/// A `Write` that gzips everything written to it into `W`, in ocipack's format.
pub struct GzipEncoder<W: Write> {
    out: W,
    cur: Vec<u8>,
    seq: u64,
    next_out: u64,
    crc: crc32fast::Hasher,
    len: u64,
    /// Buffers given back by finished jobs: (input, output) pairs.
    spare: Vec<(Vec<u8>, Vec<u8>)>,
    engine: Engine,
    header_written: bool,
    /// Test hooks (debug builds): flip a byte of the stream (in its first piece) before the
    /// piece is checked, as an encoder bug would, or panic.
    hooks: Hooks,
}

impl<W: Write> GzipEncoder<W> {
    /// An encoder at libdeflate `level` (1..=12) on `jobs` threads (1: in the caller's).
    pub fn new(out: W, level: u32, jobs: usize) -> io::Result<Self> {
        let hooks = Hooks {
            flip: flip_hook(),
            panic: panic_hook(),
        };
        Self::with_hooks(out, level, jobs, hooks)
    }

    fn with_hooks(out: W, level: u32, jobs: usize, hooks: Hooks) -> io::Result<Self> {
        let engine = if jobs <= 1 {
            Engine::Inline(Box::new(PieceMaker::new(level)?))
        } else {
            let (job_tx, job_rx) = mpsc::sync_channel::<Job>(jobs);
            let job_rx = Arc::new(Mutex::new(job_rx));
            let (res_tx, results) = mpsc::channel();
            let mut workers = Vec::with_capacity(jobs);
            for _ in 0..jobs {
                let mut maker = PieceMaker::new(level)?;
                let rx = Arc::clone(&job_rx);
                let tx = res_tx.clone();
                workers.push(thread::spawn(move || {
                    loop {
                        let job = match rx.lock() {
                            Ok(guard) => guard.recv(),
                            Err(_) => return,
                        };
                        let Ok(mut job) = job else { return };
                        let r = job.run_caught(&mut maker, hooks);
                        let stop = matches!(&r, Err(e) if e.to_string().starts_with(PANICKED));
                        if tx.send((job, r)).is_err() || stop {
                            return;
                        }
                    }
                }));
            }
            Engine::Pool(Pool {
                jobs: Some(job_tx),
                results,
                workers,
                done: BTreeMap::new(),
                in_flight: 0,
                max_in_flight: 2 * jobs,
            })
        };
        Ok(GzipEncoder {
            out,
            cur: Vec::with_capacity(BLOCK_SIZE),
            seq: 0,
            next_out: 0,
            crc: crc32fast::Hasher::new(),
            len: 0,
            spare: Vec::new(),
            engine,
            header_written: false,
            hooks,
        })
    }

    /// Writes a finished piece and adds its block's CRC to the running CRC.
    fn emit(
        out: &mut W,
        crc: &mut crc32fast::Hasher,
        next_out: &mut u64,
        spare: &mut Vec<(Vec<u8>, Vec<u8>)>,
        job: Job,
    ) -> io::Result<()> {
        debug_assert_eq!(job.seq, *next_out);
        out.write_all(&job.out)?;
        crc.combine(&crc32fast::Hasher::new_with_initial_len(
            job.crc,
            job.input.len() as u64,
        ));
        *next_out += 1;
        spare.push((job.input, job.out));
        Ok(())
    }

    fn submit(&mut self, last: bool) -> io::Result<()> {
        if !self.header_written {
            self.out.write_all(&HEADER)?;
            self.header_written = true;
        }
        let (mut next, out) = self
            .spare
            .pop()
            .unwrap_or_else(|| (Vec::with_capacity(BLOCK_SIZE), Vec::new()));
        next.clear();
        let mut job = Job {
            seq: self.seq,
            input: std::mem::replace(&mut self.cur, next),
            last,
            out,
            crc: 0,
        };
        self.seq += 1;
        match &mut self.engine {
            Engine::Inline(maker) => {
                job.run_caught(maker, self.hooks)?;
                Self::emit(
                    &mut self.out,
                    &mut self.crc,
                    &mut self.next_out,
                    &mut self.spare,
                    job,
                )?;
            }
            Engine::Pool(_) => {
                while matches!(&self.engine, Engine::Pool(p) if p.in_flight >= p.max_in_flight) {
                    self.collect_one()?;
                }
                let Engine::Pool(pool) = &mut self.engine else {
                    return Err(io::Error::other("gzip pool closed"));
                };
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

    /// Waits for one finished job, then writes every piece that is now in order.
    fn collect_one(&mut self) -> io::Result<()> {
        let Engine::Pool(pool) = &mut self.engine else {
            return Ok(());
        };
        let (job, res) = pool
            .results
            .recv()
            .map_err(|_| io::Error::other("gzip worker stopped"))?;
        res?;
        pool.done.insert(job.seq, job);
        while let Some(job) = pool.done.remove(&self.next_out) {
            pool.in_flight -= 1;
            Self::emit(
                &mut self.out,
                &mut self.crc,
                &mut self.next_out,
                &mut self.spare,
                job,
            )?;
        }
        Ok(())
    }

    /// Compresses what is left, writes the trailer and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.submit(true)?;
        while matches!(&self.engine, Engine::Pool(p) if p.in_flight > 0) {
            self.collect_one()?;
        }
        let crc = self.crc.clone().finalize();
        self.out.write_all(&crc.to_le_bytes())?;
        self.out.write_all(&(self.len as u32).to_le_bytes())?;
        Ok(self.out)
    }
}

impl<W: Write> Write for GzipEncoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().min(BLOCK_SIZE - self.cur.len());
        self.cur.extend_from_slice(&buf[..n]);
        self.len += n as u64;
        if self.cur.len() == BLOCK_SIZE {
            self.submit(false)?;
        }
        Ok(n)
    }

    /// Ends no block early: the bytes must not depend on when callers flush.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for Pool {
    /// Closes the queue and joins the workers, also when encoding was abandoned.
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
        let mut e = GzipEncoder::new(Vec::new(), 6, jobs).unwrap();
        for c in data.chunks(chunk.max(1)) {
            e.write_all(c).unwrap();
            e.flush().unwrap();
        }
        e.finish().unwrap()
    }

    #[test]
    fn same_bytes_for_any_threads_and_write_sizes_and_one_member() {
        let data = sample(3 * BLOCK_SIZE + 4321);
        let reference = gz(&data, 1, data.len());
        for (jobs, chunk) in [(1, 1), (1, 4097), (2, 65536), (4, 1000), (16, 777_777)] {
            assert!(
                gz(&data, jobs, chunk) == reference,
                "jobs {jobs} chunk {chunk}"
            );
        }
        // flate2's GzDecoder reads only the first member: it must read everything.
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&reference[..])
            .read_to_end(&mut back)
            .unwrap();
        assert!(back == data);
        assert_eq!(&reference[..10], &HEADER);
    }

    #[test]
    fn empty_and_exact_block_inputs_decode() {
        for n in [0, 1, BLOCK_SIZE - 1, BLOCK_SIZE, 2 * BLOCK_SIZE] {
            let data = sample(n);
            let z = gz(&data, 2, 5000);
            let mut back = Vec::new();
            flate2::read::GzDecoder::new(&z[..])
                .read_to_end(&mut back)
                .unwrap();
            assert!(back == data, "n={n}");
        }
    }

    /// A worker that panics fails the encoding with an error (the build then fails with an
    /// internal error); before, the other workers kept the results channel open and the
    /// encoder waited for the lost piece forever.
    #[test]
    fn a_panicking_worker_is_an_error_not_a_hang() {
        let data = sample(3 * BLOCK_SIZE + 5);
        for jobs in [1, 2, 4] {
            let (tx, rx) = mpsc::channel();
            let data = data.clone();
            thread::spawn(move || {
                let hooks = Hooks {
                    flip: None,
                    panic: true,
                };
                let r = GzipEncoder::with_hooks(Vec::new(), 5, jobs, hooks)
                    .and_then(|mut e| e.write_all(&data).map(|()| e))
                    .and_then(|e| e.finish());
                let _ = tx.send(r.map(|_| ()).map_err(|e| e.to_string()));
            });
            let r = rx
                .recv_timeout(std::time::Duration::from_secs(30))
                .unwrap_or_else(|e| panic!("jobs {jobs}: the encoder hung or panicked ({e})"));
            let e = r.expect_err("a panic must be an error");
            assert!(e.starts_with(PANICKED), "jobs {jobs}: {e}");
        }
    }

    #[test]
    fn every_level_makes_a_valid_stream() {
        let data = sample(BLOCK_SIZE + 777);
        for level in 1..=12 {
            let mut e = GzipEncoder::new(Vec::new(), level, 2).unwrap();
            e.write_all(&data).unwrap();
            let z = e.finish().unwrap();
            let mut back = Vec::new();
            flate2::read::GzDecoder::new(&z[..])
                .read_to_end(&mut back)
                .unwrap();
            assert!(back == data, "level {level}");
        }
        assert!(GzipEncoder::new(Vec::new(), 13, 1).is_err());
        assert!(GzipEncoder::new(Vec::new(), 0, 1).is_err());
    }
}
