//! What is said in incident channels, kept: live messages, edits, deletes, highlights, backfill.

use crate::app::App;
use crate::domain::{Actor, IncidentId, UserRef};
use crate::store::{CapturedMessage, MessageAttachment, StoreError};
use governor::DefaultDirectRateLimiter;
use serenity::all::{
    ChannelId, GetMessages, Http, Message, MessageId, MessageUpdateEvent, Reaction,
};

/// How many history pages one backfill reads at most (100 messages each).
const MAX_PAGES: usize = 2000;

fn utc(ts: &serenity::all::Timestamp) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(ts.unix_timestamp(), ts.nanosecond()).unwrap_or_default()
}

/// A message as the store keeps it.
pub(super) fn captured(msg: &Message) -> CapturedMessage {
    let mut c = CapturedMessage::new(
        msg.id.get(),
        msg.channel_id.get(),
        UserRef::new(msg.author.id.get(), author_name(msg)),
        utc(&msg.timestamp),
        msg.content.clone(),
    );
    // Without it a copy read after an edit (backfill, pins, a command's target) looks like the
    // original, and the original arriving later would be taken for a newer edit.
    c.edited_at = msg.edited_timestamp.as_ref().map(utc);
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

/// The incident whose channel `channel` is. A store that cannot say is an error, never "no
/// incident here": a failing database must not quietly stop the capture.
fn incident_of(app: &App, channel: ChannelId) -> Result<Option<IncidentId>, StoreError> {
    app.store.incident_by_channel(channel.get())
}

/// [`incident_of`] for gateway events, which have no one to answer: a store error is logged
/// with the event it stops, so that a failing database shows in the log.
fn incident_for(app: &App, channel: ChannelId, event: &str) -> Option<IncidentId> {
    incident_of(app, channel).unwrap_or_else(|e| {
        tracing::error!(channel = %channel, error = %e, "{event} not captured: looking up the channel's incident failed");
        None
    })
}

/// Logs a flush that failed: what was captured is written but may not survive a crash.
fn flushed(result: Result<(), StoreError>, what: &str) {
    if let Err(e) = result {
        tracing::error!(error = %e, "flushing a captured {what} failed");
    }
}

fn author_name(msg: &Message) -> String {
    msg.member
        .as_ref()
        .and_then(|m| m.nick.clone())
        .unwrap_or_else(|| msg.author.display_name().to_string())
}

/// Keeps a new message if it was said in an incident's channel. The bot's own posts are
/// already in the timeline as events.
pub async fn on_message(app: &App, bot_user: Option<u64>, msg: &Message) {
    if msg.kind == serenity::all::MessageType::PinsAdd {
        return on_pin_notice(app, msg).await;
    }
    if Some(msg.author.id.get()) == bot_user || !said(msg) {
        return;
    }
    let Some(id) = incident_for(app, msg.channel_id, "a message") else {
        return;
    };
    if let Err(e) = app.store.capture_message(id, &captured(msg)) {
        tracing::error!(incident = %id, message = %msg.id, error = %e, "capturing a message failed");
        return;
    }
    flushed(app.store.flush().await, "message");
}

pub async fn on_update(app: &App, ev: &MessageUpdateEvent) {
    let (Some(id), Some(content)) = (
        incident_for(app, ev.channel_id, "an edit"),
        ev.content.as_ref(),
    ) else {
        return;
    };
    let at = ev
        .edited_timestamp
        .as_ref()
        .map(utc)
        .unwrap_or_else(|| app.now());
    let mut edited = app.store.edit_message(id, ev.id.get(), content, at);
    if matches!(edited, Ok(false)) && matches!(app.store.message(id, ev.id.get()), Ok(Some(_))) {
        // The message may have landed between the edit's miss and the look: edit it now (a
        // second edit to the same text changes nothing).
        edited = app.store.edit_message(id, ev.id.get(), content, at);
    }
    match edited {
        Ok(false) if matches!(app.store.message(id, ev.id.get()), Ok(None)) => {
            // Handlers run concurrently: the edit can overtake the message it edits. Kept as
            // it reads now; the message, when its turn comes, adds the earlier text.
            let said = matches!(
                ev.kind,
                Some(serenity::all::MessageType::Regular | serenity::all::MessageType::InlineReply)
            );
            if let (Some(author), Some(ts), true) = (&ev.author, &ev.timestamp, said) {
                if author.bot {
                    return;
                }
                let name = ev
                    .member
                    .as_ref()
                    .and_then(|m| m.as_ref())
                    .and_then(|m| m.nick.clone())
                    .unwrap_or_else(|| author.display_name().to_string());
                let mut m = CapturedMessage::new(
                    ev.id.get(),
                    ev.channel_id.get(),
                    UserRef::new(author.id.get(), name),
                    utc(ts),
                    content.clone(),
                );
                m.edited_at = Some(at);
                m.attachments = ev
                    .attachments
                    .iter()
                    .flatten()
                    .map(|a| MessageAttachment {
                        name: a.filename.clone(),
                        url: a.url.clone(),
                        content_type: a.content_type.clone(),
                    })
                    .collect();
                m.reply_to = ev
                    .message_reference
                    .as_ref()
                    .and_then(|r| r.as_ref())
                    .and_then(|r| r.message_id)
                    .map(|id| id.get());
                match app.store.capture_message(id, &m) {
                    Ok(_) => flushed(app.store.flush().await, "edit"),
                    Err(e) => {
                        tracing::error!(incident = %id, message = %ev.id, error = %e, "keeping an edited message failed")
                    }
                }
            }
        }
        Ok(_) => {
            flushed(app.store.flush().await, "edit");
        }
        Err(e) => {
            tracing::error!(incident = %id, message = %ev.id, error = %e, "recording an edit failed")
        }
    }
}

/// Gateway events are handled concurrently, so one can overtake the event it follows (a delete
/// its message, the pins event the notice that says who pinned); this long is given for the
/// other to land.
const OVERTAKEN: std::time::Duration = std::time::Duration::from_millis(500);

pub async fn on_delete(app: &App, channel: ChannelId, message: MessageId) {
    let Some(id) = incident_for(app, channel, "a deletion") else {
        return;
    };
    let at = app.now();
    for retry in [false, true] {
        if retry {
            tokio::time::sleep(OVERTAKEN).await;
        }
        match app.store.delete_message(id, message.get(), at) {
            Ok(true) => {
                flushed(app.store.flush().await, "deletion");
                return;
            }
            Ok(false) if matches!(app.store.message(id, message.get()), Ok(None)) => continue,
            Ok(false) => return,
            Err(e) => {
                tracing::error!(incident = %id, message = %message, error = %e, "recording a delete failed");
                return;
            }
        }
    }
}

/// Puts a reacted-to message on the timeline, fetching it first when it was never captured
/// (said before the bot joined). Without the message-content intent its text stays blank: only
/// the "Add to timeline" command carries a message's text whatever the intents.
pub async fn highlight(
    app: &App,
    http: &Http,
    limiter: &DefaultDirectRateLimiter,
    channel: ChannelId,
    message: MessageId,
    by: Actor,
) -> Result<IncidentId, crate::error::CommandError> {
    let id = incident_of(app, channel)?.ok_or(crate::error::UserError::NoIncidentHere)?;
    if app.store.message(id, message.get())?.is_none() {
        limiter.until_ready().await;
        let fetch = channel.message(http, message);
        match super::metered::metered(&app.telemetry, "read message", fetch).await {
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
    if incident_for(app, r.channel_id, "a reaction").is_none() {
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

/// "X pinned a message": the one place Discord says who pinned, so the key moment is recorded
/// as theirs. A pinned message the capture missed is left to [`on_pins`], which fetches it.
async fn on_pin_notice(app: &App, msg: &Message) {
    if !app.config.postmortem.highlight_pins {
        return;
    }
    if let Some(id) = incident_for(app, msg.channel_id, "a pin") {
        pin_noticed(app, id, msg, true).await;
    }
}

/// Marks the message a pin notice refers to, as pinned by the notice's author. With `patience`
/// (live), a message pinned as soon as it was said is given time to be captured, well before
/// [`on_pins`] stops waiting for this notice.
async fn pin_noticed(app: &App, incident: IncidentId, notice: &Message, patience: bool) {
    let Some(target) = notice.message_reference.as_ref().and_then(|r| r.message_id) else {
        return;
    };
    let by = Actor::User(UserRef::new(notice.author.id.get(), author_name(notice)));
    let tries = if patience { 5 } else { 1 };
    for n in 0..tries {
        if n > 0 {
            tokio::time::sleep(OVERTAKEN / 5).await;
        }
        match crate::postmortem::highlight(app, incident, target.get(), &by).await {
            Ok(crate::store::Highlighted::UnknownMessage) => continue,
            Ok(_) => return,
            Err(e) => {
                tracing::warn!(message = %target, error = %e, "highlighting a pinned message failed");
                return;
            }
        }
    }
}

pub async fn on_pins(
    app: &App,
    http: &Http,
    limiter: &DefaultDirectRateLimiter,
    channel: ChannelId,
) {
    if !app.config.postmortem.highlight_pins {
        return;
    }
    let Some(id) = incident_for(app, channel, "a pin") else {
        return;
    };
    // The pin notice comes right behind this event and says who pinned; let it record first.
    tokio::time::sleep(OVERTAKEN * 2).await;
    limiter.until_ready().await;
    let pins = match super::metered::metered(&app.telemetry, "read pins", channel.pins(http)).await
    {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(channel = %channel, error = %e, "reading pins failed");
            return;
        }
    };
    for m in pins {
        if let Err(e) = app.store.capture_message(id, &captured(&m)) {
            tracing::error!(incident = %id, message = %m.id, error = %e, "capturing a pinned message failed");
        }
        // Only the pin notice says who pinned; a message marked here had none.
        if let Err(e) = crate::postmortem::highlight(app, id, m.id.get(), &Actor::System).await {
            tracing::warn!(message = %m.id, error = %e, "highlighting a pinned message failed");
        }
    }
}

/// How far a backfill has read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// History pages read, 100 messages each but the last.
    pub pages: usize,
    /// Messages read, whoever said them.
    pub messages: usize,
    /// Messages stored for the first time.
    pub fresh: usize,
}

impl Progress {
    /// "Reading #inc-7-checkout … 3,400 messages so far"
    pub fn text(&self, place: &str) -> String {
        format!(
            "Reading {place} … {} messages so far",
            thousands(self.messages)
        )
    }
}

/// What a backfill did: how much it read, and whether it got to the end of the channel.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Backfilled {
    pub progress: Progress,
    /// Why reading stopped before the end, when it did.
    pub stopped: Option<String>,
}

impl Backfilled {
    /// A line for the answer when the channel could not be read to its end.
    pub fn warning(&self, place: &str) -> Option<String> {
        let why = self.stopped.as_deref()?;
        Some(format!(
            "⚠️ Reading {place} stopped after {} messages ({why}); the draft may miss what was said since. `/postmortem draft` again reads on from there.",
            thousands(self.progress.messages)
        ))
    }
}

/// `3400` as `3,400`.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The first report comes after this many full pages (2,000 messages), or after
/// [`REPORT_EVERY`] if that is sooner; then at most one per [`REPORT_EVERY`]. Reports edit a
/// message, so they stay rare next to the page reads.
const REPORT_PAGES: usize = 20;
const REPORT_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// Attempts per history page: a 429 or 5xx (seen when serenity's own limiter is off) or a
/// timeout is tried again, so that a hiccup does not leave a hole in the record.
const PAGE_ATTEMPTS: u32 = 4;

/// Reads what was said in `incident`'s channel after the last stored message, 100 at a time,
/// so that nothing said while the bot was away is missing. Returns how many were new.
pub async fn backfill(
    app: &App,
    http: &Http,
    limiter: &DefaultDirectRateLimiter,
    incident: IncidentId,
    bot_user: Option<u64>,
) -> usize {
    backfill_reporting(app, http, limiter, incident, bot_user, |_| async {})
        .await
        .progress
        .fresh
}

/// As [`backfill`], calling `report` now and then while a long channel is read (never for a
/// channel that fits in one page). Every page counts against the global `limiter`.
pub async fn backfill_reporting<F, Fut>(
    app: &App,
    http: &Http,
    limiter: &DefaultDirectRateLimiter,
    incident: IncidentId,
    bot_user: Option<u64>,
    mut report: F,
) -> Backfilled
where
    F: FnMut(Progress) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut done = Backfilled::default();
    let known = app.store.incident(incident).and_then(|inc| {
        let last = app.store.last_message_id(incident)?;
        Ok(inc.and_then(|i| Some((i.channel?, last))))
    });
    let (channel, last) = match known {
        Ok(Some(found)) => found,
        Ok(None) => return done,
        Err(e) => {
            tracing::error!(incident = %incident, error = %e, "backfill stopped before reading");
            done.stopped = Some(e.to_string());
            return done;
        }
    };
    let channel = ChannelId::new(channel);
    // Snowflakes sort by time: the channel's own id is older than anything said in it.
    let mut after = last.unwrap_or(channel.get());
    let started = std::time::Instant::now();
    let mut reported: Option<std::time::Instant> = None;
    let p = &mut done.progress;
    let mut to_the_end = false;
    for _ in 0..MAX_PAGES {
        let page = match read_page(&app.telemetry, http, limiter, channel, after).await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(incident = %incident, error = %e, "backfill stopped");
                done.stopped = Some(e.to_string());
                break;
            }
        };
        if page.is_empty() {
            to_the_end = true;
            break;
        }
        let mut page = page;
        page.sort_by_key(|m| m.id);
        p.pages += 1;
        p.messages += page.len();
        let mut notices = Vec::new();
        for m in &page {
            after = after.max(m.id.get());
            if m.kind == serenity::all::MessageType::PinsAdd {
                notices.push(m);
            }
            if Some(m.author.id.get()) == bot_user || !said(m) {
                continue;
            }
            if let Ok(true) = app.store.capture_message(incident, &captured(m)) {
                p.fresh += 1;
            }
        }
        // Pins made while the bot was away; the pinned message is earlier on this page or
        // already stored.
        if app.config.postmortem.highlight_pins {
            for n in notices {
                pin_noticed(app, incident, n, false).await;
            }
        }
        if page.len() < 100 {
            to_the_end = true;
            break;
        }
        let due = match reported {
            None => p.pages >= REPORT_PAGES || started.elapsed() >= REPORT_EVERY,
            Some(at) => at.elapsed() >= REPORT_EVERY,
        };
        if due {
            report(*p).await;
            reported = Some(std::time::Instant::now());
        }
    }
    if !to_the_end && done.stopped.is_none() {
        done.stopped = Some(format!(
            "one reading stops at {} messages",
            thousands(MAX_PAGES * 100)
        ));
    }
    let p = &done.progress;
    flushed(app.store.flush().await, "backfill");
    if p.fresh > 0 {
        tracing::info!(
            incident = %incident,
            messages = p.fresh,
            pages = p.pages,
            ms = started.elapsed().as_millis() as u64,
            "backfilled"
        );
    }
    done
}

/// One page of history after `after`, under the global limiter, retried when Discord says so.
async fn read_page(
    telemetry: &crate::telemetry::Telemetry,
    http: &Http,
    limiter: &DefaultDirectRateLimiter,
    channel: ChannelId,
    after: u64,
) -> serenity::Result<Vec<Message>> {
    let mut delay = std::time::Duration::from_millis(250);
    let mut attempt = 1;
    loop {
        limiter.until_ready().await;
        let read = channel.messages(
            http,
            GetMessages::new().after(MessageId::new(after)).limit(100),
        );
        let read = super::metered::metered(telemetry, "read history", read).await;
        match read {
            Err(e) if attempt < PAGE_ATTEMPTS && worth_retrying(&e) => {
                tracing::info!(channel = %channel, attempt, error = %e, "retrying a history page");
                tokio::time::sleep(delay).await;
                delay *= 2;
                attempt += 1;
            }
            other => return other,
        }
    }
}

fn worth_retrying(e: &serenity::Error) -> bool {
    matches!(super::outgoing::status_of(e), Some(429 | 500..=599)) || super::outgoing::is_timeout(e)
}

/// Reads `incident`'s channel again from its first message stored without text (kept while the
/// bot ran without the message-content intent), now that Discord sends text, so that those
/// messages get their words. Returns whether it read to the end (or had nothing to read).
pub async fn reread_blank(
    app: &App,
    http: &Http,
    limiter: &DefaultDirectRateLimiter,
    incident: IncidentId,
    bot_user: Option<u64>,
) -> bool {
    let blank = |m: &CapturedMessage| {
        m.content.is_empty() && m.attachments.is_empty() && m.history.is_empty() && !m.is_deleted()
    };
    let stored = match app.store.messages(incident) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(incident = %incident, error = %e, "reading messages again for their text did not start");
            return false;
        }
    };
    let Some(first) = stored.iter().filter(|m| blank(m)).map(|m| m.id).min() else {
        return true;
    };
    let channel = match app.store.incident(incident) {
        Ok(inc) => inc.and_then(|i| i.channel),
        Err(e) => {
            tracing::error!(incident = %incident, error = %e, "reading messages again for their text did not start");
            return false;
        }
    };
    let Some(channel) = channel else {
        return true;
    };
    let channel = ChannelId::new(channel);
    let mut after = first - 1;
    let mut filled = 0usize;
    for _ in 0..MAX_PAGES {
        let page = match read_page(&app.telemetry, http, limiter, channel, after).await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(incident = %incident, error = %e, "reading messages again for their text stopped");
                flushed(app.store.flush().await, "re-read");
                return false;
            }
        };
        for m in &page {
            after = after.max(m.id.get());
            if Some(m.author.id.get()) == bot_user || !said(m) {
                continue;
            }
            if stored.iter().any(|s| s.id == m.id.get() && blank(s)) {
                filled += 1;
            }
            if let Err(e) = app.store.capture_message(incident, &captured(m)) {
                tracing::error!(incident = %incident, message = %m.id, error = %e, "keeping a message read again failed");
            }
        }
        if page.len() < 100 {
            break;
        }
    }
    flushed(app.store.flush().await, "re-read");
    tracing::info!(incident = %incident, messages = filled, "read messages kept without text again, with it");
    true
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_read_after_an_edit_says_when_it_was_edited() {
        let msg: Message = serde_json::from_value(serde_json::json!({
            "id": "20", "channel_id": "10", "type": 0, "content": "on node 3",
            "timestamp": "2026-12-07T20:00:00.000000+00:00",
            "edited_timestamp": "2026-12-07T20:01:30.000000+00:00",
            "author": {"id": "5", "username": "ana", "discriminator": "0", "avatar": null},
            "tts": false, "mention_everyone": false, "mentions": [], "mention_roles": [],
            "attachments": [], "embeds": [], "pinned": false
        }))
        .unwrap();
        let c = captured(&msg);
        assert_eq!(
            c.edited_at.map(|t| t.to_rfc3339()).as_deref(),
            Some("2026-12-07T20:01:30+00:00")
        );
        assert_eq!(c.at.to_rfc3339(), "2026-12-07T20:00:00+00:00");
    }

    #[test]
    fn progress_counts_read_like_people_write_them() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(3_400), "3,400");
        assert_eq!(thousands(1_234_567), "1,234,567");
        let p = Progress {
            pages: 34,
            messages: 3_400,
            fresh: 3_390,
        };
        assert_eq!(
            p.text("#inc-7-checkout"),
            "Reading #inc-7-checkout … 3,400 messages so far"
        );
    }
}
