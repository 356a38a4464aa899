//! The tar format: ocipack's deterministic writer and its one bounded reader.

pub mod read;
pub mod write;
