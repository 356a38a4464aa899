//! `ocipack export`: a verified image as one reproducible tar archive.
//!
//! The image is [`open`](crate::verify::open)ed and verified whole first (a source that
//! fails is refused before anything is written), and every blob is then read through the
//! model's verified reader. The source may be a multi-platform source with a platform that
//! picks one of its images, or a registry reference: its documents are fetched and checked
//! first, then each layer is fetched **once**, verified as it streams (size and digest,
//! decompressed and hashed against its diff_id, its entries checked, as `verify` does)
//! into an unnamed temporary file (beside the output, or in the temporary directory for
//! standard output; it has no name and vanishes with the process), and the archive is
//! written from those copies. Content a registry sends that is not what its descriptor
//! says is the registry's failure (exit 1) and nothing is written: a docker-archive needs
//! each layer's uncompressed size before its content, and standard output cannot take
//! back what it was given, so nothing is written before every layer has been checked. A
//! foreign layer (its content elsewhere, at its `urls`) that the source does not hold is
//! refused: an archive needs every layer, and ocipack never fetches one.
//!
//! Two formats:
//! - **oci-archive** (what `skopeo`'s `oci-archive:` reads): `oci-layout`, `index.json`
//!   (both byte for byte; for an image of a registry or picked from an image index, written
//!   by ocipack: its descriptor, with its platform, as the only entry) and the blobs the
//!   image references under `blobs/<alg>/<hex>`, plus the two directory entries. Readable names (`rootfs.tar.gz`, …) and any other file
//!   of the layout are left out, so the archive holds no symlink.
//! - **docker-archive** (what `docker load` and `podman load` read): `<config hex>.json`
//!   (the config blob byte for byte), one *uncompressed* layer tar per layer named
//!   `<diff_id hex>.tar`, and `manifest.json`: `[{"Config", "RepoTags", "Layers"}]`.
//!   RepoTags come from `--tag`, else from the index entry's `io.containerd.image.name` or
//!   `org.opencontainers.image.ref.name` annotation when that is a name (contains `/` or
//!   `:`; a bare word is an OCI tag, not an image name), or the registry reference it was
//!   read from when that has a tag; else the list is empty, which both
//!   loaders accept (the image is loaded untagged). Names are written fully qualified
//!   (`docker.io/library/hello-world:latest`): `docker load` reads that as `hello-world`,
//!   and `podman load` would otherwise file a short name under `localhost/`.
//!
//! Both archives are written with [`crate::tar::write::TarWriter`] (ustar, entries sorted by
//! name, owner 0:0, directories 0755, files 0644) and every mtime set to the image config's
//! `created` time (0, the epoch, if it has none ocipack can read), so the archive is a
//! function of the image alone: a registry's image gives the archive of its pulled layout.
//!
//! A layer tar's header needs its uncompressed size before its content, and a config
//! records only the diff_id. Verification counted it while it decompressed the layer;
//! the layer is decompressed again into the archive (and checked again against that size
//! and the diff_id). This costs CPU rather than a temporary copy of every layer of a layout
//! on disk, and keeps `-o -` streaming. Every blob is verified while it is read; a mismatch
//! fails the export.

use std::cell::Cell;

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::str::FromStr;
use std::sync::Arc;

use serde::Serialize;

use crate::cjson;
use crate::digest::{Digest, HashingWriter};
use crate::error::{Error, Result};
use crate::image::Image;
use crate::image::blob::{Blobs, RemoteBlobs, Verified};
use crate::image::rules::LayoutRead;
use crate::input::decompress;
use crate::media::Compression;
use crate::platform::Platform;
use crate::registry::Reference;
use crate::spec::{ANNOTATION_CONTAINERD_NAME, ANNOTATION_REF_NAME, Descriptor};
use crate::store::root::Root;
use crate::store::staging::{Existing, Staging, Target};
use crate::tar::write::{HeaderFields, Kind, TarWriter};
use crate::timestamp::Timestamp;
use crate::verify::{self, Options, Source};

/// The archive format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ArchiveFormat {
    /// An OCI image layout in a tar.
    #[serde(rename = "oci-archive")]
    OciArchive,
    /// The `docker save` format.
    #[serde(rename = "docker-archive")]
    DockerArchive,
}

impl FromStr for ArchiveFormat {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "oci-archive" => Ok(ArchiveFormat::OciArchive),
            "docker-archive" => Ok(ArchiveFormat::DockerArchive),
            _ => Err(Error::usage(format!(
                "unknown archive format {s:?} (expected oci-archive or docker-archive)"
            ))),
        }
    }
}

/// Where the archive goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// Standard output (refused when it is a terminal).
    Stdout,
    /// A file, written beside itself and renamed into place when complete.
    File(PathBuf),
}

/// What an export wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExportReport {
    /// The format.
    pub format: ArchiveFormat,
    /// The image's manifest digest.
    pub manifest: Digest,
    /// The RepoTags written (docker-archive only).
    pub tags: Vec<String>,
    /// The archive's SHA-256.
    pub digest: Digest,
    /// The archive's size in bytes.
    pub size: u64,
}

/// Writes the single image of `source` (or, with `platform`, its image for that platform)
/// as an archive of `format` to `dest`. `tags` are docker-archive RepoTags (refused for
/// oci-archive).
pub fn export(
    source: &Source,
    platform: Option<(Platform, String)>,
    format: ArchiveFormat,
    tags: &[String],
    dest: &Destination,
) -> Result<ExportReport> {
    if format == ArchiveFormat::OciArchive && !tags.is_empty() {
        return Err(Error::usage(
            "--tag applies to docker-archive only (an oci-archive keeps the layout's index.json as it is)",
        ));
    }
    // A registry's documents are checked first; its layers are fetched once, below.
    let remote = source.is_remote();
    let opts = Options {
        expect: platform,
        select_platform: true,
        documents_only: remote,
        ..Options::default()
    };
    let checked = verify::open(source, &opts)?.single()?;
    let (read, image) = (checked.layout, checked.image);
    for (i, d) in image.layers().iter().enumerate() {
        let held = checked.layers.get(i).is_some_and(Option::is_some);
        if crate::media::foreign_layer(&d.media_type).is_some() && !held {
            return Err(image.bad(
                &format!("layer {i} ({})", d.digest),
                format!(
                    "is a foreign layer ({}), whose content is not in {}: an archive needs \
                     every layer's content, and ocipack never fetches a foreign layer",
                    crate::show::text(&d.media_type),
                    if remote { "the registry" } else { "the layout" }
                ),
            ));
        }
    }
    let sizes: Vec<Option<u64>> = checked
        .layers
        .iter()
        .map(|l| l.as_ref().map(|l| l.uncompressed_size))
        .collect();
    let tags = match format {
        ArchiveFormat::DockerArchive => match source {
            Source::Registry(r, _) if tags.is_empty() && r.tag.is_some() => {
                vec![qualified_name(r)]
            }
            _ => repo_tags(&image, tags)?,
        },
        ArchiveFormat::OciArchive => Vec::new(),
    };
    // Where the archive goes, checked before anything is fetched.
    let target = match dest {
        Destination::Stdout => {
            if io::stdout().is_terminal() {
                return Err(Error::usage(
                    "refusing to write a tar archive to a terminal (redirect it, or use -o FILE)",
                ));
            }
            None
        }
        Destination::File(path) => Some(file_target(source, path)?),
    };
    let (image, sizes) = if remote {
        let dir = match &target {
            Some(t) => t.parent().clone(),
            None => {
                let tmp = std::env::temp_dir();
                crate::store::root::Root::open(&tmp)
                    .map_err(|e| Error::io("opening the temporary directory", &tmp, e))?
            }
        };
        spool(&image, &dir)?
    } else {
        (image, sizes)
    };
    let archive = Archived {
        read: &read,
        image: &image,
        sizes: &sizes,
    };
    let (digest, size) = match (dest, target) {
        (Destination::File(path), Some(target)) => {
            // A staging file beside the target: created exclusively, mode 0644, removed on
            // an error or a signal, renamed into place once complete and durable.
            let (staging, file) = Staging::file(&target)?;
            let out = BufWriter::with_capacity(1 << 20, file);
            let (out, digest, size) = write_archive(&archive, format, &tags, out, path)?;
            out.into_inner()
                .map_err(|e| Error::io("writing", path, e.into_error()))?;
            staging.commit(&target)?;
            (digest, size)
        }
        _ => {
            let out = BufWriter::with_capacity(1 << 20, io::stdout().lock());
            let (_, digest, size) = write_archive(&archive, format, &tags, out, Path::new("-"))?;
            (digest, size)
        }
    };
    Ok(ExportReport {
        format,
        manifest: image.entry.digest.clone(),
        tags,
        digest,
        size,
    })
}

/// The file `-o PATH` names, checked: not a directory, not anything but a regular file
/// (replaced by a rename), not inside the layout being exported.
fn file_target(source: &Source, path: &Path) -> Result<Target> {
    let target = Target::at_path(path)?;
    match target.existing()? {
        Existing::Missing => {}
        Existing::Dir(_) => {
            return Err(Error::usage(format!(
                "-o {}: is a directory",
                crate::show::path(path)
            )));
        }
        // Replaced atomically by a rename: never a device node, a FIFO or a symlink
        // (`-o /dev/stdout` names a symlink; `-o -` writes to standard output).
        Existing::Other(kind) if kind != "regular file" => {
            return Err(Error::input(
                format!("-o {}", crate::show::path(path)),
                format!("exists and is a {kind}; export replaces only a regular file"),
            ));
        }
        Existing::Other(_) => {}
    }
    // As the filesystem sees them: also through a bind mount or a symlink.
    use crate::store::paths::{Overlap, overlaps};
    if let Some(layout) = source.layout_path()
        && let Some(Overlap::Same | Overlap::Inside) = overlaps(target.parent().path(), layout)?
    {
        return Err(Error::input(
            format!("-o {}", crate::show::path(path)),
            "is inside the layout being exported",
        ));
    }
    Ok(target)
}

/// A registry image's layers, each fetched once and verified as it streamed, held in
/// unnamed temporary files: the blob source the archive is written from.
struct Spool {
    /// The registry's name, for messages.
    name: String,
    /// Each distinct layer's copy, by digest.
    files: Vec<(Digest, Arc<File>)>,
}

impl RemoteBlobs for Spool {
    fn open(&self, d: &Descriptor) -> Result<Box<dyn Read + Send>> {
        let (_, file) = self
            .files
            .iter()
            .find(|(digest, _)| *digest == d.digest)
            .ok_or_else(|| Error::internal(format!("blob {} was not fetched", d.digest)))?;
        Ok(Box::new(ReadAt {
            file: file.clone(),
            at: 0,
        }))
    }

    fn name(&self) -> String {
        self.name.clone()
    }
}

/// A reader of a file from its start, at its own position (many can read one file).
struct ReadAt {
    file: Arc<File>,
    at: u64,
}

impl Read for ReadAt {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        use std::os::unix::fs::FileExt;
        let n = self.file.read_at(buf, self.at)?;
        self.at += n as u64;
        Ok(n)
    }
}

/// Fetches each distinct layer of the registry's `image` once into an unnamed temporary
/// file in `dir`, verified as it streams ([`verify::scan_layer_into`]); returns the image
/// reading its layers from those copies, and each layer's uncompressed size.
fn spool(image: &Image, dir: &Root) -> Result<(Image, Vec<Option<u64>>)> {
    let name = image.blob_source().map_or_else(String::new, |b| b.shown());
    let mut files: Vec<(Digest, Arc<File>)> = Vec::new();
    let mut done: Vec<(&Descriptor, &Digest, u64)> = Vec::new();
    let mut sizes = Vec::new();
    for (i, d) in image.layers().iter().enumerate() {
        let diff_id = image.diff_ids().get(i).ok_or_else(|| {
            image.bad(
                &format!("layer {}", d.digest),
                "has no diff_id in the config",
            )
        })?;
        if let Some((_, _, size)) = done
            .iter()
            .find(|(x, id, _)| x.digest == d.digest && x.size == d.size && *id == diff_id)
        {
            sizes.push(Some(*size));
            continue;
        }
        let mut file = dir.tempfile().map_err(|e| {
            Error::io_on(
                "creating",
                format!("a temporary file in {}", crate::show::path(dir.path())),
                e,
            )
        })?;
        let content = verify::scan_layer_into(image, d, diff_id, &mut file)?;
        sizes.push(Some(content.uncompressed_size));
        done.push((d, diff_id, content.uncompressed_size));
        files.push((d.digest.clone(), Arc::new(file)));
    }
    let spooled = Image::with_blobs(
        image.entry.clone(),
        image.manifest.clone(),
        image.config.clone(),
        Some(Blobs::Remote(Arc::new(Spool { name, files }))),
    );
    Ok((spooled, sizes))
}

/// The RepoTags: `--tag` values, else the index entry's name annotation, in Docker's short form.
fn repo_tags(image: &Image, given: &[String]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    if given.is_empty() {
        let annotations = image.entry.annotations.as_ref();
        let name = [ANNOTATION_CONTAINERD_NAME, ANNOTATION_REF_NAME]
            .iter()
            .filter_map(|k| annotations.and_then(|a| a.get(*k)))
            .find(|v| v.contains(['/', ':']));
        if let Some(n) = name {
            let r: Reference = n.parse().map_err(|e| {
                image.bad(
                    "index.json",
                    format!("annotation {n:?} is not an image name: {e}"),
                )
            })?;
            if r.digest.is_none() {
                out.push(qualified_name(&r));
            }
        }
        return Ok(out);
    }
    for t in given {
        let r: Reference = t.parse()?;
        if r.digest.is_some() {
            return Err(Error::input(
                format!("--tag {t:?}"),
                "a RepoTag has a tag, not a digest",
            ));
        }
        let s = qualified_name(&r);
        if !out.contains(&s) {
            out.push(s);
        }
    }
    Ok(out)
}

/// The fully qualified `registry/repository:tag`, so that `docker load` and `podman load`
/// agree on the name (podman puts short names under `localhost/`).
fn qualified_name(r: &Reference) -> String {
    format!("{}:{}", r.name(), r.tag.as_deref().unwrap_or("latest"))
}

/// A writer that records whether writing failed, to tell output errors from input errors.
struct Tracked<W> {
    inner: W,
    failed: Rc<Cell<bool>>,
}

impl<W: Write> Write for Tracked<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf).inspect_err(|_| self.failed.set(true))
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush().inspect_err(|_| self.failed.set(true))
    }
}

type Archive<W> = TarWriter<HashingWriter<Tracked<W>>>;

fn header(path: &str, kind: Kind, mtime: u64) -> HeaderFields {
    let mode = if kind == Kind::Dir { 0o755 } else { 0o644 };
    HeaderFields {
        path: path.as_bytes().to_vec(),
        kind,
        mode,
        uid: 0,
        gid: 0,
        mtime,
        xattrs: Vec::new(),
    }
}

/// One archive member: its name and where its bytes come from.
enum Member<'a> {
    Dir,
    Bytes(&'a [u8]),
    Blob(&'a Descriptor),
    Layer {
        desc: &'a Descriptor,
        diff_id: &'a Digest,
        compression: Compression,
        size: u64,
    },
}

/// What is archived: the documents read, the image, and its layers' uncompressed sizes
/// (as verification counted them, when it did).
struct Archived<'a> {
    read: &'a LayoutRead,
    image: &'a Image,
    sizes: &'a [Option<u64>],
}

/// `oci-layout` and `index.json` of an oci-archive: the layout's own, byte for byte, when
/// the image is its `index.json`'s only entry; else (an image of a registry, or one picked
/// from an image index) ocipack's: the canonical `oci-layout`, and an index listing the
/// image's descriptor, with the platform of its config when it has none.
fn layout_documents(a: &Archived) -> Result<(Vec<u8>, Vec<u8>)> {
    let own = a.read.reference.is_none() && a.read.nested.is_none();
    if own {
        // Opening refuses a layout without both documents.
        let (Some(oci_layout), Some(index)) = (&a.read.oci_layout, &a.read.index) else {
            return Err(a.image.bad("index.json", "missing"));
        };
        return Ok((oci_layout.bytes.to_vec(), index.bytes.to_vec()));
    }
    let mut entry = a.image.entry.clone();
    entry.platform.get_or_insert_with(|| a.image.platform());
    let oci_layout = crate::image::write::oci_layout()?;
    let index = crate::image::write::top_index(entry)?;
    Ok((oci_layout.bytes.to_vec(), index.bytes.to_vec()))
}

fn write_archive<W: Write>(
    archived: &Archived,
    format: ArchiveFormat,
    tags: &[String],
    out: W,
    dest: &Path,
) -> Result<(W, Digest, u64)> {
    let image = archived.image;
    let mtime = image.created().map_or(0, |t: Timestamp| t.unix() as u64);
    let manifest_json;
    let documents;
    let mut members: Vec<(String, Member)> = Vec::new();
    match format {
        ArchiveFormat::OciArchive => {
            documents = layout_documents(archived)?;
            members.push(("oci-layout".into(), Member::Bytes(&documents.0)));
            members.push(("index.json".into(), Member::Bytes(&documents.1)));
            members.push(("blobs".into(), Member::Dir));
            let mut blobs: Vec<&Descriptor> = vec![&image.entry];
            blobs.extend(image.blobs());
            let config = &image.manifest.value.config;
            for d in blobs {
                let alg_dir = format!("blobs/{}", d.digest.algorithm().name());
                if !members.iter().any(|(n, _)| *n == alg_dir) {
                    members.push((alg_dir, Member::Dir));
                }
                // The documents were read whole and checked against their digests (a
                // registry serves a manifest as a manifest, not as a blob).
                let member = if d.digest == image.entry.digest {
                    Member::Bytes(&image.manifest.bytes)
                } else if d.digest == config.digest {
                    Member::Bytes(&image.config.bytes)
                } else {
                    Member::Blob(d)
                };
                members.push((d.digest.blob_path(), member));
            }
        }
        ArchiveFormat::DockerArchive => {
            let cfg = &image.manifest.value.config;
            let config_name = format!("{}.json", cfg.digest.hex());
            members.push((config_name.clone(), Member::Bytes(&image.config.bytes)));
            let diff_ids = image.diff_ids();
            if diff_ids.len() != image.manifest.value.layers.len() {
                return Err(image.bad(
                    &format!("config {}", cfg.digest),
                    format!(
                        "rootfs.diff_ids lists {} layers, the manifest {}",
                        diff_ids.len(),
                        image.manifest.value.layers.len()
                    ),
                ));
            }
            let mut layer_names = Vec::new();
            for (i, (desc, diff_id)) in image.manifest.value.layers.iter().zip(diff_ids).enumerate()
            {
                let name = format!("{}.tar", diff_id.hex());
                layer_names.push(name.clone());
                if members.iter().any(|(n, _)| *n == name) {
                    continue;
                }
                let compression = image.layer_compression(desc)?;
                let size = match archived.sizes.get(i).copied().flatten() {
                    Some(n) => n,
                    None => uncompressed_size(image, desc, diff_id, compression)?,
                };
                members.push((
                    name,
                    Member::Layer {
                        desc,
                        diff_id,
                        compression,
                        size,
                    },
                ));
            }
            manifest_json = cjson::to_vec(&[serde_json::json!({
                "Config": config_name,
                "RepoTags": tags,
                "Layers": layer_names,
            })])?;
            members.push(("manifest.json".into(), Member::Bytes(&manifest_json)));
        }
    }
    members.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));

    let failed = Rc::new(Cell::new(false));
    let mut tar: Archive<W> = TarWriter::new(HashingWriter::new(Tracked {
        inner: out,
        failed: failed.clone(),
    }));
    // An error while appending is the output's if a write failed, else the source's: a
    // layout's (an input error), or a registry's (its layers were verified as they were
    // fetched; reading their copies failing is no input's fault).
    let classify = |e: io::Error| match image.blob_source() {
        _ if failed.get() => Error::io("writing", dest, e),
        Some(Blobs::Remote(r)) => Error::Remote(format!("reading from {}: {e}", r.name())),
        b => Error::input(
            format!("layout {}", b.map_or(String::new(), Blobs::shown)),
            e.to_string(),
        ),
    };
    for (name, member) in &members {
        let result = match member {
            Member::Dir => tar.append(&header(name, Kind::Dir, mtime), None),
            Member::Bytes(b) => tar.append(
                &header(
                    name,
                    Kind::File {
                        size: b.len() as u64,
                    },
                    mtime,
                ),
                Some(&mut &b[..]),
            ),
            Member::Blob(d) => {
                let mut r = image.open_blob(d)?;
                let h = header(name, Kind::File { size: r.size() }, mtime);
                tar.append(&h, Some(&mut r))
            }
            Member::Layer {
                desc,
                diff_id,
                compression,
                size,
            } => {
                let mut blob = image.open_blob(desc)?;
                let decoded = decompress::decoder(BufReader::new(&mut blob), *compression)
                    .map_err(|e| layer_error(image, desc, e))?;
                let what = format!("layer {} uncompressed", desc.digest);
                let mut r = Verified::new(decoded, (*diff_id).clone(), *size, what);
                tar.append(
                    &header(name, Kind::File { size: *size }, mtime),
                    Some(&mut r),
                )
            }
        };
        result.map_err(classify)?;
    }
    let hashing = tar.finish().map_err(|e| Error::io("writing", dest, e))?;
    let (mut tracked, digest, size) = hashing.finish();
    tracked.flush().map_err(|e| Error::io("writing", dest, e))?;
    Ok((tracked.inner, digest, size))
}

fn layer_error(image: &Image, d: &Descriptor, e: io::Error) -> Error {
    image.bad(&format!("layer {}", d.digest), e.to_string())
}

/// Decompresses a layer once to learn its size, checking the blob digest and the diff_id.
fn uncompressed_size(
    image: &Image,
    d: &Descriptor,
    diff_id: &Digest,
    compression: Compression,
) -> Result<u64> {
    let mut blob = image.open_blob(d)?;
    if compression == Compression::None {
        if d.digest != *diff_id {
            return Err(image.bad(
                &format!("layer {}", d.digest),
                format!("is uncompressed, but its config diff_id is {diff_id}"),
            ));
        }
        return Ok(blob.size());
    }
    let mut buffered = BufReader::new(&mut blob);
    let mut sink = HashingWriter::new(io::sink());
    {
        let mut decoded = decompress::decoder(&mut buffered, compression)
            .map_err(|e| layer_error(image, d, e))?;
        io::copy(&mut decoded, &mut sink).map_err(|e| layer_error(image, d, e))?;
    }
    // Whatever follows the compressed stream is part of the blob: read it so that the
    // blob's digest is checked.
    loop {
        let n = buffered
            .fill_buf()
            .map_err(|e| layer_error(image, d, e))?
            .len();
        if n == 0 {
            break;
        }
        buffered.consume(n);
    }
    drop(buffered);
    blob.check().map_err(|e| layer_error(image, d, e))?;
    let (_, got, size) = sink.finish();
    if got != *diff_id {
        return Err(image.bad(
            &format!("layer {}", d.digest),
            format!("decompresses to {got}, but its config diff_id is {diff_id}"),
        ));
    }
    Ok(size)
}
