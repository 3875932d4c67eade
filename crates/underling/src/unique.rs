//! Unique jobs: at most one job per key in a scope, enforced by the database.
//!
//! A job enqueued with [`Unique`] carries a key (given, or derived from its task and
//! arguments, optionally with its queue). While a job holding that key is *live* — in its
//! [`UniqueScope`] — another enqueue with the same key inserts nothing and, by its
//! [`OnConflict`] policy, returns the live job's id, replaces that job's arguments, priority
//! and due time, or fails with [`crate::Error::UniqueConflict`]. The check and the insert are
//! one statement: a unique index on the key, so that concurrent enqueuers cannot both insert.
//!
//! ```
//! use std::time::Duration;
//! use underling::{EnqueueOptions, OnConflict, Unique, UniqueScope};
//!
//! let opts = EnqueueOptions::new().unique(
//!     Unique::key("report:2026-12")
//!         .scope(UniqueScope::Period(Duration::from_secs(3600)))
//!         .on_conflict(OnConflict::Replace),
//! );
//! assert!(opts.unique.is_some());
//! ```

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// The longest explicit unique key, in bytes (a database index entry must stay small).
pub const MAX_UNIQUE_KEY: usize = 512;

/// Where a job's unique key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UniqueKey {
    /// This key, as given.
    Explicit(String),
    /// Derived from the task name and the arguments (objects compare whatever their key order).
    Args,
    /// Derived from the task name, the arguments and the queue.
    ArgsAndQueue,
}

/// How long a job holds its unique key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UniqueScope {
    /// While it is inactive (waiting, delayed or retrying): once a worker claims it, a new job
    /// with the same key may be enqueued.
    Inactive,
    /// While it is inactive or active: until it finishes or fails for good (the default).
    Active,
    /// For this long after it was enqueued, whatever its state (while it exists).
    Period(Duration),
}

impl UniqueScope {
    /// The scope's name: `inactive`, `active` or `period`.
    pub fn as_str(self) -> &'static str {
        match self {
            UniqueScope::Inactive => "inactive",
            UniqueScope::Active => "active",
            UniqueScope::Period(_) => "period",
        }
    }

    /// The scope named `name`, with `period` (`unique_for`) for the `period` scope. A period
    /// without a scope means the `period` scope; no scope and no period is [`Self::Active`].
    pub fn parse(name: Option<&str>, period: Option<Duration>) -> Result<UniqueScope> {
        match (name.map(str::to_ascii_lowercase).as_deref(), period) {
            (None | Some("active"), None) => Ok(UniqueScope::Active),
            (Some("inactive"), None) => Ok(UniqueScope::Inactive),
            (None | Some("period"), Some(d)) => Ok(UniqueScope::Period(d)),
            (Some("period"), None) => Err(Error::InvalidOption(
                "the unique scope period needs a duration: give unique_for (--unique-for), e.g. 1h"
                    .into(),
            )),
            (Some(other @ ("inactive" | "active")), Some(_)) => Err(Error::InvalidOption(format!(
                "unique_for (--unique-for) only goes with the unique scope period, not {other}"
            ))),
            (Some(other), _) => Err(Error::InvalidOption(format!(
                "unknown unique scope {other:?}: expected inactive, active or period"
            ))),
        }
    }
}

/// What an enqueue does when a live job holds its unique key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum OnConflict {
    /// Insert nothing and return the live job's id, flagged as a duplicate (the default).
    #[default]
    Existing,
    /// Give the live job this enqueue's arguments, priority and due time when it is still
    /// inactive (an active job is left alone), and return its id flagged as a duplicate.
    Replace,
    /// Insert nothing and fail with [`crate::Error::UniqueConflict`], naming the key and the
    /// live job.
    Error,
}

impl OnConflict {
    /// The policy's name: `existing`, `replace` or `error`.
    pub fn as_str(self) -> &'static str {
        match self {
            OnConflict::Existing => "existing",
            OnConflict::Replace => "replace",
            OnConflict::Error => "error",
        }
    }
}

impl fmt::Display for OnConflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for OnConflict {
    type Err = Error;

    /// Any case: `existing`, `replace` or `error`.
    fn from_str(s: &str) -> Result<Self> {
        [OnConflict::Existing, OnConflict::Replace, OnConflict::Error]
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                Error::InvalidOption(format!(
                    "unknown conflict policy {s:?}: expected existing, replace or error"
                ))
            })
    }
}

/// A job's uniqueness: its key, scope and conflict policy. Build it with [`Unique::key`],
/// [`Unique::by_args`] or [`Unique::by_args_and_queue`] and the chainable setters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unique {
    /// Where the key comes from.
    pub key: UniqueKey,
    /// How long a job holds it.
    pub scope: UniqueScope,
    /// What a second enqueue does while a job holds it.
    pub on_conflict: OnConflict,
}

impl Unique {
    /// An explicit key (1 to [`MAX_UNIQUE_KEY`] bytes, no NUL character), scope
    /// [`UniqueScope::Active`], policy [`OnConflict::Existing`].
    pub fn key(key: impl Into<String>) -> Self {
        Unique {
            key: UniqueKey::Explicit(key.into()),
            scope: UniqueScope::Active,
            on_conflict: OnConflict::Existing,
        }
    }
    /// A key derived from the task name and the arguments.
    pub fn by_args() -> Self {
        Unique {
            key: UniqueKey::Args,
            ..Unique::key("")
        }
    }
    /// A key derived from the task name, the arguments and the queue.
    pub fn by_args_and_queue() -> Self {
        Unique {
            key: UniqueKey::ArgsAndQueue,
            ..Unique::key("")
        }
    }
    /// Sets the scope.
    pub fn scope(mut self, scope: UniqueScope) -> Self {
        self.scope = scope;
        self
    }
    /// Sets the conflict policy.
    pub fn on_conflict(mut self, policy: OnConflict) -> Self {
        self.on_conflict = policy;
        self
    }

    /// Checks the key and the period. Nothing is written.
    pub(crate) fn validate(&self) -> Result<()> {
        if let UniqueKey::Explicit(key) = &self.key {
            if key.is_empty() || key.len() > MAX_UNIQUE_KEY {
                return Err(Error::InvalidOption(format!(
                    "a unique key must be 1 to {MAX_UNIQUE_KEY} bytes, got {} (hash longer keys)",
                    key.len()
                )));
            }
            if key.contains('\0') {
                return Err(Error::InvalidOption(format!(
                    "the unique key {key:?} contains a NUL character"
                )));
            }
        }
        if let UniqueScope::Period(d) = self.scope {
            if d.is_zero() {
                return Err(Error::InvalidOption(
                    "unique_for must be longer than zero".into(),
                ));
            }
            crate::job::check_duration("unique_for", Some(d))?;
        }
        Ok(())
    }

    /// The key for a job of `task` with `args` in `queue`: explicit keys as given, derived
    /// ones `TASK:` and the SHA-256 (hex) of the arguments in canonical form (object keys
    /// sorted), with the queue hashed in for [`UniqueKey::ArgsAndQueue`].
    pub(crate) fn resolve(&self, task: &str, args: &Value, queue: &str) -> String {
        let derived = |queue: Option<&str>| {
            let mut text = String::new();
            canonical(args, &mut text);
            let mut hash = Sha256::new();
            hash.update(task.as_bytes());
            hash.update([0]);
            if let Some(queue) = queue {
                hash.update(queue.as_bytes());
            }
            hash.update([0]);
            hash.update(text.as_bytes());
            let digest = hash.finalize();
            let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
            format!("{task}:{hex}")
        };
        match &self.key {
            UniqueKey::Explicit(key) => key.clone(),
            UniqueKey::Args => derived(None),
            UniqueKey::ArgsAndQueue => derived(Some(queue)),
        }
    }
}

/// JSON with object keys sorted, whatever order they came in.
fn canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                canonical(item, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// What an enqueue did with one job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Enqueued {
    /// The new job's id, or for a duplicate the id of the live job that holds its unique key.
    pub id: i64,
    /// Whether a live job held the job's unique key, so that nothing was inserted.
    pub duplicate: bool,
    /// Whether that live job took this enqueue's arguments, priority and due time
    /// ([`OnConflict::Replace`] on a job that was still inactive).
    pub replaced: bool,
}

impl Enqueued {
    /// A job that was inserted.
    pub fn inserted(id: i64) -> Self {
        Enqueued {
            id,
            duplicate: false,
            replaced: false,
        }
    }
}

/// The unique key of one job as a store writes it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ResolvedUnique {
    pub(crate) key: String,
    pub(crate) scope: &'static str,
    pub(crate) period: Option<Duration>,
    pub(crate) on_conflict: OnConflict,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn derived_keys_ignore_object_key_order_and_tell_tasks_and_queues_apart() {
        let u = Unique::by_args();
        let a = u.resolve("t", &json!({"a": 1, "b": [1, {"y": 2, "x": 1}]}), "q");
        let b = u.resolve("t", &json!({"b": [1, {"x": 1, "y": 2}], "a": 1}), "other");
        assert_eq!(a, b);
        assert!(a.starts_with("t:"));
        assert_ne!(a, u.resolve("t2", &json!({"a": 1}), "q"));
        let q = Unique::by_args_and_queue();
        assert_ne!(
            q.resolve("t", &json!(1), "q1"),
            q.resolve("t", &json!(1), "q2")
        );
        assert_ne!(
            q.resolve("t", &json!(1), "q1"),
            u.resolve("t", &json!(1), "q1")
        );
    }

    #[test]
    fn a_scope_is_parsed_with_its_period() {
        let hour = Duration::from_secs(3600);
        assert_eq!(UniqueScope::parse(None, None).unwrap(), UniqueScope::Active);
        assert_eq!(
            UniqueScope::parse(None, Some(hour)).unwrap(),
            UniqueScope::Period(hour)
        );
        assert_eq!(
            UniqueScope::parse(Some("Inactive"), None).unwrap(),
            UniqueScope::Inactive
        );
        assert_eq!(
            UniqueScope::parse(Some("period"), None)
                .unwrap_err()
                .to_string(),
            "invalid option: the unique scope period needs a duration: give unique_for (--unique-for), e.g. 1h"
        );
        assert_eq!(
            UniqueScope::parse(Some("active"), Some(hour))
                .unwrap_err()
                .to_string(),
            "invalid option: unique_for (--unique-for) only goes with the unique scope period, not active"
        );
        assert_eq!(
            UniqueScope::parse(Some("forever"), None)
                .unwrap_err()
                .to_string(),
            "invalid option: unknown unique scope \"forever\": expected inactive, active or period"
        );
    }
}
