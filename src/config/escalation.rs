//! `[escalation]` (targets, ladders, the stuck nudge) and `[pagerduty]`.

use super::{url_like, Dur, Secrets};
use crate::domain::Severity;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// The default Events API v2 endpoint.
pub const PAGERDUTY_EVENTS_URL: &str = "https://events.pagerduty.com/v2/enqueue";
/// Short acknowledgement timeouts exist for tests; anything shorter is a typo.
pub const MIN_ACK_TIMEOUT: Duration = Duration::from_secs(1);
/// Target names travel in button ids and autocomplete choices, which Discord keeps short.
pub const MAX_TARGET_NAME: usize = 60;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EscalationConfig {
    /// Who `/escalate target:NAME` pages.
    pub targets: BTreeMap<String, EscalationTarget>,
    /// Ladders: who is paged next when nobody acknowledges in time.
    pub policies: BTreeMap<String, EscalationPolicy>,
    /// The policy `/escalate` follows when none is named; unset means the one called `default`,
    /// if there is one.
    pub default_policy: Option<String>,
    /// How long a page waits for an acknowledgement when no policy applies.
    pub ack_timeout: Dur,
    /// How long an incident of `stuck_severities` may stay investigating before sitrep suggests
    /// escalating; `"0s"` turns the suggestion off.
    pub stuck_after: Dur,
    pub stuck_severities: Vec<String>,
}

impl Default for EscalationConfig {
    fn default() -> Self {
        EscalationConfig {
            targets: BTreeMap::new(),
            policies: BTreeMap::new(),
            default_policy: None,
            ack_timeout: Dur(Duration::from_secs(600)),
            stuck_after: Dur(Duration::from_secs(1800)),
            stuck_severities: vec!["SEV1".into(), "SEV2".into()],
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EscalationTarget {
    /// The Discord roles a page mentions, and whose members may acknowledge it.
    #[serde(default)]
    pub roles: Vec<u64>,
    /// The environment variable holding this target's PagerDuty Events v2 routing key.
    #[serde(default)]
    pub pagerduty_routing_key_env: Option<String>,
    /// Shown next to the name in autocomplete.
    #[serde(default)]
    pub description: Option<String>,
    /// An `[oncall.NAME]` schedule: a page also mentions whoever is on call there now.
    #[serde(default)]
    pub schedule: Option<String>,
}

fn ten_minutes() -> Dur {
    Dur(Duration::from_secs(600))
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EscalationPolicy {
    /// Target names, paged one after the other.
    pub levels: Vec<String>,
    /// How long each level has to acknowledge before the next is paged.
    #[serde(default = "ten_minutes")]
    pub ack_timeout: Dur,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PagerDutyConfig {
    /// The Events API v2 endpoint; tests point it at a local stand-in.
    pub events_url: String,
    /// Bounds each request; failures are retried with backoff.
    pub timeout: Dur,
    /// The REST API, for `[oncall.*]` schedules; tests point it at a local stand-in.
    pub api_url: String,
}

impl Default for PagerDutyConfig {
    fn default() -> Self {
        PagerDutyConfig {
            events_url: PAGERDUTY_EVENTS_URL.into(),
            timeout: Dur(Duration::from_secs(10)),
            api_url: super::PAGERDUTY_API.into(),
        }
    }
}

impl EscalationConfig {
    /// A target by name, ignoring case, as people type it.
    pub fn target(&self, name: &str) -> Option<(&str, &EscalationTarget)> {
        let name = name.trim();
        self.targets
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(k, t)| (k.as_str(), t))
    }

    pub fn policy(&self, name: &str) -> Option<(&str, &EscalationPolicy)> {
        let name = name.trim();
        self.policies
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(k, p)| (k.as_str(), p))
    }

    /// The policy followed when `/escalate` names none.
    pub fn default_policy(&self) -> Option<(&str, &EscalationPolicy)> {
        self.policy(self.default_policy.as_deref().unwrap_or("default"))
    }

    /// Whether incidents of `severity` get the stuck nudge.
    pub fn nudges(&self, severity: Severity) -> bool {
        !self.stuck_after.0.is_zero()
            && self.targets.values().any(|t| !t.roles.is_empty())
            && self
                .stuck_severities
                .iter()
                .any(|s| s.parse::<Severity>() == Ok(severity))
    }

    pub(super) fn problems(
        &self,
        severities: &[Severity],
        secrets: &Secrets,
        running: bool,
    ) -> Vec<String> {
        let mut out = Vec::new();
        for (name, target) in &self.targets {
            let ok = !name.is_empty()
                && name.chars().count() <= MAX_TARGET_NAME
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
            if !ok {
                out.push(format!(
                    "[escalation.targets.{name}]: target names are up to {MAX_TARGET_NAME} letters, digits, - _ or ."
                ));
            }
            if let Some(var) = &target.pagerduty_routing_key_env {
                if var.trim().is_empty() {
                    out.push(format!(
                        "[escalation.targets.{name}] pagerduty_routing_key_env is empty"
                    ));
                } else if running && !secrets.pagerduty_routing_keys.contains_key(var) {
                    out.push(format!(
                        "{var} is not set, but [escalation.targets.{name}] pagerduty_routing_key_env names it (the PagerDuty Events v2 routing key, from the environment only)"
                    ));
                }
            }
        }
        for (name, policy) in &self.policies {
            if policy.levels.is_empty() {
                out.push(format!(
                    "[escalation.policies.{name}] levels is empty; list targets to page in order"
                ));
            }
            for level in &policy.levels {
                match self.target(level) {
                    None => out.push(format!(
                        "[escalation.policies.{name}] levels names `{level}`, which is not under [escalation.targets]"
                    )),
                    // A ladder must never reach a level that can page nobody.
                    Some((_, t)) if t.roles.is_empty() && t.schedule.is_none() => out.push(format!(
                        "[escalation.policies.{name}] levels names `{level}`, which has no roles to page"
                    )),
                    Some(_) => {}
                }
            }
            if policy.ack_timeout.0 < MIN_ACK_TIMEOUT {
                out.push(format!(
                    "[escalation.policies.{name}] ack_timeout = \"{}\" is under 1s",
                    policy.ack_timeout
                ));
            }
        }
        if let Some(p) = &self.default_policy {
            if self.policy(p).is_none() {
                out.push(format!(
                    "[escalation] default_policy = \"{p}\" is not under [escalation.policies]"
                ));
            }
        }
        if self.ack_timeout.0 < MIN_ACK_TIMEOUT {
            out.push(format!(
                "[escalation] ack_timeout = \"{}\" is under 1s",
                self.ack_timeout
            ));
        }
        for s in &self.stuck_severities {
            match s.parse::<Severity>() {
                Ok(sev) if severities.contains(&sev) => {}
                _ => out.push(format!(
                    "[escalation] stuck_severities names `{s}`, which is not a configured severity"
                )),
            }
        }
        out
    }

    /// Targets that name a schedule must name one that exists.
    pub(super) fn schedule_problems(
        &self,
        schedules: &BTreeMap<String, super::OnCallSchedule>,
    ) -> Vec<String> {
        let mut out = Vec::new();
        for (name, t) in &self.targets {
            if let Some(s) = &t.schedule {
                if super::schedule(schedules, s).is_none() {
                    out.push(format!(
                        "[escalation.targets.{name}] schedule = \"{s}\" is not under [oncall]"
                    ));
                }
            }
        }
        out
    }

    pub(super) fn summary(&self, pagerduty: &PagerDutyConfig) -> String {
        if self.targets.is_empty() {
            return "escalation off (no [escalation.targets])\n".into();
        }
        let mut s = String::new();
        for (name, t) in &self.targets {
            let pd = match &t.pagerduty_routing_key_env {
                Some(var) => format!(" · PagerDuty via {var}"),
                None => String::new(),
            };
            s.push_str(&format!(
                "escalation target {name} · roles {:?}{pd}\n",
                t.roles
            ));
        }
        for (name, p) in &self.policies {
            s.push_str(&format!(
                "escalation policy {name} · {} · {} per level\n",
                p.levels.join(" → "),
                p.ack_timeout
            ));
        }
        let nudge = if self.stuck_after.0.is_zero() {
            "off".to_string()
        } else {
            format!(
                "after {} investigating at {}",
                self.stuck_after,
                self.stuck_severities.join(", ")
            )
        };
        s.push_str(&format!(
            "escalation stuck nudge {nudge} · pagerduty {}\n",
            pagerduty.events_url
        ));
        s
    }
}

impl PagerDutyConfig {
    pub(super) fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Err(e) = url_like(&self.events_url) {
            out.push(format!("[pagerduty] events_url: {e}"));
        }
        if let Err(e) = url_like(&self.api_url) {
            out.push(format!("[pagerduty] api_url: {e}"));
        }
        if self.timeout.0 < MIN_ACK_TIMEOUT {
            out.push(format!(
                "[pagerduty] timeout = \"{}\" is under 1s",
                self.timeout
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use crate::config::tests::env;
    use crate::config::{Config, Dur, Secrets, PAGERDUTY_EVENTS_URL};
    use crate::domain::Severity;

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
}
