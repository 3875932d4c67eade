//! # underling
//!
//! A PostgreSQL-backed, distributed job queue with named tasks, in the spirit of Perl's Minion,
//! with the same API on SQLite (a file, or in memory for tests).
//!
//! - [`Queue`] enqueues and manages jobs, workers, locks and queues.
//! - [`Worker`] claims jobs and runs the [`Task`]s of a [`Registry`].
//! - [`Schedule`]s enqueue jobs at the ticks of cron expressions (see [`schedule`]).
//! - [`Store`] is the storage contract, implemented for PostgreSQL and SQLite (the Cargo
//!   features `postgres` and `sqlite`, both on by default).
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use underling::{EnqueueOptions, JobState, Queue};
//!
//! let queue = Queue::connect_and_migrate("sqlite::memory:").await?;
//! let id = queue.enqueue("report.build", serde_json::json!({"month": 11}),
//!     EnqueueOptions::new().priority(5)).await?;
//! assert_eq!(queue.job(id).await?.unwrap().state, JobState::Inactive);
//! # Ok::<(), underling::Error>(())
//! # }).unwrap();
//! ```

mod app_connection;
mod command;
mod defaults;
mod error;
mod events;
mod job;
mod lease;
mod limits;
mod model;
#[cfg(feature = "postgres")]
pub mod pgbouncer;
mod queue;
pub mod schedule;
mod spec;
pub mod store;
pub mod task;
mod unique;
mod url;
pub mod worker;
mod workload;

pub use app_connection::AppConnection;
pub use command::{COMMAND_NAMES, RemoteCommand};
pub use error::{Error, Result};
pub use events::{
    AuditEntry, AuditQuery, EventStream, JobEvent, JobEventKind, MAX_AUDIT_PAGE, MissedEvents,
};
pub use job::{
    DEFAULT_QUEUE, EnqueueOptions, InactiveState, Job, JobFilter, JobList, JobState, MAX_NAME,
    NewJob, Outcome, RetryOptions, Settle, Settled, check_name_length, default_backoff,
};
pub use lease::{Lease, LeaseOptions, LeasedJob, MAX_LEASED_CLAIM, MIN_LEASE, Rejection};
pub use limits::{Limit, LimitScope, MAX_RATE_COUNT, Rate};
pub use model::{
    AppliedMigration, ClaimSpec, Command, HistoryPoint, LockInfo, MinutePoint, QueueDue, QueueInfo,
    QueueThroughput, RepairOptions, RepairReport, Stats, TaskDefaults, WorkerInfo,
};
pub use queue::{
    ConnectOptions, DEFAULT_DATABASE_URL, Queue, WAIT_POLL_POSTGRES, WAIT_POLL_SQLITE, parse_args,
};
pub use schedule::{
    CatchUp, Clock, FiredTick, MAX_SCHEDULE_NAME, MISSED_AFTER, ManualClock, Schedule,
    ScheduleInfo, ScheduleSpec, SchedulerPass, SystemClock,
};
pub use spec::{DurationSpec, JobSpec, UniqueBy};
pub use store::{BackendKind, Pool, Store};
pub use task::{
    DynTask, JobContext, Registry, Task, TaskError, TaskOptions, TaskRegistration, TaskResult,
};
pub use unique::{Enqueued, MAX_UNIQUE_KEY, OnConflict, Unique, UniqueKey, UniqueScope};
pub use url::mask_password;
pub use worker::{
    DrainOptions, DrainReport, FetchAhead, ForegroundRun, Worker, WorkerControl, WorkerOptions,
    WorkerSummary, drain_jobs, perform_jobs,
};

pub use workload::{
    DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_WORKLOAD_CONCURRENCY, DEFAULT_WORKLOAD_LEASE,
    DEFAULT_WORKLOAD_TIMEOUT, HeaderTemplate, MAX_WORKLOAD_CONCURRENCY, MAX_WORKLOAD_TIMEOUT,
    MIN_WORKLOAD_TOKEN_CHARS, StoredWorkload, WORKLOAD_TOKEN_HEADER, WorkloadMode, WorkloadSpec,
};

/// Re-exported for [`register_task!`].
#[doc(hidden)]
pub use inventory;

/// Re-exported so that task crates need no direct dependency on `async-trait`.
pub use async_trait::async_trait;

/// The sqlx that underling is built with (0.9): use its transaction and connection types with
/// [`Queue::enqueue_in`], so that the application and the queue agree on one sqlx.
pub use sqlx;
