//! `underling job enqueue-batch FILE.jsonl`: many jobs from JSON Lines, checked before any is
//! written, then written 1,000 per statement.

use anyhow::{anyhow, bail};
use std::collections::{BTreeSet, HashMap};
use std::io::IsTerminal;
use underling::{JobFilter, JobSpec, NewJob, Queue};

use crate::output;

/// How many jobs one statement writes.
pub const BATCH: usize = 1000;

/// Reads the whole input: a file, or standard input for `-`.
fn read_input(file: &str) -> anyhow::Result<String> {
    if file == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
            .map_err(|e| anyhow!("cannot read standard input: {e}"))?;
        Ok(text)
    } else {
        std::fs::read_to_string(file).map_err(|e| anyhow!("cannot read {file}: {e}"))
    }
}

/// Every job of the input with the number of its line, or the first bad line's error.
fn parse_lines(text: &str) -> anyhow::Result<Vec<(usize, NewJob)>> {
    let mut jobs = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let number = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        // serde would read a struct from an array too, and say a field has the wrong type.
        if !line.trim_start().starts_with('{') {
            bail!(
                "line {number}: expected a JSON object such as {{\"task\": \"mail.send\"}}, one job per line"
            );
        }
        // One line: the fields of `job enqueue`'s flags, read as the HTTP API reads a body.
        let parsed: JobSpec =
            serde_json::from_str(line).map_err(|e| anyhow!("line {number}: {e}"))?;
        let job = parsed
            .into_job()
            .map_err(|e| anyhow!("line {number}: {e}"))?;
        jobs.push((number, job));
    }
    Ok(jobs)
}

/// Fails naming the first line whose parent does not exist.
async fn check_parents(queue: &Queue, jobs: &[(usize, NewJob)]) -> anyhow::Result<()> {
    let parents: BTreeSet<i64> = jobs
        .iter()
        .flat_map(|(_, job)| job.parents().iter().copied())
        .collect();
    let parents: Vec<i64> = parents.into_iter().collect();
    let mut found = BTreeSet::new();
    for chunk in parents.chunks(BATCH) {
        let filter = JobFilter {
            ids: chunk.to_vec(),
            ..JobFilter::default()
        };
        let page = queue.list_jobs(&filter, chunk.len() as u64, 0).await?;
        found.extend(page.jobs.iter().map(|job| job.id));
    }
    let first_line: HashMap<i64, usize> = jobs
        .iter()
        .rev()
        .flat_map(|(line, job)| job.parents().iter().map(move |p| (*p, *line)))
        .collect();
    if let Some((line, parent)) = parents
        .iter()
        .filter(|p| !found.contains(p))
        .filter_map(|p| first_line.get(p).map(|line| (*line, *p)))
        .min()
    {
        bail!("line {line}: parent job {parent} does not exist");
    }
    Ok(())
}

/// Runs `job enqueue-batch`.
pub async fn enqueue_batch(queue: &Queue, file: &str, json: bool) -> anyhow::Result<String> {
    let text = read_input(file)?;
    let jobs = parse_lines(&text)?;
    check_parents(queue, &jobs).await?;
    let (lines, jobs): (Vec<usize>, Vec<NewJob>) = jobs.into_iter().unzip();
    let progress = if std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new(jobs.len() as u64);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} jobs enqueued ({per_sec}, {eta} left)",
        ) {
            bar.set_style(style);
        }
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    let mut ids = Vec::with_capacity(jobs.len());
    let mut duplicates = Vec::new();
    for chunk in jobs.chunks(BATCH) {
        match queue.submit_batch(chunk).await {
            Ok(written) => {
                for e in written {
                    if e.duplicate {
                        duplicates.push((lines[ids.len()], e.id));
                    }
                    ids.push(e.id);
                }
            }
            Err(e) => {
                progress.abandon();
                bail!(
                    "{e} ({} of {} jobs were enqueued before this error{})",
                    ids.len(),
                    jobs.len(),
                    match (ids.first(), ids.last()) {
                        (Some(first), Some(last)) => format!(": ids {first} to {last}"),
                        _ => String::new(),
                    }
                );
            }
        }
        progress.inc(chunk.len() as u64);
    }
    progress.finish_and_clear();
    if !duplicates.is_empty() {
        // The ids printed for these lines are those of the live jobs that hold their keys.
        let shown: Vec<String> = duplicates
            .iter()
            .take(10)
            .map(|(line, id)| format!("line {line}: job {id}"))
            .collect();
        eprintln!(
            "{} of {} jobs were duplicates of live unique jobs, and nothing was enqueued for \
             them ({}{})",
            duplicates.len(),
            jobs.len(),
            shown.join(", "),
            if duplicates.len() > 10 { ", …" } else { "" }
        );
    }
    if json {
        output::json(&ids)
    } else {
        Ok(ids.iter().map(|id| format!("{id}\n")).collect())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_line_takes_every_field_of_the_flags() {
        let jobs = parse_lines(
            r#"{"task": "t", "args": [1], "queue": "q", "priority": -2, "attempts": 3, "delay": "5m", "parents": [2, 1], "lax": true, "expire": 60, "notes": {"k": 1}}"#,
        )
        .unwrap();
        let (line, job) = &jobs[0];
        assert_eq!(*line, 1);
        assert_eq!(job.task(), "t");
        assert_eq!(job.args(), &serde_json::json!([1]));
        assert_eq!(job.queue(), "q");
        assert_eq!(job.priority(), -2);
        assert_eq!(job.attempts(), 3);
        assert_eq!(job.delay(), Some(Duration::from_secs(300)));
        assert_eq!(job.parents(), &[1, 2]);
        assert!(job.lax());
        assert_eq!(job.expire(), Some(Duration::from_secs(60)));
    }

    #[test]
    fn blank_lines_are_skipped_and_numbers_count_them() {
        let jobs = parse_lines("\n{\"task\": \"a\"}\n  \n{\"task\": \"b\"}\n").unwrap();
        let lines: Vec<usize> = jobs.iter().map(|(line, _)| *line).collect();
        assert_eq!(lines, vec![2, 4]);
    }

    #[test]
    fn a_bad_line_is_named_by_its_number() {
        let text = "{\"task\": \"a\"}\n{\"task\": \"b\", \"priorty\": 1}\n";
        let error = parse_lines(text).unwrap_err().to_string();
        assert!(
            error.starts_with("line 2: unknown field `priorty`"),
            "{error}"
        );
        let error = parse_lines(
            "{\"task\": \"a\", \"delay\": \"5m\", \"run_at\": \"2026-01-01T00:00:00Z\"}",
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            error,
            "line 1: invalid option: give delay or run_at, not both"
        );
    }
}
