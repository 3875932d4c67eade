//! `underling schedule …`: add, list, show, pause, resume, remove and run schedules.

use chrono::Utc;
use serde_json::json;
use underling::{Queue, ScheduleInfo, ScheduleSpec};

use super::parse_json;
use crate::cli::{ScheduleAddArgs, ScheduleCommand};
use crate::output;

/// Runs a `schedule` subcommand.
pub async fn run(queue: &Queue, command: ScheduleCommand, json: bool) -> anyhow::Result<String> {
    match command {
        ScheduleCommand::Add(args) => add(queue, *args, json).await,
        ScheduleCommand::List => list(queue, json).await,
        ScheduleCommand::Show { name, next } => show(queue, &name, next, json).await,
        ScheduleCommand::Pause { name } => set_paused(queue, &name, true, json).await,
        ScheduleCommand::Resume { name } => set_paused(queue, &name, false, json).await,
        ScheduleCommand::Remove { name } => remove(queue, &name, json).await,
        ScheduleCommand::RunNow { name } => run_now(queue, &name, json).await,
    }
}

async fn add(queue: &Queue, a: ScheduleAddArgs, json: bool) -> anyhow::Result<String> {
    let secs = |d: std::time::Duration| underling::DurationSpec::Seconds(d.as_secs_f64());
    let spec = ScheduleSpec {
        name: a.name,
        cron: a.cron,
        timezone: Some(a.timezone),
        task: a.task,
        args: a
            .args
            .as_deref()
            .map(|text| parse_json("--args", text))
            .transpose()?,
        queue: a.queue,
        priority: a.priority,
        attempts: a.attempts,
        expire: a.expire.map(secs),
        timeout: a.timeout.map(secs),
        notes: a
            .notes
            .as_deref()
            .map(|text| parse_json("--notes", text))
            .transpose()?,
        unique_key: a.unique_key,
        unique_by: a.unique_by,
        unique_scope: a.unique_scope,
        unique_for: a.unique_for.map(secs),
        on_conflict: a.on_conflict,
        catch_up: Some(a.catch_up),
        paused: a.paused,
    };
    let stored = queue.add_schedule(spec.into_schedule()?).await?;
    if json {
        return output::json(&stored);
    }
    let verb = if stored.created == stored.updated {
        "added"
    } else {
        "updated"
    };
    Ok(format!(
        "{verb} schedule {}: next run {}\n",
        stored.name,
        next_run(&stored)
    ))
}

/// The next run for people: its time and how far off it is, or `paused`.
fn next_run(s: &ScheduleInfo) -> String {
    match &s.next_run {
        Some(at) => format!(
            "{} ({})",
            output::time(at),
            output::relative(at, &Utc::now())
        ),
        None => "paused".to_string(),
    }
}

async fn list(queue: &Queue, json: bool) -> anyhow::Result<String> {
    let schedules = queue.schedules().await?;
    if json {
        return output::json(&schedules);
    }
    if schedules.is_empty() {
        return Ok("no schedules\n".to_string());
    }
    let mut table = output::table(
        &[
            "name", "cron", "timezone", "task", "next run", "last run", "last job",
        ],
        &["last job"],
    );
    for s in &schedules {
        table.add_row(vec![
            s.name.clone(),
            s.cron.clone(),
            s.timezone.clone(),
            s.task.clone(),
            next_run(s),
            s.last_run.as_ref().map_or("-".into(), output::time),
            s.last_job_id.map_or("-".into(), |id| id.to_string()),
        ]);
    }
    Ok(output::render(&table))
}

async fn show(queue: &Queue, name: &str, next: usize, json: bool) -> anyhow::Result<String> {
    let Some(s) = queue.schedule(name).await? else {
        return Err(underling::Error::ScheduleNotFound(name.to_string()).into());
    };
    let upcoming = s.upcoming(next)?;
    if json {
        let mut shown = serde_json::to_value(&s)?;
        if let Some(map) = shown.as_object_mut() {
            map.insert("upcoming".into(), json!(upcoming));
        }
        return output::json(&shown);
    }
    let tz: chrono_tz::Tz = s.timezone.parse().unwrap_or(chrono_tz::UTC);
    let optional = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    let mut text = output::fields(&[
        ("name", s.name.clone()),
        ("cron", s.cron.clone()),
        ("timezone", s.timezone.clone()),
        ("task", s.task.clone()),
        ("args", output::truncated(s.args.to_string())),
        ("queue", optional(s.queue.clone())),
        ("priority", optional(s.priority.map(|p| p.to_string()))),
        ("attempts", optional(s.attempts.map(|a| a.to_string()))),
        ("options", s.options.to_string()),
        ("catch-up", s.catch_up.to_string()),
        ("paused", if s.paused { "yes" } else { "no" }.to_string()),
        ("next run", next_run(&s)),
        ("last run", output::optional_time(&s.last_run)),
        ("last job", optional(s.last_job_id.map(|id| id.to_string()))),
        ("created", output::precise_time(&s.created)),
        ("updated", output::precise_time(&s.updated)),
    ]);
    if !upcoming.is_empty() {
        text.push_str("upcoming:\n");
        for at in &upcoming {
            text.push_str(&format!(
                "  {}  {}\n",
                output::time(at),
                at.with_timezone(&tz).format("%Y-%m-%d %H:%M:%S %Z")
            ));
        }
    }
    Ok(text)
}

async fn set_paused(queue: &Queue, name: &str, paused: bool, json: bool) -> anyhow::Result<String> {
    if paused {
        queue.pause_schedule(name).await?;
    } else {
        queue.resume_schedule(name).await?;
    }
    if json {
        return output::json(&queue.schedule(name).await?);
    }
    if paused {
        Ok(format!("paused schedule {name}\n"))
    } else {
        let s = queue.schedule(name).await?;
        let next = s.as_ref().map(next_run).unwrap_or_default();
        Ok(format!("resumed schedule {name}: next run {next}\n"))
    }
}

async fn remove(queue: &Queue, name: &str, json: bool) -> anyhow::Result<String> {
    queue.remove_schedule(name).await?;
    if json {
        output::json(&json!({ "name": name, "removed": true }))
    } else {
        Ok(format!("removed schedule {name} (its jobs stay)\n"))
    }
}

async fn run_now(queue: &Queue, name: &str, json: bool) -> anyhow::Result<String> {
    let enqueued = queue.run_schedule_now(name).await?;
    if enqueued.duplicate {
        eprintln!(
            "job {} holds the schedule's unique key already: nothing was enqueued",
            enqueued.id
        );
    }
    if json {
        output::json(&enqueued)
    } else {
        Ok(format!("{}\n", enqueued.id))
    }
}
