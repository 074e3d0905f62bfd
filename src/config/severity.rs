//! `[severities.SEVn]`: names, colours, update cadences, and whether updates may be silenced.

use super::{Config, Dur};
use crate::domain::{Cadence, RuleError, Severity};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

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

/// SEV1 to SEV4; a file changes them setting by setting, or replaces them with `replace = true`.
pub(super) fn defaults() -> BTreeMap<String, SeverityConfig> {
    BTreeMap::from([
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
    ])
}

pub(super) fn problems(severities: &BTreeMap<String, SeverityConfig>) -> Vec<String> {
    let mut out = Vec::new();
    if severities.is_empty() {
        out.push("[severities] is empty; define at least SEV1".into());
    }
    for (key, sev) in severities {
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
    out
}

pub(super) fn summary(config: &Config) -> String {
    let mut s = String::new();
    for (key, sev) in &config.severities {
        let cadence = match (&sev.update_every, &sev.update_cron) {
            (Some(e), _) => format!("every {e}"),
            (None, Some(c)) => format!("cron {c}"),
            (None, None) => "no scheduled updates".into(),
        };
        let off = match key.parse::<Severity>() {
            Ok(level) if !config.cadence_off_allowed(level) => " (cannot be turned off)",
            _ => "",
        };
        s.push_str(&format!(
            "severity   {key} {} {} · {cadence}{off}\n",
            sev.name, sev.colour
        ));
    }
    s
}

impl Config {
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
}

#[cfg(test)]
mod tests {
    use crate::config::tests::env;
    use crate::config::{Config, Secrets};
    use crate::domain::{Cadence, Severity};

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
}
