//! `ocipack build [DIR]`: every output of a project (see `ocipack::project::build`).

use std::path::PathBuf;

use clap::Args;

use super::out;
use serde_json::json;

use ocipack::cjson;
use ocipack::error::{Error, Result};
use ocipack::image::write::Written;
use ocipack::project::build::{self as build, OutputCheck};
use ocipack::project::plan::BuildOptions;

use super::image::resolve_jobs;
use super::remote::RemoteArgs;

/// Arguments of `ocipack build`.
#[derive(Debug, Args)]
#[command(
    after_help = "Outputs are staged beside their targets and swapped into place only \
when every layout has been built. The bytes never depend on --jobs.\n\
A project with [[images]] builds one layout per image and architecture; --image and --arch \
select a subset (an image that takes its layouts from others selects the layouts it uses), \
and each summary line names the image.\n\
Windows variant directories are written from [windows] text; without it they are the \
project's own, and build only checks that each holds a Dockerfile whose FROM names its \
variant.\n\
With a [library] table in ocipack.toml, each image is checked in memory with the rules of \
`verify --profile oci-import` before anything is written (compression = \"zstd\" and \
names = \"files\" are refused at once: the Official Images pipeline refuses them).\n\
With --commit-branch (or [library] commit-branch), the layouts are committed to the branches \
the pattern names instead ('dist-{arch}': one commit per architecture holding every image's \
layout for it; with {image}: one branch per image and architecture), reproducibly (fixed \
identity ocipack <ocipack@ocipack.invalid>, dated from created, parent the previous tip); a \
layout not selected by --image/--arch is carried over from the tip; a branch checked out in a \
work tree or that is a symbolic ref is refused; Windows outputs are still written to the work \
tree.\n\
With --index OUT, only one multi-platform OCI layout is written, at OUT (relative to the \
working directory, never one of the project's outputs): every Linux architecture's image \
(or those --arch selects), built as for the per-architecture layouts, each blob once, and \
an image index listing them in bashbrew's architecture order (the same index `ocipack push \
DIR` pushes). index.json holds one descriptor of that index (named by [image] ref-name), \
the form skopeo copy --all, podman and crane push read. Readable names: image-index.json \
and ARCH/{image-manifest.json,image-config.json,rootfs.tar.*}, symlinks to the blobs \
(none with names = \"none\").\n\
With --check --against REF, each architecture is built in memory (nothing is written) and \
compared with what the registry serves for its platform under REF (an index: matched by \
platform; one manifest: by its config's platform). One line per architecture: identical, \
different: FIRST DIFFERENCE (from the manifest and config; --explain also fetches the layers \
that differ and lists every difference), missing in the registry; then the index's other \
entries: extra in the registry (a Linux image the project does not build), or not built \
here (attestation manifests, other operating systems, architectures not selected: never a \
failure). With [[images]], REF names the repository (no tag): each image (those --image \
selects) is compared with what the registry serves under its first tag, an image that takes \
its layouts from others by those layouts, and each line names the image and the tag. Exit 0 \
when every manifest digest equals the build's, 1 otherwise.\n\
Incremental builds: after each build, a record of what every layout was built from (a \
digest of its input files' bytes, its settings, the encoder and ocipack versions) and of \
what it holds (each file's digest) is kept outside the layouts: in the git directory \
(<git-dir>/ocipack/cache) when the project is in a git repository, else in \
$XDG_CACHE_HOME/ocipack (~/.cache/ocipack). A layout whose record matches, and whose \
files on disk still hash to what was recorded, is reused: its inputs are hashed, never \
decompressed or encoded. Any change of an input, a setting or a version builds it again. \
--check never uses the records; --no-cache neither reads nor writes them."
)]
pub struct BuildArgs {
    /// The project directory (holding ocipack.toml).
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// Build only this image of the project's [[images]] (repeatable; an image that takes
    /// its layouts from others selects the layouts it uses; no Windows variant is built).
    #[arg(long, value_name = "NAME")]
    image: Vec<String>,
    /// Build only this architecture (repeatable; windows-amd64 selects the Windows variants).
    #[arg(long, value_name = "A")]
    arch: Vec<String>,
    /// Worker threads (default: the machine's parallelism).
    #[arg(short = 'j', long)]
    jobs: Option<usize>,
    /// Build into temporary directories and compare with the disk: exit 0 if identical,
    /// 1 listing each difference.
    #[arg(long, conflicts_with = "compare_compression")]
    check: bool,
    /// Print each layout's layer size uncompressed, gzip and zstd; writes nothing.
    #[arg(long)]
    compare_compression: bool,
    /// Commit the layouts to branches (e.g. 'dist-{arch}', 'dist-{image}-{arch}') instead
    /// of writing them to the work tree; the work tree and the index are not touched.
    /// Default: [library] commit-branch in ocipack.toml.
    #[arg(long, value_name = "PATTERN")]
    commit_branch: Option<String>,
    /// Write one multi-platform layout (an image index of every Linux architecture of one
    /// image; with [[images]], name it with --image) at OUT instead of the project's outputs.
    #[arg(long, value_name = "OUT", conflicts_with_all = ["compare_compression", "commit_branch"])]
    index: Option<PathBuf>,
    /// With --check: compare with what the registry serves under REF
    /// ([docker://][REGISTRY/]REPOSITORY[:TAG][@DIGEST]; with [[images]], the repository:
    /// each image under its first tag) instead of the disk.
    #[arg(long, value_name = "REF", requires = "check", conflicts_with_all = ["index", "commit_branch"])]
    against: Option<String>,
    /// With --against: also fetch the layers that differ and list every difference.
    #[arg(long, requires = "against")]
    explain: bool,
    /// Build every output, also those unchanged since a build recorded them, and record
    /// nothing (see Incremental builds below).
    #[arg(long)]
    no_cache: bool,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    remote: RemoteArgs,
}

fn print_json(v: &serde_json::Value) -> Result<()> {
    out!("{}", String::from_utf8_lossy(&cjson::to_vec(v)?));
    Ok(())
}

pub fn run(a: BuildArgs) -> Result<u8> {
    let opts = BuildOptions {
        images: a.image.clone(),
        arches: a.arch.clone(),
        jobs: resolve_jobs(a.jobs)?,
        source_date_epoch: std::env::var("SOURCE_DATE_EPOCH").ok(),
        commit_branch: a.commit_branch.clone(),
        cache: !a.no_cache,
    };
    if let Some(out) = &a.index {
        return run_index(&a, out, &opts);
    }
    if let Some(reference) = &a.against {
        return super::against::run(&a.dir, reference, a.explain, a.json, &a.remote, &opts);
    }
    if a.check {
        return report_check(&a, &build::check_project(&a.dir, &opts)?);
    }
    if a.compare_compression {
        let sizes = build::compare_project_compression(&a.dir, &opts)?;
        if a.json {
            let rows: Vec<_> = sizes
                .iter()
                .map(|s| {
                    json!({
                        "image": s.image,
                        "arch": s.arch,
                        "uncompressed": s.uncompressed,
                        "gzip": {"size": s.gzip, "level": s.gzip_level},
                        "zstd": {"size": s.zstd, "level": s.zstd_level},
                    })
                })
                .collect();
            print_json(&json!(rows))?;
        } else {
            let several = sizes.iter().any(|s| s.label != s.arch);
            let w = sizes
                .iter()
                .map(|s| s.label.len())
                .max()
                .unwrap_or(0)
                .max(10);
            out!(
                "{:<w$} {:>14} {:>14} {:>14}",
                if several { "layout" } else { "arch" },
                "uncompressed",
                "gzip",
                "zstd"
            );
            for s in &sizes {
                out!(
                    "{:<w$} {:>14} {:>14} {:>14}",
                    s.label,
                    s.uncompressed,
                    format!("{} (-{})", s.gzip, s.gzip_level),
                    format!("{} (-{})", s.zstd, s.zstd_level)
                );
            }
        }
        return Ok(0);
    }

    let report = build::build_project(&a.dir, &opts)?;
    let label = |image: &str, arch: &str| {
        if report.several {
            format!("{image} {arch}")
        } else {
            arch.to_string()
        }
    };
    let warnings = report
        .layouts
        .iter()
        .map(|i| (label(&i.image, &i.arch), &i.built))
        .chain(
            report
                .branches
                .iter()
                .flat_map(|b| &b.layouts)
                .map(|l| (label(&l.image, &l.arch), &l.built)),
        );
    for (what, built) in warnings {
        for w in &built.warnings {
            eprintln!("ocipack: warning: {what}: {w}");
        }
    }
    for b in &report.branches {
        for o in b.others.iter().filter(|o| o.tree.is_none()) {
            eprintln!(
                "ocipack: warning: {} has no layout for {} at {}: this build did not select \
                 it and the branch's previous tip did not hold it (build it with --image {} \
                 --arch {})",
                b.refname,
                label(&o.image, &o.arch),
                ocipack::show::text(&o.directory),
                o.image,
                o.arch
            );
        }
    }
    if a.json {
        let images: Vec<_> = report
            .layouts
            .iter()
            .map(|i| {
                json!({
                    "image": i.image,
                    "arch": i.arch,
                    "output": i.output.to_string_lossy(),
                    "written": i.built.written == Some(Written::Replaced),
                    "reused": i.reused,
                    "created": i.created.to_string(),
                    "manifest": i.built.image.entry,
                    "layer": i.built.layer.json(),
                })
            })
            .collect();
        let windows: Vec<_> = report
            .windows
            .iter()
            .zip(&report.windows_written)
            .map(|(w, written)| {
                json!({
                    "variant": w.variant.name,
                    "output": w.output.to_string_lossy(),
                    "written": written,
                    "checked_only": w.files.is_none(),
                    "files": windows_files(w),
                })
            })
            .collect();
        // One row per layout committed, with its branch's commit.
        let branches: Vec<_> = report
            .branches
            .iter()
            .flat_map(|b| b.layouts.iter().map(move |l| (b, l)))
            .map(|(b, l)| {
                json!({
                    "image": l.image,
                    "arch": l.arch,
                    "ref": b.refname,
                    "commit": b.commit,
                    "parent": b.old,
                    "changed": b.changed,
                    "directory": l.directory,
                    "reused": l.reused,
                    "created": l.created.to_string(),
                    "manifest": l.built.image.entry,
                })
            })
            .collect();
        print_json(&json!({"images": images, "windows": windows, "branches": branches}))?;
    } else {
        let w = report
            .layouts
            .iter()
            .map(|i| label(&i.image, &i.arch).len())
            .max()
            .unwrap_or(0)
            .max(9);
        for i in &report.layouts {
            out!(
                "{:<w$} {:<9} {}  layer {} bytes {} ({} uncompressed)  created {}  {}",
                label(&i.image, &i.arch),
                status(i.built.written == Some(Written::Replaced)),
                i.built.image.entry.digest,
                i.built.layer.size,
                i.built.layer.compression,
                i.built.layer.uncompressed_size,
                i.created,
                ocipack::show::path(&i.output)
            );
        }
        for (b, l) in report
            .branches
            .iter()
            .flat_map(|b| b.layouts.iter().map(move |l| (b, l)))
        {
            out!(
                "{:<9} {:<9} {}  {} {}  created {}",
                label(&l.image, &l.arch),
                if b.changed && l.old_tree.as_deref() != Some(l.tree.as_str()) {
                    "committed"
                } else {
                    "unchanged"
                },
                l.built.image.entry.digest,
                b.refname,
                b.commit,
                l.created,
            );
        }
        for (w, written) in report.windows.iter().zip(&report.windows_written) {
            let files = windows_files(w);
            out!(
                "{} {:<9} {}  {}  {}",
                ocipack::project::WINDOWS_ARCH,
                if w.files.is_none() {
                    "checked"
                } else {
                    status(*written)
                },
                w.variant.name,
                files.join(", "),
                ocipack::show::path(&w.output)
            );
        }
    }
    Ok(0)
}

/// `build --index OUT` (and with `--check`).
fn run_index(a: &BuildArgs, out: &std::path::Path, opts: &BuildOptions) -> Result<u8> {
    let report = if a.check {
        build::check_project_index(&a.dir, out, opts)?
    } else {
        build::build_project_index(&a.dir, out, opts)?
    };
    if !a.check {
        for i in &report.images {
            for w in &i.built.warnings {
                eprintln!("ocipack: warning: {}: {w}", i.arch);
            }
        }
    }
    let index = &report.layout.entry;
    if a.json {
        let images: Vec<_> = report
            .images
            .iter()
            .map(|i| {
                json!({
                    "arch": i.arch,
                    "created": i.created.to_string(),
                    "manifest": ocipack::image::index::child_descriptor(&i.built.image),
                    "layer": i.built.layer.json(),
                })
            })
            .collect();
        let mut v = json!({
            "output": report.output.to_string_lossy(),
            "index": index,
            "images": images,
        });
        if a.check {
            v["identical"] = json!(report.differences.is_empty());
            v["differences"] = json!(
                report
                    .differences
                    .iter()
                    .map(|d| d.to_string())
                    .collect::<Vec<_>>()
            );
        } else {
            v["written"] = json!(report.written);
        }
        print_json(&v)?;
    } else {
        for i in &report.images {
            out!(
                "{:<9} {}  layer {} bytes {} ({} uncompressed)  created {}",
                i.arch,
                i.built.image.entry.digest,
                i.built.layer.size,
                i.built.layer.compression,
                i.built.layer.uncompressed_size,
                i.created,
            );
        }
        let status = match (a.check, report.differences.is_empty(), report.written) {
            (true, true, _) => "same",
            (true, false, _) => "DIFFERS",
            (false, _, true) => "written",
            (false, _, false) => "unchanged",
        };
        out!(
            "{:<9} {:<9} {}  {} platforms  {}",
            "index",
            status,
            index.digest,
            report.images.len(),
            ocipack::show::path(&report.output)
        );
        for d in &report.differences {
            out!("          {d}");
        }
    }
    if a.check && !report.differences.is_empty() {
        return Err(Error::CheckFailed(format!(
            "check failed: {} differs from a fresh build; `ocipack build --index {} {}` \
             rewrites it",
            ocipack::show::path(&report.output),
            ocipack::show::path(out),
            ocipack::show::path(&a.dir)
        )));
    }
    Ok(0)
}

/// The files of a Windows directory: those written, or the Dockerfile checked.
fn windows_files(w: &ocipack::project::plan::WindowsTarget) -> Vec<&'static str> {
    match &w.files {
        Some(files) => files.iter().map(|(n, _)| *n).collect(),
        None => vec![ocipack::project::windows::DOCKERFILE],
    }
}

/// `written` or `unchanged` (a build writes only outputs that differ from the disk).
fn status(written: bool) -> &'static str {
    if written { "written" } else { "unchanged" }
}

fn report_check(a: &BuildArgs, checks: &[OutputCheck]) -> Result<u8> {
    let differing = checks.iter().filter(|c| !c.differences.is_empty()).count();
    if a.json {
        let rows: Vec<_> = checks
            .iter()
            .map(|c| {
                json!({
                    "output": c.output.to_string_lossy(),
                    "label": c.label,
                    "identical": c.differences.is_empty(),
                    "differences": c.differences.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
                    "explanation": c.explanation,
                })
            })
            .collect();
        print_json(&json!(rows))?;
    } else {
        for c in checks {
            let status = if c.differences.is_empty() {
                "same"
            } else {
                "DIFFERS"
            };
            out!(
                "{status:<8} {:<9} {}",
                c.label,
                ocipack::show::path(&c.output)
            );
            for d in &c.differences {
                out!("         {d}");
            }
            for line in &c.explanation {
                out!("         {line}");
            }
        }
    }
    if differing == 0 {
        return Ok(0);
    }
    Err(Error::CheckFailed(format!(
        "check failed: {differing} of {} outputs differ from a fresh build; \
         `ocipack build {}` rewrites them",
        checks.len(),
        ocipack::show::path(&a.dir)
    )))
}
