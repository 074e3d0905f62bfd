//! The one door to a chat platform: the [`Chat`] trait the services post through, the place an
//! incident is worked in, and how a platform fails. The adapters live in [`crate::chat`].

use crate::message::{truncate, Post};
use async_trait::async_trait;

/// The place an incident is worked in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    pub channel: u64,
    pub name: String,
    /// How to point people at it: `<#id>` on Discord, `#name` in a terminal.
    pub mention: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    #[error("the chat platform refused: {0}")]
    Refused(String),
    #[error("the chat platform did not answer: {0}")]
    Unavailable(String),
    /// No place can be made for an incident; the text says what to fix, worded for a responder.
    #[error("{0}")]
    NoPlace(String),
}

/// What the services need of a chat platform. Discord and the console implement it; nothing else.
#[async_trait]
pub trait Chat: Send + Sync {
    /// Creates an incident's own channel (or thread) named `name`; [`ChatError::NoPlace`] when
    /// none can be made, saying what to fix.
    async fn create_place(&self, name: &str, topic: &str) -> Result<Place, ChatError>;

    /// Sends a post to a channel and returns the message id.
    async fn post(&self, channel: u64, post: Post) -> Result<u64, ChatError>;

    /// How to point people at a channel in text.
    fn channel_mention(&self, channel: u64) -> String;

    /// How to name a person in text; it pings only if the post's [`Mentions`] allow it.
    fn user_mention(&self, user: &crate::domain::UserRef) -> String;

    /// The stakeholder channel, if there is one.
    fn stakeholder_channel(&self) -> Option<u64>;

    /// Replaces a message the bot sent: its text, embed and buttons become `post`'s (no buttons
    /// removes them). An edit pings nobody, whatever `post.mentions` says.
    async fn edit(&self, channel: u64, message: u64, post: Post) -> Result<(), ChatError> {
        let _ = (channel, message, post);
        Err(ChatError::Refused("this chat cannot edit messages".into()))
    }

    /// Puts a resolved incident's place away: a thread is archived, a channel moved to the
    /// archive category. Chats without such a notion do nothing.
    async fn archive(&self, channel: u64) -> Result<(), ChatError> {
        let _ = channel;
        Ok(())
    }

    /// Adds a person to an incident's place where membership is explicit (a thread). Chats where
    /// everyone who can see the place is in it do nothing.
    async fn add_member(&self, channel: u64, user: u64) -> Result<(), ChatError> {
        let _ = (channel, user);
        Ok(())
    }

    /// Gives `user` the server role `role` (the role of whoever is on call). Chats without
    /// roles refuse.
    async fn add_member_role(&self, user: u64, role: u64, reason: &str) -> Result<(), ChatError> {
        let _ = (user, role, reason);
        Err(ChatError::Refused("this chat has no roles to give".into()))
    }

    /// Takes the server role `role` from `user`.
    async fn remove_member_role(
        &self,
        user: u64,
        role: u64,
        reason: &str,
    ) -> Result<(), ChatError> {
        let _ = (user, role, reason);
        Err(ChatError::Refused("this chat has no roles to take".into()))
    }

    /// Shows an incident's severity and state on its place (a forum post's tags). Chats without
    /// such labels do nothing.
    async fn set_labels(&self, channel: u64, labels: &[String]) -> Result<(), ChatError> {
        let _ = (channel, labels);
        Ok(())
    }

    /// The id of a message the bot itself sent to `channel` after `since` that carries `post`
    /// (the same text and embeds), if there is one: for a post whose first attempt is too old
    /// for the platform to dedupe by its nonce. Chats that cannot look say `None`.
    async fn find_sent(
        &self,
        channel: u64,
        since: chrono::DateTime<chrono::Utc>,
        post: &Post,
    ) -> Result<Option<u64>, ChatError> {
        let _ = (channel, since, post);
        Ok(None)
    }

    /// A link that opens the channel from outside the chat (e.g. from a PagerDuty alert).
    fn channel_url(&self, channel: u64) -> Option<String> {
        let _ = channel;
        None
    }
}

/// `inc-7-checkout-returns-500`: lower case, dashes, short enough for a channel name.
pub fn place_name(id: u64, title: &str) -> String {
    let mut slug = String::new();
    for c in title.chars().flat_map(char::to_lowercase) {
        if c.is_alphanumeric() {
            slug.push(c);
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    let slug = truncate(slug.trim_end_matches('-'), 60).trim_end_matches('-');
    if slug.is_empty() {
        format!("inc-{id}")
    } else {
        format!("inc-{id}-{slug}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn place_names_are_channel_safe() {
        assert_eq!(
            place_name(1, "Checkout returns 500"),
            "inc-1-checkout-returns-500"
        );
        assert_eq!(
            place_name(2, "@everyone <@&123> DB down!!"),
            "inc-2-everyone-123-db-down"
        );
        assert_eq!(place_name(3, "!!!"), "inc-3");
        assert!(place_name(4, &"x".repeat(300)).len() <= 70);
    }
}
