//! One string or a list of strings: `match: plugins/*.wasm` or
//! `match: [plugins/*.wasm, vendor/*.wasm]`, `junit: a.xml` or
//! `junit: [a.xml, b.xml]`.
//!
//! A single string reads as a list of one; an empty list stays empty (the
//! reader decides whether that is allowed). [`OneOrMany::was_list`] tells
//! which form was written, so an error can point at `match` or at
//! `match[1]`.

use std::fmt;
use std::ops::Deref;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::ser::{SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};

/// One string or a list of strings.
///
/// ```
/// use sluice_types::OneOrMany;
///
/// let one: OneOrMany = serde_json::from_str("\"a.xml\"").unwrap();
/// assert_eq!(one.as_slice(), ["a.xml"]);
/// assert!(!one.was_list());
/// let many: OneOrMany = serde_json::from_str(r#"["a.xml", "b.xml"]"#).unwrap();
/// assert_eq!(many.into_vec(), ["a.xml", "b.xml"]);
/// assert!(serde_json::from_str::<OneOrMany>("3").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct OneOrMany {
    items: Vec<String>,
    list: bool,
}

impl OneOrMany {
    /// A single string (written without brackets).
    pub fn one(item: impl Into<String>) -> OneOrMany {
        OneOrMany {
            items: vec![item.into()],
            list: false,
        }
    }

    /// A list (written with brackets).
    pub fn many(items: Vec<String>) -> OneOrMany {
        OneOrMany { items, list: true }
    }

    /// Whether it was written as a list, even of one item.
    pub fn was_list(&self) -> bool {
        self.list
    }

    /// The strings.
    pub fn as_slice(&self) -> &[String] {
        &self.items
    }

    /// The strings, owned.
    pub fn into_vec(self) -> Vec<String> {
        self.items
    }
}

impl Deref for OneOrMany {
    type Target = [String];

    fn deref(&self) -> &[String] {
        &self.items
    }
}

impl From<Vec<String>> for OneOrMany {
    fn from(items: Vec<String>) -> Self {
        OneOrMany::many(items)
    }
}

impl From<OneOrMany> for Vec<String> {
    fn from(value: OneOrMany) -> Self {
        value.items
    }
}

impl IntoIterator for OneOrMany {
    type Item = String;
    type IntoIter = std::vec::IntoIter<String>;

    fn into_iter(self) -> Self::IntoIter {
        self.items.into_iter()
    }
}

impl<'a> IntoIterator for &'a OneOrMany {
    type Item = &'a String;
    type IntoIter = std::slice::Iter<'a, String>;

    fn into_iter(self) -> Self::IntoIter {
        self.items.iter()
    }
}

impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OneOrMany;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or a list of strings")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<OneOrMany, E> {
                Ok(OneOrMany::one(v))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<OneOrMany, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
                while let Some(item) = seq.next_element::<String>()? {
                    out.push(item);
                }
                Ok(OneOrMany::many(out))
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for OneOrMany {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.items.as_slice() {
            [one] if !self.list => s.serialize_str(one),
            items => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_or_many() -> Result<(), serde_json::Error> {
        let one = serde_json::from_str::<OneOrMany>("\"a\"")?;
        assert_eq!(one.as_slice(), ["a"]);
        assert!(!one.was_list());
        let many = serde_json::from_str::<OneOrMany>("[\"a\",\"b\"]")?;
        assert_eq!(many.as_slice(), ["a", "b"]);
        assert!(many.was_list());
        let single = serde_json::from_str::<OneOrMany>("[\"a\"]")?;
        assert!(single.was_list());
        assert!(serde_json::from_str::<OneOrMany>("[]")?.is_empty());
        let e = serde_json::from_str::<OneOrMany>("3").map_err(|e| e.to_string());
        assert!(e.is_err_and(|e| e.contains("a string or a list of strings")));
        assert!(serde_json::from_str::<OneOrMany>("[1]").is_err());
        Ok(())
    }

    #[test]
    fn serializes_in_the_form_it_was_written() -> Result<(), serde_json::Error> {
        for json in ["\"a\"", "[\"a\"]", "[\"a\",\"b\"]", "[]"] {
            let value = serde_json::from_str::<OneOrMany>(json)?;
            assert_eq!(serde_json::to_string(&value)?, json);
        }
        Ok(())
    }
}
