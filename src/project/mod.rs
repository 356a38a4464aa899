//! `ocipack.toml`: the project file that `ocipack build` and `ocipack library` read.
//!
//! The file is strict: a key ocipack does not know is an error naming the key and its line,
//! and so is every value it cannot use. Paths are relative to the project directory (the
//! directory holding the file). Path templates expand `{arch}` (the bashbrew architecture
//! name; inputs and `output`), `{image}` (an `[[images]]` entry's name; inputs, `output`
//! and the commit branch) and `{variant}` (`[windows] output`); any other `{…}` is an
//! error. `docs/reference/ocipack-toml.md` gives every key; a test checks it against
//! [`project_keys`], which reads the keys from the structs below.
//!
//! A project is a list of library entries, [`Project::images`] ([`images`]): each
//! `[[images]]` table in file order, or, without one, a single implicit entry made of the
//! top-level settings (named after the project, tagged by `[library] tags`), so that every
//! command iterates over entries and a project of one image builds what it always built.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Range;
use std::path::{Component, Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

pub mod against;
pub mod build;
pub mod cache;
pub mod dist;
pub mod git;
pub mod images;
mod keys;
pub mod library;
pub mod plan;
pub mod push;
pub mod windows;

pub use images::{BuildEntry, EntryKind, FromEntry, ImageEntry};
#[doc(hidden)]
pub use keys::project_keys;

use crate::error::{Error, Result};
use crate::image::build::ImageSpec;
use crate::input::MtimeMode;
use crate::platform::Platform;
use crate::settings::{Context, InputSetting, Origin, Set, Settings, check_template};
use crate::show;
use crate::store::paths::check_relative;
use crate::store::root::read_named;
use crate::timestamp::Timestamp;
use git::{check_branch_pattern, check_git_fetch};

/// The largest project file read.
pub const MAX_PROJECT_FILE: u64 = 1024 * 1024;

pub use crate::settings::PROJECT_FILE;
/// The layout path template used when `output` is not given.
pub const DEFAULT_OUTPUT: &str = "{arch}/oci";
/// The Windows output template used when `[windows] output` is not given.
pub const DEFAULT_WINDOWS_OUTPUT: &str = "amd64/{variant}";
/// The bashbrew architecture of every Windows variant.
pub const WINDOWS_ARCH: &str = "windows-amd64";

/// Where an image's `created` time comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreatedSource {
    /// A fixed time written in the project file.
    Fixed(Timestamp),
    /// The `SOURCE_DATE_EPOCH` environment variable at build time (an error if unset).
    SourceDateEpoch,
    /// Per architecture, the committer time of the newest commit touching that
    /// architecture's inputs (an error for uncommitted inputs or a shallow clone).
    Git,
}

/// A Windows variant such as `nanoserver-ltsc2025`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowsVariant {
    /// The variant's name: `<image>-<tag>`, also its `Constraints:` value and tag.
    pub name: String,
    /// The base image: `mcr.microsoft.com/windows/<image>:<tag>`.
    pub from: String,
}

impl WindowsVariant {
    /// Parses `nanoserver-<tag>` or `servercore-<tag>`.
    pub fn parse(name: &str) -> std::result::Result<WindowsVariant, String> {
        let (image, tag) = name
            .split_once('-')
            .ok_or("expected <image>-<tag>, e.g. nanoserver-ltsc2025")?;
        if !["nanoserver", "servercore"].contains(&image) {
            return Err(format!(
                "unknown Windows base image \"{}\" (expected nanoserver or servercore)",
                show::text(image)
            ));
        }
        let tag_ok = !tag.is_empty()
            && tag
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.');
        if !tag_ok {
            return Err(format!(
                "tag \"{}\" must be lowercase letters, digits and dots",
                show::text(tag)
            ));
        }
        Ok(WindowsVariant {
            name: name.to_string(),
            from: format!("mcr.microsoft.com/windows/{image}:{tag}"),
        })
    }
}

/// The `[windows]` table: Dockerfile-based Windows images.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowsSettings {
    /// `variants`, in the order given.
    pub variants: Vec<WindowsVariant>,
    /// `text`: the message source, relative to the project directory, from which ocipack
    /// writes each variant's directory (`{arch}`, `{variant}` and `{tag}` substituted).
    /// `None`: the directories are the project's own, only listed in the library file and
    /// checked by `build` (each holds a `Dockerfile` whose `FROM` names its variant).
    pub text: Option<String>,
    /// `output` template (default `amd64/{variant}`).
    pub output: String,
    /// The line of `output`, if it is written.
    pub output_line: Option<usize>,
}

/// The `[library]` table: what `ocipack library` needs beyond the layouts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LibrarySettings {
    /// `maintainers`, each `Name <email> (@github)`.
    pub maintainers: Vec<String>,
    /// `git-repo`.
    pub git_repo: String,
    /// `windows-shared-tags` of each Windows entry (default: `shared-tags`).
    pub windows_shared_tags: Vec<String>,
    /// `git-fetch`: the `GitFetch:` ref (default: `refs/heads/<current branch>`).
    pub git_fetch: Option<String>,
    /// `commit-branch`: the branch template (`dist-{arch}`) each architecture's layout is
    /// committed to, instead of the work tree (see `project::dist`).
    pub commit_branch: Option<String>,
}

/// `[library] tags` and `shared-tags`: the implicit entry's tags.
struct LibraryTags {
    tags: Vec<String>,
    shared_tags: Vec<String>,
}

/// A parsed, validated project file.
#[derive(Debug, Clone)]
pub struct Project {
    /// The project directory.
    pub dir: PathBuf,
    /// `name`.
    pub name: String,
    /// `created`.
    pub created: CreatedSource,
    /// `architectures`, bashbrew names, in the order given.
    pub architectures: Vec<String>,
    /// The top-level `output` template (or its default), which entries without their own
    /// inherit.
    pub output: String,
    /// The top-level `[image]` and `[[input]]`, as written: what entries inherit (each
    /// entry's merged settings are in [`BuildEntry::settings`]).
    pub image: Settings,
    /// The library entries, in file order: each `[[images]]` table, or the one implicit
    /// entry of a project without them. Validated at load time (see [`images`]).
    pub images: Vec<ImageEntry>,
    /// The line of `architectures`, for messages about an architecture.
    architectures_line: usize,
    /// Each entry's index in `images` by name, so that [`Project::entry`] is a lookup.
    by_name: BTreeMap<String, usize>,
    /// `[windows]`.
    pub windows: Option<WindowsSettings>,
    /// `[library]`.
    pub library: Option<LibrarySettings>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawProject {
    name: Spanned<String>,
    created: Spanned<toml::Value>,
    architectures: Spanned<Vec<Spanned<String>>>,
    output: Option<Spanned<String>>,
    #[serde(default)]
    image: RawImage,
    #[serde(default)]
    input: Vec<Spanned<RawInput>>,
    windows: Option<Spanned<RawWindows>>,
    library: Option<Spanned<RawLibrary>>,
    // Last: the key walk (`keys.rs`) lists `[image]`'s and `[[input]]`'s keys first, so
    // that `images.image` and `images.input` are one key each.
    #[serde(default)]
    images: Vec<Spanned<images::RawEntry>>,
}

#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawImage {
    cmd: Option<Spanned<Vec<String>>>,
    entrypoint: Option<Spanned<Vec<String>>>,
    env: Option<Vec<Spanned<String>>>,
    default_env: Option<Spanned<bool>>,
    workdir: Option<Spanned<String>>,
    user: Option<Spanned<String>>,
    labels: Option<Spanned<BTreeMap<String, String>>>,
    expose: Option<Vec<Spanned<String>>>,
    volumes: Option<Vec<Spanned<String>>>,
    stop_signal: Option<Spanned<String>>,
    created_by: Option<Spanned<String>>,
    annotations: Option<Spanned<BTreeMap<String, String>>>,
    compression: Option<Spanned<String>>,
    level: Option<Spanned<i64>>,
    names: Option<Spanned<String>>,
    ref_name: Option<Spanned<String>>,
    descriptor_file: Option<Spanned<String>>,
    mtime: Option<Spanned<String>>,
    owners: Option<Spanned<String>>,
    preserve_owners: Option<Spanned<bool>>,
    xattrs: Option<Spanned<bool>>,
    devices: Option<Spanned<bool>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawInput {
    source: Option<Spanned<String>>,
    dest: Option<Spanned<String>>,
    mode: Option<Spanned<String>>,
    rootfs: Option<Spanned<String>>,
    tar: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawWindows {
    variants: Spanned<Vec<Spanned<String>>>,
    text: Option<Spanned<String>>,
    output: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawLibrary {
    maintainers: Spanned<Vec<Spanned<String>>>,
    git_repo: Spanned<String>,
    tags: Option<Spanned<Vec<Spanned<String>>>>,
    shared_tags: Option<Spanned<Vec<Spanned<String>>>>,
    windows_shared_tags: Option<Vec<Spanned<String>>>,
    git_fetch: Option<Spanned<String>>,
    commit_branch: Option<Spanned<String>>,
}

/// Error reporting against the project file's text.
struct Source<'a> {
    path: &'a Path,
    text: &'a str,
    /// The offset of each line end (`\n`), in order: a line number is a binary search, so
    /// that naming the line of every value stays cheap in a file of 10,000 entries.
    line_ends: Vec<usize>,
}

impl<'a> Source<'a> {
    fn new(path: &'a Path, text: &'a str) -> Source<'a> {
        let line_ends = text
            .bytes()
            .enumerate()
            .filter_map(|(i, b)| (b == b'\n').then_some(i))
            .collect();
        Source {
            path,
            text,
            line_ends,
        }
    }

    /// The 1-based line holding byte `offset`.
    fn line(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        // The line ends before `end`, plus one.
        self.line_ends.partition_point(|&e| e < end) + 1
    }

    /// The offset at which 1-based `line` starts.
    fn line_start(&self, line: usize) -> usize {
        match line.checked_sub(2) {
            Some(i) => self.line_ends.get(i).map_or(self.text.len(), |e| e + 1),
            None => 0,
        }
    }

    /// An input error at `span`: `FILE:LINE`, then `key: problem`.
    fn err(&self, span: Range<usize>, key: &str, problem: impl std::fmt::Display) -> Error {
        Error::input(
            format!("{}:{}", crate::show::path(self.path), self.line(span.start)),
            format!("{key}: {problem}"),
        )
    }

    /// Where `key` at `span` was written, for [`Settings`].
    fn origin(&self, span: Range<usize>, key: &str) -> Origin {
        Origin::key(self.path, self.line(span.start), key)
    }

    fn err_at<T>(&self, v: &Spanned<T>, key: &str, problem: impl std::fmt::Display) -> Error {
        self.err(v.span(), key, problem)
    }
}

impl Project {
    /// Checks that every `--arch` in `arches` is one the project declares (`windows-amd64`
    /// too when `windows` and the project has a `[windows]` table).
    pub fn check_arches(&self, arches: &[String], windows: bool) -> Result<()> {
        let file = self.dir.join(PROJECT_FILE);
        for a in arches {
            if a == WINDOWS_ARCH && self.windows.is_some() {
                if windows {
                    continue;
                }
                return Err(Error::usage(format!(
                    "--arch {a}: Windows images are Dockerfile builds; the project has no \
                     layout of them"
                )));
            }
            if !self.architectures.contains(a) {
                let mut all = self.architectures.clone();
                if windows && self.windows.is_some() {
                    all.push(WINDOWS_ARCH.into());
                }
                return Err(Error::usage(format!(
                    "--arch {}: {} declares only {}",
                    show::text(a),
                    show::path(&file),
                    all.join(", ")
                )));
            }
        }
        Ok(())
    }

    /// Checks that every `--image` names an image of the project (a usage error listing its
    /// images otherwise).
    pub fn check_images(&self, images: &[String]) -> Result<()> {
        for name in images {
            if self.entry(name).is_none() {
                let known: Vec<&str> = self.images.iter().map(|e| e.name.as_str()).collect();
                return Err(Error::usage(format!(
                    "--image {}: {} has no image of that name (its images: {})",
                    show::text(name),
                    show::path(&self.dir.join(PROJECT_FILE)),
                    images::shown_names(&known, ", ")
                )));
            }
        }
        Ok(())
    }

    /// Reads and validates `DIR/ocipack.toml`.
    pub fn load(dir: &Path) -> Result<Project> {
        let path = dir.join(PROJECT_FILE);
        let bytes = read_named(&path, MAX_PROJECT_FILE).map_err(|e| {
            Error::input(format!("project file {}", show::path(&path)), e.to_string())
        })?;
        let text = String::from_utf8(bytes).map_err(|_| {
            Error::input(
                format!("project file {}", show::path(&path)),
                "is not UTF-8 text",
            )
        })?;
        Project::parse(&text, &path, dir)
    }

    /// Parses and validates the project file text `text` read from `path` in `dir`.
    pub fn parse(text: &str, path: &Path, dir: &Path) -> Result<Project> {
        let src = Source::new(path, text);
        let raw: RawProject = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| src.line(s.start)).unwrap_or(1);
            let msg = e
                .message()
                .replace("unknown field", "unknown key")
                .replace("missing field", "missing key");
            Error::input(format!("{}:{line}", show::path(path)), show::text(&msg))
        })?;

        let name = raw.name.get_ref().clone();
        if !valid_name(&name) {
            return Err(src.err_at(
                &raw.name,
                "name",
                format!(
                    "\"{}\" is not an image name: lowercase letters and digits, separated by one '.', '_' or '-'",
                    show::text(&name)
                ),
            ));
        }
        let created = parse_created(&src, &raw.created)?;

        let mut architectures = Vec::new();
        for a in raw.architectures.get_ref() {
            let arch = a.get_ref();
            let platform = Platform::from_bashbrew_arch(arch)
                .map_err(|e| src.err_at(a, "architectures", e))?;
            if platform.os != "linux" {
                return Err(src.err_at(
                    a,
                    "architectures",
                    format!("{arch} images are Dockerfile-based: list them in [windows]"),
                ));
            }
            if architectures.contains(arch) {
                return Err(src.err_at(a, "architectures", format!("{arch} is listed twice")));
            }
            architectures.push(arch.clone());
        }
        if architectures.is_empty() {
            return Err(src.err_at(&raw.architectures, "architectures", "is empty"));
        }

        let with_images = !raw.images.is_empty();
        let output = match &raw.output {
            Some(o) => {
                // With [[images]], or with dist branches ([library] commit-branch: each
                // architecture's layout is on a branch of its own, where `bookworm/oci` is
                // the same path on each), whether each (image, architecture) gets its own
                // directory is checked once every entry is known (check_outputs).
                let on_branches = raw
                    .library
                    .as_ref()
                    .is_some_and(|l| l.get_ref().commit_branch.is_some());
                let (allowed, count): (&[&str], usize) = if with_images {
                    (&["arch", "image"], 1)
                } else if on_branches {
                    (&["arch"], 1)
                } else {
                    (&["arch"], architectures.len())
                };
                check_output_template(o.get_ref(), allowed)
                    .and_then(|()| must_contain(o.get_ref(), "arch", count))
                    .map_err(|p| src.err_at(o, "output", p))?;
                o.get_ref().clone()
            }
            None => DEFAULT_OUTPUT.to_string(),
        };
        let output_line = raw.output.as_ref().map(|o| src.line(o.span().start));
        let output_origin = match output_line {
            Some(l) => format!("{}:{l}: output", show::path(path)),
            None => format!("{}: output (the default)", show::path(path)),
        };

        let mut image = parse_image(&src, raw.image.clone(), &|_| "image")?;
        for i in &raw.input {
            image.inputs.push(parse_input(&src, i, "input")?);
        }
        if image.inputs.is_empty() && !with_images {
            return Err(Error::input(
                show::path(path),
                "no [[input]]: an image needs at least one input",
            ));
        }
        let windows = raw
            .windows
            .as_ref()
            .map(|w| parse_windows(&src, w))
            .transpose()?;
        let (library, library_tags, mut tag_uses) = match raw.library.as_ref() {
            Some(l) => {
                let (lib, tags, uses) = parse_library(&src, l, with_images, &architectures, &name)?;
                (Some(lib), tags, uses)
            }
            None => (None, None, Vec::new()),
        };
        let architectures_line = src.line(raw.architectures.span().start);
        let images = if with_images {
            let top = images::Inherited {
                architectures: &architectures,
                architectures_line,
                image: &raw.image,
                inputs: &raw.input,
                output: &output,
                output_origin: output_origin.clone(),
            };
            let (entries, uses) = images::parse_entries(&src, raw.images, &top)?;
            tag_uses.extend(uses);
            entries
        } else {
            let tags = library_tags.unwrap_or(LibraryTags {
                tags: Vec::new(),
                shared_tags: Vec::new(),
            });
            vec![ImageEntry {
                name: name.clone(),
                tags: tags.tags,
                shared_tags: tags.shared_tags,
                architectures: architectures.clone(),
                kind: EntryKind::Build(Box::new(BuildEntry {
                    settings: image.clone(),
                    output: output.clone(),
                    output_origin,
                })),
                line: None,
            }]
        };
        if let (Some(w), Some(l)) = (&raw.windows, &raw.library) {
            tag_uses.extend(windows_tag_uses(&src, w, l));
        }
        images::check_tags(&src, tag_uses)?;

        let by_name = images
            .iter()
            .enumerate()
            .map(|(i, e)| (e.name.clone(), i))
            .collect();
        let project = Project {
            by_name,
            dir: dir.to_path_buf(),
            name,
            created,
            architectures,
            output,
            image,
            images,
            architectures_line,
            windows,
            library,
        };
        // Every image setting is validated now, whatever the architecture or `created`.
        for e in &project.images {
            if let Some(b) = e.build() {
                project.check_oci_import(b)?;
                project.image_spec(e, &e.architectures[0], Timestamp::EPOCH, 1)?;
            }
        }
        let pattern = project
            .library
            .as_ref()
            .and_then(|l| l.commit_branch.as_deref());
        project.check_outputs(pattern)?;
        Ok(project)
    }

    /// The project directory, opened so that nothing beneath it is reached through a
    /// symlink: outputs are resolved and inspected through it.
    pub fn root(&self) -> Result<crate::store::root::Root> {
        crate::store::root::Root::open_with(&self.dir, crate::store::root::Follow::Never)
            .map_err(|e| Error::input_io("opening the project directory", &self.dir, e))
    }

    /// A project with a `[library]` table is built for the Official Images' oci-import path:
    /// settings whose layouts that path refuses are errors naming the setting.
    fn check_oci_import(&self, entry: &BuildEntry) -> Result<()> {
        if self.library.is_none() {
            return Ok(());
        }
        let settings = &entry.settings;
        if let Some(c) = &settings.compression
            && c.value == "zstd"
        {
            return Err(c.bad(format!(
                "this project has a [library] table, so its layouts are for the Official \
                 Images' oci-import path, where {}",
                crate::image::rules::oci_import::ZSTD_REFUSED
            )));
        }
        if let Some(n) = &settings.names
            && n.value == "files"
        {
            return Err(n.bad(
                "this project has a [library] table, so its layouts are pushed by crane \
                 (go-containerregistry ≥ 0.21.7), which refuses the symlinked blobs that \
                 names = \"files\" makes; use \"symlinks\" or \"none\"",
            ));
        }
        Ok(())
    }

    /// True when the file has `[[images]]` tables (false: the one implicit entry).
    pub fn declares_images(&self) -> bool {
        self.images.iter().any(|e| !e.is_implicit())
    }

    /// The entry named `name`.
    pub fn entry(&self, name: &str) -> Option<&ImageEntry> {
        // The index is made when the file is read; `images` is public, so an entry that is
        // not where the index says is searched for.
        match self.by_name.get(name).and_then(|&i| self.images.get(i)) {
            Some(e) if e.name == name => Some(e),
            _ => self.images.iter().find(|e| e.name == name),
        }
    }

    /// The one entry of a project without `[[images]]`, for commands that do not handle
    /// several yet (`what`, e.g. "ocipack library", names the command in the error).
    pub fn single_entry(&self, what: &str) -> Result<&ImageEntry> {
        match &self.images[..] {
            [e] if e.is_implicit() => Ok(e),
            _ => Err(Error::input(
                show::path(&self.dir.join(PROJECT_FILE)),
                format!("has [[images]] entries, which {what} does not handle yet"),
            )),
        }
    }

    /// Every layout the project builds: each building entry's architectures, in file order,
    /// with the layout directory relative to the project directory.
    pub fn layouts(&self) -> Vec<(&ImageEntry, &str, String)> {
        let mut out = Vec::new();
        for e in &self.images {
            let Some(b) = e.build() else { continue };
            for a in &e.architectures {
                out.push((e, a.as_str(), expand_output(&b.output, &e.name, a)));
            }
        }
        out
    }

    /// The layout directory of `image`'s `arch`, relative to the project directory: the
    /// one of the entry that builds it (for a `from` entry, the entry it resolves to);
    /// `None` if the image does not have `arch`.
    pub fn output_rel(&self, image: &ImageEntry, arch: &str) -> Option<String> {
        let source = self.entry(image.source(arch)?)?;
        let b = source.build()?;
        Some(expand_output(&b.output, &source.name, arch))
    }

    /// The layout directory of `image`'s `arch` (see [`Project::output_rel`]).
    pub fn output_dir(&self, image: &ImageEntry, arch: &str) -> Option<PathBuf> {
        self.output_rel(image, arch).map(|r| self.dir.join(r))
    }

    /// The input paths of a building entry's `arch`, relative to the project directory
    /// (empty for a `from` entry).
    pub fn input_paths(&self, image: &ImageEntry, arch: &str) -> Vec<String> {
        match image.build() {
            Some(b) => b.settings.input_paths(arch, self.image_placeholder(image)),
            None => Vec::new(),
        }
    }

    /// `{image}`'s value in an entry's input paths: its name, for `[[images]]` entries.
    fn image_placeholder<'a>(&self, image: &'a ImageEntry) -> Option<&'a str> {
        (!image.is_implicit()).then_some(image.name.as_str())
    }

    /// Where the Windows output template is set, for messages: `ocipack.toml:4:
    /// windows.output`, without a line when it is the default.
    pub fn windows_output_origin(&self) -> String {
        let file = show::path(&self.dir.join(PROJECT_FILE));
        match self.windows.as_ref().and_then(|w| w.output_line) {
            Some(l) => format!("{file}:{l}: windows.output"),
            None => format!("{file}: windows.output (the default)"),
        }
    }

    /// The image spec of a building entry's `arch`, with `created` and the compression
    /// worker count given: its settings resolved by [`Settings::resolve`], like the command
    /// line's. An error for a `from` entry, which builds nothing.
    pub fn image_spec(
        &self,
        image: &ImageEntry,
        arch: &str,
        created: Timestamp,
        jobs: usize,
    ) -> Result<ImageSpec> {
        let Some(b) = image.build() else {
            return Err(Error::Internal(format!(
                "image {} builds nothing: it takes its layouts from other images",
                image.name
            )));
        };
        let mut settings = b.settings.clone();
        settings.arch = Some(Set::new(
            arch.to_string(),
            Origin::key(
                &self.dir.join(PROJECT_FILE),
                self.architectures_line,
                "architectures",
            ),
        ));
        let mut spec = settings.resolve(&Context {
            base: &self.dir,
            arch: Some(arch),
            image: self.image_placeholder(image),
            created,
            jobs,
            default_mtime: MtimeMode::Fixed,
        })?;
        if self.library.is_some() {
            spec.profile = crate::verify::Profile::OciImport;
        }
        Ok(spec)
    }

    /// The Windows output of `variant`, relative to the project directory.
    pub fn windows_output_rel(&self, variant: &str) -> Option<String> {
        self.windows
            .as_ref()
            .map(|w| expand(&w.output, "variant", variant))
    }

    /// Every output (layouts, then Windows directories), relative to the project directory.
    pub fn all_outputs_rel(&self) -> Vec<String> {
        let mut out: Vec<String> = self.layouts().into_iter().map(|(_, _, r)| r).collect();
        if let Some(w) = &self.windows {
            out.extend(
                w.variants
                    .iter()
                    .map(|v| expand(&w.output, "variant", &v.name)),
            );
        }
        out
    }

    /// The branch `pattern` gives `image`'s `arch`: `{arch}` and (for `[[images]]` entries)
    /// `{image}` expanded.
    pub fn branch_name(&self, pattern: &str, image: &ImageEntry, arch: &str) -> String {
        let b = expand(pattern, "arch", arch);
        match self.image_placeholder(image) {
            Some(i) => expand(&b, "image", i),
            None => b,
        }
    }

    /// Checks a commit branch template for this project: without `[[images]]`, `{arch}`
    /// only ([`check_branch_pattern`]); with them `{image}` too; each branch it gives a
    /// valid branch name. Whether every layout then has a directory of its own on its
    /// branch is [`Project::check_outputs`]'s question.
    pub fn check_commit_branch(&self, pattern: &str) -> std::result::Result<(), String> {
        if !self.declares_images() {
            return check_branch_pattern(pattern, &self.architectures);
        }
        check_images_branch_pattern(pattern, self.architectures.len())?;
        for (e, a, _) in self.layouts() {
            let name = self.branch_name(pattern, e, a);
            git::check_branch_name(&name).map_err(|why| {
                format!(
                    "\"{}\" is not a valid branch name: {why}",
                    show::text(&name)
                )
            })?;
        }
        Ok(())
    }

    /// Refuses outputs that cannot all be written: two layouts in one directory (in the
    /// work tree, or on one branch when `pattern` commits them to branches), outputs inside
    /// each other, and outputs holding an input — a build replaces its outputs whole, so it
    /// would delete another output or its own input. Errors name the setting and both
    /// entries.
    pub fn check_outputs(&self, pattern: Option<&str>) -> Result<()> {
        let file = self.dir.join(PROJECT_FILE);
        if let Some(p) = pattern {
            self.check_commit_branch(p)
                .map_err(|why| Error::input(format!("commit branch \"{}\"", show::text(p)), why))?;
        }
        // Every output with where it goes: (branch or the work tree, path, who).
        struct Out<'a> {
            branch: Option<String>,
            rel: String,
            who: String,
            entry: Option<&'a ImageEntry>,
        }
        let several = self.declares_images();
        let mut outs: Vec<Out> = Vec::new();
        // Each (branch, path) once: the index of the first output there. Looked up, never
        // searched, so that 10,000 entries cost no more than their number.
        let mut placed: HashMap<(Option<String>, String), usize> = HashMap::new();
        for (e, a, rel) in self.layouts() {
            let branch = pattern.map(|p| self.branch_name(p, e, a));
            let who = if several {
                format!("{} {a}", e.described())
            } else {
                a.to_string()
            };
            if let Some(&first) = placed.get(&(branch.clone(), rel.clone())) {
                let first = &outs[first];
                let b = e.build().expect("layouts are built");
                let first_entry = first.entry.expect("a layout has its entry");
                let origin = match &b.output_origin {
                    o if o.ends_with("(the default)") && e.line.is_some() => format!(
                        "{}:{}: output (the default \"{DEFAULT_OUTPUT}\")",
                        show::path(&file),
                        e.line.unwrap_or(0)
                    ),
                    o => o.clone(),
                };
                let on = branch
                    .as_ref()
                    .map(|b| format!(" on branch {}", show::text(b)))
                    .unwrap_or_default();
                let hint = if first_entry.name == e.name {
                    "each architecture needs a directory of its own: use {arch}"
                } else {
                    "each image needs a directory of its own: use {image}"
                };
                return Err(Error::input(
                    origin,
                    format!(
                        "\"{}\" gives {}{on} for both {} and {who}: {hint}",
                        show::text(&b.output),
                        show::text(&rel),
                        first.who
                    ),
                ));
            }
            placed.insert((branch.clone(), rel.clone()), outs.len());
            outs.push(Out {
                branch,
                rel,
                who,
                entry: Some(e),
            });
        }
        if let Some(w) = &self.windows {
            for v in &w.variants {
                outs.push(Out {
                    branch: None,
                    rel: expand(&w.output, "variant", &v.name),
                    who: format!("the Windows variant {}", v.name),
                    entry: None,
                });
            }
        }
        let bad = |problem: String| Error::input(crate::show::path(&file), problem);
        // Outputs meet when they are on one branch (or both in the work tree); Windows
        // directories are in the work tree and meet every layout. Two outputs overlap when
        // one's path is the other's or lies inside it, compared component by component
        // (path_key): each output looks up its own path and every directory above it.
        let keys: Vec<String> = outs.iter().map(|o| path_key(Path::new(&o.rel))).collect();
        let mut layouts_on: HashMap<(Option<&str>, &str), usize> = HashMap::new();
        let mut layouts_anywhere: HashMap<&str, usize> = HashMap::new();
        let mut windows_at: HashMap<&str, usize> = HashMap::new();
        for (i, (o, k)) in outs.iter().zip(&keys).enumerate() {
            if o.entry.is_some() {
                layouts_on.entry((o.branch.as_deref(), k)).or_insert(i);
                layouts_anywhere.entry(k).or_insert(i);
            } else {
                windows_at.entry(k).or_insert(i);
            }
        }
        for (i, (o, k)) in outs.iter().zip(&keys).enumerate() {
            let mut other = None;
            for up in key_and_parents(k) {
                let found = if o.entry.is_some() {
                    [
                        layouts_on.get(&(o.branch.as_deref(), up)),
                        windows_at.get(up),
                    ]
                } else {
                    [windows_at.get(up), layouts_anywhere.get(up)]
                };
                // The output itself is found at its own path; another one there is not.
                other = found.into_iter().flatten().copied().find(|&j| j != i);
                if other.is_some() {
                    break;
                }
            }
            if let Some(j) = other {
                let named = |o: &Out| {
                    if several || o.entry.is_none() {
                        format!("{} ({})", o.rel, o.who)
                    } else {
                        o.rel.clone()
                    }
                };
                let (a, b) = (&outs[i.min(j)], &outs[i.max(j)]);
                return Err(bad(format!(
                    "outputs {} and {} overlap",
                    named(a),
                    named(b)
                )));
            }
        }
        let mut inputs: BTreeSet<String> = BTreeSet::new();
        for e in &self.images {
            for a in &e.architectures {
                inputs.extend(self.input_paths(e, a));
            }
        }
        if let Some(t) = self.windows.as_ref().and_then(|w| w.text.as_ref()) {
            inputs.insert(t.clone());
        }
        let mut any_output: HashMap<&str, usize> = HashMap::new();
        for (i, k) in keys.iter().enumerate() {
            any_output.entry(k).or_insert(i);
        }
        for input in &inputs {
            let Some(norm) = lexical_normalize(input) else {
                continue;
            };
            if norm.as_os_str().is_empty() {
                return Err(bad(format!(
                    "input {input} is the project directory, which holds the outputs"
                )));
            }
            let k = path_key(&norm);
            if let Some(o) = key_and_parents(&k)
                .filter_map(|up| any_output.get(up))
                .min()
                .map(|&i| &outs[i])
            {
                return Err(bad(format!(
                    "input {input} is inside the output {}, which a build replaces",
                    o.rel
                )));
            }
        }
        Ok(())
    }
}

/// A relative path's components joined by `/`: the form in which outputs and inputs are
/// compared (`a//b` and `a/./b` are `a/b`, as [`Path::starts_with`] sees them).
fn path_key(p: &Path) -> String {
    p.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// A path key, then each directory above it (`a/b/c`, `a/b`, `a`).
fn key_and_parents(key: &str) -> impl Iterator<Item = &str> {
    std::iter::successors(Some(key), |k| k.rfind('/').map(|i| &k[..i]))
}

/// A layout template with `{image}` and `{arch}` expanded.
pub fn expand_output(template: &str, image: &str, arch: &str) -> String {
    expand(&expand(template, "image", image), "arch", arch)
}

/// A commit branch template of a project with `[[images]]`: `{arch}` and `{image}` only,
/// `{arch}` required with several architectures (each commit holds one architecture's
/// layouts).
fn check_images_branch_pattern(pattern: &str, arches: usize) -> std::result::Result<(), String> {
    check_template(pattern, &["arch", "image"])?;
    must_contain(pattern, "arch", arches).map_err(|_| {
        format!(
            "\"{}\" must contain {{arch}}: each of the {arches} architectures needs its own \
             branch",
            show::text(pattern)
        )
    })
}

fn parse_created(src: &Source, v: &Spanned<toml::Value>) -> Result<CreatedSource> {
    let expected = "expected an RFC 3339 time (2026-01-02T03:04:05Z), \"@EPOCH\", \
                    \"SOURCE_DATE_EPOCH\" or \"git\"";
    let text = match v.get_ref() {
        toml::Value::String(s) => s.clone(),
        toml::Value::Datetime(d) if d.date.is_some() && d.time.is_some() && d.offset.is_some() => {
            d.to_string()
        }
        toml::Value::Datetime(_) => {
            return Err(src.err_at(
                v,
                "created",
                "a date and time with an offset (Z or ±hh:mm) is needed",
            ));
        }
        _ => return Err(src.err_at(v, "created", expected)),
    };
    match text.as_str() {
        "git" => Ok(CreatedSource::Git),
        "SOURCE_DATE_EPOCH" => Ok(CreatedSource::SourceDateEpoch),
        t => t
            .parse::<Timestamp>()
            .map(CreatedSource::Fixed)
            .map_err(|e| src.err_at(v, "created", format!("{e}; {expected}"))),
    }
}

/// The `[image]` table as settings: values as written, each with its line (validated by
/// [`Settings::resolve`], like the command line's). `table` names the table each key was
/// written in (`image`, or `images.image` for an entry's own).
fn parse_image(
    src: &Source,
    raw: RawImage,
    table: &dyn Fn(&str) -> &'static str,
) -> Result<Settings> {
    let at = |span: Range<usize>, key: &str| src.origin(span, &format!("{}.{key}", table(key)));
    fn one<T>(
        v: Option<Spanned<T>>,
        key: &str,
        at: &dyn Fn(Range<usize>, &str) -> Origin,
    ) -> Option<Set<T>> {
        v.map(|v| {
            let o = at(v.span(), key);
            Set::new(v.into_inner(), o)
        })
    }
    fn many<T>(
        v: Option<Vec<Spanned<T>>>,
        key: &str,
        at: &dyn Fn(Range<usize>, &str) -> Origin,
    ) -> Vec<Set<T>> {
        v.unwrap_or_default()
            .into_iter()
            .map(|v| {
                let o = at(v.span(), key);
                Set::new(v.into_inner(), o)
            })
            .collect()
    }
    // A table's entries become the `K=V` settings the command line gives, split again at the
    // first `=`: a key holding one would silently become another key.
    let table = |v: Option<Spanned<BTreeMap<String, String>>>, key: &str| {
        let Some(t) = v else {
            return Ok(Vec::new());
        };
        let o = at(t.span(), key);
        if let Some(k) = t.get_ref().keys().find(|k| k.contains('=')) {
            return Err(src.err_at(
                &t,
                &format!("{}.{key}", table(key)),
                format!(
                    "the key \"{}\" holds '=', which no key may hold",
                    show::text(k)
                ),
            ));
        }
        Ok(t.into_inner()
            .into_iter()
            .map(|(k, v)| Set::new(format!("{k}={v}"), o.clone()))
            .collect())
    };
    Ok(Settings {
        inputs: Vec::new(),
        arch: None,
        platform: None,
        entrypoint: one(raw.entrypoint, "entrypoint", &at),
        cmd: one(raw.cmd, "cmd", &at),
        env: many(raw.env, "env", &at),
        default_env: one(raw.default_env, "default-env", &at),
        workdir: one(raw.workdir, "workdir", &at),
        user: one(raw.user, "user", &at),
        labels: table(raw.labels, "labels")?,
        expose: many(raw.expose, "expose", &at),
        volumes: many(raw.volumes, "volumes", &at),
        stop_signal: one(raw.stop_signal, "stop-signal", &at),
        created_by: one(raw.created_by, "created-by", &at),
        annotations: table(raw.annotations, "annotations")?,
        mtime: one(raw.mtime, "mtime", &at),
        owners: one(raw.owners, "owners", &at),
        preserve_owners: one(raw.preserve_owners, "preserve-owners", &at),
        xattrs: one(raw.xattrs, "xattrs", &at),
        devices: one(raw.devices, "devices", &at),
        compression: one(raw.compression, "compression", &at),
        level: one(raw.level, "level", &at),
        names: one(raw.names, "names", &at),
        ref_name: one(raw.ref_name, "ref-name", &at),
        descriptor_file: one(raw.descriptor_file, "descriptor-file", &at),
    })
}

/// One `[[input]]` as a setting; `table` is where it is written (`input`, or `images.input`
/// for an entry's own).
fn parse_input(src: &Source, i: &Spanned<RawInput>, table: &str) -> Result<Set<InputSetting>> {
    let r = i.get_ref();
    let key = |k: &str| format!("{table}.{k}");
    let given = [r.source.is_some(), r.rootfs.is_some(), r.tar.is_some()];
    if given.iter().filter(|g| **g).count() != 1 {
        return Err(src.err_at(
            i,
            table,
            "give exactly one of source (with dest), rootfs or tar",
        ));
    }
    if let Some(s) = &r.source {
        let dest = r
            .dest
            .as_ref()
            .ok_or_else(|| src.err_at(i, table, "source needs dest (a path in the image)"))?;
        return Ok(Set::new(
            InputSetting::File {
                source: PathBuf::from(s.get_ref()),
                dest: Set::new(
                    dest.get_ref().clone(),
                    src.origin(dest.span(), &key("dest")),
                ),
                mode: r
                    .mode
                    .as_ref()
                    .map(|m| Set::new(m.get_ref().clone(), src.origin(m.span(), &key("mode")))),
            },
            src.origin(s.span(), &key("source")),
        ));
    }
    for (v, k) in [(&r.dest, "dest"), (&r.mode, "mode")] {
        if let Some(v) = v {
            return Err(src.err_at(v, &key(k), "applies to source inputs only"));
        }
    }
    match (&r.rootfs, &r.tar) {
        (Some(d), _) => Ok(Set::new(
            InputSetting::Rootfs(PathBuf::from(d.get_ref())),
            src.origin(d.span(), &key("rootfs")),
        )),
        (_, Some(t)) => Ok(Set::new(
            InputSetting::Tar(PathBuf::from(t.get_ref())),
            src.origin(t.span(), &key("tar")),
        )),
        _ => Err(src.err_at(i, table, "give one of source, rootfs or tar")),
    }
}

fn parse_windows(src: &Source, w: &Spanned<RawWindows>) -> Result<WindowsSettings> {
    let r = w.get_ref();
    let mut variants: Vec<WindowsVariant> = Vec::new();
    for v in r.variants.get_ref() {
        let parsed =
            WindowsVariant::parse(v.get_ref()).map_err(|e| src.err_at(v, "windows.variants", e))?;
        if variants.iter().any(|x| x.name == parsed.name) {
            return Err(src.err_at(v, "windows.variants", "listed twice"));
        }
        variants.push(parsed);
    }
    if variants.is_empty() {
        return Err(src.err_at(&r.variants, "windows.variants", "is empty"));
    }
    if let Some(t) = &r.text {
        check_template(t.get_ref(), &[])
            .and_then(|()| check_relative(t.get_ref(), true))
            .and_then(|()| no_control(t.get_ref()))
            .map_err(|p| src.err_at(t, "windows.text", p))?;
    }
    let output = match &r.output {
        Some(o) => {
            check_output_template(o.get_ref(), &["variant"])
                .and_then(|()| must_contain(o.get_ref(), "variant", variants.len()))
                .map_err(|p| src.err_at(o, "windows.output", p))?;
            o.get_ref().clone()
        }
        None => DEFAULT_WINDOWS_OUTPUT.to_string(),
    };
    Ok(WindowsSettings {
        variants,
        text: r.text.as_ref().map(|t| t.get_ref().clone()),
        output,
        output_line: r.output.as_ref().map(|o| src.line(o.span().start)),
    })
}

/// `[library]`, and the implicit entry's tags (`tags`, `shared-tags`: required without
/// `[[images]]`, an error with them, where each entry has its own).
fn parse_library(
    src: &Source,
    l: &Spanned<RawLibrary>,
    with_images: bool,
    architectures: &[String],
    name: &str,
) -> Result<(LibrarySettings, Option<LibraryTags>, Vec<images::TagUse>)> {
    let r = l.get_ref();
    let single_line = |v: &Spanned<String>, key: &str| -> Result<String> {
        let s = v.get_ref();
        if s.trim().is_empty() || s.contains(char::is_control) || s.trim() != s {
            return Err(src.err_at(
                v,
                key,
                "must be one non-empty line without outer spaces or control characters",
            ));
        }
        Ok(s.clone())
    };
    let maintainers = r
        .maintainers
        .get_ref()
        .iter()
        .map(|m| {
            let s = single_line(m, "library.maintainers")?;
            check_maintainer(&s).map_err(|p| src.err_at(m, "library.maintainers", p))?;
            Ok(s)
        })
        .collect::<Result<Vec<_>>>()?;
    if maintainers.is_empty() {
        return Err(src.err_at(&r.maintainers, "library.maintainers", "is empty"));
    }
    let git_repo = single_line(&r.git_repo, "library.git-repo")?;
    let mut uses = Vec::new();
    let tags = if with_images {
        for (v, key) in [
            (&r.tags, "library.tags"),
            (&r.shared_tags, "library.shared-tags"),
        ] {
            if let Some(v) = v {
                return Err(src.err_at(
                    v,
                    key,
                    "this project has [[images]], and each entry has its own tags and \
                     shared-tags: move these into the [[images]] entries",
                ));
            }
        }
        None
    } else {
        let Some(t) = &r.tags else {
            return Err(src.err(
                l.span(),
                "library",
                "missing key `tags`: the Tags of the image's library entry",
            ));
        };
        let tags = images::tag_list(src, t.get_ref(), "library.tags")?;
        if tags.is_empty() {
            return Err(src.err_at(t, "library.tags", "is empty"));
        }
        let who = format!("image {name}");
        uses.extend(images::TagUse::all(
            src,
            t.get_ref(),
            false,
            &who,
            "library.tags",
        ));
        let shared_tags = match &r.shared_tags {
            Some(s) => {
                uses.extend(images::TagUse::all(
                    src,
                    s.get_ref(),
                    true,
                    &who,
                    "library.shared-tags",
                ));
                images::tag_list(src, s.get_ref(), "library.shared-tags")?
            }
            None => Vec::new(),
        };
        Some(LibraryTags { tags, shared_tags })
    };
    let windows_shared_tags = match &r.windows_shared_tags {
        Some(w) => images::tag_list(src, w, "library.windows-shared-tags")?,
        None => tags
            .as_ref()
            .map(|t| t.shared_tags.clone())
            .unwrap_or_default(),
    };
    let git_fetch = match &r.git_fetch {
        Some(f) => {
            let s = single_line(f, "library.git-fetch")?;
            check_git_fetch(&s).map_err(|p| src.err_at(f, "library.git-fetch", p))?;
            Some(s)
        }
        None => None,
    };
    let commit_branch = match &r.commit_branch {
        Some(b) => {
            // With [[images]], each branch name is checked once the entries are known
            // (Project::check_outputs).
            let checked = if with_images {
                check_images_branch_pattern(b.get_ref(), architectures.len())
            } else {
                check_branch_pattern(b.get_ref(), architectures)
            };
            checked.map_err(|p| src.err_at(b, "library.commit-branch", p))?;
            Some(b.get_ref().clone())
        }
        None => None,
    };
    Ok((
        LibrarySettings {
            maintainers,
            git_repo,
            windows_shared_tags,
            git_fetch,
            commit_branch,
        },
        tags,
        uses,
    ))
}

/// The tags the Windows entries have: each variant's name, and the shared tags
/// (`windows-shared-tags`, else `shared-tags`), for [`images::check_tags`].
fn windows_tag_uses(
    src: &Source,
    w: &Spanned<RawWindows>,
    l: &Spanned<RawLibrary>,
) -> Vec<images::TagUse> {
    let l = l.get_ref();
    let shared: &[Spanned<String>] = match (&l.windows_shared_tags, &l.shared_tags) {
        (Some(w), _) => w,
        (None, Some(s)) => s.get_ref(),
        (None, None) => &[],
    };
    let mut uses = Vec::new();
    for v in w.get_ref().variants.get_ref() {
        let who = format!("the Windows variant {}", show::text(v.get_ref()));
        uses.extend(images::TagUse::all(
            src,
            std::slice::from_ref(v),
            false,
            &who,
            "windows.variants",
        ));
        uses.extend(images::TagUse::all(
            src,
            shared,
            true,
            &who,
            "library.windows-shared-tags",
        ));
    }
    uses
}

/// bashbrew's rule for one maintainer (manifest/rfc2822.go): `Full Name <contact> (@handle)`
/// or `Full Name (@handle)` — a name not starting with a space, none of `<>()` in any
/// part, no space in the contact or the handle — and, since bashbrew splits the
/// `Maintainers:` line at every comma before it checks each part, no comma: `"Doe, John
/// (@jd)"` would be read as two maintainers, `Doe` and `John (@jd)`, and the file refused.
fn check_maintainer(m: &str) -> std::result::Result<(), String> {
    let part = |s: &str| {
        !s.is_empty() && !s.contains(|c: char| c.is_ascii_whitespace() || "<>()".contains(c))
    };
    let valid = (|| {
        if m.contains(',') {
            return None;
        }
        let rest = m.strip_suffix(')')?;
        let (head, handle) = rest.rsplit_once('(')?;
        if !part(handle.strip_prefix('@')?) {
            return None;
        }
        let head = head.strip_suffix(|c: char| c.is_ascii_whitespace())?;
        let name = match head.trim_end().strip_suffix('>') {
            Some(h) => {
                let (name, contact) = h.rsplit_once('<')?;
                if !part(contact) {
                    return None;
                }
                name.strip_suffix(|c: char| c.is_ascii_whitespace())?
            }
            None => head,
        };
        let first = name.chars().next()?;
        (!first.is_ascii_whitespace() && !name.contains(['<', '>', '(', ')'])).then_some(())
    })();
    valid.ok_or_else(|| {
        format!(
            "\"{}\" is not a maintainer as bashbrew reads one: \"Full Name <contact-email-or-url> \
             (@github-handle)\" or \"Full Name (@github-handle)\", without a comma (bashbrew \
             splits the Maintainers: line at commas) and without <, >, ( or ) in the name",
            show::text(m)
        )
    })
}

/// An image name as the Official Images and registries spell one: lowercase letters and
/// digits in groups joined by one `.`, `_` or `-` (it becomes the library file's first line
/// and the image's name, so nothing else is accepted).
fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    let alnum = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    !b.is_empty()
        && b.len() <= 128
        && alnum(&b[0])
        && alnum(&b[b.len() - 1])
        && b.iter()
            .all(|c| alnum(c) || matches!(c, b'.' | b'_' | b'-'))
        && !b.windows(2).any(|w| !alnum(&w[0]) && !alnum(&w[1]))
}

/// Paths that end up in generated files (a Dockerfile comment, the library file) hold no
/// control characters.
fn no_control(s: &str) -> std::result::Result<(), String> {
    if s.contains(char::is_control) {
        return Err(format!("\"{}\" holds a control character", show::text(s)));
    }
    Ok(())
}

/// Replaces every `{name}` in `template` with `value`.
pub fn expand(template: &str, name: &str, value: &str) -> String {
    template.replace(&format!("{{{name}}}"), value)
}

/// An output template: placeholders from `allowed` only, inside the project directory,
/// never the directory itself, written as the path it is — every `/`-separated part a
/// name, no `.` or empty part, no space at either end. The path is printed as it is in the
/// library file's `Directory:` (which bashbrew trims), compared with other outputs as
/// text, and split into a dist commit's trees (where git refuses an entry named `.`).
fn check_output_template(t: &str, allowed: &[&str]) -> std::result::Result<(), String> {
    no_control(t)?;
    check_template(t, allowed)?;
    check_relative(t, false)?;
    // Path::components() skips a `.` or empty part in the middle: each part is looked at.
    let strict = t.split('/').all(|c| !c.is_empty() && c != "." && c != "..")
        && Path::new(t)
            .components()
            .all(|c| matches!(c, Component::Normal(_)));
    if t.trim() != t {
        return Err(format!(
            "\"{}\" starts or ends with a space, which the library file's Directory: line \
             would lose",
            show::text(t)
        ));
    }
    if !strict {
        return Err(format!(
            "\"{}\" must name a directory below the project directory, without '.' or empty \
             parts (a/./b, a//b, a/)",
            show::text(t)
        ));
    }
    Ok(())
}

/// A template used for `count` outputs (or branches) must contain `{name}`, so that each
/// gets its own.
fn must_contain(t: &str, name: &str, count: usize) -> std::result::Result<(), String> {
    if count > 1 && !t.contains(&format!("{{{name}}}")) {
        return Err(format!(
            "\"{}\" must contain {{{name}}}: each of the {count} outputs needs its own directory",
            show::text(t)
        ));
    }
    Ok(())
}

/// `a/./b/../c` → `a/c`; `None` if it climbs above its start.
fn lexical_normalize(p: &str) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in Path::new(p).components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            _ => return None,
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "hello-world"
created = 2026-11-26T18:58:18Z
architectures = ["amd64", "arm64v8"]

[image]
cmd = ["/hello"]
ref-name = "latest"

[[input]]
source = "{arch}/hello"
dest = "/hello"
mode = "0755"

[windows]
variants = ["nanoserver-ltsc2025", "nanoserver-ltsc2022"]
text = "greeting.txt"

[library]
maintainers = ["A <a@example.org> (@a)"]
git-repo = "https://example.org/x.git"
tags = ["linux"]
shared-tags = ["latest"]
"#;

    fn parse(text: &str) -> Result<Project> {
        Project::parse(text, Path::new("p/ocipack.toml"), Path::new("p"))
    }

    fn err(text: &str) -> String {
        let e = parse(text).unwrap_err();
        assert_eq!(e.exit_code(), 2, "{e}");
        e.to_string()
    }

    #[test]
    fn parses_the_good_file() {
        let p = parse(GOOD).unwrap();
        assert_eq!(p.name, "hello-world");
        assert_eq!(
            p.created,
            CreatedSource::Fixed("2026-11-26T18:58:18Z".parse().unwrap())
        );
        assert_eq!(p.architectures, ["amd64", "arm64v8"]);
        let e = &p.images[0];
        assert!(e.is_implicit() && !p.declares_images());
        assert_eq!(
            (e.name.as_str(), &e.tags[..]),
            ("hello-world", &["linux".to_string()][..])
        );
        assert_eq!(e.shared_tags, ["latest"]);
        assert_eq!(e.architectures, p.architectures);
        assert_eq!(
            p.output_dir(e, "arm64v8").unwrap(),
            Path::new("p/arm64v8/oci")
        );
        assert_eq!(p.input_paths(e, "amd64"), ["amd64/hello"]);
        assert_eq!(p.image.mtime, None);
        assert_eq!(p.image.compression, None);
        let w = p.windows.as_ref().unwrap();
        assert_eq!(
            w.variants[1].from,
            "mcr.microsoft.com/windows/nanoserver:ltsc2022"
        );
        assert_eq!(
            p.windows_output_rel("nanoserver-ltsc2025").unwrap(),
            "amd64/nanoserver-ltsc2025"
        );
        let lib = p.library.as_ref().unwrap();
        assert_eq!(lib.windows_shared_tags, ["latest"]);

        let spec = p
            .image_spec(e, "arm64v8", Timestamp::from_unix(5).unwrap(), 1)
            .unwrap();
        assert_eq!(spec.platform.to_string(), "linux/arm64/v8");
        assert_eq!(spec.tree.mtime, MtimeMode::Fixed);
        assert_eq!(spec.encode.compression, crate::media::Compression::Gzip);
        assert_eq!(
            spec.config.env.as_deref(),
            Some(&[crate::image::build::DEFAULT_LINUX_PATH.to_string()][..])
        );
        assert_eq!(
            spec.inputs[0].source,
            crate::image::build::InputSource::File {
                src: PathBuf::from("p/arm64v8/hello"),
                dest: "/hello".into(),
                mode: Some(0o755)
            }
        );
        assert_eq!(
            spec.inputs[0].origin,
            "p/ocipack.toml:11: input.source \"arm64v8/hello\""
        );
        assert_eq!(spec.ref_name.as_deref(), Some("latest"));
    }

    #[test]
    fn unknown_keys_name_the_key_and_line() {
        let text = GOOD.replace(
            "ref-name = \"latest\"",
            "ref-name = \"latest\"\nrefname = 1",
        );
        let e = err(&text);
        assert!(e.starts_with("p/ocipack.toml:9:"), "{e}");
        assert!(e.contains("unknown key `refname`"), "{e}");

        let text = GOOD.replace("[library]", "[library]\ncolour = \"blue\"");
        let e = err(&text);
        assert!(
            e.starts_with("p/ocipack.toml:20:") && e.contains("`colour`"),
            "{e}"
        );

        let e = err(
            "name = \"x\"\ncreated = \"@0\"\narchitectures = [\"amd64\"]\n[[images]]\ntags = [\"a\"]\n",
        );
        assert!(e.contains("missing key `name`"), "{e}");

        let e = err(&format!("{GOOD}\n[extra]\nx = 1\n"));
        assert!(
            e.contains("`extra`") && e.starts_with("p/ocipack.toml:25:"),
            "{e}"
        );
    }

    #[test]
    fn bad_values_name_key_and_line() {
        let cases = [
            (
                "created = 2026-11-26T18:58:18Z",
                "created = \"yesterday\"",
                3,
                "created",
            ),
            (
                "created = 2026-11-26T18:58:18Z",
                "created = 2026-11-26",
                3,
                "created",
            ),
            ("\"arm64v8\"]", "\"arm64\"]", 4, "architectures"),
            ("\"arm64v8\"]", "\"amd64\"]", 4, "listed twice"),
            ("\"arm64v8\"]", "\"windows-amd64\"]", 4, "[windows]"),
            ("mode = \"0755\"", "mode = \"rwx\"", 13, "input.mode"),
            ("mode = \"0755\"", "mode = \"17777\"", 13, "input.mode"),
            ("dest = \"/hello\"", "dest = \"hello\"", 12, "input.dest"),
            (
                "source = \"{arch}/hello\"",
                "source = \"{os}/hello\"",
                11,
                "{os}",
            ),
            (
                "cmd = [\"/hello\"]",
                "compression = \"lz4\"",
                7,
                "image.compression",
            ),
            (
                "cmd = [\"/hello\"]",
                "level = 13",
                7,
                "gzip levels are 1 to 12",
            ),
            ("cmd = [\"/hello\"]", "mtime = \"now\"", 7, "image.mtime"),
            (
                "cmd = [\"/hello\"]",
                "labels = { \"a=b\" = \"c\" }",
                7,
                "image.labels: the key \"a=b\" holds '='",
            ),
            (
                "cmd = [\"/hello\"]",
                "annotations = { \"org.example/x=y\" = \"z\" }",
                7,
                "image.annotations",
            ),
            ("cmd = [\"/hello\"]", "env = [\"NOEQUALS\"]", 7, "image.env"),
            (
                "\"nanoserver-ltsc2022\"",
                "\"nanoserver\"",
                16,
                "windows.variants",
            ),
            (
                "\"nanoserver-ltsc2022\"",
                "\"desktop-ltsc2022\"",
                16,
                "windows.variants",
            ),
            (
                "tags = [\"linux\"]",
                "tags = [\"li nux\"]",
                22,
                "library.tags",
            ),
        ];
        for (from, to, line, needle) in cases {
            assert!(GOOD.contains(from), "{from}");
            let e = err(&GOOD.replacen(from, to, 1));
            assert!(
                e.starts_with(&format!("p/ocipack.toml:{line}:")) && e.contains(needle),
                "{to}: {e}"
            );
        }
    }

    #[test]
    fn names_are_image_names() {
        for good in ["hello-world", "a", "busybox", "a.b_c-d", "x9"] {
            assert!(valid_name(good), "{good}");
        }
        for bad in [
            "",
            "Hello",
            "a--b",
            "-a",
            "a.",
            "hello\u{1b}[2Jworld",
            "a b",
            "a/b",
        ] {
            assert!(!valid_name(bad), "{bad:?}");
        }
    }

    /// A maintainer bashbrew would split or refuse is refused here, naming the key: the
    /// library file ocipack prints must parse (a comma made two maintainers of one).
    #[test]
    fn maintainers_are_what_bashbrew_reads() {
        for good in [
            "Tianon Gravi <admwiggin@gmail.com> (@tianon)",
            "Tomáš Virtus <tomas.virtus@canonical.com> (@woky)",
            "Name Only (@handle)",
            "Two  Spaces <https://example.invalid/x>  (@h)",
        ] {
            assert_eq!(check_maintainer(good), Ok(()), "{good}");
        }
        for bad in [
            "Doe, John <j@example.invalid> (@jd)",
            "A <a@b.invalid> (@a), B <b@b.invalid> (@b)",
            "A <a@b.invalid>",
            "A <a b@c> (@a)",
            "A <> (@a)",
            "A (@)",
            "A (@a b)",
            "A(@a)",
            "A <a@b>(@a)",
            "(@a)",
            "A (B) (@a)",
            "A <a@b> (a)",
        ] {
            assert!(check_maintainer(bad).is_err(), "{bad}");
        }
        let e = err(&GOOD.replace(
            "maintainers = [\"A <a@example.org> (@a)\"]",
            "maintainers = [\"Doe, John (@jd)\"]",
        ));
        assert!(
            e.contains(
                "library.maintainers: \"Doe, John (@jd)\" is not a maintainer as bashbrew reads one"
            ),
            "{e}"
        );
    }

    #[test]
    fn created_sources() {
        for (v, want) in [
            ("\"git\"", CreatedSource::Git),
            ("\"SOURCE_DATE_EPOCH\"", CreatedSource::SourceDateEpoch),
            (
                "\"@86400\"",
                CreatedSource::Fixed(Timestamp::from_unix(86400).unwrap()),
            ),
            (
                "\"1970-01-02T01:00:00+01:00\"",
                CreatedSource::Fixed(Timestamp::from_unix(86400).unwrap()),
            ),
        ] {
            let text = GOOD.replace("2026-11-26T18:58:18Z", v);
            assert_eq!(parse(&text).unwrap().created, want, "{v}");
        }
    }

    #[test]
    fn outputs_must_be_distinct_and_not_hold_inputs() {
        let e = err(&GOOD.replace("architectures", "output = \"oci\"\narchitectures"));
        assert!(e.contains("must contain {arch}"), "{e}");
        let e = err(&GOOD.replace("architectures", "output = \"../{arch}\"\narchitectures"));
        assert!(e.contains("output"), "{e}");
        let e = err(&GOOD.replace("architectures", "output = \"{arch}\"\narchitectures"));
        assert!(
            e.contains("overlap") || e.contains("inside the output"),
            "{e}"
        );
        let e = err(&GOOD.replace(
            "text = \"greeting.txt\"",
            "text = \"greeting.txt\"\noutput = \"{variant}/../x\"",
        ));
        assert!(e.contains("windows.output"), "{e}");
        let e = err(&GOOD.replace(
            "text = \"greeting.txt\"",
            "text = \"amd64/oci/greeting.txt\"",
        ));
        assert!(e.contains("inside the output amd64/oci"), "{e}");
        // Every part a name: `.` and empty parts in the middle, which Path::components()
        // skips, would reach the library file's Directory: as written and a dist commit's
        // trees as an entry git refuses ("hasDot"); a space at an end, bashbrew trims.
        for bad in [
            "x/./{arch}",
            "x//{arch}",
            "{arch}/oci/",
            "x/{arch}/.",
            "./{arch}",
        ] {
            let e = err(&GOOD.replace(
                "architectures",
                &format!("output = \"{bad}\"\narchitectures"),
            ));
            assert!(e.contains("without '.' or empty parts"), "{bad}: {e}");
            let e = err(&GOOD.replace(
                "text = \"greeting.txt\"",
                &format!(
                    "text = \"greeting.txt\"\noutput = \"{}\"",
                    bad.replace("arch", "variant")
                ),
            ));
            assert!(
                e.contains("windows.output") && e.contains("without '.' or empty parts"),
                "{bad}: {e}"
            );
        }
        for bad in [" {arch}/oci", "{arch}/oci "] {
            let e = err(&GOOD.replace(
                "architectures",
                &format!("output = \"{bad}\"\narchitectures"),
            ));
            assert!(e.contains("starts or ends with a space"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn input_kinds() {
        let text = GOOD.replace(
            "source = \"{arch}/hello\"\ndest = \"/hello\"\nmode = \"0755\"",
            "rootfs = \"{arch}/rootfs\"\n[[input]]\ntar = \"extra.tar\"",
        );
        let p = parse(&text).unwrap();
        let inputs: Vec<&InputSetting> = p.image.inputs.iter().map(|i| &i.value).collect();
        assert_eq!(
            inputs,
            [
                &InputSetting::Rootfs("{arch}/rootfs".into()),
                &InputSetting::Tar("extra.tar".into())
            ]
        );
        let e = err(&GOOD.replace("mode = \"0755\"", "mode = \"0755\"\ntar = \"x.tar\""));
        assert!(e.contains("exactly one"), "{e}");
        let e = err(&GOOD.replace(
            "[[input]]\nsource = \"{arch}/hello\"\ndest = \"/hello\"\nmode = \"0755\"\n",
            "",
        ));
        assert!(e.contains("no [[input]]"), "{e}");
    }
}
