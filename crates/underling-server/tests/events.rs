//! Live events over SSE and WebSocket, the audit route and `/metrics`, on both backends.

mod support;

use std::time::Duration;

use futures_util::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::*;
use underling::EnqueueOptions;
use underling_testkit::support as kit;

/// An SSE stream read event by event: (id, event, data).
struct Sse {
    body: std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    buffer: String,
}

impl Sse {
    async fn open(s: &TestServer, query: &str, last: Option<&str>) -> Sse {
        let mut request = s.request(Method::GET, &format!("/api/v1/events{query}"));
        if let Some(last) = last {
            request = request.header("Last-Event-ID", last);
        }
        let response = request.send().await.expect("answered");
        assert_eq!(response.status(), StatusCode::OK);
        Sse {
            body: Box::pin(response.bytes_stream()),
            buffer: String::new(),
        }
    }

    /// The next event (comments such as keep-alives skipped), or a panic after 10 s.
    async fn next(&mut self) -> (Option<u64>, String, Value) {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let (mut id, mut event, mut data) = (None, String::new(), String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        id = v.trim().parse().ok();
                    }
                    if let Some(v) = line.strip_prefix("event:") {
                        event = v.trim().to_string();
                    }
                    if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if event.is_empty() && data.is_empty() {
                    continue;
                }
                return (id, event, serde_json::from_str(&data).expect("JSON data"));
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), self.body.next())
                .await
                .expect("an event within 10 s")
                .expect("the stream goes on")
                .expect("a chunk");
            self.buffer
                .push_str(std::str::from_utf8(&chunk).expect("UTF-8"));
        }
    }
}

/// How many event triggers are on the jobs table.
async fn event_triggers(s: &TestServer) -> i64 {
    match s.queue().pool() {
        underling::Pool::Postgres(pool) => sqlx::query_scalar(
            "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'underling_jobs'::regclass \
             AND tgname LIKE 'underling_events_%'",
        )
        .fetch_one(&pool)
        .await
        .unwrap(),
        underling::Pool::Sqlite(pool) => sqlx::query_scalar(
            "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'underling_events_%'",
        )
        .fetch_one(&pool)
        .await
        .unwrap(),
        other => panic!("unexpected pool {other:?}"),
    }
}

on_both_backends! {
    async fn the_server_subscribes_to_events_only_once_a_client_streams_them(s) {
        kit::enqueue(s.queue(), "t").await;
        s.get_ok("/stats").await;
        assert_eq!(event_triggers(&s).await, 0, "a server without stream clients costs the queue nothing");
        let _sse = Sse::open(&s, "", None).await;
        assert_eq!(event_triggers(&s).await, 3);
    }

    async fn sse_streams_each_transition_with_the_jobs_full_record_in_order(s) {
        let mut sse = Sse::open(&s, "", None).await;
        let id = kit::enqueue_with(s.queue(), "t", EnqueueOptions::new().queue("mail")).await;
        let worker = kit::worker(&s.store).await;
        kit::run_to_finish(&s.store, worker, id).await;
        let mut seen = Vec::new();
        let mut last = 0;
        for _ in 0..3 {
            let (sse_id, event, data) = sse.next().await;
            let sse_id = sse_id.expect("an id");
            assert!(sse_id > last, "ids ascend");
            last = sse_id;
            assert_eq!(data["id"], json!(sse_id));
            assert_eq!(data["event"], json!(event));
            assert_eq!((data["job"]["id"].as_i64(), data["job"]["task"].as_str(), data["job"]["queue"].as_str()), (Some(id), Some("t"), Some("mail")));
            seen.push((event, data["job"]["state"].as_str().unwrap().to_string()));
        }
        assert_eq!(seen, [
            ("enqueued".to_string(), "inactive".to_string()),
            ("started".to_string(), "active".to_string()),
            ("finished".to_string(), "finished".to_string()),
        ]);
    }

    async fn a_job_failed_right_after_a_client_subscribes_reaches_that_client(s) {
        // The first client makes the server subscribe (on demand); each later one joins the
        // running subscription. Each fails its job at once, as a stop does.
        let worker = kit::worker(&s.store).await;
        for n in 0..40 {
            let queue = format!("stop-{n}");
            let id = kit::enqueue_with(s.queue(), "t", EnqueueOptions::new().queue(&queue)).await;
            let job = kit::claim_by_id(&s.store, worker, id).await.expect("claimed");
            let mut sse = Sse::open(&s, &format!("?queue={queue}&event=failed"), None).await;
            kit::fail(&s.store, &job, json!("Job was stopped"), Duration::ZERO).await;
            let (_, event, data) = sse.next().await;
            assert_eq!(
                (event.as_str(), data["job"]["id"].as_i64(), data["job"]["state"].as_str(), data["job"]["result"].as_str()),
                ("failed", Some(id), Some("failed"), Some("Job was stopped")),
                "client {n}"
            );
        }
    }

    async fn sse_filters_by_queue_task_and_event(s) {
        let mut sse = Sse::open(&s, "?queue=mail&event=enqueued", None).await;
        kit::enqueue_with(s.queue(), "t", EnqueueOptions::new().queue("other")).await;
        let wanted = kit::enqueue_with(s.queue(), "t", EnqueueOptions::new().queue("mail")).await;
        let worker = kit::worker(&s.store).await;
        kit::run_to_finish(&s.store, worker, wanted).await;
        let last = kit::enqueue_with(s.queue(), "t", EnqueueOptions::new().queue("mail")).await;
        let (_, event, data) = sse.next().await;
        assert_eq!((event.as_str(), data["job"]["id"].as_i64()), ("enqueued", Some(wanted)));
        let (_, event, data) = sse.next().await;
        assert_eq!((event.as_str(), data["job"]["id"].as_i64()), ("enqueued", Some(last)));
    }

    async fn sse_resumes_after_last_event_id_without_a_gap(s) {
        let mut first = Sse::open(&s, "", None).await;
        let ids = [kit::enqueue(s.queue(), "t").await, kit::enqueue(s.queue(), "t").await, kit::enqueue(s.queue(), "t").await];
        let (seen, _, _) = first.next().await;
        drop(first);
        let mut again = Sse::open(&s, "", Some(&seen.unwrap().to_string())).await;
        let (_, _, second) = again.next().await;
        let (_, _, third) = again.next().await;
        assert_eq!((second["job"]["id"].as_i64(), third["job"]["id"].as_i64()), (Some(ids[1]), Some(ids[2])));
    }

    async fn sse_resuming_from_an_id_never_sent_says_there_is_a_gap(s) {
        let mut sse = Sse::open(&s, "", Some("999999")).await;
        let (_, event, data) = sse.next().await;
        assert_eq!(event, "gap");
        assert_eq!(data["gap"], json!(true));
    }

    async fn a_client_that_does_not_read_is_dropped_with_a_message_and_the_queue_goes_on(s) {
        let mut slow = Sse::open(&s, "", None).await;
        let mut other = Sse::open(&s, "?event=finished", None).await;
        // Far more events than the client's lag allows plus what the sockets buffer.
        let jobs: Vec<_> = (0..30_000)
            .map(|_| underling::NewJob::new("t", json!({"pad": "x".repeat(200)}), EnqueueOptions::new()).unwrap())
            .collect();
        let ids = s.queue().enqueue_batch(&jobs).await.unwrap();
        assert_eq!(ids.len(), 30_000, "the queue went on");
        // The other client, reading along, is not held up: it sees a finish.
        let worker = kit::worker(&s.store).await;
        kit::run_to_finish(&s.store, worker, ids[0]).await;
        let (_, event, data) = other.next().await;
        assert_eq!((event.as_str(), data["job"]["id"].as_i64()), ("finished", Some(ids[0])));
        // The slow client finds, after what was buffered, that it was dropped.
        let mut seen = 0;
        loop {
            let (_, event, data) = slow.next().await;
            if event == "dropped" {
                assert_eq!(data["error"]["code"], "too_slow");
                break;
            }
            seen += 1;
            assert!(seen <= 30_001, "never dropped");
        }
        assert!(seen < 30_000, "some events were dropped: {seen} arrived");
        let text = s.request(Method::GET, "/metrics").send().await.unwrap().text().await.unwrap();
        assert!(text.contains("underling_event_clients_dropped_total 1"), "{text}");
    }

    async fn sse_with_a_bad_filter_is_a_400_json_error(s) {
        let (status, body) = send(s.request(Method::GET, "/api/v1/events?event=exploded")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"]["code"], "invalid_query");
        let (status, body) = send(s.request(Method::GET, "/api/v1/events?colour=red")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"]["message"], "unknown parameter \"colour\": expected one of queue, task, event, state, last_event_id");
    }

    async fn websocket_streams_events_as_json_messages(s) {
        let url = format!("{}/api/v1/events/ws?event=enqueued", s.url.replacen("http", "ws", 1));
        let mut request = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(url).unwrap();
        if let Some(token) = &s.token {
            request.headers_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
        }
        let (mut socket, _) = tokio_tungstenite::connect_async(request).await.expect("a WebSocket");
        let id = kit::enqueue(s.queue(), "t").await;
        let message = tokio::time::timeout(Duration::from_secs(10), socket.next()).await
            .expect("a message within 10 s").expect("open").expect("a frame");
        let data: Value = serde_json::from_str(message.to_text().expect("text")).expect("JSON");
        assert_eq!((data["event"].as_str(), data["job"]["id"].as_i64()), (Some("enqueued"), Some(id)));
    }

    async fn a_plain_get_of_the_websocket_route_is_a_400_json_error(s) {
        let (status, body) = send(s.request(Method::GET, "/api/v1/events/ws")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"]["code"], "not_websocket");
    }

    async fn audit_route_pages_the_audit_log_newest_first(s) {
        s.queue().enable_audit().await.unwrap();
        let a = kit::enqueue(s.queue(), "t").await;
        let b = kit::enqueue(s.queue(), "t").await;
        let page = s.get_ok("/audit?limit=1").await;
        assert_eq!(page["enabled"], json!(true));
        assert_eq!(page["entries"][0]["job"]["id"].as_i64(), Some(b));
        assert_eq!(page["entries"][0]["event"], "enqueued");
        let next = page["next"].as_i64().expect("a next page");
        let rest = s.get_ok(&format!("/audit?limit=10&before={next}")).await;
        assert_eq!(rest["entries"].as_array().unwrap().len(), 1);
        assert_eq!(rest["entries"][0]["job"]["id"].as_i64(), Some(a));
        assert_eq!(rest["next"], Value::Null);
        let (status, body) = send(s.request(Method::GET, "/api/v1/audit?limit=0")).await;
        assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_option")));
    }

    async fn metrics_parse_as_prometheus_text_and_count_jobs_by_queue_and_state(s) {
        // Wait for the server's subscription, so that the enqueue is counted.
        drop(Sse::open(&s, "", None).await);
        let id = kit::enqueue_with(s.queue(), "t", EnqueueOptions::new().queue("mail")).await;
        let worker = kit::worker(&s.store).await;
        kit::run_to_finish(&s.store, worker, id).await;
        kit::enqueue_with(s.queue(), "t", EnqueueOptions::new().queue("mail")).await;
        let (mut finished, mut enqueued) = (0.0, 0.0);
        for _ in 0..50 {
            let text = s.request(Method::GET, "/metrics").send().await.unwrap().text().await.unwrap();
            let lines = text.lines().map(|l| Ok(l.to_string()));
            let scrape = prometheus_parse::Scrape::parse(lines).expect("Prometheus text");
            let value = |name: &str, labels: &[(&str, &str)]| -> Option<f64> {
                scrape.samples.iter().find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
                    .map(|s| match s.value {
                        prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Gauge(v) | prometheus_parse::Value::Untyped(v) => v,
                        _ => f64::NAN,
                    })
            };
            assert_eq!(value("underling_jobs", &[("queue", "mail"), ("state", "inactive")]), Some(1.0));
            assert_eq!(value("underling_jobs", &[("queue", "mail"), ("state", "finished")]), Some(1.0));
            assert_eq!(value("underling_workers_alive", &[]), Some(1.0));
            let waiting = value("underling_oldest_due_job_age_seconds", &[("queue", "mail")]).expect("mail has a due job");
            assert!((0.0..60.0).contains(&waiting), "{waiting}");
            // Events arrive a little after the transitions (SQLite: at its next poll).
            finished = value("underling_jobs_finished_total", &[("queue", "mail"), ("task", "t")]).unwrap_or(0.0);
            enqueued = value("underling_jobs_enqueued_total", &[("queue", "mail"), ("task", "t")]).unwrap_or(0.0);
            if finished == 1.0 && enqueued == 2.0 {
                assert!(scrape.samples.iter().any(|s| s.metric == "underling_job_duration_seconds_count"), "a duration histogram");
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!((finished, enqueued), (1.0, 2.0), "the finish and both enqueues were counted");
    }
}
