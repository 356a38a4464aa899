//! Test hooks: named moments of a run at which a test can act (debug builds only).
//!
//! A test sets `OCIPACK_TEST_HOOK_<MOMENT>` to a shell command; when a debug build reaches
//! that moment it runs the command and waits for it. So a test can send a signal between
//! two swaps, or change an input after it was walked, at exactly that point instead of
//! racing a timer. Release builds compile the hooks to nothing: no environment variable
//! changes what a released ocipack does.
//!
//! The hooks live here, at the bottom of the crate beside the filesystem layer, so that
//! every module that has a moment worth naming (the builder, staging, the registry client)
//! can call one without importing anything above it.

/// Runs the test hook named `var` (debug builds only): the shell command in that environment
/// variable, if set, run to completion at this moment of the run.
pub fn test_hook(var: &str) {
    #[cfg(debug_assertions)]
    if let Some(cmd) = std::env::var_os(var) {
        let _ = std::process::Command::new("sh").arg("-c").arg(cmd).status();
    }
    let _ = var;
}

/// Runs the test hook named `var` (debug builds only) with `arg` as its `$1`: so a test can
/// record what the run was doing at that moment (which output it encoded, say).
pub fn test_hook_with(var: &str, arg: &str) {
    #[cfg(debug_assertions)]
    if let Some(cmd) = std::env::var_os(var) {
        let _ = std::process::Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .arg("sh")
            .arg(arg)
            .status();
    }
    let _ = (var, arg);
}
