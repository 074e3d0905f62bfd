//! Configuration: built-in defaults, then a TOML file, then `SITREP_<SECTION>__<KEY>` variables.
//!
//! Each section lives in its own file with its defaults, checks and summary. Secrets never live
//! here: they are read from the environment by [`Secrets`]. Checks that need other modules
//! (permission keys against the commands, lint phrases against the lint) are the preflight's.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

mod deploys;
mod discord;
mod dur;
mod escalation;
mod postmortem;
mod prometheus;
mod roles;
mod secrets;
mod severity;
mod status_page;
mod storage;
mod templates;
mod threads;

pub use deploys::{DeploysConfig, GitHubConfig, GITHUB_API};
pub use discord::{ConnectTo, DiscordConfig, IncidentMode, DISCORD_API};
use dur::dur_or_off;
pub use dur::Dur;
pub use escalation::{
    EscalationConfig, EscalationPolicy, EscalationTarget, PagerDutyConfig, PAGERDUTY_EVENTS_URL,
};
pub use postmortem::{LintRuleConfig, PostmortemConfig};
pub use prometheus::{PrometheusConfig, QueryConfig, WhatsChangedConfig};
pub use roles::RoleConfig;
pub use secrets::Secrets;
use secrets::SECRET_VARS;
pub use severity::SeverityConfig;
pub use status_page::StatusPageConfig;
pub use storage::{HttpConfig, StorageConfig};
pub use templates::TemplatesConfig;
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

impl Default for Config {
    fn default() -> Self {
        Config {
            discord: DiscordConfig::default(),
            storage: StorageConfig::default(),
            http: HttpConfig::default(),
            severities: severity::defaults(),
            roles: roles::defaults(),
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

    /// Every problem of the configuration alone that would stop or hobble the bot, worded for
    /// the operator; `sitrep::preflight` adds those that need the rest of the program.
    pub fn problems(&self, secrets: &Secrets, for_discord: bool) -> Vec<String> {
        let mut out = severity::problems(&self.severities);
        out.extend(roles::problems(&self.roles));
        if for_discord {
            out.extend(self.discord.problems(secrets));
        }
        out.extend(prometheus::problems(
            &self.prometheus,
            &self.queries,
            &self.whats_changed,
        ));
        out.extend(deploys::problems(
            &self.deploys,
            &self.github,
            &self.http,
            secrets,
            for_discord,
        ));
        out.extend(self.postmortem.problems());
        out.extend(self.status_page.problems(&self.http, secrets, for_discord));
        out.extend(
            self.escalation
                .problems(&self.severity_levels(), secrets, for_discord),
        );
        out.extend(self.pagerduty.problems());
        out.extend(self.templates.problems());
        out
    }

    /// A one-screen summary for `check-config`.
    pub fn summary(&self) -> String {
        let mut s = self.discord.summary();
        s.push_str(&self.storage.summary());
        s.push_str(&self.http.summary());
        s.push_str(&severity::summary(self));
        s.push_str(&roles::summary(&self.roles));
        s.push_str(&deploys::summary(&self.deploys, &self.github));
        s.push_str(&self.escalation.summary(&self.pagerduty));
        s.push_str(&self.templates.summary());
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
pub(super) mod tests {
    use super::*;

    pub(crate) fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
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
}
