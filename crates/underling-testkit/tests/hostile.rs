//! Hostile input, generated (proptest), on SQLite and PostgreSQL: arguments, notes, task and
//! queue names and durations that a store cannot keep exactly are refused with a typed error
//! that says what was wrong, and nothing is written; everything accepted reads back exactly
//! as it was given, on both backends alike.
//!
//! PostgreSQL is found at `UNDERLING_TEST_DATABASE_URL`; under CI an unreachable server fails
//! the test, elsewhere its half is skipped loudly.

use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::Value;
use underling::{EnqueueOptions, Error, NewJob, Queue};
use underling_testkit::arbitrary::json;
use underling_testkit::{self as common, TestStore};

/// Names as users and attackers write them: ordinary ones, and any characters at all.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z][a-z0-9._-]{0,20}",
        any::<String>(),
        "[ \\t\\n\\x00]{0,2}[a-z]{0,3}[ \\t\\n\\x00]{0,2}",
    ]
}

/// Whether a JSON value holds a NUL character anywhere (in a string or an object key).
fn has_nul(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(has_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}

/// The stores to run on: SQLite in memory, and PostgreSQL when reachable (always under CI).
fn stores(rt: &tokio::runtime::Runtime) -> Vec<TestStore> {
    rt.block_on(async {
        let mut stores = vec![common::sqlite().await];
        stores.extend(common::postgres().await);
        stores
    })
}

/// How many jobs the store holds.
async fn jobs(queue: &Queue) -> u64 {
    queue
        .list_jobs(&Default::default(), 1, 0)
        .await
        .expect("list jobs")
        .total
}

/// Runs `property` for generated values on every store; the stores are dropped at the end.
fn check<S: Strategy>(
    cases: u32,
    strategy: S,
    property: impl Fn(
        &Queue,
        S::Value,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<(), TestCaseError>> + '_>,
    >,
) where
    S::Value: Clone,
{
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    for store in stores(&rt) {
        let kind = store.kind();
        let mut runner = TestRunner::new(Config {
            cases,
            failure_persistence: None,
            ..Config::default()
        });
        let result = runner.run(&strategy, |value| {
            rt.block_on(property(&store.queue, value))
        });
        rt.block_on(store.cleanup());
        if let Err(e) = result {
            panic!("on {kind:?}: {e}");
        }
    }
}

#[test]
fn args_read_back_exactly_or_are_refused_with_nothing_written() {
    check(128, json(), |queue, args| {
        Box::pin(async move {
            let before = jobs(queue).await;
            match queue
                .enqueue("hostile.args", &args, EnqueueOptions::new())
                .await
            {
                Ok(id) => {
                    prop_assert!(!has_nul(&args), "a NUL character was accepted");
                    let job = queue.job(id).await.expect("read").expect("the job exists");
                    prop_assert_eq!(job.args, args);
                }
                Err(Error::InvalidArgs(reason)) => {
                    prop_assert!(has_nul(&args), "refused without a NUL: {reason}");
                    prop_assert!(reason.contains("NUL"), "the reason names the NUL: {reason}");
                    prop_assert_eq!(jobs(queue).await, before, "something was written");
                }
                Err(e) => prop_assert!(false, "not InvalidArgs: {e:?}"),
            }
            Ok(())
        })
    });
}

#[test]
fn notes_read_back_exactly_or_are_refused_with_nothing_written() {
    check(128, json(), |queue, notes| {
        Box::pin(async move {
            let before = jobs(queue).await;
            let opts = EnqueueOptions::new().notes(notes.clone());
            match queue.enqueue("hostile.notes", Value::Null, opts).await {
                Ok(id) => {
                    prop_assert!(notes.is_object() && !has_nul(&notes), "accepted: {notes}");
                    let job = queue.job(id).await.expect("read").expect("the job exists");
                    prop_assert_eq!(Value::Object(job.notes), notes);
                }
                Err(Error::InvalidNotes(_)) => {
                    prop_assert!(!notes.is_object() || has_nul(&notes), "refused: {notes}");
                    prop_assert_eq!(jobs(queue).await, before, "something was written");
                }
                Err(e) => prop_assert!(false, "not InvalidNotes: {e:?}"),
            }
            Ok(())
        })
    });
}

#[test]
fn task_and_queue_names_read_back_exactly_or_are_refused_with_nothing_written() {
    check(128, (name(), name()), |queue, (task, queue_name)| {
        Box::pin(async move {
            let before = jobs(queue).await;
            let opts = EnqueueOptions::new().queue(queue_name.clone());
            let valid = |s: &str| !s.is_empty() && s.trim() == s && !s.contains('\0');
            match queue.enqueue(&task, Value::Null, opts).await {
                Ok(id) => {
                    prop_assert!(
                        valid(&task) && valid(&queue_name),
                        "accepted {task:?} in {queue_name:?}"
                    );
                    let job = queue.job(id).await.expect("read").expect("the job exists");
                    prop_assert_eq!((job.task, job.queue), (task, queue_name));
                }
                Err(Error::InvalidTask(t)) => {
                    prop_assert!(!valid(&task), "refused the task {t:?}");
                    prop_assert_eq!(jobs(queue).await, before, "something was written");
                }
                Err(Error::InvalidQueue(q)) => {
                    prop_assert!(
                        valid(&task) && !valid(&queue_name),
                        "refused the queue {q:?}"
                    );
                    prop_assert_eq!(jobs(queue).await, before, "something was written");
                }
                Err(e) => prop_assert!(false, "not InvalidTask or InvalidQueue: {e:?}"),
            }
            Ok(())
        })
    });
}

#[test]
fn delays_and_expiries_up_to_100_years_are_kept_and_longer_ones_refused() {
    const DAY: u64 = 86_400;
    let secs = prop_oneof![
        0..120u64,
        0..(101 * 366 * DAY),
        any::<u64>(),
        (100 * 366 * DAY - 2)..(100 * 366 * DAY + 2)
    ];
    // An expiry of under a minute might pass before the job is read back (it is then gone for
    // every reader, by design).
    let expiry = secs.clone().prop_map(|s| s.max(60));
    check(128, (secs, expiry), |queue, (delay, expire)| {
        Box::pin(async move {
            let before = jobs(queue).await;
            let (delay, expire) = (Duration::from_secs(delay), Duration::from_secs(expire));
            let opts = EnqueueOptions::new().delay(delay).expire(expire);
            // The library's limit: 100 years of 366 days.
            let limit = Duration::from_secs(100 * 366 * DAY);
            match NewJob::new("hostile.delay", Value::Null, opts.clone()) {
                Err(Error::InvalidOption(reason)) => {
                    prop_assert!(
                        delay > Duration::from_secs(100 * 365 * DAY)
                            || expire > Duration::from_secs(100 * 365 * DAY)
                    );
                    prop_assert!(reason.contains("at most 100 years"), "{reason}");
                    prop_assert!(
                        queue
                            .enqueue("hostile.delay", Value::Null, opts)
                            .await
                            .is_err()
                    );
                    prop_assert_eq!(jobs(queue).await, before, "something was written");
                }
                Err(e) => prop_assert!(false, "not InvalidOption: {e:?}"),
                Ok(_) => {
                    prop_assert!(delay <= limit && expire <= limit);
                    let id = queue.enqueue("hostile.delay", Value::Null, opts).await;
                    let id = match id {
                        Ok(id) => id,
                        Err(e) => {
                            return Err(TestCaseError::fail(format!(
                                "a valid delay was refused: {e}"
                            )));
                        }
                    };
                    let job = queue.job(id).await.expect("read").expect("the job exists");
                    let kept = (job.delayed - job.created).to_std().expect("not negative");
                    let diff = kept.abs_diff(delay);
                    prop_assert!(
                        diff <= Duration::from_millis(1),
                        "delay {delay:?} kept as {kept:?}"
                    );
                    let expires = job.expires.expect("an expiry");
                    let kept = (expires - job.created).to_std().expect("not negative");
                    prop_assert!(
                        kept.abs_diff(expire) <= Duration::from_millis(1),
                        "expire {expire:?} kept as {kept:?}"
                    );
                }
            }
            Ok(())
        })
    });
}

#[test]
fn any_filter_lists_exactly_the_matching_jobs_or_is_refused_for_a_nul() {
    check(
        96,
        (name(), name(), name()),
        |queue, (task, queue_name, note)| {
            Box::pin(async move {
                // Every job here is task "t" in queue "q" with the note "k".
                let opts = EnqueueOptions::new()
                    .queue("q")
                    .notes(serde_json::json!({"k": 1}));
                queue
                    .enqueue("t", Value::Null, opts)
                    .await
                    .expect("enqueue");
                let all = jobs(queue).await;
                let filter = underling::JobFilter {
                    tasks: vec![task.clone()],
                    queues: vec![queue_name.clone()],
                    notes: vec![note.clone()],
                    ..Default::default()
                };
                let nul = [&task, &queue_name, &note].iter().any(|s| s.contains('\0'));
                match queue.list_jobs(&filter, 1000, 0).await {
                    Ok(listed) => {
                        prop_assert!(!nul, "a NUL in a filter was accepted");
                        let matches = task == "t" && queue_name == "q" && note == "k";
                        prop_assert_eq!(listed.total, if matches { all } else { 0 });
                        prop_assert_eq!(listed.jobs.len() as u64, listed.total);
                    }
                    Err(Error::InvalidOption(reason)) => {
                        prop_assert!(nul, "refused without a NUL: {reason}");
                        prop_assert!(reason.contains("NUL character"), "{reason}");
                    }
                    Err(e) => prop_assert!(false, "not InvalidOption: {e:?}"),
                }
                Ok(())
            })
        },
    );
}

#[test]
fn any_lock_name_is_taken_and_released_or_refused() {
    check(96, name(), |queue, lock| {
        Box::pin(async move {
            match queue.lock(&lock, Duration::from_secs(60), 1).await {
                Ok(taken) => {
                    prop_assert!(
                        !lock.is_empty() && !lock.contains('\0'),
                        "accepted {lock:?}"
                    );
                    prop_assert!(taken);
                    prop_assert!(queue.unlock(&lock).await.expect("unlock"));
                }
                Err(Error::InvalidOption(reason)) => {
                    prop_assert!(
                        lock.is_empty() || lock.contains('\0'),
                        "refused {lock:?}: {reason}"
                    );
                }
                Err(e) => prop_assert!(false, "not InvalidOption: {e:?}"),
            }
            Ok(())
        })
    });
}
