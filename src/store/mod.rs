//! The guarded filesystem layer: every file ocipack reads or writes goes through it.

pub mod files;
pub mod output;
pub mod root;
pub mod staging;
pub mod walk;
