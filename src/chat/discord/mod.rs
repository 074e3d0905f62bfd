//! The Discord edge: serenity's gateway in, REST out, and the [`Chat`] trait over both.

mod capture;
mod closes;
mod content;
mod deferred;
pub mod doctor;
mod interactions;
mod metered;
pub mod outgoing;
pub mod permissions;
mod places;
mod responder;
mod threads;

use crate::app::App;
use crate::commands::options;
use crate::config::{Config, IncidentMode, Secrets, DISCORD_API};
use crate::domain::UserRef;
use crate::message::Post;
use crate::platform::{Chat, ChatError, Place};
use crate::telemetry::Telemetry;
use async_trait::async_trait;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use serenity::all::{
    ApplicationId, ChannelId, Client, ClientBuilder, CreateMessage, GatewayIntents, GuildId, Http,
    HttpBuilder, MessageId, ShardManager,
};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

pub use closes::layer as close_watch;
pub use interactions::Bot;

/// Why the bot could not start or had to stop. Worded for the operator reading the terminal.
#[derive(Debug, thiserror::Error)]
pub enum DiscordError {
    #[error("configuration: {0}")]
    Config(String),
    #[error("Discord rejected the bot token (gateway close 4004). Check SITREP_DISCORD_TOKEN: reset it under Bot in the developer portal and set it again.")]
    BadToken,
    #[error("Discord refused the gateway intents (close 4013/4014) even without the Message Content intent, which sitrep does without when refused. The intents sitrep asks for (Guilds, Guild Messages, Guild Message Reactions) are not privileged: check that [discord] api_base leads to Discord or a proxy that passes the gateway through unchanged.")]
    Intents,
    #[error("Discord refused the shard setup (gateway close {0}): sitrep runs one shard, which Discord allows for up to 2,500 servers; remove the bot from servers it does not serve.")]
    Sharding(u16),
    #[error("Discord refused the gateway API version (close 4012): this build speaks gateway v10. Upgrade sitrep, or check that [discord] api_base leads to Discord or a proxy that passes the gateway through unchanged.")]
    ApiVersion,
    #[error("Discord keeps closing the gateway before the session starts ({0} attempts in a row); giving up instead of reconnecting in a loop. Check the token, the intents and the API version.")]
    ReconnectLoop(u32),
    #[error("registering commands failed: {0}")]
    Register(String),
    #[error("gateway: {0}")]
    Gateway(String),
}

/// Builds serenity's REST client: through a proxy (serenity's limiter off, as it requires) or
/// direct to discord.com (limiter on), always with timeouts, which serenity does not set.
pub fn build_http(config: &Config, secrets: &Secrets) -> Result<Http, DiscordError> {
    let d = &config.discord;
    let token = secrets
        .discord_token
        .as_deref()
        .ok_or_else(|| DiscordError::Config("SITREP_DISCORD_TOKEN is not set".into()))?;
    let mut client = reqwest::Client::builder()
        .use_rustls_tls()
        .connect_timeout(d.connect_timeout.0)
        .timeout(d.request_timeout.0);
    if let Some(ca) = &d.ca_file {
        let pem = std::fs::read(ca)
            .map_err(|e| DiscordError::Config(format!("ca_file {}: {e}", ca.display())))?;
        let cert = reqwest::Certificate::from_pem(&pem)
            .map_err(|e| DiscordError::Config(format!("ca_file {}: {e}", ca.display())))?;
        client = client.add_root_certificate(cert);
    }
    if let Some(ct) = &d.connect_to {
        client = client.resolve(&ct.host, ct.addr);
    }
    let client = client
        .build()
        .map_err(|e| DiscordError::Config(format!("HTTP client: {e}")))?;
    let mut builder = HttpBuilder::new(token).client(client);
    if let Some(app) = d.application_id {
        builder = builder.application_id(ApplicationId::new(app));
    }
    let api = d.api_base.trim_end_matches('/');
    if api != DISCORD_API {
        builder = builder.proxy(api).ratelimiter_disabled(true);
    }
    Ok(builder.build())
}

/// The intents the bot asks for; message content unless switched off, as it is privileged (and
/// dropped again when Discord refuses it).
pub fn intents(config: &Config) -> GatewayIntents {
    let mut i = GatewayIntents::GUILDS
        | GatewayIntents::GUILD_MESSAGES
        | GatewayIntents::GUILD_MESSAGE_REACTIONS;
    if config.discord.message_content {
        i |= GatewayIntents::MESSAGE_CONTENT;
    }
    i
}

/// Registers every manifest in `commands/` verbatim with one bulk overwrite.
pub async fn register_commands(http: &Http, guild: Option<u64>) -> Result<usize, DiscordError> {
    let manifests = options::manifests();
    let n = manifests.len();
    let res = match guild {
        Some(g) => {
            http.create_guild_commands(GuildId::new(g), &manifests)
                .await
        }
        None => http.create_global_commands(&manifests).await,
    };
    res.map(|_| n).map_err(|e| {
        // Registration is the first call made with the token: name the setting to fix.
        if outgoing::status_of(&e) == Some(401) {
            DiscordError::Register(format!(
                "{e}: Discord refused the bot token; check SITREP_DISCORD_TOKEN"
            ))
        } else {
            DiscordError::Register(e.to_string())
        }
    })
}

/// The Discord side of [`Chat`].
pub struct DiscordChat {
    http: Arc<Http>,
    config: Arc<Config>,
    /// serenity limits per route only; this keeps the bot under Discord's global 50 requests/s.
    limiter: Arc<DefaultDirectRateLimiter>,
    /// Thread and forum-post bookkeeping (which incidents can give up an active thread, the
    /// forum's tag ids).
    threads: threads::ThreadState,
    telemetry: Arc<Telemetry>,
    places: places::Places,
    /// The bot's own user id, asked of Discord once, to tell its messages from others'.
    me: tokio::sync::OnceCell<u64>,
}

/// 46/s with a burst of 3: at most 49 requests in any one-second window.
pub fn global_limiter() -> DefaultDirectRateLimiter {
    RateLimiter::direct(
        Quota::per_second(NonZeroU32::new(46).expect("non-zero"))
            .allow_burst(NonZeroU32::new(3).expect("non-zero")),
    )
}

impl DiscordChat {
    pub fn new(
        http: Arc<Http>,
        config: Arc<Config>,
        limiter: Arc<DefaultDirectRateLimiter>,
    ) -> Self {
        DiscordChat {
            http,
            config,
            limiter,
            threads: threads::ThreadState::default(),
            telemetry: Arc::default(),
            places: places::Places::default(),
            me: tokio::sync::OnceCell::new(),
        }
    }

    /// Counts every REST call in `telemetry` (by default in one of its own that nobody reads).
    pub fn with_telemetry(mut self, telemetry: Arc<Telemetry>) -> Self {
        self.telemetry = telemetry;
        self
    }

    /// Lets the chat read the timeline, so that it knows which resolved incidents' threads may
    /// be archived when Discord's active-thread cap is reached.
    pub fn set_store(&self, store: crate::store::Store) {
        self.threads.set_store(store);
    }

    /// Runs one REST call under the global limiter; retries what Discord says is worth retrying
    /// (429 and 5xx, which reach us when serenity's own limiter is off in proxy mode).
    /// The server whose roles the bot gives and takes.
    fn role_guild(&self) -> Result<serenity::model::id::GuildId, ChatError> {
        self.config
            .discord
            .guild_id
            .map(serenity::model::id::GuildId::new)
            .ok_or_else(|| ChatError::Refused("[discord] guild_id is not set".into()))
    }

    async fn call<T, F, Fut>(&self, what: &str, f: F) -> Result<T, ChatError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = serenity::Result<T>>,
    {
        self.call_coded(what, f).await.map_err(|(e, _)| e)
    }

    /// As [`Self::call`], keeping Discord's JSON error code of a refusal (e.g. 50083, 160006),
    /// for the callers that can do something about it.
    async fn call_coded<T, F, Fut>(&self, what: &str, f: F) -> Result<T, (ChatError, Option<isize>)>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = serenity::Result<T>>,
    {
        let mut delay = Duration::from_millis(500);
        for attempt in 1..=5 {
            self.limiter.until_ready().await;
            match metered::metered(&self.telemetry, what, f()).await {
                Ok(v) => return Ok(v),
                Err(e) => {
                    let status = outgoing::status_of(&e);
                    let retry =
                        matches!(status, Some(429) | Some(500..=599)) || outgoing::is_timeout(&e);
                    if !retry || attempt == 5 {
                        tracing::warn!(what, ?status, error = %e, "Discord request failed");
                        // Only an answer that would come again is a refusal; Discord still
                        // busy or down after the retries is worth trying later.
                        let code = outgoing::code_of(&e);
                        return Err((
                            if status.is_some() && !retry {
                                ChatError::Refused(format!("{what}: {e}"))
                            } else {
                                ChatError::Unavailable(format!("{what}: {e}"))
                            },
                            code,
                        ));
                    }
                    tracing::info!(what, ?status, attempt, "Discord asked us to retry");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(8));
                }
            }
        }
        unreachable!("the loop returns on its last attempt")
    }
}

#[async_trait]
impl Chat for DiscordChat {
    async fn create_place(&self, name: &str, topic: &str) -> Result<Place, ChatError> {
        match self.config.discord.incident_mode {
            IncidentMode::Channel => self.create_channel_place(name, topic).await,
            IncidentMode::Thread | IncidentMode::Forum => {
                self.create_incident_thread(name, topic).await
            }
        }
    }

    async fn post(&self, channel: u64, post: Post) -> Result<u64, ChatError> {
        let msg: CreateMessage = outgoing::message(post.fit_limits());
        let sent = self
            .unarchiving(channel, "send message", || {
                ChannelId::new(channel).send_message(&self.http, msg.clone())
            })
            .await?;
        Ok(sent.id.get())
    }

    async fn archive(&self, channel: u64) -> Result<(), ChatError> {
        match self.config.discord.incident_mode {
            IncidentMode::Thread | IncidentMode::Forum => self.archive_thread(channel).await?,
            IncidentMode::Channel => self.archive_channel(channel).await?,
        }
        Ok(())
    }

    fn channel_mention(&self, channel: u64) -> String {
        format!("<#{channel}>")
    }

    fn user_mention(&self, user: &UserRef) -> String {
        format!("<@{}>", user.id)
    }

    fn stakeholder_channel(&self) -> Option<u64> {
        self.config.discord.stakeholder_channel_id
    }

    async fn edit(&self, channel: u64, message: u64, post: Post) -> Result<(), ChatError> {
        let b = outgoing::edit_message(post);
        self.unarchiving(channel, "edit message", || {
            ChannelId::new(channel).edit_message(&self.http, MessageId::new(message), b.clone())
        })
        .await?;
        Ok(())
    }

    async fn add_member(&self, channel: u64, user: u64) -> Result<(), ChatError> {
        self.add_thread_member(channel, user).await
    }

    async fn add_member_role(&self, user: u64, role: u64, reason: &str) -> Result<(), ChatError> {
        let guild = self.role_guild()?;
        self.call("add a member's role", || {
            self.http.add_member_role(
                guild,
                serenity::model::id::UserId::new(user),
                serenity::model::id::RoleId::new(role),
                Some(reason),
            )
        })
        .await
    }

    async fn remove_member_role(
        &self,
        user: u64,
        role: u64,
        reason: &str,
    ) -> Result<(), ChatError> {
        let guild = self.role_guild()?;
        self.call("remove a member's role", || {
            self.http.remove_member_role(
                guild,
                serenity::model::id::UserId::new(user),
                serenity::model::id::RoleId::new(role),
                Some(reason),
            )
        })
        .await
    }

    async fn set_labels(&self, channel: u64, labels: &[String]) -> Result<(), ChatError> {
        self.set_forum_tags(channel, labels).await
    }

    async fn find_sent(
        &self,
        channel: u64,
        since: chrono::DateTime<chrono::Utc>,
        post: &Post,
    ) -> Result<Option<u64>, ChatError> {
        let me = *self
            .me
            .get_or_try_init(|| async {
                self.call("read the bot's user", || self.http.get_current_user())
                    .await
                    .map(|u| u.id.get())
            })
            .await?;
        let want = outgoing::message(post.clone());
        let id = ChannelId::new(channel);
        // A snowflake for the moment, with a little room for clocks that disagree.
        let mut after = outgoing::snowflake_at(since - chrono::Duration::seconds(10));
        for _ in 0..outgoing::FIND_SENT_PAGES {
            let page = self
                .call("read the channel for a post sent before", || {
                    id.messages(
                        &self.http,
                        serenity::all::GetMessages::new()
                            .after(MessageId::new(after))
                            .limit(100),
                    )
                })
                .await?;
            if let Some(m) = page
                .iter()
                .find(|m| m.author.id.get() == me && outgoing::carries(m, &want))
            {
                return Ok(Some(m.id.get()));
            }
            match page.iter().map(|m| m.id.get()).max() {
                Some(last) if page.len() == 100 => after = last,
                _ => break,
            }
        }
        Ok(None)
    }

    fn channel_url(&self, channel: u64) -> Option<String> {
        let guild = self.config.discord.guild_id?;
        Some(format!("https://discord.com/channels/{guild}/{channel}"))
    }
}

/// The gateway client that runs now, so that shutdown and the watchdog stop the right one when
/// the bot has had to reconnect with fewer intents.
#[derive(Default)]
struct Current {
    closed: bool,
    shards: Option<Arc<ShardManager>>,
}

/// Marks the gateway closed and stops whichever client runs now.
async fn stop_current(current: &std::sync::Mutex<Current>) {
    let shards = {
        let mut c = current.lock().expect("current gateway");
        c.closed = true;
        c.shards.clone()
    };
    if let Some(s) = shards {
        s.shutdown_all().await;
    }
}

async fn client(
    http: Http,
    intents: GatewayIntents,
    bot: &Arc<std::sync::OnceLock<Arc<Bot>>>,
) -> Result<Client, DiscordError> {
    let handler = interactions::Handler { bot: bot.clone() };
    ClientBuilder::new_with_http(http, intents)
        .event_handler(handler)
        .await
        .map_err(|e| DiscordError::Gateway(e.to_string()))
}

/// Runs the bot until `shutdown` resolves or Discord ends the session for good. `make_app` gets
/// the Discord [`Chat`], so that handlers and serenity share one REST client and its limits.
/// The chat and the gateway record into `telemetry`; give the app the same one.
/// `new_http` makes another REST client like `http`, for the gateway client that replaces the
/// first when Discord refuses the message-content intent (serenity takes its client by value).
pub async fn run(
    config: Arc<Config>,
    http: Http,
    telemetry: Arc<Telemetry>,
    new_http: impl Fn() -> Result<Http, DiscordError>,
    make_app: impl FnOnce(Arc<dyn Chat>) -> App,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), DiscordError> {
    if config.discord.register_commands {
        let n = register_commands(&http, config.discord.guild_id).await?;
        tracing::info!(commands = n, "registered application commands");
    }
    let slot = Arc::new(std::sync::OnceLock::new());
    let mut wanted = intents(&config);
    let mut client = client(http, wanted, &slot).await?;
    // One limiter for every REST call the bot makes, posts and channel reads alike.
    let limiter = Arc::new(global_limiter());
    let chat = Arc::new(
        DiscordChat::new(client.http.clone(), config.clone(), limiter.clone())
            .with_telemetry(telemetry.clone()),
    );
    let app = make_app(chat.clone());
    chat.set_store(app.store.clone());
    chat.places.set_app(app.clone());
    let bot = Arc::new(Bot::new(app, limiter));
    bot.set_with_text(wanted.contains(GatewayIntents::MESSAGE_CONTENT));
    let _ = slot.set(bot.clone());
    let current = Arc::new(std::sync::Mutex::new(Current {
        closed: false,
        shards: Some(client.shard_manager.clone()),
    }));
    let probed = current.clone();
    telemetry.set_latency_probe(metered::latency_probe(move || {
        probed.lock().ok().and_then(|c| c.shards.clone())
    }));
    let (closing_bot, closing) = (bot.clone(), current.clone());
    tokio::spawn(async move {
        shutdown.await;
        tracing::info!("shutting down: no new interactions, finishing the ones in flight");
        closing_bot.close().await;
        stop_current(&closing).await;
    });
    let (watchdog_bot, watched) = (bot.clone(), current.clone());
    tokio::spawn(async move {
        if let Some(err) = watchdog_bot.reconnect_storm().await {
            watchdog_bot.fail(err);
            stop_current(&watched).await;
        }
    });
    // Waited on here rather than in a task: after 4010 or 4011 serenity's shard task spins on
    // the closed socket and may hold the only worker thread.
    let result = loop {
        let result = tokio::select! {
            r = client.start() => r,
            code = closes::fatal_close() => {
                bot.fail(match code {
                    4012 => DiscordError::ApiVersion,
                    code => DiscordError::Sharding(code),
                });
                break Ok(());
            }
        };
        let refused = matches!(
            result,
            Err(serenity::Error::Gateway(
                serenity::gateway::GatewayError::DisallowedGatewayIntents
            ))
        );
        // Message text is the one privileged intent the bot asks for, and it can do without.
        if !(refused && wanted.contains(GatewayIntents::MESSAGE_CONTENT)) {
            break result;
        }
        tracing::warn!("{}", crate::postmortem::text_gaps::REFUSED_LOG);
        wanted.remove(GatewayIntents::MESSAGE_CONTENT);
        // The refused client is dropped as it is: its shard runner has ended, and asking its
        // manager to shut that down would wait out a 5 s timeout for nothing.
        let next = self::client(new_http()?, wanted, &slot).await?;
        {
            let mut c = current.lock().expect("current gateway");
            if c.closed {
                break Ok(());
            }
            c.shards = Some(next.shard_manager.clone());
        }
        bot.set_with_text(false);
        client = next;
    };
    bot.close().await;
    if let Some(err) = bot.failure() {
        return Err(err);
    }
    match result {
        Ok(()) => Ok(()),
        Err(e) => Err(interactions::fatal(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_content_intent_unless_switched_off() {
        let mut c = Config::default();
        assert!(intents(&c).contains(GatewayIntents::MESSAGE_CONTENT));
        c.discord.message_content = false;
        assert!(!intents(&c).contains(GatewayIntents::MESSAGE_CONTENT));
    }
}
