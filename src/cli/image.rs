//! `ocipack image`: one layout from files.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Args;

use ocipack::error::{Error, Result};
use ocipack::image::build::{self as image, ImageSpec, Input};
use ocipack::image::write::NameStyle;
use ocipack::input::{MtimeMode, TreeOptions};
use ocipack::layer::EncodeOptions;
use ocipack::media::Compression;
use ocipack::platform::Platform;
use ocipack::progress::{self, Progress};
use ocipack::spec::{ContainerConfig, Empty};
use ocipack::timestamp::Timestamp;

use super::key_value;

/// Arguments of `ocipack image`.
#[derive(Debug, Args)]
#[command(
    after_help = "Without --created, SOURCE_DATE_EPOCH is used; without both, it is an error.\n\
The wall clock and the host platform are never used."
)]
pub struct ImageArgs {
    /// A directory whose whole tree becomes the layer (repeatable).
    #[arg(long, value_name = "DIR", help_heading = "Inputs")]
    rootfs: Vec<PathBuf>,
    /// One file placed at DEST in the image, parents created, optional octal MODE (repeatable).
    #[arg(long, value_name = "SRC:DEST[:MODE]", help_heading = "Inputs")]
    file: Vec<String>,
    /// An existing tar (plain, .gz or .zst), normalised and re-packed entry by entry (repeatable).
    #[arg(long, value_name = "FILE", help_heading = "Inputs")]
    tar: Vec<PathBuf>,

    /// bashbrew architecture name (amd64, arm32v7, arm64v8, i386, ...).
    #[arg(
        long,
        value_name = "A",
        conflicts_with = "platform",
        help_heading = "Platform"
    )]
    arch: Option<String>,
    /// Explicit platform OS/ARCH[/VARIANT].
    #[arg(long, value_name = "P", help_heading = "Platform")]
    platform: Option<String>,

    /// Entrypoint, one argv element per use.
    #[arg(
        long,
        value_name = "ARG",
        allow_hyphen_values = true,
        help_heading = "Config"
    )]
    entrypoint: Vec<String>,
    /// Cmd, one argv element per use.
    #[arg(
        long,
        value_name = "ARG",
        allow_hyphen_values = true,
        help_heading = "Config"
    )]
    cmd: Vec<String>,
    /// Environment variable (default: the PATH `docker build` gives a scratch image).
    #[arg(long, value_name = "K=V", help_heading = "Config")]
    env: Vec<String>,
    /// Do not add the default PATH.
    #[arg(long, help_heading = "Config")]
    no_default_env: bool,
    /// Working directory.
    #[arg(long, value_name = "DIR", help_heading = "Config")]
    workdir: Option<String>,
    /// User (name or uid, optionally :group).
    #[arg(long, help_heading = "Config")]
    user: Option<String>,
    /// Label (repeatable).
    #[arg(long, value_name = "K=V", help_heading = "Config")]
    label: Vec<String>,
    /// Exposed port, PORT[/tcp|udp|sctp] (repeatable).
    #[arg(long, value_name = "PORT[/PROTO]", help_heading = "Config")]
    expose: Vec<String>,
    /// Volume path (repeatable).
    #[arg(long, value_name = "PATH", help_heading = "Config")]
    volume: Vec<String>,
    /// Stop signal (e.g. SIGTERM).
    #[arg(long, help_heading = "Config")]
    stop_signal: Option<String>,
    /// Text of a single history entry.
    #[arg(long, value_name = "TEXT", help_heading = "Config")]
    created_by: Option<String>,

    /// Creation time: RFC 3339 (2025-01-21T23:32:32Z) or @EPOCH.
    #[arg(long, value_name = "TIME", help_heading = "Reproducibility")]
    created: Option<String>,
    /// Entry mtimes: clamp (min of file mtime and created) or fixed (all = created).
    #[arg(long, value_name = "MODE", default_value = "clamp", value_parser = ["clamp", "fixed"], help_heading = "Reproducibility")]
    mtime: String,
    /// Keep numeric uid/gid of the inputs (names are always dropped); default 0:0.
    #[arg(long, help_heading = "Reproducibility")]
    preserve_owners: bool,
    /// Keep extended attributes.
    #[arg(long, help_heading = "Reproducibility")]
    xattrs: bool,
    /// Keep device nodes (skipped with a warning otherwise).
    #[arg(long, help_heading = "Reproducibility")]
    devices: bool,

    /// Layer compression.
    #[arg(long, default_value = "gzip", value_parser = ["none", "gzip", "zstd"], help_heading = "Output")]
    compression: String,
    /// Compression level (gzip 1-9, default 6; zstd 1-19, default 3).
    #[arg(long, help_heading = "Output")]
    level: Option<i32>,
    /// Worker threads (the output never depends on it).
    #[arg(short = 'j', long, help_heading = "Output")]
    jobs: Option<usize>,
    /// Name on the index entry: org.opencontainers.image.ref.name, and io.containerd.image.name when it is a full reference (has / or :).
    #[arg(long, value_name = "NAME", help_heading = "Output")]
    ref_name: Option<String>,
    /// Manifest annotation (repeatable; none by default).
    #[arg(long, value_name = "K=V", help_heading = "Output")]
    annotation: Vec<String>,
    /// Readable names: symlinks (to blobs; default), files (busybox style; crane >= 0.21.7 refuses it), none.
    #[arg(long, default_value = "symlinks", value_parser = ["symlinks", "files", "none"], help_heading = "Output")]
    names: String,
    /// Also write the index entry as a single-descriptor JSON file (for bashbrew's File:).
    #[arg(long, value_name = "NAME", help_heading = "Output")]
    descriptor_file: Option<String>,
    /// The layout directory to write (replaced atomically).
    #[arg(short = 'o', long, value_name = "OUT", help_heading = "Output")]
    output: PathBuf,
    /// Print the result as JSON.
    #[arg(long, help_heading = "Output")]
    json: bool,
    /// No progress line (it is shown only when stdout and stderr are terminals).
    #[arg(short = 'q', long, help_heading = "Output")]
    quiet: bool,
}

/// Resolves `--created` / SOURCE_DATE_EPOCH, the only two sources.
pub fn resolve_created(created: Option<&str>) -> Result<Timestamp> {
    if let Some(c) = created {
        return c.parse();
    }
    let sde = std::env::var("SOURCE_DATE_EPOCH").ok();
    Timestamp::from_source_date_epoch(sde.as_deref())?.ok_or_else(|| {
        Error::usage(
            "no creation time: pass --created TIME (RFC 3339 or @EPOCH) or set SOURCE_DATE_EPOCH",
        )
    })
}

/// Worker threads: as given, else the machine's parallelism (never part of the output).
pub fn resolve_jobs(jobs: Option<usize>) -> Result<usize> {
    match jobs {
        Some(0) => Err(Error::usage("--jobs must be at least 1")),
        Some(n) => Ok(n),
        None => Ok(std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)),
    }
}

fn parse_file_spec(s: &str) -> Result<Input> {
    let bad = |why: &str| Error::input(format!("--file {s:?}"), why.to_string());
    let mut parts = s.splitn(3, ':');
    let src = parts
        .next()
        .filter(|p| !p.is_empty())
        .ok_or_else(|| bad("expected SRC:DEST[:MODE]"))?;
    let dest = parts
        .next()
        .ok_or_else(|| bad("expected SRC:DEST[:MODE]"))?;
    let mode = parts
        .next()
        .map(|m| {
            u32::from_str_radix(m, 8)
                .ok()
                .filter(|v| *v <= 0o7777)
                .ok_or_else(|| bad("MODE must be octal, at most 7777 (e.g. 0755)"))
        })
        .transpose()?;
    Ok(Input::File {
        src: PathBuf::from(src),
        dest: dest.to_string(),
        mode,
    })
}

fn parse_port(s: &str) -> Result<String> {
    let (port, proto) = s.split_once('/').unwrap_or((s, "tcp"));
    let ok_port = port.parse::<u16>().map(|p| p > 0).unwrap_or(false);
    if !ok_port || !["tcp", "udp", "sctp"].contains(&proto) {
        return Err(Error::input(
            format!("--expose {s:?}"),
            "expected PORT[/tcp|udp|sctp] with PORT 1-65535",
        ));
    }
    Ok(format!("{port}/{proto}"))
}

fn map_of(opt: &str, items: &[String]) -> Result<Option<BTreeMap<String, String>>> {
    let mut m = BTreeMap::new();
    for it in items {
        let (k, v) = key_value(it).map_err(|e| Error::input(format!("--{opt}"), e))?;
        if m.insert(k.clone(), v).is_some() {
            return Err(Error::input(format!("--{opt} {k}"), "given twice"));
        }
    }
    Ok((!m.is_empty()).then_some(m))
}

fn build_spec(a: &ImageArgs) -> Result<ImageSpec> {
    let platform = match (&a.arch, &a.platform) {
        (Some(arch), _) => Platform::from_bashbrew_arch(arch)?,
        (None, Some(p)) => p.parse()?,
        (None, None) => {
            return Err(Error::usage(
                "no platform: pass --arch (a bashbrew name such as amd64) or --platform OS/ARCH[/VARIANT]; \
                 the host's platform is never assumed",
            ));
        }
    };
    let mut inputs: Vec<Input> = a.rootfs.iter().cloned().map(Input::Rootfs).collect();
    inputs.extend(a.tar.iter().cloned().map(Input::Tar));
    for f in &a.file {
        inputs.push(parse_file_spec(f)?);
    }
    if inputs.is_empty() {
        return Err(Error::usage(
            "no input: pass --rootfs DIR, --file SRC:DEST or --tar FILE",
        ));
    }
    let created = resolve_created(a.created.as_deref())?;
    let compression: Compression = a.compression.parse().map_err(Error::usage)?;

    let mut env = Vec::new();
    for e in &a.env {
        key_value(e).map_err(|m| Error::input("--env", m))?;
    }
    if !a.no_default_env && !a.env.iter().any(|e| e.starts_with("PATH=")) {
        env.extend(image::default_env(&platform));
    }
    env.extend(a.env.iter().cloned());
    let ports = a
        .expose
        .iter()
        .map(|p| parse_port(p).map(|k| (k, Empty {})))
        .collect::<Result<BTreeMap<_, _>>>()?;
    let volumes: BTreeMap<String, Empty> = a.volume.iter().map(|v| (v.clone(), Empty {})).collect();
    let config = ContainerConfig {
        user: a.user.clone(),
        exposed_ports: (!ports.is_empty()).then_some(ports),
        env: (!env.is_empty()).then_some(env),
        entrypoint: (!a.entrypoint.is_empty()).then(|| a.entrypoint.clone()),
        cmd: (!a.cmd.is_empty()).then(|| a.cmd.clone()),
        volumes: (!volumes.is_empty()).then_some(volumes),
        working_dir: a.workdir.clone(),
        labels: map_of("label", &a.label)?,
        stop_signal: a.stop_signal.clone(),
        args_escaped: None,
    };
    Ok(ImageSpec {
        inputs,
        tree: TreeOptions {
            created,
            mtime: if a.mtime == "fixed" {
                MtimeMode::Fixed
            } else {
                MtimeMode::Clamp
            },
            preserve_owners: a.preserve_owners,
            xattrs: a.xattrs,
            devices: a.devices,
        },
        platform,
        config,
        created_by: a.created_by.clone(),
        encode: EncodeOptions {
            compression,
            level: a.level,
            jobs: resolve_jobs(a.jobs)?,
        },
        ref_name: a.ref_name.clone(),
        annotations: map_of("annotation", &a.annotation)?.unwrap_or_default(),
        names: a.names.parse::<NameStyle>().map_err(Error::usage)?,
        descriptor_file: a.descriptor_file.clone(),
    })
}

pub fn run(a: ImageArgs) -> Result<u8> {
    let spec = build_spec(&a)?;
    let progress = Progress::new();
    let built = progress::report_while(progress::wanted_here(a.quiet), &progress, || {
        image::build_image(&spec, &a.output, Some(&progress))
    })?;
    for w in &built.warnings {
        eprintln!("ocipack: warning: {w}");
    }
    if a.json {
        let v = serde_json::json!({
            "layout": a.output.display().to_string(),
            "manifest": built.manifest,
            "config": built.config,
            "layer": {
                "digest": built.layer.digest,
                "size": built.layer.size,
                "diffID": built.layer.diff_id,
                "uncompressedSize": built.layer.uncompressed_size,
                "mediaType": built.layer.compression.media_type(),
            },
        });
        println!("{}", String::from_utf8_lossy(&ocipack::cjson::to_vec(&v)?));
    } else {
        println!(
            "{}: {} {} layer {} ({} bytes {}, {} bytes uncompressed)",
            a.output.display(),
            built.manifest.digest,
            spec.platform,
            built.layer.digest.short(),
            built.layer.size,
            built.layer.compression,
            built.layer.uncompressed_size
        );
    }
    Ok(0)
}
