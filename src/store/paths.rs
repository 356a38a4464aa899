//! Path rules: which paths a project may write, and whether two paths overlap on disk.
//!
//! [`check_relative`] is the lexical rule for a path written in `ocipack.toml` (or given to
//! `verify --file`): relative, and without `..` where it must stay beneath its directory.
//!
//! [`overlaps`] decides whether two paths name the same place or one lies inside the other
//! *as the filesystem sees them*, never by their spelling: a build replaces its output
//! whole, so an output that is an input, holds one, lies inside an input tree, or is
//! another output reached by a second name must be refused before anything is written.
//! Comparing strings (even canonicalized ones) misses a directory reached through a bind
//! mount, which has a path of its own. So each path is opened (following symlinks, as using
//! it would) and identified by device and inode, and so is every directory above it:
//!
//! - the directories met climbing `..` from it, up to the root of the mount namespace (what
//!   a walk of a tree holding the path would reach through mount points), and
//! - where the climb leaves a bind mount of a subdirectory, the directories above that
//!   subdirectory on its own filesystem, opened through another mount of that filesystem
//!   listed in `/proc/thread-self/mountinfo` and checked to hold it (a directory reached
//!   through a bind mount of a directory inside an output is inside that output).
//!
//! A path that does not exist yet (an output before its first build) is its nearest existing
//! ancestor, identified as above, followed by the components still missing, which are
//! compared by name: `out/new/oci` is inside `out/new` even if neither exists. A file (a
//! `--file` or `--tar` input) is identified by its own inode and the directory that holds it;
//! a file no directory holds (a pipe or socket reached through `/dev/stdin` or
//! `/proc/self/fd/N`, or a file removed since it was opened) is inside nothing.
//!
//! What cannot be seen is not compared: a filesystem none of whose mounts shows the
//! directories above a bind-mounted subdirectory leaves only the namespace's view of them.

use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, StatxAttributes, StatxFlags};

use crate::error::{Error, Result};
use crate::show;

/// The most directories above one path that [`overlaps`] follows (climbing `..` and every
/// bind mount's own filesystem together) before it gives up with an error.
const MAX_ANCESTORS: usize = 4096;

/// A relative path; `..` only where `allow_parent` (inputs may live outside the project).
/// The problem, for the caller to attach to the setting that holds the path.
pub fn check_relative(p: &str, allow_parent: bool) -> std::result::Result<(), String> {
    if p.is_empty() {
        return Err("is empty".into());
    }
    for c in Path::new(p).components() {
        match c {
            Component::Normal(_) | Component::CurDir => {}
            Component::ParentDir if allow_parent => {}
            _ => {
                return Err(format!(
                    "\"{}\" must be a relative path{}",
                    show::text(p),
                    if allow_parent { "" } else { " without '..'" }
                ));
            }
        }
    }
    Ok(())
}

/// How the first path given to [`overlaps`] relates to the second on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overlap {
    /// Both name the same file or directory.
    Same,
    /// The first lies inside the second.
    Inside,
    /// The first holds the second.
    Around,
}

/// How `a` relates to `b` on disk (see the module documentation); `None` if neither is the
/// other or inside it. Nothing is created or changed. An error only when a directory above
/// an existing path cannot be opened (so that nothing can be said about it) — a path that
/// cannot be opened itself counts as not existing yet: whatever is later done with it fails
/// the same way.
pub fn overlaps(a: &Path, b: &Path) -> Result<Option<Overlap>> {
    let mut mounts = Mounts::default();
    let a = Place::of(a, &mut mounts)?;
    let b = Place::of(b, &mut mounts)?;
    Ok(a.relation(&b))
}

/// A file's identity: device and inode.
type Id = (u64, u64);

/// Where a path is on disk.
#[derive(Debug)]
struct Place {
    /// The nearest existing object of the path first, then every directory above it.
    above: Vec<Id>,
    /// The components below that object that do not exist (yet), in order.
    missing: Vec<OsString>,
}

impl Place {
    fn of(path: &Path, mounts: &mut Mounts) -> Result<Place> {
        let comps: Vec<Component> = path.components().collect();
        for keep in (0..=comps.len()).rev() {
            let existing: PathBuf = comps[..keep].iter().collect();
            let shown = if existing.as_os_str().is_empty() {
                Path::new(".")
            } else {
                existing.as_path()
            };
            let Ok(fd) = open_path(shown, OFlags::empty()) else {
                continue;
            };
            let above = climb(fd, shown, mounts)
                .map_err(|e| Error::io("inspecting the directories above", shown, e.into()))?;
            let missing = comps[keep..]
                .iter()
                .map(|c| c.as_os_str().to_os_string())
                .collect();
            return Ok(Place { above, missing });
        }
        // Not even the working directory (or `/`) could be opened.
        Err(Error::io(
            "inspecting",
            path,
            std::io::Error::other("no directory above it can be opened"),
        ))
    }

    /// How this place relates to `other`.
    fn relation(&self, other: &Place) -> Option<Overlap> {
        let (mine, theirs) = (self.above[0], other.above[0]);
        if mine == theirs {
            let (a, b) = (&self.missing, &other.missing);
            return if a == b {
                Some(Overlap::Same)
            } else if a.starts_with(b) {
                Some(Overlap::Inside)
            } else if b.starts_with(a) {
                Some(Overlap::Around)
            } else {
                None
            };
        }
        // A path whose first missing component is missing from a directory cannot hold
        // anything that exists below that directory.
        if self.above[1..].contains(&theirs) {
            return other.missing.is_empty().then_some(Overlap::Inside);
        }
        if other.above[1..].contains(&mine) {
            return self.missing.is_empty().then_some(Overlap::Around);
        }
        None
    }
}

/// Opens `path` with `O_PATH` (nothing is read, so neither a FIFO nor a device does
/// anything), following symlinks as using the path would.
fn open_path(path: &Path, extra: OFlags) -> rustix::io::Result<OwnedFd> {
    rustix::fs::openat(
        rustix::fs::CWD,
        path,
        OFlags::PATH | OFlags::CLOEXEC | extra,
        Mode::empty(),
    )
}

fn id_of(fd: impl AsFd) -> rustix::io::Result<(Id, bool)> {
    let st = rustix::fs::fstat(fd)?;
    let dir = FileType::from_raw_mode(st.st_mode) == FileType::Directory;
    Ok(((st.st_dev, st.st_ino), dir))
}

/// `start`'s identity, then that of every directory above it (see the module
/// documentation), each once. `start` was opened as `path`.
fn climb(start: OwnedFd, path: &Path, mounts: &mut Mounts) -> rustix::io::Result<Vec<Id>> {
    let mut out: Vec<Id> = Vec::new();
    let mut todo = vec![start];
    while let Some(mut cur) = todo.pop() {
        loop {
            let (id, dir) = id_of(&cur)?;
            if out.contains(&id) {
                break;
            }
            if out.len() >= MAX_ANCESTORS {
                return Err(rustix::io::Errno::LOOP);
            }
            out.push(id);
            if let Some(parent) = mounts.parent_on_filesystem(&cur, id)? {
                todo.push(parent);
            }
            let parent = if dir {
                rustix::fs::openat(
                    &cur,
                    "..",
                    OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                    Mode::empty(),
                )?
            } else {
                // Only the first object can be a file: every other is a directory above it.
                match holder_of_file(&cur, id, path)? {
                    Some(holder) => holder,
                    None => break, // In no directory: nothing is above it.
                }
            };
            if id_of(&parent)?.0 == id {
                break; // The root of the namespace: its `..` is itself.
            }
            cur = parent;
        }
    }
    Ok(out)
}

/// The directory holding the non-directory `fd` (`id`), opened as `path`: found through
/// `/proc/self/fd` (the name the kernel reached it by, after every symlink), else (no
/// `/proc`, or a name outside this process's root) the directory `path` names it in; only
/// a directory checked to hold that very file counts. `None` for a file no directory holds:
/// one without links (removed since it was opened, or a `memfd`), or one the kernel names
/// `pipe:[N]`, `socket:[N]` or `anon_inode:…` rather than by a path.
fn holder_of_file(fd: &OwnedFd, id: Id, path: &Path) -> rustix::io::Result<Option<OwnedFd>> {
    if rustix::fs::fstat(fd)?.st_nlink == 0 {
        return Ok(None);
    }
    let link = format!("/proc/self/fd/{}", fd.as_raw_fd());
    let reached = rustix::fs::readlink(link.as_str(), Vec::new())
        .map(|t| PathBuf::from(OsStr::from_bytes(t.as_bytes())));
    // A path starts with `/`; a file outside this process's root is `(unreachable)/…`.
    if let Ok(name) = &reached
        && !name.as_os_str().as_bytes().starts_with(b"/")
        && !name.as_os_str().as_bytes().starts_with(b"(")
    {
        return Ok(None);
    }
    let holder_in = |path: &Path| -> rustix::io::Result<OwnedFd> {
        let name = path.file_name().ok_or(rustix::io::Errno::NOENT)?;
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let holder = open_path(parent, OFlags::DIRECTORY)?;
        let st = rustix::fs::statat(&holder, name, AtFlags::SYMLINK_NOFOLLOW)?;
        if (st.st_dev, st.st_ino) != id {
            // Renamed or removed since, or `path` ends in a symlink.
            return Err(rustix::io::Errno::NOENT);
        }
        Ok(holder)
    };
    match reached {
        Ok(reached) => holder_in(&reached).or_else(|_| holder_in(path)),
        Err(_) => holder_in(path),
    }
    .map(Some)
}

/// One line of `/proc/thread-self/mountinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Mount {
    /// The mount's id (`statx`'s `stx_mnt_id`).
    id: u64,
    /// The filesystem's `major:minor`.
    device: String,
    /// The directory of the filesystem mounted (`/` unless it is a bind mount of a part).
    root: PathBuf,
    /// Where it is mounted.
    point: PathBuf,
}

/// The mount table, read once when a bind mount is first met.
#[derive(Debug, Default)]
struct Mounts {
    table: Option<Vec<Mount>>,
}

impl Mounts {
    /// When `fd` (`id`) is the root of a bind mount of a directory `D/name`, the directory
    /// `D` of the same filesystem, opened through another mount of it and checked to hold
    /// `id` as `name`; `None` otherwise (not a mount root, a whole filesystem, or `D` is
    /// visible through no mount).
    fn parent_on_filesystem(
        &mut self,
        fd: &OwnedFd,
        id: Id,
    ) -> rustix::io::Result<Option<OwnedFd>> {
        let sx = match rustix::fs::statx(fd, "", AtFlags::EMPTY_PATH, StatxFlags::MNT_ID) {
            Ok(sx) => sx,
            // A kernel without statx (before 4.11): only the namespace's view.
            Err(rustix::io::Errno::NOSYS) => return Ok(None),
            Err(e) => return Err(e),
        };
        let root_flag = StatxAttributes::MOUNT_ROOT;
        if !sx.stx_attributes_mask.contains(root_flag)
            || !sx.stx_attributes.contains(root_flag)
            || sx.stx_mask & StatxFlags::MNT_ID.bits() == 0
        {
            return Ok(None);
        }
        let table = self.table.get_or_insert_with(|| {
            std::fs::read("/proc/thread-self/mountinfo")
                .map(|b| parse_mountinfo(&b))
                .unwrap_or_default()
        });
        let Some(mount) = table.iter().find(|m| m.id == sx.stx_mnt_id) else {
            return Ok(None);
        };
        let (Some(dir), Some(name)) = (mount.root.parent(), mount.root.file_name()) else {
            return Ok(None); // The whole filesystem: nothing of it is above.
        };
        for other in table.iter().filter(|m| m.device == mount.device) {
            let Ok(rest) = dir.strip_prefix(&other.root) else {
                continue;
            };
            let Ok(holder) = open_path(&other.point.join(rest), OFlags::DIRECTORY) else {
                continue;
            };
            // Another mount may hide that directory, or the table be stale: only the
            // directory that holds this very one counts.
            match rustix::fs::statat(&holder, name, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) if (st.st_dev, st.st_ino) == id => return Ok(Some(holder)),
                _ => continue,
            }
        }
        Ok(None)
    }
}

/// The mounts of a `mountinfo` file (proc(5)); lines that do not parse are left out.
fn parse_mountinfo(text: &[u8]) -> Vec<Mount> {
    text.split(|&b| b == b'\n')
        .filter_map(|line| {
            let mut f = line.split(|&b| b == b' ');
            let id = std::str::from_utf8(f.next()?).ok()?.parse().ok()?;
            let _parent = f.next()?;
            let device = String::from_utf8(f.next()?.to_vec()).ok()?;
            let root = unescape(f.next()?);
            let point = unescape(f.next()?);
            Some(Mount {
                id,
                device,
                root,
                point,
            })
        })
        .collect()
}

/// A `mountinfo` path: space, tab, newline and backslash are written as `\ooo`.
fn unescape(field: &[u8]) -> PathBuf {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        let octal = field
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)) && d[0] <= b'3');
        match (field[i], octal) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    PathBuf::from(OsString::from_vec(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::symlink;

    fn rel(a: &Path, b: &Path) -> Option<Overlap> {
        overlaps(a, b).unwrap()
    }

    #[test]
    fn relative_paths() {
        assert!(check_relative("a/b", false).is_ok());
        assert!(check_relative("./a", false).is_ok());
        assert!(check_relative("../a", true).is_ok());
        let e = check_relative("../a", false).unwrap_err();
        assert_eq!(e, "\"../a\" must be a relative path without '..'");
        let e = check_relative("/a", true).unwrap_err();
        assert_eq!(e, "\"/a\" must be a relative path");
        assert_eq!(check_relative("", true).unwrap_err(), "is empty");
    }

    /// The same directory by two spellings, and a file by a hard link.
    #[test]
    fn equality_is_by_device_and_inode() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        fs::create_dir_all(d.join("a/b")).unwrap();
        assert_eq!(rel(&d.join("a"), &d.join("a/b/..")), Some(Overlap::Same));
        assert_eq!(rel(&d.join("a/./b"), &d.join("a/b")), Some(Overlap::Same));
        fs::write(d.join("f"), b"x").unwrap();
        fs::hard_link(d.join("f"), d.join("a/g")).unwrap();
        assert_eq!(rel(&d.join("f"), &d.join("a/g")), Some(Overlap::Same));
        assert_eq!(rel(&d.join("a"), &d.join("f")), None);
    }

    #[test]
    fn nesting_both_ways_and_siblings() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        fs::create_dir_all(d.join("a/b/c")).unwrap();
        fs::create_dir_all(d.join("a/x")).unwrap();
        fs::write(d.join("a/b/c/file"), b"x").unwrap();
        assert_eq!(rel(&d.join("a/b/c"), &d.join("a")), Some(Overlap::Inside));
        assert_eq!(rel(&d.join("a"), &d.join("a/b/c")), Some(Overlap::Around));
        assert_eq!(
            rel(&d.join("a/b/c/file"), &d.join("a/b")),
            Some(Overlap::Inside)
        );
        assert_eq!(
            rel(&d.join("a/b"), &d.join("a/b/c/file")),
            Some(Overlap::Around)
        );
        assert_eq!(rel(&d.join("a/b"), &d.join("a/x")), None);
        // Relative paths climb above the working directory too.
        let here = std::env::current_dir().unwrap();
        assert_eq!(rel(Path::new("."), Path::new("/")), Some(Overlap::Inside));
        assert_eq!(rel(Path::new("/"), &here), Some(Overlap::Around));
    }

    /// An output before its first build: its nearest existing ancestor, then its missing
    /// components by name.
    #[test]
    fn a_path_that_does_not_exist_yet() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        fs::create_dir_all(d.join("in/tree")).unwrap();
        fs::create_dir_all(d.join("other")).unwrap();
        let out = d.join("in/tree/new/oci");
        assert_eq!(rel(&out, &d.join("in")), Some(Overlap::Inside));
        assert_eq!(rel(&d.join("in"), &out), Some(Overlap::Around));
        assert_eq!(rel(&out, &d.join("other")), None);
        // Both missing below the same directory: compared by name.
        assert_eq!(rel(&out, &d.join("in/tree/new")), Some(Overlap::Inside));
        assert_eq!(rel(&d.join("in/tree/new"), &out), Some(Overlap::Around));
        assert_eq!(rel(&out, &d.join("in/tree/new/oci")), Some(Overlap::Same));
        assert_eq!(rel(&out, &d.join("in/tree/newer")), None);
        // A missing path cannot hold an existing one beside its missing part.
        assert_eq!(rel(&d.join("in/new"), &d.join("in/tree")), None);
        assert_eq!(rel(&d.join("in/tree"), &d.join("in/new")), None);
        assert!(!d.join("in/tree/new").exists(), "nothing created");
    }

    /// Symlinks are followed as using the path would: a path through a symlinked ancestor
    /// is inside the directory the link leads to, whatever its spelling.
    #[test]
    fn symlinked_ancestors() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        fs::create_dir_all(d.join("real/out/blobs")).unwrap();
        fs::create_dir_all(d.join("elsewhere")).unwrap();
        symlink(d.join("real"), d.join("abs-link")).unwrap();
        symlink("real/out", d.join("rel-link")).unwrap();
        symlink("../real", d.join("elsewhere/up")).unwrap();
        let out = d.join("real/out");
        assert_eq!(rel(&d.join("abs-link/out"), &out), Some(Overlap::Same));
        assert_eq!(rel(&d.join("rel-link/blobs"), &out), Some(Overlap::Inside));
        assert_eq!(
            rel(&d.join("elsewhere/up/out/new"), &out),
            Some(Overlap::Inside)
        );
        assert_eq!(rel(&out, &d.join("elsewhere/up")), Some(Overlap::Inside));
        // The link's own directory is not above what it leads to.
        assert_eq!(rel(&d.join("rel-link"), &d.join("elsewhere")), None);
        // A file reached through a symlink is held by the directory it is in.
        fs::write(d.join("real/out/blobs/x"), b"x").unwrap();
        symlink(d.join("real/out/blobs/x"), d.join("file-link")).unwrap();
        assert_eq!(rel(&d.join("file-link"), &out), Some(Overlap::Inside));
    }

    /// A FIFO is identified without being opened for reading (nothing blocks); a dangling
    /// symlink and a symlink loop count as names that do not exist.
    #[test]
    fn fifos_dangling_links_and_loops() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        fs::create_dir_all(d.join("out")).unwrap();
        let fifo = d.join("out/fifo");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            FileType::Fifo,
            Mode::from_raw_mode(0o644),
            0,
        )
        .unwrap();
        assert_eq!(rel(&fifo, &d.join("out")), Some(Overlap::Inside));
        symlink("nowhere", d.join("out/dangling")).unwrap();
        assert_eq!(
            rel(&d.join("out/dangling/x"), &d.join("out")),
            Some(Overlap::Inside)
        );
        symlink("loop", d.join("loop")).unwrap();
        assert_eq!(rel(&d.join("loop/x"), d), Some(Overlap::Inside));
        assert_eq!(rel(&d.join("loop/x"), &d.join("out")), None);
    }

    /// A pipe (`/dev/stdin` of a shell pipeline) and a file removed while open lie in no
    /// directory: inside nothing, and nothing is inside them. They made `overlaps` fail
    /// ("inspecting the directories above /dev/fd/63: No such file or directory"), so
    /// `--tar <(…)` was a failed operation (exit 1) instead of an input that is not a
    /// regular file.
    #[test]
    fn files_in_no_directory() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        fs::create_dir_all(d.join("out")).unwrap();
        let (r, _w) = std::io::pipe().unwrap();
        let pipe = PathBuf::from(format!("/proc/self/fd/{}", r.as_raw_fd()));
        fs::write(d.join("out/gone"), b"x").unwrap();
        let gone = fs::File::open(d.join("out/gone")).unwrap();
        fs::remove_file(d.join("out/gone")).unwrap();
        let gone = PathBuf::from(format!("/proc/self/fd/{}", gone.as_raw_fd()));
        for p in [&pipe, &gone] {
            assert_eq!(rel(p, &d.join("out")), None, "{}", p.display());
            assert_eq!(rel(&d.join("out"), p), None, "{}", p.display());
            assert_eq!(rel(p, Path::new("/")), None, "{}", p.display());
            assert_eq!(rel(p, p), Some(Overlap::Same), "{}", p.display());
        }
        assert_eq!(rel(&pipe, &gone), None);
    }

    #[test]
    fn mountinfo_lines() {
        let text = b"22 27 0:21 / /proc rw,relatime - proc proc rw\n\
            66 46 254:0 /tmp/a\\040b /mnt/x\\134y rw - ext4 /dev/vda rw\n\
            garbage\n";
        let m = parse_mountinfo(text);
        assert_eq!(m.len(), 2);
        assert_eq!(m[1].id, 66);
        assert_eq!(m[1].device, "254:0");
        assert_eq!(m[1].root, Path::new("/tmp/a b"));
        assert_eq!(m[1].point, Path::new("/mnt/x\\y"));
        assert_eq!(unescape(b"a\\9b\\"), Path::new("a\\9b\\"));
    }
}
