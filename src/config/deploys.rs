//! `[deploys]` (pushed by CI to the HTTP edge) and `[github]` (read from GitHub's deployments API).

use super::{url_like, Dur, HttpConfig, Secrets};
use serde::{Deserialize, Serialize};

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

/// Problems of `[deploys]` and `[github]`; missing secrets matter only when the bot runs.
pub(super) fn problems(
    deploys: &DeploysConfig,
    g: &GitHubConfig,
    http: &HttpConfig,
    secrets: &Secrets,
    running: bool,
) -> Vec<String> {
    let mut out = Vec::new();
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
    if running && deploys.webhook && secrets.deploy_webhook_secret.is_none() {
        out.push(
            "SITREP_DEPLOY_WEBHOOK_SECRET is not set, but [deploys] webhook = true (the shared secret that signs deploy notices, from the environment only)"
                .into(),
        );
    }
    if running && deploys.webhook && http.listen.is_empty() {
        out.push("[deploys] webhook = true needs [http] listen; it is empty".into());
    }
    out
}

pub(super) fn summary(deploys: &DeploysConfig, g: &GitHubConfig) -> String {
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
        if deploys.webhook {
            "on (POST /hooks/deploy)"
        } else {
            "off"
        }
    )
}

#[cfg(test)]
mod tests {
    use super::GITHUB_API;
    use crate::config::tests::env;
    use crate::config::{Config, Dur, Secrets};

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
        let problems = super::problems(&c.deploys, &c.github, &c.http, &secrets, true);
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
}
