//! iCalendar on-call feeds (RFC 5545): each event names who is on call while it lasts; recurring
//! events are expanded, with their exceptions (EXDATE) and moved or changed instances
//! (RECURRENCE-ID). Parsing is the `icalendar` crate's and recurrence the `rrule` crate's.

use crate::domain::oncall::{local, Interval, Person};
use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use icalendar::parser::{read_calendar, unfold, Component, Property};
use std::collections::BTreeMap;
use std::path::Path;

/// At most this many occurrences of one recurring event are read per look-up.
const MAX_OCCURRENCES: u16 = 2000;

#[derive(Debug, thiserror::Error)]
pub enum IcalError {
    #[error("the calendar does not parse: {0}")]
    Parse(String),
    #[error("event {uid}: {message}")]
    Event { uid: String, message: String },
    #[error("cannot fetch the calendar: {0}")]
    Fetch(String),
}

/// Reads the feed at `url` (http or https), waiting at most `timeout`.
pub async fn fetch(url: &str, timeout: std::time::Duration) -> Result<String, IcalError> {
    let http = reqwest::Client::builder()
        .use_rustls_tls()
        .connect_timeout(timeout)
        .timeout(timeout)
        .build()
        .map_err(|e| IcalError::Fetch(e.to_string()))?;
    let resp = http
        .get(url)
        .header(reqwest::header::ACCEPT, "text/calendar")
        .send()
        .await
        .map_err(|e| {
            IcalError::Fetch(if e.is_timeout() {
                format!("no answer within {}s", timeout.as_secs())
            } else if e.is_connect() {
                format!("cannot connect to {url}")
            } else {
                e.to_string()
            })
        })?;
    let status = resp.status();
    if !status.is_success() {
        return Err(IcalError::Fetch(format!("{url} answered {status}")));
    }
    resp.text()
        .await
        .map_err(|e| IcalError::Fetch(e.to_string()))
}

/// Reads a feed from a file.
pub async fn read(path: &Path) -> Result<String, IcalError> {
    tokio::fs::read_to_string(path)
        .await
        .map_err(|e| IcalError::Fetch(format!("{}: {e}", path.display())))
}

fn prop_param<'a>(p: &'a Property, key: &str) -> Option<&'a str> {
    p.params
        .iter()
        .find(|q| q.key.as_str().eq_ignore_ascii_case(key))
        .and_then(|q| q.val.as_ref())
        .map(|v| v.as_str().trim_matches('"'))
}

fn unescape(s: &str) -> String {
    s.replace("\\n", " ")
        .replace("\\N", " ")
        .replace("\\,", ",")
        .replace("\\;", ";")
        .replace("\\\\", "\\")
}

/// A DATE or DATE-TIME value: UTC (`Z`), in its TZID, or floating (read in `default_tz`).
fn instant(value: &str, tzid: Option<&str>, default_tz: Tz) -> Result<DateTime<Utc>, String> {
    let value = value.trim();
    if let Some(utc) = value.strip_suffix('Z') {
        let t = NaiveDateTime::parse_from_str(utc, "%Y%m%dT%H%M%S")
            .map_err(|e| format!("`{value}`: {e}"))?;
        return Ok(Utc.from_utc_datetime(&t));
    }
    let tz = match tzid {
        Some(name) => name
            .parse::<Tz>()
            .map_err(|_| format!("TZID `{name}` is not an IANA time zone"))?,
        None => default_tz,
    };
    let t = match NaiveDateTime::parse_from_str(value, "%Y%m%dT%H%M%S") {
        Ok(t) => t,
        Err(_) => NaiveDate::parse_from_str(value, "%Y%m%d")
            .map_err(|e| format!("`{value}`: {e}"))?
            .and_hms_opt(0, 0, 0)
            .unwrap_or_default(),
    };
    Ok(local(tz, t))
}

/// `P1W`, `P2D`, `PT8H30M`, `P1DT12H`.
fn duration(value: &str) -> Option<Duration> {
    let rest = value.trim().strip_prefix('P')?;
    let (date, time) = rest.split_once('T').unwrap_or((rest, ""));
    let mut total = Duration::zero();
    for (part, units) in [(date, "WD"), (time, "HMS")] {
        let mut n = String::new();
        for c in part.chars() {
            if c.is_ascii_digit() {
                n.push(c);
                continue;
            }
            if !units.contains(c) {
                return None;
            }
            let v: i64 = std::mem::take(&mut n).parse().ok()?;
            total += match c {
                'W' => Duration::weeks(v),
                'D' => Duration::days(v),
                'H' => Duration::hours(v),
                'M' => Duration::minutes(v),
                _ => Duration::seconds(v),
            };
        }
    }
    Some(total)
}

/// One VEVENT as read.
struct Event {
    uid: String,
    who: Person,
    start: DateTime<Utc>,
    length: Duration,
    /// The DTSTART line as the rrule crate reads it, for recurring events.
    rule: Option<String>,
    exdates: Vec<DateTime<Utc>>,
    rdates: Vec<DateTime<Utc>>,
    recurrence_id: Option<DateTime<Utc>>,
}

/// Who an event puts on call: its attendee (email, and name if given), else its summary.
fn person(c: &Component) -> Person {
    let summary = c
        .find_prop("SUMMARY")
        .map(|p| unescape(p.val.as_str()).trim().to_string())
        .unwrap_or_default();
    if let Some(a) = c.find_prop("ATTENDEE") {
        let email = a
            .val
            .as_str()
            .trim()
            .strip_prefix("mailto:")
            .or_else(|| a.val.as_str().trim().strip_prefix("MAILTO:"))
            .map(str::to_string);
        let name = prop_param(a, "CN")
            .map(str::to_string)
            .unwrap_or_else(|| summary.clone());
        return Person { name, email };
    }
    Person::named(summary)
}

fn event(c: &Component, default_tz: Tz) -> Result<Option<Event>, IcalError> {
    let uid = c
        .find_prop("UID")
        .map(|p| p.val.as_str().to_string())
        .unwrap_or_default();
    let err = |message: String| IcalError::Event {
        uid: uid.clone(),
        message,
    };
    if c.find_prop("STATUS")
        .is_some_and(|s| s.val.as_str().eq_ignore_ascii_case("CANCELLED"))
    {
        return Ok(None);
    }
    let start_prop = c
        .find_prop("DTSTART")
        .ok_or_else(|| err("no DTSTART".into()))?;
    let tzid = prop_param(start_prop, "TZID");
    let start = instant(start_prop.val.as_str(), tzid, default_tz).map_err(err)?;
    let all_day = !start_prop.val.as_str().contains('T');
    let length = if let Some(end) = c.find_prop("DTEND") {
        instant(end.val.as_str(), prop_param(end, "TZID"), default_tz).map_err(err)? - start
    } else if let Some(d) = c.find_prop("DURATION") {
        duration(d.val.as_str())
            .ok_or_else(|| err(format!("DURATION `{}` is not read", d.val.as_str())))?
    } else if all_day {
        Duration::days(1)
    } else {
        Duration::zero()
    };
    let times = |name: &str| -> Result<Vec<DateTime<Utc>>, IcalError> {
        let mut out = Vec::new();
        for p in c.properties.iter().filter(|p| p.name.as_str() == name) {
            for v in p.val.as_str().split(',') {
                out.push(instant(v, prop_param(p, "TZID"), default_tz).map_err(err)?);
            }
        }
        Ok(out)
    };
    let rule = match c.find_prop("RRULE") {
        Some(r) => {
            // The rrule crate reads DTSTART in UTC or with a TZID; all-day and floating starts
            // are given in the zone they are read in.
            let zone = match tzid {
                Some(z) => z.to_string(),
                None => default_tz.name().to_string(),
            };
            let dtstart = if start_prop.val.as_str().ends_with('Z') {
                format!("DTSTART:{}", start_prop.val.as_str().trim())
            } else {
                format!(
                    "DTSTART;TZID={zone}:{}",
                    start
                        .with_timezone(&zone.parse::<Tz>().unwrap_or(default_tz))
                        .format("%Y%m%dT%H%M%S")
                )
            };
            Some(format!("{dtstart}\nRRULE:{}", r.val.as_str().trim()))
        }
        None => None,
    };
    let recurrence_id = match c.find_prop("RECURRENCE-ID") {
        Some(p) => Some(instant(p.val.as_str(), prop_param(p, "TZID"), default_tz).map_err(err)?),
        None => None,
    };
    Ok(Some(Event {
        who: person(c),
        start,
        length,
        rule,
        exdates: times("EXDATE")?,
        rdates: times("RDATE")?,
        recurrence_id,
        uid,
    }))
}

/// Every on-call stretch of the calendar `text` touching `[from, until)`. Floating and all-day
/// times are read in the calendar's `X-WR-TIMEZONE`, else in `default_tz`. One-off events lie
/// over recurring ones (a swap written as its own event wins).
pub fn intervals(
    text: &str,
    default_tz: Tz,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<Vec<Interval>, IcalError> {
    let unfolded = unfold(text);
    let calendar = read_calendar(&unfolded).map_err(IcalError::Parse)?;
    let tz = calendar
        .properties
        .iter()
        .find(|p| p.name.as_str() == "X-WR-TIMEZONE")
        .and_then(|p| p.val.as_str().trim().parse::<Tz>().ok())
        .unwrap_or(default_tz);
    let mut events = Vec::new();
    for c in calendar
        .components
        .iter()
        .filter(|c| c.name.as_str() == "VEVENT")
    {
        if let Some(e) = event(c, tz)? {
            events.push(e);
        }
    }
    // Instances moved or changed by an event of their own, by the series' UID.
    let mut replaced: BTreeMap<&str, Vec<DateTime<Utc>>> = BTreeMap::new();
    for e in &events {
        if let Some(r) = e.recurrence_id {
            replaced.entry(e.uid.as_str()).or_default().push(r);
        }
    }
    let mut out = Vec::new();
    let touches = |s: DateTime<Utc>, len: Duration| s < until && s + len > from;
    for e in &events {
        let Some(rule) = &e.rule else {
            if touches(e.start, e.length) {
                out.push(Interval {
                    who: e.who.clone(),
                    start: Some(e.start),
                    end: Some(e.start + e.length),
                    layer: if e.recurrence_id.is_some() { 0 } else { 1 },
                });
            }
            continue;
        };
        let set: rrule::RRuleSet =
            rule.parse()
                .map_err(|x: rrule::RRuleError| IcalError::Event {
                    uid: e.uid.clone(),
                    message: x.to_string(),
                })?;
        let after = (from - e.length - Duration::seconds(1)).with_timezone(&rrule::Tz::UTC);
        let before = until.with_timezone(&rrule::Tz::UTC);
        let found = set.after(after).before(before).all(MAX_OCCURRENCES);
        let gone = replaced.get(e.uid.as_str());
        let starts = found
            .dates
            .iter()
            .map(|d| d.with_timezone(&Utc))
            .chain(e.rdates.iter().copied());
        for s in starts {
            if e.exdates.contains(&s) || gone.is_some_and(|g| g.contains(&s)) {
                continue;
            }
            if touches(s, e.length) {
                out.push(Interval {
                    who: e.who.clone(),
                    start: Some(s),
                    end: Some(s + e.length),
                    layer: 0,
                });
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::oncall::now_and_next;

    const FIXTURE: &str = include_str!("../../tests/fixtures/oncall.ics");

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn who(now: &str) -> (Option<String>, Option<String>, Option<DateTime<Utc>>) {
        let t = at(now);
        let list = intervals(
            FIXTURE,
            chrono_tz::UTC,
            t - Duration::days(30),
            t + Duration::days(30),
        )
        .unwrap();
        let n = now_and_next(&list, t);
        (
            n.now.as_ref().map(|s| s.who.name.clone()),
            n.next.as_ref().map(|s| s.who.name.clone()),
            n.now.as_ref().and_then(|s| s.end),
        )
    }

    #[test]
    fn weekly_events_alternate_and_keep_local_time() {
        // Alice from Monday 2 Nov 2026 09:00 Berlin (08:00 UTC, winter time), Bob the next week.
        assert_eq!(
            who("2026-11-03T12:00:00Z"),
            (
                Some("Alice".into()),
                Some("Bob".into()),
                Some(at("2026-11-09T08:00:00Z"))
            )
        );
        // Bob's week is cut short by the one-off swap on Saturday.
        assert_eq!(
            who("2026-11-10T12:00:00Z"),
            (
                Some("Bob".into()),
                Some("Dave".into()),
                Some(at("2026-11-14T00:00:00Z"))
            )
        );
    }

    #[test]
    fn exdate_removes_an_occurrence_and_recurrence_id_replaces_one() {
        // Alice's week of 16 Nov is excluded: nobody from the series, Bob next on the 23rd.
        let (now, next, _) = who("2026-11-17T12:00:00Z");
        assert_eq!((now, next), (None, Some("Bob".into())));
        // Alice's week of 30 Nov is handed to Carol by a RECURRENCE-ID.
        let (now, next, _) = who("2026-11-29T12:00:00Z");
        assert_eq!((now, next), (Some("Bob".into()), Some("Carol".into())));
        assert_eq!(
            who("2026-11-30T12:00:00Z"),
            (
                Some("Carol".into()),
                Some("Bob".into()),
                Some(at("2026-12-07T08:00:00Z"))
            )
        );
        // The cancelled event never counts.
        assert_ne!(who("2026-11-17T12:00:00Z").0.as_deref(), Some("Eve"));
    }

    #[test]
    fn a_one_off_event_lies_over_the_rotation() {
        // Dave covers Saturday 14 Nov for Bob, mapped by his attendee email.
        let t = at("2026-11-14T12:00:00Z");
        let list = intervals(
            FIXTURE,
            chrono_tz::UTC,
            t - Duration::days(30),
            t + Duration::days(30),
        )
        .unwrap();
        let n = now_and_next(&list, t);
        let now = n.now.unwrap();
        assert_eq!(now.who.email.as_deref(), Some("dave@example.com"));
        assert_eq!(now.who.name, "Dave");
        assert_eq!(n.next.unwrap().who.name, "Bob");
    }

    #[test]
    fn durations_and_broken_calendars() {
        assert_eq!(duration("P1W"), Some(Duration::days(7)));
        assert_eq!(duration("P1DT12H"), Some(Duration::hours(36)));
        assert_eq!(duration("PT8H30M"), Some(Duration::minutes(510)));
        assert_eq!(duration("1 week"), None);
        let bad = "BEGIN:VCALENDAR\nBEGIN:VEVENT\nUID:x\nSUMMARY:A\nEND:VEVENT\nEND:VCALENDAR\n";
        let err = intervals(bad, chrono_tz::UTC, Utc::now(), Utc::now())
            .unwrap_err()
            .to_string();
        assert!(err.contains("event x: no DTSTART"), "{err}");
        let bad = "BEGIN:VCALENDAR\nBEGIN:VEVENT\nUID:y\nDTSTART;TZID=Mars/Olympus:20261102T090000\nEND:VEVENT\nEND:VCALENDAR\n";
        let err = intervals(bad, chrono_tz::UTC, Utc::now(), Utc::now())
            .unwrap_err()
            .to_string();
        assert!(err.contains("not an IANA time zone"), "{err}");
    }
}
