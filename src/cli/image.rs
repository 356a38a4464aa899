//! `ocipack image`: one layout from files.

use std::path::{Path, PathBuf};

use clap::Args;

use super::out;

use ocipack::error::{Error, Result};
use ocipack::image::build::{self as image, ImageSpec};
use ocipack::input::MtimeMode;
use ocipack::progress::{self, Progress};
use ocipack::settings::{Context, InputSetting, Origin, Set, Settings};
use ocipack::show;
use ocipack::timestamp::Timestamp;

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
    /// An existing tar (plain, gzip, zstd, xz or bzip2, judged from its bytes), normalised and
    /// re-packed entry by entry (repeatable).
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
    /// Entry mtimes: clamp (min of file mtime and created; the default) or fixed (all = created).
    #[arg(long, value_name = "MODE", value_parser = ["clamp", "fixed"], help_heading = "Reproducibility")]
    mtime: Option<String>,
    /// Owners of --rootfs and --tar entries: keep their numeric uid/gid (names are always
    /// dropped) or make them 0:0. Default: a tree's become 0:0, a tar's are kept. --file is
    /// always 0:0. A setuid or setgid entry whose owner would change is refused.
    #[arg(long, value_name = "POLICY", value_parser = ["zero", "keep"], help_heading = "Reproducibility")]
    owners: Option<String>,
    /// Same as --owners keep.
    #[arg(long, help_heading = "Reproducibility")]
    preserve_owners: bool,
    /// Keep extended attributes.
    #[arg(long, help_heading = "Reproducibility")]
    xattrs: bool,
    /// Keep device nodes (skipped with a warning otherwise).
    #[arg(long, help_heading = "Reproducibility")]
    devices: bool,

    /// Layer compression (default gzip).
    #[arg(long, value_parser = ["none", "gzip", "zstd"], help_heading = "Output")]
    compression: Option<String>,
    /// Compression level (gzip 1-12, libdeflate's levels, default 5; zstd 1-19, default 3).
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
    #[arg(long, value_parser = ["symlinks", "files", "none"], help_heading = "Output")]
    names: Option<String>,
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
        // Named as the user wrote it: the flag, then what is wrong with its value.
        return c
            .parse()
            .map_err(|e: Error| Error::input("--created", e.to_string()));
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

/// `--file SRC:DEST[:MODE]` as an input setting (MODE is checked when settings resolve).
fn parse_file_spec(s: &str) -> Result<InputSetting> {
    let bad = || {
        Error::input(
            format!("--file \"{}\"", show::text(s)),
            "expected SRC:DEST[:MODE]",
        )
    };
    let mut parts = s.splitn(3, ':');
    let src = parts.next().filter(|p| !p.is_empty()).ok_or_else(bad)?;
    let dest = parts.next().ok_or_else(bad)?;
    let at = || Origin::flag("file");
    Ok(InputSetting::File {
        source: PathBuf::from(src),
        dest: Set::new(dest.to_string(), at()),
        mode: parts.next().map(|m| Set::new(m.to_string(), at())),
    })
}

/// The command line as settings: every flag with its name as the origin.
fn settings(a: &ImageArgs) -> Result<Settings> {
    let flag = Origin::flag;
    let one = |v: &Option<String>, name: &str| v.clone().map(|v| Set::new(v, flag(name)));
    let many = |v: &[String], name: &str| {
        v.iter()
            .map(|v| Set::new(v.clone(), flag(name)))
            .collect::<Vec<_>>()
    };
    let argv = |v: &[String], name: &str| (!v.is_empty()).then(|| Set::new(v.to_vec(), flag(name)));
    let on = |b: bool, name: &str| b.then(|| Set::new(true, flag(name)));
    let mut inputs = Vec::new();
    for r in &a.rootfs {
        inputs.push(Set::new(InputSetting::Rootfs(r.clone()), flag("rootfs")));
    }
    for t in &a.tar {
        inputs.push(Set::new(InputSetting::Tar(t.clone()), flag("tar")));
    }
    for f in &a.file {
        inputs.push(Set::new(parse_file_spec(f)?, flag("file")));
    }
    Ok(Settings {
        inputs,
        arch: one(&a.arch, "arch"),
        platform: one(&a.platform, "platform"),
        entrypoint: argv(&a.entrypoint, "entrypoint"),
        cmd: argv(&a.cmd, "cmd"),
        env: many(&a.env, "env"),
        default_env: a
            .no_default_env
            .then(|| Set::new(false, flag("no-default-env"))),
        workdir: one(&a.workdir, "workdir"),
        user: one(&a.user, "user"),
        labels: many(&a.label, "label"),
        expose: many(&a.expose, "expose"),
        volumes: many(&a.volume, "volume"),
        stop_signal: one(&a.stop_signal, "stop-signal"),
        created_by: one(&a.created_by, "created-by"),
        annotations: many(&a.annotation, "annotation"),
        mtime: one(&a.mtime, "mtime"),
        owners: one(&a.owners, "owners"),
        preserve_owners: on(a.preserve_owners, "preserve-owners"),
        xattrs: on(a.xattrs, "xattrs"),
        devices: on(a.devices, "devices"),
        compression: one(&a.compression, "compression"),
        level: a.level.map(|l| Set::new(i64::from(l), flag("level"))),
        names: one(&a.names, "names"),
        ref_name: one(&a.ref_name, "ref-name"),
        descriptor_file: one(&a.descriptor_file, "descriptor-file"),
    })
}

fn build_spec(a: &ImageArgs) -> Result<ImageSpec> {
    let s = settings(a)?;
    let created = resolve_created(a.created.as_deref())?;
    s.resolve(&Context {
        base: Path::new(""),
        arch: None,
        image: None,
        created,
        jobs: resolve_jobs(a.jobs)?,
        default_mtime: MtimeMode::Clamp,
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
            "layout": a.output.to_string_lossy(),
            "manifest": built.image.entry,
            "config": built.image.manifest.value.config,
            "layer": built.layer.json(),
        });
        out!("{}", String::from_utf8_lossy(&ocipack::cjson::to_vec(&v)?));
    } else {
        out!(
            "{}: {} {} layer {} ({} bytes {}, {} bytes uncompressed)",
            ocipack::show::path(&a.output),
            built.image.entry.digest,
            spec.platform,
            built.layer.digest.short(),
            built.layer.size,
            built.layer.compression,
            built.layer.uncompressed_size
        );
    }
    Ok(0)
}
