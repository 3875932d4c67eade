//! proptest strategies for hostile input, shared by the property tests of the library, the
//! HTTP API and the command line.

use proptest::prelude::*;
use serde_json::{Map, Value};

/// Any JSON value: strings of any characters (NUL included), integers, booleans, null,
/// arrays and objects nested a few levels. (Floats are left out: `1.0` and `1` are one
/// number to PostgreSQL's jsonb and two to serde_json.)
pub fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<String>().prop_map(Value::String),
        "[\\x00-\\x20a-z\u{80}-\u{10FFFF}]{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(any::<String>(), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<String, Value>>())),
        ]
    })
}

/// A JSON object whose keys are mostly `fields` (the fields a request body or a spec
/// knows) and sometimes any string, with any values: input that gets past the first
/// checks of a parser and into the ones behind them.
pub fn object_of(fields: &'static [&'static str]) -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        4 => proptest::sample::select(fields).prop_map(str::to_string),
        1 => any::<String>(),
    ];
    prop::collection::btree_map(key, json(), 0..5)
        .prop_map(|m| Value::Object(m.into_iter().collect::<Map<String, Value>>()))
}
