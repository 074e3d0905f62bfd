//! The timed job that keeps each schedule's `role_id` with whoever is on call: one house job
//! per schedule, due at its next hand-off (or sooner, for sources that change at any time).

use super::roles::{sync, SyncError};
use crate::app::App;
use crate::config::Config;
use crate::domain::{Event, Incident, IncidentId};
use crate::jobs::{JobError, Kind};
use crate::store::{Job, JobChange, JobKind};
use futures::future::BoxFuture;
use serde_json::Value;

pub const TAG: &str = "oncall_role";

pub struct RoleSync;

/// The slot of schedule `name`'s role job, due at `due`.
fn job(name: &str, due: chrono::DateTime<chrono::Utc>) -> Job {
    Job::new(
        IncidentId::HOUSE,
        JobKind::keyed(TAG, name, Value::Null),
        due,
    )
}

impl Kind for RoleSync {
    fn tag(&self) -> &'static str {
        TAG
    }

    /// Hand-offs follow the clock, not an incident's events.
    fn plan(&self, _config: &Config, _inc: &Incident, _events: &[Event]) -> Vec<JobChange> {
        Vec::new()
    }

    fn run<'a>(&'a self, app: &'a App, job: &'a Job) -> BoxFuture<'a, Result<(), JobError>> {
        Box::pin(run(app, job))
    }

    /// Every schedule with a role is looked at once at start (the role may have moved while the
    /// bot was away), then at each hand-off.
    fn start(&self, app: &App) -> Vec<JobChange> {
        let now = app.now();
        app.config
            .oncall
            .iter()
            .filter(|(_, s)| s.role_id.is_some())
            .map(|(name, _)| JobChange::Put(job(name, now)))
            .collect()
    }
}

async fn run(app: &App, j: &Job) -> Result<(), JobError> {
    let JobKind::Keyed { key: name, .. } = &j.kind else {
        app.store.finish_job(j)?;
        return Ok(());
    };
    match sync(app, name).await {
        Ok(s) => {
            // The next look replaces this job in its slot.
            app.store
                .apply_jobs(&[JobChange::Put(job(name, s.next_check))])?;
            Ok(())
        }
        // The schedule or its role left the config: nothing to keep in step any more.
        Err(SyncError::NoRole(_)) | Err(SyncError::OnCall(super::OnCallError::Unknown(..))) => {
            app.store.finish_job(j)?;
            Ok(())
        }
        Err(SyncError::Chat(source)) => Err(JobError::Chat { channel: 0, source }),
        Err(SyncError::OnCall(super::OnCallError::Store(e))) => Err(e.into()),
        // A source that never answered: try again soon, as the scheduler retries.
        Err(e) => {
            tracing::warn!(schedule = %name, error = %e, "the on-call role cannot be kept in step yet");
            app.store
                .retry_job(j, app.now() + chrono::Duration::minutes(5))?;
            Ok(())
        }
    }
}
