//! Test hooks of the layer encoders (debug builds only): environment switches that make an
//! encoder misbehave as a bug would, so that tests can show the checks failing the build.
//!
//! Kept apart so that the gzip encoder and the layer pipeline, which both read them, need
//! not import each other.

/// The test hook `OCIPACK_TEST_FLIP_ENCODED_BYTE=N` (debug builds only): byte N of the
/// encoder's output is flipped before it is checked, as an encoder bug would, so that tests
/// can show the check failing the build. `OCIPACK_TEST_FLIP_ENCODED_BYTE=panic` instead
/// makes the gzip encoder panic on its first piece ([`panic_hook`]).
pub(super) fn flip_hook() -> Option<u64> {
    #[cfg(debug_assertions)]
    return std::env::var("OCIPACK_TEST_FLIP_ENCODED_BYTE")
        .ok()
        .and_then(|v| v.parse().ok());
    #[cfg(not(debug_assertions))]
    None
}

/// The test hook `OCIPACK_TEST_FLIP_ENCODED_BYTE=panic` (debug builds only): the gzip
/// encoder panics while making its first piece, as an encoder bug might, so that tests can
/// show a panicking worker failing the build (an internal error) instead of hanging it.
pub(super) fn panic_hook() -> bool {
    #[cfg(debug_assertions)]
    return std::env::var("OCIPACK_TEST_FLIP_ENCODED_BYTE").as_deref() == Ok("panic");
    #[cfg(not(debug_assertions))]
    false
}
