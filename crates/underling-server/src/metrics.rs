//! Prometheus metrics (`GET /metrics`, text exposition format).
//!
//! Counters and histograms come from the job events this server sees (every transition made
//! by any process, from the moment the server started); gauges are read from the store at
//! each scrape.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use underling::{JobEvent, JobEventKind, Queue};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiResult, ErrorBody};
use crate::state::AppState;

/// `GET /metrics` (behind the token, like the API).
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(metrics))
}

/// The content type of the exposition (OpenMetrics text, which Prometheus reads).
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Prometheus metrics: jobs by queue and state, workers alive, how long each queue's
/// longest-waiting due job has been due, and (from the job events this
/// server saw since it started) enqueued, finished, failed, retried and rescued jobs, job
/// durations and queue waits by queue and task, and events dropped.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses(
        (status = 200, description = "The metrics, in the OpenMetrics text format", content_type = "application/openmetrics-text", body = String),
        (status = 503, description = "The database cannot be reached", body = ErrorBody),
    ))]
async fn metrics(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse;
    let text = state.metrics.render(&state.queue).await?;
    Ok(([(axum::http::header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response())
}

/// The labels of per-job metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabels {
    queue: String,
    task: String,
}

/// The labels of the job gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    queue: String,
    state: String,
}

/// The label of per-queue gauges.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueueLabel {
    queue: String,
}

/// A gauge of seconds.
type Seconds = Gauge<f64, std::sync::atomic::AtomicU64>;

/// Seconds, from a millisecond to about 9 hours.
fn seconds_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 25))
}

type Histograms = Family<JobLabels, Histogram, fn() -> Histogram>;

/// Every metric the server exports.
pub struct Metrics {
    registry: Registry,
    transitions: Family<JobLabels, Counter>,
    enqueued: Family<JobLabels, Counter>,
    finished: Family<JobLabels, Counter>,
    failed: Family<JobLabels, Counter>,
    retried: Family<JobLabels, Counter>,
    rescued: Family<JobLabels, Counter>,
    duration: Histograms,
    wait: Histograms,
    events_dropped: Counter,
    clients_dropped: Counter,
    jobs: Family<StateLabels, Gauge>,
    workers: Gauge,
    oldest_due: Family<QueueLabel, Seconds>,
    /// One scrape at a time: a scrape clears and sets the gauges.
    scrape: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// The metrics, registered and at zero.
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let counter = |registry: &mut Registry, name: &str, help: &str| {
            let family = Family::<JobLabels, Counter>::default();
            registry.register(name, help, family.clone());
            family
        };
        let transitions = counter(
            &mut registry,
            "underling_job_events",
            "Job transitions seen by this server, by queue and task",
        );
        let enqueued = counter(&mut registry, "underling_jobs_enqueued", "Jobs enqueued");
        let finished = counter(
            &mut registry,
            "underling_jobs_finished",
            "Jobs that finished",
        );
        let failed = counter(
            &mut registry,
            "underling_jobs_failed",
            "Jobs that failed for good",
        );
        let retried = counter(
            &mut registry,
            "underling_jobs_retried",
            "Jobs retried (a failed attempt with tries left, or a retry by hand)",
        );
        let rescued = counter(
            &mut registry,
            "underling_jobs_rescued",
            "Jobs rescued from workers that went away",
        );
        let duration: Histograms = Family::new_with_constructor(seconds_histogram);
        registry.register(
            "underling_job_duration_seconds",
            "How long attempts ran, from start to finish or failure",
            duration.clone(),
        );
        let wait: Histograms = Family::new_with_constructor(seconds_histogram);
        registry.register(
            "underling_job_queue_wait_seconds",
            "How long jobs waited from due to start",
            wait.clone(),
        );
        let events_dropped = Counter::default();
        registry.register(
            "underling_events_dropped",
            "Job events this server missed because it fell behind",
            events_dropped.clone(),
        );
        let clients_dropped = Counter::default();
        registry.register(
            "underling_event_clients_dropped",
            "Event stream clients dropped for falling too far behind",
            clients_dropped.clone(),
        );
        let jobs = Family::<StateLabels, Gauge>::default();
        registry.register("underling_jobs", "Jobs by queue and state", jobs.clone());
        let workers = Gauge::default();
        registry.register(
            "underling_workers_alive",
            "Registered workers (removed by repair once their heartbeat is too old)",
            workers.clone(),
        );
        let oldest_due = Family::<QueueLabel, Seconds>::default();
        registry.register(
            "underling_oldest_due_job_age_seconds",
            "How long the longest-waiting due job of each queue has been due (queues with due jobs only)",
            oldest_due.clone(),
        );
        Metrics {
            oldest_due,
            registry,
            transitions,
            enqueued,
            finished,
            failed,
            retried,
            rescued,
            duration,
            wait,
            events_dropped,
            clients_dropped,
            jobs,
            workers,
            scrape: tokio::sync::Mutex::new(()),
        }
    }

    /// Counts one job event.
    pub fn observe(&self, event: &JobEvent) {
        let job = &event.job;
        let labels = JobLabels {
            queue: job.queue.clone(),
            task: job.task.clone(),
        };
        self.transitions.get_or_create(&labels).inc();
        let seconds = |from: chrono::DateTime<chrono::Utc>, to: chrono::DateTime<chrono::Utc>| {
            ((to - from).num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6).max(0.0)
        };
        match event.event {
            JobEventKind::Enqueued => {
                self.enqueued.get_or_create(&labels).inc();
            }
            JobEventKind::Started => {
                if let Some(started) = job.started {
                    self.wait
                        .get_or_create(&labels)
                        .observe(seconds(job.delayed, started));
                }
            }
            JobEventKind::Finished | JobEventKind::Failed => {
                let counter = if event.event == JobEventKind::Finished {
                    &self.finished
                } else {
                    &self.failed
                };
                counter.get_or_create(&labels).inc();
                if let (Some(started), Some(finished)) = (job.started, job.finished) {
                    self.duration
                        .get_or_create(&labels)
                        .observe(seconds(started, finished));
                }
            }
            JobEventKind::Retried => {
                self.retried.get_or_create(&labels).inc();
            }
            JobEventKind::Rescued => {
                self.rescued.get_or_create(&labels).inc();
            }
            JobEventKind::Noted | JobEventKind::Snoozed | JobEventKind::Removed => {}
        }
    }

    /// Counts `n` events this server missed.
    pub fn events_dropped(&self, n: u64) {
        self.events_dropped.inc_by(n);
    }

    /// Counts a client dropped for falling behind.
    pub fn client_dropped(&self) {
        self.clients_dropped.inc();
    }

    /// Reads the gauges from the store and renders every metric.
    pub async fn render(&self, queue: &Queue) -> underling::Result<String> {
        let _one = self.scrape.lock().await;
        let queues = queue.queues().await?;
        let workers = queue.workers().await?;
        let due = queue.oldest_due().await?;
        let now = chrono::Utc::now();
        self.oldest_due.clear();
        for q in due {
            let age = (now - q.oldest_due).num_milliseconds().max(0) as f64 / 1000.0;
            self.oldest_due
                .get_or_create(&QueueLabel { queue: q.queue })
                .set(age);
        }
        self.jobs.clear();
        for q in &queues {
            for (state, count) in [
                ("inactive", q.inactive),
                ("active", q.active),
                ("finished", q.finished),
                ("failed", q.failed),
            ] {
                let labels = StateLabels {
                    queue: q.name.clone(),
                    state: state.to_string(),
                };
                self.jobs
                    .get_or_create(&labels)
                    .set(i64::try_from(count).unwrap_or(i64::MAX));
            }
        }
        self.workers
            .set(i64::try_from(workers.len()).unwrap_or(i64::MAX));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .map_err(|e| underling::Error::Invariant(format!("encoding metrics: {e}")))?;
        Ok(text)
    }
}
