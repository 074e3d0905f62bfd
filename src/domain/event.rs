//! Timeline events: every fact about an incident, appended and never rewritten.

use super::playbook::Playbook;
use super::{Cadence, Severity, State};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A person as the chat platform knows them. The name is a snapshot, kept for the post-mortem.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct UserRef {
    pub id: u64,
    pub name: String,
}

impl UserRef {
    pub fn new(id: u64, name: impl Into<String>) -> Self {
        UserRef {
            id,
            name: name.into(),
        }
    }
}

/// Who or what caused an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Actor {
    User(UserRef),
    Scheduler,
    Webhook { source: String },
    System,
}

impl Actor {
    pub fn user(&self) -> Option<&UserRef> {
        match self {
            Actor::User(u) => Some(u),
            _ => None,
        }
    }

    pub fn label(&self) -> String {
        match self {
            Actor::User(u) => u.name.clone(),
            Actor::Scheduler => "sitrep (scheduled)".into(),
            Actor::Webhook { source } => format!("{source} (webhook)"),
            Actor::System => "sitrep".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub at: DateTime<Utc>,
    pub actor: Actor,
    pub kind: EventKind,
}

/// What happened. Variants only grow; old ones stay readable because stored values carry a schema
/// version and serde ignores nothing silently here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum EventKind {
    Opened {
        title: String,
        severity: Severity,
        summary: Option<String>,
        service: Option<String>,
        /// When the problem began; may be earlier than the declaration.
        started: DateTime<Utc>,
        /// The incident's own channel or thread, when the chat platform made one.
        channel: Option<u64>,
        channel_name: Option<String>,
        #[serde(default)]
        drill: bool,
        /// What the incident took from its type: absent for incidents opened without one, and
        /// for those stored before types existed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        playbook: Option<Box<Playbook>>,
    },
    SeverityChanged {
        from: Severity,
        to: Severity,
        reason: Option<String>,
    },
    StateChanged {
        from: State,
        to: State,
    },
    RoleAssigned {
        role: String,
        user: UserRef,
    },
    RoleRelinquished {
        role: String,
        user: UserRef,
    },
    /// A status update: typed by a human (`automated == false`) or posted on the cadence.
    StatusPosted {
        automated: bool,
        state: State,
        text: String,
    },
    NoteAdded {
        text: String,
    },
    ActionItemAdded {
        text: String,
        owner: Option<UserRef>,
        due: Option<DateTime<Utc>>,
    },
    Escalated {
        escalation: u32,
        target: String,
        level: u32,
        roles: Vec<u64>,
        reason: String,
        /// The people paged besides the roles: whoever an on-call schedule named.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        users: Vec<u64>,
    },
    EscalationAcknowledged {
        escalation: u32,
    },
    EscalationTimedOut {
        escalation: u32,
        level: u32,
    },
    DeployObserved {
        service: String,
        version: String,
        environment: Option<String>,
        url: Option<String>,
        deployed_at: DateTime<Utc>,
    },
    MetricSnapshot {
        query: String,
        summary: String,
        chart: Option<String>,
    },
    MessageCaptured {
        message_id: u64,
        author: UserRef,
        content: String,
        /// `created`, `edited`, `deleted` or `highlighted`.
        change: String,
        /// When the message was said. The event's own time is when it was marked (or edited,
        /// deleted); a key moment belongs on the timeline at the time it was said. Absent in
        /// events stored before it was recorded.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        said_at: Option<DateTime<Utc>>,
    },
    Resolved {
        summary: String,
    },
    Reopened {
        reason: String,
    },
    /// This incident's own update cadence; `None` goes back to its severity's. A severity change
    /// clears it, so that a tighter severity is never held to a looser (or silenced) cadence.
    CadenceChanged {
        cadence: Option<Cadence>,
    },
    /// A scheduled update found nothing new from the team, and the commander was asked for one.
    UpdateReminderSent {
        commander: Option<UserRef>,
    },
    /// How the incident shows on the public status page: kept off it, or under a title and
    /// summary meant for the public instead of the internal ones. `None` keeps the earlier one.
    PublicChanged {
        visible: bool,
        title: Option<String>,
        summary: Option<String>,
    },
    /// The resolved incident's channel was deleted to make room in a full server, after its
    /// whole history was read into the record; `messages` were kept from it in all.
    ChannelRemoved {
        channel: u64,
        messages: usize,
    },
    /// Action item `item` (its place among the incident's items, from 0) got an issue in a
    /// tracker: `tracker` is `github` or `jira`, `key` what the tracker calls it (`acme/app#12`,
    /// `OPS-7`), `url` where people read it.
    ActionItemFiled {
        item: usize,
        tracker: String,
        key: String,
        url: String,
    },
    /// The tracker reports a new state for item `item`'s issue; `done` when it was closed or
    /// resolved, which marks the item done.
    ActionItemTracked {
        item: usize,
        state: String,
        #[serde(default)]
        done: bool,
    },
    /// The owner of item `item` was reminded that it is due, or overdue.
    ActionItemReminded {
        item: usize,
    },
    /// An alert of a group declared as (or attached to) this incident fired; `again` when it
    /// had resolved before.
    AlertFired {
        /// The alert group's number.
        group: u64,
        fingerprint: String,
        name: String,
        #[serde(default)]
        summary: Option<String>,
        starts_at: DateTime<Utc>,
        #[serde(default)]
        again: bool,
        /// Where the alert was generated (the Prometheus graph, the Grafana rule).
        #[serde(default)]
        link: Option<String>,
    },
    AlertResolved {
        group: u64,
        fingerprint: String,
        name: String,
        ends_at: DateTime<Utc>,
    },
    /// Checklist item `item` (from 1) is done. Its text is kept so that the timeline reads
    /// without the list.
    ChecklistTicked {
        item: u32,
        text: String,
    },
    /// A tick taken back: the item was not done after all.
    ChecklistUnticked {
        item: u32,
        text: String,
    },
    /// Item `item` will not be done in this incident, and why.
    ChecklistSkipped {
        item: u32,
        text: String,
        reason: String,
    },
    /// An item added during the incident, at the end of its checklist.
    ChecklistItemAdded {
        text: String,
    },
    /// A custom field (or the impact) set to `value`, replacing what it held.
    FieldSet {
        name: String,
        value: String,
    },
}

impl EventKind {
    /// The name used in logs and the post-mortem timeline.
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::Opened { .. } => "opened",
            EventKind::SeverityChanged { .. } => "severity_changed",
            EventKind::StateChanged { .. } => "state_changed",
            EventKind::RoleAssigned { .. } => "role_assigned",
            EventKind::RoleRelinquished { .. } => "role_relinquished",
            EventKind::StatusPosted { .. } => "status_posted",
            EventKind::NoteAdded { .. } => "note_added",
            EventKind::ActionItemAdded { .. } => "action_item_added",
            EventKind::Escalated { .. } => "escalated",
            EventKind::EscalationAcknowledged { .. } => "escalation_acknowledged",
            EventKind::EscalationTimedOut { .. } => "escalation_timed_out",
            EventKind::DeployObserved { .. } => "deploy_observed",
            EventKind::MetricSnapshot { .. } => "metric_snapshot",
            EventKind::MessageCaptured { .. } => "message_captured",
            EventKind::Resolved { .. } => "resolved",
            EventKind::Reopened { .. } => "reopened",
            EventKind::CadenceChanged { .. } => "cadence_changed",
            EventKind::UpdateReminderSent { .. } => "update_reminder_sent",
            EventKind::PublicChanged { .. } => "public_changed",
            EventKind::ChannelRemoved { .. } => "channel_removed",
            EventKind::ActionItemFiled { .. } => "action_item_filed",
            EventKind::ActionItemTracked { .. } => "action_item_tracked",
            EventKind::ActionItemReminded { .. } => "action_item_reminded",
            EventKind::AlertFired { .. } => "alert_fired",
            EventKind::AlertResolved { .. } => "alert_resolved",
            EventKind::ChecklistTicked { .. } => "checklist_ticked",
            EventKind::ChecklistUnticked { .. } => "checklist_unticked",
            EventKind::ChecklistSkipped { .. } => "checklist_skipped",
            EventKind::ChecklistItemAdded { .. } => "checklist_item_added",
            EventKind::FieldSet { .. } => "field_set",
        }
    }

    /// One line for timelines: what happened, in words.
    pub fn describe(&self) -> String {
        match self {
            EventKind::Opened {
                title, severity, ..
            } => format!("Opened as {severity}: {title}"),
            EventKind::SeverityChanged { from, to, reason } => match reason {
                Some(r) => format!("Severity {from} → {to}: {r}"),
                None => format!("Severity {from} → {to}"),
            },
            EventKind::StateChanged { from, to } => format!("State {from} → {to}"),
            EventKind::RoleAssigned { role, user } => format!("{} is {role}", user.name),
            EventKind::RoleRelinquished { role, user } => {
                format!("{} is no longer {role}", user.name)
            }
            EventKind::StatusPosted {
                automated: false,
                text,
                ..
            } => format!("Update: {text}"),
            EventKind::StatusPosted {
                automated: true, ..
            } => "Scheduled status update posted".into(),
            EventKind::NoteAdded { text } => format!("Note: {text}"),
            EventKind::ActionItemAdded { text, owner, .. } => match owner {
                Some(o) => format!("Action item for {}: {text}", o.name),
                None => format!("Action item: {text}"),
            },
            EventKind::Escalated {
                target,
                level,
                reason,
                ..
            } => format!("Escalated to {target} (level {level}): {reason}"),
            EventKind::EscalationAcknowledged { escalation } => {
                format!("Escalation #{escalation} acknowledged")
            }
            EventKind::EscalationTimedOut { escalation, level } => {
                format!("Escalation #{escalation} not acknowledged at level {level}")
            }
            EventKind::DeployObserved {
                service, version, ..
            } => format!("Deploy of {service} {version}"),
            EventKind::MetricSnapshot { query, .. } => format!("Metric snapshot: {query}"),
            EventKind::MessageCaptured {
                author,
                content,
                change,
                ..
            } => format!("Message {change} by {}: {content}", author.name),
            EventKind::Resolved { summary } => format!("Resolved: {summary}"),
            EventKind::Reopened { reason } => format!("Reopened: {reason}"),
            EventKind::CadenceChanged {
                cadence: Some(Cadence::Off),
            } => "Scheduled status updates turned off".into(),
            EventKind::CadenceChanged { cadence: Some(c) } => format!("Status updates {c}"),
            EventKind::CadenceChanged { cadence: None } => {
                "Status updates back to the severity's cadence".into()
            }
            EventKind::UpdateReminderSent { commander } => match commander {
                Some(c) => format!("Reminded {} to post an update", c.name),
                None => "Reminded the team to post an update".into(),
            },
            EventKind::AlertFired {
                name,
                summary,
                again,
                ..
            } => {
                let fired = if *again { "fired again" } else { "fired" };
                match summary {
                    Some(s) => format!("Alert {name} {fired}: {s}"),
                    None => format!("Alert {name} {fired}"),
                }
            }
            EventKind::AlertResolved { name, .. } => format!("Alert {name} resolved"),
            EventKind::PublicChanged { visible: false, .. } => {
                "Kept off the public status page".into()
            }
            EventKind::PublicChanged { title, summary, .. } => {
                let mut s = "Shown on the public status page".to_string();
                if let Some(t) = title {
                    s.push_str(&format!(" as \u{201c}{t}\u{201d}"));
                }
                if let Some(m) = summary {
                    s.push_str(&format!(" (public summary: {m})"));
                }
                s
            }
            EventKind::ChannelRemoved { messages, .. } => format!(
                "Channel removed to make room in the server; its {messages} messages are kept in the record"
            ),
            EventKind::ActionItemFiled { item, key, url, .. } => {
                format!("Action item #{} filed as {key}: {url}", item + 1)
            }
            EventKind::ActionItemTracked {
                item,
                state,
                done: true,
            } => format!("Action item #{} done ({state} in the tracker)", item + 1),
            EventKind::ActionItemTracked { item, state, .. } => {
                format!("Action item #{} is {state} in the tracker", item + 1)
            }
            EventKind::ActionItemReminded { item } => {
                format!("Reminded the owner of action item #{} that it is due", item + 1)
            }
            EventKind::ChecklistTicked { item, text } => format!("Checklist #{item} done: {text}"),
            EventKind::ChecklistUnticked { item, text } => {
                format!("Checklist #{item} not done after all: {text}")
            }
            EventKind::ChecklistSkipped { item, text, reason } => {
                format!("Checklist #{item} skipped: {text} ({reason})")
            }
            EventKind::ChecklistItemAdded { text } => format!("Checklist item added: {text}"),
            EventKind::FieldSet { name, value } => format!("{name} set to {value}"),
        }
    }
}
