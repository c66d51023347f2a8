//! Raw JSON helpers: an order-preserving object of raw members, and strings
//! that borrow from the input when they can.
//!
//! [`RawObject`] is what lets a gateway rewrite one member of a message (a
//! tool name, a resource URI) and pass every other member through byte for
//! byte, without building a DOM of the rest.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::value::RawValue;

/// The first byte of a JSON text that is not whitespace.
pub(crate) fn first_byte(text: &str) -> Option<u8> {
    text.bytes().find(|b| !b.is_ascii_whitespace())
}

/// A raw JSON value, borrowed from the input or owned.
///
/// Equality is textual: two values are equal when their JSON text is the
/// same byte for byte.
#[derive(Clone, Debug)]
pub struct Raw<'a>(Cow<'a, RawValue>);

impl<'a> Raw<'a> {
    /// A raw value borrowed from the input.
    #[must_use]
    pub fn borrowed(raw: &'a RawValue) -> Self {
        Self(Cow::Borrowed(raw))
    }

    /// An owned raw value.
    #[must_use]
    pub fn owned(raw: Box<RawValue>) -> Self {
        Self(Cow::Owned(raw))
    }

    /// Serializes `value` into an owned raw value.
    ///
    /// Serializing this crate's types and plain data cannot fail (every map
    /// key is a string); a failure yields `null` and trips a debug assertion.
    pub fn from_value<T: Serialize + ?Sized>(value: &T) -> Raw<'static> {
        Raw::owned(to_raw(value))
    }

    /// Parses and validates JSON text into an owned raw value.
    ///
    /// # Errors
    ///
    /// When `text` is not one JSON value.
    pub fn from_json(text: &str) -> Result<Raw<'static>, serde_json::Error> {
        RawValue::from_string(text.to_owned()).map(Raw::owned)
    }

    /// The JSON text.
    #[must_use]
    pub fn get(&self) -> &str {
        self.0.get()
    }

    /// Whether the value is borrowed from the input.
    #[must_use]
    pub fn is_borrowed(&self) -> bool {
        matches!(self.0, Cow::Borrowed(_))
    }

    /// The same value, owning its text.
    #[must_use]
    pub fn into_owned(self) -> Raw<'static> {
        Raw(Cow::Owned(self.0.into_owned()))
    }

    /// A borrowed copy of this value.
    #[must_use]
    pub fn reborrow(&self) -> Raw<'_> {
        Raw(Cow::Borrowed(&self.0))
    }

    /// Reads the value as a string, borrowing when the value is borrowed and
    /// the string has no escapes. `None` if it is not a string.
    #[must_use]
    pub fn into_str(self) -> Option<Cow<'a, str>> {
        match self.0 {
            Cow::Borrowed(raw) => serde_json::from_str::<CowStr<'_>>(raw.get())
                .ok()
                .map(|s| s.0),
            Cow::Owned(raw) => serde_json::from_str::<String>(raw.get())
                .ok()
                .map(Cow::Owned),
        }
    }

    /// The value as a `Cow` of serde_json's raw type.
    #[must_use]
    pub fn into_cow(self) -> Cow<'a, RawValue> {
        self.0
    }

    /// Splits a JSON array into its elements, borrowing when the value is
    /// borrowed. `None` if it is not an array.
    #[must_use]
    pub fn into_array(self) -> Option<Vec<Raw<'a>>> {
        match self.0 {
            Cow::Borrowed(raw) => serde_json::from_str::<Vec<&RawValue>>(raw.get())
                .ok()
                .map(|items| items.into_iter().map(Raw::borrowed).collect()),
            Cow::Owned(raw) => serde_json::from_str::<Vec<Box<RawValue>>>(raw.get())
                .ok()
                .map(|items| items.into_iter().map(Raw::owned).collect()),
        }
    }

    /// Deserializes the value into `T`.
    ///
    /// # Errors
    ///
    /// When the value does not have the shape of `T`.
    pub fn parse<'s, T: Deserialize<'s>>(&'s self) -> Result<T, serde_json::Error> {
        serde_json::from_str(self.get())
    }
}

impl std::ops::Deref for Raw<'_> {
    type Target = RawValue;

    fn deref(&self) -> &RawValue {
        &self.0
    }
}

impl PartialEq for Raw<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

impl Eq for Raw<'_> {}

impl Serialize for Raw<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Raw<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        <&'de RawValue>::deserialize(deserializer).map(Raw::borrowed)
    }
}

/// A string that borrows from the input unless it contains escapes.
///
/// serde's own `Cow<str>` always allocates; this one does not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CowStr<'a>(pub(crate) Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for CowStr<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CowStrVisitor;
        impl<'de> Visitor<'de> for CowStrVisitor {
            type Value = CowStr<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(CowStrVisitor)
    }
}

/// A JSON object whose members stay raw, in their original order.
///
/// Looking a member up is a linear scan: MCP objects have a handful of
/// members, and a scan of a few entries beats hashing. A member that appears
/// twice in the input keeps its last value, as in `serde_json`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RawObject<'a> {
    entries: Vec<(Cow<'a, str>, Raw<'a>)>,
}

impl<'a> RawObject<'a> {
    /// An empty object.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Splits a raw JSON object into its members.
    ///
    /// # Errors
    ///
    /// When `raw` is not a JSON object.
    pub fn from_raw(raw: &'a RawValue) -> Result<Self, serde_json::Error> {
        serde_json::from_str(raw.get())
    }

    /// Splits a possibly owned raw JSON object into its members; an owned
    /// input yields owned members.
    ///
    /// # Errors
    ///
    /// When `raw` is not a JSON object.
    pub fn from_cow(raw: Raw<'a>) -> Result<Self, serde_json::Error> {
        match raw.0 {
            Cow::Borrowed(raw) => Self::from_raw(raw),
            Cow::Owned(raw) => RawObject::from_raw(&raw).map(RawObject::into_owned),
        }
    }

    /// The number of members.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the object has no members.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The raw value of member `key`.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&RawValue> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| &**v)
    }

    /// Whether member `key` exists.
    #[must_use]
    pub fn contains_key(&self, key: &str) -> bool {
        self.entries.iter().any(|(k, _)| k == key)
    }

    /// Sets member `key`, replacing its value in place or appending it.
    pub fn insert(&mut self, key: impl Into<Cow<'a, str>>, value: Raw<'a>) {
        let key = key.into();
        match self.entries.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.entries.push((key, value)),
        }
    }

    /// Removes member `key` and returns its value.
    pub fn remove(&mut self, key: &str) -> Option<Raw<'a>> {
        let index = self.entries.iter().position(|(k, _)| k == key)?;
        Some(self.entries.remove(index).1)
    }

    /// The members in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &RawValue)> {
        self.entries.iter().map(|(k, v)| (&**k, &**v))
    }

    /// The members in order, by value.
    #[must_use]
    pub fn into_entries(self) -> Vec<(Cow<'a, str>, Raw<'a>)> {
        self.entries
    }

    /// The same object, owning its members.
    #[must_use]
    pub fn into_owned(self) -> RawObject<'static> {
        RawObject {
            entries: self
                .entries
                .into_iter()
                .map(|(k, v)| (Cow::Owned(k.into_owned()), v.into_owned()))
                .collect(),
        }
    }

    /// Serializes the object to a raw JSON value.
    #[must_use]
    pub fn to_raw(&self) -> Box<RawValue> {
        to_raw(self)
    }

    /// Writes each member as an entry of `map`, so that a typed view can
    /// serialize its own members followed by the ones it keeps raw.
    ///
    /// # Errors
    ///
    /// Whatever the serializer returns.
    pub fn serialize_entries<M: SerializeMap>(&self, map: &mut M) -> Result<(), M::Error> {
        for (key, value) in &self.entries {
            map.serialize_entry(&**key, value)?;
        }
        Ok(())
    }
}

/// Serializes `value` into a raw JSON value.
///
/// Serializing this crate's types cannot fail (every map key is a string and
/// raw members were validated when they were read), so a failure yields
/// `null` and trips a debug assertion instead of returning an error.
pub(crate) fn to_raw<T: Serialize + ?Sized>(value: &T) -> Box<RawValue> {
    serde_json::value::to_raw_value(value).unwrap_or_else(|_| {
        debug_assert!(false, "serializing a protocol value failed");
        Box::<RawValue>::default()
    })
}

impl Serialize for RawObject<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.entries.len()))?;
        self.serialize_entries(&mut map)?;
        map.end()
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for RawObject<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor;
        impl<'de> Visitor<'de> for ObjectVisitor {
            type Value = RawObject<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut object = RawObject::new();
                while let Some(key) = map.next_key::<CowStr<'de>>()? {
                    let value = map.next_value::<&'de RawValue>()?;
                    object.insert(key.0, Raw::borrowed(value));
                }
                Ok(object)
            }
        }
        deserializer.deserialize_map(ObjectVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_object_keeps_order_and_bytes() {
        let raw: &RawValue =
            serde_json::from_str(r#"{"b": [1, 2], "a":{"x" : 1}, "c":"\u00e9"}"#).unwrap();
        let mut object = RawObject::from_raw(raw).unwrap();
        assert_eq!(object.get("a").unwrap().get(), r#"{"x" : 1}"#);
        object.insert("b", Raw::from_value("new"));
        object.insert("d", Raw::from_value(&4));
        assert_eq!(
            object.to_raw().get(),
            r#"{"b":"new","a":{"x" : 1},"c":"\u00e9","d":4}"#
        );
        assert_eq!(object.remove("a").unwrap().get(), r#"{"x" : 1}"#);
        assert_eq!(object.len(), 3);
    }

    #[test]
    fn strings_borrow_unless_escaped() {
        let plain: &RawValue = serde_json::from_str(r#""tools/call""#).unwrap();
        assert!(matches!(
            Raw::borrowed(plain).into_str(),
            Some(Cow::Borrowed("tools/call"))
        ));
        let escaped: &RawValue = serde_json::from_str(r#""a\nb""#).unwrap();
        assert!(matches!(Raw::borrowed(escaped).into_str(), Some(Cow::Owned(s)) if s == "a\nb"));
        let number: &RawValue = serde_json::from_str("1").unwrap();
        assert_eq!(Raw::borrowed(number).into_str(), None);
    }

    #[test]
    fn raw_object_rejects_non_objects() {
        for text in ["[]", "1", "\"x\"", "null"] {
            let raw: &RawValue = serde_json::from_str(text).unwrap();
            assert!(RawObject::from_raw(raw).is_err(), "{text}");
        }
    }
}
