//! The CLI-level tests, in one binary: each module tests one area through the `ocipack`
//! binary (and, where a test needs it, the library's public API), and they share one support
//! module, [`common`].
//!
//! One binary rather than one per file because each test binary links the whole library and
//! its dependencies again: with one, a cold `cargo test` compiles and links the tests once.
//! Run one area with `cargo test --test integration verify::`, or one test by its name.

mod common;

mod adversary;
mod build;
mod busybox;
mod completions;
mod compressed_input;
mod convert_hello_world;
mod debian;
mod determinism_threads;
mod diff;
mod dist;
mod dist_images;
mod docs;
mod export;
mod fix;
mod hello_world;
mod image;
mod images;
mod incremental;
mod index;
mod interop;
mod layers;
mod library;
mod library_images;
mod oci_import;
mod owners;
mod pull;
mod push;
mod push_dist;
mod push_entries;
mod push_hygiene;
mod push_index;
mod registry_read;
mod seams;
mod served;
mod shape_rules;
mod shape_store;
mod speed;
mod tar_input;
mod verify;
