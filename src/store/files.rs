//! Named files written into an existing directory (`ocipack man --dir`, build records):
//! each is staged beside its name (created exclusively, mode 0644), and once every one is
//! complete they are made durable and renamed into place together, so a failure leaves the
//! directory as it was.

use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};
use crate::store::root::Root;
use crate::store::staging::{Existing, Staging, Target, commit_all};

/// Writes each `(name, bytes)` as `dir/name`, replacing a file of that name; `dir` must
/// exist. A name that is a directory there is refused before anything is written.
pub fn write_into(dir: &Path, files: &[(String, Vec<u8>)]) -> Result<()> {
    let targets = files
        .iter()
        .map(|(name, _)| Target::at_path(&dir.join(name)))
        .collect::<Result<Vec<_>>>()?;
    write_targets(targets, files)
}

/// Writes each `(name, bytes)` as `name` in the directory `dir` is (held open; a name is one
/// component, no symlink is followed), replacing a file of that name, as [`write_into`].
pub fn write_beneath(dir: &Root, files: &[(String, Vec<u8>)]) -> Result<()> {
    let targets = files
        .iter()
        .map(|(name, _)| Target::beneath(dir, name, false, &dir.shown(name)))
        .collect::<Result<Vec<_>>>()?;
    write_targets(targets, files)
}

fn write_targets(targets: Vec<Target>, files: &[(String, Vec<u8>)]) -> Result<()> {
    let mut staged = Vec::with_capacity(files.len());
    for (target, (_, bytes)) in targets.into_iter().zip(files) {
        if let Existing::Dir(_) = target.existing()? {
            return Err(Error::input(target.shown(), "is a directory"));
        }
        let (staging, mut file) = Staging::file(&target)?;
        file.write_all(bytes)
            .map_err(|e| Error::io("writing", target.parent().path().join(target.name()), e))?;
        staged.push((staging, target));
    }
    for replaced in commit_all(staged)? {
        replaced.remove();
    }
    Ok(())
}
