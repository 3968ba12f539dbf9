//! RFC 3339 times in UTC, without a date library: records carry
//! `2026-11-23T14:05:09.123456Z` (always UTC, always microseconds, so the
//! text is fixed-width and sorts like the time), and `--since` accepts
//! RFC 3339 times or durations back from now (`90s`, `10m`, `2h`, `3d`, `1w`).
//!
//! Times are microseconds since the Unix epoch as `i64`.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

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

/// The civil (proleptic Gregorian) date of a day count since 1970-01-01:
/// (year, month 1-12, day 1-31). Counts in 400-year eras of 146,097 days,
/// with years starting on March 1st so that the leap day ends the year.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468; // days since 0000-03-01
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // day of era, 0..=146096
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // 0..=399
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // day of March-year, 0..=365
    let mp = (5 * doy + 2) / 153; // month from March, 0..=11
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = (if mp < 10 { mp + 3 } else { mp - 9 }) as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The inverse of [`civil_from_days`]. `month` must be 1-12 and `day` 1-31.
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((month + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        _ => 31,
    }
}

/// A time formatted as RFC 3339 UTC with microseconds; `Display` writes it
/// without allocating.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rfc3339(pub i64);

impl fmt::Display for Rfc3339 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0.div_euclid(MICROS_PER_SEC);
        let micros = self.0.rem_euclid(MICROS_PER_SEC);
        let (year, month, day) = civil_from_days(secs.div_euclid(SECS_PER_DAY));
        let sod = secs.rem_euclid(SECS_PER_DAY);
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{micros:06}Z",
            sod / 3600,
            sod / 60 % 60,
            sod % 60
        )
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

/// A cursor over ASCII digits and separators.
struct Scan<'a> {
    text: &'a str,
    rest: &'a [u8],
}

impl Scan<'_> {
    fn digits(&mut self, n: usize, what: &str) -> Result<u32, TimeError> {
        let ok = self.rest.len() >= n && self.rest[..n].iter().all(u8::is_ascii_digit);
        if !ok {
            return Err(bad(
                self.text,
                &format!("expected {n} digits for the {what}"),
            ));
        }
        let v = self.rest[..n]
            .iter()
            .fold(0, |v, d| v * 10 + u32::from(d - b'0'));
        self.rest = &self.rest[n..];
        Ok(v)
    }

    fn expect(&mut self, seps: &[u8]) -> Result<(), TimeError> {
        match self.rest.first() {
            Some(c) if seps.contains(c) => {
                self.rest = &self.rest[1..];
                Ok(())
            }
            _ => Err(bad(
                self.text,
                &format!("expected '{}'", char::from(seps[0])),
            )),
        }
    }
}

/// Parses an RFC 3339 date-time (`2026-11-23T14:05:09Z`,
/// `2026-11-23t16:05:09.5+02:00`, a space instead of `T`), or a bare date
/// (`2026-11-23`, midnight UTC), into microseconds since the epoch.
pub fn parse_rfc3339(text: &str) -> Result<i64, TimeError> {
    let mut s = Scan {
        text,
        rest: text.trim().as_bytes(),
    };
    let year = s.digits(4, "year")?;
    s.expect(b"-")?;
    let month = s.digits(2, "month")?;
    s.expect(b"-")?;
    let day = s.digits(2, "day")?;
    if !(1..=12).contains(&month) {
        return Err(bad(text, "month out of range"));
    }
    if day == 0 || day > days_in_month(i64::from(year), month) {
        return Err(bad(text, "day out of range"));
    }
    let days = days_from_civil(i64::from(year), month, day);
    if s.rest.is_empty() {
        return Ok(days * SECS_PER_DAY * MICROS_PER_SEC);
    }
    s.expect(b"Tt ")?;
    let hour = s.digits(2, "hour")?;
    s.expect(b":")?;
    let minute = s.digits(2, "minute")?;
    s.expect(b":")?;
    let second = s.digits(2, "second")?;
    // 60 is a leap second; it counts as the next second's start.
    if hour > 23 || minute > 59 || second > 60 {
        return Err(bad(text, "time of day out of range"));
    }
    let mut micros = 0i64;
    if s.rest.first() == Some(&b'.') {
        s.rest = &s.rest[1..];
        let n = s.rest.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return Err(bad(text, "expected digits after '.'"));
        }
        for (i, d) in s.rest[..n].iter().enumerate() {
            if i < 6 {
                micros = micros * 10 + i64::from(d - b'0');
            }
        }
        micros *= 10i64.pow(6u32.saturating_sub(n as u32));
        s.rest = &s.rest[n..];
    }
    let offset_secs = match s.rest.first() {
        Some(b'Z' | b'z') if s.rest.len() == 1 => 0,
        Some(&sign @ (b'+' | b'-')) => {
            s.rest = &s.rest[1..];
            let h = s.digits(2, "offset hours")?;
            s.expect(b":")?;
            let m = s.digits(2, "offset minutes")?;
            if !s.rest.is_empty() || h > 23 || m > 59 {
                return Err(bad(text, "bad UTC offset"));
            }
            let off = i64::from(h * 3600 + m * 60);
            if sign == b'-' {
                -off
            } else {
                off
            }
        }
        _ => return Err(bad(text, "expected 'Z' or a UTC offset like +02:00")),
    };
    let secs = days * SECS_PER_DAY + i64::from(hour * 3600 + minute * 60 + second) - offset_secs;
    Ok(secs * MICROS_PER_SEC + micros)
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
        assert_eq!(fmt(253_402_300_799 * S), "9999-12-31T23:59:59.000000Z");
        assert_eq!(fmt(1_709_164_800 * S), "2024-02-29T00:00:00.000000Z");
        assert_eq!(fmt(1_798_761_599 * S), "2026-12-31T23:59:59.000000Z");
    }

    #[test]
    fn civil_conversion_round_trips_over_centuries() {
        let mut expected = (1600, 1, 1);
        for days in days_from_civil(1600, 1, 1)..days_from_civil(2401, 1, 1) {
            let got = civil_from_days(days);
            assert_eq!(got, expected, "day {days}");
            assert_eq!(days_from_civil(got.0, got.1, got.2), days);
            let (y, m, d) = expected;
            expected = if d < days_in_month(y, m) {
                (y, m, d + 1)
            } else if m < 12 {
                (y, m + 1, 1)
            } else {
                (y + 1, 1, 1)
            };
        }
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
            "2023-11-14T22:13:20+0200",
            "2023-11-14T22:13:20.Z",
            "2023-11-14X22:13:20Z",
            "20231114T221320Z",
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
