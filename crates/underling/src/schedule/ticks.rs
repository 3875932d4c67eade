//! The ticks of a cron expression in a time zone, as instants: parsing (`croner`, seconds
//! optional) and the next tick after an instant, safe across changes of the clocks.
//!
//! The expression is matched against the wall clock of the time zone. Two rules make that
//! well defined where the wall clock jumps:
//!
//! - **Spring forward** (a gap: 02:00–02:59 does not exist in New York one night a year): a
//!   tick whose wall time falls in the gap runs once, at the first instant after the gap
//!   (03:00 the new time), however many of its wall times fell in the gap.
//! - **Fall back** (an overlap: 01:00–01:59 happens twice): a tick at a fixed hour runs once,
//!   in the first pass; an expression whose hour field is `*` (every hour) runs in both passes,
//!   so that `*/15 * * * *` keeps running every 15 minutes of real time.

use std::str::FromStr;

use chrono::{DateTime, Duration, NaiveDateTime, Offset, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use croner::Cron;

use crate::error::{Error, Result};

/// How many steps [`Ticks::next_after`] takes at most before it gives up (an expression that
/// keeps landing on skipped wall times; never reached by a real one).
const MAX_STEPS: usize = 1000;

/// A parsed cron expression in a time zone.
#[derive(Debug, Clone)]
pub(crate) struct Ticks {
    cron: Cron,
    tz: Tz,
    expression: String,
    /// The hour field is `*`: ticks in the repeated hour of a fall-back run twice.
    every_hour: bool,
}

impl Ticks {
    /// Parses `expression` (5 fields, or 6 with seconds first; `@daily` and the like) for the
    /// IANA time zone `timezone`; checks that it ticks at least once after `now`.
    pub(crate) fn parse(expression: &str, timezone: &str, now: DateTime<Utc>) -> Result<Ticks> {
        let tz = parse_timezone(timezone)?;
        let trimmed = expression.trim();
        let invalid = |reason: String| Error::InvalidCron {
            expression: expression.to_string(),
            reason,
        };
        if trimmed.is_empty() {
            return Err(invalid("it is empty".into()));
        }
        if trimmed.contains('\0') {
            return Err(invalid("it contains a NUL character".into()));
        }
        let fields: Vec<&str> = trimmed.split_whitespace().collect();
        let cron = Cron::new(trimmed)
            .with_seconds_optional()
            .parse()
            .map_err(|e| invalid(culprit(&fields).unwrap_or_else(|| e.to_string())))?;
        let every_hour = match fields.len() {
            1 => trimmed.eq_ignore_ascii_case("@hourly"),
            5 => fields[1] == "*",
            6 => fields[2] == "*",
            _ => false,
        };
        let ticks = Ticks {
            cron,
            tz,
            expression: trimmed.to_string(),
            every_hour,
        };
        ticks.next_after(now)?;
        Ok(ticks)
    }

    /// The first tick strictly after `after`.
    pub(crate) fn next_after(&self, after: DateTime<Utc>) -> Result<DateTime<Utc>> {
        let after = whole_second(after);
        let candidate = self.next_by_wall_clock(after)?;
        if self.every_hour {
            // A fall-back within the next few hours repeats wall times at or before the wall
            // time of `after`: the first tick among them (in the second pass) may come first.
            let probe = after + Duration::hours(3);
            if self.offset(probe) < self.offset(after) {
                let turn = self.transition(after, probe);
                let wall = self.wall(turn);
                let first = self.naive_next(wall, true)?;
                let at = self.instant(first, self.offset(turn));
                if at > after && at < candidate && self.offset(at) == self.offset(turn) {
                    return Ok(at);
                }
            }
        }
        Ok(candidate)
    }

    /// The last tick at or before `now`, given a tick `from` at or before `now`.
    pub(crate) fn last_at_or_before(
        &self,
        from: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<DateTime<Utc>> {
        // Look back over a window that doubles until it holds a tick, so that a long outage
        // of a frequent schedule does not walk over every tick it missed.
        let mut window = Duration::minutes(1);
        loop {
            let start = now - window;
            if start <= from {
                return self.walk(from, now);
            }
            let first = self.next_after(start)?;
            if first <= now {
                return self.walk(first, now);
            }
            window = window * 2;
        }
    }

    /// From tick `tick`, steps to the last tick at or before `now`.
    fn walk(&self, mut tick: DateTime<Utc>, now: DateTime<Utc>) -> Result<DateTime<Utc>> {
        loop {
            let next = self.next_after(tick)?;
            if next > now {
                return Ok(tick);
            }
            tick = next;
        }
    }

    /// The first tick after `after` found by walking the wall clock forwards from its wall
    /// time (gaps to the first instant after them; in an overlap, the first pass, or the
    /// second when the hour field is `*`).
    fn next_by_wall_clock(&self, after: DateTime<Utc>) -> Result<DateTime<Utc>> {
        let mut wall = self.wall(after);
        for _ in 0..MAX_STEPS {
            let next = self.naive_next(wall, false)?;
            match self.tz.from_local_datetime(&next) {
                chrono::LocalResult::Single(at) => {
                    let at = at.with_timezone(&Utc);
                    if at > after {
                        return Ok(at);
                    }
                }
                chrono::LocalResult::Ambiguous(first, second) => {
                    let (first, second) = (first.with_timezone(&Utc), second.with_timezone(&Utc));
                    if first > after {
                        return Ok(first);
                    }
                    if self.every_hour && second > after {
                        return Ok(second);
                    }
                }
                chrono::LocalResult::None => {
                    // In a gap: the first instant after it.
                    let guess = Utc.from_utc_datetime(&next);
                    let turn =
                        self.transition(guess - Duration::hours(15), guess + Duration::hours(15));
                    if turn > after {
                        return Ok(turn);
                    }
                }
            }
            wall = next;
        }
        Err(self.never())
    }

    /// The next wall time after (or at, `inclusive`) `wall` that the expression matches.
    fn naive_next(&self, wall: NaiveDateTime, inclusive: bool) -> Result<NaiveDateTime> {
        // In UTC, croner does plain calendar arithmetic on the wall time.
        self.cron
            .find_next_occurrence(&Utc.from_utc_datetime(&wall), inclusive)
            .map(|at| at.naive_utc())
            .map_err(|_| self.never())
    }

    /// The wall time of `at` in the time zone.
    fn wall(&self, at: DateTime<Utc>) -> NaiveDateTime {
        at.with_timezone(&self.tz).naive_local()
    }

    /// The time zone's offset from UTC at `at`, in seconds.
    fn offset(&self, at: DateTime<Utc>) -> i32 {
        self.tz
            .offset_from_utc_datetime(&at.naive_utc())
            .fix()
            .local_minus_utc()
    }

    /// The instant whose wall time is `wall` at offset `offset` (seconds).
    fn instant(&self, wall: NaiveDateTime, offset: i32) -> DateTime<Utc> {
        Utc.from_utc_datetime(&(wall - Duration::seconds(i64::from(offset))))
    }

    /// The first whole second in `(lo, hi]` whose offset differs from `lo`'s (`hi` when none
    /// does: callers only ask where one does).
    fn transition(&self, lo: DateTime<Utc>, hi: DateTime<Utc>) -> DateTime<Utc> {
        let before = self.offset(lo);
        let (mut lo, mut hi) = (lo.timestamp(), hi.timestamp());
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            let at = DateTime::from_timestamp(mid, 0).unwrap_or_default();
            if self.offset(at) == before {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        DateTime::from_timestamp(hi, 0).unwrap_or_default()
    }

    fn never(&self) -> Error {
        Error::InvalidCron {
            expression: self.expression.clone(),
            reason: "it never matches a date (for instance the 30th of February)".into(),
        }
    }
}

/// Which field of an expression that does not parse is wrong, and what it may hold: each
/// field is tried alone, the others `*`.
fn culprit(fields: &[&str]) -> Option<String> {
    const FIELDS: [&str; 6] = [
        "second (0-59)",
        "minute (0-59)",
        "hour (0-23)",
        "day-of-month (1-31, L, W)",
        "month (1-12 or JAN-DEC)",
        "day-of-week (0-7 or SUN-SAT, L, #)",
    ];
    let names = match fields.len() {
        5 => &FIELDS[1..],
        6 => &FIELDS[..],
        n => return Some(format!("it has {n} fields")),
    };
    (0..fields.len()).find_map(|i| {
        let probe: Vec<&str> = (0..fields.len())
            .map(|j| if j == i { fields[j] } else { "*" })
            .collect();
        let parsed = Cron::new(&probe.join(" ")).with_seconds_optional().parse();
        parsed.is_err().then(|| {
            let (name, range) = names[i].split_once(' ').unwrap_or((names[i], ""));
            let range = range.trim_matches(['(', ')']);
            format!(
                "its {name} field {:?} is not valid, expected {range}",
                fields[i]
            )
        })
    })
}

/// An IANA time zone by name (`UTC`, `Europe/Berlin`, `America/New_York`).
pub(crate) fn parse_timezone(name: &str) -> Result<Tz> {
    Tz::from_str(name.trim()).map_err(|_| Error::InvalidTimezone(name.to_string()))
}

/// `at` without its fraction of a second (ticks fall on whole seconds).
fn whole_second(at: DateTime<Utc>) -> DateTime<Utc> {
    at.with_nanosecond(0).unwrap_or(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("a valid time")
            .with_timezone(&Utc)
    }

    fn ticks(expression: &str, tz: &str) -> Ticks {
        Ticks::parse(expression, tz, at("2026-01-01T00:00:00Z")).expect("parses")
    }

    fn series(t: &Ticks, from: &str, n: usize) -> Vec<String> {
        let mut out = Vec::new();
        let mut cursor = at(from);
        for _ in 0..n {
            cursor = t.next_after(cursor).expect("a next tick");
            out.push(cursor.to_rfc3339());
        }
        out
    }

    #[test]
    fn a_daily_tick_in_the_spring_gap_runs_at_the_end_of_the_gap_and_once_after_fall_back() {
        let t = ticks("30 2 * * *", "America/New_York");
        assert_eq!(
            series(&t, "2026-03-07T00:00:00Z", 3),
            [
                "2026-03-07T07:30:00+00:00", // 02:30 EST
                "2026-03-08T07:00:00+00:00", // 02:30 does not exist: 03:00 EDT
                "2026-03-09T06:30:00+00:00", // 02:30 EDT
            ]
        );
        assert_eq!(
            series(&t, "2026-10-31T00:00:00Z", 3),
            [
                "2026-10-31T06:30:00+00:00", // 02:30 EDT
                "2026-11-01T07:30:00+00:00", // 02:30 EST (after the repeated hour)
                "2026-11-02T07:30:00+00:00",
            ]
        );
    }

    #[test]
    fn a_fixed_hour_in_the_repeated_hour_runs_once() {
        let t = ticks("30 1 * * *", "America/New_York");
        assert_eq!(
            series(&t, "2026-10-31T12:00:00Z", 2),
            ["2026-11-01T05:30:00+00:00", "2026-11-02T06:30:00+00:00"]
        );
        // Asked from inside the second pass, it does not go back to the first.
        assert_eq!(
            t.next_after(at("2026-11-01T06:15:00Z")).unwrap(),
            at("2026-11-02T06:30:00Z")
        );
    }

    #[test]
    fn every_hour_runs_in_both_passes_of_the_repeated_hour() {
        let t = ticks("0 * * * *", "America/New_York");
        assert_eq!(
            series(&t, "2026-11-01T03:30:00Z", 4),
            [
                "2026-11-01T04:00:00+00:00", // 00:00 EDT
                "2026-11-01T05:00:00+00:00", // 01:00 EDT
                "2026-11-01T06:00:00+00:00", // 01:00 EST
                "2026-11-01T07:00:00+00:00", // 02:00 EST
            ]
        );
        let t = ticks("*/30 * * * *", "America/New_York");
        assert_eq!(
            series(&t, "2026-03-08T06:00:00Z", 3),
            [
                "2026-03-08T06:30:00+00:00", // 01:30 EST
                "2026-03-08T07:00:00+00:00", // 02:00 and 02:30 do not exist: 03:00 EDT
                "2026-03-08T07:30:00+00:00", // 03:30 EDT
            ]
        );
    }

    #[test]
    fn seconds_are_optional_and_fractions_do_not_matter() {
        let t = ticks("*/10 * * * * *", "UTC");
        assert_eq!(
            t.next_after(at("2026-01-01T00:00:05.5Z")).unwrap(),
            at("2026-01-01T00:00:10Z")
        );
        assert_eq!(
            t.next_after(at("2026-01-01T00:00:10.5Z")).unwrap(),
            at("2026-01-01T00:00:20Z")
        );
    }

    #[test]
    fn the_last_tick_before_now_is_found_without_walking_every_missed_one() {
        let t = ticks("* * * * * *", "UTC");
        let last = t
            .last_at_or_before(at("2026-01-01T00:00:00Z"), at("2026-03-01T12:00:00.7Z"))
            .unwrap();
        assert_eq!(last, at("2026-03-01T12:00:00Z"));
        let t = ticks("0 3 * * *", "Europe/Berlin");
        let last = t
            .last_at_or_before(at("2026-01-01T02:00:00Z"), at("2026-01-05T01:00:00Z"))
            .unwrap();
        assert_eq!(last, at("2026-01-04T02:00:00Z"));
    }

    #[test]
    fn bad_expressions_and_time_zones_say_what_is_wrong() {
        let now = at("2026-01-01T00:00:00Z");
        let err = Ticks::parse("61 * * * *", "UTC", now).unwrap_err();
        assert!(matches!(err, Error::InvalidCron { .. }), "{err}");
        let err = Ticks::parse("0 0 30 2 *", "UTC", now).unwrap_err();
        assert!(err.to_string().contains("never matches"), "{err}");
        let err = Ticks::parse("* * * *", "UTC", now).unwrap_err();
        assert!(
            err.to_string()
                .contains(": it has 4 fields; write 5 fields"),
            "{err}"
        );
        let err = Ticks::parse("0 25 * * *", "UTC", now).unwrap_err();
        assert!(
            err.to_string().starts_with(
                "invalid cron expression \"0 25 * * *\": its hour field \"25\" is not valid, expected 0-23; write 5 fields"
            ),
            "{err}"
        );
        let err = Ticks::parse("0 * * * *", "Mars/Olympus", now).unwrap_err();
        assert!(matches!(err, Error::InvalidTimezone(_)), "{err}");
    }
}
