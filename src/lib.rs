//! ocipack: byte-for-byte reproducible OCI image layouts for small FROM-scratch images.
//!
//! Data flows one way: inputs ([`input`], read through [`store`]) → a deterministic tar
//! stream ([`tar`]) → hashes and compression in one pass ([`layer`]) → blobs → image config,
//! manifest and index ([`image`], [`spec`], written by [`cjson`]) → an OCI layout, staged and
//! swapped into place ([`store::staging`]). The documents are checked in memory by the rules
//! `ocipack verify` applies to a layout on disk ([`image::rules`]); nothing is read back.
//!
//! One piece per job: [`store`] is the only way to the filesystem, [`image::Image`] the one
//! image model (built by [`image::build`], opened from a layout by [`verify::open`]),
//! [`tar::read`] the one tar reader, [`settings`] the one settings path for the command line
//! and `ocipack.toml`, [`show`] the one way to print a name. Several platforms' images are
//! listed by one image index ([`image::index`]): the one `ocipack push DIR` sends and
//! `ocipack build --index` stores, pushed through the same path as a single image
//! ([`mod@registry::push`]).

pub mod cjson;
pub mod diff;
pub mod digest;
pub mod error;
pub mod export;
pub mod fix;
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
