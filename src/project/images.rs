//! The library entries of a project: each `[[images]]` table, or — when the file has none —
//! one implicit entry made of the top-level settings, so that every command iterates over
//! entries and a project without `[[images]]` builds exactly what it built before.
//!
//! An entry either builds (its own `[images.image]` merged key by key over `[image]`, its
//! own `[[images.input]]` or the top-level inputs, its own `output` or the top-level one) or
//! takes its layouts `from` other entries: per architecture, the first listed entry that has
//! it, followed recursively. Everything is checked when the file is loaded, each error
//! naming `ocipack.toml:LINE` and the key, and both entries where two are involved: names,
//! architecture subsets, `from` (unknown, itself, cycles, uncovered architectures, keys a
//! `from` entry cannot have), tags (a tag belongs to one entry and is never also a shared
//! tag: bashbrew refuses a duplicate tag) and outputs (one directory per image and
//! architecture, in the work tree and on each dist branch; none inside another or holding
//! an input).

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use toml::Spanned;

use crate::error::{Error, Result};
use crate::settings::Settings;
use crate::show;

use super::{RawImage, RawInput, Source, parse_image, parse_input};

/// One `[[images]]` table as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawEntry {
    name: Spanned<String>,
    tags: Option<Spanned<Vec<Spanned<String>>>>,
    shared_tags: Option<Spanned<Vec<Spanned<String>>>>,
    architectures: Option<Spanned<Vec<Spanned<String>>>>,
    output: Option<Spanned<String>>,
    from: Option<Spanned<Vec<Spanned<String>>>>,
    image: Option<Spanned<RawImage>>,
    input: Option<Spanned<Vec<Spanned<RawInput>>>>,
}

/// One library entry: what it is called and tagged, its architectures, and where its
/// layouts come from.
#[derive(Debug, Clone)]
pub struct ImageEntry {
    /// `name` (the project's `name` for the implicit entry); `{image}` in templates.
    pub name: String,
    /// `tags` (`[library] tags` for the implicit entry).
    pub tags: Vec<String>,
    /// `shared-tags` (`[library] shared-tags` for the implicit entry).
    pub shared_tags: Vec<String>,
    /// Its architectures, in the order of the top-level `architectures`: its own
    /// `architectures` if written, else every top-level one (a build entry) or the union of
    /// the entries it takes its layouts from (a `from` entry).
    pub architectures: Vec<String>,
    /// Whether it builds or takes its layouts from other entries.
    pub kind: EntryKind,
    /// The line of its `[[images]]` table; `None` for the implicit entry.
    pub line: Option<usize>,
}

/// How an entry gets its layouts.
#[derive(Debug, Clone)]
pub enum EntryKind {
    /// It builds one layout per architecture.
    Build(Box<BuildEntry>),
    /// It builds nothing: each architecture uses another entry's layout.
    From(FromEntry),
}

/// The settings of an entry that builds.
#[derive(Debug, Clone)]
pub struct BuildEntry {
    /// `[image]` with `[images.image]` merged over it key by key (a key the entry writes
    /// replaces the top-level one whole), and its inputs: `[[images.input]]` if written,
    /// else the top-level `[[input]]`. Resolved per architecture by
    /// [`super::Project::image_spec`].
    pub settings: Settings,
    /// The output template: its own `output`, else the top-level one (or its default).
    pub output: String,
    /// Where the output template is set, for messages: `p/ocipack.toml:12: images.output`,
    /// `p/ocipack.toml:4: output` or `p/ocipack.toml: output (the default)`.
    pub output_origin: String,
}

/// An entry that builds nothing.
#[derive(Debug, Clone)]
pub struct FromEntry {
    /// `from`: the entries it takes its layouts from, in the order written.
    pub from: Vec<String>,
    /// Per architecture (in [`ImageEntry::architectures`] order), the entry that builds the
    /// layout it uses: the first entry of `from` that has the architecture, followed
    /// through `from` entries until one that builds.
    pub sources: Vec<(String, String)>,
}

impl ImageEntry {
    /// True for the entry a project without `[[images]]` has.
    pub fn is_implicit(&self) -> bool {
        self.line.is_none()
    }

    /// The building entry whose layout this entry uses for `arch` (its own name when it
    /// builds); `None` if it does not have `arch`.
    pub fn source(&self, arch: &str) -> Option<&str> {
        match &self.kind {
            EntryKind::Build(_) => self
                .architectures
                .iter()
                .any(|a| a == arch)
                .then_some(self.name.as_str()),
            EntryKind::From(f) => f
                .sources
                .iter()
                .find(|(a, _)| a == arch)
                .map(|(_, s)| s.as_str()),
        }
    }

    /// Its build settings, if it builds.
    pub fn build(&self) -> Option<&BuildEntry> {
        match &self.kind {
            EntryKind::Build(b) => Some(b),
            EntryKind::From(_) => None,
        }
    }

    /// How messages name it: `image glibc (ocipack.toml:12)`, or the project's name.
    pub fn described(&self) -> String {
        match self.line {
            Some(l) => format!("image {} (line {l})", self.name),
            None => format!("image {}", self.name),
        }
    }
}

/// The top-level values the entries inherit.
pub(super) struct Inherited<'a> {
    pub architectures: &'a [String],
    pub architectures_line: usize,
    pub image: &'a RawImage,
    pub inputs: &'a [Spanned<RawInput>],
    pub output: &'a str,
    pub output_origin: String,
}

/// An image name: `{image}` expands to it in paths and branch names, so it is one path
/// component and one branch name component; the characters of a tag.
fn valid_image_name(name: &str) -> bool {
    crate::registry::reference::valid_tag(name)
}

/// A tag list: each valid, none twice.
pub(super) fn tag_list(src: &Source, list: &[Spanned<String>], key: &str) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for t in list {
        let s = t.get_ref();
        if !crate::registry::reference::valid_tag(s) {
            return Err(src.err_at(t, key, format!("\"{}\" is not a valid tag", show::text(s))));
        }
        if out.contains(s) {
            return Err(src.err_at(t, key, format!("{s} is listed twice")));
        }
        out.push(s.clone());
    }
    Ok(out)
}

/// Parses every `[[images]]` table, in file order, and resolves `from`.
pub(super) fn parse_entries(
    src: &Source,
    raw: Vec<Spanned<RawEntry>>,
    top: &Inherited,
) -> Result<(Vec<ImageEntry>, Vec<TagUse>)> {
    let mut entries: Vec<ImageEntry> = Vec::new();
    let mut uses: Vec<TagUse> = Vec::new();
    // Per entry, the `from` list as written (with spans), resolved once all are known.
    let mut froms: Vec<Option<Spanned<Vec<Spanned<String>>>>> = Vec::new();
    let mut own_arches: Vec<Option<Spanned<Vec<Spanned<String>>>>> = Vec::new();
    for e in raw {
        let line = src.line(e.span().start);
        let r = e.into_inner();
        let name = r.name.get_ref().clone();
        if !valid_image_name(&name) {
            return Err(src.err_at(
                &r.name,
                "images.name",
                format!(
                    "\"{}\" is not an image name here: letters, digits, '_', '.' and '-', \
                     starting with a letter, digit or '_' (it names a directory and a branch)",
                    show::text(&name)
                ),
            ));
        }
        if let Some(first) = entries.iter().find(|x| x.name == name) {
            return Err(src.err_at(
                &r.name,
                "images.name",
                format!(
                    "{name} is already the name of the [[images]] entry on line {}",
                    first.line.unwrap_or(0)
                ),
            ));
        }
        let tags = match &r.tags {
            Some(t) => {
                let list = tag_list(src, t.get_ref(), "images.tags")?;
                if list.is_empty() {
                    return Err(src.err_at(t, "images.tags", "is empty"));
                }
                list
            }
            None => {
                return Err(src.err(
                    line_span(src, line),
                    "images",
                    format!("image {name} has no tags: every library entry needs its Tags"),
                ));
            }
        };
        let shared_tags = match &r.shared_tags {
            Some(t) => tag_list(src, t.get_ref(), "images.shared-tags")?,
            None => Vec::new(),
        };
        let who = format!("image {name}");
        if let Some(t) = &r.tags {
            uses.extend(TagUse::all(src, t.get_ref(), false, &who, "images.tags"));
        }
        if let Some(t) = &r.shared_tags {
            uses.extend(TagUse::all(
                src,
                t.get_ref(),
                true,
                &who,
                "images.shared-tags",
            ));
        }
        if let Some(a) = &r.architectures {
            let mut seen: Vec<&String> = Vec::new();
            for x in a.get_ref() {
                if !top.architectures.contains(x.get_ref()) {
                    return Err(src.err_at(
                        x,
                        "images.architectures",
                        format!(
                            "\"{}\" is not one of the project's architectures ({}, line {})",
                            show::text(x.get_ref()),
                            top.architectures.join(", "),
                            top.architectures_line
                        ),
                    ));
                }
                if seen.contains(&x.get_ref()) {
                    return Err(src.err_at(
                        x,
                        "images.architectures",
                        format!("{} is listed twice", x.get_ref()),
                    ));
                }
                seen.push(x.get_ref());
            }
            if seen.is_empty() {
                return Err(src.err_at(a, "images.architectures", "is empty"));
            }
        }
        let written: Vec<String> = r
            .architectures
            .as_ref()
            .map(|a| a.get_ref().iter().map(|x| x.get_ref().clone()).collect())
            .unwrap_or_default();
        let in_order = |list: &[String]| -> Vec<String> {
            top.architectures
                .iter()
                .filter(|a| list.contains(a))
                .cloned()
                .collect()
        };

        let kind = if let Some(f) = &r.from {
            // A `from` entry builds nothing: a key about building is a mistake.
            let not_with_from = |key: &str, span: std::ops::Range<usize>| {
                src.err(
                    span,
                    key,
                    format!(
                        "image {name} takes its layouts from {} (line {}) and builds \
                         nothing, so it cannot have {key}",
                        f.get_ref()
                            .iter()
                            .map(|x| x.get_ref().as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                        src.line(f.span().start)
                    ),
                )
            };
            if let Some(i) = &r.image {
                return Err(not_with_from("images.image", i.span()));
            }
            if let Some(i) = &r.input {
                return Err(not_with_from("images.input", i.span()));
            }
            if let Some(o) = &r.output {
                return Err(not_with_from("images.output", o.span()));
            }
            if f.get_ref().is_empty() {
                return Err(src.err_at(f, "images.from", "is empty"));
            }
            EntryKind::From(FromEntry {
                from: Vec::new(),
                sources: Vec::new(),
            })
        } else {
            let inputs: &[Spanned<RawInput>] = match &r.input {
                Some(i) => i.get_ref(),
                None => top.inputs,
            };
            let mut settings = merge_image(src, top, r.image.as_ref())?;
            let prefix = if r.input.is_some() {
                "images.input"
            } else {
                "input"
            };
            for i in inputs {
                settings.inputs.push(parse_input(src, i, prefix)?);
            }
            if settings.inputs.is_empty() {
                return Err(src.err(
                    line_span(src, line),
                    "images",
                    format!(
                        "image {name} has no input: give it [[images.input]], a top-level \
                         [[input]], or from = [...] to use other images' layouts"
                    ),
                ));
            }
            let (output, output_origin) = match &r.output {
                Some(o) => {
                    super::check_output_template(o.get_ref(), &["arch", "image"])
                        .map_err(|p| src.err_at(o, "images.output", p))?;
                    (
                        o.get_ref().clone(),
                        format!(
                            "{}:{}: images.output",
                            show::path(src.path),
                            src.line(o.span().start)
                        ),
                    )
                }
                None => (top.output.to_string(), top.output_origin.clone()),
            };
            EntryKind::Build(Box::new(BuildEntry {
                settings,
                output,
                output_origin,
            }))
        };
        let architectures = match (&kind, written.is_empty()) {
            (_, false) => in_order(&written),
            (EntryKind::Build(_), true) => top.architectures.to_vec(),
            // Filled in when `from` is resolved.
            (EntryKind::From(_), true) => Vec::new(),
        };
        entries.push(ImageEntry {
            name,
            tags,
            shared_tags,
            architectures,
            kind,
            line: Some(line),
        });
        froms.push(r.from);
        own_arches.push(r.architectures);
    }
    resolve_from(src, &mut entries, &froms, &own_arches, top.architectures)?;
    Ok((entries, uses))
}

/// A span starting at the beginning of `line` (1-based), for errors about a whole table.
fn line_span(src: &Source, line: usize) -> std::ops::Range<usize> {
    let start = src
        .text
        .split_inclusive('\n')
        .take(line.saturating_sub(1))
        .map(str::len)
        .sum();
    start..start
}

/// `[image]` with the entry's `[images.image]` over it, key by key; each value's origin
/// names the key that set it (`image.cmd` or `images.image.cmd`).
fn merge_image(src: &Source, top: &Inherited, own: Option<&Spanned<RawImage>>) -> Result<Settings> {
    let Some(own) = own else {
        return parse_image(src, top.image.clone(), &|_| "image");
    };
    let base = top.image;
    let own = own.get_ref().clone();
    let mut from_entry: BTreeSet<&'static str> = BTreeSet::new();
    macro_rules! merged {
        ($($field:ident),* $(,)?) => {
            RawImage {
                $($field: match own.$field {
                    Some(v) => {
                        from_entry.insert(stringify!($field));
                        Some(v)
                    }
                    None => base.$field.clone(),
                },)*
            }
        };
    }
    let raw = merged!(
        cmd,
        entrypoint,
        env,
        default_env,
        workdir,
        user,
        labels,
        expose,
        volumes,
        stop_signal,
        created_by,
        annotations,
        compression,
        level,
        names,
        ref_name,
        descriptor_file,
        mtime,
        owners,
        preserve_owners,
        xattrs,
        devices,
    );
    let table = |key: &str| -> &'static str {
        if from_entry.contains(key.replace('-', "_").as_str()) {
            "images.image"
        } else {
            "image"
        }
    };
    parse_image(src, raw, &table)
}

/// Resolves every `from` entry: the names exist, are not the entry itself, form no cycle;
/// per architecture the first listed entry that has it (recursively); its architectures are
/// the union, or its own list, which must be covered.
fn resolve_from(
    src: &Source,
    entries: &mut [ImageEntry],
    froms: &[Option<Spanned<Vec<Spanned<String>>>>],
    own_arches: &[Option<Spanned<Vec<Spanned<String>>>>],
    top_arches: &[String],
) -> Result<()> {
    let index: BTreeMap<&str, usize> = entries
        .iter()
        .enumerate()
        .map(|(i, e)| (e.name.as_str(), i))
        .collect();
    // Check every name first, so that an unknown name is reported as such, not as a cycle.
    let mut edges: Vec<Vec<usize>> = vec![Vec::new(); entries.len()];
    for (i, f) in froms.iter().enumerate() {
        let Some(f) = f else { continue };
        for n in f.get_ref() {
            let name = n.get_ref();
            let Some(&j) = index.get(name.as_str()) else {
                let known: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
                return Err(src.err_at(
                    n,
                    "images.from",
                    format!(
                        "image {} takes its layouts from \"{}\", which no [[images]] entry \
                         is named (the entries: {})",
                        entries[i].name,
                        show::text(name),
                        known.join(", ")
                    ),
                ));
            };
            if j == i {
                return Err(src.err_at(
                    n,
                    "images.from",
                    format!("image {name} cannot take its layouts from itself"),
                ));
            }
            if edges[i].contains(&j) {
                return Err(src.err_at(n, "images.from", format!("{name} is listed twice")));
            }
            edges[i].push(j);
        }
    }
    // Resolve in dependency order; a cycle is found on the way.
    let mut state = vec![0u8; entries.len()]; // 0 new, 1 on the path, 2 done
    let mut order = Vec::new();
    fn visit(
        i: usize,
        edges: &[Vec<usize>],
        state: &mut [u8],
        path: &mut Vec<usize>,
        order: &mut Vec<usize>,
    ) -> std::result::Result<(), Vec<usize>> {
        match state[i] {
            2 => return Ok(()),
            1 => {
                let start = path.iter().position(|&p| p == i).unwrap_or(0);
                let mut cycle = path[start..].to_vec();
                cycle.push(i);
                return Err(cycle);
            }
            _ => {}
        }
        state[i] = 1;
        path.push(i);
        for &j in &edges[i] {
            visit(j, edges, state, path, order)?;
        }
        path.pop();
        state[i] = 2;
        order.push(i);
        Ok(())
    }
    for i in 0..entries.len() {
        visit(i, &edges, &mut state, &mut Vec::new(), &mut order).map_err(|cycle| {
            let first = cycle[0];
            let names: Vec<&str> = cycle.iter().map(|&k| entries[k].name.as_str()).collect();
            let f = froms[first]
                .as_ref()
                .expect("a cycle goes through from entries");
            src.err_at(
                f,
                "images.from",
                format!(
                    "the images take their layouts from each other in a cycle: {} (each \
                     layout must come from an image that builds it)",
                    names.join(" → ")
                ),
            )
        })?;
    }
    for i in order {
        let Some(f) = &froms[i] else { continue };
        // Per architecture, the first listed entry that has it (already resolved).
        let mut found: BTreeMap<String, String> = BTreeMap::new();
        for &j in &edges[i] {
            for a in &entries[j].architectures {
                if !found.contains_key(a) {
                    let s = entries[j]
                        .source(a)
                        .expect("an entry has a source for each of its architectures");
                    found.insert(a.clone(), s.to_string());
                }
            }
        }
        let names: Vec<String> = f.get_ref().iter().map(|n| n.get_ref().clone()).collect();
        if let Some(own) = &own_arches[i] {
            for a in own.get_ref() {
                if !found.contains_key(a.get_ref()) {
                    return Err(src.err_at(
                        a,
                        "images.architectures",
                        format!(
                            "image {} lists {}, but none of the images it takes its layouts \
                             from ({}) has it",
                            entries[i].name,
                            a.get_ref(),
                            names.join(", ")
                        ),
                    ));
                }
            }
        } else {
            entries[i].architectures = top_arches
                .iter()
                .filter(|a| found.contains_key(*a))
                .cloned()
                .collect();
        }
        let sources = entries[i]
            .architectures
            .iter()
            .map(|a| (a.clone(), found[a].clone()))
            .collect();
        entries[i].kind = EntryKind::From(FromEntry {
            from: names,
            sources,
        });
    }
    Ok(())
}

/// One tag as written: which entry lists it, where, under which key.
pub(super) struct TagUse {
    /// The tag.
    pub tag: String,
    /// Listed as a shared tag.
    pub shared: bool,
    /// The entry, as messages name it.
    pub who: String,
    /// Its line.
    pub line: usize,
    /// The key it is listed under.
    pub key: &'static str,
}

impl TagUse {
    /// Every tag of `list` (as written), listed by `who` under `key`.
    pub fn all(
        src: &Source,
        list: &[Spanned<String>],
        shared: bool,
        who: &str,
        key: &'static str,
    ) -> Vec<TagUse> {
        list.iter()
            .map(|t| TagUse {
                tag: t.get_ref().clone(),
                shared,
                who: who.to_string(),
                line: src.line(t.span().start),
                key,
            })
            .collect()
    }
}

/// Every tag of the project in one place: a tag belongs to one entry and is never also a
/// shared tag (bashbrew refuses a duplicate tag); a shared tag may be listed by several
/// entries (Windows variants count as entries: tagged with their variant name, sharing
/// `[library] windows-shared-tags`). The error is reported where the second use is
/// written, naming both.
pub(super) fn check_tags(src: &Source, uses: Vec<TagUse>) -> Result<()> {
    let mut tags: BTreeMap<String, TagUse> = BTreeMap::new();
    let mut shared: BTreeMap<String, TagUse> = BTreeMap::new();
    let err = |u: &TagUse, problem: String| {
        Error::input(
            format!("{}:{}", show::path(src.path), u.line),
            format!("{}: {problem}", u.key),
        )
    };
    for u in uses {
        let tag = &u.tag;
        if let Some(first) = tags.get(tag) {
            let problem = if u.shared {
                format!(
                    "{tag} is a shared tag of {} but a tag of {} (line {}): a tag is either \
                     one entry's or shared",
                    u.who, first.who, first.line
                )
            } else {
                format!(
                    "{tag} is a tag of {} and of {} (line {}): a tag names one entry \
                     (bashbrew refuses duplicate tags); keep it in one, or make it a shared \
                     tag of both",
                    u.who, first.who, first.line
                )
            };
            return Err(err(&u, problem));
        }
        if u.shared {
            shared.entry(tag.clone()).or_insert(u);
            continue;
        }
        if let Some(first) = shared.get(tag) {
            return Err(err(
                &u,
                format!(
                    "{tag} is a tag of {} but a shared tag of {} (line {}): a tag is either \
                     one entry's or shared",
                    u.who, first.who, first.line
                ),
            ));
        }
        tags.insert(tag.clone(), u);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::project::{EntryKind, Project};
    use crate::timestamp::Timestamp;

    /// busybox's shape: three variants with their real architecture subsets, and the
    /// unsuffixed entry that takes its layouts from them.
    const BUSYBOX: &str = r#"name = "busybox"
created = "@0"
architectures = ["amd64", "arm32v5", "arm32v6", "arm32v7", "arm64v8", "i386", "ppc64le", "riscv64", "s390x"]
output = "latest/{image}/{arch}"

[image]
cmd = ["sh"]

[[input]]
rootfs = "rootfs/{image}/{arch}"

[[images]]
name = "glibc"
tags = ["1.38.0-glibc", "glibc"]
architectures = ["amd64", "arm32v5", "arm32v7", "arm64v8", "i386", "ppc64le", "riscv64", "s390x"]

[[images]]
name = "uclibc"
tags = ["1.38.0-uclibc", "uclibc"]
architectures = ["amd64", "arm32v5", "arm32v7", "arm64v8", "i386", "riscv64"]

[[images]]
name = "musl"
tags = ["1.38.0-musl", "musl"]
shared-tags = ["small"]
architectures = ["s390x", "amd64", "arm32v6", "arm32v7", "arm64v8", "i386", "ppc64le", "riscv64"]
[images.image]
cmd = ["/bin/sh"]

[[images]]
name = "latest"
tags = ["1.38.0", "latest"]
shared-tags = ["small"]
from = ["glibc", "uclibc", "musl"]
"#;

    fn parse(text: &str) -> crate::Result<Project> {
        Project::parse(text, Path::new("p/ocipack.toml"), Path::new("p"))
    }

    /// The error of `text`, which must be an input error (exit 2).
    fn err(text: &str) -> String {
        let e = parse(text).unwrap_err();
        assert_eq!(e.exit_code(), 2, "{e}");
        e.to_string()
    }

    /// Asserts `e` starts with `p/ocipack.toml:LINE: KEY: ` and holds every `needle`.
    fn at(e: &str, line: usize, key: &str, needles: &[&str]) {
        let head = format!("p/ocipack.toml:{line}: {key}: ");
        assert!(e.starts_with(&head), "want {head:?}: {e}");
        for n in needles {
            assert!(e.contains(n), "want {n:?}: {e}");
        }
    }

    fn line_of(text: &str, needle: &str) -> usize {
        let off = text.find(needle).unwrap_or_else(|| panic!("{needle:?}"));
        text[..off].matches('\n').count() + 1
    }

    #[test]
    fn the_busybox_shape() {
        let p = parse(BUSYBOX).unwrap();
        assert!(p.declares_images());
        let names: Vec<&str> = p.images.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["glibc", "uclibc", "musl", "latest"]);
        let musl = p.entry("musl").unwrap();
        // Architectures follow the top-level order, whatever order the entry wrote.
        assert_eq!(
            musl.architectures,
            [
                "amd64", "arm32v6", "arm32v7", "arm64v8", "i386", "ppc64le", "riscv64", "s390x"
            ]
        );
        assert_eq!(
            musl.line,
            Some(line_of(BUSYBOX, "[[images]]\nname = \"musl\""))
        );
        let latest = p.entry("latest").unwrap();
        assert_eq!(latest.architectures, p.architectures);
        let EntryKind::From(f) = &latest.kind else {
            panic!("latest builds nothing")
        };
        assert_eq!(f.from, ["glibc", "uclibc", "musl"]);
        // glibc first, uclibc never (a subset of glibc), musl where glibc has none.
        for (arch, source) in [("amd64", "glibc"), ("arm32v6", "musl"), ("s390x", "glibc")] {
            assert_eq!(latest.source(arch), Some(source), "{arch}");
        }
        assert_eq!(latest.source("mips64le"), None);
        assert_eq!(
            p.output_rel(latest, "arm32v6").as_deref(),
            Some("latest/musl/arm32v6")
        );
        assert_eq!(p.layouts().len(), 8 + 6 + 8);
        assert_eq!(p.input_paths(musl, "i386"), ["rootfs/musl/i386"]);

        // [images.image] over [image], key by key, each value naming where it was set.
        let spec = p.image_spec(musl, "amd64", Timestamp::EPOCH, 1).unwrap();
        assert_eq!(
            spec.config.cmd.as_deref(),
            Some(&["/bin/sh".to_string()][..])
        );
        let b = musl.build().unwrap();
        assert!(
            b.settings
                .cmd
                .as_ref()
                .unwrap()
                .origin
                .to_string()
                .ends_with(": images.image.cmd"),
            "{:?}",
            b.settings.cmd
        );
        let glibc = p.entry("glibc").unwrap();
        let spec = p.image_spec(glibc, "amd64", Timestamp::EPOCH, 1).unwrap();
        assert_eq!(spec.config.cmd.as_deref(), Some(&["sh".to_string()][..]));
        assert_eq!(
            spec.inputs[0].source,
            crate::image::build::InputSource::Rootfs("p/rootfs/glibc/amd64".into())
        );
        assert!(p.image_spec(latest, "amd64", Timestamp::EPOCH, 1).is_err());
    }

    #[test]
    fn from_entries_resolve_recursively() {
        // A from entry naming a from entry: first match per architecture, followed down.
        let text = BUSYBOX.to_string()
            + "\n[[images]]\nname = \"both\"\ntags = [\"both\"]\nfrom = [\"uclibc\", \"latest\"]\n";
        let p = parse(&text).unwrap();
        let both = p.entry("both").unwrap();
        assert_eq!(both.architectures.len(), 9);
        assert_eq!(both.source("arm32v5"), Some("uclibc"));
        assert_eq!(both.source("arm32v6"), Some("musl"));
        assert_eq!(both.source("ppc64le"), Some("glibc"));
        // Its own architectures: a subset of the union, kept.
        let text = BUSYBOX.replace(
            "from = [\"glibc\", \"uclibc\", \"musl\"]",
            "from = [\"glibc\", \"uclibc\", \"musl\"]\narchitectures = [\"arm32v6\", \"amd64\"]",
        );
        let p = parse(&text).unwrap();
        assert_eq!(
            p.entry("latest").unwrap().architectures,
            ["amd64", "arm32v6"]
        );
    }

    #[test]
    fn from_errors_name_the_entries() {
        let from_line = line_of(BUSYBOX, "from = [");
        let e = err(&BUSYBOX.replace("\"uclibc\", \"musl\"]", "\"uclibc\", \"muzl\"]"));
        at(
            &e,
            from_line,
            "images.from",
            &["image latest", "\"muzl\"", "glibc, uclibc, musl"],
        );
        let e = err(&BUSYBOX.replace("\"uclibc\", \"musl\"]", "\"glibc\"]"));
        at(&e, from_line, "images.from", &["glibc is listed twice"]);
        let e = err(&BUSYBOX.replace("[\"glibc\", \"uclibc\", \"musl\"]", "[]"));
        at(&e, from_line, "images.from", &["is empty"]);
        let e = err(&BUSYBOX.replace("\"uclibc\", \"musl\"]", "\"latest\"]"));
        at(
            &e,
            from_line,
            "images.from",
            &["latest cannot take its layouts from itself"],
        );
        // A cycle through two from entries.
        let text = BUSYBOX.to_string()
            + "\n[[images]]\nname = \"other\"\ntags = [\"o\"]\nfrom = [\"latest\"]\n";
        let text = text.replace("\"uclibc\", \"musl\"]", "\"other\"]");
        let e = err(&text);
        at(
            &e,
            from_line,
            "images.from",
            &["cycle", "latest → other → latest"],
        );
        // A from entry builds nothing: keys about building are refused, naming the key.
        for (add, key) in [
            ("[images.image]\ncmd = [\"x\"]\n", "images.image"),
            ("[[images.input]]\nrootfs = \"r\"\n", "images.input"),
            ("output = \"x/{arch}\"\n", "images.output"),
        ] {
            let text = format!("{BUSYBOX}{add}");
            let e = err(&text);
            assert!(
                e.contains(&format!(": {key}: image latest takes its layouts from")),
                "{e}"
            );
            assert!(e.contains("glibc, uclibc, musl"), "{e}");
        }
        // An architecture none of the from images has.
        let text = BUSYBOX.replace(
            "from = [\"glibc\", \"uclibc\"",
            "architectures = [\"amd64\", \"arm32v6\"]\nfrom = [\"glibc\", \"uclibc\"",
        );
        let text = text.replace(", \"uclibc\", \"musl\"]", ", \"uclibc\"]");
        let e = err(&text);
        at(
            &e,
            line_of(&text, "architectures = [\"amd64\", \"arm32v6\"]"),
            "images.architectures",
            &["image latest lists arm32v6", "(glibc, uclibc)"],
        );
    }

    #[test]
    fn entry_errors_name_key_and_line() {
        let musl_name = line_of(BUSYBOX, "name = \"musl\"");
        let e = err(&BUSYBOX.replace("name = \"musl\"", "name = \"uclibc\""));
        at(
            &e,
            musl_name,
            "images.name",
            &["uclibc is already the name", "line 17"],
        );
        let e = err(&BUSYBOX.replace("name = \"musl\"", "name = \"mu/sl\""));
        at(
            &e,
            musl_name,
            "images.name",
            &["\"mu/sl\" is not an image name"],
        );
        let e = err(&BUSYBOX.replace("tags = [\"1.38.0-musl\", \"musl\"]\n", ""));
        at(&e, musl_name - 1, "images", &["image musl has no tags"]);
        let e = err(&BUSYBOX.replace(
            "\"s390x\", \"amd64\", \"arm32v6\"",
            "\"mips64le\", \"amd64\", \"arm32v6\"",
        ));
        at(
            &e,
            line_of(BUSYBOX, "architectures = [\"s390x\""),
            "images.architectures",
            &[
                "\"mips64le\" is not one of the project's architectures",
                "line 3",
            ],
        );
        // An entry without input, when the top level has none either.
        let text = BUSYBOX.replace("[[input]]\nrootfs = \"rootfs/{image}/{arch}\"\n", "");
        let e = err(&text);
        at(
            &e,
            line_of(&text, "[[images]]"),
            "images",
            &["image glibc has no input"],
        );
        // Its own inputs replace the top level's: glibc has some now, uclibc still none.
        let text = text.replace(
            "architectures = [\"amd64\", \"arm32v5\", \"arm32v7\", \"arm64v8\", \"i386\", \"ppc64le\", \"riscv64\", \"s390x\"]\n",
            "architectures = [\"amd64\", \"arm32v5\", \"arm32v7\", \"arm64v8\", \"i386\", \"ppc64le\", \"riscv64\", \"s390x\"]\n[[images.input]]\ntar = \"{image}-{arch}.tar\"\n",
        );
        let e = err(&text);
        at(
            &e,
            line_of(&text, "[[images]]\nname = \"uclibc\""),
            "images",
            &["image uclibc has no input"],
        );
        let text = text.replace(
            "[[images.input]]\ntar = \"{image}-{arch}",
            "[[images.input]]\nsource = \"{image}-{arch}",
        );
        let e = err(&text);
        at(
            &e,
            line_of(&text, "[[images.input]]"),
            "images.input",
            &["source needs dest"],
        );
    }

    #[test]
    fn a_tag_names_one_entry() {
        // Twice as a tag.
        let text = BUSYBOX.replace("\"1.38.0-musl\", \"musl\"", "\"1.38.0-musl\", \"glibc\"");
        let e = err(&text);
        at(
            &e,
            line_of(&text, "\"1.38.0-musl\""),
            "images.tags",
            &[
                "glibc is a tag of image musl and of image glibc (line 14)",
                "bashbrew",
            ],
        );
        // A tag that is also a shared tag, either way round.
        let text = BUSYBOX.replace("\"1.38.0-musl\", \"musl\"", "\"1.38.0-musl\", \"small\"");
        let e = err(&text);
        assert!(
            e.contains("small is a shared tag of image musl but a tag of image musl"),
            "{e}"
        );
        let text = BUSYBOX.replace(
            "tags = [\"1.38.0\", \"latest\"]\nshared-tags = [\"small\"]",
            "tags = [\"1.38.0\", \"latest\"]\nshared-tags = [\"glibc\"]",
        );
        let e = err(&text);
        at(
            &e,
            line_of(&text, "shared-tags = [\"glibc\"]"),
            "images.shared-tags",
            &["glibc is a shared tag of image latest but a tag of image glibc (line 14)"],
        );
        // Windows variants are entries too.
        let text = format!(
            "{}\n[windows]\nvariants = [\"nanoserver-ltsc2025\"]\n",
            BUSYBOX.replace(
                "\"1.38.0\", \"latest\"",
                "\"1.38.0\", \"nanoserver-ltsc2025\""
            )
        );
        let text = text.replacen(
            "[[images]]",
            "[library]\nmaintainers = [\"A <a@b.invalid> (@a)\"]\ngit-repo = \"https://x.invalid/x.git\"\n\n[[images]]",
            1,
        );
        let e = err(&text);
        assert!(
            e.contains("nanoserver-ltsc2025 is a tag of the Windows variant nanoserver-ltsc2025 and of image latest"),
            "{e}"
        );
    }

    #[test]
    fn library_tags_belong_to_the_entries() {
        let lib = "[library]\nmaintainers = [\"A <a@b.invalid> (@a)\"]\ngit-repo = \"https://x.invalid/x.git\"\ntags = [\"x\"]\n\n";
        let text = BUSYBOX.replacen("[[images]]", &format!("{lib}[[images]]"), 1);
        let e = err(&text);
        at(
            &e,
            line_of(&text, "tags = [\"x\"]"),
            "library.tags",
            &["[[images]]", "each entry has its own"],
        );
        let text = text.replace("tags = [\"x\"]", "shared-tags = [\"x\"]");
        let e = err(&text);
        at(
            &e,
            line_of(&text, "shared-tags = [\"x\"]"),
            "library.shared-tags",
            &["[[images]]"],
        );
        let text = text.replace("shared-tags = [\"x\"]\n", "");
        parse(&text).unwrap();
    }

    #[test]
    fn each_layout_has_a_directory_of_its_own() {
        // The default output has no {image}: two entries would share amd64/oci.
        let text = BUSYBOX.replace("output = \"latest/{image}/{arch}\"\n", "");
        let e = err(&text);
        at(
            &e,
            line_of(&text, "[[images]]\nname = \"uclibc\""),
            "output (the default \"{arch}/oci\")",
            &[
                "gives amd64/oci for both image glibc (line 11) amd64 and image uclibc",
                "{image}",
            ],
        );
        // An entry's own output without {arch}.
        let text = BUSYBOX.replace("name = \"uclibc\"", "name = \"uclibc\"\noutput = \"u\"");
        let e = err(&text);
        at(
            &e,
            line_of(&text, "output = \"u\""),
            "images.output",
            &[
                "\"u\" gives u for both image uclibc",
                "amd64 and image uclibc",
                "arm32v5",
                "{arch}",
            ],
        );
        // Overlapping outputs.
        let text = BUSYBOX.replace(
            "name = \"uclibc\"",
            "name = \"uclibc\"\noutput = \"latest/glibc/{arch}/u\"",
        );
        let e = err(&text);
        assert!(e.contains("overlap") && e.contains("image uclibc"), "{e}");
        // Debian's shape: one path per image, the same on every architecture's branch.
        let debian = r#"name = "debian"
created = "@0"
architectures = ["amd64", "arm64v8"]
output = "{image}/oci"

[[input]]
tar = "{arch}/{image}/rootfs.tar.xz"

[library]
maintainers = ["A <a@b.invalid> (@a)"]
git-repo = "https://x.invalid/x.git"
commit-branch = "dist-{arch}"

[[images]]
name = "bookworm"
tags = ["bookworm"]

[[images]]
name = "bookworm-slim"
tags = ["bookworm-slim"]
output = "bookworm/slim/oci"
"#;
        let p = parse(debian).unwrap();
        assert_eq!(p.layouts().len(), 4);
        let e = p.entry("bookworm-slim").unwrap();
        assert_eq!(p.branch_name("dist-{arch}", e, "arm64v8"), "dist-arm64v8");
        assert_eq!(
            p.branch_name("dist-{image}-{arch}", e, "amd64"),
            "dist-bookworm-slim-amd64"
        );
        // In the work tree, the same paths collide.
        let e = p.check_outputs(None).unwrap_err().to_string();
        assert!(e.contains("gives bookworm/oci for both image bookworm (line 14) amd64 and image bookworm (line 14) arm64v8"), "{e}");
        // On one branch, too: a pattern without {arch} is refused first.
        let e = err(&debian.replace("dist-{arch}", "dist"));
        at(&e, 12, "library.commit-branch", &["must contain {arch}"]);
        let e = err(&debian.replace("dist-{arch}", "dist-{arch}-{variant}"));
        at(&e, 12, "library.commit-branch", &["{variant}"]);
        // The branch names each entry gives are checked.
        let e = err(&debian.replace("dist-{arch}", "dist-{arch}-{image}.lock"));
        assert!(e.contains("not a valid branch name"), "{e}");
    }

    #[test]
    fn image_placeholders_only_with_images() {
        let text = "name = \"x\"\ncreated = \"@0\"\narchitectures = [\"amd64\"]\noutput = \"{image}/{arch}\"\n[[input]]\nrootfs = \"r\"\n";
        let e = err(text);
        at(&e, 4, "output", &["unknown placeholder {image}"]);
        let text = "name = \"x\"\ncreated = \"@0\"\narchitectures = [\"amd64\"]\n[[input]]\nrootfs = \"{image}\"\n";
        let e = err(text);
        assert!(
            e.contains("p/ocipack.toml:5: input.rootfs \"{image}\": unknown placeholder {image}"),
            "{e}"
        );
    }
}
