//! Inputs read from existing tar archives, through the one tar reader ([`crate::tar::read`]).
//!
//! Nothing in an input tar is trusted. The reader refuses what tar readers would disagree
//! on, bounds every size claim and checks names before anything is built from them; here
//! each entry becomes a node as a directory input would: names normalised (absolute, `..`,
//! empty, over-long and root-naming names refused), numeric owners kept unless the policy
//! says 0:0 ([`super::owners`]; user and group names dropped), mtimes clamped later, devices
//! only with `--devices`, xattrs only with `--xattrs`, hard links resolved once all entries
//! are in (every name of one file must then carry the same mode, owner and xattrs; a link
//! entry without xattrs has its target's, as GNU tar writes them once). A hard link must
//! name an earlier entry of the same archive, as every extractor
//! needs (`ocipack verify` holds a layer to the same rule): never a later one, and never a
//! file another input gave, which this archive alone would not hold. A directory the archive
//! gives twice must be given alike (extractors disagree on which of two headers applies:
//! ocipack would keep the first, GNU tar and umoci keep the last). Sparse files arrive
//! expanded and are stored dense. Every problem is an input error (exit 2) naming the input
//! and the entry.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::os::fd::AsFd;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use super::decompress::{InputCompression, sniff_input};
use super::owners::{self, InputKind, Problem, Raised};
use super::{InputTar, Node, Source, Tree};
use crate::error::{Error, Result};
use crate::show;
use crate::store::root::{Root, open_named};
use crate::store::walk::{Stamp, changed_message, unchanged};
use crate::tar::EntryKind;
use crate::tar::name::display_name;
use crate::tar::read::{Item, Piece, ReadError, Reader};
use crate::tar::write::{HeaderFields, Kind};

/// A directory entry's mode, owner and xattrs as the layer will carry them.
type DirHeader = (u32, u64, u64, Vec<(String, Vec<u8>)>);

/// The hard links of an archive: each one's index in the list, its path, its target.
type Links = Vec<(u32, Vec<u8>, Vec<u8>)>;

/// How the archive being listed is read in place: it is the tar file itself, `len` bytes
/// long, which is `base` bytes into the plain input tars laid end to end; `seek` moves its
/// reader on without reading.
struct InPlace<R> {
    base: u64,
    len: u64,
    seek: fn(&mut R, u64) -> std::io::Result<()>,
}

/// Size of the buffer file contents are copied through.
const COPY_BUFFER: usize = 256 * 1024;

/// A normalised path in a message, as `/usr/bin/env`.
fn show_path(p: &[u8]) -> String {
    format!("/{}", show::bytes(p))
}

/// An entry name as stored, quoted, in a message.
fn quoted(name: &[u8]) -> String {
    format!("\"{}\"", display_name(name))
}

/// A reader error as an input error of `what`, naming the entry when the message does not.
fn read_error(what: &str, e: ReadError) -> Error {
    match e.entry() {
        Some(entry) => Error::input(what, format!("entry {}: {e}", quoted(entry))),
        None => Error::input(what, e.to_string()),
    }
}

impl Tree {
    /// Adds the entries of an existing tar (plain, gzip, zstd, xz or bzip2, detected from its
    /// first bytes: see [`super::decompress`]), re-packed entry by entry (see the module
    /// documentation). `origin` names the input as the user wrote it. The tar file is
    /// opened as a regular file (never a FIFO) and must not change while it is read.
    ///
    /// The file contents of a plain tar are read in place: the list records where each
    /// lies in the tar, the listing seeks past it, and the layer is written from the tar
    /// itself, which must then still be unchanged (checked after every entry read from
    /// it). Sparse files, and every file of a compressed tar, are spooled to an anonymous
    /// temporary file in `spool_dir` (the staging directory) instead, so memory use does
    /// not grow with the tar. Why not spool everything: for a plain tar the spool was a
    /// whole extra write of the input, on one thread, before the layer's pipeline starts.
    pub fn add_tar(&mut self, tar_path: &Path, origin: &str, spool_dir: &Root) -> Result<()> {
        let what = origin.to_string();
        let shared: Arc<str> = what.as_str().into();
        let (file, _) = open_named(tar_path).map_err(|e| Error::input(&what, e.to_string()))?;
        let stamp = Stamp::of_fd(file.as_fd())
            .map_err(|e| Error::input_io("reading", tar_path, e.into()))?;
        let cannot_read = |e: std::io::Error| Error::input(&what, format!("cannot be read: {e}"));
        let mut plain = BufReader::new(&file);
        let compression = sniff_input(plain.fill_buf().map_err(cannot_read)?);
        // This archive's entries are the list's from here on.
        let first_entry = self.entries.len() as u32;
        // Hard links name their target by path; targets are resolved once all entries are in.
        // (the link's index in the list, its path, its target)
        // Where this tar starts among the plain tars laid end to end, one byte apart, so
        // that even the empty content of an entry at the very end of a tar names that tar.
        let base = self.tars.last().map_or(0, |t| t.base + t.stamp.size + 1);
        let (links, in_place) = if compression == InputCompression::None {
            let place = InPlace {
                base,
                len: stamp.size,
                seek: |r: &mut BufReader<&File>, n: u64| {
                    r.seek_relative(i64::try_from(n).map_err(std::io::Error::other)?)
                },
            };
            self.add_entries(Reader::new(plain), Some(place), &shared, spool_dir)?
        } else {
            let (_, input) = super::decompress::input_reader(plain).map_err(cannot_read)?;
            self.add_entries(Reader::new(input), None, &shared, spool_dir)?
        };
        // The whole archive was read: it must still be the file that was opened, unchanged.
        unchanged(&file, &stamp).map_err(|why| Error::input(&what, changed_message(&why)))?;
        if in_place {
            self.tars.push(InputTar {
                file,
                stamp,
                base,
                origin: Arc::clone(&shared),
            });
        }
        self.resolve_links(&links, first_entry, &what)
    }

    /// Adds the entries `reader` finds, and returns the hard links among them (each one's
    /// index in the list, its path, its target), and whether a content was left in place
    /// (`place`: the reader's input is the tar file itself, read in place).
    fn add_entries<R: Read>(
        &mut self,
        mut reader: Reader<R>,
        place: Option<InPlace<R>>,
        shared: &Arc<str>,
        spool_dir: &Root,
    ) -> Result<(Links, bool)> {
        let what = shared.to_string();
        let mut used = false;
        let mut buf = vec![0u8; COPY_BUFFER];
        let mut links: Links = Vec::new();
        // Every path this archive has given so far (a hard link's target must be one), with
        // a directory's mode, owner and xattrs (an entry repeating it must agree with them).
        let mut given: HashMap<Vec<u8>, Option<DirHeader>> = HashMap::new();
        while let Some(item) = reader.next_item().map_err(|e| read_error(&what, e))? {
            // A pax global header (git archive writes one holding the commit id) only
            // carries metadata that ocipack normalises away.
            let Item::Entry(h) = item else { continue };
            let path = h
                .path
                .clone()
                .map_err(|why| Error::input(&what, format!("entry {} {why}", quoted(&h.name))))?;
            let entry = || quoted(&h.name);
            let Some(et) = h.kind else {
                return Err(Error::input(
                    &what,
                    format!(
                        "entry {} has type {:?}, which an OCI layer may not contain",
                        entry(),
                        char::from(h.typeflag)
                    ),
                ));
            };
            if path.is_empty() {
                // The archive's root ("./", which GNU tar writes first) is created by the
                // runtime; the reader accepts an empty path only for a directory.
                continue;
            }
            let link_target = || -> Result<Vec<u8>> {
                let target = h.link_target().unwrap_or(Ok(Vec::new())).map_err(|why| {
                    Error::input(&what, format!("entry {}: link target {why}", entry()))
                })?;
                if target.is_empty() {
                    return Err(Error::input(
                        &what,
                        format!("entry {} has no link target", entry()),
                    ));
                }
                Ok(target)
            };
            let device = || -> Result<(u32, u32)> {
                let (major, minor) = h.device.unwrap_or((0, 0));
                match (u32::try_from(major), u32::try_from(minor)) {
                    (Ok(major), Ok(minor)) => Ok((major, minor)),
                    _ => Err(Error::input(
                        &what,
                        format!(
                            "entry {}: device number {major},{minor} out of range",
                            entry()
                        ),
                    )),
                }
            };
            let mut source = Source::Nothing;
            let kind = match et {
                EntryKind::File => {
                    let range = reader.content_range().filter(|&(_, n)| n == h.size);
                    source = match (&place, range) {
                        (Some(p), Some((at, _))) => {
                            reader
                                .seek_past_content(p.len, p.seek)
                                .map_err(|e| read_error(&what, e))?;
                            used = true;
                            Source::InTar(p.base + at)
                        }
                        _ => Source::Spool(self.spool_copy(
                            &mut reader,
                            &mut buf,
                            h.size,
                            spool_dir,
                            &what,
                        )?),
                    };
                    Kind::File { size: h.size }
                }
                EntryKind::Dir => Kind::Dir,
                EntryKind::Symlink => Kind::Symlink(link_target()?),
                EntryKind::Hardlink => {
                    let target = link_target()?;
                    if !given.contains_key(&target) {
                        return Err(Error::input(
                            &what,
                            format!(
                                "hard link {} points to {}, which is not an earlier entry of \
                                 the archive (extractors create the target before its links)",
                                show_path(&path),
                                show_path(&target)
                            ),
                        ));
                    }
                    Kind::Hardlink(target)
                }
                EntryKind::Fifo => Kind::Fifo,
                EntryKind::CharDevice | EntryKind::BlockDevice => {
                    if !self.opts.devices {
                        self.warnings.push(format!(
                            "{what}: skipped device node {} (pass --devices to keep device nodes)",
                            show_path(&path)
                        ));
                        continue;
                    }
                    let (major, minor) = device()?;
                    if et == EntryKind::CharDevice {
                        Kind::CharDevice { major, minor }
                    } else {
                        Kind::BlockDevice { major, minor }
                    }
                }
            };
            let xattrs = if self.opts.xattrs {
                h.xattrs.clone().into_iter().collect()
            } else {
                Vec::new()
            };
            let mode = if matches!(kind, Kind::Symlink(_)) {
                0o777
            } else {
                (h.mode & 0o7777) as u32
            };
            let (uid, gid) =
                match owners::owner(&self.opts.owners, InputKind::Tar, mode, h.uid, h.gid) {
                    Ok(o) => o,
                    Err(Problem::Raised) => {
                        self.raised.push(Raised {
                            origin: what.clone(),
                            kind: InputKind::Tar,
                            path: path.clone(),
                            dir: kind == Kind::Dir,
                            mode,
                            uid: h.uid,
                            gid: h.gid,
                        });
                        (0, 0)
                    }
                    Err(Problem::NotAnId(why)) => {
                        return Err(Error::input(&what, format!("entry {}: {why}", entry())));
                    }
                };
            let dir = (kind == Kind::Dir).then(|| (mode, uid, gid, xattrs.clone()));
            if let (Some(Some(first)), Some(again)) = (given.get(&path), &dir)
                && first != again
            {
                let header = |(mode, uid, gid, _): &DirHeader| {
                    format!("mode {:04o}, owner {uid}:{gid}", mode & 0o7777)
                };
                let how = if first.3 != again.3 {
                    "extended attributes".to_string()
                } else {
                    format!("{}, then {}", header(first), header(again))
                };
                return Err(Error::input(
                    &what,
                    format!(
                        "entry {} gives the directory {} a second time, with another mode, \
                         owner or extended attributes ({how}): extractors disagree on which \
                         applies (GNU tar and umoci apply the last, podman refuses the \
                         archive)",
                        entry(),
                        show_path(&path)
                    ),
                ));
            }
            given.entry(path.clone()).or_insert(dir);
            let link = match &kind {
                Kind::Hardlink(target) => Some((path.clone(), target.clone())),
                _ => None,
            };
            let index = self.insert(Node {
                header: HeaderFields {
                    path,
                    kind,
                    mode,
                    uid,
                    gid,
                    mtime: 0,
                    xattrs,
                },
                source,
                origin: Arc::clone(shared),
                link_group: None,
                mtime: Some(h.mtime),
            })?;
            if let Some((path, target)) = link {
                links.push((index, path, target));
            }
        }
        Ok((links, used))
    }

    /// Turns each hard link of the archive whose entries start at `first_entry` into a
    /// member of its target's link group, so that `finish` can give the content to
    /// whichever name sorts first. A target is the first entry of its path in this archive
    /// (an earlier one, checked when the link was read).
    fn resolve_links(&mut self, links: &Links, first_entry: u32, what: &str) -> Result<()> {
        let targets: HashSet<&[u8]> = links.iter().map(|(_, _, t)| t.as_slice()).collect();
        let found = self.entries.find(&targets, first_entry);
        for (link, link_path, target) in links {
            let t = *found
                .get(target)
                .ok_or_else(|| Error::internal("a hard link's target vanished"))?;
            let Some((_, group)) = self.entries.file(t) else {
                return Err(Error::input(
                    what,
                    format!(
                        "hard link {} points to {}, which is not a regular file",
                        show_path(link_path),
                        show_path(target)
                    ),
                ));
            };
            let group = match group {
                Some(g) => g,
                None => {
                    self.next_group += 1;
                    let g = (u64::MAX, self.next_group);
                    self.entries.set_group(t, g);
                    g
                }
            };
            // GNU tar writes a file's xattrs once, with its content: a link entry that
            // carries none of its own (or only some of the target's) names the same file,
            // and gets the target's. One that carries others is left to disagree with it
            // (see `one_file`).
            self.entries.link_to(*link, t, group);
        }
        Ok(())
    }

    /// Copies the current entry's logical content (`size` bytes) to the end of the spool
    /// file and returns where it starts. Holes of a sparse file are skipped, not written:
    /// the spool file has them as holes too, which read back as zeros.
    fn spool_copy<R: std::io::Read>(
        &mut self,
        reader: &mut Reader<R>,
        buf: &mut [u8],
        size: u64,
        dir: &Root,
        what: &str,
    ) -> Result<u64> {
        if self.spool.is_none() {
            // Tests see which builds spool at all (plain tars without sparse files do not).
            crate::store::hook::test_log(crate::store::hook::SPOOLS, || what.to_string());
            let f = dir
                .tempfile()
                .map_err(|e| Error::io("creating a spool file in", dir.path(), e))?;
            self.spool = Some((f, dir.path().to_path_buf()));
        }
        let Some((f, spool_path)) = self.spool.as_mut() else {
            return Err(Error::internal("spool file missing"));
        };
        // The spool file is exactly `spool_len` bytes long before and after each copy.
        let start = self.spool_len;
        let mut pos = start;
        let mut written = start;
        loop {
            match reader.read_piece(buf).map_err(|e| read_error(what, e))? {
                Piece::End => break,
                Piece::Data(n) => {
                    f.write_all_at(&buf[..n], pos)
                        .map_err(|e| Error::io("writing spool file", &*spool_path, e))?;
                    pos += n as u64;
                    written = pos;
                }
                Piece::Hole(n) => pos += n,
            }
        }
        if pos - start != size {
            // The reader yields exactly the size it announced; this is a bug if it happens.
            return Err(Error::internal(format!(
                "{what}: an entry of {size} bytes gave {}",
                pos - start
            )));
        }
        // A trailing hole: make the file long enough to read it back.
        if written < pos {
            f.set_len(pos)
                .map_err(|e| Error::io("writing spool file", &*spool_path, e))?;
        }
        self.spool_len = pos;
        Ok(start)
    }
}
