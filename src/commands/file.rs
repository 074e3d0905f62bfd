//! The "File in tracker" button under an action item: files that item as an issue.

use super::{Invocation, Outcome, Reply, Target};
use crate::app::App;
use crate::domain::Actor;
use crate::error::{CommandError, UserError};
use serde::Deserialize;

/// The button's custom id is `incident:file:<incident>:<item number>`.
pub const NAME: &str = "incident file";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileArgs {
    pub target: Target,
    /// The item's number, from 1, as the custom id carries it.
    pub arg: String,
}

/// Files the item and says where, publicly: the link is news for everyone in the incident.
pub async fn run(app: &App, inv: &Invocation, args: FileArgs) -> Result<Outcome, CommandError> {
    let Target::Incident(id) = args.target else {
        return Err(UserError::Line("This button is no longer in use.".into()).into());
    };
    let number = args
        .arg
        .parse::<usize>()
        .ok()
        .filter(|n| *n >= 1)
        .ok_or_else(|| UserError::Line("This button is no longer in use.".into()))?;
    if app.trackers.is_none() {
        return Err(super::incident::no_tracker().into());
    }
    let actor = Actor::User(inv.user.clone());
    let f = crate::action_items::file(app, &actor, id, number - 1).await?;
    Ok(Outcome {
        reply: Reply::public(format!(
            "{} filed action item #{} of {id} as {} <{}>",
            inv.user.name, f.number, f.key, f.url
        )),
        posts: Vec::new(),
        incident: Some(id),
    })
}
