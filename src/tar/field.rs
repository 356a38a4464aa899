//! Decoding the fields of tar headers, for the reader and the sparse maps: the block
//! size, numeric fields (octal text, or GNU base-256 for values too big for it), NUL-ended
//! strings, the header checksum and pax extended records.
//!
//! Contract: every decoder is total and bounded. It returns the value or a reason that
//! reads after "header at byte N:" (or names the pax record), never panics, and allocates
//! nothing from a number it decodes. Kept apart from the reader so that the sparse map
//! parsers, which decode the same fields, need not import the reader that uses them.

use super::name::lossy;

/// The size of a tar block: headers, and the unit data is padded to.
pub(super) const BLOCK: usize = 512;

/// Parses a numeric header field: octal text, or GNU base-256 when the top bit is set.
pub(super) fn number(field: &[u8], name: &str) -> Result<u64, String> {
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
                lossy(field)
            ));
        }
        v = v
            .checked_mul(8)
            .and_then(|v| v.checked_add(u64::from(b - b'0')))
            .ok_or_else(|| format!("the {name} field overflows"))?;
    }
    Ok(v)
}

/// The bytes of a string field up to its first NUL (all of them if there is none).
pub(super) fn cstr(field: &[u8]) -> &[u8] {
    match field.iter().position(|&b| b == 0) {
        Some(i) => &field[..i],
        None => field,
    }
}

/// Parses pax records `LEN KEY=VALUE\n`; zeros after the last record end them.
pub(super) fn parse_pax(data: &[u8]) -> Result<Vec<(String, Vec<u8>)>, String> {
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

/// A pax record's value as a whole number (decimal digits only), or why it is not one.
pub(super) fn pax_number(key: &str, v: &[u8]) -> Result<u64, String> {
    std::str::from_utf8(v)
        .ok()
        .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("pax record {key}={:?} is not a whole number", lossy(v)))
}

/// A pax `mtime` (decimal seconds, maybe negative, maybe with a fraction) as whole
/// seconds; the fraction is dropped.
pub(super) fn pax_time(v: &[u8]) -> Result<i64, String> {
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

/// The zero bytes that pad `size` bytes of data to a whole block.
pub(super) fn padding(size: u64) -> u64 {
    (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64
}

/// Checks a header block's checksum, computed over unsigned bytes or (as some old writers
/// did) signed ones, with the checksum field itself counted as spaces.
pub(super) fn check_checksum(h: &[u8; BLOCK]) -> Result<(), String> {
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

    #[test]
    fn pax_records() {
        assert!(parse_pax(b"5 a=b\n").is_err());
        assert!(parse_pax(b"99999999999999999999999 a=b\n").is_err());
    }
}
