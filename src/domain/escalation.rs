//! Escalations as the timeline tells them: who was paged at which level, when, and who answered.

use super::{Actor, Event, EventKind, Incident, RuleError};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// One level of a ladder as it was paged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page {
    /// 1 for the first target paged.
    pub level: u32,
    pub target: String,
    /// The Discord roles the page mentioned, as configured at the time.
    pub roles: Vec<u64>,
    /// The people it mentioned: whoever the target's on-call schedule named.
    #[serde(default)]
    pub users: Vec<u64>,
    pub at: DateTime<Utc>,
    /// When this level's acknowledgement time ran out.
    pub timed_out: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acknowledgement {
    pub at: DateTime<Utc>,
    pub by: Actor,
}

/// One `/escalate` and the ladder it climbed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Escalation {
    pub number: u32,
    pub reason: String,
    pub by: Actor,
    pub started: DateTime<Utc>,
    pub pages: Vec<Page>,
    pub acknowledged: Option<Acknowledgement>,
    /// When resolving the incident stopped the ladder before anyone acknowledged.
    pub stopped: Option<DateTime<Utc>>,
}

impl Escalation {
    /// The level paged last.
    pub fn current(&self) -> Option<&Page> {
        self.pages.last()
    }

    /// Still waiting for someone, with a timer on the current level.
    pub fn is_running(&self) -> bool {
        self.acknowledged.is_none()
            && self.stopped.is_none()
            && self.current().is_some_and(|p| p.timed_out.is_none())
    }

    /// Every level timed out and nobody acknowledged.
    pub fn exhausted(&self) -> bool {
        self.acknowledged.is_none()
            && self.stopped.is_none()
            && self.current().is_some_and(|p| p.timed_out.is_some())
    }

    /// Time to acknowledge: from the first page to the acknowledgement.
    pub fn tta(&self) -> Option<Duration> {
        Some(self.acknowledged.as_ref()?.at - self.started)
    }

    /// Every role paged so far; holders of any of them may acknowledge.
    pub fn roles(&self) -> Vec<u64> {
        let mut out: Vec<u64> = Vec::new();
        for r in self.pages.iter().flat_map(|p| &p.roles) {
            if !out.contains(r) {
                out.push(*r);
            }
        }
        out
    }

    /// Whether someone holding `member_roles` was among those paged.
    pub fn paged(&self, member_roles: &[u64]) -> bool {
        self.roles().iter().any(|r| member_roles.contains(r))
    }

    /// Whether `user` was paged by name (as the person on call).
    pub fn paged_user(&self, user: u64) -> bool {
        self.pages.iter().any(|p| p.users.contains(&user))
    }

    /// The targets paged, in order, each once.
    pub fn targets(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for p in &self.pages {
            if !out.contains(&p.target.as_str()) {
                out.push(&p.target);
            }
        }
        out
    }
}

/// Every escalation of one incident, in the order they were made; part of the incident's fold.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Escalations(pub Vec<Escalation>);

impl Escalations {
    pub fn get(&self, number: u32) -> Option<&Escalation> {
        self.0.iter().find(|e| e.number == number)
    }

    fn get_mut(&mut self, number: u32) -> Option<&mut Escalation> {
        self.0.iter_mut().find(|e| e.number == number)
    }

    /// The number the next `/escalate` gets.
    pub fn next_number(&self) -> u32 {
        self.0.iter().map(|e| e.number).max().unwrap_or(0) + 1
    }

    pub fn running(&self) -> impl Iterator<Item = &Escalation> {
        self.0.iter().filter(|e| e.is_running())
    }

    pub fn iter(&self) -> impl Iterator<Item = &Escalation> {
        self.0.iter()
    }

    /// Folds one event in; events about other things leave it as it is.
    pub fn apply(&mut self, event: &Event) {
        match &event.kind {
            EventKind::Escalated {
                escalation,
                target,
                level,
                roles,
                reason,
                users,
            } => {
                let page = Page {
                    level: *level,
                    target: target.clone(),
                    roles: roles.clone(),
                    users: users.clone(),
                    at: event.at,
                    timed_out: None,
                };
                match self.get_mut(*escalation) {
                    Some(e) => e.pages.push(page),
                    None => self.0.push(Escalation {
                        number: *escalation,
                        reason: reason.clone(),
                        by: event.actor.clone(),
                        started: event.at,
                        pages: vec![page],
                        acknowledged: None,
                        stopped: None,
                    }),
                }
            }
            EventKind::EscalationTimedOut { escalation, level } => {
                if let Some(p) = self
                    .get_mut(*escalation)
                    .and_then(|e| e.pages.iter_mut().find(|p| p.level == *level))
                {
                    p.timed_out = Some(event.at);
                }
            }
            EventKind::EscalationAcknowledged { escalation } => {
                if let Some(e) = self.get_mut(*escalation) {
                    e.acknowledged = Some(Acknowledgement {
                        at: event.at,
                        by: event.actor.clone(),
                    });
                }
            }
            EventKind::Resolved { .. } => {
                for e in self.0.iter_mut().filter(|e| e.is_running()) {
                    e.stopped = Some(event.at);
                }
            }
            _ => {}
        }
    }
}

fn refuse(text: impl Into<String>) -> RuleError {
    RuleError::Escalation(text.into())
}

impl Incident {
    fn escalation_or_err(&self, number: u32) -> Result<&Escalation, RuleError> {
        self.escalations
            .get(number)
            .ok_or_else(|| refuse(format!("{} has no escalation #{number}", self.id)))
    }

    /// The first page of a new escalation to `target`, which must have roles or people to mention.
    pub fn decide_escalate(
        &self,
        target: &str,
        roles: &[u64],
        users: &[u64],
        reason: &str,
    ) -> Result<Vec<EventKind>, RuleError> {
        if !self.is_open() {
            return Err(RuleError::Resolved(self.id));
        }
        if roles.is_empty() && users.is_empty() {
            return Err(refuse(format!(
                "escalation target `{target}` has no roles configured, so there is nobody to page"
            )));
        }
        Ok(vec![EventKind::Escalated {
            escalation: self.escalations.next_number(),
            target: target.into(),
            level: 1,
            roles: roles.to_vec(),
            reason: super::incident::require_text("the reason", reason, MAX_REASON)?,
            users: users.to_vec(),
        }])
    }

    /// Acknowledges escalation `number`; once only, and not after the incident is resolved.
    pub fn decide_acknowledge(&self, number: u32) -> Result<Vec<EventKind>, RuleError> {
        let e = self.escalation_or_err(number)?;
        if let Some(ack) = &e.acknowledged {
            return Err(refuse(format!(
                "escalation #{number} of {} was already acknowledged by {}",
                self.id,
                ack.by.label()
            )));
        }
        if !self.is_open() {
            return Err(RuleError::Resolved(self.id));
        }
        Ok(vec![EventKind::EscalationAcknowledged {
            escalation: number,
        }])
    }

    /// `level` of escalation `number` went unacknowledged: it times out and, when the ladder has
    /// a `next` target, that target is paged as the next level. Refused when the ladder moved on
    /// meanwhile (acknowledged, stopped, or already past `level`), so that a late timer never pages.
    pub fn decide_next_level(
        &self,
        number: u32,
        level: u32,
        next: Option<(&str, &[u64], &[u64])>,
    ) -> Result<Vec<EventKind>, RuleError> {
        if !self.is_open() {
            return Err(RuleError::Resolved(self.id));
        }
        let e = self.escalation_or_err(number)?;
        if !e.is_running() || e.current().map(|p| p.level) != Some(level) {
            return Err(refuse(format!(
                "escalation #{number} of {} is no longer waiting at level {level}",
                self.id
            )));
        }
        let mut out = vec![EventKind::EscalationTimedOut {
            escalation: number,
            level,
        }];
        if let Some((target, roles, users)) = next {
            out.push(EventKind::Escalated {
                escalation: number,
                target: target.into(),
                level: level + 1,
                roles: roles.to_vec(),
                reason: e.reason.clone(),
                users: users.to_vec(),
            });
        }
        Ok(out)
    }
}

/// The longest reason an escalation carries; it is shown in the page and sent to PagerDuty.
pub const MAX_REASON: usize = 1000;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{IncidentId, Severity, UserRef};
    use chrono::TimeZone;

    fn t(min: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 21, 10, 0, 0).unwrap() + Duration::minutes(min)
    }

    fn opened() -> Incident {
        let ev = Event {
            at: t(0),
            actor: Actor::User(UserRef::new(1, "alice")),
            kind: EventKind::Opened {
                title: "DB down".into(),
                severity: Severity(1),
                summary: None,
                service: None,
                started: t(0),
                channel: Some(10),
                channel_name: None,
                drill: false,
                playbook: None,
            },
        };
        Incident::from_opened(IncidentId(1), &ev).unwrap()
    }

    fn apply(inc: &mut Incident, at: i64, actor: Actor, kinds: Vec<EventKind>) {
        for kind in kinds {
            inc.apply(&Event {
                at: t(at),
                actor: actor.clone(),
                kind,
            });
        }
    }

    fn alice() -> Actor {
        Actor::User(UserRef::new(1, "alice"))
    }

    #[test]
    fn a_ladder_climbs_until_acknowledged() {
        let mut inc = opened();
        let ev = inc
            .decide_escalate("dba", &[5, 6], &[], "replica lag")
            .unwrap();
        apply(&mut inc, 1, alice(), ev);
        let e = inc.escalations.get(1).unwrap();
        assert!(e.is_running());
        assert_eq!(e.current().unwrap().level, 1);
        assert_eq!(inc.escalations.next_number(), 2);

        let ev = inc
            .decide_next_level(1, 1, Some(("sre-lead", &[7], &[])))
            .unwrap();
        apply(&mut inc, 11, Actor::Scheduler, ev);
        assert!(
            inc.decide_next_level(1, 1, Some(("sre-lead", &[7], &[])))
                .is_err(),
            "a second timer for the same level pages nobody"
        );
        let e = inc.escalations.get(1).unwrap();
        assert_eq!(e.pages.len(), 2);
        assert_eq!(e.pages[0].timed_out, Some(t(11)));
        assert_eq!(e.roles(), [5, 6, 7]);
        assert!(e.paged(&[6]) && e.paged(&[7]) && !e.paged(&[8]));
        assert_eq!(e.targets(), ["dba", "sre-lead"]);

        let bob = Actor::User(UserRef::new(2, "bob"));
        let ev = inc.decide_acknowledge(1).unwrap();
        apply(&mut inc, 14, bob, ev);
        let e = inc.escalations.get(1).unwrap();
        assert!(!e.is_running() && !e.exhausted());
        assert_eq!(e.tta(), Some(Duration::minutes(13)));
        let err = inc.decide_acknowledge(1).unwrap_err().to_string();
        assert!(err.contains("already acknowledged by bob"), "{err}");
        assert!(inc.decide_next_level(1, 2, None).is_err());
        assert_eq!(inc.times.acknowledged, Some(t(14)));
    }

    #[test]
    fn the_last_level_exhausts_and_resolving_stops_the_rest() {
        let mut inc = opened();
        for target in ["dba", "net"] {
            let ev = inc.decide_escalate(target, &[5], &[], "why").unwrap();
            apply(&mut inc, 1, alice(), ev);
        }
        let ev = inc.decide_next_level(1, 1, None).unwrap();
        assert_eq!(ev.len(), 1, "no next level: only the timeout");
        apply(&mut inc, 11, Actor::Scheduler, ev);
        assert!(inc.escalations.get(1).unwrap().exhausted());
        assert_eq!(inc.escalations.running().count(), 1);

        let ev = inc.decide_resolve("fixed").unwrap();
        apply(&mut inc, 12, alice(), ev);
        let two = inc.escalations.get(2).unwrap();
        assert_eq!(two.stopped, Some(t(12)));
        assert!(!two.is_running());
        assert_eq!(inc.escalations.running().count(), 0);
        assert!(matches!(
            inc.decide_acknowledge(2),
            Err(RuleError::Resolved(_))
        ));
        assert!(matches!(
            inc.decide_escalate("dba", &[5], &[], "again"),
            Err(RuleError::Resolved(_))
        ));
    }

    #[test]
    fn bad_escalations_are_refused() {
        let inc = opened();
        let err = inc
            .decide_escalate("dba", &[], &[], "x")
            .unwrap_err()
            .to_string();
        assert!(err.contains("no roles configured"), "{err}");
        assert_eq!(
            inc.decide_escalate("dba", &[1], &[], "  "),
            Err(RuleError::Empty("the reason"))
        );
        assert!(inc.decide_acknowledge(3).is_err());
    }
}
