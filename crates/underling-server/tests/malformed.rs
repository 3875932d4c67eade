//! Malformed requests: bad JSON, wrong types, unknown fields, bad ids, hostile strings, huge
//! bodies, unknown routes and methods. Each gets a 4xx JSON error with the expected code, and
//! writes nothing (jobs, queues, locks, workers and counts are the same after it).

mod support;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use underling_server::ServerOptions;
use underling_testkit::support as kit;

use support::{Kind, TestServer};

/// The body of a case.
enum Body {
    /// None at all.
    None,
    /// JSON, sent with `Content-Type: application/json`.
    Json(Value),
    /// Raw bytes with this content type (or none).
    Raw(Vec<u8>, Option<&'static str>),
}

/// One malformed request and the error it must get.
struct Case {
    method: Method,
    path: String,
    body: Body,
    status: u16,
    code: &'static str,
}

fn case(
    method: Method,
    path: impl Into<String>,
    body: Body,
    status: u16,
    code: &'static str,
) -> Case {
    Case {
        method,
        path: path.into(),
        body,
        status,
        code,
    }
}

/// The body limit of the server these cases run on.
const LIMIT: usize = 64 * 1024;

/// Every case; `job` is an existing job's id and `worker` an existing worker's.
fn cases(job: i64, worker: i64) -> Vec<Case> {
    use Body::{Json as J, Raw};
    let post = Method::POST;
    let get = Method::GET;
    let raw = |text: &str| Raw(text.as_bytes().to_vec(), Some("application/json"));
    let long = "x".repeat(2000);
    let job_path = |rest: &str| format!("/api/v1/jobs/{job}{rest}");
    vec![
        // POST /jobs: syntax, media type, types, fields.
        case(post.clone(), "/api/v1/jobs", raw("{"), 400, "invalid_json"),
        case(
            post.clone(),
            "/api/v1/jobs",
            raw("{\"task\": \"t\""),
            400,
            "invalid_json",
        ),
        case(post.clone(), "/api/v1/jobs", raw(""), 400, "invalid_json"),
        case(
            post.clone(),
            "/api/v1/jobs",
            raw("{'task': 't'}"),
            400,
            "invalid_json",
        ),
        case(
            post.clone(),
            "/api/v1/jobs",
            Raw(vec![b'{', 0xff, 0xfe, b'}'], Some("application/json")),
            400,
            "invalid_json",
        ),
        case(
            post.clone(),
            "/api/v1/jobs",
            Raw(br#"{"task":"t"}"#.to_vec(), None),
            415,
            "unsupported_media_type",
        ),
        case(
            post.clone(),
            "/api/v1/jobs",
            Raw(br#"{"task":"t"}"#.to_vec(), Some("text/plain")),
            415,
            "unsupported_media_type",
        ),
        case(
            post.clone(),
            "/api/v1/jobs",
            J(json!({"task": 5})),
            422,
            "invalid_body",
        ),
        case(
            post.clone(),
            "/api/v1/jobs",
            J(json!({})),
            422,
            "invalid_body",
        ),
        case(
            post.clone(),
            "/api/v1/jobs",
            J(json!("task")),
            422,
            "invalid_body",
        ),
        case(
            post.clone(),
            "/api/v1/jobs",
            J(json!(null)),
            422,
            "invalid_body",
        ),
        case(
            post.clone(),
            "/api/v1/jobs",
            J(json!({"task": "t", "priority": "high"})),
            422,
            "invalid_body",
        ),
        case(
            post.clone(),
            "/api/v1/jobs",
            J(json!({"task": "t", "priority": 2_147_483_648_i64})),
            422,
            "invalid_body",
        ),
        case(
            post.clone(),
            "/api/v1/jobs",
            J(json!({"task": "t", "priority": 1.5})),
            422,
            "invalid_body",
        ),
        case(
            post.clone(),
            "/api/v1/jobs",
            J(json!({"task": "t", "attempts": 0})),
            422,
            "invalid_option",
        ),
        case(
            post.clone(),
            "/api/v1/jobs",
            J(json!({"task": "t", "attempts": -3})),
            422,
            "invalid_option",
        ),
        case(
            post.clone(),
            "/api/v1/jobs",
            J(json!({"task": "t", "tsk": 1})),
            422,
            "invalid_body",
        ),
        case(
            post.clone(),
            "/api/v1/jobs",
            J(json!({"task": "t", "parents": ["a"]})),
            422,
            "invalid_body",
        ),
        case(
            post.clone(),
            "/api/v1/jobs",
            J(json!({"task": "t", "parents": [999_999]})),
            422,
            "parent_not_found",
        ),
        case(
            post.clone(),
            "/api/v1/jobs",
            J(json!({"task": "t", "lax": "yes"})),
            422,
            "invalid_body",
        ),
        case(
            post.clone(),
            "/api/v1/jobs",
            J(json!({"task": ""})),
            422,
            "invalid_task",
        ),
        case(
            post.clone(),
            "/api/v1/jobs",
            J(json!({"task": " t "})),
            422,
            "invalid_task",
        ),
        case(
            post.clone(),
            "/api/v1/jobs",
            J(json!({"task": "a\u{0}b"})),
            422,
            "invalid_task",
        ),
        case(
            post.clone(),
            "/api/v1/jobs",
            J(json!({"task": long})),
            422,
            "too_long",
        ),
        case(
            post.clone(),
            "/api/v1/jobs",
            J(json!({"task": "t", "queue": "q\u{0}"})),
            422,
            "invalid_queue",
        ),
        case(
            post.clone(),
            "/api/v1/jobs",
            J(json!({"task": "t", "queue": ""})),
            422,
            "invalid_queue",
        ),
        case(
            post.clone(),
            "/api/v1/jobs",
            J(json!({"task": "t", "queue": "q".repeat(5000)})),
            422,
            "too_long",
        ),
        case(
            post.clone(),
            "/api/v1/jobs",
            J(json!({"task": "t", "args": {"k": "v\u{0}"}})),
            422,
            "invalid_args",
        ),
        case(
            post.clone(),
            "/api/v1/jobs",
            J(json!({"task": "t", "notes": [1]})),
            422,
            "invalid_notes",
        ),
        case(
            post.clone(),
            "/api/v1/jobs",
            J(json!({"task": "t", "notes": {"k\u{0}": 1}})),
            422,
            "invalid_notes",
        ),
        case(
            post.clone(),
            "/api/v1/jobs",
            J(json!({"task": "t", "delay": "soon"})),
            422,
            "invalid_duration",
        ),
        case(
            post.clone(),
            "/api/v1/jobs",
            J(json!({"task": "t", "delay": -5})),
            422,
            "invalid_duration",
        ),
        case(
            post.clone(),
            "/api/v1/jobs",
            J(json!({"task": "t", "delay": "1000y"})),
            422,
            "invalid_option",
        ),
        case(
            post.clone(),
            "/api/v1/jobs",
            J(json!({"task": "t", "expire": [1]})),
            422,
            "invalid_body",
        ),
        case(
            post.clone(),
            "/api/v1/jobs",
            J(json!({"task": "t", "delay": "1s", "run_at": "2030-01-01T00:00:00Z"})),
            422,
            "invalid_option",
        ),
        case(
            post.clone(),
            "/api/v1/jobs",
            J(json!({"task": "t", "run_at": "tomorrow"})),
            422,
            "invalid_body",
        ),
        case(
            post.clone(),
            "/api/v1/jobs",
            J(json!({"task": "t", "args": "x".repeat(LIMIT)})),
            413,
            "payload_too_large",
        ),
        // POST /jobs/batch: all or nothing.
        case(
            post.clone(),
            "/api/v1/jobs/batch",
            J(json!({"task": "t"})),
            422,
            "invalid_body",
        ),
        case(
            post.clone(),
            "/api/v1/jobs/batch",
            J(json!([{"task": "t"}, {"task": ""}])),
            422,
            "invalid_task",
        ),
        case(
            post.clone(),
            "/api/v1/jobs/batch",
            J(json!([{"task": "t"}, {"task": "t", "parents": [999_999]}])),
            422,
            "parent_not_found",
        ),
        case(
            post.clone(),
            "/api/v1/jobs/batch",
            J(json!([{"task": "t"}, 5])),
            422,
            "invalid_body",
        ),
        case(
            post.clone(),
            "/api/v1/jobs/batch",
            raw("[{\"task\": \"t\"},"),
            400,
            "invalid_json",
        ),
        case(
            post.clone(),
            "/api/v1/jobs/batch",
            J(json!(vec![
                json!({"task": "t", "args": "x".repeat(100)});
                1000
            ])),
            413,
            "payload_too_large",
        ),
        // Ids in paths.
        case(
            get.clone(),
            "/api/v1/jobs/abc",
            Body::None,
            400,
            "invalid_path",
        ),
        case(
            get.clone(),
            "/api/v1/jobs/1.5",
            Body::None,
            400,
            "invalid_path",
        ),
        case(
            get.clone(),
            "/api/v1/jobs/99999999999999999999",
            Body::None,
            400,
            "invalid_path",
        ),
        case(get.clone(), "/api/v1/jobs/-1", Body::None, 404, "not_found"),
        case(
            Method::DELETE,
            "/api/v1/jobs/abc",
            Body::None,
            400,
            "invalid_path",
        ),
        case(
            post.clone(),
            "/api/v1/jobs/abc/retry",
            J(json!({})),
            400,
            "invalid_path",
        ),
        case(
            post.clone(),
            "/api/v1/workers/abc/commands",
            J(json!({"command": "pause"})),
            400,
            "invalid_path",
        ),
        // GET /jobs filters.
        case(
            get.clone(),
            "/api/v1/jobs?state=bogus",
            Body::None,
            422,
            "unknown_state",
        ),
        case(
            get.clone(),
            "/api/v1/jobs?limit=0",
            Body::None,
            400,
            "invalid_query",
        ),
        case(
            get.clone(),
            "/api/v1/jobs?limit=abc",
            Body::None,
            400,
            "invalid_query",
        ),
        case(
            get.clone(),
            "/api/v1/jobs?limit=-1",
            Body::None,
            400,
            "invalid_query",
        ),
        case(
            get.clone(),
            "/api/v1/jobs?before=x",
            Body::None,
            400,
            "invalid_query",
        ),
        case(
            get.clone(),
            "/api/v1/jobs?finished_before=yesterday",
            Body::None,
            400,
            "invalid_query",
        ),
        case(
            get.clone(),
            "/api/v1/jobs?queue=%00",
            Body::None,
            422,
            "invalid_option",
        ),
        case(
            get.clone(),
            "/api/v1/jobs?id=1,x",
            Body::None,
            400,
            "invalid_query",
        ),
        case(
            get.clone(),
            format!("/api/v1/jobs?task={}", "t".repeat(2000)),
            Body::None,
            422,
            "too_long",
        ),
        case(
            get.clone(),
            "/api/v1/jobs?sort=id",
            Body::None,
            400,
            "invalid_query",
        ),
        // The long poll.
        case(
            get.clone(),
            job_path("/wait?timeout=forever"),
            Body::None,
            422,
            "invalid_duration",
        ),
        case(
            get.clone(),
            job_path("/wait?timeout=1s&extra=1"),
            Body::None,
            400,
            "invalid_query",
        ),
        // Retry, notes.
        case(
            post.clone(),
            job_path("/retry"),
            J(json!({"attempts": 0})),
            422,
            "invalid_option",
        ),
        case(
            post.clone(),
            job_path("/retry"),
            J(json!({"queue": ""})),
            422,
            "invalid_queue",
        ),
        case(
            post.clone(),
            job_path("/retry"),
            J(json!({"prio": 1})),
            422,
            "invalid_body",
        ),
        case(
            post.clone(),
            job_path("/retry"),
            raw("not json"),
            400,
            "invalid_json",
        ),
        case(
            post.clone(),
            job_path("/retry"),
            J(json!({"delay": "soon"})),
            422,
            "invalid_duration",
        ),
        case(
            post.clone(),
            job_path("/notes"),
            J(json!([1])),
            422,
            "invalid_notes",
        ),
        case(
            post.clone(),
            job_path("/notes"),
            J(json!({"k": "\u{0}"})),
            422,
            "invalid_notes",
        ),
        case(
            post.clone(),
            job_path("/notes"),
            raw("{\"k\":"),
            400,
            "invalid_json",
        ),
        // Bulk retry and remove.
        case(
            post.clone(),
            "/api/v1/jobs/retry",
            J(json!({"states": ["bogus"]})),
            422,
            "unknown_state",
        ),
        case(
            post.clone(),
            "/api/v1/jobs/retry",
            J(json!({"queues": ["a\u{0}"]})),
            422,
            "invalid_option",
        ),
        case(
            post.clone(),
            "/api/v1/jobs/retry",
            J(json!({"ids": "1"})),
            422,
            "invalid_body",
        ),
        case(
            post.clone(),
            "/api/v1/jobs/retry",
            J(json!({"al": true})),
            422,
            "invalid_body",
        ),
        case(
            post.clone(),
            "/api/v1/jobs/retry",
            J(json!({})),
            422,
            "empty_filter",
        ),
        case(
            post.clone(),
            "/api/v1/jobs/remove",
            J(json!({})),
            422,
            "empty_filter",
        ),
        case(
            post.clone(),
            "/api/v1/jobs/remove",
            J(json!({"all": false})),
            422,
            "empty_filter",
        ),
        case(
            post.clone(),
            "/api/v1/jobs/remove",
            J(json!({"states": ["active"]})),
            422,
            "job_active",
        ),
        case(
            post.clone(),
            "/api/v1/jobs/remove",
            J(json!({"finished_before": "last week"})),
            422,
            "invalid_body",
        ),
        // Queues.
        case(
            post.clone(),
            "/api/v1/queues/%20q%20/pause",
            Body::None,
            422,
            "invalid_queue",
        ),
        case(
            post.clone(),
            "/api/v1/queues/a%00b/resume",
            Body::None,
            422,
            "invalid_queue",
        ),
        // Workers.
        case(
            post.clone(),
            "/api/v1/workers/commands",
            J(json!({"command": "jobs", "args": ["x"]})),
            422,
            "invalid_command",
        ),
        case(
            post.clone(),
            "/api/v1/workers/commands",
            J(json!({"command": "stop"})),
            422,
            "invalid_command",
        ),
        case(
            post.clone(),
            "/api/v1/workers/commands",
            J(json!({"command": "reboot"})),
            422,
            "invalid_command",
        ),
        case(
            post.clone(),
            "/api/v1/workers/commands",
            J(json!({"command": "pause", "ids": [worker, 999_999]})),
            404,
            "not_found",
        ),
        case(
            post.clone(),
            format!("/api/v1/workers/{worker}/commands"),
            J(json!({"cmd": "pause"})),
            422,
            "invalid_body",
        ),
        case(
            post.clone(),
            "/api/v1/workers/999999/commands",
            J(json!({"command": "pause"})),
            404,
            "not_found",
        ),
        // Locks.
        case(
            post.clone(),
            "/api/v1/locks/x",
            J(json!({"duration": "soon"})),
            422,
            "invalid_duration",
        ),
        case(
            post.clone(),
            "/api/v1/locks/x",
            J(json!({"duration": "1m", "limit": 0})),
            422,
            "invalid_option",
        ),
        case(
            post.clone(),
            "/api/v1/locks/x",
            J(json!({"duration": "1m", "limit": -1})),
            422,
            "invalid_body",
        ),
        case(
            post.clone(),
            "/api/v1/locks/x",
            J(json!({})),
            422,
            "invalid_body",
        ),
        case(
            post.clone(),
            "/api/v1/locks/a%00b",
            J(json!({"duration": "1m"})),
            422,
            "invalid_option",
        ),
        case(
            Method::DELETE,
            "/api/v1/locks/a%00b",
            Body::None,
            422,
            "invalid_option",
        ),
        case(
            get.clone(),
            "/api/v1/locks?nam=x",
            Body::None,
            400,
            "invalid_query",
        ),
        // Routes and methods.
        case(get.clone(), "/api/v1/nothing", Body::None, 404, "no_route"),
        case(get.clone(), "/api/v2/jobs", Body::None, 404, "no_route"),
        case(
            Method::PUT,
            "/api/v1/jobs",
            J(json!({"task": "t"})),
            405,
            "method_not_allowed",
        ),
        case(
            Method::PATCH,
            job_path(""),
            J(json!({"priority": 1})),
            405,
            "method_not_allowed",
        ),
        case(
            get.clone(),
            "/api/v1/jobs/retry",
            Body::None,
            405,
            "method_not_allowed",
        ),
    ]
}

/// Words that must never appear in an error message.
const LEAKS: [&str; 6] = [
    "SELECT ",
    "INSERT ",
    "UPDATE ",
    "postgres://",
    "panicked",
    "sqlx",
];

async fn every_malformed_request_gets_a_json_error_and_writes_nothing(kind: Kind) {
    let options = ServerOptions {
        body_limit: LIMIT,
        ..ServerOptions::default()
    };
    let Some(s) = TestServer::start_with(kind, options).await else {
        return;
    };
    let job = kit::enqueue(s.queue(), "seed").await;
    let worker = kit::worker(&s.store).await;
    let cases = cases(job, worker);
    assert!(cases.len() >= 50, "{} cases", cases.len());
    let mut failures = Vec::new();
    for c in &cases {
        let before = s.snapshot().await;
        let mut request = s.request(c.method.clone(), &c.path);
        request = match &c.body {
            Body::None => request,
            Body::Json(value) => request.json(value),
            Body::Raw(bytes, content_type) => {
                let request = request.body(bytes.clone());
                match content_type {
                    Some(t) => request.header("content-type", *t),
                    None => request,
                }
            }
        };
        let response = request.send().await.expect("answered");
        let status = response.status();
        let text = response.text().await.expect("a body");
        let what = format!(
            "{} {}",
            c.method,
            c.path.chars().take(80).collect::<String>()
        );
        let body: Value = match serde_json::from_str(&text) {
            Ok(body) => body,
            Err(_) => {
                failures.push(format!("{what}: {status}, not JSON: {text:?}"));
                continue;
            }
        };
        let message = body["error"]["message"].as_str().unwrap_or("");
        if status != StatusCode::from_u16(c.status).expect("status")
            || body["error"]["code"] != c.code
            || message.is_empty()
        {
            failures.push(format!(
                "{what}: expected {} {}, got {status} {body}",
                c.status, c.code
            ));
        }
        if let Some(leak) = LEAKS.iter().find(|l| message.contains(*l)) {
            failures.push(format!("{what}: the message leaks {leak:?}: {message}"));
        }
        if s.snapshot().await != before {
            failures.push(format!("{what}: something was written"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_every_malformed_request_gets_a_json_error_and_writes_nothing() {
    every_malformed_request_gets_a_json_error_and_writes_nothing(Kind::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_every_malformed_request_gets_a_json_error_and_writes_nothing() {
    every_malformed_request_gets_a_json_error_and_writes_nothing(Kind::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_the_default_ten_megabytes_is_413_json() {
    let s = TestServer::start(Kind::Sqlite).await.expect("SQLite");
    assert_eq!(ServerOptions::default().body_limit, 10 * 1024 * 1024);
    let args = "x".repeat(10 * 1024 * 1024);
    let (status, body) = s.post("/jobs", json!({"task": "t", "args": args})).await;
    support::assert_error(
        status,
        &body,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    );
    // Just under the limit is fine.
    let args = "x".repeat(9 * 1024 * 1024);
    let (status, _) = s.post("/jobs", json!({"task": "t", "args": args})).await;
    assert_eq!(status, StatusCode::CREATED);
    s.stop().await;
}
