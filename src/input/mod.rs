//! Collecting a layer's entries from the inputs: a directory tree, single files, an existing tar.
//!
//! Inputs are gathered into a list first, sorted, and only then streamed out, so the tar's
//! order depends on nothing but path bytes: not on `readdir` order, not on the order in
//! which inputs were given, not on the machine. The list is compact (`entries.rs`): a tree
//! of a million files fits in a few hundred MiB. Every normalisation below says why it
//! exists.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::store::walk::{InputTree, Stamp, changed_message, unchanged};
use crate::tar::write::{Header, Kind, TarWriter};
use crate::timestamp::Timestamp;

pub mod decompress;
mod disk;
mod entries;
mod tar;

use entries::{Content, Entries, FinishError};

/// How entry mtimes are derived from `created`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MtimeMode {
    /// `min(file mtime, created)`, like `tar --clamp-mtime`: files touched by a checkout after
    /// `created` all get `created`, older files keep their real time.
    #[default]
    Clamp,
    /// Every entry gets `created`.
    Fixed,
}

/// Options that decide how inputs become entries.
#[derive(Debug, Clone)]
pub struct TreeOptions {
    /// The image's creation time; the upper bound of every mtime.
    pub created: Timestamp,
    /// How mtimes are derived.
    pub mtime: MtimeMode,
    /// Keep numeric uid/gid from the inputs (names are always dropped); otherwise 0:0.
    pub preserve_owners: bool,
    /// Keep extended attributes (as pax `SCHILY.xattr.*` records).
    pub xattrs: bool,
    /// Keep character and block devices (otherwise skipped with a warning).
    pub devices: bool,
}

/// Where a file's bytes come from when the tar is written.
#[derive(Debug, Clone)]
enum Source {
    /// A file below an input tree, read through [`TreeReader`] and checked to be the file
    /// the walk found, unchanged. Its path below that tree is the entry's path.
    Disk {
        /// Which of the tree's [`InputTree`]s.
        tree: usize,
        /// What the walk found.
        stamp: Stamp,
    },
    /// A file opened when it was added (`--file`), read from offset 0 and checked unchanged.
    Open {
        /// The open file.
        file: Arc<File>,
        /// What it was when opened.
        stamp: Stamp,
        /// Its name in messages.
        shown: String,
    },
    /// A range of the spool file holding the contents of an input tar.
    Spool(u64),
    /// Bytes held in memory (small generated files).
    Bytes(std::sync::Arc<[u8]>),
    /// No content (not a regular file).
    Nothing,
}

#[derive(Debug, Clone)]
struct Node {
    header: Header,
    source: Source,
    /// Which input defined this entry, for error messages (shared by its entries).
    origin: Arc<str>,
    /// Entries sharing a key are one file with several names (hard links).
    link_group: Option<(u64, u64)>,
    /// The entry's own mtime before clamping (None: use `created`).
    mtime: Option<i64>,
}

/// The entries of one layer, sorted by path bytes once finished.
pub struct Tree {
    opts: TreeOptions,
    /// The input trees read so far (`--rootfs`), held open.
    trees: Vec<Arc<InputTree>>,
    entries: Entries,
    spool: Option<(File, PathBuf)>,
    spool_len: u64,
    next_group: u64,
    warnings: Vec<String>,
}

/// Normalises a path inside the image: `/usr/bin/x`, `./usr/bin/x/` and `usr//bin/x` all
/// become `usr/bin/x`. `..` is refused (it could climb out of the container's root when
/// extracted); absolute names are refused when `allow_absolute` is false (tar inputs).
pub fn normalize_path(raw: &[u8], allow_absolute: bool) -> std::result::Result<Vec<u8>, String> {
    if raw.contains(&0) {
        return Err("contains a NUL byte".into());
    }
    if !allow_absolute && raw.first() == Some(&b'/') {
        return Err("is absolute".into());
    }
    let mut out = Vec::with_capacity(raw.len());
    for comp in raw.split(|&b| b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => return Err("contains a '..' component".into()),
            c => {
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(c);
            }
        }
    }
    Ok(out)
}

/// An entry's path in the image, for messages (escaped).
fn show(p: &[u8]) -> String {
    format!("/{}", crate::show::bytes(p))
}

impl Tree {
    /// An empty tree.
    pub fn new(opts: TreeOptions) -> Self {
        Tree {
            opts,
            trees: Vec::new(),
            entries: Entries::default(),
            spool: None,
            spool_len: 0,
            next_group: 0,
            warnings: Vec::new(),
        }
    }

    /// Warnings collected so far (skipped sockets, devices, ...).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Number of entries added (a path given twice counts twice), implicit parent
    /// directories not yet included.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True if no entry was added.
    pub fn is_empty(&self) -> bool {
        self.entries.len() == 0
    }

    /// Adds `node`; returns its index. A path given twice is found when the tree is
    /// finished.
    fn insert(&mut self, node: Node) -> Result<u32> {
        crate::tar::read::check_limits(&node.header.path).map_err(|why| {
            Error::input(
                show(&node.header.path),
                format!("the name {why} (from {})", node.origin),
            )
        })?;
        Ok(self.entries.push(node))
    }

    fn owner(&self, uid: u64, gid: u64) -> (u64, u64) {
        if self.opts.preserve_owners {
            (uid, gid)
        } else {
            (0, 0)
        }
    }

    /// Adds a file whose bytes are given (for generated content), owner 0:0, mtime `created`.
    pub fn add_bytes(&mut self, dest: &str, bytes: Vec<u8>, mode: u32) -> Result<()> {
        let path = check_dest(dest).map_err(|p| Error::input(dest, p))?;
        self.insert(Node {
            header: Header {
                path,
                kind: Kind::File {
                    size: bytes.len() as u64,
                },
                mode,
                uid: 0,
                gid: 0,
                mtime: 0,
                xattrs: Vec::new(),
            },
            source: Source::Bytes(bytes.into()),
            origin: format!("generated {dest}").into(),
            link_group: None,
            mtime: None,
        })
        .map(|_| ())
    }

    /// Completes the tree (sorted; the same directory named by several inputs is one
    /// directory, the first definition winning, and any other path given twice is refused;
    /// implicit parent directories added; hard links resolved to the first name in sorted
    /// order) and returns the entries in stream order. Mtimes are clamped as they are
    /// streamed.
    pub fn finish(mut self) -> Result<Layer> {
        let implicit: Arc<str> = "an implicit parent directory".into();
        // Implicit parents: 0755, owner 0:0, mtime = created.
        let parent = |path: Vec<u8>| Node {
            header: Header {
                path,
                kind: Kind::Dir,
                mode: 0o755,
                uid: 0,
                gid: 0,
                mtime: 0,
                xattrs: Vec::new(),
            },
            source: Source::Nothing,
            origin: Arc::clone(&implicit),
            link_group: None,
            mtime: None,
        };
        self.entries.finish(parent).map_err(|e| match e {
            // The same directory named by two inputs is one directory; anything else is
            // ambiguous and refused rather than silently overridden.
            FinishError::Twice(path, first, second) => Error::input(
                show(&path),
                format!("given twice, by {first} and by {second}"),
            ),
            FinishError::ParentNotDir(path, parent, origin) => Error::input(
                show(&path),
                format!(
                    "its parent {} (from {origin}) is not a directory",
                    show(&parent)
                ),
            ),
        })?;
        Ok(Layer {
            entries: self.entries,
            trees: self.trees,
            spool: self.spool.map(|(f, _)| f),
            warnings: self.warnings,
            created: self.opts.created.unix(),
            mtime: self.opts.mtime,
        })
    }
}

fn check_dest(dest: &str) -> std::result::Result<Vec<u8>, String> {
    if !dest.starts_with('/') {
        return Err("DEST must be an absolute path in the image, like /hello".into());
    }
    if dest.split('/').any(|c| c == "..") {
        return Err("DEST must not contain '..'".into());
    }
    if dest.ends_with('/') {
        return Err("DEST must name a file, not a directory".into());
    }
    let p = normalize_path(dest.as_bytes(), true)?;
    if p.is_empty() {
        return Err("DEST must name a file below /".into());
    }
    Ok(p)
}

/// A finished, sorted list of entries, ready to be streamed as a tar.
pub struct Layer {
    entries: Entries,
    trees: Vec<Arc<InputTree>>,
    spool: Option<File>,
    warnings: Vec<String>,
    /// The image's creation time, and how entry mtimes relate to it.
    created: i64,
    mtime: MtimeMode,
}

impl Layer {
    /// An entry's mtime in the stream, from its own (`None`: it has none).
    fn mtime(&self, own: Option<i64>) -> u64 {
        match (self.mtime, own) {
            (MtimeMode::Clamp, Some(m)) => m.clamp(0, self.created) as u64,
            _ => self.created as u64,
        }
    }

    /// The entry headers in stream order.
    pub fn headers(&self) -> impl Iterator<Item = Header> + '_ {
        self.entries.order().iter().map(|&i| {
            let mut h = empty_header();
            self.entries.header(i, &mut h, |m| self.mtime(m));
            h
        })
    }

    /// Warnings collected while reading the inputs.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Total size of file contents (an estimate of the tar size, for progress reports).
    pub fn content_bytes(&self) -> u64 {
        let e = &self.entries;
        e.order().iter().map(|&i| e.content_size(i)).sum()
    }

    /// Streams the tar into `out` and returns it.
    pub fn write_tar<W: Write>(&self, out: W) -> Result<W> {
        let mut tw = TarWriter::new(out);
        let mut readers: Vec<_> = self.trees.iter().map(|t| t.reader()).collect();
        // One header, refilled for every entry.
        let mut h = empty_header();
        for &i in self.entries.order() {
            let res = match self.entries.header(i, &mut h, |m| self.mtime(m)) {
                Content::Nothing => tw.append(&h, None),
                Content::Other(Source::Bytes(b)) => tw.append(&h, Some(&mut &b[..])),
                Content::Disk { tree, stamp } => {
                    let rel = &h.path;
                    let r = &mut readers[tree];
                    let mut f = r.open(rel, &stamp).map_err(disk::walk_error)?;
                    // Unbuffered: the tar writer already reads in large pieces.
                    let shown = || self.trees[tree].shown(rel);
                    tw.append(&h, Some(&mut f))
                        .map_err(|e| content_error(e, &shown()))?;
                    r.check_unchanged(rel, &f, &stamp)
                        .map_err(disk::walk_error)?;
                    continue;
                }
                Content::Other(Source::Open { file, stamp, shown }) => {
                    let mut r = PositionReader {
                        file,
                        pos: 0,
                        left: stamp.size,
                    };
                    tw.append(&h, Some(&mut r))
                        .map_err(|e| content_error(e, shown))?;
                    unchanged(file, stamp)
                        .map_err(|why| Error::input(shown, changed_message(&why)))?;
                    continue;
                }
                Content::Spool(off) => {
                    let f = self
                        .spool
                        .as_ref()
                        .ok_or_else(|| Error::internal("spool file missing"))?;
                    let size = if let Kind::File { size } = h.kind {
                        size
                    } else {
                        0
                    };
                    let mut r = PositionReader {
                        file: f,
                        pos: off,
                        left: size,
                    };
                    tw.append(&h, Some(&mut r))
                }
                Content::Other(_) => return Err(Error::internal("an entry's source is misfiled")),
            };
            res.map_err(|e| Error::io("writing layer entry", show(&h.path), e))?;
        }
        tw.finish()
            .map_err(|e| Error::io("writing layer", "tar end", e))
    }
}

/// A header to fill ([`Entries::header`]).
fn empty_header() -> Header {
    Header {
        path: Vec::new(),
        kind: Kind::Dir,
        mode: 0,
        uid: 0,
        gid: 0,
        mtime: 0,
        xattrs: Vec::new(),
    }
}

/// A file whose content ended early or grew while it was copied is an input that changed.
fn content_error(e: io::Error, shown: &str) -> Error {
    match e.kind() {
        io::ErrorKind::UnexpectedEof | io::ErrorKind::InvalidData => {
            Error::input(shown, format!("{e}; build again once the input is stable"))
        }
        _ => Error::input(shown, format!("cannot be read: {e}")),
    }
}

/// Reads `left` bytes of a file from `pos` on, without moving its offset.
struct PositionReader<'a> {
    file: &'a File,
    pos: u64,
    left: u64,
}

impl Read for PositionReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.pos)?;
        self.pos += n as u64;
        self.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize() {
        assert_eq!(
            normalize_path(b"./usr//bin/x/", false).unwrap(),
            b"usr/bin/x"
        );
        assert_eq!(normalize_path(b"/usr/bin", true).unwrap(), b"usr/bin");
        assert!(normalize_path(b"/etc/passwd", false).is_err());
        assert!(normalize_path(b"a/../../etc", false).is_err());
        assert!(normalize_path(b"..", false).is_err());
    }

    #[test]
    fn dest_checks() {
        assert_eq!(check_dest("/hello").unwrap(), b"hello");
        for bad in ["hello", "/a/../b", "/", "/dir/"] {
            assert!(check_dest(bad).is_err(), "{bad}");
        }
    }

    use proptest::prelude::*;
    use std::collections::{BTreeMap, HashMap};

    /// One added entry of the property below: path, directory or not, input, link group.
    type Added = (Vec<u8>, bool, usize, Option<u64>);

    /// What the list's order and headers were when it was a map of nodes (before the compact
    /// list): a path given twice is refused unless both are directories (the first wins),
    /// implicit parents are added, the first name of a link group in path order keeps the
    /// content. Returns (path, kind, origin) in stream order, or the path of an error.
    fn reference(added: &[Added]) -> Result<Vec<(Vec<u8>, Kind, String)>, ()> {
        let mut map: BTreeMap<Vec<u8>, (bool, String, Option<u64>)> = BTreeMap::new();
        for (path, dir, input, group) in added {
            if let Some(prev) = map.get(path) {
                if prev.0 && *dir {
                    continue;
                }
                return Err(());
            }
            map.insert(path.clone(), (*dir, format!("input {input}"), *group));
        }
        let paths: Vec<Vec<u8>> = map.keys().cloned().collect();
        for p in &paths {
            let mut parent = p.as_slice();
            while let Some(i) = parent.iter().rposition(|&b| b == b'/') {
                parent = &parent[..i];
                match map.get(parent) {
                    Some(n) if n.0 => break,
                    Some(_) => return Err(()),
                    None => {
                        map.insert(
                            parent.to_vec(),
                            (true, "an implicit parent directory".into(), None),
                        );
                    }
                }
            }
        }
        let mut first: HashMap<u64, Vec<u8>> = HashMap::new();
        Ok(map
            .into_iter()
            .map(|(path, (dir, origin, group))| {
                let kind = match (dir, group) {
                    (true, _) => Kind::Dir,
                    (false, Some(g)) => match first.get(&g) {
                        Some(f) => Kind::Hardlink(f.clone()),
                        None => {
                            first.insert(g, path.clone());
                            Kind::File { size: 1 }
                        }
                    },
                    (false, None) => Kind::File { size: 1 },
                };
                (path, kind, origin)
            })
            .collect())
    }

    fn added() -> impl Strategy<Value = Vec<Added>> {
        // Short names over an alphabet where '-' and '.' sort before '/' and 'a' after it,
        // so that a directory's contents and its neighbours interleave.
        let name = proptest::collection::vec(prop_oneof![Just(b'a'), Just(b'-'), Just(b'.')], 1..3);
        let path = proptest::collection::vec(name, 1..4).prop_map(|c| c.join(&b'/'));
        proptest::collection::vec(
            (
                path,
                any::<bool>(),
                0..3usize,
                proptest::option::of(0..3u64),
            ),
            0..40,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        /// The compact list orders, deduplicates, completes and links entries exactly as
        /// the map it replaced did.
        #[test]
        fn entries_stream_as_the_sorted_map_did(added in added()) {
            let mut t = Tree::new(TreeOptions {
                created: "@1700000000".parse::<Timestamp>().unwrap(),
                mtime: MtimeMode::Clamp,
                preserve_owners: false,
                xattrs: false,
                devices: false,
            });
            for (path, dir, input, group) in &added {
                t.insert(Node {
                    header: Header {
                        path: path.clone(),
                        kind: if *dir { Kind::Dir } else { Kind::File { size: 1 } },
                        mode: 0o644,
                        uid: 0,
                        gid: 0,
                        mtime: 0,
                        xattrs: Vec::new(),
                    },
                    source: if *dir { Source::Nothing } else { Source::Bytes(vec![b'x'].into()) },
                    origin: format!("input {input}").into(),
                    link_group: group.filter(|_| !*dir).map(|g| (u64::MAX, g)),
                    mtime: Some(5),
                })
                .unwrap();
            }
            let expected = reference(&added
                .iter()
                .map(|(p, d, i, g)| (p.clone(), *d, *i, g.filter(|_| !*d)))
                .collect::<Vec<_>>());
            match (t.finish(), expected) {
                (Ok(layer), Ok(expected)) => {
                    let got: Vec<(Vec<u8>, Kind)> =
                        layer.headers().map(|h| (h.path, h.kind)).collect();
                    let want: Vec<(Vec<u8>, Kind)> =
                        expected.into_iter().map(|(p, k, _)| (p, k)).collect();
                    prop_assert_eq!(got, want);
                }
                (Err(_), Err(())) => {}
                (got, want) => prop_assert!(false, "got {:?}, want {:?}", got.map(|_| ()), want.map(|_| ())),
            }
        }
    }
}
