//! Opening SQLite: files (WAL) or memory, and migrations.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};

use crate::error::{Error, Result};
use crate::model::AppliedMigration;
use crate::queue::ConnectOptions;
use crate::store::{migrate, statement};
use crate::url::mask_password;

/// The migrations for SQLite, embedded at build time.
pub(super) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/sqlite");

/// Opens `sqlite://path` (created if missing, WAL) or `sqlite::memory:` (one connection, so that
/// the whole pool shares one database).
///
/// Unless `opts.migrate`, a database file that does not exist is an error
/// ([`Error::DatabaseMissing`]) and no file is left behind.
pub(super) async fn open(opts: &ConnectOptions) -> Result<SqlitePool> {
    if opts.schema.is_some() {
        return Err(Error::InvalidOption(
            "a schema can only be given for PostgreSQL".into(),
        ));
    }
    let url = &opts.url;
    let masked = mask_password(url);
    let options = SqliteConnectOptions::from_str(url).map_err(|e| Error::InvalidUrl {
        url: masked.clone(),
        reason: e.to_string(),
    })?;
    let in_memory = url.contains(":memory:") || url.contains("mode=memory");
    if !opts.migrate && !in_memory && !options.get_filename().exists() {
        return Err(Error::DatabaseMissing {
            path: options.get_filename().display().to_string(),
        });
    }
    let options = options
        .create_if_missing(true)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(30));
    let (options, pool_options) = if in_memory {
        (
            options,
            // An in-memory database lives as long as its connection: keep exactly one.
            SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None),
        )
    } else {
        (
            options
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal),
            SqlitePoolOptions::new().max_connections(opts.max_connections.max(1)),
        )
    };
    pool_options
        .acquire_timeout(Duration::from_secs(30))
        .test_before_acquire(false)
        .connect_with(options)
        .await
        .map_err(|source| Error::Connect {
            url: masked,
            source,
        })
}

/// The migrations recorded as applied, or `None` when there is no migrations table.
pub(super) async fn applied_versions(conn: &mut SqliteConnection) -> Result<Option<Vec<i64>>> {
    let exists: i64 = sqlx::query_scalar(statement!("has_migrations"))
        .fetch_one(&mut *conn)
        .await?;
    if exists == 0 {
        return Ok(None);
    }
    let versions: Vec<i64> = sqlx::query_scalar(statement!("applied_migrations"))
        .fetch_all(&mut *conn)
        .await?;
    Ok(Some(versions))
}

/// Applies pending migrations. The whole run holds SQLite's write lock (`BEGIN IMMEDIATE`; the
/// migrator's own transactions become savepoints), so processes starting together take turns
/// and each migration is applied, and reported, once.
pub(super) async fn migrate(pool: &SqlitePool) -> Result<Vec<AppliedMigration>> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let before = applied_versions(&mut tx).await?.unwrap_or_default();
    migrate::migrator(&MIGRATOR)
        .run_direct(None, &mut *tx, false)
        .await?;
    tx.commit().await?;
    Ok(migrate::newly_applied(&MIGRATOR, &before))
}
