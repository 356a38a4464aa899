//! Collecting a layer's entries from the inputs: a directory tree, single files, an existing tar.
//!
//! Inputs are gathered into a sorted map first and only then streamed out, so the tar's
//! order depends on nothing but path bytes: not on `readdir` order, not on the order in
//! which inputs were given, not on the machine. Every normalisation below says why it exists.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::tarball::{Header, Kind, TarWriter};
use crate::timestamp::Timestamp;

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
    /// A file on disk, opened without following symlinks and checked to have the recorded size.
    Disk(PathBuf),
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
    nodes: BTreeMap<Vec<u8>, Node>,
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

fn show(p: &[u8]) -> String {
    format!("/{}", String::from_utf8_lossy(p))
}

impl Tree {
    /// An empty tree.
    pub fn new(opts: TreeOptions) -> Self {
        Tree {
            opts,
            nodes: BTreeMap::new(),
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

    /// Number of entries, implicit parent directories not yet included.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// True if no entry was added.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    fn insert(&mut self, node: Node) -> Result<()> {
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

    fn owner(&self, uid: u64, gid: u64) -> (u64, u64) {
        if self.opts.preserve_owners {
            (uid, gid)
        } else {
            (0, 0)
        }
    }

    /// Adds every entry below `dir` (not `dir` itself), without following symlinks.
    /// Permission bits are kept as they are, including setuid, setgid and sticky.
    pub fn add_rootfs(&mut self, dir: &Path) -> Result<()> {
        let meta = fs::metadata(dir).map_err(|e| Error::input_io("reading --rootfs", dir, e))?;
        if !meta.is_dir() {
            return Err(Error::input(
                format!("--rootfs {}", dir.display()),
                "is not a directory",
            ));
        }
        let origin = format!("--rootfs {}", dir.display());
        let mut stack: Vec<(PathBuf, Vec<u8>)> = vec![(dir.to_path_buf(), Vec::new())];
        while let Some((abs, rel)) = stack.pop() {
            let rd =
                fs::read_dir(&abs).map_err(|e| Error::input_io("reading directory", &abs, e))?;
            for ent in rd {
                let ent = ent.map_err(|e| Error::input_io("reading directory", &abs, e))?;
                let name = ent.file_name();
                let mut child_rel = rel.clone();
                if !child_rel.is_empty() {
                    child_rel.push(b'/');
                }
                child_rel.extend_from_slice(name.as_bytes());
                let child_abs = ent.path();
                if let Some(node) = self.node_from_disk(&child_abs, child_rel.clone(), &origin)? {
                    let is_dir = node.header.kind == Kind::Dir;
                    self.insert(node)?;
                    if is_dir {
                        stack.push((child_abs, child_rel));
                    }
                }
            }
        }
        Ok(())
    }

    fn node_from_disk(&mut self, abs: &Path, rel: Vec<u8>, origin: &str) -> Result<Option<Node>> {
        let m = fs::symlink_metadata(abs).map_err(|e| Error::input_io("reading", abs, e))?;
        let ft = m.file_type();
        use std::os::unix::fs::FileTypeExt;
        let mut source = Source::Nothing;
        let mut link_group = None;
        let kind = if ft.is_file() {
            source = Source::Disk(abs.to_path_buf());
            if m.nlink() > 1 {
                link_group = Some((m.dev(), m.ino()));
            }
            Kind::File { size: m.len() }
        } else if ft.is_dir() {
            Kind::Dir
        } else if ft.is_symlink() {
            let t = fs::read_link(abs).map_err(|e| Error::input_io("reading symlink", abs, e))?;
            Kind::Symlink(t.as_os_str().as_bytes().to_vec())
        } else if ft.is_fifo() {
            Kind::Fifo
        } else if ft.is_socket() {
            self.warnings.push(format!(
                "{}: skipped a socket (sockets cannot be stored in a layer)",
                abs.display()
            ));
            return Ok(None);
        } else if ft.is_char_device() || ft.is_block_device() {
            if !self.opts.devices {
                self.warnings.push(format!(
                    "{}: skipped a device node (pass --devices to keep device nodes)",
                    abs.display()
                ));
                return Ok(None);
            }
            let rdev = m.rdev();
            let (major, minor) = (rustix::fs::major(rdev), rustix::fs::minor(rdev));
            if ft.is_char_device() {
                Kind::CharDevice { major, minor }
            } else {
                Kind::BlockDevice { major, minor }
            }
        } else {
            return Err(Error::input(
                abs.display().to_string(),
                "has an unknown file type",
            ));
        };
        // Symlink permission bits mean nothing on Linux and differ between filesystems.
        let mode = if matches!(kind, Kind::Symlink(_)) {
            0o777
        } else {
            m.mode() & 0o7777
        };
        let (uid, gid) = self.owner(u64::from(m.uid()), u64::from(m.gid()));
        let xattrs = if self.opts.xattrs {
            read_xattrs(abs)?
        } else {
            Vec::new()
        };
        Ok(Some(Node {
            header: Header {
                path: rel,
                kind,
                mode,
                uid,
                gid,
                mtime: 0,
                xattrs,
            },
            source,
            origin: origin.to_string(),
            link_group,
            mtime: Some(m.mtime()),
        }))
    }

    /// Adds one file from `src` at `dest` (an absolute path in the image). Without `mode`,
    /// the file gets 0755 if its owner may execute it, else 0644: the rest of its on-disk
    /// bits depend on the umask of whoever checked it out. The owner is always 0:0.
    pub fn add_file(&mut self, src: &Path, dest: &str, mode: Option<u32>) -> Result<()> {
        let what = format!("--file {}:{dest}", src.display());
        let path = check_dest(dest).map_err(|p| Error::input(&what, p))?;
        let m = fs::metadata(src).map_err(|e| Error::input_io("reading", src, e))?;
        if !m.is_file() {
            return Err(Error::input(
                src.display().to_string(),
                "is not a regular file",
            ));
        }
        let mode = mode.unwrap_or(if m.mode() & 0o100 != 0 { 0o755 } else { 0o644 });
        self.insert(Node {
            header: Header {
                path,
                kind: Kind::File { size: m.len() },
                mode,
                uid: 0,
                gid: 0,
                mtime: 0,
                xattrs: Vec::new(),
            },
            source: Source::Disk(
                fs::canonicalize(src).map_err(|e| Error::input_io("reading", src, e))?,
            ),
            origin: what.clone(),
            link_group: None,
            mtime: Some(m.mtime()),
        })
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
            origin: format!("generated {dest}"),
            link_group: None,
            mtime: None,
        })
    }

    /// Adds the entries of an existing tar (plain, gzip or zstd, detected from its first
    /// bytes), re-packed entry by entry. Nothing in it is trusted: names are normalised and
    /// checked, owners dropped unless preserved, mtimes clamped, unsupported entry types
    /// refused. File contents are spooled to a temporary file in `spool_dir`, so memory use
    /// does not grow with the tar.
    pub fn add_tar(&mut self, tar_path: &Path, spool_dir: &Path) -> Result<()> {
        let what = format!("--tar {}", tar_path.display());
        let file = File::open(tar_path).map_err(|e| Error::input_io("opening", tar_path, e))?;
        let reader = crate::compress::decompressing_reader(BufReader::new(file))
            .map_err(|e| Error::input_io("reading", tar_path, e))?;
        let mut archive = tar::Archive::new(reader);
        let entries = archive
            .entries()
            .map_err(|e| Error::input(&what, format!("not a readable tar: {e}")))?;
        // Hard links name their target by path; targets are resolved once all entries are in.
        let mut links: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        for entry in entries {
            let mut entry = entry.map_err(|e| Error::input(&what, format!("corrupt tar: {e}")))?;
            let raw = entry.path_bytes().into_owned();
            let path = normalize_path(&raw, false).map_err(|p| {
                Error::input(
                    &what,
                    format!("entry {:?} {p}", String::from_utf8_lossy(&raw)),
                )
            })?;
            let h = entry.header();
            let et = h.entry_type();
            let num = |r: io::Result<u64>, field: &str| {
                r.map_err(|e| {
                    Error::input(&what, format!("entry {}: bad {field}: {e}", show(&path)))
                })
            };
            let mode = num(h.mode().map(u64::from), "mode")? as u32 & 0o7777;
            let (uid, gid) = (num(h.uid(), "uid")?, num(h.gid(), "gid")?);
            let mtime = num(h.mtime(), "mtime")?;
            let dev = |h: &tar::Header| -> Result<(u32, u32)> {
                let major = h.device_major().ok().flatten().unwrap_or(0);
                let minor = h.device_minor().ok().flatten().unwrap_or(0);
                Ok((major, minor))
            };
            let link_target = || -> Result<Vec<u8>> {
                entry_link(&entry).ok_or_else(|| {
                    Error::input(&what, format!("entry {} has no link target", show(&path)))
                })
            };
            if path.is_empty() || et == tar::EntryType::XGlobalHeader {
                // The archive's root ("./") is created by the runtime; a pax global header
                // (git archive writes one holding the commit id) only carries metadata that
                // ocipack normalises away.
                continue;
            }
            let mut source = Source::Nothing;
            let kind = match et {
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    let size = entry.size();
                    source = Source::Spool(self.spool_copy(&mut entry, size, spool_dir, &what)?);
                    Kind::File { size }
                }
                tar::EntryType::Directory => Kind::Dir,
                tar::EntryType::Symlink => Kind::Symlink(link_target()?),
                tar::EntryType::Link => {
                    let target = normalize_path(&link_target()?, false).map_err(|p| {
                        Error::input(&what, format!("hard link {} target {p}", show(&path)))
                    })?;
                    links.push((path.clone(), target.clone()));
                    Kind::Hardlink(target)
                }
                tar::EntryType::Fifo => Kind::Fifo,
                tar::EntryType::Char | tar::EntryType::Block => {
                    if !self.opts.devices {
                        self.warnings.push(format!(
                            "{what}: skipped device node {} (pass --devices to keep device nodes)",
                            show(&path)
                        ));
                        continue;
                    }
                    let (major, minor) = dev(h)?;
                    if et == tar::EntryType::Char {
                        Kind::CharDevice { major, minor }
                    } else {
                        Kind::BlockDevice { major, minor }
                    }
                }
                other => {
                    return Err(Error::input(
                        &what,
                        format!("entry {} has unsupported type {other:?}", show(&path)),
                    ));
                }
            };
            let xattrs = if self.opts.xattrs {
                tar_xattrs(&mut entry)
            } else {
                Vec::new()
            };
            let mode = if matches!(kind, Kind::Symlink(_)) {
                0o777
            } else {
                mode
            };
            let (uid, gid) = self.owner(uid, gid);
            self.insert(Node {
                header: Header {
                    path,
                    kind,
                    mode,
                    uid,
                    gid,
                    mtime: 0,
                    xattrs,
                },
                source,
                origin: what.clone(),
                link_group: None,
                mtime: Some(i64::try_from(mtime).unwrap_or(i64::MAX)),
            })?;
        }
        // Turn each hard link into a member of its target's link group, so that `finish`
        // can give the content to whichever name sorts first.
        for (link, target) in links {
            let tnode = self.nodes.get(&target).ok_or_else(|| {
                Error::input(
                    &what,
                    format!(
                        "hard link {} points to {}, which is not in the archive",
                        show(&link),
                        show(&target)
                    ),
                )
            })?;
            let (size, source, group) = match (&tnode.header.kind, &tnode.source) {
                (Kind::File { size }, src) => (*size, src.clone(), tnode.link_group),
                _ => {
                    return Err(Error::input(
                        &what,
                        format!(
                            "hard link {} points to {}, which is not a regular file",
                            show(&link),
                            show(&target)
                        ),
                    ));
                }
            };
            let group = match group {
                Some(g) => g,
                None => {
                    self.next_group += 1;
                    let g = (u64::MAX, self.next_group);
                    if let Some(t) = self.nodes.get_mut(&target) {
                        t.link_group = Some(g);
                    }
                    g
                }
            };
            if let Some(l) = self.nodes.get_mut(&link) {
                l.header.kind = Kind::File { size };
                l.source = source;
                l.link_group = Some(group);
            }
        }
        Ok(())
    }

    fn spool_copy(&mut self, r: &mut dyn Read, size: u64, dir: &Path, what: &str) -> Result<u64> {
        if self.spool.is_none() {
            let path = dir.join(format!(".ocipack-spool-{}", std::process::id()));
            let f = fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .map_err(|e| Error::io("creating spool file", &path, e))?;
            // Unlinked at once: the spool never outlives the process.
            fs::remove_file(&path).map_err(|e| Error::io("removing spool file", &path, e))?;
            self.spool = Some((f, path));
        }
        let Some((f, spool_path)) = self.spool.as_mut() else {
            return Err(Error::usage("internal: spool file missing"));
        };
        let offset = self.spool_len;
        f.seek(SeekFrom::Start(offset))
            .map_err(|e| Error::io("writing spool file", &*spool_path, e))?;
        let n = io::copy(&mut r.take(size), f)
            .map_err(|e| Error::input(what, format!("reading content: {e}")))?;
        if n != size {
            return Err(Error::input(
                what,
                format!("truncated: an entry promised {size} bytes, {n} followed"),
            ));
        }
        self.spool_len += size;
        Ok(offset)
    }

    /// Completes the tree (implicit parent directories, clamped mtimes, hard links resolved
    /// to the first name in sorted order) and returns the entries in stream order.
    pub fn finish(mut self) -> Result<Layer> {
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
                                header: Header {
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
        let mut first_of_group: HashMap<(u64, u64), Vec<u8>> = HashMap::new();
        let mut entries = Vec::with_capacity(self.nodes.len());
        for (path, mut node) in std::mem::take(&mut self.nodes) {
            node.header.mtime = match (self.opts.mtime, node.mtime) {
                (MtimeMode::Clamp, Some(m)) => m.clamp(0, created) as u64,
                _ => created as u64,
            };
            if let Some(g) = node.link_group {
                if let Some(first) = first_of_group.get(&g) {
                    node.header.kind = Kind::Hardlink(first.clone());
                    node.source = Source::Nothing;
                } else {
                    first_of_group.insert(g, path.clone());
                }
            }
            entries.push((node.header, node.source));
        }
        Ok(Layer {
            entries,
            spool: self.spool.map(|(f, _)| f),
            warnings: self.warnings,
        })
    }
}

fn entry_link<R: Read>(e: &tar::Entry<'_, R>) -> Option<Vec<u8>> {
    e.link_name_bytes().map(|c| c.into_owned())
}

fn tar_xattrs<R: Read>(e: &mut tar::Entry<'_, R>) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    if let Ok(Some(exts)) = e.pax_extensions() {
        for x in exts.flatten() {
            if let Some(name) = x.key().ok().and_then(|k| k.strip_prefix("SCHILY.xattr.")) {
                out.push((name.to_string(), x.value_bytes().to_vec()));
            }
        }
    }
    out.sort();
    out
}

fn read_xattrs(path: &Path) -> Result<Vec<(String, Vec<u8>)>> {
    let err = |e: rustix::io::Errno| Error::input_io("reading xattrs of", path, io::Error::from(e));
    let mut names = vec![0u8; 64 * 1024];
    let n = match rustix::fs::llistxattr(path, &mut names[..]) {
        Ok(n) => n,
        Err(rustix::io::Errno::NOTSUP) => return Ok(Vec::new()),
        Err(e) => return Err(err(e)),
    };
    let mut out = Vec::new();
    for name in names[..n].split(|&b| b == 0).filter(|s| !s.is_empty()) {
        let name_str = String::from_utf8_lossy(name).into_owned();
        let mut value = vec![0u8; 64 * 1024];
        let len = rustix::fs::lgetxattr(path, name, &mut value[..]).map_err(err)?;
        value.truncate(len);
        out.push((name_str, value));
    }
    out.sort();
    Ok(out)
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
    entries: Vec<(Header, Source)>,
    spool: Option<File>,
    warnings: Vec<String>,
}

impl Layer {
    /// The entry headers in stream order.
    pub fn headers(&self) -> impl Iterator<Item = &Header> {
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
        for (h, src) in &self.entries {
            let res = match src {
                Source::Nothing => tw.append(h, None),
                Source::Bytes(b) => tw.append(h, Some(&mut &b[..])),
                Source::Disk(p) => {
                    let mut f = fs::OpenOptions::new()
                        .read(true)
                        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
                        .open(p)
                        .map_err(|e| Error::input_io("opening", p, e))?;
                    // Unbuffered: the tar writer already reads in large pieces.
                    tw.append(h, Some(&mut f)).map_err(|e| match e.kind() {
                        io::ErrorKind::UnexpectedEof | io::ErrorKind::InvalidData => {
                            Error::input(p.display().to_string(), e.to_string())
                        }
                        _ => Error::input_io("reading", p, e),
                    })?;
                    continue;
                }
                Source::Spool(off) => {
                    let f = self
                        .spool
                        .as_ref()
                        .ok_or_else(|| Error::usage("internal: spool file missing"))?;
                    let size = if let Kind::File { size } = h.kind {
                        size
                    } else {
                        0
                    };
                    let mut r = SpoolReader {
                        file: f,
                        pos: *off,
                        left: size,
                    };
                    tw.append(h, Some(&mut r))
                }
            };
            res.map_err(|e| Error::io("writing layer entry", show(&h.path), e))?;
        }
        tw.finish()
            .map_err(|e| Error::io("writing layer", "tar end", e))
    }
}

struct SpoolReader<'a> {
    file: &'a File,
    pos: u64,
    left: u64,
}

impl Read for SpoolReader<'_> {
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
}
