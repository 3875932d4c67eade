//! `underling migrate`

use underling::{ConnectOptions, Queue};

use super::Target;
use crate::output;

/// Applies pending migrations and says which were applied.
pub async fn run(target: &Target<'_>, json: bool) -> anyhow::Result<String> {
    let mut options = ConnectOptions::new(target.url)
        .max_connections(target.pool_size)
        .pgbouncer(target.pgbouncer)
        .migrate(true);
    if let Some(schema) = target.schema {
        options = options.schema(schema);
    }
    let queue = Queue::connect_unchecked(&options).await?;
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
