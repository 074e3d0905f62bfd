//! `[types.NAME]`: incident types, each a playbook of checklist items, custom fields and what
//! happens at open (default severity and service, who is added, who is paged, the cadence).

use super::{url_like, Config, Dur};
use crate::domain::playbook::{FieldDef, FieldKind, ItemDef, Playbook, IMPACT, MAX_ITEMS};
use crate::domain::{Cadence, Severity};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The type an incident opened without `type:` follows.
pub const DEFAULT_TYPE: &str = "default";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TypeConfig {
    #[serde(default)]
    pub description: String,
    /// The severity `/incident open type:` takes when none is given: `SEV2`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    /// The service the incident is about when none is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    #[serde(default)]
    pub checklist: Vec<ItemConfig>,
    /// Discord users added to the incident's place at open (a thread's members).
    #[serde(default)]
    pub invite: Vec<u64>,
    /// An `[escalation.targets]` name paged as soon as the incident opens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalate: Option<String>,
    /// This type's status update cadence, instead of its severity's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_every: Option<Dur>,
    #[serde(default)]
    pub fields: Vec<FieldConfig>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ItemConfig {
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runbook: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// An incident role (`[roles]`) that owns the item; shown with it, never pinged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldConfig {
    pub name: String,
    /// `text`, `choice`, `number` or `url`.
    #[serde(default)]
    pub kind: FieldKind,
    #[serde(default)]
    pub choices: Vec<String>,
    /// Asked for at open: `/incident open` is refused without it.
    #[serde(default)]
    pub required: bool,
    /// Shown to stakeholders and on the public status page.
    #[serde(default)]
    pub public: bool,
}

fn item(text: &str, hint: &str, owner: Option<&str>) -> ItemConfig {
    ItemConfig {
        text: text.into(),
        runbook: None,
        hint: Some(hint.into()),
        owner: owner.map(Into::into),
    }
}

/// The method that works for most incidents, so that a fresh install guides its first one.
pub(super) fn defaults() -> BTreeMap<String, TypeConfig> {
    BTreeMap::from([(
        DEFAULT_TYPE.into(),
        TypeConfig {
            description:
                "Any incident: mitigate first, then find the cause one hypothesis at a time".into(),
            severity: None,
            service: None,
            checklist: vec![
                item(
                    "Mitigate first: stop the bleeding before you debug",
                    "Roll back, fail over, shed load or switch a feature off; the cause can wait",
                    Some("commander"),
                ),
                item(
                    "Scope the impact: who and what is affected, since when",
                    "Set it with `/incident field name:impact`, so every status post says it",
                    Some("commander"),
                ),
                item(
                    "Ask what changed: deploys, config, traffic, dependencies",
                    "`/deploys` lists what shipped around the start",
                    None,
                ),
                item(
                    "Compare the metrics to their baseline",
                    "`/metrics` shows a query against last week's same hour",
                    None,
                ),
                item(
                    "One hypothesis at a time: state it, test it, note the result",
                    "`/incident note` keeps each one on the timeline",
                    None,
                ),
                item(
                    "Escalate when stuck for 30 minutes",
                    "`/escalate` pages the next team; asking early is cheaper than a long outage",
                    Some("commander"),
                ),
                // Owned by no role: a file may replace [roles] with the commander alone.
                item(
                    "Keep stakeholders informed",
                    "The communications lead, or the commander until there is one: `/incident update` on every change",
                    None,
                ),
            ],
            invite: Vec::new(),
            escalate: None,
            update_every: None,
            fields: Vec::new(),
        },
    )])
}

impl TypeConfig {
    /// The type's default severity, when it names one that parses.
    pub fn default_severity(&self) -> Option<Severity> {
        self.severity.as_deref()?.parse().ok()
    }

    /// What an incident of this type, named `name`, keeps of it in its `Opened` event.
    pub fn playbook(&self, name: &str, values: Vec<(String, String)>) -> Playbook {
        Playbook {
            kind: name.into(),
            items: self
                .checklist
                .iter()
                .map(|i| ItemDef {
                    text: i.text.trim().into(),
                    runbook: i.runbook.clone(),
                    hint: i.hint.clone(),
                    owner: i.owner.clone(),
                })
                .collect(),
            fields: self.fields.iter().map(FieldConfig::def).collect(),
            cadence: self.update_every.and_then(|d| Cadence::every(d.0).ok()),
            values,
        }
    }
}

impl FieldConfig {
    pub fn def(&self) -> FieldDef {
        FieldDef {
            name: self.name.clone(),
            kind: self.kind,
            choices: self.choices.clone(),
            required: self.required,
            public: self.public,
        }
    }
}

fn good_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

pub(super) fn problems(config: &Config) -> Vec<String> {
    let mut out = Vec::new();
    let severities = config.severity_levels();
    for (name, t) in &config.types {
        let at = format!("[types.{name}]");
        if !good_name(name) {
            out.push(format!(
                "{at}: type names are up to 32 lower-case letters, digits, - or _ (they are typed as `type:{name}`)"
            ));
        }
        if let Some(s) = &t.severity {
            match s.parse::<Severity>() {
                Ok(sev) if severities.contains(&sev) => {}
                _ => out.push(format!(
                    "{at} severity = \"{s}\" is not a configured severity; known: {}",
                    severities
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            }
        }
        if let Some(target) = &t.escalate {
            if config.escalation.target(target).is_none() {
                out.push(format!(
                    "{at} escalate = \"{target}\" is not under [escalation.targets]"
                ));
            }
        }
        if let Some(every) = t.update_every {
            if Cadence::every(every.0).is_err() {
                out.push(format!(
                    "{at} update_every = \"{every}\" is more often than once a minute"
                ));
            }
        }
        if t.checklist.len() > MAX_ITEMS {
            out.push(format!(
                "{at} checklist has {} items; at most {MAX_ITEMS} fit under one message",
                t.checklist.len()
            ));
        }
        let mut seen = BTreeSet::new();
        for (i, item) in t.checklist.iter().enumerate() {
            let at = format!("[[types.{name}.checklist]] #{}:", i + 1);
            let text = item.text.trim();
            if text.is_empty() {
                out.push(format!("{at} text is empty"));
            } else if text.chars().count() > crate::domain::playbook::MAX_ITEM_TEXT {
                out.push(format!(
                    "{at} text is longer than {} characters",
                    crate::domain::playbook::MAX_ITEM_TEXT
                ));
            } else if !seen.insert(text.to_lowercase()) {
                out.push(format!(
                    "{at} \u{201c}{text}\u{201d} is on the checklist twice"
                ));
            }
            if let Some(owner) = &item.owner {
                if !config.roles.contains_key(owner) {
                    out.push(format!(
                        "{at} owner = \"{owner}\" is not an incident role; known: {}",
                        config.roles.keys().cloned().collect::<Vec<_>>().join(", ")
                    ));
                }
            }
            if let Some(url) = &item.runbook {
                if let Err(e) = url_like(url) {
                    out.push(format!("{at} runbook {e}"));
                }
            }
        }
        let mut names = BTreeSet::new();
        for (i, f) in t.fields.iter().enumerate() {
            let at = format!("[[types.{name}.fields]] #{}:", i + 1);
            if !good_name(&f.name) {
                out.push(format!(
                    "{at} name = \"{}\": field names are up to 32 lower-case letters, digits, - or _",
                    f.name
                ));
            } else if f.name == IMPACT {
                out.push(format!(
                    "{at} `{IMPACT}` is every incident's own field; name this one otherwise"
                ));
            } else if !names.insert(f.name.clone()) {
                out.push(format!("{at} field `{}` is defined twice", f.name));
            }
            match (f.kind, f.choices.is_empty()) {
                (FieldKind::Choice, true) => {
                    out.push(format!("{at} kind = \"choice\" needs choices = [\"…\", …]"))
                }
                (FieldKind::Choice, false) => {
                    let mut c = BTreeSet::new();
                    if f.choices.iter().any(|x| !c.insert(x.to_lowercase())) {
                        out.push(format!("{at} choices name one twice"));
                    }
                    if f.choices.len() > 25 {
                        out.push(format!(
                            "{at} has {} choices; Discord suggests at most 25",
                            f.choices.len()
                        ));
                    }
                }
                (kind, false) => out.push(format!(
                    "{at} choices are only for kind = \"choice\", not \"{kind}\""
                )),
                _ => {}
            }
        }
    }
    out
}

pub(super) fn summary(config: &Config) -> String {
    let mut s = String::new();
    for (name, t) in &config.types {
        let required = t.fields.iter().filter(|f| f.required).count();
        s.push_str(&format!(
            "type       {name} · {} checklist items · {} fields ({required} required){}\n",
            t.checklist.len(),
            t.fields.len(),
            t.escalate
                .as_deref()
                .map(|e| format!(" · pages {e}"))
                .unwrap_or_default()
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use crate::config::tests::env;
    use crate::config::{Config, Secrets};
    use crate::domain::{FieldKind, Severity};

    #[test]
    fn the_default_type_follows_the_method() {
        let c = Config::default();
        let t = &c.types["default"];
        let texts: Vec<&str> = t.checklist.iter().map(|i| i.text.as_str()).collect();
        assert_eq!(texts.len(), 7);
        assert!(texts[0].starts_with("Mitigate first"));
        assert!(texts.iter().any(|t| t.contains("what changed")));
        assert!(texts.iter().any(|t| t.contains("baseline")));
        assert!(texts.iter().any(|t| t.contains("One hypothesis")));
        assert!(texts.iter().any(|t| t.contains("30 minutes")));
        assert!(texts.last().unwrap().contains("stakeholders"));
        assert!(c.problems(&Secrets::default(), false).is_empty());
    }

    #[test]
    fn a_type_reads_with_its_checklist_and_fields() {
        let toml = r#"
            [escalation.targets.dba]
            roles = [111]
            [types.database]
            description = "Database degraded"
            severity = "SEV2"
            service = "postgres"
            escalate = "dba"
            update_every = "15m"
            invite = [42]
            [[types.database.checklist]]
            text = "Fail over to the replica"
            runbook = "https://wiki.example.com/db-failover"
            hint = "Only when the primary is down"
            owner = "commander"
            [[types.database.fields]]
            name = "cluster"
            kind = "choice"
            choices = ["eu-1", "us-1"]
            required = true
            public = true
        "#;
        let c = Config::from_parts(Some(("t.toml", toml)), &env(&[])).unwrap();
        let t = &c.types["database"];
        assert_eq!(t.default_severity(), Some(Severity(2)));
        assert_eq!(t.checklist[0].owner.as_deref(), Some("commander"));
        assert_eq!(t.fields[0].kind, FieldKind::Choice);
        assert!(c.types.contains_key("default"), "the built-in type stays");
        assert!(c.problems(&Secrets::default(), false).is_empty());
        let p = t.playbook("database", vec![]);
        assert_eq!(p.items.len(), 1);
        assert_eq!(
            p.cadence,
            Some(crate::domain::Cadence::Every { seconds: 900 })
        );
        assert!(c
            .summary()
            .contains("type       database · 1 checklist items"));
    }

    #[test]
    fn a_bad_kind_or_key_is_reported_at_its_line() {
        let toml = "[types.db]\ndescription = \"x\"\n[[types.db.fields]]\nname = \"tier\"\nkind = \"bool\"\n[[types.db.checklist]]\ntext = \"a\"\nowner_role = \"x\"\n";
        let err = Config::from_parts(Some(("t.toml", toml)), &env(&[]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("t.toml: line 5"), "{err}");
        assert!(err.contains("unknown variant `bool`"), "{err}");
        assert!(err.contains("t.toml: line 8"), "{err}");
        assert!(err.contains("did you mean `owner`"), "{err}");
    }

    #[test]
    fn unknown_roles_targets_and_duplicates_are_problems() {
        let toml = r#"
            [types.deploy]
            severity = "SEV9"
            escalate = "nobody"
            [[types.deploy.checklist]]
            text = "Roll back"
            owner = "release-manager"
            [[types.deploy.checklist]]
            text = "roll back"
            runbook = "wiki/rollback"
            [[types.deploy.fields]]
            name = "version"
            choices = ["a"]
            [[types.deploy.fields]]
            name = "region"
            kind = "choice"
            [[types.deploy.fields]]
            name = "impact"
        "#;
        let loaded = Config::read_parts(Some(("t.toml", toml)), &env(&[])).unwrap();
        let problems = crate::preflight::report(&loaded, &Secrets::default(), false);
        let all = problems.join("\n");
        for needle in [
            "t.toml: line 3: [types.deploy] severity = \"SEV9\" is not a configured severity",
            "t.toml: line 4: [types.deploy] escalate = \"nobody\" is not under [escalation.targets]",
            "owner = \"release-manager\" is not an incident role",
            "\u{201c}roll back\u{201d} is on the checklist twice",
            "runbook `wiki/rollback` must start with http",
            "choices are only for kind = \"choice\", not \"text\"",
            "kind = \"choice\" needs choices",
            "`impact` is every incident's own field",
        ] {
            assert!(all.contains(needle), "missing {needle:?} in\n{all}");
        }
        assert!(
            problems
                .iter()
                .filter(|p| p.starts_with("t.toml: line "))
                .count()
                >= 7,
            "each problem at its line:\n{all}"
        );
    }
}
