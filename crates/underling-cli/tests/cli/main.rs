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

/// What `underling ARGS…` (with the database flags) shows on a terminal: run under
/// `script(1)` so that stdout and stderr are a pseudo-terminal, with escape sequences removed
/// and carriage returns as line breaks. `None` (saying so) where `script` is not installed.
pub(crate) fn on_terminal(db: &support::TestDb, args: &[&str]) -> Option<String> {
    let mut words = vec![env!("CARGO_BIN_EXE_underling").to_string()];
    words.extend(db.flags());
    words.extend(args.iter().map(|a| a.to_string()));
    let command: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let output = match std::process::Command::new("script")
        .args(["-qec", &command.join(" "), "/dev/null"])
        .current_dir(db.dir.path())
        .env_remove("UNDERLING_DATABASE_URL")
        .env_remove("UNDERLING_SCHEMA")
        .env_remove("UNDERLING_LOG")
        .env_remove("UNDERLING_POOL_SIZE")
        .output()
    {
        Ok(output) => output,
        Err(e) => {
            eprintln!("!!!! SKIPPING the terminal check: cannot run script(1): {e}");
            return None;
        }
    };
    assert!(output.status.success(), "{output:?}");
    let raw = String::from_utf8_lossy(&output.stdout).replace('\r', "\n");
    let mut screen = String::new();
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ parameters, then one final letter.
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
        } else {
            screen.push(c);
        }
    }
    Some(screen)
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
    "unique_key",
    "timeout_ms",
    "snoozes",
];

mod admin;
mod audit;
mod jobs;
mod options;
mod schedules;
mod workloads;
