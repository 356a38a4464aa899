//! Reproducible dist branches: the layouts committed on branches of their own, the way
//! docker-library/busybox and debuerreotype publish theirs (`dist-{arch}`: one commit per
//! architecture holding every image's layout for it), or ubuntu's (`dist-{image}-{arch}`:
//! one branch per image and architecture), so that a change to one architecture or image
//! moves only its branches.
//!
//! Contract:
//! - The work tree and the index are never touched. Each layout is staged in a directory
//!   inside the git directory (`<git-dir>/ocipack/`, removed afterwards), its files hashed
//!   with `git hash-object --stdin` and its trees serialised here and hashed with
//!   `git hash-object -t tree --stdin` (regular files 100644, symlinks 120000, directories
//!   40000). Building writes them (`-w`) and makes the commit with `git commit-tree`;
//!   checking (`build --check`) passes no `-w`, so it computes the same ids and writes no
//!   object at all.
//! - A branch's tree holds exactly the project's layouts that its pattern sends there, each
//!   at the same path from the repository root as the in-tree output would have
//!   (`examples/hello-world/amd64/oci`), so `Directory:` is the same in both workflows. A
//!   layout the run does not build (`--image`, `--arch`) is carried over from the branch's
//!   previous tip, never dropped; one the tip does not have either is absent (and named).
//! - The same inputs give the same commit id on any machine: author and committer are
//!   [`IDENTITY_NAME`] `<`[`IDENTITY_EMAIL`]`>`, both dated from the newest `created` of the
//!   layouts built for the commit, in UTC; the message is made from what was built; no user
//!   or system configuration is read (`GIT_CONFIG_NOSYSTEM`, `GIT_CONFIG_GLOBAL=/dev/null`),
//!   commits are never signed and always UTF-8. The parent is the branch's previous tip
//!   (none for a new branch); a tree equal to the tip's makes no commit.
//! - A layout whose build record (`project::cache`) names the key its inputs give now and
//!   the very tree its branch's tip holds at its directory is not built again: that tree
//!   is used as it is (git's tree id covers every byte of the layout). Records are written
//!   only after the branches moved; `--check` never reads them.
//! - Refs are never moved by accident. Branches move together or not at all: one
//!   `git update-ref --no-deref --stdin` transaction, each update guarded by the old value it
//!   was built on. Refused before anything is built: a branch checked out in any work tree,
//!   a branch that is a symbolic ref (writing through it would move the branch it points
//!   to, `main` say, under its work tree), a branch pointing at something other than a
//!   commit, a project directory whose path is not UTF-8 ([`Git::prefix`]).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, Read};
use std::path::Path;

use crate::error::{Error, Result};
use crate::image::build::{self as image, BuiltImage};
use crate::project::cache;
use crate::project::git::{Git, Runner};
use crate::project::plan::{ArchTarget, parallel_map};
use crate::project::{ImageEntry, Project};
use crate::show;
use crate::store::root::{EntryType, Follow, Root};
use crate::store::staging::{Staging, Target};
use crate::timestamp::Timestamp;

/// The author and committer name of every dist commit: the tool that made it. Who
/// published it is recorded where it is pushed and proposed.
pub const IDENTITY_NAME: &str = "ocipack";
/// Their e-mail address: `.invalid` (RFC 2606), because no mailbox answers for a tool.
pub const IDENTITY_EMAIL: &str = "ocipack@ocipack.invalid";

/// One layout built for a dist commit.
#[derive(Debug, Clone)]
pub struct DistLayout {
    /// The entry that builds it.
    pub image: String,
    /// The bashbrew architecture.
    pub arch: String,
    /// Its directory from the repository root, on the branch.
    pub directory: String,
    /// Its tree.
    pub tree: String,
    /// The tree the branch's previous tip has at `directory`, if any.
    pub old_tree: Option<String>,
    /// Its `created`.
    pub created: Timestamp,
    /// What was built (or, when `reused`, what its record says it holds).
    pub built: BuiltImage,
    /// True when it was not built: its record named the inputs' key and the very tree the
    /// branch's tip holds at its directory ([`cache`]).
    pub reused: bool,
}

/// A layout on a branch that the run did not build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtherLayout {
    /// The entry that builds it.
    pub image: String,
    /// The bashbrew architecture.
    pub arch: String,
    /// Its directory from the repository root.
    pub directory: String,
    /// Its tree on the previous tip (carried over); `None`: the tip does not have it, so
    /// the commit does not either.
    pub tree: Option<String>,
}

/// One branch's commit (or, unchanged, its tip).
#[derive(Debug, Clone)]
pub struct DistCommit {
    /// The branch, without `refs/heads/`.
    pub branch: String,
    /// `refs/heads/<branch>`.
    pub refname: String,
    /// The branch's tip before (the parent), if it existed.
    pub old: Option<String>,
    /// The commit the branch points to afterwards (the old tip when unchanged; empty when
    /// only checking and changed).
    pub commit: String,
    /// The commit's tree.
    pub tree: String,
    /// False when the tip already had this tree: no commit was made.
    pub changed: bool,
    /// The commit's date: the newest `created` of the layouts built.
    pub created: Timestamp,
    /// The layouts built for it, in the plan's order.
    pub layouts: Vec<DistLayout>,
    /// The project's other layouts on this branch, in the project's order.
    pub others: Vec<OtherLayout>,
}

/// Runs git with no user or system configuration (see [`Runner::pinned`]), so that the
/// commits made depend on nothing but their inputs.
fn git(dir: &Path) -> Runner {
    Runner::pinned(dir)
}

/// A question about the repository: git's answer, trimmed.
fn ask(dir: &Path, args: &[&str]) -> Result<String> {
    Ok(git(dir).query(args, &[])?.trim().to_string())
}

/// The commit a branch points to; `None` if it does not exist; an error if it points to
/// something else.
pub fn branch_tip(dir: &Path, refname: &str) -> Result<Option<String>> {
    // This very ref, never another git would take for it: `rev-parse refs/heads/x` also
    // resolves `refs/refs/heads/x` or a tag named `refs/heads/x` (`refs/tags/refs/heads/x`,
    // which a fetched repository may hold) when the branch does not exist.
    let listed = git(dir).query(
        &[
            "for-each-ref",
            "--format=%(objectname) %(objecttype) %(refname)",
            refname,
        ],
        &[],
    )?;
    let found = listed.lines().find_map(|l| {
        let (oid, rest) = l.split_once(' ')?;
        let (kind, name) = rest.split_once(' ')?;
        (name == refname).then(|| (oid.to_string(), kind.to_string()))
    });
    let Some((oid, kind)) = found else {
        return Ok(None);
    };
    if kind != "commit" {
        return Err(Error::input(
            refname,
            format!(
                "points to a {kind} ({oid}), not a commit; ocipack commits only on top of a \
                 commit (delete or fix the ref: git update-ref -d {refname})"
            ),
        ));
    }
    Ok(Some(oid))
}

/// The ref a symbolic ref points to; `None` for an ordinary ref or none.
fn symbolic_target(dir: &Path, refname: &str) -> Result<Option<String>> {
    let out = git(dir).output(&["symbolic-ref", "-q", refname])?;
    Ok(out
        .status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string()))
}

/// Branches checked out in any work tree of the repository.
fn checked_out(dir: &Path) -> Result<Vec<String>> {
    // Work tree paths are bytes: only the `branch` lines are read.
    let list = git(dir).query_bytes(&["worktree", "list", "--porcelain"], &[])?;
    Ok(String::from_utf8_lossy(&list)
        .lines()
        .filter_map(|l| l.strip_prefix("branch "))
        .map(str::to_string)
        .collect())
}

/// Refuses a branch ocipack must not move (see the module documentation); its tip.
fn movable_tip(top: &Path, branch: &str, busy: &[String]) -> Result<Option<String>> {
    let refname = format!("refs/heads/{branch}");
    ask(top, &["check-ref-format", &refname]).map_err(|_| {
        Error::input(
            format!("commit branch \"{}\"", show::text(branch)),
            "git refuses it as a branch name",
        )
    })?;
    if busy.contains(&refname) {
        return Err(Error::input(
            format!("commit branch {}", show::text(branch)),
            "is checked out in a work tree; ocipack never moves a checked-out branch \
             (it would leave that work tree out of step with its branch)",
        ));
    }
    if let Some(to) = symbolic_target(top, &refname)? {
        return Err(Error::input(
            format!("commit branch {}", show::text(branch)),
            format!(
                "is a symbolic ref to {}; ocipack never writes through a symbolic ref (it \
                 would move {} instead); delete it (git symbolic-ref -d {refname}) or choose \
                 another --commit-branch",
                show::text(&to),
                show::text(&to)
            ),
        ));
    }
    branch_tip(top, &refname)
}

/// The tree `commit` has at `directory`, if it has one there.
fn tree_at(top: &Path, commit: &str, directory: &str) -> Result<Option<String>> {
    let spec = format!("{commit}:{directory}");
    let out = git(top).output(&["rev-parse", "--verify", "--quiet", &spec])?;
    if !out.status.success() {
        return Ok(None);
    }
    let oid = String::from_utf8_lossy(&out.stdout).trim().to_string();
    Ok((ask(top, &["cat-file", "-t", &oid])? == "tree").then_some(oid))
}

/// The tree each `(commit, directory)` holds (`None` without a commit, or when it has no
/// tree there), asked of one `git cat-file --batch-check`.
fn trees_at(top: &Path, at: &[(Option<String>, String)]) -> Result<Vec<Option<String>>> {
    let asked: Vec<String> = at
        .iter()
        .filter_map(|(c, d)| Some(format!("{}:{d}\n", c.as_ref()?)))
        .collect();
    if asked.is_empty() {
        return Ok(vec![None; at.len()]);
    }
    let input = asked.concat();
    let answer = git(top).write(
        &["cat-file", "--batch-check=%(objectname) %(objecttype)"],
        &[],
        &mut input.as_bytes(),
    )?;
    let mut lines = answer.lines();
    let mut out = Vec::with_capacity(at.len());
    for (c, _) in at {
        if c.is_none() {
            out.push(None);
            continue;
        }
        let line = lines
            .next()
            .ok_or_else(|| Error::Internal("git cat-file answered too few lines".into()))?;
        out.push(match line.split_once(' ') {
            Some((oid, "tree")) => Some(oid.to_string()),
            _ => None,
        });
    }
    Ok(out)
}

/// Builds every target's layout into a staging directory inside the git directory (at
/// most `at_once` at a time), hashes its objects, and makes each branch's commit from the
/// layouts built for it and the ones carried over from its tip, without moving any branch
/// ([`publish`] does). With `dry_run`, nothing is written to the repository: only the ids
/// are computed (for `build --check`). Every branch is checked before anything is built.
/// With `cache` (never with `dry_run`), a layout whose record names the tree its branch's
/// tip holds for it, and its inputs' key, is not built again ([`cache`]); the records of
/// the layouts built are written by the returned [`cache::Reuse`] once the branches moved.
pub fn prepare(
    project: &Project,
    pattern: &str,
    targets: &[ArchTarget],
    at_once: usize,
    dry_run: bool,
    cache: bool,
) -> Result<(Vec<DistCommit>, cache::Reuse)> {
    project
        .check_commit_branch(pattern)
        .map_err(|p| Error::input(format!("commit branch \"{}\"", show::text(pattern)), p))?;
    let git_info = Git::open(&project.dir)?;
    let prefix = git_info.prefix()?.to_string();
    let top = git(&project.dir).query_path(&["rev-parse", "--show-toplevel"])?;
    let busy = checked_out(&project.dir)?;

    // Each target's branch, and the branches in the targets' order with their tips.
    let target_branches: Vec<String> = targets
        .iter()
        .map(|t| match &t.branch {
            Some(b) => Ok(b.clone()),
            None => project
                .entry(&t.image)
                .map(|e| project.branch_name(pattern, e, &t.arch))
                .ok_or_else(|| Error::Internal(format!("no image {}", t.image))),
        })
        .collect::<Result<_>>()?;
    let mut branches: Vec<(String, Option<String>)> = Vec::new();
    let mut tips: HashMap<&str, Option<String>> = HashMap::new();
    for b in &target_branches {
        if !tips.contains_key(b.as_str()) {
            let tip = movable_tip(&top, b, &busy)?;
            tips.insert(b, tip.clone());
            branches.push((b.clone(), tip));
        }
    }

    let git_dir = git(&project.dir).query_path(&["rev-parse", "--absolute-git-dir"])?;
    let git_root = Root::open_with(&git_dir, Follow::Never)
        .map_err(|e| Error::io("opening the git directory", &git_dir, e))?;
    // The tree each target's branch tip holds at its directory (one git process).
    let at: Vec<(Option<String>, String)> = targets
        .iter()
        .zip(&target_branches)
        .map(|(t, b)| {
            let tip = tips.get(b.as_str()).cloned().flatten();
            (tip, format!("{prefix}{}", t.output_rel))
        })
        .collect();
    let old_trees = trees_at(&top, &at)?;
    let mut reuse = if cache && !dry_run {
        cache::Reuse::find_on_branches(&project.dir, targets, at_once, &old_trees)
    } else {
        cache::Reuse::none(targets.len())
    };
    let items: Vec<(usize, &ArchTarget)> = targets.iter().enumerate().collect();
    let built = parallel_map(&items, at_once, |&(i, t)| match reuse.tree_hit(i) {
        Some(hit) => Ok((hit, true)),
        None => stage_layout(&top, &git_dir, &git_root, t, dry_run).map(|b| (b, false)),
    });
    // The staging directories are gone; their parent goes too, once empty.
    let _ = rustix::fs::unlinkat(git_root.fd(), "ocipack", rustix::fs::AtFlags::REMOVEDIR);
    let mut layouts: Vec<(&String, DistLayout)> = Vec::new();
    for (i, ((t, b), r)) in targets.iter().zip(&target_branches).zip(built).enumerate() {
        let ((tree, built), reused) = r?;
        if !reused {
            reuse.built_tree(i, &tree, &built);
        }
        layouts.push((
            b,
            DistLayout {
                image: t.image.clone(),
                arch: t.arch.clone(),
                directory: at[i].1.clone(),
                tree,
                old_tree: old_trees[i].clone(),
                created: t.spec.created(),
                built,
                reused,
            },
        ));
    }

    // Grouped by branch once: a project of many branches (one per image and
    // architecture) costs no more than its number of layouts.
    let mut built_on: HashMap<&str, Vec<DistLayout>> = HashMap::new();
    for (b, l) in layouts {
        built_on.entry(b.as_str()).or_default().push(l);
    }
    let mut all_on: HashMap<String, Vec<(&str, &str, String)>> = HashMap::new();
    for (e, a, rel) in project.layouts() {
        all_on
            .entry(project.branch_name(pattern, e, a))
            .or_default()
            .push((e.name.as_str(), a, rel));
    }
    let mut out = Vec::new();
    for (branch, old) in branches {
        let mine: Vec<DistLayout> = built_on.remove(branch.as_str()).unwrap_or_default();
        let built_here: HashSet<(&str, &str)> = mine
            .iter()
            .map(|l| (l.image.as_str(), l.arch.as_str()))
            .collect();
        let mut others = Vec::new();
        for (image, a, rel) in all_on.get(&branch).map(Vec::as_slice).unwrap_or_default() {
            if built_here.contains(&(*image, *a)) {
                continue;
            }
            let directory = format!("{prefix}{rel}");
            let tree = match &old {
                Some(o) => tree_at(&top, o, &directory)?,
                None => None,
            };
            others.push(OtherLayout {
                image: image.to_string(),
                arch: a.to_string(),
                directory,
                tree,
            });
        }
        let mut root = Dir::default();
        for (dir, tree) in mine.iter().map(|l| (&l.directory, &l.tree)).chain(
            others
                .iter()
                .filter_map(|o| Some((&o.directory, o.tree.as_ref()?))),
        ) {
            root.insert(dir, tree)?;
        }
        let tree = root.write(&top, dry_run)?;
        let created = mine
            .iter()
            .map(|l| l.created)
            .max()
            .unwrap_or(Timestamp::EPOCH);
        let unchanged = match &old {
            Some(o) => ask(&top, &["rev-parse", &format!("{o}^{{tree}}")])? == tree,
            None => false,
        };
        let refname = format!("refs/heads/{branch}");
        let mut c = DistCommit {
            branch,
            refname,
            old: old.clone(),
            commit: String::new(),
            tree,
            changed: !unchanged,
            created,
            layouts: mine,
            others,
        };
        c.commit = if unchanged {
            old.unwrap_or_default()
        } else if dry_run {
            String::new()
        } else {
            commit_tree(&top, &c)?
        };
        out.push(c);
    }
    Ok((out, reuse))
}

/// Builds one layout into a staging directory inside the git directory and hashes it:
/// its tree id (objects written unless `dry_run`) and what was built.
fn stage_layout(
    top: &Path,
    git_dir: &Path,
    git_root: &Root,
    t: &ArchTarget,
    dry_run: bool,
) -> Result<(String, BuiltImage)> {
    // Image names never hold the '.' an architecture lacks: one directory per layout.
    let target = Target::beneath(
        git_root,
        &format!("ocipack/{}.{}", t.image, t.arch),
        true,
        &format!(
            "staging for {} in {}",
            t.branch.as_deref().unwrap_or(&t.arch),
            show::path(git_dir)
        ),
    )?;
    let (writer, built) = image::prepare_image(&t.spec, &target, None)?;
    let staged = writer.stage()?;
    let tree = write_tree(top, staged.root(), b"", dry_run)?;
    Ok((tree, built))
}

/// Moves every changed branch to its new commit in one transaction, each guarded by the
/// tip it was built on (a branch that moved meanwhile fails the whole transaction), none
/// through a symbolic ref.
pub fn publish(project_dir: &Path, commits: &[DistCommit]) -> Result<()> {
    if commits.iter().all(|c| !c.changed) {
        return Ok(());
    }
    let mut script = String::from("start\n");
    for c in commits.iter().filter(|c| c.changed) {
        match &c.old {
            Some(old) => script.push_str(&format!("update {} {} {old}\n", c.refname, c.commit)),
            None => script.push_str(&format!("create {} {}\n", c.refname, c.commit)),
        }
    }
    script.push_str("prepare\ncommit\n");
    git(project_dir)
        .write(
            &[
                "update-ref",
                "-m",
                "ocipack build --commit-branch",
                "--no-deref",
                "--stdin",
            ],
            &[],
            &mut script.as_bytes(),
        )
        .map(|_| ())
}

/// Hashes one blob (`-w`: written, unless `dry_run`).
fn hash_object(dir: &Path, input: &mut (dyn Read + Send), dry_run: bool) -> Result<String> {
    let mut args = vec!["hash-object", "--no-filters", "--stdin"];
    if !dry_run {
        args.insert(1, "-w");
    }
    git(dir).write(&args, &[], input)
}

/// One entry of a tree object.
struct TreeEntry {
    /// `100644`, `120000` or `40000`.
    mode: &'static str,
    name: Vec<u8>,
    oid: String,
}

/// Serialises a tree object (entries in git's order: by name, a directory's name compared
/// as if it ended in `/`) and hashes it with `git hash-object -t tree`, which checks it
/// as `git fsck` would; written only unless `dry_run`.
fn make_tree(dir: &Path, mut entries: Vec<TreeEntry>, dry_run: bool) -> Result<String> {
    let key = |e: &TreeEntry| {
        let mut k = e.name.clone();
        if e.mode == MODE_DIR {
            k.push(b'/');
        }
        k
    };
    entries.sort_by_key(key);
    let mut object = Vec::new();
    for e in &entries {
        object.extend_from_slice(e.mode.as_bytes());
        object.push(b' ');
        object.extend_from_slice(&e.name);
        object.push(0);
        object.extend(hex_bytes(&e.oid)?);
    }
    let mut args = vec!["hash-object", "-t", "tree", "--stdin"];
    if !dry_run {
        args.insert(1, "-w");
    }
    git(dir).write(&args, &[], &mut object.as_slice())
}

const MODE_DIR: &str = "40000";

/// An object id's raw bytes.
fn hex_bytes(oid: &str) -> Result<Vec<u8>> {
    let bad = || {
        Error::Internal(format!(
            "git printed \"{}\" as an object id",
            show::text(oid)
        ))
    };
    if !(oid.len() == 40 || oid.len() == 64) || !oid.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    (0..oid.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&oid[i..i + 2], 16).map_err(|_| bad()))
        .collect()
}

/// Writes the staged directory `rel` of `root` as a tree; its id.
fn write_tree(repo: &Path, root: &Root, rel: &[u8], dry_run: bool) -> Result<String> {
    let list = root
        .list_dir_bytes(rel)
        .map_err(|e| Error::input(root.shown(&String::from_utf8_lossy(rel)), e.to_string()))?
        .unwrap_or_default();
    let mut entries = Vec::new();
    for (name, kind) in list {
        let mut path = rel.to_vec();
        if !path.is_empty() {
            path.push(b'/');
        }
        path.extend_from_slice(&name);
        let fail = |e: crate::store::root::OpenError| {
            Error::input(root.shown(&String::from_utf8_lossy(&path)), e.to_string())
        };
        let (mode, oid) = match kind {
            EntryType::File => {
                let mut f = root.open_file(&path).map_err(fail)?;
                ("100644", hash_object(repo, &mut f.file, dry_run)?)
            }
            EntryType::Symlink => {
                let target = root.read_link(&path).map_err(fail)?;
                (
                    "120000",
                    hash_object(repo, &mut target.as_slice(), dry_run)?,
                )
            }
            EntryType::Dir => (MODE_DIR, write_tree(repo, root, &path, dry_run)?),
            EntryType::Other(k) => {
                return Err(Error::input(
                    root.shown(&String::from_utf8_lossy(&path)),
                    format!("is a {k}, which git cannot store"),
                ));
            }
        };
        entries.push(TreeEntry { mode, name, oid });
    }
    make_tree(repo, entries, dry_run)
}

/// The directories of a commit's tree, down to the layouts' trees.
#[derive(Default)]
struct Dir(BTreeMap<String, Node>);

enum Node {
    /// A layout's tree.
    Tree(String),
    Dir(Dir),
}

impl Dir {
    /// Puts `tree` at `path` (`a/b/c`). The project's outputs never nest on one branch
    /// ([`Project::check_outputs`]): a clash is a bug.
    fn insert(&mut self, path: &str, tree: &str) -> Result<()> {
        let clash = || Error::Internal(format!("two layouts of one branch meet at {path}"));
        let parts: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
        let Some((last, dirs)) = parts.split_last() else {
            return Err(clash());
        };
        let mut here = self;
        for d in dirs {
            let node = here
                .0
                .entry(d.to_string())
                .or_insert_with(|| Node::Dir(Dir::default()));
            here = match node {
                Node::Dir(sub) => sub,
                Node::Tree(_) => return Err(clash()),
            };
        }
        if here.0.contains_key(*last) {
            return Err(clash());
        }
        here.0
            .insert(last.to_string(), Node::Tree(tree.to_string()));
        Ok(())
    }

    /// Writes (or with `dry_run` only hashes) the tree, innermost first; its id.
    fn write(&self, repo: &Path, dry_run: bool) -> Result<String> {
        let mut entries = Vec::new();
        for (name, node) in &self.0 {
            let oid = match node {
                Node::Tree(t) => t.clone(),
                Node::Dir(d) => d.write(repo, dry_run)?,
            };
            entries.push(TreeEntry {
                mode: MODE_DIR,
                name: name.clone().into_bytes(),
                oid,
            });
        }
        make_tree(repo, entries, dry_run)
    }
}

/// The commit message of a commit holding one layout built and nothing else: fixed, from
/// what was built.
pub fn message(arch: &str, built: &BuiltImage, created: Timestamp) -> String {
    format!(
        "{arch}: OCI layout {}\n\nlayer {} ({})\ncreated {created}\n\nWritten by ocipack build --commit-branch.\n",
        built.image.entry.digest, built.layer.digest, built.layer.compression
    )
}

/// The commit message of `c`: [`message`] for a single layout, else one paragraph per
/// layout built and the names of the layouts carried over from the parent.
pub fn commit_message(c: &DistCommit) -> String {
    if let ([l], []) = (&c.layouts[..], &c.others[..]) {
        return message(&l.arch, &l.built, l.created);
    }
    let mut m = format!("{}: OCI layouts\n", c.branch);
    for l in &c.layouts {
        m.push_str(&format!(
            "\n{} {}: OCI layout {}\nlayer {} ({})\ncreated {}\ndirectory {}\n",
            l.image,
            l.arch,
            l.built.image.entry.digest,
            l.built.layer.digest,
            l.built.layer.compression,
            l.created,
            l.directory
        ));
    }
    let carried: Vec<String> = c
        .others
        .iter()
        .filter(|o| o.tree.is_some())
        .map(|o| format!("{} {}", o.image, o.arch))
        .collect();
    if !carried.is_empty() {
        m.push_str(&format!(
            "\ncarried over from the parent: {}\n",
            carried.join(", ")
        ));
    }
    m.push_str("\nWritten by ocipack build --commit-branch.\n");
    m
}

fn commit_tree(repo: &Path, c: &DistCommit) -> Result<String> {
    let date = format!("@{} +0000", c.created.unix());
    let env = [
        ("GIT_AUTHOR_NAME", IDENTITY_NAME.to_string()),
        ("GIT_AUTHOR_EMAIL", IDENTITY_EMAIL.to_string()),
        ("GIT_AUTHOR_DATE", date.clone()),
        ("GIT_COMMITTER_NAME", IDENTITY_NAME.to_string()),
        ("GIT_COMMITTER_EMAIL", IDENTITY_EMAIL.to_string()),
        ("GIT_COMMITTER_DATE", date),
    ];
    let mut args = vec!["commit-tree", "--no-gpg-sign", &c.tree];
    if let Some(p) = &c.old {
        args.extend(["-p", p]);
    }
    args.extend(["-F", "-"]);
    let msg = commit_message(c);
    git(repo).write(&args, &env, &mut msg.as_bytes())
}

/// Where `ocipack library` finds one layout on a dist branch: the branch's tip, if the
/// branch exists and holds `directory/oci-layout`.
pub fn layout_tip(project_dir: &Path, branch: &str, directory: &str) -> Result<Option<String>> {
    let refname = format!("refs/heads/{branch}");
    let Some(tip) = branch_tip(project_dir, &refname)? else {
        return Ok(None);
    };
    let probe = format!("{tip}:{directory}/oci-layout");
    let has = git(project_dir).output(&["cat-file", "-e", &probe])?;
    Ok(has.status.success().then_some(tip))
}

/// The repository-relative directory of a project: [`Git::prefix`], refused when not UTF-8.
pub fn repository_prefix(project_dir: &Path) -> Result<String> {
    Ok(Git::open(project_dir)?.prefix()?.to_string())
}

// ---- Reading layouts back from their branches (`ocipack push`).

/// The most entries (files, symlinks, directories) of one layout read from a branch: a
/// layout has a handful (a multi-platform one of every architecture, some fifty).
pub const MAX_BRANCH_ENTRIES: usize = 10_000;
/// The most bytes of all the files of one layout read from a branch (64 GiB): a bound on
/// what a hostile branch can make push write into the git directory, far above any
/// Official Image.
pub const MAX_BRANCH_LAYOUT_BYTES: u64 = 64 << 30;
/// The longest symlink target of a layout read from a branch.
const MAX_LINK: u64 = 4096;
/// The longest path inside a layout read from a branch.
const MAX_PATH: u64 = 4096;

/// Where a layout of a project is on its dist branch, or why it is not there.
#[derive(Debug)]
pub enum OnBranch {
    /// Its files, copied into the staging directory and opened (refusing every symlink
    /// beneath it); messages name it `BRANCH:DIRECTORY`, as git does.
    Layout(Root),
    /// The branch does not exist, or its tip has no directory there: the reason.
    Missing(String),
}

/// Layouts read from the tips of their dist branches for `ocipack push`, each copied out of
/// git into one staging directory inside the git directory (`<git-dir>/.ocipack-push.…`,
/// beside where `build` stages the layouts it commits), so that [`crate::verify::open`]
/// reads them as it reads a work-tree layout. The work tree is never written; the staging
/// directory goes when this is dropped, on an error, or on SIGINT, SIGTERM or SIGHUP
/// ([`Staging`]).
///
/// The copy holds what the branch's tree holds: regular files with their mode (100644 or
/// 100755), symlinks with their target (120000), directories. Refused: any other entry (a
/// submodule's commit), a name that is not UTF-8 or not a plain path component, a path
/// listed twice (a malformed tree) or longer than 4096 bytes, a symlink
/// whose target is absolute or leads out of the layout (where it leads inside is
/// [`crate::verify::open`]'s to judge), more than [`MAX_BRANCH_ENTRIES`] entries or
/// [`MAX_BRANCH_LAYOUT_BYTES`] bytes. Blobs are streamed from one `git cat-file --batch`
/// per layout, never held in memory.
#[derive(Debug)]
pub struct BranchLayouts {
    dir: std::path::PathBuf,
    git_dir: std::path::PathBuf,
    git_root: Root,
    prefix: String,
    pattern: String,
    staging: Option<Staging>,
}

/// One entry of a layout's tree, as `git ls-tree -r -t -l -z` lists it.
struct Listed {
    mode: u32,
    kind: ListedKind,
    oid: String,
    size: u64,
    path: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ListedKind {
    File,
    Symlink,
    Dir,
}

impl BranchLayouts {
    /// Reads `project`'s layouts from the branches `pattern` names (checked as `build`
    /// checks it: every layout a directory of its own on its branch).
    pub fn open(project: &Project, pattern: &str) -> Result<BranchLayouts> {
        project.check_outputs(Some(pattern))?;
        let prefix = repository_prefix(&project.dir)?;
        let git_dir = git(&project.dir).query_path(&["rev-parse", "--absolute-git-dir"])?;
        let git_root = Root::open_with(&git_dir, Follow::Never)
            .map_err(|e| Error::io("opening the git directory", &git_dir, e))?;
        Ok(BranchLayouts {
            dir: project.dir.clone(),
            git_dir,
            git_root,
            prefix,
            pattern: pattern.to_string(),
            staging: None,
        })
    }

    /// The branch of `entry`'s `arch` and the layout's directory from the repository root.
    pub fn place(
        &self,
        project: &Project,
        entry: &ImageEntry,
        arch: &str,
        rel: &str,
    ) -> (String, String) {
        (
            project.branch_name(&self.pattern, entry, arch),
            format!("{}{rel}", self.prefix),
        )
    }

    /// Copies the layout of `entry` (a building entry) for `arch`, at `rel` from the
    /// project directory, out of its branch's tip (see the type's documentation).
    pub fn layout(
        &mut self,
        project: &Project,
        entry: &ImageEntry,
        arch: &str,
        rel: &str,
    ) -> Result<OnBranch> {
        let (branch, directory) = self.place(project, entry, arch, rel);
        let refname = format!("refs/heads/{branch}");
        let Some(tip) = branch_tip(&self.dir, &refname)? else {
            return Ok(OnBranch::Missing(format!(
                "{} on branch {}, which does not exist",
                show::text(&directory),
                show::text(&branch)
            )));
        };
        let Some(tree) = tree_at(&self.dir, &tip, &directory)? else {
            return Ok(OnBranch::Missing(format!(
                "{} on branch {}, whose tip {} has no directory there",
                show::text(&directory),
                show::text(&branch),
                &tip[..tip.len().min(12)]
            )));
        };
        let named = format!("{branch}:{directory}");
        let entries = list_layout(&self.dir, &tree, &named)?;
        if self.staging.is_none() {
            let what = format!("staging for push in {}", show::path(&self.git_dir));
            let target = Target::beneath(&self.git_root, "ocipack-push", false, &what)?;
            self.staging = Some(Staging::dir(&target)?);
        }
        let staging = self.staging.as_ref().expect("created above");
        // Image names never hold the '.' an architecture lacks: one directory per layout.
        let sub = format!("{}.{arch}", entry.name);
        let made = |rel: &str| {
            staging
                .root()
                .subdir(rel, true)
                .map_err(|e| Error::input(staging.root().shown(rel), e.to_string()))
        };
        let layout = made(&sub)?;
        for e in entries.iter().filter(|e| e.kind == ListedKind::Dir) {
            made(&format!("{sub}/{}", e.path))?;
        }
        let wanted: Vec<&Listed> = entries
            .iter()
            .filter(|e| e.kind != ListedKind::Dir)
            .collect();
        let input: String = wanted.iter().map(|e| format!("{}\n", e.oid)).collect();
        git(&self.dir).query_stream(&["cat-file", "--batch"], input.as_bytes(), |out| {
            for e in &wanted {
                let at = || format!("{named}/{}", show::text(&e.path));
                let header = read_bounded(out, b'\n', 200, || {
                    Error::command(
                        "git",
                        "reading git cat-file's answer",
                        "a header longer than 200 bytes",
                    )
                })?
                .ok_or_else(|| Error::input(at(), "git cat-file ended before it"))?;
                let header = String::from_utf8_lossy(&header);
                let fields: Vec<&str> = header.trim_end().split(' ').collect();
                if fields != [e.oid.as_str(), "blob", &e.size.to_string()] {
                    return Err(Error::input(
                        at(),
                        format!(
                            "git cat-file answered \"{}\" for blob {} of {} bytes",
                            show::text(header.trim_end()),
                            e.oid,
                            e.size
                        ),
                    ));
                }
                let mut body = (&mut *out).take(e.size);
                let rel = format!("{sub}/{}", e.path);
                let copied = match e.kind {
                    ListedKind::File => {
                        let mut f = staging.create_scratch_file(&rel, e.mode)?;
                        std::io::copy(&mut body, &mut f).map_err(|err| {
                            Error::io("writing", staging.root().path().join(&rel), err)
                        })?
                    }
                    _ => {
                        let mut target = Vec::new();
                        body.read_to_end(&mut target)
                            .map_err(|err| Error::input_io_on("reading", at(), err))?;
                        let target =
                            link_target(&e.path, target).map_err(|why| Error::input(at(), why))?;
                        staging.symlink(&target, &rel)?;
                        e.size
                    }
                };
                let mut end = [0u8; 1];
                if copied != e.size || out.read_exact(&mut end).is_err() || end != *b"\n" {
                    return Err(Error::input(at(), "git cat-file's answer was cut short"));
                }
            }
            Ok(())
        })?;
        // Named as git names it, in messages: BRANCH:DIRECTORY/index.json.
        let fd = rustix::io::fcntl_dupfd_cloexec(layout.fd(), 0)
            .map_err(|e| Error::io("opening", layout.path(), e.into()))?;
        Ok(OnBranch::Layout(Root::from_fd(
            fd,
            Path::new(&named),
            Follow::Never,
        )))
    }
}

/// Reads up to and including `delim`, at most `limit` bytes; `None` at the end of the
/// stream. The delimiter is not returned. A record longer than `limit` is `too_long`'s
/// error (what the record is about decides whose fault it is).
fn read_bounded(
    r: &mut dyn BufRead,
    delim: u8,
    limit: u64,
    too_long: impl FnOnce() -> Error,
) -> Result<Option<Vec<u8>>> {
    let mut buf = Vec::new();
    (&mut *r)
        .take(limit + 1)
        .read_until(delim, &mut buf)
        .map_err(|e| Error::command("git", "reading git's answer", e.to_string()))?;
    if buf.is_empty() {
        return Ok(None);
    }
    if buf.last() != Some(&delim) {
        if buf.len() as u64 > limit {
            return Err(too_long());
        }
        return Err(Error::command(
            "git",
            "reading git's answer",
            "it was cut short in the middle of a record",
        ));
    }
    buf.pop();
    Ok(Some(buf))
}

/// Every entry of the layout tree `tree` (named `named` in messages), checked (see
/// [`BranchLayouts`]); parents before their children.
fn list_layout(dir: &Path, tree: &str, named: &str) -> Result<Vec<Listed>> {
    git(dir).query_stream(
        &["ls-tree", "--full-tree", "-r", "-t", "-l", "-z", tree],
        b"",
        |out| {
            let mut entries = Vec::new();
            let mut total = 0u64;
            // Every path listed, and the directories among them: a tree git itself would
            // refuse (`git fsck`: duplicate entries, a name holding '/') lists a path twice
            // (a file and a directory of one name, say) or one whose parent is no directory.
            let mut seen: HashSet<String> = HashSet::new();
            let mut dirs: HashSet<String> = HashSet::new();
            let too_long = || {
                Error::input(
                    named,
                    format!("holds a path longer than {MAX_PATH} bytes, which no layout has"),
                )
            };
            while let Some(record) = read_bounded(out, 0, MAX_PATH + 200, too_long)? {
                if entries.len() >= MAX_BRANCH_ENTRIES {
                    return Err(Error::input(
                        named,
                        format!(
                            "holds more than {MAX_BRANCH_ENTRIES} entries, which no layout has"
                        ),
                    ));
                }
                let bad = |why: String| Error::input(named, why);
                let tab = record
                    .iter()
                    .position(|&b| b == b'\t')
                    .ok_or_else(|| bad("git ls-tree printed a record without a path".into()))?;
                let (meta, path) = (&record[..tab], &record[tab + 1..]);
                let at = || format!("{named}/{}", show::bytes(path));
                let path = std::str::from_utf8(path)
                    .map_err(|_| Error::input(at(), "is not UTF-8, which no layout's name is"))?;
                if path
                    .split('/')
                    .any(|c| c.is_empty() || c == "." || c == "..")
                {
                    return Err(Error::input(at(), "is not a plain path"));
                }
                if let Some((parent, _)) = path.rsplit_once('/')
                    && !dirs.contains(parent)
                {
                    return Err(Error::input(
                        at(),
                        "is not a plain path: its tree holds a name with '/' in it, which \
                         git fsck refuses",
                    ));
                }
                if !seen.insert(path.to_string()) {
                    return Err(Error::input(
                        at(),
                        "is listed twice in its tree (a malformed tree, which git fsck \
                         refuses): which of them is the layout's cannot be told",
                    ));
                }
                let meta = String::from_utf8_lossy(meta);
                let f: Vec<&str> = meta.split_whitespace().collect();
                let [mode, kind, oid, size] = f[..] else {
                    return Err(bad(format!(
                        "git ls-tree printed \"{}\"",
                        show::text(&meta)
                    )));
                };
                let (kind, mode) = match (mode, kind) {
                    ("100644", "blob") => (ListedKind::File, 0o644),
                    ("100755", "blob") => (ListedKind::File, 0o755),
                    ("120000", "blob") => (ListedKind::Symlink, 0),
                    ("040000", "tree") => (ListedKind::Dir, 0),
                    ("160000", _) => {
                        return Err(Error::input(
                            at(),
                            "is a submodule (a commit), which a layout cannot hold",
                        ));
                    }
                    _ => {
                        return Err(Error::input(
                            at(),
                            format!("has mode {mode} ({kind}), which a layout cannot hold"),
                        ));
                    }
                };
                let size = if kind == ListedKind::Dir {
                    0
                } else {
                    size.parse::<u64>().map_err(|_| {
                        bad(format!(
                            "git ls-tree printed the size \"{}\"",
                            show::text(size)
                        ))
                    })?
                };
                if kind == ListedKind::Symlink && size > MAX_LINK {
                    return Err(Error::input(
                        at(),
                        format!("is a symlink of {size} bytes, longer than {MAX_LINK}"),
                    ));
                }
                total = total.saturating_add(size);
                if total > MAX_BRANCH_LAYOUT_BYTES {
                    return Err(Error::input(
                        named,
                        format!("holds more than {MAX_BRANCH_LAYOUT_BYTES} bytes"),
                    ));
                }
                if kind == ListedKind::Dir {
                    dirs.insert(path.to_string());
                }
                entries.push(Listed {
                    mode,
                    kind,
                    oid: oid.to_string(),
                    size,
                    path: path.to_string(),
                });
            }
            Ok(entries)
        },
    )
}

/// A symlink's target, if it stays inside the layout: relative, UTF-8, and never above
/// the layout's root from the link's directory (`path`).
fn link_target(path: &str, target: Vec<u8>) -> std::result::Result<String, String> {
    let target = String::from_utf8(target).map_err(|e| {
        format!(
            "is a symlink to \"{}\", not UTF-8",
            show::bytes(e.as_bytes())
        )
    })?;
    if target.is_empty() || target.starts_with('/') {
        return Err(format!(
            "is a symlink to \"{}\", which leaves the layout (only relative links inside it \
             are copied)",
            show::text(&target)
        ));
    }
    let mut depth = path.split('/').count() - 1;
    for c in target.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                depth = depth.checked_sub(1).ok_or_else(|| {
                    format!(
                        "is a symlink to \"{}\", which leads out of the layout",
                        show::text(&target)
                    )
                })?;
            }
            _ => depth += 1,
        }
    }
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A symlink copied out of a branch stays inside its layout, even on the way.
    #[test]
    fn link_targets_never_leave_the_layout() {
        let ok = |path: &str, t: &str| link_target(path, t.as_bytes().to_vec());
        assert_eq!(
            ok("rootfs.tar.gz", "blobs/sha256/ab").unwrap(),
            "blobs/sha256/ab"
        );
        assert!(ok("amd64/rootfs.tar.gz", "../blobs/sha256/ab").is_ok());
        assert!(ok("amd64/x", "./../blobs").is_ok());
        for (path, t) in [
            ("x", "../x"),
            ("amd64/x", "../../x"),
            ("x", "a/../../x"),
            ("x", "../x/../x"),
            ("x", "/etc/passwd"),
            ("x", ""),
        ] {
            assert!(ok(path, t).is_err(), "{path} -> {t}");
        }
        assert!(link_target("x", vec![0xff]).is_err());
    }

    /// Trees made here are git's own: the same ids as `git mktree`, also with names that
    /// sort differently as directories (`a` vs `a.b` vs `a/`), and a dry run writes nothing.
    #[test]
    fn trees_hash_like_git_mktree_and_dry_runs_write_nothing() {
        let t = tempfile::tempdir().unwrap();
        let g = Runner::pinned(t.path());
        g.write(&["init", "-q"], &[], &mut std::io::empty())
            .unwrap();
        let blob = hash_object(t.path(), &mut &b"x\n"[..], false).unwrap();
        let sub = make_tree(
            t.path(),
            vec![TreeEntry {
                mode: "100644",
                name: b"f".to_vec(),
                oid: blob.clone(),
            }],
            false,
        )
        .unwrap();
        let entries = || {
            vec![
                TreeEntry {
                    mode: MODE_DIR,
                    name: b"a".to_vec(),
                    oid: sub.clone(),
                },
                TreeEntry {
                    mode: "100644",
                    name: b"a.b".to_vec(),
                    oid: blob.clone(),
                },
                TreeEntry {
                    mode: "120000",
                    name: b"a-".to_vec(),
                    oid: blob.clone(),
                },
            ]
        };
        let listing =
            format!("040000 tree {sub}\ta\0100644 blob {blob}\ta.b\0120000 blob {blob}\ta-\0");
        let count = || {
            g.query(&["count-objects", "-v"], &[])
                .unwrap()
                .lines()
                .filter(|l| l.starts_with("count:"))
                .collect::<String>()
        };
        let before = count();
        let dry = make_tree(t.path(), entries(), true).unwrap();
        assert_eq!(count(), before, "a dry run writes no object");
        let by_git = g
            .write(&["mktree", "-z"], &[], &mut listing.as_bytes())
            .unwrap();
        assert_eq!(dry, by_git);
        assert_eq!(make_tree(t.path(), entries(), false).unwrap(), by_git);
    }
}
