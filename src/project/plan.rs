//! The plan of one `ocipack build` run: every output the options select, resolved from the
//! project file before anything is built — each architecture's layout path and image spec
//! (with its `created`, from the project's source of it: a fixed time, `SOURCE_DATE_EPOCH`
//! or git history), each Windows variant's directory and files — and how many images are
//! built at once within the encoders' memory budget.
//!
//! The plan decides what is built; building, checking and committing it
//! (`project::build`, `project::dist`) only carry it out, so they share these types
//! without depending on each other.

use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::image::build::ImageSpec;
use crate::layer::compress::{ENCODER_BUDGET, PIPELINE_MEMORY, encoder_memory, workers_within};
use crate::media::Compression;
use crate::project::git::Git;
use crate::project::{CreatedSource, PROJECT_FILE, Project, WINDOWS_ARCH, WindowsVariant};
use crate::project::{expand, windows};
use crate::show;
use crate::store::root::{Root, read_named};
use crate::store::staging::{CreatedDirs, Target};
use crate::timestamp::Timestamp;

/// The largest `[windows] text` read.
const MAX_TEXT: u64 = 1024 * 1024;

/// What to build and with what.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// Architectures to build (bashbrew names; `windows-amd64` selects the Windows
    /// variants); empty: everything the project declares.
    pub arches: Vec<String>,
    /// Worker threads (at least 1); never changes the bytes.
    pub jobs: usize,
    /// The value of `SOURCE_DATE_EPOCH`, for `created = "SOURCE_DATE_EPOCH"`.
    pub source_date_epoch: Option<String>,
    /// `--commit-branch`: commit each layout on this branch template (`dist-{arch}`)
    /// instead of writing it to the work tree; default `[library] commit-branch`.
    pub commit_branch: Option<String>,
}

/// One architecture's layout to build.
#[derive(Debug, Clone)]
pub struct ArchTarget {
    /// The bashbrew architecture.
    pub arch: String,
    /// The layout directory (for messages).
    pub output: PathBuf,
    /// The layout directory relative to the project directory.
    pub output_rel: String,
    /// Everything that decides its bytes.
    pub spec: ImageSpec,
}

/// One Windows variant's directory to write.
#[derive(Debug, Clone)]
pub struct WindowsTarget {
    /// The variant.
    pub variant: WindowsVariant,
    /// The directory (for messages).
    pub output: PathBuf,
    /// The directory relative to the project directory.
    pub output_rel: String,
    /// Its files, by name.
    pub files: Vec<(&'static str, Vec<u8>)>,
}

/// Every output of one run, resolved: paths, specs (with `created`), file contents.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The layouts, in the project's architecture order.
    pub images: Vec<ArchTarget>,
    /// The Windows directories, in the project's variant order.
    pub windows: Vec<WindowsTarget>,
    /// Worker threads.
    pub jobs: usize,
    /// Images built at once (at most `jobs`; fewer when their encoders would not fit in
    /// memory together).
    pub at_once: usize,
    /// Where `output` is set (`ocipack.toml:4: output`), for messages about an output.
    pub output_origin: String,
    /// Where `windows.output` is set.
    pub windows_output_origin: String,
    /// The project directory; outputs are resolved beneath it, refusing every symlink.
    pub root: Root,
}

impl Plan {
    /// Resolves the outputs `opts` selects: expands templates, reads the Windows text and
    /// obtains each architecture's `created` from its source.
    pub fn new(project: &Project, opts: &BuildOptions) -> Result<Plan> {
        if opts.jobs == 0 {
            return Err(Error::usage("--jobs must be at least 1"));
        }
        let file = project.dir.join(PROJECT_FILE);
        project.check_arches(&opts.arches, true)?;
        let selected = |a: &str| opts.arches.is_empty() || opts.arches.iter().any(|x| x == a);
        let arches: Vec<&String> = project
            .architectures
            .iter()
            .filter(|a| selected(a))
            .collect();

        let git = (project.created == CreatedSource::Git && !arches.is_empty())
            .then(|| Git::open(&project.dir))
            .transpose()?;
        let mut images = Vec::new();
        for arch in arches {
            let created = match (project.created, &git) {
                (CreatedSource::Fixed(t), _) => t,
                (CreatedSource::SourceDateEpoch, _) => Timestamp::from_source_date_epoch(
                    opts.source_date_epoch.as_deref(),
                )?
                .ok_or_else(|| {
                    Error::usage(format!(
                        "{}: created = \"SOURCE_DATE_EPOCH\", but SOURCE_DATE_EPOCH is not set",
                        show::path(&file)
                    ))
                })?,
                (CreatedSource::Git, Some(g)) => {
                    let paths = project.input_paths(arch);
                    let what = format!(
                        "created = \"git\": the inputs of {arch} ({})",
                        paths.join(", ")
                    );
                    g.last_change(&what, &paths)?.time
                }
                (CreatedSource::Git, None) => {
                    return Err(Error::usage("created = \"git\" needs a git work tree"));
                }
            };
            images.push(ArchTarget {
                arch: arch.clone(),
                output: project.output_dir(arch),
                output_rel: project.output_rel(arch),
                // Its encoder workers are set by fit_memory, once every image is known.
                spec: project.image_spec(arch, created, 1)?,
            });
        }

        let mut win = Vec::new();
        if let Some(w) = project.windows.as_ref().filter(|_| selected(WINDOWS_ARCH)) {
            let text_path = project.dir.join(&w.text);
            let text = read_named(&text_path, MAX_TEXT).map_err(|e| {
                Error::input(
                    format!("[windows] text {}", show::path(&text_path)),
                    e.to_string(),
                )
            })?;
            for v in &w.variants {
                let rel = expand(&w.output, "variant", &v.name);
                win.push(WindowsTarget {
                    variant: v.clone(),
                    output: project.dir.join(&rel),
                    output_rel: rel,
                    files: windows::render(v, &text, &w.text)?,
                });
            }
        }
        let root = project.root()?;
        let mut plan = Plan {
            images,
            windows: win,
            jobs: opts.jobs,
            at_once: 1,
            output_origin: project.output_origin(false),
            windows_output_origin: project.output_origin(true),
            root,
        };
        plan.fit_memory();
        Ok(plan)
    }

    /// Bounds the images built at once, and each one's encoder workers, so that together
    /// they stay within [`ENCODER_BUDGET`] ([`fit_memory`]).
    fn fit_memory(&mut self) {
        let (at_once, workers) = fit_memory(&self.images, self.jobs, false);
        for t in &mut self.images {
            t.spec.encode.jobs = workers;
        }
        self.at_once = at_once;
    }

    /// The target of a project output: beneath the project directory, every component
    /// resolved without following a symlink; missing parents are created (and recorded in
    /// `created`) when `created` is given.
    pub(crate) fn target(
        &self,
        rel: &str,
        windows: bool,
        created: Option<&CreatedDirs>,
    ) -> Result<Target> {
        let origin = if windows {
            &self.windows_output_origin
        } else {
            &self.output_origin
        };
        let what = format!("{origin} {}", show::text(rel));
        match created {
            Some(c) => Target::beneath_creating(&self.root, rel, &what, c),
            None => Target::beneath(&self.root, rel, false, &what),
        }
    }

    /// The target of `rel` when its parent directory exists, for comparisons (nothing is
    /// created); `None` when the output is missing with its parent.
    pub(crate) fn existing_target(&self, rel: &str, windows: bool) -> Result<Option<Target>> {
        let parent = rel.trim_end_matches('/').rsplit_once('/').map(|(p, _)| p);
        if let Some(p) = parent
            && matches!(self.root.entry_type(p), Ok(None))
        {
            return Ok(None);
        }
        self.target(rel, windows, None).map(Some)
    }
}

/// How many of `images` to build at once, and with how many encoder workers each, for
/// their encoders and pipelines together to stay within [`ENCODER_BUDGET`] (estimated by
/// [`encoder_memory`]) with at most `jobs` threads. `compare`: each image encodes gzip and
/// zstd at their default levels besides its own compression, one after the other. The
/// bytes never depend on either number.
pub(crate) fn fit_memory(images: &[ArchTarget], jobs: usize, compare: bool) -> (usize, usize) {
    let kinds = |spec: &ImageSpec| {
        let own = (spec.encode.compression, spec.encode.level);
        let mut k = vec![own];
        if compare {
            k.extend([(Compression::Gzip, None), (Compression::Zstd, None)]);
        }
        k
    };
    let need = |spec: &ImageSpec, w: usize| {
        let most = kinds(spec)
            .into_iter()
            .map(|(c, l)| encoder_memory(c, l, w))
            .max()
            .unwrap_or(0);
        PIPELINE_MEMORY + most
    };
    let Some(worst) = images.iter().map(|t| &t.spec).max_by_key(|s| need(s, 1)) else {
        return (1, jobs.max(1));
    };
    let mut at_once = jobs.min(images.len()).max(1);
    while at_once > 1 && at_once * need(worst, 1) > ENCODER_BUDGET {
        at_once -= 1;
    }
    let share = ENCODER_BUDGET / at_once - PIPELINE_MEMORY;
    let per_image = (jobs / at_once).max(1);
    let workers = images
        .iter()
        .flat_map(|t| kinds(&t.spec))
        .map(|(c, l)| workers_within(c, l, per_image, share))
        .min()
        .unwrap_or(per_image);
    (at_once, workers)
}
