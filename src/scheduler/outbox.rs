//! The outbox: posts that commands and scheduled updates queued with their events, sent until the chat takes them.
//!
//! A command's success reply promises its posts as much as its events: both are on disk before
//! the reply, so a crash, a Discord outage or a 429 storm delays a post but never loses it. Each
//! post carries a nonce derived from its job ([`job_nonce`]), so that a send cut off after
//! Discord took it is not posted twice when it is tried again. Discord remembers a nonce only
//! for a few minutes: the time of a post's first attempt is on disk before the send, and a post
//! tried first longer ago than `[discord] nonce_window` is looked for in its channel before it
//! goes again.
//!
//! Posts queued as digestible ([`JobChange::SendInDigest`], the scheduled status updates for the
//! stakeholder channel) that wait side by side for one channel go out together, one embed per
//! incident in as few messages as Discord's limits allow, so that a channel taking about five
//! messages per five seconds still hears every incident within the tick.

use super::Scheduler;
use crate::domain::Backoff;
use crate::jobs::{job_nonce, JobError};
use crate::message::{Embed, Post, MAX_EMBED_TOTAL};
use crate::platform::ChatError;
use crate::store::{Job, JobChange, JobKind, StoreError};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use std::collections::{HashMap, HashSet};
use std::time::Duration;

/// People are waiting on these posts, so they are retried sooner than timed jobs: after 2 s,
/// doubling, up to 2 minutes.
pub const RETRY: Backoff = Backoff::new(Duration::from_secs(2), Duration::from_secs(2 * 60));
/// Attempts after which a post the chat keeps refusing (rather than failing to answer) is
/// dropped: a deleted channel or a lost permission would otherwise hold up its channel for good.
pub const MAX_REFUSALS: u32 = 5;
/// Channels whose posts are sent at the same time; the chat's own limiter keeps the total pace.
const CHANNELS_AT_ONCE: usize = 16;
/// Discord takes at most ten embeds in one message.
pub const MAX_DIGEST_EMBEDS: usize = 10;

fn earliest(a: Option<DateTime<Utc>>, b: DateTime<Utc>) -> Option<DateTime<Utc>> {
    Some(a.map_or(b, |a| a.min(b)))
}

fn channel_of(job: &Job) -> Option<u64> {
    match &job.kind {
        JobKind::Post { channel, .. } => Some(*channel),
        _ => None,
    }
}

/// The embeds a never-tried digestible post brings to a digest; `None` if it cannot join one.
fn digest_embeds(job: &Job) -> Option<Vec<Embed>> {
    let JobKind::Post {
        post, digest: true, ..
    } = &job.kind
    else {
        return None;
    };
    let alone = post.content.is_empty()
        && post.buttons.is_empty()
        && post.files.is_empty()
        && post.mentions.role_ids().is_empty()
        && post.mentions.user_ids().is_empty();
    let embeds: Vec<Embed> = post.embeds().cloned().collect();
    (job.first_attempt.is_none() && alone && !embeds.is_empty()).then_some(embeds)
}

/// One message's worth of digestible posts.
struct Chunk {
    jobs: Vec<Job>,
    embeds: Vec<Embed>,
    chars: usize,
}

impl Chunk {
    fn fits(&self, more: &[Embed]) -> bool {
        let chars: usize = more.iter().map(Embed::chars).sum();
        self.embeds.len() + more.len() <= MAX_DIGEST_EMBEDS && self.chars + chars <= MAX_EMBED_TOTAL
    }

    fn full(&self) -> bool {
        self.embeds.len() >= MAX_DIGEST_EMBEDS
    }

    /// The digest as one job in the place (and with the number) of its first post, so that the
    /// channel keeps its order; its nonce is its own.
    fn merged(self) -> (Job, Vec<JobChange>) {
        let mut jobs = self.jobs.into_iter();
        let first = jobs.next().expect("a chunk has a post");
        let cancels = jobs
            .map(|j| JobChange::Cancel {
                incident: j.incident,
                kind: j.kind,
            })
            .collect();
        let JobKind::Post { seq, channel, .. } = first.kind else {
            unreachable!("chunks hold posts")
        };
        let mut embeds = self.embeds.into_iter();
        let mut post = Post {
            embed: embeds.next(),
            more_embeds: embeds.collect(),
            ..Post::default()
        };
        post.nonce = Some(job_nonce(&first, 'd', channel));
        let job = Job {
            kind: JobKind::Post {
                seq,
                channel,
                post: Box::new(post),
                digest: true,
            },
            ..first
        };
        (job, cancels)
    }
}

impl Scheduler {
    /// Sends what waits in the outbox, oldest first, and forgets each post once the chat has
    /// it. A post that fails is retried with backoff, and the later posts to its channel wait
    /// behind it, so that a channel reads in the order things happened. Returns when the next
    /// retry is due; only a failing store is an error.
    pub async fn deliver_outbox(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.deliver(false).await
    }

    /// As [`Scheduler::deliver_outbox`]; with `more_coming` (more status updates of this round
    /// still to queue theirs) a digest that has room left waits for them.
    pub(super) async fn deliver(
        &self,
        more_coming: bool,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let app = &self.app;
        let _turn = app.store.outbox_turn().await;
        let now = app.now();
        let mut held: HashSet<u64> = HashSet::new();
        let mut next = None;
        let mut ready = Vec::new();
        for job in app.store.outbox()? {
            let Some(channel) = channel_of(&job) else {
                continue;
            };
            if held.contains(&channel) {
                continue;
            }
            if job.runs_at() > now {
                held.insert(channel);
                next = earliest(next, job.runs_at());
                continue;
            }
            self.ran(&job);
            ready.push(job);
        }
        let ready = self.digests(ready, more_coming)?;

        // Each channel's posts in order, the channels side by side: Discord limits messages per
        // channel, and a busy stakeholder channel must not hold up every incident's own.
        let mut by_channel: Vec<(u64, Vec<Job>)> = Vec::new();
        for job in ready {
            let Some(channel) = channel_of(&job) else {
                continue;
            };
            match by_channel.iter_mut().find(|(c, _)| *c == channel) {
                Some((_, jobs)) => jobs.push(job),
                None => by_channel.push((channel, vec![job])),
            }
        }
        let going: Vec<Job> = by_channel.iter().flat_map(|(_, j)| j.clone()).collect();
        let seq = |j: &Job| match j.kind {
            JobKind::Post { seq, .. } => seq,
            _ => 0,
        };
        let mut marked: HashMap<u64, Job> = app
            .store
            .mark_attempted(&going, now)
            .await?
            .into_iter()
            .map(|j| (seq(&j), j))
            .collect();
        for (_, jobs) in &mut by_channel {
            // As they are on disk now; one replaced meanwhile is left for the next pass.
            *jobs = jobs.iter().map_while(|j| marked.remove(&seq(j))).collect();
        }
        let retries: Vec<Result<Option<DateTime<Utc>>, StoreError>> = futures::stream::iter(
            by_channel
                .into_iter()
                .map(|(_, jobs)| self.deliver_channel(jobs, now)),
        )
        .buffer_unordered(CHANNELS_AT_ONCE)
        .collect()
        .await;
        for retry in retries {
            if let Some(at) = retry? {
                next = earliest(next, at);
            }
        }
        Ok(next)
    }

    /// Sends one channel's posts in order until one fails; that one is retried with backoff (or
    /// dropped when the chat keeps refusing it) and the rest wait behind it. Returns when the
    /// retry is due.
    async fn deliver_channel(
        &self,
        jobs: Vec<Job>,
        pass: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let app = &self.app;
        for job in jobs {
            let JobKind::Post { seq, channel, .. } = job.kind else {
                continue;
            };
            let Err(e) = self.send_post(&job, Some(pass)).await else {
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
            let delay = RETRY.after(job.attempts);
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
            return Ok(Some(at));
        }
        Ok(None)
    }

    /// Joins side-by-side digestible posts of each channel into digest messages, written to
    /// the store before anything is sent, and returns what goes out now, in order. With
    /// `more_coming`, a channel's last digest that still has room stays queued for the rest of
    /// the round (nothing of that channel waits behind it: it is the channel's last post).
    fn digests(&self, ready: Vec<Job>, more_coming: bool) -> Result<Vec<Job>, StoreError> {
        let mut by_channel: HashMap<u64, Vec<usize>> = HashMap::new();
        for (i, job) in ready.iter().enumerate() {
            if let Some(ch) = channel_of(job) {
                by_channel.entry(ch).or_default().push(i);
            }
        }
        // For each post: what replaces it (None: it was folded into the digest before it).
        let mut out: Vec<Option<Job>> = ready.iter().cloned().map(Some).collect();
        let mut changes = Vec::new();
        for positions in by_channel.values() {
            let mut chunk: Option<(Vec<usize>, Chunk)> = None;
            let close = |chunk: Option<(Vec<usize>, Chunk)>,
                         last: bool,
                         out: &mut Vec<Option<Job>>,
                         changes: &mut Vec<JobChange>| {
                let Some((at, c)) = chunk else { return };
                if last && more_coming && !c.full() {
                    for i in at {
                        out[i] = None;
                    }
                    return;
                }
                if c.jobs.len() < 2 {
                    return;
                }
                let (job, cancels) = c.merged();
                changes.extend(cancels);
                changes.push(JobChange::Put(job.clone()));
                for i in &at[1..] {
                    out[*i] = None;
                }
                out[at[0]] = Some(job);
            };
            for &i in positions {
                match digest_embeds(&ready[i]) {
                    None => close(chunk.take(), false, &mut out, &mut changes),
                    Some(embeds) => {
                        let fits = chunk.as_ref().is_some_and(|(_, c)| c.fits(&embeds));
                        if !fits {
                            close(chunk.take(), false, &mut out, &mut changes);
                        }
                        let (at, c) = chunk.get_or_insert_with(|| {
                            (
                                Vec::new(),
                                Chunk {
                                    jobs: Vec::new(),
                                    embeds: Vec::new(),
                                    chars: 0,
                                },
                            )
                        });
                        at.push(i);
                        c.chars += embeds.iter().map(Embed::chars).sum::<usize>();
                        c.embeds.extend(embeds);
                        c.jobs.push(ready[i].clone());
                    }
                }
            }
            close(chunk.take(), true, &mut out, &mut changes);
        }
        if !changes.is_empty() {
            self.app.store.apply_jobs(&changes)?;
        }
        Ok(out.into_iter().flatten().collect())
    }

    /// Sends one outbox post with its nonce (the one it was queued with, else its job's), then
    /// forgets it. A post first tried longer ago than Discord remembers nonces is looked for in
    /// its channel first, and counts as sent if it is there; one whose first attempt is this
    /// `pass` (marked when the pass began, behind a long backlog maybe) was never sent before.
    pub(super) async fn send_post(
        &self,
        job: &Job,
        pass: Option<DateTime<Utc>>,
    ) -> Result<(), JobError> {
        let JobKind::Post { channel, post, .. } = &job.kind else {
            return Ok(());
        };
        let channel = *channel;
        let mut post = (**post).clone();
        if post.nonce.is_none() {
            post.nonce = Some(job_nonce(job, 'o', channel));
        }
        let fresh = pass.is_some() && job.first_attempt == pass;
        if !fresh && self.already_sent(job, channel, &post).await? {
            tracing::info!(
                incident = %job.incident,
                channel,
                "a queued post tried before a long pause is already in its channel; not sending it again"
            );
        } else {
            self.app
                .chat
                .post(channel, post)
                .await
                .map_err(|source| JobError::Chat { channel, source })?;
            tracing::debug!(incident = %job.incident, channel, "delivered a queued post");
        }
        self.app.store.apply_jobs(&[JobChange::Cancel {
            incident: job.incident,
            kind: job.kind.clone(),
        }])?;
        Ok(())
    }

    /// Whether `post`, part of `job`, went out at an attempt too long ago for its nonce to
    /// protect it: then the channel is read for it. A fresh attempt relies on the nonce.
    async fn already_sent(&self, job: &Job, channel: u64, post: &Post) -> Result<bool, JobError> {
        let Some(first) = job.first_attempt else {
            return Ok(false);
        };
        let window =
            chrono::Duration::from_std(self.app.config.discord.nonce_window.0).unwrap_or_default();
        if self.app.now() - first <= window {
            return Ok(false);
        }
        let found = self
            .app
            .chat
            .find_sent(channel, first, post)
            .await
            .map_err(|source| JobError::Chat { channel, source })?;
        Ok(found.is_some())
    }
}
