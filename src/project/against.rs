//! `ocipack build --check --against REF`: is what a registry serves exactly what this
//! source builds?
//!
//! Each selected architecture is built in memory exactly as `build --check` builds it (the
//! layer encoded into hashes and counters only: nothing is written,
//! [`image::image_in_memory`]), then compared with what the registry serves under `REF` for
//! that platform: `REF`'s index (an index the pipeline's deploy step wrote, with its own
//! annotations, is one) matched by platform, or its single manifest by its config's
//! platform. Equal manifest digests are the proof, and nothing more is fetched for them.
//! For a manifest that differs, its manifest and config are fetched and compared with the
//! build's documents ([`crate::diff::diff_documents`]); the first difference is reported.
//! Layers are fetched only with `explain`, to compare their entries (`ocipack diff` of a
//! staged build, removed at once, and the registry's image).
//!
//! A project with `[[images]]` is a repository of several images, each published under its
//! own tags: `REF` then names the repository (no tag, no digest), and each selected entry
//! (`--image`) is compared with what the registry serves under its first tag, the layouts
//! it uses (its own, or for an entry that takes them `from` others, theirs) by platform. A
//! tag the registry does not have makes each of that entry's architectures `missing in the
//! registry`.
//!
//! Every entry of the registry's index gets a verdict too: an image for a platform the
//! project (the entry) builds but did not build now (`--arch`), an attestation manifest
//! (platform `unknown/unknown`) or an image for another OS (Windows, built by other means)
//! is `not built here`, never a failure; a Linux image for a platform it does not build, or
//! a second one for a platform it does, is `extra in the registry`.

use std::path::Path;
use std::sync::Arc;

use serde::Serialize;

use crate::diff::{self, DiffOptions, Difference};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::image::blob::{Blobs, MAX_JSON};
use crate::image::build::{self as image};
use crate::image::rules::is_attestation;
use crate::image::{Doc, Image};
use crate::platform::Platform;
use crate::project::Project;
use crate::project::plan::{BuildOptions, Plan};
use crate::registry::Reference;
use crate::registry::fetch::{FetchOptions, FetchedManifest, Fetcher, SharedFetcher};
use crate::spec::{Descriptor, ImageConfig, Manifest};
use crate::store::staging::Target;
use crate::verify::Source;

/// How to compare.
#[derive(Debug, Clone, Default)]
pub struct AgainstOptions {
    /// How to read from the registry.
    pub fetch: FetchOptions,
    /// For a manifest that differs, also fetch the layers that differ and compare their
    /// entries (`ocipack diff`).
    pub explain: bool,
}

/// What the comparison found for one platform.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "verdict")]
pub enum Verdict {
    /// The registry serves the build's manifest digest.
    Identical,
    /// The registry serves another manifest; the first difference.
    Different {
        /// The most specific difference, as `ocipack diff` words it.
        first: String,
    },
    /// The project builds this platform, and the registry serves no image for it.
    MissingInTheRegistry,
    /// The registry serves an image the project does not build (a Linux platform it does
    /// not have, or a platform listed twice).
    ExtraInTheRegistry,
    /// An entry the project does not build and should not: why.
    NotBuiltHere {
        /// An attestation manifest, another OS, or an architecture not selected.
        why: String,
    },
}

impl Verdict {
    /// True when the verdict fails the check.
    pub fn fails(&self) -> bool {
        matches!(
            self,
            Verdict::Different { .. } | Verdict::MissingInTheRegistry | Verdict::ExtraInTheRegistry
        )
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Verdict::Identical => f.write_str("identical"),
            Verdict::Different { first } => write!(f, "different: {first}"),
            Verdict::MissingInTheRegistry => f.write_str("missing in the registry"),
            Verdict::ExtraInTheRegistry => f.write_str("extra in the registry"),
            Verdict::NotBuiltHere { why } => write!(f, "not built here ({why})"),
        }
    }
}

/// One platform's line.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlatformCheck {
    /// With `[[images]]`: the entry (image) it belongs to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// With `[[images]]`: the tag the entry is checked under (its first).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// The bashbrew architecture built, or the platform the registry lists (with
    /// `[[images]]`, after the entry's name: `glibc amd64`).
    pub label: String,
    /// The platform (`linux/arm64/v8`).
    pub platform: String,
    /// The build's manifest digest, when it was built.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub built: Option<Digest>,
    /// The registry's manifest digest, when it serves one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registry: Option<Digest>,
    /// The verdict.
    #[serde(flatten)]
    pub verdict: Verdict,
    /// With `explain`, every difference, most specific first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub explanation: Vec<String>,
}

/// What `build --check --against` found.
#[derive(Debug, Clone, Serialize)]
pub struct AgainstReport {
    /// The reference, as skopeo spells it (with `[[images]]`, the repository).
    pub reference: String,
    /// The digest of what it names (a manifest or an index); with `[[images]]`, see
    /// `images`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<Digest>,
    /// With `[[images]]`: each selected entry, the reference of its first tag, and the
    /// digest the registry serves there (none when it has no such tag).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<ImageReference>,
    /// One line per built architecture (in the project's order; with `[[images]]`, per
    /// entry in file order and its architectures), then per entry of the registry's index
    /// the build did not match (in the index's order).
    pub platforms: Vec<PlatformCheck>,
}

/// One entry of a project with `[[images]]`, and what the registry serves for it.
#[derive(Debug, Clone, Serialize)]
pub struct ImageReference {
    /// The entry's name.
    pub image: String,
    /// The reference of its first tag, as skopeo spells it.
    pub reference: String,
    /// The digest the registry serves under that tag, if it serves one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<Digest>,
}

impl AgainstReport {
    /// True when no verdict fails.
    pub fn passes(&self) -> bool {
        !self.platforms.iter().any(|p| p.verdict.fails())
    }
}

/// One image the registry serves for `reference`: its descriptor (from the index, or made
/// for a single manifest, whose platform then comes from its config).
struct Served {
    descriptor: Descriptor,
    platform: Option<Platform>,
    /// Its manifest's bytes, when already fetched (a single manifest).
    bytes: Option<Vec<u8>>,
}

/// `ocipack build --check --against REF DIR` (see the module documentation): `reference`
/// as the user wrote it (a repository when the project has `[[images]]`).
pub fn check_against(
    dir: &Path,
    reference: &str,
    opts: &BuildOptions,
    against: &AgainstOptions,
) -> Result<AgainstReport> {
    let project = Project::load(dir)?;
    let several = project.declares_images();
    let named: Reference = if several {
        Reference::repository_only(reference, "--against")?
    } else {
        reference.parse()?
    };
    let plan = Plan::new(&project, opts)?;
    // Everything is built before anything is asked of the registry: a broken build is
    // reported as such, not as a difference.
    let mut built = Vec::new();
    for t in &plan.targets {
        let (img, _) = image::image_in_memory(&t.spec, &plan.root)?;
        built.push(img);
    }
    let fetcher = Fetcher::connect(&named, &against.fetch)?;
    let shared = SharedFetcher::new(fetcher, &named);
    let mut report = AgainstReport {
        reference: crate::show::text(&named.with_transport()),
        digest: None,
        images: Vec::new(),
        platforms: Vec::new(),
    };
    let platforms_of = |arches: &[String]| -> Vec<Platform> {
        arches
            .iter()
            .filter_map(|a| Platform::from_bashbrew_arch(a).ok())
            .collect()
    };
    let compare = Compare {
        plan: &plan,
        built: &built,
        shared: &shared,
        against,
    };
    if !several {
        let top = shared.with(|f| f.manifest(&named.tag_or_digest()))?;
        let layouts: Vec<(String, usize)> = (0..plan.targets.len())
            .map(|i| (plan.targets[i].arch.clone(), i))
            .collect();
        let declared = platforms_of(&project.architectures);
        report.platforms = compare.image(&named, &top, &layouts, &declared, None)?;
        report.digest = Some(top.digest);
        return Ok(report);
    }
    for selected in &plan.images {
        let entry = project
            .entry(&selected.name)
            .ok_or_else(|| Error::internal("a planned image is an entry of the project"))?;
        let tag = entry.tags.first().ok_or_else(|| {
            Error::input(
                format!("image {}", crate::show::text(&entry.name)),
                "has no tags to check it under",
            )
        })?;
        let tagged = Reference {
            tag: Some(tag.clone()),
            ..named.clone()
        };
        let top = shared.with(|f| f.manifest_if_tagged(tag))?;
        report.images.push(ImageReference {
            image: entry.name.clone(),
            reference: crate::show::text(&tagged.with_transport()),
            digest: top.as_ref().map(|t| t.digest.clone()),
        });
        let declared = platforms_of(&entry.architectures);
        let who = Some((entry.name.as_str(), tag.as_str()));
        let lines = match &top {
            Some(top) => compare.image(&tagged, top, &selected.layouts, &declared, who)?,
            None => selected
                .layouts
                .iter()
                .map(|(arch, i)| PlatformCheck {
                    image: Some(entry.name.clone()),
                    tag: Some(tag.clone()),
                    label: format!("{} {arch}", entry.name),
                    platform: crate::image::index::platform_of(&built[*i]).to_string(),
                    built: Some(built[*i].entry.digest.clone()),
                    registry: None,
                    verdict: Verdict::MissingInTheRegistry,
                    explanation: Vec::new(),
                })
                .collect(),
        };
        report.platforms.extend(lines);
    }
    Ok(report)
}

/// What one comparison needs: the plan and its images built, the registry, the options.
struct Compare<'a> {
    plan: &'a Plan,
    built: &'a [Image],
    shared: &'a SharedFetcher,
    against: &'a AgainstOptions,
}

impl Compare<'_> {
    /// The lines of one image the registry serves (`top`, under `reference`) against the
    /// layouts it should be (`(arch, index in the plan's targets)`), of an entry that
    /// declares the platforms `declared`; `who` (entry, tag) with `[[images]]`.
    fn image(
        &self,
        reference: &Reference,
        top: &FetchedManifest,
        layouts: &[(String, usize)],
        declared: &[Platform],
        who: Option<(&str, &str)>,
    ) -> Result<Vec<PlatformCheck>> {
        let shared = self.shared;
        let served: Vec<Served> = if top.kind.is_index() {
            crate::pull::listed(top)?
                .into_iter()
                .map(|d| Served {
                    platform: d.platform.clone(),
                    descriptor: d,
                    bytes: None,
                })
                .collect()
        } else {
            let m: Manifest = decode(&top.bytes, "manifest", &top.digest)?;
            let config = shared.with(|f| f.blob_to_vec(&m.config, MAX_JSON))?;
            vec![Served {
                descriptor: top.descriptor(),
                platform: crate::pull::config_platform(&config),
                bytes: Some(top.bytes.clone()),
            }]
        };
        let label = |what: &str| match who {
            Some((image, _)) => format!("{image} {what}"),
            None => what.to_string(),
        };
        let line = |label: String, platform: String, verdict: Verdict| PlatformCheck {
            image: who.map(|(i, _)| i.to_string()),
            tag: who.map(|(_, t)| t.to_string()),
            label,
            platform,
            built: None,
            registry: None,
            verdict,
            explanation: Vec::new(),
        };
        let mut used = vec![false; served.len()];
        let mut platforms = Vec::new();
        for (arch, i) in layouts {
            let (t, img) = (&self.plan.targets[*i], &self.built[*i]);
            let platform = crate::image::index::platform_of(img);
            let found = served.iter().enumerate().position(|(i, s)| {
                !used[i]
                    && !is_attestation(&s.descriptor)
                    && s.platform.as_ref().is_some_and(|p| p.matches(&platform))
            });
            let mut check = line(
                label(arch),
                platform.to_string(),
                Verdict::MissingInTheRegistry,
            );
            check.built = Some(img.entry.digest.clone());
            if let Some(i) = found {
                used[i] = true;
                let s = &served[i];
                check.registry = Some(s.descriptor.digest.clone());
                check.verdict = if s.descriptor.digest == img.entry.digest {
                    Verdict::Identical
                } else {
                    Verdict::Different {
                        first: first_difference(shared, s, img),
                    }
                };
                if self.against.explain && check.verdict != Verdict::Identical {
                    check.explanation = explain(
                        self.plan,
                        &t.spec,
                        reference,
                        &self.against.fetch,
                        &s.descriptor.digest,
                    );
                }
            }
            platforms.push(check);
        }
        for (s, _) in served.iter().zip(&used).filter(|(_, used)| !**used) {
            // The registry's words: escaped before they reach a terminal.
            let platform = s
                .platform
                .as_ref()
                .map_or("(no platform)".to_string(), |p| {
                    crate::show::text(&p.to_string())
                });
            let verdict = match &s.platform {
                _ if is_attestation(&s.descriptor) => Verdict::NotBuiltHere {
                    why: "an attestation manifest".into(),
                },
                Some(p) if p.os != "linux" => Verdict::NotBuiltHere {
                    why: format!("{} is not built as a layout", crate::show::text(&p.os)),
                },
                Some(p)
                    if declared.iter().any(|d| d.matches(p))
                        && !layouts
                            .iter()
                            .any(|(_, i)| self.plan.targets[*i].spec.platform.matches(p)) =>
                {
                    Verdict::NotBuiltHere {
                        why: "an architecture of the project, not selected".into(),
                    }
                }
                _ => Verdict::ExtraInTheRegistry,
            };
            let mut check = line(label(&platform), platform, verdict);
            check.registry = Some(s.descriptor.digest.clone());
            platforms.push(check);
        }
        Ok(platforms)
    }
}

/// A registry document decoded as the rules decode documents (properties ocipack does not
/// know are ignored, as the image spec requires; `verify` names them).
fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8], what: &str, digest: &Digest) -> Result<T> {
    crate::image::rules::docs::decode_lenient(bytes).map_err(|e| {
        Error::input(
            format!("the registry's {what} {digest}"),
            format!("is not one ocipack reads: {e}"),
        )
    })
}

/// The first (most specific) difference between the registry's image `s` and the build's
/// `img`, from their documents alone: the registry's manifest and config are fetched (each
/// checked against its digest), no layer is.
fn first_difference(shared: &SharedFetcher, s: &Served, img: &Image) -> String {
    let remote = match remote_image(shared, s) {
        Ok(r) => r,
        Err(e) => return e.to_string(),
    };
    let differences = diff::diff_documents(&remote, img);
    match differences.first() {
        Some(d) => d.to_string(),
        None => format!(
            "manifest {} → {} (the same documents in other bytes)",
            s.descriptor.digest, img.entry.digest
        ),
    }
}

/// The registry's image `s`: its manifest and config, its blobs left where they are.
fn remote_image(shared: &SharedFetcher, s: &Served) -> Result<Image> {
    let bytes = match &s.bytes {
        Some(b) => b.clone(),
        None => shared.with(|f| f.manifest_for(&s.descriptor))?.bytes,
    };
    let manifest: Manifest = decode(&bytes, "manifest", &s.descriptor.digest)?;
    let config_bytes = shared.with(|f| f.blob_to_vec(&manifest.config, MAX_JSON))?;
    let config: ImageConfig = decode(&config_bytes, "config", &manifest.config.digest)?;
    Ok(Image::with_blobs(
        s.descriptor.clone(),
        Doc {
            value: Arc::new(manifest),
            bytes: bytes.into(),
        },
        Doc {
            value: Arc::new(config),
            bytes: config_bytes.into(),
        },
        Some(Blobs::Remote(Arc::new(shared.clone()))),
    ))
}

/// Every difference between the registry's manifest `digest` and the build of `spec`, as
/// `ocipack diff` explains them (registry first): the build is staged beside a name in the
/// project directory (removed at once), the registry's layers that differ are fetched.
fn explain(
    plan: &Plan,
    spec: &image::ImageSpec,
    reference: &Reference,
    fetch: &FetchOptions,
    digest: &Digest,
) -> Vec<String> {
    let run = || -> Result<Vec<Difference>> {
        let target = Target::beneath(&plan.root, ".ocipack-against", false, "the staged build")?;
        let (writer, _) = image::prepare_image(spec, &target, None)?;
        let staged = writer.stage()?;
        let by_digest = Reference {
            tag: None,
            digest: Some(digest.clone()),
            ..reference.clone()
        };
        let registry = Source::Registry(by_digest, fetch.clone());
        diff::diff_sources(
            &registry,
            &Source::Layout(staged.path()),
            &DiffOptions::default(),
        )
    };
    match run() {
        Ok(d) => d.iter().map(ToString::to_string).collect(),
        Err(e) => vec![format!("cannot compare: {e}")],
    }
}
