//! `ocipack diff A B [--file F | --file-a F --file-b F] [--platform P | --arch A] [--json]`

use std::path::PathBuf;

use clap::Args;

use super::out;
use super::remote::{RemoteArgs, platform_choice};

use ocipack::diff::{self, DiffOptions};
use ocipack::verify::{Source, check_file_is_inside};
use ocipack::{Result, cjson};

/// Arguments of `ocipack diff`.
#[derive(Debug, Args)]
#[command(
    after_help = "Exit status: 0 identical, 1 different, 2 usage error or a layout that fails verification.\n\
Differences are listed most specific first; digests, sizes and diff_ids that only follow \
from them come last.\n\
A or B may be a registry reference, docker://[HOST/]REPO[:TAG|@DIGEST]: its documents are \
fetched and checked, and a layer only when the documents show that it differs. A \
multi-platform source (a registry's index, a layout's image index) needs --platform or --arch \
to pick the image to compare."
)]
pub struct DiffArgs {
    /// The first layout, or a registry reference (docker://REF).
    #[arg(value_name = "A")]
    a: PathBuf,
    /// The second layout, or a registry reference (docker://REF).
    #[arg(value_name = "B")]
    b: PathBuf,
    /// Descriptor file to use in both layouts (bashbrew's File:) instead of index.json's entry.
    #[arg(long, value_name = "F")]
    file: Option<String>,
    /// Descriptor file to use in A.
    #[arg(long, value_name = "F", conflicts_with = "file")]
    file_a: Option<String>,
    /// Descriptor file to use in B.
    #[arg(long, value_name = "F", conflicts_with = "file")]
    file_b: Option<String>,
    /// The platform to compare, OS/ARCH[/VARIANT]: the image of a multi-platform source,
    /// and the platform a single image must have.
    #[arg(long, value_name = "P")]
    platform: Option<String>,
    /// The same as a bashbrew architecture name (amd64, arm64v8, ...).
    #[arg(long, value_name = "A", conflicts_with = "platform")]
    arch: Option<String>,
    /// Print the differences as one JSON document.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    remote: RemoteArgs,
}

pub fn run(a: DiffArgs) -> Result<u8> {
    // Each name is checked as the user wrote it, before either layout is read.
    for (option, file) in [
        ("--file", &a.file),
        ("--file-a", &a.file_a),
        ("--file-b", &a.file_b),
    ] {
        check_file_is_inside(option, file.as_deref())?;
    }
    let opts = DiffOptions {
        file_a: a.file_a.or_else(|| a.file.clone()),
        file_b: a.file_b.or(a.file),
        platform: platform_choice(a.platform.as_deref(), a.arch.as_deref())?,
    };
    let fetch = a.remote.fetch_options()?;
    let (sa, sb) = (
        Source::from_arg(a.a, &fetch)?,
        Source::from_arg(a.b, &fetch)?,
    );
    a.remote.warn(&[&sa, &sb]);
    let diffs = diff::diff_sources(&sa, &sb, &opts)?;
    if a.json {
        let v = serde_json::json!({ "identical": diffs.is_empty(), "differences": diffs });
        out!("{}", String::from_utf8_lossy(&cjson::to_vec(&v)?));
    } else {
        for d in &diffs {
            out!("{d}");
        }
    }
    Ok(if diffs.is_empty() { 0 } else { 1 })
}
