//! `ocipack pull REF OUT [--platform P | --arch A] [--names S] [--json]`

use std::path::PathBuf;

use clap::Args;

use super::out;
use super::remote::{RemoteArgs, platform_choice};

use ocipack::Result;
use ocipack::image::write::NameStyle;
use ocipack::pull::{self, PullOptions};
use ocipack::registry::Reference;

/// Arguments of `ocipack pull`.
#[derive(Debug, Args)]
#[command(
    after_help = "Prints the pulled manifest or index digest (the one in index.json) on stdout.\n\
\n\
A digest-preserving copy: every manifest, index, config and layer is written exactly as the \
registry serves it (the same blobs and digests as skopeo copy --preserve-digests, with --all \
for an index), each verified (size, digest, media type) while it streams; a Docker v2 manifest \
or manifest list stays one. index.json and the readable names are ocipack's own. OUT is \
written atomically, as build writes its layouts: complete and swapped into place, or not at \
all; an existing layout there is replaced (untouched if it holds these bytes already).\n\
\n\
One manifest gives a single-image layout (index.json lists it with its platform; readable \
names as --names says). An index gives the nested multi-platform layout build --index writes \
(every manifest it lists, attestation manifests too, with their blobs; readable names in a \
directory per bashbrew architecture), or with --platform or --arch its image for that \
platform as a single-image layout. A foreign layer (content at its urls, which registries do \
not serve) is neither fetched nor stored, as skopeo copy leaves it, and is named on stderr.\n\
\n\
Credentials come from the Docker config file (as for push); Docker Hub's anonymous tokens \
need none. Blobs sent from another host (a CDN) never get a credential. See push --help for \
TLS."
)]
pub struct PullArgs {
    /// What to pull: [docker://][REGISTRY/]REPOSITORY[:TAG][@DIGEST] (tag default: latest;
    /// Docker Hub's short names as docker reads them: debian is docker.io/library/debian).
    #[arg(value_name = "REF")]
    reference: String,
    /// The layout directory to write.
    #[arg(value_name = "OUT")]
    out: PathBuf,
    /// Of an index, pull only the image for this platform, OS/ARCH[/VARIANT].
    #[arg(long, value_name = "P")]
    platform: Option<String>,
    /// The same as a bashbrew architecture name (amd64, arm64v8, ...).
    #[arg(long, value_name = "A", conflicts_with = "platform")]
    arch: Option<String>,
    /// Readable names: symlinks (to blobs; default), files (busybox style; crane >= 0.21.7
    /// refuses it), none. A multi-platform layout's are symlinks, or none.
    #[arg(long, value_name = "STYLE", default_value = "symlinks", value_parser = ["symlinks", "files", "none"])]
    names: String,
    /// Print the result as JSON (the digest, each manifest with its platform, blobs).
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    remote: RemoteArgs,
}

pub fn run(a: PullArgs) -> Result<u8> {
    let reference: Reference = a.reference.parse()?;
    let opts = PullOptions {
        fetch: a.remote.fetch_options()?,
        platform: platform_choice(a.platform.as_deref(), a.arch.as_deref())?,
        names: a
            .names
            .parse::<NameStyle>()
            .map_err(ocipack::Error::usage)?,
    };
    a.remote.tls.warn(&reference.registry);
    let report = pull::pull(&reference, &a.out, &opts)?;
    if a.json {
        out!(
            "{}",
            String::from_utf8_lossy(&ocipack::cjson::to_vec(&report)?)
        );
        return Ok(0);
    }
    let what = if report.manifests.len() == 1 && report.digest == report.manifests[0].digest {
        "manifest".to_string()
    } else {
        format!("index ({} manifests)", report.manifests.len())
    };
    eprintln!(
        "ocipack: pulled {what} {} from {} into {}: {} blobs, {} bytes{}",
        report.digest,
        report.reference,
        ocipack::show::path(&a.out),
        report.blobs,
        report.bytes,
        if report.written {
            ""
        } else {
            " (the layout held them already: unchanged)"
        }
    );
    for f in &report.foreign_layers {
        eprintln!(
            "ocipack: foreign layer {} not fetched (its content is at {}, not in the registry; \
             the layout lists it and holds no blob of it, as skopeo copy does)",
            f.digest,
            if f.hosts.is_empty() {
                "no host its descriptor names".to_string()
            } else {
                f.hosts.join(", ")
            }
        );
    }
    out!("{}", report.digest);
    Ok(0)
}
