//! `ocipack export LAYOUT --format F -o FILE|-`

use std::path::PathBuf;

use clap::Args;

use super::out;

use ocipack::Result;
use ocipack::export::{self, ArchiveFormat, Destination};
use ocipack::verify::Source;

/// Arguments of `ocipack export`.
#[derive(Debug, Args)]
#[command(
    after_help = "The archive is reproducible: entries sorted, owner 0:0, modes 0644/0755, \
every mtime the image's `created` time.\n\
docker-archive RepoTags: --tag, else the index entry's name annotation when it is an image \
name (has a / or :), else none (the image loads untagged)."
)]
pub struct ExportArgs {
    /// The layout directory; its index.json must list exactly one image manifest.
    layout: PathBuf,
    /// oci-archive (skopeo's oci-archive:) or docker-archive (docker load, podman load).
    #[arg(long, value_parser = ["oci-archive", "docker-archive"])]
    format: String,
    /// The archive to write, or - for standard output.
    #[arg(short = 'o', long, value_name = "FILE")]
    output: PathBuf,
    /// A RepoTag of a docker-archive, NAME[:TAG] (repeatable).
    #[arg(long, value_name = "NAME[:TAG]")]
    tag: Vec<String>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(a: ExportArgs) -> Result<u8> {
    let format: ArchiveFormat = a.format.parse()?;
    let to_stdout = a.output.as_os_str() == "-";
    let dest = if to_stdout {
        Destination::Stdout
    } else {
        Destination::File(a.output.clone())
    };
    let source = Source::from_arg(a.layout)?;
    let report = export::export(&source, format, &a.tag, &dest)?;
    let line = if a.json {
        String::from_utf8_lossy(&ocipack::cjson::to_vec(&report)?).into_owned()
    } else {
        format!(
            "{}: {} {} ({} bytes)",
            ocipack::show::path(&a.output),
            a.format,
            report.digest,
            report.size
        )
    };
    // Standard output carries the archive itself when writing to it.
    if to_stdout {
        eprintln!("{line}");
    } else {
        out!("{line}");
    }
    Ok(0)
}
