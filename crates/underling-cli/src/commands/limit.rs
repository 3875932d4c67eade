//! `underling limit …`: set, list and remove concurrency and rate limits.

use serde_json::json;
use underling::{Limit, Queue};

use crate::cli::LimitCommand;
use crate::output;

/// Runs a `limit` subcommand.
pub async fn run(queue: &Queue, command: LimitCommand, json: bool) -> anyhow::Result<String> {
    match command {
        LimitCommand::Set {
            scope,
            concurrency,
            rate,
        } => {
            let limit = Limit {
                scope: scope.scope()?,
                concurrency,
                rate,
            };
            queue.set_limit(&limit).await?;
            if json {
                output::json(&limit)
            } else {
                Ok(format!(
                    "set limit on {}: {}\n",
                    limit.scope,
                    describe(&limit)
                ))
            }
        }
        LimitCommand::List => list(queue, json).await,
        LimitCommand::Remove { scope } => {
            let scope = scope.scope()?;
            if !queue.remove_limit(&scope).await? {
                anyhow::bail!("there is no limit on {scope} (`underling limit list` shows them)");
            }
            if json {
                output::json(&json!({ "scope": scope, "removed": true }))
            } else {
                Ok(format!("removed the limit on {scope}\n"))
            }
        }
    }
}

/// `concurrency 3, rate 100/1m`.
fn describe(limit: &Limit) -> String {
    let mut parts = Vec::new();
    if let Some(n) = limit.concurrency {
        parts.push(format!("concurrency {n}"));
    }
    if let Some(rate) = limit.rate {
        parts.push(format!("rate {rate}"));
    }
    parts.join(", ")
}

async fn list(queue: &Queue, json: bool) -> anyhow::Result<String> {
    let limits = queue.limits().await?;
    if json {
        return output::json(&limits);
    }
    if limits.is_empty() {
        return Ok("no limits\n".to_string());
    }
    let mut table = output::table(&["scope", "concurrency", "rate"], &["concurrency"]);
    for limit in &limits {
        table.add_row(vec![
            limit.scope.to_string(),
            limit.concurrency.map_or("-".to_string(), |n| n.to_string()),
            limit.rate.map_or("-".to_string(), |r| r.to_string()),
        ]);
    }
    Ok(output::render(&table))
}
