//! The outbox: posts that commands queued with their events, sent until the chat takes them.
//!
//! A command's success reply promises its posts as much as its events: both are on disk before
//! the reply, so a crash, a Discord outage or a 429 storm delays a post but never loses it. Each
//! post carries a nonce derived from its job ([`super::nonce`]), so that a send cut off after
//! Discord took it is not posted twice when it is tried again.

use super::{nonce, JobError, Scheduler};
use crate::chat::ChatError;
use crate::store::{Job, JobChange, JobKind, StoreError};
use chrono::{DateTime, Utc};
use std::collections::HashSet;
use std::time::Duration;

/// People are waiting on these posts, so they are retried sooner than timed jobs.
const RETRY_FIRST: Duration = Duration::from_secs(2);
const RETRY_MAX: Duration = Duration::from_secs(2 * 60);
/// Attempts after which a post the chat keeps refusing (rather than failing to answer) is
/// dropped: a deleted channel or a lost permission would otherwise hold up its channel for good.
pub const MAX_REFUSALS: u32 = 5;

/// How long a post waits after `attempts` failed attempts: 2 s, doubling, up to 2 minutes.
pub fn backoff(attempts: u32) -> Duration {
    RETRY_FIRST
        .saturating_mul(2u32.saturating_pow(attempts))
        .min(RETRY_MAX)
}

fn earliest(a: Option<DateTime<Utc>>, b: DateTime<Utc>) -> Option<DateTime<Utc>> {
    Some(a.map_or(b, |a| a.min(b)))
}

impl Scheduler {
    /// Sends what waits in the outbox, oldest first, and forgets each post once the chat has
    /// it. A post that fails is retried with backoff, and the later posts to its channel wait
    /// behind it, so that a channel reads in the order things happened. Returns when the next
    /// retry is due; only a failing store is an error.
    pub async fn deliver_outbox(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let app = &self.app;
        let _turn = app.store.outbox_turn().await;
        let mut held: HashSet<u64> = HashSet::new();
        let mut next = None;
        for job in app.store.outbox()? {
            let JobKind::Post { seq, channel, .. } = job.kind else {
                continue;
            };
            if held.contains(&channel) {
                continue;
            }
            if job.runs_at() > app.now() {
                held.insert(channel);
                next = earliest(next, job.runs_at());
                continue;
            }
            self.ran(&job);
            let Err(e) = self.send_post(&job).await else {
                continue;
            };
            let refused = matches!(
                e,
                JobError::Chat {
                    source: ChatError::Refused(_),
                    ..
                }
            );
            if refused && job.attempts + 1 >= MAX_REFUSALS {
                tracing::error!(
                    incident = %job.incident,
                    channel,
                    seq,
                    attempts = job.attempts + 1,
                    error = %e,
                    "the chat keeps refusing a queued post; dropping it"
                );
                app.store.apply_jobs(&[JobChange::Cancel {
                    incident: job.incident,
                    kind: job.kind.clone(),
                }])?;
                continue;
            }
            held.insert(channel);
            let delay = backoff(job.attempts);
            tracing::warn!(
                incident = %job.incident,
                channel,
                seq,
                attempt = job.attempts + 1,
                retry_in = ?delay,
                error = %e,
                "a queued post failed; it will be retried, and later posts to its channel wait"
            );
            let at = app.now() + chrono::Duration::from_std(delay).unwrap_or_default();
            app.store.retry_job(&job, at)?;
            next = earliest(next, at);
        }
        Ok(next)
    }

    /// Sends one outbox post with its nonce, then forgets it.
    pub(super) async fn send_post(&self, job: &Job) -> Result<(), JobError> {
        let JobKind::Post { channel, post, .. } = &job.kind else {
            return Ok(());
        };
        let channel = *channel;
        let mut post = (**post).clone();
        post.nonce = Some(nonce(job, 'o', channel));
        self.app
            .chat
            .post(channel, post)
            .await
            .map_err(|source| JobError::Chat { channel, source })?;
        self.app.store.apply_jobs(&[JobChange::Cancel {
            incident: job.incident,
            kind: job.kind.clone(),
        }])?;
        tracing::debug!(incident = %job.incident, channel, "delivered a queued post");
        Ok(())
    }
}
