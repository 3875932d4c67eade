//! The `underling` binary over TLS: a job enqueued with the CLI on a `sslmode=verify-full`
//! connection, performed by the library, and shown finished by the CLI; a wrong CA and a bogus
//! `sslmode` are one clear `error:` line without the password.
//!
//! Against the server of `scripts/ensure-tls-postgres.sh` (`UNDERLING_TLS_TEST_URL`,
//! `UNDERLING_TLS_CA`, `UNDERLING_TLS_WRONG_CA`): a failure under CI when it is not reachable,
//! a loud skip elsewhere.

mod support;

use serde_json::json;
use support::{TempDir, run_in};
use underling::{ConnectOptions, JobContext, Queue, Registry, Task, TaskResult};

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

/// `test.double`: `{"n": n}` → `{"doubled": 2n}`.
struct Double;

#[underling::async_trait]
impl Task for Double {
    type Args = serde_json::Value;
    fn name(&self) -> &'static str {
        "test.double"
    }
    async fn run(&self, _ctx: &JobContext, args: serde_json::Value) -> TaskResult {
        Ok(json!({ "doubled": args["n"].as_i64().unwrap_or(0) * 2 }))
    }
}

#[tokio::test]
async fn a_job_goes_through_the_cli_over_verify_full_and_bad_tls_settings_are_one_error_line() {
    let base = env_or(
        "UNDERLING_TLS_TEST_URL",
        "postgres://postgres@localhost:5433/test",
    );
    let ca = env_or("UNDERLING_TLS_CA", "/var/lib/underling-tls/ca.crt");
    let wrong_ca = env_or(
        "UNDERLING_TLS_WRONG_CA",
        "/var/lib/underling-tls/wrong-ca.crt",
    );
    let url = format!("{base}?sslmode=verify-full&sslrootcert={ca}");
    let schema = format!("t_cli_tls_{}", std::process::id());
    let dir = TempDir::new();
    let cli = |database: &str, args: &[&str]| {
        let mut all = vec!["--database", database, "--schema", &schema];
        all.extend_from_slice(args);
        run_in(dir.path(), &all, &[])
    };

    let migrate = cli(&url, &["migrate"]);
    if migrate.code != 0 && migrate.stderr.contains("error: cannot connect to") {
        if std::env::var_os("CI").is_some() {
            panic!(
                "PostgreSQL with TLS is required in CI but {url} failed: {}",
                migrate.stderr
            );
        }
        eprintln!(
            "\n!!!! SKIPPING the CLI's TLS test: {url} is not reachable ({}).\n\
             !!!! Run `bash scripts/ensure-tls-postgres.sh` (as root) or set UNDERLING_TLS_TEST_URL and UNDERLING_TLS_CA.\n",
            migrate.stderr.trim_end()
        );
        return;
    }
    migrate.ok();

    let job = cli(
        &url,
        &[
            "job",
            "enqueue",
            "test.double",
            "--args",
            r#"{"n": 21}"#,
            "--json",
        ],
    )
    .json();
    let id = job["id"].as_i64().expect("the job's id");

    let queue = Queue::connect_with(ConnectOptions::new(&url).schema(&schema))
        .await
        .expect("the library connects with the same URL");
    let mut registry = Registry::new();
    registry.register(Double).expect("register test.double");
    assert_eq!(
        underling::perform_jobs(&queue, &registry, &[])
            .await
            .unwrap(),
        1
    );

    let shown = cli(&url, &["job", "show", &id.to_string(), "--json"]).json();
    assert_eq!(shown["state"], "finished", "{shown}");
    assert_eq!(shown["result"], json!({"doubled": 42}), "{shown}");

    // A wrong CA, with a password in the URL: one line, the password masked.
    let with_password = base.replacen("postgres://postgres@", "postgres://postgres:secret@", 1);
    let wrong = format!("{with_password}?sslmode=verify-full&sslrootcert={wrong_ca}");
    let masked = underling::mask_password(&wrong);
    assert!(!masked.contains("secret"));
    assert_eq!(
        cli(&wrong, &["stats"]).error(),
        format!(
            "cannot connect to {masked}: the server's TLS certificate was rejected: it is not signed by the certificate authority in sslrootcert={wrong_ca} (sslmode=verify-full); give the CA that issued the server's certificate"
        )
    );
    let bogus = format!("{with_password}?sslmode=bogus");
    assert_eq!(
        cli(&bogus, &["stats"]).error(),
        format!(
            "invalid sslmode for {}: \"bogus\" is not an sslmode; use disable, allow, prefer, require, verify-ca or verify-full",
            underling::mask_password(&bogus)
        )
    );

    let underling::Pool::Postgres(pool) = queue.pool() else {
        panic!("a PostgreSQL pool");
    };
    let sql = format!("DROP SCHEMA \"{schema}\" CASCADE");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .execute(&pool)
        .await
        .unwrap();
    queue.close().await;
}
