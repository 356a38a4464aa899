//! Windows images stay Dockerfile-based (the `oci-import` builder cannot take Windows base
//! layers): for each variant, a directory with a `Dockerfile`.
//!
//! Two ways to have them:
//! - With `[windows] text`, ocipack writes each directory: a `Dockerfile` and the
//!   `hello.txt` it prints, the project's message text with `{arch}` replaced by
//!   `windows-amd64`, `{variant}` by the variant (`nanoserver-ltsc2025`) and `{tag}` by its
//!   base image's tag (`ltsc2025`), byte for byte otherwise: its line endings stay LF, as
//!   the upstream hello-world image's do (`type` copies bytes, and both the Windows console
//!   and the Docker client on Linux show LF line breaks as such). Like layouts, the
//!   directory is staged beside its target and swapped into place whole.
//! - Without it, the directories are the project's own (docker-library/hello-world's are
//!   made by its own scripts): ocipack never writes them, it lists them in the library file
//!   and `build` checks that each holds a `Dockerfile` whose final `FROM` names the
//!   variant's base image ([`check_listed`]), read through the project's
//!   [`Root`] with a size cap.

use crate::error::{Error, Result};
use crate::project::{WINDOWS_ARCH, WindowsVariant};
use crate::show;
use crate::store::output::Output;
use crate::store::root::Root;
use crate::store::staging::{Existing, Target};

/// The text file each Windows image prints.
pub const TEXT_FILE: &str = "hello.txt";
/// The Dockerfile's name.
pub const DOCKERFILE: &str = "Dockerfile";
/// The largest Dockerfile read when checking a listed variant directory.
const MAX_DOCKERFILE: u64 = 64 * 1024;

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
    let tag = variant.name.split_once('-').map_or("", |(_, t)| t);
    let hello = text
        .replace("{arch}", WINDOWS_ARCH)
        .replace("{variant}", &variant.name)
        .replace("{tag}", tag);
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

/// Checks a variant directory ocipack does not write (no `[windows] text`): `rel` beneath
/// `root` holds a regular file `Dockerfile` (at most 64 KiB, reached without a symlink)
/// whose final `FROM` is the variant's base image. `origin` says where the directory's
/// template is set. Nothing is written.
pub fn check_listed(root: &Root, rel: &str, variant: &WindowsVariant, origin: &str) -> Result<()> {
    let path = format!("{rel}/{DOCKERFILE}");
    let what = || {
        format!(
            "{origin}: {} (the Windows variant {})",
            show::text(&path),
            variant.name
        )
    };
    let bytes = root
        .read(&path, MAX_DOCKERFILE)
        .map_err(|e| Error::input(what(), e.to_string()))?;
    let text =
        std::str::from_utf8(&bytes).map_err(|_| Error::input(what(), "is not UTF-8 text"))?;
    match final_from(text) {
        Some(from) if from == variant.from => Ok(()),
        Some(from) => Err(Error::input(
            what(),
            format!(
                "says FROM {}, but the variant {} is built FROM {}",
                show::text(&from),
                variant.name,
                variant.from
            ),
        )),
        None => Err(Error::input(
            what(),
            format!(
                "has no FROM instruction (the variant {} is built FROM {})",
                variant.name, variant.from
            ),
        )),
    }
}

/// The image of a Dockerfile's last `FROM` (the final stage's base), as written: comments
/// and empty lines skipped, continuation lines joined (`\`, or the character of an
/// `# escape=` parser directive, which Windows Dockerfiles often set to a backtick), flags
/// such as `--platform=…` skipped.
fn final_from(text: &str) -> Option<String> {
    let mut escape = '\\';
    let mut directives = true;
    let mut logical: Vec<String> = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let t = line.trim();
        if directives {
            let d = t.strip_prefix('#').map(str::trim);
            match d.and_then(|d| d.split_once('=')) {
                Some((k, v)) if k.trim().eq_ignore_ascii_case("escape") => {
                    if let Some(c) = v.trim().chars().next() {
                        escape = c;
                    }
                    continue;
                }
                Some((k, _)) if k.trim().eq_ignore_ascii_case("syntax") => continue,
                _ => directives = false,
            }
        }
        // Comment and empty lines are dropped, also inside a continued instruction.
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let (body, continues) = match t.strip_suffix(escape) {
            Some(b) => (b, true),
            None => (t, false),
        };
        let mut l = current.take().unwrap_or_default();
        l.push_str(body);
        l.push(' ');
        if continues {
            current = Some(l);
        } else {
            logical.push(l);
        }
    }
    logical.extend(current);
    logical.iter().rev().find_map(|l| {
        let mut words = l.split_whitespace();
        if !words.next()?.eq_ignore_ascii_case("FROM") {
            return None;
        }
        words.find(|w| !w.starts_with("--")).map(str::to_string)
    })
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
    fn text_substitutes_variant_and_tag() {
        let v = WindowsVariant::parse("nanoserver-ltsc2022").unwrap();
        let files = render(
            &v,
            b"({arch}, {variant})\nservercore:{tag} powershell\n",
            "t.txt",
        )
        .unwrap();
        assert_eq!(
            files[1].1,
            b"(windows-amd64, nanoserver-ltsc2022)\nservercore:ltsc2022 powershell\n"
        );
    }

    #[test]
    fn final_from_reads_what_docker_reads() {
        let upstream = "FROM mcr.microsoft.com/windows/nanoserver:ltsc2025\nCOPY hello.txt C:\nCMD [\"cmd\", \"/C\", \"type C:\\\\hello.txt\"]\n";
        assert_eq!(
            final_from(upstream).as_deref(),
            Some("mcr.microsoft.com/windows/nanoserver:ltsc2025")
        );
        for (text, want) in [
            (
                "# c\n\nfrom --platform=windows/amd64 a:b AS x\n",
                Some("a:b"),
            ),
            ("FROM a AS build\nRUN x\nFROM b\n", Some("b")),
            ("FROM \\\n  c:d\n", Some("c:d")),
            ("# escape=`\nFROM `\n  e:f\nRUN dir C:\\\n", Some("e:f")),
            ("RUN echo FROM x\n", None),
            ("", None),
        ] {
            assert_eq!(final_from(text).as_deref(), want, "{text:?}");
        }
    }

    #[test]
    fn listed_directories_are_checked_not_written() {
        let t = tempfile::tempdir().unwrap();
        let root = Root::open_with(t.path(), crate::store::root::Follow::Never).unwrap();
        let v = WindowsVariant::parse("nanoserver-ltsc2025").unwrap();
        let e = check_listed(&root, "amd64/v", &v, "o").unwrap_err();
        assert_eq!(e.exit_code(), 2);
        std::fs::create_dir_all(t.path().join("amd64/v")).unwrap();
        let df = t.path().join("amd64/v/Dockerfile");
        std::fs::write(&df, "FROM mcr.microsoft.com/windows/nanoserver:ltsc2022\n").unwrap();
        let e = check_listed(&root, "amd64/v", &v, "o")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("says FROM mcr.microsoft.com/windows/nanoserver:ltsc2022")
                && e.contains("nanoserver-ltsc2025"),
            "{e}"
        );
        std::fs::write(&df, "FROM mcr.microsoft.com/windows/nanoserver:ltsc2025\n").unwrap();
        check_listed(&root, "amd64/v", &v, "o").unwrap();
        // A symlinked Dockerfile is never followed.
        std::fs::remove_file(&df).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", &df).unwrap();
        assert!(check_listed(&root, "amd64/v", &v, "o").is_err());
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
