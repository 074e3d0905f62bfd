//! The one task that owns timed work: it sleeps until the earliest job in the store is due.
//!
//! Jobs live in the store's `jobs` tree, written in the same transaction as the event that caused
//! them (see [`crate::app::App::record`]), so they survive restarts. What each job does is its
//! kind's ([`crate::jobs::Kind`], registered in [`crate::kinds::KINDS`]); the scheduler knows no
//! kind by name. After downtime an overdue job fires once and the next one counts from then,
//! never once per missed tick. Time comes from `App::clock`, and the sleeping is tokio's, so
//! tests run on tokio's paused clock.
//!
//! The same task empties the [`outbox`]: the posts commands queued with their events.

pub mod outbox;

use crate::app::App;
use crate::domain::Backoff;
use crate::jobs::JobError;
use crate::store::{Job, JobKind, StoreError};
use chrono::{DateTime, Utc};
use std::future::Future;
use std::time::Duration;
use tokio::task::JoinHandle;

/// A failed job is retried after 30 s, then twice as long each time, up to 15 minutes.
const RETRY: Backoff = Backoff::new(Duration::from_secs(30), Duration::from_secs(15 * 60));
/// How long to wait before looking again when the store itself fails.
const STORE_PAUSE: Duration = Duration::from_secs(30);

pub struct Scheduler {
    app: App,
    /// When this scheduler was made: what was recorded before it belongs to an earlier run.
    started: DateTime<Utc>,
}

impl Scheduler {
    pub fn new(app: App) -> Scheduler {
        let started = app.now();
        Scheduler { app, started }
    }

    /// Runs the scheduler on its own task until `shutdown` completes.
    pub fn spawn(app: App, shutdown: impl Future<Output = ()> + Send + 'static) -> JoinHandle<()> {
        tokio::spawn(Scheduler::new(app).run(shutdown))
    }

    /// Fires what is due, sleeps until the next job or until the jobs change, and again, until
    /// `shutdown` completes. A post cut off by shutdown is safe: the job is still in the store
    /// and its nonce stops a second copy.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        // Before any timer fires, so that what a crash cut off goes out ahead of what follows it.
        for kind in crate::kinds::KINDS {
            kind.resume(&self.app, self.started).await;
        }
        for kind in crate::kinds::KINDS {
            let changes = kind.start(&self.app);
            if let Err(e) = self.app.store.apply_jobs(&changes) {
                tracing::error!(job = kind.tag(), error = %e, "could not plan a kind's own jobs at start");
            }
        }
        loop {
            let next = tokio::select! {
                _ = &mut shutdown => return,
                next = self.fire_due() => next,
            };
            let wait = match next {
                Ok(Some(at)) => Some((at - self.app.now()).to_std().unwrap_or_default()),
                Ok(None) => None,
                Err(e) => {
                    tracing::error!(error = %e, "scheduler cannot read or write its jobs; trying again shortly");
                    Some(STORE_PAUSE)
                }
            };
            let sleep = async {
                match wait {
                    Some(d) => tokio::time::sleep(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = &mut shutdown => return,
                _ = self.app.store.jobs_changed() => {}
                _ = sleep => {}
            }
        }
    }

    /// Fires every job due by now, in the order they came due, and returns when the next job is
    /// due. A job that fails is retried later with backoff; only a failing store is an error.
    /// The outbox goes before and after the round. A pass can wait seconds on a busy channel's
    /// limit, so it does not run between the jobs; the jobs only queue their posts, and a
    /// digest waits for the whole round's.
    pub async fn fire_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let due = self.app.store.jobs_due(self.app.now())?;
        let digests = due
            .iter()
            .any(|j| crate::kinds::of(&j.kind).is_some_and(|k| k.digests()));
        self.deliver(digests).await?;
        for job in &due {
            // Earlier jobs of this round may have taken a while; a command may have moved or
            // cancelled this one meanwhile, and then that decision stands.
            if self.app.store.job(job.incident, &job.kind)?.as_ref() != Some(job) {
                continue;
            }
            self.ran(job);
            if let Err(e) = self.fire(job).await {
                let delay = RETRY.after(job.attempts);
                tracing::warn!(
                    incident = %job.incident,
                    job = job.kind.tag(),
                    due = %job.due,
                    attempt = job.attempts + 1,
                    retry_in = ?delay,
                    error = %e,
                    "scheduled job failed; it will be retried"
                );
                let at = self.app.now() + chrono::Duration::from_std(delay).unwrap_or_default();
                self.app.store.retry_job(job, at)?;
            }
        }
        let outbox_next = self.deliver(false).await?;
        let timed = self.app.store.next_job()?.map(|j| j.runs_at());
        Ok(match (timed, outbox_next) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        })
    }

    /// Counts how late `job` runs, in the scheduler's lag histogram.
    fn ran(&self, job: &Job) {
        let late = (self.app.now() - job.runs_at())
            .to_std()
            .unwrap_or_default();
        let kind = crate::kinds::of(&job.kind).map_or("post", |k| k.tag());
        self.app.telemetry.job_ran(kind, late);
    }

    async fn fire(&self, job: &Job) -> Result<(), JobError> {
        if let JobKind::Post { .. } = job.kind {
            return self.send_post(job, None).await;
        }
        match crate::kinds::of(&job.kind) {
            Some(kind) => kind.run(&self.app, job).await,
            // Every other stored kind is registered, as a test checks; should one go missing, its
            // job is dropped rather than retried for ever.
            None => {
                tracing::warn!(incident = %job.incident, job = job.kind.tag(), "no kind runs this job; dropping it");
                self.app.store.finish_job(job)?;
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests;
