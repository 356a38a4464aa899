//! The options of every command that reads from a registry (`pull`, and `verify`, `diff`,
//! `export` and `build --check --against` given a `docker://` reference): the deadline,
//! plain HTTP, and the TLS options push has too ([`TlsArgs`]); and the platform that picks
//! one image of a multi-platform source.

use std::time::Duration;

use clap::Args;

use super::tls::TlsArgs;

use ocipack::error::{Error, Result};
use ocipack::platform::Platform;
use ocipack::registry::FetchOptions;
use ocipack::verify::Source;

/// How to read from a registry.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Reading from a registry (docker:// references)")]
pub struct RemoteArgs {
    /// Use plain HTTP even though the registry is not on loopback.
    #[arg(long)]
    pub plain_http: bool,
    /// The one deadline, in seconds, for everything read from the registry (every request,
    /// every body, every retry): a registry that trickles or never ends an answer is
    /// stopped there.
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    pub timeout: u64,
    #[command(flatten)]
    pub tls: TlsArgs,
}

impl RemoteArgs {
    /// The read client's options (credentials: the Docker config file's, if any).
    pub fn fetch_options(&self) -> Result<FetchOptions> {
        if self.timeout == 0 {
            return Err(Error::usage("--timeout must be at least 1 second"));
        }
        Ok(FetchOptions {
            plain_http: self.plain_http,
            credentials: None,
            timeout: Duration::from_secs(self.timeout),
            tls: self.tls.options(),
        })
    }

    /// Warns once per registry source when its certificate goes unchecked.
    pub fn warn(&self, sources: &[&Source]) {
        for s in sources {
            if let Source::Registry(r, _) = s {
                self.tls.warn(&r.registry);
            }
        }
    }
}

/// `--platform OS/ARCH[/VARIANT]` or `--arch A`: the platform expected (of a single image)
/// or picked (of a multi-platform layout or a registry's index), and how it was named.
pub fn platform_choice(
    platform: Option<&str>,
    arch: Option<&str>,
) -> Result<Option<(Platform, String)>> {
    match (platform, arch) {
        (Some(p), _) => Ok(Some((p.parse()?, format!("--platform {p}")))),
        (None, Some(a)) => Ok(Some((
            Platform::from_bashbrew_arch(a)?,
            format!("--arch {a}"),
        ))),
        (None, None) => Ok(None),
    }
}
