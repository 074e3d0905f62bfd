//! Threads and forums as Discord documents them: forum posts and tags, archived and locked threads, the active-thread cap, thread members.

use super::validate::{ApiError, FormErrors, MessageTarget};
use super::world::{
    id_str, iso, now_ms, parse_id, ChannelRec, NewMessage, ThreadMeta, World, INTENT_GUILDS,
    INTENT_GUILD_MEMBERS,
};
use super::{UploadedFile, BOT_USER_ID};
use serde_json::{json, Value};

/// Discord's cap on active (unarchived) threads in a server.
pub const MAX_ACTIVE_THREADS: usize = 1000;
pub const PERM_MANAGE_THREADS: u64 = 1 << 34;
/// The only `auto_archive_duration` values Discord takes, in minutes.
pub const AUTO_ARCHIVE: [u64; 4] = [60, 1440, 4320, 10080];
const AUTO_ARCHIVE_NAMES: [&str; 4] = ["60", "1440", "4320", "10080"];
/// At most 20 tags on a forum, 5 on a post, 20 characters in a tag's name.
const MAX_FORUM_TAGS: usize = 20;
const MAX_POST_TAGS: usize = 5;
const MAX_TAG_NAME: usize = 20;
const FORUM: u8 = 15;
/// The channel flag of a forum whose posts must carry a tag.
const REQUIRE_TAG: u64 = 1 << 4;

impl World {
    pub fn active_threads(&self) -> usize {
        self.channels
            .values()
            .filter(|c| c.thread.as_ref().is_some_and(|t| !t.archived))
            .count()
    }

    /// 160006 when one more active thread would pass the server's cap.
    pub fn check_thread_cap(&self) -> Result<(), ApiError> {
        if self.active_threads() >= self.max_active_threads {
            return Err(ApiError::new(
                400,
                160006,
                "Maximum number of active threads reached",
            ));
        }
        Ok(())
    }

    fn thread_meta(&self, channel: u64) -> Option<&ThreadMeta> {
        self.channels.get(&channel)?.thread.as_ref()
    }

    /// "Only active threads can be manipulated": edits, reactions, pins and members in an
    /// archived thread get 50083. Deleting messages stays allowed.
    pub fn refuse_if_archived(&self, channel: u64) -> Result<(), ApiError> {
        match self.thread_meta(channel) {
            Some(t) if t.archived => Err(ApiError::archived_thread()),
            _ => Ok(()),
        }
    }

    /// Before a message lands in a thread. Sending into an archived thread unarchives it, unless
    /// a moderator locked it; a locked thread takes messages only from those with Manage Threads.
    pub fn check_thread_post(&self, channel: u64, author: u64) -> Result<(), ApiError> {
        let Some(t) = self.thread_meta(channel) else {
            return Ok(());
        };
        if t.archived && t.locked {
            return Err(ApiError::archived_thread());
        }
        if t.locked && self.member_permissions(author) & PERM_MANAGE_THREADS == 0 {
            return Err(ApiError::new(400, 160005, "Thread is locked"));
        }
        if t.archived {
            self.check_thread_cap()?;
        }
        Ok(())
    }

    /// PATCH on a thread: it must be active or be unarchived by the same request; unarchiving a
    /// locked thread takes Manage Threads; an unarchive counts against the active-thread cap.
    pub fn check_thread_patch(&self, channel: u64, body: &Value) -> Result<(), ApiError> {
        let Some(t) = self.thread_meta(channel) else {
            return Ok(());
        };
        if !t.archived {
            return Ok(());
        }
        if body.get("archived").and_then(Value::as_bool) != Some(false) {
            return Err(ApiError::archived_thread());
        }
        let locked = body
            .get("locked")
            .and_then(Value::as_bool)
            .unwrap_or(t.locked);
        if (t.locked || locked) && self.bot_permissions() & PERM_MANAGE_THREADS == 0 {
            return Err(ApiError::new(403, 50013, "Missing Permissions"));
        }
        self.check_thread_cap()
    }

    pub fn check_auto_archive(body: &Value, errs: &mut FormErrors) -> u64 {
        match body.get("auto_archive_duration").filter(|v| !v.is_null()) {
            None => 4320,
            Some(d) => match d.as_u64().filter(|d| AUTO_ARCHIVE.contains(d)) {
                Some(d) => d,
                None => {
                    errs.choices("auto_archive_duration", &AUTO_ARCHIVE_NAMES);
                    4320
                }
            },
        }
    }

    /// A thread's record: active, owned by `owner`, with the bot as its only member.
    pub fn thread_rec(
        &mut self,
        id: u64,
        kind: u8,
        name: &str,
        parent: u64,
        auto_archive_duration: u64,
        owner: u64,
    ) -> ChannelRec {
        let now = iso(now_ms());
        self.thread_members.insert(id, vec![owner]);
        ChannelRec {
            id,
            kind,
            name: name.to_string(),
            parent_id: Some(parent),
            topic: None,
            position: 0,
            nsfw: false,
            rate_limit_per_user: 0,
            last_message_id: None,
            last_pin_timestamp: None,
            thread: Some(ThreadMeta {
                archived: false,
                locked: false,
                auto_archive_duration,
                owner_id: owner,
                create_timestamp: now.clone(),
                archive_timestamp: now,
                message_count: 0,
                invitable: true,
            }),
            renames: vec![],
        }
    }

    /// Tag ids in `v` (an `applied_tags` list) checked against the forum's tags.
    pub fn check_applied_tags(
        &self,
        forum: u64,
        v: Option<&Value>,
        errs: &mut FormErrors,
    ) -> Option<Vec<u64>> {
        let v = v.filter(|v| !v.is_null())?;
        let Some(list) = v.as_array() else {
            errs.add("applied_tags", "BASE_TYPE_LIST", "Must be a list.");
            return None;
        };
        if list.len() > MAX_POST_TAGS {
            errs.max_len("applied_tags", MAX_POST_TAGS);
        }
        let known: Vec<u64> = self
            .forum_tags
            .get(&forum)
            .map(|t| t.iter().filter_map(|t| parse_id(t.get("id"))).collect())
            .unwrap_or_default();
        let mut ids = vec![];
        for (n, item) in list.iter().enumerate() {
            match parse_id(Some(item)).filter(|id| known.contains(id)) {
                Some(id) => ids.push(id),
                None => errs.add(
                    format!("applied_tags.{n}"),
                    "TAG_INVALID",
                    "Tag is not available in this channel",
                ),
            }
        }
        Some(ids)
    }

    /// A forum's new `available_tags`: tags with a known id keep it, others get a new one.
    pub fn check_available_tags(
        &mut self,
        forum: u64,
        v: &Value,
        errs: &mut FormErrors,
    ) -> Result<Vec<Value>, ApiError> {
        let list = v.as_array().cloned().unwrap_or_default();
        if list.len() > MAX_FORUM_TAGS {
            return Err(ApiError::new(
                400,
                30048,
                "Maximum number of tags in a forum channel has been reached",
            ));
        }
        let mut names: Vec<&str> = list
            .iter()
            .filter_map(|t| t.get("name").and_then(Value::as_str))
            .collect();
        names.sort_unstable();
        if names.windows(2).any(|w| w[0] == w[1]) {
            return Err(ApiError::new(400, 40061, "Tag names must be unique"));
        }
        let existing: Vec<u64> = self
            .forum_tags
            .get(&forum)
            .map(|t| t.iter().filter_map(|t| parse_id(t.get("id"))).collect())
            .unwrap_or_default();
        let mut out = vec![];
        for (n, t) in list.iter().enumerate() {
            errs.check_str(
                t.get("name"),
                &format!("available_tags.{n}.name"),
                1,
                MAX_TAG_NAME,
                true,
            );
            let id = parse_id(t.get("id"))
                .filter(|id| existing.contains(id))
                .unwrap_or_else(|| self.next_id());
            out.push(json!({
                "id": id_str(id),
                "name": t.get("name").and_then(Value::as_str).unwrap_or(""),
                "moderated": t.get("moderated").and_then(Value::as_bool).unwrap_or(false),
                "emoji_id": t.get("emoji_id").cloned().unwrap_or(Value::Null),
                "emoji_name": t.get("emoji_name").cloned().unwrap_or(Value::Null),
            }));
        }
        Ok(out)
    }

    /// POST /channels/{forum}/threads: a post is a public thread and its starter message, which
    /// shares the thread's id.
    pub fn create_forum_post(
        &mut self,
        forum: u64,
        body: &Value,
        files: &[UploadedFile],
    ) -> Result<Value, ApiError> {
        let mut errs = FormErrors::default();
        errs.check_str(body.get("name"), "name", 1, 100, true);
        let archive = World::check_auto_archive(body, &mut errs);
        let message = body.get("message").filter(|m| m.is_object());
        if message.is_none() && files.is_empty() {
            errs.required("message");
        }
        let tags = self
            .check_applied_tags(forum, body.get("applied_tags"), &mut errs)
            .unwrap_or_default();
        errs.into_result()?;
        if tags.is_empty() && self.forums_requiring_tags.contains(&forum) {
            return Err(ApiError::new(
                400,
                40067,
                "A tag is required to create a forum post in this channel",
            ));
        }
        self.check_thread_cap()?;
        let id = self.next_id();
        let name = body["name"].as_str().unwrap_or("").to_string();
        let mut rec = self.thread_rec(id, 11, &name, forum, archive, BOT_USER_ID);
        rec.rate_limit_per_user = body
            .get("rate_limit_per_user")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        self.channels.insert(id, rec);
        self.applied_tags.insert(id, tags);
        let empty = json!({});
        let starter = self.create_message_with_id(
            NewMessage {
                channel_id: id,
                author_id: BOT_USER_ID,
                body: message.unwrap_or(&empty),
                files,
                target: MessageTarget::Channel,
                kind: 0,
                interaction: None,
                extra_flags: 0,
            },
            Some(id),
        );
        let starter = match starter {
            Ok(m) => m,
            Err(e) => {
                // Nothing is made when the starter message is refused.
                self.channels.remove(&id);
                self.applied_tags.remove(&id);
                self.thread_members.remove(&id);
                return Err(e);
            }
        };
        if let Some(f) = self.channels.get_mut(&forum) {
            f.last_message_id = Some(id);
        }
        let v = self.channel_json(&self.channels[&id]);
        let mut event = v.clone();
        event["newly_created"] = json!(true);
        self.dispatch("THREAD_CREATE", event, Some(INTENT_GUILDS));
        let mut out = v;
        out["message"] = self.message_for_bot(starter, self.privileged_intents);
        Ok(out)
    }

    /// PUT /channels/{thread}/thread-members/{user}: the thread must be active.
    pub fn add_thread_member(&mut self, thread: u64, user: u64) -> Result<(), ApiError> {
        if self.thread_meta(thread).is_none() {
            return Err(ApiError::wrong_channel_type());
        }
        if !self.members.contains_key(&user) {
            return Err(ApiError::unknown_member());
        }
        self.refuse_if_archived(thread)?;
        let members = self.thread_members.entry(thread).or_default();
        if members.contains(&user) {
            return Ok(());
        }
        members.push(user);
        let count = members.len();
        self.dispatch(
            "THREAD_MEMBERS_UPDATE",
            json!({
                "id": id_str(thread),
                "guild_id": id_str(super::GUILD_ID),
                "member_count": count,
                "added_members": [{
                    "id": id_str(thread),
                    "user_id": id_str(user),
                    "join_timestamp": iso(now_ms()),
                    "flags": 0,
                }],
            }),
            Some(INTENT_GUILD_MEMBERS),
        );
        Ok(())
    }

    /// Archives (and maybe locks) a thread as Discord's inactivity timer or a moderator would.
    pub fn archive_thread(&mut self, thread: u64, locked: bool) {
        let c = self
            .channels
            .get_mut(&thread)
            .unwrap_or_else(|| panic!("no channel {thread}"));
        let t = c
            .thread
            .as_mut()
            .unwrap_or_else(|| panic!("{thread} is not a thread"));
        t.archived = true;
        t.locked = locked;
        t.archive_timestamp = iso(now_ms());
        let v = self.channel_json(&self.channels[&thread]);
        self.dispatch("THREAD_UPDATE", v, Some(INTENT_GUILDS));
    }

    /// `n` active threads under `parent` that nobody is told about, as if the server's members
    /// had opened them before the bot looked.
    pub fn fill_active_threads(&mut self, parent: u64, n: usize) -> Vec<u64> {
        (0..n)
            .map(|i| {
                let id = self.next_id();
                let rec =
                    self.thread_rec(id, 11, &format!("chat {i}"), parent, 10080, super::OWNER_ID);
                self.channels.insert(id, rec);
                id
            })
            .collect()
    }

    /// What a forum or forum post adds to its channel object.
    pub fn forum_fields(&self, c: &ChannelRec, v: &mut Value) {
        if c.kind == FORUM {
            v["available_tags"] = json!(self.forum_tags.get(&c.id).cloned().unwrap_or_default());
            v["default_reaction_emoji"] = Value::Null;
            v["default_sort_order"] = Value::Null;
            v["default_forum_layout"] = json!(0);
            v["default_thread_rate_limit_per_user"] = json!(0);
            if self.forums_requiring_tags.contains(&c.id) {
                v["flags"] = json!(REQUIRE_TAG);
            }
        }
        let in_forum = c
            .parent_id
            .and_then(|p| self.channels.get(&p))
            .is_some_and(|p| p.kind == FORUM);
        if c.is_thread() && in_forum {
            let tags = self.applied_tags.get(&c.id).cloned().unwrap_or_default();
            v["applied_tags"] = json!(tags.into_iter().map(id_str).collect::<Vec<_>>());
        }
    }

    pub fn is_forum(&self, channel: u64) -> bool {
        self.channels.get(&channel).is_some_and(|c| c.kind == FORUM)
    }
}
