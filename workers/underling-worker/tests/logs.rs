//! How `underling-worker` logs: UNDERLING_LOG (RUST_LOG as a fallback) sets the filter, no
//! colour when stderr is not a terminal, `--log-format json`, and no server notices at start.

use std::process::{Command, Output};

const WORKER: &str = env!("CARGO_BIN_EXE_underling-worker");

/// Runs a burst worker on a SQLite file of its own (or `database`), without the log
/// variables from outside; returns its stderr.
fn burst(database: &str, extra: &[&str], env: &[(&str, &str)]) -> (Output, String) {
    let mut command = Command::new(WORKER);
    command
        .args(["--database", database, "--burst"])
        .args(extra)
        .env_remove("UNDERLING_DATABASE_URL")
        .env_remove("UNDERLING_SCHEMA")
        .env_remove("UNDERLING_LOG")
        .env_remove("RUST_LOG");
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command.output().expect("run underling-worker");
    let stderr = String::from_utf8(output.stderr.clone()).expect("utf-8");
    (output, stderr)
}

/// A SQLite database file that does not exist yet (the worker migrates it).
fn sqlite_url(label: &str) -> (String, std::path::PathBuf) {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let dir = std::env::temp_dir().join(format!(
        "underling-worker-logs-{label}-{}-{nanos}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).expect("create a temporary directory");
    (format!("sqlite://{}/jobs.db", dir.display()), dir)
}

#[test]
fn logs_on_a_pipe_have_no_colour_and_go_by_underling_log_then_rust_log() {
    let (url, dir) = sqlite_url("filter");
    let (output, stderr) = burst(&url, &[], &[]);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains(" INFO underling::worker: worker started"),
        "{stderr}"
    );
    assert!(
        !stderr.contains('\u{1b}'),
        "no ANSI escapes on a pipe: {stderr:?}"
    );

    let (_, quiet) = burst(&url, &[], &[("UNDERLING_LOG", "warn")]);
    assert_eq!(quiet, "", "UNDERLING_LOG=warn hides info lines");
    let (_, quiet) = burst(&url, &[], &[("RUST_LOG", "warn")]);
    assert_eq!(quiet, "", "RUST_LOG is the fallback");
    let (_, chatty) = burst(
        &url,
        &[],
        &[("UNDERLING_LOG", "info"), ("RUST_LOG", "warn")],
    );
    assert!(
        chatty.contains("worker started"),
        "UNDERLING_LOG wins: {chatty}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn log_format_json_writes_one_json_object_per_line() {
    let (url, dir) = sqlite_url("json");
    let (output, stderr) = burst(&url, &["--log-format", "json"], &[]);
    assert!(output.status.success(), "{stderr}");
    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let started = lines
        .iter()
        .find(|l| l["fields"]["message"] == "worker started")
        .unwrap_or_else(|| panic!("no start line in {stderr}"));
    assert_eq!(started["level"], "INFO");
    assert_eq!(started["target"], "underling::worker");
    let (bad, stderr) = burst(&url, &["--log-format", "xml"], &[]);
    assert_eq!(bad.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--log-format"), "{stderr}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_start_on_a_migrated_postgres_schema_logs_no_server_notices() {
    let base = std::env::var("UNDERLING_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string());
    let schema = format!("worker_logs_{}", std::process::id());
    let first = burst(&base, &["--schema", &schema], &[]);
    if !first.0.status.success() && std::env::var_os("CI").is_none() {
        eprintln!("!!!! SKIPPING: PostgreSQL is not reachable: {}", first.1);
        return;
    }
    let (output, stderr) = burst(&base, &["--schema", &schema], &[]);
    let dropped = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(async {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(&base).await?;
            let sql = format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE");
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&mut conn)
                .await?;
            conn.close().await
        });
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("worker started"), "{stderr}");
    assert!(!stderr.contains("already exists"), "{stderr}");
    assert!(!stderr.contains("notice"), "{stderr}");
    dropped.expect("drop the test schema");
}

/// The password of the URLs the tests below give (PostgreSQL's trust auth ignores it).
const PASSWORD: &str = "s3cret-pass";

/// `url` with [`PASSWORD`] as the password of its user.
fn with_password(url: &str) -> String {
    let mut parsed = url::Url::parse(url).expect("UNDERLING_TEST_DATABASE_URL is a URL");
    parsed
        .set_password(Some(PASSWORD))
        .expect("a URL that takes a password");
    parsed.to_string()
}

#[test]
fn a_run_with_a_password_in_the_database_url_never_logs_the_password_even_at_debug() {
    let base = std::env::var("UNDERLING_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string());
    let schema = format!("worker_password_{}", std::process::id());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let queue = runtime.block_on(underling::Queue::connect_with(
        underling::ConnectOptions::new(&base)
            .schema(&schema)
            .migrate(true),
    ));
    let queue = match queue {
        Ok(queue) => queue,
        Err(e) if std::env::var_os("CI").is_none() => {
            eprintln!("!!!! SKIPPING: PostgreSQL is not reachable: {e}");
            return;
        }
        Err(e) => panic!("PostgreSQL is required in CI: {e}"),
    };
    let id = runtime
        .block_on(queue.enqueue(
            "underling.echo",
            serde_json::json!({"n": 1}),
            underling::EnqueueOptions::new(),
        ))
        .expect("enqueue");

    let (output, stderr) = burst(
        &with_password(&base),
        &["--schema", &schema],
        &[("UNDERLING_LOG", "debug")],
    );
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let state = runtime
        .block_on(queue.job(id))
        .expect("read the job")
        .map(|job| job.state);
    let dropped = runtime.block_on(async {
        let underling::Pool::Postgres(pool) = queue.pool() else {
            panic!("a PostgreSQL pool");
        };
        let sql = format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE");
        let dropped = sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&pool).await;
        queue.close().await;
        dropped
    });
    assert!(output.status.success(), "{stderr}");
    assert_eq!(state, Some(underling::JobState::Finished), "{stderr}");
    assert!(
        stderr.contains("DEBUG"),
        "debug lines were logged: {stderr}"
    );
    assert!(
        !stderr.contains(PASSWORD),
        "the password is on stderr: {stderr}"
    );
    assert!(
        !stdout.contains(PASSWORD),
        "the password is on stdout: {stdout}"
    );
    dropped.expect("drop the test schema");
}

#[test]
fn a_database_that_cannot_be_reached_is_reported_with_the_password_masked() {
    // Port 1: nothing listens there. The worker reports it and exits, or waits for the
    // database, saying so at warn: either way the URL it names is masked. It is stopped after
    // a few seconds.
    let url = format!("postgres://postgres:{PASSWORD}@127.0.0.1:1/test");
    let mut child = Command::new(WORKER)
        .args(["--database", &url, "--burst"])
        .env_remove("UNDERLING_DATABASE_URL")
        .env_remove("UNDERLING_SCHEMA")
        .env_remove("RUST_LOG")
        .env("UNDERLING_LOG", "debug")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start underling-worker");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    while std::time::Instant::now() < deadline {
        if child.try_wait().expect("poll the worker").is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let _ = child.kill();
    let output = child.wait_with_output().expect("the worker's output");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("postgres://postgres:***@127.0.0.1:1/test"),
        "the error names the URL, masked: {stderr}"
    );
    assert!(
        !stderr.contains(PASSWORD),
        "the password is on stderr: {stderr}"
    );
    assert!(
        !stdout.contains(PASSWORD),
        "the password is on stdout: {stdout}"
    );
}
