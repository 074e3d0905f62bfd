//! `/incident`: open, update, severity, role, note, action, status, list, resolve, reopen.

use super::{when, Delivery, Invocation, Outcome, Reply};
use crate::app::App;
use crate::chat::{place_name, Button, ButtonStyle, Post};
use crate::domain::incident::{require_text, MAX_TEXT, MAX_TITLE};
use crate::domain::{Actor, Event, EventKind, Incident, IncidentId, RuleError, Severity, State, UserRef};
use crate::error::{CommandError, UserError};
use crate::render::IncidentView;
use minijinja::context;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(tag = "subcommand", rename_all = "snake_case")]
pub enum IncidentArgs {
    Open(OpenArgs),
    Update(UpdateArgs),
    Severity(SeverityArgs),
    Role(RoleArgs),
    Note(NoteArgs),
    Action(ActionArgs),
    Status(StatusArgs),
    List(ListArgs),
    Resolve(ResolveArgs),
    Reopen(ReopenArgs),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenArgs {
    pub title: String,
    pub severity: String,
    pub summary: Option<String>,
    pub service: Option<String>,
    pub started: Option<String>,
    #[serde(default)]
    pub drill: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateArgs {
    pub message: String,
    pub state: Option<String>,
    pub incident: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeverityArgs {
    pub level: String,
    pub reason: Option<String>,
    pub incident: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleArgs {
    pub role: String,
    pub user: UserRef,
    pub incident: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoteArgs {
    pub text: String,
    pub incident: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionArgs {
    pub text: String,
    pub owner: Option<UserRef>,
    pub due: Option<String>,
    pub incident: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusArgs {
    pub incident: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListArgs {
    pub filter: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResolveArgs {
    pub summary: String,
    pub incident: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReopenArgs {
    pub reason: String,
    pub incident: Option<String>,
}

pub async fn run(app: &App, inv: &Invocation, args: IncidentArgs) -> Result<Outcome, CommandError> {
    match args {
        IncidentArgs::Open(a) => open(app, inv, a).await,
        IncidentArgs::Update(a) => {
            let state = a.state.as_deref().map(str::parse::<State>).transpose()?;
            let message = a.message;
            change(app, inv, a.incident, move |i| i.decide_update(state, &message)).await
        }
        IncidentArgs::Severity(a) => {
            let level = configured_severity(app, &a.level)?;
            let reason = a.reason;
            change(app, inv, a.incident, move |i| i.decide_severity(level, reason.as_deref())).await
        }
        IncidentArgs::Role(a) => {
            if !app.config.roles.contains_key(&a.role) {
                let known: Vec<&str> = app.config.roles.keys().map(String::as_str).collect();
                return Err(UserError::UnknownRole(a.role, known.join(", ")).into());
            }
            let (role, user) = (a.role, a.user);
            change(app, inv, a.incident, move |i| i.decide_role(&role, &user)).await
        }
        IncidentArgs::Note(a) => {
            let text = a.text;
            change(app, inv, a.incident, move |i| i.decide_note(&text)).await
        }
        IncidentArgs::Action(a) => {
            let due = a
                .due
                .as_deref()
                .map(|d| when::parse_due(d, app.now()))
                .transpose()
                .map_err(UserError::BadTime)?;
            let (text, owner) = (a.text, a.owner);
            change(app, inv, a.incident, move |i| i.decide_action(&text, owner.clone(), due)).await
        }
        IncidentArgs::Status(a) => status(app, inv, a.incident),
        IncidentArgs::List(a) => list(app, a.filter.as_deref()),
        IncidentArgs::Resolve(a) => {
            let summary = a.summary;
            change(app, inv, a.incident, move |i| i.decide_resolve(&summary)).await
        }
        IncidentArgs::Reopen(a) => {
            let reason = a.reason;
            change(app, inv, a.incident, move |i| i.decide_reopen(&reason)).await
        }
    }
}

fn configured_severity(app: &App, s: &str) -> Result<Severity, UserError> {
    let known = app.config.severity_levels();
    match s.parse::<Severity>() {
        Ok(sev) if known.contains(&sev) => Ok(sev),
        _ => Err(UserError::UnknownSeverity(
            s.into(),
            known.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "),
        )),
    }
}

/// The incident a command is about: named with `incident:`, or the one whose channel it ran in.
pub fn target(app: &App, inv: &Invocation, named: Option<&str>) -> Result<Incident, CommandError> {
    let id = match named.map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) => s.parse::<IncidentId>()?,
        None => match inv.channel {
            Some(ch) => app
                .store
                .incident_by_channel(ch)?
                .ok_or(UserError::NoIncidentHere)?,
            None => return Err(UserError::NoIncidentHere.into()),
        },
    };
    Ok(app.store.incident(id)?.ok_or(UserError::NoSuchIncident(id))?)
}

fn place_of(app: &App, inc: &Incident) -> String {
    match (inc.channel, &inc.channel_name) {
        (Some(ch), _) => app.chat.channel_mention(ch),
        (None, Some(name)) => format!("#{name}"),
        (None, None) => inc.id.to_string(),
    }
}

fn view(app: &App, inc: &Incident) -> IncidentView {
    IncidentView::new(inc, &app.config, place_of(app, inc), app.now())
}

/// An embed in the incident's colours, titled with its id and title.
fn incident_post(app: &App, inc: &Incident, heading: &str, body: String) -> Post {
    let colour = app
        .config
        .severity(inc.severity)
        .and_then(|s| s.colour_value());
    let title = if heading.is_empty() {
        format!("{} · {}", inc.id, inc.title)
    } else {
        format!("{heading} · {} · {}", inc.id, inc.title)
    };
    Post::embed(title, body, colour).fit_limits()
}

/// A post to the incident's channel and, when `stakeholders`, to the stakeholder channel too.
fn deliveries(app: &App, inc: &Incident, post: Post, stakeholders: bool) -> Vec<Delivery> {
    let mut out = Vec::new();
    if let Some(ch) = inc.channel {
        out.push(Delivery {
            channel: ch,
            post: post.clone(),
        });
    }
    if stakeholders {
        if let Some(ch) = app.chat.stakeholder_channel() {
            out.push(Delivery { channel: ch, post });
        }
    }
    out
}

async fn open(app: &App, inv: &Invocation, a: OpenArgs) -> Result<Outcome, CommandError> {
    // Everything is checked before the id is taken, so that bad input leaves no trace.
    let title = require_text("the title", &a.title, MAX_TITLE)?;
    let severity = configured_severity(app, &a.severity)?;
    let optional = |what, v: Option<String>, max| -> Result<Option<String>, RuleError> {
        v.filter(|s| !s.trim().is_empty())
            .map(|s| require_text(what, &s, max))
            .transpose()
    };
    let summary = optional("the summary", a.summary, MAX_TEXT)?;
    let service = optional("the service", a.service, 100)?;
    let now = app.now();
    let started = match a.started.as_deref().filter(|s| !s.trim().is_empty()) {
        Some(s) => when::parse_past(s, now).map_err(UserError::BadTime)?,
        None => now,
    };

    let id = app.store.reserve_incident_id()?;
    let topic = format!("{id} · {severity} · {title}");
    let place = app.chat.create_place(&place_name(id.0, &title), &topic).await?;
    let event = Event {
        at: now,
        actor: Actor::User(inv.user.clone()),
        kind: EventKind::Opened {
            title,
            severity,
            summary,
            service,
            started,
            channel: Some(place.channel),
            channel_name: Some(place.name.clone()),
            drill: a.drill,
        },
    };
    let inc = app.store.create_incident(id, event)?;
    app.store.flush().await?;

    let v = view(app, &inc);
    let opening = app.renderer.render(
        "incident_opened.md.j2",
        context! { incident => &v, audience => "responders" },
    )?;
    let announcement = app.renderer.render(
        "incident_opened.md.j2",
        context! { incident => &v, audience => "stakeholders" },
    )?;
    let heading = if inc.drill { "Drill" } else { "" };
    let mut posts = vec![Delivery {
        channel: place.channel,
        post: incident_post(app, &inc, heading, opening).with_buttons(vec![
            Button {
                custom_id: format!("incident:join:{}", id.0),
                label: "Join".into(),
                style: ButtonStyle::Primary,
            },
            Button {
                custom_id: format!("incident:update:{}", id.0),
                label: "Post update".into(),
                style: ButtonStyle::Secondary,
            },
        ]),
    }];
    if let Some(ch) = app.chat.stakeholder_channel() {
        posts.push(Delivery {
            channel: ch,
            post: incident_post(app, &inc, heading, announcement),
        });
    }
    Ok(Outcome {
        reply: Reply::public(format!(
            "Opened {id} ({severity}) in {}. You are the commander; hand over with `/incident role role:commander`.",
            place.mention
        )),
        posts,
        incident: Some(id),
    })
}

/// Appends what `decide` makes of the target incident, flushes, and words the posts and reply.
async fn change<F>(
    app: &App,
    inv: &Invocation,
    named: Option<String>,
    decide: F,
) -> Result<Outcome, CommandError>
where
    F: Fn(&Incident) -> Result<Vec<EventKind>, RuleError>,
{
    let inc = target(app, inv, named.as_deref())?;
    let actor = Actor::User(inv.user.clone());
    let (inc, events) = app.store.append(inc.id, &actor, app.now(), decide)?;
    app.store.flush().await?;
    let who = &inv.user.name;
    let id = inc.id;

    let mut posts = Vec::new();
    let reply;
    let last = events.last().map(|e| &e.kind);
    match last {
        Some(EventKind::StatusPosted { text, .. }) => {
            let body = app.renderer.render(
                "status_update.md.j2",
                context! { incident => view(app, &inc), automated => false },
            )?;
            let state_note = events.iter().find_map(|e| match &e.kind {
                EventKind::StateChanged { from, to } => Some(format!(" ({from} → {to})")),
                _ => None,
            });
            posts = deliveries(
                app,
                &inc,
                incident_post(app, &inc, "Update", body),
                true,
            );
            reply = Reply::public(format!(
                "{who} posted an update to {id}{}: {text}",
                state_note.unwrap_or_default()
            ));
        }
        Some(EventKind::SeverityChanged { from, to, reason }) => {
            let body = format!(
                "Severity changed from **{from}** to **{to}** by {who}{}",
                reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default()
            );
            posts = deliveries(app, &inc, incident_post(app, &inc, "Severity", body), true);
            reply = Reply::public(format!("{id} is now {to}."));
        }
        Some(EventKind::RoleAssigned { role, user }) => {
            let handed = events.iter().find_map(|e| match &e.kind {
                EventKind::RoleRelinquished { user, .. } => Some(format!(" (was {})", user.name)),
                _ => None,
            });
            let mut post = Post::text(format!(
                "{} is now the **{role}** of {id}{}.",
                app.chat.user_mention(user),
                handed.clone().unwrap_or_default()
            ));
            // Being given a role is the one thing here that should notify that person.
            post.mentions = crate::chat::Mentions::users(&[user.id]);
            posts = deliveries(app, &inc, post, false);
            reply = Reply::public(format!(
                "{} is now the {role} of {id}{}.",
                user.name,
                handed.unwrap_or_default()
            ));
        }
        Some(EventKind::NoteAdded { text }) => {
            reply = Reply::public(format!("Noted in {id}'s timeline: {text}"));
        }
        Some(EventKind::ActionItemAdded { text, owner, due }) => {
            let mut s = format!("Action item added to {id}: {text}");
            if let Some(o) = owner {
                s.push_str(&format!(" · owner {}", o.name));
            }
            if let Some(d) = due {
                s.push_str(&format!(" · due {}", d.format("%Y-%m-%d")));
            }
            reply = Reply::public(s);
        }
        Some(EventKind::Resolved { .. }) => {
            let body = app
                .renderer
                .render("resolved.md.j2", context! { incident => view(app, &inc) })?;
            posts = deliveries(app, &inc, incident_post(app, &inc, "Resolved", body), true);
            reply = Reply::public(format!(
                "{id} is resolved after {}. Thank you. `/incident reopen` if it comes back.",
                inc.age(app.now())
            ));
        }
        Some(EventKind::Reopened { reason }) => {
            let body = format!("Reopened by {who}: {reason}\nState is back to **investigating**.");
            posts = deliveries(app, &inc, incident_post(app, &inc, "Reopened", body), true);
            reply = Reply::public(format!("{id} is reopened and investigating again."));
        }
        _ => reply = Reply::public(format!("Recorded in {id}.")),
    }
    Ok(Outcome {
        reply,
        posts,
        incident: Some(id),
    })
}

fn status(app: &App, inv: &Invocation, named: Option<String>) -> Result<Outcome, CommandError> {
    let inc = target(app, inv, named.as_deref())?;
    let body = app.renderer.render(
        "status_update.md.j2",
        context! { incident => view(app, &inc), automated => false },
    )?;
    let mut times = vec![format!("Duration {}", inc.age(app.now()))];
    for (label, d) in [("TTD", inc.ttd()), ("TTA", inc.tta()), ("TTM", inc.ttm()), ("TTR", inc.ttr())] {
        if let Some(d) = d {
            times.push(format!("{label} {}", crate::domain::human_duration(d)));
        }
    }
    let mut text = format!("{body}\n**Times:** {}", times.join(" · "));
    if let Some(r) = &inc.resolution {
        text.push_str(&format!("\n**Resolution:** {r}"));
    }
    Ok(Outcome {
        reply: Reply {
            post: incident_post(app, &inc, "Status", text),
            ephemeral: false,
        },
        posts: Vec::new(),
        incident: Some(inc.id),
    })
}

fn list(app: &App, filter: Option<&str>) -> Result<Outcome, CommandError> {
    let filter = filter.unwrap_or("open");
    let now = app.now();
    let incidents: Vec<Incident> = app
        .store
        .incidents()?
        .into_iter()
        .filter(|i| match filter {
            "resolved" => !i.is_open(),
            "all" => true,
            _ => i.is_open(),
        })
        .collect();
    if incidents.is_empty() {
        return Ok(Outcome {
            reply: Reply::private(format!("No {filter} incidents.")),
            posts: Vec::new(),
            incident: None,
        });
    }
    let lines: Vec<String> = incidents
        .iter()
        .rev()
        .map(|i| {
            format!(
                "**{}** · {} · {} · {} · {} · {}",
                i.id,
                i.severity,
                i.state,
                i.title,
                place_of(app, i),
                i.age(now)
            )
        })
        .collect();
    Ok(Outcome {
        reply: Reply {
            post: Post::text(lines.join("\n")).fit_limits(),
            ephemeral: true,
        },
        posts: Vec::new(),
        incident: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::options::{kind, manifest, to_json};
    use crate::commands::{CommandInput, InputOption, InputValue};
    use serde_json::Value;

    fn sample(spec: &Value) -> InputValue {
        if let Some(c) = spec["choices"].as_array() {
            return InputValue::Raw(c[0]["value"].as_str().unwrap().into());
        }
        match spec["type"].as_u64().unwrap() {
            kind::USER => InputValue::User(UserRef::new(7, "bob")),
            kind::BOOLEAN => InputValue::Bool(true),
            kind::INTEGER => InputValue::Integer(1),
            _ => InputValue::String("x".into()),
        }
    }

    /// Every subcommand of the manifest, with only its required options and with all of them,
    /// goes through the same option-tree → JSON → serde path that Discord and the console use.
    #[test]
    fn every_manifest_subcommand_deserializes_into_its_args() {
        let m = manifest("incident").unwrap();
        for sub in m["options"].as_array().unwrap() {
            let specs = sub["options"].as_array().cloned().unwrap_or_default();
            for all in [false, true] {
                let opts = specs
                    .iter()
                    .filter(|s| all || s["required"] == true)
                    .map(|s| InputOption {
                        name: s["name"].as_str().unwrap().into(),
                        value: sample(s),
                    })
                    .collect();
                let input = CommandInput {
                    name: "incident".into(),
                    options: vec![InputOption {
                        name: sub["name"].as_str().unwrap().into(),
                        value: InputValue::Sub(opts),
                    }],
                };
                let json = to_json(&input).unwrap();
                if let Err(e) = serde_json::from_value::<IncidentArgs>(json.clone()) {
                    panic!("{} ({json}): {e}", input.path());
                }
            }
        }
    }

    #[test]
    fn args_structs_refuse_options_the_manifest_lacks() {
        let json = serde_json::json!({"subcommand": "note", "text": "x", "colour": "red"});
        assert!(serde_json::from_value::<IncidentArgs>(json).is_err());
    }
}
