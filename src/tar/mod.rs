//! The tar format: ocipack's deterministic writer and its one bounded reader.
//!
//! [`mod@write`] makes the archives ocipack publishes; [`read`] reads every archive it is
//! given (`--tar` inputs, and layers for `verify` and `diff`). The rules the reader applies
//! are modules of their own: entry names ([`name`], which the entries of `--rootfs` and
//! `--file` inputs obey too) and GNU sparse maps ([`sparse`]); header fields are decoded in
//! `field`. The module sits below the filesystem layer and everything else: a pure format,
//! working on byte streams and byte strings only.

use std::fmt;

mod field;
pub mod name;
pub mod read;
pub mod sparse;
#[cfg(test)]
pub(crate) mod testing;
pub mod write;

/// What an entry of an archive is, as the reader reports it and the name rules ask it.
/// (The writer's [`write::Kind`] carries each kind's data as well.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A hard link to an earlier entry.
    Hardlink,
    /// A symbolic link.
    Symlink,
    /// A character device.
    CharDevice,
    /// A block device.
    BlockDevice,
    /// A directory.
    Dir,
    /// A named pipe.
    Fifo,
}

impl fmt::Display for EntryKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EntryKind::File => "file",
            EntryKind::Hardlink => "hard link",
            EntryKind::Symlink => "symlink",
            EntryKind::CharDevice => "character device",
            EntryKind::BlockDevice => "block device",
            EntryKind::Dir => "directory",
            EntryKind::Fifo => "FIFO",
        })
    }
}
