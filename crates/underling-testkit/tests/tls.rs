//! TLS to PostgreSQL: `sslmode` and `sslrootcert` read from the URL as libpq reads them, jobs
//! run over verified connections, and every bad input refused with an error that names what to
//! change — never with the password in it.
//!
//! Against the server of `scripts/ensure-tls-postgres.sh` (see `underling_testkit::tls_server`):
//! a failure under CI when it is not reachable, a loud skip elsewhere. The tests of bad input
//! that is refused before connecting need no server.
//!
//! Run them alone with `cargo test -p underling-testkit --test tls`.

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use underling::{ConnectOptions, EnqueueOptions, Error, JobState, Queue};
use underling_testkit as common;

/// Connects to `url` in a fresh schema, migrates it, runs one job from enqueue to finish and
/// checks that the queue's connections are encrypted. Drops the schema afterwards.
async fn run_a_job_over(url: &str) {
    let schema = common::unique_schema();
    let queue = Queue::connect_with(
        ConnectOptions::new(url)
            .schema(&schema)
            .migrate(true)
            .max_connections(4),
    )
    .await
    .unwrap_or_else(|e| panic!("connect to {url}: {e}"));
    let id = queue
        .enqueue("test.double", json!({"n": 21}), EnqueueOptions::new())
        .await
        .unwrap();
    let ran = underling::perform_jobs(&queue, &common::tasks::simple(), &[])
        .await
        .unwrap();
    assert_eq!(ran, 1);
    let job = queue.job(id).await.unwrap().expect("the job");
    assert_eq!(job.state, JobState::Finished);
    assert_eq!(job.result, Some(json!({"doubled": 42})));

    let underling::Pool::Postgres(pool) = queue.pool() else {
        panic!("a PostgreSQL pool");
    };
    let ssl: bool = sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(ssl, "the queue's connection is not encrypted");
    let sql = format!("DROP SCHEMA \"{schema}\" CASCADE");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .execute(&pool)
        .await
        .unwrap();
    queue.close().await;
}

/// The error of connecting (and migrating) with `url`.
async fn connect_error(url: &str) -> Error {
    match Queue::connect_with(
        ConnectOptions::new(url)
            .schema(common::unique_schema())
            .migrate(true),
    )
    .await
    {
        Ok(_) => panic!("{url} connected"),
        Err(e) => e,
    }
}

// -- connecting over TLS ----------------------------------------------------------------------

#[tokio::test]
async fn sslmode_require_runs_a_job_over_an_encrypted_connection() {
    let Some(server) = common::tls_server().await else {
        return;
    };
    run_a_job_over(&server.with("sslmode=require")).await;
}

#[tokio::test]
async fn sslmode_verify_full_with_the_servers_ca_runs_a_job() {
    let Some(server) = common::tls_server().await else {
        return;
    };
    run_a_job_over(&server.with(&format!("sslmode=verify-full&sslrootcert={}", server.ca))).await;
    // The certificate names 127.0.0.1 too.
    let url = server.on_host(
        "127.0.0.1",
        &format!("sslmode=verify-full&sslrootcert={}", server.ca),
    );
    run_a_job_over(&url).await;
}

#[tokio::test]
async fn sslmode_verify_ca_does_not_check_the_host_name() {
    let Some(server) = common::tls_server().await else {
        return;
    };
    let url = server.on_host(
        "127.0.0.2",
        &format!("sslmode=verify-ca&sslrootcert={}", server.ca),
    );
    run_a_job_over(&url).await;
}

#[tokio::test]
async fn sslmode_allow_falls_back_to_tls_when_the_server_requires_it() {
    let Some(server) = common::tls_server().await else {
        return;
    };
    run_a_job_over(&server.database("tls_only", "sslmode=allow")).await;
}

// -- certificates that do not verify ----------------------------------------------------------

#[tokio::test]
async fn a_server_certificate_from_another_ca_is_rejected_naming_the_ca_file() {
    let Some(server) = common::tls_server().await else {
        return;
    };
    let url = server.with(&format!(
        "sslmode=verify-full&sslrootcert={}",
        server.wrong_ca
    ));
    let err = connect_error(&url).await;
    assert!(matches!(err, Error::TlsCertificate { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "cannot connect to {url}: the server's TLS certificate was rejected: it is not signed by the certificate authority in sslrootcert={} (sslmode=verify-full); give the CA that issued the server's certificate",
            server.wrong_ca
        )
    );
}

#[tokio::test]
async fn sslmode_require_with_sslrootcert_verifies_the_certificate_as_libpq_does() {
    let Some(server) = common::tls_server().await else {
        return;
    };
    let url = server.with(&format!("sslmode=require&sslrootcert={}", server.wrong_ca));
    let err = connect_error(&url).await;
    assert!(matches!(err, Error::TlsCertificate { .. }), "{err:?}");
    assert!(err.to_string().contains("(sslmode=verify-ca)"), "{err}");
    run_a_job_over(&server.with(&format!("sslmode=require&sslrootcert={}", server.ca))).await;
}

#[tokio::test]
async fn verify_full_without_sslrootcert_rejects_a_private_ca() {
    let Some(server) = common::tls_server().await else {
        return;
    };
    let url = server.with("sslmode=verify-full");
    let err = connect_error(&url).await;
    assert!(matches!(err, Error::TlsCertificate { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "cannot connect to {url}: the server's TLS certificate was rejected: it is not signed by a publicly trusted certificate authority (sslmode=verify-full); give your server's CA with sslrootcert=/path/to/ca.crt"
        )
    );
}

#[tokio::test]
async fn verify_full_rejects_a_host_name_the_certificate_does_not_name() {
    let Some(server) = common::tls_server().await else {
        return;
    };
    let url = server.on_host(
        "127.0.0.2",
        &format!("sslmode=verify-full&sslrootcert={}", server.ca),
    );
    let err = connect_error(&url).await;
    assert!(matches!(err, Error::TlsCertificate { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.starts_with(&format!(
            "cannot connect to {url}: the server's TLS certificate was rejected: certificate not valid for name \"127.0.0.2\""
        )),
        "{message}"
    );
    assert!(
        message.ends_with("(sslmode=verify-full checks the host name: connect with a host name the certificate lists, or use sslmode=verify-ca)"),
        "{message}"
    );
}

// -- servers that want TLS, or do not offer it ------------------------------------------------

#[tokio::test]
async fn sslmode_disable_against_a_server_that_requires_tls_says_so() {
    let Some(server) = common::tls_server().await else {
        return;
    };
    let url = server.database("tls_only", "sslmode=disable");
    let err = connect_error(&url).await;
    assert!(matches!(err, Error::TlsRequired { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "cannot connect to {url}: the server requires TLS for this connection (no pg_hba.conf entry for host \"127.0.0.1\", user \"postgres\", database \"tls_only\", no encryption); use sslmode=require or verify-full instead of sslmode=disable"
        )
    );
}

/// A server that answers every TLS request with `N` (no TLS) and then hangs up.
async fn server_without_tls() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut request = [0u8; 8];
            if socket.read_exact(&mut request).await.is_ok() {
                let _ = socket.write_all(b"N").await;
            }
        }
    });
    port
}

#[tokio::test]
async fn sslmode_require_against_a_server_without_tls_says_so() {
    let port = server_without_tls().await;
    let url = format!("postgres://app:secret@127.0.0.1:{port}/jobs?sslmode=require");
    let err = connect_error(&url).await;
    assert!(matches!(err, Error::TlsUnsupported { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "cannot connect to postgres://app:***@127.0.0.1:{port}/jobs?sslmode=require: the server does not accept TLS connections, but sslmode=require requires TLS (turn on ssl in the server, or lower sslmode)"
        )
    );
}

// -- bad input, refused before connecting (no server needed) ---------------------------------

/// Nothing listens on port 1: an error other than `Connect` was found before connecting.
const NOWHERE: &str = "postgres://app:secret@127.0.0.1:1/jobs";
const NOWHERE_MASKED: &str = "postgres://app:***@127.0.0.1:1/jobs";

#[tokio::test]
async fn an_unknown_sslmode_is_refused_naming_the_parameter() {
    let err = connect_error(&format!("{NOWHERE}?sslmode=bogus")).await;
    assert!(matches!(err, Error::InvalidUrlParameter { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "invalid sslmode for {NOWHERE_MASKED}?sslmode=bogus: \"bogus\" is not an sslmode; use disable, allow, prefer, require, verify-ca or verify-full"
        )
    );
}

#[tokio::test]
async fn a_missing_sslrootcert_file_is_named() {
    let url = format!("{NOWHERE}?sslmode=verify-full&sslrootcert=/nonexistent/ca.crt");
    let err = connect_error(&url).await;
    assert!(matches!(err, Error::TlsFile { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "the sslrootcert file /nonexistent/ca.crt does not exist (in {NOWHERE_MASKED}?sslmode=verify-full&sslrootcert=/nonexistent/ca.crt): give the path of a readable PEM file"
        )
    );
}

#[tokio::test]
async fn an_sslrootcert_without_a_pem_certificate_is_refused() {
    let file = std::env::temp_dir().join(format!("underling-{}.crt", common::unique_schema()));
    std::fs::write(&file, "not a certificate\n").unwrap();
    let url = format!("{NOWHERE}?sslmode=verify-ca&sslrootcert={}", file.display());
    let err = connect_error(&url).await;
    std::fs::remove_file(&file).unwrap();
    assert!(matches!(err, Error::TlsFile { .. }), "{err:?}");
    assert!(
        err.to_string().starts_with(&format!(
            "the sslrootcert file {} holds no PEM certificate (a \"-----BEGIN CERTIFICATE-----\" block) (in ",
            file.display()
        )),
        "{err}"
    );
}

#[tokio::test]
async fn sslcert_without_sslkey_is_refused() {
    let Some(server) = common::tls_server().await else {
        return;
    };
    // Any readable PEM certificate will do: it is refused before it is used.
    let err = connect_error(&format!("{NOWHERE}?sslmode=require&sslcert={}", server.ca)).await;
    assert!(matches!(err, Error::InvalidUrlParameter { .. }), "{err:?}");
    assert!(
        err.to_string()
            .ends_with(": a client certificate needs both sslcert and sslkey; add sslkey (the private key file)"),
        "{err}"
    );
}

#[tokio::test]
async fn an_unsupported_ssl_parameter_is_refused_rather_than_ignored() {
    let err = connect_error(&format!(
        "{NOWHERE}?sslmode=verify-full&sslcrl=/etc/crl.pem"
    ))
    .await;
    assert!(matches!(err, Error::InvalidUrlParameter { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "invalid sslcrl for {NOWHERE_MASKED}?sslmode=verify-full&sslcrl=/etc/crl.pem: this parameter is not supported by underling's PostgreSQL driver (it supports sslmode, sslrootcert, sslcert and sslkey); remove it"
        )
    );
}

#[tokio::test]
async fn a_password_in_the_query_is_masked_too() {
    let err = connect_error("postgres://app@127.0.0.1:1/jobs?password=secret&sslmode=bogus").await;
    let message = err.to_string();
    assert!(!message.contains("secret"), "{message}");
    assert!(
        message.starts_with(
            "invalid sslmode for postgres://app@127.0.0.1:1/jobs?password=***&sslmode=bogus: "
        ),
        "{message}"
    );
}
