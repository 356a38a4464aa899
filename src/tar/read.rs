//! A bounded reader of layer tar streams, for checking and comparing, never extracting.
//!
//! It reads ustar, GNU (`L`/`K` long names) and POSIX pax (`x`) headers, as container
//! runtimes do, and follows Go's `archive/tar` where readers disagree (no data after a
//! directory, link or device header; a zero block followed by anything but zeros is an
//! error). It never allocates from a size claim: extension headers larger than
//! [`MAX_EXTENSION`] stop the scan, file contents are skipped (or hashed) in fixed-size
//! buffers. The `tar` crate is not used here because it reads extension headers whole,
//! however large, and ignores pax `mtime`.
//!
//! Rules: names must not be absolute, contain `..` or repeat an earlier entry; a hard link
//! must name an earlier non-directory entry; only the entry types the OCI layer format
//! lists are allowed. Reproducibility smells are warnings: nonzero owners, user or group
//! names, entries out of byte order, mtimes after the image's `created`.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io::{self, Read};

use crate::digest::{Digest, Hasher};
use crate::input::normalize_path;

/// The largest pax or GNU long-name header read.
pub const MAX_EXTENSION: u64 = 1024 * 1024;
/// Individual errors listed per rule before they are summarised.
pub const MAX_LISTED: usize = 10;

const BLOCK: usize = 512;

/// How the message of a scan stopped by a read (decompression) error begins.
pub const READ_ERROR: &str = "the layer cannot be decompressed or read";

/// What an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A hard link to an earlier entry.
    Hardlink,
    /// A symbolic link.
    Symlink,
    /// A character device.
    CharDevice,
    /// A block device.
    BlockDevice,
    /// A directory.
    Dir,
    /// A named pipe.
    Fifo,
}

impl fmt::Display for EntryKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EntryKind::File => "file",
            EntryKind::Hardlink => "hard link",
            EntryKind::Symlink => "symlink",
            EntryKind::CharDevice => "character device",
            EntryKind::BlockDevice => "block device",
            EntryKind::Dir => "directory",
            EntryKind::Fifo => "FIFO",
        })
    }
}

/// One entry as a tar reader sees it (after pax and GNU extensions are applied).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The normalised path (`usr/bin/env`; the root directory is empty).
    pub path: Vec<u8>,
    /// The kind.
    pub kind: EntryKind,
    /// The mode field (permission bits; some writers add type bits).
    pub mode: u64,
    /// Numeric owner.
    pub uid: u64,
    /// Numeric group.
    pub gid: u64,
    /// User name.
    pub uname: Vec<u8>,
    /// Group name.
    pub gname: Vec<u8>,
    /// Modification time, whole seconds.
    pub mtime: i64,
    /// Content size (0 for anything but files).
    pub size: u64,
    /// Link target (symlinks verbatim, hard links normalised).
    pub link: Option<Vec<u8>>,
    /// Device numbers.
    pub device: Option<(u64, u64)>,
    /// Extended attributes (`SCHILY.xattr.*`), by name.
    pub xattrs: BTreeMap<String, Vec<u8>>,
    /// SHA-256 of the content, when asked for.
    pub content: Option<Digest>,
}

/// How to scan.
#[derive(Debug, Clone, Default)]
pub struct ScanOptions {
    /// The image's `created` (Unix seconds): later mtimes are warned about.
    pub created: Option<i64>,
    /// Keep every entry (for `diff`).
    pub keep_entries: bool,
    /// Hash file contents (for `diff`).
    pub hash_contents: bool,
}

/// One problem in a layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// An error (true) or a warning.
    pub error: bool,
    /// The entry concerned, when there is one.
    pub entry: Option<String>,
    /// What is wrong.
    pub message: String,
}

/// The result of a scan.
#[derive(Debug, Clone, Default)]
pub struct Scan {
    /// Errors and warnings, errors first.
    pub findings: Vec<Finding>,
    /// The entries, when [`ScanOptions::keep_entries`] was set.
    pub entries: Vec<Entry>,
    /// Number of entries seen.
    pub count: u64,
}

impl Scan {
    /// True if no error was found.
    pub fn is_ok(&self) -> bool {
        !self.findings.iter().any(|f| f.error)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Rule {
    BadName,
    Duplicate,
    HardlinkTarget,
    UnsupportedType,
    DataOnHeaderOnlyType,
    Owner,
    OwnerName,
    Unsorted,
    MtimeAfterCreated,
    GlobalHeader,
    NoEndMarker,
}

impl Rule {
    fn is_error(self) -> bool {
        self < Rule::Owner
    }

    fn summary(self) -> &'static str {
        match self {
            Rule::BadName => "entries with unsafe names",
            Rule::Duplicate => "duplicate entries",
            Rule::HardlinkTarget => "hard links without an earlier target",
            Rule::UnsupportedType => "entries of unsupported types",
            Rule::DataOnHeaderOnlyType => "entries whose size field readers disagree on",
            Rule::Owner => "entries with a nonzero uid/gid (not normalised to 0:0)",
            Rule::OwnerName => "entries with user/group names (not normalised to empty)",
            Rule::Unsorted => "entries out of byte order",
            Rule::MtimeAfterCreated => "entries with an mtime after the image's created",
            Rule::GlobalHeader => "pax global headers (ignored by container runtimes)",
            Rule::NoEndMarker => "missing end-of-archive marker",
        }
    }
}

#[derive(Default)]
struct Tally {
    count: u64,
    listed: Vec<(String, String)>,
}

/// Reads an entire stream, counting and bounding what is read.
struct Input<R> {
    r: R,
    pos: u64,
}

impl<R: Read> Input<R> {
    /// Fills `buf` as far as the stream allows; returns the number of bytes read.
    fn fill(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut n = 0;
        while n < buf.len() {
            match self.r.read(&mut buf[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.pos += n as u64;
        Ok(n)
    }
}

enum Stop {
    Io(io::Error),
    Format(String),
}

impl From<io::Error> for Stop {
    fn from(e: io::Error) -> Self {
        Stop::Io(e)
    }
}

struct Pending {
    path: Option<Vec<u8>>,
    link: Option<Vec<u8>>,
    pax: Vec<(String, Vec<u8>)>,
}

/// Scans the tar stream `r` to its end (so that a caller hashing `r` sees every byte).
pub fn scan<R: Read>(r: R, opts: &ScanOptions) -> Scan {
    let mut s = Scanner {
        input: Input { r, pos: 0 },
        opts,
        tallies: BTreeMap::new(),
        seen: HashMap::new(),
        previous: None,
        out: Scan::default(),
        buf: vec![0u8; 64 * 1024],
    };
    let fatal = match s.run() {
        Ok(()) => None,
        Err(Stop::Format(m)) => Some(m),
        Err(Stop::Io(e)) => Some(format!(
            "{READ_ERROR} after {} bytes of tar: {e}",
            s.input.pos
        )),
    };
    let mut findings = Vec::new();
    if let Some(m) = fatal {
        findings.push(Finding {
            error: true,
            entry: None,
            message: m,
        });
    }
    for (rule, t) in &s.tallies {
        if rule.is_error() {
            for (entry, msg) in &t.listed {
                findings.push(Finding {
                    error: true,
                    entry: Some(entry.clone()),
                    message: msg.clone(),
                });
            }
            if t.count > t.listed.len() as u64 {
                findings.push(Finding {
                    error: true,
                    entry: None,
                    message: format!(
                        "{} more {} not listed",
                        t.count - t.listed.len() as u64,
                        rule.summary()
                    ),
                });
            }
        } else {
            let (entry, msg) = t.listed.first().cloned().unwrap_or_default();
            let message = if t.count == 1 {
                msg
            } else {
                format!(
                    "{} {}; the first is this one: {msg}",
                    t.count,
                    rule.summary()
                )
            };
            findings.push(Finding {
                error: false,
                entry: (!entry.is_empty()).then_some(entry),
                message,
            });
        }
    }
    findings.sort_by_key(|f| !f.error);
    let mut out = s.out;
    out.findings = findings;
    out
}

struct Scanner<'o, R> {
    input: Input<R>,
    opts: &'o ScanOptions,
    tallies: BTreeMap<Rule, Tally>,
    /// Every path seen so far → is it a directory.
    seen: HashMap<Vec<u8>, bool>,
    previous: Option<Vec<u8>>,
    out: Scan,
    buf: Vec<u8>,
}

fn show(p: &[u8]) -> String {
    String::from_utf8_lossy(p).into_owned()
}

/// Parses a numeric header field: octal text, or GNU base-256 when the top bit is set.
fn number(field: &[u8], name: &str) -> Result<u64, String> {
    if let Some(&first) = field.first()
        && first & 0x80 != 0
    {
        if first == 0xff {
            return Err(format!("negative base-256 number in the {name} field"));
        }
        let mut v: u64 = u64::from(first & 0x7f);
        for &b in &field[1..] {
            v = v
                .checked_mul(256)
                .and_then(|v| v.checked_add(u64::from(b)))
                .ok_or_else(|| format!("base-256 number in the {name} field overflows"))?;
        }
        return Ok(v);
    }
    let text: Vec<u8> = field
        .iter()
        .copied()
        .skip_while(|&b| b == b' ')
        .take_while(|&b| b != 0 && b != b' ')
        .collect();
    let mut v: u64 = 0;
    for b in &text {
        if !(b'0'..=b'7').contains(b) {
            return Err(format!(
                "the {name} field {:?} is not an octal number",
                show(field)
            ));
        }
        v = v
            .checked_mul(8)
            .and_then(|v| v.checked_add(u64::from(b - b'0')))
            .ok_or_else(|| format!("the {name} field overflows"))?;
    }
    Ok(v)
}

fn cstr(field: &[u8]) -> &[u8] {
    match field.iter().position(|&b| b == 0) {
        Some(i) => &field[..i],
        None => field,
    }
}

/// Parses pax records `LEN KEY=VALUE\n`.
pub fn parse_pax(data: &[u8]) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        if rest.iter().all(|&b| b == 0) {
            break;
        }
        let sp = rest
            .iter()
            .position(|&b| b == b' ')
            .filter(|&i| i > 0 && i <= 20)
            .ok_or("malformed pax record (no length)")?;
        let len: usize = std::str::from_utf8(&rest[..sp])
            .ok()
            .filter(|s| s.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|s| s.parse().ok())
            .ok_or("malformed pax record length")?;
        if len <= sp + 1 || len > rest.len() || rest[len - 1] != b'\n' {
            return Err(format!("malformed pax record (length {len})"));
        }
        let record = &rest[sp + 1..len - 1];
        let eq = record
            .iter()
            .position(|&b| b == b'=')
            .filter(|&i| i > 0)
            .ok_or("malformed pax record (no key=value)")?;
        let key = std::str::from_utf8(&record[..eq])
            .map_err(|_| "pax record key is not UTF-8".to_string())?;
        out.push((key.to_string(), record[eq + 1..].to_vec()));
        rest = &rest[len..];
    }
    Ok(out)
}

fn pax_number(key: &str, v: &[u8]) -> Result<u64, String> {
    std::str::from_utf8(v)
        .ok()
        .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("pax record {key}={:?} is not a whole number", show(v)))
}

fn pax_time(v: &[u8]) -> Result<i64, String> {
    let s = std::str::from_utf8(v).map_err(|_| "pax mtime is not UTF-8".to_string())?;
    let whole = s.split('.').next().unwrap_or("");
    let digits = whole.strip_prefix('-').unwrap_or(whole);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("pax mtime {s:?} is not a number"));
    }
    whole
        .parse()
        .map_err(|_| format!("pax mtime {s:?} is out of range"))
}

impl<R: Read> Scanner<'_, R> {
    fn note(&mut self, rule: Rule, entry: &[u8], message: String) {
        let t = self.tallies.entry(rule).or_default();
        t.count += 1;
        if t.listed.len() < MAX_LISTED {
            t.listed.push((show(entry), message));
        }
    }

    /// Reads `n` bytes (content or padding), hashing them into `hasher` if given. `what`
    /// names them in an error (the name of an entry's content, else padding).
    fn skip(
        &mut self,
        mut n: u64,
        mut hasher: Option<&mut Hasher>,
        what: Option<&[u8]>,
    ) -> Result<(), Stop> {
        while n > 0 {
            let want = self.buf.len().min(usize::try_from(n).unwrap_or(usize::MAX));
            let got = {
                let buf = &mut self.buf[..want];
                self.input.fill(buf)?
            };
            if let Some(h) = hasher.as_deref_mut() {
                h.update(&self.buf[..got]);
            }
            if got < want {
                let what = match what {
                    Some(name) => format!("the content of {}", show(name)),
                    None => "padding".to_string(),
                };
                return Err(Stop::Format(format!(
                    "truncated: the stream ends inside {what} ({} bytes missing)",
                    n - got as u64
                )));
            }
            n -= got as u64;
        }
        Ok(())
    }

    /// Reads an extension header's data, bounded.
    fn read_extension(&mut self, size: u64, what: &str) -> Result<Vec<u8>, Stop> {
        if size > MAX_EXTENSION {
            return Err(Stop::Format(format!(
                "a {what} header at byte {} claims {size} bytes, more than the {MAX_EXTENSION} read",
                self.input.pos
            )));
        }
        let mut data = vec![0u8; size as usize];
        let got = self.input.fill(&mut data)?;
        if got < data.len() {
            return Err(Stop::Format(format!(
                "truncated: the stream ends inside a {what} header"
            )));
        }
        self.skip(padding(size), None, None)?;
        Ok(data)
    }

    fn run(&mut self) -> Result<(), Stop> {
        let mut header = [0u8; BLOCK];
        let mut pending = Pending {
            path: None,
            link: None,
            pax: Vec::new(),
        };
        let mut pending_any = false;
        loop {
            let at = self.input.pos;
            let n = self.input.fill(&mut header)?;
            if n == 0 {
                if pending_any {
                    return Err(Stop::Format(
                        "truncated: an extension header is not followed by an entry".into(),
                    ));
                }
                self.note(
                    Rule::NoEndMarker,
                    b"",
                    "the stream ends without the end-of-archive marker (two zero blocks)".into(),
                );
                return Ok(());
            }
            if n < BLOCK {
                return Err(Stop::Format(format!(
                    "truncated: the stream ends inside a header at byte {at}"
                )));
            }
            if header.iter().all(|&b| b == 0) {
                if pending_any {
                    return Err(Stop::Format(
                        "an extension header is followed by the end-of-archive marker".into(),
                    ));
                }
                return self.trailer();
            }
            check_checksum(&header).map_err(|m| Stop::Format(format!("{m} at byte {at}")))?;
            let field = |r: std::ops::Range<usize>, name: &str| {
                number(&header[r], name)
                    .map_err(|m| Stop::Format(format!("header at byte {at}: {m}")))
            };
            let size = field(124..136, "size")?;
            let typeflag = header[156];
            match typeflag {
                b'x' | b'L' | b'K' | b'g' => {
                    let what = match typeflag {
                        b'x' => "pax",
                        b'g' => "pax global",
                        _ => "GNU long name",
                    };
                    let data = self.read_extension(size, what)?;
                    match typeflag {
                        b'x' => {
                            let recs = parse_pax(&data).map_err(|m| {
                                Stop::Format(format!("pax header at byte {at}: {m}"))
                            })?;
                            pending.pax.extend(recs);
                            pending_any = true;
                        }
                        b'g' => {
                            parse_pax(&data).map_err(|m| {
                                Stop::Format(format!("pax global header at byte {at}: {m}"))
                            })?;
                            self.note(
                                Rule::GlobalHeader,
                                b"",
                                format!("a pax global header at byte {at} is ignored by container runtimes"),
                            );
                        }
                        b'L' => {
                            pending.path = Some(cstr(&data).to_vec());
                            pending_any = true;
                        }
                        _ => {
                            pending.link = Some(cstr(&data).to_vec());
                            pending_any = true;
                        }
                    }
                    continue;
                }
                _ => {}
            }
            let p = std::mem::replace(
                &mut pending,
                Pending {
                    path: None,
                    link: None,
                    pax: Vec::new(),
                },
            );
            pending_any = false;
            self.entry(&header, at, size, p)?;
        }
    }

    /// After the first zero block: the rest of the stream must be zeros.
    fn trailer(&mut self) -> Result<(), Stop> {
        let start = self.input.pos;
        loop {
            let n = {
                let buf = &mut self.buf[..];
                self.input.fill(buf)?
            };
            if n == 0 {
                break;
            }
            if let Some(i) = self.buf[..n].iter().position(|&b| b != 0) {
                let at = self.input.pos - n as u64 + i as u64;
                // Drain, so that a caller hashing the stream still sees all of it.
                while self.input.fill(&mut self.buf[..])? > 0 {}
                return Err(Stop::Format(format!(
                    "data after the end-of-archive marker (a nonzero byte at {at}): tar readers stop at the marker and never see it"
                )));
            }
        }
        if self.input.pos - start < BLOCK as u64 {
            self.note(
                Rule::NoEndMarker,
                b"",
                "the end-of-archive marker is a single zero block, not two".into(),
            );
        }
        Ok(())
    }

    fn entry(&mut self, h: &[u8; BLOCK], at: u64, size: u64, p: Pending) -> Result<(), Stop> {
        let bad = |m: String| Stop::Format(format!("header at byte {at}: {m}"));
        let magic = &h[257..265];
        let posix = &magic[..6] == b"ustar\0";
        let gnu = magic == b"ustar  \0";
        let mut name = cstr(&h[0..100]).to_vec();
        if posix && h[345] != 0 {
            let mut full = cstr(&h[345..500]).to_vec();
            full.push(b'/');
            full.extend_from_slice(&name);
            name = full;
        }
        if let Some(n) = p.path {
            name = n;
        }
        let mut link = cstr(&h[157..257]).to_vec();
        if let Some(l) = p.link {
            link = l;
        }
        let mode = number(&h[100..108], "mode").map_err(bad)?;
        let mut uid = number(&h[108..116], "uid").map_err(bad)?;
        let mut gid = number(&h[116..124], "gid").map_err(bad)?;
        let mut mtime = i64::try_from(number(&h[136..148], "mtime").map_err(bad)?)
            .map_err(|_| bad("mtime out of range".into()))?;
        let (mut uname, mut gname) = if posix || gnu {
            (cstr(&h[265..297]).to_vec(), cstr(&h[297..329]).to_vec())
        } else {
            (Vec::new(), Vec::new())
        };
        let mut size = size;
        let mut xattrs = BTreeMap::new();
        for (k, v) in p.pax {
            match k.as_str() {
                "path" => name = v,
                "linkpath" => link = v,
                "size" => size = pax_number(&k, &v).map_err(bad)?,
                "uid" => uid = pax_number(&k, &v).map_err(bad)?,
                "gid" => gid = pax_number(&k, &v).map_err(bad)?,
                "mtime" => mtime = pax_time(&v).map_err(bad)?,
                "uname" => uname = v,
                "gname" => gname = v,
                _ => {
                    if let Some(x) = k.strip_prefix("SCHILY.xattr.") {
                        xattrs.insert(x.to_string(), v);
                    }
                }
            }
        }
        let typeflag = h[156];
        let kind = match typeflag {
            b'0' | 0 | b'7' => EntryKind::File,
            b'1' => EntryKind::Hardlink,
            b'2' => EntryKind::Symlink,
            b'3' => EntryKind::CharDevice,
            b'4' => EntryKind::BlockDevice,
            b'5' => EntryKind::Dir,
            b'6' => EntryKind::Fifo,
            other => {
                self.note(
                    Rule::UnsupportedType,
                    &name,
                    format!(
                        "entry type {:?} is not one of the types an OCI layer may contain",
                        char::from(other)
                    ),
                );
                self.out.count += 1;
                return self.skip(size.saturating_add(padding(size)), None, Some(&name));
            }
        };
        self.out.count += 1;
        // Go's archive/tar (Docker, containerd) reads no data after these headers; GNU tar
        // would read `size` bytes. Same bytes, two different file trees: refuse.
        let data_size = if kind == EntryKind::File {
            size
        } else {
            if size != 0 {
                self.note(
                    Rule::DataOnHeaderOnlyType,
                    &name,
                    format!("a {kind} entry with a nonzero size field ({size}): tar readers disagree on whether data follows"),
                );
            }
            0
        };

        let path = match normalize_path(&name, false) {
            Ok(p) => Some(p),
            Err(why) => {
                self.note(Rule::BadName, &name, format!("the entry name {why}"));
                None
            }
        };
        if name.is_empty() {
            self.note(Rule::BadName, &name, "an entry has an empty name".into());
        }
        let mut link_norm = None;
        if kind == EntryKind::Hardlink {
            match normalize_path(&link, false) {
                Err(why) => self.note(
                    Rule::HardlinkTarget,
                    &name,
                    format!("hard link target {:?} {why}", show(&link)),
                ),
                Ok(t) => {
                    match self.seen.get(&t) {
                        None => self.note(
                            Rule::HardlinkTarget,
                            &name,
                            format!("hard link to {:?}, which is not an earlier entry", show(&t)),
                        ),
                        Some(true) => self.note(
                            Rule::HardlinkTarget,
                            &name,
                            format!("hard link to the directory {:?}", show(&t)),
                        ),
                        Some(false) => {}
                    }
                    link_norm = Some(t);
                }
            }
        }
        if let Some(path) = &path {
            if self
                .seen
                .insert(path.clone(), kind == EntryKind::Dir)
                .is_some()
            {
                self.note(
                    Rule::Duplicate,
                    &name,
                    "the same path appears again (a later entry silently replaces the earlier one)"
                        .into(),
                );
            }
            if let Some(prev) = &self.previous
                && path < prev
            {
                let msg = format!("comes after {:?}", show(prev));
                self.note(Rule::Unsorted, path, msg);
            }
            self.previous = Some(path.clone());
        }
        if uid != 0 || gid != 0 {
            self.note(Rule::Owner, &name, format!("owned by {uid}:{gid}"));
        }
        if !uname.is_empty() || !gname.is_empty() {
            self.note(
                Rule::OwnerName,
                &name,
                format!("user/group names {:?}:{:?}", show(&uname), show(&gname)),
            );
        }
        if let Some(created) = self.opts.created
            && mtime > created
        {
            self.note(
                Rule::MtimeAfterCreated,
                &name,
                format!("mtime {mtime} is after the image's created ({created})"),
            );
        }
        let mut hasher = (self.opts.hash_contents && kind == EntryKind::File).then(Hasher::sha256);
        self.skip(data_size, hasher.as_mut(), Some(&name))?;
        self.skip(padding(data_size), None, None)?;
        if self.opts.keep_entries {
            let device = matches!(kind, EntryKind::CharDevice | EntryKind::BlockDevice)
                .then(|| -> Result<(u64, u64), Stop> {
                    Ok((
                        number(&h[329..337], "devmajor").map_err(bad)?,
                        number(&h[337..345], "devminor").map_err(bad)?,
                    ))
                })
                .transpose()?;
            self.out.entries.push(Entry {
                path: path.unwrap_or(name),
                kind,
                mode,
                uid,
                gid,
                uname,
                gname,
                mtime,
                size: data_size,
                link: match kind {
                    EntryKind::Symlink => Some(link),
                    EntryKind::Hardlink => Some(link_norm.unwrap_or(link)),
                    _ => None,
                },
                device,
                xattrs,
                content: hasher.map(Hasher::finish),
            });
        }
        Ok(())
    }
}

fn padding(size: u64) -> u64 {
    (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64
}

fn check_checksum(h: &[u8; BLOCK]) -> Result<(), String> {
    let stored = number(&h[148..156], "checksum").ok();
    let mut unsigned: u64 = 0;
    let mut signed: i64 = 0;
    for (i, &b) in h.iter().enumerate() {
        let b = if (148..156).contains(&i) { b' ' } else { b };
        unsigned += u64::from(b);
        signed += i64::from(b as i8);
    }
    match stored {
        Some(s) if s == unsigned || i64::try_from(s).ok() == Some(signed) => Ok(()),
        _ => Err(format!(
            "tar header checksum mismatch (stored {:?}, computed {unsigned}): not a tar stream, or corrupt",
            String::from_utf8_lossy(cstr(&h[148..156])).trim()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ustar header with the given fields and a valid checksum.
    fn header(name: &[u8], typeflag: u8, size: u64, uid: u64, link: &[u8]) -> Vec<u8> {
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
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        h
    }

    fn file(name: &[u8], content: &[u8]) -> Vec<u8> {
        let mut v = header(name, b'0', content.len() as u64, 0, b"");
        v.extend_from_slice(content);
        v.resize(v.len() + padding(content.len() as u64) as usize, 0);
        v
    }

    fn end(mut v: Vec<u8>) -> Vec<u8> {
        v.extend_from_slice(&[0u8; 2 * BLOCK]);
        v
    }

    fn messages(s: &Scan) -> Vec<String> {
        s.findings.iter().map(|f| f.message.clone()).collect()
    }

    #[test]
    fn clean_stream_has_no_findings_and_keeps_entries() {
        let mut t = header(b"bin/", b'5', 0, 0, b"");
        t.extend(file(b"bin/a", b"hello"));
        t.extend(header(b"bin/b", b'1', 0, 0, b"bin/a"));
        let s = scan(
            &end(t)[..],
            &ScanOptions {
                keep_entries: true,
                hash_contents: true,
                created: Some(1),
            },
        );
        assert!(s.findings.is_empty(), "{:?}", s.findings);
        assert_eq!(s.count, 3);
        assert_eq!(s.entries[1].content, Some(Digest::sha256_of(b"hello")));
        assert_eq!(s.entries[2].link.as_deref(), Some(&b"bin/a"[..]));
    }

    #[test]
    fn each_rule_is_reported() {
        let mut t = file(b"/abs", b"");
        t.extend(file(b"a/../../x", b""));
        t.extend(file(b"z", b"1"));
        t.extend(file(b"./z", b"2"));
        t.extend(header(b"y", b'1', 0, 0, b"later"));
        t.extend(file(b"later", b""));
        t.extend(header(b"owned", b'0', 0, 1000, b""));
        let s = scan(&end(t)[..], &ScanOptions::default());
        let m = messages(&s).join("\n");
        for want in [
            "is absolute",
            "contains a '..' component",
            "the same path appears again",
            "not an earlier entry",
            "owned by 1000:0",
            "out of byte order",
        ] {
            assert!(m.contains(want), "{want} missing in\n{m}");
        }
        assert!(!s.is_ok());
    }

    #[test]
    fn truncation_trailing_data_and_huge_claims_stop_the_scan() {
        let t = file(b"a", &[7u8; 1000]);
        let s = scan(&t[..700], &ScanOptions::default());
        assert!(messages(&s)[0].contains("truncated"), "{:?}", s.findings);

        let mut t = end(file(b"a", b"x"));
        t.push(1);
        let s = scan(&t[..], &ScanOptions::default());
        assert!(messages(&s)[0].contains("after the end-of-archive"));

        let t = header(b"PaxHeaders/a", b'x', 1_000_000_000_000_000, 0, b"");
        let s = scan(&t[..], &ScanOptions::default());
        assert!(
            messages(&s)[0].contains("more than the"),
            "{:?}",
            s.findings
        );

        let s = scan(&[1u8; 512][..], &ScanOptions::default());
        assert!(messages(&s)[0].contains("checksum mismatch"));
    }

    #[test]
    fn pax_overrides_apply() {
        let recs = b"20 path=long/name/x\n12 uid=1000\n22 mtime=1700000000.5\n";
        let mut t = header(b"PaxHeaders/x", b'x', recs.len() as u64, 0, b"");
        t.extend_from_slice(recs);
        t.resize(t.len() + padding(recs.len() as u64) as usize, 0);
        t.extend(file(b"x", b""));
        let s = scan(
            &end(t)[..],
            &ScanOptions {
                keep_entries: true,
                ..ScanOptions::default()
            },
        );
        let e = &s.entries[0];
        assert_eq!(e.path, b"long/name/x");
        assert_eq!((e.uid, e.mtime), (1000, 1_700_000_000));
        assert!(parse_pax(b"5 a=b\n").is_err());
        assert!(parse_pax(b"99999999999999999999999 a=b\n").is_err());
    }

    #[test]
    fn numbers() {
        assert_eq!(number(b"0000644\0", "m").unwrap(), 0o644);
        assert_eq!(number(b"  755 \0", "m").unwrap(), 0o755);
        assert_eq!(number(&[0x80, 0, 0, 0, 0, 0, 1, 0], "m").unwrap(), 256);
        assert!(number(b"9", "m").is_err());
        assert!(number(&[0xff; 12], "m").is_err());
        assert!(
            number(
                &[0x80, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
                "m"
            )
            .is_err()
        );
    }
}
