//! The image model: one OCI image, as the builder makes it and as a layout reader finds it.

pub mod build;
pub mod read;
pub mod write;
