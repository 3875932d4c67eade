//! Tasks: named, typed units of work, and the registry that finds them by name.
//!
//! A task is a type that implements [`Task`], registered with [`register_task!`](crate::register_task!) so that any
//! worker binary linking its crate can perform it:
//!
//! ```
//! use serde::Deserialize;
//! use underling::{JobContext, Task, TaskResult};
//!
//! #[derive(Deserialize)]
//! struct Greet { name: String }
//!
//! #[derive(Default)]
//! struct GreetTask;
//!
//! #[async_trait::async_trait]
//! impl Task for GreetTask {
//!     type Args = Greet;
//!     fn name(&self) -> &'static str { "example.greet" }
//!     async fn run(&self, _ctx: &JobContext, args: Greet) -> TaskResult {
//!         Ok(serde_json::json!(format!("hello, {}", args.name)))
//!     }
//! }
//! underling::register_task!(GreetTask);
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};
use crate::job::Job;
use crate::queue::Queue;

/// What a task returns: a JSON result, or an error.
pub type TaskResult = std::result::Result<Value, TaskError>;

/// A task's failure. Stored as the job's result: a plain message as a JSON string, or any JSON.
///
/// Any `std::error::Error` and `anyhow::Error` converts into it, so `?` works inside
/// [`Task::run`].
#[derive(Debug, Clone, PartialEq)]
pub struct TaskError(pub Value);

impl TaskError {
    /// A failure with a plain message.
    pub fn msg(message: impl fmt::Display) -> Self {
        TaskError(Value::String(message.to_string()))
    }
    /// A failure with structured JSON.
    pub fn json(value: Value) -> Self {
        TaskError(value)
    }
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Value::String(s) => f.write_str(s),
            other => write!(f, "{other}"),
        }
    }
}

/// Any `std::error::Error`, and `anyhow::Error`, converts: `?` works inside [`Task::run`] on
/// both. The stored message keeps the error's chain of causes, outermost first
/// (`reading config: file not found`).
impl<E: Into<anyhow::Error>> From<E> for TaskError {
    fn from(e: E) -> Self {
        TaskError::msg(format!("{:#}", e.into()))
    }
}

/// How long a stopped job has to return, unless its task says otherwise.
pub const DEFAULT_STOP_GRACE: Duration = Duration::from_secs(2);

/// Per-task settings.
#[derive(Clone)]
pub struct TaskOptions {
    /// The queue of the task's jobs when the enqueue names none. Like `priority` and
    /// `attempts`, it applies on every enqueue path, also in processes that do not link the
    /// task, once a worker that runs it has published it (see [`crate::TaskDefaults`]).
    pub queue: Option<String>,
    /// The priority of the task's jobs when the enqueue gives none.
    pub priority: Option<i32>,
    /// The attempts of the task's jobs when the enqueue gives none.
    pub attempts: Option<i32>,
    /// A job running longer than this is stopped (see `stop_grace`) and failed.
    pub timeout: Option<Duration>,
    /// How long a job that is stopped (a `stop` command, its timeout, or the end of a worker's
    /// graceful shutdown) has to return after [`JobContext::cancelled`] fires, before its
    /// future is dropped (default 2 s). A `kill` drops it at once. A longer grace needs a longer
    /// `missing_after` (see [`crate::WorkerOptions::heartbeat_interval`]).
    pub stop_grace: Duration,
    /// The delay before retry number `retries + 1` (default: [`crate::default_backoff`]).
    /// Snoozes do not count: it is given the number of failed attempts so far.
    pub backoff: fn(i32) -> Duration,
    /// How many times a job may be snoozed ([`JobContext::snooze`]; default
    /// [`DEFAULT_MAX_SNOOZES`]). A snooze beyond that fails the attempt instead, with an error
    /// that says so (retried, like any failed attempt, where tries are left).
    pub max_snoozes: i32,
}

/// How many times a job may be snoozed, unless its task says otherwise.
pub const DEFAULT_MAX_SNOOZES: i32 = 100;

impl Default for TaskOptions {
    fn default() -> Self {
        TaskOptions {
            queue: None,
            priority: None,
            attempts: None,
            timeout: None,
            stop_grace: DEFAULT_STOP_GRACE,
            backoff: crate::job::default_backoff,
            max_snoozes: DEFAULT_MAX_SNOOZES,
        }
    }
}

impl fmt::Debug for TaskOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskOptions")
            .field("queue", &self.queue)
            .field("priority", &self.priority)
            .field("attempts", &self.attempts)
            .field("timeout", &self.timeout)
            .field("stop_grace", &self.stop_grace)
            .field("max_snoozes", &self.max_snoozes)
            .finish_non_exhaustive()
    }
}

/// A named task with typed arguments.
#[async_trait]
pub trait Task: Send + Sync + 'static {
    /// The arguments, deserialized from the job's JSON args. A payload that does not parse
    /// fails the job with a message naming the task and the parse error.
    type Args: DeserializeOwned + Send;

    /// The name jobs are enqueued under, e.g. `mail.send`.
    fn name(&self) -> &'static str;

    /// Per-task settings (default queue and attempts, timeout, backoff).
    fn options(&self) -> TaskOptions {
        TaskOptions::default()
    }

    /// Performs the job.
    async fn run(&self, ctx: &JobContext, args: Self::Args) -> TaskResult;
}

/// A task with its argument type erased, as the registry holds it.
#[async_trait]
pub trait DynTask: Send + Sync + 'static {
    /// The task name.
    fn name(&self) -> &'static str;
    /// Per-task settings.
    fn options(&self) -> TaskOptions;
    /// Parses the arguments and runs the task.
    async fn run_json(&self, ctx: &JobContext, args: Value) -> TaskResult;
}

#[async_trait]
impl<T: Task> DynTask for T {
    fn name(&self) -> &'static str {
        Task::name(self)
    }
    fn options(&self) -> TaskOptions {
        Task::options(self)
    }
    async fn run_json(&self, ctx: &JobContext, args: Value) -> TaskResult {
        let parsed: T::Args = serde_json::from_value(args).map_err(|e| {
            TaskError::msg(format!(
                "invalid arguments for task {}: {e}",
                Task::name(self)
            ))
        })?;
        self.run(ctx, parsed).await
    }
}

/// A registration collected by `inventory`; create it with [`register_task!`](crate::register_task!).
pub struct TaskRegistration {
    /// Builds the task.
    pub make: fn() -> Arc<dyn DynTask>,
}

inventory::collect!(TaskRegistration);

/// Builds a task of type `T` for the registry.
#[doc(hidden)]
pub fn make_task<T: Task + Default>() -> Arc<dyn DynTask> {
    Arc::new(T::default())
}

/// Registers a task type (which must implement [`Task`] and `Default`) by its name, so that
/// every worker binary linking this crate can perform it.
#[macro_export]
macro_rules! register_task {
    ($task:ty) => {
        $crate::inventory::submit! {
            $crate::TaskRegistration { make: $crate::task::make_task::<$task> }
        }
    };
}

/// The tasks a worker can perform, by name.
#[derive(Clone, Default)]
pub struct Registry {
    tasks: BTreeMap<String, Arc<dyn DynTask>>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.tasks.keys()).finish()
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every task registered with [`register_task!`](crate::register_task!) in the crates linked into this binary.
    ///
    /// Fails on two tasks with one name. (A crate whose tasks should be found must be named
    /// in the binary, e.g. `use my_tasks as _;`, or the linker drops its registrations.)
    pub fn from_inventory() -> Result<Self> {
        let mut registry = Registry::new();
        for registration in inventory::iter::<TaskRegistration> {
            registry.add((registration.make)())?;
        }
        Ok(registry)
    }

    /// Adds a task; fails if its name is taken or invalid.
    pub fn add(&mut self, task: Arc<dyn DynTask>) -> Result<&mut Self> {
        let name = task.name();
        crate::job::validate_task(name)?;
        let options = task.options();
        if let Some(queue) = &options.queue {
            crate::job::validate_queue(queue).map_err(|e| {
                Error::InvalidOption(format!("task {name:?} declares a bad default queue: {e}"))
            })?;
        }
        if let Some(attempts) = options.attempts
            && attempts < 1
        {
            return Err(Error::InvalidOption(format!(
                "task {name:?} declares {attempts} default attempts: it must be at least 1"
            )));
        }
        if self.tasks.contains_key(name) {
            return Err(Error::DuplicateTask(name.to_string()));
        }
        self.tasks.insert(name.to_string(), task);
        Ok(self)
    }

    /// Adds a task value; fails if its name is taken or invalid.
    pub fn register<T: Task>(&mut self, task: T) -> Result<&mut Self> {
        self.add(Arc::new(task))
    }

    /// Every task's enqueue defaults, by name, as a worker publishes them.
    pub fn defaults(&self) -> Vec<crate::TaskDefaults> {
        let now = chrono::Utc::now();
        self.tasks
            .iter()
            .map(|(name, task)| {
                let options = task.options();
                crate::TaskDefaults {
                    name: name.clone(),
                    queue: options.queue,
                    priority: options.priority,
                    attempts: options.attempts,
                    timeout_ms: options
                        .timeout
                        .map(|t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX)),
                    published: now,
                }
            })
            .collect()
    }

    /// The task of that name.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn DynTask>> {
        self.tasks.get(name)
    }

    /// Task names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.tasks.keys().cloned().collect()
    }

    /// The delay before retry number `retries + 1` of a job of `task`: the task's backoff, or
    /// [`crate::default_backoff`] for a task this registry does not have.
    pub fn backoff(&self, task: &str, retries: i32) -> std::time::Duration {
        match self.get(task) {
            Some(t) => (t.options().backoff)(retries),
            None => crate::job::default_backoff(retries),
        }
    }

    /// The task with the longest stop grace, and that grace (the first by name on a tie);
    /// `None` when no task is registered. A worker's `missing_after` must leave room for it.
    pub fn longest_stop_grace(&self) -> Option<(&str, std::time::Duration)> {
        self.tasks
            .iter()
            .map(|(name, task)| (name.as_str(), task.options().stop_grace))
            .fold(None, |longest, (name, grace)| match longest {
                Some((_, most)) if most >= grace => longest,
                _ => Some((name, grace)),
            })
    }

    /// Whether no task is registered.
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }
}

/// What a running task can see and do.
#[derive(Clone)]
pub struct JobContext {
    job: Arc<Job>,
    queue: Queue,
    cancel: CancellationToken,
    /// The delay the task asked to be snoozed for, if it did.
    snooze: Arc<std::sync::Mutex<Option<Duration>>>,
}

impl JobContext {
    /// A context for `job`.
    pub(crate) fn new(job: Job, queue: Queue, cancel: CancellationToken) -> Self {
        JobContext {
            job: Arc::new(job),
            queue,
            cancel,
            snooze: Arc::default(),
        }
    }

    /// The job's id.
    pub fn id(&self) -> i64 {
        self.job.id
    }

    /// The job as it was claimed.
    pub fn job(&self) -> &Job {
        &self.job
    }

    /// Which try this is, starting at 1.
    pub fn attempt(&self) -> i32 {
        self.job.retries + 1
    }

    /// The queue, to enqueue follow-up jobs or read other jobs.
    pub fn queue(&self) -> &Queue {
        &self.queue
    }

    /// The job as stored now (with parents and children).
    pub async fn info(&self) -> Result<Job> {
        self.queue
            .job(self.job.id)
            .await?
            .ok_or(Error::JobNotFound(self.job.id))
    }

    /// Merges notes (a JSON object) into the job's notes; a null value deletes its key.
    pub async fn note(&self, notes: Value) -> Result<()> {
        self.queue.note(self.job.id, notes).await
    }

    /// Records progress in the `progress` note (any JSON, e.g. a percentage).
    pub async fn progress(&self, progress: Value) -> Result<()> {
        self.queue.note_key(self.job.id, "progress", progress).await
    }

    /// Whether the worker asked this job to stop (a `stop` command, its timeout or the end of
    /// a graceful shutdown). The task then has its `stop_grace` ([`TaskOptions`]) to return
    /// before it is dropped; a task that returns `Ok` in that time has finished.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Completes when the worker asks this job to stop; use it in `tokio::select!`.
    pub async fn cancelled(&self) {
        self.cancel.cancelled().await
    }

    /// Snoozes the job: once the task returns, the job goes back to the queue and runs again
    /// after `delay`, without using an attempt (River's `JobSnooze`). Return what it returns:
    /// `return ctx.snooze(Duration::from_secs(30));`. The job's `snoozes` counts them; past
    /// its task's [`TaskOptions::max_snoozes`] the attempt fails instead. A job that is stopped
    /// or times out is not snoozed.
    pub fn snooze(&self, delay: Duration) -> TaskResult {
        if let Ok(mut slot) = self.snooze.lock() {
            *slot = Some(delay);
        }
        Ok(Value::Null)
    }

    /// The delay the task asked to be snoozed for, if it did.
    pub(crate) fn snoozed(&self) -> Option<Duration> {
        self.snooze.lock().ok().and_then(|slot| *slot)
    }
}

impl Queue {
    /// Enqueues a job for the task type `T` with typed arguments. What `opts` leaves unset
    /// comes from `T`'s own [`TaskOptions`] (this process links the task, so they apply even
    /// before any worker published them).
    pub async fn enqueue_task<T: Task + Default>(
        &self,
        args: T::Args,
        opts: crate::EnqueueOptions,
    ) -> Result<i64>
    where
        T::Args: serde::Serialize,
    {
        let task = T::default();
        let defaults = Task::options(&task);
        let mut opts = opts;
        if opts.queue.is_none() {
            opts.queue = defaults.queue;
        }
        if opts.priority.is_none() {
            opts.priority = defaults.priority;
        }
        if opts.attempts.is_none() {
            opts.attempts = defaults.attempts;
        }
        self.enqueue(Task::name(&task), args, opts).await
    }
}

#[cfg(test)]
mod tests {
    use anyhow::Context;
    use serde_json::json;

    use super::{TaskError, TaskResult};

    fn read_config() -> anyhow::Result<String> {
        Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "file not found",
        ))
        .context("reading config")
    }

    fn task_body() -> TaskResult {
        let config = read_config()?;
        Ok(json!(config))
    }

    #[test]
    fn an_anyhow_error_converts_with_its_chain_of_causes() {
        assert_eq!(
            task_body().unwrap_err(),
            TaskError(json!("reading config: file not found"))
        );
    }

    #[test]
    fn a_std_error_converts_with_its_message() {
        let parse: TaskResult = "x"
            .parse::<i32>()
            .map(|n| json!(n))
            .map_err(TaskError::from);
        assert_eq!(
            parse.unwrap_err(),
            TaskError(json!("invalid digit found in string"))
        );
    }
}
