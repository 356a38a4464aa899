//! Every JSON document decoder of `ocipack verify`, on arbitrary bytes.
#![no_main]

mod invariants;

libfuzzer_sys::fuzz_target!(|data: &[u8]| invariants::json(data));
