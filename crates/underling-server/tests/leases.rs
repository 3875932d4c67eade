//! Pull workers over HTTP, on SQLite and PostgreSQL: claims with a lease, ack, reject and
//! extend, a lease that runs out handing the job to a second client whose predecessor's late
//! ack gets 409, and bad bodies that write nothing.

mod support;

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::{assert_error, send};
use underling::{EnqueueOptions, JobState};
use underling_server::ServerOptions;
use underling_testkit::support as kit;

/// The one job of a claim's answer.
fn only(claimed: &Value) -> &Value {
    let jobs = claimed["jobs"].as_array().expect("jobs");
    assert_eq!(jobs.len(), 1, "{claimed}");
    &jobs[0]
}

on_both_backends! {
    async fn a_claim_hands_out_jobs_with_a_lease_and_an_ack_finishes_one(s) {
        let id = kit::enqueue_with(s.queue(), "mail.send", EnqueueOptions::new().queue("mail")).await;
        let (status, claimed) = s.post("/claims", json!({"queues": ["mail"], "tasks": ["mail.send"], "limit": 5, "lease": "30s"})).await;
        assert_eq!(status, StatusCode::OK, "{claimed}");
        let job = only(&claimed);
        assert_eq!((job["id"].as_i64(), job["task"].as_str(), job["queue"].as_str()), (Some(id), Some("mail.send"), Some("mail")));
        assert_eq!(job["token"], json!(format!("{id}.0")));
        assert!(job["lease_expires"].is_string(), "{job}");
        let (status, acked) = s.post(&format!("/jobs/{id}/ack"), json!({"token": job["token"], "result": {"sent": true}})).await;
        assert_eq!(status, StatusCode::OK, "{acked}");
        assert_eq!(acked, json!({"id": id, "state": "finished"}));
        let stored = kit::job(s.queue(), id).await;
        assert_eq!((stored.state, stored.result), (JobState::Finished, Some(json!({"sent": true}))));
    }

    async fn a_claim_with_an_empty_body_takes_one_job_of_the_default_queue(s) {
        let id = kit::enqueue(s.queue(), "t").await;
        kit::enqueue(s.queue(), "t").await;
        let (status, claimed) = send(s.request(Method::POST, "/api/v1/claims")).await;
        assert_eq!(status, StatusCode::OK, "{claimed}");
        assert_eq!(only(&claimed)["id"], json!(id));
    }

    async fn an_expired_lease_hands_the_job_to_a_second_client_and_the_first_ones_ack_gets_409(s) {
        let id = kit::enqueue_with(s.queue(), "t", EnqueueOptions::new().attempts(3)).await;
        let (_, first) = s.post("/claims", json!({"lease": "1s"})).await;
        let first_token = only(&first)["token"].clone();
        // The lease runs out after 1 s; then the job waits out its backoff (1 s) and a second
        // client's claim gets it.
        let second = kit::wait_for("a second client to get the job", || async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let (status, claimed) = s.post("/claims", json!({"lease": "30s"})).await;
            assert_eq!(status, StatusCode::OK, "{claimed}");
            claimed["jobs"].as_array().and_then(|jobs| jobs.first().cloned())
        }).await;
        assert_eq!((second["id"].as_i64(), second["retries"].as_i64()), (Some(id), Some(1)));
        let (status, body) = s.post(&format!("/jobs/{id}/ack"), json!({"token": first_token, "result": "late"})).await;
        let message = assert_error(status, &body, StatusCode::CONFLICT, "lease_lost");
        assert_eq!(message, format!("job {id}: the lease is lost: the lease was for attempt 1, and the job is at attempt 2 now (the lease ran out, or the job was retried)"));
        let (status, body) = s.post(&format!("/jobs/{id}/extend"), json!({"token": first_token})).await;
        assert_error(status, &body, StatusCode::CONFLICT, "lease_lost");
        let stored = kit::job(s.queue(), id).await;
        assert_eq!((stored.state, stored.retries), (JobState::Active, 1));
        let (status, acked) = s.post(&format!("/jobs/{id}/ack"), json!({"token": second["token"], "result": "on time"})).await;
        assert_eq!(status, StatusCode::OK, "{acked}");
        assert_eq!(kit::job(s.queue(), id).await.result, Some(json!("on time")));
    }

    async fn reject_retries_or_fails_the_job_for_good(s) {
        let a = kit::enqueue_with(s.queue(), "t", EnqueueOptions::new().attempts(3)).await;
        let b = kit::enqueue_with(s.queue(), "t", EnqueueOptions::new().attempts(3)).await;
        let (_, claimed) = s.post("/claims", json!({"limit": 2})).await;
        let token = |id: i64| json!(format!("{id}.0"));
        assert_eq!(claimed["jobs"].as_array().map(Vec::len), Some(2));
        let (status, retried) = s.post(&format!("/jobs/{a}/reject"), json!({"token": token(a), "error": "busy", "delay": "1m"})).await;
        assert_eq!((status, retried), (StatusCode::OK, json!({"id": a, "state": "inactive"})));
        let (status, failed) = s.post(&format!("/jobs/{b}/reject"), json!({"token": token(b), "error": {"why": "bad"}, "retry": false})).await;
        assert_eq!((status, failed), (StatusCode::OK, json!({"id": b, "state": "failed"})));
        let a = kit::job(s.queue(), a).await;
        assert_eq!((a.state, a.retries, a.result), (JobState::Inactive, 1, Some(json!("busy"))));
        assert_eq!(a.delayed - a.retried.unwrap(), chrono::Duration::seconds(60));
        let b = kit::job(s.queue(), b).await;
        assert_eq!((b.state, b.result), (JobState::Failed, Some(json!({"why": "bad"}))));
    }

    async fn extend_renews_a_lease(s) {
        let id = kit::enqueue(s.queue(), "t").await;
        let (_, claimed) = s.post("/claims", json!({"lease": 5})).await;
        let job = only(&claimed);
        let (status, extended) = s.post(&format!("/jobs/{id}/extend"), json!({"token": job["token"], "lease": "1h"})).await;
        assert_eq!(status, StatusCode::OK, "{extended}");
        let before: chrono::DateTime<chrono::Utc> = job["lease_expires"].as_str().unwrap().parse().unwrap();
        let after: chrono::DateTime<chrono::Utc> = extended["lease_expires"].as_str().unwrap().parse().unwrap();
        assert!(after - before > chrono::Duration::minutes(59), "{before} -> {after}");
    }

    async fn ack_of_an_unknown_job_is_404(s) {
        let (status, body) = s.post("/jobs/999/ack", json!({"token": "999.0"})).await;
        assert_eq!(assert_error(status, &body, StatusCode::NOT_FOUND, "not_found"), "job 999 not found");
    }

    async fn bad_bodies_are_refused_with_clear_messages_and_write_nothing(s) {
        let id = kit::enqueue(s.queue(), "t").await;
        let before = s.snapshot().await;
        let cases = [
            ("/claims", json!({"limit": 0}), StatusCode::UNPROCESSABLE_ENTITY, "invalid_option", "limit: give 1 to 1000 jobs, got 0".to_string()),
            ("/claims", json!({"lease": "soon"}), StatusCode::UNPROCESSABLE_ENTITY, "invalid_duration", "lease: expected number at 0; give a number and a unit, like 90s, 5m, 2h or 1d".to_string()),
            ("/claims", json!({"lease": "0s"}), StatusCode::UNPROCESSABLE_ENTITY, "invalid_option", "invalid option: a lease must last from 1 second to 100 years, got 0ns".to_string()),
            ("/claims", json!({"queues": [""]}), StatusCode::UNPROCESSABLE_ENTITY, "invalid_queue", underling::Error::InvalidQueue(String::new()).to_string()),
            (&format!("/jobs/{id}/ack"), json!({"result": 1}), StatusCode::UNPROCESSABLE_ENTITY, "invalid_body", String::new()),
            (&format!("/jobs/{id}/ack"), json!({"token": "nonsense"}), StatusCode::UNPROCESSABLE_ENTITY, "invalid_lease", format!("invalid lease token \"nonsense\" for job {id}: give the token the claim returned with the job")),
            (&format!("/jobs/{id}/reject"), json!({"token": format!("{id}.0"), "retry": false, "delay": "1m"}), StatusCode::UNPROCESSABLE_ENTITY, "invalid_option", "delay is the delay before a retry: give it with retry true (or leave it out)".to_string()),
            (&format!("/jobs/{id}/ack"), json!({"token": format!("{id}.0")}), StatusCode::CONFLICT, "lease_lost", format!("job {id}: the lease is lost: the job is inactive already")),
        ];
        for (path, body, status, code, message) in cases {
            let (got, answer) = s.post(path, body.clone()).await;
            let said = assert_error(got, &answer, status, code);
            if !message.is_empty() {
                assert_eq!(said, message, "{path} {body}");
            }
        }
        let (status, body) = send(s.request(Method::POST, &format!("/api/v1/jobs/{id}/ack")).header("content-type", "application/json").body("{")).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_json");
        assert_eq!(s.snapshot().await, before, "nothing was written");
    }
}

#[tokio::test]
async fn a_read_only_token_cannot_claim() {
    let options = ServerOptions {
        token: Some("full".into()),
        read_only_token: Some("reader".into()),
        ..ServerOptions::default()
    };
    let s = support::TestServer::start_with(support::Kind::Sqlite, options)
        .await
        .expect("SQLite always opens");
    kit::enqueue(s.queue(), "t").await;
    let (status, body) = send(
        s.client
            .post(format!("{}/api/v1/claims", s.url))
            .bearer_auth("reader")
            .json(&json!({})),
    )
    .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");
    let (status, _) = send(
        s.client
            .post(format!("{}/api/v1/claims", s.url))
            .bearer_auth("full")
            .json(&json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    s.stop().await;
}
