//! Tokens, the refusal to listen unprotected beyond loopback, CORS and timeouts.

mod support;

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;
use underling_server::{Server, ServerError, ServerOptions};
use underling_testkit::support as kit;

use support::{Kind, TestServer, assert_error, send};

const TOKEN: &str = "full-token-0123456789";
const READ_ONLY: &str = "read-only-token-9876543210";

fn with_tokens() -> ServerOptions {
    ServerOptions {
        token: Some(TOKEN.into()),
        read_only_token: Some(READ_ONLY.into()),
        ..ServerOptions::default()
    }
}

async fn tokens_guard_every_route_but_the_probes(kind: Kind) {
    let Some(s) = TestServer::start_with(kind, with_tokens()).await else {
        return;
    };
    let url = |path: &str| format!("{}{path}", s.url);
    let client = &s.client;

    // No token, a wrong one, another scheme: 401 with the challenge, nothing written.
    for request in [
        client.get(url("/api/v1/jobs")),
        client.get(url("/api/v1/jobs")).bearer_auth("wrong"),
        client
            .get(url("/api/v1/jobs"))
            .bearer_auth(&TOKEN[..TOKEN.len() - 1]),
        client
            .get(url("/api/v1/jobs"))
            .basic_auth("admin", Some(TOKEN)),
        client.post(url("/api/v1/jobs")).json(&json!({"task": "t"})),
        client
            .post(url("/api/v1/jobs"))
            .bearer_auth("wrong")
            .json(&json!({"task": "t"})),
        client.get(url("/api/v1/openapi.json")),
        client.get(url("/api/v1/no-such-route")),
    ] {
        let response = request.send().await.unwrap();
        assert_eq!(
            response
                .headers()
                .get("www-authenticate")
                .map(|v| v.to_str().unwrap()),
            Some("Bearer")
        );
        let status = response.status();
        let body = response.json().await.unwrap();
        assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
    }
    assert_eq!(kit::job_count(s.queue()).await, 0);

    // The read-only token reads, and may not write.
    let (status, body) = send(client.get(url("/api/v1/jobs")).bearer_auth(READ_ONLY)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = send(
        client
            .post(url("/api/v1/jobs"))
            .bearer_auth(READ_ONLY)
            .json(&json!({"task": "t"})),
    )
    .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");
    let (status, body) = send(client.delete(url("/api/v1/locks/x")).bearer_auth(READ_ONLY)).await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");
    assert_eq!(kit::job_count(s.queue()).await, 0);

    // The full token does everything.
    let (status, body) = send(
        client
            .post(url("/api/v1/jobs"))
            .bearer_auth(TOKEN)
            .json(&json!({"task": "t"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(kit::job_count(s.queue()).await, 1);

    // The probes need none.
    for probe in ["/healthz", "/readyz"] {
        let (status, _) = send(client.get(url(probe))).await;
        assert_eq!(status, StatusCode::OK, "{probe}");
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_tokens_guard_every_route_but_the_probes() {
    tokens_guard_every_route_but_the_probes(Kind::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_tokens_guard_every_route_but_the_probes() {
    tokens_guard_every_route_but_the_probes(Kind::Postgres).await;
}

#[tokio::test]
async fn listening_beyond_loopback_without_a_token_is_refused() {
    let store = underling_testkit::sqlite().await;
    let options = ServerOptions {
        listen: "0.0.0.0:0".parse().unwrap(),
        ..ServerOptions::default()
    };
    let error = Server::bind(store.queue.clone(), options.clone())
        .await
        .unwrap_err();
    assert!(matches!(error, ServerError::Unprotected(_)), "{error}");
    assert_eq!(
        error.to_string(),
        "refusing to listen on 0.0.0.0:0 without a token: anyone who can reach it could change every job. Give --token-file FILE (or set UNDERLING_TOKEN), or listen on 127.0.0.1"
    );
    // A read-only token alone does not protect writes.
    let read_only_only = ServerOptions {
        read_only_token: Some(READ_ONLY.into()),
        ..options.clone()
    };
    assert!(
        Server::bind(store.queue.clone(), read_only_only)
            .await
            .is_err()
    );
    // With a token it listens.
    let protected = ServerOptions {
        token: Some(TOKEN.into()),
        ..options
    };
    assert!(Server::bind(store.queue.clone(), protected).await.is_ok());
    store.cleanup().await;
}

#[test]
fn empty_and_equal_tokens_are_refused() {
    let empty = ServerOptions {
        token: Some("  ".into()),
        ..ServerOptions::default()
    };
    assert!(matches!(empty.check(), Err(ServerError::EmptyToken)));
    let same = ServerOptions {
        token: Some(TOKEN.into()),
        read_only_token: Some(TOKEN.into()),
        ..ServerOptions::default()
    };
    assert!(matches!(same.check(), Err(ServerError::SameTokens)));
}

#[test]
fn the_options_debug_output_hides_the_tokens() {
    let text = format!("{:?}", with_tokens());
    assert!(!text.contains(TOKEN) && !text.contains(READ_ONLY), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_is_off_unless_an_origin_is_given() {
    let origin = "https://admin.example.com";
    let off = TestServer::start(Kind::Sqlite).await.unwrap();
    let response = off
        .request(Method::GET, "/api/v1/stats")
        .header("origin", origin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    off.stop().await;

    let on = TestServer::start_with(
        Kind::Sqlite,
        ServerOptions {
            cors_origins: vec![origin.into()],
            ..ServerOptions::default()
        },
    )
    .await
    .unwrap();
    let preflight = on
        .request(Method::OPTIONS, "/api/v1/jobs")
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success());
    assert_eq!(
        preflight
            .headers()
            .get("access-control-allow-origin")
            .unwrap(),
        origin
    );
    let other = on
        .request(Method::GET, "/api/v1/stats")
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
    on.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_poll_outlives_the_request_timeout_up_to_its_own_cap() {
    let s = TestServer::start_with(
        Kind::Sqlite,
        ServerOptions {
            request_timeout: Duration::from_millis(200),
            ..ServerOptions::default()
        },
    )
    .await
    .unwrap();
    let id = kit::enqueue(s.queue(), "t").await;
    let started = std::time::Instant::now();
    let body = s.get_ok(&format!("/jobs/{id}/wait?timeout=1s")).await;
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(body["settled"], false);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_over_the_request_timeout_is_a_503_json_error() {
    let s = TestServer::start_with(
        Kind::Sqlite,
        ServerOptions {
            request_timeout: Duration::from_millis(300),
            ..ServerOptions::default()
        },
    )
    .await
    .unwrap();
    // SQLite in memory has one connection: holding it makes every database route wait.
    let underling::Pool::Sqlite(pool) = s.queue().pool() else {
        panic!("a SQLite pool");
    };
    let held = pool.acquire().await.unwrap();
    let started = std::time::Instant::now();
    let (status, body) = s.post("/jobs", json!({"task": "t"})).await;
    let message = assert_error(status, &body, StatusCode::SERVICE_UNAVAILABLE, "timeout");
    assert!(message.contains("--request-timeout"), "{message}");
    assert!(started.elapsed() >= Duration::from_millis(300));
    drop(held);
    assert_eq!(
        kit::job_count(s.queue()).await,
        0,
        "the timed-out enqueue was dropped"
    );
    let (status, _) = s.post("/jobs", json!({"task": "t"})).await;
    assert_eq!(status, StatusCode::CREATED);
    s.stop().await;
}

const WORKLOAD: &str = "workload-token-5555555555";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_workload_token_may_enqueue_and_report_on_leased_jobs_and_nothing_else() {
    let options = ServerOptions {
        workload_token: Some(WORKLOAD.into()),
        ..with_tokens()
    };
    let s = TestServer::start_with(Kind::Sqlite, options).await.unwrap();
    let url = |path: &str| format!("{}/api/v1{path}", s.url);
    let (status, body) = send(
        s.client
            .post(url("/jobs"))
            .bearer_auth(WORKLOAD)
            .json(&json!({"task": "t"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["id"].as_i64().unwrap();
    let (status, body) = send(
        s.client
            .post(url("/jobs/batch"))
            .bearer_auth(WORKLOAD)
            .json(&json!([{"task": "t"}])),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // A pull claim with the full token, then the workload token reports on it.
    let (_, claimed) = send(
        s.client
            .post(url("/claims"))
            .bearer_auth(TOKEN)
            .json(&json!({"lease": "30s"})),
    )
    .await;
    let token = claimed["jobs"][0]["token"].clone();
    let (status, body) = send(
        s.client
            .post(url(&format!("/jobs/{id}/extend")))
            .bearer_auth(WORKLOAD)
            .json(&json!({"token": token, "lease": "1m"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = send(
        s.client
            .post(url(&format!("/jobs/{id}/ack")))
            .bearer_auth(WORKLOAD)
            .json(&json!({"token": token, "result": 1})),
    )
    .await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({"id": id, "state": "finished"}))
    );
    // Anything else: 403, nothing written.
    let before = s.snapshot().await;
    for request in [
        s.client.get(url("/jobs")),
        s.client.get(url(&format!("/jobs/{id}"))),
        s.client.delete(url(&format!("/jobs/{id}"))),
        s.client
            .post(url(&format!("/jobs/{id}/retry")))
            .json(&json!({})),
        s.client.post(url("/claims")).json(&json!({})),
        s.client.post(url("/queues/default/pause")),
    ] {
        let (status, body) = send(request.bearer_auth(WORKLOAD)).await;
        let message = assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");
        assert_eq!(
            message,
            "the workload token may only enqueue (POST /api/v1/jobs, /api/v1/jobs/batch) and ack, reject or extend leased jobs: use the full token for anything else"
        );
    }
    assert_eq!(s.snapshot().await, before);
    s.stop().await;
}

#[test]
fn a_workload_token_needs_a_full_one_and_must_differ_from_the_others() {
    let alone = ServerOptions {
        workload_token: Some(WORKLOAD.into()),
        ..ServerOptions::default()
    };
    assert!(matches!(
        alone.check(),
        Err(ServerError::ReadOnlyWithoutToken)
    ));
    let same = ServerOptions {
        workload_token: Some(READ_ONLY.into()),
        ..with_tokens()
    };
    assert!(matches!(same.check(), Err(ServerError::SameTokens)));
}
