//! Opening files beneath a directory without ever leaving it and without ever blocking.
//!
//! Whatever ocipack reads from a directory it was given — a layout, which is input from
//! strangers; a project whose outputs it will replace — may hold symlinks to `/etc/shadow`,
//! to `../../../x`, to itself, or a FIFO whose `open` would block forever. [`Root`] resolves
//! every path itself, one component at a time relative to directory descriptors: symlinks
//! are read with `readlinkat` and, depending on the root's [`Follow`] policy, either
//! followed while they stay beneath the root (absolute targets and targets that climb above
//! it are refused, the number of links followed is bounded, a loop is an error) or refused
//! outright. A file is opened with `O_NOFOLLOW | O_NONBLOCK` and checked with `fstat` to be
//! a regular file before a single byte is read. The kernel never follows a symlink for us.

use std::collections::VecDeque;
use std::ffi::OsStr;
use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustix::fs::{AtFlags, FileType, Mode, OFlags};

use super::DIR_MODE;
use crate::show;

/// How the name of [`Root::tempfile`]'s named fallback begins (`.ocipack-tmp-<pid>-<n>`).
pub(crate) const TEMPFILE_PREFIX: &str = ".ocipack-tmp-";

/// Symlinks followed while resolving one path before it is called a loop (Linux's limit).
pub const MAX_SYMLINK_HOPS: usize = 40;

/// What a [`Root`] does with symlinks met while resolving a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Follow {
    /// Follow relative symlinks that stay beneath the root (layouts: readable names and
    /// busybox-style blob symlinks are legitimate).
    Inside,
    /// Refuse every symlink (outputs of a project: a symlinked directory must never redirect
    /// a write outside the project).
    Never,
}

/// Why a path beneath the root could not be opened.
#[derive(Debug)]
pub enum OpenError {
    /// The path (or a symlink's target) does not exist.
    NotFound,
    /// A symlink has an absolute target.
    AbsoluteLink {
        /// The symlink, relative to the root.
        link: String,
        /// Its target.
        target: String,
    },
    /// Resolving climbs above the root.
    Escapes {
        /// The symlink whose target climbs out (or the path itself when it starts with `..`).
        link: String,
        /// The target.
        target: String,
    },
    /// A symlink where the root's policy is [`Follow::Never`].
    Symlink(String),
    /// More than [`MAX_SYMLINK_HOPS`] symlinks.
    Loop,
    /// A component that must be a directory is something else.
    NotADirectory(String),
    /// The final file is not a regular file.
    NotRegular(&'static str),
    /// The file is larger than the caller reads.
    TooLarge {
        /// Its size.
        size: u64,
        /// The most the caller reads.
        limit: u64,
    },
    /// The operating system refused.
    Io(io::Error),
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenError::NotFound => f.write_str("does not exist"),
            OpenError::AbsoluteLink { link, target } => write!(
                f,
                "symlink {link} has the absolute target {target}; ocipack never leaves the directory it was given"
            ),
            OpenError::Escapes { link, target } => write!(
                f,
                "symlink {link} → {target} climbs out of the directory; ocipack never leaves the directory it was given"
            ),
            OpenError::Symlink(link) => write!(
                f,
                "{link} is a symlink; ocipack follows no symlink here, so that nothing outside the directory can be written or read"
            ),
            OpenError::Loop => write!(
                f,
                "symlink loop (more than {MAX_SYMLINK_HOPS} symlinks followed)"
            ),
            OpenError::NotADirectory(c) => write!(f, "{c} is not a directory"),
            OpenError::NotRegular(kind) => write!(f, "is a {kind}, not a regular file"),
            OpenError::TooLarge { size, limit } => {
                write!(f, "is {size} bytes, more than the {limit} ocipack reads")
            }
            OpenError::Io(e) => write!(f, "cannot be opened: {e}"),
        }
    }
}

impl From<rustix::io::Errno> for OpenError {
    fn from(e: rustix::io::Errno) -> Self {
        if e == rustix::io::Errno::NOENT {
            OpenError::NotFound
        } else if e == rustix::io::Errno::LOOP {
            // O_NOFOLLOW met a symlink that appeared after we looked: someone is racing us.
            OpenError::Io(io::Error::other("it became a symlink while being opened"))
        } else {
            OpenError::Io(e.into())
        }
    }
}

/// A regular file opened beneath the root.
#[derive(Debug)]
pub struct Opened {
    /// The open file (read-only).
    pub file: File,
    /// Its size according to `fstat`.
    pub size: u64,
    /// Symlinks followed to reach it, as (link, target), in order.
    pub symlinks: Vec<(String, String)>,
}

/// What a directory entry is, without following symlinks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryType {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link.
    Symlink,
    /// Anything else (FIFO, socket, device).
    Other(&'static str),
}

/// A directory's entries: names (bytes) and types, sorted by name.
pub type Listing = Vec<(Vec<u8>, EntryType)>;

/// A directory's entries with their permission bits, sorted by name.
pub type ModeListing = Vec<(Vec<u8>, EntryType, u32)>;

/// A directory held open; every path below it is resolved by [`Root`] itself.
#[derive(Debug, Clone)]
pub struct Root {
    fd: Arc<OwnedFd>,
    path: PathBuf,
    follow: Follow,
}

/// The name of a file type in messages.
pub fn kind_name(t: FileType) -> &'static str {
    match t {
        FileType::RegularFile => "regular file",
        FileType::Directory => "directory",
        FileType::Symlink => "symlink",
        FileType::Fifo => "FIFO",
        FileType::Socket => "socket",
        FileType::CharacterDevice => "character device",
        FileType::BlockDevice => "block device",
        FileType::Unknown => "file of unknown type",
    }
}

impl EntryType {
    /// The name of this kind of file in messages, as [`kind_name`] names it.
    pub fn name(self) -> &'static str {
        match self {
            EntryType::File => kind_name(FileType::RegularFile),
            EntryType::Dir => kind_name(FileType::Directory),
            EntryType::Symlink => kind_name(FileType::Symlink),
            EntryType::Other(name) => name,
        }
    }
}

fn entry_type(t: FileType) -> EntryType {
    match t {
        FileType::RegularFile => EntryType::File,
        FileType::Directory => EntryType::Dir,
        FileType::Symlink => EntryType::Symlink,
        other => EntryType::Other(kind_name(other)),
    }
}

fn shown(components: &[Vec<u8>], last: &[u8]) -> String {
    let mut s = Vec::new();
    for c in components.iter().map(Vec::as_slice).chain([last]) {
        if !s.is_empty() {
            s.push(b'/');
        }
        s.extend_from_slice(c);
    }
    show::bytes(&s)
}

/// Opens the directory `name` in `dir` without following a symlink.
pub(crate) fn open_dir_at(dir: BorrowedFd<'_>, name: &OsStr) -> rustix::io::Result<OwnedFd> {
    rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

/// Opens `name` in `dir` for reading if it is a regular file: `O_NOFOLLOW | O_NONBLOCK`, so
/// that neither a symlink nor a FIFO nor a device is ever opened as a file, then `fstat`.
pub(crate) fn open_regular_at(dir: BorrowedFd<'_>, name: &OsStr) -> Result<(File, u64), OpenError> {
    let fd = rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY,
        Mode::empty(),
    )?;
    regular(fd)
}

/// Checks with `fstat` that `fd` is a regular file, and clears `O_NONBLOCK` again.
fn regular(fd: OwnedFd) -> Result<(File, u64), OpenError> {
    let st = rustix::fs::fstat(&fd)?;
    let ft = FileType::from_raw_mode(st.st_mode);
    if ft != FileType::RegularFile {
        return Err(OpenError::NotRegular(kind_name(ft)));
    }
    let flags = rustix::fs::fcntl_getfl(&fd)?;
    rustix::fs::fcntl_setfl(&fd, flags - OFlags::NONBLOCK)?;
    Ok((File::from(fd), u64::try_from(st.st_size).unwrap_or(0)))
}

/// Reads all of an opened regular file, refusing more than `limit` bytes (also when the
/// file grows while it is read).
pub(crate) fn read_capped(mut file: File, size: u64, limit: u64) -> Result<Vec<u8>, OpenError> {
    if size > limit {
        return Err(OpenError::TooLarge { size, limit });
    }
    let mut buf = Vec::with_capacity(size as usize);
    (&mut file)
        .take(limit + 1)
        .read_to_end(&mut buf)
        .map_err(OpenError::Io)?;
    if buf.len() as u64 > limit {
        return Err(OpenError::TooLarge {
            size: buf.len() as u64,
            limit,
        });
    }
    Ok(buf)
}

/// Reads a file the user named (`ocipack.toml`, a Docker config, a `--file` input's text):
/// symlinks in the path the user wrote are followed, but the file itself is opened with
/// `O_NONBLOCK` and must be a regular file of at most `limit` bytes, so that a FIFO blocks
/// nothing and `/dev/zero` fills no memory.
pub fn read_named(path: &Path, limit: u64) -> Result<Vec<u8>, OpenError> {
    let (file, size) = open_named(path)?;
    read_capped(file, size, limit)
}

/// Opens a regular file the user named (see [`read_named`]); returns it and its size.
pub fn open_named(path: &Path) -> Result<(File, u64), OpenError> {
    let fd = rustix::fs::openat(
        rustix::fs::CWD,
        path,
        OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY,
        Mode::empty(),
    )?;
    regular(fd)
}

impl Root {
    /// Opens `dir` (which may itself be reached through symlinks: the user named it);
    /// symlinks beneath it are followed while they stay inside ([`Follow::Inside`]).
    pub fn open(dir: &Path) -> io::Result<Root> {
        Root::open_with(dir, Follow::Inside)
    }

    /// Opens `dir` with the given symlink policy for paths beneath it.
    pub fn open_with(dir: &Path, follow: Follow) -> io::Result<Root> {
        let fd = rustix::fs::openat(
            rustix::fs::CWD,
            dir,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Root {
            fd: Arc::new(fd),
            path: dir.to_path_buf(),
            follow,
        })
    }

    /// A root over an open directory descriptor; `path` names it in messages.
    pub fn from_fd(fd: OwnedFd, path: &Path, follow: Follow) -> Root {
        Root {
            fd: Arc::new(fd),
            path: path.to_path_buf(),
            follow,
        }
    }

    /// The same directory with another symlink policy.
    pub fn with_follow(&self, follow: Follow) -> Root {
        Root {
            fd: self.fd.clone(),
            path: self.path.clone(),
            follow,
        }
    }

    /// The same directory, refusing every symlink beneath it.
    pub fn clone_strict(&self) -> Root {
        self.with_follow(Follow::Never)
    }

    /// The directory as the caller named it.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `rel` beneath the root, escaped for a message.
    pub fn shown(&self, rel: &str) -> String {
        show::path(&self.path.join(rel))
    }

    /// The directory's descriptor.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Resolves `rel` inside the root. Returns the descriptor of the directory holding the
    /// final component, that component, its type, the names of the directories walked
    /// and the symlinks followed. The final component is never followed if it is a
    /// symlink and `follow_last` is false.
    fn resolve(&self, rel: &[u8], follow_last: bool) -> Result<Resolved, OpenError> {
        let mut queue: VecDeque<Vec<u8>> = rel
            .split(|&b| b == b'/')
            .filter(|c| !c.is_empty() && *c != b".")
            .map(<[u8]>::to_vec)
            .collect();
        if rel.first() == Some(&b'/') {
            return Err(OpenError::AbsoluteLink {
                link: "(the path itself)".into(),
                target: show::bytes(rel),
            });
        }
        // dirs[i] is the descriptor of the directory named by names[..i].
        let mut dirs: Vec<OwnedFd> = vec![self.fd.try_clone().map_err(OpenError::Io)?];
        let mut names: Vec<Vec<u8>> = Vec::new();
        let mut symlinks = Vec::new();
        let mut hops = 0usize;
        let mut current_link: Option<(String, String)> = None;
        while let Some(comp) = queue.pop_front() {
            if comp == b"." {
                continue;
            }
            if comp == b".." {
                if names.pop().is_none() {
                    let (link, target) = current_link
                        .clone()
                        .unwrap_or_else(|| ("(the path itself)".into(), show::bytes(rel)));
                    return Err(OpenError::Escapes { link, target });
                }
                dirs.pop();
                continue;
            }
            let dir = dirs.last().ok_or(OpenError::Loop)?;
            let name = OsStr::from_bytes(&comp);
            let st = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)?;
            let ft = FileType::from_raw_mode(st.st_mode);
            let is_last = queue.is_empty();
            match ft {
                FileType::Symlink if !is_last || follow_last => {
                    let link = shown(&names, &comp);
                    if self.follow == Follow::Never {
                        return Err(OpenError::Symlink(link));
                    }
                    hops += 1;
                    if hops > MAX_SYMLINK_HOPS {
                        return Err(OpenError::Loop);
                    }
                    let target = rustix::fs::readlinkat(dir, name, Vec::new())?.into_bytes();
                    let target_s = show::bytes(&target);
                    if target.first() == Some(&b'/') {
                        return Err(OpenError::AbsoluteLink {
                            link,
                            target: target_s,
                        });
                    }
                    symlinks.push((link.clone(), target_s.clone()));
                    current_link = Some((link, target_s));
                    for c in target.split(|&b| b == b'/').filter(|c| !c.is_empty()).rev() {
                        queue.push_front(c.to_vec());
                    }
                }
                FileType::Directory if !is_last => {
                    dirs.push(open_dir_at(dir.as_fd(), name)?);
                    names.push(comp);
                }
                _ if !is_last => return Err(OpenError::NotADirectory(shown(&names, &comp))),
                _ => {
                    let parent = dirs.pop().ok_or(OpenError::Loop)?;
                    return Ok(Resolved {
                        parent,
                        name: comp,
                        file_type: ft,
                        symlinks,
                    });
                }
            }
        }
        // The path named the root itself (or resolved to it).
        let parent = dirs.pop().ok_or(OpenError::Loop)?;
        Ok(Resolved {
            parent,
            name: b".".to_vec(),
            file_type: FileType::Directory,
            symlinks,
        })
    }

    /// Opens the regular file at `rel` (following symlinks as the policy allows).
    pub fn open_file(&self, rel: impl AsRef<[u8]>) -> Result<Opened, OpenError> {
        let r = self.resolve(rel.as_ref(), true)?;
        if r.file_type != FileType::RegularFile {
            // Never open a FIFO or a device: opening alone can block or have effects.
            return Err(OpenError::NotRegular(kind_name(r.file_type)));
        }
        let (file, size) = open_regular_at(r.parent.as_fd(), OsStr::from_bytes(&r.name))?;
        Ok(Opened {
            file,
            size,
            symlinks: r.symlinks,
        })
    }

    /// An anonymous file in this directory (`O_TMPFILE`: it has no name, so it never
    /// outlives the process and no one else can open it), mode 0600; where the filesystem
    /// has no `O_TMPFILE`, a file `.ocipack-tmp-<pid>-<n>` created exclusively, locked and
    /// unlinked at once. A process killed in between leaves it unlocked, and the next build
    /// beside it sweeps it with stale staging.
    pub fn tempfile(&self) -> io::Result<File> {
        match rustix::fs::openat(
            self.fd(),
            ".",
            OFlags::TMPFILE | OFlags::RDWR | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        ) {
            Ok(fd) => return Ok(File::from(fd)),
            Err(rustix::io::Errno::OPNOTSUPP) | Err(rustix::io::Errno::ISDIR) => {}
            Err(e) => return Err(e.into()),
        }
        for n in 0..1000u32 {
            let name = format!("{TEMPFILE_PREFIX}{}-{n}", std::process::id());
            match rustix::fs::openat(
                self.fd(),
                name.as_str(),
                OFlags::RDWR | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            ) {
                Ok(fd) => {
                    // Locked, and never given a staging file's final mode: no sweep takes it
                    // for stale while this process lives (should one have unlinked it
                    // anyway, the descriptor is all we need).
                    let _ = rustix::fs::flock(&fd, rustix::fs::FlockOperation::LockExclusive);
                    match rustix::fs::unlinkat(self.fd(), name.as_str(), AtFlags::empty()) {
                        Ok(()) | Err(rustix::io::Errno::NOENT) => {}
                        Err(e) => return Err(e.into()),
                    }
                    return Ok(File::from(fd));
                }
                Err(rustix::io::Errno::EXIST) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(io::Error::other("no free temporary name"))
    }

    /// Reads the regular file at `rel` whole, refusing more than `limit` bytes.
    pub fn read(&self, rel: &str, limit: u64) -> Result<Vec<u8>, OpenError> {
        let o = self.open_file(rel)?;
        read_capped(o.file, o.size, limit)
    }

    /// The target of the symlink at `rel`.
    pub fn read_link(&self, rel: impl AsRef<[u8]>) -> Result<Vec<u8>, OpenError> {
        let r = self.resolve(rel.as_ref(), false)?;
        Ok(rustix::fs::readlinkat(&r.parent, OsStr::from_bytes(&r.name), Vec::new())?.into_bytes())
    }

    /// What is at `rel`, without following a final symlink; `None` if nothing is.
    pub fn entry_type(&self, rel: &str) -> Result<Option<EntryType>, OpenError> {
        match self.resolve(rel.as_bytes(), false) {
            Ok(r) => Ok(Some(entry_type(r.file_type))),
            Err(OpenError::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The directory at `rel` as a root of its own (same policy). With `create`, missing
    /// directories are created (mode 0755, whatever the umask) one component at a time.
    pub fn subdir(&self, rel: &str, create: bool) -> Result<Root, OpenError> {
        self.subdir_logged(rel, create, &mut Vec::new())
    }

    /// [`Root::subdir`], recording every directory it created as (parent, name), so that a
    /// caller can remove them again if what it creates them for fails.
    pub fn subdir_logged(
        &self,
        rel: &str,
        create: bool,
        created: &mut Vec<(Root, String)>,
    ) -> Result<Root, OpenError> {
        let mut cur = self.clone();
        let mut walked = String::new();
        for comp in rel.split('/').filter(|c| !c.is_empty() && *c != ".") {
            if !walked.is_empty() {
                walked.push('/');
            }
            walked.push_str(comp);
            if comp == ".." {
                return Err(OpenError::Escapes {
                    link: "(the path itself)".into(),
                    target: show::text(rel),
                });
            }
            let next = match cur.resolve(comp.as_bytes(), true) {
                Err(OpenError::NotFound) if create => {
                    match rustix::fs::mkdirat(cur.fd(), comp, Mode::from_raw_mode(DIR_MODE)) {
                        Ok(()) => created.push((cur.clone(), comp.to_string())),
                        Err(rustix::io::Errno::EXIST) => {}
                        Err(e) => return Err(e.into()),
                    }
                    let fd = open_dir_at(cur.fd(), OsStr::new(comp))?;
                    rustix::fs::fchmod(&fd, Mode::from_raw_mode(DIR_MODE))?;
                    fd
                }
                Err(e) => return Err(e),
                Ok(r) if r.file_type == FileType::Directory => {
                    open_dir_at(r.parent.as_fd(), OsStr::from_bytes(&r.name))?
                }
                Ok(_) => return Err(OpenError::NotADirectory(show::text(&walked))),
            };
            cur = Root {
                fd: Arc::new(next),
                path: cur.path.join(comp),
                follow: self.follow,
            };
        }
        Ok(cur)
    }

    /// The entries of the directory at `rel` (names, as bytes, and types, not following
    /// symlinks), sorted by name; `None` if it does not exist. Names are never converted
    /// lossily: two that differ only in bytes that are not UTF-8 stay two names.
    pub fn list_dir_bytes(&self, rel: impl AsRef<[u8]>) -> Result<Option<Listing>, OpenError> {
        Ok(self
            .list_dir_modes(rel)?
            .map(|v| v.into_iter().map(|(n, t, _)| (n, t)).collect()))
    }

    /// Like [`Root::list_dir_bytes`], with each entry's permission bits (`st_mode & 0o7777`,
    /// from the same `lstat`).
    pub fn list_dir_modes(&self, rel: impl AsRef<[u8]>) -> Result<Option<ModeListing>, OpenError> {
        let rel = rel.as_ref();
        let r = match self.resolve(rel, true) {
            Ok(r) => r,
            Err(OpenError::NotFound) => return Ok(None),
            Err(e) => return Err(e),
        };
        if r.file_type != FileType::Directory {
            return Err(OpenError::NotADirectory(show::bytes(rel)));
        }
        let fd = open_dir_at(r.parent.as_fd(), OsStr::from_bytes(&r.name))?;
        let mut out = Vec::new();
        for entry in rustix::fs::Dir::read_from(fd.as_fd())? {
            let entry = entry?;
            let name = entry.file_name().to_bytes();
            if name == b"." || name == b".." {
                continue;
            }
            let st = rustix::fs::statat(&fd, OsStr::from_bytes(name), AtFlags::SYMLINK_NOFOLLOW)?;
            out.push((
                name.to_vec(),
                entry_type(FileType::from_raw_mode(st.st_mode)),
                st.st_mode & 0o7777,
            ));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(Some(out))
    }
}

struct Resolved {
    parent: OwnedFd,
    name: Vec<u8>,
    file_type: FileType,
    symlinks: Vec<(String, String)>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn root() -> (tempfile::TempDir, Root) {
        let t = tempfile::tempdir().unwrap();
        let layout = t.path().join("layout");
        std::fs::create_dir_all(layout.join("blobs/sha256")).unwrap();
        std::fs::write(t.path().join("outside"), b"secret").unwrap();
        std::fs::write(layout.join("inside"), b"ok").unwrap();
        let r = Root::open(&layout).unwrap();
        (t, r)
    }

    #[test]
    fn follows_links_inside_and_refuses_the_rest() {
        let (t, r) = root();
        let l = t.path().join("layout");
        symlink("../../inside", l.join("blobs/sha256/good")).unwrap();
        symlink("../../../outside", l.join("blobs/sha256/escape")).unwrap();
        symlink("/etc/passwd", l.join("blobs/sha256/abs")).unwrap();
        symlink("loop2", l.join("blobs/sha256/loop1")).unwrap();
        symlink("loop1", l.join("blobs/sha256/loop2")).unwrap();
        symlink(".", l.join("blobs/sha256/dot")).unwrap();
        symlink("../sha256", l.join("blobs/sha256/up")).unwrap();

        let ok = r.open_file("blobs/sha256/good").unwrap();
        assert_eq!(ok.size, 2);
        assert_eq!(
            ok.symlinks,
            [("blobs/sha256/good".to_string(), "../../inside".to_string())]
        );
        assert!(matches!(
            r.open_file("blobs/sha256/escape"),
            Err(OpenError::Escapes { .. })
        ));
        assert!(matches!(
            r.open_file("blobs/sha256/abs"),
            Err(OpenError::AbsoluteLink { .. })
        ));
        assert!(matches!(
            r.open_file("blobs/sha256/loop1"),
            Err(OpenError::Loop)
        ));
        assert!(matches!(
            r.open_file("../outside"),
            Err(OpenError::Escapes { .. })
        ));
        // A directory through a link, and a path walking through links that stay inside.
        assert!(matches!(
            r.open_file("blobs/sha256/dot"),
            Err(OpenError::NotRegular("directory"))
        ));
        assert_eq!(r.open_file("blobs/sha256/up/up/up/good").unwrap().size, 2);
        assert!(matches!(
            r.open_file("inside/x"),
            Err(OpenError::NotADirectory(_))
        ));
        assert!(matches!(r.open_file("nope"), Err(OpenError::NotFound)));
    }

    #[test]
    fn fifo_is_refused_without_blocking() {
        let (t, r) = root();
        let fifo = t.path().join("layout/blobs/sha256/fifo");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            FileType::Fifo,
            Mode::from_raw_mode(0o644),
            0,
        )
        .unwrap();
        assert!(matches!(
            r.open_file("blobs/sha256/fifo"),
            Err(OpenError::NotRegular("FIFO"))
        ));
        let listed = r.list_dir_bytes("blobs/sha256").unwrap().unwrap();
        assert_eq!(listed, [(b"fifo".to_vec(), EntryType::Other("FIFO"))]);
    }
}
