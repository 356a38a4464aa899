//! Staging: every output is assembled beside its target and swapped into place whole.
//!
//! Contract:
//! - A [`Target`] is a directory held open plus a name in it. Project outputs are resolved
//!   beneath the project directory one component at a time, refusing every symlink, so an
//!   output can never land outside the project; the parent of a target the user named on
//!   the command line is opened as the user wrote it. Every later operation (create, swap,
//!   remove) is relative to that descriptor, never to a path.
//! - A [`Staging`] (a directory or a file) is created exclusively beside its target under a
//!   hidden name, `.<target>.ocipack-<pid>-<n>`, mode 0755/0644 whatever the umask, and held
//!   `flock`ed by the process for as long as it exists.
//! - [`Staging::commit`] makes the staged files durable, then replaces the target in one
//!   `renameat2(RENAME_EXCHANGE)` (or one `rename` when the target does not exist): readers
//!   see the old output or the new one, never a mixture. [`commit_all`] does the same for
//!   several outputs at once, every `fsync` of all of them issued together before the first
//!   swap. A staging dropped without a commit removes itself.
//! - SIGINT, SIGTERM and SIGHUP remove every live staging before the process dies of the
//!   signal (a handler thread does it; commits and the handler exclude each other, so a
//!   half-removed staging is never swapped in, and a commit of several outputs swaps all of
//!   them or none). A signal inherited as ignored (`nohup`) stays ignored. SIGKILL cannot be
//!   caught: the next run on the same target sweeps the staging entries no process holds
//!   locked. An entry is created with a creation mode, locked, and only then given its
//!   final mode; an unlocked entry still in its creation mode may be another thread's or a
//!   live process's that is about to lock it, so it is swept only when its process is gone.

use std::collections::BTreeSet;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, Once};

use rustix::fs::{AtFlags, FileType, FlockOperation, Mode, OFlags, RenameFlags};

use super::hook::test_hook;
use super::root::{EntryType, Follow, OpenError, Root, TEMPFILE_PREFIX, kind_name, open_dir_at};
use super::{DIR_MODE, FILE_MODE};
use crate::error::{Error, Result};
use crate::show;

/// The most bytes of the target's name used in a staging name (names are at most 255).
const MAX_BASE: usize = 200;

/// Where an output goes: its parent directory, held open, and its name there.
#[derive(Debug, Clone)]
pub struct Target {
    parent: Root,
    name: OsString,
    /// Directories in which a parent of the target was created ([`Target::beneath_creating`]):
    /// their new entries are made durable with the output ([`commit_all`]).
    created_in: Vec<Root>,
}

/// What a target currently is.
#[derive(Debug)]
pub enum Existing {
    /// Nothing: the first build.
    Missing,
    /// A directory (opened, symlinks beneath it refused).
    Dir(Root),
    /// Something else: a file, a symlink, a FIFO, ...
    Other(&'static str),
}

/// `rel` split into its parent path and its last component, which must name something
/// below the project (not empty, `.` or `..`).
fn split_target<'a>(rel: &'a str, what: &str) -> Result<(&'a str, &'a str)> {
    let rel = rel.trim_end_matches('/');
    let (parent, name) = rel.rsplit_once('/').unwrap_or(("", rel));
    if name.is_empty() || name == "." || name == ".." {
        return Err(Error::input(
            what,
            "must name a directory below the project",
        ));
    }
    Ok((parent, name))
}

impl Target {
    /// The target `out` as the user named it: its parent directory (which must exist) is
    /// opened as written; `out` itself must be a plain name, never `.` or `..`.
    pub fn at_path(out: &Path) -> Result<Target> {
        let name = out.file_name().filter(|n| *n != "." && *n != "..");
        let name = name.ok_or_else(|| {
            Error::input(
                format!("output {}", show::path(out)),
                "must end in a file name (not /, . or ..)",
            )
        })?;
        let parent = match out.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let root = Root::open_with(parent, Follow::Never).map_err(|e| {
            Error::input(
                format!("output {}", show::path(out)),
                format!(
                    "its parent directory {} cannot be opened: {e}",
                    show::path(parent)
                ),
            )
        })?;
        Ok(Target {
            parent: root,
            name: name.to_os_string(),
            created_in: Vec::new(),
        })
    }

    /// The target `rel` beneath `root` (a project directory): every component is resolved
    /// without following symlinks, and missing parent directories are created when `create`.
    /// `what` names the setting in errors (`ocipack.toml: output "amd64/oci"`).
    pub fn beneath(root: &Root, rel: &str, create: bool, what: &str) -> Result<Target> {
        let strict = root.clone_strict();
        let (parent_rel, name) = split_target(rel, what)?;
        let parent = strict
            .subdir(parent_rel, create)
            .map_err(|e| parent_error(what, &strict, parent_rel, e))?;
        Ok(Target {
            parent,
            name: OsString::from(name),
            created_in: Vec::new(),
        })
    }

    /// [`Target::beneath`] creating missing parents, each recorded in `created` so that a
    /// failed build can remove them again ([`CreatedDirs`]).
    pub fn beneath_creating(
        root: &Root,
        rel: &str,
        what: &str,
        created: &CreatedDirs,
    ) -> Result<Target> {
        let strict = root.clone_strict();
        let (parent_rel, name) = split_target(rel, what)?;
        let mut log = Vec::new();
        let parent = strict.subdir_logged(parent_rel, true, &mut log);
        let created_in = log.iter().map(|(dir, _)| dir.clone()).collect();
        created
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(log);
        let parent = parent.map_err(|e| parent_error(what, &strict, parent_rel, e))?;
        Ok(Target {
            parent,
            name: OsString::from(name),
            created_in,
        })
    }

    /// The parent directory.
    pub fn parent(&self) -> &Root {
        &self.parent
    }

    /// The name in the parent directory.
    pub fn name(&self) -> &OsStr {
        &self.name
    }

    /// The directories a parent of the target was created in, by this process.
    fn created_in(&self) -> &[Root] {
        &self.created_in
    }

    /// The target's path for messages (escaped).
    pub fn shown(&self) -> String {
        show::path(&self.parent.path().join(&self.name))
    }

    /// What is at the target now (a symlink is reported as such, never followed).
    pub fn existing(&self) -> Result<Existing> {
        let st = match rustix::fs::statat(self.parent.fd(), &self.name, AtFlags::SYMLINK_NOFOLLOW) {
            Err(rustix::io::Errno::NOENT) => return Ok(Existing::Missing),
            Err(e) => {
                return Err(Error::input_io(
                    "inspecting output",
                    self.parent.path().join(&self.name),
                    e.into(),
                ));
            }
            Ok(st) => st,
        };
        let ft = FileType::from_raw_mode(st.st_mode);
        if ft != FileType::Directory {
            return Ok(Existing::Other(kind_name(ft)));
        }
        // Opened by its name as it is (bytes, never a lossy conversion), relative to the
        // parent held open, without following a symlink that replaced it meanwhile.
        let fd = open_dir_at(self.parent.fd(), &self.name).map_err(|e| {
            Error::input(
                format!("output {}", self.shown()),
                OpenError::from(e).to_string(),
            )
        })?;
        Ok(Existing::Dir(Root::from_fd(
            fd,
            &self.parent.path().join(&self.name),
            Follow::Never,
        )))
    }

    fn base(&self) -> Vec<u8> {
        let b = self.name.as_bytes();
        b[..b.len().min(MAX_BASE)].to_vec()
    }

    /// The prefix every staging name of this target starts with.
    fn staging_prefix(&self) -> Vec<u8> {
        let mut p = vec![b'.'];
        p.extend_from_slice(&self.base());
        p.extend_from_slice(b".ocipack-");
        p
    }
}

/// The error for a target's parent that cannot be resolved: an error naming the component
/// at fault (a symlink, a non-directory) is enough; any other is given the parent's path.
fn parent_error(what: &str, root: &Root, parent_rel: &str, e: OpenError) -> Error {
    match e {
        OpenError::Symlink(_)
        | OpenError::NotADirectory(_)
        | OpenError::AbsoluteLink { .. }
        | OpenError::Escapes { .. } => Error::input(what, e.to_string()),
        e => Error::input(what, format!("{}: {e}", root.shown(parent_rel))),
    }
}

/// Directories a build created for its outputs' parents: removed again (those still empty)
/// when dropped, unless the build succeeded and called [`CreatedDirs::keep`]. A failed build
/// leaves no directory behind. Parallel builds record them in any order (one thread may
/// record `latest/musl` before another records the `latest` it made), so removal repeats
/// until a pass removes nothing, rather than trusting the order of the records.
#[derive(Debug, Default)]
pub struct CreatedDirs(Mutex<Vec<(Root, String)>>);

impl CreatedDirs {
    /// The build succeeded: the directories stay.
    pub fn keep(self) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

impl Drop for CreatedDirs {
    fn drop(&mut self) {
        let mut left = std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()));
        loop {
            let before = left.len();
            // Only an empty directory goes: anything put there meanwhile stays. Innermost
            // first in the usual order; a directory not yet empty is tried again.
            left = left
                .into_iter()
                .rev()
                .filter(|(parent, name)| {
                    matches!(
                        rustix::fs::unlinkat(parent.fd(), name.as_str(), AtFlags::REMOVEDIR),
                        Err(rustix::io::Errno::NOTEMPTY | rustix::io::Errno::EXIST)
                    )
                })
                .collect::<Vec<_>>();
            left.reverse();
            if left.len() == before || left.is_empty() {
                break;
            }
        }
    }
}

/// Whether a staging is a directory or a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Dir,
    File,
}

/// An output being assembled beside its target (see the module documentation).
#[derive(Debug)]
pub struct Staging {
    parent: Root,
    name: OsString,
    kind: Kind,
    /// The staged directory (its descriptor holds the lock), for directories.
    dir: Option<Root>,
    /// The lock, held for the staging's lifetime.
    _lock: OwnedFd,
    /// Everything written into the staging (files, directories, the staging itself),
    /// made durable together at commit ([`commit_all`]).
    durable: Vec<OwnedFd>,
    id: u64,
    done: bool,
}

impl Staging {
    /// A new, empty staging directory (mode 0755) beside `target`. Stale staging of dead
    /// processes beside the same target is removed first.
    pub fn dir(target: &Target) -> Result<Staging> {
        Staging::create(target, Kind::Dir).map(|(s, _)| s)
    }

    /// A new, empty staging file (mode 0644) beside `target`, and the file open for writing.
    pub fn file(target: &Target) -> Result<(Staging, File)> {
        let (s, f) = Staging::create(target, Kind::File)?;
        Ok((s, f.expect("a file staging has a file")))
    }

    fn create(target: &Target, kind: Kind) -> Result<(Staging, Option<File>)> {
        sweep(target);
        let parent = target.parent.clone_strict();
        let io = |op, e: rustix::io::Errno| Error::io(op, parent.path(), e.into());
        for n in 0..1000u32 {
            let mut name = target.staging_prefix();
            name.extend_from_slice(format!("{}-{n}", std::process::id()).as_bytes());
            if kind == Kind::File {
                name.extend_from_slice(b".tmp");
            }
            let name = OsString::from(OsStr::from_bytes(&name));
            // Register before creating, so that a signal arriving in between removes it.
            let id = register(&parent, &name);
            let created = match kind {
                // Created with a mode that is not its final one (the umask may lower it
                // further): the sweep leaves such an entry to a live process.
                Kind::Dir => rustix::fs::mkdirat(parent.fd(), &name, Mode::from_raw_mode(0o700))
                    .and_then(|()| {
                        rustix::fs::openat(
                            parent.fd(),
                            &name,
                            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                            Mode::empty(),
                        )
                    }),
                Kind::File => rustix::fs::openat(
                    parent.fd(),
                    &name,
                    OFlags::RDWR
                        | OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC,
                    Mode::from_raw_mode(0o600),
                ),
            };
            let fd = match created {
                Ok(fd) => fd,
                Err(rustix::io::Errno::EXIST) => {
                    unregister(id);
                    continue;
                }
                Err(e) => {
                    unregister(id);
                    return Err(io("creating a staging entry in", e));
                }
            };
            let mode = if kind == Kind::Dir {
                DIR_MODE
            } else {
                FILE_MODE
            };
            let staging_fail = |e| {
                let _ = remove_at(parent.fd(), &name);
                unregister(id);
                io("preparing a staging entry in", e)
            };
            // Locked first, then given its final mode: an entry with its final mode and no
            // lock is stale, whatever its name says.
            rustix::fs::flock(&fd, FlockOperation::NonBlockingLockExclusive)
                .map_err(staging_fail)?;
            rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode)).map_err(staging_fail)?;
            let dup = rustix::io::fcntl_dupfd_cloexec(&fd, 0).map_err(staging_fail)?;
            let keep_fd = rustix::io::fcntl_dupfd_cloexec(&fd, 0).map_err(staging_fail)?;
            let (file, dir) = match kind {
                Kind::File => (Some(File::from(dup)), None),
                Kind::Dir => (
                    None,
                    Some(Root::from_fd(
                        dup,
                        &parent.path().join(&name),
                        Follow::Never,
                    )),
                ),
            };
            return Ok((
                Staging {
                    parent,
                    name,
                    kind,
                    dir,
                    durable: vec![keep_fd],
                    _lock: fd,
                    id,
                    done: false,
                },
                file,
            ));
        }
        Err(Error::io(
            "creating a staging entry in",
            target.parent.path(),
            std::io::Error::other("1000 names are taken"),
        ))
    }

    /// The staged directory (symlinks beneath it are refused).
    pub fn root(&self) -> &Root {
        self.dir.as_ref().expect("a directory staging")
    }

    /// Creates the directory `rel` (mode 0755) inside the staged directory.
    pub fn create_dir(&mut self, rel: &str) -> Result<()> {
        let mut walked = String::new();
        for comp in rel.split('/').filter(|c| !c.is_empty()) {
            if !walked.is_empty() {
                walked.push('/');
            }
            walked.push_str(comp);
            if self.root().entry_type(&walked).ok().flatten().is_some() {
                continue;
            }
            let dir = self
                .root()
                .subdir(&walked, true)
                .map_err(|e| Error::io("creating", self.root().path().join(&walked), open_io(e)))?;
            self.keep(dir.fd());
        }
        Ok(())
    }

    /// Keeps a descriptor of something written, to make it durable at commit.
    pub(crate) fn keep(&mut self, fd: BorrowedFd<'_>) {
        if let Ok(fd) = rustix::io::fcntl_dupfd_cloexec(fd, 0) {
            self.durable.push(fd);
        }
    }

    /// The descriptors of everything written (see [`commit_all`]).
    fn durable(&self) -> &[OwnedFd] {
        &self.durable
    }

    /// Creates the file `rel` inside the staged directory, mode 0644 whatever the umask,
    /// and returns it open for writing; it is made durable at commit.
    pub fn create_file(&mut self, rel: &str) -> Result<File> {
        self.create_file_with(rel, OFlags::empty())
    }

    /// Like [`Staging::create_file`], with extra open flags (`O_DIRECT`).
    pub fn create_file_with(&mut self, rel: &str, extra: OFlags) -> Result<File> {
        self.open_new(rel, extra)
            .map_err(|e| Error::io("creating", self.root().path().join(rel), e))
    }

    /// Creates the file `rel` (mode 0644) with extra open flags; the operating system's
    /// error as it is, so that a caller can retry without a flag the filesystem refuses.
    pub fn open_new(&mut self, rel: &str, extra: OFlags) -> std::io::Result<File> {
        let (dir, name) = self
            .dir_of(rel)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let fd = rustix::fs::openat(
            dir.fd(),
            &name,
            OFlags::RDWR
                | OFlags::CREATE
                | OFlags::EXCL
                | OFlags::NOFOLLOW
                | OFlags::CLOEXEC
                | extra,
            Mode::from_raw_mode(FILE_MODE),
        )?;
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(FILE_MODE))?;
        self.keep(fd.as_fd());
        Ok(File::from(fd))
    }

    /// Creates the file `rel` with permission bits `mode` (whatever the umask) in a staging
    /// that is read and dropped, never committed (a copy of a layout for `push`): unlike
    /// [`Staging::create_file`], no descriptor is kept to make it durable.
    pub fn create_scratch_file(&self, rel: &str, mode: u32) -> Result<File> {
        let (dir, name) = self.dir_of(rel)?;
        let io =
            |e: rustix::io::Errno| Error::io("creating", self.root().path().join(rel), e.into());
        let fd = rustix::fs::openat(
            dir.fd(),
            &name,
            OFlags::RDWR | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .map_err(io)?;
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode & 0o777)).map_err(io)?;
        Ok(File::from(fd))
    }

    /// Writes a new file `rel` holding `bytes`.
    pub fn write_file(&mut self, rel: &str, bytes: &[u8]) -> Result<()> {
        let mut f = self.create_file(rel)?;
        f.write_all(bytes)
            .map_err(|e| Error::io("writing", self.root().path().join(rel), e))
    }

    /// Creates the symlink `rel` → `target` inside the staged directory.
    pub fn symlink(&self, target: &str, rel: &str) -> Result<()> {
        let (dir, name) = self.dir_of(rel)?;
        rustix::fs::symlinkat(target, dir.fd(), &name)
            .map_err(|e| Error::io("creating symlink", self.root().path().join(rel), e.into()))
    }

    /// Renames `from` to `to`, both inside the staged directory.
    pub fn rename(&self, from: &str, to: &str) -> Result<()> {
        let (fdir, fname) = self.dir_of(from)?;
        let (tdir, tname) = self.dir_of(to)?;
        rustix::fs::renameat(fdir.fd(), &fname, tdir.fd(), &tname)
            .map_err(|e| Error::io("renaming", self.root().path().join(from), e.into()))
    }

    /// Moves the file `rel` of the staged directory `from` (beside the same target, so on
    /// the same filesystem) to `rel` in this one, where it is made durable at commit.
    pub fn adopt(&mut self, from: &Staging, rel: &str) -> Result<()> {
        if let Some((parent, _)) = rel.rsplit_once('/') {
            self.create_dir(parent)?;
        }
        let (fdir, fname) = from.dir_of(rel)?;
        let (tdir, tname) = self.dir_of(rel)?;
        rustix::fs::renameat(fdir.fd(), &fname, tdir.fd(), &tname)
            .map_err(|e| Error::io("moving", from.root().path().join(rel), e.into()))?;
        let opened = self
            .root()
            .open_file(rel)
            .map_err(|e| Error::io("opening", self.root().path().join(rel), open_io(e)))?;
        self.keep(opened.file.as_fd());
        Ok(())
    }

    /// True if `rel` exists inside the staged directory.
    pub fn exists(&self, rel: &str) -> bool {
        matches!(self.root().entry_type(rel), Ok(Some(_)))
    }

    fn dir_of(&self, rel: &str) -> Result<(Root, OsString)> {
        let (parent, name) = match rel.rsplit_once('/') {
            Some((p, n)) => (p, n),
            None => ("", rel),
        };
        let dir = self
            .root()
            .subdir(parent, false)
            .map_err(|e| Error::io("opening", self.root().path().join(parent), open_io(e)))?;
        Ok((dir, OsString::from(name)))
    }

    /// The staging's path, for messages and comparisons.
    pub fn path(&self) -> std::path::PathBuf {
        self.parent.path().join(&self.name)
    }

    /// Makes the staging durable and puts it in the place of `target` in one atomic step
    /// (see [`commit_all`], which does it for several at once). Returns what
    /// the target held before, for the caller to remove (dropping it does).
    pub fn commit(self, target: &Target) -> Result<Replaced> {
        let mut r = commit_all(vec![(self, target.clone())])?;
        Ok(r.pop().expect("one commit, one result"))
    }

    /// Puts the staging in the place of `target` in one atomic step, without flushing
    /// anything (the caller does, before and after). `lock` keeps the signal handler out
    /// ([`commit_lock`]); the caller holds it across every swap of a commit and drops it
    /// before dropping a staging whose swap failed (which removes itself).
    fn swap(&mut self, target: &Target, lock: &mut CommitLock) -> Result<Replaced> {
        let replacing = |e: rustix::io::Errno| {
            Error::io(
                "replacing",
                target.parent.path().join(&target.name),
                e.into(),
            )
        };
        let exchanged = match rustix::fs::renameat_with(
            self.parent.fd(),
            &self.name,
            target.parent.fd(),
            &target.name,
            RenameFlags::NOREPLACE,
        ) {
            Ok(()) => false,
            Err(rustix::io::Errno::EXIST) if self.kind == Kind::Dir => {
                rustix::fs::renameat_with(
                    self.parent.fd(),
                    &self.name,
                    target.parent.fd(),
                    &target.name,
                    RenameFlags::EXCHANGE,
                )
                .map_err(replacing)?;
                true
            }
            Err(rustix::io::Errno::EXIST) => {
                rustix::fs::renameat(
                    self.parent.fd(),
                    &self.name,
                    target.parent.fd(),
                    &target.name,
                )
                .map_err(replacing)?;
                false
            }
            Err(e) => {
                return Err(Error::io(
                    "renaming into place",
                    target.parent.path().join(&target.name),
                    e.into(),
                ));
            }
        };
        self.done = true;
        if exchanged {
            // The staging name now holds the previous output; it stays registered until removed.
            Ok(Replaced {
                entry: Some((self.parent.clone(), self.name.clone(), self.id)),
            })
        } else {
            unregister_locked(&mut lock.0, self.id);
            Ok(Replaced { entry: None })
        }
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.done {
            let mut list = live();
            let _ = remove_at(self.parent.fd(), &self.name);
            unregister_locked(&mut list, self.id);
        }
    }
}

/// What a committed output replaced, still beside it under its staging name; removed by
/// [`Replaced::remove`] or when dropped.
#[derive(Debug)]
pub struct Replaced {
    entry: Option<(Root, OsString, u64)>,
}

impl Replaced {
    /// Removes the previous output.
    pub fn remove(mut self) {
        self.remove_now();
    }

    fn remove_now(&mut self) {
        if let Some((parent, name, id)) = self.entry.take() {
            let _ = remove_at(parent.fd(), &name);
            unregister(id);
        }
    }
}

impl Drop for Replaced {
    fn drop(&mut self) {
        self.remove_now();
    }
}

/// Makes every staged output durable, then swaps each into place and makes the renames
/// durable. Durability is batched: the `fsync`s of every file and directory written, for all
/// outputs at once, are issued from a few threads together, so that the filesystem's
/// journal commits them as one group (ext4 here: 4–6 ms for the hello-world example's 60
/// files and 30 directories, against 270–370 ms for the same `fsync`s one after another;
/// `bench/durability.rs`). One `syncfs` was as fast on an idle disk, but it also writes
/// back whatever else is dirty on the filesystem — a build's output, say — so its cost is
/// not ocipack's to bound. Returns what the targets held, for the caller to remove once the
/// result is reported.
///
/// The swaps happen under the staging registry's commit lock: a SIGINT, SIGTERM or SIGHUP
/// arriving between two of them waits until all are done, so several outputs are committed
/// all or none.
pub fn commit_all(mut staged: Vec<(Staging, Target)>) -> Result<Vec<Replaced>> {
    if staged.is_empty() {
        return Ok(Vec::new());
    }
    let fds = pre_swap_fds(&staged);
    fsync_all(&fds).map_err(|e| Error::io("syncing", staged[0].0.path(), e.into()))?;
    drop(fds);
    test_hook("OCIPACK_TEST_HOOK_BEFORE_SWAP");
    let parents: Vec<Root> = staged.iter().map(|(_, t)| t.parent().clone()).collect();
    let mut replaced = Vec::new();
    let swapped = {
        let mut lock = commit_lock();
        let last = staged.len() - 1;
        let mut swapped = Ok(());
        for (n, (s, t)) in staged.iter_mut().enumerate() {
            match s.swap(t, &mut lock) {
                Ok(r) => replaced.push(r),
                Err(e) => {
                    swapped = Err(e);
                    break;
                }
            }
            if n < last {
                // Tests send a signal between two swaps (debug builds only).
                test_hook("OCIPACK_TEST_HOOK_BETWEEN_SWAPS");
            }
        }
        swapped
    };
    // The lock is released: stagings that were not swapped remove themselves.
    drop(staged);
    swapped?;
    let fds: Vec<BorrowedFd<'_>> = parents.iter().map(|p| p.fd()).collect();
    fsync_all(&fds).map_err(|e| Error::io("syncing", parents[0].path(), e.into()))?;
    Ok(replaced)
}

/// What is made durable before the swaps: everything written into each staging, and each
/// directory in which a parent directory of a target was created (its new entry), each
/// directory once.
fn pre_swap_fds(staged: &[(Staging, Target)]) -> Vec<BorrowedFd<'_>> {
    let mut fds: Vec<BorrowedFd<'_>> = staged
        .iter()
        .flat_map(|(s, _)| s.durable().iter().map(|f| f.as_fd()))
        .collect();
    let mut seen = BTreeSet::new();
    for (_, t) in staged {
        for dir in t.created_in() {
            match rustix::fs::fstat(dir.fd()) {
                Ok(st) if !seen.insert((st.st_dev, st.st_ino)) => {}
                _ => fds.push(dir.fd()),
            }
        }
    }
    fds
}

/// `fsync`s every descriptor, from up to 8 threads at once.
fn fsync_all(fds: &[BorrowedFd<'_>]) -> rustix::io::Result<()> {
    let per = fds.len().div_ceil(8).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = fds
            .chunks(per)
            .map(|chunk| s.spawn(move || chunk.iter().try_for_each(rustix::fs::fsync)))
            .collect();
        handles
            .into_iter()
            .try_for_each(|h| h.join().unwrap_or(Err(rustix::io::Errno::IO)))
    })
}

fn open_io(e: OpenError) -> std::io::Error {
    match e {
        OpenError::Io(e) => e,
        other => std::io::Error::other(other.to_string()),
    }
}

/// Removes `name` in `dir` and everything below it, never following a symlink.
pub(crate) fn remove_at(dir: BorrowedFd<'_>, name: &OsStr) -> rustix::io::Result<()> {
    remove_at_depth(dir, name, 0)
}

fn remove_at_depth(dir: BorrowedFd<'_>, name: &OsStr, depth: usize) -> rustix::io::Result<()> {
    let st = match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Err(rustix::io::Errno::NOENT) => return Ok(()),
        other => other?,
    };
    if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
        return match rustix::fs::unlinkat(dir, name, AtFlags::empty()) {
            Err(rustix::io::Errno::NOENT) => Ok(()),
            other => other,
        };
    }
    if depth > 4096 {
        return Err(rustix::io::Errno::LOOP);
    }
    let fd = rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    // Collect names first: removing while iterating may skip entries.
    let mut names = Vec::new();
    for entry in rustix::fs::Dir::read_from(fd.as_fd())? {
        let entry = entry?;
        let n = entry.file_name().to_bytes();
        if n != b"." && n != b".." {
            names.push(OsString::from(OsStr::from_bytes(n)));
        }
    }
    for n in &names {
        remove_at_depth(fd.as_fd(), n, depth + 1)?;
    }
    match rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR) {
        Err(rustix::io::Errno::NOENT) => Ok(()),
        other => other,
    }
}

/// Removes staging entries beside `target` that no live process holds locked (left by a
/// process killed with SIGKILL, or by a crash).
fn sweep(target: &Target) {
    let prefix = target.staging_prefix();
    let Ok(Some(entries)) = target.parent.list_dir_bytes("") else {
        return;
    };
    // `<pid>-<n>`: the pid, if the name has exactly that shape.
    let pid_n = |rest: &[u8]| -> Option<u32> {
        let mut parts = rest.split(|&b| b == b'-');
        let (pid, n) = (parts.next()?, parts.next()?);
        let digits = |p: &[u8]| !p.is_empty() && p.iter().all(u8::is_ascii_digit);
        if parts.next().is_some() || !digits(pid) || !digits(n) {
            return None;
        }
        std::str::from_utf8(pid).ok()?.parse().ok()
    };
    for (name, kind) in entries {
        // Exactly what `Staging::create` makes, `.<target>.ocipack-<pid>-<n>` (a file with
        // `.tmp` after), or `Root::tempfile`'s `.ocipack-tmp-<pid>-<n>` file: a user's
        // `.<target>.ocipack-notes` is none of ocipack's business.
        let (rest, is_file) = match name.strip_prefix(prefix.as_slice()) {
            Some(rest) => match rest.strip_suffix(b".tmp") {
                Some(r) => (r, true),
                None => (rest, false),
            },
            None => match name.strip_prefix(TEMPFILE_PREFIX.as_bytes()) {
                Some(rest) => (rest, true),
                None => continue,
            },
        };
        let Some(pid) = pid_n(rest) else {
            continue;
        };
        let flags = match kind {
            EntryType::Dir if !is_file => OFlags::RDONLY | OFlags::DIRECTORY,
            EntryType::File if is_file => OFlags::RDONLY | OFlags::NONBLOCK,
            _ => continue,
        };
        let name = OsStr::from_bytes(&name);
        let Ok(fd) = rustix::fs::openat(
            target.parent.fd(),
            name,
            flags | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        ) else {
            continue;
        };
        // An entry is created (with a creation mode), then locked, then given its final
        // mode. Only with its final mode is an unlocked entry surely stale, whatever its
        // pid (a pid namespace gives every run the same one). Before that, the lock cannot
        // tell a fresh entry from a dead one: it is left alone unless its process is gone
        // (never this process's: another thread may be creating it).
        let complete = rustix::fs::fstat(&fd)
            .is_ok_and(|st| st.st_mode & 0o7777 == if is_file { FILE_MODE } else { DIR_MODE });
        if !complete && (pid == std::process::id() || process_alive(pid)) {
            continue;
        }
        if rustix::fs::flock(&fd, FlockOperation::NonBlockingLockExclusive).is_ok() {
            let _ = remove_at(target.parent.fd(), name);
        }
    }
}

/// Whether a process with this pid exists (signal 0 is delivered or refused for lack of
/// permission; only "no such process" means it is gone).
fn process_alive(pid: u32) -> bool {
    let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return false;
    };
    !matches!(
        rustix::process::test_kill_process(pid),
        Err(rustix::io::Errno::SRCH)
    )
}

// ---- The registry of live staging entries, and the signal handler that removes them.

struct Live {
    id: u64,
    parent: Root,
    name: OsString,
}

static LIVE: Mutex<Vec<Live>> = Mutex::new(Vec::new());
static NEXT_ID: AtomicU64 = AtomicU64::new(1);
static HANDLER: Once = Once::new();

fn live() -> MutexGuard<'static, Vec<Live>> {
    LIVE.lock().unwrap_or_else(|p| p.into_inner())
}

/// Held across the swaps of a commit: the signal handler waits for it, so that a signal
/// never removes the outputs not yet swapped of a commit whose first output is in place.
struct CommitLock(MutexGuard<'static, Vec<Live>>);

/// Takes the [`CommitLock`] (no staging may be dropped, nor registered, while it is held).
fn commit_lock() -> CommitLock {
    CommitLock(live())
}

fn register(parent: &Root, name: &OsStr) -> u64 {
    install_handler();
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    live().push(Live {
        id,
        parent: parent.clone(),
        name: name.to_os_string(),
    });
    id
}

fn unregister(id: u64) {
    unregister_locked(&mut live(), id);
}

fn unregister_locked(list: &mut Vec<Live>, id: u64) {
    list.retain(|l| l.id != id);
}

/// True if the process inherited `sig` as ignored (`nohup`, `trap '' HUP`, the SIGINT of
/// a shell's background job): such a signal must stay ignored, never end the process.
fn inherited_ignored(sig: i32) -> bool {
    // SAFETY: a query only (no new action), into a zeroed `sigaction` of the right type.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        libc::sigaction(sig, std::ptr::null(), &mut old) == 0 && old.sa_sigaction == libc::SIG_IGN
    }
}

/// Installs, once, a thread that removes every live staging entry on SIGINT, SIGTERM or
/// SIGHUP and then lets the signal end the process as it would have. A signal the process
/// inherited as ignored is left alone: it would not have ended the process.
fn install_handler() {
    HANDLER.call_once(|| {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        let caught: Vec<i32> = [SIGINT, SIGTERM, SIGHUP]
            .into_iter()
            .filter(|&s| !inherited_ignored(s))
            .collect();
        if caught.is_empty() {
            return;
        }
        let Ok(mut signals) = signal_hook::iterator::Signals::new(caught) else {
            return;
        };
        let spawned = std::thread::Builder::new()
            .name("ocipack-signals".into())
            .spawn(move || {
                if let Some(sig) = signals.forever().next() {
                    // Held until the process ends: no commit can start after this point.
                    let list = live();
                    for l in list.iter() {
                        let _ = remove_at(l.parent.fd(), &l.name);
                    }
                    let _ = signal_hook::low_level::emulate_default_handler(sig);
                    std::process::exit(128 + sig);
                }
            });
        drop(spawned);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The directories a target's missing parents were created in hold new entries: they
    /// are made durable with the output, before the swap, each once.
    #[test]
    fn directories_holding_created_parents_are_made_durable() {
        use std::fs;
        let t = tempfile::tempdir().unwrap();
        let project = Root::open(t.path()).unwrap();
        let created = CreatedDirs::default();
        let one = Target::beneath_creating(&project, "a/b/one", "one", &created).unwrap();
        let two = Target::beneath_creating(&project, "a/b/two", "two", &created).unwrap();
        let three = Target::beneath_creating(&project, "a/c/three", "three", &created).unwrap();
        let mut staged = Vec::new();
        for target in [one, two, three] {
            let mut staging = Staging::dir(&target).unwrap();
            staging.write_file("f", b"x").unwrap();
            staged.push((staging, target));
        }
        let id = |fd: BorrowedFd<'_>| {
            let st = rustix::fs::fstat(fd).unwrap();
            (st.st_dev, st.st_ino)
        };
        let synced: Vec<_> = pre_swap_fds(&staged).into_iter().map(id).collect();
        let dir = |p: &str| {
            let m = fs::metadata(t.path().join(p)).unwrap();
            (
                std::os::unix::fs::MetadataExt::dev(&m),
                std::os::unix::fs::MetadataExt::ino(&m),
            )
        };
        // `a` was created in the project directory, `a/b` and `a/c` in `a`.
        for holder in ["", "a"] {
            let n = synced.iter().filter(|s| **s == dir(holder)).count();
            assert_eq!(n, 1, "{holder:?} made durable {n} times");
        }
        commit_all(staged).unwrap();
        created.keep();
        assert_eq!(fs::read(t.path().join("a/c/three/f")).unwrap(), b"x");
    }

    /// Parallel builds record the parents they created in any order; a failed build still
    /// removes every one that is empty (a parent recorded after its child included).
    #[test]
    fn created_parents_go_whatever_order_they_were_recorded_in() {
        let t = tempfile::tempdir().unwrap();
        let project = Root::open(t.path()).unwrap();
        std::fs::create_dir_all(t.path().join("latest/musl")).unwrap();
        std::fs::create_dir_all(t.path().join("keep/x")).unwrap();
        std::fs::write(t.path().join("keep/x/file"), b"mine").unwrap();
        let latest = project.subdir("latest", false).unwrap();
        let keep = project.subdir("keep", false).unwrap();
        let created = CreatedDirs::default();
        created.0.lock().unwrap().extend([
            (project.clone_strict(), "latest".to_string()),
            (latest, "musl".to_string()),
            (project.clone_strict(), "keep".to_string()),
            (keep, "x".to_string()),
        ]);
        // The child recorded first: the order a racing thread can produce.
        created.0.lock().unwrap().swap(0, 1);
        drop(created);
        assert!(!t.path().join("latest").exists());
        // A directory something was put in meanwhile stays, with its parents.
        assert_eq!(
            std::fs::read(t.path().join("keep/x/file")).unwrap(),
            b"mine"
        );
    }

    /// A staging entry is created (with a creation mode), locked, then given its final
    /// mode. An entry still in its creation mode may belong to another thread of this
    /// process or to a live process that has not locked it yet: the sweep leaves it alone.
    /// (CI once saw the race: a build of ten architectures, each staging beside the same
    /// target, lost a fresh entry to a sibling thread's sweep.) An entry with its final
    /// mode that nobody holds locked is stale whatever its pid, even this process's own
    /// (a pid namespace gives every run the same pid), and so is an unlocked entry of a
    /// process that is gone.
    #[test]
    fn the_sweep_spares_entries_being_created_and_removes_stale_ones() {
        use std::os::unix::fs::PermissionsExt;
        let t = tempfile::tempdir().unwrap();
        let target = Target::at_path(&t.path().join("out")).unwrap();
        let name = |pid: u32, n: u32| format!(".out.ocipack-{pid}-{n}");
        let me = std::process::id();
        // A pid above the largest pid_max stands for a killed build.
        let gone = 4_194_304;
        let entries = [
            (name(me, 7), 0o700, true),    // being created by another thread
            (name(1, 7), 0o700, true),     // being created by a live process
            (name(gone, 7), 0o700, false), // a crash while being created
            (name(me, 8), 0o755, false),   // a killed run's, with this process's pid
            (name(1, 8), 0o755, false),    // a killed run's, its pid reused
        ];
        for (n, mode, _) in &entries {
            let p = t.path().join(n);
            std::fs::create_dir(&p).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(*mode)).unwrap();
        }
        let s = Staging::dir(&target).unwrap();
        for (n, mode, kept) in &entries {
            assert_eq!(
                t.path().join(n).is_dir(),
                *kept,
                "{n} (mode {mode:o}): kept should be {kept}"
            );
        }
        let staged = s.path();
        assert!(staged.is_dir());
        drop(s);
        assert!(!staged.exists(), "a dropped staging stays");
    }
}
