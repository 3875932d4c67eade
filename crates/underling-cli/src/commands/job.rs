//! `underling job …`: enqueue, list, show, retry, remove and purge.

use std::time::Duration;

use std::collections::{HashMap, HashSet};

use anyhow::{anyhow, bail};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use underling::{Error, InactiveState, Job, JobFilter, JobState, Queue, RetryOptions};

use super::progress::{Progress, Update};
use super::{batch, parse_json};
use crate::cli::{EnqueueArgs, JobCommand, ListArgs, ListState, PurgeArgs, RetryArgs};
use crate::output;

/// Runs a `job` subcommand.
pub async fn run(queue: &Queue, command: JobCommand, json: bool) -> anyhow::Result<String> {
    match command {
        JobCommand::Enqueue(args) => enqueue(queue, args, json).await,
        JobCommand::EnqueueBatch { file } => batch::enqueue_batch(queue, &file, json).await,
        JobCommand::List(args) => list(queue, args, json).await,
        JobCommand::Show { id } => show(queue, id, json).await,
        JobCommand::Wait { id, timeout } => wait(queue, id, timeout, json).await,
        JobCommand::Retry(args) => retry(queue, args, json).await,
        JobCommand::Remove { ids } => remove(queue, &ids, json).await,
        JobCommand::Purge(args) => purge(queue, args, json).await,
        JobCommand::Stop { id } => stop(queue, id, false, json).await,
        JobCommand::Kill { id } => stop(queue, id, true, json).await,
    }
}

async fn enqueue(queue: &Queue, a: EnqueueArgs, json: bool) -> anyhow::Result<String> {
    let args = match &a.args {
        Some(text) => parse_json("--args", text)?,
        None => json!({}),
    };
    let secs = |d: std::time::Duration| underling::DurationSpec::Seconds(d.as_secs_f64());
    let spec = underling::JobSpec {
        task: a.task,
        args: Some(args),
        queue: a.queue,
        priority: a.priority,
        attempts: a.attempts,
        delay: a.delay.map(secs),
        run_at: a.run_at,
        parents: a.parents,
        lax: a.lax,
        expire: a.expire.map(secs),
        notes: a
            .notes
            .as_deref()
            .map(|text| parse_json("--notes", text))
            .transpose()?,
        unique_key: a.unique_key,
        unique_by: a.unique_by,
        unique_scope: a.unique_scope,
        unique_for: a.unique_for.map(secs),
        on_conflict: a.on_conflict,
        timeout: a.timeout.map(secs),
    };
    let job = spec.into_job()?;
    let enqueued = match queue.submit_batch(std::slice::from_ref(&job)).await?[..] {
        [one] => one,
        _ => anyhow::bail!("the enqueue returned no id"),
    };
    let id = enqueued.id;
    if enqueued.duplicate {
        eprintln!(
            "job {id} holds the unique key already: nothing was enqueued{}",
            if enqueued.replaced {
                " (its args, priority and delay were replaced)"
            } else {
                ""
            }
        );
    }
    if json {
        let mut shown = serde_json::to_value(existing(queue, id).await?)?;
        if let Some(map) = shown.as_object_mut()
            && enqueued.duplicate
        {
            map.insert("duplicate".into(), json!(true));
            map.insert("replaced".into(), json!(enqueued.replaced));
        }
        output::json(&shown)
    } else {
        Ok(format!("{id}\n"))
    }
}

async fn list(queue: &Queue, a: ListArgs, json: bool) -> anyhow::Result<String> {
    let mut states = Vec::new();
    let mut inactive = Vec::new();
    for state in a.states {
        match state {
            ListState::Stored(s) => states.push(s),
            ListState::Inactive(s) => inactive.push(s),
        }
    }
    let filter = JobFilter {
        states,
        inactive,
        queues: a.queues,
        tasks: a.tasks,
        notes: a.notes,
        ..JobFilter::default()
    };
    let page = match a.before {
        Some(before) => {
            queue
                .list_jobs_before(&filter, Some(before), a.limit)
                .await?
        }
        None => queue.list_jobs(&filter, a.limit, a.offset).await?,
    };
    if json {
        return output::json(&page);
    }
    if page.jobs.is_empty() {
        return Ok(if page.total == 0 {
            "no jobs\n".to_string()
        } else {
            format!(
                "no jobs on this page (total: {})\n",
                output::count(page.total, "job")
            )
        });
    }
    let why = Why::load(queue, &page.jobs).await?;
    let now = chrono::Utc::now();
    let mut table = output::table(
        &[
            "id", "state", "queue", "task", "priority", "attempts", "created", "status",
        ],
        &["id", "priority", "attempts"],
    );
    for job in &page.jobs {
        table.add_row(vec![
            job.id.to_string(),
            job.state.to_string(),
            job.queue.clone(),
            job.task.clone(),
            job.priority.to_string(),
            job.attempts.to_string(),
            output::relative(&job.created, &now),
            why.status(job, &now),
        ]);
    }
    let mut text = output::render(&table);
    let shown = page.jobs.len() as u64;
    text.push_str(&format!("total: {}", output::count(page.total, "job")));
    if let (Some(before), Some(last)) = (a.before, page.jobs.last()) {
        text.push_str(&format!(
            " (showing {shown} below id {before}; next page: --before {})",
            last.id
        ));
    } else if shown < page.total {
        text.push_str(&format!(" (showing {}-{})", a.offset + 1, a.offset + shown));
    }
    text.push('\n');
    Ok(text)
}

/// What `job list` needs to say why inactive jobs do not run: their parents' states and the
/// paused queues.
struct Why {
    parents: HashMap<i64, JobState>,
    paused: HashSet<String>,
}

impl Why {
    /// Reads what the inactive jobs of a page depend on (nothing when there are none).
    async fn load(queue: &Queue, jobs: &[Job]) -> anyhow::Result<Why> {
        let inactive: Vec<&Job> = jobs
            .iter()
            .filter(|j| j.state == JobState::Inactive)
            .collect();
        let mut why = Why {
            parents: HashMap::new(),
            paused: HashSet::new(),
        };
        if inactive.is_empty() {
            return Ok(why);
        }
        let mut ids: Vec<i64> = inactive
            .iter()
            .flat_map(|j| j.parents.iter().copied())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        if !ids.is_empty() {
            let filter = JobFilter {
                ids: ids.clone(),
                ..JobFilter::default()
            };
            let parents = queue.list_jobs(&filter, ids.len() as u64, 0).await?;
            why.parents = parents.jobs.iter().map(|p| (p.id, p.state)).collect();
        }
        why.paused = queue
            .queues()
            .await?
            .into_iter()
            .filter(|q| q.paused)
            .map(|q| q.name)
            .collect();
        Ok(why)
    }

    /// Why an inactive job does not run yet (its derived state first), where an active one
    /// runs, when a settled one ended.
    fn status(&self, job: &Job, now: &DateTime<Utc>) -> String {
        match job.state {
            JobState::Active => job.worker_id.map_or_else(
                || "running".to_string(),
                |w| format!("running on worker {w}"),
            ),
            JobState::Finished | JobState::Failed => job.finished.map_or_else(
                || "-".to_string(),
                |t| format!("ended {}", output::relative(&t, now)),
            ),
            JobState::Inactive => {
                // A removed parent is done; with lax, a failed one too.
                let waiting: Vec<i64> = job
                    .parents
                    .iter()
                    .copied()
                    .filter(|p| match self.parents.get(p) {
                        Some(JobState::Finished) | None => false,
                        Some(JobState::Failed) => !job.lax,
                        Some(_) => true,
                    })
                    .collect();
                if !waiting.is_empty() {
                    let noun = if waiting.len() == 1 {
                        "parent"
                    } else {
                        "parents"
                    };
                    format!("waiting for {noun} {}", output::ids(&waiting))
                } else if job.delayed > *now {
                    let derived = if job.retries > 0 {
                        InactiveState::Retryable
                    } else {
                        InactiveState::Scheduled
                    };
                    format!("{derived}, due {}", output::relative(&job.delayed, now))
                } else if self.paused.contains(&job.queue) {
                    "queue paused".to_string()
                } else {
                    "ready".to_string()
                }
            }
        }
    }
}

async fn show(queue: &Queue, id: i64, json: bool) -> anyhow::Result<String> {
    describe(&existing(queue, id).await?, json)
}

async fn wait(queue: &Queue, id: i64, timeout: Duration, json: bool) -> anyhow::Result<String> {
    let (job, problem) = match queue.wait(id, timeout).await? {
        Some(job) if job.state == JobState::Finished => return describe(&job, json),
        Some(job) => (job, format!("job {id} failed")),
        None => {
            let job = existing(queue, id).await?;
            let problem = format!(
                "timed out after {} waiting for job {id} (it is {})",
                humantime::format_duration(timeout),
                job.state
            );
            (job, problem)
        }
    };
    Err(Unsuccessful {
        output: describe(&job, json)?,
        message: problem,
    }
    .into())
}

/// A command that has something to print on standard output and still exits 1, saying why on
/// standard error (`job wait` of a job that failed or did not settle in time).
#[derive(Debug)]
pub struct Unsuccessful {
    /// What to print on standard output.
    pub output: String,
    /// Why the command did not succeed (one line).
    pub message: String,
}

impl std::fmt::Display for Unsuccessful {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Unsuccessful {}

/// Every field of a job, or its JSON.
fn describe(job: &Job, json: bool) -> anyhow::Result<String> {
    if json {
        return output::json(job);
    }
    Ok(output::fields(&[
        ("id", job.id.to_string()),
        ("task", job.task.clone()),
        ("queue", job.queue.clone()),
        ("state", job.state.to_string()),
        ("priority", job.priority.to_string()),
        ("attempts", job.attempts.to_string()),
        ("retries", job.retries.to_string()),
        ("lax", job.lax.to_string()),
        (
            "worker",
            job.worker_id
                .map_or_else(|| "-".to_string(), |w| w.to_string()),
        ),
        ("created", output::precise_time(&job.created)),
        ("delayed", output::precise_time(&job.delayed)),
        ("started", output::optional_time(&job.started)),
        ("finished", output::optional_time(&job.finished)),
        ("retried", output::optional_time(&job.retried)),
        ("expires", output::optional_time(&job.expires)),
        ("parents", output::ids(&job.parents)),
        ("children", output::ids(&job.children)),
        ("args", output::truncated(job.args.to_string())),
        (
            "result",
            output::truncated(output::compact(job.result.as_ref())),
        ),
        (
            "notes",
            output::truncated(Value::Object(job.notes.clone()).to_string()),
        ),
    ]))
}

async fn retry(queue: &Queue, a: RetryArgs, json: bool) -> anyhow::Result<String> {
    let retried = if a.states.is_empty() {
        // Check every id first, so that a typo changes nothing.
        for &id in &a.ids {
            existing(queue, id).await?;
        }
        let opts = RetryOptions {
            queue: a.queue,
            priority: a.priority,
            delay: a.delay,
            attempts: a.attempts,
            ..RetryOptions::default()
        };
        for &id in &a.ids {
            queue.retry_job(id, opts.clone()).await?;
        }
        a.ids.len() as u64
    } else {
        let filter = JobFilter {
            states: a.states,
            queues: a.queue.into_iter().collect(),
            tasks: a.task.into_iter().collect(),
            ..JobFilter::default()
        };
        queue.retry_jobs(&filter).await?
    };
    if json {
        output::json(&json!({ "retried": retried }))
    } else {
        Ok(format!("retried {}\n", output::count(retried, "job")))
    }
}

async fn remove(queue: &Queue, ids: &[i64], json: bool) -> anyhow::Result<String> {
    // Check every id first, so that a typo or a running job changes nothing.
    for &id in ids {
        if existing(queue, id).await?.state == JobState::Active {
            return Err(Error::JobActive(id).into());
        }
    }
    for &id in ids {
        queue.remove_job(id).await?;
    }
    let removed = ids.len() as u64;
    if json {
        output::json(&json!({ "removed": removed }))
    } else {
        Ok(format!("removed {}\n", output::count(removed, "job")))
    }
}

async fn stop(queue: &Queue, id: i64, kill: bool, json: bool) -> anyhow::Result<String> {
    let worker = queue.stop_job(id, kill).await?;
    let command = if kill { "kill" } else { "stop" };
    if json {
        output::json(&json!({ "job": id, "worker": worker, "command": command }))
    } else {
        Ok(format!("sent {command} for job {id} to worker {worker}\n"))
    }
}

async fn purge(queue: &Queue, a: PurgeArgs, json: bool) -> anyhow::Result<String> {
    let states = if a.states.is_empty() {
        vec![JobState::Finished, JobState::Failed]
    } else {
        a.states
    };
    let unsafe_states: Vec<&str> = JobState::ALL
        .iter()
        .filter(|s| matches!(s, JobState::Inactive | JobState::Active) && states.contains(s))
        .map(|s| s.as_str())
        .collect();
    if !unsafe_states.is_empty() && !a.force {
        bail!(
            "refusing to purge {} jobs without --force (inactive jobs have not run yet, active jobs are running)",
            unsafe_states.join(" and ")
        );
    }
    let finished_before = match a.older_than {
        Some(age) => Some(
            chrono::Duration::from_std(age)
                .ok()
                .and_then(|age| chrono::Utc::now().checked_sub_signed(age))
                .ok_or_else(|| {
                    anyhow!(
                        "--older-than {} reaches before the earliest time that can be stored",
                        humantime::format_duration(age)
                    )
                })?,
        ),
        None => None,
    };
    let filter = JobFilter {
        states,
        queues: a.queue.into_iter().collect(),
        tasks: a.task.into_iter().collect(),
        finished_before,
        ..JobFilter::default()
    };
    // An estimate: jobs may finish or be removed by others while we purge.
    let estimate = queue.list_jobs(&filter, 0, 0).await?.total;
    let mut progress = if json || estimate > a.batch {
        Progress::new(
            json,
            Some(estimate),
            0,
            "{wide_bar} {pos}/{len} jobs purged ({msg}, {eta} left)",
        )
    } else {
        Progress::hidden()
    };
    let removed = queue
        .purge(&filter, a.batch, |removed| {
            let total = estimate.max(removed);
            let mut fields = Map::new();
            fields.insert("removed".to_string(), json!(removed));
            fields.insert("total".to_string(), json!(total));
            progress.update(Update {
                done: removed,
                line: format!("purged {removed} of ~{total}"),
                fields,
            });
        })
        .await;
    progress.finish();
    let removed = removed?;
    if json {
        output::json(&json!({ "removed": removed }))
    } else {
        Ok(format!("removed {}\n", output::count(removed, "job")))
    }
}

/// The job with this id, or a "job N not found" error.
async fn existing(queue: &Queue, id: i64) -> anyhow::Result<Job> {
    Ok(queue.job(id).await?.ok_or(Error::JobNotFound(id))?)
}
