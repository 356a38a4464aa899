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
//! - **The record** of a layout says what the build with that key made: the manifest
//!   digest, the layer (digest, size, diff_id, uncompressed size, compression), the
//!   warnings the inputs gave, and the exact listing of the output ([`Listing`]: every path
//!   with its type, each file's size and SHA-256, each symlink's target). It is written
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
//!   with the record. Otherwise the output is built as without a record. A record is
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
use crate::spec::{ImageConfig, Index, Manifest};
use crate::store::files::write_into;
use crate::store::listing::Listing;
use crate::store::root::{Follow, OpenError, Root, open_named};

/// The version of the record format; a record of another is never read.
pub const FORMAT: u32 = 1;
/// The largest record read.
const MAX_RECORD: u64 = 4 << 20;
/// How many bytes an input file is read in while it is hashed.
const READ_SIZE: usize = 1 << 20;

/// Where a project's records are kept.
#[derive(Debug, Clone)]
pub struct Store {
    /// The records' directory.
    dir: PathBuf,
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
        Some(Store {
            dir: base.join(rel),
            project,
        })
    }

    /// Creates the records' directory if it is missing: beneath the deepest directory of
    /// its path that exists, refusing any symlink below that one.
    fn create(&self) -> Option<()> {
        let mut existing = self.dir.clone();
        let mut missing: Vec<String> = Vec::new();
        while std::fs::symlink_metadata(&existing).is_err() {
            missing.insert(0, existing.file_name()?.to_str()?.to_string());
            existing = existing.parent()?.to_path_buf();
        }
        if missing.is_empty() {
            return Some(());
        }
        let root = Root::open_with(&existing, Follow::Never).ok()?;
        root.subdir(&missing.join("/"), true).ok()?;
        Some(())
    }

    /// The directory records are kept in.
    pub fn dir(&self) -> &Path {
        &self.dir
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
        let root = Root::open_with(&self.dir, Follow::Never).ok()?;
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
        if !files.is_empty() && self.create().is_some() {
            let _ = write_into(&self.dir, &files);
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
#[serde(deny_unknown_fields)]
struct Body {
    /// [`FORMAT`].
    format: u32,
    /// The key document the output was built from (its SHA-256 is the key).
    key: serde_json::Value,
    /// The layout's manifest digest.
    manifest: Digest,
    /// The layer.
    layer: LayerRecord,
    /// The warnings reading the inputs gave.
    warnings: Vec<String>,
    /// Every path of the output.
    files: Listing,
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
    /// The image the output on disk holds, when it is reused.
    hit: Option<BuiltImage>,
    /// What a build of it made: the record to write once it is committed.
    built: Option<(Digest, LayerRecord, Vec<String>, Listing)>,
}

/// The records of one build: which outputs are reused, and what the others were built to.
#[derive(Debug, Default)]
pub struct Reuse {
    store: Option<Store>,
    slots: Vec<Slot>,
}

impl Reuse {
    /// No reuse (`--no-cache`, `--check`): every output is built, nothing is recorded.
    pub fn none(plan: &Plan) -> Reuse {
        Reuse {
            store: None,
            slots: plan.targets.iter().map(|_| Slot::default()).collect(),
        }
    }

    /// Looks up every layout of `plan` (in parallel, `plan.jobs` at a time): its key, and
    /// whether its output is reused (see the module documentation).
    pub fn find(plan: &Plan) -> Reuse {
        if plan.targets.is_empty() {
            return Reuse::none(plan);
        }
        let Some(store) = Store::for_project(plan.root.path()) else {
            return Reuse::none(plan);
        };
        let project_dir = plan.root.path();
        let slots = parallel_map(&plan.targets, plan.jobs, |t| {
            let key = key_document(&t.spec, project_dir);
            let hit = key
                .as_ref()
                .and_then(|k| lookup(&store, plan, t, k))
                .map(|mut built| {
                    built.written = Some(crate::image::write::Written::Unchanged);
                    built
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
        self.slots.get(i).and_then(|s| s.hit.as_ref())
    }

    /// How many outputs are reused.
    pub fn hits(&self) -> usize {
        self.slots.iter().filter(|s| s.hit.is_some()).count()
    }

    /// Notes what layout `i` was built to (its listing, known before it is written).
    pub fn built(&mut self, i: usize, listing: Listing, built: &BuiltImage) {
        if self.store.is_none() {
            return;
        }
        if let Some(s) = self.slots.get_mut(i) {
            s.built = Some((
                built.image.entry.digest.clone(),
                LayerRecord::of(&built.layer),
                built.warnings.clone(),
                listing,
            ));
        }
    }

    /// Once every output is committed: writes the record of each layout built whose inputs
    /// still give the key they gave before the build (hashed again, in parallel).
    pub fn record(self, plan: &Plan) {
        let Some(store) = self.store else { return };
        let project_dir = plan.root.path();
        let todo: Vec<(usize, Slot)> = self
            .slots
            .into_iter()
            .enumerate()
            .filter(|(_, s)| s.key.is_some() && s.built.is_some())
            .collect();
        let records = parallel_map(&todo, plan.jobs, |(i, s)| {
            let t = &plan.targets[*i];
            let (Some(key), Some((manifest, layer, warnings, files))) = (&s.key, &s.built) else {
                return Ok(None);
            };
            let now = key_document(&t.spec, project_dir);
            if now.as_ref().and_then(key_bytes) != key_bytes(key) {
                return Ok(None);
            }
            Ok(Some((
                store.name(t),
                Body {
                    format: FORMAT,
                    key: key.clone(),
                    manifest: manifest.clone(),
                    layer: layer.clone(),
                    warnings: warnings.clone(),
                    files: files.clone(),
                },
            )))
        });
        store.write(
            records
                .into_iter()
                .filter_map(|r| r.ok().flatten())
                .collect(),
        );
    }
}

/// The image `t`'s output holds, if the record says it was built with `key` and the output
/// still holds exactly what was built.
fn lookup(
    store: &Store,
    plan: &Plan,
    t: &ArchTarget,
    key: &serde_json::Value,
) -> Option<BuiltImage> {
    let body = store.read(&store.name(t))?;
    if key_bytes(&body.key)? != key_bytes(key)? {
        return None;
    }
    let out = match plan.root.subdir(&t.output_rel, false) {
        Ok(r) => r,
        Err(OpenError::NotFound) => return None,
        Err(_) => return None,
    };
    if !body.files.matches(&out).ok()? {
        return None;
    }
    // The output is exactly what was built: its documents are read from it (a few
    // kilobytes), and must agree with the record.
    let layout = out.with_follow(Follow::Inside);
    let index_bytes = layout.read("index.json", blob::MAX_JSON).ok()?;
    let index: Index = serde_json::from_slice(&index_bytes).ok()?;
    let [entry] = index.manifests.as_slice() else {
        return None;
    };
    if entry.digest != body.manifest || entry.media_type != crate::media::MANIFEST {
        return None;
    }
    let manifest = read_doc::<Manifest>(&layout, entry)?;
    let config = read_doc::<ImageConfig>(&layout, &manifest.value.config)?;
    let layer = body.layer.info()?;
    let [l] = manifest.value.layers.as_slice() else {
        return None;
    };
    let agrees = l.digest == layer.digest
        && u64::try_from(l.size).ok() == Some(layer.size)
        && config.value.rootfs.diff_ids == [layer.diff_id.clone()]
        && l.media_type == layer.compression.media_type();
    if !agrees {
        return None;
    }
    Some(BuiltImage {
        image: Image::new(entry.clone(), manifest, config, None),
        layer,
        warnings: body.warnings,
        written: None,
    })
}

/// The JSON blob `d` names beneath `layout`, checked against `d` and decoded.
fn read_doc<T: serde::de::DeserializeOwned>(
    layout: &Root,
    d: &crate::spec::Descriptor,
) -> Option<Doc<T>> {
    let bytes = blob::open_blob(layout, d).ok()?.read_whole(d).ok()?;
    let value: T = serde_json::from_slice(&bytes).ok()?;
    Some(Doc {
        value: Arc::new(value),
        bytes: bytes.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body() -> Body {
        Body {
            format: FORMAT,
            key: json!({"a": 1}),
            manifest: Digest::sha256_of(b"m"),
            layer: LayerRecord {
                compression: "gzip".into(),
                digest: Digest::sha256_of(b"l"),
                size: 1,
                diff_id: Digest::sha256_of(b"d"),
                uncompressed_size: 2,
            },
            warnings: vec!["w".into()],
            files: Listing::default(),
        }
    }

    /// A record is read back as written; a record changed in any byte, truncated, of
    /// another format or missing is not read at all.
    #[test]
    fn a_record_is_read_only_when_intact() {
        let t = tempfile::tempdir().unwrap();
        let store = Store {
            dir: t.path().to_path_buf(),
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

        let path = t.path().join(&name);
        let good = std::fs::read(&path).unwrap();
        let text = String::from_utf8(good.clone()).unwrap();
        for (what, bad) in [
            (
                "a changed size",
                text.replace("\"size\":1", "\"size\":3").into_bytes(),
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
    }
}
