//! Live events across processes: a worker process runs jobs, and the event stream of an
//! `underling serve` server (in this process, on its own connections) shows each transition,
//! with the job's whole record, in order.

mod harness;

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{Value, json};
use underling::{EnqueueOptions, NewJob};
use underling_server::{Server, ServerOptions};

use harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_stream_shows_each_transition_a_worker_process_makes_with_full_data_in_order() {
    let Some(db) = TestDb::new("events").await else {
        return;
    };
    let options = ServerOptions {
        listen: "127.0.0.1:0".parse().expect("an address"),
        ..ServerOptions::default()
    };
    let server = Server::bind(db.queue.clone(), options).await.expect("bind");
    let url = format!("http://{}", server.local_addr().expect("an address"));
    tokio::spawn(server.run(std::future::pending()));
    let response = reqwest::get(format!("{url}/api/v1/events"))
        .await
        .expect("the stream");
    assert_eq!(response.status(), 200);
    let mut body = response.bytes_stream();

    let jobs: Vec<NewJob> = (0..3)
        .map(|n| {
            NewJob::new("underling.echo", json!({"n": n}), EnqueueOptions::new()).expect("a job")
        })
        .collect();
    let ids = db.queue.enqueue_batch(&jobs).await.expect("enqueue");
    let out = db.run_worker(&["--burst"]);
    assert!(
        out.status.success(),
        "the worker failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Nine events: each job enqueued, started and finished.
    let mut buffer = String::new();
    let mut events: Vec<Value> = Vec::new();
    while events.len() < 9 {
        let chunk = tokio::time::timeout(Duration::from_secs(10), body.next())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "only {} events within 10 s: {events:?}\n{}",
                    events.len(),
                    db.logs()
                )
            })
            .expect("the stream goes on")
            .expect("a chunk");
        buffer.push_str(std::str::from_utf8(&chunk).expect("UTF-8"));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            if let Some(data) = block.lines().find_map(|l| l.strip_prefix("data:")) {
                events.push(serde_json::from_str(data.trim()).expect("JSON"));
            }
        }
    }
    let sse_ids: Vec<u64> = events
        .iter()
        .map(|e| e["id"].as_u64().expect("an id"))
        .collect();
    assert!(
        sse_ids.windows(2).all(|w| w[0] < w[1]),
        "ids ascend: {sse_ids:?}"
    );
    let mut by_job: BTreeMap<i64, Vec<&Value>> = BTreeMap::new();
    for e in &events {
        by_job
            .entry(e["job"]["id"].as_i64().expect("a job id"))
            .or_default()
            .push(e);
    }
    assert_eq!(by_job.keys().copied().collect::<Vec<_>>(), ids);
    for (n, id) in ids.iter().enumerate() {
        let seen = &by_job[id];
        let kinds: Vec<&str> = seen.iter().map(|e| e["event"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["enqueued", "started", "finished"], "job {id}");
        let states: Vec<&str> = seen
            .iter()
            .map(|e| e["job"]["state"].as_str().unwrap())
            .collect();
        assert_eq!(states, ["inactive", "active", "finished"], "job {id}");
        for e in seen {
            assert_eq!(e["job"]["task"], "underling.echo");
            assert_eq!(e["job"]["args"], json!({"n": n}));
        }
        assert!(
            seen[1]["job"]["worker_id"].is_i64(),
            "started by a worker: {}",
            seen[1]
        );
        assert!(seen[1]["job"]["started"].is_string());
        assert_eq!(
            seen[2]["job"]["result"],
            json!({"n": n}),
            "the echo's result"
        );
        assert!(seen[2]["job"]["finished"].is_string());
    }
    db.cleanup().await;
}
