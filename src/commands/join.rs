//! The Join button under an incident's opening post: the presser joins the response.

use super::{Invocation, Outcome, Reply, Target};
use crate::app::App;
use crate::domain::Actor;
use crate::error::{CommandError, UserError};
use serde::Deserialize;

/// The button's custom id is `incident:join:<incident>`.
pub const NAME: &str = "incident join";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinArgs {
    pub target: Target,
}

/// Adds the responder to the incident's place, then records that they joined. What they read
/// says whether it worked: "You joined" only once both are done. Every answer is private, and
/// failures are answered in words rather than as errors.
pub async fn run(app: &App, inv: &Invocation, args: JoinArgs) -> Result<Outcome, CommandError> {
    let Target::Incident(id) = args.target else {
        return Err(UserError::Line("This button is no longer in use.".into()).into());
    };
    let answer = |text: String| {
        Ok(Outcome {
            reply: Reply::private(text),
            posts: Vec::new(),
            incident: Some(id),
        })
    };
    let user = &inv.user;
    let inc = match app.store.incident(id) {
        Ok(Some(inc)) => inc,
        Ok(None) => return answer(UserError::NoSuchIncident(id).to_string()),
        Err(e) => return answer(CommandError::from(e).to_chat(NAME)),
    };
    if let Some(channel) = inc.channel {
        if let Err(e) = app.chat.add_member(channel, user.id).await {
            let error_id = crate::error::error_id();
            tracing::warn!(%error_id, incident = %id, channel, error = %e, "could not add a responder to the incident's thread");
            return answer(format!(
                "Sorry, Discord did not add you to {id}'s thread (error id `{error_id}`). Open <#{channel}> and press **Join Thread** there, or try the button again in a minute."
            ));
        }
    }
    let text = format!("{} joined the response", user.name);
    let res = app.record(id, &Actor::User(user.clone()), app.now(), |i| {
        i.decide_note(&text)
    });
    if let Err(e) = res {
        return answer(CommandError::from(e).to_chat(NAME));
    }
    if app.store.flush().await.is_err() {
        return answer("Sorry, that did not save; try again.".into());
    }
    answer(format!("You joined {id}."))
}
