//! `/oncall [schedule]`: who is on call now and next, with hand-off times.

use super::{Invocation, Outcome, Reply};
use crate::app::App;
use crate::error::{CommandError, UserError};
use crate::oncall::{self, OnCallError};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OnCallArgs {
    pub schedule: Option<String>,
}

fn user_error(e: OnCallError) -> CommandError {
    match e {
        OnCallError::Store(s) => s.into(),
        other => UserError::OnCall(other.to_string()).into(),
    }
}

/// Refuses an unknown schedule, or none configured, before anything waits on a source.
pub fn precheck(app: &App, _inv: &Invocation, args: &OnCallArgs) -> Result<(), CommandError> {
    if app.config.oncall.is_empty() {
        return Err(UserError::OnCall(
            "no on-call schedules are configured; add [oncall.NAME] with a PagerDuty schedule, an iCalendar feed or a rotation to the config".into(),
        )
        .into());
    }
    if let Some(name) = args.schedule.as_deref().filter(|s| !s.trim().is_empty()) {
        oncall::find(&app.config, name).map_err(user_error)?;
    }
    Ok(())
}

pub async fn run(app: &App, inv: &Invocation, args: OnCallArgs) -> Result<Outcome, CommandError> {
    precheck(app, inv, &args)?;
    let names: Vec<String> = match args.schedule.as_deref().filter(|s| !s.trim().is_empty()) {
        Some(name) => vec![name.to_string()],
        None => app.config.oncall.keys().cloned().collect(),
    };
    let mut parts = Vec::new();
    for name in &names {
        match oncall::lookup(app, name).await {
            Ok(answer) => parts.push(oncall::describe(app, &answer)),
            // One schedule's source failing does not hide the others.
            Err(OnCallError::NeverAnswered(n, why)) if names.len() > 1 => parts.push(format!(
                "**{n}**\n⚠ Source unreachable ({why}); no earlier answer.\n"
            )),
            Err(e) => return Err(user_error(e)),
        }
    }
    Ok(Outcome {
        reply: Reply::public(
            crate::message::truncate(&parts.join("\n"), crate::message::MAX_CONTENT).to_string(),
        ),
        posts: Vec::new(),
        incident: None,
    })
}

/// Suggestions while typing: configured schedule names.
pub fn autocomplete(app: &App, option: &str, partial: &str) -> Vec<String> {
    if option != "schedule" {
        return Vec::new();
    }
    let partial = partial.trim().to_lowercase();
    let mut out: Vec<String> = app
        .config
        .oncall
        .keys()
        .filter(|k| k.to_lowercase().contains(&partial))
        .cloned()
        .collect();
    out.truncate(25);
    out
}
