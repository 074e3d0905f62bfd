//! Escalation: page a target's roles, climbing a ladder until a human acknowledges.
//!
//! Every step is a timeline event (`Escalated`, `EscalationTimedOut`, `EscalationAcknowledged`),
//! and every timer is a scheduler job written in the same transaction as the step that set it,
//! so a restart continues the ladder at the level it had reached. A page mentions exactly its
//! target's roles and nothing else: the roles come from config, every user-typed word goes into
//! the embed (embeds never ping), and `allowed_mentions` lists those roles only.
//!
//! Where a target has a PagerDuty routing key, pages, acknowledgements and the resolution reach
//! PagerDuty too, in the background; a failure there is posted in the channel.

pub mod jobs;

use crate::app::App;
use crate::config::Config;
use crate::domain::escalation::{Escalation, Page};
use crate::domain::{
    human_duration, Actor, Event, EventKind, Incident, IncidentId, State, UserRef,
};
use crate::error::{CommandError, UserError};
use crate::integrations::pagerduty::{self, Alert, Link};
use crate::jobs::JobError;
use crate::message::{Button, ButtonStyle, Mentions, Post};
use crate::render::TemplateError;
use crate::status::{incident_post, view};
use crate::store::{AppendError, Job, JobChange, JobKind, StoreError};
use chrono::{DateTime, Utc};
use minijinja::context;
use serde_json::json;
use std::time::Duration;

/// Who is paged, in order, and how long each level has to acknowledge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ladder {
    /// The policy the ladder follows, by its configured name; `None` pages the target alone.
    pub policy: Option<String>,
    /// Target names as configured; the first is paged at once.
    pub levels: Vec<String>,
    pub ack_timeout: Duration,
}

fn known(names: impl Iterator<Item = String>) -> String {
    let names: Vec<String> = names.collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

/// The ladder `/escalate target:… [policy:…]` climbs. With a policy (named, or the default one),
/// a target on its ladder starts there and climbs the rest; any other target is paged first and
/// the whole ladder follows. Without one, the target alone is paged.
pub fn ladder(config: &Config, target: &str, policy: Option<&str>) -> Result<Ladder, UserError> {
    let e = &config.escalation;
    let Some((target, _)) = e.target(target) else {
        return Err(UserError::Escalation(format!(
            "`{}` is not an escalation target; configured: {}",
            target.trim(),
            known(e.targets.keys().cloned())
        )));
    };
    let policy = match policy.map(str::trim).filter(|p| !p.is_empty()) {
        Some(name) => Some(e.policy(name).ok_or_else(|| {
            UserError::Escalation(format!(
                "`{name}` is not an escalation policy; configured: {}",
                known(e.policies.keys().cloned())
            ))
        })?),
        None => e.default_policy(),
    };
    let Some((name, p)) = policy else {
        return Ok(Ladder {
            policy: None,
            levels: vec![target.to_string()],
            ack_timeout: e.ack_timeout.0,
        });
    };
    let canonical = |l: &String| e.target(l).map_or(l.clone(), |(k, _)| k.to_string());
    let levels: Vec<String> = match p.levels.iter().position(|l| l.eq_ignore_ascii_case(target)) {
        Some(i) => p.levels[i..].iter().map(canonical).collect(),
        None => std::iter::once(target.to_string())
            .chain(p.levels.iter().map(canonical))
            .collect(),
    };
    Ok(Ladder {
        policy: Some(name.to_string()),
        levels,
        ack_timeout: p.ack_timeout.0,
    })
}

/// The roles a page of `target` mentions, from config.
pub fn roles_of(config: &Config, target: &str) -> Vec<u64> {
    config
        .escalation
        .target(target)
        .map(|(_, t)| t.roles.clone())
        .unwrap_or_default()
}

/// Whether `target` can page anyone: it has roles, or a schedule that names someone.
pub fn can_page(config: &Config, target: &str) -> bool {
    config
        .escalation
        .target(target)
        .is_some_and(|(_, t)| !t.roles.is_empty() || t.schedule.is_some())
}

/// The people a page of `target` mentions: whoever its on-call schedule puts on call now,
/// when that person maps to a Discord user. A schedule's source that fails answers with its
/// last known answer; one that never answered pages the roles alone.
pub async fn users_of(app: &App, target: &str) -> Vec<u64> {
    let Some(schedule) = app
        .config
        .escalation
        .target(target)
        .and_then(|(_, t)| t.schedule.clone())
    else {
        return Vec::new();
    };
    match crate::oncall::lookup(app, &schedule).await {
        Ok(answer) => crate::oncall::current_user(&app.config, &answer, app.now())
            .map(|u| vec![u.id])
            .unwrap_or_default(),
        Err(e) => {
            tracing::warn!(escalation_target = target, schedule = %schedule, error = %e, "nobody on call found for the page");
            Vec::new()
        }
    }
}

fn user_mentions(users: &[u64]) -> String {
    users
        .iter()
        .map(|u| format!("<@{u}>"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The ladder an escalation in progress follows, from the policy its timer carries.
fn ladder_of(config: &Config, esc: &Escalation, policy: Option<&str>) -> Ladder {
    let first = esc.pages.first().map(|p| p.target.as_str()).unwrap_or("");
    let fallback = Ladder {
        policy: None,
        levels: vec![first.to_string()],
        ack_timeout: config.escalation.ack_timeout.0,
    };
    match policy {
        Some(_) => ladder(config, first, policy).unwrap_or_else(|e| {
            tracing::warn!(escalation = esc.number, error = %e, "the escalation's policy or target is gone from the config; its ladder ends here");
            fallback
        }),
        None => fallback,
    }
}

/// The button that acknowledges escalation `n` of `incident` (the command table's
/// `escalation ack`).
pub fn ack_button_id(incident: IncidentId, n: u32) -> String {
    format!("escalation:ack:{}:{n}", incident.0)
}

/// The stuck nudge's button that escalates `incident` to `target` (`escalation nudge`).
pub fn nudge_button_id(incident: IncidentId, target: &str) -> String {
    format!("escalation:nudge:{}:{target}", incident.0)
}

fn message_key(incident: IncidentId, n: u32, level: u32) -> String {
    format!("escalation:{}:{n}:{level}", incident.0)
}

/// Which message carries the page of `level` of escalation `n`, once it was posted.
pub fn page_message(
    app: &App,
    incident: IncidentId,
    n: u32,
    level: u32,
) -> Result<Option<u64>, StoreError> {
    Ok(app
        .store
        .meta_get(&message_key(incident, n, level))?
        .and_then(|s| s.parse().ok()))
}

/// The same for every post of one escalation step, so that a retry after a crash between
/// sending and recording is dropped by Discord (`enforce_nonce`) instead of paging twice.
fn step_nonce(incident: IncidentId, n: u32, level: u32, part: char) -> String {
    crate::jobs::nonce(
        part,
        &[
            b"escalation",
            &incident.0.to_be_bytes(),
            &n.to_be_bytes(),
            &level.to_be_bytes(),
        ],
    )
}

fn timeout_job(
    incident: IncidentId,
    n: u32,
    level: u32,
    ladder: &Ladder,
    due: DateTime<Utc>,
) -> JobChange {
    JobChange::Put(Job::new(
        incident,
        JobKind::EscalationTimeout {
            escalation: n,
            level,
            policy: ladder.policy.clone(),
        },
        due,
    ))
}

fn cancel_timeout(incident: IncidentId, n: u32) -> JobChange {
    JobChange::Cancel {
        incident,
        // The slot is the escalation's; level and policy do not name it.
        kind: JobKind::EscalationTimeout {
            escalation: n,
            level: 0,
            policy: None,
        },
    }
}

fn to_chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// Whether the stuck nudge applies to `inc` as it is now.
fn wants_nudge(config: &Config, inc: &Incident) -> bool {
    inc.is_open()
        && inc.state == State::Investigating
        && inc.channel.is_some()
        && config.escalation.nudges(inc.severity)
}

fn actor_text(app: &App, actor: &Actor) -> String {
    match actor {
        Actor::User(u) => app.chat.user_mention(u),
        other => other.label(),
    }
}

fn role_mentions(roles: &[u64]) -> String {
    roles
        .iter()
        .map(|r| format!("<@&{r}>"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A page of `page.level` of escalation `esc`. With `ladder`, the page is live: it says who is
/// next and carries the Acknowledge button; without, it shows how the escalation ended.
pub fn page_post(
    app: &App,
    inc: &Incident,
    esc: &Escalation,
    page: &Page,
    ladder: Option<&Ladder>,
) -> Result<Post, TemplateError> {
    let acknowledged = esc.acknowledged.as_ref().map(|a| {
        context! {
            by => actor_text(app, &a.by),
            at => a.at,
            tta => esc.tta().map(human_duration),
        }
    });
    let next_target = ladder.and_then(|l| l.levels.get(page.level as usize).cloned());
    let next_at = ladder.map(|l| page.at + to_chrono(l.ack_timeout));
    let body = app.renderer.render(
        "escalation.md.j2",
        context! {
            incident => view(app, inc),
            commander => inc.commander().map(|u| app.chat.user_mention(u)),
            reason => &esc.reason,
            by => actor_text(app, &esc.by),
            target => &page.target,
            level => page.level,
            next_target,
            next_at,
            acknowledged,
            stopped => esc.stopped.is_some(),
        },
    )?;
    let mut post = incident_post(app, inc, "Escalation", body);
    // Only configured role ids and names from config go into the content; everything a person
    // typed stays in the embed.
    let previous = page
        .level
        .checked_sub(2)
        .and_then(|i| esc.pages.get(i as usize));
    let who = [user_mentions(&page.users), role_mentions(&page.roles)]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    post.content = match previous {
        Some(p) => format!(
            "{} you are needed on **{}** ({}): nobody from **{}** acknowledged in time.",
            who, inc.id, inc.severity, p.target
        ),
        None => format!(
            "{} you are needed on **{}** ({}).",
            who, inc.id, inc.severity
        ),
    };
    if ladder.is_some() && esc.is_running() {
        post.mentions = Mentions::roles_and_users(&page.roles, &page.users);
        post.buttons = vec![Button {
            custom_id: ack_button_id(inc.id, esc.number),
            label: "Acknowledge".into(),
            style: ButtonStyle::Danger,
        }];
    }
    Ok(post)
}

/// Posts the page of `level` of escalation `n` (already in `inc`'s timeline) and remembers the
/// message, so that an acknowledgement can edit it later.
async fn post_page(
    app: &App,
    inc: &Incident,
    n: u32,
    level: u32,
    ladder: &Ladder,
) -> Result<Option<u64>, JobError> {
    let (Some(channel), Some(esc)) = (inc.channel, inc.escalations.get(n)) else {
        return Ok(None);
    };
    let Some(page) = esc.pages.iter().find(|p| p.level == level) else {
        return Ok(None);
    };
    let mut post = page_post(app, inc, esc, page, Some(ladder))?;
    post.nonce = Some(step_nonce(inc.id, n, level, 'p'));
    let message = app
        .chat
        .post(channel, post)
        .await
        .map_err(|source| JobError::Chat { channel, source })?;
    app.store
        .meta_set(&message_key(inc.id, n, level), &message.to_string())?;
    Ok(Some(message))
}

/// Posts the current page of every running ladder that has no message on record: the bot
/// stopped between recording an escalation and posting its page, and nothing else would ever
/// page that level. The page carries the nonce of the first attempt, so one that did go out
/// (only its id unrecorded) is not posted twice while Discord remembers the nonce. Run once at
/// start, before any timer fires. Only pages recorded `before` the process started count: a
/// page recorded since is being posted by the command that recorded it.
async fn resume_pages(app: &App, before: DateTime<Utc>) -> Result<usize, JobError> {
    let mut posted = 0;
    for job in app.store.jobs()? {
        let JobKind::EscalationTimeout {
            escalation: n,
            level,
            policy,
        } = &job.kind
        else {
            continue;
        };
        let (n, level) = (*n, *level);
        if page_message(app, job.incident, n, level)?.is_some() {
            continue;
        }
        let Some(inc) = app.store.incident(job.incident)? else {
            continue;
        };
        let Some(esc) = inc.escalations.get(n) else {
            continue;
        };
        let current = esc.current().filter(|p| p.level == level && p.at < before);
        if !inc.is_open() || !esc.is_running() || current.is_none() {
            continue;
        }
        let ladder = ladder_of(&app.config, esc, policy.as_deref());
        if post_page(app, &inc, n, level, &ladder).await?.is_some() {
            tracing::info!(incident = %inc.id, escalation = n, level, "posted a page left unsent when the bot stopped");
            // PagerDuty merges a second trigger with the same dedup key into the open alert.
            tokio::spawn(pagerduty_trigger(app.clone(), inc.clone(), n, level));
            posted += 1;
        }
    }
    Ok(posted)
}

/// What a new escalation did.
#[derive(Debug, Clone)]
pub struct Paged {
    pub incident: Incident,
    pub escalation: u32,
    pub ladder: Ladder,
    /// The page's message, when the incident has a channel to post it in.
    pub message: Option<u64>,
}

/// Starts an escalation of `id` up `ladder`: records the first page and its timer, posts the
/// page, and sends it to PagerDuty when the target has a routing key.
pub async fn escalate(
    app: &App,
    id: IncidentId,
    actor: &Actor,
    ladder: &Ladder,
    reason: &str,
) -> Result<Paged, CommandError> {
    let target = ladder.levels.first().cloned().unwrap_or_default();
    let roles = roles_of(&app.config, &target);
    let users = users_of(app, &target).await;
    if roles.is_empty() && users.is_empty() {
        return Err(UserError::Escalation(format!(
            "escalation target `{target}` has no roles and its on-call schedule names nobody mapped to a Discord user under [people], so there is nobody to page"
        ))
        .into());
    }
    let now = app.now();
    let due = now + to_chrono(ladder.ack_timeout);
    let (inc, events) = app.record_with(
        id,
        actor,
        now,
        |i| i.decide_escalate(&target, &roles, &users, reason),
        |i, events, _| {
            let mut changes = Vec::new();
            for e in events {
                if let EventKind::Escalated {
                    escalation, level, ..
                } = e.kind
                {
                    changes.push(timeout_job(i.id, escalation, level, ladder, due));
                }
            }
            changes
        },
    )?;
    app.store.flush().await?;
    let n = events
        .iter()
        .find_map(|e| match e.kind {
            EventKind::Escalated { escalation, .. } => Some(escalation),
            _ => None,
        })
        .unwrap_or_default();
    tracing::info!(incident = %inc.id, escalation = n, target = %target, "escalated");
    let message = post_page(app, &inc, n, 1, ladder).await?;
    tokio::spawn(pagerduty_trigger(app.clone(), inc.clone(), n, 1));
    Ok(Paged {
        incident: inc,
        escalation: n,
        ladder: ladder.clone(),
        message,
    })
}

/// Acknowledges escalation `n` of `id` for `user`, who must hold one of the roles paged so far
/// or be the commander. Stops the ladder, shows who acknowledged on every page of it, and
/// acknowledges the PagerDuty alerts. Returns the confirmation for `user`.
pub async fn acknowledge(
    app: &App,
    id: IncidentId,
    n: u32,
    user: &UserRef,
    member_roles: &[u64],
) -> Result<String, CommandError> {
    let inc = app
        .store
        .incident(id)?
        .ok_or(UserError::NoSuchIncident(id))?;
    let Some(esc) = inc.escalations.get(n) else {
        return Err(UserError::Escalation(format!("{id} has no escalation #{n}")).into());
    };
    let commander = inc.commander().is_some_and(|c| c.id == user.id);
    if !commander && !esc.paged(member_roles) && !esc.paged_user(user.id) {
        return Err(UserError::Denied(format!(
            "acknowledge escalation #{n} of {id}; only members of {} or {id}'s commander may",
            role_mentions(&esc.roles()).replace(' ', ", ")
        ))
        .into());
    }
    let (inc, _) = app.record(id, &Actor::User(user.clone()), app.now(), |i| {
        i.decide_acknowledge(n)
    })?;
    app.store.flush().await?;
    tracing::info!(incident = %id, escalation = n, "escalation acknowledged");
    refresh_pages(app, &inc, n).await;
    let esc = inc.escalations.get(n).cloned();
    if let Some(esc) = &esc {
        let targets: Vec<String> = esc.targets().iter().map(|t| t.to_string()).collect();
        tokio::spawn(pagerduty_follow_up(
            app.clone(),
            inc.clone(),
            targets,
            pagerduty::Action::Acknowledge,
        ));
    }
    let tta = esc
        .as_ref()
        .and_then(Escalation::tta)
        .map(|d| format!(" after {}", human_duration(d)))
        .unwrap_or_default();
    Ok(format!(
        "You acknowledged escalation #{n} of {id}{tta}; nobody else will be paged for it."
    ))
}

/// Edits every posted page of escalation `n` to show how it stands now (acknowledged, stopped).
async fn refresh_pages(app: &App, inc: &Incident, n: u32) {
    let (Some(channel), Some(esc)) = (inc.channel, inc.escalations.get(n)) else {
        return;
    };
    for page in &esc.pages {
        let message = match page_message(app, inc.id, n, page.level) {
            Ok(Some(m)) => m,
            Ok(None) => continue,
            Err(e) => {
                tracing::warn!(incident = %inc.id, escalation = n, error = %e, "cannot find the page to edit");
                continue;
            }
        };
        let post = match page_post(app, inc, esc, page, None) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(incident = %inc.id, error = %e, "rendering the escalation failed");
                return;
            }
        };
        if let Err(e) = app.chat.edit(channel, message, post).await {
            tracing::warn!(incident = %inc.id, escalation = n, level = page.level, error = %e, "editing the page failed");
        }
    }
}

/// Removes `job` unless something replaced it meanwhile (then that decision stands).
fn drop_job(app: &App, job: &Job) -> Result<(), StoreError> {
    if app.store.job(job.incident, &job.kind)?.as_ref() == Some(job) {
        app.store.apply_jobs(&[JobChange::Cancel {
            incident: job.incident,
            kind: job.kind.clone(),
        }])?;
    }
    Ok(())
}

/// Runs an escalation's timer: the level it stands for went unacknowledged, so the next level is
/// paged, or, past the last one, the commander is told. A timer whose escalation moved on
/// (acknowledged, resolved, already further) pages nobody.
async fn timeout(app: &App, job: &Job) -> Result<(), JobError> {
    let JobKind::EscalationTimeout {
        escalation: n,
        level,
        policy,
    } = &job.kind
    else {
        return Ok(());
    };
    let (n, level) = (*n, *level);
    let inc = app.store.incident(job.incident)?;
    let Some((inc, esc)) = inc.and_then(|i| {
        let e = i.escalations.get(n).cloned()?;
        Some((i, e))
    }) else {
        drop_job(app, job)?;
        return Ok(());
    };
    if !inc.is_open() || !esc.is_running() || esc.current().map(|p| p.level) != Some(level) {
        drop_job(app, job)?;
        return Ok(());
    }
    let ladder = ladder_of(&app.config, &esc, policy.as_deref());
    let next = match ladder.levels.get(level as usize) {
        Some(t) => Some((t.clone(), roles_of(&app.config, t), users_of(app, t).await)),
        None => None,
    }
    .filter(|(_, roles, users)| !roles.is_empty() || !users.is_empty());
    let now = app.now();
    let next_ref = next
        .as_ref()
        .map(|(t, r, u)| (t.as_str(), r.as_slice(), u.as_slice()));
    let Ok(kinds) = inc.decide_next_level(n, level, next_ref) else {
        drop_job(app, job)?;
        return Ok(());
    };
    // What the timeline will say once this step is recorded; the post goes out first, with a
    // nonce, so that a crash in between re-sends nothing when the job runs again.
    let mut after = inc.clone();
    for kind in &kinds {
        after.apply(&Event {
            at: now,
            actor: Actor::Scheduler,
            kind: kind.clone(),
        });
    }
    let channel = inc.channel;
    let mut posted = None;
    if let Some(channel) = channel {
        let new_page = after
            .escalations
            .get(n)
            .and_then(|e| Some((e, e.pages.last()?)))
            .filter(|_| next.is_some());
        let post = if let Some((esc_after, page)) = new_page {
            let mut p = page_post(app, &after, esc_after, page, Some(&ladder))?;
            p.nonce = Some(step_nonce(inc.id, n, level + 1, 'p'));
            p
        } else {
            let mut p = exhausted_post(app, &inc, &esc, &ladder);
            p.nonce = Some(step_nonce(inc.id, n, level, 'x'));
            p
        };
        posted = Some(
            app.chat
                .post(channel, post)
                .await
                .map_err(|source| JobError::Chat { channel, source })?,
        );
    }
    let due = now + to_chrono(ladder.ack_timeout);
    let res = app.record_with(
        inc.id,
        &Actor::Scheduler,
        now,
        |i| i.decide_next_level(n, level, next_ref),
        |i, events, _| match events.iter().find_map(|e| match e.kind {
            EventKind::Escalated { level, .. } => Some(level),
            _ => None,
        }) {
            Some(l) => vec![timeout_job(i.id, n, l, &ladder, due)],
            None => vec![cancel_timeout(i.id, n)],
        },
    );
    let inc = match res {
        Ok((inc, _)) => inc,
        Err(AppendError::Rule(e)) => {
            // Acknowledged (or resolved) between the check and the write: the page just sent
            // shows how it stands instead of asking again.
            tracing::info!(incident = %inc.id, escalation = n, reason = %e, "the ladder stopped while paging");
            if let (Some(channel), Some(message), Some(fresh)) =
                (channel, posted, app.store.incident(inc.id)?)
            {
                if let Some(esc) = fresh.escalations.get(n) {
                    let page = after
                        .escalations
                        .get(n)
                        .and_then(|e| e.pages.last().cloned());
                    if let Some(page) = page.filter(|_| next.is_some()) {
                        let post = page_post(app, &fresh, esc, &page, None)?;
                        let _ = app.chat.edit(channel, message, post).await;
                    }
                }
            }
            drop_job(app, job)?;
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    app.store.flush().await?;
    if let (Some((target, _, _)), Some(message)) = (&next, posted) {
        app.store
            .meta_set(&message_key(inc.id, n, level + 1), &message.to_string())?;
        tracing::info!(incident = %inc.id, escalation = n, level = level + 1, target = %target, "nobody acknowledged; paged the next level");
        tokio::spawn(pagerduty_trigger(app.clone(), inc.clone(), n, level + 1));
    } else if next.is_none() {
        tracing::info!(incident = %inc.id, escalation = n, "nobody acknowledged any level; told the commander");
    }
    Ok(())
}

/// Past the last level: the commander (and only the commander) is pinged.
fn exhausted_post(app: &App, inc: &Incident, esc: &Escalation, ladder: &Ladder) -> Post {
    let commander = inc.commander();
    let who = commander
        .map(|u| app.chat.user_mention(u))
        .unwrap_or_else(|| "Commander".into());
    let mut post = Post::text(format!(
        "{who}, nobody acknowledged escalation #{} of **{}**: {} paged, {} each. Reach them another way, or `/escalate` to someone else.",
        esc.number,
        inc.id,
        esc.targets().join(" → "),
        human_duration(to_chrono(ladder.ack_timeout)),
    ));
    post.mentions = Mentions::users(&commander.map(|u| u.id).into_iter().collect::<Vec<_>>());
    post
}

/// Runs the stuck nudge: an incident still investigating at a nudged severity is shown buttons
/// that escalate to each configured target.
async fn nudge(app: &App, job: &Job) -> Result<(), JobError> {
    let done = JobChange::Cancel {
        incident: job.incident,
        kind: JobKind::StuckNudge,
    };
    let inc = app.store.incident(job.incident)?;
    let now = app.now();
    let stuck_for = |i: &Incident| now - i.state_since;
    let Some(inc) = inc.filter(|i| {
        wants_nudge(&app.config, i)
            && stuck_for(i) >= to_chrono(app.config.escalation.stuck_after.0)
    }) else {
        app.store.apply_jobs(&[done])?;
        return Ok(());
    };
    let Some(channel) = inc.channel else {
        app.store.apply_jobs(&[done])?;
        return Ok(());
    };
    let commander = inc.commander();
    let mut post = Post::text(format!(
        "{}, **{}** ({}) has been investigating for {}. If the team is stuck, page the people who can help:",
        commander
            .map(|u| app.chat.user_mention(u))
            .unwrap_or_else(|| "Commander".into()),
        inc.id,
        inc.severity,
        human_duration(stuck_for(&inc)),
    ))
    .with_buttons(
        app.config
            .escalation
            .targets
            .iter()
            .filter(|(_, t)| !t.roles.is_empty())
            .map(|(name, _)| name)
            .take(25)
            .map(|t| Button {
                custom_id: nudge_button_id(inc.id, t),
                label: format!("Escalate to {t}"),
                style: ButtonStyle::Secondary,
            })
            .collect(),
    );
    post.mentions = Mentions::users(&commander.map(|u| u.id).into_iter().collect::<Vec<_>>());
    post.nonce = Some(crate::jobs::job_nonce(job, 'n', channel));
    app.chat
        .post(channel, post)
        .await
        .map_err(|source| JobError::Chat { channel, source })?;
    app.store.apply_jobs(&[done])?;
    tracing::info!(incident = %inc.id, "suggested escalating a stuck incident");
    Ok(())
}

/// The reason a nudge button gives when it escalates.
pub fn nudge_reason(inc: &Incident, now: DateTime<Utc>) -> String {
    format!(
        "{} has been investigating for {} at {}; escalated from sitrep's suggestion",
        inc.id,
        human_duration(now - inc.state_since),
        inc.severity
    )
}

/// After an incident is resolved: its stopped ladders say so on their pages, and every PagerDuty
/// alert it opened is resolved.
pub async fn on_resolved(app: &App, id: IncidentId) {
    let Ok(Some(inc)) = app.store.incident(id) else {
        return;
    };
    if inc.is_open() {
        return;
    }
    let stopped: Vec<u32> = inc
        .escalations
        .iter()
        .filter(|e| e.stopped.is_some() && e.stopped == inc.times.resolved)
        .map(|e| e.number)
        .collect();
    for n in stopped {
        refresh_pages(app, &inc, n).await;
    }
    let mut targets: Vec<String> = Vec::new();
    for e in inc.escalations.iter() {
        for t in e.targets() {
            if !targets.iter().any(|x| x == t) {
                targets.push(t.to_string());
            }
        }
    }
    pagerduty_follow_up(app.clone(), inc, targets, pagerduty::Action::Resolve).await;
}

/// Says in the incident channel what PagerDuty did not take; never pings anyone.
async fn report(app: &App, inc: &Incident, text: String) {
    let Some(channel) = inc.channel else {
        return;
    };
    if let Err(e) = app.chat.post(channel, Post::text(text)).await {
        tracing::error!(incident = %inc.id, error = %e, "could not report a PagerDuty failure in the channel");
    }
}

/// Sends the page of `level` of escalation `n` to PagerDuty, when its target has a routing key.
async fn pagerduty_trigger(app: App, inc: Incident, n: u32, level: u32) {
    let Some(pd) = app.pagerduty.clone() else {
        return;
    };
    let Some(esc) = inc.escalations.get(n) else {
        return;
    };
    let Some(page) = esc.pages.iter().find(|p| p.level == level) else {
        return;
    };
    if !pd.routes(&page.target) {
        return;
    }
    let url = inc.channel.and_then(|c| app.chat.channel_url(c));
    let alert = Alert {
        summary: format!(
            "[{} {}] {}: {} paged, {}",
            inc.id, inc.severity, inc.title, page.target, esc.reason
        ),
        source: inc.service.clone().unwrap_or_else(|| "sitrep".into()),
        severity: pagerduty::severity(inc.severity).into(),
        timestamp: page.at,
        component: inc.service.clone(),
        group: None,
        class: Some("incident escalation".into()),
        custom_details: json!({
            "incident": inc.id.to_string(),
            "title": inc.title,
            "severity": inc.severity.to_string(),
            "state": inc.state.to_string(),
            "commander": inc.commander().map(|u| u.name.clone()),
            "reason": esc.reason,
            "escalated_by": esc.by.label(),
            "escalation": n,
            "level": level,
            "channel": url,
        }),
    };
    let links: Vec<Link> = url
        .iter()
        .map(|u| Link {
            href: u.clone(),
            text: format!("{} incident channel", inc.id),
        })
        .collect();
    let key = pagerduty::dedup_key(inc.id, &page.target);
    if let Err(e) = pd
        .trigger(&page.target, &key, &alert, &links, url.as_deref())
        .await
    {
        report(
            &app,
            &inc,
            format!(
                "⚠️ PagerDuty did not take the page for **{}** (escalation #{n}, level {level}): {e}. The page in this channel stands; if nobody acknowledges, reach them another way.",
                page.target
            ),
        )
        .await;
    }
}

/// Acknowledges or resolves the PagerDuty alerts of `targets` that have a routing key.
async fn pagerduty_follow_up(
    app: App,
    inc: Incident,
    targets: Vec<String>,
    action: pagerduty::Action,
) {
    let Some(pd) = app.pagerduty.clone() else {
        return;
    };
    for target in targets.iter().filter(|t| pd.routes(t)) {
        let key = pagerduty::dedup_key(inc.id, target);
        let (res, verb) = match action {
            pagerduty::Action::Resolve => (pd.resolve(target, &key).await, "resolve"),
            _ => (pd.acknowledge(target, &key).await, "acknowledge"),
        };
        if let Err(e) = res {
            report(
                &app,
                &inc,
                format!("⚠️ PagerDuty did not {verb} the alert for **{target}**: {e}. Do it in PagerDuty so that nobody keeps being paged."),
            )
            .await;
        }
    }
}

#[cfg(test)]
mod tests;
