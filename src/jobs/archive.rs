//! A resolved incident's channel is archived after `[discord] archive_after`.

use super::{JobError, Kind};
use crate::app::App;
use crate::config::Config;
use crate::domain::{Event, EventKind, Incident};
use crate::store::{Job, JobChange, JobKind};
use futures::future::BoxFuture;

pub struct Archive;

impl Kind for Archive {
    fn tag(&self) -> &'static str {
        JobKind::Archive.tag()
    }

    /// Resolving schedules the channel's archival; reopening takes it back.
    fn plan(&self, config: &Config, inc: &Incident, events: &[Event]) -> Vec<JobChange> {
        let Some(after) = config.discord.archive_after else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for e in events {
            match e.kind {
                EventKind::Resolved { .. } => {
                    let due = e.at + chrono::Duration::from_std(after.0).unwrap_or_default();
                    out.push(JobChange::Put(Job::new(inc.id, JobKind::Archive, due)));
                }
                EventKind::Reopened { .. } => out.push(JobChange::Cancel {
                    incident: inc.id,
                    kind: JobKind::Archive,
                }),
                _ => {}
            }
        }
        out
    }

    fn run<'a>(&'a self, app: &'a App, job: &'a Job) -> BoxFuture<'a, Result<(), JobError>> {
        Box::pin(run(app, job))
    }
}

/// Archives a still-resolved incident's channel, then forgets the job.
async fn run(app: &App, job: &Job) -> Result<(), JobError> {
    if let Some(inc) = app.store.incident(job.incident)? {
        if let (false, Some(channel)) = (inc.is_open(), inc.channel) {
            app.chat
                .archive(channel)
                .await
                .map_err(|source| JobError::Chat { channel, source })?;
            tracing::info!(incident = %inc.id, channel, "archived the incident's channel");
        }
    }
    app.store.apply_jobs(&[JobChange::Cancel {
        incident: job.incident,
        kind: JobKind::Archive,
    }])?;
    Ok(())
}
