//! HTTP workload dispatch against real local HTTP servers started by the tests, on SQLite and
//! PostgreSQL: sync answers (2xx, 4xx, 429 with Retry-After, 5xx, too slow, too large, no
//! server), async answers (202 then an ack through `underling serve`, 202 and silence until
//! the lease runs out), the CloudEvent sent, and per-workload concurrency.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use underling::{EnqueueOptions, Job, JobState, Queue, WorkloadMode, WorkloadSpec};
use underling_testkit::TestStore;
use underling_testkit::support as kit;
use underling_workload::{DispatchControl, DispatchOptions, DispatchSummary, Dispatcher};

/// How the fake workload answers one request.
#[derive(Debug, Clone)]
struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
    delay: Duration,
}

impl Reply {
    fn new(status: u16, body: impl Into<String>) -> Self {
        Reply {
            status,
            headers: Vec::new(),
            body: body.into(),
            delay: Duration::ZERO,
        }
    }
    fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
    fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

/// A request the fake workload received.
#[derive(Debug, Clone)]
struct Seen {
    at: Instant,
    headers: HeaderMap,
    event: Value,
}

type Answer = Box<dyn Fn(usize, &Value) -> Reply + Send + Sync>;

struct FakeState {
    seen: Mutex<Vec<Seen>>,
    current: AtomicUsize,
    max: AtomicUsize,
    answer: Answer,
}

/// A local HTTP server standing in for a workload: it records every request and how many
/// were open at once, and answers as told (given the request's number, from 0, and event).
struct Fake {
    url: String,
    state: Arc<FakeState>,
}

/// Counts a request as open until it ends (also when its connection is dropped).
struct Open<'a>(&'a AtomicUsize);

impl Drop for Open<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn handle(State(state): State<Arc<FakeState>>, headers: HeaderMap, body: Bytes) -> Response {
    let now = state.current.fetch_add(1, Ordering::SeqCst) + 1;
    let _open = Open(&state.current);
    state.max.fetch_max(now, Ordering::SeqCst);
    let event: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let n = {
        let mut seen = state.seen.lock().unwrap();
        seen.push(Seen {
            at: Instant::now(),
            headers,
            event: event.clone(),
        });
        seen.len() - 1
    };
    let reply = (state.answer)(n, &event);
    tokio::time::sleep(reply.delay).await;
    let mut response = (StatusCode::from_u16(reply.status).unwrap(), reply.body).into_response();
    for (name, value) in reply.headers {
        response.headers_mut().insert(name, value.parse().unwrap());
    }
    response
}

impl Fake {
    async fn start(answer: impl Fn(usize, &Value) -> Reply + Send + Sync + 'static) -> Fake {
        let state = Arc::new(FakeState {
            seen: Mutex::new(Vec::new()),
            current: AtomicUsize::new(0),
            max: AtomicUsize::new(0),
            answer: Box::new(answer),
        });
        let app = axum::Router::new()
            .route("/", axum::routing::post(handle))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Fake {
            url: format!("http://{addr}/"),
            state,
        }
    }

    fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }

    fn max_open(&self) -> usize {
        self.state.max.load(Ordering::SeqCst)
    }
}

/// A running dispatcher.
struct Running {
    control: DispatchControl,
    task: tokio::task::JoinHandle<Result<DispatchSummary, underling_workload::WorkloadError>>,
}

impl Running {
    async fn stop(self) -> DispatchSummary {
        self.control.stop();
        self.task.await.unwrap().unwrap()
    }
}

fn fast() -> DispatchOptions {
    DispatchOptions {
        poll_interval: Duration::from_millis(50),
        shutdown_grace: Duration::from_secs(2),
        host: "test-host".into(),
        ..DispatchOptions::default()
    }
}

fn env(var: &str) -> Option<String> {
    (var == "WORKLOAD_TOKEN").then(|| "s3cret".to_string())
}

fn start(queue: &Queue, specs: Vec<WorkloadSpec>) -> Running {
    let dispatcher = Dispatcher::with_env(queue.clone(), specs, fast(), env).unwrap();
    let control = dispatcher.control();
    Running {
        control,
        task: tokio::spawn(dispatcher.run()),
    }
}

fn sync(name: &str, url: &str) -> WorkloadSpec {
    WorkloadSpec::new(name, url)
}

async fn enqueue(queue: &Queue, task: &str, args: Value, attempts: i32) -> i64 {
    queue
        .enqueue(task, args, EnqueueOptions::new().attempts(attempts))
        .await
        .unwrap()
}

async fn wait_until(queue: &Queue, id: i64, what: &str, check: impl Fn(&Job) -> bool) -> Job {
    kit::wait_for(what, || async {
        let job = kit::job(queue, id).await;
        check(&job).then_some(job)
    })
    .await
}

/// A port nothing listens on.
async fn closed_port() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

macro_rules! on_both_backends {
    ($(async fn $name:ident($t:ident) $body:block)*) => {
        mod sqlite {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let $t: TestStore = underling_testkit::sqlite().await;
                    $body
                    $t.cleanup().await;
                }
            )*
        }
        mod postgres {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some($t) = underling_testkit::postgres().await else { return };
                    $body
                    $t.cleanup().await;
                }
            )*
        }
    };
}

on_both_backends! {
    async fn a_2xx_answer_finishes_the_job_with_the_json_body_as_its_result(t) {
        let fake = Fake::start(|_, event| Reply::new(200, json!({"doubled": event["data"]["n"].as_i64().unwrap() * 2}).to_string())).await;
        let id = enqueue(&t.queue, "math.double", json!({"n": 21}), 3).await;
        let running = start(&t.queue, vec![sync("math.double", &fake.url)]);
        let job = kit::wait_for_state(&t.queue, id, JobState::Finished).await;
        assert_eq!((job.result, job.retries), (Some(json!({"doubled": 42})), 0));
        let summary = running.stop().await;
        assert_eq!((summary.dispatched, summary.finished, summary.failed, summary.retried), (1, 1, 0, 0));
    }

    async fn a_body_that_is_not_json_is_stored_as_a_string(t) {
        let fake = Fake::start(|_, _| Reply::new(200, "all done")).await;
        let id = enqueue(&t.queue, "w", json!({}), 1).await;
        let running = start(&t.queue, vec![sync("w", &fake.url)]);
        let job = kit::wait_for_state(&t.queue, id, JobState::Finished).await;
        assert_eq!(job.result, Some(json!("all done")));
        running.stop().await;
    }

    async fn the_job_arrives_as_a_structured_cloudevent_with_the_workloads_headers(t) {
        let fake = Fake::start(|_, _| Reply::new(200, "")).await;
        let id = t.queue.enqueue("mail.send", json!({"to": "a@example.com"}),
            EnqueueOptions::new().notes(json!({"ticket": "OPS-7"}))).await.unwrap();
        let mut spec = sync("mail.send", &fake.url);
        spec.headers.insert("Authorization".into(), "Bearer ${WORKLOAD_TOKEN}".into());
        spec.headers.insert("X-Key".into(), "env:WORKLOAD_TOKEN".into());
        let running = start(&t.queue, vec![spec]);
        let job = kit::wait_for_state(&t.queue, id, JobState::Finished).await;
        assert_eq!(job.result, Some(Value::Null));
        running.stop().await;
        let seen = fake.seen();
        assert_eq!(seen.len(), 1);
        let headers = &seen[0].headers;
        assert_eq!(headers["content-type"], "application/cloudevents+json");
        assert_eq!(headers["authorization"], "Bearer s3cret");
        assert_eq!(headers["x-key"], "s3cret");
        let mut event = seen[0].event.clone();
        let time = event.as_object_mut().unwrap().remove("time").unwrap();
        assert!(chrono::DateTime::parse_from_rfc3339(time.as_str().unwrap()).is_ok(), "{time}");
        assert_eq!(event, json!({
            "specversion": "1.0",
            "id": format!("{id}-1"),
            "source": "underling://test-host/default",
            "type": "mail.send",
            "datacontenttype": "application/json",
            "data": {"to": "a@example.com"},
            "underlingjobid": id,
            "underlingqueue": "default",
            "underlingattempt": 1,
            "underlingnotes": "{\"ticket\":\"OPS-7\"}",
        }));
    }

    async fn the_workloads_scoped_token_is_sent_in_the_underling_token_header(t) {
        let fake = Fake::start(|_, _| Reply::new(200, "")).await;
        let id = enqueue(&t.queue, "w", json!({}), 1).await;
        let spec = WorkloadSpec { token_env: Some("WORKLOAD_TOKEN".into()), ..sync("w", &fake.url) };
        let running = start(&t.queue, vec![spec]);
        kit::wait_for_state(&t.queue, id, JobState::Finished).await;
        running.stop().await;
        let seen = fake.seen();
        assert_eq!(seen[0].headers["underling-token"], "s3cret");
    }

    async fn a_token_env_that_is_not_set_stops_the_dispatcher_before_it_starts(t) {
        let spec = WorkloadSpec { token_env: Some("NOT_SET".into()), ..sync("w", "http://127.0.0.1:1/") };
        let err = Dispatcher::with_env(t.queue.clone(), vec![spec], fast(), env).err().unwrap();
        assert_eq!(
            err.to_string(),
            "invalid option: workload \"w\": token_env needs the environment variable NOT_SET, which is not set"
        );
    }

    async fn a_workload_slower_than_its_timeout_fails_the_attempt_and_the_job_is_retried(t) {
        let fake = Fake::start(|_, _| Reply::new(200, "late").after(Duration::from_secs(3))).await;
        let id = enqueue(&t.queue, "w", json!({}), 2).await;
        let spec = WorkloadSpec { timeout: Duration::from_millis(300), ..sync("w", &fake.url) };
        let running = start(&t.queue, vec![spec]);
        let job = wait_until(&t.queue, id, "the first attempt to fail", |j| j.retries == 1).await;
        assert_eq!(job.state, JobState::Inactive);
        assert_eq!(job.result, Some(json!("workload timed out after 300ms")));
        running.control.stop_now();
        running.task.await.unwrap().unwrap();
    }

    async fn a_500_fails_the_attempt_and_the_job_is_retried_until_its_tries_run_out(t) {
        let fake = Fake::start(|_, _| Reply::new(500, "boom")).await;
        let id = enqueue(&t.queue, "w", json!({}), 2).await;
        let running = start(&t.queue, vec![sync("w", &fake.url)]);
        let job = kit::wait_for_state(&t.queue, id, JobState::Failed).await;
        assert_eq!((job.retries, job.result), (1, Some(json!("workload answered 500 Internal Server Error: boom"))));
        assert_eq!(fake.seen().len(), 2);
        let summary = running.stop().await;
        assert_eq!((summary.dispatched, summary.retried, summary.failed), (2, 1, 1));
    }

    async fn a_429_with_retry_after_is_retried_after_that_delay(t) {
        let fake = Fake::start(|n, _| match n {
            0 => Reply::new(429, "slow down").header("retry-after", "3"),
            _ => Reply::new(200, "\"ok\""),
        }).await;
        let id = enqueue(&t.queue, "w", json!({}), 2).await;
        let running = start(&t.queue, vec![sync("w", &fake.url)]);
        let retried = wait_until(&t.queue, id, "the first attempt to fail", |j| j.retries == 1).await;
        assert_eq!(retried.result, Some(json!("workload answered 429 Too Many Requests: slow down")));
        let wait = (retried.delayed - retried.finished.unwrap()).num_milliseconds();
        assert!((2_990..=3_010).contains(&wait), "delayed {wait} ms after the attempt ended");
        let job = kit::wait_for_state(&t.queue, id, JobState::Finished).await;
        assert_eq!(job.result, Some(json!("ok")));
        let seen = fake.seen();
        let apart = seen[1].at - seen[0].at;
        assert!(apart >= Duration::from_secs(3), "the retry came {apart:?} after the first try");
        running.stop().await;
    }

    async fn a_4xx_fails_the_job_without_retry(t) {
        let fake = Fake::start(|_, _| Reply::new(422, "{\"error\": \"no such user\"}")).await;
        let id = enqueue(&t.queue, "w", json!({}), 5).await;
        let running = start(&t.queue, vec![sync("w", &fake.url)]);
        let job = kit::wait_for_state(&t.queue, id, JobState::Failed).await;
        assert_eq!(job.result, Some(json!("workload answered 422 Unprocessable Entity: {\"error\": \"no such user\"}")));
        assert_eq!((job.retries, job.attempts), (0, 1), "failed for good on the first try");
        assert_eq!(fake.seen().len(), 1);
        running.stop().await;
    }

    async fn a_refused_connection_fails_the_attempt_and_the_job_is_retried(t) {
        let url = format!("http://127.0.0.1:{}/", closed_port().await);
        let id = enqueue(&t.queue, "w", json!({}), 2).await;
        let running = start(&t.queue, vec![sync("w", &url)]);
        let job = wait_until(&t.queue, id, "the first attempt to fail", |j| j.retries == 1).await;
        assert_eq!(job.state, JobState::Inactive);
        assert_eq!(job.result, Some(json!("could not connect to the workload: Connection refused (os error 111)")));
        running.stop().await;
    }

    async fn a_response_larger_than_the_cap_fails_the_attempt(t) {
        let fake = Fake::start(|_, _| Reply::new(200, "x".repeat(2_000))).await;
        let id = enqueue(&t.queue, "w", json!({}), 1).await;
        let spec = WorkloadSpec { max_response_bytes: 1_000, ..sync("w", &fake.url) };
        let running = start(&t.queue, vec![spec]);
        let job = kit::wait_for_state(&t.queue, id, JobState::Failed).await;
        assert_eq!(job.result, Some(json!("the workload's response is larger than 1000 bytes (max_response_bytes)")));
        running.stop().await;
    }

    async fn an_async_workload_answers_202_and_its_later_ack_finishes_the_job(t) {
        let server = underling_server::Server::bind(t.queue.clone(), underling_server::ServerOptions {
            listen: "127.0.0.1:0".parse().unwrap(),
            ..underling_server::ServerOptions::default()
        }).await.unwrap();
        let api = format!("http://{}", server.local_addr().unwrap());
        let (stop_server, stopped) = tokio::sync::oneshot::channel::<()>();
        let serving = tokio::spawn(server.run(async move { let _ = stopped.await; }));
        let fake = Fake::start(move |_, event| {
            let ack = format!("{api}/api/v1/jobs/{}/ack", event["underlingjobid"]);
            let body = json!({"token": event["underlingtoken"], "result": {"later": event["data"]}});
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(200)).await;
                let answer = reqwest::Client::new().post(ack).json(&body).send().await.unwrap();
                assert_eq!(answer.status(), 200);
            });
            Reply::new(202, "")
        }).await;
        let id = enqueue(&t.queue, "w", json!({"n": 1}), 1).await;
        let spec = WorkloadSpec { mode: WorkloadMode::Async, ..sync("w", &fake.url) };
        let running = start(&t.queue, vec![spec]);
        let leased = wait_until(&t.queue, id, "the workload to take the job", |j| j.state == JobState::Active).await;
        assert_eq!(leased.worker_id, None, "held by its lease, not by a worker");
        let job = kit::wait_for_state(&t.queue, id, JobState::Finished).await;
        assert_eq!(job.result, Some(json!({"later": {"n": 1}})));
        let event = &fake.seen()[0].event;
        assert_eq!(event["underlingtoken"], json!(format!("{id}.0")));
        assert!(event["underlingleaseexpires"].is_string(), "{event}");
        let summary = running.stop().await;
        assert_eq!((summary.dispatched, summary.accepted, summary.finished), (1, 1, 0));
        let _ = stop_server.send(());
        serving.await.unwrap().unwrap();
    }

    async fn an_async_job_never_reported_fails_when_its_lease_runs_out_and_is_retried(t) {
        let fake = Fake::start(|_, _| Reply::new(202, "")).await;
        let id = enqueue(&t.queue, "w", json!({}), 2).await;
        let spec = WorkloadSpec {
            mode: WorkloadMode::Async,
            timeout: Duration::from_millis(500),
            lease: Some(Duration::from_secs(1)),
            ..sync("w", &fake.url)
        };
        let running = start(&t.queue, vec![spec]);
        let job = kit::wait_for_state(&t.queue, id, JobState::Failed).await;
        assert_eq!((job.retries, job.result), (1, Some(json!("Lease expired"))));
        let ids: Vec<Value> = fake.seen().iter().map(|s| s.event["id"].clone()).collect();
        assert_eq!(ids, [json!(format!("{id}-1")), json!(format!("{id}-2"))]);
        running.stop().await;
    }

    async fn a_workload_never_gets_more_requests_at_once_than_its_max_concurrency(t) {
        let fake = Fake::start(|_, _| Reply::new(200, "1").after(Duration::from_millis(100))).await;
        let mut ids = Vec::new();
        for _ in 0..12 {
            ids.push(enqueue(&t.queue, "w", json!({}), 1).await);
        }
        let spec = WorkloadSpec { max_concurrency: 3, ..sync("w", &fake.url) };
        let running = start(&t.queue, vec![spec]);
        for id in ids {
            kit::wait_for_state(&t.queue, id, JobState::Finished).await;
        }
        assert_eq!(fake.max_open(), 3);
        assert_eq!(fake.seen().len(), 12);
        running.stop().await;
    }
}
