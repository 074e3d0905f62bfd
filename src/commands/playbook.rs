//! Incident types at work: the type an incident opens as, its checklist (`/incident checklist`
//! and the tick buttons under the checklist post) and its custom fields (`/incident field`).

use super::{Invocation, Outcome, Reply, Target};
use crate::app::App;
use crate::config::{TypeConfig, DEFAULT_TYPE};
use crate::domain::playbook::{FieldDef, Item, Playbook, IMPACT};
use crate::domain::{Actor, Incident, IncidentId};
use crate::error::{CommandError, UserError};
use crate::message::{truncate, Button, ButtonStyle, Post};
use crate::status::incident_post;
use serde::Deserialize;

/// The tick button under the checklist post: custom id `checklist:tick:<incident>:<item>`.
pub const TICK: &str = "checklist tick";

/// Discord refuses button labels over 80 characters.
const MAX_BUTTON_LABEL: usize = 80;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TickArgs {
    pub target: Target,
    /// The item's number, from the custom id.
    pub arg: String,
}

/// `/incident checklist [action] [item] [text] [reason]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChecklistArgs {
    pub action: Option<String>,
    pub item: Option<i64>,
    pub text: Option<String>,
    pub reason: Option<String>,
    pub incident: Option<String>,
}

/// `/incident field name:<field> value:<value>`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldArgs {
    pub name: String,
    pub value: String,
    pub incident: Option<String>,
}

/// What `/incident checklist` is asked to do, checked before anything is read.
enum Step {
    Show,
    Tick(u32),
    Untick(u32),
    Add(String),
    Skip(u32, String),
}

impl ChecklistArgs {
    fn step(&self) -> Result<Step, UserError> {
        let item = || match self.item {
            Some(n) if (1..=i64::from(u32::MAX)).contains(&n) => Ok(n as u32),
            Some(n) => Err(UserError::Line(format!(
                "item:{n} is not a checklist item number"
            ))),
            None => Err(UserError::Line(format!(
                "say which item: `/incident checklist action:{} item:2`",
                self.action.as_deref().unwrap_or("tick")
            ))),
        };
        let text = |what: &str| {
            self.text
                .clone()
                .filter(|t| !t.trim().is_empty())
                .ok_or_else(|| UserError::Line(what.to_string()))
        };
        Ok(match self.action.as_deref().unwrap_or("show") {
            "show" => Step::Show,
            "tick" => Step::Tick(item()?),
            "untick" => Step::Untick(item()?),
            "add" => Step::Add(text(
                "say what to add: `/incident checklist action:add text:\"Check the CDN\"`",
            )?),
            "skip" => Step::Skip(
                item()?,
                self.reason.clone().filter(|t| !t.trim().is_empty()).ok_or_else(|| {
                    UserError::Line(
                        "say why it is skipped: `/incident checklist action:skip item:3 reason:\"…\"`"
                            .into(),
                    )
                })?,
            ),
            other => {
                return Err(UserError::Line(format!(
                    "`{other}` is not a checklist action; use show, tick, untick, add or skip"
                )))
            }
        })
    }
}

/// The type `name` (the default type when none is named), or a refusal listing the known ones.
pub fn find_type<'a>(
    app: &'a App,
    name: Option<&str>,
) -> Result<Option<(String, &'a TypeConfig)>, UserError> {
    let types = &app.config.types;
    match name.map(str::trim).filter(|s| !s.is_empty()) {
        Some(n) => match types.get_key_value(&n.to_lowercase()) {
            Some((k, t)) => Ok(Some((k.clone(), t))),
            None => Err(UserError::Line(format!(
                "`{n}` is not an incident type; known: {}",
                types.keys().cloned().collect::<Vec<_>>().join(", ")
            ))),
        },
        None => Ok(types
            .get_key_value(DEFAULT_TYPE)
            .map(|(k, t)| (k.clone(), t))),
    }
}

/// `fields:"cluster=eu-1; tier=gold"` as name/value pairs, each checked against the type.
pub fn open_values(
    type_name: &str,
    t: &TypeConfig,
    given: Option<&str>,
) -> Result<Vec<(String, String)>, CommandError> {
    let defs: Vec<FieldDef> = t.fields.iter().map(|f| f.def()).collect();
    let mut values: Vec<(String, String)> = Vec::new();
    for part in given.unwrap_or_default().split(';') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let Some((name, value)) = part.split_once('=') else {
            return Err(UserError::Line(format!(
                "`{part}` is not `name=value`; give fields as fields:\"name=value; other=value\""
            ))
            .into());
        };
        let name = name.trim();
        let def = if name.eq_ignore_ascii_case(IMPACT) {
            FieldDef::impact()
        } else {
            defs.iter()
                .find(|d| d.name.eq_ignore_ascii_case(name))
                .cloned()
                .ok_or_else(|| {
                    UserError::Line(format!(
                        "a {type_name} incident has no field `{name}`; its fields: {}",
                        field_names(&defs)
                    ))
                })?
        };
        let value = def.check(value)?;
        values.retain(|(n, _)| *n != def.name);
        values.push((def.name, value));
    }
    let missing: Vec<String> = defs
        .iter()
        .filter(|d| d.required && !values.iter().any(|(n, _)| *n == d.name))
        .map(|d| match d.kind {
            crate::domain::FieldKind::Choice => {
                format!("{} (one of {})", d.name, d.choices.join(", "))
            }
            kind => format!("{} ({kind})", d.name),
        })
        .collect();
    if !missing.is_empty() {
        let example = defs
            .iter()
            .filter(|d| d.required)
            .map(|d| format!("{}=…", d.name))
            .collect::<Vec<_>>()
            .join("; ");
        return Err(UserError::Line(format!(
            "a {type_name} incident needs {} before it opens; add fields:\"{example}\"",
            missing.join(", ")
        ))
        .into());
    }
    Ok(values)
}

fn field_names(defs: &[FieldDef]) -> String {
    std::iter::once(IMPACT)
        .chain(defs.iter().map(|d| d.name.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What the `Opened` event keeps of type `name`.
pub fn playbook(name: &str, t: &TypeConfig, values: Vec<(String, String)>) -> Playbook {
    t.playbook(name, values)
}

/// One line per item: its mark, number, text, owner, who settled it when; hint and runbook
/// under it while it is open.
pub fn checklist_text(inc: &Incident) -> String {
    let mut out = Vec::new();
    for (i, item) in inc.checklist.iter().enumerate() {
        out.push(item_line(i + 1, item));
    }
    if out.is_empty() {
        return "No checklist items; add one with `/incident checklist action:add text:…`".into();
    }
    out.push(format!("**Progress:** {}", inc.progress()));
    out.join("\n")
}

fn item_line(n: usize, item: &Item) -> String {
    let owner = item
        .def
        .owner
        .as_deref()
        .map(|o| format!(" · _{}_", crate::domain::incident::role_title(o)))
        .unwrap_or_default();
    let mut line = match (&item.done, &item.skipped) {
        (Some(m), _) => format!(
            "☑ {n}. ~~{}~~{owner} — {} at {}",
            item.def.text,
            m.by.label(),
            m.at.format("%H:%M UTC")
        ),
        (None, Some((m, reason))) => format!(
            "⤼ {n}. {}{owner} — skipped by {}: {reason}",
            item.def.text,
            m.by.label()
        ),
        (None, None) => format!("☐ {n}. **{}**{owner}", item.def.text),
    };
    if !item.settled() {
        if let Some(h) = &item.def.hint {
            line.push_str(&format!("\n   {h}"));
        }
        if let Some(r) = &item.def.runbook {
            line.push_str(&format!("\n   Runbook: {r}"));
        }
    }
    line
}

/// The checklist post: the list, and a button for each item still open.
pub fn checklist_post(app: &App, inc: &Incident) -> Post {
    let heading = match &inc.kind {
        Some(k) => format!("Checklist ({k})"),
        None => "Checklist".into(),
    };
    let buttons = inc
        .checklist
        .iter()
        .enumerate()
        .filter(|(_, item)| !item.settled())
        .take(crate::domain::playbook::MAX_ITEMS)
        .map(|(i, item)| Button {
            custom_id: tick_id(inc.id, i + 1),
            label: truncate(&format!("✓ {}. {}", i + 1, item.def.text), MAX_BUTTON_LABEL)
                .to_string(),
            style: ButtonStyle::Secondary,
        })
        .collect();
    // The owners are incident roles, written as words: nobody is pinged.
    incident_post(app, inc, &heading, checklist_text(inc)).with_buttons(buttons)
}

pub fn tick_id(id: IncidentId, n: usize) -> String {
    format!("checklist:tick:{}:{n}", id.0)
}

/// The `/incident checklist` subcommand.
pub async fn checklist(
    app: &App,
    inv: &Invocation,
    a: ChecklistArgs,
) -> Result<Outcome, CommandError> {
    let step = a.step()?;
    let inc = super::target(app, inv, a.incident.as_deref())?;
    let (inc, events) = match step {
        Step::Show => {
            return Ok(Outcome {
                reply: Reply {
                    post: checklist_post(app, &inc),
                    ephemeral: false,
                },
                posts: Vec::new(),
                incident: Some(inc.id),
            })
        }
        Step::Tick(n) => record(app, inv, inc.id, move |i| i.decide_tick(n)).await?,
        Step::Untick(n) => record(app, inv, inc.id, move |i| i.decide_untick(n)).await?,
        Step::Skip(n, reason) => {
            record(app, inv, inc.id, move |i| i.decide_skip(n, &reason)).await?
        }
        Step::Add(text) => record(app, inv, inc.id, move |i| i.decide_add_item(&text)).await?,
    };
    Ok(Outcome {
        reply: Reply::public(said(&inv.user.name, &inc, &events)),
        posts: Vec::new(),
        incident: Some(inc.id),
    })
}

/// The tick button: the presser did item `arg`.
pub async fn tick(app: &App, inv: &Invocation, a: TickArgs) -> Result<Outcome, CommandError> {
    let Target::Incident(id) = a.target else {
        return Err(UserError::Line("This button is no longer in use.".into()).into());
    };
    let n: u32 = a
        .arg
        .parse()
        .map_err(|_| UserError::Line("This button is no longer in use.".into()))?;
    let (inc, events) = record(app, inv, id, move |i| i.decide_tick(n)).await?;
    Ok(Outcome {
        reply: Reply::public(said(&inv.user.name, &inc, &events)),
        posts: Vec::new(),
        incident: Some(inc.id),
    })
}

/// The `/incident field` subcommand.
pub async fn field(app: &App, inv: &Invocation, a: FieldArgs) -> Result<Outcome, CommandError> {
    let inc = super::target(app, inv, a.incident.as_deref())?;
    let (name, value) = (a.name, a.value);
    let (inc, events) = record(app, inv, inc.id, move |i| i.decide_field(&name, &value)).await?;
    Ok(Outcome {
        reply: Reply::public(said(&inv.user.name, &inc, &events)),
        posts: Vec::new(),
        incident: Some(inc.id),
    })
}

async fn record<F>(
    app: &App,
    inv: &Invocation,
    id: IncidentId,
    decide: F,
) -> Result<(Incident, Vec<crate::domain::Event>), CommandError>
where
    F: Fn(&Incident) -> Result<Vec<crate::domain::EventKind>, crate::domain::RuleError>,
{
    let out = app.record(id, &Actor::User(inv.user.clone()), app.now(), decide)?;
    app.store.flush().await?;
    Ok(out)
}

/// The answer everyone in the channel reads: who did what, and how far the checklist is.
fn said(who: &str, inc: &Incident, events: &[crate::domain::Event]) -> String {
    use crate::domain::EventKind as K;
    let id = inc.id;
    let progress = inc.progress();
    match events.last().map(|e| &e.kind) {
        Some(K::ChecklistTicked { item, text }) => {
            format!("{who} did #{item} of {id}: {text} ({progress})")
        }
        Some(K::ChecklistUnticked { item, text }) => {
            format!("{who} took back #{item} of {id}: {text} ({progress})")
        }
        Some(K::ChecklistSkipped { item, text, reason }) => {
            format!("{who} skipped #{item} of {id}: {text}, because {reason} ({progress})")
        }
        Some(K::ChecklistItemAdded { text }) => format!(
            "{who} added #{} to {id}'s checklist: {text} ({progress})",
            inc.checklist.len()
        ),
        Some(K::FieldSet { name, value }) => format!("{who} set {name} of {id} to {value}"),
        _ => format!("Recorded in {id}."),
    }
}

/// Suggestions for `/incident` options: types at open and in the list, field names and the
/// choices of choice fields.
pub fn autocomplete(app: &App, option: &str, partial: &str) -> Vec<String> {
    let p = partial.trim().to_lowercase();
    let mut out: Vec<String> = match option {
        "type" => app.config.types.keys().cloned().collect(),
        "name" => std::iter::once(IMPACT.to_string())
            .chain(
                app.config
                    .types
                    .values()
                    .flat_map(|t| t.fields.iter().map(|f| f.name.clone())),
            )
            .collect(),
        "value" => app
            .config
            .types
            .values()
            .flat_map(|t| t.fields.iter().flat_map(|f| f.choices.clone()))
            .collect(),
        _ => Vec::new(),
    };
    out.sort();
    out.dedup();
    out.retain(|s| s.to_lowercase().contains(&p));
    out.truncate(25);
    out
}
