//! Running without message text: recording the stretch, telling each open incident's channel once, and reading again once text is back.
//!
//! The notice goes where the work is: the commander and responders are in the incident's
//! channel, and that is whose record goes blank. The operator who can fix it reads the log.
//! An incident opened later hears it in the answer to `/incident open` instead (see
//! `commands::incident`), so that no channel gets an extra post for it. Once text is back, what
//! was kept without it is read again.

use crate::app::App;
use crate::message::{Mentions, Post};
use crate::postmortem::text_gaps;
use crate::store::GapReason;
use governor::DefaultDirectRateLimiter;
use serenity::all::Http;

/// Called at each READY: notes whether this session gets message text. When it does not
/// because Discord refused, tells every open incident that has not heard yet; when text is back,
/// reads again what was kept without it.
pub async fn on_ready(
    app: &App,
    with_text: bool,
    http: &Http,
    limiter: &DefaultDirectRateLimiter,
    bot_user: Option<u64>,
) {
    let now = app.now();
    if with_text {
        if let Err(e) = app.store.end_content_gap(now) {
            tracing::error!(error = %e, "recording that message text is back failed");
        }
        return read_again(app, http, limiter, bot_user).await;
    }
    let reason = if app.config.discord.message_content {
        GapReason::Refused
    } else {
        GapReason::Configured
    };
    if let Err(e) = app.store.begin_content_gap(now, reason) {
        tracing::error!(error = %e, "recording that message text is missing failed");
        return;
    }
    let _ = app.store.flush().await;
    if reason == GapReason::Configured {
        tracing::info!("running without message text ([discord] message_content = false): post-mortem transcripts will be blank");
        return;
    }
    let open = app
        .store
        .incidents()
        .unwrap_or_default()
        .into_iter()
        .filter(|i| i.is_open());
    for inc in open {
        let Some(channel) = inc.channel else { continue };
        // Marked before posting: a notice lost to a crash is better than one posted twice.
        if !app.store.tell_content_gap(inc.id).unwrap_or(false) {
            continue;
        }
        let _ = app.store.flush().await;
        let mut post = Post::text(text_gaps::channel_notice());
        if let Some(c) = inc.commander() {
            post.content = format!("{} {}", app.chat.user_mention(c), post.content);
            post.mentions = Mentions::users(&[c.id]);
        }
        if let Err(e) = app.chat.post(channel, post).await {
            tracing::warn!(incident = %inc.id, error = %e, "telling the channel that text is not kept failed");
        }
    }
}

/// Every incident that lived through a stretch without text and was not read again since gets
/// its channel read again, so that its post-mortem has the words after all.
async fn read_again(
    app: &App,
    http: &Http,
    limiter: &DefaultDirectRateLimiter,
    bot_user: Option<u64>,
) {
    let gaps = app.store.content_gaps().unwrap_or_default();
    if !gaps.iter().any(|g| g.to.is_some()) {
        return;
    }
    for inc in app.store.incidents().unwrap_or_default() {
        let from = inc.times.started.or(inc.times.declared).unwrap_or_default();
        let to = inc.times.resolved.filter(|_| !inc.is_open());
        let missed = gaps
            .iter()
            .any(|g| g.to.is_some() && g.overlaps(from, to) && !g.recovered.contains(&inc.id.0));
        if !missed {
            continue;
        }
        if super::capture::reread_blank(app, http, limiter, inc.id, bot_user).await {
            if let Err(e) = app.store.recover_content_gaps(inc.id) {
                tracing::error!(incident = %inc.id, error = %e, "recording a reading again failed");
            }
        }
    }
    let _ = app.store.flush().await;
}
