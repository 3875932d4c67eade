//! Schedules (cron, [`underling::Schedule`]): stored, listed with their next run times,
//! paused, resumed, removed and run now; each tick enqueued once by any number of
//! schedulers, missed ticks caught up by policy, and the wall clock's changes crossed, with
//! an injected clock ([`underling::ManualClock`]) so that nothing waits for real time.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;
use underling::{
    CatchUp, EnqueueOptions, Error, Job, JobFilter, ManualClock, Queue, Schedule, ScheduleInfo,
    Unique,
};

use crate::support::*;

/// A time given as RFC 3339.
pub fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .expect("a valid time")
        .with_timezone(&Utc)
}

/// The queue of `t` with a manual clock showing `now`.
pub fn clocked(t: &crate::TestStore, now: &str) -> (Queue, ManualClock) {
    let clock = ManualClock::new(at(now));
    (t.queue.clone().with_clock(Arc::new(clock.clone())), clock)
}

/// Every job, oldest first.
pub async fn all_jobs(queue: &Queue) -> Vec<Job> {
    let mut jobs = queue
        .list_jobs(&JobFilter::default(), 10_000, 0)
        .await
        .expect("list jobs")
        .jobs;
    jobs.sort_by_key(|j| j.id);
    jobs
}

/// The tick notes of every job, oldest first.
pub async fn ticks(queue: &Queue) -> Vec<String> {
    all_jobs(queue)
        .await
        .iter()
        .map(|j| {
            j.notes
                .get("tick")
                .and_then(|t| t.as_str())
                .unwrap_or("-")
                .to_string()
        })
        .collect()
}

/// The stored schedule of this name.
pub async fn stored(queue: &Queue, name: &str) -> ScheduleInfo {
    queue
        .schedule(name)
        .await
        .expect("read the schedule")
        .expect("the schedule exists")
}

/// One scheduler pass at `now`; returns how many ticks it fired (with or without a job).
pub async fn pass_at(queue: &Queue, clock: &ManualClock, now: &str) -> usize {
    clock.set(at(now));
    let pass = queue.run_schedules().await.expect("a scheduler pass");
    assert!(pass.failed.is_empty(), "{:?}", pass.failed);
    pass.fired.len()
}

behaviours! {
    async fn a_schedule_is_added_listed_shown_and_removed(t) {
        let (queue, _clock) = clocked(t, "2026-05-01T10:00:30Z");
        let added = queue
            .add_schedule(
                Schedule::new("report", "0 */6 * * *", "report.build")
                    .timezone("Europe/Berlin")
                    .args(json!({"kind": "summary"}))
                    .options(EnqueueOptions::new().queue("reports").priority(3).attempts(2)),
            )
            .await
            .unwrap();
        assert_eq!(added.name, "report");
        assert_eq!(added.cron, "0 */6 * * *");
        assert_eq!(added.timezone, "Europe/Berlin");
        assert_eq!(added.task, "report.build");
        assert_eq!(added.args, json!({"kind": "summary"}));
        assert_eq!((added.queue.as_deref(), added.priority, added.attempts), (Some("reports"), Some(3), Some(2)));
        assert_eq!((added.catch_up, added.paused), (CatchUp::Last, false));
        // 12:00 in Berlin (CEST, UTC+2) is the first tick after 12:00:30 local.
        assert_eq!(added.next_run, Some(at("2026-05-01T16:00:00Z")));
        assert_eq!((added.last_run, added.last_job_id), (None, None));
        assert_eq!(added.created, at("2026-05-01T10:00:30Z"));
        assert_eq!(
            added.upcoming(3).unwrap(),
            [at("2026-05-01T16:00:00Z"), at("2026-05-01T22:00:00Z"), at("2026-05-02T04:00:00Z")]
        );

        queue.add_schedule(Schedule::new("another", "@daily", "cleanup")).await.unwrap();
        let names: Vec<String> = queue.schedules().await.unwrap().into_iter().map(|s| s.name).collect();
        assert_eq!(names, ["another", "report"]);
        assert_eq!(stored(&queue, "report").await, added);

        queue.remove_schedule("report").await.unwrap();
        assert_eq!(queue.schedule("report").await.unwrap(), None);
        assert_eq!(queue.schedules().await.unwrap().len(), 1);
        let err = queue.remove_schedule("report").await.unwrap_err();
        assert!(matches!(err, Error::ScheduleNotFound(ref name) if name == "report"), "{err}");
        assert_eq!(job_count(&queue).await, 0);
    }

    async fn adding_a_schedule_again_updates_it_and_keeps_its_next_run_and_pause(t) {
        let (queue, clock) = clocked(t, "2026-05-01T10:00:30Z");
        queue.add_schedule(Schedule::new("sync", "*/5 * * * *", "sync.run")).await.unwrap();
        queue.pause_schedule("sync").await.unwrap();
        queue.resume_schedule("sync").await.unwrap();
        queue.pause_schedule("sync").await.unwrap();
        clock.set(at("2026-05-01T10:20:00Z"));
        let updated = queue
            .add_schedule(Schedule::new("sync", "*/5 * * * *", "sync.other").args(json!({"v": 2})))
            .await
            .unwrap();
        assert_eq!((updated.task.as_str(), &updated.args), ("sync.other", &json!({"v": 2})));
        assert!(updated.paused, "an update keeps the pause");
        assert_eq!(updated.created, at("2026-05-01T10:00:30Z"));
        assert_eq!(updated.updated, at("2026-05-01T10:20:00Z"));
        queue.resume_schedule("sync").await.unwrap();
        // Same expression: the next run stays; a new expression starts from now.
        clock.set(at("2026-05-01T10:21:00Z"));
        let same = queue.add_schedule(Schedule::new("sync", "*/5 * * * *", "sync.other")).await.unwrap();
        assert_eq!(same.next_run, Some(at("2026-05-01T10:25:00Z")));
        let changed = queue.add_schedule(Schedule::new("sync", "*/2 * * * *", "sync.other")).await.unwrap();
        assert_eq!(changed.next_run, Some(at("2026-05-01T10:22:00Z")));
        assert_eq!(queue.schedules().await.unwrap().len(), 1);
    }

    async fn an_invalid_expression_time_zone_or_option_is_refused_and_changes_nothing(t) {
        let (queue, _clock) = clocked(t, "2026-05-01T10:00:30Z");
        let before = queue.add_schedule(Schedule::new("nightly", "30 2 * * *", "report.build")).await.unwrap();
        let attempts = [
            Schedule::new("nightly", "61 2 * * *", "report.build"),
            Schedule::new("nightly", "30 2 * *", "report.build"),
            Schedule::new("nightly", "0 0 30 2 *", "report.build"),
            Schedule::new("nightly", "", "report.build"),
            Schedule::new("nightly", "30 2 * * *", "report.build").timezone("Mars/Olympus"),
            Schedule::new("nightly", "30 2 * * *", " "),
            Schedule::new("nightly", "30 2 * * *", "report.build").options(EnqueueOptions::new().queue("")),
            Schedule::new("nightly", "30 2 * * *", "report.build").options(EnqueueOptions::new().attempts(0)),
            Schedule::new("nightly", "30 2 * * *", "report.build").options(EnqueueOptions::new().delay(Duration::from_secs(5))),
            Schedule::new("nightly", "30 2 * * *", "report.build").options(EnqueueOptions::new().parent(1)),
            Schedule::new("nightly", "30 2 * * *", "report.build")
                .options(EnqueueOptions::new().unique(Unique::key("k").on_conflict(underling::OnConflict::Error))),
            Schedule::new("nightly", "30 2 * * *", "report.build").args(json!("a\u{0}b")),
            Schedule::new("night ly", "30 2 * * *", "report.build"),
            Schedule::new("", "30 2 * * *", "report.build"),
        ];
        let mut kinds = Vec::new();
        for schedule in attempts {
            let err = queue.add_schedule(schedule.clone()).await.expect_err(&format!("{schedule:?} is refused"));
            kinds.push(match err {
                Error::InvalidCron { .. } => "cron",
                Error::InvalidTimezone(_) => "timezone",
                Error::InvalidTask(_) => "task",
                Error::InvalidQueue(_) => "queue",
                Error::InvalidOption(_) => "option",
                Error::InvalidSchedule { .. } => "schedule",
                Error::InvalidArgs(_) => "args",
                Error::InvalidScheduleName(_) => "name",
                other => panic!("unexpected error {other:?}"),
            });
        }
        assert_eq!(
            kinds,
            ["cron", "cron", "cron", "cron", "timezone", "task", "queue", "option", "schedule", "schedule", "schedule", "args", "name", "name"]
        );
        let err = queue.add_schedule(Schedule::new("x", "30 2 * * *", "t").timezone("Mars/Olympus")).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown time zone \"Mars/Olympus\": give an IANA time zone name such as UTC, Europe/Berlin or America/New_York"
        );
        let err = queue.add_schedule(Schedule::new("x", "0 0 30 2 *", "t")).await.unwrap_err();
        assert!(err.to_string().starts_with("invalid cron expression \"0 0 30 2 *\": it never matches a date"), "{err}");
        assert_eq!(queue.schedules().await.unwrap(), [before]);
        assert_eq!(job_count(&queue).await, 0);
    }

    async fn a_due_tick_is_enqueued_once_with_the_schedules_options_notes_and_key(t) {
        let (queue, clock) = clocked(t, "2026-05-01T10:00:30Z");
        queue
            .add_schedule(
                Schedule::new("minutely", "* * * * *", "report.build")
                    .args(json!({"n": 1}))
                    .options(
                        EnqueueOptions::new()
                            .queue("reports")
                            .priority(4)
                            .attempts(3)
                            .timeout(Duration::from_secs(30))
                            .notes(json!({"owner": "ops"})),
                    ),
            )
            .await
            .unwrap();
        assert_eq!(pass_at(&queue, &clock, "2026-05-01T10:00:59Z").await, 0);
        assert_eq!(job_count(&queue).await, 0);
        assert_eq!(pass_at(&queue, &clock, "2026-05-01T10:01:00.200Z").await, 1);
        assert_eq!(pass_at(&queue, &clock, "2026-05-01T10:01:00.900Z").await, 0);
        let jobs = all_jobs(&queue).await;
        assert_eq!(jobs.len(), 1);
        let job = &jobs[0];
        assert_eq!((job.task.as_str(), &job.args, job.queue.as_str()), ("report.build", &json!({"n": 1}), "reports"));
        assert_eq!((job.priority, job.attempts), (4, 3));
        assert_eq!(job.timeout(), Some(Duration::from_secs(30)));
        assert_eq!(
            serde_json::Value::Object(job.notes.clone()),
            json!({"owner": "ops", "schedule": "minutely", "tick": "2026-05-01T10:01:00Z"})
        );
        assert_eq!(job.unique_key.as_deref(), Some("schedule:minutely:2026-05-01T10:01:00Z"));
        let s = stored(&queue, "minutely").await;
        assert_eq!(s.next_run, Some(at("2026-05-01T10:02:00Z")));
        assert_eq!((s.last_run, s.last_job_id), (Some(at("2026-05-01T10:01:00Z")), Some(job.id)));
        assert_eq!(pass_at(&queue, &clock, "2026-05-01T10:02:01Z").await, 1);
        assert_eq!(ticks(&queue).await, ["2026-05-01T10:01:00Z", "2026-05-01T10:02:00Z"]);
    }

    async fn each_tick_is_enqueued_once_by_concurrent_schedulers(t) {
        let (queue, clock) = clocked(t, "2026-05-01T10:00:00.500Z");
        queue.add_schedule(Schedule::new("every-second", "* * * * * *", "beat")).await.unwrap();
        queue.add_schedule(Schedule::new("every-two", "*/2 * * * * *", "beat")).await.unwrap();
        let schedulers: Vec<Queue> = (0..8).map(|_| queue.clone()).collect();
        let mut fired = 0;
        let mut lost = 0;
        for second in 1..=20 {
            clock.set(at("2026-05-01T10:00:00.500Z") + chrono::Duration::seconds(second));
            let passes = futures_util::future::join_all(schedulers.iter().map(|q| q.run_schedules())).await;
            for pass in passes {
                let pass = pass.expect("a scheduler pass");
                assert!(pass.failed.is_empty(), "{:?}", pass.failed);
                fired += pass.fired.len();
                lost += pass.lost;
            }
        }
        assert_eq!(fired, 30, "20 ticks of one, 10 of the other");
        assert!(lost <= 30 * 7, "{lost}");
        let jobs = all_jobs(&queue).await;
        assert_eq!(jobs.len(), 30);
        let mut keys: Vec<String> = jobs.iter().filter_map(|j| j.unique_key.clone()).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), 30, "every job is a different tick");
        assert_eq!(stored(&queue, "every-second").await.next_run, Some(at("2026-05-01T10:00:21Z")));
    }

    async fn catch_up_last_runs_the_last_missed_tick_once_after_downtime(t) {
        let (queue, clock) = clocked(t, "2026-05-01T09:30:00Z");
        queue.add_schedule(Schedule::new("hourly", "0 * * * *", "report.build")).await.unwrap();
        assert_eq!(pass_at(&queue, &clock, "2026-05-01T10:00:00Z").await, 1);
        // Every scheduler is down from 10:00 to 15:20: the ticks of 11:00 to 15:00 are missed.
        assert_eq!(pass_at(&queue, &clock, "2026-05-01T15:20:00Z").await, 1);
        assert_eq!(pass_at(&queue, &clock, "2026-05-01T15:20:01Z").await, 0);
        assert_eq!(ticks(&queue).await, ["2026-05-01T10:00:00Z", "2026-05-01T15:00:00Z"]);
        let s = stored(&queue, "hourly").await;
        assert_eq!(s.next_run, Some(at("2026-05-01T16:00:00Z")));
        assert_eq!(s.last_run, Some(at("2026-05-01T15:00:00Z")));
        assert_eq!(pass_at(&queue, &clock, "2026-05-01T16:00:00Z").await, 1);
        assert_eq!(job_count(&queue).await, 3);
    }

    async fn catch_up_skip_runs_no_missed_tick_after_downtime(t) {
        let (queue, clock) = clocked(t, "2026-05-01T09:30:00Z");
        queue
            .add_schedule(Schedule::new("hourly", "0 * * * *", "report.build").catch_up(CatchUp::Skip))
            .await
            .unwrap();
        assert_eq!(stored(&queue, "hourly").await.catch_up, CatchUp::Skip);
        // A tick found less than a minute late still runs.
        assert_eq!(pass_at(&queue, &clock, "2026-05-01T10:00:59Z").await, 1);
        // Down from 10:01 to 15:20: nothing is enqueued for 11:00 to 15:00, and the schedule
        // moves on to 16:00.
        assert_eq!(pass_at(&queue, &clock, "2026-05-01T15:20:00Z").await, 1);
        assert_eq!(ticks(&queue).await, ["2026-05-01T10:00:00Z"]);
        let s = stored(&queue, "hourly").await;
        assert_eq!(s.next_run, Some(at("2026-05-01T16:00:00Z")));
        assert_eq!(s.last_run, Some(at("2026-05-01T10:00:00Z")));
        assert_eq!(pass_at(&queue, &clock, "2026-05-01T16:00:00.300Z").await, 1);
        assert_eq!(ticks(&queue).await, ["2026-05-01T10:00:00Z", "2026-05-01T16:00:00Z"]);
    }

    async fn a_daily_schedule_in_new_york_crosses_both_changes_of_the_clocks(t) {
        // 02:30 every day in New York: on 8 March 2026 the clocks spring from 02:00 to 03:00
        // (02:30 does not happen: the tick runs at 03:00 EDT), on 1 November they fall back
        // from 02:00 to 01:00 (02:30 happens once, in EST).
        let (queue, clock) = clocked(t, "2026-03-06T00:00:00Z");
        queue
            .add_schedule(Schedule::new("nightly", "30 2 * * *", "report.build").timezone("America/New_York"))
            .await
            .unwrap();
        let mut now = at("2026-03-06T00:00:00Z");
        while now < at("2026-03-10T00:00:00Z") {
            now += chrono::Duration::minutes(10);
            pass_at(&queue, &clock, &now.to_rfc3339()).await;
        }
        assert_eq!(
            ticks(&queue).await,
            ["2026-03-06T07:30:00Z", "2026-03-07T07:30:00Z", "2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z"]
        );
        // Down from 10 March to 30 October: catch-up runs the last missed tick once.
        now = at("2026-10-30T00:00:00Z");
        pass_at(&queue, &clock, &now.to_rfc3339()).await;
        while now < at("2026-11-03T00:00:00Z") {
            now += chrono::Duration::minutes(10);
            pass_at(&queue, &clock, &now.to_rfc3339()).await;
        }
        assert_eq!(
            ticks(&queue).await[4..],
            ["2026-10-29T06:30:00Z", "2026-10-30T06:30:00Z", "2026-10-31T06:30:00Z", "2026-11-01T07:30:00Z", "2026-11-02T07:30:00Z"]
        );
        assert_eq!(job_count(&queue).await, 9);
    }

    async fn a_paused_schedule_enqueues_nothing_and_resumes_from_its_next_tick(t) {
        let (queue, clock) = clocked(t, "2026-05-01T09:30:00Z");
        queue.add_schedule(Schedule::new("hourly", "0 * * * *", "report.build")).await.unwrap();
        queue.pause_schedule("hourly").await.unwrap();
        let paused = stored(&queue, "hourly").await;
        assert_eq!((paused.paused, paused.next_run), (true, None));
        assert!(paused.upcoming(2).unwrap().is_empty());
        for now in ["2026-05-01T10:00:00Z", "2026-05-01T11:00:00Z", "2026-05-01T12:30:00Z"] {
            assert_eq!(pass_at(&queue, &clock, now).await, 0);
        }
        assert_eq!(job_count(&queue).await, 0);
        queue.resume_schedule("hourly").await.unwrap();
        let resumed = stored(&queue, "hourly").await;
        assert_eq!((resumed.paused, resumed.next_run), (false, Some(at("2026-05-01T13:00:00Z"))));
        assert_eq!(pass_at(&queue, &clock, "2026-05-01T12:59:59Z").await, 0);
        assert_eq!(pass_at(&queue, &clock, "2026-05-01T13:00:00Z").await, 1);
        assert_eq!(ticks(&queue).await, ["2026-05-01T13:00:00Z"]);
        for missing in ["pause_schedule", "resume_schedule"] {
            let err = match missing {
                "pause_schedule" => queue.pause_schedule("nope").await.unwrap_err(),
                _ => queue.resume_schedule("nope").await.unwrap_err(),
            };
            assert!(matches!(err, Error::ScheduleNotFound(_)), "{missing}: {err}");
        }
    }

    async fn run_now_enqueues_a_job_and_keeps_the_next_run(t) {
        let (queue, clock) = clocked(t, "2026-05-01T09:30:00Z");
        queue
            .add_schedule(Schedule::new("hourly", "0 * * * *", "report.build").args(json!({"a": 1})))
            .await
            .unwrap();
        queue.pause_schedule("hourly").await.unwrap();
        clock.set(at("2026-05-01T09:40:00Z"));
        let enqueued = queue.run_schedule_now("hourly").await.unwrap();
        assert!(!enqueued.duplicate);
        let job = job(&queue, enqueued.id).await;
        assert_eq!((job.task.as_str(), &job.args), ("report.build", &json!({"a": 1})));
        assert_eq!(serde_json::Value::Object(job.notes.clone()), json!({"schedule": "hourly", "run_now": true}));
        assert_eq!(job.unique_key, None);
        let s = stored(&queue, "hourly").await;
        assert_eq!((s.last_run, s.last_job_id, s.paused), (Some(at("2026-05-01T09:40:00Z")), Some(enqueued.id), true));
        queue.resume_schedule("hourly").await.unwrap();
        assert_eq!(stored(&queue, "hourly").await.next_run, Some(at("2026-05-01T10:00:00Z")));
        let again = queue.run_schedule_now("hourly").await.unwrap();
        assert_ne!(again.id, enqueued.id);
        assert_eq!(stored(&queue, "hourly").await.next_run, Some(at("2026-05-01T10:00:00Z")));
        let err = queue.run_schedule_now("nope").await.unwrap_err();
        assert!(matches!(err, Error::ScheduleNotFound(_)), "{err}");
        assert_eq!(job_count(&queue).await, 2);
    }

    async fn a_schedule_with_a_unique_key_of_its_own_enqueues_nothing_while_the_last_job_lives(t) {
        let (queue, clock) = clocked(t, "2026-05-01T09:59:00Z");
        queue
            .add_schedule(
                Schedule::new("sync", "* * * * *", "sync.run")
                    .options(EnqueueOptions::new().unique(Unique::key("sync"))),
            )
            .await
            .unwrap();
        assert_eq!(pass_at(&queue, &clock, "2026-05-01T10:00:00Z").await, 1);
        assert_eq!(pass_at(&queue, &clock, "2026-05-01T10:01:00Z").await, 1);
        let jobs = all_jobs(&queue).await;
        assert_eq!(jobs.len(), 1, "the second tick is a duplicate of the live job");
        assert_eq!(jobs[0].unique_key.as_deref(), Some("sync"));
        let s = stored(&queue, "sync").await;
        assert_eq!((s.last_job_id, s.next_run), (Some(jobs[0].id), Some(at("2026-05-01T10:02:00Z"))));
        queue.remove_job(jobs[0].id).await.unwrap();
        assert_eq!(pass_at(&queue, &clock, "2026-05-01T10:02:00Z").await, 1);
        assert_eq!(ticks(&queue).await, ["2026-05-01T10:02:00Z"]);
    }

    async fn removing_a_schedule_keeps_its_jobs_and_stops_its_ticks(t) {
        let (queue, clock) = clocked(t, "2026-05-01T09:59:00Z");
        queue.add_schedule(Schedule::new("minutely", "* * * * *", "report.build")).await.unwrap();
        assert_eq!(pass_at(&queue, &clock, "2026-05-01T10:00:00Z").await, 1);
        queue.remove_schedule("minutely").await.unwrap();
        assert_eq!(pass_at(&queue, &clock, "2026-05-01T10:05:00Z").await, 0);
        assert_eq!(ticks(&queue).await, ["2026-05-01T10:00:00Z"]);
    }
}
