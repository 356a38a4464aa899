//! `ocipack pull REF OUT`: what a registry serves, copied into a layout digest for digest.
//!
//! Contract:
//!
//! - **The same bytes.** Every manifest, index, config and layer is written exactly as the
//!   registry served it: the same blobs, byte for byte, and the same manifest and index
//!   digests as `skopeo copy --preserve-digests` (`--all` for an index). A Docker v2
//!   manifest or manifest list stays one (skopeo cannot write a Docker list into a
//!   layout; ocipack can, and `verify` accepts it). Only `index.json` and the readable
//!   names are ocipack's own.
//! - **Verified while it streams.** Documents come through the read client
//!   ([`crate::registry::fetch`]), which checks each against its digest, size and media type;
//!   each blob streams through [`Verified`] into an anonymous file, so content whose size or
//!   digest is wrong never becomes a blob of the layout. A registry that lies is an error,
//!   and nothing is written. Each document and blob is fetched once, however often it is
//!   listed (an index may list one manifest thousands of times).
//! - **Atomically, like every output.** The layout is assembled by the layout writer build
//!   uses ([`LayoutWriter`]) and swapped into place once complete; an existing layout at
//!   `OUT` is replaced only by a complete new one (and not touched when it already holds
//!   these bytes); nothing is written outside `OUT` but its staging, which an error or a
//!   signal removes.
//! - **The layout's shape.** One manifest (or one platform of an index, `--platform`) →
//!   a single-image layout: `index.json` lists the manifest with its platform, readable
//!   names as `ocipack image --names` writes them (`image-manifest.json`,
//!   `image-config.json`, `rootfs.tar.gz`, or `rootfs-1.tar.gz`, `rootfs-2.tar.gz`, … for
//!   several layers). An index → the nested multi-platform layout `build --index` writes:
//!   `index.json` lists the index (stored as a blob, `image-index.json`), every manifest it
//!   lists is pulled with its blobs (attestation manifests too: an index whose manifests
//!   are missing is not the same index), and each image of a bashbrew architecture gets its
//!   readable names in a directory of that name (`amd64/rootfs.tar.gz`), as symlinks.
//! - **Foreign layers stay where they are.** A foreign (non-distributable) layer, whose
//!   content is at its `urls` and which registries do not serve (old Windows base layers),
//!   is neither fetched nor asked for: the manifest lists it, the layout holds no blob of it
//!   (`verify` notes that it cannot check it), exactly as `skopeo copy --preserve-digests`
//!   leaves it, and the report names it.

use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::digest::{Algorithm, Digest};
use crate::error::{Error, Result};
use crate::image::blob::Verified;
use crate::image::build::{CONFIG_FILE_NAME, MANIFEST_FILE_NAME};
use crate::image::index::INDEX_FILE_NAME;
use crate::image::rules::is_attestation;
use crate::image::write::{LayoutWriter, NameStyle, Written};
use crate::media::{self, Compression};
use crate::platform::Platform;
use crate::registry::Reference;
use crate::registry::fetch::{FetchOptions, FetchedManifest, Fetcher, ManifestKind, SharedFetcher};
use crate::spec::Descriptor;
use crate::store::root::{Follow, Root};
use crate::store::staging::{Existing, Target};

/// How to pull.
#[derive(Debug, Clone, Default)]
pub struct PullOptions {
    /// How to read from the registry.
    pub fetch: FetchOptions,
    /// Of an index, pull only the image for this platform (and how it was named:
    /// `--arch amd64`), as a single-image layout.
    pub platform: Option<(Platform, String)>,
    /// How readable names relate to the blobs (an index's are always symlinks).
    pub names: NameStyle,
}

/// One manifest pulled.
#[derive(Debug, Clone, Serialize)]
pub struct PulledManifest {
    /// Its media type.
    #[serde(rename = "mediaType")]
    pub media_type: String,
    /// Its digest.
    pub digest: Digest,
    /// Its platform, as the index lists it (or its config declares it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// True for an attestation manifest (provenance, SBOM) rather than an image.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub attestation: bool,
}

/// A foreign layer a pull left where it is (as `skopeo copy` does): its content is not the
/// registry's to serve, and ocipack never fetches it from its `urls`.
#[derive(Debug, Clone, Serialize)]
pub struct ForeignLayer {
    /// Its digest (the layout holds no blob of it).
    pub digest: Digest,
    /// The hosts its `urls` name, escaped (the first few, then a count).
    pub hosts: Vec<String>,
}

/// What a pull wrote.
#[derive(Debug, Clone, Serialize)]
pub struct PullReport {
    /// The reference pulled, as skopeo spells it.
    pub reference: String,
    /// The media type of what `index.json` lists.
    #[serde(rename = "mediaType")]
    pub media_type: String,
    /// Its digest: the registry's manifest or index digest.
    pub digest: Digest,
    /// The manifests pulled (one, or each one the index lists).
    pub manifests: Vec<PulledManifest>,
    /// Distinct blobs in the layout, documents included.
    pub blobs: usize,
    /// Their total size in bytes.
    pub bytes: u64,
    /// False when the layout at the output already held exactly these bytes.
    pub written: bool,
    /// The foreign layers the manifests list, which were not fetched (each once).
    #[serde(rename = "foreignLayers", skip_serializing_if = "Vec::is_empty")]
    pub foreign_layers: Vec<ForeignLayer>,
}

/// A platform as a registry's index lists it or a config declares it, read leniently
/// (Docker lists may carry fields the OCI spec does not have, such as `features`).
#[derive(Debug, Clone, Deserialize)]
struct ListedPlatform {
    #[serde(default)]
    os: String,
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    variant: Option<String>,
    #[serde(rename = "os.version", default)]
    os_version: Option<String>,
    #[serde(rename = "os.features", default)]
    os_features: Option<Vec<String>>,
}

impl ListedPlatform {
    fn platform(&self) -> Platform {
        let mut p = Platform::new(&self.os, &self.architecture, self.variant.as_deref());
        p.os_version = self.os_version.clone();
        p.os_features = self.os_features.clone();
        p
    }
}

/// A descriptor of an index, read leniently.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Listed {
    media_type: String,
    digest: Digest,
    size: i64,
    #[serde(default)]
    platform: Option<ListedPlatform>,
    #[serde(default)]
    annotations: Option<std::collections::BTreeMap<String, String>>,
    #[serde(default)]
    urls: Option<Vec<String>>,
}

impl Listed {
    fn descriptor(&self) -> Descriptor {
        Descriptor {
            media_type: self.media_type.clone(),
            digest: self.digest.clone(),
            size: self.size,
            urls: self.urls.clone(),
            annotations: self.annotations.clone(),
            data: None,
            platform: self.platform.as_ref().map(ListedPlatform::platform),
            artifact_type: None,
        }
    }
}

/// The parts of an image manifest or index a pull follows, read leniently (the bytes are
/// copied as they are; `verify` judges them).
#[derive(Debug, Clone, Deserialize)]
struct Parts {
    #[serde(default)]
    manifests: Vec<Listed>,
    #[serde(default)]
    config: Option<Listed>,
    #[serde(default)]
    layers: Vec<Listed>,
}

/// Pulls what `reference` names into a layout at `out` (see the module documentation).
pub fn pull(reference: &Reference, out: &Path, opts: &PullOptions) -> Result<PullReport> {
    let target = Target::at_path(out)?;
    let mut writer = LayoutWriter::new(&target)?;
    // A layout already there lends the blobs it holds (checked against their digests
    // before they are used): a pull repeated costs no download, and writes nothing.
    let previous = match target.existing()? {
        Existing::Dir(root) => Some(root.with_follow(Follow::Never)),
        _ => None,
    };
    let fetcher = Fetcher::connect(reference, &opts.fetch)?;
    let shared = SharedFetcher::new(fetcher, reference);
    let top = shared.with(|f| f.manifest(&reference.tag_or_digest()))?;
    let mut pull = Pull {
        shared: &shared,
        writer: &mut writer,
        previous,
        blobs: 0,
        bytes: 0,
        foreign: Vec::new(),
        manifests: HashMap::new(),
        configs: HashMap::new(),
    };
    let shown = crate::show::text(&reference.with_transport());
    let (entry, manifests) = if top.kind.is_index() {
        let parts = parse(&top, &shown)?;
        match &opts.platform {
            Some((want, from)) => {
                let chosen = choose(&parts.manifests, want).ok_or_else(|| {
                    Error::input(
                        shown.clone(),
                        format!("its index lists no image for {want}, which {from} means"),
                    )
                })?;
                let d = chosen.descriptor();
                let m = shared.with(|f| f.manifest_for(&d))?;
                pull.single(&m, d.platform.clone(), opts.names)?
            }
            None => pull.index(&top, &parts, &shown, opts.names)?,
        }
    } else {
        if let Some((_, from)) = &opts.platform {
            return Err(Error::input(
                shown,
                format!("is a single image, not an index to pick from with {from}"),
            ));
        }
        pull.single(&top, None, opts.names)?
    };
    let (blobs, bytes, foreign_layers) = (pull.blobs, pull.bytes, pull.foreign);
    writer.write_oci_layout()?;
    writer.write_top_index(entry.clone())?;
    let written = writer.commit()? == Written::Replaced;
    Ok(PullReport {
        reference: shown,
        media_type: entry.media_type,
        digest: entry.digest,
        manifests,
        blobs,
        bytes,
        written,
        foreign_layers,
    })
}

/// A pull in progress: the client, and the layout being assembled.
struct Pull<'a> {
    shared: &'a SharedFetcher,
    writer: &'a mut LayoutWriter,
    /// The layout the output holds now, if any.
    previous: Option<Root>,
    blobs: usize,
    bytes: u64,
    /// The foreign layers met, not fetched.
    foreign: Vec<ForeignLayer>,
    /// The manifests an index lists, pulled already, by (digest, size, media type): one
    /// listed many times is fetched once.
    manifests: HashMap<(Digest, i64, String), (FetchedManifest, Parts)>,
    /// The configs read already, by (digest, size): images sharing one fetch it once.
    configs: HashMap<(Digest, i64), Vec<u8>>,
}

impl Pull<'_> {
    /// Pulls one manifest and its blobs; names them as `names` says (in `dir`, for an
    /// image of an index). Returns `index.json`'s entry for it and what was pulled.
    fn single(
        &mut self,
        m: &FetchedManifest,
        platform: Option<Platform>,
        names: NameStyle,
    ) -> Result<(Descriptor, Vec<PulledManifest>)> {
        let shown = format!("manifest {}", m.digest);
        let parts = parse(m, &shown)?;
        let config = self.image(m, &parts, &shown)?;
        let platform = platform.or_else(|| config_platform(&config));
        let mut entry = m.descriptor();
        entry.platform = platform.clone();
        self.name_image(names, "", m, &parts)?;
        Ok((
            entry,
            vec![PulledManifest {
                media_type: m.media_type().to_string(),
                digest: m.digest.clone(),
                platform: platform.map(|p| p.to_string()),
                attestation: false,
            }],
        ))
    }

    /// Pulls an index, every manifest it lists and their blobs.
    fn index(
        &mut self,
        top: &FetchedManifest,
        parts: &Parts,
        shown: &str,
        names: NameStyle,
    ) -> Result<(Descriptor, Vec<PulledManifest>)> {
        // As `build --index`: readable names are symlinks (crane refuses symlinked blobs).
        let style = match names {
            NameStyle::None => NameStyle::None,
            NameStyle::Symlinks | NameStyle::Files => NameStyle::Symlinks,
        };
        self.document(&top.digest, &top.bytes)?;
        let mut pulled = Vec::new();
        let mut named: Vec<&'static str> = Vec::new();
        let mut twice: Vec<&'static str> = Vec::new();
        let mut children: Vec<(&'static str, FetchedManifest, Parts)> = Vec::new();
        for listed in &parts.manifests {
            let d = listed.descriptor();
            let kind = ManifestKind::of(&d.media_type).filter(|k| !k.is_index());
            if kind.is_none() {
                return Err(Error::input(
                    shown.to_string(),
                    format!(
                        "lists {} of media type {}, which ocipack does not pull (only image \
                         manifests)",
                        d.digest,
                        crate::show::text(&d.media_type)
                    ),
                ));
            }
            // A manifest listed again (the same descriptor) is fetched and pulled once.
            let key = (d.digest.clone(), d.size, d.media_type.clone());
            let (m, mparts) = match self.manifests.get(&key) {
                Some(pulled) => pulled.clone(),
                None => {
                    let m = self.shared.with(|f| f.manifest_for(&d))?;
                    let what = format!("manifest {}", m.digest);
                    let mparts = parse(&m, &what)?;
                    self.image(&m, &mparts, &what)?;
                    self.manifests.insert(key, (m.clone(), mparts.clone()));
                    (m, mparts)
                }
            };
            let attestation = is_attestation(&d);
            let platform = d.platform.clone();
            if let Some(arch) = platform.as_ref().and_then(Platform::bashbrew_arch)
                && !attestation
            {
                if named.contains(&arch) {
                    // Listed twice: neither gets names (verify reports the index).
                    twice.push(arch);
                } else {
                    named.push(arch);
                    children.push((arch, m.clone(), mparts));
                }
            }
            pulled.push(PulledManifest {
                media_type: d.media_type.clone(),
                digest: d.digest.clone(),
                platform: platform.map(|p| p.to_string()),
                attestation,
            });
        }
        for (arch, m, mparts) in children.iter().filter(|(a, ..)| !twice.contains(a)) {
            self.name_image(style, arch, m, mparts)?;
        }
        self.writer.name_blob(style, INDEX_FILE_NAME, &top.digest)?;
        Ok((top.descriptor(), pulled))
    }

    /// Holds a manifest and pulls its config and layers; returns the config's bytes.
    fn image(&mut self, m: &FetchedManifest, parts: &Parts, shown: &str) -> Result<Vec<u8>> {
        if m.kind.is_index() {
            return Err(Error::input(
                shown.to_string(),
                "an index inside an index, which ocipack does not pull",
            ));
        }
        self.document(&m.digest, &m.bytes)?;
        let Some(config) = &parts.config else {
            return Err(Error::input(shown.to_string(), "has no config"));
        };
        let config = config.descriptor();
        let key = (config.digest.clone(), config.size);
        let read = self.configs.get(&key).cloned();
        let held = read.or_else(|| {
            let root = self.previous.as_ref()?;
            if u64::try_from(config.size).ok()? > crate::image::blob::MAX_JSON {
                return None;
            }
            crate::image::blob::open_blob(root, &config)
                .ok()?
                .read_whole(&config)
                .ok()
        });
        let bytes = match held {
            Some(b) => b,
            None => self
                .shared
                .with(|f| f.blob_to_vec(&config, crate::image::blob::MAX_JSON))?,
        };
        self.configs.insert(key, bytes.clone());
        self.document(&config.digest, &bytes)?;
        for l in &parts.layers {
            let d = l.descriptor();
            if media::foreign_layer(&d.media_type).is_some() {
                // As skopeo copy does: the manifest keeps it, the layout holds no blob of
                // it (verify notes it), and nothing is asked of its urls.
                if !self.foreign.iter().any(|f| f.digest == d.digest) {
                    let urls = d.urls.as_deref().unwrap_or_default();
                    self.foreign.push(ForeignLayer {
                        hosts: crate::registry::url::shown_hosts(urls),
                        digest: d.digest,
                    });
                }
                continue;
            }
            self.blob(&d)?;
        }
        Ok(bytes)
    }

    /// Holds a document's bytes (already checked against `digest`) as a blob.
    fn document(&mut self, digest: &Digest, bytes: &[u8]) -> Result<()> {
        if self.writer.holds(digest) {
            return Ok(());
        }
        if digest.algorithm() == Algorithm::Sha256 {
            self.writer.write_blob(bytes);
            self.blobs += 1;
            self.bytes += bytes.len() as u64;
            return Ok(());
        }
        self.blob_from(digest, bytes.len() as u64, &mut &bytes[..], false)
    }

    /// Streams a blob from the registry into the layout, verified.
    fn blob(&mut self, d: &Descriptor) -> Result<()> {
        let size = u64::try_from(d.size)
            .map_err(|_| Error::input(format!("blob {}", d.digest), "negative size"))?;
        if self.writer.holds(&d.digest) {
            return Ok(());
        }
        if let Some(mut held) = self.previous_blob(d) {
            return self.blob_from(&d.digest, size, &mut held, true);
        }
        let stream = self.shared.stream(d)?;
        let mut verified =
            Verified::new(stream, d.digest.clone(), size, format!("blob {}", d.digest));
        // Content that is not what the descriptor says is the registry's failure.
        self.blob_from(&d.digest, size, &mut verified, false)
            .map_err(|e| match e {
                Error::Input { what, problem } => Error::Remote(format!(
                    "reading from {}: {what}: {problem}",
                    self.shared_name()
                )),
                e => e,
            })
    }

    fn shared_name(&self) -> String {
        use crate::image::blob::RemoteBlobs as _;
        self.shared.name()
    }

    /// The blob `d` from the layout the output holds now: a regular file (no symlink) of
    /// exactly its size whose content hashes to its digest (read once to check, then again
    /// through the verified reader).
    fn previous_blob(&self, d: &Descriptor) -> Option<Verified<crate::image::blob::BlobReader>> {
        let root = self.previous.as_ref()?;
        let check = crate::image::blob::open_blob(root, d).ok()?;
        let mut v = check.verified(d, String::new());
        std::io::copy(&mut v, &mut std::io::sink()).ok()?;
        let what = root.shown(&d.digest.blob_path());
        Some(
            crate::image::blob::open_blob(root, d)
                .ok()?
                .verified(d, what),
        )
    }

    /// Holds `content` as the blob `digest`; `same` if the output holds these bytes there.
    fn blob_from(
        &mut self,
        digest: &Digest,
        size: u64,
        content: &mut dyn std::io::Read,
        same: bool,
    ) -> Result<()> {
        if self.writer.holds(digest) {
            return Ok(());
        }
        self.writer.copy_blob(digest, content, same)?;
        self.blobs += 1;
        self.bytes += size;
        Ok(())
    }

    /// Readable names of one image (in `dir`, unless empty): its manifest, config and
    /// layers of a known compression.
    fn name_image(
        &mut self,
        style: NameStyle,
        dir: &str,
        m: &FetchedManifest,
        parts: &Parts,
    ) -> Result<()> {
        if style == NameStyle::None {
            return Ok(());
        }
        let at = |name: &str| {
            if dir.is_empty() {
                name.to_string()
            } else {
                format!("{dir}/{name}")
            }
        };
        let mut names: Vec<(String, Digest)> = Vec::new();
        let layers: Vec<(Compression, &Digest)> = parts
            .layers
            .iter()
            .filter_map(|l| Some((Compression::from_media_type(&l.media_type)?, &l.digest)))
            .collect();
        match layers.as_slice() {
            [(c, d)] if parts.layers.len() == 1 => {
                names.push((at(c.layer_file_name()), (*d).clone()));
            }
            _ => {
                for (i, l) in parts.layers.iter().enumerate() {
                    if let Some(c) = Compression::from_media_type(&l.media_type) {
                        let ext = c.layer_file_name().trim_start_matches("rootfs");
                        names.push((at(&format!("rootfs-{}{ext}", i + 1)), l.digest.clone()));
                    }
                }
            }
        }
        if let Some(c) = &parts.config {
            names.push((at(CONFIG_FILE_NAME), c.digest.clone()));
        }
        names.push((at(MANIFEST_FILE_NAME), m.digest.clone()));
        let mut seen = std::collections::BTreeSet::new();
        for (name, digest) in names {
            // A blob named twice (two layers alike) keeps its first name under `files`.
            if style == NameStyle::Files && !seen.insert(digest.clone()) {
                continue;
            }
            self.writer.name_blob(style, &name, &digest)?;
        }
        Ok(())
    }
}

/// The parts of a manifest or index a pull follows.
fn parse(m: &FetchedManifest, shown: &str) -> Result<Parts> {
    serde_json::from_slice(&m.bytes).map_err(|e| {
        Error::input(
            shown.to_string(),
            format!("is not a {} ocipack can follow: {e}", m.kind.name()),
        )
    })
}

/// The descriptors an index or manifest list lists, read leniently (a Docker list's
/// platforms may carry fields the OCI spec does not have).
pub fn listed(m: &FetchedManifest) -> Result<Vec<Descriptor>> {
    Ok(parse(m, &format!("{} {}", m.kind.name(), m.digest))?
        .manifests
        .iter()
        .map(Listed::descriptor)
        .collect())
}

/// The platform a config declares, if it says one, with its OS version and features (a
/// Windows image's `os.version`: `index.json`'s entry must say what the config says).
pub fn config_platform(bytes: &[u8]) -> Option<Platform> {
    let c: ListedPlatform = serde_json::from_slice(bytes).ok()?;
    (!c.os.is_empty() && !c.architecture.is_empty()).then(|| c.platform())
}

/// The image of `listed` for the platform `want`: the same OS and architecture, and the
/// same variant (without one asked for, the only image of that OS and architecture).
/// Attestation manifests are no images.
fn choose<'a>(listed: &'a [Listed], want: &Platform) -> Option<&'a Listed> {
    let candidates: Vec<&Listed> = listed
        .iter()
        .filter(|l| !is_attestation(&l.descriptor()))
        .filter(|l| {
            l.platform
                .as_ref()
                .is_some_and(|p| p.os == want.os && p.architecture == want.architecture)
        })
        .collect();
    let exact = candidates.iter().find(|l| {
        l.platform.as_ref().and_then(|p| p.variant.as_deref()) == want.variant.as_deref()
    });
    match (exact, want.variant.as_deref(), candidates.as_slice()) {
        (Some(l), ..) => Some(l),
        (None, None, [only]) => Some(only),
        _ => None,
    }
}
