//! Reading a registry's image for checking: the same model and rules as a layout's, with
//! the registry's documents in place of `index.json` and the blob files.
//!
//! The reference's manifest or index is fetched through the read client
//! ([`crate::registry::fetch`], which checks every document against its digest, size and
//! media type as it arrives), then, for an index, every manifest it lists, and each image's
//! config. What cannot be fetched or decoded is recorded as a problem naming the document
//! by digest (the reference for the top one) and the field that points to it, and reading
//! goes on, so that `verify` reports every problem at once, as for a layout. There is no
//! `oci-layout` nor `index.json`: the registry's document is the only entry
//! ([`LayoutRead::reference`]). Blobs stream from the registry ([`SharedFetcher`]) through
//! the same verifier as a layout's files, each once; nothing is written anywhere. A
//! manifest or index that the rules check as bytes (an index nested in the index) comes
//! from the registry's `manifests/` endpoint, where registries serve it, not as a blob.

use std::collections::HashMap;
use std::io::Read;
use std::sync::Arc;

use crate::digest::Digest;
use crate::image::Doc;
use crate::image::blob::{Blobs, MAX_JSON};
use crate::image::rules::{Found, ImageRead, LayoutRead, NestedRead, identity, is_attestation};
use crate::media;
use crate::problems::Problems;
use crate::registry::Reference;
use crate::registry::fetch::{FetchOptions, Fetcher, ManifestKind, SharedFetcher};
use crate::spec::{Descriptor, ImageConfig, Index, Manifest};

use super::stream::{Store, Stream};

/// A registry repository being read for checking; problems go to [`Remote::problems`].
pub(super) struct Remote {
    /// The read client, shared with the images read (their blobs stream through it).
    pub shared: SharedFetcher,
    /// Every problem found so far.
    pub problems: Problems,
    /// The reference as messages name it (`docker://host/repository:tag`).
    pub shown: String,
    /// Configs already read, by digest and declared size.
    configs: HashMap<(Digest, i64), Option<Doc<ImageConfig>>>,
    /// The properties of the documents read that ocipack does not know: (document, path).
    unknown: Vec<(String, String)>,
}

impl Remote {
    /// Connects to the registry of `reference` (reading the Docker config file and the TLS
    /// files now: errors in them are input errors).
    pub fn connect(reference: &Reference, opts: &FetchOptions) -> crate::Result<Remote> {
        let fetcher = Fetcher::connect(reference, opts)?;
        Ok(Remote {
            shared: SharedFetcher::new(fetcher, reference),
            problems: Problems::default(),
            shown: crate::show::text(&reference.with_transport()),
            configs: HashMap::new(),
            unknown: Vec::new(),
        })
    }

    /// Reads the documents of `reference`: its manifest or index, and for an index every
    /// manifest it lists, and each image's config. The reference's own document must be
    /// there (else an error: there is nothing to check); anything below it that cannot be
    /// read is a problem.
    pub fn read(&mut self, reference: &Reference) -> crate::Result<LayoutRead> {
        let top = self
            .shared
            .with(|f| f.manifest(&reference.tag_or_digest()))?;
        let found = Found {
            file: self.shown.clone(),
            field: String::new(),
            descriptor: top.descriptor(),
        };
        let mut layout = LayoutRead {
            blobs: Blobs::Remote(Arc::new(self.shared.clone())),
            reference: Some(self.shown.clone()),
            oci_layout: None,
            index: None,
            descriptor_file: None,
            entries: vec![found.clone()],
            nested: None,
            images: Vec::new(),
            selected: None,
            unknown: Vec::new(),
        };
        if top.kind.is_index() {
            let path = self.shown.clone();
            let index = self.decode::<Index>(&path, top.bytes, &["manifests", "subject"]);
            let entries: Vec<Found> = index
                .as_ref()
                .map(|i| {
                    i.value
                        .manifests
                        .iter()
                        .enumerate()
                        .map(|(n, d)| Found {
                            file: path.clone(),
                            field: format!("manifests[{n}]"),
                            descriptor: d.clone(),
                        })
                        .collect()
                })
                .unwrap_or_default();
            let mut seen = std::collections::BTreeSet::new();
            for e in &entries {
                if seen.insert(identity(&e.descriptor)) {
                    let image = self.read_image(e.clone(), None);
                    layout.images.push(image);
                }
            }
            layout.nested = Some(NestedRead {
                found,
                path,
                index,
                entries,
            });
        } else {
            let bytes = top.bytes;
            layout.images.push(self.read_image(found, Some(bytes)));
            layout.selected = Some(0);
        }
        layout.unknown = std::mem::take(&mut self.unknown);
        Ok(layout)
    }

    /// Reads the manifest a descriptor points to (its bytes, when they were fetched
    /// already) and its config. A descriptor of another media type is not followed (the
    /// rules report it); an attestation manifest's config is not read (it is no image).
    fn read_image(&mut self, found: Found, bytes: Option<Vec<u8>>) -> ImageRead {
        let manifest_path = if found.field.is_empty() {
            found.file.clone()
        } else {
            found.descriptor.digest.to_string()
        };
        let mut out = ImageRead {
            found,
            manifest_path,
            manifest: None,
            config_path: String::new(),
            config: None,
        };
        if !media::is_manifest(&out.found.descriptor.media_type) {
            return out;
        }
        let bytes = match bytes {
            Some(b) => b,
            None => {
                let d = out.found.descriptor.clone();
                match self.shared.with(|f| f.manifest_for(&d)) {
                    Ok(m) => m.bytes,
                    Err(e) => {
                        self.problems.error(
                            &out.found.file,
                            Some(out.found.field.clone()),
                            e.to_string(),
                        );
                        return out;
                    }
                }
            }
        };
        let path = out.manifest_path.clone();
        out.manifest = self.decode::<Manifest>(&path, bytes, &["config", "layers", "subject"]);
        let Some(manifest) = &out.manifest else {
            return out;
        };
        let config = manifest.value.config.clone();
        out.config_path = config.digest.to_string();
        if is_attestation(&out.found.descriptor) {
            return out;
        }
        let key = identity(&config);
        if let Some(known) = self.configs.get(&key) {
            out.config = known.clone();
            return out;
        }
        if config.size > MAX_JSON as i64 {
            self.problems.error(
                &path,
                Some("config.size".into()),
                format!(
                    "the config claims {} bytes, more than the {MAX_JSON} verify reads of a \
                     JSON document",
                    config.size
                ),
            );
        } else {
            match self.shared.with(|f| f.blob_to_vec(&config, MAX_JSON)) {
                Ok(bytes) => {
                    let cpath = out.config_path.clone();
                    out.config = self.decode::<ImageConfig>(&cpath, bytes, &[]);
                }
                Err(e) => self
                    .problems
                    .error(&path, Some("config".into()), e.to_string()),
            }
        }
        self.configs.insert(key, out.config.clone());
        out
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
}

impl Store for Remote {
    fn problems(&mut self) -> &mut Problems {
        &mut self.problems
    }

    fn open(&mut self, at: &Found, _what: &str) -> Option<Stream> {
        if ManifestKind::of(&at.descriptor.media_type).is_some() {
            // A manifest or index (one an index nests) is served at `manifests/`, not as
            // a blob: fetched there, checked against the descriptor as it arrives.
            let d = at.descriptor.clone();
            return match self.shared.with(|f| f.manifest_for(&d)) {
                Ok(m) => Some(Stream {
                    path: d.digest.to_string(),
                    reader: Box::new(std::io::Cursor::new(m.bytes)) as Box<dyn Read + Send>,
                    file: None,
                }),
                Err(e) => {
                    self.problems
                        .error(&at.file, Some(at.field.clone()), e.to_string());
                    None
                }
            };
        }
        match self.shared.stream(&at.descriptor) {
            Ok(s) => Some(Stream {
                path: at.descriptor.digest.to_string(),
                reader: Box::new(s) as Box<dyn Read + Send>,
                file: None,
            }),
            Err(e) => {
                self.problems
                    .error(&at.file, Some(at.field.clone()), e.to_string());
                None
            }
        }
    }

    fn lacks(&mut self, d: &Descriptor) -> Option<String> {
        let d = d.clone();
        self.shared
            .with(|f| f.manifest_for(&d))
            .err()
            .map(|e| e.to_string())
    }

    fn foreign_unchecked(&mut self, _: &Descriptor) -> Option<String> {
        Some("registries do not serve foreign layers, and ocipack never fetches one".into())
    }

    fn wrong_size(&self, n: u64, declared: i64) -> String {
        if n > declared as u64 {
            format!("the registry sends more than the {declared} bytes its descriptor declares")
        } else {
            format!("the registry sends {n} bytes; its descriptor declares {declared}")
        }
    }
}
