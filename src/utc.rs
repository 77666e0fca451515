//! UTC calendar arithmetic for SigV4's dates and the credential endpoints' `Expiration`s, without
//! a date crate: Howard Hinnant's days-from-civil conversions, proleptic Gregorian, no leap
//! seconds (as `SystemTime` and AWS both count).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A UTC instant split into calendar fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

/// The calendar fields of `time` (whole seconds; instants before 1970 count as 1970-01-01).
pub fn civil(time: SystemTime) -> Civil {
    let secs = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()) as i64;
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    Civil {
        year,
        month,
        day,
        hour: (rest / 3600) as u32,
        minute: (rest % 3600 / 60) as u32,
        second: (rest % 60) as u32,
    }
}

/// SigV4's `X-Amz-Date` form, `YYYYMMDDTHHMMSSZ`.
pub fn amz_date(time: SystemTime) -> String {
    let c = civil(time);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    )
}

/// Parses the ISO 8601 / RFC 3339 timestamps the credential endpoints send:
/// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`. Anything else is `None` (strict: an expiry we
/// misread would keep a dead credential). The fraction is dropped: expiries are whole seconds.
pub fn parse_iso8601(text: &str) -> Option<SystemTime> {
    let b = text.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let year = digits(&b[0..4])?;
    let (month, day) = (digits(&b[5..7])?, digits(&b[8..10])?);
    let (hour, minute, second) = (
        digits(&b[11..13])?,
        digits(&b[14..16])?,
        digits(&b[17..19])?,
    );
    let valid_day = (1..=12).contains(&month) && day >= 1 && day <= days_in_month(year, month);
    if !valid_day || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let offset = parse_zone(skip_fraction(&b[19..])?)?;
    let days = days_from_civil(year as i64, month as u32, day as u32);
    let secs = days * 86_400 + (hour * 3600 + minute * 60 + second) as i64 - offset;
    u64::try_from(secs)
        .ok()
        .map(|s| UNIX_EPOCH + Duration::from_secs(s))
}

/// What follows `.fraction`, if any (at least one digit after the dot).
fn skip_fraction(rest: &[u8]) -> Option<&[u8]> {
    match rest.split_first() {
        Some((b'.', tail)) => {
            let n = tail.iter().take_while(|c| c.is_ascii_digit()).count();
            (n > 0).then_some(&tail[n..])
        }
        _ => Some(rest),
    }
}

/// The zone's offset east of UTC in seconds: `Z` or `±HH:MM`.
fn parse_zone(zone: &[u8]) -> Option<i64> {
    match zone {
        [b'Z' | b'z'] => Some(0),
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let (h, m) = (digits(&[*h1, *h2])?, digits(&[*m1, *m2])?);
            if h > 23 || m > 59 {
                return None;
            }
            let secs = (h * 3600 + m * 60) as i64;
            Some(if *sign == b'-' { -secs } else { secs })
        }
        _ => None,
    }
}

/// A fixed-width run of ASCII digits.
fn digits(b: &[u8]) -> Option<u64> {
    b.iter().try_fold(0u64, |n, c| {
        c.is_ascii_digit().then(|| n * 10 + u64::from(c - b'0'))
    })
}

/// The days in `month` of `year` (proleptic Gregorian).
pub fn days_in_month(year: u64, month: u64) -> u64 {
    let leap = year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400));
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Hinnant's `days_from_civil`).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day count since 1970-01-01 (Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn formats_amz_dates_across_leap_days_and_centuries() {
        for (secs, want) in [
            (0, "19700101T000000Z"),
            (951_782_400, "20000229T000000Z"),
            (1_234_567_890, "20090213T233130Z"),
            (1_700_000_000, "20231114T221320Z"),
            (1_709_251_199, "20240229T235959Z"),
            (4_102_444_799, "20991231T235959Z"),
            (4_107_542_400, "21000301T000000Z"),
        ] {
            assert_eq!(amz_date(at(secs)), want, "{secs}");
        }
    }

    #[test]
    fn days_round_trip_through_the_calendar() {
        for days in (-800_000..800_000).step_by(97) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn parses_the_timestamps_aws_endpoints_send() {
        for (text, want) in [
            ("2014-10-24T23:00:23Z", Some(1_414_191_623)),
            ("2014-10-24T23:00:23.123Z", Some(1_414_191_623)),
            ("2014-10-24t23:00:23z", Some(1_414_191_623)),
            ("2014-10-25T01:00:23+02:00", Some(1_414_191_623)),
            ("2014-10-24T22:00:23-01:00", Some(1_414_191_623)),
            ("2024-02-29T00:00:00Z", Some(1_709_164_800)),
            ("1970-01-01T00:00:00Z", Some(0)),
        ] {
            assert_eq!(parse_iso8601(text), want.map(at), "{text}");
        }
    }

    #[test]
    fn rejects_timestamps_that_are_not_strictly_iso8601() {
        for text in [
            "",
            "2014-10-24",
            "2014-10-24T23:00:23",
            "2014-10-24 23:00:23Z",
            "2014-10-24T23:00:23+0200",
            "2014-10-24T23:00:23.Z",
            "2014-13-01T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2014-10-24T24:00:00Z",
            "2014-10-24T23:60:00Z",
            "2014-10-24T23:00:60Z",
            "+014-10-24T23:00:23Z",
            "2014-10-24T23:00:23Zjunk",
            "1969-12-31T23:59:59Z",
            "२०१४-10-24T23:00:23Z",
        ] {
            assert_eq!(parse_iso8601(text), None, "{text}");
        }
    }
}
