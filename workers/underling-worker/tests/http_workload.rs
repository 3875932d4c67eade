//! `examples/http-workload/`, run as a user would: the Python workload, `underling-worker
//! --workloads` with the example's TOML (on a free port), and the HTTP API it acks through
//! (`underling serve`'s server, in this process), on a fresh PostgreSQL schema. A sync job and
//! an async job finish with the workload's results. Needs python3 (CI has it).

mod harness;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use harness::{TestDb, WORKER};
use serde_json::json;
use underling::{EnqueueOptions, JobState};

/// Kills its child on drop (when the test fails midway).
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn example(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/http-workload")
        .join(file)
}

/// A port free now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_workload_example_finishes_a_sync_and_an_async_job() {
    if Command::new("python3").arg("--version").output().is_err() {
        assert!(
            std::env::var_os("CI").is_none(),
            "python3 is required in CI"
        );
        eprintln!("\n!!!! SKIPPING: python3 is not available\n");
        return;
    }
    let Some(db) = TestDb::new("http_workload").await else {
        return;
    };
    let token = "example-api-token";
    let server = underling_server::Server::bind(
        db.queue.clone(),
        underling_server::ServerOptions {
            listen: "127.0.0.1:0".parse().expect("address"),
            token: Some(token.to_string()),
            ..underling_server::ServerOptions::default()
        },
    )
    .await
    .expect("the server binds");
    let api = format!("http://{}", server.local_addr().expect("bound"));
    let (stop_server, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.run(async move {
        let _ = stopped.await;
    }));

    // The example's TOML, on a port free now instead of its 8781.
    let port = free_port();
    let toml = std::fs::read_to_string(example("workloads.toml")).expect("the example's TOML");
    assert!(toml.contains("127.0.0.1:8781"), "{toml}");
    let workloads = db.dir.join("workloads.toml");
    std::fs::write(
        &workloads,
        toml.replace("127.0.0.1:8781", &format!("127.0.0.1:{port}")),
    )
    .expect("write the TOML");

    let mut python = Killed(
        Command::new("python3")
            .arg(example("workload.py"))
            .env("PORT", port.to_string())
            .env("UNDERLING_URL", &api)
            .env("UNDERLING_TOKEN", token)
            .env("WORKLOAD_SECRET", "workload-secret")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 runs"),
    );
    let mut first = String::new();
    BufReader::new(python.0.stdout.take().expect("stdout"))
        .read_line(&mut first)
        .expect("the workload says where it listens");
    assert_eq!(
        first.trim(),
        format!("workload listening on http://127.0.0.1:{port}")
    );

    let log = std::fs::File::create(db.dir.join("worker.log")).expect("log");
    let _worker = Killed(
        Command::new(WORKER)
            .args(["--database", &db.url, "--schema", &db.schema])
            .args(["--poll-interval", "100ms", "--workloads"])
            .arg(&workloads)
            .env("WORKLOAD_SECRET", "workload-secret")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start underling-worker"),
    );

    let sync = db
        .queue
        .enqueue(
            "example.upper",
            json!({"text": "hello"}),
            EnqueueOptions::new(),
        )
        .await
        .expect("enqueue");
    let later = db
        .queue
        .enqueue(
            "example.wordcount",
            json!({"text": "one two three"}),
            EnqueueOptions::new(),
        )
        .await
        .expect("enqueue");
    for (id, expected) in [
        (sync, json!({"text": "HELLO"})),
        (later, json!({"words": 3})),
    ] {
        let job = harness::wait_for(
            &format!("job {id} to end"),
            Duration::from_secs(30),
            Duration::from_millis(50),
            || async {
                let job = db.queue.job(id).await.expect("read").expect("exists");
                matches!(job.state, JobState::Finished | JobState::Failed).then_some(job)
            },
        )
        .await;
        assert_eq!(
            (job.state, job.result.clone()),
            (JobState::Finished, Some(expected)),
            "{job:?}\n{}",
            db.logs()
        );
    }
    let _ = stop_server.send(());
    serving
        .await
        .expect("joined")
        .expect("the server stops cleanly");
    drop(python);
    db.cleanup().await;
}
