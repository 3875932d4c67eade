//! The harness of the HTTP tests: a server on an ephemeral port over a fresh store (SQLite in
//! memory, or a fresh PostgreSQL schema: skipped loudly outside CI when PostgreSQL is not
//! reachable, a failure under CI), and a real HTTP client.

#![allow(dead_code)]

use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::Value;
use underling::{LockInfo, Queue, QueueInfo, Stats};
use underling_server::{Server, ServerOptions};
use underling_testkit::TestStore;

/// Which database a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// SQLite in memory.
    Sqlite,
    /// A fresh schema on the PostgreSQL test server.
    Postgres,
}

/// A running server over a fresh store.
pub struct TestServer {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// The HTTP client.
    pub client: reqwest::Client,
    /// The token sent with every request made through [`TestServer::request`], if any.
    pub token: Option<String>,
    /// The store the server works on.
    pub store: TestStore,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), underling_server::ServerError>>,
}

/// Opens a fresh store of `kind` (`None`: PostgreSQL skipped outside CI).
pub async fn open(kind: Kind) -> Option<TestStore> {
    match kind {
        Kind::Sqlite => Some(underling_testkit::sqlite().await),
        Kind::Postgres => underling_testkit::postgres().await,
    }
}

impl TestServer {
    /// A server with default options (no token) on an ephemeral loopback port.
    pub async fn start(kind: Kind) -> Option<TestServer> {
        Self::start_with(kind, ServerOptions::default()).await
    }

    /// A server with `options` (its port replaced by an ephemeral one).
    pub async fn start_with(kind: Kind, options: ServerOptions) -> Option<TestServer> {
        let store = open(kind).await?;
        let token = options.token.clone();
        let options = ServerOptions {
            listen: "127.0.0.1:0".parse().expect("address"),
            ..options
        };
        let server = Server::bind(store.queue.clone(), options)
            .await
            .expect("the server binds");
        let addr = server.local_addr().expect("bound");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(server.run(async move {
            let _ = stopped.await;
        }));
        Some(TestServer {
            url: format!("http://{addr}"),
            client: reqwest::Client::new(),
            token,
            store,
            stop,
            task,
        })
    }

    /// The queue the server works on.
    pub fn queue(&self) -> &Queue {
        &self.store.queue
    }

    /// A request to `path` (from the root, e.g. `/api/v1/jobs`), with the token if any.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let builder = self.client.request(method, format!("{}{path}", self.url));
        match &self.token {
            Some(token) => builder.bearer_auth(token),
            None => builder,
        }
    }

    /// `GET /api/v1{path}` answered 200; its JSON.
    pub async fn get_ok(&self, path: &str) -> Value {
        let (status, body) = send(self.request(Method::GET, &format!("/api/v1{path}"))).await;
        assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
        body
    }

    /// `POST /api/v1{path}` with a JSON body; the status and JSON.
    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        send(
            self.request(Method::POST, &format!("/api/v1{path}"))
                .json(&body),
        )
        .await
    }

    /// `DELETE /api/v1{path}`; the status and JSON.
    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        send(self.request(Method::DELETE, &format!("/api/v1{path}"))).await
    }

    /// `GET /api/v1{path}`; the status and JSON.
    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        send(self.request(Method::GET, &format!("/api/v1{path}"))).await
    }

    /// Everything a request could have written: stats (jobs per state, locks, workers), the
    /// queues with their pause flags, the locks, and every job.
    pub async fn snapshot(&self) -> Snapshot {
        let queue = self.queue();
        let jobs = queue
            .list_jobs(&underling::JobFilter::default(), 100_000, 0)
            .await
            .expect("list");
        // The database server's uptime ticks by itself.
        let stats = Stats {
            uptime: None,
            ..queue.stats().await.expect("stats")
        };
        Snapshot {
            stats,
            queues: queue.queues().await.expect("queues"),
            locks: queue.locks(&[]).await.expect("locks"),
            jobs: serde_json::to_value(&jobs).expect("json"),
        }
    }

    /// Stops the server and cleans up the store.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let result = self.task.await.expect("the server task ends");
        result.expect("the server stops cleanly");
        self.store.cleanup().await;
    }
}

/// What [`TestServer::snapshot`] reads.
#[derive(Debug, PartialEq)]
pub struct Snapshot {
    /// Counts.
    pub stats: Stats,
    /// Queues and pause flags.
    pub queues: Vec<QueueInfo>,
    /// Lock holds.
    pub locks: Vec<LockInfo>,
    /// Every job, as JSON.
    pub jobs: Value,
}

/// Sends a request; the status and the body as JSON (panics when it is not JSON).
pub async fn send(request: RequestBuilder) -> (StatusCode, Value) {
    let response = request.send().await.expect("the request is answered");
    let status = response.status();
    let text = response.text().await.expect("a body");
    let body = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("not JSON ({e}), status {status}: {text:?}"));
    (status, body)
}

/// Asserts an error response: `status`, the JSON error shape, `code`; returns the message.
pub fn assert_error(status: StatusCode, body: &Value, expected: StatusCode, code: &str) -> String {
    assert_eq!(status, expected, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    let message = body["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("no error message in {body}"));
    assert!(!message.is_empty());
    assert_eq!(
        body.as_object().map(|o| o.len()),
        Some(1),
        "only `error`: {body}"
    );
    message.to_string()
}

/// Defines each test twice, in modules `sqlite` and `postgres`, each with a fresh server
/// (`$s`) over its backend, stopped (and its store dropped) after a successful run.
#[macro_export]
macro_rules! on_both_backends {
    ($(async fn $name:ident($s:ident) $body:block)*) => {
        mod sqlite {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let $s = support::TestServer::start(support::Kind::Sqlite)
                        .await
                        .expect("SQLite always opens");
                    $body
                    $s.stop().await;
                }
            )*
        }
        mod postgres {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some($s) = support::TestServer::start(support::Kind::Postgres).await else {
                        return;
                    };
                    $body
                    $s.stop().await;
                }
            )*
        }
    };
}
