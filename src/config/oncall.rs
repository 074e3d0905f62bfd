//! `[oncall.NAME]` (who is on call, from PagerDuty, an iCalendar feed or a rotation written
//! here) and `[people]` (how the names and emails those sources give map to Discord users).

use super::{url_like, Dur};
use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// PagerDuty's REST API.
pub const PAGERDUTY_API: &str = "https://api.pagerduty.com";
/// The PagerDuty REST API token schedules use unless they name another variable.
pub const PAGERDUTY_TOKEN_VAR: &str = "SITREP_PAGERDUTY_TOKEN";

/// One on-call schedule: exactly one source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OnCallSchedule {
    /// Shown next to the name in autocomplete.
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub pagerduty: Option<PagerDutySource>,
    #[serde(default)]
    pub ical: Option<IcalSource>,
    #[serde(default)]
    pub rotation: Option<RotationSource>,
    /// A Discord role the person on call holds, and nobody else.
    #[serde(default)]
    pub role_id: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PagerDutySource {
    /// The on-calls of this schedule...
    #[serde(default)]
    pub schedule_id: Option<String>,
    /// ...or the first level of this escalation policy.
    #[serde(default)]
    pub escalation_policy_id: Option<String>,
    /// The variable holding the REST API token.
    #[serde(default = "default_token_var")]
    pub token_env: String,
}

fn default_token_var() -> String {
    PAGERDUTY_TOKEN_VAR.into()
}

fn ten_seconds() -> Dur {
    Dur(Duration::from_secs(10))
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IcalSource {
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// Where floating and all-day times are read when the feed does not say.
    #[serde(default)]
    pub time_zone: Option<Tz>,
    #[serde(default = "ten_seconds")]
    pub timeout: Dur,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotationSource {
    /// Who takes turns, in order: names or emails from `[people]`.
    pub members: Vec<String>,
    pub time_zone: Tz,
    /// The day the first member's first turn begins.
    pub start: NaiveDate,
    /// Local time of each hand-off, `"09:00"`.
    #[serde(default = "nine", with = "hh_mm")]
    pub handoff_time: NaiveTime,
    /// The weekday of hand-offs; the first turn begins on the first such day from `start`.
    #[serde(default)]
    pub handoff_weekday: Option<Weekday>,
    /// How long a turn lasts: `"7d"`, `"1d"`, `"12h"`.
    #[serde(default = "one_week")]
    pub length: Dur,
    #[serde(default)]
    pub overrides: Vec<OverrideConfig>,
}

fn nine() -> NaiveTime {
    NaiveTime::from_hms_opt(9, 0, 0).unwrap_or_default()
}

fn one_week() -> Dur {
    Dur(Duration::from_secs(7 * 86_400))
}

/// Someone covering a stretch: `from` and `until` are local times in the rotation's zone,
/// `"2026-12-24 09:00"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverrideConfig {
    pub who: String,
    #[serde(with = "local_time")]
    pub from: NaiveDateTime,
    #[serde(with = "local_time")]
    pub until: NaiveDateTime,
}

mod hh_mm {
    use super::*;
    pub fn serialize<S: Serializer>(t: &NaiveTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.format("%H:%M").to_string())
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<NaiveTime, D::Error> {
        let s = String::deserialize(d)?;
        NaiveTime::parse_from_str(s.trim(), "%H:%M")
            .map_err(|_| serde::de::Error::custom(format!("`{s}` is not a time like \"09:00\"")))
    }
}

mod local_time {
    use super::*;
    pub fn serialize<S: Serializer>(t: &NaiveDateTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.format("%Y-%m-%d %H:%M").to_string())
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<NaiveDateTime, D::Error> {
        let s = String::deserialize(d)?;
        NaiveDateTime::parse_from_str(s.trim(), "%Y-%m-%d %H:%M").map_err(|_| {
            serde::de::Error::custom(format!(
                "`{s}` is not a local time like \"2026-12-24 09:00\""
            ))
        })
    }
}

/// Which kind of source a schedule reads, for summaries and answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    PagerDuty,
    Ical,
    Rotation,
}

impl OnCallSchedule {
    pub fn source(&self) -> Option<SourceKind> {
        match (&self.pagerduty, &self.ical, &self.rotation) {
            (Some(_), None, None) => Some(SourceKind::PagerDuty),
            (None, Some(_), None) => Some(SourceKind::Ical),
            (None, None, Some(_)) => Some(SourceKind::Rotation),
            _ => None,
        }
    }
}

impl RotationSource {
    /// The local start of the first turn.
    pub fn first(&self) -> NaiveDateTime {
        let mut day = self.start;
        if let Some(w) = self.handoff_weekday {
            while day.weekday() != w {
                day = day.succ_opt().unwrap_or(day);
            }
        }
        day.and_time(self.handoff_time)
    }
}

/// Schedule names, like target names, travel in autocomplete choices.
pub const MAX_SCHEDULE_NAME: usize = 60;

/// A schedule by name, ignoring case, as people type it.
pub fn schedule<'a>(
    all: &'a BTreeMap<String, OnCallSchedule>,
    name: &str,
) -> Option<(&'a str, &'a OnCallSchedule)> {
    let name = name.trim();
    all.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(k, s)| (k.as_str(), s))
}

pub(super) fn problems(
    all: &BTreeMap<String, OnCallSchedule>,
    people: &BTreeMap<String, u64>,
    tokens: &BTreeMap<String, String>,
    running: bool,
) -> Vec<String> {
    let mut out = Vec::new();
    for (name, s) in all {
        let at = format!("[oncall.{name}]");
        let ok = !name.is_empty()
            && name.chars().count() <= MAX_SCHEDULE_NAME
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        if !ok {
            out.push(format!(
                "{at}: schedule names are up to {MAX_SCHEDULE_NAME} letters, digits, - _ or ."
            ));
        }
        if s.source().is_none() {
            out.push(format!(
                "{at} needs exactly one source: pagerduty = {{ schedule_id = \"...\" }}, ical = {{ url = \"...\" }} (or file), or a [oncall.{name}.rotation]"
            ));
        }
        if let Some(pd) = &s.pagerduty {
            if pd.schedule_id.is_some() == pd.escalation_policy_id.is_some() {
                out.push(format!(
                    "{at} pagerduty needs one of schedule_id or escalation_policy_id"
                ));
            }
            if running && !tokens.contains_key(&pd.token_env) {
                out.push(format!(
                    "{} is not set, but {at} reads PagerDuty (a REST API token, from the environment only)",
                    pd.token_env
                ));
            }
        }
        if let Some(ical) = &s.ical {
            match (&ical.url, &ical.file) {
                (Some(url), None) => {
                    if let Err(e) = url_like(url) {
                        out.push(format!("{at} ical url: {e}"));
                    }
                }
                (None, Some(_)) => {}
                _ => out.push(format!("{at} ical needs one of url or file")),
            }
        }
        if let Some(r) = &s.rotation {
            if r.members.is_empty() {
                out.push(format!("{at} rotation members is empty"));
            }
            let len = r.length.0.as_secs();
            if len < 3600 || len % 3600 != 0 {
                out.push(format!(
                    "{at} rotation length = \"{}\" must be whole hours, at least 1h",
                    r.length
                ));
            }
            for o in &r.overrides {
                if o.until <= o.from {
                    out.push(format!(
                        "{at} rotation override for {} ends before it begins",
                        o.who
                    ));
                }
            }
            for who in r.members.iter().chain(r.overrides.iter().map(|o| &o.who)) {
                if person(people, who).is_none() {
                    out.push(format!(
                        "{at} rotation names `{who}`, who is not under [people]; add `\"{who}\" = <discord user id>`"
                    ));
                }
            }
        }
    }
    out
}

/// The Discord user a name or email from a source stands for, ignoring case.
pub fn person(people: &BTreeMap<String, u64>, key: &str) -> Option<u64> {
    let key = key.trim();
    people
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, id)| *id)
}

pub(super) fn summary(all: &BTreeMap<String, OnCallSchedule>) -> String {
    let mut s = String::new();
    for (name, sched) in all {
        let source = match sched.source() {
            Some(SourceKind::PagerDuty) => "PagerDuty",
            Some(SourceKind::Ical) => "iCalendar feed",
            Some(SourceKind::Rotation) => "rotation",
            None => "no source",
        };
        let role = sched
            .role_id
            .map(|r| format!(" · role {r}"))
            .unwrap_or_default();
        s.push_str(&format!("on call {name} · {source}{role}\n"));
    }
    s
}

#[cfg(test)]
mod tests {
    use crate::config::tests::env;
    use crate::config::{Config, Secrets};

    const TOML: &str = r#"
        [people]
        alice = 111
        "bob@example.com" = 222
        carol = 333

        [oncall.dba]
        description = "Database on call"
        pagerduty = { schedule_id = "PABC123" }
        role_id = 555

        [oncall.sre]
        pagerduty = { escalation_policy_id = "PEP1", token_env = "SITREP_PD_SRE" }

        [oncall.net]
        ical = { url = "https://calendar.example.com/net.ics" }

        [oncall.web]
        [oncall.web.rotation]
        members = ["alice", "bob@example.com"]
        time_zone = "Europe/Berlin"
        start = "2026-10-01"
        handoff_time = "10:30"
        handoff_weekday = "mon"
        length = "7d"
        [[oncall.web.rotation.overrides]]
        who = "carol"
        from = "2026-12-24 09:00"
        until = "2026-12-27 09:00"
    "#;

    #[test]
    fn each_source_reads_from_inline_toml() {
        let c = Config::from_parts(Some(("a.toml", TOML)), &env(&[])).unwrap();
        assert_eq!(c.oncall.len(), 4);
        let dba = &c.oncall["dba"];
        assert_eq!(
            dba.pagerduty.as_ref().unwrap().schedule_id.as_deref(),
            Some("PABC123")
        );
        assert_eq!(
            dba.pagerduty.as_ref().unwrap().token_env,
            "SITREP_PAGERDUTY_TOKEN"
        );
        assert_eq!(dba.role_id, Some(555));
        assert_eq!(
            c.oncall["sre"].pagerduty.as_ref().unwrap().token_env,
            "SITREP_PD_SRE"
        );
        let web = c.oncall["web"].rotation.as_ref().unwrap();
        assert_eq!(web.time_zone, chrono_tz::Europe::Berlin);
        // 1 Oct 2026 is a Thursday: the first hand-off is the Monday after.
        assert_eq!(web.first().to_string(), "2026-10-05 10:30:00");
        assert_eq!(web.overrides[0].who, "carol");
        assert_eq!(c.people["bob@example.com"], 222);
        assert!(c.problems(&Secrets::default(), false).is_empty());
        let running = c.problems(&Secrets::default(), true).join("\n");
        assert!(
            running.contains("SITREP_PAGERDUTY_TOKEN is not set, but [oncall.dba]")
                && running.contains("SITREP_PD_SRE is not set"),
            "{running}"
        );
        let vars = env(&[
            ("SITREP_PAGERDUTY_TOKEN", "u+secret"),
            ("SITREP_PD_SRE", "u+other"),
        ]);
        let secrets = Secrets::from_env(&vars).with_routing_keys(&c, &vars);
        let running = c.problems(&secrets, true).join("\n");
        assert!(!running.contains("[oncall."), "{running}");
        assert!(!format!("{secrets:?}").contains("u+secret"));
        let summary = c.summary();
        assert!(
            summary.contains("on call dba · PagerDuty · role 555")
                && summary.contains("on call web · rotation"),
            "{summary}"
        );
    }

    #[test]
    fn mistakes_are_named() {
        let bad = r#"
            [oncall.both]
            pagerduty = { schedule_id = "P1", escalation_policy_id = "P2" }
            ical = { file = "x.ics" }
            [oncall.none]
            description = "nothing"
            [oncall.feed]
            ical = { url = "calendar.example.com" }
            [oncall.rot]
            [oncall.rot.rotation]
            members = ["zed"]
            time_zone = "UTC"
            start = "2026-10-01"
            length = "90m"
            [[oncall.rot.rotation.overrides]]
            who = "zed"
            from = "2026-12-24 09:00"
            until = "2026-12-23 09:00"
        "#;
        let c = Config::from_parts(Some(("a.toml", bad)), &env(&[])).unwrap();
        let all = c.problems(&Secrets::default(), false).join("\n");
        for needle in [
            "[oncall.both] needs exactly one source",
            "[oncall.both] pagerduty needs one of schedule_id or escalation_policy_id",
            "[oncall.none] needs exactly one source",
            "[oncall.feed] ical url: `calendar.example.com` must start with http",
            "[oncall.rot] rotation length = \"1h 30m\" must be whole hours",
            "[oncall.rot] rotation override for zed ends before it begins",
            "[oncall.rot] rotation names `zed`, who is not under [people]",
        ] {
            assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
        }
        for (toml, needle) in [
            ("[oncall.x]\npagerduty = { schedule = \"P\" }\n", "schedule"),
            (
                "[oncall.x.rotation]\nmembers = []\ntime_zone = \"Mars/Base\"\nstart = \"2026-01-01\"\n",
                "Mars/Base",
            ),
            (
                "[oncall.x.rotation]\nmembers = []\ntime_zone = \"UTC\"\nstart = \"2026-01-01\"\nhandoff_time = \"9am\"\n",
                "not a time like",
            ),
            ("[oncall.x]\ntoken = \"u+pasted\"\n", "is not a setting"),
        ] {
            let err = Config::from_parts(Some(("a.toml", toml)), &env(&[]))
                .unwrap_err()
                .to_string();
            assert!(err.contains(needle), "{toml}: {err}");
            assert!(!err.contains("u+pasted"), "{err}");
        }
    }
}
