//! The command line, as clap types. Names and flags here are a contract that scripts rely on.
//!
//! Long because every flag of every command is declared here, with the help text people read;
//! the commands themselves live in `commands/`.

use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use underling::{InactiveState, JobState};

/// Manage underling job queues: enqueue, inspect, retry, remove and purge jobs, and see
/// queues, workers, locks and statistics.
#[derive(Debug, Parser)]
#[command(
    name = "underling",
    version,
    after_help = "Exit codes: 0 success, 1 runtime error (one `error: …` line on stderr), 2 usage error.\n\
                  Set UNDERLING_LOG=debug (a tracing filter; RUST_LOG if unset) to log to stderr."
)]
pub struct Cli {
    /// Database URL: postgres://user@host/db, sqlite://path or sqlite::memory:.
    #[arg(
        long,
        global = true,
        display_order = 900,
        value_name = "URL",
        env = "UNDERLING_DATABASE_URL",
        hide_env_values = true,
        default_value = underling::DEFAULT_DATABASE_URL
    )]
    pub database: String,

    /// PostgreSQL schema that holds the underling tables.
    #[arg(
        long,
        global = true,
        display_order = 901,
        value_name = "NAME",
        env = "UNDERLING_SCHEMA",
        hide_env_values = true
    )]
    pub schema: Option<String>,

    /// The database URL leads to PgBouncer in transaction mode: every call is one transaction,
    /// nothing LISTENs (`job wait` polls), and `migrate` is refused (run it against
    /// PostgreSQL directly). See the README's "PgBouncer".
    #[arg(
        long,
        global = true,
        display_order = 901,
        env = "UNDERLING_PGBOUNCER",
        value_parser = clap::builder::FalseyValueParser::new()
    )]
    pub pgbouncer: bool,

    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true, display_order = 902)]
    pub json: bool,

    /// How many database connections the command keeps open at most (on PostgreSQL at
    /// least 2; `job wait` also opens one to LISTEN). `bench` sizes its own pools.
    #[arg(
        long,
        global = true,
        display_order = 903,
        value_name = "N",
        env = "UNDERLING_POOL_SIZE",
        default_value_t = 2,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub pool_size: u32,

    /// How to write log lines (on stderr, when UNDERLING_LOG or RUST_LOG asks for them).
    #[arg(
        long,
        global = true,
        display_order = 904,
        value_name = "FORMAT",
        value_enum,
        default_value_t = underling_log::LogFormat::Text
    )]
    pub log_format: underling_log::LogFormat,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply pending migrations and say which were applied.
    Migrate,
    /// Enqueue, list, show, retry, remove and purge jobs.
    #[command(subcommand)]
    Job(JobCommand),
    /// List, pause and resume queues.
    #[command(subcommand)]
    Queue(QueueCommand),
    /// List and show workers, and send them remote commands.
    #[command(subcommand)]
    Worker(WorkerCommand),
    /// List and release named locks.
    #[command(subcommand)]
    Lock(LockCommand),
    /// Set, list and remove exact concurrency and rate limits (per queue, task or key),
    /// enforced inside every claim across all workers.
    #[command(subcommand)]
    Limit(LimitCommand),
    /// List the tasks' enqueue defaults, as workers published them.
    #[command(subcommand)]
    Task(TaskCommand),
    /// Add, list, show, pause, resume, remove and run schedules (cron): jobs enqueued at the
    /// ticks of a cron expression by the workers' schedulers, each tick once.
    #[command(subcommand)]
    Schedule(ScheduleCommand),
    /// Add, list, show and remove the HTTP workloads stored in the database (tasks whose jobs
    /// workers POST to a URL as CloudEvents).
    #[command(subcommand)]
    Workload(WorkloadCommand),
    /// Show job, worker and lock counts.
    Stats,
    /// Show finished and failed jobs, and failed attempts (retried or not), per hour over the
    /// last 24 hours.
    History,
    /// Rescue the jobs of missing workers, remove old finished and expired jobs, and fail
    /// stuck ones: what every worker does every few minutes, now.
    Repair(RepairArgs),
    /// Measure enqueue, processing and latency against the raw-SQL ceiling of the same server.
    Bench(BenchArgs),
    /// The audit log: every transition of every job with its record, kept past removal
    /// (off until enabled; costs processing throughput while on).
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Follow job events live (one JSON line per transition, from any process) until
    /// interrupted or --count events were printed.
    Events(EventsArgs),
    /// Serve the HTTP JSON API (everything these commands do, under /api/v1) until Ctrl-C or
    /// SIGTERM.
    #[command(
        after_help = "Routes: /api/v1/openapi.json lists them all; /healthz and /readyz are the probes.\n\
                      A token is read from --token-file (its first line) or UNDERLING_TOKEN, the \
                      read-only one from --read-only-token-file or UNDERLING_READ_ONLY_TOKEN. \
                      Requests log at info level (UNDERLING_LOG sets the filter)."
    )]
    Serve(ServeArgs),
}

/// `underling audit …`
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Start writing every transition to the audit log.
    Enable,
    /// Stop writing to the audit log (its entries stay).
    Disable,
    /// Say whether the audit log is on.
    Status,
    /// List audit entries, newest first.
    List {
        /// Only the entries of this job.
        #[arg(allow_negative_numbers = true, long, value_name = "ID")]
        job: Option<i64>,
        /// Only entries older than this entry id (the last id of the previous page).
        #[arg(allow_negative_numbers = true, long, value_name = "ENTRY")]
        before: Option<i64>,
        /// At most this many entries.
        #[arg(allow_negative_numbers = true, long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=10_000))]
        limit: u64,
    },
    /// Remove audit entries older than an age.
    Prune {
        /// Remove entries older than this (e.g. 30d).
        #[arg(allow_hyphen_values = true, long, value_name = "DURATION", value_parser = parse_duration)]
        older_than: Duration,
    },
}

/// `underling events`
#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Only events of jobs in these queues.
    #[arg(long = "queue", value_name = "NAME")]
    pub queues: Vec<String>,
    /// Only events of jobs of these tasks.
    #[arg(long = "task", value_name = "NAME")]
    pub tasks: Vec<String>,
    /// Only these events (enqueued, started, noted, finished, failed, retried, rescued,
    /// removed).
    #[arg(long = "event", value_name = "EVENT")]
    pub events: Vec<String>,
    /// Exit after printing this many events.
    #[arg(allow_negative_numbers = true, long, value_name = "N")]
    pub count: Option<u64>,
}

/// `underling serve`
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Where to listen. An address other than loopback needs a token.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8474")]
    pub listen: std::net::SocketAddr,
    /// A file whose first line is the token that every request (but /healthz and /readyz)
    /// must bear as `Authorization: Bearer TOKEN` (default: UNDERLING_TOKEN, if set).
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<std::path::PathBuf>,
    /// A file whose first line is a token that may only read (GET) (default:
    /// UNDERLING_READ_ONLY_TOKEN, if set).
    #[arg(long, value_name = "FILE")]
    pub read_only_token_file: Option<std::path::PathBuf>,
    /// A file whose first line is a token for HTTP workloads: it may only enqueue (POST
    /// /api/v1/jobs, /api/v1/jobs/batch) and ack, reject or extend leased jobs (default:
    /// UNDERLING_WORKLOAD_TOKEN, if set).
    #[arg(long, value_name = "FILE")]
    pub workload_token_file: Option<std::path::PathBuf>,
    /// Allow browsers on this origin to call the API (repeatable; `*` for any). CORS is off
    /// without it.
    #[arg(long = "cors-origin", value_name = "ORIGIN")]
    pub cors_origins: Vec<String>,
    /// The largest request body accepted, in bytes.
    #[arg(allow_negative_numbers = true, long, value_name = "BYTES", default_value_t = 10 * 1024 * 1024, value_parser = clap::value_parser!(u64).range(1..))]
    pub body_limit: u64,
    /// How long a request may take (long polls of `/jobs/{id}/wait` may take up to 5m).
    #[arg(allow_hyphen_values = true, long, value_name = "DURATION", value_parser = parse_duration, default_value = "30s")]
    pub request_timeout: Duration,
    /// Subscribe to job events for the life of the server, so that the event-based metrics
    /// (counters, duration and wait histograms) count everything. By default the server
    /// subscribes only while event streams are connected (and 30 s more): events cost the
    /// queue processing throughput (see the README).
    #[arg(long)]
    pub events_always: bool,
}

/// `underling repair`
#[derive(Debug, Args)]
pub struct RepairArgs {
    /// A worker whose last heartbeat is older than this is gone, and its jobs are rescued
    /// (default 6s): give the workers' own `--missing-after`.
    #[arg(allow_hyphen_values = true, long, value_name = "DURATION", value_parser = parse_duration)]
    pub missing_after: Option<Duration>,
    /// Remove finished jobs that ended longer ago than this (default 2d).
    #[arg(allow_hyphen_values = true, long, value_name = "DURATION", value_parser = parse_duration)]
    pub remove_after: Option<Duration>,
    /// Fail inactive jobs that have been due longer than this as stuck (default 2d).
    #[arg(allow_hyphen_values = true, long, value_name = "DURATION", value_parser = parse_duration)]
    pub stuck_after: Option<Duration>,
    /// How many old or expired jobs one statement removes.
    #[arg(allow_negative_numbers = true, long, value_name = "N", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    pub batch: u64,
    /// Fail active jobs that have run longer than their timeout plus this, even on a live
    /// worker (default 30s).
    #[arg(allow_hyphen_values = true, long, value_name = "DURATION", value_parser = parse_duration)]
    pub timeout_grace: Option<Duration>,
}

/// `underling bench`
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Small sizes: the whole run takes well under a minute (a smoke test).
    #[arg(long)]
    pub quick: bool,
    /// Measure at scale instead (PostgreSQL): build a big store (10 M finished jobs, 1 M
    /// waiting in 100 other queues, 1 M delayed; a hundredth of that with --quick) and print
    /// each figure beside the same figure on an empty store, measured in the same run.
    #[arg(long)]
    pub scale: bool,
    /// Run everything this many times and report the median of each figure.
    #[arg(allow_negative_numbers = true, long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=9))]
    pub runs: u32,
    /// Skip the SQLite figures (with a PostgreSQL --database they are measured too).
    #[arg(long)]
    pub no_sqlite: bool,
    /// The underling-worker binary for the multi-process figure (default: the one beside this
    /// binary).
    #[arg(long, value_name = "PATH")]
    pub worker_binary: Option<std::path::PathBuf>,
}

/// `underling job …`
#[derive(Debug, Subcommand)]
pub enum JobCommand {
    /// Enqueue a job and print its id.
    Enqueue(EnqueueArgs),
    /// Enqueue many jobs from a JSON Lines file and print their ids, one per line.
    #[command(
        after_help = "Each line is a JSON object with the fields of `job enqueue`'s flags: \
                      {\"task\": \"mail.send\", \"args\": {…}, \"queue\": \"mail\", \"priority\": 5, \
                      \"attempts\": 3, \"delay\": \"5m\", \"run_at\": \"2026-12-24T18:00:00Z\", \
                      \"parents\": [1, 2], \"lax\": true, \"expire\": \"1h\", \"notes\": {…}, \
                      \"unique_key\": \"k\", \"unique_by\": \"args\", \"unique_scope\": \"period\", \
                      \"unique_for\": \"1h\", \"on_conflict\": \"replace\", \"timeout\": \"30s\"}; only \
                      `task` is required, blank lines are skipped. Every line is checked before \
                      anything is written: a bad line is reported with its number and nothing \
                      is enqueued. Jobs are written 1,000 per statement."
    )]
    EnqueueBatch {
        /// The file, or `-` for standard input.
        file: String,
    },
    /// List jobs, newest first.
    List(ListArgs),
    /// Show every field of one job.
    Show {
        /// The job id.
        #[arg(allow_negative_numbers = true)]
        id: i64,
    },
    /// Wait for a job to finish or fail for good, and show it like `job show`. Exits 0 when it
    /// finished, 1 when it failed or the time ran out (saying which on stderr).
    Wait {
        /// The job id.
        #[arg(allow_negative_numbers = true)]
        id: i64,
        /// How long to wait at most (90s, 5m, 2h, 1d).
        #[arg(allow_hyphen_values = true, long, value_name = "DURATION", value_parser = parse_duration, default_value = "30s")]
        timeout: Duration,
    },
    /// Retry jobs by id, or every job in the given states (`--state failed`).
    Retry(RetryArgs),
    /// Remove jobs that are not active.
    Remove {
        /// The job ids.
        #[arg(allow_negative_numbers = true, required = true, value_name = "ID")]
        ids: Vec<i64>,
    },
    /// Remove matching jobs in bounded batches (finished and failed ones by default).
    Purge(PurgeArgs),
    /// Stop a running job: its task is told to stop and has its stop grace to return.
    Stop {
        /// The job id.
        #[arg(allow_negative_numbers = true)]
        id: i64,
    },
    /// Kill a running job: its task is dropped at once.
    Kill {
        /// The job id.
        #[arg(allow_negative_numbers = true)]
        id: i64,
    },
}

/// `underling job enqueue`
#[derive(Debug, Args)]
pub struct EnqueueArgs {
    /// The task name.
    pub task: String,
    /// Job arguments as JSON (default `{}`); `@FILE` reads a file, `-` standard input.
    #[arg(long, value_name = "JSON")]
    pub args: Option<String>,
    /// The queue (default: the task's, as its workers published it, else `default`).
    #[arg(long, value_name = "Q")]
    pub queue: Option<String>,
    /// Priority; higher runs first (default: the task's, else 0).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub priority: Option<i32>,
    /// Run no earlier than this long from now (90s, 5m, 2h, 1d).
    #[arg(allow_hyphen_values = true, long, value_name = "DURATION", value_parser = parse_duration)]
    pub delay: Option<Duration>,
    /// Run no earlier than this time (RFC 3339, e.g. 2026-12-24T18:00:00Z).
    #[arg(long, value_name = "TIME", value_parser = parse_time, conflicts_with = "delay")]
    pub run_at: Option<chrono::DateTime<chrono::Utc>>,
    /// How many times the job may be tried in all (default: the task's, else 1).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub attempts: Option<i32>,
    /// A job that must finish first (repeatable).
    #[arg(allow_negative_numbers = true, long = "parent", value_name = "ID")]
    pub parents: Vec<i64>,
    /// Also run when a parent failed.
    #[arg(long)]
    pub lax: bool,
    /// Remove the job if it has not started this long after it was enqueued.
    #[arg(allow_hyphen_values = true, long, value_name = "DURATION", value_parser = parse_duration)]
    pub expire: Option<Duration>,
    /// Initial notes, a JSON object; `@FILE` reads a file, `-` standard input.
    #[arg(long, value_name = "JSON")]
    pub notes: Option<String>,
    /// A unique key: while a live job holds it, print that job's id instead of enqueueing
    /// (saying so on stderr).
    #[arg(long, value_name = "KEY", conflicts_with = "unique_by")]
    pub unique_key: Option<String>,
    /// A unique key derived from the task and the arguments (`args`), or from those and the
    /// queue (`args-and-queue`).
    #[arg(long, value_name = "FROM", value_parser = parse_unique_by)]
    pub unique_by: Option<underling::UniqueBy>,
    /// How long a job holds its unique key: inactive, active (default: while inactive or
    /// active) or period (for --unique-for after its enqueue).
    #[arg(long, value_name = "SCOPE", value_parser = ["inactive", "active", "period"])]
    pub unique_scope: Option<String>,
    /// The period of the `period` scope (90s, 5m, 2h, 1d); alone, it means that scope.
    #[arg(allow_hyphen_values = true, long, value_name = "DURATION", value_parser = parse_duration)]
    pub unique_for: Option<Duration>,
    /// When a live job holds the unique key: existing (print its id; the default), replace
    /// (give it these args, priority and delay while it is inactive) or error.
    #[arg(long, value_name = "POLICY", value_parser = parse_on_conflict)]
    pub on_conflict: Option<underling::OnConflict>,
    /// Stop and fail the job when it runs longer than this (overrides the task's timeout).
    #[arg(allow_hyphen_values = true, long, value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: Option<Duration>,
}

/// Parses `--unique-by`.
fn parse_unique_by(text: &str) -> Result<underling::UniqueBy, String> {
    match text {
        "args" => Ok(underling::UniqueBy::Args),
        "args-and-queue" => Ok(underling::UniqueBy::ArgsAndQueue),
        other => Err(format!("{other:?}: expected args or args-and-queue")),
    }
}

/// Parses `--on-conflict`.
fn parse_on_conflict(text: &str) -> Result<underling::OnConflict, String> {
    text.parse().map_err(|e: underling::Error| e.to_string())
}

/// `underling job list`
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only jobs in this state (repeatable, any case): inactive, active, finished, failed, or
    /// one of the inactive jobs' states: scheduled (due later, never tried), retryable (due
    /// later, tried before), waiting (for a parent that has not finished).
    #[arg(long = "state", value_name = "S", value_parser = parse_list_state)]
    pub states: Vec<ListState>,
    /// Only jobs in this queue (repeatable).
    #[arg(long = "queue", value_name = "Q")]
    pub queues: Vec<String>,
    /// Only jobs of this task (repeatable).
    #[arg(long = "task", value_name = "T")]
    pub tasks: Vec<String>,
    /// Only jobs whose notes have this key (repeatable).
    #[arg(long = "note", value_name = "KEY")]
    pub notes: Vec<String>,
    /// How many jobs to show.
    #[arg(
        allow_negative_numbers = true,
        long,
        value_name = "N",
        default_value_t = 20
    )]
    pub limit: u64,
    /// How many jobs to skip.
    #[arg(
        allow_negative_numbers = true,
        long,
        value_name = "N",
        default_value_t = 0
    )]
    pub offset: u64,
    /// Only jobs with ids below this one: the next page starts below the last id shown
    /// (stays put while jobs are enqueued, and costs no more when deep, unlike --offset).
    #[arg(
        allow_negative_numbers = true,
        long,
        value_name = "ID",
        conflicts_with = "offset"
    )]
    pub before: Option<i64>,
}

/// `underling job retry`
#[derive(Debug, Args)]
pub struct RetryArgs {
    /// The jobs to retry.
    #[arg(
        allow_negative_numbers = true,
        value_name = "ID",
        required_unless_present = "states"
    )]
    pub ids: Vec<i64>,
    /// Retry every job in this state instead (repeatable), e.g. `--state failed`.
    #[arg(long = "state", value_name = "S", value_parser = parse_state, conflicts_with = "ids")]
    pub states: Vec<JobState>,
    /// With ids: move the jobs to this queue. With `--state`: only jobs in this queue.
    #[arg(long, value_name = "Q")]
    pub queue: Option<String>,
    /// With `--state`: only jobs of this task.
    #[arg(long, value_name = "T", requires = "states", conflicts_with = "ids")]
    pub task: Option<String>,
    /// New priority.
    #[arg(
        long,
        value_name = "N",
        allow_negative_numbers = true,
        conflicts_with = "states"
    )]
    pub priority: Option<i32>,
    /// Run no earlier than this long from now (90s, 5m, 2h, 1d).
    #[arg(allow_hyphen_values = true, long, value_name = "DURATION", value_parser = parse_duration, conflicts_with = "states")]
    pub delay: Option<Duration>,
    /// New maximum number of tries.
    #[arg(
        long,
        value_name = "N",
        allow_negative_numbers = true,
        conflicts_with = "states"
    )]
    pub attempts: Option<i32>,
}

/// `underling job purge`
#[derive(Debug, Args)]
pub struct PurgeArgs {
    /// Only jobs in this state (repeatable; default finished and failed).
    #[arg(long = "state", value_name = "S", value_parser = parse_state)]
    pub states: Vec<JobState>,
    /// Only jobs in this queue.
    #[arg(long, value_name = "Q")]
    pub queue: Option<String>,
    /// Only jobs of this task.
    #[arg(long, value_name = "T")]
    pub task: Option<String>,
    /// Only jobs that ended longer ago than this (90s, 5m, 2h, 1d).
    #[arg(allow_hyphen_values = true, long, value_name = "DURATION", value_parser = parse_duration)]
    pub older_than: Option<Duration>,
    /// Allow purging inactive and active jobs.
    #[arg(long)]
    pub force: bool,
    /// How many jobs one statement removes: each batch is its own short statement, so claims
    /// are never stalled for long.
    #[arg(allow_negative_numbers = true, long, value_name = "N", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    pub batch: u64,
}

/// `underling task …`
#[derive(Debug, Subcommand)]
pub enum TaskCommand {
    /// List every task a worker published, with the queue, priority, attempts and timeout its
    /// jobs get when the enqueue leaves them unset.
    List,
}

/// `underling workload …`
#[derive(Debug, Subcommand)]
pub enum WorkloadCommand {
    /// Store a workload; workers that start afterwards run its jobs (unless started with
    /// `--stored-workloads false`).
    Add(WorkloadAddArgs),
    /// List the stored workloads.
    List,
    /// Show one stored workload.
    Show {
        /// The workload's name (its task).
        name: String,
    },
    /// Remove a stored workload and revoke its token (its jobs stay; running workers keep it
    /// until they restart).
    Remove {
        /// The workload's name (its task).
        name: String,
    },
    /// Set the token scoped to a workload (stored, or in a workers' TOML file), replacing
    /// its old one: `serve` accepts it only for POST /api/v1/jobs and ack, reject or extend
    /// of that workload's jobs. Only its SHA-256 is stored.
    Token {
        /// The workload's name (its task).
        name: String,
        /// Take the token from this environment variable (the one the workload's
        /// `token_env` names); without it a new random token is made and printed once.
        #[arg(long, value_name = "VAR")]
        token_env: Option<String>,
        /// Revoke the workload's token instead.
        #[arg(long, conflicts_with = "token_env")]
        revoke: bool,
    },
}

/// `underling workload add …`
#[derive(Debug, clap::Args)]
pub struct WorkloadAddArgs {
    /// The task name its jobs are enqueued under.
    pub name: String,
    /// Where jobs are POSTed (http:// or https://).
    pub url: String,
    /// `sync` (the answer is the outcome) or `async` (202 now, ack or reject later).
    #[arg(long, default_value = "sync", value_parser = clap::builder::NonEmptyStringValueParser::new())]
    pub mode: String,
    /// How long the workload has to answer.
    #[arg(allow_hyphen_values = true, long, value_name = "DURATION", value_parser = parse_duration, default_value = "30s")]
    pub timeout: Duration,
    /// How many requests one worker sends to it at once.
    #[arg(allow_negative_numbers = true, long, value_name = "N", default_value_t = underling::DEFAULT_WORKLOAD_CONCURRENCY)]
    pub max_concurrency: usize,
    /// Async only: how long the workload has to ack, reject or extend a job it took
    /// [default: 5m].
    #[arg(allow_hyphen_values = true, long, value_name = "DURATION", value_parser = parse_duration)]
    pub lease: Option<Duration>,
    /// A request header, `Name: value` (repeatable). Name secrets by environment variable of
    /// the workers, `${VAR}` or `env:VAR` (quote it from the shell): they are read by each
    /// worker when it starts, and the database keeps only the name.
    #[arg(long = "header", value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
    /// The largest response body read.
    #[arg(allow_negative_numbers = true, long, value_name = "BYTES", default_value_t = underling::DEFAULT_MAX_RESPONSE_BYTES)]
    pub max_response_bytes: u64,
    /// https:// only: a PEM file of certificate authorities to trust for this workload, on
    /// top of the system's (a private CA, or a self-signed certificate). The path is read by
    /// each worker when it starts.
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<std::path::PathBuf>,
    /// The workers' environment variable that holds this workload's scoped token (set it
    /// with `underling workload token NAME --token-env VAR`): each worker reads it when it
    /// starts and sends it with every job in the `Underling-Token` header, so that the
    /// workload can ack, reject or extend its jobs and enqueue follow-ups. The database
    /// keeps only the variable's name.
    #[arg(long, value_name = "VAR")]
    pub token_env: Option<String>,
    /// Replace a stored workload of the same name.
    #[arg(long)]
    pub replace: bool,
}

/// `underling queue …`
#[derive(Debug, Subcommand)]
pub enum QueueCommand {
    /// List queues with their job counts.
    List,
    /// Pause a queue: its jobs are not claimed until it is resumed.
    Pause {
        /// The queue name.
        queue: String,
    },
    /// Resume a paused queue.
    Resume {
        /// The queue name.
        queue: String,
    },
    /// Turn strict FIFO order on or off: one job at a time, in claim order.
    #[command(after_help = "Examples:\n  \
        underling queue fifo ledger on\n  \
        underling queue fifo ledger off\n\
        A FIFO queue runs one job at a time across all workers, in claim order (priority, \
        then id: with one priority, id order); the next starts only after the previous one \
        settled for good. A job that failed with attempts left holds the line until it \
        finished or failed for good.")]
    Fifo {
        /// The queue name.
        queue: String,
        /// `on` or `off`.
        #[arg(value_enum)]
        state: Switch,
    },
}

/// `on` or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Switch {
    /// Turn it on.
    On,
    /// Turn it off.
    Off,
}

/// `underling limit …`
#[derive(Debug, Subcommand)]
pub enum LimitCommand {
    /// Set a limit (replacing the one of the same scope): a concurrency, a rate or both.
    #[command(after_help = "Examples:\n  \
        underling limit set --queue mail --concurrency 3\n  \
        underling limit set --task image.resize --rate 100/1m\n  \
        underling limit set --key-from args.tenant --concurrency 2\n\
        A key limit makes each value of the key a group of its own (one per tenant); jobs \
        without the key are not limited by it.")]
    Set {
        /// Which jobs it counts.
        #[command(flatten)]
        scope: LimitScopeArgs,
        /// At most this many jobs of the group active at once.
        #[arg(allow_negative_numbers = true, long, value_name = "N")]
        concurrency: Option<u32>,
        /// At most COUNT starts of the group in any window of PERIOD (100/1m, 5/s, 1000/1h).
        #[arg(long, value_name = "COUNT/PERIOD", value_parser = parse_rate)]
        rate: Option<underling::Rate>,
    },
    /// List the limits.
    List,
    /// Remove a limit.
    Remove {
        /// Which limit.
        #[command(flatten)]
        scope: LimitScopeArgs,
    },
}

/// The scope of a limit: exactly one of `--queue`, `--task`, `--key-from`.
#[derive(Debug, Clone, clap::Args)]
#[group(required = true, multiple = false)]
pub struct LimitScopeArgs {
    /// The jobs of this queue.
    #[arg(long)]
    pub queue: Option<String>,
    /// The jobs of this task, in any queue.
    #[arg(long)]
    pub task: Option<String>,
    /// Each value of this key of the jobs' arguments or notes: args.PATH or notes.PATH
    /// (args.tenant, args.customer.id).
    #[arg(long, value_name = "args.PATH|notes.PATH")]
    pub key_from: Option<String>,
}

impl LimitScopeArgs {
    /// The scope, checked.
    pub fn scope(&self) -> Result<underling::LimitScope, underling::Error> {
        use underling::LimitScope;
        let scope = match (&self.queue, &self.task, &self.key_from) {
            (Some(q), _, _) => LimitScope::Queue(q.clone()),
            (_, Some(t), _) => LimitScope::Task(t.clone()),
            (_, _, Some(k)) => return LimitScope::key_from(k),
            // clap requires one of the three.
            _ => {
                return Err(underling::Error::InvalidLimit(
                    "give --queue, --task or --key-from".into(),
                ));
            }
        };
        scope.validate()?;
        Ok(scope)
    }
}

/// A `--rate` value.
fn parse_rate(text: &str) -> Result<underling::Rate, String> {
    text.parse::<underling::Rate>().map_err(|e| match e {
        underling::Error::InvalidLimit(why) => why,
        other => other.to_string(),
    })
}

/// `underling schedule …`
#[derive(Debug, Subcommand)]
pub enum ScheduleCommand {
    /// Add a schedule, or update the one of that name (its next run stays while the
    /// expression and time zone do, and so does a pause).
    Add(Box<ScheduleAddArgs>),
    /// List schedules with their next run times.
    List,
    /// Show one schedule and its next run times.
    Show {
        /// The schedule name.
        name: String,
        /// How many upcoming run times to show.
        #[arg(
            allow_negative_numbers = true,
            long,
            value_name = "N",
            default_value_t = 5
        )]
        next: usize,
    },
    /// Pause a schedule: it enqueues nothing until resumed.
    Pause {
        /// The schedule name.
        name: String,
    },
    /// Resume a paused schedule from its next tick (the ticks missed while paused do not run).
    Resume {
        /// The schedule name.
        name: String,
    },
    /// Remove a schedule (the jobs it enqueued stay).
    Remove {
        /// The schedule name.
        name: String,
    },
    /// Enqueue the schedule's job now, outside its ticks; print the job's id.
    RunNow {
        /// The schedule name.
        name: String,
    },
}

/// `underling schedule add`
#[derive(Debug, Args)]
pub struct ScheduleAddArgs {
    /// The schedule name (letters, digits, '.', '_', ':', '-').
    pub name: String,
    /// The cron expression: 5 fields (minute hour day-of-month month day-of-week), 6 with
    /// seconds first, or @hourly, @daily, @weekly, @monthly, @yearly. Quote it.
    pub cron: String,
    /// The task its jobs run.
    pub task: String,
    /// The IANA time zone the expression is read in (e.g. Europe/Berlin).
    #[arg(long, value_name = "TZ", default_value = "UTC")]
    pub timezone: String,
    /// Job arguments as JSON (default `{}`); `@FILE` reads a file, `-` standard input.
    #[arg(long, value_name = "JSON")]
    pub args: Option<String>,
    /// The jobs' queue (default: the task's, as its workers published it, else `default`).
    #[arg(long, value_name = "Q")]
    pub queue: Option<String>,
    /// The jobs' priority; higher runs first (default: the task's, else 0).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub priority: Option<i32>,
    /// How many times each job may be tried in all (default: the task's, else 1).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub attempts: Option<i32>,
    /// Remove a job if it has not started this long after its tick.
    #[arg(allow_hyphen_values = true, long, value_name = "DURATION", value_parser = parse_duration)]
    pub expire: Option<Duration>,
    /// Stop and fail a job when it runs longer than this (overrides the task's timeout).
    #[arg(allow_hyphen_values = true, long, value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: Option<Duration>,
    /// The jobs' initial notes, a JSON object; `@FILE` reads a file, `-` standard input.
    #[arg(long, value_name = "JSON")]
    pub notes: Option<String>,
    /// A unique key of the jobs' own (e.g. to enqueue nothing while the last job lives);
    /// without it, each tick's job gets the key schedule:NAME:TICK.
    #[arg(long, value_name = "KEY", conflicts_with = "unique_by")]
    pub unique_key: Option<String>,
    /// A unique key derived from the task and the arguments (`args`), or from those and the
    /// queue (`args-and-queue`).
    #[arg(long, value_name = "FROM", value_parser = parse_unique_by)]
    pub unique_by: Option<underling::UniqueBy>,
    /// How long a job holds its unique key: inactive, active or period.
    #[arg(long, value_name = "SCOPE", value_parser = ["inactive", "active", "period"])]
    pub unique_scope: Option<String>,
    /// The period of the `period` scope (90s, 5m, 2h, 1d).
    #[arg(allow_hyphen_values = true, long, value_name = "DURATION", value_parser = parse_duration)]
    pub unique_for: Option<Duration>,
    /// When a live job holds the unique key: existing (enqueue nothing; the default) or
    /// replace.
    #[arg(long, value_name = "POLICY", value_parser = parse_on_conflict)]
    pub on_conflict: Option<underling::OnConflict>,
    /// Ticks missed while no scheduler ran: last (run the last one once; the default) or skip.
    #[arg(long, value_name = "POLICY", value_parser = parse_catch_up, default_value = "last")]
    pub catch_up: underling::CatchUp,
    /// Add the schedule paused.
    #[arg(long)]
    pub paused: bool,
}

/// Parses `--catch-up`.
fn parse_catch_up(text: &str) -> Result<underling::CatchUp, String> {
    text.parse().map_err(|e: underling::Error| e.to_string())
}

/// `underling worker …`
#[derive(Debug, Subcommand)]
pub enum WorkerCommand {
    /// List registered workers.
    List,
    /// Show one worker.
    Show {
        /// The worker id.
        #[arg(allow_negative_numbers = true)]
        id: i64,
    },
    /// Send a remote command to workers (all when no id is given).
    #[command(
        after_help = "Commands: stop --args '[JOB]' (a running job stops, with its stop grace), \
                            kill --args '[JOB]' (at once), jobs --args '[N]' (run N jobs at once), \
                            pause, resume (back to the last jobs N). `underling job stop ID` finds \
                            the worker of a job itself."
    )]
    Command {
        /// The command: stop, kill, jobs, pause or resume.
        name: String,
        /// Command arguments as JSON (default `[]`), e.g. `[42]` for stop and kill, `[4]` for jobs.
        #[arg(long, value_name = "JSON")]
        args: Option<String>,
        /// The workers to send it to.
        #[arg(allow_negative_numbers = true, value_name = "ID")]
        ids: Vec<i64>,
    },
}

/// `underling lock …`
#[derive(Debug, Subcommand)]
pub enum LockCommand {
    /// List live lock holds (all, or those of the names given).
    List {
        /// Lock names.
        #[arg(value_name = "NAME")]
        names: Vec<String>,
    },
    /// Release the hold on a lock that expires first.
    Release {
        /// The lock name.
        name: String,
    },
    /// Take a hold on a named lock, unless `--limit` holds are live; exits 1 when it is taken.
    Acquire {
        /// The lock name.
        name: String,
        /// How long the hold lasts (90s, 5m, 2h, 1d).
        #[arg(allow_hyphen_values = true, long, value_name = "DURATION", value_parser = parse_duration)]
        duration: Duration,
        /// How many holds may be live at once.
        #[arg(allow_negative_numbers = true, long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
        limit: u32,
    },
}

/// Parses an RFC 3339 time.
pub fn parse_time(text: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|e| format!("{e}: give an RFC 3339 time such as 2026-12-24T18:00:00Z"))
}

/// A state `job list` filters on: a stored one, or a derived state of inactive jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListState {
    /// inactive, active, finished, failed.
    Stored(JobState),
    /// scheduled, retryable, waiting.
    Inactive(InactiveState),
}

/// Parses a stored or derived state, in any case.
fn parse_list_state(text: &str) -> Result<ListState, String> {
    if let Ok(state) = text.parse::<JobState>() {
        return Ok(ListState::Stored(state));
    }
    text.parse::<InactiveState>()
        .map(ListState::Inactive)
        .map_err(|_| {
            let names: Vec<&str> = JobState::ALL
                .iter()
                .map(|s| s.as_str())
                .chain(InactiveState::ALL.iter().map(|s| s.as_str()))
                .collect();
            format!(
                "unknown job state {text:?}: expected one of {}",
                names.join(", ")
            )
        })
}

/// Parses a job state with the library's message, which lists the valid ones.
fn parse_state(text: &str) -> Result<JobState, String> {
    text.parse::<JobState>().map_err(|e| e.to_string())
}

/// The longest duration accepted: it keeps every computed time within what both databases
/// (and RFC 3339) can store.
const MAX_DURATION: Duration = Duration::from_secs(1000 * 31_557_600);

/// Parses a duration such as `90s`, `5m`, `2h`, `1d` or `1h 30m`, up to 1000 years.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    if text
        .trim()
        .strip_prefix('-')
        .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
    {
        return Err("a duration cannot be negative; give one like 90s, 5m, 2h or 1d".to_string());
    }
    let duration = humantime::parse_duration(text.trim())
        .map_err(|e| format!("{e}; expected a number and a unit, like 90s, 5m, 2h or 1d"))?;
    if duration > MAX_DURATION {
        return Err("durations longer than 1000 years are not supported".to_string());
    }
    Ok(duration)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn durations_take_seconds_minutes_hours_and_days() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86_400)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("1000y").is_ok());
        assert!(parse_duration("1001y").is_err());
    }
}
