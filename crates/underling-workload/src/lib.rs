//! HTTP workloads: jobs of a task performed by a service in any language, reached over HTTP.
//!
//! A workload ([`underling::WorkloadSpec`]) names a task and a URL. A [`Dispatcher`], run by
//! `underling-worker` beside its task plugins, claims the workloads' jobs and POSTs each one
//! as a CloudEvent in structured JSON mode ([`cloud_event`]):
//!
//! - **sync**: the answer is the outcome. A `2xx` finishes the job with the response body as
//!   its result (JSON when it parses, else a string); a `4xx` fails it for good, unless the
//!   answer has `Retry-After` (then it is retried after that delay); a `5xx` (or anything
//!   else), a timeout or a connection error fails the attempt, retried where tries are left.
//! - **async**: the workload answers `202 Accepted` at once and the job stays active under
//!   a lease; the workload reports later with `POST /api/v1/jobs/{id}/ack`, `/reject` or
//!   `/extend` (see `underling serve`), quoting the event's `underlingtoken`. A lease that
//!   runs out fails the attempt with `Lease expired` (retried where tries are left).
//!
//! Jobs are claimed with [`underling::Queue::claim_leased`], so a workload's job is held by a
//! lease, not by a worker row: a sync job's lease is its timeout plus
//! [`SYNC_LEASE_MARGIN`], and if the worker dies the job is rescued when it runs out.
//!
//! ```no_run
//! # async fn demo(queue: underling::Queue) -> Result<(), underling_workload::WorkloadError> {
//! use underling_workload::{DispatchOptions, Dispatcher, parse_workloads};
//!
//! let specs = parse_workloads(r#"
//!     [[workload]]
//!     name = "thumbnail.make"
//!     url = "http://127.0.0.1:8000/thumbnail"
//!     timeout = "10s"
//!     max_concurrency = 4
//!     headers = { Authorization = "Bearer ${THUMBNAIL_TOKEN}" }
//! "#)?;
//! let dispatcher = Dispatcher::new(queue, specs, DispatchOptions::default())?;
//! let control = dispatcher.control();
//! tokio::spawn(async move {
//!     let _ = tokio::signal::ctrl_c().await;
//!     control.stop();
//! });
//! let summary = dispatcher.run().await?;
//! println!("{} jobs dispatched", summary.dispatched);
//! # Ok(()) }
//! ```

mod config;
mod dispatch;
mod error;
mod event;
mod http;
mod tls;

pub use config::{load_workloads, parse_workloads};
pub use dispatch::{
    DispatchControl, DispatchOptions, DispatchSummary, Dispatcher, SYNC_LEASE_MARGIN,
};
pub use error::WorkloadError;
pub use event::{CONTENT_TYPE, cloud_event};
