//! Channel mode's places: incident channels in the incident category and its overflow categories, archived into archive categories, and the oldest archived ones removed when the server is full.
//!
//! Discord holds at most 50 channels in a category and 500 in a server (categories included,
//! threads not). A category family is a base category and its overflow categories named
//! "<base> 2", "<base> 3", ..., found by name each time, so that they survive restarts and are
//! never made twice for one slot. When the server is full, the oldest archived incident channel
//! whose whole history is in the store is deleted, and its timeline says so.

use super::{capture, outgoing, DiscordChat};
use crate::app::App;
use crate::domain::{Actor, EventKind};
use crate::platform::{ChatError, Place};
use serenity::all::{
    ChannelId, ChannelType, CreateChannel, EditChannel, GuildChannel, GuildId, PermissionOverwrite,
};
use std::collections::HashSet;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Channels one category holds at most.
pub const CATEGORY_MAX: usize = 50;
/// Channels one server holds at most, categories included and threads not.
pub const SERVER_MAX: usize = 500;
/// The archive the bot makes for itself when `[discord] archive_category_id` is not set.
pub const ARCHIVE_NAME: &str = "Incidents archive";
/// How long the bot trusts its own picture of the server's channels. Its own changes keep it
/// current; this bounds how long changes made by people go unseen (Discord's refusal of a full
/// category or server also makes the bot look again at once).
const FRESH_FOR: Duration = Duration::from_secs(5 * 60);
/// A create whose answer was lost is looked for, then tried again, this many times in all.
const CREATE_ATTEMPTS: u32 = 4;

/// What channel mode keeps between calls.
#[derive(Default)]
pub struct Places {
    /// The server's channels as last seen; held across a whole placement or archival, so that two
    /// at once never both make "Incidents 2".
    seen: tokio::sync::Mutex<Option<(Instant, Vec<GuildChannel>)>>,
    /// Set once the app exists: removing a channel first reads its history into the store.
    app: OnceLock<App>,
    bot_user: OnceLock<u64>,
}

impl Places {
    pub fn set_app(&self, app: App) {
        let _ = self.app.set(app);
    }
}

/// Why one create failed, kept whole so that the caller can tell a full server from a full
/// category or a missing permission.
struct Refusal {
    status: Option<u16>,
    code: Option<isize>,
    /// Field names Discord's form errors point at, e.g. `parent_id`.
    fields: Vec<String>,
    text: String,
}

impl Refusal {
    fn of(e: &serenity::Error) -> Refusal {
        let mut r = Refusal {
            status: outgoing::status_of(e),
            code: None,
            fields: Vec::new(),
            text: e.to_string(),
        };
        if let serenity::Error::Http(serenity::http::HttpError::UnsuccessfulRequest(resp)) = e {
            r.code = Some(resp.error.code);
            r.fields = resp.error.errors.iter().map(|x| x.path.clone()).collect();
            let details: Vec<String> = resp
                .error
                .errors
                .iter()
                .map(|x| format!("{}: {}", x.path, x.code))
                .collect();
            if !details.is_empty() {
                r.text = format!("{} ({})", r.text, details.join(", "));
            }
        }
        r
    }

    fn forbidden(&self) -> bool {
        self.status == Some(403) || matches!(self.code, Some(50001 | 50013))
    }

    fn server_full(&self) -> bool {
        self.code == Some(30013)
    }

    /// Discord refused the parent: full, gone, or not a category.
    fn parent(&self) -> bool {
        self.code == Some(50035) && self.fields.iter().any(|f| f.contains("parent_id"))
    }
}

fn server_full_text(content: bool) -> String {
    let why = if content {
        ""
    } else {
        " (with [discord] message_content off their text could not be kept, so none is removed)"
    };
    format!(
        "The server has {SERVER_MAX} channels, Discord's most, and no archived incident channel \
         could be removed{why}. Delete channels the server no longer needs, or set [discord] \
         incident_mode = \"thread\", which has no such limit."
    )
}

fn forbidden_text(place: &str) -> String {
    format!(
        "Discord refused the bot in {place}: give the bot's role Manage Channels and View \
         Channel there (Server Settings → Roles, or the category's Permissions), so that the \
         next incident gets its channel."
    )
}

/// The categories of one family, by slot: the base is slot 1, "<base> n" slot n. Categories
/// people made under such a name are used like the bot's own.
fn family(list: &[GuildChannel], base: &GuildChannel) -> Vec<(u32, ChannelId)> {
    let mut out = vec![(1, base.id)];
    for c in list {
        if c.kind != ChannelType::Category || c.id == base.id {
            continue;
        }
        let slot = c
            .name
            .strip_prefix(base.name.as_str())
            .and_then(|rest| rest.strip_prefix(' '))
            .and_then(|n| n.parse::<u32>().ok())
            .filter(|n| *n >= 2);
        if let Some(n) = slot {
            out.push((n, c.id));
        }
    }
    out.sort();
    // Slots are made one after another; a gap means the rest is someone else's naming
    // ("Incidents 2024"), not overflow.
    let mut last = 1;
    out.retain(|(n, _)| {
        let next = *n <= last + 1;
        if next {
            last = *n;
        }
        next
    });
    out
}

fn children(list: &[GuildChannel], category: ChannelId) -> usize {
    list.iter()
        .filter(|c| c.parent_id == Some(category))
        .count()
}

/// Where in `family` the next channel goes: a category with room, or the slot to make.
enum Slot {
    Room(ChannelId),
    Make(u32),
}

fn slot(list: &[GuildChannel], family: &[(u32, ChannelId)]) -> Slot {
    match family
        .iter()
        .find(|(_, c)| children(list, *c) < CATEGORY_MAX)
    {
        Some((_, c)) => Slot::Room(*c),
        None => Slot::Make(family.last().map_or(1, |(n, _)| n + 1)),
    }
}

type Seen<'a> = tokio::sync::MutexGuard<'a, Option<(Instant, Vec<GuildChannel>)>>;

impl DiscordChat {
    fn guild(&self) -> Result<GuildId, ChatError> {
        self.config
            .discord
            .guild_id
            .map(GuildId::new)
            .ok_or_else(|| ChatError::NoPlace("[discord] guild_id is not set.".into()))
    }

    async fn list(&self, guild: GuildId) -> Result<Vec<GuildChannel>, ChatError> {
        let map = self
            .call("list the server's channels", || guild.channels(&self.http))
            .await?;
        let mut v: Vec<GuildChannel> = map.into_values().collect();
        v.sort_by_key(|c| c.id);
        Ok(v)
    }

    /// The channels as last seen, read again when too old or when `force`d.
    async fn channels<'a>(
        &self,
        seen: &'a mut Seen<'_>,
        guild: GuildId,
        force: bool,
    ) -> Result<&'a mut Vec<GuildChannel>, ChatError> {
        let stale = match seen.as_ref() {
            Some((at, _)) => force || at.elapsed() > FRESH_FOR,
            None => true,
        };
        if stale {
            let list = self.list(guild).await?;
            **seen = Some((Instant::now(), list));
        }
        Ok(&mut seen.as_mut().expect("just filled").1)
    }

    /// Makes an incident's text channel in the incident category or the first of its overflow
    /// categories with room, making the next overflow category when all are full and room in
    /// the server when it is full.
    pub(super) async fn create_channel_place(
        &self,
        name: &str,
        topic: &str,
    ) -> Result<Place, ChatError> {
        let guild = self.guild()?;
        let mut seen = self.places.seen.lock().await;
        let mut force = false;
        // A second round only after Discord said the picture was wrong.
        for _ in 0..2 {
            let list = self.channels(&mut seen, guild, force).await?;
            let parent = match self.config.discord.incident_category_id {
                None => None,
                Some(cat) => Some(self.room_in_family(guild, list, cat, None).await?),
            };
            self.make_room(guild, list, 1).await?;
            let mut b = CreateChannel::new(name)
                .kind(ChannelType::Text)
                .topic(topic);
            if let Some(p) = parent {
                b = b.category(p);
            }
            let same = |c: &GuildChannel| {
                c.kind == ChannelType::Text
                    && c.parent_id == parent
                    && c.topic.as_deref() == Some(topic)
            };
            match self
                .create_once(guild, list, b, "create channel", same)
                .await
            {
                Ok(c) => {
                    return Ok(Place {
                        channel: c.id.get(),
                        name: c.name.clone(),
                        mention: format!("<#{}>", c.id.get()),
                    })
                }
                Err(Ok(r)) if !force && (r.server_full() || r.parent()) => {
                    tracing::info!(refusal = %r.text, "the server changed under the bot; looking again");
                    force = true;
                }
                Err(Ok(r)) => return Err(self.no_place(&r, parent)),
                Err(Err(e)) => return Err(e),
            }
        }
        Err(ChatError::NoPlace(server_full_text(
            self.config.discord.message_content,
        )))
    }

    /// Moves a resolved incident's channel into the archive family: `[discord]
    /// archive_category_id` and its overflow, or the bot's own "Incidents archive" categories.
    pub(super) async fn archive_channel(&self, channel: u64) -> Result<(), ChatError> {
        let guild = self.guild()?;
        let channel = ChannelId::new(channel);
        let mut seen = self.places.seen.lock().await;
        let mut force = false;
        for _ in 0..2 {
            let list = self.channels(&mut seen, guild, force).await?;
            let Some(current) = list.iter().find(|c| c.id == channel).map(|c| c.parent_id) else {
                // Deleted by someone: nothing left to put away.
                return Ok(());
            };
            let base = self.archive_base(guild, list).await?;
            if current.is_some_and(|p| family(list, &base).iter().any(|(_, c)| *c == p)) {
                return Ok(());
            }
            let target = self
                .room_in_family(guild, list, base.id.get(), Some(&base))
                .await?;
            let b = EditChannel::new().category(target);
            self.limiter.until_ready().await;
            match channel.edit(&self.http, b).await {
                Ok(moved) => {
                    if let Some(c) = list.iter_mut().find(|c| c.id == channel) {
                        *c = moved;
                    }
                    return Ok(());
                }
                Err(e) => {
                    let r = Refusal::of(&e);
                    if r.code == Some(10003) {
                        // Deleted by someone since the bot last looked: nothing left to put away.
                        list.retain(|c| c.id != channel);
                        return Ok(());
                    }
                    if !force && r.parent() {
                        force = true;
                        continue;
                    }
                    if r.forbidden() {
                        return Err(ChatError::NoPlace(forbidden_text(&format!(
                            "<#{channel}> or <#{target}>"
                        ))));
                    }
                    // Moving again is harmless: the scheduler retries with backoff.
                    return Err(match r.status {
                        Some(s) if s < 500 && s != 429 => ChatError::Refused(r.text),
                        _ => ChatError::Unavailable(r.text),
                    });
                }
            }
        }
        Err(ChatError::Refused(
            "the archive category stays full after a fresh look".into(),
        ))
    }

    /// The base of the archive family: the configured one, else the oldest category named
    /// [`ARCHIVE_NAME`], made (private like the incident category) when there is none.
    async fn archive_base(
        &self,
        guild: GuildId,
        list: &mut Vec<GuildChannel>,
    ) -> Result<GuildChannel, ChatError> {
        if let Some(id) = self.config.discord.archive_category_id {
            return list
                .iter()
                .find(|c| c.id.get() == id && c.kind == ChannelType::Category)
                .cloned()
                .ok_or_else(|| {
                    ChatError::NoPlace(format!(
                        "[discord] archive_category_id {id} is not a category of this server: \
                         set it to one, or leave it out and the bot makes \"{ARCHIVE_NAME}\"."
                    ))
                });
        }
        if let Some(c) = list
            .iter()
            .find(|c| c.kind == ChannelType::Category && c.name == ARCHIVE_NAME)
        {
            return Ok(c.clone());
        }
        let like = self
            .config
            .discord
            .incident_category_id
            .and_then(|id| list.iter().find(|c| c.id.get() == id).cloned());
        self.make_category(guild, list, ARCHIVE_NAME.to_string(), like.as_ref())
            .await
    }

    /// A category of the family based at `base` with room for one more channel, making the
    /// next overflow category (same overwrites, placed after the base) when all are full.
    async fn room_in_family(
        &self,
        guild: GuildId,
        list: &mut Vec<GuildChannel>,
        base: u64,
        base_channel: Option<&GuildChannel>,
    ) -> Result<ChannelId, ChatError> {
        let base = match base_channel {
            Some(b) => b.clone(),
            None => list
                .iter()
                .find(|c| c.id.get() == base && c.kind == ChannelType::Category)
                .cloned()
                .ok_or_else(|| {
                    ChatError::NoPlace(format!(
                        "[discord] incident_category_id {base} is not a category of this server: \
                         set it to the id of the category incidents go in (right-click it with \
                         Developer Mode on → Copy ID)."
                    ))
                })?,
        };
        let fam = family(list, &base);
        match slot(list, &fam) {
            Slot::Room(c) => Ok(c),
            Slot::Make(n) => {
                // The new category and the channel that goes in it.
                self.make_room(guild, list, 2).await?;
                let c = self
                    .make_category(guild, list, format!("{} {n}", base.name), Some(&base))
                    .await?;
                tracing::info!(category = %c.id, name = %c.name, "made an overflow category");
                Ok(c.id)
            }
        }
    }

    async fn make_category(
        &self,
        guild: GuildId,
        list: &mut Vec<GuildChannel>,
        name: String,
        like: Option<&GuildChannel>,
    ) -> Result<GuildChannel, ChatError> {
        self.make_room(guild, list, 1).await?;
        let mut b = CreateChannel::new(name.clone()).kind(ChannelType::Category);
        if let Some(like) = like {
            // The same overwrites keep private incidents private in their new home.
            let overwrites: Vec<PermissionOverwrite> = like.permission_overwrites.clone();
            b = b
                .permissions(overwrites)
                .position(like.position.saturating_add(1));
        }
        let same = |c: &GuildChannel| c.kind == ChannelType::Category && c.name == name;
        match self
            .create_once(guild, list, b, "create category", same)
            .await
        {
            Ok(c) => Ok(c),
            Err(Ok(r)) => Err(self.no_place(&r, None)),
            Err(Err(e)) => Err(e),
        }
    }

    /// One create, never sent twice blind: after a timeout or a 5xx the channel may exist even
    /// though its answer was lost, so the server's channels are read and searched for it
    /// before the create is sent again. `Err(Ok(_))` is Discord's refusal.
    async fn create_once(
        &self,
        guild: GuildId,
        list: &mut Vec<GuildChannel>,
        b: CreateChannel<'_>,
        what: &str,
        same: impl Fn(&GuildChannel) -> bool,
    ) -> Result<GuildChannel, Result<Refusal, ChatError>> {
        let known: HashSet<ChannelId> = list.iter().map(|c| c.id).collect();
        let mut delay = Duration::from_millis(500);
        for attempt in 1..=CREATE_ATTEMPTS {
            self.limiter.until_ready().await;
            let created = guild.create_channel(&self.http, b.clone());
            let e = match super::metered::metered(&self.telemetry, what, created).await {
                Ok(c) => {
                    list.push(c.clone());
                    return Ok(c);
                }
                Err(e) => e,
            };
            let r = Refusal::of(&e);
            let lost = matches!(r.status, Some(500..=599)) || outgoing::is_timeout(&e);
            if !(lost || r.status == Some(429)) || attempt == CREATE_ATTEMPTS {
                tracing::warn!(what, status = ?r.status, error = %r.text, "Discord did not create");
                return Err(if lost || r.status == Some(429) {
                    Err(ChatError::Unavailable(format!("{what}: {}", r.text)))
                } else {
                    Ok(r)
                });
            }
            tracing::info!(what, status = ?r.status, attempt, "no answer to a create; looking before trying again");
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(8));
            if lost {
                *list = self.list(guild).await.map_err(Err)?;
                if let Some(c) = list.iter().find(|c| !known.contains(&c.id) && same(c)) {
                    tracing::info!(what, channel = %c.id, "the create had been done; using it");
                    return Ok(c.clone());
                }
            }
        }
        unreachable!("the loop returns on its last attempt")
    }

    /// Turns Discord's refusal of a place into what a responder can fix.
    fn no_place(&self, r: &Refusal, parent: Option<ChannelId>) -> ChatError {
        if r.forbidden() {
            let place = parent.map_or("the server".to_string(), |p| format!("<#{p}>"));
            return ChatError::NoPlace(forbidden_text(&place));
        }
        if r.server_full() {
            return ChatError::NoPlace(server_full_text(self.config.discord.message_content));
        }
        if r.parent() {
            return ChatError::NoPlace(format!(
                "Discord refused the category{}: {}. Check [discord] incident_category_id.",
                parent.map_or(String::new(), |p| format!(" <#{p}>")),
                r.text
            ));
        }
        ChatError::Refused(r.text.clone())
    }

    /// Makes room for `need` more channels in a full server by removing the oldest archived
    /// incident channels, each only once its whole history is in the store.
    async fn make_room(
        &self,
        guild: GuildId,
        list: &mut Vec<GuildChannel>,
        need: usize,
    ) -> Result<(), ChatError> {
        if list.len() + need <= SERVER_MAX {
            return Ok(());
        }
        // Removing cannot be undone: count again first, people may have made room meanwhile.
        *list = self.list(guild).await?;
        let over = (list.len() + need).saturating_sub(SERVER_MAX);
        if over == 0 {
            return Ok(());
        }
        let removed = self.prune(list, over).await;
        if removed < over {
            tracing::warn!(
                channels = list.len(),
                removed,
                "the server is full and no archived incident channel can be removed"
            );
            return Err(ChatError::NoPlace(server_full_text(
                self.config.discord.message_content,
            )));
        }
        Ok(())
    }

    /// Removes up to `n` archived incident channels, oldest first; returns how many. The store
    /// is asked about each text channel, a lookup by key, which for 500 is quick.
    async fn prune(&self, list: &mut Vec<GuildChannel>, n: usize) -> usize {
        let Some(app) = self.places.app.get() else {
            return 0;
        };
        if !self.config.discord.message_content {
            // Without message text the record would keep only who spoke when: the channel
            // itself is then the only full copy, and stays.
            tracing::warn!("the server is full; archived channels are not removed without [discord] message_content");
            return 0;
        }
        // The archive family holds the channels the bot put away; a resolved incident's channel
        // whose archival is due (one resolved before archiving was on, or while the scheduler
        // was behind) may go as well.
        let base = match self.config.discord.archive_category_id {
            Some(id) => list.iter().find(|c| c.id.get() == id),
            None => list
                .iter()
                .find(|c| c.kind == ChannelType::Category && c.name == ARCHIVE_NAME),
        };
        let archive: HashSet<ChannelId> = base
            .map(|b| family(list, b).into_iter().map(|(_, c)| c).collect())
            .unwrap_or_default();
        // A channel with posts still waiting to go to it stays until they have: removing it
        // would lose them (the opening post of an incident resolved within its first minute).
        let waiting: HashSet<u64> = match app.store.outbox() {
            Ok(jobs) => jobs
                .iter()
                .filter_map(|j| match j.kind {
                    crate::store::JobKind::Post { channel, .. } => Some(channel),
                    _ => None,
                })
                .collect(),
            Err(e) => {
                tracing::warn!(error = %e, "the outbox cannot be read; no channel is removed");
                return 0;
            }
        };
        let candidates: Vec<(ChannelId, bool)> = list
            .iter()
            .filter(|c| c.kind == ChannelType::Text && !waiting.contains(&c.id.get()))
            .map(|c| (c.id, c.parent_id.is_some_and(|p| archive.contains(&p))))
            .collect();
        let bot_user = self.bot_user().await;
        let mut removed = 0;
        for (channel, archived) in candidates {
            if removed == n {
                break;
            }
            match self.remove(app, channel, archived, bot_user).await {
                Ok(true) => {
                    list.retain(|c| c.id != channel);
                    removed += 1;
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(channel = %channel, error = %e, "could not remove an archived channel");
                }
            }
        }
        removed
    }

    async fn bot_user(&self) -> Option<u64> {
        if let Some(u) = self.places.bot_user.get() {
            return Some(*u);
        }
        let me = self
            .call("read the bot's user", || self.http.get_current_user())
            .await
            .ok()?;
        let _ = self.places.bot_user.set(me.id.get());
        Some(me.id.get())
    }

    /// Deletes one archived incident channel after reading all of it into the store, and says
    /// so on the incident's timeline. `Ok(false)`: not an incident's, or not all of it read.
    async fn remove(
        &self,
        app: &App,
        channel: ChannelId,
        archived: bool,
        bot_user: Option<u64>,
    ) -> Result<bool, ChatError> {
        let store_err = |e: crate::store::StoreError| ChatError::Refused(e.to_string());
        let Some(id) = app
            .store
            .incident_by_channel(channel.get())
            .map_err(store_err)?
        else {
            return Ok(false);
        };
        let Some(inc) = app.store.incident(id).map_err(store_err)? else {
            return Ok(false);
        };
        if inc.is_open() || inc.channel != Some(channel.get()) {
            return Ok(false);
        }
        let due = |after: &crate::config::Dur| {
            let after = chrono::Duration::from_std(after.0).unwrap_or(chrono::Duration::MAX);
            inc.times
                .resolved
                .is_some_and(|at| at.checked_add_signed(after).is_some_and(|d| d <= app.now()))
        };
        if !archived && !self.config.discord.archive_after.as_ref().is_some_and(due) {
            return Ok(false);
        }
        let read =
            capture::backfill_reporting(app, &self.http, &self.limiter, id, bot_user, |_| async {})
                .await;
        if let Some(why) = read.stopped {
            tracing::info!(incident = %id, channel = %channel, why, "history not all read; the channel stays");
            return Ok(false);
        }
        self.call("delete an archived channel", || channel.delete(&self.http))
            .await?;
        let kept = app.store.messages(id).map_err(store_err)?.len();
        let now = app.now();
        app.record(id, &Actor::System, now, |_| {
            Ok(vec![EventKind::ChannelRemoved {
                channel: channel.get(),
                messages: kept,
            }])
        })
        .map_err(|e| ChatError::Refused(e.to_string()))?;
        app.store.flush().await.map_err(store_err)?;
        tracing::info!(incident = %id, channel = %channel, messages = kept, "removed an archived channel to make room");
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn channel(id: u64, kind: ChannelType, name: &str, parent: Option<u64>) -> GuildChannel {
        let mut c = GuildChannel::default();
        c.id = ChannelId::new(id);
        c.kind = kind;
        c.name = name.into();
        c.parent_id = parent.map(ChannelId::new);
        c
    }

    /// An error as serenity makes it from Discord's answer.
    async fn discord_said(status: u16, body: serde_json::Value) -> serenity::Error {
        use serenity::http::{ErrorResponse, HttpError};
        let answer = axum::http::Response::builder()
            .status(status)
            .body(body.to_string())
            .unwrap();
        let r =
            ErrorResponse::from_response(reqwest::Response::from(answer), reqwest::Method::POST)
                .await;
        serenity::Error::Http(HttpError::UnsuccessfulRequest(r))
    }

    fn form_error(field: &str) -> serde_json::Value {
        serde_json::json!({
            "code": 50035,
            "message": "Invalid Form Body",
            "errors": {field: {"_errors": [{
                "code": "CHANNEL_PARENT_MAX_CHANNELS",
                "message": "Maximum number of channels in category reached (50)"
            }]}}
        })
    }

    #[tokio::test]
    async fn refusals_say_what_they_are() {
        let full = serde_json::json!({"code": 30013, "message": "Maximum number of guild channels reached (500)"});
        let full = Refusal::of(&discord_said(400, full).await);
        assert!(full.server_full() && !full.parent() && !full.forbidden());
        let parent = Refusal::of(&discord_said(400, form_error("parent_id")).await);
        assert!(parent.parent() && !parent.server_full());
        assert!(
            parent
                .text
                .contains("parent_id: CHANNEL_PARENT_MAX_CHANNELS"),
            "{}",
            parent.text
        );
        let other_field = Refusal::of(&discord_said(400, form_error("name")).await);
        assert!(!other_field.parent());
        let denied = serde_json::json!({"code": 50013, "message": "Missing Permissions"});
        assert!(Refusal::of(&discord_said(403, denied).await).forbidden());
    }

    #[test]
    fn overflow_categories_are_found_by_name_and_slot() {
        let base = channel(1, ChannelType::Category, "Incidents", None);
        let list = vec![
            base.clone(),
            channel(5, ChannelType::Category, "Incidents 3", None),
            channel(4, ChannelType::Category, "Incidents 2", None),
            channel(6, ChannelType::Category, "Incidents archive", None),
            channel(7, ChannelType::Text, "Incidents 4", None),
            channel(8, ChannelType::Category, "Incidents 1", None),
            channel(9, ChannelType::Category, "Incidents 2024", None),
        ];
        let fam = family(&list, &base);
        assert_eq!(
            fam,
            vec![
                (1, ChannelId::new(1)),
                (2, ChannelId::new(4)),
                (3, ChannelId::new(5))
            ]
        );
    }

    #[test]
    fn the_first_category_with_room_is_used_else_the_next_slot_is_made() {
        let base = channel(1, ChannelType::Category, "Incidents", None);
        let mut list = vec![base.clone()];
        for i in 0..CATEGORY_MAX as u64 {
            list.push(channel(100 + i, ChannelType::Text, "inc", Some(1)));
        }
        assert!(matches!(slot(&list, &family(&list, &base)), Slot::Make(2)));
        list.push(channel(2, ChannelType::Category, "Incidents 2", None));
        assert!(matches!(slot(&list, &family(&list, &base)), Slot::Room(c) if c.get() == 2));
        list.retain(|c| c.id.get() != 100);
        assert!(matches!(slot(&list, &family(&list, &base)), Slot::Room(c) if c.get() == 1));
    }
}
