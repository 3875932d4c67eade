//! Jobs and the options and filters that describe them.
//!
//! Long because the validation of every field a user gives (names, args, notes, durations)
//! lives beside the types it guards, so that no job or filter can be built unchecked.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::model::TaskDefaults;
use crate::unique::{ResolvedUnique, Unique, UniqueScope};

/// The queue a job goes to when none is given.
pub const DEFAULT_QUEUE: &str = "default";

/// Where a job is in its life: `inactive → active → finished | failed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Waiting to be claimed (possibly delayed, or waiting for parents).
    Inactive,
    /// Claimed by a worker and running.
    Active,
    /// Performed successfully.
    Finished,
    /// Failed on its last attempt.
    Failed,
}

impl JobState {
    /// Every state, in life-cycle order.
    pub const ALL: [JobState; 4] = [
        JobState::Inactive,
        JobState::Active,
        JobState::Finished,
        JobState::Failed,
    ];

    /// The state's name as stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Inactive => "inactive",
            JobState::Active => "active",
            JobState::Finished => "finished",
            JobState::Failed => "failed",
        }
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for JobState {
    type Err = Error;

    /// Any case: `failed`, `Failed` and `FAILED` are one state.
    fn from_str(s: &str) -> Result<Self> {
        JobState::ALL
            .into_iter()
            .find(|state| state.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| Error::UnknownState(s.to_string()))
    }
}

/// Why an inactive job does not run yet: finer states derived from its fields, with the names
/// River and Oban users know. A job may be in more than one (a retry that also waits for a
/// parent retried with it); an inactive job in none is due now, with its parents done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InactiveState {
    /// Inactive, due later, and never tried yet (`retries = 0`): enqueued with a delay or a
    /// run-at time (River's and Oban's `scheduled`).
    Scheduled,
    /// Inactive, due later, and tried before (`retries > 0`): a failed attempt waiting out
    /// its backoff, or a job retried with a delay (River's and Oban's `retryable`).
    Retryable,
    /// Inactive with a parent that has not finished (with `lax`, one that has neither finished
    /// nor failed); removed and expired parents count as done (graphile's and River's
    /// dependency wait; River calls it `pending`).
    Waiting,
}

impl InactiveState {
    /// Every derived state.
    pub const ALL: [InactiveState; 3] = [
        InactiveState::Scheduled,
        InactiveState::Retryable,
        InactiveState::Waiting,
    ];

    /// The state's name.
    pub fn as_str(self) -> &'static str {
        match self {
            InactiveState::Scheduled => "scheduled",
            InactiveState::Retryable => "retryable",
            InactiveState::Waiting => "waiting",
        }
    }
}

impl fmt::Display for InactiveState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for InactiveState {
    type Err = Error;

    /// Any case, like [`JobState`].
    fn from_str(s: &str) -> Result<Self> {
        InactiveState::ALL
            .into_iter()
            .find(|state| state.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| Error::UnknownState(s.to_string()))
    }
}

/// Everything stored about one job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// Ascending id.
    pub id: i64,
    /// The task name.
    pub task: String,
    /// The queue it is in.
    pub queue: String,
    /// Its JSON arguments.
    pub args: Value,
    /// Its state.
    pub state: JobState,
    /// Higher runs first.
    pub priority: i32,
    /// How many times it may be tried in all.
    pub attempts: i32,
    /// How many times it has been retried so far.
    pub retries: i32,
    /// When it was enqueued.
    pub created: DateTime<Utc>,
    /// When it becomes due.
    pub delayed: DateTime<Utc>,
    /// When its current attempt started.
    pub started: Option<DateTime<Utc>>,
    /// When its last attempt ended.
    pub finished: Option<DateTime<Utc>>,
    /// When it was last retried.
    pub retried: Option<DateTime<Utc>>,
    /// After this time an inactive job is removed instead of run.
    pub expires: Option<DateTime<Utc>>,
    /// With `lax`, a failed parent counts as done too.
    pub lax: bool,
    /// The worker running (or that last ran) it.
    pub worker_id: Option<i64>,
    /// The result of a finished job, or the error of a failed attempt.
    pub result: Option<Value>,
    /// Free-form metadata (a JSON object).
    pub notes: Map<String, Value>,
    /// Ids of the jobs this job waits for. Filled by [`crate::Queue::job`]; empty on claimed jobs.
    #[serde(default)]
    pub parents: Vec<i64>,
    /// Ids of the jobs that wait for this job. Filled by [`crate::Queue::job`]; empty on claimed jobs.
    #[serde(default)]
    pub children: Vec<i64>,
    /// The unique key the job was enqueued with (see [`crate::Unique`]), while it keeps it: a
    /// job that left its scope gives its key up when a new job with that key is enqueued.
    /// Filled by [`crate::Queue::job`] and listings; none on claimed jobs.
    #[serde(default)]
    pub unique_key: Option<String>,
    /// The job's own timeout in milliseconds (see [`EnqueueOptions::timeout`]); none: its
    /// task's.
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// How many times the job was snoozed ([`crate::JobContext::snooze`]). Each snooze was a
    /// new attempt that used none: it counts in `retries` and added one to `attempts`.
    #[serde(default)]
    pub snoozes: i32,
}

impl Job {
    /// The job's own timeout, if it was enqueued with one.
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout_ms.map(Duration::from_millis)
    }
}

/// How to enqueue a job. Build it with the chainable setters:
///
/// ```
/// use std::time::Duration;
/// use underling::EnqueueOptions;
///
/// let opts = EnqueueOptions::new()
///     .queue("mail")
///     .priority(5)
///     .delay(Duration::from_secs(60))
///     .attempts(3);
/// assert_eq!(opts.queue.as_deref(), Some("mail"));
/// ```
///
/// The queue, priority and attempts left unset come from the task's defaults
/// ([`crate::TaskOptions`]) as the workers that run it have published them (see
/// [`crate::Queue::tasks`]), and otherwise from the built-in defaults: queue `default`,
/// priority 0, one attempt.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EnqueueOptions {
    /// Queue name (unset: the task's default, else `default`).
    pub queue: Option<String>,
    /// Higher runs first (unset: the task's default, else 0).
    pub priority: Option<i32>,
    /// Run no earlier than this long from now.
    pub delay: Option<Duration>,
    /// Run no earlier than this time (overrides `delay`).
    pub run_at: Option<DateTime<Utc>>,
    /// Maximum number of tries, at least 1 (unset: the task's default, else 1).
    pub attempts: Option<i32>,
    /// Jobs that must finish first.
    pub parents: Vec<i64>,
    /// Also run when a parent failed.
    pub lax: bool,
    /// Remove the job if it has not started this long after it was enqueued.
    pub expire: Option<Duration>,
    /// Initial notes; must be a JSON object.
    pub notes: Option<Value>,
    /// At most one live job per unique key (see [`Unique`]).
    pub unique: Option<Unique>,
    /// A job running longer than this is stopped and failed (overrides the task's
    /// [`crate::TaskOptions::timeout`]; repair fails it when it runs on past this plus a grace).
    pub timeout: Option<Duration>,
}

impl EnqueueOptions {
    /// Nothing set: the task's defaults, then the built-in ones; no delay.
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets the queue.
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.queue = Some(queue.into());
        self
    }
    /// Sets the priority (higher runs first).
    pub fn priority(mut self, priority: i32) -> Self {
        self.priority = Some(priority);
        self
    }
    /// Delays the job.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }
    /// Runs the job no earlier than `at`.
    pub fn run_at(mut self, at: DateTime<Utc>) -> Self {
        self.run_at = Some(at);
        self
    }
    /// Sets the maximum number of tries.
    pub fn attempts(mut self, attempts: i32) -> Self {
        self.attempts = Some(attempts);
        self
    }
    /// Adds a parent the job waits for.
    pub fn parent(mut self, id: i64) -> Self {
        self.parents.push(id);
        self
    }
    /// Sets the parents the job waits for.
    pub fn parents(mut self, ids: impl IntoIterator<Item = i64>) -> Self {
        self.parents = ids.into_iter().collect();
        self
    }
    /// Lets the job run when a parent failed.
    pub fn lax(mut self, lax: bool) -> Self {
        self.lax = lax;
        self
    }
    /// Removes the job if it has not started within `after`.
    pub fn expire(mut self, after: Duration) -> Self {
        self.expire = Some(after);
        self
    }
    /// Sets the initial notes (a JSON object).
    pub fn notes(mut self, notes: Value) -> Self {
        self.notes = Some(notes);
        self
    }
    /// Makes the job unique (see [`Unique`]).
    pub fn unique(mut self, unique: Unique) -> Self {
        self.unique = Some(unique);
        self
    }
    /// Sets the job's timeout (overrides the task's).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
}

/// A job ready to be written: a task name, JSON arguments and options, validated by
/// [`NewJob::new`] (the only way to build one), for [`crate::Queue::enqueue_batch`] and the
/// transactional [`crate::Queue::enqueue_batch_in`].
///
/// ```
/// use underling::{EnqueueOptions, NewJob};
///
/// let job = NewJob::new("mail.send", serde_json::json!({"to": "a@example.com"}),
///     EnqueueOptions::new().queue("mail"))?;
/// assert_eq!(job.queue(), "mail");
/// assert!(NewJob::new(" ", serde_json::json!({}), EnqueueOptions::new()).is_err());
/// # Ok::<(), underling::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    task: String,
    args: Value,
    /// The options, with `parents` sorted and deduplicated and `notes` moved to [`Self::notes`].
    options: EnqueueOptions,
    notes: Map<String, Value>,
}

impl NewJob {
    /// Validates a task name, arguments (anything that serializes to JSON) and options.
    /// Nothing is written.
    pub fn new(task: &str, args: impl Serialize, opts: EnqueueOptions) -> Result<NewJob> {
        let args = serde_json::to_value(args).map_err(|e| Error::InvalidArgs(e.to_string()))?;
        if let Some(path) = nul_character_at(&args) {
            return Err(Error::InvalidArgs(nul_character_reason(&path)));
        }
        let mut options = opts;
        let notes = match options.notes.take() {
            None => Map::new(),
            Some(Value::Object(map)) => map,
            Some(other) => {
                return Err(Error::InvalidNotes(format!(
                    "notes must be a JSON object, got {}",
                    json_kind(&other)
                )));
            }
        };
        check_notes(&notes)?;
        options.parents.sort_unstable();
        options.parents.dedup();
        check_duration("delay", options.delay)?;
        check_duration("expire", options.expire)?;
        if let Some(timeout) = options.timeout {
            check_timeout(timeout)?;
        }
        if let Some(unique) = &options.unique {
            unique.validate()?;
        }
        validate_task(task)?;
        if let Some(queue) = &options.queue {
            validate_queue(queue)?;
        }
        if let Some(attempts) = options.attempts {
            check_attempts(attempts)?;
        }
        Ok(NewJob {
            task: task.to_string(),
            args,
            options,
            notes,
        })
    }

    /// The task name.
    pub fn task(&self) -> &str {
        &self.task
    }
    /// The JSON arguments.
    pub fn args(&self) -> &Value {
        &self.args
    }
    /// The queue (`default` when neither the options nor the task's defaults set one).
    pub fn queue(&self) -> &str {
        self.options.queue.as_deref().unwrap_or(DEFAULT_QUEUE)
    }
    /// The priority (higher runs first; 0 when unset).
    pub fn priority(&self) -> i32 {
        self.options.priority.unwrap_or(0)
    }
    /// Run no earlier than this long after the enqueue.
    pub fn delay(&self) -> Option<Duration> {
        self.options.delay
    }
    /// Run no earlier than this time (wins over [`Self::delay`]).
    pub fn run_at(&self) -> Option<DateTime<Utc>> {
        self.options.run_at
    }
    /// The maximum number of tries (at least 1; 1 when unset).
    pub fn attempts(&self) -> i32 {
        self.options.attempts.unwrap_or(1)
    }
    /// The options as given (the queue, priority and attempts left unset are `None`).
    pub fn options(&self) -> &EnqueueOptions {
        &self.options
    }
    /// Whether this job leaves its queue, priority or attempts to its task's defaults.
    pub(crate) fn leaves_unset(&self) -> bool {
        self.options.queue.is_none()
            || self.options.priority.is_none()
            || self.options.attempts.is_none()
    }
    /// Whether `defaults` would set something this job leaves unset.
    pub(crate) fn takes_from(&self, defaults: &TaskDefaults) -> bool {
        (self.options.queue.is_none() && defaults.queue.is_some())
            || (self.options.priority.is_none() && defaults.priority.is_some())
            || (self.options.attempts.is_none() && defaults.attempts.is_some())
    }
    /// Sets what this job leaves unset from its task's `defaults`.
    pub(crate) fn take_from(&mut self, defaults: &TaskDefaults) {
        if self.options.queue.is_none() {
            self.options.queue.clone_from(&defaults.queue);
        }
        if self.options.priority.is_none() {
            self.options.priority = defaults.priority;
        }
        if self.options.attempts.is_none() {
            self.options.attempts = defaults.attempts;
        }
    }
    /// The parents, sorted and without duplicates.
    pub fn parents(&self) -> &[i64] {
        &self.options.parents
    }
    /// Whether the job also runs when a parent failed.
    pub fn lax(&self) -> bool {
        self.options.lax
    }
    /// Removed if not started this long after the enqueue.
    pub fn expire(&self) -> Option<Duration> {
        self.options.expire
    }
    /// The initial notes.
    pub fn notes(&self) -> &Map<String, Value> {
        &self.notes
    }
    /// The job's uniqueness, if any.
    pub fn unique(&self) -> Option<&Unique> {
        self.options.unique.as_ref()
    }
    /// The job's own timeout, if any (else its task's applies).
    pub fn timeout(&self) -> Option<Duration> {
        self.options.timeout
    }
    /// The timeout in whole milliseconds, as stores keep it.
    pub(crate) fn timeout_ms(&self) -> Option<i64> {
        self.options
            .timeout
            .map(|t| i64::try_from(t.as_millis()).unwrap_or(i64::MAX))
    }
    /// The unique key as a store writes it: derived keys use the queue the job goes to (so
    /// call this after the task's defaults were applied).
    pub(crate) fn resolved_unique(&self) -> Option<ResolvedUnique> {
        self.options.unique.as_ref().map(|u| ResolvedUnique {
            key: u.resolve(&self.task, &self.args, self.queue()),
            scope: u.scope.as_str(),
            period: match u.scope {
                UniqueScope::Period(d) => Some(d),
                _ => None,
            },
            on_conflict: u.on_conflict,
        })
    }
}

/// Checks a job's timeout: longer than zero and storable.
pub(crate) fn check_timeout(timeout: Duration) -> Result<()> {
    if timeout.is_zero() {
        return Err(Error::InvalidOption(
            "timeout must be longer than zero".into(),
        ));
    }
    check_duration("timeout", Some(timeout))
}

/// Checks a number of attempts (at least 1).
pub(crate) fn check_attempts(attempts: i32) -> Result<()> {
    if attempts < 1 {
        return Err(Error::InvalidOption(format!(
            "attempts must be at least 1, got {attempts}"
        )));
    }
    Ok(())
}

/// The longest delay or expiry accepted: far beyond any real use, well inside what both
/// databases can store.
pub const MAX_DURATION: Duration = Duration::from_secs(100 * 366 * 24 * 3600);

/// Checks that a delay or expiry is storable.
pub(crate) fn check_duration(what: &str, d: Option<Duration>) -> Result<()> {
    match d {
        Some(d) if d > MAX_DURATION => Err(Error::InvalidOption(format!(
            "{what} must be at most 100 years, got {} days",
            d.as_secs() / 86_400
        ))),
        _ => Ok(()),
    }
}

/// The longest name of a task, a queue or a lock (and of a note key or limit name given to the
/// HTTP API), in bytes: far beyond any real name, and small enough that no caller can fill the
/// database with one. Every surface (library, CLI, HTTP API) applies this one limit.
pub const MAX_NAME: usize = 1000;

/// Checks that a name is at most [`MAX_NAME`] bytes long; `what` names it in the error
/// (`"task name"`, `"queue name"`, `"lock name"`).
///
/// ```
/// assert!(underling::check_name_length("task name", "send-email").is_ok());
/// let err = underling::check_name_length("task name", &"x".repeat(1001)).unwrap_err();
/// assert_eq!(err.to_string(), "the task name is 1001 bytes long; at most 1000 are accepted");
/// ```
pub fn check_name_length(what: &str, name: &str) -> Result<()> {
    if name.len() > MAX_NAME {
        return Err(Error::NameTooLong {
            what: what.to_string(),
            len: name.len(),
            max: MAX_NAME,
        });
    }
    Ok(())
}

/// Checks a task name: at most [`MAX_NAME`] bytes, not empty, no surrounding spaces, no NUL.
pub(crate) fn validate_task(task: &str) -> Result<()> {
    check_name_length("task name", task)?;
    // PostgreSQL's text cannot hold NUL; refused on both backends alike.
    if task.is_empty() || task.trim() != task || task.contains('\0') {
        return Err(Error::InvalidTask(task.to_string()));
    }
    Ok(())
}

/// Checks a queue name: at most [`MAX_NAME`] bytes, not empty, no surrounding spaces, no NUL.
pub(crate) fn validate_queue(queue: &str) -> Result<()> {
    check_name_length("queue name", queue)?;
    if queue.is_empty() || queue.trim() != queue || queue.contains('\0') {
        return Err(Error::InvalidQueue(queue.to_string()));
    }
    Ok(())
}

/// Where in a JSON value a string (or an object key) holds a NUL character, as a path like
/// `$.files[2].name`, if anywhere. PostgreSQL's `jsonb` cannot store `\u0000`, so no backend
/// accepts it: JSON that one backend stores must read back the same on the other.
pub(crate) fn nul_character_at(value: &Value) -> Option<String> {
    nul_path(value).map(|path| format!("${path}"))
}

/// The path below `value` to a NUL character, if any; built only once one is found, so that
/// checking large clean arguments allocates nothing.
fn nul_path(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => s.contains('\0').then(String::new),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| nul_path(item).map(|rest| format!("[{i}]{rest}"))),
        Value::Object(map) => nul_path_in(map),
        _ => None,
    }
}

/// [`nul_path`] for the entries of an object (keys included).
fn nul_path_in(map: &Map<String, Value>) -> Option<String> {
    map.iter().find_map(|(key, item)| {
        if key.contains('\0') {
            Some(format!(".{}", key.replace('\0', "\\u0000")))
        } else {
            nul_path(item).map(|rest| format!(".{key}{rest}"))
        }
    })
}

/// Checks that notes can be stored.
pub(crate) fn check_notes(notes: &Map<String, Value>) -> Result<()> {
    match nul_path_in(notes) {
        Some(path) => Err(Error::InvalidNotes(nul_character_reason(&format!(
            "${path}"
        )))),
        None => Ok(()),
    }
}

/// The reason JSON with a NUL character is refused, for error messages.
pub(crate) fn nul_character_reason(path: &str) -> String {
    format!(
        "a string at {path} contains a NUL character (\\u0000), which PostgreSQL cannot store; \
         remove it or encode the data (e.g. as base64)"
    )
}

/// The JSON type of a value, for error messages.
pub(crate) fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Changes to apply when retrying a job. Unset fields keep their value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RetryOptions {
    /// Move to another queue.
    pub queue: Option<String>,
    /// New priority.
    pub priority: Option<i32>,
    /// Delay from now (default: due now).
    pub delay: Option<Duration>,
    /// New maximum number of tries.
    pub attempts: Option<i32>,
    /// Replace the parents.
    pub parents: Option<Vec<i64>>,
    /// New lax flag.
    pub lax: Option<bool>,
    /// New expiry, relative to now.
    pub expire: Option<Duration>,
}

impl RetryOptions {
    /// Checks the options. Nothing is written.
    pub(crate) fn validate(&self) -> Result<()> {
        check_duration("delay", self.delay)?;
        check_duration("expire", self.expire)?;
        if let Some(queue) = &self.queue {
            validate_queue(queue)?;
        }
        if let Some(attempts) = self.attempts
            && attempts < 1
        {
            return Err(Error::InvalidOption(format!(
                "attempts must be at least 1, got {attempts}"
            )));
        }
        Ok(())
    }
}

/// Which jobs to list, retry or purge. Empty fields match everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobFilter {
    /// Only these ids.
    pub ids: Vec<i64>,
    /// Only jobs in these states (or in one of [`Self::inactive`]).
    pub states: Vec<JobState>,
    /// Only inactive jobs in these derived states (or jobs in one of [`Self::states`]): with
    /// `states` empty and this `[Scheduled]`, only scheduled jobs; with `states` `[Failed]`,
    /// failed and scheduled ones. Due times are compared with the database's clock.
    pub inactive: Vec<InactiveState>,
    /// Only jobs in these queues.
    pub queues: Vec<String>,
    /// Only jobs of these tasks.
    pub tasks: Vec<String>,
    /// Only jobs whose notes have all of these keys.
    pub notes: Vec<String>,
    /// Only jobs that ended (finished or failed) before this time.
    pub finished_before: Option<DateTime<Utc>>,
}

impl JobFilter {
    /// Checks the names and note keys: none may hold a NUL character (no stored job can have
    /// one, and PostgreSQL refuses them in a query).
    pub fn validate(&self) -> Result<()> {
        let lists = [
            ("task", &self.tasks),
            ("queue", &self.queues),
            ("note key", &self.notes),
        ];
        for (what, values) in lists {
            if let Some(bad) = values.iter().find(|v| v.contains('\0')) {
                return Err(Error::InvalidOption(format!(
                    "the {what} filter {bad:?} contains a NUL character"
                )));
            }
        }
        Ok(())
    }

    /// Whether the filter selects by stored state and queue only, so that the number of jobs
    /// it matches can be read from the counters instead of counted.
    pub(crate) fn by_state_and_queue_only(&self) -> bool {
        self.ids.is_empty()
            && self.inactive.is_empty()
            && self.tasks.is_empty()
            && self.notes.is_empty()
            && self.finished_before.is_none()
    }
}

/// One page of a job listing, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobList {
    /// The jobs on this page.
    pub jobs: Vec<Job>,
    /// How many jobs match the filter in all.
    pub total: u64,
}

/// What a worker reports when an attempt ends.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The task succeeded with this result.
    Finished(Value),
    /// The task failed with this error; with tries left the job is retried after `retry_delay`.
    Failed {
        /// The error, stored as the job's result.
        error: Value,
        /// The backoff before the next try.
        retry_delay: Duration,
    },
    /// The task asked to run again after `delay` without using an attempt
    /// ([`crate::JobContext::snooze`]).
    Snoozed {
        /// When to run again.
        delay: Duration,
    },
}

/// One settlement of an attempt (for [`crate::Store::cycle`]): the attempt is identified by the
/// job id and its retry count when it was claimed.
#[derive(Debug, Clone, PartialEq)]
pub struct Settle {
    /// The job.
    pub id: i64,
    /// The job's retry count when it was claimed; a later attempt makes this settle stale.
    pub retries: i32,
    /// What happened.
    pub outcome: Outcome,
}

/// What a settlement did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Settled {
    /// The job is finished.
    Finished,
    /// The job failed for good.
    Failed,
    /// The job failed and will be retried.
    Retried,
    /// The job was snoozed: it runs again after its delay, without using an attempt.
    Snoozed,
    /// Nothing changed: the attempt was no longer current (the job was retried, rescued or removed).
    Stale,
}

/// The default backoff, River's: `(retries + 1)⁴` seconds, so 1 s before the first retry, then
/// 16 s, 81 s, 256 s, 625 s, about 21 minutes, 40 minutes, 68 minutes… A first retry that
/// comes quickly also brings back quickly a job whose worker died (see
/// [`crate::RepairOptions::missing_after`]).
///
/// ```
/// use std::time::Duration;
/// assert_eq!(underling::default_backoff(0), Duration::from_secs(1));
/// assert_eq!(underling::default_backoff(1), Duration::from_secs(16));
/// assert_eq!(underling::default_backoff(3), Duration::from_secs(256));
/// ```
pub fn default_backoff(retries: i32) -> Duration {
    let r = u64::try_from(retries.max(0)).unwrap_or(0);
    Duration::from_secs(r.saturating_add(1).saturating_pow(4))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::nul_character_at;

    #[test]
    fn a_nul_character_is_found_with_its_path() {
        assert_eq!(nul_character_at(&json!({"a": "fine"})), None);
        assert_eq!(
            nul_character_at(&json!({"a": {"b": ["x", "y\u{0}z"]}})),
            Some("$.a.b[1]".to_string())
        );
        assert_eq!(
            nul_character_at(&json!({"k\u{0}": 1})),
            Some("$.k\\u0000".to_string())
        );
        assert_eq!(nul_character_at(&json!("\u{0}")), Some("$".to_string()));
    }
}
