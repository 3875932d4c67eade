//! PgBouncer in transaction mode (`ConnectOptions::pgbouncer`): enqueue (one, a batch, in the
//! application's own transaction), claim and settle work through it; what needs a session
//! (migrations, live events) is refused with `Error::SessionRequired`, and workers, which do not
//! LISTEN through it, find new jobs by polling.
//!
//! Against the bouncer of `scripts/ensure-pgbouncer.sh` at `UNDERLING_PGBOUNCER_URL` (default
//! `postgres://postgres@127.0.0.1:6432/test`, in front of the server of
//! `UNDERLING_TEST_DATABASE_URL`): a failure under CI when it is not reachable, a loud skip
//! elsewhere. Each test migrates a schema of its own over a direct connection and drops it
//! afterwards.
//!
//! Run them alone with `cargo test -p underling-testkit --test pgbouncer`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::json;
use sqlx::postgres::PgConnectOptions;
use underling::{ConnectOptions, EnqueueOptions, Error, JobState, NewJob, Queue, Registry};
use underling_testkit::support::{fast_options, job, start, wait_for_state};
use underling_testkit::tasks::{self, Flaky};
use underling_testkit::{postgres_url, unique_schema};

/// The bouncer's URL.
fn bouncer_url() -> String {
    std::env::var("UNDERLING_PGBOUNCER_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:6432/test".to_string())
}

/// A schema migrated over a direct connection, and a queue on it through the bouncer.
struct Bounced {
    queue: Queue,
    schema: String,
    url: String,
}

impl Bounced {
    /// Drops the schema, over a direct connection.
    async fn cleanup(self) {
        self.queue.close().await;
        let direct = Queue::connect_with(ConnectOptions::new(postgres_url()).schema(&self.schema))
            .await
            .expect("connect directly to drop the schema");
        let underling::Pool::Postgres(pool) = direct.pool() else {
            panic!("a PostgreSQL pool");
        };
        let sql = format!("DROP SCHEMA \"{}\" CASCADE", self.schema);
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&pool)
            .await
            .expect("drop the schema");
        direct.close().await;
    }
}

/// A fresh schema, migrated directly, and a queue on it through the bouncer; `None` (with a
/// loud `!!!! SKIPPING` message) when the bouncer is not reachable outside CI; under CI (`CI`
/// set) it panics.
async fn bounced() -> Option<Bounced> {
    let schema = unique_schema();
    let direct = Queue::connect_with(
        ConnectOptions::new(postgres_url())
            .schema(&schema)
            .migrate(true),
    )
    .await
    .expect("migrate a schema over a direct connection");
    direct.close().await;
    let url = bouncer_url();
    // Reachable is a TCP connection; anything going wrong after that is a failure.
    let parsed = url::Url::parse(&url).expect("UNDERLING_PGBOUNCER_URL is a URL");
    let address = format!(
        "{}:{}",
        parsed.host_str().unwrap_or("127.0.0.1"),
        parsed.port().unwrap_or(6432)
    );
    if let Err(e) = tokio::net::TcpStream::connect(&address).await {
        if std::env::var_os("CI").is_some() {
            panic!(
                "PgBouncer is required in CI but {url} is not reachable: {e} (run scripts/ensure-pgbouncer.sh)"
            );
        }
        eprintln!(
            "\n!!!! SKIPPING this PgBouncer test: {url} is not reachable ({e}).\n\
             !!!! Run `bash scripts/ensure-pgbouncer.sh` (as root) or set UNDERLING_PGBOUNCER_URL.\n"
        );
        return None;
    }
    let queue = Queue::connect_with(
        ConnectOptions::new(&url)
            .schema(&schema)
            .pgbouncer(true)
            .max_connections(8),
    )
    .await
    .unwrap_or_else(|e| panic!("connect through PgBouncer at {url}: {e}"));
    Some(Bounced { queue, schema, url })
}

/// The application's own pool through the bouncer, built as `underling::pgbouncer` says.
async fn app_pool(b: &Bounced) -> sqlx::PgPool {
    let options: PgConnectOptions = b.url.parse().expect("the bouncer's URL");
    underling::pgbouncer::pool_options(Some(&b.schema))
        .expect("pool options")
        .max_connections(2)
        .connect_with(underling::pgbouncer::connect_options(options))
        .await
        .expect("the application's pool through PgBouncer")
}

#[tokio::test]
async fn one_job_enqueued_through_pgbouncer_is_stored_inactive_with_its_arguments() {
    let Some(b) = bounced().await else {
        return;
    };
    let id = b
        .queue
        .enqueue("test.double", json!({"n": 21}), EnqueueOptions::new())
        .await
        .unwrap();
    let stored = job(&b.queue, id).await;
    assert_eq!(
        (stored.task.as_str(), stored.args, stored.state),
        ("test.double", json!({"n": 21}), JobState::Inactive)
    );
    b.cleanup().await;
}

#[tokio::test]
async fn a_batch_enqueued_through_pgbouncer_is_stored_whole_in_order() {
    let Some(b) = bounced().await else {
        return;
    };
    let jobs: Vec<NewJob> = (0..3)
        .map(|n| NewJob::new("test.double", json!({ "n": n }), EnqueueOptions::new()).unwrap())
        .collect();
    let ids = b.queue.enqueue_batch(&jobs).await.unwrap();
    assert_eq!(ids.len(), 3);
    let mut args = Vec::new();
    for id in &ids {
        args.push(job(&b.queue, *id).await.args);
    }
    assert_eq!(
        args,
        vec![json!({"n": 0}), json!({"n": 1}), json!({"n": 2})]
    );
    b.cleanup().await;
}

#[tokio::test]
async fn a_job_enqueued_in_a_committed_transaction_through_pgbouncer_exists() {
    let Some(b) = bounced().await else {
        return;
    };
    let pool = app_pool(&b).await;
    let mut tx = pool.begin().await.unwrap();
    let id = b
        .queue
        .enqueue_in(
            &mut tx,
            "test.double",
            json!({"n": 1}),
            EnqueueOptions::new(),
        )
        .await
        .unwrap();
    assert_eq!(
        b.queue.job(id).await.unwrap(),
        None,
        "invisible before commit"
    );
    tx.commit().await.unwrap();
    assert_eq!(job(&b.queue, id).await.state, JobState::Inactive);
    pool.close().await;
    b.cleanup().await;
}

#[tokio::test]
async fn a_job_enqueued_in_a_rolled_back_transaction_through_pgbouncer_does_not_exist() {
    let Some(b) = bounced().await else {
        return;
    };
    let pool = app_pool(&b).await;
    let mut tx = pool.begin().await.unwrap();
    let id = b
        .queue
        .enqueue_in(
            &mut tx,
            "test.double",
            json!({"n": 1}),
            EnqueueOptions::new(),
        )
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(b.queue.job(id).await.unwrap(), None);
    pool.close().await;
    b.cleanup().await;
}

#[tokio::test]
async fn three_workers_run_200_jobs_to_finished_through_pgbouncer() {
    let Some(b) = bounced().await else {
        return;
    };
    let jobs: Vec<NewJob> = (0..200)
        .map(|n| NewJob::new("test.double", json!({ "n": n }), EnqueueOptions::new()).unwrap())
        .collect();
    let ids = b.queue.enqueue_batch(&jobs).await.unwrap();
    let workers: Vec<_> = (0..3)
        .map(|_| {
            start(
                &b.queue,
                tasks::simple(),
                underling_testkit::support::burst_options(4),
            )
        })
        .collect();
    let mut performed = 0;
    for worker in workers {
        let summary = worker.join().await;
        assert_eq!(summary.failed, 0);
        performed += summary.performed;
    }
    assert_eq!(performed, 200, "each job ran exactly once");
    for (n, id) in ids.iter().enumerate() {
        let done = job(&b.queue, *id).await;
        assert_eq!(
            (done.state, done.result),
            (JobState::Finished, Some(json!({ "doubled": 2 * n })))
        );
    }
    b.cleanup().await;
}

#[tokio::test]
async fn a_failing_job_is_retried_through_pgbouncer_and_fails_for_good_after_its_attempts() {
    let Some(b) = bounced().await else {
        return;
    };
    let runs = Arc::new(AtomicUsize::new(0));
    let mut registry = Registry::new();
    registry
        .register(Flaky {
            runs: runs.clone(),
            backoff: |_| Duration::ZERO,
        })
        .unwrap();
    let id = b
        .queue
        .enqueue("test.flaky", json!({}), EnqueueOptions::new().attempts(2))
        .await
        .unwrap();
    let summary = start(
        &b.queue,
        registry,
        underling_testkit::support::burst_options(1),
    )
    .join()
    .await;
    assert_eq!((summary.performed, summary.failed), (2, 2));
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    let failed = job(&b.queue, id).await;
    assert_eq!(
        (failed.state, failed.retries, failed.result),
        (JobState::Failed, 1, Some(json!("attempt 2 failed")))
    );
    b.cleanup().await;
}

#[tokio::test]
async fn a_worker_through_pgbouncer_does_not_listen_and_polls_for_a_job_enqueued_while_idle() {
    let Some(b) = bounced().await else {
        return;
    };
    let worker = start(
        &b.queue,
        tasks::simple(),
        underling::WorkerOptions {
            poll_interval: Duration::from_millis(200),
            ..fast_options(1)
        },
    );
    // Idle for a few polls before the job arrives.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let id = b
        .queue
        .enqueue("test.double", json!({"n": 4}), EnqueueOptions::new())
        .await
        .unwrap();
    let done = wait_for_state(&b.queue, id, JobState::Finished).await;
    assert_eq!(done.result, Some(json!({"doubled": 8})));

    // Nothing LISTENs on the schema's channels: no session on the server ever ran a LISTEN
    // naming them.
    let direct = Queue::connect(&postgres_url()).await;
    let pool = match direct.as_ref().map(|q| q.pool()) {
        Ok(underling::Pool::Postgres(pool)) => pool,
        // The default schema of the test database need not be migrated: any pool will do.
        _ => sqlx::PgPool::connect(&postgres_url()).await.unwrap(),
    };
    let listening: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE query ILIKE 'LISTEN%' AND query LIKE '%' || $1 || '%'",
    )
    .bind(format!("underling.{}", b.schema))
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(listening, 0);
    pool.close().await;

    worker.control.stop();
    worker.join().await;
    b.cleanup().await;
}

#[tokio::test]
async fn migrating_through_pgbouncer_is_refused_as_needing_a_session() {
    let Some(b) = bounced().await else {
        return;
    };
    let err = b.queue.migrate().await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::SessionRequired {
                operation: "migrations"
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "migrations cannot run through PgBouncer in transaction mode: it needs a session of its own; connect to PostgreSQL directly (without the pgbouncer option) for it"
    );
    b.cleanup().await;
}

#[tokio::test]
async fn live_events_through_pgbouncer_are_refused_as_needing_a_session() {
    let Some(b) = bounced().await else {
        return;
    };
    let Err(err) = b.queue.events().await else {
        panic!("events through PgBouncer were not refused");
    };
    assert!(
        matches!(
            err,
            Error::SessionRequired {
                operation: "live events"
            }
        ),
        "{err:?}"
    );
    b.cleanup().await;
}

#[tokio::test]
async fn the_pgbouncer_option_on_a_sqlite_url_is_an_invalid_option() {
    let Err(err) =
        Queue::connect_with(ConnectOptions::new("sqlite::memory:").pgbouncer(true)).await
    else {
        panic!("the pgbouncer option on SQLite was not refused");
    };
    assert!(matches!(err, Error::InvalidOption(_)), "{err:?}");
    assert_eq!(
        err.to_string(),
        "invalid option: the pgbouncer option is for PostgreSQL URLs; sqlite::memory: is SQLite"
    );
}

#[tokio::test]
async fn waiting_through_pgbouncer_polls_and_returns_the_finished_job() {
    let Some(b) = bounced().await else {
        return;
    };
    let id = b
        .queue
        .enqueue("test.double", json!({"n": 5}), EnqueueOptions::new())
        .await
        .unwrap();
    let worker = start(&b.queue, tasks::simple(), fast_options(1));
    let done = b
        .queue
        .wait(id, Duration::from_secs(20))
        .await
        .unwrap()
        .expect("finished within the time");
    assert_eq!(
        (done.state, done.result),
        (JobState::Finished, Some(json!({"doubled": 10})))
    );
    worker.control.stop();
    worker.join().await;
    b.cleanup().await;
}
