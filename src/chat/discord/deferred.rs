//! How a deferred interaction ends: the answer in place of the placeholder, privately when only
//! the typist may see it, and in the channel once the interaction's 15-minute token is spent.

use super::outgoing;
use super::responder::Responder;
use crate::app::App;
use crate::commands::{Delivery, Reply};
use crate::domain::{IncidentId, UserRef};
use crate::message::{Mentions, Post};
use governor::DefaultDirectRateLimiter;
use serenity::all::{
    ChannelId, CreateInteractionResponse, CreateInteractionResponseMessage, MessageId,
};
use serenity::builder::Builder;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Discord's interaction tokens work for 15 minutes after the interaction is created.
const TOKEN_LIFETIME: Duration = Duration::from_secs(15 * 60);
/// Past this, counted from when the interaction reached us, the token is left alone: a call
/// begun later, with its retries, could arrive after the token died.
const TOKEN_CUTOFF: Duration = Duration::from_secs(TOKEN_LIFETIME.as_secs() - 60);

/// Waits before sending an answer through the token again. The change it reports is already
/// saved: worth a few tries before the responder is left on "thinking".
const RETRIES: [Duration; 4] = [
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(4),
];

/// "Invalid Webhook Token": the interaction's token ran out.
const INVALID_WEBHOOK_TOKEN: isize = 50027;
/// "Unknown Webhook": Discord no longer knows the interaction.
const UNKNOWN_WEBHOOK: isize = 10015;
/// "Unknown Message": the placeholder is gone (deleted, or dismissed by its typist).
const UNKNOWN_MESSAGE: isize = 10008;

/// How a call through the token ended.
#[derive(Debug, PartialEq, Eq)]
enum Sent {
    Done,
    /// The token no longer works: the answer has to go another way.
    TokenGone,
    /// Refused or unanswered after the retries; logged.
    Failed,
}

/// Who asked for what, and where: what an answer needs once it can only go to the channel.
pub(super) struct Asker<'a> {
    pub app: &'a App,
    /// Shared with every other read and write outside the interaction's webhook.
    pub limiter: &'a DefaultDirectRateLimiter,
    pub channel: u64,
    pub user: &'a UserRef,
    /// The command as typed, e.g. `postmortem draft`.
    pub what: &'a str,
    /// The incident the answer is about, if any: its post then waits in the outbox.
    pub incident: Option<IncidentId>,
}

/// Whether a token that reached us `elapsed` ago may still be used.
fn usable_after(elapsed: Duration) -> bool {
    elapsed < TOKEN_CUTOFF
}

fn token_gone(e: &serenity::Error) -> bool {
    outgoing::status_of(e) == Some(401)
        || matches!(
            outgoing::code_of(e),
            Some(INVALID_WEBHOOK_TOKEN | UNKNOWN_WEBHOOK)
        )
}

/// The first line of an answer that has to be posted in the channel, naming whoever asked.
fn channel_lead(user: u64, what: &str, ephemeral: bool) -> String {
    if ephemeral {
        format!(
            "<@{user}> `/{what}` did not finish, and Discord's 15 minutes to answer you privately had passed:"
        )
    } else {
        format!("<@{user}> `/{what}` took longer than Discord's 15 minutes to answer a command; here is its answer:")
    }
}

impl Responder<'_> {
    /// Acknowledges the interaction with a placeholder ("sitrep is thinking…"), for the whole
    /// channel or, `ephemeral`, for the typist only.
    pub(super) async fn defer(&self, ephemeral: bool) -> bool {
        self.state.public.store(!ephemeral, Ordering::SeqCst);
        let msg = CreateInteractionResponseMessage::new();
        let msg = if ephemeral { msg.ephemeral(true) } else { msg };
        self.respond(CreateInteractionResponse::Defer(msg)).await
    }

    /// Whether the token may still be used: within [`TOKEN_CUTOFF`], and not refused yet.
    pub(super) fn token_usable(&self) -> bool {
        !self.state.dead.load(Ordering::SeqCst) && usable_after(self.received.elapsed())
    }

    fn token_ran_out(&self, what: &str) {
        if !self.state.dead.swap(true, Ordering::SeqCst) {
            tracing::info!(
                interaction = %self.id,
                what,
                elapsed_s = self.received.elapsed().as_secs(),
                "the interaction's token has run out; its answer goes to the channel"
            );
        }
    }

    /// Runs a call through the token, again on a 429 or a 5xx, and, when `idempotent`, when
    /// no answer came (a follow-up sent twice would show twice).
    async fn retried<T, F, Fut>(&self, what: &str, idempotent: bool, call: F) -> serenity::Result<T>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = serenity::Result<T>>,
    {
        let mut waits = RETRIES.iter();
        loop {
            let e = match call().await {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            let status = outgoing::status_of(&e);
            let worth =
                matches!(status, Some(429 | 500..=599)) || (idempotent && outgoing::is_timeout(&e));
            match waits.next().filter(|_| worth && self.token_usable()) {
                Some(wait) => {
                    tracing::info!(interaction = %self.id, ?status, what, "answering through the interaction failed; trying again");
                    tokio::time::sleep(*wait).await;
                }
                None => return Err(e),
            }
        }
    }

    /// Shows in the placeholder how far long work has got, while the token lasts.
    pub(super) async fn progress(&self, post: Post) {
        if !self.token_usable() {
            return;
        }
        match outgoing::edit(post).execute(self.http, self.token).await {
            Ok(m) => self.state.placeholder.store(m.id.get(), Ordering::SeqCst),
            Err(e) if token_gone(&e) => self.token_ran_out("progress"),
            Err(e) => {
                tracing::warn!(interaction = %self.id, error = %e, "showing progress failed")
            }
        }
    }

    /// Ends a deferral with `reply`. A public answer replaces the placeholder. An answer only
    /// its typist may see (a mistake, a failure of a system we waited on) takes a public
    /// placeholder away and comes as an ephemeral follow-up: it is never shown to the channel.
    /// Once the token is spent, the answer is posted in the channel instead.
    pub(super) async fn conclude(&self, reply: Reply, asker: &Asker<'_>) {
        if self.token_usable() {
            let sent = if reply.ephemeral && self.state.public.load(Ordering::SeqCst) {
                self.privately(reply.post.clone(), asker).await
            } else {
                self.replace(reply.post.clone(), asker.what).await
            };
            if sent != Sent::TokenGone {
                return;
            }
        } else {
            self.token_ran_out(asker.what);
        }
        self.in_channel(reply, asker).await;
    }

    /// Edits the placeholder into the answer; a placeholder deleted meanwhile gets the answer
    /// as a follow-up of the same visibility.
    async fn replace(&self, post: Post, what: &str) -> Sent {
        let edited = self
            .retried(what, true, || {
                outgoing::edit(post.clone()).execute(self.http, self.token)
            })
            .await;
        match edited {
            Ok(_) => Sent::Done,
            Err(e) if token_gone(&e) => {
                self.token_ran_out(what);
                Sent::TokenGone
            }
            Err(e) if outgoing::code_of(&e) == Some(UNKNOWN_MESSAGE) => {
                let public = self.state.public.load(Ordering::SeqCst);
                self.follow_up(post, !public, what).await
            }
            Err(e) => {
                tracing::warn!(interaction = %self.id, status = ?outgoing::status_of(&e), what, error = %e, "editing the deferred answer failed");
                Sent::Failed
            }
        }
    }

    /// Takes the public placeholder away, then answers with an ephemeral follow-up. The order
    /// matters: while a placeholder is loading, Discord makes the first follow-up an edit of it
    /// and ignores the ephemeral flag.
    async fn privately(&self, post: Post, asker: &Asker<'_>) -> Sent {
        let what = asker.what;
        let deleted = self
            .retried(what, true, || {
                self.http.delete_original_interaction_response(self.token)
            })
            .await;
        match deleted {
            Ok(()) => {}
            Err(e) if outgoing::code_of(&e) == Some(UNKNOWN_MESSAGE) => {}
            Err(e) if token_gone(&e) => {
                self.token_ran_out(what);
                return Sent::TokenGone;
            }
            Err(e) => {
                // The placeholder stays; a neutral word in it stops it loading, so that the
                // follow-up below is a message of its own, and says nothing of what failed.
                tracing::warn!(interaction = %self.id, what, error = %e, "removing the public placeholder failed");
                let neutral = Post::text(format!(
                    "`/{what}` did not finish; <@{}> was told why.",
                    asker.user.id
                ));
                match self.replace(neutral, what).await {
                    Sent::Done => {}
                    other => return other,
                }
            }
        }
        self.follow_up(post, true, what).await
    }

    async fn follow_up(&self, post: Post, ephemeral: bool, what: &str) -> Sent {
        let sent = self
            .retried(what, false, || {
                outgoing::followup(post.clone(), ephemeral).execute(self.http, (None, self.token))
            })
            .await;
        match sent {
            Ok(_) => Sent::Done,
            Err(e) if token_gone(&e) => {
                self.token_ran_out(what);
                Sent::TokenGone
            }
            Err(e) => {
                tracing::warn!(interaction = %self.id, status = ?outgoing::status_of(&e), what, error = %e, "sending the answer as a follow-up failed");
                Sent::Failed
            }
        }
    }

    /// Posts the answer of an interaction whose token ran out in its channel, naming whoever
    /// asked. About an incident, it waits in the outbox (on disk, sent with a nonce); then the
    /// placeholder, if we know it, is taken away, as it would otherwise say the bot never
    /// answered.
    async fn in_channel(&self, reply: Reply, asker: &Asker<'_>) {
        let mut post = reply.post;
        let lead = channel_lead(asker.user.id, asker.what, reply.ephemeral);
        post.content = if post.content.is_empty() {
            lead
        } else {
            format!("{lead}\n{}", post.content)
        };
        if post.mentions.role_ids().is_empty() {
            let mut users = post.mentions.user_ids().to_vec();
            users.push(asker.user.id);
            post.mentions = Mentions::users(&users);
        }
        let app = asker.app;
        let incident = match asker.incident {
            Some(id) => Ok(Some(id)),
            None => app.store.incident_by_channel(asker.channel),
        };
        let posted = match incident {
            Ok(Some(id)) => {
                let delivery = Delivery {
                    channel: asker.channel,
                    post: post.clone(),
                };
                let jobs = crate::commands::queue(id, app.now(), &[delivery], None);
                match app.store.apply_jobs(&jobs) {
                    Ok(()) => app.store.flush().await.map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                }
            }
            Ok(None) => app
                .chat
                .post(asker.channel, post)
                .await
                .map(drop)
                .map_err(|e| e.to_string()),
            Err(e) => Err(format!("looking up the channel's incident: {e}")),
        };
        if let Err(e) = posted {
            tracing::error!(interaction = %self.id, what = asker.what, channel = asker.channel, error = %e, "posting the answer of an expired interaction failed");
            return;
        }
        let placeholder = self.state.placeholder.load(Ordering::SeqCst);
        if placeholder != 0 && self.state.public.load(Ordering::SeqCst) {
            asker.limiter.until_ready().await;
            let channel = ChannelId::new(asker.channel);
            // The bot may always delete its own messages.
            if let Err(e) = self
                .http
                .delete_message(channel, MessageId::new(placeholder), None)
                .await
            {
                tracing::info!(interaction = %self.id, error = %e, "removing the stale placeholder failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_left_alone_a_minute_before_discord_ends_it() {
        assert!(usable_after(Duration::from_secs(13 * 60 + 59)));
        assert!(!usable_after(TOKEN_CUTOFF));
        assert!(!usable_after(TOKEN_LIFETIME));
        assert!(TOKEN_LIFETIME - TOKEN_CUTOFF >= Duration::from_secs(60));
    }

    #[test]
    fn an_answer_posted_in_the_channel_says_why_it_is_there() {
        let public = channel_lead(7, "postmortem draft", false);
        assert!(public.starts_with("<@7> `/postmortem draft`"), "{public}");
        assert!(public.contains("15 minutes"), "{public}");
        let private = channel_lead(7, "metrics", true);
        assert!(private.contains("did not finish"), "{private}");
    }
}
