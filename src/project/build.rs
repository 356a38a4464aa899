//! `ocipack build`: every output of a project — one OCI layout per (image, architecture)
//! and one Dockerfile directory per Windows variant — built, checked against the disk, or
//! measured.
//!
//! Layouts are built in parallel (at most `jobs` at a time, the remaining workers going to
//! compression), each into a staging directory beside its output. Only when every output
//! has been built are they swapped into place, so a failure in one layout changes nothing
//! on disk. The bytes never depend on `jobs`. Windows directories without `[windows] text`
//! are the project's own: checked, never written.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::image::build::{self as image, BuiltImage, ImageSpec, IndexLayout};
use crate::image::write::{self as image_write, LayoutWriter, Written};
use crate::layer::LayerInfo;
use crate::media::Compression;
use crate::project::cache;
use crate::project::plan::{
    ArchTarget, BuildOptions, Plan, WindowsTarget, fit_memory, parallel_map,
};
use crate::project::{Project, WINDOWS_ARCH};
use crate::project::{dist, windows};
use crate::show;
use crate::store::output::{DiffKind, Difference};
use crate::store::paths::overlaps;
use crate::store::staging::{CreatedDirs, Replaced, Target, commit_all};
use crate::timestamp::Timestamp;

/// A built (or checked) layout.
#[derive(Debug, Clone)]
pub struct ArchResult {
    /// The entry that builds it.
    pub image: String,
    /// The bashbrew architecture.
    pub arch: String,
    /// The layout directory.
    pub output: PathBuf,
    /// The image's `created`.
    pub created: Timestamp,
    /// What was built.
    pub built: BuiltImage,
    /// True when the output was reused, not built: its record showed it unchanged
    /// ([`cache`]).
    pub reused: bool,
}

/// What `build` wrote.
#[derive(Debug)]
pub struct BuildReport {
    /// The layouts written to the work tree (or found already right).
    pub layouts: Vec<ArchResult>,
    /// Whether the project has `[[images]]`: summaries then name each layout's image.
    pub several: bool,
    /// The Windows directories.
    pub windows: Vec<WindowsTarget>,
    /// For each Windows directory, whether it was written (false: it was already right, or
    /// it is the project's own and was only checked).
    pub windows_written: Vec<bool>,
    /// What the replaced outputs held: removed when this is dropped, after the result is
    /// reported, so that the removal does not hold up the result.
    pub replaced: Vec<Replaced>,
    /// The layouts committed to dist branches (`--commit-branch`), instead of `images`.
    pub branches: Vec<dist::DistCommit>,
}

impl Plan {
    /// Prepares every layout in parallel (layers in anonymous files, documents in memory:
    /// nothing written), but those `reuse` reuses; the first error (in architecture order)
    /// if any failed.
    fn prepare_images(
        &self,
        created: Option<&CreatedDirs>,
        reuse: &cache::Reuse,
    ) -> Result<Vec<Option<(Target, LayoutWriter, BuiltImage)>>> {
        let items: Vec<(usize, &ArchTarget)> = self.targets.iter().enumerate().collect();
        let results = parallel_map(&items, self.at_once, |&(i, t)| {
            if reuse.hit(i).is_some() {
                return Ok(None);
            }
            let target = if let Some(c) = created {
                self.target(&t.output_rel, &t.output_origin, Some(c))?
            } else {
                match self.existing_target(&t.output_rel, &t.output_origin)? {
                    Some(target) => target,
                    None => return Ok(None),
                }
            };
            let (writer, built) = image::prepare_image(&t.spec, &target, None)?;
            Ok(Some((target, writer, built)))
        });
        results.into_iter().collect()
    }

    /// Builds everything; writes only the outputs that differ from what is on disk, all made
    /// durable at once and then swapped into place. An output that is already right is not
    /// touched.
    pub fn build(&self) -> Result<BuildReport> {
        // Parent directories made for the outputs are removed again if the build fails.
        let created = CreatedDirs::default();
        // The project's own Windows directories are checked first, and never written.
        for w in self.windows.iter().filter(|w| w.files.is_none()) {
            windows::check_listed(
                &self.root,
                &w.output_rel,
                &w.variant,
                &self.windows_output_origin,
            )?;
        }
        let written_windows: Vec<&WindowsTarget> =
            self.windows.iter().filter(|w| w.files.is_some()).collect();
        let win_targets = written_windows
            .iter()
            .map(|w| self.target(&w.output_rel, &self.windows_output_origin, Some(&created)))
            .collect::<Result<Vec<_>>>()?;
        for t in &win_targets {
            windows::check_target(t)?;
        }
        // Outputs whose record shows them unchanged are reused, not built (project::cache).
        let mut reuse = if self.cache {
            cache::Reuse::find(self)
        } else {
            cache::Reuse::none(self.targets.len())
        };
        let prepared = self.prepare_images(Some(&created), &reuse)?;
        let mut layouts = Vec::new();
        let mut to_commit = Vec::new();
        for (i, (t, p)) in self.targets.iter().zip(prepared).enumerate() {
            let Some((target, writer, mut built)) = p else {
                let built = reuse.hit(i).expect("only reused outputs are not built");
                layouts.push(ArchResult {
                    image: t.image.clone(),
                    arch: t.arch.clone(),
                    output: t.output.clone(),
                    created: t.spec.created(),
                    built: built.clone(),
                    reused: true,
                });
                continue;
            };
            reuse.built(i, writer.listing(), &built);
            let changed = writer.needs_write()?;
            if changed {
                image_write::check_target(&target)?;
                to_commit.push((writer.stage()?, target));
            }
            built.written = Some(if changed {
                Written::Replaced
            } else {
                Written::Unchanged
            });
            layouts.push(ArchResult {
                image: t.image.clone(),
                arch: t.arch.clone(),
                output: t.output.clone(),
                created: t.spec.created(),
                built,
                reused: false,
            });
        }
        let mut windows_written = Vec::new();
        for w in &self.windows {
            let Some(files) = &w.files else {
                windows_written.push(false);
                continue;
            };
            let k = written_windows
                .iter()
                .position(|x| x.variant == w.variant)
                .expect("each written directory has its target");
            let target = &win_targets[k];
            let out = windows::output(target, files);
            let changed = out.needs_write()?;
            if changed {
                to_commit.push((out.stage()?, target.clone()));
            }
            windows_written.push(changed);
        }
        let replaced = commit_all(to_commit)?;
        created.keep();
        reuse.record(self.root.path(), &self.targets, self.jobs);
        Ok(BuildReport {
            layouts,
            several: self.several,
            windows: self.windows.clone(),
            windows_written,
            replaced,
            branches: Vec::new(),
        })
    }

    /// Builds everything and compares each output, byte for byte, with what is on disk;
    /// nothing on disk changes and nothing is flushed. Only an output that differs is staged
    /// (beside it, removed at once) so that `ocipack diff` can explain the difference.
    pub fn check(&self) -> Result<Vec<OutputCheck>> {
        let mut checks = Vec::new();
        // A check never trusts a record: it builds and compares.
        let prepared = self.prepare_images(None, &cache::Reuse::none(self.targets.len()))?;
        for (t, p) in self.targets.iter().zip(prepared) {
            let (differences, explanation) = match p {
                None => (vec![Difference::whole_output_missing()], Vec::new()),
                Some((_, writer, _)) => {
                    let d = writer.differences()?;
                    // Nothing on disk to explain a difference against.
                    let explanation =
                        if d.is_empty() || d.iter().any(|x| x.is_whole_output_missing()) {
                            Vec::new()
                        } else {
                            let staged = writer.stage()?;
                            explain_layout_difference(&staged.path(), &t.output)
                        };
                    (d, explanation)
                }
            };
            checks.push(OutputCheck {
                label: t.label(self.several),
                output: t.output.clone(),
                differences,
                explanation,
            });
        }
        for w in &self.windows {
            let Some(files) = &w.files else {
                // The project's own directory: it is right when its Dockerfile is.
                windows::check_listed(
                    &self.root,
                    &w.output_rel,
                    &w.variant,
                    &self.windows_output_origin,
                )?;
                checks.push(OutputCheck {
                    label: format!("{WINDOWS_ARCH} {}", w.variant.name),
                    output: w.output.clone(),
                    differences: Vec::new(),
                    explanation: Vec::new(),
                });
                continue;
            };
            let differences =
                match self.existing_target(&w.output_rel, &self.windows_output_origin)? {
                    None => vec![Difference::whole_output_missing()],
                    Some(target) => windows::output(&target, files).differences()?,
                };
            checks.push(OutputCheck {
                label: format!("{WINDOWS_ARCH} {}", w.variant.name),
                output: w.output.clone(),
                differences,
                explanation: Vec::new(),
            });
        }
        Ok(checks)
    }

    /// Per architecture, the layer's size uncompressed, gzip and zstd (default levels,
    /// except the project's level for its own compression): the inputs are read once and
    /// encoded twice into nothing but counters and hashes. Nothing is written.
    pub fn compare_compression(&self) -> Result<Vec<CompressionSizes>> {
        let (at_once, workers) = fit_memory(&self.targets, self.jobs, true);
        let results = parallel_map(&self.targets, at_once, |t| {
            let entries = image::collect_inputs(&t.spec, &self.root)?;
            let layer = |c: Compression| -> Result<LayerInfo> {
                let mut spec = t.spec.clone();
                spec.encode.jobs = workers;
                // A measurement, never an output: the oci-import profile refuses zstd.
                spec.profile = Default::default();
                if spec.encode.compression != c {
                    spec.encode.compression = c;
                    spec.encode.level = None;
                }
                image::measure_layer(&entries, &spec)
            };
            Ok((layer(Compression::Gzip)?, layer(Compression::Zstd)?))
        });
        let mut out = Vec::new();
        for (t, r) in self.targets.iter().zip(results) {
            let (gz, zs) = r?;
            out.push(CompressionSizes {
                image: t.image.clone(),
                label: t.label(self.several),
                arch: t.arch.clone(),
                uncompressed: gz.uncompressed_size,
                gzip: gz.size,
                gzip_level: level_used(&gz, &t.spec),
                zstd: zs.size,
                zstd_level: level_used(&zs, &t.spec),
            });
        }
        Ok(out)
    }
}

/// What `build --index` made (or, checking, compared).
#[derive(Debug)]
pub struct IndexReport {
    /// The layout directory.
    pub output: PathBuf,
    /// Each architecture's image, in bashbrew's architecture order.
    pub images: Vec<ArchResult>,
    /// The image index and `index.json`'s descriptor of it.
    pub layout: IndexLayout,
    /// Whether the layout was written (false: it already held these bytes).
    pub written: bool,
    /// Checking: how the layout on disk differs from a fresh build (empty: identical).
    pub differences: Vec<Difference>,
}

impl Plan {
    /// Builds every selected Linux architecture's image in parallel (as [`Plan::build`]
    /// does, through [`image::prepare_blobs`]) and assembles one multi-platform layout for
    /// `target` from them ([`image::prepare_index_layout`]). Nothing is written.
    fn prepare_index(&self, target: &Target) -> Result<(LayoutWriter, IndexReport)> {
        let Some(first) = self.targets.first() else {
            return Err(Error::usage(
                "--index: no Linux architecture selected (Windows images are Dockerfile \
                 builds and have no layout)",
            ));
        };
        let results = parallel_map(&self.targets, self.at_once, |t| {
            // The layout is for users outside the Official Images: their oci-import rules
            // (about a single-image layout's index.json) do not apply.
            let mut spec = t.spec.clone();
            spec.profile = crate::verify::Profile::Oci;
            let (writer, built) = image::prepare_blobs(&spec, target, None)?;
            Ok(image::Part {
                arch: t.arch.clone(),
                writer,
                built,
            })
        });
        let parts: Vec<image::Part> = results.into_iter().collect::<Result<_>>()?;
        let mut images: Vec<ArchResult> = self
            .targets
            .iter()
            .zip(&parts)
            .map(|(t, p)| ArchResult {
                image: t.image.clone(),
                arch: t.arch.clone(),
                output: t.output.clone(),
                created: t.spec.created(),
                built: p.built.clone(),
                reused: false,
            })
            .collect();
        images.sort_by_key(|r| {
            crate::platform::BASHBREW_ARCHES
                .iter()
                .position(|(n, ..)| *n == r.arch)
        });
        let (writer, layout) = image::prepare_index_layout(
            LayoutWriter::new(target)?,
            parts,
            first.spec.names,
            first.spec.ref_name.as_deref(),
        )?;
        Ok((
            writer,
            IndexReport {
                output: PathBuf::new(),
                images,
                layout,
                written: false,
                differences: Vec::new(),
            },
        ))
    }

    /// `build --index OUT`: one multi-platform layout at `target`, written (staged, made
    /// durable, swapped into place) only if it differs from what `target` holds.
    pub fn build_index(&self, target: &Target) -> Result<IndexReport> {
        let (writer, mut report) = self.prepare_index(target)?;
        report.written = writer.commit()? == Written::Replaced;
        for i in &mut report.images {
            i.built.written = Some(if report.written {
                Written::Replaced
            } else {
                Written::Unchanged
            });
        }
        Ok(report)
    }

    /// `build --check --index OUT`: builds the layout and compares it with `target`;
    /// nothing on disk changes.
    pub fn check_index(&self, target: &Target) -> Result<IndexReport> {
        let (writer, mut report) = self.prepare_index(target)?;
        report.differences = writer.differences()?;
        Ok(report)
    }
}

/// The target of `build --index OUT DIR`: `out` (relative to the working directory, like
/// `ocipack image -o`), which must be neither one of the project's outputs nor inside or
/// around one (a rebuild of either would replace the other), as the filesystem sees them
/// ([`overlaps`]: also through a bind mount or a symlink).
fn index_target(project: &Project, out: &Path) -> Result<Target> {
    for rel in project.all_outputs_rel() {
        if overlaps(out, &project.dir.join(&rel))?.is_some() {
            return Err(Error::input(
                format!("--index {}", show::path(out)),
                format!(
                    "overlaps the project's output {} (each build would replace the other)",
                    show::text(&rel)
                ),
            ));
        }
    }
    Target::at_path(out)
}

/// The plan of `build --index`: one image's layouts. With `[[images]]`, `--image` must
/// name that image (once); its architectures (those `--arch` selects) make the index.
fn index_plan(project: &Project, opts: &BuildOptions) -> Result<Plan> {
    if project.declares_images() && opts.images.len() != 1 {
        let names: Vec<&str> = project.images.iter().map(|e| e.name.as_str()).collect();
        return Err(Error::usage(format!(
            "--index: {} has {} images ({}); name the one whose architectures the index \
             lists with one --image NAME",
            show::path(&project.dir.join(crate::project::PROJECT_FILE)),
            names.len(),
            names.join(", ")
        )));
    }
    Plan::new(project, opts)
}

/// `ocipack build --index OUT DIR`: see [`Plan::build_index`].
pub fn build_project_index(dir: &Path, out: &Path, opts: &BuildOptions) -> Result<IndexReport> {
    let project = Project::load(dir)?;
    let target = index_target(&project, out)?;
    let mut report = index_plan(&project, opts)?.build_index(&target)?;
    report.set_output(out);
    Ok(report)
}

/// `ocipack build --check --index OUT DIR`: see [`Plan::check_index`].
pub fn check_project_index(dir: &Path, out: &Path, opts: &BuildOptions) -> Result<IndexReport> {
    let project = Project::load(dir)?;
    let target = index_target(&project, out)?;
    let mut report = index_plan(&project, opts)?.check_index(&target)?;
    report.set_output(out);
    Ok(report)
}

impl IndexReport {
    fn set_output(&mut self, out: &Path) {
        self.output = out.to_path_buf();
        for i in &mut self.images {
            i.output = out.to_path_buf();
        }
    }
}

/// `ocipack build DIR`: builds every selected output of the project in `dir` and swaps
/// them into place; with a commit branch, the layouts are committed to their branches
/// instead ([`dist`]) and only the Windows directories are written.
pub fn build_project(dir: &Path, opts: &BuildOptions) -> Result<BuildReport> {
    let project = Project::load(dir)?;
    let mut plan = Plan::new(&project, opts)?;
    let Some(pattern) = plan.commit_branch.clone() else {
        return plan.build();
    };
    let targets = std::mem::take(&mut plan.targets);
    let (commits, reuse) = dist::prepare(
        &project,
        &pattern,
        &targets,
        plan.at_once,
        false,
        plan.cache,
    )?;
    let mut report = plan.build()?;
    dist::publish(&project.dir, &commits)?;
    reuse.record(&project.dir, &targets, plan.jobs);
    report.branches = commits;
    Ok(report)
}

/// `ocipack build --check DIR`: compares a fresh build with the disk (see [`Plan::check`]);
/// with a commit branch, each layout's tree with the one its branch's tip holds, computed
/// without writing any object ([`dist::prepare`]).
pub fn check_project(dir: &Path, opts: &BuildOptions) -> Result<Vec<OutputCheck>> {
    let project = Project::load(dir)?;
    let mut plan = Plan::new(&project, opts)?;
    let Some(pattern) = plan.commit_branch.clone() else {
        return plan.check();
    };
    let targets = std::mem::take(&mut plan.targets);
    let (commits, _) = dist::prepare(&project, &pattern, &targets, plan.at_once, true, false)?;
    let mut checks = dist_checks(&commits, plan.several);
    checks.extend(plan.check()?);
    Ok(checks)
}

/// One check per layout committed to a branch (its tree against the one the branch's tip
/// holds at its directory), and one per branch whose tip differs elsewhere (a path that is
/// none of the project's layouts, which a build would drop).
fn dist_checks(commits: &[dist::DistCommit], several: bool) -> Vec<OutputCheck> {
    let mut checks = Vec::new();
    for c in commits {
        let mut all_same = true;
        for l in &c.layouts {
            let same = l.old_tree.as_deref() == Some(l.tree.as_str());
            all_same &= same;
            let (differences, explanation) = match (&c.old, &l.old_tree) {
                _ if same => (Vec::new(), Vec::new()),
                (None, _) => (
                    vec![Difference::whole_output_missing()],
                    vec![format!("the branch {} does not exist", c.branch)],
                ),
                (Some(tip), None) => (
                    vec![Difference::whole_output_missing()],
                    vec![format!("its tip {tip} has no layout at {}", l.directory)],
                ),
                (Some(tip), Some(old)) => (
                    vec![Difference {
                        path: String::new(),
                        kind: DiffKind::DifferentBytes,
                    }],
                    vec![format!(
                        "the tree of its tip {tip} at {} is {old}, a fresh build's is {}",
                        l.directory, l.tree
                    )],
                ),
            };
            checks.push(OutputCheck {
                label: if several {
                    format!("{} {}", l.image, l.arch)
                } else {
                    l.arch.clone()
                },
                output: PathBuf::from(&c.refname),
                differences,
                explanation,
            });
        }
        if all_same && c.changed {
            checks.push(OutputCheck {
                label: c.branch.clone(),
                output: PathBuf::from(&c.refname),
                differences: vec![Difference {
                    path: String::new(),
                    kind: DiffKind::Extra,
                }],
                explanation: vec![format!(
                    "the tree of its tip {} is not the project's layouts for this branch \
                     (a fresh build's tree is {}): it holds another path, or lacks a layout \
                     the project puts there",
                    c.old.as_deref().unwrap_or("(none)"),
                    c.tree
                )],
            });
        }
    }
    checks
}

/// `ocipack build --compare-compression DIR` (see [`Plan::compare_compression`]).
pub fn compare_project_compression(
    dir: &Path,
    opts: &BuildOptions,
) -> Result<Vec<CompressionSizes>> {
    Plan::new(&Project::load(dir)?, opts)?.compare_compression()
}

fn level_used(layer: &LayerInfo, spec: &ImageSpec) -> i32 {
    let own = (spec.encode.compression == layer.compression)
        .then_some(spec.encode.level)
        .flatten();
    own.or(layer.compression.default_level()).unwrap_or(0)
}

/// Layer sizes of one layout under each compression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompressionSizes {
    /// The entry that builds it.
    pub image: String,
    /// How summaries name it: the architecture, with the image in a project with
    /// `[[images]]` (`glibc amd64`).
    pub label: String,
    /// The bashbrew architecture.
    pub arch: String,
    /// The tar's size.
    pub uncompressed: u64,
    /// The gzip layer's size.
    pub gzip: u64,
    /// The gzip level used.
    pub gzip_level: i32,
    /// The zstd layer's size.
    pub zstd: u64,
    /// The zstd level used.
    pub zstd_level: i32,
}

/// The result of checking one output.
#[derive(Debug, Clone)]
pub struct OutputCheck {
    /// `amd64` (`glibc amd64` in a project with `[[images]]`), or `windows-amd64
    /// nanoserver-ltsc2025`.
    pub label: String,
    /// The output directory.
    pub output: PathBuf,
    /// How the disk differs from a fresh build; empty if identical.
    pub differences: Vec<Difference>,
    /// Further lines explaining what the differences mean (for layouts).
    pub explanation: Vec<String>,
}

/// Explains differing layouts (which config field, which layer entry) with
/// [`crate::diff::diff_layouts`]; its lines are printed after the list of differing files.
fn explain_layout_difference(fresh: &Path, on_disk: &Path) -> Vec<String> {
    match crate::diff::diff_layouts(on_disk, fresh) {
        Ok(d) => d.iter().map(ToString::to_string).collect(),
        Err(e) => vec![format!("cannot compare: {e}")],
    }
}
