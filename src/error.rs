//! Typed errors with the context a user needs: which file, which field, what is wrong.
//!
//! Every error knows its exit code: `2` for usage and input errors (the caller gave us
//! something we cannot use), `1` for failures of a check or verification and for
//! environment failures such as a full disk or a program (git) that cannot be run.
//!
//! An I/O error names what it happened on ([`Subject`]): a file by its path, or — for what
//! has no path (a stream between threads, a blob being fetched, standard input) — a
//! description in words, so that no message presents a description as a file name.

use std::fmt;
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
    #[error("{op} {on}: {source}")]
    InputIo {
        /// What we were doing.
        op: &'static str,
        /// The input: its path, or what it is.
        on: Subject,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },

    /// Writing an output or another environment failure.
    #[error("{op} {on}: {source}")]
    Io {
        /// What we were doing.
        op: &'static str,
        /// The file involved, or what was being read or written when it is no file.
        on: Subject,
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

    /// Wraps an I/O error that happened while reading the input file `path`.
    pub fn input_io(op: &'static str, path: impl AsRef<Path>, source: io::Error) -> Self {
        Error::InputIo {
            op,
            on: Subject::Path(path.as_ref().to_path_buf()),
            source,
        }
    }

    /// Wraps an I/O error that happened while reading an input that is no file (standard
    /// input), described by `what` (printable already: escaped through [`crate::show`]).
    pub fn input_io_on(op: &'static str, what: impl fmt::Display, source: io::Error) -> Self {
        Error::InputIo {
            op,
            on: Subject::Described(what.to_string()),
            source,
        }
    }

    /// Wraps an I/O error that happened on the file `path` while writing an output.
    pub fn io(op: &'static str, path: impl AsRef<Path>, source: io::Error) -> Self {
        Error::Io {
            op,
            on: Subject::Path(path.as_ref().to_path_buf()),
            source,
        }
    }

    /// Wraps an I/O error that happened on something that is no file (a stream, a blob
    /// being fetched, a page being rendered), described by `what` (printable already: any
    /// outside text in it escaped through [`crate::show`]).
    pub fn io_on(op: &'static str, what: impl fmt::Display, source: io::Error) -> Self {
        Error::Io {
            op,
            on: Subject::Described(what.to_string()),
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

/// What an I/O error happened on.
#[derive(Debug)]
pub enum Subject {
    /// A file or directory, shown escaped.
    Path(PathBuf),
    /// Something that is not a file, in words, shown as it is (printable already).
    Described(String),
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Path(p) => f.write_str(&crate::show::path(p)),
            Subject::Described(d) => f.write_str(d),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_name_a_path_escaped_and_a_description_as_it_is() {
        let e = || io::Error::other("disk full");
        let path = Error::io("writing", Path::new("out/a\nb"), e());
        assert_eq!(path.to_string(), "writing out/a\\nb: disk full");
        let on = Error::io_on("writing", "the layer's tar stream", e());
        assert_eq!(on.to_string(), "writing the layer's tar stream: disk full");
        let stdin = Error::input_io_on("reading the password from", "standard input", e());
        assert_eq!(
            stdin.to_string(),
            "reading the password from standard input: disk full"
        );
        // The exit codes are the variants': an output's failure 1, an input's 2.
        assert_eq!(
            (path.exit_code(), on.exit_code(), stdin.exit_code()),
            (1, 1, 2)
        );
        let input = Error::input_io("reading", Path::new("in"), e());
        assert_eq!(input.exit_code(), 2);
    }
}
