//! The scheduled status update: on the incident's cadence, and a reminder to the commander when
//! the team has been quiet since the last one.

use super::{effective_cadence, incident_post, reminder_post, status_text, status_text_for};
use crate::app::App;
use crate::config::Config;
use crate::domain::{Actor, Event, EventKind, Incident};
use crate::jobs::{job_nonce, JobError, Kind};
use crate::message::Post;
use crate::store::{Job, JobChange, JobKind};
use futures::future::BoxFuture;

pub struct StatusUpdate;

/// Events after which the next status update is counted afresh.
fn restarts_cadence(kind: &EventKind) -> bool {
    matches!(
        kind,
        EventKind::Opened { .. }
            | EventKind::SeverityChanged { .. }
            | EventKind::CadenceChanged { .. }
            | EventKind::Resolved { .. }
            | EventKind::Reopened { .. }
            | EventKind::StatusPosted {
                automated: true,
                ..
            }
    )
}

impl Kind for StatusUpdate {
    fn tag(&self) -> &'static str {
        JobKind::StatusUpdate.tag()
    }

    /// The next update counts from the event that restarted the cadence: an interval from
    /// then, a cron schedule's next time after then. Other events leave the job alone.
    fn plan(&self, config: &Config, inc: &Incident, events: &[Event]) -> Vec<JobChange> {
        let Some(from) = events.iter().rev().find(|e| restarts_cadence(&e.kind)) else {
            return Vec::new();
        };
        let next = effective_cadence(config, inc)
            .filter(|_| inc.is_open())
            .and_then(|c| c.next_after(from.at));
        match next {
            Some(due) => vec![JobChange::Put(Job::new(inc.id, JobKind::StatusUpdate, due))],
            None => vec![JobChange::Cancel {
                incident: inc.id,
                kind: JobKind::StatusUpdate,
            }],
        }
    }

    fn run<'a>(&'a self, app: &'a App, job: &'a Job) -> BoxFuture<'a, Result<(), JobError>> {
        Box::pin(run(app, job))
    }

    /// The stakeholder channel's copy may share a digest message with other incidents' updates
    /// due at the same time.
    fn digests(&self) -> bool {
        true
    }
}

/// Records the status update (and, when the team has said nothing since the last one, the
/// reminder to the commander), queues their posts in the outbox and plans the next job, in
/// one transaction. The outbox sends them with this job's nonces.
async fn run(app: &App, job: &Job) -> Result<(), JobError> {
    let inc = app.store.incident(job.incident)?;
    let Some((inc, cadence)) = inc.and_then(|i| {
        let c = effective_cadence(&app.config, &i).filter(|_| i.is_open())?;
        Some((i, c))
    }) else {
        // Written before a resolve or by an older build: nothing wants it any more.
        app.store.apply_jobs(&[JobChange::Cancel {
            incident: job.incident,
            kind: job.kind.clone(),
        }])?;
        return Ok(());
    };
    let now = app.now();
    let next = cadence.next_after(now);
    let since = inc
        .last_status_post
        .or(inc.times.declared)
        .unwrap_or(job.due);
    let quiet = inc.quiet_since(since);

    let text = status_text(app, &inc, true, next)?;
    let update = incident_post(app, &inc, "Status update", text.clone());
    let remind = quiet.then_some(inc.channel).flatten();
    let mut sends = Vec::new();
    let with_nonce = |mut post: Post, part: char, channel: u64| {
        post.nonce = Some(job_nonce(job, part, channel));
        Box::new(post)
    };
    if let Some(channel) = inc.channel {
        sends.push(JobChange::Send {
            incident: inc.id,
            channel,
            post: with_nonce(update.clone(), 's', channel),
            due: now,
        });
    }
    if let Some(channel) = remind {
        let reminder = reminder_post(app, &inc, since, next)?;
        sends.push(JobChange::Send {
            incident: inc.id,
            channel,
            post: with_nonce(reminder, 'r', channel),
            due: now,
        });
    }
    if let Some(channel) = app.chat.stakeholder_channel() {
        let text = status_text_for(app, &inc, true, next, true)?;
        let update = incident_post(app, &inc, "Status update", text);
        sends.push(JobChange::SendInDigest {
            incident: inc.id,
            channel,
            post: with_nonce(update, 's', channel),
            due: now,
        });
    }

    let commander = inc.commander().cloned();
    app.record_with(
        inc.id,
        &Actor::Scheduler,
        now,
        |i| {
            let mut events = vec![EventKind::StatusPosted {
                automated: true,
                state: i.state,
                text: text.clone(),
            }];
            if remind.is_some() {
                events.push(EventKind::UpdateReminderSent {
                    commander: commander.clone(),
                });
            }
            Ok(events)
        },
        |_, _, _| sends.clone(),
    )?;
    app.store.flush().await?;
    Ok(())
}
