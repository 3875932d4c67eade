//! End-to-end tests of the `underling` admin CLI: each runs the built binary against a fresh
//! SQLite file and against PostgreSQL in a fresh schema, and checks its output and exit code.

mod support;

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use support::{TempDir, run_in};
use underling::{Command, EnqueueOptions, JobState};

/// The ids of the jobs in `job list --json` output, in order.
fn listed_ids(list: &Value) -> Vec<i64> {
    list["jobs"]
        .as_array()
        .expect("jobs array")
        .iter()
        .map(|j| j["id"].as_i64().expect("job id"))
        .collect()
}

/// The value of a `name: value` line.
fn field<'a>(text: &'a str, name: &str) -> &'a str {
    let prefix = format!("{name}:");
    text.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {name:?} line in:\n{text}"))
        .trim()
}

/// Parses an RFC 3339 timestamp.
fn rfc3339(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("{text:?} is not RFC 3339: {e}"))
        .with_timezone(&Utc)
}

/// The words of each table row (header first).
fn rows(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .map(|line| line.split_whitespace().map(str::to_string).collect())
        .collect()
}

/// Asserts that a JSON object has these keys.
fn assert_keys(value: &Value, keys: &[&str]) {
    for key in keys {
        assert!(value.get(key).is_some(), "missing {key:?} in {value}");
    }
}

const JOB_FIELDS: &[&str] = &[
    "id",
    "task",
    "queue",
    "args",
    "state",
    "priority",
    "attempts",
    "retries",
    "created",
    "delayed",
    "started",
    "finished",
    "retried",
    "expires",
    "lax",
    "worker_id",
    "result",
    "notes",
    "parents",
    "children",
];

on_both! {
    // -- migrate ---------------------------------------------------------------------------------

    async fn migrate_applies_pending_migrations_and_says_which(db: unmigrated) {
        let first = db.ok(&["migrate"]);
        assert!(first.starts_with("applied migration "), "{first}");
        assert!(first.contains(" init\n"), "{first}");
        assert_eq!(
            db.ok(&["migrate"]),
            "the database is up to date: no migrations to apply\n"
        );
        assert!(!db.ok(&["stats", "--json"]).is_empty());
    }

    async fn migrate_json_lists_the_applied_migrations(db: unmigrated) {
        let applied = db.json(&["migrate"]);
        let applied = applied.as_array().expect("an array");
        assert!(!applied.is_empty());
        assert_keys(&applied[0], &["version", "description"]);
        assert_eq!(db.json(&["migrate"]), json!([]));
    }

    async fn commands_on_an_unmigrated_database_say_so(db: unmigrated) {
        let message = db.run(&["job", "list"]).error();
        match db.kind {
            support::Kind::Sqlite => {
                // Nothing is created: the file is missing, which says more than "not migrated".
                let path = db.dir.path().join("jobs.db");
                assert_eq!(
                    message,
                    format!(
                        "the database file {} does not exist \
                         (run `underling migrate` or call Queue::migrate() to create it)",
                        path.display()
                    )
                );
                assert!(!path.exists());
            }
            support::Kind::Postgres => assert_eq!(
                message,
                "the database is not migrated: no underling tables were found \
                 (run `underling migrate` or call Queue::migrate())"
            ),
        }
    }

    // -- job enqueue ----------------------------------------------------------------------------

    async fn enqueue_prints_the_new_id_alone(db: migrated) {
        let out = db.ok(&["job", "enqueue", "mail.send"]);
        let id: i64 = out.trim_end().parse().unwrap_or_else(|_| panic!("not an id: {out:?}"));
        assert_eq!(out, format!("{id}\n"));
        let job = db.job(id).await;
        assert_eq!(job.task, "mail.send");
        assert_eq!(job.queue, "default");
        assert_eq!(job.args, json!({}));
        assert_eq!(job.state, JobState::Inactive);
        assert_eq!(job.attempts, 1);
    }

    async fn enqueue_applies_every_option(db: migrated) {
        let p1 = db.enqueue("parent", EnqueueOptions::new()).await;
        let p2 = db.enqueue("parent", EnqueueOptions::new()).await;
        let (p1s, p2s) = (p1.to_string(), p2.to_string());
        let out = db.ok(&[
            "job", "enqueue", "report.build",
            "--args", r#"{"month": 11}"#,
            "--queue", "reports",
            "--priority", "-3",
            "--delay", "5m",
            "--attempts", "3",
            "--parent", &p1s,
            "--parent", &p2s,
            "--lax",
            "--expire", "1d",
            "--notes", r#"{"owner": "ops"}"#,
        ]);
        let job = db.job(out.trim().parse().expect("an id")).await;
        assert_eq!(job.task, "report.build");
        assert_eq!(job.args, json!({"month": 11}));
        assert_eq!(job.queue, "reports");
        assert_eq!(job.priority, -3);
        assert_eq!(job.attempts, 3);
        assert_eq!(job.parents, vec![p1, p2]);
        assert!(job.lax);
        assert_eq!(job.notes.get("owner"), Some(&json!("ops")));
        let delay = (job.delayed - job.created).num_seconds();
        assert!((295..=305).contains(&delay), "delayed by {delay}s");
        let expires = job.expires.expect("an expiry");
        let expiry = (expires - job.created).num_seconds();
        assert!((86_395..=86_405).contains(&expiry), "expires after {expiry}s");
    }

    async fn enqueue_json_prints_the_job(db: migrated) {
        let job = db.json(&["job", "enqueue", "mail.send", "--args", r#"{"to": "a@b"}"#]);
        assert_keys(&job, JOB_FIELDS);
        assert_eq!(job["task"], "mail.send");
        assert_eq!(job["args"], json!({"to": "a@b"}));
        assert_eq!(job["state"], "inactive");
        let id = job["id"].as_i64().expect("id");
        assert_eq!(db.job(id).await.task, "mail.send");
    }

    async fn enqueue_rejects_malformed_args_json_naming_the_flag(db: migrated) {
        let message = db.run(&["job", "enqueue", "t", "--args", "[x"]).error();
        assert_eq!(message, "--args is not valid JSON: expected value at line 1 column 2");
        assert_eq!(db.job_count().await, 0);
    }

    async fn enqueue_rejects_malformed_notes_json_naming_the_flag(db: migrated) {
        let message = db.run(&["job", "enqueue", "t", "--notes", "{"]).error();
        assert!(message.starts_with("--notes is not valid JSON: "), "{message}");
        let message = db.run(&["job", "enqueue", "t", "--notes", "[1]"]).error();
        assert_eq!(message, "invalid notes: notes must be a JSON object, got an array");
        assert_eq!(db.job_count().await, 0);
    }

    async fn enqueue_rejects_negative_attempts(db: migrated) {
        let message = db.run(&["job", "enqueue", "t", "--attempts", "-1"]).error();
        assert_eq!(message, "invalid option: attempts must be at least 1, got -1");
        assert_eq!(db.job_count().await, 0);
    }

    async fn enqueue_rejects_a_parent_that_does_not_exist(db: migrated) {
        let message = db.run(&["job", "enqueue", "t", "--parent", "99"]).error();
        assert_eq!(message, "parent job 99 does not exist");
        assert_eq!(db.job_count().await, 0);
    }

    async fn enqueue_rejects_a_malformed_duration_as_a_usage_error(db: migrated) {
        let stderr = db.run(&["job", "enqueue", "t", "--delay", "soon"]).usage_error();
        assert!(stderr.contains("--delay"), "{stderr}");
        assert!(stderr.contains("like 90s, 5m, 2h or 1d"), "{stderr}");
        assert_eq!(db.job_count().await, 0);
    }

    async fn enqueue_rejects_durations_beyond_1000_years(db: migrated) {
        let stderr = db.run(&["job", "enqueue", "t", "--expire", "5000y"]).usage_error();
        assert!(stderr.contains("durations longer than 1000 years are not supported"), "{stderr}");
        assert_eq!(db.job_count().await, 0);
    }

    // -- job list -------------------------------------------------------------------------------

    async fn job_list_shows_newest_first_with_the_total(db: migrated) {
        let ids = db.enqueue_many(3, "default", "t").await;
        let out = db.ok(&["job", "list"]);
        let table = rows(&out);
        assert_eq!(
            table[0],
            ["ID", "STATE", "QUEUE", "TASK", "PRIORITY", "ATTEMPTS", "CREATED"]
        );
        let listed: Vec<i64> = table[1..4].iter().map(|r| r[0].parse().expect("id")).collect();
        assert_eq!(listed, [ids[2], ids[1], ids[0]]);
        assert_eq!(&table[1][1..6], ["inactive", "default", "t", "0", "1"]);
        rfc3339(&table[1][6]);
        assert_eq!(out.lines().last(), Some("total: 3 jobs"));
    }

    async fn job_list_filters_by_state_queue_task_and_note(db: migrated) {
        let a = db.enqueue("t1", EnqueueOptions::new().queue("q1").notes(json!({"tag": 1}))).await;
        let b = db.enqueue("t1", EnqueueOptions::new().queue("q2")).await;
        let c = db.enqueue("t2", EnqueueOptions::new().queue("q1")).await;
        let done = db.finished(1, "q3", "t3").await[0];

        let ids = |args: &[&str]| {
            let mut all = vec!["job", "list"];
            all.extend_from_slice(args);
            listed_ids(&db.json(&all))
        };
        assert_eq!(ids(&["--state", "finished"]), [done]);
        assert_eq!(ids(&["--state", "inactive"]), [c, b, a]);
        assert_eq!(ids(&["--state", "inactive", "--state", "finished"]), [done, c, b, a]);
        assert_eq!(ids(&["--queue", "q1"]), [c, a]);
        assert_eq!(ids(&["--queue", "q2", "--queue", "q3"]), [done, b]);
        assert_eq!(ids(&["--task", "t1"]), [b, a]);
        assert_eq!(ids(&["--task", "t1", "--queue", "q1"]), [a]);
        assert_eq!(ids(&["--note", "tag"]), [a]);
        assert_eq!(ids(&["--queue", "nowhere"]), Vec::<i64>::new());
    }

    async fn job_list_pages_with_limit_and_offset(db: migrated) {
        let ids = db.enqueue_many(5, "default", "t").await;
        let page = db.json(&["job", "list", "--limit", "2", "--offset", "1"]);
        assert_eq!(listed_ids(&page), [ids[3], ids[2]]);
        assert_eq!(page["total"], 5);
        let out = db.ok(&["job", "list", "--limit", "2", "--offset", "1"]);
        assert_eq!(out.lines().last(), Some("total: 5 jobs (showing 2-3)"));
        assert_eq!(out.lines().count(), 4, "{out}");
        let default_page = db.json(&["job", "list"]);
        assert_eq!(listed_ids(&default_page).len(), 5);
        let past_the_end = db.json(&["job", "list", "--offset", "10"]);
        assert_eq!(listed_ids(&past_the_end), Vec::<i64>::new());
        assert_eq!(past_the_end["total"], 5);
    }

    async fn job_list_shows_twenty_jobs_by_default(db: migrated) {
        db.enqueue_many(25, "default", "t").await;
        let out = db.ok(&["job", "list"]);
        assert_eq!(out.lines().count(), 22, "{out}");
        assert_eq!(out.lines().last(), Some("total: 25 jobs (showing 1-20)"));
    }

    async fn job_list_json_has_jobs_and_total(db: migrated) {
        db.enqueue_many(2, "default", "t").await;
        let list = db.json(&["job", "list"]);
        assert_keys(&list, &["jobs", "total"]);
        assert_eq!(list["total"], 2);
        assert_keys(&list["jobs"][0], JOB_FIELDS);
    }

    async fn job_list_rejects_an_unknown_state_listing_the_valid_ones(db: migrated) {
        let stderr = db.run(&["job", "list", "--state", "bogus"]).usage_error();
        assert!(
            stderr.contains(
                r#"unknown job state "bogus": expected one of inactive, active, finished, failed"#
            ),
            "{stderr}"
        );
    }

    // -- job show -------------------------------------------------------------------------------

    async fn job_show_prints_every_field_with_parents_children_result_and_notes(db: migrated) {
        let parent = db.finished(1, "default", "parent").await[0];
        let child = db
            .enqueue("child", EnqueueOptions::new().parent(parent).notes(json!({"k": "v"})))
            .await;

        let out = db.ok(&["job", "show", &parent.to_string()]);
        for name in [
            "id", "task", "queue", "state", "priority", "attempts", "retries", "lax", "worker",
            "created", "delayed", "started", "finished", "retried", "expires", "parents",
            "children", "args", "result", "notes",
        ] {
            field(&out, name);
        }
        assert_eq!(field(&out, "id"), parent.to_string());
        assert_eq!(field(&out, "state"), "finished");
        assert_eq!(field(&out, "children"), child.to_string());
        assert_eq!(field(&out, "parents"), "-");
        assert_eq!(field(&out, "result"), r#"{"ok":true}"#);
        assert_eq!(field(&out, "args"), r#"{"i":0}"#);
        let created = rfc3339(field(&out, "created"));
        let finished = rfc3339(field(&out, "finished"));
        rfc3339(field(&out, "started"));
        assert!(created <= finished);
        assert_eq!(field(&out, "retried"), "-");

        let out = db.ok(&["job", "show", &child.to_string()]);
        assert_eq!(field(&out, "parents"), parent.to_string());
        assert_eq!(field(&out, "children"), "-");
        assert_eq!(field(&out, "notes"), r#"{"k":"v"}"#);
        assert_eq!(field(&out, "result"), "-");
    }

    async fn job_show_json_has_every_field(db: migrated) {
        let parent = db.finished(1, "default", "parent").await[0];
        let child = db.enqueue("child", EnqueueOptions::new().parent(parent)).await;
        let job = db.json(&["job", "show", &parent.to_string()]);
        assert_keys(&job, JOB_FIELDS);
        assert_eq!(job["children"], json!([child]));
        assert_eq!(job["result"], json!({"ok": true}));
        rfc3339(job["finished"].as_str().expect("finished"));
    }

    async fn job_show_fails_for_an_unknown_id(db: migrated) {
        assert_eq!(db.run(&["job", "show", "42"]).error(), "job 42 not found");
    }

    // -- job retry ------------------------------------------------------------------------------

    async fn job_retry_by_id_applies_the_changes(db: migrated) {
        let id = db.failed(1, "default", "t").await[0];
        let out = db.ok(&[
            "job", "retry", &id.to_string(), "--queue", "other", "--priority", "7",
            "--attempts", "4", "--delay", "1h",
        ]);
        assert_eq!(out, "retried 1 job\n");
        let job = db.job(id).await;
        assert_eq!(job.state, JobState::Inactive);
        assert_eq!(job.queue, "other");
        assert_eq!(job.priority, 7);
        assert_eq!(job.attempts, 4);
        assert_eq!(job.retries, 1);
        assert!(job.delayed > Utc::now() + chrono::Duration::minutes(55));
    }

    async fn job_retry_json_prints_the_count(db: migrated) {
        let ids = db.failed(2, "default", "t").await;
        let out = db.json(&["job", "retry", &ids[0].to_string(), &ids[1].to_string()]);
        assert_eq!(out, json!({"retried": 2}));
    }

    async fn job_retry_of_an_unknown_id_fails_and_changes_nothing(db: migrated) {
        let id = db.failed(1, "default", "t").await[0];
        let message = db.run(&["job", "retry", &id.to_string(), "999"]).error();
        assert_eq!(message, "job 999 not found");
        assert_eq!(db.job(id).await.state, JobState::Failed);
    }

    async fn job_retry_rejects_negative_attempts(db: migrated) {
        let id = db.failed(1, "default", "t").await[0];
        let message = db.run(&["job", "retry", &id.to_string(), "--attempts", "-2"]).error();
        assert_eq!(message, "invalid option: attempts must be at least 1, got -2");
        assert_eq!(db.job(id).await.state, JobState::Failed);
    }

    async fn job_retry_by_state_retries_matching_jobs_and_counts_them(db: migrated) {
        let in_a = db.failed(3, "a", "t1").await;
        db.failed(2, "b", "t2").await;
        let finished = db.finished(1, "a", "t1").await[0];
        assert_eq!(db.ok(&["job", "retry", "--state", "failed", "--queue", "a"]), "retried 3 jobs\n");
        for id in in_a {
            assert_eq!(db.job(id).await.state, JobState::Inactive);
        }
        assert_eq!(db.job(finished).await.state, JobState::Finished);
        assert_eq!(
            db.json(&["job", "retry", "--state", "failed", "--task", "t2"]),
            json!({"retried": 2})
        );
        assert_eq!(db.ok(&["job", "retry", "--state", "failed"]), "retried 0 jobs\n");
    }

    async fn job_retry_needs_ids_or_a_state_but_not_both(db: migrated) {
        db.run(&["job", "retry"]).usage_error();
        db.run(&["job", "retry", "1", "--state", "failed"]).usage_error();
        db.run(&["job", "retry", "--state", "failed", "--priority", "3"]).usage_error();
        db.run(&["job", "retry", "1", "--task", "t"]).usage_error();
    }

    // -- job remove -----------------------------------------------------------------------------

    async fn job_remove_removes_jobs_and_counts_them(db: migrated) {
        let ids = db.enqueue_many(3, "default", "t").await;
        let failed = db.failed(1, "default", "t").await[0];
        let out = db.ok(&["job", "remove", &ids[0].to_string(), &failed.to_string()]);
        assert_eq!(out, "removed 2 jobs\n");
        assert_eq!(db.job_count().await, 2);
        assert_eq!(db.json(&["job", "remove", &ids[1].to_string()]), json!({"removed": 1}));
        assert_eq!(db.job_count().await, 1);
    }

    async fn job_remove_refuses_an_active_job_and_changes_nothing(db: migrated) {
        let ids = db.enqueue_many(2, "default", "t").await;
        db.activate(&ids[1..]).await;
        let message = db
            .run(&["job", "remove", &ids[0].to_string(), &ids[1].to_string()])
            .error();
        assert_eq!(
            message,
            format!(
                "job {} is active and cannot be removed; stop it first or wait for it to finish",
                ids[1]
            )
        );
        assert_eq!(db.job_count().await, 2);
    }

    async fn job_remove_fails_for_an_unknown_id(db: migrated) {
        assert_eq!(db.run(&["job", "remove", "42"]).error(), "job 42 not found");
    }

    // -- job purge ------------------------------------------------------------------------------

    async fn job_purge_removes_finished_and_failed_jobs_by_default(db: migrated) {
        db.finished(2, "default", "t").await;
        db.failed(1, "default", "t").await;
        let waiting = db.enqueue_many(2, "default", "t").await;
        db.activate(&waiting[1..]).await;
        assert_eq!(db.ok(&["job", "purge"]), "removed 3 jobs\n");
        let stats = db.queue().stats().await.expect("stats");
        assert_eq!((stats.inactive_jobs, stats.active_jobs), (1, 1));
        assert_eq!((stats.finished_jobs, stats.failed_jobs), (0, 0));
        assert_eq!(db.json(&["job", "purge"]), json!({"removed": 0}));
    }

    async fn job_purge_works_in_batches_and_reports_progress(db: migrated) {
        db.finished(2_500, "default", "t").await;
        let keep = db.enqueue_many(1, "default", "t").await[0];
        let run = db.run(&["job", "purge"]);
        let stderr = run.stderr.clone();
        assert_eq!(run.ok(), "removed 2500 jobs\n");
        let progress: Vec<&str> = stderr.lines().collect();
        assert_eq!(progress.first(), Some(&"purged 1000 of ~2500"), "{stderr}");
        assert_eq!(progress.last(), Some(&"purged 2500 of ~2500"), "{stderr}");
        assert_eq!(db.job_count().await, 1);
        assert_eq!(db.job(keep).await.state, JobState::Inactive);
    }

    async fn job_purge_prints_no_progress_for_few_jobs(db: migrated) {
        db.finished(3, "default", "t").await;
        let run = db.run(&["job", "purge"]);
        assert_eq!(run.stderr, "");
        assert_eq!(run.ok(), "removed 3 jobs\n");
    }

    async fn job_purge_filters_by_state_queue_and_task(db: migrated) {
        db.finished(2, "a", "t1").await;
        db.finished(3, "b", "t2").await;
        db.failed(4, "a", "t1").await;
        assert_eq!(db.ok(&["job", "purge", "--state", "failed"]), "removed 4 jobs\n");
        assert_eq!(db.ok(&["job", "purge", "--queue", "a"]), "removed 2 jobs\n");
        assert_eq!(db.json(&["job", "purge", "--task", "nope"]), json!({"removed": 0}));
        assert_eq!(db.json(&["job", "purge", "--task", "t2"]), json!({"removed": 3}));
        assert_eq!(db.job_count().await, 0);
    }

    async fn job_purge_older_than_spares_recent_jobs(db: migrated) {
        db.finished(2, "default", "t").await;
        db.failed(1, "default", "t").await;
        assert_eq!(db.ok(&["job", "purge", "--older-than", "1h"]), "removed 0 jobs\n");
        assert_eq!(db.ok(&["job", "purge", "--older-than", "1d"]), "removed 0 jobs\n");
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(db.ok(&["job", "purge", "--older-than", "0s"]), "removed 3 jobs\n");
    }

    async fn job_purge_refuses_inactive_or_active_jobs_without_force(db: migrated) {
        db.enqueue_many(2, "default", "t").await;
        assert_eq!(
            db.run(&["job", "purge", "--state", "inactive"]).error(),
            "refusing to purge inactive jobs without --force \
             (inactive jobs have not run yet, active jobs are running)"
        );
        assert_eq!(
            db.run(&["job", "purge", "--state", "active", "--state", "finished", "--state", "inactive"])
                .error(),
            "refusing to purge inactive and active jobs without --force \
             (inactive jobs have not run yet, active jobs are running)"
        );
        assert_eq!(db.job_count().await, 2);
    }

    async fn job_purge_with_force_removes_inactive_jobs(db: migrated) {
        db.enqueue_many(2, "default", "t").await;
        db.finished(1, "default", "t").await;
        assert_eq!(
            db.ok(&["job", "purge", "--state", "inactive", "--force"]),
            "removed 2 jobs\n"
        );
        assert_eq!(db.job_count().await, 1);
    }

    // -- queues ---------------------------------------------------------------------------------

    async fn queue_list_shows_job_counts_and_the_paused_flag(db: migrated) {
        db.enqueue_many(2, "mail", "t").await;
        db.failed(1, "mail", "t").await;
        db.finished(3, "reports", "t").await;
        let active = db.enqueue_many(1, "reports", "t").await;
        db.activate(&active).await;
        db.queue().pause_queue("mail").await.expect("pause");

        let table = rows(&db.ok(&["queue", "list"]));
        assert_eq!(table[0], ["NAME", "PAUSED", "INACTIVE", "ACTIVE", "FAILED", "FINISHED"]);
        assert_eq!(table[1], ["mail", "yes", "2", "0", "1", "0"]);
        assert_eq!(table[2], ["reports", "no", "0", "1", "0", "3"]);

        let queues = db.json(&["queue", "list"]);
        assert_eq!(
            queues[0],
            json!({"name": "mail", "paused": true, "inactive": 2, "active": 0, "failed": 1, "finished": 0})
        );
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
        rfc3339(&table[1][2]);
        rfc3339(&table[1][3]);
        assert_eq!(&table[1][4..], ["2", "default,mail"]);
        assert_eq!(table[2][0], idle.to_string());
        assert_eq!(&table[2][4..], ["0", "-"]);

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
        assert_eq!(field(&out, "jobs"), "-");
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
            db.json(&["worker", "command", "stop", &w1.to_string()]),
            json!({"command": "stop", "sent": 1})
        );
        assert_eq!(inbox(w1).await, vec![Command { command: "stop".into(), args: json!([]) }]);
        assert_eq!(inbox(w2).await, vec![]);
    }

    async fn worker_command_to_an_unknown_worker_fails_and_sends_nothing(db: migrated) {
        let w1 = db.register_worker("box1", 1, json!({})).await;
        let message = db.run(&["worker", "command", "stop", &w1.to_string(), "999"]).error();
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
        let points = db.json(&["history"]);
        let points = points.as_array().expect("an array");
        assert_eq!(points.len(), 24);
        assert_keys(&points[0], &["hour", "finished", "failed"]);
        let sum = |key: &str| points.iter().map(|p| p[key].as_u64().expect("count")).sum::<u64>();
        assert_eq!((sum("finished"), sum("failed")), (2, 1));

        let table = rows(&db.ok(&["history"]));
        assert_eq!(table[0], ["HOUR", "FINISHED", "FAILED"]);
        assert_eq!(table.len(), 25);
        rfc3339(&table[1][0]);
        assert_eq!(table[24][1..], ["2", "1"]);
    }

    // -- global options -------------------------------------------------------------------------

    async fn the_database_and_schema_can_come_from_the_environment(db: migrated) {
        let id = db.enqueue("t", EnqueueOptions::new()).await;
        let out = db.run_with_env(&["job", "show", &id.to_string(), "--json"]).json();
        assert_eq!(out["id"], id);
    }

    async fn global_flags_go_anywhere_on_the_line(db: migrated) {
        let id = db.enqueue("t", EnqueueOptions::new()).await;
        let flags = db.flags();
        let mut args = vec!["job", "--json", "show"];
        let id_text = id.to_string();
        args.push(&id_text);
        args.extend(flags.iter().map(String::as_str));
        let out = run_in(db.dir.path(), &args, &[]).json();
        assert_eq!(out["id"], id);
    }
}

// -- tests that need no shared database --------------------------------------------------------

#[test]
fn an_unreachable_database_is_named_without_its_password() {
    let dir = TempDir::new();
    let run = run_in(
        dir.path(),
        &[
            "--database",
            "postgres://app:s3cret@127.0.0.1:1/jobs",
            "stats",
        ],
        &[],
    );
    let message = run.error();
    assert!(
        message.starts_with("cannot connect to postgres://app:***@127.0.0.1:1/jobs: "),
        "{message}"
    );
    assert!(!message.contains("s3cret"), "{message}");
}

#[test]
fn an_unknown_url_scheme_is_a_clear_error() {
    let dir = TempDir::new();
    let message = run_in(
        dir.path(),
        &["--database", "mysql://u:pw@h/db", "stats"],
        &[],
    )
    .error();
    assert!(
        message.starts_with(r#"invalid database URL "mysql://u:***@h/db": unknown scheme"#),
        "{message}"
    );
}

#[test]
fn a_missing_sqlite_file_is_reported_and_not_created() {
    let dir = TempDir::new();
    let path = dir.path().join("nope.db");
    let url = format!("sqlite://{}", path.display());
    let message = run_in(dir.path(), &["--database", &url, "job", "list"], &[]).error();
    assert_eq!(
        message,
        format!(
            "the database file {} does not exist \
             (run `underling migrate` or call Queue::migrate() to create it)",
            path.display()
        )
    );
    assert!(!path.exists());
}

#[test]
fn the_default_database_is_a_sqlite_file_in_the_working_directory() {
    let dir = TempDir::new();
    let out = run_in(dir.path(), &["migrate"], &[]).ok();
    assert!(out.starts_with("applied migration "), "{out}");
    assert!(dir.path().join("underling.db").exists());
    let id = run_in(dir.path(), &["job", "enqueue", "t"], &[]).ok();
    assert_eq!(id, "1\n");
}

#[test]
fn a_schema_is_refused_for_sqlite() {
    let dir = TempDir::new();
    let url = format!("sqlite://{}", dir.path().join("x.db").display());
    let run = run_in(
        dir.path(),
        &["--database", &url, "--schema", "s", "migrate"],
        &[],
    );
    assert_eq!(
        run.error(),
        "invalid option: a schema can only be given for PostgreSQL"
    );
}

#[test]
fn usage_errors_exit_with_code_2() {
    let dir = TempDir::new();
    run_in(dir.path(), &[], &[]).usage_error();
    run_in(dir.path(), &["job"], &[]).usage_error();
    run_in(dir.path(), &["job", "list", "--bogus"], &[]).usage_error();
    run_in(dir.path(), &["job", "show", "not-a-number"], &[]).usage_error();
    run_in(dir.path(), &["job", "remove"], &[]).usage_error();
    run_in(dir.path(), &["frobnicate"], &[]).usage_error();
    run_in(dir.path(), &["bench", "--runs", "0"], &[]).usage_error();
}

#[test]
fn help_lists_every_command() {
    let dir = TempDir::new();
    let help = run_in(dir.path(), &["--help"], &[]).ok();
    for command in [
        "migrate", "job", "queue", "worker", "lock", "stats", "history", "bench",
    ] {
        assert!(help.contains(command), "{command} missing from:\n{help}");
    }
    let help = run_in(dir.path(), &["job", "--help"], &[]).ok();
    for command in ["enqueue", "list", "show", "retry", "remove", "purge"] {
        assert!(help.contains(command), "{command} missing from:\n{help}");
    }
}
