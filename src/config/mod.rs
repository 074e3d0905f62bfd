//! Configuration: built-in defaults, then a TOML file, then `SITREP_<SECTION>__<KEY>` variables.
//!
//! Each section lives in its own file with its defaults, checks and summary. Secrets never live
//! here: they are read from the environment by [`Secrets`]. Checks that need other modules
//! (permission keys against the commands, lint phrases against the lint) are the preflight's.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

mod alerts;
mod deploys;
mod discord;
mod dur;
mod escalation;
mod oncall;
mod postmortem;
mod prometheus;
mod roles;
mod secrets;
mod severity;
mod source;
mod status_page;
mod storage;
mod templates;
mod threads;
mod trackers;
mod types;

pub use alerts::{AlertRoute, AlertsConfig, RouteAction, ALERTS_TOKEN_ENV};
pub use deploys::{DeploysConfig, GitHubConfig, GITHUB_API};
pub use discord::{ConnectTo, DiscordConfig, IncidentMode, DISCORD_API};
use dur::dur_or_off;
pub use dur::Dur;
pub use escalation::{
    EscalationConfig, EscalationPolicy, EscalationTarget, PagerDutyConfig, PAGERDUTY_EVENTS_URL,
};
pub use oncall::{
    person, schedule, IcalSource, OnCallSchedule, OverrideConfig, PagerDutySource, RotationSource,
    SourceKind, PAGERDUTY_API, PAGERDUTY_TOKEN_VAR,
};
pub use postmortem::{LintRuleConfig, PostmortemConfig};
pub use prometheus::{PrometheusConfig, QueryConfig, WhatsChangedConfig};
pub use roles::RoleConfig;
pub use secrets::Secrets;
use secrets::SECRET_VARS;
pub use severity::SeverityConfig;
use source::KeyPath;
pub use source::Sources;
pub use status_page::StatusPageConfig;
pub use storage::{HttpConfig, StorageConfig};
pub use templates::TemplatesConfig;
pub use threads::AutoArchive;
pub use trackers::{
    GitHubIssuesConfig, JiraConfig, TrackerKind, TrackerPerson, TrackersConfig, JIRA_EMAIL_ENV,
    JIRA_TOKEN_ENV,
};
pub use types::{FieldConfig, ItemConfig, TypeConfig, DEFAULT_TYPE};

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
    /// Every problem of the settings, one a line, each saying where it comes from.
    #[error("{}", problems.join("\n"))]
    Invalid { problems: Vec<String> },
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
    /// PagerDuty's Events API, for escalation targets with a routing key, and its REST API,
    /// for on-call schedules.
    pub pagerduty: PagerDutyConfig,
    /// Where action items are filed as issues, and whose they are there.
    pub trackers: TrackersConfig,
    /// Alerts from Alertmanager and Grafana, and the routes that say what they become.
    pub alerts: AlertsConfig,
    /// Who is on call, by schedule name.
    pub oncall: BTreeMap<String, OnCallSchedule>,
    /// The Discord user each name or email an on-call source gives stands for.
    pub people: BTreeMap<String, u64>,
    /// Incident types: checklists, custom fields and what happens at open.
    pub types: BTreeMap<String, TypeConfig>,
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
            trackers: TrackersConfig::default(),
            alerts: AlertsConfig::default(),
            oncall: BTreeMap::new(),
            people: BTreeMap::new(),
            types: types::defaults(),
        }
    }
}

/// A configuration read as far as it goes: what was understood, every problem of the file and
/// the environment (each saying where it comes from), and where each setting came from.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The configuration without the settings that have problems.
    pub config: Config,
    pub problems: Vec<String>,
    pub sources: Sources,
}

impl Config {
    /// Loads defaults, then the file (if any), then `SITREP_<SECTION>__<KEY>` variables from `env`.
    pub fn load(
        file: Option<&Path>,
        env: &BTreeMap<String, String>,
    ) -> Result<Config, ConfigError> {
        Self::read(file, env)?.into_config()
    }

    /// As [`Config::load`], but a setting's problem does not stop the rest being read.
    pub fn read(
        file: Option<&Path>,
        env: &BTreeMap<String, String>,
    ) -> Result<Loaded, ConfigError> {
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
        Self::read_parts(text.as_ref().map(|(o, t)| (o.as_str(), t.as_str())), env)
    }

    /// As [`Config::load`], with the file's text given directly; `origin` names it in errors.
    pub fn from_parts(
        file: Option<(&str, &str)>,
        env: &BTreeMap<String, String>,
    ) -> Result<Config, ConfigError> {
        Self::read_parts(file, env)?.into_config()
    }

    /// As [`Config::read`], with the file's text given directly.
    pub fn read_parts(
        file: Option<(&str, &str)>,
        env: &BTreeMap<String, String>,
    ) -> Result<Loaded, ConfigError> {
        let mut value =
            toml::Value::try_from(Config::default()).map_err(|e| ConfigError::Parse {
                origin: "built-in defaults".into(),
                message: e.to_string(),
            })?;
        let mut sources = Sources::default();
        let mut problems = Vec::new();
        if let Some((origin, text)) = file {
            // A file that is not TOML has no settings to check one by one.
            let parsed: toml::Table = toml::from_str(text).map_err(|e| ConfigError::Parse {
                origin: origin.into(),
                message: e.to_string(),
            })?;
            sources = Sources::file(origin, text);
            for (path, message) in merge_file(&mut value, parsed) {
                problems.push((
                    sources.file_line(&path),
                    format!("{}{message}", sources.prefix(&path)),
                ));
            }
        }
        for (var, raw) in env {
            let Some(rest) = var.strip_prefix("SITREP_") else {
                continue;
            };
            if SECRET_VARS.contains(&var.as_str()) || !rest.contains("__") {
                continue;
            }
            let path: Vec<&str> = rest.split("__").collect();
            let path = set_path(&mut value, &path, parse_env_value(raw)).map_err(|message| {
                ConfigError::Env {
                    var: var.clone(),
                    message,
                }
            })?;
            sources.set_by_env(path, var);
        }
        no_cadence_where_off(&mut value);
        // Each setting that does not deserialize is reported and set aside, then the rest is
        // tried again, so one mistake does not hide the next.
        let config = loop {
            match serde_path_to_error::deserialize::<_, Config>(value.clone()) {
                Ok(config) => break config,
                Err(e) => {
                    let path = key_path(e.path());
                    let message = e.into_inner().message().to_string();
                    problems.push((
                        sources.file_line(&path),
                        describe(&sources, &path, &message),
                    ));
                    sources.set_aside(&path);
                    if !remove_setting(&mut value, &path) {
                        return Err(ConfigError::Invalid {
                            problems: in_file_order(problems),
                        });
                    }
                }
            }
        };
        Ok(Loaded {
            config,
            problems: in_file_order(problems),
            sources,
        })
    }
}

/// The file's problems by line, then the environment's.
fn in_file_order(mut problems: Vec<(Option<usize>, String)>) -> Vec<String> {
    problems.sort_by_key(|(line, _)| line.unwrap_or(usize::MAX));
    problems.into_iter().map(|(_, p)| p).collect()
}

impl Loaded {
    /// The configuration, or every problem found in reading it.
    pub fn into_config(self) -> Result<Config, ConfigError> {
        if self.problems.is_empty() {
            Ok(self.config)
        } else {
            Err(ConfigError::Invalid {
                problems: self.problems,
            })
        }
    }
}

impl Config {
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
        out.extend(self.trackers.problems(secrets, for_discord));
        out.extend(self.alerts.problems(
            &self.severity_levels(),
            &self.escalation,
            &self.http,
            secrets,
            for_discord,
        ));
        out.extend(oncall::problems(
            &self.oncall,
            &self.people,
            &secrets.pagerduty_tokens,
            for_discord,
        ));
        out.extend(self.escalation.schedule_problems(&self.oncall));
        out.extend(self.templates.problems());
        out.extend(types::problems(self));
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
        s.push_str(&self.trackers.summary());
        s.push_str(&self.alerts.summary());
        s.push_str(&oncall::summary(&self.oncall));
        s.push_str(&self.templates.summary());
        s.push_str(&types::summary(self));
        s
    }
}

/// A problem of the setting at `path`, worded for the operator, with where it comes from. A secret
/// written into the file under a key that is not a setting (`token = "..."`) is named, never
/// quoted: it says where secrets go instead.
fn describe(sources: &Sources, path: &[String], message: &str) -> String {
    let prefix = sources.prefix(path);
    let Some(key) = message
        .strip_prefix("unknown field `")
        .and_then(|m| m.split('`').next())
    else {
        return match path.split_last() {
            None => format!("{prefix}{message}"),
            Some(_) if message.starts_with("missing field") => {
                format!("{prefix}[{}] {message}", dotted(path))
            }
            Some(_) => {
                // `[roles.commander] discord_roles #2: …`: the table, then the setting in it.
                let at = path.iter().rposition(|p| !p.starts_with('#')).unwrap_or(0);
                match &path[..at] {
                    [] => format!("{prefix}`{}`: {message}", dotted(&path[at..])),
                    parent => format!(
                        "{prefix}[{}] {}: {message}",
                        dotted(parent),
                        dotted(&path[at..])
                    ),
                }
            }
        };
    };
    let from_file = prefix.contains(": line ");
    let lower = key.to_ascii_lowercase();
    if ["token", "secret", "password", "key"]
        .iter()
        .any(|w| lower.contains(w))
    {
        return format!(
            "{prefix}`{key}` is not a setting; secrets are read from the environment only ({}, and the variables named by pagerduty_routing_key_env){}",
            SECRET_VARS.join(", "),
            if from_file { ": remove it from the file" } else { "" }
        );
    }
    let parent = &path[..path.len().saturating_sub(1)];
    let place = if parent.is_empty() {
        "at the top level".to_string()
    } else {
        format!("in [{}]", dotted(parent))
    };
    let written = match sources.line(path).and_then(|n| sources.line_text(n)) {
        Some(line) if from_file => format!(" (`{line}`)"),
        _ => String::new(),
    };
    let known: Vec<&str> = message
        .split_once(", expected")
        .map(|(_, list)| list.split('`').skip(1).step_by(2).collect())
        .unwrap_or_default();
    let hint = match did_you_mean(key, &known) {
        Some(near) => format!("; did you mean `{near}`?"),
        None if known.is_empty() => "; there are no settings here".into(),
        None => format!("; known: {}", known.join(", ")),
    };
    format!("{prefix}unknown key `{key}` {place}{written}{hint}")
}

/// The known key nearest a mistyped one, when it is near enough to be what was meant.
fn did_you_mean<'a>(key: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (strsim::damerau_levenshtein(key, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 3) || k.contains(key) || key.contains(k))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// `severities.SEV1`, `permissions."incident resolve"`, `postmortem.lint #2`.
fn dotted(path: &[String]) -> String {
    let mut s = String::new();
    for part in path {
        if part.starts_with('#') {
            s.push(' ');
            s.push_str(part);
            continue;
        }
        if !s.is_empty() {
            s.push('.');
        }
        if part
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            s.push_str(part);
        } else {
            s.push_str(&format!("{part:?}"));
        }
    }
    s
}

fn key_path(path: &serde_path_to_error::Path) -> KeyPath {
    use serde_path_to_error::Segment;
    path.iter()
        .filter_map(|segment| match segment {
            Segment::Map { key } => Some(key.clone()),
            Segment::Seq { index } => Some(format!("#{}", index + 1)),
            _ => None,
        })
        .collect()
}

/// Sets aside the setting at `path` (the whole key, when the problem is inside an array), so
/// that the rest can be read; false when there is nothing to set aside.
fn remove_setting(root: &mut toml::Value, path: &[String]) -> bool {
    let Some(last) = path.iter().rposition(|p| !p.starts_with('#')) else {
        return false;
    };
    let mut cur = root;
    for part in &path[..last] {
        let next = match (part.strip_prefix('#'), cur) {
            (Some(n), toml::Value::Array(a)) => n
                .parse::<usize>()
                .ok()
                .and_then(|n| a.get_mut(n.checked_sub(1)?)),
            (None, toml::Value::Table(t)) => t.get_mut(part),
            _ => None,
        };
        let Some(next) = next else {
            return false;
        };
        cur = next;
    }
    cur.as_table_mut()
        .and_then(|t| t.remove(&path[last]))
        .is_some()
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

/// Sets the setting at `path` (matched without regard to case) and says which it set.
fn set_path(root: &mut toml::Value, path: &[&str], value: toml::Value) -> Result<KeyPath, String> {
    let (last, parents) = path.split_last().ok_or("empty key")?;
    let mut keys = Vec::new();
    let mut cur = root;
    for part in parents {
        let table = cur.as_table_mut().ok_or("not a table")?;
        let key = existing_key(table, part);
        keys.push(key.clone());
        cur = table
            .entry(key)
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    }
    let table = cur
        .as_table_mut()
        .ok_or_else(|| format!("{} is not a section", parents.join(".")))?;
    let key = existing_key(table, last);
    if keys.first().map(String::as_str) == Some("severities") && keys.len() == 2 {
        one_cadence(table, &key);
    }
    keys.push(key.clone());
    table.insert(key, value);
    Ok(keys)
}

/// Environment names are upper case; config keys are lower case except table names like SEV1.
fn existing_key(table: &toml::Table, part: &str) -> String {
    table
        .keys()
        .find(|k| k.eq_ignore_ascii_case(part))
        .cloned()
        .unwrap_or_else(|| part.to_ascii_lowercase())
}

/// A severity's cadence is `update_every` or `update_cron`: setting one drops the other it had.
fn one_cadence(severity: &mut toml::Table, setting: &str) {
    if setting == "update_every" || setting == "update_cron" {
        severity.remove("update_every");
        severity.remove("update_cron");
    }
}

/// `update_every = "off"` takes a built-in severity's cadence away: leaving it out of the
/// severity's table keeps the built-in one, as for every setting the table does not list.
fn no_cadence_where_off(root: &mut toml::Value) {
    let Some(toml::Value::Table(severities)) = root.get_mut("severities") else {
        return;
    };
    for (_, severity) in severities.iter_mut() {
        let Some(severity) = severity.as_table_mut() else {
            continue;
        };
        let off = |s: &str| s.trim().eq_ignore_ascii_case("off");
        if severity
            .get("update_every")
            .and_then(toml::Value::as_str)
            .is_some_and(off)
        {
            severity.remove("update_every");
        }
    }
}

/// Lays the file over the defaults. A table for a built-in severity or role changes only what it
/// sets; `replace = true` in `[severities]` or `[roles]` makes the file's set the whole set.
/// Returns the problems of `replace` itself.
fn merge_file(base: &mut toml::Value, file: toml::Table) -> Vec<(KeyPath, String)> {
    let mut problems = Vec::new();
    let Some(base) = base.as_table_mut() else {
        return problems;
    };
    for (section, over) in file {
        let toml::Value::Table(mut set) = over else {
            merge_into(base, section, over);
            continue;
        };
        if section != "severities" && section != "roles" {
            merge_into(base, section, toml::Value::Table(set));
            continue;
        }
        // A role may be called `replace`; only `replace = <bool>` is the switch.
        let replace = match set.get("replace") {
            Some(toml::Value::Table(_)) | None => false,
            Some(toml::Value::Boolean(b)) => {
                let b = *b;
                set.remove("replace");
                b
            }
            Some(_) => {
                set.remove("replace");
                problems.push((
                    vec![section.clone(), "replace".into()],
                    format!("[{section}] replace must be true (the file's {section} are the whole set) or false (they change and add to the built-in ones)"),
                ));
                false
            }
        };
        if replace {
            base.insert(section, toml::Value::Table(set));
            continue;
        }
        let Some(toml::Value::Table(defaults)) = base.get_mut(&section) else {
            base.insert(section, toml::Value::Table(set));
            continue;
        };
        for (name, entry) in set {
            if let (Some(toml::Value::Table(d)), toml::Value::Table(e)) =
                (defaults.get_mut(&name), &entry)
            {
                if section == "severities" {
                    for setting in ["update_every", "update_cron"] {
                        if e.contains_key(setting) {
                            one_cadence(d, setting);
                        }
                    }
                }
            }
            merge_into(defaults, name, entry);
        }
    }
    problems
}

fn merge_into(base: &mut toml::Table, key: String, over: toml::Value) {
    match base.get_mut(&key) {
        Some(existing) => merge(existing, over),
        None => {
            base.insert(key, over);
        }
    }
}

fn merge(base: &mut toml::Value, over: toml::Value) {
    match (base, over) {
        (toml::Value::Table(b), toml::Value::Table(o)) => {
            for (k, v) in o {
                merge_into(b, k, v);
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

            [severities]
            replace = true
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

    #[test]
    fn every_problem_of_a_file_is_reported_at_its_line() {
        let toml = r##"[discord]
api_bsae = "http://x"
guild_id = "not-an-id"
token = "MTMw.pasted-by-mistake"

[severities.SEV2]
update_every = "soon"

[severities.SEV7]
colour = "#000000"

[stroage]
path = "x"

[roles.commander]
discord_roles = [1, -2]
"##;
        let loaded = Config::read_parts(Some(("a.toml", toml)), &env(&[])).unwrap();
        let all = loaded.problems.join("\n");
        for needle in [
            "a.toml: line 2: unknown key `api_bsae` in [discord] (`api_bsae = \"http://x\"`); did you mean `api_base`?",
            "a.toml: line 3: [discord] guild_id: invalid type: string \"not-an-id\"",
            "a.toml: line 4: `token` is not a setting; secrets are read from the environment only",
            "a.toml: line 7: [severities.SEV2] update_every: `soon` is not a duration",
            "a.toml: line 9: [severities.SEV7] missing field `name`",
            "a.toml: line 12: unknown key `stroage` at the top level (`[stroage]`); did you mean `storage`?",
            "a.toml: line 16: [roles.commander] discord_roles #2: invalid value: integer `-2`",
        ] {
            assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
        }
        assert_eq!(loaded.problems.len(), 7, "{all}");
        assert!(!all.contains("pasted-by-mistake"), "{all}");
        assert!(!format!("{loaded:?}").contains("pasted-by-mistake"));
        // What has no problem is still read.
        assert_eq!(loaded.config.severities["SEV2"].name, "Major");
        // The whole list is the error of a plain load.
        let err = Config::from_parts(Some(("a.toml", toml)), &env(&[]))
            .unwrap_err()
            .to_string();
        assert_eq!(err, all);
    }

    #[test]
    fn unknown_keys_far_from_any_setting_list_the_known_ones() {
        let err = Config::from_parts(Some(("a.toml", "[storage]\nwhatever = 1\n")), &env(&[]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown key `whatever` in [storage]"), "{err}");
        assert!(err.contains("known: path"), "{err}");
        assert!(!err.contains("did you mean"), "{err}");
        let err = Config::from_parts(None, &env(&[("SITREP_STORAGE__PATHH", "x")]))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("environment variable SITREP_STORAGE__PATHH: unknown key `pathh`")
                && err.contains("did you mean `path`?"),
            "{err}"
        );
    }

    #[test]
    fn a_built_in_severity_or_role_is_changed_not_replaced() {
        let toml = r##"
            [severities.SEV3]
            update_cron = "0 0 * * * *"
            [severities.SEV5]
            name = "Cosmetic"
            colour = "#cccccc"
            [roles.commander]
            discord_roles = [7]
            [roles.liaison]
            description = "Talks to the vendor"
        "##;
        let c = Config::from_parts(
            Some(("a.toml", toml)),
            &env(&[("SITREP_SEVERITIES__SEV1__UPDATE_EVERY", "1m")]),
        )
        .unwrap();
        let d = Config::default();
        assert_eq!(
            c.severities.keys().collect::<Vec<_>>(),
            ["SEV1", "SEV2", "SEV3", "SEV4", "SEV5"]
        );
        let sev3 = &c.severities["SEV3"];
        assert_eq!(sev3.name, d.severities["SEV3"].name);
        assert_eq!(sev3.colour, d.severities["SEV3"].colour);
        // The file's cron takes the place of the built-in update_every, not beside it.
        assert_eq!(sev3.update_every, None);
        assert_eq!(sev3.update_cron.as_deref(), Some("0 0 * * * *"));
        assert_eq!(
            c.severities["SEV1"].update_every,
            Some(Dur(std::time::Duration::from_secs(60)))
        );
        assert_eq!(c.severities["SEV2"], d.severities["SEV2"]);
        assert_eq!(c.severities["SEV4"], d.severities["SEV4"]);
        assert_eq!(
            c.roles.keys().collect::<Vec<_>>(),
            ["commander", "communications", "liaison", "scribe"]
        );
        assert_eq!(c.roles["commander"].discord_roles, [7]);
        assert_eq!(
            c.roles["commander"].description,
            d.roles["commander"].description
        );
        assert!(c.problems(&Secrets::default(), false).is_empty());

        // The one key alone, as the issue has it.
        let c = Config::from_parts(
            Some(("a.toml", "[severities.SEV3]\nupdate_every = \"1m\"\n")),
            &env(&[]),
        )
        .unwrap();
        assert_eq!(c.severities.len(), 4);
        assert_eq!(
            c.severities["SEV3"].update_every,
            Some(Dur(std::time::Duration::from_secs(60)))
        );

        // "off" takes a built-in cadence away, from the file or the environment.
        let c = Config::from_parts(
            Some(("a.toml", "[severities.SEV2]\nupdate_every = \"off\"\n")),
            &env(&[("SITREP_SEVERITIES__SEV3__UPDATE_EVERY", "off")]),
        )
        .unwrap();
        assert_eq!(c.default_cadence(crate::domain::Severity(2)), None);
        assert_eq!(c.default_cadence(crate::domain::Severity(3)), None);
        assert_eq!(c.severities["SEV2"].name, "Major");
        assert!(c
            .summary()
            .contains("SEV3 Minor #f8e71c · no scheduled updates"));
    }

    #[test]
    fn replace_makes_the_files_set_the_whole_set() {
        let toml = r##"
            [severities]
            replace = true
            [severities.SEV1]
            name = "Down"
            colour = "#ff0000"
            [roles]
            replace = true
            [roles.commander]
        "##;
        let c = Config::from_parts(Some(("a.toml", toml)), &env(&[])).unwrap();
        assert_eq!(c.severities.keys().collect::<Vec<_>>(), ["SEV1"]);
        assert_eq!(c.roles.keys().collect::<Vec<_>>(), ["commander"]);
        // Only `replace = true` or `false` is the switch; a table is a role of that name.
        let c = Config::from_parts(
            Some((
                "a.toml",
                "[roles.replace]\ndescription = \"Swaps the runbook\"\n",
            )),
            &env(&[]),
        )
        .unwrap();
        assert_eq!(c.roles.len(), 4);
        let err = Config::from_parts(
            Some(("a.toml", "[severities]\nreplace = \"yes\"\n")),
            &env(&[]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("a.toml: line 2: [severities] replace must be true"),
            "{err}"
        );
    }
}
