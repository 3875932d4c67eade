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
