//! The reader's tests, on archives made by hand ([`crate::tar::testing`]) and by GNU tar:
//! long names, the cases where readers disagree, and sparse files in every format,
//! expanded, refused when hostile or contradicting, and extracted alike by GNU tar.

use super::*;
use crate::tar::sparse::MAX_SPARSE_ENTRIES;
use crate::tar::testing::*;

// ------------------------------------------------------------ names

#[test]
fn gnu_long_names_and_links() {
    let long = vec![b'n'; 300];
    let target = vec![b't'; 200];
    let mut t = gnu_header(b"././@LongLink", b'L', long.len() as u64 + 1);
    t.extend(pad([&long[..], b"\0"].concat()));
    t.extend(gnu_header(b"././@LongLink", b'K', target.len() as u64));
    t.extend(pad(target.clone()));
    t.extend(gnu_header(b"cut", b'2', 0));
    let e = read_all(&end(t)).unwrap();
    assert_eq!(e[0].0.name, long);
    assert_eq!(e[0].0.kind, Some(EntryKind::Symlink));
    assert_eq!(e[0].0.link_target(), Some(Ok(target)));
}

#[test]
fn dot_and_empty_names_in_a_stream() {
    // In a stream: "./" first, as GNU tar writes it, is the root directory.
    let mut t = header(b"./", b'5', 0, 0, b"");
    t.extend(file(b".", b"gone?"));
    let e = read_all(&end(t)).unwrap();
    assert_eq!(e[0].0.path, Ok(Vec::new()));
    assert!(e[1].0.path.is_err());
}

#[test]
fn readers_disagreements_are_refused() {
    // Two pax headers for one entry.
    let mut t = pax_header(b'x', &[("path", b"a")]);
    t.extend(pax_header(b'x', &[("path", b"b")]));
    t.extend(file(b"c", b""));
    assert!(read_err(&end(t)).contains("a second pax header"));
    // A GNU long name and a pax path.
    let mut t = gnu_header(b"././@LongLink", b'L', 2);
    t.extend(pad(b"a\0".to_vec()));
    t.extend(pax_header(b'x', &[("path", b"b")]));
    t.extend(file(b"c", b""));
    assert!(read_err(&end(t)).contains("both a GNU long name header and a pax path"));
    // A global header between an extension header and its entry.
    let mut t = pax_header(b'x', &[("path", b"a")]);
    t.extend(pax_header(b'g', &[("comment", b"x")]));
    t.extend(file(b"c", b""));
    assert!(read_err(&end(t)).contains("pax global header between"));
    // An old-style regular file whose name ends in '/' is a directory (Go).
    let t = header(b"d/", 0, 0, 0, b"");
    assert_eq!(read_all(&end(t)).unwrap()[0].0.kind, Some(EntryKind::Dir));
}

// ------------------------------------------------------------ sparse files

#[test]
fn every_sparse_format_is_expanded() {
    let cases: Vec<(Fragments, u64)> = vec![
        (fragments(), REAL),
        // Ends in a hole (GNU tar adds an empty fragment at the real size).
        (vec![(0, b"X".to_vec()), (4096, vec![])], 4096),
        // Entirely a hole.
        (vec![(1 << 20, vec![])], 1 << 20),
        many(),
    ];
    for (format, build) in FORMATS {
        for (fragments, real) in &cases {
            let mut t = build(
                b"dir/sparse",
                &lengths(fragments),
                *real,
                &stored(fragments),
            );
            t.extend(file(b"after", b"next"));
            let e = read_all(&end(t)).unwrap_or_else(|e| panic!("{format}: {e}"));
            let (h, content) = &e[0];
            assert_eq!(h.sparse, Some(format));
            assert_eq!(h.name, b"dir/sparse", "{format}");
            assert_eq!(h.path.as_deref(), Ok(&b"dir/sparse"[..]));
            assert_eq!(h.size, *real, "{format}");
            assert!(*content == dense(fragments, *real), "{format}");
            assert_eq!(e[1].1, b"next", "{format}: the next entry is found");
        }
    }
}

#[test]
fn holes_are_reported_whole_by_read_piece() {
    let data = pattern(513, 5);
    let t = end(pax_1_0(
        b"f",
        &[(0, 512), (1 << 40, 1)],
        (1 << 40) + 1,
        &data,
    ));
    let mut r = Reader::new(&t[..]);
    let Some(Item::Entry(h)) = r.next_item().unwrap() else {
        panic!()
    };
    assert_eq!(h.size, (1 << 40) + 1);
    let mut buf = [0u8; 1000];
    assert_eq!(r.read_piece(&mut buf).unwrap(), Piece::Data(512));
    assert_eq!(buf[..512], data[..512]);
    assert_eq!(
        r.read_piece(&mut buf).unwrap(),
        Piece::Hole((1 << 40) - 512)
    );
    assert_eq!(r.read_piece(&mut buf).unwrap(), Piece::Data(1));
    assert_eq!(buf[0], data[512]);
    assert_eq!(r.read_piece(&mut buf).unwrap(), Piece::End);
    assert!(r.next_item().unwrap().is_none());
    assert_eq!(r.end(), Some(End::Marker));
}

#[test]
fn hostile_sparse_maps_are_refused() {
    let data = stored(&fragments());
    let good = lengths(&fragments());
    type Case = (&'static str, Vec<(u64, u64)>, u64, &'static str);
    let cases: Vec<Case> = vec![
        (
            "overlap",
            vec![(0, 512), (500, 1024), (2998, 2)],
            REAL,
            "has fragment 1 at offset 500, before the end of the previous one (512)",
        ),
        (
            "out of order",
            vec![(1024, 1024), (0, 512), (2998, 2)],
            REAL,
            "before the end of the previous one",
        ),
        (
            "beyond the real size",
            vec![(0, 512), (1024, 1024), (2999, 2)],
            REAL,
            "ending beyond the file's real size 3000",
        ),
        (
            "overflow",
            vec![(0, 512), (1024, 1024), (u64::MAX, 2)],
            REAL,
            "ending beyond",
        ),
        (
            "short of the real size",
            vec![(0, 512), (1024, 1026)],
            REAL,
            "ends at 2050, not at the file's real size 3000",
        ),
        (
            "more data than the map",
            vec![(0, 512), (1024, 1024), (3000, 0)],
            REAL,
            "lists 1536 bytes of data, but the archive stores 1538",
        ),
        (
            "less data than the map",
            vec![(0, 512), (1024, 1024), (2990, 10)],
            REAL,
            "lists 1546 bytes of data, but the archive stores 1538",
        ),
        (
            "a fragment of part of a block before more data",
            vec![(0, 500), (1024, 1036), (2998, 2)],
            REAL,
            "has fragment 0 of 500 bytes, not a whole number of 512-byte blocks, before more data",
        ),
    ];
    for (format, build) in FORMATS {
        for (what, map, real, want) in &cases {
            let e = read_err(&end(build(b"f", map, *real, &data)));
            assert!(e.contains(want), "{format} {what}: {e}");
            assert!(e.contains("the sparse map of f"), "{format} {what}: {e}");
        }
        assert!(read_all(&end(build(b"f", &good, REAL, &data))).is_ok());
    }

    // Too many fragments: refused before anything is allocated for them.
    let mut t = pax_header(
        b'x',
        &[
            ("GNU.sparse.major", b"1"),
            ("GNU.sparse.minor", b"0"),
            ("GNU.sparse.name", b"f"),
            ("GNU.sparse.realsize", b"10"),
        ],
    );
    t.extend(header(b"f", b'0', 512, 0, b""));
    t.extend(pad(b"999999999999\n".to_vec()));
    assert!(read_err(&end(t)).contains("lists 999999999999 fragments, more than the 65536"));
    let many: Vec<(u64, u64)> = (0..MAX_SPARSE_ENTRIES as u64 + 1).map(|i| (i, 0)).collect();
    let e = read_err(&end(pax_0_1(b"f", &many, 1 << 20, b"")));
    assert!(e.contains("more than 65536 fragments"), "{e}");
    let e = read_err(&end(old_gnu(b"f", &many, 1 << 20, b"")));
    assert!(e.contains("more than 65536 fragments"), "{e}");

    // A 1.0 map that is not decimal text, never ends, or runs past the data.
    for (body, want) in [
        (&b"1\n0\nx\n"[..], "is not decimal text (byte 0x78)"),
        (b"1\n\n", "holds an empty line"),
        (
            b"1\n0\n99999999999999999999999\n",
            "holds a number too large",
        ),
        (
            &[&b"2\n0\n1\n"[..], &[b'0'; 506]].concat()[..],
            "runs past the entry's 512 bytes of data",
        ),
    ] {
        let mut t = pax_header(
            b'x',
            &[
                ("GNU.sparse.major", b"1"),
                ("GNU.sparse.minor", b"0"),
                ("GNU.sparse.name", b"f"),
                ("GNU.sparse.realsize", b"10"),
            ],
        );
        t.extend(header(b"f", b'0', 512, 0, b""));
        t.extend(pad(body.to_vec()));
        let e = read_err(&end(t));
        assert!(e.contains(want), "{e}");
    }
    let mut t = pax_header(
        b'x',
        &[
            ("GNU.sparse.major", b"1"),
            ("GNU.sparse.minor", b"0"),
            ("GNU.sparse.name", b"f"),
            ("GNU.sparse.realsize", b"10"),
        ],
    );
    t.extend(header(b"f", b'0', 4 * MAX_EXTENSION, 0, b""));
    t.extend(vec![b'0'; 4 * MAX_EXTENSION as usize]);
    assert!(read_err(&end(t)).contains("is longer than the 1048576 bytes read"));
}

#[test]
fn contradicting_sparse_records_are_refused() {
    let x = |records: &[(&str, &[u8])], typeflag: u8| {
        let mut t = pax_header(b'x', records);
        t.extend(header(b"GNUSparseFile.1/f", typeflag, 0, 0, b""));
        read_err(&end(t))
    };
    let size: (&str, &[u8]) = ("GNU.sparse.size", b"10");
    let blocks: (&str, &[u8]) = ("GNU.sparse.numblocks", b"0");
    let name: (&str, &[u8]) = ("GNU.sparse.name", b"f");
    for (records, typeflag, want) in [
        (
            vec![
                ("GNU.sparse.major", &b"2"[..]),
                ("GNU.sparse.minor", b"0"),
                size,
                name,
            ],
            b'0',
            "unsupported GNU sparse format version 2.0",
        ),
        (vec![size, blocks, name], b'0', "without a sparse map"),
        (
            vec![blocks, name, ("GNU.sparse.map", b"")],
            b'0',
            "without the real size",
        ),
        (
            vec![
                size,
                ("GNU.sparse.realsize", b"11"),
                blocks,
                name,
                ("GNU.sparse.map", b""),
            ],
            b'0',
            "disagree",
        ),
        (
            vec![size, name, ("GNU.sparse.map", b"")],
            b'0',
            "without GNU.sparse.numblocks",
        ),
        (
            vec![
                size,
                ("GNU.sparse.numblocks", b"2"),
                name,
                ("GNU.sparse.map", b""),
            ],
            b'0',
            "GNU.sparse.numblocks=2, but the map lists 0 fragments",
        ),
        (
            vec![size, blocks, name, ("GNU.sparse.map", b"1,")],
            b'0',
            "GNU.sparse.map=\"\" is not a whole number",
        ),
        (
            vec![size, blocks, name, ("GNU.sparse.map", b"1")],
            b'0',
            "odd count",
        ),
        (
            vec![
                size,
                ("GNU.sparse.numblocks", b"1"),
                name,
                ("GNU.sparse.numbytes", b"0"),
                ("GNU.sparse.offset", b"0"),
            ],
            b'0',
            "do not alternate",
        ),
        (
            vec![
                size,
                blocks,
                name,
                ("GNU.sparse.map", b""),
                ("GNU.sparse.offset", b"0"),
            ],
            b'0',
            "both GNU.sparse.offset/numbytes records and a GNU.sparse.map",
        ),
        (
            vec![size, blocks, ("GNU.sparse.map", b"")],
            b'0',
            "has no real name (GNU.sparse.name): its name is GNU tar's placeholder",
        ),
        (
            vec![size, blocks, name, ("GNU.sparse.map", b"")],
            b'5',
            "pax GNU.sparse records on a directory",
        ),
    ] {
        let e = x(&records, typeflag);
        assert!(e.contains(want), "{want:?} not in {e:?}");
    }
    // The same records, consistent: 10 zero bytes.
    let mut t = pax_header(
        b'x',
        &[
            size,
            ("GNU.sparse.numblocks", b"1"),
            name,
            ("GNU.sparse.map", b"10,0"),
        ],
    );
    t.extend(header(b"GNUSparseFile.1/f", b'0', 0, 0, b""));
    let e = read_all(&end(t)).unwrap();
    assert_eq!((&e[0].0.name[..], &e[0].1[..]), (&b"f"[..], &[0u8; 10][..]));

    // Old GNU: an entry with one number, or a map that ends yet says more follows.
    let mut t = old_gnu(b"f", &[(0, 4)], 10, b"AAAA");
    t[398..410].fill(0);
    seal(&mut t[..BLOCK]);
    assert!(read_err(&end(t)).contains("only one of its two numbers"));
    let mut t = old_gnu(b"f", &[(0, 4)], 10, b"AAAA");
    t[482] = 1;
    seal(&mut t[..BLOCK]);
    assert!(read_err(&end(t)).contains("says an extension block follows"));
    // 'S' with POSIX magic (STAR's layout, refused by Go): an unsupported type.
    let e = read_all(&end(header(b"s", b'S', 0, 0, b""))).unwrap();
    assert_eq!(e[0].0.kind, None);
}

#[test]
fn truncated_sparse_content_is_an_error() {
    let t = old_gnu(b"f", &lengths(&fragments()), REAL, &stored(&fragments()));
    let e = read_err(&t[..BLOCK + 5]);
    assert!(
        e.contains("truncated: the stream ends inside the content of f"),
        "{e}"
    );
    let t = old_gnu(b"f", &vec![(0, 0); 30], REAL, b"");
    let e = read_err(&t[..BLOCK + 100]);
    assert!(e.contains("inside the sparse map of f"), "{e}");
}

/// The hand-made sparse archives above mean to GNU tar what they mean to the reader.
#[test]
fn gnu_tar_extracts_the_hand_made_sparse_archives_alike() {
    use std::process::Command;
    if !gnu_tar_present() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    for (format, build) in FORMATS {
        for (case, (fragments, real)) in [(fragments(), REAL), many()].iter().enumerate() {
            let archive = t.path().join("a.tar");
            std::fs::write(
                &archive,
                end(build(
                    b"sparse",
                    &lengths(fragments),
                    *real,
                    &stored(fragments),
                )),
            )
            .unwrap();
            let out = t.path().join(format!("{format}-{case}"));
            std::fs::create_dir(&out).unwrap();
            let o = Command::new("tar")
                .arg("-xf")
                .arg(&archive)
                .arg("-C")
                .arg(&out)
                .output()
                .unwrap();
            assert!(
                o.status.success(),
                "{format}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            let got = std::fs::read(out.join("sparse")).unwrap();
            assert!(got == dense(fragments, *real), "{format} case {case}");
            let e = read_all(&std::fs::read(&archive).unwrap()).unwrap();
            assert!(e[0].1 == got, "{format} case {case}");
        }
    }
}

/// GNU tar's own sparse archives of real sparse files, read back byte for byte.
#[test]
fn gnu_tar_sparse_archives_are_expanded() {
    use std::io::{Seek, SeekFrom, Write};
    use std::os::unix::fs::MetadataExt;
    use std::process::Command;
    if !gnu_tar_present() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("src");
    std::fs::create_dir(&dir).unwrap();
    let make = |name: &str, len: u64, writes: &[(u64, &[u8])]| {
        let mut f = std::fs::File::create(dir.join(name)).unwrap();
        for (o, d) in writes {
            f.seek(SeekFrom::Start(*o)).unwrap();
            f.write_all(d).unwrap();
        }
        f.set_len(len).unwrap();
    };
    let mib = 1 << 20;
    make(
        "mid",
        3 * mib,
        &[(0, b"START"), (1_500_000, b"MIDDLE"), (3 * mib - 3, b"END")],
    );
    make("endhole", mib, &[(0, b"X")]);
    make("allhole", mib, &[]);
    let names = ["allhole", "endhole", "mid"];
    let holes = std::fs::metadata(dir.join("allhole")).unwrap().blocks() == 0;
    if !holes {
        // The rest runs, but GNU tar writes dense files: no sparse entry is read. CI's
        // filesystems store holes, so there this is a failure, never a silent gap.
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "this filesystem stores no holes (CI=true: the sparse formats must be tested)"
        );
        eprintln!("SKIPPED (in part): this filesystem stores no holes, GNU tar writes dense files");
    }
    for (flags, format) in [
        (
            &["--format=posix", "--sparse-version=0.0"][..],
            SparseFormat::Pax00,
        ),
        (
            &["--format=posix", "--sparse-version=0.1"],
            SparseFormat::Pax01,
        ),
        (
            &["--format=posix", "--sparse-version=1.0"],
            SparseFormat::Pax10,
        ),
        (&["--format=gnu"], SparseFormat::OldGnu),
    ] {
        let archive = t.path().join("a.tar");
        let o = Command::new("tar")
            .arg("--sparse")
            .args(flags)
            .arg("-cf")
            .arg(&archive)
            .arg("-C")
            .arg(&dir)
            .args(names)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let bytes = std::fs::read(&archive).unwrap();
        let e = read_all(&bytes).unwrap_or_else(|e| panic!("{format}: {e}"));
        assert_eq!(e.len(), names.len(), "{format}");
        for ((h, content), name) in e.iter().zip(names) {
            assert_eq!(h.name, name.as_bytes(), "{format}");
            assert!(
                *content == std::fs::read(dir.join(name)).unwrap(),
                "{format} {name}"
            );
            if holes {
                assert_eq!(h.sparse, Some(format), "{name}");
            }
        }
    }
}

/// Whether GNU tar can be run; without it a test is skipped with a `SKIPPED:` line, except
/// under `CI=true`, where a missing tool is a failure (CI installs every tool the tests use).
fn gnu_tar_present() -> bool {
    let present = std::process::Command::new("tar")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success() && o.stdout.starts_with(b"tar (GNU tar)"));
    if !present {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "GNU tar is not installed (CI=true: a missing tool is a failure)"
        );
        eprintln!("SKIPPED: GNU tar is not installed");
    }
    present
}

// ------------------------------------------------------------ reading in place

/// An entry's name and content.
type Named = (Vec<u8>, Vec<u8>);

/// Reads `tar` as a `--tar` input read in place does: each plain file's range recorded and
/// seeked past, its content taken from the range afterwards; a sparse file read through.
fn read_in_place(tar: &[u8]) -> Result<Vec<Named>, ReadError> {
    use std::io::{Cursor, Seek, SeekFrom};
    let len = tar.len() as u64;
    let mut r = Reader::new(Cursor::new(tar));
    let mut out = Vec::new();
    while let Some(item) = r.next_item()? {
        let Item::Entry(h) = item else { continue };
        let content = match r.content_range() {
            Some((at, n)) => {
                assert_eq!(n, h.size, "{:?}", h.name);
                r.seek_past_content(len, |c, n| c.seek(SeekFrom::Current(n as i64)).map(|_| ()))?;
                tar[at as usize..(at + n) as usize].to_vec()
            }
            None => {
                let mut content = vec![0u8; h.size as usize];
                let mut got = 0;
                while got < content.len() {
                    got += r.read_content(&mut content[got..])?;
                }
                content
            }
        };
        out.push((h.name.clone(), content));
    }
    Ok(out)
}

/// Seeking past the contents finds the entries and contents reading them finds, sparse
/// ones too, and a stream that ends inside a content or its padding is the same error.
#[test]
fn seeking_past_contents_reads_what_reading_them_does() {
    let (frags, real) = (fragments(), REAL);
    let mut t = file(b"a", b"");
    t.extend(file(b"b", &pattern(511, 1)));
    t.extend(old_gnu(b"s", &lengths(&frags), real, &stored(&frags)));
    t.extend(file(b"c", &pattern(512, 2)));
    t.extend(header(b"d", b'5', 0, 0, b""));
    t.extend(file(b"e", &pattern(1300, 3)));
    let t = end(t);
    let read: Vec<Named> = read_all(&t)
        .unwrap()
        .into_iter()
        .map(|(h, c)| (h.name, c))
        .collect();
    assert_eq!(read_in_place(&t).unwrap(), read);
    assert_eq!(read[2].1, dense(&frags, real));
    // Cut inside e's content, then inside its padding.
    let e_data = t.len() - 1024 - 1536;
    for cut in [e_data + 100, e_data + 1300 + 10] {
        let want = read_err(&t[..cut]);
        assert!(want.contains("truncated"), "{want}");
        assert_eq!(read_in_place(&t[..cut]).unwrap_err().to_string(), want);
    }
}
