//! The incremental build: an output is reused, not rebuilt, when what made it is unchanged
//! and it still holds exactly what was made.
//!
//! Contract:
//! - **The key** of a layout is the SHA-256 of one canonical JSON document ([`crate::cjson`])
//!   of everything its bytes depend on: ocipack's version and the running executable (its
//!   size, modification time and inode: a rebuilt ocipack of the same version trusts no
//!   record of another), the encoders' versions ([`encoder_versions`]), the resolved
//!   [`ImageSpec`] without its absolute paths and without what never changes the bytes
//!   (worker counts, the origins messages quote), and per input its kind, its path relative
//!   to the project and the SHA-256 of its bytes. For a `tar` input that is the file as it
//!   is on disk: nothing is decompressed. For a `rootfs` or `source` input it is the
//!   SHA-256 of the tar of that input alone — every entry's name, type, mode, size, link
//!   target, owner (as kept) and content, exactly as the layer will hold them: the input is
//!   walked and read, never encoded.
//! - **The record** of a layout says what the build with that key made: its `index.json`
//!   entry, manifest and config (their bytes), the layer (digest, size, diff_id,
//!   uncompressed size, compression), the warnings the inputs gave, and the exact listing of
//!   the output ([`Listing`]: every path with its type, each file's size and SHA-256, each
//!   symlink's target) or, on a dist branch, its git tree. It is written
//!   only after the output was committed, and never changes a byte of a layout: it lives
//!   outside them, in the git directory when the project is in a git repository
//!   (`<git-dir>/ocipack/cache/`, never committed, never in `git status`), else in
//!   `$XDG_CACHE_HOME/ocipack` (default `~/.cache/ocipack`); one file per output (named by
//!   the SHA-256 of the project directory, the output path and its branch), replaced by
//!   each build of that output. A record that cannot be written is not written: the next
//!   build builds.
//! - **Reuse**: a build reuses an output when the record for it exists, is intact (its own
//!   check digest), names the key the inputs give now, and the output on disk holds exactly
//!   the recorded listing — every file hashed ([`Listing::matches`]), so a changed blob,
//!   `index.json` or mode, an extra or a missing file, is found — and its documents agree
//!   with the record. A layout committed to a dist branch is reused when its record names
//!   the very tree the branch's tip holds at its directory (git's tree id covers every
//!   byte of it). Otherwise the output is built as without a record. A record is
//!   trusted as far as the git directory is (anyone who can write it can also change the
//!   project's hooks); a corrupted or stale one, or a tampered layout, only costs a build.
//! - After a build, each input is hashed again: a record is written only if the key is
//!   still the one computed before the build, so an input changed during the build is never
//!   recorded under the key of its earlier content.
//! - `build --check` never reads a record: it builds and compares. `--no-cache` neither
//!   reads nor writes one.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::digest::{Digest, Hasher, HashingWriter};
use crate::image::build::{BuiltImage, ImageSpec, InputSource};
use crate::image::{Doc, Image, blob};
use crate::input::{EntryList, MtimeMode, Tree};
use crate::layer::LayerInfo;
use crate::layer::compress::encoder_versions;
use crate::media::Compression;
use crate::project::git::Runner;
use crate::project::plan::{ArchTarget, Plan, parallel_map};
use crate::spec::{Descriptor, ImageConfig, Index, Manifest};
use crate::store::files::write_beneath;
use crate::store::listing::Listing;
use crate::store::root::{Follow, Root, open_named};

/// The version of the record format; a record of another is never read.
pub const FORMAT: u32 = 1;
/// The largest record read.
const MAX_RECORD: u64 = 4 << 20;
/// How many bytes an input file is read in while it is hashed.
const READ_SIZE: usize = 1 << 20;

/// Where a project's records are kept.
#[derive(Debug, Clone)]
pub struct Store {
    /// The directory the records' directory is in: the git directory, or the XDG cache
    /// base; trusted as it is named.
    base: PathBuf,
    /// The records' directory beneath `base` (`ocipack/cache`, `ocipack`): reached and
    /// created without following any symlink.
    rel: String,
    /// The project directory, absolute (part of each record's name).
    project: PathBuf,
}

impl Store {
    /// The record store of the project in `project_dir`: `<git-dir>/ocipack/cache` when the
    /// project is in a git repository, else `$XDG_CACHE_HOME/ocipack` (`~/.cache/ocipack`);
    /// created only when a record is written. `None` when there is no such place (no git
    /// repository and no home directory).
    pub fn for_project(project_dir: &Path) -> Option<Store> {
        let project = std::fs::canonicalize(project_dir).ok()?;
        let git_dir = Runner::new(&project)
            .query_path(&["rev-parse", "--absolute-git-dir"])
            .ok();
        let (base, rel) = match git_dir {
            Some(g) => (g, "ocipack/cache".to_string()),
            None => {
                let xdg = std::env::var_os("XDG_CACHE_HOME")
                    .map(PathBuf::from)
                    .filter(|p| p.is_absolute());
                let base = match xdg {
                    Some(x) => x,
                    None => PathBuf::from(std::env::var_os("HOME")?).join(".cache"),
                };
                (base, "ocipack".to_string())
            }
        };
        Some(Store { base, rel, project })
    }

    /// The records' directory, opened beneath `base` refusing every symlink (a symlinked
    /// `ocipack/cache` is never written through); with `create`, missing directories are
    /// made (the base's too, like `mkdir -p`, beneath the deepest one of its path that
    /// exists).
    fn open(&self, create: bool) -> Option<Root> {
        let mut existing = self.base.clone();
        let mut missing: Vec<String> = Vec::new();
        while std::fs::symlink_metadata(&existing).is_err() {
            if !create {
                return None;
            }
            missing.insert(0, existing.file_name()?.to_str()?.to_string());
            existing = existing.parent()?.to_path_buf();
        }
        missing.push(self.rel.clone());
        let root = Root::open_with(&existing, Follow::Never).ok()?;
        root.subdir(&missing.join("/"), create).ok()
    }

    /// The directory records are kept in.
    pub fn dir(&self) -> PathBuf {
        self.base.join(&self.rel)
    }

    /// The name of the record of `t`'s output: the SHA-256 of the project directory, the
    /// output's path and its branch.
    fn name(&self, t: &ArchTarget) -> String {
        self.name_of(&t.output_rel, t.branch.as_deref())
    }

    fn name_of(&self, output_rel: &str, branch: Option<&str>) -> String {
        use std::os::unix::ffi::OsStrExt;
        let mut h = Hasher::sha256();
        h.update(b"ocipack build record\0");
        h.update(self.project.as_os_str().as_bytes());
        h.update(b"\0");
        h.update(output_rel.as_bytes());
        h.update(b"\0");
        h.update(branch.unwrap_or("").as_bytes());
        format!("{}.json", h.finish().hex())
    }

    /// The record named `name`, if it is there, intact and of this format.
    fn read(&self, name: &str) -> Option<Body> {
        let root = self.open(false)?;
        let bytes = root.read(name, MAX_RECORD).ok()?;
        let file: RecordFile = serde_json::from_slice(&bytes).ok()?;
        if file.body.format != FORMAT {
            return None;
        }
        let canonical = crate::cjson::to_vec(&file.body).ok()?;
        (Digest::sha256_of(&canonical) == file.check).then_some(file.body)
    }

    /// Writes the records, each replacing the one of its output; errors are ignored (a
    /// record not written costs the next build its reuse, nothing else).
    fn write(&self, records: Vec<(String, Body)>) {
        let files: Vec<(String, Vec<u8>)> = records
            .into_iter()
            .filter_map(|(name, body)| {
                let check = Digest::sha256_of(&crate::cjson::to_vec(&body).ok()?);
                let bytes = crate::cjson::to_vec(&RecordFile { body, check }).ok()?;
                Some((name, bytes))
            })
            .collect();
        if files.is_empty() {
            return;
        }
        if let Some(root) = self.open(true) {
            let _ = write_beneath(&root, &files);
        }
    }
}

/// A record file: the body and the SHA-256 of its canonical JSON.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordFile {
    body: Body,
    check: Digest,
}

/// What a record says.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Body {
    /// [`FORMAT`].
    format: u32,
    /// The key document the output was built from (its SHA-256 is the key).
    key: serde_json::Value,
    /// The layout's `index.json` entry (manifest digest, size, platform, annotations).
    entry: Descriptor,
    /// The manifest, as its bytes were written.
    manifest: String,
    /// The config, as its bytes were written.
    config: String,
    /// The layer.
    layer: LayerRecord,
    /// The warnings reading the inputs gave.
    warnings: Vec<String>,
    /// An output in the work tree: every path of it.
    files: Option<Listing>,
    /// An output on a dist branch: the git tree of the layout.
    tree: Option<String>,
}

impl Body {
    /// A record of what `built` made, for `key`.
    fn of(key: serde_json::Value, built: &BuiltImage) -> Option<Body> {
        Some(Body {
            format: FORMAT,
            key,
            entry: built.image.entry.clone(),
            manifest: String::from_utf8(built.image.manifest.bytes.to_vec()).ok()?,
            config: String::from_utf8(built.image.config.bytes.to_vec()).ok()?,
            layer: LayerRecord::of(&built.layer),
            warnings: built.warnings.clone(),
            files: None,
            tree: None,
        })
    }

    /// The image the record describes, when its parts agree: the entry names the
    /// manifest's bytes, the manifest the config's, and both the recorded layer.
    fn image(&self) -> Option<BuiltImage> {
        let manifest: Doc<Manifest> = doc(self.manifest.as_bytes())?;
        let config: Doc<ImageConfig> = doc(self.config.as_bytes())?;
        let layer = self.layer.info()?;
        let [l] = manifest.value.layers.as_slice() else {
            return None;
        };
        let agrees = self.entry.digest == manifest.digest()
            && u64::try_from(self.entry.size).ok() == Some(manifest.bytes.len() as u64)
            && self.entry.media_type == crate::media::MANIFEST
            && manifest.value.config.digest == config.digest()
            && l.digest == layer.digest
            && u64::try_from(l.size).ok() == Some(layer.size)
            && l.media_type == layer.compression.media_type()
            && config.value.rootfs.diff_ids == [layer.diff_id.clone()];
        agrees.then(|| BuiltImage {
            image: Image::new(self.entry.clone(), manifest, config, None),
            layer,
            warnings: self.warnings.clone(),
            written: Some(crate::image::write::Written::Unchanged),
        })
    }
}

/// `bytes` decoded as a document.
fn doc<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Option<Doc<T>> {
    let value: T = serde_json::from_slice(bytes).ok()?;
    Some(Doc {
        value: Arc::new(value),
        bytes: bytes.into(),
    })
}

/// A layer, as a record holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct LayerRecord {
    compression: String,
    digest: Digest,
    size: u64,
    diff_id: Digest,
    uncompressed_size: u64,
}

impl LayerRecord {
    fn of(l: &LayerInfo) -> LayerRecord {
        LayerRecord {
            compression: l.compression.name().to_string(),
            digest: l.digest.clone(),
            size: l.size,
            diff_id: l.diff_id.clone(),
            uncompressed_size: l.uncompressed_size,
        }
    }

    fn info(&self) -> Option<LayerInfo> {
        Some(LayerInfo {
            compression: Compression::ALL
                .into_iter()
                .find(|c| c.name() == self.compression)?,
            digest: self.digest.clone(),
            size: self.size,
            diff_id: self.diff_id.clone(),
            uncompressed_size: self.uncompressed_size,
        })
    }
}

/// The key document of `spec` (see the module documentation); `None` when an input cannot
/// be read (the build then reports why).
pub fn key_document(spec: &ImageSpec, project_dir: &Path) -> Option<serde_json::Value> {
    // Every field named: a field added to these types must be decided on here.
    let ImageSpec {
        inputs,
        tree,
        platform,
        config,
        created_by,
        encode,
        ref_name,
        annotations,
        names,
        descriptor_file,
        profile,
    } = spec;
    let crate::input::TreeOptions {
        created,
        mtime,
        owners,
        xattrs,
        devices,
    } = tree;
    let crate::layer::EncodeOptions {
        compression,
        level,
        jobs: _,
    } = encode;
    let rel = |p: &Path| -> String {
        p.strip_prefix(project_dir)
            .unwrap_or(p)
            .to_string_lossy()
            .into_owned()
    };
    let mut docs = Vec::new();
    for input in inputs {
        let doc = match &input.source {
            InputSource::Rootfs(dir) => {
                let mut t = Tree::new(tree.clone());
                t.add_rootfs(dir, &input.origin).ok()?;
                let (digest, size) = tar_digest(t.finish().ok()?)?;
                json!({"kind": "rootfs", "path": rel(dir), "tar": digest, "tarSize": size})
            }
            InputSource::File { src, dest, mode } => {
                let mut t = Tree::new(tree.clone());
                t.add_file(src, dest, *mode, &input.origin).ok()?;
                let (digest, size) = tar_digest(t.finish().ok()?)?;
                json!({
                    "kind": "file", "path": rel(src), "dest": dest, "mode": mode,
                    "tar": digest, "tarSize": size,
                })
            }
            InputSource::Tar(path) => {
                let (digest, size) = file_digest(path)?;
                json!({"kind": "tar", "path": rel(path), "digest": digest, "size": size})
            }
            InputSource::Bytes { dest, bytes, mode } => json!({
                "kind": "bytes", "dest": dest, "mode": mode,
                "digest": Digest::sha256_of(bytes),
            }),
        };
        docs.push(doc);
    }
    let encoders: BTreeMap<&str, String> = encoder_versions().into_iter().collect();
    Some(json!({
        "format": FORMAT,
        "ocipack": env!("CARGO_PKG_VERSION"),
        "executable": executable(),
        "encoders": encoders,
        "inputs": docs,
        "created": created.to_string(),
        "mtime": match mtime { MtimeMode::Clamp => "clamp", MtimeMode::Fixed => "fixed" },
        "owners": owners.chosen.map(|o| o.as_str()),
        "xattrs": xattrs,
        "devices": devices,
        "platform": platform,
        "config": config,
        "createdBy": created_by,
        "compression": compression.name(),
        "level": level,
        "refName": ref_name,
        "annotations": annotations,
        "names": names.name(),
        "descriptorFile": descriptor_file,
        "profile": format!("{profile:?}"),
    }))
}

/// The running executable's size, modification time and inode.
fn executable() -> serde_json::Value {
    match rustix::fs::stat("/proc/self/exe") {
        Ok(st) => json!({
            "size": st.st_size,
            "mtime": st.st_mtime,
            "mtimeNsec": st.st_mtime_nsec,
            "dev": st.st_dev,
            "ino": st.st_ino,
        }),
        Err(_) => serde_json::Value::Null,
    }
}

/// The SHA-256 and size of the tar `entries` make.
fn tar_digest(entries: EntryList) -> Option<(Digest, u64)> {
    let w = entries
        .write_tar(HashingWriter::new(std::io::sink()))
        .ok()?;
    let (_, digest, size) = w.finish();
    Some((digest, size))
}

/// The SHA-256 and size of the file at `path`, read as a tar input is (never through a
/// final symlink, never a FIFO).
fn file_digest(path: &Path) -> Option<(Digest, u64)> {
    let (mut file, _) = open_named(path).ok()?;
    let mut h = Hasher::sha256();
    let mut buf = vec![0u8; READ_SIZE];
    loop {
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => h.update(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    let size = h.len();
    Some((h.finish(), size))
}

/// The key document's canonical bytes.
fn key_bytes(doc: &serde_json::Value) -> Option<Vec<u8>> {
    crate::cjson::to_vec(doc).ok()
}

/// What one layout's lookup found.
#[derive(Debug, Default)]
struct Slot {
    /// Its key document, when every input could be read.
    key: Option<serde_json::Value>,
    /// The image its output holds, and on a branch the layout's tree, when it is reused.
    hit: Option<(BuiltImage, Option<String>)>,
    /// What a build of it made: the record to write once it is committed.
    built: Option<Body>,
}

/// The records of one build: which outputs are reused, and what the others were built to.
#[derive(Debug, Default)]
pub struct Reuse {
    store: Option<Store>,
    slots: Vec<Slot>,
}

impl Reuse {
    /// No reuse (`--no-cache`, `--check`) for `n` layouts: every one is built, nothing is
    /// recorded.
    pub fn none(n: usize) -> Reuse {
        Reuse {
            store: None,
            slots: (0..n).map(|_| Slot::default()).collect(),
        }
    }

    /// Looks up every layout of `plan`, written to the work tree (in parallel, `plan.jobs`
    /// at a time): its key, and whether its output is reused (see the module
    /// documentation).
    pub fn find(plan: &Plan) -> Reuse {
        Reuse::find_with(plan.root.path(), &plan.targets, plan.jobs, |t, body| {
            lookup_in_tree(plan, t, body)
        })
    }

    /// Looks up layouts committed to branches: `trees[i]` is the tree the tip of
    /// `targets[i]`'s branch holds at its directory. A layout is reused when its record
    /// names that very tree (git's id of every byte of the layout) and the key.
    pub fn find_on_branches(
        project_dir: &Path,
        targets: &[ArchTarget],
        jobs: usize,
        trees: &[Option<String>],
    ) -> Reuse {
        Reuse::find_with(project_dir, targets, jobs, |t, body| {
            let i = targets.iter().position(|x| std::ptr::eq(x, t))?;
            let tree = trees.get(i)?.as_ref()?;
            (body.files.is_none() && body.tree.as_ref() == Some(tree))
                .then(|| body.image().map(|b| (b, Some(tree.clone()))))
                .flatten()
        })
    }

    fn find_with(
        project_dir: &Path,
        targets: &[ArchTarget],
        jobs: usize,
        holds: impl Fn(&ArchTarget, &Body) -> Option<(BuiltImage, Option<String>)> + Sync,
    ) -> Reuse {
        if targets.is_empty() {
            return Reuse::none(0);
        }
        let Some(store) = Store::for_project(project_dir) else {
            return Reuse::none(targets.len());
        };
        let slots = parallel_map(targets, jobs, |t| {
            let key = key_document(&t.spec, project_dir);
            let hit = key.as_ref().and_then(|k| {
                let body = store.read(&store.name(t))?;
                (key_bytes(&body.key)? == key_bytes(k)?)
                    .then(|| holds(t, &body))
                    .flatten()
            });
            Ok(Slot {
                key,
                hit,
                built: None,
            })
        });
        Reuse {
            slots: slots.into_iter().map(|s| s.unwrap_or_default()).collect(),
            store: Some(store),
        }
    }

    /// The image of layout `i` when its output is reused (not built).
    pub fn hit(&self, i: usize) -> Option<&BuiltImage> {
        self.slots.get(i)?.hit.as_ref().map(|(b, _)| b)
    }

    /// Layout `i`'s tree and image when it is reused on its branch.
    pub fn tree_hit(&self, i: usize) -> Option<(String, BuiltImage)> {
        let (b, tree) = self.slots.get(i)?.hit.as_ref()?;
        Some((tree.clone()?, b.clone()))
    }

    /// How many outputs are reused.
    pub fn hits(&self) -> usize {
        self.slots.iter().filter(|s| s.hit.is_some()).count()
    }

    /// Notes what layout `i` was built to in the work tree (its listing, known before it
    /// is written).
    pub fn built(&mut self, i: usize, listing: Listing, built: &BuiltImage) {
        self.note(i, built, |b| b.files = Some(listing));
    }

    /// Notes what layout `i` was built to on its branch: its tree.
    pub fn built_tree(&mut self, i: usize, tree: &str, built: &BuiltImage) {
        self.note(i, built, |b| b.tree = Some(tree.to_string()));
    }

    fn note(&mut self, i: usize, built: &BuiltImage, set: impl FnOnce(&mut Body)) {
        if self.store.is_none() {
            return;
        }
        let Some(s) = self.slots.get_mut(i) else {
            return;
        };
        let Some(key) = s.key.clone() else { return };
        s.built = Body::of(key, built).map(|mut b| {
            set(&mut b);
            b
        });
    }

    /// Once every output of `targets` (the layouts looked up, in the same order) is
    /// committed: writes the record of each layout built whose inputs still give the key
    /// they gave before the build (hashed again, `jobs` at a time).
    pub fn record(self, project_dir: &Path, targets: &[ArchTarget], jobs: usize) {
        let Some(store) = self.store else { return };
        let todo: Vec<(&ArchTarget, Body)> = targets
            .iter()
            .zip(self.slots)
            .filter_map(|(t, s)| Some((t, s.built?)))
            .collect();
        let records = parallel_map(&todo, jobs, |(t, body)| {
            let now = key_document(&t.spec, project_dir);
            if now.as_ref().and_then(key_bytes) != key_bytes(&body.key) {
                return Ok(None);
            }
            Ok(Some((store.name(t), body.clone())))
        });
        store.write(
            records
                .into_iter()
                .filter_map(|r| r.ok().flatten())
                .collect(),
        );
    }
}

/// The image `t`'s output in the work tree holds, with the record `body` of its key, if
/// the output still holds exactly what was built: every file of the recorded listing
/// (hashed), and documents equal to the record's.
fn lookup_in_tree(
    plan: &Plan,
    t: &ArchTarget,
    body: &Body,
) -> Option<(BuiltImage, Option<String>)> {
    let files = body.files.as_ref()?;
    let built = body.image()?;
    let out = plan.root.subdir(&t.output_rel, false).ok()?;
    if !files.matches(&out).ok()? {
        return None;
    }
    // The output holds what was built; its documents must be the record's.
    let layout = out.with_follow(Follow::Inside);
    let index_bytes = layout.read("index.json", blob::MAX_JSON).ok()?;
    let index: Index = serde_json::from_slice(&index_bytes).ok()?;
    let [entry] = index.manifests.as_slice() else {
        return None;
    };
    if *entry != body.entry {
        return None;
    }
    let manifest = read_blob(&layout, entry)?;
    let config = read_blob(&layout, &built.image.manifest.value.config)?;
    (manifest == body.manifest.as_bytes() && config == body.config.as_bytes())
        .then_some((built, None))
}

/// The bytes of the JSON blob `d` names beneath `layout`, checked against `d`.
fn read_blob(layout: &Root, d: &Descriptor) -> Option<Vec<u8>> {
    blob::open_blob(layout, d).ok()?.read_whole(d).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body() -> Body {
        let config = r#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:0000000000000000000000000000000000000000000000000000000000000000"]}}"#;
        let layer = LayerRecord {
            compression: "gzip".into(),
            digest: Digest::sha256_of(b"l"),
            size: 1,
            diff_id: "sha256:0000000000000000000000000000000000000000000000000000000000000000"
                .parse()
                .unwrap(),
            uncompressed_size: 2,
        };
        let manifest = serde_json::to_string(&json!({
            "schemaVersion": 2,
            "mediaType": crate::media::MANIFEST,
            "config": {
                "mediaType": crate::media::CONFIG,
                "digest": Digest::sha256_of(config.as_bytes()),
                "size": config.len(),
            },
            "layers": [{
                "mediaType": crate::media::LAYER_TAR_GZIP,
                "digest": layer.digest,
                "size": 1,
            }],
        }))
        .unwrap();
        Body {
            format: FORMAT,
            key: json!({"a": 1}),
            entry: Descriptor::new(
                crate::media::MANIFEST,
                Digest::sha256_of(manifest.as_bytes()),
                manifest.len() as u64,
            ),
            manifest,
            config: config.into(),
            layer,
            warnings: vec!["w".into()],
            files: Some(Listing::default()),
            tree: None,
        }
    }

    /// A record is read back as written; a record changed in any byte, truncated, of
    /// another format or missing is not read at all; one whose parts disagree describes
    /// no image.
    #[test]
    fn a_record_is_read_only_when_intact() {
        let t = tempfile::tempdir().unwrap();
        let store = Store {
            base: t.path().to_path_buf(),
            rel: "records".into(),
            project: t.path().to_path_buf(),
        };
        let name = store.name_of("amd64/oci", None);
        assert_ne!(name, store.name_of("amd64/oci", Some("dist-amd64")));
        assert_ne!(name, store.name_of("arm64v8/oci", None));
        assert!(store.read(&name).is_none());
        store.write(vec![(name.clone(), body())]);
        let read = store.read(&name).expect("the record written");
        assert_eq!(read.layer, body().layer);
        assert_eq!(read.key, body().key);
        let image = read.image().expect("its parts agree");
        assert_eq!(image.layer.uncompressed_size, 2);
        assert_eq!(image.image.entry, body().entry);

        let path = store.dir().join(&name);
        let good = std::fs::read(&path).unwrap();
        let text = String::from_utf8(good.clone()).unwrap();
        for (what, bad) in [
            (
                "a changed size",
                text.replace("\"uncompressedSize\":2", "\"uncompressedSize\":3")
                    .into_bytes(),
            ),
            (
                "a changed warning",
                text.replace("[\"w\"]", "[\"v\"]").into_bytes(),
            ),
            ("truncated", good[..good.len() - 1].to_vec()),
            ("empty", Vec::new()),
        ] {
            assert_ne!(bad, good, "{what}");
            std::fs::write(&path, &bad).unwrap();
            assert!(store.read(&name).is_none(), "{what}");
        }
        let mut other = body();
        other.format = FORMAT + 1;
        store.write(vec![(name.clone(), other)]);
        assert!(store.read(&name).is_none(), "another format");

        for (what, change) in [
            (
                "another manifest",
                (|b: &mut Body| b.manifest.push(' ')) as fn(&mut Body),
            ),
            ("another config", |b: &mut Body| b.config.push(' ')),
            ("another layer", |b: &mut Body| b.layer.size = 2),
            ("another diff_id", |b: &mut Body| {
                b.layer.diff_id = Digest::sha256_of(b"x")
            }),
            ("another compression", |b: &mut Body| {
                b.layer.compression = "zstd".into()
            }),
        ] {
            let mut b = body();
            change(&mut b);
            assert!(b.image().is_none(), "{what}");
        }
    }
}
