//! What a chaos run proves, computed from the record file (every execution, written by the
//! task outside the queue's tables), the jobs' final states, and the run's own log of which
//! worker process it killed when.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::record::Execution;

/// What the run saw, to be judged.
#[derive(Debug, Default)]
pub struct Evidence {
    /// Every job the run enqueued (the ids the queue gave back).
    pub enqueued: Vec<i64>,
    /// Their states after the run, by id.
    pub states: HashMap<i64, String>,
    /// Every execution, by job.
    pub executions: BTreeMap<i64, Vec<Execution>>,
    /// When each killed worker process was killed (µs since the epoch), by pid.
    pub kills: HashMap<u32, u128>,
    /// When the run ended (µs since the epoch): executions still open then count as running
    /// until now.
    pub ended: u128,
}

/// The figures of a run. The run passed when `lost`, `ran_twice_at_once`,
/// `finished_without_running` and `workers_exited_on_their_own` are 0.
#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct Figures {
    /// Jobs enqueued.
    pub enqueued: usize,
    /// Jobs finished or failed for good.
    pub settled: usize,
    /// Jobs that finished.
    pub finished: usize,
    /// Jobs failed for good.
    pub failed: usize,
    /// Jobs enqueued and not settled (still waiting, active, or gone). Must be 0.
    pub lost: usize,
    /// Jobs finished without any recorded execution. Must be 0.
    pub finished_without_running: usize,
    /// Jobs with two executions that overlapped in time. Must be 0.
    pub ran_twice_at_once: usize,
    /// Executions in all.
    pub executions: usize,
    /// Executions that began after an earlier one of the same job had ended: its outcome was
    /// not written (its worker was killed, or lost the database, after the task returned), or
    /// the run was stopped by the worker's lease fence. Needless work, not an error.
    pub reruns_after_an_end: usize,
    /// Executions that began after an earlier one died with its process (killed).
    pub reruns_after_a_kill: usize,
    /// Worker processes the run killed.
    pub kills: usize,
    /// From a kill to the next start of each job the killed process was running, in ms.
    pub rescue_ms_median: Option<u64>,
    /// The longest of those, in ms.
    pub rescue_ms_max: Option<u64>,
    /// Jobs that a killed process was running and nobody ran again (they must be lost too).
    pub never_rescued: usize,
    /// Worker processes that exited although nobody stopped them. Must be 0 (filled in by
    /// the run, not from the evidence).
    pub workers_exited_on_their_own: usize,
}

impl Figures {
    /// What failed, one line each; empty when the run passed.
    pub fn failures(&self) -> Vec<String> {
        let mut failures = Vec::new();
        let mut must_be_zero = |what: &str, n: usize| {
            if n > 0 {
                failures.push(format!("{n} {what} (must be 0)"));
            }
        };
        must_be_zero("jobs lost", self.lost);
        must_be_zero(
            "jobs finished without running",
            self.finished_without_running,
        );
        must_be_zero("jobs ran twice at the same time", self.ran_twice_at_once);
        must_be_zero(
            "worker processes exited on their own",
            self.workers_exited_on_their_own,
        );
        failures
    }
}

/// Judges the evidence.
pub fn figures(evidence: &Evidence) -> Figures {
    let mut f = Figures {
        enqueued: evidence.enqueued.len(),
        kills: evidence.kills.len(),
        ..Figures::default()
    };
    let none = Vec::new();
    let mut rescues: Vec<u64> = Vec::new();
    for id in &evidence.enqueued {
        let state = evidence.states.get(id).map_or("missing", String::as_str);
        let runs = evidence.executions.get(id).unwrap_or(&none);
        match state {
            "finished" => f.finished += 1,
            "failed" => f.failed += 1,
            _ => f.lost += 1,
        }
        if state == "finished" && runs.is_empty() {
            f.finished_without_running += 1;
        }
        f.executions += runs.len();
        // When each execution stopped: its end, or its process's death, or still running.
        let until = |run: &Execution| {
            run.end
                .or_else(|| evidence.kills.get(&run.pid).copied())
                .unwrap_or(evidence.ended)
        };
        let overlapped = runs.iter().enumerate().any(|(i, a)| {
            runs[i + 1..]
                .iter()
                .any(|b| a.start < until(b) && b.start < until(a))
        });
        if overlapped {
            f.ran_twice_at_once += 1;
        }
        for (i, run) in runs.iter().enumerate() {
            if run.end.is_some() {
                continue;
            }
            let Some(&killed) = evidence.kills.get(&run.pid) else {
                continue;
            };
            match runs[i + 1..].iter().map(|next| next.start).min() {
                Some(next) => {
                    f.reruns_after_a_kill += 1;
                    rescues.push(
                        u64::try_from(next.saturating_sub(killed) / 1000).unwrap_or(u64::MAX),
                    );
                }
                None => f.never_rescued += 1,
            }
        }
        f.reruns_after_an_end += runs.windows(2).filter(|pair| pair[0].end.is_some()).count();
    }
    f.settled = f.finished + f.failed;
    rescues.sort_unstable();
    f.rescue_ms_median = rescues.get(rescues.len() / 2).copied();
    f.rescue_ms_max = rescues.last().copied();
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(pid: u32, start: u128, end: Option<u128>) -> Execution {
        Execution { pid, start, end }
    }

    fn evidence(jobs: &[(i64, &str, Vec<Execution>)], kills: &[(u32, u128)]) -> Evidence {
        Evidence {
            enqueued: jobs.iter().map(|j| j.0).collect(),
            states: jobs.iter().map(|j| (j.0, j.1.to_string())).collect(),
            executions: jobs
                .iter()
                .filter(|j| !j.2.is_empty())
                .map(|j| (j.0, j.2.clone()))
                .collect(),
            kills: kills.iter().copied().collect(),
            ended: 1_000_000_000,
        }
    }

    #[test]
    fn a_job_run_again_after_its_worker_was_killed_is_a_rescue_not_a_double_run() {
        let f = figures(&evidence(
            &[(
                1,
                "finished",
                vec![run(10, 1_000, None), run(11, 7_000_000, Some(7_002_000))],
            )],
            &[(10, 1_000_000)],
        ));
        assert_eq!((f.finished, f.lost, f.ran_twice_at_once), (1, 0, 0));
        assert_eq!((f.reruns_after_a_kill, f.reruns_after_an_end), (1, 0));
        assert_eq!(
            (f.rescue_ms_median, f.rescue_ms_max),
            (Some(6_000), Some(6_000))
        );
        assert!(f.failures().is_empty());
    }

    #[test]
    fn a_job_started_elsewhere_before_its_killed_run_died_ran_twice_at_once() {
        let f = figures(&evidence(
            &[(
                1,
                "finished",
                vec![run(10, 1_000, None), run(11, 500_000, Some(600_000))],
            )],
            &[(10, 1_000_000)],
        ));
        assert_eq!(f.ran_twice_at_once, 1);
        assert_eq!(
            f.failures(),
            vec!["1 jobs ran twice at the same time (must be 0)"]
        );
    }

    #[test]
    fn a_run_of_a_process_never_killed_and_never_ended_lasts_until_the_run_ended() {
        let f = figures(&evidence(
            &[(
                1,
                "finished",
                vec![
                    run(10, 1_000, None),
                    run(11, 900_000_000, Some(900_000_100)),
                ],
            )],
            &[],
        ));
        assert_eq!(f.ran_twice_at_once, 1);
    }

    #[test]
    fn a_job_run_again_after_a_run_that_ended_is_a_needless_rerun() {
        let f = figures(&evidence(
            &[(
                1,
                "finished",
                vec![run(10, 1_000, Some(2_000)), run(11, 3_000, Some(4_000))],
            )],
            &[],
        ));
        assert_eq!(
            (f.reruns_after_an_end, f.ran_twice_at_once, f.executions),
            (1, 0, 2)
        );
    }

    #[test]
    fn jobs_left_unsettled_or_finished_without_a_run_fail_the_run() {
        let f = figures(&evidence(
            &[
                (1, "inactive", vec![]),
                (2, "missing", vec![]),
                (3, "finished", vec![]),
                (4, "failed", vec![run(1, 1, Some(2))]),
            ],
            &[],
        ));
        assert_eq!(
            (f.lost, f.finished_without_running, f.failed, f.settled),
            (2, 1, 1, 2)
        );
        assert_eq!(
            f.failures(),
            vec![
                "2 jobs lost (must be 0)",
                "1 jobs finished without running (must be 0)"
            ]
        );
    }

    #[test]
    fn a_killed_run_that_nobody_ran_again_is_counted_as_never_rescued() {
        let f = figures(&evidence(
            &[(1, "active", vec![run(10, 1_000, None)])],
            &[(10, 5_000)],
        ));
        assert_eq!((f.never_rescued, f.lost, f.rescue_ms_max), (1, 1, None));
    }
}
