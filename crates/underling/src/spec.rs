//! A job to enqueue as data: the fields of `underling job enqueue`'s flags, deserialized from
//! JSON by the CLI's `job enqueue-batch` lines and the HTTP API's enqueue bodies alike, so
//! that every front end maps them onto [`EnqueueOptions`] in this one place.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::job::{EnqueueOptions, NewJob};
use crate::unique::{OnConflict, Unique, UniqueScope};

/// A duration as JSON gives it: words (`"90s"`, `"5m"`, `"1h 30m"`) or a number of seconds.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[serde(
    untagged,
    expecting = "expected a duration: a number of seconds such as 30, or a string with a unit such as \"90s\", \"5m\" or \"1h 30m\""
)]
pub enum DurationSpec {
    /// A number of seconds (fractions allowed).
    Seconds(f64),
    /// A duration in words: `90s`, `5m`, `2h`, `1d`, `1h 30m`.
    Text(String),
}

impl DurationSpec {
    /// The duration, or [`Error::InvalidDuration`] naming `field`.
    pub fn parse(&self, field: &str) -> Result<Duration> {
        match self {
            DurationSpec::Text(text)
                if text
                    .trim()
                    .strip_prefix('-')
                    .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit())) =>
            {
                Err(Error::InvalidDuration(format!(
                    "{field}: {text:?} is negative; give a duration of zero or more, like 90s, 5m, 2h or 1d"
                )))
            }
            DurationSpec::Text(text) => humantime::parse_duration(text.trim()).map_err(|e| {
                Error::InvalidDuration(format!(
                    "{field}: {e}; give a number and a unit, like 90s, 5m, 2h or 1d"
                ))
            }),
            DurationSpec::Seconds(secs) => Duration::try_from_secs_f64(*secs).map_err(|_| {
                Error::InvalidDuration(format!("{field}: {secs} is not a number of seconds >= 0"))
            }),
        }
    }
}

/// Where a derived unique key comes from ([`JobSpec::unique_by`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum UniqueBy {
    /// The task name and the arguments.
    Args,
    /// The task name, the arguments and the queue.
    ArgsAndQueue,
}

/// One job to enqueue, as JSON: only `task` is required, and an unknown field is an error.
///
/// ```
/// let spec: underling::JobSpec = serde_json::from_str(
///     r#"{"task": "mail.send", "args": {"to": "a@example.com"}, "delay": "5m",
///         "unique_key": "welcome:a@example.com", "on_conflict": "replace", "timeout": 30}"#,
/// )?;
/// let job = spec.into_job()?;
/// assert_eq!(job.delay(), Some(std::time::Duration::from_secs(300)));
/// assert!(job.unique().is_some());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct JobSpec {
    /// The task name.
    pub task: String,
    /// The job's arguments, any JSON (default `{}`).
    #[serde(default)]
    pub args: Option<Value>,
    /// The queue (default: the task's, as its workers published it, else `default`).
    pub queue: Option<String>,
    /// Higher runs first (default: the task's, else 0).
    pub priority: Option<i32>,
    /// How many times the job may be tried in all, at least 1 (default: the task's, else 1).
    pub attempts: Option<i32>,
    /// Run no earlier than this long from now (`"90s"`, `"5m"` or seconds).
    pub delay: Option<DurationSpec>,
    /// Run no earlier than this time (RFC 3339); not with `delay`.
    pub run_at: Option<DateTime<Utc>>,
    /// Jobs that must finish first.
    #[serde(default)]
    pub parents: Vec<i64>,
    /// Also run when a parent failed.
    #[serde(default)]
    pub lax: bool,
    /// Remove the job if it has not started this long after it was enqueued.
    pub expire: Option<DurationSpec>,
    /// Initial notes, a JSON object.
    pub notes: Option<Value>,
    /// A unique key: while a live job holds it, this job is not inserted (see `unique_scope`
    /// and `on_conflict`). Not with `unique_by`.
    pub unique_key: Option<String>,
    /// A unique key derived from the task and the arguments (`args`), or from those and the
    /// queue (`args_and_queue`). Not with `unique_key`.
    pub unique_by: Option<UniqueBy>,
    /// How long a job holds its key: `inactive`, `active` (default: inactive or active) or
    /// `period` (for `unique_for` after its enqueue).
    pub unique_scope: Option<String>,
    /// The period of the `period` scope (`"1h"` or seconds); alone, it means that scope.
    pub unique_for: Option<DurationSpec>,
    /// What to do when a live job holds the key: `existing` (default: return its id),
    /// `replace` (give it these args, priority and due time while it is inactive) or `error`.
    pub on_conflict: Option<OnConflict>,
    /// Stop and fail the job when it runs longer than this (`"30s"` or seconds); overrides
    /// the task's timeout.
    pub timeout: Option<DurationSpec>,
}

impl JobSpec {
    /// A spec of `task` with nothing else set.
    pub fn new(task: impl Into<String>) -> Self {
        JobSpec {
            task: task.into(),
            ..JobSpec::default()
        }
    }

    /// The job's uniqueness, if the spec asks for one.
    pub fn unique(&self) -> Result<Option<Unique>> {
        let base = match (&self.unique_key, self.unique_by) {
            (Some(_), Some(_)) => {
                return Err(Error::InvalidOption(
                    "give unique_key or unique_by, not both".into(),
                ));
            }
            (Some(key), None) => Unique::key(key.clone()),
            (None, Some(UniqueBy::Args)) => Unique::by_args(),
            (None, Some(UniqueBy::ArgsAndQueue)) => Unique::by_args_and_queue(),
            (None, None) => {
                if self.unique_scope.is_some()
                    || self.unique_for.is_some()
                    || self.on_conflict.is_some()
                {
                    return Err(Error::InvalidOption(
                        "unique_scope, unique_for and on_conflict need unique_key or unique_by"
                            .into(),
                    ));
                }
                return Ok(None);
            }
        };
        let period = self
            .unique_for
            .as_ref()
            .map(|d| d.parse("unique_for"))
            .transpose()?;
        Ok(Some(
            base.scope(UniqueScope::parse(self.unique_scope.as_deref(), period)?)
                .on_conflict(self.on_conflict.unwrap_or_default()),
        ))
    }

    /// The validated job (nothing is written).
    pub fn into_job(self) -> Result<NewJob> {
        let unique = self.unique()?;
        let mut opts = EnqueueOptions {
            queue: self.queue,
            priority: self.priority,
            attempts: self.attempts,
            unique,
            ..EnqueueOptions::new()
        }
        .parents(self.parents)
        .lax(self.lax);
        match (&self.delay, self.run_at) {
            (Some(_), Some(_)) => {
                return Err(Error::InvalidOption(
                    "give delay or run_at, not both".into(),
                ));
            }
            (Some(delay), None) => opts = opts.delay(delay.parse("delay")?),
            (None, Some(at)) => opts = opts.run_at(at),
            (None, None) => {}
        }
        if let Some(expire) = &self.expire {
            opts = opts.expire(expire.parse("expire")?);
        }
        if let Some(timeout) = &self.timeout {
            opts = opts.timeout(timeout.parse("timeout")?);
        }
        if let Some(notes) = self.notes {
            opts = opts.notes(notes);
        }
        let args = self
            .args
            .unwrap_or_else(|| Value::Object(Default::default()));
        NewJob::new(&self.task, args, opts)
    }
}
