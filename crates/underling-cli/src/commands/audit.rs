//! `underling audit …` (the audit log) and `underling events` (job events, live).

use std::io::Write;

use anyhow::Context;
use serde_json::json;
use underling::{AuditQuery, JobEventKind, Queue};

use crate::cli::{AuditCommand, EventsArgs};
use crate::output;

/// Runs an `audit` subcommand.
pub async fn run(queue: &Queue, command: AuditCommand, json: bool) -> anyhow::Result<String> {
    match command {
        AuditCommand::Enable => {
            queue.enable_audit().await?;
            status_line(true, json)
        }
        AuditCommand::Disable => {
            queue.disable_audit().await?;
            status_line(false, json)
        }
        AuditCommand::Status => status_line(queue.audit_enabled().await?, json),
        AuditCommand::List { job, before, limit } => {
            let query = AuditQuery {
                job_id: job,
                before,
                limit,
            };
            let entries = queue.audit(&query).await?;
            if json {
                return output::json(&entries);
            }
            if entries.is_empty() {
                return Ok("no audit entries\n".to_string());
            }
            let mut table = output::table(
                &[
                    "entry", "at", "event", "job", "task", "queue", "state", "retries",
                ],
                &["entry", "job", "retries"],
            );
            for e in &entries {
                table.add_row(vec![
                    e.id.to_string(),
                    output::time(&e.at),
                    e.event.to_string(),
                    e.job.id.to_string(),
                    e.job.task.clone(),
                    e.job.queue.clone(),
                    e.job.state.to_string(),
                    e.job.retries.to_string(),
                ]);
            }
            Ok(output::render(&table))
        }
        AuditCommand::Prune { older_than } => {
            let removed = queue.prune_audit(older_than).await?;
            if json {
                output::json(&json!({ "removed": removed }))
            } else {
                Ok(format!("removed {removed} audit entries\n"))
            }
        }
    }
}

fn status_line(on: bool, json: bool) -> anyhow::Result<String> {
    if json {
        output::json(&json!({ "audit": on }))
    } else if on {
        Ok("the audit log is on\n".to_string())
    } else {
        Ok("the audit log is off\n".to_string())
    }
}

/// Prints events as JSON lines until interrupted (or `--count` were printed).
pub async fn follow(queue: &Queue, args: EventsArgs) -> anyhow::Result<String> {
    let kinds: Vec<JobEventKind> = args
        .events
        .iter()
        .map(|e| e.parse())
        .collect::<Result<_, _>>()?;
    let mut events = queue.events().await?;
    // Said on stderr, so that a script reading stdout knows when to start acting.
    eprintln!("following job events (Ctrl-C to stop)");
    let mut printed = 0u64;
    let mut stdout = std::io::stdout();
    loop {
        if args.count.is_some_and(|n| printed >= n) {
            return Ok(String::new());
        }
        let next = tokio::select! {
            next = events.next() => next,
            _ = tokio::signal::ctrl_c() => return Ok(String::new()),
        };
        let event = match next {
            Some(Ok(event)) => event,
            Some(Err(missed)) => {
                eprintln!("warning: {missed}");
                continue;
            }
            None => return Ok(String::new()),
        };
        let wanted = (args.queues.is_empty() || args.queues.contains(&event.job.queue))
            && (args.tasks.is_empty() || args.tasks.contains(&event.job.task))
            && (kinds.is_empty() || kinds.contains(&event.event));
        if !wanted {
            continue;
        }
        let line = serde_json::to_string(&event)?;
        match writeln!(stdout, "{line}").and_then(|()| stdout.flush()) {
            Ok(()) => printed += 1,
            // `underling events | head` is not an error.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(String::new()),
            Err(e) => return Err(e).context("writing an event"),
        }
    }
}
