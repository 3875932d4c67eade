//! Every route's happy path and its main errors, over HTTP, on SQLite and PostgreSQL.

mod support;

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use support::assert_error;
use underling::{EnqueueOptions, JobState};
use underling_testkit::support as kit;

/// The ids of a `GET /jobs` page.
fn ids(page: &Value) -> Vec<i64> {
    page["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .map(|j| j["id"].as_i64().expect("id"))
        .collect()
}

on_both_backends! {
    async fn enqueue_answers_201_with_the_id_and_the_job_has_every_field_given(s) {
        let (status, body) = s.post("/jobs", json!({
            "task": "mail.send", "args": {"to": "a@example.com"}, "queue": "mail",
            "priority": 5, "attempts": 3, "notes": {"tag": "x"}, "expire": "1h",
        })).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let id = body["id"].as_i64().expect("id");
        assert_eq!(body, json!({"id": id}));
        let job = kit::job(s.queue(), id).await;
        assert_eq!((job.task.as_str(), job.queue.as_str(), job.priority, job.attempts), ("mail.send", "mail", 5, 3));
        assert_eq!(job.args, json!({"to": "a@example.com"}));
        assert_eq!(job.notes.get("tag"), Some(&json!("x")));
        assert!(job.expires.is_some());
    }

    async fn a_unique_enqueue_of_a_live_key_answers_200_with_the_existing_id_as_a_duplicate(s) {
        let body = json!({"task": "t", "args": {"n": 1}, "unique_key": "k", "timeout": "90s"});
        let (status, first) = s.post("/jobs", body.clone()).await;
        assert_eq!(status, StatusCode::CREATED, "{first}");
        let id = first["id"].as_i64().expect("id");
        let (status, again) = s.post("/jobs", body).await;
        assert_eq!((status, again), (StatusCode::OK, json!({"id": id, "duplicate": true})));
        let (status, replaced) = s.post("/jobs", json!({"task": "t", "args": {"n": 2}, "unique_key": "k", "on_conflict": "replace"})).await;
        assert_eq!((status, replaced), (StatusCode::OK, json!({"id": id, "duplicate": true, "replaced": true})));
        let job = kit::job(s.queue(), id).await;
        assert_eq!((job.args, job.timeout_ms, job.unique_key.as_deref()), (json!({"n": 2}), Some(90_000), Some("k")));
        assert_eq!(s.get_ok(&format!("/jobs/{id}")).await["unique_key"], json!("k"));
        assert_eq!(kit::job_count(s.queue()).await, 1);
    }

    async fn a_unique_conflict_under_the_error_policy_is_409_and_writes_nothing(s) {
        let (_, first) = s.post("/jobs", json!({"task": "t", "unique_key": "k"})).await;
        let id = first["id"].as_i64().expect("id");
        let (status, body) = s.post("/jobs", json!({"task": "t", "unique_key": "k", "on_conflict": "error"})).await;
        let message = assert_error(status, &body, StatusCode::CONFLICT, "unique_conflict");
        assert!(message.starts_with(&format!("a job with the unique key \"k\" exists already: job {id}")), "{message}");
        assert_eq!(kit::job_count(s.queue()).await, 1);
    }

    async fn a_batch_with_duplicate_keys_lists_the_duplicates(s) {
        let (status, body) = s.post("/jobs/batch", json!([
            {"task": "t", "unique_by": "args", "args": {"x": 1}},
            {"task": "t"},
            {"task": "t", "unique_by": "args", "args": {"x": 1}},
        ])).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let ids: Vec<i64> = serde_json::from_value(body["ids"].clone()).unwrap();
        assert_eq!(ids[2], ids[0]);
        assert_eq!(body["duplicates"], json!([2]));
        assert_eq!(kit::job_count(s.queue()).await, 2);
    }

    async fn a_unique_scope_without_a_key_is_422(s) {
        let (status, body) = s.post("/jobs", json!({"task": "t", "unique_scope": "period"})).await;
        let message = assert_error(status, &body, StatusCode::UNPROCESSABLE_ENTITY, "invalid_option");
        assert_eq!(message, "invalid option: unique_scope, unique_for and on_conflict need unique_key or unique_by");
        let (status, body) = s.post("/jobs", json!({"task": "t", "unique_key": "k", "unique_for": "soon"})).await;
        assert_error(status, &body, StatusCode::UNPROCESSABLE_ENTITY, "invalid_duration");
        assert_eq!(kit::job_count(s.queue()).await, 0);
    }

    async fn enqueue_takes_a_delay_in_words_or_seconds(s) {
        let (_, a) = s.post("/jobs", json!({"task": "t", "delay": "1h"})).await;
        let (_, b) = s.post("/jobs", json!({"task": "t", "delay": 90})).await;
        let a = kit::job(s.queue(), a["id"].as_i64().unwrap()).await;
        let b = kit::job(s.queue(), b["id"].as_i64().unwrap()).await;
        let secs = |j: &underling::Job| (j.delayed - j.created).num_seconds();
        assert!((3599..=3600).contains(&secs(&a)), "{}", secs(&a));
        assert!((89..=90).contains(&secs(&b)), "{}", secs(&b));
    }

    async fn enqueue_with_a_missing_parent_is_422_and_writes_nothing(s) {
        let (status, body) = s.post("/jobs", json!({"task": "t", "parents": [999]})).await;
        let message = assert_error(status, &body, StatusCode::UNPROCESSABLE_ENTITY, "parent_not_found");
        assert!(message.contains("999"), "{message}");
        assert_eq!(kit::job_count(s.queue()).await, 0);
    }

    async fn a_batch_answers_every_id_in_order(s) {
        let (status, body) = s.post("/jobs/batch", json!([
            {"task": "a"}, {"task": "b", "queue": "q"}, {"task": "c", "priority": -1},
        ])).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let ids: Vec<i64> = serde_json::from_value(body["ids"].clone()).unwrap();
        assert_eq!(ids.len(), 3);
        assert_eq!(kit::job(s.queue(), ids[1]).await.queue, "q");
        assert_eq!(kit::job(s.queue(), ids[2]).await.task, "c");
    }

    async fn a_batch_with_one_bad_job_names_it_and_writes_none(s) {
        let (status, body) = s.post("/jobs/batch", json!([
            {"task": "a"}, {"task": "b", "attempts": 0},
        ])).await;
        let message = assert_error(status, &body, StatusCode::UNPROCESSABLE_ENTITY, "invalid_option");
        assert!(message.starts_with("job [1]: "), "{message}");
        assert_eq!(kit::job_count(s.queue()).await, 0);
    }

    async fn a_job_shows_the_cli_json_fields_and_its_derived_state(s) {
        let parent = kit::enqueue(s.queue(), "p").await;
        let child = kit::enqueue_with(s.queue(), "c", EnqueueOptions::new().parent(parent)).await;
        let later = kit::enqueue_with(s.queue(), "l", EnqueueOptions::new().delay(Duration::from_secs(3600))).await;
        let shown = s.get_ok(&format!("/jobs/{child}")).await;
        // The CLI's `job show --json`, and the derived states.
        let mut cli = serde_json::to_value(kit::job(s.queue(), child).await).unwrap();
        cli["derived"] = json!(["waiting"]);
        assert_eq!(shown, cli);
        assert_eq!(s.get_ok(&format!("/jobs/{parent}")).await["children"], json!([child]));
        assert_eq!(s.get_ok(&format!("/jobs/{parent}")).await["derived"], json!([]));
        assert_eq!(s.get_ok(&format!("/jobs/{later}")).await["derived"], json!(["scheduled"]));
    }

    async fn a_missing_job_is_404(s) {
        let (status, body) = s.get("/jobs/424242").await;
        assert_eq!(assert_error(status, &body, StatusCode::NOT_FOUND, "not_found"), "job 424242 not found");
    }

    async fn wait_answers_a_finished_job_as_settled(s) {
        let id = kit::enqueue(s.queue(), "t").await;
        let w = kit::worker(&s.store).await;
        kit::run_to_finish(&s.store, w, id).await;
        let body = s.get_ok(&format!("/jobs/{id}/wait?timeout=5s")).await;
        assert_eq!(body["settled"], true);
        assert_eq!(body["job"]["state"], "finished");
    }

    async fn wait_answers_a_job_that_settles_during_the_wait(s) {
        let id = kit::enqueue(s.queue(), "t").await;
        let w = kit::worker(&s.store).await;
        let attempt = kit::claim_by_id(&s.store, w, id).await.expect("claimed");
        let waiting = {
            let request = s.request(reqwest::Method::GET, &format!("/api/v1/jobs/{id}/wait?timeout=20s"));
            tokio::spawn(support::send(request))
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        kit::finish(&s.store, &attempt, json!({"ok": 1})).await;
        let (status, body) = waiting.await.unwrap();
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["settled"], true);
        assert_eq!(body["job"]["result"], json!({"ok": 1}));
    }

    async fn wait_answers_unsettled_when_the_time_is_up(s) {
        let id = kit::enqueue(s.queue(), "t").await;
        let started = std::time::Instant::now();
        let body = s.get_ok(&format!("/jobs/{id}/wait?timeout=300ms")).await;
        assert!(started.elapsed() >= Duration::from_millis(300));
        assert_eq!(body["settled"], false);
        assert_eq!(body["job"]["state"], "inactive");
    }

    async fn wait_refuses_a_timeout_above_five_minutes_and_a_missing_job(s) {
        let id = kit::enqueue(s.queue(), "t").await;
        let (status, body) = s.get(&format!("/jobs/{id}/wait?timeout=6m")).await;
        assert_error(status, &body, StatusCode::UNPROCESSABLE_ENTITY, "invalid_duration");
        let (status, body) = s.get("/jobs/999/wait?timeout=1s").await;
        assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    }

    async fn list_filters_like_the_cli(s) {
        let a = kit::enqueue_with(s.queue(), "t1", EnqueueOptions::new().queue("q1").notes(json!({"tag": 1}))).await;
        let b = kit::enqueue_with(s.queue(), "t2", EnqueueOptions::new().queue("q2")).await;
        let c = kit::enqueue_with(s.queue(), "t1", EnqueueOptions::new().queue("q2").delay(Duration::from_secs(600))).await;
        let w = kit::worker(&s.store).await;
        let done = kit::enqueue(s.queue(), "t3").await;
        kit::run_to_finish(&s.store, w, done).await;
        let list = |q: &'static str| s.get_ok(q);
        assert_eq!(ids(&list("/jobs").await), [done, c, b, a]);
        assert_eq!(list("/jobs").await["total"], 4);
        assert_eq!(ids(&list("/jobs?state=finished").await), [done]);
        assert_eq!(ids(&list("/jobs?state=scheduled").await), [c]);
        assert_eq!(ids(&list("/jobs?state=inactive&state=FINISHED").await), [done, c, b, a]);
        assert_eq!(ids(&list("/jobs?state=finished,scheduled").await), [done, c]);
        assert_eq!(ids(&list("/jobs?queue=q2").await), [c, b]);
        assert_eq!(ids(&list("/jobs?task=t1&queue=q1").await), [a]);
        assert_eq!(ids(&list("/jobs?note=tag").await), [a]);
        assert_eq!(ids(&s.get_ok(&format!("/jobs?id={a},{b}")).await), [b, a]);
        assert_eq!(ids(&list("/jobs?finished_before=2999-01-01T00:00:00Z").await), [done]);
        assert_eq!(ids(&list("/jobs?queue=nowhere").await), Vec::<i64>::new());
    }

    async fn list_pages_by_keyset_with_next(s) {
        let all: Vec<i64> = futures_ids(&s, 5).await;
        let first = s.get_ok("/jobs?limit=2").await;
        assert_eq!(ids(&first), [all[4], all[3]]);
        assert_eq!(first["next"], all[3]);
        assert_eq!(first["total"], 5);
        let second = s.get_ok(&format!("/jobs?limit=2&before={}", all[3])).await;
        assert_eq!(ids(&second), [all[2], all[1]]);
        let third = s.get_ok(&format!("/jobs?limit=2&before={}", all[1])).await;
        assert_eq!(ids(&third), [all[0]]);
        assert_eq!(third["next"], Value::Null);
        let exact = s.get_ok(&format!("/jobs?limit=2&before={}", all[2])).await;
        assert_eq!(ids(&exact), [all[1], all[0]]);
        assert_eq!(exact["next"], Value::Null, "no job below: no next page");
    }

    async fn list_refuses_a_limit_above_1000_and_unknown_parameters(s) {
        let (status, body) = s.get("/jobs?limit=1001").await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_query");
        let (status, body) = s.get("/jobs?stat=failed").await;
        let message = assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_query");
        assert!(message.contains("\"stat\""), "{message}");
    }

    async fn retry_puts_a_finished_job_back_with_changes(s) {
        let id = kit::enqueue(s.queue(), "t").await;
        let w = kit::worker(&s.store).await;
        kit::run_to_finish(&s.store, w, id).await;
        let (status, body) = s.post(&format!("/jobs/{id}/retry"), json!({"queue": "again", "priority": 7})).await;
        assert_eq!((status, body), (StatusCode::OK, json!({"retried": 1})));
        let job = kit::job(s.queue(), id).await;
        assert_eq!((job.state, job.retries, job.queue.as_str(), job.priority), (JobState::Inactive, 1, "again", 7));
    }

    async fn retry_takes_an_empty_body_and_a_missing_job_is_404(s) {
        let id = kit::enqueue(s.queue(), "t").await;
        let (status, _) = crate::support::send(s.request(reqwest::Method::POST, &format!("/api/v1/jobs/{id}/retry"))).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(kit::job(s.queue(), id).await.retries, 1);
        let (status, body) = s.post("/jobs/999/retry", json!({})).await;
        assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    }

    async fn delete_removes_a_job_then_it_is_404(s) {
        let id = kit::enqueue(s.queue(), "t").await;
        assert_eq!(s.delete(&format!("/jobs/{id}")).await, (StatusCode::OK, json!({"removed": 1})));
        let (status, body) = s.delete(&format!("/jobs/{id}")).await;
        assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
        assert_eq!(kit::job_count(s.queue()).await, 0);
    }

    async fn delete_of_an_active_job_is_409(s) {
        let id = kit::enqueue(s.queue(), "t").await;
        let w = kit::worker(&s.store).await;
        kit::claim_by_id(&s.store, w, id).await.expect("claimed");
        let (status, body) = s.delete(&format!("/jobs/{id}")).await;
        assert_error(status, &body, StatusCode::CONFLICT, "job_active");
        assert_eq!(kit::state(s.queue(), id).await, JobState::Active);
    }

    async fn stop_and_kill_reach_the_worker_of_a_running_job(s) {
        let id = kit::enqueue(s.queue(), "t").await;
        let w = kit::worker(&s.store).await;
        kit::claim_by_id(&s.store, w, id).await.expect("claimed");
        let (status, body) = s.post(&format!("/jobs/{id}/stop"), json!(null)).await;
        assert_eq!((status, body), (StatusCode::OK, json!({"job": id, "worker": w, "command": "stop"})));
        let (status, body) = s.post(&format!("/jobs/{id}/kill"), json!(null)).await;
        assert_eq!((status, body), (StatusCode::OK, json!({"job": id, "worker": w, "command": "kill"})));
        let inbox = s.store.store.receive(w).await.unwrap();
        let names: Vec<&str> = inbox.iter().map(|c| c.command.as_str()).collect();
        assert_eq!(names, ["stop", "kill"]);
    }

    async fn stop_of_a_job_that_is_not_running_is_409(s) {
        let id = kit::enqueue(s.queue(), "t").await;
        let (status, body) = s.post(&format!("/jobs/{id}/stop"), json!(null)).await;
        assert_error(status, &body, StatusCode::CONFLICT, "job_not_active");
        let (status, body) = s.post("/jobs/999/kill", json!(null)).await;
        assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    }

    async fn notes_merge_and_a_null_deletes_a_key(s) {
        let id = kit::enqueue_with(s.queue(), "t", EnqueueOptions::new().notes(json!({"a": 1, "b": 2}))).await;
        let (status, body) = s.post(&format!("/jobs/{id}/notes"), json!({"b": null, "c": [3]})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["notes"], json!({"a": 1, "c": [3]}));
        let (status, body) = s.post("/jobs/999/notes", json!({"x": 1})).await;
        assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    }

    async fn bulk_retry_retries_the_jobs_matching_the_filter(s) {
        let w = kit::worker(&s.store).await;
        let failed = kit::enqueue(s.queue(), "t").await;
        kit::run_to_failure(&s.store, w, failed).await;
        let other = kit::enqueue(s.queue(), "t").await;
        let (status, body) = s.post("/jobs/retry", json!({"states": ["failed"]})).await;
        assert_eq!((status, body), (StatusCode::OK, json!({"retried": 1})));
        assert_eq!(kit::job(s.queue(), failed).await.retries, 1);
        assert_eq!(kit::job(s.queue(), other).await.retries, 0);
    }

    async fn bulk_operations_refuse_an_empty_filter_unless_all(s) {
        kit::enqueue(s.queue(), "t").await;
        let (status, body) = s.post("/jobs/retry", json!({})).await;
        assert_error(status, &body, StatusCode::UNPROCESSABLE_ENTITY, "empty_filter");
        let (status, body) = s.post("/jobs/remove", json!({})).await;
        assert_error(status, &body, StatusCode::UNPROCESSABLE_ENTITY, "empty_filter");
        assert_eq!(kit::job_count(s.queue()).await, 1);
        assert_eq!(s.post("/jobs/remove", json!({"all": true})).await, (StatusCode::OK, json!({"removed": 1})));
        assert_eq!(kit::job_count(s.queue()).await, 0);
    }

    async fn bulk_remove_removes_matching_jobs_but_never_active_ones(s) {
        let a = kit::enqueue(s.queue(), "gone").await;
        let b = kit::enqueue(s.queue(), "gone").await;
        let keep = kit::enqueue(s.queue(), "kept").await;
        let w = kit::worker(&s.store).await;
        kit::claim_by_id(&s.store, w, b).await.expect("claimed");
        assert_eq!(s.post("/jobs/remove", json!({"tasks": ["gone"]})).await, (StatusCode::OK, json!({"removed": 1})));
        assert!(s.queue().job(a).await.unwrap().is_none());
        assert_eq!(kit::state(s.queue(), b).await, JobState::Active);
        assert_eq!(kit::state(s.queue(), keep).await, JobState::Inactive);
        let (status, body) = s.post("/jobs/remove", json!({"states": ["active"]})).await;
        assert_error(status, &body, StatusCode::UNPROCESSABLE_ENTITY, "job_active");
    }

    async fn stats_history_and_tasks_answer_the_cli_json(s) {
        kit::enqueue(s.queue(), "t").await;
        assert_eq!(s.get_ok("/stats").await, serde_json::to_value(s.queue().stats().await.unwrap()).unwrap());
        let history = s.get_ok("/history").await;
        assert_eq!(history.as_array().map(Vec::len), Some(serde_json::to_value(s.queue().history().await.unwrap()).unwrap().as_array().unwrap().len()));
        assert_eq!(s.get_ok("/tasks").await, json!([]));
    }

    async fn history_minutes_counts_each_settle_in_the_minute_it_happened(s) {
        let worker = kit::worker(&s.store).await;
        let finished = kit::enqueue(s.queue(), "t").await;
        kit::run_to_finish(&s.store, worker, finished).await;
        let failed = kit::enqueue(s.queue(), "t").await;
        kit::run_to_failure(&s.store, worker, failed).await;
        let retried = kit::enqueue_with(s.queue(), "t", EnqueueOptions::new().attempts(2)).await;
        let job = kit::claim_by_id(&s.store, worker, retried).await.expect("claimed");
        kit::fail(&s.store, &job, json!("once"), Duration::from_secs(3600)).await;
        let minutes = s.get_ok("/history/minutes").await;
        let minutes = minutes.as_array().expect("an array");
        assert_eq!(minutes.len(), 60);
        let at = |i: usize| chrono::DateTime::parse_from_rfc3339(minutes[i]["minute"].as_str().expect("a minute")).expect("a time");
        for i in 1..60 {
            assert_eq!((at(i) - at(i - 1)).num_seconds(), 60, "one point a minute, oldest first");
        }
        let sum = |key: &str| minutes.iter().map(|m| m[key].as_u64().expect("a count")).sum::<u64>();
        // (Summed: the settles may straddle a minute's end.)
        assert_eq!((sum("finished"), sum("failed"), sum("failed_attempts")), (1, 1, 2));
    }

    async fn queue_throughput_counts_the_jobs_each_queue_finished_and_failed(s) {
        let worker = kit::worker(&s.store).await;
        for _ in 0..2 {
            let id = kit::enqueue_with(s.queue(), "t", EnqueueOptions::new().queue("mail")).await;
            kit::run_to_finish(&s.store, worker, id).await;
        }
        let id = kit::enqueue_with(s.queue(), "t", EnqueueOptions::new().queue("mail")).await;
        kit::run_to_failure(&s.store, worker, id).await;
        let id = kit::enqueue_with(s.queue(), "t", EnqueueOptions::new().queue("reports")).await;
        kit::run_to_finish(&s.store, worker, id).await;
        // A failed attempt that is retried, a waiting job and a removed finished job end nothing.
        let retried = kit::enqueue_with(s.queue(), "t", EnqueueOptions::new().queue("reports").attempts(2)).await;
        let job = kit::claim_by_id(&s.store, worker, retried).await.expect("claimed");
        kit::fail(&s.store, &job, json!("once"), Duration::from_secs(3600)).await;
        kit::enqueue_with(s.queue(), "t", EnqueueOptions::new().queue("idle")).await;
        s.queue().remove_job(id).await.unwrap();
        assert_eq!(s.get_ok("/queues/throughput").await, json!([
            {"queue": "mail", "finished_last_hour": 2, "failed_last_hour": 1, "finished_last_5m": 2, "failed_last_5m": 1},
            {"queue": "reports", "finished_last_hour": 1, "failed_last_hour": 0, "finished_last_5m": 1, "failed_last_5m": 0},
        ]));
        assert_eq!(serde_json::to_value(s.queue().throughput().await.unwrap()).unwrap(), s.get_ok("/queues/throughput").await);
    }

    async fn queues_list_pause_and_resume(s) {
        kit::enqueue_with(s.queue(), "t", EnqueueOptions::new().queue("mail")).await;
        assert_eq!(s.post("/queues/mail/pause", json!(null)).await, (StatusCode::OK, json!({"queue": "mail", "paused": true})));
        let queues = s.get_ok("/queues").await;
        assert_eq!(queues, serde_json::to_value(s.queue().queues().await.unwrap()).unwrap());
        assert_eq!(queues[0]["paused"], true);
        assert_eq!(s.post("/queues/mail/resume", json!(null)).await, (StatusCode::OK, json!({"queue": "mail", "paused": false})));
        assert_eq!(s.get_ok("/queues").await[0]["paused"], false);
    }

    async fn a_queue_is_made_fifo_and_back_and_a_bad_body_changes_nothing(s) {
        kit::enqueue_with(s.queue(), "t", EnqueueOptions::new().queue("ledger")).await;
        assert_eq!(s.post("/queues/ledger/fifo", json!({"fifo": true})).await, (StatusCode::OK, json!({"queue": "ledger", "fifo": true})));
        assert_eq!(s.get_ok("/queues").await[0]["fifo"], true);
        let (status, body) = s.post("/queues/ledger/fifo", json!({"fifo": "yes"})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(s.get_ok("/queues").await[0]["fifo"], true);
        assert_eq!(s.post("/queues/ledger/fifo", json!({"fifo": false})).await, (StatusCode::OK, json!({"queue": "ledger", "fifo": false})));
        assert_eq!(s.get_ok("/queues").await[0]["fifo"], false);
    }

    async fn limits_set_list_and_remove(s) {
        let body = json!({"scope": {"kind": "args", "name": "tenant"}, "concurrency": 2, "rate": "100/1m"});
        assert_eq!(s.post("/limits", body).await, (StatusCode::OK, json!({"scope": {"kind": "args", "name": "tenant"}, "concurrency": 2, "rate": "100/1m"})));
        let body = json!({"scope": {"kind": "queue", "name": "mail"}, "concurrency": 3});
        assert_eq!(s.post("/limits", body).await.0, StatusCode::OK);
        assert_eq!(s.get_ok("/limits").await, serde_json::to_value(s.queue().limits().await.unwrap()).unwrap());
        assert_eq!(s.delete("/limits/queue/mail").await, (StatusCode::OK, json!({"removed": true})));
        let (status, body) = s.delete("/limits/queue/mail").await;
        assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
        assert_eq!(body["error"]["message"], "there is no limit on queue mail");
        assert_eq!(s.queue().limits().await.unwrap().len(), 1);
    }

    async fn a_malformed_limit_is_a_422_that_changes_nothing(s) {
        for (body, code, message) in [
            (json!({"scope": {"kind": "queue", "name": "mail"}, "concurrency": 0}), "invalid_limit", "invalid limit: queue mail: concurrency must be at least 1 (to stop a queue, pause it)"),
            (json!({"scope": {"kind": "queue", "name": "mail"}}), "invalid_limit", "invalid limit: queue mail: give a concurrency, a rate or both"),
            (json!({"scope": {"kind": "tenant", "name": "x"}, "concurrency": 1}), "invalid_limit", "unknown limit kind \"tenant\": expected queue, task, args or notes"),
            (json!({"scope": {"kind": "task", "name": "t"}, "rate": "7 per day"}), "invalid_limit", "invalid limit: rate \"7 per day\": no /; write COUNT/PERIOD, like 100/1m, 5/s or 1000/1h"),
        ] {
            let (status, reply) = s.post("/limits", body).await;
            assert_error(status, &reply, StatusCode::UNPROCESSABLE_ENTITY, code);
            assert_eq!(reply["error"]["message"], message);
        }
        assert_eq!(s.queue().limits().await.unwrap(), vec![]);
    }

    async fn workers_list_show_and_commands(s) {
        let w = kit::worker(&s.store).await;
        let listed = s.get_ok("/workers").await;
        assert_eq!(listed, serde_json::to_value(s.queue().workers().await.unwrap()).unwrap());
        assert_eq!(s.get_ok(&format!("/workers/{w}")).await["id"], w);
        let (status, body) = s.get("/workers/999").await;
        assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
        let (status, body) = s.post(&format!("/workers/{w}/commands"), json!({"command": "jobs", "args": [4]})).await;
        assert_eq!((status, body), (StatusCode::OK, json!({"command": "jobs", "sent": 1})));
        let (status, body) = s.post("/workers/commands", json!({"command": "pause"})).await;
        assert_eq!((status, body), (StatusCode::OK, json!({"command": "pause", "sent": 1})));
        let (status, body) = s.post("/workers/commands", json!({"command": "pause", "ids": [w, 999]})).await;
        assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
        let (status, body) = s.post(&format!("/workers/{w}/commands"), json!({"command": "stopp", "args": [1]})).await;
        assert_error(status, &body, StatusCode::UNPROCESSABLE_ENTITY, "invalid_command");
        let inbox = s.store.store.receive(w).await.unwrap();
        assert_eq!(inbox.len(), 2, "the refused commands were not sent");
    }

    async fn locks_acquire_list_conflict_and_release(s) {
        assert_eq!(s.post("/locks/nightly", json!({"duration": "1m"})).await, (StatusCode::OK, json!({"name": "nightly", "acquired": true})));
        let (status, body) = s.post("/locks/nightly", json!({"duration": 60})).await;
        assert_error(status, &body, StatusCode::CONFLICT, "lock_taken");
        assert_eq!(s.post("/locks/nightly", json!({"duration": "1m", "limit": 2})).await.0, StatusCode::OK);
        let listed = s.get_ok("/locks?name=nightly").await;
        assert_eq!(listed.as_array().map(Vec::len), Some(2));
        assert_eq!(listed, serde_json::to_value(s.queue().locks(&["nightly".into()]).await.unwrap()).unwrap());
        assert_eq!(s.get_ok("/locks?name=other").await, json!([]));
        assert_eq!(s.delete("/locks/nightly").await, (StatusCode::OK, json!({"name": "nightly", "released": true})));
        assert_eq!(s.delete("/locks/nightly").await, (StatusCode::OK, json!({"name": "nightly", "released": true})));
        assert_eq!(s.delete("/locks/nightly").await, (StatusCode::OK, json!({"name": "nightly", "released": false})));
        assert_eq!(s.get_ok("/locks").await, json!([]));
    }

    async fn healthz_and_readyz_answer_200(s) {
        let (status, body) = support::send(s.request(reqwest::Method::GET, "/healthz")).await;
        assert_eq!((status, body), (StatusCode::OK, json!({"status": "ok"})));
        let (status, body) = support::send(s.request(reqwest::Method::GET, "/readyz")).await;
        assert_eq!((status, body), (StatusCode::OK, json!({"status": "ready"})));
    }
}

/// Enqueues `n` jobs of task `t`; their ids, oldest first.
async fn futures_ids(s: &support::TestServer, n: usize) -> Vec<i64> {
    let mut ids = Vec::new();
    for _ in 0..n {
        ids.push(kit::enqueue(s.queue(), "t").await);
    }
    ids
}
