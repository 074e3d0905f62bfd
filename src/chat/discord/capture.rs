//! What is said in incident channels, kept: live messages, edits, deletes, highlights, backfill.

use crate::app::App;
use crate::domain::{Actor, IncidentId, UserRef};
use crate::store::{CapturedMessage, MessageAttachment};
use governor::DefaultDirectRateLimiter;
use serenity::all::{
    ChannelId, GetMessages, Http, Message, MessageId, MessageUpdateEvent, Reaction,
};

/// How many history pages one backfill reads at most (100 messages each).
const MAX_PAGES: usize = 2000;

fn utc(ts: &serenity::all::Timestamp) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(ts.unix_timestamp(), ts.nanosecond()).unwrap_or_default()
}

fn captured(msg: &Message) -> CapturedMessage {
    let name = msg
        .member
        .as_ref()
        .and_then(|m| m.nick.clone())
        .unwrap_or_else(|| msg.author.display_name().to_string());
    let mut c = CapturedMessage::new(
        msg.id.get(),
        msg.channel_id.get(),
        UserRef::new(msg.author.id.get(), name),
        utc(&msg.timestamp),
        msg.content.clone(),
    );
    c.attachments = msg
        .attachments
        .iter()
        .map(|a| MessageAttachment {
            name: a.filename.clone(),
            url: a.url.clone(),
            content_type: a.content_type.clone(),
        })
        .collect();
    c.reply_to = msg
        .message_reference
        .as_ref()
        .and_then(|r| r.message_id)
        .map(|m| m.get());
    c
}

/// What people said; system notices ("X pinned a message", joins) are not evidence.
fn said(msg: &Message) -> bool {
    use serenity::all::MessageType;
    matches!(msg.kind, MessageType::Regular | MessageType::InlineReply)
}

fn incident_of(app: &App, channel: ChannelId) -> Option<IncidentId> {
    app.store.incident_by_channel(channel.get()).ok().flatten()
}

/// Keeps a new message if it was said in an incident's channel. The bot's own posts are
/// already in the timeline as events.
pub async fn on_message(app: &App, bot_user: Option<u64>, msg: &Message) {
    if Some(msg.author.id.get()) == bot_user || !said(msg) {
        return;
    }
    let Some(id) = incident_of(app, msg.channel_id) else {
        return;
    };
    if let Err(e) = app.store.capture_message(id, &captured(msg)) {
        tracing::error!(incident = %id, message = %msg.id, error = %e, "capturing a message failed");
        return;
    }
    let _ = app.store.flush().await;
}

pub async fn on_update(app: &App, ev: &MessageUpdateEvent) {
    let (Some(id), Some(content)) = (incident_of(app, ev.channel_id), ev.content.as_ref()) else {
        return;
    };
    let at = ev
        .edited_timestamp
        .as_ref()
        .map(utc)
        .unwrap_or_else(|| app.now());
    match app.store.edit_message(id, ev.id.get(), content, at) {
        Ok(_) => {
            let _ = app.store.flush().await;
        }
        Err(e) => {
            tracing::error!(incident = %id, message = %ev.id, error = %e, "recording an edit failed")
        }
    }
}

pub async fn on_delete(app: &App, channel: ChannelId, message: MessageId) {
    let Some(id) = incident_of(app, channel) else {
        return;
    };
    match app.store.delete_message(id, message.get(), app.now()) {
        Ok(_) => {
            let _ = app.store.flush().await;
        }
        Err(e) => {
            tracing::error!(incident = %id, message = %message, error = %e, "recording a delete failed")
        }
    }
}

/// Puts a message on the timeline, fetching it first when it was never captured (said before
/// the bot joined, or content not delivered without the message-content intent).
pub async fn highlight(
    app: &App,
    http: &Http,
    limiter: &DefaultDirectRateLimiter,
    channel: ChannelId,
    message: MessageId,
    by: Actor,
) -> Result<IncidentId, crate::error::CommandError> {
    let id = incident_of(app, channel).ok_or(crate::error::UserError::NoIncidentHere)?;
    if app.store.message(id, message.get())?.is_none() {
        limiter.until_ready().await;
        match channel.message(http, message).await {
            Ok(m) => {
                app.store.capture_message(id, &captured(&m))?;
            }
            Err(e) => {
                tracing::warn!(message = %message, error = %e, "fetching a highlighted message failed")
            }
        }
    }
    crate::postmortem::highlight(app, id, message.get(), &by).await?;
    Ok(id)
}

pub async fn on_reaction(app: &App, http: &Http, limiter: &DefaultDirectRateLimiter, r: &Reaction) {
    if !crate::postmortem::is_highlight_reaction(&app.config, &r.emoji.to_string()) {
        return;
    }
    if incident_of(app, r.channel_id).is_none() {
        return;
    }
    let by = match (&r.member, r.user_id) {
        (Some(m), Some(u)) => Actor::User(UserRef::new(u.get(), m.display_name().to_string())),
        (None, Some(u)) => Actor::User(UserRef::new(u.get(), format!("user-{u}"))),
        _ => Actor::System,
    };
    if let Err(e) = highlight(app, http, limiter, r.channel_id, r.message_id, by).await {
        tracing::warn!(message = %r.message_id, error = %e, "highlighting a reacted message failed");
    }
}

pub async fn on_pins(
    app: &App,
    http: &Http,
    limiter: &DefaultDirectRateLimiter,
    channel: ChannelId,
) {
    if !app.config.postmortem.highlight_pins || incident_of(app, channel).is_none() {
        return;
    }
    limiter.until_ready().await;
    let pins = match channel.pins(http).await {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(channel = %channel, error = %e, "reading pins failed");
            return;
        }
    };
    for m in pins {
        let id = incident_of(app, channel).expect("checked above");
        let _ = app.store.capture_message(id, &captured(&m));
        let by = Actor::User(UserRef::new(
            m.author.id.get(),
            m.author.display_name().to_string(),
        ));
        if let Err(e) = crate::postmortem::highlight(app, id, m.id.get(), &by).await {
            tracing::warn!(message = %m.id, error = %e, "highlighting a pinned message failed");
        }
    }
}

/// Reads what was said in `incident`'s channel after the last stored message, 100 at a time,
/// so that nothing said while the bot was away is missing. Returns how many were new.
pub async fn backfill(
    app: &App,
    http: &Http,
    limiter: &DefaultDirectRateLimiter,
    incident: IncidentId,
    bot_user: Option<u64>,
) -> usize {
    let Ok(Some(inc)) = app.store.incident(incident) else {
        return 0;
    };
    let Some(channel) = inc.channel else {
        return 0;
    };
    let channel = ChannelId::new(channel);
    // Snowflakes sort by time: the channel's own id is older than anything said in it.
    let mut after = app
        .store
        .last_message_id(incident)
        .ok()
        .flatten()
        .unwrap_or(channel.get());
    let mut fresh = 0;
    for _ in 0..MAX_PAGES {
        limiter.until_ready().await;
        let page = match channel
            .messages(
                http,
                GetMessages::new().after(MessageId::new(after)).limit(100),
            )
            .await
        {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(incident = %incident, error = %e, "backfill stopped");
                break;
            }
        };
        if page.is_empty() {
            break;
        }
        let mut page = page;
        page.sort_by_key(|m| m.id);
        for m in &page {
            after = after.max(m.id.get());
            if Some(m.author.id.get()) == bot_user || !said(m) {
                continue;
            }
            if let Ok(true) = app.store.capture_message(incident, &captured(m)) {
                fresh += 1;
            }
        }
        if page.len() < 100 {
            break;
        }
    }
    let _ = app.store.flush().await;
    if fresh > 0 {
        tracing::info!(incident = %incident, messages = fresh, "backfilled");
    }
    fresh
}

/// Backfills every open incident; at startup and after a reconnect.
pub async fn backfill_open(
    app: &App,
    http: &Http,
    limiter: &DefaultDirectRateLimiter,
    bot_user: Option<u64>,
) {
    let open: Vec<IncidentId> = app
        .store
        .incidents()
        .unwrap_or_default()
        .into_iter()
        .filter(|i| i.is_open())
        .map(|i| i.id)
        .collect();
    for id in open {
        backfill(app, http, limiter, id, bot_user).await;
    }
}
