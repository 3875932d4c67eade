//! The HTTP group: the API server (`underling-server`) started in-process on an ephemeral
//! port over the benchmark's own queue. Enqueue over HTTP is compared with the library's own
//! enqueue of the same run; processing while 10 SSE clients stream every event is compared
//! with the same processing without a server, and the events each client gets per second
//! are counted.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use reqwest::StatusCode;
use tokio::sync::{oneshot, watch};
use underling_server::{Server, ServerError, ServerOptions};

use crate::error::{BenchError, Result};
use crate::*;

/// How many clients enqueue at once in the concurrent figure.
const CONCURRENT_CLIENTS: usize = 16;
/// Jobs per `POST /jobs/batch`.
const BATCH: usize = 1000;
/// How many clients stream events.
const SSE_CLIENTS: usize = 10;
/// How long the SSE clients may go on receiving after the worker is done.
const SSE_WAIT: Duration = Duration::from_secs(30);
/// A client that got no event for this long before the wait ran out has stalled (events lost
/// without notice), rather than being slow.
const SSE_STALL: Duration = Duration::from_secs(5);

/// The HTTP figures, from an empty queue (`reset` first and last).
pub(crate) async fn http_figures<F, Fut>(
    queue: &Queue,
    sizes: &Sizes,
    rec: &mut Recorder<'_>,
    library: &LibraryEnqueue,
    plain: f64,
    reset: &F,
) -> Result<()>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    reset().await?;
    let server = InProcess::start(queue).await?;
    let result = async {
        enqueue_over_http(&server, queue, sizes, rec, library).await?;
        reset().await?;
        events_to_sse_clients(&server, queue, sizes.process_n, rec, plain).await?;
        reset().await?;
        pull_over_http(&server, queue, sizes, rec, plain, reset).await?;
        crate::workload::dispatch_figures(
            &server.base,
            &server.client,
            queue,
            sizes,
            rec,
            plain,
            reset,
        )
        .await?;
        reset().await
    }
    .await;
    let stopped = server.stop().await;
    result.and(stopped)
}

/// The API server running on a task of this process.
struct InProcess {
    /// `http://127.0.0.1:port`.
    base: String,
    client: reqwest::Client,
    shutdown: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::result::Result<(), ServerError>>,
}

impl InProcess {
    /// Binds an ephemeral loopback port (no token: loopback only) and serves `queue` there.
    async fn start(queue: &Queue) -> Result<InProcess> {
        let options = ServerOptions {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            ..ServerOptions::default()
        };
        let server = Server::bind(queue.clone(), options)
            .await
            .map_err(|e| BenchError::Http(format!("cannot start the server: {e}")))?;
        let addr = server
            .local_addr()
            .map_err(|e| BenchError::Http(format!("cannot start the server: {e}")))?;
        let (shutdown, stop) = oneshot::channel::<()>();
        let task = tokio::spawn(server.run(async move {
            let _ = stop.await;
        }));
        let client = reqwest::Client::builder()
            .no_proxy()
            .build()
            .map_err(|e| BenchError::Http(format!("cannot make an HTTP client: {e}")))?;
        Ok(InProcess {
            base: format!("http://{addr}"),
            client,
            shutdown,
            task,
        })
    }

    /// Stops the server and waits for it.
    async fn stop(self) -> Result<()> {
        let _ = self.shutdown.send(());
        self.task
            .await?
            .map_err(|e| BenchError::Http(format!("the server failed: {e}")))
    }
}

/// `POST url` with a JSON `body`; anything but `201 Created` is an error.
async fn post_created(client: &reqwest::Client, url: &str, body: String) -> Result<()> {
    let response = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| BenchError::Http(format!("POST {url}: {e}")))?;
    let status = response.status();
    // Read to the end, so that the connection is used again.
    let text = response
        .text()
        .await
        .map_err(|e| BenchError::Http(format!("POST {url}: {e}")))?;
    if status != StatusCode::CREATED {
        return Err(BenchError::Http(format!("POST {url}: {status}: {text}")));
    }
    Ok(())
}

/// One job per request with 1 and with 16 clients, and batches of 1,000 per request, each
/// as a ratio to the library's figure of the same kind.
async fn enqueue_over_http(
    server: &InProcess,
    queue: &Queue,
    sizes: &Sizes,
    rec: &mut Recorder<'_>,
    library: &LibraryEnqueue,
) -> Result<()> {
    let one = serde_json::json!({ "task": NOOP, "queue": BENCH_QUEUE }).to_string();
    let url = format!("{}/api/v1/jobs", server.base);

    // On a runtime task, like the library loop it is compared with.
    let start = Instant::now();
    let n = sizes.enqueue_single;
    let (client, body, to) = (server.client.clone(), one.clone(), url.clone());
    tokio::spawn(async move {
        for _ in 0..n {
            post_created(&client, &to, body.clone()).await?;
        }
        Ok::<(), BenchError>(())
    })
    .await??;
    rec.rate(
        "http",
        "enqueue over HTTP, one job per request, 1 client",
        n,
        start.elapsed(),
        "jobs/s",
    );
    rec.compare_last("library, one job per call, 1 caller", library.single_1);

    let share = sizes.enqueue_single_4 / CONCURRENT_CLIENTS;
    let start = Instant::now();
    let mut handles = Vec::with_capacity(CONCURRENT_CLIENTS);
    for _ in 0..CONCURRENT_CLIENTS {
        let (client, body, to) = (server.client.clone(), one.clone(), url.clone());
        handles.push(tokio::spawn(async move {
            for _ in 0..share {
                post_created(&client, &to, body.clone()).await?;
            }
            Ok::<(), BenchError>(())
        }));
    }
    for h in handles {
        h.await??;
    }
    rec.rate(
        "http",
        &format!("enqueue over HTTP, one job per request, {CONCURRENT_CLIENTS} clients"),
        share * CONCURRENT_CLIENTS,
        start.elapsed(),
        "jobs/s",
    );
    rec.compare_last("library, one job per call, 4 callers", library.single_4);

    let batch = serde_json::Value::Array(vec![
        serde_json::json!({ "task": NOOP, "queue": BENCH_QUEUE });
        BATCH
    ])
    .to_string();
    let batch_url = format!("{}/api/v1/jobs/batch", server.base);
    let start = Instant::now();
    let mut done = 0;
    while done < sizes.enqueue_batch {
        post_created(&server.client, &batch_url, batch.clone()).await?;
        done += BATCH;
    }
    rec.rate(
        "http",
        "batch enqueue over HTTP (1,000 per request)",
        done,
        start.elapsed(),
        "jobs/s",
    );
    rec.compare_last("library, batch enqueue (1,000 per call)", library.batch);

    let expected = (n + share * CONCURRENT_CLIENTS + done) as u64;
    let filter = JobFilter {
        queues: vec![BENCH_QUEUE.to_string()],
        ..JobFilter::default()
    };
    let stored = queue.list_jobs(&filter, 0, 0).await?.total;
    if stored != expected {
        return Err(BenchError::Check(format!(
            "{stored} jobs stored of {expected} enqueued over HTTP"
        )));
    }
    Ok(())
}

/// How many clients pull at once in the concurrent pull figure.
const PULL_CLIENTS: usize = 4;
/// Jobs per claim in the concurrent pull figure.
const PULL_CLAIM: usize = 100;

/// Pull workers over HTTP (`POST /claims` with a lease, one `POST /jobs/{id}/ack` per job):
/// one client claiming one job at a time, and `PULL_CLIENTS` clients claiming `PULL_CLAIM` at a
/// time, each as a ratio to `plain` (processing by a native worker at its defaults).
async fn pull_over_http<F, Fut>(
    server: &InProcess,
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
    for (clients, limit) in [(1, 1), (PULL_CLIENTS, PULL_CLAIM)] {
        reset().await?;
        let jobs = noop_jobs(n)?;
        for chunk in jobs.chunks(BATCH) {
            queue.enqueue_batch(chunk).await?;
        }
        let claim =
            serde_json::json!({"queues": [BENCH_QUEUE], "limit": limit, "lease": "5m"}).to_string();
        let start = Instant::now();
        let mut handles = Vec::with_capacity(clients);
        for _ in 0..clients {
            let (client, base, claim) = (server.client.clone(), server.base.clone(), claim.clone());
            handles.push(tokio::spawn(async move {
                let mut acked = 0_usize;
                loop {
                    let claimed =
                        post_json(&client, &format!("{base}/api/v1/claims"), claim.clone()).await?;
                    let jobs = claimed["jobs"].as_array().cloned().unwrap_or_default();
                    if jobs.is_empty() {
                        return Ok::<usize, BenchError>(acked);
                    }
                    for job in jobs {
                        let id = job["id"].as_i64().unwrap_or_default();
                        let ack =
                            serde_json::json!({"token": job["token"], "result": null}).to_string();
                        post_json(&client, &format!("{base}/api/v1/jobs/{id}/ack"), ack).await?;
                        acked += 1;
                    }
                }
            }));
        }
        let mut acked = 0;
        for h in handles {
            acked += h.await??;
        }
        let elapsed = start.elapsed();
        if acked != n {
            return Err(BenchError::Check(format!(
                "{acked} jobs acked over HTTP of {n}"
            )));
        }
        let name = if limit == 1 {
            "pull over HTTP (claim 1 + ack), 1 client".to_string()
        } else {
            format!("pull over HTTP (claims of {limit} + acks), {clients} clients")
        };
        rec.rate("http", &name, n, elapsed, "jobs/s");
        rec.compare_last("processing, 1 worker at defaults (no server)", plain);
    }
    Ok(())
}

/// `POST url` with a JSON `body`; the answer's JSON, anything but `200 OK` an error.
async fn post_json(client: &reqwest::Client, url: &str, body: String) -> Result<serde_json::Value> {
    let response = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| BenchError::Http(format!("POST {url}: {e}")))?;
    let status = response.status();
    let text = response
        .text()
        .await
        .map_err(|e| BenchError::Http(format!("POST {url}: {e}")))?;
    if status != StatusCode::OK {
        return Err(BenchError::Http(format!("POST {url}: {status}: {text}")));
    }
    serde_json::from_str(&text).map_err(|e| BenchError::Http(format!("POST {url}: {e}")))
}

/// What one SSE client received.
#[derive(Debug)]
struct Tally {
    /// Job events.
    events: u64,
    /// `gap` events (events lost before the next one).
    gaps: u64,
    /// Whether the server dropped the client for falling behind (with a message).
    dropped: bool,
    /// Whether the wait ran out while the stream was still open (events still on their way).
    cut_off: bool,
    /// When the last event arrived.
    last: Option<Instant>,
}

/// Processing at the default concurrency while `SSE_CLIENTS` clients stream the queue's
/// events, as a ratio to `plain` (the same without a server), and the events each client
/// gets per second until every client has all `3 * n` (or `SSE_WAIT` after the worker is
/// done).
async fn events_to_sse_clients(
    server: &InProcess,
    queue: &Queue,
    n: usize,
    rec: &mut Recorder<'_>,
    plain: f64,
) -> Result<()> {
    let concurrency = WorkerOptions::default().concurrency;
    // Every job is enqueued, started and finished: three events each.
    let expected = 3 * n as u64;
    let url = format!("{}/api/v1/events?queue={BENCH_QUEUE}", server.base);
    let (stop, stopped) = watch::channel(false);
    let mut clients = Vec::with_capacity(SSE_CLIENTS);
    // Connected before the jobs are enqueued: a client starts with the next event (the
    // server subscribes it before answering), so each sees every job enqueued too.
    for _ in 0..SSE_CLIENTS {
        let response = server
            .client
            .get(&url)
            .send()
            .await
            .map_err(|e| BenchError::Http(format!("GET {url}: {e}")))?;
        if response.status() != StatusCode::OK {
            let status = response.status();
            let text = response.text().await.unwrap_or_default();
            return Err(BenchError::Http(format!("GET {url}: {status}: {text}")));
        }
        clients.push(tokio::spawn(read_events(
            response,
            expected,
            stopped.clone(),
        )));
    }

    let start = Instant::now();
    queue.enqueue_batch(&noop_jobs(n)?).await?;
    let t = drain_in_process(queue, concurrency).await?;
    check_all_finished(queue, n).await?;
    rec.rate(
        "http",
        &format!(
            "1 worker, concurrency {concurrency}, while {SSE_CLIENTS} SSE clients stream its events"
        ),
        n,
        t,
        "jobs/s",
    );
    rec.compare_last("the same without a server", plain);

    let mut all = futures_util::future::join_all(clients);
    let joined = match tokio::time::timeout(SSE_WAIT, &mut all).await {
        Ok(joined) => joined,
        Err(_) => {
            let _ = stop.send(true);
            all.await
        }
    };
    let end = Instant::now();
    let mut tallies = Vec::with_capacity(SSE_CLIENTS);
    for tally in joined {
        tallies.push(tally??);
    }
    let (mut total, mut missed, mut late, mut last) = (0u64, 0u64, 0u64, start);
    for (i, tally) in tallies.iter().enumerate() {
        if tally.events > expected {
            return Err(BenchError::Check(format!(
                "SSE client {i} got {} events, of {expected} transitions",
                tally.events
            )));
        }
        // Fewer events than transitions: the client must have been told it was dropped, or
        // still be receiving when the wait ran out (slow, not losing events). A stream that
        // ended, or stalled for seconds, without a word is a lost event.
        if tally.events < expected && !tally.dropped {
            let stalled = tally
                .last
                .is_none_or(|last| end.duration_since(last) > SSE_STALL);
            if !tally.cut_off || stalled {
                let how = if tally.cut_off {
                    "stalled"
                } else {
                    "its stream ended"
                };
                return Err(BenchError::Check(format!(
                    "SSE client {i} got {} of {expected} events ({} gaps), {how}, and was not told it was dropped",
                    tally.events, tally.gaps
                )));
            }
        }
        total += tally.events;
        if tally.dropped {
            missed += expected - tally.events;
        } else {
            late += expected - tally.events;
        }
        last = last.max(tally.last.unwrap_or(start));
    }
    // Until every client had them all, or the wait ran out.
    let elapsed = if missed + late == 0 { last } else { end } - start;
    let per_client = total as f64 / SSE_CLIENTS as f64 / elapsed.as_secs_f64().max(1e-9);
    // Names that do not vary from run to run, so that `--runs N` takes medians of both.
    rec.push(
        "http",
        &format!("events delivered per SSE client ({SSE_CLIENTS} clients)"),
        per_client,
        "events/s",
        total,
    );
    rec.push(
        "http",
        &format!("events missed by the {SSE_CLIENTS} SSE clients (dropped for falling behind)"),
        missed as f64,
        "events",
        expected * SSE_CLIENTS as u64,
    );
    rec.push(
        "http",
        &format!(
            "events still on their way to the {SSE_CLIENTS} SSE clients {}s after the worker was done",
            SSE_WAIT.as_secs()
        ),
        late as f64,
        "events",
        expected * SSE_CLIENTS as u64,
    );
    Ok(())
}

/// Counts the events of one SSE response until it has `expected`, the server drops it,
/// the stream ends or `stop` is set.
async fn read_events(
    response: reqwest::Response,
    expected: u64,
    mut stop: watch::Receiver<bool>,
) -> Result<Tally> {
    let mut stream = response.bytes_stream();
    let mut parser = SseParser::default();
    let mut tally = Tally {
        events: 0,
        gaps: 0,
        dropped: false,
        cut_off: false,
        last: None,
    };
    while tally.events < expected && !tally.dropped {
        let chunk = tokio::select! {
            chunk = stream.next() => chunk,
            _ = stop.wait_for(|stop| *stop) => {
                tally.cut_off = true;
                break;
            }
        };
        let Some(chunk) = chunk else { break };
        let chunk = chunk.map_err(|e| BenchError::Http(format!("event stream: {e}")))?;
        let before = tally.events;
        parser.feed(&chunk, |event| match event {
            "dropped" => tally.dropped = true,
            "gap" => tally.gaps += 1,
            _ => tally.events += 1,
        });
        if tally.events > before {
            tally.last = Some(Instant::now());
        }
    }
    Ok(tally)
}

/// Splits Server-Sent Events into blocks: each block with data, at the blank line that ends
/// it, is handed on by its `event:` name (`message` when it has none). Comments (keep-alives)
/// and blocks without data are not events.
#[derive(Debug, Default)]
struct SseParser {
    /// The unfinished line.
    line: Vec<u8>,
    /// The current block's `event:` name.
    event: Vec<u8>,
    /// Whether the current block has a `data:` line.
    data: bool,
}

impl SseParser {
    /// Feeds the next bytes of the stream; `on_event` sees each event completed by them.
    fn feed(&mut self, mut bytes: &[u8], mut on_event: impl FnMut(&str)) {
        while let Some(end) = bytes.iter().position(|b| *b == b'\n') {
            let mut line = std::mem::take(&mut self.line);
            line.extend_from_slice(&bytes[..end]);
            bytes = &bytes[end + 1..];
            self.line_done(&line, &mut on_event);
            line.clear();
            self.line = line;
        }
        self.line.extend_from_slice(bytes);
    }

    fn line_done(&mut self, line: &[u8], on_event: &mut impl FnMut(&str)) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            if self.data {
                let name = std::str::from_utf8(&self.event).unwrap_or("").trim();
                on_event(if name.is_empty() { "message" } else { name });
            }
            self.event.clear();
            self.data = false;
        } else if let Some(name) = line.strip_prefix(b"event:") {
            self.event.clear();
            self.event.extend_from_slice(name);
        } else if line.starts_with(b"data:") {
            self.data = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(chunks: &[&str]) -> Vec<String> {
        let mut parser = SseParser::default();
        let mut out = Vec::new();
        for chunk in chunks {
            parser.feed(chunk.as_bytes(), |e| out.push(e.to_string()));
        }
        out
    }

    #[test]
    fn events_are_counted_at_their_blank_line_across_chunks() {
        let stream = "event: enqueued\ndata: {\"id\":1}\nid: 1\n\n:\n\nevent:started\r\ndata: {}\r\n\r\ndata: x\n\nevent: finished\ndata: {}\n";
        for split in 0..stream.len() {
            let (a, b) = stream.split_at(split);
            assert_eq!(
                events(&[a, b]),
                ["enqueued", "started", "message"],
                "split at {split}"
            );
        }
        assert_eq!(
            events(&[stream, "\n", "event: dropped\ndata: behind\n\n"]),
            ["enqueued", "started", "message", "finished", "dropped"]
        );
    }
}
