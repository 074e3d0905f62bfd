//! `sitrep doctor`: asks Discord itself whether the configured setup gives the bot what it needs.

use super::outgoing::status_of;
use super::permissions::{self as perms, Overwrite, Place};
use crate::config::{Config, IncidentMode};
use serenity::all::{
    ChannelType, GatewayIntents, GuildChannel, GuildId, Http, PartialGuild,
    PermissionOverwriteType, UserId,
};
use std::fmt::Write;

/// Discord's caps on channels: per category and per server.
pub const CATEGORY_CAP: usize = 50;
pub const SERVER_CAP: usize = 500;

/// The application flags that say a privileged intent is enabled in the developer portal; the
/// first of each pair is set for verified apps (100+ servers), the second for the others.
const FLAG_PRESENCE: u64 = (1 << 12) | (1 << 13);
const FLAG_GUILD_MEMBERS: u64 = (1 << 14) | (1 << 15);
const FLAG_MESSAGE_CONTENT: u64 = (1 << 18) | (1 << 19);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Ok,
    /// Worth knowing; not a reason to fail.
    Note,
    Problem,
}

/// One finding, and for a problem the one thing to do about it.
#[derive(Debug, Clone)]
pub struct Finding {
    pub level: Level,
    pub text: String,
    pub fix: Option<String>,
}

#[derive(Debug, Default)]
pub struct Report {
    pub findings: Vec<Finding>,
}

impl Report {
    fn ok(&mut self, text: impl Into<String>) {
        self.push(Level::Ok, text.into(), None);
    }
    fn note(&mut self, text: impl Into<String>) {
        self.push(Level::Note, text.into(), None);
    }
    fn problem(&mut self, text: impl Into<String>, fix: impl Into<String>) {
        self.push(Level::Problem, text.into(), Some(fix.into()));
    }
    fn push(&mut self, level: Level, text: String, fix: Option<String>) {
        self.findings.push(Finding { level, text, fix });
    }

    pub fn problems(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.level == Level::Problem)
            .count()
    }

    /// One line per finding (`ok:`, `note:`, `problem:`), each fix indented under its problem.
    pub fn render(&self) -> String {
        let mut s = String::new();
        for f in &self.findings {
            let tag = match f.level {
                Level::Ok => "ok",
                Level::Note => "note",
                Level::Problem => "problem",
            };
            let _ = writeln!(s, "{tag}: {}", f.text);
            if let Some(fix) = &f.fix {
                let _ = writeln!(s, "  fix: {fix}");
            }
        }
        s
    }
}

/// What a REST failure means to the person running the doctor.
fn failed_call(report: &mut Report, config: &Config, what: &str, e: &serenity::Error) {
    match status_of(e) {
        Some(401) => report.problem(
            "Discord refused the bot token (401 Unauthorized)",
            "reset the token under Bot in the developer portal and export it again as SITREP_DISCORD_TOKEN",
        ),
        Some(s) => report.problem(
            format!("{what}: Discord answered {s}: {e}"),
            "check the ids in the configuration against Discord (Developer Mode on, right-click → Copy ID)",
        ),
        None => report.problem(
            format!("cannot reach Discord at {} ({what}): {e}", config.discord.api_base),
            "check the network, and [discord] api_base if you use a proxy",
        ),
    }
}

/// Runs every check against Discord and reports what it found; nothing is changed.
pub async fn check(config: &Config, http: &Http) -> Report {
    let mut report = Report::default();
    let user = match http.get_current_user().await {
        Ok(u) => u,
        Err(e) => {
            failed_call(&mut report, config, "reading the bot user", &e);
            return report;
        }
    };
    report.ok(format!(
        "the token is accepted: bot user {} ({})",
        user.name, user.id
    ));
    let app = match http.get_current_application_info().await {
        Ok(a) => a,
        Err(e) => {
            failed_call(&mut report, config, "reading the application", &e);
            return report;
        }
    };
    let app_id = app.id.get();
    match config.discord.application_id {
        Some(id) if id == app_id => report.ok(format!("application_id {app_id} is this bot's")),
        Some(id) => report.problem(
            format!(
                "[discord] application_id = {id}, but this token belongs to application {app_id}"
            ),
            format!("set [discord] application_id = {app_id}"),
        ),
        None => report.problem(
            "[discord] application_id is not set",
            format!("set [discord] application_id = {app_id}"),
        ),
    }
    check_intents(&mut report, config, app.flags.map_or(0, |f| f.bits()));

    let Some(guild_id) = config.discord.guild_id else {
        report.problem(
            "[discord] guild_id is not set",
            "set [discord] guild_id to your server's id (Developer Mode on, right-click the server → Copy Server ID)",
        );
        return report;
    };
    let guild = match http.get_guild(GuildId::new(guild_id)).await {
        Ok(g) => g,
        Err(e) if matches!(status_of(&e), Some(403 | 404)) => {
            report.problem(
                format!("[discord] guild_id = {guild_id}: the bot is not in that server, or there is no such server"),
                format!(
                    "check guild_id (right-click the server → Copy Server ID), or invite the bot there: {}",
                    perms::invite_url(app_id, perms::INVITE)
                ),
            );
            return report;
        }
        Err(e) => {
            failed_call(&mut report, config, "reading the server", &e);
            return report;
        }
    };
    report.ok(format!("the bot is in server {} ({guild_id})", guild.name));
    let member = match http.get_member(guild.id, user.id).await {
        Ok(m) => m,
        Err(e) => {
            failed_call(&mut report, config, "reading the bot's roles", &e);
            return report;
        }
    };
    let channels = match http.get_channels(guild.id).await {
        Ok(c) => c,
        Err(e) => {
            failed_call(&mut report, config, "listing the server's channels", &e);
            return report;
        }
    };
    let roles: Vec<u64> = member.roles.iter().map(|r| r.get()).collect();
    let bot = BotAccess {
        user: user.id,
        roles: roles.clone(),
        base: base_of(&guild, &roles, user.id),
    };
    let mut mention_all = bot.base & perms::MENTION_EVERYONE != 0;
    check_unset_places(&mut report, config, &guild, &bot, app_id);
    for place in perms::places(config) {
        let Some(ch) = channels.iter().find(|c| c.id.get() == place.channel) else {
            report.problem(
                format!("[discord] {} = {}: no such channel in this server", place.key, place.channel),
                format!("copy the id again (right-click the channel → Copy Channel ID) into [discord] {}", place.key),
            );
            continue;
        };
        if !kind_fits(config, &place, ch) {
            wrong_kind(&mut report, &place, ch);
            continue;
        }
        let have = bot.in_channel(guild.id.get(), ch);
        if place.key != "stakeholder_channel_id" && place.key != "archive_category_id" {
            mention_all = have & perms::MENTION_EVERYONE != 0;
        }
        check_place(&mut report, &guild, &bot, &place, ch, have, app_id);
        if ch.kind == ChannelType::Category {
            check_room(&mut report, &place, ch, &channels);
        }
    }
    check_server_room(&mut report, &channels);
    let unmentionable = check_escalation_roles(&mut report, config, &guild, mention_all, app_id);
    report.ok(format!(
        "invite URL for this application: {}",
        perms::invite_url(
            app_id,
            if unmentionable {
                perms::INVITE_WITH_MENTIONS
            } else {
                perms::INVITE
            }
        )
    ));
    report
}

/// Places the configuration leaves out: without a category, incident channels are made at the
/// top of the server, which takes the permissions server-wide.
fn check_unset_places(
    report: &mut Report,
    config: &Config,
    guild: &PartialGuild,
    bot: &BotAccess,
    app_id: u64,
) {
    let d = &config.discord;
    if d.stakeholder_channel_id.is_none() {
        report.problem(
            "[discord] stakeholder_channel_id is not set: incidents are announced nowhere",
            "set [discord] stakeholder_channel_id to the channel stakeholders read (right-click → Copy Channel ID)",
        );
    }
    match d.incident_mode {
        IncidentMode::Thread if d.incident_parent_channel_id.is_none() => report.problem(
            "[discord] incident_mode = \"thread\" without incident_parent_channel_id: incidents have nowhere to go",
            "set [discord] incident_parent_channel_id to the channel incident threads start in",
        ),
        IncidentMode::Channel if d.incident_category_id.is_none() => {
            let missing = perms::TOP_LEVEL & !bot.base;
            if missing == 0 {
                report.note(
                    "[discord] incident_category_id is not set: incident channels are made at the top of the server",
                );
            } else {
                report.problem(
                    format!(
                        "[discord] incident_category_id is not set, so incident channels are made at the top of the server, where the bot lacks {}",
                        perms::names(missing).join(", ")
                    ),
                    format!(
                        "set [discord] incident_category_id to a category where the bot has them, or give {} {} (Server Settings → Roles; invite: {})",
                        role_name(guild, bot),
                        perms::names(missing).join(", "),
                        perms::invite_url(app_id, perms::INVITE)
                    ),
                );
            }
        }
        _ => {}
    }
}

fn check_intents(report: &mut Report, config: &Config, flags: u64) {
    let asked = super::intents(config);
    let privileged = [
        (
            GatewayIntents::MESSAGE_CONTENT,
            FLAG_MESSAGE_CONTENT,
            "Message Content Intent",
        ),
        (
            GatewayIntents::GUILD_MEMBERS,
            FLAG_GUILD_MEMBERS,
            "Server Members Intent",
        ),
        (
            GatewayIntents::GUILD_PRESENCES,
            FLAG_PRESENCE,
            "Presence Intent",
        ),
    ];
    for (intent, flag, name) in privileged {
        let enabled = flags & flag != 0;
        match (asked.contains(intent), enabled) {
            (true, true) => report.ok(format!("the {name} is enabled in the developer portal")),
            (true, false) => report.problem(
                format!("the configuration asks for the {name}, but it is off in the developer portal: Discord will close the gateway with 4014"),
                format!("turn on {name} under Bot → Privileged Gateway Intents in the developer portal"),
            ),
            _ => {}
        }
    }
    if !config.discord.message_content {
        report.note(
            "[discord] message_content = false: captured messages, pins and post-mortem transcripts will have no text (set it to true and turn on Message Content Intent under Bot in the developer portal)",
        );
    }
}

/// The bot as a guild member: who it is, its roles and its guild-level permissions.
struct BotAccess {
    user: UserId,
    roles: Vec<u64>,
    base: u64,
}

impl BotAccess {
    fn in_channel(&self, guild_id: u64, ch: &GuildChannel) -> u64 {
        perms::in_channel(
            self.base,
            guild_id,
            self.user.get(),
            &self.roles,
            &overwrites(ch),
        )
    }
}

fn base_of(guild: &PartialGuild, roles: &[u64], user: UserId) -> u64 {
    let everyone = guild
        .roles
        .get(&guild.id.everyone_role())
        .map_or(0, |r| r.permissions.bits());
    let role_perms: Vec<u64> = roles
        .iter()
        .filter_map(|r| guild.roles.iter().find(|(id, _)| id.get() == *r))
        .map(|(_, r)| r.permissions.bits())
        .collect();
    perms::base_permissions(everyone, &role_perms, guild.owner_id == user)
}

fn overwrites(ch: &GuildChannel) -> Vec<Overwrite> {
    ch.permission_overwrites
        .iter()
        .filter_map(|o| {
            let (id, member) = match o.kind {
                PermissionOverwriteType::Member(u) => (u.get(), true),
                PermissionOverwriteType::Role(r) => (r.get(), false),
                _ => return None,
            };
            Some(Overwrite {
                id,
                member,
                allow: o.allow.bits(),
                deny: o.deny.bits(),
            })
        })
        .collect()
}

fn kind_fits(config: &Config, place: &Place, ch: &GuildChannel) -> bool {
    match place.key {
        "incident_category_id" | "archive_category_id" => ch.kind == ChannelType::Category,
        "incident_parent_channel_id" => {
            config.discord.incident_mode == IncidentMode::Thread
                && matches!(
                    ch.kind,
                    ChannelType::Text | ChannelType::News | ChannelType::Forum
                )
        }
        _ => matches!(ch.kind, ChannelType::Text | ChannelType::News),
    }
}

fn wrong_kind(report: &mut Report, place: &Place, ch: &GuildChannel) {
    let want = match place.key {
        "incident_category_id" | "archive_category_id" => "a category",
        "incident_parent_channel_id" => "a text or forum channel",
        _ => "a text channel",
    };
    report.problem(
        format!(
            "[discord] {} = {} is #{}, which is not {want}",
            place.key, place.channel, ch.name
        ),
        format!("point [discord] {} at {want}", place.key),
    );
}

fn check_place(
    report: &mut Report,
    guild: &PartialGuild,
    bot: &BotAccess,
    place: &Place,
    ch: &GuildChannel,
    have: u64,
    app_id: u64,
) {
    let missing = place.needs & !have;
    if missing == 0 {
        report.ok(format!(
            "#{} ({}): the bot has every permission it needs there",
            ch.name, place.key
        ));
        return;
    }
    let list: Vec<String> = perms::PERMISSIONS
        .iter()
        .filter(|(b, _, _)| missing & b != 0)
        .map(|(_, name, why)| format!("{name} ({why})"))
        .collect();
    let text = format!(
        "#{} ({}): the bot lacks {}",
        ch.name,
        place.key,
        list.join(", ")
    );
    let names = perms::names(missing).join(", ");
    let role = role_name(guild, bot);
    let fix = if bot.base & missing == missing {
        // The server grants them; an overwrite on this channel takes them away.
        format!(
            "in #{}'s settings → Permissions, allow {names} for {role} (an overwrite there denies them)",
            ch.name
        )
    } else {
        format!(
            "give {role} {names} (Server Settings → Roles, or allow them in #{}'s permissions), or invite the bot again with {}",
            ch.name,
            perms::invite_url(app_id, perms::INVITE)
        )
    };
    report.problem(text, fix);
}

/// The bot's own (managed) role, as the server settings show it.
fn role_name(guild: &PartialGuild, bot: &BotAccess) -> String {
    bot.roles
        .iter()
        .filter_map(|r| guild.roles.iter().find(|(id, _)| id.get() == *r))
        .find(|(_, r)| r.managed)
        .or_else(|| {
            bot.roles
                .iter()
                .find_map(|r| guild.roles.iter().find(|(id, _)| id.get() == *r))
        })
        .map_or_else(
            || "the bot's role".to_string(),
            |(_, r)| format!("@{}", r.name),
        )
}

fn check_room(report: &mut Report, place: &Place, ch: &GuildChannel, channels: &[GuildChannel]) {
    let n = channels
        .iter()
        .filter(|c| c.parent_id == Some(ch.id))
        .count();
    if n >= CATEGORY_CAP {
        report.problem(
            format!(
                "category {} ({}) holds {n} channels, Discord's maximum of {CATEGORY_CAP}: no new channel fits there",
                ch.name, place.key
            ),
            format!(
                "delete or move out channels of resolved incidents from {}, or point [discord] {} at another category",
                ch.name, place.key
            ),
        );
    } else {
        report.ok(format!(
            "category {} ({}) has room for {} more channels (of {CATEGORY_CAP})",
            ch.name,
            place.key,
            CATEGORY_CAP - n
        ));
    }
}

fn check_server_room(report: &mut Report, channels: &[GuildChannel]) {
    let n = channels.len();
    if n >= SERVER_CAP {
        report.problem(
            format!("the server holds {n} channels, Discord's maximum of {SERVER_CAP}: no new channel fits"),
            "delete channels of resolved incidents, or use incident_mode = \"thread\"",
        );
    } else {
        report.ok(format!(
            "the server has room for {} more channels (of {SERVER_CAP})",
            SERVER_CAP - n
        ));
    }
}

fn check_escalation_roles(
    report: &mut Report,
    config: &Config,
    guild: &PartialGuild,
    mention_all: bool,
    app_id: u64,
) -> bool {
    let mut unmentionable = false;
    for (target, t) in &config.escalation.targets {
        for role in &t.roles {
            let Some((_, r)) = guild.roles.iter().find(|(id, _)| id.get() == *role) else {
                report.problem(
                    format!("escalation target {target}: role {role} does not exist in this server"),
                    format!(
                        "copy the role id again (Server Settings → Roles, right-click → Copy Role ID) into [escalation.targets.{target}] roles"
                    ),
                );
                continue;
            };
            if r.mentionable {
                report.ok(format!(
                    "escalation target {target}: @{} is mentionable",
                    r.name
                ));
            } else if mention_all {
                unmentionable = true;
                report.ok(format!(
                    "escalation target {target}: @{} is not mentionable, but the bot may mention all roles",
                    r.name
                ));
            } else {
                unmentionable = true;
                report.problem(
                    format!(
                        "escalation target {target}: @{} is not mentionable and the bot lacks Mention @everyone, @here, and All Roles: its pages would ping nobody",
                        r.name
                    ),
                    format!(
                        "turn on \"Allow anyone to @mention this role\" for @{} (Server Settings → Roles), or give the bot Mention @everyone, @here, and All Roles (invite: {})",
                        r.name,
                        perms::invite_url(app_id, perms::INVITE_WITH_MENTIONS)
                    ),
                );
            }
        }
    }
    unmentionable
}
