//! The `underling-worker` binary's command line: usage errors, error output and secrets.
//! These need no database server: bad flags are refused before connecting.

use std::process::{Command, Output};

const WORKER: &str = env!("CARGO_BIN_EXE_underling-worker");

fn worker(args: &[&str], env: &[(&str, &str)], dir: &std::path::Path) -> Output {
    let mut command = Command::new(WORKER);
    command
        .args(args)
        .current_dir(dir)
        .env_remove("UNDERLING_DATABASE_URL")
        .env_remove("UNDERLING_SCHEMA");
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("run underling-worker")
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).expect("utf-8")
}

/// A directory of its own for one test, removed afterwards.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(label: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = std::env::temp_dir().join(format!(
            "underling-worker-{label}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&path).expect("create a temporary directory");
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn help_never_shows_the_password_of_the_database_url() {
    let dir = TempDir::new("help");
    let output = worker(
        &["--help"],
        &[("UNDERLING_DATABASE_URL", "postgres://app:s3cret@db/app")],
        &dir.0,
    );
    assert!(output.status.success(), "{output:?}");
    let help = String::from_utf8(output.stdout).expect("utf-8");
    assert!(help.contains("--database"), "{help}");
    assert!(!help.contains("s3cret"), "{help}");
}

#[test]
fn zero_jobs_is_a_usage_error_naming_the_flag() {
    let dir = TempDir::new("jobs0");
    let output = worker(
        &["--database", "sqlite::memory:", "--jobs", "0"],
        &[],
        &dir.0,
    );
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let text = stderr(&output);
    assert!(text.contains("--jobs"), "{text}");
    assert!(text.contains("'0'"), "{text}");
}

#[test]
fn a_pool_size_of_zero_is_a_usage_error_naming_the_flag_or_its_variable() {
    let dir = TempDir::new("pool");
    let output = worker(
        &["--database", "sqlite::memory:", "--pool-size", "0"],
        &[],
        &dir.0,
    );
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(
        stderr(&output).contains("--pool-size"),
        "{}",
        stderr(&output)
    );
    let output = worker(
        &["--database", "sqlite::memory:"],
        &[("UNDERLING_POOL_SIZE", "0")],
        &dir.0,
    );
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(
        stderr(&output).contains("--pool-size"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_missing_after_too_short_for_the_heartbeat_is_a_usage_error_before_connecting() {
    let dir = TempDir::new("missing");
    // The database does not exist and is never opened: the flags are checked first.
    let output = worker(
        &[
            "--database",
            "postgres://nobody@127.0.0.1:9/none",
            "--missing-after",
            "2s",
        ],
        &[],
        &dir.0,
    );
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let text = stderr(&output);
    assert!(
        text.starts_with("error: invalid option: missing_after (2s)"),
        "{text}"
    );
    assert_eq!(text.lines().count(), 1, "one line: {text}");
}

#[test]
fn runtime_errors_are_one_line_without_a_backtrace() {
    let dir = TempDir::new("fg");
    let output = worker(
        &["--database", "sqlite::memory:", "--foreground", "99999"],
        &[("RUST_BACKTRACE", "1")],
        &dir.0,
    );
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let text = stderr(&output);
    assert!(text.ends_with("error: job 99999 not found\n"), "{text}");
    assert!(
        !text.contains("backtrace") && !text.contains("Caused by"),
        "{text}"
    );
}

#[test]
fn the_default_database_is_named_on_stderr() {
    let dir = TempDir::new("default");
    let output = worker(&["--foreground", "1"], &[], &dir.0);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let text = stderr(&output);
    assert!(
        text.starts_with(
            "note: using the default database sqlite://underling.db; set --database or \
             UNDERLING_DATABASE_URL\n"
        ),
        "{text}"
    );
    assert!(text.ends_with("error: job 1 not found\n"), "{text}");
}
