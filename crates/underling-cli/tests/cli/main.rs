//! End-to-end tests of the `underling` admin CLI: each runs the built binary against a fresh
//! SQLite file and against PostgreSQL in a fresh schema, and checks its output and exit code.

#[path = "../support/mod.rs"]
mod support;

use chrono::{DateTime, Utc};
use serde_json::Value;

/// The ids of the jobs in `job list --json` output, in order.
pub(crate) fn listed_ids(list: &Value) -> Vec<i64> {
    list["jobs"]
        .as_array()
        .expect("jobs array")
        .iter()
        .map(|j| j["id"].as_i64().expect("job id"))
        .collect()
}

/// The value of a `name: value` line.
pub(crate) fn field<'a>(text: &'a str, name: &str) -> &'a str {
    let prefix = format!("{name}:");
    text.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {name:?} line in:\n{text}"))
        .trim()
}

/// Parses an RFC 3339 timestamp.
pub(crate) fn rfc3339(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("{text:?} is not RFC 3339: {e}"))
        .with_timezone(&Utc)
}

/// The words of each table row (header first).
pub(crate) fn rows(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .map(|line| line.split_whitespace().map(str::to_string).collect())
        .collect()
}

/// Asserts that a JSON object has these keys.
pub(crate) fn assert_keys(value: &Value, keys: &[&str]) {
    for key in keys {
        assert!(value.get(key).is_some(), "missing {key:?} in {value}");
    }
}

pub(crate) const JOB_FIELDS: &[&str] = &[
    "id",
    "task",
    "queue",
    "args",
    "state",
    "priority",
    "attempts",
    "retries",
    "created",
    "delayed",
    "started",
    "finished",
    "retried",
    "expires",
    "lax",
    "worker_id",
    "result",
    "notes",
    "parents",
    "children",
];

mod admin;
mod jobs;
mod options;
