//! The harness of the multi-process tests: a fresh schema per test, worker processes, waits,
//! the record file of `example.record`, and a TCP proxy that can freeze a connection.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use underling::{ConnectOptions, Queue};

/// The chaos run's TCP proxy, which can freeze and cut connections.
pub mod proxy {
    #[allow(unused_imports)]
    pub use underling_chaos::proxy::Proxy;
}

pub const WORKER: &str = env!("CARGO_BIN_EXE_underling-worker");

// ---------------------------------------------------------------------------------------------
// Harness

pub fn postgres_url() -> String {
    std::env::var("UNDERLING_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

/// A fresh schema, migrated, with a scratch directory for logs and record files.
pub struct TestDb {
    pub queue: Queue,
    pub url: String,
    pub schema: String,
    pub dir: PathBuf,
}

impl TestDb {
    /// A fresh schema, or `None` (with a loud message) when PostgreSQL is unreachable outside CI.
    pub async fn new(name: &str) -> Option<TestDb> {
        let url = postgres_url();
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let schema = format!("p_{name}_{}_{nanos}", std::process::id());
        let opts = ConnectOptions::new(&url)
            .schema(&schema)
            .max_connections(4)
            .migrate(true);
        let queue = match Queue::connect_with(opts).await {
            Ok(queue) => queue,
            Err(e) => {
                if std::env::var_os("CI").is_some() {
                    panic!("PostgreSQL is required in CI but {url} failed: {e}");
                }
                eprintln!(
                    "\n!!!! SKIPPING the multi-process test {name}: {url} is not reachable ({e}).\n\
                     !!!! Start PostgreSQL or set UNDERLING_TEST_DATABASE_URL to run it.\n"
                );
                return None;
            }
        };
        let dir = std::env::temp_dir().join(&schema);
        std::fs::create_dir_all(&dir).expect("create the scratch directory");
        Some(TestDb {
            queue,
            url,
            schema,
            dir,
        })
    }

    /// A worker process on this schema with the arguments given; its stderr goes to a log.
    pub fn spawn_worker(&self, name: &str, args: &[&str]) -> Child {
        self.spawn_worker_at(&self.url, name, args)
    }

    /// A worker process on this schema that connects to `url` (the same database, through a
    /// proxy).
    pub fn spawn_worker_at(&self, url: &str, name: &str, args: &[&str]) -> Child {
        let log = std::fs::File::create(self.dir.join(format!("{name}.log"))).expect("create log");
        Command::new(WORKER)
            .args(["--database", url, "--schema", &self.schema])
            .args(args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start underling-worker")
    }

    /// The database's host:port, for a proxy in front of it.
    pub fn upstream(&self) -> String {
        let url = url::Url::parse(&self.url).expect("the test database URL");
        format!(
            "{}:{}",
            url.host_str().unwrap_or("127.0.0.1"),
            url.port().unwrap_or(5432)
        )
    }

    /// The database's URL with 127.0.0.1:`port` in place of its host and port: through a
    /// proxy listening there, or nothing at all.
    pub fn url_at_port(&self, port: u16) -> String {
        let mut url = url::Url::parse(&self.url).expect("the test database URL");
        url.set_host(Some("127.0.0.1")).expect("a host");
        url.set_port(Some(port)).expect("a port");
        url.to_string()
    }

    /// The text of one worker's log.
    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(format!("{name}.log"))).unwrap_or_default()
    }

    /// The worker binary, run to its end on this schema.
    pub fn run_worker(&self, args: &[&str]) -> std::process::Output {
        Command::new(WORKER)
            .args(["--database", &self.url, "--schema", &self.schema])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run underling-worker")
    }

    /// The worker logs, for a failure message.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        paths.sort();
        for path in paths
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "log"))
        {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(30).collect();
            out.push_str(&format!("--- {} (last lines)\n", path.display()));
            for line in tail.into_iter().rev() {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }

    /// Drops the schema and the scratch directory.
    pub async fn cleanup(self) {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&self.url)
            .await
            .expect("connect to drop the test schema");
        // The name comes from `TestDb::new`: letters, digits and underscores.
        let sql = format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.schema);
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut conn)
            .await
            .expect("drop test schema");
        let _ = conn.close().await;
        self.queue.close().await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Worker processes that are SIGKILLed if a test ends (or panics) with them still running.
#[derive(Default)]
pub struct Workers(pub Vec<Child>);

impl Drop for Workers {
    fn drop(&mut self) {
        for child in &mut self.0 {
            if matches!(child.try_wait(), Ok(None)) {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

pub fn signal(child: &Child, signal: libc::c_int) {
    let pid = libc::pid_t::try_from(child.id()).expect("pid fits pid_t");
    // SAFETY: kill(2) with a pid of our own child process and a valid signal number.
    let rc = unsafe { libc::kill(pid, signal) };
    assert_eq!(rc, 0, "kill({pid}, {signal}) failed");
}

/// Waits for a process to exit, up to `limit`.
pub async fn wait_exit(child: &mut Child, limit: Duration) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "worker {} did not exit within {limit:?}",
            child.id()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until `check` returns `Some`, polling every `every`, up to `limit`.
pub async fn wait_for<T, F, Fut>(what: &str, limit: Duration, every: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(every).await;
    }
}

pub fn micros_now() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_micros()
}

// ---------------------------------------------------------------------------------------------
// The record file written by `example.record`: `start|end <job> <pid> <micros>` lines.

pub use underling_chaos::record::Execution;

/// Every execution of every job, by job id, in file order (the chaos run's reader).
pub fn executions(path: &Path) -> BTreeMap<i64, Vec<Execution>> {
    underling_chaos::record::executions(path).expect("a well-formed record file")
}
