//! Text and JSON rendering: tables, key-value listings, timestamps and counts.
//!
//! Commands build their whole standard output as a `String` with these helpers; `main` writes it.

use chrono::{DateTime, SecondsFormat, Utc};
use comfy_table::{CellAlignment, ContentArrangement, Table, presets};
use serde::Serialize;
use serde_json::Value;

/// Pretty JSON of a library type, with a trailing newline.
pub fn json<T: Serialize + ?Sized>(value: &T) -> anyhow::Result<String> {
    let mut text = serde_json::to_string_pretty(value)?;
    text.push('\n');
    Ok(text)
}

/// A plain, borderless table (easy to read and to `grep`/`awk`) with these column headers.
/// Columns named in `right` are right-aligned (numbers).
pub fn table(headers: &[&str], right: &[&str]) -> Table {
    let mut table = Table::new();
    table
        .load_preset(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(headers.iter().map(|h| h.to_uppercase()));
    for (i, header) in headers.iter().enumerate() {
        if let Some(column) = table.column_mut(i) {
            column.set_padding((0, 2));
            if right.contains(header) {
                column.set_cell_alignment(CellAlignment::Right);
            }
        }
    }
    table
}

/// A table rendered with a trailing newline, its lines stripped of trailing spaces.
pub fn render(table: &Table) -> String {
    let mut text = String::new();
    for line in table.lines() {
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text
}

/// `name: value` lines with the values aligned.
pub fn fields(rows: &[(&str, String)]) -> String {
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0) + 1;
    let mut text = String::new();
    for (key, value) in rows {
        let label = format!("{key}:");
        text.push_str(&format!("{label:<width$} {value}\n"));
    }
    text
}

/// A timestamp in RFC 3339, to the second (for tables).
pub fn time(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A time relative to `now`, for tables: `now`, `in 15s`, `3m ago`, `2h ago`, `in 3d` (the
/// largest whole unit; hours up to two days).
pub fn relative(t: &DateTime<Utc>, now: &DateTime<Utc>) -> String {
    let millis = (*t - *now).num_milliseconds();
    let secs = millis.unsigned_abs() / 1000;
    if secs == 0 {
        return "now".to_string();
    }
    let span = match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m", secs / 60),
        3600..172_800 => format!("{}h", secs / 3600),
        _ => format!("{}d", secs / 86_400),
    };
    if millis > 0 {
        format!("in {span}")
    } else {
        format!("{span} ago")
    }
}

/// A timestamp in RFC 3339, to the millisecond (for detail views).
pub fn precise_time(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// An optional timestamp in RFC 3339, or `-`.
pub fn optional_time(t: &Option<DateTime<Utc>>) -> String {
    t.as_ref().map_or_else(|| "-".to_string(), precise_time)
}

/// A list of ids, comma separated, or `-`.
pub fn ids(ids: &[i64]) -> String {
    if ids.is_empty() {
        "-".to_string()
    } else {
        ids.iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Compact JSON, or `-` for none.
pub fn compact(value: Option<&Value>) -> String {
    value.map_or_else(|| "-".to_string(), Value::to_string)
}

/// The longest JSON value a detail view prints whole.
pub const LONG_VALUE: usize = 200;

/// `text` whole when it is short; otherwise its first [`LONG_VALUE`] characters and how long it
/// is (`--json` prints it whole).
pub fn truncated(text: String) -> String {
    match text.char_indices().nth(LONG_VALUE) {
        None => text,
        Some((cut, _)) => format!(
            "{}… ({} bytes in all; --json shows everything)",
            &text[..cut],
            text.len()
        ),
    }
}

/// `1 job`, `3 jobs`.
pub fn count(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("{n} {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_pluralized() {
        assert_eq!(count(0, "job"), "0 jobs");
        assert_eq!(count(1, "job"), "1 job");
        assert_eq!(count(2500, "job"), "2500 jobs");
    }

    #[test]
    fn tables_have_upper_case_headers_and_no_trailing_spaces() {
        let mut t = table(&["id", "name"], &["id"]);
        t.add_row(vec!["7", "x"]);
        let text = render(&t);
        assert_eq!(text, "ID  NAME\n 7  x\n");
        assert!(text.lines().all(|l| !l.ends_with(' ')), "{text:?}");
    }

    #[test]
    fn relative_times_use_the_largest_whole_unit() {
        let now = Utc::now();
        let at = |secs: i64| relative(&(now + chrono::Duration::seconds(secs)), &now);
        assert_eq!(at(0), "now");
        assert_eq!(at(15), "in 15s");
        assert_eq!(at(-15), "15s ago");
        assert_eq!(at(-200), "3m ago");
        assert_eq!(at(7300), "in 2h");
        assert_eq!(at(-47 * 3600), "47h ago");
        assert_eq!(at(3 * 86_400 + 5), "in 3d");
    }

    #[test]
    fn long_values_are_cut_with_their_length() {
        assert_eq!(truncated("short".into()), "short");
        let long = "é".repeat(300);
        assert_eq!(
            truncated(long),
            format!(
                "{}… (600 bytes in all; --json shows everything)",
                "é".repeat(200)
            )
        );
    }

    #[test]
    fn fields_are_aligned() {
        let text = fields(&[("id", "1".into()), ("state", "failed".into())]);
        assert_eq!(text, "id:    1\nstate: failed\n");
    }
}
