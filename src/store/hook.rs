//! Test hooks: named moments of a run at which a test can act, and pieces of work a test
//! can count (debug builds only).
//!
//! A test sets `OCIPACK_TEST_HOOK_<MOMENT>` to a shell command; when a debug build reaches
//! that moment it runs the command and waits for it. So a test can send a signal between
//! two swaps, or change an input after it was walked, at exactly that point instead of
//! racing a timer. A test sets `OCIPACK_TEST_LOG_<WORK>` to a file name; each time a debug
//! build does that work it appends one line saying what it worked on. So a test observes
//! "done once" by counting lines, never by timing a run. Release builds compile the hooks to
//! nothing: no environment variable changes what a released ocipack does.
//!
//! The hooks live here, at the bottom of the crate beside the filesystem layer, so that
//! every module that has a moment worth naming (the builder, staging, the registry client)
//! can call one without importing anything above it.

/// The work log of layer decompressions: `verify` and `diff` append one line per layer
/// stream they decompress, the digest its descriptor names (see [`test_log`]).
pub const DECOMPRESSIONS: &str = "OCIPACK_TEST_LOG_DECOMPRESSIONS";

/// The work log of layer encodings: the builder appends one line per layer it encodes, the
/// output it is for as shown to the user.
pub const ENCODINGS: &str = "OCIPACK_TEST_LOG_ENCODINGS";

/// The work log of spool files: each build that copies a tar input's contents into a spool
/// file (a compressed tar, a sparse entry) appends one line, the input that needed it.
pub const SPOOLS: &str = "OCIPACK_TEST_LOG_SPOOLS";

/// Runs the test hook named `var` (debug builds only): the shell command in that environment
/// variable, if set, run to completion at this moment of the run.
pub fn test_hook(var: &str) {
    #[cfg(debug_assertions)]
    if let Some(cmd) = std::env::var_os(var) {
        let _ = std::process::Command::new("sh").arg("-c").arg(cmd).status();
    }
    let _ = var;
}

/// Appends `line()` and a newline to the file named by the environment variable `var`, if
/// set (debug builds only; release builds do nothing). One `write` on a file opened for
/// appending, so that the lines of concurrent writers do not mix. A test counts the lines
/// to see how often a piece of work was done. Outside the guarded filesystem layer on
/// purpose: the file is the test's, named by the test, and no release build opens it.
pub fn test_log(var: &str, line: impl FnOnce() -> String) {
    #[cfg(debug_assertions)]
    if let Some(file) = std::env::var_os(var) {
        use std::io::Write;
        let mut text = line();
        text.push('\n');
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(file)
        {
            let _ = f.write_all(text.as_bytes());
        }
    }
    #[cfg(not(debug_assertions))]
    let _ = (var, line);
}
