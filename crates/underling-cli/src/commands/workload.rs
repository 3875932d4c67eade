//! `underling workload …`: the HTTP workloads stored in the database.

use serde_json::json;
use underling::{Queue, StoredWorkload, WorkloadMode, WorkloadSpec};

use crate::cli::{WorkloadAddArgs, WorkloadCommand};
use crate::output;

/// Runs a `workload` subcommand.
pub async fn run(queue: &Queue, command: WorkloadCommand, json: bool) -> anyhow::Result<String> {
    match command {
        WorkloadCommand::Add(args) => add(queue, args, json).await,
        WorkloadCommand::List => list(queue, json).await,
        WorkloadCommand::Show { name } => show(queue, &name, json).await,
        WorkloadCommand::Remove { name } => remove(queue, &name, json).await,
        WorkloadCommand::Token {
            name,
            token_env,
            revoke,
        } => token(queue, &name, token_env.as_deref(), revoke, json).await,
    }
}

/// The spec the flags describe; a bad one is refused before anything is written.
fn spec(args: WorkloadAddArgs) -> anyhow::Result<WorkloadSpec> {
    let mode: WorkloadMode = args.mode.parse()?;
    let mut spec = WorkloadSpec {
        mode,
        timeout: args.timeout,
        max_concurrency: args.max_concurrency,
        lease: args.lease,
        max_response_bytes: args.max_response_bytes,
        ca_file: args.ca_file,
        token_env: args.token_env,
        ..WorkloadSpec::new(args.name, args.url)
    };
    for header in &args.headers {
        let Some((name, value)) = header.split_once(':') else {
            anyhow::bail!("a header is `Name: value`, got {header:?}");
        };
        spec.headers
            .insert(name.trim().to_string(), value.trim().to_string());
    }
    Ok(spec)
}

async fn add(queue: &Queue, args: WorkloadAddArgs, json: bool) -> anyhow::Result<String> {
    let replace = args.replace;
    let spec = spec(args)?;
    queue.add_workload(&spec, replace).await?;
    if json {
        return output::json(&json!({"name": spec.name, "added": true}));
    }
    Ok(format!(
        "{} workload {} ({}, {}): workers that start from now on run its jobs\n",
        if replace { "stored" } else { "added" },
        spec.name,
        spec.mode,
        spec.url
    ))
}

async fn list(queue: &Queue, json: bool) -> anyhow::Result<String> {
    let workloads = queue.workloads().await?;
    if json {
        return output::json(&workloads);
    }
    if workloads.is_empty() {
        return Ok("no workloads stored (underling workload add NAME URL)\n".to_string());
    }
    let mut table = output::table(
        &[
            "name",
            "mode",
            "url",
            "timeout",
            "concurrency",
            "lease",
            "headers",
        ],
        &["concurrency"],
    );
    for w in &workloads {
        let spec = &w.spec;
        table.add_row(vec![
            spec.name.clone(),
            spec.mode.to_string(),
            spec.url.clone(),
            humantime::format_duration(spec.timeout).to_string(),
            spec.max_concurrency.to_string(),
            lease(spec),
            header_names(spec),
        ]);
    }
    Ok(output::render(&table))
}

async fn show(queue: &Queue, name: &str, json: bool) -> anyhow::Result<String> {
    let Some(workload) = queue.workload(name).await? else {
        return Err(underling::Error::WorkloadNotFound(name.to_string()).into());
    };
    if json {
        return output::json(&workload);
    }
    Ok(fields(&workload))
}

fn fields(workload: &StoredWorkload) -> String {
    let spec = &workload.spec;
    let mut rows = vec![
        ("name", spec.name.clone()),
        ("mode", spec.mode.to_string()),
        ("url", spec.url.clone()),
        (
            "timeout",
            humantime::format_duration(spec.timeout).to_string(),
        ),
        ("max concurrency", spec.max_concurrency.to_string()),
        ("lease", lease(spec)),
        ("max response bytes", spec.max_response_bytes.to_string()),
    ];
    if let Some(ca_file) = &spec.ca_file {
        rows.push(("ca file", ca_file.display().to_string()));
    }
    if let Some(var) = &spec.token_env {
        rows.push(("token env", var.clone()));
    }
    for (name, value) in &spec.headers {
        rows.push(("header", format!("{name}: {value}")));
    }
    rows.push(("created", output::time(&workload.created)));
    rows.push(("updated", output::time(&workload.updated)));
    output::fields(&rows)
}

async fn remove(queue: &Queue, name: &str, json: bool) -> anyhow::Result<String> {
    queue.remove_workload(name).await?;
    if json {
        return output::json(&json!({"name": name, "removed": true}));
    }
    Ok(format!(
        "removed workload {name} and revoked its token (running workers keep it until they restart)\n"
    ))
}

async fn token(
    queue: &Queue,
    name: &str,
    token_env: Option<&str>,
    revoke: bool,
    json: bool,
) -> anyhow::Result<String> {
    if revoke {
        let revoked = queue.revoke_workload_token(name).await?;
        if json {
            return output::json(&json!({"name": name, "revoked": revoked}));
        }
        return Ok(if revoked {
            format!("revoked the token of workload {name}\n")
        } else {
            format!("workload {name} has no token\n")
        });
    }
    let generated = match token_env {
        Some(var) => {
            let Ok(token) = std::env::var(var) else {
                anyhow::bail!("the environment variable {var} is not set");
            };
            queue.set_workload_token(name, &token).await?;
            None
        }
        None => Some(queue.generate_workload_token(name).await?),
    };
    if json {
        return output::json(&json!({"name": name, "token": generated}));
    }
    Ok(match generated {
        Some(token) => format!(
            "set a new token for workload {name} (shown once; give it to the workers in the variable its token_env names):\n{token}\n"
        ),
        None => format!("set the token of workload {name}\n"),
    })
}

fn lease(spec: &WorkloadSpec) -> String {
    match spec.mode {
        WorkloadMode::Sync => "-".to_string(),
        WorkloadMode::Async => humantime::format_duration(spec.lease_or_default()).to_string(),
    }
}

fn header_names(spec: &WorkloadSpec) -> String {
    if spec.headers.is_empty() {
        return "-".to_string();
    }
    spec.headers.keys().cloned().collect::<Vec<_>>().join(", ")
}
