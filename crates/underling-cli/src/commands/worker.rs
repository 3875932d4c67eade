//! `underling worker …`: list and show workers, send them remote commands.

use serde_json::{Value, json};
use underling::{Error, Queue, RemoteCommand, WorkerInfo};

use super::parse_json;
use crate::cli::WorkerCommand;
use crate::output;

/// Runs a `worker` subcommand.
pub async fn run(queue: &Queue, command: WorkerCommand, json: bool) -> anyhow::Result<String> {
    match command {
        WorkerCommand::List => list(queue, json).await,
        WorkerCommand::Show { id } => show(queue, id, json).await,
        WorkerCommand::Command { name, args, ids } => {
            send(queue, &name, args.as_deref(), &ids, json).await
        }
    }
}

async fn list(queue: &Queue, json: bool) -> anyhow::Result<String> {
    let workers = queue.workers().await?;
    if json {
        return output::json(&workers);
    }
    if workers.is_empty() {
        return Ok("no workers\n".to_string());
    }
    let mut table = output::table(
        &[
            "id",
            "host:pid",
            "started",
            "last heartbeat",
            "jobs",
            "queues",
        ],
        &["id", "jobs"],
    );
    let now = chrono::Utc::now();
    for w in &workers {
        table.add_row(vec![
            w.id.to_string(),
            format!("{}:{}", w.host, w.pid),
            output::relative(&w.started, &now),
            output::relative(&w.last_heartbeat, &now),
            w.jobs.len().to_string(),
            queues(w),
        ]);
    }
    Ok(output::render(&table))
}

async fn show(queue: &Queue, id: i64, json: bool) -> anyhow::Result<String> {
    let w = queue.worker(id).await?;
    if json {
        return output::json(&w);
    }
    Ok(output::fields(&[
        ("id", w.id.to_string()),
        ("host", w.host.clone()),
        ("pid", w.pid.to_string()),
        ("started", output::precise_time(&w.started)),
        ("last heartbeat", output::precise_time(&w.last_heartbeat)),
        // A count, as in `worker list`, then the ids.
        (
            "jobs",
            if w.jobs.is_empty() {
                "0".to_string()
            } else {
                format!("{} ({})", w.jobs.len(), output::ids(&w.jobs))
            },
        ),
        ("queues", queues(&w)),
        ("status", w.status.to_string()),
    ]))
}

async fn send(
    queue: &Queue,
    name: &str,
    args: Option<&str>,
    ids: &[i64],
    json: bool,
) -> anyhow::Result<String> {
    let args = match args {
        Some(text) => parse_json("--args", text)?,
        None => Value::Array(Vec::new()),
    };
    // A command that makes no sense is refused before anything else is looked at.
    let command = RemoteCommand::parse(name, &args)?;
    if !ids.is_empty() {
        let known: Vec<i64> = queue.workers().await?.iter().map(|w| w.id).collect();
        if let Some(&missing) = ids.iter().find(|id| !known.contains(id)) {
            return Err(Error::WorkerNotFound(missing).into());
        }
    }
    let sent = queue.send(command, ids).await?;
    if json {
        output::json(&json!({ "command": name, "sent": sent }))
    } else {
        Ok(format!(
            "sent {name} to {}\n",
            output::count(sent, "worker")
        ))
    }
}

/// The queues a worker reported in its status, comma separated, or `-`.
fn queues(w: &WorkerInfo) -> String {
    match w.status.get("queues").and_then(Value::as_array) {
        Some(queues) if !queues.is_empty() => queues
            .iter()
            .map(|q| q.as_str().map_or_else(|| q.to_string(), str::to_string))
            .collect::<Vec<_>>()
            .join(","),
        _ => "-".to_string(),
    }
}
