//! A deserializer wrapper that refuses a JSON array where a struct is expected.
//!
//! serde's derived `Deserialize` of a struct accepts a sequence too (the fields in order), so
//! with plain `serde_json` the body `["1m"]` reads as `{"duration": "1m"}`. The API's bodies
//! are objects: [`Strict`] wraps any deserializer and makes every struct, at any depth (a
//! batch's jobs, a limit's `scope`), accept only a map. Everything else (genuine arrays such
//! as `parents` or a batch, strings, numbers, enums) is passed through unchanged.
//!
//! Values that serde buffers before deserializing (untagged and internally tagged enums,
//! `#[serde(flatten)]`) are read from that buffer, not through this wrapper: keep structs out
//! of such types in request bodies.

use std::fmt;

use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, Error as _, IgnoredAny, MapAccess, SeqAccess,
    Unexpected, VariantAccess, Visitor,
};

/// What the error of a struct given as an array expects.
const OBJECT: &str = "a JSON object";

/// A deserializer whose structs (at any depth) must be maps, never sequences.
pub struct Strict<D>(pub D);

/// A visitor whose nested values are read through [`Strict`].
struct Wrap<V>(V);

/// The visitor of a struct: a map only, whose values are read through [`Strict`].
struct StructVisitor<V>(V);

/// A seed whose value is read through [`Strict`].
struct Seed<S>(S);

/// Sequence elements read through [`Strict`].
struct Seq<A>(A);

/// Map keys and values read through [`Strict`].
struct Map<A>(A);

/// An enum whose variant's content is read through [`Strict`].
struct Enum<A>(A);

/// A variant whose content is read through [`Strict`].
struct Variant<A>(A);

/// Forwards `deserialize_*` methods that take only a visitor.
macro_rules! forward {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
            self.0.$method(Wrap(visitor))
        }
    )*};
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Strict<D> {
    type Error = D::Error;

    forward! {
        deserialize_any deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32
        deserialize_i64 deserialize_i128 deserialize_u8 deserialize_u16 deserialize_u32
        deserialize_u64 deserialize_u128 deserialize_f32 deserialize_f64 deserialize_char
        deserialize_str deserialize_string deserialize_bytes deserialize_byte_buf
        deserialize_option deserialize_unit deserialize_seq deserialize_map
        deserialize_identifier deserialize_ignored_any
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_unit_struct(name, Wrap(visitor))
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_newtype_struct(name, Wrap(visitor))
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_tuple(len, Wrap(visitor))
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_tuple_struct(name, len, Wrap(visitor))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0
            .deserialize_struct(name, fields, StructVisitor(visitor))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_enum(name, variants, Wrap(visitor))
    }

    fn is_human_readable(&self) -> bool {
        self.0.is_human_readable()
    }
}

/// Forwards `visit_*` methods of a plain value.
macro_rules! visit {
    ($($method:ident($ty:ty))*) => {$(
        fn $method<E: de::Error>(self, v: $ty) -> Result<Self::Value, E> {
            self.0.$method(v)
        }
    )*};
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Wrap<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        self.0.expecting(f)
    }

    visit! {
        visit_bool(bool) visit_i8(i8) visit_i16(i16) visit_i32(i32) visit_i64(i64)
        visit_i128(i128) visit_u8(u8) visit_u16(u16) visit_u32(u32) visit_u64(u64)
        visit_u128(u128) visit_f32(f32) visit_f64(f64) visit_char(char) visit_str(&str)
        visit_borrowed_str(&'de str) visit_string(String) visit_bytes(&[u8])
        visit_borrowed_bytes(&'de [u8]) visit_byte_buf(Vec<u8>)
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        self.0.visit_none()
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        self.0.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        self.0.visit_some(Strict(d))
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        self.0.visit_newtype_struct(Strict(d))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        self.0.visit_seq(Seq(seq))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        self.0.visit_map(Map(map))
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Self::Value, A::Error> {
        self.0.visit_enum(Enum(data))
    }
}

impl<'de, V: Visitor<'de>> Visitor<'de> for StructVisitor<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        self.0.expecting(f)
    }

    /// The one difference from serde's own: a sequence is refused (read to its end first, so
    /// that a body that is not JSON at all is still reported as such).
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Err(A::Error::invalid_type(Unexpected::Other("array"), &OBJECT))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        self.0.visit_map(Map(map))
    }
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Seed<S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        self.0.deserialize(Strict(d))
    }
}

impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for Seq<A> {
    type Error = A::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, A::Error> {
        self.0.next_element_seed(Seed(seed))
    }

    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Map<A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        self.0.next_key_seed(Seed(seed))
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, A::Error> {
        self.0.next_value_seed(Seed(seed))
    }

    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

impl<'de, A: EnumAccess<'de>> EnumAccess<'de> for Enum<A> {
    type Error = A::Error;
    type Variant = Variant<A::Variant>;

    fn variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<(T::Value, Self::Variant), A::Error> {
        self.0
            .variant_seed(Seed(seed))
            .map(|(value, variant)| (value, Variant(variant)))
    }
}

impl<'de, A: VariantAccess<'de>> VariantAccess<'de> for Variant<A> {
    type Error = A::Error;

    fn unit_variant(self) -> Result<(), A::Error> {
        self.0.unit_variant()
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, A::Error> {
        self.0.newtype_variant_seed(Seed(seed))
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, A::Error> {
        self.0.tuple_variant(len, Wrap(visitor))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        self.0.struct_variant(fields, StructVisitor(visitor))
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::Strict;

    #[derive(Debug, PartialEq, Deserialize)]
    struct Inner {
        kind: String,
    }

    #[derive(Debug, PartialEq, Deserialize)]
    struct Outer {
        inner: Inner,
        list: Vec<i64>,
        maybe: Option<Inner>,
    }

    fn strict<T: for<'de> Deserialize<'de>>(text: &str) -> Result<T, String> {
        let mut de = serde_json::Deserializer::from_str(text);
        serde_path_to_error::deserialize(Strict(&mut de)).map_err(|e| e.to_string())
    }

    #[test]
    fn an_object_with_nested_objects_and_arrays_is_read() {
        let outer: Outer =
            strict(r#"{"inner": {"kind": "a"}, "list": [1, 2], "maybe": {"kind": "b"}}"#)
                .expect("an object");
        assert_eq!(
            outer,
            Outer {
                inner: Inner { kind: "a".into() },
                list: vec![1, 2],
                maybe: Some(Inner { kind: "b".into() }),
            }
        );
    }

    #[test]
    fn a_top_level_array_for_a_struct_is_refused() {
        assert_eq!(
            strict::<Inner>(r#"["a"]"#),
            Err("invalid type: array, expected a JSON object at line 1 column 5".into())
        );
    }

    #[test]
    fn a_nested_array_for_a_struct_is_refused_naming_its_field() {
        assert_eq!(
            strict::<Outer>(r#"{"inner": ["a"], "list": [], "maybe": null}"#),
            Err("inner: invalid type: array, expected a JSON object at line 1 column 15".into())
        );
    }

    #[test]
    fn an_array_for_an_optional_struct_is_refused() {
        assert_eq!(
            strict::<Outer>(r#"{"inner": {"kind": "a"}, "list": [], "maybe": ["b"]}"#),
            Err("maybe: invalid type: array, expected a JSON object at line 1 column 51".into())
        );
    }

    #[test]
    fn an_array_in_place_of_a_struct_in_a_vec_is_refused_naming_its_index() {
        assert_eq!(
            strict::<Vec<Inner>>(r#"[{"kind": "a"}, ["b"]]"#),
            Err("[1]: invalid type: array, expected a JSON object at line 1 column 21".into())
        );
    }

    #[test]
    fn a_truncated_array_for_a_struct_is_a_syntax_error() {
        let mut de = serde_json::Deserializer::from_str(r#"["a""#);
        let err = serde_path_to_error::deserialize::<_, Inner>(Strict(&mut de)).unwrap_err();
        assert!(err.inner().is_eof(), "{err}");
        assert_eq!(
            err.to_string(),
            "EOF while parsing a list at line 1 column 4"
        );
    }
}
