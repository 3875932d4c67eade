//! `underling stats` and `underling history`.

use std::time::Duration;

use underling::Queue;

use crate::output;

/// Counts of jobs, workers and locks.
pub async fn stats(queue: &Queue, json: bool) -> anyhow::Result<String> {
    let stats = queue.stats().await?;
    if json {
        return output::json(&stats);
    }
    let uptime = stats.uptime.map_or_else(
        || "-".to_string(),
        |secs| humantime::format_duration(Duration::from_secs(secs)).to_string(),
    );
    Ok(output::fields(&[
        ("inactive jobs", stats.inactive_jobs.to_string()),
        ("delayed jobs", stats.delayed_jobs.to_string()),
        ("active jobs", stats.active_jobs.to_string()),
        ("finished jobs", stats.finished_jobs.to_string()),
        ("failed jobs", stats.failed_jobs.to_string()),
        ("enqueued jobs", stats.enqueued_jobs.to_string()),
        ("active workers", stats.active_workers.to_string()),
        ("inactive workers", stats.inactive_workers.to_string()),
        ("active locks", stats.active_locks.to_string()),
        ("uptime", uptime),
    ]))
}

/// Finished and failed jobs, and failed attempts (retried or not), per hour over the last 24
/// hours, oldest first.
pub async fn history(queue: &Queue, json: bool) -> anyhow::Result<String> {
    let points = queue.history().await?;
    if json {
        return output::json(&points);
    }
    let mut table = output::table(
        &["hour", "finished", "failed", "failed attempts"],
        &["finished", "failed", "failed attempts"],
    );
    for point in &points {
        table.add_row(vec![
            output::time(&point.hour),
            point.finished.to_string(),
            point.failed.to_string(),
            point.failed_attempts.to_string(),
        ]);
    }
    Ok(output::render(&table))
}
