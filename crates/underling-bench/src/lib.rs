//! The benchmark behind `underling bench`: underling's enqueue, processing and latency figures
//! next to the raw-SQL ceiling of the same server, measured in the same run.
//!
//! It works in a throw-away PostgreSQL schema (or a temporary SQLite file) and removes it at
//! the end.
//!
//! Long because the figures of the enqueue, process, unique and observed groups share the
//! recorder and the reset between them; the raw ceilings, SQLite, scale and HTTP groups are in
//! their own modules.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use underling::{
    ConnectOptions, EnqueueOptions, JobContext, JobFilter, JobState, NewJob, Pool, Queue, Registry,
    Task, TaskResult, Worker, WorkerOptions,
};

mod error;
mod http;
mod postgres;
mod raw;
mod scale;
mod sqlite;
mod workload;

pub use error::{BenchError, Result};
pub use scale::fill_big_store;

/// The task the benchmark runs. Worker processes know it as the built-in `underling.noop`.
const NOOP: &str = "underling.noop";
/// The queue the benchmark uses.
const BENCH_QUEUE: &str = "bench";

/// What to measure.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// The PostgreSQL server (a fresh schema is used), or `None` to skip PostgreSQL.
    pub postgres_url: Option<String>,
    /// Also measure SQLite (a temporary file in WAL mode).
    pub sqlite: bool,
    /// Small sizes: the whole run takes well under a minute.
    pub quick: bool,
    /// The `underling-worker` binary for the multi-process figure; skipped when `None`.
    pub worker_binary: Option<PathBuf>,
}

/// One figure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    /// `postgres` or `sqlite`.
    pub backend: String,
    /// `raw`, `enqueue`, `process`, `observed`, `http` or `latency`.
    pub group: String,
    /// What was measured.
    pub name: String,
    /// The figure.
    pub value: f64,
    /// Its unit: `jobs/s`, `rows/s`, `events/s`, `events` or `ms`.
    pub unit: String,
    /// How many jobs or rows it covered.
    pub count: u64,
    /// The figure it is compared with, if any: a raw ceiling, or another figure of the same
    /// run (the library's own for the HTTP group, the same processing unwatched for the
    /// observed group).
    pub ceiling: Option<String>,
    /// `value / ceiling`.
    pub ratio: Option<f64>,
    /// The same figure on an empty store, measured in the same run (`bench --scale`; the
    /// ratio is then `value / baseline`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<f64>,
}

/// Sizes for one run.
struct Sizes {
    raw_batch_rows: usize,
    raw_single: usize,
    raw_single_4: usize,
    raw_claim: usize,
    enqueue_single: usize,
    enqueue_single_4: usize,
    enqueue_batch: usize,
    enqueue_tx: usize,
    process_1: usize,
    process_n: usize,
    process_procs: usize,
    latency: usize,
}

impl Sizes {
    fn new(quick: bool) -> Self {
        if quick {
            Sizes {
                raw_batch_rows: 20_000,
                raw_single: 1_000,
                raw_single_4: 2_000,
                raw_claim: 10_000,
                enqueue_single: 1_000,
                enqueue_single_4: 2_000,
                enqueue_batch: 20_000,
                enqueue_tx: 500,
                process_1: 500,
                process_n: 10_000,
                process_procs: 10_000,
                latency: 30,
            }
        } else {
            Sizes {
                raw_batch_rows: 200_000,
                raw_single: 5_000,
                raw_single_4: 10_000,
                raw_claim: 100_000,
                enqueue_single: 5_000,
                enqueue_single_4: 10_000,
                enqueue_batch: 200_000,
                enqueue_tx: 3_000,
                process_1: 3_000,
                process_n: 100_000,
                process_procs: 100_000,
                latency: 200,
            }
        }
    }
}

/// The benchmark's no-op task.
#[derive(Default)]
struct Noop;

#[underling::async_trait]
impl Task for Noop {
    type Args = Value;
    fn name(&self) -> &'static str {
        NOOP
    }
    async fn run(&self, _ctx: &JobContext, _args: Value) -> TaskResult {
        Ok(Value::Null)
    }
}

/// Collects figures and reports each as it is made.
struct Recorder<'a> {
    backend: &'static str,
    out: Vec<Measurement>,
    report: &'a (dyn Fn(&Measurement) + Sync),
}

impl Recorder<'_> {
    fn rate(
        &mut self,
        group: &str,
        name: &str,
        count: usize,
        elapsed: Duration,
        unit: &str,
    ) -> f64 {
        let value = count as f64 / elapsed.as_secs_f64().max(1e-9);
        self.push(group, name, value, unit, count as u64);
        value
    }

    fn push(&mut self, group: &str, name: &str, value: f64, unit: &str, count: u64) {
        let m = Measurement {
            backend: self.backend.to_string(),
            group: group.to_string(),
            name: name.to_string(),
            value,
            unit: unit.to_string(),
            count,
            ceiling: None,
            ratio: None,
            baseline: None,
        };
        (self.report)(&m);
        self.out.push(m);
    }

    /// Compares the last figure with another one (a raw ceiling or a figure of the same run).
    fn compare_last(&mut self, ceiling_name: &str, ceiling: f64) {
        if let Some(m) = self.out.last_mut() {
            m.ceiling = Some(ceiling_name.to_string());
            m.ratio = Some(m.value / ceiling.max(1e-9));
            (self.report)(m);
        }
    }
}

/// Runs the benchmark; `report` sees every figure as soon as it is measured (a figure is
/// reported again once its ratio is known).
pub async fn run(
    opts: &BenchOptions,
    report: &(dyn Fn(&Measurement) + Sync),
) -> Result<Vec<Measurement>> {
    let sizes = Sizes::new(opts.quick);
    let mut all = Vec::new();
    if let Some(url) = &opts.postgres_url {
        all.extend(postgres::run_postgres(url, opts, &sizes, report).await?);
    }
    if opts.sqlite {
        all.extend(sqlite::run_sqlite(opts, &sizes, report).await?);
    }
    Ok(all)
}

/// Runs `bench --scale` (PostgreSQL only): builds a big store (sizes divided by 100 with
/// `quick`) and measures each figure on an empty store and on the big one, in the same run;
/// `report` sees the big store's figures with the empty store's beside them (at the end),
/// `progress` what is being done (the whole run takes minutes at full size).
pub async fn run_scale(
    opts: &BenchOptions,
    report: &(dyn Fn(&Measurement) + Sync),
    progress: &(dyn Fn(&str) + Sync),
) -> Result<Vec<Measurement>> {
    let Some(url) = &opts.postgres_url else {
        return Err(BenchError::Usage(
            "bench --scale measures PostgreSQL only: give a postgres:// URL".into(),
        ));
    };
    scale::run_scale(url, opts.quick, report, progress).await
}

fn noop_jobs(n: usize) -> Result<Vec<NewJob>> {
    let jobs: underling::Result<Vec<NewJob>> = (0..n)
        .map(|_| NewJob::new(NOOP, Value::Null, EnqueueOptions::new().queue(BENCH_QUEUE)))
        .collect();
    Ok(jobs?)
}

/// `n` no-op jobs, each with a unique key of its own (`bench:RUN:I`, with RUN this run's
/// start in nanoseconds, so that no key of an earlier run is met).
fn unique_noop_jobs(n: usize) -> Result<Vec<NewJob>> {
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let jobs: underling::Result<Vec<NewJob>> = (0..n)
        .map(|i| {
            let opts = EnqueueOptions::new()
                .queue(BENCH_QUEUE)
                .unique(underling::Unique::key(format!("bench:{run}:{i}")));
            NewJob::new(NOOP, Value::Null, opts)
        })
        .collect();
    Ok(jobs?)
}

/// The library's own enqueue figures of a run, which the HTTP group is compared with.
struct LibraryEnqueue {
    /// One job per call, 1 caller (jobs/s).
    single_1: f64,
    /// One job per call, 4 callers (jobs/s).
    single_4: f64,
    /// Batch enqueue, 1,000 per call (jobs/s).
    batch: f64,
}

async fn enqueue_figures(
    queue: &Queue,
    sizes: &Sizes,
    rec: &mut Recorder<'_>,
    raw_single_1: f64,
    raw_single_4: f64,
    raw_batch: f64,
) -> Result<LibraryEnqueue> {
    // On a runtime task, like the raw loop it is compared with: the caller's own task may be
    // the runtime's main thread, and every reply would then cross threads.
    let start = Instant::now();
    let caller = queue.clone();
    let n = sizes.enqueue_single;
    tokio::spawn(async move {
        for _ in 0..n {
            caller
                .enqueue(NOOP, Value::Null, EnqueueOptions::new().queue(BENCH_QUEUE))
                .await?;
        }
        Ok::<(), BenchError>(())
    })
    .await??;
    let single_1 = rec.rate(
        "enqueue",
        "one job per call, 1 caller",
        sizes.enqueue_single,
        start.elapsed(),
        "jobs/s",
    );
    rec.compare_last("raw one INSERT per transaction, 1 client", raw_single_1);

    let start = Instant::now();
    let mut handles = Vec::new();
    for _ in 0..4 {
        let queue = queue.clone();
        let share = sizes.enqueue_single_4 / 4;
        handles.push(tokio::spawn(async move {
            for _ in 0..share {
                queue
                    .enqueue(NOOP, Value::Null, EnqueueOptions::new().queue(BENCH_QUEUE))
                    .await?;
            }
            Ok::<(), BenchError>(())
        }));
    }
    for h in handles {
        h.await??;
    }
    let single_4 = rec.rate(
        "enqueue",
        "one job per call, 4 callers",
        sizes.enqueue_single_4 / 4 * 4,
        start.elapsed(),
        "jobs/s",
    );
    rec.compare_last("raw one INSERT per transaction, 4 clients", raw_single_4);

    let jobs = noop_jobs(1000)?;
    let start = Instant::now();
    let mut done = 0;
    while done < sizes.enqueue_batch {
        queue.enqueue_batch(&jobs).await?;
        done += jobs.len();
    }
    let batch = rec.rate(
        "enqueue",
        "batch enqueue (1,000 per call)",
        done,
        start.elapsed(),
        "jobs/s",
    );
    rec.compare_last("raw multi-row INSERT", raw_batch);

    // Every job with a unique key of its own: the keyed path inserts the jobs one by one
    // inside the one statement (PostgreSQL) or transaction (SQLite).
    let jobs = unique_noop_jobs(sizes.enqueue_batch.div_ceil(1000) * 1000)?;
    let start = Instant::now();
    for chunk in jobs.chunks(1000) {
        queue.enqueue_batch(chunk).await?;
    }
    rec.rate(
        "enqueue",
        "batch enqueue, a unique key on every job (1,000 per call)",
        jobs.len(),
        start.elapsed(),
        "jobs/s",
    );
    rec.compare_last("batch enqueue (1,000 per call)", batch);
    Ok(LibraryEnqueue {
        single_1,
        single_4,
        batch,
    })
}

/// The processing figures; returns processing at the default concurrency (jobs/s), which
/// the observed and HTTP groups are compared with.
async fn process_figures<F, Fut>(
    queue: &Queue,
    sizes: &Sizes,
    rec: &mut Recorder<'_>,
    (ceiling_name, ceiling): (&str, f64),
    reset: F,
    target: (&str, Option<&str>),
    processes: Option<&PathBuf>,
) -> Result<f64>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    reset().await?;
    let default_concurrency = WorkerOptions::default().concurrency;
    let mut settings = vec![
        (1usize, sizes.process_1),
        (16, sizes.process_n),
        (128, sizes.process_n),
    ];
    if !settings.iter().any(|(c, _)| *c == default_concurrency) {
        settings.push((default_concurrency, sizes.process_n));
    }
    let mut plain = 0.0;
    for (concurrency, n) in settings {
        queue.enqueue_batch(&noop_jobs(n)?).await?;
        let t = drain_in_process(queue, concurrency).await?;
        check_all_finished(queue, n).await?;
        if concurrency == default_concurrency {
            plain = n as f64 / t.as_secs_f64().max(1e-9);
        }
        let label = if concurrency == default_concurrency {
            format!("1 worker, concurrency {concurrency} (the default)")
        } else {
            format!("1 worker, concurrency {concurrency}")
        };
        rec.rate("process", &label, n, t, "jobs/s");
        rec.compare_last(ceiling_name, ceiling);
        reset().await?;
    }
    unique_figure(queue, sizes.process_n, rec, plain, &reset).await?;
    limited_figure(queue, sizes.process_n, rec, plain, &reset).await?;
    observed_figures(queue, sizes.process_n, rec, plain, target, &reset).await?;
    let (url, schema) = target;
    if let Some(binary) = processes {
        queue
            .enqueue_batch(&noop_jobs(sizes.process_procs)?)
            .await?;
        let t = run_worker_processes(binary, url, schema, 4).await?;
        check_all_finished(queue, sizes.process_procs).await?;
        rec.rate(
            "process",
            "4 worker processes (default settings)",
            sizes.process_procs,
            t,
            "jobs/s",
        );
        rec.compare_last(ceiling_name, ceiling);
        reset().await?;
    }
    Ok(plain)
}

/// Processing at the default concurrency of jobs that each have a unique key, as a ratio to
/// the same processing of jobs without keys (`plain`).
async fn unique_figure<F, Fut>(
    queue: &Queue,
    n: usize,
    rec: &mut Recorder<'_>,
    plain: f64,
    reset: &F,
) -> Result<()>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    let concurrency = WorkerOptions::default().concurrency;
    for chunk in unique_noop_jobs(n)?.chunks(1000) {
        queue.enqueue_batch(chunk).await?;
    }
    let t = drain_in_process(queue, concurrency).await?;
    check_all_finished(queue, n).await?;
    rec.rate(
        "process",
        &format!("1 worker, concurrency {concurrency}, a unique key on every job"),
        n,
        t,
        "jobs/s",
    );
    rec.compare_last("the same without keys", plain);
    reset().await?;
    Ok(())
}

/// Processing at the default concurrency of jobs spread over 100 keys (`args.tenant`) under a
/// limit of 2 running jobs per key, as a ratio to the same processing without the limit
/// (`plain`): what the limited claim costs (its turn, the count of active jobs per group).
async fn limited_figure<F, Fut>(
    queue: &Queue,
    n: usize,
    rec: &mut Recorder<'_>,
    plain: f64,
    reset: &F,
) -> Result<()>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    let concurrency = WorkerOptions::default().concurrency;
    let jobs: underling::Result<Vec<NewJob>> = (0..n)
        .map(|i| {
            let opts = EnqueueOptions::new().queue(BENCH_QUEUE);
            NewJob::new(NOOP, serde_json::json!({ "tenant": i % 100 }), opts)
        })
        .collect();
    queue.enqueue_batch(&jobs?).await?;
    let scope = underling::LimitScope::Args("tenant".into());
    queue
        .set_limit(&underling::Limit::concurrency(scope.clone(), 2))
        .await?;
    let drained = drain_in_process(queue, concurrency).await;
    queue.remove_limit(&scope).await?;
    let t = drained?;
    check_all_finished(queue, n).await?;
    rec.rate(
        "process",
        &format!("1 worker, concurrency {concurrency}, a limit of 2 per key over 100 keys"),
        n,
        t,
        "jobs/s",
    );
    rec.compare_last("the same without a limit", plain);
    reset().await?;
    Ok(())
}

/// What watching costs: processing at the default concurrency with an event subscriber on
/// another connection (which counts what it receives), and with the audit log on, each as a
/// ratio to the same processing unwatched (`plain`).
async fn observed_figures<F, Fut>(
    queue: &Queue,
    n: usize,
    rec: &mut Recorder<'_>,
    plain: f64,
    (url, schema): (&str, Option<&str>),
    reset: &F,
) -> Result<()>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    let concurrency = WorkerOptions::default().concurrency;
    let mut options = ConnectOptions::new(url).max_connections(2);
    if let Some(schema) = schema {
        options = options.schema(schema);
    }
    let watcher = Queue::connect_with(options).await?;
    let mut events = watcher.events().await?;
    let expected = 3 * n as u64;
    let counter = tokio::spawn(async move {
        let (mut seen, mut missed) = (0u64, 0u64);
        while seen + missed < expected {
            match tokio::time::timeout(Duration::from_secs(30), events.next()).await {
                Ok(Some(Ok(_))) => seen += 1,
                Ok(Some(Err(underling::MissedEvents(n)))) => missed += n,
                Ok(None) | Err(_) => break,
            }
        }
        (seen, missed, Instant::now())
    });
    let start = Instant::now();
    queue.enqueue_batch(&noop_jobs(n)?).await?;
    let t = drain_in_process(queue, concurrency).await?;
    check_all_finished(queue, n).await?;
    rec.rate(
        "observed",
        &format!("1 worker, concurrency {concurrency}, with an event subscriber"),
        n,
        t,
        "jobs/s",
    );
    rec.compare_last("the same without", plain);
    // Every job is enqueued, started and finished: three events each.
    let (seen, missed, last) = counter
        .await
        .map_err(|e| BenchError::Check(e.to_string()))?;
    watcher.close().await;
    if seen + missed != expected {
        return Err(BenchError::Check(format!(
            "the subscriber got {seen} events and missed {missed}, of {expected} transitions"
        )));
    }
    rec.rate(
        "observed",
        "events delivered to the subscriber",
        seen as usize,
        last - start,
        "events/s",
    );
    // A figure of its own, so that the name above stays the same from run to run.
    rec.push(
        "observed",
        "events the subscriber missed (fell behind)",
        missed as f64,
        "events",
        missed,
    );
    reset().await?;

    queue.enable_audit().await?;
    queue.enqueue_batch(&noop_jobs(n)?).await?;
    let t = drain_in_process(queue, concurrency).await?;
    queue.disable_audit().await?;
    check_all_finished(queue, n).await?;
    rec.rate(
        "observed",
        &format!("1 worker, concurrency {concurrency}, with the audit log on"),
        n,
        t,
        "jobs/s",
    );
    rec.compare_last("the same without", plain);
    queue.prune_audit(Duration::ZERO).await?;
    reset().await?;
    Ok(())
}

/// Runs an in-process worker with default settings (but `concurrency`) until the queue is empty.
async fn drain_in_process(queue: &Queue, concurrency: usize) -> Result<Duration> {
    let mut registry = Registry::new();
    registry.register(Noop)?;
    let options = WorkerOptions {
        queues: vec![BENCH_QUEUE.to_string()],
        concurrency,
        burst: true,
        ..WorkerOptions::default()
    };
    let start = Instant::now();
    Worker::new(queue.clone(), registry, options).run().await?;
    Ok(start.elapsed())
}

async fn check_all_finished(queue: &Queue, n: usize) -> Result<()> {
    let filter = JobFilter {
        states: vec![JobState::Finished],
        queues: vec![BENCH_QUEUE.to_string()],
        ..JobFilter::default()
    };
    let finished = queue.list_jobs(&filter, 0, 0).await?.total;
    if finished != n as u64 {
        return Err(BenchError::Check(format!(
            "{finished} of {n} jobs finished"
        )));
    }
    Ok(())
}

/// Starts `count` worker processes in burst mode and waits for all of them.
async fn run_worker_processes(
    binary: &PathBuf,
    url: &str,
    schema: Option<&str>,
    count: usize,
) -> Result<Duration> {
    let start = Instant::now();
    let mut children = Vec::new();
    for _ in 0..count {
        let mut cmd = tokio::process::Command::new(binary);
        cmd.arg("--database")
            .arg(url)
            .arg("--queue")
            .arg(BENCH_QUEUE)
            .arg("--burst")
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null());
        if let Some(schema) = schema {
            cmd.arg("--schema").arg(schema);
        }
        children.push(cmd.spawn().map_err(|e| {
            BenchError::WorkerProcess(format!("cannot start {}: {e}", binary.display()))
        })?);
    }
    for mut child in children {
        let status = child.wait().await?;
        if !status.success() {
            return Err(BenchError::WorkerProcess(format!(
                "a worker process exited with {status}"
            )));
        }
    }
    Ok(start.elapsed())
}

/// Enqueue→start and enqueue→finish on an idle worker, jobs arriving one at a time.
async fn latency_figures(queue: &Queue, sizes: &Sizes, rec: &mut Recorder<'_>) -> Result<()> {
    let mut registry = Registry::new();
    registry.register(Noop)?;
    let options = WorkerOptions {
        queues: vec![BENCH_QUEUE.to_string()],
        ..WorkerOptions::default()
    };
    let worker = Worker::new(queue.clone(), registry, options);
    let control = worker.control();
    let handle = tokio::spawn(worker.run());
    // Let the worker register and go idle.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut ids = Vec::with_capacity(sizes.latency);
    for _ in 0..sizes.latency {
        ids.push(
            queue
                .enqueue(NOOP, Value::Null, EnqueueOptions::new().queue(BENCH_QUEUE))
                .await?,
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Wait for the last ones.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let filter = JobFilter {
            states: vec![JobState::Finished],
            queues: vec![BENCH_QUEUE.to_string()],
            ..JobFilter::default()
        };
        if queue.list_jobs(&filter, 0, 0).await?.total >= ids.len() as u64
            || Instant::now() > deadline
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    control.stop();
    handle.await??;
    let mut to_start = Vec::new();
    let mut to_finish = Vec::new();
    for id in &ids {
        if let Some(job) = queue.job(*id).await?
            && let (Some(started), Some(finished)) = (job.started, job.finished)
        {
            to_start.push(ms_between(job.created, started));
            to_finish.push(ms_between(job.created, finished));
        }
    }
    if to_start.len() != ids.len() {
        return Err(BenchError::Check(format!(
            "latency: {} of {} jobs finished",
            to_start.len(),
            ids.len()
        )));
    }
    let n = ids.len() as u64;
    rec.push(
        "latency",
        "enqueue→start p50",
        percentile(&mut to_start, 0.50),
        "ms",
        n,
    );
    rec.push(
        "latency",
        "enqueue→start p99",
        percentile(&mut to_start, 0.99),
        "ms",
        n,
    );
    rec.push(
        "latency",
        "enqueue→finish p50",
        percentile(&mut to_finish, 0.50),
        "ms",
        n,
    );
    rec.push(
        "latency",
        "enqueue→finish p99",
        percentile(&mut to_finish, 0.99),
        "ms",
        n,
    );
    Ok(())
}

fn ms_between(a: chrono::DateTime<chrono::Utc>, b: chrono::DateTime<chrono::Utc>) -> f64 {
    (b - a).num_microseconds().unwrap_or(0) as f64 / 1000.0
}

/// The `p` quantile (nearest rank) of `values`.
fn percentile(values: &mut [f64], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(|a, b| a.total_cmp(b));
    let rank = ((p * values.len() as f64).ceil() as usize).clamp(1, values.len());
    values[rank - 1]
}
