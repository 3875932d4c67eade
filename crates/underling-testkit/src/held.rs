//! [`HeldStore`]: a store that forwards every operation to another store but holds back
//! the writes of outcomes, or the replies to claims, as a test asks: to see what a worker
//! does when its writes are slow, never arrive (a process about to be killed), or when a
//! claim committed long before the worker hears of it. A [`Heartbeats`] switch makes its
//! heartbeats hang (a half-open connection) or fail while the test says so.

use std::sync::Arc;
use std::sync::atomic::Ordering::SeqCst;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{broadcast, watch};
use underling::store::{
    Beat, Broadcast, ClaimById, Cycle, CycleReply, Enqueue, FifoQueue, Heartbeat, ListJobs, Lock,
    Locks, NextDue, Note, Now, PauseQueue, PublishTasks, Purge, RegisterWorker, Release, Repair,
    Retry, Unlock,
};
use underling::{
    AppliedMigration, AuditEntry, AuditQuery, BackendKind, Command, HistoryPoint, Job, JobEvent,
    JobList, LockInfo, Pool, Queue, QueueDue, QueueInfo, RepairReport, Result, Stats, Store,
    TaskDefaults, WorkerInfo,
};

/// What happens to a write of outcomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delay {
    /// It never returns and never reaches the store: the outcomes stay in the worker's memory,
    /// as they would in a process about to be killed.
    Never,
    /// It reaches the store only after this long.
    After(Duration),
}

/// What a [`HeldStore`] holds back. Everything else goes through at once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Hold {
    /// Cycles that settle outcomes (with or without a claim) are held back before they reach
    /// the store. `None`: written at once.
    pub settles: Option<Delay>,
    /// Every claim's reply reaches the caller only this long after the store answered: the
    /// claimed jobs are active in the database and not yet running. `None`: at once.
    pub claim_replies: Option<Duration>,
    /// The replies of this many claims that got jobs are lost: the claim commits, and the
    /// caller gets a connection error instead of the jobs.
    pub lost_claim_replies: u32,
    /// Every inbox read's reply reaches the caller only this long after the store took the
    /// commands out of the inbox. `None`: at once.
    pub inbox_replies: Option<Duration>,
}

impl Hold {
    /// Writes of outcomes never return and never reach the store.
    pub fn settles_never() -> Self {
        Hold {
            settles: Some(Delay::Never),
            ..Hold::default()
        }
    }
    /// Writes of outcomes reach the store only after `delay`.
    pub fn settles_after(delay: Duration) -> Self {
        Hold {
            settles: Some(Delay::After(delay)),
            ..Hold::default()
        }
    }
    /// The first `n` claims that get jobs commit, but their replies are lost (the caller gets
    /// a connection error).
    pub fn claim_replies_lost(n: u32) -> Self {
        Hold {
            lost_claim_replies: n,
            ..Hold::default()
        }
    }
    /// Everything goes through at once, but every inbox read's reply comes `delay` after the
    /// store took the commands out of the inbox.
    pub fn inbox_replies_after(delay: Duration) -> Self {
        Hold {
            inbox_replies: Some(delay),
            ..Hold::default()
        }
    }
    /// Outcomes are written at once, but every claim's reply comes `delay` after the claim
    /// committed.
    pub fn claim_replies_after(delay: Duration) -> Self {
        Hold {
            claim_replies: Some(delay),
            ..Hold::default()
        }
    }
}

/// What happens to a worker's heartbeats through a [`HeldStore`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Beats {
    /// They reach the store.
    #[default]
    Through,
    /// They never return while this lasts, and reach the store only afterwards (if the
    /// worker still waits for them): a connection gone half-open.
    Hang,
    /// They fail at once with a database error.
    Fail,
}

/// Switches what happens to the heartbeats of a [`HeldStore`] while a worker runs on it.
#[derive(Debug, Clone, Default)]
pub struct Heartbeats(Arc<watch::Sender<Beats>>);

impl Heartbeats {
    /// A switch that lets heartbeats through.
    pub fn new() -> Self {
        Self::default()
    }
    /// From now on, heartbeats do as `beats` says.
    pub fn set(&self, beats: Beats) {
        self.0.send_replace(beats);
    }
}

/// A store that forwards every operation to `inner`, holding back what [`Hold`] says.
pub struct HeldStore {
    inner: Arc<dyn Store>,
    hold: Hold,
    heartbeats: Heartbeats,
    /// How many claim replies are still to be lost.
    lose: std::sync::atomic::AtomicU32,
}

impl HeldStore {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn Store>, hold: Hold) -> Self {
        Self::with_heartbeats(inner, hold, Heartbeats::new())
    }

    /// Wraps `inner`; its heartbeats do what `heartbeats` is switched to.
    pub fn with_heartbeats(inner: Arc<dyn Store>, hold: Hold, heartbeats: Heartbeats) -> Self {
        HeldStore {
            lose: std::sync::atomic::AtomicU32::new(hold.lost_claim_replies),
            inner,
            hold,
            heartbeats,
        }
    }

    /// A queue over `inner` whose heartbeats do what `heartbeats` is switched to (everything
    /// else goes through at once), for a worker to run on.
    pub fn queue_with_heartbeats(inner: &Arc<dyn Store>, heartbeats: &Heartbeats) -> Queue {
        Queue::from_store(Arc::new(HeldStore::with_heartbeats(
            inner.clone(),
            Hold::default(),
            heartbeats.clone(),
        )))
    }

    /// A queue over `inner` wrapped in a held store: a worker built on it writes through the
    /// hold, while the test looks at the store through its own queue.
    pub fn queue(inner: &Arc<dyn Store>, hold: Hold) -> Queue {
        Queue::from_store(Arc::new(HeldStore::new(inner.clone(), hold)))
    }

    async fn hold_settles(&self) {
        match self.hold.settles {
            None => {}
            Some(Delay::Never) => std::future::pending::<()>().await,
            Some(Delay::After(delay)) => tokio::time::sleep(delay).await,
        }
    }
}

#[async_trait::async_trait]
impl Store for HeldStore {
    fn kind(&self) -> BackendKind {
        self.inner.kind()
    }
    fn pool(&self) -> Pool {
        self.inner.pool()
    }
    async fn migrate(&self) -> Result<Vec<AppliedMigration>> {
        self.inner.migrate().await
    }
    async fn check_migrated(&self) -> Result<()> {
        self.inner.check_migrated().await
    }
    async fn enqueue(&self, p: Enqueue<'_>) -> Result<Vec<underling::Enqueued>> {
        self.inner.enqueue(p).await
    }
    async fn enqueue_on_postgres(
        &self,
        conn: &mut sqlx::PgConnection,
        p: Enqueue<'_>,
    ) -> Result<Vec<underling::Enqueued>> {
        self.inner.enqueue_on_postgres(conn, p).await
    }
    async fn enqueue_on_sqlite(
        &self,
        conn: &mut sqlx::SqliteConnection,
        p: Enqueue<'_>,
    ) -> Result<Vec<underling::Enqueued>> {
        self.inner.enqueue_on_sqlite(conn, p).await
    }
    async fn cycle(&self, p: Cycle<'_>) -> Result<CycleReply> {
        // A write of outcomes alone is held too, even an empty one; a claim without outcomes
        // goes through.
        if !p.settles.is_empty() || p.claim.is_none() {
            self.hold_settles().await;
        }
        let reply = self.inner.cycle(p).await;
        if let (Some(delay), Some(_)) = (self.hold.claim_replies, p.claim) {
            tokio::time::sleep(delay).await;
        }
        if let Ok(got) = &reply
            && !got.claimed.is_empty()
            && self
                .lose
                .fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1))
                .is_ok()
        {
            return Err(underling::Error::Database(sqlx::Error::Io(
                std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "the claim's reply was lost",
                ),
            )));
        }
        reply
    }
    async fn active_attempts(&self, worker_id: i64) -> Result<Vec<underling::store::Attempt>> {
        self.inner.active_attempts(worker_id).await
    }
    async fn claim_leased(
        &self,
        p: underling::store::ClaimLeased<'_>,
    ) -> Result<Vec<underling::LeasedJob>> {
        self.inner.claim_leased(p).await
    }
    async fn settle_leased(
        &self,
        p: underling::store::SettleLeased<'_>,
    ) -> Result<underling::Settled> {
        self.inner.settle_leased(p).await
    }
    async fn extend_lease(&self, p: underling::store::ExtendLease) -> Result<DateTime<Utc>> {
        self.inner.extend_lease(p).await
    }
    async fn expire_leases(&self, p: underling::store::ExpireLeases<'_>) -> Result<u64> {
        self.inner.expire_leases(p).await
    }
    async fn claim_by_id(&self, p: ClaimById) -> Result<Option<Job>> {
        self.inner.claim_by_id(p).await
    }
    async fn release(&self, p: Release<'_>) -> Result<u64> {
        self.inner.release(p).await
    }
    async fn next_due(&self, p: NextDue<'_>) -> Result<Option<DateTime<Utc>>> {
        self.inner.next_due(p).await
    }
    async fn job(&self, id: i64, now: Now) -> Result<Option<Job>> {
        self.inner.job(id, now).await
    }
    async fn list(&self, p: ListJobs<'_>) -> Result<JobList> {
        self.inner.list(p).await
    }
    async fn retry(&self, p: Retry<'_>) -> Result<u64> {
        self.inner.retry(p).await
    }
    async fn remove(&self, id: i64) -> Result<()> {
        self.inner.remove(id).await
    }
    async fn purge(&self, p: Purge<'_>) -> Result<underling::store::Purged> {
        self.inner.purge(p).await
    }
    async fn note(&self, p: Note<'_>) -> Result<()> {
        self.inner.note(p).await
    }
    async fn stats(&self, now: Now) -> Result<Stats> {
        self.inner.stats(now).await
    }
    async fn history(&self, now: Now) -> Result<Vec<HistoryPoint>> {
        self.inner.history(now).await
    }
    async fn history_minutes(&self, now: Now) -> Result<Vec<underling::MinutePoint>> {
        self.inner.history_minutes(now).await
    }
    async fn queue_throughput(&self, now: Now) -> Result<Vec<underling::QueueThroughput>> {
        self.inner.queue_throughput(now).await
    }
    async fn publish_tasks(&self, p: PublishTasks<'_>) -> Result<()> {
        self.inner.publish_tasks(p).await
    }
    async fn tasks(&self) -> Result<Vec<TaskDefaults>> {
        self.inner.tasks().await
    }
    async fn put_workload(&self, p: underling::store::PutWorkload<'_>) -> Result<bool> {
        self.inner.put_workload(p).await
    }
    async fn workloads(&self) -> Result<Vec<underling::store::WorkloadRow>> {
        self.inner.workloads().await
    }
    async fn remove_workload(&self, name: &str) -> Result<bool> {
        self.inner.remove_workload(name).await
    }
    async fn put_workload_token(&self, p: underling::store::PutWorkloadToken<'_>) -> Result<()> {
        self.inner.put_workload_token(p).await
    }
    async fn workload_of_token(&self, token_sha256: &str) -> Result<Option<String>> {
        self.inner.workload_of_token(token_sha256).await
    }
    async fn remove_workload_token(&self, workload: &str) -> Result<bool> {
        self.inner.remove_workload_token(workload).await
    }
    async fn register_worker(&self, p: RegisterWorker<'_>) -> Result<i64> {
        self.inner.register_worker(p).await
    }
    async fn heartbeat(&self, p: Heartbeat<'_>) -> Result<Beat> {
        let mut beats = self.heartbeats.0.subscribe();
        let now = *beats.borrow_and_update();
        match now {
            Beats::Through => {}
            Beats::Fail => return Err(sqlx::Error::PoolTimedOut.into()),
            Beats::Hang => {
                // The sender lives in `self`, so the wait cannot fail.
                let _ = beats.wait_for(|b| *b != Beats::Hang).await;
            }
        }
        self.inner.heartbeat(p).await
    }
    async fn unregister_worker(&self, id: i64) -> Result<()> {
        self.inner.unregister_worker(id).await
    }
    async fn workers(&self, ids: &[i64]) -> Result<Vec<WorkerInfo>> {
        self.inner.workers(ids).await
    }
    async fn broadcast(&self, p: Broadcast<'_>) -> Result<u64> {
        self.inner.broadcast(p).await
    }
    async fn receive(&self, worker_id: i64) -> Result<Vec<Command>> {
        let commands = self.inner.receive(worker_id).await;
        if let Some(delay) = self.hold.inbox_replies {
            tokio::time::sleep(delay).await;
        }
        commands
    }
    async fn lock(&self, p: Lock<'_>) -> Result<bool> {
        self.inner.lock(p).await
    }
    async fn unlock(&self, p: Unlock<'_>) -> Result<bool> {
        self.inner.unlock(p).await
    }
    async fn locks(&self, p: Locks<'_>) -> Result<Vec<LockInfo>> {
        self.inner.locks(p).await
    }
    async fn set_queue_paused(&self, p: PauseQueue<'_>) -> Result<()> {
        self.inner.set_queue_paused(p).await
    }

    async fn limited(&self, queues: &[String]) -> Result<bool> {
        self.inner.limited(queues).await
    }

    async fn set_queue_fifo(&self, p: FifoQueue<'_>) -> Result<()> {
        self.inner.set_queue_fifo(p).await
    }
    async fn set_limit(&self, limit: &underling::Limit) -> Result<()> {
        self.inner.set_limit(limit).await
    }
    async fn limits(&self) -> Result<Vec<underling::Limit>> {
        self.inner.limits().await
    }
    async fn remove_limit(&self, scope: &underling::LimitScope) -> Result<bool> {
        self.inner.remove_limit(scope).await
    }
    async fn queues(&self, now: Now) -> Result<Vec<QueueInfo>> {
        self.inner.queues(now).await
    }
    async fn repair(&self, p: Repair<'_>) -> Result<RepairReport> {
        self.inner.repair(p).await
    }
    async fn rescue(&self, p: Repair<'_>) -> Result<RepairReport> {
        self.inner.rescue(p).await
    }
    async fn subscribe(&self) -> Result<Option<broadcast::Receiver<String>>> {
        self.inner.subscribe().await
    }
    async fn watch(&self, id: i64) -> Result<Option<broadcast::Receiver<i64>>> {
        self.inner.watch(id).await
    }
    async fn oldest_due(&self, now: Now) -> Result<Vec<QueueDue>> {
        self.inner.oldest_due(now).await
    }
    async fn upsert_schedule(&self, p: underling::store::UpsertSchedule<'_>) -> Result<bool> {
        self.inner.upsert_schedule(p).await
    }
    async fn schedules(&self, names: &[String]) -> Result<Vec<underling::ScheduleInfo>> {
        self.inner.schedules(names).await
    }
    async fn due_schedules(&self, now: Now) -> Result<Vec<underling::store::DueSchedule>> {
        self.inner.due_schedules(now).await
    }
    async fn fire_schedule(
        &self,
        p: underling::store::FireSchedule<'_>,
    ) -> Result<underling::store::Fired> {
        self.inner.fire_schedule(p).await
    }
    async fn set_schedule_paused(&self, p: underling::store::PauseSchedule<'_>) -> Result<bool> {
        self.inner.set_schedule_paused(p).await
    }
    async fn remove_schedule(&self, name: &str) -> Result<bool> {
        self.inner.remove_schedule(name).await
    }
    async fn events(&self) -> Result<broadcast::Receiver<JobEvent>> {
        self.inner.events().await
    }
    async fn set_audit(&self, on: bool) -> Result<()> {
        self.inner.set_audit(on).await
    }
    async fn audit_enabled(&self) -> Result<bool> {
        self.inner.audit_enabled().await
    }
    async fn audit(&self, p: &AuditQuery) -> Result<Vec<AuditEntry>> {
        self.inner.audit(p).await
    }
    async fn prune_audit(&self, before: DateTime<Utc>) -> Result<u64> {
        self.inner.prune_audit(before).await
    }
    async fn close(&self) {
        self.inner.close().await
    }
}
