//! How an incident reads in a post: shared by the `/incident` handlers, escalation and the
//! scheduled status updates ([`update`]).

pub mod update;

use crate::app::App;
use crate::config::Config;
use crate::domain::{Cadence, Incident};
use crate::message::{Button, ButtonStyle, Mentions, Post};
use crate::render::{IncidentView, TemplateError};
use crate::store::{JobKind, StoreError};
use chrono::{DateTime, Utc};
use minijinja::context;

/// The cadence an incident's updates follow now: its own, else its severity's; `None` for none.
pub fn effective_cadence(config: &Config, inc: &Incident) -> Option<Cadence> {
    inc.cadence
        .clone()
        .or_else(|| config.default_cadence(inc.severity))
        .filter(|c| *c != Cadence::Off)
}

/// Where the incident is worked, as the chat platform points at it.
pub fn place_of(app: &App, inc: &Incident) -> String {
    match (inc.channel, &inc.channel_name) {
        (Some(ch), _) => app.chat.channel_mention(ch),
        (None, Some(name)) => format!("#{name}"),
        (None, None) => inc.id.to_string(),
    }
}

pub fn view(app: &App, inc: &Incident) -> IncidentView {
    IncidentView::new(inc, &app.config, place_of(app, inc), app.now())
}

/// An embed in the incident's colours, titled with its id and title.
pub fn incident_post(app: &App, inc: &Incident, heading: &str, body: String) -> Post {
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

/// When the next scheduled update of `inc` is due, as the scheduler has it.
pub fn next_update(app: &App, inc: &Incident) -> Result<Option<DateTime<Utc>>, StoreError> {
    Ok(app
        .store
        .job(inc.id, &JobKind::StatusUpdate)?
        .map(|j| j.runs_at()))
}

/// `templates/status_update.md.j2`: Status, Impact, Current understanding, Actions, Next update.
/// `automated` posts also say when the team last spoke.
pub fn status_text(
    app: &App,
    inc: &Incident,
    automated: bool,
    next_update: Option<DateTime<Utc>>,
) -> Result<String, TemplateError> {
    status_text_for(app, inc, automated, next_update, false)
}

/// [`status_text`] for the responders, or for the stakeholders (`stakeholders`), who see only
/// the fields marked public and not the checklist.
pub fn status_text_for(
    app: &App,
    inc: &Incident,
    automated: bool,
    next_update: Option<DateTime<Utc>>,
    stakeholders: bool,
) -> Result<String, TemplateError> {
    let audience = if stakeholders {
        "stakeholders"
    } else {
        "responders"
    };
    app.renderer.render(
        "status_update.md.j2",
        context! { incident => view(app, inc), automated, next_update, audience },
    )
}

/// The nudge to the commander (`templates/update_reminder.md.j2`) after a scheduled update found
/// nothing new since `since`. It pings the commander and nobody else, and carries the button the
/// chat edge turns into an update form.
pub fn reminder_post(
    app: &App,
    inc: &Incident,
    since: DateTime<Utc>,
    next_update: Option<DateTime<Utc>>,
) -> Result<Post, TemplateError> {
    let commander = inc.commander();
    let text = app.renderer.render(
        "update_reminder.md.j2",
        context! {
            incident => view(app, inc),
            commander => commander.map(|u| app.chat.user_mention(u)),
            since,
            next_update,
        },
    )?;
    let mut post = Post::text(text).with_buttons(vec![Button {
        custom_id: format!("incident:update:{}", inc.id.0),
        label: "Post update".into(),
        style: ButtonStyle::Primary,
    }]);
    post.mentions = Mentions::users(&commander.map(|u| u.id).into_iter().collect::<Vec<_>>());
    Ok(post.fit_limits())
}
