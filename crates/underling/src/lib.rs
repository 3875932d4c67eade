//! # underling
//!
//! A PostgreSQL-backed, distributed job queue with named tasks, in the spirit of Perl's Minion,
//! with the same API on SQLite (a file, or in memory for tests).
//!
//! - [`Queue`] enqueues and manages jobs, workers, locks and queues.
//! - [`Backend`] is the storage contract, implemented for PostgreSQL and SQLite.
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

pub mod backend;
mod error;
mod job;
mod model;
mod queue;
pub mod task;
mod url;
pub mod worker;

pub use backend::{Backend, BackendKind};
pub use error::{Error, Result};
pub use job::{
    DEFAULT_QUEUE, EnqueueOptions, Job, JobFilter, JobList, JobState, NewJob, Outcome,
    RetryOptions, Settle, Settled, default_backoff,
};
pub use model::{
    AppliedMigration, ClaimSpec, Command, HistoryPoint, LockInfo, QueueInfo, RepairOptions,
    RepairReport, Stats, WorkerInfo,
};
pub use queue::{ConnectOptions, DEFAULT_DATABASE_URL, Queue, parse_args};
pub use task::{
    DynTask, JobContext, Registry, Task, TaskError, TaskOptions, TaskRegistration, TaskResult,
};
pub use url::mask_password;
pub use worker::{
    ForegroundRun, Worker, WorkerControl, WorkerOptions, WorkerSummary, perform_jobs,
};

/// Re-exported for [`register_task!`].
#[doc(hidden)]
pub use inventory;

/// Re-exported so that task crates need no direct dependency on `async-trait`.
pub use async_trait::async_trait;
