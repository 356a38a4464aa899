//! `ocipack push`: images into a registry, byte for byte.
//!
//! This module sends what it is given: images that the caller opened and verified (the
//! command line and `ocipack push DIR` verify each layout whole first, through
//! `verify::open`, which sits above this client). It never reads a layout itself; blobs come
//! only through the model's verified reader ([`Image::open_blob`]).
//!
//! One path for every push. A single image ([`push_image`]): for each blob (layers, base
//! first, then the config) ask the registry whether it has it (`HEAD`) and upload it if not;
//! only then `PUT` the manifest, by tag (or digest), then under each extra tag. Several
//! platforms' images and the image index listing them ([`push_index`]), or several indexes
//! each under tags of its own (a project's entries: [`push_indexes`]): each image's blobs,
//! then its manifest **by digest** (skipped when the registry has it: `HEAD`), and only
//! after every image, each index under its tags. No manifest is sent before every blob it
//! references is in place, and no tag before every manifest: a failure at any step leaves
//! no tag pointing at an incomplete image or at an index with missing children (registries
//! refuse such an index anyway: `MANIFEST_BLOB_UNKNOWN`).
//!
//! Blobs are streamed exactly as stored (never recompressed), through a
//! reader that verifies size and digest and withholds the last bytes of wrong content.
//! Uploads are monolithic (`POST` then one `PUT` with the whole blob) unless a chunk size is
//! given, or the registry answers the monolithic `PUT` with 413 Payload Too Large: then the
//! blob goes in `PATCH` chunks and a final `PUT`.

use std::fs::File;
use std::time::Duration;

use serde::Serialize;
use ureq::http::StatusCode;

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::image::{Doc, Image};
use crate::platform::Platform;
use crate::spec::{Descriptor, Index};

use super::auth::Credentials;
use super::client::{Body, Client};
use super::docker::{self, Source};
use super::reference::{Reference, valid_tag};
use super::tls::{TlsOptions, Trust};

/// Chunk size used after a registry refused a monolithic upload.
pub const FALLBACK_CHUNK_SIZE: u64 = 16 * 1024 * 1024;

/// How to push.
#[derive(Debug, Clone)]
pub struct PushOptions {
    /// More tags to put the manifest under, after the reference's own.
    pub also_tags: Vec<String>,
    /// Allow plain HTTP for a registry that is not on loopback (loopback always uses it).
    pub plain_http: bool,
    /// Credentials; `None`: those the Docker config file gives for the registry (its
    /// credential helper, or its `auths` entry), if any.
    pub credentials: Option<Credentials>,
    /// Upload every blob in `PATCH` chunks of this many bytes instead of one `PUT`.
    pub chunk_size: Option<u64>,
    /// Longest wait for any single read or write on the network, and the deadline for each
    /// answer (see the `client` module: requests without a blob must be complete within it;
    /// a blob upload may run as long as data flows, then its answer gets this long for the
    /// head and again for the body).
    pub timeout: Duration,
    /// TLS trust (`--ca-cert`, `--tls-verify`; see the `tls` module).
    pub tls: TlsOptions,
}

impl Default for PushOptions {
    fn default() -> Self {
        PushOptions {
            also_tags: Vec::new(),
            plain_http: false,
            credentials: None,
            chunk_size: None,
            timeout: Duration::from_secs(300),
            tls: TlsOptions::default(),
        }
    }
}

/// One blob of a push.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PushedBlob {
    /// The blob's digest.
    pub digest: Digest,
    /// Its size.
    pub size: u64,
    /// True if it was uploaded, false if the registry already had it.
    pub uploaded: bool,
}

/// What a push did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PushReport {
    /// `registry/repository`.
    pub repository: String,
    /// The manifest digest, equal to the one in the layout's `index.json`.
    pub digest: Digest,
    /// The tags now pointing at it, in the order they were set.
    pub tags: Vec<String>,
    /// Every blob, in push order.
    pub blobs: Vec<PushedBlob>,
}

/// One image of a multi-platform push.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PushedManifest {
    /// Its bashbrew architecture name, when its platform has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
    /// Its platform, as the index lists it.
    pub platform: Platform,
    /// The manifest digest.
    pub digest: Digest,
    /// The manifest size.
    pub size: u64,
    /// True if the manifest was put, false if the registry already had it.
    pub uploaded: bool,
    /// Its blobs, in push order.
    pub blobs: Vec<PushedBlob>,
}

/// What a multi-platform push did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IndexPushReport {
    /// `registry/repository`.
    pub repository: String,
    /// The image index digest.
    pub digest: Digest,
    /// Its media type.
    #[serde(rename = "mediaType")]
    pub media_type: String,
    /// Its size.
    pub size: u64,
    /// The tags now pointing at it, in the order they were set.
    pub tags: Vec<String>,
    /// Every image, in the index's order.
    pub manifests: Vec<PushedManifest>,
}

/// What `ocipack push LAYOUT` pushed: the layout's single image, or its image index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pushed {
    /// A single image.
    Image(PushReport),
    /// An image index and its images.
    Index(IndexPushReport),
}

/// The images a push receives were verified by the caller; blobs read during the upload
/// are still checked as they stream (`Verified`): a file changed after verification fails
/// the push before the registry completes the blob. Tests change one at this moment.
fn after_verify() {
    crate::store::hook::test_hook("OCIPACK_TEST_HOOK_AFTER_VERIFY");
}

/// Pushes `image` (opened and verified by the caller) to `reference`: its blobs, then its
/// manifest under each tag (by digest when there is none).
pub fn push_image(image: &Image, reference: &Reference, opts: &PushOptions) -> Result<PushReport> {
    after_verify();
    let digest = image.entry.digest.clone();
    let (mut s, tags) = Session::start(reference, opts, &digest, "the layout's manifest")?;
    let blobs = s.push_blobs(image)?;
    let manifest = Manifest::of(image);
    // The manifest goes last: by digest when the reference has no tag, then under each tag.
    if tags.is_empty() {
        s.put_manifest(&manifest, &digest.to_string())?;
    }
    for t in &tags {
        s.put_manifest(&manifest, t)?;
    }
    Ok(PushReport {
        repository: reference.name(),
        digest,
        tags,
        blobs,
    })
}

/// Pushes several platforms' images (opened and verified by the caller) and then the image
/// index `index` (media type `media_type`) listing them, under each tag of `reference` (by
/// digest when there is none). Each image's blobs go first, then its manifest by digest
/// unless the registry has it; the index is put only after every image is in place. `index`
/// must list exactly `images`' manifests.
pub fn push_index(
    index: &Doc<Index>,
    media_type: &str,
    images: &[Image],
    reference: &Reference,
    opts: &PushOptions,
) -> Result<IndexPushReport> {
    after_verify();
    for d in &index.value.manifests {
        if !images.iter().any(|i| i.entry.digest == d.digest) {
            return Err(Error::internal(format!(
                "the image index lists {}, which is not among the images pushed",
                d.digest
            )));
        }
    }
    let digest = index.digest();
    let (mut s, tags) = Session::start(reference, opts, &digest, "the image index")?;
    let mut manifests: Vec<PushedManifest> = Vec::new();
    for image in images {
        manifests.push(s.push_child(image)?);
    }
    let top = Manifest {
        bytes: &index.bytes,
        media_type,
        digest: &digest,
    };
    if tags.is_empty() {
        s.put_manifest(&top, &digest.to_string())?;
    }
    for t in &tags {
        s.put_manifest(&top, t)?;
    }
    Ok(IndexPushReport {
        repository: reference.name(),
        digest,
        media_type: media_type.to_string(),
        size: index.bytes.len() as u64,
        tags,
        manifests,
    })
}

/// One image index of a push of several ([`push_indexes`]) and the tags it goes under.
#[derive(Debug, Clone)]
pub struct TaggedIndex {
    /// The image index.
    pub index: Doc<Index>,
    /// Its media type.
    pub media_type: String,
    /// The tags to put it under, in order (at least one).
    pub tags: Vec<String>,
}

/// One image index of a push of several, as pushed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PushedIndex {
    /// The image index digest.
    pub digest: Digest,
    /// Its media type.
    #[serde(rename = "mediaType")]
    pub media_type: String,
    /// Its size.
    pub size: u64,
    /// The tags now pointing at it, in the order they were set.
    pub tags: Vec<String>,
}

/// What a push of several image indexes did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IndexesPushReport {
    /// `registry/repository`.
    pub repository: String,
    /// Every image, each once, in push order.
    pub manifests: Vec<PushedManifest>,
    /// Every image index, in push order.
    pub indexes: Vec<PushedIndex>,
}

/// Pushes `images` (opened and verified by the caller; each once) and then the image
/// indexes listing them, each under its tags, into the repository of `reference` (which
/// names no tag or digest of its own: the tags are the indexes'). Children first, tags
/// last: every image's blobs and its manifest by digest (skipped when the registry has
/// it), and only after every image, each index under each of its tags. Every index must
/// list only manifests of `images`.
pub fn push_indexes(
    indexes: &[TaggedIndex],
    images: &[Image],
    reference: &Reference,
    opts: &PushOptions,
) -> Result<IndexesPushReport> {
    after_verify();
    for t in indexes {
        for d in &t.index.value.manifests {
            if !images.iter().any(|i| i.entry.digest == d.digest) {
                return Err(Error::internal(format!(
                    "an image index lists {}, which is not among the images pushed",
                    d.digest
                )));
            }
        }
        if t.tags.is_empty() {
            return Err(Error::internal("an image index to push has no tag"));
        }
        for tag in &t.tags {
            if !valid_tag(tag) {
                return Err(Error::input(
                    format!("tag \"{}\"", crate::show::text(tag)),
                    "invalid tag: at most 128 of A-Z a-z 0-9 _ . -, not starting with . or -",
                ));
            }
        }
    }
    if reference.digest.is_some() || !opts.also_tags.is_empty() {
        return Err(Error::internal(
            "a push of several image indexes takes its tags from them",
        ));
    }
    let mut s = Session::connect(reference, opts)?;
    let mut manifests: Vec<PushedManifest> = Vec::new();
    for image in images {
        if manifests.iter().any(|m| m.digest == image.entry.digest) {
            continue;
        }
        manifests.push(s.push_child(image)?);
    }
    let mut pushed = Vec::new();
    for t in indexes {
        let digest = t.index.digest();
        let top = Manifest {
            bytes: &t.index.bytes,
            media_type: &t.media_type,
            digest: &digest,
        };
        for tag in &t.tags {
            s.put_manifest(&top, tag)?;
        }
        pushed.push(PushedIndex {
            digest,
            media_type: t.media_type.clone(),
            size: t.index.bytes.len() as u64,
            tags: t.tags.clone(),
        });
    }
    Ok(IndexesPushReport {
        repository: reference.name(),
        manifests,
        indexes: pushed,
    })
}

/// A manifest or index to put: its exact bytes, media type and digest.
struct Manifest<'a> {
    bytes: &'a [u8],
    media_type: &'a str,
    digest: &'a Digest,
}

impl<'a> Manifest<'a> {
    fn of(image: &'a Image) -> Manifest<'a> {
        Manifest {
            bytes: &image.manifest.bytes,
            media_type: &image.entry.media_type,
            digest: &image.entry.digest,
        }
    }
}

/// One push to one repository: the client and how to upload.
struct Session {
    client: Client,
    chunk_size: Option<u64>,
}

impl Session {
    /// Checks the options and the reference against `digest` (`what` names it), reads the
    /// Docker config file, and connects; returns the tags to put, in order.
    fn start(
        reference: &Reference,
        opts: &PushOptions,
        digest: &Digest,
        what: &str,
    ) -> Result<(Session, Vec<String>)> {
        if let Some(d) = &reference.digest
            && d != digest
        {
            return Err(Error::usage(format!(
                "the reference names digest {d}, but {what} is {digest}"
            )));
        }
        let mut tags: Vec<String> = reference.tag.iter().cloned().collect();
        for t in &opts.also_tags {
            if !valid_tag(t) {
                return Err(Error::input(
                    format!("--also-tag \"{}\"", crate::show::text(t)),
                    "invalid tag: at most 128 of A-Z a-z 0-9 _ . -, not starting with . or -",
                ));
            }
            if !tags.contains(t) {
                tags.push(t.clone());
            }
        }
        Ok((Session::connect(reference, opts)?, tags))
    }

    /// Checks the options, reads the Docker config file, and connects to the registry of
    /// `reference`.
    fn connect(reference: &Reference, opts: &PushOptions) -> Result<Session> {
        if opts.chunk_size == Some(0) {
            return Err(Error::usage("--chunk-size must be at least 1"));
        }
        // The Docker config file is read and checked before anything is sent; a credential
        // helper it names runs only if the registry asks for credentials.
        let source = match &opts.credentials {
            Some(c) => Source::Stored(Some(c.clone())),
            None => docker::source_for(&reference.registry)?,
        };
        let trust = Trust::for_registry(&reference.registry, &opts.tls)?;
        let mut client = match source {
            Source::Stored(c) => Client::new(reference, opts.plain_http, c, opts.timeout, &trust),
            Source::Helper(name) => {
                let mut client =
                    Client::new(reference, opts.plain_http, None, opts.timeout, &trust);
                client.use_helper(&name, docker::server_key(&reference.registry));
                client
            }
        };
        client.settle_scheme();
        Ok(Session {
            client,
            chunk_size: opts.chunk_size,
        })
    }

    /// One image of an image index: its blobs, then its manifest by digest unless the
    /// registry has it.
    fn push_child(&mut self, image: &Image) -> Result<PushedManifest> {
        let blobs = self.push_blobs(image)?;
        let manifest = Manifest::of(image);
        let uploaded = if self.manifest_exists(&manifest)? {
            false
        } else {
            self.put_manifest(&manifest, &image.entry.digest.to_string())?;
            true
        };
        let platform = crate::image::index::platform_of(image);
        Ok(PushedManifest {
            arch: platform.bashbrew_arch().map(str::to_string),
            platform,
            digest: image.entry.digest.clone(),
            size: manifest.bytes.len() as u64,
            uploaded,
            blobs,
        })
    }

    /// Every blob of `image` the registry lacks, uploaded; the others found (`HEAD`).
    fn push_blobs(&mut self, image: &Image) -> Result<Vec<PushedBlob>> {
        let mut blobs = Vec::new();
        for d in image.blobs() {
            // Sizes were checked by the reader's rules: never negative.
            let size = u64::try_from(d.size).unwrap_or_default();
            let uploaded = if blob_exists(&mut self.client, d)? {
                false
            } else {
                upload_blob(&mut self.client, image, d, self.chunk_size)?;
                true
            };
            blobs.push(PushedBlob {
                digest: d.digest.clone(),
                size,
                uploaded,
            });
        }
        Ok(blobs)
    }

    /// `HEAD …/manifests/DIGEST`: whether the repository has the manifest.
    fn manifest_exists(&mut self, m: &Manifest<'_>) -> Result<bool> {
        let step = format!("checking manifest {}", m.digest);
        let url = self.client.url(&format!("manifests/{}", m.digest));
        let mut resp = self.client.send::<File>(
            &step,
            "HEAD",
            &url,
            &[("Accept", m.media_type)],
            Body::Empty,
        )?;
        match resp.status() {
            StatusCode::OK => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(self.client.status_error(&step, &mut resp)),
        }
    }

    /// `PUT …/manifests/TAG_OR_DIGEST` with the exact bytes; the registry must store them
    /// under the same digest.
    fn put_manifest(&mut self, m: &Manifest<'_>, tag_or_digest: &str) -> Result<()> {
        let client = &mut self.client;
        let digest = m.digest;
        let step = format!("pushing manifest {digest} as {tag_or_digest}");
        let url = client.url(&format!("manifests/{tag_or_digest}"));
        let mut resp =
            client.send::<File>(&step, "PUT", &url, &[], Body::Bytes(m.bytes, m.media_type))?;
        if !resp.status().is_success() {
            return Err(client.status_error(&step, &mut resp));
        }
        if let Some(stored) = resp
            .headers()
            .get("Docker-Content-Digest")
            .and_then(|v| v.to_str().ok())
            && stored != digest.to_string()
        {
            return Err(client.fail(
                &step,
                &format!("the registry stored the manifest as {stored}, not as {digest}"),
            ));
        }
        Ok(())
    }
}

fn blob_exists(client: &mut Client, d: &Descriptor) -> Result<bool> {
    let step = format!("checking blob {}", d.digest);
    let url = client.url(&format!("blobs/{}", d.digest));
    let mut resp = client.send::<File>(&step, "HEAD", &url, &[], Body::Empty)?;
    match resp.status() {
        StatusCode::OK => Ok(true),
        StatusCode::NOT_FOUND => Ok(false),
        _ => Err(client.status_error(&step, &mut resp)),
    }
}

/// `url` with `digest=` added to its query.
fn with_digest(url: &str, digest: &Digest) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}digest={digest}")
}

fn location(
    client: &Client,
    step: &str,
    resp: &ureq::http::Response<ureq::Body>,
) -> Result<String> {
    resp.headers()
        .get("Location")
        .and_then(|v| v.to_str().ok())
        .map(|l| client.resolve(l))
        .ok_or_else(|| client.fail(step, "the registry's answer has no Location header"))
}

/// `POST …/blobs/uploads/`: the upload URL and the registry's minimum chunk size, if any.
fn start_upload(client: &mut Client, d: &Descriptor) -> Result<(String, u64)> {
    let step = format!("starting the upload of blob {}", d.digest);
    let url = client.url("blobs/uploads/");
    let mut resp = client.send::<File>(&step, "POST", &url, &[], Body::Empty)?;
    if resp.status() != StatusCode::ACCEPTED {
        return Err(client.status_error(&step, &mut resp));
    }
    let min_chunk = resp
        .headers()
        .get("OCI-Chunk-Min-Length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    Ok((location(client, &step, &resp)?, min_chunk))
}

fn upload_blob(
    client: &mut Client,
    image: &Image,
    d: &Descriptor,
    chunk_size: Option<u64>,
) -> Result<()> {
    match chunk_size {
        Some(n) => upload_chunked(client, image, d, n),
        None => {
            if upload_monolithic(client, image, d)? {
                Ok(())
            } else {
                upload_chunked(client, image, d, FALLBACK_CHUNK_SIZE)
            }
        }
    }
}

/// One `PUT` with the whole blob; false if the registry refused it as too large.
fn upload_monolithic(client: &mut Client, image: &Image, d: &Descriptor) -> Result<bool> {
    let (upload, _) = start_upload(client, d)?;
    let step = format!("uploading blob {}", d.digest);
    let mut reader = image.open_blob(d)?;
    let size = reader.size();
    let url = with_digest(&upload, &d.digest);
    let mut resp = client.send(&step, "PUT", &url, &[], Body::Stream(&mut reader, size))?;
    match resp.status() {
        StatusCode::CREATED => Ok(true),
        StatusCode::PAYLOAD_TOO_LARGE => {
            // Best effort: cancel the refused session before starting a chunked one.
            let _ = client.send::<File>(&step, "DELETE", &upload, &[], Body::Empty);
            Ok(false)
        }
        _ => Err(client.status_error(&step, &mut resp)),
    }
}

/// `PATCH` chunks of `chunk` bytes (at least the registry's minimum), then the final `PUT`.
fn upload_chunked(client: &mut Client, image: &Image, d: &Descriptor, chunk: u64) -> Result<()> {
    let (mut upload, min_chunk) = start_upload(client, d)?;
    let chunk = chunk.max(min_chunk).max(1);
    let mut reader = image.open_blob(d)?;
    let size = reader.size();
    let mut offset = 0;
    while offset < size {
        let n = chunk.min(size - offset);
        let step = format!(
            "uploading blob {} (bytes {offset}-{} of {size})",
            d.digest,
            offset + n - 1
        );
        let range = format!("{offset}-{}", offset + n - 1);
        let mut resp = client.send(
            &step,
            "PATCH",
            &upload,
            &[("Content-Range", range.as_str())],
            Body::Stream(&mut reader, n),
        )?;
        if resp.status() != StatusCode::ACCEPTED {
            return Err(client.status_error(&step, &mut resp));
        }
        upload = location(client, &step, &resp)?;
        offset += n;
    }
    let step = format!("finishing the upload of blob {}", d.digest);
    reader
        .check()
        .map_err(|e| client.fail(&step, &e.to_string()))?;
    let url = with_digest(&upload, &d.digest);
    let mut resp = client.send::<File>(&step, "PUT", &url, &[], Body::Empty)?;
    if resp.status() != StatusCode::CREATED {
        return Err(client.status_error(&step, &mut resp));
    }
    Ok(())
}
