//! The one task that owns timed work: it sleeps until the earliest job in the store is due.
//!
//! Jobs live in the store's `jobs` tree, written in the same transaction as the event that caused
//! them (see [`plan`]), so they survive restarts. After downtime an overdue job fires once and
//! the next one counts from then, never once per missed tick. Time comes from `App::clock`, and
//! the sleeping is tokio's, so tests run on tokio's paused clock.
//!
//! The same task empties the [`outbox`]: the posts commands queued with their events.

mod labels;
pub mod outbox;
pub mod status;

use crate::app::App;
use crate::chat::ChatError;
use crate::config::Config;
use crate::domain::{Actor, Cadence, Event, EventKind, Incident};
use crate::message::Post;
use crate::render::TemplateError;
use crate::store::{AppendError, Job, JobChange, JobKind, StoreError};
use chrono::{DateTime, Utc};
use std::future::Future;
use std::time::Duration;
use tokio::task::JoinHandle;

/// The first retry of a failed job waits this long; each next one twice as long, up to the cap.
const RETRY_FIRST: Duration = Duration::from_secs(30);
const RETRY_MAX: Duration = Duration::from_secs(15 * 60);
/// How long to wait before looking again when the store itself fails.
const STORE_PAUSE: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
enum JobError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Append(#[from] AppendError),
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error("posting to channel {channel}: {source}")]
    Chat { channel: u64, source: ChatError },
    #[error(transparent)]
    Escalation(#[from] crate::escalation::JobFailed),
}

/// The cadence an incident's updates follow now: its own, else its severity's; `None` for none.
pub fn effective_cadence(config: &Config, inc: &Incident) -> Option<Cadence> {
    inc.cadence
        .clone()
        .or_else(|| config.default_cadence(inc.severity))
        .filter(|c| *c != Cadence::Off)
}

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

/// Every job change that `events`, just folded into `inc`, call for: the status update's
/// ([`status_plan`]) and the escalations' ([`crate::escalation::plan`]). Pass it to
/// [`crate::store::Store::append_with_jobs`] so that they are written with the events.
pub fn plan(config: &Config, inc: &Incident, events: &[Event]) -> Vec<JobChange> {
    let mut changes = status_plan(config, inc, events);
    changes.extend(crate::escalation::plan(config, inc, events));
    changes.extend(archive_plan(config, inc, events));
    changes.extend(labels::plan(config, inc, events));
    changes
}

/// Resolving schedules the channel's archival; reopening takes it back.
pub fn archive_plan(config: &Config, inc: &Incident, events: &[Event]) -> Vec<JobChange> {
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

/// The job changes that `events`, just folded into `inc`, call for. Pass it to
/// [`crate::store::Store::append_with_jobs`] so that they are written with the events. The next
/// update counts from the event that restarted the cadence: an interval from then, a cron
/// schedule's next time after then. Other events leave the job alone.
pub fn status_plan(config: &Config, inc: &Incident, events: &[Event]) -> Vec<JobChange> {
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

/// A nonce for one post of `job` to `channel`, the same every time the job runs, so that Discord
/// (with `enforce_nonce`) drops a second send after a crash between sending and recording.
/// `part` tells apart two posts of one job to one channel. Discord allows 25 characters; this is 17.
pub fn nonce(job: &Job, part: char, channel: u64) -> String {
    let mut h = crate::domain::StableHash::default();
    h.feed(&job.incident.0.to_be_bytes())
        .feed(job.kind.tag().as_bytes())
        .feed(&job.due.timestamp_millis().to_be_bytes())
        .feed(&channel.to_be_bytes());
    // Posts queued in one millisecond differ only in their number. Other kinds leave it out, so
    // that their nonces stay what they were before the outbox.
    if let JobKind::Post { seq, .. } = &job.kind {
        h.feed(&seq.to_be_bytes());
    }
    let mut tag = [0u8; 4];
    let h = h.feed(part.encode_utf8(&mut tag).as_bytes()).finish();
    format!("{part}{h:016x}")
}

fn backoff(attempts: u32) -> Duration {
    RETRY_FIRST
        .saturating_mul(2u32.saturating_pow(attempts))
        .min(RETRY_MAX)
}

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
        // Before any timer fires, so that a page cut off by a crash goes out ahead of the next level.
        if let Err(e) = crate::escalation::resume_pages(&self.app, self.started).await {
            tracing::warn!(error = %e, "could not post the escalation pages left unsent before the restart");
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
    /// limit, so it does not run between the jobs; the status updates only queue their posts,
    /// and the stakeholder digest waits for the whole round's.
    pub async fn fire_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let due = self.app.store.jobs_due(self.app.now())?;
        let updates = due.iter().any(|j| matches!(j.kind, JobKind::StatusUpdate));
        self.deliver(updates).await?;
        for job in &due {
            // Earlier jobs of this round may have taken a while; a command may have moved or
            // cancelled this one meanwhile, and then that decision stands.
            if self.app.store.job(job.incident, &job.kind)?.as_ref() != Some(job) {
                continue;
            }
            self.ran(job);
            if let Err(e) = self.fire(job).await {
                let delay = backoff(job.attempts);
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
        self.app.telemetry.job_ran(job.kind.tag(), late);
    }

    async fn fire(&self, job: &Job) -> Result<(), JobError> {
        match job.kind {
            JobKind::StatusUpdate => self.status_update(job).await,
            JobKind::EscalationTimeout { .. } => {
                Ok(crate::escalation::timeout(&self.app, job).await?)
            }
            JobKind::StuckNudge => Ok(crate::escalation::nudge(&self.app, job).await?),
            JobKind::Archive => self.archive(job).await,
            JobKind::Labels => labels::run(&self.app, job).await,
            JobKind::Post { .. } => self.send_post(job, None).await,
        }
    }

    /// Archives a still-resolved incident's channel, then forgets the job.
    async fn archive(&self, job: &Job) -> Result<(), JobError> {
        let app = &self.app;
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

    /// Records the status update (and, when the team has said nothing since the last one, the
    /// reminder to the commander), queues their posts in the outbox and plans the next job, in
    /// one transaction. The outbox sends them with this job's nonces; the stakeholder channel's
    /// copy may share a digest message with other incidents' updates due at the same time.
    async fn status_update(&self, job: &Job) -> Result<(), JobError> {
        let app = &self.app;
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

        let text = status::status_text(app, &inc, true, next)?;
        let update = status::incident_post(app, &inc, "Status update", text.clone());
        let remind = quiet.then_some(inc.channel).flatten();
        let mut sends = Vec::new();
        let with_nonce = |mut post: Post, part: char, channel: u64| {
            post.nonce = Some(nonce(job, part, channel));
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
            let reminder = status::reminder_post(app, &inc, since, next)?;
            sends.push(JobChange::Send {
                incident: inc.id,
                channel,
                post: with_nonce(reminder, 'r', channel),
                due: now,
            });
        }
        if let Some(channel) = app.chat.stakeholder_channel() {
            sends.push(JobChange::SendInDigest {
                incident: inc.id,
                channel,
                post: with_nonce(update, 's', channel),
                due: now,
            });
        }

        let commander = inc.commander().cloned();
        app.store.append_with_jobs(
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
            |i, events| {
                let mut changes = plan(&app.config, i, events);
                changes.extend(sends.iter().cloned());
                changes
            },
        )?;
        app.store.flush().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
