//! `[discord]`: where the bot works on Discord, how incidents are laid out, how Discord is reached.

use super::{dur_or_off, url_like, AutoArchive, Dur, Secrets};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

pub const DISCORD_API: &str = "https://discord.com";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentMode {
    Channel,
    Thread,
    /// One post per incident in a forum channel, tagged with its severity and state.
    Forum,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DiscordConfig {
    pub application_id: Option<u64>,
    pub guild_id: Option<u64>,
    /// Discord's API, or a Discord-compatible proxy that rate-limits for us.
    pub api_base: String,
    pub incident_mode: IncidentMode,
    pub incident_category_id: Option<u64>,
    pub incident_parent_channel_id: Option<u64>,
    /// The forum that holds one post per incident in `incident_mode = "forum"`.
    pub incident_forum_channel_id: Option<u64>,
    /// How long an idle incident thread or forum post stays in the channel list.
    pub thread_auto_archive: AutoArchive,
    pub stakeholder_channel_id: Option<u64>,
    pub register_commands: bool,
    /// Asks for the privileged message-content intent, without which Discord delivers messages
    /// without their text. When Discord refuses it, the bot runs on without it and says so.
    pub message_content: bool,
    /// Extra trusted CA (PEM) for reaching a stand-in for discord.com over TLS.
    pub ca_file: Option<PathBuf>,
    /// `HOST:PORT:ADDR:PORT`, as curl's `--connect-to`.
    pub connect_to: Option<ConnectTo>,
    pub connect_timeout: Dur,
    pub request_timeout: Dur,
    /// How long Discord is trusted to drop a repeated nonce; a post first tried longer ago is
    /// looked for in its channel before it is sent again.
    pub nonce_window: Dur,
    /// How long after resolution an incident's place is put away; `"off"` (`None`) keeps it
    /// where it is.
    #[serde(with = "dur_or_off")]
    pub archive_after: Option<Dur>,
    /// Where archived incident channels go (threads are archived in place).
    pub archive_category_id: Option<u64>,
}

impl Default for DiscordConfig {
    fn default() -> Self {
        DiscordConfig {
            application_id: None,
            guild_id: None,
            api_base: DISCORD_API.into(),
            incident_mode: IncidentMode::Channel,
            incident_category_id: None,
            incident_parent_channel_id: None,
            incident_forum_channel_id: None,
            thread_auto_archive: AutoArchive::default(),
            stakeholder_channel_id: None,
            register_commands: true,
            message_content: true,
            ca_file: None,
            connect_to: None,
            connect_timeout: Dur(std::time::Duration::from_secs(5)),
            request_timeout: Dur(std::time::Duration::from_secs(15)),
            nonce_window: Dur(std::time::Duration::from_secs(120)),
            // A day leaves the channel in view for the hand-off and the first look at the
            // draft, and keeps a full category from filling with finished incidents.
            archive_after: Some(Dur(std::time::Duration::from_secs(24 * 3600))),
            archive_category_id: None,
        }
    }
}

/// `discord.com:443:127.0.0.1:8443`, as curl's `--connect-to`: requests for `host` go to `addr`.
/// Read once, when the config loads, so that a bad one stops startup before Discord is dialled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectTo {
    pub host: String,
    pub addr: SocketAddr,
    /// As written, to show and write back unchanged (curl's second field is not used).
    written: String,
}

impl FromStr for ConnectTo {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.split(':').collect();
        let [host, _port, addr, to_port] = parts[..] else {
            return Err(format!(
                "[discord] connect_to = \"{s}\" must look like \"discord.com:443:127.0.0.1:8443\""
            ));
        };
        let addr = format!("{addr}:{to_port}")
            .parse()
            .map_err(|e| format!("[discord] connect_to = \"{s}\": {e}"))?;
        Ok(ConnectTo {
            host: host.to_string(),
            addr,
            written: s.to_string(),
        })
    }
}

impl fmt::Display for ConnectTo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.written)
    }
}

impl Serialize for ConnectTo {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.written)
    }
}

impl<'de> Deserialize<'de> for ConnectTo {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl DiscordConfig {
    /// Only the bot needs these; the console never talks to Discord.
    pub(super) fn problems(&self, secrets: &Secrets) -> Vec<String> {
        let mut out = Vec::new();
        if secrets.discord_token.is_none() {
            out.push(
                "SITREP_DISCORD_TOKEN is not set (the bot token, from the environment only)".into(),
            );
        }
        if self.application_id.is_none() {
            out.push("[discord] application_id is not set".into());
        }
        if self.guild_id.is_none() {
            out.push("[discord] guild_id is not set".into());
        }
        if self.stakeholder_channel_id.is_none() {
            out.push(
                "[discord] stakeholder_channel_id is not set: nowhere to announce incidents".into(),
            );
        }
        if self.incident_mode == IncidentMode::Thread && self.incident_parent_channel_id.is_none() {
            out.push(
                "[discord] incident_mode = \"thread\" needs incident_parent_channel_id".into(),
            );
        }
        if self.incident_mode == IncidentMode::Forum && self.incident_forum_channel_id.is_none() {
            out.push(
                "[discord] incident_mode = \"forum\" needs incident_forum_channel_id (a forum channel's id)".into(),
            );
        }
        if let Err(e) = url_like(&self.api_base) {
            out.push(format!("[discord] api_base: {e}"));
        }
        if let Some(ca) = &self.ca_file {
            if !ca.exists() {
                out.push(format!("[discord] ca_file {} does not exist", ca.display()));
            }
        }
        out
    }

    pub(super) fn summary(&self) -> String {
        let id = |v: Option<u64>| v.map_or("-".to_string(), |v| v.to_string());
        format!(
            "discord    application {} · guild {} · api {} · incidents as {} (category {}, parent {}, forum {}) · stakeholders {} · register commands {} · message content {}\n",
            id(self.application_id),
            id(self.guild_id),
            self.api_base,
            match self.incident_mode { IncidentMode::Channel => "channels", IncidentMode::Thread => "threads", IncidentMode::Forum => "forum posts" },
            id(self.incident_category_id),
            id(self.incident_parent_channel_id),
            id(self.incident_forum_channel_id),
            id(self.stakeholder_channel_id),
            self.register_commands,
            self.message_content,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::env;
    use crate::config::Config;

    #[test]
    fn resolved_places_are_put_away_after_a_day_unless_turned_off() {
        let day = Some(Dur(std::time::Duration::from_secs(86_400)));
        let c = Config::from_parts(None, &env(&[])).unwrap();
        assert_eq!(c.discord.archive_after, day);
        let off = "[discord]\narchive_after = \"off\"\n";
        let c = Config::from_parts(Some(("t.toml", off)), &env(&[])).unwrap();
        assert_eq!(c.discord.archive_after, None);
        let c = Config::from_parts(
            Some(("t.toml", off)),
            &env(&[("SITREP_DISCORD__ARCHIVE_AFTER", "1s")]),
        )
        .unwrap();
        assert_eq!(
            c.discord.archive_after,
            Some(Dur(std::time::Duration::from_secs(1)))
        );
        let bad = "[discord]\narchive_after = \"soon\"\n";
        let e = Config::from_parts(Some(("t.toml", bad)), &env(&[])).unwrap_err();
        assert!(e.to_string().contains("\"off\""), "{e}");
    }

    #[test]
    fn message_content_is_asked_for_unless_switched_off() {
        let c = Config::from_parts(None, &env(&[])).unwrap();
        assert!(c.discord.message_content, "asked for by default");
        let c = Config::from_parts(
            Some(("a.toml", "[discord]\nmessage_content = false\n")),
            &env(&[]),
        )
        .unwrap();
        assert!(!c.discord.message_content);
    }

    #[test]
    fn the_nonce_window_is_a_duration_with_a_safe_default() {
        let c = Config::from_parts(None, &env(&[])).unwrap();
        assert_eq!(
            c.discord.nonce_window,
            Dur(std::time::Duration::from_secs(120))
        );
        let c = Config::from_parts(
            Some(("a.toml", "[discord]\nnonce_window = \"90s\"\n")),
            &env(&[]),
        )
        .unwrap();
        assert_eq!(
            c.discord.nonce_window,
            Dur(std::time::Duration::from_secs(90))
        );
        let err = Config::from_parts(
            Some(("a.toml", "[discord]\nnonce_window = 90\n")),
            &env(&[]),
        )
        .unwrap_err();
        assert!(err.to_string().contains("nonce_window"), "{err}");
    }

    #[test]
    fn connect_to_reads_like_curl() {
        let ct: ConnectTo = "discord.com:443:127.0.0.1:8443".parse().unwrap();
        assert_eq!(ct.host, "discord.com");
        assert_eq!(ct.addr.to_string(), "127.0.0.1:8443");
        assert!("discord.com:127.0.0.1".parse::<ConnectTo>().is_err());
        // Read when the config loads, from the file or the environment, and written back as is.
        let toml = "[discord]\nconnect_to = \"discord.com:443:127.0.0.1:8443\"\n";
        let c = Config::from_parts(Some(("a.toml", toml)), &env(&[])).unwrap();
        assert_eq!(c.discord.connect_to, Some(ct.clone()));
        assert_eq!(ct.to_string(), "discord.com:443:127.0.0.1:8443");
        let err = Config::from_parts(
            Some(("a.toml", "[discord]\nconnect_to = \"discord.com:8443\"\n")),
            &env(&[]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("must look like \"discord.com:443:127.0.0.1:8443\""),
            "{err}"
        );
        let err = Config::from_parts(
            None,
            &env(&[("SITREP_DISCORD__CONNECT_TO", "discord.com:443:nowhere:8443")]),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("connect_to"), "{err}");
    }

    #[test]
    fn thread_auto_archive_takes_only_discords_periods_and_forum_mode_needs_its_forum() {
        let c = Config::from_parts(None, &env(&[])).unwrap();
        assert_eq!(
            c.discord.thread_auto_archive.minutes(),
            10080,
            "a week by default"
        );
        let toml = "[discord]\nincident_mode = \"forum\"\nthread_auto_archive = \"1d\"\n";
        let c = Config::from_parts(Some(("a.toml", toml)), &env(&[])).unwrap();
        assert_eq!(c.discord.thread_auto_archive.minutes(), 1440);
        let problems = c.problems(&Secrets::default(), true);
        assert!(
            problems
                .iter()
                .any(|p| p.contains("incident_forum_channel_id")),
            "{problems:?}"
        );
        let toml = "[discord]\nthread_auto_archive = \"2h\"\n";
        let err = Config::from_parts(Some(("a.toml", toml)), &env(&[]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("1h, 1d, 3d or 1w"), "{err}");
        let err = Config::from_parts(
            None,
            &env(&[("SITREP_DISCORD__THREAD_AUTO_ARCHIVE", "90m")]),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("thread_auto_archive"), "{err}");
    }
}
