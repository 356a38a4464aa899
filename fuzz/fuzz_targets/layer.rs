//! The layer scanner of `ocipack verify`, on arbitrary bytes read as a plain, gzip and
//! zstd layer.
#![no_main]

mod invariants;

libfuzzer_sys::fuzz_target!(|data: &[u8]| invariants::layer(data));
