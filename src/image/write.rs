//! Writing an OCI image layout: staged beside its target, swapped into place atomically.
//!
//! Contract: a layout is assembled in a fresh directory next to the target (same
//! filesystem), every file is fsynced, and only then does it replace the target in one
//! `renameat2(RENAME_EXCHANGE)` (or one `rename` when the target does not exist yet).
//! A build that fails or is interrupted leaves an existing target exactly as it was, and
//! no stray file from an earlier build survives a rebuild.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::cjson;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::spec::{Descriptor, OciLayout};

/// The `oci-layout` file's version.
pub const LAYOUT_VERSION: &str = "1.0.0";

/// How human-readable names (`rootfs.tar.gz`, `image-config.json`, `image-manifest.json`)
/// relate to the blobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NameStyle {
    /// Blobs are regular files; readable names are relative symlinks to them. Every OCI
    /// reader, including go-containerregistry ≥ 0.21.7 (crane), accepts this. The default.
    #[default]
    Symlinks,
    /// Readable names are the regular files; `blobs/sha256/…` are symlinks to them, as
    /// docker-library/busybox does. crane ≥ 0.21.7 refuses such layouts.
    Files,
    /// Only `blobs/`, `index.json` and `oci-layout`.
    None,
}

impl NameStyle {
    /// The name used on the command line and in project files.
    pub fn name(self) -> &'static str {
        match self {
            NameStyle::Symlinks => "symlinks",
            NameStyle::Files => "files",
            NameStyle::None => "none",
        }
    }
}

impl std::str::FromStr for NameStyle {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "symlinks" => Ok(NameStyle::Symlinks),
            "files" => Ok(NameStyle::Files),
            "none" => Ok(NameStyle::None),
            _ => Err(format!(
                "unknown name style {s:?} (expected symlinks, files or none)"
            )),
        }
    }
}

/// Refuses targets that must not be replaced: anything but a missing path, an empty
/// directory or an existing OCI layout (a directory holding `oci-layout`).
pub fn check_target(out: &Path) -> Result<()> {
    match fs::symlink_metadata(out) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::input_io("inspecting output", out, e)),
        Ok(m) if m.is_dir() => {
            let empty = fs::read_dir(out)
                .map_err(|e| Error::input_io("reading output", out, e))?
                .next()
                .is_none();
            if empty || out.join("oci-layout").is_file() {
                Ok(())
            } else {
                Err(Error::input(
                    format!("output {}", out.display()),
                    "exists and is not an OCI layout (no oci-layout file); refusing to replace it",
                ))
            }
        }
        Ok(_) => Err(Error::input(
            format!("output {}", out.display()),
            "exists and is not a directory",
        )),
    }
}

/// A layout being assembled in a temporary directory beside its target.
/// Dropped without [`Staging::commit`], it removes itself.
pub struct Staging {
    dir: PathBuf,
    committed: bool,
}

impl Staging {
    /// Creates the staging directory for target `out` (whose parent must exist).
    pub fn new(out: &Path) -> Result<Staging> {
        let parent = match out.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if !parent.is_dir() {
            return Err(Error::input(
                format!("output {}", out.display()),
                format!("its parent directory {} does not exist", parent.display()),
            ));
        }
        let base = out
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "layout".into());
        let mut n = 0u32;
        loop {
            let dir = parent.join(format!(".{base}.ocipack-{}-{n}", std::process::id()));
            match fs::create_dir(&dir) {
                Ok(()) => {
                    let staging = Staging {
                        dir,
                        committed: false,
                    };
                    set_mode(&staging.dir, 0o755)?;
                    fs::create_dir_all(staging.blob_dir())
                        .map_err(|e| Error::io("creating", staging.blob_dir(), e))?;
                    set_mode(&staging.dir.join("blobs"), 0o755)?;
                    set_mode(&staging.blob_dir(), 0o755)?;
                    return Ok(staging);
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 1000 => n += 1,
                Err(e) => return Err(Error::io("creating", &dir, e)),
            }
        }
    }

    /// The staging directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// `blobs/sha256` inside the staging directory.
    pub fn blob_dir(&self) -> PathBuf {
        self.dir.join("blobs").join("sha256")
    }

    /// Writes a file at `name` (relative), mode 0644, fsynced.
    pub fn write_file(&self, name: &str, bytes: &[u8]) -> Result<()> {
        write_new_file(&self.dir.join(name), bytes)
    }

    /// Writes a JSON document in the canonical form as a blob; returns its descriptor.
    pub fn write_json_blob<T: Serialize>(&self, media_type: &str, value: &T) -> Result<Descriptor> {
        let bytes = cjson::to_vec(value)?;
        let digest = Digest::sha256_of(&bytes);
        let name = digest.blob_path();
        if !self.dir.join(&name).exists() {
            self.write_file(&name, &bytes)?;
        }
        Ok(Descriptor::new(media_type, digest, bytes.len() as u64))
    }

    /// Writes a JSON document in the canonical form at `name`.
    pub fn write_json<T: Serialize>(&self, name: &str, value: &T) -> Result<()> {
        self.write_file(name, &cjson::to_vec(value)?)
    }

    /// Writes `oci-layout`.
    pub fn write_oci_layout(&self) -> Result<()> {
        self.write_json(
            "oci-layout",
            &OciLayout {
                image_layout_version: LAYOUT_VERSION.into(),
            },
        )
    }

    /// Gives a blob a readable `name` according to `style`.
    pub fn name_blob(&self, style: NameStyle, name: &str, digest: &Digest) -> Result<()> {
        let blob = digest.blob_path();
        let (link, target) = match style {
            NameStyle::None => return Ok(()),
            NameStyle::Symlinks => (name.to_string(), blob),
            NameStyle::Files => {
                let from = self.dir.join(&blob);
                let to = self.dir.join(name);
                fs::rename(&from, &to).map_err(|e| Error::io("renaming", &from, e))?;
                (blob, format!("../../{name}"))
            }
        };
        let at = self.dir.join(&link);
        std::os::unix::fs::symlink(&target, &at).map_err(|e| Error::io("creating symlink", &at, e))
    }

    /// Makes the blob file's mode 0644 (the layer writer creates it under the umask).
    pub fn fix_blob_mode(&self, digest: &Digest) -> Result<()> {
        set_mode(&self.dir.join(digest.blob_path()), 0o644)
    }

    /// fsyncs the directories, then moves the staged layout to `out`, replacing what was
    /// there in one atomic exchange. The previous layout is removed afterwards.
    pub fn commit(mut self, out: &Path) -> Result<()> {
        for d in [self.blob_dir(), self.dir.join("blobs"), self.dir.clone()] {
            File::open(&d)
                .and_then(|f| f.sync_all())
                .map_err(|e| Error::io("syncing", &d, e))?;
        }
        check_target(out)?;
        // When `out` existed, self.dir now holds its previous contents; Drop removes them.
        self.committed = swap_into_place(&self.dir, out)?;
        if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
            File::open(parent)
                .and_then(|f| f.sync_all())
                .map_err(|e| Error::io("syncing", parent, e))?;
        }
        Ok(())
    }
}

/// Creates `path` (which must not exist) holding `bytes`, mode 0644 whatever the umask of
/// whoever builds, and fsyncs it.
pub(crate) fn write_new_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(path)
        .map_err(|e| Error::io("creating", path, e))?;
    f.write_all(bytes)
        .map_err(|e| Error::io("writing", path, e))?;
    f.set_permissions(fs::Permissions::from_mode(0o644))
        .map_err(|e| Error::io("setting mode of", path, e))?;
    f.sync_all().map_err(|e| Error::io("syncing", path, e))
}

/// Moves the directory `staged` to `out`: one `rename` when `out` does not exist (returns
/// true: `staged` is gone), else one atomic `renameat2(RENAME_EXCHANGE)` (returns false:
/// `staged` now holds what `out` held, for the caller to remove).
pub(crate) fn swap_into_place(staged: &Path, out: &Path) -> Result<bool> {
    if out.exists() {
        rustix::fs::renameat_with(
            rustix::fs::CWD,
            staged,
            rustix::fs::CWD,
            out,
            rustix::fs::RenameFlags::EXCHANGE,
        )
        .map_err(|e| Error::io("replacing", out, e.into()))?;
        Ok(false)
    } else {
        fs::rename(staged, out).map_err(|e| Error::io("renaming into place", out, e))?;
        Ok(true)
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(|e| Error::io("setting mode of", path, e))
}
