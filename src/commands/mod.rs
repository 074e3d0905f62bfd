//! Command handlers: a typed invocation in, an outcome (reply and posts) out; no platform types.

pub mod alert;
pub mod deploys;
pub mod escalate;
pub mod file;
pub mod incident;
pub mod join;
pub mod metrics;
pub mod oncall;
pub mod options;
pub mod playbook;
pub mod postmortem;
pub mod table;
pub mod when;

use crate::app::App;
use crate::domain::{Incident, IncidentId, UserRef};
use crate::error::{CommandError, UserError};
use crate::message::Post;
use crate::store::{CapturedMessage, JobChange};
use chrono::{DateTime, Utc};
pub use options::{CommandInput, InputOption, InputValue};
use serde::{Deserialize, Serialize};
pub use table::{commander_only, Access, Command, Defer, Leaf, TABLE};
use table::{Args, Handle};

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

/// What an interaction was pointed at, besides its options: the message a message command
/// was run on, or the incident whose post holds a pressed button. Handed to the handler as the
/// `target` of its arguments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// The message, when the interaction carries it: Discord sends it whole, so one the capture
    /// missed can still be marked.
    Message {
        id: u64,
        message: Option<Box<CapturedMessage>>,
    },
    Incident(IncidentId),
    /// An alert group offered for triage, and for an attach the incident chosen for it.
    Alert {
        group: u64,
        incident: Option<IncidentId>,
    },
}

/// What a button's custom id `group:action:<arg>` points at: an alert group for the triage
/// buttons, an incident for every other.
pub fn button_target(group: &str, action: &str, arg: &str) -> Option<Target> {
    if group == alert::GROUP && alert::TRIAGE_ACTIONS.contains(&action) {
        alert::parse_target(arg)
    } else {
        arg.parse::<IncidentId>().ok().map(Target::Incident)
    }
}

/// The incident a command is about: named with `incident:`, or the one whose channel it ran in.
pub fn target(app: &App, inv: &Invocation, named: Option<&str>) -> Result<Incident, CommandError> {
    let id = match named.map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) => s.parse::<IncidentId>()?,
        None => match inv.channel {
            Some(ch) => app
                .store
                .incident_by_channel(ch)?
                .ok_or(UserError::NoIncidentHere)?,
            None => return Err(UserError::NoIncidentHere.into()),
        },
    };
    Ok(app
        .store
        .incident(id)?
        .ok_or(UserError::NoSuchIncident(id))?)
}

/// A command checked and converted once: its options against the manifest, who may run it,
/// and its typed arguments, ready for the precheck and then the run.
pub struct Prepared {
    leaf: &'static Leaf,
    handler: &'static (dyn Handle + Sync),
    /// The checked options, for what an edge needs of them before the run.
    json: serde_json::Value,
    args: Args,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("path", &self.leaf.path)
            .field("options", &self.json)
            .finish_non_exhaustive()
    }
}

impl Prepared {
    pub fn leaf(&self) -> &'static Leaf {
        self.leaf
    }

    /// The `incident:` option, when the command has one and it was given.
    pub fn named_incident(&self) -> Option<&str> {
        self.json["incident"].as_str()
    }

    /// Everything the command can refuse without waiting on the network. Edges call it before
    /// deferring, so that mistakes get an immediate private answer.
    pub fn precheck(&self, app: &App, inv: &Invocation) -> Result<(), CommandError> {
        self.handler.precheck(app, inv, &self.args)
    }

    /// Runs the command. Events, and the posts queued with them, are flushed to disk before
    /// this returns a success.
    pub async fn run(self, app: &App, inv: &Invocation) -> Result<Outcome, CommandError> {
        self.handler.run(app, inv, self.args).await
    }
}

/// Checks `inv` against its command's manifest and permissions and converts its options into
/// the handler's arguments, once per interaction.
pub fn prepare(app: &App, inv: &Invocation) -> Result<Prepared, CommandError> {
    prepare_on(app, inv, None)
}

/// [`prepare`] for an interaction pointed at `target`. A button's command runs only this way.
pub fn prepare_on(
    app: &App,
    inv: &Invocation,
    target: Option<Target>,
) -> Result<Prepared, CommandError> {
    let path = inv.input.path();
    let unknown = || UserError::UnknownCommand(format!("/{}", inv.input.name));
    let command = table::find(&inv.input.name).ok_or_else(unknown)?;
    let mut json = match command.manifest {
        Some(_) => options::to_json(&inv.input)?,
        // A button is pressed, not typed: it takes its target and the `arg` of its custom id.
        None if target.is_some() => button_options(&inv.input).ok_or_else(unknown)?,
        None => return Err(unknown().into()),
    };
    let leaf = command.leaf(&path).ok_or_else(unknown)?;
    authorize(app, inv, leaf, &json)?;
    if let Some(t) = target {
        json["target"] = serde_json::to_value(t).expect("plain data");
    }
    let args = command
        .handler
        .parse(json.clone())
        .map_err(|e| UserError::BadOptions {
            command: path,
            message: e.to_string(),
        })?;
    Ok(Prepared {
        leaf,
        handler: command.handler,
        json,
        args,
    })
}

/// A button's options object: at most its `arg`, a string.
fn button_options(input: &CommandInput) -> Option<serde_json::Value> {
    let mut json = serde_json::json!({});
    for o in &input.options {
        match (&*o.name, &o.value) {
            ("arg", InputValue::String(s)) => json["arg"] = s.clone().into(),
            _ => return None,
        }
    }
    Some(json)
}

/// Checks `[permissions]` before anything runs. A command listed there needs one of its roles;
/// the incident's commander may always act on their incident; [`Access::Commander`] leaves
/// that are not listed need the commander; everything else is open to anyone.
fn authorize(
    app: &App,
    inv: &Invocation,
    leaf: &Leaf,
    args: &serde_json::Value,
) -> Result<(), CommandError> {
    if leaf.access == Access::Everyone {
        return Ok(());
    }
    let path = leaf.path;
    let listed = app.config.permissions.get(path);
    let has_role = listed.is_some_and(|roles| roles.iter().any(|r| inv.member_roles.contains(r)));
    if has_role || (listed.is_none() && leaf.access == Access::Anyone) {
        return Ok(());
    }
    let named = args["incident"].as_str();
    let incident = match target(app, inv, named) {
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

/// Work that follows a command once its reply is out, such as the "what changed" post after an
/// open. Edges run it in the background; nothing here may delay the reply.
pub async fn after(app: &App, inv: &Invocation, outcome: &Outcome) {
    let after = table::leaf(&inv.input.path()).and_then(|l| l.after);
    if let (Some(after), Some(id)) = (after, outcome.incident) {
        after(app, id).await;
    }
}

/// Runs one command as typed: [`prepare`], then the run.
pub async fn run(app: &App, inv: &Invocation) -> Result<Outcome, CommandError> {
    prepare(app, inv)?.run(app, inv).await
}

/// Suggestions while typing option `option` of command `name`.
pub fn autocomplete(app: &App, name: &str, option: &str, partial: &str) -> Vec<String> {
    table::find(name).map_or_else(Vec::new, |c| c.handler.autocomplete(app, option, partial))
}

/// Whether a checked options object deserializes into command `name`'s arguments; `None` for
/// a name the table lacks.
pub fn parse_args(name: &str, json: serde_json::Value) -> Option<Result<(), serde_json::Error>> {
    table::find(name).map(|c| c.handler.parse(json).map(drop))
}

#[cfg(test)]
mod tests {
    use super::options::{command_paths, kind, leaves, manifests, to_json};
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

    /// Every (sub)command of every slash-command manifest, with only its required options and
    /// with all of them, goes through the option-tree → JSON → serde path Discord and the
    /// console use; a manifest option its args struct lacks fails here (`deny_unknown_fields`).
    #[test]
    fn every_manifest_subcommand_deserializes_into_its_args() {
        let mut checked = 0;
        for m in manifests().iter().filter(|m| m["type"] == 1) {
            let name = m["name"].as_str().unwrap().to_string();
            for (path, specs) in leaves(m) {
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
                    let parsed = parse_args(&name, json.clone())
                        .unwrap_or_else(|| panic!("/{name} is not in the command table"));
                    if let Err(e) = parsed {
                        panic!("{} ({json}): {e}", input.path());
                    }
                    checked += 1;
                }
            }
        }
        assert!(checked >= 30, "only {checked} shapes checked");
    }

    /// The table names each runnable path of each manifest once, and nothing else but buttons.
    #[test]
    fn the_table_has_one_leaf_per_manifest_path() {
        let mut in_table: Vec<&str> = TABLE
            .iter()
            .filter(|c| c.manifest.is_some())
            .flat_map(|c| c.leaves.iter().map(|l| l.path))
            .collect();
        let mut paths = command_paths();
        in_table.sort();
        paths.sort();
        assert_eq!(in_table, paths);
        for c in TABLE {
            for l in c.leaves {
                assert!(
                    l.path == c.name || l.path.starts_with(&format!("{} ", c.name)),
                    "{} under {}",
                    l.path,
                    c.name
                );
            }
            if c.manifest.is_none() {
                assert!(c.leaves.iter().all(|l| l.access == Access::Everyone));
            }
        }
        let names: Vec<&str> = manifests()
            .iter()
            .map(|m| m["name"].as_str().unwrap())
            .collect();
        let named: Vec<&str> = TABLE
            .iter()
            .filter(|c| c.manifest.is_some())
            .map(|c| c.name)
            .collect();
        assert_eq!(names, named);
    }

    /// A button is pressed, never typed: without its target it is not a command.
    #[test]
    fn buttons_are_not_typed_commands() {
        assert!(table::button(join::NAME).is_some());
        assert!(options::manifest("incident join").is_none());
        assert!(!command_paths().iter().any(|p| p == "incident join"));
    }
}
