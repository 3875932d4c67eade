//! The claim pipeline: when to claim and how many (the sizing rules are the [`Ledger`]'s),
//! claims as background calls with outcomes riding along, their replies, wake-ups and polls,
//! releases of jobs that never started, and a burst worker's last look.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;

use super::completer::{Completer, report_stale};
use super::control::WorkerId;
use super::executor::Running;
use super::ledger::Ledger;
use super::reconcile::Reconciler;
use crate::error::{Error, Result};
use crate::job::{Job, Settle, Settled};
use crate::model::ClaimSpec;
use crate::store::{self, Store};

/// A settle-and-claim call that came back.
pub(super) struct ClaimReply {
    /// How many jobs it asked for.
    requested: usize,
    /// The wake-ups seen when it was sent (see [`Readiness`]).
    sent_at: u64,
    /// The outcomes it carried.
    settles: Vec<Settle>,
    /// What the store said.
    result: Result<(Vec<Settled>, Vec<Job>)>,
}

/// What a burst worker's last look found.
pub(super) enum LastLook {
    /// Jobs to run: go on.
    Started,
    /// Nothing is ready (or the look failed, with the error to report after cleanup): exit.
    Exit(Option<Error>),
}

/// Claims jobs for the dispatch loop.
pub(super) struct Producer {
    store: Arc<dyn Store>,
    spec: ClaimSpec,
    worker_id: WorkerId,
    poll_interval: Duration,
    /// Where claim replies go; the dispatch loop receives them.
    replies_tx: mpsc::UnboundedSender<ClaimReply>,
    wakeups: Option<broadcast::Receiver<String>>,
    /// Whether more jobs may be ready.
    ready: Readiness,
    next_poll: Instant,
    /// After a release failed, when to try again.
    next_release: Instant,
    /// A claim failed since this was last looked at: it may have committed all the same.
    claim_failed: bool,
}

impl Producer {
    /// A producer for jobs matching `spec`, and the channel its claim replies arrive on. It
    /// subscribes to wake-ups at once, before the first claim, so that no wake-up falls
    /// between a claim that found nothing and the wait that follows it.
    pub(super) async fn start(
        store: Arc<dyn Store>,
        spec: ClaimSpec,
        worker_id: WorkerId,
        poll_interval: Duration,
    ) -> Result<(Producer, mpsc::UnboundedReceiver<ClaimReply>)> {
        let wakeups = subscribe(&*store).await?;
        let (replies_tx, replies_rx) = mpsc::unbounded_channel();
        let now = Instant::now();
        let producer = Producer {
            store,
            spec,
            worker_id,
            poll_interval,
            replies_tx,
            wakeups,
            ready: Readiness::default(),
            next_poll: now + poll_interval,
            next_release: now,
            claim_failed: false,
        };
        Ok((producer, replies_rx))
    }

    /// Whether more jobs may be ready.
    pub(super) fn maybe_ready(&self) -> bool {
        self.ready.maybe()
    }

    /// Something happened that may have made jobs ready (a remote command, a finished parent
    /// in burst mode).
    pub(super) fn nudge(&mut self) {
        self.ready.woken();
    }

    /// Releases waiting jobs the ledger no longer wants to hold (jobs got slow, or the worker
    /// was paused), so that other workers can have them; after a failure, not again for 1 s.
    pub(super) async fn release_excess(&mut self, ledger: &mut Ledger) {
        if !ledger.has_excess_waiting() || Instant::now() < self.next_release {
            return;
        }
        let extra = ledger.excess_waiting();
        if let Err(kept) = release(&*self.store, self.worker_id.get(), extra).await {
            ledger.keep(kept);
            self.next_release = Instant::now() + Duration::from_secs(1);
        }
    }

    /// Sends a claim if one is due; `true` if one went out.
    pub(super) fn claim_if_due(&mut self, ledger: &mut Ledger, completer: &Completer) -> bool {
        if !self.ready.maybe() {
            return false;
        }
        let Some(size) = ledger.claim_size() else {
            return false;
        };
        // Outcomes waiting to be written go along with the claim: one statement, one commit
        // for the whole cycle.
        let settles = completer.take_for_claim();
        ledger.claim_sent(size);
        let store = self.store.clone();
        let spec = self.spec.clone();
        let worker_id = self.worker_id.get();
        let replies = self.replies_tx.clone();
        let sent_at = self.ready.sent();
        tokio::spawn(async move {
            let result = settle_and_claim(&*store, &settles, worker_id, &spec, size).await;
            let _ = replies.send(ClaimReply {
                requested: size,
                sent_at,
                settles,
                result,
            });
        });
        true
    }

    /// Waits for a wake-up (only listened to while `can_claim`) or the next poll; either
    /// marks jobs as maybe ready (a wake-up only for one of our queues).
    pub(super) async fn wait_for_jobs(&mut self, can_claim: bool) {
        tokio::select! {
            biased;
            woken = next_wakeup(&mut self.wakeups), if can_claim => {
                if woken
                    .as_deref()
                    .is_none_or(|q| q == "*" || self.spec.queues.iter().any(|x| x == q))
                {
                    self.ready.woken();
                }
                if woken.is_none() {
                    // The stream ended: fall back to polling.
                    self.wakeups = None;
                }
            }
            _ = tokio::time::sleep_until(self.next_poll) => {
                self.ready.woken();
                self.next_poll = Instant::now() + self.poll_interval;
            }
        }
    }

    /// Handles a claim that came back: its jobs wait for a slot, or, when it failed, its
    /// outcomes go back to the completer.
    pub(super) async fn handle(
        &mut self,
        reply: ClaimReply,
        ledger: &mut Ledger,
        completer: &Completer,
    ) {
        match reply.result {
            Ok((settled, jobs)) => {
                completer.written(&reply.settles);
                report_stale(&reply.settles, &settled);
                self.ready
                    .returned(reply.sent_at, jobs.len() == reply.requested);
                if jobs.is_empty() {
                    self.next_poll = self.next_poll_time().await;
                }
                ledger.claim_returned(reply.requested, jobs);
            }
            Err(e) => {
                ledger.claim_returned(reply.requested, Vec::new());
                // Nothing was written: the settler will try these outcomes again.
                completer.put_back(reply.settles);
                tracing::warn!(error = %e, "claim failed; retrying");
                self.claim_failed = true;
                self.next_poll = Instant::now() + Duration::from_secs(1);
                self.ready.failed();
            }
        }
    }

    /// Whether a claim failed since the last call.
    pub(super) fn take_claim_failed(&mut self) -> bool {
        std::mem::take(&mut self.claim_failed)
    }

    /// Gives back jobs active under this worker that it does not know (see the `reconcile`
    /// module). Call only while no claim is in flight.
    pub(super) async fn reconcile(
        &self,
        reconciler: &mut Reconciler,
        ledger: &Ledger,
        completer: &Completer,
    ) {
        if let Err(e) = reconciler
            .run(&*self.store, self.worker_id.get(), ledger, completer)
            .await
        {
            tracing::warn!(error = %e, "reconciling the jobs this worker holds failed");
        }
    }

    /// At shutdown: waits for the claims still in flight. Their jobs are ours now and wait in
    /// the ledger for [`Ledger::drain`].
    pub(super) async fn drain_in_flight(
        &mut self,
        replies: &mut mpsc::UnboundedReceiver<ClaimReply>,
        ledger: &mut Ledger,
        completer: &Completer,
    ) {
        while ledger.in_flight() > 0 {
            match replies.recv().await {
                Some(reply) => self.handle(reply, ledger, completer).await,
                None => break,
            }
        }
    }

    /// Gives back jobs claimed under a registration that was removed (they never started);
    /// returns those it could not, to be tried again later (not again for 1 s).
    pub(super) async fn release_stale(&mut self, jobs: Vec<Job>) -> Vec<Job> {
        if jobs.is_empty() || Instant::now() < self.next_release {
            return jobs;
        }
        match release(&*self.store, self.worker_id.get(), jobs).await {
            Ok(()) => Vec::new(),
            Err(kept) => {
                self.next_release = Instant::now() + Duration::from_secs(1);
                kept
            }
        }
    }

    /// At shutdown: gives back jobs that never started.
    pub(super) async fn release_unstarted(&self, jobs: Vec<Job>) {
        if jobs.is_empty() {
            return;
        }
        if let Err(kept) = release(&*self.store, self.worker_id.get(), jobs).await {
            tracing::warn!(
                jobs = kept.len(),
                "could not give back jobs that never started; repair will rescue them"
            );
        }
    }

    /// A burst worker with nothing left to do: results still on their way may make children
    /// ready, so they are written first, then the worker looks once more.
    pub(super) async fn last_look(
        &mut self,
        ledger: &mut Ledger,
        completer: &Completer,
        spawn: impl FnMut(Job) -> Running,
    ) -> LastLook {
        if !completer.flush().await {
            return LastLook::Exit(None);
        }
        let size = ledger.concurrency().max(1);
        match claim(&*self.store, self.worker_id.get(), &self.spec, size).await {
            Ok(jobs) if !jobs.is_empty() => {
                let sent_at = self.ready.sent();
                self.ready.returned(sent_at, jobs.len() == size);
                ledger.start_all(jobs, spawn);
                LastLook::Started
            }
            Ok(_) => LastLook::Exit(None),
            Err(e) => LastLook::Exit(Some(e)),
        }
    }

    /// When to look again after a claim found nothing: the poll interval, or sooner when a
    /// delayed job falls due.
    async fn next_poll_time(&self) -> Instant {
        let mut wait = self.poll_interval;
        if let Ok(Some(due)) = next_due(&*self.store, &self.spec).await {
            let until = (due - chrono::Utc::now())
                .to_std()
                .unwrap_or(Duration::ZERO);
            wait = wait.min(until + Duration::from_millis(1));
        }
        Instant::now() + wait
    }
}

/// Whether more jobs may be ready, and which claims may say they are not.
///
/// A wake-up, a poll or a nudge says jobs may be ready; a claim that got every job it asked
/// for says more may be; a claim that got fewer says none is left, but only as of when it ran.
/// A wake-up that arrived while that claim was in flight may be for a job committed after
/// its snapshot, so such a reply leaves readiness alone: otherwise the wake-up is lost, and
/// a worker that never polls leaves the job waiting.
#[derive(Debug)]
struct Readiness {
    maybe: bool,
    /// How many wake-ups (polls, nudges) were seen so far.
    wakes: u64,
}

impl Default for Readiness {
    fn default() -> Self {
        // A new worker looks once before it waits.
        Readiness {
            maybe: true,
            wakes: 0,
        }
    }
}

impl Readiness {
    fn maybe(&self) -> bool {
        self.maybe
    }

    /// Jobs may be ready: a wake-up, a poll or a nudge.
    fn woken(&mut self) {
        self.maybe = true;
        self.wakes += 1;
    }

    /// A claim goes out: what it returns is judged against the wake-ups seen until now.
    fn sent(&self) -> u64 {
        self.wakes
    }

    /// A claim sent at `sent_at` came back, `full` if it got every job it asked for.
    fn returned(&mut self, sent_at: u64, full: bool) {
        if full {
            self.maybe = true;
        } else if self.wakes == sent_at {
            self.maybe = false;
        }
    }

    /// A claim failed: look again at the next poll (set sooner by the caller), not at once.
    fn failed(&mut self) {
        self.maybe = false;
    }
}

/// The next wake-up: a queue name, `*` for "anything", or `None` when the stream ended.
async fn next_wakeup(rx: &mut Option<broadcast::Receiver<String>>) -> Option<String> {
    match rx {
        Some(rx) => match rx.recv().await {
            Ok(queue) => Some(queue),
            Err(broadcast::error::RecvError::Lagged(_)) => Some("*".into()),
            Err(broadcast::error::RecvError::Closed) => None,
        },
        None => std::future::pending().await,
    }
}

/// Gives jobs that never started back to the queue, each under the registration that
/// claimed it (`worker_id` for a job that names none); on failure, returns those not given
/// back. A job rescued meanwhile is left alone: the release is guarded by the attempt.
async fn release(
    store: &dyn Store,
    worker_id: i64,
    jobs: Vec<Job>,
) -> std::result::Result<(), Vec<Job>> {
    let mut by_worker: std::collections::BTreeMap<i64, Vec<Job>> = Default::default();
    for job in jobs {
        by_worker
            .entry(job.worker_id.unwrap_or(worker_id))
            .or_default()
            .push(job);
    }
    let mut kept = Vec::new();
    for (worker_id, jobs) in by_worker {
        if !kept.is_empty() {
            kept.extend(jobs);
            continue;
        }
        let attempts: Vec<store::Attempt> = jobs
            .iter()
            .map(|job| store::Attempt {
                id: job.id,
                retries: job.retries,
            })
            .collect();
        let release = store::Release {
            worker_id,
            attempts: &attempts,
        };
        match store.release(release).await {
            Ok(released) => {
                tracing::debug!(
                    jobs = attempts.len(),
                    released,
                    "gave back jobs that never started"
                );
            }
            Err(e) => {
                tracing::warn!(error = %e, jobs = jobs.len(), "giving back jobs that never started failed");
                kept.extend(jobs);
            }
        }
    }
    if kept.is_empty() { Ok(()) } else { Err(kept) }
}

// The store calls of the claim pipeline, one each.

/// Wake-ups for queues that got ready jobs, if the store pushes them.
async fn subscribe(store: &dyn Store) -> Result<Option<broadcast::Receiver<String>>> {
    store.subscribe().await
}

/// Writes outcomes and claims up to `limit` jobs in one round trip.
async fn settle_and_claim(
    store: &dyn Store,
    settles: &[Settle],
    worker_id: i64,
    spec: &ClaimSpec,
    limit: usize,
) -> Result<(Vec<Settled>, Vec<Job>)> {
    let cycle = store::Cycle {
        settles,
        claim: Some(store::Claim {
            worker_id,
            spec,
            limit,
        }),
        now: None,
    };
    let reply = store.cycle(cycle).await?;
    Ok((reply.settled, reply.claimed))
}

/// Claims up to `limit` jobs.
async fn claim(
    store: &dyn Store,
    worker_id: i64,
    spec: &ClaimSpec,
    limit: usize,
) -> Result<Vec<Job>> {
    let (_, jobs) = settle_and_claim(store, &[], worker_id, spec, limit).await?;
    Ok(jobs)
}

/// When the next delayed job falls due.
async fn next_due(
    store: &dyn Store,
    spec: &ClaimSpec,
) -> Result<Option<chrono::DateTime<chrono::Utc>>> {
    store
        .next_due(store::NextDue {
            queues: &spec.queues,
            now: None,
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::Readiness;

    #[test]
    fn a_claim_that_got_fewer_jobs_than_it_asked_for_says_none_is_ready() {
        let mut ready = Readiness::default();
        let sent = ready.sent();
        ready.returned(sent, false);
        assert!(!ready.maybe());
    }

    #[test]
    fn a_claim_that_got_every_job_it_asked_for_says_more_may_be_ready() {
        let mut ready = Readiness::default();
        let sent = ready.sent();
        ready.returned(sent, false);
        let sent = ready.sent();
        ready.returned(sent, true);
        assert!(ready.maybe());
    }

    #[test]
    fn a_wake_up_while_a_claim_is_in_flight_outlives_its_short_reply() {
        let mut ready = Readiness::default();
        let sent = ready.sent();
        ready.woken();
        ready.returned(sent, false);
        assert!(
            ready.maybe(),
            "the wake-up may be for a job committed after the claim's snapshot"
        );
        let sent = ready.sent();
        ready.returned(sent, false);
        assert!(
            !ready.maybe(),
            "a claim sent after the wake-up has seen its job"
        );
    }

    #[test]
    fn a_failed_claim_leaves_the_next_look_to_the_poll() {
        let mut ready = Readiness::default();
        ready.woken();
        ready.failed();
        assert!(!ready.maybe());
    }
}
