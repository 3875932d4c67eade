//! An example task plugin. Write your own the same way: a crate that depends on `underling`,
//! one type per task implementing [`underling::Task`], each registered with
//! [`underling::register_task!`]; the worker binary links the crate with `use my_tasks as _;`.

use std::io::Write;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};
use underling::{JobContext, Task, TaskError, TaskOptions, TaskResult};

/// Arguments of `example.add`.
#[derive(Debug, Deserialize)]
pub struct AddArgs {
    /// The numbers to add.
    pub numbers: Vec<i64>,
}

/// `example.add`: adds numbers, reporting progress in the job's notes.
#[derive(Debug, Default)]
pub struct Add;

#[underling::async_trait]
impl Task for Add {
    type Args = AddArgs;
    fn name(&self) -> &'static str {
        "example.add"
    }
    fn options(&self) -> TaskOptions {
        TaskOptions {
            attempts: Some(3),
            timeout: Some(Duration::from_secs(10)),
            ..TaskOptions::default()
        }
    }
    async fn run(&self, ctx: &JobContext, args: AddArgs) -> TaskResult {
        let mut sum: i64 = 0;
        for n in &args.numbers {
            sum = sum
                .checked_add(*n)
                .ok_or_else(|| TaskError::msg("the sum overflows a 64-bit integer"))?;
        }
        ctx.progress(json!(100)).await?;
        Ok(json!({ "sum": sum }))
    }
}
underling::register_task!(Add);

/// Arguments of `example.record`.
#[derive(Debug, Deserialize)]
pub struct RecordArgs {
    /// The file to append to.
    pub file: String,
    /// How long to work between the two lines, in milliseconds.
    #[serde(default)]
    pub ms: u64,
}

/// `example.record`: appends `start <job> <pid> <micros>` and `end <job> <pid> <micros>` lines
/// to a file, with some work in between (it ignores a stop). The end line is written however
/// the run ends: when the task returns, and when its future is dropped (a kill, or a stop
/// whose grace ran out); only a process that dies leaves a run without one. The multi-process
/// tests use it to prove that every job ran and that no job ran in two places at once.
#[derive(Debug, Default)]
pub struct Record;

fn append(file: &str, line: &str) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)?;
    // One short write with O_APPEND: lines from many processes never interleave.
    f.write_all(line.as_bytes())
}

#[underling::async_trait]
impl Task for Record {
    type Args = RecordArgs;
    fn name(&self) -> &'static str {
        "example.record"
    }
    async fn run(&self, ctx: &JobContext, args: RecordArgs) -> TaskResult {
        append(
            &args.file,
            &format!("start {} {} {}\n", ctx.id(), std::process::id(), micros()),
        )?;
        let run = Run {
            file: &args.file,
            job: ctx.id(),
        };
        if args.ms > 0 {
            tokio::time::sleep(Duration::from_millis(args.ms)).await;
        }
        run.end()?;
        Ok(Value::Null)
    }
}

/// Microseconds since the epoch.
fn micros() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros())
        .unwrap_or(0)
}

/// A recorded run under way: its end line is written when it ends, or when it is dropped.
struct Run<'a> {
    file: &'a str,
    job: i64,
}

impl Run<'_> {
    fn line(&self) -> String {
        format!("end {} {} {}\n", self.job, std::process::id(), micros())
    }

    /// Ends the run, reporting a failed write.
    fn end(self) -> std::io::Result<()> {
        let written = append(self.file, &self.line());
        // Written once: not again on drop.
        std::mem::forget(self);
        written
    }
}

impl Drop for Run<'_> {
    fn drop(&mut self) {
        // Dropped before its end: the future was dropped. Nobody can be told of a failed write.
        let _ = append(self.file, &self.line());
    }
}
underling::register_task!(Record);
