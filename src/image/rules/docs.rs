//! Decoding the layout's JSON documents, and the checks that need nothing but the document
//! itself.
//!
//! Bytes are first parsed into a [`Value`] (serde_json's recursion limit of 128 stops
//! deeply nested input before it can exhaust the stack; a repeated key is an error), then
//! decoded into the strict structs of [`crate::spec`] through [`decode_known`], which sets
//! aside every property those structs do not declare and records its JSON path. The image
//! spec requires it ("implementations that are reading/processing manifests or image
//! indexes MUST NOT generate an error if they encounter an unknown property; instead they
//! MUST ignore unknown properties"), and images as registries serve them are full of such
//! properties (Docker's image config has `container_config`, `docker_version`, …): each is
//! a warning naming its path ([`UNKNOWN_PROPERTY`]); `verify --profile oci-import` makes
//! those bashbrew reads errors (its decoder refuses unknown fields). Nothing is
//! re-serialised: the bytes stay the document ([`crate::image::Doc`]), unknown properties
//! and all. When decoding fails, each descriptor inside the document is decoded on its own,
//! so that every bad descriptor is reported with its JSON path.
//!
//! A descriptor's own rules (`check_descriptor`), applied to every descriptor a document
//! holds (a `subject` too), include its `data`: the image spec says it MUST be RFC 4648
//! base64 of exactly the referenced content, and Go clients such as skopeo refuse a document
//! whose `data` is not base64 at all ("illegal base64 data").

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::fmt;

use base64::Engine as _;
use serde::de::value::BorrowedStrDeserializer;
use serde::de::{self, DeserializeOwned, DeserializeSeed, MapAccess, SeqAccess, Visitor};
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

/// What the plain rules say about a property ocipack's types do not declare.
pub const UNKNOWN_PROPERTY: &str = "a property ocipack does not know: ignored, as the image \
spec requires of readers (\"MUST ignore unknown properties\"); ocipack cannot check it";

/// The characters of an unknown property's path a finding shows.
const MAX_PATH_SHOWN: usize = 200;

/// Unknown properties named one by one per document; the rest are counted in one more
/// finding (a document of a million unknown keys is no million lines).
pub const MAX_UNKNOWN_LISTED: usize = 20;

/// Records one finding per unknown property of the document `file` (its `paths`), through
/// `record(field, message)` with `message` naming them as `what` does: the first
/// [`MAX_UNKNOWN_LISTED`] by their paths, the rest counted in one finding about the file.
pub(crate) fn each_unknown(
    paths: &[String],
    what: &str,
    mut record: impl FnMut(Option<String>, String),
) {
    // A key may be as long as the document: its path is shown up to a bound.
    let shown = |path: &String| match path.char_indices().nth(MAX_PATH_SHOWN) {
        Some((cut, _)) => format!("{}…", &path[..cut]),
        None => path.clone(),
    };
    for path in paths.iter().take(MAX_UNKNOWN_LISTED) {
        record(Some(shown(path)), what.to_string());
    }
    let rest = paths.len().saturating_sub(MAX_UNKNOWN_LISTED);
    if rest > 0 {
        record(
            None,
            format!(
                "{rest} more {} ocipack does not know, not listed one by one (the first: {}): \
                 {what}",
                if rest == 1 { "property" } else { "properties" },
                shown(&paths[MAX_UNKNOWN_LISTED])
            ),
        );
    }
}

/// Parses `bytes` as JSON and decodes it as `T`, each property `T` does not declare set
/// aside with a warning naming its JSON path ([`UNKNOWN_PROPERTY`]; past
/// [`MAX_UNKNOWN_LISTED`], counted). Problems go to `p` under `file`. Returns the value and the paths of its unknown properties, sorted (for the
/// rules of a reader that refuses them, [`super::oci_import`]).
pub(crate) fn decode<T: DeserializeOwned>(
    p: &mut Problems,
    file: &str,
    bytes: &[u8],
    descriptors: &[&str],
) -> Option<(T, Vec<String>)> {
    let value = parse(bytes).map_err(|e| p.error(file, None, e)).ok()?;
    match decode_known::<T>(&value) {
        Ok((t, unknown)) => {
            each_unknown(&unknown, UNKNOWN_PROPERTY, |field, m| {
                p.warn(file, field, m)
            });
            Some((t, unknown))
        }
        Err(e) => {
            // Find the descriptors that fail on their own, to name them precisely.
            let mut located = false;
            for key in descriptors {
                match value.get(key) {
                    Some(Value::Array(items)) => {
                        for (i, item) in items.iter().enumerate() {
                            if let Err(e) = decode_known::<Descriptor>(item) {
                                p.error(file, Some(format!("{key}[{i}]")), e);
                                located = true;
                            }
                        }
                    }
                    Some(item @ Value::Object(_)) => {
                        if let Err(e) = decode_known::<Descriptor>(item) {
                            p.error(file, Some(key.to_string()), e);
                            located = true;
                        }
                    }
                    _ => {}
                }
            }
            if !located {
                p.error(file, None, e);
            }
            None
        }
    }
}

/// `bytes` as a JSON value in which no object repeats a key.
fn parse(bytes: &[u8]) -> Result<Value, String> {
    serde_json::from_slice::<NoDuplicateKeys>(bytes)
        .and_then(|_| serde_json::from_slice(bytes))
        .map_err(|e| format!("not valid JSON: {e}"))
}

/// `bytes` decoded as `T` as the rules decode a document, its unknown properties ignored
/// (what a command that follows a registry's documents reads; `verify` reports them).
pub(crate) fn decode_lenient<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    decode_known::<T>(&parse(bytes)?).map(|(t, _)| t)
}

/// Decodes `value` as `T`, whose structs refuse unknown fields (`deny_unknown_fields`),
/// handing each struct only the properties it declares: serde's derive names them in
/// `deserialize_struct(name, FIELDS, visitor)`. Every other property is set aside and its
/// JSON path returned (sorted); the value and its bytes are not changed. An
/// error is any other reason `T` refuses the value (a wrong type, a missing field).
pub fn decode_known<T: DeserializeOwned>(value: &Value) -> Result<(T, Vec<String>), String> {
    let unknown = RefCell::new(Vec::new());
    let t = T::deserialize(Known {
        value,
        path: String::new(),
        unknown: &unknown,
    })
    .map_err(|e| e.to_string())?;
    let mut unknown = unknown.into_inner();
    unknown.sort();
    Ok((t, unknown))
}

/// A deserializer over the value at `path` of a document that sets aside the properties a
/// struct does not declare (see [`decode_known`]); otherwise it is serde_json's own
/// deserializer of a [`Value`], with the same messages.
struct Known<'a> {
    value: &'a Value,
    path: String,
    unknown: &'a RefCell<Vec<String>>,
}

impl<'a> Known<'a> {
    /// A map of the object's members whose keys `keep` accepts.
    fn map(&self, keep: impl Fn(&str) -> bool) -> Option<KnownMap<'a>> {
        let Value::Object(m) = self.value else {
            return None;
        };
        let members = m.iter().filter(|(k, _)| keep(k)).collect::<Vec<_>>();
        Some(KnownMap {
            members: members.into_iter(),
            value: None,
            path: self.path.clone(),
            unknown: self.unknown,
        })
    }
}

impl<'de> de::Deserializer<'de> for Known<'de> {
    type Error = serde_json::Error;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Self::Error> {
        match self.value {
            Value::Null => v.visit_unit(),
            Value::Bool(b) => v.visit_bool(*b),
            Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
                (Some(u), ..) => v.visit_u64(u),
                (None, Some(i), _) => v.visit_i64(i),
                (None, None, f) => v.visit_f64(f.unwrap_or(f64::NAN)),
            },
            Value::String(s) => v.visit_borrowed_str(s),
            Value::Array(items) => {
                let mut seq = KnownSeq {
                    items: items.iter().enumerate(),
                    path: self.path.clone(),
                    unknown: self.unknown,
                };
                let out = v.visit_seq(&mut seq)?;
                match seq.items.len() {
                    0 => Ok(out),
                    _ => Err(de::Error::invalid_length(items.len(), &"fewer elements")),
                }
            }
            Value::Object(_) => {
                let mut map = self.map(|_| true).expect("an object");
                let out = v.visit_map(&mut map)?;
                match map.members.len() {
                    0 => Ok(out),
                    n => Err(de::Error::invalid_length(n, &"fewer elements in map")),
                }
            }
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Self::Error> {
        match self.value {
            Value::Null => v.visit_none(),
            _ => v.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        v: V,
    ) -> Result<V::Value, Self::Error> {
        v.visit_newtype_struct(self)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, Self::Error> {
        let Some(mut map) = self.map(|k| fields.contains(&k)) else {
            return self.value.deserialize_struct(name, fields, v);
        };
        if let Value::Object(m) = self.value {
            let mut unknown = self.unknown.borrow_mut();
            for k in m.keys().filter(|k| !fields.contains(&k.as_str())) {
                unknown.push(join_key(&self.path, k));
            }
        }
        let out = v.visit_map(&mut map)?;
        match map.members.len() {
            0 => Ok(out),
            n => Err(de::Error::invalid_length(n, &"fewer elements in map")),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, Self::Error> {
        self.value.deserialize_enum(name, variants, v)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        unit unit_struct seq tuple tuple_struct map identifier ignored_any
    }
}

/// The elements of an array, each a [`Known`] at `path[i]`.
struct KnownSeq<'a> {
    items: std::iter::Enumerate<std::slice::Iter<'a, Value>>,
    path: String,
    unknown: &'a RefCell<Vec<String>>,
}

impl<'de> SeqAccess<'de> for KnownSeq<'de> {
    type Error = serde_json::Error;

    fn next_element_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, Self::Error> {
        let Some((i, item)) = self.items.next() else {
            return Ok(None);
        };
        seed.deserialize(Known {
            value: item,
            path: format!("{}[{i}]", self.path),
            unknown: self.unknown,
        })
        .map(Some)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

/// The members of an object (those a struct declares, or all of a free map), each value a
/// [`Known`] at `path.key`.
struct KnownMap<'a> {
    members: std::vec::IntoIter<(&'a String, &'a Value)>,
    value: Option<(&'a String, &'a Value)>,
    path: String,
    unknown: &'a RefCell<Vec<String>>,
}

impl<'de> MapAccess<'de> for KnownMap<'de> {
    type Error = serde_json::Error;

    fn next_key_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, Self::Error> {
        let Some((k, v)) = self.members.next() else {
            return Ok(None);
        };
        self.value = Some((k, v));
        seed.deserialize(BorrowedStrDeserializer::new(k.as_str()))
            .map(Some)
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<S::Value, Self::Error> {
        let (k, v) = self
            .value
            .take()
            .ok_or_else(|| de::Error::custom("a value asked for before its key"))?;
        let known = Known {
            value: v,
            path: join_key(&self.path, k),
            unknown: self.unknown,
        };
        seed.deserialize(known)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.members.len())
    }
}

/// Checks a descriptor's own fields (the blob behind it is checked elsewhere): its size,
/// no `urls` (but on a foreign layer, whose content is only there), and `data`, when
/// present, exactly the referenced content in base64.
pub(crate) fn check_descriptor(p: &mut Problems, file: &str, field: &str, d: &Descriptor) {
    if d.size < 0 {
        p.error(
            file,
            Some(join_key(field, "size")),
            format!("negative size {}", d.size),
        );
    }
    if d.urls.is_some() && media::foreign_layer(&d.media_type).is_none() {
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
                         (only {}, {} and the foreign {})",
                        l.media_type,
                        media::DOCKER_LAYER_GZIP,
                        media::DOCKER_LAYER_TAR,
                        media::DOCKER_LAYER_FOREIGN_GZIP
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
        // The invalid digest is an error; the unknown property is set aside, not an error
        // (it is no longer reported once decoding fails: the document is refused anyway).
        assert_eq!(m.len(), 1, "{m:?}");
        assert!(m[0].contains("manifests[0]: invalid digest"), "{m:?}");
    }

    #[test]
    fn unknown_properties_are_named_warnings_and_errors_stay_errors() {
        let d = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let index = format!(
            r#"{{"schemaVersion":2,"x-top":1,"annotations":{{"anything":"goes"}},"manifests":[
              {{"mediaType":"{}","digest":"{d}","size":1,"extra":{{"a":1}},
                "platform":{{"os":"linux","architecture":"amd64","features":["sse4"]}}}}]}}"#,
            media::MANIFEST
        );
        let all = check_document(Document::Index, index.as_bytes());
        let shown: Vec<String> = all.iter().map(ToString::to_string).collect();
        assert!(
            all.iter()
                .all(|p| p.severity == crate::problems::Severity::Warning),
            "{shown:?}"
        );
        let paths: Vec<&str> = all.iter().filter_map(|p| p.field.as_deref()).collect();
        assert_eq!(
            paths,
            [
                "[\"x-top\"]",
                "manifests[0].extra",
                "manifests[0].platform.features"
            ]
        );
        assert!(
            shown[0].contains("MUST ignore unknown properties"),
            "{shown:?}"
        );

        // A Docker image config: its extra properties, at every depth, named.
        let config = br#"{"architecture":"amd64","os":"linux","docker_version":"20.10.7",
            "container_config":{"Hostname":"x"},"container":"abc",
            "config":{"Hostname":"","Cmd":["sh"],"ExposedPorts":{"80/tcp":{"odd":1}},
                "OnBuild":null},
            "rootfs":{"type":"layers","diff_ids":[]},
            "history":[{"created_by":"x","empty_layer":true},{"comment":"buildkit.dockerfile.v0"}],
            "moby.buildkit.buildinfo.v1":"e30="}"#;
        let value: Value = serde_json::from_slice(config).unwrap();
        let (c, unknown) = decode_known::<ImageConfig>(&value).unwrap();
        assert_eq!(
            unknown,
            [
                "[\"moby.buildkit.buildinfo.v1\"]",
                "config.ExposedPorts[\"80/tcp\"].odd",
                "config.Hostname",
                "config.OnBuild",
                "container",
                "container_config",
                "docker_version",
            ]
        );
        assert_eq!(c.config.unwrap().cmd.unwrap(), ["sh"]);
        assert_eq!(c.history.unwrap()[0].empty_layer, Some(true));

        // Many unknown properties: the first are named, the rest counted.
        let many: String = (0..1000).map(|i| format!(",\"x{i:04}\":{i}")).collect();
        let json = format!(r#"{{"schemaVersion":2,"manifests":[]{many}}}"#);
        let all = check_document(Document::Index, json.as_bytes());
        assert_eq!(all.len(), MAX_UNKNOWN_LISTED + 1, "{all:?}");
        assert_eq!(all[0].field.as_deref(), Some("x0000"));
        assert!(
            all[MAX_UNKNOWN_LISTED]
                .message
                .starts_with("980 more properties ocipack does not know, not listed one by one (the first: x0020)"),
            "{all:?}"
        );

        // A key as long as the document is shown up to a bound, escaped.
        let key = format!("\u{1b}{}", "k".repeat(100_000));
        let json = serde_json::json!({"schemaVersion": 2, "manifests": [], key: 1}).to_string();
        let all = check_document(Document::Index, json.as_bytes());
        let field = all[0].field.as_deref().unwrap();
        assert!(field.len() < 300 && field.ends_with('…'), "{field}");
        assert!(!field.contains('\u{1b}'), "{field}");

        // What is wrong stays wrong, in serde_json's words.
        let m = messages(
            Document::Config,
            r#"{"architecture":1,"os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#,
        );
        assert!(
            m[0].contains("invalid type: integer `1`, expected a string"),
            "{m:?}"
        );
        let m = messages(Document::Manifest, r#"{"schemaVersion":2,"layers":[]}"#);
        assert!(m[0].contains("missing field `config`"), "{m:?}");
        assert!(
            decode_lenient::<Index>(b"{\"schemaVersion\":2.5,\"manifests\":[]}")
                .unwrap_err()
                .contains("invalid type: floating point `2.5`, expected u32"),
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
