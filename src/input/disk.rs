//! Inputs read from the filesystem: directory trees and single files, through
//! [`crate::store::walk`] and [`crate::store::root::open_named`] (never by path once walked).

use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;

use rustix::fs::FileType;

use super::owners::{self, InputKind, Problem, Raised};
use super::{Node, Source, Tree, check_dest, walk_error};
use crate::error::{Error, Result};
use crate::show;
use crate::store::root::open_named;
use crate::store::walk::{InputTree, Stamp, WalkError};
use crate::tar::write::{HeaderFields, Kind};

impl Tree {
    /// Adds every entry below `dir` (not `dir` itself), without following symlinks.
    /// Permission bits are kept as they are, including setuid, setgid and sticky. `origin`
    /// names the input as the user wrote it (`--rootfs x`, `ocipack.toml:12: input.rootfs`).
    pub fn add_rootfs(&mut self, dir: &std::path::Path, origin: &str) -> Result<()> {
        let mut tree = InputTree::open(dir).map_err(|e| {
            let why = match e.raw_os_error() {
                Some(20) => "is not a directory".to_string(),
                Some(2) => "does not exist".to_string(),
                _ => format!("cannot be opened: {e}"),
            };
            Error::input(format!("{origin} {}", show::path(dir)), why)
        })?;
        let index = self.trees.len();
        let opts = self.opts.clone();
        let origin_shown: Arc<str> = format!("{origin} {}", show::path(dir)).into();
        // Entries go into the list as they are found (the list is compact; a whole walk
        // held as nodes first would not be). An entry the list refuses stops the walk.
        let mut refused = None;
        let walked = tree.walk(opts.xattrs, &mut |w| {
            let shown = || show::path(&dir.join(std::ffi::OsStr::from_bytes(&w.rel)));
            let mut source = Source::Nothing;
            let mut link_group = None;
            let kind = match w.kind {
                FileType::RegularFile => {
                    source = Source::Disk {
                        tree: index,
                        stamp: w.stamp,
                    };
                    if w.nlink > 1 {
                        link_group = Some((w.stamp.dev, w.stamp.ino));
                    }
                    Kind::File { size: w.stamp.size }
                }
                FileType::Directory => Kind::Dir,
                FileType::Symlink => Kind::Symlink(w.link.clone().unwrap_or_default()),
                FileType::Fifo => Kind::Fifo,
                FileType::Socket => {
                    self.warnings.push(format!(
                        "{}: skipped a socket (sockets cannot be stored in a layer)",
                        shown()
                    ));
                    return Ok(());
                }
                FileType::CharacterDevice | FileType::BlockDevice => {
                    if !opts.devices {
                        self.warnings.push(format!(
                            "{}: skipped a device node (pass --devices to keep device nodes)",
                            shown()
                        ));
                        return Ok(());
                    }
                    let (major, minor) = (rustix::fs::major(w.rdev), rustix::fs::minor(w.rdev));
                    if w.kind == FileType::CharacterDevice {
                        Kind::CharDevice { major, minor }
                    } else {
                        Kind::BlockDevice { major, minor }
                    }
                }
                FileType::Unknown => {
                    return Err(WalkError::Changed(
                        shown(),
                        "has an unknown file type".into(),
                    ));
                }
            };
            // Symlink permission bits mean nothing on Linux and differ between filesystems.
            let mode = if matches!(kind, Kind::Symlink(_)) {
                0o777
            } else {
                w.mode
            };
            let (in_uid, in_gid) = (u64::from(w.uid), u64::from(w.gid));
            let (uid, gid) =
                match owners::owner(&opts.owners, InputKind::Tree, mode, in_uid, in_gid) {
                    Ok(o) => o,
                    Err(Problem::Raised) => {
                        self.raised.push(Raised {
                            origin: origin.to_string(),
                            kind: InputKind::Tree,
                            path: w.rel.clone(),
                            dir: kind == Kind::Dir,
                            mode,
                            uid: in_uid,
                            gid: in_gid,
                        });
                        (0, 0)
                    }
                    Err(Problem::NotAnId(why)) => return Err(WalkError::Unsupported(shown(), why)),
                };
            let node = Node {
                header: HeaderFields {
                    path: w.rel,
                    kind,
                    mode,
                    uid,
                    gid,
                    mtime: 0,
                    xattrs: w.xattrs,
                },
                source,
                origin: Arc::clone(&origin_shown),
                link_group,
                mtime: Some(w.stamp.mtime.0),
            };
            match self.insert(node) {
                Ok(_) => Ok(()),
                Err(e) => {
                    let shown = e.to_string();
                    refused = Some(e);
                    Err(WalkError::Unsupported(shown, String::new()))
                }
            }
        });
        if let Some(e) = refused {
            return Err(e);
        }
        walked.map_err(walk_error)?;
        self.trees.push(Arc::new(tree));
        Ok(())
    }

    /// Adds one file from `src` at `dest` (an absolute path in the image). Without `mode`,
    /// the file gets 0755 if its owner may execute it, else 0644: the rest of its on-disk
    /// bits depend on the umask of whoever checked it out. The owner is always 0:0. The file
    /// is opened now (a regular file, never a FIFO or a device) and read later through the
    /// same descriptor, checked to be unchanged.
    pub fn add_file(
        &mut self,
        src: &std::path::Path,
        dest: &str,
        mode: Option<u32>,
        origin: &str,
    ) -> Result<()> {
        let what = format!("{origin} {}:{}", show::path(src), show::text(dest));
        let path = check_dest(dest).map_err(|p| Error::input(&what, p))?;
        let (file, _) = open_named(src).map_err(|e| Error::input(&what, e.to_string()))?;
        let st = rustix::fs::fstat(&file).map_err(|e| Error::input_io("reading", src, e.into()))?;
        let stamp = Stamp::of(&st);
        let mode = mode.unwrap_or(if st.st_mode & 0o100 != 0 {
            0o755
        } else {
            0o644
        });
        self.insert(Node {
            header: HeaderFields {
                path,
                kind: Kind::File { size: stamp.size },
                mode,
                uid: 0,
                gid: 0,
                mtime: 0,
                xattrs: Vec::new(),
            },
            source: Source::Open {
                file: Arc::new(file),
                stamp,
                shown: show::path(src),
            },
            origin: what.into(),
            link_group: None,
            mtime: Some(stamp.mtime.0),
        })
        .map(|_| ())
    }
}
