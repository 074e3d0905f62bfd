//! `/escalate target:<name> reason:<text> [policy:<name>]`, and the escalation buttons.

use super::{CommandInput, InputOption, InputValue, Invocation, Outcome, Reply, Target};
use crate::app::App;
use crate::domain::escalation::MAX_REASON;
use crate::domain::incident::require_text;
use crate::domain::{human_duration, Actor, Incident, IncidentId, RuleError};
use crate::error::{CommandError, UserError};
use crate::escalation::{self, Ladder};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EscalateArgs {
    pub target: String,
    pub reason: String,
    pub policy: Option<String>,
}

const NOT_HERE: &str = "/escalate works in an incident's own channel, where the people it pages will look; run it there";

/// The incident whose channel the command ran in. There is no `incident:` option on purpose:
/// a page points people at the channel it is posted in.
fn incident_here(app: &App, inv: &Invocation) -> Result<Incident, CommandError> {
    let not_here = || UserError::Escalation(NOT_HERE.into());
    let channel = inv.channel.ok_or_else(not_here)?;
    let id = app
        .store
        .incident_by_channel(channel)?
        .ok_or_else(not_here)?;
    Ok(app
        .store
        .incident(id)?
        .ok_or(UserError::NoSuchIncident(id))?)
}

/// Every check that needs no network: the channel, the target and its roles, the policy, the
/// reason. Nothing is paged unless all pass.
fn check(
    app: &App,
    inv: &Invocation,
    args: &EscalateArgs,
) -> Result<(Incident, Ladder, String), CommandError> {
    let inc = incident_here(app, inv)?;
    if !inc.is_open() {
        return Err(RuleError::Resolved(inc.id).into());
    }
    if app.config.escalation.targets.is_empty() {
        return Err(UserError::Escalation(
            "no escalation targets are configured; add [escalation.targets.NAME] with roles = [...] to the config".into(),
        )
        .into());
    }
    let ladder = escalation::ladder(&app.config, &args.target, args.policy.as_deref())?;
    let first = &ladder.levels[0];
    if !escalation::can_page(&app.config, first) {
        return Err(UserError::Escalation(format!(
            "escalation target `{first}` has no roles configured, so there is nobody to page; set roles = [...] under [escalation.targets.{first}]"
        ))
        .into());
    }
    let reason = require_text("the reason", &args.reason, MAX_REASON)?;
    Ok((inc, ladder, reason))
}

pub fn precheck(app: &App, inv: &Invocation, args: &EscalateArgs) -> Result<(), CommandError> {
    check(app, inv, args).map(|_| ())
}

pub async fn run(app: &App, inv: &Invocation, args: EscalateArgs) -> Result<Outcome, CommandError> {
    let (inc, ladder, reason) = check(app, inv, &args)?;
    let paged = escalation::escalate(
        app,
        inc.id,
        &Actor::User(inv.user.clone()),
        &ladder,
        &reason,
    )
    .await?;
    let wait = human_duration(chrono::Duration::from_std(ladder.ack_timeout).unwrap_or_default());
    let then = match ladder.levels.get(1) {
        Some(next) => format!("**{next}** is paged next"),
        None => "the commander is told".into(),
    };
    let via = ladder
        .policy
        .as_deref()
        .map(|p| format!(" (policy {p})"))
        .unwrap_or_default();
    Ok(Outcome {
        reply: Reply::public(format!(
            "{} escalated {} to **{}**{via}. If nobody acknowledges within {wait}, {then}.",
            inv.user.name, inc.id, ladder.levels[0]
        )),
        posts: Vec::new(),
        incident: Some(paged.incident.id),
    })
}

/// Suggestions while typing: configured target and policy names.
pub fn autocomplete(app: &App, option: &str, partial: &str) -> Vec<String> {
    let partial = partial.trim().to_lowercase();
    let e = &app.config.escalation;
    let mut out: Vec<String> = match option {
        "target" => e.targets.keys().cloned().collect(),
        "policy" => e.policies.keys().cloned().collect(),
        _ => Vec::new(),
    };
    out.retain(|c| c.to_lowercase().contains(&partial));
    out.truncate(25);
    out
}

/// The Acknowledge button under a page: `arg` is the escalation's number.
pub const ACK: &str = "escalation ack";
/// A target's button under the stuck nudge: `arg` is the target's name.
pub const NUDGE: &str = "escalation nudge";

/// What an escalation button carries: the incident whose post holds it, and its argument.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ButtonArgs {
    pub target: Target,
    pub arg: String,
}

impl ButtonArgs {
    fn incident(&self) -> Result<IncidentId, CommandError> {
        match self.target {
            Target::Incident(id) => Ok(id),
            Target::Message { .. } | Target::Alert { .. } => Err(gone()),
        }
    }
}

fn gone() -> CommandError {
    UserError::Escalation("This button is no longer in use.".into()).into()
}

/// Acknowledge: stops the ladder, if the presser holds one of the paged roles (escalation's
/// own rule, not `[permissions]`).
pub async fn acknowledge(
    app: &App,
    inv: &Invocation,
    args: ButtonArgs,
) -> Result<Outcome, CommandError> {
    let incident = args.incident()?;
    let n: u32 = args.arg.parse().map_err(|_| gone())?;
    let text = escalation::acknowledge(app, incident, n, &inv.user, &inv.member_roles).await?;
    Ok(Outcome {
        reply: Reply::private(text),
        posts: Vec::new(),
        incident: Some(incident),
    })
}

/// A nudge's target: runs `/escalate`, permissions included, as the person who pressed it.
pub async fn nudge(app: &App, inv: &Invocation, args: ButtonArgs) -> Result<Outcome, CommandError> {
    let incident = args.incident()?;
    let inc = app
        .store
        .incident(incident)?
        .ok_or(UserError::NoSuchIncident(incident))?;
    let option = |name: &str, value: String| InputOption {
        name: name.into(),
        value: InputValue::String(value),
    };
    let escalate = Invocation {
        user: inv.user.clone(),
        member_roles: inv.member_roles.clone(),
        channel: inv.channel.or(inc.channel),
        input: CommandInput {
            name: "escalate".into(),
            options: vec![
                option("target", args.arg),
                option("reason", escalation::nudge_reason(&inc, app.now())),
            ],
        },
    };
    super::run(app, &escalate).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::options::{manifest, to_json};

    #[test]
    fn the_manifest_matches_the_args() {
        let m = manifest("escalate").unwrap();
        let names: Vec<&str> = m["options"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["target", "reason", "policy"]);
        for all in [false, true] {
            let mut options = vec![
                InputOption {
                    name: "target".into(),
                    value: InputValue::String("dba".into()),
                },
                InputOption {
                    name: "reason".into(),
                    value: InputValue::String("replica lag".into()),
                },
            ];
            if all {
                options.push(InputOption {
                    name: "policy".into(),
                    value: InputValue::String("default".into()),
                });
            }
            let json = to_json(&CommandInput {
                name: "escalate".into(),
                options,
            })
            .unwrap();
            let args: EscalateArgs = serde_json::from_value(json).unwrap();
            assert_eq!(args.policy.is_some(), all);
        }
        let extra = serde_json::json!({"target": "dba", "reason": "x", "incident": "INC-1"});
        assert!(serde_json::from_value::<EscalateArgs>(extra).is_err());
    }

    #[test]
    fn button_ids_round_trip() {
        use crate::commands::table::Press;
        let ack = escalation::ack_button_id(IncidentId(7), 3);
        assert_eq!(ack, "escalation:ack:7:3");
        let press = Press::parse(&ack).unwrap();
        assert_eq!(
            (press.name.as_str(), press.incident(), press.arg.as_deref()),
            (ACK, Some(IncidentId(7)), Some("3"))
        );
        let nudge =
            Press::parse(&escalation::nudge_button_id(IncidentId(7), "sre-oncall")).unwrap();
        assert_eq!(
            (nudge.name.as_str(), nudge.arg.as_deref()),
            (NUDGE, Some("sre-oncall"))
        );
        for bad in [
            "escalation:ack:x:1",
            "escalation",
            "escalation:ack",
            "escalation:ack:0:1",
        ] {
            assert!(Press::parse(bad).is_none(), "{bad}");
        }
    }
}
