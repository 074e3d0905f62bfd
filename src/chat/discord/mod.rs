//! The Discord edge: serenity's gateway in, REST out, and the [`Chat`] trait over both.

mod capture;
mod closes;
mod interactions;
pub mod outgoing;

use super::{Chat, ChatError, Place, Post};
use crate::app::App;
use crate::commands::options;
use crate::config::{Config, IncidentMode, Secrets, DISCORD_API};
use crate::domain::UserRef;
use async_trait::async_trait;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use serenity::all::{
    ApplicationId, ChannelId, ChannelType, CreateChannel, CreateMessage, CreateThread,
    GatewayIntents, GuildId, Http, HttpBuilder, MessageId,
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
    #[error("Discord refused the gateway intents (close 4013/4014). With [discord] message_content = true, enable the Message Content intent under Bot → Privileged Gateway Intents in the developer portal, or set message_content = false.")]
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
        let (host, addr) = parse_connect_to(ct).map_err(DiscordError::Config)?;
        client = client.resolve(&host, addr);
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

/// `discord.com:443:127.0.0.1:8443` → (`discord.com`, 127.0.0.1:8443).
fn parse_connect_to(s: &str) -> Result<(String, std::net::SocketAddr), String> {
    let parts: Vec<&str> = s.split(':').collect();
    let [host, _port, addr, to_port] = parts[..] else {
        return Err(format!(
            "connect_to `{s}` must look like discord.com:443:127.0.0.1:8443"
        ));
    };
    let addr = format!("{addr}:{to_port}")
        .parse()
        .map_err(|e| format!("connect_to `{s}`: {e}"))?;
    Ok((host.to_string(), addr))
}

/// The intents the bot needs; message content only when configured, as it is privileged.
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
            me: tokio::sync::OnceCell::new(),
        }
    }

    /// Runs one REST call under the global limiter; retries what Discord says is worth retrying
    /// (429 and 5xx, which reach us when serenity's own limiter is off in proxy mode).
    async fn call<T, F, Fut>(&self, what: &str, f: F) -> Result<T, ChatError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = serenity::Result<T>>,
    {
        let mut delay = Duration::from_millis(500);
        for attempt in 1..=5 {
            self.limiter.until_ready().await;
            match f().await {
                Ok(v) => return Ok(v),
                Err(e) => {
                    let status = outgoing::status_of(&e);
                    let retry =
                        matches!(status, Some(429) | Some(500..=599)) || outgoing::is_timeout(&e);
                    if !retry || attempt == 5 {
                        tracing::warn!(what, ?status, error = %e, "Discord request failed");
                        // Only an answer that would come again is a refusal; Discord still
                        // busy or down after the retries is worth trying later.
                        return Err(if status.is_some() && !retry {
                            ChatError::Refused(format!("{what}: {e}"))
                        } else {
                            ChatError::Unavailable(format!("{what}: {e}"))
                        });
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
        let d = &self.config.discord;
        let channel = match d.incident_mode {
            IncidentMode::Channel => {
                let guild = d
                    .guild_id
                    .ok_or_else(|| ChatError::Refused("[discord] guild_id is not set".into()))?;
                let mut b = CreateChannel::new(name)
                    .kind(ChannelType::Text)
                    .topic(topic);
                if let Some(cat) = d.incident_category_id {
                    b = b.category(ChannelId::new(cat));
                }
                self.call("create channel", || {
                    GuildId::new(guild).create_channel(&self.http, b.clone())
                })
                .await?
            }
            IncidentMode::Thread => {
                let parent = d.incident_parent_channel_id.ok_or_else(|| {
                    ChatError::Refused("[discord] incident_parent_channel_id is not set".into())
                })?;
                let b = CreateThread::new(name).kind(ChannelType::PublicThread);
                self.call("create thread", || {
                    ChannelId::new(parent).create_thread(&self.http, b.clone())
                })
                .await?
            }
        };
        Ok(Place {
            channel: channel.id.get(),
            name: channel.name.clone(),
            mention: format!("<#{}>", channel.id.get()),
        })
    }

    async fn post(&self, channel: u64, post: Post) -> Result<u64, ChatError> {
        let msg: CreateMessage = outgoing::message(post.fit_limits());
        let sent = self
            .call("send message", || {
                ChannelId::new(channel).send_message(&self.http, msg.clone())
            })
            .await?;
        Ok(sent.id.get())
    }

    async fn archive(&self, channel: u64) -> Result<(), ChatError> {
        let id = ChannelId::new(channel);
        match self.config.discord.incident_mode {
            IncidentMode::Thread => {
                let b = serenity::all::EditThread::new().archived(true);
                self.call("archive thread", || id.edit_thread(&self.http, b.clone()))
                    .await?;
            }
            IncidentMode::Channel => {
                let Some(cat) = self.config.discord.archive_category_id else {
                    return Ok(());
                };
                let b = serenity::all::EditChannel::new().category(ChannelId::new(cat));
                self.call("move channel to the archive", || {
                    id.edit(&self.http, b.clone())
                })
                .await?;
            }
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
        self.call("edit message", || {
            ChannelId::new(channel).edit_message(&self.http, MessageId::new(message), b.clone())
        })
        .await?;
        Ok(())
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

/// Runs the bot until `shutdown` resolves or Discord ends the session for good. `make_app` gets
/// the Discord [`Chat`], so that handlers and serenity share one REST client and its limits.
pub async fn run(
    config: Arc<Config>,
    http: Http,
    make_app: impl FnOnce(Arc<dyn Chat>) -> App,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), DiscordError> {
    if config.discord.register_commands {
        let n = register_commands(&http, config.discord.guild_id).await?;
        tracing::info!(commands = n, "registered application commands");
    }
    let slot = Arc::new(std::sync::OnceLock::new());
    let handler = interactions::Handler { bot: slot.clone() };
    let mut client = serenity::all::ClientBuilder::new_with_http(http, intents(&config))
        .event_handler(handler)
        .await
        .map_err(|e| DiscordError::Gateway(e.to_string()))?;
    // One limiter for every REST call the bot makes, posts and channel reads alike.
    let limiter = Arc::new(global_limiter());
    let chat = Arc::new(DiscordChat::new(
        client.http.clone(),
        config.clone(),
        limiter.clone(),
    ));
    let bot = Arc::new(Bot::new(make_app(chat), limiter));
    let _ = slot.set(bot.clone());
    let shards = client.shard_manager.clone();
    let closing_bot = bot.clone();
    tokio::spawn(async move {
        shutdown.await;
        tracing::info!("shutting down: no new interactions, finishing the ones in flight");
        closing_bot.close().await;
        shards.shutdown_all().await;
    });
    let watchdog_bot = bot.clone();
    let watchdog_shards = client.shard_manager.clone();
    tokio::spawn(async move {
        if let Some(err) = watchdog_bot.reconnect_storm().await {
            watchdog_bot.fail(err);
            watchdog_shards.shutdown_all().await;
        }
    });
    // Waited on here rather than in a task: after 4010 or 4011 serenity's shard task spins on
    // the closed socket and may hold the only worker thread.
    let result = tokio::select! {
        r = client.start() => r,
        code = closes::fatal_close() => {
            bot.fail(match code {
                4012 => DiscordError::ApiVersion,
                code => DiscordError::Sharding(code),
            });
            Ok(())
        }
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
    fn connect_to_reads_like_curl() {
        let (host, addr) = parse_connect_to("discord.com:443:127.0.0.1:8443").unwrap();
        assert_eq!(host, "discord.com");
        assert_eq!(addr.to_string(), "127.0.0.1:8443");
        assert!(parse_connect_to("discord.com:127.0.0.1").is_err());
    }

    #[test]
    fn message_content_intent_only_when_asked() {
        let mut c = Config::default();
        assert!(!intents(&c).contains(GatewayIntents::MESSAGE_CONTENT));
        c.discord.message_content = true;
        assert!(intents(&c).contains(GatewayIntents::MESSAGE_CONTENT));
    }
}
