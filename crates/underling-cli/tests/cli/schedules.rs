//! `underling schedule …`, end to end on both backends.

use serde_json::json;

use crate::*;

on_both! {
    async fn schedule_add_list_show_pause_resume_run_now_and_remove(db: migrated) {
        let added = db.ok(&[
            "schedule", "add", "nightly", "30 2 * * *", "report.build",
            "--timezone", "America/New_York", "--args", r#"{"kind": "daily"}"#,
            "--queue", "reports", "--priority", "3", "--catch-up", "skip",
        ]);
        assert!(added.starts_with("added schedule nightly: next run 20"), "{added}");
        let again = db.ok(&["schedule", "add", "nightly", "30 2 * * *", "report.build", "--timezone", "America/New_York", "--queue", "reports"]);
        assert!(again.starts_with("updated schedule nightly: next run "), "{again}");

        let table = rows(&db.ok(&["schedule", "list"]));
        assert_eq!(table[0], ["NAME", "CRON", "TIMEZONE", "TASK", "NEXT", "RUN", "LAST", "RUN", "LAST", "JOB"]);
        assert_eq!(table[1][..8], ["nightly", "30", "2", "*", "*", "*", "America/New_York", "report.build"]);
        assert_eq!(table[1][table[1].len() - 2..], ["-", "-"]);

        let list = db.json(&["schedule", "list"]);
        let s = &list[0];
        assert_keys(s, &["name", "cron", "timezone", "task", "args", "queue", "priority", "attempts", "options",
            "catch_up", "paused", "next_run", "last_run", "last_job_id", "created", "updated"]);
        assert_eq!((&s["name"], &s["catch_up"], &s["queue"], &s["priority"]), (&json!("nightly"), &json!("last"), &json!("reports"), &json!(null)));
        let next = rfc3339(s["next_run"].as_str().unwrap());
        let stored = db.queue().schedule("nightly").await.unwrap().unwrap();
        assert_eq!(stored.next_run, Some(next));

        let shown = db.ok(&["schedule", "show", "nightly", "--next", "3"]);
        assert_eq!(field(&shown, "timezone"), "America/New_York");
        assert_eq!(field(&shown, "paused"), "no");
        let upcoming: Vec<&str> = shown.lines().skip_while(|l| *l != "upcoming:").skip(1).collect();
        assert_eq!(upcoming.len(), 3, "{shown}");
        for line in upcoming {
            assert!(line.contains(" 02:30:00 E") || line.contains(" 03:00:00 EDT"), "{line}");
        }
        let shown = db.json(&["schedule", "show", "nightly"]);
        assert_eq!(shown["upcoming"].as_array().unwrap().len(), 5);

        assert_eq!(db.ok(&["schedule", "pause", "nightly"]), "paused schedule nightly\n");
        let table = rows(&db.ok(&["schedule", "list"]));
        assert!(table[1].contains(&"paused".to_string()), "{table:?}");
        assert_eq!(db.json(&["schedule", "show", "nightly"])["next_run"], json!(null));
        let resumed = db.ok(&["schedule", "resume", "nightly"]);
        assert!(resumed.starts_with("resumed schedule nightly: next run 20"), "{resumed}");

        let id: i64 = db.ok(&["schedule", "run-now", "nightly"]).trim().parse().unwrap();
        let job = db.job(id).await;
        assert_eq!((job.task.as_str(), job.queue.as_str(), &job.args), ("report.build", "reports", &json!({})));
        assert_eq!(job.notes.get("schedule"), Some(&json!("nightly")));
        let enqueued = db.json(&["schedule", "run-now", "nightly"]);
        assert_eq!(enqueued["duplicate"], json!(false));
        assert_eq!(db.json(&["schedule", "show", "nightly"])["last_job_id"], enqueued["id"]);

        assert_eq!(db.ok(&["schedule", "remove", "nightly"]), "removed schedule nightly (its jobs stay)\n");
        assert_eq!(db.ok(&["schedule", "list"]), "no schedules\n");
        assert_eq!(db.json(&["schedule", "list"]), json!([]));
        assert_eq!(db.job_count().await, 2);
        assert_eq!(
            db.run(&["schedule", "show", "nightly"]).error(),
            "schedule \"nightly\" not found (see `underling schedule list`)"
        );
        assert_eq!(
            db.run(&["schedule", "run-now", "nightly"]).error(),
            "schedule \"nightly\" not found (see `underling schedule list`)"
        );
    }

    async fn schedule_add_refuses_a_bad_expression_time_zone_or_option_and_writes_nothing(db: migrated) {
        assert_eq!(
            db.run(&["schedule", "add", "x", "0 3 * * *", "t", "--timezone", "Europe/Atlantis"]).error(),
            "unknown time zone \"Europe/Atlantis\": give an IANA time zone name such as UTC, Europe/Berlin or America/New_York"
        );
        let error = db.run(&["schedule", "add", "x", "0 25 * * *", "t"]).error();
        assert!(error.starts_with("invalid cron expression \"0 25 * * *\": "), "{error}");
        assert!(error.ends_with("or @hourly, @daily, @weekly, @monthly, @yearly"), "{error}");
        assert_eq!(
            db.run(&["schedule", "add", "x", "0 3 * * *", "t", "--unique-key", "k", "--on-conflict", "error"]).error(),
            "invalid schedule \"x\": a tick must not fail on a unique conflict: use on_conflict existing (enqueue nothing while the last job lives) or replace"
        );
        assert_eq!(
            db.run(&["schedule", "add", "my report", "0 3 * * *", "t"]).error(),
            "invalid schedule name \"my report\": a schedule name is 1 to 200 letters, digits, '.', '_', ':' or '-' (e.g. nightly-report)"
        );
        let usage = db.run(&["schedule", "add", "x", "0 3 * * *", "t", "--catch-up", "never"]).usage_error();
        assert!(usage.contains("unknown catch-up policy \"never\""), "{usage}");
        assert_eq!(db.json(&["schedule", "list"]), json!([]));
    }
}
