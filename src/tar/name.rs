//! The rules every entry name (and link target) obeys, wherever it comes from, and how a
//! name is shown in a message.
//!
//! Contract: a name longer than [`MAX_NAME_BYTES`] bytes or with more than
//! [`MAX_NAME_COMPONENTS`] components is refused, checked on the raw bytes before anything
//! is built per component ([`check_limits`]); [`normalize_path`] refuses NUL, `..` and (for
//! tar names) absolute names, and makes `./usr//bin/x/` `usr/bin/x`; [`entry_path`] adds
//! that a name may not be empty and that only a directory may stand for the archive's root
//! (`.`, `./`, which GNU tar writes first).
//!
//! Why one module: the tar reader, the entry list built from `--rootfs`, `--file` and
//! `--tar` inputs, and the layer scanner of `verify` must agree on what a usable name is,
//! or an archive ocipack packs could be one that its own `verify` refuses. It sits at the
//! bottom of the tar format so that all of them can use it.

use super::EntryKind;

/// The longest entry name or link target accepted, in bytes (Linux's `PATH_MAX`).
pub const MAX_NAME_BYTES: usize = 4096;
/// The most components an entry name or link target may have.
pub const MAX_NAME_COMPONENTS: usize = 1024;

/// Normalises a path inside the image: `/usr/bin/x`, `./usr/bin/x/` and `usr//bin/x` all
/// become `usr/bin/x`. `..` is refused (it could climb out of the container's root when
/// extracted); absolute names are refused when `allow_absolute` is false (tar inputs).
pub fn normalize_path(raw: &[u8], allow_absolute: bool) -> Result<Vec<u8>, String> {
    if raw.contains(&0) {
        return Err("contains a NUL byte".into());
    }
    if !allow_absolute && raw.first() == Some(&b'/') {
        return Err("is absolute".into());
    }
    let mut out = Vec::with_capacity(raw.len());
    for comp in raw.split(|&b| b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => return Err("contains a '..' component".into()),
            c => {
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(c);
            }
        }
    }
    Ok(out)
}

/// Checks the limits of a name or link target on its raw bytes: at most
/// [`MAX_NAME_BYTES`] bytes and [`MAX_NAME_COMPONENTS`] components. Costs one pass over
/// the bytes and allocates nothing, whatever the name.
pub fn check_limits(raw: &[u8]) -> Result<(), String> {
    if raw.len() > MAX_NAME_BYTES {
        return Err(format!(
            "is {} bytes long, more than the {MAX_NAME_BYTES} allowed",
            raw.len()
        ));
    }
    let components = raw
        .split(|&b| b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
        .count();
    if components > MAX_NAME_COMPONENTS {
        return Err(format!(
            "has {components} components, more than the {MAX_NAME_COMPONENTS} allowed"
        ));
    }
    Ok(())
}

/// The normalised path of an entry named `raw` (see [`normalize_path`]), or why the name is
/// unusable (each reason reads after "the entry name"): empty, over the limits
/// ([`check_limits`], checked first), absolute, with `..` or NUL, or standing for the
/// archive's root on anything but a directory.
pub fn entry_path(raw: &[u8], kind: Option<EntryKind>) -> Result<Vec<u8>, String> {
    if raw.is_empty() {
        return Err("is empty".into());
    }
    check_limits(raw)?;
    let path = normalize_path(raw, false)?;
    if path.is_empty() && kind != Some(EntryKind::Dir) {
        let what = match kind {
            Some(k) => format!("a {k}"),
            None => "not a directory".into(),
        };
        return Err(format!(
            "stands for the archive's root, which only a directory entry may name (this is {what})"
        ));
    }
    Ok(path)
}

/// A name for a message: escaped by [`crate::show::bytes`], and cut after its first 256
/// bytes when it is longer than 512 (a message stays one readable line).
pub fn display_name(name: &[u8]) -> String {
    if name.len() > 512 {
        format!(
            "{}… ({} bytes)",
            crate::show::bytes(&name[..256]),
            name.len()
        )
    } else {
        crate::show::bytes(name)
    }
}

/// A name (or another header value) for a message that quotes it with `{:?}`, which escapes
/// control characters: lossy UTF-8, cut like [`display_name`] when longer than any usable
/// name.
pub fn lossy(p: &[u8]) -> String {
    if p.len() > MAX_NAME_BYTES {
        format!(
            "{}… ({} bytes)",
            String::from_utf8_lossy(&p[..256]),
            p.len()
        )
    } else {
        String::from_utf8_lossy(p).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize() {
        assert_eq!(
            normalize_path(b"./usr//bin/x/", false).unwrap(),
            b"usr/bin/x"
        );
        assert_eq!(normalize_path(b"/usr/bin", true).unwrap(), b"usr/bin");
        assert!(normalize_path(b"/etc/passwd", false).is_err());
        assert!(normalize_path(b"a/../../etc", false).is_err());
        assert!(normalize_path(b"..", false).is_err());
    }

    #[test]
    fn name_limits_are_checked_on_the_raw_bytes() {
        assert!(check_limits(&vec![b'a'; MAX_NAME_BYTES]).is_ok());
        let e = check_limits(&vec![b'a'; MAX_NAME_BYTES + 1]).unwrap_err();
        assert_eq!(e, "is 4097 bytes long, more than the 4096 allowed");
        let deep = b"a/".repeat(MAX_NAME_COMPONENTS + 1);
        assert_eq!(
            check_limits(&deep).unwrap_err(),
            "has 1025 components, more than the 1024 allowed"
        );
        assert!(check_limits(&b"a/".repeat(MAX_NAME_COMPONENTS)).is_ok());
        // Empty and "." components are not counted.
        assert!(check_limits(&b"./".repeat(2000)).is_ok());
    }

    #[test]
    fn dot_and_empty_names() {
        let path = |name: &[u8], kind| entry_path(name, Some(kind));
        assert_eq!(path(b"./", EntryKind::Dir), Ok(Vec::new()));
        assert_eq!(path(b".", EntryKind::Dir), Ok(Vec::new()));
        assert_eq!(path(b"./usr/", EntryKind::Dir), Ok(b"usr".to_vec()));
        assert_eq!(path(b"", EntryKind::Dir), Err("is empty".into()));
        assert_eq!(path(b"", EntryKind::File), Err("is empty".into()));
        for name in [&b"."[..], b"./", b".//./"] {
            let e = path(name, EntryKind::File).unwrap_err();
            assert!(e.contains("archive's root") && e.ends_with("(this is a file)"));
        }
        assert!(path(b"/", EntryKind::Dir).unwrap_err().contains("absolute"));
        assert!(entry_path(b".", None).is_err());
    }
}
