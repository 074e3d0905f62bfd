//! The Discord permissions sitrep needs, what each is for, and Discord's way of computing them.
//!
//! One definition serves the invite URL (README and `sitrep invite`), `sitrep doctor`'s checks and
//! the wording of what to fix. sitrep never adds reactions, pins or deletes other people's
//! messages, so it does not ask for Add Reactions, Pin Messages or Manage Messages.

use crate::config::{Config, IncidentMode};

pub const MANAGE_CHANNELS: u64 = 1 << 4;
pub const ADMINISTRATOR: u64 = 1 << 3;
pub const VIEW_CHANNEL: u64 = 1 << 10;
pub const SEND_MESSAGES: u64 = 1 << 11;
pub const SEND_TTS_MESSAGES: u64 = 1 << 12;
pub const EMBED_LINKS: u64 = 1 << 14;
pub const ATTACH_FILES: u64 = 1 << 15;
pub const READ_MESSAGE_HISTORY: u64 = 1 << 16;
pub const MENTION_EVERYONE: u64 = 1 << 17;
pub const MANAGE_THREADS: u64 = 1 << 34;
pub const CREATE_PUBLIC_THREADS: u64 = 1 << 35;
pub const SEND_MESSAGES_IN_THREADS: u64 = 1 << 38;

/// Every permission bit Discord defines today (up to PIN_MESSAGES, 1 << 51): what ALL means.
pub const ALL: u64 = (1 << 52) - 1;

/// Each permission sitrep may ask for, with its name in Discord's settings and what it is for.
pub const PERMISSIONS: &[(u64, &str, &str)] = &[
    (
        VIEW_CHANNEL,
        "View Channels",
        "seeing the incident places and the stakeholder channel",
    ),
    (
        MANAGE_CHANNELS,
        "Manage Channels",
        "creating a channel per incident and moving it to the archive",
    ),
    (
        SEND_MESSAGES,
        "Send Messages",
        "status updates, escalations and replies",
    ),
    (
        SEND_MESSAGES_IN_THREADS,
        "Send Messages in Threads",
        "posting in incident threads",
    ),
    (
        CREATE_PUBLIC_THREADS,
        "Create Public Threads",
        "a thread per incident (thread mode)",
    ),
    (
        MANAGE_THREADS,
        "Manage Threads",
        "archiving and reopening incident threads",
    ),
    (EMBED_LINKS, "Embed Links", "status updates are embeds"),
    (
        ATTACH_FILES,
        "Attach Files",
        "long posts and post-mortem exports go out as files",
    ),
    (
        READ_MESSAGE_HISTORY,
        "Read Message History",
        "capturing the channel for the post-mortem",
    ),
    (
        MENTION_EVERYONE,
        "Mention @everyone, @here, and All Roles",
        "paging escalation roles that are not mentionable",
    ),
];

/// What the invite asks for: everything above but Mention Everyone, which only escalations to
/// roles that are not mentionable need.
pub const INVITE: u64 = VIEW_CHANNEL
    | MANAGE_CHANNELS
    | SEND_MESSAGES
    | SEND_MESSAGES_IN_THREADS
    | CREATE_PUBLIC_THREADS
    | MANAGE_THREADS
    | EMBED_LINKS
    | ATTACH_FILES
    | READ_MESSAGE_HISTORY;

/// The invite with Mention Everyone, for servers whose escalation roles are not mentionable.
pub const INVITE_WITH_MENTIONS: u64 = INVITE | MENTION_EVERYONE;

/// Posting: what every channel the bot writes into needs.
const POSTING: u64 =
    VIEW_CHANNEL | SEND_MESSAGES | EMBED_LINKS | ATTACH_FILES | READ_MESSAGE_HISTORY;

/// What channel mode needs server-wide when no category is configured.
pub const TOP_LEVEL: u64 = POSTING | MANAGE_CHANNELS;

/// The invite URL for an application, asking for `permissions`.
pub fn invite_url(application_id: u64, permissions: u64) -> String {
    format!(
        "https://discord.com/oauth2/authorize?client_id={application_id}&scope=bot+applications.commands&permissions={permissions}"
    )
}

/// Names of the permissions in `bits`, in the order of [`PERMISSIONS`].
pub fn names(bits: u64) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = PERMISSIONS
        .iter()
        .filter(|(b, _, _)| bits & b != 0)
        .map(|(_, n, _)| *n)
        .collect();
    if bits & ADMINISTRATOR != 0 {
        out.insert(0, "Administrator");
    }
    out
}

/// Where the bot works and what it needs there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    /// How the configuration names it, e.g. `incident_category_id`.
    pub key: &'static str,
    pub channel: u64,
    pub needs: u64,
}

/// The channels the configuration points at and what the bot needs in each: computed on the
/// channel itself, since incident channels are created with their category's overwrites.
pub fn places(config: &Config) -> Vec<Place> {
    let d = &config.discord;
    let mut out = vec![];
    match d.incident_mode {
        IncidentMode::Channel => {
            if let Some(c) = d.incident_category_id {
                out.push(Place {
                    key: "incident_category_id",
                    channel: c,
                    needs: POSTING | MANAGE_CHANNELS,
                });
            }
        }
        IncidentMode::Thread => {
            if let Some(c) = d.incident_parent_channel_id {
                out.push(Place {
                    key: "incident_parent_channel_id",
                    channel: c,
                    needs: POSTING
                        | CREATE_PUBLIC_THREADS
                        | SEND_MESSAGES_IN_THREADS
                        | MANAGE_THREADS,
                });
            }
        }
        IncidentMode::Forum => {
            if let Some(c) = d.incident_forum_channel_id {
                out.push(Place {
                    key: "incident_forum_channel_id",
                    channel: c,
                    // Manage Channels: sitrep adds its severity and state tags to the forum.
                    needs: POSTING | SEND_MESSAGES_IN_THREADS | MANAGE_THREADS | MANAGE_CHANNELS,
                });
            }
        }
    }
    if let Some(c) = d.archive_category_id {
        out.push(Place {
            key: "archive_category_id",
            channel: c,
            needs: VIEW_CHANNEL | MANAGE_CHANNELS,
        });
    }
    if let Some(c) = d.stakeholder_channel_id {
        out.push(Place {
            key: "stakeholder_channel_id",
            channel: c,
            needs: POSTING,
        });
    }
    out
}

/// A channel permission overwrite as Discord sends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overwrite {
    /// A role id (the guild id for @everyone) or a member's user id.
    pub id: u64,
    pub member: bool,
    pub allow: u64,
    pub deny: u64,
}

/// A member's guild-level permissions: @everyone's and their roles', everything for the owner
/// or an Administrator.
pub fn base_permissions(everyone: u64, roles: &[u64], owner: bool) -> u64 {
    if owner {
        return ALL;
    }
    let perms = roles.iter().fold(everyone, |p, r| p | r);
    if perms & ADMINISTRATOR != 0 {
        return ALL;
    }
    perms
}

/// Applies a channel's overwrites in Discord's order: @everyone's, then the member's roles'
/// (denies before allows, all roles together), then the member's own; then the implicit
/// rules (no View Channel: nothing; no Send Messages: no mentions, embeds or files).
pub fn in_channel(
    base: u64,
    guild_id: u64,
    user_id: u64,
    member_roles: &[u64],
    overwrites: &[Overwrite],
) -> u64 {
    if base & ADMINISTRATOR != 0 || base == ALL {
        return ALL;
    }
    let mut p = base;
    if let Some(o) = overwrites.iter().find(|o| !o.member && o.id == guild_id) {
        p &= !o.deny;
        p |= o.allow;
    }
    let (allow, deny) = overwrites
        .iter()
        .filter(|o| !o.member && o.id != guild_id && member_roles.contains(&o.id))
        .fold((0, 0), |(a, d), o| (a | o.allow, d | o.deny));
    p &= !deny;
    p |= allow;
    if let Some(o) = overwrites.iter().find(|o| o.member && o.id == user_id) {
        p &= !o.deny;
        p |= o.allow;
    }
    if p & VIEW_CHANNEL == 0 {
        return 0;
    }
    if p & SEND_MESSAGES == 0 {
        p &= !(MENTION_EVERYONE | SEND_TTS_MESSAGES | ATTACH_FILES | EMBED_LINKS);
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    const GUILD: u64 = 100;
    const USER: u64 = 7;
    const ROLE_A: u64 = 201;
    const ROLE_B: u64 = 202;

    fn ow(id: u64, member: bool, allow: u64, deny: u64) -> Overwrite {
        Overwrite {
            id,
            member,
            allow,
            deny,
        }
    }

    #[test]
    fn the_readme_invite_asks_for_exactly_the_definition() {
        let readme = include_str!("../../../README.md");
        let asked: Vec<u64> = readme
            .match_indices("permissions=")
            .map(|(i, _)| {
                readme[i + "permissions=".len()..]
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect::<String>()
                    .parse()
                    .expect("a number after permissions=")
            })
            .collect();
        assert_eq!(asked, [INVITE, INVITE_WITH_MENTIONS], "README invite URLs");
        let prose = readme.split_whitespace().collect::<Vec<_>>().join(" ");
        for n in names(INVITE_WITH_MENTIONS) {
            assert!(prose.contains(n), "the README names {n}");
        }
    }

    #[test]
    fn the_invite_asks_for_nothing_sitrep_does_not_use() {
        let add_reactions = 1 << 6;
        let manage_messages = 1 << 13;
        let pin_messages = 1 << 51;
        for unused in [add_reactions, manage_messages, pin_messages, ADMINISTRATOR] {
            assert_eq!(INVITE_WITH_MENTIONS & unused, 0);
        }
        assert_eq!(INVITE & MENTION_EVERYONE, 0);
        let named = PERMISSIONS.iter().fold(0, |a, (b, _, _)| a | b);
        assert_eq!(named, INVITE_WITH_MENTIONS);
    }

    #[test]
    fn every_place_needs_only_what_the_invite_gives() {
        let mut c = Config::default();
        c.discord.incident_category_id = Some(1);
        c.discord.stakeholder_channel_id = Some(2);
        c.discord.archive_category_id = Some(3);
        let keys: Vec<_> = places(&c).iter().map(|p| p.key).collect();
        assert_eq!(
            keys,
            [
                "incident_category_id",
                "archive_category_id",
                "stakeholder_channel_id"
            ]
        );
        c.discord.incident_mode = IncidentMode::Thread;
        c.discord.incident_parent_channel_id = Some(4);
        let ps = places(&c);
        assert_eq!(ps[0].key, "incident_parent_channel_id");
        assert_ne!(ps[0].needs & CREATE_PUBLIC_THREADS, 0);
        assert!(ps.iter().all(|p| p.needs & !INVITE == 0));
    }

    #[test]
    fn base_is_everyone_and_roles_with_owner_and_administrator_all() {
        assert_eq!(
            base_permissions(VIEW_CHANNEL, &[SEND_MESSAGES], false),
            VIEW_CHANNEL | SEND_MESSAGES
        );
        assert_eq!(base_permissions(0, &[ADMINISTRATOR], false), ALL);
        assert_eq!(base_permissions(0, &[], true), ALL);
    }

    #[test]
    fn administrator_ignores_overwrites() {
        let base = base_permissions(0, &[ADMINISTRATOR], false);
        let deny_all = [ow(GUILD, false, 0, ALL), ow(USER, true, 0, ALL)];
        assert_eq!(in_channel(base, GUILD, USER, &[ROLE_A], &deny_all), ALL);
    }

    #[test]
    fn overwrites_apply_everyone_then_roles_then_member() {
        let base = VIEW_CHANNEL | SEND_MESSAGES | MANAGE_CHANNELS;
        // @everyone's deny is undone by a role's allow.
        let o = [
            ow(GUILD, false, 0, MANAGE_CHANNELS),
            ow(ROLE_A, false, MANAGE_CHANNELS, 0),
        ];
        assert_ne!(
            in_channel(base, GUILD, USER, &[ROLE_A], &o) & MANAGE_CHANNELS,
            0
        );
        // Without the role, the deny holds.
        assert_eq!(
            in_channel(base, GUILD, USER, &[ROLE_B], &o) & MANAGE_CHANNELS,
            0
        );
        // Between roles, an allow wins over another role's deny.
        let o = [
            ow(ROLE_A, false, 0, MANAGE_CHANNELS),
            ow(ROLE_B, false, MANAGE_CHANNELS, 0),
        ];
        assert_ne!(
            in_channel(base, GUILD, USER, &[ROLE_A, ROLE_B], &o) & MANAGE_CHANNELS,
            0
        );
        // The member's own overwrite comes last and wins.
        let o = [
            ow(ROLE_B, false, MANAGE_CHANNELS, 0),
            ow(USER, true, 0, MANAGE_CHANNELS),
        ];
        assert_eq!(
            in_channel(base, GUILD, USER, &[ROLE_B], &o) & MANAGE_CHANNELS,
            0
        );
        // A role overwrite for a role the member lacks changes nothing.
        let o = [ow(ROLE_A, false, 0, SEND_MESSAGES)];
        assert_ne!(
            in_channel(base, GUILD, USER, &[ROLE_B], &o) & SEND_MESSAGES,
            0
        );
    }

    #[test]
    fn implicit_denials_follow_view_and_send() {
        let base = POSTING | MENTION_EVERYONE;
        let no_view = [ow(GUILD, false, 0, VIEW_CHANNEL)];
        assert_eq!(in_channel(base, GUILD, USER, &[], &no_view), 0);
        let no_send = [ow(GUILD, false, 0, SEND_MESSAGES)];
        let p = in_channel(base, GUILD, USER, &[], &no_send);
        assert_eq!(p & (EMBED_LINKS | ATTACH_FILES | MENTION_EVERYONE), 0);
        assert_ne!(p & READ_MESSAGE_HISTORY, 0);
    }

    #[test]
    fn names_follow_the_table() {
        assert_eq!(
            names(MANAGE_CHANNELS | VIEW_CHANNEL),
            ["View Channels", "Manage Channels"]
        );
    }
}
