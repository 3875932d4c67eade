//! `underling`: the admin command line for underling job queues.
//!
//! Parses the command line ([`cli`]), calls the library ([`commands`]) and prints the result
//! ([`output`]). Exit codes: 0 on success, 1 on a runtime error (one line on stderr,
//! `error: <message>`), 2 on a usage error.

mod cli;
mod commands;
mod output;

use std::io::Write;
use std::process::ExitCode;

use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches};

fn main() -> ExitCode {
    let matches = cli::Cli::command().get_matches();
    let cli = match cli::Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    // Jobs sent to a stray ./underling.db by mistake are lost to the real workers: say once
    // that the default is in use (`bench` measures in throw-away stores of its own).
    let defaulted = matches.value_source("database") == Some(ValueSource::DefaultValue);
    if defaulted && !matches!(cli.command, cli::Command::Bench(_)) {
        eprintln!(
            "note: using the default database {}; set --database or UNDERLING_DATABASE_URL",
            underling::DEFAULT_DATABASE_URL
        );
    }
    // No logging unless UNDERLING_LOG (or RUST_LOG) asks for it: the output is the answer.
    // `serve` logs its requests unless told otherwise.
    let default_log = matches!(cli.command, cli::Command::Serve(_)).then_some("info,sqlx=warn");
    underling_log::init(cli.log_format, default_log);
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|runtime| runtime.block_on(commands::run(cli)));
    match result {
        Ok(text) => {
            let mut stdout = std::io::stdout().lock();
            match stdout
                .write_all(text.as_bytes())
                .and_then(|()| stdout.flush())
            {
                Ok(()) => ExitCode::SUCCESS,
                // `underling job list | head` is not an error.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
                Err(e) => fail(&anyhow::Error::from(e)),
            }
        }
        Err(e) => {
            if let Some(unsuccessful) = e.downcast_ref::<commands::Unsuccessful>() {
                let mut stdout = std::io::stdout().lock();
                // The message on stderr says what went wrong, whether or not this gets out.
                let _ = stdout
                    .write_all(unsuccessful.output.as_bytes())
                    .and_then(|()| stdout.flush());
            }
            fail(&e)
        }
    }
}

/// Prints a runtime error as one line and returns exit code 1.
fn fail(error: &anyhow::Error) -> ExitCode {
    let message = error.to_string().replace(['\r', '\n'], " ");
    eprintln!("error: {message}");
    ExitCode::from(1)
}
