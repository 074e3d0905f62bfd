//! Renders posts from minijinja templates: the built-in ones, or an operator's replacements.

use crate::config::Config;
use crate::domain::incident::role_title;
use crate::domain::{human_duration, Incident};
use chrono::{DateTime, Utc};
use minijinja::Environment;
use serde::Serialize;
use std::path::Path;

/// Absolute time, with its date and seconds, as every reader of a post-mortem needs it.
pub fn utc(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// Every template the bot renders, with its built-in source.
pub const TEMPLATES: &[(&str, &str)] = &[
    (
        "incident_opened.md.j2",
        include_str!("../templates/incident_opened.md.j2"),
    ),
    (
        "status_update.md.j2",
        include_str!("../templates/status_update.md.j2"),
    ),
    (
        "resolved.md.j2",
        include_str!("../templates/resolved.md.j2"),
    ),
    (
        "update_reminder.md.j2",
        include_str!("../templates/update_reminder.md.j2"),
    ),
    (
        "postmortem.md.j2",
        include_str!("../templates/postmortem.md.j2"),
    ),
    (
        "escalation.md.j2",
        include_str!("../templates/escalation.md.j2"),
    ),
];

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("template {file}{}: {message}", line.map(|l| format!(" line {l}")).unwrap_or_default())]
    Parse {
        file: String,
        line: Option<usize>,
        message: String,
    },
    #[error("cannot read template {file}: {message}")]
    Read { file: String, message: String },
    #[error("rendering {name} failed: {message}")]
    Render { name: String, message: String },
}

/// How times appear: Discord turns `<t:…>` into each reader's local time; a terminal cannot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeStyle {
    Discord,
    Plain,
}

pub struct Renderer {
    env: Environment<'static>,
}

fn when(style: TimeStyle, value: &str) -> String {
    let Ok(t) = DateTime::parse_from_rfc3339(value) else {
        return value.to_string();
    };
    match style {
        TimeStyle::Discord => format!("<t:{}:f> (<t:{}:R>)", t.timestamp(), t.timestamp()),
        TimeStyle::Plain => t
            .with_timezone(&Utc)
            .format("%Y-%m-%d %H:%M UTC")
            .to_string(),
    }
}

impl Renderer {
    /// Loads the built-in templates, replaced file by file from `dir` when given. A template that
    /// does not parse is an error naming the file and line, so that startup stops on it.
    pub fn new(dir: Option<&Path>, style: TimeStyle) -> Result<Renderer, TemplateError> {
        let mut env = Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Lenient);
        env.add_filter("when", move |v: String| when(style, &v));
        for (name, builtin) in TEMPLATES {
            let (file, source) = match dir.map(|d| d.join(name)).filter(|p| p.exists()) {
                Some(path) => (
                    path.display().to_string(),
                    std::fs::read_to_string(&path).map_err(|e| TemplateError::Read {
                        file: path.display().to_string(),
                        message: e.to_string(),
                    })?,
                ),
                None => (format!("templates/{name}"), builtin.to_string()),
            };
            env.add_template_owned(name.to_string(), source)
                .map_err(|e| TemplateError::Parse {
                    file,
                    line: e.line(),
                    message: e.detail().unwrap_or("syntax error").to_string(),
                })?;
        }
        Ok(Renderer { env })
    }

    pub fn from_config(config: &Config, style: TimeStyle) -> Result<Renderer, TemplateError> {
        Self::new(config.templates.dir.as_deref(), style)
    }

    pub fn render<S: Serialize>(&self, name: &str, ctx: S) -> Result<String, TemplateError> {
        let err = |e: minijinja::Error| TemplateError::Render {
            name: name.into(),
            message: e.to_string(),
        };
        let out = self
            .env
            .get_template(name)
            .map_err(err)?
            .render(ctx)
            .map_err(err)?;
        Ok(out.trim().to_string())
    }
}

/// The first letter in upper case and the rest as written, so that "SRE lead" stays so.
fn capitalized(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// An alert the incident came from or was given.
#[derive(Debug, Clone, Serialize)]
pub struct AlertView {
    pub name: String,
    pub summary: Option<String>,
    pub firing: bool,
    pub since: DateTime<Utc>,
    pub ended: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RoleView {
    pub role: String,
    /// The role as people say it, capitalized to lead a line: "Incident commander".
    pub title: String,
    pub user: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ActionView {
    pub text: String,
    pub owner: Option<String>,
    pub due: Option<DateTime<Utc>>,
    /// Its issue in a tracker, once filed.
    pub issue: Option<IssueView>,
    /// Closed in its tracker.
    pub done: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct IssueView {
    pub key: String,
    /// Only an http(s) address: it becomes a link.
    pub url: Option<String>,
    pub state: String,
}

impl IssueView {
    pub fn of(i: &crate::domain::FiledIssue) -> IssueView {
        IssueView {
            key: i.key.clone(),
            url: Some(i.url.clone())
                .filter(|u| u.starts_with("https://") || u.starts_with("http://")),
            state: i.state.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct UpdateView {
    pub text: String,
    pub by: String,
    pub at: DateTime<Utc>,
}

/// What templates see of an incident: plain values, already worded.
#[derive(Debug, Clone, Serialize)]
pub struct IncidentView {
    pub id: String,
    pub title: String,
    pub severity: String,
    pub severity_name: String,
    pub state: String,
    pub state_for: String,
    pub summary: Option<String>,
    pub service: Option<String>,
    /// Where the incident is worked: a channel mention on Discord, a name in the console.
    pub place: String,
    pub commander: Option<String>,
    pub roles: Vec<RoleView>,
    pub open_actions: Vec<ActionView>,
    pub last_update: Option<UpdateView>,
    pub started: Option<DateTime<Utc>>,
    pub declared: Option<DateTime<Utc>>,
    pub resolved: Option<DateTime<Utc>>,
    pub resolution: Option<String>,
    pub duration: String,
    pub tta: Option<String>,
    pub ttm: Option<String>,
    pub ttr: Option<String>,
    /// Time to detect: from the start of impact (an alert's start) to the declaration.
    pub ttd: Option<String>,
    pub drill: bool,
    /// Its alerts, firing first.
    pub alerts: Vec<AlertView>,
    /// The incident type it was opened as.
    pub kind: Option<String>,
    /// Who is affected and how: the impact field, else the summary given at open.
    pub impact: Option<String>,
    /// "4 of 7 done"; absent without a checklist.
    pub progress: Option<String>,
    /// Custom fields set so far, the impact left out (it has its own line).
    pub fields: Vec<FieldView>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FieldView {
    pub name: String,
    pub value: String,
    /// Shown to stakeholders.
    pub public: bool,
}

impl IncidentView {
    pub fn new(inc: &Incident, config: &Config, place: String, now: DateTime<Utc>) -> Self {
        IncidentView {
            id: inc.id.to_string(),
            title: inc.title.clone(),
            severity: inc.severity.to_string(),
            severity_name: config
                .severity(inc.severity)
                .map(|s| s.name.clone())
                .unwrap_or_default(),
            state: inc.state.to_string(),
            state_for: human_duration(now - inc.state_since),
            summary: inc.summary.clone(),
            service: inc.service.clone(),
            place,
            commander: inc.commander().map(|u| u.name.clone()),
            roles: inc
                .current_roles()
                .into_iter()
                .map(|r| RoleView {
                    role: r.role.clone(),
                    title: capitalized(&role_title(&r.role)),
                    user: r.user.name.clone(),
                })
                .collect(),
            open_actions: inc
                .action_items
                .iter()
                .map(|a| ActionView {
                    text: a.text.clone(),
                    owner: a.owner.as_ref().map(|o| o.name.clone()),
                    due: a.due,
                    issue: a.issue.as_ref().map(IssueView::of),
                    done: a.done,
                })
                .collect(),
            last_update: inc.last_update.as_ref().map(|u| UpdateView {
                text: u.text.clone(),
                by: u.by.clone(),
                at: u.at,
            }),
            started: inc.times.started,
            declared: inc.times.declared,
            resolved: inc.times.resolved,
            resolution: inc.resolution.clone(),
            duration: inc.age(now),
            tta: inc.tta().map(human_duration),
            ttm: inc.ttm().map(human_duration),
            ttr: inc.ttr().map(human_duration),
            ttd: inc.ttd().map(human_duration),
            drill: inc.drill,
            alerts: {
                let mut alerts: Vec<AlertView> = inc
                    .alerts
                    .values()
                    .map(|a| AlertView {
                        name: a.name.clone(),
                        summary: a.summary.clone(),
                        firing: a.firing,
                        since: a.starts_at,
                        ended: a.ends_at,
                    })
                    .collect();
                alerts.sort_by_key(|a| (!a.firing, a.since));
                alerts
            },
            kind: inc.kind.clone(),
            impact: inc.impact().map(str::to_string),
            progress: (!inc.checklist.is_empty()).then(|| inc.progress().to_string()),
            fields: inc
                .fields
                .iter()
                .filter(|(n, _)| n != crate::domain::playbook::IMPACT)
                .map(|(n, v)| FieldView {
                    name: n.clone(),
                    value: v.clone(),
                    public: inc.field_def(n).is_some_and(|d| d.public),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Actor, Event, EventKind, IncidentId, Severity, UserRef};

    fn incident(title: &str) -> Incident {
        let at = DateTime::parse_from_rfc3339("2026-11-21T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        Incident::from_opened(
            IncidentId(3),
            &Event {
                at,
                actor: Actor::User(UserRef::new(1, "alice")),
                kind: EventKind::Opened {
                    title: title.into(),
                    severity: Severity(1),
                    summary: Some("Checkout fails for all EU users".into()),
                    service: Some("checkout".into()),
                    started: at,
                    channel: None,
                    channel_name: None,
                    drill: false,
                    playbook: None,
                },
            },
        )
        .unwrap()
    }

    #[test]
    fn user_text_is_data_not_template_source() {
        let r = Renderer::new(None, TimeStyle::Plain).unwrap();
        let inc = incident("{{ 7 * 7 }} {% if true %}x{% endif %}");
        let view = IncidentView::new(&inc, &Config::default(), "#inc-3".into(), Utc::now());
        let out = r
            .render(
                "incident_opened.md.j2",
                minijinja::context! { incident => view, audience => "responders" },
            )
            .unwrap();
        assert!(
            out.contains("{{ 7 * 7 }} {% if true %}x{% endif %}"),
            "{out}"
        );
        assert!(!out.contains("49"));
    }

    #[test]
    fn times_follow_the_chat_style() {
        assert_eq!(
            when(TimeStyle::Plain, "2026-11-21T10:00:00Z"),
            "2026-11-21 10:00 UTC"
        );
        assert_eq!(
            when(TimeStyle::Discord, "2026-11-21T10:00:00Z"),
            "<t:1795255200:f> (<t:1795255200:R>)"
        );
    }

    #[test]
    fn status_update_has_the_shape_stakeholders_expect() {
        let r = Renderer::new(None, TimeStyle::Plain).unwrap();
        let inc = incident("Checkout returns 500");
        let view = IncidentView::new(&inc, &Config::default(), "#inc-3".into(), Utc::now());
        let out = r
            .render(
                "status_update.md.j2",
                minijinja::context! { incident => view, automated => false },
            )
            .unwrap();
        for part in [
            "**Status:** Investigating",
            "**Impact:** Checkout fails",
            "**Current understanding:** No update",
            "**Incident commander:** alice",
        ] {
            assert!(out.contains(part), "missing {part:?} in:\n{out}");
        }
    }

    #[test]
    fn operator_templates_replace_builtins_and_bad_ones_name_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("resolved.md.j2"),
            "Done: {{ incident.title }}",
        )
        .unwrap();
        let r = Renderer::new(Some(dir.path()), TimeStyle::Plain).unwrap();
        let view = IncidentView::new(
            &incident("x"),
            &Config::default(),
            String::new(),
            Utc::now(),
        );
        assert_eq!(
            r.render("resolved.md.j2", minijinja::context! { incident => view })
                .unwrap(),
            "Done: x"
        );
        std::fs::write(
            dir.path().join("status_update.md.j2"),
            "line one\n{% if %}\n",
        )
        .unwrap();
        let err = Renderer::new(Some(dir.path()), TimeStyle::Plain)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("status_update.md.j2 line 2"), "{err}");
    }
}
