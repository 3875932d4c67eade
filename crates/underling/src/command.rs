//! Remote commands: what an operator can tell running workers through their inboxes.

use serde_json::{Value, json};

use crate::error::{Error, Result};

/// A remote command for workers, checked before it is sent ([`crate::Queue::broadcast`]).
///
/// On the wire it is a name and JSON arguments, as Minion has them: `stop [ID]`, `kill [ID]`,
/// `jobs [N]`, `pause []`, `resume []`.
///
/// ```
/// use serde_json::json;
/// use underling::RemoteCommand;
///
/// assert_eq!(RemoteCommand::parse("jobs", &json!([4]))?, RemoteCommand::Jobs(4));
/// assert_eq!(
///     RemoteCommand::parse("stopp", &json!([3])).unwrap_err().to_string(),
///     "invalid remote command: unknown command \"stopp\": expected one of stop, kill, jobs, pause, resume"
/// );
/// # Ok::<(), underling::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoteCommand {
    /// Stop a running job: its task sees the cancellation and has its stop grace to return.
    Stop(i64),
    /// Kill a running job: its task is dropped at once.
    Kill(i64),
    /// Run this many jobs at once from now on.
    Jobs(usize),
    /// Start no more jobs until `resume`.
    Pause,
    /// Run jobs again, as many as before the pause.
    Resume,
}

/// The command names, for messages and help.
pub const COMMAND_NAMES: [&str; 5] = ["stop", "kill", "jobs", "pause", "resume"];

impl RemoteCommand {
    /// Parses a command name and its arguments (a JSON array, or a bare value).
    pub fn parse(name: &str, args: &Value) -> Result<RemoteCommand> {
        let first = match args {
            Value::Array(items) => items.first(),
            Value::Null => None,
            other => Some(other),
        };
        let invalid = |what: String| Err(Error::InvalidCommand(what));
        match name {
            "stop" | "kill" => match first.and_then(Value::as_i64) {
                Some(job) if name == "stop" => Ok(RemoteCommand::Stop(job)),
                Some(job) => Ok(RemoteCommand::Kill(job)),
                None => invalid(format!(
                    "{name} needs a job id as its argument, e.g. [42], got {args}"
                )),
            },
            "jobs" => match first.and_then(Value::as_u64) {
                Some(n) => Ok(RemoteCommand::Jobs(
                    usize::try_from(n).unwrap_or(usize::MAX),
                )),
                None => invalid(format!(
                    "jobs needs a number of jobs (0 or more) as its argument, e.g. [4], got {args}"
                )),
            },
            "pause" => Ok(RemoteCommand::Pause),
            "resume" => Ok(RemoteCommand::Resume),
            other => invalid(format!(
                "unknown command {other:?}: expected one of {}",
                COMMAND_NAMES.join(", ")
            )),
        }
    }

    /// The command's name on the wire.
    pub fn name(&self) -> &'static str {
        match self {
            RemoteCommand::Stop(_) => "stop",
            RemoteCommand::Kill(_) => "kill",
            RemoteCommand::Jobs(_) => "jobs",
            RemoteCommand::Pause => "pause",
            RemoteCommand::Resume => "resume",
        }
    }

    /// The command's arguments on the wire.
    pub fn args(&self) -> Value {
        match self {
            RemoteCommand::Stop(id) | RemoteCommand::Kill(id) => json!([id]),
            RemoteCommand::Jobs(n) => json!([n]),
            RemoteCommand::Pause | RemoteCommand::Resume => json!([]),
        }
    }
}
