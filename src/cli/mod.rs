//! Command-line definitions and dispatch.

use clap::{Parser, Subcommand};

use ocipack::Result;

mod against;
mod build;
mod completions;
mod diff;
mod export;
mod fix;
mod image;
mod library;
mod platform;
mod pull;
mod push;
mod reference;
mod remote;
mod tls;
mod verify;

/// Byte-for-byte reproducible OCI image layouts for FROM-scratch images.
#[derive(Debug, Parser)]
#[command(name = "ocipack", version, about, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Build one image layout from files, a directory tree or a tar.
    Image(Box<image::ImageArgs>),
    /// Print the OCI platform of a bashbrew architecture name.
    Platform(platform::PlatformArgs),
    /// Build every output of a project (ocipack.toml), or one multi-platform layout (--index).
    Build(build::BuildArgs),
    /// Print the Docker Official Images library file of a project.
    Library(library::LibraryArgs),
    /// Push a layout's image, or a project's images and one index, to a registry, byte for byte.
    Push(push::PushArgs),
    /// Copy an image or index from a registry into a layout, digest for digest, verified.
    Pull(pull::PullArgs),
    /// Write a layout as one reproducible oci-archive or docker-archive tar.
    Export(export::ExportArgs),
    /// Explain how two layouts differ, most specific first.
    Diff(diff::DiffArgs),
    /// Check that layouts are valid, complete and safe; report every problem.
    Verify(verify::VerifyArgs),
    /// Rewrite a layout from another tool into the shape every client accepts, same digests.
    Fix(fix::FixArgs),
    /// Print a shell completion script (bash, zsh or fish).
    Completions(completions::CompletionsArgs),
    /// Print the man page (ocipack.1), write one page per command with --dir, or print the
    /// command-line reference as Markdown with --markdown.
    Man(completions::ManArgs),
}

/// Prints a line on standard output, like `println!`, except that a reader that went away
/// (`ocipack verify … | head -1`) is no error: what is left is not printed, the command goes
/// on to its end (removing what it staged) and exits as it would have.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::write_out(format_args!($($arg)*), true)
    };
}

/// [`out!`] without the line end.
macro_rules! out_raw {
    ($($arg:tt)*) => {
        $crate::cli::write_out(format_args!($($arg)*), false)
    };
}

pub(crate) use {out, out_raw};

/// Set once standard output is gone: nothing more is written to it.
static GONE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
/// Set when standard output failed for another reason than a reader that went away (a full
/// disk, an I/O error): what was printed is incomplete, so the command must not succeed.
static FAILED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// True if writing standard output failed (other than by a closed pipe): `main` then exits 1
/// where the command would have exited 0.
pub fn stdout_failed() -> bool {
    FAILED.load(std::sync::atomic::Ordering::Relaxed)
}

/// Writes to standard output; see [`out!`].
pub fn write_out(args: std::fmt::Arguments<'_>, newline: bool) {
    use std::io::Write as _;
    use std::sync::atomic::Ordering;
    if GONE.load(Ordering::Relaxed) {
        return;
    }
    let mut stdout = std::io::stdout().lock();
    let r = stdout
        .write_fmt(args)
        .and_then(|()| {
            if newline {
                stdout.write_all(b"\n")
            } else {
                Ok(())
            }
        })
        .and_then(|()| stdout.flush());
    if let Err(e) = r {
        GONE.store(true, Ordering::Relaxed);
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            FAILED.store(true, Ordering::Relaxed);
            eprintln!("ocipack: error: writing standard output: {e}");
        }
    }
}

/// Runs the parsed command; returns the exit code for a run that completed.
pub fn run(cli: Cli) -> Result<u8> {
    match cli.command {
        Command::Image(a) => image::run(*a),
        Command::Platform(a) => platform::run(a),
        Command::Build(a) => build::run(a),
        Command::Library(a) => library::run(a),
        Command::Push(a) => push::run(a),
        Command::Pull(a) => pull::run(a),
        Command::Export(a) => export::run(a),
        Command::Verify(a) => verify::run(a),
        Command::Diff(a) => diff::run(a),
        Command::Fix(a) => fix::run(a),
        Command::Completions(a) => completions::run_completions(a),
        Command::Man(a) => completions::run_man(a),
    }
}
