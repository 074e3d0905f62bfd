//! An incident's current state as the fold of its timeline, and the rules that decide new events.

use super::playbook::{self, FieldDef, Item, ItemDef, Mark, Progress, IMPACT, MAX_ITEMS};
use super::{
    human_duration, Actor, Cadence, Event, EventKind, IncidentId, Severity, State, UserRef,
    COMMANDER,
};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// A rule was broken; the text is shown to the responder as it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("`{0}` is not an incident id; they look like INC-7")]
    BadIncidentId(String),
    #[error("`{0}` is not a severity; use SEV1, SEV2, …")]
    BadSeverity(String),
    #[error("`{0}` is not a state; use investigating, identified, monitoring or resolved")]
    BadState(String),
    #[error("{0} is resolved; reopen it with `/incident reopen` first")]
    Resolved(IncidentId),
    #[error("{0} is not resolved, so there is nothing to reopen")]
    NotResolved(IncidentId),
    #[error("{id} is already {state}; it can move forward (investigating → identified → monitoring) but not back to {to}")]
    Backwards {
        id: IncidentId,
        state: State,
        to: State,
    },
    #[error("use `/incident resolve` to resolve {0}, so that a summary is recorded")]
    ResolveThroughResolve(IncidentId),
    #[error("{id} is already {severity}")]
    SameSeverity { id: IncidentId, severity: Severity },
    #[error("{user} is already the {role} of {id}")]
    AlreadyHolds {
        id: IncidentId,
        user: String,
        role: String,
    },
    #[error("{0} must not be empty")]
    Empty(&'static str),
    #[error("{what} is {len} characters long; the limit is {max}")]
    TooLong {
        what: &'static str,
        len: usize,
        max: usize,
    },
    #[error("`started` must be in the past; {0} is in the future")]
    StartedInFuture(String),
    #[error("{0}")]
    BadCadence(String),
    #[error("{id} has no action item #{number}; `/incident status` lists them")]
    NoSuchActionItem { id: IncidentId, number: usize },
    #[error("action item #{number} is already filed as {key}")]
    AlreadyFiled { number: usize, key: String },
    #[error("{0} is more often than once a minute; the shortest cadence is 1m")]
    CadenceTooShort(String),
    #[error("{severity} incidents must keep their scheduled updates (allow_cadence_off = false); set a slower cadence instead, e.g. `every:1h`")]
    CadenceOffForbidden { severity: Severity },
    #[error("{0}")]
    Escalation(String),
    #[error("{0}")]
    Field(String),
    #[error("{0}")]
    Checklist(String),
}

/// Who held which role, and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoleAssignment {
    pub role: String,
    pub user: UserRef,
    pub assumed: DateTime<Utc>,
    pub relinquished: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionItem {
    pub text: String,
    pub owner: Option<UserRef>,
    pub due: Option<DateTime<Utc>>,
    pub added: DateTime<Utc>,
    /// Its issue in a tracker, once filed.
    #[serde(default)]
    pub issue: Option<FiledIssue>,
    /// Closed in its tracker.
    #[serde(default)]
    pub done: bool,
    /// When its owner was last reminded of it.
    #[serde(default)]
    pub reminded: Option<DateTime<Utc>>,
}

/// An action item's issue, as its tracker last reported it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FiledIssue {
    pub tracker: String,
    pub key: String,
    pub url: String,
    /// The tracker's own word for it: `open`, `closed`, `In Progress`, `Done`...
    pub state: String,
}

impl ActionItem {
    /// Past its due date and not done.
    pub fn overdue(&self, now: DateTime<Utc>) -> bool {
        !self.done && self.due.is_some_and(|d| d <= now)
    }

    /// Due (or overdue), not done, owned, and its owner not yet reminded today (UTC): owners
    /// hear of an item once a day from its due date until it is done.
    pub fn needs_reminder(&self, now: DateTime<Utc>) -> bool {
        self.owner.is_some()
            && self.overdue(now)
            && self
                .reminded
                .map_or(true, |r| r.date_naive() < now.date_naive())
    }
}

/// The moments the metrics derive from.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Times {
    pub started: Option<DateTime<Utc>>,
    pub declared: Option<DateTime<Utc>>,
    /// First human response after the declaration: an update, a role taken, a note, an ack.
    pub acknowledged: Option<DateTime<Utc>>,
    pub identified: Option<DateTime<Utc>>,
    /// First time the incident reached monitoring (or resolved, when monitoring was skipped).
    pub mitigated: Option<DateTime<Utc>>,
    pub resolved: Option<DateTime<Utc>>,
}

/// A human status update, the latest of which status posts quote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HumanUpdate {
    pub at: DateTime<Utc>,
    pub by: String,
    pub text: String,
}

/// The folded state of one incident. Cached in the store beside the events that built it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    pub id: IncidentId,
    pub title: String,
    pub severity: Severity,
    pub state: State,
    pub summary: Option<String>,
    pub service: Option<String>,
    pub channel: Option<u64>,
    pub channel_name: Option<String>,
    pub drill: bool,
    pub opened_by: Actor,
    pub times: Times,
    /// Since the last state change; "monitoring for 20m" in status posts.
    pub state_since: DateTime<Utc>,
    pub roles: Vec<RoleAssignment>,
    pub action_items: Vec<ActionItem>,
    pub notes: u32,
    pub last_update: Option<HumanUpdate>,
    pub last_status_post: Option<DateTime<Utc>>,
    pub resolution: Option<String>,
    pub reopened: u32,
    /// This incident's own update cadence, overriding its severity's until the severity changes.
    #[serde(default)]
    pub cadence: Option<Cadence>,
    /// Whether the public status page lists it; `/incident public visible:false` keeps it off.
    #[serde(default = "listed")]
    pub public_visible: bool,
    /// What the public status page calls it instead of `title`, when the two should differ.
    #[serde(default)]
    pub public_title: Option<String>,
    /// What the public status page says of the impact instead of `summary`.
    #[serde(default)]
    pub public_summary: Option<String>,
    /// Every escalation and the ladder it climbed.
    #[serde(default)]
    pub escalations: super::Escalations,
    /// The alerts it came from or was given, by fingerprint.
    #[serde(default)]
    pub alerts: std::collections::BTreeMap<String, AlertState>,
    /// The incident type it was opened as, if any.
    #[serde(default)]
    pub kind: Option<String>,
    /// Its checklist: the type's items, then those added during the incident.
    #[serde(default)]
    pub checklist: Vec<Item>,
    /// The custom fields its type defined when it was opened.
    #[serde(default)]
    pub field_defs: Vec<FieldDef>,
    /// Field values set so far (the impact among them), in the order first set.
    #[serde(default)]
    pub fields: Vec<(String, String)>,
    /// How many events the timeline holds; the next event's sequence number.
    pub events: u32,
}

/// An alert as the incident knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertState {
    pub name: String,
    pub summary: Option<String>,
    pub firing: bool,
    pub starts_at: DateTime<Utc>,
    pub ends_at: Option<DateTime<Utc>>,
}

pub const MAX_TITLE: usize = 150;

/// Incidents cached before the status page existed were all listed.
fn listed() -> bool {
    true
}
pub const MAX_TEXT: usize = 4000;

/// Checks a piece of user text: trimmed, not empty, not longer than `max` characters.
pub fn require_text(what: &'static str, text: &str, max: usize) -> Result<String, RuleError> {
    let t = text.trim();
    if t.is_empty() {
        return Err(RuleError::Empty(what));
    }
    let len = t.chars().count();
    if len > max {
        return Err(RuleError::TooLong { what, len, max });
    }
    Ok(t.to_string())
}

impl Incident {
    /// Builds the incident from its first event, which must be `Opened`.
    pub fn from_opened(id: IncidentId, event: &Event) -> Option<Incident> {
        let EventKind::Opened {
            title,
            severity,
            summary,
            service,
            started,
            channel,
            channel_name,
            drill,
            playbook,
        } = &event.kind
        else {
            return None;
        };
        let mut roles = Vec::new();
        if let Some(u) = event.actor.user() {
            roles.push(RoleAssignment {
                role: COMMANDER.into(),
                user: u.clone(),
                assumed: event.at,
                relinquished: None,
            });
        }
        Some(Incident {
            id,
            title: title.clone(),
            severity: *severity,
            state: State::Investigating,
            summary: summary.clone(),
            service: service.clone(),
            channel: *channel,
            channel_name: channel_name.clone(),
            drill: *drill,
            opened_by: event.actor.clone(),
            times: Times {
                started: Some(*started),
                declared: Some(event.at),
                ..Times::default()
            },
            state_since: event.at,
            roles,
            action_items: Vec::new(),
            notes: 0,
            last_update: None,
            last_status_post: None,
            resolution: None,
            reopened: 0,
            public_visible: true,
            public_title: None,
            public_summary: None,
            escalations: super::Escalations::default(),
            alerts: Default::default(),
            kind: playbook.as_ref().map(|p| p.kind.clone()),
            checklist: playbook
                .iter()
                .flat_map(|p| &p.items)
                .map(|d| Item::new(d.clone(), false))
                .collect(),
            field_defs: playbook.iter().flat_map(|p| p.fields.clone()).collect(),
            fields: playbook.iter().flat_map(|p| p.values.clone()).collect(),
            cadence: playbook.as_ref().and_then(|p| p.cadence.clone()),
            events: 1,
        })
    }

    /// Folds one more event in. Never fails: rules are checked before an event is written.
    pub fn apply(&mut self, event: &Event) {
        self.events += 1;
        self.escalations.apply(event);
        let human = event.actor.user().is_some();
        match &event.kind {
            EventKind::Opened { .. } => {}
            EventKind::SeverityChanged { to, .. } => {
                self.severity = *to;
                self.cadence = None;
            }
            EventKind::StateChanged { to, .. } => self.enter(*to, event.at),
            EventKind::RoleAssigned { role, user } => {
                self.relinquish(role, event.at);
                self.roles.push(RoleAssignment {
                    role: role.clone(),
                    user: user.clone(),
                    assumed: event.at,
                    relinquished: None,
                });
            }
            EventKind::RoleRelinquished { role, user } => {
                for r in self.roles.iter_mut() {
                    if &r.role == role && r.user.id == user.id && r.relinquished.is_none() {
                        r.relinquished = Some(event.at);
                    }
                }
            }
            EventKind::StatusPosted {
                automated, text, ..
            } => {
                if *automated {
                    self.last_status_post = Some(event.at);
                } else {
                    self.last_update = Some(HumanUpdate {
                        at: event.at,
                        by: event.actor.label(),
                        text: text.clone(),
                    });
                }
            }
            EventKind::NoteAdded { .. } => self.notes += 1,
            EventKind::ActionItemAdded { text, owner, due } => self.action_items.push(ActionItem {
                text: text.clone(),
                owner: owner.clone(),
                due: *due,
                added: event.at,
                issue: None,
                done: false,
                reminded: None,
            }),
            EventKind::ActionItemFiled {
                item,
                tracker,
                key,
                url,
            } => {
                if let Some(a) = self.action_items.get_mut(*item) {
                    a.issue = Some(FiledIssue {
                        tracker: tracker.clone(),
                        key: key.clone(),
                        url: url.clone(),
                        state: "open".into(),
                    });
                }
            }
            EventKind::ActionItemTracked { item, state, done } => {
                if let Some(a) = self.action_items.get_mut(*item) {
                    a.done = *done;
                    if let Some(i) = a.issue.as_mut() {
                        i.state = state.clone();
                    }
                }
            }
            EventKind::ActionItemReminded { item } => {
                if let Some(a) = self.action_items.get_mut(*item) {
                    a.reminded = Some(event.at);
                }
            }
            EventKind::Resolved { summary } => {
                self.enter(State::Resolved, event.at);
                self.resolution = Some(summary.clone());
            }
            EventKind::Reopened { .. } => {
                self.state = State::Investigating;
                self.state_since = event.at;
                self.times.resolved = None;
                self.reopened += 1;
            }
            EventKind::Escalated { .. }
            | EventKind::EscalationTimedOut { .. }
            | EventKind::DeployObserved { .. }
            | EventKind::MetricSnapshot { .. }
            | EventKind::MessageCaptured { .. } => {}
            EventKind::EscalationAcknowledged { .. } => {}
            EventKind::CadenceChanged { cadence } => self.cadence = cadence.clone(),
            EventKind::UpdateReminderSent { .. } => {}
            // Nothing is posted to a channel that is gone; the name stays for the record.
            EventKind::ChannelRemoved { .. } => self.channel = None,
            EventKind::AlertFired {
                fingerprint,
                name,
                summary,
                starts_at,
                ..
            } => {
                self.alerts.insert(
                    fingerprint.clone(),
                    AlertState {
                        name: name.clone(),
                        summary: summary.clone(),
                        firing: true,
                        starts_at: *starts_at,
                        ends_at: None,
                    },
                );
            }
            EventKind::AlertResolved {
                fingerprint,
                ends_at,
                ..
            } => {
                if let Some(a) = self.alerts.get_mut(fingerprint) {
                    a.firing = false;
                    a.ends_at = Some(*ends_at);
                }
            }
            EventKind::ChecklistTicked { item, .. } => {
                let mark = Mark {
                    by: event.actor.clone(),
                    at: event.at,
                };
                if let Some(i) = self.item_mut(*item) {
                    i.done = Some(mark);
                    i.skipped = None;
                }
            }
            EventKind::ChecklistUnticked { item, .. } => {
                if let Some(i) = self.item_mut(*item) {
                    i.done = None;
                }
            }
            EventKind::ChecklistSkipped { item, reason, .. } => {
                let mark = Mark {
                    by: event.actor.clone(),
                    at: event.at,
                };
                if let Some(i) = self.item_mut(*item) {
                    i.skipped = Some((mark, reason.clone()));
                    i.done = None;
                }
            }
            EventKind::ChecklistItemAdded { text } => self.checklist.push(Item::new(
                ItemDef {
                    text: text.clone(),
                    runbook: None,
                    hint: None,
                    owner: None,
                },
                true,
            )),
            EventKind::FieldSet { name, value } => {
                match self.fields.iter_mut().find(|(n, _)| n == name) {
                    Some(slot) => slot.1 = value.clone(),
                    None => self.fields.push((name.clone(), value.clone())),
                }
            }
            EventKind::PublicChanged {
                visible,
                title,
                summary,
            } => {
                self.public_visible = *visible;
                if let Some(t) = title {
                    self.public_title = Some(t.clone());
                }
                if let Some(s) = summary {
                    self.public_summary = Some(s.clone());
                }
            }
        }
        let responds = matches!(
            event.kind,
            EventKind::StateChanged { .. }
                | EventKind::StatusPosted {
                    automated: false,
                    ..
                }
                | EventKind::RoleAssigned { .. }
                | EventKind::NoteAdded { .. }
                | EventKind::SeverityChanged { .. }
                | EventKind::CadenceChanged { .. }
                | EventKind::EscalationAcknowledged { .. }
                | EventKind::Resolved { .. }
                | EventKind::ChecklistTicked { .. }
                | EventKind::ChecklistSkipped { .. }
                | EventKind::FieldSet { .. }
        );
        if human && responds && self.times.acknowledged.is_none() {
            self.times.acknowledged = Some(event.at);
        }
    }

    fn enter(&mut self, to: State, at: DateTime<Utc>) {
        if to != self.state {
            self.state_since = at;
        }
        self.state = to;
        if to >= State::Identified && self.times.identified.is_none() {
            self.times.identified = Some(at);
        }
        if to >= State::Monitoring && self.times.mitigated.is_none() {
            self.times.mitigated = Some(at);
        }
        if to == State::Resolved {
            self.times.resolved = Some(at);
        }
    }

    fn relinquish(&mut self, role: &str, at: DateTime<Utc>) {
        for r in self.roles.iter_mut() {
            if r.role == role && r.relinquished.is_none() {
                r.relinquished = Some(at);
            }
        }
    }

    /// Current holder of a role.
    pub fn holder(&self, role: &str) -> Option<&UserRef> {
        self.roles
            .iter()
            .rev()
            .find(|r| r.role == role && r.relinquished.is_none())
            .map(|r| &r.user)
    }

    pub fn commander(&self) -> Option<&UserRef> {
        self.holder(COMMANDER)
    }

    /// Roles held right now, in the order they were taken.
    pub fn current_roles(&self) -> Vec<&RoleAssignment> {
        self.roles
            .iter()
            .filter(|r| r.relinquished.is_none())
            .collect()
    }

    pub fn is_open(&self) -> bool {
        self.state != State::Resolved
    }

    fn started(&self) -> Option<DateTime<Utc>> {
        self.times.started.or(self.times.declared)
    }

    /// Time to detect: from the start of impact to the declaration.
    pub fn ttd(&self) -> Option<Duration> {
        Some(self.times.declared? - self.started()?)
    }

    /// Time to acknowledge: from the declaration to the first human response.
    pub fn tta(&self) -> Option<Duration> {
        Some(self.times.acknowledged? - self.times.declared?)
    }

    /// Time to mitigate: from the start of impact to monitoring.
    pub fn ttm(&self) -> Option<Duration> {
        Some(self.times.mitigated? - self.started()?)
    }

    /// Time to resolve: from the start of impact to resolution.
    pub fn ttr(&self) -> Option<Duration> {
        Some(self.times.resolved? - self.started()?)
    }

    /// "resolved after 1h 5m" style duration of the whole incident so far.
    pub fn age(&self, now: DateTime<Utc>) -> String {
        let start = self.started().unwrap_or(now);
        human_duration(self.times.resolved.unwrap_or(now) - start)
    }

    fn open_or_err(&self) -> Result<(), RuleError> {
        if self.is_open() {
            Ok(())
        } else {
            Err(RuleError::Resolved(self.id))
        }
    }

    // The rules: each takes the request and answers with the events it makes, or why not.

    pub fn decide_update(
        &self,
        to: Option<State>,
        text: &str,
    ) -> Result<Vec<EventKind>, RuleError> {
        self.open_or_err()?;
        let text = require_text("the update", text, MAX_TEXT)?;
        let mut out = Vec::new();
        if let Some(to) = to {
            if to == State::Resolved {
                return Err(RuleError::ResolveThroughResolve(self.id));
            }
            if to < self.state {
                return Err(RuleError::Backwards {
                    id: self.id,
                    state: self.state,
                    to,
                });
            }
            if to != self.state {
                out.push(EventKind::StateChanged {
                    from: self.state,
                    to,
                });
            }
        }
        out.push(EventKind::StatusPosted {
            automated: false,
            state: to.unwrap_or(self.state),
            text,
        });
        Ok(out)
    }

    pub fn decide_severity(
        &self,
        to: Severity,
        reason: Option<&str>,
    ) -> Result<Vec<EventKind>, RuleError> {
        self.open_or_err()?;
        if to == self.severity {
            return Err(RuleError::SameSeverity {
                id: self.id,
                severity: to,
            });
        }
        let reason = match reason {
            Some(r) if !r.trim().is_empty() => Some(require_text("the reason", r, MAX_TEXT)?),
            _ => None,
        };
        Ok(vec![EventKind::SeverityChanged {
            from: self.severity,
            to,
            reason,
        }])
    }

    pub fn decide_role(&self, role: &str, user: &UserRef) -> Result<Vec<EventKind>, RuleError> {
        self.open_or_err()?;
        let mut out = Vec::new();
        match self.holder(role) {
            Some(h) if h.id == user.id => {
                return Err(RuleError::AlreadyHolds {
                    id: self.id,
                    user: user.name.clone(),
                    role: role.into(),
                })
            }
            Some(h) => out.push(EventKind::RoleRelinquished {
                role: role.into(),
                user: h.clone(),
            }),
            None => {}
        }
        out.push(EventKind::RoleAssigned {
            role: role.into(),
            user: user.clone(),
        });
        Ok(out)
    }

    pub fn decide_note(&self, text: &str) -> Result<Vec<EventKind>, RuleError> {
        Ok(vec![EventKind::NoteAdded {
            text: require_text("the note", text, MAX_TEXT)?,
        }])
    }

    pub fn decide_action(
        &self,
        text: &str,
        owner: Option<UserRef>,
        due: Option<DateTime<Utc>>,
    ) -> Result<Vec<EventKind>, RuleError> {
        Ok(vec![EventKind::ActionItemAdded {
            text: require_text("the action item", text, MAX_TEXT)?,
            owner,
            due,
        }])
    }

    /// Item `item` (from 0) was filed as `key`, readable at `url`.
    pub fn decide_filed(
        &self,
        item: usize,
        tracker: &str,
        key: &str,
        url: &str,
    ) -> Result<Vec<EventKind>, RuleError> {
        let a = self.action_item(item)?;
        if let Some(i) = &a.issue {
            return Err(RuleError::AlreadyFiled {
                number: item + 1,
                key: i.key.clone(),
            });
        }
        Ok(vec![EventKind::ActionItemFiled {
            item,
            tracker: tracker.into(),
            key: key.into(),
            url: url.into(),
        }])
    }

    /// The tracker reports `state` for item `item`'s issue; nothing when that is no news.
    pub fn decide_tracked(
        &self,
        item: usize,
        state: &str,
        done: bool,
    ) -> Result<Vec<EventKind>, RuleError> {
        let a = self.action_item(item)?;
        let same = a.done == done && a.issue.as_ref().is_some_and(|i| i.state == state);
        Ok(if same {
            Vec::new()
        } else {
            vec![EventKind::ActionItemTracked {
                item,
                state: state.into(),
                done,
            }]
        })
    }

    /// Item `item`'s owner is reminded of it at `now`: nothing when it needs no reminder.
    pub fn decide_reminded(
        &self,
        item: usize,
        now: DateTime<Utc>,
    ) -> Result<Vec<EventKind>, RuleError> {
        Ok(if self.action_item(item)?.needs_reminder(now) {
            vec![EventKind::ActionItemReminded { item }]
        } else {
            Vec::new()
        })
    }

    fn action_item(&self, item: usize) -> Result<&ActionItem, RuleError> {
        self.action_items
            .get(item)
            .ok_or(RuleError::NoSuchActionItem {
                id: self.id,
                number: item + 1,
            })
    }

    pub fn decide_resolve(&self, summary: &str) -> Result<Vec<EventKind>, RuleError> {
        self.open_or_err()?;
        Ok(vec![EventKind::Resolved {
            summary: require_text("the summary", summary, MAX_TEXT)?,
        }])
    }

    /// `cadence: None` goes back to the severity's cadence. `off_allowed` is the config's word on
    /// turning updates off at this incident's severity.
    pub fn decide_cadence(
        &self,
        cadence: Option<Cadence>,
        off_allowed: bool,
    ) -> Result<Vec<EventKind>, RuleError> {
        self.open_or_err()?;
        if cadence == Some(Cadence::Off) && !off_allowed {
            return Err(RuleError::CadenceOffForbidden {
                severity: self.severity,
            });
        }
        Ok(vec![EventKind::CadenceChanged { cadence }])
    }

    /// Whether the team has said nothing new since `since` (the last scheduled update, or the
    /// declaration before the first one).
    pub fn quiet_since(&self, since: DateTime<Utc>) -> bool {
        self.last_update.as_ref().map_or(true, |u| u.at <= since)
    }

    /// Allowed on resolved incidents too: a resolved incident stays on the status page for days.
    pub fn decide_public(
        &self,
        visible: bool,
        title: Option<&str>,
        summary: Option<&str>,
    ) -> Result<Vec<EventKind>, RuleError> {
        Ok(vec![EventKind::PublicChanged {
            visible,
            title: title
                .filter(|t| !t.trim().is_empty())
                .map(|t| require_text("the public title", t, MAX_TITLE))
                .transpose()?,
            summary: summary
                .filter(|s| !s.trim().is_empty())
                .map(|s| require_text("the public summary", s, MAX_TEXT))
                .transpose()?,
        }])
    }

    /// The title the public status page shows.
    pub fn public_title(&self) -> &str {
        self.public_title.as_deref().unwrap_or(&self.title)
    }

    /// The impact the public status page shows, if any was written.
    pub fn public_summary(&self) -> Option<&str> {
        self.public_summary.as_deref().or(self.impact())
    }

    /// The custom fields stakeholders may read, as set now; the impact has its own place.
    pub fn public_fields(&self) -> Vec<(&str, &str)> {
        self.fields
            .iter()
            .filter(|(n, _)| n != IMPACT)
            .filter(|(n, _)| self.field_def(n).is_some_and(|d| d.public))
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect()
    }

    fn item_mut(&mut self, n: u32) -> Option<&mut Item> {
        self.checklist.get_mut((n as usize).checked_sub(1)?)
    }

    /// Checklist item `n` (from 1), or why there is none.
    pub fn item(&self, n: u32) -> Result<&Item, RuleError> {
        let found = (n as usize)
            .checked_sub(1)
            .and_then(|i| self.checklist.get(i));
        found.ok_or_else(|| {
            RuleError::Checklist(match self.checklist.len() {
                0 => format!("{} has no checklist items; add one with `/incident checklist action:add text:…`", self.id),
                len => format!("{} has checklist items 1 to {len}; there is no #{n}", self.id),
            })
        })
    }

    pub fn progress(&self) -> Progress {
        playbook::progress(&self.checklist)
    }

    /// The value of custom field `name`, if set.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Who is affected and how: the impact field once someone set it, else the summary given
    /// at open.
    pub fn impact(&self) -> Option<&str> {
        self.field(IMPACT).or(self.summary.as_deref())
    }

    /// The definition of field `name`: the impact, or one of its type's fields.
    pub fn field_def(&self, name: &str) -> Option<FieldDef> {
        if name.eq_ignore_ascii_case(IMPACT) {
            return Some(FieldDef::impact());
        }
        self.field_defs
            .iter()
            .find(|d| d.name.eq_ignore_ascii_case(name))
            .cloned()
    }

    pub fn decide_tick(&self, n: u32) -> Result<Vec<EventKind>, RuleError> {
        self.open_or_err()?;
        let item = self.item(n)?;
        if let Some(done) = &item.done {
            return Err(RuleError::Checklist(format!(
                "#{n} is already done ({}, {}); take it back with `/incident checklist action:untick item:{n}`",
                done.by.label(),
                done.at.format("%H:%M UTC")
            )));
        }
        Ok(vec![EventKind::ChecklistTicked {
            item: n,
            text: item.def.text.clone(),
        }])
    }

    pub fn decide_untick(&self, n: u32) -> Result<Vec<EventKind>, RuleError> {
        self.open_or_err()?;
        let item = self.item(n)?;
        if item.done.is_none() {
            return Err(RuleError::Checklist(format!(
                "#{n} is not done, so there is nothing to take back"
            )));
        }
        Ok(vec![EventKind::ChecklistUnticked {
            item: n,
            text: item.def.text.clone(),
        }])
    }

    pub fn decide_skip(&self, n: u32, reason: &str) -> Result<Vec<EventKind>, RuleError> {
        self.open_or_err()?;
        let reason = require_text("the reason for skipping", reason, 500)?;
        let item = self.item(n)?;
        if item.done.is_some() {
            return Err(RuleError::Checklist(format!(
                "#{n} is done; untick it first if it was not"
            )));
        }
        if item.skipped.is_some() {
            return Err(RuleError::Checklist(format!("#{n} is already skipped")));
        }
        Ok(vec![EventKind::ChecklistSkipped {
            item: n,
            text: item.def.text.clone(),
            reason,
        }])
    }

    pub fn decide_add_item(&self, text: &str) -> Result<Vec<EventKind>, RuleError> {
        self.open_or_err()?;
        let text = require_text("the checklist item", text, playbook::MAX_ITEM_TEXT)?;
        if self.checklist.len() >= MAX_ITEMS {
            return Err(RuleError::Checklist(format!(
                "{} already has {MAX_ITEMS} checklist items, the most one incident holds",
                self.id
            )));
        }
        if self
            .checklist
            .iter()
            .any(|i| i.def.text.eq_ignore_ascii_case(&text))
        {
            return Err(RuleError::Checklist(format!(
                "the checklist already has \u{201c}{text}\u{201d}"
            )));
        }
        Ok(vec![EventKind::ChecklistItemAdded { text }])
    }

    /// Allowed on resolved incidents too: fields such as the root cause are often known late.
    pub fn decide_field(&self, name: &str, value: &str) -> Result<Vec<EventKind>, RuleError> {
        let Some(def) = self.field_def(name) else {
            let mut known: Vec<&str> = vec![IMPACT];
            known.extend(self.field_defs.iter().map(|d| d.name.as_str()));
            return Err(RuleError::Field(format!(
                "{} has no field `{name}`; its fields: {}",
                self.id,
                known.join(", ")
            )));
        };
        let value = def.check(value)?;
        if self.field(&def.name) == Some(value.as_str()) {
            return Err(RuleError::Field(format!(
                "`{}` is already {value}",
                def.name
            )));
        }
        Ok(vec![EventKind::FieldSet {
            name: def.name,
            value,
        }])
    }

    pub fn decide_reopen(&self, reason: &str) -> Result<Vec<EventKind>, RuleError> {
        if self.is_open() {
            return Err(RuleError::NotResolved(self.id));
        }
        Ok(vec![EventKind::Reopened {
            reason: require_text("the reason", reason, MAX_TEXT)?,
        }])
    }
}

/// A role as people say it in a sentence: "bob is now communications lead for INC-1". Roles
/// the configuration adds are said as named, dashes read as spaces.
pub fn role_title(role: &str) -> String {
    match role {
        COMMANDER => "incident commander".into(),
        "communications" | "comms" => "communications lead".into(),
        other => other.replace(['-', '_'], " "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn roles_read_as_people_say_them() {
        assert_eq!(role_title("commander"), "incident commander");
        assert_eq!(role_title("communications"), "communications lead");
        assert_eq!(role_title("scribe"), "scribe");
        assert_eq!(role_title("customer-liaison"), "customer liaison");
    }

    fn t(min: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 21, 10, 0, 0).unwrap() + Duration::minutes(min)
    }

    fn alice() -> UserRef {
        UserRef::new(1, "alice")
    }

    fn opened() -> Incident {
        let ev = Event {
            at: t(0),
            actor: Actor::User(alice()),
            kind: EventKind::Opened {
                title: "Checkout returns 500".into(),
                severity: Severity(2),
                summary: None,
                service: Some("checkout".into()),
                started: t(-10),
                channel: None,
                channel_name: None,
                drill: false,
                playbook: None,
            },
        };
        Incident::from_opened(IncidentId(1), &ev).unwrap()
    }

    fn apply(inc: &mut Incident, at: i64, who: UserRef, kinds: Vec<EventKind>) {
        for kind in kinds {
            inc.apply(&Event {
                at: t(at),
                actor: Actor::User(who.clone()),
                kind,
            });
        }
    }

    #[test]
    fn opener_is_the_commander() {
        let inc = opened();
        assert_eq!(inc.commander(), Some(&alice()));
        assert_eq!(inc.state, State::Investigating);
        assert_eq!(inc.ttd(), Some(Duration::minutes(10)));
        assert_eq!(inc.tta(), None);
    }

    #[test]
    fn lifecycle_moves_forward_and_times_follow() {
        let mut inc = opened();
        let ev = inc
            .decide_update(Some(State::Identified), "bad deploy")
            .unwrap();
        apply(&mut inc, 3, alice(), ev);
        assert_eq!(inc.times.acknowledged, Some(t(3)));
        assert_eq!(inc.times.identified, Some(t(3)));
        let ev = inc
            .decide_update(Some(State::Monitoring), "rolled back")
            .unwrap();
        apply(&mut inc, 20, alice(), ev);
        assert!(matches!(
            inc.decide_update(Some(State::Identified), "oops"),
            Err(RuleError::Backwards { .. })
        ));
        assert!(matches!(
            inc.decide_update(Some(State::Resolved), "done"),
            Err(RuleError::ResolveThroughResolve(_))
        ));
        let ev = inc.decide_resolve("rolled back v2").unwrap();
        apply(&mut inc, 50, alice(), ev);
        assert_eq!(inc.state, State::Resolved);
        assert_eq!(inc.tta(), Some(Duration::minutes(3)));
        assert_eq!(inc.ttm(), Some(Duration::minutes(30)));
        assert_eq!(inc.ttr(), Some(Duration::minutes(60)));
        assert_eq!(
            inc.decide_update(None, "x"),
            Err(RuleError::Resolved(IncidentId(1)))
        );
        assert!(inc.decide_note("post-hoc note").is_ok());
        let ev = inc.decide_reopen("came back").unwrap();
        apply(&mut inc, 70, alice(), ev);
        assert_eq!(inc.state, State::Investigating);
        assert_eq!(inc.times.resolved, None);
        assert_eq!(inc.times.mitigated, Some(t(20)), "first mitigation is kept");
    }

    #[test]
    fn skipping_monitoring_counts_resolution_as_mitigation() {
        let mut inc = opened();
        let ev = inc.decide_resolve("false alarm").unwrap();
        apply(&mut inc, 5, alice(), ev);
        assert_eq!(inc.times.mitigated, Some(t(5)));
    }

    #[test]
    fn exactly_one_commander_after_handover() {
        let mut inc = opened();
        let bob = UserRef::new(2, "bob");
        let ev = inc.decide_role(COMMANDER, &bob).unwrap();
        assert_eq!(ev.len(), 2, "the old commander relinquishes first");
        apply(&mut inc, 5, alice(), ev);
        assert_eq!(inc.commander(), Some(&bob));
        let current: Vec<_> = inc
            .current_roles()
            .into_iter()
            .filter(|r| r.role == COMMANDER)
            .collect();
        assert_eq!(current.len(), 1);
        assert_eq!(inc.roles[0].relinquished, Some(t(5)));
        assert!(matches!(
            inc.decide_role(COMMANDER, &bob),
            Err(RuleError::AlreadyHolds { .. })
        ));
    }

    #[test]
    fn text_rules() {
        let inc = opened();
        assert_eq!(inc.decide_note("   "), Err(RuleError::Empty("the note")));
        let long = "x".repeat(MAX_TEXT + 1);
        assert!(matches!(
            inc.decide_note(&long),
            Err(RuleError::TooLong { .. })
        ));
        assert!(matches!(
            inc.decide_severity(Severity(2), None),
            Err(RuleError::SameSeverity { .. })
        ));
    }

    #[test]
    fn cadence_overrides_until_the_severity_changes() {
        let mut inc = opened();
        let every = Cadence::Every { seconds: 600 };
        let ev = inc.decide_cadence(Some(every.clone()), true).unwrap();
        apply(&mut inc, 1, alice(), ev);
        assert_eq!(inc.cadence, Some(every));
        assert_eq!(inc.times.acknowledged, Some(t(1)));
        assert_eq!(
            inc.decide_cadence(Some(Cadence::Off), false),
            Err(RuleError::CadenceOffForbidden {
                severity: Severity(2)
            })
        );
        let ev = inc.decide_severity(Severity(1), None).unwrap();
        apply(&mut inc, 2, alice(), ev);
        assert_eq!(inc.cadence, None, "the new severity's cadence applies");
        let ev = inc.decide_resolve("done").unwrap();
        apply(&mut inc, 3, alice(), ev);
        assert_eq!(
            inc.decide_cadence(None, true),
            Err(RuleError::Resolved(IncidentId(1)))
        );
    }

    #[test]
    fn quiet_means_no_human_update_since() {
        let mut inc = opened();
        assert!(inc.quiet_since(t(0)));
        let ev = inc
            .decide_update(None, "looking at the load balancer")
            .unwrap();
        apply(&mut inc, 5, alice(), ev);
        assert!(!inc.quiet_since(t(0)));
        assert!(inc.quiet_since(t(5)));
    }

    #[test]
    fn public_title_and_visibility_fold() {
        let mut inc = opened();
        assert!(inc.public_visible);
        assert_eq!(inc.public_title(), "Checkout returns 500");
        let ev = inc
            .decide_public(true, Some(" Payments are slow "), None)
            .unwrap();
        apply(&mut inc, 1, alice(), ev);
        assert_eq!(inc.public_title(), "Payments are slow");
        assert_eq!(inc.public_summary(), None);
        let ev = inc.decide_public(false, Some(""), Some("")).unwrap();
        apply(&mut inc, 2, alice(), ev);
        assert!(!inc.public_visible);
        assert_eq!(
            inc.public_title(),
            "Payments are slow",
            "an empty title keeps it"
        );
        assert_eq!(
            inc.times.acknowledged, None,
            "not a response to the incident"
        );
        assert!(matches!(
            inc.decide_public(true, Some(&"x".repeat(MAX_TITLE + 1)), None),
            Err(RuleError::TooLong { .. })
        ));
    }

    #[test]
    fn automated_posts_do_not_count_as_human_updates() {
        let mut inc = opened();
        inc.apply(&Event {
            at: t(15),
            actor: Actor::Scheduler,
            kind: EventKind::StatusPosted {
                automated: true,
                state: State::Investigating,
                text: "auto".into(),
            },
        });
        assert_eq!(inc.last_update, None);
        assert_eq!(inc.last_status_post, Some(t(15)));
        assert_eq!(inc.times.acknowledged, None);
    }

    #[test]
    fn an_item_is_filed_once_and_done_when_its_issue_closes() {
        let mut inc = opened();
        let ev = inc.decide_action("Alert on lag", None, None).unwrap();
        apply(&mut inc, 1, alice(), ev);
        assert_eq!(
            inc.decide_filed(1, "github", "a/b#1", "https://x")
                .unwrap_err(),
            RuleError::NoSuchActionItem {
                id: IncidentId(1),
                number: 2
            }
        );
        let ev = inc
            .decide_filed(
                0,
                "github",
                "acme/app#12",
                "https://github.com/acme/app/issues/12",
            )
            .unwrap();
        apply(&mut inc, 2, alice(), ev);
        let issue = inc.action_items[0].issue.clone().unwrap();
        assert_eq!(
            (issue.key.as_str(), issue.state.as_str()),
            ("acme/app#12", "open")
        );
        assert!(matches!(
            inc.decide_filed(0, "jira", "OPS-1", "https://x"),
            Err(RuleError::AlreadyFiled { number: 1, .. })
        ));
        // The same state again is no news.
        assert!(inc.decide_tracked(0, "open", false).unwrap().is_empty());
        let ev = inc.decide_tracked(0, "closed", true).unwrap();
        assert_eq!(ev.len(), 1);
        assert_eq!(
            ev[0].describe(),
            "Action item #1 done (closed in the tracker)"
        );
        apply(&mut inc, 3, alice(), ev);
        assert!(inc.action_items[0].done);
        assert_eq!(inc.action_items[0].issue.as_ref().unwrap().state, "closed");
        // A reopened issue makes the item not done again.
        let ev = inc.decide_tracked(0, "open", false).unwrap();
        apply(&mut inc, 4, alice(), ev);
        assert!(!inc.action_items[0].done);
    }

    #[test]
    fn items_stored_before_trackers_read_back() {
        // An incident state cached before items had issues.
        let json = r#"{"text":"x","owner":null,"due":null,"added":"2026-11-21T10:00:00Z"}"#;
        let a: ActionItem = serde_json::from_str(json).unwrap();
        assert!(a.issue.is_none() && !a.done && a.reminded.is_none());
        let ev: EventKind =
            serde_json::from_str(r#"{"event":"action_item_tracked","item":0,"state":"Done"}"#)
                .unwrap();
        assert_eq!(
            ev,
            EventKind::ActionItemTracked {
                item: 0,
                state: "Done".into(),
                done: false
            }
        );
    }
}
