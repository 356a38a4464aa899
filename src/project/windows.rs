//! Windows images stay Dockerfile-based (the `oci-import` builder cannot take Windows base
//! layers): for each variant, a directory with a `Dockerfile` and the `hello.txt` it prints.
//!
//! `hello.txt` is the project's message text with `{arch}` replaced by `windows-amd64`,
//! byte for byte otherwise: its line endings stay LF, as the upstream hello-world image's
//! do (`type` copies bytes, and both the Windows console and the Docker client on Linux show
//! LF line breaks as such). Like layouts, the directory is staged beside its target and
//! swapped into place whole.

use std::fs::{self, File};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::project::{WINDOWS_ARCH, WindowsVariant};

/// The text file each Windows image prints.
pub const TEXT_FILE: &str = "hello.txt";
/// The Dockerfile's name.
pub const DOCKERFILE: &str = "Dockerfile";

/// The files of one variant's directory, in name order.
pub fn render(
    variant: &WindowsVariant,
    text: &[u8],
    text_name: &str,
) -> Result<Vec<(&'static str, Vec<u8>)>> {
    let text =
        std::str::from_utf8(text).map_err(|_| Error::input(text_name, "is not UTF-8 text"))?;
    if !text.contains("{arch}") {
        return Err(Error::input(
            text_name,
            "does not contain {arch}: the message must name the platform it runs on",
        ));
    }
    let hello = text.replace("{arch}", WINDOWS_ARCH);
    let dockerfile = format!(
        "# Written by `ocipack build` from ocipack.toml and {text_name}: edit those instead.\n\
         FROM {from}\n\
         COPY {TEXT_FILE} C:/\n\
         CMD [\"cmd\", \"/C\", \"type C:\\\\{TEXT_FILE}\"]\n",
        from = variant.from
    );
    Ok(vec![
        (DOCKERFILE, dockerfile.into_bytes()),
        (TEXT_FILE, hello.into_bytes()),
    ])
}

/// A variant directory being written beside its target; removed on drop unless committed.
pub struct StagedDir {
    dir: PathBuf,
    committed: bool,
}

impl StagedDir {
    /// Writes `files` (mode 0644) into a new hidden directory beside `out`.
    pub fn new(out: &Path, files: &[(&str, Vec<u8>)]) -> Result<StagedDir> {
        let parent = match out.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        fs::create_dir_all(&parent).map_err(|e| Error::io("creating", &parent, e))?;
        let base = out
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "windows".into());
        let mut n = 0u32;
        let dir = loop {
            let dir = parent.join(format!(".{base}.ocipack-{}-{n}", std::process::id()));
            match fs::create_dir(&dir) {
                Ok(()) => break dir,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 1000 => n += 1,
                Err(e) => return Err(Error::io("creating", &dir, e)),
            }
        };
        let staged = StagedDir {
            dir,
            committed: false,
        };
        set_mode(&staged.dir, 0o755)?;
        for (name, bytes) in files {
            crate::image::write::write_new_file(&staged.dir.join(name), bytes)?;
        }
        Ok(staged)
    }

    /// The staging directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Swaps the staged directory into place at `out` (see [`check_target`]).
    pub fn commit(mut self, out: &Path) -> Result<()> {
        File::open(&self.dir)
            .and_then(|f| f.sync_all())
            .map_err(|e| Error::io("syncing", &self.dir, e))?;
        check_target(out)?;
        // When `out` existed, self.dir now holds its previous contents; Drop removes them.
        self.committed = crate::image::write::swap_into_place(&self.dir, out)?;
        Ok(())
    }
}

impl Drop for StagedDir {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// Refuses to replace anything but a missing path or a directory holding nothing but the
/// files a variant directory has.
pub fn check_target(out: &Path) -> Result<()> {
    match fs::symlink_metadata(out) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::input_io("inspecting output", out, e)),
        Ok(m) if m.is_dir() => {
            for ent in fs::read_dir(out).map_err(|e| Error::input_io("reading output", out, e))? {
                let ent = ent.map_err(|e| Error::input_io("reading output", out, e))?;
                let name = ent.file_name();
                if name != DOCKERFILE && name != TEXT_FILE {
                    return Err(Error::input(
                        format!("output {}", out.display()),
                        format!(
                            "holds {}, which ocipack did not write; refusing to replace it",
                            name.to_string_lossy()
                        ),
                    ));
                }
            }
            Ok(())
        }
        Ok(_) => Err(Error::input(
            format!("output {}", out.display()),
            "exists and is not a directory",
        )),
    }
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(|e| Error::io("setting mode of", path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_dockerfile_and_text() {
        let v = WindowsVariant::parse("nanoserver-ltsc2025").unwrap();
        let files = render(&v, b"Hi\r\nfrom ({arch}).\n", "greeting.txt").unwrap();
        assert_eq!(files[0].0, "Dockerfile");
        let df = String::from_utf8(files[0].1.clone()).unwrap();
        assert!(
            df.contains("\nFROM mcr.microsoft.com/windows/nanoserver:ltsc2025\n"),
            "{df}"
        );
        assert!(
            df.ends_with("COPY hello.txt C:/\nCMD [\"cmd\", \"/C\", \"type C:\\\\hello.txt\"]\n"),
            "{df}"
        );
        assert_eq!(
            files[1],
            ("hello.txt", b"Hi\r\nfrom (windows-amd64).\n".to_vec())
        );
        let e = render(&v, b"no placeholder\n", "t.txt").unwrap_err();
        assert_eq!(e.exit_code(), 2);
    }

    #[test]
    fn staged_dir_replaces_only_variant_dirs() {
        let t = tempfile::tempdir().unwrap();
        let out = t.path().join("v");
        let files = vec![("Dockerfile", b"x".to_vec()), ("hello.txt", b"y".to_vec())];
        StagedDir::new(&out, &files).unwrap().commit(&out).unwrap();
        assert_eq!(fs::read(out.join("hello.txt")).unwrap(), b"y");
        let files2 = vec![("Dockerfile", b"z".to_vec())];
        StagedDir::new(&out, &files2).unwrap().commit(&out).unwrap();
        assert!(!out.join("hello.txt").exists());
        assert_eq!(
            fs::read_dir(t.path()).unwrap().count(),
            1,
            "no staging left"
        );
        fs::write(out.join("notes"), b"mine").unwrap();
        let e = StagedDir::new(&out, &files)
            .unwrap()
            .commit(&out)
            .unwrap_err();
        assert!(e.to_string().contains("notes"), "{e}");
        assert_eq!(fs::read(out.join("notes")).unwrap(), b"mine");
    }
}
