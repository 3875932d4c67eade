//! Job events and the audit log: every transition with the job's record at that moment, live
//! to subscribers and kept by the audit log while it is on.

use std::time::Duration;

use serde_json::json;
use underling::{
    AuditQuery, EnqueueOptions, EventStream, JobEvent, JobEventKind, JobState, RepairOptions,
};

use crate::support::*;

/// The next event, or a panic after 5 s.
async fn next(events: &mut EventStream) -> JobEvent {
    match tokio::time::timeout(Duration::from_secs(5), events.next()).await {
        Ok(Some(Ok(event))) => event,
        Ok(Some(Err(missed))) => panic!("{missed}"),
        Ok(None) => panic!("the event stream ended"),
        Err(_) => panic!("no event within 5 s"),
    }
}

/// The next `n` events as (kind, job id, job state).
async fn next_n(events: &mut EventStream, n: usize) -> Vec<(JobEventKind, i64, JobState)> {
    let mut seen = Vec::new();
    for _ in 0..n {
        let e = next(events).await;
        seen.push((e.event, e.job.id, e.job.state));
    }
    seen
}

/// No event arrives within half a second.
async fn assert_quiet(events: &mut EventStream) {
    if let Ok(Some(event)) = tokio::time::timeout(Duration::from_millis(500), events.next()).await {
        panic!("expected no event, got {event:?}");
    }
}

/// How many event triggers are on the jobs table (read directly: the built-in stores only).
async fn event_triggers(t: &crate::TestStore) -> i64 {
    match t.queue.pool() {
        underling::Pool::Postgres(pool) => sqlx::query_scalar(
            "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'underling_jobs'::regclass \
             AND tgname LIKE 'underling_events_%'",
        )
        .fetch_one(&pool)
        .await
        .expect("count the triggers"),
        underling::Pool::Sqlite(pool) => sqlx::query_scalar(
            "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' \
             AND name LIKE 'underling_events_%'",
        )
        .fetch_one(&pool)
        .await
        .expect("count the triggers"),
        other => panic!("event_triggers knows PostgreSQL and SQLite pools only, got {other:?}"),
    }
}

/// Makes every event lease look as if its holder died a minute ago.
async fn expire_event_leases(t: &crate::TestStore) {
    match t.queue.pool() {
        underling::Pool::Postgres(pool) => {
            sqlx::query("UPDATE underling_event_listeners SET until = now() - interval '1 minute'")
                .execute(&pool)
                .await
                .expect("expire the leases");
        }
        underling::Pool::Sqlite(pool) => {
            sqlx::query("UPDATE underling_event_listeners SET until = 0")
                .execute(&pool)
                .await
                .expect("expire the leases");
        }
        other => {
            panic!("expire_event_leases knows PostgreSQL and SQLite pools only, got {other:?}")
        }
    }
}

fn all_audit() -> AuditQuery {
    AuditQuery {
        limit: 100,
        ..AuditQuery::default()
    }
}

behaviours! {
    async fn events_carry_a_jobs_life_in_order_with_its_record(t) {
        let queue = t.queue.clone();
        let mut events = queue.events().await.unwrap();
        let id = enqueue_with(&queue, "add", EnqueueOptions::new().queue("mail").priority(3)).await;
        let w = worker(t).await;
        let claimed = claim_by_id(t, w, id).await.expect("claimable");
        queue.note(id, json!({"progress": 50})).await.unwrap();
        finish(t, &claimed, json!({"sum": 3})).await;
        queue.remove_job(id).await.unwrap();
        let enqueued = next(&mut events).await;
        assert_eq!(enqueued.event, JobEventKind::Enqueued);
        assert_eq!((enqueued.job.id, enqueued.job.task.as_str(), enqueued.job.queue.as_str()), (id, "add", "mail"));
        assert_eq!((enqueued.job.state, enqueued.job.priority), (JobState::Inactive, 3));
        let started = next(&mut events).await;
        assert_eq!((started.event, started.job.state, started.job.worker_id), (JobEventKind::Started, JobState::Active, Some(w)));
        let noted = next(&mut events).await;
        assert_eq!(noted.event, JobEventKind::Noted);
        assert_eq!(noted.job.notes.get("progress"), Some(&json!(50)));
        let finished = next(&mut events).await;
        assert_eq!((finished.event, finished.job.state), (JobEventKind::Finished, JobState::Finished));
        assert_eq!(finished.job.result, Some(json!({"sum": 3})));
        let removed = next(&mut events).await;
        assert_eq!((removed.event, removed.job.id, removed.job.state), (JobEventKind::Removed, id, JobState::Finished));
        assert_eq!(removed.job.result, Some(json!({"sum": 3})), "a removal carries the record before it");
    }

    async fn events_tell_a_retry_and_a_final_failure_apart(t) {
        let queue = t.queue.clone();
        let mut events = queue.events().await.unwrap();
        let id = enqueue_with(&queue, "add", EnqueueOptions::new().attempts(2)).await;
        let w = worker(t).await;
        let first = claim_by_id(t, w, id).await.expect("claimable");
        assert_eq!(fail(t, &first, json!("boom"), Duration::ZERO).await, underling::Settled::Retried);
        run_to_failure(t, w, id).await;
        assert_eq!(
            next_n(&mut events, 5).await,
            vec![
                (JobEventKind::Enqueued, id, JobState::Inactive),
                (JobEventKind::Started, id, JobState::Active),
                (JobEventKind::Retried, id, JobState::Inactive),
                (JobEventKind::Started, id, JobState::Active),
                (JobEventKind::Failed, id, JobState::Failed),
            ]
        );
    }

    async fn a_job_of_a_missing_worker_is_a_rescued_event(t) {
        let queue = t.queue.clone();
        let id = enqueue(&queue, "add").await;
        let w = worker(t).await;
        claim_one(t, w).await;
        let mut events = queue.events().await.unwrap();
        tick().await;
        let options = RepairOptions { missing_after: Duration::ZERO, ..Default::default() };
        queue.repair(&options).await.unwrap();
        let rescued = next(&mut events).await;
        assert_eq!((rescued.event, rescued.job.id, rescued.job.state), (JobEventKind::Rescued, id, JobState::Failed));
        assert_eq!(rescued.job.result, Some(json!("Worker went away")));
    }

    async fn a_retry_by_hand_is_a_retried_event(t) {
        let queue = t.queue.clone();
        let id = enqueue(&queue, "add").await;
        let w = worker(t).await;
        run_to_failure(t, w, id).await;
        let mut events = queue.events().await.unwrap();
        queue.retry_job(id, Default::default()).await.unwrap();
        let retried = next(&mut events).await;
        assert_eq!((retried.event, retried.job.state, retried.job.retries), (JobEventKind::Retried, JobState::Inactive, 1));
    }

    async fn an_event_carries_a_record_larger_than_a_notification_whole(t) {
        let queue = t.queue.clone();
        let mut events = queue.events().await.unwrap();
        let big = "x".repeat(20_000);
        let id = queue.enqueue("add", json!({"big": big}), EnqueueOptions::new()).await.unwrap();
        let w = worker(t).await;
        claim_one(t, w).await;
        let enqueued = next(&mut events).await;
        assert_eq!((enqueued.event, enqueued.job.id), (JobEventKind::Enqueued, id));
        assert_eq!(enqueued.job.args, json!({"big": big}));
        assert!(!enqueued.partial);
        let started = next(&mut events).await;
        assert_eq!((started.event, started.job.args.clone()), (JobEventKind::Started, json!({"big": big})));
    }

    async fn an_event_of_a_job_with_parents_lists_them(t) {
        let queue = t.queue.clone();
        let parent = enqueue(&queue, "add").await;
        let child = enqueue_with(&queue, "add", EnqueueOptions::new().parent(parent)).await;
        let w = worker(t).await;
        run_to_finish(t, w, parent).await;
        let mut events = queue.events().await.unwrap();
        claim_by_id(t, w, child).await.expect("claimable");
        let started = next(&mut events).await;
        assert_eq!((started.event, started.job.id), (JobEventKind::Started, child));
        assert_eq!(started.job.parents, vec![parent]);
    }

    async fn a_batch_enqueue_is_one_event_per_job_in_id_order(t) {
        let queue = t.queue.clone();
        let mut events = queue.events().await.unwrap();
        let jobs: Vec<_> = (0..3)
            .map(|n| underling::NewJob::new("add", json!({"n": n}), EnqueueOptions::new()).unwrap())
            .collect();
        let ids = queue.enqueue_batch(&jobs).await.unwrap();
        let seen = next_n(&mut events, 3).await;
        let expected: Vec<_> = ids.iter().map(|id| (JobEventKind::Enqueued, *id, JobState::Inactive)).collect();
        assert_eq!(seen, expected);
    }

    async fn the_event_triggers_exist_while_someone_subscribes_and_go_after_the_last_left(t) {
        let queue = t.queue.clone();
        assert_eq!(event_triggers(t).await, 0, "nothing to pay for while nobody listens");
        let events = queue.events().await.unwrap();
        assert_eq!(event_triggers(t).await, 3);
        drop(events);
        // The source looks at its lease every 10 s.
        wait_for("the event triggers to go", || async {
            (event_triggers(t).await == 0).then_some(())
        })
        .await;
        // A new subscriber starts it again.
        let mut events = queue.events().await.unwrap();
        assert_eq!(event_triggers(t).await, 3);
        let id = enqueue(&queue, "add").await;
        assert_eq!(next_n(&mut events, 1).await, vec![(JobEventKind::Enqueued, id, JobState::Inactive)]);
    }

    async fn repair_drops_the_event_triggers_of_leases_that_ran_out_and_a_live_source_takes_them_back(t) {
        let queue = t.queue.clone();
        let mut events = queue.events().await.unwrap();
        expire_event_leases(t).await;
        queue.repair(&RepairOptions::default()).await.unwrap();
        assert_eq!(event_triggers(t).await, 0, "as if the subscriber had died");
        // The subscriber is alive: at its next renewal (every 10 s) it takes its lease and its
        // triggers back, and events flow again.
        wait_for("the event triggers to come back", || async {
            (event_triggers(t).await == 3).then_some(())
        })
        .await;
        let id = enqueue(&queue, "add").await;
        assert_eq!(next_n(&mut events, 1).await, vec![(JobEventKind::Enqueued, id, JobState::Inactive)]);
    }

    async fn events_are_only_those_after_subscribing(t) {
        let queue = t.queue.clone();
        enqueue(&queue, "add").await;
        let mut events = queue.events().await.unwrap();
        assert_quiet(&mut events).await;
        let id = enqueue(&queue, "add").await;
        assert_eq!(next_n(&mut events, 1).await, vec![(JobEventKind::Enqueued, id, JobState::Inactive)]);
    }

    async fn the_audit_log_is_off_at_first_and_records_nothing(t) {
        let queue = t.queue.clone();
        assert!(!queue.audit_enabled().await.unwrap());
        enqueue(&queue, "add").await;
        assert_eq!(queue.audit(&all_audit()).await.unwrap(), vec![]);
    }

    async fn the_audit_log_keeps_every_transition_past_the_jobs_removal(t) {
        let queue = t.queue.clone();
        queue.enable_audit().await.unwrap();
        assert!(queue.audit_enabled().await.unwrap());
        let id = enqueue(&queue, "add").await;
        let w = worker(t).await;
        run_to_finish(t, w, id).await;
        queue.remove_job(id).await.unwrap();
        let entries = queue.audit(&AuditQuery { job_id: Some(id), ..all_audit() }).await.unwrap();
        let seen: Vec<_> = entries.iter().map(|e| (e.event, e.job.state)).collect();
        assert_eq!(
            seen,
            vec![
                (JobEventKind::Removed, JobState::Finished),
                (JobEventKind::Finished, JobState::Finished),
                (JobEventKind::Started, JobState::Active),
                (JobEventKind::Enqueued, JobState::Inactive),
            ],
            "newest first"
        );
        assert!(entries.windows(2).all(|w| w[0].id > w[1].id));
    }

    async fn a_disabled_audit_log_stops_recording_and_keeps_its_entries(t) {
        let queue = t.queue.clone();
        queue.enable_audit().await.unwrap();
        let first = enqueue(&queue, "add").await;
        queue.disable_audit().await.unwrap();
        assert!(!queue.audit_enabled().await.unwrap());
        enqueue(&queue, "add").await;
        let entries = queue.audit(&all_audit()).await.unwrap();
        let seen: Vec<_> = entries.iter().map(|e| (e.event, e.job.id)).collect();
        assert_eq!(seen, vec![(JobEventKind::Enqueued, first)]);
    }

    async fn audit_pages_go_back_from_before(t) {
        let queue = t.queue.clone();
        queue.enable_audit().await.unwrap();
        let ids = [enqueue(&queue, "add").await, enqueue(&queue, "add").await, enqueue(&queue, "add").await];
        let page = queue.audit(&AuditQuery { limit: 2, ..all_audit() }).await.unwrap();
        assert_eq!(page.iter().map(|e| e.job.id).collect::<Vec<_>>(), vec![ids[2], ids[1]]);
        let rest = queue.audit(&AuditQuery { limit: 2, before: Some(page[1].id), ..all_audit() }).await.unwrap();
        assert_eq!(rest.iter().map(|e| e.job.id).collect::<Vec<_>>(), vec![ids[0]]);
    }

    async fn prune_audit_removes_only_entries_older_than_the_age(t) {
        let queue = t.queue.clone();
        queue.enable_audit().await.unwrap();
        enqueue(&queue, "add").await;
        assert_eq!(queue.prune_audit(Duration::from_secs(3600)).await.unwrap(), 0);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(queue.prune_audit(Duration::from_millis(10)).await.unwrap(), 1);
        assert_eq!(queue.audit(&all_audit()).await.unwrap(), vec![]);
    }

    async fn prune_audit_removes_more_entries_than_one_batch_holds(t) {
        let queue = t.queue.clone();
        queue.enable_audit().await.unwrap();
        let jobs: Vec<_> = (0..10_001)
            .map(|_| underling::NewJob::new("add", json!({}), EnqueueOptions::new()).unwrap())
            .collect();
        queue.enqueue_batch(&jobs).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(queue.prune_audit(Duration::from_millis(1)).await.unwrap(), 10_001);
        assert_eq!(queue.audit(&all_audit()).await.unwrap(), vec![]);
    }

    async fn an_audit_query_with_a_bad_limit_is_refused(t) {
        let queue = t.queue.clone();
        let err = queue.audit(&AuditQuery { limit: 0, ..all_audit() }).await.unwrap_err();
        assert_eq!(err.to_string(), "invalid option: audit limit must be between 1 and 10000, got 0");
    }
}
