//! `underling repair`.

use std::sync::Mutex;

use serde_json::{Map, json};
use underling::{Queue, RepairOptions, RepairReport};

use super::progress::{Progress, Update};
use crate::cli::RepairArgs;
use crate::output;

/// Runs one repair and prints what it did. Removals after a long outage may take many
/// batches: their progress goes to stderr like `job purge`'s, once past the first batch.
pub async fn run(queue: &Queue, a: RepairArgs, json: bool) -> anyhow::Result<String> {
    let defaults = RepairOptions::default();
    let options = RepairOptions {
        missing_after: a.missing_after.unwrap_or(defaults.missing_after),
        remove_after: a.remove_after.unwrap_or(defaults.remove_after),
        stuck_after: a.stuck_after.unwrap_or(defaults.stuck_after),
        batch: a.batch,
        timeout_grace: a.timeout_grace.unwrap_or(defaults.timeout_grace),
    };
    let progress = Mutex::new(Progress::new(
        json,
        None,
        a.batch.saturating_add(1),
        "{spinner} {pos} old and expired jobs removed ({msg}, {elapsed})",
    ));
    let report = queue
        .repair_with_progress(&options, |r: &RepairReport| {
            let mut fields = Map::new();
            fields.insert("removed_jobs".to_string(), json!(r.removed_jobs));
            fields.insert("expired_jobs".to_string(), json!(r.expired_jobs));
            if let Ok(mut progress) = progress.lock() {
                progress.update(Update {
                    done: r.removed_jobs.saturating_add(r.expired_jobs),
                    line: format!(
                        "removed {} old and {} expired jobs",
                        r.removed_jobs, r.expired_jobs
                    ),
                    fields,
                });
            }
        })
        .await;
    if let Ok(mut progress) = progress.lock() {
        progress.finish();
    }
    let report = report?;
    if json {
        return output::json(&report);
    }
    Ok(output::fields(&[
        ("missing workers", report.missing_workers.to_string()),
        ("abandoned jobs", report.abandoned_jobs.to_string()),
        ("removed jobs", report.removed_jobs.to_string()),
        ("expired jobs", report.expired_jobs.to_string()),
        ("stuck jobs", report.stuck_jobs.to_string()),
        ("timed out jobs", report.timed_out_jobs.to_string()),
    ]))
}
