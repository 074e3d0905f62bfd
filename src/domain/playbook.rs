//! Playbooks: what an incident took from its type (checklist, custom fields) and how they fold.

use super::{Actor, Cadence, RuleError};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The built-in field every incident has: who is affected and how. The update form sets it.
pub const IMPACT: &str = "impact";
/// Most checklist items one incident may hold: Discord shows at most 25 buttons on a message.
pub const MAX_ITEMS: usize = 25;
pub const MAX_ITEM_TEXT: usize = 200;
pub const MAX_FIELD_VALUE: usize = 500;

/// What an incident took from its type when it was opened. The `Opened` event carries it whole,
/// so that a type renamed or removed later changes nothing for incidents already open.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Playbook {
    /// The type's name, as configured then.
    pub kind: String,
    #[serde(default)]
    pub items: Vec<ItemDef>,
    #[serde(default)]
    pub fields: Vec<FieldDef>,
    /// The type's own update cadence, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cadence: Option<Cadence>,
    /// Values given at open.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<(String, String)>,
}

/// One step of a checklist as the type describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemDef {
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runbook: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// The incident role that owns it; shown with the item, never pinged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldKind {
    #[default]
    Text,
    Choice,
    Number,
    Url,
}

impl std::fmt::Display for FieldKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FieldKind::Text => "text",
            FieldKind::Choice => "choice",
            FieldKind::Number => "number",
            FieldKind::Url => "url",
        })
    }
}

/// A custom field as the type describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldDef {
    pub name: String,
    #[serde(default)]
    pub kind: FieldKind,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub choices: Vec<String>,
    #[serde(default)]
    pub required: bool,
    /// Shown to stakeholders and on the public status page.
    #[serde(default)]
    pub public: bool,
}

impl FieldDef {
    /// The impact field every incident has, whatever its type.
    pub fn impact() -> FieldDef {
        FieldDef {
            name: IMPACT.into(),
            kind: FieldKind::Text,
            choices: Vec::new(),
            required: false,
            public: true,
        }
    }

    /// Checks a value for this field and returns it as it is kept.
    pub fn check(&self, value: &str) -> Result<String, RuleError> {
        let v = value.trim();
        if v.is_empty() {
            return Err(RuleError::Field(format!("`{}` needs a value", self.name)));
        }
        if v.chars().count() > MAX_FIELD_VALUE {
            return Err(RuleError::Field(format!(
                "`{}` is longer than {MAX_FIELD_VALUE} characters",
                self.name
            )));
        }
        match self.kind {
            FieldKind::Text => Ok(v.to_string()),
            FieldKind::Choice => self
                .choices
                .iter()
                .find(|c| c.eq_ignore_ascii_case(v))
                .cloned()
                .ok_or_else(|| {
                    RuleError::Field(format!(
                        "`{v}` is not a choice of `{}`; pick one of: {}",
                        self.name,
                        self.choices.join(", ")
                    ))
                }),
            FieldKind::Number => v
                .parse::<f64>()
                .ok()
                .filter(|n| n.is_finite())
                .map(|_| v.to_string())
                .ok_or_else(|| {
                    RuleError::Field(format!("`{}` takes a number, not `{v}`", self.name))
                }),
            FieldKind::Url => {
                if (v.starts_with("https://") || v.starts_with("http://"))
                    && !v.contains(char::is_whitespace)
                {
                    Ok(v.to_string())
                } else {
                    Err(RuleError::Field(format!(
                        "`{}` takes a link starting with https://, not `{v}`",
                        self.name
                    )))
                }
            }
        }
    }
}

/// Who did something to an item, and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mark {
    pub by: Actor,
    pub at: DateTime<Utc>,
}

/// One checklist item of an incident, with what happened to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    #[serde(flatten)]
    pub def: ItemDef,
    /// Added during the incident rather than by its type.
    #[serde(default)]
    pub ad_hoc: bool,
    #[serde(default)]
    pub done: Option<Mark>,
    #[serde(default)]
    pub skipped: Option<(Mark, String)>,
}

impl Item {
    pub fn new(def: ItemDef, ad_hoc: bool) -> Item {
        Item {
            def,
            ad_hoc,
            done: None,
            skipped: None,
        }
    }

    /// Done or skipped: nothing more to do for it.
    pub fn settled(&self) -> bool {
        self.done.is_some() || self.skipped.is_some()
    }
}

/// "4 of 7" done, skipped ones counted apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Progress {
    pub done: usize,
    pub skipped: usize,
    pub total: usize,
}

impl std::fmt::Display for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} of {} done", self.done, self.total)?;
        if self.skipped > 0 {
            write!(f, ", {} skipped", self.skipped)?;
        }
        Ok(())
    }
}

pub fn progress(items: &[Item]) -> Progress {
    Progress {
        done: items.iter().filter(|i| i.done.is_some()).count(),
        skipped: items.iter().filter(|i| i.skipped.is_some()).count(),
        total: items.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Event, EventKind, Incident, IncidentId, Severity, UserRef};
    use chrono::TimeZone;

    fn t(min: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 21, 10, 0, 0).unwrap() + chrono::Duration::minutes(min)
    }

    fn user(id: u64, name: &str) -> Actor {
        Actor::User(UserRef::new(id, name))
    }

    fn item(text: &str, owner: Option<&str>) -> ItemDef {
        ItemDef {
            text: text.into(),
            runbook: None,
            hint: None,
            owner: owner.map(Into::into),
        }
    }

    fn opened() -> Incident {
        let playbook = Playbook {
            kind: "database".into(),
            items: vec![
                item("Fail over", Some("commander")),
                item("Check locks", None),
                item("Tell support", Some("communications")),
            ],
            fields: vec![FieldDef {
                name: "cluster".into(),
                kind: FieldKind::Choice,
                choices: vec!["eu-main".into(), "us-main".into()],
                required: true,
                public: true,
            }],
            cadence: Some(Cadence::Every { seconds: 900 }),
            values: vec![("cluster".into(), "eu-main".into())],
        };
        let ev = Event {
            at: t(0),
            actor: user(1, "alice"),
            kind: EventKind::Opened {
                title: "Primary down".into(),
                severity: Severity(2),
                summary: Some("writes fail".into()),
                service: None,
                started: t(0),
                channel: None,
                channel_name: None,
                drill: false,
                playbook: Some(Box::new(playbook)),
            },
        };
        Incident::from_opened(IncidentId(1), &ev).unwrap()
    }

    fn apply(inc: &mut Incident, at: i64, who: Actor, kinds: Vec<EventKind>) {
        for kind in kinds {
            inc.apply(&Event {
                at: t(at),
                actor: who.clone(),
                kind,
            });
        }
    }

    #[test]
    fn fields_are_checked_by_kind() {
        let mut def = FieldDef::impact();
        assert_eq!(def.check("  EU checkout  ").unwrap(), "EU checkout");
        assert!(def.check("   ").is_err());
        def.kind = FieldKind::Number;
        assert_eq!(def.check("42.5").unwrap(), "42.5");
        assert!(def.check("lots").is_err());
        assert!(def.check("NaN").is_err());
        def.kind = FieldKind::Url;
        assert!(def.check("https://grafana.example.com/d/1").is_ok());
        assert!(def.check("grafana/d/1").is_err());
        def.kind = FieldKind::Choice;
        def.choices = vec!["eu-main".into()];
        assert_eq!(
            def.check("EU-MAIN").unwrap(),
            "eu-main",
            "kept as configured"
        );
        assert!(def
            .check("mars")
            .unwrap_err()
            .to_string()
            .contains("eu-main"));
    }

    #[test]
    fn the_checklist_folds_ticks_skips_and_additions() {
        let mut inc = opened();
        assert_eq!(inc.kind.as_deref(), Some("database"));
        assert_eq!(inc.cadence, Some(Cadence::Every { seconds: 900 }));
        assert_eq!(inc.field("cluster"), Some("eu-main"));
        assert_eq!(inc.impact(), Some("writes fail"), "the summary until set");
        assert_eq!(inc.progress().to_string(), "0 of 3 done");

        let ev = inc.decide_tick(1).unwrap();
        apply(&mut inc, 5, user(1, "alice"), ev);
        let ev = inc.decide_tick(2).unwrap();
        apply(&mut inc, 6, user(2, "bob"), ev);
        assert_eq!(inc.times.acknowledged, Some(t(5)), "a tick is a response");
        let done = inc.checklist[1].done.as_ref().unwrap();
        assert_eq!((done.by.label(), done.at), ("bob".to_string(), t(6)));
        assert!(inc
            .decide_tick(1)
            .unwrap_err()
            .to_string()
            .contains("already done (alice, 10:05 UTC)"));
        assert!(inc
            .decide_tick(9)
            .unwrap_err()
            .to_string()
            .contains("items 1 to 3"));
        assert!(inc.decide_tick(0).is_err());

        let ev = inc.decide_untick(2).unwrap();
        apply(&mut inc, 7, user(2, "bob"), ev);
        assert!(inc.decide_untick(2).is_err());
        assert!(inc.decide_skip(1, "x").is_err(), "done: untick first");
        assert!(inc.decide_skip(3, "  ").is_err(), "a reason is needed");
        let ev = inc.decide_skip(3, "support saw the banner").unwrap();
        apply(&mut inc, 8, user(1, "alice"), ev);
        assert!(inc.decide_skip(3, "again").is_err());
        let ev = inc.decide_add_item("Check backups").unwrap();
        apply(&mut inc, 9, user(1, "alice"), ev);
        assert!(inc.checklist[3].ad_hoc);
        assert!(
            inc.decide_add_item("check BACKUPS").is_err(),
            "no duplicates"
        );
        assert_eq!(inc.progress().to_string(), "1 of 4 done, 1 skipped");

        // Ticking a skipped item settles it as done.
        let ev = inc.decide_tick(3).unwrap();
        apply(&mut inc, 10, user(2, "bob"), ev);
        assert!(inc.checklist[3 - 1].skipped.is_none());
        assert_eq!(inc.progress().to_string(), "2 of 4 done");
    }

    #[test]
    fn fields_and_the_impact_are_set_by_name() {
        let mut inc = opened();
        let ev = inc.decide_field("Impact", "EU writes fail").unwrap();
        apply(&mut inc, 1, user(1, "alice"), ev);
        assert_eq!(inc.impact(), Some("EU writes fail"));
        assert_eq!(inc.public_summary(), Some("EU writes fail"));
        let ev = inc.decide_field("cluster", "us-main").unwrap();
        apply(&mut inc, 2, user(1, "alice"), ev);
        assert_eq!(inc.field("cluster"), Some("us-main"));
        assert_eq!(inc.public_fields(), vec![("cluster", "us-main")]);
        assert!(inc.decide_field("cluster", "us-main").is_err(), "no change");
        assert!(inc
            .decide_field("region", "eu")
            .unwrap_err()
            .to_string()
            .contains("its fields: impact, cluster"));
        // Fields may be set after the incident is resolved; the checklist may not change.
        let ev = inc.decide_resolve("failed over").unwrap();
        apply(&mut inc, 3, user(1, "alice"), ev);
        assert!(inc.decide_field("cluster", "eu-main").is_ok());
        assert!(inc.decide_tick(2).is_err());
    }

    #[test]
    fn incidents_stored_before_types_still_read() {
        let old = serde_json::json!({
            "at": "2026-11-21T10:00:00Z",
            "actor": {"type": "system"},
            "kind": {"event": "opened", "title": "x", "severity": 2, "summary": null,
                     "service": null, "started": "2026-11-21T10:00:00Z", "channel": null,
                     "channel_name": null}
        });
        let ev: Event = serde_json::from_value(old).unwrap();
        let inc = Incident::from_opened(IncidentId(1), &ev).unwrap();
        assert!(inc.checklist.is_empty() && inc.kind.is_none());
        let cached = serde_json::to_value(&inc).unwrap();
        let mut stripped = cached.as_object().unwrap().clone();
        for k in ["kind", "checklist", "field_defs", "fields"] {
            stripped.remove(k);
        }
        let back: Incident = serde_json::from_value(stripped.into()).unwrap();
        assert_eq!(back, inc);
    }
}
