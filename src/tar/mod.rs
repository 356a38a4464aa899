//! The tar format: ocipack's deterministic writer and its one bounded reader.

pub mod read;
pub mod write;

/// The longest name (or link target) an entry may have, in bytes.
pub const MAX_NAME_BYTES: usize = 4096;
/// The most components an entry name may have.
pub const MAX_NAME_COMPONENTS: usize = 1024;

/// Refuses names no layer should hold: longer than [`MAX_NAME_BYTES`] or deeper than
/// [`MAX_NAME_COMPONENTS`] (Linux's `PATH_MAX` is 4096; extracting deeper names fails in
/// runtimes, and a name of 100,000 components costs memory in every reader). Checked on the
/// raw bytes, before anything is built per component.
pub fn check_name_limits(name: &[u8]) -> Result<(), String> {
    if name.len() > MAX_NAME_BYTES {
        return Err(format!(
            "is {} bytes long, more than the {MAX_NAME_BYTES} a name may have",
            name.len()
        ));
    }
    let components = name
        .split(|&b| b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
        .count();
    if components > MAX_NAME_COMPONENTS {
        return Err(format!(
            "has {components} components, more than the {MAX_NAME_COMPONENTS} a name may have"
        ));
    }
    Ok(())
}
