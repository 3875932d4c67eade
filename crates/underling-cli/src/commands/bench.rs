//! `underling bench`: the `underling-bench` crate's benchmark, as a table or JSON records.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::bail;
use underling_bench::{BenchOptions, Measurement};

use super::Target;
use crate::cli::BenchArgs;
use crate::output;

/// Runs the benchmark `args.runs` times and prints the median of each figure.
pub async fn run(target: &Target<'_>, args: BenchArgs, json: bool) -> anyhow::Result<String> {
    if target.schema.is_some() {
        bail!("bench works in a throw-away schema of its own: drop --schema");
    }
    let postgres = target.url.starts_with("postgres://") || target.url.starts_with("postgresql://");
    if !postgres && !target.url.starts_with("sqlite:") {
        bail!(
            "cannot benchmark {}: give a postgres:// URL (SQLite is measured too) or a sqlite: one",
            underling::mask_password(target.url)
        );
    }
    if args.scale {
        return scale(target, &args, json).await;
    }
    let worker_binary = match args.worker_binary {
        Some(path) if path.exists() => Some(path),
        Some(path) => bail!("--worker-binary {} does not exist", path.display()),
        None => sibling_worker(),
    };
    if worker_binary.is_none() {
        eprintln!(
            "note: no underling-worker binary beside this one: the 4-process figure is skipped \
             (build it with `cargo build --release -p underling-worker` or pass --worker-binary)"
        );
    }
    let opts = BenchOptions {
        postgres_url: postgres.then(|| target.url.to_string()),
        sqlite: !postgres || !args.no_sqlite,
        quick: args.quick,
        worker_binary,
    };
    let mut runs: Vec<Vec<Measurement>> = Vec::new();
    for run in 1..=args.runs {
        let progress = |m: &Measurement| {
            if m.ratio.is_none() || m.group == "raw" {
                eprintln!(
                    "[run {run}/{}] {} {} {}: {} {}",
                    args.runs,
                    m.backend,
                    m.group,
                    m.name,
                    figure(m.value),
                    m.unit
                );
            }
        };
        runs.push(underling_bench::run(&opts, &progress).await?);
    }
    let medians = medians(&runs);
    if json {
        return output::json(&medians);
    }
    // Ratios are to a raw ceiling, or to another figure of the same run (the HTTP group to
    // the library's own, the observed group to the same processing unwatched): say which.
    let mut table = output::table(
        &[
            "backend",
            "group",
            "measurement",
            "value",
            "unit",
            "vs",
            "compared with",
        ],
        &["value", "vs"],
    );
    for m in &medians {
        table.add_row(vec![
            m.backend.clone(),
            m.group.clone(),
            m.name.clone(),
            figure(m.value),
            m.unit.clone(),
            m.ratio
                .map(|r| format!("{:.0}%", r * 100.0))
                .unwrap_or_default(),
            m.ratio.and(m.ceiling.clone()).unwrap_or_default(),
        ]);
    }
    let mut text = output::render(&table);
    if args.runs > 1 {
        text.push_str(&format!("medians of {} runs\n", args.runs));
    }
    Ok(text)
}

/// `bench --scale`: each figure of the big store beside the empty store's, with the ratio.
async fn scale(target: &Target<'_>, args: &BenchArgs, json: bool) -> anyhow::Result<String> {
    if !target.url.starts_with("postgres://") && !target.url.starts_with("postgresql://") {
        bail!("bench --scale measures PostgreSQL only: give a postgres:// URL");
    }
    let opts = BenchOptions {
        postgres_url: Some(target.url.to_string()),
        sqlite: false,
        quick: args.quick,
        worker_binary: None,
    };
    let mut runs: Vec<Vec<Measurement>> = Vec::new();
    for run in 1..=args.runs {
        let report = |m: &Measurement| match m.baseline {
            Some(empty) => eprintln!(
                "[run {run}/{}] {}: {} {} (empty store {})",
                args.runs,
                m.name,
                figure(m.value),
                m.unit,
                figure(empty)
            ),
            None => eprintln!(
                "[run {run}/{}] {}: {} {}",
                args.runs,
                m.name,
                figure(m.value),
                m.unit
            ),
        };
        let progress = |step: &str| eprintln!("[run {run}/{}] {step}", args.runs);
        runs.push(underling_bench::run_scale(&opts, &report, &progress).await?);
    }
    let medians = medians(&runs);
    if json {
        return output::json(&medians);
    }
    let mut table = output::table(
        &[
            "measurement",
            "empty store",
            "big store",
            "unit",
            "big/empty",
        ],
        &["empty store", "big store", "big/empty"],
    );
    for m in &medians {
        table.add_row(vec![
            m.name.clone(),
            m.baseline.map(figure).unwrap_or_default(),
            figure(m.value),
            m.unit.clone(),
            m.ratio.map(|r| format!("{:.2}", r)).unwrap_or_default(),
        ]);
    }
    let mut text = output::render(&table);
    if args.runs > 1 {
        text.push_str(&format!("medians of {} runs\n", args.runs));
    }
    Ok(text)
}

/// The `underling-worker` binary in the same directory as this one, if it is there.
fn sibling_worker() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let path = exe.parent()?.join("underling-worker");
    path.exists().then_some(path)
}

/// A figure rounded for people: no decimals above 100, one below.
fn figure(value: f64) -> String {
    if value >= 100.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    }
}

/// Per measurement (in first-run order), the median value and the median ratio over the runs.
fn medians(runs: &[Vec<Measurement>]) -> Vec<Measurement> {
    let Some(first) = runs.first() else {
        return Vec::new();
    };
    let mut by_key: BTreeMap<(String, String, String), Vec<&Measurement>> = BTreeMap::new();
    for m in runs.iter().flatten() {
        by_key
            .entry((m.backend.clone(), m.group.clone(), m.name.clone()))
            .or_default()
            .push(m);
    }
    first
        .iter()
        .map(|m| {
            let all = &by_key[&(m.backend.clone(), m.group.clone(), m.name.clone())];
            let mut out = m.clone();
            out.value = median(all.iter().map(|m| m.value).collect());
            out.baseline = m
                .baseline
                .map(|_| median(all.iter().filter_map(|m| m.baseline).collect()));
            out.ratio = m
                .ratio
                .map(|_| median(all.iter().filter_map(|m| m.ratio).collect()));
            out
        })
        .collect()
}

/// The median (the lower middle value for an even count).
fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(|a, b| a.total_cmp(b));
    values[(values.len() - 1) / 2]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_takes_the_middle_value() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), 2.0);
    }
}
