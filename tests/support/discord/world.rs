//! The one guild the fake serves — users, roles, channels, messages, interactions — kept as Discord objects.

use super::gateway::GatewayState;
use super::ratelimit::RateState;
use super::validate::{
    check_message_fields, ApiError, FormErrors, MessageTarget, FLAG_EPHEMERAL,
    FLAG_IS_COMPONENTS_V2, FLAG_IS_VOICE_MESSAGE, FLAG_LOADING, FLAG_SUPPRESS_EMBEDS,
    FLAG_SUPPRESS_NOTIFICATIONS,
};
use super::{GatewayFrame, Pings, Request, UploadedFile, APPLICATION_ID, BOT_USER_ID, GUILD_ID};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const DISCORD_EPOCH_MS: u64 = 1_420_070_400_000;

pub const PERM_ADMINISTRATOR: u64 = 1 << 3;
pub const PERM_MENTION_EVERYONE: u64 = 1 << 17;
/// What a new guild's @everyone role gets: read, write, react, use commands, threads.
pub const EVERYONE_PERMISSIONS: u64 = (1 << 0)
    | (1 << 6)
    | (1 << 10)
    | (1 << 11)
    | (1 << 14)
    | (1 << 15)
    | (1 << 16)
    | (1 << 18)
    | (1 << 20)
    | (1 << 21)
    | (1 << 26)
    | (1 << 31)
    | (1 << 35)
    | (1 << 38);
/// The bot's managed role: what the README's invite with Mention Everyone gives (view, manage
/// channels, send, embed, attach, history, mention everyone, manage threads, create public
/// threads, send in threads), and nothing more.
pub const BOT_ROLE_PERMISSIONS: u64 = (1 << 4)
    | (1 << 10)
    | (1 << 11)
    | (1 << 14)
    | (1 << 15)
    | (1 << 16)
    | (1 << 17)
    | (1 << 34)
    | (1 << 35)
    | (1 << 38);

pub const INTENT_GUILDS: u64 = 1 << 0;
pub const INTENT_GUILD_MEMBERS: u64 = 1 << 1;
pub const INTENT_GUILD_PRESENCES: u64 = 1 << 8;
pub const INTENT_GUILD_MESSAGES: u64 = 1 << 9;
pub const INTENT_GUILD_MESSAGE_REACTIONS: u64 = 1 << 10;
pub const INTENT_MESSAGE_CONTENT: u64 = 1 << 15;
pub const PRIVILEGED_INTENTS: u64 =
    INTENT_GUILD_MEMBERS | INTENT_GUILD_PRESENCES | INTENT_MESSAGE_CONTENT;

/// Largest file Discord takes in a guild without boosts.
pub const ATTACHMENT_SIZE_LIMIT: usize = 10 * 1024 * 1024;

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as u64
}

/// ISO 8601 in the form Discord writes: `2017-03-13T19:19:14.040000+00:00`.
pub fn iso(ms: u64) -> String {
    chrono::DateTime::from_timestamp_millis(ms as i64)
        .expect("timestamp in range")
        .format("%Y-%m-%dT%H:%M:%S%.6f+00:00")
        .to_string()
}

pub fn snowflake_ms(id: u64) -> u64 {
    (id >> 22) + DISCORD_EPOCH_MS
}

pub fn id_str(id: u64) -> Value {
    Value::String(id.to_string())
}

/// Reads a snowflake that Discord accepts as a string or a number.
pub fn parse_id(v: Option<&Value>) -> Option<u64> {
    match v? {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_u64(),
        _ => None,
    }
}

#[derive(Clone, Debug)]
pub struct UserRec {
    pub id: u64,
    pub name: String,
    pub bot: bool,
}

#[derive(Clone, Debug)]
pub struct MemberRec {
    pub user: u64,
    pub roles: Vec<u64>,
    pub joined_at: String,
}

#[derive(Clone, Debug)]
pub struct RoleRec {
    pub id: u64,
    pub name: String,
    pub position: u64,
    pub permissions: u64,
    pub mentionable: bool,
    pub bot_id: Option<u64>,
}

#[derive(Clone, Debug)]
pub struct ThreadMeta {
    pub archived: bool,
    pub locked: bool,
    pub auto_archive_duration: u64,
    pub owner_id: u64,
    pub create_timestamp: String,
    pub archive_timestamp: String,
    pub message_count: u64,
    pub invitable: bool,
}

#[derive(Clone, Debug)]
pub struct ChannelRec {
    pub id: u64,
    pub kind: u8,
    pub name: String,
    pub parent_id: Option<u64>,
    pub topic: Option<String>,
    pub position: u64,
    pub nsfw: bool,
    pub rate_limit_per_user: u64,
    pub last_message_id: Option<u64>,
    pub last_pin_timestamp: Option<String>,
    pub thread: Option<ThreadMeta>,
    /// When the name or topic changed, for Discord's two-per-ten-minutes rule.
    pub renames: Vec<Instant>,
}

impl ChannelRec {
    pub fn is_thread(&self) -> bool {
        self.thread.is_some()
    }
    /// Channel types that hold messages.
    pub fn is_textual(&self) -> bool {
        matches!(self.kind, 0 | 2 | 5 | 10 | 11 | 12 | 13)
    }
}

#[derive(Clone, Debug)]
pub struct ReactionRec {
    /// `name` for unicode emoji, `name:id` for custom ones: the URL form.
    pub key: String,
    pub users: Vec<u64>,
}

#[derive(Clone, Debug)]
pub struct MessageRec {
    pub obj: Value,
    pub channel_id: u64,
    pub author_id: u64,
    pub pings: Pings,
    pub nonce: Option<String>,
    pub created: Instant,
    pub ephemeral: bool,
    pub deleted: bool,
    pub files: Vec<(u64, UploadedFile)>,
    pub reactions: Vec<ReactionRec>,
    pub interaction: Option<u64>,
    /// When it was pinned (ms since the epoch), if it is.
    pub pinned_at: Option<u64>,
}

#[derive(Clone, Debug)]
pub struct AckRec {
    pub kind: u8,
    pub data: Value,
    pub files: Vec<UploadedFile>,
    pub latency: Duration,
    /// From the test creating the interaction (a burst is created all at once) to the callback.
    pub since_created: Duration,
}

#[derive(Clone, Debug)]
pub struct InteractionRec {
    pub id: u64,
    pub token: String,
    pub kind: u8,
    pub channel_id: u64,
    pub user_id: u64,
    /// When the test made the interaction, as a user's click would start Discord's clock.
    pub created: Instant,
    pub dispatched: Instant,
    /// Whether `dispatched` is the moment the frame first went onto a socket.
    pub on_socket: bool,
    pub payload: Value,
    /// The message a component sat on (component and component-modal interactions).
    pub source_message: Option<u64>,
    pub ack: Option<AckRec>,
    /// The message `@original` refers to, once there is one.
    pub original: Option<u64>,
    /// A deferred response whose loading message has not been filled in yet.
    pub loading: bool,
    /// When the user saw the answer: the callback with a message (or a modal, an update, a
    /// choice list), or for a deferral the first fill of its loading message.
    pub answered: Option<Instant>,
    pub followups: Vec<u64>,
    /// Past the 3 s deadline without an answer, or expired by a test.
    pub invalidated: bool,
    /// For a modal submit: the interaction that was answered with the modal.
    pub opener: Option<u64>,
}

impl InteractionRec {
    /// The deferral's loading message was filled in: the user sees the answer now.
    pub fn filled(&mut self) {
        if self.loading {
            self.answered.get_or_insert_with(Instant::now);
        }
        self.loading = false;
    }
}

/// What a message is, beyond its body, when it is created.
pub struct NewMessage<'a> {
    pub channel_id: u64,
    pub author_id: u64,
    pub body: &'a Value,
    pub files: &'a [UploadedFile],
    pub target: MessageTarget,
    pub kind: u64,
    pub interaction: Option<u64>,
    pub extra_flags: u64,
}

pub struct World {
    pub started: Instant,
    last_id: u64,
    pub users: BTreeMap<u64, UserRec>,
    pub members: BTreeMap<u64, MemberRec>,
    pub roles: BTreeMap<u64, RoleRec>,
    pub channels: BTreeMap<u64, ChannelRec>,
    pub messages: BTreeMap<u64, MessageRec>,
    /// Application commands; guild ones carry `guild_id`.
    pub commands: Vec<Value>,
    pub command_creates: usize,
    pub interactions: BTreeMap<u64, InteractionRec>,
    pub requests: Vec<Request>,
    pub frames: Vec<GatewayFrame>,
    pub gateway: GatewayState,
    pub limits: RateState,
    /// Privileged intents switched on for the application, as in the developer portal; none
    /// at first, as for a new application.
    pub privileged_intents: u64,
    pub interaction_deadline: Duration,
    /// How long an interaction's token works for webhook calls.
    pub interaction_token_lifetime: Duration,
    pub channel_rename_limit: bool,
    /// Tag objects of each forum channel.
    pub forum_tags: BTreeMap<u64, Vec<Value>>,
    /// Tag ids applied to each forum post.
    pub applied_tags: BTreeMap<u64, Vec<u64>>,
    /// Who is in each thread (its creator first).
    pub thread_members: BTreeMap<u64, Vec<u64>>,
    /// Forums with the REQUIRE_TAG flag: a new post must carry a tag.
    pub forums_requiring_tags: std::collections::BTreeSet<u64>,
    /// Discord's cap on active threads in a server.
    pub max_active_threads: usize,
    /// Each channel's `permission_overwrites`, by channel id (threads use their parent's).
    pub overwrites: BTreeMap<u64, Vec<super::perms::OverwriteRec>>,
    /// How long `enforce_nonce` dedupes (Discord: "the past few minutes").
    pub nonce_window: Duration,
}

impl World {
    pub fn new(
        gateway: GatewayState,
        limits: RateState,
        deadline: Duration,
        rename_limit: bool,
    ) -> World {
        let mut w = World {
            started: Instant::now(),
            last_id: 0,
            users: BTreeMap::new(),
            members: BTreeMap::new(),
            roles: BTreeMap::new(),
            channels: BTreeMap::new(),
            messages: BTreeMap::new(),
            commands: vec![],
            command_creates: 0,
            interactions: BTreeMap::new(),
            requests: vec![],
            frames: vec![],
            gateway,
            limits,
            privileged_intents: 0,
            interaction_deadline: deadline,
            interaction_token_lifetime: Duration::from_secs(15 * 60),
            channel_rename_limit: rename_limit,
            forum_tags: BTreeMap::new(),
            applied_tags: BTreeMap::new(),
            thread_members: BTreeMap::new(),
            forums_requiring_tags: Default::default(),
            max_active_threads: super::threads::MAX_ACTIVE_THREADS,
            overwrites: BTreeMap::new(),
            nonce_window: Duration::from_secs(180),
        };
        let joined = iso(now_ms() - 86_400_000);
        for (id, name, bot) in [
            (BOT_USER_ID, "sitrep", true),
            (super::OWNER_ID, "owner", false),
        ] {
            w.users.insert(
                id,
                UserRec {
                    id,
                    name: name.into(),
                    bot,
                },
            );
        }
        w.roles.insert(
            GUILD_ID,
            RoleRec {
                id: GUILD_ID,
                name: "@everyone".into(),
                position: 0,
                permissions: EVERYONE_PERMISSIONS,
                mentionable: false,
                bot_id: None,
            },
        );
        w.roles.insert(
            super::BOT_ROLE_ID,
            RoleRec {
                id: super::BOT_ROLE_ID,
                name: "sitrep".into(),
                position: 1,
                permissions: BOT_ROLE_PERMISSIONS,
                mentionable: false,
                bot_id: Some(BOT_USER_ID),
            },
        );
        w.members.insert(
            BOT_USER_ID,
            MemberRec {
                user: BOT_USER_ID,
                roles: vec![super::BOT_ROLE_ID],
                joined_at: joined.clone(),
            },
        );
        w.members.insert(
            super::OWNER_ID,
            MemberRec {
                user: super::OWNER_ID,
                roles: vec![],
                joined_at: joined,
            },
        );
        w.channels.insert(
            super::GENERAL_CHANNEL_ID,
            ChannelRec {
                id: super::GENERAL_CHANNEL_ID,
                kind: 0,
                name: "general".into(),
                parent_id: None,
                topic: None,
                position: 0,
                nsfw: false,
                rate_limit_per_user: 0,
                last_message_id: None,
                last_pin_timestamp: None,
                thread: None,
                renames: vec![],
            },
        );
        w
    }

    /// A fresh snowflake, strictly greater than every one handed out before.
    pub fn next_id(&mut self) -> u64 {
        let id = ((now_ms() - DISCORD_EPOCH_MS) << 22).max(self.last_id + 1);
        self.last_id = id;
        id
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    // ----- objects -----

    pub fn user_json(&self, id: u64) -> Value {
        let u = self.users.get(&id).cloned().unwrap_or(UserRec {
            id,
            name: format!("user{id}"),
            bot: false,
        });
        let mut v = json!({
            "id": id_str(u.id),
            "username": u.name,
            "global_name": if u.bot { Value::Null } else { Value::String(u.name.clone()) },
            "discriminator": "0",
            "avatar": null,
            "public_flags": 0,
            "flags": 0,
            "banner": null,
            "accent_color": null,
            "avatar_decoration_data": null,
            "collectibles": null,
            "primary_guild": null,
        });
        if u.bot {
            v["bot"] = json!(true);
        }
        v
    }

    pub fn member_permissions(&self, user: u64) -> u64 {
        let Some(m) = self.members.get(&user) else {
            return 0;
        };
        if user == super::OWNER_ID {
            return super::perms::PERM_ALL;
        }
        let mut perms = self.roles.get(&GUILD_ID).map_or(0, |r| r.permissions);
        for r in &m.roles {
            perms |= self.roles.get(r).map_or(0, |r| r.permissions);
        }
        if perms & PERM_ADMINISTRATOR != 0 {
            return super::perms::PERM_ALL;
        }
        perms
    }

    pub fn bot_permissions(&self) -> u64 {
        self.member_permissions(BOT_USER_ID)
    }

    /// A guild member object; `with_user` false gives the shape nested in messages and resolved data.
    pub fn member_json(&self, user: u64, with_user: bool, with_permissions: bool) -> Value {
        let m = self.members.get(&user);
        let mut v = json!({
            "roles": m.map(|m| m.roles.iter().map(|r| id_str(*r)).collect::<Vec<_>>()).unwrap_or_default(),
            "joined_at": m.map(|m| m.joined_at.clone()),
            "deaf": false,
            "mute": false,
            "flags": 0,
            "pending": false,
            "nick": null,
            "avatar": null,
            "banner": null,
            "premium_since": null,
            "communication_disabled_until": null,
            "unusual_dm_activity_until": null,
        });
        if with_user {
            v["user"] = self.user_json(user);
        }
        if with_permissions {
            v["permissions"] = json!(self.member_permissions(user).to_string());
        }
        v
    }

    pub fn role_json(&self, r: &RoleRec) -> Value {
        let mut tags = json!({});
        if let Some(bot) = r.bot_id {
            tags = json!({ "bot_id": id_str(bot) });
        }
        json!({
            "id": id_str(r.id),
            "name": r.name,
            "color": 0,
            "colors": { "primary_color": 0, "secondary_color": null, "tertiary_color": null },
            "hoist": false,
            "icon": null,
            "unicode_emoji": null,
            "position": r.position,
            "permissions": r.permissions.to_string(),
            "managed": r.bot_id.is_some(),
            "mentionable": r.mentionable,
            "flags": 0,
            "tags": tags,
        })
    }

    pub fn roles_json(&self) -> Vec<Value> {
        self.roles.values().map(|r| self.role_json(r)).collect()
    }

    pub fn channel_json(&self, c: &ChannelRec) -> Value {
        let mut v = json!({
            "id": id_str(c.id),
            "type": c.kind,
            "guild_id": id_str(GUILD_ID),
            "name": c.name,
            "parent_id": c.parent_id.map(id_str),
            "flags": 0,
        });
        if let Some(t) = &c.thread {
            v["owner_id"] = id_str(t.owner_id);
            v["last_message_id"] = json!(c.last_message_id.map(id_str));
            v["message_count"] = json!(t.message_count);
            v["total_message_sent"] = json!(t.message_count);
            v["member_count"] = json!(1);
            v["rate_limit_per_user"] = json!(c.rate_limit_per_user);
            let mut meta = json!({
                "archived": t.archived,
                "auto_archive_duration": t.auto_archive_duration,
                "archive_timestamp": t.archive_timestamp,
                "locked": t.locked,
                "create_timestamp": t.create_timestamp,
            });
            if c.kind == 12 {
                meta["invitable"] = json!(t.invitable);
            }
            v["thread_metadata"] = meta;
            self.forum_fields(c, &mut v);
            return v;
        }
        v["position"] = json!(c.position);
        v["permission_overwrites"] = self.overwrites_json(c.id);
        v["nsfw"] = json!(c.nsfw);
        if c.kind != 4 {
            v["topic"] = json!(c.topic);
            v["last_message_id"] = json!(c.last_message_id.map(id_str));
            v["rate_limit_per_user"] = json!(c.rate_limit_per_user);
            v["last_pin_timestamp"] = json!(c.last_pin_timestamp);
        }
        self.forum_fields(c, &mut v);
        if c.kind == 2 || c.kind == 13 {
            v["bitrate"] = json!(64000);
            v["user_limit"] = json!(0);
            v["rtc_region"] = json!(null);
        }
        v
    }

    /// The partial channel carried by interactions and resolved data.
    pub fn partial_channel_json(&self, id: u64, permissions_of: u64) -> Value {
        let mut v = self
            .channels
            .get(&id)
            .map(|c| self.channel_json(c))
            .unwrap_or_else(|| json!({ "id": id_str(id), "type": 0 }));
        v["permissions"] = json!(self.channel_permissions(permissions_of, id).to_string());
        v
    }

    /// The guild object; `create` adds what GUILD_CREATE carries beyond GET /guilds/{id}.
    pub fn guild_json(&self, create: bool, intents: u64) -> Value {
        let mut v = json!({
            "id": id_str(GUILD_ID),
            "name": "sitrep test guild",
            "icon": null,
            "icon_hash": null,
            "splash": null,
            "discovery_splash": null,
            "owner_id": id_str(super::OWNER_ID),
            "afk_channel_id": null,
            "afk_timeout": 300,
            "widget_enabled": false,
            "widget_channel_id": null,
            "verification_level": 0,
            "default_message_notifications": 1,
            "explicit_content_filter": 0,
            "roles": self.roles_json(),
            "emojis": [],
            "stickers": [],
            "features": [],
            "mfa_level": 0,
            "application_id": null,
            "system_channel_id": id_str(super::GENERAL_CHANNEL_ID),
            "system_channel_flags": 0,
            "rules_channel_id": null,
            "max_presences": null,
            "max_members": 500000,
            "vanity_url_code": null,
            "description": null,
            "banner": null,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "preferred_locale": "en-US",
            "public_updates_channel_id": null,
            "max_video_channel_users": 25,
            "max_stage_video_channel_users": 50,
            "nsfw_level": 0,
            "premium_progress_bar_enabled": false,
            "safety_alerts_channel_id": null,
            "incidents_data": null,
        });
        if create {
            // Without the presences intent Discord lists only the bot itself.
            let members: Vec<Value> = self
                .members
                .keys()
                .filter(|u| intents & INTENT_GUILD_PRESENCES != 0 || **u == BOT_USER_ID)
                .map(|u| self.member_json(*u, true, false))
                .collect();
            let (threads, channels): (Vec<&ChannelRec>, Vec<&ChannelRec>) =
                self.channels.values().partition(|c| c.is_thread());
            let obj = v.as_object_mut().expect("guild is an object");
            obj.insert("joined_at".into(), json!(iso(now_ms() - 86_400_000)));
            obj.insert("large".into(), json!(false));
            obj.insert("unavailable".into(), json!(false));
            obj.insert("member_count".into(), json!(self.members.len()));
            obj.insert("voice_states".into(), json!([]));
            obj.insert("members".into(), Value::Array(members));
            obj.insert(
                "channels".into(),
                channels.iter().map(|c| self.channel_json(c)).collect(),
            );
            obj.insert(
                "threads".into(),
                threads
                    .iter()
                    .filter(|c| c.thread.as_ref().is_some_and(|t| !t.archived))
                    .map(|c| self.channel_json(c))
                    .collect(),
            );
            obj.insert("presences".into(), json!([]));
            obj.insert("stage_instances".into(), json!([]));
            obj.insert("guild_scheduled_events".into(), json!([]));
            obj.insert("soundboard_sounds".into(), json!([]));
        }
        v
    }

    /// `interaction_metadata` for messages an interaction created; a modal submit nests
    /// the metadata of the interaction that opened the modal.
    pub fn interaction_metadata(&self, iid: u64) -> Value {
        let i = &self.interactions[&iid];
        let mut meta = json!({
            "id": id_str(i.id),
            "type": i.kind,
            "user": self.user_json(i.user_id),
            "authorizing_integration_owners": { "0": id_str(GUILD_ID) },
        });
        let data = &i.payload["data"];
        match i.kind {
            2 => {
                meta["name"] = data["name"].clone();
                meta["command_type"] = data["type"].clone();
                match data["type"].as_u64() {
                    Some(2) => {
                        if let Some(t) = parse_id(data.get("target_id")) {
                            meta["target_user"] = self.user_json(t);
                        }
                    }
                    Some(3) => meta["target_message_id"] = data["target_id"].clone(),
                    _ => {}
                }
            }
            3 => {
                if let Some(src) = i.source_message {
                    meta["interacted_message_id"] = id_str(src);
                }
            }
            5 => {
                if let Some(opener) = i.opener {
                    meta["triggering_interaction_metadata"] = self.interaction_metadata(opener);
                }
            }
            _ => {}
        }
        meta
    }

    // ----- mentions -----

    /// Who a message actually pings under Discord's allowed_mentions rules.
    /// `default_parse` applies when the body has no `allowed_mentions`.
    pub fn compute_pings(
        &self,
        content: &str,
        allowed: Option<&Value>,
        default_parse: &[&str],
        replied_author: Option<u64>,
        author: u64,
        channel: u64,
    ) -> Pings {
        let (parse, users_allowed, roles_allowed, replied_user): (
            Vec<String>,
            Vec<u64>,
            Vec<u64>,
            bool,
        ) = match allowed {
            Some(am) if !am.is_null() => {
                let list = |k: &str| -> Vec<u64> {
                    am.get(k)
                        .and_then(Value::as_array)
                        .map(|a| a.iter().filter_map(|v| parse_id(Some(v))).collect())
                        .unwrap_or_default()
                };
                (
                    am.get("parse")
                        .and_then(Value::as_array)
                        .map(|a| {
                            a.iter()
                                .filter_map(Value::as_str)
                                .map(String::from)
                                .collect()
                        })
                        .unwrap_or_default(),
                    list("users"),
                    list("roles"),
                    am.get("replied_user")
                        .and_then(Value::as_bool)
                        .unwrap_or(false),
                )
            }
            _ => (
                default_parse.iter().map(|s| s.to_string()).collect(),
                vec![],
                vec![],
                true,
            ),
        };
        // Mention Everyone counts as the channel's overwrites leave it.
        let author_perms = self.channel_permissions(author, channel);
        let can_mention_everyone = author_perms & PERM_MENTION_EVERYONE != 0;
        let found = scan_mentions(content);
        let mut pings = Pings {
            everyone: found.everyone
                && parse.iter().any(|p| p == "everyone")
                && can_mention_everyone,
            users: vec![],
            roles: vec![],
        };
        for u in found.users {
            if self.members.contains_key(&u)
                && (parse.iter().any(|p| p == "users") || users_allowed.contains(&u))
            {
                pings.users.push(u);
            }
        }
        if let Some(r) = replied_author {
            if replied_user && r != author {
                pings.users.push(r);
            }
        }
        for r in found.roles {
            let Some(role) = self.roles.get(&r) else {
                continue;
            };
            if r == GUILD_ID {
                continue;
            }
            let listed = parse.iter().any(|p| p == "roles") || roles_allowed.contains(&r);
            if listed && (role.mentionable || can_mention_everyone) {
                pings.roles.push(r);
            }
        }
        pings.users.sort_unstable();
        pings.users.dedup();
        pings.roles.sort_unstable();
        pings.roles.dedup();
        pings
    }

    fn apply_mentions(&self, obj: &mut Value, pings: &Pings) {
        obj["mention_everyone"] = json!(pings.everyone);
        obj["mentions"] = Value::Array(pings.users.iter().map(|u| self.user_json(*u)).collect());
        obj["mention_roles"] = Value::Array(pings.roles.iter().map(|r| id_str(*r)).collect());
    }

    // ----- messages -----

    pub fn textual_channel(&self, channel_id: u64) -> Result<&ChannelRec, ApiError> {
        let c = self
            .channels
            .get(&channel_id)
            .ok_or_else(ApiError::unknown_channel)?;
        if !c.is_textual() {
            return Err(ApiError::non_text_channel());
        }
        Ok(c)
    }

    fn attachments_for(
        &mut self,
        channel_id: u64,
        body: &Value,
        files: &[UploadedFile],
        keep: Vec<Value>,
        stored: &mut Vec<(u64, UploadedFile)>,
    ) -> Result<Vec<Value>, ApiError> {
        let descriptors = body
            .get("attachments")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut out = keep;
        if files.len() + out.len() > 10 {
            let mut errs = FormErrors::default();
            errs.max_len("attachments", 10);
            errs.into_result()?;
        }
        for (n, f) in files.iter().enumerate() {
            if f.bytes.len() > ATTACHMENT_SIZE_LIMIT {
                return Err(ApiError::too_large());
            }
            let index = f
                .field
                .strip_prefix("files[")
                .and_then(|s| s.strip_suffix(']'))
                .and_then(|s| s.parse::<u64>().ok())
                .unwrap_or(n as u64);
            let desc = descriptors
                .iter()
                .find(|d| parse_id(d.get("id")) == Some(index));
            let filename = desc
                .and_then(|d| d.get("filename"))
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| f.filename.clone());
            let id = self.next_id();
            let url =
                format!("https://cdn.discordapp.com/attachments/{channel_id}/{id}/{filename}");
            let mut a = json!({
                "id": id_str(id),
                "filename": filename,
                "size": f.bytes.len(),
                "url": url,
                "proxy_url": url.replace("cdn.discordapp.com", "media.discordapp.net"),
                "content_type": f.content_type.clone().unwrap_or_else(|| guess_content_type(&filename)),
            });
            if let Some(d) = desc
                .and_then(|d| d.get("description"))
                .filter(|v| !v.is_null())
            {
                a["description"] = d.clone();
            }
            stored.push((
                id,
                UploadedFile {
                    filename,
                    ..f.clone()
                },
            ));
            out.push(a);
        }
        Ok(out)
    }

    /// Creates a message after the body passed validation; dispatches MESSAGE_CREATE unless ephemeral.
    pub fn create_message(&mut self, m: NewMessage) -> Result<u64, ApiError> {
        self.create_message_with_id(m, None)
    }

    /// As [`World::create_message`]; a forum post's starter message takes the post's id.
    pub fn create_message_with_id(
        &mut self,
        m: NewMessage,
        fixed_id: Option<u64>,
    ) -> Result<u64, ApiError> {
        let channel = self.textual_channel(m.channel_id)?.clone();
        let mut errs = FormErrors::default();
        check_message_fields(m.body, "", &mut errs);
        errs.into_result()?;
        let body = m.body;
        let content = body
            .get("content")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let embeds = body
            .get("embeds")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let components = body
            .get("components")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let stickers = body
            .get("sticker_ids")
            .and_then(Value::as_array)
            .is_some_and(|s| !s.is_empty());
        let loading = m.extra_flags & FLAG_LOADING != 0;
        if !loading
            && content.is_empty()
            && embeds.is_empty()
            && components.is_empty()
            && m.files.is_empty()
            && !stickers
            && matches!(body.get("poll"), None | Some(Value::Null))
        {
            return Err(ApiError::empty_message());
        }
        let nonce = match body.get("nonce") {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        if body.get("enforce_nonce").and_then(Value::as_bool) == Some(true) {
            if let Some(n) = &nonce {
                let window = self.nonce_window;
                if let Some(existing) = self.messages.values().find(|x| {
                    !x.deleted
                        && x.author_id == m.author_id
                        && x.nonce.as_deref() == Some(n)
                        && x.created.elapsed() < window
                }) {
                    return Ok(parse_id(existing.obj.get("id")).expect("stored messages have ids"));
                }
            }
        }
        let mut kind = m.kind;
        let mut reference = None;
        let mut replied_author = None;
        if let Some(r) = body.get("message_reference").filter(|v| !v.is_null()) {
            let target = parse_id(r.get("message_id"));
            let fail = r
                .get("fail_if_not_exists")
                .and_then(Value::as_bool)
                .unwrap_or(true);
            match target
                .and_then(|t| self.messages.get(&t))
                .filter(|x| !x.deleted && x.channel_id == m.channel_id)
            {
                Some(x) => {
                    if kind == 0 {
                        kind = 19;
                    }
                    replied_author = Some(x.author_id);
                    reference = Some((
                        x.obj.clone(),
                        json!({
                            "type": 0,
                            "message_id": x.obj["id"].clone(),
                            "channel_id": id_str(m.channel_id),
                            "guild_id": id_str(GUILD_ID),
                        }),
                    ));
                }
                None if fail => {
                    let mut errs = FormErrors::default();
                    errs.add(
                        "message_reference",
                        "MESSAGE_REFERENCE_UNKNOWN_MESSAGE",
                        "Unknown message",
                    );
                    errs.into_result()?;
                }
                None => {}
            }
        }
        let allowed_flags = match m.target {
            MessageTarget::Channel => {
                FLAG_SUPPRESS_EMBEDS
                    | FLAG_SUPPRESS_NOTIFICATIONS
                    | FLAG_IS_VOICE_MESSAGE
                    | FLAG_IS_COMPONENTS_V2
            }
            MessageTarget::Interaction => {
                FLAG_SUPPRESS_EMBEDS
                    | FLAG_SUPPRESS_NOTIFICATIONS
                    | FLAG_IS_VOICE_MESSAGE
                    | FLAG_IS_COMPONENTS_V2
                    | FLAG_EPHEMERAL
            }
        };
        let flags = (body.get("flags").and_then(Value::as_u64).unwrap_or(0) & allowed_flags)
            | m.extra_flags;
        let ephemeral = flags & FLAG_EPHEMERAL != 0;
        if !ephemeral {
            // Only the user who acted sees an ephemeral answer: it does not post in the thread.
            self.check_thread_post(m.channel_id, m.author_id)?;
        }
        let default_parse: &[&str] = match m.target {
            MessageTarget::Channel => &["users", "roles", "everyone"],
            MessageTarget::Interaction => &["users"],
        };
        let pings = if flags & FLAG_LOADING != 0 {
            Pings::default()
        } else {
            self.compute_pings(
                &content,
                body.get("allowed_mentions"),
                default_parse,
                replied_author,
                m.author_id,
                m.channel_id,
            )
        };
        let id = fixed_id.unwrap_or_else(|| self.next_id());
        let mut stored = vec![];
        let attachments = self.attachments_for(m.channel_id, body, m.files, vec![], &mut stored)?;
        let mut obj = json!({
            "id": id_str(id),
            "type": kind,
            "content": content,
            "channel_id": id_str(m.channel_id),
            "author": self.user_json(m.author_id),
            "attachments": attachments,
            "embeds": embeds.into_iter().map(normalize_embed).collect::<Vec<_>>(),
            "mentions": [],
            "mention_roles": [],
            "mention_everyone": false,
            "pinned": false,
            "tts": body.get("tts").and_then(Value::as_bool).unwrap_or(false),
            "timestamp": iso(snowflake_ms(id)),
            "edited_timestamp": null,
            "flags": flags,
            "components": components,
        });
        self.apply_mentions(&mut obj, &pings);
        if let Some(n) = body.get("nonce").filter(|v| !v.is_null()) {
            obj["nonce"] = n.clone();
        }
        if let Some((referenced, r)) = reference {
            obj["message_reference"] = r;
            obj["referenced_message"] = referenced;
        }
        if let Some(iid) = m.interaction {
            let i = self.interactions.get(&iid).expect("interaction exists");
            obj["webhook_id"] = id_str(APPLICATION_ID);
            obj["application_id"] = id_str(APPLICATION_ID);
            let mut meta = self.interaction_metadata(iid);
            if let Some(original) = i.original {
                meta["original_response_message_id"] = id_str(original);
            }
            if i.kind == 2 {
                let name = i.payload["data"]["name"].clone();
                let user = self.user_json(i.user_id);
                obj["interaction"] =
                    json!({ "id": id_str(i.id), "type": i.kind, "name": name, "user": user });
            }
            obj["interaction_metadata"] = meta;
        }
        if channel.is_thread() {
            obj["position"] = json!(channel.thread.as_ref().map_or(0, |t| t.message_count));
        }
        self.messages.insert(
            id,
            MessageRec {
                obj,
                channel_id: m.channel_id,
                author_id: m.author_id,
                pings,
                nonce,
                created: Instant::now(),
                ephemeral,
                deleted: false,
                files: stored,
                reactions: vec![],
                interaction: m.interaction,
                pinned_at: None,
            },
        );
        if !ephemeral {
            self.touch_channel(m.channel_id, id);
            self.dispatch_message("MESSAGE_CREATE", id);
        }
        Ok(id)
    }

    /// Bookkeeping when a message lands: last message, thread counters, auto-unarchive.
    fn touch_channel(&mut self, channel_id: u64, message_id: u64) {
        let mut unarchived = false;
        if let Some(c) = self.channels.get_mut(&channel_id) {
            c.last_message_id = Some(message_id);
            if let Some(t) = &mut c.thread {
                t.message_count += 1;
                if t.archived {
                    t.archived = false;
                    t.archive_timestamp = iso(now_ms());
                    unarchived = true;
                }
            }
        }
        if unarchived {
            let v = self.channel_json(&self.channels[&channel_id]);
            self.dispatch("THREAD_UPDATE", v, Some(INTENT_GUILDS));
        }
    }

    /// Applies an edit (already validated) to a stored message and dispatches MESSAGE_UPDATE.
    pub fn edit_message(
        &mut self,
        id: u64,
        body: &Value,
        files: &[UploadedFile],
        target: MessageTarget,
    ) -> Result<(), ApiError> {
        let mut errs = FormErrors::default();
        check_message_fields(body, "", &mut errs);
        errs.into_result()?;
        let rec = self
            .messages
            .get(&id)
            .filter(|m| !m.deleted)
            .ok_or_else(ApiError::unknown_message)?
            .clone();
        let mut obj = rec.obj.clone();
        let was_loading = obj["flags"].as_u64().unwrap_or(0) & FLAG_LOADING != 0;
        for field in ["content", "embeds", "components"] {
            if let Some(v) = body.get(field) {
                obj[field] = match (field, v) {
                    ("content", Value::Null) => json!(""),
                    (_, Value::Null) => json!([]),
                    ("embeds", Value::Array(list)) => {
                        Value::Array(list.iter().cloned().map(normalize_embed).collect())
                    }
                    _ => v.clone(),
                };
            }
        }
        if let Some(f) = body.get("flags").and_then(Value::as_u64) {
            let old = obj["flags"].as_u64().unwrap_or(0);
            obj["flags"] = json!(
                (old & !FLAG_SUPPRESS_EMBEDS)
                    | (f & FLAG_SUPPRESS_EMBEDS)
                    | (f & FLAG_IS_COMPONENTS_V2)
            );
        }
        let mut stored = rec.files.clone();
        let existing = obj["attachments"].as_array().cloned().unwrap_or_default();
        let keep = match body.get("attachments").and_then(Value::as_array) {
            Some(list) => {
                let ids: Vec<u64> = list.iter().filter_map(|a| parse_id(a.get("id"))).collect();
                stored.retain(|(aid, _)| ids.contains(aid));
                existing
                    .into_iter()
                    .filter(|a| parse_id(a.get("id")).is_some_and(|aid| ids.contains(&aid)))
                    .collect()
            }
            None => existing,
        };
        let attachments = self.attachments_for(rec.channel_id, body, files, keep, &mut stored)?;
        obj["attachments"] = Value::Array(attachments);
        let empty = obj["content"].as_str().unwrap_or("").is_empty()
            && is_empty_list(&obj["embeds"])
            && is_empty_list(&obj["components"])
            && is_empty_list(&obj["attachments"]);
        if empty {
            return Err(ApiError::empty_message());
        }
        let content = obj["content"].as_str().unwrap_or("").to_string();
        let default_parse: &[&str] = match target {
            MessageTarget::Channel => &["users", "roles", "everyone"],
            MessageTarget::Interaction => &["users"],
        };
        // Discord rebuilds the mention fields from the new content on every edit.
        let mentions = self.compute_pings(
            &content,
            body.get("allowed_mentions"),
            default_parse,
            None,
            rec.author_id,
            rec.channel_id,
        );
        self.apply_mentions(&mut obj, &mentions);
        if was_loading {
            let f = obj["flags"].as_u64().unwrap_or(0) & !FLAG_LOADING;
            obj["flags"] = json!(f);
        } else {
            obj["edited_timestamp"] = json!(iso(now_ms()));
        }
        let rec = self.messages.get_mut(&id).expect("checked above");
        rec.obj = obj;
        rec.files = stored;
        // Edits notify nobody, except the first fill of a deferred ("thinking") response.
        if was_loading {
            rec.pings = mentions;
        }
        let ephemeral = rec.ephemeral;
        if !ephemeral {
            self.dispatch_message("MESSAGE_UPDATE", id);
        }
        Ok(())
    }

    pub fn delete_message(&mut self, id: u64) -> Result<(), ApiError> {
        let rec = self
            .messages
            .get_mut(&id)
            .filter(|m| !m.deleted)
            .ok_or_else(ApiError::unknown_message)?;
        rec.deleted = true;
        let (channel, ephemeral) = (rec.channel_id, rec.ephemeral);
        if !ephemeral {
            self.dispatch(
                "MESSAGE_DELETE",
                json!({ "id": id_str(id), "channel_id": id_str(channel), "guild_id": id_str(GUILD_ID) }),
                Some(INTENT_GUILD_MESSAGES),
            );
        }
        Ok(())
    }

    /// A message as the bot may read it over REST: without the message-content intent
    /// enabled for the app, other users' messages come back without content.
    pub fn message_for_bot(&self, id: u64, intents: u64) -> Value {
        let rec = &self.messages[&id];
        let mut obj = rec.obj.clone();
        let mentioned = rec.pings.users.contains(&BOT_USER_ID)
            || obj["mentions"]
                .as_array()
                .is_some_and(|m| m.iter().any(|u| parse_id(u.get("id")) == Some(BOT_USER_ID)));
        if intents & INTENT_MESSAGE_CONTENT == 0 && rec.author_id != BOT_USER_ID && !mentioned {
            obj["content"] = json!("");
            obj["embeds"] = json!([]);
            obj["attachments"] = json!([]);
            obj["components"] = json!([]);
        }
        obj
    }

    /// Messages said in a channel with nobody told: no MESSAGE_CREATE, as while the bot is
    /// away. Only a history read finds them. The i-th (from 1) says `content(i)`.
    pub fn seed_messages(
        &mut self,
        user: u64,
        channel_id: u64,
        n: usize,
        content: impl Fn(usize) -> String,
    ) -> Vec<u64> {
        assert!(
            self.members.contains_key(&user),
            "user {user} is not a member of the guild"
        );
        self.textual_channel(channel_id)
            .unwrap_or_else(|e| panic!("cannot seed channel {channel_id}: {}", e.body));
        let author = self.user_json(user);
        let mut ids = Vec::with_capacity(n);
        for i in 1..=n {
            let id = self.next_id();
            let obj = json!({
                "id": id_str(id),
                "type": 0,
                "content": content(i),
                "channel_id": id_str(channel_id),
                "author": author.clone(),
                "attachments": [],
                "embeds": [],
                "mentions": [],
                "mention_roles": [],
                "mention_everyone": false,
                "pinned": false,
                "tts": false,
                "timestamp": iso(snowflake_ms(id)),
                "edited_timestamp": null,
                "flags": 0,
                "components": [],
            });
            self.messages.insert(
                id,
                MessageRec {
                    obj,
                    channel_id,
                    author_id: user,
                    pings: Pings::default(),
                    nonce: None,
                    created: Instant::now(),
                    ephemeral: false,
                    deleted: false,
                    files: vec![],
                    reactions: vec![],
                    interaction: None,
                    pinned_at: None,
                },
            );
            ids.push(id);
        }
        if let Some(c) = self.channels.get_mut(&channel_id) {
            c.last_message_id = ids.last().copied().or(c.last_message_id);
            if let Some(t) = &mut c.thread {
                t.message_count += n as u64;
            }
        }
        ids
    }

    pub fn channel_messages(&self, channel_id: u64) -> Vec<u64> {
        self.messages
            .iter()
            .filter(|(_, m)| m.channel_id == channel_id && !m.deleted && !m.ephemeral)
            .map(|(id, _)| *id)
            .collect()
    }

    pub fn set_reactions_field(&mut self, id: u64) {
        let rec = self.messages.get(&id).expect("message exists");
        let list: Vec<Value> = rec
            .reactions
            .iter()
            .filter(|r| !r.users.is_empty())
            .map(|r| {
                json!({
                    "count": r.users.len(),
                    "count_details": { "burst": 0, "normal": r.users.len() },
                    "me": r.users.contains(&BOT_USER_ID),
                    "me_burst": false,
                    "burst_colors": [],
                    "emoji": emoji_json(&r.key),
                })
            })
            .collect();
        self.messages.get_mut(&id).expect("message exists").obj["reactions"] = Value::Array(list);
    }
}

/// `name` or `name:id`, as in reaction URLs, to an emoji object.
pub fn emoji_json(key: &str) -> Value {
    match key.rsplit_once(':') {
        Some((name, id)) if id.parse::<u64>().is_ok() => json!({ "id": id, "name": name }),
        _ => json!({ "id": null, "name": key }),
    }
}

fn normalize_embed(mut e: Value) -> Value {
    if let Some(obj) = e.as_object_mut() {
        obj.insert("type".into(), json!("rich"));
        obj.retain(|_, v| !v.is_null());
        obj.insert("content_scan_version".into(), json!(0));
    }
    e
}

fn guess_content_type(filename: &str) -> String {
    let ext = filename
        .rsplit('.')
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    match ext.as_str() {
        "md" => "text/markdown; charset=utf-8",
        "txt" | "log" => "text/plain; charset=utf-8",
        "json" => "application/json; charset=utf-8",
        "csv" => "text/csv; charset=utf-8",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "pdf" => "application/pdf",
        _ => "application/octet-stream",
    }
    .to_string()
}

pub struct FoundMentions {
    pub everyone: bool,
    pub users: Vec<u64>,
    pub roles: Vec<u64>,
}

/// Finds `@everyone`/`@here`, `<@id>`, `<@!id>` and `<@&id>` in message content.
pub fn scan_mentions(content: &str) -> FoundMentions {
    let mut found = FoundMentions {
        everyone: content.contains("@everyone") || content.contains("@here"),
        users: vec![],
        roles: vec![],
    };
    let mut rest = content;
    while let Some(pos) = rest.find("<@") {
        rest = &rest[pos + 2..];
        let (is_role, tail) = match rest.as_bytes().first() {
            Some(b'&') => (true, &rest[1..]),
            Some(b'!') => (false, &rest[1..]),
            _ => (false, rest),
        };
        let digits: String = tail.chars().take_while(char::is_ascii_digit).collect();
        if !digits.is_empty() && tail[digits.len()..].starts_with('>') {
            if let Ok(id) = digits.parse::<u64>() {
                if is_role {
                    found.roles.push(id);
                } else {
                    found.users.push(id);
                }
            }
        }
    }
    found
}

fn is_empty_list(v: &Value) -> bool {
    v.as_array().map_or(true, Vec::is_empty)
}
