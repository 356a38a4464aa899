//! The layout's bytes never depend on the number of threads: the same tree built with
//! -j1, -j2 and -j16 gives identical layouts, for every compression and several levels.
//!
//! The tree (about 21 MiB of mixed text-like, random and small files) spans ~170 gzip
//! blocks of 128 KiB, and at least three zstd jobs: libzstd's multithreaded mode cuts the
//! input into jobs of 2^(windowLog + 2) bytes, 8 MiB at level 3 (windowLog 21) and 2 MiB at
//! level 1 (windowLog 19), so several workers really compress at once.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

use common::{assert_exit, run, snapshot};

/// Every file of a layout: relative path → (is a symlink, bytes or link target).
type Snapshot = BTreeMap<String, (bool, Vec<u8>)>;

/// zstd's job size at its default level 3 (see the module comment).
const ZSTD_L3_JOB: u64 = 8 << 20;

/// Deterministic bytes: text-like when `text`, else random.
fn bytes(n: usize, seed: u64, text: bool) -> Vec<u8> {
    let mut x = seed | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    const WORDS: [&str; 12] = [
        "layer", "image", "blob", "digest", "manifest", "index", "the", "of", "tar", "zstd",
        "gzip", "\n",
    ];
    let mut out = Vec::with_capacity(n + 16);
    while out.len() < n {
        let r = next();
        if text {
            out.extend_from_slice(WORDS[(r % 12) as usize].as_bytes());
            out.push(b' ');
        } else {
            out.extend_from_slice(&r.to_le_bytes());
        }
    }
    out.truncate(n);
    out
}

fn make_tree(root: &Path) {
    fs::create_dir_all(root.join("big")).unwrap();
    fs::create_dir_all(root.join("small")).unwrap();
    fs::write(root.join("big/text.txt"), bytes(7 << 20, 1, true)).unwrap();
    fs::write(root.join("big/random.bin"), bytes(5 << 20, 2, false)).unwrap();
    // Alternating 64 KiB stretches of text and noise, so blocks differ in ratio.
    let mixed: Vec<u8> = (0..96u64)
        .flat_map(|i| bytes(64 << 10, 10 + i, i % 2 == 0))
        .collect();
    fs::write(root.join("big/mixed.bin"), mixed).unwrap();
    for i in 0..300u64 {
        let n = (i as usize * 7919) % (20 << 10);
        fs::write(
            root.join(format!("small/f{i:03}")),
            bytes(n, 100 + i, i % 3 != 0),
        )
        .unwrap();
    }
}

/// Builds `tree` once per thread count and requires identical layouts.
fn same_layout_for_any_jobs(compression: &str, level: Option<&str>) {
    let tmp = tempfile::tempdir().unwrap();
    let tree = tmp.path().join("tree");
    make_tree(&tree);
    let mut reference: Option<(&str, Snapshot)> = None;
    for jobs in ["1", "2", "16"] {
        let out = tmp.path().join(format!("out-{jobs}"));
        let mut args = vec![
            "image",
            "--rootfs",
            tree.to_str().unwrap(),
            "--arch",
            "amd64",
            "--created",
            "@1700000000",
            "--compression",
            compression,
            "-j",
            jobs,
            "--json",
            "-o",
            out.to_str().unwrap(),
        ];
        if let Some(l) = level {
            args.extend(["--level", l]);
        }
        let o = run(&args);
        assert_exit(&o, 0);
        let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let tar_size = json["layer"]["uncompressedSize"].as_u64().unwrap();
        assert!(
            tar_size > 2 * ZSTD_L3_JOB,
            "the tree ({tar_size} bytes) must span several zstd jobs"
        );
        let snap = snapshot(&out);
        match &reference {
            None => reference = Some((jobs, snap)),
            Some((ref_jobs, ref_snap)) => {
                let differing: BTreeSet<&String> = ref_snap
                    .keys()
                    .chain(snap.keys())
                    .filter(|k| ref_snap.get(*k) != snap.get(*k))
                    .collect();
                assert!(
                    differing.is_empty(),
                    "{compression} level {level:?}: -j{jobs} differs from -j{ref_jobs} in {differing:?}"
                );
            }
        }
    }
}

#[test]
fn uncompressed_layout_is_independent_of_jobs() {
    same_layout_for_any_jobs("none", None);
}

#[test]
fn gzip_layout_is_independent_of_jobs() {
    same_layout_for_any_jobs("gzip", None);
    same_layout_for_any_jobs("gzip", Some("1"));
}

#[test]
fn zstd_layout_is_independent_of_jobs() {
    same_layout_for_any_jobs("zstd", None);
    same_layout_for_any_jobs("zstd", Some("1"));
}
