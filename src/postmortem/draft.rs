//! Compiling a post-mortem draft: the incident, its timeline, its messages and nearby deploys in;
//! plain, already-worded values out, for `templates/postmortem.md.j2` to lay out.
//!
//! Everything here is pure, so that a draft is a function of what the store holds.

use super::lint::{Finding, Linter};
use crate::config::{Config, PostmortemConfig};
use crate::domain::incident::role_title;
use crate::domain::{human_duration, Actor, Event, EventKind, Incident, UserRef, COMMANDER};
use crate::render::utc;
use crate::store::{CapturedMessage, ContentGap, Deploy, MessageAttachment};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::HashMap;

/// What a draft is compiled from, as the store holds it.
#[derive(Debug, Clone)]
pub struct Sources {
    pub incident: Incident,
    pub events: Vec<Event>,
    pub messages: Vec<CapturedMessage>,
    /// Deploys of any service from the `[whats_changed] lookback` before the start onwards.
    pub deploys: Vec<Deploy>,
    /// Every stretch of time the bot ran without message text.
    pub text_gaps: Vec<ContentGap>,
}

impl Sources {
    /// The last moment anything happened: an event, a message, an edit or a deletion.
    pub fn last_activity(&self) -> DateTime<Utc> {
        let events = self.events.iter().map(|e| e.at);
        let messages = self
            .messages
            .iter()
            .flat_map(|m| [Some(m.at), m.edited_at, m.deleted_at])
            .flatten();
        events
            .chain(messages)
            .max()
            .or(self.incident.times.declared)
            .unwrap_or_default()
    }
}

/// About this compilation rather than the incident.
#[derive(Debug, Clone)]
pub struct Meta {
    /// `None` for a draft compiled on the fly and not stored.
    pub version: Option<u32>,
    /// Also "now" for an incident that is still open.
    pub compiled_at: DateTime<Utc>,
    pub compiled_by: Option<UserRef>,
}

#[derive(Debug, Clone, Serialize)]
pub struct IncidentPart {
    pub id: String,
    pub title: String,
    pub severity: String,
    pub severity_name: Option<String>,
    pub severity_description: Option<String>,
    pub state: String,
    pub service: Option<String>,
    pub summary: Option<String>,
    pub resolution: Option<String>,
    pub channel: Option<String>,
    pub drill: bool,
    pub reopened: u32,
    /// The incident type it was opened as.
    pub kind: Option<String>,
    /// Custom fields set, the impact among them: `(name, value)`.
    pub fields: Vec<(String, String)>,
}

/// One checklist item as the post-mortem lists it: done by whom when, skipped and why, or left.
#[derive(Debug, Clone, Serialize)]
pub struct ChecklistRow {
    pub n: usize,
    pub text: String,
    pub owner: Option<String>,
    /// `done`, `skipped` or `open`.
    pub state: &'static str,
    pub by: Option<String>,
    pub at: Option<String>,
    pub reason: Option<String>,
    pub ad_hoc: bool,
}

/// One of the moments TTD/TTA/TTM/TTR are measured between.
#[derive(Debug, Clone, Serialize)]
pub struct Moment {
    pub label: &'static str,
    pub at: Option<String>,
    /// `TTA 3m`, beside the moment it ends.
    pub measure: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Link {
    pub name: String,
    pub url: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub at: String,
    /// `Update`, `Key moment`, `Deploy`, …
    pub kind: &'static str,
    pub text: String,
    pub by: Option<String>,
    pub links: Vec<Link>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RoleGroup {
    pub role: String,
    pub people: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ActionRow {
    pub action: String,
    pub owner: String,
    pub due: String,
    /// `[OPS-7](url) · Done`, or `—` while not filed.
    pub issue: String,
}

/// Facts from the timeline that belong in a section humans write; suggestions, not findings.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Hints {
    pub root_cause: Vec<String>,
    pub contributing: Vec<String>,
    pub went_well: Vec<String>,
    pub improve: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Impact {
    pub severity: String,
    pub service: Option<String>,
    pub summary: Option<String>,
    /// From the start of impact to mitigation (or to now, while unmitigated).
    pub window: Option<String>,
    /// What responders reported in their updates, oldest first.
    pub updates: Vec<Entry>,
    pub severity_changes: Vec<Entry>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TranscriptLine {
    pub at: String,
    pub author: String,
    pub text: String,
    pub edited: bool,
    pub deleted: bool,
    pub links: Vec<Link>,
}

/// Everything the template sees.
#[derive(Debug, Clone, Serialize)]
pub struct Draft {
    pub incident: IncidentPart,
    /// Not resolved when compiled: times, impact and duration are incomplete.
    pub open: bool,
    pub version: Option<u32>,
    pub compiled_at: String,
    pub compiled_by: Option<String>,
    /// The date the incident began.
    pub date: String,
    pub duration: String,
    pub moments: Vec<Moment>,
    pub tta: Option<String>,
    pub ttm: Option<String>,
    pub ttr: Option<String>,
    pub ttd: Option<String>,
    pub impact: Impact,
    /// Every checklist item, in order.
    pub checklist: Vec<ChecklistRow>,
    /// "5 of 7 done, 1 skipped"; absent without a checklist.
    pub checklist_progress: Option<String>,
    pub timeline: Vec<Entry>,
    pub participants: Vec<RoleGroup>,
    pub action_items: Vec<ActionRow>,
    pub hints: Hints,
    pub reviewer_notes: Vec<Finding>,
    pub anonymized: bool,
    pub messages: usize,
    pub highlights: usize,
    pub transcript: Option<Vec<TranscriptLine>>,
    /// One line for each stretch of the incident when message text was not captured.
    pub missing_text: Vec<String>,
}

fn title_case(role: &str) -> String {
    let mut c = role.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

struct Person {
    name: String,
    alias: String,
    /// Roles held, in the order taken.
    roles: Vec<String>,
    messages: usize,
}

/// Who took part, how to call them, and how to word text that mentions them.
struct People {
    by_id: HashMap<u64, Person>,
    order: Vec<u64>,
    anonymize: bool,
    /// (lower-cased name, alias), longest names first, for rewriting free text.
    names: Vec<(String, String)>,
}

impl People {
    fn new(src: &Sources, anonymize: bool) -> People {
        let mut people = People {
            by_id: HashMap::new(),
            order: Vec::new(),
            anonymize,
            names: Vec::new(),
        };
        let mut role_counts: HashMap<String, usize> = HashMap::new();
        for r in &src.incident.roles {
            let role = title_case(&r.role);
            people.add(&r.user);
            let p = people.by_id.get_mut(&r.user.id).expect("just added");
            if !p.roles.contains(&role) {
                p.roles.push(role.clone());
            }
            if p.alias.is_empty() {
                let n = role_counts.entry(role.clone()).or_default();
                *n += 1;
                p.alias = if *n == 1 { role } else { format!("{role} {n}") };
            }
        }
        // Everyone else in the order they first appear, so that Responder 1 spoke or acted first.
        let mut seen: Vec<(DateTime<Utc>, &UserRef)> = Vec::new();
        for e in &src.events {
            if let Some(u) = e.actor.user() {
                seen.push((e.at, u));
            }
            if let EventKind::ActionItemAdded { owner: Some(o), .. } = &e.kind {
                seen.push((e.at, o));
            }
        }
        seen.extend(src.messages.iter().map(|m| (m.at, &m.author)));
        seen.sort_by_key(|(at, _)| *at);
        for (_, u) in seen {
            people.add(u);
        }
        for m in src.messages.iter().filter(|m| !m.is_deleted()) {
            if let Some(p) = people.by_id.get_mut(&m.author.id) {
                p.messages += 1;
            }
        }
        let mut responders = 0;
        for id in &people.order {
            let p = people.by_id.get_mut(id).expect("listed");
            if p.alias.is_empty() {
                responders += 1;
                p.alias = format!("Responder {responders}");
            }
        }
        let mut names: Vec<(String, String)> = people
            .by_id
            .values()
            .filter(|p| p.name.chars().count() >= 2)
            .map(|p| (p.name.to_lowercase(), p.alias.clone()))
            .collect();
        names.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
        people.names = names;
        people
    }

    fn add(&mut self, u: &UserRef) {
        if !self.by_id.contains_key(&u.id) {
            self.order.push(u.id);
            self.by_id.insert(
                u.id,
                Person {
                    name: u.name.clone(),
                    alias: String::new(),
                    roles: Vec::new(),
                    messages: 0,
                },
            );
        }
    }

    fn label(&self, u: &UserRef) -> String {
        match self.by_id.get(&u.id) {
            Some(p) if self.anonymize => p.alias.clone(),
            Some(p) => p.name.clone(),
            None if self.anonymize => "someone".into(),
            None => u.name.clone(),
        }
    }

    fn label_id(&self, id: u64, anonymize: bool) -> String {
        match self.by_id.get(&id) {
            Some(p) if anonymize => p.alias.clone(),
            Some(p) => format!("@{}", p.name),
            None if anonymize => "someone".into(),
            None => format!("@user-{id}"),
        }
    }

    /// "Communications role taken by carol"; anonymized, the alias often is the role already.
    fn role_change(&self, role: &str, user: &UserRef, verb: &str) -> String {
        let role = title_case(role);
        let who = self.label(user);
        if self.anonymize && who.starts_with(&role) {
            format!("{role} role {verb}")
        } else {
            format!("{role} role {verb} by {who}")
        }
    }

    fn actor(&self, a: &Actor) -> Option<String> {
        match a {
            Actor::User(u) => Some(self.label(u)),
            Actor::Scheduler | Actor::System => Some("sitrep".into()),
            Actor::Webhook { source } => Some(format!("{source} (webhook)")),
        }
    }

    /// Chat text as a draft shows it: one line, mentions and timestamps spelt out, and names
    /// replaced by roles when anonymizing.
    fn text(&self, raw: &str) -> String {
        let one_line = raw.split_whitespace().collect::<Vec<_>>().join(" ");
        let spelt = self.markup(&one_line, self.anonymize);
        if self.anonymize {
            self.rename(&spelt)
        } else {
            spelt
        }
    }

    /// Rewrites `<@id>`, `<@&id>`, `<#id>` and `<t:unix:style>` into words; people become
    /// `@name`, or their alias when `anonymize`.
    fn markup(&self, s: &str, anonymize: bool) -> String {
        if !s.contains('<') {
            return s.to_string();
        }
        let mut out = String::with_capacity(s.len());
        let mut rest = s;
        while let Some(i) = rest.find('<') {
            out.push_str(&rest[..i]);
            let tail = &rest[i..];
            let Some(close) = tail.find('>') else {
                out.push_str(tail);
                return out;
            };
            let inner = &tail[1..close];
            let digits = |p: &str| {
                inner
                    .strip_prefix(p)
                    .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
                    .and_then(|d| d.parse::<u64>().ok())
            };
            let word = if let Some(id) = digits("@!").or_else(|| digits("@")) {
                Some(self.label_id(id, anonymize))
            } else if digits("@&").is_some() {
                Some("@role".to_string())
            } else if digits("#").is_some() {
                Some("#channel".to_string())
            } else if let Some(ts) = inner.strip_prefix("t:") {
                ts.split(':')
                    .next()
                    .and_then(|n| n.parse::<i64>().ok())
                    .and_then(|n| DateTime::from_timestamp(n, 0))
                    .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
            } else {
                None
            };
            match word {
                Some(w) => {
                    out.push_str(&w);
                    rest = &tail[close + 1..];
                }
                None => {
                    out.push('<');
                    rest = &tail[1..];
                }
            }
        }
        out.push_str(rest);
        out
    }

    /// Replaces participants' names standing as whole words (`bob`, `@bob`) by their aliases.
    fn rename(&self, s: &str) -> String {
        let mut text = s.to_string();
        for (name, alias) in &self.names {
            text = replace_word(&text, name, alias);
        }
        text
    }
}

/// `needle` (lower case) replaced wherever it stands as a whole word in `s`, ignoring ASCII
/// case; an `@` right before it goes too.
fn replace_word(s: &str, needle: &str, with: &str) -> String {
    let hay = s.as_bytes();
    let n = needle.as_bytes();
    let boundary = |c: Option<char>| c.map_or(true, |c| !(c.is_alphanumeric() || c == '_'));
    let mut out = String::new();
    let mut last = 0;
    let mut i = 0;
    while i + n.len() <= hay.len() {
        if hay[i..i + n.len()].eq_ignore_ascii_case(n)
            && s.is_char_boundary(i)
            && s.is_char_boundary(i + n.len())
            && boundary(s[..i].chars().next_back())
            && boundary(s[i + n.len()..].chars().next())
        {
            let start = if s[..i].ends_with('@') { i - 1 } else { i };
            out.push_str(&s[last..start]);
            out.push_str(with);
            i += n.len();
            last = i;
        } else {
            i += 1;
        }
    }
    if last == 0 {
        return s.to_string();
    }
    out.push_str(&s[last..]);
    out
}

/// Discord's epoch, 2015-01-01, in Unix milliseconds.
const DISCORD_EPOCH_MS: i64 = 1_420_070_400_000;

/// The moment a Discord snowflake id was made, which for a message is when it was sent. Ids
/// too small to be snowflakes (the console's) have none.
fn snowflake_time(id: u64) -> Option<DateTime<Utc>> {
    let ms = i64::try_from(id >> 22).ok().filter(|ms| *ms > 0)?;
    DateTime::from_timestamp_millis(DISCORD_EPOCH_MS + ms)
}

/// Markdown table cells cannot hold pipes or line breaks.
fn cell(s: &str) -> String {
    s.replace('|', "\\|")
}

fn links(people: &People, attachments: &[MessageAttachment]) -> Vec<Link> {
    attachments
        .iter()
        .map(|a| Link {
            name: people.text(&a.name),
            url: a.url.clone(),
        })
        .collect()
}

struct Timed {
    at: DateTime<Utc>,
    entry: Entry,
}

fn entry(at: DateTime<Utc>, kind: &'static str, text: String, by: Option<String>) -> Timed {
    Timed {
        at,
        entry: Entry {
            at: utc(at),
            kind,
            text,
            by,
            links: Vec::new(),
        },
    }
}

fn checklist_rows(inc: &Incident, people: &People) -> Vec<ChecklistRow> {
    let by = |a: &Actor| match a {
        Actor::User(u) => people.label(u),
        other => other.label(),
    };
    inc.checklist
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let (state, mark, reason) = match (&item.done, &item.skipped) {
                (Some(m), _) => ("done", Some(m), None),
                (None, Some((m, r))) => ("skipped", Some(m), Some(people.text(r))),
                (None, None) => ("open", None, None),
            };
            ChecklistRow {
                n: i + 1,
                text: people.text(&item.def.text),
                owner: item.def.owner.as_deref().map(role_title),
                state,
                by: mark.map(|m| by(&m.by)),
                at: mark.map(|m| utc(m.at)),
                reason,
                ad_hoc: item.ad_hoc,
            }
        })
        .collect()
}

/// Compiles the draft. `config` decides anonymity, the transcript and the lint phrases.
///
/// In phases, in the order of the draft: the timeline from the events (key moments where they
/// were said), deploys the timeline did not record, the moments and the impact, the hints, and
/// the transcript. Lint findings follow the same order.
pub fn compile(src: &Sources, config: &Config, meta: &Meta) -> Draft {
    let inc = &src.incident;
    let pm = &config.postmortem;
    let people = People::new(src, pm.anonymize);
    let mut review = Review::new(&people, pm);
    let now = meta.compiled_at;
    let open = inc.is_open();
    let started = inc.times.started.or(inc.times.declared).unwrap_or(now);
    let end = inc.times.resolved.filter(|_| !open).unwrap_or(now);

    review.lint("Title".into(), &inc.title);
    if let Some(s) = &inc.summary {
        review.lint("Summary".into(), s);
    }
    let mut read = read_events(src, &people, &mut review);
    let recent_deploys = unrecorded_deploys(src, &people, &mut read, started, end);
    // Stable: entries at the same moment keep the order they were recorded in.
    read.timeline.sort_by_key(|t| t.at);
    let severity_cfg = config.severity(inc.severity);
    let hints = hints(inc, &people, &read, recent_deploys);
    let transcript = pm.transcript.then(|| transcript(src, &people, &mut review));

    Draft {
        incident: IncidentPart {
            id: inc.id.to_string(),
            title: people.text(&inc.title),
            severity: inc.severity.to_string(),
            severity_name: severity_cfg.map(|s| s.name.clone()),
            severity_description: severity_cfg.and_then(|s| s.description.clone()),
            state: inc.state.to_string(),
            service: inc.service.clone(),
            summary: inc.summary.as_deref().map(|s| people.text(s)),
            resolution: inc.resolution.as_deref().map(|s| people.text(s)),
            channel: inc.channel_name.as_ref().map(|c| format!("#{c}")),
            drill: inc.drill,
            reopened: inc.reopened,
            kind: inc.kind.clone(),
            fields: inc
                .fields
                .iter()
                .map(|(n, v)| (n.clone(), people.text(v)))
                .collect(),
        },
        open,
        version: meta.version,
        compiled_at: utc(meta.compiled_at),
        compiled_by: meta.compiled_by.as_ref().map(|u| people.label(u)),
        date: started.format("%Y-%m-%d").to_string(),
        duration: human_duration(end - started),
        moments: moments(inc, open),
        ttd: inc.ttd().map(human_duration),
        tta: inc.tta().map(human_duration),
        ttm: inc.ttm().map(human_duration),
        ttr: inc.ttr().filter(|_| !open).map(human_duration),
        impact: Impact {
            severity: severity_line(config, inc),
            service: inc.service.clone(),
            summary: inc.summary.as_deref().map(|s| people.text(s)),
            window: Some(impact_window(inc, started, now)),
            updates: read.updates,
            severity_changes: read.severity_changes,
        },
        checklist: checklist_rows(inc, &people),
        checklist_progress: (!inc.checklist.is_empty()).then(|| inc.progress().to_string()),
        timeline: read.timeline.into_iter().map(|t| t.entry).collect(),
        participants: participants(&people),
        action_items: action_items(inc, &people),
        hints,
        reviewer_notes: review.notes,
        anonymized: pm.anonymize,
        messages: src.messages.iter().filter(|m| !m.is_deleted()).count(),
        highlights: read.highlights,
        transcript,
        missing_text: super::text_gaps::draft_lines(
            &src.text_gaps,
            inc.id,
            started,
            inc.times.resolved.filter(|_| !open),
        ),
    }
}

/// Lint findings, in the order of the draft. Texts are linted with people as `@name`, so that
/// `{person}` finds them, and the findings are anonymized afterwards.
struct Review<'a> {
    linter: Linter,
    people: &'a People,
    notes: Vec<Finding>,
}

impl<'a> Review<'a> {
    fn new(people: &'a People, pm: &PostmortemConfig) -> Review<'a> {
        let linter = Linter::new(pm).with_people(
            people
                .by_id
                .values()
                .filter(|p| p.name.chars().count() >= 2)
                .map(|p| p.name.as_str()),
        );
        Review {
            linter,
            people,
            notes: Vec::new(),
        }
    }

    fn lint(&mut self, place: String, raw: &str) {
        let spelt = self.people.markup(raw, false);
        for mut f in self.linter.lint(&place, &spelt) {
            if self.people.anonymize {
                f.found = self.people.rename(&f.found);
                f.excerpt = self.people.rename(&f.excerpt);
            }
            self.notes.push(f);
        }
    }
}

/// What reading the events gives: the timeline so far, and what the impact and hints draw on.
#[derive(Default)]
struct Read {
    timeline: Vec<Timed>,
    updates: Vec<Entry>,
    severity_changes: Vec<Entry>,
    highlights: usize,
    /// Deploys the timeline recorded: lower-cased service, version.
    observed: Vec<(String, String)>,
    /// Escalation targets by escalation number, as they were escalated to.
    escalations: HashMap<u32, String>,
    /// Acknowledged escalations: when, and the target if known.
    acked: Vec<(DateTime<Utc>, Option<String>)>,
    /// Escalation levels nobody acknowledged, worded.
    timed_out: Vec<String>,
    /// How often the team was reminded to post an update.
    reminders: usize,
}

/// The timeline phase: an entry for each event a reader needs, when impact began if that was
/// before the declaration, and key moments where they were said.
fn read_events(src: &Sources, people: &People, review: &mut Review) -> Read {
    let inc = &src.incident;
    let by_id: HashMap<u64, &CapturedMessage> = src.messages.iter().map(|m| (m.id, m)).collect();
    let mut read = Read::default();
    if let (Some(s), Some(d)) = (inc.times.started, inc.times.declared) {
        if s < d {
            read.timeline
                .push(entry(s, "Impact", "Impact began".into(), None));
        }
    }
    for (i, e) in src.events.iter().enumerate() {
        let t = read.event(src, i, e, people, &by_id, review);
        read.timeline.extend(t);
    }
    read
}

impl Read {
    /// The timeline entry of the `i`-th event, if it has one.
    fn event(
        &mut self,
        src: &Sources,
        i: usize,
        e: &Event,
        people: &People,
        by_id: &HashMap<u64, &CapturedMessage>,
        review: &mut Review,
    ) -> Option<Timed> {
        let by = people.actor(&e.actor);
        let place = format!("Timeline, {}", utc(e.at));
        match &e.kind {
            EventKind::Opened {
                title, severity, ..
            } => Some(entry(
                e.at,
                "Declared",
                format!("Declared as {severity}: {}", people.text(title)),
                by,
            )),
            EventKind::SeverityChanged { from, to, reason } => {
                let text = match reason {
                    Some(r) => {
                        review.lint(place, r);
                        format!("Severity {from} → {to}: {}", people.text(r))
                    }
                    None => format!("Severity {from} → {to}"),
                };
                let t = entry(e.at, "Severity", text, by);
                self.severity_changes.push(t.entry.clone());
                Some(t)
            }
            EventKind::StateChanged { from, to } => {
                Some(entry(e.at, "State", format!("State {from} → {to}"), by))
            }
            EventKind::RoleAssigned { role, user } => Some(entry(
                e.at,
                "Role",
                people.role_change(role, user, "taken"),
                by,
            )),
            EventKind::RoleRelinquished { role, user } => {
                // A handover says it in the assignment that follows at the same moment.
                let handed = src.events[i + 1..].iter().take_while(|n| n.at == e.at).any(
                    |n| matches!(&n.kind, EventKind::RoleAssigned { role: r, .. } if r == role),
                );
                (!handed).then(|| entry(e.at, "Role", people.role_change(role, user, "left"), by))
            }
            EventKind::StatusPosted {
                automated: false,
                text,
                state,
            } => {
                review.lint(place, text);
                let t = entry(
                    e.at,
                    "Update",
                    format!("({state}) {}", people.text(text)),
                    by,
                );
                self.updates.push(t.entry.clone());
                Some(t)
            }
            EventKind::StatusPosted {
                automated: true, ..
            } => None,
            EventKind::NoteAdded { text } => {
                review.lint(place, text);
                Some(entry(e.at, "Note", people.text(text), by))
            }
            EventKind::ActionItemAdded { text, owner, .. } => {
                review.lint(format!("Action items, {}", utc(e.at)), text);
                let owner = owner
                    .as_ref()
                    .map(|o| format!(" (owner {})", people.label(o)))
                    .unwrap_or_default();
                Some(entry(
                    e.at,
                    "Action item",
                    format!("{}{owner}", people.text(text)),
                    by,
                ))
            }
            EventKind::Escalated {
                escalation,
                target,
                level,
                reason,
                ..
            } => {
                self.escalations.insert(*escalation, target.clone());
                review.lint(place, reason);
                Some(entry(
                    e.at,
                    "Escalation",
                    format!(
                        "Escalated to {target} (level {level}): {}",
                        people.text(reason)
                    ),
                    by,
                ))
            }
            EventKind::EscalationAcknowledged { escalation } => {
                let target = self.escalations.get(escalation).cloned();
                self.acked.push((e.at, target.clone()));
                Some(entry(
                    e.at,
                    "Escalation",
                    match target {
                        Some(t) => format!("Escalation to {t} acknowledged"),
                        None => format!("Escalation #{escalation} acknowledged"),
                    },
                    by,
                ))
            }
            EventKind::EscalationTimedOut { escalation, level } => {
                let target = self
                    .escalations
                    .get(escalation)
                    .cloned()
                    .unwrap_or_else(|| format!("escalation #{escalation}"));
                self.timed_out.push(format!("{target} (level {level})"));
                Some(entry(
                    e.at,
                    "Escalation",
                    format!("No acknowledgement from {target} at level {level}"),
                    by,
                ))
            }
            EventKind::DeployObserved {
                service,
                version,
                environment,
                url,
                deployed_at,
            } => {
                self.observed
                    .push((service.to_lowercase(), version.clone()));
                let env = environment
                    .as_deref()
                    .map(|e| format!(" to {e}"))
                    .unwrap_or_default();
                let mut t = entry(
                    *deployed_at,
                    "Deploy",
                    format!("Deploy of {service} {version}{env}"),
                    by,
                );
                if let Some(u) = url {
                    t.entry.links.push(Link {
                        name: "deploy".into(),
                        url: u.clone(),
                    });
                }
                Some(t)
            }
            EventKind::MetricSnapshot { query, summary, .. } => Some(entry(
                e.at,
                "Metric",
                format!("{query}: {}", people.text(summary)),
                by,
            )),
            EventKind::MessageCaptured {
                message_id,
                author,
                content,
                change,
                said_at,
            } if change == "highlighted" => {
                self.highlights += 1;
                let stored = by_id.get(message_id).copied();
                Some(key_moment(
                    e,
                    *message_id,
                    author,
                    content,
                    *said_at,
                    stored,
                    review,
                ))
            }
            EventKind::MessageCaptured { .. } => None,
            EventKind::Resolved { summary } => {
                review.lint(place, summary);
                Some(entry(
                    e.at,
                    "Resolved",
                    format!("Resolved: {}", people.text(summary)),
                    by,
                ))
            }
            EventKind::Reopened { reason } => {
                review.lint(place, reason);
                Some(entry(
                    e.at,
                    "Reopened",
                    format!("Reopened: {}", people.text(reason)),
                    by,
                ))
            }
            EventKind::UpdateReminderSent { .. } => {
                self.reminders += 1;
                None
            }
            EventKind::CadenceChanged { .. } => None,
            // Follow-up work after the incident: the action table says where each item stands.
            EventKind::ActionItemFiled { .. }
            | EventKind::ActionItemTracked { .. }
            | EventKind::ActionItemReminded { .. } => None,
            // An alert belongs on the timeline when it began or ended, not when sitrep heard.
            EventKind::AlertFired { starts_at, .. } => Some(entry(
                *starts_at,
                "Alert",
                people.text(&e.kind.describe()),
                by,
            )),
            EventKind::AlertResolved { ends_at, .. } => Some(entry(
                *ends_at,
                "Alert",
                people.text(&e.kind.describe()),
                by,
            )),
            EventKind::ChecklistTicked { .. }
            | EventKind::ChecklistUnticked { .. }
            | EventKind::ChecklistSkipped { .. }
            | EventKind::ChecklistItemAdded { .. } => Some(entry(
                e.at,
                "Checklist",
                people.text(&e.kind.describe()),
                by,
            )),
            EventKind::FieldSet { .. } => {
                Some(entry(e.at, "Field", people.text(&e.kind.describe()), by))
            }
            // Kinds added later read as their own description until they are worded here.
            #[allow(unreachable_patterns)]
            other => Some(entry(e.at, "Event", people.text(&other.describe()), by)),
        }
    }
}

/// The key-moment phase: a highlighted message sits where it was said, however much later it
/// was marked (`e`), with its text as stored now, or as captured when marked.
fn key_moment(
    e: &Event,
    message_id: u64,
    author: &UserRef,
    content: &str,
    said_at: Option<DateTime<Utc>>,
    stored: Option<&CapturedMessage>,
    review: &mut Review,
) -> Timed {
    let people = review.people;
    let said = stored
        .map(|m| m.at)
        .or(said_at)
        .or_else(|| snowflake_time(message_id).filter(|t| *t <= e.at))
        .unwrap_or(e.at);
    let (text, links_) = match stored {
        Some(m) if m.is_deleted() => ("(message since deleted)".into(), vec![]),
        Some(m) => {
            review.lint(format!("Timeline, {}", utc(said)), &m.content);
            let edited = if m.edited_at.is_some() {
                " (edited)"
            } else {
                ""
            };
            (
                format!("{}{edited}", people.text(&m.content)),
                links(people, &m.attachments),
            )
        }
        None => {
            review.lint(format!("Timeline, {}", utc(said)), content);
            (people.text(content), vec![])
        }
    };
    let mut t = entry(said, "Key moment", text, Some(people.label(author)));
    t.entry.links = links_;
    t
}

/// The deploys phase: deploys the timeline did not record, from the lookback before the start
/// to the end, join it. Returns the deploys before impact began, worded for the root-cause
/// hints.
fn unrecorded_deploys(
    src: &Sources,
    people: &People,
    read: &mut Read,
    started: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Vec<String> {
    let mut recent_deploys = Vec::new();
    for d in &src.deploys {
        if d.time > end {
            continue;
        }
        let seen = read
            .observed
            .iter()
            .any(|(s, v)| *s == d.service.to_lowercase() && *v == d.version);
        if d.time <= started {
            recent_deploys.push(format!(
                "{} {} deployed {} ({} before impact began)",
                d.service,
                d.version,
                utc(d.time),
                human_duration(started - d.time)
            ));
        }
        if seen {
            continue;
        }
        let env = d
            .environment
            .as_deref()
            .map(|e| format!(" to {e}"))
            .unwrap_or_default();
        let status = d
            .status
            .as_deref()
            .map(|s| format!(" ({s})"))
            .unwrap_or_default();
        let author = d.author.clone().filter(|_| !people.anonymize);
        let mut t = entry(
            d.time,
            "Deploy",
            format!("Deploy of {} {}{env}{status}", d.service, d.version),
            author,
        );
        if let Some(u) = &d.url {
            t.entry.links.push(Link {
                name: "deploy".into(),
                url: u.clone(),
            });
        }
        read.timeline.push(t);
    }
    recent_deploys
}

fn action_items(inc: &Incident, people: &People) -> Vec<ActionRow> {
    inc.action_items
        .iter()
        .map(|a| ActionRow {
            action: cell(&people.text(&a.text)),
            owner: a
                .owner
                .as_ref()
                .map_or_else(|| "unassigned".into(), |o| cell(&people.label(o))),
            due: a
                .due
                .map_or_else(|| "—".into(), |d| d.format("%Y-%m-%d").to_string()),
            issue: a.issue.as_ref().map_or_else(
                || "—".into(),
                |i| {
                    let view = crate::render::IssueView::of(i);
                    let key = cell(&i.key);
                    let link = match &view.url {
                        Some(u) => format!("[{key}]({})", cell(u)),
                        None => key,
                    };
                    let state = if a.done {
                        "done".to_string()
                    } else {
                        cell(&i.state)
                    };
                    format!("{link} · {state}")
                },
            ),
        })
        .collect()
}

/// The moments phase: when each stage was reached, with the measure it ends beside it.
fn moments(inc: &Incident, open: bool) -> Vec<Moment> {
    let measure = |label: &str, d: Option<chrono::Duration>| {
        d.map(|d| format!("{label} {}", human_duration(d)))
    };
    vec![
        Moment {
            label: "Impact began",
            at: inc.times.started.map(utc),
            measure: None,
        },
        Moment {
            label: "Detected (declared)",
            at: inc.times.declared.map(utc),
            measure: measure("TTD", inc.ttd()),
        },
        Moment {
            label: "Acknowledged",
            at: inc.times.acknowledged.map(utc),
            measure: measure("TTA", inc.tta()),
        },
        Moment {
            label: "Identified",
            at: inc.times.identified.map(utc),
            measure: None,
        },
        Moment {
            label: "Mitigated",
            at: inc.times.mitigated.map(utc),
            measure: measure("TTM", inc.ttm()),
        },
        Moment {
            label: "Resolved",
            at: inc.times.resolved.filter(|_| !open).map(utc),
            measure: measure("TTR", inc.ttr().filter(|_| !open)),
        },
    ]
}

/// The severity with its configured name and description.
fn severity_line(config: &Config, inc: &Incident) -> String {
    match config.severity(inc.severity) {
        Some(s) => match &s.description {
            Some(d) => format!("{} ({}: {d})", inc.severity, s.name),
            None => format!("{} ({})", inc.severity, s.name),
        },
        None => inc.severity.to_string(),
    }
}

/// From the start of impact to mitigation, or to now while unmitigated.
fn impact_window(inc: &Incident, started: DateTime<Utc>, now: DateTime<Utc>) -> String {
    match inc.times.mitigated {
        Some(m) => format!(
            "{} → {} ({} until mitigation)",
            utc(started),
            utc(m),
            human_duration(m - started)
        ),
        None => format!(
            "{} → not yet mitigated ({} so far)",
            utc(started),
            human_duration(now - started)
        ),
    }
}

/// The hints phase: facts from the timeline for the sections humans write.
fn hints(inc: &Incident, people: &People, read: &Read, recent_deploys: Vec<String>) -> Hints {
    let mut hints = Hints::default();
    if let Some(r) = &inc.resolution {
        hints
            .root_cause
            .push(format!("Resolution summary: {}", people.text(r)));
    }
    hints.root_cause.extend(recent_deploys);
    if let Some(d) = inc.ttd().filter(|d| d.num_minutes() >= 5) {
        hints.contributing.push(format!(
            "Impact began {} before the incident was declared.",
            human_duration(d)
        ));
    }
    if !read.timed_out.is_empty() {
        hints.contributing.push(format!(
            "Escalations went unacknowledged: {}.",
            read.timed_out.join(", ")
        ));
    }
    if inc.reopened > 0 {
        hints.contributing.push(format!(
            "The incident was reopened {} time{} after being resolved.",
            inc.reopened,
            if inc.reopened == 1 { "" } else { "s" }
        ));
    }
    if let Some(d) = inc.tta() {
        hints.went_well.push(format!(
            "Acknowledged {} after declaration.",
            human_duration(d)
        ));
    }
    if let Some(d) = inc.ttm() {
        hints.went_well.push(format!(
            "Mitigated {} after impact began.",
            human_duration(d)
        ));
    }
    for (at, target) in &read.acked {
        hints.went_well.push(format!(
            "{} acknowledged the escalation at {}.",
            target.as_deref().unwrap_or("The escalation target"),
            utc(*at)
        ));
    }
    let reminders = read.reminders;
    if reminders > 0 {
        hints.improve.push(format!(
            "sitrep had to ask for a status update {reminders} time{} because the team had posted none since the last one.",
            if reminders == 1 { "" } else { "s" }
        ));
    }
    if inc.tta().is_none() && inc.times.declared.is_some() {
        hints
            .improve
            .push("No human response was recorded after the declaration.".into());
    }
    hints
}

/// The transcript phase: every message, replies saying to whom.
fn transcript(src: &Sources, people: &People, review: &mut Review) -> Vec<TranscriptLine> {
    let author_of: HashMap<u64, &UserRef> =
        src.messages.iter().map(|m| (m.id, &m.author)).collect();
    src.messages
        .iter()
        .map(|m| {
            let reply = m
                .reply_to
                .and_then(|r| author_of.get(&r))
                .map(|a| format!("(to {}) ", people.label(a)))
                .unwrap_or_default();
            TranscriptLine {
                at: utc(m.at),
                author: people.label(&m.author),
                text: if m.is_deleted() {
                    String::new()
                } else {
                    // A key moment was linted where the timeline shows it; once is enough.
                    if m.highlighted.is_none() {
                        review.lint(format!("Transcript, {}", utc(m.at)), &m.content);
                    }
                    format!("{reply}{}", people.text(&m.content))
                },
                edited: m.edited_at.is_some(),
                deleted: m.is_deleted(),
                links: if m.is_deleted() {
                    Vec::new()
                } else {
                    links(people, &m.attachments)
                },
            }
        })
        .collect()
}

/// People grouped by the roles they held, commander first; the rest are responders.
fn participants(people: &People) -> Vec<RoleGroup> {
    let mut groups: Vec<RoleGroup> = Vec::new();
    let commander = title_case(COMMANDER);
    let mut responders = Vec::new();
    for id in &people.order {
        let p = &people.by_id[id];
        let shown = if people.anonymize {
            p.alias.clone()
        } else {
            p.name.clone()
        };
        let shown = match p.messages {
            0 => shown,
            1 => format!("{shown} (1 message)"),
            n => format!("{shown} ({n} messages)"),
        };
        if p.roles.is_empty() {
            responders.push(shown);
            continue;
        }
        for role in &p.roles {
            match groups.iter_mut().find(|g| &g.role == role) {
                Some(g) => g.people.push(shown.clone()),
                None => groups.push(RoleGroup {
                    role: role.clone(),
                    people: vec![shown.clone()],
                }),
            }
        }
    }
    groups.sort_by_key(|g| g.role != commander);
    if !responders.is_empty() {
        groups.push(RoleGroup {
            role: "Responders".into(),
            people: responders,
        });
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postmortem_names_are_replaced_as_whole_words_only() {
        assert_eq!(
            replace_word("Bob and bobby; @bob!", "bob", "R1"),
            "R1 and bobby; R1!"
        );
        assert_eq!(replace_word("nothing here", "bob", "R1"), "nothing here");
        assert_eq!(replace_word("zoë said", "zoë", "R2"), "R2 said");
        assert_eq!(replace_word("Ann Lee, ann", "ann lee", "C"), "C, ann");
    }

    #[test]
    fn postmortem_snowflakes_tell_when_a_message_was_sent() {
        // Discord's documented example: 175928847299117063 was made at 2016-04-30 11:18:25.796 UTC.
        assert_eq!(
            snowflake_time(175_928_847_299_117_063).map(|t| t.timestamp_millis()),
            Some(1_462_015_105_796)
        );
        assert_eq!(snowflake_time(1001), None);
    }

    #[test]
    fn postmortem_key_moments_sit_where_they_were_said_even_without_the_message() {
        use crate::domain::{IncidentId, Severity};
        use chrono::TimeZone;
        let t = |m: u32| Utc.with_ymd_and_hms(2026, 11, 21, 10, m, 0).unwrap();
        let alice = Actor::User(UserRef::new(1, "alice"));
        let opened = Event {
            at: t(0),
            actor: alice.clone(),
            kind: EventKind::Opened {
                title: "Search is slow".into(),
                severity: Severity(3),
                summary: None,
                service: None,
                started: t(0),
                channel: Some(9),
                channel_name: None,
                drill: false,
                playbook: None,
            },
        };
        let incident = Incident::from_opened(IncidentId(1), &opened).unwrap();
        // Marked at 10:30, long after any of them was said.
        let marked = |message_id: u64, said_at| Event {
            at: t(30),
            actor: alice.clone(),
            kind: EventKind::MessageCaptured {
                message_id,
                author: UserRef::new(2, "bob"),
                content: format!("said {message_id}"),
                change: "highlighted".into(),
                said_at,
            },
        };
        let at_five = ((t(5).timestamp_millis() - DISCORD_EPOCH_MS) as u64) << 22;
        let src = Sources {
            incident,
            events: vec![
                opened,
                Event {
                    at: t(10),
                    actor: alice.clone(),
                    kind: EventKind::NoteAdded {
                        text: "looking".into(),
                    },
                },
                marked(77, Some(t(3))),
                marked(at_five, None),
                // Neither recorded nor a snowflake: when it was marked is all there is.
                marked(42, None),
            ],
            messages: Vec::new(),
            text_gaps: Vec::new(),
            deploys: Vec::new(),
        };
        let meta = Meta {
            version: None,
            compiled_at: t(40),
            compiled_by: None,
        };
        let d = compile(&src, &Config::default(), &meta);
        let got: Vec<(String, String)> = d
            .timeline
            .iter()
            .map(|e| (e.at[11..16].to_string(), e.text.clone()))
            .collect();
        let want = [
            ("10:00", "Declared as SEV3: Search is slow".to_string()),
            ("10:03", "said 77".to_string()),
            ("10:05", format!("said {at_five}")),
            ("10:10", "looking".to_string()),
            ("10:30", "said 42".to_string()),
        ];
        let want: Vec<(String, String)> = want.into_iter().map(|(a, b)| (a.into(), b)).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn postmortem_table_cells_keep_their_pipes_inert() {
        assert_eq!(cell("a | b"), "a \\| b");
    }
}
