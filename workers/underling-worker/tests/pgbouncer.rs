//! `underling-worker --pgbouncer` through PgBouncer in transaction mode
//! (`scripts/ensure-pgbouncer.sh`, `UNDERLING_PGBOUNCER_URL`): it runs jobs without migrating
//! at start, and refuses `--migrate true`. A failure under CI when the bouncer is not reachable, a loud skip elsewhere.

use std::process::{Command, Output};

use underling::{ConnectOptions, EnqueueOptions, JobState, Pool, Queue};

const WORKER: &str = env!("CARGO_BIN_EXE_underling-worker");

/// The bouncer's URL when it accepts a TCP connection.
fn pgbouncer_url() -> Option<String> {
    let url = std::env::var("UNDERLING_PGBOUNCER_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:6432/test".to_string());
    let parsed = url::Url::parse(&url).expect("UNDERLING_PGBOUNCER_URL is a URL");
    let address = format!(
        "{}:{}",
        parsed.host_str().unwrap_or("127.0.0.1"),
        parsed.port().unwrap_or(6432)
    );
    match std::net::TcpStream::connect(&address) {
        Ok(_) => Some(url),
        Err(e) if std::env::var_os("CI").is_some() => panic!(
            "PgBouncer is required in CI but {url} is not reachable: {e} (run scripts/ensure-pgbouncer.sh)"
        ),
        Err(e) => {
            eprintln!(
                "!!!! SKIPPING: PgBouncer is not reachable at {url}: {e} (run scripts/ensure-pgbouncer.sh)"
            );
            None
        }
    }
}

/// Runs the worker binary with `args`, without the variables from outside.
fn worker(args: &[&str]) -> Output {
    Command::new(WORKER)
        .args(args)
        .env_remove("UNDERLING_DATABASE_URL")
        .env_remove("UNDERLING_SCHEMA")
        .env_remove("UNDERLING_PGBOUNCER")
        .env_remove("UNDERLING_LOG")
        .env_remove("RUST_LOG")
        .output()
        .expect("run underling-worker")
}

#[tokio::test]
async fn a_burst_worker_with_pgbouncer_runs_a_job_through_it_and_refuses_migrate_true() {
    let Some(bouncer) = pgbouncer_url() else {
        return;
    };
    let direct = std::env::var("UNDERLING_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string());
    let schema = format!("worker_pgbouncer_{}", std::process::id());
    let queue = Queue::connect_with(ConnectOptions::new(&direct).schema(&schema).migrate(true))
        .await
        .expect("migrate directly");
    let id = queue
        .enqueue(
            "underling.echo",
            serde_json::json!({"n": 3}),
            EnqueueOptions::new(),
        )
        .await
        .expect("enqueue");

    let flags = [
        "--pgbouncer",
        "--database",
        &bouncer,
        "--schema",
        &schema,
        "--burst",
    ];
    let ran = tokio::task::spawn_blocking({
        let flags: Vec<String> = flags.iter().map(|s| s.to_string()).collect();
        move || {
            let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
            let ran = worker(&flags);
            let refused = worker(&[flags.as_slice(), &["--migrate", "true"]].concat());
            (ran, refused)
        }
    })
    .await
    .expect("the worker runs");
    let (ran, refused) = ran;
    let job = queue.job(id).await.expect("read the job");
    let Pool::Postgres(pool) = queue.pool() else {
        panic!("a PostgreSQL pool");
    };
    let sql = format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE");
    let dropped = sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&pool).await;
    queue.close().await;

    let stderr = String::from_utf8_lossy(&ran.stderr);
    assert!(ran.status.success(), "{stderr}");
    let job = job.expect("the job");
    assert_eq!(
        (job.state, job.result),
        (JobState::Finished, Some(serde_json::json!({"n": 3})))
    );
    let refusal = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{refusal}");
    assert!(
        refusal.contains("migrations cannot run through PgBouncer in transaction mode"),
        "{refusal}"
    );
    dropped.expect("drop the test schema");
}
