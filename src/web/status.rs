//! The public status page, its JSON and its Atom feed.
//!
//! Built only from what the stakeholder channel was already told: the opening announcement
//! (title, severity, summary), the updates typed with `/incident update`, and the resolution.
//! Notes, captured messages, scheduled posts (they name people), roles, channels and links are
//! never read here. Drills and incidents kept off with `/incident public visible:false` are left
//! out entirely, and a public title or summary replaces the internal one everywhere.

use super::auth::{refuse, Access};
use super::views::{with_type, Cache};
use super::{internal, Web};
use crate::app::App;
use crate::config::Config;
use crate::domain::{Event, EventKind, Incident, State};
use crate::store::{JobKind, StoreError};
use axum::extract::{Query, State as Extract};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use chrono::{DateTime, Utc};
use minijinja::context;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// One thing the stakeholder channel was told.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PublicUpdate {
    pub at: DateTime<Utc>,
    /// `declared`, `update` or `resolved`.
    pub kind: &'static str,
    /// The state the incident was in once this was said.
    pub state: String,
    pub text: Option<String>,
}

/// An incident as the public sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PublicIncident {
    pub id: String,
    pub title: String,
    pub summary: Option<String>,
    pub severity: String,
    pub severity_name: String,
    pub state: String,
    pub started: DateTime<Utc>,
    pub resolved: Option<DateTime<Utc>>,
    /// The newest update or resolution; the announcement alone does not count.
    pub latest_update: Option<PublicUpdate>,
    /// When the next scheduled update is due, while the incident is open.
    pub next_update: Option<DateTime<Utc>>,
    /// When the public was last told something about it.
    pub updated: DateTime<Utc>,
    /// Everything the public was told, newest first.
    pub updates: Vec<PublicUpdate>,
    /// The custom fields marked public, as set now.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<PublicField>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PublicField {
    pub name: String,
    pub value: String,
}

impl PublicIncident {
    /// `None` for incidents the public must not see: drills, and those kept off the page.
    pub fn new(
        inc: &Incident,
        events: &[Event],
        config: &Config,
        next_update: Option<DateTime<Utc>>,
    ) -> Option<PublicIncident> {
        if !inc.public_visible || inc.drill {
            return None;
        }
        let summary = inc.public_summary().map(str::to_string);
        let mut state = State::Investigating;
        let mut updates = Vec::new();
        for e in events {
            // Only these three kinds were posted to stakeholders in words people typed for them.
            let (kind, text) = match &e.kind {
                EventKind::Opened { .. } => ("declared", summary.clone()),
                EventKind::StateChanged { to, .. } => {
                    state = *to;
                    continue;
                }
                EventKind::Reopened { .. } => {
                    state = State::Investigating;
                    continue;
                }
                EventKind::StatusPosted {
                    automated: false,
                    state: s,
                    text,
                } => {
                    state = *s;
                    ("update", Some(text.clone()))
                }
                EventKind::Resolved { summary } => {
                    state = State::Resolved;
                    ("resolved", Some(summary.clone()))
                }
                _ => continue,
            };
            updates.push(PublicUpdate {
                at: e.at,
                kind,
                state: state.to_string(),
                text,
            });
        }
        updates.reverse();
        let declared = inc.times.declared.or(events.first().map(|e| e.at))?;
        Some(PublicIncident {
            id: inc.id.to_string(),
            title: inc.public_title().to_string(),
            summary,
            severity: inc.severity.to_string(),
            severity_name: config
                .severity(inc.severity)
                .map(|s| s.name.clone())
                .unwrap_or_default(),
            state: inc.state.to_string(),
            started: inc.times.started.unwrap_or(declared),
            resolved: inc.times.resolved.filter(|_| !inc.is_open()),
            latest_update: updates.iter().find(|u| u.kind != "declared").cloned(),
            next_update: next_update.filter(|_| inc.is_open()),
            updated: updates.first().map_or(declared, |u| u.at),
            updates,
            fields: inc
                .public_fields()
                .into_iter()
                .map(|(name, value)| PublicField {
                    name: name.into(),
                    value: value.into(),
                })
                .collect(),
        })
    }
}

/// The page's content at one moment.
#[derive(Debug, Clone, Serialize)]
pub struct StatusSnapshot {
    pub title: String,
    pub generated_at: DateTime<Utc>,
    /// `operational` with nothing open, else `incident`.
    pub status: &'static str,
    /// The worst severity open, e.g. `SEV1`.
    pub worst_severity: Option<String>,
    pub open_incidents: Vec<PublicIncident>,
    /// Resolved within `[status_page] resolved_for`, newest first.
    pub recently_resolved: Vec<PublicIncident>,
}

/// Reads the store for what the page shows now.
pub fn snapshot(app: &App) -> Result<StatusSnapshot, StoreError> {
    let now = app.now();
    let window = chrono::Duration::from_std(app.config.status_page.resolved_for.0)
        .unwrap_or_else(|_| chrono::Duration::days(7));
    let mut open = Vec::new();
    let mut resolved = Vec::new();
    for inc in app.store.incidents()? {
        if !inc.public_visible || inc.drill {
            continue;
        }
        if !inc.is_open() && inc.times.resolved.map_or(true, |r| r < now - window) {
            continue;
        }
        let events = app.store.events(inc.id)?;
        let next = app
            .store
            .job(inc.id, &JobKind::StatusUpdate)?
            .map(|j| j.runs_at());
        let Some(p) = PublicIncident::new(&inc, &events, &app.config, next) else {
            continue;
        };
        if inc.is_open() {
            open.push((inc.severity, p));
        } else {
            resolved.push(p);
        }
    }
    open.sort_by(|(sa, a), (sb, b)| sa.cmp(sb).then(b.started.cmp(&a.started)));
    resolved.sort_by_key(|p| std::cmp::Reverse(p.resolved));
    let worst_severity = open.first().map(|(s, _)| s.to_string());
    Ok(StatusSnapshot {
        title: app.config.status_page.title.clone(),
        generated_at: now,
        status: if open.is_empty() {
            "operational"
        } else {
            "incident"
        },
        worst_severity,
        open_incidents: open.into_iter().map(|(_, p)| p).collect(),
        recently_resolved: resolved,
    })
}

/// Public when `[status_page] enabled`; otherwise a preview for people signed in.
fn gate(web: &Web, headers: &HeaderMap, next: &str) -> Result<bool, Box<Response>> {
    if web.app.config.status_page.enabled {
        return Ok(false);
    }
    match web.auth.check(headers, web.app.now()) {
        Access::Granted => Ok(true),
        Access::Off => Err(Box::new(web.views.error_page(
            StatusCode::NOT_FOUND,
            "There is no status page here",
            "This status page is not public.",
        ))),
        access => Err(Box::new(refuse(web, headers, access, next))),
    }
}

#[derive(Debug, Deserialize)]
pub struct PageQuery {
    /// `off` stops the page reloading itself, for people who need time to read it.
    refresh: Option<String>,
}

pub async fn page(
    Extract(web): Extract<Arc<Web>>,
    headers: HeaderMap,
    Query(q): Query<PageQuery>,
) -> Response {
    let preview = match gate(&web, &headers, "/status") {
        Ok(p) => p,
        Err(res) => return *res,
    };
    let snap = match snapshot(&web.app) {
        Ok(s) => s,
        Err(e) => return internal("reading the store for the status page", e).page(&web),
    };
    let refresh_off = q.refresh.as_deref() == Some("off");
    let refresh = web.app.config.status_page.refresh.0.as_secs();
    web.views.page(
        StatusCode::OK,
        "status.html",
        context! {
            snap,
            preview,
            refresh => if refresh_off { None } else { Some(refresh) },
            resolved_days => web.app.config.status_page.resolved_for.0.as_secs().div_ceil(86_400),
        },
        if preview {
            Cache::Private
        } else {
            Cache::Public
        },
    )
}

pub async fn json(Extract(web): Extract<Arc<Web>>, headers: HeaderMap) -> Response {
    let preview = match gate(&web, &headers, "/status.json") {
        Ok(p) => p,
        Err(res) => return *res,
    };
    let snap = match snapshot(&web.app) {
        Ok(s) => s,
        Err(e) => return internal("reading the store for status.json", e).page(&web),
    };
    let body = serde_json::to_vec_pretty(&snap).expect("plain data serializes");
    let mut res = with_type(
        StatusCode::OK,
        "application/json",
        body,
        if preview {
            Cache::Private
        } else {
            Cache::Public
        },
    );
    if !preview {
        // Public data: other sites' dashboards may read it from the browser.
        res.headers_mut().insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        );
    }
    res
}

/// One feed entry: one thing the public was told.
#[derive(Debug, Clone, Serialize)]
struct FeedEntry {
    id: String,
    incident: String,
    title: String,
    at: DateTime<Utc>,
    text: String,
}

/// Characters XML 1.0 cannot carry at all, not even escaped.
fn xml_text(s: &str) -> String {
    s.chars()
        .filter(|&c| {
            matches!(c, '\t' | '\n' | '\r') || (c >= ' ' && c != '\u{fffe}' && c != '\u{ffff}')
        })
        .collect()
}

/// At most this many entries; feed readers keep what they have seen.
const FEED_ENTRIES: usize = 50;

fn feed_entries(snap: &StatusSnapshot) -> Vec<FeedEntry> {
    let mut out = Vec::new();
    for inc in snap.open_incidents.iter().chain(&snap.recently_resolved) {
        for u in &inc.updates {
            let what = match u.kind {
                "declared" => format!("{} declared", inc.severity),
                "resolved" => "Resolved".to_string(),
                _ => format!("Update ({})", u.state),
            };
            out.push(FeedEntry {
                id: format!(
                    "urn:sitrep:{}:{}:{}",
                    inc.id,
                    u.kind,
                    u.at.timestamp_millis()
                ),
                incident: inc.id.clone(),
                title: xml_text(&format!("{}: {what}", inc.title)),
                at: u.at,
                text: xml_text(u.text.as_deref().unwrap_or(match u.kind {
                    "declared" => "We are investigating.",
                    _ => "",
                })),
            });
        }
    }
    out.sort_by(|a, b| b.at.cmp(&a.at).then(a.id.cmp(&b.id)));
    out.truncate(FEED_ENTRIES);
    out
}

pub async fn feed(Extract(web): Extract<Arc<Web>>, headers: HeaderMap) -> Response {
    let preview = match gate(&web, &headers, "/status/feed.atom") {
        Ok(p) => p,
        Err(res) => return *res,
    };
    let snap = match snapshot(&web.app) {
        Ok(s) => s,
        Err(e) => return internal("reading the store for the status feed", e).page(&web),
    };
    let entries = feed_entries(&snap);
    let updated = entries.first().map_or(snap.generated_at, |e| e.at);
    let base = web
        .app
        .config
        .status_page
        .public_url
        .as_deref()
        .unwrap_or("")
        .trim_end_matches('/')
        .to_string();
    match web.views.render(
        "feed.xml",
        context! { entries, updated, base, title => xml_text(&snap.title) },
    ) {
        Ok(body) => with_type(
            StatusCode::OK,
            "application/atom+xml; charset=utf-8",
            body,
            if preview {
                Cache::Private
            } else {
                Cache::Public
            },
        ),
        Err(e) => internal("rendering the status feed", e).page(&web),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Actor, IncidentId, Severity, UserRef};
    use chrono::TimeZone;

    fn at(min: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 21, 10, 0, 0).unwrap() + chrono::Duration::minutes(min)
    }

    fn timeline(kinds: Vec<EventKind>) -> (Incident, Vec<Event>) {
        let alice = Actor::User(UserRef::new(1, "alice"));
        let mut events = vec![Event {
            at: at(0),
            actor: alice.clone(),
            kind: EventKind::Opened {
                title: "db-7 primary OOM, see runbook".into(),
                severity: Severity(2),
                summary: Some("Checkout fails for EU".into()),
                service: Some("checkout".into()),
                started: at(-5),
                channel: Some(9),
                channel_name: Some("inc-1".into()),
                drill: false,
                playbook: None,
            },
        }];
        for (i, kind) in kinds.into_iter().enumerate() {
            events.push(Event {
                at: at(i as i64 + 1),
                actor: alice.clone(),
                kind,
            });
        }
        let mut inc = Incident::from_opened(IncidentId(1), &events[0]).unwrap();
        events[1..].iter().for_each(|e| inc.apply(e));
        (inc, events)
    }

    #[test]
    fn only_stakeholder_facts_are_public() {
        let (inc, events) = timeline(vec![
            EventKind::NoteAdded {
                text: "password is hunter2".into(),
            },
            EventKind::StatusPosted {
                automated: true,
                state: State::Investigating,
                text: "**Roles:** commander: alice".into(),
            },
            EventKind::StatusPosted {
                automated: false,
                state: State::Identified,
                text: "A bad deploy; rolling back".into(),
            },
            EventKind::PublicChanged {
                visible: true,
                title: Some("Payments are failing".into()),
                summary: None,
            },
        ]);
        let p = PublicIncident::new(&inc, &events, &Config::default(), None).unwrap();
        let json = serde_json::to_string(&p).unwrap();
        for secret in [
            "hunter2",
            "alice",
            "db-7",
            "runbook",
            "Roles",
            "inc-1",
            "checkout\"",
        ] {
            assert!(!json.contains(secret), "{secret} leaked: {json}");
        }
        assert_eq!(p.title, "Payments are failing");
        assert_eq!(p.summary.as_deref(), Some("Checkout fails for EU"));
        assert_eq!(p.started, at(-5));
        assert_eq!(p.updates.len(), 2);
        let latest = p.latest_update.unwrap();
        assert_eq!(latest.text.as_deref(), Some("A bad deploy; rolling back"));
        assert_eq!(latest.state, "identified");
    }

    #[test]
    fn hidden_incidents_and_drills_are_not_public() {
        let (inc, events) = timeline(vec![EventKind::PublicChanged {
            visible: false,
            title: None,
            summary: None,
        }]);
        assert!(PublicIncident::new(&inc, &events, &Config::default(), None).is_none());
        let (mut inc, events) = timeline(vec![]);
        inc.drill = true;
        assert!(PublicIncident::new(&inc, &events, &Config::default(), None).is_none());
    }

    #[test]
    fn feed_text_is_valid_xml_text() {
        assert_eq!(xml_text("a\u{0}b\u{1b}c\td\u{ffff}"), "abc\td");
    }
}
