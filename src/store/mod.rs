//! The guarded filesystem layer: every file ocipack reads or writes goes through it.
//!
//! [`root::Root`] opens paths beneath a directory component by component; [`walk`] reads
//! input trees through it; [`output`] holds what an output directory will contain and
//! compares it with the disk; [`staging`] assembles outputs beside their targets and
//! swaps them into place; [`files`] writes named files into an existing directory;
//! [`listing`] records what an output holds and proves a directory still holds it. The path
//! rules ([`paths`]) decide which paths a project may name and whether two paths overlap
//! on disk. [`hook`] holds the debug builds' test hooks.

pub mod files;
pub mod hook;
pub mod listing;
pub mod output;
pub mod paths;
pub mod root;
pub mod staging;
pub mod walk;

/// The mode of every regular file ocipack writes into an output, whatever the umask.
pub const FILE_MODE: u32 = 0o644;
/// The mode of every directory ocipack creates for an output (the output itself, the
/// directories inside it, and missing parents), whatever the umask.
pub const DIR_MODE: u32 = 0o755;
