//! `/api/v1/schedules`: add, list, show, pause, resume, run now and remove schedules over
//! HTTP, on SQLite and PostgreSQL; bad input is a 422 that writes nothing; a read-only token
//! reads schedules and changes none.

mod support;

use reqwest::{Method, StatusCode};
use serde_json::json;
use underling_server::ServerOptions;
use underling_testkit::support as kit;

use support::{Kind, TestServer, assert_error, send};

on_both_backends! {
    async fn schedules_are_added_listed_shown_paused_resumed_run_and_removed(s) {
        let body = json!({
            "name": "nightly", "cron": "30 2 * * *", "timezone": "America/New_York",
            "task": "report.build", "args": {"kind": "daily"}, "queue": "reports",
            "attempts": 3, "timeout": "10m", "catch_up": "skip",
        });
        let (status, added) = s.post("/schedules", body.clone()).await;
        assert_eq!(status, StatusCode::CREATED, "{added}");
        assert_eq!((&added["name"], &added["timezone"], &added["catch_up"]), (&json!("nightly"), &json!("America/New_York"), &json!("skip")));
        assert_eq!((&added["queue"], &added["attempts"], &added["options"]), (&json!("reports"), &json!(3), &json!({"timeout": 600.0})));
        let next = added["next_run"].as_str().expect("a next run").to_string();
        assert!(next.ends_with(":30:00Z") || next.ends_with("T07:00:00Z"), "{next}");
        let (status, updated) = s.post("/schedules", body).await;
        assert_eq!(status, StatusCode::OK, "an update: {updated}");
        assert_eq!(updated["next_run"], json!(next));

        let list = s.get_ok("/schedules").await;
        assert_eq!(list.as_array().unwrap().len(), 1);
        assert_eq!(list[0]["name"], json!("nightly"));
        let shown = s.get_ok("/schedules/nightly").await;
        assert_eq!(shown["upcoming"].as_array().unwrap().len(), 5);
        assert_eq!(shown["upcoming"][0], json!(next));

        let (status, paused) = s.post("/schedules/nightly/pause", json!({})).await;
        assert_eq!((status, &paused["paused"], &paused["next_run"]), (StatusCode::OK, &json!(true), &json!(null)));
        let (status, resumed) = s.post("/schedules/nightly/resume", json!({})).await;
        assert_eq!((status, &resumed["paused"]), (StatusCode::OK, &json!(false)));
        assert!(resumed["next_run"].is_string(), "{resumed}");

        let (status, enqueued) = s.post("/schedules/nightly/run-now", json!({})).await;
        assert_eq!(status, StatusCode::CREATED, "{enqueued}");
        let id = enqueued["id"].as_i64().expect("id");
        assert_eq!(enqueued, json!({"id": id}));
        let job = kit::job(s.queue(), id).await;
        assert_eq!((job.task.as_str(), job.queue.as_str(), job.attempts), ("report.build", "reports", 3));
        assert_eq!(job.notes.get("schedule"), Some(&json!("nightly")));
        assert_eq!(s.get_ok("/schedules/nightly").await["last_job_id"], json!(id));

        let (status, removed) = s.delete("/schedules/nightly").await;
        assert_eq!((status, removed), (StatusCode::OK, json!({"name": "nightly", "removed": true})));
        assert_eq!(s.get_ok("/schedules").await, json!([]));
        for (method, path) in [
            (Method::GET, "/schedules/nightly"),
            (Method::DELETE, "/schedules/nightly"),
            (Method::POST, "/schedules/nightly/pause"),
            (Method::POST, "/schedules/nightly/resume"),
            (Method::POST, "/schedules/nightly/run-now"),
        ] {
            let (status, body) = send(s.request(method.clone(), &format!("/api/v1{path}"))).await;
            let message = assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
            assert_eq!(message, "schedule \"nightly\" not found (see `underling schedule list`)", "{method} {path}");
        }
        assert_eq!(kit::job_count(s.queue()).await, 1);
    }

    async fn a_bad_schedule_is_422_naming_the_problem_and_writes_nothing(s) {
        let cases = [
            (json!({"name": "x", "cron": "0 3 * * *", "task": "t", "timezone": "Nowhere/Land"}), "invalid_timezone"),
            (json!({"name": "x", "cron": "0 3 * *", "task": "t"}), "invalid_cron"),
            (json!({"name": "x", "cron": "0 0 31 2 *", "task": "t"}), "invalid_cron"),
            (json!({"name": "a b", "cron": "0 3 * * *", "task": "t"}), "invalid_schedule_name"),
            (json!({"name": "x", "cron": "0 3 * * *", "task": ""}), "invalid_task"),
            (json!({"name": "x", "cron": "0 3 * * *", "task": "t", "unique_key": "k", "on_conflict": "error"}), "invalid_schedule"),
            (json!({"name": "x", "cron": "0 3 * * *", "task": "t", "catch_up": "never"}), "invalid_body"),
            (json!({"name": "x", "cron": "0 3 * * *", "task": "t", "delay": "5m"}), "invalid_body"),
        ];
        for (body, code) in cases {
            let (status, answer) = s.post("/schedules", body.clone()).await;
            assert_error(status, &answer, StatusCode::UNPROCESSABLE_ENTITY, code);
        }
        let (status, answer) = s.post("/schedules", json!({"name": "x", "cron": "0 3 * * *", "task": "t", "timezone": "Nowhere/Land"})).await;
        let message = assert_error(status, &answer, StatusCode::UNPROCESSABLE_ENTITY, "invalid_timezone");
        assert_eq!(message, "unknown time zone \"Nowhere/Land\": give an IANA time zone name such as UTC, Europe/Berlin or America/New_York");
        assert_eq!(s.get_ok("/schedules").await, json!([]));
    }
}

const TOKEN: &str = "full-token-0123456789";
const READ_ONLY: &str = "read-only-token-9876543210";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_token_reads_schedules_and_changes_none() {
    let options = ServerOptions {
        token: Some(TOKEN.into()),
        read_only_token: Some(READ_ONLY.into()),
        ..ServerOptions::default()
    };
    let s = TestServer::start_with(Kind::Sqlite, options)
        .await
        .expect("SQLite is always available");
    s.queue()
        .add_schedule(underling::Schedule::new("nightly", "@daily", "t"))
        .await
        .unwrap();
    let url = |path: &str| format!("{}/api/v1{path}", s.url);
    for path in ["/schedules", "/schedules/nightly"] {
        let (status, body) = send(s.client.get(url(path)).bearer_auth(READ_ONLY)).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
    }
    let writes = [
        s.client
            .post(url("/schedules"))
            .json(&json!({"name": "other", "cron": "@hourly", "task": "t"})),
        s.client.delete(url("/schedules/nightly")),
        s.client.post(url("/schedules/nightly/pause")),
        s.client.post(url("/schedules/nightly/resume")),
        s.client.post(url("/schedules/nightly/run-now")),
    ];
    for request in writes {
        let (status, body) = send(request.bearer_auth(READ_ONLY)).await;
        assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");
    }
    let stored = s.queue().schedules().await.unwrap();
    assert_eq!(stored.len(), 1);
    assert!(!stored[0].paused);
    assert_eq!(kit::job_count(s.queue()).await, 0);
    s.stop().await;
}
