//! The read client: manifests and blobs from one repository of a registry, trusting nothing
//! the registry says about them.
//!
//! Contract ([`Fetcher`]):
//!
//! - **Content is checked, never believed.** A manifest's digest is the hash of the bytes
//!   received; asked for by digest (or through a descriptor) it must be that digest, and
//!   `Docker-Content-Digest` is ignored (registries get it wrong, and a header is no proof).
//!   A blob streams through [`Verified`], which withholds its last bytes unless size and
//!   digest match, so a caller never finishes writing wrong content.
//! - **Media types are what they are.** `Accept` lists the OCI index and manifest and the
//!   Docker v2 manifest list and manifest (with a partial list, registries answer a tag with
//!   another document, e.g. a list's child). The type is the body's `mediaType`, which must
//!   agree with `Content-Type` when both name a type, else `Content-Type`; the JSON's shape
//!   must match it (`manifests` for an index or list, `config` and `layers` for a manifest),
//!   and through a descriptor the type must be the one it declares. Docker schema 1 and
//!   anything else are refused by name. A Docker list stays a Docker list ([`ManifestKind`]).
//! - **Every size is bounded before it is read**: a manifest by [`MANIFEST_LIMIT`] (the 4 MB
//!   that registries must accept; containers/image reads no more) or by its descriptor's
//!   size, a blob by its descriptor's size; a `Content-Length` over the bound is refused
//!   before any byte of the body is read, and a body without one is cut at the bound.
//! - **One deadline** (`timeout` from [`Fetcher::connect`]) for everything the fetcher does:
//!   each request gets the time left (answer and body included), token requests too, and
//!   no retry wait outlives it. A registry that trickles or never ends an answer is stopped
//!   there.
//! - **Retries**: a 429, 500, 502, 503 or 504, or a connection reset (also in the middle
//!   of a blob, which then starts over), is retried at most [`MAX_RETRIES`] times, after
//!   `Retry-After` (seconds) when it fits in the time left, else after 1, 2, 4 s. Nothing
//!   else is retried: the registry's error is final.
//! - **Redirects are followed by hand** (at most [`MAX_HOPS`]), so that `Authorization` goes
//!   only to the registry's own scheme, host and port: a blob sent from a CDN (Docker Hub and
//!   most cloud registries answer `307` with a signed URL) gets no credential, and S3-style
//!   stores, which refuse a second auth mechanism, work. A 401 from elsewhere than the
//!   registry never triggers authentication. A redirect from https to plain http is refused
//!   unless plain HTTP is allowed (`--plain-http`, `--tls-verify=false`). Messages name a
//!   redirect target by host only (its query is a credential).
//! - **Authentication** as for push (`client.rs`): anonymous first; on the registry's 401,
//!   a bearer token for `repository:NAME:pull` (anonymous when there are no credentials,
//!   as Docker Hub gives to anyone), or basic credentials; credential helpers and identity
//!   tokens as for push. Every message goes through the client's redactor and names the
//!   registry, the repository and the step, with "(--tls-verify=false)" when it applies.

use std::fs::File;
use std::io::{self, Read, Seek, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ureq::http::{Response, StatusCode};

use crate::digest::{Digest, Hasher};
use crate::error::{Error, Result};
use crate::image::blob::{RemoteBlobs, Verified};
use crate::spec::Descriptor;

use super::auth::Credentials;
use super::client::Client;
use super::docker::{self, Source};
use super::reference::{Reference, valid_tag};
use super::tls::{TlsOptions, Trust};

/// The largest manifest or index read.
pub const MANIFEST_LIMIT: u64 = 4 * 1024 * 1024;

/// Retries after the first attempt of a request.
pub const MAX_RETRIES: u32 = 3;

/// Redirects followed for one request.
pub const MAX_HOPS: usize = 5;

/// The first wait before a retry (then doubled).
const BACKOFF: Duration = Duration::from_secs(1);

pub use crate::media::{DOCKER_MANIFEST, DOCKER_MANIFEST_LIST};
/// Docker's schema 1 manifest (refused).
const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";

/// The `Accept` header of manifest requests: every type the client reads.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.docker.distribution.manifest.v2+json";

/// What a manifest document is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManifestKind {
    /// An OCI image index.
    OciIndex,
    /// An OCI image manifest.
    OciManifest,
    /// A Docker v2 manifest list.
    DockerList,
    /// A Docker v2 image manifest.
    DockerManifest,
}

impl ManifestKind {
    /// Every kind.
    pub const ALL: [ManifestKind; 4] = [
        ManifestKind::OciIndex,
        ManifestKind::OciManifest,
        ManifestKind::DockerList,
        ManifestKind::DockerManifest,
    ];

    /// Its media type.
    pub fn media_type(self) -> &'static str {
        match self {
            ManifestKind::OciIndex => crate::media::INDEX,
            ManifestKind::OciManifest => crate::media::MANIFEST,
            ManifestKind::DockerList => DOCKER_MANIFEST_LIST,
            ManifestKind::DockerManifest => DOCKER_MANIFEST,
        }
    }

    /// The kind of a media type, if it is one of the four.
    pub fn of(media_type: &str) -> Option<ManifestKind> {
        ManifestKind::ALL
            .into_iter()
            .find(|k| k.media_type() == media_type)
    }

    /// True for an index or a list (it lists manifests).
    pub fn is_index(self) -> bool {
        matches!(self, ManifestKind::OciIndex | ManifestKind::DockerList)
    }

    /// A name for messages.
    pub fn name(self) -> &'static str {
        match self {
            ManifestKind::OciIndex => "OCI image index",
            ManifestKind::OciManifest => "OCI image manifest",
            ManifestKind::DockerList => "Docker manifest list",
            ManifestKind::DockerManifest => "Docker image manifest",
        }
    }
}

/// A manifest or index as received and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedManifest {
    /// What it is.
    pub kind: ManifestKind,
    /// The digest of its bytes.
    pub digest: Digest,
    /// Its exact bytes.
    pub bytes: Vec<u8>,
}

impl FetchedManifest {
    /// Its media type.
    pub fn media_type(&self) -> &'static str {
        self.kind.media_type()
    }

    /// A descriptor of it (media type, digest, size).
    pub fn descriptor(&self) -> Descriptor {
        Descriptor::new(
            self.kind.media_type(),
            self.digest.clone(),
            self.bytes.len() as u64,
        )
    }
}

/// How to read.
#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// Allow plain HTTP for a registry that is not on loopback.
    pub plain_http: bool,
    /// Credentials; `None`: those the Docker config file gives for the registry, if any.
    pub credentials: Option<Credentials>,
    /// The one deadline for everything the [`Fetcher`] does, from [`Fetcher::connect`].
    pub timeout: Duration,
    /// TLS trust.
    pub tls: TlsOptions,
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            plain_http: false,
            credentials: None,
            timeout: Duration::from_secs(300),
            tls: TlsOptions::default(),
        }
    }
}

/// Where a blob goes: written from the start, and started over when a transfer is retried.
/// On an error, what it holds is no blob: the caller discards it.
pub trait Sink: Write {
    /// Empties it, for a transfer that starts over.
    fn restart(&mut self) -> io::Result<()>;
}

impl Sink for Vec<u8> {
    fn restart(&mut self) -> io::Result<()> {
        self.clear();
        Ok(())
    }
}

impl Sink for File {
    fn restart(&mut self) -> io::Result<()> {
        self.set_len(0)?;
        self.rewind()
    }
}

/// A read client for one repository (see the module documentation).
pub struct Fetcher {
    client: Client,
    deadline: Instant,
    timeout: Duration,
}

/// How one attempt of a request ended.
enum Attempt {
    /// A response with a final status (not a redirect), and the URL that gave it.
    Answer(Response<ureq::Body>, String),
    /// A transport error at `url`.
    Transport(ureq::Error, String),
}

impl Fetcher {
    /// A client for `reference`'s repository; the deadline starts now. The Docker config
    /// file and the TLS files are read and checked here, before anything is sent (input
    /// errors: exit code 2); under `--tls-verify=false` the scheme is settled (one request).
    pub fn connect(reference: &Reference, opts: &FetchOptions) -> Result<Fetcher> {
        if opts.timeout.is_zero() {
            return Err(Error::usage("--timeout must be at least 1 second"));
        }
        let deadline = Instant::now() + opts.timeout;
        let trust = Trust::for_registry(&reference.registry, &opts.tls)?;
        let source = match &opts.credentials {
            Some(c) => Source::Stored(Some(c.clone())),
            None => docker::source_for(&reference.registry)?,
        };
        let mut client = match source {
            Source::Stored(c) => Client::new(reference, opts.plain_http, c, opts.timeout, &trust),
            Source::Helper(name) => {
                let mut client =
                    Client::new(reference, opts.plain_http, None, opts.timeout, &trust);
                client.use_helper(&name, docker::server_key(&reference.registry));
                client
            }
        };
        client.for_reading(deadline);
        client.settle_scheme();
        Ok(Fetcher {
            client,
            deadline,
            timeout: opts.timeout,
        })
    }

    /// The manifest or index that `tag_or_digest` names (a tag, or `sha256:…`, which the
    /// bytes must hash to).
    pub fn manifest(&mut self, tag_or_digest: &str) -> Result<FetchedManifest> {
        let expected = if tag_or_digest.contains(':') {
            let d: Digest = tag_or_digest.parse().map_err(|_| {
                Error::usage(format!(
                    "\"{}\" is neither a tag nor a digest",
                    crate::show::text(tag_or_digest)
                ))
            })?;
            Some(d)
        } else if valid_tag(tag_or_digest) {
            None
        } else {
            return Err(Error::usage(format!(
                "\"{}\" is not a valid tag",
                crate::show::text(tag_or_digest)
            )));
        };
        let step = format!("reading manifest {}", crate::show::text(tag_or_digest));
        self.read_manifest(&step, tag_or_digest, expected.as_ref(), None, None)
    }

    /// The manifest or index the tag `tag` names, or `None` when the registry answers that
    /// it has none (404: `build --check --against` reports the images it builds as missing
    /// there, rather than stopping).
    pub fn manifest_if_tagged(&mut self, tag: &str) -> Result<Option<FetchedManifest>> {
        if !valid_tag(tag) {
            return Err(Error::usage(format!(
                "\"{}\" is not a valid tag",
                crate::show::text(tag)
            )));
        }
        let step = format!("reading manifest {}", crate::show::text(tag));
        self.read_manifest_or_absent(&step, tag, None, None, None, true)
    }

    /// The manifest or index `d` describes (a child of an index): its digest, its size and
    /// its media type must be the descriptor's.
    pub fn manifest_for(&mut self, d: &Descriptor) -> Result<FetchedManifest> {
        let step = format!("reading manifest {}", d.digest);
        let Some(kind) = ManifestKind::of(&d.media_type) else {
            return Err(self.client.fail(
                &step,
                &format!(
                    "its descriptor's media type {} is not one of a manifest or index",
                    d.media_type
                ),
            ));
        };
        let size = self.descriptor_size(&step, d)?;
        if size > MANIFEST_LIMIT {
            return Err(self.client.fail(
                &step,
                &format!(
                    "its descriptor says {size} bytes, more than the {MANIFEST_LIMIT} ocipack reads"
                ),
            ));
        }
        let reference = d.digest.to_string();
        self.read_manifest(&step, &reference, Some(&d.digest), Some(size), Some(kind))
    }

    /// The blob `d` describes, written to `out` (restarted for each attempt): exactly its
    /// size, hashing to its digest, or an error (and `out` holds no blob).
    pub fn blob(&mut self, d: &Descriptor, out: &mut dyn Sink) -> Result<()> {
        let step = format!("reading blob {}", d.digest);
        let size = self.descriptor_size(&step, d)?;
        let path = format!("blobs/{}", d.digest);
        let mut transfers = 0;
        loop {
            let (mut resp, url) = self.get(&step, &path, None)?;
            if resp.status() != StatusCode::OK {
                return Err(self.client.status_error(&step, &mut resp));
            }
            let where_ = self.shown_source(&url);
            if let Some(n) = resp.body().content_length()
                && n != size
            {
                return Err(self.client.fail(
                    &step,
                    &format!("{where_}announces {n} bytes; the descriptor says {size}"),
                ));
            }
            out.restart()
                .map_err(|e| Error::io_on("starting over", format!("blob {}", d.digest), e))?;
            let body = resp
                .into_body()
                .into_with_config()
                .limit(size.saturating_add(1))
                .reader();
            let mut reader = Verified::new(
                Transport(body),
                d.digest.clone(),
                size,
                format!("what {where_}sent"),
            );
            match copy(&mut reader, out) {
                Ok(()) => return Ok(()),
                Err(CopyError::Write(e)) => {
                    return Err(Error::io_on("writing", format!("blob {}", d.digest), e));
                }
                Err(CopyError::Read(e)) => {
                    let cut = transport_error(&e).is_some_and(|t| is_reset_kind(t.kind()));
                    if cut && transfers < MAX_RETRIES && self.wait(backoff(transfers)) {
                        transfers += 1;
                        continue;
                    }
                    let why = self.read_error(&e, reader.position(), size, &where_);
                    return Err(self.client.fail(&step, &why));
                }
            }
        }
    }

    /// Opens the body of the blob `d` describes (the `GET`, its redirects, authentication
    /// and retries), bounded by the descriptor's size plus one byte; a `Content-Length`
    /// other than the size is refused here. Returns the body and who sent it (for messages).
    fn open_body(
        &mut self,
        step: &str,
        d: &Descriptor,
    ) -> Result<(ureq::BodyReader<'static>, String)> {
        let size = self.descriptor_size(step, d)?;
        let path = format!("blobs/{}", d.digest);
        let (mut resp, url) = self.get(step, &path, None)?;
        if resp.status() != StatusCode::OK {
            return Err(self.client.status_error(step, &mut resp));
        }
        let where_ = self.shown_source(&url);
        if let Some(n) = resp.body().content_length()
            && n != size
        {
            return Err(self.client.fail(
                step,
                &format!("{where_}announces {n} bytes; the descriptor says {size}"),
            ));
        }
        let body = resp
            .into_body()
            .into_with_config()
            .limit(size.saturating_add(1))
            .reader();
        Ok((body, where_))
    }

    /// The blob `d` describes, in memory (a config): at most `limit` bytes.
    pub fn blob_to_vec(&mut self, d: &Descriptor, limit: u64) -> Result<Vec<u8>> {
        let step = format!("reading blob {}", d.digest);
        let size = self.descriptor_size(&step, d)?;
        if size > limit {
            return Err(self.client.fail(
                &step,
                &format!("its descriptor says {size} bytes, more than the {limit} ocipack reads"),
            ));
        }
        let mut v = Vec::new();
        self.blob(d, &mut v)?;
        Ok(v)
    }

    /// The descriptor's size, which must not be negative.
    fn descriptor_size(&self, step: &str, d: &Descriptor) -> Result<u64> {
        u64::try_from(d.size).map_err(|_| {
            self.client.fail(
                step,
                &format!("its descriptor's size {} is negative", d.size),
            )
        })
    }

    fn read_manifest(
        &mut self,
        step: &str,
        reference: &str,
        expected: Option<&Digest>,
        size: Option<u64>,
        kind: Option<ManifestKind>,
    ) -> Result<FetchedManifest> {
        self.read_manifest_or_absent(step, reference, expected, size, kind, false)?
            .ok_or_else(|| Error::internal("a manifest asked for as present came back absent"))
    }

    /// [`Fetcher::read_manifest`]; with `absent_ok`, a 404 is `None` instead of an error.
    fn read_manifest_or_absent(
        &mut self,
        step: &str,
        reference: &str,
        expected: Option<&Digest>,
        size: Option<u64>,
        kind: Option<ManifestKind>,
        absent_ok: bool,
    ) -> Result<Option<FetchedManifest>> {
        let path = format!("manifests/{reference}");
        let (mut resp, url) = self.get(step, &path, Some(MANIFEST_ACCEPT))?;
        if absent_ok && resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if resp.status() != StatusCode::OK {
            return Err(self.client.status_error(step, &mut resp));
        }
        let where_ = self.shown_source(&url);
        let limit = size.unwrap_or(MANIFEST_LIMIT);
        let too_large = |n: Option<u64>| match (size, n) {
            (Some(s), Some(n)) => format!("{where_}announces {n} bytes; the descriptor says {s}"),
            (Some(s), None) => format!("{where_}sends more than the descriptor's {s} bytes"),
            (None, Some(n)) => {
                format!("{where_}announces {n} bytes, more than the {MANIFEST_LIMIT} ocipack reads")
            }
            (None, None) => {
                format!("{where_}sends more than the {MANIFEST_LIMIT} bytes ocipack reads")
            }
        };
        if let Some(n) = resp.body().content_length()
            && (n > limit || size.is_some_and(|s| s != n))
        {
            return Err(self.client.fail(step, &too_large(Some(n))));
        }
        let content_type = resp
            .headers()
            .get("Content-Type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let bytes = match resp.body_mut().with_config().limit(limit).read_to_vec() {
            Ok(b) => b,
            Err(ureq::Error::BodyExceedsLimit(_)) => {
                return Err(self.client.fail(step, &too_large(None)));
            }
            Err(e) => {
                let why = self.transport(e, &url);
                return Err(self.client.fail(step, &why));
            }
        };
        if let Some(s) = size
            && bytes.len() as u64 != s
        {
            return Err(self.client.fail(
                step,
                &format!(
                    "{where_}sends {} bytes; the descriptor says {s}",
                    bytes.len()
                ),
            ));
        }
        let mut h =
            Hasher::new(expected.map_or(crate::digest::Algorithm::Sha256, Digest::algorithm));
        h.update(&bytes);
        let digest = h.finish();
        if let Some(e) = expected
            && *e != digest
        {
            return Err(self.client.fail(
                step,
                &format!("{where_}sends content that hashes to {digest}, not to {e}"),
            ));
        }
        let found = manifest_kind(content_type.as_deref(), &bytes)
            .map_err(|why| self.client.fail(step, &format!("{where_}sends {why}")))?;
        if let Some(k) = kind
            && k != found
        {
            return Err(self.client.fail(
                step,
                &format!(
                    "the index lists it as {} ({}), but it is {} ({})",
                    k.name(),
                    k.media_type(),
                    found.name(),
                    found.media_type()
                ),
            ));
        }
        Ok(Some(FetchedManifest {
            kind: found,
            digest,
            bytes,
        }))
    }

    /// `GET` of `path` below the repository: redirects followed by hand, authentication on
    /// the registry's 401, retries; a response with a final status, and the URL that gave it.
    fn get(
        &mut self,
        step: &str,
        path: &str,
        accept: Option<&str>,
    ) -> Result<(Response<ureq::Body>, String)> {
        let start = self.client.url(path);
        let headers: Vec<(&str, &str)> = accept.map(|a| ("Accept", a)).into_iter().collect();
        let mut retries = 0;
        let mut authenticated = false;
        loop {
            match self.attempt(step, &start, &headers)? {
                Attempt::Answer(resp, url) => {
                    let status = resp.status().as_u16();
                    if status == 401 && !authenticated && self.client.is_registry_url(&url) {
                        authenticated = true;
                        if self.client.authenticate(step, &resp)? {
                            continue;
                        }
                    }
                    if matches!(status, 429 | 500 | 502 | 503 | 504) && retries < MAX_RETRIES {
                        let wait = retry_after(&resp).unwrap_or_else(|| backoff(retries));
                        if self.wait(wait) {
                            retries += 1;
                            continue;
                        }
                    }
                    return Ok((resp, url));
                }
                Attempt::Transport(e, url) => {
                    if is_reset(&e) && retries < MAX_RETRIES && self.wait(backoff(retries)) {
                        retries += 1;
                        continue;
                    }
                    let why = self.transport(e, &url);
                    return Err(self.client.fail(step, &why));
                }
            }
        }
    }

    /// One attempt: the request and the redirects it leads to.
    fn attempt(&self, step: &str, start: &str, headers: &[(&str, &str)]) -> Result<Attempt> {
        let mut url = start.to_string();
        for _ in 0..=MAX_HOPS {
            let resp = match self.client.call("GET", &url, headers) {
                Ok(r) => r,
                Err(e) => return Ok(Attempt::Transport(e, url)),
            };
            if !resp.status().is_redirection() || resp.status() == StatusCode::NOT_MODIFIED {
                return Ok(Attempt::Answer(resp, url));
            }
            let Some(location) = resp.headers().get("Location").and_then(|v| v.to_str().ok())
            else {
                return Err(self.client.fail(
                    step,
                    &format!("{}redirects without a Location", self.shown_source(&url)),
                ));
            };
            let Some(next) = resolve(&url, location) else {
                return Err(self.client.fail(
                    step,
                    &format!("{}redirects to an unusable URL", self.shown_source(&url)),
                ));
            };
            if url.starts_with("https://")
                && next.starts_with("http://")
                && !self.client.plain_http_allowed()
            {
                return Err(self.client.fail(
                    step,
                    &format!(
                        "redirected from https to plain http at {}: refused (--plain-http \
                         allows it)",
                        origin(&next)
                    ),
                ));
            }
            url = next;
        }
        Err(self
            .client
            .fail(step, &format!("more than {MAX_HOPS} redirects")))
    }

    /// Sleeps `wait` if the deadline leaves room for it and for a request after it.
    fn wait(&self, wait: Duration) -> bool {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if wait >= left {
            return false;
        }
        std::thread::sleep(wait);
        true
    }

    /// `"HOST "` when `url` is not the registry's (a redirect target), else `"the registry "`.
    fn shown_source(&self, url: &str) -> String {
        if self.client.is_registry_url(url) {
            "the registry ".to_string()
        } else {
            format!("{} (redirected) ", origin(url))
        }
    }

    /// A transport error at `url` as one clause.
    fn transport(&self, e: ureq::Error, url: &str) -> String {
        let at = if self.client.is_registry_url(url) {
            String::new()
        } else {
            format!(" (at {}, redirected)", origin(url))
        };
        match e {
            ureq::Error::Timeout(_) => format!("{}{at}", self.deadline_passed()),
            e => format!("{}{at}", self.client.transport_message(e)),
        }
    }

    /// A failed read of a blob body (after `got` of `size` bytes from `where_`) as one clause.
    fn read_error(&self, e: &io::Error, got: u64, size: u64, where_: &str) -> String {
        let Some(t) = transport_error(e) else {
            // The content check's own message.
            return e.to_string();
        };
        self.body_error(t, got, size, where_)
    }

    /// A failed read of the transport (a blob's body, after `got` of `size` bytes from
    /// `where_`) as one clause.
    fn body_error(&self, t: &io::Error, got: u64, size: u64, where_: &str) -> String {
        let inner = t.get_ref().and_then(|i| i.downcast_ref::<ureq::Error>());
        if matches!(inner, Some(ureq::Error::Timeout(_))) || t.kind() == io::ErrorKind::TimedOut {
            return self.deadline_passed();
        }
        if is_reset_kind(t.kind()) {
            return format!("the connection to {where_}closed after {got} of {size} bytes");
        }
        t.to_string()
    }

    fn deadline_passed(&self) -> String {
        format!(
            "timed out: not done within {} s, the one deadline for all of it (--timeout)",
            self.timeout.as_secs_f64()
        )
    }
}

/// A read client shared by the readers of one repository's blobs: what an image read from
/// a registry streams its blobs through ([`crate::image::blob::Blobs::Remote`]).
#[derive(Clone)]
pub struct SharedFetcher {
    fetcher: Arc<Mutex<Fetcher>>,
    name: String,
}

impl SharedFetcher {
    /// Shares `fetcher`, the client of the repository `reference` names.
    pub fn new(fetcher: Fetcher, reference: &Reference) -> SharedFetcher {
        SharedFetcher {
            fetcher: Arc::new(Mutex::new(fetcher)),
            name: format!("{}{}", super::reference::DOCKER_TRANSPORT, reference.name()),
        }
    }

    /// Runs `f` with the client (one request at a time).
    pub fn with<R>(&self, f: impl FnOnce(&mut Fetcher) -> R) -> R {
        let mut guard = self
            .fetcher
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut guard)
    }

    /// A stream of the blob `d` describes: its `GET` is sent now (so that a missing blob
    /// or a refusal is an error here); a connection cut in the middle is retried as for
    /// [`Fetcher::blob`], from the start, skipping what was already handed out. The bytes
    /// are bounded by the size, not checked: read them through [`Verified`].
    pub fn stream(&self, d: &Descriptor) -> Result<BlobStream> {
        let step = format!("reading blob {}", d.digest);
        let (body, where_) = self.with(|f| f.open_body(&step, d))?;
        Ok(BlobStream {
            shared: self.clone(),
            descriptor: d.clone(),
            step,
            body: Some(body),
            where_,
            position: 0,
            restarts: 0,
        })
    }
}

impl RemoteBlobs for SharedFetcher {
    fn open(&self, d: &Descriptor) -> Result<Box<dyn Read + Send>> {
        Ok(Box::new(self.stream(d)?))
    }

    fn name(&self) -> String {
        crate::show::text(&self.name)
    }
}

/// A blob's body as a stream ([`SharedFetcher::stream`]).
pub struct BlobStream {
    shared: SharedFetcher,
    descriptor: Descriptor,
    step: String,
    body: Option<ureq::BodyReader<'static>>,
    where_: String,
    position: u64,
    restarts: u32,
}

impl BlobStream {
    /// Reopens the body after a cut and skips what was handed out already.
    fn reopen(&mut self) -> io::Result<()> {
        let (mut body, where_) = self
            .shared
            .with(|f| f.open_body(&self.step, &self.descriptor))
            .map_err(io::Error::other)?;
        let skipped = io::copy(&mut (&mut body).take(self.position), &mut io::sink())?;
        if skipped != self.position {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "{where_}sent {skipped} bytes on a new try, fewer than the {} already read",
                    self.position
                ),
            ));
        }
        self.body = Some(body);
        self.where_ = where_;
        Ok(())
    }
}

impl Read for BlobStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.body.is_none() {
                self.reopen()?;
            }
            let body = self.body.as_mut().expect("opened above");
            match body.read(buf) {
                Ok(n) => {
                    self.position += n as u64;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.body = None;
                    let size = u64::try_from(self.descriptor.size).unwrap_or_default();
                    let (position, restarts, where_) =
                        (self.position, self.restarts, self.where_.clone());
                    let retry = self.shared.with(|f| {
                        is_reset_kind(e.kind())
                            && restarts < MAX_RETRIES
                            && f.wait(backoff(restarts))
                    });
                    if retry {
                        self.restarts += 1;
                        continue;
                    }
                    let message = self.shared.with(|f| {
                        let why = f.body_error(&e, position, size, &where_);
                        f.client.fail(&self.step, &why).to_string()
                    });
                    return Err(io::Error::new(e.kind(), message));
                }
            }
        }
    }
}

/// Why copying failed.
enum CopyError {
    Read(io::Error),
    Write(io::Error),
}

fn copy(r: &mut impl Read, w: &mut dyn Sink) -> std::result::Result<(), CopyError> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => return w.flush().map_err(CopyError::Write),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::Read(e)),
        };
        w.write_all(&buf[..n]).map_err(CopyError::Write)?;
    }
}

/// The wait before retry number `n + 1`: 1, 2, 4 s.
fn backoff(n: u32) -> Duration {
    BACKOFF * 2u32.saturating_pow(n)
}

/// A `Retry-After` in seconds (an HTTP date is not read: that would need the wall clock;
/// the backoff applies then).
fn retry_after(resp: &Response<ureq::Body>) -> Option<Duration> {
    let v = resp.headers().get("Retry-After")?.to_str().ok()?.trim();
    v.parse::<u64>().ok().map(Duration::from_secs)
}

/// True for a connection reset (or aborted, or a broken pipe): worth a retry.
fn is_reset(e: &ureq::Error) -> bool {
    matches!(e, ureq::Error::Io(io) if is_reset_kind(io.kind()))
}

/// Connection resets and their kin, and a connection that ends too early (ureq reports a
/// reset in the middle of a body as `UnexpectedEof`).
fn is_reset_kind(k: io::ErrorKind) -> bool {
    matches!(
        k,
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::UnexpectedEof
    )
}

/// A reader whose errors are marked as the transport's, so that they can be told apart
/// from the content check's ([`Verified`] passes them through).
struct Transport<R>(R);

/// An error of the transport under [`Transport`].
#[derive(Debug)]
struct TransportError(io::Error);

impl std::fmt::Display for TransportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for TransportError {}

impl<R: Read> Read for Transport<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0
            .read(buf)
            .map_err(|e| io::Error::new(e.kind(), TransportError(e)))
    }
}

/// The transport's error inside `e`, if it is one.
fn transport_error(e: &io::Error) -> Option<&io::Error> {
    e.get_ref()?.downcast_ref::<TransportError>().map(|t| &t.0)
}

/// `scheme://host[:port]` of an absolute URL, without user information, path or query:
/// what messages show of a redirect target.
fn origin(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    format!("{scheme}://{host}")
}

/// `location` resolved against `base` (an absolute http(s) URL); `None` for another scheme.
fn resolve(base: &str, location: &str) -> Option<String> {
    let location = location.trim();
    let lower = location.to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        return Some(location.to_string());
    }
    if location.contains("://") {
        return None;
    }
    let (scheme, rest) = base.split_once("://")?;
    if let Some(net) = location.strip_prefix("//") {
        return Some(format!("{scheme}://{net}"));
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if location.starts_with('/') {
        return Some(format!("{scheme}://{authority}{location}"));
    }
    // Relative to the base's directory.
    let path = &rest[authority.len()..];
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
    Some(format!("{scheme}://{authority}{dir}/{location}"))
}

/// What a manifest is, from its `Content-Type` and its bytes (see the module
/// documentation); the error says what is wrong, to follow "the registry sends".
fn manifest_kind(
    content_type: Option<&str>,
    bytes: &[u8],
) -> std::result::Result<ManifestKind, String> {
    let Ok(serde_json::Value::Object(doc)) = serde_json::from_slice::<serde_json::Value>(bytes)
    else {
        return Err("a manifest that is not a JSON object".to_string());
    };
    let header = content_type
        .map(|t| {
            t.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        })
        .filter(|t| !t.is_empty());
    let field = doc.get("mediaType").map(|v| v.as_str());
    let field = match field {
        None => None,
        Some(Some(t)) => Some(t),
        Some(None) => return Err("a manifest whose mediaType is not a string".to_string()),
    };
    let schema1 = |t: &str| {
        t == DOCKER_SCHEMA1 || t == "application/vnd.docker.distribution.manifest.v1+json"
    };
    if field.is_some_and(schema1)
        || header.as_deref().is_some_and(schema1)
        || doc.get("schemaVersion") == Some(&serde_json::json!(1))
    {
        return Err("a Docker schema 1 manifest, which ocipack does not read".to_string());
    }
    if doc.get("schemaVersion") != Some(&serde_json::json!(2)) {
        return Err("a manifest without schemaVersion 2".to_string());
    }
    let by_field = match field {
        Some(t) => Some(ManifestKind::of(t).ok_or_else(|| {
            format!("a document of media type {t}, which is no manifest or index ocipack reads")
        })?),
        None => None,
    };
    let by_header = header.as_deref().and_then(ManifestKind::of);
    let kind = match (by_field, by_header) {
        (Some(f), Some(h)) if f != h => {
            return Err(format!(
                "Content-Type {} for a manifest whose mediaType is {}",
                h.media_type(),
                f.media_type()
            ));
        }
        (Some(f), _) => f,
        (None, Some(h)) => h,
        (None, None) => {
            return Err(format!(
                "a manifest without mediaType, with Content-Type {}",
                header.as_deref().unwrap_or("(none)")
            ));
        }
    };
    let lists = doc
        .get("manifests")
        .is_some_and(serde_json::Value::is_array);
    let image = doc.get("config").is_some_and(serde_json::Value::is_object)
        && doc.get("layers").is_some_and(serde_json::Value::is_array);
    if kind.is_index() && !lists || !kind.is_index() && !image {
        return Err(format!(
            "a {} ({}) whose content is not one (it needs {})",
            kind.name(),
            kind.media_type(),
            if kind.is_index() {
                "a manifests array"
            } else {
                "a config object and a layers array"
            }
        ));
    }
    Ok(kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_come_from_the_body_and_the_header_agreeing() {
        let list =
            format!(r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST_LIST}","manifests":[]}}"#);
        assert_eq!(
            manifest_kind(None, list.as_bytes()),
            Ok(ManifestKind::DockerList)
        );
        assert_eq!(
            manifest_kind(
                Some(&format!("{DOCKER_MANIFEST_LIST}; charset=utf-8")),
                list.as_bytes()
            ),
            Ok(ManifestKind::DockerList)
        );
        // A registry that says OCI index for a Docker list is caught.
        let e = manifest_kind(Some(crate::media::INDEX), list.as_bytes()).unwrap_err();
        assert!(
            e.contains("Content-Type application/vnd.oci.image.index.v1+json"),
            "{e}"
        );
        // Without mediaType (OCI allows it), the header decides, and the shape must match.
        let index = br#"{"schemaVersion":2,"manifests":[]}"#;
        assert_eq!(
            manifest_kind(Some(crate::media::INDEX), index),
            Ok(ManifestKind::OciIndex)
        );
        let e = manifest_kind(Some(crate::media::MANIFEST), index).unwrap_err();
        assert!(e.contains("needs a config object"), "{e}");
        let e = manifest_kind(Some("application/json"), index).unwrap_err();
        assert!(e.contains("without mediaType"), "{e}");
        let m = br#"{"schemaVersion":2,"config":{},"layers":[]}"#;
        assert_eq!(
            manifest_kind(Some(DOCKER_MANIFEST), m),
            Ok(ManifestKind::DockerManifest)
        );
        let e = manifest_kind(Some(DOCKER_SCHEMA1), br#"{"schemaVersion":1}"#).unwrap_err();
        assert!(e.contains("schema 1"), "{e}");
        let e = manifest_kind(None, br#"{"schemaVersion":2,"mediaType":"text/x"}"#).unwrap_err();
        assert!(e.contains("text/x"), "{e}");
        assert!(manifest_kind(None, b"[1]").is_err());
    }

    #[test]
    fn redirects_resolve_and_show_only_the_origin() {
        let base = "https://reg.example:5000/v2/a/blobs/sha256:00?x=1";
        assert_eq!(
            resolve(base, "/b/c").unwrap(),
            "https://reg.example:5000/b/c"
        );
        assert_eq!(
            resolve(base, "//cdn.example/d?sig=s").unwrap(),
            "https://cdn.example/d?sig=s"
        );
        assert_eq!(
            resolve(base, "HTTPS://cdn.example/d").unwrap(),
            "HTTPS://cdn.example/d"
        );
        assert_eq!(
            resolve(base, "e").unwrap(),
            "https://reg.example:5000/v2/a/blobs/e"
        );
        assert_eq!(resolve(base, "ftp://x/y"), None);
        assert_eq!(
            origin("https://user:secret@cdn.example:8443/path?verify=sig"),
            "https://cdn.example:8443"
        );
        assert_eq!(backoff(0), Duration::from_secs(1));
        assert_eq!(backoff(2), Duration::from_secs(4));
    }
}
