//! ocipack: byte-for-byte reproducible OCI image layouts for small FROM-scratch images.
//!
//! Data flows one way: inputs ([`tree`]) → a deterministic tar stream ([`tarball`]) →
//! hashes and compression in one pass ([`layer`], [`gzip`], [`compress`]) → blobs → image
//! config, manifest and index ([`image`], [`spec`], written by [`cjson`]) → an OCI layout
//! on disk ([`layout`]), then verified from disk.

pub mod cjson;
pub mod diff;
pub mod digest;
pub mod error;
pub mod export;
pub mod image;
pub mod input;
pub mod layer;
pub mod media;
pub mod platform;
pub mod problems;
pub mod progress;
pub mod project;
pub mod registry;
pub mod settings;
pub mod show;
pub mod spec;
pub mod store;
pub mod tar;
pub mod timestamp;
pub mod verify;

pub use error::{Error, Result};
