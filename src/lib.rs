//! ocipack: byte-for-byte reproducible OCI image layouts for small FROM-scratch images.
//!
//! Data flows one way: inputs ([`tree`]) → a deterministic tar stream ([`tarball`]) →
//! hashes and compression in one pass ([`layer`], [`gzip`], [`compress`]) → blobs → image
//! config, manifest and index ([`image`], [`spec`], written by [`cjson`]) → an OCI layout
//! on disk ([`layout`]), then verified from disk.

pub mod cjson;
pub mod compress;
pub mod digest;
pub mod error;
pub mod gzip;
pub mod media;
pub mod platform;
pub mod progress;
pub mod show;
pub mod spec;
pub mod store;
pub mod tar;
pub mod timestamp;
pub mod tree;

pub use error::{Error, Result};
pub mod build;
pub mod diff;
pub mod export;
pub mod gitinfo;
pub mod image;
pub mod layer;
pub mod layout;
pub mod library;
pub mod project;
pub mod registry;
pub mod source;
pub mod verify;
pub mod windows;
