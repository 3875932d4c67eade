//! The limited claim of PostgreSQL builds SQL from the stored limits
//! (`underling_limit_group_sql` and `underling_pick_limited`, migration 0016): limit names with
//! quotes, brackets and SQL in them are quoted as literals, so they count their jobs like any
//! other name and run nothing. See SECURITY.md.

use serde_json::json;
use underling::{EnqueueOptions, Limit, LimitScope};
use underling_testkit::postgres;
use underling_testkit::support::{claim, enqueue_with, worker};

/// A queue name that would end the statement if it were spliced in unquoted.
const HOSTILE_QUEUE: &str = "q'); DROP TABLE underling_jobs; --";

/// A key path whose names have quotes, a bracket and a comma in them.
const HOSTILE_PATH: &str = "te'nant\"},x.id";

#[tokio::test]
async fn a_concurrency_limit_on_a_queue_named_with_sql_lets_one_job_of_it_start() {
    let Some(db) = postgres().await else {
        return;
    };
    db.queue
        .set_limit(&Limit::concurrency(
            LimitScope::Queue(HOSTILE_QUEUE.into()),
            1,
        ))
        .await
        .unwrap();
    for _ in 0..2 {
        enqueue_with(&db.queue, "t", EnqueueOptions::new().queue(HOSTILE_QUEUE)).await;
    }
    let w = worker(&db).await;
    assert_eq!(claim(&db, w, &[HOSTILE_QUEUE], 10).await.len(), 1);
    assert_eq!(claim(&db, w, &[HOSTILE_QUEUE], 10).await.len(), 0);
    db.cleanup().await;
}

#[tokio::test]
async fn an_args_limit_whose_key_path_has_quotes_and_brackets_groups_jobs_by_that_path() {
    let Some(db) = postgres().await else {
        return;
    };
    db.queue
        .set_limit(&Limit::concurrency(
            LimitScope::Args(HOSTILE_PATH.into()),
            1,
        ))
        .await
        .unwrap();
    let args = |id: &str| json!({"te'nant\"},x": {"id": id}});
    for id in ["a", "a", "b"] {
        db.queue
            .enqueue("t", args(id), EnqueueOptions::new())
            .await
            .unwrap();
    }
    let w = worker(&db).await;
    let claimed = claim(&db, w, &["default"], 10).await;
    let mut groups: Vec<_> = claimed
        .iter()
        .map(|job| job.args["te'nant\"},x"]["id"].clone())
        .collect();
    groups.sort_by_key(|g| g.to_string());
    assert_eq!(groups, vec![json!("a"), json!("b")]);
    db.cleanup().await;
}
