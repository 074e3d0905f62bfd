//! The command table: every command sitrep runs, with everything the edges need to know of it.

use super::{
    alert, deploys, escalate, file, incident, join, metrics, oncall, playbook, postmortem,
};
use super::{Invocation, Outcome};
use crate::app::App;
use crate::domain::IncidentId;
use crate::error::CommandError;
use futures::future::BoxFuture;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::any::Any;

/// Every command, in the order Discord registers their manifests. Adding a command means its
/// manifest in `commands/`, its handler module, and one entry here.
pub static TABLE: &[Command] = &[
    Command {
        name: "incident",
        manifest: Some(include_str!("../../commands/incident.json")),
        leaves: &[
            Leaf::new("incident open")
                .defers()
                .after(|app, id| Box::pin(crate::whats_changed::post(app, id))),
            Leaf::new("incident update"),
            Leaf::new("incident severity").commander_only(),
            Leaf::new("incident role").commander_only(),
            Leaf::new("incident note"),
            // Filing waits on the tracker.
            Leaf::new("incident action").defers(),
            Leaf::new("incident status"),
            Leaf::new("incident list"),
            Leaf::new("incident stats"),
            Leaf::new("incident resolve")
                .commander_only()
                .after(|app, id| Box::pin(crate::escalation::on_resolved(app, id))),
            Leaf::new("incident reopen").commander_only(),
            Leaf::new("incident cadence"),
            Leaf::new("incident public"),
            Leaf::new("incident checklist"),
            Leaf::new("incident field"),
        ],
        handler: &Typed::<incident::IncidentArgs> {
            precheck: Some(|app, _, args| incident::precheck(app, args)),
            run: |app, inv, args| Box::pin(incident::run(app, inv, args)),
            autocomplete: Some(playbook::autocomplete),
        },
    },
    Command {
        name: "deploys",
        manifest: Some(include_str!("../../commands/deploys.json")),
        leaves: &[Leaf::new("deploys")],
        handler: &Typed::<deploys::DeploysArgs> {
            precheck: None,
            run: |app, inv, args| Box::pin(deploys::run(app, inv, args)),
            autocomplete: None,
        },
    },
    Command {
        name: "metrics",
        manifest: Some(include_str!("../../commands/metrics.json")),
        leaves: &[Leaf::new("metrics").defers()],
        handler: &Typed::<metrics::MetricsArgs> {
            precheck: Some(|app, _, args| metrics::precheck(app, args)),
            run: |app, inv, args| Box::pin(metrics::run(app, inv, args)),
            autocomplete: Some(metrics::autocomplete),
        },
    },
    Command {
        name: "postmortem",
        manifest: Some(include_str!("../../commands/postmortem.json")),
        leaves: &[
            // A resolved incident is no longer read again at startup: Discord reads its channel
            // once more before drafting, so that the draft misses nothing said while away.
            Leaf::new("postmortem draft").defers().rereads_channel(),
            Leaf::new("postmortem show"),
            Leaf::new("postmortem export").defers(),
            Leaf::new("postmortem lint"),
            Leaf::new("postmortem file").defers().commander_only(),
        ],
        handler: &Typed::<postmortem::PostmortemArgs> {
            precheck: Some(postmortem::precheck),
            run: |app, inv, args| Box::pin(postmortem::run(app, inv, args)),
            autocomplete: None,
        },
    },
    Command {
        name: postmortem::ADD_TO_TIMELINE,
        manifest: Some(include_str!("../../commands/timeline.json")),
        leaves: &[Leaf::new(postmortem::ADD_TO_TIMELINE)],
        handler: &Typed::<postmortem::TimelineArgs> {
            precheck: None,
            run: |app, inv, args| Box::pin(postmortem::add_to_timeline(app, inv, args)),
            autocomplete: None,
        },
    },
    Command {
        name: "escalate",
        manifest: Some(include_str!("../../commands/escalate.json")),
        leaves: &[Leaf::new("escalate").defers()],
        handler: &Typed::<escalate::EscalateArgs> {
            precheck: Some(escalate::precheck),
            run: |app, inv, args| Box::pin(escalate::run(app, inv, args)),
            autocomplete: Some(escalate::autocomplete),
        },
    },
    Command {
        name: "oncall",
        manifest: Some(include_str!("../../commands/oncall.json")),
        // Reading PagerDuty or a calendar feed may take longer than Discord waits.
        leaves: &[Leaf::new("oncall").defers()],
        handler: &Typed::<oncall::OnCallArgs> {
            precheck: Some(oncall::precheck),
            run: |app, inv, args| Box::pin(oncall::run(app, inv, args)),
            autocomplete: Some(oncall::autocomplete),
        },
    },
    // The tick buttons under an incident's checklist post: anyone working the incident may
    // tick an item off. Not a slash command: `[permissions]` cannot name it.
    Command {
        name: playbook::TICK,
        manifest: None,
        leaves: &[Leaf::new(playbook::TICK).open_to_everyone()],
        handler: &Typed::<playbook::TickArgs> {
            precheck: None,
            run: |app, inv, args| Box::pin(playbook::tick(app, inv, args)),
            autocomplete: None,
        },
    },
    // The Join button under an incident's opening post. Not a slash command: no manifest, and
    // `[permissions]` cannot name it, since anyone who sees the incident may help.
    Command {
        name: join::NAME,
        manifest: None,
        leaves: &[Leaf::new(join::NAME)
            .defers_privately_in_threads()
            .open_to_everyone()],
        handler: &Typed::<join::JoinArgs> {
            precheck: None,
            run: |app, inv, args| Box::pin(join::run(app, inv, args)),
            autocomplete: None,
        },
    },
    // The "File in tracker" button under an action item. Anyone who may add an item may file
    // it, so `[permissions]` does not name it either.
    Command {
        name: file::NAME,
        manifest: None,
        leaves: &[Leaf::new(file::NAME).defers().open_to_everyone()],
        handler: &Typed::<file::FileArgs> {
            precheck: None,
            run: |app, inv, args| Box::pin(file::run(app, inv, args)),
            autocomplete: None,
        },
    },
    // The buttons of escalation's posts. Acknowledging is for the paged roles, which
    // escalation checks itself; a nudge's target runs /escalate, whose permissions apply.
    // Both may edit messages and page PagerDuty before they answer.
    Command {
        name: escalate::ACK,
        manifest: None,
        leaves: &[Leaf::new(escalate::ACK)
            .defers_privately()
            .open_to_everyone()],
        handler: &Typed::<escalate::ButtonArgs> {
            precheck: None,
            run: |app, inv, args| Box::pin(escalate::acknowledge(app, inv, args)),
            autocomplete: None,
        },
    },
    // The triage post's buttons. Anyone who sees the triage channel may act on an alert; the
    // declaration makes the presser its commander.
    Command {
        name: alert::DECLARE,
        manifest: None,
        leaves: &[Leaf::new(alert::DECLARE)
            .defers()
            .open_to_everyone()
            .after(|app, id| Box::pin(crate::whats_changed::post(app, id)))],
        handler: &Typed::<alert::AlertButtonArgs> {
            precheck: None,
            run: |app, inv, args| Box::pin(alert::declare_button(app, inv, args)),
            autocomplete: None,
        },
    },
    Command {
        name: escalate::NUDGE,
        manifest: None,
        leaves: &[Leaf::new(escalate::NUDGE)
            .defers_privately()
            .open_to_everyone()],
        handler: &Typed::<escalate::ButtonArgs> {
            precheck: None,
            run: |app, inv, args| Box::pin(escalate::nudge(app, inv, args)),
            autocomplete: None,
        },
    },
    Command {
        name: alert::ATTACH,
        manifest: None,
        leaves: &[Leaf::new(alert::ATTACH).open_to_everyone()],
        handler: &Typed::<alert::AlertButtonArgs> {
            precheck: None,
            run: |app, inv, args| Box::pin(alert::attach_button(app, inv, args)),
            autocomplete: None,
        },
    },
    Command {
        name: alert::DISMISS,
        manifest: None,
        leaves: &[Leaf::new(alert::DISMISS).open_to_everyone()],
        handler: &Typed::<alert::AlertButtonArgs> {
            precheck: None,
            run: |app, inv, args| Box::pin(alert::dismiss_button(app, inv, args)),
            autocomplete: None,
        },
    },
    // The commander's buttons under an incident's alert news; the handler checks the commander.
    Command {
        name: alert::MONITOR,
        manifest: None,
        leaves: &[Leaf::new(alert::MONITOR).open_to_everyone()],
        handler: &Typed::<alert::AlertButtonArgs> {
            precheck: None,
            run: |app, inv, args| Box::pin(alert::commander_button(app, inv, args)),
            autocomplete: None,
        },
    },
    Command {
        name: alert::RESOLVE,
        manifest: None,
        leaves: &[Leaf::new(alert::RESOLVE)
            .open_to_everyone()
            .after(|app, id| Box::pin(crate::escalation::on_resolved(app, id)))],
        handler: &Typed::<alert::AlertButtonArgs> {
            precheck: None,
            run: |app, inv, args| Box::pin(alert::commander_button(app, inv, args)),
            autocomplete: None,
        },
    },
    Command {
        name: alert::REOPEN,
        manifest: None,
        leaves: &[Leaf::new(alert::REOPEN).open_to_everyone()],
        handler: &Typed::<alert::AlertButtonArgs> {
            precheck: None,
            run: |app, inv, args| Box::pin(alert::commander_button(app, inv, args)),
            autocomplete: None,
        },
    },
];

/// One command: a manifest (a slash or message command) or a button's action.
pub struct Command {
    /// The manifest's `name`; for a button, `group action` of its custom id.
    pub name: &'static str,
    /// The JSON Discord registers; buttons have none.
    pub manifest: Option<&'static str>,
    /// Each runnable path of the manifest, with what differs between them.
    pub leaves: &'static [Leaf],
    pub handler: &'static (dyn Handle + Sync),
}

impl Command {
    /// The leaf `path` (`incident open`) runs.
    pub fn leaf(&self, path: &str) -> Option<&'static Leaf> {
        self.leaves.iter().find(|l| l.path == path)
    }
}

/// Work that follows a command once its reply is out, such as the "what changed" post after
/// an open; given the incident the command acted on.
pub type After = for<'a> fn(&'a App, IncidentId) -> BoxFuture<'a, ()>;

/// What one runnable (sub)command needs besides its handler.
#[derive(Clone, Copy)]
pub struct Leaf {
    /// The full path, as `[permissions]` and the logs name it: `incident open`.
    pub path: &'static str,
    pub defers: Defer,
    pub access: Access,
    /// Whether the incident's channel is read again before this runs (edges with history).
    pub rereads_channel: bool,
    pub after: Option<After>,
}

impl Leaf {
    /// Answers at once, open to anyone unless `[permissions]` says otherwise.
    pub const fn new(path: &'static str) -> Leaf {
        Leaf {
            path,
            defers: Defer::Never,
            access: Access::Anyone,
            rereads_channel: false,
            after: None,
        }
    }

    /// It waits on something besides the store (a channel to create, a remote system to ask):
    /// deferred first, publicly, to keep Discord's 3 s deadline.
    pub const fn defers(mut self) -> Leaf {
        self.defers = Defer::Public;
        self
    }

    pub const fn defers_privately(mut self) -> Leaf {
        self.defers = Defer::Private;
        self
    }

    pub const fn defers_privately_in_threads(mut self) -> Leaf {
        self.defers = Defer::PrivateInThreads;
        self
    }

    pub const fn commander_only(mut self) -> Leaf {
        self.access = Access::Commander;
        self
    }

    pub const fn open_to_everyone(mut self) -> Leaf {
        self.access = Access::Everyone;
        self
    }

    pub const fn rereads_channel(mut self) -> Leaf {
        self.rereads_channel = true;
        self
    }

    pub const fn after(mut self, after: After) -> Leaf {
        self.after = Some(after);
        self
    }
}

/// Whether an edge answers first with a placeholder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Defer {
    Never,
    /// A public placeholder; a mistake found later is still answered privately.
    Public,
    /// A private placeholder, always.
    Private,
    /// A private placeholder when incidents live in threads (adding someone to a thread is a
    /// call to Discord); in channel mode nothing waits.
    PrivateInThreads,
}

/// Who may run a leaf.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, unless `[permissions]` lists roles for the path.
    Anyone,
    /// The incident's commander, unless `[permissions]` lists roles for the path.
    Commander,
    /// Anyone, always; `[permissions]` cannot name it.
    Everyone,
}

/// A command's typed arguments, between the check that made them and the handler they go to.
pub type Args = Box<dyn Any + Send>;

/// A handler with its argument type erased, so that every command fits in one table.
pub trait Handle {
    /// The checked options object into the handler's arguments.
    fn parse(&self, json: Value) -> Result<Args, serde_json::Error>;
    fn precheck(&self, app: &App, inv: &Invocation, args: &Args) -> Result<(), CommandError>;
    fn run<'a>(
        &'a self,
        app: &'a App,
        inv: &'a Invocation,
        args: Args,
    ) -> BoxFuture<'a, Result<Outcome, CommandError>>;
    fn autocomplete(&self, app: &App, option: &str, partial: &str) -> Vec<String>;
}

/// What can be refused before an edge defers, without waiting on the network.
pub type Precheck<A> = fn(&App, &Invocation, &A) -> Result<(), CommandError>;

/// Runs the command; a success has its events on disk.
pub type Run<A> =
    for<'a> fn(&'a App, &'a Invocation, A) -> BoxFuture<'a, Result<Outcome, CommandError>>;

/// Suggestions while typing: option name, what is typed so far.
pub type Autocomplete = fn(&App, &str, &str) -> Vec<String>;

/// A handler's functions over its own arguments `A`.
pub struct Typed<A> {
    pub precheck: Option<Precheck<A>>,
    pub run: Run<A>,
    pub autocomplete: Option<Autocomplete>,
}

impl<A: DeserializeOwned + Send + 'static> Handle for Typed<A> {
    fn parse(&self, json: Value) -> Result<Args, serde_json::Error> {
        serde_json::from_value::<A>(json).map(|a| Box::new(a) as Args)
    }

    fn precheck(&self, app: &App, inv: &Invocation, args: &Args) -> Result<(), CommandError> {
        match self.precheck {
            Some(check) => check(app, inv, own(args.downcast_ref())),
            None => Ok(()),
        }
    }

    fn run<'a>(
        &'a self,
        app: &'a App,
        inv: &'a Invocation,
        args: Args,
    ) -> BoxFuture<'a, Result<Outcome, CommandError>> {
        (self.run)(app, inv, *own(args.downcast().ok()))
    }

    fn autocomplete(&self, app: &App, option: &str, partial: &str) -> Vec<String> {
        self.autocomplete
            .map(|f| f(app, option, partial))
            .unwrap_or_default()
    }
}

/// Arguments only ever reach the handler whose `parse` made them.
fn own<T>(args: Option<T>) -> T {
    args.expect("arguments go back to the handler that parsed them")
}

/// A pressed button, read from its custom id `group:action:<target>[:<arg>]`: the table's
/// command `group action`, pointed at what the post that holds the button is about (an
/// incident; an alert group for the triage buttons), with `arg` (if any) as its one option.
#[derive(Debug, Clone, PartialEq)]
pub struct Press {
    pub name: String,
    pub target: super::Target,
    pub arg: Option<String>,
}

impl Press {
    /// `None` for an id no button of the table could have: such a button is no longer in use.
    pub fn parse(custom_id: &str) -> Option<Press> {
        let mut parts = custom_id.splitn(4, ':');
        let (group, action, target) = (parts.next()?, parts.next()?, parts.next()?);
        let name = format!("{group} {action}");
        button(&name)?;
        Some(Press {
            target: super::button_target(group, action, target)?,
            name,
            arg: parts.next().map(str::to_string),
        })
    }

    /// The incident the press acts on, where the target names one.
    pub fn incident(&self) -> Option<IncidentId> {
        match self.target {
            super::Target::Incident(id) => Some(id),
            super::Target::Alert { incident, .. } => incident,
            super::Target::Message { .. } => None,
        }
    }

    /// What the press runs, as an edge hands it to [`super::prepare_on`].
    pub fn input(&self) -> super::CommandInput {
        super::CommandInput {
            name: self.name.clone(),
            options: self
                .arg
                .iter()
                .map(|a| super::InputOption {
                    name: "arg".into(),
                    value: super::InputValue::String(a.clone()),
                })
                .collect(),
        }
    }
}

/// The command named `name`: a manifest's name, or a button's `group action`.
pub fn find(name: &str) -> Option<&'static Command> {
    TABLE.iter().find(|c| c.name == name)
}

/// The command a button `group action` stands for, if it stands for one.
pub fn button(name: &str) -> Option<&'static Command> {
    find(name).filter(|c| c.manifest.is_none())
}

/// The leaf that `path` (`incident open`) runs, if any command has it.
pub fn leaf(path: &str) -> Option<&'static Leaf> {
    TABLE.iter().flat_map(|c| c.leaves).find(|l| l.path == path)
}

/// The paths that, unless `[permissions]` says otherwise, only the incident's commander may run.
pub fn commander_only() -> Vec<&'static str> {
    TABLE
        .iter()
        .flat_map(|c| c.leaves)
        .filter(|l| l.access == Access::Commander)
        .map(|l| l.path)
        .collect()
}
