//! `ocipack completions SHELL` and `ocipack man [--dir DIR | --markdown]`: generated at run time from the
//! clap definition in this module tree, so they always match the binary. The output depends
//! only on that definition and the clap_complete / clap_mangen versions (no date, no host).

use std::path::PathBuf;

use clap::{Args, CommandFactory, ValueEnum};

use ocipack::{Error, Result};

use super::out;

/// Arguments of `ocipack completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to print a completion script for.
    #[arg(value_enum)]
    shell: Shell,
}

/// The shells completion scripts are made for.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum Shell {
    /// bash: `ocipack completions bash > /usr/share/bash-completion/completions/ocipack`.
    Bash,
    /// zsh: `ocipack completions zsh > /usr/share/zsh/vendor-completions/_ocipack`.
    Zsh,
    /// fish: `ocipack completions fish > /usr/share/fish/vendor_completions.d/ocipack.fish`.
    Fish,
}

/// Arguments of `ocipack man`.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write one page per command into the existing directory DIR (ocipack.1,
    /// ocipack-build.1, ...), replacing pages of the same names, instead of printing
    /// ocipack.1 on stdout.
    #[arg(long, value_name = "DIR", value_hint = clap::ValueHint::DirPath)]
    dir: Option<PathBuf>,
    /// Print the command-line reference as Markdown instead of the man page: every command,
    /// argument and option with its default and meaning (ocipack's docs/reference/cli.md).
    #[arg(long, conflicts_with = "dir")]
    markdown: bool,
}

/// The man pages' date (`.TH`), fixed so that the pages never depend on when they were made:
/// the date the command line last changed in a way the pages show. Bump it with such changes.
const MAN_DATE: &str = "2026-12-07";

/// The whole command definition, as `--help` sees it.
fn command() -> clap::Command {
    super::Cli::command()
}

fn to_stdout(bytes: &[u8]) -> Result<u8> {
    super::out_raw!("{}", String::from_utf8_lossy(bytes));
    Ok(0)
}

pub fn run_completions(a: CompletionsArgs) -> Result<u8> {
    let shell = match a.shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command(), "ocipack", &mut script);
    to_stdout(&script)
}

/// Every page: `ocipack.1` first, then one per (non-hidden) subcommand, depth first.
fn pages() -> Result<Vec<(String, Vec<u8>)>> {
    fn add(cmd: clap::Command, out: &mut Vec<(String, Vec<u8>)>) -> std::io::Result<()> {
        let man = clap_mangen::Man::new(cmd.clone())
            .date(MAN_DATE)
            .source(concat!("ocipack ", env!("CARGO_PKG_VERSION")))
            .manual("ocipack manual");
        let mut page = Vec::new();
        man.render(&mut page)?;
        out.push((man.get_filename(), tidy(page)));
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            add(sub.clone(), out)?;
        }
        Ok(())
    }
    let mut cmd = command().disable_help_subcommand(true);
    cmd.build();
    let mut out = Vec::new();
    add(cmd, &mut out).map_err(|e| Error::io_on("rendering", "the man pages", e))?;
    Ok(out)
}

/// clap_mangen separates an option's help from its list of possible values with `.br`, an
/// empty line (an implicit `.sp`) and `.br` again, which `mandoc -T lint` reports as
/// paragraph macros it skips; one `.sp` renders the same.
fn tidy(page: Vec<u8>) -> Vec<u8> {
    match String::from_utf8(page) {
        Ok(text) => text.replace("\n.br\n\n.br\n", "\n.sp\n").into_bytes(),
        Err(e) => e.into_bytes(),
    }
}

pub fn run_man(a: ManArgs) -> Result<u8> {
    if a.markdown {
        return to_stdout(super::reference::markdown(command()).as_bytes());
    }
    let pages = pages()?;
    match a.dir {
        None => to_stdout(&pages[0].1),
        Some(dir) => {
            ocipack::store::files::write_into(&dir, &pages)?;
            for (name, _) in &pages {
                out!("{}", ocipack::show::path(&dir.join(name)));
            }
            Ok(0)
        }
    }
}
