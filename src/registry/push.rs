//! `ocipack push`: the layout's image into a registry, byte for byte.
//!
//! Order of work: read and verify the layout's index, manifest and config; for each blob
//! (layers, base first, then the config) ask the registry whether it has it (`HEAD`) and
//! upload it if not; only then `PUT` the manifest, by tag (or digest), then under each
//! extra tag. A failure at any step leaves no tag pointing at an incomplete image, because
//! no manifest is sent before every blob it references is in place.
//!
//! Blobs are streamed from their files exactly as stored (never recompressed), through a
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
use crate::image::Image;
use crate::image::blob::Verified;
use crate::spec::Descriptor;

use super::auth::Credentials;
use super::client::{Body, Client};
use super::docker::{self, Source};
use super::reference::{Reference, valid_tag};

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
}

impl Default for PushOptions {
    fn default() -> Self {
        PushOptions {
            also_tags: Vec::new(),
            plain_http: false,
            credentials: None,
            chunk_size: None,
            timeout: Duration::from_secs(300),
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

/// Pushes the single image of the layout at `layout` to `reference`.
pub fn push(
    layout: &std::path::Path,
    reference: &Reference,
    opts: &PushOptions,
) -> Result<PushReport> {
    // The whole layout is verified before anything is sent: a layout `verify` refuses is
    // never uploaded.
    let image = crate::verify::read_valid(layout, None, false)?.image;
    // Blobs read during the upload are still checked as they stream (`Verified`): a file
    // changed after this point fails the push before the registry completes the blob.
    crate::store::output::test_hook("OCIPACK_TEST_HOOK_AFTER_VERIFY");
    let digest = image.entry.digest.clone();
    if let Some(d) = &reference.digest
        && *d != digest
    {
        return Err(Error::usage(format!(
            "the reference names digest {d}, but the layout's manifest is {digest}"
        )));
    }
    let mut tags: Vec<String> = reference.tag.iter().cloned().collect();
    for t in &opts.also_tags {
        if !valid_tag(t) {
            return Err(Error::input(
                format!("--also-tag {t:?}"),
                "invalid tag: at most 128 of A-Z a-z 0-9 _ . -, not starting with . or -",
            ));
        }
        if !tags.contains(t) {
            tags.push(t.clone());
        }
    }
    if opts.chunk_size == Some(0) {
        return Err(Error::usage("--chunk-size must be at least 1"));
    }
    // The Docker config file is read and checked before anything is sent; a credential
    // helper it names runs only if the registry asks for credentials.
    let source = match &opts.credentials {
        Some(c) => Source::Stored(Some(c.clone())),
        None => docker::source_for(&reference.registry)?,
    };
    let mut client = match source {
        Source::Stored(c) => Client::new(reference, opts.plain_http, c, opts.timeout),
        Source::Helper(name) => {
            let mut client = Client::new(reference, opts.plain_http, None, opts.timeout);
            client.use_helper(&name, docker::server_key(&reference.registry));
            client
        }
    };

    let mut blobs = Vec::new();
    for d in image.blobs() {
        // Sizes were checked by the reader's rules: never negative.
        let size = u64::try_from(d.size).unwrap_or_default();
        let uploaded = if blob_exists(&mut client, d)? {
            false
        } else {
            upload_blob(&mut client, &image, d, opts.chunk_size)?;
            true
        };
        blobs.push(PushedBlob {
            digest: d.digest.clone(),
            size,
            uploaded,
        });
    }
    // The manifest goes last: by digest when the reference has no tag, then under each tag.
    if tags.is_empty() {
        put_manifest(&mut client, &image, &digest.to_string())?;
    }
    for t in &tags {
        put_manifest(&mut client, &image, t)?;
    }
    Ok(PushReport {
        repository: reference.name(),
        digest,
        tags,
        blobs,
    })
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
    let mut reader: Verified<File> = image.open_blob(d)?;
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

fn put_manifest(client: &mut Client, image: &Image, tag_or_digest: &str) -> Result<()> {
    let digest = &image.entry.digest;
    let step = format!("pushing manifest {digest} as {tag_or_digest}");
    let url = client.url(&format!("manifests/{tag_or_digest}"));
    let mut resp = client.send::<File>(
        &step,
        "PUT",
        &url,
        &[],
        Body::Bytes(&image.manifest.bytes, &image.entry.media_type),
    )?;
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
