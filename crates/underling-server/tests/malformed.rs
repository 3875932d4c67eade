//! Malformed requests, one row of a table each: bad JSON, wrong types, missing and unknown
//! fields, bad ids and names in paths, bad query strings, NUL bytes, deep nesting, huge
//! bodies, wrong content types, unknown routes and methods, to every write route of
//! `/api/v1`. Each gets a 4xx JSON error with the expected code and a message that says what
//! was wrong, and writes nothing: the rows of every table (and the jobs, queues and locks
//! themselves) are the same after it. On SQLite and PostgreSQL.
//!
//! Also here: property tests that POST arbitrary JSON (and arbitrary bytes) to every write
//! route, which must never get a 5xx or an error that is not JSON, nor write when refused.

mod support;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use underling_server::ServerOptions;
use underling_testkit::support::{self as kit, assert_no_failures, row_counts};

use support::{Kind, TestServer};

/// The body of a case.
#[derive(Debug, Clone)]
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
    /// `error.code`.
    code: &'static str,
    /// What `error.message` must contain.
    message: &'static str,
}

/// A table of cases, one per line: `METHOD PATH, BODY => STATUS, "CODE", "MESSAGE PART";`.
macro_rules! cases {
    ($( $method:ident $path:expr, $body:expr => $status:literal, $code:literal, $message:literal; )*) => {
        vec![$(Case {
            method: Method::$method,
            path: $path.into(),
            body: $body,
            status: $status,
            code: $code,
            message: $message,
        }),*]
    };
}

/// The body limit of the server these cases run on.
const LIMIT: usize = 64 * 1024;

/// `depth` nested JSON arrays: `[[[…]]]`.
fn nested(depth: usize) -> Vec<u8> {
    let mut text = "[".repeat(depth);
    text.push_str(&"]".repeat(depth));
    text.into_bytes()
}

/// A job whose arguments are `depth` nested JSON arrays.
fn nested_args(depth: usize) -> Vec<u8> {
    let mut body = br#"{"task": "t", "args": "#.to_vec();
    body.extend(nested(depth));
    body.push(b'}');
    body
}

/// Every case; `job` is an existing (inactive) job's id and `worker` an existing worker's.
fn cases(job: i64, worker: i64) -> Vec<Case> {
    use Body::{Json as J, Raw};
    let raw = |text: &str| Raw(text.as_bytes().to_vec(), Some("application/json"));
    let long = "x".repeat(2000);
    let job_path = |rest: &str| format!("/api/v1/jobs/{job}{rest}");
    cases![
        // POST /jobs: syntax, media type, types, fields.
        POST "/api/v1/jobs", raw("{") => 400, "invalid_json", "EOF while parsing an object";
        POST "/api/v1/jobs", raw("{\"task\": \"t\"") => 400, "invalid_json", "EOF while parsing an object";
        POST "/api/v1/jobs", raw("") => 400, "invalid_json", "EOF while parsing a value";
        POST "/api/v1/jobs", raw("{'task': 't'}") => 400, "invalid_json", "key must be a string";
        POST "/api/v1/jobs", Raw(vec![b'{', 0xff, 0xfe, b'}'], Some("application/json")) => 400, "invalid_json", "key must be a string";
        POST "/api/v1/jobs", Raw(br#"{"task":"t"}"#.to_vec(), None) => 415, "unsupported_media_type", "send the body as JSON with the header Content-Type: application/json";
        POST "/api/v1/jobs", Raw(br#"{"task":"t"}"#.to_vec(), Some("text/plain")) => 415, "unsupported_media_type", "send the body as JSON with the header Content-Type: application/json";
        POST "/api/v1/jobs", J(json!({"task": 5})) => 422, "invalid_body", "task: invalid type: integer `5`, expected a string";
        POST "/api/v1/jobs", J(json!({})) => 422, "invalid_body", "missing field `task`";
        POST "/api/v1/jobs", J(json!("task")) => 422, "invalid_body", r#"invalid type: string "task", expected struct JobSpec"#;
        POST "/api/v1/jobs", J(json!(null)) => 422, "invalid_body", "invalid type: null, expected struct JobSpec";
        POST "/api/v1/jobs", J(json!({"task": "t", "priority": "high"})) => 422, "invalid_body", r#"priority: invalid type: string "high", expected i32"#;
        POST "/api/v1/jobs", J(json!({"task": "t", "priority": 2_147_483_648_i64})) => 422, "invalid_body", "priority: invalid value: integer `2147483648`, expected i32";
        POST "/api/v1/jobs", J(json!({"task": "t", "priority": 1.5})) => 422, "invalid_body", "priority: invalid type: floating point `1.5`, expected i32";
        POST "/api/v1/jobs", J(json!({"task": "t", "attempts": 0})) => 422, "invalid_option", "invalid option: attempts must be at least 1, got 0";
        POST "/api/v1/jobs", J(json!({"task": "t", "attempts": -3})) => 422, "invalid_option", "invalid option: attempts must be at least 1, got -3";
        POST "/api/v1/jobs", J(json!({"task": "t", "tsk": 1})) => 422, "invalid_body", "tsk: unknown field `tsk`, expected one of `task`, `args`, `queue`, `priority`, `attempts`, `delay`, `run_at`, ";
        POST "/api/v1/jobs", J(json!({"task": "t", "parents": ["a"]})) => 422, "invalid_body", r#"parents[0]: invalid type: string "a", expected i64"#;
        POST "/api/v1/jobs", J(json!({"task": "t", "parents": [999_999]})) => 422, "parent_not_found", "parent job 999999 does not exist";
        POST "/api/v1/jobs", J(json!({"task": "t", "lax": "yes"})) => 422, "invalid_body", r#"lax: invalid type: string "yes", expected a boolean"#;
        POST "/api/v1/jobs", J(json!({"task": ""})) => 422, "invalid_task", r#"invalid task name "": a task name must be a non-empty string without surrounding spaces or NUL characters"#;
        POST "/api/v1/jobs", J(json!({"task": " t "})) => 422, "invalid_task", r#"invalid task name " t ": a task name must be a non-empty string without surrounding spaces or NUL characters"#;
        POST "/api/v1/jobs", J(json!({"task": "a\u{0}b"})) => 422, "invalid_task", r#"invalid task name "a\0b": a task name must be a non-empty string without surrounding spaces or NUL characters"#;
        POST "/api/v1/jobs", J(json!({"task": long})) => 422, "too_long", "the task name is 2000 bytes long";
        POST "/api/v1/jobs", J(json!({"task": "t", "queue": "q\u{0}"})) => 422, "invalid_queue", r#"invalid queue name "q\0": a queue name must be a non-empty string without surrounding spaces or NUL characters"#;
        POST "/api/v1/jobs", J(json!({"task": "t", "queue": ""})) => 422, "invalid_queue", r#"invalid queue name "": a queue name must be a non-empty string without surrounding spaces or NUL characters"#;
        POST "/api/v1/jobs", J(json!({"task": "t", "queue": "q".repeat(5000)})) => 422, "too_long", "the queue name is 5000 bytes long";
        POST "/api/v1/jobs", J(json!({"task": "t", "args": {"k": "v\u{0}"}})) => 422, "invalid_args", r#"invalid job arguments: a string at $.k contains a NUL character (\u0000), which PostgreSQL cannot store"#;
        POST "/api/v1/jobs", J(json!({"task": "t", "notes": [1]})) => 422, "invalid_notes", "invalid notes: notes must be a JSON object, got an array";
        POST "/api/v1/jobs", J(json!({"task": "t", "notes": {"k\u{0}": 1}})) => 422, "invalid_notes", r#"invalid notes: a string at $.k\u0000 contains a NUL character (\u0000), which PostgreSQL cannot store"#;
        POST "/api/v1/jobs", J(json!({"task": "t", "delay": "soon"})) => 422, "invalid_duration", "invalid duration: delay: expected number at 0";
        POST "/api/v1/jobs", J(json!({"task": "t", "delay": -5})) => 422, "invalid_duration", "invalid duration: delay: -5 is not a number of seconds >= 0";
        POST "/api/v1/jobs", J(json!({"task": "t", "delay": "1000y"})) => 422, "invalid_option", "invalid option: delay must be at most 100 years, got 365250 days";
        POST "/api/v1/jobs", J(json!({"task": "t", "expire": [1]})) => 422, "invalid_body", r#"expire: expected a duration: a number of seconds such as 30, or a string with a unit such as "90s""#;
        POST "/api/v1/jobs", J(json!({"task": "t", "delay": "1s", "run_at": "2030-01-01T00:00:00Z"})) => 422, "invalid_option", "invalid option: give delay or run_at, not both";
        POST "/api/v1/jobs", J(json!({"task": "t", "run_at": "tomorrow"})) => 422, "invalid_body", "run_at: input contains invalid characters";
        POST "/api/v1/jobs", J(json!({"task": "t", "args": "x".repeat(LIMIT)})) => 413, "payload_too_large", "the request body is larger than the server's limit (--body-limit): send a smaller body (fewer jobs per batch,";
        // POST /jobs/batch: all or nothing.
        POST "/api/v1/jobs/batch", J(json!({"task": "t"})) => 422, "invalid_body", "invalid type: map, expected a sequence";
        POST "/api/v1/jobs/batch", J(json!([{"task": "t"}, {"task": ""}])) => 422, "invalid_task", r#"job [1]: invalid task name "": a task name must be a non-empty string without surrounding spaces or NUL"#;
        POST "/api/v1/jobs/batch", J(json!([{"task": "t"}, {"task": "t", "parents": [999_999]}])) => 422, "parent_not_found", "parent job 999999 does not exist";
        POST "/api/v1/jobs/batch", J(json!([{"task": "t"}, 5])) => 422, "invalid_body", "[1]: invalid type: integer `5`, expected struct JobSpec";
        POST "/api/v1/jobs/batch", raw("[{\"task\": \"t\"},") => 400, "invalid_json", "EOF while parsing a value";
        POST "/api/v1/jobs/batch", J(json!(vec![json!({"task": "t", "args": "x".repeat(100)}); 1000])) => 413, "payload_too_large", "the request body is larger than the server's limit (--body-limit): send a smaller body (fewer jobs per batch,";
        // Ids in paths.
        GET "/api/v1/jobs/abc", Body::None => 400, "invalid_path", "Invalid URL: Cannot parse `abc` to a `i64`: ids are whole numbers, e.g. /api/v1/jobs/42";
        GET "/api/v1/jobs/1.5", Body::None => 400, "invalid_path", "Invalid URL: Cannot parse `1.5` to a `i64`: ids are whole numbers, e.g. /api/v1/jobs/42";
        GET "/api/v1/jobs/99999999999999999999", Body::None => 400, "invalid_path", "Invalid URL: Cannot parse `99999999999999999999` to a `i64`: ids are whole numbers, e.g. /api/v1/jobs/42";
        GET "/api/v1/jobs/-1", Body::None => 404, "not_found", "job -1 not found";
        DELETE "/api/v1/jobs/abc", Body::None => 400, "invalid_path", "Invalid URL: Cannot parse `abc` to a `i64`: ids are whole numbers, e.g. /api/v1/jobs/42";
        POST "/api/v1/jobs/abc/retry", J(json!({})) => 400, "invalid_path", "Invalid URL: Cannot parse `abc` to a `i64`: ids are whole numbers, e.g. /api/v1/jobs/42";
        POST "/api/v1/workers/abc/commands", J(json!({"command": "pause"})) => 400, "invalid_path", "Invalid URL: Cannot parse `abc` to a `i64`: ids are whole numbers, e.g. /api/v1/jobs/42";
        // GET /jobs filters.
        GET "/api/v1/jobs?state=bogus", Body::None => 422, "unknown_state", r#"unknown job state "bogus": expected one of inactive, active, finished, failed, scheduled, retryable, waiting"#;
        GET "/api/v1/jobs?limit=0", Body::None => 400, "invalid_query", "limit=0: give 1 to 1000";
        GET "/api/v1/jobs?limit=abc", Body::None => 400, "invalid_query", r#"limit="abc" is not a valid whole number"#;
        GET "/api/v1/jobs?limit=-1", Body::None => 400, "invalid_query", r#"limit="-1" is not a valid whole number"#;
        GET "/api/v1/jobs?before=x", Body::None => 400, "invalid_query", r#"before="x" is not a valid whole number"#;
        GET "/api/v1/jobs?finished_before=yesterday", Body::None => 400, "invalid_query", r#"finished_before="yesterday": premature end of input"#;
        GET "/api/v1/jobs?queue=%00", Body::None => 422, "invalid_option", r#"invalid option: the queue filter "\0" contains a NUL character"#;
        GET "/api/v1/jobs?id=1,x", Body::None => 400, "invalid_query", r#"id="x" is not a valid whole number"#;
        GET format!("/api/v1/jobs?task={}", "t".repeat(2000)), Body::None => 422, "too_long", "the task is 2000 bytes long";
        GET "/api/v1/jobs?sort=id", Body::None => 400, "invalid_query", r#"unknown parameter "sort": expected one of state, queue, task, note, id, finished_before, before, limit"#;
        // The long poll.
        GET job_path("/wait?timeout=forever"), Body::None => 422, "invalid_duration", "timeout: expected number at 0";
        GET job_path("/wait?timeout=1s&extra=1"), Body::None => 400, "invalid_query", "Failed to deserialize query string: extra: unknown field `extra`, expected `timeout`";
        // Retry, notes.
        POST job_path("/retry"), J(json!({"attempts": 0})) => 422, "invalid_option", "invalid option: attempts must be at least 1, got 0";
        POST job_path("/retry"), J(json!({"queue": ""})) => 422, "invalid_queue", r#"invalid queue name "": a queue name must be a non-empty string without surrounding spaces or NUL characters"#;
        POST job_path("/retry"), J(json!({"prio": 1})) => 422, "invalid_body", "prio: unknown field `prio`, expected one of `queue`, `priority`, `delay`, `attempts`";
        POST job_path("/retry"), raw("not json") => 400, "invalid_json", "expected ident";
        POST job_path("/retry"), J(json!({"delay": "soon"})) => 422, "invalid_duration", "delay: expected number at 0";
        POST job_path("/notes"), J(json!([1])) => 422, "invalid_notes", "invalid notes: notes must be a JSON object, got an array";
        POST job_path("/notes"), J(json!({"k": "\u{0}"})) => 422, "invalid_notes", r#"invalid notes: a string at $.k contains a NUL character (\u0000), which PostgreSQL cannot store"#;
        POST job_path("/notes"), raw("{\"k\":") => 400, "invalid_json", "k: EOF while parsing a value";
        // Bulk retry and remove.
        POST "/api/v1/jobs/retry", J(json!({"states": ["bogus"]})) => 422, "unknown_state", r#"unknown job state "bogus": expected one of inactive, active, finished, failed, scheduled, retryable, waiting"#;
        POST "/api/v1/jobs/retry", J(json!({"queues": ["a\u{0}"]})) => 422, "invalid_option", r#"invalid option: the queue filter "a\0" contains a NUL character"#;
        POST "/api/v1/jobs/retry", J(json!({"ids": "1"})) => 422, "invalid_body", r#"ids: invalid type: string "1", expected a sequence"#;
        POST "/api/v1/jobs/retry", J(json!({"al": true})) => 422, "invalid_body", "al: unknown field `al`, expected one of `ids`, `states`, `queues`, `tasks`, `notes`, `finished_before`, `all`";
        POST "/api/v1/jobs/retry", J(json!({})) => 422, "empty_filter", r#"an empty filter matches every job: give ids, states, queues, tasks, notes or finished_before, or "all": true"#;
        POST "/api/v1/jobs/remove", J(json!({})) => 422, "empty_filter", r#"an empty filter matches every job: give ids, states, queues, tasks, notes or finished_before, or "all": true"#;
        POST "/api/v1/jobs/remove", J(json!({"all": false})) => 422, "empty_filter", r#"an empty filter matches every job: give ids, states, queues, tasks, notes or finished_before, or "all": true"#;
        POST "/api/v1/jobs/remove", J(json!({"states": ["active"]})) => 422, "job_active", "active jobs cannot be removed: stop them first (POST /api/v1/jobs/{id}/stop)";
        POST "/api/v1/jobs/remove", J(json!({"finished_before": "last week"})) => 422, "invalid_body", "finished_before: input contains invalid characters";
        // Queues.
        POST "/api/v1/queues/%20q%20/pause", Body::None => 422, "invalid_queue", r#"invalid queue name " q ": a queue name must be a non-empty string without surrounding spaces or NUL characters"#;
        POST "/api/v1/queues/a%00b/resume", Body::None => 422, "invalid_queue", r#"invalid queue name "a\0b": a queue name must be a non-empty string without surrounding spaces or NUL"#;
        // Workers.
        POST "/api/v1/workers/commands", J(json!({"command": "jobs", "args": ["x"]})) => 422, "invalid_command", r#"invalid remote command: jobs needs a number of jobs (0 or more) as its argument, e.g. [4], got ["x"]"#;
        POST "/api/v1/workers/commands", J(json!({"command": "stop"})) => 422, "invalid_command", "invalid remote command: stop needs a job id as its argument, e.g. [42], got []";
        POST "/api/v1/workers/commands", J(json!({"command": "reboot"})) => 422, "invalid_command", r#"invalid remote command: unknown command "reboot": expected one of stop, kill, jobs, pause, resume"#;
        POST "/api/v1/workers/commands", J(json!({"command": "pause", "ids": [worker, 999_999]})) => 404, "not_found", "worker 999999 not found";
        POST format!("/api/v1/workers/{worker}/commands"), J(json!({"cmd": "pause"})) => 422, "invalid_body", "cmd: unknown field `cmd`, expected `command` or `args`";
        POST "/api/v1/workers/999999/commands", J(json!({"command": "pause"})) => 404, "not_found", "worker 999999 not found";
        // Locks.
        POST "/api/v1/locks/x", J(json!({"duration": "soon"})) => 422, "invalid_duration", "duration: expected number at 0";
        POST "/api/v1/locks/x", J(json!({"duration": "1m", "limit": 0})) => 422, "invalid_option", "invalid option: a lock limit must be at least 1, got 0";
        POST "/api/v1/locks/x", J(json!({"duration": "1m", "limit": -1})) => 422, "invalid_body", "limit: invalid value: integer `-1`, expected u32";
        POST "/api/v1/locks/x", J(json!({})) => 422, "invalid_body", "missing field `duration`";
        POST "/api/v1/locks/a%00b", J(json!({"duration": "1m"})) => 422, "invalid_option", r#"invalid option: lock name "a\0b" contains a NUL character"#;
        DELETE "/api/v1/locks/a%00b", Body::None => 422, "invalid_option", r#"invalid option: lock name "a\0b" contains a NUL character"#;
        GET "/api/v1/locks?nam=x", Body::None => 400, "invalid_query", r#"unknown parameter "nam": expected name"#;
        // Stop, kill, remove and notes of one job.
        POST "/api/v1/jobs/abc/stop", Body::None => 400, "invalid_path", "Invalid URL: Cannot parse `abc` to a `i64`: ids are whole numbers, e.g. /api/v1/jobs/42";
        POST "/api/v1/jobs/999999/stop", Body::None => 404, "not_found", "job 999999 not found";
        POST "/api/v1/jobs/-1/kill", Body::None => 404, "not_found", "job -1 not found";
        POST job_path("/kill"), Body::None => 409, "job_not_active", "job 1 is not running (it is inactive): only an active job can be stopped or killed";
        DELETE "/api/v1/jobs/999999", Body::None => 404, "not_found", "job 999999 not found";
        DELETE "/api/v1/jobs/99999999999999999999", Body::None => 400, "invalid_path", "Invalid URL: Cannot parse `99999999999999999999` to a `i64`: ids are whole numbers, e.g. /api/v1/jobs/42";
        POST "/api/v1/jobs/999999/retry", J(json!({})) => 404, "not_found", "job 999999 not found";
        POST "/api/v1/jobs/999999/notes", J(json!({"k": 1})) => 404, "not_found", "job 999999 not found";
        POST job_path("/notes"), Raw(b"k=1".to_vec(), Some("application/x-www-form-urlencoded")) => 415, "unsupported_media_type", "send the body as JSON with the header Content-Type: application/json";
        POST job_path("/notes"), J(json!({"k": 1, "k2": "x".repeat(LIMIT)})) => 413, "payload_too_large", "the request body is larger than the server's limit (--body-limit): send a smaller body (fewer jobs per batch,";
        // Deeply nested JSON, past what a parser should recurse into.
        POST "/api/v1/jobs", Raw(nested(1000), Some("application/json")) => 422, "invalid_body", "invalid type: array, expected a JSON object";
        POST "/api/v1/jobs", Raw(nested_args(1000), Some("application/json")) => 400, "invalid_json", "recursion limit exceeded";
        POST "/api/v1/jobs/batch", Raw(nested(100_000), Some("application/json")) => 413, "payload_too_large", "the request body is larger than the server's limit (--body-limit): send a smaller body (fewer jobs per batch,";
        POST job_path("/notes"), Raw(nested(5000), Some("application/json")) => 400, "invalid_json", "recursion limit exceeded";
        POST "/api/v1/jobs", J(json!({"task": "t", "priority": 99_999_999_999_i64})) => 422, "invalid_body", "priority: invalid value: integer `99999999999`, expected i32";
        POST "/api/v1/jobs", J(json!({"task": "t", "timeout": "0s"})) => 422, "invalid_option", "invalid option: timeout must be longer than zero";
        POST "/api/v1/jobs", J(json!({"task": "t", "unique_by": "tenant"})) => 422, "invalid_body", "unique_by: unknown variant `tenant`, expected `args` or `args_and_queue`";
        POST "/api/v1/jobs", J(json!({"task": "t", "on_conflict": "explode"})) => 422, "invalid_body", "on_conflict: unknown variant `explode`, expected one of `existing`, `replace`, `error`";
        POST "/api/v1/jobs", J(json!({"task": "t", "unique_for": "1h"})) => 422, "invalid_option", "invalid option: unique_scope, unique_for and on_conflict need unique_key or unique_by";
        POST "/api/v1/jobs", J(json!({"task": "t", "parents": [-1]})) => 422, "parent_not_found", "parent job -1 does not exist";
        POST "/api/v1/jobs", J(json!({"task": "t", "delay": "-5m"})) => 422, "invalid_duration", r#"invalid duration: delay: "-5m" is negative; give a duration of zero or more"#;
        POST "/api/v1/claims", J(json!({"lease": [1]})) => 422, "invalid_body", "lease: expected a duration: a number of seconds such as 30";
        POST "/api/v1/claims", J(json!({"limit": "x"})) => 422, "invalid_body", r#"limit: invalid type: string "x", expected usize"#;
        POST job_path("/retry"), J(json!({"priority": "high"})) => 422, "invalid_body", r#"priority: invalid type: string "high", expected i32"#;
        // Queues: FIFO.
        POST "/api/v1/queues/q/fifo", J(json!({})) => 422, "invalid_body", "missing field `fifo`";
        POST "/api/v1/queues/q/fifo", J(json!({"fifo": "yes"})) => 422, "invalid_body", r#"fifo: invalid type: string "yes", expected a boolean"#;
        POST "/api/v1/queues/q/fifo", J(json!({"fifo": true, "x": 1})) => 422, "invalid_body", "x: unknown field `x`, expected `fifo`";
        POST "/api/v1/queues/q/fifo", Body::None => 415, "unsupported_media_type", "send the body as JSON with the header Content-Type: application/json";
        POST "/api/v1/queues/%20/fifo", J(json!({"fifo": true})) => 422, "invalid_queue", r#"invalid queue name " ": a queue name must be a non-empty string without surrounding spaces or NUL characters"#;
        POST format!("/api/v1/queues/{}/pause", "q".repeat(5000)), Body::None => 422, "too_long", "the queue name is 5000 bytes long";
        // Workers: command arguments.
        POST "/api/v1/workers/commands", J(json!({"command": "pause", "ids": ["x"]})) => 422, "invalid_body", r#"ids[0]: invalid type: string "x", expected i64"#;
        POST "/api/v1/workers/commands", J(json!({"command": "jobs", "args": [-1]})) => 422, "invalid_command", "invalid remote command: jobs needs a number of jobs (0 or more) as its argument, e.g. [4], got [-1]";
        POST "/api/v1/workers/commands", J(json!({"command": "kill", "args": ["x"]})) => 422, "invalid_command", r#"invalid remote command: kill needs a job id as its argument, e.g. [42], got ["x"]"#;
        // Locks.
        POST "/api/v1/locks/x", J(json!({"duration": "-1s"})) => 422, "invalid_duration", r#"duration: "-1s" is negative; give a duration of zero or more"#;
        POST "/api/v1/locks/x", J(json!({"duration": "1m", "limit": 99_999_999_999_i64})) => 422, "invalid_body", "limit: invalid value: integer `99999999999`, expected u32";
        POST format!("/api/v1/locks/{}", "l".repeat(5000)), J(json!({"duration": "1m"})) => 422, "too_long", "the lock name is 5000 bytes long";
        POST "/api/v1/locks/x", raw("{\"duration\": ") => 400, "invalid_json", "duration: EOF while parsing a value";
        // Limits.
        POST "/api/v1/limits", J(json!({})) => 422, "invalid_body", "missing field `scope`";
        POST "/api/v1/limits", J(json!({"scope": "q", "concurrency": 1})) => 422, "invalid_body", r#"scope: invalid type: string "q", expected struct ScopeBody"#;
        POST "/api/v1/limits", J(json!({"scope": {"kind": "bogus", "name": "q"}, "concurrency": 1})) => 422, "invalid_limit", r#"unknown limit kind "bogus": expected queue, task, args or notes"#;
        POST "/api/v1/limits", J(json!({"scope": {"kind": "queue", "name": "q"}, "rate": "100/0s"})) => 422, "invalid_limit", "invalid limit: a rate's period must be 1ms to 366 days, got 0s";
        POST "/api/v1/limits", J(json!({"scope": {"kind": "queue", "name": "q"}, "rate": "abc/1m"})) => 422, "invalid_limit", r#"invalid limit: rate "abc/1m": "abc" is not a count"#;
        POST "/api/v1/limits", J(json!({"scope": {"kind": "queue", "name": "q"}, "concurrency": 0})) => 422, "invalid_limit", "invalid limit: queue q: concurrency must be at least 1 (to stop a queue, pause it)";
        POST "/api/v1/limits", J(json!({"scope": {"kind": "queue", "name": "q"}, "concurrency": -1})) => 422, "invalid_body", "concurrency: invalid value: integer `-1`, expected u32";
        POST "/api/v1/limits", J(json!({"scope": {"kind": "queue", "name": "q"}})) => 422, "invalid_limit", "invalid limit: queue q: give a concurrency, a rate or both";
        POST "/api/v1/limits", J(json!({"scope": {"kind": "queue", "name": ""}, "concurrency": 1})) => 422, "invalid_queue", r#"invalid queue name "": a queue name must be a non-empty string without surrounding spaces or NUL characters"#;
        POST "/api/v1/limits", J(json!({"scope": {"kind": "args", "name": "a..b"}, "concurrency": 1})) => 422, "invalid_limit", r#"invalid limit: key path "a..b" must be names joined by dots, like tenant or customer.id (at most 200 bytes)"#;
        POST "/api/v1/limits", J(json!({"scope": {"kind": "queue", "name": "q\u{0}"}, "concurrency": 1})) => 422, "invalid_queue", r#"invalid queue name "q\0": a queue name must be a non-empty string without surrounding spaces or NUL characters"#;
        POST "/api/v1/limits", J(json!({"scope": {"kind": "queue", "name": "q", "x": 1}, "concurrency": 1})) => 422, "invalid_body", "scope.x: unknown field `x`, expected `kind` or `name`";
        DELETE "/api/v1/limits/bogus/q", Body::None => 422, "invalid_limit", r#"unknown limit kind "bogus": expected queue, task, args or notes"#;
        DELETE "/api/v1/limits/queue/a%00b", Body::None => 422, "invalid_queue", r#"invalid queue name "a\0b": a queue name must be a non-empty string without surrounding spaces or NUL"#;
        PUT "/api/v1/limits", J(json!({})) => 405, "method_not_allowed", "/api/v1/limits does not take this method";
        // Leases: claims, acks, rejections, extensions.
        POST "/api/v1/claims", J(json!({"limit": -1})) => 422, "invalid_body", "limit: invalid value: integer `-1`, expected usize";
        POST "/api/v1/claims", J(json!({"lease": "soon"})) => 422, "invalid_duration", "lease: expected number at 0";
        POST "/api/v1/claims", J(json!({"queues": "q"})) => 422, "invalid_body", r#"queues: invalid type: string "q", expected a sequence"#;
        POST "/api/v1/claims", J(json!({"queues": ["a\u{0}"]})) => 422, "invalid_queue", r#"invalid queue name "a\0": a queue name must be a non-empty string without surrounding spaces or NUL characters"#;
        POST "/api/v1/claims", J(json!({"bogus": 1})) => 422, "invalid_body", "bogus: unknown field `bogus`, expected one of `queues`, `tasks`, `limit`, `lease`";
        POST "/api/v1/claims", raw("[") => 400, "invalid_json", "EOF while parsing a list";
        POST job_path("/ack"), J(json!({})) => 422, "invalid_body", "missing field `token`";
        POST job_path("/ack"), J(json!({"token": "wrong"})) => 422, "invalid_lease", r#"invalid lease token "wrong" for job 1: give the token the claim returned with the job"#;
        POST "/api/v1/jobs/abc/ack", J(json!({"token": "t"})) => 400, "invalid_path", "Invalid URL: Cannot parse `abc` to a `i64`: ids are whole numbers, e.g. /api/v1/jobs/42";
        POST "/api/v1/jobs/999999/ack", J(json!({"token": "t"})) => 422, "invalid_lease", r#"invalid lease token "t" for job 999999: give the token the claim returned with the job"#;
        POST job_path("/reject"), J(json!({"token": "t", "delay": "soon"})) => 422, "invalid_duration", "delay: expected number at 0";
        POST job_path("/reject"), J(json!({"token": "t", "retry": "yes"})) => 422, "invalid_body", r#"retry: invalid type: string "yes", expected a boolean"#;
        POST job_path("/reject"), J(json!({"token": "wrong"})) => 422, "invalid_lease", r#"invalid lease token "wrong" for job 1: give the token the claim returned with the job"#;
        POST job_path("/extend"), J(json!({"token": "t", "lease": "-1s"})) => 422, "invalid_duration", r#"lease: "-1s" is negative; give a duration of zero or more"#;
        POST job_path("/extend"), J(json!({"token": 5})) => 422, "invalid_body", "token: invalid type: integer `5`, expected a string";
        POST job_path("/extend"), J(json!({"token": "wrong"})) => 422, "invalid_lease", r#"invalid lease token "wrong" for job 1: give the token the claim returned with the job"#;
        // Schedules.
        POST "/api/v1/schedules", J(json!({})) => 422, "invalid_body", "missing field `name`";
        POST "/api/v1/schedules", J(json!({"name": "n", "cron": "not a cron", "task": "t"})) => 422, "invalid_cron", r#"invalid cron expression "not a cron": it has 3 fields"#;
        POST "/api/v1/schedules", J(json!({"name": "n", "cron": "61 * * * *", "task": "t"})) => 422, "invalid_cron", r#"invalid cron expression "61 * * * *": its minute field "61" is not valid, expected 0-59"#;
        POST "/api/v1/schedules", J(json!({"name": "n", "cron": "* * * * *", "task": "t", "timezone": "Mars/Base"})) => 422, "invalid_timezone", r#"unknown time zone "Mars/Base": give an IANA time zone name such as UTC, Europe/Berlin or America/New_York"#;
        POST "/api/v1/schedules", J(json!({"name": "", "cron": "* * * * *", "task": "t"})) => 422, "invalid_schedule_name", r#"invalid schedule name "": a schedule name is 1 to 200 letters, digits, '.', '_', ':' or '-' (e.g."#;
        POST "/api/v1/schedules", J(json!({"name": "n\u{0}", "cron": "* * * * *", "task": "t"})) => 422, "invalid_schedule_name", r#"invalid schedule name "n\0": a schedule name is 1 to 200 letters, digits, '.', '_', ':' or '-' (e.g."#;
        POST "/api/v1/schedules", J(json!({"name": "n", "cron": "* * * * *", "task": ""})) => 422, "invalid_task", r#"invalid task name "": a task name must be a non-empty string without surrounding spaces or NUL characters"#;
        POST "/api/v1/schedules", J(json!({"name": "n", "cron": "* * * * *", "task": "t", "args": {"k": "\u{0}"}})) => 422, "invalid_args", r#"invalid job arguments: a string at $.k contains a NUL character (\u0000), which PostgreSQL cannot store"#;
        POST "/api/v1/schedules", J(json!({"name": "n", "cron": "* * * * *", "task": "t", "catch_up": "sometimes"})) => 422, "invalid_body", "catch_up: unknown variant `sometimes`, expected `last` or `skip`";
        POST "/api/v1/schedules", J(json!({"name": "n", "cron": "* * * * *", "task": "t", "attempts": 0})) => 422, "invalid_option", "invalid option: attempts must be at least 1, got 0";
        POST "/api/v1/schedules", J(json!({"name": "n", "cron": "* * * * *", "task": "t", "bogus": 1})) => 422, "invalid_body", "bogus: unknown field `bogus`, expected one of `name`, `cron`, `timezone`, `task`, `args`, `queue`, `priority`,";
        POST "/api/v1/schedules", J(json!({"name": "n", "cron": "* * * * *", "task": "t", "args": "x".repeat(LIMIT)})) => 413, "payload_too_large", "the request body is larger than the server's limit (--body-limit): send a smaller body (fewer jobs per batch,";
        DELETE "/api/v1/schedules/nothing", Body::None => 404, "not_found", r#"schedule "nothing" not found (see `underling schedule list`)"#;
        POST "/api/v1/schedules/nothing/pause", Body::None => 404, "not_found", r#"schedule "nothing" not found (see `underling schedule list`)"#;
        POST "/api/v1/schedules/nothing/resume", Body::None => 404, "not_found", r#"schedule "nothing" not found (see `underling schedule list`)"#;
        POST "/api/v1/schedules/nothing/run-now", Body::None => 404, "not_found", r#"schedule "nothing" not found (see `underling schedule list`)"#;
        POST "/api/v1/schedules/a%00b/pause", Body::None => 422, "invalid_schedule_name", r#"invalid schedule name "a\0b": a schedule name is 1 to 200 letters, digits, '.', '_', ':' or '-' (e.g."#;
        // Query strings.
        GET job_path("/wait?timeout=-1s"), Body::None => 422, "invalid_duration", r#"timeout: "-1s" is negative; give a duration of zero or more"#;
        GET job_path("/wait?timeout=1001y"), Body::None => 422, "invalid_duration", "timeout: at most 5m per request";
        GET "/api/v1/jobs?limit=99999999999999999999", Body::None => 400, "invalid_query", r#"limit="99999999999999999999" is not a valid whole number"#;
        GET "/api/v1/jobs?state=", Body::None => 422, "unknown_state", r#"unknown job state "": expected one of inactive, active, finished, failed, scheduled, retryable, waiting"#;
        GET "/api/v1/jobs?offset=-5", Body::None => 400, "invalid_query", r#"unknown parameter "offset": expected one of state, queue, task, note, id, finished_before, before, limit"#;
        // Routes and methods.
        GET "/api/v1/nothing", Body::None => 404, "no_route", "no route for /api/v1/nothing: the API is under /api/v1 (its routes are listed in /api/v1/openapi.json)";
        GET "/api/v2/jobs", Body::None => 404, "no_route", "no route for /api/v2/jobs: the API is under /api/v1 (its routes are listed in /api/v1/openapi.json)";
        PUT "/api/v1/jobs", J(json!({"task": "t"})) => 405, "method_not_allowed", "/api/v1/jobs does not take this method";
        PATCH job_path(""), J(json!({"priority": 1})) => 405, "method_not_allowed", "/api/v1/jobs/1 does not take this method";
        GET "/api/v1/jobs/retry", Body::None => 405, "method_not_allowed", "/api/v1/jobs/retry does not take this method";
        // Arrays where the schema has an object (serde would read the fields in order).
        POST "/api/v1/locks/x", J(json!(["1m"])) => 422, "invalid_body", "Failed to deserialize the JSON body into the target type: invalid type: array, expected a JSON object at line 1 column ";
        POST "/api/v1/queues/q/fifo", J(json!([true])) => 422, "invalid_body", "Failed to deserialize the JSON body into the target type: invalid type: array, expected a JSON object at line 1 column ";
        POST "/api/v1/jobs", J(json!(["t"])) => 422, "invalid_body", "Failed to deserialize the JSON body into the target type: invalid type: array, expected a JSON object at line 1 column ";
        POST "/api/v1/jobs/batch", J(json!([{"task": "t"}, ["t"]])) => 422, "invalid_body", "Failed to deserialize the JSON body into the target type: [1]: invalid type: array, expected a JSON object at line 1 column 19";
        POST "/api/v1/limits", J(json!({"scope": ["queue", "q"], "concurrency": 1})) => 422, "invalid_body", "Failed to deserialize the JSON body into the target type: scope: invalid type: array, expected a JSON object at line 1 column ";
        POST "/api/v1/limits", J(json!([["queue", "q"], 1, null])) => 422, "invalid_body", "Failed to deserialize the JSON body into the target type: invalid type: array, expected a JSON object at line 1 column ";
        POST "/api/v1/claims", J(json!([["q"]])) => 422, "invalid_body", "Failed to deserialize the JSON body into the target type: invalid type: array, expected a JSON object at line 1 column ";
        POST job_path("/retry"), J(json!(["q"])) => 422, "invalid_body", "Failed to deserialize the JSON body into the target type: invalid type: array, expected a JSON object at line 1 column ";
        POST "/api/v1/schedules", J(json!(["n", "* * * * *", null, "t"])) => 422, "invalid_body", "Failed to deserialize the JSON body into the target type: invalid type: array, expected a JSON object at line 1 column ";
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

/// The server the cases run on: a small body limit, a seeded job and worker.
async fn seeded(kind: Kind) -> Option<(TestServer, i64, i64)> {
    let options = ServerOptions {
        body_limit: LIMIT,
        ..ServerOptions::default()
    };
    let s = TestServer::start_with(kind, options).await?;
    let job = kit::enqueue(s.queue(), "seed").await;
    let worker = kit::worker(&s.store).await;
    Some((s, job, worker))
}

/// Sends a case's request; the status and the body's text.
async fn send(s: &TestServer, method: Method, path: &str, body: &Body) -> (StatusCode, String) {
    let mut request = s.request(method, path);
    request = match body {
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
    (status, response.text().await.expect("a body"))
}

async fn every_malformed_request_gets_a_json_error_and_writes_nothing(kind: Kind) {
    let Some((s, job, worker)) = seeded(kind).await else {
        return;
    };
    let cases = cases(job, worker);
    assert!(cases.len() >= 100, "{} cases", cases.len());
    let mut failures = Vec::new();
    for c in &cases {
        let before = (s.snapshot().await, row_counts(s.queue()).await);
        let (status, text) = send(&s, c.method.clone(), &c.path, &c.body).await;
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
            || !message.contains(c.message)
        {
            failures.push(format!(
                "{what}: expected {} {} {:?}, got {status} {body}",
                c.status, c.code, c.message
            ));
        }
        if let Some(leak) = LEAKS.iter().find(|l| message.contains(*l)) {
            failures.push(format!("{what}: the message leaks {leak:?}: {message}"));
        }
        let after = (s.snapshot().await, row_counts(s.queue()).await);
        if after != before {
            failures.push(format!(
                "{what}: something was written: rows {:?} -> {:?}",
                before.1, after.1
            ));
        }
    }
    assert_no_failures(&failures, cases.len());
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

// -- fuzzing ----------------------------------------------------------------------------------

/// Every field name the write routes' bodies know, so that generated objects get past the
/// first checks.
const FIELDS: &[&str] = &[
    "task",
    "args",
    "queue",
    "priority",
    "attempts",
    "delay",
    "run_at",
    "parents",
    "lax",
    "expire",
    "notes",
    "unique_key",
    "unique_by",
    "unique_scope",
    "unique_for",
    "on_conflict",
    "timeout",
    "states",
    "queues",
    "tasks",
    "ids",
    "all",
    "finished_before",
    "command",
    "duration",
    "limit",
    "scope",
    "kind",
    "name",
    "concurrency",
    "rate",
    "lease",
    "token",
    "result",
    "error",
    "retry",
    "fifo",
    "cron",
    "timezone",
    "catch_up",
    "paused",
];

/// Every write route of `/api/v1` (POST, and DELETE with a body), with real ids and names.
fn write_routes(job: i64, worker: i64) -> Vec<(Method, String)> {
    let post = |path: String| (Method::POST, format!("/api/v1{path}"));
    vec![
        post("/jobs".into()),
        post("/jobs/batch".into()),
        post(format!("/jobs/{job}/retry")),
        post(format!("/jobs/{job}/stop")),
        post(format!("/jobs/{job}/kill")),
        post(format!("/jobs/{job}/notes")),
        post(format!("/jobs/{job}/ack")),
        post(format!("/jobs/{job}/reject")),
        post(format!("/jobs/{job}/extend")),
        post("/jobs/retry".into()),
        post("/jobs/remove".into()),
        post("/queues/q/pause".into()),
        post("/queues/q/resume".into()),
        post("/queues/q/fifo".into()),
        post("/workers/commands".into()),
        post(format!("/workers/{worker}/commands")),
        post("/locks/l".into()),
        post("/limits".into()),
        post("/claims".into()),
        post("/schedules".into()),
        post("/schedules/s/pause".into()),
        post("/schedules/s/resume".into()),
        post("/schedules/s/run-now".into()),
        (Method::DELETE, format!("/api/v1/jobs/{job}")),
        (Method::DELETE, "/api/v1/locks/l".into()),
        (Method::DELETE, "/api/v1/limits/queue/q".into()),
        (Method::DELETE, "/api/v1/schedules/s".into()),
    ]
}

/// Runs `cases` requests of `bodies` to random write routes on a fresh server of `kind`:
/// each is answered, never with a 5xx; every error is JSON with a code and a message; a
/// refused request writes nothing.
fn fuzz_write_routes(kind: Kind, bodies: impl Strategy<Value = Body>, cases: u32) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let Some((s, job, worker)) = rt.block_on(seeded(kind)) else {
        return;
    };
    let routes = write_routes(job, worker);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = (proptest::sample::select(routes), bodies);
    let result = runner.run(&strategy, |((method, path), body)| {
        rt.block_on(async {
            let before = row_counts(s.queue()).await;
            let (status, text) = send(&s, method.clone(), &path, &body).await;
            prop_assert!(
                !status.is_server_error(),
                "{method} {path}: {status} {text}"
            );
            if status.is_client_error() {
                let error: Value = serde_json::from_str(&text).map_err(|e| {
                    TestCaseError::fail(format!(
                        "{method} {path}: {status}, not JSON ({e}): {text}"
                    ))
                })?;
                prop_assert!(
                    error["error"]["code"].is_string(),
                    "{method} {path}: {text}"
                );
                prop_assert!(
                    error["error"]["message"].is_string(),
                    "{method} {path}: {text}"
                );
                prop_assert_eq!(
                    row_counts(s.queue()).await,
                    before,
                    "{} {}: refused with {} {} and wrote",
                    method,
                    path,
                    status,
                    text
                );
            }
            Ok(())
        })
    });
    rt.block_on(s.stop());
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// Any JSON, or an object of the fields the routes know with any values.
fn json_bodies() -> impl Strategy<Value = Body> {
    prop_oneof![
        underling_testkit::arbitrary::json(),
        underling_testkit::arbitrary::object_of(FIELDS),
    ]
    .prop_map(Body::Json)
}

/// Any bytes, sent as `application/json`.
fn byte_bodies() -> impl Strategy<Value = Body> {
    prop::collection::vec(any::<u8>(), 0..64).prop_map(|b| Body::Raw(b, Some("application/json")))
}

#[test]
fn sqlite_arbitrary_json_to_any_write_route_is_never_a_5xx_and_refusals_write_nothing() {
    fuzz_write_routes(Kind::Sqlite, json_bodies(), 300);
}

#[test]
fn postgres_arbitrary_json_to_any_write_route_is_never_a_5xx_and_refusals_write_nothing() {
    fuzz_write_routes(Kind::Postgres, json_bodies(), 300);
}

#[test]
fn sqlite_arbitrary_bytes_to_any_write_route_are_never_a_5xx_and_refusals_write_nothing() {
    fuzz_write_routes(Kind::Sqlite, byte_bodies(), 100);
}

#[test]
fn postgres_arbitrary_bytes_to_any_write_route_are_never_a_5xx_and_refusals_write_nothing() {
    fuzz_write_routes(Kind::Postgres, byte_bodies(), 100);
}
