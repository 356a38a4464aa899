//! The layer scanner of `verify` and `diff`: every entry of a layer's tar stream, read by
//! the one tar reader ([`crate::tar::read`]), judged by the rules an OCI layer must follow.
//!
//! Rules: names must be usable ([`crate::tar::name`]): not absolute, without `..`, within
//! the limits, and not repeat an earlier entry; a hard link must name an earlier
//! non-directory entry; only the entry types the OCI layer format lists are allowed; a
//! directory, link or device must not claim data (readers disagree on whether it follows).
//! These are errors. Reproducibility smells are warnings: user or group names, entries out
//! of byte order, mtimes after the image's `created`, pax global headers, a missing or short
//! end-of-archive marker. Nonzero numeric owners are not one: a root filesystem holds them on
//! purpose (`/etc/shadow` belongs to group shadow).
//!
//! Contract: [`scan`] reads the stream to its end whatever it finds, so that a caller
//! hashing the stream (the diff_id) sees every byte; a stream the reader cannot go on with
//! ends the scan with one error. Each rule lists its first [`MAX_LISTED`] errors and
//! summarises the rest; a warning is reported once per rule, with its first case. Why it
//! is built on the reader `--tar` inputs use: an archive ocipack packs is read exactly as
//! `ocipack verify` reads a layer.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;

use crate::digest::{Digest, Hasher};
use crate::tar::EntryKind;
use crate::tar::name::lossy;
use crate::tar::read::{End, Item, ParsedHeader, ReadError, Reader};

/// Individual errors listed per rule before they are summarised.
pub const MAX_LISTED: usize = 10;

/// How the message of a scan stopped by a read (decompression) error begins.
pub const READ_ERROR: &str = "the layer cannot be decompressed or read";

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

/// One entry as kept by [`scan`] (for `diff`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The normalised path (`usr/bin/env`; the root directory is empty), or the name as
    /// stored if it cannot be normalised.
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
    /// Content size (0 for anything but files; the real size of a sparse file).
    pub size: u64,
    /// Link target (symlinks verbatim, hard links normalised).
    pub link: Option<Vec<u8>>,
    /// Device numbers.
    pub device: Option<(u64, u64)>,
    /// Extended attributes (`SCHILY.xattr.*`), by name.
    pub xattrs: BTreeMap<String, Vec<u8>>,
    /// SHA-256 of the (logical) content, when asked for.
    pub content: Option<Digest>,
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
    /// Number of whiteout entries (a base name starting `.wh.`: it hides a lower layer's
    /// path, or, `.wh..wh..opq`, a directory's lower contents), and the first one's name.
    /// Whether that is a problem depends on the layer's place in an image: the caller's.
    pub whiteouts: (u64, Option<String>),
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
    OwnerName,
    Unsorted,
    MtimeAfterCreated,
    GlobalHeader,
    NoEndMarker,
}

impl Rule {
    fn is_error(self) -> bool {
        self < Rule::OwnerName
    }

    fn summary(self) -> &'static str {
        match self {
            Rule::BadName => "entries with unsafe names",
            Rule::Duplicate => "duplicate entries",
            Rule::HardlinkTarget => "hard links without an earlier target",
            Rule::UnsupportedType => "entries of unsupported types",
            Rule::DataOnHeaderOnlyType => "entries whose size field readers disagree on",
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

/// Scans the tar stream `r` to its end (so that a caller hashing `r` sees every byte).
pub fn scan<R: Read>(r: R, opts: &ScanOptions) -> Scan {
    let mut s = Scanner {
        reader: Reader::new(r),
        opts,
        tallies: BTreeMap::new(),
        seen: HashMap::new(),
        previous: None,
        out: Scan::default(),
        buf: vec![0u8; 64 * 1024],
    };
    let fatal = match s.run() {
        Ok(()) => None,
        Err(ReadError::Format { message, .. }) => Some(message),
        Err(ReadError::Io { at, error }) => {
            Some(format!("{READ_ERROR} after {at} bytes of tar: {error}"))
        }
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
    reader: Reader<R>,
    opts: &'o ScanOptions,
    tallies: BTreeMap<Rule, Tally>,
    /// Every path seen so far → is it a directory.
    seen: HashMap<Vec<u8>, bool>,
    previous: Option<Vec<u8>>,
    out: Scan,
    buf: Vec<u8>,
}

impl<R: Read> Scanner<'_, R> {
    fn note(&mut self, rule: Rule, entry: &[u8], message: String) {
        let t = self.tallies.entry(rule).or_default();
        t.count += 1;
        if t.listed.len() < MAX_LISTED {
            t.listed.push((lossy(entry), message));
        }
    }

    fn run(&mut self) -> Result<(), ReadError> {
        while let Some(item) = self.reader.next_item()? {
            match item {
                Item::GlobalHeader { at } => self.note(
                    Rule::GlobalHeader,
                    b"",
                    format!("a pax global header at byte {at} is ignored by container runtimes"),
                ),
                Item::Entry(h) => self.entry(*h)?,
            }
        }
        match self.reader.end() {
            Some(End::NoMarker) => self.note(
                Rule::NoEndMarker,
                b"",
                "the stream ends without the end-of-archive marker (two zero blocks)".into(),
            ),
            Some(End::SingleZeroBlock) => self.note(
                Rule::NoEndMarker,
                b"",
                "the end-of-archive marker is a single zero block, not two".into(),
            ),
            Some(End::Marker) | None => {}
        }
        Ok(())
    }

    fn entry(&mut self, h: ParsedHeader) -> Result<(), ReadError> {
        let name = &h.name;
        let Some(kind) = h.kind else {
            self.note(
                Rule::UnsupportedType,
                name,
                format!(
                    "entry type {:?} is not one of the types an OCI layer may contain",
                    char::from(h.typeflag)
                ),
            );
            self.out.count += 1;
            return Ok(());
        };
        self.out.count += 1;
        if kind != EntryKind::File && h.size_field != 0 {
            self.note(
                Rule::DataOnHeaderOnlyType,
                name,
                format!(
                    "a {kind} entry with a nonzero size field ({}): tar readers disagree on whether data follows",
                    h.size_field
                ),
            );
        }
        let path = match &h.path {
            Ok(p) => Some(p.clone()),
            Err(_) if name.is_empty() => {
                self.note(Rule::BadName, name, "an entry has an empty name".into());
                None
            }
            Err(why) => {
                self.note(Rule::BadName, name, format!("the entry name {why}"));
                None
            }
        };
        let mut link_norm = None;
        match (kind, h.link_target()) {
            (EntryKind::Hardlink, Some(Err(why))) => self.note(
                Rule::HardlinkTarget,
                name,
                format!("hard link target {:?} {why}", lossy(&h.link)),
            ),
            (EntryKind::Hardlink, Some(Ok(t))) => {
                match self.seen.get(&t) {
                    None => self.note(
                        Rule::HardlinkTarget,
                        name,
                        format!(
                            "hard link to {:?}, which is not an earlier entry",
                            lossy(&t)
                        ),
                    ),
                    Some(true) => self.note(
                        Rule::HardlinkTarget,
                        name,
                        format!("hard link to the directory {:?}", lossy(&t)),
                    ),
                    Some(false) => {}
                }
                link_norm = Some(t);
            }
            (EntryKind::Symlink, Some(Err(why))) => self.note(
                Rule::BadName,
                name,
                format!("the symlink target {:?} {why}", lossy(&h.link)),
            ),
            _ => {}
        }
        if let Some(path) = &path {
            let base = path.strip_suffix(b"/").unwrap_or(path);
            let base = base.rsplit(|&b| b == b'/').next().unwrap_or(base);
            if base.starts_with(b".wh.") {
                self.out.whiteouts.0 += 1;
                self.out.whiteouts.1.get_or_insert_with(|| lossy(path));
            }
            if self
                .seen
                .insert(path.clone(), kind == EntryKind::Dir)
                .is_some()
            {
                self.note(
                    Rule::Duplicate,
                    name,
                    "the same path appears again (a later entry silently replaces the earlier one)"
                        .into(),
                );
            }
            if let Some(prev) = &self.previous
                && path < prev
            {
                let msg = format!("comes after {:?}", lossy(prev));
                self.note(Rule::Unsorted, path, msg);
            }
            self.previous = Some(path.clone());
        }
        if !h.uname.is_empty() || !h.gname.is_empty() {
            self.note(
                Rule::OwnerName,
                name,
                format!(
                    "user/group names {:?}:{:?}",
                    lossy(&h.uname),
                    lossy(&h.gname)
                ),
            );
        }
        if let Some(created) = self.opts.created
            && h.mtime > created
        {
            self.note(
                Rule::MtimeAfterCreated,
                name,
                format!("mtime {} is after the image's created ({created})", h.mtime),
            );
        }
        let mut hasher = (self.opts.hash_contents && kind == EntryKind::File).then(Hasher::sha256);
        if let Some(hasher) = hasher.as_mut() {
            loop {
                let n = self.reader.read_content(&mut self.buf)?;
                if n == 0 {
                    break;
                }
                hasher.update(&self.buf[..n]);
            }
        }
        self.reader.skip_content()?;
        if self.opts.keep_entries {
            let ParsedHeader {
                name,
                uid,
                gid,
                mode,
                uname,
                gname,
                mtime,
                size,
                link,
                device,
                xattrs,
                ..
            } = h;
            self.out.entries.push(Entry {
                path: path.unwrap_or(name),
                kind,
                mode,
                uid,
                gid,
                uname,
                gname,
                mtime,
                size,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tar::testing::*;

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
        t.extend(file(b".", b"root?"));
        t.extend(file(b"", b""));
        let s = scan(&end(t)[..], &ScanOptions::default());
        let m = messages(&s).join("\n");
        for want in [
            "is absolute",
            "contains a '..' component",
            "the same path appears again",
            "not an earlier entry",
            "out of byte order",
            "the entry name stands for the archive's root, which only a directory entry may name (this is a file)",
            "an entry has an empty name",
        ] {
            assert!(m.contains(want), "{want} missing in\n{m}");
        }
        // Numeric owners are the image's: no finding.
        assert!(!m.contains("1000"), "{m}");
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
        let mut t = pax_header(
            b'x',
            &[
                ("path", b"long/name/x"),
                ("uid", b"1000"),
                ("mtime", b"1700000000.5"),
                ("gname", b""),
                ("SCHILY.xattr.user.a", b"1"),
            ],
        );
        let mut h = header(b"x", b'0', 0, 0, b"");
        h[297..302].copy_from_slice(b"staff");
        seal(&mut h);
        t.extend(h);
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
        // An empty value keeps the header's field, as in Go's reader.
        assert_eq!(e.gname, b"staff");
        assert_eq!(e.xattrs["user.a"], b"1");
    }

    #[test]
    fn name_limits_are_checked_on_the_raw_bytes_in_a_stream() {
        // A 100,000-component name (200,000 bytes, in a pax header) is refused at once.
        let huge = b"d/".repeat(100_000);
        let mut t = pax_header(b'x', &[("path", &huge[..])]);
        t.extend(file(b"x", b"1"));
        let e = read_all(&end(t.clone())).unwrap();
        assert_eq!(
            e[0].0.path,
            Err("is 200000 bytes long, more than the 4096 allowed".into())
        );
        let s = scan(&end(t)[..], &ScanOptions::default());
        let f = &s.findings[0];
        assert!(f.error && f.message.contains("200000 bytes long"), "{f:?}");
        assert!(
            f.entry.as_ref().unwrap().ends_with("… (200000 bytes)"),
            "{f:?}"
        );

        // Link targets obey the same limits.
        let mut t = pax_header(b'x', &[("linkpath", &vec![b'l'; 5000][..])]);
        t.extend(header(b"s", b'2', 0, 0, b""));
        let s = scan(&end(t)[..], &ScanOptions::default());
        assert!(
            messages(&s)[0].starts_with("the symlink target")
                && messages(&s)[0].ends_with("is 5000 bytes long, more than the 4096 allowed"),
            "{:?}",
            s.findings
        );
    }

    #[test]
    fn the_scanner_sees_expanded_sparse_files() {
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
                let s = scan(
                    &end(build(b"s", &lengths(fragments), *real, &stored(fragments)))[..],
                    &ScanOptions {
                        keep_entries: true,
                        hash_contents: true,
                        created: None,
                    },
                );
                assert!(s.is_ok(), "{format}: {:?}", s.findings);
                assert_eq!(s.entries[0].size, *real);
                assert_eq!(
                    s.entries[0].content,
                    Some(Digest::sha256_of(&dense(fragments, *real)))
                );
            }
        }
    }
}
