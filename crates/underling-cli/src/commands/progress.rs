//! Progress of long removals (`job purge`, `repair`) on standard error: a bar when standard
//! error is a terminal, a plain line at most once a second otherwise, and with `--json` one
//! JSON object per line after every batch. Standard output keeps only the result.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

/// How often plain progress lines are printed at most.
const LINE_EVERY: Duration = Duration::from_secs(1);

/// Where progress goes.
enum Display {
    /// Nowhere (a short run without `--json`).
    Hidden,
    /// An indicatif bar (or a spinner when the total is unknown) on a terminal.
    Bar(indicatif::ProgressBar),
    /// Plain lines, the last one printed at this time.
    Lines(Option<Instant>),
    /// A JSON object per update.
    Json,
}

/// One update: how much is done, the plain line that says so, and the JSON fields (without
/// `elapsed_ms`, which is added).
pub struct Update {
    /// Rows done so far (the bar's position).
    pub done: u64,
    /// The plain line.
    pub line: String,
    /// The JSON object's fields.
    pub fields: Map<String, Value>,
}

/// The progress of one command.
pub struct Progress {
    display: Display,
    start: Instant,
    /// Updates are shown from this many rows on (JSON ones always).
    quiet_below: u64,
    /// The last update given, printed again by [`Progress::finish`] if throttled.
    pending: Option<Update>,
}

impl Progress {
    /// Progress for `--json` (JSON lines) or for people: a bar with `total` (a spinner
    /// without) on a terminal, drawn with `template` (whose `{msg}` is the rate in rows/s),
    /// plain lines elsewhere; for people, updates below `quiet_below` rows are not shown at
    /// all (a short run says nothing).
    pub fn new(json: bool, total: Option<u64>, quiet_below: u64, template: &str) -> Progress {
        let display = if json {
            Display::Json
        } else if std::io::stderr().is_terminal() {
            let bar = match total {
                Some(total) => indicatif::ProgressBar::new(total),
                None => indicatif::ProgressBar::new_spinner(),
            };
            bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
            if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
                bar.set_style(style);
            }
            Display::Bar(bar)
        } else {
            Display::Lines(None)
        };
        Progress {
            display,
            start: Instant::now(),
            quiet_below,
            pending: None,
        }
    }

    /// No progress at all.
    pub fn hidden() -> Progress {
        Progress {
            display: Display::Hidden,
            start: Instant::now(),
            quiet_below: 0,
            pending: None,
        }
    }

    /// Shows an update (throttled as plain lines, always as JSON).
    pub fn update(&mut self, update: Update) {
        let elapsed = self.start.elapsed();
        match &mut self.display {
            Display::Hidden => {}
            Display::Json => json_line(update.fields, elapsed),
            Display::Bar(bar) => {
                if let Some(len) = bar.length() {
                    bar.set_length(len.max(update.done));
                }
                bar.set_message(rate(update.done, elapsed));
                bar.set_position(update.done);
                if update.done >= self.quiet_below && bar.is_hidden() {
                    bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
                }
            }
            Display::Lines(last) => {
                if update.done < self.quiet_below {
                    return;
                }
                if last.is_none_or(|t| t.elapsed() >= LINE_EVERY) {
                    eprintln!("{}", update.line);
                    *last = Some(Instant::now());
                    self.pending = None;
                } else {
                    self.pending = Some(update);
                }
            }
        }
    }

    /// Clears the bar, or prints the last plain line if it was held back.
    pub fn finish(&mut self) {
        match &self.display {
            Display::Bar(bar) => bar.finish_and_clear(),
            Display::Lines(_) => {
                if let Some(update) = self.pending.take() {
                    eprintln!("{}", update.line);
                }
            }
            Display::Hidden | Display::Json => {}
        }
    }
}

/// Prints one JSON progress object on standard error.
fn json_line(mut fields: Map<String, Value>, elapsed: Duration) {
    let ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
    fields.insert("elapsed_ms".to_string(), Value::from(ms));
    eprintln!("{}", Value::Object(fields));
}

/// Rows per second so far, rounded: `12345 rows/s`.
fn rate(done: u64, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64();
    if secs > 0.0 {
        format!("{:.0} rows/s", done as f64 / secs)
    } else {
        "- rows/s".to_string()
    }
}
