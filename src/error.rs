//! Typed errors with the context a user needs: which file, which field, what is wrong.
//!
//! Every error knows its exit code: `2` for usage and input errors (the caller gave us
//! something we cannot use), `1` for failures of a check or verification and for
//! environment failures such as a full disk or a program (git) that cannot be run.

use std::io;
use std::path::{Path, PathBuf};

/// Result alias used throughout the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An ocipack error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The command line or a project file asks for something impossible.
    #[error("{0}")]
    Usage(String),

    /// An input (file, tree, tar, layout, timestamp, ...) is unusable.
    #[error("{what}: {problem}")]
    Input {
        /// The input named as the user gave it (a path, an option, a field).
        what: String,
        /// What is wrong with it.
        problem: String,
    },

    /// Reading an input failed.
    #[error("{op} {path}: {source}", path = crate::show::path(.path))]
    InputIo {
        /// What we were doing.
        op: &'static str,
        /// The input path.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },

    /// Writing an output or another environment failure.
    #[error("{op} {path}: {source}", path = crate::show::path(.path))]
    Io {
        /// What we were doing.
        op: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },

    /// A check found differences or a verification found problems; the message is a summary.
    #[error("{0}")]
    CheckFailed(String),

    /// An external program (git) could not be run, was killed, or failed at an operation
    /// ocipack asked of it. A question the program refuses to answer about something the
    /// user gave (a directory that is not a repository) is an [`Error::Input`] instead.
    #[error("{command}: {problem}")]
    Command {
        /// The program, as run (`git`).
        program: String,
        /// The command as shown in messages, with its arguments (`git mktree -z`), escaped.
        command: String,
        /// What went wrong: why it could not be started, the signal that ended it, or its
        /// own message (escaped).
        problem: String,
    },

    /// Talking to a registry or another remote component failed.
    #[error("{0}")]
    Remote(String),

    /// A bug in ocipack (a thread that panicked, a state that cannot happen): not the user's
    /// doing, so never reported as a usage or input error.
    #[error("internal error (a bug in ocipack): {0}")]
    Internal(String),
}

impl Error {
    /// An unusable input, named.
    pub fn input(what: impl Into<String>, problem: impl Into<String>) -> Self {
        Error::Input {
            what: what.into(),
            problem: problem.into(),
        }
    }

    /// A usage error.
    pub fn usage(msg: impl Into<String>) -> Self {
        Error::Usage(msg.into())
    }

    /// A bug in ocipack.
    pub fn internal(msg: impl Into<String>) -> Self {
        Error::Internal(msg.into())
    }

    /// Wraps an I/O error that happened while reading an input.
    pub fn input_io(op: &'static str, path: impl AsRef<Path>, source: io::Error) -> Self {
        Error::InputIo {
            op,
            path: path.as_ref().to_path_buf(),
            source,
        }
    }

    /// Wraps an I/O error that happened while writing an output.
    pub fn io(op: &'static str, path: impl AsRef<Path>, source: io::Error) -> Self {
        Error::Io {
            op,
            path: path.as_ref().to_path_buf(),
            source,
        }
    }

    /// A program that failed (see [`Error::Command`]); `command` and `problem` must be
    /// escaped already.
    pub fn command(
        program: impl Into<String>,
        command: impl Into<String>,
        problem: impl Into<String>,
    ) -> Self {
        Error::Command {
            program: program.into(),
            command: command.into(),
            problem: problem.into(),
        }
    }

    /// The process exit code this error maps to.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) | Error::Input { .. } | Error::InputIo { .. } => 2,
            Error::Io { .. }
            | Error::Command { .. }
            | Error::CheckFailed(_)
            | Error::Remote(_)
            | Error::Internal(_) => 1,
        }
    }
}
