//! `underling-chaos`: the chaos run (see the library's documentation and the README's
//! Reliability section). Run it with `bash scripts/chaos.sh [--quick]`, which builds the
//! worker binary it drives.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use clap::Parser;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use tokio::process::{Child, Command};
use underling::{ConnectOptions, EnqueueOptions, NewJob, Queue};
use underling_chaos::cluster::Cluster;
use underling_chaos::proxy::Proxy;
use underling_chaos::record;
use underling_chaos::report::{self, Evidence, Figures};

/// The schema the run's jobs live in.
const SCHEMA: &str = "chaos";

/// Kills worker processes, crashes PostgreSQL and cuts a connection while jobs run, then
/// proves that no job was lost or run twice at the same time.
#[derive(Parser, Debug)]
#[command(name = "underling-chaos", version)]
struct Args {
    /// The short version for CI: 3,000 jobs on 4 workers (default: 20,000 on 8).
    #[arg(long)]
    quick: bool,
    /// How many jobs to run (half enqueued before the workers start, half while they run).
    #[arg(long)]
    jobs: Option<usize>,
    /// How many worker processes run at once.
    #[arg(long)]
    workers: Option<usize>,
    /// How many jobs each worker runs at once.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Seed of the run's randomness (job lengths, which worker dies when); printed, so that a
    /// run can be repeated.
    #[arg(long)]
    seed: Option<u64>,
    /// The worker binary (default: `underling-worker` beside this one).
    #[arg(long)]
    worker_bin: Option<PathBuf>,
    /// PostgreSQL's server binaries (default: the newest under /usr/lib/postgresql).
    #[arg(long)]
    pg_bin: Option<PathBuf>,
    /// Give up on jobs not settled after this many seconds.
    #[arg(long, default_value_t = 600)]
    timeout: u64,
    /// Keep the run's directory (record file, worker logs, server log) afterwards.
    #[arg(long)]
    keep: bool,
    /// Print the figures as JSON.
    #[arg(long)]
    json: bool,
}

/// The run's shape.
struct Plan {
    jobs: usize,
    workers: usize,
    concurrency: usize,
    /// How long a job works, in ms (uniform).
    job_ms: (u64, u64),
    /// The pause between two kills, in ms (uniform).
    kill_every_ms: (u64, u64),
    /// How long the server stays down.
    outage: Duration,
    /// How long the proxied worker's connection stays frozen before it is cut: longer than
    /// the default missing_after (6 s), so its jobs are rescued while it still holds them.
    freeze: Duration,
}

impl Plan {
    fn new(args: &Args) -> Plan {
        let (jobs, workers) = if args.quick { (3_000, 4) } else { (20_000, 8) };
        Plan {
            jobs: args.jobs.unwrap_or(jobs),
            workers: args.workers.unwrap_or(workers).max(2),
            concurrency: args.concurrency.max(1),
            job_ms: (20, 200),
            kill_every_ms: (1_000, 4_000),
            outage: Duration::from_secs(3),
            freeze: Duration::from_secs(10),
        }
    }
}

fn micros_now() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros())
        .unwrap_or(0)
}

/// One worker process.
struct Worker {
    child: Child,
    pid: u32,
    /// Whether it connects through the proxy.
    proxied: bool,
    /// When it was started.
    since: Instant,
    /// The queue only it claims from (beside `default`), for the wake-up probe.
    own_queue: String,
}

/// Starts and watches the worker processes.
struct Fleet {
    bin: PathBuf,
    dir: PathBuf,
    direct_url: String,
    proxied_url: String,
    concurrency: usize,
    workers: Vec<Worker>,
    /// When each killed process was killed, by pid.
    kills: HashMap<u32, u128>,
    exited_on_their_own: Vec<String>,
    started: usize,
}

impl Fleet {
    fn spawn(&mut self, proxied: bool) -> anyhow::Result<()> {
        self.started += 1;
        let log_path = self.dir.join(format!("worker-{}.log", self.started));
        let log =
            std::fs::File::create(&log_path).with_context(|| log_path.display().to_string())?;
        let url = if proxied {
            &self.proxied_url
        } else {
            &self.direct_url
        };
        let own_queue = format!("w{}", self.started);
        // Polling is slow on purpose: a worker that runs a probe job quickly was woken.
        let child = Command::new(&self.bin)
            .args(["--database", url, "--schema", SCHEMA])
            .args(["--queue", "default", "--queue", &own_queue])
            .args(["--poll-interval", &format!("{}s", PROBE_POLL.as_secs())])
            .args(["--jobs", &self.concurrency.to_string()])
            .env("UNDERLING_LOG", "info")
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", self.bin.display()))?;
        let pid = child.id().context("a worker without a pid")?;
        self.workers.push(Worker {
            child,
            pid,
            proxied,
            since: Instant::now(),
            own_queue,
        });
        Ok(())
    }

    /// SIGKILLs one worker that does not connect through the proxy, and starts another.
    fn kill_one(&mut self, rng: &mut StdRng) -> anyhow::Result<()> {
        let direct: Vec<usize> = (0..self.workers.len())
            .filter(|&i| !self.workers[i].proxied)
            .collect();
        let victim = direct[rng.random_range(0..direct.len())];
        let worker = self.workers.remove(victim);
        // SAFETY: kill(2) on a pid of our own child, which has not been reaped yet.
        unsafe { libc::kill(worker.pid as libc::pid_t, libc::SIGKILL) };
        self.kills.insert(worker.pid, micros_now());
        self.spawn(false)
    }

    /// Notices workers that exited although nobody stopped them, and replaces them.
    fn watch(&mut self) -> anyhow::Result<()> {
        let mut i = 0;
        while i < self.workers.len() {
            if let Some(status) = self.workers[i].child.try_wait()? {
                let worker = self.workers.remove(i);
                self.exited_on_their_own
                    .push(format!("pid {} ({status})", worker.pid));
                self.spawn(worker.proxied)?;
            } else {
                i += 1;
            }
        }
        Ok(())
    }

    /// SIGTERMs every worker and waits for it; returns those that did not exit with 0.
    async fn stop(&mut self) -> Vec<String> {
        // A process signalled before it could install its handler dies of the signal (holding
        // no job): let the newest replacement get that far.
        if let Some(newest) = self.workers.iter().map(|w| w.since).max() {
            tokio::time::sleep_until((newest + Duration::from_secs(2)).into()).await;
        }
        for worker in &self.workers {
            // SAFETY: as in kill_one.
            unsafe { libc::kill(worker.pid as libc::pid_t, libc::SIGTERM) };
        }
        let mut unclean = Vec::new();
        for worker in &mut self.workers {
            match tokio::time::timeout(Duration::from_secs(30), worker.child.wait()).await {
                Ok(Ok(status)) if status.success() => {}
                Ok(Ok(status)) => unclean.push(format!("pid {} ({status})", worker.pid)),
                Ok(Err(e)) => unclean.push(format!("pid {} ({e})", worker.pid)),
                Err(_) => unclean.push(format!(
                    "pid {} (still running 30 s after SIGTERM)",
                    worker.pid
                )),
            }
        }
        unclean
    }
}

/// The workers' poll interval: long, so that only a wake-up (LISTEN) starts a job quickly.
const PROBE_POLL: Duration = Duration::from_secs(30);

/// The wake-up probe's bound: a probe job started later than this after its enqueue was not
/// woken (its worker found it by polling, or not at all).
const PROBE_BOUND: Duration = Duration::from_secs(5);

/// After the chaos, one job for each worker that lived through the server's restart (and
/// the cut, for the proxied one), on the queue only that worker claims from: how long from
/// its enqueue until it started, in ms (`None`: not within the probe's wait). Proves that
/// LISTEN connections were re-established: at the workers' poll interval of 30 s, a worker
/// that was not woken would take seconds.
async fn probe_wakeups(
    queue: &Queue,
    fleet: &Fleet,
    restarted: Instant,
    record_file: &Path,
) -> anyhow::Result<Vec<(String, Option<u64>)>> {
    let mut probes = Vec::new();
    for worker in fleet.workers.iter().filter(|w| w.since < restarted) {
        let opts = EnqueueOptions::new().queue(&worker.own_queue);
        let enqueued = micros_now();
        let id = queue
            .enqueue(
                "example.record",
                json!({ "file": record_file, "ms": 0 }),
                opts,
            )
            .await?;
        probes.push((worker.own_queue.clone(), id, enqueued));
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let deadline = Instant::now() + PROBE_POLL + PROBE_BOUND;
    loop {
        let runs = record::executions(record_file)?;
        let started = |id: &i64| runs.get(id).and_then(|r| r.first()).map(|r| r.start);
        if probes.iter().all(|(_, id, _)| started(id).is_some()) || Instant::now() >= deadline {
            return Ok(probes
                .iter()
                .map(|(name, id, enqueued)| {
                    let ms = started(id).map(|s| (s.saturating_sub(*enqueued) / 1000) as u64);
                    (name.clone(), ms)
                })
                .collect());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What the enqueuer saw while the server was down.
#[derive(Default)]
struct Enqueuing {
    transient_errors: AtomicUsize,
    /// The longest call that failed, in ms.
    longest_failure_ms: AtomicU64,
}

/// Enqueues `jobs` in batches of 10, one batch every 50 ms (so that enqueueing goes on while
/// the server is down), retrying a batch that failed with a transient error until it went in.
async fn trickle(
    queue: Queue,
    jobs: Vec<NewJob>,
    seen: Arc<Enqueuing>,
) -> anyhow::Result<Vec<i64>> {
    let mut ids = Vec::with_capacity(jobs.len());
    for batch in jobs.chunks(10) {
        loop {
            let began = Instant::now();
            match queue.enqueue_batch(batch).await {
                Ok(got) => {
                    ids.extend(got);
                    break;
                }
                Err(e) if e.is_transient() => {
                    seen.transient_errors.fetch_add(1, Ordering::Relaxed);
                    seen.longest_failure_ms
                        .fetch_max(began.elapsed().as_millis() as u64, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => return Err(e).context("enqueueing (an error that is not transient)"),
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(ids)
}

fn jobs(count: usize, file: &Path, plan: &Plan, rng: &mut StdRng) -> anyhow::Result<Vec<NewJob>> {
    (0..count)
        .map(|_| {
            let ms = rng.random_range(plan.job_ms.0..=plan.job_ms.1);
            // Attempts to spare: every kill and every rescue takes one.
            let opts = EnqueueOptions::new().attempts(25);
            Ok(NewJob::new(
                "example.record",
                json!({ "file": file, "ms": ms }),
                opts,
            )?)
        })
        .collect()
}

/// The run's milestones, as they happened.
#[derive(Default)]
struct Milestones {
    restarted: Option<Duration>,
    cut: Option<Duration>,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::FAILURE,
        Err(e) => {
            eprintln!("underling-chaos: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

async fn run(args: Args) -> anyhow::Result<bool> {
    let plan = Plan::new(&args);
    let seed = args.seed.unwrap_or_else(|| micros_now() as u64);
    let mut rng = StdRng::seed_from_u64(seed);
    let worker_bin = match &args.worker_bin {
        Some(bin) => bin.clone(),
        None => std::env::current_exe()?.with_file_name("underling-worker"),
    };
    if !worker_bin.exists() {
        bail!(
            "no worker binary at {}: build it (cargo build --release -p underling-worker) or pass --worker-bin",
            worker_bin.display()
        );
    }
    let dir = std::env::temp_dir().join(format!("underling-chaos-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let record_file = dir.join("record");
    eprintln!(
        "chaos run: {} jobs, {} workers x {}, seed {seed}, files in {}",
        plan.jobs,
        plan.workers,
        plan.concurrency,
        dir.display()
    );

    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let bin = Cluster::binaries(args.pg_bin.as_deref())?;
    let cluster = Cluster::create(&bin, &dir.join("cluster"), port)?;
    let queue = Queue::connect_with(
        ConnectOptions::new(cluster.url())
            .schema(SCHEMA)
            .migrate(true),
    )
    .await?;
    let proxy = Proxy::start(&format!("127.0.0.1:{port}")).await?;

    let first_half = plan.jobs / 2;
    let mut enqueued = queue
        .enqueue_batch(&jobs(first_half, &record_file, &plan, &mut rng)?)
        .await?;
    let seen = Arc::new(Enqueuing::default());
    let rest = jobs(plan.jobs - first_half, &record_file, &plan, &mut rng)?;
    let trickler = tokio::spawn(trickle(queue.clone(), rest, seen.clone()));

    let mut fleet = Fleet {
        bin: worker_bin,
        dir: dir.clone(),
        direct_url: cluster.url(),
        proxied_url: format!("postgres://postgres@127.0.0.1:{}/postgres", proxy.port()),
        concurrency: plan.concurrency,
        workers: Vec::new(),
        kills: HashMap::new(),
        exited_on_their_own: Vec::new(),
        started: 0,
    };
    fleet.spawn(true)?;
    for _ in 1..plan.workers {
        fleet.spawn(false)?;
    }

    let began = Instant::now();
    let deadline = began + Duration::from_secs(args.timeout);
    let mut next_kill = began
        + Duration::from_millis(rng.random_range(plan.kill_every_ms.0..=plan.kill_every_ms.1));
    let mut milestones = Milestones::default();
    let mut settled = 0u64;
    let mut last_progress = began;
    let mut trickler = Some(trickler);
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        fleet.watch()?;
        // Jobs waiting or running; unknown while the server is down.
        let mut open = None;
        if let Ok(stats) = queue.stats().await {
            settled = stats.finished_jobs + stats.failed_jobs;
            open = Some(stats.inactive_jobs + stats.active_jobs);
        }
        let share = settled as f64 / plan.jobs as f64;
        let now = Instant::now();
        // Kills go on until 98% of the jobs settled: each one holds its jobs back for the
        // rescue delay, so killing to the last job would only stretch the end of the run.
        if now >= next_kill && share < 0.98 {
            fleet.kill_one(&mut rng)?;
            next_kill = now
                + Duration::from_millis(
                    rng.random_range(plan.kill_every_ms.0..=plan.kill_every_ms.1),
                );
        }
        if milestones.restarted.is_none() && share >= 0.3 {
            eprintln!(
                "[{:>6.1}s] crashing PostgreSQL (-m immediate), down for {:?}",
                began.elapsed().as_secs_f64(),
                plan.outage
            );
            cluster.crash()?;
            tokio::time::sleep(plan.outage).await;
            cluster.start()?;
            milestones.restarted = Some(began.elapsed());
            eprintln!(
                "[{:>6.1}s] PostgreSQL is back",
                began.elapsed().as_secs_f64()
            );
        }
        if milestones.restarted.is_some() && milestones.cut.is_none() && share >= 0.5 {
            eprintln!(
                "[{:>6.1}s] freezing the proxied worker's connections for {:?}",
                began.elapsed().as_secs_f64(),
                plan.freeze
            );
            proxy.freeze();
            // Kills and the watch go on while the connection is frozen.
            let thaw_at = Instant::now() + plan.freeze;
            while Instant::now() < thaw_at {
                tokio::time::sleep(Duration::from_millis(200)).await;
                fleet.watch()?;
            }
            proxy.cut();
            milestones.cut = Some(began.elapsed());
            eprintln!(
                "[{:>6.1}s] cut them (new connections go through)",
                began.elapsed().as_secs_f64()
            );
        }
        if let Some(handle) = trickler.take_if(|t| t.is_finished()) {
            enqueued.extend(handle.await??);
        }
        if now.duration_since(last_progress) >= Duration::from_secs(2) {
            last_progress = now;
            eprintln!(
                "[{:>6.1}s] settled {settled}/{} · {} kills · {} workers exited on their own",
                began.elapsed().as_secs_f64(),
                plan.jobs,
                fleet.kills.len(),
                fleet.exited_on_their_own.len()
            );
        }
        let all_in = trickler.is_none();
        // Done when every job is in and none waits or runs: normally all of them settled,
        // and if some were lost, the verdict counts them.
        if all_in && open == Some(0) && milestones.cut.is_some() {
            break;
        }
        if now >= deadline {
            eprintln!(
                "gave up after {} s with {settled} of {} jobs settled",
                args.timeout, plan.jobs
            );
            break;
        }
    }
    if let Some(handle) = trickler.take() {
        handle.abort();
    }
    let wall = began.elapsed();
    let probes = match milestones.restarted {
        Some(at) => probe_wakeups(&queue, &fleet, began + at, &record_file).await?,
        None => Vec::new(),
    };
    let unclean = fleet.stop().await;
    let ended = micros_now();

    // The verdict, from the database and the record.
    let pool = sqlx::PgPool::connect(&cluster.url()).await?;
    let rows: Vec<(i64, String)> =
        sqlx::query_as("SELECT id, state::text FROM chaos.underling_jobs")
            .fetch_all(&pool)
            .await?;
    pool.close().await;
    queue.close().await;
    let evidence = Evidence {
        enqueued,
        states: rows.into_iter().collect(),
        executions: record::executions(&record_file)?,
        kills: fleet.kills.clone(),
        ended,
    };
    let mut figures = report::figures(&evidence);
    figures.workers_exited_on_their_own = fleet.exited_on_their_own.len();
    let mut failures = figures.failures();
    if figures.enqueued != plan.jobs {
        failures.push(format!(
            "only {} of {} jobs were enqueued",
            figures.enqueued, plan.jobs
        ));
    }
    let slow: Vec<String> = probes
        .iter()
        .filter(|(_, ms)| ms.is_none_or(|ms| ms > PROBE_BOUND.as_millis() as u64))
        .map(|(queue, ms)| match ms {
            Some(ms) => format!("{queue}: {ms} ms"),
            None => format!("{queue}: never"),
        })
        .collect();
    if !slow.is_empty() {
        failures.push(format!(
            "workers not woken within {:?} after the restart (LISTEN not re-established?): {}",
            PROBE_BOUND,
            slow.join(", ")
        ));
    }
    let probe_max = probes.iter().filter_map(|(_, ms)| *ms).max();
    if !unclean.is_empty() {
        failures.push(format!(
            "workers that did not stop cleanly on SIGTERM: {}",
            unclean.join(", ")
        ));
    }
    let warns = count_warnings(&dir)?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "seed": seed,
                "wall_seconds": wall.as_secs_f64(),
                "figures": figures,
                "enqueue_transient_errors": seen.transient_errors.load(Ordering::Relaxed),
                "enqueue_longest_failure_ms": seen.longest_failure_ms.load(Ordering::Relaxed),
                "worker_warn_lines": warns,
                "wakeup_probes": probes.len(),
                "wakeup_ms_max": probe_max,
                "failures": failures,
            }))?
        );
    } else {
        let wakeup = (probes.len(), probe_max);
        print_table(
            &figures,
            wall,
            &seen,
            warns,
            wakeup,
            &fleet.exited_on_their_own,
        );
        for failure in &failures {
            println!("FAILED: {failure}");
        }
    }
    let passed = failures.is_empty();
    if args.keep || !passed {
        eprintln!("the run's files are kept in {}", dir.display());
        std::mem::forget(cluster);
    } else {
        drop(cluster);
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(passed)
}

/// Lines logged at WARN by the workers (reconnecting, failed heartbeats, ...).
fn count_warnings(dir: &Path) -> anyhow::Result<usize> {
    let mut n = 0;
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let is_log = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("worker-"));
        if is_log {
            n += std::fs::read_to_string(&path)?
                .lines()
                .filter(|l| l.contains(" WARN "))
                .count();
        }
    }
    Ok(n)
}

fn print_table(
    f: &Figures,
    wall: Duration,
    seen: &Enqueuing,
    warns: usize,
    (probes, probe_max): (usize, Option<u64>),
    exited: &[String],
) {
    let probed = format!("woken after the restart, max ({probes} workers)");
    let ms = |v: Option<u64>| v.map_or("-".to_string(), |v| format!("{:.1} s", v as f64 / 1000.0));
    let rows: Vec<(&str, String)> = vec![
        ("wall time", format!("{:.1} s", wall.as_secs_f64())),
        ("jobs enqueued", f.enqueued.to_string()),
        ("jobs settled", f.settled.to_string()),
        ("  finished", f.finished.to_string()),
        ("  failed for good", f.failed.to_string()),
        ("jobs lost (must be 0)", f.lost.to_string()),
        (
            "finished without running (must be 0)",
            f.finished_without_running.to_string(),
        ),
        (
            "run twice at the same time (must be 0)",
            f.ran_twice_at_once.to_string(),
        ),
        ("executions", f.executions.to_string()),
        (
            "re-runs after a killed run",
            f.reruns_after_a_kill.to_string(),
        ),
        (
            "needless re-runs (after a run ended)",
            f.reruns_after_an_end.to_string(),
        ),
        ("workers killed (SIGKILL)", f.kills.to_string()),
        ("rescue after a kill, median", ms(f.rescue_ms_median)),
        ("rescue after a kill, max", ms(f.rescue_ms_max)),
        (
            "workers exited on their own (must be 0)",
            f.workers_exited_on_their_own.to_string(),
        ),
        (
            "enqueue calls failed (transient, retried)",
            seen.transient_errors.load(Ordering::Relaxed).to_string(),
        ),
        (
            "longest failed enqueue call",
            format!("{} ms", seen.longest_failure_ms.load(Ordering::Relaxed)),
        ),
        ("WARN lines in worker logs", warns.to_string()),
        (
            &probed,
            probe_max.map_or("-".to_string(), |ms| format!("{ms} ms")),
        ),
    ];
    let width = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    for (name, value) in rows {
        println!("{name:<width$}  {value:>10}");
    }
    let exited: HashSet<&String> = exited.iter().collect();
    for e in exited {
        println!("exited on its own: {e}");
    }
}
