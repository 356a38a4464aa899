//! Generates the benchmark's input tree, deterministically: a few thousand files of mixed
//! content (text-like, binary-like and random) in nested directories, about `SIZE` bytes
//! in all (default 1 GiB). The same arguments always give the same tree, byte for byte,
//! whatever the machine.
//!
//! Usage: `cargo run --release --example bench-tree -- DIR [SIZE_MIB]`. If `DIR` already
//! holds a complete tree made with the same size, nothing is done; otherwise it is
//! (re)generated beside `DIR` and renamed into place.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

/// Bumped whenever the generator's output changes, so that cached trees are rebuilt.
const VERSION: u32 = 2;

/// splitmix64: tiny, fast and fully specified.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A size spread evenly over the powers of two from 2^lo to 2^hi (inclusive), uniform
    /// within each (integers only: no libm whose last bits could differ between machines).
    fn log_uniform(&mut self, lo: u32, hi: u32) -> u64 {
        let e = lo + self.below(u64::from(hi - lo + 1)) as u32;
        (1u64 << e) + self.below(1u64 << e)
    }

    /// An index in [0, n) skewed towards 0 (roughly Zipf-like), as word use is.
    fn skewed(&mut self, n: usize) -> usize {
        let u = self.unit();
        ((n as f64) * u * u * u) as usize
    }
}

#[derive(Clone, Copy)]
enum Content {
    Text,
    Binary,
    Random,
}

struct Generator {
    rng: Rng,
    words: Vec<Vec<u8>>,
    opcodes: Vec<u8>,
}

impl Generator {
    fn new(seed: u64) -> Self {
        let mut rng = Rng(seed);
        let words = (0..4096)
            .map(|_| {
                let len = 2 + rng.skewed(11);
                (0..len).map(|_| b'a' + rng.below(26) as u8).collect()
            })
            .collect();
        let opcodes = (0..256).map(|_| rng.next() as u8).collect();
        Generator {
            rng,
            words,
            opcodes,
        }
    }

    /// Lines of words from a skewed vocabulary, with indentation and punctuation:
    /// compresses about as well as source code and configuration files.
    fn text(&mut self, out: &mut Vec<u8>, n: usize) {
        while out.len() < n {
            if out.len() > 4096 && self.rng.below(3) == 0 {
                self.repeat_recent(out, 20, 80);
                continue;
            }
            let indent = 4 * self.rng.below(4) as usize;
            out.extend(std::iter::repeat_n(b' ', indent));
            let width = 30 + self.rng.below(70) as usize;
            let start = out.len();
            while out.len() - start < width {
                let w = self.rng.skewed(self.words.len());
                out.extend_from_slice(&self.words[w]);
                match self.rng.below(16) {
                    0 => out.extend_from_slice(b", "),
                    1 => out.extend_from_slice(b" = "),
                    2 => out.extend_from_slice(b"("),
                    3 => out.extend_from_slice(b");"),
                    _ => out.push(b' '),
                }
            }
            out.push(b'\n');
        }
        out.truncate(n);
    }

    /// Something like machine code and data tables: skewed opcodes, small operands,
    /// pointers sharing their high bytes, zero padding.
    fn binary(&mut self, out: &mut Vec<u8>, n: usize) {
        let base = self.rng.next() & 0x0000_7fff_ffff_0000;
        while out.len() < n {
            match self.rng.below(64) {
                _ if out.len() > 4096 && self.rng.below(4) == 0 => self.repeat_recent(out, 8, 64),
                0 => out.extend(std::iter::repeat_n(0u8, 8 + self.rng.below(120) as usize)),
                1..=6 => out.extend_from_slice(&(base + self.rng.below(1 << 20)).to_le_bytes()),
                7..=9 => out.extend_from_slice(&self.rng.next().to_le_bytes()[..4]),
                _ => {
                    out.push(self.opcodes[self.rng.skewed(256)]);
                    for _ in 0..self.rng.below(4) {
                        out.push(self.rng.below(16) as u8);
                    }
                }
            }
        }
        out.truncate(n);
    }

    /// Copies a recent stretch of `out` (as real files repeat themselves).
    fn repeat_recent(&mut self, out: &mut Vec<u8>, min: u64, max: u64) {
        let len = (min + self.rng.below(max - min)) as usize;
        let from = out.len() - 4096 + self.rng.below(4096 - max) as usize;
        out.extend_from_within(from..from + len);
    }

    fn random(&mut self, out: &mut Vec<u8>, n: usize) {
        while out.len() < n {
            out.extend_from_slice(&self.rng.next().to_le_bytes());
        }
        out.truncate(n);
    }

    fn fill(&mut self, kind: Content, out: &mut Vec<u8>, n: usize) {
        out.clear();
        match kind {
            Content::Text => self.text(out, n),
            Content::Binary => self.binary(out, n),
            Content::Random => self.random(out, n),
        }
    }
}

fn generate(dir: &Path, total: u64) -> std::io::Result<(u64, u64)> {
    let mut g = Generator::new(0x6f63_6970_6163_6b00 ^ u64::from(VERSION));
    let mut buf = Vec::new();
    let (mut bytes, mut files) = (0u64, 0u64);
    fs::create_dir_all(dir.join("empty-dir"))?;
    while bytes < total {
        let sub = format!("d{:02}/s{}", g.rng.below(24), g.rng.below(6));
        fs::create_dir_all(dir.join(&sub))?;
        let (kind, ext) = match g.rng.below(20) {
            0..=9 => (Content::Text, "txt"),
            10..=17 => (Content::Binary, "bin"),
            _ => (Content::Random, "dat"),
        };
        // Mostly small and medium files, a few large ones.
        let size = if g.rng.below(100) == 0 {
            g.rng.log_uniform(22, 24) // 4 to 32 MiB
        } else {
            g.rng.log_uniform(4, 20) // 16 bytes to 2 MiB
        }
        .min(total - bytes) as usize;
        let path = dir.join(format!("{sub}/f{files:05}.{ext}"));
        g.fill(kind, &mut buf, size);
        fs::File::create(&path)?.write_all(&buf)?;
        let mode = if matches!(kind, Content::Binary) && g.rng.below(4) == 0 {
            0o755
        } else {
            0o644
        };
        fs::set_permissions(&path, fs::Permissions::from_mode(mode))?;
        if files % 250 == 0 {
            symlink(
                format!("f{files:05}.{ext}"),
                dir.join(format!("{sub}/l{files:05}")),
            )?;
        }
        bytes += size as u64;
        files += 1;
    }
    Ok((bytes, files))
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(dir), mib) = (args.first(), args.get(1)) else {
        eprintln!("usage: bench-tree DIR [SIZE_MIB]");
        std::process::exit(2);
    };
    let mib: u64 = match mib.map(|m| m.parse()) {
        None => 1024,
        Some(Ok(m)) if m > 0 => m,
        Some(_) => {
            eprintln!("bench-tree: SIZE_MIB must be a positive integer");
            std::process::exit(2);
        }
    };
    let dir = PathBuf::from(dir);
    let stamp = format!("bench-tree v{VERSION} {mib} MiB\n");
    let stamp_path = dir.with_extension("stamp");
    if fs::read_to_string(&stamp_path).ok().as_deref() == Some(stamp.as_str()) && dir.is_dir() {
        return Ok(());
    }
    let tmp = dir.with_extension("partial");
    for d in [&tmp, &dir] {
        if d.exists() {
            fs::remove_dir_all(d)?;
        }
    }
    let (bytes, files) = generate(&tmp, mib << 20)?;
    fs::rename(&tmp, &dir)?;
    fs::write(&stamp_path, stamp)?;
    eprintln!(
        "bench-tree: {files} files, {bytes} bytes in {}",
        dir.display()
    );
    Ok(())
}
