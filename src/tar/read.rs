//! The one tar reader: a bounded, streaming reader of tar archives.
//!
//! [`Reader`] yields one entry at a time ([`ParsedHeader`]: the ustar fields with GNU `L`/`K`
//! long names and POSIX pax `x` records applied) and reads each file's *logical* content
//! into the caller's buffers. `--tar` inputs and the layer scanner of `verify` and `diff`
//! both use it, so an archive ocipack packs is read exactly as `ocipack verify` reads a
//! layer.
//!
//! Where tar readers disagree it follows Go's `archive/tar`, which Docker and containerd
//! use: no data after a directory, link or device header; a type-`\0` entry whose name ends
//! in `/` is a directory; an empty pax value keeps the header's field; a zero block followed
//! by anything but zeros is an error. Where readers disagree and neither reading is safe to
//! pick (two pax headers or two long names for one entry, a GNU long name *and* a pax
//! `path`, a pax global header between an extension header and its entry), it refuses.
//!
//! It never allocates from a size claim: extension headers larger than [`MAX_EXTENSION`]
//! stop it, sparse maps hold at most
//! [`MAX_SPARSE_ENTRIES`](super::sparse::MAX_SPARSE_ENTRIES) fragments, and content goes
//! into the caller's buffer. The `tar` crate is not used because it reads extension headers
//! whole, however large, ignores pax `mtime`, and hands a POSIX sparse file over as a file
//! named `GNUSparseFile.N/name` holding its sparse map.
//!
//! **Sparse files** are expanded, as Go's reader and GNU tar do, in each of GNU tar's four
//! formats ([`super::sparse`], whose rules a map must pass before any content is read). The
//! entry's size is the real size, its content the stored fragments with zeros in the holes,
//! its name `GNU.sparse.name` (else `path`, else the header's): GNU tar's
//! `GNUSparseFile.N/` placeholder never surfaces. Holes cost no input, so a small archive
//! can describe a large file: readers of the content (`diff`'s hashes, `--tar`'s dense
//! layer) spend time in proportion to the real size.
//!
//! **Names** obey the rules of [`super::name`], applied on the raw bytes before anything is
//! built per component: a header's `path` is [`entry_path`] of its name, and link targets
//! obey the same limits ([`ParsedHeader::link_target`]).

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, Read};

use super::EntryKind;
use super::field::{BLOCK, check_checksum, cstr, number, padding, parse_pax, pax_number, pax_time};
use super::name::{check_limits, display_name, entry_path, normalize_path};
use super::sparse::{
    Expansion, Map, OldGnuMap, PaxSparse, SparseFormat, Step, TextMap, old_gnu_real_size,
    validate_map,
};

/// The largest pax or GNU long-name header read, and the largest sparse map (format 1.0).
pub const MAX_EXTENSION: u64 = 1024 * 1024;

/// One entry's header as a runtime sees it: extensions applied, sparse maps resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedHeader {
    /// Byte offset of the entry's own header block in the stream.
    pub at: u64,
    /// The name as stored (after `L`, pax `path` and `GNU.sparse.name`), not normalised.
    pub name: Vec<u8>,
    /// The normalised path ([`entry_path`]; the root directory is empty), or why the name
    /// is unusable.
    pub path: Result<Vec<u8>, String>,
    /// The type flag byte.
    pub typeflag: u8,
    /// The kind, or `None` for a type an OCI layer may not contain.
    pub kind: Option<EntryKind>,
    /// The mode field (permission bits; some writers add type bits).
    pub mode: u64,
    /// Numeric owner.
    pub uid: u64,
    /// Numeric group.
    pub gid: u64,
    /// User name (empty for pre-POSIX headers).
    pub uname: Vec<u8>,
    /// Group name.
    pub gname: Vec<u8>,
    /// Modification time, whole seconds.
    pub mtime: i64,
    /// Logical content size: the real size of a sparse file; 0 for anything but files.
    pub size: u64,
    /// The size the headers claim (pax `size` or the size field), whatever the kind: readers
    /// disagree on whether data follows a directory, link or device whose claim is nonzero.
    pub size_field: u64,
    /// The link target as stored (after `K` and pax `linkpath`); empty when none.
    pub link: Vec<u8>,
    /// Device numbers of character and block devices.
    pub device: Option<(u64, u64)>,
    /// Extended attributes (`SCHILY.xattr.*`), by name.
    pub xattrs: BTreeMap<String, Vec<u8>>,
    /// How the content was stored, when sparse.
    pub sparse: Option<SparseFormat>,
}

impl ParsedHeader {
    /// The link target of a symlink (verbatim) or hard link (normalised like a name), or why
    /// it is unusable; `None` for other kinds. Limits are checked first, on the raw bytes.
    pub fn link_target(&self) -> Option<Result<Vec<u8>, String>> {
        match self.kind? {
            EntryKind::Symlink => Some(check_limits(&self.link).map(|()| self.link.clone())),
            EntryKind::Hardlink => {
                Some(check_limits(&self.link).and_then(|()| normalize_path(&self.link, false)))
            }
            _ => None,
        }
    }
}

/// What the reader found next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// An entry (boxed: a header is large, a global header small).
    Entry(Box<ParsedHeader>),
    /// A pax global header (`g`) at this byte offset: ignored by container runtimes.
    GlobalHeader {
        /// Byte offset of its header block.
        at: u64,
    },
}

/// How an archive ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// Two or more zero blocks (then only zeros).
    Marker,
    /// A single zero block (some readers want two).
    SingleZeroBlock,
    /// The stream ended after an entry, with no zero block at all.
    NoMarker,
}

/// What [`Reader::read_piece`] found next in an entry's logical content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece {
    /// This many bytes of data were placed at the start of the buffer.
    Data(usize),
    /// This many zero bytes follow (a hole of a sparse file); nothing was placed.
    Hole(u64),
    /// The content is at its end.
    End,
}

/// Why reading stopped.
#[derive(Debug)]
pub enum ReadError {
    /// The underlying stream failed (for a compressed input: it cannot be decompressed).
    Io {
        /// Bytes of tar read before the failure.
        at: u64,
        /// The error.
        error: io::Error,
    },
    /// The bytes are not an archive this reader accepts.
    Format {
        /// What is wrong.
        message: String,
        /// The entry concerned, when the message does not name it already.
        entry: Option<Vec<u8>>,
    },
}

impl ReadError {
    fn format(message: impl Into<String>) -> Self {
        ReadError::Format {
            message: message.into(),
            entry: None,
        }
    }

    fn about(message: impl Into<String>, entry: &[u8]) -> Self {
        ReadError::Format {
            message: message.into(),
            entry: Some(entry.to_vec()),
        }
    }

    /// The entry the error concerns, when its message does not name it already.
    pub fn entry(&self) -> Option<&[u8]> {
        match self {
            ReadError::Format { entry, .. } => entry.as_deref(),
            ReadError::Io { .. } => None,
        }
    }
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Io { at, error } => {
                write!(f, "cannot read the stream after {at} bytes of tar: {error}")
            }
            ReadError::Format { message, .. } => f.write_str(message),
        }
    }
}

impl std::error::Error for ReadError {}

/// Reads an entire stream, counting what is read.
struct Input<R> {
    r: R,
    pos: u64,
}

impl<R: Read> Input<R> {
    /// Fills `buf` as far as the stream allows; returns the number of bytes read.
    fn fill(&mut self, buf: &mut [u8]) -> Result<usize, ReadError> {
        let mut n = 0;
        while n < buf.len() {
            match self.r.read(&mut buf[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => {
                    return Err(ReadError::Io {
                        at: self.pos,
                        error,
                    });
                }
            }
        }
        self.pos += n as u64;
        Ok(n)
    }
}

/// Extension headers read for the entry that follows them.
#[derive(Default)]
struct Extensions {
    long_name: Option<Vec<u8>>,
    long_link: Option<Vec<u8>>,
    pax: Option<Vec<(String, Vec<u8>)>>,
}

impl Extensions {
    fn any(&self) -> bool {
        self.long_name.is_some() || self.long_link.is_some() || self.pax.is_some()
    }
}

/// A streaming tar reader (see the module documentation).
///
/// [`next_item`](Reader::next_item) skips whatever of the previous entry's content was not
/// read. After an error the reader is not usable any more.
pub struct Reader<R> {
    input: Input<R>,
    scratch: Vec<u8>,
    /// Bytes of the current entry's data not read yet.
    left: u64,
    /// Padding after the current entry's data.
    pad: u64,
    /// The current entry's sparse map, when sparse.
    expansion: Option<Expansion>,
    /// The current entry's name, for messages.
    current: Vec<u8>,
    end: Option<End>,
}

fn truncated(current: &[u8], content: bool, missing: u64) -> ReadError {
    let what = if content {
        format!("the content of {}", display_name(current))
    } else {
        "padding".to_string()
    };
    ReadError::format(format!(
        "truncated: the stream ends inside {what} ({missing} bytes missing)"
    ))
}

impl<R: Read> Reader<R> {
    /// A reader of the tar stream `r` (already decompressed).
    pub fn new(r: R) -> Self {
        Reader {
            input: Input { r, pos: 0 },
            scratch: vec![0u8; 64 * 1024],
            left: 0,
            pad: 0,
            expansion: None,
            current: Vec::new(),
            end: None,
        }
    }

    /// Bytes of the stream read so far.
    pub fn position(&self) -> u64 {
        self.input.pos
    }

    /// How the archive ended, once [`next_item`](Reader::next_item) returned `None`.
    pub fn end(&self) -> Option<End> {
        self.end
    }

    /// The next entry or global header; `None` at the end of the archive, after checking
    /// that nothing but zeros follows the end-of-archive marker (the whole stream is read,
    /// so that a caller hashing it sees every byte).
    pub fn next_item(&mut self) -> Result<Option<Item>, ReadError> {
        if self.end.is_some() {
            return Ok(None);
        }
        self.skip_content()?;
        let mut ext = Extensions::default();
        let mut header = [0u8; BLOCK];
        loop {
            let at = self.input.pos;
            let n = self.input.fill(&mut header)?;
            if n == 0 {
                if ext.any() {
                    return Err(ReadError::format(
                        "truncated: an extension header is not followed by an entry",
                    ));
                }
                self.end = Some(End::NoMarker);
                return Ok(None);
            }
            if n < BLOCK {
                return Err(ReadError::format(format!(
                    "truncated: the stream ends inside a header at byte {at}"
                )));
            }
            if header.iter().all(|&b| b == 0) {
                if ext.any() {
                    return Err(ReadError::format(
                        "an extension header is followed by the end-of-archive marker",
                    ));
                }
                self.trailer()?;
                return Ok(None);
            }
            check_checksum(&header).map_err(|m| ReadError::format(format!("{m} at byte {at}")))?;
            let size = number(&header[124..136], "size")
                .map_err(|m| ReadError::format(format!("header at byte {at}: {m}")))?;
            let twice = |what: &str| {
                ReadError::format(format!(
                    "header at byte {at}: a second {what} header for the same entry (readers disagree on which applies)"
                ))
            };
            match header[156] {
                b'x' => {
                    if ext.pax.is_some() {
                        return Err(twice("pax"));
                    }
                    let data = self.read_extension(size, "pax")?;
                    let records = parse_pax(&data)
                        .map_err(|m| ReadError::format(format!("pax header at byte {at}: {m}")))?;
                    ext.pax = Some(records);
                }
                b'g' => {
                    if ext.any() {
                        return Err(ReadError::format(format!(
                            "header at byte {at}: a pax global header between an extension header and its entry"
                        )));
                    }
                    let data = self.read_extension(size, "pax global")?;
                    parse_pax(&data).map_err(|m| {
                        ReadError::format(format!("pax global header at byte {at}: {m}"))
                    })?;
                    return Ok(Some(Item::GlobalHeader { at }));
                }
                flag @ (b'L' | b'K') => {
                    let taken = if flag == b'L' {
                        ext.long_name.is_some()
                    } else {
                        ext.long_link.is_some()
                    };
                    if taken {
                        return Err(twice("GNU long name"));
                    }
                    let data = self.read_extension(size, "GNU long name")?;
                    let value = Some(cstr(&data).to_vec());
                    if flag == b'L' {
                        ext.long_name = value;
                    } else {
                        ext.long_link = value;
                    }
                }
                _ => {
                    return self
                        .entry(&header, at, size, ext)
                        .map(|h| Some(Item::Entry(Box::new(h))));
                }
            }
        }
    }

    /// Skips what is left of the current entry's content and its padding.
    pub fn skip_content(&mut self) -> Result<(), ReadError> {
        self.expansion = None;
        let left = std::mem::take(&mut self.left);
        self.skip(left, true)?;
        let pad = std::mem::take(&mut self.pad);
        self.skip(pad, false)
    }

    /// Where the rest of the current entry's content lies in the stream when it is stored
    /// as it reads (a file that is not sparse): its start and length. `None` for a sparse
    /// file, whose content is its fragments with holes between them.
    pub fn content_range(&self) -> Option<(u64, u64)> {
        self.expansion
            .is_none()
            .then_some((self.input.pos, self.left))
    }

    /// Like [`skip_content`](Reader::skip_content), without reading: for a stream that is
    /// a file of `len` bytes read in place, whose contents the caller reads later at their
    /// offsets ([`content_range`](Reader::content_range)). `seek(r, n)` must move the
    /// underlying reader `n` bytes on. An entry that would end past `len` is the same
    /// truncation error reading would have found.
    pub fn seek_past_content(
        &mut self,
        len: u64,
        seek: impl FnOnce(&mut R, u64) -> io::Result<()>,
    ) -> Result<(), ReadError> {
        self.expansion = None;
        let (left, pad) = (
            std::mem::take(&mut self.left),
            std::mem::take(&mut self.pad),
        );
        let there = len.saturating_sub(self.input.pos);
        let n = there.min(left.saturating_add(pad));
        seek(&mut self.input.r, n).map_err(|error| ReadError::Io {
            at: self.input.pos,
            error,
        })?;
        self.input.pos += n;
        if there < left {
            return Err(truncated(&self.current, true, left - there));
        }
        if there < left.saturating_add(pad) {
            return Err(truncated(&self.current, false, left + pad - there));
        }
        Ok(())
    }

    /// Reads the current entry's logical content into `buf`: the data of a file, with the
    /// holes of a sparse file as zeros. Returns 0 at the end of the content (or for an
    /// empty `buf`).
    pub fn read_content(&mut self, buf: &mut [u8]) -> Result<usize, ReadError> {
        let most = buf.len() as u64;
        Ok(match self.advance(buf, most)? {
            Piece::Data(n) => n,
            Piece::Hole(n) => {
                // n <= buf.len().
                let n = n as usize;
                buf[..n].fill(0);
                n
            }
            Piece::End => 0,
        })
    }

    /// Like [`read_content`](Reader::read_content), but a hole is reported whole
    /// ([`Piece::Hole`]) instead of being written out as zeros.
    pub fn read_piece(&mut self, buf: &mut [u8]) -> Result<Piece, ReadError> {
        self.advance(buf, u64::MAX)
    }

    fn advance(&mut self, buf: &mut [u8], most_hole: u64) -> Result<Piece, ReadError> {
        if buf.is_empty() {
            return Ok(Piece::Data(0));
        }
        let Some(x) = self.expansion.as_mut() else {
            let want = buf
                .len()
                .min(usize::try_from(self.left).unwrap_or(usize::MAX));
            if want == 0 {
                return Ok(Piece::End);
            }
            let got = self.input.fill(&mut buf[..want])?;
            self.left -= got as u64;
            if got < want {
                return Err(truncated(&self.current, true, self.left));
            }
            return Ok(Piece::Data(got));
        };
        match x.step(most_hole) {
            Step::End => Ok(Piece::End),
            Step::Hole(n) => Ok(Piece::Hole(n)),
            Step::Data(left) => {
                let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                let got = self.input.fill(&mut buf[..want])?;
                self.left -= got as u64;
                x.consumed(got as u64);
                if got < want {
                    return Err(truncated(&self.current, true, self.left));
                }
                Ok(Piece::Data(got))
            }
        }
    }

    /// Reads and drops `n` bytes: content (`content`) or padding.
    fn skip(&mut self, mut n: u64, content: bool) -> Result<(), ReadError> {
        while n > 0 {
            let want = self
                .scratch
                .len()
                .min(usize::try_from(n).unwrap_or(usize::MAX));
            let got = self.input.fill(&mut self.scratch[..want])?;
            n -= got as u64;
            if got < want {
                return Err(truncated(&self.current, content, n));
            }
        }
        Ok(())
    }

    /// Reads an extension header's data, bounded.
    fn read_extension(&mut self, size: u64, what: &str) -> Result<Vec<u8>, ReadError> {
        if size > MAX_EXTENSION {
            return Err(ReadError::format(format!(
                "a {what} header at byte {} claims {size} bytes, more than the {MAX_EXTENSION} read",
                self.input.pos
            )));
        }
        let mut data = vec![0u8; size as usize];
        let got = self.input.fill(&mut data)?;
        if got < data.len() {
            return Err(ReadError::format(format!(
                "truncated: the stream ends inside a {what} header"
            )));
        }
        self.skip(padding(size), false)?;
        Ok(data)
    }

    /// After the first zero block: the rest of the stream must be zeros.
    fn trailer(&mut self) -> Result<(), ReadError> {
        let start = self.input.pos;
        loop {
            let n = self.input.fill(&mut self.scratch[..])?;
            if n == 0 {
                break;
            }
            if let Some(i) = self.scratch[..n].iter().position(|&b| b != 0) {
                let at = self.input.pos - n as u64 + i as u64;
                // Drain, so that a caller hashing the stream still sees all of it.
                while self.input.fill(&mut self.scratch[..])? > 0 {}
                return Err(ReadError::format(format!(
                    "data after the end-of-archive marker (a nonzero byte at {at}): tar readers stop at the marker and never see it"
                )));
            }
        }
        self.end = Some(if self.input.pos - start < BLOCK as u64 {
            End::SingleZeroBlock
        } else {
            End::Marker
        });
        Ok(())
    }

    /// Builds the header of the entry whose block is `h`, reading what belongs to its
    /// header from the stream (old GNU sparse extension blocks, a sparse 1.0 map).
    fn entry(
        &mut self,
        h: &[u8; BLOCK],
        at: u64,
        size_field: u64,
        ext: Extensions,
    ) -> Result<ParsedHeader, ReadError> {
        let magic = &h[257..265];
        let posix = &magic[..6] == b"ustar\0";
        let gnu = magic == b"ustar  \0";
        let pax_list = ext.pax.unwrap_or_default();
        // Later records win; an empty value keeps the header's field (as in Go's reader).
        let mut pax: BTreeMap<&str, &[u8]> = BTreeMap::new();
        for (k, v) in &pax_list {
            pax.insert(k.as_str(), v.as_slice());
        }
        let given = |key: &str| pax.get(key).copied().filter(|v| !v.is_empty());

        let mut name = cstr(&h[0..100]).to_vec();
        if posix && h[345] != 0 {
            let mut full = cstr(&h[345..500]).to_vec();
            full.push(b'/');
            full.extend_from_slice(&name);
            name = full;
        }
        let mut link = cstr(&h[157..257]).to_vec();
        let both = |gnu: &str, pax: &str, name: &[u8]| {
            ReadError::about(
                format!(
                    "header at byte {at}: both a GNU {gnu} header and a pax {pax} record (readers disagree on which applies)"
                ),
                name,
            )
        };
        match (ext.long_name, given("path")) {
            (Some(_), Some(_)) => return Err(both("long name", "path", &name)),
            (Some(n), None) => name = n,
            (None, Some(p)) => name = p.to_vec(),
            (None, None) => {}
        }
        match (ext.long_link, given("linkpath")) {
            (Some(_), Some(_)) => return Err(both("long link name", "linkpath", &name)),
            (Some(l), None) => link = l,
            (None, Some(p)) => link = p.to_vec(),
            (None, None) => {}
        }

        let typeflag = h[156];
        let bad =
            |m: String, name: &[u8]| ReadError::about(format!("header at byte {at}: {m}"), name);
        let mode = number(&h[100..108], "mode").map_err(|m| bad(m, &name))?;
        let mut uid = number(&h[108..116], "uid").map_err(|m| bad(m, &name))?;
        let mut gid = number(&h[116..124], "gid").map_err(|m| bad(m, &name))?;
        let mut mtime = i64::try_from(number(&h[136..148], "mtime").map_err(|m| bad(m, &name))?)
            .map_err(|_| bad("mtime out of range".into(), &name))?;
        let (mut uname, mut gname) = if posix || gnu {
            (cstr(&h[265..297]).to_vec(), cstr(&h[297..329]).to_vec())
        } else {
            (Vec::new(), Vec::new())
        };
        let mut size = size_field;
        let mut xattrs = BTreeMap::new();
        let mut sparse_records = false;
        for (&k, &v) in &pax {
            if let Some(x) = k.strip_prefix("SCHILY.xattr.") {
                xattrs.insert(x.to_string(), v.to_vec());
                continue;
            }
            if k.starts_with("GNU.sparse.") {
                sparse_records = true;
                continue;
            }
            if v.is_empty() {
                continue;
            }
            match k {
                "size" => size = pax_number(k, v).map_err(|m| bad(m, &name))?,
                "uid" => uid = pax_number(k, v).map_err(|m| bad(m, &name))?,
                "gid" => gid = pax_number(k, v).map_err(|m| bad(m, &name))?,
                "mtime" => mtime = pax_time(v).map_err(|m| bad(m, &name))?,
                "uname" => uname = v.to_vec(),
                "gname" => gname = v.to_vec(),
                _ => {}
            }
        }

        let kind = match typeflag {
            b'0' | b'7' => Some(EntryKind::File),
            // Go's reader: an old-style regular file whose name ends in '/' is a directory.
            0 if name.ends_with(b"/") => Some(EntryKind::Dir),
            0 => Some(EntryKind::File),
            b'1' => Some(EntryKind::Hardlink),
            b'2' => Some(EntryKind::Symlink),
            b'3' => Some(EntryKind::CharDevice),
            b'4' => Some(EntryKind::BlockDevice),
            b'5' => Some(EntryKind::Dir),
            b'6' => Some(EntryKind::Fifo),
            // Only the GNU layout; STAR uses 'S' with another one (Go refuses it too).
            b'S' if gnu => Some(EntryKind::File),
            _ => None,
        };
        // Go's archive/tar reads no data after these headers; GNU tar would read `size`
        // bytes. Callers see `size_field` and decide.
        let header_only = kind.is_some_and(|k| k != EntryKind::File);
        let physical = if header_only { 0 } else { size };
        self.current = name.clone();
        self.left = physical;
        self.pad = padding(physical);
        self.expansion = None;

        let mut logical = if kind == Some(EntryKind::File) {
            size
        } else {
            0
        };
        let mut sparse = None;
        if typeflag == b'S' && gnu {
            if sparse_records {
                return Err(ReadError::about(
                    format!(
                        "header at byte {at}: an old GNU sparse header with pax GNU.sparse records"
                    ),
                    &name,
                ));
            }
            let real = old_gnu_real_size(h).map_err(|m| bad(m, &name))?;
            let map = self.old_gnu_map(h, at, &name)?;
            self.expand(map, real, &name)?;
            logical = real;
            sparse = Some(SparseFormat::OldGnu);
        } else if sparse_records {
            if kind != Some(EntryKind::File) {
                let what = match kind {
                    Some(k) => format!("a {k}"),
                    None => format!("an entry of type {:?}", char::from(typeflag)),
                };
                return Err(ReadError::about(
                    format!("header at byte {at}: pax GNU.sparse records on {what}"),
                    &name,
                ));
            }
            if let Some(n) = given("GNU.sparse.name") {
                name = n.to_vec();
                self.current = name.clone();
            }
            if name
                .split(|&b| b == b'/')
                .any(|c| c.starts_with(b"GNUSparseFile."))
            {
                return Err(ReadError::format(format!(
                    "header at byte {at}: the sparse file {} has no real name (GNU.sparse.name): its name is GNU tar's placeholder",
                    display_name(&name)
                )));
            }
            let (format, real) = self.pax_sparse(&pax, &pax_list, at, &name)?;
            logical = real;
            sparse = Some(format);
        }

        let path = entry_path(&name, kind);
        let device = if matches!(kind, Some(EntryKind::CharDevice | EntryKind::BlockDevice)) {
            Some((
                number(&h[329..337], "devmajor").map_err(|m| bad(m, &name))?,
                number(&h[337..345], "devminor").map_err(|m| bad(m, &name))?,
            ))
        } else {
            None
        };
        Ok(ParsedHeader {
            at,
            name,
            path,
            typeflag,
            kind,
            mode,
            uid,
            gid,
            uname,
            gname,
            mtime,
            size: logical,
            size_field: size,
            link,
            device,
            xattrs,
            sparse,
        })
    }

    /// Reads the map of an old GNU sparse header: the header's entries, then the extension
    /// blocks that follow it ([`OldGnuMap`]).
    fn old_gnu_map(&mut self, h: &[u8; BLOCK], at: u64, name: &[u8]) -> Result<Map, ReadError> {
        let err =
            |m: String| ReadError::about(format!("old GNU sparse header at byte {at}: {m}"), name);
        let mut map = OldGnuMap::new(h).map_err(err)?;
        let mut block = [0u8; BLOCK];
        while map.wants_block().map_err(err)? {
            let got = self.input.fill(&mut block)?;
            if got < BLOCK {
                return Err(ReadError::format(format!(
                    "truncated: the stream ends inside the sparse map of {}",
                    display_name(name)
                )));
            }
            map.add_block(&block).map_err(err)?;
        }
        Ok(map.into_map())
    }

    /// Resolves the pax GNU sparse records of a file entry ([`PaxSparse`]): the format, the
    /// real size, and the validated map (read from the data for 1.0), which becomes the
    /// expansion.
    fn pax_sparse(
        &mut self,
        pax: &BTreeMap<&str, &[u8]>,
        list: &[(String, Vec<u8>)],
        at: u64,
        name: &[u8],
    ) -> Result<(SparseFormat, u64), ReadError> {
        let err = |m: String| ReadError::about(format!("pax header at byte {at}: {m}"), name);
        let mut records = PaxSparse::new(pax, list).map_err(err)?;
        let map = match records.map.take() {
            Some(map) => map,
            None => self.map_1_0(name)?,
        };
        records.check_count(&map).map_err(err)?;
        self.expand(map, records.real, name)?;
        Ok((records.format, records.real))
    }

    /// Reads a GNU sparse 1.0 map from the start of the entry's data ([`TextMap`]), block by
    /// block, within the entry's data and [`MAX_EXTENSION`].
    fn map_1_0(&mut self, name: &[u8]) -> Result<Map, ReadError> {
        let err =
            |m: String| ReadError::format(format!("the sparse map of {} {m}", display_name(name)));
        let mut text = TextMap::default();
        let mut read: u64 = 0;
        let mut block = [0u8; BLOCK];
        while !text.complete() {
            if BLOCK as u64 > self.left {
                return Err(err(format!(
                    "runs past the entry's {} bytes of data",
                    self.left + read
                )));
            }
            if read + BLOCK as u64 > MAX_EXTENSION {
                return Err(err(format!(
                    "is longer than the {MAX_EXTENSION} bytes read"
                )));
            }
            let got = self.input.fill(&mut block)?;
            self.left -= got as u64;
            if got < BLOCK {
                return Err(ReadError::format(format!(
                    "truncated: the stream ends inside the sparse map of {}",
                    display_name(name)
                )));
            }
            read += BLOCK as u64;
            text.feed(&block).map_err(err)?;
        }
        Ok(text.into_map())
    }

    /// Validates `map` against the real size and the bytes stored (what is left of the
    /// entry's data), and makes it the current entry's expansion.
    fn expand(&mut self, map: Map, real: u64, name: &[u8]) -> Result<(), ReadError> {
        validate_map(&map, real, self.left).map_err(|m| {
            ReadError::format(format!("the sparse map of {} {m}", display_name(name)))
        })?;
        self.expansion = Some(Expansion::new(map, real));
        Ok(())
    }
}

#[cfg(test)]
mod tests;
