//! What must hold for any input, checked by the fuzz targets and, over the committed seeds
//! and regressions, by tests/integration/verify.rs. A panic here is a finding.
#![allow(dead_code)] // each fuzz target uses one of the two

use std::collections::HashSet;

use ocipack::image::rules::docs::{Document, check_document};
use ocipack::spec::{Descriptor, ImageConfig, Index, Manifest, OciLayout};
use ocipack::tar::EntryKind;
use ocipack::tar::name::{MAX_NAME_BYTES, MAX_NAME_COMPONENTS};
use ocipack::tar::read::{Item, Piece, Reader};
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
/// safe, unique names and hard links to earlier entries. The tar reader under it, on `data`
/// as a plain tar: see [`reader`].
pub fn layer(data: &[u8]) {
    reader(data);
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

/// The tar reader on `data`: no more entries than blocks; a usable name is within the
/// limits, names the root only for a directory and, for a sparse file, is never GNU tar's
/// `GNUSparseFile.N/` placeholder; every entry's logical content is exactly its size
/// (holes counted, not filled, so a huge sparse claim costs nothing here).
pub fn reader(data: &[u8]) {
    let mut r = Reader::new(data);
    let mut buf = vec![0u8; 4096];
    let mut entries = 0;
    while let Ok(Some(item)) = r.next_item() {
        let Item::Entry(h) = item else { continue };
        entries += 1;
        assert!(entries <= data.len() / 512, "more entries than blocks");
        if let Ok(p) = &h.path {
            assert!(p.len() <= MAX_NAME_BYTES, "over-long name accepted");
            let components = p.split(|&b| b == b'/');
            assert!(
                components.count() <= MAX_NAME_COMPONENTS,
                "over-deep name accepted"
            );
            assert!(
                !p.is_empty() || h.kind == Some(EntryKind::Dir),
                "a non-directory names the root"
            );
            if h.sparse.is_some() {
                assert!(
                    !p.split(|&b| b == b'/')
                        .any(|c| c.starts_with(b"GNUSparseFile.")),
                    "sparse placeholder name accepted"
                );
            }
        }
        if h.kind != Some(EntryKind::File) {
            assert_eq!(h.size, 0, "content on a {:?}", h.kind);
        }
        let mut n: u64 = 0;
        loop {
            match r.read_piece(&mut buf) {
                Ok(Piece::Data(k)) => {
                    assert!(k > 0, "empty data piece");
                    n += k as u64;
                }
                Ok(Piece::Hole(k)) => {
                    assert!(k > 0, "empty hole");
                    n += k;
                }
                Ok(Piece::End) => break,
                Err(_) => return,
            }
            assert!(n <= h.size, "more content than the size");
        }
        assert_eq!(n, h.size, "less content than the size");
    }
}
