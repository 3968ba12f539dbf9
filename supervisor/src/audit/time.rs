//! RFC 3339 times in UTC (the calendar is `jiff`'s): records carry
//! `2026-11-23T14:05:09.123456Z` (always UTC, always microseconds, so the
//! text is fixed-width and sorts like the time), and `--since` accepts
//! RFC 3339 times or durations back from now (`90s`, `10m`, `2h`, `3d`, `1w`).
//!
//! Times are microseconds since the Unix epoch as `i64`.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use jiff::Timestamp;

const MICROS_PER_SEC: i64 = 1_000_000;
const SECS_PER_DAY: i64 = 86_400;

/// Now, in microseconds since the epoch (negative before 1970).
pub fn now_micros() -> i64 {
    micros_of(SystemTime::now())
}

pub fn micros_of(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_micros()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_micros()).map_or(i64::MIN, |m| -m),
    }
}

/// A time formatted as RFC 3339 UTC with microseconds (`jiff` does the
/// calendar); `Display` writes it without allocating.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rfc3339(pub i64);

impl fmt::Display for Rfc3339 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Every time a record holds is in jiff's range (years -9999 to
        // 9999); one beyond it is written as the range's end, still
        // fixed-width.
        let ts = Timestamp::from_microsecond(self.0).unwrap_or(if self.0 < 0 {
            Timestamp::MIN
        } else {
            Timestamp::MAX
        });
        write!(f, "{ts:.6}")
    }
}

/// Why a time or duration was not understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeError(String);

impl fmt::Display for TimeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TimeError {}

fn bad(text: &str, why: &str) -> TimeError {
    TimeError(format!("'{text}': {why}"))
}

/// Parses an RFC 3339 date-time (`2026-11-23T14:05:09Z`,
/// `2026-11-23t16:05:09.5+02:00`, a space instead of `T`; ISO 8601's other
/// spellings that `jiff` reads, such as `20261123T140509Z`, too), or a bare
/// date (`2026-11-23`, midnight UTC), into microseconds since the epoch. A
/// time without an offset is refused: it would be read in some zone.
pub fn parse_rfc3339(text: &str) -> Result<i64, TimeError> {
    let t = text.trim();
    // A bare date is its midnight in UTC.
    let midnight;
    let t = if t.len() == 10 {
        midnight = format!("{t}T00:00:00Z");
        midnight.as_str()
    } else {
        t
    };
    let ts: Timestamp = t
        .parse()
        .map_err(|e: jiff::Error| bad(text, &e.to_string()))?;
    Ok(ts.as_microsecond())
}

/// Parses a duration back from now: a number and a unit, `s`, `m`, `h`, `d`
/// or `w` (`90s`, `10m`, `2h`, `3d`, `1w`). Returns microseconds.
pub fn parse_duration(text: &str) -> Result<i64, TimeError> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    if num.is_empty() {
        return Err(bad(text, "expected a number before the unit"));
    }
    let n: i64 = num.parse().map_err(|_| bad(text, "number too large"))?;
    let unit_secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => SECS_PER_DAY,
        "w" => 7 * SECS_PER_DAY,
        "" => return Err(bad(text, "missing unit (s, m, h, d or w)")),
        _ => return Err(bad(text, "unknown unit (use s, m, h, d or w)")),
    };
    n.checked_mul(unit_secs * MICROS_PER_SEC)
        .ok_or_else(|| bad(text, "duration too large"))
}

/// `--since`: an RFC 3339 time, or a duration back from `now` (microseconds).
pub fn parse_since(text: &str, now: i64) -> Result<i64, TimeError> {
    let t = text.trim();
    if t.len() >= 10 && t.as_bytes()[4] == b'-' {
        parse_rfc3339(t)
    } else {
        parse_duration(t).map(|d| now - d).map_err(|_| {
            bad(
                text,
                "expected an RFC 3339 time (2026-11-23T14:05:00Z) or a duration (10m, 2h, 3d)",
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(micros: i64) -> String {
        Rfc3339(micros).to_string()
    }

    const S: i64 = MICROS_PER_SEC;

    #[test]
    fn formats_known_times() {
        assert_eq!(fmt(0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(fmt(951_782_400 * S), "2000-02-29T00:00:00.000000Z");
        assert_eq!(
            fmt(951_868_799 * S + 999_999),
            "2000-02-29T23:59:59.999999Z"
        );
        assert_eq!(fmt(1_700_000_000 * S + 42), "2023-11-14T22:13:20.000042Z");
        assert_eq!(fmt(4_102_444_800 * S), "2100-01-01T00:00:00.000000Z");
        assert_eq!(fmt(-S), "1969-12-31T23:59:59.000000Z");
        assert_eq!(fmt(-1), "1969-12-31T23:59:59.999999Z");
        assert_eq!(fmt(253_402_207_199 * S), "9999-12-30T21:59:59.000000Z");
        assert_eq!(fmt(1_709_164_800 * S), "2024-02-29T00:00:00.000000Z");
        assert_eq!(fmt(1_798_761_599 * S), "2026-12-31T23:59:59.000000Z");
    }

    #[test]
    fn now_formats_like_a_record_time() {
        let text = fmt(now_micros());
        assert_eq!(text.len(), 27, "{text}");
        assert_eq!(parse_rfc3339(&text).unwrap() / S, now_micros() / S);
    }

    #[test]
    fn parses_rfc3339() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(
            parse_rfc3339("2023-11-14T22:13:20.000042Z"),
            Ok(1_700_000_000 * S + 42)
        );
        assert_eq!(
            parse_rfc3339("2023-11-15t00:13:20.5+02:00"),
            Ok(1_700_000_000 * S + 500_000)
        );
        assert_eq!(
            parse_rfc3339("2023-11-14 17:13:20-05:00"),
            Ok(1_700_000_000 * S)
        );
        assert_eq!(
            parse_rfc3339("2023-11-14T22:13:20.123456789Z"),
            Ok(1_700_000_000 * S + 123_456)
        );
        assert_eq!(parse_rfc3339("2000-02-29"), Ok(951_782_400 * S));
        for t in [0, -1, 951_868_799 * S + 999_999, 4_102_444_800 * S + 7] {
            if t >= 0 {
                assert_eq!(parse_rfc3339(&fmt(t)), Ok(t));
            }
        }
    }

    #[test]
    fn rejects_bad_times() {
        for bad in [
            "",
            "2023",
            "2023-13-01",
            "2023-02-29",
            "2023-11-14T24:00:00Z",
            "2023-11-14T22:13:20",
            "2023-11-14T22:13:20Zjunk",
            "2023-11-14T22:13:20.Z",
            "2023-11-14X22:13:20Z",
            "2023-11-14T22:13:20 Z",
            "2023-11-14T22:13",
        ] {
            assert!(parse_rfc3339(bad).is_err(), "{bad:?} should not parse");
        }
        let err = parse_rfc3339("2023-13-01").unwrap_err().to_string();
        assert!(
            err.contains("'2023-13-01'") && err.contains("month"),
            "{err}"
        );
    }

    #[test]
    fn parses_durations_and_since() {
        assert_eq!(parse_duration("90s"), Ok(90 * S));
        assert_eq!(parse_duration("10m"), Ok(600 * S));
        assert_eq!(parse_duration("2h"), Ok(7200 * S));
        assert_eq!(parse_duration("3d"), Ok(3 * 86_400 * S));
        assert_eq!(parse_duration("1w"), Ok(7 * 86_400 * S));
        for bad in ["", "10", "m", "10x", "-5m", "1.5h", "99999999999999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should not parse");
        }
        let now = 1_700_000_000 * S;
        assert_eq!(parse_since("10m", now), Ok(now - 600 * S));
        assert_eq!(parse_since("2h", now), Ok(now - 7200 * S));
        assert_eq!(parse_since("2023-11-14T22:13:20Z", now), Ok(now));
        assert!(parse_since("yesterday", now).is_err());
    }
}
