//! Reading a layout's documents: the one layout reader, behind [`super::open`].
//!
//! A layout may come from anyone (a git checkout, an archive), so nothing in it is trusted.
//! Every file is opened through [`Root`] (never outside the layout, never a FIFO or a
//! device); `oci-layout`, `index.json`, a single-descriptor file and every JSON blob are read
//! with a bound of [`MAX_JSON`] bytes, decoded by the rules' decoder (repeated keys are
//! errors; properties ocipack does not know are warnings, kept in
//! [`LayoutRead::unknown`](crate::image::rules::LayoutRead::unknown) for the profile that
//! refuses them), and a blob's bytes must hash to its digest before it is decoded. Whatever cannot
//! be read is recorded as a [`Problem`](crate::problems::Problem) naming the file and field,
//! and reading goes on, so that `verify` can report every problem at once.
//!
//! The reader reads documents only, into the model the rules judge
//! ([`LayoutRead`](crate::image::rules::LayoutRead)). Layer contents are streamed by the
//! verifier, once per distinct blob. `diff`, `push`, `export` and `fix` never call this
//! reader directly: they [`open`](super::open) a source, so a layout is verified whole
//! before any of them acts on it, and they then stream blobs through
//! [`Verified`](crate::image::blob::Verified) readers that refuse to finish with bytes
//! changed since.

use std::collections::{BTreeSet, HashMap};
use std::io;
use std::path::Path;

use crate::error::{Error, Result};
use crate::image::Doc;
use crate::image::blob::{self, BlobError, MAX_JSON, OpenedBlob, ReadError};
use crate::image::rules::docs::join_key;
use crate::image::rules::{Found, ImageRead, LayoutRead, NestedRead, identity};
use crate::media;
use crate::problems::Problems;
use crate::show;
use crate::spec::{Descriptor, ImageConfig, Index, Manifest, OciLayout};
use crate::store::root::{OpenError, Root};

/// A layout being read; problems go to [`Reader::problems`].
#[derive(Debug)]
pub struct Reader {
    /// The layout directory.
    pub root: Root,
    /// Every problem found so far.
    pub problems: Problems,
    /// Blob paths some descriptor points to.
    pub referenced: BTreeSet<String>,
    /// Configs already read, by digest and declared size: a config that many manifests
    /// share is read, verified and decoded once (a descriptor declaring another size is
    /// checked against the file on its own).
    configs: HashMap<(crate::digest::Digest, i64), Option<Doc<ImageConfig>>>,
    /// The properties of the documents read that ocipack does not know: (file, JSON path).
    unknown: Vec<(String, String)>,
}

impl Reader {
    /// Opens the layout directory `dir`; a `dir` that is not a directory is an input error.
    pub fn open(dir: &Path) -> Result<Reader> {
        let root = Root::open(dir).map_err(|e| {
            Error::input(
                format!("layout {}", show::path(dir)),
                match e.kind() {
                    io::ErrorKind::NotFound => "does not exist".to_string(),
                    io::ErrorKind::NotADirectory => "is not a directory".to_string(),
                    _ => format!("cannot be opened: {e}"),
                },
            )
        })?;
        Ok(Reader::at(root))
    }

    /// A reader of the layout directory `root` (symlinks beneath it are followed while they
    /// stay inside, whatever `root`'s own policy).
    pub fn at(root: Root) -> Reader {
        Reader {
            root: root.with_follow(crate::store::root::Follow::Inside),
            problems: Problems::default(),
            referenced: BTreeSet::new(),
            configs: HashMap::new(),
            unknown: Vec::new(),
        }
    }

    /// Reads the layout's documents: `oci-layout`, `index.json` (or the descriptor file
    /// `file`), and the manifest and config of every image descriptor.
    pub fn read(&mut self, file: Option<&str>) -> LayoutRead {
        let oci_layout = self
            .read_json_file("oci-layout")
            .and_then(|bytes| self.decode::<OciLayout>("oci-layout", bytes, &[]));
        let index = self
            .read_json_file("index.json")
            .and_then(|bytes| self.decode::<Index>("index.json", bytes, &["manifests", "subject"]));
        let entries = self.entries_of(index.as_ref(), "index.json");
        let descriptor_file = file.and_then(|name| {
            let bytes = self.read_json_file(name)?;
            let doc = self.decode::<Descriptor>(name, bytes, &[])?;
            Some((name.to_string(), doc))
        });

        let mut images = Vec::new();
        let mut selected = None;
        let mut seen = BTreeSet::new();
        if let Some((name, d)) = &descriptor_file {
            let found = Found {
                file: name.clone(),
                field: String::new(),
                descriptor: (*d.value).clone(),
            };
            seen.insert(identity(&found.descriptor));
            images.push(self.read_image(found));
            selected = Some(0);
        }
        let single = file.is_none() && entries.len() == 1;
        let nested = match entries.as_slice() {
            [only] if single && media::is_index(&only.descriptor.media_type) => {
                Some(self.read_nested(only.clone()))
            }
            _ => None,
        };
        let listed = match &nested {
            Some(n) => &n.entries,
            None => &entries,
        };
        for found in listed {
            // Read once per digest and size: a second descriptor of the same manifest that
            // declares another size is read (and its size refused) on its own.
            if !seen.insert(identity(&found.descriptor)) {
                continue;
            }
            images.push(self.read_image(found.clone()));
            if single && nested.is_none() {
                selected = Some(images.len() - 1);
            }
        }
        LayoutRead {
            blobs: crate::image::blob::Blobs::Layout(self.root.clone()),
            reference: None,
            oci_layout,
            index,
            descriptor_file,
            entries,
            nested,
            images,
            selected,
            unknown: std::mem::take(&mut self.unknown),
        }
    }

    /// Reads the image index `index.json`'s only entry points to.
    fn read_nested(&mut self, found: Found) -> NestedRead {
        let path = found.descriptor.digest.blob_path();
        let index = self
            .read_json_blob(&found, "image index")
            .and_then(|bytes| self.decode::<Index>(&path, bytes, &["manifests", "subject"]));
        let entries = self.entries_of(index.as_ref(), &path);
        NestedRead {
            found,
            path,
            index,
            entries,
        }
    }

    /// The entries of an image index read from `file` (`index.json`, or a nested index's
    /// blob), each with where it was found; its subject counts as referenced.
    fn entries_of(&mut self, index: Option<&Doc<Index>>, file: &str) -> Vec<Found> {
        let Some(index) = index else {
            return Vec::new();
        };
        if let Some(s) = &index.value.subject {
            self.referenced.insert(s.digest.blob_path());
        }
        index
            .value
            .manifests
            .iter()
            .enumerate()
            .map(|(i, d)| Found {
                file: file.to_string(),
                field: format!("manifests[{i}]"),
                descriptor: d.clone(),
            })
            .collect()
    }

    fn decode<T: serde::de::DeserializeOwned>(
        &mut self,
        file: &str,
        bytes: Vec<u8>,
        descriptors: &[&str],
    ) -> Option<Doc<T>> {
        super::decode_doc(
            &mut self.problems,
            &mut self.unknown,
            file,
            bytes,
            descriptors,
        )
    }

    /// Reads the manifest and config an image descriptor points to. A descriptor of another
    /// media type is not followed (the rules report it).
    fn read_image(&mut self, found: Found) -> ImageRead {
        let manifest_path = found.descriptor.digest.blob_path();
        let mut out = ImageRead {
            found,
            manifest_path,
            manifest: None,
            config_path: String::new(),
            config: None,
        };
        if !media::is_manifest(&out.found.descriptor.media_type) {
            self.referenced.insert(out.manifest_path.clone());
            return out;
        }
        let Some(bytes) = self.read_json_blob(&out.found, "manifest") else {
            return out;
        };
        let path = out.manifest_path.clone();
        out.manifest = self.decode::<Manifest>(&path, bytes, &["config", "layers", "subject"]);
        let Some(manifest) = &out.manifest else {
            return out;
        };
        if let Some(s) = &manifest.value.subject {
            self.referenced.insert(s.digest.blob_path());
        }
        let config_at = Found {
            file: path,
            field: "config".into(),
            descriptor: manifest.value.config.clone(),
        };
        out.config_path = config_at.descriptor.digest.blob_path();
        if crate::image::rules::is_attestation(&out.found.descriptor) {
            // Not an image: its blobs are checked as bytes.
            return out;
        }
        let digest = identity(&config_at.descriptor);
        if let Some(known) = self.configs.get(&digest) {
            out.config = known.clone();
            return out;
        }
        if let Some(bytes) = self.read_json_blob(&config_at, "config") {
            let cpath = out.config_path.clone();
            out.config = self.decode::<ImageConfig>(&cpath, bytes, &[]);
        }
        self.configs.insert(digest, out.config.clone());
        out
    }

    /// Reads a JSON file that is not a blob, bounded by [`MAX_JSON`].
    fn read_json_file(&mut self, name: &str) -> Option<Vec<u8>> {
        match self.root.read(name, MAX_JSON) {
            Ok(b) => Some(b),
            Err(OpenError::TooLarge { size, .. }) => {
                self.problems.error(
                    name,
                    None,
                    format!(
                        "{size} bytes, more than the {MAX_JSON} verify reads of a JSON document"
                    ),
                );
                None
            }
            Err(e) => {
                self.problems.error(name, None, e.to_string());
                None
            }
        }
    }

    /// Opens the blob a descriptor points to, checking type and size; records the problem
    /// (and a warning for a symlinked blob, which go-containerregistry ≥ 0.21.7 refuses).
    pub fn open_blob(&mut self, at: &Found, what: &str) -> Option<OpenedBlob> {
        let d = &at.descriptor;
        let path = d.digest.blob_path();
        self.referenced.insert(path.clone());
        let by = format!("the {what} referenced by {}", at.place());
        let blob = match blob::open_blob(&self.root, d) {
            Ok(b) => b,
            // A negative size is reported by the descriptor rules.
            Err(BlobError::NegativeSize(_)) => return None,
            Err(BlobError::Size { actual, declared }) => {
                self.problems.error(
                    &path,
                    None,
                    format!(
                        "{actual} bytes, but {} declares size {declared}",
                        at.place()
                    ),
                );
                return None;
            }
            Err(e) => {
                self.problems.error(&path, None, format!("{by} {e}"));
                return None;
            }
        };
        if !blob.opened.symlinks.is_empty() {
            // What the links lead to is referenced through them (debian's layouts keep
            // `blobs/image-config.json` and link `blobs/sha256/<hex>` to it), and so is
            // every link followed on the way.
            for (link, _) in &blob.opened.symlinks {
                self.referenced.insert(link.clone());
            }
            if let Some(end) = link_end(&blob.opened.symlinks) {
                self.referenced.insert(end);
            }
            let chain: Vec<String> = blob
                .opened
                .symlinks
                .iter()
                .map(|(link, target)| {
                    if *link == path {
                        format!("→ {target}")
                    } else {
                        format!("{link} → {target}")
                    }
                })
                .collect();
            self.problems.warn(
                &path,
                None,
                format!(
                    "the blob is a symlink ({}): go-containerregistry ≥ 0.21.7 (crane) refuses symlinked blobs",
                    chain.join(", ")
                ),
            );
        }
        Some(blob)
    }

    /// Reads a JSON blob whole, checking its size and digest; `None` (with problems
    /// recorded) unless it is exactly what the descriptor says.
    fn read_json_blob(&mut self, at: &Found, what: &str) -> Option<Vec<u8>> {
        let d = &at.descriptor;
        if d.size > MAX_JSON as i64 {
            self.referenced.insert(d.digest.blob_path());
            self.problems.error(
                &at.file,
                Some(join_key(&at.field, "size")),
                format!(
                    "the {what} claims {} bytes, more than the {MAX_JSON} verify reads of a JSON document",
                    d.size
                ),
            );
            return None;
        }
        let blob = self.open_blob(at, what)?;
        let path = blob.path.clone();
        let why = match blob.read_whole(d) {
            Ok(bytes) => return Some(bytes),
            Err(ReadError::Io(e)) => format!("cannot be read: {e}"),
            Err(ReadError::ChangedSize) => "changed size while being read".to_string(),
            Err(ReadError::Digest(actual)) => format!(
                "the content hashes to {actual}, not to its digest {} (tampered or corrupt)",
                d.digest
            ),
        };
        self.problems.error(&path, None, why);
        None
    }
}

/// Where a chain of symlinks followed to reach a file ends, relative to the layout: the last
/// link's target, taken from the directory holding that link (no link was followed after
/// it, so `..` is the parent directory by name). `None` if it climbs out of the layout,
/// which opening through [`Root`] never lets happen.
fn link_end(symlinks: &[(String, String)]) -> Option<String> {
    let (link, target) = symlinks.last()?;
    let mut parts: Vec<&str> = link.split('/').collect();
    parts.pop();
    for c in target.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            c => parts.push(c),
        }
    }
    Some(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_chain_ends_where_its_last_target_leads() {
        let chain = |links: &[(&str, &str)]| {
            let v: Vec<(String, String)> = links
                .iter()
                .map(|(l, t)| (l.to_string(), t.to_string()))
                .collect();
            link_end(&v)
        };
        assert_eq!(
            chain(&[("blobs/sha256/abc", "../image-config.json")]).as_deref(),
            Some("blobs/image-config.json")
        );
        assert_eq!(
            chain(&[("blobs/sha256/abc", "../../rootfs.tar.gz")]).as_deref(),
            Some("rootfs.tar.gz")
        );
        assert_eq!(
            chain(&[
                ("blobs/sha256", "real"),
                ("blobs/real/abc", "./sub//x/../y")
            ])
            .as_deref(),
            Some("blobs/real/sub/y")
        );
        assert_eq!(chain(&[("a", "../x")]), None);
        assert_eq!(chain(&[]), None);
    }
}
