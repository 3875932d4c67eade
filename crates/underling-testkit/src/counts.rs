//! The invariant every behaviour ends with: the job counts that `stats`, `queues` and list
//! totals read from counters (migration 0009) equal the jobs actually stored. A statement that
//! changed jobs without its change being counted fails the behaviour that ran it.

use std::collections::BTreeMap;

use chrono::Utc;
use underling::store::ListJobs;
use underling::{JobFilter, JobState};

use crate::TestStore;

/// Compares the counters with the stored jobs, at one moment; says what differs.
pub(crate) async fn check(t: &TestStore) -> Result<(), String> {
    let at = Utc::now();
    let now = Some(at);
    let all = JobFilter::default();
    let listed = t
        .store
        .list(ListJobs {
            filter: &all,
            limit: u64::MAX >> 1,
            offset: 0,
            before: None,
            now,
        })
        .await;
    // A behaviour that closed its store (or dropped its schema) left nothing to compare.
    let Ok(listed) = listed else { return Ok(()) };
    let Ok(stats) = t.store.stats(now).await else {
        return Ok(());
    };
    let Ok(queues) = t.store.queues(now).await else {
        return Ok(());
    };

    let mut rows: BTreeMap<(String, &'static str), u64> = BTreeMap::new();
    let mut delayed = 0;
    for job in &listed.jobs {
        *rows
            .entry((job.queue.clone(), job.state.as_str()))
            .or_default() += 1;
        // Due later than now, and queued for later than its creation: a job that behaviours
        // enqueue with a `now` in the future is due at its creation, not delayed.
        if job.state == JobState::Inactive && job.delayed > at && job.delayed > job.created {
            delayed += 1;
        }
    }
    let stored = |state: JobState| -> u64 {
        rows.iter()
            .filter(|((_, s), _)| *s == state.as_str())
            .map(|(_, n)| n)
            .sum()
    };
    let mut differences = Vec::new();
    let mut compare = |what: String, counted: u64, stored: u64| {
        if counted != stored {
            differences.push(format!("{what}: counted {counted}, stored {stored}"));
        }
    };
    compare("list total".into(), listed.total, listed.jobs.len() as u64);
    compare(
        "stats inactive".into(),
        stats.inactive_jobs,
        stored(JobState::Inactive),
    );
    compare(
        "stats active".into(),
        stats.active_jobs,
        stored(JobState::Active),
    );
    compare(
        "stats finished".into(),
        stats.finished_jobs,
        stored(JobState::Finished),
    );
    compare(
        "stats failed".into(),
        stats.failed_jobs,
        stored(JobState::Failed),
    );
    compare("stats delayed".into(), stats.delayed_jobs, delayed);
    for q in &queues {
        for (state, counted) in [
            (JobState::Inactive, q.inactive),
            (JobState::Active, q.active),
            (JobState::Finished, q.finished),
            (JobState::Failed, q.failed),
        ] {
            let n = rows
                .get(&(q.name.clone(), state.as_str()))
                .copied()
                .unwrap_or(0);
            compare(format!("queue {} {}", q.name, state.as_str()), counted, n);
        }
    }
    for (queue, state) in rows.keys() {
        if !queues.iter().any(|q| &q.name == queue) {
            differences.push(format!("queue {queue} ({state}) is not listed"));
        }
    }
    if differences.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "the job counters disagree with the stored jobs: {}",
            differences.join("; ")
        ))
    }
}
