//! Certificate times (RFC 5280 4.1.2.5) to `SystemTime`, with the crate's own calendar
//! arithmetic ([`crate::utc`]), so the binary carries no date crate.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::X509Error;
use crate::utc::{days_from_civil, days_in_month};

const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;

/// A `Time` element: UTCTime `YYMMDDHHMMSSZ` (years 50–99 are 19xx, as RFC 5280 says) or
/// GeneralizedTime `YYYYMMDDHHMMSSZ`. RFC 5280 allows only these forms: seconds present, no
/// fractions, Zulu.
pub fn parse(tag: u8, bytes: &[u8], field: &'static str) -> Result<SystemTime, X509Error> {
    let bad = X509Error::BadTime(field);
    let (year, rest) = match (tag, bytes.len()) {
        (UTC_TIME, 13) => {
            let yy = number(&bytes[..2]).ok_or(bad)?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &bytes[2..])
        }
        (GENERALIZED_TIME, 15) => (number(&bytes[..4]).ok_or(bad)?, &bytes[4..]),
        _ => return Err(bad),
    };
    if rest[10] != b'Z' {
        return Err(bad);
    }
    let field_at = |i: usize| number(&rest[i..i + 2]).ok_or(bad);
    let (month, day) = (field_at(0)?, field_at(2)?);
    let (hour, minute, second) = (field_at(4)?, field_at(6)?, field_at(8)?);
    let valid = (1..=12).contains(&month)
        && (1..=days_in_month(u64::from(year), u64::from(month))).contains(&u64::from(day))
        && hour < 24
        && minute < 60
        && second < 60;
    if !valid {
        return Err(bad);
    }
    let days = days_from_civil(i64::from(year), month, day);
    let seconds = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second);
    at(seconds).ok_or(bad)
}

/// ASCII decimal digits only (no sign, no space) as a number.
fn number(digits: &[u8]) -> Option<u32> {
    digits.iter().try_fold(0u32, |n, &d| {
        d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0'))
    })
}

/// Seconds from the Unix epoch, either side of it; `None` where this platform's clock ends.
fn at(seconds: i64) -> Option<SystemTime> {
    let magnitude = Duration::from_secs(seconds.unsigned_abs());
    match seconds >= 0 {
        true => UNIX_EPOCH.checked_add(magnitude),
        false => UNIX_EPOCH.checked_sub(magnitude),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seconds(time: SystemTime) -> i64 {
        match time.duration_since(UNIX_EPOCH) {
            Ok(d) => d.as_secs() as i64,
            Err(e) => -(e.duration().as_secs() as i64),
        }
    }

    #[test]
    fn reads_both_forms_either_side_of_the_epoch() {
        let table: [(u8, &str, i64); 8] = [
            (UTC_TIME, "700101000000Z", 0),
            (UTC_TIME, "491231235959Z", 2_524_607_999),
            (UTC_TIME, "500101000000Z", -631_152_000),
            (UTC_TIME, "000229120000Z", 951_825_600),
            (GENERALIZED_TIME, "20510102030405Z", 2_556_241_445),
            (GENERALIZED_TIME, "19691231235959Z", -1),
            (GENERALIZED_TIME, "99991231235959Z", 253_402_300_799),
            (GENERALIZED_TIME, "00010101000000Z", -62_135_596_800),
        ];
        for (tag, text, want) in table {
            let time = parse(tag, text.as_bytes(), "t").unwrap();
            assert_eq!(seconds(time), want, "{text}");
        }
    }

    #[test]
    fn refuses_what_rfc_5280_does_not_allow() {
        let table: [(u8, &str); 11] = [
            (UTC_TIME, "7001010000Z"),
            (UTC_TIME, "700101000000+0100"),
            (UTC_TIME, "700101000000z"),
            (UTC_TIME, "701301000000Z"),
            (UTC_TIME, "700230000000Z"),
            (UTC_TIME, "010229000000Z"),
            (UTC_TIME, "700101240000Z"),
            (UTC_TIME, "70010100-000Z"),
            (GENERALIZED_TIME, "700101000000Z"),
            (GENERALIZED_TIME, "20500101000000.5Z"),
            (0x04, "700101000000Z"),
        ];
        for (tag, text) in table {
            assert_eq!(
                parse(tag, text.as_bytes(), "t"),
                Err(X509Error::BadTime("t")),
                "{text}"
            );
        }
    }
}
