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
//!
//! # Layers
//!
//! Modules form layers, lowest first: a module uses only modules listed before it, and
//! modules on one line use none of each other; within a module, no two files import each
//! other (a `mod.rs` and its own children are one module). `tests/integration/layers.rs`
//! reads this list and fails on any `use crate::…` (or `crate::…` path in code) that goes
//! against it. The binary's `cli` sits above them all.
//!
//! 1. [`show`] — printing outside text
//! 2. [`error`] — one error type and its exit codes
//! 3. [`digest`], [`timestamp`], [`progress`], [`platform`], [`media`] — values
//! 4. [`cjson`] — the one JSON serializer
//! 5. [`spec`] — the OCI documents as types
//! 6. [`tar`] — the format, pure: names, reader, writer
//! 7. [`store`] — the filesystem: roots, walks, staging, path rules
//! 8. [`input`] — inputs to sorted entries, and stream decoders
//! 9. [`layer`] — entries to a hashed, compressed blob
//! 10. [`problems`] — findings
//! 11. [`image`] — the model, its rules, the writer and the builder
//! 12. [`settings`] — command line and project file to an image spec
//! 13. [`registry`] — references, trust, the HTTP client, pushing opened images
//! 14. [`verify`] — opening an image source for checking
//! 15. [`diff`], [`export`], [`fix`], [`pull`] — commands over opened images, and pulling
//!     a registry's image into a layout
//! 16. [`project`] — `ocipack.toml`: plans, builds, library files, dist branches

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
pub mod pull;
pub mod registry;
pub mod settings;
pub mod show;
pub mod spec;
pub mod store;
pub mod tar;
pub mod timestamp;
pub mod verify;

pub use error::{Error, Result};
