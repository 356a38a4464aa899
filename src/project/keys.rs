//! Every key `ocipack.toml` accepts, read from the parser itself, so that the reference
//! (`docs/reference/ocipack-toml.md`) can be checked against the code in both directions.
//!
//! serde's derive hands each struct's field names to
//! `Deserializer::deserialize_struct(name, FIELDS, visitor)`: [`project_keys`] deserializes
//! the project file's raw structs from a recording deserializer that answers every struct
//! with all of its fields and writes down the path of every value that is not a table
//! itself. A key added to the parser therefore shows up here without anyone listing it.
//! A table of a kind already listed elsewhere (an `[[images]]` entry's `[images.image]`
//! has `[image]`'s keys) is one key, documented by reference, not a second copy.

use std::cell::RefCell;
use std::collections::BTreeSet;

use serde::Deserialize as _;
use serde::de::value::{BorrowedStrDeserializer, Error};
use serde::de::{self, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess, Visitor};

/// Every key of `ocipack.toml` as a dotted path, sorted: `name`, `image.cmd` (key `cmd` of
/// the `[image]` table), `input.tar` (key `tar` of each `[[input]]` table),
/// `library.git-fetch`, … A table's own name is not listed, its keys are; a table of free
/// keys (`image.labels`) is one key, and so is a table whose struct was walked before
/// (`images.image`, `images.input`: the keys of `[image]` and `[[input]]`).
///
/// An error means the raw structs hold a type this walk does not know (a tuple or an
/// enum); the tests catch it.
#[doc(hidden)]
pub fn project_keys() -> std::result::Result<Vec<String>, String> {
    let keys = RefCell::new(BTreeSet::new());
    let walked = RefCell::new(BTreeSet::new());
    super::RawProject::deserialize(Recorder {
        path: String::new(),
        keys: &keys,
        walked: &walked,
        silent: false,
    })
    .map_err(|e| format!("walking ocipack.toml's keys: {e}"))?;
    Ok(keys.into_inner().into_iter().collect())
}

/// A deserializer that stands for the value at `path` and records the paths of leaves.
struct Recorder<'a> {
    path: String,
    keys: &'a RefCell<BTreeSet<String>>,
    /// The structs walked so far, by name.
    walked: &'a RefCell<BTreeSet<&'static str>>,
    /// Inside a struct walked before: nothing is recorded.
    silent: bool,
}

impl<'a> Recorder<'a> {
    fn leaf(&self) {
        if !self.silent {
            self.keys.borrow_mut().insert(self.path.clone());
        }
    }

    fn child(&self, key: &str) -> Recorder<'a> {
        let path = if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        };
        Recorder {
            path,
            keys: self.keys,
            walked: self.walked,
            silent: self.silent,
        }
    }

    fn same(&self) -> Recorder<'a> {
        Recorder {
            path: self.path.clone(),
            keys: self.keys,
            walked: self.walked,
            silent: self.silent,
        }
    }
}

/// A table: every field once, each value a recorder one level down.
struct Fields<'a> {
    parent: Recorder<'a>,
    fields: std::slice::Iter<'static, &'static str>,
    current: Option<&'static str>,
}

impl<'de, 'a> MapAccess<'de> for Fields<'a> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        match self.fields.next() {
            Some(&f) => {
                self.current = Some(f);
                seed.deserialize(BorrowedStrDeserializer::new(f)).map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let key = self
            .current
            .take()
            .ok_or_else(|| de::Error::custom("a value asked for before its key"))?;
        seed.deserialize(self.parent.child(key))
    }
}

/// An array holding one element, so that the element's type is walked too.
struct One<'a>(Option<Recorder<'a>>);

impl<'de, 'a> SeqAccess<'de> for One<'a> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        self.0.take().map(|r| seed.deserialize(r)).transpose()
    }
}

/// A table of free keys, walked as an empty one.
struct Empty;

impl<'de> MapAccess<'de> for Empty {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, _: K) -> Result<Option<K::Value>, Error> {
        Ok(None)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, _: V) -> Result<V::Value, Error> {
        Err(de::Error::custom("an empty table has no value"))
    }
}

impl<'de, 'a> IntoDeserializer<'de, Error> for Recorder<'a> {
    type Deserializer = Self;

    fn into_deserializer(self) -> Self {
        self
    }
}

/// Leaves: each records its path and hands the visitor a value of the kind it asked for.
macro_rules! leaf {
    ($($method:ident => $visit:ident($($value:expr)?)),* $(,)?) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
                self.leaf();
                visitor.$visit($($value)?)
            }
        )*
    };
}

impl<'de, 'a> de::Deserializer<'de> for Recorder<'a> {
    type Error = Error;

    leaf! {
        // A value of any type (`created`): toml::Value takes a string.
        deserialize_any => visit_str(""),
        deserialize_bool => visit_bool(false),
        deserialize_i8 => visit_i64(0),
        deserialize_i16 => visit_i64(0),
        deserialize_i32 => visit_i64(0),
        deserialize_i64 => visit_i64(0),
        deserialize_u8 => visit_u64(0),
        deserialize_u16 => visit_u64(0),
        deserialize_u32 => visit_u64(0),
        deserialize_u64 => visit_u64(0),
        deserialize_f32 => visit_f64(0.0),
        deserialize_f64 => visit_f64(0.0),
        deserialize_char => visit_char(' '),
        deserialize_str => visit_str(""),
        deserialize_string => visit_str(""),
        deserialize_bytes => visit_bytes(b""),
        deserialize_byte_buf => visit_bytes(b""),
        deserialize_unit => visit_unit(),
        deserialize_map => visit_map(Empty),
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_some(self)
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let element = self.same();
        visitor.visit_seq(One(Some(element)))
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _: usize, _: V) -> Result<V::Value, Error> {
        Err(de::Error::custom(format!("{}: a tuple", self.path)))
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: usize,
        _: V,
    ) -> Result<V::Value, Error> {
        Err(de::Error::custom(format!("{}: a tuple struct", self.path)))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        if serde_spanned::de::is_spanned(name) {
            // `Spanned<T>`: a position around the value, which stays at this path.
            return visitor.visit_map(serde_spanned::de::SpannedDeserializer::new(self, 0..0));
        }
        let mut parent = self;
        if !parent.walked.borrow_mut().insert(name) {
            // Its keys are listed already: it is one key here, walked without recording.
            parent.leaf();
            parent.silent = true;
        }
        visitor.visit_map(Fields {
            parent,
            fields: fields.iter(),
            current: None,
        })
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Error> {
        Err(de::Error::custom(format!("{}: an enum", self.path)))
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_str(&self.path)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_come_from_the_raw_structs() {
        let keys = project_keys().unwrap();
        for k in [
            "name",
            "created",
            "architectures",
            "output",
            "image.cmd",
            "image.labels",
            "image.default-env",
            "input.source",
            "input.tar",
            "windows.variants",
            "library.git-fetch",
            "library.commit-branch",
            "images.name",
            "images.from",
            "images.image",
            "images.input",
        ] {
            assert!(keys.iter().any(|x| x == k), "{k} missing from {keys:?}");
        }
        // A table listed once: an entry's [images.image] is one key, not a copy of [image].
        assert!(
            !keys.iter().any(|k| k.starts_with("images.image.")),
            "{keys:?}"
        );
        assert!(
            !keys.iter().any(|k| k.starts_with("images.input.")),
            "{keys:?}"
        );
        // Tables are not keys of their own, and serde_spanned's private fields never leak.
        for k in &keys {
            assert!(
                !["image", "input", "windows", "library"].contains(&k.as_str()),
                "{k}"
            );
            assert!(!k.contains('$') && !k.contains('_'), "{k}");
        }
    }

    #[test]
    fn every_key_is_one_the_parser_accepts() {
        // Each key, set alone in an otherwise minimal file, never gets "unknown key".
        let keys = project_keys().unwrap();
        for k in keys {
            let text = match k.split_once('.') {
                Some(("images", key)) => format!(
                    "name = \"x\"\ncreated = \"@0\"\narchitectures = [\"amd64\"]\n\
                     [[input]]\nrootfs = \"r\"\n[[images]]\n{key} = 0\n"
                ),
                Some(("input", key)) => {
                    format!(
                        "name = \"x\"\ncreated = \"@0\"\narchitectures = [\"amd64\"]\n\
                         [[input]]\n{key} = 0\n"
                    )
                }
                Some((table, key)) => format!(
                    "name = \"x\"\ncreated = \"@0\"\narchitectures = [\"amd64\"]\n\
                     [[input]]\nrootfs = \"r\"\n[{table}]\n{key} = 0\n"
                ),
                None => format!("{k} = 0\n"),
            };
            let err = match crate::project::Project::parse(
                &text,
                std::path::Path::new("p/ocipack.toml"),
                std::path::Path::new("p"),
            ) {
                Ok(_) => continue,
                Err(e) => e.to_string(),
            };
            assert!(!err.contains("unknown key"), "{k}: {err}");
        }
        // The check can fail: a key the structs lack is unknown.
        let text = "name = \"x\"\n[image]\nnope = 0\n";
        let err = crate::project::Project::parse(
            text,
            std::path::Path::new("p/ocipack.toml"),
            std::path::Path::new("p"),
        )
        .err()
        .unwrap()
        .to_string();
        assert!(err.contains("unknown key"), "{err}");
    }
}
