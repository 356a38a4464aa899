//! What git knows about a project: the newest commit touching some paths, whether they have
//! uncommitted changes, and where the project sits in its repository.
//!
//! Everything goes through the `git` command (pathspecs taken literally). A question git
//! cannot answer truthfully is an error, never a guess: uncommitted changes, paths never
//! committed, and a shallow clone whose cut-off commit is the one that would be named (its
//! missing parent makes it look as if it touched everything).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{Error, Result};
use crate::timestamp::Timestamp;

/// `git -C dir`, the one way ocipack runs git: pathspecs taken literally, the environment
/// variables that would point git at another repository, index or work tree removed, and
/// the settings that change what ocipack parses turned off (`log.showSignature` puts
/// signature lines before `git log`'s output; colour and pagers never apply). The user's
/// configuration is otherwise read (`safe.directory`, for one); writers that must not
/// depend on it at all pin more ([`super::dist`]).
pub(crate) fn command(dir: &Path) -> Command {
    let mut c = Command::new("git");
    c.arg("-C")
        .arg(dir)
        .args(["-c", "log.showSignature=false", "-c", "color.ui=false"])
        .arg("--no-pager")
        .env("GIT_LITERAL_PATHSPECS", "1")
        .env_remove("GIT_DIR")
        .env_remove("GIT_INDEX_FILE")
        .env_remove("GIT_WORK_TREE");
    c
}

/// A commit: its id and committer time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit {
    /// The full commit id.
    pub id: String,
    /// The committer time.
    pub time: Timestamp,
}

/// A directory inside a git work tree.
#[derive(Debug, Clone)]
pub struct Git {
    dir: PathBuf,
    prefix: String,
}

impl Git {
    /// Opens the work tree holding `dir`; an error if `dir` is not inside one.
    pub fn open(dir: &Path) -> Result<Git> {
        let mut git = Git {
            dir: dir.to_path_buf(),
            prefix: String::new(),
        };
        let out = git.run_raw(&["rev-parse", "--show-prefix"])?;
        if !out.status.success() {
            let why = String::from_utf8_lossy(&out.stderr);
            return Err(Error::input(
                crate::show::path(dir),
                format!(
                    "is not inside a git work tree ({})",
                    why.lines().next().unwrap_or("git rev-parse failed").trim()
                ),
            ));
        }
        git.prefix = String::from_utf8_lossy(&out.stdout).trim_end().to_string();
        // The prefix is written into the library file and dist directories: a directory name
        // holding a line end could forge their lines.
        if git.prefix.contains(char::is_control) {
            return Err(Error::input(
                crate::show::path(dir),
                format!(
                    "its path in the repository, \"{}\", holds a control character",
                    crate::show::text(&git.prefix)
                ),
            ));
        }
        Ok(git)
    }

    /// The directory's path relative to the repository root, empty or ending in `/`.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn run_raw(&self, args: &[&str]) -> Result<std::process::Output> {
        command(&self.dir)
            .args(args)
            .output()
            .map_err(|e| Error::io("running", "git", e))
    }

    /// Runs git; its stdout, or an error quoting its stderr.
    fn run(&self, args: &[&str], paths: &[String]) -> Result<String> {
        let mut all: Vec<&str> = args.to_vec();
        if !paths.is_empty() {
            all.push("--");
            all.extend(paths.iter().map(String::as_str));
        }
        let out = self.run_raw(&all)?;
        if !out.status.success() {
            return Err(Error::input(
                format!(
                    "git {} (in {})",
                    args.join(" "),
                    crate::show::path(&self.dir)
                ),
                crate::show::text(String::from_utf8_lossy(&out.stderr).trim()),
            ));
        }
        String::from_utf8(out.stdout).map_err(|_| {
            Error::input(
                format!("git {}", args.join(" ")),
                "printed something that is not UTF-8",
            )
        })
    }

    /// `git status --porcelain` lines for `paths` (relative to the directory): modified,
    /// staged, deleted or untracked. Empty when everything is committed.
    pub fn uncommitted(&self, paths: &[String]) -> Result<Vec<String>> {
        self.status(paths, false)
    }

    /// Like [`Git::uncommitted`]; with `ignored`, files git ignores are listed too (`!!`):
    /// no commit contains them either.
    pub fn status(&self, paths: &[String], ignored: bool) -> Result<Vec<String>> {
        let mut args = vec![
            "--no-optional-locks",
            "status",
            "--porcelain",
            "--untracked-files=all",
        ];
        if ignored {
            args.push("--ignored=matching");
        }
        let out = self.run(&args, paths)?;
        Ok(out.lines().map(str::to_string).collect())
    }

    /// The branch `HEAD` is on (`refs/heads/main`), `None` on a detached `HEAD`.
    pub fn current_branch(&self) -> Result<Option<String>> {
        let out = self.run_raw(&["symbolic-ref", "-q", "HEAD"])?;
        let name = String::from_utf8_lossy(&out.stdout).trim().to_string();
        Ok((out.status.success() && name.starts_with("refs/heads/")).then_some(name))
    }

    /// The commit `HEAD` names (a shallow clone has it, whatever its history lacks).
    pub fn head(&self) -> Result<String> {
        let out = self.run(&["rev-parse", "--verify", "HEAD^{commit}"], &[])?;
        Ok(out.trim().to_string())
    }

    /// Whether `commit` is reachable from `refname` in this repository: `None` when the ref
    /// does not exist here (nothing can be said), else `git merge-base --is-ancestor`.
    pub fn reachable_from(&self, commit: &str, refname: &str) -> Result<Option<bool>> {
        let tip = self.run_raw(&[
            "rev-parse",
            "--verify",
            "-q",
            &format!("{refname}^{{commit}}"),
        ])?;
        if !tip.status.success() {
            return Ok(None);
        }
        let out = self.run_raw(&["merge-base", "--is-ancestor", commit, refname])?;
        match out.status.code() {
            Some(0) => Ok(Some(true)),
            Some(1) => Ok(Some(false)),
            _ => Err(Error::input(
                format!("git merge-base --is-ancestor {commit} {refname}"),
                crate::show::text(String::from_utf8_lossy(&out.stderr).trim()),
            )),
        }
    }

    /// The commits at which a shallow clone's history is cut off (empty if not shallow).
    pub fn shallow_boundaries(&self) -> Result<Vec<String>> {
        let shallow = self.run(&["rev-parse", "--is-shallow-repository"], &[])?;
        if shallow.trim() != "true" {
            return Ok(Vec::new());
        }
        let file = self.run(&["rev-parse", "--git-path", "shallow"], &[])?;
        let file = self.dir.join(file.trim());
        let text = crate::store::root::read_named(&file, 1024 * 1024)
            .map_err(|e| std::io::Error::other(e.to_string()))
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .map_err(|e| Error::input_io("reading shallow list", &file, e))?;
        Ok(text.lines().map(|l| l.trim().to_string()).collect())
    }

    /// The newest commit (from `HEAD`) touching any of `paths`, if any.
    pub fn newest_commit(&self, paths: &[String]) -> Result<Option<Commit>> {
        let out = self.run(&["log", "-1", "--format=%H %ct", "HEAD"], paths)?;
        let Some(line) = out.lines().next() else {
            return Ok(None);
        };
        let bad = || {
            Error::input(
                "git log",
                format!("unexpected output \"{}\"", crate::show::text(line)),
            )
        };
        let (id, secs) = line.split_once(' ').ok_or_else(bad)?;
        let time = secs
            .parse::<i64>()
            .ok()
            .and_then(Timestamp::from_unix)
            .ok_or_else(bad)?;
        Ok(Some(Commit {
            id: id.to_string(),
            time,
        }))
    }

    /// The newest commit touching `paths`, checked to tell the truth about them: `what`
    /// names the paths in errors (uncommitted changes, never committed, shallow clone).
    pub fn last_change(&self, what: &str, paths: &[String]) -> Result<Commit> {
        let dirty = self.uncommitted(paths)?;
        if !dirty.is_empty() {
            return Err(Error::input(
                what,
                format!(
                    "has uncommitted changes, so no commit describes it (git status: {}); \
                     commit them first",
                    dirty.join("; ")
                ),
            ));
        }
        self.last_commit(what, paths)
    }

    /// The newest commit touching `paths` whatever the work tree holds: an error when they
    /// were never committed or a shallow clone cannot tell.
    pub fn last_commit(&self, what: &str, paths: &[String]) -> Result<Commit> {
        let commit = self.newest_commit(paths)?.ok_or_else(|| {
            Error::input(
                what,
                format!("was never committed ({} in git history)", paths.join(", ")),
            )
        })?;
        if self.shallow_boundaries()?.contains(&commit.id) {
            return Err(Error::input(
                what,
                format!(
                    "cannot be dated: this is a shallow clone whose history is cut off at \
                     commit {}, which git names as the last change whether or not it is; \
                     fetch the full history (git fetch --unshallow)",
                    commit.id
                ),
            ));
        }
        Ok(commit)
    }
}
