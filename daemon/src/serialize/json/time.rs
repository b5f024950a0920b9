//! Timestamps and dates written as chrono writes them for arrow-json
//! (`YYYY-MM-DDTHH:MM:SS`, the shortest exact fraction, `Z` in UTC),
//! without chrono: the date text is cached per day, and the calendar
//! arithmetic is the SDK's. Dates outside the years 0 to 9999, which
//! chrono writes differently, go to arrow-json's encoder.

use arrow_json::writer::NullableEncoder;
use arrow_schema::TimeUnit;
use tributary_plugin_sdk::calendar::civil_from_days;

use super::buffer::write_in_place;

/// Time zones arrow-json writes as the UTC time with a `Z` suffix: fixed
/// zero offsets and the tz database's names for UTC. arrow must accept the
/// name too (an unknown zone is an error there, and must stay one here).
pub(super) fn is_utc(tz: &str) -> bool {
    matches!(
        tz,
        "+00:00"
            | "-00:00"
            | "+0000"
            | "-0000"
            | "+00"
            | "-00"
            | "UTC"
            | "Etc/UTC"
            | "UCT"
            | "Etc/UCT"
            | "Universal"
            | "Etc/Universal"
            | "Zulu"
            | "Etc/Zulu"
            | "GMT"
            | "Etc/GMT"
            | "GMT0"
            | "Etc/GMT0"
            | "GMT+0"
            | "Etc/GMT+0"
            | "GMT-0"
            | "Etc/GMT-0"
            | "Greenwich"
            | "Etc/Greenwich"
    ) && tz.parse::<arrow_array::timezone::Tz>().is_ok()
}

/// A timestamp column with no time zone or a UTC one.
pub(super) struct Timestamps<'a> {
    values: &'a [i64],
    unit: TimeUnit,
    /// Whether the zone is UTC: chrono's RFC 3339 form then ends in `Z`;
    /// a naive timestamp's `Debug` form ends with the time.
    zulu: bool,
    day: CachedDay,
    /// arrow-json's encoder, for dates outside the years 0 to 9999 (chrono
    /// writes those with a sign, and fails beyond its range).
    fallback: NullableEncoder<'a>,
}

impl<'a> Timestamps<'a> {
    /// A writer for `values` in `unit`; `fallback` is arrow-json's encoder
    /// for the column.
    pub(super) fn new(
        values: &'a [i64],
        unit: TimeUnit,
        zulu: bool,
        fallback: NullableEncoder<'a>,
    ) -> Self {
        Timestamps {
            values,
            unit,
            zulu,
            day: CachedDay::default(),
            fallback,
        }
    }

    /// Writes what chrono writes for arrow-json: `"YYYY-MM-DDTHH:MM:SS"`,
    /// a fraction of 3, 6 or 9 digits when the value has one (the fewest
    /// that are exact), then `Z` in UTC.
    #[inline]
    pub(super) fn encode(&mut self, row: usize, out: &mut Vec<u8>) {
        let value = self.values[row];
        // Constant divisors, so these are multiplications.
        let (seconds, nanos) = match self.unit {
            TimeUnit::Second => (value, 0),
            TimeUnit::Millisecond => (
                value.div_euclid(1_000),
                value.rem_euclid(1_000) as u32 * 1_000_000,
            ),
            TimeUnit::Microsecond => (
                value.div_euclid(1_000_000),
                value.rem_euclid(1_000_000) as u32 * 1_000,
            ),
            TimeUnit::Nanosecond => (
                value.div_euclid(1_000_000_000),
                value.rem_euclid(1_000_000_000) as u32,
            ),
        };
        let Some(date) = self.day.text(seconds.div_euclid(86_400)) else {
            self.fallback.encode(row, out);
            return;
        };
        let second_of_day = seconds.rem_euclid(86_400) as u32;
        let zulu = self.zulu;
        write_in_place::<32>(out, |text| {
            text[0] = b'"';
            text[1..11].copy_from_slice(date);
            text[11] = b'T';
            write_two_digits(&mut text[12..14], second_of_day / 3600);
            text[14] = b':';
            write_two_digits(&mut text[15..17], second_of_day / 60 % 60);
            text[17] = b':';
            write_two_digits(&mut text[18..20], second_of_day % 60);
            let mut len = 20 + write_fraction(&mut text[20..], nanos);
            if zulu {
                text[len] = b'Z';
                len += 1;
            }
            text[len] = b'"';
            len + 1
        });
    }
}

/// A `Date32` column.
pub(super) struct Dates<'a> {
    values: &'a [i32],
    day: CachedDay,
    /// arrow-json's encoder, for dates outside the years 0 to 9999.
    fallback: NullableEncoder<'a>,
}

impl<'a> Dates<'a> {
    /// A writer for `values`; `fallback` is arrow-json's encoder for the
    /// column.
    pub(super) fn new(values: &'a [i32], fallback: NullableEncoder<'a>) -> Self {
        Dates {
            values,
            day: CachedDay::default(),
            fallback,
        }
    }

    #[inline]
    pub(super) fn encode(&mut self, row: usize, out: &mut Vec<u8>) {
        match self.day.text(i64::from(self.values[row])) {
            Some(date) => {
                let mut text = [b'"'; 12];
                text[1..11].copy_from_slice(date);
                out.extend_from_slice(&text);
            }
            None => self.fallback.encode(row, out),
        }
    }
}

/// The `YYYY-MM-DD` text of the last day asked for: rows of a batch are
/// mostly close in time, so the calendar arithmetic runs once per day
/// rather than once per value.
struct CachedDay {
    day: i64,
    text: [u8; 10],
}

impl Default for CachedDay {
    fn default() -> Self {
        CachedDay {
            // No day number reaches `i64::MIN`: they are seconds / 86400.
            day: i64::MIN,
            text: [0; 10],
        }
    }
}

impl CachedDay {
    /// The text of `day` (days since 1970-01-01), or `None` outside the
    /// years 0 to 9999, which chrono writes differently.
    #[inline]
    fn text(&mut self, day: i64) -> Option<&[u8; 10]> {
        if day != self.day {
            let (year, month, day_of_month) = civil_from_days(day);
            let year = u32::try_from(year).ok().filter(|y| *y <= 9999)?;
            write_two_digits(&mut self.text[0..2], year / 100);
            write_two_digits(&mut self.text[2..4], year % 100);
            self.text[4] = b'-';
            write_two_digits(&mut self.text[5..7], month);
            self.text[7] = b'-';
            write_two_digits(&mut self.text[8..10], day_of_month);
            self.day = day;
        }
        Some(&self.text)
    }
}

#[inline]
fn write_two_digits(out: &mut [u8], n: u32) {
    out[0] = b'0' + (n / 10) as u8;
    out[1] = b'0' + (n % 10) as u8;
}

/// chrono's `AutoSi` fraction: none for a whole second, else `.` and 3, 6
/// or 9 digits, the fewest that hold `nanos` exactly. Returns its length.
#[inline]
fn write_fraction(out: &mut [u8], nanos: u32) -> usize {
    let (mut n, digits) = if nanos == 0 {
        return 0;
    } else if nanos.is_multiple_of(1_000_000) {
        (nanos / 1_000_000, 3)
    } else if nanos.is_multiple_of(1_000) {
        (nanos / 1_000, 6)
    } else {
        (nanos, 9)
    };
    out[0] = b'.';
    for slot in out[1..=digits].iter_mut().rev() {
        *slot = b'0' + (n % 10) as u8;
        n /= 10;
    }
    digits + 1
}
