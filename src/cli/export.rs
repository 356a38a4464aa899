//! `ocipack export LAYOUT|docker://REF --format F -o FILE|- [--platform P | --arch A]`

use std::path::PathBuf;

use clap::Args;

use super::out;
use super::remote::{RemoteArgs, platform_choice};

use ocipack::Result;
use ocipack::export::{self, ArchiveFormat, Destination};
use ocipack::verify::Source;

/// Arguments of `ocipack export`.
#[derive(Debug, Args)]
#[command(
    after_help = "The archive is reproducible: entries sorted, owner 0:0, modes 0644/0755, \
every mtime the image's `created` time.\n\
docker-archive RepoTags: --tag, else the index entry's name annotation when it is an image \
name (has a / or :), else the registry reference with its tag, else none (the image loads \
untagged).\n\
A registry reference (docker://[HOST/]REPO[:TAG|@DIGEST]): its documents are checked, then \
each layer is fetched once, verified as it streams (digest, diff_id, entries) into an unnamed \
temporary file beside FILE (in the temporary directory for -o -), and the archive is written \
from those: a registry that sends wrong content fails the export (exit 1) before anything is \
written. A foreign layer the source does not hold is refused. A multi-platform source needs \
--platform or --arch to pick its image."
)]
pub struct ExportArgs {
    /// The layout directory (its index.json must list exactly one image manifest, or one
    /// image index with --platform or --arch), or a registry reference (docker://REF).
    #[arg(value_name = "LAYOUT|docker://REF")]
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
    /// The image of a multi-platform source to export, OS/ARCH[/VARIANT].
    #[arg(long, value_name = "P")]
    platform: Option<String>,
    /// The same as a bashbrew architecture name (amd64, arm64v8, ...).
    #[arg(long, value_name = "A", conflicts_with = "platform")]
    arch: Option<String>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    remote: RemoteArgs,
}

pub fn run(a: ExportArgs) -> Result<u8> {
    let format: ArchiveFormat = a.format.parse()?;
    let to_stdout = a.output.as_os_str() == "-";
    let dest = if to_stdout {
        Destination::Stdout
    } else {
        Destination::File(a.output.clone())
    };
    let platform = platform_choice(a.platform.as_deref(), a.arch.as_deref())?;
    let source = Source::from_arg(a.layout, &a.remote.fetch_options()?)?;
    a.remote.warn(&[&source]);
    let report = export::export(&source, platform, format, &a.tag, &dest)?;
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
