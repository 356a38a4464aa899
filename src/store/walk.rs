//! Input trees (`--rootfs`, `[[input]] rootfs`), walked and read by directory descriptors.
//!
//! Contract: the tree's top directory is opened as the user named it; everything below is
//! reached relative to its parent directory's descriptor with `O_NOFOLLOW`, so a symlink is
//! recorded as a symlink and never followed, and what an entry is (type, size, owner, mode)
//! comes from `fstat` of the descriptor just opened, never from a path. Special files are
//! opened with `O_PATH` only: a FIFO or a device is never opened for reading.
//!
//! The walk records the identity (device, inode, size, mtime, ctime) of every directory and
//! file. When the content is read later, every directory on the way is opened again with
//! `O_NOFOLLOW` and must be the same directory, and the file must be the same file, unchanged;
//! after the read it must still be unchanged. A directory swapped for a symlink, a file
//! replaced or rewritten in place between the walk and the read, or while it is read, is an
//! error naming the file — never a layer holding a file from elsewhere or a torn one.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{FileType, Mode, OFlags, Stat};

use super::root::{kind_name, open_dir_at};
use crate::show;

/// The most components a name below a tree may have (a layer's names are limited to
/// [`crate::tar::name::MAX_NAME_COMPONENTS`]).
pub const MAX_DEPTH: usize = crate::tar::name::MAX_NAME_COMPONENTS;

/// What identifies a file's content at one moment: if any of these changed, so may have
/// the bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// Device.
    pub dev: u64,
    /// Inode.
    pub ino: u64,
    /// Size.
    pub size: u64,
    /// Modification time (seconds, nanoseconds).
    pub mtime: (i64, i64),
    /// Status change time (seconds, nanoseconds): changes on every write, even one that
    /// restores the mtime.
    pub ctime: (i64, i64),
}

impl Stamp {
    /// The stamp of a `stat` result.
    pub fn of(st: &Stat) -> Stamp {
        Stamp {
            dev: st.st_dev,
            ino: st.st_ino,
            size: u64::try_from(st.st_size).unwrap_or(0),
            mtime: (st.st_mtime, st.st_mtime_nsec as i64),
            ctime: (st.st_ctime, st.st_ctime_nsec as i64),
        }
    }

    /// The stamp of an open file.
    pub fn of_fd(fd: BorrowedFd<'_>) -> rustix::io::Result<Stamp> {
        rustix::fs::fstat(fd).map(|st| Stamp::of(&st))
    }
}

/// One entry found by the walk.
#[derive(Debug, Clone)]
pub struct Walked {
    /// Its path below the tree (`usr/bin/env`).
    pub rel: Vec<u8>,
    /// What it is.
    pub kind: FileType,
    /// Permission bits including setuid, setgid and sticky.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Number of hard links.
    pub nlink: u64,
    /// Device number (devices only).
    pub rdev: u64,
    /// Identity and times.
    pub stamp: Stamp,
    /// A symlink's target.
    pub link: Option<Vec<u8>>,
    /// Extended attributes, sorted by name (when asked for).
    pub xattrs: Vec<(String, Vec<u8>)>,
}

/// Why a walk or a read failed.
#[derive(Debug)]
pub enum WalkError {
    /// The operating system refused (the path, the error).
    Io(String, std::io::Error),
    /// Something changed between the walk and the read, or during the read (the path, what).
    Changed(String, String),
    /// A name deeper than [`MAX_DEPTH`] components.
    TooDeep(String),
    /// Something a layer cannot hold (the path, why).
    Unsupported(String, String),
}

impl std::fmt::Display for WalkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WalkError::Io(p, e) => write!(f, "{p}: {e}"),
            WalkError::Changed(p, what) => write!(f, "{p}: {}", changed_message(what)),
            WalkError::Unsupported(p, why) => write!(f, "{p}: {why}"),
            WalkError::TooDeep(p) => write!(
                f,
                "{p}: more than {MAX_DEPTH} directory levels; a layer's names are limited to {MAX_DEPTH} components"
            ),
        }
    }
}

/// One directory of the walk's stack.
struct Frame {
    fd: OwnedFd,
    rel: Vec<u8>,
    names: Vec<Vec<u8>>,
}

/// An input tree, held open.
#[derive(Debug)]
pub struct InputTree {
    fd: OwnedFd,
    path: PathBuf,
    /// Every directory walked, by its path below the tree: (device, inode).
    dirs: HashMap<Vec<u8>, (u64, u64)>,
}

fn join(rel: &[u8], name: &[u8]) -> Vec<u8> {
    let mut out = rel.to_vec();
    if !out.is_empty() {
        out.push(b'/');
    }
    out.extend_from_slice(name);
    out
}

impl InputTree {
    /// Opens the directory `path` (as the user named it).
    pub fn open(path: &Path) -> std::result::Result<InputTree, std::io::Error> {
        let fd = rustix::fs::openat(
            rustix::fs::CWD,
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(InputTree {
            fd,
            path: path.to_path_buf(),
            dirs: HashMap::new(),
        })
    }

    /// The tree's top directory as the user named it.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `rel` below the tree, escaped for a message.
    pub fn shown(&self, rel: &[u8]) -> String {
        show::path(&self.path.join(OsStr::from_bytes(rel)))
    }

    fn io(&self, rel: &[u8], e: impl Into<std::io::Error>) -> WalkError {
        WalkError::Io(self.shown(rel), e.into())
    }

    /// Visits every entry below the tree (not the top directory itself), depth first, in
    /// `readdir` order (callers sort), without following a symlink.
    pub fn walk(
        &mut self,
        xattrs: bool,
        visit: &mut dyn FnMut(Walked) -> std::result::Result<(), WalkError>,
    ) -> std::result::Result<(), WalkError> {
        let top = rustix::io::fcntl_dupfd_cloexec(&self.fd, 0).map_err(|e| self.io(b"", e))?;
        let st = rustix::fs::fstat(&top).map_err(|e| self.io(b"", e))?;
        self.dirs.insert(Vec::new(), (st.st_dev, st.st_ino));
        // Depth first with an explicit stack (one open directory per level, at most
        // MAX_DEPTH): no recursion, so a deep tree cannot overflow a worker thread's stack.
        let mut stack = vec![self.open_frame(top, Vec::new())?];
        while let Some(frame) = stack.last_mut() {
            let Some(name) = frame.names.pop() else {
                stack.pop();
                continue;
            };
            let next = self.visit_entry(frame.fd.as_fd(), &frame.rel, name, xattrs, visit)?;
            if let Some((fd, child)) = next {
                let next = self.open_frame(fd, child)?;
                stack.push(next);
            }
        }
        Ok(())
    }

    /// A directory to walk: its descriptor, path and entry names (popped from the end).
    fn open_frame(&self, fd: OwnedFd, rel: Vec<u8>) -> std::result::Result<Frame, WalkError> {
        let mut names = Vec::new();
        for entry in rustix::fs::Dir::read_from(fd.as_fd()).map_err(|e| self.io(&rel, e))? {
            let entry = entry.map_err(|e| self.io(&rel, e))?;
            let n = entry.file_name().to_bytes();
            if n != b"." && n != b".." {
                names.push(n.to_vec());
            }
        }
        Ok(Frame { fd, rel, names })
    }

    /// Visits the entry `name` of the directory `dir` (at `rel`); returns the directory
    /// opened, and its path, when it is one to descend into.
    fn visit_entry(
        &mut self,
        dir: BorrowedFd<'_>,
        rel: &[u8],
        name: Vec<u8>,
        xattrs: bool,
        visit: &mut dyn FnMut(Walked) -> std::result::Result<(), WalkError>,
    ) -> std::result::Result<Option<(OwnedFd, Vec<u8>)>, WalkError> {
        let child = join(rel, &name);
        if child.split(|&b| b == b'/').count() > MAX_DEPTH {
            return Err(WalkError::TooDeep(self.shown(&child)));
        }
        let os = OsStr::from_bytes(&name);
        // O_PATH: a FIFO or a device is not opened, a symlink is not followed.
        let handle = match rustix::fs::openat(
            dir,
            os,
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(h) => h,
            Err(rustix::io::Errno::NOENT) => {
                return Err(WalkError::Changed(
                    self.shown(&child),
                    "it disappeared".into(),
                ));
            }
            Err(e) => return Err(self.io(&child, e)),
        };
        let st = rustix::fs::fstat(&handle).map_err(|e| self.io(&child, e))?;
        let kind = FileType::from_raw_mode(st.st_mode);
        let link = if kind == FileType::Symlink {
            Some(
                rustix::fs::readlinkat(&handle, "", Vec::new())
                    .map_err(|e| self.io(&child, e))?
                    .into_bytes(),
            )
        } else {
            None
        };
        let sub = if kind == FileType::Directory {
            let fd = open_dir_at(dir, os).map_err(|e| self.io(&child, e))?;
            let again = rustix::fs::fstat(&fd).map_err(|e| self.io(&child, e))?;
            if (again.st_dev, again.st_ino) != (st.st_dev, st.st_ino) {
                return Err(WalkError::Changed(
                    self.shown(&child),
                    "it was replaced".into(),
                ));
            }
            self.dirs.insert(child.clone(), (st.st_dev, st.st_ino));
            Some(fd)
        } else {
            None
        };
        let attrs = if xattrs {
            read_xattrs(handle.as_fd()).map_err(|e| match e {
                XattrError::Io(e) => self.io(&child, e),
                XattrError::Name(name) => WalkError::Unsupported(
                    self.shown(&child),
                    format!(
                        "has an extended attribute whose name is not UTF-8 ({}); a layer \
                         records xattrs in pax headers, whose names are UTF-8",
                        show::bytes(&name)
                    ),
                ),
            })?
        } else {
            Vec::new()
        };
        visit(Walked {
            rel: child.clone(),
            kind,
            mode: st.st_mode & 0o7777,
            uid: st.st_uid,
            gid: st.st_gid,
            nlink: st.st_nlink,
            rdev: st.st_rdev,
            stamp: Stamp::of(&st),
            link,
            xattrs: attrs,
        })?;
        Ok(sub.map(|fd| (fd, child)))
    }

    /// A reader of the tree's files (it keeps the directories of the last file open).
    pub fn reader(&self) -> TreeReader<'_> {
        TreeReader {
            tree: self,
            chain: Vec::new(),
        }
    }
}

/// Why the extended attributes of an entry could not be read.
enum XattrError {
    /// The operating system refused.
    Io(rustix::io::Errno),
    /// A name that is not UTF-8 (pax `SCHILY.xattr.` records hold UTF-8 names).
    Name(Vec<u8>),
}

/// Reads the extended attributes of the entry `handle` (its `O_PATH` descriptor, the one
/// the walk `fstat`ed) through `/proc/self/fd/N`, which names exactly that inode — a
/// regular file, a directory, a symlink itself, a FIFO or a device, none of them opened —
/// never by its name, which may meanwhile name something else.
fn read_xattrs(handle: BorrowedFd<'_>) -> std::result::Result<Vec<(String, Vec<u8>)>, XattrError> {
    use std::os::fd::AsRawFd;
    let via = PathBuf::from(format!("/proc/self/fd/{}", handle.as_raw_fd()));
    let mut names = vec![0u8; 64 * 1024];
    let mut out = Vec::new();
    let n = match rustix::fs::listxattr(&via, &mut names[..]) {
        Ok(n) => n,
        Err(rustix::io::Errno::NOTSUP) => return Ok(out),
        Err(e) => return Err(XattrError::Io(e)),
    };
    for key in names[..n].split(|&b| b == 0).filter(|s| !s.is_empty()) {
        let name = std::str::from_utf8(key).map_err(|_| XattrError::Name(key.to_vec()))?;
        let mut value = vec![0u8; 64 * 1024];
        let len = rustix::fs::getxattr(&via, key, &mut value[..]).map_err(XattrError::Io)?;
        value.truncate(len);
        out.push((name.to_string(), value));
    }
    out.sort();
    Ok(out)
}

/// Opens files of an [`InputTree`] for reading, checking that nothing changed since the walk.
pub struct TreeReader<'a> {
    tree: &'a InputTree,
    /// The directories of the last file opened: (path below the tree, descriptor).
    chain: Vec<(Vec<u8>, OwnedFd)>,
}

impl TreeReader<'_> {
    /// Opens the regular file `rel`, which the walk found with `stamp`: every directory on the
    /// way must be the one walked, the file must be the same and unchanged.
    pub fn open(&mut self, rel: &[u8], stamp: &Stamp) -> std::result::Result<File, WalkError> {
        let tree = self.tree;
        let changed = |what: &str| WalkError::Changed(tree.shown(rel), what.to_string());
        let (parent, name) = match rel.iter().rposition(|&b| b == b'/') {
            Some(i) => (&rel[..i], &rel[i + 1..]),
            None => (&rel[..0], rel),
        };
        let comps: Vec<&[u8]> = parent
            .split(|&b| b == b'/')
            .filter(|c| !c.is_empty())
            .collect();
        // Keep the directories this file shares with the last one.
        let mut keep = 0;
        let mut prefix = Vec::new();
        for (i, c) in comps.iter().enumerate() {
            prefix = join(&prefix, c);
            match self.chain.get(i) {
                Some((p, _)) if *p == prefix => keep = i + 1,
                _ => break,
            }
        }
        self.chain.truncate(keep);
        let mut prefix = self
            .chain
            .last()
            .map(|(p, _)| p.clone())
            .unwrap_or_default();
        for c in &comps[keep..] {
            prefix = join(&prefix, c);
            let at = match self.chain.last() {
                Some((_, fd)) => fd.as_fd(),
                None => tree.fd.as_fd(),
            };
            let fd = match open_dir_at(at, OsStr::from_bytes(c)) {
                Ok(fd) => fd,
                Err(rustix::io::Errno::LOOP) | Err(rustix::io::Errno::NOTDIR) => {
                    return Err(changed(&format!(
                        "its directory {} was replaced by something else",
                        tree.shown(&prefix)
                    )));
                }
                Err(rustix::io::Errno::NOENT) => {
                    return Err(changed(&format!(
                        "its directory {} disappeared",
                        tree.shown(&prefix)
                    )));
                }
                Err(e) => return Err(tree.io(&prefix, e)),
            };
            let st = rustix::fs::fstat(&fd).map_err(|e| tree.io(&prefix, e))?;
            if tree.dirs.get(&prefix) != Some(&(st.st_dev, st.st_ino)) {
                return Err(changed(&format!(
                    "its directory {} was replaced",
                    tree.shown(&prefix)
                )));
            }
            self.chain.push((prefix.clone(), fd));
        }
        let at = match self.chain.last() {
            Some((_, fd)) => fd.as_fd(),
            None => tree.fd.as_fd(),
        };
        let fd = match rustix::fs::openat(
            at,
            OsStr::from_bytes(name),
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::LOOP) => return Err(changed("it was replaced by a symlink")),
            Err(rustix::io::Errno::NOENT) => return Err(changed("it disappeared")),
            Err(e) => return Err(tree.io(rel, e)),
        };
        let st = rustix::fs::fstat(&fd).map_err(|e| tree.io(rel, e))?;
        let kind = FileType::from_raw_mode(st.st_mode);
        if kind != FileType::RegularFile {
            return Err(changed(&format!(
                "it was replaced by a {}",
                kind_name(kind)
            )));
        }
        let now = Stamp::of(&st);
        if (now.dev, now.ino) != (stamp.dev, stamp.ino) {
            return Err(changed("it was replaced"));
        }
        if now != *stamp {
            return Err(changed("it was modified"));
        }
        let flags = rustix::fs::fcntl_getfl(&fd).map_err(|e| tree.io(rel, e))?;
        rustix::fs::fcntl_setfl(&fd, flags - OFlags::NONBLOCK).map_err(|e| tree.io(rel, e))?;
        Ok(File::from(fd))
    }

    /// Checks, after its content was read, that the file opened for `rel` is unchanged.
    pub fn check_unchanged(
        &self,
        rel: &[u8],
        file: &File,
        stamp: &Stamp,
    ) -> std::result::Result<(), WalkError> {
        unchanged(file, stamp).map_err(|what| WalkError::Changed(self.tree.shown(rel), what))
    }
}

/// The message for an input that changed during a build.
pub fn changed_message(what: &str) -> String {
    format!("changed while ocipack was building ({what}); build again once the input is stable")
}

/// `Err(what changed)` unless `file` still has `stamp`.
pub fn unchanged(file: &File, stamp: &Stamp) -> std::result::Result<(), String> {
    let now = Stamp::of_fd(file.as_fd()).map_err(|e| format!("it cannot be inspected ({e})"))?;
    if now != *stamp {
        return Err("it was modified while being read".to_string());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn walks_without_following_and_reads_unchanged_files() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        std::fs::create_dir_all(root.join("d/e")).unwrap();
        std::fs::write(root.join("d/e/f"), b"data").unwrap();
        std::fs::write(t.path().join("outside"), b"secret").unwrap();
        std::os::unix::fs::symlink("../../outside", root.join("d/link")).unwrap();
        let mut tree = InputTree::open(&root).unwrap();
        let mut seen = Vec::new();
        tree.walk(false, &mut |w| {
            seen.push((w.rel.clone(), w.kind, w.stamp, w.link.clone()));
            Ok(())
        })
        .unwrap();
        seen.sort_by(|a, b| a.0.cmp(&b.0));
        let names: Vec<&[u8]> = seen.iter().map(|s| s.0.as_slice()).collect();
        assert_eq!(names, [&b"d"[..], b"d/e", b"d/e/f", b"d/link"]);
        assert_eq!(seen[3].1, FileType::Symlink);
        assert_eq!(seen[3].3.as_deref(), Some(&b"../../outside"[..]));

        let stamp = seen[2].2;
        let mut r = tree.reader();
        let mut f = r.open(b"d/e/f", &stamp).unwrap();
        let mut s = String::new();
        f.read_to_string(&mut s).unwrap();
        assert_eq!(s, "data");
        r.check_unchanged(b"d/e/f", &f, &stamp).unwrap();

        // The directory swapped for a symlink to elsewhere: refused, nothing read.
        std::fs::create_dir_all(t.path().join("elsewhere/e")).unwrap();
        std::fs::write(t.path().join("elsewhere/e/f"), b"data").unwrap();
        std::fs::rename(root.join("d"), root.join("d.orig")).unwrap();
        std::os::unix::fs::symlink("../elsewhere", root.join("d")).unwrap();
        let mut r = tree.reader();
        let e = r.open(b"d/e/f", &stamp).unwrap_err();
        assert!(matches!(e, WalkError::Changed(..)), "{e}");

        // A file rewritten in place (same size): its ctime changed.
        std::fs::remove_file(root.join("d")).unwrap();
        std::fs::rename(root.join("d.orig"), root.join("d")).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(root.join("d/e/f"), b"DATA").unwrap();
        let e = tree.reader().open(b"d/e/f", &stamp).unwrap_err();
        assert!(e.to_string().contains("modified"), "{e}");
    }

    /// Extended attributes come from the inode the walk `fstat`ed (its `O_PATH` handle),
    /// never from whatever its name names by the time they are read; a name that is not
    /// UTF-8 is refused, never converted.
    #[test]
    fn xattrs_are_read_through_the_handle_and_names_must_be_utf8() {
        // Beside the test binary, in the target directory: a disk filesystem (the system's
        // temporary directory may be a tmpfs without user xattrs).
        let exe = std::env::current_exe().unwrap();
        let t = tempfile::tempdir_in(exe.parent().unwrap()).unwrap();
        let (a, b) = (t.path().join("a"), t.path().join("b"));
        std::fs::write(&a, b"a").unwrap();
        std::fs::write(&b, b"b").unwrap();
        std::os::unix::fs::symlink("a", t.path().join("l")).unwrap();
        let set = |p: &Path, k: &[u8], v: &[u8]| {
            rustix::fs::lsetxattr(p, k, v, rustix::fs::XattrFlags::empty())
        };
        if set(&a, b"user.which", b"a") == Err(rustix::io::Errno::NOTSUP) {
            // CI's target directory has them: there this is a failure, never a silent skip.
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "no user xattrs on the target directory's filesystem, and CI=true"
            );
            eprintln!("SKIPPED: no user xattrs on this filesystem");
            return;
        }
        set(&b, b"user.which", b"b").unwrap();
        let open = |p: &Path| {
            rustix::fs::openat(
                rustix::fs::CWD,
                p,
                OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .unwrap()
        };
        let handle = open(&a);
        // The name now names another file.
        std::fs::rename(&b, &a).unwrap();
        let got = read_xattrs(handle.as_fd()).ok().unwrap();
        assert_eq!(got, [("user.which".to_string(), b"a".to_vec())]);
        // A symlink's handle is the symlink, not its target (user xattrs are not allowed on
        // symlinks: it has none).
        let got = read_xattrs(open(&t.path().join("l")).as_fd()).ok().unwrap();
        assert!(got.iter().all(|(k, _)| !k.starts_with("user.")), "{got:?}");

        set(&a, b"user.\xff", b"v").unwrap();
        match read_xattrs(open(&a).as_fd()) {
            Err(XattrError::Name(n)) => assert_eq!(n, b"user.\xff"),
            _ => panic!("a non-UTF-8 xattr name was accepted"),
        }
    }
}
