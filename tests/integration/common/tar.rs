//! A hand-written tar writer, for the archives GNU tar refuses to write (pathological names,
//! `.` as a regular file, device entries without root).

/// Writes `v` into the numeric header `field` as zero-padded octal ending in a NUL.
pub fn octal(field: &mut [u8], v: u64) {
    let s = format!("{:0w$o}\0", v, w = field.len() - 1);
    field.copy_from_slice(s.as_bytes());
}

/// One ustar header block (`name` and `link` at most 100 bytes) of type `kind`, `size`
/// bytes of data, mode 0755 for a directory and 0644 otherwise, owner 0:0, mtime
/// 1,600,000,000, device 1:3 for a character device (`kind` `3`).
pub fn ustar_header(name: &[u8], kind: u8, link: &[u8], size: u64) -> Vec<u8> {
    assert!(name.len() <= 100 && link.len() <= 100);
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name);
    let mode = if kind == b'5' { 0o755 } else { 0o644 };
    octal(&mut h[100..108], mode);
    octal(&mut h[108..116], 0);
    octal(&mut h[116..124], 0);
    octal(&mut h[124..136], size);
    octal(&mut h[136..148], 1_600_000_000);
    h[148..156].copy_from_slice(b"        ");
    h[156] = kind;
    h[157..157 + link.len()].copy_from_slice(link);
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    let (major, minor) = if kind == b'3' { (1, 3) } else { (0, 0) };
    octal(&mut h[329..337], major);
    octal(&mut h[337..345], minor);
    let sum: u64 = h.iter().map(|&b| u64::from(b)).sum();
    let s = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(s.as_bytes());
    h.to_vec()
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

/// Pads `v` with zeros to a whole number of 512-byte blocks.
pub fn pad(v: &mut Vec<u8>) {
    while !v.len().is_multiple_of(512) {
        v.push(0);
    }
}

/// One member: a pax header carrying `name` or `link` when either exceeds 100 bytes, then
/// the ustar header (kind `0` file, `1` hard link, `3` char device, `5` directory), then
/// the data.
pub fn tar_member(name: &[u8], kind: u8, link: &[u8], data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut pax = Vec::new();
    if name.len() > 100 {
        pax.extend(pax_record("path", name));
    }
    if link.len() > 100 {
        pax.extend(pax_record("linkpath", link));
    }
    if !pax.is_empty() {
        out.extend(ustar_header(
            b"PaxHeaders/long",
            b'x',
            b"",
            pax.len() as u64,
        ));
        out.extend(&pax);
        pad(&mut out);
    }
    let short = |b: &'static [u8], v: &[u8]| -> Vec<u8> {
        if v.len() > 100 {
            b.to_vec()
        } else {
            v.to_vec()
        }
    };
    out.extend(ustar_header(
        &short(b"long-name", name),
        kind,
        &short(b"long-link", link),
        data.len() as u64,
    ));
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
