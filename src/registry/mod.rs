//! Talking to OCI distribution registries: references, credentials, and `ocipack push`.
//!
//! HTTP goes through `ureq` (synchronous, small, rustls): a command-line tool that sends a
//! handful of sequential requests needs no async runtime. Whom a connection trusts (Mozilla's
//! roots, the system's store, certs.d directories, `--ca-cert`, client certificates,
//! `--tls-verify=false`) is [`tls`]'s; the read client is [`fetch`]'s.
//!
//! Hygiene: every error of a push is built by one redaction step (`redact.rs`): text from a
//! registry, a token realm, a credential helper or a config file is redacted (credentials,
//! their base64, tokens), escaped and bounded before it becomes an error. Every request has
//! a deadline besides the idle timeout (`client.rs`); the Docker config file is read through a
//! bounded read and decoded only for the registry in question ([`docker`]); credential
//! helpers run with a timeout and their output is never shown (`helper.rs`).

pub mod auth;
mod client;
pub mod docker;
pub mod fetch;
mod helper;
pub mod push;
mod redact;
pub mod reference;
pub mod tls;
pub mod url;

pub use auth::Credentials;
pub use fetch::{FetchOptions, FetchedManifest, Fetcher, ManifestKind};
pub use push::{
    IndexPushReport, IndexesPushReport, PushOptions, PushReport, Pushed, PushedBlob, PushedIndex,
    PushedManifest, TaggedIndex, push_image, push_index, push_indexes,
};
pub use reference::Reference;
pub use tls::{TlsOptions, Trust};
