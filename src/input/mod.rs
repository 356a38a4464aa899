//! Collecting a layer's entries from the inputs: a directory tree, single files, an existing tar.
//!
//! Inputs are gathered into a sorted map first and only then streamed out, so the tar's
//! order depends on nothing but path bytes: not on `readdir` order, not on the order in
//! which inputs were given, not on the machine. Every normalisation below says why it exists.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::store::walk::{InputTree, Stamp, WalkError, changed_message, unchanged};
use crate::tar::name::{check_limits, normalize_path};
use crate::tar::write::{HeaderFields, Kind, TarWriter};
use crate::timestamp::Timestamp;

pub mod decompress;
mod disk;
mod owners;
mod tar;

pub use owners::{InputKind, Owners, OwnersPolicy};

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
    /// Whose owners each input's entries get (names are always dropped): see
    /// [`OwnersPolicy`]. `--file` inputs and generated files are always 0:0.
    pub owners: OwnersPolicy,
    /// Keep extended attributes (as pax `SCHILY.xattr.*` records).
    pub xattrs: bool,
    /// Keep character and block devices (otherwise skipped with a warning).
    pub devices: bool,
}

/// Where a file's bytes come from when the tar is written.
#[derive(Debug, Clone)]
enum Source {
    /// A file below an input tree, read through [`TreeReader`] and checked to be the file
    /// the walk found, unchanged.
    Disk {
        /// Which of the tree's [`InputTree`]s.
        tree: usize,
        /// Its path below that tree.
        rel: Vec<u8>,
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
    header: HeaderFields,
    source: Source,
    /// Which input defined this entry, for error messages.
    origin: String,
    /// Entries sharing a key are one file with several names (hard links).
    link_group: Option<(u64, u64)>,
    /// The entry's own mtime before clamping (None: use `created`).
    mtime: Option<i64>,
}

/// The entries of one layer, sorted by path bytes.
pub struct Tree {
    opts: TreeOptions,
    /// The input trees read so far (`--rootfs`), held open.
    trees: Vec<Arc<InputTree>>,
    nodes: BTreeMap<Vec<u8>, Node>,
    spool: Option<(File, PathBuf)>,
    spool_len: u64,
    next_group: u64,
    warnings: Vec<String>,
    /// Setuid and setgid entries whose owner would change, refused together by `finish`.
    raised: Vec<owners::Raised>,
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
            nodes: BTreeMap::new(),
            spool: None,
            spool_len: 0,
            next_group: 0,
            warnings: Vec::new(),
            raised: Vec::new(),
        }
    }

    /// Warnings collected so far (skipped sockets, devices, ...).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Number of entries, implicit parent directories not yet included.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// True if no entry was added.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    fn insert(&mut self, node: Node) -> Result<()> {
        check_limits(&node.header.path).map_err(|why| {
            Error::input(
                show(&node.header.path),
                format!("the name {why} (from {})", node.origin),
            )
        })?;
        let path = node.header.path.clone();
        if let Some(prev) = self.nodes.get(&path) {
            // The same directory named by two inputs is one directory; the first definition
            // wins. Anything else is ambiguous and refused rather than silently overridden.
            if prev.header.kind == Kind::Dir && node.header.kind == Kind::Dir {
                return Ok(());
            }
            return Err(Error::input(
                show(&path),
                format!("given twice, by {} and by {}", prev.origin, node.origin),
            ));
        }
        self.nodes.insert(path, node);
        Ok(())
    }

    /// Adds a file whose bytes are given (for generated content), owner 0:0, mtime `created`.
    pub fn add_bytes(&mut self, dest: &str, bytes: Vec<u8>, mode: u32) -> Result<()> {
        let path = check_dest(dest).map_err(|p| Error::input(dest, p))?;
        self.insert(Node {
            header: HeaderFields {
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
            origin: format!("generated {dest}"),
            link_group: None,
            mtime: None,
        })
    }

    /// One warning for the entries named like whiteouts (a base name starting `.wh.`), the
    /// first by path and how many: in the image's only layer they hide nothing, and
    /// unpackers (umoci, containerd) drop them, so the image would not hold what the input
    /// does. `ocipack verify` warns of the same layer.
    fn warn_of_whiteouts(&mut self) {
        let mut whiteouts = self.nodes.keys().filter(|p| {
            let base = p.rsplit(|&b| b == b'/').next().unwrap_or(p);
            base.starts_with(b".wh.")
        });
        let Some(first) = whiteouts.next() else {
            return;
        };
        let more = whiteouts.count();
        let (what, them) = if more == 0 {
            (String::new(), "it")
        } else {
            (
                format!(" ({} such entries; this is the first)", more + 1),
                "them",
            )
        };
        self.warnings.push(format!(
            "{}: named like a whiteout{what}: the image's only layer has nothing below it to \
             hide, and unpackers (umoci, containerd) drop whiteouts, so the image will not hold \
             {them}",
            show(first)
        ));
    }

    /// Completes the tree (implicit parent directories, clamped mtimes, hard links resolved
    /// to the first name in sorted order) and returns the entries in stream order. The names
    /// of one file must carry one mode, owner and set of xattrs, else it is an input error:
    /// extractors disagree on which name's entry a hard-linked file gets.
    pub fn finish(mut self) -> Result<EntryList> {
        if !self.raised.is_empty() {
            return Err(owners::refusal(&self.opts.owners, &self.raised));
        }
        let created = self.opts.created.unix();
        // Implicit parents: 0755, owner 0:0, mtime = created.
        let paths: Vec<Vec<u8>> = self.nodes.keys().cloned().collect();
        for p in &paths {
            let mut parent = p.as_slice();
            while let Some(i) = parent.iter().rposition(|&b| b == b'/') {
                parent = &parent[..i];
                match self.nodes.get(parent) {
                    Some(n) if n.header.kind == Kind::Dir => break,
                    Some(n) => {
                        return Err(Error::input(
                            show(p),
                            format!(
                                "its parent {} (from {}) is not a directory",
                                show(parent),
                                n.origin
                            ),
                        ));
                    }
                    None => {
                        self.nodes.insert(
                            parent.to_vec(),
                            Node {
                                header: HeaderFields {
                                    path: parent.to_vec(),
                                    kind: Kind::Dir,
                                    mode: 0o755,
                                    uid: 0,
                                    gid: 0,
                                    mtime: 0,
                                    xattrs: Vec::new(),
                                },
                                source: Source::Nothing,
                                origin: "an implicit parent directory".into(),
                                link_group: None,
                                mtime: None,
                            },
                        );
                    }
                }
            }
        }
        self.warn_of_whiteouts();
        let mut first_of_group: HashMap<(u64, u64), HeaderFields> = HashMap::new();
        let mut entries = Vec::with_capacity(self.nodes.len());
        for (_, mut node) in std::mem::take(&mut self.nodes) {
            node.header.mtime = match (self.opts.mtime, node.mtime) {
                (MtimeMode::Clamp, Some(m)) => m.clamp(0, created) as u64,
                _ => created as u64,
            };
            if let Some(g) = node.link_group {
                if let Some(first) = first_of_group.get(&g) {
                    one_file(first, &node)?;
                    node.header.kind = Kind::Hardlink(first.path.clone());
                    node.source = Source::Nothing;
                } else {
                    first_of_group.insert(g, node.header.clone());
                }
            }
            entries.push((node.header, node.source));
        }
        Ok(EntryList {
            entries,
            trees: self.trees,
            spool: self.spool.map(|(f, _)| f),
            warnings: self.warnings,
        })
    }
}

/// The names of one file (a hard link group) carry one mode, one owner and one set of
/// xattrs: `node` must agree with `first`, the group's first name in path order. Extractors
/// disagree on which name's header a hard-linked file gets (GNU tar and umoci keep the one
/// that created it, containerd and podman apply each link entry's in turn, so the last one
/// wins), and the layer gives the content to the first name in path order, not to the one
/// the input gave it to: a difference would let the order decide what the file is. A tar
/// whose link entry says mode 0755 owner 1000 for a setuid-root file would have become a
/// setuid-root file to podman, which reads that very input as a plain one.
fn one_file(first: &HeaderFields, node: &Node) -> Result<()> {
    let h = &node.header;
    let header =
        |h: &HeaderFields| format!("mode {:04o}, owner {}:{}", h.mode & 0o7777, h.uid, h.gid);
    let how = if (first.mode, first.uid, first.gid) != (h.mode, h.uid, h.gid) {
        format!(
            ": {} has {}, {} has {}",
            show(&first.path),
            header(first),
            show(&h.path),
            header(h)
        )
    } else if first.xattrs != h.xattrs {
        " in their extended attributes".to_string()
    } else {
        return Ok(());
    };
    Err(Error::input(
        &node.origin,
        format!(
            "{} and {} are one file (hard links) whose entries differ{how}; extractors \
             disagree on which entry the file gets, so every name of a file must carry the \
             same mode, owner and extended attributes",
            show(&first.path),
            show(&h.path)
        ),
    ))
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
pub struct EntryList {
    entries: Vec<(HeaderFields, Source)>,
    trees: Vec<Arc<InputTree>>,
    spool: Option<File>,
    warnings: Vec<String>,
}

impl EntryList {
    /// The entry headers in stream order.
    pub fn headers(&self) -> impl Iterator<Item = &HeaderFields> {
        self.entries.iter().map(|(h, _)| h)
    }

    /// Warnings collected while reading the inputs.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Total size of file contents (an estimate of the tar size, for progress reports).
    pub fn content_bytes(&self) -> u64 {
        self.entries
            .iter()
            .map(|(h, _)| {
                if let Kind::File { size } = h.kind {
                    size
                } else {
                    0
                }
            })
            .sum()
    }

    /// Streams the tar into `out` and returns it.
    pub fn write_tar<W: Write>(&self, out: W) -> Result<W> {
        let mut tw = TarWriter::new(out);
        let mut readers: Vec<_> = self.trees.iter().map(|t| t.reader()).collect();
        for (h, src) in &self.entries {
            let res = match src {
                Source::Nothing => tw.append(h, None),
                Source::Bytes(b) => tw.append(h, Some(&mut &b[..])),
                Source::Disk { tree, rel, stamp } => {
                    let r = &mut readers[*tree];
                    let mut f = r.open(rel, stamp).map_err(walk_error)?;
                    // Unbuffered: the tar writer already reads in large pieces.
                    let shown = || self.trees[*tree].shown(rel);
                    tw.append(h, Some(&mut f))
                        .map_err(|e| content_error(e, &shown()))?;
                    r.check_unchanged(rel, &f, stamp).map_err(walk_error)?;
                    continue;
                }
                Source::Open { file, stamp, shown } => {
                    let mut r = PositionReader {
                        file,
                        pos: 0,
                        left: stamp.size,
                    };
                    tw.append(h, Some(&mut r))
                        .map_err(|e| content_error(e, shown))?;
                    unchanged(file, stamp)
                        .map_err(|why| Error::input(shown, changed_message(&why)))?;
                    continue;
                }
                Source::Spool(off) => {
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
                        pos: *off,
                        left: size,
                    };
                    tw.append(h, Some(&mut r))
                }
            };
            res.map_err(|e| Error::io_on("writing layer entry", show(&h.path), e))?;
        }
        tw.finish()
            .map_err(|e| Error::io_on("writing", "the end of the layer's tar stream", e))
    }
}

/// A walk or read failure as an input error (exit 2).
fn walk_error(e: WalkError) -> Error {
    match e {
        WalkError::Io(path, e) => Error::input(path, format!("cannot be read: {e}")),
        WalkError::Unsupported(path, why) => Error::input(path, why),
        WalkError::Changed(..) | WalkError::TooDeep(_) => {
            let text = e.to_string();
            match text.split_once(": ") {
                Some((what, problem)) => Error::input(what, problem),
                None => Error::input("input", text),
            }
        }
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
    fn dest_checks() {
        assert_eq!(check_dest("/hello").unwrap(), b"hello");
        for bad in ["hello", "/a/../b", "/", "/dir/"] {
            assert!(check_dest(bad).is_err(), "{bad}");
        }
    }
}
