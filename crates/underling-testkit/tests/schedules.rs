//! Many schedulers at once, on the real clock: ten scheduler instances, each with a
//! connection pool of its own (as ten worker processes would have), run passes over busy
//! schedules for several seconds, half of them killed midway and started again; every tick is
//! enqueued exactly once and none is missed. PostgreSQL, and a SQLite file.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use underling::{ConnectOptions, JobFilter, Queue, Schedule};
use underling_testkit::{self as common, TempSqlite};

/// How long the schedulers run.
const RUN_FOR: Duration = Duration::from_secs(12);

/// Starts one scheduler instance: a pass every 20 ms (offset by its number) until aborted.
fn scheduler(queue: Queue, n: u64) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(n * 2)).await;
        loop {
            let pass = queue.run_schedules().await.expect("a scheduler pass");
            assert!(pass.failed.is_empty(), "{:?}", pass.failed);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
}

/// Ten schedulers over three schedules ticking every 1, 2 and 3 seconds, for [`RUN_FOR`];
/// the first five are killed after a third of it and five new ones start after a half.
/// `connect` opens a new queue (with a pool of its own) on the same database.
async fn ten_schedulers<F, Fut>(queue: &Queue, connect: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Queue>,
{
    for (name, cron) in [
        ("s1", "* * * * * *"),
        ("s2", "*/2 * * * * *"),
        ("s3", "*/3 * * * * *"),
    ] {
        queue
            .add_schedule(Schedule::new(name, cron, "beat"))
            .await
            .unwrap();
    }
    let mut running = Vec::new();
    for n in 0..10 {
        running.push(Some(scheduler(connect().await, n)));
    }
    tokio::time::sleep(RUN_FOR / 3).await;
    for slot in running.iter_mut().take(5) {
        if let Some(handle) = slot.take() {
            handle.abort();
        }
    }
    tokio::time::sleep(RUN_FOR / 6).await;
    for (n, slot) in running.iter_mut().enumerate().take(5) {
        *slot = Some(scheduler(connect().await, n as u64));
    }
    tokio::time::sleep(RUN_FOR / 2).await;
    for handle in running.into_iter().flatten() {
        handle.abort();
        let _ = handle.await;
    }

    let jobs = queue
        .list_jobs(&JobFilter::default(), 10_000, 0)
        .await
        .unwrap()
        .jobs;
    let mut by_schedule: BTreeMap<String, Vec<DateTime<Utc>>> = BTreeMap::new();
    for job in &jobs {
        let schedule = job.notes["schedule"].as_str().unwrap().to_string();
        let tick = job.notes["tick"].as_str().unwrap().parse().unwrap();
        by_schedule.entry(schedule).or_default().push(tick);
    }
    for (name, step) in [("s1", 1), ("s2", 2), ("s3", 3)] {
        let mut ticks = by_schedule.remove(name).unwrap_or_default();
        ticks.sort();
        let count = ticks.len();
        ticks.dedup();
        assert_eq!(ticks.len(), count, "{name}: a tick was enqueued twice");
        assert!(
            count as u64 >= RUN_FOR.as_secs() / step - 2,
            "{name}: only {count} ticks in {RUN_FOR:?}"
        );
        for pair in ticks.windows(2) {
            assert_eq!(
                (pair[1] - pair[0]).num_seconds(),
                step as i64,
                "{name}: a tick is missing between {} and {}",
                pair[0],
                pair[1]
            );
        }
        let stored = queue.schedule(name).await.unwrap().unwrap();
        assert_eq!(stored.last_run, ticks.last().copied());
        println!("{name}: {count} ticks, each enqueued once, none missed");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_10_schedulers_enqueue_each_tick_exactly_once_and_miss_none() {
    let Some(db) = common::postgres().await else {
        return;
    };
    let underling::Pool::Postgres(pool) = db.queue.pool() else {
        panic!("a PostgreSQL pool");
    };
    let search_path: String = sqlx::query_scalar("SELECT current_schema()")
        .fetch_one(&pool)
        .await
        .unwrap();
    let url = common::postgres_url();
    ten_schedulers(&db.queue, || {
        let opts = ConnectOptions::new(&url)
            .schema(&search_path)
            .max_connections(2);
        async move {
            Queue::connect_with(opts)
                .await
                .expect("connect a scheduler")
        }
    })
    .await;
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_file_10_schedulers_enqueue_each_tick_exactly_once_and_miss_none() {
    let file = TempSqlite::new("schedules");
    let queue = Queue::connect_with(ConnectOptions::new(file.url()).migrate(true))
        .await
        .unwrap();
    let url = file.url();
    ten_schedulers(&queue, || {
        let opts = ConnectOptions::new(&url).max_connections(2);
        async move {
            Queue::connect_with(opts)
                .await
                .expect("connect a scheduler")
        }
    })
    .await;
}
