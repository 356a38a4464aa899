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
use crate::store::walk::{InputTree, Stamp, WalkError, changed_message, unchanged};
use crate::tar::name::{check_limits, normalize_path};
use crate::tar::write::{HeaderFields, Kind, TarWriter};
use crate::timestamp::Timestamp;

pub mod decompress;
mod disk;
mod entries;
mod owners;
mod tar;

use entries::{Content, Entries, FinishError};
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
    /// A range of a plain input tar, read in place: the offset of the content in the input
    /// tars laid end to end ([`InputTar::base`]); its length is the entry's size.
    InTar(u64),
    /// Bytes held in memory (small generated files).
    Bytes(std::sync::Arc<[u8]>),
    /// No content (not a regular file).
    Nothing,
}

#[derive(Debug, Clone)]
struct Node {
    header: HeaderFields,
    source: Source,
    /// Which input defined this entry, for error messages (shared by its entries).
    origin: Arc<str>,
    /// Entries sharing a key are one file with several names (hard links).
    link_group: Option<(u64, u64)>,
    /// The entry's own mtime before clamping (None: use `created`).
    mtime: Option<i64>,
}

/// A plain (uncompressed) input tar whose file contents are read in place, held open:
/// they are read from it when the layer is written, and it must then still be the file it
/// was when listed ([`Stamp`]).
#[derive(Debug)]
struct InputTar {
    file: File,
    stamp: Stamp,
    /// Where this tar starts among the input tars laid end to end (past the end of the one
    /// before it), so that one offset names a tar and a place in it.
    base: u64,
    /// The input as the user wrote it, for messages.
    origin: Arc<str>,
}

/// The entries of one layer, sorted by path bytes once finished.
pub struct Tree {
    opts: TreeOptions,
    /// The input trees read so far (`--rootfs`), held open.
    trees: Vec<Arc<InputTree>>,
    /// The plain input tars read in place so far, in order.
    tars: Vec<InputTar>,
    entries: Entries,
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
            tars: Vec::new(),
            entries: Entries::default(),
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
        check_limits(&node.header.path).map_err(|why| {
            Error::input(
                show(&node.header.path),
                format!("the name {why} (from {})", node.origin),
            )
        })?;
        Ok(self.entries.push(node))
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
            origin: format!("generated {dest}").into(),
            link_group: None,
            mtime: None,
        })
        .map(|_| ())
    }

    /// One warning for the entries named like whiteouts (a base name starting `.wh.`), the
    /// first by path and how many: in the image's only layer they hide nothing, and
    /// unpackers (umoci, containerd) drop them, so the image would not hold what the input
    /// does. `ocipack verify` warns of the same layer.
    fn warn_of_whiteouts(&mut self) {
        let mut whiteouts = self.entries.paths().filter(|p| {
            let base = p.rsplit(|&b| b == b'/').next().unwrap_or(p);
            base.starts_with(b".wh.")
        });
        let Some(first) = whiteouts.next() else {
            return;
        };
        let first = show(first);
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
            "{first}: named like a whiteout{what}: the image's only layer has nothing below it \
             to hide, and unpackers (umoci, containerd) drop whiteouts, so the image will not \
             hold {them}"
        ));
    }

    /// Completes the tree (sorted; the same directory named by several inputs is one
    /// directory, the first definition winning, and any other path given twice is refused;
    /// implicit parent directories added; hard links resolved to the first name in sorted
    /// order) and returns the entries in stream order. Mtimes are clamped as they are
    /// streamed. The names of one file must carry one mode, owner and set of xattrs, else it
    /// is an input error: extractors disagree on which name's entry a hard-linked file gets.
    pub fn finish(mut self) -> Result<EntryList> {
        self.entries.sort().map_err(|e| self.finish_error(e))?;
        if !self.raised.is_empty() {
            return Err(owners::refusal(&self.opts.owners, &self.raised));
        }
        let implicit: Arc<str> = "an implicit parent directory".into();
        // Implicit parents: 0755, owner 0:0, mtime = created.
        let parent = |path: Vec<u8>| Node {
            header: HeaderFields {
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
        self.entries
            .complete(parent)
            .map_err(|e| self.finish_error(e))?;
        self.warn_of_whiteouts();
        Ok(EntryList {
            entries: self.entries,
            trees: self.trees,
            tars: self.tars,
            spool: self.spool.map(|(f, _)| f),
            warnings: self.warnings,
            created: self.opts.created.unix(),
            mtime: self.opts.mtime,
        })
    }
}

impl Tree {
    /// The input error for why the entry list could not be finished.
    fn finish_error(&self, e: FinishError) -> Error {
        match e {
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
            FinishError::NotOneFile(first, other) => {
                let header = |i| {
                    let mut h = empty_header();
                    self.entries.header(i, &mut h, |_| 0);
                    h
                };
                one_file(&header(first), &header(other), self.entries.origin(other))
            }
        }
    }
}

/// The names of one file (a hard link group) carry one mode, one owner and one set of
/// xattrs: `h` (from `origin`) must agree with `first`, the group's first name in path
/// order; this is the error when it does not. Extractors disagree on which name's header a
/// hard-linked file gets (GNU tar and umoci keep the one that created it, containerd and
/// podman apply each link entry's in turn, so the last one wins), and the layer gives the
/// content to the first name in path order, not to the one the input gave it to: a
/// difference would let the order decide what the file is. A tar whose link entry says
/// mode 0755 owner 1000 for a setuid-root file would have become a setuid-root file to
/// podman, which reads that very input as a plain one.
fn one_file(first: &HeaderFields, h: &HeaderFields, origin: &str) -> Error {
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
    } else {
        " in their extended attributes".to_string()
    };
    Error::input(
        origin,
        format!(
            "{} and {} are one file (hard links) whose entries differ{how}; extractors \
             disagree on which entry the file gets, so every name of a file must carry the \
             same mode, owner and extended attributes",
            show(&first.path),
            show(&h.path)
        ),
    )
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
    entries: Entries,
    trees: Vec<Arc<InputTree>>,
    tars: Vec<InputTar>,
    spool: Option<File>,
    warnings: Vec<String>,
    /// The image's creation time, and how entry mtimes relate to it.
    created: i64,
    mtime: MtimeMode,
}

impl EntryList {
    /// An entry's mtime in the stream, from its own (`None`: it has none).
    fn mtime(&self, own: Option<i64>) -> u64 {
        match (self.mtime, own) {
            (MtimeMode::Clamp, Some(m)) => m.clamp(0, self.created) as u64,
            _ => self.created as u64,
        }
    }

    /// The entry headers in stream order.
    pub fn headers(&self) -> impl Iterator<Item = HeaderFields> + '_ {
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
                    let mut f = r.open(rel, &stamp).map_err(walk_error)?;
                    // Unbuffered: the tar writer already reads in large pieces.
                    let shown = || self.trees[tree].shown(rel);
                    tw.append(&h, Some(&mut f))
                        .map_err(|e| content_error(e, &shown()))?;
                    r.check_unchanged(rel, &f, &stamp).map_err(walk_error)?;
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
                Content::InTar(off) => {
                    self.append_in_place(&mut tw, &h, off)?;
                    continue;
                }
                Content::Other(_) => return Err(Error::internal("an entry's source is misfiled")),
            };
            res.map_err(|e| Error::io_on("writing layer entry", show(&h.path), e))?;
        }
        tw.finish()
            .map_err(|e| Error::io_on("writing", "the end of the layer's tar stream", e))
    }
}

impl EntryList {
    /// Appends the file `h` whose content is at `off` of the input tars laid end to end,
    /// read with positioned reads, and checks its tar unchanged since it was listed: a tar
    /// rewritten after the listing must not give a layer that mixes its old and new
    /// content (the headers came from the old one). Checked after every entry, as the
    /// files of a tree are, so the last check follows the last read.
    fn append_in_place<W: Write>(
        &self,
        tw: &mut TarWriter<W>,
        h: &HeaderFields,
        off: u64,
    ) -> Result<()> {
        let t = self
            .tars
            .partition_point(|t| t.base <= off)
            .checked_sub(1)
            .and_then(|i| self.tars.get(i))
            .ok_or_else(|| Error::internal("an input tar's range is misfiled"))?;
        let size = if let Kind::File { size } = h.kind {
            size
        } else {
            0
        };
        let mut r = Noted {
            inner: PositionReader {
                file: &t.file,
                pos: off - t.base,
                left: size,
            },
            failed: false,
        };
        let changed = |why: String| Error::input(&*t.origin, changed_message(&why));
        if let Err(e) = tw.append(h, Some(&mut r)) {
            // A tar cut short reads short: say that it changed, when it did.
            unchanged(&t.file, &t.stamp).map_err(changed)?;
            let content = r.failed
                || matches!(
                    e.kind(),
                    io::ErrorKind::UnexpectedEof | io::ErrorKind::InvalidData
                );
            return Err(if content {
                content_error(e, &t.origin)
            } else {
                Error::io_on("writing layer entry", show(&h.path), e)
            });
        }
        unchanged(&t.file, &t.stamp).map_err(changed)
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

/// A header to fill ([`Entries::header`]).
fn empty_header() -> HeaderFields {
    HeaderFields {
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

/// A reader that notes whether reading failed (and not what it was read for).
struct Noted<R> {
    inner: R,
    failed: bool,
}

impl<R: Read> Read for Noted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).inspect_err(|_| self.failed = true)
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

    use proptest::prelude::*;
    use std::collections::{BTreeMap, HashMap};

    /// One added entry of the property below: path, directory or not, input, link group,
    /// and the variants of its mode, owner, xattrs and mtime.
    #[derive(Debug, Clone)]
    struct Added {
        path: Vec<u8>,
        dir: bool,
        input: usize,
        group: Option<u64>,
        mode: u32,
        owner: (u64, u64),
        xattrs: Vec<(String, Vec<u8>)>,
        mtime: Option<i64>,
    }

    impl Added {
        fn header(&self) -> HeaderFields {
            HeaderFields {
                path: self.path.clone(),
                kind: if self.dir {
                    Kind::Dir
                } else {
                    Kind::File { size: 1 }
                },
                mode: self.mode,
                uid: self.owner.0,
                gid: self.owner.1,
                mtime: 0,
                xattrs: self.xattrs.clone(),
            }
        }
    }

    const CREATED: i64 = 1_700_000_000;

    /// What the list's order and headers were when it was a map of nodes (before the compact
    /// list): a path given twice is refused unless both are directories (the first wins),
    /// implicit parents are added, the first name of a link group in path order keeps the
    /// content and every other name must carry its mode, owner and xattrs; mtimes clamped
    /// to `CREATED`. Returns the headers in stream order, or `Err` for any refusal.
    fn reference(added: &[Added]) -> Result<Vec<HeaderFields>, ()> {
        let mut map: BTreeMap<Vec<u8>, &Added> = BTreeMap::new();
        for a in added {
            if let Some(prev) = map.get(&a.path) {
                if prev.dir && a.dir {
                    continue;
                }
                return Err(());
            }
            map.insert(a.path.clone(), a);
        }
        let mut headers: BTreeMap<Vec<u8>, (HeaderFields, Option<u64>)> = map
            .into_iter()
            .map(|(p, a)| {
                let mut h = a.header();
                h.mtime = a.mtime.map_or(CREATED, |m| m.clamp(0, CREATED)) as u64;
                (p, (h, a.group.filter(|_| !a.dir)))
            })
            .collect();
        let paths: Vec<Vec<u8>> = headers.keys().cloned().collect();
        for p in &paths {
            let mut parent = p.as_slice();
            while let Some(i) = parent.iter().rposition(|&b| b == b'/') {
                parent = &parent[..i];
                match headers.get(parent) {
                    Some((h, _)) if h.kind == Kind::Dir => break,
                    Some(_) => return Err(()),
                    None => {
                        let h = HeaderFields {
                            path: parent.to_vec(),
                            kind: Kind::Dir,
                            mode: 0o755,
                            uid: 0,
                            gid: 0,
                            mtime: CREATED as u64,
                            xattrs: Vec::new(),
                        };
                        headers.insert(parent.to_vec(), (h, None));
                    }
                }
            }
        }
        let mut first: HashMap<u64, HeaderFields> = HashMap::new();
        let mut out = Vec::new();
        for (_, (mut h, group)) in headers {
            if let Some(g) = group {
                match first.get(&g) {
                    Some(f) => {
                        if (f.mode, f.uid, f.gid, &f.xattrs) != (h.mode, h.uid, h.gid, &h.xattrs) {
                            return Err(());
                        }
                        h.kind = Kind::Hardlink(f.path.clone());
                    }
                    None => {
                        first.insert(g, h.clone());
                    }
                }
            }
            out.push(h);
        }
        Ok(out)
    }

    fn added() -> impl Strategy<Value = Vec<Added>> {
        // Short names over an alphabet where '-' and '.' sort before '/' and 'a' after it,
        // so that a directory's contents and its neighbours interleave.
        let name = proptest::collection::vec(prop_oneof![Just(b'a'), Just(b'-'), Just(b'.')], 1..3);
        let path = proptest::collection::vec(name, 1..4).prop_map(|c| c.join(&b'/'));
        // Few variants of each field, so that the names of a file often agree; an owner
        // beyond 32 bits and mtimes beyond `CREATED` and below 0 among them.
        let mode = prop_oneof![Just(0o644u32), Just(0o4755)];
        let owner = prop_oneof![Just((0u64, 0u64)), Just((1000, 42)), Just((1 << 40, 7))];
        let xattrs = prop_oneof![
            Just(Vec::new()),
            Just(vec![("user.a".to_string(), b"1".to_vec())]),
        ];
        let mtime = proptest::option::of(prop_oneof![Just(-5i64), Just(5), Just(CREATED + 9)]);
        proptest::collection::vec(
            (
                path,
                any::<bool>(),
                0..3usize,
                proptest::option::of(0..3u64),
                mode,
                owner,
                xattrs,
                mtime,
            ),
            0..40,
        )
        .prop_map(|v| {
            v.into_iter()
                .map(
                    |(path, dir, input, group, mode, owner, xattrs, mtime)| Added {
                        path,
                        dir,
                        input,
                        group: group.filter(|_| !dir),
                        mode,
                        owner,
                        xattrs,
                        mtime,
                    },
                )
                .collect()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        /// The compact list orders, deduplicates, completes and links entries, and carries
        /// their modes, owners, xattrs and mtimes, exactly as the map it replaced did.
        #[test]
        fn entries_stream_as_the_sorted_map_did(added in added()) {
            let mut t = Tree::new(TreeOptions {
                created: format!("@{CREATED}").parse::<Timestamp>().unwrap(),
                mtime: MtimeMode::Clamp,
                owners: OwnersPolicy::default(),
                xattrs: true,
                devices: false,
            });
            for a in &added {
                t.insert(Node {
                    header: a.header(),
                    source: if a.dir { Source::Nothing } else { Source::Bytes(vec![b'x'].into()) },
                    origin: format!("input {}", a.input).into(),
                    link_group: a.group.map(|g| (u64::MAX, g)),
                    mtime: a.mtime,
                })
                .unwrap();
            }
            match (t.finish(), reference(&added)) {
                (Ok(list), Ok(want)) => {
                    let got: Vec<HeaderFields> = list.headers().collect();
                    prop_assert_eq!(got, want);
                }
                (Err(_), Err(())) => {}
                (got, want) => prop_assert!(false, "got {:?}, want {:?}", got.map(|_| ()), want.map(|_| ())),
            }
        }
    }
}
