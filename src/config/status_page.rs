//! `[status_page]`: the public status page and feed on the HTTP edge.

use super::{url_like, Dur, HttpConfig, Secrets};
use serde::{Deserialize, Serialize};

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
    pub(super) fn problems(
        &self,
        http: &HttpConfig,
        secrets: &Secrets,
        running: bool,
    ) -> Vec<String> {
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

#[cfg(test)]
mod tests {
    use crate::config::tests::env;
    use crate::config::{Config, Dur, Secrets};

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
}
