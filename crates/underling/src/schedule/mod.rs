//! Schedules (cron): jobs enqueued at the ticks of a cron expression in a time zone, stored
//! in the database and fired by the scheduler that every worker runs.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use underling::{CatchUp, EnqueueOptions, Queue, Schedule};
//!
//! let queue = Queue::connect_and_migrate("sqlite::memory:").await?;
//! let schedule = Schedule::new("nightly-report", "30 2 * * *", "report.build")
//!     .timezone("Europe/Berlin")
//!     .args(serde_json::json!({"kind": "daily"}))
//!     .options(EnqueueOptions::new().queue("reports").attempts(3))
//!     .catch_up(CatchUp::Skip);
//! let stored = queue.add_schedule(schedule).await?;
//! assert!(stored.next_run.is_some());
//! assert_eq!(queue.schedules().await?.len(), 1);
//! # Ok::<(), underling::Error>(())
//! # }).unwrap();
//! ```
//!
//! **Exactly once.** A scheduler pass reads the due schedules (one query); for each, in one
//! transaction, it moves `next_run` on with a compare-and-set on the value it read and
//! enqueues the tick's job. Of any number of schedulers that read the same tick, one moves
//! the schedule and enqueues, the others change nothing. Each tick's job also carries a unique
//! key (`schedule:NAME:TICK`, unless the schedule sets a unique option of its own) and the
//! notes `schedule` and `tick`.
//!
//! **Catch-up.** `next_run` is the next tick not yet enqueued, so no tick is lost while no
//! scheduler runs: at the next pass, [`CatchUp::Last`] enqueues the last tick that was missed
//! (once, however many were), and [`CatchUp::Skip`] enqueues it only if it is less than
//! [`MISSED_AFTER`] late. Either way `next_run` moves to the first tick after now.

mod ticks;

use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::error::{Error, Result};
use crate::job::{EnqueueOptions, NewJob};
use crate::queue::Queue;
use crate::spec::{DurationSpec, JobSpec, UniqueBy};
use crate::store::{self, DueSchedule, Fired};
use crate::unique::{Enqueued, OnConflict, UniqueKey, UniqueScope};

pub(crate) use ticks::Ticks;

/// With [`CatchUp::Skip`], a tick found this late by a scheduler counts as missed and is not
/// enqueued (one minute).
pub const MISSED_AFTER: Duration = Duration::from_secs(60);

/// The longest schedule name, in bytes.
pub const MAX_SCHEDULE_NAME: usize = 200;

/// What a scheduler does with the ticks of a schedule that it finds missed (no scheduler ran
/// at their time: every worker was down).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum CatchUp {
    /// Enqueue the last missed tick once, however many were missed (the default).
    #[default]
    Last,
    /// Enqueue nothing for missed ticks (a tick less than [`MISSED_AFTER`] late still runs).
    Skip,
}

impl CatchUp {
    /// The policy's name: `last` or `skip`.
    pub fn as_str(self) -> &'static str {
        match self {
            CatchUp::Last => "last",
            CatchUp::Skip => "skip",
        }
    }
}

impl fmt::Display for CatchUp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CatchUp {
    type Err = Error;

    /// Any case: `last` or `skip`.
    fn from_str(s: &str) -> Result<Self> {
        [CatchUp::Last, CatchUp::Skip]
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                Error::InvalidOption(format!(
                    "unknown catch-up policy {s:?}: expected last (run the last missed tick once) or skip"
                ))
            })
    }
}

/// Where a scheduler takes the time from. Tests inject a [`ManualClock`] (with
/// [`Queue::with_clock`]) to cross a change of the clocks without waiting for one.
pub trait Clock: Send + Sync + 'static {
    /// The time now.
    fn now(&self) -> DateTime<Utc>;
}

/// This host's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that stands still until it is set or advanced; clones share the time.
///
/// ```
/// use underling::{Clock, ManualClock};
/// let clock = ManualClock::new("2026-03-08T06:00:00Z".parse().unwrap());
/// clock.advance(std::time::Duration::from_secs(3600));
/// assert_eq!(clock.now().to_rfc3339(), "2026-03-08T07:00:00+00:00");
/// ```
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<Mutex<DateTime<Utc>>>);

impl ManualClock {
    /// A clock showing `now`.
    pub fn new(now: DateTime<Utc>) -> Self {
        ManualClock(Arc::new(Mutex::new(now)))
    }
    /// Sets the time.
    pub fn set(&self, now: DateTime<Utc>) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = now;
    }
    /// Moves the time forward by `by`.
    pub fn advance(&self, by: Duration) {
        let mut now = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        *now += chrono::Duration::from_std(by).unwrap_or(chrono::Duration::MAX);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A schedule to add (or update by name) with [`Queue::add_schedule`], or to define in code
/// with [`crate::Worker::schedule`].
///
/// The job options may set the queue, priority, attempts, expiry, notes, a unique key and a
/// timeout; a delay, a run-at time and parents make no sense for a periodic job and are
/// refused, and so is the conflict policy `error` (a tick must not fail: use `existing` to
/// enqueue nothing while the last tick's job still lives).
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    /// The name (1 to [`MAX_SCHEDULE_NAME`] letters, digits, `.`, `_`, `:` or `-`).
    pub name: String,
    /// The cron expression: 5 fields, or 6 with seconds first; `@daily` and the like.
    pub cron: String,
    /// The IANA time zone the expression is read in (default `UTC`).
    pub timezone: String,
    /// The task of its jobs.
    pub task: String,
    /// The arguments of its jobs (default `{}`).
    pub args: Value,
    /// The options of its jobs.
    pub options: EnqueueOptions,
    /// What to do with missed ticks (default [`CatchUp::Last`]).
    pub catch_up: CatchUp,
    /// Whether a new schedule starts paused (an update keeps the stored flag).
    pub paused: bool,
}

impl Schedule {
    /// A schedule `name` that enqueues `task` at the ticks of `cron`, in UTC, with no
    /// arguments and the task's default options.
    pub fn new(name: impl Into<String>, cron: impl Into<String>, task: impl Into<String>) -> Self {
        Schedule {
            name: name.into(),
            cron: cron.into(),
            timezone: "UTC".into(),
            task: task.into(),
            args: Value::Object(Map::new()),
            options: EnqueueOptions::new(),
            catch_up: CatchUp::Last,
            paused: false,
        }
    }
    /// Reads the expression in this IANA time zone.
    pub fn timezone(mut self, timezone: impl Into<String>) -> Self {
        self.timezone = timezone.into();
        self
    }
    /// Sets the jobs' arguments.
    pub fn args(mut self, args: Value) -> Self {
        self.args = args;
        self
    }
    /// Sets the jobs' options.
    pub fn options(mut self, options: EnqueueOptions) -> Self {
        self.options = options;
        self
    }
    /// Sets the catch-up policy.
    pub fn catch_up(mut self, catch_up: CatchUp) -> Self {
        self.catch_up = catch_up;
        self
    }
    /// Makes a new schedule start paused.
    pub fn paused(mut self, paused: bool) -> Self {
        self.paused = paused;
        self
    }

    /// Checks everything (name, expression, time zone, task, queue, options) as of `now`;
    /// returns the parsed ticks and the options as stored. Nothing is written.
    fn validate(&self, now: DateTime<Utc>) -> Result<(Ticks, Value)> {
        validate_name(&self.name)?;
        let ticks = Ticks::parse(&self.cron, &self.timezone, now)?;
        let invalid = |reason: &str| Error::InvalidSchedule {
            name: self.name.clone(),
            reason: reason.to_string(),
        };
        let o = &self.options;
        if o.delay.is_some() || o.run_at.is_some() {
            return Err(invalid(
                "a schedule's jobs run at its ticks: leave delay and run_at unset",
            ));
        }
        if !o.parents.is_empty() || o.lax {
            return Err(invalid(
                "a schedule's jobs cannot wait for parents: leave parents and lax unset",
            ));
        }
        if o.unique.as_ref().map(|u| u.on_conflict) == Some(OnConflict::Error) {
            return Err(invalid(
                "a tick must not fail on a unique conflict: use on_conflict existing (enqueue nothing while the last job lives) or replace",
            ));
        }
        // The task, arguments, queue, attempts, notes, unique key and timeout, as an enqueue
        // checks them.
        NewJob::new(&self.task, &self.args, o.clone())?;
        Ok((ticks, stored_options(o)))
    }
}

/// Checks a schedule name.
fn validate_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= MAX_SCHEDULE_NAME
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-'));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidScheduleName(name.to_string()))
    }
}

/// The options a schedule stores besides queue, priority and attempts, in the vocabulary of
/// [`JobSpec`] (so that they read back through it).
fn stored_options(o: &EnqueueOptions) -> Value {
    let mut out = Map::new();
    if let Some(expire) = o.expire {
        out.insert("expire".into(), json!(expire.as_secs_f64()));
    }
    if let Some(timeout) = o.timeout {
        out.insert("timeout".into(), json!(timeout.as_secs_f64()));
    }
    if let Some(notes) = &o.notes {
        out.insert("notes".into(), notes.clone());
    }
    if let Some(unique) = &o.unique {
        match &unique.key {
            UniqueKey::Explicit(key) => out.insert("unique_key".into(), json!(key)),
            UniqueKey::Args => out.insert("unique_by".into(), json!("args")),
            UniqueKey::ArgsAndQueue => out.insert("unique_by".into(), json!("args_and_queue")),
        };
        out.insert("unique_scope".into(), json!(unique.scope.as_str()));
        if let UniqueScope::Period(d) = unique.scope {
            out.insert("unique_for".into(), json!(d.as_secs_f64()));
        }
        out.insert("on_conflict".into(), json!(unique.on_conflict.as_str()));
    }
    Value::Object(out)
}

/// The options a schedule stores, read back.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredOptions {
    expire: Option<DurationSpec>,
    timeout: Option<DurationSpec>,
    notes: Option<Value>,
    unique_key: Option<String>,
    unique_by: Option<UniqueBy>,
    unique_scope: Option<String>,
    unique_for: Option<DurationSpec>,
    on_conflict: Option<OnConflict>,
}

/// A schedule as stored, with its next run time (`underling schedule list --json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduleInfo {
    /// The name.
    pub name: String,
    /// The cron expression.
    pub cron: String,
    /// The IANA time zone it is read in.
    pub timezone: String,
    /// The task of its jobs.
    pub task: String,
    /// The arguments of its jobs.
    pub args: Value,
    /// The queue of its jobs (none: the task's default).
    pub queue: Option<String>,
    /// The priority of its jobs (none: the task's default).
    pub priority: Option<i32>,
    /// The attempts of its jobs (none: the task's default).
    pub attempts: Option<i32>,
    /// The other options of its jobs, in the vocabulary of a `job enqueue-batch` line
    /// (`expire`, `timeout`, `notes`, `unique_key`, ...).
    pub options: Value,
    /// What a scheduler does with missed ticks.
    pub catch_up: CatchUp,
    /// Whether it is paused (it enqueues nothing).
    pub paused: bool,
    /// The next tick to enqueue (none while paused).
    pub next_run: Option<DateTime<Utc>>,
    /// The tick of the last job it enqueued (for a run now, its time).
    pub last_run: Option<DateTime<Utc>>,
    /// The last job it enqueued (for a duplicate of a live unique job, that job).
    pub last_job_id: Option<i64>,
    /// When it was added.
    pub created: DateTime<Utc>,
    /// When it was last changed (or moved on by a tick).
    pub updated: DateTime<Utc>,
}

impl ScheduleInfo {
    /// The next `n` ticks from its next run on (none while paused).
    pub fn upcoming(&self, n: usize) -> Result<Vec<DateTime<Utc>>> {
        let Some(first) = self.next_run else {
            return Ok(Vec::new());
        };
        let ticks = Ticks::parse(&self.cron, &self.timezone, first)?;
        let mut out = Vec::with_capacity(n);
        let mut tick = first;
        for _ in 0..n {
            out.push(tick);
            tick = ticks.next_after(tick)?;
        }
        Ok(out)
    }

    /// The job a tick of this schedule enqueues: its options, a unique key of the schedule
    /// and tick (unless it sets its own) and the notes `schedule` and `tick`; for a run now
    /// (`tick` none), the notes `schedule` and `run_now` and no key of its own.
    fn job(&self, tick: Option<DateTime<Utc>>) -> Result<NewJob> {
        let stored: StoredOptions = serde_json::from_value(self.options.clone())?;
        let mut notes = match stored.notes {
            Some(Value::Object(map)) => map,
            _ => Map::new(),
        };
        notes.insert("schedule".into(), json!(self.name));
        match tick {
            Some(tick) => notes.insert("tick".into(), json!(tick_text(tick))),
            None => notes.insert("run_now".into(), json!(true)),
        };
        let own_key = stored.unique_key.is_some() || stored.unique_by.is_some();
        let unique_key = match (own_key, tick) {
            (false, Some(tick)) => Some(format!("schedule:{}:{}", self.name, tick_text(tick))),
            _ => stored.unique_key,
        };
        JobSpec {
            args: Some(self.args.clone()),
            queue: self.queue.clone(),
            priority: self.priority,
            attempts: self.attempts,
            expire: stored.expire,
            timeout: stored.timeout,
            notes: Some(Value::Object(notes)),
            unique_key,
            unique_by: stored.unique_by,
            unique_scope: if own_key { stored.unique_scope } else { None },
            unique_for: if own_key { stored.unique_for } else { None },
            on_conflict: if own_key { stored.on_conflict } else { None },
            ..JobSpec::new(&self.task)
        }
        .into_job()
    }
}

/// A tick as jobs name it: RFC 3339 in UTC, whole seconds.
fn tick_text(tick: DateTime<Utc>) -> String {
    tick.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A schedule as JSON (an HTTP request body, a line of a file): the fields of
/// `underling schedule add`'s arguments and flags. `name`, `cron` and `task` are required;
/// the job fields are those of [`JobSpec`] but `delay`, `run_at`, `parents` and `lax`.
///
/// ```
/// let spec: underling::ScheduleSpec = serde_json::from_str(
///     r#"{"name": "digest", "cron": "0 8 * * MON-FRI", "timezone": "Europe/Paris",
///         "task": "mail.digest", "queue": "mail", "catch_up": "skip"}"#,
/// )?;
/// let schedule = spec.into_schedule()?;
/// assert_eq!(schedule.options.queue.as_deref(), Some("mail"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ScheduleSpec {
    /// The schedule's name (letters, digits, `.`, `_`, `:`, `-`).
    pub name: String,
    /// The cron expression: 5 fields, or 6 with seconds first (`"30 2 * * *"`, `"@daily"`).
    pub cron: String,
    /// The IANA time zone the expression is read in (default `UTC`).
    pub timezone: Option<String>,
    /// The task of its jobs.
    pub task: String,
    /// The arguments of its jobs (default `{}`).
    pub args: Option<Value>,
    /// The queue of its jobs (default: the task's).
    pub queue: Option<String>,
    /// The priority of its jobs (default: the task's).
    pub priority: Option<i32>,
    /// The attempts of its jobs (default: the task's).
    pub attempts: Option<i32>,
    /// Remove a job if it has not started this long after its tick (`"5m"` or seconds).
    pub expire: Option<DurationSpec>,
    /// The jobs' timeout (`"30s"` or seconds).
    pub timeout: Option<DurationSpec>,
    /// The jobs' initial notes (a JSON object).
    pub notes: Option<Value>,
    /// A unique key of the jobs' own (instead of one per tick).
    pub unique_key: Option<String>,
    /// A unique key derived from the task and arguments (`args`, `args_and_queue`).
    pub unique_by: Option<UniqueBy>,
    /// `inactive`, `active` or `period`.
    pub unique_scope: Option<String>,
    /// The period of the `period` scope.
    pub unique_for: Option<DurationSpec>,
    /// `existing` or `replace` (`error` is refused for schedules).
    pub on_conflict: Option<OnConflict>,
    /// `last` (default: run the last missed tick once) or `skip`.
    pub catch_up: Option<CatchUp>,
    /// Start paused (default false; an update keeps the stored flag).
    #[serde(default)]
    pub paused: bool,
}

impl ScheduleSpec {
    /// The schedule (its options checked as an enqueue checks them; the expression and time
    /// zone are checked when it is added).
    pub fn into_schedule(self) -> Result<Schedule> {
        let job = JobSpec {
            args: self.args.clone(),
            queue: self.queue,
            priority: self.priority,
            attempts: self.attempts,
            expire: self.expire,
            timeout: self.timeout,
            notes: self.notes,
            unique_key: self.unique_key,
            unique_by: self.unique_by,
            unique_scope: self.unique_scope,
            unique_for: self.unique_for,
            on_conflict: self.on_conflict,
            ..JobSpec::new(&self.task)
        }
        .into_job()?;
        let mut options = job.options().clone();
        if !job.notes().is_empty() {
            options.notes = Some(Value::Object(job.notes().clone()));
        }
        Ok(Schedule {
            name: self.name,
            cron: self.cron,
            timezone: self.timezone.unwrap_or_else(|| "UTC".into()),
            task: self.task,
            args: self.args.unwrap_or_else(|| Value::Object(Map::new())),
            options,
            catch_up: self.catch_up.unwrap_or_default(),
            paused: self.paused,
        })
    }
}

/// What one scheduler pass did ([`Queue::run_schedules`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SchedulerPass {
    /// The ticks this pass fired, in the order of their schedules' `next_run`.
    pub fired: Vec<FiredTick>,
    /// Due schedules that another scheduler moved on first (or that were paused or removed
    /// meanwhile): nothing was done for them here.
    pub lost: u64,
    /// Schedules that could not be fired, with the error (logged too); they are tried again
    /// at the next pass.
    pub failed: Vec<(String, String)>,
}

/// One tick a scheduler pass fired.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FiredTick {
    /// The schedule.
    pub schedule: String,
    /// The tick.
    pub tick: DateTime<Utc>,
    /// What the enqueue returned; none when the tick was missed and the schedule skips
    /// missed ticks.
    pub job: Option<Enqueued>,
}

impl Queue {
    /// This queue with a clock of its own for schedules (tests: a [`ManualClock`]): adding,
    /// resuming and the passes of [`Queue::run_schedules`] (and of a worker over this queue)
    /// take the time from it.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Queue {
        self.clock = Some(clock);
        self
    }

    /// The time for schedule changes: the queue's clock, else this host's.
    fn schedule_now(&self) -> DateTime<Utc> {
        self.clock.as_ref().map_or_else(Utc::now, |c| c.now())
    }

    /// Adds a schedule, or updates the one of the same name, and returns it as stored.
    /// Everything is checked first ([`Error::InvalidCron`], [`Error::InvalidTimezone`],
    /// [`Error::InvalidScheduleName`], [`Error::InvalidSchedule`], and the task, queue and
    /// options as an enqueue checks them); nothing is written when one fails.
    ///
    /// An update keeps the schedule's next run while its expression and time zone stay the
    /// same (so a tick that is due is neither lost nor repeated), and its pause flag.
    pub async fn add_schedule(&self, schedule: Schedule) -> Result<ScheduleInfo> {
        let now = self.schedule_now();
        let (ticks, options) = schedule.validate(now)?;
        let next_run = ticks.next_after(now)?;
        self.store
            .upsert_schedule(store::UpsertSchedule {
                name: &schedule.name,
                cron: schedule.cron.trim(),
                timezone: schedule.timezone.trim(),
                task: &schedule.task,
                args: &schedule.args,
                queue: schedule.options.queue.as_deref(),
                priority: schedule.options.priority,
                attempts: schedule.options.attempts,
                options: &options,
                paused: schedule.paused,
                catch_up: schedule.catch_up,
                next_run,
                now,
            })
            .await?;
        self.schedule(&schedule.name)
            .await?
            .ok_or_else(|| Error::ScheduleNotFound(schedule.name.clone()))
    }

    /// Every schedule, by name, with its next run time.
    pub async fn schedules(&self) -> Result<Vec<ScheduleInfo>> {
        self.store.schedules(&[]).await
    }

    /// The schedule of this name, if there is one.
    pub async fn schedule(&self, name: &str) -> Result<Option<ScheduleInfo>> {
        validate_name(name)?;
        Ok(self
            .store
            .schedules(&[name.to_string()])
            .await?
            .into_iter()
            .next())
    }

    /// Pauses a schedule: it enqueues nothing until resumed ([`Error::ScheduleNotFound`] when
    /// there is none of that name).
    pub async fn pause_schedule(&self, name: &str) -> Result<()> {
        validate_name(name)?;
        let now = self.schedule_now();
        let p = store::PauseSchedule {
            name,
            paused: true,
            next_run: now,
            now,
        };
        if !self.store.set_schedule_paused(p).await? {
            return Err(Error::ScheduleNotFound(name.into()));
        }
        Ok(())
    }

    /// Resumes a paused schedule from its next tick after now: the ticks it missed while
    /// paused are not run. Resuming one that is not paused changes nothing.
    pub async fn resume_schedule(&self, name: &str) -> Result<()> {
        let schedule = self
            .schedule(name)
            .await?
            .ok_or_else(|| Error::ScheduleNotFound(name.into()))?;
        let now = self.schedule_now();
        let ticks = Ticks::parse(&schedule.cron, &schedule.timezone, now)?;
        let p = store::PauseSchedule {
            name,
            paused: false,
            next_run: ticks.next_after(now)?,
            now,
        };
        if !self.store.set_schedule_paused(p).await? {
            return Err(Error::ScheduleNotFound(name.into()));
        }
        Ok(())
    }

    /// Removes a schedule; the jobs it enqueued stay ([`Error::ScheduleNotFound`] when there
    /// is none of that name).
    pub async fn remove_schedule(&self, name: &str) -> Result<()> {
        validate_name(name)?;
        if !self.store.remove_schedule(name).await? {
            return Err(Error::ScheduleNotFound(name.into()));
        }
        Ok(())
    }

    /// Enqueues a schedule's job now, outside its ticks (also when it is paused); its next
    /// run does not change. The job has the notes `schedule` and `run_now` and no unique key
    /// but the schedule's own.
    pub async fn run_schedule_now(&self, name: &str) -> Result<Enqueued> {
        let schedule = self
            .schedule(name)
            .await?
            .ok_or_else(|| Error::ScheduleNotFound(name.into()))?;
        let job = schedule.job(None)?;
        let jobs = self.with_task_defaults(std::slice::from_ref(&job)).await?;
        let now = self.schedule_now();
        let fired = self
            .store
            .fire_schedule(store::FireSchedule {
                name,
                seen: None,
                next_run: None,
                job: jobs.first(),
                tick: now,
                now,
            })
            .await?;
        match fired {
            Fired::Moved(Some(enqueued)) => Ok(enqueued),
            Fired::Moved(None) => Err(Error::Invariant(format!(
                "running schedule {name:?} now enqueued nothing"
            ))),
            Fired::Lost => Err(Error::ScheduleNotFound(name.into())),
        }
    }

    /// One scheduler pass, as every worker runs about every second: reads the due schedules
    /// (one query; nothing else when none is due) and fires each (see the [module
    /// docs](crate::schedule)). The time is the queue's clock (see [`Queue::with_clock`]),
    /// else the database's on PostgreSQL and this host's on SQLite.
    pub async fn run_schedules(&self) -> Result<SchedulerPass> {
        let now = self.clock.as_ref().map(|c| c.now());
        let due = self.store.due_schedules(now).await?;
        let mut pass = SchedulerPass::default();
        for d in due {
            let name = d.schedule.name.clone();
            match self.fire(&d).await {
                Ok(Some(tick)) => pass.fired.push(tick),
                Ok(None) => pass.lost += 1,
                Err(e) => {
                    tracing::warn!(schedule = name, error = %e, "firing a schedule failed");
                    pass.failed.push((name, e.to_string()));
                }
            }
        }
        Ok(pass)
    }

    /// Fires one due schedule: none when another scheduler did first.
    async fn fire(&self, d: &DueSchedule) -> Result<Option<FiredTick>> {
        let s = &d.schedule;
        let Some(seen) = s.next_run else {
            return Ok(None);
        };
        let now = d.now.max(seen);
        let ticks = Ticks::parse(&s.cron, &s.timezone, now)?;
        let tick = ticks.last_at_or_before(seen, now)?;
        let next_run = ticks.next_after(now)?;
        let late = (now - tick).to_std().unwrap_or_default();
        let run = match s.catch_up {
            CatchUp::Last => true,
            CatchUp::Skip => late < MISSED_AFTER,
        };
        let jobs = match run {
            true => self.with_task_defaults(&[s.job(Some(tick))?]).await?,
            false => Vec::new(),
        };
        let fired = self
            .store
            .fire_schedule(store::FireSchedule {
                name: &s.name,
                seen: Some(seen),
                next_run: Some(next_run),
                job: jobs.first(),
                tick,
                now,
            })
            .await?;
        Ok(match fired {
            Fired::Moved(job) => Some(FiredTick {
                schedule: s.name.clone(),
                tick,
                job,
            }),
            Fired::Lost => None,
        })
    }
}
