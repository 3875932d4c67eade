//! Checks that need no store: parsing job arguments and the default backoff.

use std::time::Duration;

use serde_json::json;
use underling::{Error, default_backoff, parse_args};

#[test]
fn invalid_json_arguments_are_refused_by_parse_args() {
    for text in ["{a: 1}", "", "[1, 2", "{\"a\": 1} trailing", "nul"] {
        let err = parse_args(text).unwrap_err();
        assert!(matches!(err, Error::InvalidArgs(_)), "{text:?}: {err:?}");
        assert!(
            err.to_string()
                .starts_with("invalid job arguments: not valid JSON: "),
            "{text:?}: {err}"
        );
    }
}

#[test]
fn valid_json_arguments_are_parsed_exactly() {
    assert_eq!(
        parse_args("{\"a\": [1, 2.5, null]}").unwrap(),
        json!({"a": [1, 2.5, null]})
    );
    assert_eq!(parse_args(" 42 ").unwrap(), json!(42));
    assert_eq!(parse_args("\"text\"").unwrap(), json!("text"));
}

#[test]
fn default_backoff_is_the_attempt_number_to_the_fourth_in_seconds() {
    let secs: Vec<u64> = (0..6).map(|r| default_backoff(r).as_secs()).collect();
    assert_eq!(secs, vec![1, 16, 81, 256, 625, 1296]);
}

#[test]
fn default_backoff_treats_negative_retries_as_zero() {
    assert_eq!(default_backoff(-3), Duration::from_secs(1));
}
