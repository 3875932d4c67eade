//! Writing outcomes: the outbox of outcomes not yet written, and the settler task that writes
//! whatever a claim did not take along, a moment after it arrives.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::executor::Attempt;
use crate::job::{Settle, Settled};
use crate::store::{self, Store};

/// How long an outcome waits for the dispatch loop to take it along with a claim before the
/// settler writes it on its own.
const SETTLE_DELAY: Duration = Duration::from_millis(2);

/// What the settler is told.
enum SettlerMsg {
    /// An outcome was put in the outbox.
    Wake,
    /// Answer once everything in the outbox has been written.
    Flush(oneshot::Sender<()>),
}

/// Outcomes waiting to be written. The dispatch loop takes them along with its next claim (one
/// statement for both); the settler writes whatever is still here a moment later.
#[derive(Default)]
struct Outbox {
    state: std::sync::Mutex<OutboxState>,
}

#[derive(Default)]
struct OutboxState {
    /// Outcomes no one is writing yet.
    pending: Vec<Settle>,
    /// Every outcome not yet written, pending or being written: their jobs are still active
    /// in the store, and must not be taken for lost.
    unwritten: HashSet<Attempt>,
}

impl Outbox {
    /// The outbox. A panic elsewhere while the lock was held (none can happen here) must not
    /// make the worker drop outcomes: a poisoned lock is used all the same.
    fn lock(&self) -> std::sync::MutexGuard<'_, OutboxState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn put(&self, settle: Settle) {
        let mut state = self.lock();
        state.unwritten.insert((settle.id, settle.retries));
        state.pending.push(settle);
    }

    fn put_back(&self, settles: Vec<Settle>) {
        self.lock().pending.extend(settles);
    }

    fn written(&self, settles: &[Settle]) {
        let mut state = self.lock();
        for settle in settles {
            state.unwritten.remove(&(settle.id, settle.retries));
        }
    }

    fn unwritten(&self) -> HashSet<Attempt> {
        self.lock().unwritten.clone()
    }

    fn is_empty(&self) -> bool {
        self.lock().pending.is_empty()
    }

    fn take(&self, max: usize) -> Vec<Settle> {
        let mut state = self.lock();
        if state.pending.len() <= max {
            std::mem::take(&mut state.pending)
        } else {
            state.pending.drain(..max).collect()
        }
    }
}

/// The outbox and its settler task.
pub(super) struct Completer {
    outbox: Arc<Outbox>,
    tx: mpsc::UnboundedSender<SettlerMsg>,
    settler: tokio::task::JoinHandle<()>,
    max_batch: usize,
}

impl Completer {
    /// Starts the settler; it writes at most `max_batch` outcomes per statement.
    pub(super) fn start(store: Arc<dyn Store>, max_batch: usize) -> Completer {
        let max_batch = max_batch.max(1);
        let (tx, rx) = mpsc::unbounded_channel();
        let outbox = Arc::new(Outbox::default());
        let settler = tokio::spawn(settle_loop(store, rx, outbox.clone(), max_batch));
        Completer {
            outbox,
            tx,
            settler,
            max_batch,
        }
    }

    /// Queues an outcome to be written.
    pub(super) fn put(&self, settle: Settle) {
        let id = settle.id;
        self.outbox.put(settle);
        if self.tx.send(SettlerMsg::Wake).is_err() {
            tracing::error!(
                job = id,
                "the settler is gone; the job will be rescued by repair"
            );
        }
    }

    /// Outcomes to go along with a claim: one statement, one commit for the whole cycle.
    pub(super) fn take_for_claim(&self) -> Vec<Settle> {
        self.outbox.take(self.max_batch)
    }

    /// Outcomes a claim wrote along with it.
    pub(super) fn written(&self, settles: &[Settle]) {
        self.outbox.written(settles);
    }

    /// The attempts whose outcomes are not written yet (their jobs are still active).
    pub(super) fn unwritten(&self) -> HashSet<Attempt> {
        self.outbox.unwritten()
    }

    /// Outcomes a failed claim did not write: the settler tries them again.
    pub(super) fn put_back(&self, settles: Vec<Settle>) {
        self.outbox.put_back(settles);
        let _ = self.tx.send(SettlerMsg::Wake);
    }

    /// Waits until every outcome queued so far is written; `false` if the settler is gone.
    pub(super) async fn flush(&self) -> bool {
        let (reply, done) = oneshot::channel();
        if self.tx.send(SettlerMsg::Flush(reply)).is_err() {
            return false;
        }
        done.await.is_ok()
    }

    /// Writes what is left (retrying for a while if the database is down) and stops the
    /// settler.
    pub(super) async fn finish(self) {
        drop(self.tx);
        if let Err(e) = self.settler.await {
            tracing::error!(error = %e, "the settler stopped abnormally");
        }
    }
}

/// Writes the outcomes the dispatch loop did not take along with a claim, a moment after they
/// arrive (at once on a flush), as many per statement as have piled up.
async fn settle_loop(
    store: Arc<dyn Store>,
    mut rx: mpsc::UnboundedReceiver<SettlerMsg>,
    outbox: Arc<Outbox>,
    max_batch: usize,
) {
    let mut flushes = Vec::new();
    let mut open = true;
    while open {
        // Outcomes kept after a failed write are tried again every few seconds.
        let retry_soon = !outbox.is_empty();
        let msg = if retry_soon {
            tokio::time::timeout(Duration::from_secs(5), rx.recv())
                .await
                .unwrap_or(Some(SettlerMsg::Wake))
        } else {
            rx.recv().await
        };
        match msg {
            Some(SettlerMsg::Wake) => {}
            Some(SettlerMsg::Flush(reply)) => flushes.push(reply),
            None => open = false,
        }
        if open && flushes.is_empty() {
            tokio::time::sleep(SETTLE_DELAY).await;
        }
        loop {
            match rx.try_recv() {
                Ok(SettlerMsg::Wake) => {}
                Ok(SettlerMsg::Flush(reply)) => flushes.push(reply),
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    open = false;
                    break;
                }
            }
        }
        loop {
            let batch = outbox.take(max_batch);
            if batch.is_empty() {
                break;
            }
            if write_outcomes(&*store, &batch).await {
                outbox.written(&batch);
            } else {
                if open {
                    // Keep them for the next wake-up: once the database is back they are
                    // written, and until then their jobs stay active under a live worker.
                    outbox.put_back(batch);
                } else {
                    tracing::error!(
                        jobs = batch.len(),
                        "giving up on saving results at shutdown; repair will rescue the jobs"
                    );
                }
                break;
            }
        }
        for reply in flushes.drain(..) {
            let _ = reply.send(());
        }
    }
}

/// Writes one batch of outcomes, retrying for about 30 s while the database is unreachable;
/// `false` if it could not.
async fn write_outcomes(store: &dyn Store, batch: &[Settle]) -> bool {
    let mut tries = 0;
    loop {
        match store
            .cycle(store::Cycle {
                settles: batch,
                claim: None,
                now: None,
            })
            .await
            .map(|reply| reply.settled)
        {
            Ok(results) => {
                report_stale(batch, &results);
                return true;
            }
            Err(e) if tries < 30 => {
                tries += 1;
                tracing::warn!(error = %e, jobs = batch.len(), "saving results failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => {
                tracing::error!(error = %e, jobs = batch.len(), "saving results failed");
                return false;
            }
        }
    }
}

/// Logs the outcomes that changed nothing because their attempt was no longer current.
pub(super) fn report_stale(settles: &[Settle], results: &[Settled]) {
    for (settle, result) in settles.iter().zip(results) {
        if *result == Settled::Stale {
            tracing::warn!(
                job = settle.id,
                "result ignored: the job was retried, rescued or removed meanwhile"
            );
        }
    }
}
