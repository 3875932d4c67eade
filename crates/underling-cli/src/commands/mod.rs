//! One module per command group. Each command calls the library and returns the text to print
//! on standard output (JSON with `--json`).

use std::path::Path;

use anyhow::anyhow;
use serde_json::Value;
use underling::{ConnectOptions, Queue};

use crate::cli::{Cli, Command};

mod job;
mod lock;
mod migrate;
mod queue;
mod stats;
mod worker;

/// Where to connect, from the global flags.
pub struct Target<'a> {
    /// The database URL.
    pub url: &'a str,
    /// The PostgreSQL schema, if any.
    pub schema: Option<&'a str>,
}

/// A pool of this size is plenty for one command.
const POOL_SIZE: u32 = 2;

/// Runs a parsed command line; returns what to print on standard output.
pub async fn run(cli: Cli) -> anyhow::Result<String> {
    let target = Target {
        url: &cli.database,
        schema: cli.schema.as_deref(),
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
        Command::Stats => with_queue(&target, async |q| stats::stats(q, json).await).await,
        Command::History => with_queue(&target, async |q| stats::history(q, json).await).await,
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

/// Connects to a migrated database; fails with the library's "not migrated" error otherwise.
async fn connect(target: &Target<'_>) -> anyhow::Result<Queue> {
    // Opening a SQLite file creates it: do not leave an empty file behind for a mistyped path.
    if let Some(path) = missing_sqlite_file(target.url) {
        return Err(underling::Error::NotMigrated(format!("{path} does not exist")).into());
    }
    probe_postgres(target.url).await?;
    let mut options = ConnectOptions::new(target.url).max_connections(POOL_SIZE);
    if let Some(schema) = target.schema {
        options = options.schema(schema);
    }
    Ok(Queue::connect_with(options).await?)
}

/// Fails at once, naming the URL (password masked), when a PostgreSQL server refuses TCP
/// connections.
///
/// The connection pool retries a refused connection until its 10 s acquire timeout and then
/// reports only "pool timed out"; one TCP connect here gives the real reason without the wait.
/// Anything else (a name that does not resolve, unix sockets, TLS, bad credentials) is left to
/// the library, whose messages already say what is wrong.
async fn probe_postgres(url: &str) -> anyhow::Result<()> {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Ok(());
    }
    let Ok(parsed) = url::Url::parse(url) else {
        return Ok(());
    };
    if parsed
        .query_pairs()
        .any(|(key, _)| key == "host" || key == "hostaddr")
    {
        return Ok(());
    }
    let port = parsed.port().unwrap_or(5432);
    let address = match parsed.host() {
        Some(url::Host::Domain(name)) if !name.is_empty() => format!("{name}:{port}"),
        Some(url::Host::Ipv4(ip)) => format!("{ip}:{port}"),
        Some(url::Host::Ipv6(ip)) => format!("[{ip}]:{port}"),
        _ => return Ok(()),
    };
    let attempt = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        tokio::net::TcpStream::connect(address),
    )
    .await;
    match attempt {
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => Err(anyhow!(
            "cannot connect to {}: {e}",
            underling::mask_password(url)
        )),
        _ => Ok(()),
    }
}

/// The path of a SQLite database file named by `url` that does not exist, if it is one.
fn missing_sqlite_file(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    if path.is_empty() || path.contains(":memory:") || url.contains("mode=memory") {
        return None;
    }
    if Path::new(path).exists() {
        None
    } else {
        Some(path.to_string())
    }
}

/// Parses the JSON given to a flag; the error names the flag and the parse error.
fn parse_json(flag: &str, text: &str) -> anyhow::Result<Value> {
    serde_json::from_str(text).map_err(|e| anyhow!("{flag} is not valid JSON: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_sqlite_files_are_detected() {
        assert_eq!(
            missing_sqlite_file("sqlite:///no/such/dir/x.db?mode=rwc"),
            Some("/no/such/dir/x.db".to_string())
        );
        assert_eq!(
            missing_sqlite_file("sqlite:no-such.db"),
            Some("no-such.db".to_string())
        );
        assert_eq!(missing_sqlite_file("sqlite::memory:"), None);
        assert_eq!(missing_sqlite_file("sqlite://x?mode=memory"), None);
        assert_eq!(missing_sqlite_file("postgres://localhost/x"), None);
        assert_eq!(missing_sqlite_file("sqlite:///"), None);
    }

    #[test]
    fn json_errors_name_the_flag() {
        let error = parse_json("--args", "[x").unwrap_err();
        assert_eq!(
            error.to_string(),
            "--args is not valid JSON: expected value at line 1 column 2"
        );
    }
}
