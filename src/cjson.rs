//! The one canonical JSON form used for every JSON file ocipack writes.
//!
//! The form: UTF-8; objects with keys sorted by their bytes (ascending); no insignificant
//! whitespace anywhere (compact, like `jq -cS`); no trailing newline; strings escaped only
//! where JSON requires it (`"`, `\`, control characters), so non-ASCII text is written as
//! raw UTF-8; integers only (ocipack's documents contain no floating-point numbers).
//!
//! Values are first converted to [`serde_json::Value`], whose object map is a `BTreeMap`
//! (the `preserve_order` feature is never enabled: a unit test guards it), so the order of
//! struct fields or of any map type in our code cannot leak into the bytes.

use serde::Serialize;

use crate::error::Error;

/// Serializes `value` in the canonical form.
pub fn to_vec<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, Error> {
    let v = serde_json::to_value(value)
        .map_err(|e| Error::usage(format!("cannot serialize JSON document: {e}")))?;
    serde_json::to_vec(&v).map_err(|e| Error::usage(format!("cannot serialize JSON document: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[derive(Serialize)]
    struct Unsorted {
        zebra: u8,
        apple: &'static str,
        middle: HashMap<String, u8>,
    }

    #[test]
    fn keys_sorted_compact_no_newline() {
        let mut middle = HashMap::new();
        for k in ["z", "b", "a", "y", "c", "B"] {
            middle.insert(k.to_string(), 1);
        }
        let out = to_vec(&Unsorted {
            zebra: 1,
            apple: "é\n",
            middle,
        })
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"apple\":\"é\\n\",\"middle\":{\"B\":1,\"a\":1,\"b\":1,\"c\":1,\"y\":1,\"z\":1},\"zebra\":1}"
        );
    }
}
