//! `verify --profile oci-import`: the rules of the Docker Official Images `oci-import` path,
//! each finding naming who enforces it.
//!
//! A layout that `Builder: oci-import` names has to pass three readers, none of which is
//! the OCI spec: bashbrew's `ociImportBuild` (pull-request CI: strict Go decoding, exactly one
//! image manifest, OCI media types), meta-scripts' import (production builds: `oci.jq`'s
//! validation, which accepts only `tar` and `tar+gzip` layers, drops `urls`, `data` and the
//! index entry's annotations, and replaces its platform), and `crane push`
//! (go-containerregistry ≥ 0.21.7 refuses a blob that is a symlink). The plain rules
//! ([`super::check_documents`]) already refuse what every reader refuses; this module adds
//! what one of the three refuses or changes, so that a maintainer learns *who* will reject a
//! layout before a build does. The origin of each rule (`bashbrew`, `meta-scripts`, `crane`,
//! or `ocipack` where ocipack is stricter than the pipeline) is recorded on the
//! [`Problem`](crate::problems::Problem); the sources are listed in
//! `docs/reference/verify.md`.
//!
//! Every rule is a pure function over the model: [`check_layout`] over what `verify`'s
//! layout reader found plus the facts of a survey of the layout's files ([`FileFact`],
//! gathered by `verify`, the only part of the profile that touches the disk), and
//! [`check_built`] over an image the builder made in memory, which `ocipack build` runs
//! before it writes anything when the project has a `[library]` table.

use std::collections::BTreeSet;

use crate::digest::Algorithm;
use crate::image::Image;
use crate::media::{self, Compression};
use crate::platform::Platform;
use crate::problems::{Problems, Severity};
use crate::spec::{Descriptor, Index, Manifest};
use crate::store::root::EntryType;

use super::docs::{check_data, join_key};
use super::{Found, LayoutRead};

/// bashbrew's `ociImportBuild` (cmd/bashbrew/oci-builder.go): pull-request CI.
pub const BASHBREW: &str = "bashbrew";
/// meta-scripts' import (helpers/oci-import.sh, oci-validate.sh, oci.jq): production builds.
pub const META_SCRIPTS: &str = "meta-scripts";
/// `crane push` (go-containerregistry ≥ 0.21.7): the pipeline's push.
pub const CRANE: &str = "crane";
/// ocipack, stricter than the pipeline.
pub const OCIPACK: &str = "ocipack";

/// The largest manifest meta-scripts' `oci.jq` accepts (`size <= 4194304`).
pub const MAX_MANIFEST: i64 = 4 * 1024 * 1024;

/// Why a `tar+zstd` layer is refused: the one place this explanation is written.
pub const ZSTD_REFUSED: &str = "meta-scripts' oci.jq, which the Official Images production \
builds run on every oci-import layout, accepts only tar and tar+gzip layers (bashbrew itself \
accepts tar+zstd, so pull-request CI passes, but the build fails); use gzip";

/// Which rules `verify` applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Profile {
    /// The OCI image spec, read as strictly as bashbrew's decoder (the default).
    #[default]
    Oci,
    /// Those, plus every rule of bashbrew's oci-import builder, meta-scripts' import and
    /// crane's push.
    OciImport,
}

impl std::str::FromStr for Profile {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "oci" => Ok(Profile::Oci),
            "oci-import" => Ok(Profile::OciImport),
            _ => Err(format!(
                "unknown profile {s:?} (expected oci or oci-import)"
            )),
        }
    }
}

/// What a symlink in the layout leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkEnd {
    /// Something of this type inside the layout.
    Inside(EntryType),
    /// Nothing.
    Dangling,
    /// An absolute target.
    Absolute,
    /// A target that climbs out of the layout.
    Escapes,
    /// Too many links.
    Loop,
    /// Resolving failed otherwise.
    Unreadable(String),
}

/// One entry of the layout, as found without following it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileFact {
    /// Its path, relative to the layout, as bytes (a name need not be UTF-8; one that is
    /// not is shown escaped, never converted).
    pub path: Vec<u8>,
    /// Its type (a symlink is a symlink).
    pub kind: EntryType,
    /// For a symlink: its target as written, and where it leads.
    pub link: Option<(String, LinkEnd)>,
}

/// The profile's rules over a layout as read: the `--file` name, `index.json`, the
/// selected image's descriptor, manifest and blob descriptors, and the layout's files.
/// `expect` is the bashbrew architecture's platform, when known.
pub fn check_layout(
    p: &mut Problems,
    layout: &LayoutRead,
    files: &[FileFact],
    file: Option<&str>,
    expect: Option<&(Platform, String)>,
) {
    if let Some(f) = file {
        check_index_json_spelling(p, f);
    }
    if let Some(index) = &layout.index {
        check_index(p, "index.json", &index.value);
    }
    if let Some(nested) = &layout.nested {
        p.by(
            Severity::Error,
            BASHBREW,
            &nested.found.file,
            Some(join_key(&nested.found.field, "mediaType")),
            "an image index (a multi-platform layout): the oci-import builder needs exactly \
             one image manifest, one layout per architecture",
        );
    }
    let mut blobs = BTreeSet::new();
    if let Some(img) = layout.selected.map(|n| &layout.images[n]) {
        check_entry(p, &img.found, expect);
        blobs.insert(img.manifest_path.clone());
        if let Some(m) = &img.manifest {
            check_manifest(p, &img.manifest_path, &m.value, &img.found.descriptor);
            blobs.extend(blob_paths(&m.value));
        }
    }
    check_files(p, files, &blobs);
    check_unknown(p, layout);
}

/// bashbrew decodes `oci-layout`, the file it is given (`index.json`, or the descriptor
/// file), the selected image's manifest and its config with Go's `DisallowUnknownFields`
/// (ocipack's types declare the image spec's properties, as bashbrew's do): a property
/// neither knows fails the import there, although the plain rules only warn (the image spec
/// tells readers to ignore it). In any other document it stays that warning.
fn check_unknown(p: &mut Problems, layout: &LayoutRead) {
    let mut read = vec!["oci-layout".to_string()];
    read.push(match &layout.descriptor_file {
        Some((name, _)) => name.clone(),
        None => "index.json".into(),
    });
    if let Some(img) = layout.selected.map(|n| &layout.images[n]) {
        read.push(img.manifest_path.clone());
        read.push(img.config_path.clone());
    }
    for file in &read {
        let paths: Vec<String> = layout
            .unknown
            .iter()
            .filter(|(f, _)| f == file)
            .map(|(_, path)| path.clone())
            .collect();
        super::docs::each_unknown(&paths, UNKNOWN_TO_BASHBREW, |field, m| {
            p.by(Severity::Error, BASHBREW, file, field, m)
        });
    }
}

/// Why bashbrew refuses a property ocipack does not know.
const UNKNOWN_TO_BASHBREW: &str = "a property bashbrew does not know: its strict decoder \
(DisallowUnknownFields) refuses the document, although the image spec tells readers to ignore it";

/// The profile's rules over an image the builder made in memory: its index entry (as
/// `index.json manifests[0]`), manifest, and whether the readable-name style makes its
/// blobs symlinks to the readable names (`names = "files"`: `files_names`).
pub fn check_built(
    p: &mut Problems,
    image: &Image,
    files_names: bool,
    expect: Option<&(Platform, String)>,
) {
    let found = Found {
        file: "index.json".into(),
        field: "manifests[0]".into(),
        descriptor: image.entry.clone(),
    };
    check_entry(p, &found, expect);
    let path = image.entry.digest.blob_path();
    check_manifest(p, &path, &image.manifest.value, &image.entry);
    if files_names {
        p.by(
            Severity::Error,
            CRANE,
            "blobs",
            None,
            "names = \"files\" makes every blobs/sha256/… entry a symlink to its readable \
             name, and crane (go-containerregistry ≥ 0.21.7, the pipeline's push) refuses \
             symlinked blobs; use names = \"symlinks\"",
        );
    }
}

/// The blob paths a manifest references: config and layers.
fn blob_paths(m: &Manifest) -> Vec<String> {
    std::iter::once(&m.config)
        .chain(&m.layers)
        .map(|d| d.digest.blob_path())
        .collect()
}

/// `File:` (`--file`) that means `index.json` must be spelled exactly `index.json`: bashbrew
/// compares it with `index.json` as a string and reads any other value as one descriptor, so
/// `./index.json` is a descriptor file that fails to decode.
pub fn check_index_json_spelling(p: &mut Problems, file: &str) {
    let normalized: Vec<&str> = file
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    if file != "index.json" && normalized == ["index.json"] {
        p.by(
            Severity::Error,
            &format!("{BASHBREW}, {META_SCRIPTS}"),
            file,
            None,
            "File: must be exactly \"index.json\": bashbrew and meta-scripts compare it as a \
             string and read any other name as a single-descriptor file",
        );
    }
}

/// `index.json`'s own fields.
pub fn check_index(p: &mut Problems, file: &str, index: &Index) {
    if index.artifact_type.is_some() {
        p.by(
            Severity::Error,
            &format!("{BASHBREW}, {META_SCRIPTS}"),
            file,
            Some("artifactType".into()),
            "bashbrew's index has no artifactType (its strict decoder refuses the unknown \
             field) and meta-scripts requires it to be null",
        );
    }
    if index.subject.is_some() {
        p.by(
            Severity::Error,
            BASHBREW,
            file,
            Some("subject".into()),
            "bashbrew's index has no subject (its strict decoder refuses the unknown field)",
        );
    }
    if index.media_type.is_none() {
        p.by(
            Severity::Warning,
            META_SCRIPTS,
            file,
            Some("mediaType".into()),
            format!(
                "absent: meta-scripts fills in {:?} and bashbrew ignores it; ocipack writes it",
                media::INDEX
            ),
        );
    }
    if index.annotations.as_ref().is_some_and(|a| !a.is_empty()) {
        p.by(
            Severity::Warning,
            META_SCRIPTS,
            file,
            Some("annotations".into()),
            "index annotations are pushed unchanged: meta-scripts keeps them in the index it \
             pushes (bashbrew ignores them)",
        );
    }
}

/// The descriptor that selects the image (`index.json manifests[0]` or a `File:`).
pub fn check_entry(p: &mut Problems, at: &Found, expect: Option<&(Platform, String)>) {
    let d = &at.descriptor;
    let field = |k: &str| Some(join_key(&at.field, k));
    check_descriptor(p, &at.file, &at.field, d);
    if d.media_type == media::DOCKER_MANIFEST {
        p.by(
            Severity::Error,
            BASHBREW,
            &at.file,
            field("mediaType"),
            format!(
                "a Docker v2 manifest: bashbrew's oci-import builder takes only {:?}",
                media::MANIFEST
            ),
        );
    }
    if d.size <= 2 || d.size > MAX_MANIFEST {
        p.by(
            Severity::Error,
            META_SCRIPTS,
            &at.file,
            field("size"),
            format!(
                "a manifest of {} bytes: meta-scripts' oci.jq accepts only sizes above 2 and \
                 at most {MAX_MANIFEST}",
                d.size
            ),
        );
    }
    if d.data.is_some() {
        p.by(
            Severity::Warning,
            META_SCRIPTS,
            &at.file,
            field("data"),
            "dropped: meta-scripts deletes data from the index entry",
        );
    }
    // The image name annotations address the image in the layout for local tools (umoci,
    // skopeo, podman: `oci:DIR:latest`); the pipeline names images itself, so their loss is
    // harmless and not worth a warning. Anything else is lost information.
    let local_names = [
        crate::spec::ANNOTATION_REF_NAME,
        crate::spec::ANNOTATION_CONTAINERD_NAME,
    ];
    if d.annotations
        .as_ref()
        .is_some_and(|a| a.keys().any(|k| !local_names.contains(&k.as_str())))
    {
        p.by(
            Severity::Warning,
            &format!("{BASHBREW}, {META_SCRIPTS}"),
            &at.file,
            field("annotations"),
            "dropped: bashbrew and meta-scripts delete the index entry's annotations \
             (meta-scripts then adds its own org.opencontainers.image.* annotations)",
        );
    }
    if let Some(pl) = &d.platform {
        check_platform(p, at, pl, expect);
    }
}

/// meta-scripts validates a platform's shape, then replaces it with the bashbrew
/// architecture's (normalised: arm without a variant is v7, arm64 without one is v8).
fn check_platform(
    p: &mut Problems,
    at: &Found,
    pl: &Platform,
    expect: Option<&(Platform, String)>,
) {
    let base = join_key(&at.field, "platform");
    let mut shaped = true;
    for (k, v) in [
        ("architecture", Some(&pl.architecture)),
        ("os", Some(&pl.os)),
        ("variant", pl.variant.as_ref()),
        ("os.version", pl.os_version.as_ref()),
    ] {
        if v.is_some_and(|v| v.is_empty()) {
            shaped = false;
            p.by(
                Severity::Error,
                META_SCRIPTS,
                &at.file,
                Some(join_key(&base, k)),
                "empty: meta-scripts' oci.jq requires a non-empty string",
            );
        }
    }
    let Some((want, from)) = expect else {
        return;
    };
    let have = normalize(pl);
    if shaped
        && (have.os != want.os
            || have.architecture != want.architecture
            || have.variant != want.variant)
    {
        p.by(
            Severity::Warning,
            META_SCRIPTS,
            &at.file,
            Some(base),
            format!(
                "{have}, but the bashbrew architecture ({from}) is {want}: meta-scripts \
                 replaces the platform with {want}, so the pushed index will not say {have}"
            ),
        );
    }
}

/// meta-scripts' `normalize_platform`: arm without a variant is v7, arm64 without one v8.
pub fn normalize(pl: &Platform) -> Platform {
    let mut out = Platform::new(&pl.os, &pl.architecture, pl.variant.as_deref());
    if out.variant.is_none() {
        out.variant = match pl.architecture.as_str() {
            "arm" => Some("v7".into()),
            "arm64" => Some("v8".into()),
            _ => None,
        };
    }
    out
}

/// The rules every descriptor meets: sha256 digests (crane), no artifactType
/// (meta-scripts), valid `data` (meta-scripts).
pub fn check_descriptor(p: &mut Problems, file: &str, field: &str, d: &Descriptor) {
    if d.digest.algorithm() != Algorithm::Sha256 {
        p.by(
            Severity::Error,
            CRANE,
            file,
            Some(join_key(field, "digest")),
            format!(
                "{}: crane accepts only sha256 digests (\"unsupported hash\"), although \
                 bashbrew and meta-scripts accept {}",
                d.digest,
                d.digest.algorithm().name()
            ),
        );
    }
    if d.artifact_type.is_some() {
        p.by(
            Severity::Error,
            META_SCRIPTS,
            file,
            Some(join_key(field, "artifactType")),
            "meta-scripts' oci.jq requires artifactType to be null on an image's descriptors",
        );
    }
    if let Some(data) = &d.data
        && let Some(why) = check_data(data, d)
    {
        p.by(
            Severity::Error,
            META_SCRIPTS,
            file,
            Some(join_key(field, "data")),
            format!("{why}: meta-scripts validates data against the descriptor"),
        );
    }
}

/// The manifest's own fields, its config descriptor and its layer descriptors.
pub fn check_manifest(p: &mut Problems, file: &str, m: &Manifest, entry: &Descriptor) {
    match &m.media_type {
        None => p.by(
            Severity::Error,
            META_SCRIPTS,
            file,
            Some("mediaType".into()),
            format!(
                "absent: meta-scripts requires the manifest's mediaType, equal to its \
                 descriptor's ({:?})",
                entry.media_type
            ),
        ),
        Some(mt) if *mt != entry.media_type => p.by(
            Severity::Error,
            META_SCRIPTS,
            file,
            Some("mediaType".into()),
            format!(
                "{mt:?}, but its descriptor says {:?}: meta-scripts requires them equal",
                entry.media_type
            ),
        ),
        Some(_) => {}
    }
    if m.artifact_type.is_some() {
        p.by(
            Severity::Error,
            &format!("{BASHBREW}, {META_SCRIPTS}"),
            file,
            Some("artifactType".into()),
            "bashbrew's manifest has no artifactType (its strict decoder refuses the unknown \
             field) and meta-scripts requires it to be null",
        );
    }
    if m.subject.is_some() {
        p.by(
            Severity::Warning,
            &format!("{BASHBREW}, {META_SCRIPTS}"),
            file,
            Some("subject".into()),
            "the subject's target is not imported by bashbrew or meta-scripts",
        );
    }
    check_descriptor(p, file, "config", &m.config);
    if m.config.size < 2 {
        p.by(
            Severity::Error,
            META_SCRIPTS,
            file,
            Some("config.size".into()),
            format!(
                "{}: meta-scripts' oci.jq requires a config of at least 2 bytes",
                m.config.size
            ),
        );
    }
    for (i, l) in m.layers.iter().enumerate() {
        let field = format!("layers[{i}]");
        check_descriptor(p, file, &field, l);
        if media::foreign_layer(&l.media_type).is_some() {
            p.by(
                Severity::Error,
                BASHBREW,
                file,
                Some(join_key(&field, "mediaType")),
                format!(
                    "{}: a foreign (non-distributable) layer, whose content is not in the \
                     layout: bashbrew's oci-import builder takes only tar, tar+gzip and \
                     tar+zstd layers the layout holds",
                    l.media_type
                ),
            );
        }
        if Compression::from_media_type(&l.media_type) == Some(Compression::Zstd) {
            p.by(
                Severity::Error,
                META_SCRIPTS,
                file,
                Some(join_key(&field, "mediaType")),
                format!("{}: {ZSTD_REFUSED}", l.media_type),
            );
        }
    }
}

/// The layout's files: the blobs the image references must be regular files (crane), and
/// every symlink must stay inside the layout (meta-scripts imports only the `Directory`
/// subtree of a `git archive`; bashbrew refuses absolute links and links out of the
/// repository).
pub fn check_files(p: &mut Problems, files: &[FileFact], blobs: &BTreeSet<String>) {
    for f in files {
        // A blob's path is its digest's, ASCII: a name that is not UTF-8 is none.
        if let Some(path) = std::str::from_utf8(&f.path)
            .ok()
            .filter(|p| blobs.contains(*p))
        {
            let digest = path
                .strip_prefix("blobs/")
                .map(|s| s.replacen('/', ":", 1))
                .unwrap_or_else(|| path.to_string());
            let why = match f.kind {
                EntryType::File => None,
                EntryType::Symlink => Some(format!(
                    "layout blob {digest} is a symlink: crane (go-containerregistry ≥ 0.21.7, \
                     the pipeline's push) refuses it; `ocipack fix` makes it a regular file \
                     without changing any digest"
                )),
                EntryType::Dir => Some(format!("layout blob {digest} is not a regular file")),
                EntryType::Other(k) => Some(format!(
                    "layout blob {digest} is not a regular file (a {k})"
                )),
            };
            if let Some(why) = why {
                p.by(Severity::Error, CRANE, &f.path, None, why);
            }
        }
        let Some((target, end)) = &f.link else {
            continue;
        };
        let (severity, origin, why) = match end {
            LinkEnd::Inside(_) => continue,
            LinkEnd::Dangling => (
                Severity::Warning,
                META_SCRIPTS,
                format!("symlink to \"{target}\" leads to nothing in the layout"),
            ),
            LinkEnd::Absolute => (
                Severity::Error,
                BASHBREW,
                format!(
                    "symlink to the absolute path \"{target}\": bashbrew refuses absolute \
                     symlinks, and a checkout would point outside the layout"
                ),
            ),
            LinkEnd::Escapes => (
                Severity::Error,
                META_SCRIPTS,
                format!(
                    "symlink to \"{target}\" leads out of the layout: meta-scripts imports only \
                     the Directory subtree (git archive), where it dangles"
                ),
            ),
            LinkEnd::Loop => (
                Severity::Error,
                META_SCRIPTS,
                format!("symlink to \"{target}\" is part of a loop"),
            ),
            LinkEnd::Unreadable(e) => (
                Severity::Error,
                OCIPACK,
                format!("symlink to \"{target}\" cannot be resolved: {e}"),
            ),
        };
        p.by(severity, origin, &f.path, None, why);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Digest;
    use crate::problems::Problem;

    const HEX: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn digest() -> Digest {
        format!("sha256:{HEX}").parse().unwrap()
    }

    fn desc(media_type: &str, size: i64) -> Descriptor {
        Descriptor::new(media_type, digest(), size as u64)
    }

    fn found(d: Descriptor) -> Found {
        Found {
            file: "index.json".into(),
            field: "manifests[0]".into(),
            descriptor: d,
        }
    }

    fn manifest() -> Manifest {
        Manifest {
            schema_version: 2,
            media_type: Some(media::MANIFEST.into()),
            artifact_type: None,
            config: desc(media::CONFIG, 300),
            layers: vec![desc(media::LAYER_TAR_GZIP, 1000)],
            subject: None,
            annotations: None,
        }
    }

    fn run(f: impl FnOnce(&mut Problems)) -> Vec<Problem> {
        let mut p = Problems::default();
        f(&mut p);
        p.into_vec()
    }

    fn one(problems: &[Problem], severity: Severity, origin: &str, needle: &str) {
        assert_eq!(problems.len(), 1, "{problems:?}");
        let q = &problems[0];
        assert_eq!(q.severity, severity, "{q}");
        assert_eq!(q.origin.as_deref(), Some(origin), "{q}");
        assert!(q.to_string().contains(needle), "{needle:?} not in {q}");
    }

    fn amd64() -> (Platform, String) {
        (Platform::new("linux", "amd64", None), "--arch amd64".into())
    }

    #[test]
    fn a_clean_image_passes() {
        let mut e = desc(media::MANIFEST, 500);
        e.platform = Some(Platform::new("linux", "amd64", None));
        let m = manifest();
        let v = run(|p| {
            check_entry(p, &found(e.clone()), Some(&amd64()));
            check_manifest(p, "m", &m, &e);
        });
        assert!(v.is_empty(), "{v:?}");
    }

    #[test]
    fn zstd_layers_are_refused_with_the_reason() {
        let mut m = manifest();
        m.layers[0].media_type = media::LAYER_TAR_ZSTD.into();
        let v = run(|p| check_manifest(p, "m", &m, &desc(media::MANIFEST, 500)));
        one(
            &v,
            Severity::Error,
            META_SCRIPTS,
            "m: layers[0].mediaType: [meta-scripts]: application/vnd.oci.image.layer.v1.tar+zstd: meta-scripts' oci.jq",
        );
        assert!(v[0].message.contains("bashbrew itself accepts tar+zstd"));
    }

    #[test]
    fn manifest_rules() {
        let e = desc(media::MANIFEST, 500);
        let mut m = manifest();
        m.media_type = None;
        one(
            &run(|p| check_manifest(p, "m", &m, &e)),
            Severity::Error,
            META_SCRIPTS,
            "mediaType: [meta-scripts]: absent",
        );
        let mut m = manifest();
        m.artifact_type = Some("x".into());
        one(
            &run(|p| check_manifest(p, "m", &m, &e)),
            Severity::Error,
            "bashbrew, meta-scripts",
            "artifactType",
        );
        let mut m = manifest();
        m.subject = Some(desc(media::MANIFEST, 500));
        one(
            &run(|p| check_manifest(p, "m", &m, &e)),
            Severity::Warning,
            "bashbrew, meta-scripts",
            "subject",
        );
        let mut m = manifest();
        m.config.size = 1;
        one(
            &run(|p| check_manifest(p, "m", &m, &e)),
            Severity::Error,
            META_SCRIPTS,
            "config.size",
        );
        let mut m = manifest();
        m.layers[0].artifact_type = Some("x".into());
        one(
            &run(|p| check_manifest(p, "m", &m, &e)),
            Severity::Error,
            META_SCRIPTS,
            "layers[0].artifactType",
        );
        let mut m = manifest();
        m.config.digest = format!("sha512:{HEX}{HEX}").parse().unwrap();
        one(
            &run(|p| check_manifest(p, "m", &m, &e)),
            Severity::Error,
            CRANE,
            "config.digest: [crane]",
        );
    }

    #[test]
    fn entry_rules() {
        for (size, bad) in [
            (2, true),
            (3, false),
            (MAX_MANIFEST, false),
            (MAX_MANIFEST + 1, true),
        ] {
            let v = run(|p| check_entry(p, &found(desc(media::MANIFEST, size)), None));
            assert_eq!(!v.is_empty(), bad, "{size}: {v:?}");
        }
        let mut e = desc(media::MANIFEST, 500);
        e.annotations = Some([("a".to_string(), "b".to_string())].into());
        one(
            &run(|p| check_entry(p, &found(e.clone()), None)),
            Severity::Warning,
            "bashbrew, meta-scripts",
            "manifests[0].annotations: [bashbrew, meta-scripts]: dropped",
        );
        // The names local tools address the image by are dropped harmlessly: no warning.
        let mut e = desc(media::MANIFEST, 500);
        e.annotations = Some(
            [
                (
                    crate::spec::ANNOTATION_REF_NAME.to_string(),
                    "latest".to_string(),
                ),
                (
                    crate::spec::ANNOTATION_CONTAINERD_NAME.to_string(),
                    "x/y:z".to_string(),
                ),
            ]
            .into(),
        );
        assert!(run(|p| check_entry(p, &found(e.clone()), None)).is_empty());
        let mut e = desc(media::MANIFEST, 0);
        e.size = 3;
        e.digest = crate::digest::Digest::sha256_of(b"abc");
        e.data = Some("YWJj".into());
        let v = run(|p| check_entry(p, &found(e.clone()), None));
        one(
            &v,
            Severity::Warning,
            META_SCRIPTS,
            "data: [meta-scripts]: dropped",
        );
        e.data = Some("YWJk".into());
        let v = run(|p| check_entry(p, &found(e.clone()), None));
        assert_eq!(v.len(), 2, "{v:?}");
        assert!(
            v[0].message.contains("decodes to 3 bytes hashing to"),
            "{v:?}"
        );
    }

    #[test]
    fn platform_rules() {
        let mut e = desc(media::MANIFEST, 500);
        e.platform = Some(Platform::new("linux", "arm64", None));
        let arm64 = (Platform::new("linux", "arm64", Some("v8")), "x".to_string());
        // arm64 without a variant normalises to v8: nothing to say.
        assert!(run(|p| check_entry(p, &found(e.clone()), Some(&arm64))).is_empty());
        let v = run(|p| check_entry(p, &found(e.clone()), Some(&amd64())));
        one(
            &v,
            Severity::Warning,
            META_SCRIPTS,
            "replaces the platform with linux/amd64",
        );
        e.platform = Some(Platform::new("linux", "", None));
        let v = run(|p| check_entry(p, &found(e.clone()), Some(&amd64())));
        one(&v, Severity::Error, META_SCRIPTS, "platform.architecture");
        assert_eq!(
            normalize(&Platform::new("linux", "arm", None))
                .variant
                .as_deref(),
            Some("v7")
        );
    }

    #[test]
    fn index_rules() {
        let index = |f: &dyn Fn(&mut Index)| {
            let mut i = Index {
                schema_version: 2,
                media_type: Some(media::INDEX.into()),
                artifact_type: None,
                manifests: vec![],
                subject: None,
                annotations: None,
            };
            f(&mut i);
            run(|p| check_index(p, "index.json", &i))
        };
        assert!(index(&|_| {}).is_empty());
        one(
            &index(&|i| i.artifact_type = Some("x".into())),
            Severity::Error,
            "bashbrew, meta-scripts",
            "artifactType",
        );
        one(
            &index(&|i| i.subject = Some(desc(media::MANIFEST, 5))),
            Severity::Error,
            BASHBREW,
            "subject",
        );
        one(
            &index(&|i| i.media_type = None),
            Severity::Warning,
            META_SCRIPTS,
            "fills in",
        );
        one(
            &index(&|i| i.annotations = Some([("a".into(), "b".into())].into())),
            Severity::Warning,
            META_SCRIPTS,
            "pushed unchanged",
        );
    }

    #[test]
    fn file_option_must_be_exactly_index_json() {
        assert!(run(|p| check_index_json_spelling(p, "index.json")).is_empty());
        assert!(run(|p| check_index_json_spelling(p, "image.json")).is_empty());
        one(
            &run(|p| check_index_json_spelling(p, "./index.json")),
            Severity::Error,
            "bashbrew, meta-scripts",
            "exactly \"index.json\"",
        );
    }

    #[test]
    fn file_rules() {
        let blob = format!("blobs/sha256/{HEX}");
        let fact = |path: &str, kind, link: Option<(&str, LinkEnd)>| FileFact {
            path: path.into(),
            kind,
            link: link.map(|(t, e)| (t.to_string(), e)),
        };
        let blobs: BTreeSet<String> = [blob.clone()].into();
        let ok = [
            fact(&blob, EntryType::File, None),
            fact(
                "rootfs.tar.gz",
                EntryType::Symlink,
                Some((&blob, LinkEnd::Inside(EntryType::File))),
            ),
        ];
        assert!(run(|p| check_files(p, &ok, &blobs)).is_empty());
        let linked = [fact(
            &blob,
            EntryType::Symlink,
            Some(("../../rootfs.tar.gz", LinkEnd::Inside(EntryType::File))),
        )];
        one(
            &run(|p| check_files(p, &linked, &blobs)),
            Severity::Error,
            CRANE,
            &format!("layout blob sha256:{HEX} is a symlink"),
        );
        for (end, severity, origin) in [
            (LinkEnd::Dangling, Severity::Warning, META_SCRIPTS),
            (LinkEnd::Absolute, Severity::Error, BASHBREW),
            (LinkEnd::Escapes, Severity::Error, META_SCRIPTS),
            (LinkEnd::Loop, Severity::Error, META_SCRIPTS),
        ] {
            let f = [fact("x", EntryType::Symlink, Some(("t", end)))];
            let v = run(|p| check_files(p, &f, &blobs));
            assert_eq!(v.len(), 1, "{v:?}");
            assert_eq!(
                (v[0].severity, v[0].origin.as_deref()),
                (severity, Some(origin))
            );
        }
    }
}
