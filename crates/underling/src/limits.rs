//! Exact concurrency and rate limits, enforced inside the claim ([`Limit`], [`Queue::set_limit`]).
//!
//! A limit counts the jobs of a group: a queue, a task, or each value of a key read from the
//! jobs' arguments or notes (one group per tenant, say). Every claim that could start a job of
//! a limited group takes the limits' turn (an advisory lock on PostgreSQL, the write lock on
//! SQLite), counts the active jobs of the groups, and passes over jobs whose group is full or
//! whose rate window is used up. See `migrations/postgres/0016_limits_fifo.sql`.

#[cfg(feature = "sqlite")]
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
#[cfg(feature = "sqlite")]
use serde_json::Value;

use crate::error::{Error, Result};
use crate::job::{validate_queue, validate_task};
use crate::queue::Queue;

/// The largest rate count a limit may have: a rate window keeps the start time of each start
/// in it, per group.
pub const MAX_RATE_COUNT: u32 = 10_000;

/// The longest path of a key limit, in bytes.
const MAX_KEY_PATH: usize = 200;

/// What a limit counts.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[serde(tag = "kind", content = "name", rename_all = "lowercase")]
pub enum LimitScope {
    /// The jobs of one queue.
    Queue(String),
    /// The jobs of one task, in any queue.
    Task(String),
    /// For each value of this dotted path in the jobs' arguments (`tenant`, `customer.id`),
    /// the jobs with that value. Jobs without it are not limited.
    Args(String),
    /// As [`LimitScope::Args`], in the jobs' notes (set at enqueue; read at each claim).
    Notes(String),
}

impl LimitScope {
    /// A key limit from `args.PATH` or `notes.PATH`, as the CLI's `--key-from` takes it.
    ///
    /// ```
    /// use underling::LimitScope;
    /// assert_eq!(LimitScope::key_from("args.tenant")?, LimitScope::Args("tenant".into()));
    /// assert_eq!(LimitScope::key_from("notes.customer.id")?, LimitScope::Notes("customer.id".into()));
    /// assert!(LimitScope::key_from("tenant").is_err());
    /// # Ok::<(), underling::Error>(())
    /// ```
    pub fn key_from(text: &str) -> Result<Self> {
        let scope = if let Some(path) = text.strip_prefix("args.") {
            LimitScope::Args(path.to_string())
        } else if let Some(path) = text.strip_prefix("notes.") {
            LimitScope::Notes(path.to_string())
        } else {
            return Err(Error::InvalidLimit(format!(
                "key {text:?} must start with args. or notes., like args.tenant"
            )));
        };
        scope.validate()?;
        Ok(scope)
    }

    /// The kind as stored: `queue`, `task`, `args` or `notes`.
    pub fn kind(&self) -> &'static str {
        match self {
            LimitScope::Queue(_) => "queue",
            LimitScope::Task(_) => "task",
            LimitScope::Args(_) => "args",
            LimitScope::Notes(_) => "notes",
        }
    }

    /// The queue, task or key path.
    pub fn name(&self) -> &str {
        match self {
            LimitScope::Queue(n) | LimitScope::Task(n) | LimitScope::Args(n) => n,
            LimitScope::Notes(n) => n,
        }
    }

    /// The scope from its stored kind and name.
    pub(crate) fn from_parts(kind: &str, name: String) -> Result<Self> {
        Ok(match kind {
            "queue" => LimitScope::Queue(name),
            "task" => LimitScope::Task(name),
            "args" => LimitScope::Args(name),
            "notes" => LimitScope::Notes(name),
            other => return Err(Error::Invariant(format!("unknown limit kind {other:?}"))),
        })
    }

    /// Checks the name or path.
    pub fn validate(&self) -> Result<()> {
        match self {
            LimitScope::Queue(q) => validate_queue(q),
            LimitScope::Task(t) => validate_task(t),
            LimitScope::Args(path) | LimitScope::Notes(path) => {
                let ok = !path.is_empty()
                    && path.len() <= MAX_KEY_PATH
                    && !path.contains('\0')
                    && path.split('.').all(|s| !s.is_empty() && s.trim() == s);
                if ok {
                    Ok(())
                } else {
                    Err(Error::InvalidLimit(format!(
                        "key path {path:?} must be names joined by dots, like tenant or customer.id (at most {MAX_KEY_PATH} bytes)"
                    )))
                }
            }
        }
    }

    /// The group a job is in under this scope, if any: `queue mail`, `task image.resize`,
    /// `args.tenant=acme` (as PostgreSQL's `underling_limit_group_sql` names them).
    #[cfg(feature = "sqlite")]
    pub(crate) fn group(
        &self,
        queue: &str,
        task: &str,
        args: &Value,
        notes: &Value,
    ) -> Option<String> {
        match self {
            LimitScope::Queue(q) => (q == queue).then(|| format!("queue {q}")),
            LimitScope::Task(t) => (t == task).then(|| format!("task {t}")),
            LimitScope::Args(path) => key_text(args, path).map(|v| format!("args.{path}={v}")),
            LimitScope::Notes(path) => key_text(notes, path).map(|v| format!("notes.{path}={v}")),
        }
    }
}

impl fmt::Display for LimitScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LimitScope::Queue(q) => write!(f, "queue {q}"),
            LimitScope::Task(t) => write!(f, "task {t}"),
            LimitScope::Args(p) => write!(f, "args.{p}"),
            LimitScope::Notes(p) => write!(f, "notes.{p}"),
        }
    }
}

/// The value at a dotted path of a JSON document as text, the way PostgreSQL's `#>>` reads it
/// (a string without quotes; an array element by its index); none for a missing value or null.
#[cfg(feature = "sqlite")]
fn key_text(doc: &Value, path: &str) -> Option<String> {
    let mut value = doc;
    for segment in path.split('.') {
        value = match value {
            Value::Object(map) => map.get(segment)?,
            Value::Array(items) => items.get(segment.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// At most `count` starts in any window of `period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rate {
    /// How many starts.
    pub count: u32,
    /// In how long a window.
    pub period: Duration,
}

impl Rate {
    /// Checks the count and the period.
    pub fn validate(&self) -> Result<()> {
        if self.count == 0 || self.count > MAX_RATE_COUNT {
            return Err(Error::InvalidLimit(format!(
                "a rate's count must be 1 to {MAX_RATE_COUNT}, got {} (for more, use a shorter period)",
                self.count
            )));
        }
        if self.period < Duration::from_millis(1) || self.period > Duration::from_secs(366 * 86_400)
        {
            return Err(Error::InvalidLimit(format!(
                "a rate's period must be 1ms to 366 days, got {}",
                humantime::format_duration(self.period)
            )));
        }
        Ok(())
    }
}

impl FromStr for Rate {
    type Err = Error;

    /// `COUNT/PERIOD`: `100/1m`, `5/s`, `1000/1h`, `10/30s`.
    fn from_str(text: &str) -> Result<Self> {
        let bad = |why: String| {
            Error::InvalidLimit(format!(
                "rate {text:?}: {why}; write COUNT/PERIOD, like 100/1m, 5/s or 1000/1h"
            ))
        };
        let (count, period) = text
            .trim()
            .split_once('/')
            .ok_or_else(|| bad("no /".into()))?;
        let count: u32 = count
            .trim()
            .parse()
            .map_err(|_| bad(format!("{:?} is not a count", count.trim())))?;
        let period = period.trim();
        // A bare unit is one of it: `5/s`.
        let period = if period.starts_with(|c: char| c.is_ascii_digit()) {
            humantime::parse_duration(period).map_err(|e| bad(e.to_string()))?
        } else {
            humantime::parse_duration(&format!("1{period}")).map_err(|e| bad(e.to_string()))?
        };
        let rate = Rate { count, period };
        rate.validate()?;
        Ok(rate)
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}",
            self.count,
            humantime::format_duration(self.period)
        )
    }
}

impl Serialize for Rate {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A concurrency limit, a rate limit or both, on the jobs of a [`LimitScope`].
///
/// ```
/// use std::time::Duration;
/// use underling::{Limit, LimitScope, Rate};
/// let per_tenant = Limit::concurrency(LimitScope::key_from("args.tenant")?, 2);
/// let mail = Limit::rate(LimitScope::Queue("mail".into()), "100/1m".parse()?);
/// assert_eq!(mail.rate, Some(Rate { count: 100, period: Duration::from_secs(60) }));
/// # Ok::<(), underling::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limit {
    /// Which jobs it counts.
    pub scope: LimitScope,
    /// At most this many jobs of a group active at once.
    pub concurrency: Option<u32>,
    /// At most this many starts of a group in any window of the period.
    pub rate: Option<Rate>,
}

impl Limit {
    /// A concurrency limit.
    pub fn concurrency(scope: LimitScope, n: u32) -> Self {
        Limit {
            scope,
            concurrency: Some(n),
            rate: None,
        }
    }

    /// A rate limit.
    pub fn rate(scope: LimitScope, rate: Rate) -> Self {
        Limit {
            scope,
            concurrency: None,
            rate: Some(rate),
        }
    }

    /// Checks the scope, the concurrency and the rate (at least one of the two is needed).
    pub fn validate(&self) -> Result<()> {
        self.scope.validate()?;
        match self.concurrency {
            Some(0) => {
                return Err(Error::InvalidLimit(format!(
                    "{}: concurrency must be at least 1 (to stop a queue, pause it)",
                    self.scope
                )));
            }
            Some(n) if n > i32::MAX as u32 => {
                return Err(Error::InvalidLimit(format!(
                    "{}: concurrency must be at most {}",
                    self.scope,
                    i32::MAX
                )));
            }
            _ => {}
        }
        if let Some(rate) = &self.rate {
            rate.validate()?;
        }
        if self.concurrency.is_none() && self.rate.is_none() {
            return Err(Error::InvalidLimit(format!(
                "{}: give a concurrency, a rate or both",
                self.scope
            )));
        }
        Ok(())
    }
}

/// A stored limit as the library's type, from its kind, name, concurrency, rate count and
/// rate period (ms).
pub(crate) fn from_stored(
    kind: String,
    name: String,
    concurrency: Option<i64>,
    rate_count: Option<i64>,
    rate_period_ms: Option<i64>,
) -> Result<Limit> {
    let number = |n: i64| {
        u32::try_from(n).map_err(|_| Error::Invariant(format!("limit of {kind} {name}: {n}")))
    };
    let rate = match (rate_count, rate_period_ms) {
        (Some(count), Some(ms)) => Some(Rate {
            count: number(count)?,
            period: Duration::from_millis(u64::try_from(ms).unwrap_or(0)),
        }),
        _ => None,
    };
    let concurrency = concurrency.map(number).transpose()?;
    Ok(Limit {
        scope: LimitScope::from_parts(&kind, name)?,
        concurrency,
        rate,
    })
}

/// A limit's stored columns: kind, name, concurrency, rate count, rate period in ms (the
/// numbers fit the columns: [`Limit::validate`] keeps them in range).
pub(crate) fn stored_columns(
    limit: &Limit,
) -> (&'static str, &str, Option<i32>, Option<i32>, Option<i64>) {
    let small = |n: u32| i32::try_from(n).unwrap_or(i32::MAX);
    (
        limit.scope.kind(),
        limit.scope.name(),
        limit.concurrency.map(small),
        limit.rate.map(|r| small(r.count)),
        limit.rate.map(|r| period_ms(r.period)),
    )
}

/// Whether a claim of `queues` can concern any of `limits` (as `underling_limited`).
#[cfg(feature = "sqlite")]
pub(crate) fn concerns(limits: &[Limit], queues: &[String]) -> bool {
    limits.iter().any(|l| match &l.scope {
        LimitScope::Queue(q) => queues.contains(q),
        _ => true,
    })
}

/// The limited claim's bookkeeping (the SQLite store's; PostgreSQL's is
/// `underling_pick_limited`): the active jobs per group and each rate window, updated as jobs
/// are picked.
#[cfg(feature = "sqlite")]
#[derive(Debug, Clone)]
pub(crate) struct Picker<'a> {
    limits: &'a [Limit],
    running: HashMap<String, u32>,
    /// Start times (ms) per group with a rate limit, oldest first.
    windows: HashMap<String, Vec<i64>>,
    changed: HashSet<String>,
    now_ms: i64,
}

/// A job as the picker sees it.
#[cfg(feature = "sqlite")]
pub(crate) struct Candidate<'a> {
    pub queue: &'a str,
    pub task: &'a str,
    pub args: &'a Value,
    pub notes: &'a Value,
}

#[cfg(feature = "sqlite")]
impl<'a> Picker<'a> {
    /// A picker over the active jobs given, with the stored rate windows.
    pub(crate) fn new(
        limits: &'a [Limit],
        active: &[Candidate<'_>],
        windows: HashMap<String, Vec<i64>>,
        now_ms: i64,
    ) -> Self {
        let mut running = HashMap::new();
        for job in active {
            for (group, limit) in groups(limits, job) {
                if limit.concurrency.is_some() {
                    *running.entry(group).or_insert(0) += 1;
                }
            }
        }
        Picker {
            limits,
            running,
            windows,
            changed: HashSet::new(),
            now_ms,
        }
    }

    /// Whether every group the job is in has room.
    pub(crate) fn has_room(&self, job: &Candidate<'_>) -> bool {
        self.room_in(&groups(self.limits, job))
    }

    fn room_in(&self, groups: &[(String, &Limit)]) -> bool {
        for (group, limit) in groups {
            if let Some(max) = limit.concurrency
                && self.running.get(group).copied().unwrap_or(0) >= max
            {
                return false;
            }
            if let Some(rate) = limit.rate {
                let since = self.now_ms - period_ms(rate.period);
                let used = self
                    .windows
                    .get(group)
                    .map_or(0, |w| w.iter().filter(|&&t| t > since).count());
                if used >= rate.count as usize {
                    return false;
                }
            }
        }
        true
    }

    /// Picks the job if every group it is in has room, and counts it.
    pub(crate) fn admit(&mut self, job: &Candidate<'_>) -> bool {
        let groups = groups(self.limits, job);
        if !self.room_in(&groups) {
            return false;
        }
        for (group, limit) in groups {
            if limit.concurrency.is_some() {
                *self.running.entry(group.clone()).or_insert(0) += 1;
            }
            if let Some(rate) = limit.rate {
                let since = self.now_ms - period_ms(rate.period);
                let window = self.windows.entry(group.clone()).or_default();
                window.retain(|&t| t > since);
                window.push(self.now_ms);
                let keep = window.len().saturating_sub(rate.count as usize);
                window.drain(..keep);
                self.changed.insert(group);
            }
        }
        true
    }

    /// The rate windows that picks changed, to store.
    pub(crate) fn changed_windows(&self) -> Vec<(&str, &[i64])> {
        self.changed
            .iter()
            .filter_map(|g| self.windows.get(g).map(|w| (g.as_str(), w.as_slice())))
            .collect()
    }
}

fn period_ms(period: Duration) -> i64 {
    i64::try_from(period.as_millis()).unwrap_or(i64::MAX)
}

/// The groups a job is in, with the limit of each.
#[cfg(feature = "sqlite")]
fn groups<'l>(limits: &'l [Limit], job: &Candidate<'_>) -> Vec<(String, &'l Limit)> {
    limits
        .iter()
        .filter_map(|l| {
            l.scope
                .group(job.queue, job.task, job.args, job.notes)
                .map(|g| (g, l))
        })
        .collect()
}

impl Queue {
    /// Sets a limit (replacing the one with the same scope). Claims that start after it obey it.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use underling::{Limit, LimitScope, Queue};
    /// let queue = Queue::connect_and_migrate("sqlite::memory:").await?;
    /// queue.set_limit(&Limit::concurrency(LimitScope::Queue("mail".into()), 3)).await?;
    /// assert_eq!(queue.limits().await?.len(), 1);
    /// # Ok::<(), underling::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn set_limit(&self, limit: &Limit) -> Result<()> {
        limit.validate()?;
        self.store.set_limit(limit).await
    }

    /// Every limit, by kind and name.
    pub async fn limits(&self) -> Result<Vec<Limit>> {
        self.store.limits().await
    }

    /// Removes the limit of a scope; `false` if there was none.
    pub async fn remove_limit(&self, scope: &LimitScope) -> Result<bool> {
        scope.validate()?;
        self.store.remove_limit(scope).await
    }
}

#[cfg(all(test, feature = "sqlite"))]
mod tests {
    use super::*;
    use serde_json::json;

    fn job<'a>(queue: &'a str, task: &'a str, args: &'a Value) -> Candidate<'a> {
        static NO_NOTES: Value = Value::Null;
        Candidate {
            queue,
            task,
            args,
            notes: &NO_NOTES,
        }
    }

    #[test]
    fn a_rate_reads_count_slash_period() {
        assert_eq!(
            "100/1m".parse::<Rate>().unwrap(),
            Rate {
                count: 100,
                period: Duration::from_secs(60)
            }
        );
        assert_eq!(
            "5/s".parse::<Rate>().unwrap().period,
            Duration::from_secs(1)
        );
        assert_eq!("2/ 1h".parse::<Rate>().unwrap().count, 2);
    }

    #[test]
    fn a_malformed_rate_says_how_to_write_one() {
        let err = "100 per minute".parse::<Rate>().unwrap_err().to_string();
        assert_eq!(
            err,
            "invalid limit: rate \"100 per minute\": no /; write COUNT/PERIOD, like 100/1m, 5/s or 1000/1h"
        );
        let err = "0/1m".parse::<Rate>().unwrap_err().to_string();
        assert_eq!(
            err,
            "invalid limit: a rate's count must be 1 to 10000, got 0 (for more, use a shorter period)"
        );
    }

    #[test]
    fn a_key_value_is_read_as_postgresql_reads_it() {
        let args = json!({"tenant": "acme", "n": 4, "deep": {"id": [7, "x"]}, "none": null});
        assert_eq!(key_text(&args, "tenant").as_deref(), Some("acme"));
        assert_eq!(key_text(&args, "n").as_deref(), Some("4"));
        assert_eq!(key_text(&args, "deep.id.1").as_deref(), Some("x"));
        assert_eq!(key_text(&args, "none"), None);
        assert_eq!(key_text(&args, "missing.x"), None);
    }

    #[test]
    fn the_picker_passes_over_jobs_of_full_groups_and_counts_the_ones_it_picks() {
        let limits = [
            Limit::concurrency(LimitScope::Args("tenant".into()), 2),
            Limit::concurrency(LimitScope::Queue("q".into()), 3),
        ];
        let a = json!({"tenant": "a"});
        let b = json!({"tenant": "b"});
        let mut picker = Picker::new(&limits, &[job("q", "t", &a)], HashMap::new(), 0);
        assert!(picker.admit(&job("q", "t", &a)));
        assert!(!picker.admit(&job("q", "t", &a)), "tenant a holds 2");
        assert!(picker.admit(&job("q", "t", &b)));
        assert!(!picker.admit(&job("q", "t", &b)), "queue q holds 3");
        assert!(
            picker.admit(&job("other", "t", &b)),
            "other queue, b holds 1"
        );
    }

    #[test]
    fn the_picker_keeps_a_sliding_window_per_rate_group() {
        let limits = [Limit::rate(
            LimitScope::Task("t".into()),
            "2/1s".parse().unwrap(),
        )];
        let none = Value::Null;
        let windows = HashMap::from([("task t".to_string(), vec![100, 900])]);
        let mut picker = Picker::new(&limits, &[], windows.clone(), 1050);
        assert!(
            !picker.admit(&job("q", "t", &none)),
            "two starts within 1 s"
        );
        let mut picker = Picker::new(&limits, &[], windows, 1150);
        assert!(
            picker.admit(&job("q", "t", &none)),
            "the start at 100 left the window"
        );
        assert!(!picker.admit(&job("q", "t", &none)));
        assert_eq!(picker.changed_windows(), vec![("task t", &[900, 1150][..])]);
    }
}
