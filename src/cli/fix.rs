//! `ocipack fix LAYOUT [--names symlinks|files|none] [--file F]`

use std::path::PathBuf;

use clap::Args;

use super::out;

use ocipack::Result;
use ocipack::fix::{FixOptions, fix_layout};
use ocipack::image::write::NameStyle;

/// Arguments of `ocipack fix`.
#[derive(Debug, Args)]
#[command(
    after_help = "Rewrites a layout made by another tool into the shape every client accepts, \
without changing any digest: blobs become regular files (crane >= 0.21.7 refuses symlinked \
blobs, as busybox-style layouts have), readable names become relative symlinks to them (or per \
--names), a missing oci-layout is added; index.json and every blob keep their exact bytes. A \
layout with any other problem (a blob that does not hash to its name, a document that is not \
valid) is refused, since fixing it would change a digest. The new layout is staged beside the \
old one and swapped in atomically.\n\
Exit status: 0 fixed; 1 an operation failed; 2 usage error or a layout that cannot be fixed."
)]
pub struct FixArgs {
    /// The OCI layout directory to rewrite in place.
    #[arg(value_name = "LAYOUT")]
    layout: PathBuf,
    /// Readable names: symlinks (to regular blob files, the default), files (busybox's
    /// shape, which crane refuses) or none.
    #[arg(long, value_name = "STYLE", default_value = "symlinks")]
    names: String,
    /// A file in the layout holding the single image descriptor (bashbrew's File:), kept.
    #[arg(long, value_name = "F")]
    file: Option<String>,
}

pub fn run(a: FixArgs) -> Result<u8> {
    let names = a
        .names
        .parse::<NameStyle>()
        .map_err(|e| ocipack::Error::usage(format!("--names: {e}")))?;
    let r = fix_layout(
        &a.layout,
        &FixOptions {
            names,
            file: a.file,
        },
    )?;
    let shown = ocipack::show::path(&r.layout);
    let linked = r.blobs.iter().filter(|(_, l)| *l).count();
    out!(
        "{shown}: fixed, manifest {} unchanged; {} blobs as regular files ({linked} were symlinks){}; names {}",
        r.manifest,
        r.blobs.len(),
        if r.added_oci_layout {
            "; oci-layout added"
        } else {
            ""
        },
        names.name()
    );
    for d in &r.dropped {
        eprintln!(
            "ocipack: note: {shown}: {} was not carried over (not part of the image)",
            ocipack::show::bytes(d)
        );
    }
    Ok(0)
}
