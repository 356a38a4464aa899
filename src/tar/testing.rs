//! Hand-made tar archives for the unit tests of the reader and of the layer scanner
//! (`verify::scan`): ustar, GNU and pax headers built field by field, and sparse files in
//! each of GNU tar's four formats, so that a test can make exactly the archive, hostile or
//! not, that it is about. Test builds only.

use super::field::{BLOCK, padding};
use super::read::{Item, ParsedHeader, ReadError, Reader};
use super::sparse::SparseFormat;

/// Sets the checksum field of a header block.
pub(crate) fn seal(h: &mut [u8]) {
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
}

/// An 11-digit octal number field (12 bytes, NUL-terminated).
pub(crate) fn octal(field: &mut [u8], v: u64) {
    if v < 1 << 33 {
        field[..11].copy_from_slice(format!("{v:011o}").as_bytes());
        field[11] = 0;
    } else {
        field[..4].copy_from_slice(&[0x80, 0, 0, 0]);
        field[4..12].copy_from_slice(&v.to_be_bytes());
    }
}

/// A ustar header with the given fields and a valid checksum.
pub(crate) fn header(name: &[u8], typeflag: u8, size: u64, uid: u64, link: &[u8]) -> Vec<u8> {
    let mut h = vec![0u8; BLOCK];
    h[..name.len()].copy_from_slice(name);
    h[100..107].copy_from_slice(b"0000644");
    h[108..115].copy_from_slice(format!("{uid:07o}").as_bytes());
    h[116..123].copy_from_slice(b"0000000");
    if size < 1 << 33 {
        h[124..135].copy_from_slice(format!("{size:011o}").as_bytes());
    } else {
        // GNU base-256, as for sizes of 8 GiB and more.
        h[124] = 0x80;
        h[128..136].copy_from_slice(&size.to_be_bytes());
    }
    h[136..147].copy_from_slice(b"00000000001");
    h[156] = typeflag;
    h[157..157 + link.len()].copy_from_slice(link);
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    seal(&mut h);
    h
}

/// A GNU-format header (magic `ustar  \0`).
pub(crate) fn gnu_header(name: &[u8], typeflag: u8, size: u64) -> Vec<u8> {
    let mut h = header(name, typeflag, size, 0, b"");
    h[257..265].copy_from_slice(b"ustar  \0");
    seal(&mut h);
    h
}

/// `v` padded with zeros to a whole block.
pub(crate) fn pad(mut v: Vec<u8>) -> Vec<u8> {
    v.resize(v.len() + padding(v.len() as u64) as usize, 0);
    v
}

/// A regular file entry holding `content`, padded.
pub(crate) fn file(name: &[u8], content: &[u8]) -> Vec<u8> {
    let mut v = header(name, b'0', content.len() as u64, 0, b"");
    v.extend_from_slice(content);
    pad(v)
}

/// One pax record with its length prefix.
pub(crate) fn record(key: &str, value: &[u8]) -> Vec<u8> {
    let body = key.len() + value.len() + 3;
    let mut len = body + 1;
    while len != body + len.to_string().len() {
        len = body + len.to_string().len();
    }
    let mut r = format!("{len} {key}=").into_bytes();
    r.extend_from_slice(value);
    r.push(b'\n');
    assert_eq!(r.len(), len);
    r
}

/// A pax extended header (`x`, or `g`) holding `records`.
pub(crate) fn pax_header(typeflag: u8, records: &[(&str, &[u8])]) -> Vec<u8> {
    let data: Vec<u8> = records.iter().flat_map(|(k, v)| record(k, v)).collect();
    let mut t = header(b"PaxHeaders/x", typeflag, data.len() as u64, 0, b"");
    t.extend(pad(data));
    t
}

/// `v` followed by the end-of-archive marker (two zero blocks).
pub(crate) fn end(mut v: Vec<u8>) -> Vec<u8> {
    v.extend_from_slice(&[0u8; 2 * BLOCK]);
    v
}

/// Every entry of `tar` with its logical content, or the first error.
pub(crate) fn read_all(tar: &[u8]) -> Result<Vec<(ParsedHeader, Vec<u8>)>, ReadError> {
    let mut r = Reader::new(tar);
    let mut out = Vec::new();
    let mut buf = [0u8; 100];
    while let Some(item) = r.next_item()? {
        let Item::Entry(h) = item else { continue };
        let mut content = Vec::new();
        loop {
            let n = r.read_content(&mut buf)?;
            if n == 0 {
                break;
            }
            content.extend_from_slice(&buf[..n]);
        }
        assert_eq!(content.len() as u64, h.size, "{:?}", h.name);
        out.push((*h, content));
    }
    Ok(out)
}

/// The error reading `tar` gives (a panic if it reads).
pub(crate) fn read_err(tar: &[u8]) -> String {
    match read_all(tar) {
        Ok(e) => panic!("read: {:?}", e.iter().map(|x| &x.0).collect::<Vec<_>>()),
        Err(e) => e.to_string(),
    }
}

/// `len` bytes of a pattern that differs with `seed`.
pub(crate) fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| seed.wrapping_add((i % 251) as u8) | 1)
        .collect()
}

/// Stored fragments: offset and data.
pub(crate) type Fragments = Vec<(u64, Vec<u8>)>;

/// The sparse file most hand-made archives describe: 3000 bytes, data at the start, in
/// the middle and at the end. As GNU tar writes them, every fragment but the last holds
/// whole blocks, and the last one ends at the real size.
pub(crate) fn fragments() -> Fragments {
    vec![
        (0, pattern(512, 1)),
        (1024, pattern(1024, 2)),
        (2998, pattern(2, 3)),
    ]
}
/// The real size of [`fragments`].
pub(crate) const REAL: u64 = 3000;

/// Many fragments, some empty: extension blocks (old GNU), a map over several blocks (1.0).
pub(crate) fn many() -> (Fragments, u64) {
    let mut f: Fragments = (0..100u64)
        .map(|i| (i * 2048 + 100, pattern((i % 3) as usize * 512, i as u8)))
        .collect();
    f.push((100 * 2048 + 100, pattern(7, 9)));
    (f, 100 * 2048 + 107)
}

/// The file `fragments` describe, holes as zeros.
pub(crate) fn dense(fragments: &[(u64, Vec<u8>)], real: u64) -> Vec<u8> {
    let mut v = vec![0u8; real as usize];
    for (o, d) in fragments {
        v[*o as usize..*o as usize + d.len()].copy_from_slice(d);
    }
    v
}

/// The data `fragments` store, in order.
pub(crate) fn stored(fragments: &[(u64, Vec<u8>)]) -> Vec<u8> {
    fragments.iter().flat_map(|(_, d)| d.clone()).collect()
}

/// An old GNU sparse entry ('S'): four fragments in the header, 21 per extension block.
pub(crate) fn old_gnu(name: &[u8], fragments: &[(u64, u64)], real: u64, data: &[u8]) -> Vec<u8> {
    let mut h = gnu_header(name, b'S', data.len() as u64);
    let mut blocks = vec![];
    let (first, rest) = fragments.split_at(fragments.len().min(4));
    for (i, (o, l)) in first.iter().enumerate() {
        octal(&mut h[386 + 24 * i..398 + 24 * i], *o);
        octal(&mut h[398 + 24 * i..410 + 24 * i], *l);
    }
    h[482] = u8::from(!rest.is_empty());
    octal(&mut h[483..495], real);
    seal(&mut h);
    let chunks: Vec<_> = rest.chunks(21).collect();
    for (n, chunk) in chunks.iter().enumerate() {
        let mut b = vec![0u8; BLOCK];
        for (i, (o, l)) in chunk.iter().enumerate() {
            octal(&mut b[24 * i..24 * i + 12], *o);
            octal(&mut b[24 * i + 12..24 * i + 24], *l);
        }
        b[504] = u8::from(n + 1 < chunks.len());
        blocks.extend(b);
    }
    let mut t = h;
    t.extend(blocks);
    t.extend(pad(data.to_vec()));
    t
}

/// The map of `fragments`: offset and length of each.
pub(crate) fn lengths(fragments: &[(u64, Vec<u8>)]) -> Vec<(u64, u64)> {
    fragments
        .iter()
        .map(|(o, d)| (*o, d.len() as u64))
        .collect()
}

/// A GNU sparse 1.0 map as decimal text.
pub(crate) fn map_text(map: &[(u64, u64)]) -> Vec<u8> {
    let mut s = format!("{}\n", map.len());
    for (o, l) in map {
        s.push_str(&format!("{o}\n{l}\n"));
    }
    s.into_bytes()
}

/// pax GNU sparse 1.0: the map as text at the start of the data.
pub(crate) fn pax_1_0(name: &[u8], map: &[(u64, u64)], real: u64, data: &[u8]) -> Vec<u8> {
    let real = real.to_string();
    let mut t = pax_header(
        b'x',
        &[
            ("GNU.sparse.major", b"1"),
            ("GNU.sparse.minor", b"0"),
            ("GNU.sparse.name", name),
            ("GNU.sparse.realsize", real.as_bytes()),
        ],
    );
    let mut body = pad(map_text(map));
    body.extend_from_slice(data);
    t.extend(header(
        b"GNUSparseFile.7/x",
        b'0',
        body.len() as u64,
        0,
        b"",
    ));
    t.extend(pad(body));
    t
}

/// pax GNU sparse 0.1: the map in one `GNU.sparse.map` record.
pub(crate) fn pax_0_1(name: &[u8], map: &[(u64, u64)], real: u64, data: &[u8]) -> Vec<u8> {
    let text: Vec<String> = map.iter().map(|(o, l)| format!("{o},{l}")).collect();
    let (real, n, text) = (real.to_string(), map.len().to_string(), text.join(","));
    let mut t = pax_header(
        b'x',
        &[
            ("GNU.sparse.size", real.as_bytes()),
            ("GNU.sparse.numblocks", n.as_bytes()),
            ("GNU.sparse.name", name),
            ("GNU.sparse.map", text.as_bytes()),
        ],
    );
    t.extend(header(
        b"GNUSparseFile.7/x",
        b'0',
        data.len() as u64,
        0,
        b"",
    ));
    t.extend(pad(data.to_vec()));
    t
}

/// pax GNU sparse 0.0: repeated `GNU.sparse.offset`/`GNU.sparse.numbytes` records.
pub(crate) fn pax_0_0(name: &[u8], map: &[(u64, u64)], real: u64, data: &[u8]) -> Vec<u8> {
    let (real, n) = (real.to_string(), map.len().to_string());
    let numbers: Vec<(String, String)> = map
        .iter()
        .map(|(o, l)| (o.to_string(), l.to_string()))
        .collect();
    let mut records: Vec<(&str, &[u8])> = vec![
        ("GNU.sparse.size", real.as_bytes()),
        ("GNU.sparse.numblocks", n.as_bytes()),
    ];
    for (o, l) in &numbers {
        records.push(("GNU.sparse.offset", o.as_bytes()));
        records.push(("GNU.sparse.numbytes", l.as_bytes()));
    }
    let mut t = pax_header(b'x', &records);
    t.extend(header(name, b'0', data.len() as u64, 0, b""));
    t.extend(pad(data.to_vec()));
    t
}

/// Makes a sparse entry: name, map, real size, stored data.
pub(crate) type Build = fn(&[u8], &[(u64, u64)], u64, &[u8]) -> Vec<u8>;
/// Each sparse format with its builder.
pub(crate) const FORMATS: [(SparseFormat, Build); 4] = [
    (SparseFormat::OldGnu, old_gnu),
    (SparseFormat::Pax00, pax_0_0),
    (SparseFormat::Pax01, pax_0_1),
    (SparseFormat::Pax10, pax_1_0),
];
