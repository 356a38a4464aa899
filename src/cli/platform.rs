//! `ocipack platform ARCH`

use clap::Args;

use super::out;

use ocipack::platform::Platform;
use ocipack::{Result, cjson};

/// Arguments of `ocipack platform`.
#[derive(Debug, Args)]
pub struct PlatformArgs {
    /// A bashbrew architecture name (amd64, arm32v7, arm64v8, i386, windows-amd64, ...).
    arch: String,
    /// Print OS/ARCH[/VARIANT] instead of JSON.
    #[arg(long)]
    short: bool,
}

pub fn run(a: PlatformArgs) -> Result<u8> {
    let p = Platform::from_bashbrew_arch(&a.arch)?;
    if a.short {
        out!("{p}");
    } else {
        out!("{}", String::from_utf8_lossy(&cjson::to_vec(&p)?));
    }
    Ok(0)
}
