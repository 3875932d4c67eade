//! `underling queue …`: list, pause and resume queues, turn FIFO order on and off.

use serde_json::json;
use underling::Queue;

use crate::cli::{QueueCommand, Switch};
use crate::output;

/// Runs a `queue` subcommand.
pub async fn run(queue: &Queue, command: QueueCommand, json: bool) -> anyhow::Result<String> {
    match command {
        QueueCommand::List => list(queue, json).await,
        QueueCommand::Pause { queue: name } => set_paused(queue, &name, true, json).await,
        QueueCommand::Resume { queue: name } => set_paused(queue, &name, false, json).await,
        QueueCommand::Fifo { queue: name, state } => {
            set_fifo(queue, &name, state == Switch::On, json).await
        }
    }
}

async fn list(queue: &Queue, json: bool) -> anyhow::Result<String> {
    let queues = queue.queues().await?;
    if json {
        return output::json(&queues);
    }
    if queues.is_empty() {
        return Ok("no queues\n".to_string());
    }
    let mut table = output::table(
        &[
            "name", "paused", "fifo", "inactive", "active", "failed", "finished",
        ],
        &["inactive", "active", "failed", "finished"],
    );
    for q in &queues {
        table.add_row(vec![
            q.name.clone(),
            if q.paused { "yes" } else { "no" }.to_string(),
            if q.fifo { "yes" } else { "no" }.to_string(),
            q.inactive.to_string(),
            q.active.to_string(),
            q.failed.to_string(),
            q.finished.to_string(),
        ]);
    }
    Ok(output::render(&table))
}

async fn set_paused(queue: &Queue, name: &str, paused: bool, json: bool) -> anyhow::Result<String> {
    if paused {
        queue.pause_queue(name).await?;
    } else {
        queue.resume_queue(name).await?;
    }
    if json {
        output::json(&json!({ "queue": name, "paused": paused }))
    } else if paused {
        Ok(format!("paused queue {name}\n"))
    } else {
        Ok(format!("resumed queue {name}\n"))
    }
}

async fn set_fifo(queue: &Queue, name: &str, fifo: bool, json: bool) -> anyhow::Result<String> {
    queue.set_fifo(name, fifo).await?;
    if json {
        output::json(&json!({ "queue": name, "fifo": fifo }))
    } else if fifo {
        Ok(format!(
            "queue {name} is FIFO: one job at a time, in claim order\n"
        ))
    } else {
        Ok(format!(
            "queue {name} is not FIFO: its jobs run side by side\n"
        ))
    }
}
