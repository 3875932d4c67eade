//! HTTP workload dispatch: the jobs of a task sent by a dispatcher (`underling-workload`, as
//! `underling-worker --workloads` runs it) to a no-op HTTP workload on a local port, sync
//! (the answer finishes the job) and async (202, then the workload acks over the API server),
//! as a ratio to native in-process processing of the same run.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use underling::{WorkloadMode, WorkloadSpec};
use underling_workload::{DispatchOptions, Dispatcher};

use crate::error::{BenchError, Result};
use crate::*;

/// Requests one dispatcher sends to the workload at once: the native worker's default
/// concurrency, so that the ratio compares like with like.
const CONCURRENCY: usize = 64;
/// How long the async acks may take to arrive after the last 202.
const ACK_WAIT: Duration = Duration::from_secs(300);

/// What the no-op workload does with a job.
struct Workload {
    /// Where acks go (`http://127.0.0.1:port` of the API server); none: answer 200 at once.
    api: Option<String>,
    client: reqwest::Client,
}

async fn answer(State(workload): State<Arc<Workload>>, body: Bytes) -> StatusCode {
    let Some(api) = &workload.api else {
        return StatusCode::OK;
    };
    let Ok(event) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    let url = format!("{api}/api/v1/jobs/{}/ack", event["underlingjobid"]);
    let ack = serde_json::json!({"token": event["underlingtoken"], "result": null}).to_string();
    let client = workload.client.clone();
    tokio::spawn(async move {
        // A lost ack leaves the job leased: the wait for all jobs to finish fails then.
        let _ = client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(ack)
            .send()
            .await;
    });
    StatusCode::ACCEPTED
}

/// Starts the no-op workload on an ephemeral loopback port; its URL.
async fn start_workload(
    api: Option<String>,
    client: reqwest::Client,
) -> Result<(String, tokio::task::JoinHandle<()>)> {
    let app = axum::Router::new()
        .route("/", axum::routing::post(answer))
        .with_state(Arc::new(Workload { api, client }));
    let listener =
        tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((format!("http://{addr}/"), task))
}

/// Sync and async dispatch of `n` no-op jobs, each a ratio to `plain`.
pub(crate) async fn dispatch_figures<F, Fut>(
    api: &str,
    client: &reqwest::Client,
    queue: &Queue,
    sizes: &Sizes,
    rec: &mut Recorder<'_>,
    plain: f64,
    reset: &F,
) -> Result<()>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    let n = (sizes.process_n / 10).max(1000);
    for mode in [WorkloadMode::Sync, WorkloadMode::Async] {
        reset().await?;
        for chunk in noop_jobs(n)?.chunks(1000) {
            queue.enqueue_batch(chunk).await?;
        }
        let acks = (mode == WorkloadMode::Async).then(|| api.to_string());
        let (url, workload) = start_workload(acks, client.clone()).await?;
        let spec = WorkloadSpec {
            mode,
            max_concurrency: CONCURRENCY,
            ..WorkloadSpec::new(NOOP, url)
        };
        let options = DispatchOptions {
            queues: vec![BENCH_QUEUE.to_string()],
            burst: true,
            ..DispatchOptions::default()
        };
        let dispatcher = Dispatcher::new(queue.clone(), vec![spec], options)
            .map_err(|e| BenchError::Http(format!("cannot start the dispatcher: {e}")))?;
        let start = Instant::now();
        let summary = dispatcher
            .run()
            .await
            .map_err(|e| BenchError::Http(format!("the dispatcher failed: {e}")))?;
        if summary.dispatched != n as u64 {
            workload.abort();
            return Err(BenchError::Check(format!(
                "{} of {n} jobs dispatched",
                summary.dispatched
            )));
        }
        // Async: the acks come after the 202s.
        let deadline = Instant::now() + ACK_WAIT;
        let filter = JobFilter {
            states: vec![JobState::Finished],
            queues: vec![BENCH_QUEUE.to_string()],
            ..JobFilter::default()
        };
        while queue.list_jobs(&filter, 0, 0).await?.total < n as u64 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let elapsed = start.elapsed();
        workload.abort();
        check_all_finished(queue, n).await?;
        let name = match mode {
            WorkloadMode::Sync => format!("HTTP workload, sync (200), {CONCURRENCY} at once"),
            WorkloadMode::Async => {
                format!("HTTP workload, async (202 + ack over HTTP), {CONCURRENCY} at once")
            }
        };
        rec.rate("http", &name, n, elapsed, "jobs/s");
        rec.compare_last("processing, 1 worker at defaults (no server)", plain);
    }
    Ok(())
}
