//! The examples that use the HTTP API, run against the built `underling serve`: the README's
//! pull-worker curl session, `examples/pull-worker.sh`, and `examples/python-enqueue/`
//! (psycopg on PostgreSQL; under CI, where `.ci/run` installs psycopg, it never skips).

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};
use underling::{
    ConnectOptions, JobContext, JobState, Queue, Registry, Task, TaskResult, Worker, WorkerOptions,
};

use super::support::TempDir;
use super::{Serving, readme_block};

/// The repository's root.
fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// POSTs JSON to the server with its token; the answer's JSON.
async fn post(server: &Serving, token: &str, path: &str, body: Value) -> Value {
    reqwest::Client::new()
        .post(format!("{}/api/v1{path}", server.url))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("answered")
        .json()
        .await
        .expect("JSON")
}

/// GETs a job from the server.
async fn job(server: &Serving, token: &str, id: i64) -> Value {
    reqwest::Client::new()
        .get(format!("{}/api/v1/jobs/{id}", server.url))
        .bearer_auth(token)
        .send()
        .await
        .expect("answered")
        .json()
        .await
        .expect("JSON")
}

/// Fails under CI, skips loudly elsewhere, when a tool an example needs is missing.
fn missing(what: &str) -> bool {
    assert!(
        std::env::var_os("CI").is_none(),
        "{what} is required in CI (.ci/run installs it)"
    );
    eprintln!("\n!!!! SKIPPING: {what} is not available\n");
    true
}

#[tokio::test]
async fn the_readme_pull_worker_session_runs_against_a_server() {
    let dir = TempDir::new();
    let token = dir.path().join("token");
    std::fs::write(&token, "pull-token\n").unwrap();
    let server = Serving::start(&dir, &["--token-file", token.to_str().unwrap()]);
    let script = readme_block("pull-example");
    let output = Command::new("sh")
        .args(["-eu", "-c", &script])
        .env("UNDERLING_URL", &server.url)
        .env("UNDERLING_TOKEN", "pull-token")
        .output()
        .expect("sh and curl run");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the README pull session failed ({}):\nstdout: {stdout}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    // What the comments in the README promise, in order.
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(lines[0], json!({"id": 1}));
    assert_eq!(lines[1]["jobs"][0]["token"], "1.0");
    assert_eq!(lines[2]["id"], 1);
    assert_eq!(lines[3], json!({"id": 1, "state": "finished"}));
    assert_eq!(lines[4]["error"]["code"], "lease_lost");
    assert_eq!(lines.len(), 5, "{stdout}");
    let done = job(&server, "pull-token", 1).await;
    assert_eq!(done["result"], json!({"text": "HI"}));
    assert!(server.terminate().success());
}

#[tokio::test]
async fn the_shell_pull_worker_runs_and_acks_or_rejects_jobs() {
    if Command::new("jq").arg("--version").output().is_err() && missing("jq") {
        return;
    }
    let dir = TempDir::new();
    let token = dir.path().join("token");
    std::fs::write(&token, "pull-token\n").unwrap();
    let server = Serving::start(&dir, &["--token-file", token.to_str().unwrap()]);
    let mut ids = Vec::new();
    for args in [
        json!({"text": "hello"}),
        json!({"text": "world"}),
        json!({"n": 1}),
    ] {
        let enqueued = post(
            &server,
            "pull-token",
            "/jobs",
            json!({"task": "shell.upper", "args": args, "attempts": 3}),
        )
        .await;
        ids.push(enqueued["id"].as_i64().expect("an id"));
    }
    let other = post(&server, "pull-token", "/jobs", json!({"task": "other"})).await;
    let output = Command::new("bash")
        .arg(root().join("examples/pull-worker.sh"))
        .arg("--once")
        .env("UNDERLING_URL", &server.url)
        .env("UNDERLING_TOKEN", "pull-token")
        .output()
        .expect("bash runs");
    assert!(
        output.status.success(),
        "pull-worker.sh failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let hello = job(&server, "pull-token", ids[0]).await;
    let world = job(&server, "pull-token", ids[1]).await;
    let bad = job(&server, "pull-token", ids[2]).await;
    assert_eq!(
        (&hello["state"], &hello["result"]),
        (&json!("finished"), &json!({"text": "HELLO"}))
    );
    assert_eq!(
        (&world["state"], &world["result"]),
        (&json!("finished"), &json!({"text": "WORLD"}))
    );
    assert_eq!(
        (&bad["state"], &bad["result"]),
        (&json!("failed"), &json!("args.text must be a string"))
    );
    let other = job(&server, "pull-token", other["id"].as_i64().unwrap()).await;
    assert_eq!(other["state"], "inactive", "other tasks are left alone");
    assert!(server.terminate().success());
}

/// `example.shout`: the upper-cased text of its args, as the Python example expects.
#[derive(Default)]
struct Shout;

#[underling::async_trait]
impl Task for Shout {
    type Args = Value;
    fn name(&self) -> &'static str {
        "example.shout"
    }
    async fn run(&self, _ctx: &JobContext, args: Value) -> TaskResult {
        let text = args["text"].as_str().unwrap_or_default().to_uppercase();
        Ok(json!({ "text": text }))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_example_enqueues_in_transactions_and_reads_the_result_over_http() {
    // Debian's psycopg is installed for the system's Python.
    let python = "/usr/bin/python3";
    let has_psycopg = Command::new(python)
        .args(["-c", "import psycopg"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_psycopg && missing("python3-psycopg") {
        return;
    }
    let url = std::env::var("UNDERLING_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let schema = format!("t_python_{}_{nanos}", std::process::id());
    let queue =
        match Queue::connect_with(ConnectOptions::new(&url).schema(&schema).migrate(true)).await {
            Ok(queue) => queue,
            Err(e) => {
                assert!(
                    std::env::var_os("CI").is_none(),
                    "PostgreSQL is required in CI: {e}"
                );
                eprintln!("\n!!!! SKIPPING: PostgreSQL is not reachable ({e})\n");
                return;
            }
        };
    let mut registry = Registry::new();
    registry.register(Shout).unwrap();
    let worker = Worker::new(queue.clone(), registry, WorkerOptions::default());
    let control = worker.control();
    let running = tokio::spawn(worker.run());
    let dir = TempDir::new();
    let server = Serving::start_on(&dir, &["--database", &url, "--schema", &schema], &[]);
    let output = tokio::task::spawn_blocking({
        let (url, schema, api) = (url.clone(), schema.clone(), server.url.clone());
        move || {
            Command::new(python)
                .arg(root().join("examples/python-enqueue/enqueue.py"))
                .env("UNDERLING_DATABASE_URL", url)
                .env("UNDERLING_SCHEMA", schema)
                .env("UNDERLING_URL", api)
                .output()
                .expect("python runs")
        }
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        output.status.success(),
        "the Python example failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert!(
        lines[0].starts_with("rolled back: job ") && lines[0].ends_with(" -> HTTP 404"),
        "{stdout}"
    );
    let committed: i64 = lines[1]
        .strip_prefix("committed: job ")
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("{stdout}"));
    assert_eq!(lines[2], r#"result: {"text": "HELLO"}"#);
    let job = queue
        .job(committed)
        .await
        .unwrap()
        .expect("the committed job");
    assert_eq!((job.state, job.attempts), (JobState::Finished, 3));
    let all = queue
        .list_jobs(&underling::JobFilter::default(), 10, 0)
        .await
        .unwrap();
    assert_eq!(all.total, 1, "the rolled-back job never existed");
    assert!(server.terminate().success());
    control.stop();
    tokio::time::timeout(Duration::from_secs(30), running)
        .await
        .expect("the worker stops")
        .unwrap()
        .unwrap();
    queue.close().await;
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"
    )))
    .execute(&mut conn)
    .await
    .unwrap();
}
