//! One module per command group. Each command calls the library and returns the text to print
//! on standard output (JSON with `--json`).

use anyhow::anyhow;
use serde_json::Value;
use underling::{ConnectOptions, Queue};

use crate::cli::{Cli, Command};

mod audit;
mod batch;
mod bench;
mod job;
mod limit;
mod lock;
mod migrate;
mod progress;
mod queue;
mod repair;
mod schedule;
mod serve;
mod stats;
mod task;
mod worker;
mod workload;

pub use job::Unsuccessful;

/// Where to connect, from the global flags.
#[derive(Clone, Copy)]
pub struct Target<'a> {
    /// The database URL.
    pub url: &'a str,
    /// The PostgreSQL schema, if any.
    pub schema: Option<&'a str>,
    /// Through PgBouncer in transaction mode (`--pgbouncer`).
    pub pgbouncer: bool,
    /// How many connections the pool keeps at most (`--pool-size`).
    pub pool_size: u32,
}

/// Runs a parsed command line; returns what to print on standard output.
pub async fn run(cli: Cli) -> anyhow::Result<String> {
    let target = Target {
        url: &cli.database,
        schema: cli.schema.as_deref(),
        pgbouncer: cli.pgbouncer,
        pool_size: cli.pool_size,
    };
    let json = cli.json;
    match cli.command {
        Command::Migrate => migrate::run(&target, json).await,
        Command::Job(command) => {
            with_queue(&target, async |q| job::run(q, command, json).await).await
        }
        Command::Queue(command) => {
            with_queue(&target, async |q| queue::run(q, command, json).await).await
        }
        Command::Worker(command) => {
            with_queue(&target, async |q| worker::run(q, command, json).await).await
        }
        Command::Lock(command) => {
            with_queue(&target, async |q| lock::run(q, command, json).await).await
        }
        Command::Limit(command) => {
            with_queue(&target, async |q| limit::run(q, command, json).await).await
        }
        Command::Task(command) => {
            with_queue(&target, async |q| task::run(q, command, json).await).await
        }
        Command::Schedule(command) => {
            with_queue(&target, async |q| schedule::run(q, command, json).await).await
        }
        Command::Workload(command) => {
            with_queue(&target, async |q| workload::run(q, command, json).await).await
        }
        Command::Stats => with_queue(&target, async |q| stats::stats(q, json).await).await,
        Command::History => with_queue(&target, async |q| stats::history(q, json).await).await,
        Command::Repair(args) => {
            with_queue(&target, async |q| repair::run(q, args, json).await).await
        }
        Command::Bench(args) => bench::run(&target, args, json).await,
        Command::Audit(command) => {
            with_queue(&target, async |q| audit::run(q, command, json).await).await
        }
        Command::Events(args) => with_queue(&target, async |q| audit::follow(q, args).await).await,
        Command::Serve(args) => serve::run(&target, args).await,
    }
}

/// Connects, runs `command` and closes the pool.
async fn with_queue(
    target: &Target<'_>,
    command: impl AsyncFnOnce(&Queue) -> anyhow::Result<String>,
) -> anyhow::Result<String> {
    let queue = connect(target).await?;
    let result = command(&queue).await;
    queue.close().await;
    result
}

/// Connects to a migrated database; fails with the library's "not migrated" error otherwise
/// (a SQLite file that does not exist is not created).
async fn connect(target: &Target<'_>) -> anyhow::Result<Queue> {
    let mut options = ConnectOptions::new(target.url)
        .max_connections(target.pool_size)
        .pgbouncer(target.pgbouncer);
    if let Some(schema) = target.schema {
        options = options.schema(schema);
    }
    Ok(Queue::connect_with(options).await?)
}

/// Parses the JSON given to a flag: the text itself, `@PATH` for a file's contents, or `-` for
/// standard input. Errors name the flag (and the file).
fn parse_json(flag: &str, text: &str) -> anyhow::Result<Value> {
    let (source, content) = if text == "-" {
        let mut content = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut content)
            .map_err(|e| anyhow!("{flag} -: cannot read standard input: {e}"))?;
        (" (standard input)".to_string(), content)
    } else if let Some(path) = text.strip_prefix('@') {
        let content = std::fs::read_to_string(path)
            .map_err(|e| anyhow!("{flag} @{path}: cannot read the file: {e}"))?;
        (format!(" (in {path})"), content)
    } else {
        (String::new(), text.to_string())
    };
    serde_json::from_str(&content).map_err(|e| anyhow!("{flag} is not valid JSON{source}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_errors_name_the_flag() {
        let error = parse_json("--args", "[x").unwrap_err();
        assert_eq!(
            error.to_string(),
            "--args is not valid JSON: expected value at line 1 column 2"
        );
    }
}
