//! `underling migrate`

use std::sync::Arc;

use underling::backend::postgres::PostgresBackend;
use underling::backend::sqlite::SqliteBackend;
use underling::{Backend, ConnectOptions, Queue};

use super::{POOL_SIZE, Target, probe_postgres};
use crate::output;

/// Applies pending migrations and says which were applied.
pub async fn run(target: &Target<'_>, json: bool) -> anyhow::Result<String> {
    let queue = connect_unchecked(target).await?;
    let applied = queue.migrate().await;
    queue.close().await;
    let applied = applied?;
    if json {
        return output::json(&applied);
    }
    if applied.is_empty() {
        return Ok("the database is up to date: no migrations to apply\n".to_string());
    }
    Ok(applied
        .iter()
        .map(|m| format!("applied migration {} {}\n", m.version, m.description))
        .collect())
}

/// Connects without checking that the database is migrated.
///
/// `ConnectOptions::migrate(true)` migrates while connecting but does not tell which
/// migrations it applied, so the backend is opened directly and `Queue::migrate` is called.
async fn connect_unchecked(target: &Target<'_>) -> anyhow::Result<Queue> {
    let url = target.url;
    probe_postgres(url).await?;
    let backend: Arc<dyn Backend> =
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Arc::new(PostgresBackend::connect(url, target.schema, POOL_SIZE).await?)
        } else if url.starts_with("sqlite:") && target.schema.is_none() {
            Arc::new(SqliteBackend::connect(url, POOL_SIZE).await?)
        } else {
            // Anything else is an error; let the library word it (unknown scheme, schema on SQLite).
            let mut options = ConnectOptions::new(url)
                .max_connections(POOL_SIZE)
                .migrate(true);
            if let Some(schema) = target.schema {
                options = options.schema(schema);
            }
            return Ok(Queue::connect_with(options).await?);
        };
    Ok(Queue::from_backend(backend))
}
