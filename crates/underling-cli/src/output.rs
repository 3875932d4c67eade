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
    fn fields_are_aligned() {
        let text = fields(&[("id", "1".into()), ("state", "failed".into())]);
        assert_eq!(text, "id:    1\nstate: failed\n");
    }
}
