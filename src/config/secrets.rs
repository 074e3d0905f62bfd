//! Secrets: read from the environment only, never from the file, never shown in logs.

use super::Config;
use std::collections::BTreeMap;
use std::fmt;

/// Secret variables that look like config overrides but are not.
pub(super) const SECRET_VARS: &[&str] = &[
    "SITREP_DISCORD_TOKEN",
    "SITREP_DEPLOY_WEBHOOK_SECRET",
    "SITREP_GITHUB_TOKEN",
    "SITREP_HTTP_ADMIN_TOKEN",
    "SITREP_PROMETHEUS_TOKEN",
    "SITREP_JIRA_EMAIL",
    "SITREP_JIRA_TOKEN",
    "SITREP_ALERTS_TOKEN",
    "SITREP_PAGERDUTY_TOKEN",
];

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
    /// The Jira Cloud account that files issues, and its API token (basic auth).
    pub jira_email: Option<String>,
    pub jira_token: Option<String>,
    /// The bearer token Alertmanager and Grafana present to `POST /hooks/alertmanager`.
    pub alerts_token: Option<String>,
    /// PagerDuty REST API tokens by the variable that holds them, for the variables
    /// `[oncall.*] pagerduty` schedules name (`SITREP_PAGERDUTY_TOKEN` unless they say).
    pub pagerduty_tokens: BTreeMap<String, String>,
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
            .field("jira_email", &self.jira_email.as_ref().map(|_| "<set>"))
            .field("jira_token", &self.jira_token.as_ref().map(|_| "<set>"))
            .field("alerts_token", &self.alerts_token.as_ref().map(|_| "<set>"))
            .field(
                "pagerduty_routing_keys",
                &self.pagerduty_routing_keys.keys().collect::<Vec<_>>(),
            )
            .field(
                "pagerduty_tokens",
                &self.pagerduty_tokens.keys().collect::<Vec<_>>(),
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
            jira_email: secret("SITREP_JIRA_EMAIL"),
            jira_token: secret("SITREP_JIRA_TOKEN"),
            alerts_token: secret("SITREP_ALERTS_TOKEN"),
            pagerduty_tokens: BTreeMap::new(),
        }
    }

    /// Adds the PagerDuty routing keys from the variables the escalation targets name, and the
    /// REST API tokens the on-call schedules name; their names are the operator's choice, so
    /// the config says which to read.
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
        for schedule in config.oncall.values() {
            let Some(pd) = &schedule.pagerduty else {
                continue;
            };
            if let Some(token) = env.get(&pd.token_env).filter(|k| !k.trim().is_empty()) {
                self.pagerduty_tokens
                    .insert(pd.token_env.clone(), token.trim().to_string());
            }
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::Secrets;
    use crate::config::tests::env;

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let s = Secrets::from_env(&env(&[("SITREP_DISCORD_TOKEN", "hunter2")]));
        assert!(!format!("{s:?}").contains("hunter2"));
        assert_eq!(s.discord_token.as_deref(), Some("hunter2"));
    }
}
