//! Tokens scoped to one HTTP workload (`Queue::set_workload_token`): accepted for
//! `POST /api/v1/jobs` and for ack, reject and extend of that workload's own jobs; 403
//! `forbidden` for another workload's job and for every other route. On both backends.

mod support;

use reqwest::StatusCode;
use serde_json::{Value, json};
use underling::LeaseOptions;
use underling_server::ServerOptions;

use support::{Kind, TestServer, assert_error, send};

const TOKEN: &str = "full-token-0123456789";
const THUMBS: &str = "thumbs-token-0123456789abcdef";

async fn start(kind: Kind) -> Option<TestServer> {
    let options = ServerOptions {
        token: Some(TOKEN.into()),
        ..ServerOptions::default()
    };
    let s = TestServer::start_with(kind, options).await?;
    s.queue()
        .set_workload_token("thumbs.make", THUMBS)
        .await
        .unwrap();
    Some(s)
}

/// Enqueues a job of `task` and claims it with a lease; its id and the lease's token.
async fn leased(s: &TestServer, task: &str) -> (i64, String) {
    let id = s
        .queue()
        .enqueue(task, json!({}), underling::EnqueueOptions::new())
        .await
        .unwrap();
    let claimed = s
        .queue()
        .claim_leased(&LeaseOptions {
            queues: vec!["default".into()],
            tasks: vec![task.into()],
            limit: 1,
            lease: std::time::Duration::from_secs(60),
        })
        .await
        .unwrap();
    assert_eq!(claimed[0].job.id, id);
    (id, claimed[0].lease.token.clone())
}

async fn post(s: &TestServer, token: &str, path: &str, body: Value) -> (StatusCode, Value) {
    send(
        s.client
            .post(format!("{}/api/v1{path}", s.url))
            .bearer_auth(token)
            .json(&body),
    )
    .await
}

async fn a_scoped_token_acks_a_job_of_its_own_workload(kind: Kind) {
    let Some(s) = start(kind).await else { return };
    let (id, lease) = leased(&s, "thumbs.make").await;
    let (status, body) = post(
        &s,
        THUMBS,
        &format!("/jobs/{id}/extend"),
        json!({"token": lease, "lease": "2m"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = post(
        &s,
        THUMBS,
        &format!("/jobs/{id}/ack"),
        json!({"token": lease, "result": {"ok": true}}),
    )
    .await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({"id": id, "state": "finished"}))
    );
    let job = s.queue().job(id).await.unwrap().unwrap();
    assert_eq!(
        (job.state, job.result),
        (underling::JobState::Finished, Some(json!({"ok": true})))
    );
    s.stop().await;
}

async fn a_scoped_token_may_not_ack_or_reject_another_workloads_job(kind: Kind) {
    let Some(s) = start(kind).await else { return };
    let (id, lease) = leased(&s, "mail.send").await;
    for (path, body) in [
        (format!("/jobs/{id}/ack"), json!({"token": lease})),
        (format!("/jobs/{id}/reject"), json!({"token": lease})),
        (format!("/jobs/{id}/extend"), json!({"token": lease})),
    ] {
        let (status, body) = post(&s, THUMBS, &path, body).await;
        let message = assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");
        assert_eq!(
            message,
            format!(
                "this token is scoped to the workload \"thumbs.make\": job {id} is of task \"mail.send\""
            )
        );
    }
    let job = s.queue().job(id).await.unwrap().unwrap();
    assert_eq!(
        job.state,
        underling::JobState::Active,
        "the job was left alone"
    );
    s.stop().await;
}

async fn a_scoped_token_may_not_read_stats_or_use_other_routes(kind: Kind) {
    let Some(s) = start(kind).await else { return };
    let before = s.snapshot().await;
    for request in [
        s.client.get(format!("{}/api/v1/stats", s.url)),
        s.client.get(format!("{}/api/v1/jobs", s.url)),
        s.client
            .post(format!("{}/api/v1/jobs/batch", s.url))
            .json(&json!([{"task": "t"}])),
        s.client
            .post(format!("{}/api/v1/claims", s.url))
            .json(&json!({})),
        s.client
            .post(format!("{}/api/v1/queues/default/pause", s.url)),
    ] {
        let (status, body) = send(request.bearer_auth(THUMBS)).await;
        let message = assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");
        assert_eq!(
            message,
            "this token is scoped to the workload \"thumbs.make\": it may only enqueue (POST /api/v1/jobs) and ack, reject or extend that workload's jobs"
        );
    }
    assert_eq!(s.snapshot().await, before, "nothing was written");
    s.stop().await;
}

async fn a_scoped_token_publishes_a_follow_up_job(kind: Kind) {
    let Some(s) = start(kind).await else { return };
    let (status, body) = post(
        &s,
        THUMBS,
        "/jobs",
        json!({"task": "thumbs.store", "args": {"n": 1}}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["id"].as_i64().unwrap();
    let job = s.queue().job(id).await.unwrap().unwrap();
    assert_eq!(
        (job.task.as_str(), job.args),
        ("thumbs.store", json!({"n": 1}))
    );
    s.stop().await;
}

async fn a_revoked_or_replaced_scoped_token_is_refused_with_401(kind: Kind) {
    let Some(s) = start(kind).await else { return };
    let fresh = s
        .queue()
        .generate_workload_token("thumbs.make")
        .await
        .unwrap();
    assert!(fresh.starts_with("uwt_") && fresh.len() == 68, "{fresh}");
    let (status, body) = post(&s, THUMBS, "/jobs", json!({"task": "t"})).await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
    let (status, body) = post(&s, &fresh, "/jobs", json!({"task": "t"})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert!(
        s.queue()
            .revoke_workload_token("thumbs.make")
            .await
            .unwrap()
    );
    let (status, body) = post(&s, &fresh, "/jobs", json!({"task": "t"})).await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
    assert!(
        !s.queue()
            .revoke_workload_token("thumbs.make")
            .await
            .unwrap()
    );
    s.stop().await;
}

macro_rules! both {
    ($($name:ident),*) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Kind::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Kind::Postgres).await;
                }
            )*
        }
    };
}

both!(
    a_scoped_token_acks_a_job_of_its_own_workload,
    a_scoped_token_may_not_ack_or_reject_another_workloads_job,
    a_scoped_token_may_not_read_stats_or_use_other_routes,
    a_scoped_token_publishes_a_follow_up_job,
    a_revoked_or_replaced_scoped_token_is_refused_with_401
);

#[tokio::test]
async fn a_short_workload_token_is_refused_and_nothing_is_stored() {
    let store = underling_testkit::sqlite().await;
    let err = store
        .queue
        .set_workload_token("w", "short")
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid option: a workload token must have at least 16 characters, visible ASCII only (no spaces)"
    );
    assert_eq!(store.queue.workload_of_token("short").await.unwrap(), None);
    store.cleanup().await;
}
