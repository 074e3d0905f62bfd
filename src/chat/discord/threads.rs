//! Incident threads and forum posts: Discord's archive rules, forum tags and the active-thread cap.

use super::{outgoing, DiscordChat};
use crate::config::IncidentMode;
use crate::domain::State;
use crate::message::truncate;
use crate::platform::{ChatError, Place};
use crate::store::Store;
use serde_json::{json, Value};
use serenity::all::{Channel, ChannelId, ChannelType, GuildChannel, GuildId, UserId};
use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;
use std::time::Duration;

/// "Thread is archived": editing, adding members, or posting in a thread a moderator locked.
const THREAD_ARCHIVED: isize = 50083;
/// "Maximum number of active threads reached": 1,000 in a server.
const MAX_ACTIVE_THREADS: isize = 160006;
/// Discord's cap on active threads in a server.
const ACTIVE_THREAD_CAP: usize = 1000;
/// Threads archived at once when the cap is met, so that the next declarations do not each
/// meet it again.
const ROOM_BATCH: usize = 10;
/// Discord allows 20 tags on a forum, 5 on a post, and 20 characters in a tag's name.
const MAX_FORUM_TAGS: usize = 20;
const MAX_POST_TAGS: usize = 5;
const MAX_TAG_NAME: usize = 20;
/// Rounds of making room a declaration may take at the cap: declarations, and posts that
/// unarchive resolved threads, use up room made for another meanwhile.
const ROOM_ROUNDS: u32 = 3;
/// Tries at making a thread when Discord is busy or gives no answer, as many as other calls get.
const CREATE_ATTEMPTS: u32 = 5;

#[derive(Default)]
pub(super) struct ThreadState {
    store: OnceLock<Store>,
    /// The incident forum's tag ids by [`tag_key`], read once and kept while they work.
    tags: tokio::sync::Mutex<HashMap<String, u64>>,
    /// Held while room is made at the cap: declarations meeting it together would otherwise all
    /// list the same active threads and archive the same oldest ten.
    room: tokio::sync::Mutex<()>,
}

impl ThreadState {
    pub(super) fn set_store(&self, store: Store) {
        let _ = self.store.set(store);
    }
}

type Coded = (ChatError, Option<isize>);

impl DiscordChat {
    /// A thread under the parent channel, or a post in the incident forum. When the server is at
    /// Discord's active-thread cap, the oldest resolved incidents' threads are archived first.
    pub(super) async fn create_incident_thread(
        &self,
        name: &str,
        topic: &str,
    ) -> Result<Place, ChatError> {
        let mut rounds = 0;
        loop {
            match self.try_create_thread(name, topic).await {
                Ok(ch) => {
                    return Ok(Place {
                        channel: ch.id.get(),
                        name: ch.name.clone(),
                        mention: format!("<#{}>", ch.id.get()),
                    })
                }
                Err((_, Some(MAX_ACTIVE_THREADS))) if rounds < ROOM_ROUNDS => {
                    rounds += 1;
                    if self.make_thread_room().await? == 0 {
                        return Err(no_room());
                    }
                }
                Err((_, Some(MAX_ACTIVE_THREADS))) => return Err(no_room()),
                Err((e, _)) => return Err(e),
            }
        }
    }

    async fn try_create_thread(&self, name: &str, topic: &str) -> Result<GuildChannel, Coded> {
        let d = &self.config.discord;
        let archive = d.thread_auto_archive.minutes();
        if d.incident_mode == IncidentMode::Forum {
            let forum = d
                .incident_forum_channel_id
                .ok_or_else(|| refused("[discord] incident_forum_channel_id is not set".into()))?;
            // Every incident starts out investigating; a forum that requires a tag gets one.
            let tags = match self
                .tag_ids(forum, &[State::Investigating.as_str().to_string()])
                .await
            {
                Ok(t) => t,
                // Posting there would make a private thread in a text channel, or fail.
                Err(e @ ChatError::NoPlace(_)) => return Err((e, None)),
                Err(e) => {
                    tracing::warn!(forum, error = %e, "creating the incident post without tags");
                    Vec::new()
                }
            };
            let body = json!({
                "name": name,
                "auto_archive_duration": archive,
                "applied_tags": ids(&tags),
                "message": { "content": topic, "allowed_mentions": { "parse": [] } },
            });
            return self
                .create_thread_once(forum, name, "create forum post", || {
                    self.http
                        .create_forum_post(ChannelId::new(forum), &body, None)
                })
                .await;
        }
        let parent = d
            .incident_parent_channel_id
            .ok_or_else(|| refused("[discord] incident_parent_channel_id is not set".into()))?;
        let body = json!({
            "name": name,
            "type": 11,
            "auto_archive_duration": archive,
        });
        self.create_thread_once(parent, name, "create thread", || {
            self.http.create_thread(ChannelId::new(parent), &body, None)
        })
        .await
    }

    /// Creating is not idempotent: after a timeout or a server error the thread may exist
    /// although no answer came, so the bot looks for it before it asks again.
    async fn create_thread_once<F, Fut>(
        &self,
        parent: u64,
        name: &str,
        what: &str,
        f: F,
    ) -> Result<GuildChannel, Coded>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = serenity::Result<GuildChannel>>,
    {
        let mut delay = Duration::from_millis(500);
        for attempt in 1..=CREATE_ATTEMPTS {
            self.limiter.until_ready().await;
            let e = match super::metered::metered(&self.telemetry, what, f()).await {
                Ok(ch) => return Ok(ch),
                Err(e) => e,
            };
            let status = outgoing::status_of(&e);
            let unsure = outgoing::is_timeout(&e) || matches!(status, Some(500..=599));
            let busy = status == Some(429);
            if !(unsure || busy) || attempt == CREATE_ATTEMPTS {
                tracing::warn!(what, ?status, error = %e, "Discord request failed");
                let chat = if status.is_some() && !unsure && !busy {
                    ChatError::Refused(format!("{what}: {e}"))
                } else {
                    ChatError::Unavailable(format!("{what}: {e}"))
                };
                return Err((chat, outgoing::code_of(&e)));
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(8));
            if unsure {
                if let Some(found) = self.find_active_thread(parent, name).await {
                    tracing::info!(
                        what,
                        thread = found.id.get(),
                        "the thread was made although Discord did not answer; using it"
                    );
                    return Ok(found);
                }
            }
        }
        unreachable!("the loop returns on its last attempt")
    }

    /// An active thread named `name` under `parent`, if Discord lists one.
    async fn find_active_thread(&self, parent: u64, name: &str) -> Option<GuildChannel> {
        let guild = self.config.discord.guild_id?;
        let listed = self
            .call("list active threads", || {
                self.http.get_guild_active_threads(GuildId::new(guild))
            })
            .await
            .ok()?;
        listed
            .threads
            .into_iter()
            .find(|t| t.parent_id.map(|p| p.get()) == Some(parent) && t.name == name)
    }

    /// Archives the oldest resolved incidents' threads that are still active; returns how many
    /// threads can now be made (those it archived, and any the cap leaves free).
    async fn make_thread_room(&self) -> Result<usize, ChatError> {
        let Some(store) = self.threads.store.get() else {
            return Ok(0);
        };
        let _one_at_a_time = self.threads.room.lock().await;
        let guild = self
            .config
            .discord
            .guild_id
            .ok_or_else(|| ChatError::Refused("[discord] guild_id is not set".into()))?;
        let listed = self
            .call("list active threads", || {
                self.http.get_guild_active_threads(GuildId::new(guild))
            })
            .await?;
        let active: HashSet<u64> = listed.threads.iter().map(|t| t.id.get()).collect();
        let incidents = store
            .incidents()
            .map_err(|e| ChatError::Unavailable(format!("reading resolved incidents: {e}")))?;
        let mut resolved: Vec<_> = incidents
            .into_iter()
            .filter(|i| !i.is_open())
            .filter_map(|i| Some((i.times.resolved?, i.channel?)))
            .filter(|(_, channel)| active.contains(channel))
            .collect();
        resolved.sort();
        let mut archived = 0;
        for (_, channel) in resolved.into_iter().take(ROOM_BATCH) {
            match self.archive_thread(channel).await {
                Ok(()) => archived += 1,
                Err(e) => {
                    tracing::warn!(channel, error = %e, "could not archive a resolved incident's thread")
                }
            }
        }
        tracing::warn!(
            archived,
            active = active.len(),
            "the server is at Discord's cap of active threads; archived the oldest resolved incidents' threads"
        );
        // Room another declaration made meanwhile counts too: it archived what this one would
        // have, and what it did not use is free.
        Ok(archived + ACTIVE_THREAD_CAP.saturating_sub(active.len()))
    }

    /// Archives a thread; one already archived (by inactivity or a moderator) is left as it is.
    pub(super) async fn archive_thread(&self, channel: u64) -> Result<(), ChatError> {
        let body = json!({ "archived": true });
        match self
            .call_coded("archive thread", || {
                self.http.edit_thread(ChannelId::new(channel), &body, None)
            })
            .await
        {
            Ok(_) | Err((_, Some(THREAD_ARCHIVED))) => Ok(()),
            Err((e, _)) => Err(e),
        }
    }

    /// Runs `f`; when Discord answers that the thread is archived, unarchives it and runs `f`
    /// once more, so that an incident thread that went quiet still takes posts, edits and members.
    pub(super) async fn unarchiving<T, F, Fut>(
        &self,
        channel: u64,
        what: &str,
        f: F,
    ) -> Result<T, ChatError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = serenity::Result<T>>,
    {
        match self.call_coded(what, &f).await {
            Err((_, Some(THREAD_ARCHIVED))) => {
                self.unarchive(channel).await?;
                tracing::info!(channel, what, "unarchived an incident thread to act in it");
                self.call(what, f).await
            }
            // A message into an archived thread unarchives it, which the active-thread cap may
            // not allow.
            Err((_, Some(MAX_ACTIVE_THREADS))) => {
                if self.make_thread_room().await? == 0 {
                    return Err(no_room());
                }
                self.call(what, f).await
            }
            other => other.map_err(|(e, _)| e),
        }
    }

    async fn unarchive(&self, channel: u64) -> Result<(), ChatError> {
        let body = json!({ "archived": false });
        let patch = || self.http.edit_thread(ChannelId::new(channel), &body, None);
        match self.call_coded("unarchive thread", patch).await {
            Ok(_) => Ok(()),
            Err((_, Some(MAX_ACTIVE_THREADS))) => {
                if self.make_thread_room().await? == 0 {
                    return Err(no_room());
                }
                self.call("unarchive thread", patch).await.map(|_| ())
            }
            Err((e, _)) => Err(e),
        }
    }

    /// Adds a responder to an incident thread; channels need nothing.
    pub(super) async fn add_thread_member(&self, channel: u64, user: u64) -> Result<(), ChatError> {
        if self.config.discord.incident_mode == IncidentMode::Channel {
            return Ok(());
        }
        self.unarchiving(channel, "add thread member", || {
            self.http
                .add_thread_channel_member(ChannelId::new(channel), UserId::new(user))
        })
        .await
    }

    /// Applies exactly these tags to an incident's forum post (in forum mode; otherwise nothing).
    pub(super) async fn set_forum_tags(
        &self,
        channel: u64,
        labels: &[String],
    ) -> Result<(), ChatError> {
        let d = &self.config.discord;
        let (IncidentMode::Forum, Some(forum)) = (d.incident_mode, d.incident_forum_channel_id)
        else {
            return Ok(());
        };
        let tags = self.tag_ids(forum, labels).await?;
        let body = json!({ "applied_tags": ids(&tags) });
        let res = self
            .unarchiving(channel, "set the post's tags", || {
                self.http.edit_thread(ChannelId::new(channel), &body, None)
            })
            .await;
        if res.is_err() {
            // A moderator may have removed one of the tags: read them again next time.
            self.threads.tags.lock().await.clear();
        }
        res.map(|_| ())
    }

    /// The forum's ids for these tag names, adding the incident tags it lacks first.
    async fn tag_ids(&self, forum: u64, names: &[String]) -> Result<Vec<u64>, ChatError> {
        let names: Vec<String> = names.iter().map(|n| tag_key(&tag_name(n))).collect();
        let mut known = self.threads.tags.lock().await;
        if names.iter().any(|n| !known.contains_key(n)) {
            *known = self.ensure_tags(forum).await?;
        }
        Ok(names
            .iter()
            .filter_map(|n| known.get(n).copied())
            .take(MAX_POST_TAGS)
            .collect())
    }

    /// Reads the forum's tags and adds, in one change, every severity and state tag it lacks,
    /// keeping the tags people made (with their ids, so that posts keep them).
    async fn ensure_tags(&self, forum: u64) -> Result<HashMap<String, u64>, ChatError> {
        let ch = self
            .call("read the incident forum", || {
                self.http.get_channel(ChannelId::new(forum))
            })
            .await?;
        let ch = match ch {
            Channel::Guild(ch) if ch.kind == ChannelType::Forum => ch,
            _ => {
                return Err(ChatError::NoPlace(format!(
                    "The channel set as [discord] incident_forum_channel_id ({forum}) is not a forum channel. Create a forum channel for incidents and put its id there, or set incident_mode = \"thread\"."
                )))
            }
        };
        let mut have: HashMap<String, u64> = ch
            .available_tags
            .iter()
            .map(|t| (tag_key(&t.name), t.id.get()))
            .collect();
        let missing: Vec<String> = self
            .incident_tag_names()
            .into_iter()
            .filter(|n| !have.contains_key(&tag_key(n)))
            .collect();
        if missing.is_empty() {
            return Ok(have);
        }
        let room = MAX_FORUM_TAGS.saturating_sub(ch.available_tags.len());
        if room < missing.len() {
            tracing::warn!(
                forum,
                missing = ?missing,
                "the incident forum has no room for all of sitrep's tags (Discord allows 20): remove tags nobody uses"
            );
        }
        if room == 0 {
            return Ok(have);
        }
        let mut list: Vec<Value> = ch
            .available_tags
            .iter()
            .filter_map(|t| serde_json::to_value(t).ok())
            .collect();
        list.extend(missing.iter().take(room).map(|n| json!({ "name": n })));
        let body = json!({ "available_tags": list });
        let ch = self
            .call("add the incident tags to the forum", || {
                self.http.edit_channel(ChannelId::new(forum), &body, None)
            })
            .await?;
        have = ch
            .available_tags
            .iter()
            .map(|t| (tag_key(&t.name), t.id.get()))
            .collect();
        Ok(have)
    }

    /// A tag for every configured severity and every state.
    fn incident_tag_names(&self) -> Vec<String> {
        self.config
            .severity_levels()
            .iter()
            .map(|s| tag_name(&s.to_string()))
            .chain(State::ALL.iter().map(|s| tag_name(s.as_str())))
            .collect()
    }
}

/// Tags are matched without regard to case, so that a moderator's `sev1` serves as `SEV1`
/// instead of clashing with it.
fn tag_key(name: &str) -> String {
    name.to_lowercase()
}

fn tag_name(s: &str) -> String {
    truncate(s, MAX_TAG_NAME).to_string()
}

fn ids(tags: &[u64]) -> Vec<String> {
    tags.iter().map(u64::to_string).collect()
}

fn refused(what: String) -> Coded {
    (ChatError::Refused(what), None)
}

fn no_room() -> ChatError {
    ChatError::NoPlace(
        "Discord allows 1,000 active threads in a server and this server has reached it, with no \
         resolved incident's thread left to archive. Close threads that are finished (right-click \
         the thread → Close Thread) to make room."
            .into(),
    )
}
