//! The worker's link to the operators: it heartbeats (registering again when a repair
//! elsewhere removed it) and reads the inbox of remote commands, as a task of its own, so
//! that a busy dispatch loop neither delays nor is delayed by either.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::{BoxFuture, OptionFuture};
use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::lease::{Lease, Terms};

use crate::command::RemoteCommand;
use crate::error::Result;
use crate::model::Command;
use crate::store::{self, Store};

/// The worker's id, shared by the roles that use it: a heartbeat that finds the worker removed
/// registers it again, and the claims, releases and inbox reads after that use the new id.
/// (Relaxed ordering is enough: the id is the only thing shared through it.)
#[derive(Clone, Debug)]
pub(super) struct WorkerId(Arc<AtomicI64>);

impl WorkerId {
    /// A shared id, starting as `id`.
    pub(super) fn new(id: i64) -> WorkerId {
        WorkerId(Arc::new(AtomicI64::new(id)))
    }

    /// The current id.
    pub(super) fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }

    /// The id after registering again.
    fn set(&self, id: i64) {
        self.0.store(id, Ordering::Relaxed);
    }
}

/// What the dispatch loop reports through the heartbeat.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Status {
    /// How many jobs it runs at once now (0 when paused).
    pub(super) concurrency: usize,
    /// How many jobs run.
    pub(super) running: usize,
    /// How many jobs ended so far.
    pub(super) performed: u64,
}

/// What a worker says about itself: the fixed part of its status.
#[derive(Clone, Debug)]
pub(super) struct Profile {
    /// The queues it claims from.
    pub(super) queues: Vec<String>,
    /// The tasks it can run.
    pub(super) tasks: Vec<String>,
}

impl Profile {
    /// The status recorded with a registration or heartbeat.
    pub(super) fn status(&self, status: Status) -> Value {
        json!({
            "queues": self.queues,
            "jobs": status.concurrency,
            "running": status.running,
            "performed": status.performed,
            "tasks": self.tasks,
        })
    }
}

/// The host and process a worker registers with.
#[derive(Clone, Debug)]
pub(super) struct Identity {
    host: String,
    pid: i32,
}

impl Identity {
    /// This process.
    pub(super) fn of_this_process() -> Identity {
        let host = hostname::get()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_else(|_| "unknown".into());
        Identity {
            host,
            pid: std::process::id() as i32,
        }
    }

    /// Registers a worker; returns its id.
    pub(super) async fn register(&self, store: &dyn Store, status: &Value) -> Result<i64> {
        store
            .register_worker(store::RegisterWorker {
                host: &self.host,
                pid: self.pid,
                status,
                now: None,
            })
            .await
    }
}

/// Removes a worker.
pub(super) async fn unregister(store: &dyn Store, worker_id: i64) -> Result<()> {
    store.unregister_worker(worker_id).await
}

/// What a heartbeat found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Beat {
    /// Recorded: the lease is renewed.
    Alive,
    /// The worker's row is gone: the lease is revoked.
    Removed,
    /// No answer in time, or an error: the lease runs on towards its end.
    Failed,
}

/// Records that a worker is alive, renewing its lease.
pub(super) struct Heartbeat {
    /// Where the worker is registered.
    pub(super) store: Arc<dyn Store>,
    /// Whose heartbeat it is.
    pub(super) worker_id: WorkerId,
    /// Registers again with this identity if a repair removed the worker (once none of its
    /// jobs runs); `None` for a foreground run, whose one job is then killed.
    pub(super) reregister: Option<Identity>,
    /// How long a call may take, and how long a heartbeat's lease lasts.
    pub(super) terms: Terms,
    /// The lease the running jobs and the dispatch loop watch.
    pub(super) lease: watch::Sender<Lease>,
    /// When another worker's heartbeat is older than this, it is missing.
    pub(super) missing_after: Duration,
    /// Told when a heartbeat finds another worker missing, to rescue its jobs at once; `None`
    /// for a foreground run, which does not repair.
    pub(super) rescue: Option<Arc<Notify>>,
}

impl Heartbeat {
    /// One heartbeat with a fresh status. It gives up after the call timeout: a half-open
    /// connection is a failed heartbeat, not a hang.
    pub(super) async fn beat(&self, status: &Value) -> Beat {
        let worker_id = self.worker_id.get();
        let beat = store::Heartbeat {
            id: worker_id,
            status,
            missing_after: self.missing_after,
            now: None,
        };
        // The lease counts from the moment the heartbeat was sent: never later than the time
        // the database records, from which others count `missing_after`.
        let sent = Instant::now();
        match tokio::time::timeout(self.terms.call_timeout, self.store.heartbeat(beat)).await {
            Ok(Ok(store::Beat {
                recorded: true,
                others_missing,
            })) => {
                if others_missing && let Some(rescue) = &self.rescue {
                    rescue.notify_one();
                }
                let renewed = self.terms.renewed(worker_id, sent);
                self.lease.send_if_modified(|lease| {
                    // Never revives a revoked lease, nor one of another registration.
                    let renew = lease.worker_id == worker_id
                        && lease
                            .until
                            .is_some_and(|until| until < renewed.until.unwrap_or(until));
                    if renew {
                        *lease = renewed;
                    }
                    renew
                });
                Beat::Alive
            }
            Ok(Ok(store::Beat {
                recorded: false, ..
            })) => {
                // Someone took us for dead, or removed us: our jobs may be running elsewhere.
                tracing::warn!(
                    worker = worker_id,
                    "worker was removed; killing its jobs before it registers again"
                );
                self.lease.send_if_modified(|lease| {
                    let revoke = lease.worker_id == worker_id && lease.until.is_some();
                    if revoke {
                        lease.until = None;
                    }
                    revoke
                });
                Beat::Removed
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "heartbeat failed");
                Beat::Failed
            }
            Err(_) => {
                tracing::warn!(
                    timeout_ms = self.terms.call_timeout.as_millis() as u64,
                    "heartbeat got no answer in time"
                );
                Beat::Failed
            }
        }
    }

    /// Registers again after a removal, once none of the old registration's jobs runs; a new
    /// id and a fresh lease on success.
    async fn register_again(&self, identity: &Identity, status: &Value) -> bool {
        let sent = Instant::now();
        match tokio::time::timeout(
            self.terms.call_timeout,
            identity.register(&*self.store, status),
        )
        .await
        {
            Ok(Ok(id)) => {
                tracing::info!(worker = id, "registered again");
                self.worker_id.set(id);
                self.lease.send_replace(self.terms.renewed(id, sent));
                true
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "registering again failed");
                false
            }
            Err(_) => {
                tracing::warn!("registering again got no answer in time");
                false
            }
        }
    }
}

/// Parses a command from the inbox (as `Queue::broadcast` checked it before sending); logs
/// and skips what makes no sense (a command sent by an older release, or written by hand).
fn parse(command: &str, args: &Value) -> Option<RemoteCommand> {
    match RemoteCommand::parse(command, args) {
        Ok(command) => Some(command),
        Err(e) => {
            tracing::warn!(error = %e, "remote command skipped");
            None
        }
    }
}

/// What a stopped or killed job records as its error.
pub(super) fn stop_reason(kill: bool) -> &'static str {
    if kill {
        "Job was killed"
    } else {
        "Job was stopped"
    }
}

/// The control task's settings.
pub(super) struct Control {
    /// The heartbeat, re-registering if need be.
    pub(super) heartbeat: Heartbeat,
    /// The fixed part of the status it reports.
    pub(super) profile: Profile,
    /// How often it heartbeats.
    pub(super) heartbeat_interval: Duration,
    /// How often it reads the inbox.
    pub(super) command_interval: Duration,
}

impl Control {
    /// Starts heartbeating (with the status last sent on `status`) and reading the inbox; the
    /// commands of each non-empty read go out on the returned channel as one batch (an
    /// invalid command still counts as one, so that the dispatch loop looks for jobs again, as
    /// it did when it read the inbox itself). After a removal it registers again once
    /// `clear` names the removed registration (none of its jobs runs any more). Runs until
    /// `stop` is cancelled.
    pub(super) fn spawn(
        self,
        status: watch::Receiver<Status>,
        clear: watch::Receiver<Option<i64>>,
        stop: CancellationToken,
    ) -> (
        tokio::task::JoinHandle<()>,
        mpsc::UnboundedReceiver<Vec<RemoteCommand>>,
    ) {
        let (tx, rx) = mpsc::unbounded_channel();
        (tokio::spawn(self.run(status, clear, tx, stop)), rx)
    }

    async fn run(
        self,
        status: watch::Receiver<Status>,
        mut clear: watch::Receiver<Option<i64>>,
        tx: mpsc::UnboundedSender<Vec<RemoteCommand>>,
        stop: CancellationToken,
    ) {
        let mut heartbeat = tokio::time::interval(self.heartbeat_interval);
        let mut commands = tokio::time::interval(self.command_interval);
        heartbeat.reset();
        commands.reset();
        // The registration that was removed, until the worker has registered again.
        let mut removed: Option<i64> = None;
        // The inbox read in flight, and when it began. A slow read is waited for, never
        // dropped: the store takes the commands out of the inbox as it reads them, so a read
        // given up after the database ran it would lose them.
        let mut reading: Option<(BoxFuture<'_, Result<Vec<Command>>>, Instant)> = None;
        loop {
            tokio::select! {
                biased;
                _ = stop.cancelled() => break,
                _ = heartbeat.tick() => {
                    let now = self.profile.status(*status.borrow());
                    match removed {
                        None => {
                            let worker_id = self.heartbeat.worker_id.get();
                            if self.heartbeat.beat(&now).await == Beat::Removed
                                && self.heartbeat.reregister.is_some()
                            {
                                removed = Some(worker_id);
                            }
                        }
                        // A registration that failed is tried again at each tick.
                        Some(old) if *clear.borrow() == Some(old) => {
                            if self.register_again(&now).await {
                                removed = None;
                            }
                        }
                        Some(_) => {}
                    }
                }
                changed = clear.changed(), if removed.is_some() => {
                    if changed.is_ok() && *clear.borrow_and_update() == removed {
                        let now = self.profile.status(*status.borrow());
                        if self.register_again(&now).await {
                            removed = None;
                        }
                    }
                }
                _ = commands.tick(), if removed.is_none() => {
                    match reading {
                        None => {
                            let worker_id = self.heartbeat.worker_id.get();
                            reading = Some((receive(&*self.heartbeat.store, worker_id).boxed(), Instant::now()));
                        }
                        Some((_, since)) if since.elapsed() >= self.heartbeat.terms.call_timeout => {
                            tracing::warn!(waited_ms = since.elapsed().as_millis() as u64, "reading the inbox is taking long");
                        }
                        Some(_) => {}
                    }
                }
                Some(read) = OptionFuture::from(reading.as_mut().map(|(read, _)| read)), if reading.is_some() => {
                    reading = None;
                    match read {
                        Ok(cmds) if cmds.is_empty() => {}
                        Ok(cmds) => {
                            let parsed = cmds
                                .iter()
                                .filter_map(|cmd| parse(&cmd.command, &cmd.args))
                                .collect();
                            // Only a dispatch loop that is gone drops them, and then this
                            // task is stopped or aborted next: heartbeats go on until then.
                            let _ = tx.send(parsed);
                        }
                        Err(e) => tracing::warn!(error = %e, "reading the inbox failed"),
                    }
                }
            }
        }
    }

    /// Registers again with the identity the worker has.
    async fn register_again(&self, status: &Value) -> bool {
        match &self.heartbeat.reregister {
            Some(identity) => self.heartbeat.register_again(identity, status).await,
            None => false,
        }
    }
}

/// Takes the commands waiting in the worker's inbox.
async fn receive(store: &dyn Store, worker_id: i64) -> Result<Vec<Command>> {
    store.receive(worker_id).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse_like_the_inbox_sends_them() {
        assert_eq!(parse("stop", &json!([7])), Some(RemoteCommand::Stop(7)));
        assert_eq!(parse("kill", &json!(7)), Some(RemoteCommand::Kill(7)));
        assert_eq!(parse("stop", &json!([])), None);
        assert_eq!(parse("jobs", &json!([3])), Some(RemoteCommand::Jobs(3)));
        assert_eq!(parse("jobs", &json!(["x"])), None);
        assert_eq!(parse("pause", &json!([])), Some(RemoteCommand::Pause));
        assert_eq!(parse("resume", &json!(null)), Some(RemoteCommand::Resume));
        assert_eq!(parse("dance", &json!([])), None);
    }
}
