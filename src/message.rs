//! What the bot says: posts, embeds, buttons, who they may ping, and Discord's limits on them.

use serde::{Deserialize, Serialize};

/// Discord's limits, kept by every adapter so that the console shows what Discord would.
pub const MAX_CONTENT: usize = 2000;
pub const MAX_EMBED_DESCRIPTION: usize = 4096;
pub const MAX_EMBED_TITLE: usize = 256;
pub const MAX_EMBED_TOTAL: usize = 6000;

/// Who a message may ping. Built only through the constructors, so that a post pings nobody unless
/// the feature says exactly whom.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Mentions {
    roles: Vec<u64>,
    users: Vec<u64>,
}

impl Mentions {
    /// Nothing in the text pings anyone, whatever users typed into it.
    pub fn none() -> Self {
        Mentions::default()
    }

    /// Exactly these roles, and nothing else.
    pub fn roles(roles: &[u64]) -> Self {
        Mentions {
            roles: roles.to_vec(),
            users: Vec::new(),
        }
    }

    /// Exactly these users, and nothing else.
    pub fn users(users: &[u64]) -> Self {
        Mentions {
            roles: Vec::new(),
            users: users.to_vec(),
        }
    }

    /// Exactly these roles and these users, and nothing else: a page of a target whose on-call
    /// schedule names someone.
    pub fn roles_and_users(roles: &[u64], users: &[u64]) -> Self {
        Mentions {
            roles: roles.to_vec(),
            users: users.to_vec(),
        }
    }

    pub fn role_ids(&self) -> &[u64] {
        &self.roles
    }

    pub fn user_ids(&self) -> &[u64] {
        &self.users
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Embed {
    pub title: String,
    pub description: String,
    pub colour: Option<u32>,
    pub url: Option<String>,
    pub footer: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ButtonStyle {
    Primary,
    Secondary,
    Success,
    Danger,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Button {
    /// Routes the click back to its handler: `<handler>:<argument>`.
    pub custom_id: String,
    pub label: String,
    pub style: ButtonStyle,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    pub filename: String,
    /// Base64 when stored (a post waiting in the outbox): a chart as a JSON array of numbers
    /// would take three to four times its size.
    #[serde(with = "base64_bytes")]
    pub bytes: Vec<u8>,
}

mod base64_bytes {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        /// Posts queued by builds that stored the bytes as an array still read.
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Stored {
            Base64(String),
            Array(Vec<u8>),
        }
        match Stored::deserialize(d)? {
            Stored::Base64(text) => STANDARD.decode(text).map_err(D::Error::custom),
            Stored::Array(bytes) => Ok(bytes),
        }
    }
}

/// One message the bot sends.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Post {
    pub content: String,
    pub embed: Option<Embed>,
    pub buttons: Vec<Button>,
    pub mentions: Mentions,
    pub files: Vec<Attachment>,
    /// Makes a retried send idempotent (Discord's `enforce_nonce`).
    pub nonce: Option<String>,
    /// Embeds after `embed`, for a digest carrying several incidents in one message.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub more_embeds: Vec<Embed>,
}

impl Embed {
    /// What the embed counts toward Discord's 6000 characters per message.
    pub fn chars(&self) -> usize {
        self.title.chars().count()
            + self.description.chars().count()
            + self.footer.as_deref().map_or(0, |f| f.chars().count())
    }
}

impl Post {
    /// Every embed of the post, in order.
    pub fn embeds(&self) -> impl Iterator<Item = &Embed> {
        self.embed.iter().chain(&self.more_embeds)
    }

    pub fn text(content: impl Into<String>) -> Post {
        Post {
            content: content.into(),
            ..Post::default()
        }
    }

    pub fn embed(
        title: impl Into<String>,
        description: impl Into<String>,
        colour: Option<u32>,
    ) -> Post {
        Post {
            embed: Some(Embed {
                title: title.into(),
                description: description.into(),
                colour,
                url: None,
                footer: None,
            }),
            ..Post::default()
        }
    }

    pub fn with_buttons(mut self, buttons: Vec<Button>) -> Post {
        self.buttons = buttons;
        self
    }

    /// Moves text that would break Discord's limits into a Markdown attachment, keeping a short
    /// pointer in its place, so that a long render is delivered instead of refused.
    pub fn fit_limits(mut self) -> Post {
        let content_len = self.content.chars().count();
        if content_len > MAX_CONTENT {
            let full = std::mem::take(&mut self.content);
            self.content = format!("{}…\n(full text attached)", truncate(&full, 300));
            self.files.push(Attachment {
                filename: "message.md".into(),
                bytes: full.into_bytes(),
            });
        }
        if let Some(embed) = &mut self.embed {
            let title_len = embed.title.chars().count();
            if title_len > MAX_EMBED_TITLE {
                embed.title = format!("{}…", truncate(&embed.title, MAX_EMBED_TITLE - 1));
            }
            let total = embed.title.chars().count()
                + embed.description.chars().count()
                + embed.footer.as_deref().map_or(0, |f| f.chars().count());
            if embed.description.chars().count() > MAX_EMBED_DESCRIPTION || total > MAX_EMBED_TOTAL
            {
                let full = std::mem::take(&mut embed.description);
                embed.description = format!("{}…\n(full text attached)", truncate(&full, 1000));
                self.files.push(Attachment {
                    filename: "details.md".into(),
                    bytes: full.into_bytes(),
                });
            }
        }
        self
    }
}

/// The first `n` characters of `s`, cut on a character boundary.
pub fn truncate(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attachments_are_stored_as_base64_and_old_arrays_still_read() {
        let png: Vec<u8> = (0..=255).cycle().take(4096).collect();
        let a = Attachment {
            filename: "chart.png".into(),
            bytes: png.clone(),
        };
        let json = serde_json::to_string(&a).unwrap();
        assert!(json.len() < png.len() * 14 / 10, "{} bytes", json.len());
        assert_eq!(serde_json::from_str::<Attachment>(&json).unwrap(), a);
        let old = serde_json::json!({"filename": "chart.png", "bytes": png});
        assert_eq!(serde_json::from_value::<Attachment>(old).unwrap(), a);
        let bad = serde_json::json!({"filename": "x", "bytes": "not base64!"});
        assert!(serde_json::from_value::<Attachment>(bad).is_err());
    }

    #[test]
    fn long_posts_become_attachments() {
        let p = Post::text("a".repeat(2500)).fit_limits();
        assert!(p.content.chars().count() <= MAX_CONTENT);
        assert_eq!(p.files.len(), 1);
        assert_eq!(p.files[0].bytes.len(), 2500);
        let p = Post::embed("t", "é".repeat(5000), None).fit_limits();
        assert!(p.embed.unwrap().description.chars().count() <= MAX_EMBED_DESCRIPTION);
        assert_eq!(p.files[0].filename, "details.md");
        let short = Post::text("fine");
        assert_eq!(short.clone().fit_limits(), short);
    }

    #[test]
    fn mentions_default_to_nobody() {
        assert_eq!(Post::text("@everyone").mentions, Mentions::none());
        assert!(Mentions::none().role_ids().is_empty());
        assert_eq!(Mentions::roles(&[5]).role_ids(), &[5]);
    }
}
