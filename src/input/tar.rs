//! Inputs read from existing tar archives.

use std::fs::{self, File};
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::{Node, Source, Tree, normalize_path, show};
use crate::error::{Error, Result};
use crate::tar::write::{Header, Kind};

impl Tree {
    /// Adds the entries of an existing tar (plain, gzip or zstd, detected from its first
    /// bytes), re-packed entry by entry. Nothing in it is trusted: names are normalised and
    /// checked, owners dropped unless preserved, mtimes clamped, unsupported entry types
    /// refused. File contents are spooled to a temporary file in `spool_dir`, so memory use
    /// does not grow with the tar.
    pub fn add_tar(&mut self, tar_path: &Path, spool_dir: &Path) -> Result<()> {
        let what = format!("--tar {}", tar_path.display());
        let file = File::open(tar_path).map_err(|e| Error::input_io("opening", tar_path, e))?;
        let reader = crate::layer::compress::decompressing_reader(BufReader::new(file))
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
