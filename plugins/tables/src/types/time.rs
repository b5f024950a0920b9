//! Timestamps as microseconds since the epoch, UTC, from RFC 3339 and
//! ISO 8601 text or a chrono format. The common fixed-width layouts are
//! parsed by hand, since chrono re-reads its format string on every call,
//! which costs more than the rest of a row; they give chrono's result, and
//! chrono parses everything else. The day count is the SDK's calendar.

use chrono::{DateTime, NaiveDate, NaiveDateTime};
use tributary_plugin_sdk::calendar::days_from_civil;

/// Microseconds since the epoch, UTC.
pub fn parse_timestamp(text: &str, format: Option<&str>) -> Option<i64> {
    fast_layout(format)
        .and_then(|layout| fast_iso(text, layout))
        .or_else(|| chrono_timestamp(text, format))
}

/// The layout [`fast_iso`] parses for a format, if it has one.
///
/// The common layouts are parsed by hand: chrono re-reads the format
/// string on every call, which costs more than the rest of a row. The
/// fast path accepts a subset of what chrono accepts, with the same
/// result; anything else falls through to chrono.
pub(super) fn fast_layout(format: Option<&str>) -> Option<Layout> {
    match format {
        None => Some(Layout::Iso),
        Some("%Y-%m-%d %H:%M:%S") => Some(Layout::Space),
        Some("%Y-%m-%dT%H:%M:%S") => Some(Layout::T),
        Some(_) => None,
    }
}

/// Microseconds since the epoch, UTC, parsed by chrono.
fn chrono_timestamp(text: &str, format: Option<&str>) -> Option<i64> {
    match format {
        None => {
            if let Ok(t) = DateTime::parse_from_rfc3339(text) {
                return Some(t.timestamp_micros());
            }
            for f in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
                if let Ok(t) = NaiveDateTime::parse_from_str(text, f) {
                    return Some(t.and_utc().timestamp_micros());
                }
            }
            None
        }
        Some(f) => {
            if has_offset(f)
                && let Ok(t) = DateTime::parse_from_str(text, f)
            {
                return Some(t.timestamp_micros());
            }
            if let Ok(t) = NaiveDateTime::parse_from_str(text, f) {
                return Some(t.and_utc().timestamp_micros());
            }
            NaiveDate::parse_from_str(text, f)
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|t| t.and_utc().timestamp_micros())
        }
    }
}

/// Whether a chrono format reads a UTC offset.
fn has_offset(format: &str) -> bool {
    ["%z", "%:z", "%::z", "%:::z", "%#z"]
        .iter()
        .any(|spec| format.contains(spec))
}

/// The layouts [`fast_iso`] knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Layout {
    /// `YYYY-MM-DD[ T]HH:MM:SS[.fraction][Z]`, the default `timestamp`.
    Iso,
    /// Exactly `YYYY-MM-DD HH:MM:SS`.
    Space,
    /// Exactly `YYYY-MM-DDTHH:MM:SS`.
    T,
}

const MICROS_PER_SECOND: i64 = 1_000_000;
const SECONDS_PER_DAY: i64 = 86_400;

/// Microseconds since the epoch of a fixed-width date and time; `None`
/// for anything it does not parse, valid or not (chrono then decides).
#[inline]
pub(super) fn fast_iso(text: &str, layout: Layout) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() < 19 {
        return None;
    }
    let sep_ok = match layout {
        Layout::Iso => b[10] == b' ' || b[10] == b'T',
        Layout::Space => b[10] == b' ',
        Layout::T => b[10] == b'T',
    };
    if !sep_ok || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let mut rest = &b[19..];
    let mut micros = 0i64;
    if layout == Layout::Iso {
        if let Some(r) = rest.strip_suffix(b"Z") {
            rest = r;
        }
        if let Some(frac) = rest.strip_prefix(b".") {
            if frac.is_empty() || frac.len() > 9 || !frac.iter().all(u8::is_ascii_digit) {
                return None;
            }
            for i in 0..6 {
                micros = micros * 10 + frac.get(i).map_or(0, |d| i64::from(d - b'0'));
            }
            rest = &[];
        }
    }
    if !rest.is_empty() {
        return None;
    }
    let days = day_number(&b[..10])?;
    let (hour, minute, second) = (two_digits(b, 11)?, two_digits(b, 14)?, two_digits(b, 17)?);
    // chrono takes a leap second (`:60`) only while parsing: leave it to it.
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let seconds = days * SECONDS_PER_DAY + hour * 3600 + minute * 60 + second;
    Some(seconds * MICROS_PER_SECOND + micros)
}

/// The number written in `b[at..at + 2]`, if both bytes are digits.
#[inline]
fn two_digits(b: &[u8], at: usize) -> Option<i64> {
    let (hi, lo) = (b[at].wrapping_sub(b'0'), b[at + 1].wrapping_sub(b'0'));
    (hi <= 9 && lo <= 9).then(|| i64::from(hi * 10 + lo))
}

/// Days since 1970-01-01 of a valid proleptic Gregorian `YYYY-MM-DD`.
#[inline]
fn day_number(date: &[u8]) -> Option<i64> {
    if date[4] != b'-' || date[7] != b'-' {
        return None;
    }
    let year = two_digits(date, 0)? * 100 + two_digits(date, 2)?;
    let (month, day) = (two_digits(date, 5)?, two_digits(date, 8)?);
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if !(1..=month_days).contains(&day) {
        return None;
    }
    // Both checked above: 1 to 12 and 1 to 31.
    Some(days_from_civil(year, month as u32, day as u32))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::tests::Rng;
    use crate::types::{Cell, ColumnType, parse_text};

    #[test]
    fn timestamps_parse_with_and_without_a_format() {
        let ty = ColumnType::Timestamp(Some("%Y-%m-%d %H:%M:%S".into()));
        assert_eq!(
            parse_text(&ty, "2024-01-02 03:04:05"),
            Ok(Cell::Micros(1_704_164_645_000_000))
        );
        let iso = ColumnType::Timestamp(None);
        assert_eq!(
            parse_text(&iso, "2024-01-02T04:04:05+01:00"),
            Ok(Cell::Micros(1_704_164_645_000_000))
        );
        let day = ColumnType::Timestamp(Some("%d/%m/%Y".into()));
        assert_eq!(
            parse_text(&day, "02/01/2024"),
            Ok(Cell::Micros(1_704_153_600_000_000))
        );
        assert_eq!(
            parse_text(&iso, "yesterday").unwrap_err().class,
            "parse_error"
        );
    }

    #[test]
    fn the_fast_timestamp_path_agrees_with_chrono() {
        let cases = [
            ("2024-02-29 23:59:59", None),
            ("2024-02-29T23:59:59", None),
            ("2024-02-29T23:59:59Z", None),
            ("2024-02-29T23:59:59.5", None),
            ("2024-02-29 23:59:59.123456789Z", None),
            ("2023-02-29 10:00:00", None),
            ("2024-01-02 03:04:05", Some("%Y-%m-%d %H:%M:%S")),
            ("2024-01-02T03:04:05", Some("%Y-%m-%dT%H:%M:%S")),
            ("2024-01-02T03:04:05", Some("%Y-%m-%d %H:%M:%S")),
            ("2024-13-02 03:04:05", Some("%Y-%m-%d %H:%M:%S")),
            ("2024-01-02 03:04:05+02:00", None),
        ];
        for (text, format) in cases {
            let slow = match format {
                None => DateTime::parse_from_rfc3339(text)
                    .map(|t| t.timestamp_micros())
                    .ok()
                    .or_else(|| {
                        ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
                            .iter()
                            .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
                            .map(|t| t.and_utc().timestamp_micros())
                    }),
                Some(f) => NaiveDateTime::parse_from_str(text, f)
                    .ok()
                    .map(|t| t.and_utc().timestamp_micros()),
            };
            assert_eq!(parse_timestamp(text, format), slow, "{text} {format:?}");
        }
    }

    /// Date-times in the three layouts parsed by hand, valid and not:
    /// every field one past its range now and then, leap days of leap and
    /// common centuries, fractions and a `Z`, and single bytes broken.
    fn timestamp_like(rng: &mut Rng) -> String {
        let year = if rng.below(2) == 0 {
            *rng.pick(&[
                0, 1, 4, 100, 400, 1600, 1899, 1900, 1970, 2000, 2023, 2024, 2100, 2400, 9999,
            ])
        } else {
            rng.below(10_000)
        };
        let month = if rng.below(8) == 0 {
            rng.below(14)
        } else {
            1 + rng.below(12)
        };
        let day = if rng.below(8) == 0 {
            rng.below(33)
        } else {
            27 + rng.below(5)
        };
        let hour = if rng.below(8) == 0 {
            23 + rng.below(2)
        } else {
            rng.below(24)
        };
        let minute = if rng.below(8) == 0 {
            59 + rng.below(2)
        } else {
            rng.below(60)
        };
        let second = if rng.below(8) == 0 {
            59 + rng.below(3)
        } else {
            rng.below(60)
        };
        let sep = rng.pick(&[" ", "T", " ", "T", "t", "_"]);
        let mut text =
            format!("{year:04}-{month:02}-{day:02}{sep}{hour:02}:{minute:02}:{second:02}");
        if rng.below(4) == 0 {
            text.push('.');
            let digits = rng.below(11);
            text.push_str(&rng.text(b"0123456789", digits));
        }
        if rng.below(4) == 0 {
            text.push_str(rng.pick::<&str>(&["Z", "+01:00", "-00:30", "z"]));
        }
        if rng.below(8) == 0 {
            let at = rng.below(text.len());
            text.replace_range(at..=at, &rng.text(b"0189-:T. a", 1));
        }
        text
    }

    #[test]
    fn the_fast_timestamp_path_agrees_with_chrono_on_generated_values() {
        let named = [
            ("2024-02-29 10:00:00", true),
            ("2023-02-29 10:00:00", false),
            ("1900-02-29 10:00:00", false),
            ("2000-02-29 10:00:00", true),
            ("2024-02-30 10:00:00", false),
            ("2024-04-31 10:00:00", false),
            ("2024-13-01 10:00:00", false),
            ("2024-00-01 10:00:00", false),
            ("2024-01-00 10:00:00", false),
            ("2024-01-01 24:00:00", false),
            ("2024-01-01 23:60:00", false),
            ("0000-01-01 00:00:00", true),
            ("9999-12-31 23:59:59", true),
            ("1969-12-31 23:59:59", true),
        ];
        let space = Some("%Y-%m-%d %H:%M:%S");
        for (text, valid) in named {
            assert_eq!(parse_timestamp(text, space).is_some(), valid, "{text}");
            assert_eq!(
                parse_timestamp(text, space),
                chrono_timestamp(text, space),
                "{text}"
            );
        }
        let mut rng = Rng::new(3);
        let mut by_hand = 0;
        for _ in 0..30_000 {
            let text = timestamp_like(&mut rng);
            for format in [None, space, Some("%Y-%m-%dT%H:%M:%S")] {
                let fast = fast_layout(format).and_then(|l| fast_iso(&text, l));
                let chrono = chrono_timestamp(&text, format);
                if fast.is_some() {
                    by_hand += 1;
                    assert_eq!(fast, chrono, "{text:?} {format:?}");
                }
                assert_eq!(
                    parse_timestamp(&text, format),
                    chrono,
                    "{text:?} {format:?}"
                );
            }
        }
        // The fast path took a good share of the cases, not none.
        assert!(by_hand > 10_000, "{by_hand}");
    }
}
