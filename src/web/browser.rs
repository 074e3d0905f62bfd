//! The incident browser: the list with filters, one incident's whole timeline, and its
//! post-mortem draft. Everything here is behind [`Admin`].

use super::auth::Admin;
use super::markdown::{safe_url, to_safe_html};
use super::views::{with_type, Cache};
use super::{internal, Web};
use crate::domain::{Event, EventKind, Incident, IncidentId, Severity, State};
use crate::postmortem::{export_draft, ExportError, Exported};
use crate::render::IncidentView;
use crate::store::{CapturedMessage, Deploy, JobKind, StoreError};
use axum::extract::{Path, Query, State as Extract};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use chrono::{DateTime, NaiveDate, Utc};
use minijinja::context;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    /// `open`, `resolved`, or a state name; empty for all.
    state: Option<String>,
    severity: Option<String>,
    service: Option<String>,
    /// Incidents that started on or after this day, `2026-11-01`.
    from: Option<String>,
    /// Incidents that started on or before this day.
    to: Option<String>,
}

/// The checked filters.
struct Filter {
    state: Option<String>,
    severity: Option<Severity>,
    service: Option<String>,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
}

fn given(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

impl ListQuery {
    fn check(&self) -> Result<Filter, Vec<String>> {
        let mut problems = Vec::new();
        let state = given(&self.state).map(str::to_ascii_lowercase);
        if let Some(s) = &state {
            if s != "open" && s != "resolved" && s.parse::<State>().is_err() {
                problems.push(format!(
                    "state `{s}` is not open, resolved, investigating, identified or monitoring"
                ));
            }
        }
        let severity = match given(&self.severity).map(str::parse::<Severity>) {
            Some(Ok(s)) => Some(s),
            Some(Err(e)) => {
                problems.push(e.to_string());
                None
            }
            None => None,
        };
        let mut day = |what: &str, v: &Option<String>| match given(v) {
            Some(d) => match NaiveDate::parse_from_str(d, "%Y-%m-%d") {
                Ok(d) => Some(d),
                Err(_) => {
                    problems.push(format!("{what} `{d}` is not a day like 2026-11-21"));
                    None
                }
            },
            None => None,
        };
        let (from, to) = (day("from", &self.from), day("to", &self.to));
        if problems.is_empty() {
            Ok(Filter {
                state,
                severity,
                service: given(&self.service).map(str::to_string),
                from,
                to,
            })
        } else {
            Err(problems)
        }
    }
}

fn started(inc: &Incident) -> Option<DateTime<Utc>> {
    inc.times.started.or(inc.times.declared)
}

impl Filter {
    fn keeps(&self, inc: &Incident) -> bool {
        let state_ok = match self.state.as_deref() {
            None => true,
            Some("open") => inc.is_open(),
            Some("resolved") => !inc.is_open(),
            Some(s) => inc.state.as_str() == s,
        };
        let day = started(inc).map(|t| t.date_naive());
        state_ok
            && self.severity.map_or(true, |s| s == inc.severity)
            && self.service.as_deref().map_or(true, |s| {
                inc.service
                    .as_deref()
                    .is_some_and(|have| have.eq_ignore_ascii_case(s))
            })
            && self.from.map_or(true, |f| day.is_some_and(|d| d >= f))
            && self.to.map_or(true, |t| day.is_some_and(|d| d <= t))
    }
}

#[derive(Debug, Serialize)]
struct ListRow {
    id: String,
    title: String,
    public_title: Option<String>,
    public_visible: bool,
    severity: String,
    severity_name: String,
    state: String,
    service: Option<String>,
    started: Option<DateTime<Utc>>,
    resolved: Option<DateTime<Utc>>,
    duration: String,
    drill: bool,
    /// Checklist progress, "4 of 7 done"; absent without a checklist.
    checklist: Option<String>,
}

fn not_found(web: &Web, what: &str) -> Response {
    web.views
        .error_page(StatusCode::NOT_FOUND, "Not found", what)
}

fn incident_id(web: &Web, raw: &str) -> Result<IncidentId, Box<Response>> {
    raw.parse::<IncidentId>().map_err(|_| {
        Box::new(not_found(
            web,
            &format!("`{raw}` is not an incident id; they look like INC-7."),
        ))
    })
}

pub async fn list(
    _: Admin,
    Extract(web): Extract<Arc<Web>>,
    Query(q): Query<ListQuery>,
) -> Response {
    let all = match web.app.store.incidents() {
        Ok(a) => a,
        Err(e) => return internal("listing incidents", e).page(&web),
    };
    let now = web.app.now();
    let (status, problems, rows) = match q.check() {
        Ok(filter) => {
            let rows: Vec<ListRow> = all
                .iter()
                .rev()
                .filter(|i| filter.keeps(i))
                .map(|i| ListRow {
                    id: i.id.to_string(),
                    title: i.title.clone(),
                    public_title: i.public_title.clone().filter(|t| *t != i.title),
                    public_visible: i.public_visible && !i.drill,
                    severity: i.severity.to_string(),
                    severity_name: web
                        .app
                        .config
                        .severity(i.severity)
                        .map(|s| s.name.clone())
                        .unwrap_or_default(),
                    state: i.state.to_string(),
                    checklist: (!i.checklist.is_empty()).then(|| i.progress().to_string()),
                    service: i.service.clone(),
                    started: started(i),
                    resolved: i.times.resolved.filter(|_| !i.is_open()),
                    duration: i.age(now),
                    drill: i.drill,
                })
                .collect();
            (StatusCode::OK, Vec::new(), rows)
        }
        Err(problems) => (StatusCode::BAD_REQUEST, problems, Vec::new()),
    };
    let services: BTreeSet<String> = all.iter().filter_map(|i| i.service.clone()).collect();
    let severities: Vec<String> = web
        .app
        .config
        .severity_levels()
        .iter()
        .map(ToString::to_string)
        .collect();
    web.views.page(
        status,
        "incidents.html",
        context! {
            rows,
            problems,
            total => all.len(),
            services,
            severities,
            states => ["open", "resolved", "investigating", "identified", "monitoring"],
            q => context! {
                state => given(&q.state),
                severity => given(&q.severity),
                service => given(&q.service),
                from => given(&q.from),
                to => given(&q.to),
            },
        },
        Cache::Private,
    )
}

#[derive(Debug, Clone, Serialize)]
struct Link {
    name: String,
    url: String,
}

/// One line of the timeline.
#[derive(Debug, Serialize)]
struct Row {
    seq: usize,
    at: DateTime<Utc>,
    /// A class for styling and for finding rows: `update`, `note`, `escalation`, `deploy`, ….
    kind: &'static str,
    label: &'static str,
    who: String,
    text: String,
    /// A longer text shown folded, such as the body of a scheduled post.
    detail: Option<String>,
    links: Vec<Link>,
    /// Where the metric snapshot's chart is served, when one is stored.
    chart: Option<String>,
}

fn message_links(m: &CapturedMessage) -> Vec<Link> {
    m.attachments
        .iter()
        .filter_map(|a| {
            safe_url(&a.url).map(|url| Link {
                name: a.name.clone(),
                url,
            })
        })
        .collect()
}

fn timeline(
    id: IncidentId,
    events: &[Event],
    messages: &HashMap<u64, &CapturedMessage>,
    charts: &BTreeSet<u32>,
) -> Vec<Row> {
    let mut rows: Vec<Row> = events
        .iter()
        .enumerate()
        .map(|(seq, e)| {
            let mut row = Row {
                seq,
                at: e.at,
                kind: "event",
                label: "Event",
                who: e.actor.label(),
                text: e.kind.describe(),
                detail: None,
                links: Vec::new(),
                chart: None,
            };
            let (kind, label) = match &e.kind {
                EventKind::Opened { summary, .. } => {
                    if let Some(s) = summary {
                        row.detail = Some(s.clone());
                    }
                    ("opened", "Opened")
                }
                EventKind::SeverityChanged { .. } => ("severity", "Severity"),
                EventKind::StateChanged { .. } => ("state", "State"),
                EventKind::RoleAssigned { .. } | EventKind::RoleRelinquished { .. } => {
                    ("role", "Role")
                }
                EventKind::StatusPosted {
                    automated: false, ..
                } => ("update", "Update"),
                EventKind::StatusPosted {
                    automated: true,
                    text,
                    ..
                } => {
                    row.detail = Some(text.clone());
                    ("scheduled", "Scheduled update")
                }
                EventKind::NoteAdded { .. } => ("note", "Note"),
                EventKind::ActionItemAdded { .. } => ("action", "Action item"),
                EventKind::Escalated { .. } => ("escalation", "Escalation"),
                EventKind::EscalationAcknowledged { .. } => ("escalation", "Acknowledged"),
                EventKind::EscalationTimedOut { .. } => ("escalation", "Not acknowledged"),
                EventKind::DeployObserved { url, .. } => {
                    if let Some(url) = url.as_deref().and_then(safe_url) {
                        row.links.push(Link {
                            name: "deploy".into(),
                            url,
                        });
                    }
                    ("deploy", "Deploy")
                }
                EventKind::MetricSnapshot { query, summary, .. } => {
                    row.text = format!("{query}: {summary}");
                    if charts.contains(&(seq as u32)) {
                        row.chart = Some(format!("/incidents/{id}/charts/{seq}.png"));
                    }
                    ("metric", "Metric snapshot")
                }
                EventKind::MessageCaptured {
                    message_id,
                    author,
                    content,
                    change,
                    said_at,
                } => {
                    row.who = author.name.clone();
                    let stored = messages.get(message_id);
                    if change == "highlighted" {
                        // A key moment belongs where it was said, not where it was marked.
                        if let Some(said) = stored.map(|m| m.at).or(*said_at) {
                            row.at = said;
                        }
                        row.text = match stored {
                            Some(m) if m.is_deleted() => "(message since deleted)".into(),
                            Some(m) if m.edited_at.is_some() => format!("{} (edited)", m.content),
                            Some(m) => m.content.clone(),
                            None => content.clone(),
                        };
                        if let Some(m) = stored {
                            row.links = message_links(m);
                        }
                        ("highlight", "Key moment")
                    } else {
                        row.text = format!("Message {change}: {content}");
                        ("message", "Message")
                    }
                }
                EventKind::Resolved { .. } => ("resolved", "Resolved"),
                EventKind::Reopened { .. } => ("reopened", "Reopened"),
                EventKind::CadenceChanged { .. } => ("cadence", "Cadence"),
                EventKind::UpdateReminderSent { .. } => ("reminder", "Reminder"),
                EventKind::PublicChanged { .. } => ("public", "Status page"),
                EventKind::ActionItemFiled { key, url, .. } => {
                    if let Some(url) = safe_url(url) {
                        row.links.push(Link {
                            name: key.clone(),
                            url,
                        });
                    }
                    ("action", "Action item filed")
                }
                EventKind::ActionItemTracked { .. } => ("action", "Action item"),
                EventKind::ActionItemReminded { .. } => ("reminder", "Reminder"),
                EventKind::ChecklistTicked { .. }
                | EventKind::ChecklistUnticked { .. }
                | EventKind::ChecklistSkipped { .. }
                | EventKind::ChecklistItemAdded { .. } => ("checklist", "Checklist"),
                EventKind::FieldSet { .. } => ("field", "Field"),
                // Kinds added later read as their own description until they are worded here.
                #[allow(unreachable_patterns)]
                _ => ("event", "Event"),
            };
            row.kind = kind;
            row.label = label;
            row
        })
        .collect();
    // Stable: events of the same instant keep the order they were recorded in.
    rows.sort_by_key(|r| r.at);
    rows
}

#[derive(Debug, Serialize)]
struct MessageRow {
    id: u64,
    at: DateTime<Utc>,
    author: String,
    content: String,
    edited: Option<DateTime<Utc>>,
    deleted: Option<DateTime<Utc>>,
    highlighted: bool,
    links: Vec<Link>,
}

#[derive(Debug, Serialize)]
struct DeployRow {
    time: DateTime<Utc>,
    service: String,
    version: String,
    environment: Option<String>,
    status: Option<String>,
    author: Option<String>,
    commit: Option<String>,
    link: Option<String>,
    /// Before the impact started: a suspect.
    before_start: bool,
}

fn deploys_around(web: &Web, inc: &Incident) -> Result<Vec<DeployRow>, StoreError> {
    let Some(start) = started(inc) else {
        return Ok(Vec::new());
    };
    let lookback = chrono::Duration::from_std(web.app.config.whats_changed.lookback.0)
        .unwrap_or_else(|_| chrono::Duration::hours(2));
    let end = inc.times.resolved.unwrap_or_else(|| web.app.now());
    let mut rows: Vec<DeployRow> = web
        .app
        .store
        .deploys(start - lookback, None, None)?
        .into_iter()
        .filter(|d: &Deploy| d.time <= end)
        .map(|d| DeployRow {
            before_start: d.time <= start,
            link: d.url.as_deref().and_then(safe_url),
            time: d.time,
            service: d.service,
            version: d.version,
            environment: d.environment,
            status: d.status,
            author: d.author,
            commit: d.commit,
        })
        .collect();
    rows.reverse();
    Ok(rows)
}

pub async fn incident(
    _: Admin,
    Extract(web): Extract<Arc<Web>>,
    Path(raw): Path<String>,
) -> Response {
    let id = match incident_id(&web, &raw) {
        Ok(id) => id,
        Err(res) => return *res,
    };
    let loaded = (|| -> Result<_, StoreError> {
        let Some(inc) = web.app.store.incident(id)? else {
            return Ok(None);
        };
        let events = web.app.store.events(id)?;
        let messages = web.app.store.messages(id)?;
        let charts: BTreeSet<u32> = web.app.store.chart_seqs(id)?.into_iter().collect();
        let deploys = deploys_around(&web, &inc)?;
        let next_update = web
            .app
            .store
            .job(id, &JobKind::StatusUpdate)?
            .map(|j| j.runs_at())
            .filter(|_| inc.is_open());
        let versions = web.app.store.postmortem_versions(id)?;
        Ok(Some((
            inc,
            events,
            messages,
            charts,
            deploys,
            next_update,
            versions,
        )))
    })();
    let (inc, events, messages, charts, deploys, next_update, versions) = match loaded {
        Ok(Some(l)) => l,
        Ok(None) => return not_found(&web, &format!("{id} does not exist.")),
        Err(e) => return internal("reading an incident", e).page(&web),
    };
    let by_id: HashMap<u64, &CapturedMessage> = messages.iter().map(|m| (m.id, m)).collect();
    let rows = timeline(id, &events, &by_id, &charts);
    let message_rows: Vec<MessageRow> = messages
        .iter()
        .map(|m| MessageRow {
            id: m.id,
            at: m.at,
            author: m.author.name.clone(),
            content: m.content.clone(),
            edited: m.edited_at,
            deleted: m.deleted_at,
            highlighted: m.highlighted.is_some(),
            links: message_links(m),
        })
        .collect();
    let place = inc
        .channel_name
        .as_ref()
        .map(|n| format!("#{n}"))
        .unwrap_or_default();
    let view = IncidentView::new(&inc, &web.app.config, place, web.app.now());
    let times = [
        ("Impact started", inc.times.started),
        ("Declared", inc.times.declared),
        ("Acknowledged", inc.times.acknowledged),
        ("Identified", inc.times.identified),
        ("Mitigated", inc.times.mitigated),
        ("Resolved", inc.times.resolved),
    ]
    .into_iter()
    .map(|(label, at)| context! { label, at })
    .collect::<Vec<_>>();
    let escalations = rows.iter().filter(|r| r.kind == "escalation").count();
    web.views.page(
        StatusCode::OK,
        "incident.html",
        context! {
            incident => view,
            public => context! {
                visible => inc.public_visible && !inc.drill,
                title => inc.public_title(),
                summary => inc.public_summary(),
                differs => inc.public_title.is_some() || inc.public_summary.is_some(),
            },
            times,
            ttd => inc.ttd().map(crate::domain::human_duration),
            next_update,
            rows,
            escalations,
            messages => message_rows,
            deploys,
            versions,
        },
        Cache::Private,
    )
}

#[derive(Debug, Deserialize)]
pub struct VersionQuery {
    version: Option<String>,
}

fn version(web: &Web, q: &VersionQuery) -> Result<Option<u32>, Box<Response>> {
    match given(&q.version) {
        None => Ok(None),
        Some(v) => v.parse::<u32>().map(Some).map_err(|_| {
            Box::new(web.views.error_page(
                StatusCode::BAD_REQUEST,
                "Not a version",
                &format!("`{v}` is not a post-mortem version number."),
            ))
        }),
    }
}

/// The draft a post-mortem page or download asks for: the incident, then the version.
fn exported(
    web: &Web,
    raw: &str,
    q: &VersionQuery,
) -> Result<(IncidentId, Exported), Box<Response>> {
    let id = incident_id(web, raw)?;
    let asked = version(web, q)?;
    let app = &web.app;
    export_draft(&app.store, &app.renderer, &app.config, id, asked)
        .map(|e| (id, e))
        .map_err(|e| Box::new(export_failed(web, e)))
}

fn export_failed(web: &Web, e: ExportError) -> Response {
    if e.is_not_found() {
        not_found(web, &format!("{e}."))
    } else {
        internal("exporting a post-mortem", e).page(web)
    }
}

#[derive(Debug, Serialize)]
struct VersionRow {
    version: u32,
    compiled_at: DateTime<Utc>,
    compiled_by: String,
    incident_open: bool,
    reviewer_notes: u32,
}

pub async fn postmortem(
    _: Admin,
    Extract(web): Extract<Arc<Web>>,
    Path(raw): Path<String>,
    Query(q): Query<VersionQuery>,
) -> Response {
    let (id, exported) = match exported(&web, &raw, &q) {
        Ok(found) => found,
        Err(res) => return *res,
    };
    let app = &web.app;
    let records = (|| -> Result<Vec<VersionRow>, StoreError> {
        let mut out = Vec::new();
        for v in app.store.postmortem_versions(id)?.into_iter().rev() {
            if let Some(r) = app.store.postmortem(id, Some(v))? {
                out.push(VersionRow {
                    version: r.version,
                    compiled_at: r.compiled_at,
                    compiled_by: r.compiled_by,
                    incident_open: r.incident_open,
                    reviewer_notes: r.reviewer_notes,
                });
            }
        }
        Ok(out)
    })();
    let versions = match records {
        Ok(v) => v,
        Err(e) => return internal("listing post-mortem versions", e).page(&web),
    };
    let title = match app.store.incident(id) {
        Ok(inc) => inc.map(|i| i.title).unwrap_or_default(),
        Err(e) => return internal("reading the incident", e).page(&web),
    };
    let download = match exported.version {
        Some(v) => format!("/incidents/{id}/postmortem.md?version={v}"),
        None => format!("/incidents/{id}/postmortem.md"),
    };
    web.views.page(
        StatusCode::OK,
        "postmortem.html",
        context! {
            id => id.to_string(),
            title,
            html => to_safe_html(&exported.markdown),
            version => exported.version,
            latest => exported.latest,
            versions,
            download,
        },
        Cache::Private,
    )
}

/// `GET /postmortems/INC-7.md`: the export for scripts, behind the same bearer token.
pub async fn postmortem_export(
    admin: Admin,
    web: Extract<Arc<Web>>,
    Path(file): Path<String>,
    q: Query<VersionQuery>,
) -> Response {
    let raw = file.strip_suffix(".md").unwrap_or(&file).to_string();
    postmortem_md(admin, web, Path(raw), q).await
}

pub async fn postmortem_md(
    _: Admin,
    Extract(web): Extract<Arc<Web>>,
    Path(raw): Path<String>,
    Query(q): Query<VersionQuery>,
) -> Response {
    let (id, exported) = match exported(&web, &raw, &q) {
        Ok(found) => found,
        Err(res) => return *res,
    };
    let file = match exported.version {
        Some(v) => format!("{id}-postmortem-v{v}.md"),
        None => format!("{id}-postmortem-draft.md"),
    };
    let mut res = with_type(
        StatusCode::OK,
        "text/markdown; charset=utf-8",
        exported.markdown,
        Cache::Private,
    );
    // The name is built from an id and a number only: always a valid header.
    res.headers_mut().insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&format!("attachment; filename=\"{file}\""))
            .expect("header-safe file name"),
    );
    res
}

pub async fn chart(
    _: Admin,
    Extract(web): Extract<Arc<Web>>,
    Path((raw, file)): Path<(String, String)>,
) -> Response {
    let id = match incident_id(&web, &raw) {
        Ok(id) => id,
        Err(res) => return *res,
    };
    let Some(seq) = file
        .strip_suffix(".png")
        .and_then(|s| s.parse::<u32>().ok())
    else {
        return not_found(&web, "Charts are named by their event, like 12.png.");
    };
    match web.app.store.chart(id, seq) {
        Ok(Some(png)) => with_type(StatusCode::OK, "image/png", png, Cache::Private),
        Ok(None) => not_found(&web, &format!("{id} has no chart for event {seq}.")),
        Err(e) => internal("reading a chart", e).page(&web),
    }
}
