//! `ocipack library`: the Docker Official Images library file for a project, in the
//! RFC 2822 style bashbrew parses.
//!
//! A header block (`Maintainers`, `GitRepo`, `GitCommit`: the newest commit touching any
//! output), then one entry for the Linux layouts (`Builder: oci-import`, one
//! `<arch>-Directory` per architecture that has a layout on disk) and one entry per Windows
//! variant that has a Dockerfile on disk. Directories are relative to the repository root.

use crate::error::{Error, Result};
use crate::project::git::Git;
use crate::project::{PROJECT_FILE, Project, WINDOWS_ARCH};
use crate::store::root::EntryType;

/// `ocipack library DIR`: the library file of the project in `dir`.
pub fn library(dir: &std::path::Path) -> Result<String> {
    library_file(&Project::load(dir)?)
}

/// The library file text for `project`. Errors outside a git work tree, without a
/// `[library]` table, without any built output, and when the outputs have uncommitted
/// changes or a shallow clone cannot name their last commit.
pub fn library_file(project: &Project) -> Result<String> {
    let file = project.dir.join(PROJECT_FILE);
    let lib = project.library.as_ref().ok_or_else(|| {
        Error::input(
            crate::show::path(&file),
            "has no [library] table (maintainers, git-repo, tags)",
        )
    })?;
    let git = Git::open(&project.dir)?;
    let root = project.root()?;
    let is_file = |rel: String| matches!(root.entry_type(&rel), Ok(Some(EntryType::File)));

    let arches: Vec<&String> = project
        .architectures
        .iter()
        .filter(|a| is_file(format!("{}/oci-layout", project.output_rel(a))))
        .collect();
    let variants: Vec<(String, String)> = project
        .windows
        .iter()
        .flat_map(|w| &w.variants)
        .filter_map(|v| {
            let rel = project.windows_output_rel(&v.name)?;
            is_file(format!("{rel}/{}", crate::project::windows::DOCKERFILE))
                .then(|| (v.name.clone(), rel))
        })
        .collect();
    let mut outputs: Vec<String> = arches.iter().map(|a| project.output_rel(a)).collect();
    outputs.extend(variants.iter().map(|(_, rel)| rel.clone()));
    if outputs.is_empty() {
        return Err(Error::input(
            crate::show::path(&file),
            "no output has been built yet; run `ocipack build` and commit the result",
        ));
    }
    let commit = git.last_change("the outputs", &outputs)?;
    let dir_of = |rel: &str| format!("{}{rel}", git.prefix());

    let mut t = String::new();
    t.push_str(&format!(
        "# {}: written by `ocipack library` from {}{PROJECT_FILE}\n\n",
        project.name,
        git.prefix()
    ));
    t.push_str(&format!(
        "Maintainers: {}\n",
        lib.maintainers
            .join(&format!(",\n{}", " ".repeat("Maintainers: ".len())))
    ));
    t.push_str(&format!("GitRepo: {}\n", lib.git_repo));
    t.push_str(&format!("GitCommit: {}\n", commit.id));

    if !arches.is_empty() {
        t.push_str(&format!("\nTags: {}\n", lib.tags.join(", ")));
        if !lib.shared_tags.is_empty() {
            t.push_str(&format!("SharedTags: {}\n", lib.shared_tags.join(", ")));
        }
        let names: Vec<&str> = arches.iter().map(|a| a.as_str()).collect();
        t.push_str(&format!("Architectures: {}\n", names.join(", ")));
        t.push_str("Builder: oci-import\n");
        let file = project
            .image
            .descriptor_file
            .as_ref()
            .map(|d| d.value.as_str())
            .unwrap_or("index.json");
        t.push_str(&format!("File: {file}\n"));
        for a in &arches {
            t.push_str(&format!(
                "{a}-Directory: {}\n",
                dir_of(&project.output_rel(a))
            ));
        }
    }
    for (name, rel) in &variants {
        t.push_str(&format!("\nTags: {name}\n"));
        if !lib.windows_shared_tags.is_empty() {
            t.push_str(&format!(
                "SharedTags: {}\n",
                lib.windows_shared_tags.join(", ")
            ));
        }
        t.push_str(&format!("Architectures: {WINDOWS_ARCH}\n"));
        t.push_str(&format!("{WINDOWS_ARCH}-Directory: {}\n", dir_of(rel)));
        t.push_str(&format!("Constraints: {name}\n"));
    }
    Ok(t)
}
