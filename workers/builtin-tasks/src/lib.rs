//! The tasks every underling worker ships, for smoke tests, benchmarks and demos:
//!
//! | task | args | does |
//! |---|---|---|
//! | `underling.noop` | anything | nothing; its result is `null` |
//! | `underling.echo` | anything | its result is its args |
//! | `underling.sleep` | `{"ms": N}` | sleeps N ms, stopping early (and failing) when cancelled |
//! | `underling.fail` | `{"message": "…"}` | fails with that message |
//!
//! A binary links them with `use underling_builtin_tasks as _;`.

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;
use underling::{JobContext, Task, TaskError, TaskResult};

/// `underling.noop`: does nothing.
#[derive(Debug, Default)]
pub struct Noop;

#[underling::async_trait]
impl Task for Noop {
    type Args = Value;
    fn name(&self) -> &'static str {
        "underling.noop"
    }
    async fn run(&self, _ctx: &JobContext, _args: Value) -> TaskResult {
        Ok(Value::Null)
    }
}
underling::register_task!(Noop);

/// `underling.echo`: its result is its args.
#[derive(Debug, Default)]
pub struct Echo;

#[underling::async_trait]
impl Task for Echo {
    type Args = Value;
    fn name(&self) -> &'static str {
        "underling.echo"
    }
    async fn run(&self, _ctx: &JobContext, args: Value) -> TaskResult {
        Ok(args)
    }
}
underling::register_task!(Echo);

/// Arguments of `underling.sleep`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SleepArgs {
    /// How long to sleep, in milliseconds.
    pub ms: u64,
}

/// `underling.sleep`: sleeps, honouring cancellation.
#[derive(Debug, Default)]
pub struct Sleep;

#[underling::async_trait]
impl Task for Sleep {
    type Args = SleepArgs;
    fn name(&self) -> &'static str {
        "underling.sleep"
    }
    async fn run(&self, ctx: &JobContext, args: SleepArgs) -> TaskResult {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(args.ms)) => Ok(serde_json::json!({"slept_ms": args.ms})),
            _ = ctx.cancelled() => Err(TaskError::msg("Job was stopped")),
        }
    }
}
underling::register_task!(Sleep);

/// Arguments of `underling.fail`.
#[derive(Debug, Deserialize)]
pub struct FailArgs {
    /// The error message.
    #[serde(default = "default_message")]
    pub message: String,
}

fn default_message() -> String {
    "Intentional failure".to_string()
}

/// `underling.fail`: fails with the given message.
#[derive(Debug, Default)]
pub struct Fail;

#[underling::async_trait]
impl Task for Fail {
    type Args = FailArgs;
    fn name(&self) -> &'static str {
        "underling.fail"
    }
    async fn run(&self, _ctx: &JobContext, args: FailArgs) -> TaskResult {
        Err(TaskError::msg(args.message))
    }
}
underling::register_task!(Fail);
