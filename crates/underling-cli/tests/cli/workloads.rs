//! `underling workload …`, end to end on both backends: add, list, show and remove, with
//! tables and `--json`; bad input changes nothing.

use serde_json::json;

use crate::*;

on_both! {
    async fn workload_add_stores_a_workload_that_list_and_show_print(db: migrated) {
        assert_eq!(
            db.ok(&["workload", "add", "video.transcode", "http://127.0.0.1:9000/jobs", "--mode", "async",
                "--timeout", "5s", "--lease", "10m", "--max-concurrency", "4",
                "--header", "Authorization: Bearer ${TRANSCODER_TOKEN}"]),
            "added workload video.transcode (async, http://127.0.0.1:9000/jobs): workers that start from now on run its jobs\n"
        );
        db.ok(&["workload", "add", "image.resize", "http://127.0.0.1:9001/"]);
        let table = rows(&db.ok(&["workload", "list"]));
        assert_eq!(table[0], ["NAME", "MODE", "URL", "TIMEOUT", "CONCURRENCY", "LEASE", "HEADERS"]);
        assert_eq!(table[1], ["image.resize", "sync", "http://127.0.0.1:9001/", "30s", "10", "-", "-"]);
        assert_eq!(table[2], ["video.transcode", "async", "http://127.0.0.1:9000/jobs", "5s", "4", "10m", "Authorization"]);

        let listed = db.json(&["workload", "list"]);
        assert_eq!(listed.as_array().map(Vec::len), Some(2));
        let mut shown = db.json(&["workload", "show", "video.transcode"]);
        for key in ["created", "updated"] {
            let time = shown.as_object_mut().unwrap().remove(key).unwrap_or_else(|| panic!("no {key}"));
            rfc3339(time.as_str().unwrap());
        }
        assert_eq!(shown, json!({
            "name": "video.transcode", "url": "http://127.0.0.1:9000/jobs", "mode": "async",
            "timeout": "5s", "max_concurrency": 4, "lease": "10m",
            "headers": {"Authorization": "Bearer ${TRANSCODER_TOKEN}"},
            "max_response_bytes": 10485760
        }));
        let text = db.ok(&["workload", "show", "video.transcode"]);
        assert_eq!(field(&text, "mode"), "async");
        assert_eq!(field(&text, "header"), "Authorization: Bearer ${TRANSCODER_TOKEN}");
    }

    async fn workload_add_with_token_env_stores_the_variable_and_remove_revokes_the_token(db: migrated) {
        db.ok(&["workload", "add", "w", "http://127.0.0.1:9000/", "--token-env", "W_TOKEN"]);
        let shown = db.json(&["workload", "show", "w"]);
        assert_eq!(shown["token_env"], json!("W_TOKEN"));
        assert_eq!(field(&db.ok(&["workload", "show", "w"]), "token env"), "W_TOKEN");
        db.ok(&["workload", "token", "w"]);
        assert_eq!(
            db.ok(&["workload", "remove", "w"]),
            "removed workload w and revoked its token (running workers keep it until they restart)\n"
        );
        assert_eq!(db.json(&["workload", "token", "w", "--revoke"]), json!({"name": "w", "revoked": false}));
    }

    async fn workload_remove_forgets_it_and_an_unknown_name_is_an_error(db: migrated) {
        db.ok(&["workload", "add", "w", "http://127.0.0.1:9000/"]);
        assert_eq!(db.json(&["workload", "remove", "w"]), json!({"name": "w", "removed": true}));
        assert_eq!(db.ok(&["workload", "list"]), "no workloads stored (underling workload add NAME URL)\n");
        assert_eq!(db.run(&["workload", "remove", "w"]).error(), "workload \"w\" not found");
        assert_eq!(db.run(&["workload", "show", "w"]).error(), "workload \"w\" not found");
    }

    async fn workload_add_refuses_bad_input_and_changes_nothing(db: migrated) {
        db.ok(&["workload", "add", "w", "http://127.0.0.1:9000/"]);
        let before = db.json(&["workload", "list"]);
        let cases: [(&[&str], &str); 6] = [
            (&["workload", "add", "x", "ftp://h/"],
             "invalid option: workload \"x\": invalid url \"ftp://h/\": the scheme must be http or https"),
            (&["workload", "add", "x", "http://h/", "--mode", "later"],
             "invalid option: unknown workload mode \"later\": expected sync or async"),
            (&["workload", "add", "x", "http://h/", "--mode", "async", "--timeout", "1m", "--lease", "30s"],
             "invalid option: workload \"x\": the lease (30s) must be longer than the timeout (1m)"),
            (&["workload", "add", "x", "http://h/", "--header", "Authorization Bearer"],
             "a header is `Name: value`, got \"Authorization Bearer\""),
            (&["workload", "add", "x", "http://h/", "--max-concurrency", "0"],
             "invalid option: workload \"x\": max_concurrency must be 1 to 10000, got 0"),
            (&["workload", "add", "w", "http://other/"],
             "workload \"w\" exists already (remove it first, or replace it)"),
        ];
        for (args, message) in cases {
            assert_eq!(db.run(args).error(), message, "{args:?}");
        }
        let usage = db.run(&["workload", "add", "x", "http://h/", "--timeout", "soon"]).usage_error();
        assert!(usage.contains("invalid value 'soon' for '--timeout <DURATION>'"), "{usage}");
        assert_eq!(db.json(&["workload", "list"]), before);
        db.ok(&["workload", "add", "w", "http://other/", "--replace"]);
        assert_eq!(db.json(&["workload", "show", "w"])["url"], "http://other/");
    }
}
