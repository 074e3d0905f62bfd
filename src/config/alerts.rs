//! `[alerts]`: alerts from Alertmanager and Grafana, and `[[alerts.routes]]`, which say what
//! each group of alerts becomes.

use super::{Dur, EscalationConfig, HttpConfig, Secrets};
use crate::domain::Severity;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// The environment variable that holds the bearer token senders must present.
pub const ALERTS_TOKEN_ENV: &str = "SITREP_ALERTS_TOKEN";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsConfig {
    /// Serves `POST /hooks/alertmanager` (needs `[http] listen` and `SITREP_ALERTS_TOKEN`).
    pub enabled: bool,
    /// Where triage posts go: an alert group that is not declared at once is offered there.
    pub triage_channel: Option<u64>,
    /// How many groups get a triage post of their own in each `flood_window`; the rest of a
    /// flood is gathered into one summary post.
    pub flood_posts: u32,
    pub flood_window: Dur,
    /// The label whose value names the severity (`critical`), read through `severities`.
    pub severity_label: String,
    /// Label values to severities: `critical = "SEV1"`. A value that is itself a severity
    /// (`SEV2`) needs no entry.
    pub severities: BTreeMap<String, String>,
    /// The label that names the service.
    pub service_label: String,
    /// Tried in order; the first whose matchers all hold decides.
    pub routes: Vec<AlertRoute>,
    /// What a group that no route matches becomes.
    pub default_route: AlertRoute,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            enabled: false,
            triage_channel: None,
            flood_posts: 5,
            flood_window: Dur(Duration::from_secs(60)),
            severity_label: "severity".into(),
            severities: [
                ("critical", "SEV1"),
                ("error", "SEV2"),
                ("warning", "SEV3"),
                ("info", "SEV4"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
            service_label: "service".into(),
            routes: Vec::new(),
            default_route: AlertRoute::default(),
        }
    }
}

/// What to do with an alert group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RouteAction {
    /// Open an incident at once.
    Declare,
    /// Offer it in the triage channel: declare, attach to an open incident, or dismiss.
    #[default]
    Triage,
    /// Keep it out of chat (still deduplicated, so that it is not offered later).
    Ignore,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertRoute {
    /// Shown in logs and triage posts.
    pub name: Option<String>,
    /// Labels that must equal these values.
    #[serde(rename = "match")]
    pub equal: BTreeMap<String, String>,
    /// Labels that must match these regular expressions, anchored at both ends as in
    /// Alertmanager.
    pub match_re: BTreeMap<String, String>,
    pub action: RouteAction,
    /// The severity of an incident declared from this route, unless the severity label says
    /// another; with neither, the lowest configured severity.
    pub severity: Option<String>,
    /// Overrides `[alerts] severity_label` for this route.
    pub severity_label: Option<String>,
    /// Overrides `[alerts] service_label` for this route.
    pub service_label: Option<String>,
    /// The escalation target paged when an incident is declared from this route.
    pub escalate: Option<String>,
}

/// Regular expressions as Alertmanager anchors them: the whole value must match.
pub fn anchored(pattern: &str) -> Result<regex_automata::meta::Regex, String> {
    regex_automata::meta::Regex::new(&format!("^(?:{pattern})$")).map_err(|e| e.to_string())
}

impl AlertRoute {
    /// Whether every matcher holds for `labels`. Matchers were checked at startup; one that
    /// does not compile matches nothing.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let value = |k: &String| labels.get(k).map(String::as_str).unwrap_or("");
        self.equal.iter().all(|(k, v)| value(k) == v)
            && self
                .match_re
                .iter()
                .all(|(k, re)| anchored(re).is_ok_and(|r| r.is_match(value(k))))
    }

    pub fn label(&self, index: Option<usize>) -> String {
        match (&self.name, index) {
            (Some(n), _) => n.clone(),
            (None, Some(i)) => format!("route #{}", i + 1),
            (None, None) => "default route".into(),
        }
    }
}

impl AlertsConfig {
    /// The first route whose matchers hold, with its position; else the default route.
    pub fn route(&self, labels: &BTreeMap<String, String>) -> (Option<usize>, &AlertRoute) {
        self.routes
            .iter()
            .enumerate()
            .find(|(_, r)| r.matches(labels))
            .map(|(i, r)| (Some(i), r))
            .unwrap_or((None, &self.default_route))
    }

    /// The severity a group on `route` is declared at: its severity label read through
    /// `severities` (or as a severity name), else the route's, else the lowest of `levels`.
    pub fn severity_of(
        &self,
        route: &AlertRoute,
        labels: &BTreeMap<String, String>,
        levels: &[Severity],
    ) -> Severity {
        let label = route
            .severity_label
            .as_deref()
            .unwrap_or(&self.severity_label);
        let known = |s: &str| s.parse::<Severity>().ok().filter(|s| levels.contains(s));
        labels
            .get(label)
            .and_then(|v| {
                self.severities
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(v))
                    .and_then(|(_, s)| known(s))
                    .or_else(|| known(v))
            })
            .or_else(|| route.severity.as_deref().and_then(known))
            .or_else(|| levels.iter().max().copied())
            .unwrap_or(Severity(4))
    }

    pub fn service_of(
        &self,
        route: &AlertRoute,
        labels: &BTreeMap<String, String>,
    ) -> Option<String> {
        let label = route
            .service_label
            .as_deref()
            .unwrap_or(&self.service_label);
        labels.get(label).filter(|s| !s.trim().is_empty()).cloned()
    }

    pub(super) fn problems(
        &self,
        severities: &[Severity],
        escalation: &EscalationConfig,
        http: &HttpConfig,
        secrets: &Secrets,
        running: bool,
    ) -> Vec<String> {
        let mut out = Vec::new();
        let routes = self
            .routes
            .iter()
            .enumerate()
            .map(|(i, r)| (format!("[[alerts.routes]] #{}", i + 1), r))
            .chain([("[alerts.default_route]".to_string(), &self.default_route)]);
        for (at, route) in routes {
            for (label, re) in &route.match_re {
                if let Err(e) = anchored(re) {
                    out.push(format!(
                        "{at} match_re.{label} = {re:?} is not a regular expression: {e}"
                    ));
                }
            }
            if let Some(s) = &route.severity {
                if !s.parse::<Severity>().is_ok_and(|s| severities.contains(&s)) {
                    out.push(format!(
                        "{at} severity = \"{s}\" is not a configured severity"
                    ));
                }
            }
            if let Some(t) = &route.escalate {
                match escalation.target(t) {
                    None => out.push(format!(
                        "{at} escalate = \"{t}\" is not under [escalation.targets]"
                    )),
                    Some((_, target))
                        if target.roles.is_empty()
                            && target.pagerduty_routing_key_env.is_none() =>
                    {
                        out.push(format!(
                            "{at} escalate = \"{t}\" names a target with no roles and no PagerDuty key: it would page nobody"
                        ))
                    }
                    Some(_) => {}
                }
            }
        }
        // The built-in map names the built-in severities; it matters only once alerts come in.
        for (value, s) in self.severities.iter().filter(|_| self.enabled) {
            if !s.parse::<Severity>().is_ok_and(|s| severities.contains(&s)) {
                out.push(format!(
                    "[alerts.severities] {value} = \"{s}\" is not a configured severity"
                ));
            }
        }
        if self.flood_posts == 0 {
            out.push("[alerts] flood_posts = 0 would post no triage at all; use 1 or more".into());
        }
        if self.flood_window.0 < Duration::from_secs(1) {
            out.push(format!(
                "[alerts] flood_window = \"{}\" is under 1s",
                self.flood_window
            ));
        }
        if running && self.enabled {
            if http.listen.is_empty() {
                out.push("[alerts] enabled = true needs [http] listen; it is empty".into());
            }
            match &secrets.alerts_token {
                None => out.push(format!(
                    "{ALERTS_TOKEN_ENV} is not set, but [alerts] enabled = true: the hook would refuse every alert (Alertmanager sends it as http_config.authorization.credentials)"
                )),
                Some(t) if t.trim().chars().count() < 16 => out.push(format!(
                    "{ALERTS_TOKEN_ENV} is shorter than 16 characters; use a long random one (e.g. `openssl rand -hex 32`)"
                )),
                Some(_) => {}
            }
        }
        out
    }

    pub fn summary(&self) -> String {
        if !self.enabled {
            return "alerts     off\n".into();
        }
        format!(
            "alerts     POST /hooks/alertmanager, {} route(s) + default ({:?}), triage in {}\n",
            self.routes.len(),
            self.default_route.action,
            self.triage_channel
                .map_or("no channel".to_string(), |c| c.to_string())
        )
    }
}

#[cfg(test)]
mod tests {
    use crate::config::tests::env;
    use crate::config::{Config, RouteAction, Secrets};
    use crate::domain::Severity;
    use std::collections::BTreeMap;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const ROUTES: &str = r#"
        [alerts]
        enabled = true
        triage_channel = 42

        [[alerts.routes]]
        name = "noise"
        match = { env = "staging" }
        action = "ignore"

        [[alerts.routes]]
        name = "payments"
        match = { team = "payments" }
        match_re = { alertname = "Checkout.*|Payment.*" }
        action = "declare"
        severity = "SEV2"
        escalate = "payments-oncall"

        [alerts.default_route]
        severity = "SEV3"

        [escalation.targets.payments-oncall]
        roles = [7]
    "#;

    #[test]
    fn first_matching_route_wins_and_regexes_are_anchored() {
        let c = Config::from_parts(Some(("a.toml", ROUTES)), &env(&[])).unwrap();
        let a = &c.alerts;
        let (i, r) = a.route(&labels(&[
            ("team", "payments"),
            ("alertname", "CheckoutDown"),
            ("env", "staging"),
        ]));
        assert_eq!((i, r.action), (Some(0), RouteAction::Ignore));
        let (i, r) = a.route(&labels(&[
            ("team", "payments"),
            ("alertname", "CheckoutDown"),
        ]));
        assert_eq!((i, r.action), (Some(1), RouteAction::Declare));
        // Anchored: a name that only contains the pattern does not match.
        let (i, r) = a.route(&labels(&[
            ("team", "payments"),
            ("alertname", "OldCheckoutDown"),
        ]));
        assert_eq!((i, r.action), (None, RouteAction::Triage));
        let levels = c.severity_levels();
        assert_eq!(
            a.severity_of(r, &labels(&[("severity", "critical")]), &levels),
            Severity(1)
        );
        assert_eq!(
            a.severity_of(r, &labels(&[("severity", "SEV2")]), &levels),
            Severity(2)
        );
        assert_eq!(
            a.severity_of(r, &labels(&[("severity", "meh")]), &levels),
            Severity(3)
        );
        assert_eq!(
            a.service_of(r, &labels(&[("service", "checkout")]))
                .as_deref(),
            Some("checkout")
        );
        let secrets = Secrets::from_env(&env(&[("SITREP_ALERTS_TOKEN", "0123456789abcdef0")]));
        let http = "[http]\nlisten = \"127.0.0.1:0\"\n";
        let c =
            Config::from_parts(Some(("a.toml", &format!("{http}{ROUTES}"))), &env(&[])).unwrap();
        assert_eq!(
            c.problems(&secrets, true)
                .into_iter()
                .filter(|p| p.contains("alerts"))
                .count(),
            0
        );
    }

    #[test]
    fn mistakes_are_named() {
        let toml = r#"
            [http]
            listen = ""
            [alerts]
            enabled = true
            flood_posts = 0
            [alerts.severities]
            critical = "SEV9"
            [[alerts.routes]]
            match_re = { alertname = "(" }
            escalate = "nobody"
            severity = "SEV7"
        "#;
        let c = Config::from_parts(Some(("a.toml", toml)), &env(&[])).unwrap();
        let all = c.problems(&Secrets::default(), true).join("\n");
        for needle in [
            "[[alerts.routes]] #1 match_re.alertname = \"(\" is not a regular expression",
            "[[alerts.routes]] #1 escalate = \"nobody\" is not under [escalation.targets]",
            "[[alerts.routes]] #1 severity = \"SEV7\" is not a configured severity",
            "[alerts.severities] critical = \"SEV9\"",
            "flood_posts = 0",
            "[alerts] enabled = true needs [http] listen",
            "SITREP_ALERTS_TOKEN is not set",
        ] {
            assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
        }
    }

    #[test]
    fn unknown_keys_are_refused() {
        let toml = "[[alerts.routes]]\nmatchers = { a = \"b\" }\n";
        assert!(Config::from_parts(Some(("a.toml", toml)), &env(&[])).is_err());
    }
}
