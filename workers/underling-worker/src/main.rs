//! `underling-worker`: claims jobs from the database and runs the tasks linked into it.

use std::fmt;
use std::process::ExitCode;
use std::str::FromStr;
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches, Parser};
use underling::{
    ConnectOptions, Queue, Registry, RepairOptions, Worker, WorkerOptions, WorkloadSpec,
};
use underling_workload::{DispatchOptions, Dispatcher};

// Task plugin crates register their tasks with `inventory`; a crate the binary never names is
// dropped by the linker, and its tasks with it.
use underling_builtin_tasks as _;
use underling_example_tasks as _;

/// Runs underling jobs.
#[derive(Debug, Parser)]
#[command(name = "underling-worker", version, about)]
struct Args {
    /// Database URL: postgres://…, sqlite://path or sqlite::memory:.
    #[arg(
        long,
        env = "UNDERLING_DATABASE_URL",
        hide_env_values = true,
        default_value = underling::DEFAULT_DATABASE_URL
    )]
    database: String,
    /// PostgreSQL schema holding underling's tables.
    #[arg(long, env = "UNDERLING_SCHEMA", hide_env_values = true)]
    schema: Option<String>,
    /// The database URL leads to PgBouncer in transaction mode: every call is one transaction,
    /// nothing LISTENs (the worker polls every --poll-interval), and it does not migrate
    /// (migrate against PostgreSQL directly). See the README's "PgBouncer".
    #[arg(long, env = "UNDERLING_PGBOUNCER", value_parser = clap::builder::FalseyValueParser::new())]
    pgbouncer: bool,
    /// Queue to claim from (repeat for several) [default: `default` and every queue a task of
    /// this binary declares as its default].
    #[arg(short, long = "queue")]
    queues: Vec<String>,
    /// How many jobs run at once.
    #[arg(
        short,
        long,
        default_value_t = WorkerOptions::default().concurrency,
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..)
    )]
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
    /// How often to record that this worker is alive. A heartbeat that takes longer counts as
    /// failed; after none got through for missing-after minus one interval minus the longest
    /// stop grace of the tasks, the worker claims nothing and stops its jobs.
    #[arg(long, default_value_t = HumanDuration(WorkerOptions::default().heartbeat_interval))]
    heartbeat_interval: HumanDuration,
    /// A worker silent this long is taken for dead and its jobs are rescued. At least 4
    /// heartbeat intervals plus the longest stop grace of the tasks (2 s by default); use the
    /// same for every worker.
    #[arg(long, default_value_t = HumanDuration(RepairOptions::default().missing_after))]
    missing_after: HumanDuration,
    /// About how often to run repair (jittered ±50%).
    #[arg(long, default_value_t = HumanDuration(WorkerOptions::default().repair_interval))]
    repair_interval: HumanDuration,
    /// How often an idle worker looks for jobs without being woken.
    #[arg(long, default_value_t = HumanDuration(WorkerOptions::default().poll_interval))]
    poll_interval: HumanDuration,
    /// How often to read remote commands.
    #[arg(long, default_value_t = HumanDuration(WorkerOptions::default().command_interval))]
    command_interval: HumanDuration,
    /// How often the scheduler looks for due schedules (one query each time).
    #[arg(long, default_value_t = HumanDuration(WorkerOptions::default().schedule_interval))]
    schedule_interval: HumanDuration,
    /// Run no scheduler: this worker enqueues no schedule's ticks (others do).
    #[arg(long)]
    no_scheduler: bool,
    /// On SIGTERM/SIGINT, how long running jobs may take to finish.
    #[arg(long, default_value_t = HumanDuration(WorkerOptions::default().shutdown_grace))]
    shutdown_grace: HumanDuration,
    /// How many database connections this worker keeps open at most (beside its one LISTEN
    /// connection on PostgreSQL).
    #[arg(
        long,
        env = "UNDERLING_POOL_SIZE",
        default_value_t = 10,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pool_size: u32,
    /// How to write log lines on stderr (UNDERLING_LOG, or RUST_LOG, sets the filter; info by
    /// default).
    #[arg(long, value_name = "FORMAT", value_enum, default_value_t = underling_log::LogFormat::Text)]
    log_format: underling_log::LogFormat,
    /// HTTP workloads to run beside the tasks linked in: a TOML file of `[[workload]]`
    /// tables (name, url, mode, timeout, max_concurrency, lease, headers).
    #[arg(long, value_name = "FILE", env = "UNDERLING_WORKLOADS")]
    workloads: Option<std::path::PathBuf>,
    /// Also run the workloads stored in the database (`underling workload add`); one in the
    /// file wins over a stored one of the same name.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    stored_workloads: bool,
    /// Apply pending migrations at start [default: true; false with --pgbouncer, where
    /// `--migrate true` is refused].
    #[arg(long, action = clap::ArgAction::Set)]
    migrate: Option<bool>,
}

fn main() -> ExitCode {
    let matches = Args::command().get_matches();
    let defaulted = matches.value_source("database") == Some(ValueSource::DefaultValue);
    let args = match Args::from_arg_matches(&matches) {
        Ok(args) => args,
        Err(e) => e.exit(),
    };
    underling_log::init(args.log_format, Some("info"));
    if defaulted && !args.list_tasks {
        eprintln!(
            "note: using the default database {}; set --database or UNDERLING_DATABASE_URL",
            underling::DEFAULT_DATABASE_URL
        );
    }
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(Failure::from)
        .and_then(|runtime| runtime.block_on(run(args)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            // One line, as the `underling` CLI prints it (no backtrace, no "Caused by" list:
            // underling's errors carry their cause in their message).
            let message = failure.message.replace(['\r', '\n'], " ");
            eprintln!("error: {message}");
            ExitCode::from(failure.code)
        }
    }
}

/// Why the worker stopped with an error, and its exit code: 2 for bad flags, 1 otherwise.
struct Failure {
    message: String,
    code: u8,
}

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(error: E) -> Self {
        Failure {
            message: error.to_string(),
            code: 1,
        }
    }
}

/// The queues to claim from: those given, or `default` and every queue a task declares (so
/// that a task's jobs, which go to its declared queue, are run without a flag).
fn queues(given: &[String], registry: &Registry) -> Vec<String> {
    if !given.is_empty() {
        return given.to_vec();
    }
    let mut queues = WorkerOptions::default().queues;
    for queue in registry.defaults().into_iter().filter_map(|t| t.queue) {
        if !queues.contains(&queue) {
            queues.push(queue);
        }
    }
    queues
}

/// Connects, checks and runs the worker (or a foreground job).
async fn run(args: Args) -> Result<(), Failure> {
    let registry = Registry::from_inventory()?;
    if args.list_tasks {
        for name in registry.names() {
            println!("{name}");
        }
        return Ok(());
    }
    let options = WorkerOptions {
        queues: queues(&args.queues, &registry),
        concurrency: args.jobs,
        heartbeat_interval: args.heartbeat_interval.0,
        command_interval: args.command_interval.0,
        poll_interval: args.poll_interval.0,
        repair_interval: args.repair_interval.0,
        repair: RepairOptions {
            missing_after: args.missing_after.0,
            ..RepairOptions::default()
        },
        shutdown_grace: args.shutdown_grace.0,
        burst: args.burst,
        scheduler: !args.no_scheduler,
        schedule_interval: args.schedule_interval.0,
        ..WorkerOptions::default()
    };
    // Bad flags are a usage error, found before connecting.
    if let Err(e) = options.check(&registry) {
        return Err(Failure {
            message: e.to_string(),
            code: 2,
        });
    }
    let mut connect = ConnectOptions::new(&args.database)
        .migrate(args.migrate.unwrap_or(!args.pgbouncer))
        .pgbouncer(args.pgbouncer)
        .max_connections(args.pool_size);
    if let Some(schema) = &args.schema {
        connect = connect.schema(schema);
    }
    // A bad workloads file is found before connecting too.
    let file_workloads = match &args.workloads {
        Some(path) => underling_workload::load_workloads(path)?,
        None => Vec::new(),
    };
    // Listen before anything else that takes time: until then a SIGTERM would kill the
    // process the default way, with no graceful stop. A worker that cannot listen does not
    // start.
    let mut signals = Signals::listen()
        .map_err(|e| Failure::from(format!("listening for SIGINT and SIGTERM: {e}")))?;
    let queue = tokio::select! {
        queue = connect_patiently(connect) => queue?,
        _ = signals.recv() => {
            tracing::info!("stopped before the database could be reached");
            return Ok(());
        }
    };
    let dispatch = DispatchOptions {
        queues: options.queues.clone(),
        poll_interval: options.poll_interval,
        shutdown_grace: options.shutdown_grace,
        burst: options.burst,
        ..DispatchOptions::default()
    };
    let workloads = workloads(&queue, file_workloads, args.stored_workloads, &registry).await?;
    let worker = Worker::new(queue.clone(), registry, options);

    if let Some(id) = args.foreground {
        let run = tokio::select! {
            run = worker.run_foreground(id) => run?,
            _ = signals.recv() => {
                return Err(format!(
                    "interrupted while job {id} ran; its worker is left as it was, and repair rescues the job once the worker counts as missing"
                )
                .into());
            }
        };
        println!("{}", serde_json::to_string_pretty(&run.job)?);
        queue.close().await;
        if run.job.state == underling::JobState::Finished {
            return Ok(());
        }
        return Err(format!("job {id} did not finish: it is {}", run.job.state).into());
    }

    let dispatcher = Dispatcher::new(queue.clone(), workloads, dispatch)?;
    let dispatch_control = dispatcher.control();
    let control = worker.control();
    tokio::spawn(async move {
        // First signal: stop claiming and let running jobs finish. Second: stop now.
        signals.recv().await;
        tracing::info!("stopping gracefully (send the signal again to stop at once)");
        control.stop();
        dispatch_control.stop();
        signals.recv().await;
        tracing::info!("stopping now");
        control.stop_now();
        dispatch_control.stop_now();
    });
    // The worker and the dispatcher run side by side; one that ends by itself (a burst with
    // nothing left) waits for the other, one that fails stops the other.
    let (stop_dispatch, stop_worker) = (dispatcher.control(), worker.control());
    let (summary, dispatched) = tokio::join!(
        async {
            let summary = worker.run().await;
            if summary.is_err() {
                stop_dispatch.stop();
            }
            summary
        },
        async {
            let dispatched = dispatcher.run().await;
            if dispatched.is_err() {
                stop_worker.stop();
            }
            dispatched
        }
    );
    let summary = summary?;
    let dispatched = dispatched?;
    tracing::info!(
        performed = summary.performed,
        finished = summary.finished,
        failed = summary.failed,
        dispatched = dispatched.dispatched,
        "bye"
    );
    queue.close().await;
    Ok(())
}

/// Connects, waiting for a database that cannot be reached yet (a server starting up or
/// restarting, a network not up yet): a transient error is logged at warn and the connection
/// tried again with backoff (0.5 s, doubling, at most 30 s), for as long as it takes. Any
/// other error (a bad URL, a refused password, a schema not migrated) ends the worker at once.
async fn connect_patiently(connect: ConnectOptions) -> Result<Queue, Failure> {
    let mut backoff = std::time::Duration::from_millis(500);
    loop {
        match Queue::connect_with(connect.clone()).await {
            Ok(queue) => return Ok(queue),
            Err(e) if e.is_transient() => {
                tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "cannot reach the database yet");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(std::time::Duration::from_secs(30));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// The workloads to run: those of the file, then the stored ones (unless turned off) whose
/// names the file does not use. A workload may not take the name of a linked task.
async fn workloads(
    queue: &Queue,
    mut specs: Vec<WorkloadSpec>,
    stored: bool,
    registry: &Registry,
) -> Result<Vec<WorkloadSpec>, Failure> {
    if stored {
        for workload in queue.workloads().await? {
            if specs.iter().any(|s| s.name == workload.spec.name) {
                tracing::warn!(
                    workload = workload.spec.name,
                    "the workloads file overrides the stored workload of the same name"
                );
                continue;
            }
            specs.push(workload.spec);
        }
    }
    if let Some(clash) = specs.iter().find(|s| registry.get(&s.name).is_some()) {
        return Err(format!(
            "workload {:?} has the name of a task linked into this worker: rename one of them",
            clash.name
        )
        .into());
    }
    Ok(specs)
}

/// A duration as `humantime` writes and reads it ("5s", "1m 30s"), so that `--help` shows the
/// library's defaults in the form the flags accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct HumanDuration(Duration);

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&humantime::format_duration(self.0), f)
    }
}

impl FromStr for HumanDuration {
    type Err = humantime::DurationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        humantime::parse_duration(s).map(HumanDuration)
    }
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

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn flags_default_to_the_library_defaults() {
        let args = Args::try_parse_from(["underling-worker"]).expect("no flags parse");
        let worker = WorkerOptions::default();
        assert!(args.queues.is_empty(), "the queues come from the tasks");
        assert_eq!(queues(&args.queues, &Registry::new()), worker.queues);
        assert_eq!(worker.queues, [underling::DEFAULT_QUEUE]);
        assert_eq!(args.jobs, worker.concurrency);
        assert_eq!(args.heartbeat_interval.0, worker.heartbeat_interval);
        assert_eq!(args.missing_after.0, RepairOptions::default().missing_after);
        assert_eq!(args.repair_interval.0, worker.repair_interval);
        assert_eq!(args.poll_interval.0, worker.poll_interval);
        assert_eq!(args.command_interval.0, worker.command_interval);
        assert_eq!(args.shutdown_grace.0, worker.shutdown_grace);
    }

    #[test]
    fn without_queue_flags_the_worker_claims_from_default_and_the_tasks_declared_queues() {
        struct Mail;
        #[underling::async_trait]
        impl underling::Task for Mail {
            type Args = serde_json::Value;
            fn name(&self) -> &'static str {
                "mail.send"
            }
            fn options(&self) -> underling::TaskOptions {
                underling::TaskOptions {
                    queue: Some("mail".into()),
                    ..underling::TaskOptions::default()
                }
            }
            async fn run(
                &self,
                _ctx: &underling::JobContext,
                args: serde_json::Value,
            ) -> underling::TaskResult {
                Ok(args)
            }
        }
        let mut registry = Registry::new();
        registry.register(Mail).expect("register");
        assert_eq!(queues(&[], &registry), ["default", "mail"]);
        assert_eq!(queues(&["bulk".to_string()], &registry), ["bulk"]);
    }

    #[test]
    fn help_shows_the_defaults_as_the_flags_accept_them() {
        let help = Args::command().render_long_help().to_string();
        for (flag, default) in [
            ("--jobs", "64"),
            ("--heartbeat-interval", "1s"),
            ("--missing-after", "6s"),
            ("--repair-interval", "30s"),
            ("--poll-interval", "2s"),
            ("--command-interval", "1s"),
            ("--shutdown-grace", "30s"),
        ] {
            // The flag's own entry (`--flag <VALUE>`), not a mention in another's text.
            let at = help
                .find(&format!("{flag} <"))
                .unwrap_or_else(|| panic!("{flag} in help"));
            // The flag's line and the lines of its description, up to the next flag.
            let mut lines = help[at..].lines();
            let mut entry = lines.next().unwrap_or_default().to_string();
            for line in lines.take_while(|line| !line.trim_start().starts_with('-')) {
                entry.push('\n');
                entry.push_str(line);
            }
            assert!(
                entry.contains(&format!("[default: {default}]")),
                "{flag}: {entry}"
            );
        }
    }

    #[test]
    fn durations_parse_as_before() {
        let args = Args::try_parse_from(["underling-worker", "--poll-interval", "1m 30s"])
            .expect("a humantime duration parses");
        assert_eq!(args.poll_interval.0, Duration::from_secs(90));
        assert!(Args::try_parse_from(["underling-worker", "--poll-interval", "soon"]).is_err());
    }
}
