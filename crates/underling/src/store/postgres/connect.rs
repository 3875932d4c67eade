//! Connecting to PostgreSQL: URL and schema checks, the pool, and migrations.

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions, PgSslMode};

use crate::error::{Error, Result};
use crate::model::AppliedMigration;
use crate::queue::ConnectOptions;
use crate::store::{migrate, statement};
use crate::url::mask_password;

use super::tls;

/// The migrations for PostgreSQL, embedded at build time.
pub(super) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/postgres");

/// An advisory lock that serializes migrations across every process.
const MIGRATION_LOCK: i64 = 1970170217;

/// What connecting produced.
pub(super) struct Connected {
    pub(super) pool: PgPool,
    /// How to connect; the LISTEN connection is opened with these, outside the pool.
    pub(super) options: PgConnectOptions,
}

/// Connects to `opts.url`. With a schema, every pool connection has it on its search path.
pub(super) async fn connect(opts: &ConnectOptions) -> Result<Connected> {
    let masked = mask_password(&opts.url);
    let (mut options, mut tls) = tls::options_from_url(&opts.url, &masked)?;
    options = options.application_name("underling");
    if let Some(schema) = &opts.schema {
        validate_schema(schema)?;
        // Through PgBouncer the pool sets it per transaction instead: PgBouncer refuses the
        // `options` startup parameter.
        if !opts.pgbouncer {
            options = options.options([("search_path", schema.as_str())]);
        }
    }
    if opts.pgbouncer {
        options = crate::pgbouncer::connect_options(options);
    }
    // One direct connection first: a pool retries a refused connection until its acquire
    // timeout and then reports only that it timed out, losing the reason.
    let probe = match <PgConnection as sqlx::Connection>::connect_with(&options).await {
        // libpq's `allow`: without TLS first, then with TLS if the server insists on it
        // (sqlx's `allow` never tries TLS).
        Err(e)
            if matches!(tls.mode, PgSslMode::Allow) && tls::refused_without_tls(&e).is_some() =>
        {
            options = options.ssl_mode(tls.fall_back_to_tls());
            <PgConnection as sqlx::Connection>::connect_with(&options).await
        }
        other => other,
    }
    .map_err(|source| tls::connect_error(source, &masked, &tls))?;
    let _ = sqlx::Connection::close(probe).await;
    let pool = if opts.pgbouncer {
        crate::pgbouncer::pool_options(opts.schema.as_deref())?
    } else {
        PgPoolOptions::new()
    };
    let pool = pool
        .max_connections(opts.max_connections.max(2))
        .acquire_timeout(Duration::from_secs(10))
        // A ping before every query would double the round trips of the hot path.
        .test_before_acquire(false)
        .connect_with(options.clone())
        .await
        .map_err(|source| tls::connect_error(source, &masked, &tls))?;
    Ok(Connected { pool, options })
}

/// Schema names are spliced into SQL (quoted), so only plain identifiers are accepted.
pub(crate) fn validate_schema(schema: &str) -> Result<()> {
    let ok = !schema.is_empty()
        && schema.len() <= 63
        && schema
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !schema.starts_with(|c: char| c.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidOption(format!(
            "the schema name {schema:?} must be 1 to 63 letters, digits and underscores, not starting with a digit"
        )))
    }
}

/// The migrations applied so far, or `None` when there is no migrations table.
pub(super) async fn applied_versions(pool: &PgPool) -> Result<Option<Vec<i64>>> {
    let exists: bool = sqlx::query_scalar(statement!("has_migrations"))
        .fetch_one(pool)
        .await?;
    if !exists {
        return Ok(None);
    }
    let versions: Vec<i64> = sqlx::query_scalar(statement!("applied_migrations"))
        .fetch_all(pool)
        .await?;
    Ok(Some(versions))
}

/// Creates the schema and applies pending migrations, one process at a time: `CREATE SCHEMA
/// IF NOT EXISTS` races with itself, and sqlx's own lock only covers the migrations table.
pub(super) async fn migrate(pool: &PgPool, schema: Option<&str>) -> Result<Vec<AppliedMigration>> {
    let mut conn = pool.acquire().await?;
    // `IF NOT EXISTS` statements that find their object send a notice ("relation
    // \"underling_migrations\" already exists, skipping"), which sqlx logs at every start: they
    // say nothing worth reading here.
    sqlx::query("SET client_min_messages = warning")
        .execute(&mut *conn)
        .await?;
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *conn)
        .await?;
    let result = migrate_locked(pool, &mut conn, schema).await;
    // A session lock and setting outlive the statement: undo them before the connection goes
    // back to the pool, whatever happened.
    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *conn)
        .await?;
    sqlx::query("RESET client_min_messages")
        .execute(&mut *conn)
        .await?;
    result
}

async fn migrate_locked(
    pool: &PgPool,
    conn: &mut PgConnection,
    schema: Option<&str>,
) -> Result<Vec<AppliedMigration>> {
    if let Some(schema) = schema {
        // Checked by `validate_schema` when connecting.
        let sql = format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\"");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut *conn)
            .await?;
    }
    let before = applied_versions(pool).await?.unwrap_or_default();
    // `run_direct` takes the connection itself (`run` wants an `Acquire`, which does not
    // compile inside an `async_trait` method).
    migrate::migrator(&MIGRATOR)
        .run_direct(None, &mut *conn, false)
        .await?;
    Ok(migrate::newly_applied(&MIGRATOR, &before))
}
