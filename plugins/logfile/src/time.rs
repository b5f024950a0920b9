//! A line's own time: the formats a capture can be declared with
//! ([`TimeFormat`]), read into milliseconds since the epoch, UTC — the
//! unit and zone of the standard `read_time` column, so that either can be
//! a record's Kafka timestamp.
//!
//! Text without a UTC offset is taken as UTC: the plugin has no zone
//! database, and the host's zone is not necessarily the writer's.
//!
//! Text without a year (the BSD syslog format) is dated by its read time:
//! it belongs to the latest year that does not put it more than
//! [`YEARLESS_MAX_AHEAD_MS`] after the moment it was read. That is the
//! current year for nearly every line; a `Dec 31` line read on 1 January
//! belongs to the year before, and a `Jan 1` line read late on 31 December
//! (a writer east of UTC, or a clock slightly ahead) to the year after.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use chrono::format::{Item, ParseErrorKind, Parsed, StrftimeItems};
use chrono::{DateTime, Datelike, SecondsFormat};

/// How far after its read time a year-less line may be dated before it is
/// taken to be from an earlier year: a month, so that clocks a little
/// ahead and writers east of UTC keep the current year.
pub const YEARLESS_MAX_AHEAD_MS: i64 = 31 * 86_400_000;

/// How many years before the read year a year-less date is looked for:
/// enough to reach a leap year for `Feb 29` (years 2096 to 2104 have
/// none) and a year whose calendar matches a written weekday.
const YEARLESS_LOOKBACK_YEARS: i32 = 28;

/// The time now, in milliseconds since the epoch (0 for a clock before it).
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// How the text of a timestamp column is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimeFormat {
    /// RFC 3339 (`2003-10-11T22:14:15.003Z`, `…+02:00`): the offset is
    /// required, a space may replace the `T`, the fraction is optional.
    Rfc3339,
    /// A chrono strftime pattern such as `%d/%b/%Y:%H:%M:%S %z`.
    Pattern {
        /// The pattern as written, for messages.
        text: Arc<str>,
        /// The pattern read once: chrono would re-read the text on every
        /// line otherwise.
        items: Arc<[Item<'static>]>,
    },
}

impl TimeFormat {
    /// A strftime pattern, refused now (with the reason) rather than on
    /// every line if it has an unknown specifier or cannot read back the
    /// text it writes, e.g. for lack of a day.
    pub fn pattern(text: &str) -> Result<TimeFormat, String> {
        if text.trim().is_empty() {
            return Err("an empty timestamp format".into());
        }
        let items = StrftimeItems::new(text)
            .parse_to_owned()
            .map_err(|_| format!("timestamp format `{text}` has an unknown `%` specifier"))?;
        let format = TimeFormat::Pattern {
            text: text.into(),
            items: items.into(),
        };
        // 2001-02-03T04:05:06.789Z, with every field distinct.
        let sample_ms = 981_173_106_789;
        let sample = format.write(sample_ms).ok_or_else(|| {
            format!("timestamp format `{text}` cannot be written, so it cannot be read either")
        })?;
        format.read(&sample, sample_ms).map_err(|reason| {
            format!(
                "timestamp format `{text}` does not read back what it writes (`{sample}`: \
                 {reason}); it needs at least a month and a day, and hours and minutes if \
                 it has a time of day (or %s alone)"
            )
        })?;
        Ok(format)
    }

    /// What a bad value was expected to be, for messages.
    pub fn expected(&self) -> String {
        match self {
            TimeFormat::Rfc3339 => {
                "an RFC 3339 timestamp such as 2003-10-11T22:14:15.003Z".to_owned()
            }
            TimeFormat::Pattern { text, .. } => format!("a timestamp in the format `{text}`"),
        }
    }

    /// `text` as milliseconds since the epoch, UTC (finer fractions
    /// truncated), or chrono's reason why not. `read_time_ms` dates text
    /// without a year.
    pub fn read(&self, text: &str, read_time_ms: i64) -> Result<i64, String> {
        match self {
            TimeFormat::Rfc3339 => DateTime::parse_from_rfc3339(text)
                .map(|t| t.timestamp_millis())
                .map_err(|e| e.to_string()),
            TimeFormat::Pattern { items, .. } => {
                let mut parsed = Parsed::new();
                chrono::format::parse(&mut parsed, text, items.iter())
                    .map_err(|e| e.to_string())?;
                if has_year(&parsed) {
                    millis(&parsed).map_err(|e| e.to_string())
                } else {
                    dated_by_read_time(&parsed, read_time_ms)
                }
            }
        }
    }

    /// `ms` written in this format, if it can be.
    fn write(&self, ms: i64) -> Option<String> {
        use std::fmt::Write as _;
        let t = DateTime::from_timestamp_millis(ms)?;
        match self {
            TimeFormat::Rfc3339 => Some(t.to_rfc3339_opts(SecondsFormat::Millis, true)),
            TimeFormat::Pattern { items, .. } => {
                let mut out = String::new();
                write!(out, "{}", t.format_with_items(items.iter()))
                    .ok()
                    .map(|()| out)
            }
        }
    }
}

/// `ms` as RFC 3339 text with milliseconds, for a timestamp that ends up
/// in a text column.
pub fn rfc3339(ms: i64) -> String {
    TimeFormat::Rfc3339
        .write(ms)
        .unwrap_or_else(|| ms.to_string())
}

/// Whether the text named a year (or a whole instant, with `%s`).
fn has_year(p: &Parsed) -> bool {
    p.year().is_some()
        || p.year_div_100().is_some()
        || p.year_mod_100().is_some()
        || p.isoyear().is_some()
        || p.isoyear_div_100().is_some()
        || p.isoyear_mod_100().is_some()
        || p.timestamp().is_some()
}

/// Milliseconds since the epoch of complete fields; no offset means UTC,
/// no time of day means midnight.
fn millis(p: &Parsed) -> chrono::ParseResult<i64> {
    let offset = p.offset().unwrap_or(0);
    let no_time = p.hour_mod_12().is_none()
        && p.minute().is_none()
        && p.second().is_none()
        && p.timestamp().is_none();
    let local = if no_time {
        let mut midnight = p.clone();
        midnight.set_hour(0)?;
        midnight.set_minute(0)?;
        midnight.to_naive_datetime_with_offset(offset)?
    } else {
        p.to_naive_datetime_with_offset(offset)?
    };
    Ok(local.and_utc().timestamp_millis() - i64::from(offset) * 1000)
}

/// The year rule of the module doc: from the read year plus one down, the
/// first year in which the date exists (and falls on its weekday, if one
/// is written) that puts it at most [`YEARLESS_MAX_AHEAD_MS`] after
/// `read_time_ms`.
fn dated_by_read_time(p: &Parsed, read_time_ms: i64) -> Result<i64, String> {
    let read_year = DateTime::from_timestamp_millis(read_time_ms).map_or(1970, |t| t.year());
    let latest = read_time_ms.saturating_add(YEARLESS_MAX_AHEAD_MS);
    let mut last_error = None;
    for year in (read_year - YEARLESS_LOOKBACK_YEARS..=read_year + 1).rev() {
        let mut dated = p.clone();
        dated.set_year(i64::from(year)).map_err(|e| e.to_string())?;
        match millis(&dated) {
            Ok(ms) if ms <= latest => return Ok(ms),
            Ok(_) => {}
            // 29 February of a common year, or a weekday of another year.
            Err(e)
                if matches!(
                    e.kind(),
                    ParseErrorKind::OutOfRange | ParseErrorKind::Impossible
                ) =>
            {
                last_error = Some(e);
            }
            Err(e) => return Err(e.to_string()),
        }
    }
    Err(match last_error {
        Some(e) => format!(
            "{e} in any year from {} to {}",
            read_year - YEARLESS_LOOKBACK_YEARS,
            read_year + 1
        ),
        None => "no year puts it at most 31 days after its read time".to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Milliseconds of a UTC date and time, for expected values.
    fn utc(text: &str) -> i64 {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .timestamp_millis()
    }

    #[test]
    fn rfc3339_keeps_the_offset_and_milliseconds() {
        let f = TimeFormat::Rfc3339;
        assert_eq!(f.read("2003-10-11T22:14:15.003Z", 0), Ok(1_065_910_455_003));
        assert_eq!(
            f.read("2003-10-11T22:14:15.003+02:00", 0),
            Ok(1_065_910_455_003 - 7_200_000)
        );
        assert_eq!(
            f.read("2003-10-11T22:14:15.0039Z", 0),
            Ok(1_065_910_455_003)
        );
        assert!(
            f.read("2003-10-11T22:14:15", 0).is_err(),
            "the offset is required"
        );
    }

    #[test]
    fn a_pattern_without_offset_is_utc_and_one_with_an_offset_converts() {
        let f = TimeFormat::pattern("%Y-%m-%d %H:%M:%S%.3f").unwrap();
        assert_eq!(
            f.read("2024-01-02 03:04:05.678", 0),
            Ok(utc("2024-01-02T03:04:05.678Z"))
        );
        let f = TimeFormat::pattern("%d/%b/%Y:%H:%M:%S %z").unwrap();
        assert_eq!(
            f.read("10/Oct/2000:13:55:36 -0700", 0),
            Ok(utc("2000-10-10T20:55:36Z"))
        );
        let day = TimeFormat::pattern("%d.%m.%Y").unwrap();
        assert_eq!(day.read("02.01.2024", 0), Ok(utc("2024-01-02T00:00:00Z")));
    }

    #[test]
    fn patterns_that_cannot_read_a_time_are_refused_with_the_reason() {
        assert!(TimeFormat::pattern("%Q").unwrap_err().contains("unknown"));
        assert!(TimeFormat::pattern("").is_err());
        let e = TimeFormat::pattern("%H:%M:%S").unwrap_err();
        assert!(
            e.contains("does not read back") && e.contains("04:05:06"),
            "{e}"
        );
        assert!(TimeFormat::pattern("%s").is_ok());
        assert!(TimeFormat::pattern("%b %e %H:%M:%S").is_ok());
    }

    #[test]
    fn a_yearless_line_takes_the_latest_year_not_a_month_after_its_read_time() {
        let f = TimeFormat::pattern("%b %e %H:%M:%S").unwrap();
        let cases = [
            // (line, read at, dated)
            (
                "Oct 11 22:14:15",
                "2024-10-12T00:00:00Z",
                "2024-10-11T22:14:15Z",
            ),
            (
                "Dec 31 23:59:59",
                "2025-01-01T00:00:05Z",
                "2024-12-31T23:59:59Z",
            ),
            (
                "Jan  1 09:00:00",
                "2024-12-31T23:00:00Z",
                "2025-01-01T09:00:00Z",
            ),
            (
                "Nov 10 00:00:00",
                "2024-10-12T00:00:00Z",
                "2024-11-10T00:00:00Z",
            ),
            (
                "Nov 13 00:00:00",
                "2024-10-12T00:00:00Z",
                "2023-11-13T00:00:00Z",
            ),
            (
                "Feb 29 12:00:00",
                "2025-03-01T00:00:00Z",
                "2024-02-29T12:00:00Z",
            ),
            (
                "Feb 29 12:00:00",
                "2027-03-01T00:00:00Z",
                "2024-02-29T12:00:00Z",
            ),
        ];
        for (line, read, want) in cases {
            assert_eq!(f.read(line, utc(read)), Ok(utc(want)), "{line} read {read}");
        }
        assert!(
            f.read("Feb 30 12:00:00", utc("2025-03-01T00:00:00Z"))
                .is_err()
        );
    }

    #[test]
    fn text_columns_show_timestamps_as_rfc3339() {
        assert_eq!(rfc3339(1_065_910_455_003), "2003-10-11T22:14:15.003Z");
    }
}
