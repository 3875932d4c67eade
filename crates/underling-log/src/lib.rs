//! # underling-log
//!
//! How the `underling` CLI and the `underling-worker` binary log, set up in one place:
//!
//! - the filter comes from `UNDERLING_LOG` (a tracing filter such as `debug` or
//!   `underling=debug,sqlx=warn`), or else `RUST_LOG`, or else the binary's default;
//! - logs go to standard error, with ANSI colours only when it is a terminal;
//! - `--log-format text` (the default) or `json` (one JSON object per line, for log shippers).

use std::io::IsTerminal;

/// The variable that sets the log filter for both binaries.
pub const LOG_VARIABLE: &str = "UNDERLING_LOG";

/// The variable read when [`LOG_VARIABLE`] is not set.
pub const FALLBACK_VARIABLE: &str = "RUST_LOG";

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// The filter text: [`LOG_VARIABLE`], else [`FALLBACK_VARIABLE`], else `default` (`None`:
/// no logging unless a variable asks for it).
pub fn filter_text(default: Option<&str>) -> Option<String> {
    [LOG_VARIABLE, FALLBACK_VARIABLE]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()))
        .or_else(|| default.map(str::to_string))
}

/// Installs the global subscriber: logs to standard error in `format`, filtered by
/// [`filter_text`]. A filter that does not parse is reported on standard error and the
/// default is used instead.
pub fn init(format: LogFormat, default: Option<&str>) {
    let Some(text) = filter_text(default) else {
        return;
    };
    let filter = match tracing_subscriber::EnvFilter::try_new(&text) {
        Ok(filter) => filter,
        Err(e) => {
            eprintln!("warning: ignoring the log filter {text:?}: {e}");
            match default {
                Some(default) => tracing_subscriber::EnvFilter::new(default),
                None => return,
            }
        }
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
