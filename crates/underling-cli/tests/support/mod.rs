//! The harness for the end-to-end tests: runs the built `underling` binary against a fresh
//! SQLite file in a temporary directory and against PostgreSQL in a fresh schema, and sets up
//! jobs, workers and locks through the library.
//!
//! PostgreSQL is found at `UNDERLING_TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`). When it cannot be reached, the PostgreSQL half
//! of each test fails under CI (`CI` set) and is skipped with a loud message elsewhere.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};
use underling::store::{ClaimById, Cycle, RegisterWorker};
use underling::{ConnectOptions, EnqueueOptions, Job, NewJob, Outcome, Queue, Settle, Store};

/// The PostgreSQL server the tests use.
pub fn postgres_url() -> String {
    std::env::var("UNDERLING_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

/// Which database a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A SQLite file in a temporary directory.
    Sqlite,
    /// A fresh schema on the PostgreSQL test server.
    Postgres,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A name unique to this process and call.
fn unique(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}{}_{nanos}_{n}", std::process::id())
}

/// What one run of the binary did.
#[derive(Debug)]
pub struct Run {
    /// The exit code.
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    /// Standard output of a successful run; panics (showing stderr) otherwise.
    pub fn ok(self) -> String {
        assert_eq!(
            self.code, 0,
            "expected success, got exit code {}\nstdout: {}\nstderr: {}",
            self.code, self.stdout, self.stderr
        );
        self.stdout
    }

    /// The JSON on standard output of a successful run.
    pub fn json(self) -> Value {
        let text = self.ok();
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
    }

    /// Asserts a runtime error (exit 1) printed as exactly one `error: …` line; returns the
    /// message after `error: `.
    pub fn error(self) -> String {
        assert_eq!(
            self.code, 1,
            "expected exit code 1\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        assert_eq!(self.stdout, "", "nothing on stdout on error");
        assert!(
            self.stderr.ends_with('\n') && self.stderr.lines().count() == 1,
            "expected one line on stderr, got {:?}",
            self.stderr
        );
        let line = self.stderr.trim_end();
        line.strip_prefix("error: ")
            .unwrap_or_else(|| panic!("expected `error: …`, got {line:?}"))
            .to_string()
    }

    /// Asserts a usage error (exit 2); returns stderr.
    pub fn usage_error(self) -> String {
        assert_eq!(
            self.code, 2,
            "expected exit code 2 (usage)\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self.stderr
    }
}

/// Runs the binary in `dir` with `args`, without any `UNDERLING_*` variables from outside.
pub fn run_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_underling"));
    command
        .args(args)
        .current_dir(dir)
        .env_remove("UNDERLING_DATABASE_URL")
        .env_remove("UNDERLING_SCHEMA")
        .env_remove("UNDERLING_LOG")
        .env_remove("UNDERLING_POOL_SIZE");
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command.output().expect("run the underling binary");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A temporary directory, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates a fresh directory under the system's temporary directory.
    pub fn new() -> TempDir {
        let path = std::env::temp_dir().join(unique("underling-cli-"));
        std::fs::create_dir_all(&path).expect("create a temporary directory");
        TempDir(path)
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One test's database: a SQLite file or a PostgreSQL schema, with the binary's flags for it
/// and (when migrated) a library handle for setting up and checking state.
pub struct TestDb {
    /// Which database.
    pub kind: Kind,
    /// The URL given to `--database`.
    pub url: String,
    /// The schema given to `--schema` (PostgreSQL).
    pub schema: Option<String>,
    /// The working directory of the binary (and home of the SQLite file).
    pub dir: TempDir,
    queue: Option<Queue>,
    store: Option<std::sync::Arc<dyn Store>>,
}

impl TestDb {
    /// A database that is not migrated yet; `None` when PostgreSQL is unreachable outside CI.
    pub async fn unmigrated(kind: Kind) -> Option<TestDb> {
        let dir = TempDir::new();
        let (url, schema) = match kind {
            Kind::Sqlite => (
                format!("sqlite://{}", dir.path().join("jobs.db").display()),
                None,
            ),
            Kind::Postgres => {
                let url = postgres_url();
                if let Err(e) = Queue::connect_with(ConnectOptions::new(&url)).await
                    && matches!(e, underling::Error::Connect { .. })
                {
                    if std::env::var_os("CI").is_some() {
                        panic!("PostgreSQL is required in CI but {url} failed: {e}");
                    }
                    eprintln!(
                        "\n!!!! SKIPPING the PostgreSQL half of this test: {url} is not reachable ({e}).\n\
                         !!!! Start PostgreSQL or set UNDERLING_TEST_DATABASE_URL to run it.\n"
                    );
                    return None;
                }
                (url, Some(unique("t_cli_")))
            }
        };
        Some(TestDb {
            kind,
            url,
            schema,
            dir,
            queue: None,
            store: None,
        })
    }

    /// A migrated database; `None` when PostgreSQL is unreachable outside CI.
    pub async fn migrated(kind: Kind) -> Option<TestDb> {
        let mut db = Self::unmigrated(kind).await?;
        let mut options = ConnectOptions::new(&db.url).migrate(true);
        if let Some(schema) = &db.schema {
            options = options.schema(schema.clone());
        }
        let store = underling::store::open(&options)
            .await
            .expect("open the test db");
        store.migrate().await.expect("migrate the test db");
        db.queue = Some(Queue::from_store(store.clone()));
        db.store = Some(store);
        Some(db)
    }

    /// The library handle on this database.
    pub fn queue(&self) -> &Queue {
        self.queue
            .as_ref()
            .expect("a migrated TestDb (use TestDb::migrated)")
    }

    /// The store under [`Self::queue`], for what a worker does.
    pub fn store(&self) -> &dyn Store {
        self.store
            .as_deref()
            .expect("a migrated TestDb (use TestDb::migrated)")
    }

    /// The global flags that point the binary at this database.
    pub fn flags(&self) -> Vec<String> {
        let mut flags = vec!["--database".to_string(), self.url.clone()];
        if let Some(schema) = &self.schema {
            flags.push("--schema".to_string());
            flags.push(schema.clone());
        }
        flags
    }

    /// Runs `underling --database … [--schema …] ARGS…`.
    pub fn run(&self, args: &[&str]) -> Run {
        let flags = self.flags();
        let mut all: Vec<&str> = flags.iter().map(String::as_str).collect();
        all.extend_from_slice(args);
        run_in(self.dir.path(), &all, &[])
    }

    /// Starts `underling --database … [--schema …] ARGS…` on a thread of its own, for commands
    /// that wait for something the test does meanwhile.
    pub fn spawn(&self, args: &[&str]) -> std::thread::JoinHandle<Run> {
        let mut all = self.flags();
        all.extend(args.iter().map(|a| a.to_string()));
        let dir = self.dir.path().to_path_buf();
        std::thread::spawn(move || {
            let all: Vec<&str> = all.iter().map(String::as_str).collect();
            run_in(&dir, &all, &[])
        })
    }

    /// Runs `underling --database … [--schema …] ARGS…` with `input` on standard input.
    pub fn run_with_stdin(&self, args: &[&str], input: &[u8]) -> Run {
        use std::io::Write;
        let mut child = Command::new(env!("CARGO_BIN_EXE_underling"))
            .args(self.flags())
            .args(args)
            .current_dir(self.dir.path())
            .env_remove("UNDERLING_DATABASE_URL")
            .env_remove("UNDERLING_SCHEMA")
            .env_remove("UNDERLING_LOG")
            .env_remove("UNDERLING_POOL_SIZE")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run the underling binary");
        {
            let mut stdin = child.stdin.take().expect("stdin");
            stdin.write_all(input).expect("write stdin");
        }
        let output = child.wait_with_output().expect("wait for underling");
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Runs the binary with the database given only through the environment.
    pub fn run_with_env(&self, args: &[&str]) -> Run {
        let mut env = vec![("UNDERLING_DATABASE_URL", self.url.as_str())];
        if let Some(schema) = &self.schema {
            env.push(("UNDERLING_SCHEMA", schema.as_str()));
        }
        run_in(self.dir.path(), args, &env)
    }

    /// Standard output of a successful run.
    pub fn ok(&self, args: &[&str]) -> String {
        self.run(args).ok()
    }

    /// The JSON printed by a successful run with `--json` added.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        self.run(&all).json()
    }

    // -- setting up state through the library -------------------------------------------------

    /// Enqueues a job with empty arguments.
    pub async fn enqueue(&self, task: &str, opts: EnqueueOptions) -> i64 {
        self.queue()
            .enqueue(task, json!({}), opts)
            .await
            .expect("enqueue")
    }

    /// Enqueues `n` jobs of `task` in `queue`; returns their ids.
    pub async fn enqueue_many(&self, n: usize, queue: &str, task: &str) -> Vec<i64> {
        let jobs: Vec<NewJob> = (0..n)
            .map(|i| {
                NewJob::new(task, json!({ "i": i }), EnqueueOptions::new().queue(queue))
                    .expect("valid job")
            })
            .collect();
        self.queue().enqueue_batch(&jobs).await.expect("enqueue")
    }

    /// Registers a worker with this status; returns its id.
    pub async fn register_worker(&self, host: &str, pid: i32, status: Value) -> i64 {
        self.store()
            .register_worker(RegisterWorker {
                host,
                pid,
                status: &status,
                now: None,
            })
            .await
            .expect("register worker")
    }

    /// Makes these (ready, inactive) jobs active, claimed by a new worker.
    pub async fn activate(&self, ids: &[i64]) -> Vec<Job> {
        let worker = self.register_worker("test-host", 4242, json!({})).await;
        self.activate_by(worker, ids).await
    }

    /// Makes these (ready, inactive) jobs active, claimed by `worker`.
    pub async fn activate_by(&self, worker: i64, ids: &[i64]) -> Vec<Job> {
        let mut jobs = Vec::with_capacity(ids.len());
        for &id in ids {
            let job = self
                .store()
                .claim_by_id(ClaimById {
                    worker_id: worker,
                    id,
                    now: None,
                })
                .await
                .expect("claim")
                .unwrap_or_else(|| panic!("job {id} is not ready to claim"));
            jobs.push(job);
        }
        jobs
    }

    /// Claims and settles these jobs with `outcome`.
    pub async fn settle(&self, ids: &[i64], outcome: Outcome) {
        let jobs = self.activate(ids).await;
        let settles: Vec<Settle> = jobs
            .iter()
            .map(|job| Settle {
                id: job.id,
                retries: job.retries,
                outcome: outcome.clone(),
            })
            .collect();
        self.store()
            .cycle(Cycle {
                settles: &settles,
                claim: None,
                now: None,
            })
            .await
            .expect("settle");
    }

    /// Enqueues `n` jobs and finishes them; returns their ids.
    pub async fn finished(&self, n: usize, queue: &str, task: &str) -> Vec<i64> {
        let ids = self.enqueue_many(n, queue, task).await;
        self.settle(&ids, Outcome::Finished(json!({ "ok": true })))
            .await;
        ids
    }

    /// Enqueues `n` jobs (one attempt each) and fails them for good; returns their ids.
    pub async fn failed(&self, n: usize, queue: &str, task: &str) -> Vec<i64> {
        let ids = self.enqueue_many(n, queue, task).await;
        self.settle(
            &ids,
            Outcome::Failed {
                error: json!("boom"),
                retry_delay: std::time::Duration::ZERO,
            },
        )
        .await;
        ids
    }

    /// The job, which must exist.
    pub async fn job(&self, id: i64) -> Job {
        self.queue()
            .job(id)
            .await
            .expect("read job")
            .unwrap_or_else(|| panic!("job {id} should exist"))
    }

    /// How many jobs exist.
    pub async fn job_count(&self) -> u64 {
        self.queue()
            .list_jobs(&underling::JobFilter::default(), 0, 0)
            .await
            .expect("count jobs")
            .total
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some(schema) = self.schema.take() else {
            return;
        };
        let url = self.url.clone();
        // Drop is synchronous: drop the schema from a thread with its own runtime. This runs
        // when a test fails too.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                use sqlx::Connection;
                let mut conn = sqlx::PgConnection::connect(&url).await?;
                // The name comes from `unique`: letters, digits and underscores.
                let sql = format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE");
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .execute(&mut conn)
                    .await?;
                conn.close().await?;
                Ok::<(), sqlx::Error>(())
            })?;
            Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("warning: could not drop the test schema: {dropped:?}");
        }
    }
}

/// Defines each test twice, on SQLite and on PostgreSQL:
///
/// ```ignore
/// on_both! {
///     async fn enqueue_prints_the_new_id(db: migrated) { ... }
///     async fn migrate_says_what_it_applied(db: unmigrated) { ... }
/// }
/// ```
#[macro_export]
macro_rules! on_both {
    ($( $(#[$meta:meta])* async fn $name:ident($db:ident : $setup:ident) $body:block )*) => {
        mod sqlite {
            #[allow(unused_imports)]
            use super::*;
            $(
                $(#[$meta])*
                #[tokio::test]
                async fn $name() {
                    let $db = $crate::support::TestDb::$setup($crate::support::Kind::Sqlite)
                        .await
                        .expect("SQLite is always available");
                    $body
                }
            )*
        }
        mod postgres {
            #[allow(unused_imports)]
            use super::*;
            $(
                $(#[$meta])*
                #[tokio::test]
                async fn $name() {
                    let Some($db) =
                        $crate::support::TestDb::$setup($crate::support::Kind::Postgres).await
                    else {
                        return;
                    };
                    $body
                }
            )*
        }
    };
}
