//! Global options, connection errors and usage errors.

use underling::EnqueueOptions;

use crate::support::{TempDir, run_in};
use crate::*;

on_both! {
    // -- global options -------------------------------------------------------------------------

    async fn the_database_and_schema_can_come_from_the_environment(db: migrated) {
        let id = db.enqueue("t", EnqueueOptions::new()).await;
        let out = db.run_with_env(&["job", "show", &id.to_string(), "--json"]).json();
        assert_eq!(out["id"], id);
    }

    async fn the_pool_size_comes_from_the_flag_or_the_environment_and_zero_is_refused(db: migrated) {
        db.enqueue("t", EnqueueOptions::new()).await;
        assert_eq!(field(&db.ok(&["--pool-size", "5", "stats"]), "inactive jobs"), "1");
        assert_eq!(field(&db.ok(&["stats", "--pool-size", "1"]), "inactive jobs"), "1");
        let stderr = db.run(&["--pool-size", "0", "stats"]).usage_error();
        assert!(stderr.contains("invalid value '0' for '--pool-size <N>'"), "{stderr}");
        let mut args: Vec<String> = db.flags();
        args.push("stats".to_string());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let from_env = run_in(db.dir.path(), &args, &[("UNDERLING_POOL_SIZE", "0")]).usage_error();
        assert!(from_env.contains("invalid value '0' for '--pool-size <N>'"), "{from_env}");
        let ok = run_in(db.dir.path(), &args, &[("UNDERLING_POOL_SIZE", "3")]).ok();
        assert_eq!(field(&ok, "inactive jobs"), "1");
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

#[test]
fn logs_follow_underling_log_then_rust_log_without_colour_and_in_json_on_request() {
    let dir = TempDir::new();
    let url = format!("sqlite://{}/jobs.db", dir.path().display());
    assert_eq!(
        run_in(dir.path(), &["--database", &url, "migrate"], &[]).code,
        0
    );
    let list = ["--database", url.as_str(), "job", "list"];
    // No variable: no logs at all, only the answer.
    let quiet = run_in(dir.path(), &list, &[]);
    assert_eq!(
        (quiet.stdout.as_str(), quiet.stderr.as_str()),
        ("no jobs\n", "")
    );
    for var in ["UNDERLING_LOG", "RUST_LOG"] {
        let run = run_in(dir.path(), &list, &[(var, "debug")]);
        assert_eq!(run.stdout, "no jobs\n");
        assert!(run.stderr.contains("DEBUG"), "{var}: {}", run.stderr);
        assert!(
            !run.stderr.contains('\u{1b}'),
            "no ANSI escapes on a pipe: {:?}",
            run.stderr
        );
    }
    let mut json_list = list.to_vec();
    json_list.extend(["--log-format", "json"]);
    let run = run_in(dir.path(), &json_list, &[("UNDERLING_LOG", "debug")]);
    assert!(!run.stderr.is_empty());
    for line in run.stderr.lines() {
        let value: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert_eq!(value["level"], "DEBUG", "{line}");
    }
}

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
fn a_bad_schema_name_says_invalid_once() {
    let dir = TempDir::new();
    let message = run_in(
        dir.path(),
        &[
            "--database",
            "postgres://app@127.0.0.1:1/jobs",
            "--schema",
            "1x",
            "stats",
        ],
        &[],
    )
    .error();
    assert_eq!(
        message,
        "invalid option: the schema name \"1x\" must be 1 to 63 letters, digits and \
         underscores, not starting with a digit"
    );
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
    let run = run_in(dir.path(), &["migrate"], &[]);
    assert_eq!(
        run.stderr,
        "note: using the default database sqlite://underling.db; set --database or \
         UNDERLING_DATABASE_URL\n"
    );
    let out = run.ok();
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

#[test]
fn bench_scale_on_sqlite_is_refused_with_one_line() {
    let dir = TempDir::new();
    let run = run_in(
        dir.path(),
        &[
            "--database",
            "sqlite://scale.db",
            "bench",
            "--scale",
            "--quick",
        ],
        &[],
    );
    assert_eq!(
        run.error(),
        "bench --scale measures PostgreSQL only: give a postgres:// URL"
    );
}

/// The password of the URLs below (PostgreSQL's trust auth ignores it).
const PASSWORD: &str = "s3cret-pass";

#[test]
fn commands_with_a_password_in_the_database_url_never_print_or_log_it_even_at_debug() {
    let base = crate::support::postgres_url();
    let Some(url) = base
        .strip_prefix("postgres://postgres@")
        .map(|rest| format!("postgres://postgres:{PASSWORD}@{rest}"))
    else {
        panic!(
            "UNDERLING_TEST_DATABASE_URL must start with postgres://postgres@ for this test: {base}"
        );
    };
    let schema = format!("cli_password_{}", std::process::id());
    let dir = TempDir::new();
    let debug = [("UNDERLING_LOG", "debug")];
    let flags = ["--database", url.as_str(), "--schema", schema.as_str()];
    let run = |args: &[&str]| {
        let all: Vec<&str> = flags.iter().chain(args).copied().collect();
        run_in(dir.path(), &all, &debug)
    };
    let migrated = run(&["migrate"]);
    if migrated.code != 0 && std::env::var_os("CI").is_none() {
        eprintln!(
            "!!!! SKIPPING: PostgreSQL is not reachable: {}",
            migrated.stderr
        );
        return;
    }
    let runs = [
        migrated,
        run(&["job", "enqueue", "underling.echo", "--args", "{}"]),
        run(&["job", "list"]),
        run(&["stats"]),
        // An error that names the schema's database.
        run(&["job", "show", "999999"]),
    ];
    let queues = run(&["--json", "queue", "list"]);
    let drop = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(async {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(&base).await?;
            let sql = format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE");
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&mut conn)
                .await?;
            conn.close().await
        });
    for (i, run) in runs.iter().chain([&queues]).enumerate() {
        assert_eq!(
            run.code,
            if i == 4 { 1 } else { 0 },
            "run {i}: {}",
            run.stderr
        );
        assert!(!run.stdout.contains(PASSWORD), "run {i}: {}", run.stdout);
        assert!(!run.stderr.contains(PASSWORD), "run {i}: {}", run.stderr);
    }
    assert!(
        runs[0].stderr.contains("DEBUG"),
        "debug lines were logged: {}",
        runs[0].stderr
    );
    drop.expect("drop the test schema");
}

#[test]
fn an_unreachable_database_logged_at_debug_shows_no_password() {
    let dir = TempDir::new();
    let url = format!("postgres://app:{PASSWORD}@127.0.0.1:1/jobs");
    let run = run_in(
        dir.path(),
        &["--database", &url, "job", "list"],
        &[("UNDERLING_LOG", "debug")],
    );
    assert_ne!(run.code, 0);
    assert!(
        run.stderr
            .contains("cannot connect to postgres://app:***@127.0.0.1:1/jobs: "),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains(PASSWORD), "{}", run.stderr);
    assert!(!run.stdout.contains(PASSWORD), "{}", run.stdout);
}

/// PgBouncer in transaction mode (`scripts/ensure-pgbouncer.sh`) at `UNDERLING_PGBOUNCER_URL`,
/// when it accepts a TCP connection; `None` (loudly) elsewhere, a panic under CI.
fn pgbouncer_url() -> Option<String> {
    let url = std::env::var("UNDERLING_PGBOUNCER_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:6432/test".to_string());
    let address = url
        .split('@')
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or("127.0.0.1:6432")
        .to_string();
    match std::net::TcpStream::connect(&address) {
        Ok(_) => Some(url),
        Err(e) if std::env::var_os("CI").is_some() => {
            panic!(
                "PgBouncer is required in CI but {url} is not reachable: {e} (run scripts/ensure-pgbouncer.sh)"
            )
        }
        Err(e) => {
            eprintln!(
                "!!!! SKIPPING: PgBouncer is not reachable at {url}: {e} (run scripts/ensure-pgbouncer.sh)"
            );
            None
        }
    }
}

#[test]
fn with_pgbouncer_jobs_are_enqueued_and_listed_through_it_and_migrate_is_refused() {
    let Some(bouncer) = pgbouncer_url() else {
        return;
    };
    let direct = crate::support::postgres_url();
    let schema = format!("cli_pgbouncer_{}", std::process::id());
    let dir = TempDir::new();
    let migrated = run_in(
        dir.path(),
        &["--database", &direct, "--schema", &schema, "migrate"],
        &[],
    );
    let through = |args: &[&str]| {
        let flags = ["--pgbouncer", "--database", &bouncer, "--schema", &schema];
        let all: Vec<&str> = flags.iter().copied().chain(args.iter().copied()).collect();
        run_in(dir.path(), &all, &[])
    };
    let enqueued = through(&["--json", "job", "enqueue", "underling.echo", "--args", "{}"]);
    let listed = through(&["--json", "job", "list"]);
    let refused = through(&["migrate"]);
    let from_env = run_in(
        dir.path(),
        &[
            "--database",
            &bouncer,
            "--schema",
            &schema,
            "--json",
            "job",
            "list",
        ],
        &[("UNDERLING_PGBOUNCER", "1")],
    );
    let drop = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(async {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(&direct).await?;
            let sql = format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE");
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&mut conn)
                .await?;
            conn.close().await
        });
    assert_eq!(migrated.code, 0, "{}", migrated.stderr);
    assert_eq!(enqueued.code, 0, "{}", enqueued.stderr);
    let id =
        serde_json::from_str::<serde_json::Value>(&enqueued.stdout).expect("JSON")["id"].clone();
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    let list: serde_json::Value = serde_json::from_str(&listed.stdout).expect("JSON");
    assert_eq!(listed_ids(&list), vec![id.as_i64().expect("an id")]);
    assert_eq!(from_env.code, 0, "{}", from_env.stderr);
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(
        refused
            .stderr
            .contains("migrations cannot run through PgBouncer in transaction mode"),
        "{}",
        refused.stderr
    );
    drop.expect("drop the test schema");
}
