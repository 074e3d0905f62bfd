//! Our posts and replies as serenity builders, always with explicit `allowed_mentions`.

use crate::message::{Button, ButtonStyle, Embed, Mentions, Post};
use serenity::all::{
    ButtonStyle as DButton, CreateActionRow, CreateAllowedMentions, CreateAttachment, CreateButton,
    CreateEmbed, CreateEmbedFooter, CreateInteractionResponseFollowup,
    CreateInteractionResponseMessage, CreateMessage, EditInteractionResponse, EditMessage, Nonce,
};

/// Discord parses `@everyone` and roles in ordinary messages unless told otherwise; this tells
/// it to ping exactly the roles and users the feature chose, and nothing typed into the text.
pub fn allowed(m: &Mentions) -> CreateAllowedMentions {
    CreateAllowedMentions::new()
        .everyone(false)
        .all_roles(false)
        .all_users(false)
        .roles(m.role_ids().to_vec())
        .users(m.user_ids().to_vec())
        .replied_user(false)
}

fn embed(e: &Embed) -> CreateEmbed {
    let mut b = CreateEmbed::new()
        .title(&e.title)
        .description(&e.description);
    if let Some(c) = e.colour {
        b = b.colour(c);
    }
    if let Some(u) = &e.url {
        b = b.url(u);
    }
    if let Some(f) = &e.footer {
        b = b.footer(CreateEmbedFooter::new(f));
    }
    b
}

fn rows(buttons: &[Button]) -> Vec<CreateActionRow> {
    buttons
        .chunks(5)
        .take(5)
        .map(|chunk| {
            CreateActionRow::Buttons(
                chunk
                    .iter()
                    .map(|b| {
                        CreateButton::new(&b.custom_id)
                            .label(&b.label)
                            .style(match b.style {
                                ButtonStyle::Primary => DButton::Primary,
                                ButtonStyle::Secondary => DButton::Secondary,
                                ButtonStyle::Success => DButton::Success,
                                ButtonStyle::Danger => DButton::Danger,
                            })
                    })
                    .collect(),
            )
        })
        .collect()
}

fn files(post: &Post) -> Vec<CreateAttachment> {
    post.files
        .iter()
        .map(|f| CreateAttachment::bytes(f.bytes.clone(), f.filename.clone()))
        .collect()
}

pub fn message(post: Post) -> CreateMessage {
    let post = post.fit_limits();
    let mut m = CreateMessage::new().allowed_mentions(allowed(&post.mentions));
    if !post.content.is_empty() {
        m = m.content(&post.content);
    }
    let embeds: Vec<CreateEmbed> = post.embeds().map(embed).collect();
    if !embeds.is_empty() {
        m = m.embeds(embeds);
    }
    if !post.buttons.is_empty() {
        m = m.components(rows(&post.buttons));
    }
    m = m.files(files(&post));
    if let Some(n) = &post.nonce {
        m = m.nonce(Nonce::String(n.clone())).enforce_nonce(true);
    }
    m
}

pub fn reply(post: Post, ephemeral: bool) -> CreateInteractionResponseMessage {
    let post = post.fit_limits();
    let mut m = CreateInteractionResponseMessage::new()
        .allowed_mentions(allowed(&post.mentions))
        .ephemeral(ephemeral);
    if !post.content.is_empty() {
        m = m.content(&post.content);
    }
    if let Some(e) = &post.embed {
        m = m.embed(embed(e));
    }
    if !post.buttons.is_empty() {
        m = m.components(rows(&post.buttons));
    }
    m.files(files(&post))
}

pub fn edit(post: Post) -> EditInteractionResponse {
    let post = post.fit_limits();
    let mut m = EditInteractionResponse::new().allowed_mentions(allowed(&post.mentions));
    if !post.content.is_empty() {
        m = m.content(&post.content);
    }
    if let Some(e) = &post.embed {
        m = m.embed(embed(e));
    }
    if !post.buttons.is_empty() {
        m = m.components(rows(&post.buttons));
    }
    for f in files(&post) {
        m = m.new_attachment(f);
    }
    m
}

/// A follow-up message of an interaction; `ephemeral` ones only its typist sees.
pub fn followup(post: Post, ephemeral: bool) -> CreateInteractionResponseFollowup {
    let post = post.fit_limits();
    let mut m = CreateInteractionResponseFollowup::new()
        .allowed_mentions(allowed(&post.mentions))
        .ephemeral(ephemeral);
    if !post.content.is_empty() {
        m = m.content(&post.content);
    }
    if let Some(e) = &post.embed {
        m = m.embed(embed(e));
    }
    if !post.buttons.is_empty() {
        m = m.components(rows(&post.buttons));
    }
    m.files(files(&post))
}

/// An edit of one of our messages: text, embed and buttons all replaced (no buttons removes
/// them), with explicit allowed_mentions that ping nobody.
pub fn edit_message(post: Post) -> EditMessage {
    let post = post.fit_limits();
    EditMessage::new()
        .allowed_mentions(allowed(&Mentions::none()))
        .content(&post.content)
        .embeds(post.embed.iter().map(embed).collect())
        .components(rows(&post.buttons))
}

/// Pages of 100 messages read when looking for a post sent before a long outage: a busy
/// channel has moved on by more than that, and then the post is sent again rather than lost.
pub const FIND_SENT_PAGES: usize = 10;

const DISCORD_EPOCH_MS: i64 = 1_420_070_400_000;

/// The smallest snowflake of a moment: messages after it have larger ids.
pub fn snowflake_at(t: chrono::DateTime<chrono::Utc>) -> u64 {
    let ms = (t.timestamp_millis() - DISCORD_EPOCH_MS).max(1);
    (ms as u64) << 22
}

/// Whether `sent`, a message in the channel, is the message `want` would make: the same text and
/// the same embeds (titles and descriptions), as the nonce is not kept in the history.
pub fn carries(sent: &serenity::all::Message, want: &CreateMessage) -> bool {
    let Ok(want) = serde_json::to_value(want) else {
        return false;
    };
    let text = want["content"].as_str().unwrap_or("");
    if sent.content.trim() != text.trim() {
        return false;
    }
    let empty = Vec::new();
    let embeds = want["embeds"].as_array().unwrap_or(&empty);
    embeds.len() == sent.embeds.len()
        && embeds.iter().zip(&sent.embeds).all(|(w, s)| {
            w["title"].as_str() == s.title.as_deref()
                && w["description"].as_str() == s.description.as_deref()
        })
}

pub fn status_of(e: &serenity::Error) -> Option<u16> {
    match e {
        serenity::Error::Http(serenity::http::HttpError::UnsuccessfulRequest(r)) => {
            Some(r.status_code.as_u16())
        }
        _ => None,
    }
}

/// Discord's JSON error code of a refusal (e.g. 50083 "Thread is archived").
pub fn code_of(e: &serenity::Error) -> Option<isize> {
    match e {
        serenity::Error::Http(serenity::http::HttpError::UnsuccessfulRequest(r)) => {
            Some(r.error.code)
        }
        _ => None,
    }
}

pub fn is_timeout(e: &serenity::Error) -> bool {
    matches!(e, serenity::Error::Http(serenity::http::HttpError::Request(r)) if r.is_timeout() || r.is_connect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowed_mentions_are_explicit_and_exact() {
        let v = serde_json::to_value(allowed(&Mentions::none())).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"parse": [], "users": [], "roles": [], "replied_user": false})
        );
        let v = serde_json::to_value(allowed(&Mentions::roles(&[42]))).unwrap();
        assert_eq!(v["roles"], serde_json::json!(["42"]));
        assert_eq!(v["parse"], serde_json::json!([]));
    }

    #[test]
    fn edits_replace_buttons_and_ping_nobody() {
        let mut p = Post::embed("Escalation", "acknowledged", None);
        p.content = "<@&42>".into();
        p.mentions = Mentions::roles(&[42]);
        let v = serde_json::to_value(edit_message(p)).unwrap();
        assert_eq!(v["allowed_mentions"]["roles"], serde_json::json!([]));
        assert_eq!(v["allowed_mentions"]["parse"], serde_json::json!([]));
        assert_eq!(v["components"], serde_json::json!([]));
        assert_eq!(v["embeds"][0]["title"], "Escalation");
    }

    #[test]
    fn every_message_carries_allowed_mentions() {
        let v = serde_json::to_value(message(Post::text("@everyone <@&1>"))).unwrap();
        assert_eq!(v["allowed_mentions"]["parse"], serde_json::json!([]));
        let mut p = Post::text("scheduled");
        p.nonce = Some("s1-2-3".into());
        let v = serde_json::to_value(message(p)).unwrap();
        assert_eq!(v["nonce"], "s1-2-3");
        assert_eq!(v["enforce_nonce"], true);
    }
}
