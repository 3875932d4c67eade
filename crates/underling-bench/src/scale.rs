//! `underling bench --scale`: the figures that must not depend on the size of the store,
//! measured on an empty store and then on a big one (millions of finished jobs, a backlog in
//! other queues, jobs waiting for a future time), in the same run and the same way.
//!
//! PostgreSQL only. The big store is built with set-based SQL (`generate_series`) in a
//! throw-away schema, which is dropped at the end.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgPool;
use underling::store::{Claim, Cycle, NextDue, RegisterWorker};
use underling::{
    ClaimSpec, ConnectOptions, EnqueueOptions, JobFilter, JobState, NewJob, Pool, Queue, Registry,
    Store, Worker, WorkerOptions,
};

use crate::error::{BenchError, Result};
use crate::{BENCH_QUEUE, Measurement, NOOP, Noop, percentile};

/// The small queue a claim is measured from, beside the big ones.
const SMALL_QUEUE: &str = "scale-small";
/// How many other queues hold the finished jobs and the backlog.
const OTHER_QUEUES: i64 = 100;
/// Rows per INSERT while building the big store (one progress line each).
const BUILD_CHUNK: i64 = 1_000_000;
/// How far back the finished jobs reach, in hours: within the default retention of repair
/// (two days), so that the worker measured does not start removing them meanwhile.
const SPAN_HOURS: i64 = 36;

/// The sizes of one `--scale` run.
struct ScaleSizes {
    /// Finished jobs (1 % of them failed) in the other queues, spread over 36 hours.
    finished: i64,
    /// Inactive jobs, due, spread over the other queues.
    backlog: i64,
    /// Jobs of the benchmark's queue waiting for a future time.
    delayed: i64,
    /// Jobs processed by one worker at defaults.
    process: usize,
    /// Samples per latency figure.
    samples: usize,
    /// Repeats of `stats`, `history` and the list (the median is reported).
    repeats: usize,
    /// Rows purged.
    purge: i64,
}

impl ScaleSizes {
    fn new(quick: bool) -> Self {
        if quick {
            ScaleSizes {
                finished: 100_000,
                backlog: 10_000,
                delayed: 10_000,
                process: 5_000,
                samples: 50,
                repeats: 3,
                purge: 10_000,
            }
        } else {
            ScaleSizes {
                finished: 10_000_000,
                backlog: 1_000_000,
                delayed: 1_000_000,
                process: 50_000,
                samples: 200,
                repeats: 5,
                purge: 1_000_000,
            }
        }
    }
}

/// The figures measured on one store.
#[derive(Debug, Default)]
struct Figures {
    values: Vec<(&'static str, f64, &'static str, u64)>,
}

impl Figures {
    /// The p50 and p99 of latency samples (ms), under the two names given.
    fn latencies(&mut self, [p50, p99]: [&'static str; 2], samples: &mut [f64]) {
        let count = samples.len() as u64;
        self.push(p50, percentile(samples, 0.50), "ms", count);
        self.push(p99, percentile(samples, 0.99), "ms", count);
    }

    fn push(&mut self, name: &'static str, value: f64, unit: &'static str, count: u64) {
        self.values.push((name, value, unit, count));
    }
}

/// Runs `bench --scale` on the PostgreSQL server at `url`; `report` sees each figure of the
/// big store (with the empty store's beside it) once both are measured, `progress` the steps.
pub(crate) async fn run_scale(
    url: &str,
    quick: bool,
    report: &(dyn Fn(&Measurement) + Sync),
    progress: &(dyn Fn(&str) + Sync),
) -> Result<Vec<Measurement>> {
    let sizes = ScaleSizes::new(quick);
    let schema = format!("underling_scale_{}", std::process::id());
    let opts = ConnectOptions::new(url)
        .schema(&schema)
        .max_connections(16)
        .migrate(true);
    // Creates the schema and migrates it; the store is then opened on its own, for the
    // claims measured one by one.
    Queue::connect_with(opts.clone()).await?.close().await;
    let store = underling::store::open(&opts).await?;
    let queue = Queue::from_store(store.clone());
    let result = scale_figures(&queue, &store, &sizes, report, progress).await;
    if let Pool::Postgres(pool) = queue.pool() {
        let sql = format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE");
        // The name is generated here from the process id.
        sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&pool).await?;
    }
    queue.close().await;
    result
}

async fn scale_figures(
    queue: &Queue,
    store: &Arc<dyn Store>,
    sizes: &ScaleSizes,
    report: &(dyn Fn(&Measurement) + Sync),
    progress: &(dyn Fn(&str) + Sync),
) -> Result<Vec<Measurement>> {
    let pool = match queue.pool() {
        Pool::Postgres(pool) => pool,
        _ => return Err(BenchError::Usage("bench --scale needs PostgreSQL".into())),
    };
    // The finished jobs reach back from here; purges remove the oldest `sizes.purge` of them.
    let origin = Utc::now() - chrono::Duration::hours(SPAN_HOURS);
    let step_ms = (SPAN_HOURS * 3_600_000 / sizes.finished.max(1)).max(1);
    let purge_before = origin + chrono::Duration::milliseconds(step_ms * sizes.purge);

    // A fresh schema and fresh connections run slower at first (plans, caches): one round
    // unmeasured, so that the empty store's figures are not the first ones taken.
    progress("warming up");
    warm_up(queue, store).await?;
    progress("measuring on the empty store");
    let empty = measure(
        queue,
        store,
        &pool,
        sizes,
        origin,
        step_ms,
        purge_before,
        true,
    )
    .await?;

    let start = Instant::now();
    build_big_store(&pool, sizes, origin, step_ms, progress).await?;
    let built = start.elapsed();
    let rows = sizes.finished + sizes.backlog + sizes.delayed;
    progress(&format!(
        "built the big store: {rows} rows in {:.1} s ({:.0} rows/s)",
        built.as_secs_f64(),
        rows as f64 / built.as_secs_f64().max(1e-9)
    ));

    progress("measuring on the big store");
    let big = measure(
        queue,
        store,
        &pool,
        sizes,
        origin,
        step_ms,
        purge_before,
        false,
    )
    .await?;

    let mut out = vec![Measurement {
        backend: "postgres".into(),
        group: "scale".into(),
        name: format!("build the big store ({rows} rows, set-based SQL)"),
        value: built.as_secs_f64(),
        unit: "s".into(),
        count: rows as u64,
        ceiling: None,
        ratio: None,
        baseline: None,
    }];
    report(&out[0]);
    for ((name, value, unit, count), (_, empty_value, _, _)) in
        big.values.into_iter().zip(empty.values)
    {
        let m = Measurement {
            backend: "postgres".into(),
            group: "scale".into(),
            name: name.to_string(),
            value,
            unit: unit.to_string(),
            count,
            ceiling: Some("empty store".into()),
            ratio: Some(value / empty_value.max(1e-9)),
            baseline: Some(empty_value),
        };
        report(&m);
        out.push(m);
    }
    Ok(out)
}

/// Every figure, on the store as it is. `empty`: the rows to purge are inserted first (the
/// big store already has them).
#[allow(clippy::too_many_arguments)]
async fn measure(
    queue: &Queue,
    store: &Arc<dyn Store>,
    pool: &PgPool,
    sizes: &ScaleSizes,
    origin: DateTime<Utc>,
    step_ms: i64,
    purge_before: DateTime<Utc>,
    empty: bool,
) -> Result<Figures> {
    let mut figures = Figures::default();

    // Processing: one in-process worker at default settings drains the benchmark's queue.
    for chunk in (0..sizes.process).collect::<Vec<_>>().chunks(1000) {
        let jobs: underling::Result<Vec<NewJob>> = chunk
            .iter()
            .map(|_| NewJob::new(NOOP, Value::Null, EnqueueOptions::new().queue(BENCH_QUEUE)))
            .collect();
        queue.enqueue_batch(&jobs?).await?;
    }
    let mut registry = Registry::new();
    registry.register(Noop)?;
    let options = WorkerOptions {
        queues: vec![BENCH_QUEUE.to_string()],
        burst: true,
        ..WorkerOptions::default()
    };
    let start = Instant::now();
    let summary = Worker::new(queue.clone(), registry, options).run().await?;
    let elapsed = start.elapsed();
    if summary.finished != sizes.process as u64 {
        return Err(BenchError::Check(format!(
            "scale: {} of {} jobs finished",
            summary.finished, sizes.process
        )));
    }
    figures.push(
        "processing, 1 worker at defaults",
        sizes.process as f64 / elapsed.as_secs_f64().max(1e-9),
        "jobs/s",
        sizes.process as u64,
    );

    // Claims as a worker makes them, one at a time.
    let limit = WorkerOptions::default().concurrency;
    let worker_id = register(store).await?;
    let bench_spec = ClaimSpec {
        queues: vec![BENCH_QUEUE.to_string()],
        tasks: vec![NOOP.to_string()],
    };
    // An idle poll: the claim finds nothing ready, then asks when the next delayed job is due
    // (what an idle worker does on every poll).
    let mut idle = Vec::with_capacity(sizes.samples);
    for _ in 0..sizes.samples {
        let start = Instant::now();
        let claimed = claim(store, worker_id, &bench_spec, limit).await?;
        store
            .next_due(NextDue {
                queues: &bench_spec.queues,
                now: None,
            })
            .await?;
        idle.push(ms(start.elapsed()));
        if claimed != 0 {
            return Err(BenchError::Check(format!(
                "scale: an idle poll claimed {claimed} jobs"
            )));
        }
    }
    figures.latencies(
        [
            "idle poll (claim + next due) p50",
            "idle poll (claim + next due) p99",
        ],
        &mut idle,
    );
    // A claim from a small queue: one job waits there, beside the big queues.
    let small_spec = ClaimSpec {
        queues: vec![SMALL_QUEUE.to_string()],
        tasks: vec![NOOP.to_string()],
    };
    let mut small = Vec::with_capacity(sizes.samples);
    for _ in 0..sizes.samples {
        queue
            .enqueue(NOOP, Value::Null, EnqueueOptions::new().queue(SMALL_QUEUE))
            .await?;
        let start = Instant::now();
        let claimed = claim(store, worker_id, &small_spec, limit).await?;
        small.push(ms(start.elapsed()));
        if claimed != 1 {
            return Err(BenchError::Check(format!(
                "scale: a claim from the small queue claimed {claimed} jobs, not 1"
            )));
        }
    }
    figures.latencies(
        [
            "claim from a small queue p50",
            "claim from a small queue p99",
        ],
        &mut small,
    );
    store.unregister_worker(worker_id).await?;

    // Reads an operator makes.
    let mut stats = Vec::new();
    let mut history = Vec::new();
    let mut list = Vec::new();
    let failed = JobFilter {
        states: vec![JobState::Failed],
        ..JobFilter::default()
    };
    for _ in 0..sizes.repeats {
        let start = Instant::now();
        queue.stats().await?;
        stats.push(ms(start.elapsed()));
        let start = Instant::now();
        queue.history().await?;
        history.push(ms(start.elapsed()));
        let start = Instant::now();
        queue.list_jobs(&failed, 50, 0).await?;
        list.push(ms(start.elapsed()));
    }
    let n = sizes.repeats as u64;
    figures.push("stats (median)", percentile(&mut stats, 0.5), "ms", n);
    figures.push("history (median)", percentile(&mut history, 0.5), "ms", n);
    figures.push(
        "job list --state failed --limit 50 (median)",
        percentile(&mut list, 0.5),
        "ms",
        n,
    );

    // Purge: the oldest finished jobs, in the CLI's batches.
    if empty {
        insert_finished(pool, 1, sizes.purge, origin, step_ms).await?;
        // As the big store is analyzed once built: without it the purge's plan is made for an
        // empty table (and reads every matching row per batch).
        sqlx::query("ANALYZE underling_jobs").execute(pool).await?;
    }
    let filter = JobFilter {
        states: vec![JobState::Finished],
        finished_before: Some(purge_before),
        ..JobFilter::default()
    };
    let start = Instant::now();
    let removed = queue.purge(&filter, 1000, |_| {}).await?;
    let elapsed = start.elapsed();
    if removed == 0 {
        return Err(BenchError::Check("scale: the purge removed nothing".into()));
    }
    figures.push(
        "purge (1,000 per statement)",
        removed as f64 / elapsed.as_secs_f64().max(1e-9),
        "rows/s",
        removed,
    );
    Ok(figures)
}

/// Processes a thousand jobs and makes a few claims, unmeasured.
async fn warm_up(queue: &Queue, store: &Arc<dyn Store>) -> Result<()> {
    let jobs: underling::Result<Vec<NewJob>> = (0..1000)
        .map(|_| NewJob::new(NOOP, Value::Null, EnqueueOptions::new().queue(BENCH_QUEUE)))
        .collect();
    queue.enqueue_batch(&jobs?).await?;
    let mut registry = Registry::new();
    registry.register(Noop)?;
    let options = WorkerOptions {
        queues: vec![BENCH_QUEUE.to_string()],
        burst: true,
        ..WorkerOptions::default()
    };
    Worker::new(queue.clone(), registry, options).run().await?;
    let worker_id = register(store).await?;
    let spec = ClaimSpec {
        queues: vec![BENCH_QUEUE.to_string(), SMALL_QUEUE.to_string()],
        tasks: vec![NOOP.to_string()],
    };
    for _ in 0..20 {
        claim(
            store,
            worker_id,
            &spec,
            WorkerOptions::default().concurrency,
        )
        .await?;
    }
    store.unregister_worker(worker_id).await?;
    Ok(())
}

/// Registers a worker for the claims made one by one.
async fn register(store: &Arc<dyn Store>) -> Result<i64> {
    Ok(store
        .register_worker(RegisterWorker {
            host: "bench",
            pid: i32::try_from(std::process::id()).unwrap_or(0),
            status: &Value::Null,
            now: None,
        })
        .await?)
}

/// One claim cycle with nothing to settle; how many jobs it claimed.
async fn claim(
    store: &Arc<dyn Store>,
    worker_id: i64,
    spec: &ClaimSpec,
    limit: usize,
) -> Result<usize> {
    let reply = store
        .cycle(Cycle {
            settles: &[],
            claim: Some(Claim {
                worker_id,
                spec,
                limit,
            }),
            now: None,
        })
        .await?;
    Ok(reply.claimed.len())
}

/// Fills the (PostgreSQL) store of `queue` with the big store of `bench --scale`, at the sizes
/// given: `finished` jobs (1 % failed) over the last 36 hours in 100 queues `scale-N`, a due
/// `backlog` spread over them, and `delayed` jobs due tomorrow in the benchmark's queue; then
/// vacuums and analyzes. For measurements of what a big store costs elsewhere (the web UI's
/// page loads: `workers/underling-worker/tests/webui.rs`).
pub async fn fill_big_store(
    queue: &Queue,
    finished: i64,
    backlog: i64,
    delayed: i64,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<()> {
    let Pool::Postgres(pool) = queue.pool() else {
        return Err(BenchError::Usage("the big store needs PostgreSQL".into()));
    };
    let sizes = ScaleSizes {
        finished,
        backlog,
        delayed,
        process: 0,
        samples: 0,
        repeats: 0,
        purge: 0,
    };
    let origin = Utc::now() - chrono::Duration::hours(SPAN_HOURS);
    let step_ms = (SPAN_HOURS * 3_600_000 / finished.max(1)).max(1);
    build_big_store(&pool, &sizes, origin, step_ms, progress).await
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Builds the big store beside what is there: finished jobs (1 % failed) in the other
/// queues, a due backlog spread over them, and delayed jobs in the benchmark's own queue (in
/// front of its new jobs in claim order: same priority, lower ids). Then vacuums and analyzes.
async fn build_big_store(
    pool: &PgPool,
    sizes: &ScaleSizes,
    origin: DateTime<Utc>,
    step_ms: i64,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<()> {
    let start = Instant::now();
    // The same series as the empty store's rows to purge (which its purge removed), whole.
    let mut done = 0;
    while done < sizes.finished {
        let n = BUILD_CHUNK.min(sizes.finished - done);
        insert_finished(pool, done + 1, done + n, origin, step_ms).await?;
        done += n;
        progress(&format!(
            "building: {done} of {} finished jobs ({:.0} s)",
            sizes.finished,
            start.elapsed().as_secs_f64()
        ));
    }
    let mut done = 0;
    while done < sizes.backlog {
        let n = BUILD_CHUNK.min(sizes.backlog - done);
        sqlx::query(
            "INSERT INTO underling_jobs (task, queue) \
             SELECT $1, 'scale-' || (g % $2) FROM generate_series($3::bigint, $4::bigint) g",
        )
        .bind(NOOP)
        .bind(OTHER_QUEUES)
        .bind(done + 1)
        .bind(done + n)
        .execute(pool)
        .await?;
        done += n;
        progress(&format!(
            "building: {done} of {} waiting jobs in {OTHER_QUEUES} other queues ({:.0} s)",
            sizes.backlog,
            start.elapsed().as_secs_f64()
        ));
    }
    let mut done = 0;
    while done < sizes.delayed {
        let n = BUILD_CHUNK.min(sizes.delayed - done);
        sqlx::query(
            "INSERT INTO underling_jobs (task, queue, delayed) \
             SELECT $1, $2, now() + interval '1 day' + g * interval '1 millisecond' \
             FROM generate_series($3::bigint, $4::bigint) g",
        )
        .bind(NOOP)
        .bind(BENCH_QUEUE)
        .bind(done + 1)
        .bind(done + n)
        .execute(pool)
        .await?;
        done += n;
        progress(&format!(
            "building: {done} of {} delayed jobs in queue {BENCH_QUEUE} ({:.0} s)",
            sizes.delayed,
            start.elapsed().as_secs_f64()
        ));
    }
    progress(&format!(
        "building: VACUUM ANALYZE ({:.0} s)",
        start.elapsed().as_secs_f64()
    ));
    sqlx::query("VACUUM ANALYZE underling_jobs")
        .execute(pool)
        .await?;
    Ok(())
}

/// Finished jobs number `from..=to` of the series that starts at `origin`, `step_ms` apart,
/// in the other queues; every hundredth failed.
async fn insert_finished(
    pool: &PgPool,
    from: i64,
    to: i64,
    origin: DateTime<Utc>,
    step_ms: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO underling_jobs \
             (task, queue, state, created, delayed, started, finished, result) \
         SELECT $1, 'scale-' || (g % $2), \
                CASE WHEN g % 100 = 0 THEN 'failed' ELSE 'finished' END, t, t, t, t, \
                CASE WHEN g % 100 = 0 THEN to_jsonb('failed'::text) ELSE 'null'::jsonb END \
         FROM (SELECT g, $3::timestamptz + g * $4 * interval '1 millisecond' AS t \
               FROM generate_series($5::bigint, $6::bigint) g) s",
    )
    .bind(NOOP)
    .bind(OTHER_QUEUES)
    .bind(origin)
    .bind(step_ms as f64)
    .bind(from)
    .bind(to)
    .execute(pool)
    .await?;
    Ok(())
}
