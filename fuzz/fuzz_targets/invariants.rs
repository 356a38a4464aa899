//! What must hold for any input, checked by the fuzz targets and, over the committed seeds
//! and regressions, by tests/verify.rs. A panic here is a finding.
#![allow(dead_code)] // each fuzz target uses one of the two

use std::collections::HashSet;

use ocipack::spec::{Descriptor, ImageConfig, Index, Manifest, OciLayout};
use ocipack::tar::read::EntryKind;
use ocipack::verify::docs::{Document, check_document};
use ocipack::verify::scan_layer_bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A document that passes is decoded the same after a canonical re-encoding, which
/// passes too.
fn round_trip<T: DeserializeOwned + Serialize + PartialEq + std::fmt::Debug>(
    kind: Document,
    data: &[u8],
) {
    let problems = check_document(kind, data);
    for p in &problems {
        assert!(!p.message.is_empty(), "empty message for {kind:?}");
    }
    if !problems.is_empty() {
        return;
    }
    let value: T = serde_json::from_slice(data).expect("a document that passes decodes");
    let again = ocipack::cjson::to_vec(&value).expect("a decoded document encodes");
    assert!(
        check_document(kind, &again).is_empty(),
        "re-encoded {kind:?} fails"
    );
    let back: T = serde_json::from_slice(&again).expect("re-encoded document decodes");
    assert_eq!(back, value, "{kind:?} changed in a round trip");
}

/// Every JSON decoder on `data`.
pub fn json(data: &[u8]) {
    round_trip::<OciLayout>(Document::OciLayout, data);
    round_trip::<Index>(Document::Index, data);
    round_trip::<Descriptor>(Document::Descriptor, data);
    round_trip::<Manifest>(Document::Manifest, data);
    round_trip::<ImageConfig>(Document::Config, data);
}

/// The layer scanner on `data` (as plain, gzip and zstd): a layer without errors has only
/// safe, unique names and hard links to earlier entries.
pub fn layer(data: &[u8]) {
    for scan in scan_layer_bytes(data) {
        assert!(scan.entries.len() as u64 <= scan.count);
        if !scan.is_ok() {
            continue;
        }
        let mut seen = HashSet::new();
        for e in &scan.entries {
            assert!(!e.path.starts_with(b"/"), "absolute name accepted");
            assert!(
                !e.path.split(|&b| b == b'/').any(|c| c == b".."),
                "'..' accepted"
            );
            if e.kind == EntryKind::Hardlink {
                let target = e.link.as_ref().expect("a hard link has a target");
                assert!(seen.contains(target), "hard link to a later entry accepted");
            }
            assert!(seen.insert(e.path.clone()), "duplicate accepted");
        }
    }
}
