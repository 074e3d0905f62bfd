//! Escalation's timed jobs: a level's acknowledgement timer, and the stuck nudge.

use super::{cancel_timeout, nudge, resume_pages, timeout, to_chrono, wants_nudge};
use crate::app::App;
use crate::config::Config;
use crate::domain::{Event, EventKind, Incident};
use crate::jobs::{JobError, Kind};
use crate::store::{Job, JobChange, JobKind};
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;

/// Nobody acknowledged a level in time: page the next one, or tell the commander.
pub struct Timeout;

impl Kind for Timeout {
    fn tag(&self) -> &'static str {
        JobKind::EscalationTimeout {
            escalation: 0,
            level: 0,
            policy: None,
        }
        .tag()
    }

    /// An acknowledgement or a resolution stops ladders. The timers of new pages are set by the
    /// code that pages, which knows the ladder.
    fn plan(&self, _config: &Config, inc: &Incident, events: &[Event]) -> Vec<JobChange> {
        let mut out = Vec::new();
        for e in events {
            match &e.kind {
                EventKind::EscalationAcknowledged { escalation } => {
                    out.push(cancel_timeout(inc.id, *escalation))
                }
                EventKind::Resolved { .. } => out.extend(
                    inc.escalations
                        .iter()
                        .map(|x| cancel_timeout(inc.id, x.number)),
                ),
                _ => {}
            }
        }
        out
    }

    fn run<'a>(&'a self, app: &'a App, job: &'a Job) -> BoxFuture<'a, Result<(), JobError>> {
        Box::pin(timeout(app, job))
    }

    /// A page cut off by a stop goes out ahead of the next level.
    fn resume<'a>(&'a self, app: &'a App, before: DateTime<Utc>) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if let Err(e) = resume_pages(app, before).await {
                tracing::warn!(error = %e, "could not post the escalation pages left unsent before the restart");
            }
        })
    }
}

/// A SEV1/SEV2 still investigating after `[escalation] stuck_after`: suggest escalating.
pub struct StuckNudge;

impl Kind for StuckNudge {
    fn tag(&self) -> &'static str {
        JobKind::StuckNudge.tag()
    }

    /// Set when an incident starts (or restarts, or rises into a nudged severity)
    /// investigating, and dropped when that ends.
    fn plan(&self, config: &Config, inc: &Incident, events: &[Event]) -> Vec<JobChange> {
        let touches_nudge = |k: &EventKind| {
            matches!(
                k,
                EventKind::Opened { .. }
                    | EventKind::Reopened { .. }
                    | EventKind::SeverityChanged { .. }
                    | EventKind::StateChanged { .. }
                    | EventKind::Resolved { .. }
            )
        };
        let arms = |k: &EventKind| match k {
            EventKind::Opened { .. } | EventKind::Reopened { .. } => true,
            EventKind::SeverityChanged { from, .. } => !config.escalation.nudges(*from),
            _ => false,
        };
        if !events.iter().any(|e| touches_nudge(&e.kind)) {
            return Vec::new();
        }
        if !wants_nudge(config, inc) {
            return vec![JobChange::Cancel {
                incident: inc.id,
                kind: JobKind::StuckNudge,
            }];
        }
        match events.iter().find(|e| arms(&e.kind)).map(|e| e.at) {
            Some(at) => {
                let due = (inc.state_since + to_chrono(config.escalation.stuck_after.0)).max(at);
                vec![JobChange::Put(Job::new(inc.id, JobKind::StuckNudge, due))]
            }
            None => Vec::new(),
        }
    }

    fn run<'a>(&'a self, app: &'a App, job: &'a Job) -> BoxFuture<'a, Result<(), JobError>> {
        Box::pin(nudge(app, job))
    }
}
