//! Tasks the worker tests run. Each test builds its own [`Registry`] with fresh instances, so
//! state shared between a test and its tasks (counters, gates) never leaks across tests.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::watch;
use underling::{JobContext, Registry, Task, TaskError, TaskOptions, TaskResult};

/// Arguments of `test.double`.
#[derive(Debug, Deserialize)]
pub struct DoubleArgs {
    /// The number to double.
    pub n: i64,
}

/// `test.double`: its result is `{"doubled": 2n}`.
pub struct Double;

#[underling::async_trait]
impl Task for Double {
    type Args = DoubleArgs;
    fn name(&self) -> &'static str {
        "test.double"
    }
    async fn run(&self, _ctx: &JobContext, args: DoubleArgs) -> TaskResult {
        Ok(json!({ "doubled": args.n * 2 }))
    }
}

/// `test.error`: fails with `"it broke"`.
pub struct Broken;

#[underling::async_trait]
impl Task for Broken {
    type Args = Value;
    fn name(&self) -> &'static str {
        "test.error"
    }
    async fn run(&self, _ctx: &JobContext, _args: Value) -> TaskResult {
        Err(TaskError::msg("it broke"))
    }
}

/// `test.panic`: panics with `"boom"`.
pub struct Panics;

#[underling::async_trait]
impl Task for Panics {
    type Args = Value;
    fn name(&self) -> &'static str {
        "test.panic"
    }
    async fn run(&self, _ctx: &JobContext, _args: Value) -> TaskResult {
        panic!("boom");
    }
}

/// `test.flaky`: always fails with `"attempt N failed"`, counting its runs; with the backoff
/// given (a function pointer, as in [`TaskOptions`]).
pub struct Flaky {
    /// How many times it ran.
    pub runs: Arc<AtomicUsize>,
    /// Its retry backoff.
    pub backoff: fn(i32) -> Duration,
}

#[underling::async_trait]
impl Task for Flaky {
    type Args = Value;
    fn name(&self) -> &'static str {
        "test.flaky"
    }
    fn options(&self) -> TaskOptions {
        TaskOptions {
            backoff: self.backoff,
            ..TaskOptions::default()
        }
    }
    async fn run(&self, ctx: &JobContext, _args: Value) -> TaskResult {
        self.runs.fetch_add(1, Ordering::SeqCst);
        Err(TaskError::msg(format!("attempt {} failed", ctx.attempt())))
    }
}

/// The stop grace of the test tasks that ignore cancellation, so that stopping them takes
/// no longer than this.
pub const TEST_STOP_GRACE: Duration = Duration::from_millis(100);

/// `test.stubborn`: sleeps for a minute ignoring cancellation, with a 200 ms timeout.
pub struct Stubborn;

#[underling::async_trait]
impl Task for Stubborn {
    type Args = Value;
    fn name(&self) -> &'static str {
        "test.stubborn"
    }
    fn options(&self) -> TaskOptions {
        TaskOptions {
            timeout: Some(Duration::from_millis(200)),
            stop_grace: TEST_STOP_GRACE,
            ..TaskOptions::default()
        }
    }
    async fn run(&self, _ctx: &JobContext, _args: Value) -> TaskResult {
        tokio::time::sleep(Duration::from_secs(60)).await;
        Ok(json!("woke up"))
    }
}

/// Tracks how many jobs run at once, and the most that ever did, and when each ended (a job
/// ends when its task returns or its future is dropped).
#[derive(Debug, Default)]
pub struct InFlight {
    now: AtomicUsize,
    max: AtomicUsize,
    started: AtomicUsize,
    ends: std::sync::Mutex<Vec<chrono::DateTime<chrono::Utc>>>,
}

/// A job in flight; it leaves when dropped (its task returned or was dropped).
struct Entered<'a>(&'a InFlight);

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        self.0.leave();
    }
}

impl InFlight {
    /// Jobs running now.
    pub fn now(&self) -> usize {
        self.now.load(Ordering::SeqCst)
    }
    /// The most jobs that ever ran at once.
    pub fn max(&self) -> usize {
        self.max.load(Ordering::SeqCst)
    }
    /// Jobs that started, in all.
    pub fn started(&self) -> usize {
        self.started.load(Ordering::SeqCst)
    }
    /// When the jobs that ended so far ended, in that order.
    pub fn ends(&self) -> Vec<chrono::DateTime<chrono::Utc>> {
        self.ends
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
    fn enter(&self) -> Entered<'_> {
        self.started.fetch_add(1, Ordering::SeqCst);
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.max.fetch_max(now, Ordering::SeqCst);
        Entered(self)
    }
    fn leave(&self) {
        self.ends
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(chrono::Utc::now());
        self.now.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A gate that holds `test.gated` jobs until it is opened.
#[derive(Debug, Clone)]
pub struct Gate(watch::Sender<bool>);

impl Default for Gate {
    fn default() -> Self {
        Self::new()
    }
}

impl Gate {
    /// A closed gate.
    pub fn new() -> Self {
        Gate(watch::Sender::new(false))
    }
    /// Lets every waiting (and future) job through.
    pub fn open(&self) {
        self.0.send_replace(true);
    }
    /// Waits until the gate is open.
    pub async fn wait(&self) {
        let mut open = self.0.subscribe();
        // The sender lives in `self`, so the wait cannot fail.
        let _ = open.wait_for(|open| *open).await;
    }
}

/// `test.gated`: waits at its gate (ignoring cancellation), recording how many run at once
/// and when each ended (returned or was dropped), then returns `"passed"`.
pub struct Gated {
    /// Where it waits.
    pub gate: Gate,
    /// Counts the jobs in flight.
    pub in_flight: Arc<InFlight>,
}

#[underling::async_trait]
impl Task for Gated {
    type Args = Value;
    fn name(&self) -> &'static str {
        "test.gated"
    }
    fn options(&self) -> TaskOptions {
        TaskOptions {
            stop_grace: TEST_STOP_GRACE,
            ..TaskOptions::default()
        }
    }
    async fn run(&self, _ctx: &JobContext, _args: Value) -> TaskResult {
        let entered = self.in_flight.enter();
        let mut open = self.gate.0.subscribe();
        let waited = open.wait_for(|open| *open).await.map(|_| ());
        drop(entered);
        waited.map_err(|_| TaskError::msg("the gate was dropped"))?;
        Ok(json!("passed"))
    }
}

/// Counts what the cooperative tasks did once they were asked to stop.
#[derive(Debug, Default)]
pub struct Cleanups {
    started: AtomicUsize,
    cleaned: AtomicUsize,
}

impl Cleanups {
    /// Jobs that started.
    pub fn started(&self) -> usize {
        self.started.load(Ordering::SeqCst)
    }
    /// Jobs that saw the stop and cleaned up.
    pub fn cleaned(&self) -> usize {
        self.cleaned.load(Ordering::SeqCst)
    }
}

/// `test.cooperative`: waits until it is asked to stop, cleans up, and returns an error
/// (`{"finish": true}` in its args: returns `"cleaned up"` instead). `test.cooperative_timeout`
/// is the same with a 200 ms timeout.
pub struct Cooperative {
    /// The task's name.
    pub name: &'static str,
    /// Its timeout.
    pub timeout: Option<Duration>,
    /// What it did.
    pub cleanups: Arc<Cleanups>,
}

#[underling::async_trait]
impl Task for Cooperative {
    type Args = Value;
    fn name(&self) -> &'static str {
        self.name
    }
    fn options(&self) -> TaskOptions {
        TaskOptions {
            timeout: self.timeout,
            ..TaskOptions::default()
        }
    }
    async fn run(&self, ctx: &JobContext, args: Value) -> TaskResult {
        self.cleanups.started.fetch_add(1, Ordering::SeqCst);
        ctx.cancelled().await;
        // Cleaning up takes a moment, well within the default grace.
        tokio::time::sleep(Duration::from_millis(50)).await;
        self.cleanups.cleaned.fetch_add(1, Ordering::SeqCst);
        if args["finish"] == json!(true) {
            Ok(json!("cleaned up"))
        } else {
            Err(TaskError::msg("stopped while waiting"))
        }
    }
}

/// A registry with `test.cooperative` and `test.cooperative_timeout`, and their counts.
pub fn cooperative() -> (Registry, Arc<Cleanups>) {
    let cleanups = Arc::new(Cleanups::default());
    let mut registry = Registry::new();
    registry
        .register(Cooperative {
            name: "test.cooperative",
            timeout: None,
            cleanups: cleanups.clone(),
        })
        .and_then(|r| {
            r.register(Cooperative {
                name: "test.cooperative_timeout",
                timeout: Some(Duration::from_millis(200)),
                cleanups: cleanups.clone(),
            })
        })
        .expect("register the cooperative tasks");
    (registry, cleanups)
}

/// A registry with the stateless test tasks.
pub fn simple() -> Registry {
    let mut registry = Registry::new();
    registry
        .register(Double)
        .and_then(|r| r.register(Broken))
        .and_then(|r| r.register(Panics))
        .and_then(|r| r.register(Stubborn))
        .expect("register the test tasks");
    registry
}

/// A registry with only `test.gated`, and what the test needs to drive it.
pub fn gated() -> (Registry, Gate, Arc<InFlight>) {
    let gate = Gate::new();
    let in_flight = Arc::new(InFlight::default());
    let mut registry = Registry::new();
    registry
        .register(Gated {
            gate: gate.clone(),
            in_flight: in_flight.clone(),
        })
        .expect("register test.gated");
    (registry, gate, in_flight)
}

/// `test.snoozer`: snoozes for `{"ms": N}` (default 10) until it has been snoozed
/// `{"times": N}` times, then returns how many times it was. `test.snoozer_capped` is the same
/// with `max_snoozes` 1.
pub struct Snoozer {
    /// The task's name.
    pub name: &'static str,
    /// Its cap on snoozes.
    pub max_snoozes: i32,
}

#[underling::async_trait]
impl Task for Snoozer {
    type Args = Value;
    fn name(&self) -> &'static str {
        self.name
    }
    fn options(&self) -> TaskOptions {
        TaskOptions {
            max_snoozes: self.max_snoozes,
            ..TaskOptions::default()
        }
    }
    async fn run(&self, ctx: &JobContext, args: Value) -> TaskResult {
        let snoozes = ctx.job().snoozes;
        if i64::from(snoozes) < args["times"].as_i64().unwrap_or(0) {
            let ms = args["ms"].as_u64().unwrap_or(10);
            return ctx.snooze(Duration::from_millis(ms));
        }
        Ok(json!(snoozes))
    }
}

/// A registry with `test.snoozer` and `test.snoozer_capped`.
pub fn snoozers() -> Registry {
    let mut registry = Registry::new();
    registry
        .register(Snoozer {
            name: "test.snoozer",
            max_snoozes: underling::task::DEFAULT_MAX_SNOOZES,
        })
        .and_then(|r| {
            r.register(Snoozer {
                name: "test.snoozer_capped",
                max_snoozes: 1,
            })
        })
        .expect("register the snoozing tasks");
    registry
}
