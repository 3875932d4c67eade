//! `underling queue …`, `worker …`, `lock …`, `stats` and `history`, end to end on both
//! backends.

use std::time::Duration;

use chrono::Utc;
use serde_json::json;
use underling::{Command, EnqueueOptions};

use crate::*;

on_both! {
    // -- queues ---------------------------------------------------------------------------------

    async fn queue_list_shows_job_counts_and_the_paused_flag(db: migrated) {
        db.enqueue_many(2, "mail", "t").await;
        db.failed(1, "mail", "t").await;
        db.finished(3, "reports", "t").await;
        let active = db.enqueue_many(1, "reports", "t").await;
        db.activate(&active).await;
        db.queue().pause_queue("mail").await.expect("pause");

        let table = rows(&db.ok(&["queue", "list"]));
        assert_eq!(table[0], ["NAME", "PAUSED", "FIFO", "INACTIVE", "ACTIVE", "FAILED", "FINISHED"]);
        assert_eq!(table[1], ["mail", "yes", "no", "2", "0", "1", "0"]);
        assert_eq!(table[2], ["reports", "no", "no", "0", "1", "0", "3"]);

        let queues = db.json(&["queue", "list"]);
        assert_eq!(
            queues[0],
            json!({"name": "mail", "paused": true, "fifo": false, "inactive": 2, "active": 0, "failed": 1, "finished": 0})
        );
    }

    async fn queue_fifo_turns_strict_order_on_and_off_and_the_list_shows_it(db: migrated) {
        assert_eq!(
            db.ok(&["queue", "fifo", "ledger", "on"]),
            "queue ledger is FIFO: one job at a time, in claim order\n"
        );
        let table = rows(&db.ok(&["queue", "list"]));
        assert_eq!(table[1], ["ledger", "no", "yes", "0", "0", "0", "0"]);
        assert_eq!(
            db.json(&["queue", "fifo", "ledger", "off"]),
            json!({"queue": "ledger", "fifo": false})
        );
        assert!(!db.queue().queues().await.expect("queues")[0].fifo);
        let refused = db.run(&["queue", "fifo", "ledger", "maybe"]).usage_error();
        assert!(refused.contains("invalid value 'maybe'"), "{refused}");
        assert!(!db.queue().queues().await.expect("queues")[0].fifo);
    }

    async fn queue_pause_and_resume_set_the_flag(db: migrated) {
        assert_eq!(db.ok(&["queue", "pause", "mail"]), "paused queue mail\n");
        let queues = db.queue().queues().await.expect("queues");
        assert_eq!((queues[0].name.as_str(), queues[0].paused), ("mail", true));
        assert_eq!(db.ok(&["queue", "resume", "mail"]), "resumed queue mail\n");
        assert!(!db.queue().queues().await.expect("queues")[0].paused);
        assert_eq!(
            db.json(&["queue", "pause", "mail"]),
            json!({"queue": "mail", "paused": true})
        );
        assert_eq!(
            db.json(&["queue", "resume", "mail"]),
            json!({"queue": "mail", "paused": false})
        );
    }

    // -- limits ---------------------------------------------------------------------------------

    async fn limit_set_list_and_remove_manage_limits(db: migrated) {
        assert_eq!(db.ok(&["limit", "list"]), "no limits\n");
        assert_eq!(
            db.ok(&["limit", "set", "--queue", "mail", "--concurrency", "3"]),
            "set limit on queue mail: concurrency 3\n"
        );
        assert_eq!(
            db.ok(&["limit", "set", "--task", "image.resize", "--rate", "100/1m"]),
            "set limit on task image.resize: rate 100/1m\n"
        );
        assert_eq!(
            db.ok(&["limit", "set", "--key-from", "args.tenant", "--concurrency", "2", "--rate", "5/s"]),
            "set limit on args.tenant: concurrency 2, rate 5/1s\n"
        );
        let lines: Vec<String> = db
            .ok(&["limit", "list"])
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        assert_eq!(
            lines,
            [
                "SCOPE CONCURRENCY RATE",
                "args.tenant 2 5/1s",
                "queue mail 3 -",
                "task image.resize - 100/1m",
            ]
        );
        assert_eq!(
            db.json(&["limit", "list"])[1],
            json!({"scope": {"kind": "queue", "name": "mail"}, "concurrency": 3, "rate": null})
        );
        assert_eq!(db.ok(&["limit", "remove", "--queue", "mail"]), "removed the limit on queue mail\n");
        assert_eq!(
            db.json(&["limit", "remove", "--key-from", "args.tenant"]),
            json!({"scope": {"kind": "args", "name": "tenant"}, "removed": true})
        );
        assert_eq!(db.queue().limits().await.expect("limits").len(), 1);
    }

    async fn limit_errors_say_what_was_wrong_and_change_nothing(db: migrated) {
        assert_eq!(
            db.run(&["limit", "set", "--queue", "mail", "--concurrency", "0"]).error(),
            "invalid limit: queue mail: concurrency must be at least 1 (to stop a queue, pause it)"
        );
        assert_eq!(
            db.run(&["limit", "set", "--queue", "mail"]).error(),
            "invalid limit: queue mail: give a concurrency, a rate or both"
        );
        assert_eq!(
            db.run(&["limit", "set", "--key-from", "tenant", "--concurrency", "1"]).error(),
            "invalid limit: key \"tenant\" must start with args. or notes., like args.tenant"
        );
        assert_eq!(
            db.run(&["limit", "remove", "--task", "nope"]).error(),
            "there is no limit on task nope (`underling limit list` shows them)"
        );
        let usage = db.run(&["limit", "set", "--queue", "q", "--rate", "lots"]).usage_error();
        assert!(
            usage.contains("rate \"lots\": no /; write COUNT/PERIOD, like 100/1m, 5/s or 1000/1h"),
            "{usage}"
        );
        let usage = db
            .run(&["limit", "set", "--queue", "q", "--task", "t", "--concurrency", "1"])
            .usage_error();
        assert!(usage.contains("cannot be used with"), "{usage}");
        assert_eq!(db.queue().limits().await.expect("limits"), vec![]);
    }

    // -- workers --------------------------------------------------------------------------------

    async fn worker_list_shows_host_pid_times_jobs_and_queues(db: migrated) {
        let w = db.register_worker("box1", 1234, json!({"queues": ["default", "mail"]})).await;
        let jobs = db.enqueue_many(2, "default", "t").await;
        db.activate_by(w, &jobs).await;
        let idle = db.register_worker("box2", 99, json!({})).await;

        let table = rows(&db.ok(&["worker", "list"]));
        assert_eq!(
            table[0],
            ["ID", "HOST:PID", "STARTED", "LAST", "HEARTBEAT", "JOBS", "QUEUES"]
        );
        assert_eq!(table[1][0], w.to_string());
        assert_eq!(table[1][1], "box1:1234");
        // Relative times in tables (`now`, or `1s ago` on a slow machine).
        assert!(matches!(table[1][2].as_str(), "now" | "1s" | "2s"), "{table:?}");
        let rest: Vec<&str> = table[1].iter().rev().take(2).rev().map(String::as_str).collect();
        assert_eq!(rest, ["2", "default,mail"]);
        assert_eq!(table[2][0], idle.to_string());
        let rest: Vec<&str> = table[2].iter().rev().take(2).rev().map(String::as_str).collect();
        assert_eq!(rest, ["0", "-"]);
        // JOBS is a count here and in `worker show`, which lists the ids after it.
        let out = db.ok(&["worker", "show", &w.to_string()]);
        assert_eq!(field(&out, "jobs"), format!("2 ({}, {})", jobs[0], jobs[1]));

        let workers = db.json(&["worker", "list"]);
        assert_keys(&workers[0], &["id", "host", "pid", "started", "last_heartbeat", "status", "jobs"]);
        assert_eq!(workers[0]["jobs"], json!(jobs));
    }

    async fn worker_show_prints_one_worker(db: migrated) {
        let w = db.register_worker("box1", 1234, json!({"queues": ["default"], "concurrency": 4})).await;
        let out = db.ok(&["worker", "show", &w.to_string()]);
        assert_eq!(field(&out, "id"), w.to_string());
        assert_eq!(field(&out, "host"), "box1");
        assert_eq!(field(&out, "pid"), "1234");
        rfc3339(field(&out, "started"));
        rfc3339(field(&out, "last heartbeat"));
        assert_eq!(field(&out, "jobs"), "0");
        assert_eq!(field(&out, "queues"), "default");
        assert!(field(&out, "status").contains(r#""concurrency":4"#), "{out}");
        let json = db.json(&["worker", "show", &w.to_string()]);
        assert_eq!(json["host"], "box1");
        assert_eq!(json["status"]["concurrency"], 4);
    }

    async fn worker_show_fails_for_an_unknown_id(db: migrated) {
        assert_eq!(db.run(&["worker", "show", "99"]).error(), "worker 99 not found");
    }

    async fn worker_command_broadcasts_to_all_or_the_given_workers(db: migrated) {
        let w1 = db.register_worker("box1", 1, json!({})).await;
        let w2 = db.register_worker("box2", 2, json!({})).await;
        let db = &db;
        let inbox = |id: i64| async move { db.store().receive(id).await.expect("receive") };

        assert_eq!(
            db.ok(&["worker", "command", "jobs", "--args", "[5]"]),
            "sent jobs to 2 workers\n"
        );
        let expected = vec![Command { command: "jobs".into(), args: json!([5]) }];
        assert_eq!(inbox(w1).await, expected);
        assert_eq!(inbox(w2).await, expected);

        assert_eq!(
            db.json(&["worker", "command", "stop", "--args", "[42]", &w1.to_string()]),
            json!({"command": "stop", "sent": 1})
        );
        assert_eq!(inbox(w1).await, vec![Command { command: "stop".into(), args: json!([42]) }]);
        assert_eq!(inbox(w2).await, vec![]);
    }

    async fn worker_command_with_an_unknown_name_fails_and_sends_nothing(db: migrated) {
        let w1 = db.register_worker("box1", 1, json!({})).await;
        let message = db.run(&["worker", "command", "stopp", &w1.to_string()]).error();
        assert_eq!(
            message,
            "invalid remote command: unknown command \"stopp\": expected one of stop, kill, jobs, pause, resume"
        );
        let message = db.run(&["worker", "command", "stop", &w1.to_string()]).error();
        assert_eq!(
            message,
            "invalid remote command: stop needs a job id as its argument, e.g. [42], got []"
        );
        assert_eq!(db.store().receive(w1).await.expect("receive"), vec![]);
    }

    async fn job_stop_and_kill_reach_the_worker_running_the_job(db: migrated) {
        let w1 = db.register_worker("box1", 1, json!({})).await;
        let w2 = db.register_worker("box2", 2, json!({})).await;
        let id = db.enqueue("t", EnqueueOptions::new()).await;
        db.activate_by(w2, &[id]).await;
        assert_eq!(
            db.ok(&["job", "stop", &id.to_string()]),
            format!("sent stop for job {id} to worker {w2}\n")
        );
        assert_eq!(
            db.json(&["job", "kill", &id.to_string()]),
            json!({"job": id, "worker": w2, "command": "kill"})
        );
        assert_eq!(db.store().receive(w1).await.expect("receive"), vec![]);
        assert_eq!(
            db.store().receive(w2).await.expect("receive"),
            vec![
                Command { command: "stop".into(), args: json!([id]) },
                Command { command: "kill".into(), args: json!([id]) },
            ]
        );
        let other = db.enqueue("t", EnqueueOptions::new()).await;
        assert_eq!(
            db.run(&["job", "stop", &other.to_string()]).error(),
            format!("job {other} is not running (it is inactive): only an active job can be stopped or killed")
        );
    }

    async fn worker_command_to_an_unknown_worker_fails_and_sends_nothing(db: migrated) {
        let w1 = db.register_worker("box1", 1, json!({})).await;
        let message = db.run(&["worker", "command", "stop", "--args", "[1]", &w1.to_string(), "999"]).error();
        assert_eq!(message, "worker 999 not found");
        assert_eq!(db.store().receive(w1).await.expect("receive"), vec![]);
    }

    async fn worker_command_rejects_malformed_args_json_naming_the_flag(db: migrated) {
        db.register_worker("box1", 1, json!({})).await;
        let message = db.run(&["worker", "command", "jobs", "--args", "{x"]).error();
        assert_eq!(message, "--args is not valid JSON: key must be a string at line 1 column 2");
    }

    // -- locks ----------------------------------------------------------------------------------

    async fn lock_list_shows_live_holds_of_all_or_the_given_names(db: migrated) {
        let hour = Duration::from_secs(3600);
        assert!(db.queue().lock("a", hour, 2).await.expect("lock"));
        assert!(db.queue().lock("a", hour, 2).await.expect("lock"));
        assert!(db.queue().lock("b", hour, 1).await.expect("lock"));

        let table = rows(&db.ok(&["lock", "list"]));
        assert_eq!(table[0], ["ID", "NAME", "EXPIRES"]);
        let names: Vec<&str> = table[1..].iter().map(|r| r[1].as_str()).collect();
        assert_eq!(names, ["a", "a", "b"]);
        let expires = rfc3339(&table[1][2]);
        assert!(expires > Utc::now() + chrono::Duration::minutes(55));

        let only_b = db.json(&["lock", "list", "b"]);
        assert_eq!(only_b.as_array().map(Vec::len), Some(1));
        assert_keys(&only_b[0], &["id", "name", "expires"]);
        assert_eq!(only_b[0]["name"], "b");
        assert_eq!(db.json(&["lock", "list", "nope"]), json!([]));
    }

    async fn lock_release_says_whether_a_hold_was_released(db: migrated) {
        assert!(db.queue().lock("a", Duration::from_secs(60), 1).await.expect("lock"));
        assert_eq!(db.ok(&["lock", "release", "a"]), "released a hold on lock a\n");
        assert_eq!(db.ok(&["lock", "release", "a"]), "lock a was not held: nothing released\n");
        assert!(db.queue().lock("a", Duration::from_secs(60), 1).await.expect("lock"));
        assert_eq!(
            db.json(&["lock", "release", "a"]),
            json!({"name": "a", "released": true})
        );
        assert_eq!(
            db.json(&["lock", "release", "a"]),
            json!({"name": "a", "released": false})
        );
    }

    // -- stats and history ----------------------------------------------------------------------

    // -- repair ---------------------------------------------------------------------------------

    async fn repair_of_a_healthy_store_reports_nothing(db: migrated) {
        db.finished(1, "default", "t").await;
        db.enqueue_many(1, "default", "t").await;
        let run = db.run(&["repair"]);
        assert_eq!(run.stderr, "");
        assert_eq!(
            run.ok(),
            "missing workers: 0\nabandoned jobs:  0\nremoved jobs:    0\nexpired jobs:    0\nstuck jobs:      0\ntimed out jobs:  0\n"
        );
        assert_eq!(db.job_count().await, 2);
    }

    async fn repair_removes_old_and_expired_jobs_in_batches_with_json_progress(db: migrated) {
        db.finished(5, "default", "t").await;
        for _ in 0..2 {
            db.enqueue("t", EnqueueOptions::new().expire(Duration::from_millis(1))).await;
        }
        let kept = db.enqueue("t", EnqueueOptions::new()).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        let run = db.run(&["repair", "--remove-after", "0s", "--batch", "2", "--json"]);
        let stderr = run.stderr.clone();
        assert_eq!(
            run.json(),
            json!({"missing_workers": 0, "abandoned_jobs": 0, "removed_jobs": 5, "expired_jobs": 2, "stuck_jobs": 0, "timed_out_jobs": 0})
        );
        let lines: Vec<serde_json::Value> = stderr
            .lines()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line:?}")))
            .collect();
        let counts: Vec<(u64, u64)> = lines
            .iter()
            .map(|l| (l["removed_jobs"].as_u64().unwrap(), l["expired_jobs"].as_u64().unwrap()))
            .collect();
        assert_eq!(counts, vec![(2, 0), (4, 0), (5, 0), (5, 2)], "{stderr}");
        for line in &lines {
            assert!(line["elapsed_ms"].is_u64(), "{line}");
            assert_eq!(line.as_object().unwrap().len(), 3, "{line}");
        }
        assert_eq!(db.job_count().await, 1);
        assert_eq!(db.job(kept).await.state, underling::JobState::Inactive);
    }

    async fn repair_prints_plain_progress_lines_past_the_first_batch(db: migrated) {
        db.finished(5, "default", "t").await;
        let run = db.run(&["repair", "--remove-after", "0s", "--batch", "2"]);
        let stderr = run.stderr.clone();
        assert_eq!(field(&run.ok(), "removed jobs"), "5");
        // The first batch (2) says nothing; the next one is printed, the last at the end.
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.first(), Some(&"removed 4 old and 0 expired jobs"), "{stderr}");
        assert_eq!(lines.last(), Some(&"removed 5 old and 0 expired jobs"), "{stderr}");
    }

    async fn repair_batch_must_be_positive(db: migrated) {
        let stderr = db.run(&["repair", "--batch", "0"]).usage_error();
        assert!(stderr.contains("--batch"), "{stderr}");
    }

    async fn stats_shows_job_worker_and_lock_counts(db: migrated) {
        db.enqueue_many(2, "default", "t").await;
        db.finished(3, "default", "t").await;
        db.failed(1, "default", "t").await;
        db.enqueue("later", EnqueueOptions::new().delay(Duration::from_secs(3600))).await;
        assert!(db.queue().lock("l", Duration::from_secs(60), 1).await.expect("lock"));

        let out = db.ok(&["stats"]);
        assert_eq!(field(&out, "inactive jobs"), "3");
        assert_eq!(field(&out, "delayed jobs"), "1");
        assert_eq!(field(&out, "finished jobs"), "3");
        assert_eq!(field(&out, "failed jobs"), "1");
        assert_eq!(field(&out, "active jobs"), "0");
        assert_eq!(field(&out, "enqueued jobs"), "7");
        assert_eq!(field(&out, "active locks"), "1");
        field(&out, "active workers");
        field(&out, "inactive workers");
        field(&out, "uptime");

        let stats = db.json(&["stats"]);
        assert_keys(&stats, &[
            "inactive_jobs", "active_jobs", "finished_jobs", "failed_jobs", "delayed_jobs",
            "active_workers", "inactive_workers", "active_locks", "enqueued_jobs", "uptime",
        ]);
        assert_eq!(stats["finished_jobs"], 3);
    }

    async fn history_shows_the_last_24_hours(db: migrated) {
        db.finished(2, "default", "t").await;
        db.failed(1, "default", "t").await;
        // Fails once, is retried, then finishes: a failed attempt, not a failed job.
        let retried = db.enqueue("t", EnqueueOptions::new().attempts(2)).await;
        let again = underling::Outcome::Failed { error: json!("x"), retry_delay: Duration::ZERO };
        db.settle(&[retried], again).await;
        db.settle(&[retried], underling::Outcome::Finished(json!(null))).await;
        let points = db.json(&["history"]);
        let points = points.as_array().expect("an array");
        assert_eq!(points.len(), 24);
        assert_keys(&points[0], &["hour", "finished", "failed", "failed_attempts"]);
        let sum = |key: &str| points.iter().map(|p| p[key].as_u64().expect("count")).sum::<u64>();
        assert_eq!((sum("finished"), sum("failed"), sum("failed_attempts")), (3, 1, 2));

        let table = rows(&db.ok(&["history"]));
        assert_eq!(table[0], ["HOUR", "FINISHED", "FAILED", "FAILED", "ATTEMPTS"]);
        assert_eq!(table.len(), 25);
        rfc3339(&table[1][0]);
        assert_eq!(table[24][1..], ["3", "1", "2"]);
    }


    async fn empty_lists_say_so(db: migrated) {
        assert_eq!(db.ok(&["queue", "list"]), "no queues\n");
        assert_eq!(db.ok(&["worker", "list"]), "no workers\n");
        assert_eq!(db.ok(&["lock", "list"]), "no locks\n");
        assert_eq!(db.json(&["worker", "list"]), json!([]));
    }

    async fn lock_acquire_takes_a_hold_unless_the_limit_is_reached(db: migrated) {
        assert_eq!(
            db.ok(&["lock", "acquire", "nightly", "--duration", "1h"]),
            "took a hold on lock nightly for 1h\n"
        );
        assert_eq!(
            db.run(&["lock", "acquire", "nightly", "--duration", "1h"]).error(),
            "lock nightly is taken: 1 live hold(s) already"
        );
        assert_eq!(
            db.json(&["lock", "acquire", "nightly", "--duration", "1h", "--limit", "2"]),
            json!({"name": "nightly", "acquired": true})
        );
        assert_eq!(db.queue().locks(&["nightly".to_string()]).await.expect("locks").len(), 2);
        let stderr = db.run(&["lock", "acquire", "nightly", "--duration", "1h", "--limit", "0"]).usage_error();
        assert!(stderr.contains("--limit"), "{stderr}");
    }
}
