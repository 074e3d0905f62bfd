//! Alerts from Alertmanager and Grafana: what each group becomes (its route), its triage post
//! and buttons (Declare, Attach, Dismiss), and alert events on the incidents they belong to.

use super::incident::{self as incident_cmd, open_checked, CheckedOpen, IncidentArgs};
use super::{queue, Delivery, Invocation, Outcome, Reply, Target};
use crate::app::App;
use crate::config::RouteAction;
use crate::domain::incident::{MAX_TEXT, MAX_TITLE};
use crate::domain::{Actor, EventKind, Incident, IncidentId};
use crate::error::{CommandError, UserError};
use crate::integrations::alertmanager::{self as am, Status};
use crate::message::{truncate, Button, ButtonStyle, Mentions, Post};
use crate::store::{AlertGroup, AlertRecord, FloodWindow, Triage};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use std::time::Duration;

/// The first part of every alert button's custom id.
pub const GROUP: &str = "alert";
/// The triage buttons, whose custom id ends in an alert group's number (`alert:declare:7`), or
/// for an attach, the group and the incident (`alert:attach:7.3`).
pub const TRIAGE_ACTIONS: &[&str] = &["declare", "attach", "dismiss"];
pub const DECLARE: &str = "alert declare";
pub const ATTACH: &str = "alert attach";
pub const DISMISS: &str = "alert dismiss";
/// The commander's buttons once every alert of an incident resolved, and on a resolved
/// incident whose alert fires again. Their custom id ends in the incident's id.
pub const MONITOR: &str = "alert monitor";
pub const RESOLVE: &str = "alert resolve";
pub const REOPEN: &str = "alert reopen";

/// How long a flood's groups gather before their summary goes out: Discord takes about five
/// messages in five seconds per channel, and the flood's first posts just took them.
pub const SUMMARY_DELAY: Duration = Duration::from_secs(5);
/// How many alerts of a group a triage post lists; the rest are counted.
const LISTED_ALERTS: usize = 10;
/// How many open incidents an Attach offers (five rows of five buttons, less room to spare).
const ATTACH_CHOICES: usize = 20;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertButtonArgs {
    pub target: Target,
}

/// `7` or `7.3` (group 7, incident 3).
pub fn parse_target(arg: &str) -> Option<Target> {
    let (group, incident) = match arg.split_once('.') {
        Some((g, i)) => (g, Some(i.parse::<IncidentId>().ok()?)),
        None => (arg, None),
    };
    let group = group.parse::<u64>().ok().filter(|n| *n > 0)?;
    Some(Target::Alert { group, incident })
}

/// What one delivery did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ingested {
    /// Seen before exactly (a retry, a repeat): nothing changed.
    Unchanged,
    /// Its route ignores it.
    Ignored,
    /// Offered in the triage channel, in a post of its own (new or edited).
    Triaged,
    /// Part of a flood, named in a summary post.
    Summarized,
    /// Opened as an incident at once.
    Declared(IncidentId),
    /// Recorded on the incident it belongs to.
    Recorded(IncidentId),
    /// Kept with nothing to say: dismissed, resolved before anyone saw it, or no channel.
    Kept,
}

impl std::fmt::Display for Ingested {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ingested::Unchanged => f.write_str("unchanged"),
            Ingested::Ignored => f.write_str("ignored"),
            Ingested::Triaged => f.write_str("triaged"),
            Ingested::Summarized => f.write_str("summarized"),
            Ingested::Declared(id) => write!(f, "declared {id}"),
            Ingested::Recorded(id) => write!(f, "recorded on {id}"),
            Ingested::Kept => f.write_str("kept"),
        }
    }
}

/// Takes one delivery: routes a new group, merges what its alerts say now, and tells whoever
/// needs to know. A delivery that says nothing new changes nothing, across restarts. The group
/// is stored only after its post went out, so that a failure is retried by the sender.
pub async fn ingest(app: &App, d: &am::Delivery, source: &str) -> Result<Ingested, CommandError> {
    let mut turn = app.store.alerts_turn().await;
    let now = app.now();
    let stored = app.store.alert_group(d.group_key())?;
    let (mut group, action) = match &stored {
        Some(g) => (g.clone(), None),
        None => {
            let (g, a) = new_group(app, d, source, now)?;
            (g, Some(a))
        }
    };
    refresh(&mut group, d);
    let changes = merge(&mut group, d);
    if stored.as_ref() == Some(&group) {
        return Ok(Ingested::Unchanged);
    }
    let actor = Actor::Webhook {
        source: source.into(),
    };
    let outcome = if group.ignored {
        Ingested::Ignored
    } else if let Some(id) = group.incident {
        on_incident(app, &group, id, &changes, &actor).await?;
        edit_triage(app, &group).await;
        Ingested::Recorded(id)
    } else if group.dismissed_by.is_some() {
        edit_triage(app, &group).await;
        Ingested::Kept
    } else if action == Some(RouteAction::Declare) && group.firing().next().is_some() {
        let outcome = declare(app, &mut group, &actor).await?;
        let id = outcome.incident.expect("an open names its incident");
        crate::whats_changed::post(app, id).await;
        Ingested::Declared(id)
    } else {
        triage(app, &mut group, &mut turn, now).await?
    };
    app.store.put_alert_group(&mut group)?;
    app.store.flush().await?;
    tracing::info!(group = group.number, source, %outcome, "alert delivery taken");
    Ok(outcome)
}

fn new_group(
    app: &App,
    d: &am::Delivery,
    source: &str,
    now: DateTime<Utc>,
) -> Result<(AlertGroup, RouteAction), CommandError> {
    let alerts = &app.config.alerts;
    let labels = d.labels();
    let (index, route) = alerts.route(labels);
    let group = AlertGroup {
        number: app.store.reserve_alert_number()?,
        group_key: d.group_key().to_string(),
        source: source.into(),
        route: route.label(index),
        severity: alerts.severity_of(route, labels, &app.config.severity_levels()),
        service: alerts.service_of(route, labels),
        escalate: route.escalate.clone(),
        headline: String::new(),
        description: None,
        labels: Default::default(),
        silence_url: None,
        alerts: Default::default(),
        triage: Triage::None,
        incident: None,
        dismissed_by: None,
        ignored: route.action == RouteAction::Ignore,
        first_seen: now,
    };
    Ok((group, route.action))
}

/// What the group says of itself now: the latest words win.
fn refresh(group: &mut AlertGroup, d: &am::Delivery) {
    group.headline = d.headline();
    group.description = d.description();
    group.labels = d.labels().clone();
    group.silence_url = d.silence_url();
}

/// One alert that changed.
#[derive(Debug, Clone)]
struct Change {
    fingerprint: String,
    fired: bool,
    again: bool,
}

/// Merges the delivery's alerts into the group, returning those that fired or resolved. A
/// firing alert that had resolved counts as firing again only with a later start: an older
/// delivery arriving late changes nothing.
fn merge(group: &mut AlertGroup, d: &am::Delivery) -> Vec<Change> {
    let mut changes = Vec::new();
    for a in &d.alerts {
        let fingerprint = a.fingerprint().to_string();
        let firing = a.status == Status::Firing;
        let record = AlertRecord {
            name: a.name().to_string(),
            firing,
            starts_at: a.starts_at,
            ends_at: a.ends_at,
            summary: a.annotations.get("summary").cloned(),
            generator_url: a.generator_url.clone(),
            labels: a.labels.clone(),
        };
        let change = match group.alerts.get(&fingerprint) {
            None => firing.then_some((true, false)),
            Some(old) if old.firing && !firing => Some((false, false)),
            Some(old) if !old.firing && firing && a.starts_at > old.starts_at => Some((true, true)),
            Some(old) if !old.firing && firing => continue,
            Some(_) => None,
        };
        if let Some((fired, again)) = change {
            changes.push(Change {
                fingerprint: fingerprint.clone(),
                fired,
                again,
            });
        }
        group.alerts.insert(fingerprint, record);
    }
    changes
}

fn fired_event(group: &AlertGroup, fingerprint: &str, again: bool) -> Option<EventKind> {
    let a = group.alerts.get(fingerprint)?;
    Some(EventKind::AlertFired {
        group: group.number,
        fingerprint: fingerprint.into(),
        name: a.name.clone(),
        summary: a.summary.clone(),
        starts_at: a.starts_at,
        again,
        link: a.generator_url.clone(),
    })
}

fn events_of(group: &AlertGroup, changes: &[Change], now: DateTime<Utc>) -> Vec<EventKind> {
    changes
        .iter()
        .filter_map(|c| {
            if c.fired {
                fired_event(group, &c.fingerprint, c.again)
            } else {
                let a = group.alerts.get(&c.fingerprint)?;
                Some(EventKind::AlertResolved {
                    group: group.number,
                    fingerprint: c.fingerprint.clone(),
                    name: a.name.clone(),
                    ends_at: a.ends_at.unwrap_or(now),
                })
            }
        })
        .collect()
}

/// Records what changed on the incident the group belongs to, and tells its channel: with the
/// commander's buttons when every alert has resolved, or when one fires on a resolved incident.
async fn on_incident(
    app: &App,
    group: &AlertGroup,
    id: IncidentId,
    changes: &[Change],
    actor: &Actor,
) -> Result<(), CommandError> {
    let now = app.now();
    let kinds = events_of(group, changes, now);
    if kinds.is_empty() {
        return Ok(());
    }
    let was_open = app.store.incident(id)?.is_some_and(|i| i.is_open());
    app.record_with(
        id,
        actor,
        now,
        |_| Ok(kinds.clone()),
        |inc, _, _| match inc.channel {
            Some(channel) => {
                let post = incident_note(inc, &kinds, was_open);
                queue(
                    inc.id,
                    now,
                    &[Delivery { channel, post }],
                    app.chat.stakeholder_channel(),
                )
            }
            None => Vec::new(),
        },
    )?;
    app.store.flush().await?;
    Ok(())
}

/// The post in the incident's channel that says what the alerts did.
fn incident_note(inc: &Incident, kinds: &[EventKind], was_open: bool) -> Post {
    let mut lines: Vec<String> = kinds
        .iter()
        .map(|k| format!("🔔 {}", k.describe()))
        .collect();
    let fired = kinds
        .iter()
        .any(|k| matches!(k, EventKind::AlertFired { .. }));
    let commander = inc.commander().map(|c| c.id);
    let ping = commander.map(|c| format!("<@{c}> ")).unwrap_or_default();
    let mut buttons = Vec::new();
    if fired && !was_open {
        lines.push(format!(
            "{ping}{} is resolved, but its alert fired again. Reopen it?",
            inc.id
        ));
        buttons.push(button(REOPEN, inc.id.0, "Reopen", ButtonStyle::Danger));
    } else if was_open && !inc.alerts.is_empty() && inc.alerts.values().all(|a| !a.firing) {
        lines.push(format!(
            "{ping}Every alert of {} has resolved. Move it to monitoring, or resolve it?",
            inc.id
        ));
        buttons.push(button(
            MONITOR,
            inc.id.0,
            "Move to monitoring",
            ButtonStyle::Primary,
        ));
        buttons.push(button(RESOLVE, inc.id.0, "Resolve", ButtonStyle::Success));
    }
    let mut post = Post::text(lines.join("\n")).with_buttons(buttons);
    if let Some(c) = commander.filter(|_| !post.buttons.is_empty()) {
        post.mentions = Mentions::users(&[c]);
    }
    post
}

fn button(name: &str, arg: impl std::fmt::Display, label: &str, style: ButtonStyle) -> Button {
    Button {
        custom_id: format!("{}:{arg}", name.replace(' ', ":")),
        label: label.into(),
        style,
    }
}

/// Opens an incident from the group by the path `/incident open` takes: the alert's text as
/// title and summary, the route's severity, impact from the earliest start. Records the firing
/// alerts on it and pages the route's escalation target.
async fn declare(
    app: &App,
    group: &mut AlertGroup,
    actor: &Actor,
) -> Result<Outcome, CommandError> {
    let now = app.now();
    let title = truncate(group.headline.trim(), MAX_TITLE).to_string();
    let summary = group
        .description
        .as_deref()
        .map(|d| truncate(d.trim(), MAX_TEXT).to_string())
        .filter(|d| !d.is_empty());
    let checked = CheckedOpen {
        title: if title.is_empty() {
            format!("Alert group #{}", group.number)
        } else {
            title
        },
        severity: group.severity,
        summary,
        service: group.service.clone(),
        // A sender's clock ahead of ours must not put the impact in the future.
        started: group.earliest_start().filter(|t| *t <= now).unwrap_or(now),
        drill: false,
        // The default type's checklist guides an alert's incident as it does a typed one; an
        // alert cannot fill in fields, so required ones wait for `/incident field`.
        playbook: super::playbook::find_type(app, None)?
            .map(|(name, t)| Box::new(super::playbook::playbook(&name, t, Vec::new()))),
        invite: Vec::new(),
        escalate: None,
    };
    let outcome = open_checked(app, actor.clone(), checked).await?;
    let id = outcome.incident.expect("an open names its incident");
    group.incident = Some(id);
    let kinds: Vec<EventKind> = group
        .alerts
        .iter()
        .filter(|(_, a)| a.firing)
        .filter_map(|(fp, _)| fired_event(group, fp, false))
        .collect();
    app.record(id, actor, now, |_| Ok(kinds.clone()))?;
    app.store.flush().await?;
    if let Some(target) = group.escalate.clone() {
        page(app, id, actor, &target, &group.headline).await;
    }
    Ok(outcome)
}

/// Pages the route's target. The incident stands even when paging fails: the failure is logged
/// for the operator, and responders can still `/escalate`.
async fn page(app: &App, id: IncidentId, actor: &Actor, target: &str, headline: &str) {
    let ladder = match crate::escalation::ladder(&app.config, target, None) {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(incident = %id, target, error = %e, "an alert route names a target that cannot be paged");
            return;
        }
    };
    let reason = format!("Alert: {headline}");
    if let Err(e) = crate::escalation::escalate(app, id, actor, &ladder, &reason).await {
        tracing::warn!(incident = %id, target, error = %e, "paging an alert route's target failed");
    }
}

/// Offers a group in the triage channel: its own post (or an edit of it) while the flood window
/// has room, else a line in the flood's summary.
async fn triage(
    app: &App,
    group: &mut AlertGroup,
    window: &mut FloodWindow,
    now: DateTime<Utc>,
) -> Result<Ingested, CommandError> {
    match group.triage {
        Triage::Posted { channel, message } => {
            app.chat
                .edit(channel, message, triage_post(app, group))
                .await?;
            Ok(Ingested::Triaged)
        }
        Triage::Summarized => Ok(Ingested::Summarized),
        Triage::None => {
            if group.firing().next().is_none() {
                return Ok(Ingested::Kept);
            }
            let config = &app.config.alerts;
            // Without a triage channel (the console), alerts are offered where incidents are
            // announced.
            let Some(channel) = config
                .triage_channel
                .or_else(|| app.chat.stakeholder_channel())
            else {
                tracing::warn!(
                    group = group.number,
                    "an alert group to triage, but [alerts] triage_channel is not set"
                );
                return Ok(Ingested::Kept);
            };
            let span =
                chrono::Duration::from_std(config.flood_window.0).unwrap_or(chrono::Duration::MAX);
            if window.admit(now, span, config.flood_posts) {
                let message = app.chat.post(channel, triage_post(app, group)).await?;
                group.triage = Triage::Posted { channel, message };
                return Ok(Ingested::Triaged);
            }
            group.triage = Triage::Summarized;
            window.waiting.push(format!(
                "#{} {} ({} firing, {})",
                group.number,
                truncate(&group.headline, 120),
                group.firing().count(),
                group.severity
            ));
            if !window.summary_due {
                window.summary_due = true;
                tokio::spawn(post_summary(app.clone(), channel));
            }
            Ok(Ingested::Summarized)
        }
    }
}

/// One post for a flood's groups, after they had a moment to gather.
async fn post_summary(app: App, channel: u64) {
    tokio::time::sleep(SUMMARY_DELAY).await;
    let waiting = {
        let mut turn = app.store.alerts_turn().await;
        turn.summary_due = false;
        std::mem::take(&mut turn.waiting)
    };
    if waiting.is_empty() {
        return;
    }
    let shown = 20.min(waiting.len());
    let mut text = format!(
        "🔔 **Alert flood:** {} more alert groups fired than get a triage post each ({} per {}). Declare the ones that matter with `/incident open`:\n",
        waiting.len(),
        app.config.alerts.flood_posts,
        app.config.alerts.flood_window
    );
    for line in &waiting[..shown] {
        text.push_str(&format!("• {line}\n"));
    }
    if waiting.len() > shown {
        text.push_str(&format!("…and {} more.", waiting.len() - shown));
    }
    let post = Post::text(text);
    for attempt in 1..=4u32 {
        match app.chat.post(channel, post.clone()).await {
            Ok(_) => return,
            Err(e) => {
                tracing::warn!(error = %e, attempt, groups = waiting.len(), "the alert flood summary was not posted");
                tokio::time::sleep(Duration::from_secs(2u64.pow(attempt))).await;
            }
        }
    }
}

/// Edits the group's own triage post, if it has one, to what it says now. Best effort: the
/// post is a view, and the next delivery or press edits it again.
async fn edit_triage(app: &App, group: &AlertGroup) {
    if let Triage::Posted { channel, message } = group.triage {
        if let Err(e) = app
            .chat
            .edit(channel, message, triage_post(app, group))
            .await
        {
            tracing::warn!(group = group.number, error = %e, "a triage post was not updated");
        }
    }
}

fn when(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// What fired, since when, where to look and silence it; with the buttons while it waits.
pub fn triage_post(app: &App, group: &AlertGroup) -> Post {
    let firing = group.firing().count();
    let total = group.alerts.len();
    let mut text = format!("🔔 **Alert #{}: {}**\n", group.number, group.headline);
    if firing > 0 {
        text.push_str(&format!(
            "Firing: {firing} of {total} · since {} · route {} · would open as {}\n",
            group
                .earliest_start()
                .map(when)
                .unwrap_or_else(|| "unknown".into()),
            group.route,
            app.config
                .severity(group.severity)
                .map(|c| format!("{} ({})", group.severity, c.name))
                .unwrap_or_else(|| group.severity.to_string()),
        ));
    } else {
        text.push_str(&format!(
            "Resolved: all {total} alerts · route {}\n",
            group.route
        ));
    }
    if let Some(d) = &group.description {
        text.push_str(&format!("{}\n", truncate(d, 500)));
    }
    for a in group.alerts.values().take(LISTED_ALERTS) {
        let state = if a.firing {
            format!("firing since {}", when(a.starts_at))
        } else {
            format!(
                "resolved{}",
                a.ends_at
                    .map(|e| format!(" at {}", when(e)))
                    .unwrap_or_default()
            )
        };
        let mut line = format!("• {} — {state}", a.name);
        if let Some(s) = a.summary.as_deref().filter(|s| *s != group.headline) {
            line.push_str(&format!(": {}", truncate(s, 200)));
        }
        if let Some(u) = a.generator_url.as_deref().filter(|u| u.starts_with("http")) {
            line.push_str(&format!(" ([source](<{u}>))"));
        }
        text.push_str(&line);
        text.push('\n');
    }
    if total > LISTED_ALERTS {
        text.push_str(&format!("…and {} more\n", total - LISTED_ALERTS));
    }
    let labels: Vec<String> = group
        .labels
        .iter()
        .take(12)
        .map(|(k, v)| format!("`{k}={}`", truncate(v, 60)))
        .collect();
    if !labels.is_empty() {
        text.push_str(&format!("Labels: {}\n", labels.join(" ")));
    }
    if let Some(u) = group
        .silence_url
        .as_deref()
        .filter(|u| u.starts_with("http"))
    {
        text.push_str(&format!("[Silence it](<{u}>)\n"));
    }
    let mut buttons = Vec::new();
    match (&group.incident, &group.dismissed_by) {
        (Some(id), _) => text.push_str(&format!("➡️ Tracked as {id}.")),
        (None, Some(who)) => text.push_str(&format!("Dismissed by {}.", who.name)),
        (None, None) => {
            buttons = vec![
                button(DECLARE, group.number, "Declare", ButtonStyle::Danger),
                button(ATTACH, group.number, "Attach", ButtonStyle::Secondary),
                button(DISMISS, group.number, "Dismiss", ButtonStyle::Secondary),
            ]
        }
    }
    // Alert text is the sender's: it pings nobody.
    let mut post = Post::text(text.trim_end()).with_buttons(buttons);
    post.mentions = Mentions::none();
    post
}

fn private(text: impl Into<String>, incident: Option<IncidentId>) -> Outcome {
    Outcome {
        reply: Reply::private(text),
        posts: Vec::new(),
        incident,
    }
}

/// The group a triage button was pressed on, while holding the alert turn.
fn pressed_group(
    app: &App,
    target: &Target,
) -> Result<(AlertGroup, Option<IncidentId>), CommandError> {
    let Target::Alert { group, incident } = target else {
        return Err(UserError::Line("This button is no longer in use.".into()).into());
    };
    let g = app
        .store
        .alert_group_by_number(*group)?
        .ok_or_else(|| UserError::Line(format!("Alert group #{group} is not known here.")))?;
    Ok((g, *incident))
}

/// Whether the group still waits for someone, or what became of it.
fn settled(group: &AlertGroup) -> Option<String> {
    match (&group.incident, &group.dismissed_by) {
        (Some(id), _) => Some(format!(
            "Alert #{} is already tracked as {id}.",
            group.number
        )),
        (None, Some(who)) => Some(format!(
            "Alert #{} was dismissed by {}.",
            group.number, who.name
        )),
        (None, None) => None,
    }
}

/// Declare: opens an incident from the group, the presser as its commander.
pub async fn declare_button(
    app: &App,
    inv: &Invocation,
    args: AlertButtonArgs,
) -> Result<Outcome, CommandError> {
    let _turn = app.store.alerts_turn().await;
    let (mut group, _) = pressed_group(app, &args.target)?;
    if let Some(said) = settled(&group) {
        return Ok(private(said, group.incident));
    }
    let outcome = declare(app, &mut group, &Actor::User(inv.user.clone())).await?;
    app.store.put_alert_group(&mut group)?;
    app.store.flush().await?;
    edit_triage(app, &group).await;
    Ok(outcome)
}

/// Attach: first offers the open incidents as buttons (privately), then attaches the group to
/// the one chosen, recording its firing alerts there.
pub async fn attach_button(
    app: &App,
    inv: &Invocation,
    args: AlertButtonArgs,
) -> Result<Outcome, CommandError> {
    let _turn = app.store.alerts_turn().await;
    let (mut group, chosen) = pressed_group(app, &args.target)?;
    if let Some(said) = settled(&group) {
        return Ok(private(said, group.incident));
    }
    let Some(id) = chosen else {
        let mut open: Vec<Incident> = app
            .store
            .incidents()?
            .into_iter()
            .filter(|i| i.is_open())
            .collect();
        open.sort_by_key(|i| std::cmp::Reverse(i.id));
        if open.is_empty() {
            return Ok(private(
                "No incident is open to attach it to; press Declare to open one.",
                None,
            ));
        }
        let buttons = open
            .iter()
            .take(ATTACH_CHOICES)
            .map(|i| {
                button(
                    ATTACH,
                    format!("{}.{}", group.number, i.id.0),
                    &format!("{} · {}", i.id, truncate(&i.title, 60)),
                    ButtonStyle::Secondary,
                )
            })
            .collect();
        let mut outcome = private(
            format!("Attach alert #{} to which incident?", group.number),
            None,
        );
        outcome.reply.post = outcome.reply.post.with_buttons(buttons);
        return Ok(outcome);
    };
    let inc = app
        .store
        .incident(id)?
        .ok_or(UserError::NoSuchIncident(id))?;
    if !inc.is_open() {
        return Err(UserError::Line(format!(
            "{id} is resolved; reopen it first, or press Declare for a new incident."
        ))
        .into());
    }
    group.incident = Some(id);
    let kinds: Vec<EventKind> = group
        .alerts
        .iter()
        .filter(|(_, a)| a.firing)
        .filter_map(|(fp, _)| fired_event(&group, fp, false))
        .collect();
    app.record(id, &Actor::User(inv.user.clone()), app.now(), |_| {
        Ok(kinds.clone())
    })?;
    app.store.put_alert_group(&mut group)?;
    app.store.flush().await?;
    edit_triage(app, &group).await;
    Ok(private(
        format!("Attached alert #{} to {id}.", group.number),
        Some(id),
    ))
}

/// Dismiss: the group stays known (so that its repeats are quiet) and its buttons go.
pub async fn dismiss_button(
    app: &App,
    inv: &Invocation,
    args: AlertButtonArgs,
) -> Result<Outcome, CommandError> {
    let _turn = app.store.alerts_turn().await;
    let (mut group, _) = pressed_group(app, &args.target)?;
    if let Some(said) = settled(&group) {
        return Ok(private(said, group.incident));
    }
    group.dismissed_by = Some(inv.user.clone());
    app.store.put_alert_group(&mut group)?;
    app.store.flush().await?;
    edit_triage(app, &group).await;
    Ok(private(format!("Dismissed alert #{}.", group.number), None))
}

/// The commander's buttons run `/incident update`, `/incident resolve` and `/incident reopen`
/// as typed, and only for the commander (buttons are not in `[permissions]`).
pub async fn commander_button(
    app: &App,
    inv: &Invocation,
    args: AlertButtonArgs,
) -> Result<Outcome, CommandError> {
    let Target::Incident(id) = args.target else {
        return Err(UserError::Line("This button is no longer in use.".into()).into());
    };
    let inc = app
        .store
        .incident(id)?
        .ok_or(UserError::NoSuchIncident(id))?;
    if inc.commander().map_or(true, |c| c.id != inv.user.id) {
        return Err(UserError::Denied(format!("press this; only {id}'s commander may")).into());
    }
    let incident = Some(id.to_string());
    let args = match inv.input.name.as_str() {
        MONITOR => IncidentArgs::Update(incident_cmd::UpdateArgs {
            message: "Every alert has resolved; monitoring.".into(),
            state: Some("monitoring".into()),
            impact: None,
            incident,
        }),
        RESOLVE => IncidentArgs::Resolve(incident_cmd::ResolveArgs {
            summary: "Every alert has resolved.".into(),
            incident,
        }),
        _ => IncidentArgs::Reopen(incident_cmd::ReopenArgs {
            reason: "Its alert fired again.".into(),
            incident,
        }),
    };
    incident_cmd::run(app, inv, args).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::UserRef;
    use crate::testkit::{t0, TestApp};

    /// One Alertmanager delivery of group `group` with one alert `fp`.
    fn delivery(group: &str, fp: &str, status: &str, starts: &str, labels: &str) -> am::Delivery {
        let body = format!(
            r#"{{"version":"4","groupKey":"{group}","status":"{status}","receiver":"sitrep",
            "groupLabels":{{}},"commonLabels":{labels},"commonAnnotations":{{"summary":"Queue backlog","description":"Jobs wait"}},
            "externalURL":"http://am:9093","alerts":[{{"status":"{status}","labels":{labels},
            "annotations":{{}},"startsAt":"{starts}","endsAt":"{ends}","fingerprint":"{fp}"}}]}}"#,
            ends = if status == "resolved" {
                "2026-11-21T10:05:00Z"
            } else {
                "0001-01-01T00:00:00Z"
            },
        );
        am::Delivery::parse(body.as_bytes()).unwrap()
    }

    const QUEUE: &str = r#"{"alertname":"QueueBacklog","service":"checkout","severity":"error"}"#;

    fn invocation(name: &str) -> Invocation {
        Invocation {
            user: UserRef::new(7, "alice"),
            member_roles: Vec::new(),
            channel: Some(500),
            input: super::super::CommandInput {
                name: name.into(),
                options: Vec::new(),
            },
        }
    }

    #[tokio::test]
    async fn a_retry_changes_nothing_and_a_repeat_edits_the_one_post() {
        let kit = TestApp::builder()
            .configure(|c| c.alerts.triage_channel = Some(500))
            .build();
        let app = &kit.app;
        let d = delivery("g1", "f1", "firing", "2026-11-21T09:50:00Z", QUEUE);
        assert_eq!(
            ingest(app, &d, "alertmanager").await.unwrap(),
            Ingested::Triaged
        );
        let before = app.store.dump().unwrap();
        assert_eq!(
            ingest(app, &d, "alertmanager").await.unwrap(),
            Ingested::Unchanged
        );
        assert_eq!(app.store.dump().unwrap(), before, "a retry writes nothing");
        assert_eq!(kit.sent().len(), 1);
        assert_eq!(kit.sent()[0].channel, 500);
        let r = delivery("g1", "f1", "resolved", "2026-11-21T09:50:00Z", QUEUE);
        assert_eq!(
            ingest(app, &r, "alertmanager").await.unwrap(),
            Ingested::Triaged
        );
        assert_eq!(kit.sent().len(), 1, "never a second post");
        assert!(kit.edited()[0]
            .post
            .content
            .contains("Resolved: all 1 alerts"));
        // A late copy of the firing delivery is older than what is known: nothing changes.
        assert_eq!(
            ingest(app, &d, "alertmanager").await.unwrap(),
            Ingested::Unchanged
        );
    }

    #[tokio::test]
    async fn declare_opens_from_the_earliest_start_and_an_alert_that_returns_offers_reopen() {
        let kit = TestApp::builder()
            .configure(|c| c.alerts.triage_channel = Some(500))
            .build();
        let app = &kit.app;
        let d = delivery("g1", "f1", "firing", "2026-11-21T09:50:00Z", QUEUE);
        ingest(app, &d, "alertmanager").await.unwrap();
        let inv = invocation(DECLARE);
        let target = Target::Alert {
            group: 1,
            incident: None,
        };
        let out = declare_button(
            app,
            &inv,
            AlertButtonArgs {
                target: target.clone(),
            },
        )
        .await
        .unwrap();
        let id = out.incident.unwrap();
        let inc = app.store.incident(id).unwrap().unwrap();
        assert_eq!(inc.title, "Queue backlog");
        assert_eq!(inc.summary.as_deref(), Some("Jobs wait"));
        assert_eq!(inc.severity, crate::domain::Severity(2), "error is SEV2");
        assert_eq!(inc.service.as_deref(), Some("checkout"));
        assert_eq!(inc.commander().map(|c| c.id), Some(7));
        assert_eq!(
            inc.ttd(),
            Some(t0() - "2026-11-21T09:50:00Z".parse::<DateTime<Utc>>().unwrap())
        );
        assert!(inc.alerts["f1"].firing);
        // A second press is told where it went.
        let again = declare_button(app, &inv, AlertButtonArgs { target })
            .await
            .unwrap();
        assert!(again
            .reply
            .post
            .content
            .contains("already tracked as INC-1"));

        // Resolved: the commander is asked, with both buttons.
        let r = delivery("g1", "f1", "resolved", "2026-11-21T09:50:00Z", QUEUE);
        assert_eq!(
            ingest(app, &r, "alertmanager").await.unwrap(),
            Ingested::Recorded(id)
        );
        let inc = app.store.incident(id).unwrap().unwrap();
        assert!(!inc.alerts["f1"].firing);
        let events = app.store.events(id).unwrap();
        assert!(events.iter().any(|e| e.kind.name() == "alert_resolved"));
        app.record(id, &Actor::System, app.now(), |i| i.decide_resolve("fixed"))
            .unwrap();
        // It fires again later: on a resolved incident, an offer to reopen.
        let back = delivery("g1", "f1", "firing", "2026-11-21T10:30:00Z", QUEUE);
        assert_eq!(
            ingest(app, &back, "alertmanager").await.unwrap(),
            Ingested::Recorded(id)
        );
        let events = app.store.events(id).unwrap();
        assert!(events
            .iter()
            .any(|e| matches!(e.kind, EventKind::AlertFired { again: true, .. })));
        // The offer waits in the outbox, with its button.
        let queued = app
            .store
            .dump()
            .unwrap()
            .into_iter()
            .filter(|(tree, _, _)| tree == "jobs")
            .map(|(_, _, v)| String::from_utf8_lossy(&v).into_owned())
            .collect::<String>();
        assert!(queued.contains("alert:reopen:1"), "{queued}");
        assert!(
            queued.contains("alert:monitor:1"),
            "the earlier suggestion: {queued}"
        );
    }

    #[tokio::test]
    async fn attach_offers_the_open_incidents_then_attaches_and_dismiss_quiets_a_group() {
        let kit = TestApp::builder()
            .configure(|c| c.alerts.triage_channel = Some(500))
            .build();
        let app = &kit.app;
        for (g, fp) in [("g1", "f1"), ("g2", "f2"), ("g3", "f3")] {
            let d = delivery(g, fp, "firing", "2026-11-21T09:50:00Z", QUEUE);
            ingest(app, &d, "alertmanager").await.unwrap();
        }
        let press = |group, incident| AlertButtonArgs {
            target: Target::Alert { group, incident },
        };
        let id = declare_button(app, &invocation(DECLARE), press(1, None))
            .await
            .unwrap()
            .incident
            .unwrap();
        let offer = attach_button(app, &invocation(ATTACH), press(2, None))
            .await
            .unwrap();
        assert!(offer.reply.ephemeral);
        let ids: Vec<&str> = offer
            .reply
            .post
            .buttons
            .iter()
            .map(|b| b.custom_id.as_str())
            .collect();
        assert_eq!(ids, ["alert:attach:2.1"]);
        let done = attach_button(app, &invocation(ATTACH), press(2, Some(id)))
            .await
            .unwrap();
        assert_eq!(done.reply.post.content, "Attached alert #2 to INC-1.");
        assert!(app
            .store
            .incident(id)
            .unwrap()
            .unwrap()
            .alerts
            .contains_key("f2"));
        assert_eq!(
            app.store
                .alert_group_by_number(2)
                .unwrap()
                .unwrap()
                .incident,
            Some(id)
        );

        let out = dismiss_button(app, &invocation(DISMISS), press(3, None))
            .await
            .unwrap();
        assert_eq!(out.reply.post.content, "Dismissed alert #3.");
        let again = dismiss_button(app, &invocation(DISMISS), press(3, None))
            .await
            .unwrap();
        assert_eq!(again.reply.post.content, "Alert #3 was dismissed by alice.");
        let edited = kit.edited();
        let last = &edited.last().unwrap().post;
        assert!(
            last.content.ends_with("Dismissed by alice."),
            "{}",
            last.content
        );
        assert!(last.buttons.is_empty());
        // Its repeats stay quiet: kept, no new post.
        let sent = kit.sent().len();
        let r = delivery("g3", "f3", "resolved", "2026-11-21T09:50:00Z", QUEUE);
        assert_eq!(
            ingest(app, &r, "alertmanager").await.unwrap(),
            Ingested::Kept
        );
        assert_eq!(kit.sent().len(), sent);
        // An unknown group is said to be unknown.
        let err = dismiss_button(app, &invocation(DISMISS), press(9, None))
            .await
            .unwrap_err();
        assert!(err.to_chat(DISMISS).contains("#9 is not known"), "{err:?}");
    }

    #[tokio::test]
    async fn routes_ignore_and_declare_at_once() {
        let kit = TestApp::builder()
            .configure(|c| {
                c.alerts.triage_channel = Some(500);
                c.alerts.routes = vec![
                    crate::config::AlertRoute {
                        equal: [("service".to_string(), "search".to_string())].into(),
                        action: RouteAction::Ignore,
                        ..Default::default()
                    },
                    crate::config::AlertRoute {
                        match_re: [("alertname".to_string(), "Queue.*".to_string())].into(),
                        action: RouteAction::Declare,
                        ..Default::default()
                    },
                ];
            })
            .build();
        let app = &kit.app;
        let search = r#"{"alertname":"QueueBacklog","service":"search"}"#;
        let d = delivery("g1", "f1", "firing", "2026-11-21T09:50:00Z", search);
        assert_eq!(
            ingest(app, &d, "alertmanager").await.unwrap(),
            Ingested::Ignored
        );
        assert_eq!(
            ingest(app, &d, "alertmanager").await.unwrap(),
            Ingested::Unchanged
        );
        let d = delivery("g2", "f2", "firing", "2026-11-21T09:50:00Z", QUEUE);
        let Ingested::Declared(id) = ingest(app, &d, "alertmanager").await.unwrap() else {
            panic!("not declared");
        };
        let inc = app.store.incident(id).unwrap().unwrap();
        assert_eq!(inc.commander(), None, "nobody pressed anything");
        assert!(
            kit.sent().iter().all(|s| s.channel != 500),
            "no triage post"
        );
    }

    #[test]
    fn button_targets_parse_strictly() {
        assert_eq!(
            parse_target("7"),
            Some(Target::Alert {
                group: 7,
                incident: None
            })
        );
        assert_eq!(
            parse_target("7.3"),
            Some(Target::Alert {
                group: 7,
                incident: Some(IncidentId(3))
            })
        );
        for bad in ["0", "x", "7.", "7.x", "-1", ""] {
            assert_eq!(parse_target(bad), None, "{bad}");
        }
        assert_eq!(
            super::super::button_target("alert", "monitor", "4"),
            Some(Target::Incident(IncidentId(4)))
        );
        assert_eq!(
            button(ATTACH, "7.3", "x", ButtonStyle::Secondary).custom_id,
            "alert:attach:7.3"
        );
    }
}
