//! `underling serve`: the HTTP JSON API over the queue of `--database`.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, anyhow};
use underling_server::{Server, ServerOptions, shutdown_signal};

use super::{Target, connect};
use crate::cli::ServeArgs;

/// The fewest database connections the server keeps: a long poll on PostgreSQL holds one to
/// LISTEN, and requests run side by side.
const MIN_POOL: u32 = 8;

/// Serves until Ctrl-C or SIGTERM; prints one line saying where it listens.
pub async fn run(target: &Target<'_>, args: ServeArgs) -> anyhow::Result<String> {
    let options = ServerOptions {
        listen: args.listen,
        token: token(args.token_file.as_deref(), "UNDERLING_TOKEN")?,
        read_only_token: token(
            args.read_only_token_file.as_deref(),
            "UNDERLING_READ_ONLY_TOKEN",
        )?,
        workload_token: token(
            args.workload_token_file.as_deref(),
            "UNDERLING_WORKLOAD_TOKEN",
        )?,
        cors_origins: args.cors_origins,
        body_limit: usize::try_from(args.body_limit).unwrap_or(usize::MAX),
        request_timeout: args.request_timeout,
        events: if args.events_always {
            underling_server::events::EventsMode::Always
        } else {
            underling_server::events::EventsMode::OnDemand
        },
    };
    // Refuse bad options before connecting to anything.
    options.check()?;
    let queue = connect(&Target {
        pool_size: target.pool_size.max(MIN_POOL),
        ..*target
    })
    .await?;
    let server = Server::bind(queue.clone(), options).await?;
    let addr = server.local_addr()?;
    {
        let mut stdout = std::io::stdout().lock();
        writeln!(
            stdout,
            "underling serve: listening on http://{addr} (API under /api/v1, Ctrl-C to stop)"
        )?;
        stdout.flush()?;
    }
    let result = server.run(shutdown_signal()).await;
    queue.close().await;
    result?;
    Ok(String::new())
}

/// A token from its file (the first line, trimmed; an empty one is an error), else from the
/// environment variable (an empty one counts as unset).
fn token(file: Option<&Path>, variable: &str) -> anyhow::Result<Option<String>> {
    let text = match file {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the token file {}", path.display()))?,
        None => match std::env::var(variable) {
            // Set but empty is unset (as Compose passes `${UNDERLING_TOKEN:-}`).
            Ok(value) if value.trim().is_empty() => return Ok(None),
            Ok(value) => value,
            Err(std::env::VarError::NotPresent) => return Ok(None),
            Err(e) => return Err(anyhow!("{variable}: {e}")),
        },
    };
    let token = text.lines().next().unwrap_or("").trim().to_string();
    if token.is_empty() {
        let source = file.map_or_else(|| variable.to_string(), |p| p.display().to_string());
        return Err(anyhow!("the token in {source} is empty"));
    }
    Ok(Some(token))
}
