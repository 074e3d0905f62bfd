//! Command handlers: a typed invocation in, an outcome (reply and posts) out; no platform types.

pub mod deploys;
pub mod escalate;
pub mod incident;
pub mod metrics;
pub mod options;
pub mod postmortem;
pub mod when;

use crate::app::App;
use crate::domain::{IncidentId, UserRef};
use crate::error::{CommandError, UserError};
use crate::message::Post;
use crate::store::JobChange;
use chrono::{DateTime, Utc};
pub use options::{CommandInput, InputOption, InputValue};

/// Who ran what, where.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub user: UserRef,
    /// The invoker's Discord roles, for permission checks.
    pub member_roles: Vec<u64>,
    /// The channel it was typed in; inside an incident's channel it names the incident.
    pub channel: Option<u64>,
    pub input: CommandInput,
}

/// The answer to the person who typed the command.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub post: Post,
    /// Only the typist sees it (errors, lists, previews).
    pub ephemeral: bool,
}

impl Reply {
    pub fn public(content: impl Into<String>) -> Reply {
        Reply {
            post: Post::text(content),
            ephemeral: false,
        }
    }

    pub fn private(content: impl Into<String>) -> Reply {
        Reply {
            post: Post::text(content),
            ephemeral: true,
        }
    }
}

/// A post a command makes besides its reply.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub channel: u64,
    pub post: Post,
}

/// The outbox jobs that send `posts` for incident `id`, in order; write them in the same
/// transaction as the events they tell of, and the scheduler delivers them. Posts to
/// `stakeholders` may share a digest message with other incidents' posts waiting beside them:
/// every open incident announces itself in that one channel, which takes about five messages
/// in five seconds.
pub fn queue(
    id: IncidentId,
    at: DateTime<Utc>,
    posts: &[Delivery],
    stakeholders: Option<u64>,
) -> Vec<JobChange> {
    posts
        .iter()
        .map(|d| {
            let (incident, channel, post, due) = (id, d.channel, Box::new(d.post.clone()), at);
            if Some(d.channel) == stakeholders {
                JobChange::SendInDigest {
                    incident,
                    channel,
                    post,
                    due,
                }
            } else {
                JobChange::Send {
                    incident,
                    channel,
                    post,
                    due,
                }
            }
        })
        .collect()
}

#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub reply: Reply,
    /// The posts the command queued in the outbox, in order. They are on disk with the
    /// command's events and the scheduler sends them; edges must not send them again.
    pub posts: Vec<Delivery>,
    /// The incident the command acted on; the console makes it the current one.
    pub incident: Option<IncidentId>,
}

/// Whether the command waits on anything but the store before it can answer (a channel to create,
/// a remote system to ask): such commands are deferred first to keep Discord's 3 s deadline.
pub fn defers(input: &CommandInput) -> bool {
    matches!(
        input.path().as_str(),
        "incident open" | "metrics" | "escalate" | "postmortem draft" | "postmortem export"
    )
}

/// Commands that, unless `[permissions]` says otherwise, only the incident's commander may run.
pub const COMMANDER_ONLY: &[&str] = &[
    "incident resolve",
    "incident reopen",
    "incident severity",
    "incident role",
];

/// Checks `[permissions]` before anything runs. A command listed there needs one of its roles;
/// the incident's commander may always act on their incident; [`COMMANDER_ONLY`] commands that
/// are not listed need the commander; everything else is open to anyone.
fn authorize(app: &App, inv: &Invocation, args: &serde_json::Value) -> Result<(), CommandError> {
    let path = inv.input.path();
    let listed = app.config.permissions.get(&path);
    let has_role = listed.is_some_and(|roles| roles.iter().any(|r| inv.member_roles.contains(r)));
    if has_role || (listed.is_none() && !COMMANDER_ONLY.contains(&path.as_str())) {
        return Ok(());
    }
    let named = args["incident"].as_str();
    let incident = match incident::target(app, inv, named) {
        Ok(i) => Some(i),
        // An unknown incident is reported as such, not as a denial.
        Err(CommandError::User(UserError::NoIncidentHere)) => None,
        Err(e) => return Err(e),
    };
    if let Some(inc) = &incident {
        if inc.commander().is_some_and(|c| c.id == inv.user.id) {
            return Ok(());
        }
    }
    let who = match (listed, &incident) {
        (Some(roles), Some(inc)) => format!(
            "{}'s commander or members of {}",
            inc.id,
            roles
                .iter()
                .map(|r| format!("<@&{r}>"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        (Some(roles), None) => format!(
            "members of {}",
            roles
                .iter()
                .map(|r| format!("<@&{r}>"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        (None, Some(inc)) => format!("{}'s commander", inc.id),
        (None, None) => "an incident's commander".into(),
    };
    Err(UserError::Denied(format!("run /{path}; only {who} may")).into())
}

/// Everything that can be checked without waiting on the network: options against the
/// manifest, permissions, and the command's own field checks. Edges call it before deferring,
/// so that mistakes get an immediate private answer.
pub fn precheck(app: &App, inv: &Invocation) -> Result<(), CommandError> {
    let json = options::to_json(&inv.input)?;
    authorize(app, inv, &json)?;
    let bad = |e: serde_json::Error| UserError::BadOptions {
        command: inv.input.path(),
        message: e.to_string(),
    };
    match inv.input.name.as_str() {
        "incident" => incident::precheck(app, &serde_json::from_value(json).map_err(bad)?),
        "metrics" => metrics::precheck(app, &serde_json::from_value(json).map_err(bad)?),
        "escalate" => escalate::precheck(app, inv, &serde_json::from_value(json).map_err(bad)?),
        "postmortem" => postmortem::precheck(app, inv, &serde_json::from_value(json).map_err(bad)?),
        _ => Ok(()),
    }
}

/// Work that follows a command once its reply is out, such as the "what changed" post after an
/// open. Edges run it in the background; nothing here may delay the reply.
pub async fn after(app: &App, inv: &Invocation, outcome: &Outcome) {
    if inv.input.path() == "incident open" {
        if let Some(id) = outcome.incident {
            crate::whats_changed::post(app, id).await;
        }
    }
    if inv.input.path() == "incident resolve" {
        if let Some(id) = outcome.incident {
            crate::escalation::on_resolved(app, id).await;
        }
    }
}

/// Runs one command. Events, and the posts queued with them, are flushed to disk before this
/// returns a success.
pub async fn run(app: &App, inv: &Invocation) -> Result<Outcome, CommandError> {
    let json = options::to_json(&inv.input)?;
    authorize(app, inv, &json)?;
    let bad = |e: serde_json::Error| UserError::BadOptions {
        command: inv.input.path(),
        message: e.to_string(),
    };
    match inv.input.name.as_str() {
        "incident" => incident::run(app, inv, serde_json::from_value(json).map_err(bad)?).await,
        "deploys" => deploys::run(app, inv, serde_json::from_value(json).map_err(bad)?).await,
        "metrics" => metrics::run(app, inv, serde_json::from_value(json).map_err(bad)?).await,
        "postmortem" => postmortem::run(app, inv, serde_json::from_value(json).map_err(bad)?).await,
        "escalate" => escalate::run(app, inv, serde_json::from_value(json).map_err(bad)?).await,
        other => Err(UserError::UnknownCommand(format!("/{other}")).into()),
    }
}

#[cfg(test)]
mod tests {
    use super::options::{kind, manifests, to_json};
    use super::*;
    use serde_json::Value;

    fn sample(spec: &Value) -> InputValue {
        if let Some(c) = spec["choices"].as_array().filter(|c| !c.is_empty()) {
            return match &c[0]["value"] {
                Value::String(s) => InputValue::Raw(s.clone()),
                v => InputValue::Raw(v.to_string()),
            };
        }
        match spec["type"].as_u64().unwrap() {
            kind::USER => InputValue::User(UserRef::new(7, "bob")),
            kind::BOOLEAN => InputValue::Bool(true),
            kind::INTEGER => InputValue::Integer(1),
            kind::NUMBER => InputValue::Number(1.5),
            kind::CHANNEL => InputValue::Channel(9),
            kind::ROLE => InputValue::Role(9),
            _ => InputValue::String("x".into()),
        }
    }

    /// The leaves of a manifest: each runnable (sub)command with its own option specs.
    fn leaves(spec: &Value, path: Vec<String>, out: &mut Vec<(Vec<String>, Vec<Value>)>) {
        let opts = spec["options"].as_array().cloned().unwrap_or_default();
        let subs: Vec<&Value> = opts
            .iter()
            .filter(|o| {
                matches!(
                    o["type"].as_u64(),
                    Some(kind::SUB_COMMAND | kind::SUB_COMMAND_GROUP)
                )
            })
            .collect();
        if subs.is_empty() {
            out.push((path, opts));
            return;
        }
        for s in subs {
            let mut p = path.clone();
            p.push(s["name"].as_str().unwrap().to_string());
            leaves(s, p, out);
        }
    }

    fn deserializes(name: &str, json: Value) -> Result<(), serde_json::Error> {
        match name {
            "incident" => serde_json::from_value::<incident::IncidentArgs>(json).map(drop),
            "deploys" => serde_json::from_value::<deploys::DeploysArgs>(json).map(drop),
            "metrics" => serde_json::from_value::<metrics::MetricsArgs>(json).map(drop),
            "postmortem" => serde_json::from_value::<postmortem::PostmortemArgs>(json).map(drop),
            "escalate" => serde_json::from_value::<escalate::EscalateArgs>(json).map(drop),
            other => panic!("no args type for /{other}: add it here and to run()"),
        }
    }

    /// Every (sub)command of every slash-command manifest, with only its required options and
    /// with all of them, goes through the option-tree → JSON → serde path Discord and the
    /// console use; a manifest option its args struct lacks fails here (`deny_unknown_fields`).
    #[test]
    fn every_manifest_subcommand_deserializes_into_its_args() {
        let mut checked = 0;
        for m in manifests().into_iter().filter(|m| m["type"] == 1) {
            let name = m["name"].as_str().unwrap().to_string();
            let mut found = Vec::new();
            leaves(&m, Vec::new(), &mut found);
            for (path, specs) in found {
                for all in [false, true] {
                    let mut options: Vec<InputOption> = specs
                        .iter()
                        .filter(|s| all || s["required"] == true)
                        .map(|s| InputOption {
                            name: s["name"].as_str().unwrap().into(),
                            value: sample(s),
                        })
                        .collect();
                    for sub in path.iter().rev() {
                        options = vec![InputOption {
                            name: sub.clone(),
                            value: InputValue::Sub(options),
                        }];
                    }
                    let input = CommandInput {
                        name: name.clone(),
                        options,
                    };
                    let json = to_json(&input).unwrap_or_else(|e| panic!("{}: {e}", input.path()));
                    if let Err(e) = deserializes(&name, json.clone()) {
                        panic!("{} ({json}): {e}", input.path());
                    }
                    checked += 1;
                }
            }
        }
        assert!(checked >= 30, "only {checked} shapes checked");
    }
}
