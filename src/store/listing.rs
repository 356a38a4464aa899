//! What an output directory holds, file by file, and whether a directory still holds exactly
//! that.
//!
//! A [`Listing`] names every path of an output with its type: a directory, a regular file
//! with its size and the SHA-256 of its bytes, or a symlink with its target. The builder's
//! output knows its own listing before it is written (`Output::listing`: documents are held
//! as bytes, the layer's digest was computed as it was encoded). [`Listing::matches`] proves
//! that a directory on disk still holds exactly that: the same paths and types, the modes
//! ocipack gives what it writes (0644, 0755), the same link targets, and every regular file
//! hashing to its recorded digest — nothing is taken from a timestamp or a name. The
//! incremental build (`project::cache`) reuses an output only then.

use std::collections::BTreeMap;
use std::io::Read;

use serde::{Deserialize, Serialize};

use super::root::{EntryType, OpenError, Root};
use super::{DIR_MODE, FILE_MODE};
use crate::digest::{Algorithm, Digest, Hasher};

/// One path of an output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum Listed {
    /// A directory.
    Dir,
    /// A regular file.
    File {
        /// Its size.
        size: u64,
        /// The SHA-256 of its bytes.
        digest: Digest,
    },
    /// A symbolic link.
    Symlink {
        /// Its target.
        target: String,
    },
}

/// Every path of an output directory (relative to it, `/`-separated, sorted), with what it
/// is; the directory itself is not listed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Listing(pub BTreeMap<String, Listed>);

/// How many bytes a file is read in.
const READ_SIZE: usize = 1 << 20;

impl Listing {
    /// True if the directory `dir` holds exactly this listing: every path with its type and
    /// nothing more, each directory (the output itself included) mode 0755 and each regular
    /// file mode 0644 (what ocipack writes, as a rebuild would repair), each symlink's
    /// target, and each regular file of its size with content hashing to its digest. Paths
    /// whose names are not UTF-8 never match. Nothing is followed: `dir` must be a root
    /// that follows no symlink. The cheap checks come first; files are read only when
    /// every path, type, mode and size matched.
    pub fn matches(&self, dir: &Root) -> Result<bool, OpenError> {
        let st = rustix::fs::fstat(dir.fd())?;
        if st.st_mode & 0o7777 != DIR_MODE {
            return Ok(false);
        }
        let mut found: BTreeMap<String, (EntryType, u32)> = BTreeMap::new();
        if !list_tree(dir, "", &mut found)? {
            return Ok(false);
        }
        if found.len() != self.0.len() {
            return Ok(false);
        }
        let mut files = Vec::new();
        for ((rel, (kind, mode)), (want_rel, want)) in found.iter().zip(&self.0) {
            if rel != want_rel {
                return Ok(false);
            }
            match (want, kind) {
                (Listed::Dir, EntryType::Dir) if *mode == DIR_MODE => {}
                (Listed::Symlink { target }, EntryType::Symlink) => {
                    if dir.read_link(rel)? != target.as_bytes() {
                        return Ok(false);
                    }
                }
                (Listed::File { size, digest }, EntryType::File) if *mode == FILE_MODE => {
                    if digest.algorithm() != Algorithm::Sha256 {
                        return Ok(false);
                    }
                    files.push((rel, *size, digest));
                }
                _ => return Ok(false),
            }
        }
        // Sizes first: a changed file of another size costs no read.
        let mut opened = Vec::with_capacity(files.len());
        for (rel, size, digest) in files {
            let o = dir.open_file(rel)?;
            if o.size != size {
                return Ok(false);
            }
            opened.push((o, digest));
        }
        let mut buf = vec![0u8; READ_SIZE];
        for (mut o, digest) in opened {
            let mut h = Hasher::sha256();
            loop {
                let n = match o.file.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(OpenError::Io(e)),
                };
                h.update(&buf[..n]);
            }
            if h.len() != o.size || h.finish() != *digest {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// Every path below `rel` in `root` with its type and permission bits; false if a name is
/// not UTF-8 (never one ocipack writes).
fn list_tree(
    root: &Root,
    rel: &str,
    out: &mut BTreeMap<String, (EntryType, u32)>,
) -> Result<bool, OpenError> {
    let Some(list) = root.list_dir_modes(rel)? else {
        return Ok(false);
    };
    for (name, t, mode) in list {
        let Ok(name) = String::from_utf8(name) else {
            return Ok(false);
        };
        let path = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        if t == EntryType::Dir && !list_tree(root, &path, out)? {
            return Ok(false);
        }
        out.insert(path, (t, mode));
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::{PermissionsExt, symlink};

    fn file(bytes: &[u8]) -> Listed {
        Listed::File {
            size: bytes.len() as u64,
            digest: Digest::sha256_of(bytes),
        }
    }

    /// A directory `a/` holding `a/f` ("one") and `l -> a/f`, with ocipack's modes.
    fn sample(dir: &std::path::Path) -> Listing {
        fs::create_dir_all(dir.join("a")).unwrap();
        fs::write(dir.join("a/f"), b"one").unwrap();
        symlink("a/f", dir.join("l")).unwrap();
        for (p, m) in [("", 0o755), ("a", 0o755), ("a/f", 0o644)] {
            fs::set_permissions(dir.join(p), fs::Permissions::from_mode(m)).unwrap();
        }
        Listing(BTreeMap::from([
            ("a".to_string(), Listed::Dir),
            ("a/f".to_string(), file(b"one")),
            (
                "l".to_string(),
                Listed::Symlink {
                    target: "a/f".into(),
                },
            ),
        ]))
    }

    fn root(dir: &std::path::Path) -> Root {
        Root::open_with(dir, crate::store::root::Follow::Never).unwrap()
    }

    #[test]
    fn only_exactly_the_listed_tree_matches() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("out");
        let listing = sample(&d);
        assert!(listing.matches(&root(&d)).unwrap());
        // Round trip through JSON.
        let json = serde_json::to_string(&listing).unwrap();
        assert_eq!(serde_json::from_str::<Listing>(&json).unwrap(), listing);

        type Change = fn(&std::path::Path);
        let changes: [(&str, Change); 8] = [
            ("same size, other bytes", |d| {
                fs::write(d.join("a/f"), b"two").unwrap()
            }),
            ("other size", |d| {
                fs::write(d.join("a/f"), b"three").unwrap()
            }),
            ("an extra file", |d| fs::write(d.join("x"), b"").unwrap()),
            ("a missing file", |d| fs::remove_file(d.join("l")).unwrap()),
            ("another link target", |d| {
                fs::remove_file(d.join("l")).unwrap();
                symlink("a/g", d.join("l")).unwrap();
            }),
            ("a file's mode", |d| {
                fs::set_permissions(d.join("a/f"), fs::Permissions::from_mode(0o600)).unwrap()
            }),
            ("the output's mode", |d| {
                fs::set_permissions(d, fs::Permissions::from_mode(0o700)).unwrap()
            }),
            ("a name that is not UTF-8", |d| {
                use std::os::unix::ffi::OsStrExt;
                fs::write(d.join(std::ffi::OsStr::from_bytes(b"\xff")), b"").unwrap()
            }),
        ];
        for (what, change) in changes {
            let d = t.path().join(what);
            let listing = sample(&d);
            change(&d);
            assert!(!listing.matches(&root(&d)).unwrap(), "{what}");
        }
    }
}
