//! A deterministic tar writer.
//!
//! The format, fixed for a major version of ocipack:
//! - POSIX ustar headers (`ustar\0` magic, version `00`), 512-byte blocks, the archive ends
//!   with two zero blocks and is not padded to a record size.
//! - The ustar `prefix` field is never used. Whenever a name (directories end in `/`) or a
//!   link target is longer than 100 bytes, or a number does not fit its octal field, or the
//!   entry has xattrs, a POSIX pax extended header (`x`) precedes the entry and carries
//!   `path`, `linkpath`, `size`, `uid`, `gid`, `mtime` or `SCHILY.xattr.*` records, in that
//!   order (xattrs sorted by name). The pax header is named `PaxHeaders/<base name>` (cut to
//!   100 bytes), mode 0644, owner 0:0, the entry's mtime. GNU `L`/`K` entries are never written.
//! - User and group names are always empty; atime and ctime are never written; numbers are
//!   zero-padded octal terminated by NUL; device numbers are written for every entry (0
//!   unless a device); the checksum is six octal digits, NUL, space.

use std::io::{self, Read, Write};

/// What an entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A regular file of `size` bytes.
    File {
        /// Content length.
        size: u64,
    },
    /// A directory.
    Dir,
    /// A symbolic link to a target, stored verbatim.
    Symlink(Vec<u8>),
    /// A hard link to an earlier entry's path.
    Hardlink(Vec<u8>),
    /// A named pipe.
    Fifo,
    /// A character device.
    CharDevice {
        /// Major number.
        major: u32,
        /// Minor number.
        minor: u32,
    },
    /// A block device.
    BlockDevice {
        /// Major number.
        major: u32,
        /// Minor number.
        minor: u32,
    },
}

/// The fields of one entry's header as the writer is given them, already normalised
/// (the reader's counterpart, with what it found in an archive, is
/// [`super::read::ParsedHeader`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderFields {
    /// Relative path without a trailing slash (`usr/bin/env`).
    pub path: Vec<u8>,
    /// What the entry is.
    pub kind: Kind,
    /// Permission bits including setuid, setgid and sticky (`0o7777` at most).
    pub mode: u32,
    /// Numeric owner.
    pub uid: u64,
    /// Numeric group.
    pub gid: u64,
    /// Modification time, seconds since the epoch (never negative).
    pub mtime: u64,
    /// Extended attributes, sorted by name.
    pub xattrs: Vec<(String, Vec<u8>)>,
}

const BLOCK: usize = 512;

/// Writes tar entries to `W` in ocipack's format.
pub struct TarWriter<W: Write> {
    out: W,
    buf: Vec<u8>,
    /// Content passes through here, reused from file to file: grown (and zeroed) only up
    /// to the largest content seen, at most [`COPY_BUF`].
    copy: Vec<u8>,
}

/// The most content read from a file at once.
const COPY_BUF: usize = 256 * 1024;

impl<W: Write> TarWriter<W> {
    /// A writer producing into `out`.
    pub fn new(out: W) -> Self {
        TarWriter {
            out,
            buf: Vec::with_capacity(4 * BLOCK),
            copy: Vec::new(),
        }
    }

    /// Appends an entry; for files, exactly `size` bytes are copied from `content`
    /// (an error if it yields fewer or more, e.g. a file that changed while being read).
    pub fn append(&mut self, h: &HeaderFields, content: Option<&mut dyn Read>) -> io::Result<()> {
        self.buf.clear();
        encode_header(h, &mut self.buf)?;
        self.out.write_all(&self.buf)?;
        if let Kind::File { size } = h.kind {
            let content = content.ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidInput, "file entry without content")
            })?;
            copy_exact(content, &mut self.out, size, &mut self.copy)?;
            let pad = (BLOCK - (size % BLOCK as u64) as usize) % BLOCK;
            self.out.write_all(&[0u8; BLOCK][..pad])?;
        }
        Ok(())
    }

    /// Writes the end-of-archive marker and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.write_all(&[0u8; 2 * BLOCK])?;
        Ok(self.out)
    }
}

fn copy_exact(r: &mut dyn Read, w: &mut dyn Write, size: u64, buf: &mut Vec<u8>) -> io::Result<()> {
    // One buffer for every file, grown to the largest content seen: a fresh one per file
    // (zeroed, and for large files mapped and unmapped) was the tar thread's largest cost
    // on trees of many files.
    let need = usize::try_from(size).unwrap_or(usize::MAX).min(COPY_BUF);
    if buf.len() < need {
        buf.resize(need, 0);
    }
    let buf = &mut buf[..need];
    let mut left = size;
    while left > 0 {
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = r.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("content ended {left} bytes early (changed while being read?)"),
            ));
        }
        w.write_all(&buf[..n])?;
        left -= n as u64;
    }
    // A source that still has data grew while we read it: that would make the tar lie.
    let mut probe = [0u8; 1];
    if r.read(&mut probe)? != 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "content is longer than recorded (changed while being read?)",
        ));
    }
    Ok(())
}

fn pax_record(out: &mut Vec<u8>, key: &str, value: &[u8]) {
    // "%d %s=%s\n", where the length counts itself.
    let body = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = body + 1;
    loop {
        let digits = len.to_string().len();
        if body + digits == len {
            break;
        }
        len = body + digits;
    }
    out.extend_from_slice(len.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(key.as_bytes());
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
}

/// True if `v` fits an octal field of `width` bytes (one byte is the NUL).
fn fits(v: u64, width: usize) -> bool {
    let digits = width - 1;
    digits >= 22 || v < (1u64 << (3 * digits))
}

fn put_octal(field: &mut [u8], v: u64) {
    let digits = field.len() - 1;
    let s = format!("{v:0digits$o}");
    field[..digits].copy_from_slice(&s.as_bytes()[s.len() - digits..]);
    field[digits] = 0;
}

fn encode_header(h: &HeaderFields, out: &mut Vec<u8>) -> io::Result<()> {
    let mut name = h.path.clone();
    if h.kind == Kind::Dir {
        name.push(b'/');
    }
    let (typeflag, link, size, dev) = match &h.kind {
        Kind::File { size } => (b'0', &[][..], *size, (0, 0)),
        Kind::Hardlink(t) => (b'1', &t[..], 0, (0, 0)),
        Kind::Symlink(t) => (b'2', &t[..], 0, (0, 0)),
        Kind::CharDevice { major, minor } => (b'3', &[][..], 0, (*major, *minor)),
        Kind::BlockDevice { major, minor } => (b'4', &[][..], 0, (*major, *minor)),
        Kind::Dir => (b'5', &[][..], 0, (0, 0)),
        Kind::Fifo => (b'6', &[][..], 0, (0, 0)),
    };

    let mut pax = Vec::new();
    if name.len() > 100 {
        pax_record(&mut pax, "path", &name);
    }
    if link.len() > 100 {
        pax_record(&mut pax, "linkpath", link);
    }
    if !fits(size, 12) {
        pax_record(&mut pax, "size", size.to_string().as_bytes());
    }
    if !fits(h.uid, 8) {
        pax_record(&mut pax, "uid", h.uid.to_string().as_bytes());
    }
    if !fits(h.gid, 8) {
        pax_record(&mut pax, "gid", h.gid.to_string().as_bytes());
    }
    if !fits(h.mtime, 12) {
        pax_record(&mut pax, "mtime", h.mtime.to_string().as_bytes());
    }
    for (k, v) in &h.xattrs {
        pax_record(&mut pax, &format!("SCHILY.xattr.{k}"), v);
    }

    if !pax.is_empty() {
        let base = h.path.rsplit(|&b| b == b'/').next().unwrap_or(&h.path[..]);
        let mut pax_name = b"PaxHeaders/".to_vec();
        pax_name.extend_from_slice(&base[..base.len().min(100 - pax_name.len())]);
        let block = ustar_block(
            &pax_name,
            b'x',
            &[],
            pax.len() as u64,
            0o644,
            0,
            0,
            // The same rule as the entry's own header: a time too big for the field is
            // 0 there, and only the pax record holds it.
            if fits(h.mtime, 12) { h.mtime } else { 0 },
            (0, 0),
        );
        out.extend_from_slice(&block);
        out.extend_from_slice(&pax);
        let pad = (BLOCK - pax.len() % BLOCK) % BLOCK;
        out.extend_from_slice(&[0u8; BLOCK][..pad]);
    }

    let clip = |b: &[u8], n: usize| b[..b.len().min(n)].to_vec();
    let block = ustar_block(
        &clip(&name, 100),
        typeflag,
        &clip(link, 100),
        if fits(size, 12) { size } else { 0 },
        h.mode & 0o7777,
        if fits(h.uid, 8) { h.uid } else { 0 },
        if fits(h.gid, 8) { h.gid } else { 0 },
        if fits(h.mtime, 12) { h.mtime } else { 0 },
        dev,
    );
    out.extend_from_slice(&block);
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn ustar_block(
    name: &[u8],
    typeflag: u8,
    link: &[u8],
    size: u64,
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: u64,
    dev: (u32, u32),
) -> [u8; BLOCK] {
    let mut b = [0u8; BLOCK];
    b[..name.len()].copy_from_slice(name);
    put_octal(&mut b[100..108], u64::from(mode));
    put_octal(&mut b[108..116], uid);
    put_octal(&mut b[116..124], gid);
    put_octal(&mut b[124..136], size);
    put_octal(&mut b[136..148], mtime);
    b[156] = typeflag;
    b[157..157 + link.len()].copy_from_slice(link);
    b[257..263].copy_from_slice(b"ustar\0");
    b[263..265].copy_from_slice(b"00");
    // uname [265..297] and gname [297..329] stay empty.
    put_octal(&mut b[329..337], u64::from(dev.0));
    put_octal(&mut b[337..345], u64::from(dev.1));
    b[148..156].copy_from_slice(b"        ");
    let sum: u32 = b.iter().map(|&x| u32::from(x)).sum();
    let s = format!("{sum:06o}");
    b[148..154].copy_from_slice(s.as_bytes());
    b[154] = 0;
    b[155] = b' ';
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hdr(path: &str, kind: Kind) -> HeaderFields {
        HeaderFields {
            path: path.as_bytes().to_vec(),
            kind,
            mode: 0o755,
            uid: 0,
            gid: 0,
            mtime: 1_700_000_000,
            xattrs: vec![],
        }
    }

    #[test]
    fn pax_record_length_counts_itself() {
        let mut v = Vec::new();
        pax_record(&mut v, "path", b"x");
        assert_eq!(v, b"9 path=x\n");
        let mut v = Vec::new();
        let long = vec![b'a'; 95];
        pax_record(&mut v, "path", &long);
        let s = String::from_utf8(v.clone()).unwrap();
        let n: usize = s.split(' ').next().unwrap().parse().unwrap();
        assert_eq!(n, v.len());
    }

    #[test]
    fn read_back_with_tar_crate() {
        let long_name = format!("d/{}", "n".repeat(150));
        let long_link = "t".repeat(120);
        let mut w = TarWriter::new(Vec::new());
        w.append(&hdr("d", Kind::Dir), None).unwrap();
        let mut f = hdr(&long_name, Kind::File { size: 5 });
        f.mode = 0o4755;
        f.uid = 5_000_000;
        f.xattrs = vec![("user.k".into(), b"v".to_vec())];
        w.append(&f, Some(&mut &b"hello"[..])).unwrap();
        w.append(
            &hdr("d/l", Kind::Symlink(long_link.clone().into_bytes())),
            None,
        )
        .unwrap();
        w.append(
            &hdr("d/h", Kind::Hardlink(long_name.clone().into_bytes())),
            None,
        )
        .unwrap();
        w.append(&hdr("d/p", Kind::Fifo), None).unwrap();
        let bytes = w.finish().unwrap();
        assert_eq!(bytes.len() % 512, 0);

        let mut ar = tar::Archive::new(&bytes[..]);
        let mut seen = vec![];
        for e in ar.entries().unwrap() {
            let mut e = e.unwrap();
            let p = String::from_utf8(e.path_bytes().to_vec()).unwrap();
            let h = e.header().clone();
            let mut data = Vec::new();
            let link = e
                .link_name_bytes()
                .map(|l| String::from_utf8(l.to_vec()).unwrap());
            let xattr = e
                .pax_extensions()
                .unwrap()
                .map(|exts| {
                    exts.filter_map(|x| x.ok())
                        .any(|x| x.key() == Ok("SCHILY.xattr.user.k") && x.value_bytes() == b"v")
                })
                .unwrap_or(false);
            e.read_to_end(&mut data).unwrap();
            seen.push((p, h.entry_type(), h.mode().unwrap(), link, data, xattr));
        }
        assert_eq!(seen.len(), 5);
        assert_eq!(seen[0].0, "d/");
        assert_eq!(seen[1].0, long_name);
        assert_eq!(seen[1].2, 0o4755);
        assert_eq!(seen[1].4, b"hello");
        assert!(seen[1].5, "xattr lost");
        assert_eq!(seen[2].3.as_deref(), Some(long_link.as_str()));
        assert_eq!(seen[3].1, tar::EntryType::Link);
        assert_eq!(seen[3].3.as_deref(), Some(long_name.as_str()));
        assert_eq!(seen[4].1, tar::EntryType::Fifo);
    }

    /// An mtime too big for the 11-digit octal field (`--created @20000000000 --mtime
    /// fixed`) is 0 in both headers, the pax pseudo-entry's included, never truncated
    /// digits; the pax record holds it.
    #[test]
    fn an_mtime_too_big_for_octal_is_zero_in_both_headers() {
        let mut f = hdr("f", Kind::File { size: 0 });
        f.mtime = 20_000_000_000;
        let mut out = Vec::new();
        encode_header(&f, &mut out).unwrap();
        assert_eq!(out.len(), 3 * BLOCK, "pax header, its record, the entry");
        let (pax, entry) = (&out[..BLOCK], &out[2 * BLOCK..]);
        assert_eq!(pax[156], b'x');
        assert_eq!(&pax[136..148], b"00000000000\0", "pax header mtime");
        assert_eq!(&entry[136..148], b"00000000000\0", "entry mtime");
        let record = String::from_utf8_lossy(&out[BLOCK..2 * BLOCK]);
        assert!(record.contains("mtime=20000000000\n"), "{record}");
    }

    #[test]
    fn short_content_is_an_error() {
        let mut w = TarWriter::new(Vec::new());
        let e = w
            .append(&hdr("f", Kind::File { size: 10 }), Some(&mut &b"abc"[..]))
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        let mut w = TarWriter::new(Vec::new());
        let e = w
            .append(&hdr("f", Kind::File { size: 2 }), Some(&mut &b"abc"[..]))
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
    }
}
