//! `underling audit …` and `underling events`, end to end on both backends.

use std::time::Duration;

use serde_json::Value;
use underling::EnqueueOptions;

use crate::*;

on_both! {
    async fn audit_is_off_until_enabled_and_says_so(db: migrated) {
        assert_eq!(db.ok(&["audit", "status"]), "the audit log is off\n");
        assert_eq!(db.ok(&["audit", "enable"]), "the audit log is on\n");
        assert_eq!(db.json(&["audit", "status"]), serde_json::json!({"audit": true}));
        assert_eq!(db.ok(&["audit", "disable"]), "the audit log is off\n");
    }

    async fn audit_list_shows_each_transition_newest_first(db: migrated) {
        db.ok(&["audit", "enable"]);
        let id = db.enqueue("mail.send", EnqueueOptions::new().queue("mail")).await;
        db.activate(&[id]).await;
        let table = rows(&db.ok(&["audit", "list", "--job", &id.to_string()]));
        assert_eq!(table[0], ["ENTRY", "AT", "EVENT", "JOB", "TASK", "QUEUE", "STATE", "RETRIES"]);
        assert_eq!(&table[1][2..], ["started", &id.to_string(), "mail.send", "mail", "active", "0"]);
        assert_eq!(&table[2][2..], ["enqueued", &id.to_string(), "mail.send", "mail", "inactive", "0"]);
        assert_eq!(table.len(), 3);
        let entries = db.json(&["audit", "list"]);
        let events: Vec<&str> = entries.as_array().expect("an array").iter().map(|e| e["event"].as_str().expect("event")).collect();
        assert_eq!(events, ["started", "enqueued"]);
        assert_eq!(entries[1]["job"]["task"], "mail.send");
    }

    async fn audit_prune_removes_old_entries(db: migrated) {
        db.ok(&["audit", "enable"]);
        db.enqueue("t", EnqueueOptions::new()).await;
        assert_eq!(db.ok(&["audit", "prune", "--older-than", "1h"]), "removed 0 audit entries\n");
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(db.json(&["audit", "prune", "--older-than", "1ms"]), serde_json::json!({"removed": 1}));
        assert_eq!(db.ok(&["audit", "list"]), "no audit entries\n");
    }

    async fn events_prints_a_json_line_per_transition_made_by_another_process(db: migrated) {
        let follower = db.spawn(&["events", "--count", "2", "--event", "enqueued"]);
        // The follower subscribes on start; enqueue until it has seen two (it may start late).
        let mut ids = Vec::new();
        while !follower.is_finished() && ids.len() < 200 {
            ids.push(db.enqueue("report.build", EnqueueOptions::new()).await);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let out = follower.join().expect("the follower").ok();
        let lines: Vec<Value> = out.lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect();
        assert_eq!(lines.len(), 2);
        for line in &lines {
            assert_eq!(line["event"], "enqueued");
            assert_eq!(line["job"]["task"], "report.build");
            assert!(ids.contains(&line["job"]["id"].as_i64().expect("an id")));
        }
        assert!(lines[0]["job"]["id"].as_i64() < lines[1]["job"]["id"].as_i64());
    }

    async fn events_refuses_an_unknown_event_name(db: migrated) {
        assert_eq!(
            db.run(&["events", "--event", "exploded"]).error(),
            "invalid option: unknown event \"exploded\": expected one of enqueued, started, noted, finished, failed, retried, snoozed, rescued, removed"
        );
    }
}
