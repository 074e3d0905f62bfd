//! `[trackers]`: where action items are filed (GitHub Issues, Jira Cloud) and whose they are.

use super::{url_like, Dur, Secrets};
use serde::{Deserialize, Serialize};
use std::time::Duration;

pub const JIRA_EMAIL_ENV: &str = "SITREP_JIRA_EMAIL";
pub const JIRA_TOKEN_ENV: &str = "SITREP_JIRA_TOKEN";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrackersConfig {
    /// Which tracker new items go to when both are set up: `"github"` or `"jira"`.
    pub file_in: Option<String>,
    pub github: Option<GitHubIssuesConfig>,
    pub jira: Option<JiraConfig>,
    /// How often filed items' issues are read back for their state.
    pub poll_every: Dur,
    /// Who a Discord user is in each tracker, for the assignee.
    pub people: Vec<TrackerPerson>,
    /// Where people reach sitrep's incident browser, so that issues link back to
    /// `<browser_url>/incidents/INC-7`; unset falls back to `[status_page] public_url`.
    pub browser_url: Option<String>,
    /// Where the weekly digest of overdue items goes; unset, there is none.
    pub digest_channel: Option<u64>,
    /// When the digest goes out: a six-field cron expression in UTC (Mondays at 09:00 by default).
    pub digest_cron: String,
    /// Whether each owner is reminded in the digest channel on their item's due date, and
    /// daily after, until it is done.
    pub remind_owners: bool,
}

impl Default for TrackersConfig {
    fn default() -> Self {
        TrackersConfig {
            file_in: None,
            github: None,
            jira: None,
            poll_every: Dur(Duration::from_secs(300)),
            people: Vec::new(),
            browser_url: None,
            digest_channel: None,
            digest_cron: "0 0 9 * * Mon".into(),
            remind_owners: true,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GitHubIssuesConfig {
    /// `owner/name` of the repository that gets the issues.
    pub repository: String,
    #[serde(default)]
    pub labels: Vec<String>,
    /// `https://api.github.com`, or `https://HOST/api/v3` for GitHub Enterprise Server.
    #[serde(default = "github_api")]
    pub api_base: String,
}

fn github_api() -> String {
    super::GITHUB_API.into()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JiraConfig {
    /// The Jira Cloud site, `https://acme.atlassian.net`.
    pub site: String,
    /// The key of the project that gets the issues, `OPS`.
    pub project: String,
    #[serde(default = "task")]
    pub issue_type: String,
}

fn task() -> String {
    "Task".into()
}

/// One person: their Discord user id and who they are in the trackers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrackerPerson {
    pub discord: u64,
    /// GitHub login.
    #[serde(default)]
    pub github: Option<String>,
    /// Jira Cloud accountId (Jira Cloud assigns by account id, not by name or email).
    #[serde(default)]
    pub jira: Option<String>,
}

/// A tracker sitrep can file in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrackerKind {
    GitHub,
    Jira,
}

impl TrackerKind {
    pub fn name(self) -> &'static str {
        match self {
            TrackerKind::GitHub => "github",
            TrackerKind::Jira => "jira",
        }
    }

    pub fn parse(s: &str) -> Option<TrackerKind> {
        match s {
            "github" => Some(TrackerKind::GitHub),
            "jira" => Some(TrackerKind::Jira),
            _ => None,
        }
    }
}

impl TrackersConfig {
    /// The tracker new items are filed in; `None` when no tracker is set up.
    pub fn filing(&self) -> Option<TrackerKind> {
        match (&self.github, &self.jira) {
            (Some(_), None) => Some(TrackerKind::GitHub),
            (None, Some(_)) => Some(TrackerKind::Jira),
            (Some(_), Some(_)) => self.file_in.as_deref().and_then(TrackerKind::parse),
            (None, None) => None,
        }
    }

    /// The assignee for Discord user `discord` in `tracker`, when the config knows them.
    pub fn assignee(&self, tracker: TrackerKind, discord: u64) -> Option<&str> {
        let p = self.people.iter().find(|p| p.discord == discord)?;
        match tracker {
            TrackerKind::GitHub => p.github.as_deref(),
            TrackerKind::Jira => p.jira.as_deref(),
        }
    }

    pub(super) fn problems(&self, secrets: &Secrets, running: bool) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(g) = &self.github {
            if !owner_name(&g.repository) {
                out.push(format!(
                    "[trackers.github] repository: \"{}\" is not owner/name, like \"acme/checkout\"",
                    g.repository
                ));
            }
            if let Err(e) = url_like(&g.api_base) {
                out.push(format!("[trackers.github] api_base: {e}"));
            }
            if g.labels.iter().any(|l| l.trim().is_empty() || l.len() > 50) {
                out.push("[trackers.github] labels: each is 1 to 50 characters".into());
            }
            if running && secrets.github_token.is_none() {
                out.push("SITREP_GITHUB_TOKEN is not set, but [trackers.github] is (a token that may write issues, from the environment only)".into());
            }
        }
        if let Some(j) = &self.jira {
            if let Err(e) = url_like(&j.site) {
                out.push(format!("[trackers.jira] site: {e}"));
            }
            let key_ok = !j.project.is_empty()
                && j.project.starts_with(|c: char| c.is_ascii_uppercase())
                && j.project
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
            if !key_ok {
                out.push(format!(
                    "[trackers.jira] project: \"{}\" is not a project key, like \"OPS\"",
                    j.project
                ));
            }
            if j.issue_type.trim().is_empty() {
                out.push(
                    "[trackers.jira] issue_type is empty; Jira needs one, like \"Task\"".into(),
                );
            }
            if running && (secrets.jira_email.is_none() || secrets.jira_token.is_none()) {
                out.push(format!(
                    "{JIRA_EMAIL_ENV} and {JIRA_TOKEN_ENV} must both be set, since [trackers.jira] is (an account's email and API token, from the environment only)"
                ));
            }
        }
        if self.github.is_some() && self.jira.is_some() && self.filing().is_none() {
            out.push(
                "[trackers] file_in: both GitHub and Jira are set up; say which gets new items, \"github\" or \"jira\""
                    .into(),
            );
        }
        if let Some(f) = &self.file_in {
            let configured = match TrackerKind::parse(f) {
                Some(TrackerKind::GitHub) => self.github.is_some(),
                Some(TrackerKind::Jira) => self.jira.is_some(),
                None => false,
            };
            if !configured {
                out.push(format!(
                    "[trackers] file_in = \"{f}\" names no tracker set up here ([trackers.github] or [trackers.jira])"
                ));
            }
        }
        // Short intervals exist for tests; anything under a second is a typo.
        if self.poll_every.0 < Duration::from_secs(1) {
            out.push(format!(
                "[trackers] poll_every = \"{}\" is under a second; trackers limit how often they are asked",
                self.poll_every
            ));
        }
        if let Some(u) = &self.browser_url {
            if let Err(e) = url_like(u) {
                out.push(format!("[trackers] browser_url: {e}"));
            }
        }
        if let Err(e) = crate::domain::Cadence::cron(&self.digest_cron) {
            out.push(format!("[trackers] digest_cron: {e}"));
        }
        let mut seen = std::collections::BTreeSet::new();
        for p in &self.people {
            if !seen.insert(p.discord) {
                out.push(format!(
                    "[[trackers.people]] discord = {} is listed twice",
                    p.discord
                ));
            }
        }
        out
    }

    pub(super) fn summary(&self) -> String {
        let mut parts = Vec::new();
        if let Some(g) = &self.github {
            parts.push(format!("GitHub {} ({})", g.repository, g.api_base));
        }
        if let Some(j) = &self.jira {
            parts.push(format!("Jira {} {} ({})", j.site, j.project, j.issue_type));
        }
        if parts.is_empty() {
            return "trackers   off\n".into();
        }
        format!(
            "trackers   {} · new items to {} · read back every {} · {} people mapped\n",
            parts.join(", "),
            self.filing().map_or("?", TrackerKind::name),
            self.poll_every,
            self.people.len()
        )
    }
}

fn owner_name(repo: &str) -> bool {
    let parts: Vec<&str> = repo.split('/').collect();
    parts.len() == 2
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::env;
    use crate::config::Config;

    #[test]
    fn both_trackers_from_a_file() {
        let toml = r#"
            [trackers]
            file_in = "jira"
            poll_every = "2m"

            [trackers.github]
            repository = "acme/checkout"
            labels = ["incident", "follow-up"]

            [trackers.jira]
            site = "https://acme.atlassian.net"
            project = "OPS"

            [[trackers.people]]
            discord = 111
            github = "alice"
            jira = "5b10a2844c20165700ede21g"

            [[trackers.people]]
            discord = 222
            github = "bob"
        "#;
        let c = Config::from_parts(Some(("a.toml", toml)), &env(&[])).unwrap();
        let t = &c.trackers;
        assert_eq!(t.filing(), Some(TrackerKind::Jira));
        let g = t.github.as_ref().unwrap();
        assert_eq!(g.api_base, crate::config::GITHUB_API);
        assert_eq!(g.labels, ["incident", "follow-up"]);
        assert_eq!(t.jira.as_ref().unwrap().issue_type, "Task");
        assert_eq!(t.poll_every, Dur(Duration::from_secs(120)));
        assert_eq!(t.assignee(TrackerKind::GitHub, 222), Some("bob"));
        assert_eq!(t.assignee(TrackerKind::Jira, 222), None);
        assert_eq!(
            t.assignee(TrackerKind::Jira, 111),
            Some("5b10a2844c20165700ede21g")
        );
        let secrets = Secrets::from_env(&env(&[
            ("SITREP_GITHUB_TOKEN", "ghp_x"),
            ("SITREP_JIRA_EMAIL", "bot@acme.test"),
            ("SITREP_JIRA_TOKEN", "jira-secret"),
        ]));
        assert!(
            t.problems(&secrets, true).is_empty(),
            "{:?}",
            t.problems(&secrets, true)
        );
        assert!(c
            .summary()
            .contains("Jira https://acme.atlassian.net OPS (Task)"));
        assert!(!format!("{secrets:?}").contains("jira-secret"));

        let d = Config::default();
        assert_eq!(d.trackers.filing(), None);
        assert!(d.summary().contains("trackers   off"));
    }

    #[test]
    fn mistakes_are_named() {
        let toml = r#"
            [trackers]
            poll_every = "500ms"
            [trackers.github]
            repository = "checkout"
            [trackers.jira]
            site = "acme.atlassian.net"
            project = "ops team"
            [[trackers.people]]
            discord = 1
            [[trackers.people]]
            discord = 1
        "#;
        let c = Config::from_parts(Some(("a.toml", toml)), &env(&[])).unwrap();
        let all = c.problems(&Secrets::default(), true).join("\n");
        for needle in [
            "\"checkout\" is not owner/name",
            "[trackers.jira] site",
            "\"ops team\" is not a project key",
            "say which gets new items",
            "under a second",
            "discord = 1 is listed twice",
            "SITREP_GITHUB_TOKEN is not set",
            "SITREP_JIRA_EMAIL and SITREP_JIRA_TOKEN",
        ] {
            assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
        }
        // The console files nothing, so it needs no secrets.
        let console = c.problems(&Secrets::default(), false).join("\n");
        assert!(!console.contains("SITREP_"), "{console}");

        let err = Config::from_parts(
            Some(("a.toml", "[trackers.jira]\nsite = \"https://a.atlassian.net\"\nproject = \"OPS\"\napi_token = \"x\"\n")),
            &env(&[]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("secrets are read from the environment only"),
            "{err}"
        );
        assert!(!err.contains("\"x\""), "{err}");
    }
}
