//! Days since 1970-01-01 to and from proleptic Gregorian dates: the one
//! copy of the calendar arithmetic that the daemon's JSON writer and the
//! table readers' timestamp parser share.
//!
//! Both directions are Howard Hinnant's algorithms
//! (<https://howardhinnant.github.io/date_algorithms.html>): years are
//! counted from March, so that the leap day is the last day of a year, and
//! in eras of 400 years, which are exactly 146 097 days; the arithmetic
//! within an era needs no table and no branch on leap years. They run once
//! per parsed or written date, so they are `#[inline]` and take no
//! shortcut through chrono.
//!
//! Both are exact for every date a 64-bit count of seconds since the epoch
//! can reach (years within about ±292 billion), year 0 and negative years
//! included (1 BC is year 0, 2 BC year −1, as in ISO 8601).

/// Days since 1970-01-01 of the proleptic Gregorian date `year`-`month`-`day`.
///
/// `month` is 1 to 12 and `day` 1 to the length of that month; the date is
/// not checked, so a caller parsing text checks it first.
///
/// ```
/// use tributary_plugin_sdk::calendar::days_from_civil;
///
/// assert_eq!(days_from_civil(1970, 1, 1), 0);
/// assert_eq!(days_from_civil(2000, 2, 29), 11_016);
/// ```
#[inline]
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    // January and February belong to the year before, counted from March.
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    // March is month 0 of the shifted year; 153 days per five months.
    let day_of_year = (153 * ((i64::from(month) + 9) % 12) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    // 0000-03-01, the first day of an era, is 719 468 days before 1970.
    era * 146_097 + day_of_era - 719_468
}

/// The proleptic Gregorian `(year, month, day)` of `days` since 1970-01-01;
/// the inverse of [`days_from_civil`]. `month` is 1 to 12, `day` 1 to 31.
///
/// ```
/// use tributary_plugin_sdk::calendar::civil_from_days;
///
/// assert_eq!(civil_from_days(0), (1970, 1, 1));
/// assert_eq!(civil_from_days(-1), (1969, 12, 31));
/// ```
#[inline]
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * shifted_month + 2) / 5 + 1) as u32;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The farthest day from the epoch that a 64-bit count of seconds reaches.
    const FARTHEST_DAY: i64 = i64::MAX / 86_400;

    fn is_leap(year: i64) -> bool {
        year.rem_euclid(4) == 0 && (year.rem_euclid(100) != 0 || year.rem_euclid(400) == 0)
    }

    fn month_days(year: i64, month: u32) -> u32 {
        match month {
            2 if is_leap(year) => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        }
    }

    #[test]
    fn known_dates_have_their_day_numbers() {
        let known = [
            ((1970, 1, 1), 0),
            ((1969, 12, 31), -1),
            ((1970, 3, 1), 59),
            ((2000, 1, 1), 10_957),
            ((2000, 2, 29), 11_016),
            ((2000, 3, 1), 11_017),
            ((2024, 1, 2), 19_724),
            ((1900, 3, 1), -25_508),
            ((9999, 12, 31), 2_932_896),
            ((0, 1, 1), -719_528),
            ((0, 2, 29), -719_469),
            ((0, 3, 1), -719_468),
            ((-1, 12, 31), -719_529),
            ((-4, 2, 29), -720_930),
            // The start of the Julian day count (JD 0), in the proleptic
            // Gregorian calendar.
            ((-4713, 11, 24), -2_440_588),
        ];
        for ((year, month, day), days) in known {
            assert_eq!(
                days_from_civil(year, month, day),
                days,
                "{year}-{month}-{day}"
            );
            assert_eq!(civil_from_days(days), (year, month, day), "{days}");
        }
    }

    #[test]
    fn every_date_of_eight_centuries_follows_the_one_before() {
        // Leap years of every kind on both sides of year 0: -400 and 0 are
        // leap years, -100 and 100 are not.
        let mut expected = days_from_civil(-401, 12, 31);
        for year in -400..=400 {
            for month in 1..=12 {
                for day in 1..=month_days(year, month) {
                    expected += 1;
                    assert_eq!(
                        days_from_civil(year, month, day),
                        expected,
                        "{year}-{month}-{day}"
                    );
                    assert_eq!(civil_from_days(expected), (year, month, day));
                }
            }
        }
    }

    #[test]
    fn days_round_trip_over_the_whole_range() {
        let check = |days: i64| {
            let (year, month, day) = civil_from_days(days);
            assert!((1..=12).contains(&month), "{days}: month {month}");
            assert!(
                (1..=month_days(year, month)).contains(&day),
                "{days}: day {day}"
            );
            assert_eq!(days_from_civil(year, month, day), days, "{days}");
        };
        // Every day of the years 0 to 9999 and of as many before them.
        for days in -4_371_000..=2_933_000 {
            check(days);
        }
        // Days spread evenly out to the farthest one a count of seconds
        // reaches, on both sides.
        let step = FARTHEST_DAY / 1_000_003;
        for i in -1_000_003..=1_000_003 {
            check(i * step);
        }
        for days in [
            FARTHEST_DAY,
            -FARTHEST_DAY,
            FARTHEST_DAY - 1,
            1 - FARTHEST_DAY,
        ] {
            check(days);
        }
    }

    #[test]
    fn eras_of_400_years_are_146_097_days() {
        for year in [
            -292_000_000_000,
            -1_000_000,
            -401,
            -400,
            -1,
            0,
            1,
            1970,
            9999,
            1_000_000,
        ] {
            for (month, day) in [(1, 1), (2, 28), (3, 1), (12, 31)] {
                assert_eq!(
                    days_from_civil(year + 400, month, day) - days_from_civil(year, month, day),
                    146_097,
                    "{year}-{month}-{day}"
                );
            }
        }
    }
}
