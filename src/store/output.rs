//! An output directory written only if it changed.
//!
//! Contract: an [`Output`] collects what a directory will hold — small files as bytes,
//! symlinks as targets, large files (a layer blob) as anonymous `O_TMPFILE` files in the
//! target's parent directory, which have no name and so vanish with the process whatever
//! kills it — without touching the target or its parent. [`Output::differences`] compares
//! that with what the target holds now, file by file (bytes, link targets, types, and no
//! file more or less). Only when something differs is the directory staged
//! ([`Output::stage`]): a [`Staging`] directory beside the target receives the files (the
//! anonymous ones linked in, never copied) and is later made durable and swapped into place
//! by the staging layer ([`commit_all`](super::staging::commit_all)). A build that changes
//! nothing creates, flushes and touches nothing: every mtime stays as it was.
//!
//! The content of an anonymous file is compared while it is written (the layer pipeline,
//! which sits above this module, compares its output with the previous blob), so nothing is
//! read back to learn that it is unchanged.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd};

use rustix::fs::{AtFlags, Mode, OFlags};

use super::listing::{Listed, Listing};
use super::root::{EntryType, OpenError, Root};
use super::staging::{Existing, Staging, Target};
use super::{DIR_MODE, FILE_MODE};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::show;

/// One file of an output, before it is written.
#[derive(Debug)]
enum Pending {
    /// Small content, held in memory.
    Bytes(Vec<u8>),
    /// A symlink to this target.
    Link(String),
    /// Content in an anonymous file; `same` if it is known to equal the target's file at
    /// the same path.
    Anonymous {
        file: File,
        same: bool,
        content: Content,
    },
    /// Content already written into the staging directory (filesystems without
    /// `O_TMPFILE`); `same` as above.
    Staged { same: bool, content: Content },
}

/// The size and SHA-256 of a file written outside memory, known from when it was written.
#[derive(Debug, Clone)]
struct Content {
    size: u64,
    digest: Digest,
}

/// How one path of an output differs from the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiffKind {
    /// A fresh build has it; the disk does not.
    Missing,
    /// The disk has it; a fresh build does not.
    Extra,
    /// Both are regular files with different contents.
    DifferentBytes,
    /// Both are symlinks with different targets.
    DifferentLinkTarget {
        /// The fresh build's target.
        expected: String,
        /// The target on disk.
        actual: String,
    },
    /// Different kinds of file.
    DifferentType {
        /// The fresh build's kind.
        expected: &'static str,
        /// The kind on disk.
        actual: &'static str,
    },
}

/// One differing path, relative to the output (empty: the output itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// The path inside the output (escaped).
    pub path: String,
    /// How it differs.
    pub kind: DiffKind,
}

impl Difference {
    /// The whole output is missing.
    pub fn whole_output_missing() -> Difference {
        Difference {
            path: String::new(),
            kind: DiffKind::Missing,
        }
    }

    /// True if this says the whole output is missing.
    pub fn is_whole_output_missing(&self) -> bool {
        self.path.is_empty() && matches!(self.kind, DiffKind::Missing)
    }
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let path = if self.path.is_empty() {
            "(the output directory)"
        } else {
            &self.path
        };
        match &self.kind {
            DiffKind::Missing => write!(f, "{path}: missing (a fresh build writes it)"),
            DiffKind::Extra => write!(f, "{path}: extra (a fresh build does not write it)"),
            DiffKind::DifferentBytes => write!(f, "{path}: different bytes"),
            DiffKind::DifferentLinkTarget { expected, actual } => write!(
                f,
                "{path}: different link target ({actual}, a fresh build has {expected})"
            ),
            DiffKind::DifferentType { expected, actual } => write!(
                f,
                "{path}: different file type ({actual}, a fresh build has a {expected})"
            ),
        }
    }
}

/// An output directory's future contents (see the module documentation).
#[derive(Debug)]
pub struct Output {
    target: Target,
    entries: BTreeMap<String, Pending>,
    /// Created only when needed: at [`Output::stage`], or early on filesystems without
    /// `O_TMPFILE`.
    staging: Option<Staging>,
}

fn split(rel: &str) -> (&str, &str) {
    rel.rsplit_once('/').unwrap_or(("", rel))
}

impl Output {
    /// An empty output for `target` (nothing is created).
    pub fn new(target: &Target) -> Output {
        Output {
            target: target.clone(),
            entries: BTreeMap::new(),
            staging: None,
        }
    }

    /// The target.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// The directory anonymous files are created in (the target's parent: the same
    /// filesystem as the output, so they can be linked into it).
    pub fn temp_dir(&self) -> &Root {
        self.target.parent()
    }

    /// Holds `bytes` for the file `rel`.
    pub fn put_bytes(&mut self, rel: &str, bytes: Vec<u8>) {
        self.entries.insert(rel.to_string(), Pending::Bytes(bytes));
    }

    /// Holds a symlink `rel` → `target`.
    pub fn put_link(&mut self, rel: &str, target: &str) {
        self.entries
            .insert(rel.to_string(), Pending::Link(target.to_string()));
    }

    /// True if `rel` is held.
    pub fn contains(&self, rel: &str) -> bool {
        self.entries.contains_key(rel)
    }

    /// Moves what is held for `from` to `to`.
    pub fn rename(&mut self, from: &str, to: &str) -> Result<()> {
        if let Some(p) = self.entries.get(from)
            && matches!(p, Pending::Staged { .. })
        {
            let staging = self.staging.as_ref().expect("a staged entry has a staging");
            staging.rename(from, to)?;
        }
        let p = self
            .entries
            .remove(from)
            .ok_or_else(|| Error::internal(format!("{from} is not in the output")))?;
        self.entries.insert(to.to_string(), p);
        Ok(())
    }

    /// A new file for large content, written with `extra` flags (`O_DIRECT`) where the
    /// filesystem accepts them: anonymous (`O_TMPFILE`) in [`Output::temp_dir`], or, where
    /// the filesystem has no `O_TMPFILE`, a file at `rel` in a staging directory created
    /// now. Returns the file and whether `extra` was accepted. Hand it back with
    /// [`Output::put_file`].
    pub fn create_file(&mut self, rel: &str, extra: OFlags) -> Result<(File, bool)> {
        let dir = self.target.parent().fd();
        let tmp = |flags: OFlags| {
            // Tests take the path of filesystems without O_TMPFILE (debug builds only).
            #[cfg(debug_assertions)]
            if std::env::var_os("OCIPACK_TEST_NO_TMPFILE").is_some() {
                return Err(rustix::io::Errno::OPNOTSUPP);
            }
            rustix::fs::openat(
                dir,
                ".",
                OFlags::TMPFILE | OFlags::RDWR | OFlags::CLOEXEC | flags,
                Mode::from_raw_mode(FILE_MODE),
            )
        };
        let shown = || self.target.parent().path().to_path_buf();
        // The mode is set explicitly: `O_TMPFILE`'s creation mode is filtered by the umask
        // like any other (a blob would be 0600 under `umask 077`).
        let anonymous = |fd: rustix::fd::OwnedFd| {
            rustix::fs::fchmod(&fd, Mode::from_raw_mode(FILE_MODE))
                .map(|()| File::from(fd))
                .map_err(|e| Error::io("creating a file in", shown(), e.into()))
        };
        match tmp(extra) {
            Ok(fd) => return Ok((anonymous(fd)?, !extra.is_empty())),
            Err(rustix::io::Errno::INVAL) if !extra.is_empty() => match tmp(OFlags::empty()) {
                Ok(fd) => return Ok((anonymous(fd)?, false)),
                Err(rustix::io::Errno::OPNOTSUPP) | Err(rustix::io::Errno::ISDIR) => {}
                Err(e) => return Err(Error::io("creating a file in", shown(), e.into())),
            },
            Err(rustix::io::Errno::OPNOTSUPP) | Err(rustix::io::Errno::ISDIR) => {}
            Err(e) => return Err(Error::io("creating a file in", shown(), e.into())),
        }
        // No O_TMPFILE here: write into a staging directory right away.
        let staging = self.staging_dir()?;
        let (parent, _) = split(rel);
        if !parent.is_empty() {
            staging.create_dir(parent)?;
        }
        match staging.open_new(rel, extra) {
            Ok(f) => Ok((f, !extra.is_empty())),
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::INVAL.raw_os_error()) => staging
                .open_new(rel, OFlags::empty())
                .map(|f| (f, false))
                .map_err(|e| Error::io("creating", staging.path().join(rel), e)),
            Err(e) => Err(Error::io("creating", staging.path().join(rel), e)),
        }
    }

    /// Holds the file made by [`Output::create_file`] for `rel` (it was created as `created`
    /// and now belongs at `rel`); `same` if its content is known to equal the target's file
    /// at `rel`; `digest` is the SHA-256 of its content, as its writer computed it.
    pub fn put_file(
        &mut self,
        created: &str,
        rel: &str,
        file: File,
        same: bool,
        digest: &Digest,
    ) -> Result<()> {
        let size = rustix::fs::fstat(&file)
            .map_err(|e| Error::io("reading", self.target.shown(), e.into()))?
            .st_size;
        let content = Content {
            size: u64::try_from(size).unwrap_or_default(),
            digest: digest.clone(),
        };
        let staged = self
            .staging
            .as_ref()
            .is_some_and(|s| s.exists(created) && is_same_inode(s, created, &file));
        if staged {
            if created != rel {
                self.staging
                    .as_ref()
                    .expect("staged")
                    .rename(created, rel)?;
            }
            self.entries
                .insert(rel.to_string(), Pending::Staged { same, content });
        } else {
            self.entries.insert(
                rel.to_string(),
                Pending::Anonymous {
                    file,
                    same,
                    content,
                },
            );
        }
        Ok(())
    }

    /// Takes over what `other` holds for the same target: a path held by both is kept as
    /// this output holds it (outputs of one build name blobs by their digest, so the same
    /// path is the same content), so each file is written once.
    pub fn absorb(&mut self, mut other: Output) -> Result<()> {
        if other.target.shown() != self.target.shown() {
            return Err(Error::internal("outputs for different targets"));
        }
        for (rel, p) in std::mem::take(&mut other.entries) {
            if self.entries.contains_key(&rel) {
                continue;
            }
            if let Pending::Staged { .. } = p {
                let from = other
                    .staging
                    .as_ref()
                    .expect("a staged entry has a staging");
                self.staging_dir()?.adopt(from, &rel)?;
            }
            self.entries.insert(rel, p);
        }
        Ok(())
    }

    fn staging_dir(&mut self) -> Result<&mut Staging> {
        if self.staging.is_none() {
            self.staging = Some(Staging::dir(&self.target)?);
        }
        Ok(self.staging.as_mut().expect("just created"))
    }

    /// How the target differs from what this output holds (empty: identical). Nothing is
    /// written; anonymous files are not read (their equality is known from when they were
    /// written). Modes are not compared (git does not keep them: `build --check` compares
    /// what a checkout holds); see [`Output::needs_write`].
    pub fn differences(&self) -> Result<Vec<Difference>> {
        self.survey().map(|(d, _)| d)
    }

    /// True if the target must be written: it differs ([`Output::differences`]), or one of
    /// its files or directories does not have the mode ocipack gives what it writes (0644,
    /// 0755, whatever the umask) — a blob left 0600 by an older build under `umask 077`, say,
    /// which a rebuild then repairs. A target that is right is not touched.
    pub fn needs_write(&self) -> Result<bool> {
        self.survey()
            .map(|(d, modes_ok)| !d.is_empty() || !modes_ok)
    }

    /// The differences, and whether every file and directory has its mode.
    fn survey(&self) -> Result<(Vec<Difference>, bool)> {
        let existing = match self.target.existing()? {
            Existing::Missing => return Ok((vec![Difference::whole_output_missing()], true)),
            Existing::Other(kind) => {
                return Ok((
                    vec![Difference {
                        path: String::new(),
                        kind: DiffKind::DifferentType {
                            expected: "directory",
                            actual: kind,
                        },
                    }],
                    true,
                ));
            }
            Existing::Dir(root) => root,
        };
        let mut modes_ok =
            rustix::fs::fstat(existing.fd()).is_ok_and(|st| st.st_mode & 0o7777 == DIR_MODE);
        // The expected tree: every held path and the directories above it.
        let mut expected: BTreeMap<String, EntryType> = BTreeMap::new();
        for (rel, p) in &self.entries {
            let mut dir = split(rel).0;
            while !dir.is_empty() {
                expected.insert(dir.to_string(), EntryType::Dir);
                dir = split(dir).0;
            }
            let t = match p {
                Pending::Link(_) => EntryType::Symlink,
                _ => EntryType::File,
            };
            expected.insert(rel.clone(), t);
        }
        let mut actual: BTreeMap<String, (EntryType, u32)> = BTreeMap::new();
        let mut unnamed = Vec::new();
        list_tree(&existing, "", &mut actual, &mut unnamed)?;
        let mut out = Vec::new();
        let paths: BTreeSet<&String> = expected.keys().chain(actual.keys()).collect();
        for rel in paths {
            let kind = match (expected.get(rel), actual.get(rel)) {
                (Some(_), None) => Some(DiffKind::Missing),
                (None, Some(_)) => Some(DiffKind::Extra),
                (None, None) => None,
                (Some(e), Some((a, _))) if e != a => Some(DiffKind::DifferentType {
                    expected: e.name(),
                    actual: a.name(),
                }),
                (Some(e), Some((_, mode))) => {
                    match e {
                        EntryType::Dir => modes_ok &= *mode == DIR_MODE,
                        EntryType::File => modes_ok &= *mode == FILE_MODE,
                        _ => {}
                    }
                    match e {
                        EntryType::Dir => None,
                        _ => self.compare_one(&existing, rel)?,
                    }
                }
            };
            if let Some(kind) = kind {
                out.push(Difference {
                    path: show::text(rel),
                    kind,
                });
            }
        }
        // Names that are not UTF-8 are never ocipack's: extra, shown escaped.
        out.extend(unnamed.into_iter().map(|path| Difference {
            path,
            kind: DiffKind::Extra,
        }));
        Ok((out, modes_ok))
    }

    fn compare_one(&self, existing: &Root, rel: &str) -> Result<Option<DiffKind>> {
        let err = |e: OpenError| Error::input(existing.shown(rel), e.to_string());
        Ok(match &self.entries[rel] {
            Pending::Bytes(b) => {
                match existing.read(rel, b.len() as u64) {
                    // Larger than the expected content: different, whatever it holds.
                    Err(OpenError::TooLarge { .. }) => Some(DiffKind::DifferentBytes),
                    Err(e) => return Err(err(e)),
                    Ok(on_disk) => (on_disk != *b).then_some(DiffKind::DifferentBytes),
                }
            }
            Pending::Link(t) => {
                let on_disk = existing.read_link(rel).map_err(err)?;
                (on_disk != t.as_bytes()).then(|| DiffKind::DifferentLinkTarget {
                    expected: show::text(t),
                    actual: show::bytes(&on_disk),
                })
            }
            Pending::Anonymous { same, .. } | Pending::Staged { same, .. } => {
                (!same).then_some(DiffKind::DifferentBytes)
            }
        })
    }

    /// What the output will hold, path by path ([`Listing`]): known without reading
    /// anything back (held bytes are hashed, files written outside memory carry the digest
    /// their writer computed).
    pub fn listing(&self) -> Listing {
        let mut out = BTreeMap::new();
        for (rel, p) in &self.entries {
            let mut dir = split(rel).0;
            while !dir.is_empty() {
                out.insert(dir.to_string(), Listed::Dir);
                dir = split(dir).0;
            }
            let listed = match p {
                Pending::Bytes(b) => Listed::File {
                    size: b.len() as u64,
                    digest: Digest::sha256_of(b),
                },
                Pending::Link(t) => Listed::Symlink { target: t.clone() },
                Pending::Anonymous { content, .. } | Pending::Staged { content, .. } => {
                    Listed::File {
                        size: content.size,
                        digest: content.digest.clone(),
                    }
                }
            };
            out.insert(rel.clone(), listed);
        }
        Listing(out)
    }

    /// Writes everything held into a staging directory beside the target (no flush yet:
    /// [`commit_all`](super::staging::commit_all) makes all staged outputs durable at once).
    pub fn stage(mut self) -> Result<Staging> {
        let mut staging = match self.staging.take() {
            Some(s) => s,
            None => Staging::dir(&self.target)?,
        };
        for (rel, p) in std::mem::take(&mut self.entries) {
            let (parent, _) = split(&rel);
            if !parent.is_empty() {
                staging.create_dir(parent)?;
            }
            match p {
                Pending::Bytes(b) => staging.write_file(&rel, &b)?,
                Pending::Link(t) => staging.symlink(&t, &rel)?,
                Pending::Staged { .. } => {}
                Pending::Anonymous { file, .. } => link_anonymous(&mut staging, &rel, &file)?,
            }
        }
        Ok(staging)
    }
}

fn is_same_inode(staging: &Staging, rel: &str, file: &File) -> bool {
    let (Ok(a), Ok(Some(_))) = (
        rustix::fs::fstat(file),
        staging.root().entry_type(rel).map_err(|_| ()),
    ) else {
        return false;
    };
    let (dir, name) = split(rel);
    let Ok(d) = staging.root().subdir(dir, false) else {
        return false;
    };
    rustix::fs::statat(d.fd(), name, AtFlags::SYMLINK_NOFOLLOW)
        .is_ok_and(|b| (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino))
}

/// Gives an anonymous (`O_TMPFILE`) file the name `rel` in the staging directory, through
/// `/proc/self/fd` (linking a descriptor by `AT_EMPTY_PATH` needs a capability).
fn link_anonymous(staging: &mut Staging, rel: &str, file: &File) -> Result<()> {
    let (dir, name) = split(rel);
    let d = staging.root().subdir(dir, false).map_err(|e| {
        Error::io(
            "opening",
            staging.path().join(dir),
            std::io::Error::other(e.to_string()),
        )
    })?;
    staging.keep(file.as_fd());
    let proc = format!("/proc/self/fd/{}", file.as_fd().as_raw_fd());
    rustix::fs::linkat(
        rustix::fs::CWD,
        proc.as_str(),
        d.fd(),
        name,
        AtFlags::SYMLINK_FOLLOW,
    )
    .map_err(|e| Error::io("linking", staging.path().join(rel), e.into()))
}

/// Every path below `rel` in `root`, with its type and permission bits; paths whose name is
/// not UTF-8 (none of ocipack's) go to `unnamed`, escaped, and are not descended into: a
/// lossy name could be confused with one ocipack writes.
fn list_tree(
    root: &Root,
    rel: &str,
    out: &mut BTreeMap<String, (EntryType, u32)>,
    unnamed: &mut Vec<String>,
) -> Result<()> {
    let list = root
        .list_dir_modes(rel)
        .map_err(|e| Error::input(root.shown(rel), e.to_string()))?
        .unwrap_or_default();
    for (name, t, mode) in list {
        let name = match String::from_utf8(name) {
            Ok(name) => name,
            Err(e) => {
                let mut path = rel.as_bytes().to_vec();
                if !rel.is_empty() {
                    path.push(b'/');
                }
                path.extend_from_slice(e.as_bytes());
                unnamed.push(show::bytes(&path));
                continue;
            }
        };
        let path = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        if t == EntryType::Dir {
            list_tree(root, &path, out, unnamed)?;
        }
        out.insert(path, (t, mode));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::staging::commit_all;

    /// The differences of `out` from what is on disk, as printed.
    fn shown(out: &Output) -> Vec<String> {
        out.differences()
            .unwrap()
            .iter()
            .map(|d| d.to_string())
            .collect()
    }
    use std::fs;
    use std::os::unix::fs::symlink;

    #[test]
    fn differences_list_each_kind_and_nothing_is_written() {
        let t = tempfile::tempdir().unwrap();
        let b = t.path().join("b");
        fs::create_dir_all(b.join("blobs/sha256")).unwrap();
        fs::write(b.join("same"), b"x").unwrap();
        fs::write(b.join("blobs/sha256/f"), b"2").unwrap();
        fs::write(b.join("only-disk"), b"").unwrap();
        fs::write(b.join("bytes"), b"abd").unwrap();
        symlink("blobs/sha256/g", b.join("link")).unwrap();
        symlink("same", b.join("kind")).unwrap();
        let target = Target::at_path(&b).unwrap();
        let mut out = Output::new(&target);
        out.put_bytes("same", b"x".to_vec());
        out.put_bytes("blobs/sha256/f", b"1".to_vec());
        out.put_bytes("only-fresh", Vec::new());
        out.put_bytes("bytes", b"abc".to_vec());
        out.put_link("link", "blobs/sha256/f");
        out.put_bytes("kind", Vec::new());
        let before = fs::metadata(t.path()).unwrap().modified().unwrap();
        let shown = shown(&out);
        assert_eq!(
            shown,
            [
                "blobs/sha256/f: different bytes",
                "bytes: different bytes",
                "kind: different file type (symlink, a fresh build has a regular file)",
                "link: different link target (blobs/sha256/g, a fresh build has blobs/sha256/f)",
                "only-disk: extra (a fresh build does not write it)",
                "only-fresh: missing (a fresh build writes it)",
            ]
        );
        assert_eq!(fs::metadata(t.path()).unwrap().modified().unwrap(), before);
        assert_eq!(
            fs::read_dir(t.path()).unwrap().count(),
            1,
            "nothing written"
        );

        let gone = Output::new(&Target::at_path(&t.path().join("none")).unwrap());
        assert_eq!(
            gone.differences().unwrap(),
            [Difference::whole_output_missing()]
        );
    }

    /// A file on disk larger than the bytes held for it differs, whatever the bytes held
    /// (before, a file too large to read compared as empty: equal to an empty file).
    #[test]
    fn a_larger_file_on_disk_is_different_bytes_even_from_an_empty_one() {
        let t = tempfile::tempdir().unwrap();
        let b = t.path().join("b");
        fs::create_dir_all(&b).unwrap();
        fs::write(b.join("empty"), b"not empty at all").unwrap();
        fs::write(b.join("short"), b"longer than expected").unwrap();
        let mut out = Output::new(&Target::at_path(&b).unwrap());
        out.put_bytes("empty", Vec::new());
        out.put_bytes("short", b"long".to_vec());
        let shown = shown(&out);
        assert_eq!(shown, ["empty: different bytes", "short: different bytes"]);
    }

    /// Entries whose name is not UTF-8 are extra, shown escaped, never matched with a name
    /// ocipack writes through a lossy conversion.
    #[test]
    fn a_name_that_is_not_utf8_is_extra() {
        use std::ffi::OsStr;
        use std::os::unix::ffi::OsStrExt;
        let t = tempfile::tempdir().unwrap();
        let b = t.path().join("b");
        fs::create_dir_all(&b).unwrap();
        fs::write(b.join(OsStr::from_bytes(b"f\xff")), b"x").unwrap();
        let mut out = Output::new(&Target::at_path(&b).unwrap());
        out.put_bytes("f\u{FFFD}", b"x".to_vec());
        let shown = shown(&out);
        assert_eq!(
            shown,
            [
                "f\u{FFFD}: missing (a fresh build writes it)",
                "f\\xff: extra (a fresh build does not write it)",
            ]
        );
    }

    #[test]
    fn an_anonymous_file_is_linked_in_and_staging_swaps_whole() {
        let t = tempfile::tempdir().unwrap();
        let out_dir = t.path().join("out");
        let target = Target::at_path(&out_dir).unwrap();
        let mut out = Output::new(&target);
        let (mut f, _) = out.create_file("blobs/x.partial", OFlags::empty()).unwrap();
        std::io::Write::write_all(&mut f, b"content").unwrap();
        let digest = crate::digest::Digest::sha256_of(b"content");
        out.put_file("blobs/x.partial", "blobs/x", f, false, &digest)
            .unwrap();
        out.put_bytes("index.json", b"{}".to_vec());
        out.put_link("x", "blobs/x");
        assert_eq!(
            fs::read_dir(t.path()).unwrap().count(),
            0,
            "nothing named yet"
        );
        let listing = out.listing();
        let staged = out.stage().unwrap();
        commit_all(vec![(staged, target)]).unwrap();
        // The listing known before anything was written is what the disk holds.
        let root = Root::open_with(&out_dir, crate::store::root::Follow::Never).unwrap();
        assert_eq!(listing.0.len(), 4, "{listing:?}");
        assert!(listing.matches(&root).unwrap());
        assert_eq!(fs::read(out_dir.join("blobs/x")).unwrap(), b"content");
        assert_eq!(fs::read(out_dir.join("index.json")).unwrap(), b"{}");
        assert_eq!(
            fs::read_dir(t.path()).unwrap().count(),
            1,
            "no staging left"
        );
    }
}
