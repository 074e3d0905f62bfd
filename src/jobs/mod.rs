//! What a timed job kind is: what it plans from an incident's events, and what it does when due.
//!
//! Each kind lives beside its feature and is registered once, in the list `kinds::KINDS`. The
//! scheduler runs whatever comes due through this trait, and [`App::record`] asks every kind to
//! plan after each append, so neither knows a feature by name. The kinds that have
//! no feature module of their own (the place's archival and labels) live here.

pub mod archive;
pub mod labels;

use crate::app::App;
use crate::config::Config;
use crate::domain::{Event, Incident, StableHash};
use crate::error::CommandError;
use crate::platform::ChatError;
use crate::render::TemplateError;
use crate::store::{AppendError, Job, JobKind, StoreError};
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;

/// Why a job could not finish; the scheduler retries it with backoff.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Append(#[from] AppendError),
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error("posting to channel {channel}: {source}")]
    Chat { channel: u64, source: ChatError },
}

/// A job's steps also run inside commands (an escalation's first page): their failure is then
/// the command's, and the responder gets the apology with an error id.
impl From<JobError> for CommandError {
    fn from(e: JobError) -> Self {
        match e {
            JobError::Store(e) => e.into(),
            JobError::Append(e) => e.into(),
            JobError::Template(e) => e.into(),
            JobError::Chat { source, .. } => source.into(),
        }
    }
}

/// One kind of timed job. A kind owns the slots of its [`JobKind`] variant: it plans them from
/// events and runs them when due.
pub trait Kind: Sync {
    /// The [`JobKind::tag`] of the jobs this kind plans and runs.
    fn tag(&self) -> &'static str;

    /// The job changes that `events`, just folded into `inc`, call for. Written in the same
    /// transaction as the events, so that a crash never leaves a job without its cause.
    fn plan(
        &self,
        config: &Config,
        inc: &Incident,
        events: &[Event],
    ) -> Vec<crate::store::JobChange>;

    /// Does what `job` stands for, now that it is due. An error has it retried later.
    fn run<'a>(&'a self, app: &'a App, job: &'a Job) -> BoxFuture<'a, Result<(), JobError>>;

    /// Once when the scheduler starts, before any job fires: finishes what a run cut off by a
    /// stop recorded `before` it started but never did.
    fn resume<'a>(&'a self, _app: &'a App, _before: DateTime<Utc>) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }

    /// Once when the scheduler starts, after [`Kind::resume`]: the jobs of
    /// [`IncidentId::HOUSE`](crate::domain::IncidentId::HOUSE) this kind keeps (a job that comes
    /// back every week plans its first run here; each run puts the next). Applied as they are,
    /// so a `Put` replaces what an earlier run left in the slot.
    fn start(&self, _app: &App) -> Vec<crate::store::JobChange> {
        Vec::new()
    }

    /// Whether its runs queue posts that may share a digest message, so that the outbox
    /// waits for the whole round of due jobs before it sends them.
    fn digests(&self) -> bool {
        false
    }
}

/// A nonce for one post, the same every time it is made from the same `fields`, so that
/// Discord (with `enforce_nonce`) drops a second send after a crash between sending and
/// recording. `part` tells apart the posts of one cause. Discord allows 25 characters; this is 17.
pub fn nonce(part: char, fields: &[&[u8]]) -> String {
    let mut h = StableHash::default();
    for f in fields {
        h.feed(f);
    }
    let mut tag = [0u8; 4];
    let h = h.feed(part.encode_utf8(&mut tag).as_bytes()).finish();
    format!("{part}{h:016x}")
}

/// The [`nonce`] of one post of `job` to `channel`: it stays the same across the job's retries.
pub fn job_nonce(job: &Job, part: char, channel: u64) -> String {
    let incident = job.incident.0.to_be_bytes();
    let due = job.due.timestamp_millis().to_be_bytes();
    let channel = channel.to_be_bytes();
    let mut fields: Vec<&[u8]> = vec![&incident, job.kind.tag().as_bytes(), &due, &channel];
    // Posts queued in one millisecond differ only in their number. Other kinds leave it out, so
    // that their nonces stay what they were before the outbox.
    let seq;
    match &job.kind {
        JobKind::Post { seq: n, .. } => {
            seq = n.to_be_bytes();
            fields.push(&seq);
        }
        // Slots of one kind may come due together.
        JobKind::Keyed { key, .. } if !key.is_empty() => fields.push(key.as_bytes()),
        _ => {}
    }
    nonce(part, &fields)
}
