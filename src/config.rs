//! Configuration: built-in defaults, then a TOML file, then `SITREP_<SECTION>__<KEY>` variables.
//!
//! Secrets never live here: they are read from the environment by [`Secrets`].

use crate::domain::{Cadence, RuleError, Severity, COMMANDER};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

mod escalation;
mod threads;
pub use escalation::{
    EscalationConfig, EscalationPolicy, EscalationTarget, PagerDutyConfig, PAGERDUTY_EVENTS_URL,
};
pub use threads::AutoArchive;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{origin}: {message}")]
    Parse { origin: String, message: String },
    #[error("environment variable {var}: {message}")]
    Env { var: String, message: String },
}

/// A duration written with units in config: `"5s"`, `"10m"`, `"2h"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dur(pub std::time::Duration);

impl Serialize for Dur {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(self.0).to_string())
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl FromStr for Dur {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        humantime::parse_duration(s.trim())
            .map(Dur)
            .map_err(|e| format!("`{s}` is not a duration like \"30s\", \"10m\" or \"2h\" ({e})"))
    }
}

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

/// A duration, or `"off"` for none: for settings whose default is on.
mod dur_or_off {
    use super::Dur;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<Dur>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(d) => d.serialize(s),
            None => s.serialize_str("off"),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Dur>, D::Error> {
        let s = String::deserialize(d)?;
        if s.trim().eq_ignore_ascii_case("off") {
            return Ok(None);
        }
        s.parse()
            .map(Some)
            .map_err(|e: String| serde::de::Error::custom(format!("{e}, or \"off\"")))
    }
}

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
    pub connect_to: Option<String>,
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

pub const DISCORD_API: &str = "https://discord.com";

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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    pub path: PathBuf,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            path: PathBuf::from("./sitrep-data"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Where the health, metrics, webhook and export endpoints listen; empty turns them off.
    pub listen: String,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: "127.0.0.1:8080".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeverityConfig {
    pub name: String,
    /// `#rrggbb`; the embed colour of everything the incident posts.
    pub colour: String,
    #[serde(default)]
    pub update_every: Option<Dur>,
    #[serde(default)]
    pub update_cron: Option<String>,
    /// Whether `/incident cadence off` may silence updates; unset means yes, except for SEV1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_cadence_off: Option<bool>,
    #[serde(default)]
    pub description: Option<String>,
}

impl SeverityConfig {
    pub fn colour_value(&self) -> Option<u32> {
        let hex = self.colour.strip_prefix('#')?;
        if hex.len() != 6 {
            return None;
        }
        u32::from_str_radix(hex, 16).ok()
    }

    /// The cadence `update_every` or `update_cron` describe; `None` when neither is set.
    pub fn cadence(&self) -> Result<Option<Cadence>, RuleError> {
        match (&self.update_every, &self.update_cron) {
            (Some(every), _) => Cadence::every(every.0).map(Some),
            (None, Some(cron)) => Cadence::cron(cron).map(Some),
            (None, None) => Ok(None),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleConfig {
    #[serde(default)]
    pub description: String,
    /// Discord roles whose members may hold this incident role; empty means anyone.
    #[serde(default)]
    pub discord_roles: Vec<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub discord: DiscordConfig,
    pub storage: StorageConfig,
    pub http: HttpConfig,
    pub severities: BTreeMap<String, SeverityConfig>,
    pub roles: BTreeMap<String, RoleConfig>,
    /// Folder of operator templates that replace the built-in ones, file by file.
    pub templates: TemplatesConfig,
    /// Who may run which command: `"incident resolve" = [<discord role id>, ...]`.
    pub permissions: BTreeMap<String, Vec<u64>>,
    pub prometheus: PrometheusConfig,
    /// Named PromQL queries for `/metrics name:` and the "what changed" post.
    pub queries: BTreeMap<String, QueryConfig>,
    pub whats_changed: WhatsChangedConfig,
    /// Deploys that CI pipelines push to the HTTP edge.
    pub deploys: DeploysConfig,
    /// Deploys read from GitHub's deployments API.
    pub github: GitHubConfig,
    /// Post-mortem drafts: key moments, anonymity, the blameless lint.
    pub postmortem: PostmortemConfig,
    /// The public status page on the HTTP edge.
    pub status_page: StatusPageConfig,
    /// Who `/escalate` pages, the ladders that follow, and the stuck nudge.
    pub escalation: EscalationConfig,
    /// PagerDuty's Events API, for escalation targets with a routing key.
    pub pagerduty: PagerDutyConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StatusPageConfig {
    /// Serves `/status`, `/status.json` and `/status/feed.atom` to anyone; while off, only
    /// people signed in to the incident browser see them.
    pub enabled: bool,
    /// The page's heading and the feed's title.
    pub title: String,
    /// How often the page reloads itself.
    pub refresh: Dur,
    /// How long a resolved incident stays listed.
    pub resolved_for: Dur,
    /// Where the public reaches the page, for absolute links in the feed. An `https://` address
    /// also marks the incident browser's cookie Secure.
    pub public_url: Option<String>,
}

impl Default for StatusPageConfig {
    fn default() -> Self {
        StatusPageConfig {
            enabled: false,
            title: "Service status".into(),
            refresh: Dur(std::time::Duration::from_secs(60)),
            resolved_for: Dur(std::time::Duration::from_secs(7 * 86_400)),
            public_url: None,
        }
    }
}

impl StatusPageConfig {
    /// The admin token matters only when the bot runs; a short one is guessable.
    fn problems(&self, http: &HttpConfig, secrets: &Secrets, running: bool) -> Vec<String> {
        let mut out = Vec::new();
        if self.title.trim().is_empty() {
            out.push("[status_page] title is empty".into());
        }
        if self.refresh.0 < std::time::Duration::from_secs(10) {
            out.push(format!(
                "[status_page] refresh = \"{}\" is under 10 seconds",
                self.refresh
            ));
        }
        if let Some(url) = &self.public_url {
            if let Err(e) = url_like(url) {
                out.push(format!("[status_page] public_url: {e}"));
            }
        }
        if running && self.enabled && http.listen.is_empty() {
            out.push("[status_page] enabled = true needs [http] listen; it is empty".into());
        }
        if running {
            if let Some(t) = &secrets.http_admin_token {
                if t.trim().chars().count() < 16 {
                    out.push(
                        "SITREP_HTTP_ADMIN_TOKEN is shorter than 16 characters; use a long random one (e.g. `openssl rand -hex 32`)"
                            .into(),
                    );
                }
            }
        }
        out
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PostmortemConfig {
    /// Names people by their incident role (Commander, Responder 2) instead of their name.
    pub anonymize: bool,
    /// Reacting with this to a message in an incident channel puts it on the timeline.
    pub highlight_reaction: String,
    /// Pinning a message in an incident channel puts it on the timeline too.
    pub highlight_pins: bool,
    /// Appends every captured message of the channel to the draft as an appendix, edits as
    /// their final text and deletions marked, so that nothing said is missing from the record.
    /// Off, the draft holds only the key moments.
    pub transcript: bool,
    /// Keeps the built-in blameless-lint phrases; `lint` adds to them.
    pub builtin_lint: bool,
    pub lint: Vec<LintRuleConfig>,
}

impl Default for PostmortemConfig {
    fn default() -> Self {
        PostmortemConfig {
            anonymize: false,
            highlight_reaction: "📌".into(),
            highlight_pins: true,
            transcript: true,
            builtin_lint: true,
            lint: Vec::new(),
        }
    }
}

/// A phrase the blameless lint flags, and the neutral wording it suggests instead.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LintRuleConfig {
    /// Words matched case-insensitively; `{person}` is a mention or a participant's name,
    /// `{any}` any one word, and a trailing `*` matches word endings (`careless*`).
    pub phrase: String,
    pub suggest: String,
}

impl PostmortemConfig {
    fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.highlight_reaction.trim().is_empty() {
            out.push("[postmortem] highlight_reaction is empty; the default is \"📌\"".into());
        }
        for (i, rule) in self.lint.iter().enumerate() {
            if let Err(e) = crate::postmortem::lint::check_phrase(&rule.phrase) {
                out.push(format!("[[postmortem.lint]] #{}: {e}", i + 1));
            }
            if rule.suggest.trim().is_empty() {
                out.push(format!(
                    "[[postmortem.lint]] #{} (\"{}\"): suggest is empty; say what to write instead",
                    i + 1,
                    rule.phrase
                ));
            }
        }
        out
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PrometheusConfig {
    /// Prometheus' base URL; metrics are off while it is unset. Auth from SITREP_PROMETHEUS_TOKEN.
    pub url: Option<String>,
    pub timeout: Dur,
    /// What "normal" means: the same query this long ago.
    pub baselines: Vec<Dur>,
    /// A ratio to a baseline at or past this is flagged.
    pub threshold: f64,
    /// Series shown per answer; the rest are counted.
    pub top_n: usize,
}

impl Default for PrometheusConfig {
    fn default() -> Self {
        PrometheusConfig {
            url: None,
            timeout: Dur(std::time::Duration::from_secs(5)),
            baselines: vec![
                Dur(std::time::Duration::from_secs(86_400)),
                Dur(std::time::Duration::from_secs(7 * 86_400)),
            ],
            threshold: 3.0,
            top_n: 5,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryConfig {
    /// PromQL; `{{service}}` and other `{{name}}` placeholders are filled from the command.
    pub promql: String,
    #[serde(default)]
    pub unit: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WhatsChangedConfig {
    /// How far before an incident's start deploys are listed.
    pub lookback: Dur,
    /// Named queries shown "at a glance" when an incident opens.
    pub queries: Vec<String>,
}

impl Default for WhatsChangedConfig {
    fn default() -> Self {
        WhatsChangedConfig {
            lookback: Dur(std::time::Duration::from_secs(2 * 3600)),
            queries: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeploysConfig {
    /// Serves `POST /hooks/deploy`, signed with SITREP_DEPLOY_WEBHOOK_SECRET.
    pub webhook: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GitHubConfig {
    /// `https://api.github.com`, or `https://HOST/api/v3` for GitHub Enterprise Server.
    pub api_base: String,
    /// `owner/name` of each repository whose deployments are read; none turns polling off.
    pub repositories: Vec<String>,
    pub poll_every: Dur,
    /// Only deployments to these environments; empty means all.
    pub environments: Vec<String>,
}

pub const GITHUB_API: &str = "https://api.github.com";

impl Default for GitHubConfig {
    fn default() -> Self {
        GitHubConfig {
            api_base: GITHUB_API.into(),
            repositories: Vec::new(),
            poll_every: Dur(std::time::Duration::from_secs(60)),
            environments: Vec::new(),
        }
    }
}

impl Config {
    /// Problems of `[deploys]` and `[github]`; missing secrets matter only when the bot runs.
    fn deploy_problems(&self, secrets: &Secrets, running: bool) -> Vec<String> {
        let mut out = Vec::new();
        let g = &self.github;
        if let Err(e) = url_like(&g.api_base) {
            out.push(format!("[github] api_base: {e}"));
        }
        for repo in &g.repositories {
            let parts: Vec<&str> = repo.split('/').collect();
            let ok = parts.len() == 2
                && parts.iter().all(|p| {
                    !p.is_empty()
                        && p.chars()
                            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
                });
            if !ok {
                out.push(format!(
                    "[github] repositories: \"{repo}\" is not owner/name, like \"acme/checkout\""
                ));
            }
        }
        if g.poll_every.0 < std::time::Duration::from_secs(10) {
            out.push(format!(
                "[github] poll_every = \"{}\" is under 10 seconds; GitHub allows 5000 requests an hour",
                g.poll_every
            ));
        }
        if running && !g.repositories.is_empty() && secrets.github_token.is_none() {
            out.push(
                "SITREP_GITHUB_TOKEN is not set, but [github] repositories are (a token with read access to deployments, from the environment only)"
                    .into(),
            );
        }
        if running && self.deploys.webhook && secrets.deploy_webhook_secret.is_none() {
            out.push(
                "SITREP_DEPLOY_WEBHOOK_SECRET is not set, but [deploys] webhook = true (the shared secret that signs deploy notices, from the environment only)"
                    .into(),
            );
        }
        if running && self.deploys.webhook && self.http.listen.is_empty() {
            out.push("[deploys] webhook = true needs [http] listen; it is empty".into());
        }
        out
    }

    fn deploy_summary(&self) -> String {
        let g = &self.github;
        let github = if g.repositories.is_empty() {
            "off".to_string()
        } else {
            format!(
                "{} · {} every {} · environments {}",
                g.api_base,
                g.repositories.join(", "),
                g.poll_every,
                if g.environments.is_empty() {
                    "all".to_string()
                } else {
                    g.environments.join(", ")
                }
            )
        };
        format!(
            "deploys    webhook {}\ngithub     {github}\n",
            if self.deploys.webhook {
                "on (POST /hooks/deploy)"
            } else {
                "off"
            }
        )
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TemplatesConfig {
    pub dir: Option<PathBuf>,
}

fn severity(name: &str, colour: &str, every: Option<u64>, description: &str) -> SeverityConfig {
    SeverityConfig {
        name: name.into(),
        colour: colour.into(),
        update_every: every.map(|m| Dur(std::time::Duration::from_secs(m * 60))),
        update_cron: None,
        allow_cadence_off: None,
        description: Some(description.into()),
    }
}

fn role(description: &str) -> RoleConfig {
    RoleConfig {
        description: description.into(),
        discord_roles: Vec::new(),
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            discord: DiscordConfig::default(),
            storage: StorageConfig::default(),
            http: HttpConfig::default(),
            severities: BTreeMap::from([
                (
                    "SEV1".into(),
                    severity(
                        "Critical",
                        "#d0021b",
                        Some(15),
                        "Customer-facing outage or data loss",
                    ),
                ),
                (
                    "SEV2".into(),
                    severity(
                        "Major",
                        "#f5a623",
                        Some(30),
                        "Major feature degraded for many customers",
                    ),
                ),
                (
                    "SEV3".into(),
                    severity(
                        "Minor",
                        "#f8e71c",
                        Some(60),
                        "Minor feature degraded, workaround exists",
                    ),
                ),
                (
                    "SEV4".into(),
                    severity("Low", "#4a90e2", None, "No customer impact yet"),
                ),
            ]),
            roles: BTreeMap::from([
                (
                    COMMANDER.into(),
                    role("Leads the response and makes the calls"),
                ),
                ("communications".into(), role("Keeps stakeholders informed")),
                ("scribe".into(), role("Keeps the timeline complete")),
            ]),
            templates: TemplatesConfig::default(),
            permissions: BTreeMap::new(),
            prometheus: PrometheusConfig::default(),
            queries: BTreeMap::new(),
            whats_changed: WhatsChangedConfig::default(),
            deploys: DeploysConfig::default(),
            github: GitHubConfig::default(),
            postmortem: PostmortemConfig::default(),
            status_page: StatusPageConfig::default(),
            escalation: EscalationConfig::default(),
            pagerduty: PagerDutyConfig::default(),
        }
    }
}

/// Secrets, read from the environment only; `Debug` never shows them.
#[derive(Clone, Default)]
pub struct Secrets {
    pub discord_token: Option<String>,
    /// Signs deploy notices sent to `POST /hooks/deploy`.
    pub deploy_webhook_secret: Option<String>,
    pub github_token: Option<String>,
    /// Opens the incident browser on the HTTP edge (sign-in form or bearer token).
    pub http_admin_token: Option<String>,
    /// PagerDuty routing keys by the variable that holds them, for the variables
    /// `[escalation.targets.*] pagerduty_routing_key_env` names; see [`Secrets::with_routing_keys`].
    pub pagerduty_routing_keys: BTreeMap<String, String>,
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Secrets")
            .field(
                "discord_token",
                &self.discord_token.as_ref().map(|_| "<set>"),
            )
            .field(
                "deploy_webhook_secret",
                &self.deploy_webhook_secret.as_ref().map(|_| "<set>"),
            )
            .field("github_token", &self.github_token.as_ref().map(|_| "<set>"))
            .field(
                "http_admin_token",
                &self.http_admin_token.as_ref().map(|_| "<set>"),
            )
            .field(
                "pagerduty_routing_keys",
                &self.pagerduty_routing_keys.keys().collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Secrets {
    pub fn from_env(env: &BTreeMap<String, String>) -> Secrets {
        let secret = |var: &str| env.get(var).filter(|t| !t.trim().is_empty()).cloned();
        Secrets {
            discord_token: secret("SITREP_DISCORD_TOKEN"),
            deploy_webhook_secret: secret("SITREP_DEPLOY_WEBHOOK_SECRET"),
            github_token: secret("SITREP_GITHUB_TOKEN"),
            http_admin_token: secret("SITREP_HTTP_ADMIN_TOKEN"),
            pagerduty_routing_keys: BTreeMap::new(),
        }
    }

    /// Adds the PagerDuty routing keys from the variables the escalation targets name; their
    /// names are the operator's choice, so the config says which to read.
    pub fn with_routing_keys(mut self, config: &Config, env: &BTreeMap<String, String>) -> Secrets {
        for target in config.escalation.targets.values() {
            let Some(var) = &target.pagerduty_routing_key_env else {
                continue;
            };
            if let Some(key) = env.get(var).filter(|k| !k.trim().is_empty()) {
                self.pagerduty_routing_keys
                    .insert(var.clone(), key.trim().to_string());
            }
        }
        self
    }
}

/// Secret variables that look like config overrides but are not.
const SECRET_VARS: &[&str] = &[
    "SITREP_DISCORD_TOKEN",
    "SITREP_DEPLOY_WEBHOOK_SECRET",
    "SITREP_GITHUB_TOKEN",
    "SITREP_HTTP_ADMIN_TOKEN",
    "SITREP_PROMETHEUS_TOKEN",
];

impl Config {
    /// Loads defaults, then the file (if any), then `SITREP_<SECTION>__<KEY>` variables from `env`.
    pub fn load(
        file: Option<&Path>,
        env: &BTreeMap<String, String>,
    ) -> Result<Config, ConfigError> {
        let text = match file {
            Some(path) => Some((
                path.display().to_string(),
                std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                })?,
            )),
            None => None,
        };
        Self::from_parts(text.as_ref().map(|(o, t)| (o.as_str(), t.as_str())), env)
    }

    /// As [`Config::load`], with the file's text given directly; `origin` names it in errors.
    pub fn from_parts(
        file: Option<(&str, &str)>,
        env: &BTreeMap<String, String>,
    ) -> Result<Config, ConfigError> {
        let mut value =
            toml::Value::try_from(Config::default()).map_err(|e| ConfigError::Parse {
                origin: "built-in defaults".into(),
                message: e.to_string(),
            })?;
        if let Some((origin, text)) = file {
            let parsed: toml::Value = toml::from_str(text).map_err(|e| ConfigError::Parse {
                origin: origin.into(),
                message: e.to_string(),
            })?;
            // Validate the file alone first so that errors point at its lines.
            toml::from_str::<Config>(text).map_err(|e| ConfigError::Parse {
                origin: origin.into(),
                message: misplaced_secret(&e, text).unwrap_or_else(|| e.to_string()),
            })?;
            merge(&mut value, parsed, true);
        }
        for (var, raw) in env {
            let Some(rest) = var.strip_prefix("SITREP_") else {
                continue;
            };
            if SECRET_VARS.contains(&var.as_str()) || !rest.contains("__") {
                continue;
            }
            let path: Vec<&str> = rest.split("__").collect();
            set_path(&mut value, &path, parse_env_value(raw)).map_err(|message| {
                ConfigError::Env {
                    var: var.clone(),
                    message,
                }
            })?;
        }
        value
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Parse {
                origin: "configuration (after environment overrides)".into(),
                message: e.to_string(),
            })
    }

    /// Every problem that would stop or hobble the bot, worded for the operator.
    pub fn problems(&self, secrets: &Secrets, for_discord: bool) -> Vec<String> {
        let mut out = Vec::new();
        if self.severities.is_empty() {
            out.push("[severities] is empty; define at least SEV1".into());
        }
        for (key, sev) in &self.severities {
            if key.parse::<Severity>().map(|s| s.to_string()) != Ok(key.clone()) {
                out.push(format!(
                    "[severities.{key}]: severity keys are SEV1, SEV2, …"
                ));
            }
            if sev.colour_value().is_none() {
                out.push(format!(
                    "[severities.{key}] colour = \"{}\" is not a #rrggbb colour",
                    sev.colour
                ));
            }
            if sev.name.trim().is_empty() {
                out.push(format!("[severities.{key}] name is empty"));
            }
            if sev.update_every.is_some() && sev.update_cron.is_some() {
                out.push(format!(
                    "[severities.{key}] sets both update_every and update_cron; keep one"
                ));
            }
            if let Err(e) = sev.cadence() {
                let setting = match (&sev.update_every, &sev.update_cron) {
                    (Some(every), _) => format!("update_every = \"{every}\""),
                    (None, cron) => format!("update_cron = \"{}\"", cron.as_deref().unwrap_or("")),
                };
                out.push(format!("[severities.{key}] {setting}: {e}"));
            }
        }
        if !self.roles.contains_key(COMMANDER) {
            out.push("[roles] must define `commander`".into());
        }
        if for_discord {
            let d = &self.discord;
            if secrets.discord_token.is_none() {
                out.push(
                    "SITREP_DISCORD_TOKEN is not set (the bot token, from the environment only)"
                        .into(),
                );
            }
            if d.application_id.is_none() {
                out.push("[discord] application_id is not set".into());
            }
            if d.guild_id.is_none() {
                out.push("[discord] guild_id is not set".into());
            }
            if d.stakeholder_channel_id.is_none() {
                out.push(
                    "[discord] stakeholder_channel_id is not set: nowhere to announce incidents"
                        .into(),
                );
            }
            if d.incident_mode == IncidentMode::Thread && d.incident_parent_channel_id.is_none() {
                out.push(
                    "[discord] incident_mode = \"thread\" needs incident_parent_channel_id".into(),
                );
            }
            if d.incident_mode == IncidentMode::Forum && d.incident_forum_channel_id.is_none() {
                out.push(
                    "[discord] incident_mode = \"forum\" needs incident_forum_channel_id (a forum channel's id)".into(),
                );
            }
            if let Err(e) = url_like(&d.api_base) {
                out.push(format!("[discord] api_base: {e}"));
            }
            if let Some(ct) = &d.connect_to {
                if ct.split(':').count() != 4 {
                    out.push(format!(
                        "[discord] connect_to = \"{ct}\" must look like \"discord.com:443:127.0.0.1:8443\""
                    ));
                }
            }
            if let Some(ca) = &d.ca_file {
                if !ca.exists() {
                    out.push(format!("[discord] ca_file {} does not exist", ca.display()));
                }
            }
        }
        if let Some(url) = &self.prometheus.url {
            if let Err(e) = url_like(url) {
                out.push(format!("[prometheus] url: {e}"));
            }
        }
        if self.prometheus.threshold.is_nan() || self.prometheus.threshold <= 1.0 {
            out.push(format!(
                "[prometheus] threshold = {} must be above 1",
                self.prometheus.threshold
            ));
        }
        for (name, q) in &self.queries {
            if q.promql.trim().is_empty() {
                out.push(format!("[queries.{name}] promql is empty"));
            }
        }
        for name in &self.whats_changed.queries {
            if !self.queries.contains_key(name) {
                out.push(format!(
                    "[whats_changed] queries names `{name}`, which is not under [queries]"
                ));
            }
        }
        if !self.whats_changed.queries.is_empty() && self.prometheus.url.is_none() {
            out.push("[whats_changed] queries are set but [prometheus] url is not".into());
        }
        out.extend(self.deploy_problems(secrets, for_discord));
        out.extend(self.postmortem.problems());
        out.extend(self.status_page.problems(&self.http, secrets, for_discord));
        out.extend(
            self.escalation
                .problems(&self.severity_levels(), secrets, for_discord),
        );
        out.extend(self.pagerduty.problems());
        let paths = crate::commands::options::command_paths();
        for key in self.permissions.keys() {
            if !paths.contains(key) {
                out.push(format!(
                    "[permissions] \"{key}\" is not a command; known: {}",
                    paths.join(", ")
                ));
            }
        }
        if let Some(dir) = &self.templates.dir {
            if !dir.is_dir() {
                out.push(format!("[templates] dir {} is not a folder", dir.display()));
            }
        }
        out
    }

    /// The severities in order, SEV1 first.
    pub fn severity_levels(&self) -> Vec<Severity> {
        let mut v: Vec<Severity> = self
            .severities
            .keys()
            .filter_map(|k| k.parse().ok())
            .collect();
        v.sort();
        v
    }

    pub fn severity(&self, sev: Severity) -> Option<&SeverityConfig> {
        self.severities.get(&sev.to_string())
    }

    /// The severity's own cadence; a configuration that fails [`Config::problems`] has none.
    pub fn default_cadence(&self, sev: Severity) -> Option<Cadence> {
        self.severity(sev)?.cadence().ok().flatten()
    }

    /// Whether `/incident cadence off` is allowed at this severity.
    pub fn cadence_off_allowed(&self, sev: Severity) -> bool {
        self.severity(sev)
            .and_then(|s| s.allow_cadence_off)
            .unwrap_or(sev != Severity(1))
    }

    /// A one-screen summary for `check-config`.
    pub fn summary(&self) -> String {
        let d = &self.discord;
        let id = |v: Option<u64>| v.map_or("-".to_string(), |v| v.to_string());
        let mut s = String::new();
        s.push_str(&format!(
            "discord    application {} · guild {} · api {} · incidents as {} (category {}, parent {}, forum {}) · stakeholders {} · register commands {} · message content {}\n",
            id(d.application_id),
            id(d.guild_id),
            d.api_base,
            match d.incident_mode { IncidentMode::Channel => "channels", IncidentMode::Thread => "threads", IncidentMode::Forum => "forum posts" },
            id(d.incident_category_id),
            id(d.incident_parent_channel_id),
            id(d.incident_forum_channel_id),
            id(d.stakeholder_channel_id),
            d.register_commands,
            d.message_content,
        ));
        s.push_str(&format!("storage    {}\n", self.storage.path.display()));
        s.push_str(&format!(
            "http       {}\n",
            if self.http.listen.is_empty() {
                "off"
            } else {
                &self.http.listen
            }
        ));
        for (key, sev) in &self.severities {
            let cadence = match (&sev.update_every, &sev.update_cron) {
                (Some(e), _) => format!("every {e}"),
                (None, Some(c)) => format!("cron {c}"),
                (None, None) => "no scheduled updates".into(),
            };
            let off = match key.parse::<Severity>() {
                Ok(level) if !self.cadence_off_allowed(level) => " (cannot be turned off)",
                _ => "",
            };
            s.push_str(&format!(
                "severity   {key} {} {} · {cadence}{off}\n",
                sev.name, sev.colour
            ));
        }
        for (name, role) in &self.roles {
            let who = if role.discord_roles.is_empty() {
                "anyone".to_string()
            } else {
                format!("roles {:?}", role.discord_roles)
            };
            s.push_str(&format!("role       {name} · {who}\n"));
        }
        s.push_str(&self.deploy_summary());
        s.push_str(&self.escalation.summary(&self.pagerduty));
        s.push_str(&format!(
            "templates  {}\n",
            self.templates
                .dir
                .as_ref()
                .map_or("built-in".to_string(), |d| d.display().to_string())
        ));
        s
    }
}

/// A secret written into the file under a key that is not a setting (`token = "..."`): says
/// where secrets go instead of the parser's message, which quotes the line and so the secret.
fn misplaced_secret(e: &toml::de::Error, text: &str) -> Option<String> {
    let key = e
        .message()
        .strip_prefix("unknown field `")?
        .split('`')
        .next()?;
    let lower = key.to_ascii_lowercase();
    if !["token", "secret", "password", "key"]
        .iter()
        .any(|w| lower.contains(w))
    {
        return None;
    }
    let line = e.span().map_or(0, |s| {
        text.get(..s.start)
            .map_or(0, |before| before.matches('\n').count() + 1)
    });
    Some(format!(
        "line {line}: `{key}` is not a setting; secrets are read from the environment only ({}, and the variables named by pagerduty_routing_key_env): remove it from the file",
        SECRET_VARS.join(", ")
    ))
}

fn url_like(s: &str) -> Result<(), String> {
    if s.starts_with("http://") || s.starts_with("https://") {
        Ok(())
    } else {
        Err(format!("`{s}` must start with http:// or https://"))
    }
}

/// Environment values are TOML when they parse as one (`42`, `true`, `[1, 2]`), else strings.
fn parse_env_value(raw: &str) -> toml::Value {
    toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()))
}

fn set_path(root: &mut toml::Value, path: &[&str], value: toml::Value) -> Result<(), String> {
    let (last, parents) = path.split_last().ok_or("empty key")?;
    let mut cur = root;
    for part in parents {
        let table = cur.as_table_mut().ok_or("not a table")?;
        let key = existing_key(table, part);
        cur = table
            .entry(key)
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    }
    let table = cur
        .as_table_mut()
        .ok_or_else(|| format!("{} is not a section", parents.join(".")))?;
    let key = existing_key(table, last);
    table.insert(key, value);
    Ok(())
}

/// Environment names are upper case; config keys are lower case except table names like SEV1.
fn existing_key(table: &toml::Table, part: &str) -> String {
    table
        .keys()
        .find(|k| k.eq_ignore_ascii_case(part))
        .cloned()
        .unwrap_or_else(|| part.to_ascii_lowercase())
}

fn merge(base: &mut toml::Value, over: toml::Value, top: bool) {
    match (base, over) {
        (toml::Value::Table(b), toml::Value::Table(o)) => {
            for (k, v) in o {
                // A file that lists severities or roles replaces the defaults, not adds to them.
                let replace = top && (k == "severities" || k == "roles");
                match b.get_mut(&k) {
                    Some(existing) if !replace => merge(existing, v, false),
                    _ => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, o) => *b = o,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_are_usable_without_a_file() {
        let c = Config::from_parts(None, &env(&[])).unwrap();
        assert_eq!(c.discord.api_base, DISCORD_API);
        assert_eq!(c.storage.path, PathBuf::from("./sitrep-data"));
        assert_eq!(c.severity_levels().len(), 4);
        assert!(c.problems(&Secrets::default(), false).is_empty());
    }

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
    fn file_then_environment() {
        let toml = r##"
            [discord]
            application_id = 11
            guild_id = 22
            incident_mode = "thread"
            incident_parent_channel_id = 33

            [severities.SEV1]
            name = "Everything is on fire"
            colour = "#ff0000"
            update_every = "10m"
        "##;
        let c = Config::from_parts(
            Some(("test.toml", toml)),
            &env(&[
                ("SITREP_DISCORD__API_BASE", "http://127.0.0.1:9999"),
                ("SITREP_DISCORD__GUILD_ID", "44"),
                ("SITREP_SEVERITIES__SEV1__UPDATE_EVERY", "5m"),
                ("SITREP_DISCORD_TOKEN", "not-a-config-key"),
                ("UNRELATED", "x"),
            ]),
        )
        .unwrap();
        assert_eq!(c.discord.application_id, Some(11));
        assert_eq!(c.discord.guild_id, Some(44));
        assert_eq!(c.discord.api_base, "http://127.0.0.1:9999");
        assert_eq!(c.discord.incident_mode, IncidentMode::Thread);
        assert_eq!(
            c.severities.len(),
            1,
            "a file's severities replace the defaults"
        );
        assert_eq!(
            c.severities["SEV1"].update_every,
            Some(Dur(std::time::Duration::from_secs(300)))
        );
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
    fn unknown_keys_are_named() {
        let err = Config::from_parts(Some(("a.toml", "[discord]\napi_bsae = \"x\"\n")), &env(&[]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("api_bsae"), "{err}");
        assert!(err.starts_with("a.toml"), "{err}");
        let err = Config::from_parts(None, &env(&[("SITREP_STORAGE__PATHH", "x")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("pathh"), "{err}");
        let err = Config::from_parts(Some(("a.toml", "[nope]\n")), &env(&[]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("nope"), "{err}");
    }

    #[test]
    fn a_secret_pasted_into_the_file_is_not_quoted_back() {
        let toml = "[discord]\nguild_id = 1\ntoken = \"MTMw.pasted-by-mistake\"\n";
        let err = Config::from_parts(Some(("a.toml", toml)), &env(&[]))
            .unwrap_err()
            .to_string();
        assert!(!err.contains("pasted-by-mistake"), "{err}");
        assert!(
            err.contains("a.toml: line 3: `token` is not a setting")
                && err.contains("SITREP_DISCORD_TOKEN"),
            "{err}"
        );
        // Other unknown keys keep the parser's message, which shows the line.
        let err = Config::from_parts(Some(("a.toml", "[discord]\nguild = 1\n")), &env(&[]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("guild = 1"), "{err}");
    }

    #[test]
    fn bad_durations_are_explained() {
        let err = Config::from_parts(
            Some((
                "a.toml",
                "[severities.SEV1]\nname=\"x\"\ncolour=\"#000000\"\nupdate_every = \"soon\"\n",
            )),
            &env(&[]),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("not a duration"), "{err}");
    }

    #[test]
    fn problems_are_all_reported() {
        let toml = r##"
            [discord]
            incident_mode = "thread"
            [severities.SEV1]
            name = ""
            colour = "red"
            update_every = "30s"
            [severities.SEV2]
            name = "Major"
            colour = "#00ff00"
            update_cron = "every tuesday"
            [roles.scribe]
            [permissions]
            "incident resolve" = [1]
            "incident explode" = [2]
        "##;
        let c = Config::from_parts(Some(("a.toml", toml)), &env(&[])).unwrap();
        let problems = c.problems(&Secrets::default(), true);
        let all = problems.join("\n");
        for needle in [
            "not a #rrggbb",
            "name is empty",
            "more often than once a minute",
            "update_cron",
            "must define `commander`",
            "SITREP_DISCORD_TOKEN",
            "application_id",
            "incident_parent_channel_id",
            "\"incident explode\" is not a command",
        ] {
            assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
        }
    }

    #[test]
    fn cadence_rules_per_severity() {
        let toml = r##"
            [severities.SEV1]
            name = "Critical"
            colour = "#d0021b"
            update_cron = "0 */15 * * * *"
            [severities.SEV2]
            name = "Major"
            colour = "#f5a623"
            update_every = "30m"
            allow_cadence_off = false
            [severities.SEV3]
            name = "Minor"
            colour = "#f8e71c"
            update_cron = "*/20 * * * * *"
        "##;
        let c = Config::from_parts(Some(("a.toml", toml)), &env(&[])).unwrap();
        assert_eq!(
            c.default_cadence(Severity(1)),
            Some(Cadence::Cron {
                expr: "0 */15 * * * *".into()
            })
        );
        assert_eq!(
            c.default_cadence(Severity(2)),
            Some(Cadence::Every { seconds: 1800 })
        );
        assert_eq!(c.default_cadence(Severity(4)), None);
        assert!(
            !c.cadence_off_allowed(Severity(1)),
            "SEV1 keeps its updates by default"
        );
        assert!(!c.cadence_off_allowed(Severity(2)));
        assert!(c.cadence_off_allowed(Severity(3)));
        let problems = c.problems(&Secrets::default(), false).join("\n");
        assert!(
            problems.contains("[severities.SEV3] update_cron = \"*/20 * * * * *\": cron `*/20 * * * * *` is more often than once a minute"),
            "{problems}"
        );
        assert!(c
            .summary()
            .contains("SEV1 Critical #d0021b · cron 0 */15 * * * * (cannot be turned off)"));
    }

    #[test]
    fn metrics_sections() {
        let toml = r##"
            [prometheus]
            url = "http://127.0.0.1:9090"
            timeout = "2s"
            baselines = ["1d", "1w"]

            [queries.error_rate]
            promql = "sum(rate(http_requests_total{service=\"{{service}}\",code=~\"5..\"}[5m]))"
            unit = "req/s"

            [whats_changed]
            lookback = "3h"
            queries = ["error_rate", "latency"]
        "##;
        let c = Config::from_parts(Some(("a.toml", toml)), &env(&[])).unwrap();
        assert_eq!(c.prometheus.timeout, Dur(std::time::Duration::from_secs(2)));
        assert_eq!(
            c.prometheus.baselines[1],
            Dur(std::time::Duration::from_secs(604_800))
        );
        assert!(c.queries["error_rate"].promql.contains("{{service}}"));
        let problems = c.problems(&Secrets::default(), false).join("\n");
        assert!(problems.contains("`latency`"), "{problems}");
        let err = Config::from_parts(
            Some(("a.toml", "[queries.x]\npromql = \"up\"\nunits = \"s\"\n")),
            &env(&[]),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("units"), "{err}");
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let s = Secrets::from_env(&env(&[("SITREP_DISCORD_TOKEN", "hunter2")]));
        assert!(!format!("{s:?}").contains("hunter2"));
        assert_eq!(s.discord_token.as_deref(), Some("hunter2"));
    }

    #[test]
    fn deploy_sources_from_a_file() {
        let toml = r#"
            [deploys]
            webhook = true

            [github]
            api_base = "https://github.example.com/api/v3"
            repositories = ["acme/checkout", "acme/search"]
            poll_every = "2m"
            environments = ["production"]
        "#;
        let c = Config::from_parts(
            Some(("a.toml", toml)),
            &env(&[("SITREP_GITHUB__POLL_EVERY", "90s")]),
        )
        .unwrap();
        assert!(c.deploys.webhook);
        assert_eq!(c.github.api_base, "https://github.example.com/api/v3");
        assert_eq!(c.github.repositories, ["acme/checkout", "acme/search"]);
        assert_eq!(c.github.poll_every, Dur(std::time::Duration::from_secs(90)));
        assert_eq!(c.github.environments, ["production"]);
        let secrets = Secrets::from_env(&env(&[
            ("SITREP_DEPLOY_WEBHOOK_SECRET", "s3cret"),
            ("SITREP_GITHUB_TOKEN", "ghp_x"),
        ]));
        let problems = c.deploy_problems(&secrets, true);
        assert!(problems.is_empty(), "{problems:?}");
        assert!(c
            .summary()
            .contains("acme/checkout, acme/search every 1m 30s"));

        let d = Config::default();
        assert!(!d.deploys.webhook);
        assert_eq!(d.github.api_base, GITHUB_API);
        assert!(d.github.repositories.is_empty());
        assert_eq!(d.github.poll_every, Dur(std::time::Duration::from_secs(60)));
        let err = Config::from_parts(Some(("a.toml", "[github]\nrepos = []\n")), &env(&[]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("repos"), "{err}");
    }

    #[test]
    fn deploy_sources_need_their_secrets() {
        let toml = r#"
            [deploys]
            webhook = true
            [github]
            api_base = "github.example.com"
            repositories = ["acme/checkout", "checkout", "acme/a b"]
            poll_every = "1s"
        "#;
        let c = Config::from_parts(Some(("a.toml", toml)), &env(&[])).unwrap();
        let all = c.problems(&Secrets::default(), true).join("\n");
        for needle in [
            "SITREP_GITHUB_TOKEN is not set",
            "SITREP_DEPLOY_WEBHOOK_SECRET is not set",
            "[github] api_base",
            "\"checkout\" is not owner/name",
            "\"acme/a b\" is not owner/name",
            "under 10 seconds",
        ] {
            assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
        }
        // The console neither serves webhooks nor polls, so it does not need the secrets.
        let console = c.problems(&Secrets::default(), false).join("\n");
        assert!(!console.contains("SITREP_"), "{console}");
        let secrets = Secrets::from_env(&env(&[
            ("SITREP_DEPLOY_WEBHOOK_SECRET", "whsec-123"),
            ("SITREP_GITHUB_TOKEN", "ghp_456"),
        ]));
        let shown = format!("{secrets:?}");
        assert!(
            !shown.contains("whsec-123") && !shown.contains("ghp_456"),
            "{shown}"
        );
    }

    #[test]
    fn postmortem_section_from_a_file() {
        let d = Config::default();
        assert!(!d.postmortem.anonymize);
        assert!(
            d.postmortem.transcript,
            "nothing said is missing by default"
        );
        assert_eq!(d.postmortem.highlight_reaction, "📌");
        assert!(d.postmortem.builtin_lint && d.postmortem.lint.is_empty());
        let toml = r#"
            [postmortem]
            anonymize = true
            highlight_reaction = "⭐"
            transcript = false

            [[postmortem.lint]]
            phrase = "dropped the ball"
            suggest = "describe what made the task hard to finish in time"

            [[postmortem.lint]]
            phrase = "{person} overlooked"
            suggest = "say what the check did not show"
        "#;
        let c = Config::from_parts(
            Some(("a.toml", toml)),
            &env(&[("SITREP_POSTMORTEM__BUILTIN_LINT", "false")]),
        )
        .unwrap();
        assert!(c.postmortem.anonymize && !c.postmortem.transcript);
        assert!(!c.postmortem.builtin_lint);
        assert_eq!(c.postmortem.highlight_reaction, "⭐");
        assert_eq!(c.postmortem.lint.len(), 2);
        assert_eq!(c.postmortem.lint[1].phrase, "{person} overlooked");
        assert!(c.problems(&Secrets::default(), false).is_empty());

        let bad = r#"
            [postmortem]
            highlight_reaction = " "
            [[postmortem.lint]]
            phrase = "{someone} broke it"
            suggest = ""
        "#;
        let c = Config::from_parts(Some(("a.toml", bad)), &env(&[])).unwrap();
        let all = c.problems(&Secrets::default(), false).join("\n");
        for needle in [
            "highlight_reaction is empty",
            "{someone}",
            "suggest is empty",
        ] {
            assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
        }
        let err = Config::from_parts(
            Some(("a.toml", "[postmortem]\nanonymise = true\n")),
            &env(&[]),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("anonymise"), "{err}");
    }

    #[test]
    fn escalation_targets_policies_and_their_keys() {
        let d = Config::default();
        assert!(d.escalation.targets.is_empty());
        assert_eq!(
            d.escalation.stuck_after,
            Dur(std::time::Duration::from_secs(1800))
        );
        assert_eq!(d.pagerduty.events_url, PAGERDUTY_EVENTS_URL);
        assert!(d.summary().contains("escalation off"));
        let toml = r#"
            [escalation]
            stuck_after = "20m"
            [escalation.targets.dba]
            roles = [111, 222]
            pagerduty_routing_key_env = "SITREP_PD_DBA"
            [escalation.targets.sre-oncall]
            roles = [333]
            [escalation.targets.sre-lead]
            roles = [444]
            [escalation.policies.default]
            levels = ["sre-oncall", "sre-lead"]
            ack_timeout = "2s"
            [pagerduty]
            events_url = "http://127.0.0.1:9/v2/enqueue"
        "#;
        let c = Config::from_parts(Some(("a.toml", toml)), &env(&[])).unwrap();
        assert_eq!(c.escalation.targets["dba"].roles, [111, 222]);
        let (name, policy) = c.escalation.default_policy().unwrap();
        assert_eq!(name, "default");
        assert_eq!(policy.ack_timeout, Dur(std::time::Duration::from_secs(2)));
        assert_eq!(c.escalation.target("DBA").unwrap().0, "dba");
        assert!(c.escalation.nudges(Severity(1)) && !c.escalation.nudges(Severity(3)));
        // The console does not page PagerDuty, so a missing key matters only when running.
        assert!(c.problems(&Secrets::default(), false).is_empty());
        let missing = c.problems(&Secrets::default(), true).join("\n");
        assert!(
            missing.contains("SITREP_PD_DBA is not set, but [escalation.targets.dba]"),
            "{missing}"
        );
        let vars = env(&[("SITREP_PD_DBA", "R0123456789abcdef0123456789abcdef")]);
        let secrets = Secrets::from_env(&vars).with_routing_keys(&c, &vars);
        assert!(!c
            .problems(&secrets, true)
            .join("\n")
            .contains("SITREP_PD_DBA"));
        assert!(!format!("{secrets:?}").contains("R0123456789"));
        assert!(
            c.summary().contains("sre-oncall → sre-lead"),
            "{}",
            c.summary()
        );

        let bad = r#"
            [escalation]
            default_policy = "nope"
            ack_timeout = "100ms"
            stuck_severities = ["SEV9"]
            [escalation.targets."a:b"]
            roles = [1]
            [escalation.policies.p]
            levels = ["ghost"]
            ack_timeout = "0s"
            [escalation.policies.q]
            levels = []
            [pagerduty]
            events_url = "events.pagerduty.com"
        "#;
        let c = Config::from_parts(Some(("a.toml", bad)), &env(&[])).unwrap();
        let all = c.problems(&Secrets::default(), false).join("\n");
        for needle in [
            "[escalation.targets.a:b]: target names",
            "levels names `ghost`",
            "[escalation.policies.p] ack_timeout = \"0s\" is under 1s",
            "[escalation.policies.q] levels is empty",
            "default_policy = \"nope\"",
            "[escalation] ack_timeout",
            "`SEV9`",
            "[pagerduty] events_url",
        ] {
            assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
        }
        let err = Config::from_parts(
            Some(("a.toml", "[escalation.targets.x]\nrole = [1]\n")),
            &env(&[]),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("role"), "{err}");
    }

    #[test]
    fn status_page_section() {
        let d = Config::default();
        assert!(!d.status_page.enabled);
        assert_eq!(
            d.status_page.refresh,
            Dur(std::time::Duration::from_secs(60))
        );
        assert_eq!(
            d.status_page.resolved_for,
            Dur(std::time::Duration::from_secs(7 * 86_400))
        );
        let toml = r#"
            [status_page]
            enabled = true
            title = "Acme status"
            refresh = "2m"
            resolved_for = "3d"
            public_url = "https://status.example.com"
        "#;
        let c = Config::from_parts(Some(("a.toml", toml)), &env(&[])).unwrap();
        assert!(c.status_page.enabled);
        assert_eq!(c.status_page.title, "Acme status");
        assert_eq!(
            c.status_page.resolved_for,
            Dur(std::time::Duration::from_secs(3 * 86_400))
        );
        let secrets = Secrets::from_env(&env(&[(
            "SITREP_HTTP_ADMIN_TOKEN",
            "a-long-enough-admin-token",
        )]));
        let problems = c.status_page.problems(&c.http, &secrets, true);
        assert!(problems.is_empty(), "{problems:?}");
        assert!(!format!("{secrets:?}").contains("a-long-enough"));

        let bad = r#"
            [http]
            listen = ""
            [status_page]
            enabled = true
            title = " "
            refresh = "1s"
            public_url = "status.example.com"
        "#;
        let c = Config::from_parts(Some(("a.toml", bad)), &env(&[])).unwrap();
        let short = Secrets::from_env(&env(&[("SITREP_HTTP_ADMIN_TOKEN", "hunter2")]));
        let all = c.status_page.problems(&c.http, &short, true).join("\n");
        for needle in [
            "[status_page] title is empty",
            "under 10 seconds",
            "[status_page] public_url",
            "needs [http] listen",
            "SITREP_HTTP_ADMIN_TOKEN is shorter than 16 characters",
        ] {
            assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
        }
        let err = Config::from_parts(
            Some(("a.toml", "[status_page]\nenable = true\n")),
            &env(&[]),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("enable"), "{err}");
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
