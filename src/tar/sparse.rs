//! GNU sparse files: the four ways GNU tar records a file with holes, and the map the reader
//! expands them with.
//!
//! The formats: the old GNU type `S` header (map in the header and in extension blocks after
//! it), and the pax formats 0.0 (repeated `GNU.sparse.offset`/`GNU.sparse.numbytes`
//! records), 0.1 (`GNU.sparse.map`) and 1.0 (`GNU.sparse.major=1`, `minor=0`, the map as
//! decimal text at the start of the data, padded to a block). Each becomes one map of
//! (offset, length) fragments of stored data; the file's content is the fragments with zeros
//! in the holes, up to the real size.
//!
//! Contract: a map is validated before any content is read (`validate_map`): fragments in
//! order and not overlapping, inside the real size, holding exactly the bytes stored, at
//! most [`MAX_SPARSE_ENTRIES`] of them. GNU tar reads each fragment's data from a block
//! boundary and extracts only as far as the last fragment reaches, Go's reader neither: so
//! every fragment with data but the last must hold whole blocks and the last must end at
//! the real size, as GNU tar writes them, or the two would extract different files. Unknown
//! versions, missing or contradicting records are refused. Nothing is allocated from a
//! count before the fragments it counts were read.
//!
//! Everything here is pure: the reader reads the blocks (old GNU extension blocks, the 1.0
//! map) and hands them over, so that the rules can be read, and tested, apart from the I/O.

use std::collections::BTreeMap;
use std::fmt;

use super::field::{BLOCK, number, pax_number};

/// The most fragments a sparse map may list (16 bytes of memory each).
pub const MAX_SPARSE_ENTRIES: usize = 65_536;

/// Sparse map entries in an old GNU header and in each of its extension blocks.
const OLD_GNU_IN_HEADER: usize = 4;
const OLD_GNU_IN_EXTENSION: usize = 21;

/// How a sparse file was stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SparseFormat {
    /// The old GNU type `S` header (`tar --format=gnu` or `oldgnu`).
    OldGnu,
    /// pax 0.0: repeated `GNU.sparse.offset` and `GNU.sparse.numbytes` records.
    Pax00,
    /// pax 0.1: one `GNU.sparse.map` record.
    Pax01,
    /// pax 1.0: the map at the start of the data.
    Pax10,
}

impl fmt::Display for SparseFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SparseFormat::OldGnu => "old GNU sparse",
            SparseFormat::Pax00 => "GNU sparse 0.0",
            SparseFormat::Pax01 => "GNU sparse 0.1",
            SparseFormat::Pax10 => "GNU sparse 1.0",
        })
    }
}

/// The (offset, length) of each stored fragment, in the order stored.
pub(super) type Map = Vec<(u64, u64)>;

/// The real size of the file an old GNU sparse header describes.
pub(super) fn old_gnu_real_size(h: &[u8; BLOCK]) -> Result<u64, String> {
    number(&h[483..495], "sparse real size")
}

/// The map of an old GNU sparse header, as it is read: up to four fragments in the header,
/// then 21 in each extension block while the previous block says more follow. An entry ends
/// the map when both its numbers are empty (GNU tar looks at one, Go at the other: an entry
/// with only one of them is refused). Reasons read after "old GNU sparse header at byte N:".
pub(super) struct OldGnuMap {
    map: Map,
    /// An empty entry ended the map.
    ended: bool,
    /// The last block read says an extension block follows.
    extended: bool,
}

impl OldGnuMap {
    /// The map as far as the header block `h` holds it.
    pub(super) fn new(h: &[u8; BLOCK]) -> Result<Self, String> {
        let mut map = Vec::new();
        let ended = old_gnu_entries(&h[386..386 + 24 * OLD_GNU_IN_HEADER], &mut map)?;
        Ok(OldGnuMap {
            map,
            ended,
            extended: h[482] != 0,
        })
    }

    /// Whether an extension block is to be read next; an error if the map ended yet says
    /// one follows.
    pub(super) fn wants_block(&self) -> Result<bool, String> {
        if self.extended && self.ended {
            return Err(
                "the map ends but says an extension block follows (readers disagree on where the data starts)".into(),
            );
        }
        Ok(self.extended)
    }

    /// Adds the entries of the extension block `block`.
    pub(super) fn add_block(&mut self, block: &[u8; BLOCK]) -> Result<(), String> {
        self.ended = old_gnu_entries(&block[..24 * OLD_GNU_IN_EXTENSION], &mut self.map)?;
        self.extended = block[24 * OLD_GNU_IN_EXTENSION] != 0;
        Ok(())
    }

    /// The map read.
    pub(super) fn into_map(self) -> Map {
        self.map
    }
}

/// Adds the old GNU sparse map entries in `entries` (24 bytes each: octal offset and length)
/// to `map`; returns true if an empty entry ended the map.
fn old_gnu_entries(entries: &[u8], map: &mut Map) -> Result<bool, String> {
    for e in entries.chunks_exact(24) {
        let (offset, length) = e.split_at(12);
        match (offset[0], length[0]) {
            (0, 0) => return Ok(true),
            (0, _) | (_, 0) => {
                return Err(
                    "a map entry with only one of its two numbers (readers disagree on where the map ends)"
                        .into(),
                );
            }
            _ => {}
        }
        if map.len() == MAX_SPARSE_ENTRIES {
            return Err(format!(
                "the map lists more than {MAX_SPARSE_ENTRIES} fragments"
            ));
        }
        map.push((
            number(offset, "sparse offset")?,
            number(length, "sparse length")?,
        ));
    }
    Ok(false)
}

/// What the pax `GNU.sparse.*` records of a file entry say. Reasons read after "pax header
/// at byte N:".
pub(super) struct PaxSparse {
    /// The format the records use.
    pub(super) format: SparseFormat,
    /// The file's real size.
    pub(super) real: u64,
    /// The map, unless it is in the data (1.0), where the reader reads it with [`TextMap`].
    pub(super) map: Option<Map>,
    /// `GNU.sparse.numblocks`, decoded, checked against the map by
    /// [`check_count`](PaxSparse::check_count).
    numblocks: Result<Option<u64>, String>,
}

impl PaxSparse {
    /// Resolves the records: `pax` holds the last value of each key, `list` every record in
    /// order (0.0's offsets and lengths repeat). An empty value counts as absent, except
    /// for `GNU.sparse.map`, where it is a map without fragments.
    pub(super) fn new(
        pax: &BTreeMap<&str, &[u8]>,
        list: &[(String, Vec<u8>)],
    ) -> Result<Self, String> {
        let get = |key: &str| pax.get(key).copied().filter(|v| !v.is_empty());
        let whole = |key: &str| get(key).map(|v| pax_number(key, v)).transpose();
        let real = match (whole("GNU.sparse.size")?, whole("GNU.sparse.realsize")?) {
            (Some(a), Some(b)) if a != b => {
                return Err(format!(
                    "GNU.sparse.size={a} and GNU.sparse.realsize={b} disagree"
                ));
            }
            (Some(a), _) | (None, Some(a)) => a,
            (None, None) => {
                return Err(
                    "GNU sparse records without the real size (GNU.sparse.size or GNU.sparse.realsize)".into(),
                );
            }
        };
        let pairs: Vec<(&str, &[u8])> = list
            .iter()
            .filter(|(k, _)| k == "GNU.sparse.offset" || k == "GNU.sparse.numbytes")
            .map(|(k, v)| (k.as_str(), v.as_slice()))
            .collect();
        let map_record = pax.get("GNU.sparse.map").copied();
        let version = (get("GNU.sparse.major"), get("GNU.sparse.minor"));
        let (format, map) = match version {
            (Some(b"1"), Some(b"0")) => {
                if map_record.is_some() || !pairs.is_empty() {
                    return Err(
                        "GNU sparse 1.0 keeps its map in the data, yet the header has map records too".into(),
                    );
                }
                (SparseFormat::Pax10, None)
            }
            (None, None) | (Some(b"0"), Some(b"0" | b"1")) => {
                match (pairs.is_empty(), map_record) {
                    (false, Some(_)) => {
                        return Err(
                            "both GNU.sparse.offset/numbytes records and a GNU.sparse.map".into(),
                        );
                    }
                    (false, None) => (SparseFormat::Pax00, Some(map_0_0(&pairs)?)),
                    (true, Some(m)) => (SparseFormat::Pax01, Some(map_0_1(m)?)),
                    (true, None) => {
                        return Err("GNU sparse records without a sparse map".into());
                    }
                }
            }
            (major, minor) => {
                return Err(format!(
                    "unsupported GNU sparse format version {}.{}",
                    crate::show::bytes(major.unwrap_or(b"?")),
                    crate::show::bytes(minor.unwrap_or(b"?"))
                ));
            }
        };
        Ok(PaxSparse {
            format,
            real,
            map,
            numblocks: whole("GNU.sparse.numblocks"),
        })
    }

    /// Checks `GNU.sparse.numblocks` against the map: it must count its fragments, and
    /// formats 0.x must have it.
    pub(super) fn check_count(&self, map: &Map) -> Result<(), String> {
        match self.numblocks.clone()? {
            Some(n) if n != map.len() as u64 => Err(format!(
                "GNU.sparse.numblocks={n}, but the map lists {} fragments",
                map.len()
            )),
            None if self.format != SparseFormat::Pax10 => {
                Err("GNU sparse 0.x records without GNU.sparse.numblocks".into())
            }
            _ => Ok(()),
        }
    }
}

/// The map of GNU sparse 0.0: `GNU.sparse.offset` and `GNU.sparse.numbytes` records
/// alternating, in that order.
fn map_0_0(pairs: &[(&str, &[u8])]) -> Result<Map, String> {
    if pairs.len() / 2 > MAX_SPARSE_ENTRIES {
        return Err(format!(
            "the sparse map lists more than {MAX_SPARSE_ENTRIES} fragments"
        ));
    }
    let mut map = Vec::with_capacity(pairs.len() / 2);
    for pair in pairs.chunks(2) {
        match pair {
            [("GNU.sparse.offset", o), ("GNU.sparse.numbytes", n)] => {
                map.push((
                    pax_number("GNU.sparse.offset", o)?,
                    pax_number("GNU.sparse.numbytes", n)?,
                ));
            }
            _ => {
                return Err(
                    "GNU.sparse.offset and GNU.sparse.numbytes records do not alternate".into(),
                );
            }
        }
    }
    Ok(map)
}

/// The map of GNU sparse 0.1: `offset,length,offset,length,...` (empty: no fragment).
fn map_0_1(value: &[u8]) -> Result<Map, String> {
    if value.is_empty() {
        return Ok(Vec::new());
    }
    let mut numbers = value.split(|&b| b == b',');
    let mut map = Vec::new();
    while let Some(o) = numbers.next() {
        let n = numbers
            .next()
            .ok_or("GNU.sparse.map holds an odd count of numbers")?;
        if map.len() == MAX_SPARSE_ENTRIES {
            return Err(format!(
                "the sparse map lists more than {MAX_SPARSE_ENTRIES} fragments"
            ));
        }
        map.push((
            pax_number("GNU.sparse.map", o)?,
            pax_number("GNU.sparse.map", n)?,
        ));
    }
    Ok(map)
}

/// A GNU sparse 1.0 map, parsed block by block as the reader reads them from the start of
/// the entry's data: decimal numbers, one per line (the count, then offset and length of
/// each fragment); the rest of the block holding the last one is padding. Reasons read
/// after "the sparse map of NAME".
#[derive(Default)]
pub(super) struct TextMap {
    count: Option<usize>,
    digits: Option<u64>,
    offset: Option<u64>,
    map: Map,
}

impl TextMap {
    /// True once every fragment the count announced was read.
    pub(super) fn complete(&self) -> bool {
        self.count == Some(self.map.len())
    }

    /// Parses the next block of the map, up to the map's end.
    pub(super) fn feed(&mut self, block: &[u8]) -> Result<(), String> {
        for &b in block {
            match b {
                b'0'..=b'9' => {
                    self.digits = Some(
                        self.digits
                            .unwrap_or(0)
                            .checked_mul(10)
                            .and_then(|v| v.checked_add(u64::from(b - b'0')))
                            .ok_or("holds a number too large")?,
                    );
                }
                b'\n' => {
                    let v = self.digits.take().ok_or("holds an empty line")?;
                    match (self.count, self.offset.take()) {
                        (None, _) => {
                            if v > MAX_SPARSE_ENTRIES as u64 {
                                return Err(format!(
                                    "lists {v} fragments, more than the {MAX_SPARSE_ENTRIES} read"
                                ));
                            }
                            self.count = Some(v as usize);
                        }
                        (Some(_), None) => self.offset = Some(v),
                        (Some(_), Some(o)) => self.map.push((o, v)),
                    }
                    if self.complete() && self.offset.is_none() {
                        break;
                    }
                }
                other => {
                    return Err(format!("is not decimal text (byte 0x{other:02x})"));
                }
            }
        }
        Ok(())
    }

    /// The map read.
    pub(super) fn into_map(self) -> Map {
        self.map
    }
}

/// Checks a map against the file's real size and the bytes `stored` in the archive:
/// fragments in order without overlapping, ending within the real size, holding exactly the
/// bytes stored. Reasons read after "the sparse map of NAME".
///
/// Two more rules keep GNU tar and Go's reader extracting the same file. GNU tar reads each
/// fragment's data from a block boundary, Go's reader reads the data as one run: so every
/// fragment with data but the last must hold whole 512-byte blocks (GNU tar, finding holes
/// by file system block, writes them so). GNU tar extracts a file only as long as its last
/// fragment reaches, Go's reader to the real size: so the last fragment must end at the real
/// size (GNU tar adds an empty one there).
pub(super) fn validate_map(map: &[(u64, u64)], real: u64, stored: u64) -> Result<(), String> {
    let mut end = 0u64;
    let mut total = 0u64;
    // A fragment with data that is not whole blocks: it must be the last with data.
    let mut partial: Option<(usize, u64)> = None;
    for (i, &(offset, length)) in map.iter().enumerate() {
        if offset < end {
            return Err(format!(
                "has fragment {i} at offset {offset}, before the end of the previous one ({end})"
            ));
        }
        end = offset
            .checked_add(length)
            .filter(|&e| e <= real)
            .ok_or_else(|| {
                format!(
                    "has fragment {i} (offset {offset}, {length} bytes) ending beyond the file's real size {real}"
                )
            })?;
        if length > 0 {
            if let Some((j, partial)) = partial {
                return Err(format!(
                    "has fragment {j} of {partial} bytes, not a whole number of 512-byte blocks, before more data (GNU tar and Go's reader disagree on where the next fragment's data starts)"
                ));
            }
            if length % BLOCK as u64 != 0 {
                partial = Some((i, length));
            }
        }
        // Disjoint fragments within `real`: no overflow.
        total += length;
    }
    if end != real {
        return Err(format!(
            "ends at {end}, not at the file's real size {real} (GNU tar would extract {end} bytes, Go's reader {real})"
        ));
    }
    if total != stored {
        return Err(format!(
            "lists {total} bytes of data, but the archive stores {stored}"
        ));
    }
    Ok(())
}

/// Where the logical content of a sparse entry stands: a validated map and a position in
/// the file it describes.
pub(super) struct Expansion {
    /// (offset, length) of each stored fragment, validated.
    map: Map,
    /// The fragment at or after `pos`.
    idx: usize,
    /// Logical position.
    pos: u64,
    /// Real size.
    size: u64,
}

/// What comes next in a sparse entry's content ([`Expansion::step`]).
pub(super) enum Step {
    /// The content is at its end.
    End,
    /// This many zero bytes, already passed.
    Hole(u64),
    /// Stored data, this many bytes of it left in the current fragment; the reader reads
    /// some and reports them with [`Expansion::consumed`].
    Data(u64),
}

impl Expansion {
    /// The start of the content of a file of `real` bytes stored as `map`, which
    /// [`validate_map`] accepted.
    pub(super) fn new(map: Map, real: u64) -> Self {
        Expansion {
            map,
            idx: 0,
            pos: 0,
            size: real,
        }
    }

    /// What comes next; a hole is passed over at once, by at most `most_hole` bytes.
    pub(super) fn step(&mut self, most_hole: u64) -> Step {
        loop {
            if self.pos >= self.size {
                return Step::End;
            }
            let (offset, length) = self.map.get(self.idx).copied().unwrap_or((self.size, 0));
            if self.pos < offset {
                let n = (offset - self.pos).min(most_hole);
                self.pos += n;
                return Step::Hole(n);
            }
            // Validated: offset + length <= size.
            let end = offset + length;
            if self.pos < end {
                return Step::Data(end - self.pos);
            }
            self.idx += 1;
        }
    }

    /// Moves past `n` bytes of stored data just read.
    pub(super) fn consumed(&mut self, n: u64) {
        self.pos += n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reader hands the 1.0 map over block by block: a number cut at a block boundary
    /// carries on in the next block, and what follows the map's end is padding, not read.
    #[test]
    fn a_text_map_carries_numbers_across_blocks_and_stops_at_its_end() {
        let mut text = TextMap::default();
        text.feed(b"2\n0\n51").unwrap();
        assert!(!text.complete());
        text.feed(b"2\n1024\n4\n\0\0not read").unwrap();
        assert!(text.complete());
        assert_eq!(text.into_map(), vec![(0, 512), (1024, 4)]);

        let mut text = TextMap::default();
        text.feed(b"2\n0\n").unwrap();
        assert_eq!(
            text.feed(b"512\0").unwrap_err(),
            "is not decimal text (byte 0x00)"
        );
    }

    /// Data and holes alternate as the map says; a hole is passed in pieces of at most
    /// the size asked for, and only data the reader reports as read moves the position.
    #[test]
    fn an_expansion_steps_through_data_and_holes_to_the_real_size() {
        let map = vec![(0, 512), (1024, 3), (2048, 0)];
        validate_map(&map, 2048, 515).unwrap();
        let mut x = Expansion::new(map, 2048);
        let mut seen = Vec::new();
        loop {
            match x.step(400) {
                Step::End => break,
                Step::Hole(n) => seen.push(format!("hole {n}")),
                Step::Data(left) => {
                    seen.push(format!("data {left}"));
                    x.consumed(left.min(300));
                }
            }
        }
        let want = [
            "data 512", "data 212", "hole 400", "hole 112", "data 3", "hole 400", "hole 400",
            "hole 221",
        ];
        assert_eq!(seen, want);
    }
}
