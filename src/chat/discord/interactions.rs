//! Gateway events in: slash commands, buttons and modals routed to the same command handlers.

use super::responder::Responder;
use super::DiscordError;
use crate::app::App;
use crate::commands::{self, CommandInput, Defer, InputOption, InputValue, Invocation, Outcome};
use crate::domain::{IncidentId, UserRef};
use crate::error::UserError;
use serenity::all::{
    ActionRowComponent, CommandData, CommandDataOption, CommandDataOptionValue,
    CommandDataResolved, ComponentInteraction, ConnectionStage, Context, CreateActionRow,
    CreateInputText, CreateInteractionResponse, CreateModal, EventHandler, Http, InputTextStyle,
    Interaction, InteractionId, Member, ModalInteraction, Ready, ShardStageUpdateEvent, User,
    UserId,
};
use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Connection attempts in a row that never reach a session before the bot gives up.
const MAX_FAILED_CONNECTS: u32 = 6;
/// How long shutdown waits for follow-up work and queued posts once interactions are done.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

pub struct Handler {
    pub bot: Arc<OnceLock<Arc<Bot>>>,
}

/// The bot's state across interactions: the app, what is in flight, what was already handled.
pub struct Bot {
    app: App,
    /// Shared with the Chat adapter: reads of channels count against the same global budget.
    limiter: Arc<governor::DefaultDirectRateLimiter>,
    /// The bot's own user id, from READY; its own messages are not captured.
    bot_user: OnceLock<u64>,
    closing: AtomicBool,
    /// Each interaction holds a read guard; shutdown takes the write guard to wait for them all.
    in_flight: tokio::sync::RwLock<()>,
    /// The same for the work that follows a command in the background, which shutdown waits
    /// for only a little.
    follow_ups: Arc<tokio::sync::RwLock<()>>,
    /// Interaction ids already handled, so that a replayed dispatch is not handled twice.
    seen: Mutex<(HashSet<u64>, VecDeque<u64>)>,
    failed_connects: AtomicU32,
    /// Whether the current gateway session was granted the message-content intent.
    with_text: AtomicBool,
    storm: tokio::sync::Notify,
    failure: Mutex<Option<DiscordError>>,
}

pub fn fatal(e: serenity::Error) -> DiscordError {
    use serenity::gateway::GatewayError as G;
    match e {
        serenity::Error::Gateway(G::InvalidAuthentication | G::NoAuthentication) => {
            DiscordError::BadToken
        }
        serenity::Error::Gateway(G::InvalidGatewayIntents | G::DisallowedGatewayIntents) => {
            DiscordError::Intents
        }
        serenity::Error::Gateway(G::InvalidShardData) => DiscordError::Sharding(4010),
        serenity::Error::Gateway(G::OverloadedShard) => DiscordError::Sharding(4011),
        other => DiscordError::Gateway(other.to_string()),
    }
}

fn display_name(user: &User, member: Option<&Member>) -> String {
    member
        .map(|m| m.display_name().to_string())
        .unwrap_or_else(|| user.display_name().to_string())
}

fn user_ref(user: &User, member: Option<&Member>) -> UserRef {
    UserRef::new(user.id.get(), display_name(user, member))
}

/// The roles of whoever interacted, for permission checks; none outside a server.
fn member_roles(member: Option<&Member>) -> Vec<u64> {
    member
        .map(|m| m.roles.iter().map(|r| r.get()).collect())
        .unwrap_or_default()
}

fn resolved_user(id: UserId, resolved: &CommandDataResolved) -> UserRef {
    let name = resolved
        .members
        .get(&id)
        .and_then(|m| m.nick.clone())
        .or_else(|| {
            resolved
                .users
                .get(&id)
                .map(|u| u.display_name().to_string())
        })
        .unwrap_or_else(|| format!("user-{id}"));
    UserRef::new(id.get(), name)
}

fn convert(opts: &[CommandDataOption], resolved: &CommandDataResolved) -> Vec<InputOption> {
    opts.iter()
        .map(|o| InputOption {
            name: o.name.clone(),
            value: match &o.value {
                CommandDataOptionValue::SubCommand(inner)
                | CommandDataOptionValue::SubCommandGroup(inner) => {
                    InputValue::Sub(convert(inner, resolved))
                }
                CommandDataOptionValue::String(s) => InputValue::String(s.clone()),
                CommandDataOptionValue::Integer(n) => InputValue::Integer(*n),
                CommandDataOptionValue::Number(n) => InputValue::Number(*n),
                CommandDataOptionValue::Boolean(b) => InputValue::Bool(*b),
                CommandDataOptionValue::User(id) => InputValue::User(resolved_user(*id, resolved)),
                CommandDataOptionValue::Channel(c) => InputValue::Channel(c.get()),
                CommandDataOptionValue::Role(r) => InputValue::Role(r.get()),
                CommandDataOptionValue::Autocomplete { value, .. } => {
                    InputValue::String(value.clone())
                }
                other => InputValue::Raw(format!("{other:?}")),
            },
        })
        .collect()
}

/// The option tree of a slash command, in the platform-free shape handlers take.
pub fn command_input(data: &CommandData) -> CommandInput {
    CommandInput {
        name: data.name.clone(),
        options: convert(&data.options, &data.resolved),
    }
}

impl Bot {
    pub fn new(app: App, limiter: Arc<governor::DefaultDirectRateLimiter>) -> Self {
        Bot {
            app,
            limiter,
            bot_user: OnceLock::new(),
            closing: AtomicBool::new(false),
            in_flight: tokio::sync::RwLock::new(()),
            follow_ups: Arc::default(),
            seen: Mutex::new((HashSet::new(), VecDeque::new())),
            failed_connects: AtomicU32::new(0),
            with_text: AtomicBool::new(false),
            storm: tokio::sync::Notify::new(),
            failure: Mutex::new(None),
        }
    }

    /// Stops taking interactions, waits for those in flight, gives what follows them and the
    /// posts they queued a few seconds to go out, and flushes the store. Posts still queued
    /// then wait on disk and go out at the next start. A second call only waits and flushes.
    pub async fn close(&self) {
        let again = self.closing.swap(true, Ordering::SeqCst);
        let _all = self.in_flight.write().await;
        if !again {
            self.settle().await;
        }
        if let Err(e) = self.app.store.flush().await {
            tracing::error!(error = %e, "flushing the store at shutdown failed");
        }
    }

    /// Waits, for [`SHUTDOWN_GRACE`] at most, for follow-up work and for the outbox to empty.
    async fn settle(&self) {
        let settle = async {
            let _follow_ups = self.follow_ups.write().await;
            crate::scheduler::Scheduler::new(self.app.clone())
                .deliver_outbox()
                .await
        };
        match tokio::time::timeout(SHUTDOWN_GRACE, settle).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(
                error = %e,
                "reading the queued posts at shutdown failed; they go out at the next start"
            ),
            Err(_) => tracing::info!(
                grace = ?SHUTDOWN_GRACE,
                "work still running at shutdown; queued posts go out at the next start"
            ),
        }
    }

    /// Says whether the session about to start asks for message text.
    pub fn set_with_text(&self, with_text: bool) {
        self.with_text.store(with_text, Ordering::SeqCst);
    }

    pub fn fail(&self, err: DiscordError) {
        *self.failure.lock().expect("failure slot") = Some(err);
    }

    pub fn failure(&self) -> Option<DiscordError> {
        self.failure.lock().expect("failure slot").take()
    }

    /// Resolves when the gateway keeps failing before a session starts.
    pub async fn reconnect_storm(&self) -> Option<DiscordError> {
        self.storm.notified().await;
        Some(DiscordError::ReconnectLoop(
            self.failed_connects.load(Ordering::SeqCst),
        ))
    }

    fn first_time(&self, id: InteractionId) -> bool {
        let mut seen = self.seen.lock().expect("seen set");
        let (set, order) = &mut *seen;
        if !set.insert(id.get()) {
            return false;
        }
        order.push_back(id.get());
        if order.len() > 4096 {
            if let Some(old) = order.pop_front() {
                set.remove(&old);
            }
        }
        true
    }

    /// Starts what follows a command in the background. Its posts are not sent here: they
    /// were queued with its events, and the scheduler sends them.
    fn follow_up(&self, inv: &Invocation, outcome: Outcome) {
        let (app, inv) = (self.app.clone(), inv.clone());
        // Taken before the interaction lets go of its own guard, so that shutdown cannot slip
        // in between the two.
        let guard = self.follow_ups.clone().try_read_owned().ok();
        tokio::spawn(async move {
            commands::after(&app, &inv, &outcome).await;
            drop(guard);
        });
    }

    async fn on_command(&self, http: &Http, cmd: serenity::all::CommandInteraction) {
        let input = command_input(&cmd.data);
        let path = input.path();
        let r =
            Responder::new(http, cmd.id, &cmd.token).metered(&self.app.telemetry, "command", &path);
        let inv = Invocation {
            user: user_ref(&cmd.user, cmd.member.as_deref()),
            member_roles: member_roles(cmd.member.as_deref()),
            channel: Some(cmd.channel_id.get()),
            input,
        };
        let started = Instant::now();
        // A message command is run on a message, which the interaction always carries whole
        // (the capture lacks its text when the bot runs without the message-content intent).
        let target = (cmd.data.kind == serenity::all::CommandType::Message).then(|| {
            cmd.data.target_id.map(|t| commands::Target::Message {
                id: t.get(),
                message: cmd
                    .data
                    .resolved
                    .messages
                    .get(&serenity::all::MessageId::new(t.get()))
                    .map(|m| Box::new(super::capture::captured(m))),
            })
        });
        let prepared = match commands::prepare_on(&self.app, &inv, target.flatten()) {
            Ok(p) => p,
            Err(e) => {
                r.error(r.explain(&e, &path)).await;
                tracing::info!(command = %path, ack_us = started.elapsed().as_micros() as u64, "refused");
                return;
            }
        };
        let leaf = prepared.leaf();
        if leaf.defers == Defer::Public {
            // Mistakes are refused privately at once; only valid work is deferred.
            if let Err(e) = prepared.precheck(&self.app, &inv) {
                r.error(r.explain(&e, &path)).await;
                tracing::info!(command = %path, ack_us = started.elapsed().as_micros() as u64, "refused");
                return;
            }
            if !r.defer(false).await {
                return;
            }
            tracing::info!(command = %path, ack_us = started.elapsed().as_micros() as u64, "deferred");
            let mut warning = None;
            if leaf.rereads_channel {
                // A big channel takes a while; the placeholder says how far reading has got.
                let named = prepared.named_incident();
                if let Ok(inc) = commands::target(&self.app, &inv, named) {
                    let place = inc
                        .channel_name
                        .as_deref()
                        .map_or_else(|| inc.id.to_string(), |n| format!("#{n}"));
                    // Interaction webhooks are outside Discord's global limit.
                    let done = super::capture::backfill_reporting(
                        &self.app,
                        http,
                        &self.limiter,
                        inc.id,
                        self.bot_user.get().copied(),
                        |p| r.progress(crate::message::Post::text(p.text(&place))),
                    )
                    .await;
                    warning = done.warning(&place);
                }
            }
            let result = prepared.run(&self.app, &inv).await;
            let (reply, incident) = match result {
                Ok(outcome) => {
                    let mut reply = outcome.reply.clone();
                    if let Some(w) = warning {
                        reply.post.content = format!("{w}\n{}", reply.post.content);
                    }
                    let incident = outcome.incident;
                    // The follow-up work does not wait on retries of the answer.
                    self.follow_up(&inv, outcome);
                    (reply, incident)
                }
                // What is left after the precheck is a failure of a system we waited on
                // (Prometheus down, Discord refusing a channel): told to the typist only.
                Err(e) => (commands::Reply::private(r.explain(&e, &path)), None),
            };
            let asker = super::deferred::Asker {
                app: &self.app,
                limiter: &self.limiter,
                channel: cmd.channel_id.get(),
                user: &inv.user,
                what: &path,
                incident,
            };
            r.conclude(reply, &asker).await;
            return;
        }
        let result = prepared.run(&self.app, &inv).await;
        match result {
            Ok(outcome) => {
                let ok = r
                    .reply(outcome.reply.post.clone(), outcome.reply.ephemeral)
                    .await;
                tracing::info!(command = %path, ack_us = started.elapsed().as_micros() as u64, ok, "answered");
                self.follow_up(&inv, outcome);
            }
            Err(e) => {
                r.error(r.explain(&e, &path)).await;
                tracing::info!(command = %path, ack_us = started.elapsed().as_micros() as u64, "refused");
            }
        }
    }

    async fn on_autocomplete(&self, http: &Http, a: serenity::all::CommandInteraction) {
        let r = Responder::new(http, a.id, &a.token).metered(
            &self.app.telemetry,
            "autocomplete",
            &a.data.name,
        );
        let Some(focused) = a.data.autocomplete() else {
            return;
        };
        let choices = commands::autocomplete(&self.app, &a.data.name, focused.name, focused.value);
        let mut resp = serenity::all::CreateAutocompleteResponse::new();
        for c in choices {
            resp = resp.add_string_choice(c.clone(), c);
        }
        r.respond(CreateInteractionResponse::Autocomplete(resp))
            .await;
    }

    async fn on_component(&self, http: &Http, c: ComponentInteraction) {
        let press = commands::table::Press::parse(&c.data.custom_id);
        // The custom id's incident and argument are left out of the name.
        let name = match &press {
            Some(p) => p.name.clone(),
            None => c
                .data
                .custom_id
                .splitn(3, ':')
                .take(2)
                .collect::<Vec<_>>()
                .join(" "),
        };
        let r = Responder::new(http, c.id, &c.token).metered(&self.app.telemetry, "button", &name);
        let user = user_ref(&c.user, c.member.as_ref());
        if let Some(id) = c
            .data
            .custom_id
            .strip_prefix("incident:update:")
            .and_then(|n| n.parse::<IncidentId>().ok())
        {
            let modal = update_modal(id);
            r.respond(CreateInteractionResponse::Modal(modal)).await;
            return;
        }
        match press {
            Some(press) => self.on_button(&r, &c, press, user).await,
            None => {
                r.error("This button is no longer in use.".into()).await;
            }
        }
    }

    /// A button that stands for a command in the table: run as that command, pointed at what
    /// its post is about (an incident, an alert group).
    async fn on_button(
        &self,
        r: &Responder<'_>,
        c: &ComponentInteraction,
        press: commands::table::Press,
        user: UserRef,
    ) {
        let id = press.incident();
        let (name, target) = (press.name.as_str(), press.target.clone());
        let inv = Invocation {
            user,
            member_roles: member_roles(c.member.as_ref()),
            channel: Some(c.channel_id.get()),
            input: press.input(),
        };
        let prepared = match commands::prepare_on(&self.app, &inv, Some(target)) {
            Ok(p) => p,
            Err(e) => {
                r.error(r.explain(&e, name)).await;
                return;
            }
        };
        let deferred = match prepared.leaf().defers {
            Defer::Never => false,
            Defer::Public | Defer::Private => true,
            Defer::PrivateInThreads => {
                self.app.config.discord.incident_mode != crate::config::IncidentMode::Channel
            }
        };
        let private = prepared.leaf().defers != Defer::Public;
        if deferred && !r.defer(private).await {
            return;
        }
        let (reply, incident) = match prepared.run(&self.app, &inv).await {
            Ok(outcome) => {
                let (reply, incident) = (outcome.reply.clone(), outcome.incident);
                self.follow_up(&inv, outcome);
                (reply, incident)
            }
            Err(e) => (commands::Reply::private(r.explain(&e, name)), id),
        };
        if deferred {
            let asker = super::deferred::Asker {
                app: &self.app,
                limiter: &self.limiter,
                channel: c.channel_id.get(),
                user: &inv.user,
                what: name,
                incident,
            };
            r.conclude(reply, &asker).await;
        } else {
            r.reply(reply.post, reply.ephemeral).await;
        }
    }

    async fn on_modal(&self, http: &Http, m: ModalInteraction) {
        // The form's custom id ends in an incident's id: only the form's kind names it.
        let r = Responder::new(http, m.id, &m.token).metered(
            &self.app.telemetry,
            "form",
            "incident update",
        );
        let fields: Vec<(String, String)> = m
            .data
            .components
            .iter()
            .flat_map(|row| row.components.iter())
            .filter_map(|c| match c {
                ActionRowComponent::InputText(t) => {
                    Some((t.custom_id.clone(), t.value.clone().unwrap_or_default()))
                }
                _ => None,
            })
            .collect();
        let Some(id) = m
            .data
            .custom_id
            .strip_prefix("incident:update:")
            .and_then(|n| n.parse::<IncidentId>().ok())
        else {
            r.error("This form is no longer in use.".into()).await;
            return;
        };
        let input = match modal_update(id, &fields) {
            Ok(i) => i,
            Err(e) => {
                r.error(e.to_string()).await;
                return;
            }
        };
        let inv = Invocation {
            user: user_ref(&m.user, m.member.as_ref()),
            member_roles: member_roles(m.member.as_ref()),
            channel: Some(m.channel_id.get()),
            input,
        };
        match commands::run(&self.app, &inv).await {
            Ok(outcome) => {
                r.reply(outcome.reply.post.clone(), outcome.reply.ephemeral)
                    .await;
                self.follow_up(&inv, outcome);
            }
            Err(e) => {
                r.error(r.explain(&e, "incident update")).await;
            }
        }
    }
}

/// The "Post update" form: the four parts of a status update.
/// Discord refuses text-input labels over 45 characters.
const MAX_LABEL: usize = 45;

fn update_modal(id: IncidentId) -> CreateModal {
    let field = |cid: &str, label: &str, style, required, max| {
        CreateActionRow::InputText(
            CreateInputText::new(style, crate::message::truncate(label, MAX_LABEL), cid)
                .required(required)
                .max_length(max),
        )
    };
    CreateModal::new(format!("incident:update:{}", id.0), format!("Update {id}")).components(vec![
        field(
            "state",
            "State: investigating, identified or monitoring",
            InputTextStyle::Short,
            false,
            20,
        ),
        field(
            "impact",
            "Impact: who is affected, how",
            InputTextStyle::Paragraph,
            false,
            500,
        ),
        field(
            "understanding",
            "Current understanding",
            InputTextStyle::Paragraph,
            true,
            800,
        ),
        field(
            "next",
            "Next actions",
            InputTextStyle::Paragraph,
            false,
            500,
        ),
    ])
}

/// A submitted update form as the `/incident update` it stands for.
pub fn modal_update(
    id: IncidentId,
    fields: &[(String, String)],
) -> Result<CommandInput, UserError> {
    let get = |k: &str| {
        fields
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let mut parts = Vec::new();
    if let Some(v) = get("understanding") {
        parts.push(v);
    }
    if let Some(v) = get("next") {
        parts.push(format!("Next: {v}"));
    }
    if parts.is_empty() {
        return Err(UserError::Line(
            "the update is empty; say what you know now".into(),
        ));
    }
    let mut opts = vec![
        InputOption {
            name: "message".into(),
            value: InputValue::String(parts.join("\n")),
        },
        InputOption {
            name: "incident".into(),
            value: InputValue::String(id.to_string()),
        },
    ];
    if let Some(s) = get("state") {
        opts.push(InputOption {
            name: "state".into(),
            value: InputValue::String(s.to_lowercase()),
        });
    }
    // The impact is the incident's own field: every status post shows the latest.
    if let Some(v) = get("impact") {
        opts.push(InputOption {
            name: "impact".into(),
            value: InputValue::String(v),
        });
    }
    Ok(CommandInput {
        name: "incident".into(),
        options: vec![InputOption {
            name: "update".into(),
            value: InputValue::Sub(opts),
        }],
    })
}

/// Backfills every open incident's channel in the background (at READY and after a resume).
fn spawn_backfill(bot: &Arc<Bot>, ctx: &Context) {
    let (bot, http) = (bot.clone(), ctx.http.clone());
    tokio::spawn(async move {
        let user = bot.bot_user.get().copied();
        super::capture::backfill_open(&bot.app, &http, &bot.limiter, user).await
    });
}

#[serenity::async_trait]
impl EventHandler for Handler {
    async fn ready(&self, ctx: Context, ready: Ready) {
        tracing::info!(user = %ready.user.name, guilds = ready.guilds.len(), "connected to Discord");
        let Some(bot) = self.bot.get() else { return };
        bot.app.telemetry.gateway_session(false);
        let _ = bot.bot_user.set(ready.user.id.get());
        let (reader, http) = (bot.clone(), ctx.http.clone());
        tokio::spawn(async move {
            let with_text = reader.with_text.load(Ordering::SeqCst);
            let user = reader.bot_user.get().copied();
            super::content::on_ready(&reader.app, with_text, &http, &reader.limiter, user).await
        });
        // Whatever was said while the bot was away goes into the record before anything else.
        spawn_backfill(bot, &ctx);
    }

    async fn resume(&self, ctx: Context, _: serenity::all::ResumedEvent) {
        let Some(bot) = self.bot.get() else { return };
        bot.app.telemetry.gateway_session(true);
        spawn_backfill(bot, &ctx);
    }

    async fn message(&self, _ctx: Context, msg: serenity::all::Message) {
        let Some(bot) = self.bot.get() else { return };
        super::capture::on_message(&bot.app, bot.bot_user.get().copied(), &msg).await;
    }

    async fn message_update(
        &self,
        _ctx: Context,
        _old: Option<serenity::all::Message>,
        _new: Option<serenity::all::Message>,
        event: serenity::all::MessageUpdateEvent,
    ) {
        let Some(bot) = self.bot.get() else { return };
        super::capture::on_update(&bot.app, &event).await;
    }

    async fn message_delete(
        &self,
        _ctx: Context,
        channel: serenity::all::ChannelId,
        message: serenity::all::MessageId,
        _guild: Option<serenity::all::GuildId>,
    ) {
        let Some(bot) = self.bot.get() else { return };
        super::capture::on_delete(&bot.app, channel, message).await;
    }

    async fn reaction_add(&self, ctx: Context, reaction: serenity::all::Reaction) {
        let Some(bot) = self.bot.get() else { return };
        super::capture::on_reaction(&bot.app, &ctx.http, &bot.limiter, &reaction).await;
    }

    async fn channel_pins_update(&self, ctx: Context, pin: serenity::all::ChannelPinsUpdateEvent) {
        let Some(bot) = self.bot.get() else { return };
        super::capture::on_pins(&bot.app, &ctx.http, &bot.limiter, pin.channel_id).await;
    }

    /// serenity's own rate limiter (direct mode) held a request back.
    async fn ratelimit(&self, info: serenity::http::RatelimitInfo) {
        let Some(bot) = self.bot.get() else { return };
        bot.app.telemetry.rate_limit_wait(info.global);
    }

    async fn shard_stage_update(&self, _ctx: Context, ev: ShardStageUpdateEvent) {
        let Some(bot) = self.bot.get() else { return };
        match ev.new {
            ConnectionStage::Connected => bot.failed_connects.store(0, Ordering::SeqCst),
            ConnectionStage::Connecting => {
                let n = bot.failed_connects.fetch_add(1, Ordering::SeqCst) + 1;
                if n >= MAX_FAILED_CONNECTS {
                    bot.storm.notify_one();
                }
            }
            _ => {}
        }
    }

    async fn interaction_create(&self, ctx: Context, interaction: Interaction) {
        let Some(bot) = self.bot.get() else { return };
        let id = interaction.id();
        if !bot.first_time(id) {
            tracing::info!(interaction = %id, "already handled; ignoring the replay");
            return;
        }
        let Ok(_guard) = bot.in_flight.try_read() else {
            // Shutdown holds the write lock: say so rather than leave the typist waiting.
            return refuse_closing(&ctx.http, &interaction).await;
        };
        if bot.closing.load(Ordering::SeqCst) {
            return refuse_closing(&ctx.http, &interaction).await;
        }
        match interaction {
            Interaction::Command(cmd) => bot.on_command(&ctx.http, cmd).await,
            Interaction::Component(c) => bot.on_component(&ctx.http, c).await,
            Interaction::Modal(m) => bot.on_modal(&ctx.http, m).await,
            Interaction::Autocomplete(a) => bot.on_autocomplete(&ctx.http, a).await,
            other => tracing::debug!(kind = ?other.kind(), "interaction kind not handled"),
        }
    }
}

async fn refuse_closing(http: &Http, interaction: &Interaction) {
    let token = match interaction {
        Interaction::Command(c) | Interaction::Autocomplete(c) => &c.token,
        Interaction::Component(c) => &c.token,
        Interaction::Modal(m) => &m.token,
        _ => return,
    };
    let r = Responder::new(http, interaction.id(), token);
    r.error("sitrep is restarting; try again in a few seconds.".into())
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_update_form_keeps_discords_limits() {
        let v = serde_json::to_value(update_modal(IncidentId(1))).unwrap();
        let rows = v["components"].as_array().unwrap();
        assert!(rows.len() <= 5);
        for row in rows {
            let label = row["components"][0]["label"].as_str().unwrap();
            assert!(label.chars().count() <= MAX_LABEL, "{label}");
        }
    }

    #[test]
    fn the_update_form_becomes_an_incident_update() {
        let fields = vec![
            ("state".to_string(), "Monitoring".to_string()),
            ("impact".to_string(), "EU checkout".to_string()),
            ("understanding".to_string(), "Rolled back".to_string()),
            ("next".to_string(), String::new()),
        ];
        let input = modal_update(IncidentId(4), &fields).unwrap();
        let json = crate::commands::options::to_json(&input).unwrap();
        assert_eq!(json["subcommand"], "update");
        assert_eq!(json["state"], "monitoring");
        assert_eq!(json["incident"], "INC-4");
        assert_eq!(json["message"], "Rolled back");
        assert_eq!(json["impact"], "EU checkout");
        assert!(modal_update(IncidentId(4), &[]).is_err());
    }
}
