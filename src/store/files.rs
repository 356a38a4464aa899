//! Named files written into an existing directory (`ocipack man --dir`): each is staged
//! beside its name (created exclusively, mode 0644), and once every one is complete they are
//! made durable and renamed into place together, so a failure leaves the directory as it was.

use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};
use crate::show;
use crate::store::staging::{Existing, Staging, Target, commit_all};

/// Writes each `(name, bytes)` as `dir/name`, replacing a file of that name; `dir` must
/// exist. A name that is a directory there is refused before anything is written.
pub fn write_into(dir: &Path, files: &[(String, Vec<u8>)]) -> Result<()> {
    let mut staged = Vec::with_capacity(files.len());
    for (name, bytes) in files {
        let path = dir.join(name);
        let target = Target::at_path(&path)?;
        if let Existing::Dir(_) = target.existing()? {
            return Err(Error::input(show::path(&path), "is a directory"));
        }
        let (staging, mut file) = Staging::file(&target)?;
        file.write_all(bytes)
            .map_err(|e| Error::io("writing", &path, e))?;
        staged.push((staging, target));
    }
    for replaced in commit_all(staged)? {
        replaced.remove();
    }
    Ok(())
}
