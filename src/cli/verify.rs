//! `ocipack verify LAYOUT|docker://REF... [--file F] [--arch A] [--profile P] [--json]`

use std::path::PathBuf;

use clap::Args;

use super::out;
use super::remote::RemoteArgs;

use ocipack::platform::Platform;
use ocipack::verify::{self, Options, Profile, Reports, Source};
use ocipack::{Result, cjson};

/// Arguments of `ocipack verify`.
#[derive(Debug, Args)]
#[command(
    after_help = "Exit status: 0 valid (warnings allowed), 1 errors found, 2 usage error.\n\
Without --arch, a bashbrew architecture name in the layout's path (e.g. hello-world/arm64v8/oci) \
is the expected architecture.\n\
A layout holds one image (index.json lists exactly one manifest), or is a multi-platform \
layout (index.json's only entry is an image index, as build --index writes it): every image \
the index lists is checked, no platform may be listed twice, and --arch A means one of them \
is A's.\n\
A property ocipack does not know (Docker's container_config, docker_version, BuildKit's \
moby.buildkit.buildinfo.v1, ...) is a warning naming its JSON path: the image spec tells \
readers to ignore unknown properties. A foreign layer (its content at its urls, not in the \
registry) is checked where a layout holds it, else a warning naming its urls' hosts: it is \
never fetched.\n\
--profile oci-import adds every rule of the Docker Official Images oci-import path: bashbrew's \
oci-import builder (pull-request CI), meta-scripts' import (production builds: only tar and \
tar+gzip layers; urls, data and the index entry's annotations dropped; platform replaced) and \
crane push (no symlinked blobs); unknown properties in the documents bashbrew reads are its \
errors, and foreign layers too. Each such finding names its origin in brackets: [bashbrew], \
[meta-scripts], [crane], or [ocipack] where ocipack is stricter than the pipeline.\n\
A docker://[HOST/]REPO[:TAG|@DIGEST] reference is checked where the registry serves it, by the \
same rules: its manifest, or its index and every image the index lists (attestation manifests \
are checked as bytes, not as images), each blob streamed once through SHA-256 and the tar \
reader and written nowhere. Docker v2 media types (a manifest list, a manifest, its config \
and layers) are accepted and named."
)]
pub struct VerifyArgs {
    /// OCI layout directories, or registry references (docker://[HOST/]REPO[:TAG|@DIGEST]).
    #[arg(required = true, value_name = "LAYOUT|docker://REF")]
    layouts: Vec<PathBuf>,
    /// A file in the layout holding the single image descriptor to use (bashbrew's File:).
    #[arg(long, value_name = "F")]
    file: Option<String>,
    /// bashbrew architecture name the image must have (amd64, arm64v8, ...).
    #[arg(long, value_name = "A")]
    arch: Option<String>,
    /// oci: the OCI spec (unknown properties are warnings); oci-import: also every rule of
    /// bashbrew's oci-import builder, meta-scripts' import and crane push.
    #[arg(long, value_name = "P", default_value = "oci", value_parser = ["oci", "oci-import"])]
    profile: String,
    /// Print one machine-readable JSON report.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    remote: RemoteArgs,
}

pub fn run(a: VerifyArgs) -> Result<u8> {
    let expect = a
        .arch
        .as_deref()
        .map(|x| Platform::from_bashbrew_arch(x).map(|p| (p, format!("--arch {x}"))))
        .transpose()?;
    let opts = Options {
        file: a.file,
        expect,
        arch_from_path: true,
        profile: a
            .profile
            .parse::<Profile>()
            .map_err(ocipack::Error::usage)?,
        keep_entries: false,
        select_platform: false,
        documents_only: false,
    };
    verify::check_file_is_inside("--file", opts.file.as_deref())?;
    let fetch = a.remote.fetch_options()?;
    let sources = a
        .layouts
        .into_iter()
        .map(|l| Source::from_arg(l, &fetch))
        .collect::<Result<Vec<_>>>()?;
    a.remote.warn(&sources.iter().collect::<Vec<_>>());
    let reports = Reports::new(
        sources
            .iter()
            .map(|s| Ok(verify::open(s, &opts)?.into_report()))
            .collect::<Result<Vec<_>>>()?,
    );
    if a.json {
        out!("{}", String::from_utf8_lossy(&cjson::to_vec(&reports)?));
    } else {
        for r in &reports.layouts {
            for p in &r.problems {
                out!("{}: {p}", r.layout);
            }
            out!("{}: {}", r.layout, r.summary());
        }
    }
    Ok(if reports.valid { 0 } else { 1 })
}
