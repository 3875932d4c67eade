//! Exact concurrency and rate limits (migration 0015): per queue, per task and per value of a
//! key in the arguments or notes, enforced inside every claim (native and leased), never
//! exceeded by concurrent claimers; jobs of full groups are passed over, not waited on.

use std::time::Duration;

use chrono::Utc;
use serde_json::json;
use underling::store::{Claim, Cycle};
use underling::{EnqueueOptions, Error, LeaseOptions, Limit, LimitScope, NewJob, Rate};

use crate::support::*;

fn queue_limit(name: &str, n: u32) -> Limit {
    Limit::concurrency(LimitScope::Queue(name.into()), n)
}

fn tenant_limit(n: u32) -> Limit {
    Limit::concurrency(LimitScope::Args("tenant".into()), n)
}

/// Enqueues an `add` job for a tenant in the default queue.
async fn for_tenant(t: &crate::TestStore, tenant: &str) -> i64 {
    t.queue
        .enqueue("add", json!({ "tenant": tenant }), EnqueueOptions::new())
        .await
        .unwrap()
}

behaviours! {
    async fn a_queue_concurrency_limit_caps_the_active_jobs_of_that_queue(t) {
        t.queue.set_limit(&queue_limit("q", 2)).await.unwrap();
        let ids: Vec<i64> = {
            let mut ids = Vec::new();
            for _ in 0..4 {
                ids.push(enqueue_with(&t.queue, "add", EnqueueOptions::new().queue("q")).await);
            }
            ids
        };
        let other = enqueue_with(&t.queue, "add", EnqueueOptions::new().queue("other")).await;
        let w = worker(t).await;
        assert_eq!(claim_ids(t, w, &["q", "other"], 10).await, vec![ids[0], ids[1], other]);
        assert_eq!(claim_ids(t, w, &["q"], 10).await, Vec::<i64>::new());
        let first = job(&t.queue, ids[0]).await;
        finish(t, &first, json!(null)).await;
        assert_eq!(claim_ids(t, w, &["q"], 10).await, vec![ids[2]]);
    }

    async fn a_task_concurrency_limit_counts_the_task_in_every_queue(t) {
        t.queue
            .set_limit(&Limit::concurrency(LimitScope::Task("add".into()), 1))
            .await
            .unwrap();
        let a1 = enqueue_with(&t.queue, "add", EnqueueOptions::new().queue("q1")).await;
        let _a2 = enqueue_with(&t.queue, "add", EnqueueOptions::new().queue("q2")).await;
        let mail = enqueue_with(&t.queue, "mail", EnqueueOptions::new().queue("q2")).await;
        let w = worker(t).await;
        assert_eq!(claim_ids(t, w, &["q1", "q2"], 10).await, vec![a1, mail]);
        assert_eq!(claim_ids(t, w, &["q2"], 10).await, Vec::<i64>::new());
    }

    async fn a_key_limit_makes_each_value_a_group_and_passes_over_full_ones(t) {
        t.queue.set_limit(&tenant_limit(1)).await.unwrap();
        let a1 = for_tenant(t, "a").await;
        let _a2 = for_tenant(t, "a").await;
        let b1 = for_tenant(t, "b").await;
        let none = enqueue(&t.queue, "add").await;
        let _b2 = for_tenant(t, "b").await;
        let w = worker(t).await;
        assert_eq!(claim_ids(t, w, &["default"], 10).await, vec![a1, b1, none]);
        assert_eq!(claim_ids(t, w, &["default"], 10).await, Vec::<i64>::new());
    }

    async fn a_key_limit_reads_a_key_of_the_notes_set_at_enqueue(t) {
        t.queue
            .set_limit(&Limit::concurrency(LimitScope::key_from("notes.account.id").unwrap(), 1))
            .await
            .unwrap();
        let with = |id: i64| EnqueueOptions::new().notes(json!({ "account": { "id": id } }));
        let first = enqueue_with(&t.queue, "add", with(7)).await;
        let _second = enqueue_with(&t.queue, "add", with(7)).await;
        let other = enqueue_with(&t.queue, "add", with(8)).await;
        let w = worker(t).await;
        assert_eq!(claim_ids(t, w, &["default"], 10).await, vec![first, other]);
    }

    async fn every_limit_a_job_falls_under_must_have_room(t) {
        t.queue.set_limit(&tenant_limit(2)).await.unwrap();
        t.queue.set_limit(&queue_limit("default", 2)).await.unwrap();
        let a1 = for_tenant(t, "a").await;
        let a2 = for_tenant(t, "a").await;
        let _b1 = for_tenant(t, "b").await;
        let w = worker(t).await;
        assert_eq!(claim_ids(t, w, &["default"], 10).await, vec![a1, a2]);
        assert_eq!(claim_ids(t, w, &["default"], 10).await, Vec::<i64>::new());
    }

    async fn jobs_beyond_the_first_page_behind_a_full_group_are_reached(t) {
        t.queue.set_limit(&tenant_limit(1)).await.unwrap();
        let jobs: Vec<NewJob> = (0..150)
            .map(|_| NewJob::new("add", json!({ "tenant": "big" }), EnqueueOptions::new()).unwrap())
            .collect();
        let big = t.queue.enqueue_batch(&jobs).await.unwrap();
        let small = for_tenant(t, "small").await;
        let w = worker(t).await;
        assert_eq!(claim_ids(t, w, &["default"], 2).await, vec![big[0], small]);
    }

    async fn priority_order_holds_among_the_jobs_the_limits_let_start(t) {
        t.queue.set_limit(&tenant_limit(1)).await.unwrap();
        let low = t
            .queue
            .enqueue("add", json!({ "tenant": "a" }), EnqueueOptions::new().priority(1))
            .await
            .unwrap();
        let high = t
            .queue
            .enqueue("add", json!({ "tenant": "a" }), EnqueueOptions::new().priority(9))
            .await
            .unwrap();
        let w = worker(t).await;
        assert_eq!(claim_ids(t, w, &["default"], 10).await, vec![high]);
        let claimed = job(&t.queue, high).await;
        finish(t, &claimed, json!(null)).await;
        assert_eq!(claim_ids(t, w, &["default"], 10).await, vec![low]);
    }

    async fn a_rate_limit_allows_count_starts_in_any_window_of_its_period(t) {
        let rate: Rate = "2/1h".parse().unwrap();
        t.queue.set_limit(&Limit::rate(LimitScope::Task("add".into()), rate)).await.unwrap();
        let mut ids = Vec::new();
        for _ in 0..5 {
            ids.push(enqueue(&t.queue, "add").await);
        }
        let w = worker(t).await;
        let base = Utc::now() + chrono::Duration::seconds(1);
        let claim_at = |offset_secs: i64| {
            let spec = spec(&["default"]);
            let store = t.store.clone();
            async move {
                let cycle = Cycle {
                    settles: &[],
                    claim: Some(Claim { worker_id: w, spec: &spec, limit: 10 }),
                    now: Some(base + chrono::Duration::seconds(offset_secs)),
                };
                store.cycle(cycle).await.unwrap().claimed.iter().map(|j| j.id).collect::<Vec<_>>()
            }
        };
        assert_eq!(claim_at(0).await, vec![ids[0], ids[1]]);
        // Finishing frees no rate: starts count, not running jobs.
        for id in &ids[..2] {
            let claimed = job(&t.queue, *id).await;
            finish(t, &claimed, json!(null)).await;
        }
        assert_eq!(claim_at(1800).await, Vec::<i64>::new());
        assert_eq!(claim_at(3601).await, vec![ids[2], ids[3]]);
        assert_eq!(claim_at(3602).await, Vec::<i64>::new());
    }

    async fn leased_claims_obey_limits_and_count_as_active(t) {
        t.queue.set_limit(&queue_limit("default", 1)).await.unwrap();
        let first = enqueue(&t.queue, "add").await;
        enqueue(&t.queue, "add").await;
        let leased = t
            .queue
            .claim_leased(&LeaseOptions::new(Duration::from_secs(30)).queue("default").limit(5))
            .await
            .unwrap();
        assert_eq!(leased.iter().map(|l| l.job.id).collect::<Vec<_>>(), vec![first]);
        let w = worker(t).await;
        assert_eq!(claim_ids(t, w, &["default"], 5).await, Vec::<i64>::new());
    }

    async fn concurrent_claimers_never_exceed_a_limit(t) {
        t.queue.set_limit(&queue_limit("default", 3)).await.unwrap();
        for _ in 0..20 {
            enqueue(&t.queue, "add").await;
        }
        let mut claimers = Vec::new();
        for _ in 0..8 {
            let w = worker(t).await;
            let store = t.store.clone();
            claimers.push(tokio::spawn(async move {
                let spec = spec(&["default"]);
                let mut claimed = 0;
                for _ in 0..5 {
                    let cycle = Cycle {
                        settles: &[],
                        claim: Some(Claim { worker_id: w, spec: &spec, limit: 2 }),
                        now: None,
                    };
                    claimed += store.cycle(cycle).await.unwrap().claimed.len();
                }
                claimed
            }));
        }
        let mut total = 0;
        for c in claimers {
            total += c.await.unwrap();
        }
        assert_eq!(total, 3);
        assert_eq!(t.queue.stats().await.unwrap().active_jobs, 3);
    }

    async fn a_paused_queue_stays_paused_under_a_limit(t) {
        t.queue.set_limit(&queue_limit("default", 5)).await.unwrap();
        enqueue(&t.queue, "add").await;
        t.queue.pause_queue("default").await.unwrap();
        let w = worker(t).await;
        assert_eq!(claim_ids(t, w, &["default"], 5).await, Vec::<i64>::new());
    }

    async fn setting_a_limit_replaces_the_one_of_the_same_scope(t) {
        t.queue.set_limit(&queue_limit("mail", 3)).await.unwrap();
        let both = Limit {
            scope: LimitScope::Queue("mail".into()),
            concurrency: Some(5),
            rate: Some("100/1m".parse().unwrap()),
        };
        t.queue.set_limit(&both).await.unwrap();
        t.queue.set_limit(&tenant_limit(2)).await.unwrap();
        t.queue
            .set_limit(&Limit::concurrency(LimitScope::Task("image.resize".into()), 4))
            .await
            .unwrap();
        assert_eq!(
            t.queue.limits().await.unwrap(),
            vec![
                tenant_limit(2),
                both,
                Limit::concurrency(LimitScope::Task("image.resize".into()), 4),
            ]
        );
    }

    async fn removing_a_limit_lets_the_jobs_it_held_back_start(t) {
        t.queue.set_limit(&queue_limit("default", 1)).await.unwrap();
        let a = enqueue(&t.queue, "add").await;
        let b = enqueue(&t.queue, "add").await;
        let w = worker(t).await;
        assert_eq!(claim_ids(t, w, &["default"], 5).await, vec![a]);
        assert!(t.queue.remove_limit(&LimitScope::Queue("default".into())).await.unwrap());
        assert_eq!(claim_ids(t, w, &["default"], 5).await, vec![b]);
        assert!(!t.queue.remove_limit(&LimitScope::Queue("default".into())).await.unwrap());
        assert_eq!(t.queue.limits().await.unwrap(), Vec::<Limit>::new());
    }

    async fn a_malformed_limit_is_refused_with_the_reason_and_changes_nothing(t) {
        let refused = |limit: Limit| {
            let queue = t.queue.clone();
            async move {
                match queue.set_limit(&limit).await {
                    Err(e @ Error::InvalidLimit(_)) => e.to_string(),
                    other => panic!("expected InvalidLimit, got {other:?}"),
                }
            }
        };
        assert_eq!(
            refused(queue_limit("mail", 0)).await,
            "invalid limit: queue mail: concurrency must be at least 1 (to stop a queue, pause it)"
        );
        assert_eq!(
            refused(Limit { scope: LimitScope::Task("t".into()), concurrency: None, rate: None }).await,
            "invalid limit: task t: give a concurrency, a rate or both"
        );
        assert_eq!(
            refused(Limit::concurrency(LimitScope::Args("tenant..id".into()), 1)).await,
            "invalid limit: key path \"tenant..id\" must be names joined by dots, like tenant or customer.id (at most 200 bytes)"
        );
        assert_eq!(
            refused(Limit::rate(LimitScope::Task("t".into()), Rate { count: 5, period: Duration::ZERO })).await,
            "invalid limit: a rate's period must be 1ms to 366 days, got 0s"
        );
        assert!(matches!(
            t.queue.set_limit(&queue_limit(" mail", 1)).await,
            Err(Error::InvalidQueue(_))
        ));
        assert_eq!(t.queue.limits().await.unwrap(), Vec::<Limit>::new());
    }
}
