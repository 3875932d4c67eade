//! The SQL enqueue function `underling_enqueue` (PostgreSQL, migration 0011): called from psql
//! and from the application's own transaction, with the library's rules, messages, task
//! defaults and wake-up of workers. Plain tests: the function exists on PostgreSQL only.
//!
//! Each test uses a fresh schema; the function lives in it and writes to it. Without a
//! reachable server (or without `psql` for the psql test) a test is skipped with a loud message,
//! never under CI (`CI` set), where it fails.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use underling::{ConnectOptions, EnqueueOptions, Error, JobState, Pool, Queue, WorkerOptions};
use underling_testkit::behaviour::task_defaults::Mail;
use underling_testkit::support::{fast_options, job, job_count, start, wait_for_state};
use underling_testkit::{drop_schema, postgres_url, tasks, unique_schema};

/// A migrated queue on a fresh schema, and the schema's name.
struct Db {
    queue: Queue,
    schema: String,
}

impl Db {
    async fn open() -> Option<Db> {
        let schema = unique_schema();
        let opts = ConnectOptions::new(postgres_url())
            .schema(&schema)
            .migrate(true);
        match Queue::connect_with(opts).await {
            Ok(queue) => Some(Db { queue, schema }),
            Err(e) => {
                assert!(
                    std::env::var_os("CI").is_none(),
                    "PostgreSQL is required in CI: {e}"
                );
                eprintln!("\n!!!! SKIPPING: PostgreSQL is not reachable ({e})\n");
                None
            }
        }
    }

    fn pool(&self) -> sqlx::PgPool {
        match self.queue.pool() {
            Pool::Postgres(pool) => pool,
            other => panic!("a PostgreSQL queue, got {other:?}"),
        }
    }

    /// `SELECT "schema".underling_enqueue(<call>)` as this test's SQL.
    fn call(&self, arguments: &str) -> String {
        format!("SELECT \"{}\".underling_enqueue({arguments})", self.schema)
    }

    async fn cleanup(self) {
        self.queue.close().await;
        drop_schema(&self.schema).await;
    }
}

/// Runs an enqueue call on `conn`; the id, or the server's message.
async fn enqueue_on(
    conn: &mut sqlx::PgConnection,
    db: &Db,
    arguments: &str,
) -> Result<i64, String> {
    sqlx::query_scalar(sqlx::AssertSqlSafe(db.call(arguments)))
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| match e {
            sqlx::Error::Database(db) => db.message().to_string(),
            other => panic!("not a database error: {other}"),
        })
}

#[tokio::test]
async fn psql_enqueues_a_job_with_the_options_given() {
    let Some(db) = Db::open().await else { return };
    let call = db.call(
        r#"'mail.send', '{"a": 1}'::jsonb, queue => 'q', priority => 5, delay => '5 min', attempts => 3"#,
    );
    let output = match std::process::Command::new("psql")
        .args(["-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-d"])
        .arg(postgres_url())
        .args(["-c", &call])
        .output()
    {
        Ok(output) => output,
        Err(e) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "psql is required in CI (apt-get install postgresql-client): {e}"
            );
            eprintln!("\n!!!! SKIPPING: psql cannot run ({e})\n");
            return;
        }
    };
    assert!(
        output.status.success(),
        "psql failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let id: i64 = String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .expect("psql prints the new id");
    let job = job(&db.queue, id).await;
    assert_eq!(
        (job.task.as_str(), &job.args, job.queue.as_str()),
        ("mail.send", &json!({"a": 1}), "q")
    );
    assert_eq!(
        (job.priority, job.attempts, job.state),
        (5, 3, JobState::Inactive)
    );
    assert_eq!(job.delayed - job.created, chrono::Duration::minutes(5));
    db.cleanup().await;
}

#[tokio::test]
async fn psql_reports_bad_input_with_the_library_message() {
    let Some(db) = Db::open().await else { return };
    let Ok(output) = std::process::Command::new("psql")
        .args(["-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-d"])
        .arg(postgres_url())
        .args(["-c", &db.call("'mail.send', attempts => 0")])
        .output()
    else {
        assert!(std::env::var_os("CI").is_none(), "psql is required in CI");
        return;
    };
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("ERROR:  invalid option: attempts must be at least 1, got 0"),
        "{stderr}"
    );
    assert_eq!(job_count(&db.queue).await, 0);
    db.cleanup().await;
}

#[tokio::test]
async fn a_rolled_back_transaction_leaves_no_job() {
    let Some(db) = Db::open().await else { return };
    let mut tx = db.pool().begin().await.unwrap();
    let id = enqueue_on(&mut tx, &db, "'test.double', '{\"n\": 2}'")
        .await
        .unwrap();
    assert_eq!(
        db.queue.job(id).await.unwrap(),
        None,
        "invisible before commit"
    );
    tx.rollback().await.unwrap();
    assert_eq!(db.queue.job(id).await.unwrap(), None);
    assert_eq!(job_count(&db.queue).await, 0);
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_committed_transaction_enqueues_a_job_that_a_worker_runs() {
    let Some(db) = Db::open().await else { return };
    let mut tx = db.pool().begin().await.unwrap();
    let id = enqueue_on(&mut tx, &db, "'test.double', '{\"n\": 21}'")
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let worker = start(&db.queue, tasks::simple(), fast_options(2));
    let job = wait_for_state(&db.queue, id, JobState::Finished).await;
    assert_eq!(job.result, Some(json!({"doubled": 42})));
    worker.control.stop();
    worker.join().await;
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listening_worker_wakes_at_commit_without_waiting_for_its_poll() {
    let Some(db) = Db::open().await else { return };
    let options = WorkerOptions {
        poll_interval: Duration::from_secs(60),
        ..fast_options(2)
    };
    let worker = start(&db.queue, tasks::simple(), options);
    // Idle: registered, its first claim found nothing, and it waits for a wake-up.
    underling_testkit::support::wait_for("the worker to register", || async {
        (!db.queue.workers().await.unwrap().is_empty()).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut conn = db.pool().acquire().await.unwrap();
    let started = Instant::now();
    let id = enqueue_on(&mut conn, &db, "'test.double', '{\"n\": 1}'")
        .await
        .unwrap();
    let job = wait_for_state(&db.queue, id, JobState::Finished).await;
    let took = started.elapsed();
    drop(conn);
    assert_eq!(job.result, Some(json!({"doubled": 2})));
    assert!(took < Duration::from_secs(5), "took {took:?}: no wake-up");
    worker.control.stop();
    worker.join().await;
    db.cleanup().await;
}

#[tokio::test]
async fn unset_options_take_the_published_task_defaults() {
    let Some(db) = Db::open().await else { return };
    let mut registry = underling::Registry::new();
    registry.register(Mail).unwrap();
    db.queue.publish_tasks(&registry).await.unwrap();
    let mut conn = db.pool().acquire().await.unwrap();
    let defaults = enqueue_on(&mut conn, &db, "'test.mail'").await.unwrap();
    let given = enqueue_on(
        &mut conn,
        &db,
        "'test.mail', queue => 'q', priority => 1, attempts => 1",
    )
    .await
    .unwrap();
    let unknown = enqueue_on(&mut conn, &db, "'test.other'").await.unwrap();
    let fields = |j: underling::Job| (j.queue, j.priority, j.attempts, j.args);
    assert_eq!(
        fields(job(&db.queue, defaults).await),
        ("mail".into(), 5, 3, json!({}))
    );
    assert_eq!(
        fields(job(&db.queue, given).await),
        ("q".into(), 1, 1, json!({}))
    );
    assert_eq!(
        fields(job(&db.queue, unknown).await),
        ("default".into(), 0, 1, json!({}))
    );
    drop(conn);
    db.cleanup().await;
}

#[tokio::test]
async fn parents_lax_expire_and_notes_are_stored_like_the_library_does() {
    let Some(db) = Db::open().await else { return };
    let parent = db
        .queue
        .enqueue("p", json!(null), EnqueueOptions::new())
        .await
        .unwrap();
    let mut conn = db.pool().acquire().await.unwrap();
    let child = enqueue_on(
        &mut conn,
        &db,
        &format!(
            "'c', 'null', parents => ARRAY[{parent}, {parent}], lax => true, \
             expire => '1 hour', notes => '{{\"k\": \"v\"}}'"
        ),
    )
    .await
    .unwrap();
    let job = job(&db.queue, child).await;
    assert_eq!(job.parents, vec![parent]);
    assert!(job.lax);
    assert_eq!(job.args, Value::Null);
    assert_eq!(job.notes, json!({"k": "v"}).as_object().unwrap().clone());
    assert_eq!(
        job.expires.map(|e| e - job.created),
        Some(chrono::Duration::hours(1))
    );
    drop(conn);
    db.cleanup().await;
}

#[tokio::test]
async fn bad_input_is_refused_with_the_library_message_and_writes_nothing() {
    let Some(db) = Db::open().await else { return };
    let cases: Vec<(&str, String)> = vec![
        ("''", Error::InvalidTask(String::new()).to_string()),
        ("' mail'", Error::InvalidTask(" mail".into()).to_string()),
        ("NULL", "invalid task name NULL: a task name must be a non-empty string without surrounding spaces or NUL characters".into()),
        ("'t', queue => ''", Error::InvalidQueue(String::new()).to_string()),
        ("'t', queue => 'q '", Error::InvalidQueue("q ".into()).to_string()),
        (
            "'t', attempts => -1",
            "invalid option: attempts must be at least 1, got -1".into(),
        ),
        (
            "'t', delay => '-5 min'",
            "invalid option: delay must not be negative, got -00:05:00".into(),
        ),
        (
            "'t', expire => '200 years'",
            "invalid option: expire must be at most 100 years, got 73050 days".into(),
        ),
        (
            "'t', notes => '[1]'",
            "invalid notes: notes must be a JSON object, got an array".into(),
        ),
        ("'t', parents => ARRAY[999]", Error::ParentNotFound(999).to_string()),
        (
            "'t', parents => ARRAY[NULL]::bigint[]",
            "invalid option: parents must not contain NULL".into(),
        ),
        ("'t', NULL", "invalid job arguments: args is SQL NULL".into()),
    ];
    let mut conn = db.pool().acquire().await.unwrap();
    for (arguments, expected) in cases {
        let refused = enqueue_on(&mut conn, &db, arguments).await;
        assert_eq!(refused, Err(expected), "underling_enqueue({arguments})");
    }
    assert_eq!(job_count(&db.queue).await, 0);
    // The library refuses the same values with the same words.
    let library = db
        .queue
        .enqueue("t", json!({}), EnqueueOptions::new().attempts(-1))
        .await
        .unwrap_err();
    assert_eq!(
        library.to_string(),
        "invalid option: attempts must be at least 1, got -1"
    );
    drop(conn);
    db.cleanup().await;
}

#[tokio::test]
async fn a_unique_key_returns_the_live_holder_and_inserts_nothing() {
    let Some(db) = Db::open().await else { return };
    let mut conn = db.pool().acquire().await.unwrap();
    let first = enqueue_on(&mut conn, &db, "'t', unique_key => 'nightly'")
        .await
        .unwrap();
    let second = enqueue_on(&mut conn, &db, "'t', '{\"v\": 2}', unique_key => 'nightly'")
        .await
        .unwrap();
    assert_eq!(second, first);
    assert_eq!(job_count(&db.queue).await, 1);
    assert_eq!(job(&db.queue, first).await.args, json!({}));
    drop(conn);
    db.cleanup().await;
}

#[tokio::test]
async fn a_unique_key_with_replace_updates_the_holder_and_with_error_fails() {
    let Some(db) = Db::open().await else { return };
    let mut conn = db.pool().acquire().await.unwrap();
    let first = enqueue_on(&mut conn, &db, "'t', unique_key => 'k'")
        .await
        .unwrap();
    let replaced = enqueue_on(
        &mut conn,
        &db,
        "'t', '{\"v\": 2}', priority => 7, unique_key => 'k', on_conflict => 'replace'",
    )
    .await
    .unwrap();
    assert_eq!(replaced, first);
    let stored = job(&db.queue, first).await;
    assert_eq!((stored.args, stored.priority), (json!({"v": 2}), 7));
    let refused = enqueue_on(
        &mut conn,
        &db,
        "'t', unique_key => 'k', on_conflict => 'error'",
    )
    .await;
    assert_eq!(
        refused,
        Err(Error::UniqueConflict {
            key: "k".into(),
            existing: first
        }
        .to_string())
    );
    assert_eq!(job_count(&db.queue).await, 1);
    drop(conn);
    db.cleanup().await;
}

#[tokio::test]
async fn a_unique_key_and_a_timeout_are_stored_like_the_library_does() {
    let Some(db) = Db::open().await else { return };
    let mut conn = db.pool().acquire().await.unwrap();
    let id = enqueue_on(
        &mut conn,
        &db,
        "'t', unique_key => 'daily', unique_for => '1 hour', timeout => '90 s'",
    )
    .await
    .unwrap();
    let stored = job(&db.queue, id).await;
    assert_eq!(stored.timeout(), Some(Duration::from_secs(90)));
    // The library sees the key the function stored: a library enqueue is a duplicate.
    let unique = underling::Unique::key("daily")
        .scope(underling::UniqueScope::Period(Duration::from_secs(3600)));
    let again = db
        .queue
        .submit("t", json!({}), EnqueueOptions::new().unique(unique))
        .await
        .unwrap();
    assert_eq!((again.id, again.duplicate), (id, true));
    drop(conn);
    db.cleanup().await;
}

#[tokio::test]
async fn bad_unique_options_and_timeouts_are_refused_and_write_nothing() {
    let Some(db) = Db::open().await else { return };
    let cases: Vec<(&str, &str)> = vec![
        (
            "'t', unique_key => ''",
            "invalid option: a unique key must be 1 to 512 bytes, got 0 (hash longer keys)",
        ),
        (
            "'t', unique_scope => 'active'",
            "invalid option: unique_scope and unique_for need a unique_key",
        ),
        (
            "'t', unique_key => 'k', unique_scope => 'forever'",
            "invalid option: unknown unique scope \"forever\": expected inactive, active or period",
        ),
        (
            "'t', unique_key => 'k', unique_scope => 'period'",
            "invalid option: the unique scope period needs a duration: give unique_for (--unique-for), e.g. 1h",
        ),
        (
            "'t', unique_key => 'k', unique_scope => 'inactive', unique_for => '1 hour'",
            "invalid option: unique_for (--unique-for) only goes with the unique scope period, not inactive",
        ),
        (
            "'t', unique_key => 'k', on_conflict => 'ignore'",
            "invalid option: unknown conflict policy \"ignore\": expected existing, replace or error",
        ),
        (
            "'t', timeout => '0 s'",
            "invalid option: timeout must be longer than zero and at most 100 years, got 00:00:00",
        ),
    ];
    let mut conn = db.pool().acquire().await.unwrap();
    for (arguments, expected) in cases {
        let refused = enqueue_on(&mut conn, &db, arguments).await;
        assert_eq!(
            refused,
            Err(expected.to_string()),
            "underling_enqueue({arguments})"
        );
    }
    assert_eq!(job_count(&db.queue).await, 0);
    drop(conn);
    db.cleanup().await;
}
