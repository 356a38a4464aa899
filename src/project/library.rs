//! `ocipack library`: the Docker Official Images library file for a project, in the
//! RFC 2822 style bashbrew parses.
//!
//! A header block (`Maintainers`, `GitRepo`, `GitFetch`, `GitCommit`), then one entry for
//! the Linux layouts (`Builder: oci-import`, per architecture that has a layout its
//! `<arch>-Directory`) and one entry per Windows variant that has a Dockerfile on disk.
//! Directories are relative to the repository root.
//!
//! Which commit each output is in:
//! - `GitFetch:` is `[library] git-fetch`, else the branch `HEAD` is on (bashbrew's default,
//!   `refs/heads/master`, is wrong for a repository on `main`); a detached `HEAD` without
//!   the setting is an error, never a guess.
//! - In the work tree (the default), each architecture's commit is the newest commit that
//!   touched its output directory, as docker-library/hello-world's generate script computes
//!   it: the header's `GitCommit:` is the newest of all outputs, an entry whose outputs all
//!   agree on another commit says so once, and otherwise every architecture gets its own
//!   `<arch>-GitCommit:`. An output that is uncommitted, ignored by git or differs from
//!   `HEAD` (work tree or index) is refused (exit 1, naming the paths): no commit would
//!   contain what is on disk. `--allow-dirty` names the newest commit anyway.
//! - On dist branches (`[library] commit-branch` or `--commit-branch`), each architecture's
//!   commit is the tip of its branch, named with `<arch>-GitFetch:` and `<arch>-GitCommit:`
//!   as busybox's generate script does; only Windows outputs are read from the work tree.
//! - With `[library] git-fetch` set, the `GitCommit:` ids taken from the work tree's history
//!   need not be on that ref: each one not reachable from it here is a warning (bashbrew
//!   fetches GitFetch and would not find the commit), and so is a ref this repository does
//!   not have (nothing could be checked). Warnings, not errors: the local ref may lag the
//!   remote one. A shallow clone is not checked (its history is cut off).

use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::project::git::{Commit, Git};
use crate::project::{PROJECT_FILE, Project, WINDOWS_ARCH, dist};
use crate::show;
use crate::store::root::EntryType;

/// What `ocipack library` is asked for besides the project.
#[derive(Debug, Clone, Default)]
pub struct LibraryOptions {
    /// Name the newest commits even when outputs have uncommitted changes.
    pub allow_dirty: bool,
    /// The dist branch template (default: `[library] commit-branch`).
    pub commit_branch: Option<String>,
}

/// The library file's text, and warnings for stderr.
#[derive(Debug, Clone)]
pub struct LibraryFile {
    /// The text.
    pub text: String,
    /// What `--allow-dirty` let through.
    pub warnings: Vec<String>,
}

/// `ocipack library DIR`: the library file of the project in `dir`.
pub fn library(dir: &std::path::Path, opts: &LibraryOptions) -> Result<LibraryFile> {
    library_file(&Project::load(dir)?, opts)
}

/// Where one architecture's layout is: its commit, and its own `GitFetch` on a dist branch.
struct ArchSource {
    arch: String,
    directory: String,
    fetch: Option<String>,
    commit: String,
}

/// The library file for `project` (see the module documentation for every rule).
pub fn library_file(project: &Project, opts: &LibraryOptions) -> Result<LibraryFile> {
    let file = project.dir.join(PROJECT_FILE);
    let lib = project.library.as_ref().ok_or_else(|| {
        Error::input(
            show::path(&file),
            "has no [library] table (maintainers, git-repo, tags)",
        )
    })?;
    let entry = project.single_entry("ocipack library")?;
    let rel_of = |a: &str| project.output_rel(entry, a).unwrap_or_default();
    let git = Git::open(&project.dir)?;
    let git_fetch = match &lib.git_fetch {
        Some(f) => f.clone(),
        None => git.current_branch()?.ok_or_else(|| {
            Error::input(
                show::path(&project.dir),
                "HEAD is detached, so there is no branch to name in GitFetch: (bashbrew \
                 would assume refs/heads/master); check out the branch the library file \
                 points to, or set [library] git-fetch = \"refs/heads/<branch>\"",
            )
        })?,
    };
    let pattern = opts
        .commit_branch
        .clone()
        .or_else(|| lib.commit_branch.clone());
    let root = project.root()?;
    let is_file = |rel: String| matches!(root.entry_type(&rel), Ok(Some(EntryType::File)));
    let dir_of = |rel: &str| format!("{}{rel}", git.prefix());

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
    let tree_arches: Vec<String> = match &pattern {
        Some(_) => Vec::new(),
        None => project
            .architectures
            .iter()
            .filter(|a| is_file(format!("{}/oci-layout", rel_of(a))))
            .cloned()
            .collect(),
    };
    let mut in_tree: Vec<String> = tree_arches.iter().map(|a| rel_of(a)).collect();
    in_tree.extend(variants.iter().map(|(_, rel)| rel.clone()));

    let mut warnings = Vec::new();
    let dirty = if in_tree.is_empty() {
        Vec::new()
    } else {
        git.status(&in_tree, true)?
    };
    if !dirty.is_empty() {
        let shown: Vec<String> = dirty.iter().map(|l| show::text(l)).collect();
        let what = format!(
            "outputs with uncommitted changes, ignored files or differences from HEAD, so \
             no GitCommit contains what is on disk (git status: {})",
            shown.join("; ")
        );
        if !opts.allow_dirty {
            return Err(Error::CheckFailed(format!(
                "{what}; commit them (or pass --allow-dirty to name the newest commits anyway)"
            )));
        }
        warnings.push(format!("--allow-dirty: {what}"));
    }

    let commit_of = |what: String, rel: &str| -> Result<Commit> {
        git.last_commit(&what, std::slice::from_ref(&rel.to_string()))
    };
    let mut sources: Vec<ArchSource> = Vec::new();
    match &pattern {
        Some(p) => {
            let tips = dist::library_tips(&project.dir, p, &project.architectures, |a| {
                dir_of(&rel_of(a))
            })?;
            let mut missing = Vec::new();
            for a in &project.architectures {
                if let Some((refname, tip)) = tips.get(a) {
                    sources.push(ArchSource {
                        arch: a.clone(),
                        directory: dir_of(&rel_of(a)),
                        fetch: Some(refname.clone()),
                        commit: tip.clone(),
                    });
                } else {
                    missing.push(a.as_str());
                }
            }
            // Left out, not silently: an architecture without its branch is not offered.
            if !missing.is_empty() {
                warnings.push(format!(
                    "no branch {} holds a layout for {}, so the library file leaves {} out; \
                     run `ocipack build --commit-branch '{}'`",
                    show::text(p),
                    missing.join(", "),
                    if missing.len() == 1 { "it" } else { "them" },
                    show::text(p)
                ));
            }
        }
        None => {
            for a in &tree_arches {
                let rel = rel_of(a);
                sources.push(ArchSource {
                    arch: a.clone(),
                    directory: dir_of(&rel),
                    fetch: None,
                    commit: commit_of(format!("the output of {a} ({rel})"), &rel)?.id,
                });
            }
        }
    }
    let mut windows: Vec<(String, String, String)> = Vec::new();
    for (name, rel) in &variants {
        let c = commit_of(format!("the output of {name} ({rel})"), rel)?;
        windows.push((name.clone(), rel.clone(), c.id));
    }
    if sources.is_empty() && windows.is_empty() {
        let how = match &pattern {
            Some(p) => format!(
                "no branch {} holds a layout yet; run `ocipack build --commit-branch '{p}'`",
                show::text(p)
            ),
            None => "no output has been built yet; run `ocipack build` and commit the result"
                .to_string(),
        };
        return Err(Error::input(show::path(&file), how));
    }
    // The header's commit: the newest of the outputs in this branch's history (in the
    // work tree), else HEAD itself (every output is on a dist branch).
    let header = if in_tree.is_empty() {
        // Only HEAD's id is needed, which a shallow clone has: no history is read.
        git.head()?
    } else {
        git.last_commit("the outputs", &in_tree)?.id
    };

    if lib.git_fetch.is_some() {
        let mut named: Vec<(String, &str)> = vec![("GitCommit".to_string(), header.as_str())];
        named.extend(
            sources
                .iter()
                .filter(|s| s.fetch.is_none())
                .map(|s| (format!("{}-GitCommit", s.arch), s.commit.as_str())),
        );
        named.extend(
            windows
                .iter()
                .map(|(n, _, c)| (format!("the GitCommit of {n}"), c.as_str())),
        );
        warnings.extend(unreachable(&git, &git_fetch, &named)?);
    }

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
    t.push_str(&format!("GitFetch: {git_fetch}\n"));
    t.push_str(&format!("GitCommit: {header}\n"));

    if !sources.is_empty() {
        t.push_str(&format!("\nTags: {}\n", entry.tags.join(", ")));
        if !entry.shared_tags.is_empty() {
            t.push_str(&format!("SharedTags: {}\n", entry.shared_tags.join(", ")));
        }
        let names: Vec<&str> = sources.iter().map(|s| s.arch.as_str()).collect();
        t.push_str(&format!("Architectures: {}\n", names.join(", ")));
        let distinct: BTreeMap<&str, ()> =
            sources.iter().map(|s| (s.commit.as_str(), ())).collect();
        let agreed = (pattern.is_none() && distinct.len() == 1).then(|| sources[0].commit.clone());
        if let Some(c) = agreed.as_ref().filter(|c| **c != header) {
            t.push_str(&format!("GitCommit: {c}\n"));
        }
        t.push_str("Builder: oci-import\n");
        let file = entry
            .build()
            .and_then(|b| b.settings.descriptor_file.as_ref())
            .map(|d| d.value.as_str())
            .unwrap_or("index.json");
        t.push_str(&format!("File: {file}\n"));
        for s in &sources {
            if let Some(f) = &s.fetch {
                t.push_str(&format!("{}-GitFetch: {f}\n", s.arch));
            }
            if agreed.is_none() {
                t.push_str(&format!("{}-GitCommit: {}\n", s.arch, s.commit));
            }
            t.push_str(&format!("{}-Directory: {}\n", s.arch, s.directory));
        }
    }
    for (name, rel, commit) in &windows {
        t.push_str(&format!("\nTags: {name}\n"));
        if !lib.windows_shared_tags.is_empty() {
            t.push_str(&format!(
                "SharedTags: {}\n",
                lib.windows_shared_tags.join(", ")
            ));
        }
        t.push_str(&format!("Architectures: {WINDOWS_ARCH}\n"));
        if *commit != header {
            t.push_str(&format!("GitCommit: {commit}\n"));
        }
        t.push_str(&format!("{WINDOWS_ARCH}-Directory: {}\n", dir_of(rel)));
        t.push_str(&format!("Constraints: {name}\n"));
    }
    Ok(LibraryFile { text: t, warnings })
}

/// Warnings for the commits in `named` (what the library file calls each, and its id) that
/// this repository cannot show to be reachable from `git_fetch`.
fn unreachable(git: &Git, git_fetch: &str, named: &[(String, &str)]) -> Result<Vec<String>> {
    if !git.shallow_boundaries()?.is_empty() {
        return Ok(Vec::new());
    }
    let mut warnings = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for (what, commit) in named {
        if !seen.insert(*commit) {
            continue;
        }
        match git.reachable_from(commit, git_fetch)? {
            None => {
                warnings.push(format!(
                    "GitFetch {} is not a ref of this repository, so ocipack cannot check \
                     that it contains {commit} ({what}); bashbrew fetches it from GitRepo",
                    show::text(git_fetch)
                ));
                break;
            }
            Some(true) => {}
            Some(false) => warnings.push(format!(
                "{what} {commit} is not reachable from {} here: bashbrew fetches GitFetch \
                 and would not find it (push or merge it there first, or fix [library] \
                 git-fetch)",
                show::text(git_fetch)
            )),
        }
    }
    Ok(warnings)
}
