//! `underling lock …`: list and release named locks.

use serde_json::json;
use underling::Queue;

use crate::cli::LockCommand;
use crate::output;

/// Runs a `lock` subcommand.
pub async fn run(queue: &Queue, command: LockCommand, json: bool) -> anyhow::Result<String> {
    match command {
        LockCommand::List { names } => list(queue, &names, json).await,
        LockCommand::Release { name } => release(queue, &name, json).await,
        LockCommand::Acquire {
            name,
            duration,
            limit,
        } => acquire(queue, &name, duration, limit, json).await,
    }
}

async fn acquire(
    queue: &Queue,
    name: &str,
    duration: std::time::Duration,
    limit: u32,
    json: bool,
) -> anyhow::Result<String> {
    if !queue.lock(name, duration, limit).await? {
        anyhow::bail!("lock {name} is taken: {limit} live hold(s) already");
    }
    if json {
        output::json(&json!({ "name": name, "acquired": true }))
    } else {
        Ok(format!(
            "took a hold on lock {name} for {}\n",
            humantime::format_duration(duration)
        ))
    }
}

async fn list(queue: &Queue, names: &[String], json: bool) -> anyhow::Result<String> {
    let locks = queue.locks(names).await?;
    if json {
        return output::json(&locks);
    }
    if locks.is_empty() {
        return Ok("no locks\n".to_string());
    }
    let mut table = output::table(&["id", "name", "expires"], &["id"]);
    for lock in &locks {
        table.add_row(vec![
            lock.id.to_string(),
            lock.name.clone(),
            output::time(&lock.expires),
        ]);
    }
    Ok(output::render(&table))
}

async fn release(queue: &Queue, name: &str, json: bool) -> anyhow::Result<String> {
    let released = queue.unlock(name).await?;
    if json {
        output::json(&json!({ "name": name, "released": released }))
    } else if released {
        Ok(format!("released a hold on lock {name}\n"))
    } else {
        Ok(format!("lock {name} was not held: nothing released\n"))
    }
}
