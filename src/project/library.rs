//! `ocipack library`: the Docker Official Images library file for a project, in the
//! RFC 2822 style bashbrew parses.
//!
//! A header block (`Maintainers`, `GitRepo`, `GitFetch`, `GitCommit`), then one entry per
//! library entry of the project (each `[[images]]` table, or the implicit one) that has a
//! layout, and one entry per Windows variant that has a Dockerfile on disk. An image's
//! entry: `Tags`, `SharedTags`, `Architectures` (those with a layout, in bashbrew's order:
//! bashbrew sorts the list when it parses it), `Builder: oci-import` and `File` (in the
//! header instead when the project has `[[images]]` and every entry is an oci-import one
//! with the same File, so that no Windows entry inherits them), then `Directory:` when every
//! architecture's layout is at one path, else `<arch>-Directory:` lines. Directories are
//! relative to the repository root; a project path that is not UTF-8 is refused
//! ([`Git::prefix`]), never printed with U+FFFD.
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
//! - On dist branches (`[library] commit-branch` or `--commit-branch`), each layout's commit
//!   is the tip of its branch, named with `<arch>-GitFetch:` and `<arch>-GitCommit:` as
//!   busybox's generate script does: in the header when the pattern has no `{image}` (one
//!   branch per architecture for every image, busybox and debian), else in each entry
//!   (ubuntu); only Windows outputs are read from the work tree.
//! - With `[library] git-fetch` set, the `GitCommit:` ids taken from the work tree's history
//!   need not be on that ref: each one not reachable from it here is a warning (bashbrew
//!   fetches GitFetch and would not find the commit), and so is a ref this repository does
//!   not have (nothing could be checked). Warnings, not errors: the local ref may lag the
//!   remote one. A shallow clone is not checked (its history is cut off).

use std::collections::{BTreeMap, BTreeSet};

use crate::error::{Error, Result};
use crate::project::git::Git;
use crate::project::{ImageEntry, PROJECT_FILE, Project, WINDOWS_ARCH, dist};
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

/// Where one architecture's layout of an entry is: its directory and descriptor file, its
/// commit, and the branch it is on when it is on a dist branch.
struct Place {
    arch: String,
    directory: String,
    file: String,
    /// `refs/heads/<branch>` on a dist branch.
    fetch: Option<String>,
    /// The commit (filled in after the dirty check for in-tree layouts).
    commit: String,
    /// The in-tree output, relative to the project directory.
    rel: Option<String>,
}

/// An entry's position in bashbrew's architecture order (every `Architectures:` list is
/// sorted by it when bashbrew parses the file).
fn bashbrew_rank(arch: &str) -> usize {
    crate::platform::BASHBREW_ARCHES
        .iter()
        .position(|(n, ..)| *n == arch)
        .unwrap_or(usize::MAX)
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
    let several = project.declares_images();
    let git = Git::open(&project.dir)?;
    let prefix = git.prefix()?;
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
    if let Some(p) = &pattern {
        project.check_outputs(Some(p))?;
    }
    let root = project.root()?;
    let is_file = |rel: String| matches!(root.entry_type(&rel), Ok(Some(EntryType::File)));
    let dir_of = |rel: &str| format!("{prefix}{rel}");

    let mut warnings = Vec::new();
    // Windows variants whose Dockerfile is on disk; the others are left out, not silently.
    let mut variants: Vec<(String, String)> = Vec::new();
    for v in project.windows.iter().flat_map(|w| &w.variants) {
        let Some(rel) = project.windows_output_rel(&v.name) else {
            continue;
        };
        if is_file(format!("{rel}/{}", crate::project::windows::DOCKERFILE)) {
            variants.push((v.name.clone(), rel));
        } else {
            warnings.push(format!(
                "Windows variant {}: {} holds no {}, so the library file leaves it out",
                show::text(&v.name),
                show::text(&rel),
                crate::project::windows::DOCKERFILE
            ));
        }
    }

    // Per entry, in file order, the places of its architectures in bashbrew's order.
    let mut entries: Vec<(&ImageEntry, Vec<Place>)> = Vec::new();
    for e in &project.images {
        let mut arches: Vec<&String> = e.architectures.iter().collect();
        arches.sort_by_key(|a| bashbrew_rank(a));
        let mut places = Vec::new();
        let mut missing = Vec::new();
        for a in arches {
            let (Some(source), Some(rel)) = (
                e.source(a).and_then(|s| project.entry(s)),
                project.output_rel(e, a),
            ) else {
                continue;
            };
            let file = source
                .build()
                .and_then(|b| b.settings.descriptor_file.as_ref())
                .map(|d| d.value.clone())
                .unwrap_or_else(|| "index.json".to_string());
            let directory = dir_of(&rel);
            match &pattern {
                Some(p) => {
                    let branch = project.branch_name(p, source, a);
                    match dist::layout_tip(&project.dir, &branch, &directory)? {
                        Some(tip) => places.push(Place {
                            arch: a.clone(),
                            directory,
                            file,
                            fetch: Some(format!("refs/heads/{branch}")),
                            commit: tip,
                            rel: None,
                        }),
                        None => missing.push(a.as_str()),
                    }
                }
                None => {
                    if is_file(format!("{rel}/oci-layout")) {
                        places.push(Place {
                            arch: a.clone(),
                            directory,
                            file,
                            fetch: None,
                            commit: String::new(),
                            rel: Some(rel),
                        });
                    }
                }
            }
        }
        // Left out, not silently: an architecture without its branch is not offered.
        if let (Some(p), false) = (&pattern, missing.is_empty()) {
            let whose = if several {
                format!("image {}: ", e.name)
            } else {
                String::new()
            };
            warnings.push(format!(
                "{whose}no branch {} holds a layout for {}, so the library file leaves {} out; \
                 run `ocipack build --commit-branch '{}'`",
                show::text(p),
                missing.join(", "),
                if missing.len() == 1 { "it" } else { "them" },
                show::text(p)
            ));
        }
        if places.is_empty() {
            if several && pattern.is_none() {
                warnings.push(format!(
                    "image {} has no layout in the work tree yet, so the library file leaves \
                     it out; run `ocipack build` and commit the result",
                    e.name
                ));
            }
            continue;
        }
        entries.push((e, places));
    }

    let mut in_tree: Vec<String> = Vec::new();
    let mut listed: BTreeSet<&str> = BTreeSet::new();
    for (_, places) in &entries {
        for rel in places.iter().filter_map(|p| p.rel.as_ref()) {
            if listed.insert(rel) {
                in_tree.push(rel.clone());
            }
        }
    }
    in_tree.extend(variants.iter().map(|(_, rel)| rel.clone()));

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

    let mut commits: BTreeMap<String, String> = BTreeMap::new();
    for (e, places) in &mut entries {
        for p in places.iter_mut() {
            let Some(rel) = &p.rel else { continue };
            if let Some(c) = commits.get(rel) {
                p.commit = c.clone();
                continue;
            }
            let of = if several {
                format!("{} {}", e.name, p.arch)
            } else {
                p.arch.clone()
            };
            let c = git
                .last_commit(
                    &format!("the output of {of} ({rel})"),
                    std::slice::from_ref(rel),
                )?
                .id;
            commits.insert(rel.clone(), c.clone());
            p.commit = c;
        }
    }
    let mut windows: Vec<(String, String, String)> = Vec::new();
    for (name, rel) in &variants {
        let c = git.last_commit(
            &format!("the output of {name} ({rel})"),
            std::slice::from_ref(rel),
        )?;
        windows.push((name.clone(), rel.clone(), c.id));
    }
    if entries.is_empty() && windows.is_empty() {
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
        for (e, places) in &entries {
            named.extend(places.iter().filter(|p| p.fetch.is_none()).map(|p| {
                let what = if several {
                    format!("the {}-GitCommit of image {}", p.arch, e.name)
                } else {
                    format!("{}-GitCommit", p.arch)
                };
                (what, p.commit.as_str())
            }));
        }
        named.extend(
            windows
                .iter()
                .map(|(n, _, c)| (format!("the GitCommit of {n}"), c.as_str())),
        );
        warnings.extend(unreachable(&git, &git_fetch, &named)?);
    }

    // Where the dist refs go: in the header when each architecture has one branch for
    // every image (busybox, debian), else in each entry (ubuntu: one branch per image).
    let refs_in_header = several && pattern.as_deref().is_some_and(|p| !p.contains("{image}"));
    // Builder and File: in the header only when every entry is an oci-import one with the
    // same File, so that no Windows entry inherits them; a project without [[images]]
    // keeps them in its entry, as it always printed them.
    let files: BTreeSet<&str> = entries
        .iter()
        .flat_map(|(_, ps)| ps.iter().map(|p| p.file.as_str()))
        .collect();
    let builder_in_header = several && windows.is_empty() && files.len() == 1;

    let mut t = String::new();
    t.push_str(&format!(
        "# {}: written by `ocipack library` from {prefix}{PROJECT_FILE}\n\n",
        project.name,
    ));
    t.push_str(&format!(
        "Maintainers: {}\n",
        lib.maintainers
            .join(&format!(",\n{}", " ".repeat("Maintainers: ".len())))
    ));
    t.push_str(&format!("GitRepo: {}\n", lib.git_repo));
    t.push_str(&format!("GitFetch: {git_fetch}\n"));
    t.push_str(&format!("GitCommit: {header}\n"));
    if builder_in_header {
        t.push_str("Builder: oci-import\n");
        t.push_str(&format!(
            "File: {}\n",
            files.iter().next().expect("one File")
        ));
    }
    if refs_in_header {
        let mut refs: BTreeMap<(usize, &str), (&str, &str)> = BTreeMap::new();
        for (_, places) in &entries {
            for p in places {
                if let Some(f) = &p.fetch {
                    refs.insert((bashbrew_rank(&p.arch), &p.arch), (f, &p.commit));
                }
            }
        }
        for ((_, arch), (fetch, commit)) in refs {
            t.push_str(&format!("{arch}-GitFetch: {fetch}\n"));
            t.push_str(&format!("{arch}-GitCommit: {commit}\n"));
        }
    }

    for (e, places) in &entries {
        t.push_str(&format!("\nTags: {}\n", e.tags.join(", ")));
        if !e.shared_tags.is_empty() {
            t.push_str(&format!("SharedTags: {}\n", e.shared_tags.join(", ")));
        }
        let names: Vec<&str> = places.iter().map(|s| s.arch.as_str()).collect();
        t.push_str(&format!("Architectures: {}\n", names.join(", ")));
        let distinct: BTreeSet<&str> = places.iter().map(|s| s.commit.as_str()).collect();
        let agreed = (pattern.is_none() && distinct.len() == 1).then(|| places[0].commit.clone());
        if let Some(c) = agreed.as_ref().filter(|c| **c != header) {
            t.push_str(&format!("GitCommit: {c}\n"));
        }
        let own_files: BTreeSet<&str> = places.iter().map(|p| p.file.as_str()).collect();
        let one_file = own_files.len() == 1;
        if !builder_in_header {
            t.push_str("Builder: oci-import\n");
            if one_file {
                t.push_str(&format!("File: {}\n", places[0].file));
            }
        }
        // One Directory: when every architecture's layout is at the same path (on its own
        // branch), else one line per architecture.
        let dirs: BTreeSet<&str> = places.iter().map(|p| p.directory.as_str()).collect();
        let one_dir = dirs.len() == 1 && places.len() > 1;
        if one_dir {
            t.push_str(&format!("Directory: {}\n", places[0].directory));
        }
        for s in places.iter() {
            if let (Some(f), false) = (&s.fetch, refs_in_header) {
                t.push_str(&format!("{}-GitFetch: {f}\n", s.arch));
            }
            if (s.fetch.is_some() && !refs_in_header) || (s.fetch.is_none() && agreed.is_none()) {
                t.push_str(&format!("{}-GitCommit: {}\n", s.arch, s.commit));
            }
            if !builder_in_header && !one_file {
                t.push_str(&format!("{}-File: {}\n", s.arch, s.file));
            }
            if !one_dir {
                t.push_str(&format!("{}-Directory: {}\n", s.arch, s.directory));
            }
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
