//! Keeps an incident's place labelled with its severity and state (a forum post's tags).

use super::{JobError, Kind};
use crate::app::App;
use crate::config::{Config, IncidentMode};
use crate::domain::{Event, EventKind, Incident};
use crate::store::{Job, JobChange, JobKind};
use futures::future::BoxFuture;

pub struct Labels;

impl Kind for Labels {
    fn tag(&self) -> &'static str {
        JobKind::Labels.tag()
    }

    fn plan(&self, config: &Config, inc: &Incident, events: &[Event]) -> Vec<JobChange> {
        plan(config, inc, events)
    }

    fn run<'a>(&'a self, app: &'a App, job: &'a Job) -> BoxFuture<'a, Result<(), JobError>> {
        Box::pin(run(app, job))
    }
}

/// Opening, a severity or state change, resolving and reopening relabel the place at once. Only
/// forum posts carry labels, so other modes plan nothing.
fn plan(config: &Config, inc: &Incident, events: &[Event]) -> Vec<JobChange> {
    if config.discord.incident_mode != IncidentMode::Forum {
        return Vec::new();
    }
    let relabel = events.iter().rev().find(|e| {
        matches!(
            e.kind,
            EventKind::Opened { .. }
                | EventKind::SeverityChanged { .. }
                | EventKind::StateChanged { .. }
                | EventKind::Resolved { .. }
                | EventKind::Reopened { .. }
        )
    });
    match relabel {
        Some(e) => vec![JobChange::Put(Job::new(inc.id, JobKind::Labels, e.at))],
        None => Vec::new(),
    }
}

/// Applies the incident's current severity and state, read when the job runs, so that a job
/// that waited through an outage still shows the latest.
async fn run(app: &App, job: &Job) -> Result<(), JobError> {
    if let Some(inc) = app.store.incident(job.incident)? {
        if let Some(channel) = inc.channel {
            let labels = [inc.severity.to_string(), inc.state.as_str().to_string()];
            app.chat
                .set_labels(channel, &labels)
                .await
                .map_err(|source| JobError::Chat { channel, source })?;
        }
    }
    // A change made while this ran planned a newer job, which must not be lost.
    app.store.finish_job(job)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Actor, IncidentId, Severity, State};
    use chrono::{TimeZone, Utc};

    #[test]
    fn only_forum_posts_are_relabelled_and_only_on_severity_or_state() {
        let at = Utc.with_ymd_and_hms(2026, 11, 21, 10, 0, 0).unwrap();
        let opened = Event {
            at,
            actor: Actor::Scheduler,
            kind: EventKind::Opened {
                title: "db".into(),
                severity: Severity(2),
                summary: None,
                service: None,
                started: at,
                channel: Some(5),
                channel_name: None,
                drill: false,
                playbook: None,
            },
        };
        let inc = Incident::from_opened(IncidentId(1), &opened).unwrap();
        let mut config = Config::default();
        assert!(plan(&config, &inc, std::slice::from_ref(&opened)).is_empty());
        config.discord.incident_mode = IncidentMode::Forum;
        let changes = plan(&config, &inc, std::slice::from_ref(&opened));
        assert_eq!(
            changes,
            vec![JobChange::Put(Job::new(IncidentId(1), JobKind::Labels, at))]
        );
        let state = Event {
            at,
            actor: Actor::Scheduler,
            kind: EventKind::StateChanged {
                from: State::Investigating,
                to: State::Identified,
            },
        };
        assert_eq!(plan(&config, &inc, &[state]).len(), 1);
        let note = Event {
            at,
            actor: Actor::Scheduler,
            kind: EventKind::NoteAdded { text: "x".into() },
        };
        assert!(plan(&config, &inc, &[note]).is_empty());
    }
}
