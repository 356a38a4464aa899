//! Windows images stay Dockerfile-based (the `oci-import` builder cannot take Windows base
//! layers): for each variant, a directory with a `Dockerfile` and the `hello.txt` it prints.
//!
//! `hello.txt` is the project's message text with `{arch}` replaced by `windows-amd64`,
//! byte for byte otherwise: its line endings stay LF, as the upstream hello-world image's
//! do (`type` copies bytes, and both the Windows console and the Docker client on Linux show
//! LF line breaks as such). Like layouts, the directory is staged beside its target and
//! swapped into place whole.

use crate::error::{Error, Result};
use crate::project::{WINDOWS_ARCH, WindowsVariant};
use crate::show;
use crate::store::output::Output;
use crate::store::staging::{Existing, Target};

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
        "# Written by `ocipack build` from ocipack.toml and {}: edit those instead.\n\
         FROM {from}\n\
         COPY {TEXT_FILE} C:/\n\
         CMD [\"cmd\", \"/C\", \"type C:\\\\{TEXT_FILE}\"]\n",
        crate::show::text(text_name),
        from = variant.from
    );
    Ok(vec![
        (DOCKERFILE, dockerfile.into_bytes()),
        (TEXT_FILE, hello.into_bytes()),
    ])
}

/// A variant directory holding `files` (mode 0644) for `target`, written only if it
/// differs from what the target holds (see [`Output`]); the caller checks the target first
/// ([`check_target`]).
pub fn output(target: &Target, files: &[(&str, Vec<u8>)]) -> Output {
    let mut out = Output::new(target);
    for (name, bytes) in files {
        out.put_bytes(name, bytes.clone());
    }
    out
}

/// Refuses to replace anything but a missing path or a directory holding nothing but the
/// files a variant directory has.
pub fn check_target(target: &Target) -> Result<()> {
    match target.existing()? {
        Existing::Missing => Ok(()),
        Existing::Dir(root) => {
            let names = root
                .list_dir_bytes("")
                .map_err(|e| Error::input(format!("output {}", target.shown()), e.to_string()))?
                .unwrap_or_default();
            for (name, _) in names {
                if name != DOCKERFILE.as_bytes() && name != TEXT_FILE.as_bytes() {
                    return Err(Error::input(
                        format!("output {}", target.shown()),
                        format!(
                            "holds {}, which ocipack did not write; refusing to replace it",
                            show::bytes(&name)
                        ),
                    ));
                }
            }
            Ok(())
        }
        Existing::Other(kind) => Err(Error::input(
            format!("output {}", target.shown()),
            format!("exists and is a {kind}, not a directory"),
        )),
    }
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
        let target = Target::at_path(&out).unwrap();
        let files = vec![("Dockerfile", b"x".to_vec()), ("hello.txt", b"y".to_vec())];
        output(&target, &files)
            .stage()
            .unwrap()
            .commit(&target)
            .unwrap();
        assert_eq!(std::fs::read(out.join("hello.txt")).unwrap(), b"y");
        let files2 = vec![("Dockerfile", b"z".to_vec())];
        output(&target, &files2)
            .stage()
            .unwrap()
            .commit(&target)
            .unwrap()
            .remove();
        assert!(!out.join("hello.txt").exists());
        assert_eq!(
            std::fs::read_dir(t.path()).unwrap().count(),
            1,
            "no staging left"
        );
        std::fs::write(out.join("notes"), b"mine").unwrap();
        let e = check_target(&target).unwrap_err();
        assert!(e.to_string().contains("notes"), "{e}");
        assert_eq!(std::fs::read(out.join("notes")).unwrap(), b"mine");
    }
}
