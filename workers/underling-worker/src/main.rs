//! `underling-worker`: claims jobs from the database and runs the tasks linked into it.

use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use underling::{ConnectOptions, Queue, Registry, RepairOptions, Worker, WorkerOptions};

// Task plugin crates register their tasks with `inventory`; a crate the binary never names is
// dropped by the linker, and its tasks with it.
use underling_builtin_tasks as _;
use underling_example_tasks as _;

/// Runs underling jobs.
#[derive(Debug, Parser)]
#[command(name = "underling-worker", version, about)]
struct Args {
    /// Database URL: postgres://…, sqlite://path or sqlite::memory:.
    #[arg(long, env = "UNDERLING_DATABASE_URL", default_value = underling::DEFAULT_DATABASE_URL)]
    database: String,
    /// PostgreSQL schema holding underling's tables.
    #[arg(long, env = "UNDERLING_SCHEMA")]
    schema: Option<String>,
    /// Queue to claim from (repeat for several).
    #[arg(short, long = "queue", default_value = "default")]
    queues: Vec<String>,
    /// How many jobs run at once.
    #[arg(short, long, default_value_t = WorkerOptions::default().concurrency)]
    jobs: usize,
    /// Exit once no job this worker can run is ready.
    #[arg(long)]
    burst: bool,
    /// List the tasks this worker can perform, and exit.
    #[arg(long)]
    list_tasks: bool,
    /// Run one job by id in this process, print its result, and exit.
    #[arg(long, value_name = "ID")]
    foreground: Option<i64>,
    /// How often to record that this worker is alive.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "5s")]
    heartbeat_interval: Duration,
    /// A worker silent this long is taken for dead and its jobs are rescued.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "30s")]
    missing_after: Duration,
    /// About how often to run repair (jittered ±50%).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "30s")]
    repair_interval: Duration,
    /// How often an idle worker looks for jobs without being woken.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "2s")]
    poll_interval: Duration,
    /// How often to read remote commands.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "1s")]
    command_interval: Duration,
    /// On SIGTERM/SIGINT, how long running jobs may take to finish.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "30s")]
    shutdown_grace: Duration,
    /// Apply pending migrations at start.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    migrate: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let registry = Registry::from_inventory().context("loading tasks")?;
    if registry.is_empty() {
        anyhow::bail!("no tasks are linked into this worker");
    }
    if args.list_tasks {
        for name in registry.names() {
            println!("{name}");
        }
        return Ok(());
    }
    let mut connect = ConnectOptions::new(&args.database)
        .migrate(args.migrate)
        .max_connections(10);
    if let Some(schema) = &args.schema {
        connect = connect.schema(schema);
    }
    let queue = Queue::connect_with(connect).await?;
    let options = WorkerOptions {
        queues: args.queues.clone(),
        concurrency: args.jobs,
        heartbeat_interval: args.heartbeat_interval,
        command_interval: args.command_interval,
        poll_interval: args.poll_interval,
        repair_interval: args.repair_interval,
        repair: RepairOptions {
            missing_after: args.missing_after,
            ..RepairOptions::default()
        },
        shutdown_grace: args.shutdown_grace,
        burst: args.burst,
        ..WorkerOptions::default()
    };
    let worker = Worker::new(queue.clone(), registry, options);

    if let Some(id) = args.foreground {
        let run = worker.run_foreground(id).await?;
        println!("{}", serde_json::to_string_pretty(&run.job)?);
        queue.close().await;
        if run.job.state == underling::JobState::Finished {
            return Ok(());
        }
        anyhow::bail!("job {id} did not finish: it is {}", run.job.state);
    }

    let control = worker.control();
    // Listen before the worker claims anything: until then a SIGTERM would kill the process
    // the default way, with no graceful stop. A worker that cannot listen does not start.
    let mut signals = Signals::listen().context("listening for SIGINT and SIGTERM")?;
    tokio::spawn(async move {
        // First signal: stop claiming and let running jobs finish. Second: stop now.
        signals.recv().await;
        tracing::info!("stopping gracefully (send the signal again to stop at once)");
        control.stop();
        signals.recv().await;
        tracing::info!("stopping now");
        control.stop_now();
    });
    let summary = worker.run().await?;
    tracing::info!(
        performed = summary.performed,
        finished = summary.finished,
        failed = summary.failed,
        "bye"
    );
    queue.close().await;
    Ok(())
}

/// SIGINT and SIGTERM, caught from the moment they are created.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn listen() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    /// Waits for the next SIGINT or SIGTERM.
    async fn recv(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}
