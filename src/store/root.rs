//! Opening files inside a layout without ever leaving it and without ever blocking.
//!
//! A layout is input from strangers: `blobs/sha256/…` may be a symlink to `/etc/shadow`, to
//! `../../../x`, to itself, or a FIFO whose `open` would block forever. [`Root`] resolves
//! every path itself, one component at a time relative to directory descriptors: symlinks
//! are read with `readlinkat`, absolute targets and targets that climb above the layout
//! root are refused, the number of links followed is bounded (a loop is an error), and a
//! file is opened with `O_NOFOLLOW | O_NONBLOCK` and checked with `fstat` to be a regular
//! file before a single byte is read. The kernel never follows a symlink for us.

use std::collections::VecDeque;
use std::ffi::OsStr;
use std::fmt;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags};

/// Symlinks followed while resolving one path before it is called a loop (Linux's limit).
pub const MAX_SYMLINK_HOPS: usize = 40;

/// Why a path inside the layout could not be opened.
#[derive(Debug)]
pub enum OpenError {
    /// The path (or a symlink's target) does not exist.
    NotFound,
    /// A symlink has an absolute target.
    AbsoluteLink {
        /// The symlink, relative to the layout root.
        link: String,
        /// Its target.
        target: String,
    },
    /// Resolving climbs above the layout root.
    Escapes {
        /// The symlink whose target climbs out (or the path itself when it starts with `..`).
        link: String,
        /// The target.
        target: String,
    },
    /// More than [`MAX_SYMLINK_HOPS`] symlinks.
    Loop,
    /// A component that must be a directory is something else.
    NotADirectory(String),
    /// The final file is not a regular file.
    NotRegular(&'static str),
    /// The operating system refused.
    Io(io::Error),
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenError::NotFound => f.write_str("does not exist"),
            OpenError::AbsoluteLink { link, target } => write!(
                f,
                "symlink {link} has the absolute target {target:?}; verify never leaves the layout"
            ),
            OpenError::Escapes { link, target } => write!(
                f,
                "symlink {link} → {target:?} climbs out of the layout; verify never leaves the layout"
            ),
            OpenError::Loop => write!(
                f,
                "symlink loop (more than {MAX_SYMLINK_HOPS} symlinks followed)"
            ),
            OpenError::NotADirectory(c) => write!(f, "{c} is not a directory"),
            OpenError::NotRegular(kind) => write!(f, "is a {kind}, not a regular file"),
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

/// A regular file opened inside the layout.
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

/// The root directory of a layout, held open.
#[derive(Debug)]
pub struct Root {
    fd: OwnedFd,
    path: PathBuf,
}

fn kind_name(t: FileType) -> &'static str {
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

fn entry_type(t: FileType) -> EntryType {
    match t {
        FileType::RegularFile => EntryType::File,
        FileType::Directory => EntryType::Dir,
        FileType::Symlink => EntryType::Symlink,
        other => EntryType::Other(kind_name(other)),
    }
}

fn show(components: &[Vec<u8>], last: &[u8]) -> String {
    let mut s = String::new();
    for c in components.iter().map(Vec::as_slice).chain([last]) {
        if !s.is_empty() {
            s.push('/');
        }
        s.push_str(&String::from_utf8_lossy(c));
    }
    s
}

impl Root {
    /// Opens `dir` (which may itself be reached through symlinks: the user named it).
    pub fn open(dir: &Path) -> io::Result<Root> {
        let fd = rustix::fs::openat(
            rustix::fs::CWD,
            dir,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Root {
            fd,
            path: dir.to_path_buf(),
        })
    }

    /// The directory as the caller named it.
    pub fn path(&self) -> &Path {
        &self.path
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
                target: String::from_utf8_lossy(rel).into_owned(),
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
                    let (link, target) = current_link.clone().unwrap_or_else(|| {
                        (
                            "(the path itself)".into(),
                            String::from_utf8_lossy(rel).into_owned(),
                        )
                    });
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
                    hops += 1;
                    if hops > MAX_SYMLINK_HOPS {
                        return Err(OpenError::Loop);
                    }
                    let target = rustix::fs::readlinkat(dir, name, Vec::new())?.into_bytes();
                    let link = show(&names, &comp);
                    let target_s = String::from_utf8_lossy(&target).into_owned();
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
                    let fd = rustix::fs::openat(
                        dir,
                        name,
                        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                        Mode::empty(),
                    )?;
                    dirs.push(fd);
                    names.push(comp);
                }
                _ if !is_last => return Err(OpenError::NotADirectory(show(&names, &comp))),
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

    /// Opens the regular file at `rel` (following symlinks that stay inside the root).
    pub fn open_file(&self, rel: &str) -> Result<Opened, OpenError> {
        let r = self.resolve(rel.as_bytes(), true)?;
        if r.file_type != FileType::RegularFile {
            // Never open a FIFO or a device: opening alone can block or have effects.
            return Err(OpenError::NotRegular(kind_name(r.file_type)));
        }
        let fd = rustix::fs::openat(
            &r.parent,
            OsStr::from_bytes(&r.name),
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY,
            Mode::empty(),
        )?;
        let st = rustix::fs::fstat(&fd)?;
        let ft = FileType::from_raw_mode(st.st_mode);
        if ft != FileType::RegularFile {
            return Err(OpenError::NotRegular(kind_name(ft)));
        }
        Ok(Opened {
            file: File::from(fd),
            size: u64::try_from(st.st_size).unwrap_or(0),
            symlinks: r.symlinks,
        })
    }

    /// The target of the symlink at `rel`.
    pub fn read_link(&self, rel: &str) -> Result<Vec<u8>, OpenError> {
        let r = self.resolve(rel.as_bytes(), false)?;
        Ok(rustix::fs::readlinkat(&r.parent, OsStr::from_bytes(&r.name), Vec::new())?.into_bytes())
    }

    /// The entries of the directory at `rel` (names and types, not following symlinks),
    /// sorted by name; `None` if it does not exist.
    pub fn list_dir(&self, rel: &str) -> Result<Option<Vec<(String, EntryType)>>, OpenError> {
        let r = match self.resolve(rel.as_bytes(), true) {
            Ok(r) => r,
            Err(OpenError::NotFound) => return Ok(None),
            Err(e) => return Err(e),
        };
        if r.file_type != FileType::Directory {
            return Err(OpenError::NotADirectory(rel.to_string()));
        }
        let fd = rustix::fs::openat(
            &r.parent,
            OsStr::from_bytes(&r.name),
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let mut out = Vec::new();
        for entry in rustix::fs::Dir::read_from(fd.as_fd())? {
            let entry = entry?;
            let name = entry.file_name().to_bytes();
            if name == b"." || name == b".." {
                continue;
            }
            let st = rustix::fs::statat(&fd, OsStr::from_bytes(name), AtFlags::SYMLINK_NOFOLLOW)?;
            out.push((
                String::from_utf8_lossy(name).into_owned(),
                entry_type(FileType::from_raw_mode(st.st_mode)),
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
        let listed = r.list_dir("blobs/sha256").unwrap().unwrap();
        assert_eq!(listed, [("fifo".to_string(), EntryType::Other("FIFO"))]);
    }
}
