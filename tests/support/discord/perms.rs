//! Channel permission overwrites and Discord's permission computation, and the 403s it leads to.
//!
//! Written from Discord's documentation (Permissions → Permission Hierarchy, Implicit
//! Permissions, and each route's "Requires the ... permission"), independently of the bot's own
//! definition, so that a test against the fake checks the bot's idea of permissions against
//! Discord's rather than against itself.

use super::validate::ApiError;
use super::world::{id_str, parse_id, World, PERM_ADMINISTRATOR};
use super::{BOT_USER_ID, GUILD_ID, OWNER_ID};
use serde_json::{json, Value};

pub const PERM_MANAGE_CHANNELS: u64 = 1 << 4;
pub const PERM_ADD_REACTIONS: u64 = 1 << 6;
pub const PERM_VIEW_CHANNEL: u64 = 1 << 10;
pub const PERM_SEND_MESSAGES: u64 = 1 << 11;
pub const PERM_SEND_TTS_MESSAGES: u64 = 1 << 12;
pub const PERM_MANAGE_MESSAGES: u64 = 1 << 13;
pub const PERM_EMBED_LINKS: u64 = 1 << 14;
pub const PERM_ATTACH_FILES: u64 = 1 << 15;
pub const PERM_READ_MESSAGE_HISTORY: u64 = 1 << 16;
pub const PERM_MENTION_EVERYONE: u64 = 1 << 17;
pub const PERM_MANAGE_ROLES: u64 = 1 << 28;
pub const PERM_MANAGE_THREADS: u64 = 1 << 34;
pub const PERM_CREATE_PUBLIC_THREADS: u64 = 1 << 35;
pub const PERM_CREATE_PRIVATE_THREADS: u64 = 1 << 36;
pub const PERM_SEND_MESSAGES_IN_THREADS: u64 = 1 << 38;
pub const PERM_PIN_MESSAGES: u64 = 1 << 51;
/// Every bit Discord defines (through PIN_MESSAGES).
pub const PERM_ALL: u64 = (1 << 52) - 1;

/// One entry of a channel's `permission_overwrites`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OverwriteRec {
    /// A role id (the guild id for @everyone) or a user id.
    pub id: u64,
    /// A member overwrite (type 1) rather than a role one (type 0).
    pub member: bool,
    pub allow: u64,
    pub deny: u64,
}

impl OverwriteRec {
    pub fn json(&self) -> Value {
        json!({
            "id": id_str(self.id),
            "type": if self.member { 1 } else { 0 },
            "allow": self.allow.to_string(),
            "deny": self.deny.to_string(),
        })
    }

    /// Reads an overwrite as Discord takes it in a request body (`allow`/`deny` may be absent).
    pub fn from_json(v: &Value) -> Option<OverwriteRec> {
        let bits = |k: &str| match v.get(k) {
            Some(Value::String(s)) => s.parse().ok(),
            Some(Value::Number(n)) => n.as_u64(),
            None | Some(Value::Null) => Some(0),
            _ => None,
        };
        Some(OverwriteRec {
            id: parse_id(v.get("id"))?,
            member: v.get("type").and_then(Value::as_u64)? == 1,
            allow: bits("allow")?,
            deny: bits("deny")?,
        })
    }
}

pub fn missing_permissions() -> ApiError {
    ApiError::new(403, 50013, "Missing Permissions")
}

pub fn missing_access() -> ApiError {
    ApiError::new(403, 50001, "Missing Access")
}

impl World {
    /// The overwrites a channel's permissions come from: a thread's are its parent's.
    pub fn overwrites_of(&self, channel: u64) -> &[OverwriteRec] {
        let source = match self.channels.get(&channel) {
            Some(c) if c.is_thread() => c.parent_id.unwrap_or(channel),
            _ => channel,
        };
        self.overwrites.get(&source).map_or(&[], Vec::as_slice)
    }

    pub fn overwrites_json(&self, channel: u64) -> Value {
        Value::Array(
            self.overwrites
                .get(&channel)
                .map(|list| list.iter().map(OverwriteRec::json).collect())
                .unwrap_or_default(),
        )
    }

    /// A member's permissions in a channel, as Discord computes them: guild-level from @everyone
    /// and their roles (everything for the owner or an Administrator), then the channel's
    /// overwrites for @everyone, for their roles together, for them; then the implicit rules.
    pub fn channel_permissions(&self, user: u64, channel: u64) -> u64 {
        let base = self.member_permissions(user);
        if base & PERM_ADMINISTRATOR != 0 || user == OWNER_ID {
            return PERM_ALL;
        }
        let Some(member) = self.members.get(&user) else {
            return 0;
        };
        let overwrites = self.overwrites_of(channel);
        let mut p = base;
        if let Some(o) = overwrites.iter().find(|o| !o.member && o.id == GUILD_ID) {
            p &= !o.deny;
            p |= o.allow;
        }
        let (allow, deny) = overwrites
            .iter()
            .filter(|o| !o.member && o.id != GUILD_ID && member.roles.contains(&o.id))
            .fold((0, 0), |(a, d), o| (a | o.allow, d | o.deny));
        p &= !deny;
        p |= allow;
        if let Some(o) = overwrites.iter().find(|o| o.member && o.id == user) {
            p &= !o.deny;
            p |= o.allow;
        }
        if p & PERM_VIEW_CHANNEL == 0 {
            return 0;
        }
        let is_thread = self.channels.get(&channel).is_some_and(|c| c.is_thread());
        if p & PERM_SEND_MESSAGES == 0 && !is_thread {
            p &= !(PERM_MENTION_EVERYONE
                | PERM_SEND_TTS_MESSAGES
                | PERM_ATTACH_FILES
                | PERM_EMBED_LINKS);
        }
        p
    }

    pub fn bot_channel_permissions(&self, channel: u64) -> u64 {
        self.channel_permissions(BOT_USER_ID, channel)
    }

    /// The bot may see the channel and holds every bit of `needs` there: else 50001 (it cannot
    /// see the channel) or 50013, as Discord answers.
    pub fn bot_requires(&self, channel: u64, needs: u64) -> Result<(), ApiError> {
        let have = self.bot_channel_permissions(channel);
        if have & PERM_VIEW_CHANNEL == 0 {
            return Err(missing_access());
        }
        if have & needs != needs {
            return Err(missing_permissions());
        }
        Ok(())
    }

    /// Guild-level permission for calls not tied to a channel (creating one at the top level).
    pub fn bot_requires_in_guild(&self, needs: u64) -> Result<(), ApiError> {
        let have = self.member_permissions(BOT_USER_ID);
        if have & PERM_ADMINISTRATOR == 0 && have & needs != needs {
            return Err(missing_permissions());
        }
        Ok(())
    }
}
