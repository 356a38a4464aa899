//! git: the one way ocipack runs it, what it knows about a project (the newest commit
//! touching some paths, whether they have uncommitted changes, where the project sits in
//! its repository), and git's rules for the names ocipack writes into a repository.
//!
//! Every git command goes through [`Runner`] (pathspecs taken literally, the variables that
//! would point git at another repository removed, no hook run, output that ocipack parses
//! kept free of signatures, colours and pagers). A question git cannot answer truthfully is
//! an error, never a guess: uncommitted changes, paths never committed, and a shallow clone
//! whose cut-off commit is the one that would be named (its missing parent makes it look as
//! if it touched everything).
//!
//! Exit codes, the one convention for every git command:
//! - git that cannot be run at all (not installed, cannot be started, killed by a signal)
//!   is a failed operation: [`Error::Command`], exit 1.
//! - a question git refuses to answer ([`Runner::query`]: `rev-parse`, `status`, `log`,
//!   `cat-file`, `worktree list`, …) is about the repository the user pointed ocipack at —
//!   not a repository, an unknown revision, a broken ref: an input error
//!   ([`Error::Input`], exit 2) naming the command and the directory, with git's message.
//! - a write git refuses ([`Runner::write`]: `hash-object`, `mktree`, `commit-tree`,
//!   `update-ref`) comes after the questions about the repository were answered, so it is
//!   the operation that failed (a full disk, an object directory that cannot be written, a
//!   branch moved meanwhile): [`Error::Command`], exit 1.
//!
//! What ocipack itself concludes from git's answers decides its own exit code where it is
//! raised (an input with uncommitted changes is an input error; `ocipack library` checking
//! that its outputs are committed is a failed check).

use std::ffi::OsString;
use std::io::{BufRead, Read, Write};
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::error::{Error, Result};
use crate::settings::check_template;
use crate::show;
use crate::timestamp::Timestamp;

/// The variables that point git at a repository, or parts of one, other than the one
/// holding its directory (`git rev-parse --local-env-vars` but the configuration ones,
/// which [`Runner::pinned`] removes): every git ocipack runs has them removed.
const REPOSITORY_VARIABLES: &[&str] = &[
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_IMPLICIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_GRAFT_FILE",
    "GIT_SHALLOW_FILE",
    "GIT_NO_REPLACE_OBJECTS",
    "GIT_REPLACE_REF_BASE",
    "GIT_PREFIX",
    "GIT_CONFIG",
];

/// The most of git's standard error kept for a message.
const MAX_STDERR: u64 = 64 * 1024;

/// How ocipack runs git in one directory (see the module documentation).
#[derive(Debug, Clone)]
pub struct Runner {
    dir: PathBuf,
    /// No user or system configuration is read, and commit messages are UTF-8: for
    /// writers whose results must depend on nothing but their inputs.
    pinned: bool,
}

impl Runner {
    /// `git -C dir`, reading the user's configuration (`safe.directory`, for one) apart from
    /// the settings that change what ocipack parses (`log.showSignature`, colour, pagers).
    pub fn new(dir: &Path) -> Runner {
        Runner {
            dir: dir.to_path_buf(),
            pinned: false,
        }
    }

    /// [`Runner::new`] with no user or system configuration at all (`GIT_CONFIG_NOSYSTEM`,
    /// `GIT_CONFIG_GLOBAL=/dev/null`), for commits that must be the same on every machine.
    pub fn pinned(dir: &Path) -> Runner {
        Runner {
            dir: dir.to_path_buf(),
            pinned: true,
        }
    }

    fn command(&self) -> Command {
        let mut c = Command::new("git");
        c.arg("-C")
            .arg(&self.dir)
            .args(["-c", "log.showSignature=false", "-c", "color.ui=false"])
            // No hook runs: `update-ref` would run the repository's reference-transaction
            // hook (from .git/hooks or core.hooksPath) for every dist branch it moves.
            .args(["-c", "core.hooksPath=/dev/null"])
            .arg("--no-pager")
            .env("GIT_LITERAL_PATHSPECS", "1");
        // git is asked about the repository holding `dir`, and nothing else: the variables
        // that point it at another one (`git rev-parse --local-env-vars`, which git itself
        // clears when it runs in another repository) are removed. GIT_OBJECT_DIRECTORY,
        // say, would have dist commits written to another object store and the branches
        // here pointed at commits this repository does not have.
        for v in REPOSITORY_VARIABLES {
            c.env_remove(v);
        }
        if self.pinned {
            // Nor any configuration given through the environment (`git -c` of a parent
            // git, GIT_CONFIG_COUNT).
            c.args(["-c", "i18n.commitEncoding=UTF-8"])
                .env("GIT_CONFIG_NOSYSTEM", "1")
                .env("GIT_CONFIG_GLOBAL", "/dev/null")
                .env_remove("GIT_CONFIG_PARAMETERS")
                .env_remove("GIT_CONFIG_COUNT");
        }
        c
    }

    /// `git ARGS (in DIR)`, escaped, for messages.
    fn shown(&self, args: &[&str]) -> String {
        format!(
            "git {} (in {})",
            show::text(&args.join(" ")),
            show::path(&self.dir)
        )
    }

    /// Runs git with `env` set and `input` on its standard input; its exit status and
    /// output. An error only when git could not be run or was killed.
    fn run(
        &self,
        args: &[&str],
        env: &[(&str, String)],
        input: Option<&mut (dyn Read + Send)>,
    ) -> Result<Output> {
        let mut c = self.command();
        c.args(args)
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            c.env(k, v);
        }
        let failed = |problem: String| Error::command("git", self.shown(args), problem);
        let mut child = c
            .spawn()
            .map_err(|e| failed(format!("cannot be run: {e}")))?;
        let stdin = child.stdin.take();
        // Fed from a thread while the output is collected: neither side can block the other.
        let (out, fed) = std::thread::scope(|s| {
            let feeder = input
                .zip(stdin)
                .map(|(input, mut stdin)| s.spawn(move || std::io::copy(input, &mut stdin)));
            let out = child.wait_with_output();
            let fed = feeder.map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(std::io::Error::other("the feeding thread panicked")))
            });
            (out, fed)
        });
        let out = out.map_err(|e| failed(format!("cannot be waited for: {e}")))?;
        if out.status.code().is_none() {
            return Err(failed(format!("was killed ({})", out.status)));
        }
        // A git that failed stopped reading: its own message says more than the broken pipe.
        if let Some(Err(e)) = fed
            && out.status.success()
        {
            return Err(failed(format!("its input could not be given: {e}")));
        }
        Ok(out)
    }

    /// Runs git; its exit status and output, whatever the status, for the caller to judge.
    pub fn output(&self, args: &[&str]) -> Result<Output> {
        self.run(args, &[], None)
    }

    /// A question about the repository (`paths` after `--`): git's standard output as it
    /// printed it, or an input error quoting its standard error.
    pub fn query_bytes(&self, args: &[&str], paths: &[String]) -> Result<Vec<u8>> {
        let mut all: Vec<&str> = args.to_vec();
        if !paths.is_empty() {
            all.push("--");
            all.extend(paths.iter().map(String::as_str));
        }
        let out = self.output(&all)?;
        if !out.status.success() {
            return Err(Error::input(
                self.shown(args),
                show::text(String::from_utf8_lossy(&out.stderr).trim()),
            ));
        }
        Ok(out.stdout)
    }

    /// [`Runner::query_bytes`], which must be UTF-8 text.
    pub fn query(&self, args: &[&str], paths: &[String]) -> Result<String> {
        String::from_utf8(self.query_bytes(args, paths)?)
            .map_err(|_| Error::input(self.shown(args), "printed something that is not UTF-8"))
    }

    /// A question whose answer is one path (`rev-parse --show-toplevel`), taken as bytes.
    pub fn query_path(&self, args: &[&str]) -> Result<PathBuf> {
        let mut out = self.query_bytes(args, &[])?;
        if out.last() == Some(&b'\n') {
            out.pop();
        }
        Ok(PathBuf::from(OsString::from_vec(out)))
    }

    /// A question whose answer is too large to hold in memory (`cat-file --batch` of a
    /// layout's blobs): git runs with `input` on its standard input while `read` consumes
    /// its standard output as it comes. When git fails, the answer is an input error quoting
    /// its standard error, as for [`Runner::query`]; when `read` fails (an answer it
    /// refuses, a bound exceeded), git is killed and `read`'s error returned.
    pub fn query_stream<T>(
        &self,
        args: &[&str],
        input: &[u8],
        read: impl FnOnce(&mut dyn BufRead) -> Result<T>,
    ) -> Result<T> {
        let failed = |problem: String| Error::command("git", self.shown(args), problem);
        let mut child = self
            .command()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| failed(format!("cannot be run: {e}")))?;
        let (stdin, stdout, stderr) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take());
        let (read_result, status, err_text) = std::thread::scope(|s| {
            // Fed and drained from threads: neither pipe can block git while it is read.
            let feeder = stdin.map(|mut stdin| s.spawn(move || stdin.write_all(input)));
            let errors = stderr.map(|mut e| {
                s.spawn(move || {
                    let mut text = Vec::new();
                    let _ = (&mut e).take(MAX_STDERR).read_to_end(&mut text);
                    let _ = std::io::copy(&mut e, &mut std::io::sink());
                    text
                })
            });
            let mut out = std::io::BufReader::new(stdout.expect("stdout is piped"));
            let result = read(&mut out);
            if result.is_err() {
                let _ = child.kill();
            } else {
                // Whatever git printed beyond what was read goes nowhere.
                let _ = std::io::copy(&mut out, &mut std::io::sink());
            }
            drop(out);
            let status = child.wait();
            if let Some(f) = feeder {
                let _ = f.join();
            }
            let text = errors.and_then(|h| h.join().ok()).unwrap_or_default();
            (result, status, text)
        });
        let status = status.map_err(|e| failed(format!("cannot be waited for: {e}")))?;
        match status.code() {
            // git failed on its own: its message says more than a truncated answer.
            Some(code) if code != 0 => Err(Error::input(
                self.shown(args),
                show::text(String::from_utf8_lossy(&err_text).trim()),
            )),
            None if read_result.is_ok() => Err(failed(format!("was killed ({status})"))),
            _ => read_result,
        }
    }

    /// An operation on the repository, with `env` set and `input` on standard input: git's
    /// standard output, trimmed, or [`Error::Command`] quoting its standard error.
    pub fn write(
        &self,
        args: &[&str],
        env: &[(&str, String)],
        input: &mut (dyn Read + Send),
    ) -> Result<String> {
        let out = self.run(args, env, Some(input))?;
        if !out.status.success() {
            return Err(Error::command(
                "git",
                self.shown(args),
                show::text(String::from_utf8_lossy(&out.stderr).trim()),
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }
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
    git: Runner,
    /// The path in the repository; `Err` holds it as git printed it when it is not UTF-8.
    prefix: std::result::Result<String, Vec<u8>>,
}

impl Git {
    /// Opens the work tree holding `dir`; an error if `dir` is not inside one.
    pub fn open(dir: &Path) -> Result<Git> {
        let mut git = Git {
            dir: dir.to_path_buf(),
            git: Runner::new(dir),
            prefix: Ok(String::new()),
        };
        let out = git.git.output(&["rev-parse", "--show-prefix"])?;
        if !out.status.success() {
            let why = String::from_utf8_lossy(&out.stderr);
            return Err(Error::input(
                show::path(dir),
                format!(
                    "is not inside a git work tree ({})",
                    why.lines().next().unwrap_or("git rev-parse failed").trim()
                ),
            ));
        }
        let mut raw = out.stdout;
        if raw.last() == Some(&b'\n') {
            raw.pop();
        }
        git.prefix = String::from_utf8(raw).map_err(|e| e.into_bytes());
        // The prefix is written into the library file and dist directories: a directory name
        // holding a line end could forge their lines.
        if let Ok(p) = &git.prefix
            && p.contains(char::is_control)
        {
            return Err(Error::input(
                show::path(dir),
                format!(
                    "its path in the repository, \"{}\", holds a control character",
                    show::text(p)
                ),
            ));
        }
        Ok(git)
    }

    /// The directory's path relative to the repository root, empty or ending in `/`: the
    /// prefix of every `Directory:` line and of every path in a dist commit. A path that is
    /// not UTF-8 is refused here, never replaced: the library file is UTF-8 text, and a name
    /// with U+FFFD in it would send bashbrew to a directory that does not exist.
    pub fn prefix(&self) -> Result<&str> {
        self.prefix.as_deref().map_err(|raw| {
            Error::input(
                show::path(&self.dir),
                format!(
                    "its path in the repository, \"{}\", is not UTF-8: the library file \
                     names directories as UTF-8 text, so neither `ocipack library` nor a dist \
                     commit can name it (rename the directory)",
                    show::bytes(raw)
                ),
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
        let out = self.git.query(&args, paths)?;
        Ok(out.lines().map(str::to_string).collect())
    }

    /// The branch `HEAD` is on (`refs/heads/main`), `None` on a detached `HEAD`.
    pub fn current_branch(&self) -> Result<Option<String>> {
        let out = self.git.output(&["symbolic-ref", "-q", "HEAD"])?;
        let name = String::from_utf8_lossy(&out.stdout).trim().to_string();
        Ok((out.status.success() && name.starts_with("refs/heads/")).then_some(name))
    }

    /// The commit `HEAD` names (a shallow clone has it, whatever its history lacks).
    pub fn head(&self) -> Result<String> {
        let out = self
            .git
            .query(&["rev-parse", "--verify", "HEAD^{commit}"], &[])?;
        Ok(out.trim().to_string())
    }

    /// Whether `commit` is reachable from `refname` in this repository: `None` when the ref
    /// does not exist here (nothing can be said), else `git merge-base --is-ancestor`.
    pub fn reachable_from(&self, commit: &str, refname: &str) -> Result<Option<bool>> {
        let tip = self.git.output(&[
            "rev-parse",
            "--verify",
            "-q",
            &format!("{refname}^{{commit}}"),
        ])?;
        if !tip.status.success() {
            return Ok(None);
        }
        let out = self
            .git
            .output(&["merge-base", "--is-ancestor", commit, refname])?;
        match out.status.code() {
            Some(0) => Ok(Some(true)),
            Some(1) => Ok(Some(false)),
            _ => Err(Error::input(
                self.git
                    .shown(&["merge-base", "--is-ancestor", commit, refname]),
                show::text(String::from_utf8_lossy(&out.stderr).trim()),
            )),
        }
    }

    /// The commits at which a shallow clone's history is cut off (empty if not shallow).
    pub fn shallow_boundaries(&self) -> Result<Vec<String>> {
        let shallow = self
            .git
            .query(&["rev-parse", "--is-shallow-repository"], &[])?;
        if shallow.trim() != "true" {
            return Ok(Vec::new());
        }
        let file = self
            .git
            .query_path(&["rev-parse", "--git-path", "shallow"])?;
        let file = self.dir.join(file);
        let text = crate::store::root::read_named(&file, 1024 * 1024)
            .map_err(|e| std::io::Error::other(e.to_string()))
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .map_err(|e| Error::input_io("reading shallow list", &file, e))?;
        Ok(text.lines().map(|l| l.trim().to_string()).collect())
    }

    /// The newest commit (from `HEAD`) touching any of `paths`, if any.
    pub fn newest_commit(&self, paths: &[String]) -> Result<Option<Commit>> {
        let out = self
            .git
            .query(&["log", "-1", "--format=%H %ct", "HEAD"], paths)?;
        let Some(line) = out.lines().next() else {
            return Ok(None);
        };
        let bad = || {
            Error::input(
                "git log",
                format!("unexpected output \"{}\"", show::text(line)),
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

/// Checks a branch template: `{arch}` the only placeholder, required when there are
/// several architectures (each needs its own branch), and every expansion a valid branch
/// name.
pub fn check_branch_pattern(pattern: &str, arches: &[String]) -> std::result::Result<(), String> {
    check_template(pattern, &["arch"])?;
    if arches.len() > 1 && !pattern.contains("{arch}") {
        return Err(format!(
            "\"{}\" must contain {{arch}}: each of the {} architectures needs its own branch",
            show::text(pattern),
            arches.len()
        ));
    }
    for a in arches {
        let name = pattern.replace("{arch}", a);
        check_branch_name(&name).map_err(|why| {
            format!(
                "\"{}\" is not a valid branch name: {why}",
                show::text(&name)
            )
        })?;
    }
    Ok(())
}

/// git's rules for a branch name (`git check-ref-format --branch`), as a pure function.
pub fn check_branch_name(name: &str) -> std::result::Result<(), &'static str> {
    if name.is_empty() {
        return Err("it is empty");
    }
    if name.starts_with('-') {
        return Err("it starts with '-'");
    }
    if name == "@" || name == "HEAD" {
        return Err("it is reserved");
    }
    if name.starts_with("refs/") {
        return Err("give the name without refs/heads/");
    }
    if name.ends_with('/') || name.ends_with('.') {
        return Err("it ends with '/' or '.'");
    }
    if name.contains("..") || name.contains("//") || name.contains("@{") {
        return Err("it contains '..', '//' or '@{'");
    }
    if name
        .bytes()
        .any(|b| b < 0x20 || b == 0x7f || b" ~^:?*[\\".contains(&b))
    {
        return Err("it contains a space, a control character or one of ~^:?*[\\");
    }
    for c in name.split('/') {
        if c.starts_with('.') || c.ends_with(".lock") {
            return Err("a component starts with '.' or ends with '.lock'");
        }
    }
    Ok(())
}

/// bashbrew's rule for an entry's `GitFetch:`: `refs/heads/…` or `refs/tags/…`, without
/// `*`, `?` or `:`.
pub fn check_git_fetch(s: &str) -> std::result::Result<(), String> {
    let rest = s
        .strip_prefix("refs/heads/")
        .or_else(|| s.strip_prefix("refs/tags/"));
    // A ref's name by git's rules: a revision expression (`main~0`, `main@{1}`) resolves
    // here but is nothing bashbrew can fetch.
    match rest.map(|r| (r, check_branch_name(r))) {
        Some((_, Ok(()))) => Ok(()),
        Some((r, Err(why))) if !r.is_empty() => Err(format!(
            "\"{}\" is not a ref name bashbrew can fetch: {why} (refs/heads/<branch> or \
             refs/tags/<tag>)",
            show::text(s)
        )),
        _ => Err(format!(
            "\"{}\": bashbrew needs \"refs/heads/<branch>\" or \"refs/tags/<tag>\" (without *, ? or :)",
            show::text(s)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A question git refuses is about the user's directory (exit 2); a write git refuses
    /// is a failed operation (exit 1); both name the command and the directory.
    #[test]
    fn the_exit_code_convention() {
        let t = tempfile::tempdir().unwrap();
        let e = Runner::new(t.path())
            .query(&["rev-parse", "--show-toplevel"], &[])
            .unwrap_err();
        assert_eq!(e.exit_code(), 2, "{e}");
        assert!(matches!(e, Error::Input { .. }), "{e:?}");
        let shown = format!("git rev-parse --show-toplevel (in {})", t.path().display());
        assert!(e.to_string().starts_with(&shown), "{e}");

        let git = Runner::pinned(t.path());
        git.write(&["init", "-q"], &[], &mut std::io::empty())
            .unwrap();
        let e = git
            .write(&["mktree", "-z"], &[], &mut &b"not a tree entry\0"[..])
            .unwrap_err();
        assert_eq!(e.exit_code(), 1, "{e}");
        let Error::Command {
            program, command, ..
        } = &e
        else {
            panic!("{e:?}");
        };
        assert_eq!(
            (program.as_str(), command.as_str()),
            (
                "git",
                &*format!("git mktree -z (in {})", t.path().display())
            )
        );
    }

    /// Input larger than a pipe holds is fed while the output is read: nothing blocks, and
    /// git sees all of it.
    #[test]
    fn large_input_is_fed_whole() {
        let t = tempfile::tempdir().unwrap();
        let git = Runner::pinned(t.path());
        git.write(&["init", "-q"], &[], &mut std::io::empty())
            .unwrap();
        let big = vec![b'x'; 3 << 20];
        let oid = git
            .write(&["hash-object", "-w", "--stdin"], &[], &mut big.as_slice())
            .unwrap();
        let size = git.query(&["cat-file", "-s", &oid], &[]).unwrap();
        assert_eq!(size.trim(), (3u64 << 20).to_string());
        let top = git.query_path(&["rev-parse", "--show-toplevel"]).unwrap();
        assert_eq!(top, t.path().canonicalize().unwrap());
    }

    fn arches(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn branch_patterns() {
        let two = arches(&["amd64", "arm64v8"]);
        assert!(check_branch_pattern("dist-{arch}", &two).is_ok());
        assert!(check_branch_pattern("dist/{arch}/oci", &two).is_ok());
        let e = check_branch_pattern("dist", &two).unwrap_err();
        assert!(e.contains("must contain {arch}"), "{e}");
        assert!(check_branch_pattern("dist", &arches(&["amd64"])).is_ok());
        let e = check_branch_pattern("dist-{variant}", &two).unwrap_err();
        assert!(e.contains("unknown placeholder {variant}"), "{e}");
        let e = check_branch_pattern("dist-{arch", &two).unwrap_err();
        assert!(e.contains("unmatched '{'"), "{e}");
        for bad in [
            "dist {arch}",
            "dist..{arch}",
            ".dist-{arch}",
            "dist-{arch}.lock",
            "dist-{arch}/",
            "dist~{arch}",
            "-{arch}",
            "refs/heads/{arch}",
            "a//{arch}",
            "x@{{arch}",
            "d\n{arch}",
        ] {
            assert!(check_branch_pattern(bad, &two).is_err(), "{bad:?}");
        }
    }
}
