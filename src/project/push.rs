//! `ocipack push DIR REFERENCE`: a project's layouts as one multi-platform image.
//!
//! Every selected Linux architecture's layout (as `ocipack build` wrote it, at its
//! `output` beneath the project directory, reached without following any symlink) is
//! opened and verified whole by [`crate::verify::open`], as `ocipack verify` does
//! (documents, every blob, every layer), its platform against the architecture's (a layout
//! copied into another architecture's directory is refused); it must hold a single image.
//! Nothing is sent before every layout has passed. Then [`crate::registry::push_index`]
//! pushes each image and, last, the image index [`crate::image::index::platform_index`]
//! makes of them: the same index `ocipack build --index` stores.
//!
//! Layouts are pushed as they are on disk, as any pusher would: proving them current is
//! `ocipack build --check`'s job (a rebuild needs every input, and for `created = "git"`
//! the history).

use std::path::Path;

use crate::error::{Error, Result};
use crate::image::Image;
use crate::platform::{BASHBREW_ARCHES, Platform};
use crate::registry::{IndexPushReport, PushOptions, Reference, push_index};
use crate::show;
use crate::store::root::OpenError;
use crate::verify::{self, Options, Source, Valid};

use super::{PROJECT_FILE, Project};

/// One architecture's image, read from its layout.
#[derive(Debug, Clone)]
pub struct ArchImage {
    /// The bashbrew architecture.
    pub arch: String,
    /// The layout directory, relative to the project directory.
    pub output_rel: String,
    /// The image.
    pub image: Image,
}

/// The images of the architectures `arches` selects (all Linux ones when empty), in
/// bashbrew's architecture order, read from their layouts. A missing layout is an error
/// listing every missing one.
pub fn read_images(project: &Project, arches: &[String]) -> Result<Vec<ArchImage>> {
    let file = project.dir.join(PROJECT_FILE);
    let entry = project.single_entry("ocipack push")?;
    project.check_arches(arches, false)?;
    let mut selected: Vec<&String> = project
        .architectures
        .iter()
        .filter(|a| arches.is_empty() || arches.contains(a))
        .collect();
    selected.sort_by_key(|a| BASHBREW_ARCHES.iter().position(|(n, ..)| n == a));

    let root = project.root()?;
    let mut images = Vec::new();
    let mut missing = Vec::new();
    for arch in selected {
        let rel = project.output_rel(entry, arch).unwrap_or_default();
        let what = || format!("{}: output {}", show::path(&file), show::text(&rel));
        let dir = match root.subdir(&rel, false) {
            Ok(dir) => dir,
            Err(OpenError::NotFound) => {
                missing.push(format!("{arch} ({})", show::text(&rel)));
                continue;
            }
            Err(e) => return Err(Error::input(what(), e.to_string())),
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
                    format!("layout {}", show::path(&project.dir.join(&rel))),
                    format!(
                        "is a multi-platform layout (an image index of {} manifests), not \
                         the single image of {arch}",
                        p.images.len()
                    ),
                ));
            }
        };
        images.push(ArchImage {
            arch: arch.clone(),
            output_rel: rel,
            image,
        });
    }
    if !missing.is_empty() {
        let on_branches = project
            .library
            .as_ref()
            .is_some_and(|l| l.commit_branch.is_some());
        return Err(Error::input(
            show::path(&project.dir),
            format!(
                "no layout for {} of the project's architectures: {}; {}, or push only \
                 those that exist with --arch",
                missing.len(),
                missing.join(", "),
                if on_branches {
                    "this project commits its layouts to dist branches ([library] \
                     commit-branch), not to the work tree: push from a checkout that \
                     holds them"
                } else {
                    "`ocipack build` writes them"
                }
            ),
        ));
    }
    Ok(images)
}

/// `ocipack push DIR REFERENCE [--arch A]...`: every selected architecture's image, then
/// one image index listing them under the reference's tag (see the module documentation).
pub fn push_project(
    dir: &Path,
    arches: &[String],
    reference: &Reference,
    opts: &PushOptions,
) -> Result<IndexPushReport> {
    let project = Project::load(dir)?;
    let read = read_images(&project, arches)?;
    let images: Vec<Image> = read.into_iter().map(|a| a.image).collect();
    let refs: Vec<&Image> = images.iter().collect();
    let index = crate::image::index::platform_index(&refs)?;
    push_index(&index, crate::media::INDEX, &images, reference, opts)
}
