//! `ocipack library [DIR] [--allow-dirty] [--commit-branch PATTERN]`

use std::path::PathBuf;

use clap::Args;

use super::out_raw;

use ocipack::Result;
use ocipack::project::library::LibraryOptions;

/// Arguments of `ocipack library`.
#[derive(Debug, Args)]
#[command(
    after_help = "One entry per image (with [[images]]), Architectures in bashbrew's order, \
Directory: when every architecture's layout is at the same path, else <arch>-Directory:. \
GitFetch: is [library] git-fetch, else the branch HEAD is on (a detached HEAD is an error). \
Each architecture's GitCommit is the newest commit touching its output directory (one \
entry-level GitCommit when they agree), or with a commit branch the tip of its dist branch, \
with <arch>-GitFetch: and <arch>-GitCommit: (in the header when the pattern has no {image}, \
in each entry when it has).\n\
Exit status: 0 printed; 1 an output has uncommitted changes, is ignored or differs from HEAD \
(no commit contains it; --allow-dirty overrides); 2 usage or input error."
)]
pub struct LibraryArgs {
    /// The project directory (holding ocipack.toml), inside a git work tree.
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// Name the newest commits even when outputs have uncommitted changes (a warning on
    /// stderr lists them).
    #[arg(long)]
    allow_dirty: bool,
    /// The layouts are on dist branches made by `ocipack build --commit-branch PATTERN`
    /// (e.g. 'dist-{arch}'); default: [library] commit-branch.
    #[arg(long, value_name = "PATTERN")]
    commit_branch: Option<String>,
}

pub fn run(a: LibraryArgs) -> Result<u8> {
    let opts = LibraryOptions {
        allow_dirty: a.allow_dirty,
        commit_branch: a.commit_branch,
    };
    let out = ocipack::project::library::library(&a.dir, &opts)?;
    for w in &out.warnings {
        eprintln!("ocipack: warning: {}", ocipack::show::line(w));
    }
    out_raw!("{}", out.text);
    Ok(0)
}
