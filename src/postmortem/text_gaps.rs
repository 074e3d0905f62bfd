//! What the bot tells people when it runs without message text: the notices, and the lines atop a draft that lacks it.

use crate::domain::IncidentId;
use crate::render::utc;
use crate::store::{ContentGap, GapReason};
use chrono::{DateTime, Utc};

/// Where the toggle is and what to do after switching it on.
pub const HOW_TO_FIX: &str = "whoever runs sitrep switches on **Message Content Intent** under Bot → Privileged Gateway Intents in the Discord developer portal and restarts sitrep";

/// The log line, once per process, when Discord refuses the intent.
pub const REFUSED_LOG: &str = "Discord refused the Message Content intent (gateway close 4014, Disallowed intents); sitrep goes on without it. Messages in incident channels are now kept without their text: post-mortem transcripts, pins and 📌 key moments will be blank (the Add to timeline command still keeps a message's text). To fix: switch on Message Content Intent under Bot → Privileged Gateway Intents in the developer portal (https://discord.com/developers/applications) and restart sitrep; or set [discord] message_content = false to stop asking for it.";

/// Posted once in each open incident's channel when the bot starts running without text.
pub fn channel_notice() -> String {
    format!(
        "⚠️ sitrep cannot read message text here: Discord refused it the Message Content intent. Until that is fixed, messages in this channel are kept without their words, so the post-mortem transcript, pins and 📌 key moments will be blank. **Add to timeline** (right-click a message → Apps) still keeps a message's text. To fix it, {HOW_TO_FIX}."
    )
}

/// Added to the answer to `/incident open` while the bot runs without text.
pub fn open_notice() -> String {
    format!(
        "⚠️ sitrep cannot read message text (Discord refused the Message Content intent): what is said in the incident's channel is kept without its words, so use **Add to timeline** on the messages that matter. To fix it, {HOW_TO_FIX}."
    )
}

/// One line per stretch without text that overlaps the incident (`from` to `to`, or to now)
/// and was not read again since, saying when, what is missing, and how to turn it on.
pub fn draft_lines(
    gaps: &[ContentGap],
    incident: IncidentId,
    from: DateTime<Utc>,
    to: Option<DateTime<Utc>>,
) -> Vec<String> {
    gaps.iter()
        .filter(|g| g.overlaps(from, to) && !g.recovered.contains(&incident.0))
        .map(|g| {
            let when = match g.to {
                Some(end) => format!("from {} to {}", utc(g.from), utc(end)),
                None => format!("since {}", utc(g.from)),
            };
            let (why, fix) = match g.reason {
                GapReason::Refused => (
                    "Discord refused sitrep the Message Content intent",
                    "switch on Message Content Intent under Bot → Privileged Gateway Intents in the Discord developer portal and restart sitrep",
                ),
                GapReason::Configured => (
                    "sitrep ran with `[discord] message_content = false`",
                    "set `message_content = true` under `[discord]`, switch on Message Content Intent under Bot → Privileged Gateway Intents in the Discord developer portal, and restart sitrep",
                ),
            };
            format!(
                "**Message text was not captured** {when}: {why}. Messages said in the channel then appear below without their words (key moments marked with Add to timeline keep theirs). To capture it, {fix}."
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_draft_names_each_stretch_it_overlaps() {
        let t = |h| Utc.with_ymd_and_hms(2026, 11, 21, h, 0, 0).unwrap();
        let gaps = vec![
            ContentGap {
                from: t(1),
                to: Some(t(2)),
                reason: GapReason::Configured,
                told: vec![],
                recovered: vec![],
            },
            ContentGap {
                from: t(5),
                to: None,
                reason: GapReason::Refused,
                told: vec![],
                recovered: vec![],
            },
        ];
        let id = IncidentId(3);
        let lines = draft_lines(&gaps, id, t(3), Some(t(4)));
        assert!(lines.is_empty(), "{lines:?}");
        let lines = draft_lines(&gaps, id, t(0), None);
        assert_eq!(lines.len(), 2);
        assert!(lines[0].contains("from 2026-11-21 01:00:00 UTC to 2026-11-21 02:00:00 UTC"));
        assert!(lines[0].contains("message_content = true"));
        assert!(lines[1].contains("since 2026-11-21 05:00:00 UTC"));
        assert!(lines[1].contains("Privileged Gateway Intents"));
        let mut read_again = gaps.clone();
        read_again[0].recovered.push(3);
        assert_eq!(draft_lines(&read_again, id, t(0), None).len(), 1);
    }
}
