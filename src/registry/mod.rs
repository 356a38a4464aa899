//! Talking to OCI distribution registries: references, credentials, and `ocipack push`.
//!
//! HTTP goes through `ureq` (synchronous, small, rustls with the Mozilla root
//! certificates built in): a command-line tool that sends a handful of sequential requests
//! needs no async runtime.

pub mod auth;
mod client;
pub mod docker;
mod helper;
pub mod push;
mod redact;
pub mod reference;

pub use auth::Credentials;
pub use push::{PushOptions, PushReport, PushedBlob, push};
pub use reference::Reference;
