//! Times as responders type them: `10:42`, `15m ago`, `3d`, `2026-12-01`, RFC 3339.

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, NaiveTime, Utc};

fn duration(s: &str) -> Option<Duration> {
    humantime::parse_duration(s.trim())
        .ok()
        .and_then(|d| Duration::from_std(d).ok())
}

fn absolute(s: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    for fmt in [
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%dT%H:%MZ",
        "%Y-%m-%d %H:%M:%S",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(t.and_utc());
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return d.and_hms_opt(0, 0, 0).map(|t| t.and_utc());
    }
    for fmt in ["%H:%M", "%H:%M:%S"] {
        if let Ok(t) =
            NaiveTime::parse_from_str(s.trim_end_matches(" UTC").trim_end_matches('Z'), fmt)
        {
            return Some(now.date_naive().and_time(t).and_utc());
        }
    }
    None
}

/// A moment in the past (UTC): `10:42` (today), `15m ago`, `-15m`, `2026-11-21 10:42`, RFC 3339.
pub fn parse_past(s: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let t = s.trim();
    let rel = t
        .strip_suffix("ago")
        .or_else(|| t.strip_prefix('-'))
        .and_then(duration);
    let at = rel
        .map(|d| now - d)
        .or_else(|| absolute(t, now))
        .ok_or_else(|| {
            format!("`{s}` is not a time; try 10:42 (UTC, today), 15m ago, or 2026-11-21T10:42:00Z")
        })?;
    if at > now {
        return Err(format!(
            "`started` must be in the past; {} is in the future",
            at.format("%Y-%m-%d %H:%M UTC")
        ));
    }
    Ok(at)
}

/// A moment in the future: `3d`, `in 2h`, `2026-12-01`, RFC 3339.
pub fn parse_due(s: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let t = s.trim();
    let rel = duration(t.strip_prefix("in ").unwrap_or(t));
    let at = rel
        .map(|d| now + d)
        .or_else(|| absolute(t, now))
        .ok_or_else(|| format!("`{s}` is not a due date; try 3d, in 2h, or 2026-12-01"))?;
    if at < now - Duration::days(1) {
        return Err(format!(
            "the due date {} is in the past",
            at.format("%Y-%m-%d")
        ));
    }
    Ok(at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 21, 12, 0, 0).unwrap()
    }

    #[test]
    fn past_times() {
        let n = now();
        assert_eq!(parse_past("15m ago", n).unwrap(), n - Duration::minutes(15));
        assert_eq!(parse_past("-1h", n).unwrap(), n - Duration::hours(1));
        assert_eq!(
            parse_past("10:42", n).unwrap(),
            Utc.with_ymd_and_hms(2026, 11, 21, 10, 42, 0).unwrap()
        );
        assert_eq!(
            parse_past("2026-11-20T23:00:00+01:00", n).unwrap(),
            Utc.with_ymd_and_hms(2026, 11, 20, 22, 0, 0).unwrap()
        );
        assert!(parse_past("13:00", n)
            .unwrap_err()
            .contains("in the future"));
        assert!(parse_past("2027-01-01", n)
            .unwrap_err()
            .contains("in the future"));
        assert!(parse_past("yesterday-ish", n)
            .unwrap_err()
            .contains("not a time"));
    }

    #[test]
    fn due_dates() {
        let n = now();
        assert_eq!(parse_due("3d", n).unwrap(), n + Duration::days(3));
        assert_eq!(parse_due("in 2h", n).unwrap(), n + Duration::hours(2));
        assert_eq!(
            parse_due("2026-12-01", n).unwrap(),
            Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap()
        );
        assert!(parse_due("2020-01-01", n).is_err());
        assert!(parse_due("whenever", n).is_err());
    }
}
