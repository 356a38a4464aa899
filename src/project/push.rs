//! `ocipack push DIR REPOSITORY`: a project's entries as image indexes, each under its tags.
//!
//! Two forms, told apart by the reference:
//! - **`REPOSITORY`** (no tag, no digest): every selected entry (`--image`, default all) is
//!   pushed as one image index of its architectures (those `--arch` selects) under each of
//!   its `tags`, and each shared tag as one index of the union of the entries listing it
//!   (for an architecture several of them have, the first entry in file order wins). Only
//!   Linux layouts are pushed: Windows entries are Dockerfile builds. A shared tag listed
//!   by an entry `--image` did not select is skipped and reported, never pushed with part
//!   of its images. A project without any tag (no `[[images]]`, no `[library] tags`) is
//!   pushed as one index under `latest`, as before entries existed.
//! - **`REPOSITORY:TAG`** (or `@DIGEST`): one entry — the project's only one, or the one
//!   `--image` names — as one index under that tag and each `--also-tag`.
//!
//! Every layout used (each once, however many entries list it: a `from` entry's are its
//! sources') is read from the work tree at its `output` (reached without following any
//! symlink) — or, when the project has a commit branch (`--commit-branch`, else `[library]
//! commit-branch`), from the tip of the branch `build` commits it to, at the same
//! directory there, copied out of git into a staging directory inside the git directory
//! ([`BranchLayouts`]; the work tree is then not read at all: a layout left there is not
//! the one published) — opened and verified whole by [`crate::verify::open`], as `ocipack
//! verify` does (documents, every blob, every layer), its platform against the architecture's (a
//! layout copied into another architecture's directory is refused); it must hold a single
//! image. Nothing is sent before every layout has passed. Then the registry layer pushes
//! every image (blobs, then its manifest by digest) and only then the indexes under their
//! tags ([`crate::registry::push_indexes`]): children first, tags last. Each index is the
//! one [`crate::image::index::platform_index`] makes (the one `ocipack build --index`
//! stores).
//!
//! Layouts are pushed as they are on disk, as any pusher would: proving them current is
//! `ocipack build --check`'s job (a rebuild needs every input, and for `created = "git"`
//! the history).

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::image::{Doc, Image};
use crate::platform::{BASHBREW_ARCHES, Platform};
use crate::registry::{
    IndexPushReport, IndexesPushReport, PushOptions, Reference, TaggedIndex, push_index,
    push_indexes,
};
use crate::show;
use crate::spec::Index;
use crate::store::root::OpenError;
use crate::verify::{self, Options, Source, Valid};

use super::dist::{BranchLayouts, OnBranch};
use super::{ImageEntry, PROJECT_FILE, Project};

/// One layout's image, read from the work tree.
#[derive(Debug, Clone)]
pub struct ArchImage {
    /// The entry that builds it.
    pub entry: String,
    /// The bashbrew architecture.
    pub arch: String,
    /// The layout directory, relative to the project directory.
    pub output_rel: String,
    /// The image.
    pub image: Image,
}

/// What to push of a project.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// `--image`: these entries only (empty: every entry).
    pub images: Vec<String>,
    /// `--arch`: these architectures only (empty: every Linux one).
    pub arches: Vec<String>,
    /// `--commit-branch`: read the layouts from the branches this pattern names
    /// (`dist-{arch}`); default `[library] commit-branch`; neither: from the work tree.
    pub commit_branch: Option<String>,
}

/// One image index a project push sends.
#[derive(Debug, Clone)]
pub struct PlannedIndex {
    /// The tags it goes under, in order.
    pub tags: Vec<String>,
    /// The entries whose tags these are (for a shared tag: every entry listing it).
    pub entries: Vec<String>,
    /// Its images: indexes into [`ProjectPush::layouts`], in bashbrew's order.
    pub layouts: Vec<usize>,
    /// The index.
    pub index: Doc<Index>,
}

/// A shared tag not pushed, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    /// The tag.
    pub tag: String,
    /// Why it was not pushed.
    pub reason: String,
}

/// Everything a push of a project's entries sends, read and verified, before anything is.
#[derive(Debug)]
pub struct ProjectPush {
    /// Each layout used, once, in the project's layout order.
    pub layouts: Vec<ArchImage>,
    /// The indexes, in push order: each selected entry's (file order), then the shared
    /// tags'; indexes with the same bytes are one, with the tags of both.
    pub indexes: Vec<PlannedIndex>,
    /// Shared tags left out because `--image` did not select every entry listing them.
    pub skipped: Vec<Skipped>,
    /// The copies of layouts read from dist branches: kept until the push ends.
    pub staged: Option<BranchLayouts>,
}

/// What `ocipack push DIR REPOSITORY[:TAG]` did.
#[derive(Debug, Clone)]
pub enum ProjectPushed {
    /// `REPOSITORY:TAG`, or a project without tags: one index.
    One(IndexPushReport),
    /// `REPOSITORY`: every selected entry under its tags.
    Entries {
        /// What the registry layer did.
        report: IndexesPushReport,
        /// Shared tags left out.
        skipped: Vec<Skipped>,
        /// Per pushed index (same order as `report.indexes`), the entries it stands for.
        entries: Vec<Vec<String>>,
    },
}

/// The selected entries, in file order; an unknown `--image` is a usage error.
fn selected_entries<'a>(project: &'a Project, sel: &Selection) -> Result<Vec<&'a ImageEntry>> {
    project.check_images(&sel.images)?;
    project.check_arches(&sel.arches, false)?;
    Ok(project
        .images
        .iter()
        .filter(|e| sel.images.is_empty() || sel.images.contains(&e.name))
        .collect())
}

/// `entry`'s architectures `arches` selects (all when empty), in bashbrew's order.
fn entry_arches<'a>(entry: &'a ImageEntry, arches: &[String]) -> Vec<&'a str> {
    let mut out: Vec<&str> = entry
        .architectures
        .iter()
        .filter(|a| arches.is_empty() || arches.contains(a))
        .map(String::as_str)
        .collect();
    out.sort_by_key(|a| BASHBREW_ARCHES.iter().position(|(n, ..)| n == a));
    out
}

/// The layouts read, and where they were copied to when they came from dist branches:
/// their images read their blobs from there, so it lives as long as they are pushed.
#[derive(Debug)]
pub struct ReadLayouts {
    /// Each layout's image, in the order asked for.
    pub images: Vec<ArchImage>,
    /// The copies of the layouts read from dist branches (removed when dropped).
    pub staged: Option<BranchLayouts>,
}

/// The commit branch pattern push reads layouts from: `--commit-branch`, else `[library]
/// commit-branch`; `None`: the work tree.
fn commit_branch(project: &Project, sel: &Selection) -> Option<String> {
    sel.commit_branch.clone().or_else(|| {
        project
            .library
            .as_ref()
            .and_then(|l| l.commit_branch.clone())
    })
}

/// Reads and verifies the layouts `wanted` names, as (building entry, arch), each once, in
/// the order given: from the work tree, or with a commit branch `pattern` from the tips of
/// their branches ([`BranchLayouts`]); a missing layout is an error listing every missing
/// one.
pub fn read_layouts(
    project: &Project,
    wanted: &[(String, String)],
    pattern: Option<&str>,
) -> Result<ReadLayouts> {
    let file = project.dir.join(PROJECT_FILE);
    let root = project.root()?;
    let mut branches = pattern
        .map(|p| BranchLayouts::open(project, p))
        .transpose()?;
    let several = project.declares_images();
    let mut images = Vec::new();
    let mut missing = Vec::new();
    for (name, arch) in wanted {
        let entry = project
            .entry(name)
            .ok_or_else(|| Error::internal(format!("no image {name}")))?;
        let rel = project.output_rel(entry, arch).unwrap_or_default();
        let label = if several {
            format!("{name} {arch}")
        } else {
            arch.clone()
        };
        let (dir, shown) = match &mut branches {
            Some(b) => match b.layout(project, entry, arch, &rel)? {
                OnBranch::Layout(dir) => {
                    let shown = show::path(dir.path());
                    (dir, shown)
                }
                OnBranch::Missing(why) => {
                    missing.push(format!("{label} ({why})"));
                    continue;
                }
            },
            None => match root.subdir(&rel, false) {
                Ok(dir) => (dir, show::path(&project.dir.join(&rel))),
                Err(OpenError::NotFound) => {
                    missing.push(format!("{label} ({})", show::text(&rel)));
                    continue;
                }
                Err(e) => {
                    return Err(Error::input(
                        format!("{}: output {}", show::path(&file), show::text(&rel)),
                        e.to_string(),
                    ));
                }
            },
        };
        let expect = (
            Platform::from_bashbrew_arch(arch)?,
            format!("the architecture {arch} of {}", show::path(&file)),
        );
        let opts = Options {
            expect: Some(expect),
            ..Options::default()
        };
        let image = match verify::open(&Source::LayoutAt(dir), &opts)?.valid()? {
            Valid::Image(c) => c.image,
            Valid::Index(p) => {
                return Err(Error::input(
                    format!("layout {shown}"),
                    format!(
                        "is a multi-platform layout (an image index of {} manifests), not \
                         the single image of {label}",
                        p.images.len()
                    ),
                ));
            }
        };
        images.push(ArchImage {
            entry: name.clone(),
            arch: arch.clone(),
            output_rel: rel,
            image,
        });
    }
    if !missing.is_empty() {
        return Err(Error::input(
            show::path(&project.dir),
            format!(
                "no layout for {} of the project's {}: {}; {}, or push only those that exist \
                 with --arch{}",
                missing.len(),
                if several { "layouts" } else { "architectures" },
                missing.join(", "),
                if branches.is_some() {
                    "`ocipack build` commits them to their branches"
                } else {
                    "`ocipack build` writes them"
                },
                if several { " or --image" } else { "" }
            ),
        ));
    }
    Ok(ReadLayouts {
        images,
        staged: branches,
    })
}

/// The layouts (building entry, arch) the (entry, arches) pairs use, each once, in the
/// order met.
fn layouts_used(uses: &[(&ImageEntry, Vec<&str>)]) -> Vec<(String, String)> {
    let mut wanted: Vec<(String, String)> = Vec::new();
    for (e, arches) in uses {
        for a in arches {
            let source = e.source(a).expect("an entry has each of its architectures");
            let key = (source.to_string(), a.to_string());
            if !wanted.contains(&key) {
                wanted.push(key);
            }
        }
    }
    wanted
}

/// The index of `layouts` (indexes into `read`), checked.
fn index_of(read: &[ArchImage], layouts: &[usize]) -> Result<Doc<Index>> {
    let refs: Vec<&Image> = layouts.iter().map(|&i| &read[i].image).collect();
    crate::image::index::platform_index(&refs)
}

/// Plans a push of the selected entries under their own tags (see the module
/// documentation): reads and verifies every layout used; nothing is sent.
pub fn plan_entries(project: &Project, sel: &Selection) -> Result<ProjectPush> {
    let chosen = selected_entries(project, sel)?;
    // Per selected entry, its selected architectures; an entry --image names must have one.
    let mut uses: Vec<(&ImageEntry, Vec<&str>)> = Vec::new();
    for e in &chosen {
        let arches = entry_arches(e, &sel.arches);
        if arches.is_empty() {
            if sel.images.contains(&e.name) {
                return Err(Error::usage(format!(
                    "--image {} --arch {}: image {} has none of these architectures (its \
                     architectures: {})",
                    e.name,
                    sel.arches.join(" --arch "),
                    e.name,
                    e.architectures.join(", ")
                )));
            }
            continue;
        }
        uses.push((e, arches));
    }
    if uses.is_empty() {
        return Err(Error::usage(format!(
            "--arch {}: no selected image has these architectures",
            sel.arches.join(" --arch ")
        )));
    }

    // Shared tags, in order of first appearance; each with every entry (of the whole
    // project, in file order) listing it.
    let mut shared: Vec<(String, Vec<&ImageEntry>)> = Vec::new();
    for e in &project.images {
        for t in &e.shared_tags {
            match shared.iter_mut().find(|(s, _)| s == t) {
                Some((_, list)) => list.push(e),
                None => shared.push((t.clone(), vec![e])),
            }
        }
    }
    let mut skipped = Vec::new();
    let mut shared_uses: Vec<(String, Vec<&ImageEntry>)> = Vec::new();
    for (tag, listing) in shared {
        if !listing
            .iter()
            .any(|e| uses.iter().any(|(u, _)| u.name == e.name))
        {
            continue;
        }
        let unselected: Vec<&str> = listing
            .iter()
            .filter(|e| !chosen.iter().any(|c| c.name == e.name))
            .map(|e| e.name.as_str())
            .collect();
        if !unselected.is_empty() {
            skipped.push(Skipped {
                tag: tag.clone(),
                reason: format!(
                    "also listed by {} {}, not selected (push every image listing a shared \
                     tag to push it)",
                    if unselected.len() == 1 {
                        "image"
                    } else {
                        "images"
                    },
                    unselected.join(", ")
                ),
            });
            continue;
        }
        shared_uses.push((tag, listing));
    }

    let wanted = layouts_used(&uses);
    let ReadLayouts {
        images: read,
        staged,
    } = read_layouts(project, &wanted, commit_branch(project, sel).as_deref())?;
    let position = |e: &ImageEntry, a: &str| -> usize {
        let source = e.source(a).expect("an entry has each of its architectures");
        read.iter()
            .position(|r| r.entry == source && r.arch == a)
            .expect("every layout used was read")
    };

    let mut indexes: Vec<PlannedIndex> = Vec::new();
    let mut add = |tags: &[String], entries: Vec<String>, layouts: Vec<usize>| -> Result<()> {
        let index = index_of(&read, &layouts)?;
        if let Some(same) = indexes.iter_mut().find(|p| p.index.bytes == index.bytes) {
            same.tags.extend(tags.iter().cloned());
            for e in entries {
                if !same.entries.contains(&e) {
                    same.entries.push(e);
                }
            }
            return Ok(());
        }
        indexes.push(PlannedIndex {
            tags: tags.to_vec(),
            entries,
            layouts,
            index,
        });
        Ok(())
    };
    for (e, arches) in &uses {
        if e.tags.is_empty() {
            continue;
        }
        let layouts = arches.iter().map(|a| position(e, a)).collect();
        add(&e.tags, vec![e.name.clone()], layouts)?;
    }
    for (tag, listing) in &shared_uses {
        // The union: per architecture, the first entry in file order that has it.
        let mut by_arch: BTreeMap<usize, usize> = BTreeMap::new();
        for e in listing {
            for a in entry_arches(e, &sel.arches) {
                let rank = BASHBREW_ARCHES
                    .iter()
                    .position(|(n, ..)| *n == a)
                    .unwrap_or(usize::MAX);
                by_arch.entry(rank).or_insert_with(|| position(e, a));
            }
        }
        if by_arch.is_empty() {
            continue;
        }
        let names = listing.iter().map(|e| e.name.clone()).collect();
        add(
            std::slice::from_ref(tag),
            names,
            by_arch.into_values().collect(),
        )?;
    }
    Ok(ProjectPush {
        layouts: read,
        indexes,
        skipped,
        staged,
    })
}

/// True when the project names no tag at all (no `[[images]]`, no `[library] tags` or
/// `shared-tags`): it is pushed as one index under the reference's tag (`latest`).
fn untagged(project: &Project) -> bool {
    project
        .images
        .iter()
        .all(|e| e.tags.is_empty() && e.shared_tags.is_empty())
}

/// `ocipack push DIR REFERENCE`: see the module documentation. `tag_written`: the
/// reference text names a tag or a digest ([`crate::registry::reference::names_tag_or_digest`]).
pub fn push_project(
    dir: &Path,
    sel: &Selection,
    reference: &Reference,
    tag_written: bool,
    opts: &PushOptions,
) -> Result<ProjectPushed> {
    let project = Project::load(dir)?;
    if tag_written || untagged(&project) {
        return push_one(&project, sel, reference, opts).map(ProjectPushed::One);
    }
    if !opts.also_tags.is_empty() {
        return Err(Error::usage(format!(
            "--also-tag adds tags to the one image index of REPOSITORY:TAG; {} is pushed \
             under the tags of {} (give REPOSITORY:TAG to push one image under tags of your \
             own)",
            reference.name(),
            show::path(&project.dir.join(PROJECT_FILE))
        )));
    }
    let planned = plan_entries(&project, sel)?;
    let images: Vec<Image> = planned.layouts.iter().map(|l| l.image.clone()).collect();
    let tagged: Vec<TaggedIndex> = planned
        .indexes
        .iter()
        .map(|p| TaggedIndex {
            index: p.index.clone(),
            media_type: crate::media::INDEX.to_string(),
            tags: p.tags.clone(),
        })
        .collect();
    let repository = Reference {
        tag: None,
        digest: None,
        ..reference.clone()
    };
    let report = push_indexes(&tagged, &images, &repository, opts);
    // The copies read from branches go only now, after their blobs were sent.
    drop(planned.staged);
    let report = report?;
    Ok(ProjectPushed::Entries {
        report,
        skipped: planned.skipped,
        entries: planned.indexes.into_iter().map(|p| p.entries).collect(),
    })
}

/// `ocipack push DIR REPOSITORY:TAG`: one entry's selected architectures as one index
/// under the reference's tag.
fn push_one(
    project: &Project,
    sel: &Selection,
    reference: &Reference,
    opts: &PushOptions,
) -> Result<IndexPushReport> {
    let chosen = selected_entries(project, sel)?;
    let entry = match chosen.as_slice() {
        [e] => *e,
        _ => {
            let names: Vec<&str> = project.images.iter().map(|e| e.name.as_str()).collect();
            return Err(Error::usage(format!(
                "{} has {} images ({}): name the one to push as {reference} with one --image \
                 NAME, or give the repository without a tag to push every image under its \
                 own tags",
                show::path(&project.dir.join(PROJECT_FILE)),
                names.len(),
                names.join(", ")
            )));
        }
    };
    let arches = entry_arches(entry, &sel.arches);
    if arches.is_empty() {
        return Err(Error::usage(format!(
            "--arch {}: image {} has none of these architectures (its architectures: {})",
            sel.arches.join(" --arch "),
            entry.name,
            entry.architectures.join(", ")
        )));
    }
    let wanted = layouts_used(&[(entry, arches)]);
    let read = read_layouts(project, &wanted, commit_branch(project, sel).as_deref())?;
    let images: Vec<Image> = read.images.iter().map(|a| a.image.clone()).collect();
    let refs: Vec<&Image> = images.iter().collect();
    let index = crate::image::index::platform_index(&refs)?;
    let pushed = push_index(&index, crate::media::INDEX, &images, reference, opts);
    // The copies read from branches go only now, after their blobs were sent.
    drop(read);
    pushed
}
