//! `/incident`: open, update, severity, role, note, action, status, list, stats, resolve, reopen,
//! cadence, public.

use super::{target, when, Delivery, Invocation, Outcome, Reply};
use crate::app::App;
use crate::domain::incident::{require_text, role_title, MAX_TEXT, MAX_TITLE};
use crate::domain::playbook::{Playbook, IMPACT};
use crate::domain::{
    human_duration, Actor, Cadence, Event, EventKind, Incident, IncidentId, RuleError, Severity,
    State, UserRef,
};
use crate::error::{CommandError, UserError};
use crate::message::{Button, ButtonStyle, Post};
use crate::platform::{place_name, ChatError, Place};
use crate::status::{
    effective_cadence, incident_post, next_update, place_of, status_text, status_text_for, view,
};
use crate::store::{JobChange, JobKind};
use chrono::{DateTime, Utc};
use minijinja::context;
use serde::Deserialize;
use std::cell::RefCell;

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
    Stats(StatsArgs),
    Resolve(ResolveArgs),
    Reopen(ReopenArgs),
    Cadence(CadenceArgs),
    Public(PublicArgs),
    Checklist(super::playbook::ChecklistArgs),
    Field(super::playbook::FieldArgs),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenArgs {
    pub title: String,
    /// Required unless the type names a default severity.
    pub severity: Option<String>,
    pub summary: Option<String>,
    pub service: Option<String>,
    pub started: Option<String>,
    #[serde(default)]
    pub drill: bool,
    /// An incident type (`[types.NAME]`); the default type without it.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// The type's fields: `name=value; other=value`.
    pub fields: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateArgs {
    pub message: String,
    pub state: Option<String>,
    /// Who is affected and how, now: replaces the impact every status post shows.
    pub impact: Option<String>,
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
    /// Also file it as an issue in the configured tracker.
    #[serde(default)]
    pub file: bool,
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
    /// Only incidents of this type.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// Only incidents whose field has this value: `cluster=eu-1`.
    pub field: Option<String>,
}

/// `/incident stats [since]`: how many incidents, how fast acknowledged and resolved.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatsArgs {
    pub since: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResolveArgs {
    pub summary: String,
    pub incident: Option<String>,
}

/// Exactly one of `every`, `cron`, `off:true` or `default:true`; Discord cannot say "one of".
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CadenceArgs {
    pub every: Option<String>,
    pub cron: Option<String>,
    #[serde(default)]
    pub off: bool,
    #[serde(default)]
    pub default: bool,
    pub incident: Option<String>,
}

impl CadenceArgs {
    /// The cadence asked for; `None` means the severity's.
    fn cadence(&self) -> Result<Option<Cadence>, RuleError> {
        match (&self.every, &self.cron, self.off, self.default) {
            (Some(every), None, false, false) => Cadence::parse_every(every).map(Some),
            (None, Some(cron), false, false) => Cadence::cron(cron).map(Some),
            (None, None, true, false) => Ok(Some(Cadence::Off)),
            (None, None, false, true) => Ok(None),
            _ => Err(RuleError::BadCadence(
                "give exactly one of every:10m, cron:\"0 */15 * * * *\", off:true or default:true"
                    .into(),
            )),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReopenArgs {
    pub reason: String,
    pub incident: Option<String>,
}

/// `/incident public visible:<bool> [title] [summary]`: the status page's view of an incident.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublicArgs {
    pub visible: bool,
    pub title: Option<String>,
    pub summary: Option<String>,
    pub incident: Option<String>,
}

pub async fn run(app: &App, inv: &Invocation, args: IncidentArgs) -> Result<Outcome, CommandError> {
    match args {
        IncidentArgs::Open(a) => open(app, inv, a).await,
        IncidentArgs::Update(a) => {
            let state = a.state.as_deref().map(str::parse::<State>).transpose()?;
            let message = a.message;
            let impact = a.impact.filter(|s| !s.trim().is_empty());
            change(app, inv, a.incident, move |i| {
                let mut out = Vec::new();
                // The impact first: the status post the update makes shows it.
                if let Some(impact) = impact.as_deref() {
                    if i.field(IMPACT).map(str::trim) != Some(impact.trim()) {
                        out.extend(i.decide_field(IMPACT, impact)?);
                    }
                }
                out.extend(i.decide_update(state, &message)?);
                Ok(out)
            })
            .await
        }
        IncidentArgs::Severity(a) => {
            let level = configured_severity(app, &a.level)?;
            let reason = a.reason;
            change(app, inv, a.incident, move |i| {
                i.decide_severity(level, reason.as_deref())
            })
            .await
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
            if a.file && app.trackers.is_none() {
                return Err(no_tracker().into());
            }
            let (text, owner, file) = (a.text, a.owner, a.file);
            let (mut outcome, inc) = change_returning(app, inv, a.incident, move |i| {
                i.decide_action(&text, owner.clone(), due)
            })
            .await?;
            let item = inc.action_items.len() - 1;
            let filed = if file {
                let actor = Actor::User(inv.user.clone());
                Some(crate::action_items::file(app, &actor, inc.id, item).await)
            } else {
                None
            };
            let post = &mut outcome.reply.post;
            match filed {
                Some(Ok(f)) => post
                    .content
                    .push_str(&format!(" · filed as {} <{}>", f.key, f.url)),
                Some(Err(e)) => {
                    post.content.push_str(&format!(
                        "\n{} Press the button to try again.",
                        e.to_chat("incident action")
                    ));
                    post.buttons = vec![file_button(inc.id, item)];
                }
                None if app.trackers.is_some() => post.buttons = vec![file_button(inc.id, item)],
                None => {}
            }
            Ok(outcome)
        }
        IncidentArgs::Status(a) => status(app, inv, a.incident),
        IncidentArgs::List(a) => list(app, &a),
        IncidentArgs::Checklist(a) => super::playbook::checklist(app, inv, a).await,
        IncidentArgs::Field(a) => super::playbook::field(app, inv, a).await,
        IncidentArgs::Stats(a) => stats(app, a.since.as_deref()),
        IncidentArgs::Resolve(a) => {
            let summary = a.summary;
            change(app, inv, a.incident, move |i| i.decide_resolve(&summary)).await
        }
        IncidentArgs::Reopen(a) => {
            let reason = a.reason;
            change(app, inv, a.incident, move |i| i.decide_reopen(&reason)).await
        }
        IncidentArgs::Cadence(a) => {
            let cadence = a.cadence()?;
            // Whether `off` is allowed depends on the severity as stored, so it is decided in
            // the transaction.
            change(app, inv, a.incident, move |i| {
                i.decide_cadence(cadence.clone(), app.config.cadence_off_allowed(i.severity))
            })
            .await
        }
        IncidentArgs::Public(a) => {
            let (visible, title, summary) = (a.visible, a.title, a.summary);
            change(app, inv, a.incident, move |i| {
                i.decide_public(visible, title.as_deref(), summary.as_deref())
            })
            .await
        }
    }
}

fn configured_severity(app: &App, s: &str) -> Result<Severity, UserError> {
    let known = app.config.severity_levels();
    match s.parse::<Severity>() {
        Ok(sev) if known.contains(&sev) => Ok(sev),
        _ => Err(UserError::UnknownSeverity(
            s.into(),
            known
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
        )),
    }
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

/// An open request whose every field passed the checks.
pub(crate) struct CheckedOpen {
    pub title: String,
    pub severity: Severity,
    pub summary: Option<String>,
    pub service: Option<String>,
    pub started: chrono::DateTime<chrono::Utc>,
    pub drill: bool,
    pub playbook: Option<Box<Playbook>>,
    /// What the type adds to the place and pages at open.
    pub invite: Vec<u64>,
    pub escalate: Option<String>,
}

fn check_open(app: &App, a: &OpenArgs) -> Result<CheckedOpen, CommandError> {
    let optional = |what, v: &Option<String>, max| -> Result<Option<String>, RuleError> {
        v.as_deref()
            .filter(|s| !s.trim().is_empty())
            .map(|s| require_text(what, s, max))
            .transpose()
    };
    let now = app.now();
    let kind = super::playbook::find_type(app, a.kind.as_deref())?;
    let severity = match (
        a.severity.as_deref().filter(|s| !s.trim().is_empty()),
        &kind,
    ) {
        (Some(s), _) => configured_severity(app, s)?,
        (None, Some((_, t))) if t.severity.is_some() => {
            configured_severity(app, t.severity.as_deref().unwrap_or_default())?
        }
        (None, _) => {
            return Err(UserError::Line(format!(
                "say how bad it is: severity:SEV1 … SEV{}{}",
                app.config.severity_levels().last().map_or(4, |s| s.0),
                match &kind {
                    Some((name, _)) => format!(" (the {name} type has no default severity)"),
                    None => String::new(),
                }
            ))
            .into())
        }
    };
    let service = optional("the service", &a.service, 100)?
        .or_else(|| kind.as_ref().and_then(|(_, t)| t.service.clone()));
    let playbook = match &kind {
        Some((name, t)) => {
            let values = super::playbook::open_values(name, t, a.fields.as_deref())?;
            Some(Box::new(super::playbook::playbook(name, t, values)))
        }
        None if a.fields.as_deref().is_some_and(|f| !f.trim().is_empty()) => {
            return Err(UserError::Line(
                "fields: needs an incident type with fields; name one with type:".into(),
            )
            .into())
        }
        None => None,
    };
    Ok(CheckedOpen {
        title: require_text("the title", &a.title, MAX_TITLE)?,
        severity,
        summary: optional("the summary", &a.summary, MAX_TEXT)?,
        service,
        playbook,
        invite: kind
            .as_ref()
            .map(|(_, t)| t.invite.clone())
            .unwrap_or_default(),
        escalate: kind.as_ref().and_then(|(_, t)| t.escalate.clone()),
        started: match a.started.as_deref().filter(|s| !s.trim().is_empty()) {
            Some(s) => when::parse_past(s, now).map_err(UserError::BadTime)?,
            None => now,
        },
        drill: a.drill,
    })
}

/// The checks a command can make before it waits on anything, so that an edge can refuse bad
/// input at once instead of after a deferral.
pub fn precheck(app: &App, args: &IncidentArgs) -> Result<(), CommandError> {
    match args {
        IncidentArgs::Open(a) => check_open(app, a).map(|_| ()),
        IncidentArgs::Action(a) if a.file && app.trackers.is_none() => Err(no_tracker().into()),
        _ => Ok(()),
    }
}

async fn open(app: &App, inv: &Invocation, a: OpenArgs) -> Result<Outcome, CommandError> {
    // Everything is checked before the id is taken, so that bad input leaves no trace.
    let checked = check_open(app, &a)?;
    open_checked(app, Actor::User(inv.user.clone()), checked).await
}

/// Opens an incident from checked fields, by `actor`, who becomes its commander when a person:
/// the one path every declaration takes, typed or from an alert.
pub(crate) async fn open_checked(
    app: &App,
    actor: Actor,
    checked: CheckedOpen,
) -> Result<Outcome, CommandError> {
    let CheckedOpen {
        title,
        severity,
        summary,
        service,
        started,
        drill,
        playbook,
        invite,
        escalate,
    } = checked;
    let now = app.now();

    let id = app.store.reserve_incident_id()?;
    let topic = format!("{id} · {severity} · {title}");
    let place = make_place(app, &place_name(id.0, &title), &topic).await;
    let event = Event {
        at: now,
        actor: actor.clone(),
        kind: EventKind::Opened {
            title,
            severity,
            summary,
            service,
            started,
            channel: place.as_ref().ok().map(|p| p.channel),
            channel_name: place.as_ref().ok().map(|p| p.name.clone()),
            drill,
            playbook,
        },
    };
    let worded = Worded::default();
    let inc = app.record_opened(id, event, |inc, _, _| {
        worded.keep(app, inc.id, now, opening_posts(app, inc))
    })?;
    app.store.flush().await?;
    let posts = worded.take()?;
    let opened = match &place {
        Ok(p) => format!("Opened {id} ({severity}) in {}.", p.mention),
        Err(fix) => format!(
            "Opened {id} ({severity}) without a channel of its own. {fix} Meanwhile, run its commands anywhere with `incident:{id}`."
        ),
    };
    let commander = if actor.user().is_some() {
        " You are the commander; hand over with `/incident role role:commander`."
    } else {
        ""
    };
    let mut reply = format!("{opened}{commander} {}", cadence_note(app, &inc, now)?);
    if let Some(progress) = (!inc.checklist.is_empty()).then(|| inc.progress()) {
        reply = format!(
            "{reply}\nIts {} checklist is posted in its channel ({progress}); tick items there or with `/incident checklist`.",
            inc.kind.as_deref().unwrap_or("incident")
        );
    }
    for line in type_at_open(app, &actor, &inc, &invite, escalate.as_deref()).await {
        reply = format!("{reply}\n{line}");
    }
    if text_unreadable(app, id) {
        reply = format!("{reply}\n{}", crate::postmortem::text_gaps::open_notice());
    }
    Ok(Outcome {
        reply: Reply::public(reply),
        posts,
        incident: Some(id),
    })
}

/// What the incident's type does once it is open: adds its people to the place and pages its
/// escalation target. Each outcome is a line of the reply; the incident is open either way.
async fn type_at_open(
    app: &App,
    actor: &Actor,
    inc: &Incident,
    invite: &[u64],
    escalate: Option<&str>,
) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(channel) = inc.channel {
        let mut failed = 0;
        for user in invite {
            if let Err(e) = app.chat.add_member(channel, *user).await {
                tracing::warn!(incident = %inc.id, user, error = %e, "could not add a member the incident type invites");
                failed += 1;
            }
        }
        if failed > 0 {
            out.push(format!(
                "{failed} of the {} people its type invites could not be added; they can press Join.",
                invite.len()
            ));
        }
    }
    if let Some(target) = escalate {
        let reason = format!(
            "{} incident opened: {}",
            inc.kind.as_deref().unwrap_or("new"),
            inc.title
        );
        let paged = match crate::escalation::ladder(&app.config, target, None) {
            Ok(ladder) => crate::escalation::escalate(app, inc.id, actor, &ladder, &reason)
                .await
                .map(|_| ())
                .map_err(|e| e.to_chat("incident open")),
            Err(e) => Err(e.to_string()),
        };
        match paged {
            Ok(()) => out.push(format!("Paged {target}, as its type says.")),
            Err(e) => out.push(format!(
                "Paging {target} failed: {e} Page with `/escalate`."
            )),
        }
    }
    out
}

/// Whether the commander of a new incident should hear that its channel's text is not being
/// kept (Discord refused the intent); each incident hears it once, here or in its channel.
fn text_unreadable(app: &App, id: IncidentId) -> bool {
    let refused = matches!(
        app.store.open_content_gap(),
        Ok(Some(g)) if g.reason == crate::store::GapReason::Refused
    );
    refused && app.store.tell_content_gap(id).unwrap_or(false)
}

/// The incident's place, or why there is none, worded for the responder: a declaration never
/// fails for want of a channel, since the timeline, the announcement and the commander matter
/// more.
async fn make_place(app: &App, name: &str, topic: &str) -> Result<Place, String> {
    match app.chat.create_place(name, topic).await {
        Ok(p) => Ok(p),
        Err(ChatError::NoPlace(fix)) => {
            tracing::warn!(place = name, fix, "no place for an incident");
            Err(fix)
        }
        Err(e) => {
            let eid = crate::error::error_id();
            tracing::error!(error_id = %eid, place = name, error = %e, "making an incident's place failed");
            Err(format!(
                "Making its channel failed on our side (error id `{eid}`; the team can find it in the bot's log)."
            ))
        }
    }
}

/// The opening post in the incident's channel, with its buttons, and the announcement to the
/// stakeholders.
fn opening_posts(app: &App, inc: &Incident) -> Result<Vec<Delivery>, CommandError> {
    let v = view(app, inc);
    let opening = app.renderer.render(
        "incident_opened.md.j2",
        context! { incident => &v, audience => "responders" },
    )?;
    let announcement = app.renderer.render(
        "incident_opened.md.j2",
        context! { incident => &v, audience => "stakeholders" },
    )?;
    let heading = if inc.drill { "Drill" } else { "" };
    let id = inc.id;
    let mut posts = Vec::new();
    if let Some(channel) = inc.channel {
        posts.push(Delivery {
            channel,
            post: incident_post(app, inc, heading, opening).with_buttons(vec![
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
        });
    }
    if let (Some(channel), false) = (inc.channel, inc.checklist.is_empty()) {
        posts.push(Delivery {
            channel,
            post: super::playbook::checklist_post(app, inc),
        });
    }
    if let Some(ch) = app.chat.stakeholder_channel() {
        posts.push(Delivery {
            channel: ch,
            post: incident_post(app, inc, heading, announcement),
        });
    }
    Ok(posts)
}

/// The posts a command words inside its store transaction, where nothing can be returned but
/// job changes: they are queued there, and kept here for the outcome. A failure to word them is
/// kept too, and reported once the transaction is done.
#[derive(Default)]
struct Worded(RefCell<Option<Result<Vec<Delivery>, CommandError>>>);

impl Worded {
    /// Keeps `posts` and returns the outbox jobs that send them. A transaction may run its
    /// closures more than once; the last run's posts are the ones written.
    fn keep(
        &self,
        app: &App,
        id: IncidentId,
        at: DateTime<Utc>,
        posts: Result<Vec<Delivery>, CommandError>,
    ) -> Vec<JobChange> {
        let changes = match &posts {
            Ok(p) => super::queue(id, at, p, app.chat.stakeholder_channel()),
            Err(_) => Vec::new(),
        };
        *self.0.borrow_mut() = Some(posts);
        changes
    }

    fn take(self) -> Result<Vec<Delivery>, CommandError> {
        self.0.into_inner().unwrap_or_else(|| Ok(Vec::new()))
    }
}

/// When the next scheduled update is due once `changes` are written: as they set it, else as
/// it was.
fn planned_next_update(
    changes: &[JobChange],
    id: IncidentId,
    before: Option<DateTime<Utc>>,
) -> Option<DateTime<Utc>> {
    changes
        .iter()
        .rev()
        .find_map(|c| match c {
            JobChange::Put(job) if job.incident == id && job.kind == JobKind::StatusUpdate => {
                Some(Some(job.runs_at()))
            }
            JobChange::Cancel {
                incident,
                kind: JobKind::StatusUpdate,
            } if *incident == id => Some(None),
            _ => None,
        })
        .unwrap_or(before)
}

/// The "File in tracker" button under action item `item` (from 0) of incident `id`.
pub fn file_button(id: IncidentId, item: usize) -> Button {
    Button {
        custom_id: format!("incident:file:{}:{}", id.0, item + 1),
        label: format!("File #{} in tracker", item + 1),
        style: ButtonStyle::Secondary,
    }
}

pub fn no_tracker() -> UserError {
    UserError::Line(
        "No tracker is set up to file in; an operator adds GitHub Issues or Jira under [trackers] in the configuration."
            .into(),
    )
}

/// Appends what `decide` makes of the target incident with the posts that tell of it, flushes,
/// and words the reply.
async fn change<F>(
    app: &App,
    inv: &Invocation,
    named: Option<String>,
    decide: F,
) -> Result<Outcome, CommandError>
where
    F: Fn(&Incident) -> Result<Vec<EventKind>, RuleError>,
{
    change_returning(app, inv, named, decide)
        .await
        .map(|(o, _)| o)
}

/// As [`change`], with the incident as the change left it.
async fn change_returning<F>(
    app: &App,
    inv: &Invocation,
    named: Option<String>,
    decide: F,
) -> Result<(Outcome, Incident), CommandError>
where
    F: Fn(&Incident) -> Result<Vec<EventKind>, RuleError>,
{
    let inc = target(app, inv, named.as_deref())?;
    let actor = Actor::User(inv.user.clone());
    let now = app.now();
    let who = &inv.user.name;
    // Read before the transaction, which may not read the store outside itself.
    let next_before = next_update(app, &inc)?;
    let worded = Worded::default();
    let (inc, events) = app.record_with(inc.id, &actor, now, decide, |inc, events, planned| {
        let next = planned_next_update(planned, inc.id, next_before);
        let posts = change_posts(app, who, inc, events, next);
        worded.keep(app, inc.id, now, posts)
    })?;
    app.store.flush().await?;
    let posts = worded.take()?;
    Ok((
        Outcome {
            reply: change_reply(app, who, &inc, &events, now)?,
            posts,
            incident: Some(inc.id),
        },
        inc,
    ))
}

/// " (was bob)" when `events` hand a role over from someone.
fn handed_over(events: &[Event]) -> Option<String> {
    events.iter().find_map(|e| match &e.kind {
        EventKind::RoleRelinquished { user, .. } => Some(format!(" (was {})", user.name)),
        _ => None,
    })
}

/// What the channels are told of `events`, just folded into `inc`, by `who`. Runs inside the
/// store transaction: it must not read the store.
fn change_posts(
    app: &App,
    who: &str,
    inc: &Incident,
    events: &[Event],
    next_update: Option<DateTime<Utc>>,
) -> Result<Vec<Delivery>, CommandError> {
    let id = inc.id;
    Ok(match events.last().map(|e| &e.kind) {
        Some(EventKind::StatusPosted { .. }) => {
            // Stakeholders read the public fields only: two renderings of one update.
            let body = status_text(app, inc, false, next_update)?;
            let mut out = deliveries(app, inc, incident_post(app, inc, "Update", body), false);
            if let Some(ch) = app.chat.stakeholder_channel() {
                let body = status_text_for(app, inc, false, next_update, true)?;
                out.push(Delivery {
                    channel: ch,
                    post: incident_post(app, inc, "Update", body),
                });
            }
            out
        }
        Some(EventKind::SeverityChanged { from, to, reason }) => {
            let body = format!(
                "Severity changed from **{from}** to **{to}** by {who}{}",
                reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            );
            deliveries(app, inc, incident_post(app, inc, "Severity", body), true)
        }
        Some(EventKind::RoleAssigned { role, user }) => {
            let mut post = Post::text(format!(
                "{} is now **{}** for {id}{}.",
                app.chat.user_mention(user),
                role_title(role),
                handed_over(events).unwrap_or_default()
            ));
            // Being given a role is the one thing here that should notify that person.
            post.mentions = crate::message::Mentions::users(&[user.id]);
            deliveries(app, inc, post, false)
        }
        Some(EventKind::Resolved { .. }) => {
            let body = app
                .renderer
                .render("resolved.md.j2", context! { incident => view(app, inc) })?;
            deliveries(app, inc, incident_post(app, inc, "Resolved", body), true)
        }
        Some(EventKind::Reopened { reason }) => {
            let body = format!("Reopened by {who}: {reason}\nState is back to **investigating**.");
            deliveries(app, inc, incident_post(app, inc, "Reopened", body), true)
        }
        _ => Vec::new(),
    })
}

/// The answer to `who`, whose command added `events` to `inc`.
fn change_reply(
    app: &App,
    who: &str,
    inc: &Incident,
    events: &[Event],
    now: DateTime<Utc>,
) -> Result<Reply, CommandError> {
    let id = inc.id;
    Ok(match events.last().map(|e| &e.kind) {
        Some(EventKind::StatusPosted { text, .. }) => {
            let state_note = events.iter().find_map(|e| match &e.kind {
                EventKind::StateChanged { from, to } => Some(format!(" ({from} → {to})")),
                _ => None,
            });
            Reply::public(format!(
                "{who} posted an update to {id}{}: {text}",
                state_note.unwrap_or_default()
            ))
        }
        Some(EventKind::SeverityChanged { to, .. }) => Reply::public(format!(
            "{id} is now {to}. {}",
            cadence_note(app, inc, now)?
        )),
        Some(EventKind::RoleAssigned { role, user }) => Reply::public(format!(
            "{} is now {} for {id}{}.",
            user.name,
            role_title(role),
            handed_over(events).unwrap_or_default()
        )),
        Some(EventKind::NoteAdded { text }) => {
            Reply::public(format!("Noted in {id}'s timeline: {text}"))
        }
        Some(EventKind::ActionItemAdded { text, owner, due }) => {
            let mut s = format!("Action item added to {id}: {text}");
            if let Some(o) = owner {
                s.push_str(&format!(" · owner {}", o.name));
            }
            if let Some(d) = due {
                s.push_str(&format!(" · due {}", d.format("%Y-%m-%d")));
            }
            Reply::public(s)
        }
        Some(EventKind::Resolved { .. }) => Reply::public(format!(
            "{id} is resolved after {}. Thank you. `/incident reopen` if it comes back.",
            inc.age(app.now())
        )),
        Some(EventKind::Reopened { .. }) => Reply::public(format!(
            "{id} is reopened and investigating again. {}",
            cadence_note(app, inc, now)?
        )),
        Some(EventKind::CadenceChanged { cadence }) => {
            let whose = match cadence {
                Some(_) => format!("{id}'s own"),
                None => format!("{}'s", inc.severity),
            };
            Reply::public(format!(
                "{who} set {id} to {whose} cadence. {}",
                cadence_note(app, inc, now)?
            ))
        }
        Some(EventKind::PublicChanged { visible, .. }) => {
            let text = if *visible {
                let summary = inc
                    .public_summary()
                    .map(|s| format!(" Impact shown: {s}"))
                    .unwrap_or_default();
                format!(
                    "{id} is listed on the public status page as \u{201c}{}\u{201d}.{summary}",
                    inc.public_title()
                )
            } else {
                format!("{id} is kept off the public status page.")
            };
            Reply::private(text)
        }
        _ => Reply::public(format!("Recorded in {id}.")),
    })
}

/// One sentence on the incident's scheduled updates: how often, and when the next is due.
fn cadence_note(app: &App, inc: &Incident, now: DateTime<Utc>) -> Result<String, CommandError> {
    let Some(cadence) = effective_cadence(&app.config, inc).filter(|_| inc.is_open()) else {
        return Ok(format!(
            "No scheduled status updates for {}; post them with `/incident update`.",
            inc.id
        ));
    };
    let next = match next_update(app, inc)? {
        Some(at) => format!("; the next in {}", human_duration(at - now)),
        None => String::new(),
    };
    Ok(format!("Status updates go out {cadence}{next}."))
}

fn status(app: &App, inv: &Invocation, named: Option<String>) -> Result<Outcome, CommandError> {
    let inc = target(app, inv, named.as_deref())?;
    let body = status_text(app, &inc, false, next_update(app, &inc)?)?;
    let mut times = vec![format!("Duration {}", inc.age(app.now()))];
    for (label, d) in [
        ("TTD", inc.ttd()),
        ("TTA", inc.tta()),
        ("TTM", inc.ttm()),
        ("TTR", inc.ttr()),
    ] {
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

fn list(app: &App, a: &ListArgs) -> Result<Outcome, CommandError> {
    let filter = a.filter.as_deref().unwrap_or("open");
    let kind = a.kind.as_deref().map(str::trim).filter(|s| !s.is_empty());
    let field = match a.field.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(f) => Some(
            f.split_once('=')
                .map(|(n, v)| (n.trim(), v.trim()))
                .ok_or_else(|| {
                    UserError::Line(format!(
                        "`{f}` is not `name=value`; filter with field:cluster=eu-1"
                    ))
                })?,
        ),
        None => None,
    };
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
        .filter(|i| {
            kind.map_or(true, |k| {
                i.kind
                    .as_deref()
                    .is_some_and(|ik| ik.eq_ignore_ascii_case(k))
            })
        })
        .filter(|i| {
            field.map_or(true, |(n, v)| {
                i.fields.iter().any(|(have, value)| {
                    have.eq_ignore_ascii_case(n) && value.eq_ignore_ascii_case(v)
                })
            })
        })
        .collect();
    let mut with: Vec<String> = kind.map(|k| format!("type:{k}")).into_iter().collect();
    with.extend(field.map(|(n, v)| format!("{n}={v}")));
    let filter = match with.is_empty() {
        true => format!("{filter} incidents"),
        false => format!("{filter} incidents with {}", with.join(", ")),
    };
    if incidents.is_empty() {
        return Ok(Outcome {
            reply: Reply::private(format!("No {filter}.")),
            posts: Vec::new(),
            incident: None,
        });
    }
    let lines: Vec<String> = incidents
        .iter()
        .rev()
        .map(|i| {
            let checklist = if i.checklist.is_empty() {
                String::new()
            } else {
                let p = i.progress();
                format!(" · ☑ {} of {}", p.done, p.total)
            };
            format!(
                "**{}** · {} · {} · {} · {} · {}{checklist}",
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

/// Count, MTTA and MTTR of the incidents declared since `since` (all time without it), overall
/// and by severity; drills are left out.
fn stats(app: &App, since: Option<&str>) -> Result<Outcome, CommandError> {
    let since = match since.map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) => Some(super::deploys::parse_since(Some(s), app.now())?),
        None => None,
    };
    let s = crate::postmortem::stats(&app.store.incidents()?, since);
    Ok(Outcome {
        reply: Reply::public(s.to_text()),
        posts: Vec::new(),
        incident: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_structs_refuse_options_the_manifest_lacks() {
        let json = serde_json::json!({"subcommand": "note", "text": "x", "colour": "red"});
        assert!(serde_json::from_value::<IncidentArgs>(json).is_err());
    }
}
