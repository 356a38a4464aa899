//! Generates a tree of many small files shaped like root filesystems, for the memory
//! benchmark: `COPIES` synthetic Debian-like root filesystems (default 150) side by side
//! under `rNNN/`, each of about 6,700 entries — `etc`, `usr/bin`, shared libraries with
//! their symlinks, `usr/share/doc/<package>/`, man pages, locales, Python modules, zone info
//! and dpkg's lists — so that the default makes about 1,000,000 entries in over 10,000
//! directories, with paths of 30 to 100 bytes. Files are empty or a few bytes: the
//! benchmark measures the cost of entries, not of content. The same arguments always give
//! the same tree, whatever the machine (names come from a fixed pseudo-random generator,
//! not from this machine's files).
//!
//! Usage: `cargo run --release --example bench-rootfs -- DIR [COPIES]`. If `DIR` already
//! holds a complete tree made with the same arguments, nothing is done; otherwise it is
//! (re)generated beside `DIR` and renamed into place. Prints the number of entries.

use std::fs;
use std::io::Write;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

/// Bumped whenever the generator's output changes, so that cached trees are rebuilt.
const VERSION: u32 = 1;

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

    /// A package-like name: one to three syllable groups joined by `-`, sometimes with a
    /// version digit (`libfoo-bar2`, `python3-baz`).
    fn name(&mut self) -> String {
        const SYL: [&str; 32] = [
            "ab", "ac", "al", "an", "ar", "at", "ba", "be", "ca", "co", "de", "di", "el", "en",
            "ex", "fi", "ge", "gl", "io", "ka", "li", "lo", "ma", "mo", "ne", "no", "pa", "po",
            "re", "sa", "ti", "ur",
        ];
        let mut s = String::new();
        for part in 0..1 + self.below(3) {
            if part > 0 {
                s.push('-');
            }
            for _ in 0..2 + self.below(3) {
                s.push_str(SYL[self.below(32) as usize]);
            }
        }
        if self.below(3) == 0 {
            s.push_str(&self.below(10).to_string());
        }
        s
    }
}

/// One synthetic root filesystem's entries: directories (ending in `/`), symlinks
/// (`path -> target`) and files, in creation order (parents first).
fn rootfs(rng: &mut Rng) -> Vec<String> {
    let mut e: Vec<String> = Vec::new();
    let dirs = [
        "etc/",
        "etc/default/",
        "usr/",
        "usr/bin/",
        "usr/sbin/",
        "usr/lib/",
        "usr/lib/x86_64-linux-gnu/",
        "usr/lib/python3/",
        "usr/lib/python3/dist-packages/",
        "usr/share/",
        "usr/share/doc/",
        "usr/share/man/",
        "usr/share/man/man1/",
        "usr/share/man/man5/",
        "usr/share/man/man8/",
        "usr/share/locale/",
        "usr/share/zoneinfo/",
        "var/",
        "var/lib/",
        "var/lib/dpkg/",
        "var/lib/dpkg/info/",
    ];
    e.extend(dirs.iter().map(|d| d.to_string()));
    let packages: Vec<String> = (0..380).map(|_| rng.name()).collect();
    for p in &packages {
        e.push(format!("usr/share/doc/{p}/"));
        e.push(format!("usr/share/doc/{p}/copyright"));
        e.push(format!("usr/share/doc/{p}/changelog.Debian.gz"));
        e.push(format!("var/lib/dpkg/info/{p}.list"));
        e.push(format!("var/lib/dpkg/info/{p}.md5sums"));
        if rng.below(3) == 0 {
            e.push(format!("etc/{p}.conf"));
            e.push(format!("etc/default/{p}"));
        }
    }
    for _ in 0..510 {
        let cmd = rng.name();
        let (bin, man) = if rng.below(5) == 0 {
            ("usr/sbin", "man8")
        } else {
            ("usr/bin", "man1")
        };
        e.push(format!("{bin}/{cmd}"));
        e.push(format!("usr/share/man/{man}/{cmd}.{}.gz", &man[3..]));
    }
    for _ in 0..120 {
        e.push(format!("usr/share/man/man5/{}.5.gz", rng.name()));
    }
    for _ in 0..350 {
        let lib = rng.name();
        let major = rng.below(8);
        let real = format!("lib{lib}.so.{major}.{}.{}", rng.below(40), rng.below(12));
        e.push(format!("usr/lib/x86_64-linux-gnu/{real}"));
        e.push(format!(
            "usr/lib/x86_64-linux-gnu/lib{lib}.so.{major} -> {real}"
        ));
    }
    for lang in 0..36 {
        let l = format!("usr/share/locale/{}{}", (b'a' + lang / 6) as char, lang % 6);
        e.push(format!("{l}/"));
        e.push(format!("{l}/LC_MESSAGES/"));
        for p in packages.iter().skip(lang as usize * 3).take(28) {
            e.push(format!("{l}/LC_MESSAGES/{p}.mo"));
        }
    }
    for _ in 0..95 {
        let m = rng.name().replace('-', "_");
        let base = format!("usr/lib/python3/dist-packages/{m}");
        e.push(format!("{base}/"));
        e.push(format!("{base}/__init__.py"));
        for _ in 0..rng.below(16) {
            e.push(format!("{base}/{}.py", rng.name().replace('-', "_")));
        }
        if rng.below(2) == 0 {
            e.push(format!("{base}/__pycache__/"));
            for _ in 0..rng.below(8) {
                let n = rng.name().replace('-', "_");
                e.push(format!("{base}/__pycache__/{n}.cpython-311.pyc"));
            }
        }
    }
    for region in [
        "Africa",
        "America",
        "Antarctica",
        "Asia",
        "Atlantic",
        "Europe",
        "Pacific",
    ] {
        e.push(format!("usr/share/zoneinfo/{region}/"));
        for _ in 0..80 {
            let mut city = rng.name().replace('-', "_");
            city[..1].make_ascii_uppercase();
            e.push(format!("usr/share/zoneinfo/{region}/{city}"));
        }
    }
    // Names drawn twice in one copy: keep the first.
    let mut seen = std::collections::HashSet::new();
    e.retain(|p| {
        seen.insert(
            p.split(" -> ")
                .next()
                .unwrap_or(p)
                .trim_end_matches('/')
                .to_string(),
        )
    });
    e
}

fn generate(dir: &Path, copies: u32) -> std::io::Result<u64> {
    let mut rng = Rng(0x726f_6f74_6673_0000 ^ u64::from(VERSION));
    let mut entries = 0u64;
    fs::create_dir_all(dir)?;
    for c in 0..copies {
        let top = dir.join(format!("r{c:03}"));
        fs::create_dir(&top)?;
        entries += 1;
        for (i, e) in rootfs(&mut rng).iter().enumerate() {
            if let Some(d) = e.strip_suffix('/') {
                fs::create_dir_all(top.join(d))?;
            } else if let Some((link, target)) = e.split_once(" -> ") {
                symlink(target, top.join(link))?;
            } else {
                let path = top.join(e);
                if let Some(parent) = path.parent() {
                    fs::create_dir_all(parent)?;
                }
                let mut f = fs::File::create(&path)?;
                // One file in eight holds a few bytes.
                if i % 8 == 0 {
                    writeln!(f, "{e}")?;
                }
            }
            entries += 1;
        }
    }
    Ok(entries)
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(dir), copies) = (args.first(), args.get(1)) else {
        eprintln!("usage: bench-rootfs DIR [COPIES]");
        std::process::exit(2);
    };
    let copies: u32 = match copies.map(|m| m.parse()) {
        None => 150,
        Some(Ok(m)) if (1..1000).contains(&m) => m,
        Some(_) => {
            eprintln!("bench-rootfs: COPIES must be an integer from 1 to 999");
            std::process::exit(2);
        }
    };
    let dir = PathBuf::from(dir);
    let stamp_path = dir.with_extension("stamp");
    if let Ok(s) = fs::read_to_string(&stamp_path)
        && let Some(n) = s.strip_prefix(&format!("bench-rootfs v{VERSION} {copies} copies: "))
        && dir.is_dir()
    {
        print!("{n}");
        return Ok(());
    }
    let tmp = dir.with_extension("partial");
    for d in [&tmp, &dir] {
        if d.exists() {
            fs::remove_dir_all(d)?;
        }
    }
    let _ = fs::remove_file(&stamp_path);
    let entries = generate(&tmp, copies)?;
    fs::rename(&tmp, &dir)?;
    fs::write(
        &stamp_path,
        format!("bench-rootfs v{VERSION} {copies} copies: {entries}\n"),
    )?;
    println!("{entries}");
    Ok(())
}
