//! `underling task …`: the tasks' enqueue defaults, as workers published them.

use underling::Queue;

use crate::cli::TaskCommand;
use crate::output;

/// Runs a `task` subcommand.
pub async fn run(queue: &Queue, command: TaskCommand, json: bool) -> anyhow::Result<String> {
    match command {
        TaskCommand::List => list(queue, json).await,
    }
}

async fn list(queue: &Queue, json: bool) -> anyhow::Result<String> {
    let tasks = queue.tasks().await?;
    if json {
        return output::json(&tasks);
    }
    if tasks.is_empty() {
        return Ok(
            "no tasks published (a worker publishes its tasks when it starts)\n".to_string(),
        );
    }
    let mut table = output::table(
        &[
            "task",
            "queue",
            "priority",
            "attempts",
            "timeout",
            "published",
        ],
        &["priority", "attempts"],
    );
    // What an enqueue that leaves a value unset gets when the task declares none.
    let or_builtin = |value: Option<String>, builtin: &str| value.unwrap_or(format!("({builtin})"));
    for task in &tasks {
        table.add_row(vec![
            task.name.clone(),
            or_builtin(task.queue.clone(), underling::DEFAULT_QUEUE),
            or_builtin(task.priority.map(|p| p.to_string()), "0"),
            or_builtin(task.attempts.map(|a| a.to_string()), "1"),
            task.timeout_ms
                .map(|ms| {
                    humantime::format_duration(std::time::Duration::from_millis(ms)).to_string()
                })
                .unwrap_or_else(|| "-".to_string()),
            output::time(&task.published),
        ]);
    }
    Ok(output::render(&table))
}
