//! Connecting and migrating: clear errors for wrong URLs and unmigrated databases (plain tests:
//! each is about one backend's URLs, files or schemas).

use std::time::{Duration, Instant};

use underling::{ConnectOptions, Error, Queue};
use underling_testkit as common;

#[tokio::test]
async fn url_with_an_unknown_scheme_is_refused_with_the_password_masked() {
    let err = Queue::connect("mysql://app:secret@db/jobs")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidUrl { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.starts_with("invalid database URL \"mysql://app:***@db/jobs\": unknown scheme"),
        "{message}"
    );
    assert!(!message.contains("secret"), "{message}");
}

#[tokio::test]
async fn unreachable_postgres_is_a_connect_error_with_the_password_masked() {
    let started = Instant::now();
    let err = Queue::connect("postgres://app:secret@127.0.0.1:1/jobs")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.starts_with("cannot connect to postgres://app:***@127.0.0.1:1/jobs: "),
        "{message}"
    );
    assert!(!message.contains("secret"), "{message}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn sqlite_without_migrations_is_not_migrated() {
    let err = Queue::connect("sqlite::memory:").await.unwrap_err();
    assert!(matches!(err, Error::NotMigrated(_)), "{err:?}");
}

#[tokio::test]
async fn postgres_schema_without_migrations_is_not_migrated() {
    let Some(db) = common::postgres().await else {
        return;
    };
    let opts = ConnectOptions::new(common::postgres_url()).schema(common::unique_schema());
    let err = Queue::connect_with(opts).await.unwrap_err();
    assert!(matches!(err, Error::NotMigrated(_)), "{err:?}");
    assert_eq!(
        err.to_string(),
        "the database is not migrated: no underling tables were found (run `underling migrate` or call Queue::migrate())"
    );
    db.cleanup().await;
}

#[tokio::test]
async fn a_schema_cannot_be_given_for_sqlite() {
    let err = Queue::connect_with(
        ConnectOptions::new("sqlite::memory:")
            .schema("s")
            .migrate(true),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::InvalidOption(_)), "{err:?}");
    assert_eq!(
        err.to_string(),
        "invalid option: a schema can only be given for PostgreSQL"
    );
}

#[tokio::test]
async fn postgres_schema_name_must_be_a_plain_identifier() {
    let opts = ConnectOptions::new(common::postgres_url())
        .schema("x\"; DROP TABLE y; --")
        .migrate(true);
    let err = Queue::connect_with(opts).await.unwrap_err();
    assert!(matches!(err, Error::InvalidOption(_)), "{err:?}");
}

/// What a fresh database reports when migrated: every migration file of `backend`, once, in
/// order.
fn check_first_migration(backend: &str, applied: &[underling::AppliedMigration]) {
    let dir = format!("{}/../../migrations/{backend}", env!("CARGO_MANIFEST_DIR"));
    let mut expected: Vec<(i64, String)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter_map(|name| {
            let stem = name.strip_suffix(".sql")?;
            let (version, description) = stem.split_once('_')?;
            Some((version.parse().ok()?, description.replace('_', " ")))
        })
        .collect();
    expected.sort();
    let got: Vec<(i64, String)> = applied
        .iter()
        .map(|m| (m.version, m.description.clone()))
        .collect();
    assert_eq!(got, expected);
    assert_eq!(got[0], (1, "init".to_string()));
}

#[tokio::test]
async fn migrate_on_a_fresh_sqlite_database_reports_the_migrations_applied() {
    let store = underling::store::open(&ConnectOptions::new("sqlite::memory:"))
        .await
        .unwrap();
    let queue = Queue::from_store(store.clone());
    assert!(matches!(
        store.check_migrated().await,
        Err(Error::NotMigrated(_))
    ));
    check_first_migration("sqlite", &queue.migrate().await.unwrap());
    assert_eq!(queue.migrate().await.unwrap(), vec![]);
    store.check_migrated().await.unwrap();
}

#[tokio::test]
async fn migrate_on_a_fresh_postgres_schema_reports_the_migrations_applied() {
    let Some(db) = common::postgres().await else {
        return;
    };
    let schema = common::unique_schema();
    let opts = ConnectOptions::new(common::postgres_url())
        .schema(&schema)
        .max_connections(2);
    let store = underling::store::open(&opts).await.unwrap();
    let queue = Queue::from_store(store);
    check_first_migration("postgres", &queue.migrate().await.unwrap());
    assert_eq!(queue.migrate().await.unwrap(), vec![]);
    queue.close().await;
    common::drop_schema(&schema).await;
    db.cleanup().await;
}

/// Ten processes starting at once against one fresh store: every one succeeds and each
/// migration is applied exactly once.
async fn migrate_ten_at_once(url: &str, schema: Option<String>) -> Vec<Queue> {
    let mut handles = Vec::new();
    for _ in 0..10 {
        let mut opts = underling::ConnectOptions::new(url).max_connections(2);
        if let Some(schema) = &schema {
            opts = opts.schema(schema);
        }
        handles.push(tokio::spawn(async move {
            let queue = Queue::connect_unchecked(&opts.migrate(true)).await?;
            let applied = queue.migrate().await?;
            Ok::<_, Error>((queue, applied))
        }));
    }
    let mut queues = Vec::new();
    let mut versions = Vec::new();
    for handle in handles {
        let (queue, applied) = handle.await.unwrap().unwrap();
        versions.extend(applied.into_iter().map(|m| m.version));
        queues.push(queue);
    }
    versions.sort();
    let mut unique = versions.clone();
    unique.dedup();
    assert_eq!(versions, unique, "a migration was applied twice");
    assert!(!versions.is_empty());
    let mut opts = ConnectOptions::new(url);
    if let Some(schema) = &schema {
        opts = opts.schema(schema);
    }
    let store = underling::store::open(&opts).await.unwrap();
    store.check_migrated().await.unwrap();
    store.close().await;
    queues
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_workers_migrating_a_fresh_postgres_schema_at_once_all_succeed() {
    let Some(db) = common::postgres().await else {
        return;
    };
    let schema = common::unique_schema();
    let queues = migrate_ten_at_once(&common::postgres_url(), Some(schema.clone())).await;
    for queue in queues {
        queue.close().await;
    }
    common::drop_schema(&schema).await;
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_workers_migrating_a_fresh_sqlite_file_at_once_all_succeed() {
    let dir = std::env::temp_dir().join(format!("underling-migrate-{}", common::unique_schema()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}/jobs.db", dir.display());
    for queue in migrate_ten_at_once(&url, None).await {
        queue.close().await;
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn a_pool_size_in_the_url_sizes_the_pool_on_both_backends() {
    let file = common::TempSqlite::new("pool-size");
    let sqlite = Queue::connect_with(
        ConnectOptions::new(format!("{}?pool_size=3", file.url()))
            .max_connections(7)
            .migrate(true),
    )
    .await
    .expect("SQLite with a pool size");
    match sqlite.pool() {
        underling::Pool::Sqlite(pool) => assert_eq!(pool.options().get_max_connections(), 3),
        other => panic!("not a SQLite pool: {other:?}"),
    }
    sqlite.close().await;

    let url = format!("{}?pool_size=5", common::postgres_url());
    let schema = common::unique_schema();
    let postgres =
        match Queue::connect_with(ConnectOptions::new(&url).schema(&schema).migrate(true)).await {
            Ok(queue) => queue,
            Err(e) if std::env::var_os("CI").is_none() => {
                eprintln!("\n!!!! SKIPPING the PostgreSQL half: {url} is not reachable ({e}).\n");
                return;
            }
            Err(e) => panic!("PostgreSQL is required in CI: {e}"),
        };
    match postgres.pool() {
        underling::Pool::Postgres(pool) => assert_eq!(pool.options().get_max_connections(), 5),
        other => panic!("not a PostgreSQL pool: {other:?}"),
    }
    postgres.close().await;
    common::drop_schema(&schema).await;
}

#[tokio::test]
async fn a_bad_pool_size_in_the_url_is_refused_naming_it() {
    let err = Queue::connect("sqlite::memory:?pool_size=0")
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid option: the URL's pool_size must be a whole number of at least 1, got \"0\""
    );
}
