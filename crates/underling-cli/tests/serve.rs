//! `underling serve` end to end: the built binary on a free port over a SQLite file, driven
//! over HTTP; the refusal to listen unprotected; the README's curl examples, run as they
//! are written so that they cannot rot; and the examples that use the API (the shell pull
//! worker, and the Python enqueue over PostgreSQL, see `examples.rs`).

#[path = "serve/examples.rs"]
mod examples;

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use support::{TempDir, run_in};

/// A running `underling serve`, killed on drop (when a test fails midway).
struct Serving {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    url: String,
}

impl Serving {
    /// Migrates a SQLite file in `dir` and starts `underling serve` on a free port with
    /// `extra` flags; waits for its line saying where it listens.
    fn start(dir: &TempDir, extra: &[&str]) -> Serving {
        let database = format!("sqlite://{}", dir.path().join("jobs.db").display());
        run_in(dir.path(), &["--database", &database, "migrate"], &[]).ok();
        Self::start_on(dir, &["--database", &database], extra)
    }

    /// Starts `underling serve` on a free port with the global flags `database` (a migrated
    /// database) and the serve flags `extra`.
    fn start_on(dir: &TempDir, database: &[&str], extra: &[&str]) -> Serving {
        let mut child = Command::new(env!("CARGO_BIN_EXE_underling"))
            .args(database)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(extra)
            .current_dir(dir.path())
            .env_remove("UNDERLING_TOKEN")
            .env_remove("UNDERLING_READ_ONLY_TOKEN")
            .env("UNDERLING_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start underling serve");
        let stdout = child.stdout.take().expect("stdout");
        let (lines, line) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut first = String::new();
            let _ = BufReader::new(stdout).read_line(&mut first);
            let _ = lines.send(first);
        });
        let first = line
            .recv_timeout(Duration::from_secs(30))
            .expect("underling serve says where it listens within 30 s");
        let address = first
            .split_whitespace()
            .find(|word| word.starts_with("http://"))
            .unwrap_or_else(|| panic!("no address in {first:?}"));
        assert!(
            first.starts_with("underling serve: listening on http://127.0.0.1:"),
            "{first}"
        );
        Serving {
            child,
            url: address.to_string(),
        }
    }

    /// Sends SIGTERM and waits for a clean exit.
    fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let killed = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        assert!(killed.success());
        for _ in 0..200 {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("underling serve did not stop within 10 s of SIGTERM");
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn serve_enqueues_and_reads_back_a_job_then_stops_on_sigterm() {
    let dir = TempDir::new();
    let token = dir.path().join("token");
    std::fs::write(&token, "s3cret-token\n").unwrap();
    let server = Serving::start(&dir, &["--token-file", token.to_str().unwrap()]);
    let client = reqwest::Client::new();
    let enqueued: Value = client
        .post(format!("{}/api/v1/jobs", server.url))
        .bearer_auth("s3cret-token")
        .json(&json!({"task": "mail.send", "args": {"to": "a@example.com"}, "queue": "mail"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = enqueued["id"].as_i64().expect("an id");
    let job: Value = client
        .get(format!("{}/api/v1/jobs/{id}", server.url))
        .bearer_auth("s3cret-token")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (
            job["task"].clone(),
            job["queue"].clone(),
            job["args"].clone()
        ),
        (
            json!("mail.send"),
            json!("mail"),
            json!({"to": "a@example.com"})
        )
    );
    // Without the token: 401.
    let denied = client
        .get(format!("{}/api/v1/jobs/{id}", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), reqwest::StatusCode::UNAUTHORIZED);
    // The CLI sees the job in the same file.
    let database = format!("sqlite://{}", dir.path().join("jobs.db").display());
    let shown = run_in(
        dir.path(),
        &[
            "--database",
            &database,
            "--json",
            "job",
            "show",
            &id.to_string(),
        ],
        &[],
    )
    .ok();
    assert_eq!(
        serde_json::from_str::<Value>(&shown).unwrap()["task"],
        "mail.send"
    );
    assert!(server.terminate().success());
}

#[test]
fn serve_refuses_to_listen_beyond_loopback_without_a_token() {
    let dir = TempDir::new();
    let run = run_in(
        dir.path(),
        &[
            "--database",
            "sqlite::memory:",
            "serve",
            "--listen",
            "0.0.0.0:0",
        ],
        &[],
    );
    let message = run.error();
    assert!(
        message.starts_with("refusing to listen on 0.0.0.0:0 without a token"),
        "{message}"
    );
}

/// The README's block between `<!-- serve-example:start -->` and `<!-- serve-example:end -->`.
fn readme_example() -> String {
    readme_block("serve-example")
}

/// The README's `sh` block between `<!-- NAME:start -->` and `<!-- NAME:end -->`.
fn readme_block(name: &str) -> String {
    let readme = include_str!("../../../README.md");
    let start = readme
        .find(&format!("<!-- {name}:start -->"))
        .expect("start marker");
    let end = readme
        .find(&format!("<!-- {name}:end -->"))
        .expect("end marker");
    let block = &readme[start..end];
    let code = block.split_once("```sh\n").expect("a sh block").1;
    code.split_once("```")
        .expect("the block ends")
        .0
        .to_string()
}

#[tokio::test]
async fn the_readme_curl_examples_run_against_a_server() {
    let dir = TempDir::new();
    let token = dir.path().join("token");
    std::fs::write(&token, "readme-token\n").unwrap();
    let server = Serving::start(&dir, &["--token-file", token.to_str().unwrap()]);
    let script = readme_example();
    assert!(
        script.lines().filter(|l| l.starts_with("curl ")).count() >= 15,
        "{script}"
    );
    let output = Command::new("sh")
        .args(["-eu", "-c", &script])
        .env("UNDERLING_URL", &server.url)
        .env("UNDERLING_TOKEN", "readme-token")
        .output()
        .expect("sh and curl run");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the README examples failed ({}):\nstdout: {stdout}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    // What the comments in the README promise.
    assert!(
        stdout.starts_with("{\"id\":1}{\"ids\":[2,3]}{\"id\":4}{\"id\":4,\"duplicate\":true}"),
        "{stdout}"
    );
    assert!(stdout.contains("\"settled\":false"), "{stdout}");
    assert!(stdout.contains("{\"status\":\"ready\"}"), "{stdout}");
    assert!(
        stdout.contains("{\"entries\":[],\"next\":null,\"enabled\":false}"),
        "{stdout}"
    );
    assert!(stdout.contains("# TYPE underling_jobs gauge"), "{stdout}");
    assert!(stdout.trim_end().ends_with("# EOF"), "{stdout}");
    assert!(server.terminate().success());
}

#[tokio::test]
async fn the_readme_schedule_examples_run_against_a_server() {
    let dir = TempDir::new();
    let token = dir.path().join("token");
    std::fs::write(&token, "readme-token\n").unwrap();
    let server = Serving::start(&dir, &["--token-file", token.to_str().unwrap()]);
    let script = readme_block("schedule-example");
    assert_eq!(
        script.lines().filter(|l| l.starts_with("curl ")).count(),
        7,
        "{script}"
    );
    let output = Command::new("sh")
        .args(["-eu", "-c", &script])
        .env("UNDERLING_URL", &server.url)
        .env("UNDERLING_TOKEN", "readme-token")
        .output()
        .expect("sh and curl run");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the README schedule examples failed ({}):\nstdout: {stdout}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    // What the comments in the README promise.
    assert!(
        stdout.starts_with("{\"name\":\"nightly\",\"cron\":\"30 2 * * *\""),
        "{stdout}"
    );
    assert!(stdout.contains("\"upcoming\":["), "{stdout}");
    assert!(stdout.contains("\"paused\":true"), "{stdout}");
    assert!(
        stdout.ends_with("{\"id\":1}{\"name\":\"nightly\",\"removed\":true}"),
        "{stdout}"
    );
    assert!(server.terminate().success());
}
