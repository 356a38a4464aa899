//! One settings path for an image, in the manner of ripgrep's low-level and high-level
//! arguments: the command line (`ocipack image`) and the project file (`ocipack build`) both
//! fill one [`Settings`] — every value as the user wrote it, with where it was written — and
//! [`Settings::resolve`] validates it once into the [`ImageSpec`] that decides an image's
//! bytes. So both accept the same settings, check them the same way, and every error names
//! what the user actually wrote: `--expose "99999": …` or
//! `p/ocipack.toml:12: image.expose "99999": …`, never a flag the user did not type.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::image::build::{DEFAULT_LINUX_PATH, ImageSpec, Input, InputSource};
use crate::image::write::NameStyle;
use crate::input::{MtimeMode, Owners, OwnersPolicy, TreeOptions};
use crate::layer::EncodeOptions;
use crate::media::Compression;
use crate::platform::Platform;
use crate::show;
use crate::spec::{ContainerConfig, Empty};
use crate::store::paths::check_relative;
use crate::timestamp::Timestamp;

/// The project file's name inside a project directory, whose settings this module resolves
/// like the command line's.
pub const PROJECT_FILE: &str = "ocipack.toml";

/// Where a setting was written: a flag (`--rootfs`) or a key of a file
/// (`p/ocipack.toml:12: input.rootfs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin(String);

impl Origin {
    /// A command-line flag, `--name`.
    pub fn flag(name: &str) -> Origin {
        Origin(format!("--{name}"))
    }

    /// A key at `line` of `file`.
    pub fn key(file: &Path, line: usize, key: &str) -> Origin {
        Origin(format!("{}:{line}: {key}", show::path(file)))
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A value as written, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Set<T> {
    /// The value.
    pub value: T,
    /// Where it was written.
    pub origin: Origin,
}

impl<T> Set<T> {
    /// `value` written at `origin`.
    pub fn new(value: T, origin: Origin) -> Set<T> {
        Set { value, origin }
    }

    /// An input error about this setting, which names it without its value.
    pub fn err(&self, problem: impl Into<String>) -> Error {
        Error::input(self.origin.to_string(), problem)
    }
}

impl Set<String> {
    /// An input error naming this setting and its value (escaped, quoted).
    pub fn bad(&self, problem: impl Into<String>) -> Error {
        Error::input(
            format!("{} \"{}\"", self.origin, show::text(&self.value)),
            problem,
        )
    }
}

/// One input as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputSetting {
    /// A directory tree (`--rootfs`, `rootfs = …`).
    Rootfs(PathBuf),
    /// An existing tar (`--tar`, `tar = …`).
    Tar(PathBuf),
    /// One file (`--file SRC:DEST[:MODE]`, `source`/`dest`/`mode`).
    File {
        /// The file on disk.
        source: PathBuf,
        /// Its absolute path in the image (its own origin: `input.dest`).
        dest: Set<String>,
        /// Octal permission bits, if given (`input.mode`).
        mode: Option<Set<String>>,
    },
}

impl InputSetting {
    /// The path on disk, as written.
    pub fn path(&self) -> &Path {
        match self {
            InputSetting::Rootfs(p) | InputSetting::Tar(p) => p,
            InputSetting::File { source, .. } => source,
        }
    }
}

/// Every setting of an image, as written. Unset settings take their defaults in
/// [`Settings::resolve`].
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// The layer's inputs, in the order given.
    pub inputs: Vec<Set<InputSetting>>,
    /// A bashbrew architecture name.
    pub arch: Option<Set<String>>,
    /// An explicit platform, `OS/ARCH[/VARIANT]`.
    pub platform: Option<Set<String>>,
    /// Entrypoint argv.
    pub entrypoint: Option<Set<Vec<String>>>,
    /// Cmd argv.
    pub cmd: Option<Set<Vec<String>>>,
    /// Environment, `K=V`, after the default PATH.
    pub env: Vec<Set<String>>,
    /// Whether the default PATH is added (default: yes).
    pub default_env: Option<Set<bool>>,
    /// Working directory.
    pub workdir: Option<Set<String>>,
    /// User.
    pub user: Option<Set<String>>,
    /// Labels, `K=V`.
    pub labels: Vec<Set<String>>,
    /// Exposed ports, `PORT[/PROTO]`.
    pub expose: Vec<Set<String>>,
    /// Volumes (absolute paths).
    pub volumes: Vec<Set<String>>,
    /// Stop signal.
    pub stop_signal: Option<Set<String>>,
    /// Text of a single history entry.
    pub created_by: Option<Set<String>>,
    /// Manifest annotations, `K=V`.
    pub annotations: Vec<Set<String>>,
    /// `clamp` or `fixed`.
    pub mtime: Option<Set<String>>,
    /// `zero` or `keep`: the owners of every tree and tar input (default: a tree's become
    /// 0:0, a tar's are kept).
    pub owners: Option<Set<String>>,
    /// Keep numeric owners: `true` is `owners = "keep"`, `false` is `owners = "zero"`.
    pub preserve_owners: Option<Set<bool>>,
    /// Keep extended attributes.
    pub xattrs: Option<Set<bool>>,
    /// Keep device nodes.
    pub devices: Option<Set<bool>>,
    /// `none`, `gzip` or `zstd`.
    pub compression: Option<Set<String>>,
    /// Compression level.
    pub level: Option<Set<i64>>,
    /// `symlinks`, `files` or `none`.
    pub names: Option<Set<String>>,
    /// The index entry's name annotation.
    pub ref_name: Option<Set<String>>,
    /// A single-descriptor file to write too.
    pub descriptor_file: Option<Set<String>>,
}

/// What resolving needs besides the settings.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    /// Relative input paths are relative to this directory.
    pub base: &'a Path,
    /// For a project: `{arch}` in input paths expands to this bashbrew name, and input paths
    /// must be relative. `None` for the command line (paths are taken as written).
    pub arch: Option<&'a str>,
    /// For an entry of a project's `[[images]]`: `{image}` in input paths expands to its
    /// name (with `arch` only). `None`: `{image}` is not a placeholder.
    pub image: Option<&'a str>,
    /// The image's creation time.
    pub created: Timestamp,
    /// Compression worker threads (never changes the bytes).
    pub jobs: usize,
    /// The mtime mode when none is set: `clamp` for files named on the command line, `fixed`
    /// for projects, whose checkout mtimes mean nothing.
    pub default_mtime: MtimeMode,
}

fn key_value(s: &Set<String>, what: &str) -> Result<(String, String)> {
    match s.value.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(s.bad(format!("expected KEY=VALUE ({what})"))),
    }
}

fn map_of(items: &[Set<String>], what: &str) -> Result<BTreeMap<String, String>> {
    let mut m = BTreeMap::new();
    for it in items {
        let (k, v) = key_value(it, what)?;
        if m.insert(k.clone(), v).is_some() {
            return Err(it.bad(format!("{} is given twice", show::text(&k))));
        }
    }
    Ok(m)
}

fn flag(s: &Option<Set<bool>>, default: bool) -> bool {
    s.as_ref().map_or(default, |s| s.value)
}

impl Settings {
    /// The input paths as a project writes them, with `{arch}` (and `{image}`, when
    /// given) expanded.
    pub fn input_paths(&self, arch: &str, image: Option<&str>) -> Vec<String> {
        self.inputs
            .iter()
            .map(|i| expand_input(&i.value.path().to_string_lossy(), arch, image))
            .collect()
    }

    /// Validates every setting and resolves them into the spec of one image.
    pub fn resolve(&self, cx: &Context) -> Result<ImageSpec> {
        let platform = match (&self.arch, &self.platform) {
            (Some(a), None) => {
                Platform::from_bashbrew_arch(&a.value).map_err(|e| a.bad(e.to_string()))?
            }
            (None, Some(p)) => p.value.parse().map_err(|e: Error| p.bad(e.to_string()))?,
            (Some(a), Some(p)) => {
                return Err(Error::usage(format!(
                    "{} and {} both name a platform; give one",
                    a.origin, p.origin
                )));
            }
            (None, None) => {
                return Err(Error::usage(
                    "no platform: pass --arch (a bashbrew name such as amd64) or --platform OS/ARCH[/VARIANT]; \
                     the host's platform is never assumed",
                ));
            }
        };
        let mut inputs = Vec::new();
        for i in &self.inputs {
            inputs.push(self.resolve_input(i, cx)?);
        }
        if inputs.is_empty() {
            return Err(Error::usage(
                "no input: pass --rootfs DIR, --file SRC:DEST or --tar FILE",
            ));
        }

        let compression = match &self.compression {
            Some(c) => c.value.parse::<Compression>().map_err(|e| c.bad(e))?,
            None => Compression::Gzip,
        };
        let level = match &self.level {
            None => None,
            Some(l) => {
                let (lo, hi) = compression
                    .level_range()
                    .ok_or_else(|| l.err("a compression level applies to gzip and zstd only"))?;
                Some(
                    i32::try_from(l.value)
                        .ok()
                        .filter(|n| (lo..=hi).contains(n))
                        .ok_or_else(|| {
                            l.err(format!(
                                "{}: {compression} levels are {lo} to {hi}",
                                l.value
                            ))
                        })?,
                )
            }
        };
        let mtime = match &self.mtime {
            None => cx.default_mtime,
            Some(m) => match m.value.as_str() {
                "clamp" => MtimeMode::Clamp,
                "fixed" => MtimeMode::Fixed,
                _ => return Err(m.bad("expected \"clamp\" or \"fixed\"")),
            },
        };
        let names = match &self.names {
            Some(n) => n.value.parse::<NameStyle>().map_err(|e| n.bad(e))?,
            None => NameStyle::Symlinks,
        };
        if let Some(r) = self.ref_name.as_ref().filter(|r| r.value.is_empty()) {
            return Err(r.bad("is empty"));
        }
        if let Some(d) = &self.descriptor_file {
            check_descriptor_file_name(d)?;
        }

        let mut env = Vec::new();
        for e in &self.env {
            key_value(e, "an environment variable")?;
        }
        if flag(&self.default_env, true) && !self.env.iter().any(|e| e.value.starts_with("PATH=")) {
            env.extend(default_env(&platform));
        }
        env.extend(self.env.iter().map(|e| e.value.clone()));
        let mut ports = BTreeMap::new();
        for p in &self.expose {
            ports.insert(parse_port(p)?, Empty {});
        }
        let mut volumes = BTreeMap::new();
        for v in &self.volumes {
            if !v.value.starts_with('/') {
                return Err(v.bad("a volume is an absolute path in the image"));
            }
            volumes.insert(v.value.clone(), Empty {});
        }
        let labels = map_of(&self.labels, "a label")?;
        let annotations = map_of(&self.annotations, "an annotation")?;
        let config = ContainerConfig {
            user: self.user.as_ref().map(|s| s.value.clone()),
            exposed_ports: (!ports.is_empty()).then_some(ports),
            env: (!env.is_empty()).then_some(env),
            entrypoint: self
                .entrypoint
                .as_ref()
                .filter(|e| !e.value.is_empty())
                .map(|e| e.value.clone()),
            cmd: self
                .cmd
                .as_ref()
                .filter(|c| !c.value.is_empty())
                .map(|c| c.value.clone()),
            volumes: (!volumes.is_empty()).then_some(volumes),
            working_dir: self.workdir.as_ref().map(|s| s.value.clone()),
            labels: (!labels.is_empty()).then_some(labels),
            stop_signal: self.stop_signal.as_ref().map(|s| s.value.clone()),
            args_escaped: None,
        };
        Ok(ImageSpec {
            inputs,
            tree: TreeOptions {
                created: cx.created,
                mtime,
                owners: self.owners_policy(cx)?,
                xattrs: flag(&self.xattrs, false),
                devices: flag(&self.devices, false),
            },
            platform,
            config,
            created_by: self.created_by.as_ref().map(|s| s.value.clone()),
            encode: EncodeOptions {
                compression,
                level,
                jobs: cx.jobs,
            },
            ref_name: self.ref_name.as_ref().map(|s| s.value.clone()),
            annotations,
            names,
            descriptor_file: self.descriptor_file.as_ref().map(|s| s.value.clone()),
            profile: Default::default(),
        })
    }

    /// `owners` and its alias `preserve-owners` (which may both be given if they agree), with
    /// the words a refusal needs: where the choice was written and how to keep owners.
    fn owners_policy(&self, cx: &Context) -> Result<OwnersPolicy> {
        let project = cx.arch.is_some();
        // Each choice as the user wrote it: `--owners "zero"`, `--preserve-owners` (a flag:
        // only ever true), `p/ocipack.toml:5: image.owners = "zero"`,
        // `p/ocipack.toml:6: image.preserve-owners = false`.
        let owners = match &self.owners {
            Some(o) => {
                let value = format!("\"{}\"", show::text(&o.value));
                let said = if project {
                    format!("{} = {value}", o.origin)
                } else {
                    format!("{} {value}", o.origin)
                };
                Some((o.value.parse::<Owners>().map_err(|e| o.bad(e))?, said))
            }
            None => None,
        };
        let preserve = self.preserve_owners.as_ref().map(|p| {
            let o = if p.value { Owners::Keep } else { Owners::Zero };
            let said = if project {
                format!("{} = {}", p.origin, p.value)
            } else {
                p.origin.to_string()
            };
            (o, said)
        });
        let chosen = match (owners, preserve) {
            (Some((a, a_said)), Some((b, b_said))) if a != b => {
                return Err(Error::usage(format!(
                    "{a_said} and {b_said} disagree: give one of them"
                )));
            }
            (Some(c), _) | (None, Some(c)) => Some(c),
            (None, None) => None,
        };
        let (keep, file) = if project {
            (
                format!(
                    "owners = \"keep\" in [image] of {}",
                    show::path(&cx.base.join(PROJECT_FILE))
                ),
                "an [[input]] with source, dest and mode".into(),
            )
        } else {
            ("--owners keep".into(), "--file SRC:DEST:MODE".into())
        };
        Ok(OwnersPolicy {
            chosen: chosen.as_ref().map(|c| c.0),
            chosen_at: chosen.map(|c| c.1).unwrap_or_default(),
            keep,
            file,
        })
    }

    fn resolve_input(&self, i: &Set<InputSetting>, cx: &Context) -> Result<Input> {
        let path = |written: &Path| -> Result<(PathBuf, String)> {
            let as_set = Set::new(written.to_string_lossy().into_owned(), i.origin.clone());
            if written.as_os_str().is_empty() {
                return Err(as_set.bad("is empty"));
            }
            match cx.arch {
                Some(arch) => {
                    let allowed: &[&str] = match cx.image {
                        Some(_) => &["arch", "image"],
                        None => &["arch"],
                    };
                    check_template(&as_set.value, allowed).map_err(|p| as_set.bad(p))?;
                    check_relative(&as_set.value, true).map_err(|p| as_set.bad(p))?;
                    let expanded = expand_input(&as_set.value, arch, cx.image);
                    Ok((cx.base.join(&expanded), show::text(&expanded)))
                }
                None => Ok((cx.base.join(written), show::path(written))),
            }
        };
        let (source, written) = match &i.value {
            InputSetting::Rootfs(p) => {
                let (abs, w) = path(p)?;
                (InputSource::Rootfs(abs), w)
            }
            InputSetting::Tar(p) => {
                let (abs, w) = path(p)?;
                (InputSource::Tar(abs), w)
            }
            InputSetting::File { source, dest, mode } => {
                let (abs, w) = path(source)?;
                let d = &dest.value;
                if !d.starts_with('/') || d.split('/').any(|c| c == "..") {
                    return Err(dest.bad("must be an absolute path in the image without '..'"));
                }
                let mode = mode
                    .as_ref()
                    .map(|m| {
                        u32::from_str_radix(&m.value, 8)
                            .ok()
                            .filter(|v| *v <= 0o7777)
                            .ok_or_else(|| m.bad("must be octal, at most 7777 (e.g. \"0755\")"))
                    })
                    .transpose()?;
                (
                    InputSource::File {
                        src: abs,
                        dest: d.clone(),
                        mode,
                    },
                    w,
                )
            }
        };
        Ok(Input {
            source,
            origin: format!("{} \"{}\"", i.origin, written),
        })
    }
}

/// A project's input path with `{arch}` and, for an `[[images]]` entry, `{image}` expanded.
fn expand_input(path: &str, arch: &str, image: Option<&str>) -> String {
    let p = path.replace("{arch}", arch);
    match image {
        Some(i) => p.replace("{image}", i),
        None => p,
    }
}

/// Accepts only `{name}` placeholders from `allowed`, with balanced braces.
pub(crate) fn check_template(t: &str, allowed: &[&str]) -> std::result::Result<(), String> {
    let mut rest = t;
    while let Some(open) = rest.find(['{', '}']) {
        if rest[open..].starts_with('}') {
            return Err(format!("\"{}\" has an unmatched '}}'", show::text(t)));
        }
        let after = &rest[open + 1..];
        let close = after
            .find('}')
            .ok_or_else(|| format!("\"{}\" has an unmatched '{{'", show::text(t)))?;
        let name = &after[..close];
        if !allowed.contains(&name) {
            let known = if allowed.is_empty() {
                "none is allowed here".to_string()
            } else {
                format!(
                    "known: {}",
                    allowed
                        .iter()
                        .map(|a| format!("{{{a}}}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            return Err(format!(
                "unknown placeholder {{{}}} ({known})",
                show::text(name)
            ));
        }
        rest = &after[close + 1..];
    }
    Ok(())
}

/// The environment a scratch image starts with on `platform` (Linux: the default PATH).
pub fn default_env(platform: &Platform) -> Vec<String> {
    if platform.os == "linux" {
        vec![DEFAULT_LINUX_PATH.to_string()]
    } else {
        Vec::new()
    }
}

fn parse_port(s: &Set<String>) -> Result<String> {
    let (port, proto) = s.value.split_once('/').unwrap_or((&s.value, "tcp"));
    let ok_port = port.parse::<u16>().map(|p| p > 0).unwrap_or(false);
    if !ok_port || !["tcp", "udp", "sctp"].contains(&proto) {
        return Err(s.bad("expected PORT[/tcp|udp|sctp] with PORT 1-65535"));
    }
    Ok(format!("{port}/{proto}"))
}

/// A descriptor file is a plain name no layout file uses.
fn check_descriptor_file_name(d: &Set<String>) -> Result<()> {
    let n = d.value.as_str();
    let reserved = [
        "index.json",
        "oci-layout",
        "blobs",
        crate::image::build::CONFIG_FILE_NAME,
        crate::image::build::MANIFEST_FILE_NAME,
    ];
    let plain = n
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if n.is_empty()
        || !plain
        || n.starts_with('.')
        || reserved.contains(&n)
        || n.starts_with("rootfs.tar")
    {
        return Err(d.bad(
            "must be a plain file name (letters, digits, '.', '_', '-') that no layout file uses",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli(name: &str, v: &str) -> Set<String> {
        Set::new(v.to_string(), Origin::flag(name))
    }

    fn base() -> Settings {
        Settings {
            inputs: vec![Set::new(
                InputSetting::Rootfs(PathBuf::from("r")),
                Origin::flag("rootfs"),
            )],
            arch: Some(cli("arch", "amd64")),
            ..Settings::default()
        }
    }

    fn cx(arch: Option<&str>) -> Context<'_> {
        Context {
            base: Path::new("p"),
            arch,
            image: None,
            created: Timestamp::from_unix(0).unwrap(),
            jobs: 1,
            default_mtime: MtimeMode::Clamp,
        }
    }

    #[test]
    fn errors_name_the_origin_and_the_value_as_written() {
        let mut s = base();
        s.expose.push(cli("expose", "99999"));
        let e = s.resolve(&cx(None)).unwrap_err().to_string();
        assert!(e.starts_with("--expose \"99999\": expected PORT"), "{e}");

        let mut s = base();
        let file = Path::new("p/ocipack.toml");
        s.expose.push(Set::new(
            "x\n".into(),
            Origin::key(file, 12, "image.expose"),
        ));
        let e = s.resolve(&cx(Some("amd64"))).unwrap_err().to_string();
        assert!(
            e.starts_with("p/ocipack.toml:12: image.expose \"x\\n\": expected PORT"),
            "{e}"
        );

        let mut s = base();
        s.inputs = vec![Set::new(
            InputSetting::Rootfs(PathBuf::from("/abs")),
            Origin::key(file, 3, "input.rootfs"),
        )];
        let e = s.resolve(&cx(Some("amd64"))).unwrap_err().to_string();
        assert!(
            e.contains("input.rootfs \"/abs\": ") && e.contains("must be a relative path"),
            "{e}"
        );

        let mut s = base();
        s.labels.push(cli("label", "a=1"));
        s.labels.push(cli("label", "a=2"));
        let e = s.resolve(&cx(None)).unwrap_err().to_string();
        assert!(e.contains("given twice"), "{e}");
    }

    #[test]
    fn owners_and_its_alias_resolve_into_one_policy_named_as_written() {
        let flag = |v: bool| Some(Set::new(v, Origin::flag("preserve-owners")));
        let policy = |s: &Settings, arch| s.resolve(&cx(arch)).map(|spec| spec.tree.owners);

        let p = policy(&base(), None).unwrap();
        assert_eq!((p.chosen, p.keep.as_str()), (None, "--owners keep"));

        let mut s = base();
        s.owners = Some(cli("owners", "zero"));
        let p = policy(&s, None).unwrap();
        assert_eq!(p.chosen, Some(Owners::Zero));
        assert_eq!(p.chosen_at, "--owners \"zero\"");
        s.preserve_owners = flag(true);
        let e = policy(&s, None).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert_eq!(
            e.to_string(),
            "--owners \"zero\" and --preserve-owners disagree: give one of them"
        );
        s.owners = Some(cli("owners", "keep"));
        assert_eq!(policy(&s, None).unwrap().chosen, Some(Owners::Keep));
        s.owners = Some(cli("owners", "root\n"));
        let e = policy(&s, None).unwrap_err().to_string();
        assert_eq!(e, "--owners \"root\\n\": expected \"zero\" or \"keep\"");

        // A project: the key and the file, as written.
        let file = Path::new("p/ocipack.toml");
        let mut s = base();
        s.preserve_owners = Some(Set::new(
            false,
            Origin::key(file, 7, "image.preserve-owners"),
        ));
        let p = policy(&s, Some("amd64")).unwrap();
        assert_eq!(p.chosen, Some(Owners::Zero));
        assert_eq!(
            p.chosen_at,
            "p/ocipack.toml:7: image.preserve-owners = false"
        );
        assert_eq!(p.keep, "owners = \"keep\" in [image] of p/ocipack.toml");
        s.owners = Some(Set::new(
            "keep".into(),
            Origin::key(file, 6, "image.owners"),
        ));
        let e = policy(&s, Some("amd64")).unwrap_err().to_string();
        assert_eq!(
            e,
            "p/ocipack.toml:6: image.owners = \"keep\" and \
             p/ocipack.toml:7: image.preserve-owners = false disagree: give one of them"
        );
    }

    #[test]
    fn a_project_expands_arch_and_the_command_line_takes_paths_as_written() {
        let mut s = base();
        s.inputs = vec![Set::new(
            InputSetting::File {
                source: PathBuf::from("{arch}/hello"),
                dest: Set::new("/hello".into(), Origin::flag("file")),
                mode: Some(Set::new("0755".into(), Origin::flag("file"))),
            },
            Origin::key(Path::new("p/ocipack.toml"), 9, "input.source"),
        )];
        let spec = s.resolve(&cx(Some("arm64v8"))).unwrap();
        assert_eq!(
            spec.inputs[0].source,
            InputSource::File {
                src: PathBuf::from("p/arm64v8/hello"),
                dest: "/hello".into(),
                mode: Some(0o755)
            }
        );
        assert_eq!(
            spec.inputs[0].origin,
            "p/ocipack.toml:9: input.source \"arm64v8/hello\""
        );
        let spec = s.resolve(&cx(None)).unwrap();
        assert_eq!(
            spec.inputs[0].source,
            InputSource::File {
                src: PathBuf::from("p/{arch}/hello"),
                dest: "/hello".into(),
                mode: Some(0o755)
            }
        );
    }
}
