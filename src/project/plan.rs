//! The plan of one `ocipack build` run: every output the options select, resolved from the
//! project file before anything is built — each (image, architecture) layout's path, branch
//! and image spec (with its `created`, from the project's source of it: a fixed time,
//! `SOURCE_DATE_EPOCH` or git history), each Windows variant's directory and files — and
//! how many images are built at once within the encoders' memory budget.
//!
//! `--image` selects entries and `--arch` architectures; an entry that takes its layouts
//! `from` others selects the layouts it uses. Each layout is built once however many
//! selected entries use it.
//!
//! The plan decides what is built; building, checking and committing it
//! (`project::build`, `project::dist`) only carry it out, so they share these types
//! without depending on each other.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::error::{Error, Result};
use crate::image::build::ImageSpec;
use crate::layer::compress::{ENCODER_BUDGET, PIPELINE_MEMORY, encoder_memory, workers_within};
use crate::media::Compression;
use crate::project::git::Git;
use crate::project::{
    CreatedSource, ImageEntry, PROJECT_FILE, Project, WINDOWS_ARCH, WindowsVariant,
};
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
    /// `--image`: the entries to build (a `from` entry selects the layouts it uses);
    /// empty: every entry, and the Windows variants.
    pub images: Vec<String>,
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
    /// Reuse outputs whose inputs and settings are unchanged, and record what each build
    /// made (see `project::cache`); false (`--no-cache`): build every output, record
    /// nothing. `--check` never uses the records.
    pub cache: bool,
}

/// One layout to build: one building entry's architecture.
#[derive(Debug, Clone)]
pub struct ArchTarget {
    /// The entry that builds it.
    pub image: String,
    /// The bashbrew architecture.
    pub arch: String,
    /// The layout directory (for messages).
    pub output: PathBuf,
    /// The layout directory relative to the project directory (on its branch, when it is
    /// committed to one).
    pub output_rel: String,
    /// Where its output template is set, for messages (`p/ocipack.toml:12: images.output`).
    pub output_origin: String,
    /// The branch it is committed to (`dist-amd64`, without `refs/heads/`) when the run
    /// commits to branches ([`Plan::commit_branch`]).
    pub branch: Option<String>,
    /// Everything that decides its bytes.
    pub spec: ImageSpec,
}

/// A selected entry and the layouts it is made of.
#[derive(Debug, Clone)]
pub struct PlanImage {
    /// The entry's name.
    pub name: String,
    /// Per selected architecture, in the entry's order: the index in [`Plan::targets`] of
    /// the layout it uses (its own, or for a `from` entry the one it resolves to).
    pub layouts: Vec<(String, usize)>,
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
    /// Its files, by name; `None` without `[windows] text`: the directory is the project's
    /// own, checked (a `Dockerfile` whose `FROM` names the variant) and never written.
    pub files: Option<Vec<(&'static str, Vec<u8>)>>,
}

/// Every output of one run, resolved: paths, specs (with `created`), file contents.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The layouts, each once, in file order of the entries that build them, then in the
    /// project's architecture order.
    pub targets: Vec<ArchTarget>,
    /// The selected entries, in file order, each with the layouts it uses.
    pub images: Vec<PlanImage>,
    /// Whether the project has `[[images]]`: messages then name the image of a layout.
    pub several: bool,
    /// The Windows directories, in the project's variant order.
    pub windows: Vec<WindowsTarget>,
    /// The commit branch template in force: `--commit-branch`, else `[library]
    /// commit-branch`; `None`: layouts go to the work tree.
    pub commit_branch: Option<String>,
    /// Worker threads.
    pub jobs: usize,
    /// Whether `build` reuses unchanged outputs and records what it made
    /// ([`BuildOptions::cache`]).
    pub cache: bool,
    /// Images built at once (at most `jobs`; fewer when their encoders would not fit in
    /// memory together).
    pub at_once: usize,
    /// Where `windows.output` is set.
    pub windows_output_origin: String,
    /// The project directory; outputs are resolved beneath it, refusing every symlink.
    pub root: Root,
}

impl ArchTarget {
    /// How messages name it: `amd64`, or `glibc amd64` in a project with `[[images]]`.
    pub fn label(&self, several: bool) -> String {
        if several {
            format!("{} {}", self.image, self.arch)
        } else {
            self.arch.clone()
        }
    }
}

impl Plan {
    /// Resolves the outputs `opts` selects: expands templates, reads the Windows text and
    /// obtains each layout's `created` from its source.
    pub fn new(project: &Project, opts: &BuildOptions) -> Result<Plan> {
        if opts.jobs == 0 {
            return Err(Error::usage("--jobs must be at least 1"));
        }
        let file = project.dir.join(PROJECT_FILE);
        project.check_arches(&opts.arches, true)?;
        project.check_images(&opts.images)?;
        let commit_branch = opts.commit_branch.clone().or_else(|| {
            project
                .library
                .as_ref()
                .and_then(|l| l.commit_branch.clone())
        });
        project.check_outputs(commit_branch.as_deref())?;
        let arch_selected = |a: &str| opts.arches.is_empty() || opts.arches.iter().any(|x| x == a);
        let chosen: Vec<&ImageEntry> = project
            .images
            .iter()
            .filter(|e| opts.images.is_empty() || opts.images.contains(&e.name))
            .collect();

        // The layouts the chosen entries use: (building entry, arch).
        let mut wanted: BTreeSet<(String, String)> = BTreeSet::new();
        for e in &chosen {
            let before = wanted.len();
            for a in e.architectures.iter().filter(|a| arch_selected(a)) {
                let source = e.source(a).expect("an entry has each of its architectures");
                wanted.insert((source.to_string(), a.clone()));
            }
            if !opts.images.is_empty() && wanted.len() == before {
                let has = e.architectures.iter().any(|a| arch_selected(a));
                if !has {
                    return Err(Error::usage(format!(
                        "--image {} --arch {}: image {} has none of these architectures (its \
                         architectures: {})",
                        e.name,
                        opts.arches.join(" --arch "),
                        e.name,
                        e.architectures.join(", ")
                    )));
                }
            }
        }

        let git = (project.created == CreatedSource::Git && !wanted.is_empty())
            .then(|| Git::open(&project.dir))
            .transpose()?;
        let mut targets: Vec<ArchTarget> = Vec::new();
        for (entry, arch, rel) in project.layouts() {
            if !wanted.contains(&(entry.name.clone(), arch.to_string())) {
                continue;
            }
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
                    let paths = project.input_paths(entry, arch);
                    let of = if project.declares_images() {
                        format!("{} {arch}", entry.name)
                    } else {
                        arch.to_string()
                    };
                    let what = format!(
                        "created = \"git\": the inputs of {of} ({})",
                        paths.join(", ")
                    );
                    g.last_change(&what, &paths)?.time
                }
                (CreatedSource::Git, None) => {
                    return Err(Error::usage("created = \"git\" needs a git work tree"));
                }
            };
            let build = entry
                .build()
                .expect("layouts are built by building entries");
            targets.push(ArchTarget {
                image: entry.name.clone(),
                arch: arch.to_string(),
                output: project.dir.join(&rel),
                output_rel: rel,
                output_origin: build.output_origin.clone(),
                branch: commit_branch
                    .as_deref()
                    .map(|p| project.branch_name(p, entry, arch)),
                // Its encoder workers are set by fit_memory, once every image is known.
                spec: project.image_spec(entry, arch, created, 1)?,
            });
        }
        let index: BTreeMap<(&str, &str), usize> = targets
            .iter()
            .enumerate()
            .map(|(i, t)| ((t.image.as_str(), t.arch.as_str()), i))
            .collect();
        let images = chosen
            .iter()
            .map(|e| PlanImage {
                name: e.name.clone(),
                layouts: e
                    .architectures
                    .iter()
                    .filter(|a| arch_selected(a))
                    .filter_map(|a| {
                        let source = e.source(a)?;
                        let i = *index.get(&(source, a.as_str()))?;
                        Some((a.clone(), i))
                    })
                    .collect(),
            })
            .collect();

        let mut win = Vec::new();
        let windows_selected = opts.images.is_empty() && arch_selected(WINDOWS_ARCH);
        if let Some(w) = project.windows.as_ref().filter(|_| windows_selected) {
            let text = match &w.text {
                Some(t) => {
                    let text_path = project.dir.join(t);
                    let bytes = read_named(&text_path, MAX_TEXT).map_err(|e| {
                        Error::input(
                            format!("[windows] text {}", show::path(&text_path)),
                            e.to_string(),
                        )
                    })?;
                    Some((t, bytes))
                }
                None => None,
            };
            for v in &w.variants {
                let rel = expand(&w.output, "variant", &v.name);
                win.push(WindowsTarget {
                    variant: v.clone(),
                    output: project.dir.join(&rel),
                    output_rel: rel,
                    files: text
                        .as_ref()
                        .map(|(name, bytes)| windows::render(v, bytes, name))
                        .transpose()?,
                });
            }
        }
        let root = project.root()?;
        let mut plan = Plan {
            targets,
            images,
            several: project.declares_images(),
            windows: win,
            commit_branch,
            jobs: opts.jobs,
            cache: opts.cache,
            at_once: 1,
            windows_output_origin: project.windows_output_origin(),
            root,
        };
        plan.fit_memory();
        Ok(plan)
    }

    /// Bounds the images built at once, and each one's encoder workers, so that together
    /// they stay within [`ENCODER_BUDGET`] ([`fit_memory`]).
    fn fit_memory(&mut self) {
        let (at_once, workers) = fit_memory(&self.targets, self.jobs, false);
        for t in &mut self.targets {
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
        origin: &str,
        created: Option<&CreatedDirs>,
    ) -> Result<Target> {
        let what = format!("{origin} {}", show::text(rel));
        match created {
            Some(c) => Target::beneath_creating(&self.root, rel, &what, c),
            None => Target::beneath(&self.root, rel, false, &what),
        }
    }

    /// The target of `rel` when its parent directory exists, for comparisons (nothing is
    /// created); `None` when the output is missing with its parent.
    pub(crate) fn existing_target(&self, rel: &str, origin: &str) -> Result<Option<Target>> {
        let parent = rel.trim_end_matches('/').rsplit_once('/').map(|(p, _)| p);
        if let Some(p) = parent
            && matches!(self.root.entry_type(p), Ok(None))
        {
            return Ok(None);
        }
        self.target(rel, origin, None).map(Some)
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

/// Runs `f` on every item with at most `workers` threads; results in item order.
pub(crate) fn parallel_map<T: Sync, R: Send>(
    items: &[T],
    workers: usize,
    f: impl Fn(&T) -> Result<R> + Sync,
) -> Vec<Result<R>> {
    let next = AtomicUsize::new(0);
    let slots: Vec<Mutex<Option<Result<R>>>> = items.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..workers.clamp(1, items.len().max(1)) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    let r = f(item);
                    if let Ok(mut slot) = slots[i].lock() {
                        *slot = Some(r);
                    }
                }
            });
        }
    });
    slots
        .into_iter()
        .map(|m| {
            m.into_inner()
                .ok()
                .flatten()
                .unwrap_or_else(|| Err(Error::usage("a build worker stopped unexpectedly")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parallel_map_keeps_order_and_bounds_workers() {
        let running = AtomicUsize::new(0);
        let peak = AtomicUsize::new(0);
        let items: Vec<usize> = (0..20).collect();
        let r = parallel_map(&items, 3, |i| {
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(now, Ordering::SeqCst);
            std::thread::sleep(std::time::Duration::from_millis(5));
            running.fetch_sub(1, Ordering::SeqCst);
            if *i == 7 {
                Err(Error::usage("seven"))
            } else {
                Ok(i * 2)
            }
        });
        assert!(peak.load(Ordering::SeqCst) <= 3);
        assert_eq!(r.len(), 20);
        assert_eq!(*r[19].as_ref().unwrap(), 38);
        assert!(r[7].is_err());
    }
}
