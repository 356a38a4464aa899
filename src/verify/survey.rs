//! The on-disk half of `verify --profile oci-import`: every entry of a layout, as found.
//!
//! The profile's file rules ([`check_files`]) are pure functions over these facts; this is
//! the one place that gathers them, walking the layout through [`Root`] (never following a
//! symlinked directory, never leaving the layout, never opening a FIFO). `ocipack fix` uses
//! the same survey to learn which blobs were symlinks and what it did not carry over.

use crate::image::rules::oci_import::{FileFact, LinkEnd};
use crate::store::root::{EntryType, OpenError, Root};

#[cfg(doc)]
use crate::image::rules::oci_import::check_files;

/// The most entries [`survey`] records (a layout has a handful).
pub const MAX_SURVEY: usize = 100_000;

/// Every entry of the layout at `root`, walked without following symlinked directories;
/// each symlink resolved through [`Root`] (which never leaves the layout). At most
/// [`MAX_SURVEY`] entries.
pub fn survey(root: &Root) -> Vec<FileFact> {
    let mut out = Vec::new();
    let mut stack: Vec<Vec<u8>> = vec![Vec::new()];
    while let Some(dir) = stack.pop() {
        let Ok(Some(list)) = root.list_dir_bytes(&dir) else {
            continue;
        };
        for (name, kind) in list {
            if out.len() >= MAX_SURVEY {
                return out;
            }
            let path = if dir.is_empty() {
                name
            } else {
                [dir.as_slice(), b"/", &name].concat()
            };
            let link = (kind == EntryType::Symlink).then(|| {
                let target = root
                    .read_link(&path)
                    .map(|t| crate::show::bytes(&t))
                    .unwrap_or_default();
                let end = match root.open_file(&path) {
                    Ok(_) => LinkEnd::Inside(EntryType::File),
                    Err(OpenError::NotRegular("directory")) => LinkEnd::Inside(EntryType::Dir),
                    Err(OpenError::NotRegular(k)) => LinkEnd::Inside(EntryType::Other(k)),
                    Err(OpenError::NotFound) => LinkEnd::Dangling,
                    Err(OpenError::AbsoluteLink { .. }) => LinkEnd::Absolute,
                    Err(OpenError::Escapes { .. }) => LinkEnd::Escapes,
                    Err(OpenError::Loop) => LinkEnd::Loop,
                    Err(e) => LinkEnd::Unreadable(e.to_string()),
                };
                (target, end)
            });
            if kind == EntryType::Dir {
                stack.push(path.clone());
            }
            out.push(FileFact { path, kind, link });
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}
