//! The one way to print a name in a message.
//!
//! File names, tar entry names, registry texts and anything else that came from outside
//! may hold newlines, escape sequences or bytes that are not UTF-8. Printed raw, a name could
//! forge a message line or drive the terminal. Every message that names something passes the
//! name through this module: control characters become Rust's `escape_debug` forms (`\n`,
//! `\t`, `\u{1b}`), backslashes are doubled, and bytes that are not UTF-8 become `\xNN`.
//! The characters that reorder or break a line without being control characters — the bidi
//! embeddings, overrides, isolates and marks, and the line and paragraph separators — are
//! escaped as `\u{…}` too, so a name cannot make a line read differently from its bytes.
//! Printable text, including non-ASCII letters, is shown as it is.

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// `bytes` as printable text (see the module documentation).
pub fn bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        push_str(&mut out, chunk.valid());
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out
}

/// A path as printable text.
pub fn path(p: &Path) -> String {
    bytes(p.as_os_str().as_bytes())
}

/// An OS string (a file name) as printable text.
pub fn os(s: &OsStr) -> String {
    bytes(s.as_bytes())
}

/// Text as printable text: control characters and backslashes escaped.
pub fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    push_str(&mut out, s);
    out
}

/// True for the characters that change how a line reads without being control characters:
/// bidi marks, embeddings, overrides and isolates (which can make a name display
/// backwards), and the line and paragraph separators.
fn reorders(c: char) -> bool {
    matches!(
        c,
        '\u{061c}'
            | '\u{200e}'
            | '\u{200f}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2066}'..='\u{2069}'
    )
}

/// Appends `c`, escaped if it is a control character or [`reorders`]; backslashes too when
/// `backslash`.
fn push_char(out: &mut String, c: char, backslash: bool) {
    if c.is_control() || (backslash && c == '\\') {
        out.extend(c.escape_debug());
    } else if reorders(c) {
        out.extend(c.escape_unicode());
    } else {
        out.push(c);
    }
}

fn push_str(out: &mut String, s: &str) {
    for c in s.chars() {
        push_char(out, c, true);
    }
}

/// A whole message line, as a last safety net where it is printed: control characters are
/// escaped, nothing else (names inside it were escaped by [`bytes`], [`path`] or [`text`]
/// already, and their backslashes must not be doubled again).
pub fn line(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        push_char(&mut out, c, false);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_and_invalid_bytes_are_escaped() {
        assert_eq!(bytes(b"plain/name"), "plain/name");
        assert_eq!(bytes("é/ü".as_bytes()), "é/ü");
        assert_eq!(bytes(b"a\nb"), "a\\nb");
        assert_eq!(bytes(b"\x1b[31mred"), "\\u{1b}[31mred");
        assert_eq!(bytes(b"tab\there"), "tab\\there");
        assert_eq!(bytes(b"bad\xff\xfe"), "bad\\xff\\xfe");
        assert_eq!(bytes(b"back\\slash"), "back\\\\slash");
        assert_eq!(text("x\r\u{7f}\u{9b}"), "x\\r\\u{7f}\\u{9b}");
        assert_eq!(line("a\\nb\nc"), "a\\nb\\nc");
        assert_eq!(text("a\u{202e}txt.exe"), "a\\u{202e}txt.exe");
        assert_eq!(line("x\u{2028}y\u{2066}z"), "x\\u{2028}y\\u{2066}z");
        assert_eq!(bytes("\u{200f}".as_bytes()), "\\u{200f}");
        for s in [bytes(b"\x00\x01\x1f\x7f\n"), text("\u{85}\u{2028}")] {
            assert!(!s.chars().any(|c| c.is_control()), "{s:?}");
        }
    }
}
