//! A protocol-level stand-in for Discord (REST v10 and the gateway) that integration tests run the real bot against.
//!
//! It listens on 127.0.0.1 (random ports) and answers as Discord documents, not as the bot
//! would like: Discord's limits, status codes and error bodies, the 3-second interaction
//! deadline, allowed-mentions rules, rate-limit headers, dropped sockets.
//!
//! # Pointing serenity at it
//!
//! * Proxy mode: `HttpBuilder::new(TOKEN).proxy(fake.api_base()).ratelimiter_disabled(true)`;
//!   REST then arrives under `/api/v10/...` on plain HTTP. Build the client with
//!   `ClientBuilder::new_with_http(http, intents)` ([`FakeDiscord::proxy_http`] does the first half).
//! * Direct mode: serenity's rate limiter on, HTTPS to `discord.com`, which the reqwest client
//!   resolves to the fake's TLS port and trusts through the fake's own CA
//!   ([`FakeDiscord::ca_pem`], [`FakeDiscord::tls_addr`], or ready-made: [`FakeDiscord::direct_client`],
//!   [`FakeDiscord::direct_http`]).
//!
//! `GET /gateway` returns [`FakeDiscord::gateway_url`] (`ws://127.0.0.1:P`) in both modes.
//!
//! # The world
//!
//! One guild ([`GUILD_ID`]) owned by [`OWNER_ID`], the bot user [`BOT_USER_ID`] of application
//! [`APPLICATION_ID`] (deliberately different ids) with a managed role [`BOT_ROLE_ID`] that holds
//! what the README's invite gives ([`BOT_ROLE_PERMISSIONS`]: no Add Reactions, Manage Messages
//! or Pin Messages), an @everyone role (id = guild id) and one text channel [`GENERAL_CHANNEL_ID`].
//! [`FakeDiscord::set_overwrite`] puts permission overwrites on a channel or category.
//! Tests add more with [`FakeDiscord::add_role`], [`FakeDiscord::add_member`],
//! [`FakeDiscord::add_channel`], [`FakeDiscord::add_thread`]; each dispatches the matching
//! gateway event. Ids are real-looking snowflakes, strictly increasing.
//!
//! # Playing the users
//!
//! [`FakeDiscord::slash`], [`FakeDiscord::autocomplete`], [`FakeDiscord::message_command`],
//! [`FakeDiscord::click`], [`FakeDiscord::select`], [`FakeDiscord::submit_modal`] send
//! INTERACTION_CREATE. Like Discord's client they only do what a user could: the command must
//! be registered (by the bot, through the bulk-overwrite route), options must fit the manifest,
//! the button must exist on the message, the modal must have been opened by the bot. A mistake
//! panics with the reason. Options may be given in Discord's array form or, shorter, as nested
//! objects: `json!({"open": {"title": "db down", "severity": "sev1"}})`.
//!
//! [`FakeDiscord::say`] posts a member's message (MESSAGE_CREATE); [`FakeDiscord::edit`],
//! [`FakeDiscord::delete`], [`FakeDiscord::react`], [`FakeDiscord::pin`] follow.
//! [`FakeDiscord::seed_messages`] fills a channel with history nobody was told about.
//!
//! # What Discord enforces here
//!
//! * Messages: content ≤ 2000, ≤ 10 embeds, embed title 256 / description 4096 / 25 fields
//!   (name 256, value 1024) / footer 2048 / author 256 / 6000 in total, ≤ 5 action rows of ≤ 5
//!   buttons (label 80, custom_id 100), allowed_mentions `parse` exclusive with `users`/`roles`:
//!   400 with code 50035 and per-field `errors`; empty message: 50006; files ≤ 10 MiB each.
//! * Commands (bulk overwrite and create): names, descriptions, option counts and nesting,
//!   choices, min/max lengths, required-before-optional, 8000-character size: 50035.
//! * Interactions: first callback later than 3 s → 404 10062 and the token is dead; a second
//!   callback → 400 40060; webhook calls before any callback → 404 10015; tokens expire 15
//!   minutes after the interaction ([`FakeOptions::interaction_token_lifetime`] shortens that, or
//!   [`FakeDiscord::expire_interaction`] ends one at once): then 401 50027. Deleting a deferral's
//!   placeholder ends the deferral: the next follow-up is a message of its own, ephemeral if
//!   asked ([`FakeDiscord::original_deleted`]).
//! * Channel renames: more than two name/topic changes in ten minutes → 429 (Discord's own rule).
//! * Threads and forums: `auto_archive_duration` only 60/1440/4320/10080 (50035); editing,
//!   reacting, pinning or adding members in an archived thread → 50083, a message unarchives it
//!   unless it is locked (50083), a locked thread takes messages and unarchives only with Manage
//!   Threads; at most 1,000 active threads (160006); a forum post needs its starter message and
//!   takes only its forum's tags (≤ 5 applied, ≤ 20 on the forum). [`FakeDiscord::archive_thread`],
//!   [`FakeDiscord::fill_active_threads`], [`FakeDiscord::add_forum_tags`] set the scene.
//! * Channel caps: 50 channels in a category, on create and on a move into it (400 50035,
//!   `parent_id` CHANNEL_PARENT_MAX_CHANNELS); 500 channels in the server, categories included
//!   and threads not (400 30013). Permission overwrites a channel is made with are kept and
//!   returned ([`FakeDiscord::set_permission_overwrites`] sets them).
//! * Permissions: the bot's are computed per channel as Discord does (@everyone and its roles,
//!   Administrator, then the channel's overwrites for @everyone, its roles and itself; threads
//!   use their parent's; no View Channel means nothing), and each channel route checks what
//!   Discord documents for it: 50001 without View Channel, 50013 without the rest (Manage
//!   Channels to create in a category or move a channel, Create Public Threads, Send Messages or
//!   Send Messages in Threads, Attach Files, Manage Threads to archive, Pin Messages, Add
//!   Reactions, Manage Messages for others' messages); history and pin reads without Read
//!   Message History come back empty. The application's flags show the portal's intent toggles.
//! * Gateway: IDENTIFY token and intents, close codes 4001–4014, RESUME replay. The
//!   developer-portal toggles of the privileged intents are all off, as for a new application:
//!   IDENTIFY asking for one is closed with 4014 until a test switches it on by name
//!   ([`FakeDiscord::set_privileged_intents`]). Without the message-content intent other users'
//!   message content is blanked, over the gateway and REST, as Discord does; the target of a
//!   message command keeps its text.
//! * Who gets pinged: [`FakeDiscord::pings`] applies allowed_mentions (absent: all kinds for channel
//!   messages, users only for interaction responses and webhooks), role mentionability and the
//!   author's Mention Everyone permission. Embeds never ping.
//!
//! # Faults and limits
//!
//! [`FakeDiscord::fail_next`] makes the next request to a route (e.g.
//! `"POST /channels/{channel}/messages"`, or `"*"`) answer 429 (route, shared or global scope,
//! with `retry-after` in seconds), a 5xx, or arrive late; [`FakeDiscord::fail_next_n`] the next
//! N, and [`FakeDiscord::fail_for`] every one for a while (a 429 storm, a 5xx outage). Every answer carries
//! `X-RateLimit-*` headers; [`FakeOptions::global_limit`] enforces a requests-per-second ceiling.
//! Per-route buckets (message create: 5 per 5 s per channel) are kept by default
//! ([`FakeOptions::enforce_route_limits`]): over TLS an exhausted bucket answers 429 with
//! `X-RateLimit-Scope: user` and Discord's body; on the plain-HTTP port the request waits for the
//! bucket's next window, as behind a rate-limiting proxy ([`FakeDiscord::route_limited_count`],
//! [`FakeDiscord::queued_count`]). `enforce_nonce` finds an earlier message only within
//! [`FakeOptions::nonce_window`], and the history never echoes a nonce.
//! [`FakeDiscord::gateway_fault`] drops the socket, closes with a code, sends op 7 or op 9;
//! [`FakeDiscord::close_identify_with`] answers IDENTIFY with a close code.
//!
//! # Looking at what happened
//!
//! Every REST call is a [`Request`] (route template, body or `payload_json` + files, status,
//! response, time), every gateway frame a [`GatewayFrame`]. Route templates, as in
//! [`Request::route`] and [`FakeDiscord::fail_next`], name their placeholders `{channel}`,
//! `{message}`, `{guild}`, `{user}`, `{application}`, `{command}`, `{interaction}`, `{token}`,
//! `{emoji}`: e.g. `PUT /applications/{application}/guilds/{guild}/commands`,
//! `POST /interactions/{interaction}/{token}/callback`,
//! `PATCH /webhooks/{application}/{token}/messages/{message}` (`@original` included),
//! `PUT /channels/{channel}/messages/{message}/reactions/{emoji}/@me`,
//! `PUT /channels/{channel}/pins/{message}`. [`FakeDiscord::routes`] lists them all. Waits take the default timeout from
//! [`FakeOptions::wait_timeout`] and panic with context when it runs out, except
//! [`FakeDiscord::wait_until`], which returns `None`.
//!
//! ```ignore
//! let fake = FakeDiscord::start().await;
//! // ... start the bot against fake.api_base() ...
//! fake.wait_ready().await;
//! let i = fake.slash(OWNER_ID, GENERAL_CHANNEL_ID, "incident", json!({"open": {"title": "db"}}));
//! let r = fake.wait_response(&i).await;
//! assert_eq!(r.kind, 5);
//! assert!(r.latency < Duration::from_secs(3));
//! ```
#![allow(dead_code)]

mod events;
mod gateway;
mod perms;
mod ratelimit;
mod rest;
mod threads;
mod tls;
mod validate;
mod world;

use serde_json::Value;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};
use world::World;

#[allow(unused_imports)]
pub use perms::{
    PERM_ADD_REACTIONS, PERM_ALL, PERM_ATTACH_FILES, PERM_CREATE_PUBLIC_THREADS, PERM_EMBED_LINKS,
    PERM_MANAGE_CHANNELS, PERM_MANAGE_MESSAGES, PERM_MANAGE_THREADS, PERM_PIN_MESSAGES,
    PERM_READ_MESSAGE_HISTORY, PERM_SEND_MESSAGES, PERM_SEND_MESSAGES_IN_THREADS,
    PERM_VIEW_CHANNEL,
};
#[allow(unused_imports)]
pub use world::{
    BOT_ROLE_PERMISSIONS, INTENT_GUILDS, INTENT_GUILD_MEMBERS, INTENT_GUILD_MESSAGES,
    INTENT_GUILD_MESSAGE_REACTIONS, INTENT_GUILD_PRESENCES, INTENT_MESSAGE_CONTENT,
    PERM_MENTION_EVERYONE,
};

/// The bot token the fake accepts (`Authorization: Bot <TOKEN>`).
pub const TOKEN: &str = "MTMwMDAwMDAwMDAwMDAwMDAwMw.GsItRp.ZmFrZS1kaXNjb3JkLXRva2VuLWZvci10ZXN0cw";
pub const GUILD_ID: u64 = 1_300_000_000_000_000_001;
pub const APPLICATION_ID: u64 = 1_300_000_000_000_000_002;
pub const BOT_USER_ID: u64 = 1_300_000_000_000_000_003;
/// The guild owner, a member with no roles.
pub const OWNER_ID: u64 = 1_300_000_000_000_000_004;
pub const GENERAL_CHANNEL_ID: u64 = 1_300_000_000_000_000_005;
/// The bot's managed role; its permissions are the bot's (see [`FakeDiscord::set_bot_permissions`]).
pub const BOT_ROLE_ID: u64 = 1_300_000_000_000_000_006;
/// The @everyone role shares the guild's id.
pub const EVERYONE_ROLE_ID: u64 = GUILD_ID;

/// How the fake is started.
#[derive(Clone, Debug)]
pub struct FakeOptions {
    /// Sent in HELLO; serenity heartbeats after one full interval.
    pub heartbeat_interval: Duration,
    /// Requests per second across all routes but interaction ones, answered with global 429s beyond.
    pub global_limit: Option<u32>,
    /// Keep Discord's per-route buckets (message create 5 per 5 s per channel, and the rest):
    /// over TLS an exhausted bucket answers 429, on the plain-HTTP port the request waits for
    /// room as behind a rate-limiting proxy. Headers are sent either way. On by default, as on
    /// Discord; a test that must not be slowed by them turns them off by name.
    pub enforce_route_limits: bool,
    /// How long `enforce_nonce` finds an earlier message with the same nonce; Discord documents
    /// "a few minutes".
    pub nonce_window: Duration,
    /// Discord gives 3 s for the first interaction response.
    pub interaction_deadline: Duration,
    /// An interaction token works for 15 minutes after the interaction was created; later
    /// webhook calls (edits, follow-ups, deletes) answer 401 with code 50027.
    pub interaction_token_lifetime: Duration,
    /// Discord allows two channel name/topic changes per ten minutes.
    pub channel_rename_limit: bool,
    /// Default timeout of the `wait_*` helpers.
    pub wait_timeout: Duration,
}

impl Default for FakeOptions {
    fn default() -> Self {
        FakeOptions {
            heartbeat_interval: Duration::from_millis(41_250),
            global_limit: None,
            enforce_route_limits: true,
            nonce_window: Duration::from_secs(180),
            interaction_deadline: Duration::from_secs(3),
            interaction_token_lifetime: Duration::from_secs(15 * 60),
            channel_rename_limit: true,
            wait_timeout: Duration::from_secs(10),
        }
    }
}

/// Discord channel types the tests create.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChannelKind {
    Text,
    Voice,
    Category,
    Announcement,
    Forum,
}

impl ChannelKind {
    fn code(self) -> u8 {
        match self {
            ChannelKind::Text => 0,
            ChannelKind::Voice => 2,
            ChannelKind::Category => 4,
            ChannelKind::Announcement => 5,
            ChannelKind::Forum => 15,
        }
    }
}

/// An injected answer for the next matching request.
#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    /// 429, scope `user`, bucket exhausted; `retry_after` in seconds.
    RateLimit { retry_after: f64 },
    /// 429, scope `shared` (does not count as an invalid request).
    SharedRateLimit { retry_after: f64 },
    /// 429 with `x-ratelimit-global`.
    GlobalRateLimit { retry_after: f64 },
    /// A server error, e.g. 500 or 502, with a JSON body.
    ServerError(u16),
    /// Answer normally, but only after this long.
    Delay(Duration),
    /// Do what was asked at once, but answer only after this long, as when Discord's answer is
    /// lost on the way back: a client that gives up and sends again meets its own first request.
    LateAnswer(Duration),
}

/// Something to do to the open gateway connections.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GatewayFault {
    /// Close the TCP connection without a close frame.
    DropSocket,
    /// Close with this code (4000–4014 as Discord uses them; 4004 and 4010–4014 end the session).
    Close(u16),
    /// Send op 7 RECONNECT.
    Reconnect,
    /// Send op 9 INVALID_SESSION; not resumable also ends the session.
    InvalidSession { resumable: bool },
    /// Send op 1, asking for a heartbeat now.
    RequestHeartbeat,
}

/// A file part of a multipart request (`files[n]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadedFile {
    pub field: String,
    pub filename: String,
    pub content_type: Option<String>,
    pub bytes: Vec<u8>,
}

/// One REST request as the fake saw and answered it.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    /// Without the `/api/v10` prefix, e.g. `/channels/123/messages`.
    pub path: String,
    /// Method and route template, e.g. `POST /channels/{channel}/messages`.
    pub route: String,
    pub query: Vec<(String, String)>,
    /// Lowercase names; `authorization` is left out.
    pub headers: Vec<(String, String)>,
    /// The JSON body, or `payload_json` of a multipart body; `Null` when there was none.
    pub body: Value,
    pub files: Vec<UploadedFile>,
    pub status: u16,
    pub response: Value,
    /// Since the fake started.
    pub at: Duration,
    /// Arrived over HTTPS (direct mode).
    pub tls: bool,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    ToBot,
    FromBot,
}

/// One gateway frame; close frames the fake sends are recorded as `{"close": code, "reason": ...}`.
#[derive(Clone, Debug)]
pub struct GatewayFrame {
    /// Connection number, from 0 in the order the bot connected.
    pub conn: u32,
    pub direction: Direction,
    pub at: Duration,
    pub payload: Value,
}

impl GatewayFrame {
    pub fn op(&self) -> Option<u64> {
        self.payload.get("op").and_then(Value::as_u64)
    }
    /// The dispatch name (`t`) for op 0.
    pub fn event(&self) -> Option<&str> {
        self.payload.get("t").and_then(Value::as_str)
    }
}

/// Who a message notified. Sorted ids.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pings {
    /// `@everyone` or `@here` went off.
    pub everyone: bool,
    pub users: Vec<u64>,
    pub roles: Vec<u64>,
}

impl Pings {
    pub fn nobody(&self) -> bool {
        !self.everyone && self.users.is_empty() && self.roles.is_empty()
    }
}

/// An interaction the fake dispatched.
#[derive(Clone, Debug)]
pub struct Interaction {
    pub id: u64,
    pub token: String,
    /// 2 command, 3 component, 4 autocomplete, 5 modal submit.
    pub kind: u8,
    pub channel_id: u64,
    pub user_id: u64,
    /// The INTERACTION_CREATE payload as sent.
    pub payload: Value,
}

/// The bot's first answer to an interaction.
#[derive(Clone, Debug)]
pub struct InteractionResponse {
    /// Callback type: 4 message, 5 defer, 6 deferred update, 7 update, 8 autocomplete, 9 modal.
    pub kind: u8,
    /// The callback's `data`, as sent.
    pub data: Value,
    pub files: Vec<UploadedFile>,
    /// From dispatch to the callback's arrival.
    pub latency: Duration,
}

/// When an interaction was acknowledged and answered, for the benches.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// From the frame on the socket to the first callback.
    pub ack: Duration,
    /// From the test creating the interaction (a burst is created at once, as users' clicks
    /// start Discord's 3 s before the frame is written) to the first callback.
    pub ack_since_created: Duration,
    /// From creation to the answer the user sees (a deferral's loading message filled in).
    pub answered_since_created: Option<Duration>,
}

impl InteractionResponse {
    pub fn ephemeral(&self) -> bool {
        self.data.get("flags").and_then(Value::as_u64).unwrap_or(0) & validate::FLAG_EPHEMERAL != 0
    }
    pub fn content(&self) -> &str {
        self.data
            .get("content")
            .and_then(Value::as_str)
            .unwrap_or("")
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GatewayStats {
    /// Websocket connections accepted.
    pub connections: u32,
    /// IDENTIFYs answered with READY (not those closed with a code).
    pub identifies: u32,
    /// RESUMEs that reattached a session.
    pub resumes: u32,
    pub open_connections: usize,
    /// Intents of the last IDENTIFY.
    pub intents: Option<u64>,
}

struct Shared {
    world: Mutex<World>,
    notify: Notify,
    wait_timeout: Duration,
}

impl Shared {
    /// Runs `f` on the world and wakes waiters: for anything that changes it.
    fn with<T>(&self, f: impl FnOnce(&mut World) -> T) -> T {
        let out = {
            let mut w = self.world.lock().unwrap_or_else(|e| e.into_inner());
            f(&mut w)
        };
        self.notify.notify_waiters();
        out
    }

    /// Reads the world without waking waiters, so that waiting loops do not spin.
    fn read<T>(&self, f: impl FnOnce(&World) -> T) -> T {
        let w = self.world.lock().unwrap_or_else(|e| e.into_inner());
        f(&w)
    }
}

struct Guard(watch::Sender<bool>);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.send(true);
    }
}

/// The running fake. Clones share it; it stops when the last clone is dropped.
#[derive(Clone)]
pub struct FakeDiscord {
    shared: Arc<Shared>,
    http: SocketAddr,
    tls: SocketAddr,
    gateway: SocketAddr,
    ca_pem: Arc<String>,
    _guard: Arc<Guard>,
}

/// The first `<#id>` in a text.
pub fn channel_link(text: &str) -> Option<u64> {
    text.split("<#").nth(1)?.split('>').next()?.parse().ok()
}

impl FakeDiscord {
    pub async fn start() -> FakeDiscord {
        Self::start_with(FakeOptions::default()).await
    }

    pub async fn start_with(opts: FakeOptions) -> FakeDiscord {
        let bind = || async {
            TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind a local port")
        };
        let (http_l, tls_l, gw_l) = (bind().await, bind().await, bind().await);
        let http = http_l.local_addr().expect("local address");
        let tls_addr = tls_l.local_addr().expect("local address");
        let gateway = gw_l.local_addr().expect("local address");
        let gw_state = gateway::GatewayState::new(
            format!("ws://{gateway}"),
            opts.heartbeat_interval.as_millis() as u64,
        );
        let limits = ratelimit::RateState::new(opts.global_limit, opts.enforce_route_limits);
        let mut world = World::new(
            gw_state,
            limits,
            opts.interaction_deadline,
            opts.channel_rename_limit,
        );
        world.interaction_token_lifetime = opts.interaction_token_lifetime;
        world.nonce_window = opts.nonce_window;
        let shared = Arc::new(Shared {
            world: Mutex::new(world),
            notify: Notify::new(),
            wait_timeout: opts.wait_timeout,
        });
        let certs = tls::make();
        let (tx, rx) = watch::channel(false);
        tokio::spawn(rest::serve(shared.clone(), http_l, None, rx.clone()));
        tokio::spawn(rest::serve(
            shared.clone(),
            tls_l,
            Some(certs.acceptor),
            rx.clone(),
        ));
        tokio::spawn(gateway::serve(shared.clone(), gw_l, rx));
        FakeDiscord {
            shared,
            http,
            tls: tls_addr,
            gateway,
            ca_pem: Arc::new(certs.ca_pem),
            _guard: Arc::new(Guard(tx)),
        }
    }

    // ----- addresses -----

    /// For serenity's `HttpBuilder::proxy`: `http://127.0.0.1:P` (REST is under `/api/v10`).
    pub fn api_base(&self) -> String {
        format!("http://{}", self.http)
    }

    pub fn gateway_url(&self) -> String {
        format!("ws://{}", self.gateway)
    }

    /// Where `discord.com:443` should resolve to in direct mode.
    pub fn tls_addr(&self) -> SocketAddr {
        self.tls
    }

    /// The CA that signed the fake's `discord.com` certificate, PEM.
    pub fn ca_pem(&self) -> String {
        self.ca_pem.to_string()
    }

    /// A reqwest client for direct mode: trusts the fake's CA and resolves discord.com to it.
    pub fn direct_client(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .use_rustls_tls()
            .add_root_certificate(
                reqwest::Certificate::from_pem(self.ca_pem.as_bytes()).expect("CA PEM"),
            )
            .resolve("discord.com", self.tls)
            .timeout(Duration::from_secs(30))
            .build()
            .expect("reqwest client")
    }

    /// serenity's Http in proxy mode (its rate limiter off, as serenity requires for a proxy),
    /// with the application id that READY would give it.
    pub fn proxy_http(&self) -> serenity::http::Http {
        serenity::http::HttpBuilder::new(TOKEN)
            .proxy(self.api_base())
            .ratelimiter_disabled(true)
            .application_id(APPLICATION_ID.into())
            .build()
    }

    /// serenity's Http in direct mode: HTTPS to discord.com with serenity's rate limiter on.
    pub fn direct_http(&self) -> serenity::http::Http {
        serenity::http::HttpBuilder::new(TOKEN)
            .client(self.direct_client())
            .application_id(APPLICATION_ID.into())
            .build()
    }

    /// Every route template the fake serves, `"METHOD /template"`.
    pub fn routes() -> Vec<String> {
        rest::ROUTES
            .iter()
            .map(|(m, t)| format!("{m} {t}"))
            .collect()
    }

    // ----- the world -----

    /// A new role, unmentionable and without permissions, as Discord creates them.
    pub fn add_role(&self, name: &str) -> u64 {
        self.shared.with(|w| {
            let id = w.next_id();
            let position = w.roles.len() as u64;
            let role = world::RoleRec {
                id,
                name: name.into(),
                position,
                permissions: 0,
                mentionable: false,
                bot_id: None,
            };
            let json = w.role_json(&role);
            w.roles.insert(id, role);
            w.dispatch(
                "GUILD_ROLE_CREATE",
                serde_json::json!({ "guild_id": GUILD_ID.to_string(), "role": json }),
                Some(INTENT_GUILDS),
            );
            id
        })
    }

    /// Changes a role's `mentionable` and permission bits (GUILD_ROLE_UPDATE).
    pub fn set_role(&self, role: u64, mentionable: bool, permissions: u64) {
        self.shared.with(|w| {
            let r = w
                .roles
                .get_mut(&role)
                .unwrap_or_else(|| panic!("no role {role}"));
            r.mentionable = mentionable;
            r.permissions = permissions;
            let json = w.role_json(&w.roles[&role]);
            w.dispatch(
                "GUILD_ROLE_UPDATE",
                serde_json::json!({ "guild_id": GUILD_ID.to_string(), "role": json }),
                Some(INTENT_GUILDS),
            );
        });
    }

    /// The bot's permissions, through its managed role.
    pub fn set_bot_permissions(&self, permissions: u64) {
        self.set_role(BOT_ROLE_ID, false, permissions);
    }

    /// Sets (or, with both empty, removes) a channel's permission overwrite for a role (the
    /// guild id for @everyone) or, with `member`, a user (CHANNEL_UPDATE). The bot's permissions
    /// in the channel, and in threads under it, follow as Discord computes them.
    pub fn set_overwrite(&self, channel: u64, target: u64, member: bool, allow: u64, deny: u64) {
        self.shared.with(|w| {
            let ch = w
                .channels
                .get(&channel)
                .unwrap_or_else(|| panic!("no channel {channel}"));
            assert!(!ch.is_thread(), "threads take their parent's overwrites");
            let list = w.overwrites.entry(channel).or_default();
            list.retain(|o| !(o.id == target && o.member == member));
            if allow != 0 || deny != 0 {
                list.push(perms::OverwriteRec {
                    id: target,
                    member,
                    allow,
                    deny,
                });
            }
            let v = w.channel_json(&w.channels[&channel]);
            w.dispatch("CHANNEL_UPDATE", v, Some(INTENT_GUILDS));
        });
    }

    /// The bot's permissions in a channel, computed from its roles and the overwrites.
    pub fn bot_permissions_in(&self, channel: u64) -> u64 {
        self.shared.read(|w| w.bot_channel_permissions(channel))
    }

    /// A new user who joins the guild with these roles (GUILD_MEMBER_ADD).
    pub fn add_member(&self, name: &str, roles: &[u64]) -> u64 {
        self.shared.with(|w| {
            for r in roles {
                assert!(w.roles.contains_key(r), "no role {r}");
            }
            let id = w.next_id();
            w.users.insert(
                id,
                world::UserRec {
                    id,
                    name: name.into(),
                    bot: false,
                },
            );
            let joined_at = world::iso(world::now_ms());
            w.members.insert(
                id,
                world::MemberRec {
                    user: id,
                    roles: roles.to_vec(),
                    joined_at,
                },
            );
            let mut m = w.member_json(id, true, false);
            m["guild_id"] = world::id_str(GUILD_ID);
            w.dispatch("GUILD_MEMBER_ADD", m, Some(INTENT_GUILD_MEMBERS));
            id
        })
    }

    /// A member's roles as the guild holds them now.
    pub fn member_roles(&self, user: u64) -> Vec<u64> {
        self.shared.read(|w| {
            w.members
                .get(&user)
                .map(|m| m.roles.clone())
                .unwrap_or_default()
        })
    }

    /// Moves a role in the hierarchy (GUILD_ROLE_UPDATE); the bot manages only roles below its own.
    pub fn set_role_position(&self, role: u64, position: u64) {
        self.shared.with(|w| {
            let r = w
                .roles
                .get_mut(&role)
                .unwrap_or_else(|| panic!("no role {role}"));
            r.position = position;
            let json = w.role_json(&w.roles[&role]);
            w.dispatch(
                "GUILD_ROLE_UPDATE",
                serde_json::json!({ "guild_id": GUILD_ID.to_string(), "role": json }),
                Some(INTENT_GUILDS),
            );
        });
    }

    /// Replaces a member's roles (GUILD_MEMBER_UPDATE).
    pub fn set_member_roles(&self, user: u64, roles: &[u64]) {
        self.shared.with(|w| {
            let m = w
                .members
                .get_mut(&user)
                .unwrap_or_else(|| panic!("no member {user}"));
            m.roles = roles.to_vec();
            let mut m = w.member_json(user, true, false);
            m["guild_id"] = world::id_str(GUILD_ID);
            w.dispatch("GUILD_MEMBER_UPDATE", m, Some(INTENT_GUILD_MEMBERS));
        });
    }

    /// A channel or category (CHANNEL_CREATE); `parent` must be a category.
    pub fn add_channel(&self, name: &str, kind: ChannelKind, parent: Option<u64>) -> u64 {
        self.shared.with(|w| {
            if let Some(p) = parent {
                assert!(
                    w.channels.get(&p).is_some_and(|c| c.kind == 4),
                    "parent {p} is not a category"
                );
            }
            let id = w.next_id();
            let position = w
                .channels
                .values()
                .filter(|c| c.parent_id == parent)
                .count() as u64;
            let ch = world::ChannelRec {
                id,
                kind: kind.code(),
                name: name.into(),
                parent_id: parent,
                topic: None,
                position,
                nsfw: false,
                rate_limit_per_user: 0,
                last_message_id: None,
                last_pin_timestamp: None,
                thread: None,
                renames: vec![],
            };
            // As in Discord's client, a channel made in a category starts synced with it.
            if let Some(list) = parent.and_then(|p| w.overwrites.get(&p).cloned()) {
                w.overwrites.insert(id, list);
            }
            let json = w.channel_json(&ch);
            w.channels.insert(id, ch);
            w.dispatch("CHANNEL_CREATE", json, Some(INTENT_GUILDS));
            id
        })
    }

    /// Replaces a channel's or category's permission overwrites (CHANNEL_UPDATE); `overwrites`
    /// in Discord's form, e.g. `[{"id": role, "type": 0, "allow": "1024", "deny": "0"}]`.
    pub fn set_permission_overwrites(&self, channel: u64, overwrites: Value) {
        self.shared.with(|w| {
            assert!(w.channels.contains_key(&channel), "no channel {channel}");
            let o = overwrites
                .as_array()
                .expect("overwrites are an array")
                .iter()
                .map(|v| perms::OverwriteRec::from_json(v).expect("an overwrite as Discord has it"))
                .collect();
            w.overwrites.insert(channel, o);
            let json = w.channel_json(&w.channels[&channel]);
            w.dispatch("CHANNEL_UPDATE", json, Some(INTENT_GUILDS));
        });
    }

    /// A public thread started by the guild owner (THREAD_CREATE).
    pub fn add_thread(&self, parent: u64, name: &str) -> u64 {
        self.shared.with(|w| {
            assert!(
                w.channels
                    .get(&parent)
                    .is_some_and(|c| matches!(c.kind, 0 | 5)),
                "threads need a text parent"
            );
            let id = w.next_id();
            let now = world::iso(world::now_ms());
            let ch = world::ChannelRec {
                id,
                kind: 11,
                name: name.into(),
                parent_id: Some(parent),
                topic: None,
                position: 0,
                nsfw: false,
                rate_limit_per_user: 0,
                last_message_id: None,
                last_pin_timestamp: None,
                thread: Some(world::ThreadMeta {
                    archived: false,
                    locked: false,
                    auto_archive_duration: 4320,
                    owner_id: OWNER_ID,
                    create_timestamp: now.clone(),
                    archive_timestamp: now,
                    message_count: 0,
                    invitable: true,
                }),
                renames: vec![],
            };
            let mut json = w.channel_json(&ch);
            w.channels.insert(id, ch);
            json["newly_created"] = serde_json::json!(true);
            w.dispatch("THREAD_CREATE", json, Some(INTENT_GUILDS));
            id
        })
    }

    /// Switches privileged intents on for the application, as its developer-portal toggles do
    /// (default: none, as for a new application; e.g. [`INTENT_MESSAGE_CONTENT`]). IDENTIFY
    /// asking for others is closed with 4014, and REST hides content without MESSAGE_CONTENT.
    pub fn set_privileged_intents(&self, bits: u64) {
        self.shared
            .with(|w| w.privileged_intents = bits & world::PRIVILEGED_INTENTS);
    }

    pub fn channel(&self, id: u64) -> Option<Value> {
        self.shared
            .read(|w| w.channels.get(&id).map(|c| w.channel_json(c)))
    }

    /// The first channel or thread with this name.
    pub fn channel_named(&self, name: &str) -> Option<Value> {
        self.shared.read(|w| {
            w.channels
                .values()
                .find(|c| c.name == name)
                .map(|c| w.channel_json(c))
        })
    }

    pub fn channels(&self) -> Vec<Value> {
        self.shared
            .read(|w| w.channels.values().map(|c| w.channel_json(c)).collect())
    }

    /// Registered application commands, guild and global (guild ones carry `guild_id`).
    pub fn commands(&self) -> Vec<Value> {
        self.shared.read(|w| w.commands.clone())
    }

    /// Visible messages of a channel, oldest first (no ephemeral or deleted ones).
    pub fn messages(&self, channel: u64) -> Vec<Value> {
        self.shared.read(|w| {
            w.channel_messages(channel)
                .iter()
                .map(|id| w.messages[id].obj.clone())
                .collect()
        })
    }

    /// Any message by id, ephemeral ones included; `None` once deleted.
    pub fn message(&self, id: u64) -> Option<Value> {
        self.shared.read(|w| {
            w.messages
                .get(&id)
                .filter(|m| !m.deleted)
                .map(|m| m.obj.clone())
        })
    }

    /// Who the message notified when it was sent.
    pub fn pings(&self, message: u64) -> Pings {
        self.shared.read(|w| {
            w.messages
                .get(&message)
                .unwrap_or_else(|| panic!("no message {message}"))
                .pings
                .clone()
        })
    }

    /// The bytes of a file attached to a message.
    pub fn attachment(&self, message: u64, filename: &str) -> Option<Vec<u8>> {
        self.shared.read(|w| {
            w.messages
                .get(&message)?
                .files
                .iter()
                .find(|(_, f)| f.filename == filename)
                .map(|(_, f)| f.bytes.clone())
        })
    }

    /// Reactions on a message: emoji (as in URLs) and who reacted.
    pub fn reactions(&self, message: u64) -> Vec<(String, Vec<u64>)> {
        self.shared.read(|w| {
            w.messages
                .get(&message)
                .map(|m| {
                    m.reactions
                        .iter()
                        .map(|r| (r.key.clone(), r.users.clone()))
                        .collect()
                })
                .unwrap_or_default()
        })
    }

    /// Archives a thread as Discord's inactivity timer does, or archives and locks it as a
    /// moderator may (THREAD_UPDATE).
    pub fn archive_thread(&self, thread: u64, locked: bool) {
        self.shared.with(|w| w.archive_thread(thread, locked));
    }

    /// `n` active threads under `parent`, made without telling anyone: a cheap way to bring the
    /// server near Discord's cap of 1,000 active threads.
    pub fn fill_active_threads(&self, parent: u64, n: usize) -> Vec<u64> {
        self.shared.with(|w| w.fill_active_threads(parent, n))
    }

    pub fn active_threads(&self) -> usize {
        self.shared.read(|w| w.active_threads())
    }

    /// Who is in a thread, its creator first.
    pub fn thread_members(&self, thread: u64) -> Vec<u64> {
        self.shared
            .read(|w| w.thread_members.get(&thread).cloned().unwrap_or_default())
    }

    /// Tags a moderator made on a forum; returns their ids.
    pub fn add_forum_tags(&self, forum: u64, names: &[&str]) -> Vec<u64> {
        self.shared.with(|w| {
            assert!(w.is_forum(forum), "{forum} is not a forum");
            let ids: Vec<u64> = names.iter().map(|_| w.next_id()).collect();
            let tags = w.forum_tags.entry(forum).or_default();
            for (id, name) in ids.iter().zip(names) {
                tags.push(serde_json::json!({
                    "id": id.to_string(), "name": name, "moderated": false,
                    "emoji_id": null, "emoji_name": null,
                }));
            }
            ids
        })
    }

    /// Sets a forum's REQUIRE_TAG flag, as a moderator may: new posts must carry a tag.
    pub fn require_forum_tag(&self, forum: u64) {
        self.shared.with(|w| {
            assert!(w.is_forum(forum), "{forum} is not a forum");
            w.forums_requiring_tags.insert(forum);
        });
    }

    /// The tag names of a forum, in order.
    pub fn forum_tag_names(&self, forum: u64) -> Vec<String> {
        self.shared.read(|w| {
            w.forum_tags
                .get(&forum)
                .map(|t| {
                    t.iter()
                        .filter_map(|t| t["name"].as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        })
    }

    /// The names of the tags applied to a forum post.
    pub fn applied_tag_names(&self, post: u64) -> Vec<String> {
        self.shared.read(|w| {
            let forum = w.channels.get(&post).and_then(|c| c.parent_id);
            let tags = forum.and_then(|f| w.forum_tags.get(&f));
            w.applied_tags
                .get(&post)
                .map(|ids| {
                    ids.iter()
                        .filter_map(|id| {
                            tags?
                                .iter()
                                .find(|t| world::parse_id(t.get("id")) == Some(*id))
                        })
                        .filter_map(|t| t["name"].as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        })
    }

    /// Ids of the pinned messages of a channel.
    pub fn pinned(&self, channel: u64) -> Vec<u64> {
        self.shared.read(|w| {
            w.messages
                .iter()
                .filter(|(_, m)| m.channel_id == channel && !m.deleted && m.pinned_at.is_some())
                .map(|(id, _)| *id)
                .collect()
        })
    }

    // ----- users acting -----

    /// A member runs a registered chat-input command.
    pub fn slash(&self, user: u64, channel: u64, command: &str, options: Value) -> Interaction {
        self.shared
            .with(|w| w.command_interaction(user, channel, command, &options, None))
    }

    /// A command sent past Discord's client-side checks (lengths, choices, required options), as
    /// a modified client could: `options` is Discord's array form, sent as it is.
    pub fn slash_unchecked(
        &self,
        user: u64,
        channel: u64,
        command: &str,
        options: Value,
    ) -> Interaction {
        self.shared
            .with(|w| w.command_interaction_raw(user, channel, command, options))
    }

    /// A member types into option `focused` of a command; its value may be partial.
    pub fn autocomplete(
        &self,
        user: u64,
        channel: u64,
        command: &str,
        options: Value,
        focused: &str,
    ) -> Interaction {
        self.shared
            .with(|w| w.command_interaction(user, channel, command, &options, Some(focused)))
    }

    /// A member uses a message context-menu command on a message.
    pub fn message_command(&self, user: u64, message: u64, command: &str) -> Interaction {
        self.shared
            .with(|w| w.context_menu(3, user, message, command))
    }

    /// A member uses a user context-menu command on another user.
    pub fn user_command(&self, user: u64, target: u64, command: &str) -> Interaction {
        self.shared
            .with(|w| w.context_menu(2, user, target, command))
    }

    /// A member presses a button on a message.
    pub fn click(&self, user: u64, message: u64, custom_id: &str) -> Interaction {
        self.shared.with(|w| w.click(user, message, custom_id))
    }

    /// A member picks values in a string select menu.
    pub fn select(&self, user: u64, message: u64, custom_id: &str, values: &[&str]) -> Interaction {
        self.shared
            .with(|w| w.select(user, message, custom_id, values))
    }

    /// The member fills in and submits the modal the bot opened in answer to `opened_by`.
    pub fn submit_modal(&self, opened_by: &Interaction, fields: &[(&str, &str)]) -> Interaction {
        self.shared.with(|w| w.submit_modal(opened_by, fields))
    }

    /// A member posts a message; returns its id.
    pub fn say(&self, user: u64, channel: u64, content: &str) -> u64 {
        self.say_with(user, channel, serde_json::json!({ "content": content }))
    }

    /// A member posts a message with a full body (replies through `message_reference`, embeds...).
    pub fn say_with(&self, user: u64, channel: u64, body: Value) -> u64 {
        self.shared.with(|w| w.user_message(user, channel, &body))
    }

    /// `n` messages by `user` said in `channel` without the gateway telling anyone, as while
    /// the bot is down; the i-th (from 1) reads `message i of n`. Returns their ids, oldest
    /// first. History reads (`after`, `limit` ≤ 100) page through them as Discord would.
    pub fn seed_messages(&self, user: u64, channel: u64, n: usize) -> Vec<u64> {
        self.shared
            .with(|w| w.seed_messages(user, channel, n, |i| format!("message {i} of {n}")))
    }

    /// The author edits a message (MESSAGE_UPDATE).
    pub fn edit(&self, message: u64, content: &str) {
        self.shared.with(|w| {
            w.edit_message(
                message,
                &serde_json::json!({ "content": content }),
                &[],
                validate::MessageTarget::Channel,
            )
            .unwrap_or_else(|e| panic!("Discord would refuse this edit: {}", e.body))
        });
    }

    /// The message is deleted (MESSAGE_DELETE).
    pub fn delete(&self, message: u64) {
        self.shared.with(|w| {
            w.delete_message(message)
                .unwrap_or_else(|e| panic!("cannot delete: {}", e.body))
        });
    }

    /// A member reacts with a unicode emoji (MESSAGE_REACTION_ADD).
    pub fn react(&self, user: u64, message: u64, emoji: &str) {
        self.shared.with(|w| {
            assert!(
                w.messages.get(&message).is_some_and(|m| !m.deleted),
                "no message {message}"
            );
            rest::react(w, message, emoji, user, true)
        });
    }

    /// A member pins a message (CHANNEL_PINS_UPDATE and a "pinned a message" system message).
    pub fn pin(&self, user: u64, message: u64) {
        self.shared.with(|w| {
            assert!(
                w.messages.get(&message).is_some_and(|m| !m.deleted),
                "no message {message}"
            );
            rest::pin(w, message, user).unwrap_or_else(|e| panic!("cannot pin: {}", e.body))
        });
    }

    pub fn unpin(&self, message: u64) {
        self.shared.with(|w| rest::unpin(w, message));
    }

    /// Sends any dispatch to every live session, for events the helpers do not cover.
    pub fn dispatch_raw(&self, event: &str, data: Value) {
        self.shared.with(|w| w.dispatch(event, data, None));
    }

    // ----- interactions -----

    /// The bot's first answer, if it came.
    pub fn response(&self, i: &Interaction) -> Option<InteractionResponse> {
        self.shared.read(|w| {
            w.interactions
                .get(&i.id)?
                .ack
                .as_ref()
                .map(|a| InteractionResponse {
                    kind: a.kind,
                    data: a.data.clone(),
                    files: a.files.clone(),
                    latency: a.latency,
                })
        })
    }

    /// When the interaction was acknowledged and answered, if it was acknowledged.
    pub fn timing(&self, i: &Interaction) -> Option<Timing> {
        self.shared.read(|w| {
            let rec = w.interactions.get(&i.id)?;
            let ack = rec.ack.as_ref()?;
            Some(Timing {
                ack: ack.latency,
                ack_since_created: ack.since_created,
                answered_since_created: rec.answered.map(|t| t - rec.created),
            })
        })
    }

    /// The owner declares an incident in #general; returns its channel (or thread), read from
    /// the link in the filled-in answer.
    pub async fn open_incident(&self, title: &str, severity: &str) -> u64 {
        let i = self.slash(
            OWNER_ID,
            GENERAL_CHANNEL_ID,
            "incident",
            serde_json::json!({ "open": { "title": title, "severity": severity } }),
        );
        let original = self
            .wait_until(Duration::from_secs(10), |f| {
                f.original(&i)
                    .filter(|m| m["content"].as_str().is_some_and(|c| c.contains("Opened")))
            })
            .await
            .unwrap_or_else(|| panic!("{title} was not opened: {:?}", self.original(&i)));
        let content = original["content"].as_str().unwrap();
        channel_link(content).unwrap_or_else(|| panic!("no channel link in {content}"))
    }

    /// Waits for the bot's first answer to an interaction.
    pub async fn wait_response(&self, i: &Interaction) -> InteractionResponse {
        let timeout = self.shared.wait_timeout;
        match self.wait_until(timeout, |f| f.response(i)).await {
            Some(r) => r,
            None => panic!(
                "no response to interaction {} within {timeout:?}; requests: {:#?}",
                i.id,
                self.recent_requests(10)
            ),
        }
    }

    /// The message `@original` refers to now (the reply, the filled-in deferral, or the updated message).
    pub fn original(&self, i: &Interaction) -> Option<Value> {
        self.shared.read(|w| {
            let id = w.interactions.get(&i.id)?.original?;
            w.messages
                .get(&id)
                .filter(|m| !m.deleted)
                .map(|m| m.obj.clone())
        })
    }

    pub fn followups(&self, i: &Interaction) -> Vec<Value> {
        self.shared.read(|w| {
            w.interactions
                .get(&i.id)
                .map(|x| {
                    x.followups
                        .iter()
                        .filter_map(|m| w.messages.get(m))
                        .map(|m| m.obj.clone())
                        .collect()
                })
                .unwrap_or_default()
        })
    }

    /// Whether the interaction's response message existed and was deleted since.
    pub fn original_deleted(&self, i: &Interaction) -> bool {
        self.shared.read(|w| {
            w.interactions
                .get(&i.id)
                .and_then(|x| x.original)
                .and_then(|m| w.messages.get(&m))
                .is_some_and(|m| m.deleted)
        })
    }

    /// Ends the interaction's token as its 15 minutes running out would: webhook calls get 401 50027.
    pub fn expire_interaction(&self, i: &Interaction) {
        self.shared.with(|w| {
            if let Some(x) = w.interactions.get_mut(&i.id) {
                x.invalidated = true;
            }
        });
    }

    // ----- gateway -----

    pub fn gateway_stats(&self) -> GatewayStats {
        self.shared.read(|w| GatewayStats {
            connections: w.gateway.connections,
            identifies: w.gateway.identifies,
            resumes: w.gateway.resumes,
            open_connections: w.gateway.open_connections(),
            intents: w.gateway.intents,
        })
    }

    /// Waits until the bot has identified (or resumed) on an open connection.
    pub async fn wait_ready(&self) {
        let timeout = self.shared.wait_timeout;
        if self
            .wait_until(timeout, |f| {
                f.shared.read(|w| w.gateway.ready()).then_some(())
            })
            .await
            .is_none()
        {
            panic!(
                "the bot did not get READY within {timeout:?}; gateway: {:?}",
                self.gateway_stats()
            );
        }
    }

    /// Applies a fault to every open gateway connection; returns how many there were.
    pub fn gateway_fault(&self, fault: GatewayFault) -> usize {
        self.shared.read(|w| w.gateway.fault(&fault))
    }

    /// Answers every IDENTIFY with this close code (e.g. 4004) until set back to `None`.
    pub fn close_identify_with(&self, code: Option<u16>) {
        self.shared.with(|w| w.gateway.identify_close = code);
    }

    /// Stops (or resumes) answering heartbeats with op 11, as a zombied connection would.
    pub fn set_heartbeat_acks(&self, on: bool) {
        self.shared.with(|w| w.gateway.heartbeat_acks = on);
    }

    pub fn frames(&self) -> Vec<GatewayFrame> {
        self.shared.read(|w| w.frames.clone())
    }

    /// Dispatches the fake sent, in order (`t`, `d`).
    pub fn dispatches(&self) -> Vec<(String, Value)> {
        self.frames()
            .into_iter()
            .filter(|f| f.direction == Direction::ToBot && f.op() == Some(0))
            .map(|f| (f.event().unwrap_or("").to_string(), f.payload["d"].clone()))
            .collect()
    }

    // ----- REST faults and limits -----

    /// The next request to `route` (`"METHOD /template"` as in [`Request::route`], or `"*"`) gets `fault`.
    pub fn fail_next(&self, route: &str, fault: Fault) {
        self.fail_next_n(route, fault, 1);
    }

    pub fn fail_next_n(&self, route: &str, fault: Fault, times: u32) {
        assert!(
            rest::known_route(route),
            "{route:?} is not a route the fake serves; see Request::route"
        );
        self.shared
            .with(|w| w.limits.add_fault(route, fault, times));
    }

    /// A storm: every request to `route` (or `"*"`) for the next `window` gets `fault`. A 429's
    /// `retry_after` becomes the time left in the window when that is longer, as Discord says
    /// when its limit lifts; a global 429 storm on `"*"` spares interaction routes, which
    /// Discord's global limit does not cover.
    pub fn fail_for(&self, route: &str, fault: Fault, window: Duration) {
        assert!(
            rest::known_route(route),
            "{route:?} is not a route the fake serves; see Request::route"
        );
        self.shared
            .with(|w| w.limits.add_storm(route, fault, window));
    }

    /// Lifts every injected fault and storm still pending.
    pub fn clear_faults(&self) {
        self.shared.with(|w| w.limits.clear_faults());
    }

    /// Enforces (or lifts) a global ceiling of requests per second.
    pub fn set_global_limit(&self, per_second: Option<u32>) {
        self.shared.with(|w| w.limits.set_global_limit(per_second));
    }

    /// 429 answers so far.
    pub fn rate_limited_count(&self) -> u64 {
        self.shared.read(|w| w.limits.rate_limited)
    }

    /// 429s answered because a route bucket was exhausted (direct mode), not injected.
    pub fn route_limited_count(&self) -> u64 {
        self.shared.read(|w| w.limits.route_limited)
    }

    /// Requests held back on the plain-HTTP port until their bucket had room (proxy mode).
    pub fn queued_count(&self) -> u64 {
        self.shared.read(|w| w.limits.queued)
    }

    /// Answers Discord counts toward its invalid-request limit: 401, 403, and 429 other than shared.
    pub fn invalid_request_count(&self) -> u64 {
        self.shared.read(|w| w.limits.invalid)
    }

    // ----- recordings and waiting -----

    pub fn requests(&self) -> Vec<Request> {
        self.shared.read(|w| w.requests.clone())
    }

    /// Requests to one route template, e.g. `"POST /channels/{channel}/messages"`.
    pub fn requests_to(&self, route: &str) -> Vec<Request> {
        self.shared.read(|w| {
            w.requests
                .iter()
                .filter(|r| r.route == route)
                .cloned()
                .collect()
        })
    }

    fn recent_requests(&self, n: usize) -> Vec<String> {
        self.shared.read(|w| {
            w.requests
                .iter()
                .rev()
                .take(n)
                .map(|r| format!("{} {} -> {} {}", r.method, r.path, r.status, r.response))
                .collect()
        })
    }

    /// Polls `f` whenever the fake changes, until it returns `Some` or `timeout` passes.
    pub async fn wait_until<T>(
        &self,
        timeout: Duration,
        mut f: impl FnMut(&FakeDiscord) -> Option<T>,
    ) -> Option<T> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.shared.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(v) = f(self) {
                return Some(v);
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return None;
            }
            // The short cap also catches changes that only the passing of time makes visible.
            let _ =
                tokio::time::timeout_at(deadline.min(now + Duration::from_millis(50)), notified)
                    .await;
        }
    }

    /// Waits for a request matching `pred`, among all so far.
    pub async fn wait_for_request(&self, pred: impl Fn(&Request) -> bool) -> Request {
        let timeout = self.shared.wait_timeout;
        let found = self
            .wait_until(timeout, |f| {
                f.shared
                    .read(|w| w.requests.iter().find(|r| pred(r)).cloned())
            })
            .await;
        found.unwrap_or_else(|| {
            panic!(
                "no matching request within {timeout:?}; recent: {:#?}",
                self.recent_requests(10)
            )
        })
    }

    /// Waits for a stored message (any channel, ephemeral included) matching `pred`.
    pub async fn wait_message(&self, pred: impl Fn(&Value) -> bool) -> Value {
        let timeout = self.shared.wait_timeout;
        let found = self
            .wait_until(timeout, |f| {
                f.shared.read(|w| {
                    w.messages
                        .values()
                        .filter(|m| !m.deleted)
                        .map(|m| &m.obj)
                        .find(|m| pred(m))
                        .cloned()
                })
            })
            .await;
        found.unwrap_or_else(|| {
            panic!(
                "no matching message within {timeout:?}; recent requests: {:#?}",
                self.recent_requests(10)
            )
        })
    }
}
