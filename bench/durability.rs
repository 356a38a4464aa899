//! Measures ways to make a build's outputs durable on this disk, for the choice in
//! `src/store/staging.rs` (`commit_all`): an `fsync` per file and directory, the same from 8
//! threads, `sync_file_range` on every file then one `syncfs`, and one `syncfs`. The files
//! are the hello-world example's shape: 10 layouts of one 12 KB blob, three small blobs and
//! two small documents each, in three directories.
//!
//! Usage: `cargo run --release --example durability -- [DIR]` (default `target/durability`).

use std::fs::{self, File};
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const LAYOUTS: usize = 10;

/// Writes the files afresh (dirty in the page cache) and returns them open, with the
/// directories.
fn layouts(root: &Path) -> (Vec<File>, Vec<File>) {
    let _ = fs::remove_dir_all(root);
    let (mut files, mut dirs) = (Vec::new(), Vec::new());
    for l in 0..LAYOUTS {
        let top = root.join(format!("l{l}"));
        let blobs = top.join("blobs/sha256");
        fs::create_dir_all(&blobs).unwrap();
        for i in 0..4 {
            let mut f = File::create(blobs.join(format!("b{i}"))).unwrap();
            let len = if i == 0 { 12_000 } else { 600 };
            f.write_all(&vec![(l * 7 + i) as u8; len]).unwrap();
            files.push(f);
        }
        for name in ["oci-layout", "index.json"] {
            let mut f = File::create(top.join(name)).unwrap();
            f.write_all(b"{\"imageLayoutVersion\":\"1.0.0\"}").unwrap();
            files.push(f);
        }
        for d in [top.clone(), top.join("blobs"), blobs] {
            dirs.push(File::open(d).unwrap());
        }
    }
    (files, dirs)
}

fn time(f: impl FnOnce()) -> Duration {
    let t = Instant::now();
    f();
    t.elapsed()
}

fn main() {
    let root = std::env::args()
        .nth(1)
        .map_or_else(|| PathBuf::from("target/durability"), PathBuf::from);
    println!("| round | fsync each | 8 threads of fsync | sync_file_range + syncfs | one syncfs |");
    println!("|---|---|---|---|---|");
    for round in 1..=5 {
        let (files, dirs) = layouts(&root);
        let each = time(|| {
            for f in files.iter().chain(&dirs) {
                f.sync_all().unwrap();
            }
        });
        let (files, dirs) = layouts(&root);
        let parallel = time(|| {
            let all: Vec<&File> = files.iter().chain(&dirs).collect();
            std::thread::scope(|s| {
                for chunk in all.chunks(all.len().div_ceil(8)) {
                    s.spawn(move || chunk.iter().for_each(|f| f.sync_all().unwrap()));
                }
            });
        });
        let (files, _) = layouts(&root);
        let ranges = time(|| {
            for f in &files {
                // SAFETY: a valid descriptor; the call only starts writeback of its pages.
                unsafe { libc::sync_file_range(f.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE) };
            }
            rustix::fs::syncfs(files[0].as_fd()).unwrap();
        });
        let (files, _) = layouts(&root);
        let syncfs = time(|| rustix::fs::syncfs(files[0].as_fd()).unwrap());
        println!(
            "| {round} | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms |",
            each.as_secs_f64() * 1e3,
            parallel.as_secs_f64() * 1e3,
            ranges.as_secs_f64() * 1e3,
            syncfs.as_secs_f64() * 1e3
        );
    }
    let _ = fs::remove_dir_all(&root);
}
