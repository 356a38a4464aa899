//! Reproducible dist branches: each architecture's layout committed on a branch of its own
//! (`dist-{arch}`), the way docker-library/busybox and debuerreotype publish theirs, so that
//! a change to one architecture rebuilds only that one.
//!
//! Contract:
//! - The work tree and the index are never touched. Each layout is staged in a directory
//!   inside the git directory (`<git-dir>/ocipack/`, removed afterwards), its files written
//!   as objects with `git hash-object -w --stdin`, its trees made bottom-up with
//!   `git mktree -z` (regular files 100644, symlinks 120000, directories 040000), and the
//!   commit made with `git commit-tree`.
//! - The commit's tree holds only the layout, at the same path from the repository root as
//!   the in-tree output (`examples/hello-world/amd64/oci`), so `<arch>-Directory:` is the
//!   same in both workflows.
//! - The same inputs give the same commit id on any machine: author and committer are
//!   [`IDENTITY_NAME`] `<`[`IDENTITY_EMAIL`]`>`, both dated from the image's `created` in UTC,
//!   the message is fixed, no user or system configuration is read (`GIT_CONFIG_NOSYSTEM`,
//!   `GIT_CONFIG_GLOBAL=/dev/null`), commits are never signed and always UTF-8. The parent
//!   is the branch's previous tip (none for a new branch); a tree equal to the tip's makes
//!   no commit.
//! - Branches move together or not at all: one `git update-ref --stdin` transaction, each
//!   update guarded by the old value it was built on. A branch checked out in any work tree,
//!   and a branch that points at something other than a commit, are refused.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use crate::error::{Error, Result};
use crate::image::build::{self as image, BuiltImage};
use crate::project::git::{Git, Runner, check_branch_pattern};
use crate::project::plan::ArchTarget;
use crate::show;
use crate::store::root::{EntryType, Follow, Root};
use crate::store::staging::Target;
use crate::timestamp::Timestamp;

/// The author and committer name of every dist commit: the tool that made it. Who
/// published it is recorded where it is pushed and proposed.
pub const IDENTITY_NAME: &str = "ocipack";
/// Their e-mail address: `.invalid` (RFC 2606), because no mailbox answers for a tool.
pub const IDENTITY_EMAIL: &str = "ocipack@ocipack.invalid";

/// One architecture's layout, committed (or about to be).
#[derive(Debug, Clone)]
pub struct DistCommit {
    /// The bashbrew architecture.
    pub arch: String,
    /// `refs/heads/<branch>`.
    pub refname: String,
    /// The branch's tip before (the parent), if it existed.
    pub old: Option<String>,
    /// The commit the branch points to afterwards (the old tip when unchanged).
    pub commit: String,
    /// The layout's tree.
    pub tree: String,
    /// False when the tip already had this tree: no commit was made.
    pub changed: bool,
    /// `created`, the commit's date.
    pub created: Timestamp,
    /// The layout's directory from the repository root.
    pub directory: String,
    /// What was built.
    pub built: BuiltImage,
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
    let out = git(dir).output(&["rev-parse", "--verify", "--quiet", refname])?;
    if !out.status.success() {
        return Ok(None);
    }
    let oid = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let kind = ask(dir, &["cat-file", "-t", &oid])?;
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

/// Builds each architecture's layout into a staging directory inside the git directory,
/// writes its objects and makes its commit, without moving any branch ([`publish`] does).
/// With `dry_run`, nothing is written to the repository: only the tree ids are computed
/// (for `build --check`).
pub fn prepare(
    project_dir: &Path,
    images: &[ArchTarget],
    pattern: &str,
    arches: &[String],
    dry_run: bool,
) -> Result<Vec<DistCommit>> {
    check_branch_pattern(pattern, arches)
        .map_err(|p| Error::input(format!("commit branch \"{}\"", show::text(pattern)), p))?;
    let git_info = Git::open(project_dir)?;
    let top = git(project_dir).query_path(&["rev-parse", "--show-toplevel"])?;
    let busy = checked_out(project_dir)?;
    let git_dir = git(project_dir).query_path(&["rev-parse", "--absolute-git-dir"])?;
    let git_root = Root::open_with(&git_dir, Follow::Never)
        .map_err(|e| Error::io("opening the git directory", &git_dir, e))?;
    let made = make_commits(
        &top, &git_info, &git_dir, &git_root, images, pattern, &busy, dry_run,
    );
    // The staging directories are gone; their parent goes too, once empty.
    let _ = rustix::fs::unlinkat(git_root.fd(), "ocipack", rustix::fs::AtFlags::REMOVEDIR);
    made
}

#[allow(clippy::too_many_arguments)]
fn make_commits(
    top: &Path,
    git_info: &Git,
    git_dir: &Path,
    git_root: &Root,
    images: &[ArchTarget],
    pattern: &str,
    busy: &[String],
    dry_run: bool,
) -> Result<Vec<DistCommit>> {
    let mut out = Vec::new();
    for t in images {
        let branch = pattern.replace("{arch}", &t.arch);
        let refname = format!("refs/heads/{branch}");
        ask(top, &["check-ref-format", &refname]).map_err(|_| {
            Error::input(
                format!("commit branch \"{}\"", show::text(&branch)),
                "git refuses it as a branch name",
            )
        })?;
        if busy.contains(&refname) {
            return Err(Error::input(
                format!("commit branch {}", show::text(&branch)),
                "is checked out in a work tree; ocipack never moves a checked-out branch \
                 (it would leave that work tree out of step with its branch)",
            ));
        }
        let old = branch_tip(top, &refname)?;
        let target = Target::beneath(
            git_root,
            &format!("ocipack/{}", t.arch),
            true,
            &format!("staging for {refname} in {}", show::path(git_dir)),
        )?;
        let (writer, built) = image::prepare_image(&t.spec, &target, None)?;
        let staged = writer.stage()?;
        let layout_tree = write_tree(top, staged.root(), "", dry_run)?;
        drop(staged);
        let directory = format!("{}{}", git_info.prefix(), t.output_rel);
        let tree = wrap_tree(top, &directory, &layout_tree, dry_run)?;
        let created = t.spec.created();
        let unchanged = match &old {
            Some(o) => ask(top, &["rev-parse", &format!("{o}^{{tree}}")])? == tree,
            None => false,
        };
        let commit = if unchanged {
            old.clone().unwrap_or_default()
        } else if dry_run {
            String::new()
        } else {
            commit_tree(top, &tree, old.as_deref(), created, &t.arch, &built)?
        };
        out.push(DistCommit {
            arch: t.arch.clone(),
            refname,
            old,
            commit,
            tree,
            changed: !unchanged,
            created,
            directory,
            built,
        });
    }
    Ok(out)
}

/// Moves every changed branch to its new commit in one transaction, each guarded by the
/// tip it was built on (a branch that moved meanwhile fails the whole transaction).
pub fn publish(project_dir: &Path, commits: &[DistCommit]) -> Result<()> {
    let mut script = String::from("start\n");
    for c in commits.iter().filter(|c| c.changed) {
        match &c.old {
            Some(old) => script.push_str(&format!("update {} {} {old}\n", c.refname, c.commit)),
            None => script.push_str(&format!("create {} {}\n", c.refname, c.commit)),
        }
    }
    script.push_str("prepare\ncommit\n");
    if commits.iter().all(|c| !c.changed) {
        return Ok(());
    }
    git(project_dir)
        .write(
            &[
                "update-ref",
                "-m",
                "ocipack build --commit-branch",
                "--stdin",
            ],
            &[],
            &mut script.as_bytes(),
        )
        .map(|_| ())
}

/// Hashes one object (`-w`: written, unless `dry_run`).
fn hash_object(dir: &Path, input: &mut (dyn Read + Send), dry_run: bool) -> Result<String> {
    let mut args = vec!["hash-object", "--no-filters", "--stdin"];
    if !dry_run {
        args.insert(1, "-w");
    }
    git(dir).write(&args, &[], input)
}

/// One tree entry for `git mktree -z`.
fn entry(mode: &str, kind: &str, oid: &str, name: &[u8]) -> Vec<u8> {
    let mut e = format!("{mode} {kind} {oid}\t").into_bytes();
    e.extend_from_slice(name);
    e.push(0);
    e
}

fn mktree(dir: &Path, entries: &[Vec<u8>], dry_run: bool) -> Result<String> {
    let input: Vec<u8> = entries.concat();
    let args: &[&str] = if dry_run {
        &["mktree", "-z", "--missing"]
    } else {
        &["mktree", "-z"]
    };
    git(dir).write(args, &[], &mut input.as_slice())
}

/// Writes the staged directory `rel` of `root` as a tree; its id.
fn write_tree(repo: &Path, root: &Root, rel: &str, dry_run: bool) -> Result<String> {
    let list = root
        .list_dir_bytes(rel)
        .map_err(|e| Error::input(root.shown(rel), e.to_string()))?
        .unwrap_or_default();
    let mut entries = Vec::new();
    for (name, kind) in list {
        let name_s = String::from_utf8_lossy(&name).into_owned();
        let path = if rel.is_empty() {
            name_s
        } else {
            format!("{rel}/{name_s}")
        };
        let fail =
            |e: crate::store::root::OpenError| Error::input(root.shown(&path), e.to_string());
        let e = match kind {
            EntryType::File => {
                let mut f = root.open_file(&path).map_err(fail)?;
                let oid = hash_object(repo, &mut f.file, dry_run)?;
                entry("100644", "blob", &oid, &name)
            }
            EntryType::Symlink => {
                let target = root.read_link(&path).map_err(fail)?;
                let oid = hash_object(repo, &mut target.as_slice(), dry_run)?;
                entry("120000", "blob", &oid, &name)
            }
            EntryType::Dir => {
                let oid = write_tree(repo, root, &path, dry_run)?;
                entry("040000", "tree", &oid, &name)
            }
            EntryType::Other(k) => {
                return Err(Error::input(
                    root.shown(&path),
                    format!("is a {k}, which git cannot store"),
                ));
            }
        };
        entries.push(e);
    }
    mktree(repo, &entries, dry_run)
}

/// The tree holding `tree` at `directory` (`a/b/c`), made from the innermost outwards.
fn wrap_tree(repo: &Path, directory: &str, tree: &str, dry_run: bool) -> Result<String> {
    let mut oid = tree.to_string();
    for name in directory.rsplit('/').filter(|c| !c.is_empty()) {
        oid = mktree(
            repo,
            &[entry("040000", "tree", &oid, name.as_bytes())],
            dry_run,
        )?;
    }
    Ok(oid)
}

/// The commit message: fixed, from what was built.
pub fn message(arch: &str, built: &BuiltImage, created: Timestamp) -> String {
    format!(
        "{arch}: OCI layout {}\n\nlayer {} ({})\ncreated {created}\n\nWritten by ocipack build --commit-branch.\n",
        built.image.entry.digest, built.layer.digest, built.layer.compression
    )
}

fn commit_tree(
    repo: &Path,
    tree: &str,
    parent: Option<&str>,
    created: Timestamp,
    arch: &str,
    built: &BuiltImage,
) -> Result<String> {
    let date = format!("@{} +0000", created.unix());
    let env = [
        ("GIT_AUTHOR_NAME", IDENTITY_NAME.to_string()),
        ("GIT_AUTHOR_EMAIL", IDENTITY_EMAIL.to_string()),
        ("GIT_AUTHOR_DATE", date.clone()),
        ("GIT_COMMITTER_NAME", IDENTITY_NAME.to_string()),
        ("GIT_COMMITTER_EMAIL", IDENTITY_EMAIL.to_string()),
        ("GIT_COMMITTER_DATE", date),
    ];
    let mut args = vec!["commit-tree", "--no-gpg-sign", tree];
    if let Some(p) = parent {
        args.extend(["-p", p]);
    }
    args.extend(["-F", "-"]);
    let msg = message(arch, built, created);
    git(repo).write(&args, &env, &mut msg.as_bytes())
}

/// The dist branches of a project as `ocipack library` names them: per architecture, the
/// branch's tip if it holds the layout at `directory`.
pub fn library_tips(
    project_dir: &Path,
    pattern: &str,
    arches: &[String],
    directory: impl Fn(&str) -> String,
) -> Result<BTreeMap<String, (String, String)>> {
    check_branch_pattern(pattern, arches)
        .map_err(|p| Error::input(format!("commit branch \"{}\"", show::text(pattern)), p))?;
    let mut out = BTreeMap::new();
    for a in arches {
        let refname = format!("refs/heads/{}", pattern.replace("{arch}", a));
        let Some(tip) = branch_tip(project_dir, &refname)? else {
            continue;
        };
        let probe = format!("{tip}:{}/oci-layout", directory(a));
        let has = git(project_dir).output(&["cat-file", "-e", &probe])?;
        if has.status.success() {
            out.insert(a.clone(), (refname, tip));
        }
    }
    Ok(out)
}
