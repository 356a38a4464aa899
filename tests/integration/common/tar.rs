//! The one hand-written tar writer of the tests, for the archives GNU tar refuses to write
//! (pathological names, `.` as a regular file, device entries without root) and for
//! headers with one field set on purpose (an owner, an mtime, a directory with data).

/// The mtime of an entry unless [`Header::mtime`] sets another: 2020-09-13, before the
/// `created` time of every image the tests build.
pub const MTIME: u64 = 1_600_000_000;

/// Writes `v` into the numeric header `field` as zero-padded octal ending in a NUL.
fn octal(field: &mut [u8], v: u64) {
    let s = format!("{:0w$o}\0", v, w = field.len() - 1);
    field.copy_from_slice(s.as_bytes());
}

/// Sets the checksum of the header block `h` (after a test changed one of its fields).
pub fn set_checksum(h: &mut [u8]) {
    h[148..156].copy_from_slice(b"        ");
    let sum: u64 = h.iter().map(|&b| u64::from(b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
}

/// One ustar header block: `Header::new(name, kind)` is mode 0644, owner 0:0, size 0, mtime
/// [`MTIME`], no link target, device 1:3 for a character device (`kind` `3`); the other
/// methods change one field each.
#[derive(Clone, Copy)]
pub struct Header<'a> {
    name: &'a [u8],
    kind: u8,
    link: &'a [u8],
    size: u64,
    uid: u64,
    mtime: u64,
}

impl<'a> Header<'a> {
    /// A header for `name` (at most 100 bytes) of type `kind` (`0` file, `1` hard link, `2`
    /// symlink, `3` character device, `5` directory, `x` pax, or any other byte).
    pub fn new(name: &'a [u8], kind: u8) -> Self {
        assert!(name.len() <= 100, "a ustar name has at most 100 bytes");
        Header {
            name,
            kind,
            link: b"",
            size: 0,
            uid: 0,
            mtime: MTIME,
        }
    }

    /// The link target (at most 100 bytes).
    pub fn link(self, link: &'a [u8]) -> Self {
        assert!(
            link.len() <= 100,
            "a ustar link target has at most 100 bytes"
        );
        Header { link, ..self }
    }

    /// The size field (the data itself follows the header, see [`tar_member`]).
    pub fn size(self, size: u64) -> Self {
        Header { size, ..self }
    }

    /// The owner's uid (the gid stays 0).
    pub fn uid(self, uid: u64) -> Self {
        Header { uid, ..self }
    }

    /// The mtime, in Unix seconds.
    pub fn mtime(self, mtime: u64) -> Self {
        Header { mtime, ..self }
    }

    /// The 512 bytes, with a valid checksum.
    pub fn block(&self) -> Vec<u8> {
        let mut h = vec![0u8; 512];
        h[..self.name.len()].copy_from_slice(self.name);
        octal(&mut h[100..108], 0o644);
        octal(&mut h[108..116], self.uid);
        octal(&mut h[116..124], 0);
        octal(&mut h[124..136], self.size);
        octal(&mut h[136..148], self.mtime);
        h[156] = self.kind;
        h[157..157 + self.link.len()].copy_from_slice(self.link);
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        let (major, minor) = if self.kind == b'3' { (1, 3) } else { (0, 0) };
        octal(&mut h[329..337], major);
        octal(&mut h[337..345], minor);
        set_checksum(&mut h);
        h
    }
}

/// A pax record `LEN key=value\n`.
pub fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let body = 1 + key.len() + 1 + value.len() + 1;
    let mut total = body + 1;
    while total != body + total.to_string().len() {
        total = body + total.to_string().len();
    }
    let mut r = format!("{total} {key}=").into_bytes();
    r.extend_from_slice(value);
    r.push(b'\n');
    assert_eq!(r.len(), total);
    r
}

/// A pax extended header member holding `records` (values however long), which apply to
/// the member after it.
pub fn pax_member(records: &[(&str, &[u8])]) -> Vec<u8> {
    let data: Vec<u8> = records
        .iter()
        .flat_map(|(key, value)| pax_record(key, value))
        .collect();
    let mut out = Header::new(b"PaxHeaders/long", b'x')
        .size(data.len() as u64)
        .block();
    out.extend(data);
    pad(&mut out);
    out
}

/// Pads `v` with zeros to a whole number of 512-byte blocks.
pub fn pad(v: &mut Vec<u8>) {
    v.resize(v.len().div_ceil(512) * 512, 0);
}

/// One member: a pax header carrying `name` or `link` when either exceeds 100 bytes, then
/// the ustar header (see [`Header`]), then the data.
pub fn tar_member(name: &[u8], kind: u8, link: &[u8], data: &[u8]) -> Vec<u8> {
    let mut pax = Vec::new();
    if name.len() > 100 {
        pax.push(("path", name));
    }
    if link.len() > 100 {
        pax.push(("linkpath", link));
    }
    let mut out = if pax.is_empty() {
        Vec::new()
    } else {
        pax_member(&pax)
    };
    let name = if name.len() > 100 {
        &b"long-name"[..]
    } else {
        name
    };
    let link = if link.len() > 100 {
        &b"long-link"[..]
    } else {
        link
    };
    out.extend(
        Header::new(name, kind)
            .link(link)
            .size(data.len() as u64)
            .block(),
    );
    out.extend(data);
    pad(&mut out);
    out
}

/// One member (`name` at most 100 bytes): a regular file holding `data`.
pub fn tar_file(name: &[u8], data: &[u8]) -> Vec<u8> {
    assert!(name.len() <= 100);
    tar_member(name, b'0', b"", data)
}

/// A whole archive: the members and the two zero blocks.
pub fn tar_of(members: &[Vec<u8>]) -> Vec<u8> {
    let mut v: Vec<u8> = members.concat();
    v.extend([0u8; 1024]);
    v
}
