//! Who is on call: shifts from any source laid over each other, and a rotation's shifts.

use chrono::{DateTime, Duration, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// Someone a source names as on call; mapped to a chat user by name or email.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Person {
    pub name: String,
    #[serde(default)]
    pub email: Option<String>,
}

impl Person {
    pub fn named(name: impl Into<String>) -> Person {
        Person {
            name: name.into(),
            email: None,
        }
    }
}

/// One stretch of time a source puts someone on call. `None` bounds are open (PagerDuty's
/// "always on call").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interval {
    pub who: Person,
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
    /// Higher layers win where they overlap lower ones: an override over the rotation, a
    /// one-off calendar event over a recurring one.
    pub layer: u8,
}

impl Interval {
    fn covers(&self, t: DateTime<Utc>) -> bool {
        self.start.map_or(true, |s| s <= t) && self.end.map_or(true, |e| t < e)
    }

    /// Ordering for "who wins": the higher layer, then the one that began later.
    fn rank(&self) -> (u8, Option<DateTime<Utc>>) {
        (self.layer, self.start)
    }
}

/// A stretch of time with one person on call, as the answer shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shift {
    pub who: Person,
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
}

/// Who is on call at a moment and who takes over at the hand-off.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct NowAndNext {
    pub now: Option<Shift>,
    pub next: Option<Shift>,
}

/// The shift covering `t`: the winning interval there, cut short where another interval that
/// would win starts before it ends.
fn shift_at(intervals: &[Interval], t: DateTime<Utc>) -> Option<Shift> {
    let chosen = intervals
        .iter()
        .filter(|i| i.covers(t))
        .max_by_key(|i| i.rank())?;
    let taken_over = intervals
        .iter()
        .filter(|i| i.layer >= chosen.layer)
        .filter_map(|i| i.start)
        .filter(|s| *s > t && chosen.end.map_or(true, |e| *s < e))
        .min();
    // Where it began, as far as this person is concerned: a lower layer shift resumed after an
    // override began when the override ended.
    let resumed = intervals
        .iter()
        .filter(|i| i.rank() > chosen.rank())
        .filter_map(|i| i.end)
        .filter(|e| *e <= t && chosen.start.map_or(true, |s| *e > s))
        .max();
    Some(Shift {
        who: chosen.who.clone(),
        start: resumed.or(chosen.start),
        end: taken_over.or(chosen.end),
    })
}

/// Who is on call at `now` and who is next. Consecutive shifts of the same person are one
/// shift; "next" is the first different person (or the first shift, when nobody is on now).
pub fn now_and_next(intervals: &[Interval], now: DateTime<Utc>) -> NowAndNext {
    let current = shift_at(intervals, now).map(|s| extend(intervals, s));
    let mut from = match &current {
        Some(s) => s.end,
        None => Some(now),
    };
    let mut next = None;
    // A gap after the current shift: the next is whoever starts first after it.
    for _ in 0..64 {
        let Some(t) = from else { break };
        let candidate = shift_at(intervals, t).or_else(|| {
            let start = intervals
                .iter()
                .filter_map(|i| i.start)
                .filter(|s| *s > t)
                .min()?;
            shift_at(intervals, start)
        });
        let Some(c) = candidate else { break };
        let c = extend(intervals, c);
        if current.as_ref().is_some_and(|cur| cur.who == c.who) {
            from = c.end;
            continue;
        }
        next = Some(c);
        break;
    }
    NowAndNext { now: current, next }
}

/// An answer read earlier, as it stands at `t`: once the shift it called "now" has ended, the
/// one it called "next" is on (and what follows is unknown). For answering from the last
/// known answer while a source cannot be read.
pub fn as_at(known: &NowAndNext, t: DateTime<Utc>) -> NowAndNext {
    let ended = |s: &Shift| s.end.is_some_and(|e| e <= t);
    let begun = |s: &Shift| s.start.map_or(true, |b| b <= t);
    match (&known.now, &known.next) {
        (Some(now), _) if !ended(now) => known.clone(),
        (None, Some(next)) if !begun(next) => known.clone(),
        (_, Some(next)) if begun(next) && !ended(next) => NowAndNext {
            now: Some(next.clone()),
            next: None,
        },
        (_, next) => NowAndNext {
            now: None,
            next: next.clone().filter(|n| !begun(n)),
        },
    }
}

/// `shift` with the shifts of the same person that follow it without a gap.
fn extend(intervals: &[Interval], mut shift: Shift) -> Shift {
    for _ in 0..64 {
        let Some(end) = shift.end else { break };
        match shift_at(intervals, end) {
            Some(after) if after.who == shift.who => shift.end = after.end,
            _ => break,
        }
    }
    shift
}

/// A rotation written in config: members take turns of `length`, the first turn starting at
/// `first` (local time in `tz`); each override puts someone on call from one local time to
/// another.
#[derive(Debug, Clone, PartialEq)]
pub struct Rotation {
    pub members: Vec<String>,
    pub tz: Tz,
    pub first: NaiveDateTime,
    pub length: Duration,
    pub overrides: Vec<(String, NaiveDateTime, NaiveDateTime)>,
}

/// A local time as an instant. Turns are counted in wall-clock time, so a weekly hand-off
/// stays at 09:00 across a daylight-saving change; a time that does not exist that day (the
/// hour skipped in spring) hands off when the clocks have gone forward, and a time that
/// happens twice hands off the first time.
pub fn local(tz: Tz, t: NaiveDateTime) -> DateTime<Utc> {
    let mut probe = t;
    for _ in 0..4 {
        if let Some(d) = tz.from_local_datetime(&probe).earliest() {
            return d.with_timezone(&Utc);
        }
        probe += Duration::minutes(30);
    }
    Utc.from_utc_datetime(&t)
}

impl Rotation {
    /// The start of turn `k` (0 is the first).
    fn turn_start(&self, k: i64) -> DateTime<Utc> {
        local(self.tz, self.first + self.length * k as i32)
    }

    /// The turn `t` falls in; negative before the rotation begins.
    fn turn_at(&self, t: DateTime<Utc>) -> i64 {
        let naive = t.with_timezone(&self.tz).naive_local();
        let len = self.length.num_seconds().max(1);
        let mut k = (naive - self.first).num_seconds().div_euclid(len);
        while self.turn_start(k + 1) <= t {
            k += 1;
        }
        while self.turn_start(k) > t {
            k -= 1;
        }
        k
    }

    /// Every turn and override touching `[from, until)`, as intervals to lay over each other.
    pub fn intervals(&self, from: DateTime<Utc>, until: DateTime<Utc>) -> Vec<Interval> {
        let mut out = Vec::new();
        if !self.members.is_empty() {
            let n = self.members.len() as i64;
            let mut k = self.turn_at(from).max(0);
            while self.turn_start(k) < until && out.len() < 10_000 {
                out.push(Interval {
                    who: Person::named(&self.members[k.rem_euclid(n) as usize]),
                    start: Some(self.turn_start(k)),
                    end: Some(self.turn_start(k + 1)),
                    layer: 0,
                });
                k += 1;
            }
        }
        for (who, start, end) in &self.overrides {
            let (start, end) = (local(self.tz, *start), local(self.tz, *end));
            if start < until && end > from {
                out.push(Interval {
                    who: Person::named(who),
                    start: Some(start),
                    end: Some(end),
                    layer: 1,
                });
            }
        }
        out
    }

    /// Who is on call at `now` and next.
    pub fn now_and_next(&self, now: DateTime<Utc>) -> NowAndNext {
        // Enough turns ahead to find a different person even when some turns are overridden.
        let ahead = self.length * (self.members.len() as i32 + 2);
        let horizon = ahead.max(Duration::days(1));
        let latest_override = self
            .overrides
            .iter()
            .map(|(_, _, e)| local(self.tz, *e))
            .max()
            .unwrap_or(now);
        let until = (now + horizon).max(latest_override + self.length);
        now_and_next(&self.intervals(now - self.length, until), now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn naive(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap()
    }

    fn weekly(overrides: Vec<(String, NaiveDateTime, NaiveDateTime)>) -> Rotation {
        Rotation {
            members: vec!["alice".into(), "bob".into(), "carol".into()],
            tz: chrono_tz::Europe::Berlin,
            // A Monday.
            first: NaiveDate::from_ymd_opt(2026, 10, 5)
                .unwrap()
                .and_hms_opt(9, 0, 0)
                .unwrap(),
            length: Duration::days(7),
            overrides,
        }
    }

    fn names(n: &NowAndNext) -> (Option<&str>, Option<&str>) {
        (
            n.now.as_ref().map(|s| s.who.name.as_str()),
            n.next.as_ref().map(|s| s.who.name.as_str()),
        )
    }

    #[test]
    fn a_weekly_rotation_takes_turns_at_the_handoff() {
        let r = weekly(vec![]);
        // Monday 5 Oct 2026, 09:00 in Berlin is 07:00 UTC (summer time).
        let n = r.now_and_next(at("2026-10-05T07:00:00Z"));
        assert_eq!(names(&n), (Some("alice"), Some("bob")));
        assert_eq!(
            n.now.as_ref().unwrap().start,
            Some(at("2026-10-05T07:00:00Z"))
        );
        assert_eq!(
            n.now.as_ref().unwrap().end,
            Some(at("2026-10-12T07:00:00Z"))
        );
        let n = r.now_and_next(at("2026-10-12T06:59:59Z"));
        assert_eq!(names(&n), (Some("alice"), Some("bob")));
        let n = r.now_and_next(at("2026-10-19T07:00:00Z"));
        assert_eq!(names(&n), (Some("carol"), Some("alice")));
        // Around the cycle again.
        let n = r.now_and_next(at("2026-10-26T12:00:00Z"));
        assert_eq!(names(&n), (Some("alice"), Some("bob")));
    }

    #[test]
    fn handoffs_keep_wall_clock_time_across_daylight_saving() {
        let r = weekly(vec![]);
        // Summer time ends on Sunday 25 Oct 2026: Monday 26 Oct 09:00 is 08:00 UTC, not 07:00.
        let n = r.now_and_next(at("2026-10-20T12:00:00Z"));
        assert_eq!(
            n.now.as_ref().unwrap().end,
            Some(at("2026-10-26T08:00:00Z"))
        );
        let n = r.now_and_next(at("2026-10-26T07:30:00Z"));
        assert_eq!(names(&n), (Some("carol"), Some("alice")));
        // And spring: 29 Mar 2027 09:00 CEST is 07:00 UTC again.
        let later = r.now_and_next(at("2027-03-24T12:00:00Z"));
        assert_eq!(
            later.now.as_ref().unwrap().end,
            Some(at("2027-03-29T07:00:00Z"))
        );
        // A hand-off in the skipped hour happens when the clocks have gone forward.
        assert_eq!(
            local(chrono_tz::Europe::Berlin, naive("2027-03-28 02:30")),
            at("2027-03-28T01:00:00Z")
        );
        // One in the hour that happens twice happens the first time.
        assert_eq!(
            local(chrono_tz::Europe::Berlin, naive("2026-10-25 02:30")),
            at("2026-10-25T00:30:00Z")
        );
    }

    #[test]
    fn before_the_first_turn_nobody_is_on_but_the_first_is_next() {
        let n = weekly(vec![]).now_and_next(at("2026-10-01T00:00:00Z"));
        assert_eq!(names(&n), (None, Some("alice")));
        assert_eq!(n.next.unwrap().start, Some(at("2026-10-05T07:00:00Z")));
    }

    #[test]
    fn overrides_win_and_the_rotation_resumes_after() {
        let r = weekly(vec![(
            "dave".into(),
            naive("2026-10-07 18:00"),
            naive("2026-10-08 09:00"),
        )]);
        let n = r.now_and_next(at("2026-10-06T12:00:00Z"));
        assert_eq!(names(&n), (Some("alice"), Some("dave")));
        assert_eq!(
            n.now.as_ref().unwrap().end,
            Some(at("2026-10-07T16:00:00Z"))
        );
        let n = r.now_and_next(at("2026-10-07T20:00:00Z"));
        assert_eq!(names(&n), (Some("dave"), Some("alice")));
        assert_eq!(
            n.next.as_ref().unwrap().start,
            Some(at("2026-10-08T07:00:00Z"))
        );
        assert_eq!(
            n.next.as_ref().unwrap().end,
            Some(at("2026-10-12T07:00:00Z"))
        );
        let n = r.now_and_next(at("2026-10-09T07:00:00Z"));
        assert_eq!(names(&n), (Some("alice"), Some("bob")));
        assert_eq!(
            n.now.as_ref().unwrap().start,
            Some(at("2026-10-08T07:00:00Z"))
        );
    }

    #[test]
    fn an_override_across_a_handoff_holds_on_both_sides() {
        // Dave covers from Sunday to Tuesday, across alice's hand-off to bob.
        let r = weekly(vec![(
            "dave".into(),
            naive("2026-10-11 09:00"),
            naive("2026-10-13 09:00"),
        )]);
        let n = r.now_and_next(at("2026-10-12T12:00:00Z"));
        assert_eq!(names(&n), (Some("dave"), Some("bob")));
        assert_eq!(
            n.next.as_ref().unwrap().start,
            Some(at("2026-10-13T07:00:00Z"))
        );
    }

    #[test]
    fn the_same_person_twice_in_a_row_is_one_shift() {
        // An override for bob right before bob's own turn.
        let r = weekly(vec![(
            "bob".into(),
            naive("2026-10-10 09:00"),
            naive("2026-10-12 09:00"),
        )]);
        let n = r.now_and_next(at("2026-10-10T12:00:00Z"));
        assert_eq!(names(&n), (Some("bob"), Some("carol")));
        assert_eq!(
            n.now.as_ref().unwrap().end,
            Some(at("2026-10-19T07:00:00Z"))
        );
    }

    #[test]
    fn a_known_answer_moves_on_at_its_handoff() {
        let r = weekly(vec![]);
        let known = r.now_and_next(at("2026-10-06T12:00:00Z"));
        assert_eq!(as_at(&known, at("2026-10-07T12:00:00Z")), known);
        let later = as_at(&known, at("2026-10-13T12:00:00Z"));
        assert_eq!(names(&later), (Some("bob"), None));
        let much_later = as_at(&known, at("2026-10-30T12:00:00Z"));
        assert_eq!(much_later, NowAndNext::default());
    }

    #[test]
    fn open_ended_intervals_are_always_on_call() {
        let always = Interval {
            who: Person::named("ops"),
            start: None,
            end: None,
            layer: 0,
        };
        let n = now_and_next(&[always], at("2026-10-10T12:00:00Z"));
        assert_eq!(names(&n), (Some("ops"), None));
        assert_eq!(
            now_and_next(&[], at("2026-10-10T12:00:00Z")),
            NowAndNext::default()
        );
    }
}
