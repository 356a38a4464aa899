//! `--ca-cert` and `--tls-verify`: the TLS options of every command that talks to a
//! registry (`push` now; the read commands will flatten the same struct).

use std::path::PathBuf;

use clap::{ArgAction, Args};

use ocipack::registry::TlsOptions;

/// TLS options shared by the registry commands.
#[derive(Debug, Clone, Args)]
pub struct TlsArgs {
    /// Also trust the CA certificates in this PEM file (repeatable), besides Mozilla's roots,
    /// the system's store (SSL_CERT_FILE, SSL_CERT_DIR) and the registry's certs.d directory.
    #[arg(long, value_name = "FILE")]
    pub ca_cert: Vec<PathBuf>,
    /// Verify the registry's TLS certificate (default). --tls-verify=false checks no
    /// certificate and allows plain HTTP, as skopeo does; every message then says so.
    #[arg(
        long,
        value_name = "BOOL",
        default_value_t = true,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        action = ArgAction::Set
    )]
    pub tls_verify: bool,
}

impl TlsArgs {
    /// The library's options.
    pub fn options(&self) -> TlsOptions {
        TlsOptions {
            ca_certs: self.ca_cert.clone(),
            verify: self.tls_verify,
        }
    }

    /// Warns on stderr, once, when certificates of `registry` go unchecked.
    pub fn warn(&self, registry: &str) {
        if !self.tls_verify {
            eprintln!(
                "ocipack: warning: the TLS certificate of {} is not verified, and plain HTTP \
                 is allowed (--tls-verify=false)",
                ocipack::show::text(registry)
            );
        }
    }
}
