//! Incident statistics over a period: how many, how fast acknowledged, how fast resolved.
//!
//! Drills are left out: they measure practice, and counting them would flatter or skew the
//! numbers that matter.

use crate::domain::{human_duration, Incident, Severity};
use chrono::{DateTime, Duration, Utc};

/// The numbers for one severity, or for all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Figures {
    pub count: usize,
    pub resolved: usize,
    /// Mean time to acknowledge, over the incidents that were acknowledged.
    pub mtta: Option<Duration>,
    /// Mean time to resolve, over the resolved incidents.
    pub mttr: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stats {
    pub since: Option<DateTime<Utc>>,
    pub all: Figures,
    pub by_severity: Vec<(Severity, Figures)>,
    /// Drills declared in the period, left out of every figure.
    pub drills: usize,
}

fn mean(ds: impl Iterator<Item = Duration>) -> Option<Duration> {
    let (sum, n) = ds.fold((0i64, 0i64), |(s, n), d| (s + d.num_seconds(), n + 1));
    (n > 0).then(|| Duration::seconds(sum / n))
}

fn figures(incidents: &[&Incident]) -> Figures {
    Figures {
        count: incidents.len(),
        resolved: incidents.iter().filter(|i| !i.is_open()).count(),
        mtta: mean(incidents.iter().filter_map(|i| i.tta())),
        mttr: mean(
            incidents
                .iter()
                .filter(|i| !i.is_open())
                .filter_map(|i| i.ttr()),
        ),
    }
}

/// Incidents declared at or after `since` (all of them without it), drills excluded.
pub fn stats(incidents: &[Incident], since: Option<DateTime<Utc>>) -> Stats {
    let in_period: Vec<&Incident> = incidents
        .iter()
        .filter(|i| match (since, i.times.declared) {
            (Some(s), Some(d)) => d >= s,
            (Some(_), None) => false,
            (None, _) => true,
        })
        .collect();
    let (drills, real): (Vec<&Incident>, Vec<&Incident>) =
        in_period.into_iter().partition(|i| i.drill);
    let mut severities: Vec<Severity> = real.iter().map(|i| i.severity).collect();
    severities.sort();
    severities.dedup();
    let by_severity = severities
        .into_iter()
        .map(|s| {
            let of: Vec<&Incident> = real.iter().copied().filter(|i| i.severity == s).collect();
            (s, figures(&of))
        })
        .collect();
    Stats {
        since,
        all: figures(&real),
        by_severity,
        drills: drills.len(),
    }
}

fn or_dash(d: Option<Duration>) -> String {
    d.map_or_else(|| "—".to_string(), human_duration)
}

impl Stats {
    /// A chat message: the totals, then a table by severity.
    pub fn to_text(&self) -> String {
        let period = match self.since {
            Some(s) => format!("since {}", s.format("%Y-%m-%d %H:%M UTC")),
            None => "all time".into(),
        };
        let drills = match self.drills {
            0 => String::new(),
            1 => " · 1 drill left out".into(),
            n => format!(" · {n} drills left out"),
        };
        if self.all.count == 0 {
            return format!("**Incidents, {period}:** none{drills}.");
        }
        let a = &self.all;
        let mut s = format!(
            "**Incidents, {period}:** {} ({} resolved, {} open){drills}\n**MTTA** {} · **MTTR** {}\n```\nSeverity  Count  Resolved  MTTA      MTTR\n",
            a.count,
            a.resolved,
            a.count - a.resolved,
            or_dash(a.mtta),
            or_dash(a.mttr),
        );
        for (sev, f) in &self.by_severity {
            s.push_str(&format!(
                "{:<8}  {:>5}  {:>8}  {:<8}  {}\n",
                sev.to_string(),
                f.count,
                f.resolved,
                or_dash(f.mtta),
                or_dash(f.mttr)
            ));
        }
        s.push_str("```");
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Actor, Event, EventKind, IncidentId, UserRef};
    use chrono::TimeZone;

    fn t(min: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap() + Duration::minutes(min)
    }

    /// Declared at `at`, acknowledged after `ack` minutes, resolved after `res` (from start).
    fn incident(
        n: u64,
        sev: u8,
        at: i64,
        ack: Option<i64>,
        res: Option<i64>,
        drill: bool,
    ) -> Incident {
        let alice = Actor::User(UserRef::new(1, "alice"));
        let mut inc = Incident::from_opened(
            IncidentId(n),
            &Event {
                at: t(at),
                actor: alice.clone(),
                kind: EventKind::Opened {
                    title: "x".into(),
                    severity: Severity(sev),
                    summary: None,
                    service: None,
                    started: t(at),
                    channel: None,
                    channel_name: None,
                    drill,
                    playbook: None,
                },
            },
        )
        .unwrap();
        if let Some(a) = ack {
            inc.apply(&Event {
                at: t(at + a),
                actor: alice.clone(),
                kind: EventKind::NoteAdded {
                    text: "on it".into(),
                },
            });
        }
        if let Some(r) = res {
            inc.apply(&Event {
                at: t(at + r),
                actor: alice.clone(),
                kind: EventKind::Resolved {
                    summary: "fixed".into(),
                },
            });
        }
        inc
    }

    #[test]
    fn postmortem_stats_leave_drills_out_and_average_by_severity() {
        let all = [
            incident(1, 1, 0, Some(2), Some(60), false),
            incident(2, 1, 100, Some(4), Some(120), false),
            incident(3, 2, 200, Some(10), None, false),
            incident(4, 1, 300, Some(1), Some(5), true),
            incident(5, 3, -500, Some(1), Some(5), false),
        ];
        let s = stats(&all, Some(t(0)));
        assert_eq!(s.drills, 1);
        assert_eq!(s.all.count, 3);
        assert_eq!(s.all.resolved, 2);
        assert_eq!(s.all.mtta, Some(Duration::seconds((2 + 4 + 10) * 60 / 3)));
        assert_eq!(s.all.mttr, Some(Duration::minutes(90)));
        assert_eq!(s.by_severity.len(), 2);
        assert_eq!(s.by_severity[0].0, Severity(1));
        assert_eq!(s.by_severity[0].1.mtta, Some(Duration::minutes(3)));
        assert_eq!(s.by_severity[1].1.mttr, None, "SEV2 is still open");
        let text = s.to_text();
        assert!(
            text.contains("3 (2 resolved, 1 open) · 1 drill left out"),
            "{text}"
        );
        assert!(text.contains("**MTTA** 5m · **MTTR** 1h 30m"), "{text}");
        assert!(
            text.contains("SEV1          2         2  3m        1h 30m"),
            "{text}"
        );
        assert_eq!(stats(&all, None).all.count, 4);
        assert_eq!(
            stats(&all, Some(t(1000))).to_text(),
            "**Incidents, since 2026-11-01 16:40 UTC:** none."
        );
    }
}
