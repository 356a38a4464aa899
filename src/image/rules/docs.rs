//! Decoding the layout's JSON documents strictly, and the checks that need nothing but
//! the document itself.
//!
//! Bytes are first parsed into a [`Value`] (serde_json's recursion limit of 128 stops
//! deeply nested input before it can exhaust the stack), then decoded into the strict
//! structs of [`crate::spec`]. When decoding fails, each descriptor inside the document is
//! decoded on its own, so that every bad descriptor is reported with its JSON path.
//!
//! A descriptor's own rules (`check_descriptor`), applied to every descriptor a document
//! holds (a `subject` too), include its `data`: the image spec says it MUST be RFC 4648
//! base64 of exactly the referenced content, and Go clients such as skopeo refuse a document
//! whose `data` is not base64 at all ("illegal base64 data").

use std::collections::BTreeSet;
use std::fmt;

use base64::Engine as _;
use serde::de::{self, DeserializeOwned, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::digest::{Digest, Hasher};
use crate::media::{self, Compression};
use crate::problems::{Problem, Problems};
use crate::spec::{Descriptor, ImageConfig, Index, Manifest, OciLayout};

/// The layout's JSON document kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Document {
    /// `oci-layout`.
    OciLayout,
    /// `index.json`.
    Index,
    /// A single-descriptor file (bashbrew's `File:`).
    Descriptor,
    /// An image manifest blob.
    Manifest,
    /// An image config blob.
    Config,
}

/// Appends a member to a JSON path: `.key`, or `["key"]` when the key is not an identifier.
pub fn join_key(path: &str, key: &str) -> String {
    let ident = !key.is_empty()
        && key
            .bytes()
            .enumerate()
            .all(|(i, b)| b == b'_' || b.is_ascii_alphabetic() || (i > 0 && b.is_ascii_digit()));
    match (path.is_empty(), ident) {
        (true, true) => key.to_string(),
        (false, true) => format!("{path}.{key}"),
        _ => format!("{path}[{}]", Value::String(key.to_string())),
    }
}

/// Any JSON value in which no object repeats a key. Parsers disagree on which of two
/// equal keys wins (and serde's maps silently keep the last), so a repeated key is an
/// error, not an ambiguity.
struct NoDuplicateKeys;

impl<'de> Deserialize<'de> for NoDuplicateKeys {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NoDuplicateKeys)
    }
}

impl<'de> Visitor<'de> for NoDuplicateKeys {
    type Value = NoDuplicateKeys;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_str<E>(self, _: &str) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_unit<E>(self) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self, A::Error> {
        while seq.next_element::<NoDuplicateKeys>()?.is_some() {}
        Ok(self)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self, A::Error> {
        let mut keys = BTreeSet::new();
        while let Some(k) = map.next_key::<String>()? {
            if !keys.insert(k.clone()) {
                return Err(de::Error::custom(format!("duplicate key {k:?}")));
            }
            map.next_value::<NoDuplicateKeys>()?;
        }
        Ok(self)
    }
}

/// Parses `bytes` as JSON and decodes it strictly as `T`. Problems go to `p` under `file`.
pub(crate) fn decode<T: DeserializeOwned>(
    p: &mut Problems,
    file: &str,
    bytes: &[u8],
    descriptors: &[&str],
) -> Option<(T, Value)> {
    if let Err(e) = serde_json::from_slice::<NoDuplicateKeys>(bytes) {
        p.error(file, None, format!("not valid JSON: {e}"));
        return None;
    }
    let value: Value = match serde_json::from_slice(bytes) {
        Ok(v) => v,
        Err(e) => {
            p.error(file, None, format!("not valid JSON: {e}"));
            return None;
        }
    };
    match T::deserialize(&value) {
        Ok(t) => Some((t, value)),
        Err(e) => {
            // Find the descriptors that fail on their own, to name them precisely.
            let mut located = false;
            for key in descriptors {
                match value.get(key) {
                    Some(Value::Array(items)) => {
                        for (i, item) in items.iter().enumerate() {
                            if let Err(e) = Descriptor::deserialize(item) {
                                p.error(file, Some(format!("{key}[{i}]")), e.to_string());
                                located = true;
                            }
                        }
                    }
                    Some(item @ Value::Object(_)) => {
                        if let Err(e) = Descriptor::deserialize(item) {
                            p.error(file, Some(key.to_string()), e.to_string());
                            located = true;
                        }
                    }
                    _ => {}
                }
            }
            if !located {
                p.error(file, None, e.to_string());
            }
            None
        }
    }
}

/// Checks a descriptor's own fields (the blob behind it is checked elsewhere): its size,
/// no `urls`, and `data`, when present, exactly the referenced content in base64.
pub(crate) fn check_descriptor(p: &mut Problems, file: &str, field: &str, d: &Descriptor) {
    if d.size < 0 {
        p.error(
            file,
            Some(join_key(field, "size")),
            format!("negative size {}", d.size),
        );
    }
    if d.urls.is_some() {
        p.error(
            file,
            Some(join_key(field, "urls")),
            "external blob locations (foreign layers) are not allowed: every blob must be in the layout",
        );
    }
    if let Some(data) = &d.data
        && let Some(why) = check_data(data, d)
    {
        p.error(
            file,
            Some(join_key(field, "data")),
            format!(
                "{} (the image spec requires data to be the referenced content in base64, \
                 RFC 4648; Go clients such as skopeo refuse data that is not base64)",
                why.trim_end_matches('.')
            ),
        );
    }
}

/// `data`: padded base64 of exactly `ceil(size/3)*4` characters, decoding to bytes with the
/// descriptor's size and digest. `None` when it is valid. Nothing is decoded unless the
/// length fits the declared size, so a size claim allocates nothing.
pub fn check_data(data: &str, d: &Descriptor) -> Option<String> {
    let size = u64::try_from(d.size).ok()?;
    let want_len = size.div_ceil(3).saturating_mul(4);
    if data.len() as u64 != want_len {
        return Some(format!(
            "{} base64 characters, but a size of {size} needs {want_len}",
            data.len()
        ));
    }
    let bytes = match base64::engine::general_purpose::STANDARD.decode(data) {
        Ok(b) => b,
        Err(e) => return Some(format!("not valid base64: {e}")),
    };
    let mut h = Hasher::new(d.digest.algorithm());
    h.update(&bytes);
    let got: Digest = h.finish();
    if bytes.len() as u64 != size || got != d.digest {
        return Some(format!(
            "decodes to {} bytes hashing to {got}, not to the descriptor's {size} bytes and {}",
            bytes.len(),
            d.digest
        ));
    }
    None
}

/// `oci-layout`: the layout version ocipack (and every reader) knows.
pub(crate) fn check_oci_layout(p: &mut Problems, file: &str, l: &OciLayout) {
    if l.image_layout_version != "1.0.0" {
        p.error(
            file,
            Some("imageLayoutVersion".into()),
            format!(
                "version {:?}; the OCI image layout version is \"1.0.0\"",
                l.image_layout_version
            ),
        );
    }
}

/// An image index's own fields and each of its descriptors' (`index.json`, or a nested
/// index blob).
pub(crate) fn check_index(p: &mut Problems, file: &str, index: &Index) {
    if index.schema_version != 2 {
        p.error(
            file,
            Some("schemaVersion".into()),
            format!("schemaVersion {}; it must be 2", index.schema_version),
        );
    }
    if let Some(mt) = &index.media_type
        && !media::is_index(mt)
    {
        p.error(
            file,
            Some("mediaType".into()),
            format!(
                "{mt:?}; an index is {:?} (or Docker's manifest list, {:?})",
                media::INDEX,
                media::DOCKER_MANIFEST_LIST
            ),
        );
    }
    for (i, d) in index.manifests.iter().enumerate() {
        check_descriptor(p, file, &format!("manifests[{i}]"), d);
    }
    if let Some(s) = &index.subject {
        check_descriptor(p, file, "subject", s);
    }
}

/// Checks the media type of a descriptor that must point to an image manifest.
pub(crate) fn check_manifest_descriptor(
    p: &mut Problems,
    file: &str,
    field: &str,
    d: &Descriptor,
) -> bool {
    check_descriptor(p, file, field, d);
    if media::is_manifest(&d.media_type) {
        return true;
    }
    let why = if media::is_index(&d.media_type) {
        " (a nested index)"
    } else {
        ""
    };
    p.error(
        file,
        Some(join_key(field, "mediaType")),
        format!(
            "{:?}{why}; the oci-import builder needs an image manifest, {:?} (or Docker's \
             v2 manifest, {:?}, which it refuses too)",
            d.media_type,
            media::MANIFEST,
            media::DOCKER_MANIFEST
        ),
    );
    false
}

/// An image manifest's own fields, its config descriptor and its layer descriptors.
/// `declared` is the media type its descriptor gives it: an OCI manifest has an OCI config
/// and OCI layers; a Docker v2 manifest (which must say so in its `mediaType`) has Docker's
/// config and layer types, as Docker and the distribution spec define them.
pub(crate) fn check_manifest(p: &mut Problems, file: &str, m: &Manifest, declared: &str) {
    if m.schema_version != 2 {
        p.error(
            file,
            Some("schemaVersion".into()),
            format!("schemaVersion {}; it must be 2", m.schema_version),
        );
    }
    let docker = declared == media::DOCKER_MANIFEST;
    match &m.media_type {
        Some(mt) if mt != declared => p.error(
            file,
            Some("mediaType".into()),
            format!("{mt:?}, but its descriptor says {declared:?}"),
        ),
        None if docker => p.error(
            file,
            Some("mediaType".into()),
            format!("absent; a Docker v2 manifest says {declared:?}"),
        ),
        _ => {}
    }
    check_descriptor(p, file, "config", &m.config);
    let config_type = media::config_for(declared);
    if m.config.media_type != config_type {
        p.error(
            file,
            Some("config.mediaType".into()),
            format!(
                "{:?}; an image config is {config_type:?}{}",
                m.config.media_type,
                if docker {
                    " in a Docker v2 manifest"
                } else {
                    ""
                }
            ),
        );
    }
    if let Some(s) = &m.subject {
        check_descriptor(p, file, "subject", s);
    }
    for (i, l) in m.layers.iter().enumerate() {
        let field = format!("layers[{i}]");
        check_descriptor(p, file, &field, l);
        if docker {
            if Compression::for_manifest(declared, &l.media_type).is_none() {
                p.error(
                    file,
                    Some(format!("{field}.mediaType")),
                    format!(
                        "{:?} is not a layer type of a Docker v2 manifest that ocipack reads \
                         (only {} and {})",
                        l.media_type,
                        media::DOCKER_LAYER_GZIP,
                        media::DOCKER_LAYER_TAR
                    ),
                );
            }
        } else if Compression::for_manifest(declared, &l.media_type).is_none() {
            p.error(
                file,
                Some(format!("{field}.mediaType")),
                format!(
                    "{:?} is not a layer type the oci-import builder accepts (only {}, {} and {})",
                    l.media_type,
                    media::LAYER_TAR,
                    media::LAYER_TAR_GZIP,
                    media::LAYER_TAR_ZSTD
                ),
            );
        }
    }
}

/// Checks an image config; returns its `created` as Unix seconds when it is valid.
pub(crate) fn check_config(
    p: &mut Problems,
    file: &str,
    c: &ImageConfig,
    layers: Option<usize>,
) -> Option<i64> {
    if c.rootfs.kind != "layers" {
        p.error(
            file,
            Some("rootfs.type".into()),
            format!("{:?}; it must be \"layers\"", c.rootfs.kind),
        );
    }
    if let Some(n) = layers
        && n != c.rootfs.diff_ids.len()
    {
        p.error(
            file,
            Some("rootfs.diff_ids".into()),
            format!(
                "{} diff_ids for {n} layers in the manifest",
                c.rootfs.diff_ids.len()
            ),
        );
    }
    for (field, v) in [("architecture", &c.architecture), ("os", &c.os)] {
        if v.is_empty() {
            p.error(file, Some(field.into()), "empty");
        }
    }
    let created = c.created.as_deref().and_then(|s| {
        match time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339) {
            Ok(t) => Some(t.unix_timestamp()),
            Err(e) => {
                p.error(
                    file,
                    Some("created".into()),
                    format!("{s:?} is not an RFC 3339 time: {e}"),
                );
                None
            }
        }
    });
    if let Some(h) = &c.history {
        let non_empty = h.iter().filter(|e| e.empty_layer != Some(true)).count();
        if let Some(n) = layers
            && non_empty != n
        {
            p.warn(
                file,
                Some("history".into()),
                format!(
                    "{non_empty} history entries create layers, but the manifest has {n} layers"
                ),
            );
        }
    }
    created
}

/// Decodes and checks one document on its own, as verify does before following its
/// references. Public for fuzzing: it must never panic, whatever the bytes.
pub fn check_document(kind: Document, bytes: &[u8]) -> Vec<Problem> {
    let mut p = Problems::default();
    let file = "document";
    match kind {
        Document::OciLayout => {
            if let Some((l, _)) = decode::<OciLayout>(&mut p, file, bytes, &[]) {
                check_oci_layout(&mut p, file, &l);
            }
        }
        Document::Index => {
            if let Some((i, _)) = decode::<Index>(&mut p, file, bytes, &["manifests", "subject"]) {
                check_index(&mut p, file, &i);
            }
        }
        Document::Descriptor => {
            if let Some((d, _)) = decode::<Descriptor>(&mut p, file, bytes, &[]) {
                check_manifest_descriptor(&mut p, file, "", &d);
            }
        }
        Document::Manifest => {
            if let Some((m, _)) =
                decode::<Manifest>(&mut p, file, bytes, &["config", "layers", "subject"])
            {
                let declared = match m.media_type.as_deref() {
                    Some(t) if media::is_manifest(t) => t,
                    _ => media::MANIFEST,
                };
                check_manifest(&mut p, file, &m, declared);
            }
        }
        Document::Config => {
            if let Some((c, _)) = decode::<ImageConfig>(&mut p, file, bytes, &[]) {
                check_config(&mut p, file, &c, None);
            }
        }
    }
    p.into_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn messages(kind: Document, json: &str) -> Vec<String> {
        check_document(kind, json.as_bytes())
            .into_iter()
            .map(|p| p.to_string())
            .collect()
    }

    #[test]
    fn paths() {
        assert_eq!(join_key("", "config"), "config");
        assert_eq!(join_key("manifests[0]", "size"), "manifests[0].size");
        assert_eq!(
            join_key("annotations", "org.opencontainers.image.ref.name"),
            "annotations[\"org.opencontainers.image.ref.name\"]"
        );
    }

    #[test]
    fn every_bad_descriptor_is_named() {
        let d = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let json = format!(
            r#"{{"schemaVersion":2,"manifests":[
              {{"mediaType":"m","digest":"sha256:ABC","size":1}},
              {{"mediaType":"m","digest":"{d}","size":1}},
              {{"mediaType":"m","digest":"{d}","size":1,"extra":true}}]}}"#
        );
        let m = messages(Document::Index, &json);
        assert_eq!(m.len(), 2, "{m:?}");
        assert!(m[0].contains("manifests[0]: invalid digest"), "{m:?}");
        assert!(
            m[1].contains("manifests[2]") && m[1].contains("unknown field `extra`"),
            "{m:?}"
        );
    }

    #[test]
    fn repeated_keys_are_errors() {
        let m = messages(
            Document::OciLayout,
            r#"{"imageLayoutVersion":"1.0.0","imageLayoutVersion":"9"}"#,
        );
        assert!(
            m[0].contains("duplicate key \"imageLayoutVersion\""),
            "{m:?}"
        );
        let m = messages(
            Document::Config,
            r#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"config":{"Labels":{"a":"1","a":"2"}}}"#,
        );
        assert!(m[0].contains("duplicate key \"a\""), "{m:?}");
    }

    #[test]
    fn data_must_be_exact_base64() {
        let d = Descriptor::new(media::CONFIG, Digest::sha256_of(b"abcd"), 4);
        assert_eq!(check_data("YWJjZA==", &d), None);
        assert!(check_data("YWJjZA=", &d).unwrap().contains("needs 8"));
        assert!(
            check_data("YWJj!A==", &d)
                .unwrap()
                .contains("not valid base64")
        );
        assert!(check_data("YWJjZQ==", &d).unwrap().contains("hashing to"));
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = "[".repeat(200_000);
        let m = messages(Document::Index, &deep);
        assert!(m[0].contains("recursion limit exceeded"), "{m:?}");
    }
}
