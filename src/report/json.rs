//! One JSON object per line, encoded by serde_json (its serializer only: the parser is never
//! linked, which keeps the static binary within budget).

use std::io;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::ser::{CompactFormatter, Formatter};

use super::{needs_escape, Record};
use crate::probe::Route;

/// The record as one JSON line, newline included.
pub fn line(record: &Record<'_>, now: SystemTime) -> String {
    let mut buf = Vec::with_capacity(256);
    let mut serializer = serde_json::Serializer::with_formatter(&mut buf, SafeJson);
    let stamped = Stamped { record, now };
    if stamped.serialize(&mut serializer).is_err() {
        // Serializing strings and numbers into memory cannot fail; never write half a line.
        return String::new();
    }
    buf.push(b'\n');
    String::from_utf8(buf).unwrap_or_default()
}

/// A JSON line of string fields (a `None` is left out) and maybe a number, for `--diagnose`.
pub fn object(fields: &[(&str, Option<&str>)], number: Option<(&str, u64)>) -> String {
    let mut buf = Vec::with_capacity(256);
    let mut serializer = serde_json::Serializer::with_formatter(&mut buf, SafeJson);
    let written = (|| {
        let mut map = serializer.serialize_map(None)?;
        for (key, value) in fields {
            optional(&mut map, key, *value)?;
        }
        optional(
            &mut map,
            number.map_or("exit", |n| n.0),
            number.map(|n| n.1),
        )?;
        map.end()
    })();
    if written.is_err() {
        return String::new();
    }
    buf.push(b'\n');
    String::from_utf8(buf).unwrap_or_default()
}

struct Stamped<'r, 'a> {
    record: &'r Record<'a>,
    now: SystemTime,
}

impl Serialize for Stamped<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let r = self.record;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("ts", &rfc3339_millis(self.now))?;
        map.serialize_entry("level", r.level.unwrap_or(super::Level::Info).name())?;
        map.serialize_entry("event", r.event)?;
        map.serialize_entry("msg", &r.msg)?;
        optional(&mut map, "target", r.target.as_deref())?;
        if let Some(server) = r.server {
            map.serialize_entry("address", &super::words::server(server))?;
            map.serialize_entry("host", &server.host)?;
            map.serialize_entry("port", &server.port)?;
            if let Some(Route::Tcp(addr)) = &server.route {
                map.serialize_entry("ip", &addr.ip().to_string())?;
            }
        }
        optional(&mut map, "class", r.class.map(|c| c.name()))?;
        optional(&mut map, "sqlstate", r.sqlstate)?;
        optional(&mut map, "attempts", r.attempts)?;
        optional(&mut map, "elapsed_ms", r.elapsed.map(millis))?;
        optional(&mut map, "delay_ms", r.delay.map(millis))?;
        optional(
            &mut map,
            "answer_us",
            r.answer.map(|d| d.as_micros() as u64),
        )?;
        optional(&mut map, "reason", r.reason)?;
        optional(&mut map, "hint", r.hint)?;
        optional(&mut map, "signal", r.signal.as_deref())?;
        optional(&mut map, "program", r.program.as_deref())?;
        optional(&mut map, "checked", r.checked.as_deref())?;
        optional(&mut map, "lag_bytes", r.lag.and_then(|l| l.bytes))?;
        optional(&mut map, "lag_ms", r.lag.and_then(|l| l.ms))?;
        map.end()
    }
}

fn optional<M: SerializeMap, T: Serialize>(
    map: &mut M,
    key: &str,
    value: Option<T>,
) -> Result<(), M::Error> {
    match value {
        Some(value) => map.serialize_entry(key, &value),
        None => Ok(()),
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// serde_json's compact output, with the characters JSON allows raw but a terminal may act on
/// (DEL, C1 controls, line separators, bidi overrides) escaped as `\uXXXX` too.
struct SafeJson;

impl Formatter for SafeJson {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut rest = fragment;
        while let Some((i, c)) = rest.char_indices().find(|(_, c)| needs_escape(*c)) {
            writer.write_all(&rest.as_bytes()[..i])?;
            write!(writer, "\\u{:04x}", c as u32)?;
            rest = &rest[i + c.len_utf8()..];
        }
        CompactFormatter.write_string_fragment(writer, rest)
    }
}

/// `2026-11-24T05:07:12.345Z`: RFC 3339, UTC, milliseconds.
pub fn rfc3339_millis(t: SystemTime) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let c = crate::utc::civil(t);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        c.year,
        c.month,
        c.day,
        c.hour,
        c.minute,
        c.second,
        since.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc_with_milliseconds() {
        let table = [
            (0, "1970-01-01T00:00:00.000Z"),
            (951_782_400_123, "2000-02-29T00:00:00.123Z"),
            (1_795_496_832_345, "2026-11-24T05:07:12.345Z"),
            (4_107_542_399_999, "2100-02-28T23:59:59.999Z"),
        ];
        for (ms, text) in table {
            let t = UNIX_EPOCH + Duration::from_millis(ms);
            assert_eq!(rfc3339_millis(t), text, "{ms}");
        }
    }
}
