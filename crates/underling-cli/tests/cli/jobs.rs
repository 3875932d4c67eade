//! `underling migrate` and `underling job …`, end to end on both backends.
//!
//! Long because `job` has many subcommands and each behaviour is one test; they share the
//! helpers of `support/`.

use std::time::Duration;

use chrono::Utc;
use serde_json::json;
use underling::{EnqueueOptions, JobState};

use crate::*;

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

    async fn enqueue_by_name_applies_the_defaults_a_worker_published(db: migrated) {
        db.queue().publish_tasks(&mail_task()).await.unwrap();
        let id: i64 = db.ok(&["job", "enqueue", "mail.send"]).trim_end().parse().unwrap();
        let job = db.job(id).await;
        assert_eq!((job.queue.as_str(), job.priority, job.attempts), ("mail", 5, 3));
        let id: i64 = db
            .ok(&["job", "enqueue", "mail.send", "--attempts", "1", "--queue", "default"])
            .trim_end()
            .parse()
            .unwrap();
        let job = db.job(id).await;
        assert_eq!((job.queue.as_str(), job.priority, job.attempts), ("default", 5, 1));
    }

    async fn task_list_shows_the_published_defaults(db: migrated) {
        assert_eq!(
            db.ok(&["task", "list"]),
            "no tasks published (a worker publishes its tasks when it starts)\n"
        );
        db.queue().publish_tasks(&mail_task()).await.unwrap();
        let table = rows(&db.ok(&["task", "list"]));
        assert_eq!(table[0], ["TASK", "QUEUE", "PRIORITY", "ATTEMPTS", "TIMEOUT", "PUBLISHED"]);
        assert_eq!(table[1][..5], ["mail.send", "mail", "5", "3", "30s"]);
        let listed = db.json(&["task", "list"]);
        assert_eq!(listed[0]["name"], "mail.send");
        assert_eq!(listed[0]["queue"], "mail");
        assert_eq!(listed[0]["attempts"], 3);
        assert_eq!(listed[0]["timeout_ms"], 30_000);
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

    async fn enqueue_with_a_live_unique_key_prints_the_existing_id_and_says_so_on_stderr(db: migrated) {
        let first = db.ok(&["job", "enqueue", "report.build", "--unique-key", "nightly", "--timeout", "10m"]);
        let id: i64 = first.trim_end().parse().expect("an id");
        let again = db.run(&["job", "enqueue", "report.build", "--unique-key", "nightly"]);
        assert_eq!(again.stderr, format!("job {id} holds the unique key already: nothing was enqueued\n"));
        assert_eq!(again.ok(), format!("{id}\n"));
        let job = db.json(&["job", "enqueue", "report.build", "--unique-key", "nightly"]);
        assert_eq!((job["id"].as_i64(), job["duplicate"].clone()), (Some(id), json!(true)));
        assert_eq!((job["unique_key"].clone(), job["timeout_ms"].clone()), (json!("nightly"), json!(600_000)));
        assert_eq!(db.job_count().await, 1);
    }

    async fn enqueue_with_on_conflict_replace_updates_the_waiting_job(db: migrated) {
        let id = db.ok(&["job", "enqueue", "t", "--unique-by", "args-and-queue", "--args", "[1]"]);
        let id: i64 = id.trim_end().parse().expect("an id");
        let run = db.run(&["job", "enqueue", "t", "--unique-by", "args-and-queue", "--args", "[1]",
            "--on-conflict", "replace", "--priority", "9"]);
        assert_eq!(run.stderr, format!("job {id} holds the unique key already: nothing was enqueued (its args, priority and delay were replaced)\n"));
        assert_eq!(db.job(id).await.priority, 9);
    }

    async fn enqueue_with_on_conflict_error_fails_naming_the_key_and_the_job(db: migrated) {
        let id = db.ok(&["job", "enqueue", "t", "--unique-key", "k", "--unique-for", "1h"]);
        let message = db.run(&["job", "enqueue", "t", "--unique-key", "k", "--on-conflict", "error"]).error();
        assert_eq!(message, format!("a job with the unique key \"k\" exists already: job {} (the enqueue's conflict policy is error; use existing to get its id, or replace to update it)", id.trim_end()));
        assert_eq!(db.job_count().await, 1);
    }

    async fn enqueue_rejects_the_period_scope_without_a_period(db: migrated) {
        let message = db.run(&["job", "enqueue", "t", "--unique-key", "k", "--unique-scope", "period"]).error();
        assert_eq!(message, "invalid option: the unique scope period needs a duration: give unique_for (--unique-for), e.g. 1h");
        assert_eq!(db.job_count().await, 0);
    }

    async fn enqueue_batch_reports_the_lines_that_were_duplicates(db: migrated) {
        let text = b"{\"task\": \"a\", \"unique_key\": \"k\"}\n{\"task\": \"b\"}\n{\"task\": \"a\", \"unique_key\": \"k\", \"timeout\": 5}\n";
        let run = db.run_with_stdin(&["job", "enqueue-batch", "-"], text);
        assert_eq!(run.stderr, format!("1 of 3 jobs were duplicates of live unique jobs, and nothing was enqueued for them (line 3: job {})\n", run.stdout.lines().next().unwrap_or_default()));
        let ids: Vec<i64> = run.ok().lines().map(|l| l.parse().expect("an id")).collect();
        assert_eq!(ids[2], ids[0]);
        assert_eq!(db.job_count().await, 2);
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
            ["ID", "STATE", "QUEUE", "TASK", "PRIORITY", "ATTEMPTS", "CREATED", "STATUS"]
        );
        let listed: Vec<i64> = table[1..4].iter().map(|r| r[0].parse().expect("id")).collect();
        assert_eq!(listed, [ids[2], ids[1], ids[0]]);
        assert_eq!(&table[1][1..6], ["inactive", "default", "t", "0", "1"]);
        // Relative times in tables: just enqueued.
        assert!(matches!(table[1][6].as_str(), "now" | "1s" | "2s"), "{out}");
        assert_eq!(table[1].last().map(String::as_str), Some("ready"), "{out}");
        assert_eq!(out.lines().last(), Some("total: 3 jobs"));
    }

    async fn job_list_says_why_each_inactive_job_is_not_running(db: migrated) {
        let hour = Duration::from_secs(3600);
        let scheduled = db.enqueue("t", EnqueueOptions::new().delay(hour)).await;
        let retryable = db.enqueue("t", EnqueueOptions::new().attempts(2)).await;
        let attempt = db.activate(&[retryable]).await;
        db.store()
            .cycle(underling::store::Cycle {
                settles: &[underling::Settle {
                    id: retryable,
                    retries: attempt[0].retries,
                    outcome: underling::Outcome::Failed { error: json!("x"), retry_delay: hour * 2 },
                }],
                claim: None,
                now: None,
            })
            .await
            .expect("fail the attempt");
        let parent = db.enqueue("t", EnqueueOptions::new().delay(hour)).await;
        let waiting = db.enqueue("t", EnqueueOptions::new().parent(parent)).await;
        let paused = db.enqueue("t", EnqueueOptions::new().queue("held")).await;
        db.queue().pause_queue("held").await.expect("pause");
        let running = db.enqueue("t", EnqueueOptions::new()).await;
        let worker = db.activate(&[running]).await[0].worker_id.expect("a worker");
        let done = db.finished(1, "default", "t").await[0];

        let out = db.ok(&["job", "list"]);
        let row = |id: i64| -> String {
            out.lines()
                .find(|l| l.split_whitespace().next() == Some(&id.to_string()))
                .unwrap_or_else(|| panic!("no job {id} in:\n{out}"))
                .to_string()
        };
        assert!(row(scheduled).ends_with("scheduled, due in 59m"), "{out}");
        assert!(row(retryable).ends_with("retryable, due in 1h"), "{out}");
        assert!(row(waiting).ends_with(&format!("waiting for parent {parent}")), "{out}");
        assert!(row(paused).ends_with("queue paused"), "{out}");
        assert!(row(running).ends_with(&format!("running on worker {worker}")), "{out}");
        assert!(row(done).ends_with("ended now"), "{out}");

        let ids = |state: &str| listed_ids(&db.json(&["job", "list", "--state", state]));
        assert_eq!(ids("scheduled"), [parent, scheduled]);
        assert_eq!(ids("Retryable"), [retryable]);
        assert_eq!(ids("WAITING"), [waiting]);
        // --json keeps RFC 3339.
        let list = db.json(&["job", "list", "--state", "scheduled"]);
        rfc3339(list["jobs"][0]["delayed"].as_str().expect("delayed"));
    }

    async fn job_list_of_nothing_says_no_jobs(db: migrated) {
        assert_eq!(db.ok(&["job", "list"]), "no jobs\n");
        db.enqueue_many(2, "default", "t").await;
        assert_eq!(
            db.ok(&["job", "list", "--offset", "5"]),
            "no jobs on this page (total: 2 jobs)\n"
        );
        assert_eq!(db.ok(&["job", "list", "--state", "failed"]), "no jobs\n");
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

    async fn job_list_pages_below_an_id_with_before(db: migrated) {
        let ids = db.enqueue_many(5, "default", "t").await;
        let before = ids[3].to_string();
        let page = db.json(&["job", "list", "--limit", "2", "--before", &before]);
        assert_eq!(listed_ids(&page), [ids[2], ids[1]]);
        assert_eq!(page["total"], 5);
        let out = db.ok(&["job", "list", "--limit", "2", "--before", &before]);
        assert_eq!(
            out.lines().last(),
            Some(format!("total: 5 jobs (showing 2 below id {}; next page: --before {})", ids[3], ids[1]).as_str())
        );
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

    async fn job_show_cuts_long_values_and_json_has_them_whole(db: migrated) {
        let big = "x".repeat(5000);
        let id = db
            .queue()
            .enqueue("t", json!({ "big": big }), EnqueueOptions::new())
            .await
            .expect("enqueue");
        let out = db.ok(&["job", "show", &id.to_string()]);
        let args = field(&out, "args");
        let whole = json!({ "big": big }).to_string();
        assert_eq!(
            args,
            format!("{}… ({} bytes in all; --json shows everything)", &whole[..200], whole.len())
        );
        assert_eq!(db.json(&["job", "show", &id.to_string()])["args"]["big"], json!(big));
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

    // -- job enqueue-batch ----------------------------------------------------------------------

    async fn enqueue_batch_lines_take_what_they_leave_unset_from_the_published_defaults(db: migrated) {
        db.queue().publish_tasks(&mail_task()).await.unwrap();
        let path = db.dir.path().join("mail.jsonl");
        std::fs::write(&path, "{\"task\": \"mail.send\"}\n{\"task\": \"mail.send\", \"attempts\": 1}\n")
            .expect("write the file");
        let out = db.ok(&["job", "enqueue-batch", path.to_str().expect("utf-8 path")]);
        let ids: Vec<i64> = out.lines().map(|l| l.parse().expect("an id")).collect();
        let first = db.job(ids[0]).await;
        assert_eq!((first.queue.as_str(), first.priority, first.attempts), ("mail", 5, 3));
        let second = db.job(ids[1]).await;
        assert_eq!((second.queue.as_str(), second.priority, second.attempts), ("mail", 5, 1));
    }

    async fn enqueue_batch_enqueues_every_line_and_prints_the_ids(db: migrated) {
        let parent = db.enqueue("parent", EnqueueOptions::new()).await;
        let path = db.dir.path().join("jobs.jsonl");
        let text = format!(
            "{{\"task\": \"a\"}}\n\n{}\n{{\"task\": \"c\", \"run_at\": \"2030-01-02T03:04:05Z\", \"delay\": null}}\n",
            json!({
                "task": "b", "args": {"n": 1}, "queue": "mail", "priority": 5, "attempts": 3,
                "delay": "5m", "parents": [parent], "lax": true, "expire": "1h",
                "notes": {"k": "v"}
            })
        );
        std::fs::write(&path, text).expect("write the file");
        let run = db.run(&["job", "enqueue-batch", path.to_str().expect("utf-8 path")]);
        assert_eq!(run.stderr, "", "no progress bar when stderr is not a terminal");
        let ids: Vec<i64> = run.ok().lines().map(|l| l.parse().expect("an id")).collect();
        assert_eq!(ids.len(), 3);
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
        let a = db.job(ids[0]).await;
        assert_eq!((a.task.as_str(), a.queue.as_str(), a.attempts), ("a", "default", 1));
        assert_eq!(a.args, json!({}));
        let b = db.job(ids[1]).await;
        assert_eq!(b.task, "b");
        assert_eq!(b.args, json!({"n": 1}));
        assert_eq!((b.queue.as_str(), b.priority, b.attempts, b.lax), ("mail", 5, 3, true));
        assert_eq!(b.parents, vec![parent]);
        assert_eq!(b.notes["k"], json!("v"));
        let delay = (b.delayed - b.created).num_seconds();
        assert!((299..=301).contains(&delay), "{delay}");
        let expire = (b.expires.expect("expires") - b.created).num_seconds();
        assert!((3599..=3601).contains(&expire), "{expire}");
        let c = db.job(ids[2]).await;
        assert_eq!(c.delayed, rfc3339("2030-01-02T03:04:05Z"));
        assert_eq!(db.job_count().await, 4);
    }

    async fn enqueue_batch_reads_standard_input_and_prints_json(db: migrated) {
        let run = db.run_with_stdin(
            &["job", "enqueue-batch", "-", "--json"],
            b"{\"task\": \"a\"}\n{\"task\": \"b\"}",
        );
        let ids: Vec<i64> = serde_json::from_str(&run.ok()).expect("a JSON array of ids");
        assert_eq!(ids.len(), 2);
        assert_eq!(db.job(ids[1]).await.task, "b");
    }

    async fn enqueue_batch_writes_many_batches(db: migrated) {
        let text: String = (0..2500).map(|i| format!("{{\"task\": \"t\", \"args\": [{i}]}}\n")).collect();
        let ids: Vec<i64> = db
            .run_with_stdin(&["job", "enqueue-batch", "-"], text.as_bytes())
            .ok()
            .lines()
            .map(|l| l.parse().expect("an id"))
            .collect();
        assert_eq!(ids.len(), 2500);
        assert_eq!(db.job_count().await, 2500);
        assert_eq!(db.job(ids[2499]).await.args, json!([2499]));
    }

    async fn enqueue_batch_with_a_bad_line_names_it_and_writes_nothing(db: migrated) {
        let cases = [
            ("{\"task\": \"a\"}\n{\"task\": \"b\", \"queue\": \"\"}\n", "line 2: invalid queue name"),
            ("{\"task\": \"a\"}\n{\"task\": \"b\"\n", "line 2: EOF while parsing an object"),
            ("{\"task\": \"a\", \"attempts\": 0}\n", "line 1: invalid option: attempts must be at least 1, got 0"),
            ("{\"task\": \"a\", \"delay\": \"soon\"}\n", "line 1: invalid duration: delay: "),
            ("{\"task\": \"a\", \"prio\": 1}\n", "line 1: unknown field `prio`"),
            ("{\"task\": \"a\"}\n\n{\"task\": \"b\", \"parents\": [424242]}\n", "line 3: parent job 424242 does not exist"),
        ];
        for (input, expected) in cases {
            let message = db.run_with_stdin(&["job", "enqueue-batch", "-"], input.as_bytes()).error();
            assert!(message.starts_with(expected), "{input:?}: {message}");
        }
        assert_eq!(db.job_count().await, 0);
    }

    async fn enqueue_batch_of_a_missing_file_says_so(db: migrated) {
        let message = db.run(&["job", "enqueue-batch", "/nonexistent/jobs.jsonl"]).error();
        assert!(message.starts_with("cannot read /nonexistent/jobs.jsonl: "), "{message}");
    }

    // -- job wait -------------------------------------------------------------------------------

    async fn job_wait_prints_a_job_that_finishes_meanwhile_and_exits_0(db: migrated) {
        let id = db.enqueue("t", EnqueueOptions::new()).await;
        let waiting = db.spawn(&["job", "wait", &id.to_string(), "--timeout", "60s"]);
        tokio::time::sleep(Duration::from_millis(700)).await;
        db.settle(&[id], underling::Outcome::Finished(json!({"sum": 3}))).await;
        let out = waiting.join().expect("the waiting run").ok();
        assert_eq!(out, db.ok(&["job", "show", &id.to_string()]));
        assert_eq!(field(&out, "state"), "finished");
        assert_eq!(field(&out, "result"), r#"{"sum":3}"#);
    }

    async fn job_wait_json_prints_the_whole_job(db: migrated) {
        let id = db.finished(1, "default", "t").await[0];
        let job = db.json(&["job", "wait", &id.to_string()]);
        assert_keys(&job, JOB_FIELDS);
        assert_eq!(job["id"], json!(id));
        assert_eq!(job["state"], json!("finished"));
        assert_eq!(job["result"], json!({"ok": true}));
    }

    async fn job_wait_exits_1_when_the_job_failed_and_prints_it(db: migrated) {
        let id = db.enqueue("t", EnqueueOptions::new()).await;
        let waiting = db.spawn(&["job", "wait", &id.to_string()]);
        tokio::time::sleep(Duration::from_millis(700)).await;
        db.settle(
            &[id],
            underling::Outcome::Failed { error: json!("boom"), retry_delay: Duration::ZERO },
        )
        .await;
        let run = waiting.join().expect("the waiting run");
        assert_eq!(run.code, 1, "{run:?}");
        assert_eq!(run.stderr, format!("error: job {id} failed\n"));
        assert_eq!(run.stdout, db.ok(&["job", "show", &id.to_string()]));
        assert_eq!(field(&run.stdout, "state"), "failed");
    }

    async fn job_wait_exits_1_when_the_time_runs_out_and_prints_the_job(db: migrated) {
        let id = db.enqueue("t", EnqueueOptions::new()).await;
        let run = db.run(&["job", "wait", &id.to_string(), "--timeout", "300ms"]);
        assert_eq!(run.code, 1, "{run:?}");
        assert_eq!(
            run.stderr,
            format!("error: timed out after 300ms waiting for job {id} (it is inactive)\n")
        );
        assert_eq!(field(&run.stdout, "state"), "inactive");
        assert_eq!(field(&run.stdout, "id"), id.to_string());
    }

    async fn job_wait_fails_for_an_unknown_id(db: migrated) {
        assert_eq!(db.run(&["job", "wait", "42"]).error(), "job 42 not found");
    }

    async fn job_wait_with_a_bad_timeout_is_a_usage_error(db: migrated) {
        let stderr = db.run(&["job", "wait", "1", "--timeout", "soon"]).usage_error();
        assert!(stderr.contains("--timeout"), "{stderr}");
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

    async fn job_purge_json_prints_a_progress_object_per_batch_on_stderr(db: migrated) {
        db.finished(5, "default", "t").await;
        let run = db.run(&["job", "purge", "--batch", "2", "--json"]);
        let stderr = run.stderr.clone();
        assert_eq!(run.json(), json!({"removed": 5}));
        let lines: Vec<Value> = stderr
            .lines()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line:?}")))
            .collect();
        let counts: Vec<(u64, u64)> = lines
            .iter()
            .map(|l| (l["removed"].as_u64().unwrap(), l["total"].as_u64().unwrap()))
            .collect();
        assert_eq!(counts, vec![(2, 5), (4, 5), (5, 5)], "{stderr}");
        let mut elapsed = 0;
        for line in &lines {
            let keys: Vec<&str> = line.as_object().unwrap().keys().map(String::as_str).collect();
            assert_eq!(keys, vec!["elapsed_ms", "removed", "total"], "{line}");
            let ms = line["elapsed_ms"].as_u64().expect("elapsed_ms is a whole number");
            assert!(ms >= elapsed, "{stderr}");
            elapsed = ms;
        }
        assert_eq!(db.job_count().await, 0);
    }

    async fn job_purge_on_a_terminal_draws_a_bar_with_the_rate(db: migrated) {
        db.finished(5, "default", "t").await;
        let Some(screen) = crate::on_terminal(&db, &["job", "purge", "--batch", "1"]) else {
            return;
        };
        assert!(screen.contains("/5 jobs purged ("), "{screen}");
        assert!(screen.contains(" rows/s, "), "{screen}");
        assert!(!screen.contains("purged 1 of"), "no plain lines on a terminal: {screen}");
        assert!(screen.trim_end().ends_with("removed 5 jobs"), "{screen}");
        assert_eq!(db.job_count().await, 0);
    }

    async fn job_purge_batch_must_be_positive(db: migrated) {
        db.finished(1, "default", "t").await;
        let stderr = db.run(&["job", "purge", "--batch", "0"]).usage_error();
        assert!(stderr.contains("--batch"), "{stderr}");
        assert_eq!(db.job_count().await, 1);
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


    async fn job_list_takes_states_in_any_case(db: migrated) {
        let failed = db.enqueue("t", EnqueueOptions::new()).await;
        db.enqueue("t", EnqueueOptions::new()).await;
        db.settle(&[failed], underling::Outcome::Failed { error: json!("x"), retry_delay: Duration::ZERO }).await;
        for spelling in ["failed", "Failed", "FAILED"] {
            let list = db.json(&["job", "list", "--state", spelling]);
            assert_eq!(listed_ids(&list), vec![failed], "--state {spelling}");
        }
    }

    async fn job_enqueue_runs_at_the_time_given(db: migrated) {
        let out = db.json(&["job", "enqueue", "t", "--run-at", "2030-01-02T03:04:05Z"]);
        assert_eq!(out["delayed"], json!("2030-01-02T03:04:05Z"));
        let stderr = db.run(&["job", "enqueue", "t", "--run-at", "tomorrow"]).usage_error();
        assert!(stderr.contains("--run-at"), "{stderr}");
        assert!(stderr.contains("RFC 3339"), "{stderr}");
        let stderr = db.run(&["job", "enqueue", "t", "--run-at", "2030-01-02T03:04:05Z", "--delay", "5m"]).usage_error();
        assert!(stderr.contains("--delay"), "{stderr}");
    }

    async fn job_enqueue_reads_args_and_notes_from_a_file(db: migrated) {
        let big: Vec<String> = (0..20_000).map(|i| format!("item {i}")).collect();
        let args = json!({"items": big});
        let path = db.dir.path().join("args.json");
        std::fs::write(&path, args.to_string()).expect("write args");
        let notes = db.dir.path().join("notes.json");
        std::fs::write(&notes, r#"{"source": "file"}"#).expect("write notes");
        let flag = format!("@{}", path.display());
        let notes_flag = format!("@{}", notes.display());
        let out = db.json(&["job", "enqueue", "t", "--args", &flag, "--notes", &notes_flag]);
        let id = out["id"].as_i64().expect("id");
        let job = db.queue().job(id).await.expect("job").expect("exists");
        assert_eq!(job.args, args);
        assert_eq!(job.notes["source"], json!("file"));
        let message = db.run(&["job", "enqueue", "t", "--args", "@/nonexistent/args.json"]).error();
        assert!(
            message.starts_with("--args @/nonexistent/args.json: cannot read the file: "),
            "{message}"
        );
    }

    async fn job_enqueue_reads_args_from_standard_input(db: migrated) {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_underling"));
        command
            .args(["job", "enqueue", "t", "--args", "-", "--json"])
            .args(db.flags())
            .current_dir(db.dir.path())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped());
        let mut child = command.spawn().expect("run underling");
        {
            use std::io::Write;
            let mut stdin = child.stdin.take().expect("stdin");
            stdin.write_all(br#"{"from": "stdin"}"#).expect("write stdin");
        }
        let output = child.wait_with_output().expect("wait");
        assert!(output.status.success(), "{output:?}");
        let out: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
        assert_eq!(out["args"], json!({"from": "stdin"}));
    }
}

/// A registry with `mail.send`, which declares queue `mail`, priority 5, three attempts and a
/// 30 s timeout: what a worker that runs it publishes.
fn mail_task() -> underling::Registry {
    struct Mail;
    #[underling::async_trait]
    impl underling::Task for Mail {
        type Args = serde_json::Value;
        fn name(&self) -> &'static str {
            "mail.send"
        }
        fn options(&self) -> underling::TaskOptions {
            underling::TaskOptions {
                queue: Some("mail".into()),
                priority: Some(5),
                attempts: Some(3),
                timeout: Some(Duration::from_secs(30)),
                ..underling::TaskOptions::default()
            }
        }
        async fn run(
            &self,
            _ctx: &underling::JobContext,
            args: serde_json::Value,
        ) -> underling::TaskResult {
            Ok(args)
        }
    }
    let mut registry = underling::Registry::new();
    registry.register(Mail).expect("register mail.send");
    registry
}
