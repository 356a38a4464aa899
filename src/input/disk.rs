//! Inputs read from the filesystem: directory trees and single files.

use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::{Node, Source, Tree, check_dest};
use crate::error::{Error, Result};
use crate::tar::write::{Header, Kind};

impl Tree {
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
