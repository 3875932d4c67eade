//! The record file written by the `example.record` task: `start <job> <pid> <micros>` and
//! `end <job> <pid> <micros>` lines, appended by every worker process outside the queue's
//! tables. A run of a process that died has a start and no end.

use std::collections::BTreeMap;
use std::path::Path;

/// One execution of a job in one process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Execution {
    /// The process that ran it.
    pub pid: u32,
    /// When it started, in microseconds since the epoch.
    pub start: u128,
    /// When it ended; `None` if its process died first.
    pub end: Option<u128>,
}

/// A line of the record file that makes no sense.
#[derive(Debug, thiserror::Error)]
#[error("malformed record line {line:?}: {reason}")]
pub struct Malformed {
    /// The line.
    pub line: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// Every execution of every job, by job id, in file order. A last line still being written
/// (no newline yet) is left out.
pub fn executions(path: &Path) -> Result<BTreeMap<i64, Vec<Execution>>, Malformed> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    parse(&text)
}

/// [`executions`] of the text of a record file.
pub fn parse(text: &str) -> Result<BTreeMap<i64, Vec<Execution>>, Malformed> {
    let complete = &text[..text.rfind('\n').map_or(0, |i| i + 1)];
    let mut runs: BTreeMap<i64, Vec<Execution>> = BTreeMap::new();
    for line in complete.lines() {
        let bad = |reason| Malformed {
            line: line.to_string(),
            reason,
        };
        let fields: Vec<&str> = line.split(' ').collect();
        let [kind, job, pid, at] = fields[..] else {
            return Err(bad("not four fields"));
        };
        let job: i64 = job.parse().map_err(|_| bad("the job id is not a number"))?;
        let pid: u32 = pid.parse().map_err(|_| bad("the pid is not a number"))?;
        let at: u128 = at.parse().map_err(|_| bad("the time is not a number"))?;
        let list = runs.entry(job).or_default();
        match kind {
            "start" => list.push(Execution {
                pid,
                start: at,
                end: None,
            }),
            "end" => {
                let open = list
                    .iter_mut()
                    .rev()
                    .find(|e| e.pid == pid && e.end.is_none())
                    .ok_or_else(|| bad("an end without a start in that process"))?;
                open.end = Some(at);
            }
            _ => return Err(bad("neither start nor end")),
        }
    }
    Ok(runs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_start_and_its_end_make_one_execution_and_a_start_alone_an_open_one() {
        let runs =
            parse("start 1 10 100\nstart 2 11 150\nend 1 10 200\nstart 1 12 300\nend 1 12 4")
                .unwrap();
        assert_eq!(
            runs[&1],
            vec![
                Execution {
                    pid: 10,
                    start: 100,
                    end: Some(200)
                },
                Execution {
                    pid: 12,
                    start: 300,
                    end: None
                },
            ]
        );
        assert_eq!(
            runs[&2],
            vec![Execution {
                pid: 11,
                start: 150,
                end: None
            }]
        );
    }

    #[test]
    fn an_end_without_a_start_is_malformed() {
        let error = parse("end 1 10 200\n").unwrap_err();
        assert_eq!(error.reason, "an end without a start in that process");
    }
}
